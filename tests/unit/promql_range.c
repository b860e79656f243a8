/* promql_range.c: a range query gives, for every expression, exactly what instant queries at
 * each of its steps give, merged by label set: the same series, points, values (bit for bit,
 * NaN equal to NaN) and, when a step fails, the first failing step's error. This pins the
 * series-wise range evaluation (selectors, range functions, and operators matched once per
 * query) to the step-by-step semantics on data where series start late, end early, have
 * gaps and stale markers, where match groups change between steps, and where matching fails
 * at some steps only.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql/promql.h"

static const char *const load_text =
        "load 1m\n"
        "  a{job=\"j\",instance=\"i1\",x=\"1\"} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n"
        "  a{job=\"j\",instance=\"i2\",x=\"2\"} _ _ _ 4 5 6 stale _ _ 10 11 12 _ _ _ _ _ _ 19 20\n"
        "  a{job=\"j\",instance=\"i3\",x=\"1\"} 0 0 1 1 2 2 3 3 4 4 5 5 6 6 7 7 8 8 9 9\n"
        "  b{job=\"j\",instance=\"i1\",y=\"a\"} 10x19\n"
        "  b{job=\"j\",instance=\"i2\",y=\"b\"} 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 stale 2\n"
        "  b{job=\"j\",instance=\"i3\",y=\"c\"} _ _ _ _ _ _ _ _ _ _ 0 0 0 0 0 0 0 0 0 0\n"
        "  c{job=\"j\",instance=\"i1\"} 0+10x19\n"
        "  c{job=\"j\",instance=\"i2\"} 0+5x5 0+5x13\n"
        "  d{instance=\"i1\",v=\"1\"} 1 1 1 1 1 _ _ _ _ _ _ _ _ _ _ _ _ _ _ _\n"
        "  d{instance=\"i1\",v=\"2\"} _ _ _ _ _ _ _ _ _ _ _ _ _ _ 2 2 2 2 2 2\n"
        "  e{instance=\"i1\",v=\"1\"} 1x19\n"
        "  e{instance=\"i1\",v=\"2\"} _ _ _ _ _ _ _ _ _ _ _ _ 2 2 2 2 2 2 2 2\n"
        "  f{instance=\"i1\",v=\"1\"} 3 NaN Inf -Inf 0 -0 1e300 _ 7 stale\n"
        "  g{instance=\"i1\",v=\"1\"} _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 5 6 7 8 9\n"
        "  h{instance=\"i1\"} 0.1 0.7 1e-3 3.3333 1e100 1 -1e100 2 0.3 0.2 NaN 5 Inf 6 -Inf 7 8 _ 10 11\n"
        "  k{instance=\"i1\"} -10+1x19\n"
        "  k{instance=\"i2\"} -5 -5 -5 -4 NaN -3 -3 -2 -2 -1 -0 0 1 1 2 2 3 3 4 4\n"
        "  h{instance=\"i2\"} 1 1e100 1 -1e100 0.1 0.2 0.3 stale 0.4 0.5 _ _ _ 0.6 0.7 0.8 0.9 1 1.1 1.2\n";

static const char *const exprs[] = {
        /* selectors and range functions alone */
        "a",
        "a offset 2m",
        "rate(c[5m])",
        "avg_over_time(a[3m])",
        "avg_over_time(h[3m])",
        "avg_over_time(h[10m])",
        "avg_over_time(h[1m] offset 2m)",
        "increase(c[3m])",
        "delta(h[4m])",
        "delta(a[4m])",
        "rate(c[1m] offset 1m)",
        "rate(h[7m])",
        "rate(k[5m])",
        "increase(k[3m])",
        "delta(k[2m])",
        /* unary minus, vector and scalar */
        "-a",
        "-(-a)",
        "-{__name__=~\"d|e\"}",
        "a + 1",
        "1 - a",
        "(1 + 2) * a",
        "a * 2 > 10",
        "10 < a",
        "a > bool 10",
        "2 > bool a",
        "a == 4",
        "a % 3",
        "a ^ 2",
        "f / 0",
        "f > 0",
        "f != bool 0",
        "-f - 1",
        "{__name__=~\"d|e\"} * 1",
        "{__name__=~\"d|e\"} > 0",
        "{__name__=~\"d|g\"} * 1",
        "-{__name__=~\"d|g\"}",
        "1 + 2 * 3",
        "-(2 ^ 0.5)",
        /* vector and vector */
        "a / b",
        "a / on(instance) b",
        "a / ignoring(x, y) b",
        "a / on(instance) group_left(y) b",
        "b / on(instance) group_right(y) a",
        "a > on(instance) b",
        "b > on(instance) a",
        "a > bool on(instance) b",
        "a == ignoring(x, y) b",
        "a atan2 on(instance) b",
        "a / on(instance) (b - 2)",
        "1 - a / on(instance) b",
        "(a + 1) / on(instance) (b - 1)",
        "a offset 2m / on(instance) b",
        "rate(c[5m]) / on(instance) a",
        "rate(c[5m]) * 60 - increase(c[5m])",
        "-rate(c[5m]) + on(instance) group_left(x) a",
        /* match groups that change between steps, and ones that fail at some steps */
        "a / on(instance) group_left d",
        "a / on(instance) group_left e",
        "a / on(instance) e",
        "a / on(job) b",
        "a + on(job) group_left b",
        "b + on(job) group_left a",
        "a * on(x) group_left b",
        "a{x=\"1\"} + on(job) b{instance=\"i1\"}",
        "a{x=\"1\"} > on(job) b{instance=\"i1\"}",
        "a{x=\"1\"} + on(job) group_left b{instance=\"i1\"}",
        "a{x=\"1\"} > on(job) group_left b{instance=\"i1\"}",
        "a{x=\"1\"} - on(job) group_left(y) b{instance=\"i1\"}",
        "a + on(instance) group_left(v) e",
        "d + on(instance) group_right e",
        "e / on(instance) group_left d",
        "{__name__=~\"d|e\"} + on(instance) group_left b{instance=\"i1\"}",
        "a + on() b{instance=\"i1\"}",
        "a{instance=\"i1\"} + on() b{instance=\"i1\"}",
        "a > bool on() group_left b{instance=\"i1\"}",
        "a{x=\"2\"} / on(instance) group_left(job) b",
        "a - ignoring(x, y, job) group_left(y) b",
        "b * on(instance, job) group_right(y) a > 5",
        "a ^ on(instance) group_left b offset 3m",
        "{__name__=~\"d|g\"} + on(instance) group_left b{instance=\"i1\"}",
        "b{instance=\"i1\"} - on(instance) group_right {__name__=~\"d|g\"}",
        /* inside other expressions (a precomputed node) and next to step-wise ones */
        "sum(a / on(instance) b)",
        "sum by (job) (1 - a / on(instance) b)",
        "max by (instance) (a / on(instance) group_left d)",
        "topk(1, a / on(instance) b)",
        "count(a / on(instance) b > 1)",
        "abs(1 - a / on(instance) b)",
        "sum(rate(c[5m])) / sum(a)",
        "time() - a",
        "a + scalar(b{instance=\"i1\"})",
        "(a > 5) + 1",
        "a unless on(instance) b",
        "a and on(instance) (b > 5)",
        "timestamp(a) - a",
        "max_over_time((a / on(instance) b)[5m:1m])",
        NULL,
};

struct range {
	int64_t start, end, step;
};

static const struct range ranges[] = {
        {0, 19 * 60000, 60000},
        {30000, 25 * 60000, 45000},
        {3 * 60000, 3 * 60000, 60000},
        {0, 30 * 60000, 7 * 60000},
        {-10 * 60000, 40 * 60000, 90000},
};

static bool same_value(double a, double b) {
	uint64_t x, y;

	if (isnan(a) && isnan(b))
		return true;
	memcpy(&x, &a, sizeof(x));
	memcpy(&y, &b, sizeof(y));
	return x == y;
}

/* The expected answer: instant queries at each step, merged by label set. */
struct merged {
	struct tsdb_series *s;
	size_t n;
};

static void merge_point(struct merged *m, const struct labels *ls, int64_t t, double v) {
	struct tsdb_series *d = NULL;
	size_t i;

	for (i = 0; i < m->n; i++)
		if (labels_equal(&m->s[i].labels, ls)) {
			d = &m->s[i];
			break;
		}
	if (!d) {
		m->s = realloc(m->s, (m->n + 1) * sizeof(m->s[0]));
		d = &m->s[m->n++];
		memset(d, 0, sizeof(*d));
		labels_copy(&d->labels, ls);
	}
	d->t = realloc(d->t, (d->n + 1) * sizeof(d->t[0]));
	d->v = realloc(d->v, (d->n + 1) * sizeof(d->v[0]));
	d->t[d->n] = t;
	d->v[d->n] = v;
	d->n++;
}

static void merged_free(struct merged *m) {
	size_t i;

	for (i = 0; i < m->n; i++) {
		labels_free(&m->s[i].labels);
		free(m->s[i].t);
		free(m->s[i].v);
	}
	free(m->s);
}

static const struct tsdb_series *find_series(const struct tsdb_series *s, size_t n,
                                             const struct labels *ls) {
	size_t i;

	for (i = 0; i < n; i++)
		if (labels_equal(&s[i].labels, ls))
			return &s[i];
	return NULL;
}

static void describe(const char *q, const struct range *r, const char *what) {
	fprintf(stderr, "query %s over [%lld, %lld] step %lld: %s\n", q, (long long)r->start,
	        (long long)r->end, (long long)r->step, what);
}

static void check_one(const struct promql_storage *st, const char *q, const struct range *r) {
	struct ward_err err, ierr;
	struct promql_expr *e = promql_parse(q, strlen(q), &err);
	struct promql_result got, inst;
	struct merged want = {0};
	enum promql_errtype et;
	bool failed = false;
	size_t i, j;
	int64_t t;
	int rc;

	if (!e) {
		fprintf(stderr, "%s: %s\n", q, err.msg);
		fail();
	}
	ward_err_clear(&ierr);
	for (t = r->start; t <= r->end && !failed; t += r->step) {
		if (promql_eval_instant(st, e, t, NULL, &inst, &et, &ierr) < 0) {
			failed = true;
			break;
		}
		if (inst.type == PROMQL_SCALAR) {
			struct labels none = {0};
			merge_point(&want, &none, t, inst.scalar);
		}
		for (i = 0; inst.type == PROMQL_VECTOR && i < inst.nseries; i++)
			merge_point(&want, &inst.series[i].labels, t, inst.series[i].v[0]);
		promql_result_free(&inst);
	}
	rc = promql_eval_range(st, e, r->start, r->end, r->step, NULL, &got, &et, &err);
	if (failed) {
		if (rc == 0 || strcmp(err.msg, ierr.msg) != 0) {
			describe(q, r, "the range query must fail as the failing step does");
			fprintf(stderr, "  want %s\n  got  %s\n", ierr.msg, rc ? err.msg : "success");
			fail();
		}
		goto out;
	}
	if (rc != 0) {
		describe(q, r, err.msg);
		fail();
	}
	if (got.nseries != want.n) {
		char msg[64];
		snprintf(msg, sizeof(msg), "%zu series, want %zu", got.nseries, want.n);
		describe(q, r, msg);
		fail();
	}
	for (i = 0; i < got.nseries; i++) {
		const struct tsdb_series *g = &got.series[i], *w;
		struct buf lb = BUF_INIT;
		labels_write(&lb, &g->labels);
		w = find_series(want.s, want.n, &g->labels);
		if (i > 0 && labels_cmp(&got.series[i - 1].labels, &g->labels) >= 0) {
			describe(q, r, "series out of order");
			fail();
		}
		if (!w || w->n != g->n) {
			describe(q, r, buf_cstr(&lb));
			fprintf(stderr, "  %zu points, want %zu\n", g->n, w ? w->n : 0);
			fail();
		}
		for (j = 0; j < g->n; j++)
			if (g->t[j] != w->t[j] || !same_value(g->v[j], w->v[j])) {
				describe(q, r, buf_cstr(&lb));
				fprintf(stderr, "  point %zu: %lld %.17g, want %lld %.17g\n", j,
				        (long long)g->t[j], g->v[j], (long long)w->t[j], w->v[j]);
				fail();
			}
		buf_free(&lb);
	}
	promql_result_free(&got);
out:
	merged_free(&want);
	promql_expr_free(e);
}

static void range_equals_instants(void **state) {
	struct promql_memstore *m = promql_memstore_new();
	struct promql_storage st = promql_memstore_storage(m);
	struct ward_err err;
	size_t i, k;

	(void)state;
	assert_int_equal(promql_memstore_load(m, load_text, strlen(load_text), &err), 0);
	for (i = 0; exprs[i]; i++)
		for (k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++)
			check_one(&st, exprs[i], &ranges[k]);
	promql_memstore_free(m);
}

/* The sample limit holds each step to what its selectors hold, whichever way the query is
 * evaluated: a selector inside an operator counts its lookback window, as the step path. */
static void range_sample_limit_counts_each_step(void **state) {
	struct promql_memstore *m = promql_memstore_new();
	struct promql_storage st = promql_memstore_storage(m);
	struct promql_opts o;
	struct promql_result r;
	enum promql_errtype et;
	struct ward_err err;
	struct promql_expr *e;
	const char *q = "1 - a / on(instance) b";

	(void)state;
	assert_int_equal(promql_memstore_load(m, load_text, strlen(load_text), &err), 0);
	e = promql_parse(q, strlen(q), &err);
	assert_non_null(e);
	promql_opts_default(&o);
	/* at 10m: a holds 6 + 4 + 6 samples of its 5m lookback, b 6 + 6 + 1: 29 */
	o.max_samples = 28;
	assert_int_equal(promql_eval_range(&st, e, 10 * 60000, 10 * 60000, 60000, &o, &r, &et,
	                                   &err),
	                 -1);
	assert_non_null(strstr(err.msg, "query processing would load too many samples"));
	o.max_samples = 29;
	assert_int_equal(promql_eval_range(&st, e, 10 * 60000, 10 * 60000, 60000, &o, &r, &et,
	                                   &err),
	                 0);
	promql_result_free(&r);
	/* over many steps the limit is per step, not a sum: at most 32 (at 14m, 15m, 19m) */
	o.max_samples = 31;
	assert_int_equal(promql_eval_range(&st, e, 0, 19 * 60000, 60000, &o, &r, &et, &err), -1);
	assert_non_null(strstr(err.msg, "query processing would load too many samples"));
	o.max_samples = 32;
	assert_int_equal(promql_eval_range(&st, e, 0, 19 * 60000, 60000, &o, &r, &et, &err), 0);
	promql_result_free(&r);
	promql_expr_free(e);
	promql_memstore_free(m);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(range_equals_instants),
	        cmocka_unit_test(range_sample_limit_counts_each_step),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
