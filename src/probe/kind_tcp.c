/* kind_tcp.c: probes that speak over one TCP connection driven by the loop: "tcp" (connect,
 * optional TLS with certificate expiry, optional send and expect-regex) and "redis" (RESP:
 * optional AUTH, PING, INFO -> used_memory, connected_clients, keyspace). One state machine
 * (resolve -> connect -> tls -> send -> receive) on a non-blocking socket with a uv_poll;
 * OpenSSL runs on the same socket with WANT_READ/WANT_WRITE mapped to poll events.
 *
 * Invariant: probe_run_done is called once, after the getaddrinfo request has returned and
 * the poll and timer handles are closed (the socket is closed after its poll handle).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe/probe_internal.h"

#define RECV_MAX (256 * 1024) /* an answer larger than this is cut; enough for INFO */

enum phase { PH_RESOLVE, PH_CONNECT, PH_TLS, PH_SEND, PH_RECV, PH_DONE };
static const char *const phase_names[] = {
        "resolving", "connecting", "in the TLS handshake", "sending", "waiting for an answer",
        "done"};

struct tconn {
	struct probe_run *run;
	bool redis;
	enum phase phase;
	char host[256], port[16];
	uv_getaddrinfo_t gai;
	bool gai_pending;
	uv_poll_t poll;
	bool poll_open;
	uv_timer_t timer;
	bool timer_open;
	int fd;
	SSL_CTX *sslctx;
	SSL *ssl;
	struct buf out;
	size_t out_off;
	struct buf in;
	int64_t t0_ns, t_resolved_ns, t_connected_ns, t_tls_ns;
	int nreplies; /* redis: replies expected */
	pcre2_code *re;
};

static double secs_since(int64_t from_ns, int64_t to_ns) {
	return (double)(to_ns - from_ns) / 1e9;
}

static void maybe_done(struct tconn *t) {
	if (t->phase != PH_DONE || t->gai_pending || t->poll_open || t->timer_open)
		return;
	struct probe_run *r = t->run;
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->sslctx)
		SSL_CTX_free(t->sslctx);
	if (t->re)
		pcre2_code_free(t->re);
	buf_free(&t->out);
	buf_free(&t->in);
	free(t);
	r->k = NULL;
	probe_run_done(r);
}

static void poll_closed(uv_handle_t *h) {
	struct tconn *t = h->data;
	t->poll_open = false;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	maybe_done(t);
}

static void timer_closed(uv_handle_t *h) {
	struct tconn *t = h->data;
	t->timer_open = false;
	maybe_done(t);
}

static void finish(struct tconn *t) {
	if (t->phase == PH_DONE)
		return;
	struct probe_result *res = &t->run->res;
	int64_t now = (int64_t)uv_hrtime();
	if (t->t_resolved_ns)
		probe_result_add(res, "probe_dns_lookup_time_seconds",
		                 secs_since(t->t0_ns, t->t_resolved_ns), NULL);
	if (t->t_connected_ns)
		probe_result_add(res, "probe_tcp_connect_duration_seconds",
		                 secs_since(t->t_resolved_ns, t->t_connected_ns), NULL);
	if (t->t_tls_ns)
		probe_result_add(res, "probe_tls_handshake_duration_seconds",
		                 secs_since(t->t_connected_ns, t->t_tls_ns), NULL);
	(void)now;
	t->phase = PH_DONE;
	if (t->timer_open) {
		uv_timer_stop(&t->timer);
		uv_close((uv_handle_t *)&t->timer, timer_closed);
	}
	if (t->poll_open) {
		uv_poll_stop(&t->poll);
		uv_close((uv_handle_t *)&t->poll, poll_closed);
	} else if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
	if (t->gai_pending)
		uv_cancel((uv_req_t *)&t->gai);
	maybe_done(t);
}

static void fail(struct tconn *t, const char *fmt, ...) WARD_PRINTF(2, 3);
static void fail(struct tconn *t, const char *fmt, ...) {
	if (t->phase == PH_DONE)
		return;
	va_list ap;
	struct probe_result *res = &t->run->res;
	res->success = false;
	buf_reset(&res->reason);
	va_start(ap, fmt);
	buf_vprintf(&res->reason, fmt, ap);
	va_end(ap);
	finish(t);
}

static void on_timeout(uv_timer_t *h) {
	struct tconn *t = h->data;
	char d[32];
	ward_fmt_duration(t->run->cfg->timeout_ms, d);
	fail(t, "timeout after %s %s (%s)", d, phase_names[t->phase], t->run->cfg->target);
}

/* ---- redis replies ---- */

static void redis_info(struct tconn *t, const char *s, size_t n) {
	struct probe_result *res = &t->run->res;
	const char *end = s + n;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t ln = nl ? (size_t)(nl - s) : (size_t)(end - s);
		char line[512];
		if (ln >= sizeof(line))
			ln = sizeof(line) - 1;
		memcpy(line, s, ln);
		line[ln] = '\0';
		if (ln && line[ln - 1] == '\r')
			line[ln - 1] = '\0';
		char *colon = strchr(line, ':');
		if (colon && line[0] != '#') {
			*colon = '\0';
			const char *v = colon + 1;
			if (!strcmp(line, "used_memory"))
				probe_result_add(res, "probe_redis_used_memory_bytes",
				                 strtod(v, NULL), NULL);
			else if (!strcmp(line, "connected_clients"))
				probe_result_add(res, "probe_redis_connected_clients",
				                 strtod(v, NULL), NULL);
			else if (!strcmp(line, "uptime_in_seconds"))
				probe_result_add(res, "probe_redis_uptime_seconds", strtod(v, NULL),
				                 NULL);
			else if (ward_has_prefix(line, "db") && strstr(v, "keys=")) {
				const char *k = strstr(v, "keys=") + 5;
				probe_result_add(res, "probe_redis_db_keys", strtod(k, NULL), "db",
				                 line, NULL);
				const char *x = strstr(v, "expires=");
				if (x)
					probe_result_add(res, "probe_redis_db_keys_expiring",
					                 strtod(x + 8, NULL), "db", line, NULL);
			}
		}
		if (!nl)
			break;
		s = nl + 1;
	}
}

/* Parses the replies in t->in; 1 all done (result set), 0 need more, -1 failed (set). */
static int redis_parse(struct tconn *t) {
	const char *p = t->in.data, *end = t->in.data + t->in.len;
	int got = 0;
	bool auth = t->run->cfg->password != NULL;
	while (p < end && got < t->nreplies) {
		const char *crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!crlf)
			return 0;
		size_t ln = (size_t)(crlf - p);
		if (*p == '-') {
			fail(t, "redis at %s answered: %.*s", t->run->cfg->target, (int)(ln - 1),
			     p + 1);
			return -1;
		}
		int idx = got - (auth ? 1 : 0); /* -1 AUTH, 0 PING, 1 INFO */
		if (*p == '+') {
			if (idx == 0 && !(ln == 5 && !memcmp(p, "+PONG", 5))) {
				fail(t, "redis at %s answered PING with %.*s", t->run->cfg->target,
				     (int)ln, p);
				return -1;
			}
			p = crlf + 2;
			got++;
			continue;
		}
		if (*p == '$') {
			long len = strtol(p + 1, NULL, 10);
			if (len < 0) {
				p = crlf + 2;
				got++;
				continue;
			}
			if ((size_t)(end - (crlf + 2)) < (size_t)len + 2)
				return 0;
			if (idx == 1)
				redis_info(t, crlf + 2, (size_t)len);
			p = crlf + 2 + len + 2;
			got++;
			continue;
		}
		fail(t, "redis at %s sent something that is not RESP (%.*s)", t->run->cfg->target,
		     (int)(ln > 40 ? 40 : ln), p);
		return -1;
	}
	if (got < t->nreplies)
		return 0;
	buf_printf(&t->run->res.reason, "redis at %s answered PONG", t->run->cfg->target);
	return 1;
}

/* ---- the state machine ---- */

static void set_events(struct tconn *t, int ev);

static void ssl_error(struct tconn *t, const char *what) {
	unsigned long e = ERR_get_error();
	char eb[256] = "";
	if (e)
		ERR_error_string_n(e, eb, sizeof(eb));
	long vr = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
	if (vr != X509_V_OK)
		fail(t, "TLS certificate of %s not accepted: %s", t->run->cfg->target,
		     X509_verify_cert_error_string(vr));
	else
		fail(t, "TLS %s with %s failed: %s", what, t->run->cfg->target,
		     eb[0] ? eb : "connection closed");
}

static void after_tls(struct tconn *t) {
	const struct probe_check_conf *c = t->run->cfg;
	struct probe_result *res = &t->run->res;
	probe_result_add(res, "probe_tls_version_info", 1, "version", SSL_get_version(t->ssl),
	                 NULL);
	double earliest = 0;
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		double x = probe_cert_expiry_unix(sk_X509_value(chain, i));
		if (x > 0 && (earliest == 0 || x < earliest))
			earliest = x;
	}
	if (earliest > 0) {
		probe_result_add(res, "probe_ssl_earliest_cert_expiry", earliest, NULL);
		double left = earliest - (double)time(NULL);
		if (c->cert_min_validity_ms > 0 &&
		    left < (double)c->cert_min_validity_ms / 1000.0) {
			if (left < 0)
				fail(t, "certificate of %s expired %.0f days ago", c->target,
				     -left / 86400.0);
			else
				fail(t, "certificate of %s expires in %.0f days", c->target,
				     left / 86400.0);
		}
	}
}

static void step(struct tconn *t);

static void start_tls(struct tconn *t) {
	const struct probe_check_conf *c = t->run->cfg;
	t->sslctx = SSL_CTX_new(TLS_client_method());
	if (!t->sslctx) {
		ssl_error(t, "setup");
		return;
	}
	if (c->tls_verify) {
		SSL_CTX_set_verify(t->sslctx, SSL_VERIFY_PEER, NULL);
		if (c->ca_file ? SSL_CTX_load_verify_locations(t->sslctx, c->ca_file, NULL) != 1
		               : SSL_CTX_set_default_verify_paths(t->sslctx) != 1) {
			fail(t, "cannot load CA certificates%s%s", c->ca_file ? " from " : "",
			     c->ca_file ? c->ca_file : "");
			return;
		}
	}
	if (c->cert_file &&
	    (SSL_CTX_use_certificate_chain_file(t->sslctx, c->cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(t->sslctx, c->key_file, SSL_FILETYPE_PEM) != 1)) {
		fail(t, "cannot load the client certificate %s or key %s", c->cert_file,
		     c->key_file);
		return;
	}
	t->ssl = SSL_new(t->sslctx);
	SSL_set_fd(t->ssl, t->fd);
	const char *sni = c->server_name ? c->server_name : t->host;
	unsigned char ipbuf[16];
	bool is_ip = inet_pton(AF_INET, sni, ipbuf) == 1 || inet_pton(AF_INET6, sni, ipbuf) == 1;
	if (!is_ip) /* SNI never carries an address (RFC 6066) */
		SSL_set_tlsext_host_name(t->ssl, sni);
	if (c->tls_verify) {
		/* an address is checked against the certificate's IP SANs, a name against DNS */
		if (is_ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), sni);
		else
			SSL_set1_host(t->ssl, sni);
	}
	t->phase = PH_TLS;
	step(t);
}

static void begin_send_or_finish(struct tconn *t) {
	if (t->out.len > 0) {
		t->phase = PH_SEND;
		step(t);
		return;
	}
	if (t->re || t->redis) {
		t->phase = PH_RECV;
		set_events(t, UV_READABLE);
		return;
	}
	buf_printf(&t->run->res.reason, "connected to %s", t->run->cfg->target);
	finish(t);
}

static void check_expect(struct tconn *t, bool eof) {
	if (t->redis) {
		if (redis_parse(t) == 1) {
			finish(t);
			return;
		}
		if (t->phase != PH_DONE && eof)
			fail(t, "redis at %s closed the connection before answering",
			     t->run->cfg->target);
		return;
	}
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
	int rc = pcre2_match(t->re, (PCRE2_SPTR)(t->in.data ? t->in.data : ""), t->in.len, 0, 0, md,
	                     NULL);
	pcre2_match_data_free(md);
	if (rc >= 0) {
		buf_printf(&t->run->res.reason, "%s answered as expected", t->run->cfg->target);
		finish(t);
	} else if (eof || t->in.len >= RECV_MAX) {
		probe_result_add(&t->run->res, "probe_failed_due_to_regex", 1, NULL);
		fail(t, "answer from %s does not match \"%s\"%s", t->run->cfg->target,
		     t->run->cfg->expect, eof ? " (connection closed)" : "");
	}
}

static void step(struct tconn *t) {
	for (;;) {
		if (t->phase == PH_TLS) {
			int rc = SSL_connect(t->ssl);
			if (rc == 1) {
				t->t_tls_ns = (int64_t)uv_hrtime();
				after_tls(t);
				if (t->phase == PH_DONE)
					return;
				begin_send_or_finish(t);
				return;
			}
			int e = SSL_get_error(t->ssl, rc);
			if (e == SSL_ERROR_WANT_READ) {
				set_events(t, UV_READABLE);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				set_events(t, UV_WRITABLE);
				return;
			}
			ssl_error(t, "handshake");
			return;
		}
		if (t->phase == PH_SEND) {
			while (t->out_off < t->out.len) {
				size_t left = t->out.len - t->out_off;
				ssize_t n;
				if (t->ssl) {
					int w = SSL_write(t->ssl, t->out.data + t->out_off,
					                  (int)left);
					if (w <= 0) {
						int e = SSL_get_error(t->ssl, w);
						if (e == SSL_ERROR_WANT_WRITE ||
						    e == SSL_ERROR_WANT_READ) {
							set_events(t, e == SSL_ERROR_WANT_READ
							                      ? UV_READABLE
							                      : UV_WRITABLE);
							return;
						}
						ssl_error(t, "write");
						return;
					}
					n = w;
				} else {
					n = send(t->fd, t->out.data + t->out_off, left,
					         MSG_NOSIGNAL);
					if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
						set_events(t, UV_WRITABLE);
						return;
					}
					if (n < 0) {
						fail(t, "sending to %s failed: %s",
						     t->run->cfg->target, strerror(errno));
						return;
					}
				}
				t->out_off += (size_t)n;
			}
			if (!t->re && !t->redis) {
				buf_printf(&t->run->res.reason,
				           "connected to %s and sent the request",
				           t->run->cfg->target);
				finish(t);
				return;
			}
			t->phase = PH_RECV;
			continue;
		}
		if (t->phase == PH_RECV) {
			char tmp[16384];
			for (;;) {
				ssize_t n;
				if (t->ssl) {
					int rd = SSL_read(t->ssl, tmp, sizeof(tmp));
					if (rd <= 0) {
						int e = SSL_get_error(t->ssl, rd);
						if (e == SSL_ERROR_WANT_READ ||
						    e == SSL_ERROR_WANT_WRITE) {
							set_events(t, e == SSL_ERROR_WANT_READ
							                      ? UV_READABLE
							                      : UV_WRITABLE);
							return;
						}
						check_expect(t, true);
						return;
					}
					n = rd;
				} else {
					n = recv(t->fd, tmp, sizeof(tmp), 0);
					if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
						set_events(t, UV_READABLE);
						return;
					}
					if (n < 0) {
						fail(t, "reading from %s failed: %s",
						     t->run->cfg->target, strerror(errno));
						return;
					}
					if (n == 0) {
						check_expect(t, true);
						return;
					}
				}
				size_t room = RECV_MAX - t->in.len;
				buf_append(&t->in, tmp, (size_t)n < room ? (size_t)n : room);
				check_expect(t, false);
				if (t->phase == PH_DONE)
					return;
			}
		}
		return;
	}
}

static void poll_cb(uv_poll_t *p, int status, int events) {
	struct tconn *t = p->data;
	if (t->phase == PH_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
			err = errno;
		if (err == ECONNREFUSED) {
			fail(t, "connection refused (%s)", t->run->cfg->target);
			return;
		}
		if (err) {
			fail(t, "cannot connect to %s: %s", t->run->cfg->target, strerror(err));
			return;
		}
		t->t_connected_ns = (int64_t)uv_hrtime();
		if (t->run->cfg->tls) {
			start_tls(t);
			return;
		}
		begin_send_or_finish(t);
		return;
	}
	step(t);
}

static void set_events(struct tconn *t, int ev) {
	uv_poll_start(&t->poll, ev, poll_cb);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
	struct tconn *t = req->data;
	t->gai_pending = false;
	if (t->phase == PH_DONE) {
		if (ai)
			uv_freeaddrinfo(ai);
		maybe_done(t);
		return;
	}
	if (status < 0 || !ai) {
		fail(t, "cannot resolve %s: %s", t->host, uv_strerror(status));
		if (ai)
			uv_freeaddrinfo(ai);
		return;
	}
	t->t_resolved_ns = (int64_t)uv_hrtime();
	probe_result_add(&t->run->res, "probe_ip_protocol", ai->ai_family == AF_INET6 ? 6 : 4,
	                 NULL);
	t->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		fail(t, "cannot create a socket: %s", strerror(errno));
		uv_freeaddrinfo(ai);
		return;
	}
	int rc = connect(t->fd, ai->ai_addr, ai->ai_addrlen);
	int err = errno;
	uv_freeaddrinfo(ai);
	if (rc != 0 && err != EINPROGRESS) {
		if (err == ECONNREFUSED)
			fail(t, "connection refused (%s)", t->run->cfg->target);
		else
			fail(t, "cannot connect to %s: %s", t->run->cfg->target, strerror(err));
		return;
	}
	if (uv_poll_init_socket(t->run->loop, &t->poll, t->fd) != 0) {
		fail(t, "cannot watch the socket");
		return;
	}
	t->poll.data = t;
	t->poll_open = true;
	t->phase = PH_CONNECT;
	set_events(t, UV_WRITABLE);
}

/* Unescapes \n \r \t \\ \0xx-free text into out. */
static void unescape(struct buf *out, const char *s) {
	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			buf_putc(out, *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : *s);
		} else {
			buf_putc(out, *s);
		}
	}
}

static void resp_cmd(struct buf *out, const char *const *args, size_t n) {
	buf_printf(out, "*%zu\r\n", n);
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "$%zu\r\n%s\r\n", strlen(args[i]), args[i]);
}

static int split_hostport(const char *target, char *host, size_t hl, char *port, size_t pl) {
	const char *colon = strrchr(target, ':');
	if (!colon)
		return -1;
	const char *h = target;
	size_t n = (size_t)(colon - target);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= hl || strlen(colon + 1) >= pl || !colon[1])
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, pl, "%s", colon + 1);
	return 0;
}

static int conn_start(struct probe_run *r, bool redis) {
	const struct probe_check_conf *c = r->cfg;
	struct tconn *t = ward_xcalloc(1, sizeof(*t));
	t->run = r;
	t->redis = redis;
	t->fd = -1;
	t->t0_ns = r->start_ns;
	if (split_hostport(c->target, t->host, sizeof(t->host), t->port, sizeof(t->port)) != 0) {
		probe_result_fail(&r->res, "target \"%s\" is not host:port", c->target);
		free(t);
		return -1;
	}
	if (!redis && c->expect) {
		int ec;
		PCRE2_SIZE off;
		t->re = pcre2_compile((PCRE2_SPTR)c->expect, PCRE2_ZERO_TERMINATED, PCRE2_MULTILINE,
		                      &ec, &off, NULL);
	}
	if (redis) {
		if (c->password) {
			const char *a[] = {"AUTH", c->password};
			resp_cmd(&t->out, a, 2);
			t->nreplies++;
		}
		const char *ping[] = {"PING"}, *info[] = {"INFO"};
		resp_cmd(&t->out, ping, 1);
		resp_cmd(&t->out, info, 1);
		t->nreplies += 2;
	} else if (c->send) {
		unescape(&t->out, c->send);
	}
	r->k = t;
	uv_timer_init(r->loop, &t->timer);
	t->timer.data = t;
	t->timer_open = true;
	uv_timer_start(&t->timer, on_timeout, (uint64_t)c->timeout_ms, 0);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	t->gai.data = t;
	t->phase = PH_RESOLVE;
	int rc = uv_getaddrinfo(r->loop, &t->gai, gai_cb, t->host, t->port, &hints);
	if (rc != 0) {
		fail(t, "cannot resolve %s: %s", t->host, uv_strerror(rc));
		return 0;
	}
	t->gai_pending = true;
	return 0;
}

static int tcp_start(struct probe_run *r) {
	return conn_start(r, false);
}

static int redis_start(struct probe_run *r) {
	return conn_start(r, true);
}

static void conn_cancel(struct probe_run *r) {
	struct tconn *t = r->k;
	if (t)
		fail(t, "cancelled");
}

const struct probe_kind_ops probe_tcp_ops = {tcp_start, conn_cancel};
const struct probe_kind_ops probe_redis_ops = {redis_start, conn_cancel};
