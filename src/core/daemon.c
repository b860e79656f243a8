/* daemon.c: `ward serve`, from start to exit.
 *
 * Start: load and validate the config (nothing is created before it is valid), open and
 * lock the data directory, open the state store (migrations) and the audit trail, create
 * the first admin token when none is active (printed once), start the modules, then listen.
 * Any failure up to here is one line on stderr and exit 2, with nothing half-written.
 * Run: the main thread sits in the libuv loop for signals (SIGHUP reloads; SIGTERM and
 * SIGINT stop) and module timers; HTTP runs on the server's threads.
 * Stop: not ready, stop accepting, let in-flight requests finish, stop modules in reverse,
 * audit the stop, close the stores, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core/core_internal.h"
#include "security/security.h"
#include "store/store.h"

#define DEFAULT_CONFIG_PATH "/etc/ward/ward.yaml"
#define STOP_GRACE_MS 10000 /* in-flight requests get this long to finish on SIGTERM */
#define MAX_CONFIG_BYTES (4 << 20)

const char *ward_default_config_path(void)
{
	return access(DEFAULT_CONFIG_PATH, F_OK) == 0 ? DEFAULT_CONFIG_PATH : NULL;
}

struct conf *core_load_conf(const char *config_path, struct ward_err *err)
{
	if (config_path)
		return conf_load_file(config_path, err);
	return conf_load_buffer("<embedded default>", conf_embedded_default,
				strlen(conf_embedded_default), err);
}

char *ward_resolve_data_dir(const char *config_path, const char *override, struct ward_err *err)
{
	if (override && *override)
		return ward_strdup(override);
	ward_modules_init();
	struct conf *c = core_load_conf(config_path ? config_path : ward_default_config_path(), err);
	if (!c)
		return NULL;
	char *d = core_data_dir_of(c, NULL);
	conf_unref(c);
	return d;
}

struct conf *ward_conf_get(struct ward_ctx *ctx)
{
	struct daemon *d = ctx->internal;
	pthread_mutex_lock(&d->conf_lock);
	struct conf *c = conf_ref(d->conf);
	pthread_mutex_unlock(&d->conf_lock);
	return c;
}

static char *json_details(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* Notes changes a reload cannot apply while running. */
static void note_restart_needed(const struct conf *old, const struct conf *nc, json_t *list)
{
	const struct http_config *a = conf_section(old, "server");
	const struct http_config *b = conf_section(nc, "server");
	if (a && b) {
		if (!ward_streq(a->listen, b->listen))
			json_array_append_new(list, json_string("server.listen"));
		if (!ward_streq(a->tls_cert_file, b->tls_cert_file) ||
		    !ward_streq(a->tls_key_file, b->tls_key_file))
			json_array_append_new(list, json_string("server.tls"));
		if (a->threads != b->threads ||
		    a->limits.max_connections != b->limits.max_connections ||
		    a->limits.max_connections_per_client != b->limits.max_connections_per_client ||
		    a->limits.connection_timeout_ms != b->limits.connection_timeout_ms ||
		    a->limits.max_header_bytes != b->limits.max_header_bytes)
			json_array_append_new(list, json_string("server.threads/connection limits"));
	}
	char *da = core_data_dir_of(old, NULL), *db = core_data_dir_of(nc, NULL);
	if (strcmp(da, db) != 0)
		json_array_append_new(list, json_string("storage.data_dir"));
	free(da);
	free(db);
}

int ward_reload(struct ward_ctx *ctx, const struct http_req *req, struct ward_err *err)
{
	struct daemon *d = ctx->internal;
	static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER; /* one reload at a time */
	pthread_mutex_lock(&reload_lock);
	const char *src = d->config_path ? d->config_path : "<embedded default>";
	struct conf *nc = core_load_conf(d->config_path, err);
	int rc = -1;
	if (nc) {
		for (size_t i = 0; ward_modules[i]; i++) {
			const struct ward_module *m = ward_modules[i];
			if (m->apply && m->apply(ctx, nc, err) != 0) {
				conf_unref(nc);
				nc = NULL;
				break;
			}
		}
	}
	if (!nc) {
		ward_log(LOG_WARN, "configuration rejected; the old one stays in force", "source",
			 src, "error", err->msg, NULL);
		char *det = json_details(json_pack("{s:s,s:s}", "source", src, "errors", err->msg));
		if (req)
			ward_audit_req(ctx, req, "config.reload", src, "rejected", det);
		else
			ward_audit_system(ctx, "config.reload", src, "rejected", det);
		free(det);
		atomic_store(&d->reload_ok, 0);
		goto out;
	}
	json_t *restart = json_array();
	pthread_mutex_lock(&d->conf_lock);
	note_restart_needed(d->conf, nc, restart);
	struct conf *old = d->conf;
	d->conf = nc;
	d->loaded_ms = ward_now_ms();
	pthread_mutex_unlock(&d->conf_lock);
	conf_unref(old);
	atomic_store(&d->reload_ok, 1);
	atomic_store(&d->reload_ok_ms, ward_now_ms());
	if (json_array_size(restart) > 0) {
		char *r = json_dumps(restart, JSON_COMPACT);
		ward_log(LOG_WARN, "configuration reloaded; some changes take effect at restart",
			 "settings", r, NULL);
		free(r);
	} else {
		ward_log(LOG_INFO, "configuration reloaded", "source", src, NULL);
	}
	char *det = json_details(json_pack("{s:s,s:o}", "source", src, "restart_required", restart));
	if (req)
		rc = ward_audit_req(ctx, req, "config.reload", src, "ok", det);
	else
		rc = ward_audit_system(ctx, "config.reload", src, "ok", det);
	free(det);
	if (rc != 0)
		ward_err_set(err, "configuration reloaded, but the audit trail could not be written");
out:
	pthread_mutex_unlock(&reload_lock);
	return rc;
}

/* ---- hooks from the HTTP server ---- */

static void on_auth_failed(void *arg, const struct http_req *req, const char *reason)
{
	struct ward_ctx *ctx = arg;
	ward_log(LOG_WARN, "authentication failed", "request_id", req->request_id, "client",
		 req->client, "method", req->method, "path", req->path, "reason", reason,
		 "actor", req->actor.name, NULL);
	char *det = json_details(json_pack("{s:s,s:s,s:s}", "reason", reason, "method",
					   req->method, "path", req->path));
	ward_audit_req(ctx, req, "auth.fail", req->path, "denied", det);
	free(det);
}

static void on_request_done(void *arg, const struct http_req *req, int status, double secs)
{
	char st[16], ms[32];
	snprintf(st, sizeof(st), "%d", status);
	snprintf(ms, sizeof(ms), "%.3f", secs * 1000.0);
	/* Probes poll these often; keep them out of the info log unless they fail. */
	bool quiet = status < 400 && (strcmp(req->path, "/health") == 0 ||
				      strcmp(req->path, "/ready") == 0 ||
				      strcmp(req->path, "/metrics") == 0);
	ward_log(quiet ? LOG_DEBUG : LOG_INFO, "request", "request_id", req->request_id,
		 "client", req->client, "method", req->method, "path", req->path, "status", st,
		 "duration_ms", ms, "actor", req->actor.name, NULL);
}

/* ---- signals ---- */

static void on_sighup(uv_signal_t *h, int signum)
{
	struct ward_ctx *ctx = h->data;
	struct ward_err err;
	ward_err_clear(&err);
	ward_log(LOG_INFO, "SIGHUP: reloading the configuration", NULL);
	(void)ward_reload(ctx, NULL, &err);
}

static void on_sigstop(uv_signal_t *h, int signum)
{
	ward_log(LOG_INFO, "stopping", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
	uv_stop(h->loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* ---- start-up ---- */

static int open_data_dir(const char *dir, int *lock_fd, struct ward_err *err)
{
	if (ward_mkdir_p(dir, 0700, err) != 0)
		return -1;
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/ward.lock", dir);
	int fd = open(buf_cstr(&p), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	buf_free(&p);
	if (fd < 0) {
		ward_err_set(err, "%s: cannot write in the data directory: %s; fix its permissions "
			     "or set storage.data_dir (--data)", dir, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		ward_err_set(err, "%s: another ward serve is using this data directory; stop it "
			     "or use another --data", dir);
		return -1;
	}
	*lock_fd = fd;
	return 0;
}

static int bootstrap_admin(struct ward_ctx *ctx, struct ward_err *err)
{
	int n = http_token_count_active(ctx->store);
	if (n < 0) {
		ward_err_set(err, "cannot read the token table from state.db");
		return -1;
	}
	if (n > 0)
		return 0;
	char secret[80];
	struct http_token t;
	if (http_token_create(ctx->store, "admin", ROLE_ADMIN, "system", secret, &t, err) != 0)
		return -1;
	char *det = json_details(json_pack("{s:s,s:s,s:s}", "name", "admin", "role", "admin",
					   "reason", "first start: no active token"));
	int rc = ward_audit_system(ctx, "token.create", t.id, "ok", det);
	free(det);
	http_token_free(&t);
	if (rc != 0) {
		ward_err_set(err, "cannot write the audit trail");
		return -1;
	}
	/* stdout, not the log: the log never carries a secret. */
	printf("ward: created the first admin token (shown only this once; store it now):\n"
	       "%s\n",
	       secret);
	fflush(stdout);
	memset(secret, 0, sizeof(secret));
	return 0;
}

static void fail_line(const char *what, const struct ward_err *err)
{
	fprintf(stderr, "ward serve: %s%s%s\n", what, *what ? ": " : "", err->msg);
}

int ward_serve(const struct ward_serve_opts *opts)
{
	struct daemon d = {.lock_fd = -1};
	struct ward_ctx ctx = {.internal = &d};
	struct ward_err err;
	ward_err_clear(&err);
	int code = WARD_EXIT_USAGE;
	uv_loop_t loop;
	bool loop_open = false;
	char *data_dir = NULL;
	struct buf path = BUF_INIT;
	struct conf *c = NULL;
	size_t started = 0;
	bool serving = false;

	signal(SIGPIPE, SIG_IGN);
	if (ward_crypto_init() != 0) {
		fprintf(stderr, "ward serve: libsodium failed to initialise\n");
		return WARD_EXIT_INTERNAL;
	}
	log_setup(LOG_INFO, LOG_FORMAT_AUTO, 2);
	ward_modules_init();
	pthread_mutex_init(&d.conf_lock, NULL);
	d.opts = *opts;
	ctx.start_ms = ward_now_ms();

	const char *cp = opts->config_path ? opts->config_path : ward_default_config_path();
	d.config_path = cp ? ward_strdup(cp) : NULL;
	c = core_load_conf(d.config_path, &err);
	if (!c) {
		fprintf(stderr, "ward serve: invalid configuration, nothing was started:\n%s\n",
			err.msg);
		goto out;
	}
	core_apply_log(c);
	d.conf = c;
	d.loaded_ms = ward_now_ms();
	atomic_store(&d.reload_ok, 1);
	atomic_store(&d.reload_ok_ms, d.loaded_ms);

	/* Bind first: a taken address must fail before anything is written. */
	struct http_config hc = *(const struct http_config *)conf_section(c, "server");
	if (opts->listen)
		hc.listen = (char *)opts->listen;
	ctx.http = http_server_bind(&hc, &err);
	if (!ctx.http) {
		fail_line("", &err);
		goto out;
	}

	data_dir = core_data_dir_of(c, opts->data_dir);
	if (open_data_dir(data_dir, &d.lock_fd, &err) != 0) {
		fail_line("", &err);
		goto out;
	}
	char abs[PATH_MAX];
	if (realpath(data_dir, abs)) {
		free(data_dir);
		data_dir = ward_strdup(abs);
	}
	ctx.data_dir = data_dir;

	buf_printf(&path, "%s/state.db", data_dir);
	ctx.store = store_open(buf_cstr(&path), false, &err);
	if (!ctx.store) {
		fail_line("state store", &err);
		goto out;
	}
	buf_reset(&path);
	buf_printf(&path, "%s/audit", data_dir);
	ctx.audit = audit_open(buf_cstr(&path), &err);
	if (!ctx.audit) {
		fail_line("audit trail", &err);
		goto out;
	}
	if (bootstrap_admin(&ctx, &err) != 0) {
		fail_line("first admin token", &err);
		goto out;
	}
	/* The start is on the trail before anything the modules do at start. */
	char *det = json_details(json_pack("{s:s,s:s,s:s}", "listen", hc.listen, "data_dir",
					   data_dir, "config", conf_source(c)));
	ward_audit_system(&ctx, "system.start", "ward", "ok", det);
	free(det);

	if (uv_loop_init(&loop) != 0) {
		fprintf(stderr, "ward serve: cannot create the event loop\n");
		code = WARD_EXIT_INTERNAL;
		goto out;
	}
	loop_open = true;
	ctx.loop = &loop;

	for (; ward_modules[started]; started++) {
		const struct ward_module *m = ward_modules[started];
		if (m->start && m->start(&ctx, c, &err) != 0) {
			fprintf(stderr, "ward serve: module %s: %s\n", m->name, err.msg);
			goto out;
		}
	}

	struct http_hooks hooks = {.auth_failed = on_auth_failed,
				   .request_done = on_request_done,
				   .arg = &ctx};
	if (http_server_serve(ctx.http, ctx.store, &hooks, &err) != 0) {
		fail_line("", &err);
		goto out;
	}
	serving = true;

	/* Log the address actually bound (port 0 in the config picks a free one). */
	char port[16], bound[300];
	snprintf(port, sizeof(port), "%d", http_server_port(ctx.http));
	const char *colon = strrchr(hc.listen, ':');
	snprintf(bound, sizeof(bound), "%.*s:%s", colon ? (int)(colon - hc.listen) : 0, hc.listen,
		 port);
	atomic_store(&d.ready, true);
	ward_log(LOG_INFO, "listening", "addr", bound, "port", port, "data_dir", data_dir,
		 "config", conf_source(c), "tls", hc.tls_cert_file ? "on" : "off", NULL);

	uv_signal_t s_hup, s_term, s_int;
	uv_signal_init(&loop, &s_hup);
	uv_signal_init(&loop, &s_term);
	uv_signal_init(&loop, &s_int);
	s_hup.data = s_term.data = s_int.data = &ctx;
	uv_signal_start(&s_hup, on_sighup, SIGHUP);
	uv_signal_start(&s_term, on_sigstop, SIGTERM);
	uv_signal_start(&s_int, on_sigstop, SIGINT);

	uv_run(&loop, UV_RUN_DEFAULT);

	atomic_store(&d.ready, false);
	http_server_stop(ctx.http, STOP_GRACE_MS);
	ctx.http = NULL;
	serving = false;
	code = WARD_EXIT_OK;
out:
	while (started > 0) {
		const struct ward_module *m = ward_modules[--started];
		if (m->stop)
			m->stop(&ctx);
	}
	if (ctx.http && serving)
		http_server_stop(ctx.http, 0);
	else if (ctx.http)
		http_server_discard(ctx.http);
	if (ctx.audit) {
		if (code == WARD_EXIT_OK)
			ward_audit_system(&ctx, "system.stop", "ward", "ok", NULL);
		audit_close(ctx.audit);
	}
	store_close(ctx.store);
	if (loop_open) {
		uv_walk(&loop, close_walk, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
	}
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	if (code == WARD_EXIT_OK)
		ward_log(LOG_INFO, "stopped", NULL);
	conf_unref(d.conf);
	free(d.config_path);
	free(data_dir);
	buf_free(&path);
	pthread_mutex_destroy(&d.conf_lock);
	return code;
}
