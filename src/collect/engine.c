/* engine.c: the scrape engine on the daemon's libuv loop. HTTP goes through one libcurl
 * multi handle driven by the loop (curl_multi_socket_action with a uv_poll_t per socket and
 * one uv_timer_t for curl's timeouts), so no thread waits on a socket. Each target has a
 * timer at a stable offset inside its interval (hash of its URL and labels: the load is
 * spread, and a target is scraped at the same phase after a restart), at most
 * max_concurrent requests are in flight (the rest wait in a FIFO), a target is never
 * scraped twice at once (a tick that finds it busy is skipped, as Prometheus does).
 * A finished body is parsed and stored on libuv's worker pool (scrape_process), so parsing
 * and the WAL fsync never block the loop. Status for GET /api/v1/targets is guarded by
 * eng.lock; everything else belongs to the loop thread.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "collect/collect_module.h"
#include "tsdb/tsdb.h"

struct target {
	struct scrape_target_def def;
	struct conf *conf; /* keeps job (and its relabel rules) alive */
	const struct scrape_job_conf *job;
	struct relabel *mrl;
	int64_t interval_ms, timeout_ms, body_limit, line_limit;
	uv_timer_t timer;
	bool timer_open;
	CURL *easy;
	struct curl_slist *hdrs;
	struct buf body;
	bool body_over;
	char ctype[128];
	bool busy; /* from request start to the end of processing */
	bool queued;
	bool orphan; /* removed by a reload while busy: freed when done */
	bool stale_on_free;
	int64_t start_mono_ns, start_ms;
	uv_work_t work;
	struct scrape_series_set *prev;
	struct scrape_result res;
	char curl_err[CURL_ERROR_SIZE];
	/* status, under eng.lock */
	char health[16];
	char last_error[512];
	int64_t last_scrape_ms;
	double last_duration;
};

struct poll_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
};

static struct {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t curl_timer;
	bool started;
	pthread_mutex_t lock; /* targets array and their status fields */
	struct target **t;
	size_t n;
	struct target **pending;
	size_t npending, cappending;
	size_t inflight, max_inflight;
	size_t working;          /* worker-pool jobs not yet done */
	struct target **orphans; /* removed by a reload while busy; freed when done */
	size_t norphans;
	struct tsdb *(*db)(void);
} eng = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void start_scrape(struct target *t);

/* ---- curl <-> uv ---- */

static void check_done(void);

static void on_poll(uv_poll_t *h, int status, int events) {
	struct poll_ctx *p = h->data;
	int flags = 0, running;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(eng.multi, p->fd, flags, &running);
	check_done();
}

static void poll_closed(uv_handle_t *h) {
	free(h->data);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
	struct poll_ctx *p = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (p) {
			uv_poll_stop(&p->poll);
			uv_close((uv_handle_t *)&p->poll, poll_closed);
			curl_multi_assign(eng.multi, s, NULL);
		}
		return 0;
	}
	if (!p) {
		p = ward_xcalloc(1, sizeof(*p));
		p->fd = s;
		if (uv_poll_init_socket(eng.loop, &p->poll, s) != 0) {
			free(p);
			return -1;
		}
		p->poll.data = p;
		curl_multi_assign(eng.multi, s, p);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&p->poll, ev, on_poll);
	return 0;
}

static void on_curl_timer(uv_timer_t *h) {
	int running;
	curl_multi_socket_action(eng.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

static int on_timer_change(CURLM *m, long timeout_ms, void *userp) {
	if (timeout_ms < 0)
		uv_timer_stop(&eng.curl_timer);
	else
		uv_timer_start(&eng.curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- a target's life ---- */

static void timer_closed(uv_handle_t *h) {
	struct target *t = h->data;
	free(t->def.job);
	free(t->def.url);
	labels_free(&t->def.discovered);
	labels_free(&t->def.labels);
	if (t->easy)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->hdrs);
	buf_free(&t->body);
	relabel_free(t->mrl);
	scrape_series_set_free(t->prev);
	conf_unref(t->conf);
	free(t);
}

static void target_free(struct target *t) {
	for (size_t i = 0; t->orphan && i < eng.norphans; i++)
		if (eng.orphans[i] == t) {
			eng.orphans[i] = eng.orphans[--eng.norphans];
			break;
		}
	if (t->stale_on_free && eng.db && eng.db()) {
		struct ward_err err;
		ward_err_clear(&err);
		(void)scrape_series_set_stale(t->prev, &t->def.labels, eng.db(), ward_now_ms(),
		                              &err);
	}
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, timer_closed);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg) {
	struct target *t = arg;
	size_t n = size * nmemb;
	if (t->body.len + n > (size_t)t->body_limit) {
		t->body_over = true;
		return 0;
	}
	buf_append(&t->body, p, n);
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg) {
	struct target *t = arg;
	size_t n = size * nmemb;
	if (n > 13 && !strncasecmp(p, "content-type:", 13)) {
		const char *v = p + 13;
		size_t vl = n - 13;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		snprintf(t->ctype, sizeof(t->ctype), "%.*s", (int)vl, v);
	}
	return n;
}

static char *read_secret_file(const char *path) {
	char *data = NULL;
	size_t n = 0;
	if (!path || ward_read_file(path, 64 * 1024, &data, &n, NULL) != 0)
		return NULL;
	while (n && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		data[--n] = 0;
	return data;
}

static void setup_easy(struct target *t) {
	const struct scrape_job_conf *j = t->job;
	t->easy = curl_easy_init();
	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_URL, t->def.url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_err);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ward/" WARD_VERSION);
	if (j->tls_skip_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	t->hdrs = curl_slist_append(t->hdrs,
	                            "Accept: application/openmetrics-text;version=1.0.0;q=0.5,"
	                            "text/plain;version=0.0.4;q=0.4,*/*;q=0.1");
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "X-Prometheus-Scrape-Timeout-Seconds: %.3f",
	         (double)t->timeout_ms / 1000.0);
	t->hdrs = curl_slist_append(t->hdrs, tmp);
	struct buf auth = BUF_INIT;
	if (j->basic_auth.username) {
		char *pw = j->basic_auth.password ? ward_strdup(j->basic_auth.password)
		                                  : read_secret_file(j->basic_auth.password_file);
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, j->basic_auth.username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, pw ? pw : "");
		free(pw);
	} else if (j->authorization.credentials || j->authorization.credentials_file) {
		char *c = j->authorization.credentials
		                  ? ward_strdup(j->authorization.credentials)
		                  : read_secret_file(j->authorization.credentials_file);
		buf_printf(&auth, "Authorization: %s %s",
		           j->authorization.type ? j->authorization.type : "Bearer", c ? c : "");
		free(c);
	} else if (j->bearer_token || j->bearer_token_file) {
		char *c = j->bearer_token ? ward_strdup(j->bearer_token)
		                          : read_secret_file(j->bearer_token_file);
		buf_printf(&auth, "Authorization: Bearer %s", c ? c : "");
		free(c);
	}
	if (auth.len)
		t->hdrs = curl_slist_append(t->hdrs, buf_cstr(&auth));
	buf_free(&auth);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
}

static void pump_pending(void) {
	while (eng.npending > 0 && eng.inflight < eng.max_inflight) {
		struct target *t = eng.pending[0];
		memmove(eng.pending, eng.pending + 1, (eng.npending - 1) * sizeof(*eng.pending));
		eng.npending--;
		t->queued = false;
		if (t->orphan) {
			t->busy = false;
			target_free(t);
			continue;
		}
		start_scrape(t);
	}
}

static void start_scrape(struct target *t) {
	if (!t->easy)
		setup_easy(t);
	buf_reset(&t->body);
	t->body_over = false;
	t->ctype[0] = 0;
	t->curl_err[0] = 0;
	t->start_mono_ns = ward_mono_ns();
	t->start_ms = ward_now_ms();
	eng.inflight++;
	curl_multi_add_handle(eng.multi, t->easy);
}

static void on_tick(uv_timer_t *h) {
	struct target *t = h->data;
	if (t->busy)
		return; /* the last scrape is still running: skip this one */
	t->busy = true;
	if (eng.inflight >= eng.max_inflight) {
		if (eng.npending == eng.cappending) {
			eng.cappending = eng.cappending ? 2 * eng.cappending : 16;
			eng.pending =
			        ward_xrealloc(eng.pending, eng.cappending * sizeof(*eng.pending));
		}
		eng.pending[eng.npending++] = t;
		t->queued = true;
		return;
	}
	start_scrape(t);
}

static void work_process(uv_work_t *w) {
	struct target *t = w->data;
	struct tsdb *db = eng.db ? eng.db() : NULL;
	if (!db)
		return;
	struct scrape_process_opts o = {
	        .target_labels = &t->def.labels,
	        .metric_relabel = t->mrl,
	        .honor_labels = t->job->honor_labels,
	        .honor_timestamps = t->job->honor_timestamps,
	        .sample_limit = (size_t)t->job->sample_limit,
	        .line_limit = (size_t)t->line_limit,
	        .content_type = t->ctype[0] ? t->ctype : NULL,
	};
	double dur = (double)(ward_mono_ns() - t->start_mono_ns) / 1e9;
	scrape_process(db, &o, t->res.up ? t->body.data : NULL, t->body.len, t->start_ms, dur,
	               t->prev, &t->res);
}

static void work_done(uv_work_t *w, int status) {
	struct target *t = w->data;
	eng.working--;
	pthread_mutex_lock(&eng.lock);
	snprintf(t->health, sizeof(t->health), "%s", t->res.up ? "up" : "down");
	snprintf(t->last_error, sizeof(t->last_error), "%.500s", t->res.up ? "" : t->res.error);
	t->last_scrape_ms = t->start_ms;
	t->last_duration = (double)(ward_mono_ns() - t->start_mono_ns) / 1e9;
	pthread_mutex_unlock(&eng.lock);
	if (!t->res.up)
		ward_log(LOG_DEBUG, "scrape failed", "job", t->def.job, "url", t->def.url, "error",
		         t->res.error, NULL);
	t->busy = false;
	if (t->orphan)
		target_free(t);
}

static void finish(struct target *t, CURLcode cc) {
	memset(&t->res, 0, sizeof(t->res));
	long code = 0;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	t->res.up = true;
	if (t->body_over) {
		t->res.up = false;
		snprintf(t->res.error, sizeof(t->res.error),
		         "body size limit exceeded: more than %lld bytes; raise body_size_limit",
		         (long long)t->body_limit);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		t->res.up = false;
		snprintf(t->res.error, sizeof(t->res.error),
		         "context deadline exceeded: no complete answer within %lldms (%.200s)",
		         (long long)t->timeout_ms, t->curl_err);
	} else if (cc != CURLE_OK) {
		t->res.up = false;
		snprintf(t->res.error, sizeof(t->res.error), "%.500s",
		         t->curl_err[0] ? t->curl_err : curl_easy_strerror(cc));
	} else if (code != 200) {
		t->res.up = false;
		snprintf(t->res.error, sizeof(t->res.error), "server returned HTTP status %ld",
		         code);
	}
	if (t->orphan && !eng.db) {
		t->busy = false;
		target_free(t);
		return;
	}
	t->work.data = t;
	eng.working++;
	if (uv_queue_work(eng.loop, &t->work, work_process, work_done) != 0) {
		eng.working--;
		t->busy = false;
	}
}

static void check_done(void) {
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(eng.multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode cc = m->data.result;
		struct target *t = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(eng.multi, e);
		eng.inflight--;
		finish(t, cc);
	}
	pump_pending();
}

/* ---- configuration ---- */

static uint64_t target_offset(const struct target *t) {
	uint64_t h = labels_hash(&t->def.labels);
	for (const char *p = t->def.url; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h % (uint64_t)t->interval_ms;
}

static bool same_target(const struct target *a, const struct scrape_target_def *d) {
	return !strcmp(a->def.url, d->url) && labels_equal(&a->def.labels, &d->labels) &&
	       !strcmp(a->def.job, d->job);
}

int engine_apply(struct conf *c, struct ward_err *err) {
	const struct scrape_conf *sc = conf_section(c, "scrape");
	struct target **nt = NULL;
	size_t nn = 0, cap = 0;
	for (size_t j = 0; sc && j < sc->nscrape_configs; j++) {
		const struct scrape_job_conf *job = &sc->scrape_configs[j];
		struct scrape_target_def *defs;
		size_t nd;
		if (scrape_targets_build(sc, job, &defs, &nd, err) != 0)
			goto fail;
		for (size_t i = 0; i < nd; i++) {
			struct target *t = ward_xcalloc(1, sizeof(*t));
			t->def = defs[i];
			t->conf = conf_ref(c);
			t->job = job;
			t->mrl = job->nmetric_relabel_configs
			                 ? relabel_new(job->metric_relabel_configs,
			                               job->nmetric_relabel_configs, NULL)
			                 : NULL;
			t->interval_ms = job->scrape_interval_ms ? job->scrape_interval_ms
			                                         : sc->scrape_interval_ms;
			t->timeout_ms = job->scrape_timeout_ms ? job->scrape_timeout_ms
			                                       : sc->scrape_timeout_ms;
			if (t->timeout_ms > t->interval_ms)
				t->timeout_ms = t->interval_ms;
			t->body_limit =
			        job->body_size_limit ? job->body_size_limit : sc->body_size_limit;
			t->line_limit = sc->line_limit;
			t->prev = scrape_series_set_new();
			snprintf(t->health, sizeof(t->health), "unknown");
			if (nn == cap) {
				cap = cap ? 2 * cap : 16;
				nt = ward_xrealloc(nt, cap * sizeof(*nt));
			}
			nt[nn++] = t;
		}
		free(defs); /* the defs' contents moved into the targets */
	}
	eng.max_inflight = sc ? (size_t)sc->max_concurrent : 64;
	/* carry series state over to identical targets; retire the others */
	for (size_t i = 0; i < eng.n; i++) {
		struct target *o = eng.t[i];
		struct target *match = NULL;
		for (size_t k = 0; k < nn && !match; k++)
			if (same_target(o, &nt[k]->def))
				match = nt[k];
		if (match && !o->busy) {
			struct scrape_series_set *tmp = match->prev;
			match->prev = o->prev;
			o->prev = tmp;
			/* the job's honor_labels or metric relabeling may differ now: lines are
			 * mapped afresh; the last scrape's series stay for staleness */
			scrape_series_set_forget(match->prev);
			snprintf(match->health, sizeof(match->health), "%s", o->health);
			snprintf(match->last_error, sizeof(match->last_error), "%.500s",
			         o->last_error);
			match->last_scrape_ms = o->last_scrape_ms;
			match->last_duration = o->last_duration;
		}
		o->stale_on_free = !match;
		uv_timer_stop(&o->timer);
		if (o->busy) {
			o->orphan = true;
			eng.orphans = ward_xrealloc(eng.orphans,
			                            (eng.norphans + 1) * sizeof(*eng.orphans));
			eng.orphans[eng.norphans++] = o;
		} else {
			target_free(o);
		}
	}
	pthread_mutex_lock(&eng.lock);
	free(eng.t);
	eng.t = nt;
	eng.n = nn;
	pthread_mutex_unlock(&eng.lock);
	for (size_t i = 0; i < nn; i++) {
		struct target *t = nt[i];
		uv_timer_init(eng.loop, &t->timer);
		t->timer.data = t;
		uv_timer_start(&t->timer, on_tick, target_offset(t), (uint64_t)t->interval_ms);
	}
	return 0;
fail:
	for (size_t i = 0; i < nn; i++) {
		nt[i]->timer.data = nt[i];
		/* never initialised as handles: free directly */
		free(nt[i]->def.job);
		free(nt[i]->def.url);
		labels_free(&nt[i]->def.discovered);
		labels_free(&nt[i]->def.labels);
		relabel_free(nt[i]->mrl);
		scrape_series_set_free(nt[i]->prev);
		conf_unref(nt[i]->conf);
		free(nt[i]);
	}
	free(nt);
	return -1;
}

int engine_start(uv_loop_t *loop, struct tsdb *(*db)(void), struct conf *c, struct ward_err *err) {
	eng.loop = loop;
	eng.db = db;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	eng.multi = curl_multi_init();
	curl_multi_setopt(eng.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(eng.multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	uv_timer_init(loop, &eng.curl_timer);
	eng.started = true;
	eng.max_inflight = 64;
	return engine_apply(c, err);
}

void engine_stop(void) {
	if (!eng.started)
		return;
	/* requests in flight are abandoned; processing already queued is waited for, so that
	 * nothing touches the tsdb after we return */
	for (size_t i = 0; i < eng.n; i++)
		uv_timer_stop(&eng.t[i]->timer);
	/* remove every easy handle still in the multi */
	for (size_t i = 0; i < eng.n; i++) {
		struct target *t = eng.t[i];
		if (t->easy)
			curl_multi_remove_handle(eng.multi, t->easy);
	}
	for (size_t i = 0; i < eng.norphans; i++)
		if (eng.orphans[i]->easy)
			curl_multi_remove_handle(eng.multi, eng.orphans[i]->easy);
	while (eng.working > 0)
		uv_run(eng.loop, UV_RUN_ONCE);
	eng.npending = 0;
	while (eng.norphans > 0) {
		eng.orphans[0]->stale_on_free = false;
		target_free(eng.orphans[0]);
	}
	free(eng.orphans);
	eng.orphans = NULL;
	for (size_t i = 0; i < eng.n; i++) {
		eng.t[i]->stale_on_free = false;
		target_free(eng.t[i]);
	}
	pthread_mutex_lock(&eng.lock);
	free(eng.t);
	eng.t = NULL;
	eng.n = 0;
	pthread_mutex_unlock(&eng.lock);
	free(eng.pending);
	eng.pending = NULL;
	eng.cappending = 0;
	uv_close((uv_handle_t *)&eng.curl_timer, NULL);
	/* curl closes its sockets (CURL_POLL_REMOVE) during cleanup */
	curl_multi_cleanup(eng.multi);
	eng.multi = NULL;
	eng.started = false;
	uv_run(eng.loop, UV_RUN_NOWAIT);
}

/* GET /api/v1/targets, in Prometheus' shape. */
static void put_labels_json(struct buf *b, const struct labels *ls) {
	buf_putc(b, '{');
	for (size_t i = 0; i < ls->n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_json_str(b, ls->v[i].name, strlen(ls->v[i].name));
		buf_putc(b, ':');
		buf_json_str(b, ls->v[i].value, strlen(ls->v[i].value));
	}
	buf_putc(b, '}');
}

void engine_targets_json(struct buf *b, const char *state) {
	bool active = !state || !*state || !strcmp(state, "any") || !strcmp(state, "active");
	buf_puts(b, "{\"activeTargets\":[");
	pthread_mutex_lock(&eng.lock);
	for (size_t i = 0; active && i < eng.n; i++) {
		const struct target *t = eng.t[i];
		if (i)
			buf_putc(b, ',');
		buf_puts(b, "{\"discoveredLabels\":");
		put_labels_json(b, &t->def.discovered);
		buf_puts(b, ",\"labels\":");
		put_labels_json(b, &t->def.labels);
		buf_puts(b, ",\"scrapePool\":");
		buf_json_str(b, t->def.job, strlen(t->def.job));
		buf_puts(b, ",\"scrapeUrl\":");
		buf_json_str(b, t->def.url, strlen(t->def.url));
		buf_puts(b, ",\"globalUrl\":");
		buf_json_str(b, t->def.url, strlen(t->def.url));
		buf_puts(b, ",\"lastError\":");
		buf_json_str(b, t->last_error, strlen(t->last_error));
		char ts[32];
		if (t->last_scrape_ms)
			ward_fmt_rfc3339(t->last_scrape_ms, ts);
		else
			snprintf(ts, sizeof(ts), "0001-01-01T00:00:00Z");
		buf_printf(b, ",\"lastScrape\":\"%s\",\"lastScrapeDuration\":", ts);
		buf_put_double(b, t->last_duration);
		buf_printf(b, ",\"health\":\"%s\"", t->health);
		char iv[32], to[32];
		ward_fmt_duration(t->interval_ms, iv);
		ward_fmt_duration(t->timeout_ms, to);
		buf_printf(b, ",\"scrapeInterval\":\"%s\",\"scrapeTimeout\":\"%s\"}", iv, to);
	}
	pthread_mutex_unlock(&eng.lock);
	buf_puts(b, "],\"droppedTargets\":[]}");
}
