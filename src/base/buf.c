/* buf.c: struct buf, the one growable byte buffer, plus small string/alloc helpers.
 *
 * Invariants: after any buf_* call that touched memory, data[len] == '\0' and len < cap;
 * a zeroed buf is a valid empty buffer (data NULL). Allocation failure aborts: callers
 * never check. The JSON, logfmt and double writers here are the only ones in the tree,
 * so logs, the API and /metrics print values the same way.
 */
#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Smallest capacity worth allocating; keeps tiny appends from reallocating each time. */
#define BUF_MIN_CAP 64
/* Go's strconv picks exponent form at this exponent when printing shortest digits. */
#define GO_SHORTEST_EPREC 6

static void oom(void) {
	static const char msg[] = "ward: out of memory\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	abort();
}

void *ward_xmalloc(size_t n) {
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *ward_xcalloc(size_t n, size_t size) {
	void *p;

	if (size && n > SIZE_MAX / size)
		oom();
	p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *ward_xrealloc(void *p, size_t n) {
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *ward_strdup(const char *s) {
	if (!s)
		return NULL;
	return ward_strndup(s, strlen(s));
}

char *ward_strndup(const char *s, size_t n) {
	char *p;

	if (!s)
		n = 0;
	else
		n = strnlen(s, n);
	p = ward_xmalloc(n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

bool ward_streq(const char *a, const char *b) {
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool ward_has_prefix(const char *s, const char *prefix) {
	if (!s || !prefix)
		return false;
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void buf_init(struct buf *b) {
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_free(struct buf *b) {
	if (!b)
		return;
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b) {
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_reserve(struct buf *b, size_t extra) {
	size_t need, cap;

	if (extra > SIZE_MAX - b->len - 1)
		oom();
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	b->data = ward_xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void buf_append(struct buf *b, const void *p, size_t n) {
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s) {
	buf_append(b, s, s ? strlen(s) : 0);
}

void buf_putc(struct buf *b, char c) {
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

/* Redeclared with the format attribute so -Wformat-nonliteral accepts the forwarding. */
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) WARD_PRINTF(2, 0);

void buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	buf_reserve(b, 64);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

const char *buf_cstr(struct buf *b) {
	if (!b->data)
		buf_reserve(b, 0);
	return b->data;
}

char *buf_detach(struct buf *b) {
	char *p;

	if (!b->data)
		buf_reserve(b, 0);
	p = b->data;
	buf_init(b);
	return p;
}

/* Decodes one UTF-8 sequence at s (n bytes available). Returns its length (1-4) and sets
 * *cp, or 0 when the bytes are not valid UTF-8 (overlong, surrogate, > U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
	uint32_t c;
	size_t len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		c = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		c = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000))
		return 0;
	if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

void buf_json_str(struct buf *b, const char *s, size_t n) {
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;
	uint32_t cp;

	buf_reserve(b, n + 2);
	buf_putc(b, '"');
	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			run = i;
			while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
			       p[run] != '\\')
				run++;
			buf_append(b, p + i, run - i);
			i = run;
			continue;
		}
		if (c < 0x80) {
			switch (c) {
			case '"':
				buf_puts(b, "\\\"");
				break;
			case '\\':
				buf_puts(b, "\\\\");
				break;
			case '\n':
				buf_puts(b, "\\n");
				break;
			case '\r':
				buf_puts(b, "\\r");
				break;
			case '\t':
				buf_puts(b, "\\t");
				break;
			case '\b':
				buf_puts(b, "\\b");
				break;
			case '\f':
				buf_puts(b, "\\f");
				break;
			default: {
				char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
				buf_append(b, e, sizeof(e));
			}
			}
			i++;
			continue;
		}
		run = utf8_decode(p + i, n - i, &cp);
		if (run == 0) {
			buf_puts(b, "\xEF\xBF\xBD"); /* U+FFFD for each invalid byte */
			i++;
		} else {
			buf_append(b, p + i, run);
			i += run;
		}
	}
	buf_putc(b, '"');
}

/* A logfmt value may stay bare when it is non-empty and has no space, quote, equals sign,
 * backslash, control byte or non-ASCII byte. */
static bool logfmt_bare_ok(const char *s, size_t n) {
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7F)
			return false;
	}
	return true;
}

void buf_logfmt_val(struct buf *b, const char *s, size_t n) {
	if (!s)
		n = 0;
	if (logfmt_bare_ok(s, n)) {
		buf_append(b, s, n);
		return;
	}
	/* JSON string escaping is a valid logfmt quoted value and keeps UTF-8 clean. */
	buf_json_str(b, s ? s : "", n);
}

/* d[.ddd]e±XX: a sign and at least two exponent digits, as C's %e and Go's 'e'. */
static void put_exp(struct buf *b, const char *d, int nd, int e10) {
	buf_putc(b, d[0]);
	if (nd > 1) {
		buf_putc(b, '.');
		buf_append(b, d + 1, (size_t)(nd - 1));
	}
	buf_printf(b, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
}

/* The digits without an exponent, as Go's 'f' with precision -1. */
static void put_fixed(struct buf *b, const char *d, int nd, int e10) {
	if (e10 < 0) {
		buf_puts(b, "0.");
		for (int i = 0; i < -e10 - 1; i++)
			buf_putc(b, '0');
		buf_append(b, d, (size_t)nd);
		return;
	}
	for (int i = 0; i <= e10; i++)
		buf_putc(b, i < nd ? d[i] : '0');
	if (nd > e10 + 1) {
		buf_putc(b, '.');
		buf_append(b, d + e10 + 1, (size_t)(nd - e10 - 1));
	}
}

/* Shortest digits that round-trip, in Go's strconv.FormatFloat(v, fmt, -1, 64) forms (what
 * Prometheus prints): 'g' picks the exponent form when the exponent is < -4 or >= 6, so
 * 100000 but 1e+06, 0.0001 but 1e-05; 'e' always uses it; 'f' never. */
static void put_double_fmt(struct buf *b, double v, char fmt) {
	char d[WARD_DTOA_DIGITS];
	int e10, nd;

	if (isnan(v)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (signbit(v))
		buf_putc(b, '-');
	nd = ward_dtoa_shortest(v, d, &e10); /* 0 gives "0", e10 0 */
	if (fmt == 'e' || (fmt == 'g' && (e10 < -4 || e10 >= GO_SHORTEST_EPREC)))
		put_exp(b, d, nd, e10);
	else
		put_fixed(b, d, nd, e10);
}

void buf_put_double(struct buf *b, double v) {
	put_double_fmt(b, v, 'g');
}

void buf_put_double_e(struct buf *b, double v) {
	put_double_fmt(b, v, 'e');
}

void buf_put_double_f(struct buf *b, double v) {
	put_double_fmt(b, v, 'f');
}
