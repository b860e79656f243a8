/* tsdb_db.c: unit tests of the engine's public API: append and select across the head and
 * blocks after a forced maintenance, the out-of-order window and rejection counters, stale
 * markers kept bit for bit, invalid label sets, label names/values, max_samples, and
 * data surviving a clean close and reopen. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tsdb/tsdb.h"
#include "tsdb/tsdb_internal.h"

static char dir[64];

static int setup(void **state) {
	snprintf(dir, sizeof(dir), "/tmp/tsdb_db_XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state) {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct tsdb *open_db(int64_t ooo) {
	struct tsdb_opts o;
	struct ward_err err;
	tsdb_opts_default(&o);
	o.dir = dir;
	o.ooo_window_ms = ooo;
	o.downsample = false;
	struct tsdb *db = tsdb_open(&o, &err);
	if (!db)
		fail_msg("%s", err.msg);
	return db;
}

static void mk(struct labels *ls, const char *name, const char *job, const char *inst) {
	labels_init(ls);
	labels_set(ls, "__name__", name);
	if (job)
		labels_set(ls, "job", job);
	if (inst)
		labels_set(ls, "instance", inst);
}

static size_t commit1(struct tsdb *db, const struct labels *ls, int64_t t, double v) {
	struct ward_err err;
	size_t rej = 99;
	struct tsdb_appender *a = tsdb_appender_new(db);
	assert_int_equal(tsdb_append(a, ls, t, v, &err), 0);
	assert_int_equal(tsdb_commit(a, &rej, &err), 0);
	return rej;
}

/* Selects __name__=name and returns the single series (or n 0). */
static size_t sel(struct tsdb *db, const char *name, int64_t mint, int64_t maxt,
                  struct tsdb_series **out) {
	struct matcher m;
	struct ward_err err;
	size_t n;
	assert_int_equal(matcher_init(&m, MATCH_EQ, "__name__", name, &err), 0);
	assert_int_equal(tsdb_select(db, mint, maxt, &m, 1, 0, 0, out, &n, &err), 0);
	matcher_free(&m);
	return n;
}

static void free_sel(struct tsdb_series *s, size_t n) {
	tsdb_series_free(s, n);
	free(s);
}

static void db_select_spans_head_and_blocks_after_forced_cut(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a, b;
	struct ward_err err;
	mk(&a, "cpu", "node", "h1");
	mk(&b, "cpu", "node", "h2");
	const int64_t t0 = 1700000000000LL, step = 15000;
	/* 4 hours of data for two series in batches of 10 */
	for (int i = 0; i < 960; i += 10) {
		struct tsdb_appender *ap = tsdb_appender_new(db);
		for (int k = i; k < i + 10; k++) {
			assert_int_equal(tsdb_append(ap, &a, t0 + k * step, k, &err), 0);
			assert_int_equal(tsdb_append(ap, &b, t0 + k * step, -k, &err), 0);
		}
		assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	}
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	struct tsdb_stats st;
	tsdb_stats(db, &st);
	assert_true(st.blocks >= 1);
	assert_int_equal(st.series, 0);
	assert_int_equal(st.block_samples, 1920);
	/* more data into the head */
	for (int k = 960; k < 1000; k++) {
		commit1(db, &a, t0 + k * step, k);
		commit1(db, &b, t0 + k * step, -k);
	}
	struct tsdb_series *s;
	size_t n = sel(db, "cpu", t0, t0 + 1000 * step, &s);
	assert_int_equal(n, 2);
	assert_string_equal(labels_get(&s[0].labels, "instance"), "h1");
	assert_string_equal(labels_get(&s[1].labels, "instance"), "h2");
	for (size_t j = 0; j < 2; j++) {
		assert_int_equal(s[j].n, 1000);
		for (int k = 0; k < 1000; k++) {
			assert_true(s[j].t[k] == t0 + k * step);
			assert_true(s[j].v[k] == (j == 0 ? k : -k));
		}
	}
	free_sel(s, n);
	/* a sub-range inside one block */
	n = sel(db, "cpu", t0 + 100 * step, t0 + 109 * step, &s);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].n, 10);
	assert_true(s[0].t[0] == t0 + 100 * step);
	free_sel(s, n);
	/* reopen: blocks and WAL-backed head come back */
	tsdb_close(db);
	db = open_db(0);
	n = sel(db, "cpu", INT64_MIN, INT64_MAX, &s);
	assert_int_equal(n, 2);
	assert_int_equal(s[1].n, 1000);
	free_sel(s, n);
	/* max_samples */
	struct matcher m;
	matcher_init(&m, MATCH_RE, "__name__", "cpu", &err);
	assert_int_equal(tsdb_select(db, INT64_MIN, INT64_MAX, &m, 1, 0, 1500, &s, &n, &err), -1);
	assert_non_null(strstr(err.msg, "more than 1500 samples"));
	matcher_free(&m);
	labels_free(&a);
	labels_free(&b);
	tsdb_close(db);
}

/* A snapshot holds blocks and head exactly as committed when it was taken: later samples
 * are not in it, and it opens as a store of its own (the backup of ward's state uses it). */
static void db_snapshot_is_the_committed_state_at_that_instant(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a;
	struct ward_err err;
	char snap[64], orig[64];
	const int64_t t0 = 1700000000000LL, step = 15000;
	mk(&a, "mem", "node", "h1");
	for (int k = 0; k < 960; k++)
		commit1(db, &a, t0 + k * step, k);
	assert_int_equal(tsdb_maintain(db, true, &err), 0); /* into blocks */
	for (int k = 960; k < 1000; k++)                     /* and some in the head */
		commit1(db, &a, t0 + k * step, k);
	snprintf(snap, sizeof(snap), "%.50s/snap", dir);
	assert_int_equal(tsdb_snapshot(db, snap, &err), 0);
	for (int k = 1000; k < 1100; k++) /* after the snapshot: not in it */
		commit1(db, &a, t0 + k * step, k);
	assert_int_equal(tsdb_maintain(db, true, &err), 0); /* compaction may replace blocks */
	tsdb_close(db);
	memcpy(orig, dir, sizeof(orig));
	snprintf(dir, sizeof(dir), "%s", snap);
	db = open_db(0);
	struct tsdb_series *s;
	size_t n = sel(db, "mem", INT64_MIN, INT64_MAX, &s);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].n, 1000);
	for (int k = 0; k < 1000; k++)
		assert_true(s[0].t[k] == t0 + k * step && s[0].v[k] == k);
	free_sel(s, n);
	tsdb_close(db);
	memcpy(dir, orig, sizeof(orig));
	db = open_db(0); /* the original has all of it */
	n = sel(db, "mem", INT64_MIN, INT64_MAX, &s);
	assert_int_equal(s[0].n, 1100);
	free_sel(s, n);
	labels_free(&a);
	tsdb_close(db);
}

/* tsdb_append_n stages a series' samples together, for a new series (labels kept once) and
 * for one the head has, in one batch with other series; all of them read back. */
static void db_append_n_new_and_known_series_in_one_batch(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a, b;
	struct ward_err err;
	const int64_t t0 = 1700000000000LL;
	int64_t ts[8];
	double vs[8];
	mk(&a, "req", "api", "h1");
	mk(&b, "req", "api", "h2");
	commit1(db, &a, t0 - 1000, -1); /* a is known, b is new */
	for (int k = 0; k < 8; k++) {
		ts[k] = t0 + k * 1000;
		vs[k] = k;
	}
	struct tsdb_appender *ap = tsdb_appender_new(db);
	assert_int_equal(tsdb_append_n(ap, &b, ts, vs, 8, &err), 0);
	assert_int_equal(tsdb_append_n(ap, &a, ts, vs, 8, &err), 0);
	assert_int_equal(tsdb_append_n(ap, &b, ts, vs, 0, &err), 0);
	size_t rej = 9;
	assert_int_equal(tsdb_commit(ap, &rej, &err), 0);
	assert_int_equal(rej, 0);
	tsdb_close(db); /* and through the WAL */
	db = open_db(0);
	struct tsdb_series *s;
	size_t n = sel(db, "req", INT64_MIN, INT64_MAX, &s);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].n, 9); /* h1: the earlier sample and the batch */
	assert_int_equal(s[1].n, 8);
	for (int k = 0; k < 8; k++)
		assert_true(s[1].t[k] == ts[k] && s[1].v[k] == k);
	free_sel(s, n);
	labels_free(&a);
	labels_free(&b);
	tsdb_close(db);
}

/* Appending by ref: a series new to the head has no ref until committed, a known one hands
 * out its ref, samples staged by ref land in that series, and a ref the head no longer holds
 * (maintenance removed the series) or never held is refused, never taken for another. */
static void db_append_by_ref_and_a_ref_gone_from_the_head(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a, b;
	struct ward_err err;
	const int64_t t0 = 1700000000000LL;
	uint32_t ref = 99, r1, rb;
	mk(&a, "req", "api", "h1");
	mk(&b, "req", "api", "h2");
	struct tsdb_appender *ap = tsdb_appender_new(db);
	assert_int_equal(tsdb_append_get_ref(ap, &a, t0, 1, &ref, &err), 0);
	assert_int_equal(ref, 0); /* new to the head */
	assert_int_equal(tsdb_append_get_ref(ap, &b, t0, 10, &rb, &err), 0);
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	ap = tsdb_appender_new(db);
	assert_int_equal(tsdb_append_get_ref(ap, &a, t0 + 1000, 2, &r1, &err), 0);
	assert_int_equal(tsdb_append_get_ref(ap, &b, t0 + 1000, 20, &rb, &err), 0);
	assert_true(r1 != 0 && rb != 0 && r1 != rb);
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	ap = tsdb_appender_new(db);
	assert_int_equal(tsdb_append_ref(ap, r1, t0 + 2000, 3), 0);
	assert_int_equal(tsdb_append_ref(ap, rb, t0 + 2000, 30), 0);
	assert_int_equal(tsdb_append_ref(ap, 0, t0 + 2000, 0), 1);
	assert_int_equal(tsdb_append_ref(ap, r1 + rb + 100, t0 + 2000, 0), 1);
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	/* everything into blocks: the head drops both series */
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	ap = tsdb_appender_new(db);
	assert_int_equal(tsdb_append_ref(ap, r1, t0 + 3000, 4), 1);
	assert_int_equal(tsdb_append_get_ref(ap, &a, t0 + 3000, 4, &ref, &err), 0);
	assert_int_equal(ref, 0); /* new to the head again */
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	ap = tsdb_appender_new(db);
	assert_int_equal(tsdb_append_get_ref(ap, &a, t0 + 4000, 5, &ref, &err), 0);
	assert_true(ref != 0 && ref != r1 && ref != rb); /* refs are not reused */
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	tsdb_close(db); /* and through blocks and the WAL */
	db = open_db(0);
	struct tsdb_series *s;
	size_t n = sel(db, "req", INT64_MIN, INT64_MAX, &s);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].n, 5);
	for (int k = 0; k < 5; k++)
		assert_true(s[0].t[k] == t0 + k * 1000 && s[0].v[k] == k + 1);
	assert_int_equal(s[1].n, 3);
	for (int k = 0; k < 3; k++)
		assert_true(s[1].t[k] == t0 + k * 1000 && s[1].v[k] == 10 * (k + 1));
	free_sel(s, n);
	labels_free(&a);
	labels_free(&b);
	tsdb_close(db);
}

static void db_out_of_order_window_accepts_recent_and_counts_old(void **state) {
	struct tsdb *db = open_db(60000);
	struct labels a;
	mk(&a, "m", NULL, NULL);
	assert_int_equal(commit1(db, &a, 100000, 1), 0);
	assert_int_equal(commit1(db, &a, 200000, 2), 0);
	assert_int_equal(commit1(db, &a, 150000, 1.5), 0); /* within 60s */
	assert_int_equal(commit1(db, &a, 170000, 1.7), 0);
	assert_int_equal(commit1(db, &a, 130000, 1.3), 1); /* 70s behind: too old */
	assert_int_equal(commit1(db, &a, 150000, 9), 1);   /* duplicate, other value */
	assert_int_equal(commit1(db, &a, 150000, 1.5), 0); /* same value: ignored */
	assert_int_equal(commit1(db, &a, 200000, 3), 1);   /* duplicate of newest */
	assert_int_equal(commit1(db, &a, 100000, 7), 1);   /* too old */
	struct tsdb_stats st;
	tsdb_stats(db, &st);
	assert_int_equal(st.rejected_too_old, 2);
	assert_int_equal(st.rejected_duplicate, 2);
	assert_int_equal(st.appended_total, 4);
	struct tsdb_series *s;
	size_t n = sel(db, "m", 0, 300000, &s);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].n, 4);
	int64_t wt[] = {100000, 150000, 170000, 200000};
	double wv[] = {1, 1.5, 1.7, 2};
	for (int i = 0; i < 4; i++) {
		assert_true(s[0].t[i] == wt[i]);
		assert_true(s[0].v[i] == wv[i]);
	}
	free_sel(s, n);
	/* replay gives the same picture */
	tsdb_close(db);
	db = open_db(60000);
	n = sel(db, "m", 0, 300000, &s);
	assert_int_equal(s[0].n, 4);
	assert_true(s[0].v[1] == 1.5);
	free_sel(s, n);
	/* and after a cut the out-of-order samples are in the block */
	struct ward_err err;
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	n = sel(db, "m", 0, 300000, &s);
	assert_int_equal(s[0].n, 4);
	assert_true(s[0].t[2] == 170000);
	free_sel(s, n);
	labels_free(&a);
	tsdb_close(db);
}

static void db_without_window_rejects_any_older_sample(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a;
	mk(&a, "m", NULL, NULL);
	assert_int_equal(commit1(db, &a, 1000, 1), 0);
	assert_int_equal(commit1(db, &a, 999, 1), 1);
	labels_free(&a);
	tsdb_close(db);
}

static void db_keeps_stale_markers_bit_for_bit(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a;
	struct ward_err err;
	mk(&a, "m", NULL, NULL);
	commit1(db, &a, 1000, 1);
	commit1(db, &a, 2000, tsdb_stale_nan());
	commit1(db, &a, 3000, NAN);
	struct tsdb_series *s;
	size_t n = sel(db, "m", 0, 5000, &s);
	assert_int_equal(s[0].n, 3);
	assert_true(tsdb_is_stale_nan(s[0].v[1]));
	assert_false(tsdb_is_stale_nan(s[0].v[2]));
	assert_true(isnan(s[0].v[2]));
	free_sel(s, n);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	n = sel(db, "m", 0, 5000, &s);
	assert_true(tsdb_is_stale_nan(s[0].v[1]));
	free_sel(s, n);
	labels_free(&a);
	tsdb_close(db);
}

static void db_rejects_invalid_label_sets(void **state) {
	struct tsdb *db = open_db(0);
	struct ward_err err;
	struct tsdb_appender *a = tsdb_appender_new(db);
	struct labels ls;
	labels_init(&ls);
	assert_int_equal(tsdb_append(a, &ls, 1, 1, &err), -1);
	labels_set(&ls, "job", "x");
	assert_int_equal(tsdb_append(a, &ls, 1, 1, &err), -1);
	assert_non_null(strstr(err.msg, "__name__"));
	labels_set(&ls, "__name__", "ok");
	assert_int_equal(tsdb_append(a, &ls, 1, 1, &err), 0);
	/* unsorted names built by hand */
	struct label raw[2] = {{"job", "x"}, {"__name__", "y"}};
	struct labels bad = {raw, 2};
	assert_int_equal(tsdb_append(a, &bad, 1, 1, &err), -1);
	struct label raw2[2] = {{"__name__", "y"}, {"1bad", "x"}};
	struct labels bad2 = {raw2, 2};
	assert_int_equal(tsdb_append(a, &bad2, 1, 1, &err), -1);
	tsdb_rollback(a);
	labels_free(&ls);
	tsdb_close(db);
}

static void db_lists_label_names_and_values_in_range(void **state) {
	struct tsdb *db = open_db(0);
	struct labels a, b, c;
	struct ward_err err;
	mk(&a, "up", "api", "h1");
	mk(&b, "up", "db", NULL);
	mk(&c, "down", "web", "h9");
	commit1(db, &a, 1000, 1);
	commit1(db, &b, 1000, 1);
	commit1(db, &c, 50000, 1);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	commit1(db, &a, 60000, 1);
	char **v;
	size_t n;
	assert_int_equal(tsdb_label_names(db, 0, 100000, NULL, 0, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "__name__");
	assert_string_equal(v[1], "instance");
	assert_string_equal(v[2], "job");
	tsdb_strings_free(v, n);
	assert_int_equal(tsdb_label_values(db, "job", 0, 2000, NULL, 0, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "api");
	assert_string_equal(v[1], "db");
	tsdb_strings_free(v, n);
	struct matcher m;
	matcher_init(&m, MATCH_EQ, "__name__", "down", &err);
	assert_int_equal(tsdb_label_values(db, "instance", 0, 100000, &m, 1, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "h9");
	tsdb_strings_free(v, n);
	matcher_free(&m);
	labels_free(&a);
	labels_free(&b);
	labels_free(&c);
	tsdb_close(db);
}

static void db_second_open_of_same_dir_is_refused(void **state) {
	struct tsdb *db = open_db(0);
	struct tsdb_opts o;
	struct ward_err err;
	tsdb_opts_default(&o);
	o.dir = dir;
	assert_null(tsdb_open(&o, &err));
	assert_non_null(strstr(err.msg, "in use"));
	tsdb_close(db);
}

static void db_periodic_fsync_keeps_data_across_close(void **state) {
	struct tsdb_opts o;
	struct ward_err err;
	tsdb_opts_default(&o);
	o.dir = dir;
	o.fsync = TSDB_FSYNC_PERIODIC;
	o.fsync_interval_ms = 5;
	struct tsdb *db = tsdb_open(&o, &err);
	assert_non_null(db);
	struct labels a;
	mk(&a, "p", NULL, NULL);
	for (int i = 0; i < 50; i++)
		commit1(db, &a, i, i);
	struct timespec ts = {0, 20 * 1000000L};
	nanosleep(&ts, NULL); /* let the fsync thread run */
	tsdb_close(db);
	db = tsdb_open(&o, &err);
	assert_non_null(db);
	struct tsdb_series *s;
	size_t n = sel(db, "p", 0, 100, &s);
	assert_int_equal(s[0].n, 50);
	free_sel(s, n);
	labels_free(&a);
	tsdb_close(db);
}

struct worker {
	struct tsdb *db;
	int id;
};

static void *writer(void *arg) {
	struct worker *w = arg;
	struct labels ls;
	struct ward_err err;
	char v[8];
	snprintf(v, sizeof(v), "w%d", w->id);
	mk(&ls, "conc", v, NULL);
	for (int b = 0; b < 200; b++) {
		struct tsdb_appender *a = tsdb_appender_new(w->db);
		for (int k = 0; k < 10; k++)
			tsdb_append(a, &ls, (int64_t)(b * 10 + k) * 1000, k, &err);
		if (tsdb_commit(a, NULL, &err) < 0)
			fail_msg("%s", err.msg);
	}
	labels_free(&ls);
	return NULL;
}

static void *reader(void *arg) {
	struct worker *w = arg;
	struct ward_err err;
	for (int i = 0; i < 100; i++) {
		struct tsdb_series *s;
		size_t n;
		if (tsdb_select(w->db, INT64_MIN, INT64_MAX, NULL, 0, 0, 0, &s, &n, &err) < 0)
			fail_msg("%s", err.msg);
		for (size_t j = 0; j < n; j++)
			for (size_t k = 1; k < s[j].n; k++)
				assert_true(s[j].t[k] > s[j].t[k - 1]);
		tsdb_series_free(s, n);
		free(s);
		if (i % 20 == 0 && tsdb_maintain(w->db, i % 40 == 0, &err) < 0)
			fail_msg("%s", err.msg);
	}
	return NULL;
}

static void db_concurrent_writers_readers_and_maintenance(void **state) {
	struct tsdb *db = open_db(0);
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i].db = db;
		w[i].id = i;
		pthread_create(&th[i], NULL, i < 3 ? writer : reader, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	struct tsdb_series *s;
	size_t n = sel(db, "conc", INT64_MIN, INT64_MAX, &s);
	assert_int_equal(n, 3);
	for (size_t j = 0; j < n; j++)
		assert_int_equal(s[j].n, 2000);
	free_sel(s, n);
	tsdb_close(db);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(db_select_spans_head_and_blocks_after_forced_cut,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                db_out_of_order_window_accepts_recent_and_counts_old, setup, teardown),
	        cmocka_unit_test_setup_teardown(db_snapshot_is_the_committed_state_at_that_instant,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(db_append_by_ref_and_a_ref_gone_from_the_head, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(db_append_n_new_and_known_series_in_one_batch,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(db_without_window_rejects_any_older_sample, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(db_keeps_stale_markers_bit_for_bit, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(db_rejects_invalid_label_sets, setup, teardown),
	        cmocka_unit_test_setup_teardown(db_lists_label_names_and_values_in_range, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(db_second_open_of_same_dir_is_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(db_periodic_fsync_keeps_data_across_close, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(db_concurrent_writers_readers_and_maintenance,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
