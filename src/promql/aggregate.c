/* aggregate.c: PromQL aggregation operators (sum avg min max count stddev stdvar topk
 * bottomk quantile count_values group) with by/without, as Prometheus' aggregation() does.
 *
 * Groups are keyed by the by-labels (or all labels but the without-labels and __name__);
 * the result labels are that subset. topk/bottomk keep the full input labels and order
 * their output by value. Sums use Kahan-Neumaier compensation like Prometheus.
 * Called by eval.c for N_AGG nodes; functions.c shares the quantile and Kahan helpers.
 */
#include "promql/promql_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const agg_names[AGG__N] = {
        "sum",    "avg",  "min",     "max",      "count",        "stddev",
        "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
};

int promql_agg_lookup(const char *name, size_t n) {
	int i;

	for (i = 0; i < AGG__N; i++)
		if (strlen(agg_names[i]) == n && strncasecmp(agg_names[i], name, n) == 0)
			return i;
	return -1;
}

const char *promql_agg_name(int agg) {
	return agg >= 0 && agg < AGG__N ? agg_names[agg] : "?";
}

bool promql_agg_has_param(int agg) {
	return agg == AGG_TOPK || agg == AGG_BOTTOMK || agg == AGG_QUANTILE ||
	       agg == AGG_COUNT_VALUES;
}

void promql_kahan_inc(double inc, double *sum, double *c) {
	double t = *sum + inc;

	if (isinf(t))
		*c = 0;
	else if (fabs(*sum) >= fabs(inc))
		*c += (*sum - t) + inc;
	else
		*c += (inc - t) + *sum;
	*sum = t;
}

static int cmp_double_nan_first(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;

	if (isnan(x))
		return isnan(y) ? 0 : -1;
	if (isnan(y))
		return 1;
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Prometheus' quantile(): linear interpolation between the closest ranks; sorts v. */
double promql_quantile(double q, double *v, size_t n) {
	double rank, lo, hi, w;

	if (n == 0 || isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	if (n > 1)
		qsort(v, n, sizeof(v[0]), cmp_double_nan_first);
	rank = q * (double)(n - 1);
	lo = fmax(0, floor(rank));
	hi = fmin((double)n - 1, lo + 1);
	w = rank - floor(rank);
	return v[(size_t)lo] * (1 - w) + v[(size_t)hi] * w;
}

/* Mean with Kahan summation, falling back to an incremental mean on overflow, as
 * Prometheus' avg and avg_over_time do. */
double promql_mean(const double *v, size_t n) {
	double sum = 0, c = 0, mean = 0, count = 0;
	bool incremental = false;
	size_t i;

	for (i = 0; i < n; i++) {
		double f = v[i];
		count++;
		if (!incremental) {
			double ns = sum, nc = c;
			promql_kahan_inc(f, &ns, &nc);
			if (count == 1 || !isinf(ns)) {
				sum = ns;
				c = nc;
				continue;
			}
			incremental = true;
			mean = sum / (count - 1);
			c /= count - 1;
		}
		if (isinf(mean)) {
			if (isinf(f) && (mean > 0) == (f > 0))
				continue;
			if (!isinf(f) && !isnan(f))
				continue;
		}
		{
			double corrected = mean + c;
			promql_kahan_inc(f / count - corrected / count, &mean, &c);
		}
	}
	if (incremental)
		return mean + c;
	return (sum + c) / count;
}

double promql_stdvar(const double *v, size_t n) {
	double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		double delta;
		count++;
		delta = v[i] - (mean + cmean);
		promql_kahan_inc(delta / count, &mean, &cmean);
		promql_kahan_inc(delta * (v[i] - (mean + cmean)), &aux, &caux);
	}
	return (aux + caux) / count;
}

struct group {
	struct labels ls;
	size_t *members; /* indexes into the input vector */
	size_t n, cap;
};

static void group_labels(const struct promql_expr *e, const struct labels *in, struct labels *out) {
	size_t i, j;

	labels_init(out);
	for (i = 0; i < in->n; i++) {
		bool listed = false;
		for (j = 0; j < e->ngrouping; j++)
			if (strcmp(in->v[i].name, e->grouping[j]) == 0)
				listed = true;
		if (e->without ? (listed || strcmp(in->v[i].name, "__name__") == 0) : !listed)
			continue;
		labels_set(out, in->v[i].name, in->v[i].value);
	}
}

/* The key promql_labels_key gives the group_labels of in, without building them. */
static void group_key(const struct promql_expr *e, const struct labels *in, struct buf *key) {
	size_t i, j;

	buf_reset(key);
	buf_putc(key, 0);
	for (i = 0; i < in->n; i++) {
		bool listed = false;
		for (j = 0; j < e->ngrouping; j++)
			if (strcmp(in->v[i].name, e->grouping[j]) == 0)
				listed = true;
		if (e->without ? (listed || strcmp(in->v[i].name, "__name__") == 0) : !listed)
			continue;
		if (!in->v[i].value || !*in->v[i].value) /* labels_set drops empty values */
			continue;
		buf_puts(key, in->v[i].name);
		buf_putc(key, '\xff');
		buf_puts(key, in->v[i].value);
		buf_putc(key, '\xff');
	}
}

/* topk/bottomk order: larger (topk) or smaller (bottomk) first, NaN always last. */
struct topk_order {
	int dir; /* -1: larger first (topk), 1: smaller first (bottomk) */
	const struct vec *vec;
};

/* qsort_r comparator: no shared state, so concurrent queries may sort at once. */
static int cmp_topk(const void *a, const void *b, void *arg) {
	const struct topk_order *o = arg;
	const struct sample *x = &o->vec->s[*(const size_t *)a];
	const struct sample *y = &o->vec->s[*(const size_t *)b];

	if (isnan(x->v) || isnan(y->v)) {
		if (isnan(x->v) && isnan(y->v))
			return labels_cmp(&x->ls, &y->ls);
		return isnan(x->v) ? 1 : -1;
	}
	if (x->v != y->v)
		return (x->v < y->v ? -1 : 1) * o->dir;
	return labels_cmp(&x->ls, &y->ls);
}

/* The aggregations that reduce a group's values (in input order) to one number. */
static bool agg_reduces(int agg) {
	return agg == AGG_SUM || agg == AGG_AVG || agg == AGG_MIN || agg == AGG_MAX ||
	       agg == AGG_COUNT || agg == AGG_GROUP || agg == AGG_STDVAR || agg == AGG_STDDEV;
}

static double reduce(int agg, const double *tmp, size_t n) {
	double v = 0, c = 0;
	size_t j;

	switch (agg) {
	case AGG_SUM:
		for (j = 0; j < n; j++)
			promql_kahan_inc(tmp[j], &v, &c);
		return v + c;
	case AGG_AVG:
		return promql_mean(tmp, n);
	case AGG_MIN:
	case AGG_MAX:
		v = tmp[0];
		for (j = 1; j < n; j++)
			if (isnan(v) || (agg == AGG_MIN ? tmp[j] < v : tmp[j] > v))
				v = tmp[j];
		return v;
	case AGG_COUNT:
		return (double)n;
	case AGG_GROUP:
		return 1;
	case AGG_STDVAR:
		return promql_stdvar(tmp, n);
	case AGG_STDDEV:
		return sqrt(promql_stdvar(tmp, n));
	default:
		return 0;
	}
}

/* ---- an aggregation over a range query's precomputed node ----
 * Each step of `sum by (x) (rate(m[5m]))` would group the same series the same way again
 * (a key built from labels, looked up in a map: most of the query's time). When the
 * argument is ec->pre_node, the series and so their groups are fixed for the whole query:
 * group each once, then each step only adds the series' points into their groups. The
 * values, their order within a group and the order of the groups in the output vector are
 * those of the step-by-step path (first appearance in the input), so results are equal. */
struct pre_scratch {
	size_t *cnt, *off, *order; /* per group */
	size_t *present;           /* pre series with a point at this step, in order */
	double *vals, *tmp;        /* per present series: its value; grouped copy */
};

void promql_pre_agg_free(struct eval_ctx *ec) {
	struct pre_scratch *sc = ec->pre_agg_scratch;

	for (size_t i = 0; i < ec->pre_agg_ng; i++)
		labels_free(&ec->pre_agg_ls[i]);
	free(ec->pre_agg_ls);
	free(ec->pre_agg_of);
	if (sc) {
		free(sc->cnt);
		free(sc->off);
		free(sc->order);
		free(sc->present);
		free(sc->vals);
		free(sc->tmp);
		free(sc);
	}
	ec->pre_agg = NULL;
	ec->pre_agg_ls = NULL;
	ec->pre_agg_of = NULL;
	ec->pre_agg_ng = 0;
	ec->pre_agg_scratch = NULL;
}

static void pre_agg_build(struct eval_ctx *ec, const struct promql_expr *e) {
	struct strmap idx = {0};
	struct buf key = BUF_INIT;
	size_t n = ec->npre ? ec->npre : 1;
	struct pre_scratch *sc;

	promql_pre_agg_free(ec);
	ec->pre_agg = e;
	ec->pre_agg_of = ward_xmalloc(n * sizeof(size_t));
	ec->pre_agg_ls = ward_xmalloc(n * sizeof(struct labels));
	for (size_t i = 0; i < ec->npre; i++) {
		group_key(e, &ec->pre[i].labels, &key);
		size_t k = strmap_get(&idx, key.data, key.len);
		if (k == SIZE_MAX) {
			k = ec->pre_agg_ng++;
			group_labels(e, &ec->pre[i].labels, &ec->pre_agg_ls[k]);
			strmap_put(&idx, key.data, key.len, k);
		}
		ec->pre_agg_of[i] = k;
	}
	strmap_free(&idx);
	buf_free(&key);
	sc = ward_xcalloc(1, sizeof(*sc));
	sc->cnt = ward_xcalloc(n, sizeof(size_t));
	sc->off = ward_xmalloc(n * sizeof(size_t));
	sc->order = ward_xmalloc(n * sizeof(size_t));
	sc->present = ward_xmalloc(n * sizeof(size_t));
	sc->vals = ward_xmalloc(n * sizeof(double));
	sc->tmp = ward_xmalloc(n * sizeof(double));
	ec->pre_agg_scratch = sc;
}

static int aggregate_pre(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	struct pre_scratch *sc;
	size_t np = 0, norder = 0, pos = 0;

	if (promql_check_limits(ec) < 0)
		return -1;
	if (ec->pre_agg != e)
		pre_agg_build(ec, e);
	sc = ec->pre_agg_scratch;
	for (size_t i = 0; i < ec->npre; i++) {
		double v;
		if (!promql_pre_point(ec, i, &v))
			continue;
		size_t g = ec->pre_agg_of[i];
		if (sc->cnt[g]++ == 0)
			sc->order[norder++] = g;
		sc->present[np] = i;
		sc->vals[np++] = v;
	}
	for (size_t k = 0; k < norder; k++) { /* each group's slice of tmp */
		size_t g = sc->order[k];
		sc->off[g] = pos;
		pos += sc->cnt[g];
	}
	for (size_t j = 0; j < np; j++)
		sc->tmp[sc->off[ec->pre_agg_of[sc->present[j]]]++] = sc->vals[j];
	for (size_t k = 0; k < norder; k++) {
		size_t g = sc->order[k], n = sc->cnt[g];
		struct labels ls;
		double v = reduce(e->agg, sc->tmp + sc->off[g] - n, n);
		labels_init(&ls);
		labels_copy(&ls, &ec->pre_agg_ls[g]);
		promql_vec_push(&out->vec, &ls, v);
		sc->cnt[g] = 0;
	}
	return 0;
}

int promql_eval_aggregate(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	struct value in, pv;
	struct group *g = NULL;
	size_t ng = 0, i, j;
	struct strmap idx = {0};
	struct buf key = BUF_INIT;
	double param = 0;
	const char *cv_label = NULL;
	double *tmp = NULL;
	bool borrowed = false;
	int rc = 0;

	memset(&pv, 0, sizeof(pv));
	memset(&in, 0, sizeof(in));
	out->type = PROMQL_VECTOR;
	if (!e->param && agg_reduces(e->agg) && ec->pre_node) {
		const struct promql_expr *arg = e->expr;
		while (arg && arg->kind == N_PAREN)
			arg = arg->expr;
		if (arg == ec->pre_node)
			return aggregate_pre(ec, e, out);
	}
	if (e->param) {
		if (promql_eval(ec, e->param, &pv) < 0) {
			promql_value_free(&pv);
			return -1;
		}
		if (pv.type == PROMQL_STRING)
			cv_label = pv.str;
		else
			param = pv.scalar;
	}
	if (promql_eval_borrow(ec, e->expr, &in, &borrowed) < 0) {
		rc = -1;
		goto out;
	}
	if (e->agg == AGG_COUNT_VALUES && !labels_valid_name(cv_label)) {
		rc = promql_fail(ec, "invalid label name \"%s\"", cv_label);
		goto out;
	}
	if ((e->agg == AGG_TOPK || e->agg == AGG_BOTTOMK) && isnan(param)) {
		rc = promql_fail(ec, "Parameter value is NaN");
		goto out;
	}
	/* group the input */
	for (i = 0; i < in.vec.n; i++) {
		struct labels gl;
		size_t k;
		labels_init(&gl);
		if (e->agg == AGG_COUNT_VALUES) {
			struct buf vb = BUF_INIT;
			group_labels(e, &in.vec.s[i].ls, &gl);
			promql_fmt_float(&vb, in.vec.s[i].v);
			labels_set(&gl, cv_label, buf_cstr(&vb));
			buf_free(&vb);
			promql_labels_key(&gl, &key);
		} else {
			group_key(e, &in.vec.s[i].ls, &key);
		}
		k = strmap_get(&idx, key.data, key.len);
		if (k == SIZE_MAX) {
			if (e->agg != AGG_COUNT_VALUES)
				group_labels(e, &in.vec.s[i].ls, &gl);
			if ((ng & (ng - 1)) == 0) /* grow at powers of two */
				g = ward_xrealloc(g, (ng ? ng * 2 : 1) * sizeof(g[0]));
			memset(&g[ng], 0, sizeof(g[ng]));
			g[ng].ls = gl;
			k = ng++;
			strmap_put(&idx, key.data, key.len, k);
		} else {
			labels_free(&gl);
		}
		if (g[k].n == g[k].cap) {
			g[k].cap = g[k].cap ? g[k].cap * 2 : 4;
			g[k].members = ward_xrealloc(g[k].members, g[k].cap * sizeof(size_t));
		}
		g[k].members[g[k].n++] = i;
	}
	tmp = ward_xmalloc((in.vec.n ? in.vec.n : 1) * sizeof(double));
	for (i = 0; i < ng; i++) {
		struct group *gr = &g[i];
		double v = 0;
		for (j = 0; j < gr->n; j++)
			tmp[j] = in.vec.s[gr->members[j]].v;
		switch (e->agg) {
		case AGG_COUNT_VALUES:
			v = (double)gr->n;
			break;
		case AGG_QUANTILE:
			v = promql_quantile(param, tmp, gr->n);
			break;
		case AGG_TOPK:
		case AGG_BOTTOMK: {
			double kf = param;
			struct topk_order ord = {e->agg == AGG_TOPK ? -1 : 1, &in.vec};
			size_t k;
			if (kf < 1)
				continue;
			k = kf >= (double)gr->n ? gr->n : (size_t)kf;
			qsort_r(gr->members, gr->n, sizeof(size_t), cmp_topk, &ord);
			for (j = 0; j < k; j++) {
				struct labels ls;
				labels_init(&ls);
				labels_copy(&ls, &in.vec.s[gr->members[j]].ls);
				promql_vec_push(&out->vec, &ls, in.vec.s[gr->members[j]].v);
			}
			continue;
		}
		default:
			v = reduce(e->agg, tmp, gr->n);
			break;
		}
		promql_vec_push(&out->vec, &gr->ls, v);
	}
out:
	for (i = 0; i < ng; i++) {
		labels_free(&g[i].ls);
		free(g[i].members);
	}
	free(g);
	free(tmp);
	strmap_free(&idx);
	buf_free(&key);
	if (borrowed)
		promql_vec_unborrow(&in.vec);
	promql_value_free(&in);
	promql_value_free(&pv);
	return rc;
}
