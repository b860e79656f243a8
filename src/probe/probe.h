/* probe.h: the one public header of src/probe: service probes (blackbox_exporter and
 * Monit-style health checks) run from ward's event loop.
 *
 * The "probes" config section lists checks of six kinds (http, tcp, dns, postgresql, redis,
 * exec). Each check runs every interval (with jitter) under a global concurrency bound; each
 * result is written to the tsdb with blackbox_exporter's metric names and labels
 * {job="probe", probe="<name>", instance="<target>"} plus the configured labels, and folded
 * into a damped state (ok / failing / unknown) served at GET /api/v1/checks. State changes
 * are logged, kept in the state store (table probe_events) and given to subscribers.
 *
 * The parsers below (perfdata, Nagios plugin output) and the flap-damping step are pure
 * functions, exposed for tests and for other modules that speak the Nagios protocol.
 */
#ifndef WARD_PROBE_H
#define WARD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "core/core.h"

extern const struct ward_module probe_module;

/* ---- states and state-change events ---- */
enum probe_state { PROBE_UNKNOWN = 0, PROBE_OK, PROBE_FAILING };
const char *probe_state_name(enum probe_state s); /* "unknown" "ok" "failing" */

/* A state change of one check. Strings are borrowed for the duration of the callback. */
struct probe_event {
	const char *check;  /* the check's name */
	const char *kind;   /* "http", "tcp", ... */
	const char *target; /* the instance label */
	enum probe_state from, to;
	const char *reason; /* the human reason of the result that caused the change */
	int64_t t_ms;       /* when (wall clock) */
};
typedef void (*probe_event_fn)(void *arg, const struct probe_event *ev);
/* Subscribes fn to state changes (alerting uses this). fn is called on the daemon's event
 * loop thread once the change is in the store (changes are written in batches, within
 * about a second of the result); it must not block. Returns a subscription
 * id (> 0) for probe_unsubscribe, or -1 when the table (16 entries) is full. Thread-safe. */
int probe_subscribe(probe_event_fn fn, void *arg);
void probe_unsubscribe(int id);

/* ---- flap damping ----
 * A state moves to failing after fail_threshold consecutive failures and back to ok after
 * ok_threshold consecutive successes (both >= 1). From unknown the same thresholds apply. */
struct probe_flap {
	enum probe_state state;
	int consec_fail;  /* consecutive failed results (0 after a success) */
	int consec_ok;    /* consecutive successful results (0 after a failure) */
	int64_t since_ms; /* when state was entered (0: never) */
};
/* Feeds one result; returns true when the state changed (f->since_ms = now_ms then). */
bool probe_flap_step(struct probe_flap *f, bool success, int fail_threshold, int ok_threshold,
                     int64_t now_ms);

/* ---- Nagios plugin performance data ----
 * "label=value[UOM];[warn];[crit];[min];[max]" items separated by spaces; labels may be
 * single-quoted ('' inside quotes is a quote). A value of "U" (undetermined) is kept as NaN.
 * warn/crit are Nagios ranges ("10", "10:", "~:10", "@10:20"); their number for samples is
 * the range's upper end when it has one, else its lower end; has_* says whether present. */
#define PROBE_PERF_MAX_ITEMS 256 /* a plugin printing more is truncated, not an error */
struct probe_perf {
	char *label; /* owned */
	double value;
	char uom[8]; /* "", "s", "ms", "%", "B", "KB", "c", ... */
	double warn, crit, min, max;
	bool has_warn, has_crit, has_min, has_max;
};
/* Parses s (n bytes, no terminator needed). Items that do not parse are skipped and the
 * first problem is described in err (with its byte offset); the rest is still returned.
 * Returns the number of items parsed (>= 0); *out is a new array (probe_perf_free). */
int probe_perfdata_parse(const char *s, size_t n, struct probe_perf **out, size_t *nout,
                         struct ward_err *err);
void probe_perf_free(struct probe_perf *p, size_t n);

/* The Nagios plugin protocol: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (anything else,
 * or death by a signal, is UNKNOWN). */
enum probe_nagios { NAGIOS_OK = 0, NAGIOS_WARNING = 1, NAGIOS_CRITICAL = 2, NAGIOS_UNKNOWN = 3 };
const char *probe_nagios_name(enum probe_nagios s); /* "OK" "WARNING" "CRITICAL" "UNKNOWN" */
/* exit_code: the plugin's exit status, or -1 when it was killed or did not exit normally. */
enum probe_nagios probe_nagios_from_exit(int exit_code);
/* Whether a Nagios status counts as a successful probe (OK only; WARNING is a failure
 * unless warning_ok). */
bool probe_nagios_success(enum probe_nagios s, bool warning_ok);

/* Splits plugin output (n bytes) into the message (first line up to '|', trimmed; new
 * string) and the perfdata text of every line (the part after the first '|' of line one,
 * and everything after the first '|' in the later lines; new string, items separated by
 * spaces). Either may be "" but never NULL; caller frees both. */
void probe_nagios_split(const char *out, size_t n, char **message, char **perfdata);

#endif
