/* base_buf.c: unit tests for struct buf, its JSON/logfmt/double writers, the string
 * helpers and struct ward_err. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static void buf_zeroed_is_empty_and_cstr_is_never_null(void **state) {
	struct buf b = BUF_INIT;

	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(b.len, 0);
	buf_free(&b);
	buf_free(&b); /* twice is fine */
}

static void buf_appends_grow_and_stay_nul_terminated(void **state) {
	struct buf b = BUF_INIT;
	int i;

	for (i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	assert_true(b.len > 3000);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strlen(b.data), b.len);
	buf_reset(&b);
	assert_string_equal(buf_cstr(&b), "");
	buf_puts(&b, "ab");
	buf_putc(&b, 'c');
	buf_append(&b, "d\0e", 3);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "abcd\0e", 7);
	buf_free(&b);
}

static void buf_printf_handles_long_output(void **state) {
	struct buf b = BUF_INIT;
	char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_puts(&b, "<");
	buf_printf(&b, "%s|%d", big, 42);
	assert_int_equal(b.len, 1 + 4999 + 3);
	assert_string_equal(b.data + b.len - 3, "|42");
	buf_free(&b);
}

static void buf_detach_returns_owned_string_and_empties(void **state) {
	struct buf b = BUF_INIT;
	char *s;

	buf_puts(&b, "hello");
	s = buf_detach(&b);
	assert_string_equal(s, "hello");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	s = buf_detach(&b);
	assert_string_equal(s, "");
	free(s);
}

static void json_str(const char *in, size_t n, const char *want) {
	struct buf b = BUF_INIT;

	buf_json_str(&b, in, n);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void json_str_escapes_quotes_controls_and_backslash(void **state) {
	json_str("a\"b\\c\n\t\r\x01", 9, "\"a\\\"b\\\\c\\n\\t\\r\\u0001\"");
	json_str("", 0, "\"\"");
	json_str("x\0y", 3, "\"x\\u0000y\"");
}

static void json_str_keeps_valid_utf8_and_replaces_invalid_with_fffd(void **state) {
	json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
	         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	json_str("a\xff"
	         "b",
	         3,
	         "\"a\xef\xbf\xbd"
	         "b\"");
	/* overlong '/', surrogate, truncated sequence */
	json_str("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	json_str("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	json_str("\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
}

static void logfmt(const char *in, const char *want) {
	struct buf b = BUF_INIT;

	buf_logfmt_val(&b, in, strlen(in));
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void logfmt_val_is_bare_when_safe_and_quoted_otherwise(void **state) {
	logfmt("127.0.0.1:9797", "127.0.0.1:9797");
	logfmt("", "\"\"");
	logfmt("two words", "\"two words\"");
	logfmt("a=b", "\"a=b\"");
	logfmt("say \"hi\"", "\"say \\\"hi\\\"\"");
	logfmt("line\nbreak", "\"line\\nbreak\"");
}

static void dbl(double v, const char *want) {
	struct buf b = BUF_INIT;

	buf_put_double(&b, v);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

/* The slow definition: the least precision whose %e text reads back as v. */
static int brute_shortest(double v, char *digits, int *e10) {
	char tmp[48];
	int prec, nd = 0;
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	const char *p = tmp;
	for (; *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	*e10 = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	return nd;
}

/* ward_dtoa_shortest agrees with the definition on integers, decimals, rates and random
 * bit patterns (normal and subnormal). */
static void dtoa_shortest_matches_the_definition(void **state) {
	uint64_t x = 0x9E3779B97F4A7C15u;
	for (int i = 0; i < 200000; i++) {
		double v;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		switch (i % 4) {
		case 0: memcpy(&v, &x, sizeof(v)); break;            /* any bits */
		case 1: v = (double)(x % 100000000) / 1000.0; break; /* decimals */
		case 2: v = (double)(x % 1000000) / 15.0; break;     /* rates */
		default: v = (double)(x >> 11); break;               /* integers */
		}
		if (!isfinite(v) || v == 0)
			continue;
		char a[WARD_DTOA_DIGITS], b[WARD_DTOA_DIGITS];
		int ea, eb;
		int na = ward_dtoa_shortest(v, a, &ea), nb = brute_shortest(fabs(v), b, &eb);
		if (na != nb || ea != eb || memcmp(a, b, (size_t)na)) {
			fprintf(stderr, "%.17g: got %.*se%d want %.*se%d\n", v, na, a, ea, nb, b, eb);
			fail();
		}
	}
}

static void dbl_fmt(void (*fn)(struct buf *, double), double v, const char *want) {
	struct buf b = BUF_INIT;

	fn(&b, v);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

/* Go's 'e' and 'f' with precision -1, as Prometheus writes alert and sample values. */
static void put_double_e_and_f_print_like_go(void **state) {
	dbl_fmt(buf_put_double_e, 0, "0e+00");
	dbl_fmt(buf_put_double_e, 1.5, "1.5e+00");
	dbl_fmt(buf_put_double_e, -0.00025, "-2.5e-04");
	dbl_fmt(buf_put_double_e, 1e300, "1e+300");
	dbl_fmt(buf_put_double_e, NAN, "NaN");
	dbl_fmt(buf_put_double_f, 1e6, "1000000");
	dbl_fmt(buf_put_double_f, 0.00001, "0.00001");
	dbl_fmt(buf_put_double_f, -0.0, "-0");
	dbl_fmt(buf_put_double_f, 0.1 + 0.2, "0.30000000000000004");
	dbl_fmt(buf_put_double_f, -INFINITY, "-Inf");
}

static void put_double_prints_like_go_shortest_g(void **state) {
	dbl(0, "0");
	dbl(1, "1");
	dbl(-2.5, "-2.5");
	dbl(0.1, "0.1");
	dbl(0.1 + 0.2, "0.30000000000000004");
	dbl(100000, "100000");
	dbl(1e6, "1e+06");
	dbl(123456789, "1.23456789e+08");
	dbl(0.0001, "0.0001");
	dbl(0.00001, "1e-05");
	dbl(0.005, "0.005");
	dbl(1.7976931348623157e308, "1.7976931348623157e+308");
	dbl(5e-324, "5e-324");
	dbl(0.0 / 0.0, "NaN");
	dbl(1.0 / 0.0, "+Inf");
	dbl(-1.0 / 0.0, "-Inf");
}

static void string_helpers_are_null_safe(void **state) {
	char *s;

	assert_null(ward_strdup(NULL));
	s = ward_strndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = ward_strndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
	assert_true(ward_streq(NULL, NULL));
	assert_false(ward_streq("a", NULL));
	assert_true(ward_streq("a", "a"));
	assert_true(ward_has_prefix("prefix-x", "prefix"));
	assert_false(ward_has_prefix("pre", "prefix"));
	assert_false(ward_has_prefix(NULL, "x"));
}

static void err_set_append_and_clear(void **state) {
	struct ward_err err;
	char big[3000];

	ward_err_clear(&err);
	assert_false(ward_err_isset(&err));
	assert_false(ward_err_isset(NULL));
	ward_err_set(NULL, "ignored %d", 1);
	ward_err_set(&err, "first %d", 1);
	ward_err_append(&err, "second");
	assert_string_equal(err.msg, "first 1\nsecond");
	ward_err_clear(&err);
	ward_err_append(&err, "only");
	assert_string_equal(err.msg, "only");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ward_err_set(&err, "%s", big);
	assert_int_equal(strlen(err.msg), WARD_ERR_MAX - 1);
	ward_err_append(&err, "more"); /* full: must not overflow */
	assert_int_equal(strlen(err.msg), WARD_ERR_MAX - 1);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(buf_zeroed_is_empty_and_cstr_is_never_null),
	        cmocka_unit_test(buf_appends_grow_and_stay_nul_terminated),
	        cmocka_unit_test(buf_printf_handles_long_output),
	        cmocka_unit_test(buf_detach_returns_owned_string_and_empties),
	        cmocka_unit_test(json_str_escapes_quotes_controls_and_backslash),
	        cmocka_unit_test(json_str_keeps_valid_utf8_and_replaces_invalid_with_fffd),
	        cmocka_unit_test(logfmt_val_is_bare_when_safe_and_quoted_otherwise),
	        cmocka_unit_test(put_double_prints_like_go_shortest_g),
	        cmocka_unit_test(dtoa_shortest_matches_the_definition),
	        cmocka_unit_test(put_double_e_and_f_print_like_go),
	        cmocka_unit_test(string_helpers_are_null_safe),
	        cmocka_unit_test(err_set_append_and_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
