/* alert_rulefile.c: rule file validation: good files load, each kind of mistake is
 * reported with file:line:col. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alert/alert_internal.h"

static int decode(const char *text, struct ward_err *err)
{
	struct rf_file f;
	int rc = alert_rulefile_decode("r.yml", text, strlen(text), &f, err);
	conf_free_obj(&alert_rulefile_schema, &f);
	return rc;
}

static void valid_file_loads(void **s)
{
	struct ward_err e;
	ward_err_clear(&e);
	assert_int_equal(decode("groups:\n- name: g\n  interval: 30s\n  rules:\n"
				"  - alert: A\n    expr: up == 0\n    for: 5m\n"
				"    keep_firing_for: 1m\n    labels: {severity: page}\n"
				"    annotations: {summary: '{{ $labels.job }}'}\n"
				"  - record: job:up:sum\n    expr: sum by (job) (up)\n",
				&e),
			 0);
}

/* The embedded default set loads, and its groups carry their embedded file names. */
static void default_rule_set_loads(void **s)
{
	size_t n;
	const struct alert_default_file *f = alert_default_files(&n);
	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(strlen(f[i].data), f[i].len);
	struct ward_err e;
	ward_err_clear(&e);
	struct alert_ruleset *rs = alert_rules_load_defaults(&e);
	assert_non_null(rs);
	assert_true(alert_ruleset_nrules(rs) >= 10);
	bool host = false;
	for (size_t i = 0; i < rs->ngroups; i++)
		if (!strcmp(rs->groups[i].name, "ward-host")) {
			assert_string_equal(rs->groups[i].file, "ward:defaults/host.yml");
			host = true;
		}
	assert_true(host);
	/* merging into a set appends its groups */
	struct alert_ruleset *two = alert_rules_load_defaults(&e);
	size_t ng = rs->ngroups;
	alert_ruleset_merge(rs, two);
	assert_int_equal(rs->ngroups, 2 * ng);
	alert_ruleset_free(rs);
}

static void bad_expr_reported_at_rule(void **s)
{
	struct ward_err e;
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(up\n", &e),
			     0);
	assert_non_null(strstr(e.msg, "r.yml:4:5:"));
	assert_non_null(strstr(e.msg, "expr"));
}

static void rule_mistakes_rejected(void **s)
{
	struct ward_err e;
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules:\n  - alert: A\n    record: b\n"
				    "    expr: up\n", &e), 0);
	assert_non_null(strstr(e.msg, "exactly one"));
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules:\n  - record: 'bad name'\n"
				    "    expr: up\n", &e), 0);
	assert_non_null(strstr(e.msg, "invalid metric name"));
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n"
				    "    for: 5m\n", &e), 0);
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
				    "    annotations: {s: '{{ if }}'}\n", &e), 0);
	assert_non_null(strstr(e.msg, "annotation s"));
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n", &e), 0);
	assert_non_null(strstr(e.msg, "r.yml:4:3: groupname: \"g\" is repeated"));
	ward_err_clear(&e);
	assert_int_not_equal(decode("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
				    "    fro: 5m\n", &e), 0);
	assert_non_null(strstr(e.msg, "r.yml:6:5"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_file_loads),
		cmocka_unit_test(default_rule_set_loads),
		cmocka_unit_test(bad_expr_reported_at_rule),
		cmocka_unit_test(rule_mistakes_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
