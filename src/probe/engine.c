/* engine.c: the probe scheduler and the probe module's life. One uv_timer per check fires
 * at its due time (interval plus jitter, first run at a random phase); a due check starts
 * at once when fewer than max_concurrency runs are in flight, otherwise it waits in a FIFO
 * (a semaphore without threads). Lateness (start minus due time) goes to the histogram
 * ward_probe_schedule_lateness_seconds. A finished run's samples are batched into one tsdb
 * appender committed every second; its result folds into the damped state; state changes
 * are logged, stored (probe_state, probe_events) and given to subscribers.
 *
 * Threads: everything here runs on the loop thread except the HTTP handlers (api.c-like
 * part at the bottom), which read status under P.lock and hand run-now requests to the loop
 * through a uv_async. P.lock guards: P.checks/P.nchecks (replaced on apply), every check's
 * status fields (flap, last_*), P.runq and the subscriber table.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "probe/probe_internal.h"
#include "promapi/promapi.h"
#include "store/store.h"
#include "tsdb/tsdb.h"

#define FLUSH_EVERY_MS    1000  /* samples reach the tsdb within a second of the result */
#define FLUSH_AT_SAMPLES  20000 /* ...or sooner when many results arrive at once */
#define RUN_WAIT_SLACK_MS 30000 /* a run-now request waits timeout + this for its turn */
#define EVENT_KEEP_MS     (90LL * 86400 * 1000) /* state-change history kept in the store */
#define MAX_SUBS          16

struct probe_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs; /* handler + loop; guarded by mu */
	bool done;
	int status;
	struct buf json;
	char *name;
	struct probe_waiter *next;
};

struct probe_check {
	const struct probe_check_conf *cfg;
	struct conf *conf; /* reference keeping cfg alive */
	char *instance;
	struct labels base; /* job, probe, instance and the configured labels */
	uv_timer_t timer;
	int64_t due_ms; /* uv_hrtime domain, milliseconds */
	int64_t queued_due_ms;
	bool running, queued, retired;
	struct probe_check *qnext;
	struct probe_run *run;
	struct probe_waiter *waiters;
	/* status, guarded by P.lock */
	struct probe_flap flap;
	bool has_last, last_success;
	char *last_reason;
	double last_duration_s;
	int64_t last_ms;
	int64_t last_persist_ms;
	uint64_t runs, failures;
};

struct sub {
	int id;
	probe_event_fn fn;
	void *arg;
};

static struct {
	struct ward_ctx *ctx;
	uv_loop_t *loop;
	pthread_mutex_t lock;
	struct probe_check **checks;
	size_t nchecks;
	int64_t max_conc, persist_ms;
	int inflight;
	size_t qlen;
	struct probe_check *qhead, *qtail;
	bool pumping, started, stopping;
	uv_async_t async;
	uv_timer_t flush_timer;
	struct probe_waiter *runq;
	struct pending_sample *samples;
	size_t nsamples, samples_cap;
	struct state_row *rows;
	size_t nrows, rows_cap;
	struct event_row *events;
	size_t nevents, events_cap;
	bool flush_busy;
	int open_handles;
	struct sub subs[MAX_SUBS];
	int next_sub_id;
	struct metric *m_lateness, *m_runs, *m_skipped, *m_changes;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const struct probe_kind_ops *const kind_ops[] = {
        &probe_http_ops, &probe_tcp_ops,   &probe_dns_ops,
        &probe_pg_ops,   &probe_redis_ops, &probe_exec_ops,
};

static int64_t now_mono_ms(void) {
	return (int64_t)(uv_hrtime() / 1000000u);
}

/* ---- results ---- */

void probe_result_init(struct probe_result *r) {
	memset(r, 0, sizeof(*r));
	r->success = true;
}

void probe_result_free(struct probe_result *r) {
	for (size_t i = 0; i < r->nsamples; i++) {
		free(r->samples[i].name);
		labels_free(&r->samples[i].extra);
	}
	free(r->samples);
	buf_free(&r->reason);
	memset(r, 0, sizeof(*r));
}

void probe_result_add(struct probe_result *r, const char *name, double v, ...) {
	if (r->nsamples == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->samples = ward_xrealloc(r->samples, r->cap * sizeof(*r->samples));
	}
	struct probe_sample *s = &r->samples[r->nsamples++];
	s->name = ward_strdup(name);
	s->v = v;
	labels_init(&s->extra);
	va_list ap;
	va_start(ap, v);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *val = va_arg(ap, const char *);
		labels_set(&s->extra, k, val);
	}
	va_end(ap);
}

void probe_result_fail(struct probe_result *r, const char *fmt, ...) {
	va_list ap;
	r->success = false;
	buf_reset(&r->reason);
	va_start(ap, fmt);
	buf_vprintf(&r->reason, fmt, ap);
	va_end(ap);
}

/* ---- subscribers ---- */

int probe_subscribe(probe_event_fn fn, void *arg) {
	int id = -1;
	pthread_mutex_lock(&P.lock);
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (!P.subs[i].fn) {
			P.subs[i].fn = fn;
			P.subs[i].arg = arg;
			P.subs[i].id = id = ++P.next_sub_id;
			break;
		}
	pthread_mutex_unlock(&P.lock);
	return id;
}

void probe_unsubscribe(int id) {
	pthread_mutex_lock(&P.lock);
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (P.subs[i].fn && P.subs[i].id == id)
			memset(&P.subs[i], 0, sizeof(P.subs[i]));
	pthread_mutex_unlock(&P.lock);
}

/* ---- tsdb and store batching ----
 * Results accumulate in P.samples and P.rows (periodic state rows); every second a
 * job on the worker pool commits both, so the loop never waits for an fsync. One job at a
 * time (P.flush_busy); meanwhile new results go into fresh batches. */

struct state_row {
	char *name, *kind, *target, *state, *reason;
	int64_t since_ms, consec_fail, consec_ok, last_ms, last_success;
	double last_duration;
};

struct event_row {
	char *name, *kind, *target, *reason;
	enum probe_state from, to;
	int64_t t_ms;
};

struct pending_sample {
	struct labels ls;
	int64_t t_ms;
	double v;
};

struct flush_job {
	uv_work_t w;
	struct pending_sample *samples;
	size_t nsamples;
	struct state_row *rows;
	size_t nrows;
	struct event_row *events;
	size_t nevents;
};

static void row_fill(struct state_row *r, const struct probe_check *c) {
	r->name = ward_strdup(c->cfg->name);
	r->kind = ward_strdup(probe_kind_names[c->cfg->kind]);
	r->target = ward_strdup(c->instance);
	r->state = ward_strdup(probe_state_name(c->flap.state));
	r->reason = ward_strdup(c->last_reason ? c->last_reason : "");
	r->since_ms = c->flap.since_ms;
	r->consec_fail = c->flap.consec_fail;
	r->consec_ok = c->flap.consec_ok;
	r->last_ms = c->last_ms;
	r->last_success = c->last_success ? 1 : 0;
	r->last_duration = c->last_duration_s;
}

static void row_free(struct state_row *r) {
	free(r->name);
	free(r->kind);
	free(r->target);
	free(r->state);
	free(r->reason);
}

static int row_write(struct store *st, const struct state_row *r, struct ward_err *err) {
	struct store_val v[] = {
	        SV_TEXT(r->name),     SV_TEXT(r->kind),          SV_TEXT(r->target),
	        SV_TEXT(r->state),    SV_INT(r->since_ms),       SV_INT(r->consec_fail),
	        SV_INT(r->consec_ok), SV_INT(r->last_ms),        SV_INT(r->last_success),
	        SV_TEXT(r->reason),   SV_REAL(r->last_duration),
	};
	return store_exec(
	        st,
	        "INSERT INTO probe_state (name, kind, target, state, since_ms, consec_fail,"
	        " consec_ok, last_ms, last_success, last_reason, last_duration)"
	        " VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET"
	        " kind = excluded.kind, target = excluded.target, state = excluded.state,"
	        " since_ms = excluded.since_ms, consec_fail = excluded.consec_fail,"
	        " consec_ok = excluded.consec_ok, last_ms = excluded.last_ms,"
	        " last_success = excluded.last_success, last_reason = excluded.last_reason,"
	        " last_duration = excluded.last_duration",
	        v, sizeof(v) / sizeof(v[0]), NULL, err);
}

static int rows_tx(struct store *st, void *arg, struct ward_err *err) {
	struct flush_job *j = arg;
	for (size_t i = 0; i < j->nrows; i++)
		if (row_write(st, &j->rows[i], err) != STORE_OK)
			return -1;
	for (size_t i = 0; i < j->nevents; i++) {
		const struct event_row *e = &j->events[i];
		struct store_val v[] = {
		        SV_INT(e->t_ms),
		        SV_TEXT(e->name),
		        SV_TEXT(e->kind),
		        SV_TEXT(e->target),
		        SV_TEXT(probe_state_name(e->from)),
		        SV_TEXT(probe_state_name(e->to)),
		        SV_TEXT(e->reason),
		};
		if (store_exec(st,
		               "INSERT INTO probe_events (t_ms, name, kind, target, from_state,"
		               " to_state, reason) VALUES (?,?,?,?,?,?,?)",
		               v, sizeof(v) / sizeof(v[0]), NULL, err) != STORE_OK)
			return -1;
	}
	if (j->nevents) {
		struct store_val old[] = {SV_INT(ward_now_ms() - EVENT_KEEP_MS)};
		if (store_exec(st, "DELETE FROM probe_events WHERE t_ms < ?", old, 1, NULL, err) !=
		    STORE_OK)
			return -1;
	}
	return 0;
}

/* Runs on a worker thread (or on the loop at stop): tsdb and store are thread-safe. */
static void flush_work(uv_work_t *w) {
	struct flush_job *j = w->data;
	struct ward_err err;
	struct tsdb *db = promapi_tsdb();
	if (j->nsamples && db) {
		struct tsdb_appender *app = tsdb_appender_new(db);
		for (size_t i = 0; i < j->nsamples; i++) {
			const struct pending_sample *ps = &j->samples[i];
			ward_err_clear(&err);
			if (tsdb_append(app, &ps->ls, ps->t_ms, ps->v, &err) != 0)
				ward_log(LOG_DEBUG, "probe sample refused", "error", err.msg, NULL);
		}
		ward_err_clear(&err);
		if (tsdb_commit(app, NULL, &err) != 0)
			ward_log(LOG_WARN, "probe samples not stored", "error", err.msg, NULL);
	}
	if (j->nrows || j->nevents) {
		ward_err_clear(&err);
		if (store_tx(P.ctx->store, rows_tx, j, &err) != 0)
			ward_log(LOG_WARN, "probe states not stored", "error", err.msg, NULL);
	}
}

static void notify_events(const struct flush_job *j);

static void flush_job_free(struct flush_job *j) {
	for (size_t i = 0; i < j->nsamples; i++)
		labels_free(&j->samples[i].ls);
	free(j->samples);
	for (size_t i = 0; i < j->nrows; i++)
		row_free(&j->rows[i]);
	free(j->rows);
	for (size_t i = 0; i < j->nevents; i++) {
		free(j->events[i].name);
		free(j->events[i].kind);
		free(j->events[i].target);
		free(j->events[i].reason);
	}
	free(j->events);
	free(j);
}

static void flush_done(uv_work_t *w, int status) {
	struct flush_job *j = w->data;
	notify_events(j);
	flush_job_free(j);
	P.flush_busy = false;
}

static struct flush_job *flush_take(void) {
	if (!P.nsamples && !P.nrows && !P.nevents)
		return NULL;
	struct flush_job *j = ward_xcalloc(1, sizeof(*j));
	j->w.data = j;
	j->samples = P.samples;
	j->nsamples = P.nsamples;
	P.samples = NULL;
	P.nsamples = P.samples_cap = 0;
	j->rows = P.rows;
	j->nrows = P.nrows;
	j->events = P.events;
	j->nevents = P.nevents;
	P.rows = NULL;
	P.nrows = P.rows_cap = 0;
	P.events = NULL;
	P.nevents = P.events_cap = 0;
	return j;
}

static void flush_samples(void) {
	if (P.flush_busy)
		return;
	struct flush_job *j = flush_take();
	if (!j)
		return;
	P.flush_busy = true;
	if (uv_queue_work(P.loop, &j->w, flush_work, flush_done) != 0) {
		flush_work(&j->w);
		flush_done(&j->w, 0);
	}
}

/* At stop, on the loop: waits for a job in flight, then writes what is left. */
static void flush_sync(void) {
	while (P.flush_busy)
		uv_run(P.loop, UV_RUN_ONCE);
	struct flush_job *j = flush_take();
	if (j) {
		flush_work(&j->w);
		notify_events(j);
		flush_job_free(j);
	}
}

static void queue_row(const struct probe_check *c) {
	if (P.nrows == P.rows_cap) {
		P.rows_cap = P.rows_cap ? P.rows_cap * 2 : 64;
		P.rows = ward_xrealloc(P.rows, P.rows_cap * sizeof(*P.rows));
	}
	row_fill(&P.rows[P.nrows++], c);
}

static void queue_event(const struct probe_check *c, enum probe_state from, const char *reason,
                        int64_t t_ms) {
	if (P.nevents == P.events_cap) {
		P.events_cap = P.events_cap ? P.events_cap * 2 : 64;
		P.events = ward_xrealloc(P.events, P.events_cap * sizeof(*P.events));
	}
	struct event_row *e = &P.events[P.nevents++];
	e->name = ward_strdup(c->cfg->name);
	e->kind = ward_strdup(probe_kind_names[c->cfg->kind]);
	e->target = ward_strdup(c->instance);
	e->reason = ward_strdup(reason);
	e->from = from;
	e->to = c->flap.state;
	e->t_ms = t_ms;
}

static void flush_tick(uv_timer_t *t) {
	flush_samples();
}

static void write_samples(struct probe_check *c, const struct probe_result *r, int64_t t_ms) {
	if (!promapi_tsdb())
		return;
	for (size_t i = 0; i < r->nsamples; i++) {
		const struct probe_sample *s = &r->samples[i];
		if (P.nsamples == P.samples_cap) {
			P.samples_cap = P.samples_cap ? P.samples_cap * 2 : 256;
			P.samples = ward_xrealloc(P.samples, P.samples_cap * sizeof(*P.samples));
		}
		struct pending_sample *ps = &P.samples[P.nsamples++];
		labels_init(&ps->ls);
		labels_copy(&ps->ls, &c->base);
		for (size_t j = 0; j < s->extra.n; j++)
			labels_set(&ps->ls, s->extra.v[j].name, s->extra.v[j].value);
		labels_set(&ps->ls, "__name__", s->name);
		ps->t_ms = t_ms;
		ps->v = s->v;
	}
	if (P.nsamples >= FLUSH_AT_SAMPLES)
		flush_samples();
}

/* ---- the store ---- */

static const struct store_migration migrations[] = {
        {1, "CREATE TABLE probe_state ("
            " name TEXT PRIMARY KEY,"
            " kind TEXT NOT NULL,"
            " target TEXT NOT NULL,"
            " state TEXT NOT NULL,"
            " since_ms INTEGER NOT NULL,"
            " consec_fail INTEGER NOT NULL,"
            " consec_ok INTEGER NOT NULL,"
            " last_ms INTEGER NOT NULL,"
            " last_success INTEGER NOT NULL,"
            " last_reason TEXT NOT NULL,"
            " last_duration REAL NOT NULL);"
            "CREATE TABLE probe_events ("
            " id INTEGER PRIMARY KEY,"
            " t_ms INTEGER NOT NULL,"
            " name TEXT NOT NULL,"
            " kind TEXT NOT NULL,"
            " target TEXT NOT NULL,"
            " from_state TEXT NOT NULL,"
            " to_state TEXT NOT NULL,"
            " reason TEXT NOT NULL);"
            "CREATE INDEX probe_events_t ON probe_events (t_ms)"},
};

struct load_arg {
	struct probe_check **checks;
	size_t n;
};

static int load_row(void *arg, const struct store_val *col, size_t ncols) {
	struct load_arg *la = arg;
	if (ncols < 10 || col[0].type != STORE_TEXT)
		return 0;
	for (size_t i = 0; i < la->n; i++) {
		struct probe_check *c = la->checks[i];
		if (strcmp(c->cfg->name, col[0].s) != 0 || !col[1].s ||
		    strcmp(probe_kind_names[c->cfg->kind], col[1].s) != 0)
			continue;
		const char *st = col[2].s ? col[2].s : "";
		c->flap.state = !strcmp(st, "ok")        ? PROBE_OK
		                : !strcmp(st, "failing") ? PROBE_FAILING
		                                         : PROBE_UNKNOWN;
		c->flap.since_ms = col[3].i;
		c->flap.consec_fail = (int)col[4].i;
		c->flap.consec_ok = (int)col[5].i;
		c->last_ms = col[6].i;
		c->has_last = c->last_ms > 0;
		c->last_success = col[7].i != 0;
		free(c->last_reason);
		c->last_reason = ward_strdup(col[8].s ? col[8].s : "");
		c->last_duration_s = col[9].d;
	}
	return 0;
}

static void load_states(struct probe_check **checks, size_t n, struct probe_check **running,
                        size_t nrunning) {
	struct probe_check **fresh = ward_xcalloc(n ? n : 1, sizeof(*fresh));
	size_t nf = 0;
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (size_t j = 0; j < nrunning && !known; j++)
			known = !strcmp(running[j]->cfg->name, checks[i]->cfg->name) &&
			        running[j]->cfg->kind == checks[i]->cfg->kind;
		if (!known)
			fresh[nf++] = checks[i];
	}
	struct load_arg la = {fresh, nf};
	struct ward_err err;
	ward_err_clear(&err);
	if (nf && store_query(P.ctx->store,
	                      "SELECT name, kind, state, since_ms, consec_fail, consec_ok, last_ms,"
	                      " last_success, last_reason, last_duration FROM probe_state",
	                      NULL, 0, load_row, &la, &err) < 0)
		ward_log(LOG_WARN, "probe states not loaded", "error", err.msg, NULL);
	free(fresh);
}

/* ---- JSON ---- */

static void put_time(struct buf *b, int64_t ms) {
	if (ms <= 0) {
		buf_puts(b, "null");
		return;
	}
	char t[32];
	ward_fmt_rfc3339(ms, t);
	buf_printf(b, "\"%s\"", t);
}

/* Caller holds P.lock (status fields). */
static void check_json(struct buf *b, const struct probe_check *c) {
	buf_puts(b, "{\"name\":");
	buf_json_str(b, c->cfg->name, strlen(c->cfg->name));
	buf_printf(b, ",\"kind\":\"%s\",\"target\":", probe_kind_names[c->cfg->kind]);
	buf_json_str(b, c->instance, strlen(c->instance));
	buf_printf(b, ",\"state\":\"%s\",\"since\":", probe_state_name(c->flap.state));
	put_time(b, c->flap.since_ms);
	buf_printf(b, ",\"consecutive_failures\":%d,\"consecutive_successes\":%d",
	           c->flap.consec_fail, c->flap.consec_ok);
	buf_printf(b, ",\"interval_seconds\":%.3f,\"timeout_seconds\":%.3f",
	           (double)c->cfg->interval_ms / 1000.0, (double)c->cfg->timeout_ms / 1000.0);
	buf_puts(b, ",\"last\":");
	if (!c->has_last) {
		buf_puts(b, "null");
	} else {
		buf_puts(b, "{\"time\":");
		put_time(b, c->last_ms);
		buf_printf(b, ",\"success\":%s,\"reason\":", c->last_success ? "true" : "false");
		const char *r = c->last_reason ? c->last_reason : "";
		buf_json_str(b, r, strlen(r));
		buf_puts(b, ",\"duration_seconds\":");
		buf_put_double(b, c->last_duration_s);
		buf_putc(b, '}');
	}
	buf_puts(b, ",\"labels\":{");
	for (size_t i = 0; i < c->cfg->nlabels; i++) {
		if (i)
			buf_putc(b, ',');
		buf_json_str(b, c->cfg->labels[i].key, strlen(c->cfg->labels[i].key));
		buf_putc(b, ':');
		buf_json_str(b, c->cfg->labels[i].value, strlen(c->cfg->labels[i].value));
	}
	buf_puts(b, "}}");
}

static void result_json(struct buf *b, const struct probe_check *c, const struct probe_result *r) {
	buf_puts(b, "{\"check\":");
	check_json(b, c);
	buf_printf(b, ",\"result\":{\"success\":%s,\"reason\":", r->success ? "true" : "false");
	buf_json_str(b, r->reason.data ? r->reason.data : "", r->reason.len);
	buf_puts(b, ",\"duration_seconds\":");
	buf_put_double(b, r->duration_s);
	buf_puts(b, ",\"samples\":[");
	for (size_t i = 0; i < r->nsamples; i++) {
		const struct probe_sample *s = &r->samples[i];
		if (i)
			buf_putc(b, ',');
		buf_puts(b, "{\"name\":");
		buf_json_str(b, s->name, strlen(s->name));
		buf_puts(b, ",\"labels\":{");
		for (size_t j = 0; j < s->extra.n; j++) {
			if (j)
				buf_putc(b, ',');
			buf_json_str(b, s->extra.v[j].name, strlen(s->extra.v[j].name));
			buf_putc(b, ':');
			buf_json_str(b, s->extra.v[j].value, strlen(s->extra.v[j].value));
		}
		buf_puts(b, "},\"value\":");
		if (isfinite(s->v))
			buf_put_double(b, s->v);
		else {
			buf_putc(b, '"');
			buf_put_double(b, s->v);
			buf_putc(b, '"');
		}
		buf_putc(b, '}');
	}
	buf_puts(b, "]}}");
}

/* ---- waiters (run-now requests) ---- */

static void waiter_unref(struct probe_waiter *w) {
	pthread_mutex_lock(&w->mu);
	int left = --w->refs;
	pthread_mutex_unlock(&w->mu);
	if (left > 0)
		return;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	buf_free(&w->json);
	free(w->name);
	free(w);
}

/* Loop side: completes a waiter and drops the loop's reference. */
static void waiter_finish(struct probe_waiter *w, int status, const char *json, size_t n) {
	pthread_mutex_lock(&w->mu);
	buf_append(&w->json, json, n);
	w->status = status;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	waiter_unref(w);
}

/* ---- scheduling ---- */

static void pump(void);
static void start_run(struct probe_check *c);

static void check_closed(uv_handle_t *h) {
	struct probe_check *c = h->data;
	P.open_handles--;
	conf_unref(c->conf);
	free(c->instance);
	labels_free(&c->base);
	free(c->last_reason);
	free(c);
}

static void check_close(struct probe_check *c) {
	while (c->waiters) {
		struct probe_waiter *w = c->waiters;
		c->waiters = w->next;
		const char *msg =
		        "{\"status\":\"error\",\"errorType\":\"unavailable\","
		        "\"error\":\"the check was reconfigured or ward is stopping; retry\"}";
		waiter_finish(w, 503, msg, strlen(msg));
	}
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, check_closed);
}

static void enqueue(struct probe_check *c, int64_t due, bool front) {
	c->queued = true;
	c->queued_due_ms = due;
	c->qnext = NULL;
	if (front) {
		c->qnext = P.qhead;
		P.qhead = c;
		if (!P.qtail)
			P.qtail = c;
	} else {
		if (P.qtail)
			P.qtail->qnext = c;
		else
			P.qhead = c;
		P.qtail = c;
	}
	P.qlen++;
}

static void dequeue_check(struct probe_check *c) {
	struct probe_check **pp = &P.qhead, *prev = NULL;
	while (*pp && *pp != c) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (!*pp)
		return;
	*pp = c->qnext;
	if (P.qtail == c)
		P.qtail = prev;
	c->queued = false;
	c->qnext = NULL;
	P.qlen--;
}

static int64_t rand_below(int64_t n) {
	if (n <= 0)
		return 0;
	uint64_t r;
	ward_random_bytes(&r, sizeof(r));
	return (int64_t)(r % (uint64_t)n);
}

static void timer_cb(uv_timer_t *t);

static void schedule_next(struct probe_check *c) {
	int64_t now = now_mono_ms();
	int64_t jit = c->cfg->jitter_ms;
	if (jit > c->cfg->interval_ms / 2)
		jit = c->cfg->interval_ms / 2;
	c->due_ms += c->cfg->interval_ms + rand_below(jit);
	if (c->due_ms < now) /* far behind (a stalled loop): skip the missed runs */
		c->due_ms = now + c->cfg->interval_ms;
	/* uv timers count from the loop's cached time; convert our absolute due time. */
	int64_t delay = c->due_ms - (int64_t)uv_now(P.loop);
	uv_timer_start(&c->timer, timer_cb, delay > 0 ? (uint64_t)delay : 0, 0);
}

static void timer_cb(uv_timer_t *t) {
	struct probe_check *c = t->data;
	int64_t due = c->due_ms;
	schedule_next(c);
	if (P.stopping)
		return;
	if (c->running || c->queued) {
		const char *v[] = {probe_kind_names[c->cfg->kind]};
		metric_add(P.m_skipped, v, 1);
		return;
	}
	c->queued_due_ms = due;
	if (P.inflight < P.max_conc && !P.qhead) {
		start_run(c);
		return;
	}
	enqueue(c, due, false);
	pump();
}

static void pump(void) {
	if (P.pumping)
		return;
	P.pumping = true;
	while (!P.stopping && P.qhead && P.inflight < P.max_conc) {
		struct probe_check *c = P.qhead;
		dequeue_check(c);
		start_run(c);
	}
	P.pumping = false;
}

static void finish_run(struct probe_run *r);

static void start_run(struct probe_check *c) {
	struct probe_run *r = ward_xcalloc(1, sizeof(*r));
	int64_t now = now_mono_ms();
	double late = (double)(now - c->queued_due_ms) / 1000.0;
	metric_observe(P.m_lateness, NULL, late < 0 ? 0 : late);
	r->chk = c;
	r->cfg = c->cfg;
	r->loop = P.loop;
	r->start_ns = (int64_t)uv_hrtime();
	probe_result_init(&r->res);
	c->running = true;
	c->run = r;
	P.inflight++;
	if (kind_ops[c->cfg->kind]->start(r) != 0)
		finish_run(r);
}

void probe_run_done(struct probe_run *r) {
	finish_run(r);
}

static void notify_events(const struct flush_job *j) {
	struct sub subs[MAX_SUBS];
	if (!j->nevents)
		return;
	pthread_mutex_lock(&P.lock);
	memcpy(subs, P.subs, sizeof(subs));
	pthread_mutex_unlock(&P.lock);
	for (size_t i = 0; i < j->nevents; i++) {
		const struct event_row *e = &j->events[i];
		struct probe_event ev = {
		        .check = e->name,
		        .kind = e->kind,
		        .target = e->target,
		        .from = e->from,
		        .to = e->to,
		        .reason = e->reason,
		        .t_ms = e->t_ms,
		};
		for (size_t k = 0; k < MAX_SUBS; k++)
			if (subs[k].fn)
				subs[k].fn(subs[k].arg, &ev);
	}
}

static void finish_run(struct probe_run *r) {
	struct probe_check *c = r->chk;
	struct probe_result *res = &r->res;
	int64_t t_ms = ward_now_ms();
	res->duration_s = (double)((int64_t)uv_hrtime() - r->start_ns) / 1e9;
	if (r->cancelled && res->success)
		probe_result_fail(res, "cancelled: ward is shutting down");
	if (res->success && res->reason.len == 0)
		buf_puts(&res->reason, "ok");
	probe_result_add(res, "probe_success", res->success ? 1 : 0, NULL);
	probe_result_add(res, "probe_duration_seconds", res->duration_s, NULL);
	if (!r->cancelled)
		write_samples(c, res, t_ms);

	const char *rv[] = {probe_kind_names[c->cfg->kind], res->success ? "success" : "failure"};
	metric_add(P.m_runs, rv, 1);

	pthread_mutex_lock(&P.lock);
	enum probe_state from = c->flap.state;
	bool changed = false;
	if (!r->cancelled) {
		changed = probe_flap_step(&c->flap, res->success, (int)c->cfg->failure_threshold,
		                          (int)c->cfg->success_threshold, t_ms);
		c->has_last = true;
		c->last_success = res->success;
		free(c->last_reason);
		c->last_reason = ward_strdup(buf_cstr(&res->reason));
		c->last_duration_s = res->duration_s;
		c->last_ms = t_ms;
		c->runs++;
		if (!res->success)
			c->failures++;
	}
	pthread_mutex_unlock(&P.lock);

	if (changed) {
		ward_log(c->flap.state == PROBE_FAILING ? LOG_WARN : LOG_INFO,
		         "check state changed", "check", c->cfg->name, "kind",
		         probe_kind_names[c->cfg->kind], "target", c->instance, "from",
		         probe_state_name(from), "to", probe_state_name(c->flap.state), "reason",
		         buf_cstr(&res->reason), NULL);
		const char *cv[] = {probe_state_name(c->flap.state)};
		metric_add(P.m_changes, cv, 1);
		/* Stored within a second by the flush job, which then tells subscribers. */
		queue_row(c);
		c->last_persist_ms = t_ms;
		queue_event(c, from, buf_cstr(&res->reason), t_ms);
	} else if (!r->cancelled && P.persist_ms > 0 && t_ms - c->last_persist_ms >= P.persist_ms) {
		queue_row(c);
		c->last_persist_ms = t_ms;
	}

	/* Answer run-now requests waiting for this check. */
	if (c->waiters) {
		struct buf j = BUF_INIT;
		pthread_mutex_lock(&P.lock);
		result_json(&j, c, res);
		pthread_mutex_unlock(&P.lock);
		while (c->waiters) {
			struct probe_waiter *w = c->waiters;
			c->waiters = w->next;
			waiter_finish(w, 200, j.data, j.len);
		}
		buf_free(&j);
	}

	probe_result_free(res);
	c->running = false;
	c->run = NULL;
	free(r);
	P.inflight--;
	if (c->retired)
		check_close(c);
	pump();
}

/* ---- building and replacing the check set ---- */

static struct probe_check *check_new(struct conf *conf, const struct probe_check_conf *cfg) {
	struct probe_check *c = ward_xcalloc(1, sizeof(*c));
	c->cfg = cfg;
	c->conf = conf_ref(conf);
	c->instance = probe_instance_of(cfg);
	labels_init(&c->base);
	for (size_t i = 0; i < cfg->nlabels; i++)
		labels_set(&c->base, cfg->labels[i].key, cfg->labels[i].value);
	labels_set(&c->base, "job", "probe");
	labels_set(&c->base, "probe", cfg->name);
	labels_set(&c->base, "instance", c->instance);
	uv_timer_init(P.loop, &c->timer);
	c->timer.data = c;
	P.open_handles++;
	return c;
}

static struct probe_check *find_check(struct probe_check **v, size_t n, const char *name) {
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i]->cfg->name, name))
			return v[i];
	return NULL;
}

/* Replaces the running set with the checks of conf; carries the state of checks that keep
 * their name and kind. Loop thread. */
static void install(struct conf *conf) {
	const struct probe_conf *pc = conf_section(conf, "probes");
	size_t n = pc ? pc->nchecks : 0;
	struct probe_check **nv = ward_xcalloc(n ? n : 1, sizeof(*nv));
	int64_t now = now_mono_ms();
	for (size_t i = 0; i < n; i++) {
		const struct probe_check_conf *cfg = &pc->checks[i];
		struct probe_check *c = check_new(conf, cfg);
		struct probe_check *old = find_check(P.checks, P.nchecks, cfg->name);
		c->due_ms = now + rand_below(cfg->interval_ms);
		if (old && old->cfg->kind == cfg->kind) {
			pthread_mutex_lock(&P.lock);
			c->flap = old->flap;
			c->has_last = old->has_last;
			c->last_success = old->last_success;
			c->last_reason = ward_strdup(old->last_reason);
			c->last_duration_s = old->last_duration_s;
			c->last_ms = old->last_ms;
			c->last_persist_ms = old->last_persist_ms;
			pthread_mutex_unlock(&P.lock);
			if (old->due_ms > now && old->due_ms < now + cfg->interval_ms)
				c->due_ms = old->due_ms;
		}
		nv[i] = c;
	}
	/* Only checks new to this process read their last state from the store. */
	load_states(nv, n, P.checks, P.nchecks);
	pthread_mutex_lock(&P.lock);
	struct probe_check **ov = P.checks;
	size_t on = P.nchecks;
	P.checks = nv;
	P.nchecks = n;
	if (pc)
		P.max_conc = pc->max_concurrency;
	if (pc)
		P.persist_ms = pc->state_persist_ms;
	pthread_mutex_unlock(&P.lock);
	for (size_t i = 0; i < on; i++) {
		struct probe_check *o = ov[i];
		if (o->queued)
			dequeue_check(o);
		/* Waiters on a retired check get the running result or a 503 below. */
		if (o->running) {
			o->retired = true;
			uv_timer_stop(&o->timer);
		} else {
			check_close(o);
		}
	}
	free(ov);
	for (size_t i = 0; i < n; i++) {
		int64_t delay = nv[i]->due_ms - (int64_t)uv_now(P.loop);
		uv_timer_start(&nv[i]->timer, timer_cb, delay > 0 ? (uint64_t)delay : 0, 0);
	}
	pump();
}

/* ---- run-now requests from HTTP threads ---- */

static void async_cb(uv_async_t *a) {
	pthread_mutex_lock(&P.lock);
	struct probe_waiter *list = P.runq;
	P.runq = NULL;
	pthread_mutex_unlock(&P.lock);
	while (list) {
		struct probe_waiter *w = list;
		list = w->next;
		w->next = NULL;
		struct probe_check *c = find_check(P.checks, P.nchecks, w->name);
		if (!c || P.stopping) {
			const char *msg = c ? "{\"status\":\"error\",\"errorType\":\"unavailable\","
			                      "\"error\":\"ward is shutting down\"}"
			                    : NULL;
			if (msg) {
				waiter_finish(w, 503, msg, strlen(msg));
			} else {
				waiter_finish(w, 404, "", 0);
			}
			continue;
		}
		w->next = c->waiters;
		c->waiters = w;
		if (c->running)
			continue;
		if (c->queued)
			dequeue_check(c);
		c->queued_due_ms = now_mono_ms();
		if (P.inflight < P.max_conc)
			start_run(c);
		else
			enqueue(c, c->queued_due_ms, true);
	}
}

/* ---- HTTP handlers (worker threads) ---- */

static void h_list(struct http_req *req, struct http_resp *resp, void *arg) {
	struct buf b = BUF_INIT;
	const char *want = http_param(req, "state");
	buf_puts(&b, "{\"checks\":[");
	pthread_mutex_lock(&P.lock);
	size_t shown = 0;
	for (size_t i = 0; i < P.nchecks; i++) {
		if (want && strcmp(want, probe_state_name(P.checks[i]->flap.state)) != 0)
			continue;
		if (shown++)
			buf_putc(&b, ',');
		check_json(&b, P.checks[i]);
	}
	buf_printf(&b, "],\"in_flight\":%d,\"queued\":%zu,\"max_concurrency\":%lld}", P.inflight,
	           P.qlen, (long long)P.max_conc);
	pthread_mutex_unlock(&P.lock);
	http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

static void h_run(struct http_req *req, struct http_resp *resp, void *arg) {
	const char *tail = req->path_tail ? req->path_tail : "";
	size_t tl = strlen(tail);
	if (tl < 5 || strcmp(tail + tl - 4, "/run") != 0) {
		http_resp_error(resp, 404, "not_found",
		                "unknown path; use POST /api/v1/checks/<name>/run");
		return;
	}
	char *name = ward_strndup(tail, tl - 4);
	int64_t timeout_ms = -1;
	pthread_mutex_lock(&P.lock);
	bool up = P.started && !P.stopping;
	for (size_t i = 0; i < P.nchecks; i++)
		if (!strcmp(P.checks[i]->cfg->name, name))
			timeout_ms = P.checks[i]->cfg->timeout_ms;
	pthread_mutex_unlock(&P.lock);
	if (timeout_ms < 0 || !up) {
		http_resp_error(resp, up ? 404 : 503, up ? "not_found" : "unavailable",
		                "no check named \"%s\"; list them with GET /api/v1/checks", name);
		free(name);
		return;
	}
	struct probe_waiter *w = ward_xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->refs = 2;
	w->name = name;
	pthread_mutex_lock(&P.lock);
	w->next = P.runq;
	P.runq = w;
	pthread_mutex_unlock(&P.lock);
	uv_async_send(&P.async);

	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	int64_t wait_ms = timeout_ms + RUN_WAIT_SLACK_MS;
	dl.tv_sec += (time_t)(wait_ms / 1000);
	dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0)
			break;
	bool done = w->done;
	int status = w->status;
	char *json = done ? ward_strndup(w->json.data ? w->json.data : "", w->json.len) : NULL;
	pthread_mutex_unlock(&w->mu);
	waiter_unref(w);

	if (!done) {
		http_resp_error(resp, 504, "timeout",
		                "check \"%.*s\" did not finish in time (busy probes); try again",
		                (int)(tl - 4), tail);
	} else if (status == 404) {
		http_resp_error(resp, 404, "not_found", "no check named \"%.*s\"", (int)(tl - 4),
		                tail);
	} else if (status != 200) {
		resp->status = status;
		buf_puts(&resp->body, json);
	} else {
		bool ok = strstr(json, "\"result\":{\"success\":true") != NULL;
		struct buf det = BUF_INIT;
		buf_printf(&det, "{\"success\":%s}", ok ? "true" : "false");
		char target[256];
		snprintf(target, sizeof(target), "%.*s", (int)(tl - 4), tail);
		if (ward_audit_req(P.ctx, req, "check.run", target, ok ? "ok" : "failing",
		                   buf_cstr(&det)) != 0)
			http_resp_error(resp, 500, "internal",
			                "the run could not be audited; see the server log");
		else
			http_resp_json(resp, 200, json);
		buf_free(&det);
	}
	free(json);
}

/* ---- module life ---- */

static double inflight_fn(void *arg) {
	return P.inflight;
}

static double queued_fn(void *arg) {
	return (double)P.qlen;
}

static void probe_init(void) {
	static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
	                                 0.1,   0.25,   0.5,   1,    2.5,   5,    10};
	static const char *const kind_result[] = {"kind", "result", NULL};
	static const char *const kind_l[] = {"kind", NULL};
	static const char *const state_l[] = {"to", NULL};
	probe_config_register();
	store_register_migrations("probe", migrations, sizeof(migrations) / sizeof(migrations[0]));
	P.m_lateness = metric_register("ward_probe_schedule_lateness_seconds",
	                               "How late probes start after their due time (queueing "
	                               "included).",
	                               METRIC_HISTOGRAM, NULL, buckets,
	                               sizeof(buckets) / sizeof(buckets[0]));
	P.m_runs = metric_register("ward_probe_runs_total", "Probe runs by kind and result.",
	                           METRIC_COUNTER, kind_result, NULL, 0);
	P.m_skipped = metric_register("ward_probe_skipped_total",
	                              "Runs skipped because the previous run of the check had not "
	                              "finished or started yet.",
	                              METRIC_COUNTER, kind_l, NULL, 0);
	P.m_changes = metric_register("ward_probe_state_changes_total",
	                              "Check state changes by new state.", METRIC_COUNTER, state_l,
	                              NULL, 0);
	metric_register_fn("ward_probe_in_flight", "Probe runs in flight.", METRIC_GAUGE,
	                   inflight_fn, NULL);
	metric_register_fn("ward_probe_queued", "Due probe runs waiting for a slot.", METRIC_GAUGE,
	                   queued_fn, NULL);
}

/* GET /health: counts by state. Degraded when more runs wait than may run at once: the
 * probes are falling behind their schedule. Failing checks are their services' problem. */
static int probes_health(void *arg, struct buf *details) {
	size_t by[3] = {0};
	pthread_mutex_lock(&P.lock);
	for (size_t i = 0; i < P.nchecks; i++)
		by[P.checks[i]->flap.state]++;
	int inflight = P.inflight;
	size_t queued = P.qlen;
	int64_t max = P.max_conc;
	pthread_mutex_unlock(&P.lock);
	buf_printf(details,
	           "{\"checks\":%zu,\"ok\":%zu,\"failing\":%zu,\"unknown\":%zu,"
	           "\"in_flight\":%d,\"queued\":%zu}",
	           by[0] + by[1] + by[2], by[PROBE_OK], by[PROBE_FAILING], by[PROBE_UNKNOWN],
	           inflight, queued);
	return (int64_t)queued > max ? 1 : 0;
}

static int probe_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	P.ctx = ctx;
	P.loop = ctx->loop;
	P.stopping = false;
	P.max_conc = 256;
	if (probe_http_global_init(P.loop) != 0) {
		ward_err_set(err, "probes: libcurl could not be set up (out of memory?)");
		return -1;
	}
	uv_async_init(P.loop, &P.async, async_cb);
	uv_timer_init(P.loop, &P.flush_timer);
	P.open_handles += 2;
	uv_timer_start(&P.flush_timer, flush_tick, FLUSH_EVERY_MS, FLUSH_EVERY_MS);
	install((struct conf *)c);
	pthread_mutex_lock(&P.lock);
	P.started = true;
	pthread_mutex_unlock(&P.lock);
	http_route("GET", "/api/v1/checks", ROLE_VIEWER, h_list, NULL);
	ward_health_register("probes", probes_health, NULL);
	http_route("POST", "/api/v1/checks/*", ROLE_OPERATOR, h_run, NULL);
	char nbuf[32];
	snprintf(nbuf, sizeof(nbuf), "%zu", P.nchecks);
	ward_log(LOG_INFO, "probes started", "checks", nbuf, NULL);
	return 0;
}

static int probe_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	if (!P.started)
		return 0;
	install((struct conf *)c);
	return 0;
}

static void handle_closed(uv_handle_t *h) {
	P.open_handles--;
}

static void probe_stop(struct ward_ctx *ctx) {
	if (!P.started)
		return;
	pthread_mutex_lock(&P.lock);
	P.stopping = true;
	P.started = false;
	pthread_mutex_unlock(&P.lock);
	while (P.qhead)
		dequeue_check(P.qhead);
	for (size_t i = 0; i < P.nchecks; i++) {
		struct probe_check *c = P.checks[i];
		uv_timer_stop(&c->timer);
		if (c->running && c->run) {
			c->run->cancelled = true;
			kind_ops[c->cfg->kind]->cancel(c->run);
		}
	}
	while (P.inflight > 0)
		uv_run(P.loop, UV_RUN_ONCE);
	/* Requests that arrived meanwhile get an answer; the HTTP server has stopped already. */
	async_cb(&P.async);
	pthread_mutex_lock(&P.lock);
	struct probe_check **v = P.checks;
	size_t n = P.nchecks;
	P.checks = NULL;
	P.nchecks = 0;
	pthread_mutex_unlock(&P.lock);
	for (size_t i = 0; i < n; i++)
		check_close(v[i]);
	free(v);
	uv_timer_stop(&P.flush_timer);
	uv_close((uv_handle_t *)&P.flush_timer, handle_closed);
	uv_close((uv_handle_t *)&P.async, handle_closed);
	probe_http_global_close();
	while (P.open_handles > 0)
		uv_run(P.loop, UV_RUN_ONCE);
	flush_sync();
}

const struct ward_module probe_module = {
        .name = "probe",
        .init = probe_init,
        .start = probe_start,
        .apply = probe_apply,
        .stop = probe_stop,
};
