/* parse.c: the PromQL parser: a Pratt (precedence-climbing) parser over lex.c's tokens that
 * builds ast.c's nodes and type-checks them as Prometheus' checkAST does.
 *
 * Precedence, lowest first: or < and unless < comparisons < + - < * / % atan2 < unary - < ^
 * (^ is right-associative). Postfix [range], [range:step], offset and @ bind to the
 * primary before them. Errors read "parse error at line L, char C: ..." with C 1-based,
 * C counted in bytes from the last newline, as Prometheus counts.
 * Called by promql_parse (public), rule loading and the fuzz target.
 */
#include "promql/promql_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	struct lexer lx;
	struct token tok;
	const char *s;
	size_t n;
	struct ward_err *err;
	bool failed;
};

static void perr(struct parser *p, size_t pos, const char *fmt, ...) WARD_PRINTF(3, 4);
static void perr(struct parser *p, size_t pos, const char *fmt, ...) {
	va_list ap;
	char msg[1024];
	size_t i, line = 1, last_nl = 0;
	bool any_nl = false;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pos > p->n)
		pos = p->n;
	for (i = 0; i < pos; i++) {
		if (p->s[i] == '\n') {
			line++;
			last_nl = i;
			any_nl = true;
		}
	}
	ward_err_set(p->err, "parse error at line %zu, char %zu: %s", line,
	             any_nl ? pos - last_nl : pos + 1, msg);
}

static void next(struct parser *p) {
	free(p->tok.str);
	promql_lex_next(&p->lx, &p->tok);
	if (p->tok.type == T_ERR)
		perr(p, p->tok.pos, "%s", p->tok.errmsg ? p->tok.errmsg : "bad token");
}

static enum tok peek2(struct parser *p) {
	struct lexer save = p->lx;
	struct token t;
	enum tok r;

	promql_lex_next(&p->lx, &t);
	r = t.type;
	free(t.str);
	p->lx = save;
	return r;
}

static void unexpected(struct parser *p, const char *ctx) {
	const struct token *t = &p->tok;

	if (t->type == T_ERR)
		return;
	if (t->type == T_EOF)
		perr(p, t->pos, "unexpected end of input%s%s", ctx ? " " : "", ctx ? ctx : "");
	else if (t->type == T_IDENT || t->type == T_NUM || t->type == T_DUR || t->type == T_STR)
		perr(p, t->pos, "unexpected %s \"%.*s\"%s%s", promql_tok_name(t->type),
		     (int)(t->len > 64 ? 64 : t->len), p->s + t->pos, ctx ? " " : "",
		     ctx ? ctx : "");
	else
		perr(p, t->pos, "unexpected %s%s%s", promql_tok_name(t->type), ctx ? " " : "",
		     ctx ? ctx : "");
}

static bool expect(struct parser *p, enum tok t, const char *ctx) {
	if (p->tok.type != t) {
		unexpected(p, ctx);
		return false;
	}
	next(p);
	return true;
}

static const char *type_doc(enum promql_type t) {
	switch (t) {
	case PROMQL_SCALAR:
		return "scalar";
	case PROMQL_VECTOR:
		return "instant vector";
	case PROMQL_MATRIX:
		return "range vector";
	case PROMQL_STRING:
		return "string";
	default:
		return "none";
	}
}

static int prec_of(enum tok op) {
	switch (op) {
	case T_OR:
		return 1;
	case T_AND:
	case T_UNLESS:
		return 2;
	case T_EQLC:
	case T_NEQ:
	case T_LTE:
	case T_LSS:
	case T_GTE:
	case T_GTR:
		return 3;
	case T_ADD:
	case T_SUB:
		return 4;
	case T_MUL:
	case T_DIV:
	case T_MOD:
	case T_ATAN2:
		return 5;
	case T_POW:
		return 7;
	default:
		return 0;
	}
}
#define PREC_UNARY 6

static bool is_comparison(enum tok op) {
	return op >= T_EQLC && op <= T_GTR;
}

static bool is_setop(enum tok op) {
	return op == T_AND || op == T_OR || op == T_UNLESS;
}

static bool tok_is_labelish(enum tok t) {
	return t == T_IDENT || (t >= T_BY && t <= T_OFFSET) || t == T_AND || t == T_OR ||
	       t == T_UNLESS || t == T_ATAN2;
}

/* ( name, name, ... ) with an optional trailing comma. */
static bool parse_label_list(struct parser *p, char ***out, size_t *nout) {
	if (!expect(p, T_LPAREN, "in grouping opts, expected \"(\""))
		return false;
	while (p->tok.type != T_RPAREN) {
		if (!tok_is_labelish(p->tok.type)) {
			unexpected(p, "in grouping opts, expected label");
			return false;
		}
		*out = ward_xrealloc(*out, (*nout + 1) * sizeof(char *));
		(*out)[(*nout)++] = ward_strndup(p->s + p->tok.pos, p->tok.len);
		next(p);
		if (p->tok.type == T_COMMA)
			next(p);
		else if (p->tok.type != T_RPAREN) {
			unexpected(p, "in grouping opts, expected \",\" or \")\"");
			return false;
		}
	}
	next(p);
	return !p->failed;
}

static struct promql_expr *parse_expr(struct parser *p, int min_prec);

static struct promql_expr *parse_selector(struct parser *p, char *name, size_t pos) {
	struct promql_expr *e = promql_node_new(N_VSEL, pos);
	struct ward_err merr;
	size_t i;
	bool nonempty = false;

	e->type = PROMQL_VECTOR;
	e->str = name;
	if (p->tok.type == T_LBRACE) {
		next(p);
		while (p->tok.type != T_RBRACE) {
			char *lname;
			enum matcher_op op;
			size_t mpos = p->tok.pos;
			int rc;
			if (p->tok.type != T_IDENT) {
				unexpected(p, "in label matching, expected label");
				goto fail;
			}
			lname = p->tok.str;
			p->tok.str = NULL;
			next(p);
			switch (p->tok.type) {
			case T_ASSIGN:
				op = MATCH_EQ;
				break;
			case T_NEQ:
				op = MATCH_NEQ;
				break;
			case T_EQL_RE:
				op = MATCH_RE;
				break;
			case T_NEQ_RE:
				op = MATCH_NRE;
				break;
			default:
				free(lname);
				unexpected(p,
				           "in label matching, expected label matching operator");
				goto fail;
			}
			next(p);
			if (p->tok.type != T_STR) {
				free(lname);
				unexpected(p, "in label matching, expected string");
				goto fail;
			}
			if (name && strcmp(lname, "__name__") == 0) {
				free(lname);
				perr(p, mpos, "metric name must not be set twice: \"%s\" or \"%s\"",
				     name, p->tok.str);
				goto fail;
			}
			e->ms = ward_xrealloc(e->ms, (e->nms + 1) * sizeof(e->ms[0]));
			rc = matcher_init(&e->ms[e->nms], op, lname, p->tok.str, &merr);
			free(lname);
			if (rc < 0) {
				perr(p, mpos, "%s", merr.msg);
				goto fail;
			}
			e->nms++;
			next(p);
			if (p->tok.type == T_COMMA)
				next(p);
			else if (p->tok.type != T_RBRACE) {
				unexpected(p, "in label matching, expected \",\" or \"}\"");
				goto fail;
			}
		}
		next(p);
	}
	if (name) {
		e->ms = ward_xrealloc(e->ms, (e->nms + 1) * sizeof(e->ms[0]));
		memmove(&e->ms[1], &e->ms[0], e->nms * sizeof(e->ms[0]));
		if (matcher_init(&e->ms[0], MATCH_EQ, "__name__", name, NULL) < 0)
			goto fail;
		e->nms++;
	}
	for (i = 0; i < e->nms; i++)
		if (!matcher_matches(&e->ms[i], ""))
			nonempty = true;
	if (!nonempty) {
		perr(p, pos, "vector selector must contain at least one non-empty matcher");
		goto fail;
	}
	if (p->failed)
		goto fail;
	return e;
fail:
	promql_expr_free(e);
	return NULL;
}

static bool check_type(struct parser *p, const struct promql_expr *e, enum promql_type want,
                       const char *ctx) {
	if (e->type != want) {
		perr(p, e->pos, "expected type %s in %s, got %s", type_doc(want), ctx,
		     type_doc(e->type));
		return false;
	}
	return true;
}

static struct promql_expr *parse_call(struct parser *p, const struct func_def *fn, size_t pos) {
	struct promql_expr *e = promql_node_new(N_CALL, pos);
	char ctx[128];
	size_t i;

	e->fn = fn;
	e->type = fn->ret;
	next(p); /* ( */
	while (p->tok.type != T_RPAREN) {
		struct promql_expr *a = parse_expr(p, 0);
		if (!a)
			goto fail;
		e->args = ward_xrealloc(e->args, (e->nargs + 1) * sizeof(e->args[0]));
		e->args[e->nargs++] = a;
		if (p->tok.type == T_COMMA)
			next(p);
		else if (p->tok.type != T_RPAREN) {
			unexpected(p, "in call to function, expected \",\" or \")\"");
			goto fail;
		}
	}
	next(p);
	if (fn->variadic == 0 && (int)e->nargs != fn->nargs) {
		perr(p, pos, "expected %d argument(s) in call to \"%s\", got %zu", fn->nargs,
		     fn->name, e->nargs);
		goto fail;
	}
	if (fn->variadic != 0 && (int)e->nargs < fn->nargs) {
		perr(p, pos, "expected at least %d argument(s) in call to \"%s\", got %zu",
		     fn->nargs, fn->name, e->nargs);
		goto fail;
	}
	if (fn->variadic > 0 && (int)e->nargs > fn->nargs + fn->variadic) {
		perr(p, pos, "expected at most %d argument(s) in call to \"%s\", got %zu",
		     fn->nargs + fn->variadic, fn->name, e->nargs);
		goto fail;
	}
	snprintf(ctx, sizeof(ctx), "call to function \"%s\"", fn->name);
	for (i = 0; i < e->nargs; i++) {
		if (!check_type(p, e->args[i], promql_func_arg_type(fn, i), ctx))
			goto fail;
	}
	return e;
fail:
	promql_expr_free(e);
	return NULL;
}

static struct promql_expr *parse_agg(struct parser *p, int agg, size_t pos) {
	struct promql_expr *e = promql_node_new(N_AGG, pos);
	struct promql_expr *args[3] = {0};
	size_t nargs = 0, want = promql_agg_has_param(agg) ? 2 : 1;

	e->agg = agg;
	e->type = PROMQL_VECTOR;
	if (p->tok.type == T_BY || p->tok.type == T_WITHOUT) {
		e->without = p->tok.type == T_WITHOUT;
		e->has_grouping = true;
		next(p);
		if (!parse_label_list(p, &e->grouping, &e->ngrouping))
			goto fail;
	}
	if (!expect(p, T_LPAREN, "in aggregation, expected \"(\""))
		goto fail;
	while (p->tok.type != T_RPAREN) {
		struct promql_expr *a = parse_expr(p, 0);
		if (!a)
			goto fail;
		if (nargs >= 2) {
			promql_expr_free(a);
			nargs++;
			break;
		}
		args[nargs++] = a;
		if (p->tok.type == T_COMMA)
			next(p);
		else if (p->tok.type != T_RPAREN) {
			unexpected(p, "in aggregation, expected \",\" or \")\"");
			goto fail;
		}
	}
	if (nargs != want) {
		perr(p, pos,
		     "wrong number of arguments for aggregate expression provided, "
		     "expected %zu, got %zu",
		     want, nargs);
		goto fail;
	}
	next(p);
	if (want == 2) {
		e->param = args[0];
		e->expr = args[1];
	} else {
		e->expr = args[0];
	}
	args[0] = args[1] = NULL;
	if (p->tok.type == T_BY || p->tok.type == T_WITHOUT) {
		if (e->has_grouping) {
			unexpected(p, NULL);
			goto fail;
		}
		e->without = p->tok.type == T_WITHOUT;
		e->has_grouping = true;
		next(p);
		if (!parse_label_list(p, &e->grouping, &e->ngrouping))
			goto fail;
	}
	if (!check_type(p, e->expr, PROMQL_VECTOR, "aggregation expression"))
		goto fail;
	if (e->param &&
	    !check_type(p, e->param, agg == AGG_COUNT_VALUES ? PROMQL_STRING : PROMQL_SCALAR,
	                "aggregation parameter"))
		goto fail;
	return e;
fail:
	promql_expr_free(args[0]);
	promql_expr_free(args[1]);
	promql_expr_free(e);
	return NULL;
}

static struct promql_expr *parse_primary(struct parser *p) {
	struct promql_expr *e = NULL;
	size_t pos = p->tok.pos;

	switch (p->tok.type) {
	case T_NUM:
		e = promql_node_new(N_NUM, pos);
		e->type = PROMQL_SCALAR;
		e->num = p->tok.num;
		next(p);
		return e;
	case T_DUR:
		/* a duration where a number is expected means its seconds (Prometheus 3) */
		e = promql_node_new(N_NUM, pos);
		e->type = PROMQL_SCALAR;
		e->num = (double)p->tok.dur_ms / 1000;
		next(p);
		return e;
	case T_STR:
		e = promql_node_new(N_STR, pos);
		e->type = PROMQL_STRING;
		e->str = p->tok.str;
		p->tok.str = NULL;
		next(p);
		return e;
	case T_LPAREN:
		next(p);
		e = promql_node_new(N_PAREN, pos);
		e->expr = parse_expr(p, 0);
		if (!e->expr || !expect(p, T_RPAREN, "in paren expression, expected \")\"")) {
			promql_expr_free(e);
			return NULL;
		}
		e->type = e->expr->type;
		return e;
	case T_LBRACE:
		return parse_selector(p, NULL, pos);
	case T_IDENT: {
		char *name = p->tok.str;
		enum tok nt = peek2(p);
		int agg = promql_agg_lookup(name, strlen(name));
		p->tok.str = NULL;
		if (agg >= 0 && (nt == T_LPAREN || nt == T_BY || nt == T_WITHOUT)) {
			free(name);
			next(p);
			return parse_agg(p, agg, pos);
		}
		if (nt == T_LPAREN) {
			const struct func_def *fn = promql_func_lookup(name, strlen(name));
			if (!fn) {
				perr(p, pos, "unknown function with name \"%s\"", name);
				free(name);
				return NULL;
			}
			free(name);
			next(p);
			return parse_call(p, fn, pos);
		}
		next(p);
		return parse_selector(p, name, pos);
	}
	default:
		unexpected(p, NULL);
		return NULL;
	}
}

/* Ranges, offsets and steps beyond this (about 35,000 years) are refused so that time
 * arithmetic on them cannot overflow. */
#define MAX_DURATION_MS (1LL << 50)

static bool parse_dur_tok(struct parser *p, int64_t *ms, const char *ctx) {
	if (p->tok.type == T_DUR) {
		if (p->tok.dur_ms > MAX_DURATION_MS) {
			perr(p, p->tok.pos, "duration out of range");
			return false;
		}
		*ms = p->tok.dur_ms;
	} else if (p->tok.type == T_NUM && isfinite(p->tok.num) && p->tok.num >= 0 &&
	           p->tok.num * 1000 <= (double)MAX_DURATION_MS) {
		*ms = (int64_t)llround(p->tok.num * 1000);
	} else {
		unexpected(p, ctx);
		return false;
	}
	next(p);
	return true;
}

static struct promql_expr *parse_postfix(struct parser *p, struct promql_expr *e) {
	while (e && !p->failed) {
		size_t pos = p->tok.pos;
		if (p->tok.type == T_LBRACK) {
			int64_t range, step = 0;
			next(p);
			if (!parse_dur_tok(p, &range,
			                   "in subquery or range selector, expected duration"))
				goto fail;
			if (p->tok.type == T_COLON) {
				struct promql_expr *s;
				next(p);
				if (p->tok.type != T_RBRACK &&
				    !parse_dur_tok(p, &step, "in subquery, expected duration"))
					goto fail;
				if (!expect(p, T_RBRACK, "in subquery, expected \"]\""))
					goto fail;
				if (e->type != PROMQL_VECTOR) {
					struct buf b = BUF_INIT;
					promql_expr_string(e, &b);
					perr(p, e->pos,
					     "subquery is only allowed on instant vector, got %s "
					     "in \"%s\" instead",
					     type_doc(e->type), buf_cstr(&b));
					buf_free(&b);
					goto fail;
				}
				if (range <= 0 || step < 0) {
					perr(p, pos, "subquery range must be positive");
					goto fail;
				}
				s = promql_node_new(N_SUBQ, e->pos);
				s->type = PROMQL_MATRIX;
				s->expr = e;
				s->range_ms = range;
				s->step_ms = step;
				e = s;
			} else {
				struct promql_expr *m;
				if (!expect(p, T_RBRACK, "in range selector, expected \"]\""))
					goto fail;
				if (e->kind != N_VSEL) {
					perr(p, e->pos, "ranges only allowed for vector selectors");
					goto fail;
				}
				if (range <= 0) {
					perr(p, pos, "range selector duration must be positive");
					goto fail;
				}
				m = promql_node_new(N_MSEL, e->pos);
				m->type = PROMQL_MATRIX;
				m->expr = e;
				m->range_ms = range;
				e = m;
			}
		} else if (p->tok.type == T_OFFSET) {
			struct promql_expr *t = e->kind == N_MSEL ? e->expr : e;
			int64_t off;
			bool neg = false;
			next(p);
			if (t->kind != N_VSEL && t->kind != N_SUBQ) {
				perr(p, pos,
				     "offset modifier must be preceded by an instant vector "
				     "selector or range vector selector or a subquery");
				goto fail;
			}
			if (p->tok.type == T_SUB || p->tok.type == T_ADD) {
				neg = p->tok.type == T_SUB;
				next(p);
			}
			if (!parse_dur_tok(p, &off, "in offset, expected duration"))
				goto fail;
			if (t->offset_ms) {
				perr(p, pos, "offset may not be set multiple times");
				goto fail;
			}
			t->offset_ms = neg ? -off : off;
		} else if (p->tok.type == T_AT) {
			struct promql_expr *t = e->kind == N_MSEL ? e->expr : e;
			next(p);
			if (t->kind != N_VSEL && t->kind != N_SUBQ) {
				perr(p, pos,
				     "@ modifier must be preceded by an instant vector "
				     "selector or range vector selector or a subquery");
				goto fail;
			}
			if (t->at != AT_NONE) {
				perr(p, pos, "@ <timestamp> may not be set multiple times");
				goto fail;
			}
			if (p->tok.type == T_IDENT &&
			    (strcmp(p->tok.str, "start") == 0 || strcmp(p->tok.str, "end") == 0)) {
				t->at = strcmp(p->tok.str, "start") == 0 ? AT_START : AT_END;
				next(p);
				if (!expect(p, T_LPAREN, "in @, expected \"(\"") ||
				    !expect(p, T_RPAREN, "in @, expected \")\""))
					goto fail;
			} else {
				bool neg = false;
				double v;
				if (p->tok.type == T_SUB || p->tok.type == T_ADD) {
					neg = p->tok.type == T_SUB;
					next(p);
				}
				if (p->tok.type == T_DUR) {
					v = (double)p->tok.dur_ms / 1000;
				} else if (p->tok.type == T_NUM) {
					v = p->tok.num;
				} else {
					unexpected(p, "in @, expected timestamp");
					goto fail;
				}
				if (neg)
					v = -v;
				/* seconds; beyond 2^50 ms time arithmetic could overflow */
				if (!isfinite(v) || fabs(v) * 1000 > (double)MAX_DURATION_MS) {
					perr(p, p->tok.pos,
					     "timestamp out of bounds for @ modifier: %g", v);
					goto fail;
				}
				t->at = AT_TS;
				t->at_ms = (int64_t)llround(v * 1000);
				next(p);
			}
		} else {
			break;
		}
	}
	if (p->failed)
		goto fail;
	return e;
fail:
	promql_expr_free(e);
	return NULL;
}

static struct promql_expr *parse_unary(struct parser *p) {
	if (p->tok.type == T_SUB || p->tok.type == T_ADD) {
		bool neg = p->tok.type == T_SUB;
		size_t pos = p->tok.pos;
		struct promql_expr *x, *u;
		next(p);
		x = parse_expr(p, PREC_UNARY + 1);
		if (!x)
			return NULL;
		if (x->type != PROMQL_SCALAR && x->type != PROMQL_VECTOR) {
			perr(p, pos,
			     "unary expression only allowed on expressions of type scalar "
			     "or instant vector, got %s",
			     type_doc(x->type));
			promql_expr_free(x);
			return NULL;
		}
		if (!neg)
			return x;
		if (x->kind == N_NUM) {
			x->num = -x->num;
			x->pos = pos;
			return x;
		}
		u = promql_node_new(N_NEG, pos);
		u->type = x->type;
		u->expr = x;
		return u;
	}
	return parse_postfix(p, parse_primary(p));
}

static struct promql_expr *make_binop(struct parser *p, struct promql_expr *b) {
	enum promql_type lt = b->lhs->type, rt = b->rhs->type;
	size_t i, j;

	b->type = lt == PROMQL_SCALAR && rt == PROMQL_SCALAR ? PROMQL_SCALAR : PROMQL_VECTOR;
	if ((lt != PROMQL_SCALAR && lt != PROMQL_VECTOR) ||
	    (rt != PROMQL_SCALAR && rt != PROMQL_VECTOR)) {
		perr(p, b->pos,
		     "binary expression must contain only scalar and instant vector types");
		goto fail;
	}
	if (b->return_bool && !is_comparison(b->op)) {
		perr(p, b->pos, "bool modifier can only be used on comparison operators");
		goto fail;
	}
	if (is_comparison(b->op) && b->type == PROMQL_SCALAR && !b->return_bool) {
		perr(p, b->pos, "comparisons between scalars must use BOOL modifier");
		goto fail;
	}
	if (is_setop(b->op)) {
		if (lt == PROMQL_SCALAR || rt == PROMQL_SCALAR) {
			perr(p, b->pos,
			     "set operator \"%s\" not allowed in binary scalar expression",
			     promql_binop_str(b->op));
			goto fail;
		}
		if (b->card == CARD_MANY_TO_ONE || b->card == CARD_ONE_TO_MANY) {
			perr(p, b->pos, "no grouping allowed for \"%s\" operation",
			     promql_binop_str(b->op));
			goto fail;
		}
		b->card = CARD_MANY_TO_MANY;
	}
	if (b->has_matching && (lt != PROMQL_VECTOR || rt != PROMQL_VECTOR)) {
		perr(p, b->pos, "vector matching only allowed between instant vectors");
		goto fail;
	}
	if (b->matching_on)
		for (i = 0; i < b->ninclude; i++)
			for (j = 0; j < b->nmlabels; j++)
				if (strcmp(b->include[i], b->mlabels[j]) == 0) {
					perr(p, b->pos,
					     "label \"%s\" must not occur in ON and GROUP "
					     "clause at once",
					     b->include[i]);
					goto fail;
				}
	return b;
fail:
	promql_expr_free(b);
	return NULL;
}

static struct promql_expr *parse_expr(struct parser *p, int min_prec) {
	struct promql_expr *lhs = parse_unary(p);

	while (lhs && !p->failed && promql_tok_is_binop(p->tok.type) &&
	       prec_of(p->tok.type) >= min_prec) {
		enum tok op = p->tok.type;
		int prec = prec_of(op);
		struct promql_expr *b = promql_node_new(N_BIN, p->tok.pos);
		b->op = op;
		b->lhs = lhs;
		lhs = NULL;
		next(p);
		if (p->tok.type == T_BOOL) {
			b->return_bool = true;
			next(p);
		}
		if (p->tok.type == T_ON || p->tok.type == T_IGNORING) {
			b->matching_on = p->tok.type == T_ON;
			b->has_matching = true;
			next(p);
			if (!parse_label_list(p, &b->mlabels, &b->nmlabels))
				goto fail;
			if (p->tok.type == T_GROUP_LEFT || p->tok.type == T_GROUP_RIGHT) {
				b->card = p->tok.type == T_GROUP_LEFT ? CARD_MANY_TO_ONE
				                                      : CARD_ONE_TO_MANY;
				next(p);
				if (p->tok.type == T_LPAREN &&
				    !parse_label_list(p, &b->include, &b->ninclude))
					goto fail;
			}
		} else if (p->tok.type == T_GROUP_LEFT || p->tok.type == T_GROUP_RIGHT) {
			unexpected(p,
			           "in binary expression, expected on or ignoring before grouping");
			goto fail;
		}
		b->rhs = parse_expr(p, op == T_POW ? prec : prec + 1);
		if (!b->rhs)
			goto fail;
		lhs = make_binop(p, b);
		continue;
	fail:
		promql_expr_free(b);
		return NULL;
	}
	if (p->failed) {
		promql_expr_free(lhs);
		return NULL;
	}
	return lhs;
}

struct promql_expr *promql_parse(const char *s, size_t n, struct ward_err *err) {
	struct parser p;
	struct promql_expr *e = NULL;

	memset(&p, 0, sizeof(p));
	p.s = s;
	p.n = n;
	p.err = err;
	promql_lex_init(&p.lx, s, n);
	next(&p);
	if (p.failed)
		goto out;
	if (p.tok.type == T_EOF) {
		perr(&p, 0, "no expression found in input");
		goto out;
	}
	e = parse_expr(&p, 0);
	if (e && p.tok.type != T_EOF) {
		unexpected(&p, NULL);
		promql_expr_free(e);
		e = NULL;
	}
out:
	free(p.tok.str);
	if (p.failed && e) {
		promql_expr_free(e);
		e = NULL;
	}
	return e;
}
