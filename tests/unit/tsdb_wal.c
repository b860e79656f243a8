/* tsdb_wal.c: durability tests. A child process commits batches and reports each
 * acknowledged batch through a pipe; it is SIGKILLed at a random moment, the store is
 * reopened and every acknowledged sample must be there (repeated many times, with head
 * cuts and checkpoints in the mix). A WAL truncated at random offsets replays the whole
 * batches before the tear and quarantines the rest. A write failure (file size limit, as a
 * full disk) fails the commit with the path, applies nothing, and later commits work. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb/tsdb.h"
#include "tsdb/tsdb_internal.h"

static char dir[64];

static int setup(void **state) {
	snprintf(dir, sizeof(dir), "/tmp/tsdb_wal_XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state) {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct tsdb *open_db(void) {
	struct tsdb_opts o;
	struct ward_err err;
	tsdb_opts_default(&o);
	o.dir = dir;
	o.downsample = false;
	o.retention_ms = 0;
	struct tsdb *db = tsdb_open(&o, &err);
	if (!db)
		fail_msg("%s", err.msg);
	return db;
}

#define SERIES    4
#define PER_BATCH 5 /* samples per series per batch */

static void series_labels(struct labels *ls, int i) {
	char v[16];
	snprintf(v, sizeof(v), "s%d", i);
	labels_init(ls);
	labels_set(ls, "__name__", "crash");
	labels_set(ls, "id", v);
}

/* Batch b of iteration it covers timestamps base + b*PER_BATCH .. +PER_BATCH-1. */
static int64_t iter_base(int it) {
	return 1700000000000LL + (int64_t)it * 100000000LL;
}

static void child_main(int it, int wfd) {
	struct tsdb *db = open_db();
	struct labels ls[SERIES];
	struct ward_err err;
	for (int i = 0; i < SERIES; i++)
		series_labels(&ls[i], i);
	for (uint32_t b = 0;; b++) {
		struct tsdb_appender *a = tsdb_appender_new(db);
		for (int i = 0; i < SERIES; i++)
			for (int k = 0; k < PER_BATCH; k++)
				tsdb_append(a, &ls[i], iter_base(it) + b * PER_BATCH + k,
				            b * 1000.0 + k, &err);
		if (tsdb_commit(a, NULL, &err) < 0)
			_exit(3);
		uint32_t done = b + 1;
		if (write(wfd, &done, sizeof(done)) != sizeof(done))
			_exit(4);
		if (b % 40 == 39 && tsdb_maintain(db, b % 80 == 79, &err) < 0)
			_exit(5);
	}
}

static void wal_keeps_every_acknowledged_sample_across_kill_9(void **state) {
	srand((unsigned)time(NULL));
	for (int it = 0; it < 24; it++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child_main(it, p[1]);
			_exit(0);
		}
		close(p[1]);
		struct timespec ts = {0, (long)(20 + rand() % 150) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		assert_true(WIFSIGNALED(status));
		uint32_t acked = 0, v;
		while (read(p[0], &v, sizeof(v)) == sizeof(v))
			acked = v;
		close(p[0]);
		if (getenv("TSDB_TEST_VERBOSE"))
			fprintf(stderr, "iteration %d: %u batches acknowledged\n", it, acked);

		struct tsdb *db = open_db();
		struct matcher m;
		struct ward_err err;
		struct tsdb_series *s;
		size_t n;
		matcher_init(&m, MATCH_EQ, "__name__", "crash", &err);
		int64_t lo = iter_base(it), hi = lo + 100000000LL - 1;
		assert_int_equal(tsdb_select(db, lo, hi, &m, 1, 0, 0, &s, &n, &err), 0);
		matcher_free(&m);
		if (acked > 0)
			assert_int_equal(n, SERIES);
		for (size_t i = 0; i < n; i++) {
			/* every acknowledged sample, in order; maybe more (written, not acked) */
			assert_true(s[i].n >= (size_t)acked * PER_BATCH);
			for (size_t k = 0; k < (size_t)acked * PER_BATCH; k++) {
				assert_true(s[i].t[k] == lo + (int64_t)k);
				assert_true(s[i].v[k] == (double)(k / PER_BATCH) * 1000.0 +
				                                 (double)(k % PER_BATCH));
			}
		}
		tsdb_series_free(s, n);
		free(s);
		tsdb_close(db);
	}
}

static void write_all(const char *path, const uint8_t *d, size_t n) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, n), (ssize_t)n);
	close(fd);
}

static void wal_torn_tail_is_truncated_and_quarantined(void **state) {
	struct tsdb *db = open_db();
	struct labels ls;
	struct ward_err err;
	series_labels(&ls, 0);
	for (int b = 0; b < 30; b++) {
		struct tsdb_appender *a = tsdb_appender_new(db);
		for (int k = 0; k < 10; k++)
			tsdb_append(a, &ls, b * 10 + k, b, &err);
		assert_int_equal(tsdb_commit(a, NULL, &err), 0);
	}
	tsdb_close(db);
	char seg[128], cmd[256];
	snprintf(seg, sizeof(seg), "%s/wal/00000001", dir);
	char *orig;
	size_t len;
	assert_int_equal(ward_read_file(seg, 1 << 20, &orig, &len, &err), 0);
	srand(11);
	for (int round = 0; round < 25; round++) {
		size_t off = round == 0 ? len : (size_t)rand() % len;
		snprintf(cmd, sizeof(cmd), "rm -rf %s/wal %s/quarantine && mkdir %s/wal", dir, dir,
		         dir);
		assert_int_equal(system(cmd), 0);
		write_all(seg, (const uint8_t *)orig, off);
		db = open_db();
		struct tsdb_stats st;
		tsdb_stats(db, &st);
		struct matcher m;
		struct tsdb_series *s;
		size_t n;
		matcher_init(&m, MATCH_EQ, "__name__", "crash", &err);
		assert_int_equal(tsdb_select(db, 0, 1000, &m, 1, 0, 0, &s, &n, &err), 0);
		size_t got = n ? s[0].n : 0;
		assert_int_equal(got % 10, 0); /* whole batches only */
		for (size_t k = 0; k < got; k++)
			assert_true(s[0].t[k] == (int64_t)k);
		if (off == len)
			assert_int_equal(got, 300);
		tsdb_series_free(s, n);
		free(s);
		tsdb_close(db);
		/* The repair is durable: a second open finds nothing new to quarantine. */
		db = open_db();
		struct tsdb_stats st2;
		tsdb_stats(db, &st2);
		assert_int_equal(st2.quarantined, 0);
		assert_true(st2.head_samples == got);
		assert_true(off == len ? st.quarantined == 0 : st.quarantined <= 1);
		matcher_free(&m);
		tsdb_close(db);
	}
	free(orig);
	labels_free(&ls);
}

static void wal_damaged_earlier_segment_is_quarantined_rest_served(void **state) {
	struct tsdb *db = open_db();
	struct labels a, b;
	struct ward_err err;
	series_labels(&a, 0);
	series_labels(&b, 1);
	struct tsdb_appender *ap = tsdb_appender_new(db);
	tsdb_append(ap, &a, 1000, 1, &err);
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	tsdb_close(db);
	db = open_db(); /* second segment */
	ap = tsdb_appender_new(db);
	tsdb_append(ap, &b, 2000, 2, &err);
	assert_int_equal(tsdb_commit(ap, NULL, &err), 0);
	tsdb_close(db);
	char seg[128];
	snprintf(seg, sizeof(seg), "%s/wal/00000001", dir);
	int fd = open(seg, O_RDWR);
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, 12), 1);
	byte ^= 0x40;
	assert_int_equal(pwrite(fd, &byte, 1, 12), 1);
	close(fd);
	db = open_db();
	struct tsdb_stats st;
	tsdb_stats(db, &st);
	assert_int_equal(st.quarantined, 1);
	assert_int_equal(st.series, 1);
	assert_int_equal(st.head_samples, 1);
	char q[128];
	snprintf(q, sizeof(q), "%s/quarantine/wal-00000001", dir);
	struct stat sb;
	assert_int_equal(stat(q, &sb), 0);
	tsdb_close(db);
	db = open_db();
	tsdb_stats(db, &st);
	assert_int_equal(st.quarantined, 0);
	assert_int_equal(st.head_samples, 1);
	tsdb_close(db);
	labels_free(&a);
	labels_free(&b);
}

static void wal_write_failure_fails_commit_and_applies_nothing(void **state) {
	struct tsdb *db = open_db();
	struct labels ls;
	struct ward_err err;
	series_labels(&ls, 0);
	struct tsdb_appender *a = tsdb_appender_new(db);
	tsdb_append(a, &ls, 1, 1, &err);
	assert_int_equal(tsdb_commit(a, NULL, &err), 0);
	struct tsdb_stats st;
	tsdb_stats(db, &st);

	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)st.wal_bytes + 20; /* room for part of the next record */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	a = tsdb_appender_new(db);
	for (int k = 2; k < 100; k++)
		tsdb_append(a, &ls, k, k, &err);
	int rc = tsdb_commit(a, NULL, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err.msg, "/wal/"));
	struct tsdb_stats st2;
	tsdb_stats(db, &st2);
	assert_int_equal(st2.head_samples, 1);
	assert_int_equal(st2.appended_total, st.appended_total);
	/* space is back */
	a = tsdb_appender_new(db);
	tsdb_append(a, &ls, 2, 2, &err);
	assert_int_equal(tsdb_commit(a, NULL, &err), 0);
	tsdb_close(db);
	db = open_db();
	tsdb_stats(db, &st2);
	assert_int_equal(st2.quarantined, 0);
	assert_int_equal(st2.head_samples, 2);
	tsdb_close(db);
	labels_free(&ls);
}

int main(void) {
	log_setup(LOG_ERROR, LOG_FORMAT_AUTO, 2);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(wal_keeps_every_acknowledged_sample_across_kill_9,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(wal_torn_tail_is_truncated_and_quarantined, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                wal_damaged_earlier_segment_is_quarantined_rest_served, setup, teardown),
	        cmocka_unit_test_setup_teardown(wal_write_failure_fails_commit_and_applies_nothing,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
