/* logs_store.c: unit tests for the log store: lines come back after close and reopen,
 * the WAL replays unflushed lines exactly once, a torn segment or WAL tail is trimmed and
 * never read back, size retention drops the oldest segments, long lines are truncated and
 * invalid UTF-8 is escaped. Works in a fresh temp directory per test. */
#include <fcntl.h>
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

#include "logs/logs.h"

static char tmpdir[64];

static int setup(void **state) {
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ward-logs-store-XXXXXX");
	log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT, 2);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct logs_store *open_store(int64_t retention_bytes, int64_t segment_bytes) {
	struct logs_store_opts o;
	struct ward_err err;
	logs_store_opts_default(&o);
	o.dir = tmpdir;
	o.retention_bytes = retention_bytes;
	if (segment_bytes)
		o.segment_bytes = segment_bytes;
	o.wal_fsync = false;
	ward_err_clear(&err);
	struct logs_store *s = logs_store_open(&o, &err);
	if (!s)
		fail_msg("open: %s", err.msg);
	return s;
}

static void append_n(struct logs_store *s, const char *job, int from, int n, int64_t t0) {
	struct labels ls;
	struct ward_err err;
	labels_init(&ls);
	labels_set(&ls, "job", job);
	for (int i = from; i < from + n; i++) {
		char line[64];
		snprintf(line, sizeof(line), "line %d %s", i, i % 10 == 0 ? "error" : "ok");
		struct logs_entry e = {
		        .ts_ns = t0 + (int64_t)i * 1000000, .line = line, .len = strlen(line)};
		ward_err_clear(&err);
		assert_int_equal(logs_store_append(s, &ls, &e, 1, false, &err), 0);
	}
	labels_free(&ls);
}

/* Runs a query over everything and returns the JSON data (caller frees). */
static char *query(struct logs_store *s, const char *q, size_t limit) {
	struct ward_err err;
	struct buf out = BUF_INIT;
	ward_err_clear(&err);
	struct logs_query *lq = logs_query_parse(q, strlen(q), &err);
	if (!lq)
		fail_msg("parse %s: %s", q, err.msg);
	struct logs_query_opts o = {
	        .start_ns = 0, .end_ns = INT64_MAX / 2, .limit = limit, .direction = LOGS_FORWARD};
	assert_int_equal(logs_query_exec(s, lq, &o, &out, &err), 0);
	logs_query_free(lq);
	return buf_detach(&out);
}

static int count_of(const char *json, const char *needle) {
	int n = 0;
	for (const char *p = json; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static const int64_t T0 = 1700000000000000000LL;

static void lines_survive_flush_close_and_reopen(void **state) {
	struct logs_store *s = open_store(0, 0);
	append_n(s, "a", 0, 500, T0);
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(logs_store_flush(s, &err), 0);
	append_n(s, "a", 500, 500, T0);
	logs_store_close(s);
	s = open_store(0, 0);
	char *j = query(s, "{job=\"a\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 1000);
	assert_non_null(strstr(j, "\"line 0 error\""));
	assert_non_null(strstr(j, "\"line 999 ok\""));
	free(j);
	j = query(s, "{job=\"a\"} |= \"error\"", 5000);
	assert_int_equal(count_of(j, "\"line "), 100);
	free(j);
	struct logs_store_stats st;
	logs_store_stats(s, &st);
	assert_int_equal(st.streams, 1);
	logs_store_close(s);
}

static void wal_replays_unflushed_lines_exactly_once(void **state) {
	struct logs_store *s = open_store(0, 0);
	append_n(s, "w", 0, 50, T0);
	/* Simulate a crash: copy the directory's files as they are now, before close. */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s.crash'", tmpdir, tmpdir);
	assert_int_equal(system(cmd), 0);
	logs_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mv '%s.crash' '%s'", tmpdir, tmpdir, tmpdir);
	assert_int_equal(system(cmd), 0);
	s = open_store(0, 0);
	char *j = query(s, "{job=\"w\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 50);
	free(j);
	logs_store_close(s); /* flushes and commits the replayed lines */
	s = open_store(0, 0);
	j = query(s, "{job=\"w\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 50); /* not twice */
	free(j);
	logs_store_close(s);
}

static void torn_segment_tail_is_trimmed_and_never_read(void **state) {
	struct logs_store *s = open_store(0, 0);
	append_n(s, "t", 0, 100, T0);
	logs_store_close(s);
	char seg[256];
	snprintf(seg, sizeof(seg), "%s/00000001.seg", tmpdir);
	struct stat st0;
	assert_int_equal(stat(seg, &st0), 0);
	/* A second flush whose write was torn: garbage after the last commit. */
	int fd = open(seg, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	char junk[100];
	memset(junk, 'x', sizeof(junk));
	memcpy(junk, "WLGB", 4);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	s = open_store(0, 0);
	struct stat st1;
	assert_int_equal(stat(seg, &st1), 0);
	assert_int_equal(st1.st_size, st0.st_size);
	char *j = query(s, "{job=\"t\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 100);
	free(j);
	logs_store_close(s);
}

static void corrupt_block_payload_in_last_segment_is_dropped_at_open(void **state) {
	struct logs_store *s = open_store(0, 0);
	append_n(s, "c", 0, 100, T0);
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(logs_store_flush(s, &err), 0);
	append_n(s, "c", 100, 100, T0);
	logs_store_close(s);
	char seg[256];
	snprintf(seg, sizeof(seg), "%s/00000001.seg", tmpdir);
	struct stat st;
	assert_int_equal(stat(seg, &st), 0);
	/* Flip a byte inside the second block's payload (near the end, before its commit). */
	int fd = open(seg, O_RDWR);
	char c;
	off_t at = st.st_size - 48 - 5;
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x55;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
	s = open_store(0, 0);
	char *j = query(s, "{job=\"c\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 100); /* the first flush only */
	assert_null(strstr(j, "\"line 150 ok\""));
	free(j);
	logs_store_close(s);
}

static void torn_wal_tail_keeps_whole_records(void **state) {
	struct logs_store *s = open_store(0, 0);
	append_n(s, "x", 0, 10, T0);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s.crash'", tmpdir, tmpdir);
	assert_int_equal(system(cmd), 0);
	logs_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mv '%s.crash' '%s'", tmpdir, tmpdir, tmpdir);
	assert_int_equal(system(cmd), 0);
	char wal[256];
	snprintf(wal, sizeof(wal), "%s/wal", tmpdir);
	struct stat st;
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(truncate(wal, st.st_size - 3), 0); /* tear the last record */
	s = open_store(0, 0);
	char *j = query(s, "{job=\"x\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 9);
	free(j);
	logs_store_close(s);
}

static void size_retention_drops_oldest_segments(void **state) {
	struct logs_store *s = open_store(4000, 1024);
	struct ward_err err;
	for (int k = 0; k < 20; k++) {
		append_n(s, "r", k * 100, 100, T0);
		ward_err_clear(&err);
		assert_int_equal(logs_store_flush(s, &err), 0);
	}
	struct logs_store_stats st;
	logs_store_stats(s, &st);
	uint64_t before = st.segments;
	assert_true(before > 3);
	assert_int_equal(logs_store_maintain(s, ward_now_ms(), &err), 0);
	logs_store_stats(s, &st);
	assert_true(st.segments < before);
	assert_true(st.stored_bytes <= 4000 + 2048);
	char *j = query(s, "{job=\"r\"}", 5000);
	assert_non_null(strstr(j, "\"line 1999 ok\"")); /* the newest survive */
	assert_null(strstr(j, "\"line 0 error\""));     /* the oldest are gone */
	free(j);
	logs_store_close(s);
}

static void long_lines_are_truncated_and_bad_utf8_escaped(void **state) {
	struct logs_store *s = open_store(0, 0);
	struct labels ls;
	struct ward_err err;
	labels_init(&ls);
	labels_set(&ls, "job", "big");
	size_t n = 10u << 20;
	char *big = malloc(n);
	memset(big, 'a', n);
	struct logs_entry e[2] = {{T0, big, n}, {T0 + 1, "bad \xff\xfe byte", 11}};
	ward_err_clear(&err);
	assert_int_equal(logs_store_append(s, &ls, e, 2, true, &err), 0);
	free(big);
	labels_free(&ls);
	struct logs_store_stats st;
	logs_store_stats(s, &st);
	assert_int_equal(st.lines_truncated, 1);
	char *j = query(s, "{job=\"big\"}", 10);
	assert_non_null(strstr(j, LOGS_TRUNC_MARKER));
	assert_non_null(strstr(j, "bad \\\\xFF\\\\xFE byte"));
	free(j);
	logs_store_close(s);
}

static void a_big_buffer_is_cut_into_blocks_of_block_size(void **state) {
	struct logs_store_opts o;
	struct ward_err err;
	logs_store_opts_default(&o);
	o.dir = tmpdir;
	o.block_bytes = 4096;
	o.wal_fsync = false;
	ward_err_clear(&err);
	struct logs_store *s = logs_store_open(&o, &err);
	assert_non_null(s);
	append_n(s, "big", 0, 2000, T0);
	assert_int_equal(logs_store_flush(s, &err), 0);
	struct logs_store_stats st;
	logs_store_stats(s, &st);
	assert_true(st.blocks >= 5); /* ~30 KB of lines in 4 KiB blocks */
	logs_store_close(s);
	s = open_store(0, 0);
	char *j = query(s, "{job=\"big\"}", 5000);
	assert_int_equal(count_of(j, "\"line "), 2000);
	free(j);
	j = query(s, "{job=\"big\"} |= \"line 1234 \"", 10);
	assert_int_equal(count_of(j, "\"line "), 1);
	free(j);
	logs_store_close(s);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(lines_survive_flush_close_and_reopen, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(wal_replays_unflushed_lines_exactly_once, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(torn_segment_tail_is_trimmed_and_never_read, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                corrupt_block_payload_in_last_segment_is_dropped_at_open, setup, teardown),
	        cmocka_unit_test_setup_teardown(torn_wal_tail_keeps_whole_records, setup, teardown),
	        cmocka_unit_test_setup_teardown(size_retention_drops_oldest_segments, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(a_big_buffer_is_cut_into_blocks_of_block_size,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(long_lines_are_truncated_and_bad_utf8_escaped,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
