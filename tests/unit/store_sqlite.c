/* store_sqlite.c: unit tests of the state store with its SQLite backend.
 *
 * Each test gets a fresh temporary directory (removed afterwards) and an empty migration
 * registry. Covers migrations, every value type, callbacks, transactions, conflicts,
 * read-only and corrupt files, backups, concurrent writers and the kill -9 guarantee.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#include "store/store.h"

struct fx {
	char dir[256];
	char db[300];
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
	return remove(p);
}

static int setup(void **state) {
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ward-store-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	store_reset_migrations();
	*state = f;
	return 0;
}

static int teardown(void **state) {
	struct fx *f = *state;
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	store_reset_migrations();
	return 0;
}

static int row_int(void *arg, const struct store_val *cols, size_t n) {
	int64_t *out = arg;
	assert_true(n >= 1);
	*out = cols[0].type == STORE_INT ? cols[0].i : -999;
	return 0;
}

static int row_text(void *arg, const struct store_val *cols, size_t n) {
	char *out = arg;
	assert_true(n >= 1 && cols[0].type == STORE_TEXT);
	snprintf(out, 16, "%s", cols[0].s);
	return 0;
}

static int64_t q_int(struct store *s, const char *sql) {
	struct ward_err err;
	int64_t v = -1;
	ward_err_clear(&err);
	int rc = store_query(s, sql, NULL, 0, row_int, &v, &err);
	if (rc != STORE_OK)
		fail_msg("%s: %s", sql, err.msg);
	return v;
}

static void exec_ok(struct store *s, const char *sql) {
	struct ward_err err;
	ward_err_clear(&err);
	if (store_exec(s, sql, NULL, 0, NULL, &err) != STORE_OK)
		fail_msg("%s: %s", sql, err.msg);
}

static struct store *open_ok(const char *url) {
	struct ward_err err;
	ward_err_clear(&err);
	struct store *s = store_open(url, false, &err);
	if (!s)
		fail_msg("store_open(%s): %s", url, err.msg);
	return s;
}

/* ---- migrations ---- */

static const struct store_migration mig_a2[] = {
        {1, "CREATE TABLE a1 (id INTEGER PRIMARY KEY)"},
        {2, "CREATE TABLE a2 (id INTEGER PRIMARY KEY); INSERT INTO a2 (id) VALUES (7);"},
};
static const struct store_migration mig_a3[] = {
        {1, "CREATE TABLE a1 (id INTEGER PRIMARY KEY)"},
        {2, "CREATE TABLE a2 (id INTEGER PRIMARY KEY); INSERT INTO a2 (id) VALUES (7);"},
        {3, "ALTER TABLE a1 ADD COLUMN name TEXT"},
};
static const struct store_migration mig_b1[] = {
        {1, "CREATE TABLE b1 (id INTEGER PRIMARY KEY, a INTEGER REFERENCES a1(id))"},
};

static void migrations_applied_once_and_versions_recorded(void **state) {
	struct fx *f = *state;
	struct store *s;

	assert_int_equal(store_register_migrations("a", mig_a2, 2), 0);
	assert_int_equal(store_register_migrations("b", mig_b1, 1), 0);
	s = open_ok(f->db);
	assert_int_equal(store_schema_version(s, "a"), 2);
	assert_int_equal(store_schema_version(s, "b"), 1);
	assert_int_equal(store_schema_version(s, "nope"), 0);
	assert_int_equal(store_schema_version_total(s), 3);
	assert_int_equal(q_int(s, "SELECT count(*) FROM schema_migrations"), 3);
	assert_int_equal(q_int(s, "SELECT min(applied_ms) > 1500000000000 FROM schema_migrations"),
	                 1);
	assert_string_equal(store_backend_name(s), "sqlite");
	store_close(s);

	/* Reopening applies nothing again (v1 has no IF NOT EXISTS, so it would fail). */
	s = open_ok(f->db);
	assert_int_equal(q_int(s, "SELECT count(*) FROM schema_migrations"), 3);
	assert_int_equal(q_int(s, "SELECT count(*) FROM a2"), 1);
	store_close(s);

	/* A new version of one component: only it is applied. Re-registering replaces. */
	assert_int_equal(store_register_migrations("a", mig_a3, 3), 0);
	s = open_ok(f->db);
	assert_int_equal(store_schema_version(s, "a"), 3);
	assert_int_equal(store_schema_version_total(s), 4);
	exec_ok(s, "INSERT INTO a1 (id, name) VALUES (1, 'x')");
	store_close(s);
}

static void failing_migration_rolls_back_everything(void **state) {
	struct fx *f = *state;
	static const struct store_migration bad[] = {
	        {1, "CREATE TABLE c1 (id INTEGER)"},
	        {2, "CREATE TABLE c2 (id INTEGER); CREATE TABLEX oops"},
	};
	struct ward_err err;
	struct store *s;

	assert_int_equal(store_register_migrations("a", mig_a2, 2), 0);
	assert_int_equal(store_register_migrations("c", bad, 2), 0);
	ward_err_clear(&err);
	s = store_open(f->db, false, &err);
	assert_null(s);
	assert_non_null(strstr(err.msg, "migration 2 of component c"));
	assert_non_null(strstr(err.msg, "syntax error"));

	/* Nothing of a's or c's migrations remains. */
	store_reset_migrations();
	s = open_ok(f->db);
	assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_master WHERE name IN "
	                          "('a1', 'a2', 'c1', 'c2')"),
	                 0);
	assert_int_equal(q_int(s, "SELECT count(*) FROM schema_migrations"), 0);
	store_close(s);
}

static void register_rejects_versions_out_of_order(void **state) {
	static const struct store_migration gap[] = {{1, "SELECT 1"}, {3, "SELECT 1"}};
	static const struct store_migration zero[] = {{0, "SELECT 1"}};
	assert_int_equal(store_register_migrations("g", gap, 2), -1);
	assert_int_equal(store_register_migrations("z", zero, 1), -1);
	assert_int_equal(store_register_migrations("", mig_b1, 1), -1);
	assert_int_equal(store_register_migrations("ok", mig_b1, 1), 0);
}

static void newer_schema_than_known_is_refused(void **state) {
	struct fx *f = *state;
	struct ward_err err;
	struct store *s;

	assert_int_equal(store_register_migrations("a", mig_a3, 3), 0);
	store_close(open_ok(f->db));
	assert_int_equal(store_register_migrations("a", mig_a2, 2), 0);
	ward_err_clear(&err);
	s = store_open(f->db, false, &err);
	assert_null(s);
	assert_non_null(strstr(err.msg, "schema version 3"));
}

/* ---- values ---- */

struct rows {
	int n;
	struct store_val v[8];
	char text[64];
	char blob[16];
	size_t blob_n;
};

static int copy_row(void *arg, const struct store_val *cols, size_t n) {
	struct rows *r = arg;
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++)
		r->v[i] = cols[i];
	assert_int_equal(cols[2].type, STORE_TEXT);
	assert_true(cols[2].n < sizeof(r->text));
	memcpy(r->text, cols[2].s, cols[2].n + 1); /* TEXT is NUL-terminated */
	assert_int_equal(cols[3].type, STORE_BLOB);
	memcpy(r->blob, cols[3].s, cols[3].n);
	r->blob_n = cols[3].n;
	r->n++;
	return 0;
}

static void exec_and_query_every_value_type_and_null(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	struct ward_err err;
	struct rows r = {0};
	int64_t changes = -1;
	const char blob[] = {'a', 0, 'b', (char)0xff};

	exec_ok(s, "CREATE TABLE v (i INTEGER, d REAL, t TEXT, b BLOB, n TEXT, e BLOB)");
	struct store_val p[] = {SV_INT(INT64_MIN),           SV_REAL(2.5),  SV_TEXT("héllo"),
	                        SV_BLOB(blob, sizeof(blob)), SV_TEXT(NULL), SV_NULL()};
	assert_int_equal(p[4].type, STORE_NULL);
	ward_err_clear(&err);
	assert_int_equal(
	        store_exec(s, "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)", p, 6, &changes, &err),
	        STORE_OK);
	assert_int_equal(changes, 1);
	assert_int_equal(store_query(s, "SELECT i, d, t, b, n, e FROM v WHERE i = ?",
	                             (struct store_val[]){SV_INT(INT64_MIN)}, 1, copy_row, &r,
	                             &err),
	                 STORE_OK);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0].type, STORE_INT);
	assert_true(r.v[0].i == INT64_MIN);
	assert_int_equal(r.v[1].type, STORE_REAL);
	assert_true(r.v[1].d == 2.5);
	assert_string_equal(r.text, "héllo");
	assert_int_equal(r.v[2].n, strlen("héllo"));
	assert_int_equal(r.blob_n, sizeof(blob));
	assert_memory_equal(r.blob, blob, sizeof(blob));
	assert_int_equal(r.v[4].type, STORE_NULL);
	assert_int_equal(r.v[5].type, STORE_NULL);

	/* Max int and an empty blob (stays a BLOB, not NULL). */
	memset(&r, 0, sizeof(r));
	assert_int_equal(
	        store_exec(s, "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)",
	                   (struct store_val[]){SV_INT(INT64_MAX), SV_REAL(-0.125), SV_TEXT(""),
	                                        SV_BLOB(NULL, 0), SV_NULL(), SV_NULL()},
	                   6, NULL, &err),
	        STORE_OK);
	assert_int_equal(store_query(s, "SELECT i, d, t, b, n, e FROM v WHERE i = ?",
	                             (struct store_val[]){SV_INT(INT64_MAX)}, 1, copy_row, &r,
	                             &err),
	                 STORE_OK);
	assert_int_equal(r.n, 1);
	assert_true(r.v[0].i == INT64_MAX);
	assert_true(r.v[1].d == -0.125);
	assert_string_equal(r.text, "");
	assert_int_equal(r.blob_n, 0);

	/* UPDATE reports changed rows. */
	assert_int_equal(store_exec(s, "UPDATE v SET n = ?", (struct store_val[]){SV_TEXT("z")}, 1,
	                            &changes, &err),
	                 STORE_OK);
	assert_int_equal(changes, 2);
	store_close(s);
}

static void wrong_parameter_count_and_two_statements_are_errors(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	struct ward_err err;

	exec_ok(s, "CREATE TABLE t (x INTEGER)");
	ward_err_clear(&err);
	assert_int_equal(store_exec(s, "INSERT INTO t VALUES (?)", NULL, 0, NULL, &err), STORE_ERR);
	assert_non_null(strstr(err.msg, "1 placeholders but 0 values"));
	assert_non_null(strstr(err.msg, "INSERT INTO t VALUES (?)"));
	ward_err_clear(&err);
	assert_int_equal(
	        store_exec(s, "INSERT INTO t VALUES (1); DELETE FROM t", NULL, 0, NULL, &err),
	        STORE_ERR);
	assert_non_null(strstr(err.msg, "more than one statement"));
	ward_err_clear(&err);
	assert_int_equal(store_exec(s, "SELEC nonsense FROM t", NULL, 0, NULL, &err), STORE_ERR);
	assert_non_null(strstr(err.msg, "SELEC nonsense FROM t"));
	assert_non_null(strstr(err.msg, "syntax error"));
	/* The statement still works after the failed bind. */
	assert_int_equal(store_exec(s, "INSERT INTO t VALUES (?)", (struct store_val[]){SV_INT(1)},
	                            1, NULL, &err),
	                 STORE_OK);
	assert_int_equal(q_int(s, "SELECT count(*) FROM t"), 1);
	store_close(s);
}

struct stop_arg {
	int seen;
	int stop_after;
};

static int stop_row(void *arg, const struct store_val *cols, size_t n) {
	struct stop_arg *a = arg;
	a->seen++;
	return a->seen == a->stop_after ? 7 : 0;
}

static void query_callback_stops_early_and_statement_is_reusable(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	struct ward_err err;
	struct stop_arg a = {0, 3};

	exec_ok(s, "CREATE TABLE t (x INTEGER)");
	for (int i = 0; i < 10; i++)
		assert_int_equal(store_exec(s, "INSERT INTO t VALUES (?)",
		                            (struct store_val[]){SV_INT(i)}, 1, NULL, &err),
		                 STORE_OK);
	assert_int_equal(store_query(s, "SELECT x FROM t ORDER BY x", NULL, 0, stop_row, &a, &err),
	                 7);
	assert_int_equal(a.seen, 3);
	/* The cached statement was reset: a full pass sees all rows from the start. */
	a = (struct stop_arg){0, 0};
	assert_int_equal(store_query(s, "SELECT x FROM t ORDER BY x", NULL, 0, stop_row, &a, &err),
	                 STORE_OK);
	assert_int_equal(a.seen, 10);
	store_close(s);
}

/* ---- transactions ---- */

static int tx_insert(struct store *s, void *arg, struct ward_err *err) {
	int *ret = arg;
	int rc = store_exec(s, "INSERT INTO t VALUES (?)", (struct store_val[]){SV_INT(*ret)}, 1,
	                    NULL, err);
	if (rc != STORE_OK)
		return rc;
	return *ret >= 100 ? *ret : 0; /* values >= 100 make the transaction fail */
}

static int tx_outer(struct store *s, void *arg, struct ward_err *err) {
	int one = 1, bad = 142;
	int rc = tx_insert(s, &one, err);
	if (rc != 0)
		return rc;
	assert_int_equal(store_tx(s, tx_insert, &bad, err), 142); /* inner fails: savepoint */
	return 0;
}

static void tx_commits_on_zero_and_rolls_back_otherwise(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	struct ward_err err;
	int v;

	exec_ok(s, "CREATE TABLE t (x INTEGER)");
	v = 5;
	assert_int_equal(store_tx(s, tx_insert, &v, &err), 0);
	v = 105;
	assert_int_equal(store_tx(s, tx_insert, &v, &err), 105);
	assert_int_equal(q_int(s, "SELECT count(*) FROM t"), 1);
	assert_int_equal(q_int(s, "SELECT x FROM t"), 5);

	/* Nested: the inner failure undoes only the inner insert. */
	exec_ok(s, "DELETE FROM t");
	assert_int_equal(store_tx(s, tx_outer, NULL, &err), 0);
	assert_int_equal(q_int(s, "SELECT count(*) FROM t"), 1);
	assert_int_equal(q_int(s, "SELECT x FROM t"), 1);
	store_close(s);
}

static void duplicate_primary_key_is_conflict(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	struct ward_err err;

	exec_ok(s, "CREATE TABLE k (id TEXT PRIMARY KEY, u TEXT UNIQUE, nn TEXT NOT NULL)");
	exec_ok(s, "INSERT INTO k VALUES ('a', 'x', 'n')");
	ward_err_clear(&err);
	assert_int_equal(store_exec(s, "INSERT INTO k VALUES ('a', 'y', 'n')", NULL, 0, NULL, &err),
	                 STORE_CONFLICT);
	assert_non_null(strstr(err.msg, "INSERT INTO k"));
	assert_non_null(strstr(err.msg, "UNIQUE constraint failed"));
	assert_int_equal(store_exec(s, "INSERT INTO k VALUES ('b', 'x', 'n')", NULL, 0, NULL, &err),
	                 STORE_CONFLICT);
	/* Other constraints are plain errors. */
	assert_int_equal(
	        store_exec(s, "INSERT INTO k VALUES ('c', 'z', NULL)", NULL, 0, NULL, &err),
	        STORE_ERR);
	assert_non_null(strstr(err.msg, "NOT NULL"));
	assert_string_equal(store_strerror(STORE_CONFLICT), "conflict: the record already exists");
	store_close(s);
}

static void foreign_keys_are_enforced(void **state) {
	struct fx *f = *state;
	struct store *s;
	struct ward_err err;

	assert_int_equal(store_register_migrations("a", mig_a2, 2), 0);
	assert_int_equal(store_register_migrations("b", mig_b1, 1), 0);
	s = open_ok(f->db);
	ward_err_clear(&err);
	assert_int_equal(
	        store_exec(s, "INSERT INTO b1 (id, a) VALUES (1, 99)", NULL, 0, NULL, &err),
	        STORE_ERR);
	assert_non_null(strstr(err.msg, "FOREIGN KEY"));
	store_close(s);
}

/* ---- files ---- */

static void file_is_private_in_wal_mode_and_sized(void **state) {
	struct fx *f = *state;
	char url[400];
	struct stat sb;
	struct store *s;
	struct ward_err err;
	char mode[16] = "";

	snprintf(url, sizeof(url), "sqlite:%s", f->db);
	s = open_ok(url);
	assert_int_equal(stat(f->db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(store_query(s, "PRAGMA journal_mode", NULL, 0, row_text, mode, &err),
	                 STORE_OK);
	assert_string_equal(mode, "wal");
	assert_int_equal(q_int(s, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(q_int(s, "PRAGMA foreign_keys"), 1);
	assert_int_equal(q_int(s, "PRAGMA busy_timeout"), 5000);
	exec_ok(s, "CREATE TABLE t (x BLOB)");
	exec_ok(s, "INSERT INTO t VALUES (zeroblob(100000))");
	snprintf(url, sizeof(url), "%s-wal", f->db);
	assert_int_equal(stat(url, &sb), 0); /* the WAL holds the insert, private too */
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_true(store_size_bytes(s) >= 100000);
	store_close(s);
}

static void other_backends_are_not_built_yet(void **state) {
	struct ward_err err;
	ward_err_clear(&err);
	assert_null(store_open("postgres://ward@db/ward", false, &err));
	assert_non_null(strstr(err.msg, "backend postgres is not built yet"));
	ward_err_clear(&err);
	assert_null(store_open("postgresql://ward@db/ward", false, &err));
	assert_non_null(strstr(err.msg, "backend postgres is not built yet"));
	ward_err_clear(&err);
	assert_null(store_open("sqlite:", false, &err));
	assert_true(ward_err_isset(&err));
}

static void read_only_open_of_missing_file_fails_clearly(void **state) {
	struct fx *f = *state;
	struct ward_err err;
	struct stat sb;

	ward_err_clear(&err);
	assert_null(store_open(f->db, true, &err));
	assert_non_null(strstr(err.msg, "holds no state.db"));
	assert_non_null(strstr(err.msg, "ward serve"));
	assert_non_null(strstr(err.msg, f->dir));
	assert_int_equal(stat(f->db, &sb), -1); /* and nothing was created */
}

static void read_only_open_reads_but_never_writes(void **state) {
	struct fx *f = *state;
	struct store *s;
	struct ward_err err;

	assert_int_equal(store_register_migrations("a", mig_a2, 2), 0);
	store_close(open_ok(f->db));
	store_reset_migrations();
	ward_err_clear(&err);
	s = store_open(f->db, true, &err);
	assert_non_null(s);
	assert_int_equal(q_int(s, "SELECT id FROM a2"), 7);
	assert_int_equal(store_schema_version(s, "a"), 2);
	assert_int_equal(store_exec(s, "INSERT INTO a2 VALUES (8)", NULL, 0, NULL, &err),
	                 STORE_ERR);
	assert_non_null(strstr(err.msg, "readonly"));
	store_close(s);
}

static void corrupt_file_fails_clearly(void **state) {
	struct fx *f = *state;
	struct ward_err err;
	char junk[8192];
	int fd;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	fd = open(f->db, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	ward_err_clear(&err);
	assert_null(store_open(f->db, false, &err));
	assert_non_null(strstr(err.msg, f->db));
	assert_non_null(strstr(err.msg, "not a database"));
	assert_non_null(strstr(err.msg, "restore"));
	ward_err_clear(&err);
	assert_null(store_open(f->db, true, &err));
	assert_non_null(strstr(err.msg, "restore"));
}

static void backup_to_produces_a_readable_copy(void **state) {
	struct fx *f = *state;
	struct store *s, *c;
	struct ward_err err;
	char dest[400];
	struct stat sb;

	assert_int_equal(store_register_migrations("a", mig_a2, 2), 0);
	s = open_ok(f->db);
	exec_ok(s, "INSERT INTO a1 (id) VALUES (41)");
	snprintf(dest, sizeof(dest), "%s/copy.db", f->dir);
	ward_err_clear(&err);
	if (store_backup_to(s, dest, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(stat(dest, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Never overwrites. */
	assert_int_equal(store_backup_to(s, dest, &err), -1);
	assert_non_null(strstr(err.msg, "already exists"));
	store_close(s);

	ward_err_clear(&err);
	c = store_open(dest, true, &err);
	if (!c)
		fail_msg("%s", err.msg);
	assert_int_equal(q_int(c, "SELECT id FROM a1"), 41);
	assert_int_equal(store_schema_version(c, "a"), 2);
	store_close(c);
}

/* ---- concurrency and durability ---- */

#define THREAD_TXS 100

struct thr {
	const char *path;
	struct store *shared;
	int id;
	int failures;
	char msg[256];
};

static int tx_increment(struct store *s, void *arg, struct ward_err *err) {
	int64_t v = -1;
	int rc = store_query(s, "SELECT n FROM counter", NULL, 0, row_int, &v, err);
	if (rc != STORE_OK)
		return rc;
	return store_exec(s, "UPDATE counter SET n = ?", (struct store_val[]){SV_INT(v + 1)}, 1,
	                  NULL, err);
}

static void *writer(void *arg) {
	struct thr *t = arg;
	struct ward_err err;
	struct store *own = NULL, *s = t->shared;

	ward_err_clear(&err);
	if (!s) {
		own = s = store_open(t->path, false, &err);
		if (!s) {
			t->failures++;
			snprintf(t->msg, sizeof(t->msg), "%.200s", err.msg);
			return NULL;
		}
	}
	for (int i = 0; i < THREAD_TXS; i++) {
		if (store_tx(s, tx_increment, NULL, &err) != 0 ||
		    store_exec(s, "INSERT INTO log (who, i) VALUES (?, ?)",
		               (struct store_val[]){SV_INT(t->id), SV_INT(i)}, 2, NULL,
		               &err) != 0) {
			t->failures++;
			snprintf(t->msg, sizeof(t->msg), "%.200s", err.msg);
		}
	}
	store_close(own);
	return NULL;
}

static void two_threads_write_concurrently_without_lost_updates(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	pthread_t th[4];
	struct thr t[4];

	exec_ok(s, "CREATE TABLE counter (n INTEGER)");
	exec_ok(s, "INSERT INTO counter VALUES (0)");
	exec_ok(s, "CREATE TABLE log (who INTEGER, i INTEGER)");
	/* Threads 0-1 share one store (its mutex), threads 2-3 each open their own
	 * connection (SQLite's locks and the busy timeout). */
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){.path = f->db, .shared = i < 2 ? s : NULL, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, writer, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (t[i].failures)
			fail_msg("thread %d: %d failures: %s", i, t[i].failures, t[i].msg);
	}
	assert_int_equal(q_int(s, "SELECT n FROM counter"), 4 * THREAD_TXS);
	assert_int_equal(q_int(s, "SELECT count(*) FROM log"), 4 * THREAD_TXS);
	store_close(s);
}

/* Rows the parent waits to see acknowledged before it kills the writer. */
#define ACKED_BEFORE_KILL 150

static void acknowledged_writes_survive_kill_9(void **state) {
	struct fx *f = *state;
	struct store *s = open_ok(f->db);
	struct ward_err err;
	int pfd[2];
	pid_t pid;
	/* Every id the child can write fits: it stops at 100000. */
	int64_t *ids = calloc(100000, sizeof(*ids));
	size_t nids = 0;

	exec_ok(s, "CREATE TABLE d (id INTEGER PRIMARY KEY, pad TEXT)");
	store_close(s);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		s = store_open(f->db, false, &err);
		if (!s)
			_exit(2);
		for (int64_t id = 1; id < 100000; id++) {
			if (store_exec(s, "INSERT INTO d (id, pad) VALUES (?, ?)",
			               (struct store_val[]){SV_INT(id), SV_TEXT("some padding")}, 2,
			               NULL, &err) != STORE_OK)
				_exit(3);
			if (write(pfd[1], &id, sizeof(id)) != (ssize_t)sizeof(id))
				_exit(4);
		}
		_exit(0);
	}
	close(pfd[1]);
	for (;;) {
		int64_t id;
		ssize_t r = read(pfd[0], &id, sizeof(id));
		if (r != (ssize_t)sizeof(id))
			break;
		ids[nids++] = id;
		if (nids == ACKED_BEFORE_KILL)
			kill(pid, SIGKILL);
	}
	close(pfd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_true(nids >= ACKED_BEFORE_KILL);

	/* Reopen (recovers from the WAL) and look for every acknowledged id. */
	s = open_ok(f->db);
	for (size_t i = 0; i < nids; i++) {
		int64_t n = -1;
		ward_err_clear(&err);
		assert_int_equal(store_query(s, "SELECT count(*) FROM d WHERE id = ?",
		                             (struct store_val[]){SV_INT(ids[i])}, 1, row_int, &n,
		                             &err),
		                 STORE_OK);
		if (n != 1)
			fail_msg("acknowledged id %lld is missing after kill -9",
			         (long long)ids[i]);
	}
	assert_true(q_int(s, "SELECT count(*) FROM d") >= (int64_t)nids);
	store_close(s);
	free(ids);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(migrations_applied_once_and_versions_recorded,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(failing_migration_rolls_back_everything, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(register_rejects_versions_out_of_order, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(newer_schema_than_known_is_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(exec_and_query_every_value_type_and_null, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(wrong_parameter_count_and_two_statements_are_errors,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                query_callback_stops_early_and_statement_is_reusable, setup, teardown),
	        cmocka_unit_test_setup_teardown(tx_commits_on_zero_and_rolls_back_otherwise, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(duplicate_primary_key_is_conflict, setup, teardown),
	        cmocka_unit_test_setup_teardown(foreign_keys_are_enforced, setup, teardown),
	        cmocka_unit_test_setup_teardown(file_is_private_in_wal_mode_and_sized, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(other_backends_are_not_built_yet, setup, teardown),
	        cmocka_unit_test_setup_teardown(read_only_open_of_missing_file_fails_clearly, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(read_only_open_reads_but_never_writes, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(corrupt_file_fails_clearly, setup, teardown),
	        cmocka_unit_test_setup_teardown(backup_to_produces_a_readable_copy, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(two_threads_write_concurrently_without_lost_updates,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(acknowledged_writes_survive_kill_9, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
