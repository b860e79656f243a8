/* timeutil.c: clocks and the one RFC 3339 / Unix-seconds time parser and formatter.
 *
 * Timestamps are int64_t milliseconds since the Unix epoch (UTC). The calendar math is
 * done here (days_from_civil) rather than with timegm/mktime so that TZ never matters
 * and years outside time_t's comfortable range fail cleanly. Parsers take pointer+length.
 * Callers: log.c (line timestamps), the API and CLI (time arguments), stores.
 */
#include "base/base.h"

#include <stdio.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

int64_t ward_now_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ward_mono_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ward_mono_ms(void) {
	return ward_mono_ns() / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

void ward_fmt_rfc3339(int64_t ms, char out[32]) {
	int64_t days, rem, y;
	int mo, d;

	days = ms / MS_PER_DAY;
	rem = ms % MS_PER_DAY;
	if (rem < 0) {
		rem += MS_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, mo, d,
	         (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
	         (int)(rem % 1000));
}

/* Reads exactly `digits` decimal digits at s[*i]. */
static int read_fixed(const char *s, size_t n, size_t *i, int digits, int *out) {
	int v = 0, k;

	if (*i + (size_t)digits > n)
		return -1;
	for (k = 0; k < digits; k++) {
		char c = s[*i + (size_t)k];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*i += (size_t)digits;
	*out = v;
	return 0;
}

static bool is_leap(int64_t y) {
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int parse_rfc3339(const char *s, size_t n, int64_t *out_ms) {
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	size_t i = 0;
	int y, mo, d, h, mi, sec, frac_ms = 0, scale = 100, oh, om, sign;
	int64_t ms;

	if (read_fixed(s, n, &i, 4, &y) || i >= n || s[i++] != '-' ||
	    read_fixed(s, n, &i, 2, &mo) || i >= n || s[i++] != '-' ||
	    read_fixed(s, n, &i, 2, &d) || i >= n || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
		return -1;
	i++;
	if (read_fixed(s, n, &i, 2, &h) || i >= n || s[i++] != ':' ||
	    read_fixed(s, n, &i, 2, &mi) || i >= n || s[i++] != ':' ||
	    read_fixed(s, n, &i, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
		return -1;
	if (sec == 60) /* a leap second is folded onto the next second's start */
		sec = 59, frac_ms = 999, scale = 0;
	if (i < n && s[i] == '.') {
		size_t start = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (scale > 0) {
				frac_ms += (s[i] - '0') * scale;
				scale /= 10;
			}
			i++;
		}
		if (i == start)
			return -1;
	}
	if (i >= n)
		return -1;
	ms = days_from_civil(y, mo, d) * MS_PER_DAY + (int64_t)h * 3600000 + (int64_t)mi * 60000 +
	     (int64_t)sec * 1000 + frac_ms;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i++] == '-' ? -1 : 1;
		if (read_fixed(s, n, &i, 2, &oh) || i >= n || s[i++] != ':' ||
		    read_fixed(s, n, &i, 2, &om) || oh > 23 || om > 59)
			return -1;
		ms -= sign * ((int64_t)oh * 3600000 + (int64_t)om * 60000);
	} else {
		return -1;
	}
	if (i != n)
		return -1;
	*out_ms = ms;
	return 0;
}

/* Unix seconds with an optional fraction; limited to ±1e14 s so ms never overflow. */
static int parse_unix(const char *s, size_t n, int64_t *out_ms) {
	size_t i = 0;
	int64_t secs = 0, frac = 0, scale = 100;
	int neg = 0;
	bool digits = false;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (secs > 100000000000000LL)
			return -1;
		secs = secs * 10 + (s[i++] - '0');
		digits = true;
	}
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (scale > 0) {
				frac += (s[i] - '0') * scale;
				scale /= 10;
			}
			i++;
			digits = true;
		}
	}
	if (!digits || i != n)
		return -1;
	*out_ms = (neg ? -1 : 1) * (secs * 1000 + frac);
	return 0;
}

int ward_parse_time(const char *s, size_t n, int64_t *out_ms) {
	if (!s || n == 0)
		return -1;
	if (n >= 10 && s[4] == '-')
		return parse_rfc3339(s, n, out_ms);
	return parse_unix(s, n, out_ms);
}
