/* promql_parse.c: unit tests of the PromQL lexer and parser: error messages carry the
 * position Prometheus reports (line, 1-based char), type checks reject what Prometheus
 * rejects, and the canonical string of an expression parses back to the same string.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql/promql.h"

static void assert_parse_error(const char *q, const char *want) {
	struct ward_err err;
	struct promql_expr *e;

	ward_err_clear(&err);
	e = promql_parse(q, strlen(q), &err);
	if (e) {
		fprintf(stderr, "expected an error for %s\n", q);
		promql_expr_free(e);
		fail();
	}
	if (strstr(err.msg, want) == NULL) {
		fprintf(stderr, "query %s\n  got  %s\n  want %s\n", q, err.msg, want);
		fail();
	}
}

static void assert_canonical(const char *q, const char *want) {
	struct ward_err err;
	struct promql_expr *e, *e2;
	struct buf b = BUF_INIT, b2 = BUF_INIT;

	e = promql_parse(q, strlen(q), &err);
	if (!e) {
		fprintf(stderr, "query %s: %s\n", q, err.msg);
		fail();
	}
	promql_expr_string(e, &b);
	if (strcmp(buf_cstr(&b), want) != 0) {
		fprintf(stderr, "query %s\n  got  %s\n  want %s\n", q, buf_cstr(&b), want);
		fail();
	}
	/* the canonical form parses back to itself */
	e2 = promql_parse(b.data, b.len, &err);
	assert_non_null(e2);
	promql_expr_string(e2, &b2);
	assert_string_equal(buf_cstr(&b2), want);
	promql_expr_free(e);
	promql_expr_free(e2);
	buf_free(&b);
	buf_free(&b2);
}

static void parse_errors_report_line_and_char(void **state) {
	assert_parse_error("foo{", "parse error at line 1, char 5: unexpected end of input");
	assert_parse_error("1 +", "parse error at line 1, char 4: unexpected end of input");
	assert_parse_error("foo\n  + )", "parse error at line 2, char 5: unexpected \")\"");
	assert_parse_error("sum(foo) by",
	                   "parse error at line 1, char 12: unexpected end of input");
	assert_parse_error("foo !", "parse error at line 1, char 5:");
	assert_parse_error("\"abc", "parse error at line 1, char 1: unterminated quoted string");
	assert_parse_error("", "no expression found in input");
	assert_parse_error("foo{a=\"b\" b=\"c\"}", "parse error at line 1, char 11:");
	assert_parse_error("foo[5x]", "parse error at line 1, char 5: bad number or duration");
	assert_parse_error("a ) b", "parse error at line 1, char 3: unexpected \")\"");
}

static void parse_type_checks_like_prometheus(void **state) {
	assert_parse_error("rate(foo)",
	                   "char 6: expected type range vector in call to function \"rate\", got "
	                   "instant vector");
	assert_parse_error(
	        "abs(foo[5m])",
	        "expected type instant vector in call to function \"abs\", got range vector");
	assert_parse_error("foo[5m] + 1",
	                   "binary expression must contain only scalar and instant vector types");
	assert_parse_error("1 > 2", "comparisons between scalars must use BOOL modifier");
	assert_parse_error("1 and 2",
	                   "set operator \"and\" not allowed in binary scalar expression");
	assert_parse_error("foo + bool bar",
	                   "bool modifier can only be used on comparison operators");
	assert_parse_error("unknown_fn(x)", "char 1: unknown function with name \"unknown_fn\"");
	assert_parse_error("{}", "vector selector must contain at least one non-empty matcher");
	assert_parse_error("{a=~\".*\"}",
	                   "vector selector must contain at least one non-empty matcher");
	assert_parse_error("foo{__name__=\"bar\"}", "metric name must not be set twice");
	assert_parse_error("foo @ 1 @ 2", "@ <timestamp> may not be set multiple times");
	assert_parse_error("foo offset 1m offset 2m", "offset may not be set multiple times");
	assert_parse_error("(foo + 1)[5m]", "ranges only allowed for vector selectors");
	assert_parse_error("sum(foo)[5m]", "ranges only allowed for vector selectors");
	assert_parse_error("rate(foo[5m])[5m]", "ranges only allowed for vector selectors");
	assert_parse_error("foo[5m][5m:]",
	                   "subquery is only allowed on instant vector, got range vector");
	assert_parse_error("round(foo, 1, 2)",
	                   "expected at most 2 argument(s) in call to \"round\", got 3");
	assert_parse_error("rate()", "expected 1 argument(s) in call to \"rate\", got 0");
	assert_parse_error("label_join(foo)",
	                   "expected at least 3 argument(s) in call to \"label_join\"");
	assert_parse_error(
	        "topk(foo)",
	        "wrong number of arguments for aggregate expression provided, expected 2, got 1");
	assert_parse_error(
	        "sum(1, foo)",
	        "wrong number of arguments for aggregate expression provided, expected 1, got 2");
	assert_parse_error(
	        "sum(foo[5m])",
	        "expected type instant vector in aggregation expression, got range vector");
	assert_parse_error("count_values(1, foo)",
	                   "expected type string in aggregation parameter, got scalar");
	assert_parse_error("foo and on(a) group_left bar",
	                   "no grouping allowed for \"and\" operation");
	assert_parse_error("1 + on(a) foo", "vector matching only allowed between instant vectors");
	assert_parse_error("a + on(x) group_left(x) b",
	                   "label \"x\" must not occur in ON and GROUP clause at once");
	assert_parse_error(
	        "-\"a\"",
	        "unary expression only allowed on expressions of type scalar or instant vector");
	assert_parse_error("foo{a=~\"(\"}", "parse error at line 1, char 5:");
	assert_parse_error("1 offset 5m",
	                   "offset modifier must be preceded by an instant vector selector");
}

static void canonical_string_round_trips(void **state) {
	assert_canonical("foo", "foo");
	assert_canonical("foo{a=\"b\",c!~\"d.*\"}", "foo{a=\"b\",c!~\"d.*\"}");
	assert_canonical("{__name__=~\"x|y\"}", "{__name__=~\"x|y\"}");
	assert_canonical("sum by(job)(rate(foo{a=\"b\"}[5m] offset 1m))",
	                 "sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m))");
	assert_canonical("sum(foo) without (a,b)", "sum without (a, b) (foo)");
	assert_canonical("topk(3, foo)", "topk(3, foo)");
	assert_canonical("a + on(x) group_left(y) b", "a + on (x) group_left (y) b");
	assert_canonical("a > bool ignoring(x) b", "a > bool ignoring (x) b");
	assert_canonical("a / ignoring(x) group_right b", "a / ignoring (x) group_right () b");
	assert_canonical("max_over_time(foo[1h30m:1m] @ 100)",
	                 "max_over_time(foo[1h30m:1m] @ 100.000)");
	assert_canonical("foo @ start()", "foo @ start()");
	assert_canonical("foo[5m] @ end() offset -1m", "foo[5m] @ end() offset -1m");
	assert_canonical("-(1 + 2) * 3", "-(1 + 2) * 3");
	assert_canonical("-foo", "-foo");
	assert_canonical("- 1", "-1");
	assert_canonical("1e6", "1e+06");
	assert_canonical("0x10", "16");
	assert_canonical("2 ^ 3 ^ 2", "2 ^ 3 ^ 2");
	assert_canonical("label_replace(foo, \"a\", \"$1\", \"b\", \"(.*)\")",
	                 "label_replace(foo, \"a\", \"$1\", \"b\", \"(.*)\")");
	assert_canonical("'it\\'s'", "\"it's\"");
	assert_canonical("`raw\\n`", "\"raw\\\\n\"");
	assert_canonical("foo and bar or baz unless qux", "foo and bar or baz unless qux");
	assert_canonical("time()", "time()");
	assert_canonical("rate(foo[300])", "rate(foo[5m])");
	assert_canonical("SUM(foo) BY (job)", "sum by (job) (foo)");
	assert_canonical("foo:bar:rate5m{job=\"x\"}", "foo:bar:rate5m{job=\"x\"}");
	assert_canonical("sum by (on, by) (x)", "sum by (on, by) (x)");
	assert_canonical("x{on=\"1\", by=\"2\"}", "x{on=\"1\",by=\"2\"}");
}

static void expression_types(void **state) {
	struct ward_err err;
	struct {
		const char *q;
		enum promql_type t;
	} cases[] = {
	        {"1", PROMQL_SCALAR},           {"foo", PROMQL_VECTOR},
	        {"foo[5m]", PROMQL_MATRIX},     {"\"s\"", PROMQL_STRING},
	        {"1 + 1", PROMQL_SCALAR},       {"foo + 1", PROMQL_VECTOR},
	        {"scalar(foo)", PROMQL_SCALAR}, {"(foo[5m:])", PROMQL_MATRIX},
	        {"time()", PROMQL_SCALAR},      {"sum(foo)", PROMQL_VECTOR},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct promql_expr *e = promql_parse(cases[i].q, strlen(cases[i].q), &err);
		assert_non_null(e);
		assert_int_equal(promql_expr_type(e), cases[i].t);
		promql_expr_free(e);
	}
	assert_string_equal(promql_type_name(PROMQL_MATRIX), "matrix");
	assert_string_equal(promql_type_name(PROMQL_VECTOR), "vector");
}

/* The parser reads exactly n bytes: no terminator needed, nothing read past the end. */
static void parse_respects_length(void **state) {
	struct ward_err err;
	char *q = malloc(7);
	struct promql_expr *e;
	struct buf b = BUF_INIT;

	memcpy(q, "foo + 1", 7);
	e = promql_parse(q, 3, &err);
	assert_non_null(e);
	promql_expr_string(e, &b);
	assert_string_equal(buf_cstr(&b), "foo");
	promql_expr_free(e);
	e = promql_parse(q, 7, &err);
	assert_non_null(e);
	promql_expr_free(e);
	free(q);
	buf_free(&b);
	promql_expr_free(NULL);
}

static void limits_and_errors_are_reported(void **state) {
	struct promql_memstore *m = promql_memstore_new();
	struct promql_storage st = promql_memstore_storage(m);
	struct promql_result r;
	struct promql_opts o;
	struct ward_err err;
	enum promql_errtype et = 0;
	const char *load = "load 1m\n  x{a=\"1\"} 0+1x100\n  x{a=\"2\"} 0+1x100\n";
	struct promql_expr *e;

	assert_int_equal(promql_memstore_load(m, load, strlen(load), &err), 0);
	e = promql_parse("sum_over_time(x[1h])", 20, &err);
	assert_non_null(e);
	promql_opts_default(&o);
	o.max_samples = 10;
	assert_int_equal(promql_eval_instant(&st, e, 3600000, &o, &r, &et, &err), -1);
	assert_int_equal(et, PROMQL_ERR_EXECUTION);
	assert_non_null(strstr(err.msg, "query processing would load too many samples"));
	o.max_samples = 0;
	assert_int_equal(promql_eval_instant(&st, e, 3600000, &o, &r, &et, &err), 0);
	assert_int_equal(r.type, PROMQL_VECTOR);
	assert_int_equal(r.nseries, 2);
	promql_result_free(&r);
	/* range queries need a positive step and an instant-vector or scalar expression */
	assert_int_equal(promql_eval_range(&st, e, 0, 60000, 0, &o, &r, &et, &err), -1);
	assert_int_equal(et, PROMQL_ERR_BAD_DATA);
	promql_expr_free(e);
	e = promql_parse("x[5m]", 5, &err);
	assert_int_equal(promql_eval_range(&st, e, 0, 60000, 1000, &o, &r, &et, &err), -1);
	assert_non_null(
	        strstr(err.msg, "invalid expression type \"range vector\" for range query"));
	/* an instant query of a range selector returns a matrix */
	assert_int_equal(promql_eval_instant(&st, e, 120000, &o, &r, &et, &err), 0);
	assert_int_equal(r.type, PROMQL_MATRIX);
	assert_int_equal(r.nseries, 2);
	assert_int_equal(r.series[0].n, 3); /* 0, 1m and 2m */
	promql_result_free(&r);
	promql_expr_free(e);
	/* bad load blocks say what is wrong */
	assert_int_equal(promql_memstore_load(m, "load 1m\n x 1 2 zz\n", 18, &err), -1);
	assert_non_null(strstr(err.msg, "bad value \"zz\""));
	assert_int_equal(promql_memstore_load(m, "lod 1m\n", 7, &err), -1);
	promql_memstore_free(m);
}

static void timeouts_stop_long_queries(void **state) {
	struct promql_memstore *m = promql_memstore_new();
	struct promql_storage st = promql_memstore_storage(m);
	struct promql_result r;
	struct promql_opts o;
	struct ward_err err;
	enum promql_errtype et = 0;
	const char *load = "load 1m\n  x 0+1x100\n";
	const char *q = "sum_over_time(x[1h:1ms])";
	struct promql_expr *e;

	assert_int_equal(promql_memstore_load(m, load, strlen(load), &err), 0);
	e = promql_parse(q, strlen(q), &err);
	assert_non_null(e);
	promql_opts_default(&o);
	o.timeout_ms = 5;
	assert_int_equal(promql_eval_instant(&st, e, 3600000, &o, &r, &et, &err), -1);
	assert_int_equal(et, PROMQL_ERR_TIMEOUT);
	assert_non_null(strstr(err.msg, "query timed out"));
	promql_expr_free(e);
	promql_memstore_free(m);
}

struct worker {
	struct promql_storage st;
	const char *q;
	const char *want;
	int ok;
};

static void *worker_run(void *arg) {
	struct worker *w = arg;
	int i;

	w->ok = 1;
	for (i = 0; i < 50; i++) {
		struct ward_err err;
		struct promql_result r;
		enum promql_errtype et;
		struct buf b = BUF_INIT;
		struct promql_expr *e = promql_parse(w->q, strlen(w->q), &err);
		if (!e || promql_eval_instant(&w->st, e, 600000, NULL, &r, &et, &err) < 0) {
			w->ok = 0;
			promql_expr_free(e);
			break;
		}
		promql_result_json(&r, &b);
		if (strcmp(buf_cstr(&b), w->want) != 0)
			w->ok = 0;
		buf_free(&b);
		promql_result_free(&r);
		promql_expr_free(e);
	}
	return NULL;
}

/* Sorting and topk keep no shared state: concurrent queries give the single-thread answer. */
static void concurrent_queries_give_same_answers(void **state) {
	struct promql_memstore *m = promql_memstore_new();
	struct ward_err err;
	const char *load = "load 1m\n  x{i=\"1\"} 0+1x20\n  x{i=\"2\"} 0+3x20\n"
	                   "  x{i=\"3\"} 0+2x20\n";
	const char *qs[] = {"sort_desc(x)", "bottomk(2, x)", "sort(rate(x[5m]))", "topk(1, x)"};
	char *wants[4];
	struct worker w[4];
	pthread_t th[4];
	size_t i;

	assert_int_equal(promql_memstore_load(m, load, strlen(load), &err), 0);
	for (i = 0; i < 4; i++) {
		struct promql_storage st = promql_memstore_storage(m);
		struct promql_expr *e = promql_parse(qs[i], strlen(qs[i]), &err);
		struct promql_result r;
		enum promql_errtype et;
		struct buf b = BUF_INIT;
		assert_non_null(e);
		assert_int_equal(promql_eval_instant(&st, e, 600000, NULL, &r, &et, &err), 0);
		promql_result_json(&r, &b);
		wants[i] = buf_detach(&b);
		promql_result_free(&r);
		promql_expr_free(e);
	}
	assert_string_equal(
	        wants[0], "{\"resultType\":\"vector\",\"result\":["
	                  "{\"metric\":{\"__name__\":\"x\",\"i\":\"2\"},\"value\":[600,\"30\"]},"
	                  "{\"metric\":{\"__name__\":\"x\",\"i\":\"3\"},\"value\":[600,\"20\"]},"
	                  "{\"metric\":{\"__name__\":\"x\",\"i\":\"1\"},\"value\":[600,\"10\"]}]}");
	for (i = 0; i < 4; i++) {
		w[i].st = promql_memstore_storage(m);
		w[i].q = qs[i];
		w[i].want = wants[i];
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(w[i].ok);
		free(wants[i]);
	}
	promql_memstore_free(m);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(parse_errors_report_line_and_char),
	        cmocka_unit_test(parse_type_checks_like_prometheus),
	        cmocka_unit_test(canonical_string_round_trips),
	        cmocka_unit_test(expression_types),
	        cmocka_unit_test(parse_respects_length),
	        cmocka_unit_test(limits_and_errors_are_reported),
	        cmocka_unit_test(timeouts_stop_long_queries),
	        cmocka_unit_test(concurrent_queries_give_same_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
