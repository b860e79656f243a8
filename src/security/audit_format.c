/* audit_format.c: the on-disk form of an audit record, shared by the writer (audit.c), the
 * verifier (audit_verify.c) and audit_parse_line (the fuzz target).
 *
 * A record is one line: {"seq":N,"time":T,"actor_id":S,"actor_name":S,"source":S,"action":S,
 * "target":S,"result":S,"request_id":S,"details":{...},"prev":H,"hash":H}\n with exactly these
 * members in exactly this order, no whitespace, T = "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), strings
 * escaped by audit_json_str below, details compact with keys sorted (jansson JSON_COMPACT |
 * JSON_SORT_KEYS), H = 64 lower-case hex. THE HASHED BYTES are that line without the
 * ,"hash":"..." member and without the newline, i.e. the object ending in "prev":"<hex>"}.
 * The serialiser is a pure function of the parsed fields, so a verifier recomputes the bytes
 * from the parsed record; a line that parses but is not byte-identical to its re-serialisation
 * was edited. The string escaper lives here, not in base, because it is part of the format:
 * it must stay idempotent (output re-parsed and re-escaped is unchanged) forever.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "security/audit_internal.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string literal. Invalid UTF-8 bytes become U+FFFD written raw (not as \ufffd), so
 * escaping the decoded output again yields the same bytes. */
static void audit_json_str(struct buf *b, const char *s) {
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	buf_putc(b, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t len;
		const char *esc = NULL;
		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		default:
			break;
		}
		if (esc) {
			buf_puts(b, esc);
			i++;
			continue;
		}
		if (c < 0x20) {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			buf_append(b, u, sizeof u);
			i++;
			continue;
		}
		len = utf8_seq_len(p + i, n - i);
		if (len == 0) {
			buf_append(b, "\xef\xbf\xbd", 3);
			i++;
			continue;
		}
		buf_append(b, p + i, len);
		i += len;
	}
	buf_putc(b, '"');
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* The latest instant the four-digit year of the format can show: 9999-12-31T23:59:59.999Z. */
#define AUDIT_TIME_MAX_MS 253402300799999LL

void audit_fmt_time(int64_t ms, char out[32]) {
	int64_t days, rem, y;
	unsigned m, d;
	if (ms < 0)
		ms = 0; /* clocks before 1970 are broken clocks; the format has no sign */
	if (ms > AUDIT_TIME_MAX_MS)
		ms = AUDIT_TIME_MAX_MS;
	days = ms / 86400000;
	rem = ms % 86400000;
	civil_from_days(days, &y, &m, &d);
	snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)y % 10000u, m % 100u,
	         d % 100u, (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
	         (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
}

static int digits(const char *s, size_t n, unsigned *out) {
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int audit_parse_time(const char *s, size_t n, int64_t *out_ms) {
	unsigned y, mo, d, h, mi, sec, ms;
	if (n != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    s[19] != '.' || s[23] != 'Z')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec) ||
	    digits(s + 20, 3, &ms))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return -1;
	*out_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms;
	return 0;
}

char *audit_canon_details(const char *text, size_t n, struct ward_err *err) {
	json_error_t je;
	json_t *v = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	char *out = NULL;
	if (!v) {
		ward_err_set(err, "details are not valid JSON: %s (line %d, column %d)", je.text,
		             je.line, je.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		ward_err_set(err, "details must be a JSON object, not another JSON value");
		goto out;
	}
	out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (!out)
		ward_err_set(err, "details could not be serialised (out of memory?)");
out:
	json_decref(v);
	return out;
}

void audit_canon(struct buf *out, const struct audit_entry *e) {
	char ts[32];
	audit_fmt_time(e->ts_ms, ts);
	buf_printf(out, "{\"seq\":%" PRIu64 ",\"time\":\"%s\",\"actor_id\":", e->seq, ts);
	audit_json_str(out, e->actor_id);
	buf_puts(out, ",\"actor_name\":");
	audit_json_str(out, e->actor_name);
	buf_puts(out, ",\"source\":");
	audit_json_str(out, e->source);
	buf_puts(out, ",\"action\":");
	audit_json_str(out, e->action);
	buf_puts(out, ",\"target\":");
	audit_json_str(out, e->target);
	buf_puts(out, ",\"result\":");
	audit_json_str(out, e->result);
	buf_puts(out, ",\"request_id\":");
	audit_json_str(out, e->request_id);
	buf_puts(out, ",\"details\":");
	buf_puts(out, e->details && e->details[0] ? e->details : "{}");
	buf_puts(out, ",\"prev\":\"");
	buf_puts(out, e->prev);
	buf_puts(out, "\"}");
}

void audit_line_from_canon(struct buf *line, const struct buf *canon, const char *hash_hex) {
	buf_append(line, canon->data, canon->len - 1); /* all but the closing '}' */
	buf_puts(line, ",\"hash\":\"");
	buf_puts(line, hash_hex);
	buf_puts(line, "\"}");
}

void audit_entry_free(struct audit_entry *e) {
	if (!e)
		return;
	free(e->actor_id);
	free(e->actor_name);
	free(e->source);
	free(e->action);
	free(e->target);
	free(e->result);
	free(e->details);
	free(e->request_id);
	memset(e, 0, sizeof *e);
}

static bool is_hex64(const char *s, size_t n) {
	if (n != AUDIT_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The members every record has; bit i of the "seen" mask stands for names[i]. */
static const char *const member_names[] = {"seq",        "time",    "actor_id", "actor_name",
                                           "source",     "action",  "target",   "result",
                                           "request_id", "details", "prev",     "hash"};
enum {
	M_SEQ,
	M_TIME,
	M_ACTOR_ID,
	M_ACTOR_NAME,
	M_SOURCE,
	M_ACTION,
	M_TARGET,
	M_RESULT,
	M_REQUEST_ID,
	M_DETAILS,
	M_PREV,
	M_HASH,
	M_COUNT
};

int audit_parse_line(const char *line, size_t n, struct audit_entry *out, struct ward_err *err) {
	json_error_t je;
	json_t *root, *v;
	const char *key;
	unsigned seen = 0;
	char **strs[M_COUNT] = {[M_ACTOR_ID] = &out->actor_id,    [M_ACTOR_NAME] = &out->actor_name,
	                        [M_SOURCE] = &out->source,        [M_ACTION] = &out->action,
	                        [M_TARGET] = &out->target,        [M_RESULT] = &out->result,
	                        [M_REQUEST_ID] = &out->request_id};

	memset(out, 0, sizeof *out);
	root = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		ward_err_set(err, "not JSON: %s at column %d", je.text, je.column);
		return -1;
	}
	if (!json_is_object(root)) {
		ward_err_set(err, "not a JSON object");
		goto fail;
	}
	json_object_foreach(root, key, v) {
		int m;
		for (m = 0; m < M_COUNT; m++)
			if (strcmp(key, member_names[m]) == 0)
				break;
		if (m == M_COUNT) {
			ward_err_set(err, "unknown member \"%.64s\"", key);
			goto fail;
		}
		seen |= 1u << m;
		if (m == M_SEQ) {
			if (!json_is_integer(v) || json_integer_value(v) < 1) {
				ward_err_set(err, "\"seq\" must be an integer >= 1");
				goto fail;
			}
			out->seq = (uint64_t)json_integer_value(v);
		} else if (m == M_DETAILS) {
			if (!json_is_object(v)) {
				ward_err_set(err, "\"details\" must be a JSON object");
				goto fail;
			}
			out->details = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
			if (!out->details) {
				ward_err_set(err, "\"details\" could not be serialised");
				goto fail;
			}
		} else {
			const char *s = json_string_value(v);
			size_t len = json_string_length(v);
			if (!json_is_string(v)) {
				ward_err_set(err, "\"%s\" must be a string", member_names[m]);
				goto fail;
			}
			if (m == M_TIME) {
				if (audit_parse_time(s, len, &out->ts_ms) < 0) {
					ward_err_set(err,
					             "\"time\" is not YYYY-MM-DDTHH:MM:SS.mmmZ");
					goto fail;
				}
			} else if (m == M_PREV || m == M_HASH) {
				if (!is_hex64(s, len)) {
					ward_err_set(err, "\"%s\" is not 64 lower-case hex digits",
					             member_names[m]);
					goto fail;
				}
				memcpy(m == M_PREV ? out->prev : out->hash, s, len + 1);
			} else {
				*strs[m] = ward_strndup(s, len);
			}
		}
	}
	if (seen != (1u << M_COUNT) - 1) {
		for (int m = 0; m < M_COUNT; m++) {
			if (!(seen & (1u << m))) {
				ward_err_set(err, "member \"%s\" is missing", member_names[m]);
				break;
			}
		}
		goto fail;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	audit_entry_free(out);
	return -1;
}

void audit_segment_name(uint32_t no, char out[32]) {
	snprintf(out, 32, "%06" PRIu32 ".log", no);
}

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Segment names are 6 to 9 digits then ".log"; anything else in the directory is ignored. */
static bool segment_number(const char *name, uint32_t *no) {
	size_t n = strlen(name), nd = n - 4;
	unsigned long v = 0;
	if (n < 10 || n > 13 || strcmp(name + nd, ".log") != 0)
		return false;
	for (size_t i = 0; i < nd; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(name[i] - '0');
	}
	if (v == 0)
		return false;
	*no = (uint32_t)v;
	return true;
}

int audit_list_segments(const char *dir, uint32_t **out, size_t *n, struct ward_err *err) {
	DIR *d = opendir(dir);
	struct dirent *de;
	uint32_t *v = NULL, no;
	size_t cnt = 0, cap = 0;
	*out = NULL;
	*n = 0;
	if (!d) {
		ward_err_set(err, "audit directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!segment_number(de->d_name, &no))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = ward_xrealloc(v, cap * sizeof *v);
		}
		v[cnt++] = no;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_u32);
	*out = v;
	*n = cnt;
	return 0;
}
