/* tsdb_index.c: unit tests for postings and matcher evaluation: =, !=, =~, !~, several
 * matchers at once, the Prometheus rule that a matcher matching "" also selects series
 * without the label, and removal keeping postings consistent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsdb/tsdb_internal.h"

static struct tsdb_index x;

/* refs 1..5:
 * 1 up{job=a,instance=i1}  2 up{job=a,instance=i2}  3 up{job=b,instance=i1}
 * 4 up{job=b}              5 down{instance=i3}                              */
static void add(uint32_t ref, const char *name, const char *job, const char *inst) {
	struct labels ls;
	labels_init(&ls);
	labels_set(&ls, "__name__", name);
	if (job)
		labels_set(&ls, "job", job);
	if (inst)
		labels_set(&ls, "instance", inst);
	idx_add(&x, ref, &ls);
	labels_free(&ls);
}

static int setup(void **state) {
	idx_init(&x);
	add(1, "up", "a", "i1");
	add(2, "up", "a", "i2");
	add(3, "up", "b", "i1");
	add(4, "up", "b", NULL);
	add(5, "down", NULL, "i3");
	return 0;
}

static int teardown(void **state) {
	idx_free(&x);
	return 0;
}

/* Runs matchers given as triples (op, name, value) and compares with the expected refs. */
static void expect(const char *want, size_t nms, ...) {
	struct matcher ms[4];
	va_list ap;
	va_start(ap, nms);
	for (size_t i = 0; i < nms; i++) {
		enum matcher_op op = va_arg(ap, enum matcher_op);
		const char *name = va_arg(ap, const char *);
		const char *value = va_arg(ap, const char *);
		assert_int_equal(matcher_init(&ms[i], op, name, value, NULL), 0);
	}
	va_end(ap);
	uint32_t *refs;
	size_t n;
	idx_select(&x, ms, nms, &refs, &n);
	char got[64] = "";
	for (size_t i = 0; i < n; i++) {
		char t[8];
		snprintf(t, sizeof(t), "%s%u", i ? "," : "", refs[i]);
		strncat(got, t, sizeof(got) - strlen(got) - 1);
	}
	assert_string_equal(got, want);
	free(refs);
	for (size_t i = 0; i < nms; i++)
		matcher_free(&ms[i]);
}

static void index_equal_matchers_intersect(void **state) {
	expect("1,2,3,4", 1, MATCH_EQ, "__name__", "up");
	expect("3,4", 2, MATCH_EQ, "__name__", "up", MATCH_EQ, "job", "b");
	expect("3", 3, MATCH_EQ, "__name__", "up", MATCH_EQ, "job", "b", MATCH_EQ, "instance",
	       "i1");
	expect("", 1, MATCH_EQ, "job", "zzz");
	expect("1,2,3,4,5", 0);
}

static void index_not_equal_keeps_series_without_label(void **state) {
	expect("2,4", 2, MATCH_EQ, "__name__", "up", MATCH_NEQ, "instance", "i1");
	expect("2,4,5", 1, MATCH_NEQ, "instance", "i1");
	expect("1,2,3,4,5", 1, MATCH_NEQ, "nolabel", "x");
}

static void index_regex_unions_matching_values(void **state) {
	expect("1,2,3", 1, MATCH_RE, "instance", "i[12]");
	expect("1,2,3", 1, MATCH_RE, "instance", "i.*1|i2");
	expect("", 1, MATCH_RE, "instance", "i"); /* anchored */
	expect("3,4", 2, MATCH_RE, "job", "b|c", MATCH_RE, "__name__", "u.");
}

static void index_negative_regex_subtracts(void **state) {
	expect("3,4,5", 1, MATCH_NRE, "job", "a");
	expect("4,5", 1, MATCH_NRE, "instance", "i[12]");
}

static void index_empty_matching_selects_missing_label(void **state) {
	/* job="" selects series without job */
	expect("5", 1, MATCH_EQ, "job", "");
	/* job=~"a|" : job a or no job */
	expect("1,2,5", 1, MATCH_RE, "job", "a|");
	/* instance=~".*" matches everything, including series without instance */
	expect("1,2,3,4,5", 1, MATCH_RE, "instance", ".*");
	/* instance=~".+" requires the label */
	expect("1,2,3,5", 1, MATCH_RE, "instance", ".+");
	/* job!="" requires job */
	expect("1,2,3,4", 1, MATCH_NEQ, "job", "");
	expect("4", 2, MATCH_EQ, "instance", "", MATCH_EQ, "__name__", "up");
}

static void index_removal_updates_postings(void **state) {
	struct labels ls;
	labels_init(&ls);
	labels_set(&ls, "__name__", "up");
	labels_set(&ls, "job", "a");
	labels_set(&ls, "instance", "i2");
	idx_del(&x, 2, &ls);
	labels_free(&ls);
	expect("1", 1, MATCH_EQ, "job", "a");
	expect("1,3,4,5", 0);
	assert_null(idx_get(&x, "instance", "i2"));
	add(2, "up", "a", "i2");
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(index_equal_matchers_intersect, setup, teardown),
	        cmocka_unit_test_setup_teardown(index_not_equal_keeps_series_without_label, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(index_regex_unions_matching_values, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(index_negative_regex_subtracts, setup, teardown),
	        cmocka_unit_test_setup_teardown(index_empty_matching_selects_missing_label, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(index_removal_updates_postings, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
