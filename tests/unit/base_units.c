/* base_units.c: unit tests for durations, sizes and time parsing/formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static int64_t dur_ok(const char *s) {
	struct ward_err err;
	int64_t ms = -1;

	ward_err_clear(&err);
	assert_int_equal(ward_parse_duration(s, strlen(s), &ms, &err), 0);
	assert_false(ward_err_isset(&err));
	return ms;
}

static void dur_bad(const char *s, const char *msg_part) {
	struct ward_err err;
	int64_t ms = 12345;

	ward_err_clear(&err);
	assert_int_equal(ward_parse_duration(s, strlen(s), &ms, &err), -1);
	assert_true(ward_err_isset(&err));
	assert_non_null(strstr(err.msg, msg_part));
	assert_int_equal(ms, 12345);
}

static void duration_parses_prometheus_forms(void **state) {
	assert_int_equal(dur_ok("0"), 0);
	assert_int_equal(dur_ok("0s"), 0);
	assert_int_equal(dur_ok("500ms"), 500);
	assert_int_equal(dur_ok("15s"), 15000);
	assert_int_equal(dur_ok("1h30m"), 5400000);
	assert_int_equal(dur_ok("2d"), 2 * 86400000LL);
	assert_int_equal(dur_ok("1w"), 7 * 86400000LL);
	assert_int_equal(dur_ok("1y"), 365 * 86400000LL);
	assert_int_equal(dur_ok("1y2w3d4h5m6s7ms"), 365 * 86400000LL + 14 * 86400000LL +
	                                                    3 * 86400000LL + 4 * 3600000LL +
	                                                    5 * 60000 + 6000 + 7);
}

static void duration_rejects_bad_order_units_and_overflow(void **state) {
	dur_bad("", "empty");
	dur_bad("30m1h", "largest first");
	dur_bad("1m1m", "largest first");
	dur_bad("10", "missing unit");
	dur_bad("10x", "unknown unit");
	dur_bad("1.5h", "fractions are not allowed");
	dur_bad("-1h", "expected a number");
	dur_bad("h", "expected a number");
	dur_bad("1h ", "expected a number");
	dur_bad("99999999999999999999s", "too large");
	dur_bad("300000000y", "too large");
	dur_bad("292471208y364d", "too large");
}

static void duration_parse_uses_length_not_terminator(void **state) {
	int64_t ms;

	assert_int_equal(ward_parse_duration("5m30s", 2, &ms, NULL), 0);
	assert_int_equal(ms, 300000);
}

static void fmt_dur(int64_t ms, const char *want) {
	char out[32];
	int64_t back;

	ward_fmt_duration(ms, out);
	assert_string_equal(out, want);
	if (ms >= 0) {
		assert_int_equal(ward_parse_duration(out, strlen(out), &back, NULL), 0);
		assert_int_equal(back, ms);
	}
}

static void duration_formats_shortest_and_round_trips(void **state) {
	fmt_dur(0, "0s");
	fmt_dur(500, "500ms");
	fmt_dur(5400000, "1h30m");
	fmt_dur(90 * 86400000LL, "90d");
	fmt_dur(14 * 86400000LL, "2w");
	fmt_dur(365 * 86400000LL, "1y");
	fmt_dur(86400000LL + 1, "1d1ms");
	fmt_dur(INT64_MAX, "106751991167d7h12m55s807ms");
	fmt_dur(-1500, "-1s500ms");
}

static int64_t size_ok(const char *s) {
	int64_t v = -1;

	assert_int_equal(ward_parse_size(s, strlen(s), &v, NULL), 0);
	return v;
}

static void size_parses_decimal_and_binary_units(void **state) {
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("10B"), 10);
	assert_int_equal(size_ok("10KB"), 10000);
	assert_int_equal(size_ok("512MiB"), 512LL * 1024 * 1024);
	assert_int_equal(size_ok("2GiB"), 2LL << 30);
	assert_int_equal(size_ok("3TB"), 3000000000000LL);
	assert_int_equal(size_ok("1kib"), 1024);
}

static void size_rejects_fractions_unknown_units_and_overflow(void **state) {
	struct ward_err err;
	int64_t v;
	const char *bad[] = {"",      "MiB",  "1.5GiB",     "-1",
	                     "10 MB", "10XB", "9999999TiB", "99999999999999999999"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ward_err_clear(&err);
		assert_int_equal(ward_parse_size(bad[i], strlen(bad[i]), &v, &err), -1);
		assert_true(ward_err_isset(&err));
	}
}

static void size_formats_exact_units_and_round_trips(void **state) {
	const int64_t vals[] = {0, 1, 1000, 1024, 4096, 1536, 512LL << 20, 1000000, 12345};
	const char *want[] = {"0B",    "1B",     "1KB", "1KiB",  "4KiB",
	                      "1536B", "512MiB", "1MB", "12345B"};
	char out[32];
	int64_t back;
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		ward_fmt_size(vals[i], out);
		assert_string_equal(out, want[i]);
		assert_int_equal(ward_parse_size(out, strlen(out), &back, NULL), 0);
		assert_int_equal(back, vals[i]);
	}
}

static int64_t time_ok(const char *s) {
	int64_t ms = 0;

	assert_int_equal(ward_parse_time(s, strlen(s), &ms), 0);
	return ms;
}

static void time_parses_rfc3339_with_fraction_and_offsets(void **state) {
	assert_int_equal(time_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(time_ok("2024-11-24T11:51:03Z"), 1732449063000LL);
	assert_int_equal(time_ok("2024-11-24T11:51:03.5Z"), 1732449063500LL);
	assert_int_equal(time_ok("2024-11-24T11:51:03.123456789Z"), 1732449063123LL);
	assert_int_equal(time_ok("2024-11-24T12:51:03+01:00"), 1732449063000LL);
	assert_int_equal(time_ok("2024-11-24T06:21:03-05:30"), 1732449063000LL);
	assert_int_equal(time_ok("2024-02-29t00:00:00z"), 1709164800000LL);
	assert_int_equal(time_ok("1969-12-31T23:59:59.999Z"), -1);
}

static void time_parses_unix_seconds_with_fraction(void **state) {
	assert_int_equal(time_ok("1732449063"), 1732449063000LL);
	assert_int_equal(time_ok("1732449063.5"), 1732449063500LL);
	assert_int_equal(time_ok("1732449063.1239"), 1732449063123LL);
	assert_int_equal(time_ok("0"), 0);
}

static void time_rejects_malformed_input(void **state) {
	const char *bad[] = {"",
	                     "2024-13-01T00:00:00Z",
	                     "2023-02-29T00:00:00Z",
	                     "2024-11-24T24:00:00Z",
	                     "2024-11-24T11:51:03",
	                     "2024-11-24T11:51:03.Z",
	                     "2024-11-24T11:51:03+0100",
	                     "2024-11-24T11:51:03Zjunk",
	                     "2024-11-24",
	                     "abc",
	                     "1.2.3",
	                     "."};
	int64_t ms;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ward_parse_time(bad[i], strlen(bad[i]), &ms), -1);
}

static void time_formats_rfc3339_ms_and_round_trips(void **state) {
	char out[32];
	const int64_t vals[] = {0, 1732449063123LL, -1, 951782400000LL, 253402300799999LL};
	const char *want[] = {"1970-01-01T00:00:00.000Z", "2024-11-24T11:51:03.123Z",
	                      "1969-12-31T23:59:59.999Z", "2000-02-29T00:00:00.000Z",
	                      "9999-12-31T23:59:59.999Z"};
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		ward_fmt_rfc3339(vals[i], out);
		assert_string_equal(out, want[i]);
		assert_int_equal(time_ok(out), vals[i]);
	}
}

static void clocks_move_forward(void **state) {
	int64_t a = ward_mono_ns(), b;

	assert_true(ward_now_ms() > 1700000000000LL);
	b = ward_mono_ns();
	assert_true(b >= a);
	assert_true(ward_mono_ms() >= a / 1000000);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(duration_parses_prometheus_forms),
	        cmocka_unit_test(duration_rejects_bad_order_units_and_overflow),
	        cmocka_unit_test(duration_parse_uses_length_not_terminator),
	        cmocka_unit_test(duration_formats_shortest_and_round_trips),
	        cmocka_unit_test(size_parses_decimal_and_binary_units),
	        cmocka_unit_test(size_rejects_fractions_unknown_units_and_overflow),
	        cmocka_unit_test(size_formats_exact_units_and_round_trips),
	        cmocka_unit_test(time_parses_rfc3339_with_fraction_and_offsets),
	        cmocka_unit_test(time_parses_unix_seconds_with_fraction),
	        cmocka_unit_test(time_rejects_malformed_input),
	        cmocka_unit_test(time_formats_rfc3339_ms_and_round_trips),
	        cmocka_unit_test(clocks_move_forward),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
