/* base_files.c: unit tests for the file helpers (read with a limit, atomic write, mkdir -p)
 * and for hashing, hex and constant-time comparison. Works in a fresh temp directory. */
#include <dirent.h>
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

#include "base/base.h"

static char tmpdir[64];

static int make_tmpdir(void **state) {
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ward-base-files-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t cap, const char *name) {
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void atomic_write_then_read_round_trips(void **state) {
	char p[256], *data = NULL;
	size_t len = 0;
	struct ward_err err;
	struct stat st;

	path_in(p, sizeof(p), "state.json");
	ward_err_clear(&err);
	assert_int_equal(ward_write_file_atomic(p, "{\"a\":1}", 7, 0600, &err), 0);
	assert_int_equal(ward_write_file_atomic(p, "{\"b\":22}", 8, 0600, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ward_read_file(p, 1024, &data, &len, &err), 0);
	assert_int_equal(len, 8);
	assert_string_equal(data, "{\"b\":22}");
	free(data);
}

static void atomic_write_leaves_no_temp_files(void **state) {
	char p[256];
	DIR *d;
	struct dirent *e;
	int n = 0;

	path_in(p, sizeof(p), "only");
	assert_int_equal(ward_write_file_atomic(p, "x", 1, 0644, NULL), 0);
	d = opendir(tmpdir);
	assert_non_null(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp-"))
			n++;
	closedir(d);
	assert_int_equal(n, 0);
}

static void atomic_write_into_missing_dir_fails_with_path(void **state) {
	char p[256];
	struct ward_err err;

	path_in(p, sizeof(p), "no/such/dir/file");
	ward_err_clear(&err);
	assert_int_equal(ward_write_file_atomic(p, "x", 1, 0600, &err), -1);
	assert_non_null(strstr(err.msg, "no/such/dir"));
	assert_non_null(strstr(err.msg, "No such file"));
}

static void read_rejects_files_over_the_limit(void **state) {
	char p[256], *data = (char *)1;
	char big[10000];
	size_t len;
	struct ward_err err;

	memset(big, 'a', sizeof(big));
	path_in(p, sizeof(p), "big");
	assert_int_equal(ward_write_file_atomic(p, big, sizeof(big), 0600, NULL), 0);
	ward_err_clear(&err);
	assert_int_equal(ward_read_file(p, 9999, &data, &len, &err), -1);
	assert_null(data);
	assert_non_null(strstr(err.msg, "larger than"));
	assert_int_equal(ward_read_file(p, 10000, &data, &len, &err), 0);
	assert_int_equal(len, 10000);
	free(data);
}

static void read_missing_file_names_path_and_errno(void **state) {
	char *data;
	size_t len;
	struct ward_err err;

	ward_err_clear(&err);
	assert_int_equal(ward_read_file("/nonexistent/ward.yml", 100, &data, &len, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/ward.yml"));
	assert_non_null(strstr(err.msg, "No such file"));
}

static void mkdir_p_creates_nested_dirs_and_is_idempotent(void **state) {
	char p[256], f[300];
	struct stat st;
	struct ward_err err;

	path_in(p, sizeof(p), "a/b/c/");
	assert_int_equal(ward_mkdir_p(p, 0700, &err), 0);
	assert_int_equal(ward_mkdir_p(p, 0700, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(ward_fsync_dir(p), 0);
	snprintf(f, sizeof(f), "%sfile", p);
	assert_int_equal(ward_write_file_atomic(f, "x", 1, 0600, NULL), 0);
	snprintf(f, sizeof(f), "%sfile/sub", p);
	ward_err_clear(&err);
	assert_int_equal(ward_mkdir_p(f, 0700, &err), -1);
	assert_true(ward_err_isset(&err));
}

static void sha256_matches_known_vector(void **state) {
	uint8_t h[WARD_SHA256_LEN];
	char hex[2 * WARD_SHA256_LEN + 1];

	assert_int_equal(ward_crypto_init(), 0);
	ward_sha256("abc", 3, h);
	ward_hex(h, sizeof(h), hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void hex_round_trips_and_rejects_bad_input(void **state) {
	uint8_t in[4] = {0x00, 0xab, 0xCD, 0xff}, out[4];
	char hex[9];

	ward_hex(in, 4, hex);
	assert_string_equal(hex, "00abcdff");
	assert_int_equal(ward_unhex("00ABcdff", 8, out, 4), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(ward_unhex("00abcdf", 7, out, 4), -1);
	assert_int_equal(ward_unhex("00abcdfg", 8, out, 4), -1);
	assert_int_equal(ward_unhex("00abcdff00", 10, out, 4), -1);
}

static void random_and_ct_equal(void **state) {
	uint8_t a[32], b[32];

	assert_int_equal(ward_crypto_init(), 0);
	ward_random_bytes(a, sizeof(a));
	ward_random_bytes(b, sizeof(b));
	assert_false(ward_ct_equal(a, b, sizeof(a)));
	memcpy(b, a, sizeof(a));
	assert_true(ward_ct_equal(a, b, sizeof(a)));
	b[31] ^= 1;
	assert_false(ward_ct_equal(a, b, sizeof(a)));
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(atomic_write_then_read_round_trips),
	        cmocka_unit_test(atomic_write_leaves_no_temp_files),
	        cmocka_unit_test(atomic_write_into_missing_dir_fails_with_path),
	        cmocka_unit_test(read_rejects_files_over_the_limit),
	        cmocka_unit_test(read_missing_file_names_path_and_errno),
	        cmocka_unit_test(mkdir_p_creates_nested_dirs_and_is_idempotent),
	        cmocka_unit_test(sha256_matches_known_vector),
	        cmocka_unit_test(hex_round_trips_and_rejects_bad_input),
	        cmocka_unit_test(random_and_ct_equal),
	};
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
