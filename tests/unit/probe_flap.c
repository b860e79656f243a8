/* probe_flap.c: unit tests for flap damping (probe_flap_step). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "probe/probe.h"

static void flap_needs_n_failures_before_failing(void **state) {
	struct probe_flap f = {0};
	assert_true(probe_flap_step(&f, true, 3, 2, 10) == false); /* 1 of 2 successes */
	assert_int_equal(f.state, PROBE_UNKNOWN);
	assert_true(probe_flap_step(&f, true, 3, 2, 20));
	assert_int_equal(f.state, PROBE_OK);
	assert_int_equal(f.since_ms, 20);
	assert_false(probe_flap_step(&f, false, 3, 2, 30));
	assert_false(probe_flap_step(&f, false, 3, 2, 40));
	assert_int_equal(f.state, PROBE_OK);
	assert_int_equal(f.consec_fail, 2);
	assert_true(probe_flap_step(&f, false, 3, 2, 50));
	assert_int_equal(f.state, PROBE_FAILING);
	assert_int_equal(f.since_ms, 50);
}

static void flap_an_isolated_success_does_not_recover(void **state) {
	struct probe_flap f = {.state = PROBE_FAILING, .since_ms = 5};
	assert_false(probe_flap_step(&f, true, 2, 2, 10));
	assert_false(probe_flap_step(&f, false, 2, 2, 20));
	assert_int_equal(f.consec_ok, 0);
	assert_false(probe_flap_step(&f, true, 2, 2, 30));
	assert_int_equal(f.state, PROBE_FAILING);
	assert_int_equal(f.since_ms, 5);
	assert_true(probe_flap_step(&f, true, 2, 2, 40));
	assert_int_equal(f.state, PROBE_OK);
}

static void flap_alternating_results_never_change_state(void **state) {
	struct probe_flap f = {.state = PROBE_OK, .since_ms = 1};
	for (int i = 0; i < 100; i++)
		assert_false(probe_flap_step(&f, i % 2 == 0, 2, 2, i));
	assert_int_equal(f.state, PROBE_OK);
	assert_int_equal(f.since_ms, 1);
}

static void flap_threshold_one_changes_at_once(void **state) {
	struct probe_flap f = {0};
	assert_true(probe_flap_step(&f, false, 1, 1, 1));
	assert_int_equal(f.state, PROBE_FAILING);
	assert_true(probe_flap_step(&f, true, 1, 1, 2));
	assert_int_equal(f.state, PROBE_OK);
	assert_false(probe_flap_step(&f, true, 0, 0, 3)); /* thresholds below 1 act as 1 */
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(flap_needs_n_failures_before_failing),
	        cmocka_unit_test(flap_an_isolated_success_does_not_recover),
	        cmocka_unit_test(flap_alternating_results_never_change_state),
	        cmocka_unit_test(flap_threshold_one_changes_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
