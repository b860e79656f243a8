/* core_internal.h: the daemon's own state, shared by the files of src/core.
 *
 * One struct daemon per `ward serve`, reached through ctx->internal. The current config is
 * guarded by conf_lock and swapped whole on reload; `ready` flips once everything is open
 * and back when shutdown starts.
 */
#ifndef WARD_CORE_INTERNAL_H
#define WARD_CORE_INTERNAL_H

#include <pthread.h>
#include <jansson.h>
#include <stdatomic.h>

#include "core/core.h"

/* The "log" and "storage" sections. */
struct core_log_conf {
	int level;  /* enum log_level */
	int format; /* enum log_format */
};
struct core_storage_conf {
	char *data_dir; /* NULL: $WARD_DATA or ./ward-data */
};
void core_register_config(void);
/* The data dir a config names (override wins), before making it absolute. New string. */
char *core_data_dir_of(const struct conf *c, const char *override);
void core_apply_log(const struct conf *c);

struct daemon {
	pthread_mutex_t conf_lock; /* guards conf, loaded_ms */
	struct conf *conf;
	int64_t loaded_ms;
	char *config_path; /* NULL: the embedded default */
	atomic_bool ready;
	atomic_int reload_ok; /* last reload: 1 ok, 0 rejected */
	atomic_llong reload_ok_ms;
	struct ward_serve_opts opts;
	int lock_fd;
};

/* Loads the config from where the daemon's came from. NULL with err. */
struct conf *core_load_conf(const char *config_path, struct ward_err *err);
/* Applies command-line overrides (listen) to the http config of c, in place on a copy. */

/* Sends {"status":"success","data":data}; takes data's reference. */
void core_send_data(struct http_resp *resp, int status, json_t *data);
/* RFC 3339 string for ms, or JSON null when ms <= 0. New reference. */
json_t *core_json_time(int64_t ms);
void core_api_tokens_register(struct ward_ctx *ctx);
void core_api_audit_register(struct ward_ctx *ctx);

/* API routes of the core (health, ready, metrics, tokens, audit, reload, whoami). */
void core_api_register(struct ward_ctx *ctx);
/* ward's own process metrics (CPU, RSS, fds, start time, build info, store sizes). */
void core_selfmetrics_register(struct ward_ctx *ctx);
/* Audit anchor in state.db (component "core"). */
void core_anchor_register(void);
void core_anchor_update(struct ward_ctx *ctx);

#endif
