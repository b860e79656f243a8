/* template.c: the Go text/template subset Prometheus uses in alert labels and annotations:
 * text, {{ pipeline }}, trim markers, comments, variables, if/else if/else, range, with,
 * pipelines, parentheses, fields (.Labels.x, $labels.x), literals; Prometheus' functions
 * (humanize*, printf, toUpper, toLower, title, reReplaceAll, query, first, value, label,
 * sortByLabel, match, ...) and Go's builtins (eq ne lt le gt ge and or not len index).
 * Invariant: every value lives in the per-expansion arena, freed at the end of
 * alert_tmpl_expand; errors carry line:col in the template. Called by eval.c (labels and
 * annotations per alert) and rules.c (parse checks).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "alert/alert.h"

/* printf formats below are built from a template's own format string, checked verb by verb */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

#define TMPL_MAX_DEPTH 64        /* nesting of actions and parentheses */
#define TMPL_MAX_OUTPUT (1 << 20) /* a template never writes more than 1 MiB */
#define TMPL_MAX_STEPS 1000000   /* range iterations + commands, against runaway input */
#define TMPL_MAX_WIDTH 1000      /* printf widths and precisions */

/* ---- arena ---- */
struct arena_blk {
	struct arena_blk *next;
	max_align_t data[];
};
struct arena {
	struct arena_blk *head;
};
static void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b = ward_xcalloc(1, sizeof(*b) + n + 1);
	b->next = a->head;
	a->head = b;
	return b->data;
}
static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}
static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_blk *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}

/* ---- values ---- */
enum vk { V_NIL, V_STR, V_INT, V_FLOAT, V_BOOL, V_MAP, V_SAMPLES, V_SAMPLE, V_DATA, V_LIST };
struct sample {
	const struct labels *labels;
	double v;
};
struct val {
	enum vk k;
	const char *s;
	size_t slen;
	int64_t i;
	double f;
	bool b;
	const struct labels *map;
	struct sample *smp; /* V_SAMPLES: nsmp of them; V_SAMPLE: one */
	size_t nsmp;
	struct val *list; /* V_LIST (args) */
	size_t nlist;
};

/* ---- lexer / parser ---- */
enum nk {
	N_LIST, N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH, N_PIPE, N_CMD, N_FIELD, N_VAR, N_IDENT,
	N_STR, N_NUM, N_BOOL, N_NIL, N_DOT
};
struct node {
	enum nk k;
	int line, col;
	const char *s; /* text, identifier, variable name, string value */
	size_t slen;
	const char **fields; /* field chain after a var, dot, or parenthesised pipe */
	size_t nfields;
	bool isint;
	int64_t i;
	double f;
	bool b;
	struct node **kids; /* list items; pipe commands; cmd args */
	size_t nkids;
	struct node *pipe, *list, *elselist;
	const char *decl[2]; /* pipe: declared variables */
	size_t ndecl;
	bool assign; /* pipe: "=" rather than ":=" */
	struct node *sub;  /* N_PIPE inside parentheses for a cmd arg with fields */
};

struct tctx {
	const char *name;
	const char *s;
	size_t n, pos;
	struct arena a;
	struct ward_err *err;
	bool failed;
	int depth;
	/* execution */
	const struct alert_tmpl_data *d;
	struct buf *out;
	struct { const char *name; struct val v; } vars[256];
	size_t nvars;
	long steps;
};

static void pos_of(const struct tctx *t, size_t off, int *line, int *col)
{
	int l = 1, c = 1;
	for (size_t i = 0; i < off && i < t->n; i++) {
		if (t->s[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static void fail_at(struct tctx *t, int line, int col, const char *fmt, ...) WARD_PRINTF(4, 5);
static void fail_at(struct tctx *t, int line, int col, const char *fmt, ...)
{
	if (t->failed)
		return;
	t->failed = true;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ward_err_set(t->err, "template: %s:%d:%d: %s", t->name, line, col, msg);
}

static void fail_off(struct tctx *t, size_t off, const char *what)
{
	int l, c;
	pos_of(t, off, &l, &c);
	fail_at(t, l, c, "%s", what);
}

static struct node *node_new(struct tctx *t, enum nk k, size_t off)
{
	struct node *nd = arena_alloc(&t->a, sizeof(*nd));
	memset(nd, 0, sizeof(*nd));
	nd->k = k;
	pos_of(t, off, &nd->line, &nd->col);
	return nd;
}

static void node_add(struct tctx *t, struct node *parent, struct node *kid)
{
	struct node **nk = arena_alloc(&t->a, (parent->nkids + 1) * sizeof(*nk));
	if (parent->nkids)
		memcpy(nk, parent->kids, parent->nkids * sizeof(*nk));
	nk[parent->nkids++] = kid;
	parent->kids = nk;
}

/* Token kinds inside an action. */
enum tk { T_EOF, T_CLOSE, T_IDENT, T_VAR, T_FIELD, T_STR, T_NUM, T_LPAREN, T_RPAREN, T_PIPE,
	  T_DECLARE, T_ASSIGN, T_COMMA, T_DOT, T_ERR };
struct tok {
	enum tk k;
	size_t off;
	const char *s; /* start in source */
	size_t len;
	char *str; /* decoded string literal */
	size_t slen;
};

/* Position of the action's closing delimiter; set by the text scanner. */
static bool at_close(struct tctx *t, size_t *after)
{
	size_t p = t->pos;
	while (p < t->n && (t->s[p] == ' ' || t->s[p] == '\t' || t->s[p] == '\n' || t->s[p] == '\r'))
		p++;
	if ((p > t->pos || (p > 0 && isspace((unsigned char)t->s[p - 1]))) && p + 3 <= t->n &&
	    t->s[p] == '-' && t->s[p + 1] == '}' &&
	    t->s[p + 2] == '}') {
		*after = p + 3;
		/* trim following whitespace */
		while (*after < t->n && isspace((unsigned char)t->s[*after]))
			(*after)++;
		return true;
	}
	if (p + 2 <= t->n && t->s[p] == '}' && t->s[p + 1] == '}') {
		*after = p + 2;
		return true;
	}
	return false;
}

static struct tok lex(struct tctx *t)
{
	struct tok k = {0};
	size_t after;
	while (t->pos < t->n && (t->s[t->pos] == ' ' || t->s[t->pos] == '\t' ||
				 t->s[t->pos] == '\n' || t->s[t->pos] == '\r'))
		t->pos++;
	k.off = t->pos;
	k.s = t->s + t->pos;
	if (t->pos >= t->n) {
		k.k = T_EOF;
		return k;
	}
	if (at_close(t, &after)) {
		k.k = T_CLOSE;
		t->pos = after;
		return k;
	}
	char c = t->s[t->pos];
	if (c == '(' || c == ')' || c == '|' || c == ',') {
		k.k = c == '(' ? T_LPAREN : c == ')' ? T_RPAREN : c == '|' ? T_PIPE : T_COMMA;
		t->pos++;
		k.len = 1;
		return k;
	}
	if (c == ':' && t->pos + 1 < t->n && t->s[t->pos + 1] == '=') {
		k.k = T_DECLARE;
		t->pos += 2;
		return k;
	}
	if (c == '=') {
		k.k = T_ASSIGN;
		t->pos++;
		return k;
	}
	if (c == '"' || c == '`') {
		struct buf b = BUF_INIT;
		size_t p = t->pos + 1;
		bool ok = false;
		while (p < t->n) {
			char d = t->s[p];
			if (d == c) {
				ok = true;
				p++;
				break;
			}
			if (c == '"' && d == '\n')
				break;
			if (c == '"' && d == '\\' && p + 1 < t->n) {
				char e = t->s[p + 1];
				switch (e) {
				case 'n': buf_putc(&b, '\n'); break;
				case 't': buf_putc(&b, '\t'); break;
				case 'r': buf_putc(&b, '\r'); break;
				case '\\': buf_putc(&b, '\\'); break;
				case '"': buf_putc(&b, '"'); break;
				case '\'': buf_putc(&b, '\''); break;
				default:
					buf_free(&b);
					fail_off(t, p, "invalid escape sequence in string");
					k.k = T_ERR;
					return k;
				}
				p += 2;
				continue;
			}
			buf_putc(&b, d);
			p++;
		}
		if (!ok) {
			buf_free(&b);
			fail_off(t, t->pos, "unterminated quoted string");
			k.k = T_ERR;
			return k;
		}
		k.k = T_STR;
		k.str = arena_strndup(&t->a, b.data ? b.data : "", b.len);
		k.slen = b.len;
		buf_free(&b);
		t->pos = p;
		return k;
	}
	if (c == '$') {
		size_t p = t->pos + 1;
		while (p < t->n && (isalnum((unsigned char)t->s[p]) || t->s[p] == '_'))
			p++;
		k.k = T_VAR;
		k.len = p - t->pos;
		t->pos = p;
		return k;
	}
	if (c == '.') {
		size_t p = t->pos + 1;
		if (p < t->n && isdigit((unsigned char)t->s[p]))
			goto number;
		while (p < t->n && (isalnum((unsigned char)t->s[p]) || t->s[p] == '_'))
			p++;
		k.k = p == t->pos + 1 ? T_DOT : T_FIELD;
		k.s = t->s + t->pos + 1;
		k.len = p - t->pos - 1;
		t->pos = p;
		return k;
	}
	if (isdigit((unsigned char)c) || c == '-' || c == '+') {
number:;
		size_t p = t->pos;
		if (t->s[p] == '-' || t->s[p] == '+')
			p++;
		while (p < t->n && (isalnum((unsigned char)t->s[p]) || t->s[p] == '.' ||
				    ((t->s[p] == '-' || t->s[p] == '+') &&
				     (t->s[p - 1] == 'e' || t->s[p - 1] == 'E'))))
			p++;
		k.k = T_NUM;
		k.len = p - t->pos;
		t->pos = p;
		return k;
	}
	if (isalpha((unsigned char)c) || c == '_') {
		size_t p = t->pos;
		while (p < t->n && (isalnum((unsigned char)t->s[p]) || t->s[p] == '_'))
			p++;
		k.k = T_IDENT;
		k.len = p - t->pos;
		t->pos = p;
		return k;
	}
	fail_off(t, t->pos, "unexpected character in action");
	k.k = T_ERR;
	return k;
}

static struct tok peek(struct tctx *t)
{
	size_t save = t->pos;
	struct tok k = lex(t);
	t->pos = save;
	return k;
}

static bool tok_is(const struct tok *k, const char *word)
{
	return k->k == T_IDENT && k->len == strlen(word) && memcmp(k->s, word, k->len) == 0;
}

/* Field chain directly following (".a.b" with no space). */
static void parse_fields(struct tctx *t, struct node *nd)
{
	while (t->pos < t->n && t->s[t->pos] == '.' && t->pos + 1 < t->n &&
	       (isalpha((unsigned char)t->s[t->pos + 1]) || t->s[t->pos + 1] == '_')) {
		size_t p = t->pos + 1;
		while (p < t->n && (isalnum((unsigned char)t->s[p]) || t->s[p] == '_'))
			p++;
		const char **f = arena_alloc(&t->a, (nd->nfields + 1) * sizeof(*f));
		if (nd->nfields)
			memcpy(f, nd->fields, nd->nfields * sizeof(*f));
		f[nd->nfields++] = arena_strndup(&t->a, t->s + t->pos + 1, p - t->pos - 1);
		nd->fields = f;
		t->pos = p;
	}
}

static struct node *parse_pipe(struct tctx *t, bool in_paren, bool allow_decl);

static struct node *parse_operand(struct tctx *t, struct tok k)
{
	struct node *nd;
	switch (k.k) {
	case T_VAR:
		nd = node_new(t, N_VAR, k.off);
		nd->s = arena_strndup(&t->a, k.s, k.len);
		parse_fields(t, nd);
		return nd;
	case T_FIELD:
		nd = node_new(t, N_FIELD, k.off);
		{
			const char **f = arena_alloc(&t->a, sizeof(*f));
			f[0] = arena_strndup(&t->a, k.s, k.len);
			nd->fields = f;
			nd->nfields = 1;
		}
		parse_fields(t, nd);
		return nd;
	case T_DOT:
		return node_new(t, N_DOT, k.off);
	case T_STR:
		nd = node_new(t, N_STR, k.off);
		nd->s = k.str;
		nd->slen = k.slen;
		return nd;
	case T_NUM: {
		nd = node_new(t, N_NUM, k.off);
		char tmp[64];
		if (k.len >= sizeof(tmp)) {
			fail_off(t, k.off, "number too long");
			return NULL;
		}
		memcpy(tmp, k.s, k.len);
		tmp[k.len] = 0;
		char *end;
		long long iv = strtoll(tmp, &end, 0);
		if (*end == 0) {
			nd->isint = true;
			nd->i = iv;
			nd->f = (double)iv;
			return nd;
		}
		nd->f = strtod(tmp, &end);
		if (*end != 0) {
			fail_off(t, k.off, "bad number syntax");
			return NULL;
		}
		return nd;
	}
	case T_LPAREN: {
		struct node *p = parse_pipe(t, true, false);
		if (!p)
			return NULL;
		nd = node_new(t, N_PIPE, k.off);
		nd->sub = p;
		parse_fields(t, nd);
		return nd;
	}
	case T_IDENT:
		if (tok_is(&k, "true") || tok_is(&k, "false")) {
			nd = node_new(t, N_BOOL, k.off);
			nd->b = tok_is(&k, "true");
			return nd;
		}
		if (tok_is(&k, "nil"))
			return node_new(t, N_NIL, k.off);
		nd = node_new(t, N_IDENT, k.off);
		nd->s = arena_strndup(&t->a, k.s, k.len);
		return nd;
	default:
		fail_off(t, k.off, "unexpected token in operand");
		return NULL;
	}
}

/* pipeline := [decl] command ('|' command)*; ends at }} (or ')' when in_paren). */
static struct node *parse_pipe(struct tctx *t, bool in_paren, bool allow_decl)
{
	if (++t->depth > TMPL_MAX_DEPTH) {
		fail_off(t, t->pos, "template nested too deeply");
		return NULL;
	}
	struct node *p = node_new(t, N_PIPE, t->pos);
	if (allow_decl) {
		size_t save = t->pos;
		struct tok a = lex(t);
		if (a.k == T_VAR) {
			struct tok b = lex(t);
			if (b.k == T_COMMA) {
				struct tok c = lex(t);
				struct tok d = lex(t);
				if (c.k == T_VAR && d.k == T_DECLARE) {
					p->decl[0] = arena_strndup(&t->a, a.s, a.len);
					p->decl[1] = arena_strndup(&t->a, c.s, c.len);
					p->ndecl = 2;
				} else {
					fail_off(t, c.off, "expected $var := after ','");
					return NULL;
				}
			} else if (b.k == T_DECLARE || b.k == T_ASSIGN) {
				p->decl[0] = arena_strndup(&t->a, a.s, a.len);
				p->ndecl = 1;
				p->assign = b.k == T_ASSIGN;
			} else {
				t->pos = save;
			}
		} else {
			t->pos = save;
		}
	}
	struct node *cmd = node_new(t, N_CMD, t->pos);
	for (;;) {
		if (t->failed)
			return NULL;
		struct tok k = lex(t);
		if (k.k == T_ERR)
			return NULL;
		if ((k.k == T_CLOSE && !in_paren) || (k.k == T_RPAREN && in_paren)) {
			if (cmd->nkids == 0) {
				fail_off(t, k.off, p->nkids ? "missing command after '|'"
							   : "missing value for command");
				return NULL;
			}
			node_add(t, p, cmd);
			break;
		}
		if (k.k == T_EOF || k.k == T_CLOSE || k.k == T_RPAREN) {
			fail_off(t, k.off, in_paren ? "unclosed left paren" : "unclosed action");
			return NULL;
		}
		if (k.k == T_PIPE) {
			if (cmd->nkids == 0) {
				fail_off(t, k.off, "missing command before '|'");
				return NULL;
			}
			node_add(t, p, cmd);
			cmd = node_new(t, N_CMD, t->pos);
			continue;
		}
		struct node *op = parse_operand(t, k);
		if (!op)
			return NULL;
		node_add(t, cmd, op);
	}
	t->depth--;
	return p;
}

/* list := (text | action)* until {{end}} / {{else}} (returned through *stop). */
static struct node *parse_list(struct tctx *t, const char **stop, size_t *stop_off);

/* At "{{": consumes the delimiter (and trims preceding text when "{{-"); returns the
 * action keyword or NULL for a plain pipeline. */
static struct node *parse_list(struct tctx *t, const char **stop, size_t *stop_off)
{
	struct node *list = node_new(t, N_LIST, t->pos);
	*stop = NULL;
	if (++t->depth > TMPL_MAX_DEPTH) {
		fail_off(t, t->pos, "template nested too deeply");
		return NULL;
	}
	while (t->pos < t->n && !t->failed) {
		const char *open = NULL;
		for (size_t p = t->pos; p + 1 < t->n; p++)
			if (t->s[p] == '{' && t->s[p + 1] == '{') {
				open = t->s + p;
				break;
			}
		size_t tend = open ? (size_t)(open - t->s) : t->n;
		bool trim_left = open && tend + 2 < t->n && t->s[tend + 2] == '-' &&
				 tend + 3 < t->n && isspace((unsigned char)t->s[tend + 3]);
		size_t text_end = tend;
		if (trim_left)
			while (text_end > t->pos && isspace((unsigned char)t->s[text_end - 1]))
				text_end--;
		if (text_end > t->pos) {
			struct node *tx = node_new(t, N_TEXT, t->pos);
			tx->s = t->s + t->pos;
			tx->slen = text_end - t->pos;
			node_add(t, list, tx);
		}
		if (!open) {
			t->pos = t->n;
			break;
		}
		size_t aoff = tend;
		t->pos = tend + 2 + (trim_left ? 1 : 0);
		/* comment */
		size_t q = t->pos;
		while (q < t->n && isspace((unsigned char)t->s[q]) && trim_left)
			q++;
		if (q + 1 < t->n && t->s[q] == '/' && t->s[q + 1] == '*') {
			const char *endc = NULL;
			for (size_t p = q + 2; p + 1 < t->n; p++)
				if (t->s[p] == '*' && t->s[p + 1] == '/') {
					endc = t->s + p;
					break;
				}
			if (!endc) {
				fail_off(t, q, "unclosed comment");
				return NULL;
			}
			t->pos = (size_t)(endc - t->s) + 2;
			size_t after;
			if (!at_close(t, &after)) {
				fail_off(t, t->pos, "comment ends before closing delimiter");
				return NULL;
			}
			t->pos = after;
			continue;
		}
		struct tok kw = peek(t);
		if (tok_is(&kw, "end") || tok_is(&kw, "else")) {
			lex(t);
			*stop = tok_is(&kw, "end") ? "end" : "else";
			*stop_off = aoff;
			if (tok_is(&kw, "end")) {
				struct tok c = lex(t);
				if (c.k != T_CLOSE) {
					fail_off(t, c.off, "unexpected token in end");
					return NULL;
				}
			}
			t->depth--;
			return list;
		}
		if (tok_is(&kw, "if") || tok_is(&kw, "range") || tok_is(&kw, "with")) {
			lex(t);
			struct node *ctl = node_new(t, tok_is(&kw, "if")	  ? N_IF
						       : tok_is(&kw, "range") ? N_RANGE
									      : N_WITH,
						    aoff);
			ctl->pipe = parse_pipe(t, false, true);
			if (!ctl->pipe)
				return NULL;
			const char *st;
			size_t soff;
			ctl->list = parse_list(t, &st, &soff);
			if (!ctl->list)
				return NULL;
			if (!st) {
				fail_off(t, aoff, "unexpected EOF: missing {{end}}");
				return NULL;
			}
			if (strcmp(st, "else") == 0) {
				/* "else if ..." chains as a nested if inside the else list */
				struct tok k2 = peek(t);
				if (ctl->k == N_IF && tok_is(&k2, "if")) {
					lex(t);
					struct node *elif = node_new(t, N_IF, soff);
					elif->pipe = parse_pipe(t, false, true);
					if (!elif->pipe)
						return NULL;
					/* the rest (including the final end) belongs to elif */
					elif->list = parse_list(t, &st, &soff);
					if (!elif->list)
						return NULL;
					struct node *cur = elif;
					while (st && strcmp(st, "else") == 0) {
						struct tok k3 = peek(t);
						if (tok_is(&k3, "if")) {
							lex(t);
							struct node *e2 = node_new(t, N_IF, soff);
							e2->pipe = parse_pipe(t, false, true);
							if (!e2->pipe)
								return NULL;
							e2->list = parse_list(t, &st, &soff);
							if (!e2->list)
								return NULL;
							cur->elselist = node_new(t, N_LIST, soff);
							node_add(t, cur->elselist, e2);
							cur = e2;
							continue;
						}
						struct tok c = lex(t);
						if (c.k != T_CLOSE) {
							fail_off(t, c.off, "unexpected token in else");
							return NULL;
						}
						cur->elselist = parse_list(t, &st, &soff);
						if (!cur->elselist)
							return NULL;
						if (!st || strcmp(st, "end") != 0) {
							fail_off(t, soff, "expected {{end}}");
							return NULL;
						}
						break;
					}
					if (!st) {
						fail_off(t, aoff, "unexpected EOF: missing {{end}}");
						return NULL;
					}
					ctl->elselist = node_new(t, N_LIST, soff);
					node_add(t, ctl->elselist, elif);
				} else {
					struct tok c = lex(t);
					if (c.k != T_CLOSE) {
						fail_off(t, c.off, "unexpected token in else");
						return NULL;
					}
					ctl->elselist = parse_list(t, &st, &soff);
					if (!ctl->elselist)
						return NULL;
					if (!st || strcmp(st, "end") != 0) {
						fail_off(t, aoff, "unexpected EOF: missing {{end}}");
						return NULL;
					}
				}
			}
			node_add(t, list, ctl);
			continue;
		}
		if (tok_is(&kw, "define") || tok_is(&kw, "template") || tok_is(&kw, "block") ||
		    tok_is(&kw, "break") || tok_is(&kw, "continue")) {
			fail_off(t, kw.off, "this action is not supported in ward's templates");
			return NULL;
		}
		struct node *act = node_new(t, N_ACTION, aoff);
		act->pipe = parse_pipe(t, false, true);
		if (!act->pipe)
			return NULL;
		node_add(t, list, act);
	}
	t->depth--;
	return t->failed ? NULL : list;
}

static struct node *parse_all(struct tctx *t)
{
	const char *stop;
	size_t soff = 0;
	struct node *root = parse_list(t, &stop, &soff);
	if (!root)
		return NULL;
	if (stop) {
		fail_off(t, soff, stop[0] == 'e' && stop[1] == 'n' ? "unexpected {{end}}"
								      : "unexpected {{else}}");
		return NULL;
	}
	return root;
}

/* ---- printing values as Go's fmt does ---- */

/* Go's %v of a float64 is strconv's shortest 'g' (exponent form when exp < -4 or >= 6,
 * NaN, +Inf, -0), which is what buf_put_double writes. */
static void go_float(struct buf *b, double v)
{
	buf_put_double(b, v);
}

/* Go's %.Ng-style formatting through C, with Go's NaN/Inf spelling and exponent form. */
static void go_fmt_c(struct buf *b, const char *cfmt, double v)
{
	if (isnan(v)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	buf_printf(b, cfmt, v);
}

static void print_map(struct buf *b, const struct labels *m)
{
	buf_puts(b, "map[");
	for (size_t i = 0; m && i < m->n; i++)
		buf_printf(b, "%s%s:%s", i ? " " : "", m->v[i].name, m->v[i].value);
	buf_putc(b, ']');
}

static void print_val(struct buf *b, const struct val *v)
{
	switch (v->k) {
	case V_NIL: buf_puts(b, "<no value>"); break;
	case V_STR: buf_append(b, v->s, v->slen); break;
	case V_INT: buf_printf(b, "%lld", (long long)v->i); break;
	case V_FLOAT: go_float(b, v->f); break;
	case V_BOOL: buf_puts(b, v->b ? "true" : "false"); break;
	case V_MAP: print_map(b, v->map); break;
	case V_SAMPLE:
		buf_puts(b, "{");
		print_map(b, v->smp[0].labels);
		buf_putc(b, ' ');
		go_float(b, v->smp[0].v);
		buf_puts(b, "}");
		break;
	case V_SAMPLES:
		buf_putc(b, '[');
		for (size_t i = 0; i < v->nsmp; i++) {
			if (i)
				buf_putc(b, ' ');
			buf_puts(b, "{");
			print_map(b, v->smp[i].labels);
			buf_putc(b, ' ');
			go_float(b, v->smp[i].v);
			buf_puts(b, "}");
		}
		buf_putc(b, ']');
		break;
	case V_DATA: buf_puts(b, "{...}"); break;
	case V_LIST:
		buf_putc(b, '[');
		for (size_t i = 0; i < v->nlist; i++) {
			if (i)
				buf_putc(b, ' ');
			print_val(b, &v->list[i]);
		}
		buf_putc(b, ']');
		break;
	}
}

static const char *kind_name(enum vk k)
{
	static const char *const names[] = {"nil",	   "string",	  "int",
					    "float64",	   "bool",	  "map[string]string",
					    "queryResult", "*sample",	  "*template.Data",
					    "[]interface {}"};
	return names[k];
}

static struct val vstr(struct tctx *t, const char *s, size_t n)
{
	struct val v = {.k = V_STR};
	v.s = arena_strndup(&t->a, s, n);
	v.slen = n;
	return v;
}

static struct val vbuf(struct tctx *t, struct buf *b)
{
	struct val v = vstr(t, b->data ? b->data : "", b->len);
	buf_free(b);
	return v;
}

static struct val vfloat(double f)
{
	return (struct val){.k = V_FLOAT, .f = f};
}

static bool truth(const struct val *v)
{
	switch (v->k) {
	case V_NIL: return false;
	case V_STR: return v->slen > 0;
	case V_INT: return v->i != 0;
	case V_FLOAT: return v->f != 0;
	case V_BOOL: return v->b;
	case V_MAP: return v->map && v->map->n > 0;
	case V_SAMPLES: return v->nsmp > 0;
	case V_LIST: return v->nlist > 0;
	default: return true;
	}
}

/* Prometheus' convertToFloat: numbers, and strings parsed as floats. */
static int to_float(struct tctx *t, const struct node *at, const char *fn, const struct val *v,
		    double *out)
{
	switch (v->k) {
	case V_FLOAT: *out = v->f; return 0;
	case V_INT: *out = (double)v->i; return 0;
	case V_STR: {
		char *end;
		char *tmp = arena_strndup(&t->a, v->s, v->slen);
		*out = strtod(tmp, &end);
		if (v->slen == 0 || *end) {
			fail_at(t, at->line, at->col,
				"error calling %s: strconv.ParseFloat: parsing \"%s\": invalid syntax",
				fn, tmp);
			return -1;
		}
		return 0;
	}
	default:
		fail_at(t, at->line, at->col, "error calling %s: can't convert %s to float", fn,
			kind_name(v->k));
		return -1;
	}
}

static void go_g4(struct buf *b, double v)
{
	go_fmt_c(b, "%.4g", v);
}

static void humanize(struct buf *b, double v)
{
	static const char *const big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
	static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
	const char *prefix = "";
	if (v == 0 || isnan(v) || isinf(v)) {
		go_g4(b, v);
		return;
	}
	if (fabs(v) >= 1) {
		for (size_t i = 0; i < 8; i++) {
			if (fabs(v) < 1000)
				break;
			prefix = big[i];
			v /= 1000;
		}
	} else {
		for (size_t i = 0; i < 8; i++) {
			if (fabs(v) >= 1)
				break;
			prefix = small[i];
			v *= 1000;
		}
	}
	go_g4(b, v);
	buf_puts(b, prefix);
}

static void humanize1024(struct buf *b, double v)
{
	static const char *const big[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
	const char *prefix = "";
	if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
		go_g4(b, v);
		return;
	}
	for (size_t i = 0; i < 8; i++) {
		if (fabs(v) < 1024)
			break;
		prefix = big[i];
		v /= 1024;
	}
	go_g4(b, v);
	buf_puts(b, prefix);
}

static void humanize_duration(struct buf *b, double v)
{
	static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
	if (isnan(v) || isinf(v)) {
		go_g4(b, v);
		return;
	}
	if (v == 0) {
		go_g4(b, v);
		buf_putc(b, 's');
		return;
	}
	if (fabs(v) >= 1) {
		const char *sign = "";
		if (v < 0) {
			sign = "-";
			v = -v;
		}
		int64_t d = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
		int64_t sec = d % 60, min = (d / 60) % 60, hours = (d / 3600) % 24, days = d / 86400;
		if (days)
			buf_printf(b, "%s%lldd %lldh %lldm %llds", sign, (long long)days,
				   (long long)hours, (long long)min, (long long)sec);
		else if (hours)
			buf_printf(b, "%s%lldh %lldm %llds", sign, (long long)hours, (long long)min,
				   (long long)sec);
		else if (min)
			buf_printf(b, "%s%lldm %llds", sign, (long long)min, (long long)sec);
		else {
			buf_puts(b, sign);
			go_g4(b, v);
			buf_putc(b, 's');
		}
		return;
	}
	const char *prefix = "";
	for (size_t i = 0; i < 8; i++) {
		if (fabs(v) >= 1)
			break;
		prefix = small[i];
		v *= 1000;
	}
	go_g4(b, v);
	buf_printf(b, "%ss", prefix);
}

/* Go's time.Time.String() of a UTC time with millisecond precision. */
static int humanize_ts(struct tctx *t, const struct node *at, struct buf *b, double v)
{
	if (isnan(v) || isinf(v)) {
		go_g4(b, v);
		return 0;
	}
	double ns = v * 1e9;
	if (ns > 9.2e18 || ns < -9.2e18) {
		fail_at(t, at->line, at->col,
			"error calling humanizeTimestamp: %g cannot be represented as a nanoseconds "
			"timestamp since it overflows int64",
			v);
		return -1;
	}
	int64_t ms = (int64_t)ns / 1000000;
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t frac = ms - secs * 1000;
	time_t tt = (time_t)secs;
	struct tm tm;
	gmtime_r(&tt, &tm);
	buf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (frac) {
		char f[24];
		snprintf(f, sizeof(f), "%03lld", (long long)frac);
		size_t l = strlen(f);
		while (l > 0 && f[l - 1] == '0')
			l--;
		buf_putc(b, '.');
		buf_append(b, f, l);
	}
	buf_puts(b, " +0000 UTC");
	return 0;
}

/* Go's fmt.Sprintf for the verbs templates use: %s %v %d %f %e %g %q %x %t %%. */
static void go_printf(struct buf *b, const char *f, size_t fn, const struct val *args,
		      size_t nargs)
{
	size_t ai = 0;
	for (size_t i = 0; i < fn; i++) {
		if (f[i] != '%') {
			buf_putc(b, f[i]);
			continue;
		}
		size_t st = i++;
		while (i < fn && strchr("+-# 0", f[i]))
			i++;
		while (i < fn && (isdigit((unsigned char)f[i]) || f[i] == '.'))
			i++;
		if (i >= fn) {
			buf_puts(b, "%!(NOVERB)");
			break;
		}
		char verb = f[i];
		/* a width or precision past TMPL_MAX_WIDTH would only make a huge string */
		bool too_wide = false;
		long num = 0;
		for (size_t k = st + 1; k < i; k++) {
			if (!isdigit((unsigned char)f[k])) {
				num = 0;
				continue;
			}
			num = num * 10 + (f[k] - '0');
			if (num > TMPL_MAX_WIDTH)
				too_wide = true;
			if (num > TMPL_MAX_WIDTH)
				num = TMPL_MAX_WIDTH + 1;
		}
		if (too_wide) {
			buf_puts(b, "%!(BADWIDTH)");
			continue;
		}
		if (verb == '%') {
			buf_putc(b, '%');
			continue;
		}
		char spec[32];
		size_t sl = i - st;
		if (sl > 20)
			sl = 20;
		memcpy(spec, f + st, sl);
		spec[sl] = 0;
		if (ai >= nargs) {
			buf_printf(b, "%%!%c(MISSING)", verb);
			continue;
		}
		const struct val *a = &args[ai++];
		char cf[40];
		switch (verb) {
		case 'v':
		case 's':
			if (verb == 's' && a->k != V_STR && a->k != V_MAP && a->k != V_LIST) {
				if (a->k == V_FLOAT || a->k == V_INT || a->k == V_BOOL) {
					buf_printf(b, "%%!s(%s=", kind_name(a->k));
					print_val(b, a);
					buf_putc(b, ')');
					break;
				}
			}
			{
				struct buf tmp = BUF_INIT;
				print_val(&tmp, a);
				snprintf(cf, sizeof(cf), "%ss", spec);
				buf_printf(b, cf, buf_cstr(&tmp));
				buf_free(&tmp);
			}
			break;
		case 'q': {
			struct buf tmp = BUF_INIT;
			print_val(&tmp, a);
			buf_json_str(b, tmp.data ? tmp.data : "", tmp.len);
			buf_free(&tmp);
			break;
		}
		case 'd':
		case 'x':
		case 'X':
		case 'o':
			if (a->k == V_INT) {
				snprintf(cf, sizeof(cf), "%sll%c", spec, verb);
				buf_printf(b, cf, (long long)a->i);
			} else if (a->k == V_STR && (verb == 'x' || verb == 'X')) {
				for (size_t k = 0; k < a->slen; k++)
					buf_printf(b, verb == 'x' ? "%02x" : "%02X",
						   (unsigned char)a->s[k]);
			} else {
				buf_printf(b, "%%!%c(%s=", verb, kind_name(a->k));
				print_val(b, a);
				buf_putc(b, ')');
			}
			break;
		case 'f':
		case 'F':
		case 'e':
		case 'E':
		case 'g':
		case 'G':
			if (a->k == V_FLOAT || a->k == V_INT) {
				double d = a->k == V_FLOAT ? a->f : (double)a->i;
				if (a->k == V_INT) {
					buf_printf(b, "%%!%c(int=%lld)", verb, (long long)a->i);
					break;
				}
				snprintf(cf, sizeof(cf), "%s%c", spec, verb);
				go_fmt_c(b, cf, d);
			} else {
				buf_printf(b, "%%!%c(%s=", verb, kind_name(a->k));
				print_val(b, a);
				buf_putc(b, ')');
			}
			break;
		case 't':
			if (a->k == V_BOOL)
				buf_puts(b, a->b ? "true" : "false");
			else
				buf_printf(b, "%%!t(%s)", kind_name(a->k));
			break;
		default:
			buf_printf(b, "%%!%c(%s=", verb, kind_name(a->k));
			print_val(b, a);
			buf_putc(b, ')');
		}
	}
	if (ai < nargs) {
		buf_puts(b, "%!(EXTRA ");
		for (size_t k = ai; k < nargs; k++) {
			buf_printf(b, "%s%s=", k > ai ? ", " : "", kind_name(args[k].k));
			print_val(b, &args[k]);
		}
		buf_putc(b, ')');
	}
}

/* ---- execution ---- */
static int exec_pipe(struct tctx *t, const struct node *p, const struct val *dot, struct val *out);

static int var_get(struct tctx *t, const struct node *at, const char *name, struct val *out)
{
	for (size_t i = t->nvars; i-- > 0;)
		if (strcmp(t->vars[i].name, name) == 0) {
			*out = t->vars[i].v;
			return 0;
		}
	fail_at(t, at->line, at->col, "undefined variable \"%s\"", name);
	return -1;
}

static int var_push(struct tctx *t, const struct node *at, const char *name, const struct val *v)
{
	if (t->nvars >= sizeof(t->vars) / sizeof(t->vars[0])) {
		fail_at(t, at->line, at->col, "too many variables");
		return -1;
	}
	t->vars[t->nvars].name = name;
	t->vars[t->nvars].v = *v;
	t->nvars++;
	return 0;
}

static const struct labels empty_labels;

static int field_of(struct tctx *t, const struct node *at, const struct val *in, const char *f,
		    struct val *out)
{
	switch (in->k) {
	case V_MAP: {
		const char *v = labels_get(in->map, f);
		*out = vstr(t, v ? v : "", v ? strlen(v) : 0); /* missingkey=zero */
		return 0;
	}
	case V_DATA:
		if (strcmp(f, "Labels") == 0) {
			*out = (struct val){.k = V_MAP,
					    .map = t->d->labels ? t->d->labels : &empty_labels};
			return 0;
		}
		if (strcmp(f, "ExternalLabels") == 0) {
			*out = (struct val){.k = V_MAP, .map = t->d->external_labels
								   ? t->d->external_labels
								   : &empty_labels};
			return 0;
		}
		if (strcmp(f, "ExternalURL") == 0) {
			const char *u = t->d->external_url ? t->d->external_url : "";
			*out = vstr(t, u, strlen(u));
			return 0;
		}
		if (strcmp(f, "Value") == 0) {
			*out = vfloat(t->d->value);
			return 0;
		}
		break;
	case V_SAMPLE:
		if (strcmp(f, "Labels") == 0) {
			*out = (struct val){.k = V_MAP, .map = in->smp[0].labels};
			return 0;
		}
		if (strcmp(f, "Value") == 0) {
			*out = vfloat(in->smp[0].v);
			return 0;
		}
		break;
	case V_NIL:
		fail_at(t, at->line, at->col, "nil pointer evaluating interface {}.%s", f);
		return -1;
	default:
		break;
	}
	fail_at(t, at->line, at->col, "can't evaluate field %s in type %s", f, kind_name(in->k));
	return -1;
}

static int apply_fields(struct tctx *t, const struct node *nd, struct val *v)
{
	for (size_t i = 0; i < nd->nfields; i++) {
		struct val o;
		if (field_of(t, nd, v, nd->fields[i], &o) != 0)
			return -1;
		*v = o;
	}
	return 0;
}

static int run_query(struct tctx *t, const struct node *at, const struct val *q, struct val *out)
{
	struct ward_err e;
	ward_err_clear(&e);
	if (q->k != V_STR) {
		fail_at(t, at->line, at->col, "error calling query: wrong type for value; expected "
					      "string; got %s", kind_name(q->k));
		return -1;
	}
	if (!t->d->st) {
		fail_at(t, at->line, at->col, "error calling query: no storage to query");
		return -1;
	}
	struct promql_expr *x = promql_parse(q->s, q->slen, &e);
	if (!x) {
		fail_at(t, at->line, at->col, "error calling query: %s", e.msg);
		return -1;
	}
	struct promql_opts o;
	if (t->d->qopts)
		o = *t->d->qopts;
	else
		promql_opts_default(&o);
	struct promql_result r = {0};
	enum promql_errtype et;
	int rc = promql_eval_instant(t->d->st, x, t->d->t_ms, &o, &r, &et, &e);
	promql_expr_free(x);
	if (rc != 0) {
		fail_at(t, at->line, at->col, "error calling query: %s", e.msg);
		return -1;
	}
	*out = (struct val){.k = V_SAMPLES};
	if (r.type == PROMQL_SCALAR) {
		out->smp = arena_alloc(&t->a, sizeof(struct sample));
		out->smp[0].labels = &empty_labels;
		out->smp[0].v = r.scalar;
		out->nsmp = 1;
	} else if (r.type == PROMQL_VECTOR) {
		out->smp = arena_alloc(&t->a, (r.nseries + 1) * sizeof(struct sample));
		for (size_t i = 0; i < r.nseries; i++) {
			struct labels *ls = arena_alloc(&t->a, sizeof(*ls));
			ls->n = r.series[i].labels.n;
			ls->v = arena_alloc(&t->a, (ls->n + 1) * sizeof(struct label));
			for (size_t j = 0; j < ls->n; j++) {
				const struct label *l = &r.series[i].labels.v[j];
				ls->v[j].name = arena_strndup(&t->a, l->name, strlen(l->name));
				ls->v[j].value = arena_strndup(&t->a, l->value, strlen(l->value));
			}
			out->smp[i].labels = ls;
			out->smp[i].v = r.series[i].n ? r.series[i].v[0] : NAN;
		}
		out->nsmp = r.nseries;
	} else {
		promql_result_free(&r);
		fail_at(t, at->line, at->col, "error calling query: query result is not a vector "
					      "or scalar");
		return -1;
	}
	promql_result_free(&r);
	return 0;
}

static int cmp_vals(struct tctx *t, const struct node *at, const char *fn, const struct val *a,
		    const struct val *b, int *out)
{
	if ((a->k == V_INT || a->k == V_FLOAT) && (b->k == V_INT || b->k == V_FLOAT)) {
		double x = a->k == V_INT ? (double)a->i : a->f;
		double y = b->k == V_INT ? (double)b->i : b->f;
		*out = x < y ? -1 : x > y ? 1 : 0;
		if (isnan(x) || isnan(y))
			*out = 2; /* unordered */
		return 0;
	}
	if (a->k == V_STR && b->k == V_STR) {
		size_t m = a->slen < b->slen ? a->slen : b->slen;
		int c = memcmp(a->s, b->s, m);
		*out = c ? (c < 0 ? -1 : 1) : a->slen < b->slen ? -1 : a->slen > b->slen;
		return 0;
	}
	if (a->k == V_BOOL && b->k == V_BOOL && (!strcmp(fn, "eq") || !strcmp(fn, "ne"))) {
		*out = a->b != b->b;
		return 0;
	}
	fail_at(t, at->line, at->col, "error calling %s: incompatible types for comparison", fn);
	return -1;
}

static int need_args(struct tctx *t, const struct node *at, const char *fn, size_t got,
		     size_t want)
{
	if (got == want)
		return 0;
	fail_at(t, at->line, at->col, "wrong number of args for %s: want %zu got %zu", fn, want, got);
	return -1;
}

static int want_str(struct tctx *t, const struct node *at, const char *fn, const struct val *v)
{
	if (v->k == V_STR)
		return 0;
	fail_at(t, at->line, at->col, "error calling %s: wrong type for value; expected string; "
				      "got %s", fn, kind_name(v->k));
	return -1;
}

static int call_fn(struct tctx *t, const struct node *at, const char *fn, struct val *a,
		   size_t na, struct val *out)
{
	struct buf b = BUF_INIT;
	double d;
	if (!strcmp(fn, "humanize") || !strcmp(fn, "humanize1024") ||
	    !strcmp(fn, "humanizeDuration") || !strcmp(fn, "humanizePercentage") ||
	    !strcmp(fn, "humanizeTimestamp")) {
		if (need_args(t, at, fn, na, 1) || to_float(t, at, fn, &a[0], &d))
			return -1;
		if (!strcmp(fn, "humanize"))
			humanize(&b, d);
		else if (!strcmp(fn, "humanize1024"))
			humanize1024(&b, d);
		else if (!strcmp(fn, "humanizeDuration"))
			humanize_duration(&b, d);
		else if (!strcmp(fn, "humanizePercentage")) {
			go_g4(&b, d * 100);
			buf_putc(&b, '%');
		} else if (humanize_ts(t, at, &b, d)) {
			buf_free(&b);
			return -1;
		}
		*out = vbuf(t, &b);
		return 0;
	}
	if (!strcmp(fn, "printf") || !strcmp(fn, "print") || !strcmp(fn, "println")) {
		if (!strcmp(fn, "printf")) {
			if (na < 1) {
				fail_at(t, at->line, at->col, "wrong number of args for printf: want "
							      "at least 1 got 0");
				return -1;
			}
			if (want_str(t, at, fn, &a[0]))
				return -1;
			go_printf(&b, a[0].s, a[0].slen, a + 1, na - 1);
		} else {
			for (size_t i = 0; i < na; i++) {
				if (i && (!strcmp(fn, "println") ||
					  (a[i].k != V_STR && a[i - 1].k != V_STR)))
					buf_putc(&b, ' ');
				print_val(&b, &a[i]);
			}
			if (!strcmp(fn, "println"))
				buf_putc(&b, '\n');
		}
		*out = vbuf(t, &b);
		return 0;
	}
	if (!strcmp(fn, "toUpper") || !strcmp(fn, "toLower") || !strcmp(fn, "title")) {
		if (need_args(t, at, fn, na, 1) || want_str(t, at, fn, &a[0]))
			return -1;
		char *s = arena_strndup(&t->a, a[0].s, a[0].slen);
		bool word_start = true;
		for (size_t i = 0; i < a[0].slen; i++) {
			unsigned char c = (unsigned char)s[i];
			if (!strcmp(fn, "toUpper"))
				s[i] = (char)toupper(c);
			else if (!strcmp(fn, "toLower"))
				s[i] = (char)tolower(c);
			else {
				/* strings.Title: letters after a separator start a word */
				bool letter = isalnum(c) || c == '_' || c == '\'' || c >= 0x80;
				if (letter && word_start)
					s[i] = (char)toupper(c);
				word_start = !letter;
			}
		}
		*out = (struct val){.k = V_STR, .s = s, .slen = a[0].slen};
		return 0;
	}
	if (!strcmp(fn, "reReplaceAll")) {
		if (need_args(t, at, fn, na, 3) || want_str(t, at, fn, &a[0]) ||
		    want_str(t, at, fn, &a[1]) || want_str(t, at, fn, &a[2]))
			return -1;
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)a[0].s, a[0].slen, PCRE2_UTF, &ec, &eo,
					       NULL);
		if (!re) {
			PCRE2_UCHAR m[256];
			pcre2_get_error_message(ec, m, sizeof(m));
			fail_at(t, at->line, at->col, "error calling reReplaceAll: error parsing "
						      "regexp: %s at offset %zu", (char *)m, (size_t)eo);
			return -1;
		}
		size_t cap = a[2].slen * 2 + a[1].slen * 4 + 64;
		for (int tries = 0; tries < 8; tries++) {
			PCRE2_UCHAR *o = arena_alloc(&t->a, cap + 1);
			PCRE2_SIZE ol = cap;
			int rc = pcre2_substitute(re, (PCRE2_SPTR)a[2].s, a[2].slen, 0,
						  PCRE2_SUBSTITUTE_GLOBAL |
							  PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
							  PCRE2_SUBSTITUTE_UNKNOWN_UNSET |
							  PCRE2_SUBSTITUTE_UNSET_EMPTY,
						  NULL, NULL, (PCRE2_SPTR)a[1].s, a[1].slen, o, &ol);
			if (rc == PCRE2_ERROR_NOMEMORY && ol > cap && ol < TMPL_MAX_OUTPUT) {
				cap = ol;
				continue;
			}
			if (rc < 0) {
				pcre2_code_free(re);
				PCRE2_UCHAR m[256];
				pcre2_get_error_message(rc, m, sizeof(m));
				fail_at(t, at->line, at->col, "error calling reReplaceAll: %s",
					(char *)m);
				return -1;
			}
			pcre2_code_free(re);
			*out = (struct val){.k = V_STR, .s = (char *)o, .slen = ol};
			((char *)o)[ol] = 0;
			return 0;
		}
		pcre2_code_free(re);
		fail_at(t, at->line, at->col, "error calling reReplaceAll: result too large");
		return -1;
	}
	if (!strcmp(fn, "match")) {
		if (need_args(t, at, fn, na, 2) || want_str(t, at, fn, &a[0]) ||
		    want_str(t, at, fn, &a[1]))
			return -1;
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)a[0].s, a[0].slen, PCRE2_UTF, &ec, &eo,
					       NULL);
		if (!re) {
			fail_at(t, at->line, at->col, "error calling match: error parsing regexp");
			return -1;
		}
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
		int rc = pcre2_match(re, (PCRE2_SPTR)a[1].s, a[1].slen, 0, 0, md, NULL);
		pcre2_match_data_free(md);
		pcre2_code_free(re);
		*out = (struct val){.k = V_BOOL, .b = rc >= 0};
		return 0;
	}
	if (!strcmp(fn, "query")) {
		if (need_args(t, at, fn, na, 1))
			return -1;
		return run_query(t, at, &a[0], out);
	}
	if (!strcmp(fn, "first")) {
		if (need_args(t, at, fn, na, 1))
			return -1;
		if (a[0].k != V_SAMPLES) {
			fail_at(t, at->line, at->col, "error calling first: wrong type for value; "
						      "expected queryResult; got %s", kind_name(a[0].k));
			return -1;
		}
		if (a[0].nsmp == 0) {
			fail_at(t, at->line, at->col, "error calling first: first() called on "
						      "vector with no elements");
			return -1;
		}
		*out = (struct val){.k = V_SAMPLE, .smp = a[0].smp, .nsmp = 1};
		return 0;
	}
	if (!strcmp(fn, "value") || !strcmp(fn, "label") || !strcmp(fn, "strvalue")) {
		size_t want = !strcmp(fn, "label") ? 2 : 1;
		if (need_args(t, at, fn, na, want))
			return -1;
		const struct val *s = &a[want - 1];
		if (s->k != V_SAMPLE) {
			fail_at(t, at->line, at->col, "error calling %s: wrong type for value; expected "
						      "*template.sample; got %s", fn, kind_name(s->k));
			return -1;
		}
		if (!strcmp(fn, "value")) {
			*out = vfloat(s->smp[0].v);
			return 0;
		}
		const char *name = "__value__";
		if (want == 2) {
			if (want_str(t, at, fn, &a[0]))
				return -1;
			name = arena_strndup(&t->a, a[0].s, a[0].slen);
		}
		const char *v = labels_get(s->smp[0].labels, name);
		*out = vstr(t, v ? v : "", v ? strlen(v) : 0);
		return 0;
	}
	if (!strcmp(fn, "sortByLabel")) {
		if (need_args(t, at, fn, na, 2) || want_str(t, at, fn, &a[0]))
			return -1;
		if (a[1].k != V_SAMPLES) {
			fail_at(t, at->line, at->col, "error calling sortByLabel: expected queryResult");
			return -1;
		}
		struct sample *v = arena_alloc(&t->a, (a[1].nsmp + 1) * sizeof(*v));
		if (a[1].nsmp)
			memcpy(v, a[1].smp, a[1].nsmp * sizeof(*v));
		const char *name = arena_strndup(&t->a, a[0].s, a[0].slen);
		for (size_t i = 1; i < a[1].nsmp; i++) /* stable insertion sort */
			for (size_t j = i; j > 0; j--) {
				const char *x = labels_get(v[j - 1].labels, name);
				const char *y = labels_get(v[j].labels, name);
				if (strcmp(x ? x : "", y ? y : "") <= 0)
					break;
				struct sample tmp = v[j];
				v[j] = v[j - 1];
				v[j - 1] = tmp;
			}
		*out = (struct val){.k = V_SAMPLES, .smp = v, .nsmp = a[1].nsmp};
		return 0;
	}
	if (!strcmp(fn, "externalURL") || !strcmp(fn, "pathPrefix")) {
		const char *u = t->d->external_url ? t->d->external_url : "";
		*out = vstr(t, u, strlen(u));
		return 0;
	}
	if (!strcmp(fn, "safeHtml") || !strcmp(fn, "stripPort")) {
		if (need_args(t, at, fn, na, 1) || want_str(t, at, fn, &a[0]))
			return -1;
		*out = a[0];
		if (!strcmp(fn, "stripPort")) {
			const char *c = memrchr(a[0].s, ':', a[0].slen);
			if (c && !memchr(a[0].s, ']', a[0].slen))
				out->slen = (size_t)(c - a[0].s);
			*out = vstr(t, a[0].s, out->slen);
		}
		return 0;
	}
	if (!strcmp(fn, "args")) {
		struct val *l = arena_alloc(&t->a, (na + 1) * sizeof(*l));
		if (na)
			memcpy(l, a, na * sizeof(*l));
		*out = (struct val){.k = V_LIST, .list = l, .nlist = na};
		return 0;
	}
	if (!strcmp(fn, "not")) {
		if (need_args(t, at, fn, na, 1))
			return -1;
		*out = (struct val){.k = V_BOOL, .b = !truth(&a[0])};
		return 0;
	}
	if (!strcmp(fn, "and") || !strcmp(fn, "or")) {
		if (na < 1) {
			fail_at(t, at->line, at->col, "wrong number of args for %s", fn);
			return -1;
		}
		bool isand = !strcmp(fn, "and");
		for (size_t i = 0; i < na; i++)
			if (truth(&a[i]) != isand || i + 1 == na) {
				*out = a[i];
				return 0;
			}
		return 0;
	}
	if (!strcmp(fn, "len")) {
		if (need_args(t, at, fn, na, 1))
			return -1;
		int64_t n = a[0].k == V_STR ? (int64_t)a[0].slen
			    : a[0].k == V_MAP ? (int64_t)a[0].map->n
			    : a[0].k == V_SAMPLES ? (int64_t)a[0].nsmp
			    : a[0].k == V_LIST ? (int64_t)a[0].nlist
					       : -1;
		if (n < 0) {
			fail_at(t, at->line, at->col, "error calling len: len of type %s",
				kind_name(a[0].k));
			return -1;
		}
		*out = (struct val){.k = V_INT, .i = n};
		return 0;
	}
	if (!strcmp(fn, "index")) {
		if (na != 2) {
			fail_at(t, at->line, at->col, "wrong number of args for index: want 2");
			return -1;
		}
		if (a[0].k == V_MAP && a[1].k == V_STR) {
			char *k = arena_strndup(&t->a, a[1].s, a[1].slen);
			const char *v = labels_get(a[0].map, k);
			*out = vstr(t, v ? v : "", v ? strlen(v) : 0);
			return 0;
		}
		if ((a[0].k == V_SAMPLES || a[0].k == V_LIST) && a[1].k == V_INT) {
			size_t n = a[0].k == V_SAMPLES ? a[0].nsmp : a[0].nlist;
			if (a[1].i < 0 || (size_t)a[1].i >= n) {
				fail_at(t, at->line, at->col, "error calling index: index out of "
							      "range: %lld", (long long)a[1].i);
				return -1;
			}
			if (a[0].k == V_LIST)
				*out = a[0].list[a[1].i];
			else
				*out = (struct val){.k = V_SAMPLE, .smp = &a[0].smp[a[1].i], .nsmp = 1};
			return 0;
		}
		fail_at(t, at->line, at->col, "error calling index: can't index item of type %s",
			kind_name(a[0].k));
		return -1;
	}
	if (!strcmp(fn, "eq") || !strcmp(fn, "ne") || !strcmp(fn, "lt") || !strcmp(fn, "le") ||
	    !strcmp(fn, "gt") || !strcmp(fn, "ge")) {
		if (na < 2) {
			fail_at(t, at->line, at->col, "error calling %s: missing argument for comparison",
				fn);
			return -1;
		}
		bool r = false;
		if (!strcmp(fn, "eq")) {
			for (size_t i = 1; i < na && !r; i++) {
				int c;
				if (cmp_vals(t, at, fn, &a[0], &a[i], &c))
					return -1;
				r = c == 0;
			}
		} else {
			if (need_args(t, at, fn, na, 2))
				return -1;
			int c;
			if (cmp_vals(t, at, fn, &a[0], &a[1], &c))
				return -1;
			r = !strcmp(fn, "ne") ? c != 0
			    : c == 2	      ? false
			    : !strcmp(fn, "lt") ? c < 0
			    : !strcmp(fn, "le") ? c <= 0
			    : !strcmp(fn, "gt") ? c > 0
						: c >= 0;
		}
		*out = (struct val){.k = V_BOOL, .b = r};
		return 0;
	}
	fail_at(t, at->line, at->col, "function \"%s\" not defined", fn);
	return -1;
}

static int eval_arg(struct tctx *t, const struct node *nd, const struct val *dot, struct val *out)
{
	switch (nd->k) {
	case N_VAR:
		if (var_get(t, nd, nd->s, out))
			return -1;
		return apply_fields(t, nd, out);
	case N_FIELD:
		*out = *dot;
		return apply_fields(t, nd, out);
	case N_DOT: *out = *dot; return 0;
	case N_STR: *out = (struct val){.k = V_STR, .s = nd->s, .slen = nd->slen}; return 0;
	case N_NUM:
		*out = nd->isint ? (struct val){.k = V_INT, .i = nd->i} : vfloat(nd->f);
		return 0;
	case N_BOOL: *out = (struct val){.k = V_BOOL, .b = nd->b}; return 0;
	case N_NIL: *out = (struct val){.k = V_NIL}; return 0;
	case N_PIPE:
		if (exec_pipe(t, nd->sub, dot, out))
			return -1;
		return apply_fields(t, nd, out);
	case N_IDENT: {
		/* a function used as an argument without parentheses: call with no args */
		return call_fn(t, nd, nd->s, NULL, 0, out);
	}
	default:
		fail_at(t, nd->line, nd->col, "can't evaluate this operand");
		return -1;
	}
}

static int exec_cmd(struct tctx *t, const struct node *cmd, const struct val *dot,
		    const struct val *piped, struct val *out)
{
	if (++t->steps > TMPL_MAX_STEPS) {
		fail_at(t, cmd->line, cmd->col, "template too expensive to execute");
		return -1;
	}
	const struct node *first = cmd->kids[0];
	if (first->k == N_IDENT) {
		size_t na = cmd->nkids - 1 + (piped ? 1 : 0);
		struct val *args = arena_alloc(&t->a, (na + 1) * sizeof(*args));
		for (size_t i = 1; i < cmd->nkids; i++)
			if (eval_arg(t, cmd->kids[i], dot, &args[i - 1]))
				return -1;
		if (piped)
			args[na - 1] = *piped;
		return call_fn(t, first, first->s, args, na, out);
	}
	if (cmd->nkids > 1 || piped) {
		fail_at(t, first->line, first->col, "can't give argument to non-function");
		return -1;
	}
	return eval_arg(t, first, dot, out);
}

static int exec_pipe(struct tctx *t, const struct node *p, const struct val *dot, struct val *out)
{
	struct val cur = {.k = V_NIL};
	for (size_t i = 0; i < p->nkids; i++) {
		struct val o;
		if (exec_cmd(t, p->kids[i], dot, i ? &cur : NULL, &o))
			return -1;
		cur = o;
	}
	if (p->ndecl == 1) {
		if (p->assign) {
			for (size_t i = t->nvars; i-- > 0;)
				if (strcmp(t->vars[i].name, p->decl[0]) == 0) {
					t->vars[i].v = cur;
					*out = cur;
					return 0;
				}
			fail_at(t, p->line, p->col, "undefined variable \"%s\"", p->decl[0]);
			return -1;
		}
		if (var_push(t, p, p->decl[0], &cur))
			return -1;
	}
	*out = cur;
	return 0;
}

static int exec_list(struct tctx *t, const struct node *list, const struct val *dot);

static int exec_node(struct tctx *t, const struct node *nd, const struct val *dot)
{
	if (t->out->len > TMPL_MAX_OUTPUT) {
		fail_at(t, nd->line, nd->col, "template output too large");
		return -1;
	}
	size_t mark = t->nvars;
	int rc = 0;
	struct val v;
	switch (nd->k) {
	case N_TEXT: buf_append(t->out, nd->s, nd->slen); return 0;
	case N_ACTION:
		if (exec_pipe(t, nd->pipe, dot, &v))
			return -1;
		if (nd->pipe->ndecl == 0)
			print_val(t->out, &v);
		return 0; /* declared variables stay in scope to the end of the enclosing list */
	case N_IF:
	case N_WITH:
		if (nd->pipe->ndecl == 2) {
			fail_at(t, nd->line, nd->col, "too many declarations in %s",
				nd->k == N_IF ? "if" : "with");
			return -1;
		}
		if (exec_pipe(t, nd->pipe, dot, &v))
			return -1;
		if (truth(&v))
			rc = exec_list(t, nd->list, nd->k == N_WITH ? &v : dot);
		else if (nd->elselist)
			rc = exec_list(t, nd->elselist, dot);
		break;
	case N_RANGE: {
		struct node pp = *nd->pipe;
		pp.ndecl = 0;
		if (exec_pipe(t, &pp, dot, &v))
			return -1;
		size_t n = v.k == V_SAMPLES ? v.nsmp
			   : v.k == V_MAP   ? v.map->n
			   : v.k == V_LIST  ? v.nlist
			   : v.k == V_INT   ? (size_t)(v.i > 0 ? v.i : 0)
					    : SIZE_MAX;
		if (v.k == V_NIL)
			n = 0;
		if (n == SIZE_MAX) {
			fail_at(t, nd->line, nd->col, "range can't iterate over %s", kind_name(v.k));
			return -1;
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (++t->steps > TMPL_MAX_STEPS) {
				fail_at(t, nd->line, nd->col, "template too expensive to execute");
				return -1;
			}
			struct val key = {.k = V_INT, .i = (int64_t)i}, elem;
			if (v.k == V_SAMPLES)
				elem = (struct val){.k = V_SAMPLE, .smp = &v.smp[i], .nsmp = 1};
			else if (v.k == V_MAP) {
				key = vstr(t, v.map->v[i].name, strlen(v.map->v[i].name));
				elem = vstr(t, v.map->v[i].value, strlen(v.map->v[i].value));
			} else if (v.k == V_LIST)
				elem = v.list[i];
			else
				elem = key;
			size_t m2 = t->nvars;
			if (nd->pipe->ndecl == 1 && var_push(t, nd, nd->pipe->decl[0], &elem))
				return -1;
			if (nd->pipe->ndecl == 2 && (var_push(t, nd, nd->pipe->decl[0], &key) ||
						     var_push(t, nd, nd->pipe->decl[1], &elem)))
				return -1;
			rc = exec_list(t, nd->list, &elem);
			t->nvars = m2;
		}
		if (n == 0 && nd->elselist)
			rc = exec_list(t, nd->elselist, dot);
		break;
	}
	default:
		break;
	}
	t->nvars = mark;
	return rc;
}

static int exec_list(struct tctx *t, const struct node *list, const struct val *dot)
{
	size_t mark = t->nvars;
	for (size_t i = 0; i < list->nkids; i++)
		if (exec_node(t, list->kids[i], dot)) {
			t->nvars = mark;
			return -1;
		}
	t->nvars = mark;
	return 0;
}

static bool has_action(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '{' && s[i + 1] == '{')
			return true;
	return false;
}

int alert_tmpl_check(const char *name, const char *s, size_t n, struct ward_err *err)
{
	if (!has_action(s, n))
		return 0;
	struct tctx t = {.name = name, .s = s, .n = n, .err = err};
	struct node *root = parse_all(&t);
	arena_free(&t.a);
	return root ? 0 : -1;
}

int alert_tmpl_expand(const char *name, const char *s, size_t n, const struct alert_tmpl_data *d,
		      struct buf *out, struct ward_err *err)
{
	if (!has_action(s, n)) {
		buf_append(out, s, n);
		return 0;
	}
	struct tctx t = {.name = name, .s = s, .n = n, .err = err, .d = d, .out = out};
	int rc = -1;
	struct node *root = parse_all(&t);
	if (!root)
		goto out;
	struct val data = {.k = V_DATA};
	struct val lv = {.k = V_MAP, .map = d->labels ? d->labels : &empty_labels};
	struct val ev = {.k = V_MAP, .map = d->external_labels ? d->external_labels : &empty_labels};
	const char *u = d->external_url ? d->external_url : "";
	struct val uv = {.k = V_STR, .s = u, .slen = strlen(u)};
	struct val vv = vfloat(d->value);
	var_push(&t, root, "$", &data);
	var_push(&t, root, "$labels", &lv);
	var_push(&t, root, "$externalLabels", &ev);
	var_push(&t, root, "$externalURL", &uv);
	var_push(&t, root, "$value", &vv);
	rc = exec_list(&t, root, &data);
out:
	arena_free(&t.a);
	return rc;
}
