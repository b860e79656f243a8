/* base_metrics.c: unit tests for the metrics registry and its text exposition, including a
 * check of the output with `promtool check metrics` when promtool is installed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"

#define PROMTOOL "/usr/bin/promtool"

static int reset(void **state) {
	metric_reset_all();
	return 0;
}

static char *scrape(void) {
	struct buf b = BUF_INIT;

	metric_write_all(&b);
	return buf_detach(&b);
}

static void counter_and_gauge_write_help_type_and_value(void **state) {
	struct metric *c = metric_register("ward_requests_total", "Requests served.",
	                                   METRIC_COUNTER, NULL, NULL, 0);
	struct metric *g = metric_register("ward_up", "1 when ready.", METRIC_GAUGE, NULL, NULL, 0);
	char *out = scrape();

	/* Unlabelled families export 0 before their first update. */
	assert_non_null(strstr(out, "ward_requests_total 0\n"));
	free(out);
	metric_add(c, NULL, 2);
	metric_add(c, NULL, 0.5);
	metric_add(c, NULL, -10); /* counters never go down */
	metric_set(g, NULL, 1);
	out = scrape();
	assert_string_equal(out, "# HELP ward_requests_total Requests served.\n"
	                         "# TYPE ward_requests_total counter\n"
	                         "ward_requests_total 2.5\n"
	                         "# HELP ward_up 1 when ready.\n"
	                         "# TYPE ward_up gauge\n"
	                         "ward_up 1\n");
	free(out);
}

static void register_is_idempotent_by_name(void **state) {
	struct metric *a = metric_register("ward_x_total", "x", METRIC_COUNTER, NULL, NULL, 0);
	struct metric *b =
	        metric_register("ward_x_total", "other help", METRIC_COUNTER, NULL, NULL, 0);
	char *out;

	assert_ptr_equal(a, b);
	metric_add(a, NULL, 1);
	metric_add(b, NULL, 1);
	out = scrape();
	assert_non_null(strstr(out, "ward_x_total 2\n"));
	assert_null(strstr(out, "other help"));
	free(out);
}

static void families_sorted_by_name_and_series_by_labels(void **state) {
	static const char *const lbl[] = {"method", "code", NULL};
	struct metric *z = metric_register("zeta_total", "z", METRIC_COUNTER, lbl, NULL, 0);
	struct metric *a = metric_register("alpha", "a", METRIC_GAUGE, NULL, NULL, 0);
	const char *v1[] = {"POST", "200"}, *v2[] = {"GET", "500"}, *v3[] = {"GET", "200"};
	char *out, *pa, *pz, *s1, *s2, *s3;

	(void)a;
	metric_add(z, v1, 1);
	metric_add(z, v2, 1);
	metric_add(z, v3, 3);
	out = scrape();
	pa = strstr(out, "# HELP alpha");
	pz = strstr(out, "# HELP zeta_total");
	assert_true(pa && pz && pa < pz);
	s1 = strstr(out, "zeta_total{method=\"GET\",code=\"200\"} 3\n");
	s2 = strstr(out, "zeta_total{method=\"GET\",code=\"500\"} 1\n");
	s3 = strstr(out, "zeta_total{method=\"POST\",code=\"200\"} 1\n");
	assert_true(s1 && s2 && s3 && s1 < s2 && s2 < s3);
	free(out);
}

static void label_values_and_help_are_escaped(void **state) {
	static const char *const lbl[] = {"path", NULL};
	struct metric *m = metric_register("ward_esc_total", "Help with \\ and\nnewline.",
	                                   METRIC_COUNTER, lbl, NULL, 0);
	const char *v[] = {"a\"b\\c\nd"};
	char *out;

	metric_add(m, v, 1);
	out = scrape();
	assert_non_null(strstr(out, "# HELP ward_esc_total Help with \\\\ and\\nnewline.\n"));
	assert_non_null(strstr(out, "ward_esc_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"));
	free(out);
}

static void histogram_writes_cumulative_buckets_sum_and_count(void **state) {
	static const char *const lbl[] = {"route", NULL};
	static const double bounds[] = {0.1, 0.5, 1};
	struct metric *h = metric_register("ward_request_seconds", "Latency.", METRIC_HISTOGRAM,
	                                   lbl, bounds, 3);
	const char *v[] = {"/api"};
	char *out;

	metric_observe(h, v, 0.05);
	metric_observe(h, v, 0.1); /* le is inclusive */
	metric_observe(h, v, 0.7);
	metric_observe(h, v, 3);
	out = scrape();
	assert_string_equal(out, "# HELP ward_request_seconds Latency.\n"
	                         "# TYPE ward_request_seconds histogram\n"
	                         "ward_request_seconds_bucket{route=\"/api\",le=\"0.1\"} 2\n"
	                         "ward_request_seconds_bucket{route=\"/api\",le=\"0.5\"} 2\n"
	                         "ward_request_seconds_bucket{route=\"/api\",le=\"1\"} 3\n"
	                         "ward_request_seconds_bucket{route=\"/api\",le=\"+Inf\"} 4\n"
	                         "ward_request_seconds_sum{route=\"/api\"} 3.85\n"
	                         "ward_request_seconds_count{route=\"/api\"} 4\n");
	free(out);
}

static double forty_two(void *arg) {
	return *(double *)arg;
}

static void scrape_time_function_is_called_on_write(void **state) {
	double v = 42;
	char *out;

	metric_register_fn("ward_open_fds", "Open fds.", METRIC_GAUGE, forty_two, &v);
	out = scrape();
	assert_non_null(strstr(out, "# TYPE ward_open_fds gauge\nward_open_fds 42\n"));
	free(out);
	v = 7;
	out = scrape();
	assert_non_null(strstr(out, "ward_open_fds 7\n"));
	free(out);
}

static void invalid_name_characters_become_underscores(void **state) {
	struct metric *m =
	        metric_register("ward-bad.name_total", "x", METRIC_COUNTER, NULL, NULL, 0);
	char *out;

	metric_add(m, NULL, 1);
	out = scrape();
	assert_non_null(strstr(out, "ward_bad_name_total 1\n"));
	free(out);
}

static void *metric_worker(void *arg) {
	struct metric *m = arg;
	const char *v[] = {"x"};
	int i;

	for (i = 0; i < 10000; i++)
		metric_add(m, v, 1);
	return NULL;
}

static void concurrent_adds_are_not_lost(void **state) {
	static const char *const lbl[] = {"k", NULL};
	struct metric *m = metric_register("ward_conc_total", "c", METRIC_COUNTER, lbl, NULL, 0);
	pthread_t th[4];
	char *out;
	int i;

	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, metric_worker, m);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	out = scrape();
	assert_non_null(strstr(out, "ward_conc_total{k=\"x\"} 40000\n"));
	free(out);
}

static void exposition_passes_promtool_check_metrics(void **state) {
	static const char *const lbl[] = {"method", "code", NULL};
	static const double bounds[] = {0.005, 0.01, 0.1, 1, 10};
	struct metric *c = metric_register("ward_http_requests_total", "HTTP requests served.",
	                                   METRIC_COUNTER, lbl, NULL, 0);
	struct metric *h =
	        metric_register("ward_http_request_duration_seconds", "HTTP request latency.",
	                        METRIC_HISTOGRAM, lbl, bounds, 5);
	struct metric *g = metric_register("ward_build_info", "Build information.", METRIC_GAUGE,
	                                   NULL, NULL, 0);
	const char *v[] = {"GET", "200"}, *w[] = {"POST", "quote\"back\\slash\nnl"};
	double fds = 12;
	char path[] = "/tmp/ward-base-metrics-XXXXXX";
	char cmd[256];
	char *out;
	int fd, rc;

	metric_add(c, v, 3);
	metric_add(c, w, 1);
	metric_observe(h, v, 0.02);
	metric_observe(h, w, 4);
	metric_set(g, NULL, 1);
	metric_register_fn("ward_open_fds", "Open file descriptors.", METRIC_GAUGE, forty_two,
	                   &fds);
	out = scrape();
	if (access(PROMTOOL, X_OK) != 0) {
		free(out);
		skip();
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, out, strlen(out)), (ssize_t)strlen(out));
	close(fd);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s", path);
	rc = system(cmd);
	unlink(path);
	if (rc != 0)
		print_error("promtool rejected:\n%s\n", out);
	free(out);
	assert_int_equal(rc, 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(counter_and_gauge_write_help_type_and_value, reset),
	        cmocka_unit_test_setup(register_is_idempotent_by_name, reset),
	        cmocka_unit_test_setup(families_sorted_by_name_and_series_by_labels, reset),
	        cmocka_unit_test_setup(label_values_and_help_are_escaped, reset),
	        cmocka_unit_test_setup(histogram_writes_cumulative_buckets_sum_and_count, reset),
	        cmocka_unit_test_setup(scrape_time_function_is_called_on_write, reset),
	        cmocka_unit_test_setup(invalid_name_characters_become_underscores, reset),
	        cmocka_unit_test_setup(concurrent_adds_are_not_lost, reset),
	        cmocka_unit_test_setup(exposition_passes_promtool_check_metrics, reset),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	metric_reset_all();
	return rc;
}
