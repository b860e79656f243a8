/* perfdata.c: the Nagios plugin protocol (exit codes, output split into message and
 * performance data, the perfdata parser) and flap damping. Pure functions with no state:
 * called by the exec probe kind, the unit tests and the fuzz target.
 *
 * Invariant: every parser reads at most n bytes of its input and never needs a terminator.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe.h"

const char *probe_state_name(enum probe_state s) {
	switch (s) {
	case PROBE_OK:
		return "ok";
	case PROBE_FAILING:
		return "failing";
	default:
		return "unknown";
	}
}

bool probe_flap_step(struct probe_flap *f, bool success, int fail_threshold, int ok_threshold,
                     int64_t now_ms) {
	if (fail_threshold < 1)
		fail_threshold = 1;
	if (ok_threshold < 1)
		ok_threshold = 1;
	if (success) {
		f->consec_fail = 0;
		if (f->consec_ok < 1000000)
			f->consec_ok++;
		if (f->state != PROBE_OK && f->consec_ok >= ok_threshold) {
			f->state = PROBE_OK;
			f->since_ms = now_ms;
			return true;
		}
		return false;
	}
	f->consec_ok = 0;
	if (f->consec_fail < 1000000)
		f->consec_fail++;
	if (f->state != PROBE_FAILING && f->consec_fail >= fail_threshold) {
		f->state = PROBE_FAILING;
		f->since_ms = now_ms;
		return true;
	}
	return false;
}

const char *probe_nagios_name(enum probe_nagios s) {
	switch (s) {
	case NAGIOS_OK:
		return "OK";
	case NAGIOS_WARNING:
		return "WARNING";
	case NAGIOS_CRITICAL:
		return "CRITICAL";
	default:
		return "UNKNOWN";
	}
}

enum probe_nagios probe_nagios_from_exit(int exit_code) {
	if (exit_code >= 0 && exit_code <= 3)
		return (enum probe_nagios)exit_code;
	return NAGIOS_UNKNOWN;
}

bool probe_nagios_success(enum probe_nagios s, bool warning_ok) {
	return s == NAGIOS_OK || (warning_ok && s == NAGIOS_WARNING);
}

static bool is_space(char c) {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char *trimmed_dup(const char *s, size_t n) {
	while (n && is_space(*s)) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	return ward_strndup(s, n);
}

void probe_nagios_split(const char *out, size_t n, char **message, char **perfdata) {
	struct buf perf = BUF_INIT;
	const char *nl = memchr(out, '\n', n);
	size_t l1 = nl ? (size_t)(nl - out) : n;
	const char *bar = memchr(out, '|', l1);
	*message = trimmed_dup(out, bar ? (size_t)(bar - out) : l1);
	if (bar)
		buf_append(&perf, bar + 1, l1 - (size_t)(bar + 1 - out));
	if (nl) {
		/* Long text: everything after its first '|' is perfdata, to the end. */
		const char *rest = nl + 1;
		size_t rn = n - (size_t)(rest - out);
		const char *b2 = memchr(rest, '|', rn);
		if (b2) {
			buf_putc(&perf, ' ');
			buf_append(&perf, b2 + 1, rn - (size_t)(b2 + 1 - rest));
		}
	}
	/* Perfdata items are separated by whitespace of any kind. */
	for (size_t i = 0; i < perf.len; i++)
		if (is_space(perf.data[i]))
			perf.data[i] = ' ';
	*perfdata = trimmed_dup(perf.data ? perf.data : "", perf.len);
	buf_free(&perf);
}

/* Parses a decimal number in [s, s+n) entirely; false when it is not one. */
static bool parse_num(const char *s, size_t n, double *out) {
	char tmp[64];
	char *end;
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	/* strtod accepts hex, inf and nan spellings that plugins never print; refuse them so
	 * that "nan" in a label position is not taken for a number. */
	for (size_t i = 0; i < n; i++) {
		char c = tmp[i];
		if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' ||
		      c == 'E'))
			return false;
	}
	double v = strtod(tmp, &end);
	if (end != tmp + n || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* A Nagios range: [@][start][:][end], "~" meaning -infinity for start. The number reported
 * is end when present, else start. Empty is "absent". */
static bool parse_range(const char *s, size_t n, double *out, bool *has) {
	*has = false;
	if (n == 0)
		return true;
	if (s[0] == '@') {
		s++;
		n--;
	}
	const char *colon = memchr(s, ':', n);
	double v;
	if (!colon) {
		if (!parse_num(s, n, &v))
			return false;
		*out = v;
		*has = true;
		return true;
	}
	size_t ln = (size_t)(colon - s), rn = n - ln - 1;
	if (rn > 0) {
		if (!parse_num(colon + 1, rn, &v))
			return false;
		*out = v;
		*has = true;
		return true;
	}
	if (ln == 1 && s[0] == '~')
		return true; /* "~:" : no bound at all */
	if (ln == 0)
		return true;
	if (!parse_num(s, ln, &v))
		return false;
	*out = v;
	*has = true;
	return true;
}

/* Parses one item in [s, s+n) (no surrounding spaces). 0 or -1 with *why. */
static int parse_item(const char *s, size_t n, struct probe_perf *p, const char **why) {
	struct buf label = BUF_INIT;
	size_t i = 0;
	memset(p, 0, sizeof(*p));
	if (n && s[0] == '\'') {
		i = 1;
		for (;;) {
			if (i >= n) {
				*why = "unterminated quoted label";
				goto fail;
			}
			if (s[i] == '\'') {
				if (i + 1 < n && s[i + 1] == '\'') {
					buf_putc(&label, '\'');
					i += 2;
					continue;
				}
				i++;
				break;
			}
			buf_putc(&label, s[i]);
			i++;
		}
		if (i >= n || s[i] != '=') {
			*why = "expected '=' after the quoted label";
			goto fail;
		}
	} else {
		const char *eq = memchr(s, '=', n);
		if (!eq) {
			*why = "expected label=value";
			goto fail;
		}
		i = (size_t)(eq - s);
		buf_append(&label, s, i);
	}
	if (label.len == 0) {
		*why = "empty label";
		goto fail;
	}
	if (memchr(label.data, '\0', label.len)) {
		*why = "NUL byte in label";
		goto fail;
	}
	i++; /* '=' */
	/* Fields: value[UOM];warn;crit;min;max */
	const char *f[5] = {0};
	size_t fl[5] = {0};
	size_t nf = 0, start = i;
	for (size_t j = i; j <= n; j++) {
		if (j == n || s[j] == ';') {
			if (nf < 5) {
				f[nf] = s + start;
				fl[nf] = j - start;
			}
			nf++;
			start = j + 1;
		}
	}
	if (nf > 5) {
		*why = "more than 5 ';'-separated fields";
		goto fail;
	}
	/* value and unit of measure */
	size_t vl = fl[0];
	if (vl == 1 && f[0][0] == 'U') {
		p->value = NAN;
	} else {
		size_t k = 0;
		while (k < vl && ((f[0][k] >= '0' && f[0][k] <= '9') || f[0][k] == '.' ||
		                  f[0][k] == '-' || f[0][k] == '+' ||
		                  ((f[0][k] == 'e' || f[0][k] == 'E') && k > 0 && k + 1 < vl &&
		                   ((f[0][k + 1] >= '0' && f[0][k + 1] <= '9') ||
		                    f[0][k + 1] == '-' || f[0][k + 1] == '+'))))
			k++;
		if (!parse_num(f[0], k, &p->value)) {
			*why = "value is not a number";
			goto fail;
		}
		size_t ul = vl - k;
		if (ul >= sizeof(p->uom)) {
			*why = "unit of measure too long";
			goto fail;
		}
		for (size_t u = 0; u < ul; u++) {
			char c = f[0][k + u];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '%')) {
				*why = "bad unit of measure";
				goto fail;
			}
		}
		memcpy(p->uom, f[0] + k, ul);
		p->uom[ul] = '\0';
	}
	if (!parse_range(f[1], fl[1], &p->warn, &p->has_warn) ||
	    !parse_range(f[2], fl[2], &p->crit, &p->has_crit)) {
		*why = "bad warning or critical range";
		goto fail;
	}
	if ((fl[3] && !(p->has_min = parse_num(f[3], fl[3], &p->min))) ||
	    (fl[4] && !(p->has_max = parse_num(f[4], fl[4], &p->max)))) {
		*why = "bad min or max";
		goto fail;
	}
	p->label = buf_detach(&label);
	return 0;
fail:
	buf_free(&label);
	return -1;
}

int probe_perfdata_parse(const char *s, size_t n, struct probe_perf **out, size_t *nout,
                         struct ward_err *err) {
	struct probe_perf *v = NULL;
	size_t cnt = 0, cap = 0, i = 0;
	bool reported = false;
	while (i < n && cnt < PROBE_PERF_MAX_ITEMS) {
		while (i < n && is_space(s[i]))
			i++;
		if (i >= n)
			break;
		/* An item ends at the first space outside quotes. */
		size_t st = i;
		bool inq = false;
		if (s[i] == '\'') {
			inq = true;
			i++;
		}
		while (i < n) {
			if (inq) {
				if (s[i] == '\'') {
					if (i + 1 < n && s[i + 1] == '\'') {
						i += 2;
						continue;
					}
					inq = false;
				}
			} else if (is_space(s[i])) {
				break;
			}
			i++;
		}
		struct probe_perf p;
		const char *why = NULL;
		if (parse_item(s + st, i - st, &p, &why) != 0) {
			if (!reported) {
				ward_err_set(err, "perfdata at byte %zu: %s", st, why);
				reported = true;
			}
			continue;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			v = ward_xrealloc(v, cap * sizeof(*v));
		}
		v[cnt++] = p;
	}
	*out = v;
	*nout = cnt;
	return (int)cnt;
}

void probe_perf_free(struct probe_perf *p, size_t n) {
	for (size_t i = 0; p && i < n; i++)
		free(p[i].label);
	free(p);
}
