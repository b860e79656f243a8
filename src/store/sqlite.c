/* sqlite.c: the SQLite backend of the state store (struct store_ops store_sqlite_ops).
 *
 * One connection per struct store, in WAL mode with synchronous=FULL (a write whose call
 * returned is in the fsynced WAL, so it survives kill -9 and power loss), foreign keys on,
 * and a busy timeout. Prepared statements are cached by SQL text (a small LRU) and are
 * always reset with their bindings cleared before going back to the cache.
 * Invariant: store.c holds the store's mutex around every function here, so the
 * connection and the cache are touched by one thread at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_internal.h"

/* How long a writer waits for another connection's write lock before STORE_BUSY: long
 * enough to ride out a checkpoint or a large transaction, short enough that an HTTP
 * request fails instead of hanging. */
#define SQLITE_BUSY_TIMEOUT_MS 5000
/* Prepared statements kept per connection: ward's hot paths use a few dozen distinct
 * statements; the rest are re-prepared (cheap) when evicted. */
#define STMT_CACHE_SIZE 48
/* Columns of a row kept on the stack; wider rows allocate. */
#define STACK_COLS 16

struct stmt_slot {
	char *sql; /* NULL when the slot is empty */
	uint64_t hash;
	sqlite3_stmt *st;
	uint64_t last_used;
	bool in_use; /* handed out and not yet returned (guards re-entrant use) */
};

struct sq_conn {
	sqlite3 *db;
	char *path;
	struct stmt_slot cache[STMT_CACHE_SIZE];
	uint64_t tick;
};

static struct sq_conn *conn_of(struct store *s) {
	return s->impl;
}

/* The directory holding path ("." for a bare name), for messages and fsync. */
static void path_dir(const char *path, char *out, size_t outsz) {
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(out, outsz, ".");
	else if (slash == path)
		snprintf(out, outsz, "/");
	else
		snprintf(out, outsz, "%.*s", (int)(slash - path), path);
}

static int map_rc(int rc) {
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_BUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return STORE_CONFLICT;
		return STORE_ERR;
	default:
		return STORE_ERR;
	}
}

/* Records a failure of sql (rc from SQLite, message from the connection) and returns the
 * store_rc. Must be called before the statement is reset, which may change the message. */
static int sq_fail(struct sq_conn *c, int rc, const char *sql, struct ward_err *err) {
	char head[96];
	const char *msg = sqlite3_errmsg(c->db);

	store_sql_head(sql, head, sizeof(head));
	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		ward_err_set(err,
		             "%s: %s: %s; the database file is damaged: stop ward and restore "
		             "it from a backup",
		             c->path, head, msg);
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		ward_err_set(err,
		             "%s: %s: %s (still locked after %d ms; is another process writing "
		             "to this data directory?)",
		             c->path, head, msg, SQLITE_BUSY_TIMEOUT_MS);
		break;
	case SQLITE_FULL:
		ward_err_set(err, "%s: %s: %s; free space on the data directory's filesystem",
		             c->path, head, msg);
		break;
	case SQLITE_READONLY:
		ward_err_set(err,
		             "%s: %s: %s (the store was opened read-only, or the file is "
		             "not writable by this user)",
		             c->path, head, msg);
		break;
	default:
		ward_err_set(err, "%s: %s: %s", c->path, head, msg);
	}
	return map_rc(rc);
}

/* FNV-1a: a cheap filter before comparing the SQL text. */
static uint64_t sql_hash(const char *s) {
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static bool only_space(const char *p) {
	for (; p && *p; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
			return false;
	}
	return true;
}

/* Returns a ready statement for sql: from the cache when present and free, otherwise
 * freshly prepared (and cached when a slot can be had). *slot is NULL for an uncached
 * statement, which put_stmt then finalizes. */
static int get_stmt(struct sq_conn *c, const char *sql, sqlite3_stmt **out, struct stmt_slot **slot,
                    struct ward_err *err) {
	uint64_t h = sql_hash(sql);
	struct stmt_slot *victim = NULL;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	int rc;

	*out = NULL;
	*slot = NULL;
	for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
		struct stmt_slot *e = &c->cache[i];
		if (e->sql && e->hash == h && !e->in_use && strcmp(e->sql, sql) == 0) {
			e->in_use = true;
			e->last_used = ++c->tick;
			*out = e->st;
			*slot = e;
			return STORE_OK;
		}
	}
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
	if (rc != SQLITE_OK)
		return sq_fail(c, rc, sql, err);
	if (!st) {
		ward_err_set(err, "%s: empty SQL statement (a bug in ward)", c->path);
		return STORE_ERR;
	}
	if (!only_space(tail)) {
		char head[96];
		store_sql_head(sql, head, sizeof(head));
		sqlite3_finalize(st);
		ward_err_set(err,
		             "%s: %s: more than one statement in one call (a bug in ward; "
		             "run them separately or in store_tx)",
		             c->path, head);
		return STORE_ERR;
	}
	for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
		struct stmt_slot *e = &c->cache[i];
		if (e->in_use)
			continue;
		if (!e->sql) {
			victim = e;
			break;
		}
		if (!victim || e->last_used < victim->last_used)
			victim = e;
	}
	if (victim) {
		if (victim->sql) {
			sqlite3_finalize(victim->st);
			free(victim->sql);
		}
		victim->sql = ward_strdup(sql);
		victim->hash = h;
		victim->st = st;
		victim->last_used = ++c->tick;
		victim->in_use = true;
		*slot = victim;
	}
	*out = st;
	return STORE_OK;
}

static void put_stmt(sqlite3_stmt *st, struct stmt_slot *slot) {
	if (!st)
		return;
	if (!slot) {
		sqlite3_finalize(st);
		return;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	slot->in_use = false;
}

static int bind_params(struct sq_conn *c, sqlite3_stmt *st, const char *sql,
                       const struct store_val *params, size_t nparams, struct ward_err *err) {
	int want = sqlite3_bind_parameter_count(st);
	char head[96];

	if (nparams > INT_MAX || (size_t)want != nparams) {
		store_sql_head(sql, head, sizeof(head));
		ward_err_set(err,
		             "%s: %s: the statement has %d placeholders but %zu values were "
		             "given (a bug in ward)",
		             c->path, head, want, nparams);
		return STORE_ERR;
	}
	for (size_t i = 0; i < nparams; i++) {
		const struct store_val *v = &params[i];
		int idx = (int)i + 1, rc;

		switch (v->type) {
		case STORE_NULL:
			rc = sqlite3_bind_null(st, idx);
			break;
		case STORE_INT:
			rc = sqlite3_bind_int64(st, idx, v->i);
			break;
		case STORE_REAL:
			rc = sqlite3_bind_double(st, idx, v->d);
			break;
		case STORE_TEXT:
			if (!v->s) {
				rc = sqlite3_bind_null(st, idx);
				break;
			}
			rc = sqlite3_bind_text64(st, idx, v->s, (sqlite3_uint64)v->n, SQLITE_STATIC,
			                         SQLITE_UTF8);
			break;
		case STORE_BLOB:
			if (!v->s && v->n > 0)
				goto bad_value;
			if (v->n == 0)
				rc = sqlite3_bind_zeroblob(st, idx, 0);
			else
				rc = sqlite3_bind_blob64(st, idx, v->s, (sqlite3_uint64)v->n,
				                         SQLITE_STATIC);
			break;
		default:
			goto bad_value;
		}
		if (rc != SQLITE_OK)
			return sq_fail(c, rc, sql, err);
		continue;
	bad_value:
		store_sql_head(sql, head, sizeof(head));
		ward_err_set(err,
		             "%s: %s: parameter %zu has an invalid type or value (a bug in "
		             "ward)",
		             c->path, head, i + 1);
		return STORE_ERR;
	}
	return STORE_OK;
}

static int sq_exec(struct store *s, const char *sql, const struct store_val *params, size_t nparams,
                   int64_t *changes, struct ward_err *err) {
	struct sq_conn *c = conn_of(s);
	struct stmt_slot *slot;
	sqlite3_stmt *st;
	int rc;

	rc = get_stmt(c, sql, &st, &slot, err);
	if (rc != STORE_OK)
		return rc;
	rc = bind_params(c, st, sql, params, nparams, err);
	if (rc != STORE_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		; /* rows of a statement run for its effect (e.g. a PRAGMA) are dropped */
	if (rc != SQLITE_DONE) {
		rc = sq_fail(c, rc, sql, err);
		goto out;
	}
	if (changes)
		*changes = sqlite3_changes64(c->db);
	rc = STORE_OK;
out:
	put_stmt(st, slot);
	return rc;
}

static void read_col(sqlite3_stmt *st, int i, struct store_val *v) {
	*v = (struct store_val){.type = STORE_NULL};
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		v->type = STORE_INT;
		v->i = sqlite3_column_int64(st, i);
		break;
	case SQLITE_FLOAT:
		v->type = STORE_REAL;
		v->d = sqlite3_column_double(st, i);
		break;
	case SQLITE_TEXT:
		v->type = STORE_TEXT;
		v->s = (const char *)sqlite3_column_text(st, i);
		v->n = (size_t)sqlite3_column_bytes(st, i);
		if (!v->s)
			v->s = "";
		break;
	case SQLITE_BLOB:
		v->type = STORE_BLOB;
		v->s = sqlite3_column_blob(st, i);
		v->n = (size_t)sqlite3_column_bytes(st, i);
		if (!v->s)
			v->s = "";
		break;
	default:
		break;
	}
}

static int sq_query(struct store *s, const char *sql, const struct store_val *params,
                    size_t nparams, store_row_fn fn, void *arg, struct ward_err *err) {
	struct sq_conn *c = conn_of(s);
	struct store_val stack_cols[STACK_COLS], *cols = stack_cols;
	struct stmt_slot *slot;
	sqlite3_stmt *st;
	int rc, ncols;

	rc = get_stmt(c, sql, &st, &slot, err);
	if (rc != STORE_OK)
		return rc;
	rc = bind_params(c, st, sql, params, nparams, err);
	if (rc != STORE_OK)
		goto out;
	ncols = sqlite3_column_count(st);
	if (ncols > STACK_COLS)
		cols = ward_xcalloc((size_t)ncols, sizeof(*cols));
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			rc = STORE_OK;
			break;
		}
		if (rc != SQLITE_ROW) {
			rc = sq_fail(c, rc, sql, err);
			break;
		}
		for (int i = 0; i < ncols; i++)
			read_col(st, i, &cols[i]);
		rc = fn(arg, cols, (size_t)ncols);
		if (rc != 0)
			break;
	}
	if (cols != stack_cols)
		free(cols);
out:
	put_stmt(st, slot);
	return rc;
}

static int sq_exec_script(struct store *s, const char *sql, struct ward_err *err) {
	struct sq_conn *c = conn_of(s);
	const char *p = sql;

	while (p && *p) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		int rc = sqlite3_prepare_v2(c->db, p, -1, &st, &tail);
		if (rc != SQLITE_OK)
			return sq_fail(c, rc, p, err);
		if (st) {
			while ((rc = sqlite3_step(st)) == SQLITE_ROW)
				;
			if (rc != SQLITE_DONE) {
				rc = sq_fail(c, rc, p, err);
				sqlite3_finalize(st);
				return rc;
			}
			sqlite3_finalize(st);
		}
		if (tail == p)
			break;
		p = tail;
	}
	return STORE_OK;
}

static int sq_begin(struct store *s, struct ward_err *err) {
	/* IMMEDIATE takes the write lock now, so two connections never deadlock trying to
	 * upgrade read locks; a read-only connection can only read. */
	return sq_exec(s, s->read_only ? "BEGIN" : "BEGIN IMMEDIATE", NULL, 0, NULL, err);
}

static int sq_commit(struct store *s, struct ward_err *err) {
	return sq_exec(s, "COMMIT", NULL, 0, NULL, err);
}

static void sq_rollback(struct store *s) {
	struct sq_conn *c = conn_of(s);
	struct ward_err ignored;

	/* SQLite ends the transaction itself after some errors (I/O, full disk); rolling back
	 * then would only add a second, misleading error. */
	if (!sqlite3_get_autocommit(c->db))
		sq_exec(s, "ROLLBACK", NULL, 0, NULL, &ignored);
}

static void sq_close(struct store *s) {
	struct sq_conn *c = conn_of(s);
	if (!c)
		return;
	for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
		if (c->cache[i].sql) {
			sqlite3_finalize(c->cache[i].st);
			free(c->cache[i].sql);
		}
	}
	/* close_v2: the connection goes away once nothing uses it, even if a statement
	 * escaped the cache by a bug. The last close checkpoints and removes the WAL. */
	sqlite3_close_v2(c->db);
	free(c->path);
	free(c);
	s->impl = NULL;
}

/* Creates path with mode 0600 if it does not exist yet (SQLite would use the umask, and
 * state.db holds token hashes), and makes the new directory entry durable. */
static int create_private(const char *path, struct ward_err *err) {
	char dir[4096];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		path_dir(path, dir, sizeof(dir));
		ward_err_set(err,
		             "%s: cannot create the state database: %s; check that %s exists "
		             "and is writable by this user",
		             path, strerror(errno), dir);
		return -1;
	}
	if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
		ward_err_set(err, "%s: cannot set up the new state database: %s", path,
		             strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	path_dir(path, dir, sizeof(dir));
	if (ward_fsync_dir(dir) != 0) {
		ward_err_set(err, "%s: cannot sync directory %s: %s", path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int pragma_text(struct sq_conn *c, const char *sql, char *out, size_t outsz,
                       struct ward_err *err) {
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);

	out[0] = '\0';
	if (rc != SQLITE_OK)
		return sq_fail(c, rc, sql, err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(out, outsz, "%s", t ? (const char *)t : "");
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		rc = sq_fail(c, rc, sql, err);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	return STORE_OK;
}

static int sq_open(struct store *s, const char *path, bool read_only, struct ward_err *err) {
	struct sq_conn *c;
	struct stat sb;
	char dir[4096], mode[32];
	int flags, rc;

	if (read_only) {
		if (stat(path, &sb) != 0) {
			path_dir(path, dir, sizeof(dir));
			if (errno == ENOENT)
				ward_err_set(err,
				             "%s: no such file: the data directory %s holds no "
				             "state.db; run `ward serve` first to create it",
				             path, dir);
			else
				ward_err_set(err, "%s: cannot open the state database: %s", path,
				             strerror(errno));
			return -1;
		}
		flags = SQLITE_OPEN_READONLY;
	} else {
		if (create_private(path, err) != 0)
			return -1;
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	/* NOMUTEX: store.c serialises all use of the connection. */
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;

	c = ward_xcalloc(1, sizeof(*c));
	c->path = ward_strdup(path);
	s->impl = c;
	rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		ward_err_set(err, "%s: cannot open the state database: %s", path,
		             c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, SQLITE_BUSY_TIMEOUT_MS);

	/* Reading the schema touches page 1, which is where a damaged or foreign file shows. */
	rc = sq_exec_script(s, "SELECT count(*) FROM sqlite_master", err);
	if (rc != STORE_OK) {
		int xrc = sqlite3_extended_errcode(c->db) & 0xff;
		if (xrc == SQLITE_NOTADB || xrc == SQLITE_CORRUPT)
			ward_err_set(err,
			             "%s: %s: the file is damaged or is not a ward state database; "
			             "stop ward and restore state.db from a backup",
			             path, sqlite3_errmsg(c->db));
		goto fail;
	}
	if (!read_only) {
		if (pragma_text(c, "PRAGMA journal_mode=WAL", mode, sizeof(mode), err) != STORE_OK)
			goto fail;
		if (strcmp(mode, "wal") != 0) {
			ward_err_set(err,
			             "%s: cannot switch the state database to WAL mode (it "
			             "stays in %s mode); put the data directory on a local "
			             "filesystem",
			             path, mode);
			goto fail;
		}
	}
	/* FULL in WAL mode fsyncs the WAL at every commit: an acknowledged write survives a
	 * crash or power loss, which NORMAL does not promise. */
	if (sq_exec_script(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", err) != 0)
		goto fail;
	return 0;
fail:
	sq_close(s);
	return -1;
}

static int64_t sq_size_bytes(struct store *s) {
	struct sq_conn *c = conn_of(s);
	struct buf wal = BUF_INIT;
	struct stat sb;
	int64_t total;

	if (stat(c->path, &sb) != 0)
		return -1;
	total = (int64_t)sb.st_size;
	buf_printf(&wal, "%s-wal", c->path);
	if (stat(buf_cstr(&wal), &sb) == 0)
		total += (int64_t)sb.st_size;
	buf_free(&wal);
	return total;
}

static int sq_backup_to(struct store *s, const char *dest, struct ward_err *err) {
	struct sq_conn *c = conn_of(s);
	sqlite3 *ddb = NULL;
	sqlite3_backup *bk;
	char dir[4096];
	int fd, rc;

	fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			ward_err_set(err,
			             "state store backup: %s already exists; choose a new file "
			             "name (backups never overwrite)",
			             dest);
		else
			ward_err_set(err, "state store backup: cannot create %s: %s", dest,
			             strerror(errno));
		return -1;
	}
	close(fd);
	rc = sqlite3_open_v2(dest, &ddb, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		ward_err_set(err, "state store backup: cannot open %s: %s", dest,
		             ddb ? sqlite3_errmsg(ddb) : sqlite3_errstr(rc));
		goto fail;
	}
	bk = sqlite3_backup_init(ddb, "main", c->db, "main");
	if (!bk) {
		ward_err_set(err, "state store backup to %s: %s", dest, sqlite3_errmsg(ddb));
		goto fail;
	}
	/* All pages in one step: we hold the store's lock, so nothing changes meanwhile. */
	rc = sqlite3_backup_step(bk, -1);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		ward_err_set(err, "state store backup from %s to %s: %s", c->path, dest,
		             sqlite3_errstr(rc));
		goto fail;
	}
	rc = sqlite3_close(ddb);
	ddb = NULL;
	if (rc != SQLITE_OK) {
		ward_err_set(err, "state store backup: closing %s: %s", dest, sqlite3_errstr(rc));
		goto fail;
	}
	path_dir(dest, dir, sizeof(dir));
	if (ward_fsync_dir(dir) != 0) {
		ward_err_set(err, "state store backup: cannot sync directory %s: %s", dir,
		             strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (ddb)
		sqlite3_close_v2(ddb);
	unlink(dest);
	return -1;
}

const struct store_ops store_sqlite_ops = {
        .name = "sqlite",
        .open = sq_open,
        .close = sq_close,
        .exec = sq_exec,
        .query = sq_query,
        .exec_script = sq_exec_script,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .size_bytes = sq_size_bytes,
        .backup_to = sq_backup_to,
};
