/* module.c: collect_module, the daemon's side of src/collect: a host-collection timer and a
 * process-check timer whose work (reading /proc, statvfs, the tsdb commit) runs on libuv's
 * worker pool so the loop never waits on a file system; the scrape engine (engine.c);
 * routes GET /metrics/node and /metrics/processes (the last collection in the text format,
 * public like /metrics) and GET /api/v1/targets (viewer). Monit-style restarts are decided
 * and spawned on the loop thread after each process check, audited and logged.
 * Invariants: at most one host job and one process job in flight; the published texts
 * are swapped under mod.lock (read by HTTP threads); every other field is the loop's.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "collect/collect_module.h"
#include "core/core.h"
#include "promapi/promapi.h"
#include "tsdb/tsdb.h"

struct watch_state {
	int64_t *runs; /* cycles at which the restart command ran (ring of max entries) */
	size_t nruns;
	uint64_t total; /* runs since ward started */
	bool gave_up;
	bool was_up;
	bool known;
};

static struct {
	struct ward_ctx *ctx;
	pthread_mutex_t lock; /* node_text, proc_text */
	struct buf node_text, proc_text;
	/* host */
	uv_timer_t host_timer;
	uv_work_t host_work;
	bool host_busy, started;
	struct host_opts hopts;
	char *hopt_str[6]; /* the strings hopts points to */
	char *job, *instance;
	/* processes */
	uv_timer_t proc_timer;
	uv_work_t proc_work;
	bool proc_busy;
	struct conf *proc_conf; /* the config the matchers were built from */
	const struct proc_conf *pc;
	struct proc_matcher **pm;
	struct proc_stat *ps;
	struct watch_state *ws;
	size_t npm;
	int64_t cycle;
	struct buf host_tmp, proc_tmp;
} mod = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct tsdb *store(void) {
	return promapi_tsdb();
}

/* ---- host ---- */

static void host_work(uv_work_t *w) {
	struct cm_batch b;
	cm_init(&b);
	(void)host_gather(&mod.hopts, &b);
	buf_reset(&mod.host_tmp);
	cm_write_text(&b, &mod.host_tmp);
	struct tsdb *db = store();
	if (db) {
		struct ward_err err;
		ward_err_clear(&err);
		if (cm_commit(&b, db, ward_now_ms(), mod.job, mod.instance, &err) != 0)
			ward_log(LOG_WARN, "storing host metrics failed", "error", err.msg, NULL);
	}
	cm_free(&b);
}

static void host_done(uv_work_t *w, int status) {
	pthread_mutex_lock(&mod.lock);
	struct buf t = mod.node_text;
	mod.node_text = mod.host_tmp;
	mod.host_tmp = t;
	pthread_mutex_unlock(&mod.lock);
	mod.host_busy = false;
}

static void host_tick(uv_timer_t *t) {
	if (mod.host_busy)
		return;
	mod.host_busy = true;
	if (uv_queue_work(t->loop, &mod.host_work, host_work, host_done) != 0)
		mod.host_busy = false;
}

static void host_configure(const struct conf *c) {
	const struct host_conf *hc = conf_section(c, "host");
	free(mod.job);
	free(mod.instance);
	mod.job = ward_strdup(hc && hc->job ? hc->job : "node");
	char hn[256] = "localhost";
	if (!hc || !hc->instance) {
		if (gethostname(hn, sizeof(hn) - 1) != 0)
			snprintf(hn, sizeof(hn), "localhost");
		hn[sizeof(hn) - 1] = 0;
	}
	mod.instance = ward_strdup(hc && hc->instance ? hc->instance : hn);
	host_opts_from_conf(&mod.hopts, hc);
	/* own copies: the worker reads them while a reload may drop c */
	const char **f[6] = {&mod.hopts.procfs,         &mod.hopts.sysfs,
	                     &mod.hopts.disk_exclude,   &mod.hopts.mount_exclude,
	                     &mod.hopts.fstype_exclude, &mod.hopts.netdev_exclude};
	for (int i = 0; i < 6; i++) {
		free(mod.hopt_str[i]);
		mod.hopt_str[i] = ward_strdup(*f[i]);
		*f[i] = mod.hopt_str[i];
	}
	uv_timer_stop(&mod.host_timer);
	if (hc && hc->enabled)
		/* the first collection one interval after start, as a scraper would: a
		 * daemon started for a moment writes nothing it was not asked for */
		uv_timer_start(&mod.host_timer, host_tick, (uint64_t)hc->interval_ms,
			       (uint64_t)hc->interval_ms);
}

/* ---- processes ---- */

static void proc_work(uv_work_t *w) {
	proc_scan(mod.hopts.procfs, mod.pm, mod.npm, mod.ps);
	struct cm_batch b;
	cm_init(&b);
	static const struct {
		const char *name, *type, *help;
	} f[] = {
	        {"ward_process_up", "gauge", "1 when at least one process matches the watch."},
	        {"ward_process_count", "gauge", "Processes matching the watch."},
	        {"ward_process_cpu_seconds_total", "counter",
	         "User and system CPU time of the matching processes."},
	        {"ward_process_resident_memory_bytes", "gauge",
	         "Resident memory of the matching "
	         "processes."},
	        {"ward_process_open_fds", "gauge",
	         "Open file descriptors of the matching processes."},
	        {"ward_process_threads", "gauge", "Threads of the matching processes."},
	        {"ward_process_start_time_seconds", "gauge",
	         "Start time of the oldest matching process (Unix seconds)."},
	        {"ward_process_restarts_total", "counter",
	         "Times the restart command ran since ward started."},
	};
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		cm_family(&b, f[k].name, f[k].type, f[k].help);
		for (size_t i = 0; i < mod.npm; i++) {
			const struct proc_stat *s = &mod.ps[i];
			double v[] = {s->up ? 1 : 0, (double)s->count, s->cpu_seconds, s->rss_bytes,
			              s->fds,        s->threads,       s->start_time,  0};
			if (k == 7)
				v[7] = (double)mod.ws[i].total;
			if (k >= 2 && k <= 6 && !s->up)
				continue;
			cm_add(&b, v[k], "process", mod.pc->watch[i].name, NULL);
		}
	}
	buf_reset(&mod.proc_tmp);
	cm_write_text(&b, &mod.proc_tmp);
	struct tsdb *db = store();
	if (db) {
		struct ward_err err;
		ward_err_clear(&err);
		if (cm_commit(&b, db, ward_now_ms(), mod.job, mod.instance, &err) != 0)
			ward_log(LOG_WARN, "storing process metrics failed", "error", err.msg,
			         NULL);
	}
	cm_free(&b);
}

static void restart_exit(uv_process_t *p, int64_t status, int sig) {
	char *name = p->data;
	char st[32];
	snprintf(st, sizeof(st), "%lld", (long long)status);
	ward_log(status == 0 ? LOG_INFO : LOG_WARN, "restart command finished", "process", name,
	         "exit_status", st, NULL);
	free(name);
	uv_close((uv_handle_t *)p, (uv_close_cb)free);
}

static void run_restart(size_t i) {
	const struct proc_watch_conf *w = &mod.pc->watch[i];
	struct watch_state *s = &mod.ws[i];
	/* runs in the last `cycles` cycles */
	size_t recent = 0;
	for (size_t k = 0; k < s->nruns; k++)
		recent += s->runs[k] > mod.cycle - w->restart.cycles;
	struct buf d = BUF_INIT;
	buf_puts(&d, "{\"command\":");
	buf_json_str(&d, w->restart.command, strlen(w->restart.command));
	buf_printf(&d, ",\"max\":%lld,\"cycles\":%lld}", (long long)w->restart.max,
	           (long long)w->restart.cycles);
	if ((int64_t)recent >= w->restart.max) {
		if (!s->gave_up) {
			ward_log(LOG_ERROR,
			         "process still down; restart limit reached, not trying "
			         "again until the window passes",
			         "process", w->name, NULL);
			(void)ward_audit_system(mod.ctx, "process.restart", w->name,
			                        "limit_reached", buf_cstr(&d));
			s->gave_up = true;
		}
		buf_free(&d);
		return;
	}
	s->gave_up = false;
	/* keep only the runs inside the window */
	size_t kept = 0;
	for (size_t k = 0; k < s->nruns; k++)
		if (s->runs[k] > mod.cycle - w->restart.cycles)
			s->runs[kept++] = s->runs[k];
	s->nruns = kept;
	s->runs = ward_xrealloc(s->runs, (s->nruns + 1) * sizeof(*s->runs));
	s->runs[s->nruns++] = mod.cycle;
	s->total++;
	uv_process_t *p = ward_xcalloc(1, sizeof(*p));
	char *args[] = {"/bin/sh", "-c", w->restart.command, NULL};
	uv_process_options_t o = {.file = "/bin/sh", .args = args, .exit_cb = restart_exit};
	uv_stdio_container_t stdio[3] = {
	        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
	o.stdio = stdio;
	o.stdio_count = 3;
	p->data = ward_strdup(w->name);
	int rc = uv_spawn(mod.ctx->loop, p, &o);
	const char *result = rc == 0 ? "started" : "failed";
	ward_log(rc == 0 ? LOG_WARN : LOG_ERROR, "process down; running its restart command",
	         "process", w->name, "result", result, "error", rc ? uv_strerror(rc) : NULL, NULL);
	(void)ward_audit_system(mod.ctx, "process.restart", w->name, result, buf_cstr(&d));
	if (rc != 0) {
		free(p->data);
		uv_close((uv_handle_t *)p, (uv_close_cb)free);
	}
	buf_free(&d);
}

static void proc_done(uv_work_t *w, int status) {
	mod.proc_busy = false;
	pthread_mutex_lock(&mod.lock);
	struct buf t = mod.proc_text;
	mod.proc_text = mod.proc_tmp;
	mod.proc_tmp = t;
	pthread_mutex_unlock(&mod.lock);
	if (!mod.started)
		return;
	mod.cycle++;
	for (size_t i = 0; i < mod.npm; i++) {
		struct watch_state *s = &mod.ws[i];
		bool up = mod.ps[i].up;
		if (s->known && up != s->was_up)
			ward_log(up ? LOG_INFO : LOG_WARN, up ? "process up" : "process down",
			         "process", mod.pc->watch[i].name, NULL);
		s->known = true;
		s->was_up = up;
		if (!up && mod.pc->watch[i].restart.command)
			run_restart(i);
	}
}

static void proc_tick(uv_timer_t *t) {
	if (mod.proc_busy || mod.npm == 0)
		return;
	mod.proc_busy = true;
	if (uv_queue_work(t->loop, &mod.proc_work, proc_work, proc_done) != 0)
		mod.proc_busy = false;
}

static void proc_unload(void) {
	for (size_t i = 0; i < mod.npm; i++) {
		proc_matcher_free(mod.pm[i]);
		free(mod.ws[i].runs);
	}
	free(mod.pm);
	free(mod.ps);
	free(mod.ws);
	mod.pm = NULL;
	mod.ps = NULL;
	mod.ws = NULL;
	mod.npm = 0;
	conf_unref(mod.proc_conf);
	mod.proc_conf = NULL;
	mod.pc = NULL;
}

static int proc_configure(struct conf *c, struct ward_err *err) {
	const struct proc_conf *pc = conf_section(c, "processes");
	struct proc_matcher **pm = ward_xcalloc(pc->nwatch + 1, sizeof(*pm));
	for (size_t i = 0; i < pc->nwatch; i++) {
		pm[i] = proc_matcher_new(&pc->watch[i], err);
		if (!pm[i]) {
			for (size_t k = 0; k < i; k++)
				proc_matcher_free(pm[k]);
			free(pm);
			return -1;
		}
	}
	proc_unload();
	mod.proc_conf = conf_ref(c);
	mod.pc = pc;
	mod.pm = pm;
	mod.npm = pc->nwatch;
	mod.ps = ward_xcalloc(pc->nwatch + 1, sizeof(*mod.ps));
	mod.ws = ward_xcalloc(pc->nwatch + 1, sizeof(*mod.ws));
	uv_timer_stop(&mod.proc_timer);
	if (mod.npm)
		uv_timer_start(&mod.proc_timer, proc_tick, 0, (uint64_t)pc->interval_ms);
	return 0;
}

/* ---- HTTP ---- */

static void h_text(struct http_req *req, struct http_resp *resp, void *arg) {
	struct buf *src = arg;
	pthread_mutex_lock(&mod.lock);
	buf_append(&resp->body, src->data ? src->data : "", src->len);
	pthread_mutex_unlock(&mod.lock);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void h_targets(struct http_req *req, struct http_resp *resp, void *arg) {
	struct buf b = BUF_INIT;
	engine_targets_json(&b, http_param(req, "state"));
	http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

/* ---- lifecycle ---- */

static void collect_init(void) {
	collect_config_register();
}

static void wait_jobs(void) {
	while (mod.host_busy || mod.proc_busy)
		uv_run(mod.ctx->loop, UV_RUN_ONCE);
}

static int collect_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	mod.ctx = ctx;
	uv_timer_init(ctx->loop, &mod.host_timer);
	uv_timer_init(ctx->loop, &mod.proc_timer);
	mod.started = true;
	host_configure(c);
	if (proc_configure((struct conf *)c, err) != 0)
		return -1;
	if (engine_start(ctx->loop, store, (struct conf *)c, err) != 0)
		return -1;
	http_route("GET", "/metrics/node", ROLE_PUBLIC, h_text, &mod.node_text);
	http_route("GET", "/metrics/processes", ROLE_PUBLIC, h_text, &mod.proc_text);
	http_route("GET", "/api/v1/targets", ROLE_VIEWER, h_targets, NULL);
	return 0;
}

static int collect_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	if (!mod.started)
		return 0;
	wait_jobs(); /* the workers read the matchers and host options */
	host_configure(c);
	if (proc_configure((struct conf *)c, err) != 0)
		return -1;
	return engine_apply((struct conf *)c, err);
}

static void collect_stop(struct ward_ctx *ctx) {
	if (!mod.started)
		return;
	mod.started = false;
	uv_timer_stop(&mod.host_timer);
	uv_timer_stop(&mod.proc_timer);
	wait_jobs();
	engine_stop();
	uv_close((uv_handle_t *)&mod.host_timer, NULL);
	uv_close((uv_handle_t *)&mod.proc_timer, NULL);
	proc_unload();
	pthread_mutex_lock(&mod.lock);
	buf_free(&mod.node_text);
	buf_free(&mod.proc_text);
	pthread_mutex_unlock(&mod.lock);
	buf_free(&mod.host_tmp);
	buf_free(&mod.proc_tmp);
	free(mod.job);
	free(mod.instance);
	mod.job = mod.instance = NULL;
	for (int i = 0; i < 6; i++) {
		free(mod.hopt_str[i]);
		mod.hopt_str[i] = NULL;
	}
}

const struct ward_module collect_module = {
        .name = "collect",
        .init = collect_init,
        .start = collect_start,
        .apply = collect_apply,
        .stop = collect_stop,
};
