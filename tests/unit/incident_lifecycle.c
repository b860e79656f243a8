/* incident_lifecycle.c: unit tests for the pure rules of src/incident: which phase moves
 * are allowed and what they record, severity and category mapping, open_on matchers, and
 * the group key that decides which alerts share one incident. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "incident/incident.h"

static void phases_move_forward_and_may_skip(void **state) {
	(void)state;
	assert_true(incident_transition_allowed(INCIDENT_DETECTED, INCIDENT_CONTAINED));
	assert_true(incident_transition_allowed(INCIDENT_DETECTED, INCIDENT_INVESTIGATING));
	assert_true(incident_transition_allowed(INCIDENT_CONTAINED, INCIDENT_REMEDIATED));
	assert_true(incident_transition_allowed(INCIDENT_REMEDIATED, INCIDENT_RECOVERED));
	assert_true(incident_transition_allowed(INCIDENT_RECOVERED, INCIDENT_CLOSED));
	assert_true(incident_transition_allowed(INCIDENT_DETECTED, INCIDENT_CLOSED));
}

static void phases_never_move_back_except_refire_and_closed_is_final(void **state) {
	(void)state;
	assert_false(incident_transition_allowed(INCIDENT_CONTAINED, INCIDENT_DETECTED));
	assert_false(incident_transition_allowed(INCIDENT_REMEDIATED, INCIDENT_CONTAINED));
	assert_false(incident_transition_allowed(INCIDENT_INVESTIGATING, INCIDENT_INVESTIGATING));
	assert_true(incident_transition_allowed(INCIDENT_RECOVERED, INCIDENT_INVESTIGATING));
	assert_false(incident_transition_allowed(INCIDENT_RECOVERED, INCIDENT_CONTAINED));
	for (int s = 0; s < INCIDENT_NSTATUS; s++)
		assert_false(incident_transition_allowed(INCIDENT_CLOSED, (enum incident_status)s));
	assert_false(incident_transition_allowed(INCIDENT_DETECTED, INCIDENT_NSTATUS));
}

static void advance_records_the_time_of_each_phase(void **state) {
	(void)state;
	enum incident_status s = INCIDENT_DETECTED;
	int64_t at[INCIDENT_NSTATUS] = {1000};
	assert_int_equal(incident_advance(&s, at, INCIDENT_CONTAINED, 2000), 0);
	assert_int_equal(incident_advance(&s, at, INCIDENT_REMEDIATED, 3000), 0);
	assert_int_equal(s, INCIDENT_REMEDIATED);
	assert_int_equal(at[INCIDENT_DETECTED], 1000);
	assert_int_equal(at[INCIDENT_CONTAINED], 2000);
	assert_int_equal(at[INCIDENT_INVESTIGATING], 0); /* skipped */
	assert_int_equal(at[INCIDENT_REMEDIATED], 3000);
	/* refused: nothing changes */
	assert_int_equal(incident_advance(&s, at, INCIDENT_CONTAINED, 4000), -1);
	assert_int_equal(s, INCIDENT_REMEDIATED);
	assert_int_equal(at[INCIDENT_CONTAINED], 2000);
	assert_int_equal(incident_advance(&s, at, INCIDENT_RECOVERED, 5000), 0);
	/* the alert fires again: back to investigating, later phases forgotten */
	assert_int_equal(incident_advance(&s, at, INCIDENT_INVESTIGATING, 6000), 0);
	assert_int_equal(at[INCIDENT_INVESTIGATING], 6000);
	assert_int_equal(at[INCIDENT_REMEDIATED], 0);
	assert_int_equal(at[INCIDENT_RECOVERED], 0);
	assert_int_equal(incident_advance(&s, at, INCIDENT_CLOSED, 7000), 0);
	assert_int_equal(incident_advance(&s, at, INCIDENT_RECOVERED, 8000), -1);
	assert_int_equal(at[INCIDENT_CLOSED], 7000);
}

static void status_names_round_trip(void **state) {
	(void)state;
	for (int i = 0; i < INCIDENT_NSTATUS; i++) {
		enum incident_status s;
		assert_int_equal(incident_status_parse(incident_status_name(i), &s), 0);
		assert_int_equal(s, i);
	}
	enum incident_status s;
	assert_int_equal(incident_status_parse("Closed", &s), -1);
	assert_int_equal(incident_status_parse("", &s), -1);
	assert_string_equal(incident_status_name(INCIDENT_NSTATUS), "?");
}

static void severity_label_maps_to_sev1_through_sev4(void **state) {
	(void)state;
	assert_int_equal(incident_severity_from_label("critical"), 1);
	assert_int_equal(incident_severity_from_label("Critical"), 1);
	assert_int_equal(incident_severity_from_label("error"), 2);
	assert_int_equal(incident_severity_from_label("warning"), 3);
	assert_int_equal(incident_severity_from_label("info"), 4);
	assert_int_equal(incident_severity_from_label(NULL), 4);
	assert_int_equal(incident_severity_parse("SEV2"), 2);
	assert_int_equal(incident_severity_parse("sev4"), 4);
	assert_int_equal(incident_severity_parse("1"), 1);
	assert_int_equal(incident_severity_parse("SEV5"), -1);
	assert_int_equal(incident_severity_parse("SEV12"), -1);
	assert_int_equal(incident_severity_parse(""), -1);
	enum incident_category c;
	assert_int_equal(incident_category_parse("security", &c), 0);
	assert_int_equal(c, INCIDENT_CAT_SECURITY);
	assert_int_equal(incident_category_parse("network", &c), -1);
}

static void open_on_matchers_parse_alertmanager_syntax(void **state) {
	(void)state;
	struct ward_err err;
	struct matcher m[3];
	const char *a = "severity=critical", *b = "job=~\"api.*\"", *c = " env != dev ";
	assert_int_equal(incident_matcher_parse(a, strlen(a), &m[0], &err), 0);
	assert_int_equal(incident_matcher_parse(b, strlen(b), &m[1], &err), 0);
	assert_int_equal(incident_matcher_parse(c, strlen(c), &m[2], &err), 0);
	assert_int_equal(m[1].op, MATCH_RE);
	assert_string_equal(m[1].value, "api.*");
	struct labels ls;
	labels_init(&ls);
	labels_set(&ls, "alertname", "Down");
	labels_set(&ls, "severity", "critical");
	labels_set(&ls, "job", "api-eu");
	assert_true(incident_matchers_match(m, 3, &ls));
	labels_set(&ls, "env", "dev");
	assert_false(incident_matchers_match(m, 3, &ls));
	assert_false(incident_matchers_match(m, 0, &ls)); /* no policy: nothing opens */
	for (int i = 0; i < 3; i++)
		matcher_free(&m[i]);
	labels_free(&ls);
	/* Alertmanager reads `a=b c=d` as the value "b c=d", so it is not among these. */
	const char *bad[] = {"=x", "severity", "sev>x", "a=\"open", "a=~\"(\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct matcher x;
		ward_err_clear(&err);
		assert_int_equal(incident_matcher_parse(bad[i], strlen(bad[i]), &x, &err), -1);
		assert_true(ward_err_isset(&err));
	}
}

static void alerts_of_one_group_share_a_key_others_do_not(void **state) {
	(void)state;
	char *group_by[] = {"service"};
	struct labels a, b, c;
	labels_init(&a);
	labels_init(&b);
	labels_init(&c);
	labels_set(&a, "alertname", "Down");
	labels_set(&a, "service", "api");
	labels_set(&a, "instance", "a:80");
	labels_copy(&b, &a);
	labels_set(&b, "instance", "b:80"); /* another instance, same group */
	labels_copy(&c, &a);
	labels_set(&c, "service", "db"); /* another service: another incident */
	struct buf ka = BUF_INIT, kb = BUF_INIT, kc = BUF_INIT, k0 = BUF_INIT;
	incident_group_key(&a, group_by, 1, &ka);
	incident_group_key(&b, group_by, 1, &kb);
	incident_group_key(&c, group_by, 1, &kc);
	incident_group_key(&a, NULL, 0, &k0);
	assert_string_equal(buf_cstr(&ka), buf_cstr(&kb));
	assert_string_not_equal(buf_cstr(&ka), buf_cstr(&kc));
	assert_string_equal(buf_cstr(&ka), "{alertname=\"Down\",service=\"api\"}");
	assert_string_equal(buf_cstr(&k0), "{alertname=\"Down\"}");
	buf_free(&ka);
	buf_free(&kb);
	buf_free(&kc);
	buf_free(&k0);
	labels_free(&a);
	labels_free(&b);
	labels_free(&c);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(phases_move_forward_and_may_skip),
	        cmocka_unit_test(phases_never_move_back_except_refire_and_closed_is_final),
	        cmocka_unit_test(advance_records_the_time_of_each_phase),
	        cmocka_unit_test(status_names_round_trip),
	        cmocka_unit_test(severity_label_maps_to_sev1_through_sev4),
	        cmocka_unit_test(open_on_matchers_parse_alertmanager_syntax),
	        cmocka_unit_test(alerts_of_one_group_share_a_key_others_do_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
