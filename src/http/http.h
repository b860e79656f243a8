/* http.h: the one public header of src/http: ward's HTTP API server, its router, bearer
 * token authentication with roles, and request limits.
 *
 * Modules add routes through http_route() (a registry; the server does not know them by
 * name). Every route declares the least role it needs; ROLE_PUBLIC routes (/health,
 * /ready) need no token. The server authenticates before dispatch: no or unknown token ->
 * 401, role too low -> 403; both are counted in ward_http_auth_failures_total{reason} and
 * reported through the auth-failure hook (the daemon audits them).
 *
 * Tokens: "ward_" + 16 hex (the public id) + 48 hex (the secret). Only the SHA-256 of the
 * whole token is stored; lookup is by id, then the hashes are compared in constant time.
 *
 * Threads: handlers run on the server's worker threads and must be thread-safe. A handler
 * fills struct http_resp and returns; the server sends it. Request memory (params, body)
 * is valid until the handler returns.
 */
#ifndef WARD_HTTP_H
#define WARD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct store;

enum http_role { ROLE_PUBLIC = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };
const char *http_role_name(enum http_role r); /* "public" "viewer" "operator" "admin" */
int http_role_parse(const char *s, enum http_role *out); /* viewer/operator/admin; 0 or -1 */

/* Who made a request: the token's id, name and role, or id "-" name "anonymous" on public
 * routes without a token. */
struct http_actor {
	char id[17];
	char name[128];
	enum http_role role;
};

struct http_param {
	char *name;
	char *value;
};

struct http_req {
	const char *method;     /* "GET", "POST", ... */
	const char *path;       /* decoded path, without the query string */
	const char *client;     /* client address as text ("127.0.0.1") */
	const char *request_id; /* unique per request; also sent back as X-Request-Id */
	struct http_actor actor;
	const char *body; /* raw body (NUL-terminated for convenience), body_len bytes */
	size_t body_len;
	/* Query-string parameters followed by application/x-www-form-urlencoded body params,
	 * in order (a name may repeat, as match[] does in the Prometheus API). */
	struct http_param *params;
	size_t nparams;
	const char *path_tail; /* for prefix routes: what follows the prefix */
	void *internal;        /* the server's; do not touch */
};
/* The first value of a parameter, or NULL. */
const char *http_param(const struct http_req *r, const char *name);
/* A request header (case-insensitive name), or NULL. */
const char *http_header(const struct http_req *r, const char *name);

struct http_resp {
	int status;               /* 200 unless set */
	const char *content_type; /* "application/json" unless set; must be a static string */
	struct buf body;
	struct buf headers; /* extra "Name: value\r\n" lines */
};
void http_resp_header(struct http_resp *resp, const char *name, const char *value);
/* The API envelope, as Prometheus writes it:
 *   {"status":"success","data":<data_json>}
 *   {"status":"error","errorType":"bad_data","error":"..."} */
void http_resp_json(struct http_resp *resp, int status, const char *data_json);
void http_resp_error(struct http_resp *resp, int status, const char *error_type, const char *fmt,
		     ...) WARD_PRINTF(4, 5);

/* ---- streamed responses ----
 * A handler may answer with a body of unknown length that it produces over time (a live
 * tail): it calls http_resp_stream() and returns. When resp->status is then 200 the server
 * sends the status and headers (resp->headers too) at once and the body with chunked
 * transfer encoding; any other status sends resp's body as usual and drops the stream (its
 * free_fn is called). The request is logged, audited and counted once, at 200, when the
 * stream starts; it stays in http_server_inflight() until it ends.
 *
 * produce(arg, out) runs on a server thread whenever the connection can take more bytes. It
 * must not block: it appends what is ready (at most HTTP_STREAM_MAX_APPEND bytes per call,
 * which bounds the memory of a stream) and returns HTTP_STREAM_MORE, or HTTP_STREAM_END
 * after the last bytes. When it appended nothing, the connection is parked (MHD suspend,
 * holding no thread) and produce is called again within HTTP_STREAM_TICK_MS, so it can
 * poll for new data and write heartbeats. Calls for one stream never overlap.
 * free_fn(arg) runs exactly once, on any thread, when the stream is over: ended by
 * produce, the client went away (noticed at the next write), or the server stopped
 * (http_server_stop ends every stream at once without calling produce again). */
#define HTTP_STREAM_TICK_MS 100
#define HTTP_STREAM_MAX_APPEND ((size_t)256 * 1024)
enum http_stream_rc { HTTP_STREAM_MORE = 0, HTTP_STREAM_END = 1 };
typedef enum http_stream_rc (*http_stream_produce_fn)(void *arg, struct buf *out);
typedef void (*http_stream_free_fn)(void *arg);
/* Turns the response to req into a stream of content_type (a static string); sets
 * resp->status to 200. The server owns arg from now on (free_fn NULL: nothing to free). */
void http_resp_stream(struct http_req *req, struct http_resp *resp, const char *content_type,
		      http_stream_produce_fn produce, http_stream_free_fn free_fn, void *arg);

typedef void (*http_handler)(struct http_req *req, struct http_resp *resp, void *arg);
/* Registers a route. path is exact ("/api/v1/tokens") or a prefix when it ends in '/'
 * followed by '*' (so "/api/v1/tokens/" then "*"; req->path_tail holds the rest). method NULL matches
 * any method. Later registrations of the same method+path replace earlier ones. Call
 * before http_server_start or while running (the table is read-mostly, guarded by a
 * rwlock). 0 or -1. */
int http_route(const char *method, const char *path, enum http_role min_role, http_handler h,
	       void *arg);
void http_routes_reset(void); /* for tests */

/* Server settings (the "server" config section decodes into this). */
struct http_limits {
	int64_t max_body_bytes;
	int64_t max_header_bytes;
	double rate_per_client; /* requests per second per client address; 0 = unlimited */
	int64_t burst;          /* bucket size */
	int64_t connection_timeout_ms; /* idle connection timeout */
	int64_t max_connections;
	int64_t max_connections_per_client;
};
struct http_config {
	char *listen; /* "127.0.0.1:9797", "[::1]:9797", ":9797" means every address */
	char *tls_cert_file;
	char *tls_key_file;
	int64_t threads;
	struct http_limits limits;
};

/* Hooks the daemon provides. */
struct http_hooks {
	/* An authentication or authorisation failure: reason is "missing_token",
	 * "invalid_token", "revoked_token" or "forbidden". */
	void (*auth_failed)(void *arg, const struct http_req *req, const char *reason);
	/* Called once per completed request (for logs). */
	void (*request_done)(void *arg, const struct http_req *req, int status, double seconds);
	void *arg;
};

/* Registers the "server" config section (decodes into struct http_config). */
void http_register_config(void);
/* Parses a listen address: "127.0.0.1:9797", "[::1]:9797", "localhost:9797", ":9797"
 * (every address). When sa_out is not NULL it receives a struct sockaddr of at most sa_cap
 * bytes and *sa_len its length. 0, or -1 with err saying what is wrong. */
int http_parse_listen(const char *s, void *sa_out, size_t *sa_len, size_t sa_cap,
		      struct ward_err *err);

struct http_server;
/* Two steps, so that the daemon learns that its address is taken before it writes
 * anything: http_server_bind() binds the socket (NULL, err "127.0.0.1:9797: address
 * already in use; stop the other process or set server.listen"); http_server_serve()
 * then starts answering, using store for token lookups. */
struct http_server *http_server_bind(const struct http_config *cfg, struct ward_err *err);
int http_server_serve(struct http_server *s, struct store *store, const struct http_hooks *hooks,
		      struct ward_err *err);
/* Both at once. */
struct http_server *http_server_start(const struct http_config *cfg, struct store *store,
				      const struct http_hooks *hooks, struct ward_err *err);
/* Closes a server that was bound but never served. NULL-safe. */
void http_server_discard(struct http_server *s);
/* Applies new limits without dropping connections (listen/TLS changes need a restart). */
void http_server_set_limits(struct http_server *s, const struct http_limits *limits);
/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Graceful stop: stops accepting, waits up to grace_ms for in-flight requests, closes. */
void http_server_stop(struct http_server *s, int64_t grace_ms);
/* Requests being handled right now. */
int http_server_inflight(const struct http_server *s);
/* Streamed responses open right now (they count in http_server_inflight too). */
int http_server_streams(const struct http_server *s);

/* ---- tokens (stored in the state store; component "http") ---- */
struct http_token {
	char id[17];
	char *name;
	enum http_role role;
	int64_t created_ms;
	int64_t last_used_ms; /* 0 when never */
	int64_t revoked_ms;   /* 0 when active */
	char *created_by;
};
void http_token_free(struct http_token *t);
/* Registers the token table's migrations; call before store_open. */
void http_tokens_register(void);
/* Creates a token. secret_out receives the full token text (shown once; 70 bytes + NUL).
 * 0, or -1 with err (a name already in use among active tokens is an error). */
int http_token_create(struct store *st, const char *name, enum http_role role,
		      const char *created_by, char secret_out[80], struct http_token *out,
		      struct ward_err *err);
/* Lists tokens, newest first. *out is a new array (free each with http_token_free). */
int http_token_list(struct store *st, struct http_token **out, size_t *n, struct ward_err *err);
/* Revokes by id. 0 revoked, 1 no such active token, -1 error. */
int http_token_revoke(struct store *st, const char *id, struct ward_err *err);
/* Looks a presented token up. 0 and *out filled when valid; 1 unknown; 2 revoked; -1 error. */
int http_token_check(struct store *st, const char *token, struct http_actor *out,
		     struct ward_err *err);
/* Number of active tokens (the daemon creates the first admin token when it is 0). */
int http_token_count_active(struct store *st);

/* ---- outbound client helpers (libcurl), used by the CLI and notifiers ---- */
struct http_client_resp {
	long status; /* 0 when the request failed before a response */
	struct buf body;
	char error[256]; /* curl's message when status is 0 */
};
/* One blocking request. body may be NULL. token adds "Authorization: Bearer". */
int http_client_do(const char *method, const char *url, const char *token,
		   const char *content_type, const char *body, size_t body_len, int64_t timeout_ms,
		   struct http_client_resp *out);
void http_client_resp_free(struct http_client_resp *r);
/* A streamed GET (an NDJSON live tail): on_data gets the body piece by piece as it arrives
 * (pieces are not aligned to lines); returning false from it stops the transfer. accept
 * may be NULL. The transfer fails when no byte at all arrives for idle_timeout_ms (servers
 * send heartbeats). A non-2xx answer is not passed to on_data: its body is kept in
 * out->body (bounded) for the error message. Returns 0 when the server answered and the
 * body ended (or on_data stopped it), with out->status set; -1 with out->status 0 and
 * out->error when the connection failed or dropped, before or during the body. Free out
 * with http_client_resp_free. */
typedef bool (*http_client_data_fn)(void *arg, const char *data, size_t len);
int http_client_stream(const char *url, const char *token, const char *accept,
		       int64_t idle_timeout_ms, http_client_data_fn on_data, void *arg,
		       struct http_client_resp *out);
/* Trusts the CA certificates in path (PEM) for https, instead of the system store; NULL
 * goes back to the system store. Set once at start (not thread-safe against requests). */
void http_client_set_ca_file(const char *path);

#endif
