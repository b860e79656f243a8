/* ast.c: PromQL syntax tree nodes: allocation, freeing and the canonical string form
 * (what Prometheus' String() methods print: "sum by (job) (rate(x[5m]))").
 *
 * A node owns everything it points to. Callers: parse.c builds nodes, rule files and
 * error messages print them, the fuzz target round-trips them.
 */
#include "promql/promql_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct promql_expr *promql_node_new(enum node_kind k, size_t pos) {
	struct promql_expr *e = ward_xcalloc(1, sizeof(*e));

	e->kind = k;
	e->pos = pos;
	return e;
}

static void free_strs(char **v, size_t n) {
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void promql_expr_free(struct promql_expr *e) {
	size_t i;

	if (!e)
		return;
	free(e->str);
	for (i = 0; i < e->nms; i++)
		matcher_free(&e->ms[i]);
	free(e->ms);
	for (i = 0; i < e->nargs; i++)
		promql_expr_free(e->args[i]);
	free(e->args);
	free_strs(e->grouping, e->ngrouping);
	free_strs(e->mlabels, e->nmlabels);
	free_strs(e->include, e->ninclude);
	promql_expr_free(e->param);
	promql_expr_free(e->expr);
	promql_expr_free(e->lhs);
	promql_expr_free(e->rhs);
	free(e);
}

const char *promql_type_name(enum promql_type t) {
	switch (t) {
	case PROMQL_SCALAR:
		return "scalar";
	case PROMQL_VECTOR:
		return "vector";
	case PROMQL_MATRIX:
		return "matrix";
	case PROMQL_STRING:
		return "string";
	default:
		return "none";
	}
}

enum promql_type promql_expr_type(const struct promql_expr *e) {
	return e ? e->type : PROMQL_NONE;
}

const char *promql_binop_str(enum tok op) {
	switch (op) {
	case T_ADD:
		return "+";
	case T_SUB:
		return "-";
	case T_MUL:
		return "*";
	case T_DIV:
		return "/";
	case T_MOD:
		return "%";
	case T_POW:
		return "^";
	case T_ATAN2:
		return "atan2";
	case T_EQLC:
		return "==";
	case T_NEQ:
		return "!=";
	case T_LTE:
		return "<=";
	case T_LSS:
		return "<";
	case T_GTE:
		return ">=";
	case T_GTR:
		return ">";
	case T_AND:
		return "and";
	case T_OR:
		return "or";
	case T_UNLESS:
		return "unless";
	default:
		return "?";
	}
}

/* Go's strconv.Quote for the printable-ASCII and UTF-8 cases we produce. */
static void put_quoted(struct buf *out, const char *s) {
	const unsigned char *p = (const unsigned char *)s;

	buf_putc(out, '"');
	for (; *p; p++) {
		switch (*p) {
		case '"':
			buf_puts(out, "\\\"");
			break;
		case '\\':
			buf_puts(out, "\\\\");
			break;
		case '\n':
			buf_puts(out, "\\n");
			break;
		case '\r':
			buf_puts(out, "\\r");
			break;
		case '\t':
			buf_puts(out, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				buf_printf(out, "\\x%02x", *p);
			else
				buf_putc(out, (char)*p);
		}
	}
	buf_putc(out, '"');
}

static void put_list(struct buf *out, char **v, size_t n) {
	size_t i;

	buf_putc(out, '(');
	for (i = 0; i < n; i++) {
		if (i)
			buf_puts(out, ", ");
		buf_puts(out, v[i]);
	}
	buf_putc(out, ')');
}

static void put_dur(struct buf *out, int64_t ms) {
	char d[32];

	if (ms < 0) {
		buf_putc(out, '-');
		ms = -ms;
	}
	ward_fmt_duration(ms, d);
	buf_puts(out, d);
}

static void put_at_offset(struct buf *out, const struct promql_expr *e) {
	if (e->at == AT_TS)
		buf_printf(out, " @ %" PRId64 ".%03" PRId64, e->at_ms / 1000,
		           (e->at_ms % 1000 + 1000) % 1000);
	else if (e->at == AT_START)
		buf_puts(out, " @ start()");
	else if (e->at == AT_END)
		buf_puts(out, " @ end()");
	if (e->offset_ms) {
		buf_puts(out, " offset ");
		put_dur(out, e->offset_ms);
	}
}

static void put_selector(struct buf *out, const struct promql_expr *e) {
	size_t i;
	bool first = true;

	if (e->str)
		buf_puts(out, e->str);
	for (i = 0; i < e->nms; i++) {
		const struct matcher *m = &e->ms[i];
		if (e->str && m->op == MATCH_EQ && strcmp(m->name, "__name__") == 0)
			continue;
		buf_puts(out, first ? "{" : ",");
		first = false;
		buf_puts(out, m->name);
		buf_puts(out, matcher_op_str(m->op));
		put_quoted(out, m->value);
	}
	if (!first)
		buf_putc(out, '}');
	else if (!e->str)
		buf_puts(out, "{}");
}

void promql_expr_string(const struct promql_expr *e, struct buf *out) {
	size_t i;

	if (!e)
		return;
	switch (e->kind) {
	case N_NUM:
		buf_put_double(out, e->num);
		break;
	case N_STR:
		put_quoted(out, e->str);
		break;
	case N_VSEL:
		put_selector(out, e);
		put_at_offset(out, e);
		break;
	case N_MSEL:
		put_selector(out, e->expr);
		buf_putc(out, '[');
		put_dur(out, e->range_ms);
		buf_putc(out, ']');
		put_at_offset(out, e->expr);
		break;
	case N_SUBQ:
		promql_expr_string(e->expr, out);
		buf_putc(out, '[');
		put_dur(out, e->range_ms);
		buf_putc(out, ':');
		if (e->step_ms)
			put_dur(out, e->step_ms);
		buf_putc(out, ']');
		put_at_offset(out, e);
		break;
	case N_CALL:
		buf_puts(out, e->fn->name);
		buf_putc(out, '(');
		for (i = 0; i < e->nargs; i++) {
			if (i)
				buf_puts(out, ", ");
			promql_expr_string(e->args[i], out);
		}
		buf_putc(out, ')');
		break;
	case N_AGG:
		buf_puts(out, promql_agg_name(e->agg));
		if (e->has_grouping) {
			buf_puts(out, e->without ? " without " : " by ");
			put_list(out, e->grouping, e->ngrouping);
			buf_putc(out, ' ');
		}
		buf_putc(out, '(');
		if (e->param) {
			promql_expr_string(e->param, out);
			buf_puts(out, ", ");
		}
		promql_expr_string(e->expr, out);
		buf_putc(out, ')');
		break;
	case N_BIN:
		promql_expr_string(e->lhs, out);
		buf_putc(out, ' ');
		buf_puts(out, promql_binop_str(e->op));
		if (e->return_bool)
			buf_puts(out, " bool");
		if (e->nmlabels > 0 || e->matching_on) {
			buf_puts(out, e->matching_on ? " on " : " ignoring ");
			put_list(out, e->mlabels, e->nmlabels);
			if (e->card == CARD_MANY_TO_ONE || e->card == CARD_ONE_TO_MANY) {
				buf_puts(out, e->card == CARD_MANY_TO_ONE ? " group_left "
				                                          : " group_right ");
				put_list(out, e->include, e->ninclude);
			}
		}
		buf_putc(out, ' ');
		promql_expr_string(e->rhs, out);
		break;
	case N_NEG:
		buf_putc(out, '-');
		promql_expr_string(e->expr, out);
		break;
	case N_PAREN:
		buf_putc(out, '(');
		promql_expr_string(e->expr, out);
		buf_putc(out, ')');
		break;
	default:
		break;
	}
}
