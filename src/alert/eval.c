/* eval.c: one evaluation of a rule group at one instant, as Prometheus' rules package does:
 * recording rules write their series; alerting rules move their alerts inactive ->
 * pending -> firing (after `for`) -> inactive/resolved (kept firing `keep_firing_for` past
 * the last match), expand label and annotation templates, and write ALERTS and
 * ALERTS_FOR_STATE. Series a rule wrote last time and not this time get a stale marker.
 *
 * Invariant: a rule's state (active alerts, previous series) is touched only here and by
 * the module's restore/persist, never concurrently (one evaluation of a group at a time).
 * Called by the module (on the worker pool), the unit-test runner and tests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alert_internal.h"

const char *alert_state_name(enum alert_state s)
{
	switch (s) {
	case ALERT_PENDING: return "pending";
	case ALERT_FIRING: return "firing";
	default: return "inactive";
	}
}

void alert_inst_clear(struct alert_inst *a)
{
	labels_free(&a->labels);
	labels_free(&a->annotations);
}

static void set_error(struct alert_rule *r, const char *msg)
{
	free(r->last_error);
	r->last_error = msg ? ward_strdup(msg) : NULL;
}

/* A tiny open-addressing set of label sets (indices into an array), for duplicate and
 * identity checks in O(1) whatever the number of series a rule returns. */
struct lset {
	size_t *slot; /* index + 1; 0 empty */
	size_t cap;
};
static void lset_init(struct lset *s, size_t n)
{
	s->cap = 16;
	while (s->cap < n * 2 + 1)
		s->cap <<= 1;
	s->slot = ward_xcalloc(s->cap, sizeof(size_t));
}
/* Finds ls among base[i] (stride bytes apart, labels at offset 0); inserts idx when absent
 * and idx != SIZE_MAX. Returns the found index or SIZE_MAX. */
static size_t lset_find(struct lset *s, const struct labels *ls, const void *base, size_t stride,
			size_t idx)
{
	size_t h = (size_t)labels_hash(ls) & (s->cap - 1);
	for (;;) {
		size_t v = s->slot[h];
		if (!v) {
			if (idx != SIZE_MAX)
				s->slot[h] = idx + 1;
			return SIZE_MAX;
		}
		const struct labels *o = (const struct labels *)((const char *)base + (v - 1) * stride);
		if (labels_equal(o, ls))
			return v - 1;
		h = (h + 1) & (s->cap - 1);
	}
}

struct outv {
	struct alert_sample *v;
	size_t n, cap;
};
static void out_add(struct outv *o, const struct labels *ls, double v)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 16;
		o->v = ward_xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	labels_init(&o->v[o->n].labels);
	labels_copy(&o->v[o->n].labels, ls);
	o->v[o->n].v = v;
	o->n++;
}
static void out_free(struct outv *o)
{
	for (size_t i = 0; i < o->n; i++)
		labels_free(&o->v[i].labels);
	free(o->v);
	o->v = NULL;
	o->n = o->cap = 0;
}

/* The rule's result as (labels, value) pairs. */
static int query(struct alert_rule *r, int64_t ts, const struct alert_eval_env *env,
		 struct promql_result *res, struct ward_err *err)
{
	struct promql_opts o;
	if (env->qopts)
		o = *env->qopts;
	else
		promql_opts_default(&o);
	enum promql_errtype et;
	memset(res, 0, sizeof(*res));
	return promql_eval_instant(env->st, r->expr, ts, &o, res, &et, err);
}

static void expand(const char *tname, const char *tmpl, const struct alert_tmpl_data *d,
		   struct buf *out)
{
	struct ward_err e;
	ward_err_clear(&e);
	buf_reset(out);
	if (alert_tmpl_expand(tname, tmpl, strlen(tmpl), d, out, &e) != 0) {
		buf_reset(out);
		buf_printf(out, "<error expanding template: %s>", e.msg);
	}
}

/* Adds stale markers for last evaluation's series that are missing from out, then makes
 * out's label sets the new "previous" list. */
static void staleness(struct alert_rule *r, struct outv *out)
{
	struct lset s;
	lset_init(&s, out->n);
	for (size_t i = 0; i < out->n; i++)
		(void)lset_find(&s, &out->v[i].labels, out->v, sizeof(*out->v), i);
	size_t nfresh = out->n;
	for (size_t i = 0; i < r->nprev; i++)
		if (lset_find(&s, &r->prev_series[i], out->v, sizeof(*out->v), SIZE_MAX) ==
		    SIZE_MAX)
			out_add(out, &r->prev_series[i], tsdb_stale_nan());
	free(s.slot);
	for (size_t i = 0; i < r->nprev; i++)
		labels_free(&r->prev_series[i]);
	free(r->prev_series);
	r->prev_series = ward_xcalloc(nfresh + 1, sizeof(*r->prev_series));
	r->nprev = nfresh;
	for (size_t i = 0; i < nfresh; i++) {
		labels_init(&r->prev_series[i]);
		labels_copy(&r->prev_series[i], &out->v[i].labels);
	}
}

static int eval_recording(struct alert_rule *r, const struct alert_group *g,
			  const struct promql_result *res, struct outv *out, struct ward_err *err)
{
	size_t n = res->type == PROMQL_SCALAR ? 1 : res->nseries;
	struct lset s;
	lset_init(&s, n);
	for (size_t i = 0; i < n; i++) {
		struct labels ls;
		labels_init(&ls);
		double v = res->scalar;
		if (res->type != PROMQL_SCALAR) {
			labels_copy(&ls, &res->series[i].labels);
			v = res->series[i].n ? res->series[i].v[0] : NAN;
		}
		labels_set(&ls, "__name__", r->name);
		for (size_t j = 0; j < r->labels.n; j++)
			labels_set(&ls, r->labels.v[j].name, r->labels.v[j].value);
		out_add(out, &ls, v);
		labels_free(&ls);
		if (lset_find(&s, &out->v[out->n - 1].labels, out->v, sizeof(*out->v), out->n - 1) !=
		    SIZE_MAX) {
			free(s.slot);
			ward_err_set(err, "vector contains metrics with the same labelset after "
					  "applying rule labels");
			return -1;
		}
	}
	free(s.slot);
	if (g->limit > 0 && (int64_t)out->n > g->limit) {
		ward_err_set(err, "exceeded limit of %lld with %zu series", (long long)g->limit,
			     out->n);
		return -1;
	}
	return 0;
}

static void alert_series(const struct alert_inst *a, int64_t ts, struct outv *out)
{
	struct labels ls;
	labels_init(&ls);
	labels_copy(&ls, &a->labels);
	labels_set(&ls, "__name__", "ALERTS");
	labels_set(&ls, "alertstate", alert_state_name(a->state));
	out_add(out, &ls, 1);
	labels_del(&ls, "alertstate");
	labels_set(&ls, "__name__", "ALERTS_FOR_STATE");
	out_add(out, &ls, (double)(a->active_at_ms / 1000));
	labels_free(&ls);
}

static int eval_alerting(struct alert_rule *r, const struct alert_group *g, int64_t ts,
			 const struct alert_eval_env *env, const struct promql_result *res,
			 struct outv *out, struct ward_err *err)
{
	size_t n = res->type == PROMQL_SCALAR ? 1 : res->nseries;
	struct alert_inst *cur = ward_xcalloc(n + 1, sizeof(*cur));
	size_t ncur = 0;
	struct buf tname = BUF_INIT, tmp = BUF_INIT;
	buf_printf(&tname, "__alert_%s", r->name);
	struct lset s;
	lset_init(&s, n);
	int rc = 0;
	static const struct labels none;
	for (size_t i = 0; i < n; i++) {
		const struct labels *sl = res->type == PROMQL_SCALAR ? &none : &res->series[i].labels;
		double v = res->type == PROMQL_SCALAR
				   ? res->scalar
				   : (res->series[i].n ? res->series[i].v[0] : NAN);
		struct alert_tmpl_data d = {.labels = sl,
					    .external_labels = env->external_labels,
					    .external_url = env->external_url,
					    .value = v,
					    .st = env->st,
					    .qopts = env->qopts,
					    .t_ms = ts};
		struct alert_inst *a = &cur[ncur];
		labels_init(&a->labels);
		labels_copy(&a->labels, sl);
		labels_del(&a->labels, "__name__");
		for (size_t j = 0; j < r->labels.n; j++) {
			expand(buf_cstr(&tname), r->labels.v[j].value, &d, &tmp);
			labels_set(&a->labels, r->labels.v[j].name, buf_cstr(&tmp));
		}
		labels_set(&a->labels, "alertname", r->name);
		labels_init(&a->annotations);
		for (size_t j = 0; j < r->annotations.n; j++) {
			expand(buf_cstr(&tname), r->annotations.v[j].value, &d, &tmp);
			labels_set(&a->annotations, r->annotations.v[j].name, buf_cstr(&tmp));
		}
		a->value = v;
		a->active_at_ms = ts;
		a->state = ALERT_PENDING;
		ncur++;
		if (lset_find(&s, &a->labels, cur, sizeof(*cur), ncur - 1) != SIZE_MAX) {
			ward_err_set(err, "vector contains metrics with the same labelset after "
					  "applying alert labels");
			rc = -1;
			goto out;
		}
	}
	/* merge into the active set */
	struct lset act;
	lset_init(&act, r->nactive + ncur);
	for (size_t i = 0; i < r->nactive; i++) {
		r->active[i].seen = false;
		(void)lset_find(&act, &r->active[i].labels, r->active, sizeof(*r->active), i);
	}
	size_t nnew = 0;
	for (size_t i = 0; i < ncur; i++) {
		size_t j = lset_find(&act, &cur[i].labels, r->active, sizeof(*r->active), SIZE_MAX);
		if (j != SIZE_MAX && r->active[j].state != ALERT_INACTIVE) {
			struct alert_inst *a = &r->active[j];
			a->value = cur[i].value;
			labels_free(&a->annotations);
			a->annotations = cur[i].annotations;
			labels_init(&cur[i].annotations);
			alert_inst_clear(&cur[i]);
			memset(&cur[i], 0, sizeof(cur[i]));
			a->seen = true;
			continue;
		}
		if (j != SIZE_MAX) { /* a resolved alert comes back: it starts over */
			alert_inst_clear(&r->active[j]);
			r->active[j] = cur[i];
			r->active[j].seen = true;
			memset(&cur[i], 0, sizeof(cur[i]));
			continue;
		}
		cur[nnew] = cur[i];
		if (nnew != i)
			memset(&cur[i], 0, sizeof(cur[i]));
		cur[nnew].seen = true;
		nnew++;
	}
	free(act.slot);
	r->active = ward_xrealloc(r->active, (r->nactive + nnew + 1) * sizeof(*r->active));
	memcpy(r->active + r->nactive, cur, nnew * sizeof(*cur));
	r->nactive += nnew;
	ncur = 0;
	/* advance states */
	size_t k = 0, active_pending = 0;
	for (size_t i = 0; i < r->nactive; i++) {
		struct alert_inst *a = &r->active[i];
		bool keep = true;
		if (!a->seen) {
			bool keep_firing = false;
			if (a->state == ALERT_FIRING && r->keep_firing_for_ms > 0) {
				if (!a->keep_firing_since_ms)
					a->keep_firing_since_ms = ts;
				if (ts - a->keep_firing_since_ms < r->keep_firing_for_ms)
					keep_firing = true;
			}
			if (!keep_firing) {
				if (a->state == ALERT_PENDING ||
				    (a->resolved_at_ms &&
				     ts - a->resolved_at_ms > ALERT_RESOLVED_RETENTION_MS))
					keep = false;
				if (a->state != ALERT_INACTIVE) {
					a->state = ALERT_INACTIVE;
					a->resolved_at_ms = ts;
				}
				goto next;
			}
		} else if (a->state != ALERT_INACTIVE && r->keep_firing_for_ms > 0) {
			a->keep_firing_since_ms = 0;
		}
		active_pending++;
		if (a->state == ALERT_PENDING && ts - a->active_at_ms >= r->for_ms) {
			a->state = ALERT_FIRING;
			a->fired_at_ms = ts;
		}
		if (env->write_alerts_series)
			alert_series(a, ts, out);
next:
		if (!keep) {
			alert_inst_clear(a);
			continue;
		}
		if (k != i)
			r->active[k] = *a;
		k++;
	}
	r->nactive = k;
	if (g->limit > 0 && (int64_t)active_pending > g->limit) {
		for (size_t i = 0; i < r->nactive; i++)
			alert_inst_clear(&r->active[i]);
		r->nactive = 0;
		out_free(out);
		ward_err_set(err, "exceeded limit of %lld with %zu alerts", (long long)g->limit,
			     active_pending);
		rc = -1;
	}
out:
	for (size_t i = 0; i < ncur; i++)
		alert_inst_clear(&cur[i]);
	free(cur);
	free(s.slot);
	buf_free(&tname);
	buf_free(&tmp);
	return rc;
}

void alert_group_eval(struct alert_group *g, int64_t ts, const struct alert_eval_env *env)
{
	int64_t g0 = ward_mono_ns();
	for (size_t i = 0; i < g->nrules; i++) {
		struct alert_rule *r = &g->rules[i];
		int64_t t0 = ward_mono_ns();
		struct ward_err err;
		ward_err_clear(&err);
		struct promql_result res;
		struct outv out = {0};
		int rc = query(r, ts, env, &res, &err);
		if (rc == 0) {
			rc = r->alerting ? eval_alerting(r, g, ts, env, &res, &out, &err)
					 : eval_recording(r, g, &res, &out, &err);
			promql_result_free(&res);
		}
		if (rc == 0 && (!r->alerting || env->write_alerts_series))
			staleness(r, &out);
		if (rc == 0 && out.n && env->write)
			rc = env->write(env->write_arg, out.v, out.n, ts, &err);
		out_free(&out);
		set_error(r, rc == 0 ? NULL : err.msg);
		r->evaluated = true;
		r->last_eval_ms = ts;
		r->last_duration_s = (double)(ward_mono_ns() - t0) / 1e9;
	}
	g->last_eval_ms = ts;
	g->last_duration_s = (double)(ward_mono_ns() - g0) / 1e9;
}
