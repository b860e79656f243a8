/* query.c: the LogQL subset: lexer, recursive-descent parser, and the per-line pipeline.
 *   query  := AGG [by|without (l,..)] "(" range ")" [by|without (l,..)] | range | log
 *   range  := (count_over_time|rate|bytes_over_time|bytes_rate) "(" log "[" DUR "]" ")"
 *   log    := "{" matcher ("," matcher)* "}" stage*
 *   stage  := ("|="|"!="|"|~"|"!~") STRING | "|" json | "|" logfmt | "|" IDENT CMP value
 * Errors name the 1-based column of the offending token and what was expected. The AST owns
 * what it points to (regexes compiled once). Callers: the HTTP API, the evaluator (eval.c),
 * the CLI, the fuzz target.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "logs/logs_internal.h"

#define QUERY_MAX_LEN      65536 /* a query longer than this is a mistake, not a search */
#define QUERY_MAX_STAGES   64
#define QUERY_MAX_MATCHERS 64
#define QUERY_MAX_RANGE_MS (366LL * 86400 * 1000) /* retention rarely exceeds a year */

enum tok {
	T_EOF,
	T_LBRACE,
	T_RBRACE,
	T_LPAREN,
	T_RPAREN,
	T_LBRACK,
	T_RBRACK,
	T_COMMA,
	T_IDENT,
	T_STRING,
	T_NUMBER,
	T_EQ,
	T_EQEQ,
	T_NEQ,
	T_RE,
	T_NRE,
	T_PIPE_EQ,
	T_PIPE_RE,
	T_PIPE,
	T_GT,
	T_GE,
	T_LT,
	T_LE,
	T_ERR,
};

struct lex {
	const char *s;
	size_t n, i;
	enum tok t;
	size_t tpos;     /* start of the current token */
	struct buf text; /* identifier, decoded string, or number text */
	struct ward_err *err;
	bool failed;
};

static void lerr(struct lex *l, size_t pos, const char *fmt, ...) WARD_PRINTF(3, 4);
static void lerr(struct lex *l, size_t pos, const char *fmt, ...) {
	if (l->failed)
		return;
	l->failed = true;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ward_err_set(l->err, "parse error at col %zu: %s", pos + 1, msg);
}

static const char *tok_name(enum tok t) {
	static const char *const names[] = {
	        "end of query", "'{'",  "'}'",        "'('",    "')'",    "'['",
	        "']'",          "','",  "identifier", "string", "number", "'='",
	        "'=='",         "'!='", "'=~'",       "'!~'",   "'|='",   "'|~'",
	        "'|'",          "'>'",  "'>='",       "'<'",    "'<='",   "invalid character"};
	return names[t];
}

static void next(struct lex *l) {
	while (l->i < l->n && isspace((unsigned char)l->s[l->i]))
		l->i++;
	l->tpos = l->i;
	buf_reset(&l->text);
	if (l->i >= l->n) {
		l->t = T_EOF;
		return;
	}
	char c = l->s[l->i];
	char d = l->i + 1 < l->n ? l->s[l->i + 1] : '\0';
	l->i++;
	switch (c) {
	case '{':
		l->t = T_LBRACE;
		return;
	case '}':
		l->t = T_RBRACE;
		return;
	case '(':
		l->t = T_LPAREN;
		return;
	case ')':
		l->t = T_RPAREN;
		return;
	case '[':
		l->t = T_LBRACK;
		return;
	case ']':
		l->t = T_RBRACK;
		return;
	case ',':
		l->t = T_COMMA;
		return;
	case '=':
		if (d == '=') {
			l->i++;
			l->t = T_EQEQ;
			return;
		}
		if (d == '~') {
			l->i++;
			l->t = T_RE;
			return;
		}
		l->t = T_EQ;
		return;
	case '!':
		if (d == '=') {
			l->i++;
			l->t = T_NEQ;
			return;
		}
		if (d == '~') {
			l->i++;
			l->t = T_NRE;
			return;
		}
		l->t = T_ERR;
		lerr(l, l->tpos, "'!' must be followed by '=' or '~'");
		return;
	case '|':
		if (d == '=') {
			l->i++;
			l->t = T_PIPE_EQ;
			return;
		}
		if (d == '~') {
			l->i++;
			l->t = T_PIPE_RE;
			return;
		}
		l->t = T_PIPE;
		return;
	case '>':
		if (d == '=') {
			l->i++;
			l->t = T_GE;
			return;
		}
		l->t = T_GT;
		return;
	case '<':
		if (d == '=') {
			l->i++;
			l->t = T_LE;
			return;
		}
		l->t = T_LT;
		return;
	case '"':
		while (l->i < l->n && l->s[l->i] != '"') {
			char e = l->s[l->i];
			if (e == '\\' && l->i + 1 < l->n) {
				char x = l->s[l->i + 1];
				buf_putc(&l->text, x == 'n'   ? '\n'
				                   : x == 't' ? '\t'
				                   : x == 'r' ? '\r'
				                              : x);
				l->i += 2;
				continue;
			}
			buf_putc(&l->text, e);
			l->i++;
		}
		if (l->i >= l->n) {
			l->t = T_ERR;
			lerr(l, l->tpos, "unterminated string; close it with '\"'");
			return;
		}
		l->i++;
		l->t = T_STRING;
		return;
	case '`':
		while (l->i < l->n && l->s[l->i] != '`')
			buf_putc(&l->text, l->s[l->i++]);
		if (l->i >= l->n) {
			l->t = T_ERR;
			lerr(l, l->tpos, "unterminated raw string; close it with '`'");
			return;
		}
		l->i++;
		l->t = T_STRING;
		return;
	default:
		break;
	}
	if (isalpha((unsigned char)c) || c == '_') {
		buf_putc(&l->text, c);
		while (l->i < l->n && (isalnum((unsigned char)l->s[l->i]) || l->s[l->i] == '_'))
			buf_putc(&l->text, l->s[l->i++]);
		l->t = T_IDENT;
		return;
	}
	if (isdigit((unsigned char)c) || c == '-' || c == '.') {
		buf_putc(&l->text, c);
		/* Numbers and durations ("5m", "1h30m", "1.5"). */
		while (l->i < l->n && (isalnum((unsigned char)l->s[l->i]) || l->s[l->i] == '.'))
			buf_putc(&l->text, l->s[l->i++]);
		l->t = T_NUMBER;
		return;
	}
	l->t = T_ERR;
	lerr(l, l->tpos, "unexpected character '%c'", isprint((unsigned char)c) ? c : '?');
}

static bool expect(struct lex *l, enum tok t, const char *what) {
	if (l->t == t) {
		next(l);
		return true;
	}
	lerr(l, l->tpos, "expected %s, found %s", what, tok_name(l->t));
	return false;
}

/* ---- AST ---- */

static void stage_free(struct logs_stage *st) {
	free(st->text);
	free(st->value);
	if (st->re)
		pcre2_code_free(st->re);
}

void logs_query_free(struct logs_query *q) {
	if (!q)
		return;
	for (size_t i = 0; i < q->nmatchers; i++)
		matcher_free(&q->matchers[i]);
	free(q->matchers);
	for (size_t i = 0; i < q->nstages; i++)
		stage_free(&q->stages[i]);
	free(q->stages);
	for (size_t i = 0; i < q->nby; i++)
		free(q->by[i]);
	free(q->by);
	free(q);
}

bool logs_query_is_metric(const struct logs_query *q) {
	return q->metric;
}

static pcre2_code *compile_re(struct lex *l, size_t pos, const char *pat, bool anchored) {
	struct buf p = BUF_INIT;
	int ec;
	PCRE2_SIZE eo;
	if (anchored)
		buf_puts(&p, "^(?:");
	buf_puts(&p, pat);
	if (anchored)
		buf_puts(&p, ")$");
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)buf_cstr(&p), p.len,
	                               PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
	                               &ec, &eo, NULL);
	buf_free(&p);
	if (!re) {
		PCRE2_UCHAR m[256];
		pcre2_get_error_message(ec, m, sizeof(m));
		lerr(l, pos, "invalid regular expression \"%s\": %s", pat, (const char *)m);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

/* A number with an optional duration unit (ns us ms s m h, repeatable: "1m30s", "1.5s"),
 * in seconds, as Loki's label filters compare durations. 0 or -1. */
static int num_or_dur(const char *s, double *out) {
	char *end;
	double total = 0;
	if (!*s)
		return -1;
	double v = strtod(s, &end);
	if (end == s)
		return -1;
	if (!*end) {
		*out = v;
		return 0;
	}
	for (;;) {
		double mul;
		if (strncmp(end, "ns", 2) == 0) {
			mul = 1e-9;
			end += 2;
		} else if (strncmp(end, "us", 2) == 0) {
			mul = 1e-6;
			end += 2;
		} else if (strncmp(end, "ms", 2) == 0) {
			mul = 1e-3;
			end += 2;
		} else if (*end == 's') {
			mul = 1;
			end++;
		} else if (*end == 'm') {
			mul = 60;
			end++;
		} else if (*end == 'h') {
			mul = 3600;
			end++;
		} else
			return -1;
		total += v * mul;
		if (!*end)
			break;
		const char *st = end;
		v = strtod(st, &end);
		if (end == st)
			return -1;
	}
	*out = total;
	return 0;
}

static struct logs_stage *add_stage(struct lex *l, struct logs_query *q) {
	if (q->nstages >= QUERY_MAX_STAGES) {
		lerr(l, l->tpos, "more than %d pipeline stages", QUERY_MAX_STAGES);
		return NULL;
	}
	q->stages = ward_xrealloc(q->stages, (q->nstages + 1) * sizeof(*q->stages));
	struct logs_stage *st = &q->stages[q->nstages++];
	memset(st, 0, sizeof(*st));
	return st;
}

static bool parse_selector(struct lex *l, struct logs_query *q) {
	if (!expect(l, T_LBRACE, "'{' to start a stream selector such as {job=\"nginx\"}"))
		return false;
	while (l->t != T_RBRACE) {
		if (q->nmatchers >= QUERY_MAX_MATCHERS) {
			lerr(l, l->tpos, "more than %d label matchers", QUERY_MAX_MATCHERS);
			return false;
		}
		if (l->t != T_IDENT) {
			lerr(l, l->tpos, "expected a label name, found %s", tok_name(l->t));
			return false;
		}
		char *name = buf_detach(&l->text);
		next(l);
		enum matcher_op op;
		switch (l->t) {
		case T_EQ:
			op = MATCH_EQ;
			break;
		case T_NEQ:
			op = MATCH_NEQ;
			break;
		case T_RE:
			op = MATCH_RE;
			break;
		case T_NRE:
			op = MATCH_NRE;
			break;
		default:
			lerr(l, l->tpos, "expected =, !=, =~ or !~ after label %s, found %s", name,
			     tok_name(l->t));
			free(name);
			return false;
		}
		next(l);
		if (l->t != T_STRING) {
			lerr(l, l->tpos, "expected a quoted value for label %s, found %s", name,
			     tok_name(l->t));
			free(name);
			return false;
		}
		size_t vpos = l->tpos;
		q->matchers = ward_xrealloc(q->matchers, (q->nmatchers + 1) * sizeof(*q->matchers));
		struct ward_err me;
		ward_err_clear(&me);
		if (matcher_init(&q->matchers[q->nmatchers], op, name, buf_cstr(&l->text), &me) !=
		    0) {
			lerr(l, vpos, "%s", me.msg);
			free(name);
			return false;
		}
		q->nmatchers++;
		free(name);
		next(l);
		if (l->t == T_COMMA)
			next(l);
		else if (l->t != T_RBRACE) {
			lerr(l, l->tpos, "expected ',' or '}' in the stream selector, found %s",
			     tok_name(l->t));
			return false;
		}
	}
	next(l);
	/* Like Loki: a selector that matches everything would scan the whole store. */
	bool useful = false;
	for (size_t i = 0; i < q->nmatchers; i++)
		if (!matcher_matches(&q->matchers[i], ""))
			useful = true;
	if (!useful) {
		lerr(l, 0,
		     "the stream selector must have at least one matcher that does not match "
		     "the empty value, such as {job=\"x\"} or {job=~\".+\"}");
		return false;
	}
	return true;
}

static bool parse_stages(struct lex *l, struct logs_query *q) {
	while (!l->failed) {
		enum tok t = l->t;
		if (t == T_PIPE_EQ || t == T_NEQ || t == T_PIPE_RE || t == T_NRE) {
			next(l);
			if (l->t != T_STRING) {
				lerr(l, l->tpos,
				     "expected a quoted string after the line filter, found %s",
				     tok_name(l->t));
				return false;
			}
			struct logs_stage *st = add_stage(l, q);
			if (!st)
				return false;
			st->kind = t == T_PIPE_EQ   ? STAGE_LINE_CONTAINS
			           : t == T_NEQ     ? STAGE_LINE_NCONTAINS
			           : t == T_PIPE_RE ? STAGE_LINE_RE
			                            : STAGE_LINE_NRE;
			st->text = ward_strdup(buf_cstr(&l->text));
			if (t == T_PIPE_RE || t == T_NRE) {
				st->re = compile_re(l, l->tpos, st->text, false);
				if (!st->re)
					return false;
			}
			next(l);
			continue;
		}
		if (t != T_PIPE)
			return true;
		next(l);
		if (l->t != T_IDENT) {
			lerr(l, l->tpos,
			     "expected json, logfmt or a field filter after '|', found %s",
			     tok_name(l->t));
			return false;
		}
		const char *id = buf_cstr(&l->text);
		if (strcmp(id, "json") == 0 || strcmp(id, "logfmt") == 0) {
			struct logs_stage *st = add_stage(l, q);
			if (!st)
				return false;
			st->kind = id[0] == 'j' ? STAGE_JSON : STAGE_LOGFMT;
			next(l);
			continue;
		}
		struct logs_stage *st = add_stage(l, q);
		if (!st)
			return false;
		st->kind = STAGE_FIELD;
		st->text = ward_strdup(id);
		next(l);
		size_t oppos = l->tpos;
		switch (l->t) {
		case T_EQ:
		case T_EQEQ:
			st->cmp = CMP_EQ;
			break;
		case T_NEQ:
			st->cmp = CMP_NEQ;
			break;
		case T_RE:
			st->cmp = CMP_RE;
			break;
		case T_NRE:
			st->cmp = CMP_NRE;
			break;
		case T_GT:
			st->cmp = CMP_GT;
			break;
		case T_GE:
			st->cmp = CMP_GE;
			break;
		case T_LT:
			st->cmp = CMP_LT;
			break;
		case T_LE:
			st->cmp = CMP_LE;
			break;
		default:
			lerr(l, l->tpos,
			     "expected a comparison (=, !=, =~, !~, >, >=, <, <=) after "
			     "field %s, found %s",
			     st->text, tok_name(l->t));
			return false;
		}
		next(l);
		if (l->t == T_NUMBER) {
			st->value = ward_strdup(buf_cstr(&l->text));
			if (num_or_dur(st->value, &st->num) != 0) {
				lerr(l, l->tpos, "'%s' is not a number or a duration such as 250ms",
				     st->value);
				return false;
			}
			st->numeric = true;
			if (st->cmp == CMP_RE || st->cmp == CMP_NRE) {
				lerr(l, oppos, "=~ and !~ need a quoted regular expression");
				return false;
			}
		} else if (l->t == T_STRING) {
			st->value = ward_strdup(buf_cstr(&l->text));
			if (st->cmp >= CMP_GT) {
				lerr(l, oppos,
				     ">, >=, < and <= compare numbers; write the value "
				     "without quotes");
				return false;
			}
			if (st->cmp == CMP_RE || st->cmp == CMP_NRE) {
				st->re = compile_re(l, l->tpos, st->value, true);
				if (!st->re)
					return false;
			}
		} else {
			lerr(l, l->tpos,
			     "expected a number or a quoted string after the comparison, "
			     "found %s",
			     tok_name(l->t));
			return false;
		}
		next(l);
	}
	return false;
}

static bool parse_by(struct lex *l, struct logs_query *q) {
	if (l->t != T_IDENT)
		return true;
	const char *id = buf_cstr(&l->text);
	bool without = strcmp(id, "without") == 0;
	if (!without && strcmp(id, "by") != 0)
		return true;
	if (q->nby || q->without) {
		lerr(l, l->tpos, "only one by/without clause is allowed");
		return false;
	}
	q->without = without;
	next(l);
	if (!expect(l, T_LPAREN, "'(' after by/without"))
		return false;
	while (l->t != T_RPAREN) {
		if (l->t != T_IDENT) {
			lerr(l, l->tpos, "expected a label name in by (...), found %s",
			     tok_name(l->t));
			return false;
		}
		q->by = ward_xrealloc(q->by, (q->nby + 1) * sizeof(char *));
		q->by[q->nby++] = buf_detach(&l->text);
		next(l);
		if (l->t == T_COMMA)
			next(l);
		else if (l->t != T_RPAREN) {
			lerr(l, l->tpos, "expected ',' or ')', found %s", tok_name(l->t));
			return false;
		}
	}
	next(l);
	return true;
}

static bool parse_range(struct lex *l, struct logs_query *q) {
	const char *id = buf_cstr(&l->text);
	if (strcmp(id, "count_over_time") == 0)
		q->range_fn = RANGE_COUNT;
	else if (strcmp(id, "rate") == 0)
		q->range_fn = RANGE_RATE;
	else if (strcmp(id, "bytes_over_time") == 0)
		q->range_fn = RANGE_BYTES;
	else if (strcmp(id, "bytes_rate") == 0)
		q->range_fn = RANGE_BYTES_RATE;
	else {
		lerr(l, l->tpos,
		     "unknown function %s; use count_over_time, rate, bytes_over_time "
		     "or bytes_rate",
		     id);
		return false;
	}
	q->metric = true;
	next(l);
	if (!expect(l, T_LPAREN, "'('"))
		return false;
	if (!parse_selector(l, q) || !parse_stages(l, q))
		return false;
	if (l->t != T_LBRACK) {
		lerr(l, l->tpos, "expected '[' and a range such as [5m], found %s", tok_name(l->t));
		return false;
	}
	next(l);
	if (l->t != T_NUMBER) {
		lerr(l, l->tpos, "expected a duration such as 5m, found %s", tok_name(l->t));
		return false;
	}
	int64_t ms;
	struct ward_err de;
	ward_err_clear(&de);
	if (ward_parse_duration(l->text.data, l->text.len, &ms, &de) != 0 || ms <= 0) {
		lerr(l, l->tpos, "bad range duration: %s", de.msg[0] ? de.msg : "must be positive");
		return false;
	}
	if (ms > QUERY_MAX_RANGE_MS) {
		lerr(l, l->tpos, "range %.*s is longer than the 366d a query may cover",
		     (int)l->text.len, l->text.data);
		return false;
	}
	q->range_ns = ms * 1000000;
	next(l);
	if (!expect(l, T_RBRACK, "']'"))
		return false;
	return expect(l, T_RPAREN, "')' to close the range function");
}

struct logs_query *logs_query_parse(const char *src, size_t len, struct ward_err *err) {
	struct lex l = {.s = src, .n = len, .err = err};
	struct logs_query *q = ward_xcalloc(1, sizeof(*q));
	if (len > QUERY_MAX_LEN) {
		ward_err_set(err, "query is %zu bytes; at most %d", len, QUERY_MAX_LEN);
		goto fail;
	}
	next(&l);
	if (l.t == T_IDENT) {
		const char *id = buf_cstr(&l.text);
		static const char *const aggs[] = {"sum", "count", "avg", "min", "max"};
		for (int i = 0; i < 5; i++)
			if (strcmp(id, aggs[i]) == 0)
				q->agg = (enum logs_agg_fn)(AGG_SUM + i);
		if (q->agg != AGG_NONE) {
			next(&l);
			if (!parse_by(&l, q) || !expect(&l, T_LPAREN, "'(' after the aggregation"))
				goto fail;
			if (l.t != T_IDENT) {
				lerr(&l, l.tpos,
				     "expected a range function such as count_over_time, "
				     "found %s",
				     tok_name(l.t));
				goto fail;
			}
			if (!parse_range(&l, q) ||
			    !expect(&l, T_RPAREN, "')' to close the aggregation"))
				goto fail;
			if (!parse_by(&l, q))
				goto fail;
		} else if (!parse_range(&l, q)) {
			goto fail;
		}
	} else {
		if (!parse_selector(&l, q) || !parse_stages(&l, q))
			goto fail;
	}
	if (l.failed)
		goto fail;
	if (l.t != T_EOF) {
		lerr(&l, l.tpos, "unexpected %s after the end of the query", tok_name(l.t));
		goto fail;
	}
	buf_free(&l.text);
	return q;
fail:
	if (!l.failed && !ward_err_isset(err))
		ward_err_set(err, "parse error at col %zu", l.tpos + 1);
	buf_free(&l.text);
	logs_query_free(q);
	return NULL;
}

/* ---- printing ---- */

static void put_quoted(struct buf *out, const char *s) {
	buf_putc(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_putc(out, '\\');
		if (*s == '\n') {
			buf_puts(out, "\\n");
			continue;
		}
		buf_putc(out, *s);
	}
	buf_putc(out, '"');
}

static void print_log(const struct logs_query *q, struct buf *out) {
	buf_putc(out, '{');
	for (size_t i = 0; i < q->nmatchers; i++) {
		if (i)
			buf_putc(out, ',');
		buf_printf(out, "%s%s", q->matchers[i].name, matcher_op_str(q->matchers[i].op));
		put_quoted(out, q->matchers[i].value);
	}
	buf_putc(out, '}');
	static const char *const lf[] = {"|=", "!=", "|~", "!~"};
	static const char *const cmps[] = {"=", "!=", "=~", "!~", ">", ">=", "<", "<="};
	for (size_t i = 0; i < q->nstages; i++) {
		const struct logs_stage *st = &q->stages[i];
		switch (st->kind) {
		case STAGE_LINE_CONTAINS:
		case STAGE_LINE_NCONTAINS:
		case STAGE_LINE_RE:
		case STAGE_LINE_NRE:
			buf_printf(out, " %s ", lf[st->kind]);
			put_quoted(out, st->text);
			break;
		case STAGE_JSON:
			buf_puts(out, " | json");
			break;
		case STAGE_LOGFMT:
			buf_puts(out, " | logfmt");
			break;
		case STAGE_FIELD:
			buf_printf(out, " | %s %s ", st->text, cmps[st->cmp]);
			if (st->numeric)
				buf_puts(out, st->value);
			else
				put_quoted(out, st->value);
			break;
		}
	}
}

void logs_query_print(const struct logs_query *q, struct buf *out) {
	static const char *const rf[] = {"count_over_time", "rate", "bytes_over_time",
	                                 "bytes_rate"};
	static const char *const af[] = {"", "sum", "count", "avg", "min", "max"};
	if (!q->metric) {
		print_log(q, out);
		return;
	}
	if (q->agg != AGG_NONE) {
		buf_puts(out, af[q->agg]);
		if (q->nby || q->without) {
			buf_puts(out, q->without ? " without (" : " by (");
			for (size_t i = 0; i < q->nby; i++)
				buf_printf(out, "%s%s", i ? "," : "", q->by[i]);
			buf_puts(out, ") ");
		}
		buf_putc(out, '(');
	}
	char d[32];
	ward_fmt_duration(q->range_ns / 1000000, d);
	buf_printf(out, "%s(", rf[q->range_fn]);
	print_log(q, out);
	buf_printf(out, " [%s])", d);
	if (q->agg != AGG_NONE)
		buf_putc(out, ')');
}

/* ---- the pipeline ---- */

static bool re_search(void *re, const char *s, size_t n) {
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		abort();
	int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

static bool field_ok(const struct logs_stage *st, const char *v) {
	if (!v)
		v = "";
	if (st->numeric) {
		double x;
		if (num_or_dur(v, &x) != 0) /* "250ms" and "1.5s" compare as seconds */
			return st->cmp == CMP_NEQ;
		switch (st->cmp) {
		case CMP_EQ:
			return x == st->num;
		case CMP_NEQ:
			return x != st->num;
		case CMP_GT:
			return x > st->num;
		case CMP_GE:
			return x >= st->num;
		case CMP_LT:
			return x < st->num;
		case CMP_LE:
			return x <= st->num;
		default:
			return false;
		}
	}
	switch (st->cmp) {
	case CMP_EQ:
		return strcmp(v, st->value) == 0;
	case CMP_NEQ:
		return strcmp(v, st->value) != 0;
	case CMP_RE:
		return re_search(st->re, v, strlen(v));
	case CMP_NRE:
		return !re_search(st->re, v, strlen(v));
	default:
		return false;
	}
}

bool logs_pipeline_run(const struct logs_query *q, const struct labels *stream, const char *line,
                       size_t len, struct logs_fields *fields, struct labels *labels_out,
                       bool *has_fields) {
	logs_fields_reset(fields);
	bool parsed = false;
	for (size_t i = 0; i < q->nstages; i++) {
		const struct logs_stage *st = &q->stages[i];
		switch (st->kind) {
		case STAGE_LINE_CONTAINS:
			if (!memmem(line, len, st->text, strlen(st->text)))
				return false;
			break;
		case STAGE_LINE_NCONTAINS:
			if (memmem(line, len, st->text, strlen(st->text)))
				return false;
			break;
		case STAGE_LINE_RE:
			if (!re_search(st->re, line, len))
				return false;
			break;
		case STAGE_LINE_NRE:
			if (re_search(st->re, line, len))
				return false;
			break;
		case STAGE_JSON:
			(void)logs_parse_json(line, len, fields);
			parsed = true;
			break;
		case STAGE_LOGFMT:
			(void)logs_parse_logfmt(line, len, fields);
			parsed = true;
			break;
		case STAGE_FIELD: {
			const char *v = logs_fields_get(fields, st->text);
			if (!v)
				v = labels_get(stream, st->text);
			if (!field_ok(st, v))
				return false;
			break;
		}
		}
	}
	if (has_fields)
		*has_fields = parsed;
	if (labels_out) {
		labels_copy(labels_out, stream);
		for (size_t i = 0; parsed && i < fields->n; i++) {
			const char *name = fields->v[i].name;
			if (labels_get(stream,
			               name)) { /* Loki's rule for a clash with a stream label */
				struct buf nb = BUF_INIT;
				buf_printf(&nb, "%s_extracted", name);
				labels_set(labels_out, buf_cstr(&nb), fields->v[i].value);
				buf_free(&nb);
			} else {
				labels_set(labels_out, name, fields->v[i].value);
			}
		}
	}
	return true;
}
