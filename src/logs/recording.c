/* recording.c: log-based recording rules. Each rule is a metric query over the log store
 * (`sum by (status) (count_over_time({job="nginx"} |~ " 5\\d\\d " [1m]))`); every
 * recording_interval its instant result is written into the time-series store as the
 * series `record` plus the rule's labels, so PromQL rules and alerts can use log-derived
 * numbers ("rate of 5xx lines above 1/s").
 *
 * Threads: the timer runs on the loop; the queries and the tsdb commit run on libuv's
 * worker pool, one evaluation at a time (busy). New rules from a reload wait in `pending`
 * and are swapped in on the loop thread between evaluations, so the worker never sees them
 * change.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "logs/module_internal.h"
#include "tsdb/tsdb.h"

#define RECORDING_MAX_SERIES 10000 /* per rule: a runaway `by` clause stops here */

#define RC(f) offsetof(struct logs_recording_conf, f)
static const struct conf_field recording_fields[] = {
        {.key = "record",
         .type = CONF_STR,
         .offset = RC(record),
         .flags = CONF_REQUIRED,
         .help = "the metric name the result is written as"},
        {.key = "expr",
         .type = CONF_STR,
         .offset = RC(expr),
         .flags = CONF_REQUIRED,
         .help = "a metric query over logs, e.g. sum(rate({job=\"app\"} |= \"error\" [1m]))"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = RC(labels),
         .count_offset = RC(nlabels),
         .help = "labels added to every series the rule writes"},
        {0},
};
const struct conf_schema logs_recording_schema = {
        .name = "recording_rule", .size = sizeof(struct logs_recording_conf), .fields = recording_fields};

struct rule {
	char *record;
	char *expr;
	struct logs_query *q;
	struct labels labels;
};

struct ruleset {
	struct rule *v;
	size_t n;
};

struct logs_recorder {
	struct logs_mod *m;
	uv_timer_t timer;
	uv_work_t work;
	bool busy;               /* an evaluation is on the worker pool (loop thread only) */
	struct ruleset rules;    /* read by the worker while busy */
	struct ruleset *pending; /* from a reload, swapped in when not busy */
	int64_t interval_ms;
	struct metric *m_evals, *m_failures, *m_series;
};


int logs_recording_check(const struct logs_recording_conf *r, struct ward_err *err) {
	if (!labels_valid_metric_name(r->record)) {
		ward_err_set(err, "record: \"%s\" is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
		             r->record ? r->record : "");
		return -1;
	}
	struct ward_err e;
	ward_err_clear(&e);
	struct logs_query *q = logs_query_parse(r->expr, strlen(r->expr), &e);
	if (!q) {
		ward_err_set(err, "expr: %s", e.msg);
		return -1;
	}
	bool metric = logs_query_is_metric(q);
	logs_query_free(q);
	if (!metric) {
		ward_err_set(err, "expr: \"%s\" returns log lines, not numbers; wrap it in "
		                  "count_over_time(...[1m]) or rate(...[1m])",
		             r->expr);
		return -1;
	}
	return 0;
}

static void ruleset_free(struct ruleset *rs) {
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].record);
		free(rs->v[i].expr);
		logs_query_free(rs->v[i].q);
		labels_free(&rs->v[i].labels);
	}
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

/* Compiles the rules of lc (already validated by the config loader). */
static void ruleset_from(struct ruleset *rs, const struct logs_conf *lc) {
	rs->v = ward_xcalloc(lc->nrecording ? lc->nrecording : 1, sizeof(*rs->v));
	rs->n = 0;
	for (size_t i = 0; i < lc->nrecording; i++) {
		const struct logs_recording_conf *c = &lc->recording[i];
		struct ward_err e;
		ward_err_clear(&e);
		struct logs_query *q = logs_query_parse(c->expr, strlen(c->expr), &e);
		if (!q)
			continue;
		struct rule *r = &rs->v[rs->n++];
		r->record = ward_strdup(c->record);
		r->expr = ward_strdup(c->expr);
		r->q = q;
		labels_init(&r->labels);
		for (size_t k = 0; k < c->nlabels; k++)
			labels_set(&r->labels, c->labels[k].key, c->labels[k].value);
	}
}

/* Appends one rule's vector result (Loki's JSON "data" object) to the batch. */
static int append_result(struct tsdb_appender *app, const struct rule *r, const char *json,
                         int64_t now_ms, size_t *nseries, struct ward_err *err) {
	json_error_t jerr;
	json_t *d = json_loads(json, 0, &jerr);
	json_t *res = d ? json_object_get(d, "result") : NULL;
	int rc = 0;
	size_t i;
	json_t *e;
	struct labels ls;
	labels_init(&ls);
	json_array_foreach(res, i, e) {
		json_t *metric = json_object_get(e, "metric");
		json_t *value = json_object_get(e, "value");
		const char *vs = json_string_value(json_array_get(value, 1));
		if (!vs)
			continue;
		labels_free(&ls);
		const char *k;
		json_t *v;
		json_object_foreach(metric, k, v) {
			if (json_is_string(v))
				labels_set(&ls, k, json_string_value(v));
		}
		for (size_t j = 0; j < r->labels.n; j++)
			labels_set(&ls, r->labels.v[j].name, r->labels.v[j].value);
		labels_set(&ls, "__name__", r->record);
		if (tsdb_append(app, &ls, now_ms, strtod(vs, NULL), err) != 0) {
			rc = -1;
			break;
		}
		(*nseries)++;
	}
	labels_free(&ls);
	json_decref(d);
	return rc;
}

static void eval_work(uv_work_t *w) {
	struct logs_recorder *r = w->data;
	struct tsdb *db = r->m->ctx ? r->m->ctx->tsdb : NULL;
	if (!db || !r->m->store)
		return;
	int64_t now_ms = ward_now_ms();
	struct tsdb_appender *app = tsdb_appender_new(db);
	size_t nseries = 0;
	for (size_t i = 0; i < r->rules.n; i++) {
		const struct rule *rule = &r->rules.v[i];
		struct logs_query_opts o = {.start_ns = now_ms * 1000000,
		                            .end_ns = now_ms * 1000000,
		                            .max_series = RECORDING_MAX_SERIES};
		struct buf out = BUF_INIT;
		struct ward_err err;
		ward_err_clear(&err);
		const char *rv[] = {rule->record};
		if (logs_query_exec(r->m->store, rule->q, &o, &out, &err) != 0 ||
		    append_result(app, rule, buf_cstr(&out), now_ms, &nseries, &err) != 0) {
			metric_add(r->m_failures, rv, 1);
			ward_log(LOG_WARN, "logs: recording rule failed", "record", rule->record,
			         "error", err.msg, NULL);
		}
		metric_add(r->m_evals, rv, 1);
		buf_free(&out);
	}
	struct ward_err err;
	ward_err_clear(&err);
	if (tsdb_commit(app, NULL, &err) != 0)
		ward_log(LOG_WARN, "logs: writing recording rule results failed", "error", err.msg,
		         NULL);
	metric_set(r->m_series, NULL, (double)nseries);
}

static void eval_done(uv_work_t *w, int status) {
	struct logs_recorder *r = w->data;
	r->busy = false;
}

static void tick(uv_timer_t *t) {
	struct logs_recorder *r = t->data;
	if (r->busy)
		return;
	if (r->pending) {
		ruleset_free(&r->rules);
		r->rules = *r->pending;
		free(r->pending);
		r->pending = NULL;
	}
	if (r->rules.n == 0)
		return;
	r->busy = true;
	r->work.data = r;
	if (uv_queue_work(t->loop, &r->work, eval_work, eval_done) != 0)
		r->busy = false;
}

struct logs_recorder *logs_recorder_start(struct logs_mod *m, uv_loop_t *loop,
                                          const struct logs_conf *lc) {
	if (!lc->nrecording)
		return NULL;
	struct logs_recorder *r = ward_xcalloc(1, sizeof(*r));
	static const char *const rec_l[] = {"record", NULL};
	r->m = m;
	r->m_evals = metric_register("ward_logs_recording_evaluations_total",
	                             "Evaluations of log-based recording rules.", METRIC_COUNTER,
	                             rec_l, NULL, 0);
	r->m_failures = metric_register("ward_logs_recording_failures_total",
	                                "Log-based recording rule evaluations that failed.",
	                                METRIC_COUNTER, rec_l, NULL, 0);
	r->m_series = metric_register("ward_logs_recording_series",
	                              "Series written by the last evaluation of the log-based "
	                              "recording rules.",
	                              METRIC_GAUGE, NULL, NULL, 0);
	ruleset_from(&r->rules, lc);
	r->interval_ms = lc->recording_interval_ms > 0 ? lc->recording_interval_ms : 15000;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, tick, (uint64_t)r->interval_ms, (uint64_t)r->interval_ms);
	return r;
}

void logs_recorder_update(struct logs_recorder *r, const struct logs_conf *lc) {
	struct ruleset *rs = ward_xcalloc(1, sizeof(*rs));
	ruleset_from(rs, lc);
	if (r->pending) {
		ruleset_free(r->pending);
		free(r->pending);
	}
	r->pending = rs;
	int64_t iv = lc->recording_interval_ms > 0 ? lc->recording_interval_ms : 15000;
	if (iv != r->interval_ms) {
		r->interval_ms = iv;
		uv_timer_stop(&r->timer);
		uv_timer_start(&r->timer, tick, (uint64_t)iv, (uint64_t)iv);
	}
}

static void on_timer_closed(uv_handle_t *h) {
	struct logs_recorder *r = h->data;
	ruleset_free(&r->rules);
	if (r->pending) {
		ruleset_free(r->pending);
		free(r->pending);
	}
	free(r);
}

void logs_recorder_stop(struct logs_recorder *r, uv_loop_t *loop) {
	if (!r)
		return;
	uv_timer_stop(&r->timer);
	while (r->busy)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
