/* serieswise.c: a range query's operators evaluated series-wise: unary minus and the
 * arithmetic and comparison operators (bool or filtering) between number literals and
 * series-wise operands (selectors and range functions over them, eval.c), for all steps at
 * once instead of once per step.
 *
 * Two vectors are matched once per query by their series' signatures (on/ignoring), and each
 * matched pair of series combines its points where both have one. That is what every step
 * would do when the match groups cannot make a step fail or merge, so any case that could is
 * declined (return 0) and the step-by-step path evaluates the query, its errors included: two
 * series of one match group on the "one" side, two "many" series of one one-to-one group,
 * two results with the same labels. Set operators and non-literal scalars are declined too.
 * Values come from binop.c's operator code point by point, so they are the same; series keep
 * the order the step path's vectors have (the "many" side's), so an aggregation over them
 * adds in the same order. Called from eval.c for a whole range query or a sub-expression of
 * one (the precomputed node).
 */
#include "promql/promql_internal.h"

#include <stdlib.h>
#include <string.h>

/* how many series between checks of the deadline */
#define LIMIT_CHECK_EVERY 64

static const struct promql_expr *unparen(const struct promql_expr *e) {
	while (e && e->kind == N_PAREN)
		e = e->expr;
	return e;
}

static bool is_set_op(enum tok op) {
	return op == T_AND || op == T_OR || op == T_UNLESS;
}

bool promql_rv_shape(const struct promql_expr *e) {
	e = unparen(e);
	if (!e)
		return false;
	switch (e->kind) {
	case N_NUM:
		return true;
	case N_NEG:
		return promql_rv_shape(e->expr);
	case N_BIN:
		return !is_set_op(e->op) && promql_rv_shape(e->lhs) && promql_rv_shape(e->rhs);
	default:
		return promql_rv_leaf_shape(e);
	}
}

/* Drops the series of v whose points were all filtered out, keeping the order of the rest. */
static void drop_empty(struct rv *v) {
	size_t i, k = 0;

	for (i = 0; i < v->n; i++) {
		if (v->s[i].n == 0) {
			labels_free(&v->s[i].labels);
			free(v->s[i].t);
			free(v->s[i].v);
			continue;
		}
		v->s[k++] = v->s[i];
	}
	v->n = k;
}

/* -v: as promql_eval's N_NEG, each point. */
static int rv_eval(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                   struct rv *out);

static int rv_neg(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                  struct rv *out) {
	size_t i, j;
	int rc = rv_eval(ec, e->expr, rs, out);

	if (rc <= 0)
		return rc;
	if (out->is_scalar) {
		out->scalar = -out->scalar;
		return 1;
	}
	for (i = 0; i < out->n; i++) {
		promql_labels_drop_name(&out->s[i].labels);
		for (j = 0; j < out->s[i].n; j++)
			out->s[i].v[j] = -out->s[i].v[j];
	}
	if (promql_series_has_dup(out->s, out->n)) {
		promql_rv_free(out);
		return 0;
	}
	return 1;
}

/* A vector (moved into out) and the scalar s, as binop.c's vector_scalar, each point. */
static int rv_vector_scalar(const struct promql_expr *e, struct rv *vec, double s, bool swap,
                            struct rv *out) {
	bool drop = promql_binop_drops_name(e->op) || e->return_bool;
	size_t i, j;

	*out = *vec;
	memset(vec, 0, sizeof(*vec));
	for (i = 0; i < out->n; i++) {
		struct tsdb_series *d = &out->s[i];
		size_t k = 0;
		for (j = 0; j < d->n; j++) {
			bool keep;
			double v = promql_binop_vs_point(e, d->v[j], s, swap, &keep);
			if (!keep)
				continue;
			d->t[k] = d->t[j];
			d->v[k] = v;
			k++;
		}
		d->n = k;
		if (k > 0 && drop)
			promql_labels_drop_name(&d->labels);
	}
	drop_empty(out);
	if (promql_series_has_dup(out->s, out->n)) {
		promql_rv_free(out);
		return 0;
	}
	return 1;
}

/* Two vectors, as binop.c's vector_vector at each step: the "one" side's series indexed by
 * signature once, each "many" series paired with its match for all steps. */
static int rv_vector_vector(struct eval_ctx *ec, const struct promql_expr *e, struct rv *lv,
                            struct rv *rv, struct rv *out) {
	struct rv *many = lv, *one = rv;
	struct strmap one_idx = {0}, seen = {0};
	struct buf b = BUF_INIT;
	size_t i;
	int rc = 1;

	memset(out, 0, sizeof(*out));
	if (e->card == CARD_ONE_TO_MANY) {
		many = rv;
		one = lv;
	}
	for (i = 0; i < one->n; i++) {
		promql_sig(&one->s[i].labels, e->mlabels, e->nmlabels, e->matching_on, &b);
		if (strmap_get(&one_idx, b.data, b.len) != SIZE_MAX) {
			rc = 0; /* a step where both have a point fails: let the step path say so */
			goto out;
		}
		strmap_put(&one_idx, b.data, b.len, i);
	}
	out->s = ward_xcalloc(many->n ? many->n : 1, sizeof(out->s[0]));
	for (i = 0; i < many->n; i++) {
		const struct tsdb_series *ms = &many->s[i], *os;
		struct tsdb_series *d;
		struct labels ml;
		size_t j, a = 0, c = 0, k = 0, cap;
		if (i % LIMIT_CHECK_EVERY == 0 && promql_check_limits(ec) < 0) {
			rc = -1;
			goto out;
		}
		promql_sig(&ms->labels, e->mlabels, e->nmlabels, e->matching_on, &b);
		j = strmap_get(&one_idx, b.data, b.len);
		if (j == SIZE_MAX)
			continue;
		if (e->card == CARD_ONE_TO_ONE) {
			if (strmap_get(&seen, b.data, b.len) != SIZE_MAX) {
				rc = 0; /* "multiple matches for labels" wherever both have points */
				goto out;
			}
			strmap_put(&seen, b.data, b.len, i);
		}
		os = &one->s[j];
		cap = ms->n < os->n ? ms->n : os->n;
		if (cap == 0)
			continue;
		d = &out->s[out->n];
		d->t = ward_xmalloc(cap * sizeof(d->t[0]));
		d->v = ward_xmalloc(cap * sizeof(d->v[0]));
		while (a < ms->n && c < os->n) {
			double vl, vr, v;
			bool keep;
			if (ms->t[a] != os->t[c]) {
				if (ms->t[a] < os->t[c])
					a++;
				else
					c++;
				continue;
			}
			vl = ms->v[a];
			vr = os->v[c];
			if (e->card == CARD_ONE_TO_MANY) {
				double t = vl;
				vl = vr;
				vr = t;
			}
			v = promql_binop_apply(e->op, vl, vr, &keep);
			if (e->return_bool)
				v = keep ? 1 : 0;
			if (e->return_bool || keep) {
				d->t[k] = ms->t[a];
				d->v[k] = v;
				k++;
			}
			a++;
			c++;
		}
		if (k == 0) {
			free(d->t);
			free(d->v);
			memset(d, 0, sizeof(*d));
			continue;
		}
		d->n = k;
		labels_init(&ml);
		labels_copy(&ml, &ms->labels);
		promql_binop_result_metric(e, &ml, &os->labels, &d->labels);
		out->n++;
	}
	if (promql_series_has_dup(out->s, out->n))
		rc = 0; /* equal label sets: a step with both fails, or the step path merges */
out:
	strmap_free(&one_idx);
	strmap_free(&seen);
	buf_free(&b);
	if (rc <= 0)
		promql_rv_free(out);
	return rc;
}

static int rv_binop(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                    struct rv *out) {
	struct rv l, r;
	int rc;

	memset(&r, 0, sizeof(r));
	if (is_set_op(e->op))
		return 0;
	rc = rv_eval(ec, e->lhs, rs, &l);
	if (rc > 0)
		rc = rv_eval(ec, e->rhs, rs, &r);
	if (rc <= 0)
		goto out;
	if (l.is_scalar && r.is_scalar) {
		bool keep;
		double v = promql_binop_apply(e->op, l.scalar, r.scalar, &keep);
		out->is_scalar = true;
		out->scalar = promql_binop_is_comparison(e->op) ? (keep ? 1 : 0) : v;
	} else if (r.is_scalar) {
		rc = rv_vector_scalar(e, &l, r.scalar, false, out);
	} else if (l.is_scalar) {
		rc = rv_vector_scalar(e, &r, l.scalar, true, out);
	} else {
		rc = rv_vector_vector(ec, e, &l, &r, out);
	}
out:
	promql_rv_free(&l);
	promql_rv_free(&r);
	return rc;
}

/* promql_rv_eval below a node whose shape was checked. */
static int rv_eval(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                   struct rv *out) {
	memset(out, 0, sizeof(*out));
	e = unparen(e);
	switch (e->kind) {
	case N_NUM:
		out->is_scalar = true;
		out->scalar = e->num;
		return 1;
	case N_NEG:
		return rv_neg(ec, e, rs, out);
	case N_BIN:
		return rv_binop(ec, e, rs, out);
	default:
		return promql_rv_leaf(ec, e, rs, out);
	}
}

int promql_rv_eval(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                   struct rv *out) {
	memset(out, 0, sizeof(*out));
	if (!promql_rv_shape(e)) /* once here: a check per level would be quadratic in depth */
		return 0;
	return rv_eval(ec, e, rs, out);
}
