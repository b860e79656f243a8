/* lex.c: the PromQL lexer: turns bytes (pointer + length, never NUL-trusted) into tokens.
 *
 * Tokens carry their byte offset so the parser reports "line L, char C" as Prometheus does.
 * Inside {...} every word is a label name (keywords are not special there). A number
 * directly followed by a unit letter is a duration ("5m", "1h30m"). Inf and NaN (any case)
 * are numbers. Strings use Go's quoting: "..." and '...' with escapes, `...` raw.
 * Called by parse.c and by memstore.c (series descriptions in load blocks).
 */
#include "promql/promql_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void promql_lex_init(struct lexer *lx, const char *s, size_t n) {
	memset(lx, 0, sizeof(*lx));
	lx->s = s;
	lx->n = n;
}

static bool is_ident_start(int c) {
	return isalpha(c) || c == '_' || c == ':';
}

static bool is_ident_char(int c) {
	return isalnum(c) || c == '_' || c == ':';
}

struct kw {
	const char *word;
	enum tok type;
};
static const struct kw keywords[] = {
        {"and", T_AND},
        {"or", T_OR},
        {"unless", T_UNLESS},
        {"atan2", T_ATAN2},
        {"by", T_BY},
        {"without", T_WITHOUT},
        {"on", T_ON},
        {"ignoring", T_IGNORING},
        {"group_left", T_GROUP_LEFT},
        {"group_right", T_GROUP_RIGHT},
        {"bool", T_BOOL},
        {"offset", T_OFFSET},
};

const char *promql_tok_name(enum tok t) {
	switch (t) {
	case T_EOF:
		return "end of input";
	case T_ERR:
		return "error";
	case T_IDENT:
		return "identifier";
	case T_NUM:
		return "number";
	case T_STR:
		return "string";
	case T_DUR:
		return "duration";
	case T_LPAREN:
		return "\"(\"";
	case T_RPAREN:
		return "\")\"";
	case T_LBRACE:
		return "\"{\"";
	case T_RBRACE:
		return "\"}\"";
	case T_LBRACK:
		return "\"[\"";
	case T_RBRACK:
		return "\"]\"";
	case T_COMMA:
		return "\",\"";
	case T_COLON:
		return "\":\"";
	case T_AT:
		return "\"@\"";
	case T_ASSIGN:
		return "\"=\"";
	case T_EQL_RE:
		return "\"=~\"";
	case T_NEQ_RE:
		return "\"!~\"";
	case T_BY:
		return "by";
	case T_WITHOUT:
		return "without";
	case T_ON:
		return "on";
	case T_IGNORING:
		return "ignoring";
	case T_GROUP_LEFT:
		return "group_left";
	case T_GROUP_RIGHT:
		return "group_right";
	case T_BOOL:
		return "bool";
	case T_OFFSET:
		return "offset";
	case T_START:
		return "start";
	case T_END:
		return "end";
	default:
		return promql_binop_str(t);
	}
}

bool promql_tok_is_binop(enum tok t) {
	return t >= T_ADD && t <= T_UNLESS;
}

int promql_parse_dur(const char *s, size_t n, int64_t *ms) {
	return ward_parse_duration(s, n, ms, NULL);
}

static void put_utf8(struct buf *b, uint32_t c) {
	if (c < 0x80) {
		buf_putc(b, (char)c);
	} else if (c < 0x800) {
		buf_putc(b, (char)(0xc0 | (c >> 6)));
		buf_putc(b, (char)(0x80 | (c & 0x3f)));
	} else if (c < 0x10000) {
		buf_putc(b, (char)(0xe0 | (c >> 12)));
		buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3f)));
		buf_putc(b, (char)(0x80 | (c & 0x3f)));
	} else {
		buf_putc(b, (char)(0xf0 | (c >> 18)));
		buf_putc(b, (char)(0x80 | ((c >> 12) & 0x3f)));
		buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3f)));
		buf_putc(b, (char)(0x80 | (c & 0x3f)));
	}
}


/* Scans a quoted string starting at lx->pos (the quote). */
static void lex_string(struct lexer *lx, struct token *t) {
	char q = lx->s[lx->pos];
	size_t i = lx->pos + 1;
	struct buf b = BUF_INIT;

	while (i < lx->n && lx->s[i] != q) {
		char c = lx->s[i];
		if (q == '`') {
			buf_putc(&b, c);
			i++;
			continue;
		}
		if (c == '\n') {
			t->errmsg = "unterminated quoted string";
			goto fail;
		}
		if (c != '\\') {
			buf_putc(&b, c);
			i++;
			continue;
		}
		i++;
		if (i >= lx->n)
			break;
		c = lx->s[i++];
		switch (c) {
		case 'a':
			buf_putc(&b, '\a');
			break;
		case 'b':
			buf_putc(&b, '\b');
			break;
		case 'f':
			buf_putc(&b, '\f');
			break;
		case 'n':
			buf_putc(&b, '\n');
			break;
		case 'r':
			buf_putc(&b, '\r');
			break;
		case 't':
			buf_putc(&b, '\t');
			break;
		case 'v':
			buf_putc(&b, '\v');
			break;
		case '\\':
			buf_putc(&b, '\\');
			break;
		case '\'':
		case '"':
			if (c != q) {
				t->errmsg = "unknown escape sequence";
				goto fail;
			}
			buf_putc(&b, c);
			break;
		case 'x':
		case 'u':
		case 'U': {
			int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8, k;
			uint32_t v = 0;
			for (k = 0; k < nd; k++) {
				int h = i < lx->n ? ward_hexval((unsigned char)lx->s[i]) : -1;
				if (h < 0) {
					t->errmsg = "invalid escape sequence";
					goto fail;
				}
				v = v * 16 + (uint32_t)h;
				i++;
			}
			if (c == 'x')
				buf_putc(&b, (char)v);
			else if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) {
				t->errmsg = "invalid Unicode code point in escape sequence";
				goto fail;
			} else
				put_utf8(&b, v);
			break;
		}
		default:
			if (c >= '0' && c <= '7') {
				uint32_t v = (uint32_t)(c - '0');
				int k;
				for (k = 0; k < 2; k++) {
					if (i >= lx->n || lx->s[i] < '0' || lx->s[i] > '7') {
						t->errmsg = "invalid escape sequence";
						goto fail;
					}
					v = v * 8 + (uint32_t)(lx->s[i++] - '0');
				}
				if (v > 255) {
					t->errmsg = "octal escape value > 255";
					goto fail;
				}
				buf_putc(&b, (char)v);
				break;
			}
			t->errmsg = "unknown escape sequence";
			goto fail;
		}
	}
	if (i >= lx->n) {
		t->errmsg = "unterminated quoted string";
		goto fail;
	}
	t->type = T_STR;
	t->len = i + 1 - lx->pos;
	t->str = buf_detach(&b);
	lx->pos = i + 1;
	return;
fail:
	buf_free(&b);
	t->type = T_ERR;
	t->len = i - lx->pos;
}

static bool is_unit(int c) {
	return c == 's' || c == 'm' || c == 'h' || c == 'd' || c == 'w' || c == 'y';
}

static void lex_number(struct lexer *lx, struct token *t) {
	size_t i = lx->pos, start = lx->pos;
	char tmp[128];
	char *end;

	if (lx->s[i] == '0' && i + 1 < lx->n && (lx->s[i + 1] == 'x' || lx->s[i + 1] == 'X')) {
		i += 2;
		while (i < lx->n && isxdigit((unsigned char)lx->s[i]))
			i++;
	} else {
		while (i < lx->n && (isdigit((unsigned char)lx->s[i]) || lx->s[i] == '.'))
			i++;
		/* a duration: digits followed by units, e.g. 1h30m, 500ms */
		if (i < lx->n && is_unit((unsigned char)lx->s[i]) &&
		    memchr(lx->s + start, '.', i - start) == NULL) {
			while (i < lx->n && (isdigit((unsigned char)lx->s[i]) ||
			                     is_unit((unsigned char)lx->s[i])))
				i++;
			if (i < lx->n && (isalnum((unsigned char)lx->s[i]) || lx->s[i] == '_'))
				goto bad;
			t->type = T_DUR;
			t->len = i - start;
			if (promql_parse_dur(lx->s + start, i - start, &t->dur_ms) < 0) {
				t->type = T_ERR;
				t->errmsg = "bad duration syntax";
				return;
			}
			lx->pos = i;
			return;
		}
		if (i < lx->n && (lx->s[i] == 'e' || lx->s[i] == 'E')) {
			size_t j = i + 1;
			if (j < lx->n && (lx->s[j] == '+' || lx->s[j] == '-'))
				j++;
			if (j < lx->n && isdigit((unsigned char)lx->s[j])) {
				while (j < lx->n && isdigit((unsigned char)lx->s[j]))
					j++;
				i = j;
			}
		}
	}
	if (i < lx->n && (isalnum((unsigned char)lx->s[i]) || lx->s[i] == '_'))
		goto bad;
	if (i - start >= sizeof(tmp))
		goto bad;
	memcpy(tmp, lx->s + start, i - start);
	tmp[i - start] = 0;
	t->num = strtod(tmp, &end);
	if (*end != 0 || end == tmp)
		goto bad;
	t->type = T_NUM;
	t->len = i - start;
	lx->pos = i;
	return;
bad:
	while (i < lx->n && is_ident_char((unsigned char)lx->s[i]))
		i++;
	t->type = T_ERR;
	t->errmsg = "bad number or duration syntax";
	t->len = i - start;
}

void promql_lex_next(struct lexer *lx, struct token *t) {
	memset(t, 0, sizeof(*t));
	for (;;) {
		while (lx->pos < lx->n && isspace((unsigned char)lx->s[lx->pos]))
			lx->pos++;
		if (lx->pos < lx->n && lx->s[lx->pos] == '#') {
			while (lx->pos < lx->n && lx->s[lx->pos] != '\n')
				lx->pos++;
			continue;
		}
		break;
	}
	t->pos = lx->pos;
	if (lx->pos >= lx->n) {
		t->type = T_EOF;
		return;
	}
	char c = lx->s[lx->pos];
	char d = lx->pos + 1 < lx->n ? lx->s[lx->pos + 1] : 0;
	t->len = 1;
	switch (c) {
	case '(':
		t->type = T_LPAREN;
		break;
	case ')':
		t->type = T_RPAREN;
		break;
	case '{':
		t->type = T_LBRACE;
		lx->brace_depth++;
		break;
	case '}':
		t->type = T_RBRACE;
		if (lx->brace_depth > 0)
			lx->brace_depth--;
		break;
	case '[':
		t->type = T_LBRACK;
		break;
	case ']':
		t->type = T_RBRACK;
		break;
	case ',':
		t->type = T_COMMA;
		break;
	case '@':
		t->type = T_AT;
		break;
	case '+':
		t->type = T_ADD;
		break;
	case '-':
		t->type = T_SUB;
		break;
	case '*':
		t->type = T_MUL;
		break;
	case '/':
		t->type = T_DIV;
		break;
	case '%':
		t->type = T_MOD;
		break;
	case '^':
		t->type = T_POW;
		break;
	case ':':
		if (lx->brace_depth == 0 && is_ident_start((unsigned char)d) && d != ':')
			goto ident;
		t->type = T_COLON;
		break;
	case '=':
		if (d == '=') {
			t->type = T_EQLC;
			t->len = 2;
		} else if (d == '~') {
			t->type = T_EQL_RE;
			t->len = 2;
		} else {
			t->type = T_ASSIGN;
		}
		break;
	case '!':
		if (d == '=') {
			t->type = T_NEQ;
			t->len = 2;
		} else if (d == '~') {
			t->type = T_NEQ_RE;
			t->len = 2;
		} else {
			t->type = T_ERR;
			t->errmsg = "unexpected character after '!'";
		}
		break;
	case '<':
		if (d == '=') {
			t->type = T_LTE;
			t->len = 2;
		} else {
			t->type = T_LSS;
		}
		break;
	case '>':
		if (d == '=') {
			t->type = T_GTE;
			t->len = 2;
		} else {
			t->type = T_GTR;
		}
		break;
	case '"':
	case '\'':
	case '`':
		lex_string(lx, t);
		return;
	default:
		if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)d))) {
			lex_number(lx, t);
			return;
		}
		if (is_ident_start((unsigned char)c))
			goto ident;
		t->type = T_ERR;
		t->errmsg = "unexpected character";
		return;
	}
	lx->pos += t->len;
	return;
ident : {
	size_t i = lx->pos, k;
	while (i < lx->n && is_ident_char((unsigned char)lx->s[i]))
		i++;
	t->len = i - lx->pos;
	t->type = T_IDENT;
	if (lx->brace_depth == 0) {
		for (k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
			if (strlen(keywords[k].word) == t->len &&
			    strncasecmp(keywords[k].word, lx->s + lx->pos, t->len) == 0) {
				t->type = keywords[k].type;
				break;
			}
		}
		if (t->type == T_IDENT &&
		    ((t->len == 3 && (strncasecmp(lx->s + lx->pos, "inf", 3) == 0 ||
		                      strncasecmp(lx->s + lx->pos, "nan", 3) == 0)))) {
			t->type = T_NUM;
			t->num = tolower((unsigned char)lx->s[lx->pos]) == 'i' ? INFINITY : NAN;
		}
	}
	if (t->type == T_IDENT)
		t->str = ward_strndup(lx->s + lx->pos, t->len);
	lx->pos = i;
}
}
