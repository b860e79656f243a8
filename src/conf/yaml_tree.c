/* yaml_tree.c: YAML text -> a tree of ynodes, using libyaml's event parser.
 *
 * The tree keeps only what decoding needs: kind, 1-based line:column, scalar text and
 * whether it was plain. Hostile input is bounded here: aliases are refused outright (so
 * "billion laughs" cannot expand), nesting is capped at CONF_MAX_DEPTH and the node count
 * at CONF_MAX_NODES; callers cap the input size. Mapping keys must be scalars.
 * Called by decode.c (defaults) and registry.c (files and buffers).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf_internal.h"

struct tbuild {
	const char *name;
	const char *data;
	size_t len;
	struct ynode *stack[CONF_MAX_DEPTH];
	int depth;
	struct ynode *root;
	size_t nodes;
	int ndocs;
	struct ward_err *err;
};

void ytree_free(struct ynode *n) {
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ytree_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

bool ynode_is_null(const struct ynode *n) {
	if (!n)
		return true;
	if (n->kind != YNODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || ward_streq(n->str, "~") || ward_streq(n->str, "null") ||
	       ward_streq(n->str, "Null") || ward_streq(n->str, "NULL");
}

static void terr(struct tbuild *t, const yaml_mark_t *m, const char *fmt, ...) WARD_PRINTF(3, 4);
static void terr(struct tbuild *t, const yaml_mark_t *m, const char *fmt, ...) {
	struct buf b = BUF_INIT;
	va_list ap;

	buf_printf(&b, "%s:%zu:%zu: ", t->name, m->line + 1, m->column + 1);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	ward_err_set(t->err, "%s", buf_cstr(&b));
	buf_free(&b);
}

static struct ynode *node_new(struct tbuild *t, enum ynode_kind kind, const yaml_mark_t *m) {
	struct ynode *n;

	if (t->nodes >= CONF_MAX_NODES) {
		terr(t, m, "more than %d YAML nodes; this is not a configuration file ward can use",
		     CONF_MAX_NODES);
		return NULL;
	}
	t->nodes++;
	n = ward_xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

/* Hangs n under the innermost open collection (or makes it the root). Takes ownership. */
static int attach(struct tbuild *t, struct ynode *n, const yaml_mark_t *m) {
	struct ynode *p;

	if (t->depth == 0) {
		if (t->root) { /* cannot happen with one document; be safe */
			ytree_free(n);
			terr(t, m, "more than one top-level value");
			return -1;
		}
		t->root = n;
		return 0;
	}
	p = t->stack[t->depth - 1];
	if (p->kind == YNODE_MAP && p->n % 2 == 0 && n->kind != YNODE_SCALAR) {
		terr(t, m, "a mapping key must be a plain string, not a %s",
		     n->kind == YNODE_MAP ? "mapping" : "list");
		ytree_free(n);
		return -1;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->kids = ward_xrealloc(p->kids, p->cap * sizeof(*p->kids));
	}
	p->kids[p->n++] = n;
	return 0;
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset, not a mark. */
static void offset_to_mark(const char *data, size_t len, size_t off, yaml_mark_t *m) {
	size_t line = 0, col = 0;

	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (data[i] == '\n') {
			line++;
			col = 0;
		} else if (((unsigned char)data[i] & 0xC0) != 0x80) {
			col++;
		}
	}
	m->line = line;
	m->column = col;
	m->index = off;
}

static void syntax_error(struct tbuild *t, const yaml_parser_t *p) {
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem ? p->problem : "cannot parse";

	if (p->error == YAML_MEMORY_ERROR) {
		ward_err_set(t->err, "%s: out of memory while parsing YAML", t->name);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(t->data, t->len, p->problem_offset, &m);
		terr(t, &m,
		     "cannot read YAML: %s; the file must be UTF-8 text without control "
		     "characters",
		     problem);
		return;
	}
	if (p->context)
		terr(t, &m, "YAML syntax error: %s (%s at line %zu); check indentation and quoting",
		     problem, p->context, p->context_mark.line + 1);
	else
		terr(t, &m, "YAML syntax error: %s; check indentation and quoting", problem);
}

/* Handles one event. 1 at the end of the stream, 0 to go on, -1 on error. */
static int on_event(struct tbuild *t, const yaml_event_t *ev) {
	const yaml_mark_t *m = &ev->start_mark;
	struct ynode *n;

	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (t->ndocs++ > 0) {
			terr(t, m,
			     "a second YAML document (\"---\"); ward reads only one per file");
			return -1;
		}
		return 0;
	case YAML_ALIAS_EVENT:
		terr(t, m, "YAML aliases (*%s) are not supported; write the value out instead",
		     (const char *)ev->data.alias.anchor);
		return -1;
	case YAML_SCALAR_EVENT:
		n = node_new(t, YNODE_SCALAR, m);
		if (!n)
			return -1;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->len = ev->data.scalar.length;
		/* not ward_strndup: it stops at a NUL, and "\0" escapes can put one inside */
		n->str = ward_xmalloc(n->len + 1);
		memcpy(n->str, ev->data.scalar.value, n->len);
		n->str[n->len] = '\0';
		return attach(t, n, m);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (t->depth >= CONF_MAX_DEPTH) {
			terr(t, m, "nested deeper than %d levels", CONF_MAX_DEPTH);
			return -1;
		}
		n = node_new(t, ev->type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ, m);
		if (!n)
			return -1;
		if (attach(t, n, m) < 0)
			return -1;
		t->stack[t->depth++] = n;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (t->depth > 0)
			t->depth--;
		return 0;
	default:
		return 0;
	}
}

int ytree_parse(const char *name, const char *data, size_t len, struct ynode **root,
                struct ward_err *err) {
	struct tbuild t = {.name = name, .data = data, .len = len, .err = err};
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = -1;

	*root = NULL;
	if (len > CONF_MAX_FILE_BYTES) {
		ward_err_set(err,
		             "%s: %zu bytes is larger than the %u bytes a configuration may have",
		             name, len, CONF_MAX_FILE_BYTES);
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		ward_err_set(err, "%s: out of memory while parsing YAML", name);
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	for (;;) {
		int r;

		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(&t, &p);
			goto out;
		}
		r = on_event(&t, &ev);
		yaml_event_delete(&ev);
		if (r < 0)
			goto out;
		if (r > 0)
			break;
	}
	rc = 0;
out:
	yaml_parser_delete(&p);
	if (rc < 0) {
		ytree_free(t.root);
		return -1;
	}
	*root = t.root;
	return 0;
}
