/* decode.c: schema-driven decoding of a ynode tree into a module's own struct.
 *
 * Every problem is reported (not only the first), one line each, as
 * "file:line:col: key.path: what is wrong; what to do". Errors about a key's value point at
 * the key, errors about list items at the item. Values of CONF_SECRET fields (and anything
 * under them) never appear in a message. A decoded object owns its strings and arrays;
 * conf_free_obj releases them, and is safe on a half-decoded object (each field is written
 * at most once). Called by registry.c (sections) and conf_decode_buffer/file (other files).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_internal.h"

#define SHOW_MAX 48 /* bytes of a bad value quoted back in a message */

void conf_err_line(struct ward_err *err, const char *fmt, ...) {
	struct buf b = BUF_INIT;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (ward_err_isset(err))
		ward_err_append(err, "%s", buf_cstr(&b));
	else
		ward_err_set(err, "%s", buf_cstr(&b));
	buf_free(&b);
}

void conf_error_at(struct ward_err *err, const struct conf_pos *pos, const char *fmt, ...) {
	struct buf b = BUF_INIT;
	va_list ap;

	if (pos)
		buf_printf(&b, "%s:%d:%d: ", pos->file ? pos->file : "?", pos->line, pos->col);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	conf_err_line(err, "%s", buf_cstr(&b));
	buf_free(&b);
}

void conf_dctx_error(struct conf_dctx *c, const struct ynode *at, const char *path, const char *fmt,
                     ...) {
	struct buf b = BUF_INIT;
	va_list ap;

	if (++c->nerr > CONF_MAX_REPORTED)
		return;
	buf_printf(&b, "%s:%d:%d: ", c->file, at ? at->line : 1, at ? at->col : 1);
	if (path && *path)
		buf_printf(&b, "%s: ", path);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	conf_err_line(c->err, "%s", buf_cstr(&b));
	buf_free(&b);
}

int conf_dctx_finish(struct conf_dctx *c) {
	if (c->nerr > CONF_MAX_REPORTED)
		conf_err_line(c->err, "%s: %d more problems not shown; fix the ones above first",
		              c->file, c->nerr - CONF_MAX_REPORTED);
	return c->nerr ? -1 : 0;
}

/* Levenshtein distance, capped inputs (keys are short). */
static size_t edit_distance(const char *a, const char *b) {
	size_t la = strlen(a), lb = strlen(b), prev[65], cur[65];

	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t best = del < ins ? del : ins;

			cur[j] = best < sub ? best : sub;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

const char *conf_suggest(const char *word, const char *const *cands, size_t n) {
	const char *best = NULL;
	size_t best_d = (size_t)-1, limit = strlen(word) <= 4 ? 1 : 2;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, cands[i]);

		if (d <= limit && d < best_d) {
			best = cands[i];
			best_d = d;
		}
	}
	return best;
}

/* Quotes s for a message: escaped, shortened, or "[redacted]". */
static void put_quoted(struct buf *b, const char *s, size_t n, bool secret) {
	size_t shown = n;

	if (secret) {
		buf_puts(b, "[redacted]");
		return;
	}
	if (shown > SHOW_MAX) {
		shown = SHOW_MAX;
		while (shown > 0 && ((unsigned char)s[shown] & 0xC0) == 0x80)
			shown--; /* do not cut a UTF-8 sequence */
	}
	buf_putc(b, '"');
	for (size_t i = 0; i < shown; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			buf_printf(b, "\\%c", ch);
		else if (ch == '\n')
			buf_puts(b, "\\n");
		else if (ch < 0x20 || ch == 0x7f)
			buf_printf(b, "\\x%02x", ch);
		else
			buf_putc(b, (char)ch);
	}
	buf_putc(b, '"');
	if (shown < n)
		buf_puts(b, "...");
}

/* "a mapping", "a list", "nothing" or the quoted scalar: what the user wrote. */
static const char *describe(struct buf *b, const struct ynode *v, bool secret) {
	buf_reset(b);
	if (ynode_is_null(v))
		buf_puts(b, "nothing");
	else if (v->kind == YNODE_MAP)
		buf_puts(b, "a mapping");
	else if (v->kind == YNODE_SEQ)
		buf_puts(b, "a list");
	else
		put_quoted(b, v->str, v->len, secret);
	return buf_cstr(b);
}

static void child_path(struct buf *b, const char *path, const char *key) {
	buf_reset(b);
	if (path && *path)
		buf_printf(b, "%s.%s", path, key);
	else
		buf_puts(b, key);
}

static bool valid_env_name(const char *s, size_t n) {
	if (n == 0 ||
	    !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char ch = s[i];

		if (!(ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9')))
			return false;
	}
	return true;
}

/* ${NAME}, ${NAME:-default} (default also when NAME is empty, as in sh) and $$ -> $.
 * Any other "$" is literal. 0 with *out (new string), or -1 after reporting. */
static int subst_env(struct conf_dctx *c, const struct ynode *at, const char *path, const char *s,
                     size_t n, char **out) {
	struct buf b = BUF_INIT;
	size_t i = 0;

	while (i < n) {
		const char *close, *name, *def = NULL, *val;
		size_t name_len, def_len = 0;
		char *name_z;

		if (s[i] != '$' || i + 1 >= n || (s[i + 1] != '$' && s[i + 1] != '{')) {
			buf_putc(&b, s[i++]);
			continue;
		}
		if (s[i + 1] == '$') {
			buf_putc(&b, '$');
			i += 2;
			continue;
		}
		close = memchr(s + i + 2, '}', n - i - 2);
		if (!close) {
			conf_dctx_error(c, at, path,
			                "\"${\" without a closing \"}\"; write ${NAME} or "
			                "${NAME:-default}, or $$ for a literal $");
			goto fail;
		}
		name = s + i + 2;
		name_len = (size_t)(close - name);
		for (size_t k = 0; k + 1 < name_len; k++) {
			if (name[k] == ':' && name[k + 1] == '-') {
				def = name + k + 2;
				def_len = name_len - k - 2;
				name_len = k;
				break;
			}
		}
		if (!valid_env_name(name, name_len)) {
			struct buf q = BUF_INIT;

			put_quoted(&q, name, name_len, false);
			conf_dctx_error(c, at, path,
			                "%s is not an environment variable name; write ${NAME} or "
			                "${NAME:-default} (letters, digits, _)",
			                buf_cstr(&q));
			buf_free(&q);
			goto fail;
		}
		name_z = ward_strndup(name, name_len);
		val = getenv(name_z);
		if (val && *val) {
			buf_puts(&b, val);
		} else if (def) {
			buf_append(&b, def, def_len);
		} else if (val) {
			/* set but empty, no default: empty is what the user asked for */
		} else {
			conf_dctx_error(c, at, path,
			                "environment variable %s is not set; set it or write "
			                "${%s:-default}",
			                name_z, name_z);
			free(name_z);
			goto fail;
		}
		free(name_z);
		i = (size_t)(close - s) + 1;
	}
	*out = buf_detach(&b);
	return 0;
fail:
	buf_free(&b);
	return -1;
}

/* The text of scalar v after substitution (new string), or NULL after reporting. */
static char *scalar_text(struct conf_dctx *c, const struct ynode *at, const char *path,
                         const struct ynode *v, const char *expected, bool secret) {
	char *out = NULL;

	if (v->kind != YNODE_SCALAR) {
		struct buf d = BUF_INIT;

		conf_dctx_error(c, at, path, "expected %s, got %s", expected,
		                describe(&d, v, secret));
		buf_free(&d);
		return NULL;
	}
	if (memchr(v->str, '\0', v->len)) {
		conf_dctx_error(c, at, path, "the value contains a NUL character (\\0)");
		return NULL;
	}
	if (subst_env(c, at, path, v->str, v->len, &out) < 0)
		return NULL;
	return out;
}

static const char *type_name(const struct conf_field *f) {
	switch (f->type) {
	case CONF_STR:
		return "a string";
	case CONF_INT:
		return "an integer";
	case CONF_FLOAT:
		return "a number";
	case CONF_BOOL:
		return "true or false";
	case CONF_DURATION:
		return "a duration (like 500ms, 30s, 5m, 1h30m)";
	case CONF_SIZE:
		return "a size (like 4096, 10KB, 512MiB)";
	case CONF_ENUM:
		return "one of the listed names";
	case CONF_STRLIST:
		return "a list of strings";
	case CONF_STRMAP:
		return "a mapping of names to strings";
	case CONF_OBJ:
		return "a mapping";
	case CONF_OBJLIST:
		return "a list of mappings";
	}
	return "a value";
}

static void fmt_limit(const struct conf_field *f, double v, char out[48]) {
	if (f->type == CONF_DURATION && fabs(v) < 9.2e18)
		ward_fmt_duration((int64_t)v, out);
	else if (f->type == CONF_SIZE && fabs(v) < 9.2e18)
		ward_fmt_size((int64_t)v, out);
	else
		snprintf(out, 48, "%.15g", v);
}

static int check_range(struct conf_dctx *c, const struct ynode *at, const char *path,
                       const struct conf_field *f, double v, const char *text, bool secret) {
	char lo[48], hi[48];
	struct buf q = BUF_INIT;

	if (!(f->flags & CONF_RANGE) || (v >= f->min && v <= f->max))
		return 0;
	fmt_limit(f, f->min, lo);
	fmt_limit(f, f->max, hi);
	put_quoted(&q, text, strlen(text), secret);
	conf_dctx_error(c, at, path, "%s is out of range; it must be between %s and %s",
	                buf_cstr(&q), lo, hi);
	buf_free(&q);
	return -1;
}

static int parse_int(const char *s, int64_t *out) {
	char *end;
	long long v;

	if (!*s || (s[0] != '-' && s[0] != '+' && (s[0] < '0' || s[0] > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out) {
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
	                                                                       "off"};

	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static void bad_value(struct conf_dctx *c, const struct ynode *at, const char *path,
                      const char *expected, const char *text, bool secret) {
	struct buf q = BUF_INIT;

	put_quoted(&q, text, strlen(text), secret);
	conf_dctx_error(c, at, path, "expected %s, got %s", expected, buf_cstr(&q));
	buf_free(&q);
}

/* base's duration/size parsers explain themselves (quoting the value): use their words
 * unless the value is secret. */
static void bad_parse(struct conf_dctx *c, const struct ynode *at, const char *path,
                      const char *expected, const char *text, const struct ward_err *e,
                      bool secret) {
	if (secret || !ward_err_isset(e))
		bad_value(c, at, path, expected, text, secret);
	else
		conf_dctx_error(c, at, path, "%s", e->msg);
}

/* Decodes a scalar-typed field (STR .. ENUM) from text into dst. */
static void decode_scalar(struct conf_dctx *c, const struct conf_field *f, const struct ynode *at,
                          const char *path, char *text, void *dst, bool secret) {
	struct ward_err e;
	int64_t i64;
	double d;
	char *end;
	bool b;

	ward_err_clear(&e);
	switch (f->type) {
	case CONF_STR:
		*(char **)dst = text;
		return;
	case CONF_INT:
		if (parse_int(text, &i64) < 0)
			bad_value(c, at, path, "an integer", text, secret);
		else if (check_range(c, at, path, f, (double)i64, text, secret) == 0)
			*(int64_t *)dst = i64;
		break;
	case CONF_FLOAT:
		errno = 0;
		d = *text ? strtod(text, &end) : 0;
		if (!*text || *end || errno == ERANGE || !isfinite(d))
			bad_value(c, at, path, "a finite number", text, secret);
		else if (check_range(c, at, path, f, d, text, secret) == 0)
			*(double *)dst = d;
		break;
	case CONF_BOOL:
		if (parse_bool(text, &b) < 0)
			bad_value(c, at, path, "true or false (or yes/no, on/off)", text, secret);
		else
			*(bool *)dst = b;
		break;
	case CONF_DURATION:
		if (ward_parse_duration(text, strlen(text), &i64, &e) < 0)
			bad_parse(c, at, path, "a duration (like 500ms, 30s, 5m, 1h30m)", text, &e,
			          secret);
		else if (check_range(c, at, path, f, (double)i64, text, secret) == 0)
			*(int64_t *)dst = i64;
		break;
	case CONF_SIZE:
		if (ward_parse_size(text, strlen(text), &i64, &e) < 0)
			bad_parse(c, at, path, "a size (like 4096, 10KB, 512MiB)", text, &e,
			          secret);
		else if (check_range(c, at, path, f, (double)i64, text, secret) == 0)
			*(int64_t *)dst = i64;
		break;
	case CONF_ENUM: {
		struct buf names = BUF_INIT;
		size_t k;

		for (k = 0; f->enum_names && f->enum_names[k]; k++) {
			if (!strcasecmp(text, f->enum_names[k])) {
				*(int *)dst = (int)k;
				break;
			}
		}
		if (f->enum_names && f->enum_names[k])
			break;
		buf_puts(&names, "one of ");
		for (k = 0; f->enum_names && f->enum_names[k]; k++)
			buf_printf(&names, "%s%s", k ? ", " : "", f->enum_names[k]);
		bad_value(c, at, path, buf_cstr(&names), text, secret);
		buf_free(&names);
		break;
	}
	default:
		break;
	}
	free(text);
}

struct keyref {
	const struct ynode *k;
	size_t i;
};

static int keyref_cmp(const void *pa, const void *pb) {
	const struct keyref *a = pa, *b = pb;
	size_t n = a->k->len < b->k->len ? a->k->len : b->k->len;
	int r = memcmp(a->k->str, b->k->str, n);

	if (r)
		return r;
	if (a->k->len != b->k->len)
		return a->k->len < b->k->len ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

static void decode_strmap(struct conf_dctx *c, const struct conf_field *f, const struct ynode *at,
                          const char *path, const struct ynode *v, void *obj, bool secret) {
	size_t npairs = v->n / 2, count = 0;
	struct keyref *refs = ward_xcalloc(npairs ? npairs : 1, sizeof(*refs));
	bool *dup = ward_xcalloc(npairs ? npairs : 1, sizeof(*dup));
	struct conf_kv *kv = ward_xcalloc(npairs ? npairs : 1, sizeof(*kv));
	struct buf p = BUF_INIT;

	for (size_t i = 0; i < npairs; i++)
		refs[i] = (struct keyref){v->kids[2 * i], i};
	qsort(refs, npairs, sizeof(*refs), keyref_cmp);
	for (size_t i = 1; i < npairs; i++) {
		if (refs[i].k->len == refs[i - 1].k->len &&
		    !memcmp(refs[i].k->str, refs[i - 1].k->str, refs[i].k->len)) {
			size_t first = i - 1;

			while (first > 0 && refs[first - 1].k->len == refs[i].k->len &&
			       !memcmp(refs[first - 1].k->str, refs[i].k->str, refs[i].k->len))
				first--;
			dup[refs[i].i] = true;
			child_path(&p, path, refs[i].k->str);
			conf_dctx_error(c, refs[i].k, buf_cstr(&p),
			                "duplicate key (first written at line %d); remove one",
			                refs[first].k->line);
		}
	}
	for (size_t i = 0; i < npairs; i++) {
		const struct ynode *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
		char *text;

		if (dup[i])
			continue;
		child_path(&p, path, k->str);
		if (memchr(k->str, '\0', k->len)) {
			conf_dctx_error(c, k, path, "a key contains a NUL character (\\0)");
			continue;
		}
		if (ynode_is_null(val)) {
			text = ward_strdup("");
		} else {
			text = scalar_text(c, k, buf_cstr(&p), val, "a string", secret);
			if (!text)
				continue;
		}
		kv[count].key = ward_strdup(k->str);
		kv[count].value = text;
		count++;
	}
	*(struct conf_kv **)((char *)obj + f->offset) = kv;
	*(size_t *)((char *)obj + f->count_offset) = count;
	(void)at;
	buf_free(&p);
	free(refs);
	free(dup);
}

static void decode_field(struct conf_dctx *c, const struct conf_field *f, const struct ynode *key,
                         const struct ynode *v, const char *path, void *obj, bool secret) {
	const struct ynode *at = key ? key : v;
	void *dst = (char *)obj + f->offset;
	struct buf p = BUF_INIT, d = BUF_INIT;
	char *text;

	switch (f->type) {
	case CONF_STR:
	case CONF_INT:
	case CONF_FLOAT:
	case CONF_BOOL:
	case CONF_DURATION:
	case CONF_SIZE:
	case CONF_ENUM:
		text = scalar_text(c, at, path, v, type_name(f), secret);
		if (text)
			decode_scalar(c, f, at, path, text, dst, secret);
		break;
	case CONF_STRLIST: {
		char **list;
		size_t count = 0;

		if (v->kind == YNODE_MAP) {
			conf_dctx_error(c, at, path, "expected a list of strings, got a mapping");
			break;
		}
		if (v->kind == YNODE_SCALAR) { /* "x" is accepted as ["x"] */
			text = scalar_text(c, at, path, v, "a string", secret);
			if (!text)
				break;
			list = ward_xcalloc(1, sizeof(*list));
			list[count++] = text;
		} else {
			list = ward_xcalloc(v->n ? v->n : 1, sizeof(*list));
			for (size_t i = 0; i < v->n; i++) {
				buf_reset(&p);
				buf_printf(&p, "%s[%zu]", path, i);
				if (ynode_is_null(v->kids[i])) {
					conf_dctx_error(c, v->kids[i], buf_cstr(&p),
					                "expected a string, got nothing");
					continue;
				}
				text = scalar_text(c, v->kids[i], buf_cstr(&p), v->kids[i],
				                   "a string", secret);
				if (text)
					list[count++] = text;
			}
		}
		*(char ***)dst = list;
		*(size_t *)((char *)obj + f->count_offset) = count;
		break;
	}
	case CONF_STRMAP:
		if (v->kind != YNODE_MAP) {
			conf_dctx_error(c, at, path,
			                "expected a mapping of names to strings, got %s",
			                describe(&d, v, secret));
			break;
		}
		decode_strmap(c, f, at, path, v, obj, secret);
		break;
	case CONF_OBJ:
		if (!f->sub)
			break;
		conf_decode_object(c, f->sub, key, v, NULL, path, dst, true, secret);
		break;
	case CONF_OBJLIST: {
		char *arr;
		size_t count = 0;

		if (!f->sub)
			break;
		if (v->kind != YNODE_SEQ) {
			conf_dctx_error(
			        c, at, path,
			        "expected a list of mappings (each item starting with \"- \"), "
			        "got %s",
			        describe(&d, v, secret));
			break;
		}
		arr = ward_xcalloc(v->n ? v->n : 1, f->sub->size ? f->sub->size : 1);
		for (size_t i = 0; i < v->n; i++) {
			buf_reset(&p);
			buf_printf(&p, "%s[%zu]", path, i);
			if (v->kids[i]->kind != YNODE_MAP) {
				conf_dctx_error(c, v->kids[i], buf_cstr(&p),
				                "expected a mapping, got %s",
				                describe(&d, v->kids[i], secret));
				continue;
			}
			conf_decode_object(c, f->sub, NULL, v->kids[i], NULL, buf_cstr(&p),
			                   arr + count * f->sub->size, true, secret);
			count++;
		}
		*(void **)dst = arr;
		*(size_t *)((char *)obj + f->count_offset) = count;
		break;
	}
	}
	buf_free(&p);
	buf_free(&d);
}

/* Applies field->defval (YAML text, decoded by the same code) to an absent field. */
static void decode_default(struct conf_dctx *c, const struct conf_field *f,
                           const struct ynode *where, const char *path, void *obj, bool secret) {
	struct ward_err e;
	struct ynode *root = NULL;
	struct buf name = BUF_INIT;
	const char *saved = c->file;

	ward_err_clear(&e);
	buf_printf(&name, "<default of %s>", path);
	if (ytree_parse(buf_cstr(&name), f->defval, strlen(f->defval), &root, &e) < 0) {
		c->nerr++;
		conf_err_line(c->err, "%s", e.msg);
		goto out;
	}
	if (ynode_is_null(root)) {
		if (f->type == CONF_OBJ && f->sub)
			conf_decode_object(c, f->sub, NULL, NULL, where, path,
			                   (char *)obj + f->offset, false, secret);
		goto out;
	}
	c->file = buf_cstr(&name);
	decode_field(c, f, NULL, root, path, obj, secret);
	c->file = saved;
out:
	ytree_free(root);
	buf_free(&name);
}

static void unknown_key(struct conf_dctx *c, const struct conf_schema *s, const struct ynode *k,
                        const char *path) {
	struct buf msg = BUF_INIT, p = BUF_INIT;
	const char *cands[128] = {0};
	size_t n = 0;
	const char *sugg;

	for (const struct conf_field *f = s->fields; f && f->key && n < 128; f++)
		cands[n++] = f->key;
	sugg = conf_suggest(k->str, cands, n);
	buf_puts(&msg, "unknown key");
	if (sugg)
		buf_printf(&msg, " (did you mean \"%s\"?)", sugg);
	if (n == 0) {
		buf_puts(&msg, "; nothing may be set here");
	} else {
		buf_puts(&msg, "; known keys here: ");
		for (size_t i = 0; i < n; i++)
			buf_printf(&msg, "%s%s", i ? ", " : "", cands[i]);
	}
	buf_reset(&p);
	if (memchr(k->str, '\0', k->len)) {
		buf_puts(&p, path);
	} else {
		struct buf q = BUF_INIT;

		put_quoted(&q, k->str, k->len, false);
		/* show odd keys quoted so the message stays readable */
		child_path(&p, path,
		           k->len && k->len <= SHOW_MAX && !strpbrk(k->str, " \t\r\n\"\\")
		                   ? k->str
		                   : buf_cstr(&q));
		buf_free(&q);
	}
	conf_dctx_error(c, k, buf_cstr(&p), "%s", buf_cstr(&msg));
	buf_free(&msg);
	buf_free(&p);
}

void conf_decode_object(struct conf_dctx *c, const struct conf_schema *s, const struct ynode *key,
                        const struct ynode *map, const struct ynode *where, const char *path,
                        void *obj, bool present, bool secret) {
	const struct ynode **keyof = NULL, **valof = NULL;
	const struct ynode *pos;
	struct buf p = BUF_INIT, d = BUF_INIT;
	size_t nf = 0;

	if (ynode_is_null(map))
		map = NULL;
	pos = map ? map : key ? key : where;
	if (map && map->kind != YNODE_MAP) {
		conf_dctx_error(c, key ? key : map, path,
		                "expected a mapping (key: value lines), got %s",
		                describe(&d, map, secret));
		goto out;
	}
	if (map)
		present = true;
	for (const struct conf_field *f = s->fields; f && f->key; f++)
		nf++;
	keyof = ward_xcalloc(nf ? nf : 1, sizeof(*keyof));
	valof = ward_xcalloc(nf ? nf : 1, sizeof(*valof));
	for (size_t i = 0; map && i + 1 < map->n; i += 2) {
		const struct ynode *k = map->kids[i];
		size_t idx;

		for (idx = 0; idx < nf; idx++)
			if (strlen(k->str) == k->len && !strcmp(k->str, s->fields[idx].key))
				break;
		if (idx == nf) {
			unknown_key(c, s, k, path);
			continue;
		}
		if (keyof[idx]) {
			child_path(&p, path, s->fields[idx].key);
			conf_dctx_error(c, k, buf_cstr(&p),
			                "duplicate key (first written at line %d); remove one",
			                keyof[idx]->line);
			continue;
		}
		keyof[idx] = k;
		valof[idx] = map->kids[i + 1];
	}
	for (size_t idx = 0; idx < nf; idx++) {
		const struct conf_field *f = &s->fields[idx];
		bool fsecret = secret || (f->flags & CONF_SECRET);

		child_path(&p, path, f->key);
		if (valof[idx] && !ynode_is_null(valof[idx])) {
			decode_field(c, f, keyof[idx], valof[idx], buf_cstr(&p), obj, fsecret);
		} else if ((f->flags & CONF_REQUIRED) && present) {
			if (keyof[idx])
				conf_dctx_error(c, keyof[idx], buf_cstr(&p),
				                "required key has no value; expected %s",
				                type_name(f));
			else
				conf_dctx_error(c, pos, buf_cstr(&p),
				                "required key is missing; add \"%s:\" with %s",
				                f->key, type_name(f));
		} else if (f->defval) {
			decode_default(c, f, pos, buf_cstr(&p), obj, fsecret);
		} else if (f->type == CONF_OBJ && f->sub) {
			conf_decode_object(c, f->sub, keyof[idx], NULL, pos, buf_cstr(&p),
			                   (char *)obj + f->offset, false, fsecret);
		}
	}
	if (s->validate && c->err) {
		struct conf_pos cp = {c->file, pos ? pos->line : 1, pos ? pos->col : 1};
		size_t before = strlen(c->err->msg);

		if (s->validate(obj, &cp, c->err) != 0) {
			c->nerr++;
			if (strlen(c->err->msg) == before)
				conf_dctx_error(c, pos, path, "invalid (rejected by the %s check)",
				                s->name ? s->name : "schema");
		}
	}
out:
	free(keyof);
	free(valof);
	buf_free(&p);
	buf_free(&d);
}

void conf_free_obj(const struct conf_schema *schema, void *obj) {
	if (!schema || !obj)
		return;
	for (const struct conf_field *f = schema->fields; f && f->key; f++) {
		char *dst = (char *)obj + f->offset;

		switch (f->type) {
		case CONF_STR:
			free(*(char **)dst);
			*(char **)dst = NULL;
			break;
		case CONF_STRLIST: {
			char **list = *(char ***)dst;
			size_t *n = (size_t *)((char *)obj + f->count_offset);

			for (size_t i = 0; list && i < *n; i++)
				free(list[i]);
			free(list);
			*(char ***)dst = NULL;
			*n = 0;
			break;
		}
		case CONF_STRMAP: {
			struct conf_kv *kv = *(struct conf_kv **)dst;
			size_t *n = (size_t *)((char *)obj + f->count_offset);

			for (size_t i = 0; kv && i < *n; i++) {
				free(kv[i].key);
				free(kv[i].value);
			}
			free(kv);
			*(struct conf_kv **)dst = NULL;
			*n = 0;
			break;
		}
		case CONF_OBJ:
			conf_free_obj(f->sub, dst);
			break;
		case CONF_OBJLIST: {
			char *arr = *(char **)dst;
			size_t *n = (size_t *)((char *)obj + f->count_offset);

			for (size_t i = 0; arr && f->sub && i < *n; i++)
				conf_free_obj(f->sub, arr + i * f->sub->size);
			free(arr);
			*(char **)dst = NULL;
			*n = 0;
			break;
		}
		default:
			break;
		}
	}
}

int conf_decode_buffer(const char *name, const char *data, size_t len,
                       const struct conf_schema *schema, void *obj, struct ward_err *err) {
	struct ward_err local;
	struct conf_dctx c = {.file = name ? name : "<buffer>", .err = err ? err : &local};
	struct ynode *root = NULL;
	int rc;

	ward_err_clear(c.err);
	if (ytree_parse(c.file, data, len, &root, c.err) < 0)
		return -1;
	if (root && !ynode_is_null(root) && root->kind != YNODE_MAP) {
		struct buf d = BUF_INIT;

		conf_dctx_error(&c, root, NULL,
		                "the top level must be a mapping (key: value lines), "
		                "got %s",
		                describe(&d, root, false));
		buf_free(&d);
	} else {
		conf_decode_object(&c, schema, NULL, root, NULL, "", obj, true, false);
	}
	rc = conf_dctx_finish(&c);
	ytree_free(root);
	return rc;
}

int conf_decode_file(const char *path, const struct conf_schema *schema, void *obj,
                     struct ward_err *err) {
	char *data = NULL;
	size_t len = 0;
	int rc;

	if (ward_read_file(path, CONF_MAX_FILE_BYTES, &data, &len, err) < 0)
		return -1;
	rc = conf_decode_buffer(path, data, len, schema, obj, err);
	free(data);
	return rc;
}
