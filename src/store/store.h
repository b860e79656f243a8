/* store.h: the one public header of src/store: ward's state store.
 *
 * The state store keeps small, durable, relational state: tokens, alert state, silences,
 * incidents, the backup catalog. Callers speak portable SQL (the common subset of SQLite
 * and PostgreSQL: INTEGER, REAL, TEXT, BLOB, "?" placeholders) through store_exec and
 * store_query, so a PostgreSQL backend can join later behind struct store_ops without any
 * caller changing. Today there is one backend: SQLite in WAL mode with a busy timeout and
 * a cache of prepared statements.
 *
 * Schema: each component (a module, e.g. "http", "alert") registers its own numbered
 * migrations before the store is opened; store_open applies every pending migration of
 * every component in one transaction, or none. The versions live in the table
 * schema_migrations(component, version, applied_ms).
 *
 * Thread-safety: a struct store may be used from any thread; calls are serialised by a
 * mutex inside (SQLite writes are serial anyway). A row callback must not call back into
 * the same store.
 */
#ifndef WARD_STORE_H
#define WARD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1,      /* I/O, SQL or constraint error; err says which */
	STORE_BUSY = -2,     /* the database stayed locked past the busy timeout */
	STORE_CONFLICT = -3, /* a UNIQUE or PRIMARY KEY constraint failed */
};
const char *store_strerror(int rc);

/* A migration: version numbers start at 1 and increase by 1 within a component. sql may
 * hold several statements separated by ';'. */
struct store_migration {
	int version;
	const char *sql;
};
/* Registers a component's migrations (the array must outlive the process, i.e. static).
 * Call before store_open, typically from a module's init. Registering the same component
 * twice replaces its list. 0, or -1 when versions are not 1..n in order. */
int store_register_migrations(const char *component, const struct store_migration *m, size_t n);
/* For tests: forget every registered component. */
void store_reset_migrations(void);

struct store;
/* Opens the store at url: "sqlite:<path>" or a plain path (SQLite). Creates the file
 * (mode 0600) if missing, sets WAL mode, applies pending migrations in one transaction.
 * read_only: open without creating or migrating (for offline CLI commands).
 * NULL with err ("state.db: database disk image is malformed; restore it from a backup").
 */
struct store *store_open(const char *url, bool read_only, struct ward_err *err);
void store_close(struct store *s); /* NULL-safe */

/* The schema version of one component (0 when it has none), and the sum over all
 * components (shown in /health as schema_version). */
int store_schema_version(struct store *s, const char *component);
int store_schema_version_total(struct store *s);
/* Size of the database files on disk in bytes (main file + WAL), for /metrics. */
int64_t store_size_bytes(struct store *s);
const char *store_backend_name(struct store *s); /* "sqlite" */

/* A value bound to a "?" placeholder or read from a column. Strings and blobs are
 * borrowed: for parameters, for the duration of the call; for columns, for the duration
 * of the row callback. */
enum store_type { STORE_NULL = 0, STORE_INT, STORE_REAL, STORE_TEXT, STORE_BLOB };
struct store_val {
	enum store_type type;
	int64_t i;
	double d;
	const char *s; /* TEXT (NUL-terminated) or BLOB */
	size_t n;      /* bytes in s */
};
/* Constructors for parameter lists: (struct store_val[]){SV_TEXT("x"), SV_INT(3)} */
#define SV_NULL() ((struct store_val){.type = STORE_NULL})
#define SV_INT(v) ((struct store_val){.type = STORE_INT, .i = (int64_t)(v)})
#define SV_REAL(v) ((struct store_val){.type = STORE_REAL, .d = (double)(v)})
#define SV_TEXT(v) store_val_text(v)
#define SV_BLOB(p, len) ((struct store_val){.type = STORE_BLOB, .s = (const char *)(p), .n = (len)})
struct store_val store_val_text(const char *s); /* NULL becomes STORE_NULL */

/* Runs one statement that returns no rows. *changes (may be NULL) gets the number of rows
 * changed. Returns STORE_OK or a negative enum store_rc with err set. */
int store_exec(struct store *s, const char *sql, const struct store_val *params, size_t nparams,
	       int64_t *changes, struct ward_err *err);

/* Runs a query; fn is called once per row with the columns. fn returns 0 to go on, or
 * non-zero to stop (store_query then returns that value). Returns STORE_OK, fn's non-zero
 * value, or a negative enum store_rc with err set. */
typedef int (*store_row_fn)(void *arg, const struct store_val *cols, size_t ncols);
int store_query(struct store *s, const char *sql, const struct store_val *params,
		size_t nparams, store_row_fn fn, void *arg, struct ward_err *err);

/* Runs fn inside one transaction: committed when fn returns 0, rolled back otherwise (fn's
 * return value is passed through). fn uses the same store_exec/store_query calls; they are
 * part of the transaction because the store's mutex is held (recursively) meanwhile. */
typedef int (*store_tx_fn)(struct store *s, void *arg, struct ward_err *err);
int store_tx(struct store *s, store_tx_fn fn, void *arg, struct ward_err *err);

/* Copies the database to dest_path consistently while it is in use (SQLite online backup
 * API), for backups of ward's own state. 0 or -1 with err. */
int store_backup_to(struct store *s, const char *dest_path, struct ward_err *err);

#endif
