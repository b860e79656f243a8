/* logs_query.c: unit tests for the LogQL subset: valid queries parse and print back in
 * canonical form, invalid ones report the column of the problem, and the evaluator
 * returns the right lines (filters, parsers, field comparisons, limit and direction) and
 * the right counts for metric queries with aggregation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "logs/logs.h"

static char tmpdir[64];
static struct logs_store *st;
static const int64_t T0 = 1700000000000000000LL;
static const int64_t SEC = 1000000000LL;

static void put(const char *job, const char *level, int64_t ts, const char *line) {
	struct labels ls;
	struct ward_err err;
	labels_init(&ls);
	labels_set(&ls, "job", job);
	labels_set(&ls, "level", level);
	struct logs_entry e = {ts, line, strlen(line)};
	ward_err_clear(&err);
	assert_int_equal(logs_store_append(st, &ls, &e, 1, false, &err), 0);
	labels_free(&ls);
}

static int setup(void **state) {
	struct logs_store_opts o;
	struct ward_err err;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ward-logs-query-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	logs_store_opts_default(&o);
	o.dir = tmpdir;
	o.wal_fsync = false;
	ward_err_clear(&err);
	st = logs_store_open(&o, &err);
	if (!st)
		return -1;
	/* nginx: 60 lines, one per second; every 10th is a 500. */
	for (int i = 0; i < 60; i++) {
		char line[128];
		snprintf(line, sizeof(line), "GET /p%d status=%d dur=%dms", i,
		         i % 10 == 0 ? 500 : 200, i);
		put("nginx", i % 10 == 0 ? "error" : "info", T0 + i * SEC, line);
	}
	/* app: JSON lines, half of them in the first block on disk. */
	for (int i = 0; i < 20; i++) {
		char line[128];
		snprintf(line, sizeof(line),
		         "{\"level\":\"%s\",\"user\":{\"id\":%d},\"msg\":\"m%d\"}",
		         i % 4 == 0 ? "warn" : "info", i, i);
		put("app", "info", T0 + i * SEC, line);
		if (i == 9)
			assert_int_equal(logs_store_flush(st, &err), 0);
	}
	return 0;
}

static int teardown(void **state) {
	char cmd[128];
	logs_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void assert_parses_to(const char *q, const char *canon) {
	struct ward_err err;
	struct buf out = BUF_INIT;
	ward_err_clear(&err);
	struct logs_query *lq = logs_query_parse(q, strlen(q), &err);
	if (!lq)
		fail_msg("%s: %s", q, err.msg);
	logs_query_print(lq, &out);
	assert_string_equal(buf_cstr(&out), canon);
	buf_free(&out);
	logs_query_free(lq);
}

static void assert_error_at(const char *q, int col, const char *what) {
	struct ward_err err;
	char want[64];
	ward_err_clear(&err);
	struct logs_query *lq = logs_query_parse(q, strlen(q), &err);
	if (lq)
		fail_msg("%s parsed but must not", q);
	snprintf(want, sizeof(want), "col %d:", col);
	if (!strstr(err.msg, want) || !strstr(err.msg, what))
		fail_msg("%s: got \"%s\", want col %d and \"%s\"", q, err.msg, col, what);
}

static void valid_queries_parse_to_canonical_form(void **state) {
	assert_parses_to("{job=\"nginx\",level=~\"warn|error\"}",
	                 "{job=\"nginx\",level=~\"warn|error\"}");
	assert_parses_to("{job=\"a\"} |= \"x\" != `y` |~ \"z+\" !~ \"w\"",
	                 "{job=\"a\"} |= \"x\" != \"y\" |~ \"z+\" !~ \"w\"");
	assert_parses_to("{job=\"a\"} | json | status >= 500 | level = \"error\"",
	                 "{job=\"a\"} | json | status >= 500 | level = \"error\"");
	assert_parses_to("{job!=\"b\", host!~\"x.*\", job=~\".+\"} | logfmt | dur > 1.5s",
	                 "{job!=\"b\",host!~\"x.*\",job=~\".+\"} | logfmt | dur > 1.5s");
	assert_parses_to("count_over_time({job=\"a\"}[5m])", "count_over_time({job=\"a\"} [5m])");
	assert_parses_to("sum by (level) (rate({job=\"a\"} |= \"e\" [1m]))",
	                 "sum by (level) (rate({job=\"a\"} |= \"e\" [1m]))");
	assert_parses_to("max(bytes_over_time({job=\"a\"}[1h])) by (job)",
	                 "max by (job) (bytes_over_time({job=\"a\"} [1h]))");
}

static void invalid_queries_report_the_column(void **state) {
	assert_error_at("", 1, "expected '{'");
	assert_error_at("{job=\"a\"", 9, "expected ',' or '}'");
	assert_error_at("{job=nginx}", 6, "quoted value");
	assert_error_at("{job=\"a\"} |= nope", 14, "quoted string");
	assert_error_at("{job=\"a\"} | status >", 21, "number or a quoted string");
	assert_error_at("{job=\"a\"} | status > \"5\"", 20, "compare numbers");
	assert_error_at("{job=\"a\"} |~ \"(\"", 14, "regular expression");
	assert_error_at("{job=\"\"}", 1, "at least one matcher");
	assert_error_at("rate({job=\"a\"})", 15, "expected '['");
	assert_error_at("rate({job=\"a\"}[5x])", 16, "bad range duration");
	assert_error_at("avg({job=\"a\"})", 5, "range function");
	assert_error_at("rate({job=\"a\"}[400d])", 16, "366d");
	assert_error_at("{job=\"a\"} extra", 11, "unexpected identifier");
	assert_error_at("{job=\"a\"} | \"x\"", 13, "expected json");
	assert_error_at("{job=\"a\" ! \"b\"}", 10, "'!' must be followed");
}

static char *run(const char *q, int64_t start, int64_t end, int64_t step, size_t limit,
                 enum logs_direction dir) {
	struct ward_err err;
	struct buf out = BUF_INIT;
	ward_err_clear(&err);
	struct logs_query *lq = logs_query_parse(q, strlen(q), &err);
	if (!lq)
		fail_msg("%s: %s", q, err.msg);
	struct logs_query_opts o = {.start_ns = start,
	                            .end_ns = end,
	                            .step_ns = step,
	                            .limit = limit,
	                            .direction = dir};
	if (logs_query_exec(st, lq, &o, &out, &err) != 0)
		fail_msg("%s: %s", q, err.msg);
	logs_query_free(lq);
	return buf_detach(&out);
}

static int count_of(const char *s, const char *needle) {
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void line_filters_and_field_filters_select_lines(void **state) {
	char *j =
	        run("{job=\"nginx\"} |= \"status=500\"", T0, T0 + 100 * SEC, 0, 1000, LOGS_FORWARD);
	assert_int_equal(count_of(j, "GET /p"), 6);
	free(j);
	j = run("{job=\"nginx\"} | logfmt | status >= 500", T0, T0 + 100 * SEC, 0, 1000,
	        LOGS_FORWARD);
	assert_int_equal(count_of(j, "GET /p"), 6);
	assert_non_null(strstr(j, "\"status\":\"500\""));
	free(j);
	j = run("{job=\"nginx\"} | logfmt | dur < 5ms", T0, T0 + 100 * SEC, 0, 1000, LOGS_FORWARD);
	assert_int_equal(count_of(j, "GET /p"), 5);
	free(j);
	j = run("{job=\"nginx\",level=~\"err.*\"} !~ \"p[0-2]0 \"", T0, T0 + 100 * SEC, 0, 1000,
	        LOGS_FORWARD);
	assert_int_equal(count_of(j, "GET /p"), 4); /* p0 p30 p40 p50 */
	free(j);
	j = run("{job=\"app\"} | json | level = \"warn\" | user_id > 8", T0, T0 + 100 * SEC, 0,
	        1000, LOGS_FORWARD);
	assert_int_equal(count_of(j, "\\\"msg\\\""), 2); /* ids 12 and 16 */
	free(j);
}

static void limit_and_direction_pick_the_right_end(void **state) {
	char *j = run("{job=\"nginx\"}", T0, T0 + 100 * SEC, 0, 3, LOGS_BACKWARD);
	assert_int_equal(count_of(j, "GET /p"), 3);
	assert_non_null(strstr(j, "GET /p59 "));
	assert_non_null(strstr(j, "GET /p57 "));
	assert_null(strstr(j, "GET /p56 "));
	free(j);
	j = run("{job=\"nginx\"}", T0 + 10 * SEC, T0 + 100 * SEC, 0, 2, LOGS_FORWARD);
	assert_non_null(strstr(j, "GET /p10 "));
	assert_non_null(strstr(j, "GET /p11 "));
	assert_int_equal(count_of(j, "GET /p"), 2);
	free(j);
}

static void metric_queries_count_per_step_and_aggregate(void **state) {
	/* Instant: lines in (T0+59s-60s, T0+59s] = all 60 nginx lines. */
	char *j = run("count_over_time({job=\"nginx\"}[1m])", 0, T0 + 59 * SEC, 0, 0, LOGS_FORWARD);
	assert_non_null(strstr(j, "\"resultType\":\"vector\""));
	assert_non_null(strstr(j, "{\"job\":\"nginx\",\"level\":\"error\"}"));
	assert_non_null(strstr(j, "\"6\"]"));
	assert_non_null(strstr(j, "\"54\"]"));
	free(j);
	j = run("sum by (job) (count_over_time({job=~\"nginx|app\"}[1m]))", 0, T0 + 59 * SEC, 0, 0,
	        LOGS_FORWARD);
	assert_non_null(
	        strstr(j, "{\"metric\":{\"job\":\"nginx\"},\"value\":[1700000059,\"60\"]}"));
	assert_non_null(strstr(j, "{\"metric\":{\"job\":\"app\"},\"value\":[1700000059,\"20\"]}"));
	free(j);
	/* Range: steps every 10 s over a 10 s window: 10 lines each (the first sees 1). */
	j = run("sum(count_over_time({job=\"nginx\"}[10s]))", T0, T0 + 30 * SEC, 10 * SEC, 0,
	        LOGS_FORWARD);
	assert_string_equal(j, "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":"
	                       "[[1700000000,\"1\"],[1700000010,\"10\"],[1700000020,\"10\"],"
	                       "[1700000030,\"10\"]]}]}");
	free(j);
	j = run("rate({job=\"nginx\"} |= \"status=500\" [10s])", T0, T0 + 20 * SEC, 20 * SEC, 0,
	        LOGS_FORWARD);
	assert_non_null(strstr(j, "[1700000020,\"0.1\"]"));
	free(j);
	j = run("count by (level) (count_over_time({job=\"nginx\"}[1m]))", 0, T0 + 59 * SEC, 0, 0,
	        LOGS_FORWARD);
	assert_int_equal(count_of(j, "\"1\"]"), 2);
	free(j);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(valid_queries_parse_to_canonical_form),
	        cmocka_unit_test(invalid_queries_report_the_column),
	        cmocka_unit_test(line_filters_and_field_filters_select_lines),
	        cmocka_unit_test(limit_and_direction_pick_the_right_end),
	        cmocka_unit_test(metric_queries_count_per_step_and_aggregate),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
