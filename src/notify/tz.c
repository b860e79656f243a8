/* tz.c: wall-clock time in IANA zones for maintenance windows and on-call rotations.
 *
 * Local time comes from the system tz database through TZ + tzset + localtime_r. TZ is
 * process-wide, so every switch happens under tz_lock and TZ is put back before the lock
 * is released; ward's own code uses UTC (gmtime_r) everywhere else, so nothing reads the
 * zone meanwhile. Windows are judged on local wall-clock time, which gives the natural DST
 * behaviour: on a spring-forward night a 02:00-04:00 window lasts one hour (02:00-03:00
 * does not exist), on a fall-back night three hours (02:00-03:00 happens twice).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify/notify_internal.h"

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the TZ variable */

int nfy_localtime(const char *tz, int64_t ms, struct tm *out) {
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	if (!tz || !*tz || strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0) {
		gmtime_r(&t, out);
		return 0;
	}
	if (!nfy_tz_valid(tz))
		return -1;
	pthread_mutex_lock(&tz_lock);
	const char *old = getenv("TZ");
	char *saved = old ? ward_strdup(old) : NULL;
	setenv("TZ", tz, 1);
	tzset();
	localtime_r(&t, out);
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_lock);
	free(saved);
	return 0;
}

bool nfy_tz_valid(const char *tz) {
	if (!tz || !*tz || strcmp(tz, "UTC") == 0)
		return true;
	/* A name, not a path: the tz database lookup must stay inside zoneinfo. */
	if (tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 60)
		return false;
	for (const char *p = tz; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '/' || *p == '_' || *p == '-' ||
		      *p == '+'))
			return false;
	char path[128];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	return access(path, R_OK) == 0;
}

int nfy_parse_hhmm(const char *s) {
	if (!s)
		return -1;
	unsigned h, m;
	char tail;
	if (sscanf(s, "%2u:%2u%c", &h, &m, &tail) != 2 || h > 24 || m > 59 || (h == 24 && m))
		return -1;
	return (int)(h * 60 + m);
}

/* Howard Hinnant's days_from_civil. */
int64_t nfy_days_from_civil(int64_t y, unsigned m, unsigned d) {
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int day_index(const char *w, size_t n) {
	if (n < 3)
		return -1;
	for (int i = 0; i < 7; i++)
		if (strncasecmp(w, day_names[i], 3) == 0)
			return i;
	return -1;
}

/* "Sundays", "Sun", "Mon-Fri", "Sat,Sun", "daily", "weekdays", "weekends" -> bits */
static int parse_days(const char *s, size_t n, unsigned *out) {
	*out = 0;
	if ((n == 5 && strncasecmp(s, "daily", 5) == 0) ||
	    (n == 8 && strncasecmp(s, "everyday", 8) == 0)) {
		*out = 0x7f;
		return 0;
	}
	if (n == 8 && strncasecmp(s, "weekdays", 8) == 0) {
		*out = 0x3e;
		return 0;
	}
	if (n == 8 && strncasecmp(s, "weekends", 8) == 0) {
		*out = 0x41;
		return 0;
	}
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && isalpha((unsigned char)s[j]))
			j++;
		int a = day_index(s + i, j - i);
		if (a < 0)
			return -1;
		if (j < n && s[j] == '-') {
			size_t k = j + 1;
			while (k < n && isalpha((unsigned char)s[k]))
				k++;
			int b = day_index(s + j + 1, k - j - 1);
			if (b < 0)
				return -1;
			for (int d = a;; d = (d + 1) % 7) {
				*out |= 1u << d;
				if (d == b)
					break;
			}
			j = k;
		} else {
			*out |= 1u << a;
		}
		if (j < n && s[j] != ',')
			return -1;
		i = j + 1;
	}
	return *out ? 0 : -1;
}

int nfy_schedule_parse(const char *s, struct nfy_maint *out, struct ward_err *err) {
	/* three words: DAYS HH:MM-HH:MM [ZONE] */
	char days[64] = "", times[32] = "", zone[64] = "UTC", extra[8] = "";
	int k = sscanf(s, "%63s %31s %63s %7s", days, times, zone, extra);
	if (k < 2 || k > 3) {
		ward_err_set(err,
		             "schedule \"%s\": expected DAYS HH:MM-HH:MM ZONE, such as "
		             "\"Sundays 02:00-04:00 Europe/Berlin\" or \"Mon-Fri 22:00-06:00 UTC\"",
		             s);
		return -1;
	}
	if (parse_days(days, strlen(days), &out->weekdays) != 0) {
		ward_err_set(err,
		             "schedule \"%s\": days \"%s\" are not like Sundays, Mon-Fri, "
		             "Sat,Sun, daily or weekdays",
		             s, days);
		return -1;
	}
	char *dash = strchr(times, '-');
	if (!dash) {
		ward_err_set(err, "schedule \"%s\": times must be HH:MM-HH:MM", s);
		return -1;
	}
	*dash = '\0';
	out->from_min = nfy_parse_hhmm(times);
	out->to_min = nfy_parse_hhmm(dash + 1);
	if (out->from_min < 0 || out->to_min < 0 || out->from_min == out->to_min) {
		ward_err_set(err,
		             "schedule \"%s\": times must be HH:MM-HH:MM with two different "
		             "times (an end before the start runs past midnight)",
		             s);
		return -1;
	}
	if (!nfy_tz_valid(zone)) {
		ward_err_set(err,
		             "schedule \"%s\": unknown time zone \"%s\" (use an IANA name such "
		             "as Europe/Berlin)",
		             s, zone);
		return -1;
	}
	snprintf(out->tz, sizeof(out->tz), "%s", zone);
	out->recurring = true;
	return 0;
}

bool nfy_maint_active(const struct nfy_maint *w, int64_t now_ms) {
	if (!w->recurring)
		return now_ms >= w->start_ms && now_ms < w->end_ms;
	struct tm tm;
	if (nfy_localtime(w->tz, now_ms, &tm) != 0)
		return false;
	int min = tm.tm_hour * 60 + tm.tm_min;
	if (w->from_min < w->to_min)
		return (w->weekdays & (1u << tm.tm_wday)) && min >= w->from_min && min < w->to_min;
	/* past midnight: the evening part belongs to its day, the morning part to the day before */
	if (min >= w->from_min)
		return (w->weekdays & (1u << tm.tm_wday)) != 0;
	if (min < w->to_min)
		return (w->weekdays & (1u << ((tm.tm_wday + 6) % 7))) != 0;
	return false;
}

static int64_t floor_div(int64_t a, int64_t b) {
	int64_t q = a / b;
	if ((a % b) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

int nfy_oncall_at(const struct nfy_schedule *s, int64_t now_ms) {
	size_t n = s->c->nparticipants;
	if (n == 0)
		return -1;
	/* the latest-starting override in force wins */
	int best = -1;
	int64_t best_start = INT64_MIN;
	for (size_t i = 0; i < s->noverrides; i++) {
		const struct nfy_override *o = &s->overrides[i];
		if (now_ms >= o->start_ms && now_ms < o->end_ms && o->start_ms >= best_start &&
		    o->participant < n) {
			best = (int)o->participant;
			best_start = o->start_ms;
		}
	}
	if (best >= 0)
		return best;
	struct tm tm;
	if (nfy_localtime(s->c->time_zone, now_ms, &tm) != 0)
		return 0;
	int64_t day = nfy_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
	                                  (unsigned)tm.tm_mday);
	if (tm.tm_hour * 60 + tm.tm_min < s->handoff_min)
		day--;
	int64_t k = day - s->start_day;
	if (s->weekly)
		k = floor_div(k, 7);
	int64_t idx = k % (int64_t)n;
	if (idx < 0)
		idx += (int64_t)n;
	return (int)idx;
}
