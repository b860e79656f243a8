/* http_internal.h: what the files of src/http share and nobody else sees.
 *
 * router.c owns the route table; ratelimit.c the per-client token buckets; server.c the
 * libmicrohttpd daemon and the request state it keeps per connection; stream.c the streamed
 * responses and the ticker that wakes their parked connections.
 */
#ifndef WARD_HTTP_INTERNAL_H
#define WARD_HTTP_INTERNAL_H

#include "http/http.h"

struct http_route_entry {
	char *method; /* NULL: any */
	char *path;   /* exact, or prefix (without the trailing '*') when prefix is set */
	bool prefix;
	enum http_role min_role;
	http_handler handler;
	void *arg;
};

/* Finds the route for method+path. Returns 0 and copies the entry (strings borrowed from
 * the table, which only grows), 404 when no path matches, 405 when the path matches but
 * not the method. tail receives the offset of the prefix tail in path. */
int http_router_find(const char *method, const char *path, struct http_route_entry *out,
		     size_t *tail);

/* Per-client token buckets. */
struct ratelimit;
struct ratelimit *ratelimit_new(void);
void ratelimit_free(struct ratelimit *rl);
/* Takes one token for client. true when allowed; otherwise *retry_after_s holds the whole
 * seconds until a token is available (at least 1). rate <= 0 disables the limit. */
bool ratelimit_take(struct ratelimit *rl, const char *client, double rate, double burst,
		    int64_t now_ms, int *retry_after_s);
size_t ratelimit_clients(struct ratelimit *rl);

/* application/x-www-form-urlencoded and query-string decoding, in place safe. Appends the
 * pairs found in s (n bytes) to *params. */
void http_parse_urlencoded(const char *s, size_t n, struct http_param **params, size_t *nparams);
/* Percent-decoding ('+' to space when plus is set); returns a new string. */
char *http_url_decode(const char *s, size_t n, bool plus);

/* Opens, binds and listens on listen_addr; the fd, or -1 with err. */
int http_listen_socket(const char *listen_addr, int *port_out, struct ward_err *err);

/* ---- streamed responses (stream.c) ---- */
struct MHD_Connection;
struct MHD_Response;
/* Per server: the parked (suspended) stream connections and the ticker thread that
 * resumes them every HTTP_STREAM_TICK_MS. */
struct http_streams;
struct http_streams *http_streams_new(void); /* starts the ticker; NULL when it cannot */
/* Ends every stream: no connection is parked after this returns, produce is not called
 * again, and the next read of each stream ends it. Joins the ticker. Idempotent. */
void http_streams_shutdown(struct http_streams *h);
void http_streams_free(struct http_streams *h); /* after the MHD daemon stopped; NULL-safe */
int http_streams_open(const struct http_streams *h);

struct http_stream;
struct http_stream *http_stream_new(http_stream_produce_fn produce, http_stream_free_fn free_fn,
				    void *arg);
/* A stream that is not sent after all: calls its free_fn. NULL-safe. */
void http_stream_discard(struct http_stream *st);
/* The MHD response (chunked, unknown size) that sends st on conn; st belongs to the
 * response from now on, even on failure (NULL, free_fn already called). */
struct MHD_Response *http_stream_response(struct http_stream *st, struct http_streams *h,
					  struct MHD_Connection *conn);

#endif
