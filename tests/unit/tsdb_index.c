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

/* Random label sets and random matcher combinations: idx_select equals matching each series'
 * labels one by one (the definition), across list sizes that take both the linear and the
 * galloping intersection. */
static void index_select_equals_brute_force(void **state) {
	struct tsdb_index r;
	enum { NS = 3000 };
	static struct labels sets[NS + 1];
	const char *names[] = {"__name__", "job", "instance", "mode"};
	const char *vals[] = {"a", "b", "c", "d", "", "cpu", "idle", "x1"};
	uint64_t z = 88172645463325252u;
#define RND() (z ^= z << 13, z ^= z >> 7, z ^= z << 17, z)
	idx_init(&r);
	for (uint32_t ref = 1; ref <= NS; ref++) {
		labels_init(&sets[ref]);
		labels_set(&sets[ref], "__name__", ref % 10 ? "m" : "rare");
		for (int k = 1; k < 4; k++)
			if (RND() % 3)
				labels_set(&sets[ref], names[k], vals[RND() % 8]);
		idx_add(&r, ref, &sets[ref]);
	}
	for (int round = 0; round < 400; round++) {
		struct matcher ms[4];
		size_t nms = 1 + RND() % 4;
		struct ward_err err;
		for (size_t i = 0; i < nms; i++) {
			enum matcher_op op = (enum matcher_op)(RND() % 4);
			const char *v = op == MATCH_RE || op == MATCH_NRE ? (RND() % 2 ? "a|b" : "c.*")
			                                                 : vals[RND() % 8];
			const char *nm = i == 0 && RND() % 2 ? "__name__" : names[RND() % 4];
			if (!strcmp(nm, "__name__") && op == MATCH_EQ)
				v = RND() % 2 ? "m" : "rare";
			assert_int_equal(matcher_init(&ms[i], op, nm, v, &err), 0);
		}
		uint32_t *got;
		size_t ngot, k = 0;
		idx_select(&r, ms, nms, &got, &ngot);
		for (uint32_t ref = 1; ref <= NS; ref++) {
			bool ok = true;
			for (size_t i = 0; i < nms && ok; i++) {
				const char *lv = labels_get(&sets[ref], ms[i].name);
				ok = matcher_matches(&ms[i], lv ? lv : "");
			}
			if (!ok)
				continue;
			assert_true(k < ngot);
			assert_int_equal(got[k], ref);
			k++;
		}
		assert_int_equal(k, ngot);
		free(got);
		for (size_t i = 0; i < nms; i++)
			matcher_free(&ms[i]);
	}
#undef RND
	for (uint32_t ref = 1; ref <= NS; ref++)
		labels_free(&sets[ref]);
	idx_free(&r);
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
	        cmocka_unit_test(index_select_equals_brute_force),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
