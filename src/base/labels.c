/* labels.c: label sets (series identity) and label matchers.
 *
 * Invariant of struct labels: pairs sorted by name (byte-wise), names unique, no empty
 * values (an empty value means "absent", as in Prometheus); the set owns its strings.
 * Matchers compile regexes with PCRE2 as ^(?:re)$ with DOLLAR_ENDONLY, so "a" never matches
 * "a\n" and the whole value must match, as Prometheus anchors Go regexps. Compiled patterns
 * are only read after init, and each match uses its own match data, so matching is
 * thread-safe. Callers: tsdb, promql, collectors, alerts, the API.
 */
#include "base/base.h"

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

void labels_init(struct labels *ls) {
	ls->v = NULL;
	ls->n = 0;
}

void labels_free(struct labels *ls) {
	size_t i;

	if (!ls)
		return;
	for (i = 0; i < ls->n; i++) {
		free(ls->v[i].name);
		free(ls->v[i].value);
	}
	free(ls->v);
	labels_init(ls);
}

size_t ward_sorted_find(const void *arr, size_t n, const char *key,
                        const char *(*key_at)(const void *arr, size_t i), bool *found) {
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key_at(arr, mid), key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static const char *label_name_at(const void *arr, size_t i) {
	return ((const struct label *)arr)[i].name;
}

/* Index of name, or of where it would be inserted; *found says which. */
static size_t labels_find(const struct labels *ls, const char *name, bool *found) {
	return ward_sorted_find(ls->v, ls->n, name, label_name_at, found);
}

void labels_del(struct labels *ls, const char *name) {
	bool found;
	size_t i = labels_find(ls, name, &found);

	if (!found)
		return;
	free(ls->v[i].name);
	free(ls->v[i].value);
	memmove(&ls->v[i], &ls->v[i + 1], (ls->n - i - 1) * sizeof(ls->v[0]));
	ls->n--;
}

void labels_set(struct labels *ls, const char *name, const char *value) {
	bool found;
	size_t i;

	if (!name)
		return;
	if (!value || !*value) {
		labels_del(ls, name);
		return;
	}
	i = labels_find(ls, name, &found);
	if (found) {
		char *v = ward_strdup(value);
		free(ls->v[i].value);
		ls->v[i].value = v;
		return;
	}
	ls->v = ward_xrealloc(ls->v, (ls->n + 1) * sizeof(ls->v[0]));
	memmove(&ls->v[i + 1], &ls->v[i], (ls->n - i) * sizeof(ls->v[0]));
	ls->v[i].name = ward_strdup(name);
	ls->v[i].value = ward_strdup(value);
	ls->n++;
}

const char *labels_get(const struct labels *ls, const char *name) {
	bool found;
	size_t i = labels_find(ls, name, &found);

	return found ? ls->v[i].value : NULL;
}

void labels_copy(struct labels *dst, const struct labels *src) {
	size_t i;

	if (dst == src)
		return;
	labels_free(dst);
	if (src->n == 0)
		return;
	dst->v = ward_xcalloc(src->n, sizeof(dst->v[0]));
	for (i = 0; i < src->n; i++) {
		dst->v[i].name = ward_strdup(src->v[i].name);
		dst->v[i].value = ward_strdup(src->v[i].value);
	}
	dst->n = src->n;
}

int labels_cmp(const struct labels *a, const struct labels *b) {
	size_t i, n = a->n < b->n ? a->n : b->n;
	int c;

	for (i = 0; i < n; i++) {
		c = strcmp(a->v[i].name, b->v[i].name);
		if (c)
			return c < 0 ? -1 : 1;
		c = strcmp(a->v[i].value, b->v[i].value);
		if (c)
			return c < 0 ? -1 : 1;
	}
	if (a->n == b->n)
		return 0;
	return a->n < b->n ? -1 : 1;
}

bool labels_equal(const struct labels *a, const struct labels *b) {
	return labels_cmp(a, b) == 0;
}

/* FNV-1a 64, with 0xff between strings as Prometheus separates them: no seed, so hashes
 * are the same in every run and may be stored. */
#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x100000001b3ULL

static uint64_t fnv_str(uint64_t h, const char *s) {
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		h ^= *p++;
		h *= FNV64_PRIME;
	}
	h ^= 0xff;
	h *= FNV64_PRIME;
	return h;
}

uint64_t labels_hash(const struct labels *ls) {
	uint64_t h = FNV64_OFFSET;
	size_t i;

	for (i = 0; i < ls->n; i++) {
		h = fnv_str(h, ls->v[i].name);
		h = fnv_str(h, ls->v[i].value);
	}
	return h;
}

static void put_escaped_value(struct buf *out, const char *s) {
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			buf_puts(out, "\\\\");
			break;
		case '"':
			buf_puts(out, "\\\"");
			break;
		case '\n':
			buf_puts(out, "\\n");
			break;
		default:
			buf_putc(out, *s);
		}
	}
}

void labels_write(struct buf *out, const struct labels *ls) {
	const char *name = labels_get(ls, "__name__");
	size_t i, written = 0;

	if (name)
		buf_puts(out, name);
	if (name && ls->n == 1)
		return;
	buf_putc(out, '{');
	for (i = 0; i < ls->n; i++) {
		if (strcmp(ls->v[i].name, "__name__") == 0)
			continue;
		if (written++)
			buf_putc(out, ',');
		buf_puts(out, ls->v[i].name);
		buf_puts(out, "=\"");
		put_escaped_value(out, ls->v[i].value);
		buf_putc(out, '"');
	}
	buf_putc(out, '}');
}

/* Wrapped around every regex; error offsets are reported relative to the caller's text. */
#define MATCHER_RE_PREFIX "^(?:"
#define MATCHER_RE_SUFFIX ")$"

int matcher_init(struct matcher *m, enum matcher_op op, const char *name, const char *value,
                 struct ward_err *err) {
	struct buf pat = BUF_INIT;
	pcre2_code *re;
	int errcode;
	PCRE2_SIZE erroff;
	PCRE2_UCHAR emsg[256];

	memset(m, 0, sizeof(*m));
	if (!value)
		value = "";
	m->op = op;
	m->name = ward_strdup(name ? name : "");
	m->value = ward_strdup(value);
	if (op != MATCH_RE && op != MATCH_NRE)
		return 0;
	buf_puts(&pat, MATCHER_RE_PREFIX);
	buf_puts(&pat, value);
	buf_puts(&pat, MATCHER_RE_SUFFIX);
	re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len,
	                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
	                   &erroff, NULL);
	if (!re) {
		size_t pre = strlen(MATCHER_RE_PREFIX), off = erroff > pre ? erroff - pre : 0;
		if (off > strlen(value))
			off = strlen(value);
		pcre2_get_error_message(errcode, emsg, sizeof(emsg));
		ward_err_set(err,
		             "invalid regular expression \"%s\" for label %s at offset %zu: "
		             "%s",
		             value, m->name, off, (const char *)emsg);
		buf_free(&pat);
		matcher_free(m);
		return -1;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; failure is harmless */
	m->re = re;
	buf_free(&pat);
	return 0;
}

void matcher_free(struct matcher *m) {
	if (!m)
		return;
	free(m->name);
	free(m->value);
	if (m->re)
		pcre2_code_free((pcre2_code *)m->re);
	m->name = NULL;
	m->value = NULL;
	m->re = NULL;
}

static bool re_matches(const struct matcher *m, const char *value) {
	pcre2_match_data *md;
	int rc;

	if (!m->re)
		return false;
	md = pcre2_match_data_create_from_pattern((pcre2_code *)m->re, NULL);
	if (!md)
		abort(); /* out of memory, as ward_xmalloc */
	rc = pcre2_match((pcre2_code *)m->re, (PCRE2_SPTR)value, strlen(value), 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

bool matcher_matches(const struct matcher *m, const char *value) {
	if (!value)
		value = "";
	switch (m->op) {
	case MATCH_EQ:
		return strcmp(m->value, value) == 0;
	case MATCH_NEQ:
		return strcmp(m->value, value) != 0;
	case MATCH_RE:
		return re_matches(m, value);
	case MATCH_NRE:
		return !re_matches(m, value);
	}
	return false;
}

const char *matcher_op_str(enum matcher_op op) {
	switch (op) {
	case MATCH_EQ:
		return "=";
	case MATCH_NEQ:
		return "!=";
	case MATCH_RE:
		return "=~";
	case MATCH_NRE:
		return "!~";
	}
	return "?";
}

static bool name_chars(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *c = s; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
			  (colon && *c == ':') || (c != s && *c >= '0' && *c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

bool labels_valid_name(const char *s)
{
	return name_chars(s, false);
}

bool labels_valid_metric_name(const char *s)
{
	return name_chars(s, true);
}
