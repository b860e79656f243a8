/* parse.c: the log parsers: JSON objects and logfmt into fields (for `| json`, `| logfmt`
 * and source pipelines), syslog messages (RFC 5424 and RFC 3164), RFC 6587 TCP framing,
 * and timestamps with nanoseconds.
 * Every parser takes pointer + length, never reads past it, and never fails on garbage:
 * the worst outcome is fewer fields (or the whole text as the syslog message). Nesting is
 * bounded (JSON_MAX_DEPTH) so hostile input cannot exhaust the stack. Fuzzed by
 * tests/fuzz/fuzz_logs_syslog.c and fuzz_logs_fmt.c.
 */
#include <ctype.h>
#include <stdlib.h>
#include <time.h>

#include "logs/logs_internal.h"

#define JSON_MAX_DEPTH 32  /* deeper objects are kept as text; real logs are shallow */
#define FIELDS_MAX     512 /* a line with more fields is not worth more memory */

/* ---- fields ---- */

void logs_fields_reset(struct logs_fields *f) {
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].value);
	}
	f->n = 0;
}

void logs_fields_free(struct logs_fields *f) {
	logs_fields_reset(f);
	free(f->v);
	f->v = NULL;
	f->cap = 0;
}

/* Label names are [a-zA-Z_][a-zA-Z0-9_]*; other bytes become '_' (as Loki does). */
void logs_fields_add(struct logs_fields *f, const char *name, size_t nlen, const char *value,
                     size_t vlen) {
	if (nlen == 0 || f->n >= FIELDS_MAX)
		return;
	char *nm = ward_strndup(name, nlen);
	nlen = strlen(nm); /* stops at an embedded NUL */
	if (nlen == 0) {
		free(nm);
		return;
	}
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)nm[i];
		if (!(isalnum(c) || c == '_') || (i == 0 && isdigit(c)))
			nm[i] = '_';
	}
	for (size_t i = 0; i < f->n; i++) { /* a later duplicate replaces the earlier value */
		if (strcmp(f->v[i].name, nm) == 0) {
			free(nm);
			free(f->v[i].value);
			f->v[i].value = ward_strndup(value, vlen);
			return;
		}
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = ward_xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n].name = nm;
	f->v[f->n].value = ward_strndup(value, vlen);
	f->n++;
}

const char *logs_fields_get(const struct logs_fields *f, const char *name) {
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].name, name) == 0)
			return f->v[i].value;
	return NULL;
}

/* ---- JSON ---- */

struct jp {
	const char *s;
	size_t n, i;
	struct logs_fields *out;
	struct buf key, val;
};

static void jp_ws(struct jp *p) {
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
	                       p->s[p->i] == '\r'))
		p->i++;
}

static int hexval(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_hex4(struct jp *p, unsigned *out) {
	if (p->n - p->i < 4)
		return -1;
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(p->s[p->i + (size_t)k]);
		if (h < 0)
			return -1;
		v = v * 16 + (unsigned)h;
	}
	p->i += 4;
	*out = v;
	return 0;
}

static void put_utf8(struct buf *b, unsigned cp) {
	char t[4];
	if (cp < 0x80) {
		buf_putc(b, (char)cp);
	} else if (cp < 0x800) {
		t[0] = (char)(0xc0 | (cp >> 6));
		t[1] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, t, 2);
	} else if (cp < 0x10000) {
		t[0] = (char)(0xe0 | (cp >> 12));
		t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		t[2] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, t, 3);
	} else {
		t[0] = (char)(0xf0 | (cp >> 18));
		t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		t[3] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, t, 4);
	}
}

/* At '"': decodes the string into out. */
static int jp_string(struct jp *p, struct buf *out) {
	buf_reset(out);
	if (p->i >= p->n || p->s[p->i] != '"')
		return -1;
	p->i++;
	while (p->i < p->n) {
		char c = p->s[p->i++];
		if (c == '"')
			return 0;
		if (c != '\\') {
			buf_putc(out, c);
			continue;
		}
		if (p->i >= p->n)
			return -1;
		c = p->s[p->i++];
		switch (c) {
		case 'n':
			buf_putc(out, '\n');
			break;
		case 't':
			buf_putc(out, '\t');
			break;
		case 'r':
			buf_putc(out, '\r');
			break;
		case 'b':
			buf_putc(out, '\b');
			break;
		case 'f':
			buf_putc(out, '\f');
			break;
		case 'u': {
			unsigned cp, lo;
			if (jp_hex4(p, &cp) != 0)
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00 && p->n - p->i >= 6 && p->s[p->i] == '\\' &&
			    p->s[p->i + 1] == 'u') {
				p->i += 2;
				if (jp_hex4(p, &lo) != 0)
					return -1;
				if (lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					cp = 0xfffd;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;
			}
			put_utf8(out, cp);
			break;
		}
		default:
			buf_putc(out, c);
			break;
		}
	}
	return -1;
}

static int jp_skip(struct jp *p, int depth);

/* Parses an object whose members are named prefix + key. */
static int jp_object(struct jp *p, const char *prefix, size_t plen, int depth) {
	if (depth > JSON_MAX_DEPTH)
		return -1;
	p->i++; /* '{' */
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == '}') {
		p->i++;
		return 0;
	}
	while (p->i < p->n) {
		jp_ws(p);
		if (jp_string(p, &p->key) != 0)
			return -1;
		char *name = NULL;
		size_t nlen;
		{
			struct buf nb = BUF_INIT;
			buf_append(&nb, prefix, plen);
			if (plen)
				buf_putc(&nb, '_');
			buf_append(&nb, p->key.data ? p->key.data : "", p->key.len);
			nlen = nb.len;
			name = buf_detach(&nb);
		}
		jp_ws(p);
		if (p->i >= p->n || p->s[p->i] != ':') {
			free(name);
			return -1;
		}
		p->i++;
		jp_ws(p);
		if (p->i >= p->n) {
			free(name);
			return -1;
		}
		char c = p->s[p->i];
		int rc = 0;
		if (c == '"') {
			rc = jp_string(p, &p->val);
			if (rc == 0)
				logs_fields_add(p->out, name, nlen, p->val.data ? p->val.data : "",
				                p->val.len);
		} else if (c == '{') {
			rc = jp_object(p, name, nlen, depth + 1);
		} else {
			size_t st = p->i;
			rc = jp_skip(p, depth + 1);
			if (rc == 0) {
				const char *v = p->s + st;
				size_t vl = p->i - st;
				if (vl == 4 && memcmp(v, "null", 4) == 0)
					vl = 0;
				logs_fields_add(p->out, name, nlen, v, vl);
			}
		}
		free(name);
		if (rc != 0)
			return -1;
		jp_ws(p);
		if (p->i >= p->n)
			return -1;
		if (p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->s[p->i] == '}') {
			p->i++;
			return 0;
		}
		return -1;
	}
	return -1;
}

/* Skips any value (for arrays, numbers, literals), checking only its shape. */
static int jp_skip(struct jp *p, int depth) {
	if (depth > JSON_MAX_DEPTH || p->i >= p->n)
		return -1;
	char c = p->s[p->i];
	if (c == '"') {
		struct buf tmp = BUF_INIT;
		int rc = jp_string(p, &tmp);
		buf_free(&tmp);
		return rc;
	}
	if (c == '[' || c == '{') {
		char close = c == '[' ? ']' : '}';
		p->i++;
		jp_ws(p);
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			return 0;
		}
		while (p->i < p->n) {
			jp_ws(p);
			if (c == '{') {
				struct buf tmp = BUF_INIT;
				int rc = jp_string(p, &tmp);
				buf_free(&tmp);
				jp_ws(p);
				if (rc != 0 || p->i >= p->n || p->s[p->i] != ':')
					return -1;
				p->i++;
				jp_ws(p);
			}
			if (jp_skip(p, depth + 1) != 0)
				return -1;
			jp_ws(p);
			if (p->i >= p->n)
				return -1;
			if (p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->s[p->i] == close) {
				p->i++;
				return 0;
			}
			return -1;
		}
		return -1;
	}
	size_t st = p->i;
	while (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '-' ||
	                       p->s[p->i] == '+' || p->s[p->i] == '.'))
		p->i++;
	return p->i > st ? 0 : -1;
}

int logs_parse_json(const char *s, size_t n, struct logs_fields *out) {
	struct jp p = {.s = s, .n = n, .out = out};
	jp_ws(&p);
	if (p.i >= n || s[p.i] != '{')
		return -1;
	int rc = jp_object(&p, "", 0, 0);
	buf_free(&p.key);
	buf_free(&p.val);
	return rc;
}

/* ---- logfmt ---- */

int logs_parse_logfmt(const char *s, size_t n, struct logs_fields *out) {
	size_t i = 0;
	struct buf v = BUF_INIT;
	while (i < n) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t ks = i;
		while (i < n && s[i] != '=' && s[i] != ' ' && s[i] != '\t' && s[i] != '"')
			i++;
		size_t ke = i;
		if (i < n && s[i] == '=') {
			i++;
			buf_reset(&v);
			if (i < n && s[i] == '"') {
				i++;
				while (i < n && s[i] != '"') {
					if (s[i] == '\\' && i + 1 < n) {
						char c = s[i + 1];
						buf_putc(&v, c == 'n' ? '\n' : c == 't' ? '\t' : c);
						i += 2;
						continue;
					}
					buf_putc(&v, s[i++]);
				}
				if (i < n)
					i++; /* closing quote */
			} else {
				size_t vs = i;
				while (i < n && s[i] != ' ' && s[i] != '\t')
					i++;
				buf_append(&v, s + vs, i - vs);
			}
			if (ke > ks)
				logs_fields_add(out, s + ks, ke - ks, v.data ? v.data : "", v.len);
		} else {
			if (ke > ks)
				logs_fields_add(out, s + ks, ke - ks, "", 0);
			if (i < n && s[i] == '"') { /* stray quote: skip the quoted run */
				i++;
				while (i < n && s[i] != '"')
					i++;
				if (i < n)
					i++;
			}
		}
	}
	buf_free(&v);
	return 0;
}

/* ---- time ---- */

static int digits(const char *s, size_t n, size_t at, size_t k, int *out) {
	if (at + k > n)
		return -1;
	int v = 0;
	for (size_t i = 0; i < k; i++) {
		if (!isdigit((unsigned char)s[at + i]))
			return -1;
		v = v * 10 + (s[at + i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339 with up to 9 fraction digits (more are ignored). Returns bytes used or -1. */
static long rfc3339_ns(const char *s, size_t n, int64_t *out) {
	int Y, M, D, h, m, sec;
	if (digits(s, n, 0, 4, &Y) || n < 19 || s[4] != '-' || digits(s, n, 5, 2, &M) ||
	    s[7] != '-' || digits(s, n, 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits(s, n, 11, 2, &h) ||
	    s[13] != ':' || digits(s, n, 14, 2, &m) || s[16] != ':' || digits(s, n, 17, 2, &sec))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	size_t i = 19;
	int64_t frac = 0;
	if (i < n && (s[i] == '.' || s[i] == ',')) {
		i++;
		int nd = 0;
		while (i < n && isdigit((unsigned char)s[i])) {
			if (nd < 9) {
				frac = frac * 10 + (s[i] - '0');
				nd++;
			}
			i++;
		}
		if (nd == 0)
			return -1;
		while (nd++ < 9)
			frac *= 10;
	}
	int64_t off = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		int oh, om;
		if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
		    digits(s, n, i + 4, 2, &om))
			return -1;
		off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return -1;
	}
	struct tm tm = {.tm_year = Y - 1900,
	                .tm_mon = M - 1,
	                .tm_mday = D,
	                .tm_hour = h,
	                .tm_min = m,
	                .tm_sec = sec};
	int64_t t = (int64_t)timegm(&tm) - off;
	/* Nanoseconds since the epoch fit int64 from 1677 to 2262; outside that the time
	 * cannot be stored, so it is not a time we accept. */
	if (t < INT64_MIN / 1000000000 + 1 || t > INT64_MAX / 1000000000 - 1)
		return -1;
	*out = t * 1000000000 + frac;
	return (long)i;
}

int logs_parse_time_ns(const char *s, size_t n, int64_t *out_ns) {
	if (n == 0 || n > 64)
		return -1;
	bool all_digits = true, dot = false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' && !dot)
			dot = true;
		else if (!isdigit((unsigned char)s[i]))
			all_digits = false;
	}
	if (all_digits && !dot) {
		if (n > 19)
			return -1;
		uint64_t v = 0;
		for (size_t i = 0; i < n; i++)
			v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > (uint64_t)INT64_MAX)
			return -1;
		/* Loki's APIs take nanoseconds; people type seconds; shippers send ms. A time
		 * past what nanoseconds in int64 hold (year 2262) is refused, not wrapped. */
		uint64_t unit = n <= 10 ? 1000000000 : n <= 13 ? 1000000 : n <= 16 ? 1000 : 1;
		if (v > (uint64_t)INT64_MAX / unit)
			return -1;
		*out_ns = (int64_t)(v * unit);
		return 0;
	}
	if (all_digits && dot) {
		char tmp[72];
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		double d = strtod(tmp, NULL);
		if (!(d >= 0 && d < 9.2e9))
			return -1;
		*out_ns = (int64_t)(d * 1e9);
		return 0;
	}
	long used = rfc3339_ns(s, n, out_ns);
	return used == (long)n ? 0 : -1;
}

/* ---- syslog ---- */

static const char *const sev_names[] = {"emerg",   "alert",  "crit", "err",
                                        "warning", "notice", "info", "debug"};
static const char *const fac_names[] = {
        "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
        "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "solaris-cron",
        "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7"};

const char *logs_syslog_severity_name(int sev) {
	return sev >= 0 && sev < 8 ? sev_names[sev] : "unknown";
}

const char *logs_syslog_facility_name(int fac) {
	return fac >= 0 && fac < 24 ? fac_names[fac] : "unknown";
}

/* The next space-delimited token at *i; "-" (the nil value) gives an empty token. */
static void token(const char *s, size_t n, size_t *i, const char **t, size_t *tl) {
	size_t st = *i;
	while (*i < n && s[*i] != ' ')
		(*i)++;
	*t = s + st;
	*tl = *i - st;
	if (*i < n)
		(*i)++;
	if (*tl == 1 && s[st] == '-')
		*tl = 0;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* "Mmm dd hh:mm:ss" (dd may be " d"); 15 bytes. Year from now_ms (last year when that
 * would put the stamp more than a day in the future). */
static int bsd_time(const char *s, size_t n, int64_t now_ms, int64_t *out) {
	if (n < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':')
		return -1;
	int mon = -1;
	for (int i = 0; i < 12; i++)
		if (memcmp(s, months[i], 3) == 0)
			mon = i;
	if (mon < 0)
		return -1;
	int d, h, m, sec;
	char dd[2] = {s[4] == ' ' ? '0' : s[4], s[5]};
	if (digits(dd, 2, 0, 2, &d) || digits(s, n, 7, 2, &h) || digits(s, n, 10, 2, &m) ||
	    digits(s, n, 13, 2, &sec) || d < 1 || d > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	time_t now = (time_t)(now_ms / 1000);
	struct tm nt;
	gmtime_r(&now, &nt);
	struct tm tm = {.tm_year = nt.tm_year,
	                .tm_mon = mon,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = m,
	                .tm_sec = sec};
	int64_t t = (int64_t)timegm(&tm);
	if (t > (int64_t)now + 86400) {
		tm.tm_year--;
		t = (int64_t)timegm(&tm);
	}
	*out = t * 1000000000;
	return 0;
}

void logs_syslog_parse(const char *s, size_t n, int64_t now_ms, struct logs_syslog_msg *out) {
	memset(out, 0, sizeof(*out));
	out->pri = -1;
	out->severity = 6; /* info: what a message without <PRI> is taken as */
	out->facility = 1; /* user */
	size_t i = 0;
	/* Trailing newlines and NULs are framing, not message. */
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\0'))
		n--;
	if (n >= 3 && s[0] == '<') {
		size_t j = 1;
		int pri = 0;
		while (j < n && j <= 4 && isdigit((unsigned char)s[j]))
			pri = pri * 10 + (s[j++] - '0');
		if (j > 1 && j < n && s[j] == '>' && pri <= 191) {
			out->pri = pri;
			out->facility = pri / 8;
			out->severity = pri % 8;
			i = j + 1;
		}
	}
	if (out->pri >= 0 && i + 2 <= n && s[i] == '1' && s[i + 1] == ' ') {
		/* RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD
		 */
		const char *t;
		size_t tl;
		out->version = 1;
		i += 2;
		token(s, n, &i, &t, &tl);
		if (tl && logs_parse_time_ns(t, tl, &out->ts_ns) != 0)
			out->ts_ns = 0;
		token(s, n, &i, &out->host, &out->host_len);
		token(s, n, &i, &out->app, &out->app_len);
		token(s, n, &i, &out->procid, &out->procid_len);
		token(s, n, &i, &out->msgid, &out->msgid_len);
		if (i < n && s[i] == '[') {
			size_t st = i;
			while (i < n && s[i] == '[') {
				bool q = false;
				while (i < n) {
					char c = s[i];
					if (c == '\\' && q && i + 1 < n) {
						i += 2;
						continue;
					}
					if (c == '"')
						q = !q;
					i++;
					if (c == ']' && !q)
						break;
				}
			}
			out->sd = s + st;
			out->sd_len = i - st;
			if (i < n && s[i] == ' ')
				i++;
		} else if (i < n && s[i] == '-') {
			i++;
			if (i < n && s[i] == ' ')
				i++;
		}
		if (n - i >= 3 && (uint8_t)s[i] == 0xef && (uint8_t)s[i + 1] == 0xbb &&
		    (uint8_t)s[i + 2] == 0xbf)
			i += 3; /* BOM */
		out->msg = s + i;
		out->msg_len = n - i;
		return;
	}
	/* RFC 3164: TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG, each part optional in practice. */
	if (bsd_time(s + i, n - i, now_ms, &out->ts_ns) == 0) {
		i += 15;
		while (i < n && s[i] == ' ')
			i++;
		/* A hostname is a token followed by a space, and not itself a tag ("app:"). */
		size_t j = i;
		while (j < n && s[j] != ' ' && s[j] != ':' && s[j] != '[')
			j++;
		if (j < n && s[j] == ' ' && j > i) {
			out->host = s + i;
			out->host_len = j - i;
			i = j + 1;
		}
	}
	size_t j = i;
	while (j < n && j - i < 48 &&
	       (isalnum((unsigned char)s[j]) || s[j] == '-' || s[j] == '_' || s[j] == '.' ||
	        s[j] == '/'))
		j++;
	if (j > i && j < n && (s[j] == ':' || s[j] == '[')) {
		out->app = s + i;
		out->app_len = j - i;
		size_t k = j;
		if (s[k] == '[') {
			size_t ps = k + 1;
			while (k < n && s[k] != ']')
				k++;
			if (k < n) {
				out->procid = s + ps;
				out->procid_len = k - ps;
				k++;
			}
		}
		if (k < n && s[k] == ':') {
			k++;
			if (k < n && s[k] == ' ')
				k++;
			i = k;
		} else {
			out->app = NULL;
			out->app_len = 0;
			out->procid = NULL;
			out->procid_len = 0;
		}
	}
	out->msg = s + i;
	out->msg_len = n - i;
}

/* ---- RFC 6587 framing ---- */

void logs_framer_init(struct logs_framer *f, size_t max_msg) {
	memset(f, 0, sizeof(*f));
	f->max_msg = max_msg ? max_msg : 64 * 1024;
}

void logs_framer_free(struct logs_framer *f) {
	buf_free(&f->pending);
}

/* Deliver pending as one message (truncated to max_msg). */
static void framer_emit(struct logs_framer *f, logs_msg_fn fn, void *arg) {
	fn(arg, f->pending.data ? f->pending.data : "", f->pending.len);
	buf_reset(&f->pending);
}

int logs_framer_feed(struct logs_framer *f, const char *p, size_t n, logs_msg_fn fn, void *arg) {
	size_t i = 0;
	while (i < n) {
		if (f->skip) {
			size_t k = n - i < f->skip ? n - i : f->skip;
			f->skip -= k;
			i += k;
			continue;
		}
		if (f->counting) {
			size_t room = f->want;
			size_t k = n - i < room ? n - i : room;
			size_t keep = k;
			if (f->pending.len + keep > f->max_msg)
				keep = f->max_msg > f->pending.len ? f->max_msg - f->pending.len
				                                   : 0;
			buf_append(&f->pending, p + i, keep);
			f->want -= k;
			i += k;
			if (f->want == 0) {
				f->counting = false;
				framer_emit(f, fn, arg);
			}
			continue;
		}
		if (f->dropping_line) {
			const char *nl = memchr(p + i, '\n', n - i);
			if (!nl)
				return 0;
			i = (size_t)(nl - p) + 1;
			f->dropping_line = false;
			continue;
		}
		/* At the start of a frame, or inside a newline-framed one / a length prefix. */
		if (f->pending.len == 0 && isdigit((unsigned char)p[i])) {
			/* Octet counting when digits are followed by a space. */
			size_t j = i;
			uint64_t len = 0;
			while (j < n && isdigit((unsigned char)p[j]) && j - i < 10)
				len = len * 10 + (uint64_t)(p[j++] - '0');
			if (j == n && j - i < 10) {
				/* The prefix continues in the next read: keep it as pending text
				 * and decide then. */
				buf_append(&f->pending, p + i, j - i);
				return 0;
			}
			if (j < n && p[j] == ' ') {
				i = j + 1;
				if (len == 0)
					continue;
				f->counting = true;
				f->want = (size_t)len;
				continue;
			}
		}
		if (f->pending.len > 0 && f->pending.len < 10 && !f->counting) {
			/* A digit prefix split across reads: see whether it ends in a space now. */
			bool alld = true;
			for (size_t k = 0; k < f->pending.len; k++)
				if (!isdigit((unsigned char)f->pending.data[k]))
					alld = false;
			if (alld) {
				size_t j = i;
				while (j < n && isdigit((unsigned char)p[j]) &&
				       f->pending.len + (j - i) < 10)
					j++;
				if (j < n && p[j] == ' ') {
					buf_append(&f->pending, p + i, j - i);
					uint64_t len = strtoull(buf_cstr(&f->pending), NULL, 10);
					buf_reset(&f->pending);
					i = j + 1;
					if (len) {
						f->counting = true;
						f->want = (size_t)len;
					}
					continue;
				}
				if (j == n && f->pending.len + (j - i) < 10) {
					buf_append(&f->pending, p + i, j - i);
					return 0;
				}
			}
		}
		const char *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n;
		size_t k = end - i;
		if (f->pending.len + k > f->max_msg) {
			size_t keep = f->max_msg > f->pending.len ? f->max_msg - f->pending.len : 0;
			buf_append(&f->pending, p + i, keep);
			f->truncated++;
			framer_emit(f, fn, arg);
			if (nl) {
				i = end + 1;
			} else {
				f->dropping_line = true;
				return 0;
			}
			continue;
		}
		buf_append(&f->pending, p + i, k);
		if (!nl)
			return 0;
		i = end + 1;
		if (f->pending.len > 0 && f->pending.data[f->pending.len - 1] == '\r')
			f->pending.len--;
		if (f->pending.len > 0)
			framer_emit(f, fn, arg);
	}
	return 0;
}

void logs_framer_finish(struct logs_framer *f, logs_msg_fn fn, void *arg) {
	if (f->pending.len > 0 && !f->counting)
		framer_emit(f, fn, arg);
	buf_reset(&f->pending);
}
