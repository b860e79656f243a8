/* module.c: alert_module: the "rules" config section; groups evaluated on timers of the
 * loop, their PromQL on libuv's worker pool; outputs to the tsdb; state in the store;
 * firing/resolved alerts to notify; /api/v1/rules and /api/v1/alerts.
 * Invariants: timers, the runtime array and rule-set swaps belong to the loop thread; a
 * group is evaluated by at most one worker at a time (rt->busy, loop-owned); rt->mu guards
 * a group's state (worker while evaluating, API readers), so a slow group delays no other;
 * M.rw guards M.cur (readers shared, swap exclusive); apply() (any thread) only loads, and
 * the loop swaps the new set in (uv_async) once no old group is busy, carrying state.
 */
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <jansson.h>

#include "alert/alert_internal.h"
#include "notify/notify.h"
#include "promapi/promapi.h"
#include "store/store.h"
#include "tsdb/tsdb.h"

#define RESEND_DELAY_MS 60000 /* Prometheus' --rules.alert.resend-delay default */

struct rules_conf {
	char **files;
	size_t nfiles;
	int64_t eval_interval_ms;
	struct conf_kv *ext;
	size_t next;
	char *external_url;
	bool defaults;
};

struct grp_rt {
	uv_timer_t timer;
	uv_work_t work;
	pthread_mutex_t mu;
	struct alert_group *g;
	int64_t interval_ms;
	int64_t ts;
	bool busy;
	struct tsdb_appender *app; /* rule outputs of the running evaluation (worker only) */
	uint64_t *persisted_sig; /* per rule: signature of the state last written to the store */
	struct rtset *set;
};

struct rtset {
	struct alert_ruleset *rs;
	struct grp_rt *rt;
	size_t n;
	size_t open_handles; /* timers not yet closed */
	struct labels ext;
	char *external_url;
};

static struct {
	struct ward_ctx *ctx;
	pthread_rwlock_t rw;
	struct rtset *cur;
	pthread_mutex_t pend_mu; /* guards pending */
	struct rtset *pending;
	uv_async_t swap_async;
	bool running;
	struct metric *m_dur, *m_evals, *m_fail, *m_missed, *m_last;
} M = {.rw = PTHREAD_RWLOCK_INITIALIZER, .pend_mu = PTHREAD_MUTEX_INITIALIZER};

#define RC(f) offsetof(struct rules_conf, f)
static const struct conf_field rules_fields[] = {
	{.key = "files", .type = CONF_STRLIST, .offset = RC(files), .count_offset = RC(nfiles),
	 .help = "globs of Prometheus rule files (relative ones from the config file's folder)"},
	{.key = "evaluation_interval", .type = CONF_DURATION, .offset = RC(eval_interval_ms),
	 .defval = "1m", .min = 100, .max = 86400e3, .flags = CONF_RANGE,
	 .help = "how often groups without their own interval are evaluated"},
	{.key = "external_labels", .type = CONF_STRMAP, .offset = RC(ext), .count_offset = RC(next),
	 .help = "labels templates see as $externalLabels"},
	{.key = "external_url", .type = CONF_STR, .offset = RC(external_url),
	 .help = "the URL templates see as $externalURL"},
	{.key = "defaults", .type = CONF_BOOL, .offset = RC(defaults), .defval = "true",
	 .help = "also load the default rule set (disk filling, memory pressure, a probe down, "
		 "a backup overdue; `ward rules defaults` prints it)"},
	{0},
};
/* The rule files are part of the config: `ward config check` and a reload see their
 * errors (file:line:col) before anything is applied. */
static int rules_validate(void *obj, const struct conf_pos *pos, struct ward_err *err)
{
	const struct rules_conf *rc = obj;
	if (!rc->nfiles)
		return 0;
	char *dir = NULL;
	if (pos->file && pos->file[0] != '<') {
		char *p = ward_strdup(pos->file);
		dir = ward_strdup(dirname(p));
		free(p);
	}
	struct ward_err e;
	ward_err_clear(&e);
	struct alert_ruleset *rs =
		alert_rules_load_globs((const char *const *)rc->files, rc->nfiles, dir, &e);
	free(dir);
	if (!rs) {
		if (ward_err_isset(err))
			ward_err_append(err, "%s", e.msg);
		else
			ward_err_set(err, "%s", e.msg);
		return -1;
	}
	alert_ruleset_free(rs);
	return 0;
}

static const struct conf_schema rules_schema = {.name = "rules",
						.size = sizeof(struct rules_conf),
						.fields = rules_fields,
						.validate = rules_validate};

static void alert_init(void)
{
	(void)conf_register_section(&rules_schema);
	alert_register_migrations();
	static const char *const gl[] = {"rule_group", NULL};
	M.m_dur = metric_register("ward_rule_group_last_duration_seconds",
				  "Duration of the last evaluation of the rule group",
				  METRIC_GAUGE, gl, NULL, 0);
	M.m_last = metric_register("ward_rule_group_last_evaluation_timestamp_seconds",
				   "When the rule group was last evaluated", METRIC_GAUGE, gl,
				   NULL, 0);
	M.m_evals = metric_register("ward_rule_evaluations_total",
				    "Rule evaluations, by group", METRIC_COUNTER, gl, NULL, 0);
	M.m_fail = metric_register("ward_rule_evaluation_failures_total",
				   "Rule evaluations that failed, by group", METRIC_COUNTER, gl, NULL, 0);
	M.m_missed = metric_register("ward_rule_group_iterations_missed_total",
				     "Evaluations skipped because the previous one still ran",
				     METRIC_COUNTER, gl, NULL, 0);
}

/* ---- state in the store (state.c) ---- */

static uint64_t state_sig(const struct alert_rule *r)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < r->nactive; i++) {
		const struct alert_inst *a = &r->active[i];
		uint64_t x = labels_hash(&a->labels) ^ ((uint64_t)a->state << 56) ^
			     (uint64_t)a->active_at_ms ^ ((uint64_t)a->resolved_at_ms << 1) ^
			     ((uint64_t)a->keep_firing_since_ms << 2) ^ ((uint64_t)a->last_sent_ms << 3);
		h = (h ^ x) * 1099511628211ULL;
	}
	return h;
}

/* Saves the rules whose state changed since the last save, in one transaction (one
 * fsync per group evaluation rather than one per rule). */
static int persist_tx(struct store *st, void *arg, struct ward_err *err)
{
	struct grp_rt *rt = arg;
	for (size_t i = 0; i < rt->g->nrules; i++) {
		struct alert_rule *r = &rt->g->rules[i];
		if (!r->alerting || state_sig(r) == rt->persisted_sig[i])
			continue;
		if (alert_rule_save(st, rt->g, r, err) != 0)
			return -1;
	}
	return 0;
}

static void persist_group(struct grp_rt *rt)
{
	struct store *st = M.ctx ? M.ctx->store : NULL;
	if (!st)
		return;
	bool dirty = false;
	for (size_t i = 0; i < rt->g->nrules && !dirty; i++)
		dirty = rt->g->rules[i].alerting && state_sig(&rt->g->rules[i]) != rt->persisted_sig[i];
	if (!dirty)
		return;
	struct ward_err err;
	ward_err_clear(&err);
	if (store_tx(st, persist_tx, rt, &err) != 0) {
		ward_log(LOG_WARN, "could not save alert state", "group", rt->g->name, "error",
			 err.msg, NULL);
		return;
	}
	for (size_t i = 0; i < rt->g->nrules; i++)
		if (rt->g->rules[i].alerting)
			rt->persisted_sig[i] = state_sig(&rt->g->rules[i]);
}

static void restore_set(struct rtset *set)
{
	struct store *st = M.ctx ? M.ctx->store : NULL;
	if (!st)
		return;
	size_t restored = 0;
	for (size_t gi = 0; gi < set->n; gi++) {
		struct alert_group *g = set->rt[gi].g;
		for (size_t i = 0; i < g->nrules; i++) {
			struct alert_rule *r = &g->rules[i];
			if (!r->alerting || r->nactive)
				continue;
			restored += (size_t)alert_rule_restore(st, g, r);
			set->rt[gi].persisted_sig[i] = state_sig(r);
		}
	}
	if (restored) {
		char n[32];
		snprintf(n, sizeof(n), "%zu", restored);
		ward_log(LOG_INFO, "restored alert state", "alerts", n, NULL);
	}
}

/* ---- evaluation on the worker pool ---- */

/* Rule outputs go into one appender per group evaluation, committed (one WAL fsync) at
 * the end; a recording rule's output is committed at once, because later rules of the
 * group read it. */
static int tsdb_write(void *arg, const struct alert_sample *v, size_t n, int64_t t_ms,
		      struct ward_err *err)
{
	struct grp_rt *rt = arg;
	struct tsdb *db = promapi_tsdb();
	if (!db)
		return 0;
	if (!rt->app)
		rt->app = tsdb_appender_new(db);
	bool recorded = false;
	for (size_t i = 0; i < n; i++) {
		const char *name = labels_get(&v[i].labels, "__name__");
		if (!name || (strcmp(name, "ALERTS") && strcmp(name, "ALERTS_FOR_STATE")))
			recorded = true;
		if (tsdb_append(rt->app, &v[i].labels, t_ms, v[i].v, err) != 0) {
			tsdb_rollback(rt->app);
			rt->app = NULL;
			return -1;
		}
	}
	if (!recorded)
		return 0;
	struct tsdb_appender *a = rt->app;
	rt->app = NULL;
	return tsdb_commit(a, NULL, err);
}

static void flush_writes(struct grp_rt *rt)
{
	if (!rt->app)
		return;
	struct ward_err err;
	ward_err_clear(&err);
	if (tsdb_commit(rt->app, NULL, &err) != 0)
		ward_log(LOG_WARN, "could not write rule outputs", "group", rt->g->name, "error",
			 err.msg, NULL);
	rt->app = NULL;
}

static int storage_select(void *ctx, int64_t mint, int64_t maxt, const struct matcher *ms,
			  size_t nms, int64_t step_hint_ms, struct tsdb_series **out, size_t *n,
			  struct ward_err *err)
{
	struct tsdb *db = promapi_tsdb();
	if (!db) {
		*out = NULL;
		*n = 0;
		return 0;
	}
	return tsdb_select(db, mint, maxt, ms, nms, step_hint_ms, 0, out, n, err);
}

static void send_alerts(struct grp_rt *rt, int64_t ts)
{
	struct notify_alert *v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < rt->g->nrules; i++) {
		struct alert_rule *r = &rt->g->rules[i];
		for (size_t j = 0; r->alerting && j < r->nactive; j++) {
			struct alert_inst *a = &r->active[j];
			bool send = false;
			if (a->state == ALERT_FIRING)
				send = a->last_sent_ms + RESEND_DELAY_MS <= ts;
			else if (a->state == ALERT_INACTIVE && a->resolved_at_ms > a->last_sent_ms &&
				 a->fired_at_ms)
				send = true;
			if (!send)
				continue;
			a->last_sent_ms = ts;
			v = ward_xrealloc(v, (n + 1) * sizeof(*v));
			v[n] = (struct notify_alert){.labels = a->labels,
						     .annotations = a->annotations,
						     .starts_at_ms = a->active_at_ms,
						     .ends_at_ms = a->state == ALERT_INACTIVE
									   ? a->resolved_at_ms
									   : 0,
						     .generator_url = rt->set->external_url};
			n++;
		}
	}
	if (n) {
		struct ward_err err;
		ward_err_clear(&err);
		if (notify_post_alerts(v, n, &err) != 0)
			ward_log(LOG_WARN, "could not hand alerts to notify", "error", err.msg, NULL);
	}
	free(v);
}

static void group_label(const struct grp_rt *rt, char *out, size_t n)
{
	snprintf(out, n, "%s;%s", rt->g->file, rt->g->name);
}

static void eval_work(uv_work_t *w)
{
	struct grp_rt *rt = w->data;
	struct promql_storage st = {.select = storage_select, .ctx = NULL};
	struct promql_opts qo;
	promql_opts_default(&qo);
	struct alert_eval_env env = {.st = &st,
				     .qopts = &qo,
				     .external_labels = &rt->set->ext,
				     .external_url = rt->set->external_url,
				     .write_alerts_series = true,
				     .write = tsdb_write,
				     .write_arg = rt};
	pthread_mutex_lock(&rt->mu);
	int64_t t0 = ward_mono_ns();
	alert_group_eval(rt->g, rt->ts, &env);
	flush_writes(rt);
	rt->g->last_duration_s = (double)(ward_mono_ns() - t0) / 1e9; /* writes included */
	send_alerts(rt, rt->ts);
	size_t fails = 0;
	for (size_t i = 0; i < rt->g->nrules; i++)
		fails += rt->g->rules[i].last_error != NULL;
	double dur = rt->g->last_duration_s;
	persist_group(rt);
	pthread_mutex_unlock(&rt->mu);
	char gl[512];
	group_label(rt, gl, sizeof(gl));
	const char *lv[] = {gl};
	metric_set(M.m_dur, lv, dur);
	metric_set(M.m_last, lv, (double)rt->ts / 1000.0);
	metric_add(M.m_evals, lv, (double)rt->g->nrules);
	if (fails)
		metric_add(M.m_fail, lv, (double)fails);
}

static void maybe_swap(void);

static void eval_done(uv_work_t *w, int status)
{
	struct grp_rt *rt = w->data;
	rt->busy = false;
	maybe_swap();
}

static void eval_tick(uv_timer_t *t)
{
	struct grp_rt *rt = t->data;
	if (rt->busy) {
		char gl[512];
		group_label(rt, gl, sizeof(gl));
		const char *lv[] = {gl};
		metric_add(M.m_missed, lv, 1);
		return;
	}
	rt->busy = true;
	rt->ts = ward_now_ms();
	rt->work.data = rt;
	if (uv_queue_work(t->loop, &rt->work, eval_work, eval_done) != 0)
		rt->busy = false;
}

/* ---- rule sets ---- */

static struct rtset *set_new(struct alert_ruleset *rs, const struct rules_conf *rc)
{
	struct rtset *set = ward_xcalloc(1, sizeof(*set));
	set->rs = rs;
	set->n = rs->ngroups;
	set->rt = ward_xcalloc(set->n + 1, sizeof(*set->rt));
	labels_init(&set->ext);
	for (size_t i = 0; rc && i < rc->next; i++)
		labels_set(&set->ext, rc->ext[i].key, rc->ext[i].value ? rc->ext[i].value : "");
	set->external_url = ward_strdup(rc && rc->external_url ? rc->external_url : "");
	for (size_t i = 0; i < set->n; i++) {
		struct grp_rt *rt = &set->rt[i];
		rt->g = &rs->groups[i];
		rt->set = set;
		rt->interval_ms = rt->g->interval_ms > 0 ? rt->g->interval_ms
							 : (rc ? rc->eval_interval_ms : 60000);
		rt->persisted_sig = ward_xcalloc(rt->g->nrules + 1, sizeof(uint64_t));
		pthread_mutex_init(&rt->mu, NULL);
	}
	return set;
}

static void set_free(struct rtset *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		pthread_mutex_destroy(&set->rt[i].mu);
		free(set->rt[i].persisted_sig);
	}
	free(set->rt);
	alert_ruleset_free(set->rs);
	labels_free(&set->ext);
	free(set->external_url);
	free(set);
}

static void timer_closed(uv_handle_t *h)
{
	struct grp_rt *rt = h->data;
	struct rtset *set = rt->set;
	if (--set->open_handles == 0)
		set_free(set);
}

static void set_start_timers(struct rtset *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct grp_rt *rt = &set->rt[i];
		uv_timer_init(M.ctx->loop, &rt->timer);
		rt->timer.data = rt;
		set->open_handles++;
		/* as Prometheus, each group gets a fixed offset inside its interval (a hash of its
		 * file and name), so groups spread over the interval instead of all evaluating
		 * at once and contending for the cores */
		struct labels key;
		labels_init(&key);
		labels_set(&key, "file", rt->g->file);
		labels_set(&key, "group", rt->g->name);
		uint64_t first = labels_hash(&key) % (uint64_t)rt->interval_ms;
		labels_free(&key);
		uv_timer_start(&rt->timer, eval_tick, first, (uint64_t)rt->interval_ms);
	}
}

static void set_close(struct rtset *set)
{
	if (!set)
		return;
	if (set->open_handles == 0) {
		set_free(set);
		return;
	}
	for (size_t i = 0; i < set->n; i++) {
		uv_timer_stop(&set->rt[i].timer);
		uv_close((uv_handle_t *)&set->rt[i].timer, timer_closed);
	}
}

static bool set_busy(const struct rtset *set)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (set->rt[i].busy)
			return true;
	return false;
}

/* On the loop: swaps in the pending set once nothing of the current one is running. */
static void maybe_swap(void)
{
	pthread_mutex_lock(&M.pend_mu);
	struct rtset *next = M.pending;
	if (!next || set_busy(M.cur) || !M.running) {
		pthread_mutex_unlock(&M.pend_mu);
		return;
	}
	M.pending = NULL;
	pthread_mutex_unlock(&M.pend_mu);
	pthread_rwlock_wrlock(&M.rw);
	struct rtset *old = M.cur;
	if (old)
		alert_ruleset_carry_state(next->rs, old->rs);
	M.cur = next;
	pthread_rwlock_unlock(&M.rw);
	for (size_t i = 0; old && i < next->n; i++) /* carried state is already persisted */
		for (size_t j = 0; j < next->rt[i].g->nrules; j++)
			next->rt[i].persisted_sig[j] = state_sig(&next->rt[i].g->rules[j]);
	restore_set(next);
	set_close(old);
	set_start_timers(next);
	char d[128];
	snprintf(d, sizeof(d), "{\"groups\":%zu,\"rules\":%zu}", next->n,
		 alert_ruleset_nrules(next->rs));
	ward_log(LOG_INFO, "rules loaded", "details", d, NULL);
	/* which rules are in force is part of the record (the reload itself is audited by
	 * the core as config.reload, with its actor) */
	(void)ward_audit_system(M.ctx, "rules.load", "rules", "ok", d);
}

static void swap_cb(uv_async_t *a)
{
	maybe_swap();
}

static char *config_dir(const struct conf *c)
{
	const char *src = conf_source(c);
	if (!src || src[0] == '<')
		return NULL;
	char *p = ward_strdup(src);
	char *d = ward_strdup(dirname(p));
	free(p);
	return d;
}

static struct rtset *load_set(const struct conf *c, struct ward_err *err)
{
	const struct rules_conf *rc = conf_section(c, "rules");
	char *dir = config_dir(c);
	struct alert_ruleset *rs = alert_rules_load_globs(
		(const char *const *)(rc ? rc->files : NULL), rc ? rc->nfiles : 0, dir, err);
	free(dir);
	if (!rs)
		return NULL;
	if (!rc || rc->defaults) {
		struct alert_ruleset *d = alert_rules_load_defaults(err);
		if (!d) {
			alert_ruleset_free(rs);
			return NULL;
		}
		alert_ruleset_merge(rs, d);
	}
	return set_new(rs, rc);
}

/* ---- HTTP ---- */

static void put_time(struct buf *b, int64_t ms)
{
	char t[32];
	if (ms <= 0) {
		buf_puts(b, "\"0001-01-01T00:00:00Z\"");
		return;
	}
	ward_fmt_rfc3339(ms, t);
	buf_printf(b, "\"%s\"", t);
}

static void put_labels(struct buf *b, const struct labels *ls)
{
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

static void put_alert(struct buf *b, const struct alert_inst *a)
{
	buf_puts(b, "{\"labels\":");
	put_labels(b, &a->labels);
	buf_puts(b, ",\"annotations\":");
	put_labels(b, &a->annotations);
	buf_printf(b, ",\"state\":\"%s\",\"activeAt\":", alert_state_name(a->state));
	put_time(b, a->active_at_ms);
	if (a->keep_firing_since_ms) {
		buf_puts(b, ",\"keepFiringSince\":");
		put_time(b, a->keep_firing_since_ms);
	}
	buf_puts(b, ",\"value\":\"");
	buf_put_double_e(b, a->value); /* Prometheus: FormatFloat(v, 'e', -1) */
	buf_puts(b, "\"}");
}

static void put_rule(struct buf *b, const struct alert_rule *r, const char *type_filter)
{
	buf_puts(b, "{\"name\":");
	buf_json_str(b, r->name, strlen(r->name));
	buf_puts(b, ",\"query\":");
	buf_json_str(b, r->expr_text, strlen(r->expr_text));
	buf_puts(b, ",\"labels\":");
	put_labels(b, &r->labels);
	if (r->alerting) {
		enum alert_state st = ALERT_INACTIVE;
		for (size_t i = 0; i < r->nactive; i++)
			if (r->active[i].state > st)
				st = r->active[i].state;
		buf_printf(b, ",\"state\":\"%s\",\"duration\":%g,\"keepFiringFor\":%g", alert_state_name(st),
			   (double)r->for_ms / 1000.0, (double)r->keep_firing_for_ms / 1000.0);
		buf_puts(b, ",\"annotations\":");
		put_labels(b, &r->annotations);
		buf_puts(b, ",\"alerts\":[");
		bool first = true;
		for (size_t i = 0; i < r->nactive; i++) {
			if (r->active[i].state == ALERT_INACTIVE)
				continue;
			if (!first)
				buf_putc(b, ',');
			first = false;
			put_alert(b, &r->active[i]);
		}
		buf_putc(b, ']');
	}
	buf_printf(b, ",\"health\":\"%s\"",
		   !r->evaluated ? "unknown" : r->last_error ? "err" : "ok");
	if (r->last_error) {
		buf_puts(b, ",\"lastError\":");
		buf_json_str(b, r->last_error, strlen(r->last_error));
	}
	buf_printf(b, ",\"evaluationTime\":%.9f,\"lastEvaluation\":", r->last_duration_s);
	put_time(b, r->last_eval_ms);
	buf_printf(b, ",\"type\":\"%s\"}", r->alerting ? "alerting" : "recording");
	(void)type_filter;
}

static void put_group(struct buf *b, const struct alert_group *g, int64_t interval_ms,
		      const char *type)
{
	buf_puts(b, "{\"name\":");
	buf_json_str(b, g->name, strlen(g->name));
	buf_puts(b, ",\"file\":");
	buf_json_str(b, g->file, strlen(g->file));
	buf_puts(b, ",\"rules\":[");
	bool first = true;
	for (size_t i = 0; i < g->nrules; i++) {
		const struct alert_rule *r = &g->rules[i];
		if (type && ((!strcmp(type, "alert") && !r->alerting) ||
			     (!strcmp(type, "record") && r->alerting)))
			continue;
		if (!first)
			buf_putc(b, ',');
		first = false;
		put_rule(b, r, type);
	}
	buf_printf(b, "],\"interval\":%g,\"limit\":%lld,\"evaluationTime\":%.9f,\"lastEvaluation\":",
		   (double)interval_ms / 1000.0, (long long)g->limit, g->last_duration_s);
	put_time(b, g->last_eval_ms);
	buf_putc(b, '}');
}

void alert_rules_json(const struct alert_ruleset *rs, struct buf *out)
{
	buf_puts(out, "{\"groups\":[");
	for (size_t i = 0; rs && i < rs->ngroups; i++) {
		if (i)
			buf_putc(out, ',');
		put_group(out, &rs->groups[i], rs->groups[i].interval_ms, NULL);
	}
	buf_puts(out, "]}");
}

static void put_active_alerts(struct buf *out, const struct alert_group *g, bool *first)
{
	for (size_t j = 0; j < g->nrules; j++) {
		const struct alert_rule *r = &g->rules[j];
		for (size_t k = 0; r->alerting && k < r->nactive; k++) {
			if (r->active[k].state == ALERT_INACTIVE)
				continue;
			if (!*first)
				buf_putc(out, ',');
			*first = false;
			put_alert(out, &r->active[k]);
		}
	}
}

void alert_alerts_json(const struct alert_ruleset *rs, struct buf *out)
{
	buf_puts(out, "{\"alerts\":[");
	bool first = true;
	for (size_t i = 0; rs && i < rs->ngroups; i++)
		put_active_alerts(out, &rs->groups[i], &first);
	buf_puts(out, "]}");
}

static void h_rules(struct http_req *req, struct http_resp *resp, void *arg)
{
	const char *type = http_param(req, "type");
	if (type && *type && strcmp(type, "alert") && strcmp(type, "record")) {
		http_resp_error(resp, 400, "bad_data", "invalid parameter \"type\": %s; use alert or "
						       "record", type);
		return;
	}
	if (type && !*type)
		type = NULL;
	struct buf b = BUF_INIT;
	buf_puts(&b, "{\"groups\":[");
	pthread_rwlock_rdlock(&M.rw);
	for (size_t i = 0; M.cur && i < M.cur->n; i++) {
		struct grp_rt *rt = &M.cur->rt[i];
		if (i)
			buf_putc(&b, ',');
		pthread_mutex_lock(&rt->mu);
		put_group(&b, rt->g, rt->interval_ms, type);
		pthread_mutex_unlock(&rt->mu);
	}
	pthread_rwlock_unlock(&M.rw);
	buf_puts(&b, "]}");
	http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

static void h_alerts(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "{\"alerts\":[");
	bool first = true;
	pthread_rwlock_rdlock(&M.rw);
	for (size_t i = 0; M.cur && i < M.cur->n; i++) {
		struct grp_rt *rt = &M.cur->rt[i];
		pthread_mutex_lock(&rt->mu);
		put_active_alerts(&b, rt->g, &first);
		pthread_mutex_unlock(&rt->mu);
	}
	pthread_rwlock_unlock(&M.rw);
	buf_puts(&b, "]}");
	http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

static int rules_health(void *arg, struct buf *out)
{
	size_t groups = 0, rules = 0, failing = 0;
	pthread_rwlock_rdlock(&M.rw);
	for (size_t i = 0; M.cur && i < M.cur->n; i++) {
		groups++;
		rules += M.cur->rt[i].g->nrules;
	}
	pthread_rwlock_unlock(&M.rw);
	buf_printf(out, "{\"groups\":%zu,\"rules\":%zu,\"failing\":%zu}", groups, rules, failing);
	return 0;
}

/* ---- lifecycle ---- */

static int alert_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err)
{
	M.ctx = ctx;
	struct rtset *set = load_set(c, err);
	if (!set)
		return -1;
	uv_async_init(ctx->loop, &M.swap_async, swap_cb);
	M.running = true;
	pthread_mutex_lock(&M.pend_mu);
	M.pending = set;
	pthread_mutex_unlock(&M.pend_mu);
	maybe_swap();
	http_route("GET", "/api/v1/rules", ROLE_VIEWER, h_rules, NULL);
	http_route("GET", "/api/v1/alerts", ROLE_VIEWER, h_alerts, NULL);
	ward_health_register("rules", rules_health, NULL);
	return 0;
}

static int alert_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err)
{
	if (!M.running)
		return 0;
	struct rtset *set = load_set(c, err);
	if (!set)
		return -1;
	pthread_mutex_lock(&M.pend_mu);
	struct rtset *old = M.pending;
	M.pending = set;
	pthread_mutex_unlock(&M.pend_mu);
	set_free(old); /* a pending set never started timers */
	uv_async_send(&M.swap_async);
	return 0;
}

static void alert_stop(struct ward_ctx *ctx)
{
	if (!M.running)
		return;
	M.running = false;
	while (set_busy(M.cur))
		uv_run(ctx->loop, UV_RUN_ONCE);
	pthread_mutex_lock(&M.pend_mu);
	set_free(M.pending);
	M.pending = NULL;
	pthread_mutex_unlock(&M.pend_mu);
	pthread_rwlock_wrlock(&M.rw);
	struct rtset *old = M.cur;
	M.cur = NULL;
	pthread_rwlock_unlock(&M.rw);
	for (size_t i = 0; old && i < old->n; i++) {
		pthread_mutex_lock(&old->rt[i].mu);
		persist_group(&old->rt[i]);
		pthread_mutex_unlock(&old->rt[i].mu);
	}
	set_close(old);
	uv_close((uv_handle_t *)&M.swap_async, NULL);
	uv_run(ctx->loop, UV_RUN_NOWAIT);
}

const struct ward_module alert_module = {
	.name = "alert",
	.init = alert_init,
	.start = alert_start,
	.apply = alert_apply,
	.stop = alert_stop,
};
