/* kind_pg.c: the postgresql probe with non-blocking libpq on the loop: PQconnectStart /
 * PQconnectPoll, then PQsendQuery of the configured query (its first value matched against
 * `expect`), then, when `stats` is on, one statistics query (connections, max_connections,
 * replication lag) whose failure (a role without rights) is not a probe failure.
 *
 * Invariants: libpq may change its socket while connecting (several addresses), so the
 * uv_poll follows PQsocket() after every poll step; PQfinish runs only after every poll
 * handle on its sockets is closed.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <libpq-fe.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"

#define STATS_SQL                                                                    \
	"SELECT (SELECT count(*) FROM pg_stat_activity),"                            \
	" current_setting('max_connections')::int,"                                  \
	" CASE WHEN pg_is_in_recovery() THEN"                                        \
	"  COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)" \
	" ELSE 0 END,"                                                               \
	" pg_is_in_recovery()::int"

enum pg_phase { PG_CONNECT, PG_QUERY, PG_STATS, PG_DONE };

struct pgpoll {
	uv_poll_t h;
	struct pgrun *owner;
};

struct pgrun {
	struct probe_run *run;
	PGconn *conn;
	enum pg_phase phase;
	struct pgpoll *poll;
	int fd;
	uv_timer_t timer;
	int open; /* poll handles and the timer not yet closed */
	bool query_ok;
	int64_t t_conn_ns, t_query_ns;
};

static void pg_maybe_free(struct pgrun *p) {
	if (p->phase != PG_DONE || p->open > 0)
		return;
	struct probe_run *r = p->run;
	if (p->conn)
		PQfinish(p->conn);
	free(p);
	r->k = NULL;
	probe_run_done(r);
}

static void poll_closed(uv_handle_t *h) {
	struct pgpoll *pp = h->data;
	struct pgrun *p = pp->owner;
	free(pp);
	p->open--;
	pg_maybe_free(p);
}

static void timer_closed(uv_handle_t *h) {
	struct pgrun *p = h->data;
	p->open--;
	pg_maybe_free(p);
}

static void drop_poll(struct pgrun *p) {
	if (!p->poll)
		return;
	uv_poll_stop(&p->poll->h);
	uv_close((uv_handle_t *)&p->poll->h, poll_closed);
	p->poll = NULL;
	p->fd = -1;
}

static void pg_finish(struct pgrun *p) {
	if (p->phase == PG_DONE)
		return;
	p->phase = PG_DONE;
	drop_poll(p);
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, timer_closed);
	pg_maybe_free(p);
}

static void first_line(const char *s, struct buf *out) {
	size_t n = strcspn(s, "\n");
	buf_append(out, s, n);
}

static void pg_fail_conn(struct pgrun *p, const char *what) {
	struct probe_result *res = &p->run->res;
	const char *m = p->conn ? PQerrorMessage(p->conn) : "out of memory";
	char *inst = probe_instance_of(p->run->cfg);
	res->success = false;
	buf_reset(&res->reason);
	if (strstr(m, "Connection refused"))
		buf_printf(&res->reason, "connection refused (%s)", inst);
	else {
		buf_printf(&res->reason, "%s %s: ", what, inst);
		first_line(m, &res->reason);
	}
	free(inst);
	pg_finish(p);
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void watch(struct pgrun *p, int ev) {
	int fd = PQsocket(p->conn);
	if (fd != p->fd)
		drop_poll(p);
	if (!p->poll) {
		if (fd < 0)
			return;
		p->poll = ward_xcalloc(1, sizeof(*p->poll));
		p->poll->owner = p;
		p->poll->h.data = p->poll;
		if (uv_poll_init_socket(p->run->loop, &p->poll->h, fd) != 0) {
			free(p->poll);
			p->poll = NULL;
			return;
		}
		p->open++;
		p->fd = fd;
	}
	uv_poll_start(&p->poll->h, ev, poll_cb);
}

static void send_query(struct pgrun *p, const char *sql) {
	if (!PQsendQuery(p->conn, sql)) {
		pg_fail_conn(p, "cannot send the query to");
		return;
	}
	int f = PQflush(p->conn);
	watch(p, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
}

static bool expect_ok(const char *re, const char *v) {
	int ec;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
	if (!c)
		return false;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
	int rc = pcre2_match(c, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(c);
	return rc >= 0;
}

/* Handles one result of the current phase. */
static void on_result(struct pgrun *p, PGresult *pr) {
	struct probe_result *res = &p->run->res;
	const struct probe_check_conf *c = p->run->cfg;
	ExecStatusType st = PQresultStatus(pr);
	if (p->phase == PG_QUERY) {
		if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			if (res->success) {
				res->success = false;
				buf_reset(&res->reason);
				buf_puts(&res->reason, "query failed: ");
				first_line(PQresultErrorMessage(pr), &res->reason);
			}
			return;
		}
		if (c->expect && res->success) {
			const char *v = PQntuples(pr) > 0 && PQnfields(pr) > 0
			                        ? PQgetvalue(pr, 0, 0)
			                        : NULL;
			if (!v || !expect_ok(c->expect, v)) {
				res->success = false;
				buf_reset(&res->reason);
				buf_printf(&res->reason,
				           "query result \"%.80s\" does not match \"%s\"",
				           v ? v : "(no rows)", c->expect);
				return;
			}
		}
		if (res->success && res->reason.len == 0) {
			char *inst = probe_instance_of(c);
			const char *v = PQntuples(pr) > 0 && PQnfields(pr) > 0
			                        ? PQgetvalue(pr, 0, 0)
			                        : NULL;
			buf_printf(&res->reason, "postgresql %s answered%s%.80s%s", inst,
			           v ? " \"" : "", v ? v : "", v ? "\"" : "");
			free(inst);
		}
		return;
	}
	if (p->phase == PG_STATS && st == PGRES_TUPLES_OK && PQntuples(pr) == 1 &&
	    PQnfields(pr) == 4) {
		probe_result_add(res, "probe_postgresql_connections",
		                 strtod(PQgetvalue(pr, 0, 0), NULL), NULL);
		probe_result_add(res, "probe_postgresql_max_connections",
		                 strtod(PQgetvalue(pr, 0, 1), NULL), NULL);
		probe_result_add(res, "probe_postgresql_replication_lag_seconds",
		                 strtod(PQgetvalue(pr, 0, 2), NULL), NULL);
		probe_result_add(res, "probe_postgresql_in_recovery",
		                 strtod(PQgetvalue(pr, 0, 3), NULL), NULL);
	}
}

static void poll_cb(uv_poll_t *h, int status, int events) {
	struct pgrun *p = ((struct pgpoll *)h->data)->owner;
	if (p->phase == PG_CONNECT) {
		PostgresPollingStatusType ps = PQconnectPoll(p->conn);
		if (ps == PGRES_POLLING_FAILED) {
			pg_fail_conn(p, "cannot connect to");
			return;
		}
		if (ps == PGRES_POLLING_OK) {
			p->t_conn_ns = (int64_t)uv_hrtime();
			probe_result_add(&p->run->res, "probe_postgresql_connect_duration_seconds",
			                 (double)(p->t_conn_ns - p->run->start_ns) / 1e9, NULL);
			p->phase = PG_QUERY;
			send_query(p, p->run->cfg->query ? p->run->cfg->query : "SELECT 1");
			return;
		}
		watch(p, ps == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
		return;
	}
	if (events & UV_WRITABLE) {
		int f = PQflush(p->conn);
		if (f < 0) {
			pg_fail_conn(p, "lost the connection to");
			return;
		}
		watch(p, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
	}
	if (!PQconsumeInput(p->conn)) {
		pg_fail_conn(p, "lost the connection to");
		return;
	}
	while (!PQisBusy(p->conn)) {
		PGresult *pr = PQgetResult(p->conn);
		if (!pr) {
			/* the phase's last result */
			if (p->phase == PG_QUERY) {
				probe_result_add(
				        &p->run->res, "probe_postgresql_query_duration_seconds",
				        (double)((int64_t)uv_hrtime() - p->t_conn_ns) / 1e9, NULL);
				if (p->run->cfg->stats) {
					p->phase = PG_STATS;
					send_query(p, STATS_SQL);
					return;
				}
			}
			pg_finish(p);
			return;
		}
		on_result(p, pr);
		PQclear(pr);
	}
}

static void on_timeout(uv_timer_t *t) {
	struct pgrun *p = t->data;
	char d[32];
	ward_fmt_duration(p->run->cfg->timeout_ms, d);
	if (p->phase == PG_STATS) {
		pg_finish(p); /* the probe itself succeeded; the statistics are optional */
		return;
	}
	char *inst = probe_instance_of(p->run->cfg);
	probe_result_fail(&p->run->res, "timeout after %s %s %s", d,
	                  p->phase == PG_CONNECT ? "connecting to" : "querying", inst);
	free(inst);
	pg_finish(p);
}

static int pg_start(struct probe_run *r) {
	struct pgrun *p = ward_xcalloc(1, sizeof(*p));
	p->run = r;
	p->fd = -1;
	r->k = p;
	uv_timer_init(r->loop, &p->timer);
	p->timer.data = p;
	p->open = 1;
	uv_timer_start(&p->timer, on_timeout, (uint64_t)r->cfg->timeout_ms, 0);
	p->conn = PQconnectStart(r->cfg->target);
	if (!p->conn || PQstatus(p->conn) == CONNECTION_BAD) {
		pg_fail_conn(p, "cannot connect to");
		return 0;
	}
	PQsetnonblocking(p->conn, 1);
	watch(p, UV_WRITABLE);
	if (!p->poll)
		pg_fail_conn(p, "cannot connect to");
	return 0;
}

static void pg_cancel(struct probe_run *r) {
	struct pgrun *p = r->k;
	if (!p)
		return;
	probe_result_fail(&r->res, "cancelled");
	pg_finish(p);
}

const struct probe_kind_ops probe_pg_ops = {pg_start, pg_cancel};
