/* module.c: the notify module's life and threads. The engine (engine.c) is guarded by
 * N.mu; the loop thread ticks it from a timer (and at once through an async handle when
 * alerts arrive or a delivery ends), turns its notifications into jobs kept in the store
 * table notify_queue until delivered or expired, and hands due jobs to delivery worker
 * threads, so a receiver that hangs only holds one worker up to delivery_timeout.
 *
 * State in the store (component "notify"): silences (expired ones kept as history),
 * the delivery queue, the notification log, escalations (so a restart resumes them) and
 * the HMAC key of ack links. Lock order: N.mu before N.qmu; neither is held while calling
 * subscribers.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/core.h"
#include "notify/notify_module.h"
#include "store/store.h"

struct nfy_state N = {
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .qmu = PTHREAD_MUTEX_INITIALIZER,
        .qcv = PTHREAD_COND_INITIALIZER,
};

static const struct store_migration migrations[] = {
        {1, "CREATE TABLE notify_silences(id TEXT PRIMARY KEY, matchers TEXT NOT NULL, "
            "starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
            "created_by TEXT, comment TEXT);"
            "CREATE TABLE notify_queue(id INTEGER PRIMARY KEY, receiver TEXT, integration TEXT, "
            "target TEXT, spec TEXT, group_key TEXT, attempts INTEGER, created_ms INTEGER, "
            "next_ms INTEGER, expires_ms INTEGER, last_error TEXT);"
            "CREATE TABLE notify_log(id INTEGER PRIMARY KEY, ts_ms INTEGER, receiver TEXT, "
            "integration TEXT, target TEXT, group_key TEXT, attempt INTEGER, result TEXT, "
            "error TEXT, seconds REAL);"
            "CREATE INDEX notify_log_ts ON notify_log(ts_ms);"
            "CREATE TABLE notify_escalations(fp TEXT PRIMARY KEY, policy TEXT, level INTEGER, "
            "started_ms INTEGER, acked_ms INTEGER, acked_by TEXT, resolved_ms INTEGER, "
            "alert TEXT);"
            "CREATE TABLE notify_kv(k TEXT PRIMARY KEY, v TEXT)"},
};

static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10,  30};

static double queued_fn(void *arg) {
	pthread_mutex_lock(&N.qmu);
	double v = (double)(N.npending + N.nready + N.nrunning);
	pthread_mutex_unlock(&N.qmu);
	return v;
}

static void notify_init(void) {
	nfy_config_register();
	store_register_migrations("notify", migrations, sizeof(migrations) / sizeof(migrations[0]));
	static const char *const l3[] = {"receiver", "integration", "result", NULL};
	static const char *const l2[] = {"receiver", "integration", NULL};
	static const char *const l1[] = {"integration", NULL};
	N.m_total = metric_register("ward_notifications_total",
	                            "Notification delivery attempts by receiver, integration and "
	                            "result (success, failure, expired).",
	                            METRIC_COUNTER, l3, NULL, 0);
	N.m_failed = metric_register("ward_notifications_failed_total",
	                             "Notification delivery attempts that failed (each is retried "
	                             "until it expires).",
	                             METRIC_COUNTER, l2, NULL, 0);
	N.m_latency = metric_register("ward_notification_latency_seconds",
	                              "Time from a notification being queued to its delivery.",
	                              METRIC_HISTOGRAM, l1, latency_buckets,
	                              sizeof(latency_buckets) / sizeof(latency_buckets[0]));
	metric_register_fn("ward_notifications_queued",
	                   "Notifications waiting for delivery or for a retry.", METRIC_GAUGE,
	                   queued_fn, NULL);
}

/* ---- subscribers ---- */

int notify_subscribe(notify_event_fn fn, void *arg) {
	pthread_mutex_lock(&N.qmu);
	int rc = -1;
	if (N.nsubs < NFY_MAX_SUBS) {
		N.subs[N.nsubs].fn = fn;
		N.subs[N.nsubs].arg = arg;
		N.nsubs++;
		rc = 0;
	}
	pthread_mutex_unlock(&N.qmu);
	return rc;
}

/* Takes the engine's pending events (call with N.mu held). */
void nfy_take_events(struct nfy_events *out) {
	*out = N.e.ev;
	memset(&N.e.ev, 0, sizeof(N.e.ev));
}

void nfy_dispatch_events(struct nfy_events *ev) {
	size_t ns;
	struct nfy_sub subs[NFY_MAX_SUBS];
	pthread_mutex_lock(&N.qmu);
	ns = N.nsubs;
	memcpy(subs, N.subs, sizeof(subs));
	pthread_mutex_unlock(&N.qmu);
	for (size_t i = 0; i < ev->n; i++)
		for (size_t s = 0; s < ns; s++)
			subs[s].fn(&ev->v[i], subs[s].arg);
	nfy_events_clear(ev);
	free(ev->v);
	free(ev->strs);
	free(ev->lss);
	memset(ev, 0, sizeof(*ev));
}

/* ---- the store ---- */

static int64_t new_id(void) {
	static int64_t last;
	int64_t id = ward_now_ms() * 1024;
	pthread_mutex_lock(&N.qmu);
	if (id <= last)
		id = last + 1;
	last = id;
	pthread_mutex_unlock(&N.qmu);
	return id;
}

void nfy_store_silence(const struct nfy_silence *s) {
	if (!N.ctx)
		return;
	struct ward_err err;
	ward_err_clear(&err);
	char *mj = json_dumps(s->matchers_json, JSON_COMPACT);
	struct store_val del[] = {SV_TEXT(s->id)};
	struct store_val p[] = {SV_TEXT(s->id),     SV_TEXT(mj),           SV_INT(s->starts_ms),
	                        SV_INT(s->ends_ms), SV_INT(s->updated_ms), SV_TEXT(s->created_by),
	                        SV_TEXT(s->comment)};
	if (store_exec(N.ctx->store, "DELETE FROM notify_silences WHERE id = ?", del, 1, NULL,
	               &err) != 0 ||
	    store_exec(N.ctx->store,
	               "INSERT INTO notify_silences(id, matchers, starts_ms, ends_ms, updated_ms, "
	               "created_by, comment) VALUES (?, ?, ?, ?, ?, ?, ?)",
	               p, 7, NULL, &err) != 0)
		ward_log(LOG_ERROR, "notify: saving a silence failed", "error", err.msg, NULL);
	free(mj);
}

static void store_escs(void) {
	struct ward_err err;
	for (size_t i = 0; i < N.e.ndirty; i++) {
		struct nfy_esc *x = nfy_engine_find_esc(&N.e, N.e.dirty_escs[i]);
		if (!x)
			continue;
		ward_err_clear(&err);
		char *aj = x->alert ? json_dumps(x->alert, JSON_COMPACT) : NULL;
		struct store_val del[] = {SV_TEXT(x->fp)};
		struct store_val p[] = {SV_TEXT(x->fp),         SV_TEXT(x->policy),
		                        SV_INT(x->level),       SV_INT(x->started_ms),
		                        SV_INT(x->acked_ms),    SV_TEXT(x->acked_by),
		                        SV_INT(x->resolved_ms), SV_TEXT(aj)};
		if (store_exec(N.ctx->store, "DELETE FROM notify_escalations WHERE fp = ?", del, 1,
		               NULL, &err) != 0 ||
		    store_exec(N.ctx->store,
		               "INSERT INTO notify_escalations(fp, policy, level, started_ms, "
		               "acked_ms, acked_by, resolved_ms, alert) VALUES (?,?,?,?,?,?,?,?)",
		               p, 8, NULL, &err) != 0)
			ward_log(LOG_ERROR, "notify: saving an escalation failed", "error", err.msg,
			         NULL);
		free(aj);
	}
	N.e.ndirty = 0;
}

static void job_insert(struct nfy_job *j) {
	struct ward_err err;
	ward_err_clear(&err);
	struct store_val p[] = {SV_INT(j->id),           SV_TEXT(j->receiver),
	                        SV_TEXT(j->integration), SV_TEXT(j->target),
	                        SV_TEXT(j->spec),        SV_TEXT(j->group_key),
	                        SV_INT(j->attempts),     SV_INT(j->created_ms),
	                        SV_INT(j->next_ms),      SV_INT(j->expires_ms)};
	if (store_exec(
	            N.ctx->store,
	            "INSERT INTO notify_queue(id, receiver, integration, target, spec, group_key, "
	            "attempts, created_ms, next_ms, expires_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
	            p, 10, NULL, &err) != 0)
		ward_log(LOG_ERROR, "notify: queueing a notification failed", "error", err.msg,
		         NULL);
	pthread_mutex_lock(&N.qmu);
	j->stored = true;
	pthread_mutex_unlock(&N.qmu);
}

static void job_log(struct nfy_job *j, const char *result, int64_t now) {
	struct ward_err err;
	ward_err_clear(&err);
	struct store_val p[] = {
	        SV_INT(new_id()),        SV_INT(now),        SV_TEXT(j->receiver),
	        SV_TEXT(j->integration), SV_TEXT(j->target), SV_TEXT(j->group_key),
	        SV_INT(j->attempts),     SV_TEXT(result),    SV_TEXT(j->error[0] ? j->error : NULL),
	        SV_REAL(j->seconds)};
	if (store_exec(
	            N.ctx->store,
	            "INSERT INTO notify_log(id, ts_ms, receiver, integration, target, group_key, "
	            "attempt, result, error, seconds) VALUES (?,?,?,?,?,?,?,?,?,?)",
	            p, 10, NULL, &err) != 0)
		ward_log(LOG_ERROR, "notify: logging a notification failed", "error", err.msg,
		         NULL);
}

/* ---- delivery workers ---- */

static void record_job(struct nfy_job *j);

static void *worker_main(void *arg) {
	(void)arg;
	pthread_mutex_lock(&N.qmu);
	for (;;) {
		while (!N.stopping && N.nready == 0)
			pthread_cond_wait(&N.qcv, &N.qmu);
		if (N.stopping)
			break;
		struct nfy_job *j = N.ready[0];
		memmove(N.ready, N.ready + 1, (N.nready - 1) * sizeof(*N.ready));
		N.nready--;
		N.nrunning++;
		int64_t timeout = N.delivery_timeout_ms;
		pthread_mutex_unlock(&N.qmu);
		nfy_deliver(j, timeout);
		pthread_mutex_lock(&N.qmu);
		bool stored = j->stored;
		pthread_mutex_unlock(&N.qmu);
		if (stored)
			record_job(j); /* store writes stay off the loop thread */
		pthread_mutex_lock(&N.qmu);
		N.nrunning--;
		NFY_PUSH(N.done, N.ndone, N.capdone, j);
		if (N.kick_ready)
			uv_async_send(&N.kick);
	}
	pthread_mutex_unlock(&N.qmu);
	return NULL;
}

/* ---- the tick (loop thread) ---- */

static void timer_cb(uv_timer_t *h);

/* Records an attempt: metrics, the log row, and the queue row deleted (delivered or
 * expired) or updated with the next attempt. Runs on the worker that made the attempt when
 * the queue row already exists, else on the loop thread after the row is written. */
static void record_job(struct nfy_job *j) {
	struct ward_err err;
	ward_err_clear(&err);
	int64_t now = ward_now_ms();
	j->attempts++;
	j->recorded = true;
	const char *result;
	if (j->ok) {
		result = "success";
		metric_observe(N.m_latency, (const char *const[]){j->integration},
		               (double)(ward_mono_ms() - j->enqueued_mono_ms) / 1000.0);
	} else if (now >= j->expires_ms) {
		result = "expired";
	} else {
		result = "failure";
	}
	metric_add(N.m_total, (const char *const[]){j->receiver, j->integration, result}, 1);
	if (!j->ok)
		metric_add(N.m_failed, (const char *const[]){j->receiver, j->integration}, 1);
	job_log(j, result, now);
	if (!j->ok) {
		ward_log(LOG_WARN, "notify: delivery failed", "receiver", j->receiver,
		         "integration", j->integration, "target", j->target, "error", j->error,
		         "result", result, NULL);
	}
	struct store_val id[] = {SV_INT(j->id)};
	if (j->ok || now >= j->expires_ms) {
		store_exec(N.ctx->store, "DELETE FROM notify_queue WHERE id = ?", id, 1, NULL,
		           &err);
		j->retry = false;
		return;
	}
	uint32_t r;
	ward_random_bytes(&r, sizeof(r));
	double jitter = (double)r / 4294967296.0;
	int64_t retry_initial = 1000, retry_max = 300000;
	pthread_mutex_lock(&N.mu);
	if (N.e.cfg) {
		retry_initial = N.e.cfg->c->retry_initial_ms;
		retry_max = N.e.cfg->c->retry_max_ms;
	}
	pthread_mutex_unlock(&N.mu);
	j->next_ms = now + nfy_backoff_ms(j->attempts, retry_initial, retry_max, jitter);
	struct store_val p[] = {SV_INT(j->attempts), SV_INT(j->next_ms), SV_TEXT(j->error),
	                        SV_INT(j->id)};
	store_exec(N.ctx->store,
	           "UPDATE notify_queue SET attempts = ?, next_ms = ?, last_error = ? WHERE id = ?",
	           p, 4, NULL, &err);
	j->retry = true;
}

/* On the loop thread: the event for subscribers, then the job is freed or waits. */
static void finish_job(struct nfy_job *j, int64_t now) {
	if (!j->recorded)
		record_job(j);
	struct nfy_events ev = {0};
	const char *result = j->ok ? "success" : j->retry ? "failure" : "expired";
	nfy_events_push(&ev, NOTIFY_EV_NOTIFICATION, now, "", NULL, j->receiver, j->integration,
	                result, NULL, 0, j->group_key);
	nfy_dispatch_events(&ev);
	if (!j->retry) {
		nfy_job_free(j);
		return;
	}
	j->recorded = false;
	pthread_mutex_lock(&N.qmu);
	NFY_PUSH(N.pending, N.npending, N.cappending, j);
	pthread_mutex_unlock(&N.qmu);
}

/* Order matters for latency: new jobs go to the workers first and are written to
 * notify_queue right after (their ids are assigned before, and a finished job is only
 * recorded further down in a later step, after its row exists); the store writes of
 * finished jobs come last. */
static void tick(void) {
	int64_t now = ward_now_ms();
	struct nfy_job **jobs = NULL;
	size_t njobs = 0, capjobs = 0;
	struct nfy_events ev;

	pthread_mutex_lock(&N.mu);
	int64_t next = nfy_engine_tick(&N.e, now);
	for (size_t i = 0; i < N.e.nouts && N.e.cfg; i++)
		nfy_out_to_jobs(N.e.cfg, &N.e.outs[i], now, &jobs, &njobs, &capjobs);
	nfy_outs_clear(&N.e);
	store_escs();
	nfy_take_events(&ev);
	pthread_mutex_unlock(&N.mu);

	for (size_t i = 0; i < njobs; i++)
		jobs[i]->id = new_id();
	pthread_mutex_lock(&N.qmu);
	for (size_t i = 0; i < njobs; i++)
		NFY_PUSH(N.ready, N.nready, N.capready, jobs[i]);
	for (size_t i = 0; i < N.npending;) {
		struct nfy_job *j = N.pending[i];
		if (j->next_ms <= now) {
			NFY_PUSH(N.ready, N.nready, N.capready, j);
			N.pending[i] = N.pending[--N.npending];
			continue;
		}
		i++;
	}
	if (N.nready)
		pthread_cond_broadcast(&N.qcv);
	pthread_mutex_unlock(&N.qmu);

	nfy_dispatch_events(&ev);
	for (size_t i = 0; i < njobs; i++)
		job_insert(jobs[i]);
	free(jobs);

	/* results of the workers */
	pthread_mutex_lock(&N.qmu);
	struct nfy_job **done = N.done;
	size_t ndone = N.ndone;
	N.done = NULL;
	N.ndone = N.capdone = 0;
	pthread_mutex_unlock(&N.qmu);
	for (size_t i = 0; i < ndone; i++)
		finish_job(done[i], now);
	free(done);

	pthread_mutex_lock(&N.qmu);
	for (size_t i = 0; i < N.npending; i++)
		if (N.pending[i]->next_ms < next)
			next = N.pending[i]->next_ms;
	pthread_mutex_unlock(&N.qmu);
	int64_t wait = next - ward_now_ms();
	if (wait < 1)
		wait = 1;
	if (wait > 1000)
		wait = 1000;
	uv_timer_start(&N.timer, timer_cb, (uint64_t)wait, 0);
}

static void timer_cb(uv_timer_t *h) {
	(void)h;
	if (N.running)
		tick();
}

static void kick_cb(uv_async_t *h) {
	(void)h;
	if (N.running)
		tick();
}

void nfy_kick(void) {
	pthread_mutex_lock(&N.qmu);
	if (N.kick_ready)
		uv_async_send(&N.kick);
	pthread_mutex_unlock(&N.qmu);
}

/* ---- the ingestion contract ---- */

int notify_post_alerts(const struct notify_alert *v, size_t n, struct ward_err *err) {
	struct nfy_events ev;
	pthread_mutex_lock(&N.mu);
	if (!N.running) {
		pthread_mutex_unlock(&N.mu);
		ward_err_set(err, "notify is not running; alerts cannot be taken yet");
		return -1;
	}
	nfy_engine_post(&N.e, v, n, ward_now_ms());
	nfy_take_events(&ev);
	pthread_mutex_unlock(&N.mu);
	nfy_dispatch_events(&ev);
	nfy_kick();
	return 0;
}

int notify_ack(const char *fingerprint, const char *actor, struct ward_err *err) {
	struct nfy_events ev;
	if (!fingerprint || strlen(fingerprint) != 16) {
		ward_err_set(err, "a fingerprint is 16 hex characters");
		return -1;
	}
	pthread_mutex_lock(&N.mu);
	if (!N.running) {
		pthread_mutex_unlock(&N.mu);
		ward_err_set(err, "notify is not running");
		return -1;
	}
	int rc = nfy_engine_ack(&N.e, fingerprint, actor, ward_now_ms());
	if (N.ctx)
		store_escs();
	nfy_take_events(&ev);
	pthread_mutex_unlock(&N.mu);
	nfy_dispatch_events(&ev);
	return rc;
}

/* ---- start / apply / stop ---- */

static int load_silence_row(void *arg, const struct store_val *c, size_t n) {
	int64_t now = *(int64_t *)arg;
	json_t *body = json_object();
	json_t *m = json_loads(c[1].s ? c[1].s : "[]", 0, NULL);
	json_object_set_new(body, "matchers", m ? m : json_array());
	json_object_set_new(body, "id", json_string(c[0].s));
	json_object_set_new(body, "createdBy", json_string(c[5].s ? c[5].s : "?"));
	json_object_set_new(body, "comment", json_string(c[6].s ? c[6].s : ""));
	/* validate with a far-future end, then put the stored times back */
	char t[32];
	ward_fmt_rfc3339(now + 86400000, t);
	json_object_set_new(body, "endsAt", json_string(t));
	struct ward_err err;
	ward_err_clear(&err);
	struct nfy_silence *s = nfy_silence_from_json(body, now, &err);
	json_decref(body);
	if (!s) {
		ward_log(LOG_WARN, "notify: a stored silence does not load", "id", c[0].s, "error",
		         err.msg, NULL);
		return 0;
	}
	s->starts_ms = c[2].i;
	s->ends_ms = c[3].i;
	s->updated_ms = c[4].i;
	nfy_engine_add_silence(&N.e, s);
	return 0;
}

static int load_job_row(void *arg, const struct store_val *c, size_t n) {
	struct nfy_job *j = ward_xcalloc(1, sizeof(*j));
	j->id = c[0].i;
	j->receiver = ward_strdup(c[1].s);
	j->integration = ward_strdup(c[2].s);
	j->target = ward_strdup(c[3].s);
	j->spec = ward_strdup(c[4].s);
	j->group_key = ward_strdup(c[5].s);
	j->attempts = (int)c[6].i;
	j->created_ms = c[7].i;
	j->next_ms = c[8].i;
	j->expires_ms = c[9].i;
	j->enqueued_mono_ms = ward_mono_ms();
	j->stored = true;
	NFY_PUSH(N.pending, N.npending, N.cappending, j);
	return 0;
}

static int load_esc_row(void *arg, const struct store_val *c, size_t n) {
	int64_t now = *(int64_t *)arg;
	json_t *a = json_loads(c[7].s ? c[7].s : "", 0, NULL);
	if (!a)
		return 0;
	/* the alert comes back as firing until its source says otherwise */
	struct notify_alert na = {0};
	labels_init(&na.labels);
	labels_init(&na.annotations);
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(a, "labels"), k, v)
	        labels_set(&na.labels, k, json_string_value(v));
	json_object_foreach(json_object_get(a, "annotations"), k, v)
	        labels_set(&na.annotations, k, json_string_value(v));
	const char *st = json_string_value(json_object_get(a, "startsAt"));
	if (st)
		ward_parse_time(st, strlen(st), &na.starts_at_ms);
	na.generator_url = json_string_value(json_object_get(a, "generatorURL"));
	nfy_engine_post(&N.e, &na, 1, now);
	labels_free(&na.labels);
	labels_free(&na.annotations);
	struct nfy_esc *x = ward_xcalloc(1, sizeof(*x));
	snprintf(x->fp, sizeof(x->fp), "%s", c[0].s ? c[0].s : "");
	x->policy = ward_strdup(c[1].s);
	x->level = (int)c[2].i;
	x->started_ms = c[3].i;
	x->acked_ms = c[4].i;
	x->acked_by = ward_strdup(c[5].s);
	x->resolved_ms = c[6].i;
	x->alert = a;
	nfy_engine_add_esc(&N.e, x);
	return 0;
}

static int load_key_row(void *arg, const struct store_val *c, size_t n) {
	if (c[0].s && ward_unhex(c[0].s, strlen(c[0].s), N.e.ack_key, 32) == 0)
		N.e.have_key = true;
	return 0;
}

static int notify_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	const struct nc_conf *nc = conf_section(c, "notify");
	struct nfy_cfg *cfg = nfy_cfg_compile(nc, err);
	if (!cfg)
		return -1;
	N.ctx = ctx;
	N.conf = conf_ref((struct conf *)c);
	nfy_engine_init(&N.e);
	nfy_engine_set_cfg(&N.e, cfg);
	N.e.ack_base = nc->external_url;
	N.delivery_timeout_ms = nc->delivery_timeout_ms;
	int64_t now = ward_now_ms();
	int64_t since = now - nc->history_ms;
	struct store_val ps[] = {SV_INT(since)};
	store_exec(ctx->store, "DELETE FROM notify_silences WHERE ends_ms < ?", ps, 1, NULL, NULL);
	store_exec(ctx->store, "DELETE FROM notify_log WHERE ts_ms < ?", ps, 1, NULL, NULL);
	store_exec(ctx->store,
	           "DELETE FROM notify_escalations WHERE (acked_ms > 0 AND acked_ms < ?) OR "
	           "(resolved_ms > 0 AND resolved_ms < ?)",
	           (struct store_val[]){SV_INT(since), SV_INT(since)}, 2, NULL, NULL);
	if (store_query(ctx->store,
	                "SELECT id, matchers, starts_ms, ends_ms, updated_ms, created_by, comment "
	                "FROM notify_silences",
	                NULL, 0, load_silence_row, &now, err) < 0 ||
	    store_query(
	            ctx->store,
	            "SELECT fp, policy, level, started_ms, acked_ms, acked_by, resolved_ms, alert "
	            "FROM notify_escalations WHERE acked_ms = 0 AND resolved_ms = 0",
	            NULL, 0, load_esc_row, &now, err) < 0 ||
	    store_query(ctx->store,
	                "SELECT id, receiver, integration, target, spec, group_key, attempts, "
	                "created_ms, next_ms, expires_ms FROM notify_queue",
	                NULL, 0, load_job_row, NULL, err) < 0 ||
	    store_query(ctx->store, "SELECT v FROM notify_kv WHERE k = 'ack_key'", NULL, 0,
	                load_key_row, NULL, err) < 0)
		return -1;
	if (!N.e.have_key) {
		char hex[65];
		ward_random_bytes(N.e.ack_key, 32);
		ward_hex(N.e.ack_key, 32, hex);
		struct store_val p[] = {SV_TEXT(hex)};
		if (store_exec(ctx->store, "INSERT INTO notify_kv(k, v) VALUES ('ack_key', ?)", p,
		               1, NULL, err) != 0)
			return -1;
		N.e.have_key = true;
	}
	nfy_api_register(ctx);
	uv_timer_init(ctx->loop, &N.timer);
	uv_async_init(ctx->loop, &N.kick, kick_cb);
	N.stopping = false;
	for (int i = 0; i < NFY_WORKERS; i++)
		pthread_create(&N.workers[i], NULL, worker_main, NULL);
	pthread_mutex_lock(&N.qmu);
	N.kick_ready = true;
	pthread_mutex_unlock(&N.qmu);
	pthread_mutex_lock(&N.mu);
	N.running = true;
	pthread_mutex_unlock(&N.mu);
	uv_timer_start(&N.timer, timer_cb, 10, 0);
	ward_log(LOG_INFO, "notify: started", NULL);
	return 0;
}

static int notify_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	if (!N.running)
		return 0;
	const struct nc_conf *nc = conf_section(c, "notify");
	struct nfy_cfg *cfg = nfy_cfg_compile(nc, err);
	if (!cfg)
		return -1;
	pthread_mutex_lock(&N.mu);
	struct conf *old = N.conf;
	N.conf = conf_ref((struct conf *)c);
	nfy_engine_set_cfg(&N.e, cfg);
	N.e.ack_base = nc->external_url;
	pthread_mutex_unlock(&N.mu);
	pthread_mutex_lock(&N.qmu);
	N.delivery_timeout_ms = nc->delivery_timeout_ms;
	pthread_mutex_unlock(&N.qmu);
	conf_unref(old);
	nfy_kick();
	return 0;
}

static void free_jobs(struct nfy_job **v, size_t n) {
	for (size_t i = 0; i < n; i++)
		nfy_job_free(v[i]);
	free(v);
}

static void notify_stop(struct ward_ctx *ctx) {
	if (!N.running)
		return;
	pthread_mutex_lock(&N.mu);
	N.running = false;
	pthread_mutex_unlock(&N.mu);
	pthread_mutex_lock(&N.qmu);
	N.stopping = true;
	N.kick_ready = false;
	pthread_cond_broadcast(&N.qcv);
	pthread_mutex_unlock(&N.qmu);
	for (int i = 0; i < NFY_WORKERS; i++)
		pthread_join(N.workers[i], NULL);
	uv_timer_stop(&N.timer);
	/* finished deliveries are recorded; the rest stays in notify_queue for the next start */
	int64_t now = ward_now_ms();
	struct nfy_job **done = N.done;
	size_t ndone = N.ndone;
	N.done = NULL;
	N.ndone = N.capdone = 0;
	for (size_t i = 0; i < ndone; i++)
		finish_job(done[i], now);
	free(done);
	pthread_mutex_lock(&N.mu);
	store_escs();
	nfy_engine_free(&N.e);
	pthread_mutex_unlock(&N.mu);
	free_jobs(N.pending, N.npending);
	free_jobs(N.ready, N.nready);
	N.pending = N.ready = NULL;
	N.npending = N.nready = N.cappending = N.capready = 0;
	conf_unref(N.conf);
	N.conf = NULL;
	N.ctx = NULL;
}

const struct ward_module notify_module = {
        .name = "notify",
        .init = notify_init,
        .start = notify_start,
        .apply = notify_apply,
        .stop = notify_stop,
};
