/* syslog.c: the syslog server on the daemon's libuv loop: UDP datagrams and TCP streams
 * (RFC 6587 octet counting or newline framing), RFC 5424 and RFC 3164 messages, so that
 * `logger --server` and rsyslog forwarding work. Each message becomes one line in the
 * stream {job="syslog", host, app, facility, level} plus configured labels.
 * Bounded memory under a flood: one receive buffer for UDP (the kernel drops the excess),
 * per-connection framing capped at max_message, at most max_connections TCP senders;
 * the store cuts blocks when its buffered lines reach their cap.
 */
#include <stdlib.h>

#include "logs/module_internal.h"

#define UDP_BUF (64 * 1024) /* the largest UDP datagram */

struct conn {
	uv_tcp_t h;
	struct logs_syslog *srv;
	struct logs_framer fr;
	struct conn *next, *prev;
};

struct logs_syslog {
	struct logs_mod *m;
	uv_udp_t udp;
	uv_tcp_t tcp;
	bool udp_on, tcp_on;
	struct conn *conns;
	size_t nconns;
	size_t max_conns;
	size_t max_msg;
	struct labels extra;
	char udp_buf[UDP_BUF];
	int closing;   /* server handles still to close */
	bool stopping; /* freed once every handle has closed */
	struct buf scratch;
};

static void deliver(void *arg, const char *msg, size_t len) {
	struct logs_syslog *s = arg;
	struct logs_syslog_msg sm;
	struct labels ls;
	struct ward_err err;
	int64_t now = ward_now_ms();

	logs_syslog_parse(msg, len, now, &sm);
	labels_init(&ls);
	labels_copy(&ls, &s->extra);
	if (!labels_get(&ls, "job"))
		labels_set(&ls, "job", "syslog");
	char tmp[256];
	if (sm.host_len && sm.host_len < sizeof(tmp)) {
		memcpy(tmp, sm.host, sm.host_len);
		tmp[sm.host_len] = '\0';
		labels_set(&ls, "host", tmp);
	}
	if (sm.app_len && sm.app_len < sizeof(tmp)) {
		memcpy(tmp, sm.app, sm.app_len);
		tmp[sm.app_len] = '\0';
		labels_set(&ls, "app", tmp);
	}
	labels_set(&ls, "facility", logs_syslog_facility_name(sm.facility));
	labels_set(&ls, "level", logs_syslog_severity_name(sm.severity));
	buf_reset(&s->scratch);
	if (sm.sd_len) { /* structured data stays with the message, searchable */
		buf_append(&s->scratch, sm.sd, sm.sd_len);
		buf_putc(&s->scratch, ' ');
	}
	buf_append(&s->scratch, sm.msg, sm.msg_len);
	struct logs_entry e = {.ts_ns = sm.ts_ns ? sm.ts_ns : now * 1000000,
	                       .line = s->scratch.data ? s->scratch.data : "",
	                       .len = s->scratch.len};
	ward_err_clear(&err);
	if (logs_store_append(s->m->store, &ls, &e, 1, false, &err) != 0) {
		logs_count_dropped(s->m, "store_error", 1);
		ward_log(LOG_WARN, "logs: syslog line not stored", "error", err.msg, NULL);
	} else {
		logs_count(s->m, "syslog", 1);
	}
	labels_free(&ls);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
	struct logs_syslog *s = h->data;
	b->base = s->udp_buf;
	b->len = sizeof(s->udp_buf);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *addr,
                     unsigned flags) {
	struct logs_syslog *s = h->data;
	if (n <= 0 || !addr)
		return;
	size_t len = (size_t)n;
	if (flags & UV_UDP_PARTIAL)
		logs_count_dropped(s->m, "truncated", 1);
	if (len > s->max_msg) {
		len = s->max_msg;
		logs_count_dropped(s->m, "truncated", 1);
	}
	deliver(s, b->base, len);
}

/* ---- TCP ---- */

static void maybe_free(struct logs_syslog *s) {
	if (!s->stopping || s->closing > 0 || s->nconns > 0)
		return;
	labels_free(&s->extra);
	buf_free(&s->scratch);
	free(s);
}

static void conn_closed(uv_handle_t *h) {
	struct conn *c = h->data;
	struct logs_syslog *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	logs_framer_free(&c->fr);
	free(c);
	maybe_free(s);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
	struct conn *c = h->data;
	b->base = c->srv->udp_buf; /* one thread: the buffer is consumed before the next read */
	b->len = sizeof(c->srv->udp_buf);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
	struct conn *c = st->data;
	if (n < 0) {
		logs_framer_finish(&c->fr, deliver, c->srv);
		if (!uv_is_closing((uv_handle_t *)st))
			uv_close((uv_handle_t *)st, conn_closed);
		return;
	}
	uint64_t before = c->fr.truncated;
	if (logs_framer_feed(&c->fr, b->base, (size_t)n, deliver, c->srv) != 0)
		uv_close((uv_handle_t *)st, conn_closed);
	if (c->fr.truncated > before)
		logs_count_dropped(c->srv->m, "truncated", (double)(c->fr.truncated - before));
}

static void on_conn(uv_stream_t *server, int status) {
	struct logs_syslog *s = server->data;
	if (status < 0)
		return;
	struct conn *c = ward_xcalloc(1, sizeof(*c));
	c->srv = s;
	uv_tcp_init(server->loop, &c->h);
	c->h.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	logs_framer_init(&c->fr, s->max_msg);
	if (uv_accept(server, (uv_stream_t *)&c->h) != 0 || s->nconns > s->max_conns) {
		if (s->nconns > s->max_conns)
			logs_count_dropped(s->m, "too_many_connections", 1);
		uv_close((uv_handle_t *)&c->h, conn_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
}

static int bind_addr(const char *addr, struct sockaddr_storage *ss, struct ward_err *err) {
	size_t len;
	return http_parse_listen(addr, ss, &len, sizeof(*ss), err);
}

int logs_syslog_port(const struct logs_syslog *s, bool tcp) {
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (tcp ? !s->tcp_on : !s->udp_on)
		return 0;
	int rc = tcp ? uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len)
	             : uv_udp_getsockname(&s->udp, (struct sockaddr *)&ss, &len);
	if (rc != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

struct logs_syslog *logs_syslog_start(struct logs_mod *m, uv_loop_t *loop,
                                      const struct logs_syslog_conf *c, struct ward_err *err) {
	struct logs_syslog *s = ward_xcalloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	int rc;
	s->m = m;
	s->max_conns = (size_t)c->max_connections;
	s->max_msg = (size_t)c->max_message;
	labels_init(&s->extra);
	for (size_t i = 0; i < c->nlabels; i++)
		labels_set(&s->extra, c->labels[i].key, c->labels[i].value);
	if (c->udp && c->udp[0]) {
		if (bind_addr(c->udp, &ss, err) != 0)
			goto fail;
		uv_udp_init(loop, &s->udp);
		s->udp.data = s;
		s->udp_on = true;
		if ((rc = uv_udp_bind(&s->udp, (struct sockaddr *)&ss, 0)) != 0 ||
		    (rc = uv_udp_recv_start(&s->udp, udp_alloc, udp_recv)) != 0) {
			ward_err_set(err, "logs.syslog.udp %s: %s; choose another address or port",
			             c->udp, uv_strerror(rc));
			goto fail;
		}
		ward_log(LOG_INFO, "logs: syslog listening", "proto", "udp", "addr", c->udp, NULL);
	}
	if (c->tcp && c->tcp[0]) {
		if (bind_addr(c->tcp, &ss, err) != 0)
			goto fail;
		uv_tcp_init(loop, &s->tcp);
		s->tcp.data = s;
		s->tcp_on = true;
		if ((rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
		    (rc = uv_listen((uv_stream_t *)&s->tcp, 128, on_conn)) != 0) {
			ward_err_set(err, "logs.syslog.tcp %s: %s; choose another address or port",
			             c->tcp, uv_strerror(rc));
			goto fail;
		}
		ward_log(LOG_INFO, "logs: syslog listening", "proto", "tcp", "addr", c->tcp, NULL);
	}
	return s;
fail:
	logs_syslog_stop(s);
	return NULL;
}

static void srv_closed(uv_handle_t *h) {
	struct logs_syslog *s = h->data;
	s->closing--;
	maybe_free(s);
}

void logs_syslog_stop(struct logs_syslog *s) {
	if (!s)
		return;
	s->stopping = true;
	s->closing = 1; /* held until every close below is queued */
	for (struct conn *c = s->conns; c; c = c->next) {
		logs_framer_finish(&c->fr, deliver, s);
		if (!uv_is_closing((uv_handle_t *)&c->h))
			uv_close((uv_handle_t *)&c->h, conn_closed);
	}
	if (s->udp_on) {
		s->closing++;
		uv_close((uv_handle_t *)&s->udp, srv_closed);
	}
	if (s->tcp_on) {
		s->closing++;
		uv_close((uv_handle_t *)&s->tcp, srv_closed);
	}
	s->closing--;
	maybe_free(s);
}
