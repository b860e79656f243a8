/* api_system.c: the daemon's own endpoints: /health, /ready, /metrics, whoami, reload.
 *
 * /health and /ready are public and answer without touching the disk beyond cheap
 * queries, so that a load balancer or systemd can poll them often.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/core_internal.h"
#include "security/security.h"
#include "store/store.h"
#include "ward_build.h"

static void send_json(struct http_resp *resp, int status, json_t *j)
{
	/* 15 digits: uptime 80.41, not 80.409999999999997 (these are readings, not data) */
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
	resp->status = status;
	resp->content_type = "application/json";
	buf_puts(&resp->body, s ? s : "{}");
	buf_putc(&resp->body, '\n');
	free(s);
	json_decref(j);
}

json_t *core_json_time(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	char t[32];
	ward_fmt_rfc3339(ms, t);
	return json_string(t);
}

void core_send_data(struct http_resp *resp, int status, json_t *data)
{
	char *s = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	http_resp_json(resp, status, s);
	free(s);
	json_decref(data);
}

#define MAX_HEALTH_COMPONENTS 32

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the table */
static struct {
	const char *name;
	ward_health_fn fn;
	void *arg;
} health_components[MAX_HEALTH_COMPONENTS];
static size_t nhealth;

void ward_health_register(const char *component, ward_health_fn fn, void *arg)
{
	pthread_mutex_lock(&health_lock);
	if (nhealth < MAX_HEALTH_COMPONENTS)
		health_components[nhealth++] = (typeof(health_components[0])){component, fn, arg};
	pthread_mutex_unlock(&health_lock);
}

/* Adds the registered components to comp; clears *ok when one is degraded. */
static void module_health(json_t *comp, bool *ok)
{
	pthread_mutex_lock(&health_lock);
	size_t n = nhealth;
	pthread_mutex_unlock(&health_lock);
	for (size_t i = 0; i < n; i++) {
		struct buf details = BUF_INIT;
		int rc = health_components[i].fn(health_components[i].arg, &details);
		json_t *o = json_loads(buf_cstr(&details), 0, NULL);
		if (!json_is_object(o)) {
			json_decref(o);
			o = json_object();
		}
		json_object_set_new(o, "status", json_string(rc == 0 ? "ok" : "degraded"));
		if (rc != 0)
			*ok = false;
		json_object_set_new(comp, health_components[i].name, o);
		buf_free(&details);
	}
}

static void h_health(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	struct daemon *d = ctx->internal;
	bool ok = true;
	json_t *comp = json_object();

	struct conf *c = ward_conf_get(ctx);
	pthread_mutex_lock(&d->conf_lock);
	int64_t loaded = d->loaded_ms;
	pthread_mutex_unlock(&d->conf_lock);
	json_object_set_new(comp, "config",
			    json_pack("{s:s,s:s,s:o,s:b}", "status", "ok", "source",
				      conf_source(c), "loaded_at", core_json_time(loaded),
				      "last_reload_ok", atomic_load(&d->reload_ok) != 0));
	conf_unref(c);

	int sv = store_schema_version_total(ctx->store);
	if (sv < 0)
		ok = false;
	json_object_set_new(comp, "store",
			    json_pack("{s:s,s:s,s:i,s:I}", "status", sv < 0 ? "error" : "ok",
				      "backend", store_backend_name(ctx->store), "schema_version",
				      sv, "size_bytes", (json_int_t)store_size_bytes(ctx->store)));
	uint64_t seq = 0;
	char hash[2 * WARD_SHA256_LEN + 1];
	audit_head(ctx->audit, &seq, hash);
	json_object_set_new(comp, "audit",
			    json_pack("{s:s,s:I}", "status", "ok", "seq", (json_int_t)seq));
	json_object_set_new(comp, "http",
			    json_pack("{s:s,s:i}", "status", "ok", "inflight",
				      ctx->http ? http_server_inflight(ctx->http) : 0));
	module_health(comp, &ok);
	json_t *j = json_pack("{s:s,s:s,s:s,s:f,s:o}", "status", ok ? "ok" : "degraded",
			      "version", WARD_VERSION_STR, "revision", WARD_REVISION,
			      "uptime_seconds", (double)(ward_now_ms() - ctx->start_ms) / 1000.0,
			      "components", comp);
	/* Degraded is still alive: liveness probes must not restart a server that is
	 * serving with, say, a quarantined block. Only a store that cannot answer is 503. */
	send_json(resp, sv < 0 ? 503 : 200, j);
}

static void h_ready(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	struct daemon *d = ctx->internal;
	if (atomic_load(&d->ready))
		send_json(resp, 200, json_pack("{s:s}", "status", "ready"));
	else
		send_json(resp, 503,
			  json_pack("{s:s,s:s}", "status", "not ready", "reason",
				    "starting up or shutting down"));
}

static void h_metrics(struct http_req *req, struct http_resp *resp, void *arg)
{
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	metric_write_all(&resp->body);
}

static void h_whoami(struct http_req *req, struct http_resp *resp, void *arg)
{
	core_send_data(resp, 200,
		       json_pack("{s:s,s:s,s:s}", "id", req->actor.id, "name", req->actor.name,
				 "role", http_role_name(req->actor.role)));
}

static void h_reload(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	struct ward_err err;
	ward_err_clear(&err);
	if (ward_reload(ctx, req, &err) != 0) {
		http_resp_error(resp, 400, "bad_data", "configuration rejected, the old one stays "
				"in force:\n%s", err.msg);
		return;
	}
	struct daemon *d = ctx->internal;
	struct conf *c = ward_conf_get(ctx);
	pthread_mutex_lock(&d->conf_lock);
	int64_t loaded = d->loaded_ms;
	pthread_mutex_unlock(&d->conf_lock);
	core_send_data(resp, 200,
		       json_pack("{s:s,s:o}", "source", conf_source(c), "loaded_at",
				 core_json_time(loaded)));
	conf_unref(c);
}

void core_api_register(struct ward_ctx *ctx)
{
	http_route("GET", "/health", ROLE_PUBLIC, h_health, ctx);
	http_route("GET", "/ready", ROLE_PUBLIC, h_ready, ctx);
	http_route("GET", "/metrics", ROLE_PUBLIC, h_metrics, ctx);
	http_route("GET", "/api/v1/whoami", ROLE_VIEWER, h_whoami, ctx);
	http_route("POST", "/api/v1/reload", ROLE_ADMIN, h_reload, ctx);
	core_api_tokens_register(ctx);
	core_api_audit_register(ctx);
}
