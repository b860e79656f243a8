/* functions.c: PromQL's built-in functions and their table (name, argument types, result
 * type, implementation), following Prometheus' promql/functions.go.
 *
 * Range-vector functions get the samples of (t - range, t] per series (stale markers
 * already removed) and drop __name__ except last_over_time; element-wise math drops
 * __name__; label_replace, label_join, sort and sort_desc keep it. rate/increase/delta use
 * Prometheus' extrapolatedRate exactly (1.1 x average interval rule, zero-point clamp).
 * Called by parse.c (lookup) and eval.c (impl).
 */
#include "promql/promql_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static const struct promql_expr *unparen(const struct promql_expr *e) {
	while (e->kind == N_PAREN)
		e = e->expr;
	return e;
}

/* Go's math.Max / math.Min: NaN wins, +-Inf handled. */
static double go_max(double x, double y) {
	if (isinf(x) && x > 0)
		return x;
	if (isinf(y) && y > 0)
		return y;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? y : x;
	return x > y ? x : y;
}

static double go_min(double x, double y) {
	if (isinf(x) && x < 0)
		return x;
	if (isinf(y) && y < 0)
		return y;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? x : y;
	return x < y ? x : y;
}

static void push_copy(struct vec *out, const struct labels *ls, double v, bool drop_name) {
	struct labels c;

	labels_init(&c);
	labels_copy(&c, ls);
	if (drop_name)
		promql_labels_drop_name(&c);
	promql_vec_push(out, &c, v);
}

/* ---- range-vector functions ---- */
static void range_bounds(struct eval_ctx *ec, const struct promql_expr *arg, int64_t *start,
                         int64_t *end, int64_t *range) {
	const struct promql_expr *m = unparen(arg);
	const struct promql_expr *mod = m->kind == N_MSEL ? m->expr : m;
	int64_t t = ec->t;

	if (mod->at == AT_TS)
		t = mod->at_ms;
	else if (mod->at == AT_START)
		t = ec->start_ms;
	else if (mod->at == AT_END)
		t = ec->end_ms;
	*end = t - mod->offset_ms;
	*range = m->range_ms;
	*start = *end - m->range_ms;
}

/* Prometheus' extrapolatedRate for one series' samples of a window [rstart, rend]: false
 * when it has fewer than two. may_drop false says no sample is below the one before it,
 * so the counter-reset loop would add nothing (at most a +0 to a result that is not -0). */
static bool rate_value(const struct tsdb_series *s, int64_t rstart, int64_t rend, int64_t range,
                       bool is_counter, bool is_rate, bool may_drop, double *out) {
	double result, last = 0, to_start, to_end, sampled, avg, threshold, extrap, factor;
	size_t j;

	if (s->n < 2)
		return false;
	result = s->v[s->n - 1] - s->v[0];
	if (is_counter && may_drop) {
		for (j = 0; j < s->n; j++) {
			if (s->v[j] < last)
				result += last;
			last = s->v[j];
		}
	}
	to_start = (double)(s->t[0] - rstart) / 1000;
	to_end = (double)(rend - s->t[s->n - 1]) / 1000;
	sampled = (double)(s->t[s->n - 1] - s->t[0]) / 1000;
	avg = sampled / (double)(s->n - 1);
	threshold = avg * 1.1;
	extrap = sampled;
	/* Prometheus 2.x clamps to the counter's zero point first, then applies the
	 * 1.1 x average interval rule to what is left (3.x does it the other way round). */
	if (is_counter && result > 0 && s->v[0] >= 0) {
		double to_zero = sampled * (s->v[0] / result);
		if (to_zero < to_start)
			to_start = to_zero;
	}
	if (to_start >= threshold)
		to_start = avg / 2;
	extrap += to_start;
	if (to_end >= threshold)
		to_end = avg / 2;
	extrap += to_end;
	factor = extrap / sampled;
	if (is_rate)
		factor /= (double)range / 1000;
	*out = result * factor;
	return true;
}

static int extrapolated_rate(struct eval_ctx *ec, const struct promql_expr *call,
                             struct value *args, struct value *out, bool is_counter, bool is_rate) {
	int64_t rstart, rend, range;
	size_t i;

	out->type = PROMQL_VECTOR;
	range_bounds(ec, call->args[0], &rstart, &rend, &range);
	for (i = 0; i < args[0].nm; i++) {
		double v;
		if (rate_value(&args[0].m[i], rstart, rend, range, is_counter, is_rate, true, &v))
			push_copy(&out->vec, &args[0].m[i].labels, v, true);
	}
	return 0;
}

/* The windows of one series through rate_value (func_windows). */
static void rate_windows(const struct promql_expr *call, const struct tsdb_series *s,
                         const struct fn_windows *w, double *out, bool *ok, bool is_counter,
                         bool is_rate) {
	int64_t range = unparen(call->args[0])->range_ms;
	bool may_drop = false;
	size_t k, j;

	/* counters mostly only rise: then no window has a reset to look for */
	for (j = 1; j < s->n && !may_drop; j++)
		may_drop = s->v[j] < s->v[j - 1];
	for (k = 0; k < w->n; k++) {
		struct tsdb_series view = {.t = s->t + w->lo[k], .v = s->v + w->lo[k],
		                           .n = w->hi[k] - w->lo[k]};
		ok[k] = rate_value(&view, w->rend[k] - range, w->rend[k], range, is_counter,
		                   is_rate, may_drop, &out[k]);
	}
}

static void w_rate(const struct promql_expr *c, const struct tsdb_series *s,
                   const struct fn_windows *w, double *out, bool *ok) {
	rate_windows(c, s, w, out, ok, true, true);
}
static void w_increase(const struct promql_expr *c, const struct tsdb_series *s,
                       const struct fn_windows *w, double *out, bool *ok) {
	rate_windows(c, s, w, out, ok, true, false);
}
static void w_delta(const struct promql_expr *c, const struct tsdb_series *s,
                    const struct fn_windows *w, double *out, bool *ok) {
	rate_windows(c, s, w, out, ok, false, false);
}

static int f_rate(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                  struct value *o) {
	return extrapolated_rate(ec, c, a, o, true, true);
}
static int f_increase(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                      struct value *o) {
	return extrapolated_rate(ec, c, a, o, true, false);
}
static int f_delta(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                   struct value *o) {
	return extrapolated_rate(ec, c, a, o, false, false);
}

static int instant_delta(struct value *args, struct value *out, bool is_rate) {
	size_t i;

	out->type = PROMQL_VECTOR;
	for (i = 0; i < args[0].nm; i++) {
		const struct tsdb_series *s = &args[0].m[i];
		double last, prev, r;
		int64_t dt;
		if (s->n < 2)
			continue;
		last = s->v[s->n - 1];
		prev = s->v[s->n - 2];
		r = last - prev;
		if (is_rate && last < prev)
			r = last;
		dt = s->t[s->n - 1] - s->t[s->n - 2];
		if (dt == 0)
			continue;
		if (is_rate)
			r /= (double)dt / 1000;
		push_copy(&out->vec, &s->labels, r, true);
	}
	return 0;
}

static int f_irate(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                   struct value *o) {
	return instant_delta(a, o, true);
}
static int f_idelta(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                    struct value *o) {
	return instant_delta(a, o, false);
}

static void linear_regression(const struct tsdb_series *s, int64_t icept_t, double *slope,
                              double *icept) {
	double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
	double init = s->v[0], cov, var;
	bool consty = true;
	size_t i;

	for (i = 0; i < s->n; i++) {
		double x = (double)(s->t[i] - icept_t) / 1e3;
		if (consty && i > 0 && s->v[i] != init)
			consty = false;
		n += 1;
		promql_kahan_inc(x, &sx, &cx);
		promql_kahan_inc(s->v[i], &sy, &cy);
		promql_kahan_inc(x * s->v[i], &sxy, &cxy);
		promql_kahan_inc(x * x, &sx2, &cx2);
	}
	if (consty) {
		if (isinf(init)) {
			*slope = NAN;
			*icept = NAN;
			return;
		}
		*slope = 0;
		*icept = init;
		return;
	}
	sx += cx;
	sy += cy;
	sxy += cxy;
	sx2 += cx2;
	cov = sxy - sx * sy / n;
	var = sx2 - sx * sx / n;
	*slope = cov / var;
	*icept = sy / n - *slope * sx / n;
}

static int f_deriv(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                   struct value *o) {
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < a[0].nm; i++) {
		double slope, icept;
		if (a[0].m[i].n < 2)
			continue;
		linear_regression(&a[0].m[i], a[0].m[i].t[0], &slope, &icept);
		push_copy(&o->vec, &a[0].m[i].labels, slope, true);
	}
	return 0;
}

static int f_predict_linear(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                            struct value *o) {
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < a[0].nm; i++) {
		double slope, icept;
		if (a[0].m[i].n < 2)
			continue;
		linear_regression(&a[0].m[i], ec->t, &slope, &icept);
		push_copy(&o->vec, &a[0].m[i].labels, slope * a[1].scalar + icept, true);
	}
	return 0;
}

enum over {
	O_AVG,
	O_MIN,
	O_MAX,
	O_SUM,
	O_COUNT,
	O_STDDEV,
	O_STDVAR,
	O_LAST,
	O_FIRST,
	O_PRESENT,
	O_RESETS,
	O_CHANGES,
	O_QUANTILE,
	O_MAD
};

/* avg_over_time as Prometheus 2.42 computes it: a Kahan-compensated incremental mean from the
 * first sample on (3.x sums directly first and only falls back to this on overflow, which
 * gives a different answer for e.g. 1 1e100 1 -1e100: promtool 2.42 says -2.4283361152821613e+83).
 * 2.42's kahanSumInc does not reset the compensation on overflow. */
struct avg_acc {
	double mean, c, count;
};

/* Two doubles: the two divisions of a step are one instruction (each lane is still one
 * IEEE division, so the values are the same); the divider is what limits w_avg_over_time. */
typedef double avg_pair __attribute__((vector_size(2 * sizeof(double))));

/* One sample into the mean: the body of 2.42's loop. */
static inline void avg_add(struct avg_acc *a, double f) {
	double inc, t;
	avg_pair q;

	a->count++;
	if (isinf(a->mean)) {
		if (isinf(f) && (a->mean > 0) == (f > 0))
			return;
		if (!isinf(f) && !isnan(f))
			return;
	}
	q = (avg_pair){f, a->mean} / (avg_pair){a->count, a->count};
	inc = q[0] - q[1];
	t = a->mean + inc;
	if (fabs(a->mean) >= fabs(inc))
		a->c += (a->mean - t) + inc;
	else
		a->c += (inc - t) + a->mean;
	a->mean = t;
}

static inline double avg_result(const struct avg_acc *a) {
	if (isinf(a->mean))
		return a->mean;
	return a->mean + a->c;
}

static double avg_over_time_242(const double *vals, size_t n) {
	struct avg_acc a = {0, 0, 0};
	size_t i;

	for (i = 0; i < n; i++)
		avg_add(&a, vals[i]);
	return avg_result(&a);
}

/* avg_over_time of many windows of one series. Each mean is a chain of dependent divisions,
 * so four windows advance together, a sample of each in turn: the chains overlap in the
 * CPU, and each window still sees exactly the operations avg_over_time_242 does. */
#define AVG_LANES 4
static void w_avg_over_time(const struct promql_expr *c, const struct tsdb_series *s,
                            const struct fn_windows *w, double *out, bool *ok) {
	size_t k, l, i;

	(void)c;
	for (k = 0; k < w->n; k += AVG_LANES) {
		struct avg_acc a[AVG_LANES] = {{0, 0, 0}};
		const double *v[AVG_LANES];
		size_t len[AVG_LANES], most = 0;
		for (l = 0; l < AVG_LANES; l++) {
			len[l] = k + l < w->n ? w->hi[k + l] - w->lo[k + l] : 0;
			v[l] = k + l < w->n ? s->v + w->lo[k + l] : s->v;
			most = len[l] > most ? len[l] : most;
		}
		for (i = 0; i < most; i++) {
			if (i < len[0])
				avg_add(&a[0], v[0][i]);
			if (i < len[1])
				avg_add(&a[1], v[1][i]);
			if (i < len[2])
				avg_add(&a[2], v[2][i]);
			if (i < len[3])
				avg_add(&a[3], v[3][i]);
		}
		for (l = 0; l < AVG_LANES && k + l < w->n; l++) {
			out[k + l] = avg_result(&a[l]);
			ok[k + l] = len[l] > 0;
		}
	}
}

static int over_time(struct value *m, struct value *o, enum over kind, double q) {
	size_t i, j;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < m->nm; i++) {
		struct tsdb_series *s = &m->m[i];
		double v = 0, c = 0;
		if (s->n == 0)
			continue;
		switch (kind) {
		case O_AVG:
			v = avg_over_time_242(s->v, s->n);
			break;
		case O_MIN:
		case O_MAX:
			v = s->v[0];
			for (j = 1; j < s->n; j++)
				if (isnan(v) || (kind == O_MIN ? s->v[j] < v : s->v[j] > v))
					v = s->v[j];
			break;
		case O_SUM:
			for (j = 0; j < s->n; j++)
				promql_kahan_inc(s->v[j], &v, &c);
			v += c;
			break;
		case O_COUNT:
			v = (double)s->n;
			break;
		case O_STDVAR:
			v = promql_stdvar(s->v, s->n);
			break;
		case O_STDDEV:
			v = sqrt(promql_stdvar(s->v, s->n));
			break;
		case O_LAST:
			v = s->v[s->n - 1];
			break;
		case O_FIRST:
			v = s->v[0];
			break;
		case O_PRESENT:
			v = 1;
			break;
		case O_RESETS:
			for (j = 1; j < s->n; j++)
				if (s->v[j] < s->v[j - 1])
					v++;
			break;
		case O_CHANGES:
			for (j = 1; j < s->n; j++)
				if (!(s->v[j] == s->v[j - 1] ||
				      (isnan(s->v[j]) && isnan(s->v[j - 1]))))
					v++;
			break;
		case O_QUANTILE:
		case O_MAD: {
			double *tmp = ward_xmalloc(s->n * sizeof(double));
			memcpy(tmp, s->v, s->n * sizeof(double));
			if (kind == O_MAD) {
				/* median absolute deviation from the median */
				double med = promql_quantile(0.5, tmp, s->n);
				for (j = 0; j < s->n; j++)
					tmp[j] = fabs(s->v[j] - med);
				q = 0.5;
			}
			v = promql_quantile(q, tmp, s->n);
			free(tmp);
			break;
		}
		}
		push_copy(&o->vec, &s->labels, v, kind != O_LAST && kind != O_FIRST);
	}
	return 0;
}

#define OVER(fname, kind)                                                                   \
	static int fname(struct eval_ctx *ec, const struct promql_expr *c, struct value *a, \
	                 struct value *o) {                                                 \
		return over_time(&a[0], o, kind, 0);                                        \
	}
OVER(f_avg_over_time, O_AVG)
OVER(f_min_over_time, O_MIN)
OVER(f_max_over_time, O_MAX)
OVER(f_sum_over_time, O_SUM)
OVER(f_count_over_time, O_COUNT)
OVER(f_stddev_over_time, O_STDDEV)
OVER(f_stdvar_over_time, O_STDVAR)
OVER(f_last_over_time, O_LAST)
OVER(f_first_over_time, O_FIRST)
OVER(f_mad_over_time, O_MAD)
OVER(f_present_over_time, O_PRESENT)
OVER(f_resets, O_RESETS)
OVER(f_changes, O_CHANGES)

static int f_quantile_over_time(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                                struct value *o) {
	return over_time(&a[1], o, O_QUANTILE, a[0].scalar);
}

/* holt_winters (Prometheus 2) / double_exponential_smoothing (Prometheus 3). */
static int f_holt_winters(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                          struct value *o) {
	double sf = a[1].scalar, tf = a[2].scalar;
	size_t i, j;

	o->type = PROMQL_VECTOR;
	if (!(sf > 0 && sf < 1))
		return promql_fail(ec, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f",
		                   sf);
	if (!(tf > 0 && tf < 1))
		return promql_fail(ec, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
	for (i = 0; i < a[0].nm; i++) {
		const struct tsdb_series *s = &a[0].m[i];
		double s0 = 0, s1, b;
		if (s->n < 2)
			continue;
		s1 = s->v[0];
		b = s->v[1] - s->v[0];
		for (j = 1; j < s->n; j++) {
			double x = sf * s->v[j], y;
			if (j > 1)
				b = tf * (s1 - s0) + (1 - tf) * b;
			y = (1 - sf) * (s1 + b);
			s0 = s1;
			s1 = x + y;
		}
		push_copy(&o->vec, &s->labels, s1, true);
	}
	return 0;
}

/* Labels of absent(): the equality matchers, a label given twice dropped. */
static void absent_labels(const struct promql_expr *arg, struct labels *out) {
	const struct promql_expr *e = unparen(arg);
	size_t i, j;

	labels_init(out);
	if (e->kind == N_MSEL)
		e = e->expr;
	if (e->kind != N_VSEL)
		return;
	for (i = 0; i < e->nms; i++) {
		const struct matcher *m = &e->ms[i];
		bool seen = false;
		if (strcmp(m->name, "__name__") == 0)
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(e->ms[j].name, m->name) == 0)
				seen = true;
		if (m->op == MATCH_EQ && !seen)
			labels_set(out, m->name, m->value);
		else
			labels_del(out, m->name);
	}
}

static int f_absent(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                    struct value *o) {
	struct labels ls;

	o->type = PROMQL_VECTOR;
	if ((a[0].type == PROMQL_VECTOR && a[0].vec.n > 0) ||
	    (a[0].type == PROMQL_MATRIX && a[0].nm > 0))
		return 0;
	absent_labels(c->args[0], &ls);
	promql_vec_push(&o->vec, &ls, 1);
	return 0;
}

/* ---- element-wise math ---- */
typedef double (*math_fn)(double);
static double m_sgn(double v) {
	return v < 0 ? -1 : v > 0 ? 1 : v;
}
static double m_deg(double v) {
	return v * 180 / M_PI;
}
static double m_rad(double v) {
	return v * M_PI / 180;
}

static int map_vec(struct value *in, struct value *o, math_fn fn) {
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < in->vec.n; i++) {
		promql_labels_drop_name(&in->vec.s[i].ls);
		promql_vec_push(&o->vec, &in->vec.s[i].ls, fn(in->vec.s[i].v));
	}
	return 0;
}

#define MATHF(fname, fn)                                                                    \
	static int fname(struct eval_ctx *ec, const struct promql_expr *c, struct value *a, \
	                 struct value *o) {                                                 \
		return map_vec(&a[0], o, fn);                                               \
	}
MATHF(f_abs, fabs)
MATHF(f_ceil, ceil)
MATHF(f_floor, floor)
MATHF(f_exp, exp)
MATHF(f_ln, log)
MATHF(f_log2, log2)
MATHF(f_log10, log10)
MATHF(f_sqrt, sqrt)
MATHF(f_sgn, m_sgn)
MATHF(f_sin, sin)
MATHF(f_cos, cos)
MATHF(f_tan, tan)
MATHF(f_asin, asin)
MATHF(f_acos, acos)
MATHF(f_atan, atan)
MATHF(f_sinh, sinh)
MATHF(f_cosh, cosh)
MATHF(f_tanh, tanh)
MATHF(f_asinh, asinh)
MATHF(f_acosh, acosh)
MATHF(f_atanh, atanh)
MATHF(f_deg, m_deg)
MATHF(f_rad, m_rad)

static int f_round(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                   struct value *o) {
	double to = c->nargs > 1 ? a[1].scalar : 1, inv = 1.0 / to;
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < a[0].vec.n; i++) {
		promql_labels_drop_name(&a[0].vec.s[i].ls);
		promql_vec_push(&o->vec, &a[0].vec.s[i].ls,
		                floor(a[0].vec.s[i].v * inv + 0.5) / inv);
	}
	return 0;
}

static int clamp_impl(struct value *in, struct value *o, double lo, double hi) {
	size_t i;

	o->type = PROMQL_VECTOR;
	if (hi < lo)
		return 0;
	for (i = 0; i < in->vec.n; i++) {
		promql_labels_drop_name(&in->vec.s[i].ls);
		promql_vec_push(&o->vec, &in->vec.s[i].ls, go_max(lo, go_min(hi, in->vec.s[i].v)));
	}
	return 0;
}

static int f_clamp(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                   struct value *o) {
	return clamp_impl(&a[0], o, a[1].scalar, a[2].scalar);
}

static int f_clamp_min(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                       struct value *o) {
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < a[0].vec.n; i++) {
		promql_labels_drop_name(&a[0].vec.s[i].ls);
		promql_vec_push(&o->vec, &a[0].vec.s[i].ls, go_max(a[1].scalar, a[0].vec.s[i].v));
	}
	return 0;
}

static int f_clamp_max(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                       struct value *o) {
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < a[0].vec.n; i++) {
		promql_labels_drop_name(&a[0].vec.s[i].ls);
		promql_vec_push(&o->vec, &a[0].vec.s[i].ls, go_min(a[1].scalar, a[0].vec.s[i].v));
	}
	return 0;
}

static int f_time(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                  struct value *o) {
	o->type = PROMQL_SCALAR;
	o->scalar = (double)ec->t / 1000;
	return 0;
}

static int f_pi(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                struct value *o) {
	o->type = PROMQL_SCALAR;
	o->scalar = M_PI;
	return 0;
}

static int f_timestamp(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                       struct value *o) {
	size_t i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < a[0].vec.n; i++) {
		int64_t t = a[0].vec.s[i].t == INT64_MIN ? ec->t : a[0].vec.s[i].t;
		promql_labels_drop_name(&a[0].vec.s[i].ls);
		promql_vec_push(&o->vec, &a[0].vec.s[i].ls, (double)t / 1000);
	}
	return 0;
}

static int f_vector(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                    struct value *o) {
	struct labels none = {0};

	o->type = PROMQL_VECTOR;
	promql_vec_push(&o->vec, &none, a[0].scalar);
	return 0;
}

static int f_scalar(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                    struct value *o) {
	o->type = PROMQL_SCALAR;
	o->scalar = a[0].vec.n == 1 ? a[0].vec.s[0].v : NAN;
	return 0;
}

/* sort: ascending, sort_desc: descending; NaN last in both, as Prometheus. */
/* qsort_r comparator; arg points to the direction (1 ascending, -1 descending). */
static int cmp_sort(const void *x, const void *y, void *arg) {
	int sort_dir = *(const int *)arg;
	const struct sample *a = x, *b = y;

	if (isnan(a->v) || isnan(b->v)) {
		if (isnan(a->v) && isnan(b->v))
			return labels_cmp(&a->ls, &b->ls);
		return isnan(a->v) ? 1 : -1;
	}
	if (a->v != b->v)
		return (a->v < b->v ? -1 : 1) * sort_dir;
	return labels_cmp(&a->ls, &b->ls);
}

static int do_sort(struct value *a, struct value *o, int dir) {
	o->type = PROMQL_VECTOR;
	o->vec = a[0].vec;
	memset(&a[0].vec, 0, sizeof(a[0].vec));
	/* a sorted vector is a computed one: timestamp() of it is the evaluation time */
	for (size_t i = 0; i < o->vec.n; i++)
		o->vec.s[i].t = INT64_MIN;
	if (o->vec.n > 1)
		qsort_r(o->vec.s, o->vec.n, sizeof(o->vec.s[0]), cmp_sort, &dir);
	return 0;
}
static int f_sort(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                  struct value *o) {
	return do_sort(a, o, 1);
}
static int f_sort_desc(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                       struct value *o) {
	return do_sort(a, o, -1);
}

/* ---- histogram_quantile ---- */
struct bucket {
	double le, count;
};

static int cmp_bucket(const void *x, const void *y) {
	const struct bucket *a = x, *b = y;

	return a->le < b->le ? -1 : a->le > b->le ? 1 : 0;
}

static bool almost_equal(double a, double b, double eps) {
	double min_normal = 2.2250738585072014e-308, sum, diff;

	if (a == b)
		return true;
	sum = fabs(a) + fabs(b);
	diff = fabs(a - b);
	if (a == 0 || b == 0 || sum < min_normal)
		return diff < eps * min_normal;
	return diff / fmin(sum, 1.7976931348623157e308) < eps;
}

double promql_bucket_quantile(double q, struct bucket *b, size_t n);
double promql_bucket_quantile(double q, struct bucket *b, size_t n) {
	size_t i, w, k;
	double prev, obs, rank, start = 0, end, count;

	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(b, n, sizeof(b[0]), cmp_bucket);
	if (n == 0 || !(isinf(b[n - 1].le) && b[n - 1].le > 0))
		return NAN;
	/* coalesce buckets with the same bound */
	for (i = 1, w = 0; i < n; i++) {
		if (b[i].le == b[w].le)
			b[w].count += b[i].count;
		else
			b[++w] = b[i];
	}
	n = w + 1;
	/* monotonicity: tiny float noise is evened out, decreases are forced up */
	prev = b[0].count;
	for (i = 1; i < n; i++) {
		double cur = b[i].count;
		if (cur == prev)
			continue;
		if (almost_equal(prev, cur, 1e-12)) {
			b[i].count = prev;
			continue;
		}
		if (cur < prev) {
			b[i].count = prev;
			continue;
		}
		prev = cur;
	}
	if (n < 2)
		return NAN;
	obs = b[n - 1].count;
	if (obs == 0)
		return NAN;
	rank = q * obs;
	for (k = 0; k < n - 1; k++)
		if (b[k].count >= rank)
			break;
	if (k == n - 1)
		return b[n - 2].le;
	if (k == 0 && b[0].le <= 0)
		return b[0].le;
	end = b[k].le;
	count = b[k].count;
	if (k > 0) {
		start = b[k - 1].le;
		count -= b[k - 1].count;
		rank -= b[k - 1].count;
	}
	return start + (end - start) * (rank / count);
}

static int f_histogram_quantile(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                                struct value *o) {
	struct vec *in = &a[1].vec;
	struct strmap idx = {0};
	struct buf key = BUF_INIT;
	char *le_name = (char *)"le";
	struct hgroup {
		struct labels ls;
		struct bucket *b;
		size_t n;
	} *g = NULL;
	size_t ng = 0, i;

	o->type = PROMQL_VECTOR;
	for (i = 0; i < in->n; i++) {
		const char *le = labels_get(&in->s[i].ls, "le");
		char *end;
		double bound;
		size_t k;
		if (!le)
			continue;
		bound = strtod(le, &end);
		if (end == le || *end)
			continue;
		promql_sig(&in->s[i].ls, &le_name, 1, false, &key);
		k = strmap_get(&idx, key.data, key.len);
		if (k == SIZE_MAX) {
			g = ward_xrealloc(g, (ng + 1) * sizeof(g[0]));
			memset(&g[ng], 0, sizeof(g[ng]));
			labels_copy(&g[ng].ls, &in->s[i].ls);
			labels_del(&g[ng].ls, "le");
			promql_labels_drop_name(&g[ng].ls);
			k = ng++;
			strmap_put(&idx, key.data, key.len, k);
		}
		g[k].b = ward_xrealloc(g[k].b, (g[k].n + 1) * sizeof(struct bucket));
		g[k].b[g[k].n].le = bound;
		g[k].b[g[k].n].count = in->s[i].v;
		g[k].n++;
	}
	for (i = 0; i < ng; i++) {
		double v = promql_bucket_quantile(a[0].scalar, g[i].b, g[i].n);
		promql_vec_push(&o->vec, &g[i].ls, v);
		free(g[i].b);
	}
	free(g);
	strmap_free(&idx);
	buf_free(&key);
	return 0;
}

/* ---- labels ---- */

/* Go's Regexp.Expand of template for one match. */
static void expand_template(struct buf *out, const char *tmpl, const char *subject, PCRE2_SIZE *ov,
                            uint32_t ngroups, pcre2_code *re) {
	const char *p = tmpl;

	while (*p) {
		const char *name;
		size_t nlen;
		bool brace = false, all_digits = true;
		long num = -1;
		if (*p != '$') {
			buf_putc(out, *p++);
			continue;
		}
		p++;
		if (*p == '$') {
			buf_putc(out, '$');
			p++;
			continue;
		}
		if (*p == '{') {
			brace = true;
			p++;
		}
		name = p;
		while (*p && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		              (*p >= '0' && *p <= '9') || *p == '_'))
			p++;
		nlen = (size_t)(p - name);
		if (nlen == 0 || (brace && *p != '}')) {
			buf_putc(out, '$');
			p = name - (brace ? 1 : 0);
			continue;
		}
		if (brace)
			p++;
		{
			size_t i;
			for (i = 0; i < nlen; i++)
				if (name[i] < '0' || name[i] > '9')
					all_digits = false;
		}
		if (all_digits) {
			if (nlen > 8)
				continue;
			num = strtol(name, NULL, 10);
		} else {
			char nm[256];
			int n;
			if (nlen >= sizeof(nm))
				continue;
			memcpy(nm, name, nlen);
			nm[nlen] = 0;
			n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)nm);
			if (n < 0)
				continue;
			num = n;
		}
		if (num >= 0 && (uint32_t)num < ngroups && ov[2 * num] != PCRE2_UNSET)
			buf_append(out, subject + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
	}
}

static int f_label_replace(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                           struct value *o) {
	const char *dst = a[1].str, *repl = a[2].str, *src = a[3].str, *regex = a[4].str;
	struct buf pat = BUF_INIT, val = BUF_INIT;
	pcre2_code *re;
	pcre2_match_data *md;
	int errcode;
	PCRE2_SIZE erroff;
	size_t i;

	o->type = PROMQL_VECTOR;
	buf_printf(&pat, "^(?:%s)$", regex);
	re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len,
	                   PCRE2_DOLLAR_ENDONLY | PCRE2_DOTALL | PCRE2_UTF, &errcode, &erroff,
	                   NULL);
	buf_free(&pat);
	if (!re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		return promql_fail(ec, "invalid regular expression in label_replace(): %s: %s",
		                   regex, (char *)msg);
	}
	if (!labels_valid_name(dst)) {
		pcre2_code_free(re);
		return promql_fail(ec, "invalid destination label name in label_replace(): %s",
		                   dst);
	}
	md = pcre2_match_data_create_from_pattern(re, NULL);
	for (i = 0; i < a[0].vec.n; i++) {
		struct sample *s = &a[0].vec.s[i];
		const char *sv = labels_get(&s->ls, src);
		int rc;
		if (!sv)
			sv = "";
		rc = pcre2_match(re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, md, NULL);
		if (rc > 0) {
			buf_reset(&val);
			expand_template(&val, repl, sv, pcre2_get_ovector_pointer(md),
			                pcre2_get_ovector_count(md), re);
			labels_set(&s->ls, dst, buf_cstr(&val));
		}
		promql_vec_push(&o->vec, &s->ls, s->v);
	}
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	buf_free(&val);
	return 0;
}

static int f_label_join(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                        struct value *o) {
	const char *dst = a[1].str, *sep = a[2].str;
	struct buf val = BUF_INIT;
	size_t i, j;

	o->type = PROMQL_VECTOR;
	if (!labels_valid_name(dst))
		return promql_fail(ec, "invalid destination label name in label_join(): %s", dst);
	for (i = 3; i < c->nargs; i++)
		if (!labels_valid_name(a[i].str))
			return promql_fail(ec, "invalid source label name in label_join(): %s",
			                   a[i].str);
	for (i = 0; i < a[0].vec.n; i++) {
		struct sample *s = &a[0].vec.s[i];
		buf_reset(&val);
		for (j = 3; j < c->nargs; j++) {
			const char *v = labels_get(&s->ls, a[j].str);
			if (j > 3)
				buf_puts(&val, sep);
			buf_puts(&val, v ? v : "");
		}
		labels_set(&s->ls, dst, buf_cstr(&val));
		promql_vec_push(&o->vec, &s->ls, s->v);
	}
	buf_free(&val);
	return 0;
}

/* ---- time of day ---- */
enum tpart { TP_DOW, TP_DOM, TP_DOY, TP_HOUR, TP_MIN, TP_MONTH, TP_YEAR, TP_DIM };

static double time_part(double v, enum tpart p) {
	time_t t;
	struct tm tm;
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (isnan(v) || isinf(v) || fabs(v) > 9e15)
		return NAN;
	t = (time_t)(int64_t)v;
	gmtime_r(&t, &tm);
	switch (p) {
	case TP_DOW:
		return tm.tm_wday;
	case TP_DOM:
		return tm.tm_mday;
	case TP_DOY:
		return tm.tm_yday + 1;
	case TP_HOUR:
		return tm.tm_hour;
	case TP_MIN:
		return tm.tm_min;
	case TP_MONTH:
		return tm.tm_mon + 1;
	case TP_YEAR:
		return tm.tm_year + 1900;
	case TP_DIM: {
		int y = tm.tm_year + 1900;
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		return tm.tm_mon == 1 && leap ? 29 : dim[tm.tm_mon];
	}
	}
	return NAN;
}

static int date_fn(struct eval_ctx *ec, const struct promql_expr *c, struct value *a,
                   struct value *o, enum tpart p) {
	size_t i;

	o->type = PROMQL_VECTOR;
	if (c->nargs == 0) {
		struct labels none = {0};
		promql_vec_push(&o->vec, &none, time_part((double)ec->t / 1000, p));
		return 0;
	}
	for (i = 0; i < a[0].vec.n; i++) {
		promql_labels_drop_name(&a[0].vec.s[i].ls);
		promql_vec_push(&o->vec, &a[0].vec.s[i].ls, time_part(a[0].vec.s[i].v, p));
	}
	return 0;
}

#define DATEF(fname, part)                                                                  \
	static int fname(struct eval_ctx *ec, const struct promql_expr *c, struct value *a, \
	                 struct value *o) {                                                 \
		return date_fn(ec, c, a, o, part);                                          \
	}
DATEF(f_day_of_week, TP_DOW)
DATEF(f_day_of_month, TP_DOM)
DATEF(f_day_of_year, TP_DOY)
DATEF(f_hour, TP_HOUR)
DATEF(f_minute, TP_MIN)
DATEF(f_month, TP_MONTH)
DATEF(f_year, TP_YEAR)
DATEF(f_days_in_month, TP_DIM)

/* ---- the table ---- */
#define S   PROMQL_SCALAR
#define V   PROMQL_VECTOR
#define M   PROMQL_MATRIX
#define STR PROMQL_STRING
static const struct func_def funcs[] = {
        {"abs", {V}, 1, 0, V, f_abs},
        {"absent", {V}, 1, 0, V, f_absent},
        {"absent_over_time", {M}, 1, 0, V, f_absent},
        {"acos", {V}, 1, 0, V, f_acos},
        {"acosh", {V}, 1, 0, V, f_acosh},
        {"asin", {V}, 1, 0, V, f_asin},
        {"asinh", {V}, 1, 0, V, f_asinh},
        {"atan", {V}, 1, 0, V, f_atan},
        {"atanh", {V}, 1, 0, V, f_atanh},
        {"avg_over_time", {M}, 1, 0, V, f_avg_over_time, w_avg_over_time},
        {"ceil", {V}, 1, 0, V, f_ceil},
        {"changes", {M}, 1, 0, V, f_changes},
        {"clamp", {V, S, S}, 3, 0, V, f_clamp},
        {"clamp_max", {V, S}, 2, 0, V, f_clamp_max},
        {"clamp_min", {V, S}, 2, 0, V, f_clamp_min},
        {"cos", {V}, 1, 0, V, f_cos},
        {"cosh", {V}, 1, 0, V, f_cosh},
        {"count_over_time", {M}, 1, 0, V, f_count_over_time},
        {"day_of_month", {V}, 0, 1, V, f_day_of_month},
        {"day_of_week", {V}, 0, 1, V, f_day_of_week},
        {"day_of_year", {V}, 0, 1, V, f_day_of_year},
        {"days_in_month", {V}, 0, 1, V, f_days_in_month},
        {"deg", {V}, 1, 0, V, f_deg},
        {"delta", {M}, 1, 0, V, f_delta, w_delta},
        {"deriv", {M}, 1, 0, V, f_deriv},
        {"double_exponential_smoothing", {M, S, S}, 3, 0, V, f_holt_winters},
        {"exp", {V}, 1, 0, V, f_exp},
        {"first_over_time", {M}, 1, 0, V, f_first_over_time},
        {"floor", {V}, 1, 0, V, f_floor},
        {"histogram_quantile", {S, V}, 2, 0, V, f_histogram_quantile},
        {"holt_winters", {M, S, S}, 3, 0, V, f_holt_winters},
        {"hour", {V}, 0, 1, V, f_hour},
        {"idelta", {M}, 1, 0, V, f_idelta},
        {"increase", {M}, 1, 0, V, f_increase, w_increase},
        {"irate", {M}, 1, 0, V, f_irate},
        {"label_join", {V, STR, STR, STR}, 3, -1, V, f_label_join},
        {"label_replace", {V, STR, STR, STR, STR}, 5, 0, V, f_label_replace},
        {"last_over_time", {M}, 1, 0, V, f_last_over_time},
        {"ln", {V}, 1, 0, V, f_ln},
        {"log10", {V}, 1, 0, V, f_log10},
        {"log2", {V}, 1, 0, V, f_log2},
        {"mad_over_time", {M}, 1, 0, V, f_mad_over_time},
        {"max_over_time", {M}, 1, 0, V, f_max_over_time},
        {"min_over_time", {M}, 1, 0, V, f_min_over_time},
        {"minute", {V}, 0, 1, V, f_minute},
        {"month", {V}, 0, 1, V, f_month},
        {"pi", {0}, 0, 0, S, f_pi},
        {"predict_linear", {M, S}, 2, 0, V, f_predict_linear},
        {"present_over_time", {M}, 1, 0, V, f_present_over_time},
        {"quantile_over_time", {S, M}, 2, 0, V, f_quantile_over_time},
        {"rad", {V}, 1, 0, V, f_rad},
        {"rate", {M}, 1, 0, V, f_rate, w_rate},
        {"resets", {M}, 1, 0, V, f_resets},
        {"round", {V, S}, 1, 1, V, f_round},
        {"scalar", {V}, 1, 0, S, f_scalar},
        {"sgn", {V}, 1, 0, V, f_sgn},
        {"sin", {V}, 1, 0, V, f_sin},
        {"sinh", {V}, 1, 0, V, f_sinh},
        {"sort", {V}, 1, 0, V, f_sort},
        {"sort_desc", {V}, 1, 0, V, f_sort_desc},
        {"sqrt", {V}, 1, 0, V, f_sqrt},
        {"stddev_over_time", {M}, 1, 0, V, f_stddev_over_time},
        {"stdvar_over_time", {M}, 1, 0, V, f_stdvar_over_time},
        {"sum_over_time", {M}, 1, 0, V, f_sum_over_time},
        {"tan", {V}, 1, 0, V, f_tan},
        {"tanh", {V}, 1, 0, V, f_tanh},
        {"time", {0}, 0, 0, S, f_time},
        {"timestamp", {V}, 1, 0, V, f_timestamp},
        {"vector", {S}, 1, 0, V, f_vector},
        {"year", {V}, 0, 1, V, f_year},
};

const struct func_def *promql_func_lookup(const char *name, size_t n) {
	size_t i;

	for (i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
		if (strlen(funcs[i].name) == n && strncmp(funcs[i].name, name, n) == 0)
			return &funcs[i];
	return NULL;
}

enum promql_type promql_func_arg_type(const struct func_def *fn, size_t i) {
	size_t last = 0, k;

	for (k = 0; k < PROMQL_FUNC_MAXARGS && fn->args[k] != PROMQL_NONE; k++)
		last = k;
	return i < PROMQL_FUNC_MAXARGS && fn->args[i] != PROMQL_NONE ? fn->args[i] : fn->args[last];
}
