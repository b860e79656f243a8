/* expfmt.c: parser of the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text.
 *
 * The body is read line by line through pointer + length (memchr for '\n', bounded by the
 * line limit); nothing after buf[n-1] is ever read. A sample's labels are unescaped into one
 * reused scratch buffer and handed to the sink as a borrowed, sorted struct labels, so the
 * memory held is the longest line plus two hash sets: distinct series (64-bit label-set
 * hash -> last timestamp, to catch duplicates) and families (name hash -> which metadata
 * lines and samples were seen). A hash collision could only report a false duplicate, with
 * odds of about n^2 / 2^65. A sink with a known() callback (the scraper's cache) may vouch
 * for a line's series text, which then skips label parsing; the checks that involve more than
 * that text still run. Callers: the scraper, the self-metrics check, `ward tsdb import`.
 */
#include "collect/collect.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Defaults for a NULL limits struct: a line of 1 MiB is far beyond any real exporter's
 * longest (a few KiB with many labels) but keeps a garbage body from growing the scratch
 * buffer without end; 256 labels and 64 KiB values are what Prometheus users treat as sane. */
#define DEFAULT_MAX_LINE_BYTES  ((size_t)1 << 20)
#define DEFAULT_MAX_LABEL_COUNT 256
#define DEFAULT_MAX_LABEL_BYTES ((size_t)64 << 10)
/* Go prints a float64 in at most 24 characters; 400 leaves room for hand-written padding
 * while keeping the conversion copy on the stack. */
#define VALUE_MAX_CHARS 400
/* The series set is sized up front for a body of n bytes at one sample per this many
 * bytes (exporters' lines are 50 to 150 bytes), so a scrape does not rehash it 5 times as it
 * grows; a body of shorter lines still grows it. Capped: a huge body may be mostly comments. */
#define BYTES_PER_SAMPLE_GUESS 64
#define SERIES_PRESIZE_MAX     ((size_t)1 << 18)
/* How much of an offending token an error message quotes. */
#define SNIPPET_MAX 32

enum mtype {
	MT_UNTYPED = 0, /* 0.0.4 "untyped", OpenMetrics "unknown", and families without TYPE */
	MT_COUNTER,
	MT_GAUGE,
	MT_HISTOGRAM,
	MT_GAUGEHISTOGRAM,
	MT_SUMMARY,
	MT_INFO,
	MT_STATESET,
};

/* ---- a small open-addressing hash set of 64-bit keys (0 is "empty") ---- */
#define HE_HAS_T   1u /* series: t is valid */
#define HE_TYPE    2u /* family: # TYPE seen */
#define HE_HELP    4u
#define HE_UNIT    8u
#define HE_SAMPLES 16u

struct hent {
	uint64_t key;
	int64_t t;
	uint32_t flags;
	uint32_t type;
};
struct hset {
	struct hent *v;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

static void hset_free(struct hset *h) {
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static struct hent *hset_slot(struct hent *v, size_t cap, uint64_t key) {
	size_t i = (size_t)(key ^ (key >> 29)) & (cap - 1);

	while (v[i].key && v[i].key != key)
		i = (i + 1) & (cap - 1);
	return &v[i];
}

/* Finds key; adds it (zeroed) when absent and add is true. *found tells which. */
static struct hent *hset_get(struct hset *h, uint64_t key, bool add, bool *found) {
	struct hent *e;

	if (!key)
		key = 1;
	*found = false;
	if (h->cap) {
		e = hset_slot(h->v, h->cap, key);
		if (e->key) {
			*found = true;
			return e;
		}
	}
	if (!add)
		return NULL;
	/* Keep the load at most 1/2 so probes stay short. */
	if ((h->n + 1) * 2 > h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		struct hent *nv = ward_xcalloc(ncap, sizeof(*nv));
		for (size_t i = 0; i < h->cap; i++)
			if (h->v[i].key)
				*hset_slot(nv, ncap, h->v[i].key) = h->v[i];
		free(h->v);
		h->v = nv;
		h->cap = ncap;
	}
	e = hset_slot(h->v, h->cap, key);
	e->key = key;
	h->n++;
	return e;
}

/* Room for about n keys without growing (load 1/2), within SERIES_PRESIZE_MAX. */
static void hset_presize(struct hset *h, size_t n) {
	size_t cap = 64;

	if (n > SERIES_PRESIZE_MAX)
		n = SERIES_PRESIZE_MAX;
	while (cap < 2 * n)
		cap *= 2;
	if (cap <= 64)
		return; /* the first insert allocates this much anyway */
	h->v = ward_xcalloc(cap, sizeof(*h->v));
	h->cap = cap;
}

static uint64_t hash_bytes(const char *s, size_t n) {
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* ---- the parser ---- */
struct lbl {
	size_t name_off, name_len, val_off, val_len;
};

struct parser {
	bool om;
	struct collect_parse_limits lim;
	const struct collect_sample_sink *sink;
	struct collect_parse_stats *st;
	struct ward_err *err;
	size_t lineno;
	const char *l; /* current line, len bytes, cursor i */
	size_t len, i;
	bool eof_seen;
	/* the current family */
	struct buf fam;
	bool have_fam;
	uint64_t fam_key;
	enum mtype fam_type;
	struct hset fams, series;
	/* the current sample: names and values NUL-separated in scratch */
	struct buf scratch;
	struct lbl *lb;
	size_t nlb, lbcap;
	struct label *lv;
	size_t lvcap;
	/* the current sample line: where its name and '{' are (brace 0: none), for parsing
	 * the labels of a line the sink knew only when they are needed after all */
	size_t name_off, name_len, brace;
};

static int perr(struct parser *p, int rc, const char *fmt, ...) WARD_PRINTF(3, 4);
static int perr(struct parser *p, int rc, const char *fmt, ...) {
	struct buf m = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	if (p->st)
		p->st->err_line = p->lineno;
	ward_err_set(p->err, "line %zu: %s", p->lineno, buf_cstr(&m));
	buf_free(&m);
	return rc;
}

/* "'abc'" quoting at most SNIPPET_MAX bytes of s (non-printables as '?'), or "the end of
 * the line" when n is 0. out has room for SNIPPET_MAX + 8. */
static const char *snip(char *out, const char *s, size_t n) {
	size_t k = 0;

	if (n == 0)
		return "the end of the line";
	out[k++] = '\'';
	for (size_t i = 0; i < n && i < SNIPPET_MAX; i++)
		out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n > SNIPPET_MAX) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k++] = '\'';
	out[k] = '\0';
	return out;
}
#define SNIP_BUF (SNIPPET_MAX + 8)

/* The rest of the current token (up to a blank) for error messages. */
static const char *snip_here(struct parser *p, char *out) {
	size_t e = p->i;

	while (e < p->len && p->l[e] != ' ' && p->l[e] != '\t')
		e++;
	if (e == p->i && e < p->len)
		e++;
	return snip(out, p->l + p->i, e - p->i);
}

static bool is_blank(char c) {
	return c == ' ' || c == '\t';
}
static bool is_alpha_(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) {
	return c >= '0' && c <= '9';
}

/* 0.0.4 lets any run of blanks separate tokens; OpenMetrics wants exactly one space, which
 * the callers check themselves. */
static void skip_blanks(struct parser *p) {
	if (p->om)
		return;
	while (p->i < p->len && is_blank(p->l[p->i]))
		p->i++;
}

static size_t lex_metric_name(struct parser *p) {
	size_t s = p->i;

	if (p->i < p->len && (is_alpha_(p->l[p->i]) || p->l[p->i] == ':'))
		p->i++;
	else
		return 0;
	while (p->i < p->len &&
	       (is_alpha_(p->l[p->i]) || is_digit(p->l[p->i]) || p->l[p->i] == ':'))
		p->i++;
	return p->i - s;
}

static size_t lex_label_name(struct parser *p) {
	size_t s = p->i;

	if (p->i < p->len && is_alpha_(p->l[p->i]))
		p->i++;
	else
		return 0;
	while (p->i < p->len && (is_alpha_(p->l[p->i]) || is_digit(p->l[p->i])))
		p->i++;
	return p->i - s;
}

static bool ieq(const char *s, size_t n, const char *lit) {
	size_t k = strlen(lit);

	if (n != k)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return false;
	}
	return true;
}

static bool eq(const char *s, size_t n, const char *lit) {
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
/* Clinger's fast path for a syntactically valid decimal (checked by the caller): with at
 * most 15 significant digits the digits are an exact integer m < 2^53, and with a decimal
 * exponent e in [-22, 22] the value is m * 10^e or m / 10^-e: one correctly rounded
 * operation on exact operands, so the same double strtod gives. false: not that case. */
static bool fast_decimal(const char *s, size_t n, double *out) {
	size_t i = 0, digits = 0;
	uint64_t m = 0;
	int64_t e = 0;
	bool neg = false;

	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	for (; i < n && is_digit(s[i]); i++) {
		if (m == 0 && s[i] == '0')
			continue; /* leading zeros are not significant */
		if (++digits > 15)
			return false;
		m = m * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && is_digit(s[i]); i++) {
			e--;
			if (m == 0 && s[i] == '0')
				continue;
			if (++digits > 15)
				return false;
			m = m * 10 + (uint64_t)(s[i] - '0');
		}
	}
	if (i < n) { /* an exponent */
		int64_t x = 0;
		bool xneg = false;
		i++;
		if (s[i] == '+' || s[i] == '-')
			xneg = s[i++] == '-';
		for (; i < n; i++) {
			if (x > 1000)
				return false;
			x = x * 10 + (s[i] - '0');
		}
		e += xneg ? -x : x;
	}
	double d = (double)m;
	if (m != 0) {
		if (e < -22 || e > 22)
			return false;
		d = e < 0 ? d / exact_pow10[-e] : d * exact_pow10[e];
	}
	*out = neg ? -d : d;
	return true;
}

/* Decimal floats with optional exponent, [+-]Inf/Infinity and NaN (case-insensitive), as
 * Prometheus' parsers accept; no hex, no underscores. 0, -1 syntax, -2 out of range,
 * -3 too long. */
static int parse_float(const char *s, size_t n, double *out) {
	char tmp[VALUE_MAX_CHARS + 1];
	size_t i = 0, digits = 0;
	bool neg = false;
	char *end;
	double v;

	if (n == 0)
		return -1;
	if (n > VALUE_MAX_CHARS)
		return -3;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	if (ieq(s + i, n - i, "inf") || ieq(s + i, n - i, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return 0;
	}
	if (i == 0 && ieq(s, n, "nan")) {
		*out = NAN;
		return 0;
	}
	while (i < n && is_digit(s[i])) {
		i++;
		digits++;
	}
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && is_digit(s[i])) {
			i++;
			digits++;
		}
	}
	if (!digits)
		return -1;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t ed = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < n && is_digit(s[i])) {
			i++;
			ed++;
		}
		if (!ed)
			return -1;
	}
	if (i != n)
		return -1;
	if (fast_decimal(s, n, out))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (end != tmp + n)
		return -1;
	if (errno == ERANGE && isinf(v))
		return -2;
	*out = v;
	return 0;
}

/* [+-]digits into int64; 0, -1 syntax, -2 overflow. */
static int parse_int64(const char *s, size_t n, int64_t *out) {
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0, lim;

	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		if (v > (lim - (uint64_t)(s[i] - '0')) / 10)
			return -2;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const char *s, size_t n) {
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = u[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((u[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (u[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static const char *type_name(enum mtype t, bool om) {
	switch (t) {
	case MT_COUNTER:
		return "counter";
	case MT_GAUGE:
		return "gauge";
	case MT_HISTOGRAM:
		return "histogram";
	case MT_GAUGEHISTOGRAM:
		return "gaugehistogram";
	case MT_SUMMARY:
		return "summary";
	case MT_INFO:
		return "info";
	case MT_STATESET:
		return "stateset";
	case MT_UNTYPED:
		break;
	}
	return om ? "unknown" : "untyped";
}

static int type_parse(const char *s, size_t n, bool om, enum mtype *out) {
	static const enum mtype all[] = {MT_COUNTER, MT_GAUGE,          MT_HISTOGRAM, MT_SUMMARY,
	                                 MT_UNTYPED, MT_GAUGEHISTOGRAM, MT_INFO,      MT_STATESET};
	/* 0.0.4 knows the first five; OpenMetrics all eight. */
	size_t k = om ? 8 : 5;

	for (size_t i = 0; i < k; i++) {
		if (eq(s, n, type_name(all[i], om))) {
			*out = all[i];
			return 0;
		}
	}
	return -1;
}

/* The suffixes a sample name may add to its family's name; "" is always allowed here and
 * type_check() says what OpenMetrics thinks of it. */
static bool suffix_ok(enum mtype t, const char *suf, size_t n) {
	static const char *const counter[] = {"_total", "_created", NULL};
	static const char *const hist[] = {"_bucket", "_sum", "_count", "_created", NULL};
	static const char *const ghist[] = {"_bucket", "_gsum", "_gcount", NULL};
	static const char *const summary[] = {"_sum", "_count", "_created", NULL};
	static const char *const info[] = {"_info", NULL};
	const char *const *v = NULL;

	if (n == 0)
		return true;
	switch (t) {
	case MT_COUNTER:
		v = counter;
		break;
	case MT_HISTOGRAM:
		v = hist;
		break;
	case MT_GAUGEHISTOGRAM:
		v = ghist;
		break;
	case MT_SUMMARY:
		v = summary;
		break;
	case MT_INFO:
		v = info;
		break;
	default:
		return false;
	}
	for (; *v; v++)
		if (eq(suf, n, *v))
			return true;
	return false;
}

/* Makes name the current family. OpenMetrics keeps a family's lines together, so meeting
 * a family again is an error there; 0.0.4 allows it. */
static int start_family(struct parser *p, const char *name, size_t n) {
	uint64_t key = hash_bytes(name, n);
	bool found;
	struct hent *e = hset_get(&p->fams, key, true, &found);

	if (found && p->om) {
		char sn[SNIP_BUF];
		return perr(p, COLLECT_ESYNTAX,
		            "metric family %s appears again after other families; OpenMetrics "
		            "keeps all lines of a family together",
		            snip(sn, name, n));
	}
	if (!found) {
		e->type = MT_UNTYPED;
		if (p->st)
			p->st->families++;
	}
	buf_reset(&p->fam);
	buf_append(&p->fam, name, n);
	p->have_fam = true;
	p->fam_key = key;
	p->fam_type = (enum mtype)e->type;
	return 0;
}

static struct hent *cur_fam(struct parser *p) {
	bool found;

	return hset_get(&p->fams, p->fam_key, true, &found);
}

/* Unescapes a HELP text or label value (src, n) onto scratch. OpenMetrics knows \\ \" \n
 * and nothing else; 0.0.4 keeps unknown sequences as they are, as Prometheus does.
 * in_quotes: stop at an unescaped '"' (returns the bytes consumed through it, or 0 when the
 * quote never comes). Otherwise everything is consumed. -1 on a bad escape (*bad set). */
static long unescape(struct parser *p, const char *s, size_t n, bool in_quotes, bool help,
                     size_t *bad) {
	size_t i = 0;

	while (i < n) {
		size_t run = i;
		while (run < n && s[run] != '\\' && !(in_quotes && s[run] == '"'))
			run++;
		buf_append(&p->scratch, s + i, run - i);
		i = run;
		if (i == n)
			break;
		if (s[i] == '"')
			return (long)(i + 1);
		/* a backslash */
		if (i + 1 == n) {
			if (p->om || in_quotes) {
				*bad = i;
				return -1;
			}
			buf_putc(&p->scratch, '\\');
			i++;
			break;
		}
		switch (s[i + 1]) {
		case '\\':
			buf_putc(&p->scratch, '\\');
			break;
		case 'n':
			buf_putc(&p->scratch, '\n');
			break;
		case '"':
			if (help && !p->om) {
				/* 0.0.4 HELP knows only \\ and \n. */
				buf_append(&p->scratch, "\\\"", 2);
				break;
			}
			buf_putc(&p->scratch, '"');
			break;
		default:
			if (p->om) {
				*bad = i;
				return -1;
			}
			buf_append(&p->scratch, s + i, 2);
		}
		i += 2;
	}
	return in_quotes ? 0 : (long)n;
}

/* Adds a label (name at scratch offset no, value at vo) to the current sample. */
static void add_lbl(struct parser *p, size_t no, size_t nl, size_t vo, size_t vl) {
	if (p->nlb == p->lbcap) {
		p->lbcap = p->lbcap ? p->lbcap * 2 : 16;
		p->lb = ward_xrealloc(p->lb, p->lbcap * sizeof(*p->lb));
	}
	p->lb[p->nlb++] = (struct lbl){no, nl, vo, vl};
}

static int check_label_bytes(struct parser *p, const char *what, size_t n) {
	if (p->lim.max_label_bytes && n > p->lim.max_label_bytes)
		return perr(p, COLLECT_ELIMIT, "%s is %zu bytes, more than the limit of %zu", what,
		            n, p->lim.max_label_bytes);
	return 0;
}

/* {name="value", ...}; the cursor is on '{'. */
static int parse_labels(struct parser *p) {
	char sn[SNIP_BUF];
	bool first = true;

	p->i++;
	for (;;) {
		size_t ns, nl, no, vo;
		long used;
		size_t bad = 0;
		int rc;

		skip_blanks(p);
		if (p->i < p->len && p->l[p->i] == '}' && (!p->om || first)) {
			p->i++;
			return 0;
		}
		ns = p->i;
		nl = lex_label_name(p);
		if (!nl)
			return perr(p, COLLECT_ESYNTAX, "expected a label name%s, found %s",
			            first || !p->om ? " or '}'" : "", snip_here(p, sn));
		if (eq(p->l + ns, nl, "__name__"))
			return perr(p, COLLECT_ESYNTAX,
			            "label name __name__ is reserved: the metric name sets it");
		if ((rc = check_label_bytes(p, "a label name", nl)))
			return rc;
		no = p->scratch.len;
		buf_append(&p->scratch, p->l + ns, nl);
		buf_putc(&p->scratch, '\0');
		skip_blanks(p);
		if (p->i >= p->len || p->l[p->i] != '=')
			return perr(p, COLLECT_ESYNTAX,
			            "expected '=' after label name '%.*s', found %s", (int)nl,
			            p->l + ns, snip_here(p, sn));
		p->i++;
		skip_blanks(p);
		if (p->i >= p->len || p->l[p->i] != '"')
			return perr(p, COLLECT_ESYNTAX,
			            "expected '\"' to open the value of label '%.*s', found %s",
			            (int)nl, p->l + ns, snip_here(p, sn));
		p->i++;
		vo = p->scratch.len;
		used = unescape(p, p->l + p->i, p->len - p->i, true, false, &bad);
		if (used < 0 && p->i + bad + 1 < p->len)
			return perr(p, COLLECT_ESYNTAX,
			            "invalid escape '\\%c' in the value of label '%.*s' (expected "
			            "\\\\, "
			            "\\\" or \\n)",
			            p->l[p->i + bad + 1] >= 0x20 && p->l[p->i + bad + 1] < 0x7f
			                    ? p->l[p->i + bad + 1]
			                    : '?',
			            (int)nl, p->l + ns);
		if (used <= 0)
			return perr(
			        p, COLLECT_ESYNTAX,
			        "the value of label '%.*s' is not closed: expected '\"' before the "
			        "end of the line",
			        (int)nl, p->l + ns);
		p->i += (size_t)used;
		if (!utf8_valid(p->scratch.data + vo, p->scratch.len - vo))
			return perr(p, COLLECT_ESYNTAX,
			            "the value of label '%.*s' is not valid UTF-8", (int)nl,
			            p->l + ns);
		if ((rc = check_label_bytes(p, "a label value", p->scratch.len - vo)))
			return rc;
		add_lbl(p, no, nl, vo, p->scratch.len - vo);
		buf_putc(&p->scratch, '\0');
		first = false;
		skip_blanks(p);
		if (p->i < p->len && p->l[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->len && p->l[p->i] == '}') {
			p->i++;
			return 0;
		}
		return perr(p, COLLECT_ESYNTAX,
		            "expected ',' or '}' after the value of label '%.*s', "
		            "found %s",
		            (int)nl, p->l + ns, snip_here(p, sn));
	}
}

static const char *lbl_value(struct parser *p, const char *name) {
	for (size_t i = 1; i < p->nlb; i++)
		if (strcmp(p->scratch.data + p->lb[i].name_off, name) == 0)
			return p->scratch.data + p->lb[i].val_off;
	return NULL;
}

static int need_numeric_label(struct parser *p, const char *fam, const char *what,
                              const char *label) {
	const char *v = lbl_value(p, label);
	double d;

	if (!v)
		return perr(p, COLLECT_ESYNTAX, "%s sample of '%s' has no '%s' label", what, fam,
		            label);
	if (parse_float(v, strlen(v), &d) != 0)
		return perr(p, COLLECT_ESYNTAX,
		            "label '%s' of '%s' must be a number (like 0.5 or +Inf), not '%.*s'",
		            label, fam, SNIPPET_MAX, v);
	return 0;
}

/* OpenMetrics' rules for which sample names and labels a typed family has. */
static int type_check(struct parser *p, const char *suf, size_t sn) {
	const char *f = buf_cstr(&p->fam);

	switch (p->fam_type) {
	case MT_COUNTER:
		if (sn == 0)
			return perr(
			        p, COLLECT_ESYNTAX,
			        "counter '%s' must be sampled as %s_total (or %s_created), not %s",
			        f, f, f, f);
		break;
	case MT_HISTOGRAM:
	case MT_GAUGEHISTOGRAM:
		if (sn == 0)
			return perr(p, COLLECT_ESYNTAX,
			            "histogram '%s' must be sampled as %s_bucket{le=\"...\"}, "
			            "%s_%s and "
			            "%s_%s, not %s",
			            f, f, f, p->fam_type == MT_HISTOGRAM ? "sum" : "gsum", f,
			            p->fam_type == MT_HISTOGRAM ? "count" : "gcount", f);
		if (eq(suf, sn, "_bucket"))
			return need_numeric_label(p, f, "histogram bucket", "le");
		break;
	case MT_SUMMARY:
		if (sn == 0)
			return need_numeric_label(p, f, "summary", "quantile");
		break;
	case MT_INFO:
		if (sn == 0)
			return perr(p, COLLECT_ESYNTAX,
			            "info '%s' must be sampled as %s_info, not %s", f, f, f);
		break;
	default:
		break;
	}
	return 0;
}

static int label_cmp(const void *a, const void *b) {
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* Parses the current line's labels (name at name_off, '{' at brace) into scratch: the first
 * parse of a line, or a later one for a line the sink knew (then it cannot fail). The cursor
 * ends after the '}' (or the name). */
static int parse_series(struct parser *p) {
	size_t no;

	buf_reset(&p->scratch);
	p->nlb = 0;
	no = p->scratch.len;
	buf_append(&p->scratch, "__name__", 9);
	add_lbl(p, no, 8, p->scratch.len, p->name_len);
	buf_append(&p->scratch, p->l + p->name_off, p->name_len);
	buf_putc(&p->scratch, '\0');
	p->i = p->name_off + p->name_len;
	if (!p->brace)
		return 0;
	p->i = p->brace;
	return parse_labels(p);
}

/* The label set of the labels in scratch: sorted, empty values dropped, checked. */
static int build_labels(struct parser *p, struct labels *ls) {
	size_t k = 0;

	if (p->lvcap < p->nlb) {
		p->lvcap = p->nlb;
		p->lv = ward_xrealloc(p->lv, p->lvcap * sizeof(*p->lv));
	}
	for (size_t i = 0; i < p->nlb; i++) {
		p->lv[i].name = p->scratch.data + p->lb[i].name_off;
		p->lv[i].value = p->scratch.data + p->lb[i].val_off;
	}
	if (p->nlb > 1)
		qsort(p->lv, p->nlb, sizeof(*p->lv), label_cmp);
	for (size_t i = 0; i < p->nlb; i++) {
		if (i + 1 < p->nlb && strcmp(p->lv[i].name, p->lv[i + 1].name) == 0)
			return perr(p, COLLECT_ESYNTAX, "label '%s' appears twice in one sample",
			            p->lv[i].name);
		if (p->lv[i].value[0])
			p->lv[k++] = p->lv[i]; /* an empty value means "absent" */
	}
	ls->v = p->lv;
	ls->n = k;
	if (p->lim.max_label_count && k > p->lim.max_label_count)
		return perr(p, COLLECT_ELIMIT,
		            "the sample has %zu labels (with __name__), more than the limit of %zu",
		            k, p->lim.max_label_count);
	return 0;
}

/* Builds the label set of the sample (unless the sink knew the line: known, with the
 * label set's hash kh), checks it, and hands it to the sink. */
static int emit(struct parser *p, bool known, uint64_t kh, double v, bool has_t, int64_t t) {
	struct collect_parse_stats *st = p->st;
	struct labels ls = {0};
	struct hent *e;
	bool found;
	int rc;

	if (!known && (rc = build_labels(p, &ls)))
		return rc;
	e = hset_get(&p->series, known ? kh : labels_hash(&ls), true, &found);
	if (found && (!has_t || !(e->flags & HE_HAS_T) || e->t == t)) {
		struct buf s = BUF_INIT;
		if (known && ((rc = parse_series(p)) || (rc = build_labels(p, &ls))))
			return rc;
		labels_write(&s, &ls);
		rc = perr(p, COLLECT_EDUP, "duplicate series %s%s", buf_cstr(&s),
		          has_t ? " at the same timestamp" : "");
		buf_free(&s);
		return rc;
	}
	e->t = t;
	e->flags = has_t ? HE_HAS_T : 0;
	if (p->lim.max_samples && st->samples >= p->lim.max_samples)
		return perr(p, COLLECT_ELIMIT, "sample limit exceeded (%zu)", p->lim.max_samples);
	st->samples++;
	if (has_t) {
		if (!st->with_timestamp || t < st->min_t_ms)
			st->min_t_ms = t;
		if (!st->with_timestamp || t > st->max_t_ms)
			st->max_t_ms = t;
		st->with_timestamp++;
	}
	if (p->sink && p->sink->sample &&
	    p->sink->sample(p->sink->arg, known ? NULL : &ls, has_t ? t : 0, has_t, v) != 0) {
		if (!ward_err_isset(p->err))
			perr(p, COLLECT_ESTOPPED, "the consumer stopped the parse");
		st->err_line = p->lineno;
		return COLLECT_ESTOPPED;
	}
	return 0;
}

/* Where the {...} opening at brace ends (the index after its '}'), skipping quoted values
 * as parse_labels reads them (a backslash takes the next byte along); 0 when the line ends
 * first. Every line parse_labels accepts ends where this says; the converse need not hold. */
static size_t series_end(const struct parser *p, size_t brace) {
	const char *l = p->l;
	size_t i = brace + 1, n = p->len;

	while (i < n) {
		char c = l[i++];
		if (c == '}')
			return i;
		if (c != '"')
			continue;
		while (i < n && l[i] != '"')
			i += l[i] == '\\' ? 2 : 1;
		if (i >= n)
			return 0;
		i++;
	}
	return 0;
}

/* OpenMetrics types whose samples type_check() checks a label of. */
static bool type_needs_labels(enum mtype t) {
	return t == MT_HISTOGRAM || t == MT_GAUGEHISTOGRAM || t == MT_SUMMARY;
}

/* OpenMetrics timestamps: seconds with an optional fraction, kept to the millisecond. */
static int om_timestamp(const char *s, size_t n, int64_t *out) {
	double d;
	int rc = parse_float(s, n, &d);

	if (rc)
		return rc == -2 ? -2 : -1;
	if (isnan(d) || isinf(d))
		return -1;
	d *= 1000.0;
	/* int64 milliseconds reach about 292 million years; anything past is a broken line */
	if (d >= 9.2e18 || d <= -9.2e18)
		return -2;
	*out = llround(d);
	return 0;
}

static int parse_sample(struct parser *p) {
	char sn[SNIP_BUF];
	size_t ns = p->i, nlen, vs;
	const char *name;
	double v;
	int64_t t = 0;
	uint64_t kh = 0;
	bool has_t = false, known = false;
	int rc;

	nlen = lex_metric_name(p);
	if (!nlen)
		return perr(p, COLLECT_ESYNTAX, "expected a metric name, found %s",
		            snip_here(p, sn));
	name = p->l + ns;
	if ((rc = check_label_bytes(p, "the metric name", nlen)))
		return rc;
	p->name_off = ns;
	p->name_len = nlen;
	p->brace = 0;
	vs = p->i;
	skip_blanks(p); /* 0.0.4 allows blanks before '{' */
	if (p->i < p->len && p->l[p->i] == '{')
		p->brace = p->i;
	p->i = vs;
	if (p->sink && p->sink->known) {
		size_t end = p->brace ? series_end(p, p->brace) : vs;
		if (end && p->sink->known(p->sink->arg, name, end - ns, &kh)) {
			known = true;
			p->i = end;
		}
	}
	if (!known && (rc = parse_series(p)))
		return rc;

	/* The family: the current one when the name is its name plus a suffix its type
	 * allows, else a new family named as the sample. */
	{
		const char *f = p->fam.data;
		size_t fl = p->fam.len;
		bool mine = p->have_fam && nlen >= fl && memcmp(name, f, fl) == 0 &&
		            suffix_ok(p->fam_type, name + fl, nlen - fl);
		struct hent *e;

		if (!mine && (rc = start_family(p, name, nlen)))
			return rc;
		if (p->om && known && type_needs_labels(p->fam_type)) {
			size_t end = p->i;
			if ((rc = parse_series(p)))
				return rc;
			p->i = end;
		}
		if (p->om && (rc = type_check(p, name + p->fam.len, nlen - p->fam.len)))
			return rc;
		e = cur_fam(p);
		e->flags |= HE_SAMPLES;
	}

	/* the value */
	if (p->i >= p->len)
		return perr(p, COLLECT_ESYNTAX, "expected a value after '%.*s', found %s",
		            (int)nlen, name, snip_here(p, sn));
	if (p->om) {
		if (p->l[p->i] != ' ')
			return perr(p, COLLECT_ESYNTAX,
			            "expected one space and a value after '%.*s', found %s",
			            (int)nlen, name, snip_here(p, sn));
		p->i++;
	} else if (!is_blank(p->l[p->i])) {
		return perr(p, COLLECT_ESYNTAX,
		            "expected a space and a value after '%.*s', found %s", (int)nlen, name,
		            snip_here(p, sn));
	}
	skip_blanks(p);
	vs = p->i;
	while (p->i < p->len && (p->om ? p->l[p->i] != ' ' : !is_blank(p->l[p->i])))
		p->i++;
	rc = parse_float(p->l + vs, p->i - vs, &v);
	if (rc == -2)
		return perr(p, COLLECT_ESYNTAX, "value %s is out of range for a float64",
		            snip(sn, p->l + vs, p->i - vs));
	if (rc)
		return perr(
		        p, COLLECT_ESYNTAX,
		        "expected a number as the value (like 1, -2.5e-3, NaN or +Inf), found %s",
		        snip(sn, p->l + vs, p->i - vs));

	/* the timestamp, then (OpenMetrics) an exemplar, which we skip */
	if (p->om) {
		if (p->i < p->len) {
			p->i++; /* the space the value stopped at */
			if (p->i < p->len && p->l[p->i] != '#') {
				vs = p->i;
				while (p->i < p->len && p->l[p->i] != ' ')
					p->i++;
				rc = om_timestamp(p->l + vs, p->i - vs, &t);
				if (rc)
					return perr(p, COLLECT_ESYNTAX,
					            "expected a timestamp in seconds (like "
					            "1732449063.123) after the value, found %s",
					            snip(sn, p->l + vs, p->i - vs));
				has_t = true;
				if (p->i < p->len)
					p->i++;
			}
			if (p->i < p->len || p->l[p->i - 1] == ' ') {
				if (p->len - p->i < 3 || memcmp(p->l + p->i, "# {", 3) != 0)
					return perr(p, COLLECT_ESYNTAX,
					            "expected the end of the line or an exemplar "
					            "(' # {...} value') after the %s, found %s",
					            has_t ? "timestamp" : "value",
					            snip_here(p, sn));
				if (p->st)
					p->st->exemplars++;
				p->i = p->len;
			}
		}
	} else {
		skip_blanks(p);
		if (p->i < p->len) {
			vs = p->i;
			while (p->i < p->len && !is_blank(p->l[p->i]))
				p->i++;
			rc = parse_int64(p->l + vs, p->i - vs, &t);
			if (rc)
				return perr(
				        p, COLLECT_ESYNTAX,
				        "expected a timestamp in milliseconds (like 1732449063123) "
				        "after the value, found %s",
				        snip(sn, p->l + vs, p->i - vs));
			has_t = true;
			skip_blanks(p);
			if (p->i < p->len)
				return perr(p, COLLECT_ESYNTAX,
				            "expected the end of the line after the timestamp, "
				            "found %s",
				            snip_here(p, sn));
		}
	}
	return emit(p, known, kh, v, has_t, t);
}

/* # HELP, # TYPE, # UNIT (OpenMetrics), # EOF (OpenMetrics) and comments (0.0.4). */
static int parse_comment(struct parser *p) {
	char sn[SNIP_BUF];
	enum collect_meta_kind kind;
	size_t ws, wl, ns, nl;
	struct hent *e;
	enum mtype type = MT_UNTYPED;
	unsigned flag;
	const char *what;
	int rc;

	p->i++; /* '#' */
	if (p->om) {
		if (eq(p->l, p->len, "# EOF")) {
			p->eof_seen = true;
			return 0;
		}
		if (p->i >= p->len || p->l[p->i] != ' ')
			goto om_bad;
		p->i++;
	} else {
		if (p->i >= p->len || !is_blank(p->l[p->i]))
			return 0; /* "#anything" is a comment */
		skip_blanks(p);
	}
	ws = p->i;
	while (p->i < p->len && !is_blank(p->l[p->i]))
		p->i++;
	wl = p->i - ws;
	if (eq(p->l + ws, wl, "HELP")) {
		kind = COLLECT_META_HELP;
		flag = HE_HELP;
		what = "HELP";
	} else if (eq(p->l + ws, wl, "TYPE")) {
		kind = COLLECT_META_TYPE;
		flag = HE_TYPE;
		what = "TYPE";
	} else if (p->om && eq(p->l + ws, wl, "UNIT")) {
		kind = COLLECT_META_UNIT;
		flag = HE_UNIT;
		what = "UNIT";
	} else if (p->om) {
		goto om_bad;
	} else {
		return 0; /* a comment */
	}
	if (p->i >= p->len || (p->om ? p->l[p->i] != ' ' : !is_blank(p->l[p->i])))
		return perr(p, COLLECT_ESYNTAX, "expected a metric name after '# %s', found %s",
		            what, snip_here(p, sn));
	p->i++;
	skip_blanks(p);
	ns = p->i;
	nl = lex_metric_name(p);
	if (!nl || (p->i < p->len && (p->om ? p->l[p->i] != ' ' : !is_blank(p->l[p->i]))))
		return perr(p, COLLECT_ESYNTAX, "expected a metric name after '# %s', found %s",
		            what, snip(sn, p->l + ns, p->len - ns));

	/* the text after the name */
	buf_reset(&p->scratch);
	if (p->i < p->len) {
		p->i++; /* one blank (OpenMetrics: the space) */
		skip_blanks(p);
	}
	if (kind == COLLECT_META_HELP) {
		size_t bad = 0;
		if (unescape(p, p->l + p->i, p->len - p->i, false, true, &bad) < 0)
			return perr(
			        p, COLLECT_ESYNTAX,
			        "invalid escape in the HELP text of '%.*s' (expected \\\\, \\\" or "
			        "\\n)",
			        (int)nl, p->l + ns);
		if (!utf8_valid(p->scratch.data ? p->scratch.data : "", p->scratch.len))
			return perr(p, COLLECT_ESYNTAX,
			            "the HELP text of '%.*s' is not valid UTF-8", (int)nl,
			            p->l + ns);
	} else if (kind == COLLECT_META_TYPE) {
		ws = p->i;
		while (p->i < p->len && !is_blank(p->l[p->i]))
			p->i++;
		wl = p->i - ws;
		skip_blanks(p);
		if (type_parse(p->l + ws, wl, p->om, &type) != 0 || p->i < p->len)
			return perr(p, COLLECT_ESYNTAX,
			            "unknown metric type %s for '%.*s' (expected %s)",
			            snip(sn, p->l + ws, p->len - ws), (int)nl, p->l + ns,
			            p->om ? "counter, gauge, histogram, gaugehistogram, summary, "
			                    "info, stateset or unknown"
			                  : "counter, gauge, histogram, summary or untyped");
		buf_puts(&p->scratch, type_name(type, p->om));
	} else {
		ws = p->i;
		wl = p->len - ws;
		if (wl && (lex_metric_name(p) != wl))
			return perr(p, COLLECT_ESYNTAX, "invalid unit %s for '%.*s'",
			            snip(sn, p->l + ws, wl), (int)nl, p->l + ns);
		if (wl && (nl < wl + 1 || p->l[ns + nl - wl - 1] != '_' ||
		           memcmp(p->l + ns + nl - wl, p->l + ws, wl) != 0))
			return perr(p, COLLECT_ESYNTAX,
			            "metric '%.*s' with unit '%.*s' must end in '_%.*s'", (int)nl,
			            p->l + ns, (int)wl, p->l + ws, (int)wl, p->l + ws);
		buf_append(&p->scratch, p->l + ws, wl);
	}

	/* the family's bookkeeping */
	if (!p->have_fam || !eq(p->l + ns, nl, buf_cstr(&p->fam))) {
		if ((rc = start_family(p, p->l + ns, nl)))
			return rc;
	}
	e = cur_fam(p);
	if (e->flags & flag)
		return perr(p, COLLECT_EDUP, "second %s line for '%s'", what, buf_cstr(&p->fam));
	if (p->om && (e->flags & HE_SAMPLES))
		return perr(p, COLLECT_ESYNTAX,
		            "'# %s' for '%s' comes after its samples; OpenMetrics wants metadata "
		            "first",
		            what, buf_cstr(&p->fam));
	e->flags |= flag;
	if (kind == COLLECT_META_TYPE) {
		e->type = type;
		p->fam_type = type;
	}
	if (p->sink && p->sink->meta &&
	    p->sink->meta(p->sink->arg, kind, buf_cstr(&p->fam), buf_cstr(&p->scratch)) != 0) {
		if (!ward_err_isset(p->err))
			perr(p, COLLECT_ESTOPPED, "the consumer stopped the parse");
		if (p->st)
			p->st->err_line = p->lineno;
		return COLLECT_ESTOPPED;
	}
	return 0;

om_bad:
	return perr(p, COLLECT_ESYNTAX,
	            "expected '# HELP', '# TYPE', '# UNIT' or '# EOF', found %s",
	            snip(sn, p->l, p->len));
}

static int parse_line(struct parser *p, const char *l, size_t len) {
	p->l = l;
	p->len = len;
	p->i = 0;
	if (memchr(l, '\0', len))
		return perr(p, COLLECT_ESYNTAX, "the line contains a NUL byte");
	if (p->om && p->eof_seen)
		return perr(p, COLLECT_ESYNTAX,
		            "text after '# EOF', which must be the last line in OpenMetrics");
	if (!p->om) {
		/* Tolerate CRLF files in 0.0.4: the '\r' is line ending, not content. */
		if (p->len && p->l[p->len - 1] == '\r')
			p->len--;
		skip_blanks(p);
		if (p->i == p->len)
			return 0;
	} else if (len == 0) {
		return perr(p, COLLECT_ESYNTAX, "empty line; OpenMetrics does not allow them");
	}
	if (p->l[p->i] == '#')
		return parse_comment(p);
	return parse_sample(p);
}

/* AUTO: OpenMetrics when the last non-empty line is "# EOF". */
static enum collect_format detect(const char *buf, size_t n) {
	size_t e = n, s;

	while (e > 0 && (buf[e - 1] == '\n' || buf[e - 1] == '\r'))
		e--;
	s = e;
	while (s > 0 && buf[s - 1] != '\n')
		s--;
	return eq(buf + s, e - s, "# EOF") ? COLLECT_FORMAT_OPENMETRICS : COLLECT_FORMAT_TEXT_004;
}

void collect_parse_limits_default(struct collect_parse_limits *lim) {
	lim->max_samples = 0;
	lim->max_line_bytes = DEFAULT_MAX_LINE_BYTES;
	lim->max_label_count = DEFAULT_MAX_LABEL_COUNT;
	lim->max_label_bytes = DEFAULT_MAX_LABEL_BYTES;
}

int collect_parse_exposition(const char *buf, size_t n, enum collect_format fmt,
                             const struct collect_parse_limits *lim,
                             const struct collect_sample_sink *sink,
                             struct collect_parse_stats *stats, struct ward_err *err) {
	struct collect_parse_stats local;
	struct parser p;
	size_t pos = 0;
	int rc = COLLECT_OK;

	memset(&p, 0, sizeof(p));
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	if (lim)
		p.lim = *lim;
	else
		collect_parse_limits_default(&p.lim);
	if (!buf) {
		buf = "";
		n = 0;
	}
	if (fmt != COLLECT_FORMAT_TEXT_004 && fmt != COLLECT_FORMAT_OPENMETRICS)
		fmt = detect(buf, n);
	stats->format = fmt;
	p.om = fmt == COLLECT_FORMAT_OPENMETRICS;
	hset_presize(&p.series, n / BYTES_PER_SAMPLE_GUESS);
	p.sink = sink;
	p.st = stats;
	p.err = err;
	ward_err_clear(err);

	while (pos < n) {
		const char *s = buf + pos, *nl;
		size_t rem = n - pos, scan = rem, len;

		p.lineno++;
		if (p.lim.max_line_bytes && scan > p.lim.max_line_bytes + 1)
			scan = p.lim.max_line_bytes + 1;
		nl = memchr(s, '\n', scan);
		len = nl ? (size_t)(nl - s) : scan;
		stats->lines = p.lineno;
		if (p.lim.max_line_bytes && len > p.lim.max_line_bytes) {
			rc = perr(&p, COLLECT_ELIMIT,
			          "the line is longer than the limit of %zu bytes",
			          p.lim.max_line_bytes);
			goto out;
		}
		pos += len + (nl ? 1 : 0);
		stats->bytes = pos;
		if ((rc = parse_line(&p, s, len)))
			goto out;
	}
	if (p.om && !p.eof_seen) {
		p.lineno++;
		rc = perr(&p, COLLECT_ESYNTAX,
		          "the body ends without '# EOF', which OpenMetrics requires as the last "
		          "line "
		          "(was it cut short?)");
	}
out:
	if (rc && stats->err_line == 0)
		stats->err_line = p.lineno;
	buf_free(&p.fam);
	buf_free(&p.scratch);
	free(p.lb);
	free(p.lv);
	hset_free(&p.fams);
	hset_free(&p.series);
	return rc;
}

const char *collect_format_name(enum collect_format f) {
	switch (f) {
	case COLLECT_FORMAT_TEXT_004:
		return "text";
	case COLLECT_FORMAT_OPENMETRICS:
		return "openmetrics";
	case COLLECT_FORMAT_AUTO:
		break;
	}
	return "auto";
}

enum collect_format collect_format_from_content_type(const char *ct, size_t n) {
	size_t e = 0, s = 0;

	if (!ct)
		return COLLECT_FORMAT_AUTO;
	while (s < n && is_blank(ct[s]))
		s++;
	e = s;
	while (e < n && ct[e] != ';' && !is_blank(ct[e]))
		e++;
	if (ieq(ct + s, e - s, "application/openmetrics-text"))
		return COLLECT_FORMAT_OPENMETRICS;
	if (ieq(ct + s, e - s, "text/plain"))
		return COLLECT_FORMAT_TEXT_004;
	return COLLECT_FORMAT_AUTO;
}

const char *collect_strerror(int rc) {
	switch (rc) {
	case COLLECT_OK:
		return "ok";
	case COLLECT_ESYNTAX:
		return "invalid exposition";
	case COLLECT_ELIMIT:
		return "limit exceeded";
	case COLLECT_EDUP:
		return "duplicate";
	case COLLECT_ESTOPPED:
		return "stopped by the consumer";
	}
	return "unknown error";
}
