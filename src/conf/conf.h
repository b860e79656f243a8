/* conf.h: the one public header of src/conf: ward's configuration.
 *
 * One YAML file, validated against schemas that modules declare for themselves: the
 * loader knows sections only through conf_register_section(), never by name. Decoding is
 * schema-driven (offsets into the module's own struct), so every module gets the same
 * checks and error messages: unknown keys, wrong types, out-of-range values, each naming
 * file:line:column and the key path ("ward.yaml:12:5: server.limits.rate: ...").
 * Scalars may use ${ENV} / ${ENV:-default} substitution ("$$" is a literal "$").
 * Durations and sizes are parsed by base's ward_parse_duration / ward_parse_size.
 *
 * A loaded struct conf is immutable and reference counted: readers take a reference,
 * reload builds a new one and swaps it in whole, so no reader ever sees half a config.
 */
#ifndef WARD_CONF_H
#define WARD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

enum conf_type {
	CONF_STR,      /* char * (owned by the decoded object; NULL when absent, no default) */
	CONF_INT,      /* int64_t */
	CONF_FLOAT,    /* double */
	CONF_BOOL,     /* bool: true/false (also yes/no, on/off as YAML 1.1 people write) */
	CONF_DURATION, /* int64_t milliseconds */
	CONF_SIZE,     /* int64_t bytes */
	CONF_ENUM,     /* int: index into field->enum_names */
	CONF_STRLIST,  /* char ** array at offset, size_t count at count_offset */
	CONF_STRMAP,   /* struct conf_kv * array at offset, size_t count at count_offset */
	CONF_OBJ,      /* a struct of schema field->sub, inline at offset */
	CONF_OBJLIST,  /* void * array of field->sub->size elements at offset, count at count_offset */
};

/* Field flags. */
/* CONF_REQUIRED: the key must be present whenever the mapping holding it is written (an
 * absent section or optional object just gets its defaults). A key written with no value
 * ("key:", "~", "null") counts as absent everywhere. */
#define CONF_REQUIRED 0x1u /* the key must be present */
#define CONF_SECRET 0x2u   /* never printed (config dumps, error messages show "[redacted]") */
#define CONF_RANGE 0x4u    /* min/max below apply (for INT, FLOAT, DURATION in ms, SIZE in bytes) */

struct conf_kv {
	char *key;
	char *value;
};

/* Where a YAML node was found: 1-based line and column, plus its key path. */
struct conf_pos {
	const char *file;
	int line;
	int col;
};

struct conf_schema;

struct conf_field {
	const char *key;
	enum conf_type type;
	size_t offset;
	const char *defval; /* default as YAML text ("30s", "127.0.0.1:9797", "true"); NULL: zero */
	double min, max;    /* with CONF_RANGE */
	const char *const *enum_names;  /* CONF_ENUM: NULL-terminated */
	const struct conf_schema *sub;  /* CONF_OBJ, CONF_OBJLIST */
	size_t count_offset;            /* CONF_STRLIST, CONF_STRMAP, CONF_OBJLIST */
	unsigned flags;
	const char *help; /* one line, used by `ward config schema` and the docs */
};

struct conf_schema {
	const char *name; /* section key for top-level sections; type name for nested ones */
	size_t size;      /* sizeof the struct the fields decode into */
	const struct conf_field *fields; /* terminated by an entry with key == NULL */
	/* Optional cross-field check after decoding; report with conf_error_at(). 0 or -1. */
	int (*validate)(void *obj, const struct conf_pos *pos, struct ward_err *err);
};

/* ---- the section registry ----
 * Modules call this once at start (before any load), typically from their
 * <module>_register() function listed in the module table. The schema must outlive
 * every conf. Registering the same name twice returns -1. */
int conf_register_section(const struct conf_schema *schema);
/* For tests: forget every registered section. */
void conf_reset_registry(void);

/* ---- loading ---- */
struct conf;
/* Loads and validates path. On error returns NULL and err holds one line per problem
 * ("file:line:col: key.path: what is wrong; what to do"). Missing sections get their
 * defaults. */
struct conf *conf_load_file(const char *path, struct ward_err *err);
/* Same from memory; name is what error messages call the source ("<embedded default>"). */
struct conf *conf_load_buffer(const char *name, const char *data, size_t len, struct ward_err *err);
/* The embedded default configuration (YAML text) that `ward serve` uses with no file. */
extern const char conf_embedded_default[];

struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c); /* frees at zero; NULL-safe */
/* The decoded struct of a registered section (its defaults when absent from the file).
 * Borrowed: valid while the caller holds a reference to c. NULL if not registered. */
const void *conf_section(const struct conf *c, const char *name);
/* Where the configuration came from (a path or "<embedded default>"). */
const char *conf_source(const struct conf *c);

/* ---- decoding other YAML documents with the same machinery ----
 * Rule files, promtool test files and the like. obj must be zeroed memory of
 * schema->size bytes; on error it is left freeable with conf_free_obj. */
int conf_decode_file(const char *path, const struct conf_schema *schema, void *obj,
		     struct ward_err *err);
int conf_decode_buffer(const char *name, const char *data, size_t len,
		       const struct conf_schema *schema, void *obj, struct ward_err *err);
/* Frees what decoding allocated inside obj (not obj itself). */
void conf_free_obj(const struct conf_schema *schema, void *obj);

/* Appends "file:line:col: msg" to err; for validate callbacks. */
void conf_error_at(struct ward_err *err, const struct conf_pos *pos, const char *fmt, ...)
	WARD_PRINTF(3, 4);

/* Writes the registered schema as Markdown (the configuration reference in the docs). */
void conf_write_reference(struct buf *out);

#endif
