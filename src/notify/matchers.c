/* matchers.c: label matchers in Alertmanager's text syntax (`severity="critical"`,
 * `job=~"api.*"`, `{a="b",c!=d}`), as routes, inhibit rules, silences, maintenance
 * windows, escalation policies and API filters write them.
 *
 * Parsers take pointer + length and never read past it; errors name the offset. Regexes
 * are anchored (base's matcher_init does that).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "notify/notify_internal.h"

static bool name_start(char c) {
	return isalpha((unsigned char)c) || c == '_';
}
static bool name_char(char c) {
	return isalnum((unsigned char)c) || c == '_';
}

/* Parses one matcher starting at *pos; stops after it (before a ',' or '}'). */
static int parse_one(const char *s, size_t n, size_t *pos, struct matcher *out,
                     struct ward_err *err) {
	size_t i = *pos;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	size_t ns = i;
	if (i < n && s[i] == '"') {
		/* quoted names are allowed by newer Alertmanagers; keep it simple: no escapes */
		ns = ++i;
		while (i < n && s[i] != '"')
			i++;
		if (i >= n) {
			ward_err_set(err, "offset %zu: unterminated quoted label name", ns);
			return -1;
		}
	} else {
		if (i >= n || !name_start(s[i])) {
			ward_err_set(err, "offset %zu: expected a label name (letters, digits, _)",
			             i);
			return -1;
		}
		while (i < n && name_char(s[i]))
			i++;
	}
	size_t ne = i;
	if (i < n && s[i] == '"')
		i++;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	enum matcher_op op;
	if (i + 1 < n && s[i] == '=' && s[i + 1] == '~') {
		op = MATCH_RE;
		i += 2;
	} else if (i + 1 < n && s[i] == '!' && s[i + 1] == '=') {
		op = MATCH_NEQ;
		i += 2;
	} else if (i + 1 < n && s[i] == '!' && s[i + 1] == '~') {
		op = MATCH_NRE;
		i += 2;
	} else if (i < n && s[i] == '=') {
		op = MATCH_EQ;
		i += 1;
	} else {
		ward_err_set(err, "offset %zu: expected one of = != =~ !~ after the label name", i);
		return -1;
	}
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	struct buf val = BUF_INIT;
	if (i < n && (s[i] == '"' || s[i] == '\'')) {
		char q = s[i++];
		bool closed = false;
		while (i < n) {
			char c = s[i++];
			if (c == q) {
				closed = true;
				break;
			}
			if (c == '\\' && i < n) {
				char e = s[i++];
				buf_putc(&val, e == 'n' ? '\n' : e == 't' ? '\t' : e);
				continue;
			}
			buf_putc(&val, c);
		}
		if (!closed) {
			buf_free(&val);
			ward_err_set(err, "offset %zu: unterminated quoted value", i);
			return -1;
		}
	} else {
		size_t vs = i;
		while (i < n && s[i] != ',' && s[i] != '}')
			i++;
		size_t ve = i;
		while (ve > vs && isspace((unsigned char)s[ve - 1]))
			ve--;
		buf_append(&val, s + vs, ve - vs);
	}
	char *name = ward_strndup(s + ns, ne - ns);
	int rc = matcher_init(out, op, name, buf_cstr(&val), err);
	free(name);
	buf_free(&val);
	if (rc != 0)
		return -1;
	*pos = i;
	return 0;
}

int notify_matcher_parse(const char *s, size_t n, struct matcher *out, struct ward_err *err) {
	return nfy_matcher_parse(s, n, out, err);
}

int nfy_matcher_parse(const char *s, size_t n, struct matcher *out, struct ward_err *err) {
	size_t pos = 0;
	if (parse_one(s, n, &pos, out, err) != 0)
		return -1;
	while (pos < n && isspace((unsigned char)s[pos]))
		pos++;
	if (pos != n) {
		matcher_free(out);
		ward_err_set(err, "offset %zu: unexpected text after the matcher", pos);
		return -1;
	}
	return 0;
}

int nfy_matchers_parse(const char *s, size_t n, struct nfy_matchers *out, struct ward_err *err) {
	size_t i = 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	bool braces = i < n && s[i] == '{';
	if (braces) {
		i++;
		while (n > i && isspace((unsigned char)s[n - 1]))
			n--;
		if (n <= i || s[n - 1] != '}') {
			ward_err_set(err, "offset %zu: missing closing '}'", n);
			return -1;
		}
		n--;
	}
	for (;;) {
		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i >= n)
			break;
		struct matcher m;
		if (parse_one(s, n, &i, &m, err) != 0)
			return -1;
		out->v = ward_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
		out->v[out->n++] = m;
		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i < n) {
			if (s[i] != ',') {
				ward_err_set(err, "offset %zu: expected ',' between matchers", i);
				return -1;
			}
			i++;
		}
	}
	return 0;
}

int nfy_matchers_parse_strv(char *const *strs, size_t n, struct nfy_matchers *out,
                            struct ward_err *err) {
	for (size_t i = 0; i < n; i++) {
		struct ward_err e;
		ward_err_clear(&e);
		if (nfy_matchers_parse(strs[i], strlen(strs[i]), out, &e) != 0) {
			ward_err_set(err, "matcher \"%s\": %s", strs[i], e.msg);
			return -1;
		}
	}
	return 0;
}

void nfy_matchers_free(struct nfy_matchers *m) {
	for (size_t i = 0; i < m->n; i++)
		matcher_free(&m->v[i]);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

bool nfy_matchers_match(const struct nfy_matchers *m, const struct labels *ls) {
	for (size_t i = 0; i < m->n; i++)
		if (!matcher_matches(&m->v[i], labels_get(ls, m->v[i].name)))
			return false;
	return true;
}

void nfy_matchers_write(struct buf *out, const struct nfy_matchers *m) {
	buf_putc(out, '{');
	for (size_t i = 0; i < m->n; i++) {
		if (i)
			buf_putc(out, ',');
		buf_puts(out, m->v[i].name);
		buf_puts(out, matcher_op_str(m->v[i].op));
		buf_json_str(out, m->v[i].value, strlen(m->v[i].value));
	}
	buf_putc(out, '}');
}
