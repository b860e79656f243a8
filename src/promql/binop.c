/* binop.c: PromQL binary operators: arithmetic, comparison (filtering or bool) and the set
 * operators and/or/unless, between scalars and vectors, with on/ignoring vector matching
 * and group_left/group_right, as Prometheus' VectorBinop/VectorscalarBinop do.
 *
 * Arithmetic and bool comparisons drop __name__; filtering comparisons keep it. One-to-one
 * matching with on(...) keeps only the matching labels. Called by eval.c for N_BIN nodes.
 */
#include "promql/promql_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_comparison(enum tok op) {
	return op >= T_EQLC && op <= T_GTR;
}

bool promql_binop_is_comparison(enum tok op) {
	return is_comparison(op);
}

/* Prometheus 2.42's shouldDropMetricName: + - * / % ^ drop __name__; atan2 keeps it (3.x
 * drops it too: promtool 2.42 answers node_cpu{...} for `node_cpu atan2 node_var`). */
static bool drops_name(enum tok op) {
	return op >= T_ADD && op < T_ATAN2;
}

bool promql_binop_drops_name(enum tok op) {
	return drops_name(op);
}

/* Go's math.Mod: the result has the sign of x. fmod does the same. */
double promql_binop_apply(enum tok op, double l, double r, bool *keep) {
	*keep = true;
	switch (op) {
	case T_ADD:
		return l + r;
	case T_SUB:
		return l - r;
	case T_MUL:
		return l * r;
	case T_DIV:
		return l / r;
	case T_POW:
		return pow(l, r);
	case T_MOD:
		return fmod(l, r);
	case T_ATAN2:
		return atan2(l, r);
	case T_EQLC:
		*keep = l == r;
		return l;
	case T_NEQ:
		*keep = l != r;
		return l;
	case T_GTR:
		*keep = l > r;
		return l;
	case T_LSS:
		*keep = l < r;
		return l;
	case T_GTE:
		*keep = l >= r;
		return l;
	case T_LTE:
		*keep = l <= r;
		return l;
	default:
		*keep = false;
		return NAN;
	}
}

static int scalar_scalar(const struct promql_expr *e, double l, double r, struct value *out) {
	bool keep;
	double v = promql_binop_apply(e->op, l, r, &keep);

	out->type = PROMQL_SCALAR;
	out->scalar = is_comparison(e->op) ? (keep ? 1 : 0) : v;
	return 0;
}

double promql_binop_vs_point(const struct promql_expr *e, double x, double s, bool swap,
                             bool *keep) {
	double l = swap ? s : x, r = swap ? x : s;
	double v = promql_binop_apply(e->op, l, r, keep);

	if (is_comparison(e->op))
		v = x; /* a filter keeps the vector's value, on either side */
	if (e->return_bool) {
		v = *keep ? 1 : 0;
		*keep = true;
	}
	return v;
}

static int vector_scalar(struct eval_ctx *ec, const struct promql_expr *e, struct value *vecv,
                         double s, bool swap, struct value *out) {
	size_t i;

	out->type = PROMQL_VECTOR;
	for (i = 0; i < vecv->vec.n; i++) {
		struct sample *x = &vecv->vec.s[i];
		bool keep;
		double v = promql_binop_vs_point(e, x->v, s, swap, &keep);
		if (!keep)
			continue;
		if (drops_name(e->op) || e->return_bool)
			promql_labels_drop_name(&x->ls);
		promql_vec_push(&out->vec, &x->ls, v);
	}
	if (promql_vec_has_dup_labels(&out->vec))
		return promql_fail(ec, "vector cannot contain metrics with the same labelset");
	return 0;
}

static void sig_of(const struct promql_expr *e, const struct labels *ls, struct buf *b) {
	promql_sig(ls, e->mlabels, e->nmlabels, e->matching_on, b);
}

static int set_op(const struct promql_expr *e, struct value *l, struct value *r,
                  struct value *out) {
	struct strmap rs = {0}, ls = {0};
	struct buf b = BUF_INIT;
	size_t i;

	out->type = PROMQL_VECTOR;
	for (i = 0; i < r->vec.n; i++) {
		sig_of(e, &r->vec.s[i].ls, &b);
		strmap_put(&rs, b.data, b.len, i);
	}
	for (i = 0; i < l->vec.n; i++) {
		bool in_r;
		sig_of(e, &l->vec.s[i].ls, &b);
		in_r = strmap_get(&rs, b.data, b.len) != SIZE_MAX;
		if (e->op == T_OR) {
			strmap_put(&ls, b.data, b.len, i);
			promql_vec_push(&out->vec, &l->vec.s[i].ls, l->vec.s[i].v);
		} else if ((e->op == T_AND) == in_r) {
			promql_vec_push(&out->vec, &l->vec.s[i].ls, l->vec.s[i].v);
		}
	}
	if (e->op == T_OR) {
		for (i = 0; i < r->vec.n; i++) {
			sig_of(e, &r->vec.s[i].ls, &b);
			if (strmap_get(&ls, b.data, b.len) == SIZE_MAX)
				promql_vec_push(&out->vec, &r->vec.s[i].ls, r->vec.s[i].v);
		}
	}
	strmap_free(&rs);
	strmap_free(&ls);
	buf_free(&b);
	return 0;
}

/* The output labels of a match: lhs (the "many" side's labels, moved: each of its series
 * makes at most one output) as the operator and matching clauses shape them. */
void promql_binop_result_metric(const struct promql_expr *e, struct labels *lhs,
                                const struct labels *rhs, struct labels *out) {
	size_t i, j;

	*out = *lhs;
	labels_init(lhs);
	if (drops_name(e->op) || e->return_bool)
		promql_labels_drop_name(out);
	if (e->card == CARD_ONE_TO_ONE) {
		if (e->matching_on) {
			for (i = 0; i < out->n;) {
				bool keep = false;
				for (j = 0; j < e->nmlabels; j++)
					if (strcmp(out->v[i].name, e->mlabels[j]) == 0)
						keep = true;
				if (keep)
					i++;
				else
					labels_del(out, out->v[i].name);
			}
		} else {
			for (j = 0; j < e->nmlabels; j++)
				labels_del(out, e->mlabels[j]);
		}
	}
	for (j = 0; j < e->ninclude; j++) {
		const char *v = labels_get(rhs, e->include[j]);
		if (v)
			labels_set(out, e->include[j], v);
		else
			labels_del(out, e->include[j]);
	}
}

static void match_group_str(const struct promql_expr *e, const struct labels *ls, struct buf *b) {
	struct labels g;
	size_t i;

	labels_init(&g);
	labels_copy(&g, ls);
	for (i = 0; i < g.n;) {
		bool listed = false;
		size_t j;
		for (j = 0; j < e->nmlabels; j++)
			if (strcmp(g.v[i].name, e->mlabels[j]) == 0)
				listed = true;
		if (e->matching_on ? listed : (!listed && strcmp(g.v[i].name, "__name__") != 0))
			i++;
		else
			labels_del(&g, g.v[i].name);
	}
	labels_write(b, &g);
	labels_free(&g);
}

static int vector_vector(struct eval_ctx *ec, const struct promql_expr *e, struct value *lv,
                         struct value *rv, struct value *out) {
	struct vec *many = &lv->vec, *one = &rv->vec;
	struct strmap one_idx = {0}, seen = {0};
	struct buf b = BUF_INIT, k2 = BUF_INIT;
	size_t i;
	int rc = 0;

	out->type = PROMQL_VECTOR;
	if (e->card == CARD_ONE_TO_MANY) {
		many = &rv->vec;
		one = &lv->vec;
	}
	for (i = 0; i < one->n; i++) {
		size_t prev;
		sig_of(e, &one->s[i].ls, &b);
		prev = strmap_get(&one_idx, b.data, b.len);
		if (prev != SIZE_MAX) {
			struct buf m = BUF_INIT, s1 = BUF_INIT, s2 = BUF_INIT;
			match_group_str(e, &one->s[i].ls, &m);
			labels_write(&s1, &one->s[prev].ls);
			labels_write(&s2, &one->s[i].ls);
			rc = promql_fail(
			        ec,
			        "found duplicate series for the match group %s on the %s "
			        "hand-side of the operation: [%s, %s];many-to-many matching "
			        "not allowed: matching labels must be unique on one side",
			        buf_cstr(&m), e->card == CARD_ONE_TO_MANY ? "left" : "right",
			        buf_cstr(&s1), buf_cstr(&s2));
			buf_free(&m);
			buf_free(&s1);
			buf_free(&s2);
			goto out;
		}
		strmap_put(&one_idx, b.data, b.len, i);
	}
	for (i = 0; i < many->n; i++) {
		size_t j;
		double vl, vr, v;
		bool keep;
		struct labels m;
		sig_of(e, &many->s[i].ls, &b);
		j = strmap_get(&one_idx, b.data, b.len);
		if (j == SIZE_MAX)
			continue;
		vl = many->s[i].v;
		vr = one->s[j].v;
		if (e->card == CARD_ONE_TO_MANY) {
			double t = vl;
			vl = vr;
			vr = t;
		}
		v = promql_binop_apply(e->op, vl, vr, &keep);
		if (e->return_bool) {
			v = keep ? 1 : 0;
		} else if (!keep) {
			continue;
		}
		promql_binop_result_metric(e, &many->s[i].ls, &one->s[j].ls, &m);
		if (e->card == CARD_ONE_TO_ONE) {
			if (strmap_get(&seen, b.data, b.len) != SIZE_MAX) {
				labels_free(&m);
				rc = promql_fail(
				        ec, "multiple matches for labels: many-to-one matching "
				            "must be explicit (group_left/group_right)");
				goto out;
			}
			strmap_put(&seen, b.data, b.len, i);
		} else {
			promql_labels_key(&m, &k2);
			if (strmap_get(&seen, k2.data, k2.len) != SIZE_MAX) {
				labels_free(&m);
				rc = promql_fail(
				        ec, "multiple matches for labels: grouping labels must "
				            "ensure unique matches");
				goto out;
			}
			strmap_put(&seen, k2.data, k2.len, i);
		}
		promql_vec_push(&out->vec, &m, v);
	}
out:
	strmap_free(&one_idx);
	strmap_free(&seen);
	buf_free(&b);
	buf_free(&k2);
	return rc;
}

int promql_eval_binop(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	struct value l, r;
	int rc;

	memset(&r, 0, sizeof(r));
	if (promql_eval(ec, e->lhs, &l) < 0) {
		promql_value_free(&l);
		return -1;
	}
	if (promql_eval(ec, e->rhs, &r) < 0) {
		rc = -1;
		goto out;
	}
	if (l.type == PROMQL_SCALAR && r.type == PROMQL_SCALAR)
		rc = scalar_scalar(e, l.scalar, r.scalar, out);
	else if (l.type == PROMQL_VECTOR && r.type == PROMQL_SCALAR)
		rc = vector_scalar(ec, e, &l, r.scalar, false, out);
	else if (l.type == PROMQL_SCALAR && r.type == PROMQL_VECTOR)
		rc = vector_scalar(ec, e, &r, l.scalar, true, out);
	else if (e->op == T_AND || e->op == T_OR || e->op == T_UNLESS)
		rc = set_op(e, &l, &r, out);
	else
		rc = vector_vector(ec, e, &l, &r, out);
	if (rc == 0 && out->type == PROMQL_VECTOR && e->op != T_AND && e->op != T_OR &&
	    e->op != T_UNLESS && promql_vec_has_dup_labels(&out->vec))
		rc = promql_fail(ec, "vector cannot contain metrics with the same labelset");
out:
	promql_value_free(&l);
	promql_value_free(&r);
	return rc;
}
