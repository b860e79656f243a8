/* probe_config.c: unit tests for the "probes" config section: defaults, and errors that
 * name file:line:col and what to do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "probe/probe_internal.h"

static int setup(void **state) {
	conf_reset_registry();
	probe_config_register();
	return 0;
}

static struct conf *load(const char *y, struct ward_err *err) {
	ward_err_clear(err);
	return conf_load_buffer("t.yaml", y, strlen(y), err);
}

static void config_decodes_checks_with_defaults(void **state) {
	struct ward_err err;
	struct conf *c = load("probes:\n"
	                      "  max_concurrency: 8\n"
	                      "  checks:\n"
	                      "    - name: web\n"
	                      "      kind: http\n"
	                      "      target: https://example.org/\n"
	                      "      valid_status_codes: ['2xx', '301-302']\n"
	                      "      labels: {team: ops}\n"
	                      "    - name: disk\n"
	                      "      kind: exec\n"
	                      "      command: [/usr/lib/nagios/plugins/check_disk, -w, '10%']\n",
	                      &err);
	assert_non_null(c);
	const struct probe_conf *pc = conf_section(c, "probes");
	assert_int_equal(pc->max_concurrency, 8);
	assert_int_equal(pc->nchecks, 2);
	const struct probe_check_conf *w = &pc->checks[0];
	assert_int_equal(w->kind, KIND_HTTP);
	assert_int_equal(w->interval_ms, 30000);
	assert_int_equal(w->timeout_ms, 5000);
	assert_int_equal(w->failure_threshold, 1);
	assert_true(w->follow_redirects);
	assert_true(w->tls_verify);
	assert_string_equal(w->method, "GET");
	assert_true(probe_status_ok(w, 204));
	assert_true(probe_status_ok(w, 302));
	assert_false(probe_status_ok(w, 303));
	assert_false(probe_status_ok(w, 503));
	assert_int_equal(pc->checks[1].kind, KIND_EXEC);
	assert_int_equal(pc->checks[1].ncommand, 3);
	conf_unref(c);
}

static void config_timeout_is_cut_to_the_interval(void **state) {
	struct ward_err err;
	struct conf *c = load("probes:\n  checks:\n"
	                      "    - {name: a, kind: tcp, target: 'x:1', interval: 2s}\n",
	                      &err);
	assert_non_null(c);
	const struct probe_conf *pc = conf_section(c, "probes");
	assert_int_equal(pc->checks[0].timeout_ms, 2000);
	conf_unref(c);
}

static void config_empty_section_has_no_checks(void **state) {
	struct ward_err err;
	struct conf *c = load("{}\n", &err);
	assert_non_null(c);
	const struct probe_conf *pc = conf_section(c, "probes");
	assert_int_equal(pc->nchecks, 0);
	assert_int_equal(pc->max_concurrency, 256);
	conf_unref(c);
}

static void expect_error(const char *yaml, const char *where, const char *what) {
	struct ward_err err;
	struct conf *c = load(yaml, &err);
	assert_null(c);
	if (!strstr(err.msg, where) || !strstr(err.msg, what))
		fail_msg("error %s lacks %s / %s", err.msg, where, what);
}

static void config_bad_regex_names_line_and_offset(void **state) {
	expect_error("probes:\n"
	             "  checks:\n"
	             "    - name: web\n"
	             "      kind: http\n"
	             "      target: http://x/\n"
	             "      fail_if_body_matches_regexp: ['(unclosed']\n",
	             "t.yaml:3:", "does not compile at offset");
}

static void config_kind_specific_keys_are_required(void **state) {
	expect_error("probes:\n  checks:\n    - name: a\n      kind: tcp\n",
	             "t.yaml:3:", "target: required for kind tcp");
	expect_error("probes:\n  checks:\n    - name: a\n      kind: exec\n",
	             "t.yaml:3:", "command: required for kind exec");
	expect_error("probes:\n  checks:\n    - name: a\n      kind: exec\n      command: [ls]\n",
	             "t.yaml:3:", "not an absolute path");
	expect_error("probes:\n  checks:\n    - name: a\n      kind: tcp\n      target: host\n",
	             "t.yaml:3:", "has no port");
	expect_error("probes:\n  checks:\n    - name: a\n      kind: http\n      target: ftp://x\n",
	             "t.yaml:3:", "not an http:// or https:// URL");
}

static void config_rejects_unknown_kind_and_keys(void **state) {
	expect_error("probes:\n  checks:\n    - name: a\n      kind: smtp\n      target: x:25\n",
	             "t.yaml:4:", "kind");
	expect_error("probes:\n  checks:\n    - name: a\n      kind: tcp\n      target: x:1\n"
	             "      tiemout: 5s\n",
	             "t.yaml:6:", "tiemout");
}

static void config_rejects_duplicates_and_bad_values(void **state) {
	expect_error("probes:\n  checks:\n"
	             "    - {name: a, kind: tcp, target: 'x:1'}\n"
	             "    - {name: a, kind: tcp, target: 'x:2'}\n",
	             "t.yaml:", "already used");
	expect_error("probes:\n  checks:\n"
	             "    - {name: a, kind: http, target: 'http://x/', valid_status_codes: [2x]}\n",
	             "t.yaml:3:", "\"2x\" is not a code");
	expect_error("probes:\n  checks:\n"
	             "    - {name: 'a b', kind: tcp, target: 'x:1'}\n",
	             "t.yaml:3:", "only letters");
	expect_error("probes:\n  checks:\n"
	             "    - {name: a, kind: tcp, target: 'x:1', labels: {instance: y}}\n",
	             "t.yaml:3:", "set by ward");
	expect_error("probes:\n  checks:\n"
	             "    - {name: a, kind: dns, target: example.org, query_type: AXFR}\n",
	             "t.yaml:3:", "query_type");
	expect_error("probes:\n  checks:\n"
	             "    - {name: a, kind: dns, target: example.org, dns_server: 'ns1:53'}\n",
	             "t.yaml:3:", "is not an IPv4 address");
}

static void config_postgres_instance_hides_password(void **state) {
	struct probe_check_conf c = {.kind = KIND_POSTGRESQL,
	                             .target = "host=db port=5433 dbname=app password=s3cret"};
	char *i = probe_instance_of(&c);
	assert_string_equal(i, "db:5433/app");
	free(i);
	c.target = "postgresql://u:s3cret@db:5432/app?sslmode=require";
	i = probe_instance_of(&c);
	assert_string_equal(i, "db:5432/app");
	free(i);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(config_decodes_checks_with_defaults, setup),
	        cmocka_unit_test_setup(config_empty_section_has_no_checks, setup),
	        cmocka_unit_test_setup(config_timeout_is_cut_to_the_interval, setup),
	        cmocka_unit_test_setup(config_bad_regex_names_line_and_offset, setup),
	        cmocka_unit_test_setup(config_kind_specific_keys_are_required, setup),
	        cmocka_unit_test_setup(config_rejects_unknown_kind_and_keys, setup),
	        cmocka_unit_test_setup(config_rejects_duplicates_and_bad_values, setup),
	        cmocka_unit_test_setup(config_postgres_instance_hides_password, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
