/* collect_scrape.c: what a scrape means without the network (src/collect/scrape.c), against
 * a real tsdb in a temporary directory: target building (relabel_configs, instance
 * defaulting to __address__, params in the URL, __ labels removed), target labels merged
 * with honor_labels true/false (conflicts become exported_*), metric_relabel_configs,
 * sample_limit failing the whole scrape, garbage giving up 0 with a reason, the report
 * series, and Prometheus' staleness markers for a vanished series and a failed scrape. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/collect_internal.h"
#include "tsdb/tsdb.h"

static char dir[128];
static struct tsdb *db;
static const char *job = "j"; /* each test scrapes as its own job */

static int setup(void **st) {
	snprintf(dir, sizeof(dir), "/tmp/collect_scrape_XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct tsdb_opts o;
	tsdb_opts_default(&o);
	o.dir = dir;
	o.fsync = TSDB_FSYNC_PERIODIC;
	o.fsync_interval_ms = 1000;
	struct ward_err err;
	ward_err_clear(&err);
	db = tsdb_open(&o, &err);
	assert_non_null(db);
	return 0;
}

static int teardown(void **st) {
	tsdb_close(db);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* The samples of series matching name (and job="j"), written "labels v@t;..." */
static char *series(const char *name) {
	struct matcher m[2];
	struct ward_err err;
	matcher_init(&m[0], MATCH_EQ, "__name__", name, &err);
	matcher_init(&m[1], MATCH_EQ, "job", job, &err);
	struct tsdb_series *s = NULL;
	size_t n = 0;
	assert_int_equal(tsdb_select(db, 0, INT64_MAX, m, 2, 0, 0, &s, &n, &err), 0);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		labels_write(&b, &s[i].labels);
		for (size_t k = 0; k < s[i].n; k++) {
			buf_putc(&b, ' ');
			if (tsdb_is_stale_nan(s[i].v[k]))
				buf_puts(&b, "STALE");
			else
				buf_put_double(&b, s[i].v[k]);
			buf_printf(&b, "@%lld", (long long)s[i].t[k]);
		}
		buf_putc(&b, ';');
	}
	tsdb_series_free(s, n);
	free(s);
	matcher_free(&m[0]);
	matcher_free(&m[1]);
	return buf_detach(&b);
}

#define SERIES(want, name)                                           \
	do {                                                         \
		char *g_ = series(name);                             \
		bool ok_ = strcmp(g_, want) == 0;                    \
		if (!ok_)                                            \
			print_error("got  %s\nwant %s\n", g_, want); \
		free(g_);                                            \
		assert_true(ok_);                                    \
	} while (0)

static struct labels target_labels(void) {
	struct labels tl;
	labels_init(&tl);
	labels_set(&tl, "job", job);
	labels_set(&tl, "instance", "h:1");
	return tl;
}

static void scrape(const char *body, int64_t t, bool honor, size_t limit, const struct relabel *mrl,
                   struct scrape_series_set *prev, struct scrape_result *res) {
	struct labels tl = target_labels();
	struct scrape_process_opts o = {.target_labels = &tl,
	                                .honor_labels = honor,
	                                .honor_timestamps = true,
	                                .sample_limit = limit,
	                                .metric_relabel = mrl};
	memset(res, 0, sizeof(*res));
	res->up = body != NULL;
	if (!body)
		snprintf(res->error, sizeof(res->error), "connection refused");
	scrape_process(db, &o, body, body ? strlen(body) : 0, t, 0.5, prev, res);
	labels_free(&tl);
}

static void targets_follow_relabel_configs(void **st) {
	char *targets[] = {"a:9100", "b:9100", "drop:1"};
	struct conf_kv lbl[] = {{"env", "prod"}};
	struct scrape_static_conf sc = {
	        .targets = targets, .ntargets = 3, .labels = lbl, .nlabels = 1};
	char *src_addr[] = {"__address__"};
	struct relabel_conf rc[2] = {
	        {.source_labels = src_addr,
	         .nsource_labels = 1,
	         .separator = ";",
	         .regex = "drop:.*",
	         .replacement = "$1",
	         .action = RELABEL_DROP},
	        {.source_labels = src_addr,
	         .nsource_labels = 1,
	         .separator = ";",
	         .regex = "b:(.*)",
	         .target_label = "instance",
	         .replacement = "bee:$1",
	         .action = RELABEL_REPLACE},
	};
	struct conf_kv params[] = {{"module", "x"}};
	struct scrape_job_conf j = {.job_name = "j",
	                            .metrics_path = "/m",
	                            .scheme = "http",
	                            .static_configs = &sc,
	                            .nstatic_configs = 1,
	                            .relabel_configs = rc,
	                            .nrelabel_configs = 2,
	                            .params = params,
	                            .nparams = 1};
	struct scrape_conf g = {.scrape_interval_ms = 15000, .scrape_timeout_ms = 10000};
	struct scrape_target_def *d;
	size_t n;
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(scrape_targets_build(&g, &j, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(d[0].url, "http://a:9100/m?module=x");
	assert_string_equal(labels_get(&d[0].labels, "instance"), "a:9100");
	assert_string_equal(labels_get(&d[0].labels, "env"), "prod");
	assert_string_equal(labels_get(&d[0].labels, "job"), "j");
	assert_null(labels_get(&d[0].labels, "__address__"));
	assert_string_equal(labels_get(&d[0].discovered, "__address__"), "a:9100");
	assert_string_equal(labels_get(&d[0].discovered, "__scrape_interval__"), "15s");
	assert_string_equal(labels_get(&d[1].labels, "instance"), "bee:9100");
	scrape_target_defs_free(d, n);
}

static void target_labels_win_unless_honor_labels(void **st) {
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	scrape("a{job=\"other\",x=\"1\"} 1\n", 1000, false, 0, NULL, prev, &r);
	assert_true(r.up);
	SERIES("a{exported_job=\"other\",instance=\"h:1\",job=\"j\",x=\"1\"} 1@1000;", "a");
	/* honor_labels: the target's instance is kept, job added */
	scrape("b{instance=\"mine\"} 2\n", 2000, true, 0, NULL, prev, &r);
	struct matcher m;
	struct ward_err err;
	matcher_init(&m, MATCH_EQ, "__name__", "b", &err);
	struct tsdb_series *s;
	size_t n;
	assert_int_equal(tsdb_select(db, 0, INT64_MAX, &m, 1, 0, 0, &s, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(labels_get(&s[0].labels, "instance"), "mine");
	assert_string_equal(labels_get(&s[0].labels, "job"), "j");
	tsdb_series_free(s, n);
	free(s);
	matcher_free(&m);
	scrape_series_set_free(prev);
}

static void vanished_series_and_failed_scrapes_get_stale_markers(void **st) {
	job = "stale";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	scrape("s1 1\ns2 2\n", 10000, false, 0, NULL, prev, &r);
	assert_int_equal(r.added, 2);
	scrape("s1 1\n", 11000, false, 0, NULL, prev, &r);
	assert_int_equal(r.added, 0);
	SERIES("s2{instance=\"h:1\",job=\"stale\"} 2@10000 STALE@11000;", "s2");
	scrape(NULL, 12000, false, 0, NULL, prev, &r); /* target down */
	SERIES("s1{instance=\"h:1\",job=\"stale\"} 1@10000 1@11000 STALE@12000;", "s1");
	SERIES("up{instance=\"h:1\",job=\"stale\"} 1@10000 1@11000 0@12000;", "up");
	scrape("s1 5\n", 13000, false, 0, NULL, prev, &r);
	assert_int_equal(r.added, 1);
	SERIES("scrape_series_added{instance=\"h:1\",job=\"stale\"} 2@10000 0@11000 0@12000 "
	       "1@13000;",
	       "scrape_series_added");
	scrape_series_set_free(prev);
}

static void garbage_gives_up_zero_with_a_reason(void **st) {
	job = "garbage";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	scrape("g1 1\n", 20000, false, 0, NULL, prev, &r);
	scrape("g1 1\n<html>not metrics</html>\n", 21000, false, 0, NULL, prev, &r);
	assert_false(r.up);
	assert_non_null(strstr(r.error, "line 2"));
	/* nothing of the failed scrape is kept; the old series goes stale */
	SERIES("g1{instance=\"h:1\",job=\"garbage\"} 1@20000 STALE@21000;", "g1");
	scrape_series_set_free(prev);
}

static void sample_limit_fails_the_whole_scrape(void **st) {
	job = "limit";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	scrape("l1 1\nl2 2\nl3 3\n", 30000, false, 2, NULL, prev, &r);
	assert_false(r.up);
	assert_non_null(strstr(r.error, "sample_limit"));
	SERIES("", "l1");
	SERIES("scrape_samples_scraped{instance=\"h:1\",job=\"limit\"} 3@30000;",
	       "scrape_samples_scraped");
	scrape_series_set_free(prev);
}

static void metric_relabel_drops_before_the_limit(void **st) {
	job = "mrl";
	char *src[] = {"__name__"};
	struct relabel_conf rc = {.source_labels = src,
	                          .nsource_labels = 1,
	                          .separator = ";",
	                          .regex = "drop_.*",
	                          .replacement = "$1",
	                          .action = RELABEL_DROP};
	struct ward_err err;
	struct relabel *mrl = relabel_new(&rc, 1, &err);
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	scrape("m1 1\ndrop_a 2\ndrop_b 3\n", 40000, false, 1, mrl, prev, &r);
	assert_true(r.up);
	assert_int_equal(r.scraped, 3);
	assert_int_equal(r.post_relabel, 1);
	SERIES("m1{instance=\"h:1\",job=\"mrl\"} 1@40000;", "m1");
	SERIES("", "drop_a");
	relabel_free(mrl);
	scrape_series_set_free(prev);
}

static void a_removed_target_ends_its_series_and_report_series(void **st) {
	job = "removed";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	scrape("x1 1\n", 50000, false, 0, NULL, prev, &r);
	struct labels tl = target_labels();
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(scrape_series_set_stale(prev, &tl, db, 51000, &err), 0);
	labels_free(&tl);
	SERIES("x1{instance=\"h:1\",job=\"removed\"} 1@50000 STALE@51000;", "x1");
	SERIES("up{instance=\"h:1\",job=\"removed\"} 1@50000 STALE@51000;", "up");
	scrape_series_set_free(prev);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(targets_follow_relabel_configs),
	        cmocka_unit_test(target_labels_win_unless_honor_labels),
	        cmocka_unit_test(vanished_series_and_failed_scrapes_get_stale_markers),
	        cmocka_unit_test(garbage_gives_up_zero_with_a_reason),
	        cmocka_unit_test(sample_limit_fails_the_whole_scrape),
	        cmocka_unit_test(metric_relabel_drops_before_the_limit),
	        cmocka_unit_test(a_removed_target_ends_its_series_and_report_series),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
