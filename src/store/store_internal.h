/* store_internal.h: the contract between store.c (backend-neutral: URL parsing, locking,
 * migrations, transactions) and a backend (sqlite.c today, postgres later).
 *
 * Invariant: store.c holds s->mu (a recursive mutex) around every call into s->ops, so a
 * backend never needs its own lock and may keep per-connection state (statement cache,
 * last error) in s->impl without further synchronisation.
 */
#ifndef WARD_STORE_INTERNAL_H
#define WARD_STORE_INTERNAL_H

#include <pthread.h>

#include "store/store.h"

struct store_ops {
	const char *name; /* "sqlite" */
	/* Opens target (a file path for sqlite) and sets s->impl. For a writable open the
	 * backend creates what is missing; read_only never creates. Called without a
	 * transaction; s->mu is held. */
	int (*open)(struct store *s, const char *target, bool read_only, struct ward_err *err);
	void (*close)(struct store *s); /* frees s->impl; NULL-safe on a failed open */
	int (*exec)(struct store *s, const char *sql, const struct store_val *params,
	            size_t nparams, int64_t *changes, struct ward_err *err);
	int (*query)(struct store *s, const char *sql, const struct store_val *params,
	             size_t nparams, store_row_fn fn, void *arg, struct ward_err *err);
	/* Runs several ';'-separated statements without parameters (migrations). */
	int (*exec_script)(struct store *s, const char *sql, struct ward_err *err);
	/* Outermost transaction: begin takes the write lock at once (no upgrade deadlocks). */
	int (*begin)(struct store *s, struct ward_err *err);
	int (*commit)(struct store *s, struct ward_err *err);
	/* Rolls back if a transaction is still open (the backend may have ended it already
	 * after an I/O error); never fails loudly. */
	void (*rollback)(struct store *s);
	int64_t (*size_bytes)(struct store *s);
	int (*backup_to)(struct store *s, const char *dest_path, struct ward_err *err);
};

struct store {
	const struct store_ops *ops;
	pthread_mutex_t mu; /* recursive; guards every field below and the backend's impl */
	int tx_depth;       /* 0 outside store_tx; >1 means nested (savepoints) */
	bool read_only;
	char *target; /* the path (or connection string) given to ops->open */
	void *impl;   /* the backend's connection state */
};

extern const struct store_ops store_sqlite_ops;

/* Writes the first few words of sql (whitespace collapsed, "..." when cut) into out, for
 * error messages that say which statement failed. */
void store_sql_head(const char *sql, char *out, size_t outsz);

#endif
