/* registry.c: the section registry, loading ward.yaml, and the immutable struct conf.
 *
 * Modules register their section schemas at start (single-threaded, before any load); a
 * load snapshots the registered sections, so a struct conf never depends on the registry
 * afterwards. A struct conf is never modified after conf_load_* returns it; its reference
 * count is atomic so any thread may ref/unref. Called by core (serve, reload) and the CLI
 * (config check, config schema).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_internal.h"

#define CONF_MAX_SECTIONS 128 /* far more modules than ward will ever have */

static const struct conf_schema *registry[CONF_MAX_SECTIONS];
static size_t nregistry;

struct conf {
	atomic_int refs;
	char *source;
	size_t n;
	const struct conf_schema **schemas;
	void **objs;
};

int conf_register_section(const struct conf_schema *schema) {
	if (!schema || !schema->name || nregistry == CONF_MAX_SECTIONS)
		return -1;
	for (size_t i = 0; i < nregistry; i++)
		if (!strcmp(registry[i]->name, schema->name))
			return -1;
	registry[nregistry++] = schema;
	return 0;
}

void conf_reset_registry(void) {
	nregistry = 0;
}

static void conf_free(struct conf *c) {
	for (size_t i = 0; i < c->n; i++) {
		conf_free_obj(c->schemas[i], c->objs[i]);
		free(c->objs[i]);
	}
	free(c->objs);
	free(c->schemas);
	free(c->source);
	free(c);
}

struct conf *conf_ref(struct conf *c) {
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void conf_unref(struct conf *c) {
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		conf_free(c);
}

const void *conf_section(const struct conf *c, const char *name) {
	for (size_t i = 0; c && name && i < c->n; i++)
		if (!strcmp(c->schemas[i]->name, name))
			return c->objs[i];
	return NULL;
}

const char *conf_source(const struct conf *c) {
	return c ? c->source : NULL;
}

static void unknown_section(struct conf_dctx *dc, const struct ynode *k) {
	struct buf msg = BUF_INIT;
	const char *names[CONF_MAX_SECTIONS] = {0};
	const char *sugg;

	for (size_t i = 0; i < nregistry; i++)
		names[i] = registry[i]->name;
	sugg = conf_suggest(k->str, names, nregistry);
	buf_puts(&msg, "unknown section");
	if (sugg)
		buf_printf(&msg, " (did you mean \"%s\"?)", sugg);
	if (nregistry == 0)
		buf_puts(&msg, "; no sections are known");
	else
		buf_puts(&msg, "; known sections: ");
	for (size_t i = 0; i < nregistry; i++)
		buf_printf(&msg, "%s%s", i ? ", " : "", names[i]);
	conf_dctx_error(dc, k, memchr(k->str, '\0', k->len) || k->len > 64 ? "(key)" : k->str, "%s",
	                buf_cstr(&msg));
	buf_free(&msg);
}

struct conf *conf_load_buffer(const char *name, const char *data, size_t len,
                              struct ward_err *err) {
	struct ward_err local;
	struct conf_dctx dc = {.file = name ? name : "<buffer>", .err = err ? err : &local};
	const struct ynode **keyof = NULL, **valof = NULL;
	struct ynode *root = NULL;
	struct conf *c = NULL;

	ward_err_clear(dc.err);
	if (ytree_parse(dc.file, data, len, &root, dc.err) < 0)
		return NULL;
	if (ynode_is_null(root)) {
		ytree_free(root);
		root = NULL;
	}
	if (root && root->kind != YNODE_MAP) {
		conf_dctx_error(&dc, root, NULL,
		                "the top level must be a mapping of sections (like \"server:\"), "
		                "got %s",
		                root->kind == YNODE_SEQ ? "a list" : "a single value");
		goto fail;
	}
	c = ward_xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->source = ward_strdup(dc.file);
	c->n = nregistry;
	c->schemas = ward_xcalloc(nregistry ? nregistry : 1, sizeof(*c->schemas));
	c->objs = ward_xcalloc(nregistry ? nregistry : 1, sizeof(*c->objs));
	keyof = ward_xcalloc(nregistry ? nregistry : 1, sizeof(*keyof));
	valof = ward_xcalloc(nregistry ? nregistry : 1, sizeof(*valof));
	for (size_t i = 0; root && i + 1 < root->n; i += 2) {
		const struct ynode *k = root->kids[i];
		size_t s;

		for (s = 0; s < nregistry; s++)
			if (strlen(k->str) == k->len && !strcmp(k->str, registry[s]->name))
				break;
		if (s == nregistry) {
			unknown_section(&dc, k);
		} else if (keyof[s]) {
			conf_dctx_error(&dc, k, registry[s]->name,
			                "duplicate section (first written at line %d); merge them",
			                keyof[s]->line);
		} else {
			keyof[s] = k;
			valof[s] = root->kids[i + 1];
		}
	}
	for (size_t s = 0; s < nregistry; s++) {
		c->schemas[s] = registry[s];
		c->objs[s] = ward_xcalloc(1, registry[s]->size ? registry[s]->size : 1);
		conf_decode_object(&dc, registry[s], keyof[s], valof[s], root, registry[s]->name,
		                   c->objs[s], false, false);
	}
	if (conf_dctx_finish(&dc) < 0)
		goto fail_reported;
	free(keyof);
	free(valof);
	ytree_free(root);
	return c;
fail:
	conf_dctx_finish(&dc);
fail_reported:
	free(keyof);
	free(valof);
	ytree_free(root);
	if (c)
		conf_free(c);
	return NULL;
}

struct conf *conf_load_file(const char *path, struct ward_err *err) {
	char *data = NULL;
	size_t len = 0;
	struct conf *c;

	if (ward_read_file(path, CONF_MAX_FILE_BYTES, &data, &len, err) < 0)
		return NULL;
	c = conf_load_buffer(path, data, len, err);
	free(data);
	return c;
}

/* ---- the Markdown reference ---- */

static void md_cell(struct buf *out, const char *s) {
	for (; s && *s; s++) {
		if (*s == '|')
			buf_puts(out, "\\|");
		else if (*s == '\n')
			buf_putc(out, ' ');
		else
			buf_putc(out, *s);
	}
}

static void md_limit(struct buf *out, const struct conf_field *f, double v) {
	char tmp[48];

	if (f->type == CONF_DURATION)
		ward_fmt_duration((int64_t)v, tmp);
	else if (f->type == CONF_SIZE)
		ward_fmt_size((int64_t)v, tmp);
	else
		snprintf(tmp, sizeof(tmp), "%.15g", v);
	buf_puts(out, tmp);
}

static void md_type(struct buf *out, const struct conf_field *f) {
	static const char *const names[] = {
	        [CONF_STR] = "string",
	        [CONF_INT] = "integer",
	        [CONF_FLOAT] = "number",
	        [CONF_BOOL] = "bool",
	        [CONF_DURATION] = "duration",
	        [CONF_SIZE] = "size",
	        [CONF_ENUM] = "enum",
	        [CONF_STRLIST] = "list of strings",
	        [CONF_STRMAP] = "map of strings",
	        [CONF_OBJ] = "object",
	        [CONF_OBJLIST] = "list of objects",
	};

	if (f->type == CONF_ENUM && f->enum_names) {
		for (size_t i = 0; f->enum_names[i]; i++)
			buf_printf(out, "%s`%s`", i ? " \\| " : "", f->enum_names[i]);
		return;
	}
	buf_puts(out, (unsigned)f->type < sizeof(names) / sizeof(names[0]) ? names[f->type] : "?");
}

static void md_fields(struct buf *out, const struct conf_schema *s, const char *prefix, int depth) {
	struct buf path = BUF_INIT;

	if (!s || depth > CONF_MAX_DEPTH)
		return;
	for (const struct conf_field *f = s->fields; f && f->key; f++) {
		buf_reset(&path);
		buf_printf(&path, "%s%s", prefix, f->key);
		buf_puts(out, "| `");
		md_cell(out, buf_cstr(&path));
		buf_puts(out, "` | ");
		md_type(out, f);
		buf_puts(out, " | ");
		if (f->defval && (f->flags & CONF_SECRET)) {
			buf_puts(out, "[redacted]");
		} else if (f->defval) {
			buf_putc(out, '`');
			md_cell(out, f->defval);
			buf_putc(out, '`');
		}
		buf_puts(out, " | ");
		if (f->flags & CONF_RANGE) {
			md_limit(out, f, f->min);
			buf_puts(out, " .. ");
			md_limit(out, f, f->max);
		}
		buf_puts(out, " | ");
		md_cell(out, f->help);
		if (f->flags & CONF_REQUIRED)
			buf_puts(out, " (required)");
		if (f->flags & CONF_SECRET)
			buf_puts(out, " (secret)");
		buf_puts(out, " |\n");
		if (f->type == CONF_OBJ) {
			buf_putc(&path, '.');
			md_fields(out, f->sub, buf_cstr(&path), depth + 1);
		} else if (f->type == CONF_OBJLIST) {
			buf_puts(&path, "[].");
			md_fields(out, f->sub, buf_cstr(&path), depth + 1);
		}
	}
	buf_free(&path);
}

void conf_write_reference(struct buf *out) {
	struct buf prefix = BUF_INIT;

	buf_puts(out, "# Configuration reference\n\n"
	              "Generated from the schemas ward's modules register. Durations are written "
	              "like `30s`, `5m`, `1h30m`; sizes like `4096`, `10KB`, `512MiB`. Any value "
	              "may use `${ENV}` or `${ENV:-default}`; `$$` is a literal `$`.\n");
	for (size_t i = 0; i < nregistry; i++) {
		const struct conf_schema *s = registry[i];

		buf_printf(out, "\n## `%s`\n\n", s->name);
		buf_puts(out, "| key | type | default | range | help |\n|---|---|---|---|---|\n");
		buf_reset(&prefix);
		buf_printf(&prefix, "%s.", s->name);
		md_fields(out, s, buf_cstr(&prefix), 0);
	}
	buf_free(&prefix);
}
