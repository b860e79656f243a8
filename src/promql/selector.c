/* selector.c: promql_parse_selector, the match[] parameter of the series, labels and label
 * values APIs: one vector selector and nothing else, parsed by the same parser as queries
 * (so the metric name becomes a __name__ matcher and the "at least one non-empty matcher"
 * rule holds), its matchers copied out for the caller.
 */
#include <stdlib.h>

#include "promql/promql_internal.h"

int promql_parse_selector(const char *s, size_t n, struct matcher **out, size_t *nout,
			  struct ward_err *err)
{
	*out = NULL;
	*nout = 0;
	struct promql_expr *e = promql_parse(s, n, err);
	if (!e)
		return -1;
	const struct promql_expr *v = e;
	while (v->kind == N_PAREN && v->expr)
		v = v->expr;
	if (v->kind != N_VSEL || v->offset_ms != 0 || v->at != AT_NONE) {
		ward_err_set(err, "\"%.*s\" is not a series selector such as up{job=\"node\"}",
			     (int)(n > 200 ? 200 : n), s);
		promql_expr_free(e);
		return -1;
	}
	struct matcher *ms = ward_xcalloc(v->nms ? v->nms : 1, sizeof(*ms));
	for (size_t i = 0; i < v->nms; i++) {
		if (matcher_init(&ms[i], v->ms[i].op, v->ms[i].name, v->ms[i].value, err) != 0) {
			for (size_t j = 0; j < i; j++)
				matcher_free(&ms[j]);
			free(ms);
			promql_expr_free(e);
			return -1;
		}
	}
	*out = ms;
	*nout = v->nms;
	promql_expr_free(e);
	return 0;
}
