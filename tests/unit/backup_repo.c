/* backup_repo.c: unit tests of whole repository operations on a temp directory: init/open
 * with a wrong passphrase (clear error, nothing written), keys, a backup -> restore round trip
 * of a generated tree (files, empty file, big file, symlinks, hard links, fifo, modes and
 * times) compared byte for byte, incremental runs that reuse chunks without reading, stream
 * backups, partial snapshots, locks, forget + prune keeping what snapshots use, and check
 * finding a flipped byte in a pack and naming the files that use it. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "backup/backup_internal.h"

static char tmp[64], repo[96], src[96], dst[96];
static const char pass[] = "correct horse battery staple";

static const struct backup_init_opts small = {.chunk_min = 4096,
                                              .chunk_avg = 16384,
                                              .chunk_max = 65536,
                                              .kdf_ops = 1,
                                              .kdf_mem = 8u << 20};

static void sh(const char *fmt, ...) WARD_PRINTF(1, 2);
static void sh(const char *fmt, ...) {
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void write_random(const char *path, size_t n, uint64_t seed) {
	FILE *f = fopen(path, "wb");
	uint64_t x = seed | 1;
	assert_non_null(f);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		fputc((int)(x & 0xff), f);
	}
	fclose(f);
}

static int setup(void **state) {
	snprintf(tmp, sizeof(tmp), "/tmp/ward-backup-test-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(repo, sizeof(repo), "%s/repo", tmp);
	snprintf(src, sizeof(src), "%s/data", tmp);
	snprintf(dst, sizeof(dst), "%s/restore", tmp);
	return ward_crypto_init();
}

static int teardown(void **state) {
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", tmp, tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh source tree and repository for each test. */
static void fresh(void) {
	char p[256];
	struct ward_err err;
	sh("rm -rf '%s' '%s' '%s' && mkdir -p '%s/sub/deeper' '%s/empty-dir'", repo, src, dst, src,
	   src);
	snprintf(p, sizeof(p), "%s/small.txt", src);
	write_random(p, 1000, 1);
	snprintf(p, sizeof(p), "%s/sub/big.bin", src);
	write_random(p, 3u << 20, 2);
	snprintf(p, sizeof(p), "%s/sub/deeper/mid.bin", src);
	write_random(p, 200000, 3);
	sh("cd '%s' && : > empty && chmod 640 small.txt && ln -s sub/big.bin link-to-big && "
	   "ln -s /nonexistent/target dangling && ln sub/deeper/mid.bin hardlink-to-mid && "
	   "mkfifo pipe && cp sub/big.bin sub/big-copy.bin && touch -d '2020-02-03 04:05:06.789' "
	   "small.txt && chmod 700 sub/deeper",
	   src);
	ward_err_clear(&err);
	assert_int_equal(backup_init(repo, pass, strlen(pass), &small, &err), 0);
}

static struct backup_repo *open_repo(void) {
	struct backup_repo *r = NULL;
	struct ward_err err;
	ward_err_clear(&err);
	if (backup_open(repo, pass, strlen(pass), &r, &err) != 0)
		fail_msg("open: %s", err.msg);
	backup_set_kdf(r, 1, 8u << 20);
	return r;
}

static int count_files(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void init_twice_and_wrong_passphrase_write_nothing(void **state) {
	struct backup_repo *r = NULL;
	struct ward_err err;
	char locks[200], cmd[400];
	fresh();
	ward_err_clear(&err);
	assert_int_equal(backup_init(repo, pass, strlen(pass), &small, &err), BACKUP_ERR_EXISTS);
	snprintf(cmd, sizeof(cmd), "find '%s' -type f | sort | xargs md5sum > '%s/before'", repo,
	         tmp);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(backup_open(repo, "wrong", 5, &r, &err), BACKUP_ERR_PASSPHRASE);
	assert_null(r);
	assert_non_null(strstr(err.msg, "wrong passphrase"));
	snprintf(cmd, sizeof(cmd), "find '%s' -type f | sort | xargs md5sum | cmp -s - '%s/before'",
	         repo, tmp);
	assert_int_equal(system(cmd), 0);
	snprintf(locks, sizeof(locks), "%s/locks", repo);
	assert_int_equal(count_files(locks), 0);
	assert_int_equal(backup_open(src, pass, strlen(pass), &r, &err), BACKUP_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "not a backup repository"));
}

static void keys_add_list_remove_but_never_the_last(void **state) {
	struct backup_repo *r, *r2 = NULL;
	struct backup_key_info *keys = NULL;
	size_t n = 0;
	char id[BACKUP_HEX_LEN];
	struct ward_err err;
	fresh();
	r = open_repo();
	assert_int_equal(backup_key_add(r, "second", 6, id, &err), 0);
	assert_int_equal(backup_key_list(r, &keys, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(keys[0].current != keys[1].current);
	free(keys);
	/* The new passphrase opens the same repository (same keys: same ids). */
	assert_int_equal(backup_open(repo, "second", 6, &r2, &err), 0);
	assert_string_equal(backup_repo_id(r2), backup_repo_id(r));
	assert_memory_equal(r2->id_key.key, r->id_key.key, BACKUP_KEY_LEN);
	/* Not the key in use; then the other one; then never the last. */
	assert_int_equal(backup_key_remove(r, backup_repo_key_id(r), &err), BACKUP_ERR_USAGE);
	assert_int_equal(backup_key_remove(r2, backup_repo_key_id(r), &err), 0);
	assert_int_equal(backup_key_remove(r2, backup_repo_key_id(r2), &err), BACKUP_ERR_USAGE);
	assert_non_null(strstr(err.msg, "last key"));
	backup_close(r);
	r = NULL;
	assert_int_equal(backup_open(repo, pass, strlen(pass), &r, &err), BACKUP_ERR_PASSPHRASE);
	backup_close(r2);
}

/* Compares two trees: types, modes, mtimes, contents, symlink targets, hard links. */
static void compare_trees(const char *a, const char *b) {
	char cmd[2048];
	/* find prints type, mode, mtime (ns), size, target and link count for each entry. */
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && find . -mindepth 1 -printf '%%p %%y %%m %%T@ %%l %%n\\n' | grep -v ' "
	         "d ' "
	         "| sort > '%s/a.lst' && cd '%s' && find . -mindepth 1 -printf '%%p %%y %%m %%T@ "
	         "%%l %%n\\n' | grep -v ' d ' | sort > '%s/b.lst' && diff '%s/a.lst' '%s/b.lst' "
	         "&& diff -r --no-dereference -x pipe '%s' '%s'",
	         a, tmp, b, tmp, tmp, tmp, a, b);
	if (system(cmd) != 0)
		fail_msg("restored tree differs from the source");
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && find . -mindepth 1 -type d -printf '%%p %%m %%T@\\n' | sort > "
	         "'%s/ad.lst' && cd '%s' && find . -mindepth 1 -type d -printf '%%p %%m %%T@\\n' | "
	         "sort > '%s/bd.lst' && diff '%s/ad.lst' '%s/bd.lst'",
	         a, tmp, b, tmp, tmp, tmp);
	if (system(cmd) != 0)
		fail_msg("restored directories differ from the source");
}

static void print_warning(const char *path, const char *msg, void *arg) {
	fprintf(stderr, "warning: %s: %s\n", path, msg);
}

static void backup_restore_round_trip_is_byte_equal(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	struct backup_restore_result res;
	struct backup_restore_opts ro = {.verify = true, .warn = print_warning};
	const char *paths[] = {src};
	struct ward_err err;
	char a[256], b[256];
	struct stat s1, s2;

	fresh();
	r = open_repo();
	ward_err_clear(&err);
	if (backup_run_paths(r, paths, 1, NULL, &s, &err) != 0)
		fail_msg("backup: %s", err.msg);
	assert_false(s->partial);
	assert_int_equal(s->stats.files, 6); /* small, empty, big, big-copy, mid, hardlink */
	assert_true(s->stats.bytes_added < s->stats.bytes_read); /* big-copy deduplicated */
	if (backup_restore(r, s, dst, &ro, &res, &err) != 0)
		fail_msg("restore: %s", err.msg);
	assert_int_equal(res.errors, 0);
	snprintf(a, sizeof(a), "%s/data", dst);
	compare_trees(src, a);
	/* The hard link is a hard link again. */
	snprintf(a, sizeof(a), "%s/data/hardlink-to-mid", dst);
	snprintf(b, sizeof(b), "%s/data/sub/deeper/mid.bin", dst);
	assert_int_equal(stat(a, &s1), 0);
	assert_int_equal(stat(b, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	backup_snapshot_free(s);
	backup_close(r);
}

/* Restoring over what is already in the target replaces it: a symlink or a second hard
 * link where a file goes is unlinked, never written through, and a stale file is replaced. */
static void restore_over_existing_entries_never_writes_through_links(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	struct backup_restore_result res;
	struct backup_restore_opts ro = {.warn = print_warning};
	const char *paths[] = {src};
	struct ward_err err;
	char a[256];
	FILE *f;

	fresh();
	r = open_repo();
	ward_err_clear(&err);
	if (backup_run_paths(r, paths, 1, NULL, &s, &err) != 0)
		fail_msg("backup: %s", err.msg);
	sh("mkdir -p '%s/data/sub' && echo keep > '%s/outside1' && echo keep > '%s/outside2' && "
	   "ln -s '%s/outside1' '%s/data/small.txt' && ln '%s/outside2' '%s/data/sub/big.bin' && "
	   "echo stale > '%s/data/empty'",
	   dst, tmp, tmp, tmp, dst, tmp, dst, dst);
	if (backup_restore(r, s, dst, &ro, &res, &err) != 0)
		fail_msg("restore: %s", err.msg);
	assert_int_equal(res.errors, 0);
	snprintf(a, sizeof(a), "%s/data", dst);
	compare_trees(src, a);
	for (int i = 1; i <= 2; i++) {
		char line[16] = "";
		snprintf(a, sizeof(a), "%s/outside%d", tmp, i);
		f = fopen(a, "r");
		assert_non_null(f);
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		assert_string_equal(line, "keep\n");
	}
	backup_snapshot_free(s);
	backup_close(r);
}

/* Copies of a file are restored from the first one restored (when it is finished) or
 * decoded: either way byte-equal, each with its own mode and times. Without verify, which
 * turns the copying off. */
static void restore_of_copies_is_byte_equal_with_their_own_metadata(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	struct backup_restore_result res;
	struct backup_restore_opts ro = {.warn = print_warning};
	const char *paths[] = {src};
	struct ward_err err;
	char a[256];

	fresh();
	snprintf(a, sizeof(a), "%s/aaa-first.bin", src);
	write_random(a, 300000, 7);
	/* Many files between the first and its copies, so the first is likely done. */
	sh("cd '%s' && mkdir zzz && for i in $(seq 1 80); do head -c 3000 sub/big.bin > zzz/f$i; "
	   "echo $i >> zzz/f$i; done && cp aaa-first.bin zzz/z-copy1 && cp aaa-first.bin "
	   "zzz/z-copy2 && chmod 400 zzz/z-copy1 && touch -d '2019-01-01' zzz/z-copy2 && cp "
	   "small.txt zzz/z-small-copy && chmod 000 zzz/f1 && cp sub/big.bin zzz/z-big-copy",
	   src);
	r = open_repo();
	ward_err_clear(&err);
	if (backup_run_paths(r, paths, 1, NULL, &s, &err) != 0)
		fail_msg("backup: %s", err.msg);
	if (backup_restore(r, s, dst, &ro, &res, &err) != 0)
		fail_msg("restore: %s", err.msg);
	assert_int_equal(res.errors, 0);
	snprintf(a, sizeof(a), "%s/data", dst);
	compare_trees(src, a);
	backup_snapshot_free(s);
	backup_close(r);
}

static void second_run_reuses_unchanged_files_without_reading(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s1 = NULL, *s2 = NULL, *s3 = NULL;
	const char *paths[] = {src};
	struct ward_err err;
	char p[256];

	fresh();
	r = open_repo();
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s1, &err), 0);
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s2, &err), 0);
	assert_true(s2->has_parent);
	assert_int_equal(s2->stats.bytes_read, 0);
	assert_int_equal(s2->stats.bytes_added, 0);
	assert_memory_equal(s1->tree, s2->tree, BACKUP_ID_LEN);
	/* Change one byte in the middle of the big file: only nearby chunks are new. */
	snprintf(p, sizeof(p), "%s/sub/big.bin", src);
	sh("printf 'X' | dd of='%s' bs=1 seek=1500000 conv=notrunc status=none", p);
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s3, &err), 0);
	assert_int_equal(s3->stats.files_changed, 1);
	assert_int_equal(s3->stats.bytes_read, 3u << 20);
	assert_true(s3->stats.bytes_added > 0 && s3->stats.bytes_added <= 3 * 65536);
	backup_snapshot_free(s1);
	backup_snapshot_free(s2);
	backup_snapshot_free(s3);
	backup_close(r);
}

static void stream_backup_restores_the_bytes(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	struct backup_restore_result res;
	struct ward_err err;
	char p[256], cmd[512];
	int fd;

	fresh();
	r = open_repo();
	snprintf(p, sizeof(p), "%s/sub/big.bin", src);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	struct backup_run_opts o = {.job = "db"};
	assert_int_equal(backup_run_stream(r, fd, "dump.pgc", &o, &s, &err), 0);
	close(fd);
	assert_int_equal(s->stats.bytes_read, 3u << 20);
	assert_string_equal(s->job, "db");
	assert_int_equal(backup_restore(r, s, dst, NULL, &res, &err), 0);
	snprintf(cmd, sizeof(cmd), "cmp '%s' '%s/dump.pgc'", p, dst);
	assert_int_equal(system(cmd), 0);
	backup_snapshot_free(s);
	assert_int_equal(backup_run_stream(r, 0, "a/b", &o, &s, &err), BACKUP_ERR_USAGE);
	backup_close(r);
}

static void unreadable_file_makes_a_partial_snapshot(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	const char *paths[] = {src};
	struct ward_err err;
	char p[256];

	if (geteuid() == 0)
		skip(); /* root reads everything */
	fresh();
	r = open_repo();
	snprintf(p, sizeof(p), "%s/small.txt", src);
	chmod(p, 0);
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s, &err), 0);
	chmod(p, 0640);
	assert_true(s->partial);
	assert_int_equal(s->nunreadable, 1);
	assert_string_equal(s->unreadable[0] + strlen(s->unreadable[0]) - 9, "small.txt");
	backup_snapshot_free(s);
	backup_close(r);
}

static void exclusive_lock_conflicts_with_a_live_lock(void **state) {
	struct backup_repo *a, *b;
	struct ward_err err;
	fresh();
	a = open_repo();
	b = open_repo();
	assert_int_equal(backup_lock(a, false, &err), 0);
	assert_int_equal(backup_lock(b, false, &err), 0); /* shared + shared */
	backup_unlock(b);
	assert_int_equal(backup_lock(b, true, &err), BACKUP_ERR_LOCKED);
	assert_non_null(strstr(err.msg, "locked"));
	backup_unlock(a);
	assert_int_equal(backup_lock(b, true, &err), 0);
	backup_unlock(b);
	backup_close(a);
	backup_close(b);
}

static void stale_locks_are_ignored_and_removed(void **state) {
	struct backup_repo *a;
	struct ward_err err;
	char host[256], lock[512];
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	fresh();
	a = open_repo();
	gethostname(host, sizeof(host));
	/* A dead process on this host, and a lock not refreshed for an hour elsewhere. */
	snprintf(lock, sizeof(lock),
	         "{\"exclusive\":true,\"host\":\"%s\",\"pid\":%d,\"time_ms\":%lld}", host,
	         (int)dead, (long long)ward_now_ms());
	assert_int_equal(a->be->write(a->be, BACKUP_FT_LOCK, "dead", lock, strlen(lock), &err), 0);
	snprintf(lock, sizeof(lock),
	         "{\"exclusive\":true,\"host\":\"elsewhere\",\"pid\":1,\"time_ms\":%lld}",
	         (long long)(ward_now_ms() - 3600 * 1000));
	assert_int_equal(a->be->write(a->be, BACKUP_FT_LOCK, "old", lock, strlen(lock), &err), 0);
	assert_int_equal(backup_lock(a, true, &err), 0);
	backup_unlock(a);
	/* A fresh lock of a live process elsewhere blocks. */
	snprintf(lock, sizeof(lock),
	         "{\"exclusive\":false,\"host\":\"elsewhere\",\"pid\":1,\"time_ms\":%lld}",
	         (long long)ward_now_ms());
	assert_int_equal(a->be->write(a->be, BACKUP_FT_LOCK, "live", lock, strlen(lock), &err), 0);
	assert_int_equal(backup_lock(a, true, &err), BACKUP_ERR_LOCKED);
	assert_int_equal(backup_unlock_stale(a, &err), 2);
	assert_int_equal(backup_lock(a, false, &err), 0); /* shared with shared is fine */
	backup_close(a);
}

struct finds {
	char all[8192];
};
static void collect(const char *kind, const char *msg, void *arg) {
	struct finds *f = arg;
	size_t n = strlen(f->all);
	snprintf(f->all + n, sizeof(f->all) - n, "%s: %s\n", kind, msg);
}

/* Flips one byte inside the first data blob of the pack holding the blob. */
static void flip_blob_byte(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN]) {
	const struct bindex_ent *e = bindex_get(&r->idx, id);
	char hex[BACKUP_HEX_LEN], p[400];
	FILE *f;
	int c;
	assert_non_null(e);
	ward_hex(r->idx.packs[e->pack], BACKUP_ID_LEN, hex);
	snprintf(p, sizeof(p), "%s/data/%.2s/%s", repo, hex, hex);
	f = fopen(p, "r+b");
	assert_non_null(f);
	fseek(f, (long)(e->offset + e->length / 2), SEEK_SET);
	c = fgetc(f);
	fseek(f, (long)(e->offset + e->length / 2), SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);
}

static int find_node(const char *path, const struct backup_node *n, void *arg) {
	struct backup_node *out = arg;
	if (strcmp(path, "/data/small.txt") == 0) {
		memcpy(out->content, n->content, BACKUP_ID_LEN);
		return 1;
	}
	return 0;
}

static void check_names_the_files_of_a_flipped_byte_and_restore_saves_the_rest(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	struct backup_check_result res;
	struct backup_check_opts co = {.read_data = true};
	struct backup_restore_result rr;
	const char *paths[] = {src};
	struct finds f = {{0}};
	uint8_t chunk[1][BACKUP_ID_LEN];
	struct backup_node n = {.content = chunk};
	struct ward_err err;
	char p[256], cmd[512];

	fresh();
	r = open_repo();
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s, &err), 0);
	assert_int_equal(backup_check(r, &co, collect, &f, &res, &err), 0);
	if (res.errors)
		fail_msg("clean repository has errors:\n%s", f.all);
	assert_int_equal(backup_ls(r, s, "/", true, find_node, &n, &err), 1);
	flip_blob_byte(r, chunk[0]);
	/* Structure alone does not read data. */
	co.read_data = false;
	f.all[0] = '\0';
	assert_int_equal(backup_check(r, &co, collect, &f, &res, &err), 0);
	assert_int_equal(res.errors, 0);
	co.read_data = true;
	assert_int_equal(backup_check(r, &co, collect, &f, &res, &err), 0);
	assert_true(res.errors >= 2);
	assert_int_equal(res.damaged_blobs, 1);
	assert_non_null(strstr(f.all, "/data/small.txt"));
	assert_non_null(strstr(f.all, s->id) ? strstr(f.all, s->id) : strstr(f.all, "snapshot"));
	/* Restoring everything else still works. */
	assert_int_equal(backup_restore(r, s, dst, NULL, &rr, &err), 0);
	assert_int_equal(rr.errors, 1);
	snprintf(p, sizeof(p), "%s/data/small.txt", dst);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "cmp '%s/sub/big.bin' '%s/data/sub/big.bin'", src, dst);
	assert_int_equal(system(cmd), 0);
	backup_snapshot_free(s);
	backup_close(r);
}

/* Rewrites the config with edit applied (the config is plain JSON, not named by a hash). */
static void edit_config(void (*edit)(json_t *o)) {
	char p[200];
	json_error_t je;
	json_t *o;
	snprintf(p, sizeof(p), "%s/config", repo);
	o = json_load_file(p, 0, &je);
	assert_non_null(o);
	edit(o);
	assert_int_equal(json_dump_file(o, p, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
	json_decref(o);
}
static void drop_crypto_fields(json_t *o) {
	assert_int_equal(json_object_del(o, "cipher"), 0);
	assert_int_equal(json_object_del(o, "id_hash"), 0);
}
static void unknown_cipher(json_t *o) {
	json_object_set_new(o, "cipher", json_string("aes-128-ocb"));
}
static void unknown_id_hash(json_t *o) {
	json_object_set_new(o, "id_hash", json_string("md5"));
}
static void version_one(json_t *o) {
	json_object_set_new(o, "version", json_integer(1));
}
static void config_version_is(json_int_t want) {
	char p[200];
	json_t *o;
	snprintf(p, sizeof(p), "%s/config", repo);
	o = json_load_file(p, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "version")), want);
	json_decref(o);
}
static void config_has(const char *field, const char *want) {
	char p[200];
	json_t *o;
	snprintf(p, sizeof(p), "%s/config", repo);
	o = json_load_file(p, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, field)), want);
	json_decref(o);
}

/* Each cipher and id hash, including a config written before the fields were read (as old
 * ward did: without them), backs up, restores byte-equal, checks clean, and a flipped byte
 * in a blob is found by check. */
static void every_cipher_and_id_hash_backs_up_restores_and_checks(void **state) {
	static const struct {
		const char *cipher, *id_hash; /* init options; NULL: the defaults */
		bool old_config;              /* drop the fields after init */
		enum backup_cipher want_cipher;
		enum backup_id_hash want_hash;
	} v[] = {
	        {NULL, NULL, false, BACKUP_CIPHER_XAES_256_GCM, BACKUP_ID_HMAC_SHA256},
	        {"xchacha20-poly1305", "blake2b-256-keyed", true, BACKUP_CIPHER_XCHACHA20_POLY1305,
	         BACKUP_ID_BLAKE2B_KEYED},
	        {"xchacha20-poly1305", "hmac-sha256", false, BACKUP_CIPHER_XCHACHA20_POLY1305,
	         BACKUP_ID_HMAC_SHA256},
	        {"xaes-256-gcm", "blake2b-256-keyed", false, BACKUP_CIPHER_XAES_256_GCM,
	         BACKUP_ID_BLAKE2B_KEYED},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct backup_init_opts o = small;
		struct backup_repo *r;
		struct backup_snapshot *s = NULL;
		struct backup_check_result res;
		struct backup_check_opts co = {.read_data = true};
		struct backup_restore_opts ro = {.verify = true, .warn = print_warning};
		struct backup_restore_result rr;
		const char *paths[] = {src};
		struct finds f = {{0}};
		uint8_t chunk[1][BACKUP_ID_LEN], want[BACKUP_ID_LEN];
		struct backup_node n = {.content = chunk};
		struct ward_err err;
		char a[256];

		fresh();
		sh("rm -rf '%s'", repo);
		o.cipher = v[i].cipher;
		o.id_hash = v[i].id_hash;
		ward_err_clear(&err);
		assert_int_equal(backup_init(repo, pass, strlen(pass), &o, &err), 0);
		config_has("cipher", backup_cipher_name(v[i].want_cipher));
		config_has("id_hash", backup_id_hash_name(v[i].want_hash));
		/* Version 2 unless the pair is the one every older ward reads. */
		config_version_is(v[i].want_cipher == BACKUP_CIPHER_XCHACHA20_POLY1305 &&
		                                  v[i].want_hash == BACKUP_ID_BLAKE2B_KEYED
		                          ? 1
		                          : 2);
		if (v[i].old_config)
			edit_config(drop_crypto_fields);
		r = open_repo();
		assert_int_equal(r->cipher, v[i].want_cipher);
		assert_int_equal(r->id_hash, v[i].want_hash);
		if (backup_run_paths(r, paths, 1, NULL, &s, &err) != 0)
			fail_msg("backup: %s", err.msg);
		backup_close(r);
		/* Packs are named by their content's BLAKE2b-256 (version 1) or SHA-256 (2). */
		sh("cd '%s/data' && for f in */*; do [ \"$(%s \"$f\" | cut -c1-64)\" = "
		   "\"${f#*/}\" ] || exit 1; done",
		   repo, v[i].old_config ? "b2sum -l 256" : "sha256sum");
		/* Reopened: the same choices are read back and the data opens. */
		r = open_repo();
		if (backup_restore(r, s, dst, &ro, &rr, &err) != 0)
			fail_msg("restore: %s", err.msg);
		assert_int_equal(rr.errors, 0);
		snprintf(a, sizeof(a), "%s/data", dst);
		compare_trees(src, a);
		assert_int_equal(backup_check(r, &co, collect, &f, &res, &err), 0);
		if (res.errors)
			fail_msg("clean repository has errors:\n%s", f.all);
		/* Ids are the repository's hash of the plaintext. */
		assert_int_equal(backup_ls(r, s, "/", true, find_node, &n, &err), 1);
		{
			char p[256], *txt = NULL;
			size_t len = 0;
			snprintf(p, sizeof(p), "%s/small.txt", src);
			assert_int_equal(ward_read_file(p, 1 << 20, &txt, &len, &err), 0);
			backup_blob_id(&r->id_key, txt, len, want);
			assert_memory_equal(chunk[0], want, BACKUP_ID_LEN);
			free(txt);
		}
		flip_blob_byte(r, chunk[0]);
		f.all[0] = '\0';
		assert_int_equal(backup_check(r, &co, collect, &f, &res, &err), 0);
		assert_int_equal(res.damaged_blobs, 1);
		assert_non_null(strstr(f.all, "/data/small.txt"));
		backup_snapshot_free(s);
		backup_close(r);
	}
}

/* A config naming a cipher or id hash this ward does not know is refused with a message
 * naming it and what is supported; so is init with one, and a version-1 config naming the
 * new pair (older wards would read it as all damaged). */
static void unknown_cipher_or_id_hash_is_a_clear_error(void **state) {
	struct backup_init_opts o = small;
	struct backup_repo *r = NULL;
	struct ward_err err;

	fresh();
	ward_err_clear(&err);
	edit_config(unknown_cipher);
	assert_int_equal(backup_open(repo, pass, strlen(pass), &r, &err), BACKUP_ERR_CORRUPT);
	assert_null(r);
	assert_non_null(strstr(err.msg, "\"aes-128-ocb\""));
	assert_non_null(strstr(err.msg, "xaes-256-gcm"));
	assert_non_null(strstr(err.msg, "xchacha20-poly1305"));
	fresh();
	edit_config(unknown_id_hash);
	assert_int_equal(backup_open(repo, pass, strlen(pass), &r, &err), BACKUP_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "\"md5\""));
	assert_non_null(strstr(err.msg, "hmac-sha256"));
	/* A version-1 config is always the old pair: one naming another is refused. */
	fresh();
	edit_config(version_one);
	assert_int_equal(backup_open(repo, pass, strlen(pass), &r, &err), BACKUP_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "version 1"));
	sh("rm -rf '%s'", repo);
	o.cipher = "rot13";
	assert_int_equal(backup_init(repo, pass, strlen(pass), &o, &err), BACKUP_ERR_USAGE);
	assert_non_null(strstr(err.msg, "\"rot13\""));
	o.cipher = NULL;
	o.id_hash = "crc32";
	assert_int_equal(backup_init(repo, pass, strlen(pass), &o, &err), BACKUP_ERR_USAGE);
	assert_non_null(strstr(err.msg, "\"crc32\""));
}

static void forget_then_prune_keeps_every_referenced_blob(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s1 = NULL, *s2 = NULL, *v = NULL;
	struct backup_prune_stats ps;
	struct backup_check_result cr;
	struct backup_check_opts co = {.read_data = true};
	struct backup_restore_result rr;
	struct backup_policy pol = {.last = 1};
	const char *paths[] = {src};
	struct finds f = {{0}};
	struct ward_err err;
	size_t n;
	char p[256], cmd[512];

	fresh();
	r = open_repo();
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s1, &err), 0);
	snprintf(p, sizeof(p), "%s/sub/big.bin", src);
	unlink(p);
	snprintf(p, sizeof(p), "%s/new.bin", src);
	write_random(p, 300000, 99);
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s2, &err), 0);
	assert_int_equal(backup_forget(r, &(struct backup_policy){0}, false, NULL, NULL, &err),
	                 BACKUP_ERR_USAGE);
	assert_int_equal(backup_forget(r, &pol, false, NULL, NULL, &err), 0);
	assert_int_equal(backup_snapshots(r, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, s2->id);
	backup_snapshots_free(v, n);
	backup_close(r);
	r = open_repo();
	if (backup_prune(r, NULL, NULL, &ps, &err) != 0)
		fail_msg("prune: %s", err.msg);
	/* big.bin is gone but big-copy.bin had the same chunks: nothing of it was freed; the
	 * first snapshot's trees were. */
	assert_true(ps.packs_repacked + ps.packs_deleted > 0);
	assert_int_equal(ps.index_files_after, 1);
	backup_close(r);
	r = open_repo();
	assert_int_equal(backup_check(r, &co, collect, &f, &cr, &err), 0);
	if (cr.errors || cr.warnings)
		fail_msg("after prune:\n%s", f.all);
	assert_int_equal(backup_restore(r, s2, dst, NULL, &rr, &err), 0);
	assert_int_equal(rr.errors, 0);
	snprintf(cmd, sizeof(cmd), "diff -r --no-dereference -x pipe '%s' '%s/data'", src, dst);
	assert_int_equal(system(cmd), 0);
	backup_snapshot_free(s1);
	backup_snapshot_free(s2);
	backup_close(r);
}

static void interrupted_backup_leaves_a_valid_repository(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s = NULL;
	struct backup_check_result cr;
	struct backup_check_opts co = {.read_data = true};
	struct backup_prune_stats ps;
	const char *paths[] = {src};
	struct finds f = {{0}};
	struct ward_err err;
	uint8_t id[BACKUP_ID_LEN];
	bool added;
	char junk[5000];

	fresh();
	r = open_repo();
	/* Blobs stored, pack + index written, no snapshot: as if killed before the end. And a
	 * pack without its index, as if killed between the two. */
	assert_int_equal(backup_load_index(r, false, NULL, NULL, &err), 0);
	memset(junk, 'j', sizeof(junk));
	backup_blob_id(&r->id_key, junk, sizeof(junk), id);
	assert_int_equal(backup_put_blob(r, BLOB_DATA, junk, sizeof(junk), id, &added, &err), 0);
	assert_int_equal(backup_flush(r, &err), 0);
	assert_int_equal(
	        r->be->write(r->be, BACKUP_FT_DATA,
	                     "ab00000000000000000000000000000000000000000000000000000000000000",
	                     "garbage", 7, &err),
	        0);
	backup_close(r);
	r = open_repo();
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s, &err), 0);
	assert_int_equal(backup_check(r, &co, collect, &f, &cr, &err), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(cr.warnings, 1); /* the unindexed pack */
	{
		char tmpf[256];
		FILE *tf;
		snprintf(tmpf, sizeof(tmpf), "%s/data/ab/.tmp-0123456789abcdef", repo);
		tf = fopen(tmpf, "w");
		assert_non_null(tf);
		fputs("half a pack", tf);
		fclose(tf);
	}
	assert_int_equal(backup_prune(r, NULL, NULL, &ps, &err), 0);
	assert_int_equal(ps.packs_unindexed, 1);
	assert_int_equal(ps.temp_files_removed, 1);
	f.all[0] = '\0';
	backup_close(r);
	r = open_repo();
	assert_int_equal(backup_check(r, &co, collect, &f, &cr, &err), 0);
	if (cr.errors || cr.warnings)
		fail_msg("after prune:\n%s", f.all);
	backup_snapshot_free(s);
	backup_close(r);
}

static int ls_count(const char *path, const struct backup_node *n, void *arg) {
	(*(int *)arg)++;
	return 0;
}

static void diff(char c, const char *path, void *arg) {
	struct buf *b = arg;
	buf_printf(b, "%c %s\n", c, path);
}

static void ls_and_diff_show_the_changes(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s1 = NULL, *s2 = NULL;
	const char *paths[] = {src};
	struct ward_err err;
	struct buf out = BUF_INIT;
	int count = 0;
	char p[256];

	fresh();
	r = open_repo();
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s1, &err), 0);
	assert_int_equal(backup_ls(r, s1, "/data/sub", true, ls_count, &count, &err), 0);
	assert_int_equal(count, 4); /* big, big-copy, deeper, deeper/mid */
	assert_int_equal(backup_ls(r, s1, "/data/nope", false, ls_count, &count, &err),
	                 BACKUP_ERR_NOTFOUND);
	snprintf(p, sizeof(p), "%s/small.txt", src);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub/deeper/new", src);
	write_random(p, 10, 5);
	assert_int_equal(backup_run_paths(r, paths, 1, NULL, &s2, &err), 0);
	assert_int_equal(backup_diff(r, s1, s2, diff, &out, &err), 0);
	assert_non_null(strstr(buf_cstr(&out), "- /data/small.txt\n"));
	assert_non_null(strstr(buf_cstr(&out), "+ /data/sub/deeper/new\n"));
	buf_free(&out);
	backup_snapshot_free(s1);
	backup_snapshot_free(s2);
	backup_close(r);
}

struct names {
	char all[4096];
};
static int ls_names(const char *path, const struct backup_node *n, void *arg) {
	struct names *x = arg;
	size_t k = strlen(x->all);
	snprintf(x->all + k, sizeof(x->all) - k, "%s\n", path);
	return 0;
}

static void excludes_and_includes_select_entries(void **state) {
	struct backup_repo *r;
	struct backup_snapshot *s1 = NULL, *s2 = NULL;
	const char *paths[] = {src};
	const char *excl[] = {"*.bin", "deeper"}, *incl[] = {"*.txt"};
	struct backup_run_opts o1 = {.exclude = excl, .nexclude = 2};
	struct backup_run_opts o2 = {.include = incl, .ninclude = 1, .job = "inc"};
	struct names a = {{0}}, b = {{0}};
	struct ward_err err;

	fresh();
	r = open_repo();
	assert_int_equal(backup_run_paths(r, paths, 1, &o1, &s1, &err), 0);
	assert_int_equal(backup_ls(r, s1, "/", true, ls_names, &a, &err), 0);
	assert_null(strstr(a.all, ".bin"));
	assert_null(strstr(a.all, "deeper"));
	assert_non_null(strstr(a.all, "/data/small.txt\n"));
	assert_non_null(strstr(a.all, "/data/link-to-big\n")); /* a symlink, not a .bin file */
	assert_int_equal(backup_run_paths(r, paths, 1, &o2, &s2, &err), 0);
	assert_int_equal(backup_ls(r, s2, "/", true, ls_names, &b, &err), 0);
	assert_non_null(strstr(b.all, "/data/small.txt\n"));
	assert_null(strstr(b.all, "/data/empty\n"));
	assert_null(strstr(b.all, ".bin"));
	assert_int_equal(s2->stats.files, 1);
	backup_snapshot_free(s1);
	backup_snapshot_free(s2);
	backup_close(r);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(init_twice_and_wrong_passphrase_write_nothing),
	        cmocka_unit_test(keys_add_list_remove_but_never_the_last),
	        cmocka_unit_test(backup_restore_round_trip_is_byte_equal),
	        cmocka_unit_test(restore_of_copies_is_byte_equal_with_their_own_metadata),
	        cmocka_unit_test(restore_over_existing_entries_never_writes_through_links),
	        cmocka_unit_test(second_run_reuses_unchanged_files_without_reading),
	        cmocka_unit_test(stream_backup_restores_the_bytes),
	        cmocka_unit_test(unreadable_file_makes_a_partial_snapshot),
	        cmocka_unit_test(exclusive_lock_conflicts_with_a_live_lock),
	        cmocka_unit_test(stale_locks_are_ignored_and_removed),
	        cmocka_unit_test(
	                check_names_the_files_of_a_flipped_byte_and_restore_saves_the_rest),
	        cmocka_unit_test(every_cipher_and_id_hash_backs_up_restores_and_checks),
	        cmocka_unit_test(unknown_cipher_or_id_hash_is_a_clear_error),
	        cmocka_unit_test(forget_then_prune_keeps_every_referenced_blob),
	        cmocka_unit_test(interrupted_backup_leaves_a_valid_repository),
	        cmocka_unit_test(ls_and_diff_show_the_changes),
	        cmocka_unit_test(excludes_and_includes_select_entries),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
