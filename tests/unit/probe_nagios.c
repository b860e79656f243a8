/* probe_nagios.c: unit tests for the Nagios plugin protocol mapping (exit codes, output
 * split into message and perfdata). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe/probe.h"

static void nagios_exit_codes_map_to_states(void **state) {
	assert_int_equal(probe_nagios_from_exit(0), NAGIOS_OK);
	assert_int_equal(probe_nagios_from_exit(1), NAGIOS_WARNING);
	assert_int_equal(probe_nagios_from_exit(2), NAGIOS_CRITICAL);
	assert_int_equal(probe_nagios_from_exit(3), NAGIOS_UNKNOWN);
	assert_int_equal(probe_nagios_from_exit(4), NAGIOS_UNKNOWN);
	assert_int_equal(probe_nagios_from_exit(127), NAGIOS_UNKNOWN);
	assert_int_equal(probe_nagios_from_exit(-1), NAGIOS_UNKNOWN);
	assert_string_equal(probe_nagios_name(NAGIOS_CRITICAL), "CRITICAL");
}

static void nagios_only_ok_succeeds_unless_warning_is_ok(void **state) {
	assert_true(probe_nagios_success(NAGIOS_OK, false));
	assert_false(probe_nagios_success(NAGIOS_WARNING, false));
	assert_true(probe_nagios_success(NAGIOS_WARNING, true));
	assert_false(probe_nagios_success(NAGIOS_CRITICAL, true));
	assert_false(probe_nagios_success(NAGIOS_UNKNOWN, true));
}

static void nagios_split_takes_first_line_and_all_perfdata(void **state) {
	const char *out = "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
	                  "/ 15272 MB (77%);\n"
	                  "/boot 68 MB (69%); | /boot=68MB;88;93;0;98\n"
	                  "/home=69357MB;253404;253409;0;253414\n";
	char *msg, *perf;
	probe_nagios_split(out, strlen(out), &msg, &perf);
	assert_string_equal(msg, "DISK OK - free space: / 3326 MB (56%);");
	assert_string_equal(perf, "/=2643MB;5948;5958;0;5968  /boot=68MB;88;93;0;98 "
	                          "/home=69357MB;253404;253409;0;253414");
	free(msg);
	free(perf);
}

static void nagios_split_without_perfdata_or_newline(void **state) {
	char *msg, *perf;
	probe_nagios_split("TCP OK", 6, &msg, &perf);
	assert_string_equal(msg, "TCP OK");
	assert_string_equal(perf, "");
	free(msg);
	free(perf);
	probe_nagios_split("", 0, &msg, &perf);
	assert_string_equal(msg, "");
	assert_string_equal(perf, "");
	free(msg);
	free(perf);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(nagios_exit_codes_map_to_states),
	        cmocka_unit_test(nagios_only_ok_succeeds_unless_warning_is_ok),
	        cmocka_unit_test(nagios_split_takes_first_line_and_all_perfdata),
	        cmocka_unit_test(nagios_split_without_perfdata_or_newline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
