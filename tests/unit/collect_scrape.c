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

/* The samples of series matching name (and job="j", and label=value when label is not
 * NULL), written "labels v@t;..." */
static char *series_where(const char *name, const char *label, const char *value) {
	struct matcher m[3];
	struct ward_err err;
	matcher_init(&m[0], MATCH_EQ, "__name__", name, &err);
	matcher_init(&m[1], MATCH_EQ, "job", job, &err);
	if (label)
		matcher_init(&m[2], MATCH_EQ, label, value, &err);
	struct tsdb_series *s = NULL;
	size_t n = 0;
	assert_int_equal(tsdb_select(db, 0, INT64_MAX, m, label ? 3 : 2, 0, 0, &s, &n, &err), 0);
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
	if (label)
		matcher_free(&m[2]);
	return buf_detach(&b);
}

static char *series(const char *name) {
	return series_where(name, NULL, NULL);
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

/* scrape() with the content type and honor_labels chosen. */
static void scrape_ct(const char *body, const char *ctype, int64_t t, bool honor,
                      const struct relabel *mrl, struct scrape_series_set *prev,
                      struct scrape_result *res) {
	struct labels tl = target_labels();
	struct scrape_process_opts o = {.target_labels = &tl,
	                                .honor_labels = honor,
	                                .honor_timestamps = true,
	                                .metric_relabel = mrl,
	                                .content_type = ctype};
	memset(res, 0, sizeof(*res));
	res->up = true;
	scrape_process(db, &o, body, strlen(body), t, 0.5, prev, res);
	labels_free(&tl);
}

static size_t cache_entries(const struct scrape_series_set *s, size_t *series) {
	size_t e, n;
	scrape_cache_stats(s, &e, &n);
	if (series)
		*series = n;
	return e;
}

/* A rule setting label v to value (relabel_new borrows its conf: static storage). */
static char *name_src[] = {"__name__"};
static struct relabel_conf set_v[2] = {
        {.source_labels = name_src, .nsource_labels = 1, .separator = ";", .regex = "(.*)",
         .target_label = "v", .replacement = "a", .action = RELABEL_REPLACE},
        {.source_labels = name_src, .nsource_labels = 1, .separator = ";", .regex = "(.*)",
         .target_label = "v", .replacement = "b", .action = RELABEL_REPLACE},
};

static struct relabel *relabel_set_v(int which) {
	struct ward_err err;
	struct relabel *r = relabel_new(&set_v[which], 1, &err);
	assert_non_null(r);
	return r;
}

/* A steady body is served from the cache after the first scrape and stores exactly what a
 * fresh parse would; a line whose labels change is a new series and the old one goes stale;
 * the cache holds only the last scrape's lines. */
static void cached_lines_store_the_same_and_changed_labels_are_new_series(void **st) {
	job = "cache";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	const char *body = "# TYPE c counter\nc_total{a=\"1\",b=\"x\"} 1\nc_total{a=\"2\"} 2\n";
	scrape(body, 60000, false, 0, NULL, prev, &r);
	assert_true(r.up);
	assert_int_equal(r.added, 2);
	assert_int_equal(cache_entries(prev, NULL), 2);
	scrape(body, 61000, false, 0, NULL, prev, &r);
	assert_true(r.up);
	assert_int_equal(r.added, 0);
	assert_int_equal(r.scraped, 2);
	assert_int_equal(r.post_relabel, 2);
	/* the same label set written another way is the same series */
	scrape("# TYPE c counter\nc_total{b=\"x\",a=\"1\"} 3\nc_total{a=\"2\"} 4\n", 62000, false, 0,
	       NULL, prev, &r);
	assert_true(r.up);
	assert_int_equal(r.added, 0);
	/* a="2" becomes a="3": a new series; a="2" ends with a stale marker */
	scrape("# TYPE c counter\nc_total{b=\"x\",a=\"1\"} 5\nc_total{a=\"3\"} 6\n", 63000, false, 0,
	       NULL, prev, &r);
	assert_true(r.up);
	assert_int_equal(r.added, 1);
	SERIES("c_total{a=\"1\",b=\"x\",instance=\"h:1\",job=\"cache\"} 1@60000 1@61000 3@62000 "
	       "5@63000;"
	       "c_total{a=\"2\",instance=\"h:1\",job=\"cache\"} 2@60000 2@61000 4@62000 "
	       "STALE@63000;"
	       "c_total{a=\"3\",instance=\"h:1\",job=\"cache\"} 6@63000;",
	       "c_total");
	size_t nser;
	assert_int_equal(cache_entries(prev, &nser), 2); /* the lines of the last scrape */
	assert_int_equal(nser, 2);
	/* a line that vanishes from a cached body gets its stale marker, once */
	scrape("# TYPE c counter\nc_total{a=\"3\"} 7\n", 64000, false, 0, NULL, prev, &r);
	scrape("# TYPE c counter\nc_total{a=\"3\"} 8\n", 65000, false, 0, NULL, prev, &r);
	SERIES("c_total{a=\"1\",b=\"x\",instance=\"h:1\",job=\"cache\"} 1@60000 1@61000 3@62000 "
	       "5@63000 STALE@64000;"
	       "c_total{a=\"2\",instance=\"h:1\",job=\"cache\"} 2@60000 2@61000 4@62000 "
	       "STALE@63000;"
	       "c_total{a=\"3\",instance=\"h:1\",job=\"cache\"} 6@63000 7@64000 8@65000;",
	       "c_total");
	assert_int_equal(cache_entries(prev, &nser), 1);
	assert_int_equal(nser, 1);
	/* a big body, then a small one: memory follows the last body */
	struct buf big = BUF_INIT;
	for (int i = 0; i < 500; i++)
		buf_printf(&big, "big{i=\"%d\"} %d\n", i, i);
	scrape(buf_cstr(&big), 66000, false, 0, NULL, prev, &r);
	assert_int_equal(r.added, 500);
	assert_int_equal(cache_entries(prev, NULL), 500);
	scrape("big{i=\"7\"} 1\n", 67000, false, 0, NULL, prev, &r);
	assert_int_equal(cache_entries(prev, &nser), 1);
	assert_int_equal(nser, 1);
	/* the cache was compacted (most of it was dead): it still maps and ends series */
	scrape("big{i=\"7\"} 2\nbig{i=\"8\"} 3\n", 68000, false, 0, NULL, prev, &r);
	assert_int_equal(r.added, 1);
	scrape("big{i=\"8\"} 4\n", 69000, false, 0, NULL, prev, &r);
	assert_int_equal(r.added, 0);
	char *g = series_where("big", "i", "7");
	assert_string_equal(g, "big{i=\"7\",instance=\"h:1\",job=\"cache\"} 7@66000 1@67000 2@68000 "
	                       "STALE@69000;");
	free(g);
	g = series_where("big", "i", "8");
	assert_string_equal(g, "big{i=\"8\",instance=\"h:1\",job=\"cache\"} 8@66000 STALE@67000 "
	                       "3@68000 4@69000;");
	free(g);
	buf_free(&big);
	scrape_series_set_free(prev);
}

/* Cached lines still fail the scrape when they break a rule beyond their text: a duplicate
 * (same message as a fresh parse), and OpenMetrics' numeric "le" once the family has become
 * a histogram. */
static void cached_lines_still_fail_on_duplicates_and_type_rules(void **st) {
	job = "cachedup";
	struct scrape_series_set *prev = scrape_series_set_new(), *fresh = scrape_series_set_new();
	struct scrape_result r, r2;
	scrape("d{x=\"1\"} 1\n", 70000, false, 0, NULL, prev, &r);
	assert_true(r.up);
	scrape("d{x=\"1\"} 1\nd{x=\"1\"} 2\n", 71000, false, 0, NULL, prev, &r);
	assert_false(r.up);
	scrape("d{x=\"1\"} 1\nd{x=\"1\"} 2\n", 71000, false, 0, NULL, fresh, &r2);
	assert_false(r2.up);
	assert_string_equal(r.error, r2.error);
	assert_non_null(strstr(r.error, "duplicate series"));
	/* the same text with other timestamps is fine, and counted as one series */
	scrape("d{x=\"1\"} 1 72000\nd{x=\"1\"} 2 72001\n", 72500, false, 0, NULL, prev, &r);
	assert_true(r.up);
	assert_int_equal(r.scraped, 2);
	scrape_series_set_free(fresh);

	const char *om = "application/openmetrics-text; version=1.0.0";
	scrape_ct("h_bucket{le=\"x\"} 1\n# EOF\n", om, 73000, false, NULL, prev, &r);
	assert_true(r.up);
	scrape_ct("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n# EOF\n", om, 74000, false, NULL, prev,
	          &r);
	assert_false(r.up);
	assert_non_null(strstr(r.error, "must be a number"));
	/* a text valid in 0.0.4 (an unknown escape is kept) is parsed again, and refused, when
	 * the same target answers in OpenMetrics */
	scrape_ct("e{x=\"a\\q\"} 1\n", "text/plain; version=0.0.4", 75000, false, NULL, prev, &r);
	assert_true(r.up);
	scrape_ct("e{x=\"a\\q\"} 1\n# EOF\n", om, 76000, false, NULL, prev, &r);
	assert_false(r.up);
	assert_non_null(strstr(r.error, "invalid escape"));
	scrape_series_set_free(prev);
}

/* What a line maps to depends on the metric relabeling and honor_labels: when they change,
 * the lines are mapped afresh (the series under the old labels go stale); forgetting the
 * mapping (a config reload) keeps the staleness state. Two lines relabeled into one series
 * keep it alive while either is there. */
static void relabel_and_honor_labels_changes_invalidate_the_cache(void **st) {
	job = "cacherl";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	struct relabel *ra = relabel_set_v(0), *rb = relabel_set_v(1);
	scrape("q 1\n", 80000, false, 0, ra, prev, &r);
	scrape("q 2\n", 81000, false, 0, ra, prev, &r);
	assert_int_equal(r.added, 0);
	scrape("q 3\n", 82000, false, 0, rb, prev, &r);
	assert_int_equal(r.added, 1);
	SERIES("q{instance=\"h:1\",job=\"cacherl\",v=\"a\"} 1@80000 2@81000 STALE@82000;"
	       "q{instance=\"h:1\",job=\"cacherl\",v=\"b\"} 3@82000;",
	       "q");
	/* a reload forgets the mapping but not the series: nothing added, nothing stale */
	scrape_series_set_forget(prev);
	assert_int_equal(cache_entries(prev, NULL), 0);
	scrape("q 4\n", 83000, false, 0, rb, prev, &r);
	assert_int_equal(r.added, 0);
	SERIES("q{instance=\"h:1\",job=\"cacherl\",v=\"a\"} 1@80000 2@81000 STALE@82000;"
	       "q{instance=\"h:1\",job=\"cacherl\",v=\"b\"} 3@82000 4@83000;",
	       "q");
	/* honor_labels flips: job="x" of the line now wins */
	scrape("w{job=\"x\"} 1\n", 84000, false, 0, NULL, prev, &r);
	scrape("w{job=\"x\"} 2\n", 85000, true, 0, NULL, prev, &r);
	assert_int_equal(r.added, 1);
	job = "x";
	SERIES("w{instance=\"h:1\",job=\"x\"} 2@85000;", "w");
	job = "cacherl";
	SERIES("w{exported_job=\"x\",instance=\"h:1\",job=\"cacherl\"} 1@84000 STALE@85000;", "w");
	/* two lines, one series (relabeling drops the label that tells them apart) */
	static struct relabel_conf drop = {.regex = "k", .action = RELABEL_LABELDROP};
	struct ward_err err;
	struct relabel *rd = relabel_new(&drop, 1, &err);
	assert_non_null(rd);
	scrape("m{k=\"1\"} 1 \nm{k=\"2\"} 1\n", 86000, false, 0, rd, prev, &r);
	assert_int_equal(r.added, 1);
	scrape("m{k=\"1\"} 1\nm{k=\"2\"} 1\n", 87000, false, 0, rd, prev, &r);
	scrape("m{k=\"2\"} 1\n", 88000, false, 0, rd, prev, &r);
	SERIES("m{instance=\"h:1\",job=\"cacherl\"} 1@86000 1@87000 1@88000;", "m");
	scrape("n 1\n", 89000, false, 0, rd, prev, &r);
	SERIES("m{instance=\"h:1\",job=\"cacherl\"} 1@86000 1@87000 1@88000 STALE@89000;", "m");
	relabel_free(ra);
	relabel_free(rb);
	relabel_free(rd);
	scrape_series_set_free(prev);
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

/* A cached series appends by its tsdb ref once it has one. When maintenance empties the
 * head (the refs are gone) the next scrape falls back to its labels, and refs learned in one
 * store are never used in another, where the same numbers name other series. */
static void cached_series_refs_survive_head_gc_and_never_cross_stores(void **st) {
	job = "refs";
	struct scrape_series_set *prev = scrape_series_set_new();
	struct scrape_result r;
	struct ward_err err;
	scrape("r1 1\nr2 2\n", 10000, false, 0, NULL, prev, &r);
	scrape("r1 3\nr2 4\n", 11000, false, 0, NULL, prev, &r); /* learns the refs */
	scrape("r1 5\nr2 6\n", 12000, false, 0, NULL, prev, &r); /* appends by ref */
	assert_int_equal(tsdb_maintain(db, true, &err), 0);      /* the head lets go */
	scrape("r1 7\nr2 8\n", 13000, false, 0, NULL, prev, &r);
	assert_true(r.up);
	scrape("r1 9\nr2 10\n", 14000, false, 0, NULL, prev, &r); /* refs known again */
	SERIES("r1{instance=\"h:1\",job=\"refs\"} 1@10000 3@11000 5@12000 7@13000 9@14000;", "r1");
	SERIES("r2{instance=\"h:1\",job=\"refs\"} 2@10000 4@11000 6@12000 8@13000 10@14000;",
	       "r2");
	/* another store whose first series take every small ref number */
	struct tsdb *first = db;
	char firstdir[sizeof(dir)];
	memcpy(firstdir, dir, sizeof(dir));
	snprintf(dir, sizeof(dir), "/tmp/collect_scrape_XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct tsdb_opts o;
	tsdb_opts_default(&o);
	o.dir = dir;
	db = tsdb_open(&o, &err);
	assert_non_null(db);
	struct tsdb_appender *a = tsdb_appender_new(db);
	for (int i = 0; i < 5000; i++) { /* more than the first store has ever had */
		struct labels ls;
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		labels_init(&ls);
		labels_set(&ls, "__name__", "other");
		labels_set(&ls, "job", job);
		labels_set(&ls, "i", v);
		assert_int_equal(tsdb_append(a, &ls, 20000, i, &err), 0);
		labels_free(&ls);
	}
	assert_int_equal(tsdb_commit(a, NULL, &err), 0);
	scrape("r1 9\nr2 10\n", 21000, false, 0, NULL, prev, &r);
	scrape("r1 11\nr2 12\n", 22000, false, 0, NULL, prev, &r);
	SERIES("r1{instance=\"h:1\",job=\"refs\"} 9@21000 11@22000;", "r1");
	SERIES("r2{instance=\"h:1\",job=\"refs\"} 10@21000 12@22000;", "r2");
	char *others = series("other");
	assert_null(strstr(others, "@21000"));
	assert_null(strstr(others, "@22000"));
	free(others);
	tsdb_close(db);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	db = first;
	memcpy(dir, firstdir, sizeof(dir));
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
	        cmocka_unit_test(cached_series_refs_survive_head_gc_and_never_cross_stores),
	        cmocka_unit_test(sample_limit_fails_the_whole_scrape),
	        cmocka_unit_test(metric_relabel_drops_before_the_limit),
	        cmocka_unit_test(a_removed_target_ends_its_series_and_report_series),
	        cmocka_unit_test(cached_lines_store_the_same_and_changed_labels_are_new_series),
	        cmocka_unit_test(cached_lines_still_fail_on_duplicates_and_type_rules),
	        cmocka_unit_test(relabel_and_honor_labels_changes_invalidate_the_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
