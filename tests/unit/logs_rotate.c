/* logs_rotate.c: unit tests for rotation (logrotate's model): a size trigger renames and
 * recreates (create) or copies and truncates (copytruncate), shifts older files, keeps N,
 * compresses with zstd, runs postrotate once; a dry run changes nothing; the time trigger
 * starts counting at first sight. Works in a fresh temp directory per test. */
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
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ward-logs-rotate-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void p(char *out, const char *name) {
	snprintf(out, 256, "%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text) {
	char path[256];
	p(path, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static off_t size_of(const char *name) {
	char path[256];
	struct stat st;
	p(path, name);
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int run(struct logs_rotate_rule *r, bool dry, bool force, int64_t now, struct buf *rep) {
	char state[256];
	struct ward_err err;
	p(state, "rotate.state");
	ward_err_clear(&err);
	buf_reset(rep);
	int rc = logs_rotate_run(r, 1, state, dry, force, now, rep, &err);
	if (rc != 0)
		print_error("%s\n", err.msg);
	return rc;
}

static void size_trigger_creates_anew_shifts_keeps_and_compresses(void **state) {
	char glob[256], post[512];
	struct buf rep = BUF_INIT;
	p(glob, "*.log");
	snprintf(post, sizeof(post), "echo x >> '%s/post.txt'", tmpdir);
	struct logs_rotate_rule r = {
	        .path = glob, .size = 10, .keep = 2, .compress = 1, .mode = 0, .postrotate = post};
	write_file("app.log", "small\n");
	assert_int_equal(run(&r, false, false, 1000, &rep), 0);
	assert_int_equal(rep.len, 0); /* 6 bytes: not due */
	write_file("app.log", "line one is long enough\n");
	assert_int_equal(run(&r, true, false, 2000, &rep), 0); /* dry run */
	assert_non_null(strstr(buf_cstr(&rep), "would rename"));
	assert_int_equal(size_of("app.log.1.zst"), -1);
	assert_int_equal(run(&r, false, false, 3000, &rep), 0);
	assert_int_equal(size_of("app.log"), 0);
	assert_true(size_of("app.log.1.zst") > 0);
	assert_int_equal(size_of("app.log.1"), -1);
	assert_int_equal(size_of("post.txt"), 2);
	for (int i = 0; i < 3; i++) {
		write_file("app.log", "another long enough line\n");
		assert_int_equal(run(&r, false, false, 4000 + i, &rep), 0);
	}
	assert_true(size_of("app.log.1.zst") > 0);
	assert_true(size_of("app.log.2.zst") > 0);
	assert_int_equal(size_of("app.log.3.zst"), -1); /* keep 2 */
	assert_int_equal(size_of("post.txt"), 8);
	buf_free(&rep);
}

static void copytruncate_keeps_the_inode_and_copies_the_content(void **state) {
	char glob[256], path[256];
	struct buf rep = BUF_INIT;
	struct stat a, b;
	p(glob, "c.log");
	p(path, "c.log");
	struct logs_rotate_rule r = {.path = glob, .keep = 3, .compress = 0, .mode = 1};
	write_file("c.log", "content\n");
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(run(&r, false, true, 1000, &rep), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_int_equal(b.st_size, 0);
	assert_int_equal(size_of("c.log.1"), 8);
	buf_free(&rep);
}

static void time_trigger_counts_from_first_sight(void **state) {
	char glob[256];
	struct buf rep = BUF_INIT;
	p(glob, "t.log");
	struct logs_rotate_rule r = {.path = glob, .every_ms = 60000, .keep = 1, .mode = 0};
	write_file("t.log", "x\n");
	assert_int_equal(run(&r, false, false, 1000000, &rep), 0);
	assert_int_equal(size_of("t.log.1"), -1);
	assert_int_equal(run(&r, false, false, 1000000 + 59000, &rep), 0);
	assert_int_equal(size_of("t.log.1"), -1);
	assert_int_equal(run(&r, false, false, 1000000 + 60000, &rep), 0);
	assert_int_equal(size_of("t.log.1"), 2);
	buf_free(&rep);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                size_trigger_creates_anew_shifts_keeps_and_compresses, setup, teardown),
	        cmocka_unit_test_setup_teardown(copytruncate_keeps_the_inode_and_copies_the_content,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(time_trigger_counts_from_first_sight, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
