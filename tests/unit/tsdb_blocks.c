/* tsdb_blocks.c: tests of the block lifecycle: compaction keeps every sample, a flipped
 * byte in a block's chunks or index file is detected at open and the block quarantined
 * while the rest is served, retention by age and by size, downsampled aggregates (min,
 * max, sum, count, last, stale markers skipped) and long-range selects reading them. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb/tsdb.h"
#include "tsdb/tsdb_internal.h"

#define HOUR (3600 * 1000LL)

static char dir[64];

static int setup(void **state) {
	snprintf(dir, sizeof(dir), "/tmp/tsdb_blk_XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state) {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct tsdb *open_with(int64_t block_ms, int64_t ret_ms, int64_t ret_bytes, bool ds) {
	struct tsdb_opts o;
	struct ward_err err;
	tsdb_opts_default(&o);
	o.dir = dir;
	o.block_duration_ms = block_ms;
	o.retention_ms = ret_ms;
	o.retention_bytes = ret_bytes;
	o.downsample = ds;
	o.downsample_5m_after_ms = 0; /* at once: the tests below want every block downsampled */
	o.downsample_1h_after_ms = 0;
	struct tsdb *db = tsdb_open(&o, &err);
	if (!db)
		fail_msg("%s", err.msg);
	return db;
}

static void named(struct labels *ls, const char *name, const char *inst) {
	labels_init(ls);
	labels_set(ls, "__name__", name);
	labels_set(ls, "instance", inst);
}

/* Commits samples of the given series at [from, to) every step_ms with value = t/1000. */
static void fill(struct tsdb *db, const struct labels *ls, size_t nls, int64_t from, int64_t to,
                 int64_t step) {
	struct ward_err err;
	struct tsdb_appender *a = tsdb_appender_new(db);
	size_t staged = 0;
	for (int64_t t = from; t < to; t += step) {
		for (size_t i = 0; i < nls; i++)
			assert_int_equal(tsdb_append(a, &ls[i], t, (double)t / 1000.0, &err), 0);
		if (++staged % 500 == 0) {
			assert_int_equal(tsdb_commit(a, NULL, &err), 0);
			a = tsdb_appender_new(db);
		}
	}
	assert_int_equal(tsdb_commit(a, NULL, &err), 0);
}

static size_t sel(struct tsdb *db, const char *name, int64_t mint, int64_t maxt, int64_t step,
                  struct tsdb_series **out) {
	struct matcher m;
	struct ward_err err;
	size_t n;
	assert_int_equal(matcher_init(&m, MATCH_EQ, "__name__", name, &err), 0);
	if (tsdb_select(db, mint, maxt, &m, 1, step, 0, out, &n, &err) < 0)
		fail_msg("%s", err.msg);
	matcher_free(&m);
	return n;
}

static void free_sel(struct tsdb_series *s, size_t n) {
	tsdb_series_free(s, n);
	free(s);
}

static void blocks_compaction_preserves_every_sample(void **state) {
	struct tsdb *db = open_with(2 * HOUR, 0, 0, false);
	struct labels ls[3];
	struct ward_err err;
	named(&ls[0], "c", "a");
	named(&ls[1], "c", "b");
	named(&ls[2], "c", "c");
	const int64_t step = 30000, end = 40 * HOUR;
	for (int64_t h = 0; h < end; h += HOUR) {
		fill(db, ls, 3, h, h + HOUR, step);
		assert_int_equal(tsdb_maintain(db, false, &err), 0);
	}
	struct tsdb_stats st;
	tsdb_stats(db, &st);
	/* 40h of 2h blocks were merged into 18h ones (plus what the head still holds) */
	assert_true(st.blocks <= 5);
	assert_true(st.block_samples > 0);
	assert_int_equal(st.block_samples + st.head_samples, 3 * (end / step));
	tsdb_close(db);
	db = open_with(2 * HOUR, 0, 0, false);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	struct tsdb_series *s;
	size_t n = sel(db, "c", 0, end, 0, &s);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s[i].n, end / step);
		for (size_t k = 0; k < s[i].n; k++) {
			assert_true(s[i].t[k] == (int64_t)k * step);
			assert_true(s[i].v[k] == (double)((int64_t)k * step) / 1000.0);
		}
	}
	free_sel(s, n);
	for (int i = 0; i < 3; i++)
		labels_free(&ls[i]);
	tsdb_close(db);
}

/* Path of the block whose meta.json mentions minTime <= t <= maxTime; resolution 0. */
static void find_block(int64_t t, char *out, size_t outlen) {
	char bdir[128];
	snprintf(bdir, sizeof(bdir), "%s/blocks", dir);
	DIR *d = opendir(bdir);
	struct dirent *de;
	out[0] = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", bdir, de->d_name);
		struct ward_err err;
		struct tsdb_block *b = block_open(p, &err);
		if (b && b->mint <= t && b->maxt >= t && b->resolution_ms == 0)
			snprintf(out, outlen, "%s", p);
		block_free(b);
	}
	closedir(d);
	assert_true(out[0]);
}

static void flip_byte(const char *path, off_t off) {
	int fd = open(path, O_RDWR);
	uint8_t c;
	assert_true(fd >= 0);
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void blocks_damaged_files_are_quarantined_and_rest_served(void **state) {
	for (int which = 0; which < 2; which++) {
		struct tsdb *db = open_with(2 * HOUR, 0, 0, false);
		struct labels a, b, c;
		struct ward_err err;
		named(&a, "a", "x");
		named(&b, "b", "x");
		named(&c, "c", "x");
		fill(db, &a, 1, 1 * HOUR, 2 * HOUR, 15000);
		fill(db, &b, 1, 100 * HOUR, 101 * HOUR, 15000);
		assert_int_equal(tsdb_maintain(db, true, &err), 0);
		fill(db, &c, 1, 102 * HOUR, 103 * HOUR, 15000); /* stays in the head */
		tsdb_close(db);
		char blk[512], file[600];
		find_block(1 * HOUR, blk, sizeof(blk));
		snprintf(file, sizeof(file), "%s/%s", blk, which == 0 ? "chunks" : "index");
		flip_byte(file, which == 0 ? 12 : -60); /* the first chunk's count; the footer */
		db = open_with(2 * HOUR, 0, 0, false);
		struct tsdb_stats st;
		tsdb_stats(db, &st);
		assert_int_equal(st.quarantined, 1);
		assert_int_equal(st.blocks, 1);
		struct tsdb_series *s;
		size_t n = sel(db, "a", 0, 200 * HOUR, 0, &s);
		assert_int_equal(n, 0);
		free_sel(s, n);
		n = sel(db, "b", 0, 200 * HOUR, 0, &s);
		assert_int_equal(n, 1);
		assert_int_equal(s[0].n, 240);
		free_sel(s, n);
		n = sel(db, "c", 0, 200 * HOUR, 0, &s);
		assert_int_equal(n, 1);
		assert_int_equal(s[0].n, 240);
		free_sel(s, n);
		char q[600];
		snprintf(q, sizeof(q), "%s/quarantine/%s", dir, strrchr(blk, '/') + 1);
		struct stat sb;
		assert_int_equal(stat(q, &sb), 0);
		tsdb_close(db);
		labels_free(&a);
		labels_free(&b);
		labels_free(&c);
		teardown(state);
		setup(state);
	}
}

static void blocks_retention_by_age_drops_old_blocks(void **state) {
	struct tsdb *db = open_with(HOUR, 6 * HOUR, 0, false);
	struct labels ls;
	struct ward_err err;
	named(&ls, "r", "x");
	fill(db, &ls, 1, 0, 30 * HOUR, 60000);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	struct tsdb_stats st;
	tsdb_stats(db, &st);
	assert_true(st.min_time >= 30 * HOUR - 6 * HOUR - 9 * HOUR);
	assert_true(st.max_time == 30 * HOUR - 60000);
	struct tsdb_series *s;
	size_t n = sel(db, "r", 0, 30 * HOUR, 0, &s);
	assert_int_equal(n, 1);
	assert_true(s[0].t[0] > 0);
	assert_true(s[0].t[s[0].n - 1] == 30 * HOUR - 60000);
	/* everything newer than the cutoff is still there */
	size_t newer = 0;
	for (size_t k = 0; k < s[0].n; k++)
		newer += s[0].t[k] >= 24 * HOUR;
	assert_int_equal(newer, 6 * 60);
	free_sel(s, n);
	labels_free(&ls);
	tsdb_close(db);
}

static void blocks_retention_by_size_drops_oldest_first(void **state) {
	struct tsdb *db = open_with(HOUR, 0, 0, false);
	struct labels ls;
	struct ward_err err;
	named(&ls, "r", "x");
	for (int64_t d = 0; d < 5; d++) /* five days far apart: five blocks */
		fill(db, &ls, 1, d * 24 * HOUR, d * 24 * HOUR + HOUR, 10000);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	struct tsdb_stats st;
	tsdb_stats(db, &st);
	assert_int_equal(st.blocks, 5);
	int64_t limit = st.block_bytes / 2;
	tsdb_close(db);
	db = open_with(HOUR, 0, limit, false);
	assert_int_equal(tsdb_maintain(db, false, &err), 0);
	struct tsdb_stats st2;
	tsdb_stats(db, &st2);
	assert_true(st2.block_bytes <= limit);
	assert_true(st2.blocks >= 1 && st2.blocks < 5);
	assert_true(st2.max_time == st.max_time);
	assert_true(st2.min_time > st.min_time);
	labels_free(&ls);
	tsdb_close(db);
}

static void blocks_downsample_aggregates_are_right(void **state) {
	/* raw: window [0,300000) has 0..4 at t=0,60000,..; a stale marker; window 2 skipped */
	int64_t t[] = {0, 60000, 120000, 180000, 240000, 250000, 300000, 360000, 900000};
	double v[] = {3, -1, 7, 2, 5, 0, 10, 20, 1};
	v[5] = tsdb_stale_nan();
	const double *in[COL_N] = {v};
	struct tsdb_svec out[COL_N];
	memset(out, 0, sizeof(out));
	downsample_series(t, in, 9, 300000, out);
	assert_int_equal(out[COL_MIN].n, 3);
	assert_true(out[COL_MIN].t[0] == 240000); /* the last real sample of the window */
	assert_true(out[COL_MIN].v[0] == -1);
	assert_true(out[COL_MAX].v[0] == 7);
	assert_true(out[COL_SUM].v[0] == 16);
	assert_true(out[COL_COUNT].v[0] == 5);
	assert_true(out[COL_LAST].v[0] == 5);
	assert_true(out[COL_MIN].t[1] == 360000);
	assert_true(out[COL_SUM].v[1] == 30);
	assert_true(out[COL_COUNT].v[1] == 2);
	assert_true(out[COL_LAST].v[1] == 20);
	assert_true(out[COL_LAST].t[2] == 900000);
	/* and 5m aggregates combine into 1h */
	struct tsdb_svec h[COL_N];
	memset(h, 0, sizeof(h));
	const double *agg[COL_N] = {NULL,           out[COL_MIN].v,   out[COL_MAX].v,
	                            out[COL_SUM].v, out[COL_COUNT].v, out[COL_LAST].v};
	downsample_series(out[COL_MIN].t, agg, out[COL_MIN].n, 3600000, h);
	assert_int_equal(h[COL_MIN].n, 1);
	assert_true(h[COL_MIN].v[0] == -1);
	assert_true(h[COL_MAX].v[0] == 20);
	assert_true(h[COL_SUM].v[0] == 47);
	assert_true(h[COL_COUNT].v[0] == 8);
	assert_true(h[COL_LAST].v[0] == 1);
	assert_true(h[COL_LAST].t[0] == 900000);
	for (int c = 0; c < COL_N; c++) {
		svec_free(&out[c]);
		svec_free(&h[c]);
	}
}

static void blocks_long_range_select_reads_5m_last_values(void **state) {
	struct tsdb *db = open_with(2 * HOUR, 0, 0, true);
	struct labels ls;
	struct ward_err err;
	named(&ls, "d", "x");
	const int64_t step = 60000, end = 48 * HOUR;
	fill(db, &ls, 1, 0, end, step);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	struct tsdb_series *s;
	/* raw with no hint */
	size_t n = sel(db, "d", 0, end, 0, &s);
	assert_int_equal(s[0].n, end / step);
	free_sel(s, n);
	/* a short range with a hint stays raw */
	n = sel(db, "d", 0, HOUR, 300000, &s);
	assert_int_equal(s[0].n, HOUR / step + 1); /* maxt is inclusive */
	free_sel(s, n);
	/* 2 days at a 5m step: one "last" sample per 5m window */
	n = sel(db, "d", 0, end, 300000, &s);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].n, end / 300000);
	for (size_t k = 0; k < s[0].n; k++) {
		int64_t last_t = (int64_t)k * 300000 + 240000;
		assert_true(s[0].t[k] == last_t);
		assert_true(s[0].v[k] == (double)last_t / 1000.0);
	}
	free_sel(s, n);
	labels_free(&ls);
	tsdb_close(db);
}

/* With the default ages (40 h for 5m, 10 d for 1h) only blocks that old get copies. */
static void blocks_downsample_waits_until_blocks_are_old_enough(void **state) {
	struct tsdb_opts o;
	struct ward_err err;
	tsdb_opts_default(&o);
	o.dir = dir;
	o.retention_ms = 0;
	assert_true(o.downsample);
	assert_int_equal(o.downsample_5m_after_ms, 40 * HOUR);
	assert_int_equal(o.downsample_1h_after_ms, 240 * HOUR);
	struct tsdb *db = tsdb_open(&o, &err);
	if (!db)
		fail_msg("%s", err.msg);
	struct labels ls;
	named(&ls, "d", "x");
	const int64_t step = 60000, end = 72 * HOUR; /* compacted into 18 h blocks */
	fill(db, &ls, 1, 0, end, step);
	assert_int_equal(tsdb_maintain(db, true, &err), 0);
	tsdb_close(db);
	char bdir[128];
	snprintf(bdir, sizeof(bdir), "%s/blocks", dir);
	DIR *d = opendir(bdir);
	struct dirent *de;
	int64_t raw_maxt = INT64_MIN, ds_maxt = INT64_MIN, ds_mint = INT64_MAX;
	int n1h = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", bdir, de->d_name);
		struct tsdb_block *b = block_open(p, &err);
		assert_non_null(b);
		if (b->resolution_ms == 0 && b->maxt > raw_maxt)
			raw_maxt = b->maxt;
		if (b->resolution_ms == 300000) {
			ds_maxt = b->maxt > ds_maxt ? b->maxt : ds_maxt;
			ds_mint = b->mint < ds_mint ? b->mint : ds_mint;
		}
		n1h += b->resolution_ms == 3600000;
		block_free(b);
	}
	closedir(d);
	int64_t newest = end - step;
	assert_true(raw_maxt == newest);
	assert_true(ds_mint == 0);                  /* the oldest data has its 5m copy */
	assert_true(ds_maxt <= newest - 40 * HOUR); /* nothing younger than 40 h */
	assert_true(ds_maxt >= newest - 40 * HOUR - 18 * HOUR); /* but all blocks that old */
	assert_int_equal(n1h, 0);
	/* a long-range read is whole: 5m "last" values where copies exist, raw after */
	db = tsdb_open(&o, &err);
	assert_non_null(db);
	struct tsdb_series *s;
	size_t n = sel(db, "d", 0, end, 300000, &s);
	assert_int_equal(n, 1);
	assert_true(s[0].n > (size_t)((end - ds_maxt) / step));
	assert_true(s[0].t[s[0].n - 1] == newest);
	for (size_t k = 1; k < s[0].n; k++)
		assert_true(s[0].t[k] > s[0].t[k - 1]);
	free_sel(s, n);
	labels_free(&ls);
	tsdb_close(db);
}

int main(void) {
	log_setup(LOG_ERROR, LOG_FORMAT_AUTO, 2);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(blocks_compaction_preserves_every_sample, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                blocks_damaged_files_are_quarantined_and_rest_served, setup, teardown),
	        cmocka_unit_test_setup_teardown(blocks_retention_by_age_drops_old_blocks, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(blocks_retention_by_size_drops_oldest_first, setup,
	                                        teardown),
	        cmocka_unit_test(blocks_downsample_aggregates_are_right),
	        cmocka_unit_test_setup_teardown(blocks_downsample_waits_until_blocks_are_old_enough,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(blocks_long_range_select_reads_5m_last_values,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
