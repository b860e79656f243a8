/* memstore.c: an in-memory series store behind struct promql_storage, and the loader of
 * promqltest / promtool "load" blocks ("metric{a="b"} 0+10x100 _ 5 stale").
 *
 * Each series keeps its samples sorted by time (an add at an existing time replaces the
 * value). select returns copies, sorted by label set, as tsdb_select does. Used by the
 * unit tests, `ward rules test` and anything that needs PromQL without a tsdb.
 */
#include "promql/promql_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mseries {
	struct labels ls;
	int64_t *t;
	double *v;
	size_t n, cap;
};

struct promql_memstore {
	struct mseries *s;
	size_t n, cap;
	struct strmap idx;
};

struct promql_memstore *promql_memstore_new(void) {
	return ward_xcalloc(1, sizeof(struct promql_memstore));
}

void promql_memstore_free(struct promql_memstore *m) {
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++) {
		labels_free(&m->s[i].ls);
		free(m->s[i].t);
		free(m->s[i].v);
	}
	free(m->s);
	strmap_free(&m->idx);
	free(m);
}

void promql_memstore_add(struct promql_memstore *m, const struct labels *ls, int64_t t_ms,
                         double v) {
	struct buf key = BUF_INIT;
	struct mseries *s;
	size_t i, pos;

	promql_labels_key(ls, &key);
	i = strmap_get(&m->idx, key.data, key.len);
	if (i == SIZE_MAX) {
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 16;
			m->s = ward_xrealloc(m->s, m->cap * sizeof(m->s[0]));
		}
		i = m->n++;
		memset(&m->s[i], 0, sizeof(m->s[i]));
		labels_copy(&m->s[i].ls, ls);
		strmap_put(&m->idx, key.data, key.len, i);
	}
	buf_free(&key);
	s = &m->s[i];
	pos = s->n;
	while (pos > 0 && s->t[pos - 1] > t_ms)
		pos--;
	if (pos > 0 && s->t[pos - 1] == t_ms) {
		s->v[pos - 1] = v;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->t = ward_xrealloc(s->t, s->cap * sizeof(s->t[0]));
		s->v = ward_xrealloc(s->v, s->cap * sizeof(s->v[0]));
	}
	memmove(&s->t[pos + 1], &s->t[pos], (s->n - pos) * sizeof(s->t[0]));
	memmove(&s->v[pos + 1], &s->v[pos], (s->n - pos) * sizeof(s->v[0]));
	s->t[pos] = t_ms;
	s->v[pos] = v;
	s->n++;
}

static int cmp_series(const void *a, const void *b) {
	return labels_cmp(&((const struct tsdb_series *)a)->labels,
	                  &((const struct tsdb_series *)b)->labels);
}

/* First index whose time is >= t. */
static size_t lower_bound(const int64_t *ts, size_t n, int64_t t) {
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ts[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int mem_select(void *ctx, int64_t mint, int64_t maxt, const struct matcher *ms, size_t nms,
                      int64_t step_hint_ms, struct tsdb_series **out, size_t *n,
                      struct ward_err *err) {
	struct promql_memstore *m = ctx;
	struct tsdb_series *r = NULL;
	size_t nr = 0, i, j;

	for (i = 0; i < m->n; i++) {
		struct mseries *s = &m->s[i];
		size_t lo = 0, hi;
		bool ok = true;
		for (j = 0; j < nms && ok; j++)
			ok = matcher_matches(&ms[j], labels_get(&s->ls, ms[j].name));
		if (!ok)
			continue;
		lo = lower_bound(s->t, s->n, mint);
		hi = lower_bound(s->t, s->n, maxt == INT64_MAX ? maxt : maxt + 1);
		if (hi == lo)
			continue;
		r = ward_xrealloc(r, (nr + 1) * sizeof(r[0]));
		memset(&r[nr], 0, sizeof(r[nr]));
		labels_copy(&r[nr].labels, &s->ls);
		r[nr].n = hi - lo;
		r[nr].t = ward_xmalloc(r[nr].n * sizeof(int64_t));
		r[nr].v = ward_xmalloc(r[nr].n * sizeof(double));
		memcpy(r[nr].t, s->t + lo, r[nr].n * sizeof(int64_t));
		memcpy(r[nr].v, s->v + lo, r[nr].n * sizeof(double));
		nr++;
	}
	if (nr > 1)
		qsort(r, nr, sizeof(r[0]), cmp_series);
	*out = r;
	*n = nr;
	return 0;
}

struct promql_storage promql_memstore_storage(struct promql_memstore *m) {
	struct promql_storage st = {mem_select, m};

	return st;
}

/* ---- load blocks ---- */

/* Parses "name{a="b",...}" at the start of s; *used is how many bytes it took. */
int promql_parse_series_desc(const char *s, size_t n, struct labels *out, size_t *used,
                             struct ward_err *err);
int promql_parse_series_desc(const char *s, size_t n, struct labels *out, size_t *used,
                             struct ward_err *err) {
	struct lexer lx;
	struct token t;

	labels_init(out);
	promql_lex_init(&lx, s, n);
	promql_lex_next(&lx, &t);
	if (t.type == T_IDENT) {
		labels_set(out, "__name__", t.str);
		free(t.str);
		*used = lx.pos;
		if (lx.pos >= n || s[lx.pos] != '{')
			return 0;
		promql_lex_next(&lx, &t);
	}
	if (t.type != T_LBRACE) {
		free(t.str);
		ward_err_set(err, "expected a metric name or '{' in series description \"%.*s\"",
		             (int)(n > 80 ? 80 : n), s);
		goto fail;
	}
	for (;;) {
		char *name;
		promql_lex_next(&lx, &t);
		if (t.type == T_RBRACE)
			break;
		if (t.type != T_IDENT) {
			free(t.str);
			ward_err_set(err, "expected a label name at char %zu of \"%.*s\"",
			             t.pos + 1, (int)(n > 80 ? 80 : n), s);
			goto fail;
		}
		name = t.str;
		promql_lex_next(&lx, &t);
		if (t.type != T_ASSIGN) {
			ward_err_set(err, "expected '=' after label %s in series description",
			             name);
			free(name);
			free(t.str);
			goto fail;
		}
		promql_lex_next(&lx, &t);
		if (t.type != T_STR) {
			free(name);
			free(t.str);
			ward_err_set(err,
			             "expected a quoted label value in series description \"%.*s\"",
			             (int)(n > 80 ? 80 : n), s);
			goto fail;
		}
		labels_set(out, name, t.str);
		free(name);
		free(t.str);
		promql_lex_next(&lx, &t);
		if (t.type == T_RBRACE)
			break;
		if (t.type != T_COMMA) {
			free(t.str);
			ward_err_set(err, "expected ',' or '}' in series description \"%.*s\"",
			             (int)(n > 80 ? 80 : n), s);
			goto fail;
		}
	}
	*used = lx.pos;
	return 0;
fail:
	labels_free(out);
	return -1;
}

/* A decimal number (no hex: "0x5" means 0 five more times) or Inf/NaN, signed. */
static bool scan_value(const char *s, size_t n, size_t *i, double *v) {
	size_t st = *i, j = *i;
	char tmp[64];

	if (j < n && (s[j] == '+' || s[j] == '-'))
		j++;
	if (j + 3 <= n &&
	    (strncasecmp(s + j, "inf", 3) == 0 || strncasecmp(s + j, "nan", 3) == 0)) {
		j += 3;
	} else {
		size_t d = j;
		while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '.'))
			j++;
		if (j == d)
			return false;
		if (j < n && (s[j] == 'e' || s[j] == 'E')) {
			size_t k = j + 1;
			if (k < n && (s[k] == '+' || s[k] == '-'))
				k++;
			if (k < n && isdigit((unsigned char)s[k])) {
				while (k < n && isdigit((unsigned char)s[k]))
					k++;
				j = k;
			}
		}
	}
	if (j - st >= sizeof(tmp))
		return false;
	memcpy(tmp, s + st, j - st);
	tmp[j - st] = 0;
	*v = strtod(tmp, NULL);
	*i = j;
	return true;
}

static bool scan_uint(const char *s, size_t n, size_t *i, uint64_t *out) {
	size_t j = *i;
	uint64_t v = 0;

	if (j >= n || !isdigit((unsigned char)s[j]))
		return false;
	while (j < n && isdigit((unsigned char)s[j])) {
		v = v * 10 + (uint64_t)(s[j] - '0');
		if (v > 100000000)
			return false;
		j++;
	}
	*i = j;
	*out = v;
	return true;
}

/* One line "desc values..." at times 0, step, 2*step... */
static int load_line(struct promql_memstore *m, const char *s, size_t n, int64_t step,
                     size_t lineno, struct ward_err *err) {
	struct labels ls;
	size_t used, i;
	int64_t t = 0;

	if (promql_parse_series_desc(s, n, &ls, &used, err) < 0) {
		ward_err_append(err, "in load block line %zu", lineno);
		return -1;
	}
	i = used;
	for (;;) {
		size_t tokstart;
		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i >= n || s[i] == '#')
			break;
		tokstart = i;
		if (s[i] == '_') {
			uint64_t k = 1;
			i++;
			if (i < n && s[i] == 'x') {
				i++;
				if (!scan_uint(s, n, &i, &k))
					goto bad;
			}
			t += (int64_t)k * step;
		} else if (n - i >= 5 && strncmp(s + i, "stale", 5) == 0) {
			i += 5;
			promql_memstore_add(m, &ls, t, promql_stale());
			t += step;
		} else {
			double a, b = 0;
			uint64_t k = 0, j;
			if (!scan_value(s, n, &i, &a))
				goto bad;
			if (i < n && (s[i] == '+' || s[i] == '-')) {
				if (!scan_value(s, n, &i, &b))
					goto bad;
				if (i >= n || s[i] != 'x')
					goto bad;
			}
			if (i < n && s[i] == 'x') {
				i++;
				if (!scan_uint(s, n, &i, &k))
					goto bad;
			}
			for (j = 0; j <= k; j++) {
				promql_memstore_add(m, &ls, t, a);
				a += b;
				t += step;
			}
		}
		if (i < n && !isspace((unsigned char)s[i])) {
		bad:
			while (i < n && !isspace((unsigned char)s[i]))
				i++;
			ward_err_set(err,
			             "load block line %zu: bad value \"%.*s\" (expected a number, "
			             "a+bxN, a-bxN, _, _xN or stale)",
			             lineno, (int)(i - tokstart > 40 ? 40 : i - tokstart),
			             s + tokstart);
			labels_free(&ls);
			return -1;
		}
	}
	labels_free(&ls);
	return 0;
}

int promql_memstore_load(struct promql_memstore *m, const char *text, size_t n,
                         struct ward_err *err) {
	size_t pos = 0, lineno = 0;
	int64_t step = -1;

	while (pos < n) {
		const char *line = text + pos, *nl = memchr(line, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - line) : n - pos;
		size_t a = 0;
		pos += len + (nl ? 1 : 0);
		lineno++;
		while (a < len && isspace((unsigned char)line[a]))
			a++;
		while (len > a && isspace((unsigned char)line[len - 1]))
			len--;
		if (a == len || line[a] == '#')
			continue;
		if (step < 0) {
			size_t b;
			if (len - a < 5 || strncmp(line + a, "load", 4) != 0 ||
			    !isspace((unsigned char)line[a + 4])) {
				ward_err_set(err,
				             "line %zu: expected \"load <step>\", e.g. \"load 1m\"",
				             lineno);
				return -1;
			}
			b = a + 4;
			while (b < len && isspace((unsigned char)line[b]))
				b++;
			if (ward_parse_duration(line + b, len - b, &step, NULL) < 0 || step <= 0) {
				ward_err_set(
				        err,
				        "line %zu: bad step \"%.*s\" in load (use e.g. 1m, 15s)",
				        lineno, (int)(len - b), line + b);
				return -1;
			}
			continue;
		}
		if (load_line(m, line + a, len - a, step, lineno, err) < 0)
			return -1;
	}
	if (step < 0) {
		ward_err_set(err, "expected \"load <step>\" followed by series lines");
		return -1;
	}
	return 0;
}
