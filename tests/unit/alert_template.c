/* alert_template.c: the template engine against what Prometheus prints: each function,
 * control structures, and errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "alert/alert.h"

static struct labels L;

static char *expand(const char *tmpl, double value, struct ward_err *err)
{
	static char out[4096];
	struct alert_tmpl_data d = {.labels = &L, .value = value};
	struct buf b = BUF_INIT;
	int rc = alert_tmpl_expand("t", tmpl, strlen(tmpl), &d, &b, err);
	snprintf(out, sizeof(out), "%s", rc == 0 ? buf_cstr(&b) : "<error>");
	buf_free(&b);
	return out;
}

#define EXPECT(tmpl, value, want)                                              \
	do {                                                                   \
		struct ward_err e_;                                             \
		ward_err_clear(&e_);                                            \
		assert_string_equal(expand(tmpl, value, &e_), want);            \
	} while (0)

static void humanize_functions_print_as_prometheus(void **s)
{
	EXPECT("{{ humanize $value }}", 1234567, "1.235M");
	EXPECT("{{ humanize $value }}", 0.00123, "1.23m");
	EXPECT("{{ humanize $value }}", 0, "0");
	EXPECT("{{ humanize1024 $value }}", 1234567, "1.177Mi");
	EXPECT("{{ humanizeDuration $value }}", 3725, "1h 2m 5s");
	EXPECT("{{ humanizeDuration $value }}", 90061, "1d 1h 1m 1s");
	EXPECT("{{ humanizeDuration $value }}", 0.25, "250ms");
	EXPECT("{{ humanizeDuration $value }}", 0, "0s");
	EXPECT("{{ humanizePercentage $value }}", 0.1234, "12.34%");
	EXPECT("{{ humanizeTimestamp $value }}", 1700000000.5, "2023-11-14 22:13:20.5 +0000 UTC");
	EXPECT("{{ \"1500\" | humanize }}", 0, "1.5k");
}

static void values_print_as_go(void **s)
{
	EXPECT("{{ $value }}", 1234567, "1.234567e+06");
	EXPECT("{{ .Value }}", 3000, "3000");
	EXPECT("{{ $value }}", 0.5, "0.5");
	EXPECT("{{ $labels }}", 0, "map[instance:db1:9100 job:node]");
}

static void string_functions_and_printf(void **s)
{
	EXPECT("{{ toUpper .Labels.job }}-{{ toLower \"AB\" }}-{{ title \"hello big world\" }}", 0,
	       "NODE-ab-Hello Big World");
	EXPECT("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}", 0, "db1");
	EXPECT("{{ printf \"%.2f %d %s\" $value 42 \"x\" }}", 1.5, "1.50 42 x");
	EXPECT("{{ printf \"%d\" $value }}", 1.5, "%!d(float64=1.5)");
	EXPECT("{{ $labels.missing }}|", 0, "|");
}

static void control_structures(void **s)
{
	EXPECT("{{ if gt $value 5.0 }}big{{ else if gt $value 2.0 }}mid{{ else }}small{{ end }}", 3,
	       "mid");
	EXPECT("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0,
	       "instance=db1:9100;job=node;");
	EXPECT("{{ with $labels.job }}job {{ . }}{{ end }}", 0, "job node");
	EXPECT("{{ $x := 3 }}{{ $x }}", 0, "3");
	EXPECT("a  {{- 1 -}}  b", 0, "a1b");
	EXPECT("{{/* comment */}}x", 0, "x");
}

static void query_first_value_label(void **s)
{
	struct promql_memstore *m = promql_memstore_new();
	static const char load[] = "load 1m\n  up{job=\"a\",instance=\"x\"} 7\n";
	assert_int_equal(promql_memstore_load(m, load, sizeof(load) - 1, NULL), 0);
	struct promql_storage st = promql_memstore_storage(m);
	struct alert_tmpl_data d = {.labels = &L, .st = &st, .t_ms = 0};
	struct buf b = BUF_INIT;
	const char *t = "{{ with query \"up\" }}{{ . | first | value }} {{ label \"job\" (first .) }}"
			"{{ end }}";
	assert_int_equal(alert_tmpl_expand("t", t, strlen(t), &d, &b, NULL), 0);
	assert_string_equal(buf_cstr(&b), "7 a");
	buf_free(&b);
	promql_memstore_free(m);
}

static void errors_name_line_and_column(void **s)
{
	struct ward_err e;
	ward_err_clear(&e);
	assert_int_not_equal(alert_tmpl_check("t", "ok\n{{ if 1 }}x", 14, &e), 0);
	assert_non_null(strstr(e.msg, "template: t:2:1:"));
	ward_err_clear(&e);
	assert_string_equal(expand("ab {{ nosuch 1 }}", 0, &e), "<error>");
	assert_non_null(strstr(e.msg, "t:1:7: function \"nosuch\" not defined"));
	ward_err_clear(&e);
	assert_string_equal(expand("{{ humanize \"x\" }}", 0, &e), "<error>");
	assert_non_null(strstr(e.msg, "error calling humanize"));
	ward_err_clear(&e);
	assert_int_not_equal(alert_tmpl_check("t", "{{ \"abc }}", 10, &e), 0);
	assert_non_null(strstr(e.msg, "unterminated"));
}

int main(void)
{
	labels_init(&L);
	labels_set(&L, "instance", "db1:9100");
	labels_set(&L, "job", "node");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(humanize_functions_print_as_prometheus),
		cmocka_unit_test(values_print_as_go),
		cmocka_unit_test(string_functions_and_printf),
		cmocka_unit_test(control_structures),
		cmocka_unit_test(query_first_value_label),
		cmocka_unit_test(errors_name_line_and_column),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	labels_free(&L);
	return rc;
}
