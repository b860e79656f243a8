/* logs_parse.c: unit tests for the log parsers: RFC 5424 and RFC 3164 syslog messages,
 * RFC 6587 framing (octet counting, newlines, split reads, over-long messages), JSON and
 * logfmt fields, timestamps with nanoseconds, and UTF-8 sanitizing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logs/logs.h"

static bool span_is(const char *p, size_t n, const char *want) {
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

static void rfc5424_message_parses_every_field(void **state) {
	const char *m = "<165>1 2003-10-11T22:14:15.003000123Z mymachine.example.com evntslog - "
	                "ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]lication\"] "
	                "\xEF\xBB\xBF"
	                "An application event";
	struct logs_syslog_msg s;
	logs_syslog_parse(m, strlen(m), 0, &s);
	assert_int_equal(s.version, 1);
	assert_int_equal(s.facility, 20);
	assert_int_equal(s.severity, 5);
	assert_true(s.ts_ns == 1065910455003000123LL);
	assert_true(span_is(s.host, s.host_len, "mymachine.example.com"));
	assert_true(span_is(s.app, s.app_len, "evntslog"));
	assert_int_equal(s.procid_len, 0);
	assert_true(span_is(s.msgid, s.msgid_len, "ID47"));
	assert_true(span_is(s.sd, s.sd_len,
	                    "[exampleSDID@32473 iut=\"3\" eventSource=\"App\\]lication\"]"));
	assert_true(span_is(s.msg, s.msg_len, "An application event"));
}

static void rfc5424_nil_values_and_offset_time(void **state) {
	const char *m = "<14>1 2026-11-24T12:00:00+01:00 - - - - - hi\n";
	struct logs_syslog_msg s;
	logs_syslog_parse(m, strlen(m), 0, &s);
	assert_int_equal(s.host_len, 0);
	assert_int_equal(s.app_len, 0);
	assert_true(s.ts_ns == 1795518000LL * 1000000000); /* 11:00Z */
	assert_true(span_is(s.msg, s.msg_len, "hi"));
}

static void rfc3164_message_parses_host_tag_and_pid(void **state) {
	const char *m = "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick";
	struct logs_syslog_msg s;
	int64_t now = 1760220000000LL; /* 2025-10-11 */
	logs_syslog_parse(m, strlen(m), now, &s);
	assert_int_equal(s.version, 0);
	assert_int_equal(s.facility, 4);
	assert_int_equal(s.severity, 2);
	assert_true(span_is(s.host, s.host_len, "mymachine"));
	assert_true(span_is(s.app, s.app_len, "su"));
	assert_true(span_is(s.procid, s.procid_len, "123"));
	assert_true(span_is(s.msg, s.msg_len, "'su root' failed for lonvick"));
	assert_true(s.ts_ns == 1760220855LL * 1000000000);
}

static void rfc3164_without_host_and_garbage_are_kept_as_message(void **state) {
	struct logs_syslog_msg s;
	const char *m = "<13>Feb  5 01:02:03 app: hello";
	logs_syslog_parse(m, strlen(m), 1760220000000LL, &s);
	assert_int_equal(s.host_len, 0);
	assert_true(span_is(s.app, s.app_len, "app"));
	assert_true(span_is(s.msg, s.msg_len, "hello"));
	const char *g = "<999>not syslog at all";
	logs_syslog_parse(g, strlen(g), 0, &s);
	assert_int_equal(s.pri, -1);
	assert_true(span_is(s.msg, s.msg_len, "<999>not syslog at all"));
	logs_syslog_parse("", 0, 0, &s);
	assert_int_equal(s.msg_len, 0);
}

struct got {
	char msgs[16][128];
	int n;
};
static void collect(void *arg, const char *m, size_t n) {
	struct got *g = arg;
	if (g->n < 16) {
		snprintf(g->msgs[g->n], sizeof(g->msgs[0]), "%.*s", (int)n, m);
		g->n++;
	}
}

static void framer_handles_octet_counting_newlines_and_split_reads(void **state) {
	struct logs_framer f;
	struct got g = {0};
	logs_framer_init(&f, 1024);
	const char *stream = "11 <13>1 - a b5 <1>xyplain line\n20 <13>1 - - - - -";
	/* Feed one byte at a time: every split point must work. */
	for (size_t i = 0; i < strlen(stream); i++)
		assert_int_equal(logs_framer_feed(&f, stream + i, 1, collect, &g), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.msgs[0], "<13>1 - a b");
	assert_string_equal(g.msgs[1], "<1>xy");
	assert_string_equal(g.msgs[2], "plain line");
	logs_framer_feed(&f, " ", 1, collect, &g);
	assert_int_equal(g.n, 3);
	logs_framer_finish(&f, collect, &g);
	logs_framer_free(&f);
}

static void framer_truncates_long_messages_with_bounded_memory(void **state) {
	struct logs_framer f;
	struct got g = {0};
	logs_framer_init(&f, 16);
	char big[5000];
	memset(big, 'a', sizeof(big));
	for (int i = 0; i < 100; i++)
		logs_framer_feed(&f, big, sizeof(big), collect, &g);
	assert_true(f.pending.cap < 1024);
	logs_framer_feed(&f, "\nok\n", 4, collect, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(strlen(g.msgs[0]), 16);
	assert_string_equal(g.msgs[1], "ok");
	assert_int_equal(f.truncated, 1);
	logs_framer_free(&f);
}

static void json_fields_are_flattened_and_unescaped(void **state) {
	struct logs_fields f = {0};
	const char *j =
	        "{\"level\":\"error\",\"n\":12.5,\"ok\":true,\"nil\":null,\"req\":{\"path\":"
	        "\"/a\\\"b\",\"h\":{\"x-y\":\"\\u00e9\\ud83d\\ude00\"}},\"arr\":[1,{\"a\":2}]}";
	assert_int_equal(logs_parse_json(j, strlen(j), &f), 0);
	assert_string_equal(logs_fields_get(&f, "level"), "error");
	assert_string_equal(logs_fields_get(&f, "n"), "12.5");
	assert_string_equal(logs_fields_get(&f, "ok"), "true");
	assert_string_equal(logs_fields_get(&f, "nil"), "");
	assert_string_equal(logs_fields_get(&f, "req_path"), "/a\"b");
	assert_string_equal(logs_fields_get(&f, "req_h_x_y"), "\xc3\xa9\xf0\x9f\x98\x80");
	assert_string_equal(logs_fields_get(&f, "arr"), "[1,{\"a\":2}]");
	logs_fields_reset(&f);
	assert_int_equal(logs_parse_json("[1,2]", 5, &f), -1);
	assert_int_equal(logs_parse_json("{\"a\":", 5, &f), -1);
	logs_fields_free(&f);
}

static void logfmt_fields_handle_quotes_and_bare_keys(void **state) {
	struct logs_fields f = {0};
	const char *l = "ts=2026 level=info msg=\"hello \\\"you\\\"\" bare path=/x=y  \"stray\" k=";
	assert_int_equal(logs_parse_logfmt(l, strlen(l), &f), 0);
	assert_string_equal(logs_fields_get(&f, "level"), "info");
	assert_string_equal(logs_fields_get(&f, "msg"), "hello \"you\"");
	assert_string_equal(logs_fields_get(&f, "bare"), "");
	assert_string_equal(logs_fields_get(&f, "path"), "/x=y");
	assert_string_equal(logs_fields_get(&f, "k"), "");
	logs_fields_free(&f);
}

static void times_parse_with_nanoseconds(void **state) {
	int64_t ns;
	assert_int_equal(logs_parse_time_ns("1700000000123456789", 19, &ns), 0);
	assert_true(ns == 1700000000123456789LL);
	assert_int_equal(logs_parse_time_ns("1700000000", 10, &ns), 0);
	assert_true(ns == 1700000000LL * 1000000000);
	assert_int_equal(logs_parse_time_ns("1700000000123", 13, &ns), 0);
	assert_true(ns == 1700000000123LL * 1000000);
	assert_int_equal(logs_parse_time_ns("2023-11-14T22:13:20.5Z", 22, &ns), 0);
	assert_true(ns == 1700000000500000000LL);
	assert_int_equal(logs_parse_time_ns("yesterday", 9, &ns), -1);
}

static void invalid_utf8_is_escaped_valid_is_untouched(void **state) {
	struct buf b = BUF_INIT;
	assert_false(logs_sanitize_utf8("h\xc3\xa9llo", 6, &b));
	assert_true(logs_sanitize_utf8("a\xff"
	                               "b\xc3",
	                               4, &b));
	assert_string_equal(buf_cstr(&b), "a\\xFFb\\xC3");
	assert_true(logs_sanitize_utf8("\xed\xa0\x80", 3, &b)); /* a surrogate */
	buf_free(&b);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(rfc5424_message_parses_every_field),
	        cmocka_unit_test(rfc5424_nil_values_and_offset_time),
	        cmocka_unit_test(rfc3164_message_parses_host_tag_and_pid),
	        cmocka_unit_test(rfc3164_without_host_and_garbage_are_kept_as_message),
	        cmocka_unit_test(framer_handles_octet_counting_newlines_and_split_reads),
	        cmocka_unit_test(framer_truncates_long_messages_with_bounded_memory),
	        cmocka_unit_test(json_fields_are_flattened_and_unescaped),
	        cmocka_unit_test(logfmt_fields_handle_quotes_and_bare_keys),
	        cmocka_unit_test(times_parse_with_nanoseconds),
	        cmocka_unit_test(invalid_utf8_is_escaped_valid_is_untouched),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
