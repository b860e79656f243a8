/* core.h: the one public header of src/core: the daemon (`ward serve`) and its module
 * registry.
 *
 * A module is a struct ward_module listed once in src/core/modules.c (the registry; the
 * only line a new module adds outside its own folder). Lifecycle, in this order:
 *   init()    at process start, before any config is loaded: register config sections
 *             (conf_register_section), store migrations (store_register_migrations) and
 *             metrics. Never fails except on a programming error.
 *   start()   after the config is loaded and the store and audit trail are open: register
 *             HTTP routes, start timers on ctx->loop, open the module's own files.
 *   apply()   on every reload (and not on start: start reads the config itself), with
 *             the new config already validated. A module that finds the new config
 *             unusable says why in err and returns -1; the reload is then rejected whole
 *             and the old config stays. Settings that only take effect at a restart
 *             (server.listen, TLS, storage.data_dir, connection limits) are accepted: the
 *             daemon logs a warning and records them as restart_required in the audit.
 *   stop()    at shutdown, in reverse order: flush and close.
 * Any of them may be NULL.
 *
 * The daemon keeps the current struct conf behind a lock; readers take a reference with
 * ward_conf_get() and drop it with conf_unref(), so a reload never changes a config under
 * a reader.
 */
#ifndef WARD_CORE_H
#define WARD_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "conf/conf.h"
#include "http/http.h"

struct uv_loop_s;
struct store;
struct tsdb;
struct audit;

struct ward_ctx {
	const char *data_dir;     /* absolute path */
	struct store *store;      /* state.db */
	struct audit *audit;      /* audit/ */
	struct http_server *http; /* the API server */
	struct uv_loop_s *loop;   /* the main event loop (timers, signals, children) */
	struct tsdb *tsdb;        /* the time-series store: set by promapi's start, cleared by
				   * its stop, so valid for every module listed after it */
	int64_t start_ms;
	void *internal; /* the daemon's own state */
};

struct ward_module {
	const char *name;
	void (*init)(void);
	int (*start)(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err);
	int (*apply)(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err);
	void (*stop)(struct ward_ctx *ctx);
};
/* The core's own module (sections "server", "log", "storage"; tokens; daemon routes). */
extern const struct ward_module core_module;
/* The registry, NULL-terminated, in start order (src/core/modules.c). */
extern const struct ward_module *const ward_modules[];
/* Calls every module's init() once (idempotent). The CLI calls it too, so that
 * `ward config check` knows every section. */
void ward_modules_init(void);

/* A component of GET /health. fn writes a JSON object (without the "status" member) into
 * details, e.g. {"series":12,"quarantined":0}, and returns 0 when the component is fine or
 * 1 when it is degraded (served, but something needs a person: quarantined data, a full
 * disk). Called on HTTP threads: fn must be thread-safe and cheap. Register from start(). */
typedef int (*ward_health_fn)(void *arg, struct buf *details);
void ward_health_register(const char *component, ward_health_fn fn, void *arg);

/* The config in force; caller drops the reference with conf_unref. */
struct conf *ward_conf_get(struct ward_ctx *ctx);

/* Appends an audit record for an API request: actor, source and request id come from req.
 * details_json may be NULL. Returns 0, or -1 when the record could not be made durable
 * (the caller must then fail the request with 500: an unaudited change is not allowed). */
int ward_audit_req(struct ward_ctx *ctx, const struct http_req *req, const char *action,
		   const char *target, const char *result, const char *details_json);
/* Same for the daemon itself (actor "system", source "local"). */
int ward_audit_system(struct ward_ctx *ctx, const char *action, const char *target,
		      const char *result, const char *details_json);

/* Reloads the config from where it came from (file, or the embedded default). On success
 * the new config is in force; on failure err says why and the old config stays. Both are
 * logged and audited (with req as actor when not NULL). 0 or -1. */
int ward_reload(struct ward_ctx *ctx, const struct http_req *req, struct ward_err *err);

/* Options of `ward serve`. */
struct ward_serve_opts {
	const char *config_path; /* NULL: /etc/ward/ward.yaml if it exists, else embedded */
	const char *listen;      /* overrides server.listen when set */
	const char *data_dir;    /* overrides storage.data_dir when set */
};
/* Runs the daemon until SIGTERM/SIGINT. Returns a process exit code (enum ward_exit). */
int ward_serve(const struct ward_serve_opts *opts);

/* The config file `ward serve` and `ward config check` use when none is given:
 * "/etc/ward/ward.yaml" if it exists, else NULL (the embedded default). */
const char *ward_default_config_path(void);

/* Resolves the data directory the way `ward serve` does: override when set, else the
 * config's storage.data_dir (config_path, or the default config when NULL). Returns a new
 * string (caller frees) or NULL with err. For offline commands (`ward audit verify`). */
char *ward_resolve_data_dir(const char *config_path, const char *override, struct ward_err *err);
/* The audit anchor the daemon keeps in <data_dir>/state.db: the seq and hash of the last
 * record it appended, so that `ward audit verify` also catches records cut from the tail.
 * 0 with *seq = 0 when there is none yet; -1 with err. */
int ward_audit_anchor_read(const char *data_dir, uint64_t *seq, char hash_hex[65],
			   struct ward_err *err);

#endif
