/* logs_journal.c: unit tests for the pure parts of the journal source (src/logs/journal.c):
 * PRIORITY mapped to syslog level names, journalctl-style matches checked at config time,
 * "NAME=value" field splitting that never reads past the length, and journal values made
 * labels only when short, valid UTF-8 without control characters. Built only with
 * libsystemd (WARD_HAVE_JOURNAL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logs/module_internal.h"

static void priority_maps_to_syslog_level_names(void **state) {
	static const char *const want[] = {"emerg",   "alert",  "crit", "err",
	                                   "warning", "notice", "info", "debug"};
	for (int i = 0; i < 8; i++) {
		char v = (char)('0' + i);
		assert_string_equal(logs_journal_level(&v, 1), want[i]);
	}
	assert_null(logs_journal_level("8", 1));
	assert_null(logs_journal_level("-1", 2));
	assert_null(logs_journal_level("33", 2)); /* not "3" with junk after it */
	assert_null(logs_journal_level("3x", 2));
	assert_null(logs_journal_level("", 0));
	assert_string_equal(logs_journal_level("3junk", 1), "err"); /* length is what counts */
}

static void matches_are_checked_like_journalctl(void **state) {
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(logs_journal_match_check("_SYSTEMD_UNIT=nginx.service", &err), 0);
	assert_int_equal(logs_journal_match_check("PRIORITY=3", &err), 0);
	assert_int_equal(logs_journal_match_check("MESSAGE=", &err), 0); /* empty value is ok */
	assert_int_equal(logs_journal_match_check("+", &err), 0);
	assert_int_equal(logs_journal_match_check("nginx.service", &err), -1);
	assert_non_null(strstr(err.msg, "FIELD=value"));
	ward_err_clear(&err);
	assert_int_equal(logs_journal_match_check("=x", &err), -1);
	ward_err_clear(&err);
	assert_int_equal(logs_journal_match_check("_systemd_unit=x", &err), -1);
	assert_non_null(strstr(err.msg, "upper-case"));
	ward_err_clear(&err);
	assert_int_equal(logs_journal_match_check("1ABC=x", &err), -1);
	ward_err_clear(&err);
	char longname[80];
	memset(longname, 'A', 70);
	memcpy(longname + 70, "=x", 3);
	assert_int_equal(logs_journal_match_check(longname, &err), -1);
	assert_non_null(strstr(err.msg, "longer than"));
}

static void fields_split_by_length_not_terminator(void **state) {
	const char *v;
	size_t n;
	static const char data[] = "MESSAGE=hi\0there"; /* binary values carry NULs */
	assert_true(logs_journal_field(data, sizeof(data) - 1, "MESSAGE", &v, &n));
	assert_int_equal(n, 8);
	assert_memory_equal(v, "hi\0there", 8);
	assert_true(logs_journal_field("MESSAGE=", 8, "MESSAGE", &v, &n));
	assert_int_equal(n, 0);
	assert_false(logs_journal_field("MESSAGE", 7, "MESSAGE", &v, &n));
	assert_false(logs_journal_field("MESSAGEX=1", 10, "MESSAGE", &v, &n));
	assert_false(logs_journal_field("MESS", 4, "MESSAGE", &v, &n));
	assert_false(logs_journal_field(NULL, 0, "MESSAGE", &v, &n));
	/* a length shorter than the text: only that many bytes count */
	assert_false(logs_journal_field("MESSAGE=x", 7, "MESSAGE", &v, &n));
}

static void only_short_clean_utf8_values_become_labels(void **state) {
	char out[16];
	assert_true(logs_journal_label_value("nginx.service", 13, out, sizeof(out)));
	assert_string_equal(out, "nginx.service");
	assert_true(logs_journal_label_value("h\xc3\xa9t\xc3\xa9", 6, out, sizeof(out)));
	assert_false(logs_journal_label_value("", 0, out, sizeof(out)));
	assert_false(logs_journal_label_value("0123456789abcdef", 16, out, sizeof(out)));
	assert_false(logs_journal_label_value("a\0b", 3, out, sizeof(out)));
	assert_false(logs_journal_label_value("a\nb", 3, out, sizeof(out)));
	assert_false(logs_journal_label_value("a\x7f", 2, out, sizeof(out)));
	assert_false(logs_journal_label_value("\xff\xfe", 2, out, sizeof(out)));
	assert_false(logs_journal_label_value("\xc3", 1, out, sizeof(out)));         /* cut short */
	assert_false(logs_journal_label_value("\xc0\xaf", 2, out, sizeof(out)));     /* overlong */
	assert_false(logs_journal_label_value("\xed\xa0\x80", 3, out, sizeof(out))); /* surrogate */
}

static void journal_pipeline_defaults_job_to_journal(void **state) {
	struct logs_journal_conf jc = {.format = FMT_RAW};
	struct logs_file_conf fc;
	struct logs_pipeline p;
	struct ward_err err;
	ward_err_clear(&err);
	logs_journal_file_conf(&jc, &fc);
	assert_int_equal(logs_pipeline_init(&p, &fc, &err), 0);
	assert_string_equal(labels_get(&p.base, "job"), "journal");
	logs_pipeline_free(&p);
	struct conf_kv kv[] = {{"job", "sys"}};
	jc.labels = kv;
	jc.nlabels = 1;
	logs_journal_file_conf(&jc, &fc);
	assert_int_equal(logs_pipeline_init(&p, &fc, &err), 0);
	assert_string_equal(labels_get(&p.base, "job"), "sys");
	logs_pipeline_free(&p);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(priority_maps_to_syslog_level_names),
	        cmocka_unit_test(matches_are_checked_like_journalctl),
	        cmocka_unit_test(fields_split_by_length_not_terminator),
	        cmocka_unit_test(only_short_clean_utf8_values_become_labels),
	        cmocka_unit_test(journal_pipeline_defaults_job_to_journal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
