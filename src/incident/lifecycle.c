/* lifecycle.c: the pure rules of an incident: its phases and the moves between them,
 * severities and categories, open_on matchers and group keys. No I/O, no state: module.c
 * applies these to what the state store holds, and the unit tests prove them directly.
 * Invariant: an incident's phase only moves forward, except recovered -> investigating
 * when an alert of it fires again; closed is final.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "incident/incident.h"
#include "notify/notify.h"

static const char *const status_names[INCIDENT_NSTATUS] = {
        "detected", "contained", "investigating", "remediated", "recovered", "closed",
};

const char *incident_status_name(enum incident_status s) {
	return (unsigned)s < INCIDENT_NSTATUS ? status_names[s] : "?";
}

int incident_status_parse(const char *s, enum incident_status *out) {
	for (int i = 0; s && i < INCIDENT_NSTATUS; i++)
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum incident_status)i;
			return 0;
		}
	return -1;
}

bool incident_transition_allowed(enum incident_status from, enum incident_status to) {
	if ((unsigned)from >= INCIDENT_NSTATUS || (unsigned)to >= INCIDENT_NSTATUS)
		return false;
	if (from == INCIDENT_CLOSED)
		return false;
	if (from == INCIDENT_RECOVERED && to == INCIDENT_INVESTIGATING)
		return true;
	return to > from;
}

int incident_advance(enum incident_status *cur, int64_t at_ms[INCIDENT_NSTATUS],
                     enum incident_status to, int64_t now_ms) {
	if (!incident_transition_allowed(*cur, to))
		return -1;
	if (to < *cur)
		for (int i = to + 1; i < INCIDENT_NSTATUS; i++)
			at_ms[i] = 0;
	at_ms[to] = now_ms;
	*cur = to;
	return 0;
}

static bool in_list(const char *s, const char *const *list) {
	for (size_t i = 0; list[i]; i++)
		if (strcasecmp(s, list[i]) == 0)
			return true;
	return false;
}

int incident_severity_from_label(const char *severity) {
	static const char *const sev1[] = {"critical", "page", "sev1", "p1", "fatal", NULL};
	static const char *const sev2[] = {"error", "high", "major", "sev2", "p2", NULL};
	static const char *const sev3[] = {"warning", "warn", "medium", "minor",
	                                   "sev3",    "p3",   NULL};
	if (!severity)
		return 4;
	if (in_list(severity, sev1))
		return 1;
	if (in_list(severity, sev2))
		return 2;
	if (in_list(severity, sev3))
		return 3;
	return 4;
}

int incident_severity_parse(const char *s) {
	if (!s)
		return -1;
	if (strncasecmp(s, "sev", 3) == 0)
		s += 3;
	if (s[0] >= '1' && s[0] <= '4' && s[1] == '\0')
		return s[0] - '0';
	return -1;
}

static const char *const category_names[] = {"availability", "performance", "security", "data"};

const char *incident_category_name(enum incident_category c) {
	return (unsigned)c < 4 ? category_names[c] : "?";
}

int incident_category_parse(const char *s, enum incident_category *out) {
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, category_names[i]) == 0) {
			*out = (enum incident_category)i;
			return 0;
		}
	return -1;
}

int incident_matcher_parse(const char *s, size_t n, struct matcher *m, struct ward_err *err) {
	return notify_matcher_parse(s, n, m, err); /* one matcher syntax for the whole daemon */
}

bool incident_matchers_match(const struct matcher *m, size_t n, const struct labels *ls) {
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!matcher_matches(&m[i], labels_get(ls, m[i].name)))
			return false;
	return true;
}

void incident_group_key(const struct labels *ls, char *const *group_by, size_t ngroup_by,
                        struct buf *out) {
	struct labels k;
	labels_init(&k);
	const char *an = labels_get(ls, "alertname");
	if (an)
		labels_set(&k, "alertname", an);
	for (size_t i = 0; i < ngroup_by; i++) {
		const char *v = labels_get(ls, group_by[i]);
		if (v)
			labels_set(&k, group_by[i], v);
	}
	labels_write(out, &k);
	labels_free(&k);
}
