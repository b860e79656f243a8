/* store.c: the backend-neutral half of the state store: URL parsing, the migration registry,
 * applying migrations at open, locking and transactions; everything else is dispatched
 * through struct store_ops (sqlite.c).
 *
 * Invariants: every call into s->ops happens with s->mu held (recursive, so store_tx's fn
 * may call store_exec/store_query and they join the transaction). The migration registry
 * is guarded by reg_mu; migrations of all components are applied in one transaction or not
 * at all. Callers: every module that keeps state (http tokens, alerts, backup catalog) and
 * core, which opens the store at startup.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"

/* ---- migration registry ---- */

struct mig_component {
	char *name;
	const struct store_migration *m;
	size_t n;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER; /* guards reg, reg_n, reg_cap */
static struct mig_component *reg;
static size_t reg_n, reg_cap;

int store_register_migrations(const char *component, const struct store_migration *m, size_t n) {
	if (!component || !component[0] || (n > 0 && !m) || n > INT_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (m[i].version != (int)i + 1 || !m[i].sql)
			return -1;
	}
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < reg_n; i++) {
		if (strcmp(reg[i].name, component) == 0) {
			reg[i].m = m;
			reg[i].n = n;
			pthread_mutex_unlock(&reg_mu);
			return 0;
		}
	}
	if (reg_n == reg_cap) {
		reg_cap = reg_cap ? reg_cap * 2 : 8;
		reg = ward_xrealloc(reg, reg_cap * sizeof(*reg));
	}
	reg[reg_n++] = (struct mig_component){ward_strdup(component), m, n};
	pthread_mutex_unlock(&reg_mu);
	return 0;
}

void store_reset_migrations(void) {
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < reg_n; i++)
		free(reg[i].name);
	free(reg);
	reg = NULL;
	reg_n = reg_cap = 0;
	pthread_mutex_unlock(&reg_mu);
}

/* ---- small helpers ---- */

const char *store_strerror(int rc) {
	switch (rc) {
	case STORE_OK:
		return "ok";
	case STORE_ERR:
		return "state store error";
	case STORE_BUSY:
		return "state store busy (locked past the busy timeout)";
	case STORE_CONFLICT:
		return "conflict: the record already exists";
	default:
		return "unknown state store error";
	}
}

struct store_val store_val_text(const char *s) {
	if (!s)
		return SV_NULL();
	return (struct store_val){.type = STORE_TEXT, .s = s, .n = strlen(s)};
}

/* How many words of a statement an error message quotes: enough to recognise it
 * ("INSERT INTO tokens (id, ...") without pasting a whole migration into a log line. */
#define SQL_HEAD_WORDS 5

void store_sql_head(const char *sql, char *out, size_t outsz) {
	size_t o = 0, words = 0;
	bool in_space = true, cut = false;

	if (outsz == 0)
		return;
	if (!sql)
		sql = "";
	for (const char *p = sql; *p; p++) {
		bool sp = (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r');
		if (sp) {
			in_space = true;
			continue;
		}
		if (in_space) {
			if (words == SQL_HEAD_WORDS) {
				cut = true;
				break;
			}
			if (words > 0 && o + 1 < outsz)
				out[o++] = ' ';
			words++;
			in_space = false;
		}
		if (o + 1 >= outsz) {
			cut = true;
			break;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
	if (cut && outsz > 4) {
		if (o + 4 > outsz)
			o = outsz - 4;
		memcpy(out + o, "...", 4);
	}
}

/* Splits url into a backend and its target. Only sqlite exists today. */
static int parse_url(const char *url, const struct store_ops **ops, char **target,
                     struct ward_err *err) {
	const char *rest = NULL;
	size_t i = 0;

	if (!url || !url[0]) {
		ward_err_set(err, "state store: no database URL or path given; set store.url "
		                  "(e.g. \"sqlite:/var/lib/ward/state.db\")");
		return -1;
	}
	if (ward_has_prefix(url, "sqlite:")) {
		rest = url + strlen("sqlite:");
		if (ward_has_prefix(rest, "//"))
			rest += 2;
	} else {
		/* A scheme is [a-z][a-z0-9+.-]* followed by "://"; anything else is a path. */
		if ((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')) {
			while (url[i] && url[i] != ':' && url[i] != '/')
				i++;
		}
		if (i > 0 && ward_has_prefix(url + i, "://")) {
			char scheme[32];
			snprintf(scheme, sizeof(scheme), "%.*s", (int)(i < 31 ? i : 31), url);
			if (strcmp(scheme, "postgresql") == 0)
				snprintf(scheme, sizeof(scheme), "postgres");
			ward_err_set(err,
			             "state store: backend %s is not built yet; use a sqlite: URL "
			             "or a file path (e.g. \"sqlite:/var/lib/ward/state.db\")",
			             scheme);
			return -1;
		}
		rest = url;
	}
	if (!rest[0]) {
		ward_err_set(err,
		             "state store: \"%s\" names no file; give a path after "
		             "\"sqlite:\"",
		             url);
		return -1;
	}
	*ops = &store_sqlite_ops;
	*target = ward_strdup(rest);
	return 0;
}

static int row_first_int(void *arg, const struct store_val *cols, size_t ncols) {
	int64_t *out = arg;
	if (ncols > 0 && cols[0].type == STORE_INT)
		*out = cols[0].i;
	return 0;
}

/* A backend message without its leading "<target>: ", which migrate's own message names. */
static const char *inner_msg(const struct store *s, const struct ward_err *e) {
	size_t n = strlen(s->target);
	if (strncmp(e->msg, s->target, n) == 0 && e->msg[n] == ':' && e->msg[n + 1] == ' ')
		return e->msg + n + 2;
	return e->msg;
}

/* Applies every pending migration of every registered component in one transaction.
 * Called from store_open before the store is shared, with s->mu held. */
static int migrate(struct store *s, struct ward_err *err) {
	static const char create_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                                 " component TEXT NOT NULL,"
	                                 " version INTEGER NOT NULL,"
	                                 " applied_ms INTEGER NOT NULL,"
	                                 " PRIMARY KEY (component, version))";
	struct ward_err e2;
	int rc;

	ward_err_clear(&e2);
	pthread_mutex_lock(&reg_mu);
	rc = s->ops->begin(s, &e2);
	if (rc != STORE_OK) {
		ward_err_set(err, "state store %s: cannot start the migration transaction: %s",
		             s->target, inner_msg(s, &e2));
		goto out;
	}
	rc = s->ops->exec_script(s, create_sql, &e2);
	if (rc != STORE_OK) {
		ward_err_set(err, "state store %s: cannot create schema_migrations: %s", s->target,
		             inner_msg(s, &e2));
		goto fail;
	}
	for (size_t c = 0; c < reg_n; c++) {
		const struct mig_component *mc = &reg[c];
		int64_t cur = 0;
		struct store_val p[3];

		p[0] = SV_TEXT(mc->name);
		rc = s->ops->query(s,
		                   "SELECT COALESCE(MAX(version), 0) FROM schema_migrations "
		                   "WHERE component = ?",
		                   p, 1, row_first_int, &cur, &e2);
		if (rc != STORE_OK) {
			ward_err_set(err,
			             "state store %s: cannot read the schema version of %s: %s",
			             s->target, mc->name, inner_msg(s, &e2));
			goto fail;
		}
		if (cur > (int64_t)mc->n) {
			ward_err_set(
			        err,
			        "state store %s: component %s is at schema version %lld but this "
			        "ward knows only version %zu; run the newer ward that wrote it, "
			        "or restore a backup taken before the upgrade",
			        s->target, mc->name, (long long)cur, mc->n);
			rc = STORE_ERR;
			goto fail;
		}
		for (size_t v = (size_t)cur; v < mc->n; v++) {
			rc = s->ops->exec_script(s, mc->m[v].sql, &e2);
			if (rc != STORE_OK) {
				ward_err_set(err,
				             "state store %s: migration %d of component %s failed: "
				             "%s; nothing was changed (all pending migrations were "
				             "rolled back)",
				             s->target, mc->m[v].version, mc->name,
				             inner_msg(s, &e2));
				goto fail;
			}
			p[1] = SV_INT(mc->m[v].version);
			p[2] = SV_INT(ward_now_ms());
			rc = s->ops->exec(s,
			                  "INSERT INTO schema_migrations (component, version, "
			                  "applied_ms) VALUES (?, ?, ?)",
			                  p, 3, NULL, &e2);
			if (rc != STORE_OK) {
				ward_err_set(
				        err, "state store %s: cannot record migration %d of %s: %s",
				        s->target, mc->m[v].version, mc->name, inner_msg(s, &e2));
				goto fail;
			}
		}
	}
	rc = s->ops->commit(s, &e2);
	if (rc != STORE_OK) {
		ward_err_set(err, "state store %s: cannot commit migrations: %s", s->target,
		             inner_msg(s, &e2));
		goto fail;
	}
	goto out;
fail:
	s->ops->rollback(s);
	if (rc == STORE_OK)
		rc = STORE_ERR;
out:
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

/* ---- lifecycle ---- */

struct store *store_open(const char *url, bool read_only, struct ward_err *err) {
	const struct store_ops *ops = NULL;
	pthread_mutexattr_t attr;
	struct store *s;
	char *target = NULL;

	if (parse_url(url, &ops, &target, err) != 0)
		return NULL;
	s = ward_xcalloc(1, sizeof(*s));
	s->ops = ops;
	s->read_only = read_only;
	s->target = target;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->mu, &attr);
	pthread_mutexattr_destroy(&attr);

	pthread_mutex_lock(&s->mu);
	if (s->ops->open(s, target, read_only, err) != 0)
		goto fail;
	if (!read_only && migrate(s, err) != STORE_OK)
		goto fail;
	pthread_mutex_unlock(&s->mu);
	return s;
fail:
	pthread_mutex_unlock(&s->mu);
	store_close(s);
	return NULL;
}

void store_close(struct store *s) {
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->ops)
		s->ops->close(s);
	s->impl = NULL;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_destroy(&s->mu);
	free(s->target);
	free(s);
}

const char *store_backend_name(struct store *s) {
	return s && s->ops ? s->ops->name : "none";
}

/* ---- statements ---- */

static int check_args(struct store *s, const char *sql, const struct store_val *params,
                      size_t nparams, struct ward_err *err) {
	if (!s || !sql) {
		ward_err_set(err, "state store: called with no store or no SQL (a bug in ward)");
		return STORE_ERR;
	}
	if (nparams > 0 && !params) {
		ward_err_set(err,
		             "state store: %zu parameters announced but none given (a bug "
		             "in ward)",
		             nparams);
		return STORE_ERR;
	}
	return STORE_OK;
}

int store_exec(struct store *s, const char *sql, const struct store_val *params, size_t nparams,
               int64_t *changes, struct ward_err *err) {
	int rc = check_args(s, sql, params, nparams, err);
	if (rc != STORE_OK)
		return rc;
	if (changes)
		*changes = 0;
	pthread_mutex_lock(&s->mu);
	rc = s->ops->exec(s, sql, params, nparams, changes, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_query(struct store *s, const char *sql, const struct store_val *params, size_t nparams,
                store_row_fn fn, void *arg, struct ward_err *err) {
	int rc = check_args(s, sql, params, nparams, err);
	if (rc != STORE_OK)
		return rc;
	if (!fn) {
		ward_err_set(err, "state store: query without a row callback (a bug in ward)");
		return STORE_ERR;
	}
	pthread_mutex_lock(&s->mu);
	rc = s->ops->query(s, sql, params, nparams, fn, arg, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Nested store_tx calls become savepoints named by depth, so an inner failure undoes only
 * the inner work and the outer fn decides what happens to the rest. */
int store_tx(struct store *s, store_tx_fn fn, void *arg, struct ward_err *err) {
	char sp[64];
	int rc, depth;

	if (!s || !fn) {
		ward_err_set(err, "state store: transaction with no store or no function (a bug "
		                  "in ward)");
		return STORE_ERR;
	}
	pthread_mutex_lock(&s->mu);
	depth = s->tx_depth;
	snprintf(sp, sizeof(sp), "SAVEPOINT store_sp_%d", depth);
	rc = depth == 0 ? s->ops->begin(s, err) : s->ops->exec(s, sp, NULL, 0, NULL, err);
	if (rc != STORE_OK)
		goto out;
	s->tx_depth++;
	rc = fn(s, arg, err);
	s->tx_depth--;
	if (rc == 0) {
		if (depth == 0) {
			rc = s->ops->commit(s, err);
			if (rc != STORE_OK)
				s->ops->rollback(s);
		} else {
			snprintf(sp, sizeof(sp), "RELEASE store_sp_%d", depth);
			rc = s->ops->exec(s, sp, NULL, 0, NULL, err);
		}
	} else if (depth == 0) {
		s->ops->rollback(s);
	} else {
		struct ward_err ignored; /* fn's error is the one the caller needs */
		snprintf(sp, sizeof(sp), "ROLLBACK TO store_sp_%d", depth);
		s->ops->exec(s, sp, NULL, 0, NULL, &ignored);
		snprintf(sp, sizeof(sp), "RELEASE store_sp_%d", depth);
		s->ops->exec(s, sp, NULL, 0, NULL, &ignored);
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- introspection and backup ---- */

int store_schema_version(struct store *s, const char *component) {
	struct ward_err e;
	int64_t v = 0;
	struct store_val p[1];

	if (!s || !component)
		return 0;
	p[0] = SV_TEXT(component);
	if (store_query(s,
	                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE "
	                "component = ?",
	                p, 1, row_first_int, &v, &e) != STORE_OK)
		return 0;
	return v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
}

int store_schema_version_total(struct store *s) {
	struct ward_err e;
	int64_t v = 0;

	if (!s)
		return 0;
	if (store_query(s,
	                "SELECT COALESCE(SUM(v), 0) FROM (SELECT MAX(version) AS v FROM "
	                "schema_migrations GROUP BY component)",
	                NULL, 0, row_first_int, &v, &e) != STORE_OK)
		return 0;
	return v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
}

int64_t store_size_bytes(struct store *s) {
	int64_t n;
	if (!s)
		return -1;
	pthread_mutex_lock(&s->mu);
	n = s->ops->size_bytes(s);
	pthread_mutex_unlock(&s->mu);
	return n;
}

int store_backup_to(struct store *s, const char *dest_path, struct ward_err *err) {
	int rc;
	if (!s || !dest_path || !dest_path[0]) {
		ward_err_set(err, "state store backup: no destination path given");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	rc = s->ops->backup_to(s, dest_path, err);
	pthread_mutex_unlock(&s->mu);
	return rc == 0 ? 0 : -1;
}
