/* promql_eval.c: runs the PromQL conformance files the tests/promql/ .test files, a subset of
 * Prometheus' promqltest format (load / clear / eval instant / eval range / eval_fail /
 * eval_ordered with expected_fail_message), one cmocka test per file, comparing values with
 * promqltest's epsilon (relative 1e-6, NaN equals NaN). Also checks the result JSON shape.
 * The test files are the spec: many cases are transcribed from Prometheus' testdata.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql/promql.h"

#define EPSILON 1e-6

static char test_dir[4096];

static bool almost_equal(double a, double b) {
	double min_normal = 2.2250738585072014e-308, sum, diff;

	if (isnan(a) && isnan(b))
		return true;
	if (a == b)
		return true;
	sum = fabs(a) + fabs(b);
	diff = fabs(a - b);
	if (a == 0 || b == 0 || sum < min_normal)
		return diff < EPSILON * min_normal;
	return diff / fmin(sum, 1.7976931348623157e308) < EPSILON;
}

/* tsdb is not linked here: free series contents ourselves. */
static void series_free(struct tsdb_series *s, size_t n) {
	size_t i;

	for (i = 0; i < n; i++) {
		labels_free(&s[i].labels);
		free(s[i].t);
		free(s[i].v);
	}
}

struct line {
	const char *s;
	size_t n;
	size_t no;
};

struct tfile {
	struct line *l;
	size_t n;
	char *text;
};

static void split_lines(struct tfile *f) {
	char *p = f->text;
	size_t no = 0;

	while (*p) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		no++;
		f->l = realloc(f->l, (f->n + 1) * sizeof(f->l[0]));
		f->l[f->n].s = p;
		f->l[f->n].n = len;
		f->l[f->n].no = no;
		f->n++;
		p += len + (nl ? 1 : 0);
	}
}

static bool is_indented(const struct line *l) {
	return l->n > 0 && (l->s[0] == ' ' || l->s[0] == '\t');
}

static bool is_blank(const struct line *l) {
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->s[i] != ' ' && l->s[i] != '\t' && l->s[i] != '\r')
			return false;
	return true;
}

static int parse_time(const char *s, size_t n, int64_t *ms) {
	char tmp[64];
	char *end;
	double v;

	if (ward_parse_duration(s, n, ms, NULL) == 0)
		return 0;
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	v = strtod(tmp, &end);
	if (*end)
		return -1;
	*ms = (int64_t)llround(v * 1000);
	return 0;
}

/* Expected series: loaded into a scratch memstore with the given step, read back. */
static int load_expected(const struct line *ls, size_t n, int64_t step, struct tsdb_series **out,
                         size_t *nout, struct ward_err *err) {
	struct promql_memstore *m = promql_memstore_new();
	struct buf b = BUF_INIT;
	struct promql_storage st;
	struct matcher all;
	size_t i;
	int rc;
	char d[32];

	ward_fmt_duration(step, d);
	buf_printf(&b, "load %s\n", d);
	for (i = 0; i < n; i++) {
		buf_append(&b, ls[i].s, ls[i].n);
		buf_putc(&b, '\n');
	}
	rc = promql_memstore_load(m, b.data, b.len, err);
	buf_free(&b);
	if (rc == 0) {
		st = promql_memstore_storage(m);
		matcher_init(&all, MATCH_RE, "__name__", ".*", NULL);
		rc = st.select(st.ctx, INT64_MIN / 2, INT64_MAX / 2, &all, 1, 0, out, nout, err);
		matcher_free(&all);
	}
	promql_memstore_free(m);
	return rc;
}

static bool looks_scalar(const struct line *l) {
	size_t i = 0;

	while (i < l->n && (l->s[i] == ' ' || l->s[i] == '\t'))
		i++;
	if (i >= l->n)
		return false;
	return (l->s[i] >= '0' && l->s[i] <= '9') || l->s[i] == '-' || l->s[i] == '+' ||
	       l->s[i] == '.' || strncmp(l->s + i, "NaN", 3) == 0 ||
	       strncmp(l->s + i, "Inf", 3) == 0;
}

static void describe(struct buf *b, const struct promql_result *r) {
	size_t i, j;

	if (r->type == PROMQL_SCALAR) {
		buf_puts(b, "scalar ");
		buf_put_double(b, r->scalar);
		return;
	}
	for (i = 0; i < r->nseries; i++) {
		buf_puts(b, "\n    ");
		labels_write(b, &r->series[i].labels);
		for (j = 0; j < r->series[i].n; j++) {
			buf_putc(b, ' ');
			buf_put_double(b, r->series[i].v[j]);
			if (r->type == PROMQL_MATRIX)
				buf_printf(b, "@%lld", (long long)r->series[i].t[j]);
		}
	}
}

struct runner {
	const char *file;
	int failures;
	int cases;
};

static void failf(struct runner *r, size_t lineno, const char *fmt, ...) WARD_PRINTF(3, 4);
static void failf(struct runner *r, size_t lineno, const char *fmt, ...) {
	va_list ap;

	fprintf(stderr, "%s:%zu: ", r->file, lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	r->failures++;
}

static void run_eval(struct runner *r, struct promql_memstore *m, const struct line *cmd,
                     struct line *exp, size_t nexp) {
	char *text = strndup(cmd->s, cmd->n);
	char *p = text, *expr;
	bool fail = false, ordered = false, range = false;
	int64_t at = 0, start = 0, end = 0, step = 0;
	struct ward_err err;
	struct promql_expr *e = NULL;
	struct promql_result res;
	struct promql_opts o;
	enum promql_errtype et;
	const char *fail_msg = NULL, *want_str = NULL;
	struct tsdb_series *want = NULL;
	size_t nwant = 0, i, j;
	int rc;
	char *tok;

	memset(&res, 0, sizeof(res));
	r->cases++;
	tok = strsep(&p, " ");
	if (strcmp(tok, "eval_fail") == 0)
		fail = true;
	else if (strcmp(tok, "eval_ordered") == 0)
		ordered = true;
	/* eval_warn / eval_info: annotations are not modelled, the values are checked */
	while (p && *p == ' ')
		p++;
	tok = strsep(&p, " ");
	if (tok && strcmp(tok, "range") == 0)
		range = true;
	else if (!tok || strcmp(tok, "instant") != 0) {
		failf(r, cmd->no, "bad eval command");
		goto out;
	}
	if (!range) {
		tok = strsep(&p, " "); /* at */
		tok = strsep(&p, " ");
		if (!tok || parse_time(tok, strlen(tok), &at) < 0) {
			failf(r, cmd->no, "bad time");
			goto out;
		}
	} else {
		char *a, *b, *c;
		strsep(&p, " "); /* from */
		a = strsep(&p, " ");
		strsep(&p, " "); /* to */
		b = strsep(&p, " ");
		strsep(&p, " "); /* step */
		c = strsep(&p, " ");
		if (!a || !b || !c || parse_time(a, strlen(a), &start) < 0 ||
		    parse_time(b, strlen(b), &end) < 0 || parse_time(c, strlen(c), &step) < 0) {
			failf(r, cmd->no, "bad range");
			goto out;
		}
	}
	expr = p ? p : (char *)"";
	for (i = 0; i < nexp; i++) {
		const char *s = exp[i].s;
		size_t k = 0;
		while (k < exp[i].n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (exp[i].n - k > 21 && strncmp(s + k, "expected_fail_message", 21) == 0) {
			fail_msg = s + k + 22;
			((char *)s)[exp[i].n] = 0;
			nexp = i;
			break;
		}
		/* newer promqltest: "expect fail [msg: ...]", "expect ordered",
		 * "expect string X"; info/warn annotations are not modelled */
		if (exp[i].n - k >= 6 && strncmp(s + k, "expect", 6) == 0) {
			const char *w = s + k + 7;
			((char *)s)[exp[i].n] = 0;
			if (strncmp(w, "fail", 4) == 0) {
				fail = true;
				if (strncmp(w + 4, " msg: ", 6) == 0)
					fail_msg = w + 10;
			} else if (strncmp(w, "ordered", 7) == 0) {
				ordered = true;
			} else if (strncmp(w, "string", 6) == 0) {
				want_str = w[6] ? w + 7 : "";
			}
			memmove((void *)&exp[i], &exp[i + 1], (nexp - i - 1) * sizeof(exp[0]));
			nexp--;
			i--;
		}
	}
	e = promql_parse(expr, strlen(expr), &err);
	if (!e) {
		if (!fail)
			failf(r, cmd->no, "parse failed: %s", err.msg);
		else if (fail_msg && !strstr(err.msg, fail_msg))
			failf(r, cmd->no, "error \"%s\" does not contain \"%s\"", err.msg,
			      fail_msg);
		goto out;
	}
	promql_opts_default(&o);
	{
		struct promql_storage st = promql_memstore_storage(m);
		if (range)
			rc = promql_eval_range(&st, e, start, end, step, &o, &res, &et, &err);
		else
			rc = promql_eval_instant(&st, e, at, &o, &res, &et, &err);
	}
	if (fail) {
		if (rc == 0)
			failf(r, cmd->no, "expected an error, got a result");
		else if (fail_msg && !strstr(err.msg, fail_msg))
			failf(r, cmd->no, "error \"%s\" does not contain \"%s\"", err.msg,
			      fail_msg);
		goto out;
	}
	if (rc < 0) {
		failf(r, cmd->no, "eval failed: %s", err.msg);
		goto out;
	}
	{
		/* the JSON must always be produced without trouble */
		struct buf js = BUF_INIT;
		promql_result_json(&res, &js);
		if (js.len == 0 || js.data[0] != '{')
			failf(r, cmd->no, "bad json");
		buf_free(&js);
	}
	if (want_str) {
		if (res.type != PROMQL_STRING || strcmp(res.str, want_str) != 0)
			failf(r, cmd->no, "want string \"%s\"", want_str);
		goto out;
	}
	if (nexp == 1 && looks_scalar(&exp[0]) && res.type == PROMQL_SCALAR) {
		char *end2;
		char tmp[64];
		size_t k = 0, l = exp[0].n;
		while (k < l && (exp[0].s[k] == ' ' || exp[0].s[k] == '\t'))
			k++;
		snprintf(tmp, sizeof(tmp), "%.*s", (int)(l - k), exp[0].s + k);
		double v = strtod(tmp, &end2);
		if (!almost_equal(v, res.scalar))
			failf(r, cmd->no, "scalar: want %s got %.17g", tmp, res.scalar);
		goto out;
	}
	if (res.type == PROMQL_SCALAR || res.type == PROMQL_STRING) {
		failf(r, cmd->no, "got a %s, expected series", promql_type_name(res.type));
		goto out;
	}
	if (load_expected(exp, nexp, range ? step : 60000, &want, &nwant, &err) < 0) {
		failf(r, cmd->no, "bad expectation: %s", err.msg);
		goto out;
	}
	if (ordered) {
		/* want is sorted by labels; reorder it by the file's order */
		struct tsdb_series *tmp = calloc(nwant ? nwant : 1, sizeof(*tmp));
		size_t k = 0;
		for (i = 0; i < nexp; i++) {
			struct labels ls;
			struct ward_err e2;
			/* reuse the loader to get the labels of line i */
			struct tsdb_series *one = NULL;
			size_t none = 0;
			(void)ls;
			if (load_expected(&exp[i], 1, 60000, &one, &none, &e2) == 0 && none == 1) {
				for (j = 0; j < nwant; j++)
					if (want[j].n &&
					    labels_equal(&want[j].labels, &one[0].labels)) {
						tmp[k++] = want[j];
						want[j].n = 0;
						want[j].t = NULL;
						want[j].v = NULL;
						labels_init(&want[j].labels);
						break;
					}
			}
			series_free(one, none);
			free(one);
		}
		series_free(want, nwant);
		free(want);
		want = tmp;
		nwant = k;
	}
	if (nwant != res.nseries) {
		struct buf d = BUF_INIT;
		describe(&d, &res);
		failf(r, cmd->no, "%s: want %zu series, got %zu:%s", expr, nwant, res.nseries,
		      buf_cstr(&d));
		buf_free(&d);
		goto out;
	}
	for (i = 0; i < nwant; i++) {
		const struct tsdb_series *g = NULL;
		if (ordered) {
			if (labels_equal(&res.series[i].labels, &want[i].labels))
				g = &res.series[i];
		} else {
			for (j = 0; j < res.nseries; j++)
				if (labels_equal(&res.series[j].labels, &want[i].labels))
					g = &res.series[j];
		}
		if (!g) {
			struct buf d = BUF_INIT, w = BUF_INIT;
			describe(&d, &res);
			labels_write(&w, &want[i].labels);
			failf(r, cmd->no, "%s: missing %s (or out of order); got:%s", expr,
			      buf_cstr(&w), buf_cstr(&d));
			buf_free(&d);
			buf_free(&w);
			continue;
		}
		if (g->n != want[i].n) {
			struct buf d = BUF_INIT;
			describe(&d, &res);
			failf(r, cmd->no, "%s: %zu points, want %zu; got:%s", expr, g->n, want[i].n,
			      buf_cstr(&d));
			buf_free(&d);
			continue;
		}
		for (j = 0; j < g->n; j++) {
			int64_t wt = range ? want[i].t[j] + start : at;
			if (g->t[j] != wt || !almost_equal(g->v[j], want[i].v[j])) {
				struct buf d = BUF_INIT;
				describe(&d, &res);
				failf(r, cmd->no,
				      "%s: point %zu: want %.17g@%lld got %.17g@%lld; got:%s", expr,
				      j, want[i].v[j], (long long)wt, g->v[j], (long long)g->t[j],
				      buf_cstr(&d));
				buf_free(&d);
				break;
			}
		}
	}
out:
	if (want) {
		series_free(want, nwant);
		free(want);
	}
	promql_result_free(&res);
	promql_expr_free(e);
	free(text);
}

static void run_file(void **state) {
	const char *name = *state;
	char path[8192];
	char *data = NULL;
	size_t len, i;
	struct ward_err err;
	struct tfile f = {0};
	struct promql_memstore *m = promql_memstore_new();
	struct runner r = {name, 0, 0};

	snprintf(path, sizeof(path), "%s/%s", test_dir, name);
	assert_int_equal(ward_read_file(path, 16 << 20, &data, &len, &err), 0);
	f.text = data;
	split_lines(&f);
	for (i = 0; i < f.n;) {
		const struct line *l = &f.l[i];
		size_t j;
		if (is_blank(l) || l->s[0] == '#') {
			i++;
			continue;
		}
		for (j = i + 1; j < f.n && is_indented(&f.l[j]) && !is_blank(&f.l[j]); j++)
			;
		if (strncmp(l->s, "load ", 5) == 0) {
			const char *a = l->s;
			const char *b = f.l[j - 1].s + f.l[j - 1].n;
			if (promql_memstore_load(m, a, (size_t)(b - a), &err) < 0)
				failf(&r, l->no, "load: %s", err.msg);
		} else if (strncmp(l->s, "clear", 5) == 0) {
			promql_memstore_free(m);
			m = promql_memstore_new();
		} else if (strncmp(l->s, "eval", 4) == 0) {
			run_eval(&r, m, l, &f.l[i + 1], j - i - 1);
		} else {
			failf(&r, l->no, "unknown command");
		}
		i = j;
	}
	fprintf(stderr, "%s: %d cases, %d failures\n", name, r.cases, r.failures);
	promql_memstore_free(m);
	free(f.l);
	free(data);
	assert_int_equal(r.failures, 0);
}

static void json_formats_like_prometheus(void **state) {
	struct promql_memstore *m = promql_memstore_new();
	struct promql_storage st = promql_memstore_storage(m);
	struct promql_result res;
	struct promql_expr *e;
	struct ward_err err;
	struct buf b = BUF_INIT;
	enum promql_errtype et;
	const char *load = "load 15500ms\n  x{a=\"b\"} 1 1000000 0.1 NaN -Inf 1e-7\n";

	assert_int_equal(promql_memstore_load(m, load, strlen(load), &err), 0);
	e = promql_parse("x", 1, &err);
	assert_non_null(e);
	assert_int_equal(promql_eval_range(&st, e, 1700000000000LL - 1700000000000LL, 77500, 15500,
	                                   NULL, &res, &et, &err),
	                 0);
	promql_result_json(&res, &b);
	assert_string_equal(
	        buf_cstr(&b),
	        "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"x\","
	        "\"a\":\"b\"},\"values\":[[0,\"1\"],[15.5,\"1000000\"],[31,\"0.1\"],"
	        "[46.5,\"NaN\"],[62,\"-Inf\"],[77.5,\"0.0000001\"]]}]}");
	promql_result_free(&res);
	buf_reset(&b);
	promql_expr_free(e);
	e = promql_parse("1.5 * 2", 7, &err);
	assert_int_equal(promql_eval_instant(&st, e, 1700000000123LL, NULL, &res, &et, &err), 0);
	promql_result_json(&res, &b);
	assert_string_equal(buf_cstr(&b),
	                    "{\"resultType\":\"scalar\",\"result\":[1700000000.123,\"3\"]}");
	promql_result_free(&res);
	buf_reset(&b);
	promql_expr_free(e);
	e = promql_parse("x", 1, &err);
	assert_int_equal(promql_eval_instant(&st, e, 31000, NULL, &res, &et, &err), 0);
	promql_result_json(&res, &b);
	assert_string_equal(buf_cstr(&b),
	                    "{\"resultType\":\"vector\",\"result\":[{\"metric\":{"
	                    "\"__name__\":\"x\",\"a\":\"b\"},\"value\":[31,\"0.1\"]}]}");
	promql_result_free(&res);
	promql_expr_free(e);
	/* timestamps before 1970 and with 1 to 3 decimals; a value repeated, then changed,
	 * then repeated again (formatted once and remembered, never stale) */
	{
		int64_t ts[] = {-1500, -1, 0, 120, 1001, 1700000000010LL, 1700000000100LL};
		double vs[] = {2, 2, 2.5, 2, 2, -0.0, 0};
		struct tsdb_series s = {.t = ts, .v = vs, .n = 7};
		struct promql_result r = {.type = PROMQL_MATRIX, .series = &s, .nseries = 1};
		buf_reset(&b);
		promql_result_json(&r, &b);
		assert_string_equal(buf_cstr(&b),
		                    "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
		                    "\"values\":[[-1.5,\"2\"],[-0.001,\"2\"],[0,\"2.5\"],"
		                    "[0.12,\"2\"],[1.001,\"2\"],[1700000000.01,\"-0\"],"
		                    "[1700000000.1,\"0\"]]}]}");
	}
	/* more distinct timestamps than the answer remembers, each written right */
	{
		enum { NPTS = 1500 };
		static int64_t ts[NPTS];
		static double vs[NPTS];
		struct tsdb_series s2[2] = {{.t = ts, .v = vs, .n = NPTS}, {.t = ts, .v = vs, .n = NPTS}};
		struct promql_result r = {.type = PROMQL_MATRIX, .series = s2, .nseries = 2};
		struct buf want = BUF_INIT, one = BUF_INIT;
		size_t k;
		for (k = 0; k < NPTS; k++) {
			ts[k] = (int64_t)k * 1001 - 7000;
			vs[k] = (double)(k % 600) * 0.5;
		}
		for (k = 0; k < NPTS; k++) {
			int64_t a = ts[k] < 0 ? -ts[k] : ts[k];
			char frac[8];
			int f = (int)(a % 1000), nf;
			snprintf(frac, sizeof(frac), ".%03d", f);
			for (nf = 4; nf > 1 && frac[nf - 1] == '0'; nf--)
				;
			buf_printf(&one, "%s[%s%lld%.*s,\"%g\"]", k ? "," : "", ts[k] < 0 ? "-" : "",
			           (long long)(a / 1000), f ? nf : 0, frac, vs[k]);
		}
		buf_printf(&want,
		           "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[%s]},"
		           "{\"metric\":{},\"values\":[%s]}]}",
		           buf_cstr(&one), buf_cstr(&one));
		buf_reset(&b);
		promql_result_json(&r, &b);
		assert_string_equal(buf_cstr(&b), buf_cstr(&want));
		buf_free(&want);
		buf_free(&one);
	}
	buf_free(&b);
	promql_memstore_free(m);
}

static int cmp_str(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
	const char *env = getenv("PROMQL_TEST_DIR");
	char **names = NULL;
	size_t n = 0, i;
	struct CMUnitTest *tests;
	DIR *d;
	struct dirent *de;
	int rc;

	if (env) {
		snprintf(test_dir, sizeof(test_dir), "%s", env);
	} else {
		/* __FILE__ is relative to the build root when meson compiles; tests run in
		 * <build>/tests/unit. */
		const char *f = __FILE__;
		const char *slash = strrchr(f, '/');
		int dl = slash ? (int)(slash - f) : 0;
		if (f[0] == '/')
			snprintf(test_dir, sizeof(test_dir), "%.*s/../promql", dl, f);
		else
			snprintf(test_dir, sizeof(test_dir), "../../%.*s/../promql", dl, f);
	}
	d = opendir(test_dir);
	if (!d) {
		fprintf(stderr, "cannot open %s (set PROMQL_TEST_DIR)\n", test_dir);
		return 1;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".test") == 0) {
			names = realloc(names, (n + 1) * sizeof(char *));
			names[n++] = strdup(de->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_str);
	tests = calloc(n + 1, sizeof(*tests));
	for (i = 0; i < n; i++) {
		tests[i].name = names[i];
		tests[i].test_func = run_file;
		tests[i].initial_state = names[i];
	}
	tests[n].name = "json_formats_like_prometheus";
	tests[n].test_func = json_formats_like_prometheus;
	rc = _cmocka_run_group_tests("promql_eval", tests, n + 1, NULL, NULL);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(tests);
	return rc;
}
