/* notify.h: the one public header of src/notify: ward's Alertmanager: it takes alerts,
 * routes, groups, inhibits and silences them, escalates them along policies and on-call
 * schedules, and delivers notifications with retries.
 *
 * Alerts come in as Alertmanager takes them (the rule evaluator of src/alert calls
 * notify_post_alerts(), and POST /api/v2/alerts accepts them from a real Prometheus).
 */
#ifndef WARD_NOTIFY_H
#define WARD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct notify_alert {
	struct labels labels;      /* identity: alertname and the other labels */
	struct labels annotations; /* summary, description, runbook_url, ... */
	int64_t starts_at_ms;
	int64_t ends_at_ms;        /* 0: firing; otherwise resolved at this time */
	const char *generator_url; /* may be NULL */
};

/* Takes alerts as Alertmanager's POST /api/v2/alerts does: each one is created or updated
 * by its label set; one with ends_at in the past is resolved. Copies everything.
 * Thread-safe. 0, or -1 with err (the module is not running). */
int notify_post_alerts(const struct notify_alert *v, size_t n, struct ward_err *err);

/* One matcher in Alertmanager's syntax (`severity=critical`, `job=~"api.*"`, `env!=dev`;
 * the value bare or quoted with Go escapes) of n bytes into out (matcher_free it). 0, or -1
 * with err naming the offset. For other modules that take matchers in their config. */
int notify_matcher_parse(const char *s, size_t n, struct matcher *out, struct ward_err *err);

/* ---- events, for the incident module and other followers ----
 * A subscriber is called for every alert state change, notification result, escalation
 * step and acknowledgement, on ward's event loop thread (or the caller's thread for
 * alerts posted through notify_post_alerts), never with notify's lock held: it may call
 * back into notify. Everything in the event is borrowed for the call. */
enum notify_event_kind {
	NOTIFY_EV_FIRING = 0,   /* an alert started firing (first seen, or again after resolving) */
	NOTIFY_EV_RESOLVED,     /* an alert resolved */
	NOTIFY_EV_NOTIFICATION, /* a delivery finished: result "success", "failure", "expired" */
	NOTIFY_EV_ESCALATED,    /* an escalation reached level (1-based) */
	NOTIFY_EV_ACK,          /* someone acknowledged an alert; escalation stops */
};
struct notify_event {
	enum notify_event_kind kind;
	int64_t at_ms;
	const char *fingerprint;     /* 16 hex; "" for group notifications */
	const struct labels *labels; /* the alert's labels; NULL for notifications */
	const char *receiver;        /* NOTIFICATION, ESCALATED: the receiver */
	const char *integration;     /* NOTIFICATION: "webhook", "email", ... */
	const char *result;          /* NOTIFICATION: "success" "failure" "expired" */
	const char *actor;           /* ACK: who ("alice (0123...)", "link", ...) */
	int level;                   /* ESCALATED: 1-based level */
	const char *group_key;       /* NOTIFICATION: the group or escalation key */
};
typedef void (*notify_event_fn)(const struct notify_event *ev, void *arg);
/* Adds a subscriber (at most 16). Call from a module's init or start. 0 or -1. */
int notify_subscribe(notify_event_fn fn, void *arg);

/* Acknowledges the alert with this fingerprint: its escalation stops. actor says who.
 * 0, 1 when there is no escalation to acknowledge, -1 with err. Audits nothing (callers
 * with a request audit it). */
int notify_ack(const char *fingerprint, const char *actor, struct ward_err *err);

/* The ward_module of notify (sections "notify"; routes /api/v2/alerts, /api/v2/silences,
 * /api/v1/notifications, /api/v1/escalations, /api/v1/oncall, /ack/<token>). */
struct ward_module;
extern const struct ward_module notify_module;

#endif
