/* base_labels.c: unit tests for label sets (sorted, owned, comparable, hashable) and for
 * label matchers with fully anchored PCRE2 regexes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static void labels_stay_sorted_and_unique(void **state) {
	struct labels ls;

	labels_init(&ls);
	labels_set(&ls, "job", "node");
	labels_set(&ls, "__name__", "up");
	labels_set(&ls, "instance", "a:9100");
	labels_set(&ls, "job", "ward"); /* replaces */
	assert_int_equal(ls.n, 3);
	assert_string_equal(ls.v[0].name, "__name__");
	assert_string_equal(ls.v[1].name, "instance");
	assert_string_equal(ls.v[2].name, "job");
	assert_string_equal(labels_get(&ls, "job"), "ward");
	assert_null(labels_get(&ls, "missing"));
	labels_free(&ls);
	assert_int_equal(ls.n, 0);
	labels_free(&ls);
}

static void empty_value_removes_label(void **state) {
	struct labels ls;

	labels_init(&ls);
	labels_set(&ls, "a", "1");
	labels_set(&ls, "b", "2");
	labels_set(&ls, "a", "");
	assert_int_equal(ls.n, 1);
	assert_null(labels_get(&ls, "a"));
	labels_set(&ls, "c", NULL);
	assert_int_equal(ls.n, 1);
	labels_del(&ls, "b");
	labels_del(&ls, "nothing");
	assert_int_equal(ls.n, 0);
	labels_free(&ls);
}

static void copy_is_deep_and_compares_equal(void **state) {
	struct labels a, b;

	labels_init(&a);
	labels_init(&b);
	labels_set(&a, "x", "1");
	labels_set(&a, "y", "2");
	labels_set(&b, "old", "gone");
	labels_copy(&b, &a);
	assert_true(labels_equal(&a, &b));
	assert_int_equal(labels_hash(&a), labels_hash(&b));
	labels_set(&a, "x", "changed");
	assert_string_equal(labels_get(&b, "x"), "1");
	assert_false(labels_equal(&a, &b));
	labels_free(&a);
	labels_free(&b);
}

static void compare_is_pairwise_then_by_length(void **state) {
	struct labels a, b;

	labels_init(&a);
	labels_init(&b);
	labels_set(&a, "a", "1");
	labels_set(&b, "a", "2");
	assert_true(labels_cmp(&a, &b) < 0);
	assert_true(labels_cmp(&b, &a) > 0);
	labels_set(&b, "a", "1");
	labels_set(&b, "b", "1");
	assert_true(labels_cmp(&a, &b) < 0); /* prefix sorts first */
	labels_set(&a, "c", "1");
	assert_true(labels_cmp(&a, &b) > 0); /* "b" < "c" by name */
	labels_free(&a);
	labels_free(&b);
}

static void hash_is_stable_and_separates_name_from_value(void **state) {
	struct labels a, b, e;

	labels_init(&a);
	labels_init(&b);
	labels_init(&e);
	labels_set(&a, "ab", "c");
	labels_set(&b, "a", "bc");
	assert_true(labels_hash(&a) != labels_hash(&b));
	/* FNV-1a of nothing: the offset basis, the same in every run. */
	assert_true(labels_hash(&e) == 0xcbf29ce484222325ULL);
	labels_free(&a);
	labels_free(&b);
}

static void write_puts_name_first_and_escapes_values(void **state) {
	struct labels ls;
	struct buf b = BUF_INIT;

	labels_init(&ls);
	labels_set(&ls, "__name__", "up");
	buf_reset(&b);
	labels_write(&b, &ls);
	assert_string_equal(buf_cstr(&b), "up");
	labels_set(&ls, "job", "a\"b\\c\nd");
	labels_set(&ls, "env", "prod");
	buf_reset(&b);
	labels_write(&b, &ls);
	assert_string_equal(buf_cstr(&b), "up{env=\"prod\",job=\"a\\\"b\\\\c\\nd\"}");
	labels_del(&ls, "__name__");
	buf_reset(&b);
	labels_write(&b, &ls);
	assert_string_equal(buf_cstr(&b), "{env=\"prod\",job=\"a\\\"b\\\\c\\nd\"}");
	labels_free(&ls);
	buf_reset(&b);
	labels_write(&b, &ls);
	assert_string_equal(buf_cstr(&b), "{}");
	buf_free(&b);
}

static bool match(enum matcher_op op, const char *pattern, const char *value) {
	struct matcher m;
	struct ward_err err;
	bool r;

	assert_int_equal(matcher_init(&m, op, "job", pattern, &err), 0);
	r = matcher_matches(&m, value);
	matcher_free(&m);
	return r;
}

static void equality_matchers_treat_absent_as_empty(void **state) {
	assert_true(match(MATCH_EQ, "node", "node"));
	assert_false(match(MATCH_EQ, "node", "nodes"));
	assert_true(match(MATCH_EQ, "", NULL));
	assert_true(match(MATCH_NEQ, "node", NULL));
	assert_false(match(MATCH_NEQ, "", ""));
}

static void regex_matchers_are_fully_anchored(void **state) {
	assert_true(match(MATCH_RE, "node|ward", "ward"));
	assert_false(match(MATCH_RE, "node|ward", "wardx"));
	assert_false(match(MATCH_RE, "node|ward", "xnode"));
	assert_false(match(MATCH_RE, "ward", "ward\n"));
	assert_true(match(MATCH_RE, "w.*", "ward"));
	assert_true(match(MATCH_RE, ".*", NULL));
	assert_false(match(MATCH_RE, ".+", ""));
	assert_true(match(MATCH_NRE, "node|ward", "other"));
	assert_false(match(MATCH_NRE, "node|ward", "node"));
	assert_true(match(MATCH_RE, "caf.", "caf\xc3\xa9"));
	assert_false(match(MATCH_RE, "abc", "ab\xff")); /* invalid UTF-8 does not crash */
}

static void invalid_regex_reports_offset(void **state) {
	struct matcher m;
	struct ward_err err;

	ward_err_clear(&err);
	assert_int_equal(matcher_init(&m, MATCH_RE, "job", "ab(c", &err), -1);
	assert_non_null(strstr(err.msg, "ab(c"));
	assert_non_null(strstr(err.msg, "offset"));
	assert_null(m.name);
	matcher_free(&m);
}

static void op_strings(void **state) {
	assert_string_equal(matcher_op_str(MATCH_EQ), "=");
	assert_string_equal(matcher_op_str(MATCH_NEQ), "!=");
	assert_string_equal(matcher_op_str(MATCH_RE), "=~");
	assert_string_equal(matcher_op_str(MATCH_NRE), "!~");
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(labels_stay_sorted_and_unique),
	        cmocka_unit_test(empty_value_removes_label),
	        cmocka_unit_test(copy_is_deep_and_compares_equal),
	        cmocka_unit_test(compare_is_pairwise_then_by_length),
	        cmocka_unit_test(hash_is_stable_and_separates_name_from_value),
	        cmocka_unit_test(write_puts_name_first_and_escapes_values),
	        cmocka_unit_test(equality_matchers_treat_absent_as_empty),
	        cmocka_unit_test(regex_matchers_are_fully_anchored),
	        cmocka_unit_test(invalid_regex_reports_offset),
	        cmocka_unit_test(op_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
