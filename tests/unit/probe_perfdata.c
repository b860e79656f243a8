/* probe_perfdata.c: unit tests for the Nagios performance data parser (probe.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe/probe.h"

static struct probe_perf *parse(const char *s, size_t *n, struct ward_err *err) {
	struct probe_perf *p = NULL;
	ward_err_clear(err);
	int rc = probe_perfdata_parse(s, strlen(s), &p, n, err);
	assert_int_equal(rc, (int)*n);
	return p;
}

static void perfdata_parses_value_unit_and_thresholds(void **state) {
	struct ward_err err;
	size_t n;
	struct probe_perf *p =
	        parse("time=0.006s;1.000;2.000;0.000;10.000 size=1024B;;;0", &n, &err);
	assert_int_equal(n, 2);
	assert_false(ward_err_isset(&err));
	assert_string_equal(p[0].label, "time");
	assert_true(fabs(p[0].value - 0.006) < 1e-12);
	assert_string_equal(p[0].uom, "s");
	assert_true(p[0].has_warn && p[0].has_crit && p[0].has_min && p[0].has_max);
	assert_true(p[0].warn == 1.0 && p[0].crit == 2.0 && p[0].min == 0 && p[0].max == 10);
	assert_string_equal(p[1].label, "size");
	assert_string_equal(p[1].uom, "B");
	assert_true(p[1].value == 1024);
	assert_false(p[1].has_warn);
	assert_false(p[1].has_crit);
	assert_true(p[1].has_min);
	assert_false(p[1].has_max);
	probe_perf_free(p, n);
}

static void perfdata_quoted_labels_keep_spaces_and_quotes(void **state) {
	struct ward_err err;
	size_t n;
	struct probe_perf *p = parse("'/var lib'=42%;80;90 'it''s'=1", &n, &err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].label, "/var lib");
	assert_string_equal(p[0].uom, "%");
	assert_true(p[0].value == 42 && p[0].warn == 80 && p[0].crit == 90);
	assert_string_equal(p[1].label, "it's");
	probe_perf_free(p, n);
}

static void perfdata_ranges_report_their_upper_end(void **state) {
	struct ward_err err;
	size_t n;
	struct probe_perf *p = parse("a=5;10:20;@~:30 b=1;5:;~: c=U", &n, &err);
	assert_int_equal(n, 3);
	assert_true(p[0].warn == 20 && p[0].crit == 30);
	assert_true(p[1].has_warn && p[1].warn == 5);
	assert_false(p[1].has_crit);
	assert_true(isnan(p[2].value));
	probe_perf_free(p, n);
}

static void perfdata_skips_bad_items_and_says_where(void **state) {
	struct ward_err err;
	size_t n;
	struct probe_perf *p = parse("ok=1 bad=abc x y=2;;;;;; z=3", &n, &err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].label, "ok");
	assert_string_equal(p[1].label, "z");
	assert_true(ward_err_isset(&err));
	assert_non_null(strstr(err.msg, "byte 5"));
	assert_non_null(strstr(err.msg, "not a number"));
	probe_perf_free(p, n);
}

static void perfdata_reads_only_n_bytes(void **state) {
	struct probe_perf *p = NULL;
	size_t n;
	struct ward_err err;
	const char s[] = "a=1 b=2";
	ward_err_clear(&err);
	assert_int_equal(probe_perfdata_parse(s, 3, &p, &n, &err), 1);
	assert_string_equal(p[0].label, "a");
	probe_perf_free(p, n);
	/* an unterminated quote at the end of the window is an error, not an overread */
	char q[] = {'\'', 'a', 'b'};
	ward_err_clear(&err);
	assert_int_equal(probe_perfdata_parse(q, sizeof(q), &p, &n, &err), 0);
	assert_true(ward_err_isset(&err));
	probe_perf_free(p, n);
}

static void perfdata_caps_the_number_of_items(void **state) {
	struct buf b = BUF_INIT;
	for (int i = 0; i < PROBE_PERF_MAX_ITEMS + 50; i++)
		buf_printf(&b, "m%d=%d ", i, i);
	struct probe_perf *p = NULL;
	size_t n;
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(probe_perfdata_parse(b.data, b.len, &p, &n, &err), PROBE_PERF_MAX_ITEMS);
	probe_perf_free(p, n);
	buf_free(&b);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(perfdata_parses_value_unit_and_thresholds),
	        cmocka_unit_test(perfdata_quoted_labels_keep_spaces_and_quotes),
	        cmocka_unit_test(perfdata_ranges_report_their_upper_end),
	        cmocka_unit_test(perfdata_skips_bad_items_and_says_where),
	        cmocka_unit_test(perfdata_reads_only_n_bytes),
	        cmocka_unit_test(perfdata_caps_the_number_of_items),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
