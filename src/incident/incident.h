/* incident.h: the one public header of src/incident: incident response on top of notify.
 *
 * Incidents open from firing alerts that match the "incidents.open_on" matchers, or by hand
 * (POST /api/v1/incidents). Alerts of one group (same alertname and incidents.group_by
 * labels) attach to the open incident instead of opening more. An incident walks the
 * phases detected -> contained -> investigating -> remediated -> recovered -> closed; each
 * move is timestamped and attributed, and everything (alerts, notifications, escalations,
 * acks, notes, moves) lands on its timeline in the state store (component "incident").
 * When every attached alert has resolved the incident moves to recovered on its own.
 *
 * The pure helpers below (phases, severities, matchers, group keys) are what the module
 * is built on; they are exported for unit tests and the CLI.
 */
#ifndef WARD_INCIDENT_H
#define WARD_INCIDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* The phases, in order (the seeds' six steps of incident response). */
enum incident_status {
	INCIDENT_DETECTED = 0,
	INCIDENT_CONTAINED,
	INCIDENT_INVESTIGATING,
	INCIDENT_REMEDIATED,
	INCIDENT_RECOVERED,
	INCIDENT_CLOSED,
	INCIDENT_NSTATUS,
};
/* "detected" ... "closed"; "?" for anything else. */
const char *incident_status_name(enum incident_status s);
/* Parses a phase name (exact, lower case). 0 or -1. */
int incident_status_parse(const char *s, enum incident_status *out);
/* The moves allowed: forward to any later phase (skipping is allowed: a fix may contain
 * and remediate at once), and recovered -> investigating when an attached alert fires
 * again. Closed is final; staying put is not a move. */
bool incident_transition_allowed(enum incident_status from, enum incident_status to);
/* Makes the move when allowed: *cur = to and at_ms[to] = now_ms; moving back to
 * investigating clears the times of the phases after it. 0, or -1 (nothing changed). */
int incident_advance(enum incident_status *cur, int64_t at_ms[INCIDENT_NSTATUS],
                     enum incident_status to, int64_t now_ms);

/* Severity 1..4 (SEV1 worst) from an alert's severity label: critical/page/sev1 -> 1,
 * error/high/major/sev2 -> 2, warning/medium/minor/sev3 -> 3, anything else (or NULL) -> 4. */
int incident_severity_from_label(const char *severity);
/* "SEV1".."SEV4" (any case) or "1".."4" -> 1..4; -1 otherwise. */
int incident_severity_parse(const char *s);

enum incident_category {
	INCIDENT_CAT_AVAILABILITY = 0,
	INCIDENT_CAT_PERFORMANCE,
	INCIDENT_CAT_SECURITY,
	INCIDENT_CAT_DATA,
};
const char *incident_category_name(enum incident_category c);
int incident_category_parse(const char *s, enum incident_category *out); /* 0 or -1 */

/* Parses one Alertmanager-style matcher (`severity=critical`, `severity="critical"`,
 * `job=~"api.*"`, `env!=dev`) of n bytes into m (matcher_free it). 0, or -1 with err
 * naming the offset. */
int incident_matcher_parse(const char *s, size_t n, struct matcher *m, struct ward_err *err);
/* True when every matcher matches ls (an empty set matches nothing: no policy, no
 * automatic incidents). */
bool incident_matchers_match(const struct matcher *m, size_t n, const struct labels *ls);
/* The group key of an alert: its alertname and the group_by labels, as
 * {alertname="X",job="y"} (sorted). Alerts with equal keys share one open incident. */
void incident_group_key(const struct labels *ls, char *const *group_by, size_t ngroup_by,
                        struct buf *out);

/* The ward_module of incidents (section "incidents"; routes /api/v1/incidents...). */
struct ward_module;
extern const struct ward_module incident_module;

#endif
