/* logs_pipeline.c: unit tests for a source's parsing pipeline: regex named groups and
 * JSON fields promoted to labels, timestamps taken from a field with rfc3339, unix and
 * strptime formats, static labels with job defaulting to "file", multiline start
 * detection, and bad patterns reported at config time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logs/module_internal.h"

static void apply(const struct logs_file_conf *c, const char *line, struct labels *ls,
                  int64_t *ts) {
	struct logs_pipeline p;
	struct logs_fields f = {0};
	struct ward_err err;
	ward_err_clear(&err);
	if (logs_pipeline_init(&p, c, &err) != 0)
		fail_msg("init: %s", err.msg);
	logs_pipeline_apply(&p, line, strlen(line), 42, ls, ts, &f);
	logs_fields_free(&f);
	logs_pipeline_free(&p);
}

static void regex_groups_become_labels_and_strptime_gives_the_time(void **state) {
	char *lf[] = {"method", "status"};
	struct conf_kv kv[] = {{"job", "nginx"}};
	struct logs_file_conf c = {
	        .format = FMT_REGEX,
	        .regex = "^(?<ip>\\S+) \\S+ \\S+ \\[(?<time>[^\\]]+)\\] \"(?<method>\\w+) [^\"]*\" "
	                 "(?<status>\\d+)",
	        .time_field = "time",
	        .time_format = "%d/%b/%Y:%H:%M:%S %z",
	        .label_fields = lf,
	        .nlabel_fields = 2,
	        .labels = kv,
	        .nlabels = 1};
	struct labels ls;
	int64_t ts;
	labels_init(&ls);
	apply(&c, "10.0.0.1 - - [14/Nov/2023:23:13:20 +0100] \"GET / HTTP/1.1\" 503 12", &ls, &ts);
	assert_string_equal(labels_get(&ls, "job"), "nginx");
	assert_string_equal(labels_get(&ls, "method"), "GET");
	assert_string_equal(labels_get(&ls, "status"), "503");
	assert_null(labels_get(&ls, "ip")); /* a field, not a label */
	assert_true(ts == 1700000000LL * 1000000000);
	labels_free(&ls);
}

static void json_time_field_and_default_job(void **state) {
	char *lf[] = {"level"};
	struct logs_file_conf c = {.format = FMT_JSON, .time_field = "ts", .time_format = "rfc3339",
	                           .label_fields = lf, .nlabel_fields = 1};
	struct labels ls;
	int64_t ts;
	labels_init(&ls);
	apply(&c, "{\"ts\":\"2023-11-14T22:13:20.25Z\",\"level\":\"warn\",\"msg\":\"x\"}", &ls, &ts);
	assert_string_equal(labels_get(&ls, "job"), "file");
	assert_string_equal(labels_get(&ls, "level"), "warn");
	assert_true(ts == 1700000000250000000LL);
	c.time_format = "unix_ms";
	apply(&c, "{\"ts\":\"1700000000123\"}", &ls, &ts);
	assert_true(ts == 1700000000123000000LL);
	apply(&c, "not json", &ls, &ts);
	assert_true(ts == 42); /* receipt time when the field is missing */
	labels_free(&ls);
}

static void multiline_start_pattern_and_bad_patterns(void **state) {
	struct logs_file_conf c = {.format = FMT_RAW, .multiline_start = "^\\d{4}-"};
	struct logs_pipeline p;
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(logs_pipeline_init(&p, &c, &err), 0);
	assert_true(logs_pipeline_is_start(&p, "2026-11-24 boom", 15));
	assert_false(logs_pipeline_is_start(&p, "\tat Foo.bar(Foo.java:1)", 23));
	logs_pipeline_free(&p);
	c.multiline_start = "([";
	assert_int_equal(logs_pipeline_init(&p, &c, &err), -1);
	assert_non_null(strstr(err.msg, "multiline_start"));
	struct logs_file_conf r = {.format = FMT_REGEX};
	assert_int_equal(logs_pipeline_init(&p, &r, &err), -1);
	assert_non_null(strstr(err.msg, "named groups"));
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(regex_groups_become_labels_and_strptime_gives_the_time),
	        cmocka_unit_test(json_time_field_and_default_job),
	        cmocka_unit_test(multiline_start_pattern_and_bad_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
