/* server.c: the API server on libmicrohttpd.
 *
 * Per request, in this order: rate limit and declared body size (refused before the body
 * is read), body accumulation up to max_body, routing (404/405), authentication (401) and
 * role (403), parameter decoding, the handler, the response. Every request gets a random
 * request id, sent back as X-Request-Id and passed to the hooks (logs, audit).
 *
 * Threads: MHD's thread pool runs handlers (each pool thread polls many connections with
 * epoll); the limits are read under lim_lock; counters are atomics. Streamed responses
 * (stream.c) never block a pool thread: an idle stream's connection is suspended and
 * resumed by a ticker. A stream is logged and counted once, at 200, when it starts.
 * Graceful stop: quiesce (no new connections), end every stream, wait for in-flight requests
 * (counted from the first callback of a request to MHD's completion notice), then stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http_internal.h"

#define MAX_TLS_FILE_BYTES (1 << 20)
#define STOP_POLL_MS 10

struct http_server {
	struct MHD_Daemon *d;
	int listen_fd; /* ours until MHD_quiesce_daemon hands it back */
	int port;
	struct store *store;
	struct http_hooks hooks;
	pthread_mutex_t lim_lock; /* guards lim */
	struct http_limits lim;
	struct ratelimit *rl;
	atomic_int inflight;
	char *tls_cert, *tls_key; /* PEM text; MHD reads it until stop */
	char *listen;
	unsigned threads;
	struct http_streams *streams; /* from serve on */
};

struct req_state {
	struct http_req req;
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct buf body;
	bool too_large;
	bool answered; /* a response was queued on the first call */
	int64_t start_ns;
	char reqid[17];
	char client[INET6_ADDRSTRLEN];
	char *path;
	struct http_stream *stream; /* set by http_resp_stream; sent or discarded by dispatch */
};

static struct metric *m_requests, *m_duration, *m_authfail, *m_ratelimited;
static const double duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
					  0.05,	  0.1,	 0.25,	 0.5,	1,     2.5, 5, 10};

static double inflight_fn(void *arg)
{
	struct http_server *s = arg;
	return (double)atomic_load(&s->inflight);
}

static double streams_fn(void *arg)
{
	struct http_server *s = arg;
	return (double)http_streams_open(s->streams);
}

static void register_metrics(void)
{
	static const char *const req_labels[] = {"route", "method", "code", NULL};
	static const char *const route_label[] = {"route", NULL};
	static const char *const reason_label[] = {"reason", NULL};
	m_requests = metric_register("ward_http_requests_total",
				     "API requests by route, method and status code.", METRIC_COUNTER,
				     req_labels, NULL, 0);
	m_duration = metric_register("ward_http_request_duration_seconds",
				     "Time to answer an API request.", METRIC_HISTOGRAM, route_label,
				     duration_buckets,
				     sizeof(duration_buckets) / sizeof(duration_buckets[0]));
	m_authfail = metric_register("ward_http_auth_failures_total",
				     "Requests refused for a missing, invalid or revoked token, or "
				     "a role too low.",
				     METRIC_COUNTER, reason_label, NULL, 0);
	static const char *const reasons[] = {"missing_token", "invalid_token", "revoked_token",
					      "forbidden"};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		const char *v[] = {reasons[i]};
		metric_add(m_authfail, v, 0);
	}
	m_ratelimited = metric_register("ward_http_rate_limited_total",
					"Requests refused with 429 by the per-client rate limit.",
					METRIC_COUNTER, NULL, NULL, 0);
	metric_add(m_ratelimited, NULL, 0);
}

const char *http_header(const struct http_req *r, const char *name)
{
	const struct req_state *rs = r->internal;
	return MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, name);
}

static void client_addr(struct MHD_Connection *c, char *out, size_t cap)
{
	snprintf(out, cap, "unknown");
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  (socklen_t)cap);
}

static void get_limits(struct http_server *s, struct http_limits *out)
{
	pthread_mutex_lock(&s->lim_lock);
	*out = s->lim;
	pthread_mutex_unlock(&s->lim_lock);
}

void http_resp_stream(struct http_req *req, struct http_resp *resp, const char *content_type,
		      http_stream_produce_fn produce, http_stream_free_fn free_fn, void *arg)
{
	struct req_state *rs = req->internal;
	http_stream_discard(rs->stream); /* a handler that streams twice keeps the last */
	rs->stream = http_stream_new(produce, free_fn, arg);
	resp->status = 200;
	resp->content_type = content_type;
}

/* Sends resp; the body is copied by MHD, or produced by stream (taken) when not NULL. */
static enum MHD_Result send_resp(struct req_state *rs, struct http_resp *resp,
				 struct http_stream *stream)
{
	struct MHD_Response *r;
	if (stream)
		r = http_stream_response(stream, rs->srv->streams, rs->conn);
	else
		r = MHD_create_response_from_buffer(resp->body.len,
						    resp->body.data ? resp->body.data : (char *)"",
						    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
				resp->content_type ? resp->content_type : "application/json");
	MHD_add_response_header(r, "X-Request-Id", rs->reqid);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	/* extra headers: "Name: value\r\n" lines */
	const char *p = resp->headers.data;
	const char *end = p ? p + resp->headers.len : NULL;
	while (p && p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol)
			break;
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (colon) {
			char *name = ward_strndup(p, (size_t)(colon - p));
			const char *v = colon + 1;
			while (v < eol && *v == ' ')
				v++;
			char *val = ward_strndup(v, (size_t)(eol - v));
			MHD_add_response_header(r, name, val);
			free(name);
			free(val);
		}
		p = eol + 2;
	}
	enum MHD_Result ret = MHD_queue_response(rs->conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void record(struct req_state *rs, const char *route, int status)
{
	char code[8];
	snprintf(code, sizeof(code), "%d", status);
	const char *v[] = {route, rs->req.method, code};
	metric_add(m_requests, v, 1);
	double secs = (double)(ward_mono_ns() - rs->start_ns) / 1e9;
	const char *rv[] = {route};
	metric_observe(m_duration, rv, secs);
	if (rs->srv->hooks.request_done)
		rs->srv->hooks.request_done(rs->srv->hooks.arg, &rs->req, status, secs);
}

static enum MHD_Result answer_error(struct req_state *rs, const char *route, int status,
				    const char *type, const char *extra_header,
				    const char *extra_value, const char *msg)
{
	struct http_resp resp = {.status = status};
	http_resp_error(&resp, status, type, "%s", msg);
	if (extra_header)
		http_resp_header(&resp, extra_header, extra_value);
	enum MHD_Result ret = send_resp(rs, &resp, NULL);
	buf_free(&resp.body);
	buf_free(&resp.headers);
	record(rs, route, status);
	return ret;
}

static void auth_failed(struct req_state *rs, const char *reason)
{
	const char *v[] = {reason};
	metric_add(m_authfail, v, 1);
	if (rs->srv->hooks.auth_failed)
		rs->srv->hooks.auth_failed(rs->srv->hooks.arg, &rs->req, reason);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   size_t key_size, const char *value, size_t value_size)
{
	struct req_state *rs = cls;
	struct http_req *r = &rs->req;
	r->params = ward_xrealloc(r->params, (r->nparams + 1) * sizeof(*r->params));
	r->params[r->nparams].name = ward_strndup(key, key_size);
	r->params[r->nparams].value = value ? ward_strndup(value, value_size) : ward_strdup("");
	r->nparams++;
	return MHD_YES;
}

/* The final callback of a request: route, authenticate, dispatch. */
static enum MHD_Result dispatch(struct req_state *rs)
{
	struct http_server *s = rs->srv;
	struct http_req *req = &rs->req;
	struct http_route_entry route;
	size_t tail = 0;
	int rc = http_router_find(req->method, req->path, &route, &tail);
	if (rc == 404)
		return answer_error(rs, "unmatched", 404, "not_found", NULL, NULL,
				    "no such endpoint; see docs/api.md for the API");
	if (rc == 405)
		return answer_error(rs, "unmatched", 405, "method_not_allowed", NULL, NULL,
				    "method not allowed on this endpoint; see docs/api.md");
	char route_label[256];
	snprintf(route_label, sizeof(route_label), "%s%s", route.path, route.prefix ? "*" : "");
	req->path_tail = req->path + tail;

	snprintf(req->actor.id, sizeof(req->actor.id), "-");
	snprintf(req->actor.name, sizeof(req->actor.name), "anonymous");
	req->actor.role = ROLE_PUBLIC;
	if (route.min_role > ROLE_PUBLIC) {
		const char *auth = MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND,
							       "Authorization");
		if (!auth || !*auth) {
			auth_failed(rs, "missing_token");
			return answer_error(rs, route_label, 401, "unauthorized",
					    "WWW-Authenticate", "Bearer realm=\"ward\"",
					    "this endpoint needs a token: send 'Authorization: "
					    "Bearer <token>' (ward CLI: --token or WARD_TOKEN)");
		}
		const char *tok = NULL;
		if (strncasecmp(auth, "Bearer ", 7) == 0) {
			tok = auth + 7;
			while (*tok == ' ')
				tok++;
		}
		struct ward_err err;
		ward_err_clear(&err);
		int trc = tok ? http_token_check(s->store, tok, &req->actor, &err) : 1;
		if (trc < 0) {
			ward_log(LOG_ERROR, "token lookup failed", "error", err.msg, "request_id",
				 rs->reqid, NULL);
			return answer_error(rs, route_label, 500, "internal", NULL, NULL,
					    "token lookup failed; see the server log");
		}
		if (trc > 0) {
			auth_failed(rs, trc == 2 ? "revoked_token" : "invalid_token");
			return answer_error(rs, route_label, 401, "unauthorized",
					    "WWW-Authenticate",
					    "Bearer realm=\"ward\", error=\"invalid_token\"",
					    trc == 2 ? "this token has been revoked; ask an admin "
						       "for a new one (ward token create)"
						     : "invalid token; check --token or WARD_TOKEN");
		}
		if (req->actor.role < route.min_role) {
			auth_failed(rs, "forbidden");
			char msg[200];
			snprintf(msg, sizeof(msg),
				 "this endpoint needs the %s role; token \"%s\" has %s",
				 http_role_name(route.min_role), req->actor.name,
				 http_role_name(req->actor.role));
			return answer_error(rs, route_label, 403, "forbidden", NULL, NULL, msg);
		}
	}

	MHD_get_connection_values_n(rs->conn, MHD_GET_ARGUMENT_KIND, collect_arg, rs);
	const char *ct = MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, "Content-Type");
	if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
		http_parse_urlencoded(rs->body.data ? rs->body.data : "", rs->body.len, &req->params,
				      &req->nparams);
	req->body = buf_cstr(&rs->body);
	req->body_len = rs->body.len;

	struct http_resp resp = {.status = 200};
	route.handler(req, &resp, route.arg);
	if (resp.status == 0)
		resp.status = 200;
	struct http_stream *stream = rs->stream;
	rs->stream = NULL;
	if (stream && resp.status != 200) { /* the handler changed its mind: an error */
		http_stream_discard(stream);
		stream = NULL;
	}
	enum MHD_Result ret = send_resp(rs, &resp, stream);
	record(rs, route_label, resp.status);
	buf_free(&resp.body);
	buf_free(&resp.headers);
	return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct req_state *rs = *con_cls;
	struct http_limits lim;
	if (!rs) {
		rs = ward_xcalloc(1, sizeof(*rs));
		*con_cls = rs;
		atomic_fetch_add(&s->inflight, 1);
		rs->srv = s;
		rs->conn = conn;
		rs->start_ns = ward_mono_ns();
		uint8_t rnd[8];
		ward_random_bytes(rnd, sizeof(rnd));
		ward_hex(rnd, sizeof(rnd), rs->reqid);
		client_addr(conn, rs->client, sizeof(rs->client));
		rs->path = ward_strdup(url);
		rs->req.method = method;
		rs->req.path = rs->path;
		rs->req.client = rs->client;
		rs->req.request_id = rs->reqid;
		rs->req.internal = rs;
		snprintf(rs->req.actor.id, sizeof(rs->req.actor.id), "-");
		snprintf(rs->req.actor.name, sizeof(rs->req.actor.name), "anonymous");

		get_limits(s, &lim);
		int retry = 1;
		if (!ratelimit_take(s->rl, rs->client, lim.rate_per_client, (double)lim.burst,
				    ward_now_ms(), &retry)) {
			metric_add(m_ratelimited, NULL, 1);
			char rv[16];
			snprintf(rv, sizeof(rv), "%d", retry);
			rs->answered = true;
			return answer_error(rs, "limited", 429, "too_many_requests", "Retry-After", rv,
					    "too many requests from this address; retry after the "
					    "Retry-After seconds or raise server.limits.rate_per_client");
		}
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     "Content-Length");
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(cl, &end, 10);
			if (errno || *end || n > (unsigned long long)lim.max_body_bytes) {
				rs->answered = true;
				return answer_error(rs, "limited", 413, "too_large", NULL, NULL,
						    "request body too large; the limit is "
						    "server.limits.max_body");
			}
		}
		return MHD_YES;
	}
	if (rs->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		get_limits(s, &lim);
		if (!rs->too_large) {
			if (rs->body.len + *upload_data_size > (size_t)lim.max_body_bytes) {
				rs->too_large = true;
				buf_free(&rs->body);
			} else {
				buf_append(&rs->body, upload_data, *upload_data_size);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	rs->answered = true;
	if (rs->too_large)
		return answer_error(rs, "limited", 413, "too_large", NULL, NULL,
				    "request body too large; the limit is server.limits.max_body");
	return dispatch(rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct req_state *rs = *con_cls;
	if (!rs)
		return;
	for (size_t i = 0; i < rs->req.nparams; i++) {
		free(rs->req.params[i].name);
		free(rs->req.params[i].value);
	}
	free(rs->req.params);
	http_stream_discard(rs->stream);
	buf_free(&rs->body);
	free(rs->path);
	free(rs);
	*con_cls = NULL;
	atomic_fetch_sub(&s->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	ward_log(LOG_DEBUG, "http server", "detail", msg, NULL);
}

/* Frees what bind and serve set up (not the MHD daemon). */
static void server_free(struct http_server *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	ratelimit_free(s->rl);
	http_streams_free(s->streams);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->listen);
	pthread_mutex_destroy(&s->lim_lock);
	free(s);
}

struct http_server *http_server_bind(const struct http_config *cfg, struct ward_err *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);

	struct http_server *s = ward_xcalloc(1, sizeof(*s));
	s->lim = cfg->limits;
	s->threads = cfg->threads > 0 ? (unsigned)cfg->threads : 4;
	pthread_mutex_init(&s->lim_lock, NULL);
	s->rl = ratelimit_new();
	s->listen_fd = -1;
	s->listen = ward_strdup(cfg->listen ? cfg->listen : "127.0.0.1:9797");
	if (cfg->tls_cert_file) {
		size_t n;
		if (ward_read_file(cfg->tls_cert_file, MAX_TLS_FILE_BYTES, &s->tls_cert, &n, err) !=
			    0 ||
		    ward_read_file(cfg->tls_key_file, MAX_TLS_FILE_BYTES, &s->tls_key, &n, err) != 0)
			goto fail;
	}
	s->listen_fd = http_listen_socket(s->listen, &s->port, err);
	if (s->listen_fd < 0)
		goto fail;
	return s;
fail:
	server_free(s);
	return NULL;
}

void http_server_discard(struct http_server *s)
{
	if (s)
		server_free(s);
}

int http_server_serve(struct http_server *s, struct store *store, const struct http_hooks *hooks,
		      struct ward_err *err)
{
	s->store = store;
	if (hooks)
		s->hooks = *hooks;
	/* Suspend/resume parks idle streams without holding a pool thread (stream.c). */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;
#ifdef __linux__
	flags |= MHD_USE_EPOLL;
#endif
	if (s->tls_cert)
		flags |= MHD_USE_TLS;
	unsigned timeout_s = (unsigned)((s->lim.connection_timeout_ms + 999) / 1000);
	struct MHD_OptionItem opts[16];
	int no = 0;
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->threads, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
					     (intptr_t)s->lim.max_header_bytes, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
					     (intptr_t)s->lim.max_connections, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
					     (intptr_t)s->lim.max_connections_per_client, NULL};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed,
					     s};
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
	if (s->tls_cert) {
		opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
		opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
	}
	opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	s->streams = http_streams_new();
	if (!s->streams) {
		ward_err_set(err, "%s: cannot start the HTTP stream ticker thread (out of threads?)",
			     s->listen);
		return -1;
	}
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	if (!s->d) {
		ward_err_set(err,
			     "%s: the HTTP server did not start (bad TLS certificate or key, or "
			     "too many threads?); run with log.level debug for details",
			     s->listen);
		return -1;
	}
	metric_register_fn("ward_http_inflight_requests", "API requests being answered now.",
			   METRIC_GAUGE, inflight_fn, s);
	metric_register_fn("ward_http_streams_open",
			   "Streamed API responses (live log tails) open now.", METRIC_GAUGE,
			   streams_fn, s);
	return 0;
}

struct http_server *http_server_start(const struct http_config *cfg, struct store *store,
				      const struct http_hooks *hooks, struct ward_err *err)
{
	struct http_server *s = http_server_bind(cfg, err);
	if (s && http_server_serve(s, store, hooks, err) != 0) {
		server_free(s);
		return NULL;
	}
	return s;
}

void http_server_set_limits(struct http_server *s, const struct http_limits *limits)
{
	pthread_mutex_lock(&s->lim_lock);
	s->lim = *limits;
	pthread_mutex_unlock(&s->lim_lock);
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

int http_server_inflight(const struct http_server *s)
{
	return atomic_load(&((struct http_server *)s)->inflight);
}

int http_server_streams(const struct http_server *s)
{
	return http_streams_open(s->streams);
}

void http_server_stop(struct http_server *s, int64_t grace_ms)
{
	if (!s)
		return;
	MHD_socket fd = MHD_quiesce_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	/* Streams never finish on their own: end them now, so they leave in-flight promptly. */
	http_streams_shutdown(s->streams);
	int64_t deadline = ward_mono_ms() + grace_ms;
	while (atomic_load(&s->inflight) > 0 && ward_mono_ms() < deadline) {
		struct timespec ts = {0, STOP_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	int left = atomic_load(&s->inflight);
	if (left > 0) {
		char n[16];
		snprintf(n, sizeof(n), "%d", left);
		ward_log(LOG_WARN, "stopping with requests still in flight", "inflight", n, NULL);
	}
	MHD_stop_daemon(s->d);
	s->listen_fd = -1; /* closed above, after quiesce handed it back */
	server_free(s);
}
