/* conf_internal.h: what the files of src/conf share and nobody else sees.
 *
 * yaml_tree.c turns YAML text into a small tree of ynodes (scalars, mappings, sequences,
 * each with its 1-based line and column); decode.c walks that tree against a schema;
 * registry.c keeps the section table and the reference-counted struct conf.
 */
#ifndef WARD_CONF_INTERNAL_H
#define WARD_CONF_INTERNAL_H

#include "conf/conf.h"

/* Limits for hostile input. A real ward.yaml is a few KiB with a handful of levels. */
#define CONF_MAX_FILE_BYTES (4u * 1024u * 1024u) /* larger files are refused unread */
#define CONF_MAX_DEPTH      64                   /* nested mappings/sequences */
#define CONF_MAX_NODES      200000               /* bounds memory; ~100x any sane config */
#define CONF_MAX_REPORTED   20 /* problems listed in full; ward_err holds about that many */

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_kind kind;
	int line, col; /* 1-based, where the node starts */
	bool plain;    /* scalar written without quotes (so "~", "null" and "" mean nothing) */
	char *str;     /* scalar text, NUL-terminated (may hold NULs from escapes: see len) */
	size_t len;
	struct ynode **kids; /* SEQ: items; MAP: key, value, key, value ... (keys are scalars) */
	size_t n, cap;
};

/* Parses one YAML document. *root is NULL for an empty stream. Aliases are refused (no
 * expansion, no billion laughs); depth and node count are capped. 0, or -1 with one line
 * "name:line:col: ..." in err. */
int ytree_parse(const char *name, const char *data, size_t len, struct ynode **root,
                struct ward_err *err);
void ytree_free(struct ynode *n);
/* A plain empty scalar, "~" or "null": YAML's nothing (also a key with no value). */
bool ynode_is_null(const struct ynode *n);

/* Decoding context: where messages go and how many problems were found. */
struct conf_dctx {
	const char *file;
	struct ward_err *err;
	int nerr;
};

/* Reports one problem "file:line:col: path: msg" at node at (1:1 when NULL). */
void conf_dctx_error(struct conf_dctx *c, const struct ynode *at, const char *path, const char *fmt,
                     ...) WARD_PRINTF(4, 5);
/* Decodes map (a mapping node, or NULL/null when absent: defaults only) into obj, a
 * zeroed struct of s->size bytes. key is the node naming the object (for positions; may
 * be NULL), where is used for positions when the object is absent. present: required keys
 * are enforced only when the object itself was written. */
void conf_decode_object(struct conf_dctx *c, const struct conf_schema *s, const struct ynode *key,
                        const struct ynode *map, const struct ynode *where, const char *path,
                        void *obj, bool present, bool secret);
/* Adds "(n more problems not shown)" if needed; 0 when no problem was found, else -1. */
int conf_dctx_finish(struct conf_dctx *c);
/* Appends msg to err as a new line (sets it when err is empty). */
void conf_err_line(struct ward_err *err, const char *fmt, ...) WARD_PRINTF(2, 3);
/* Closest candidate within a small edit distance, or NULL. */
const char *conf_suggest(const char *word, const char *const *cands, size_t n);

#endif
