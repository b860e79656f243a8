/* notify_internal.h: what the files of src/notify share: the decoded "notify" config
 * section, its compiled form (matchers, route tree, windows, schedules), the engine state
 * (alerts, groups, silences, escalations) and the delivery jobs.
 *
 * Threads: the engine (struct nfy_engine) is guarded by one mutex held by its callers
 * (module.c); engine functions themselves take no lock and are pure in `now_ms`, which is
 * what makes them unit-testable with a fake clock.
 */
#ifndef WARD_NOTIFY_INTERNAL_H
#define WARD_NOTIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "base/base.h"
#include "conf/conf.h"
#include "notify/notify.h"

/* ---- the decoded config section (conf.h schema-driven) ---- */
struct nc_route {
	char *receiver;
	char **matchers;
	size_t nmatchers;
	char **group_by;
	size_t ngroup_by;
	bool cont;
	char *group_wait; /* durations as text: absent means "inherit from the parent" */
	char *group_interval;
	char *repeat_interval;
	struct nc_route *routes;
	size_t nroutes;
};
struct nc_webhook {
	char *url;
	bool send_resolved;
	int64_t max_alerts;
};
struct nc_slack {
	char *api_url;
	char *channel;
	char *username;
	bool send_resolved;
};
struct nc_email {
	char *to;
	char *from;
	char *smarthost;
	char *auth_username;
	char *auth_password;
	int tls; /* enum nfy_tls; -1 .. : index into tls names, 0 = inherit */
	bool send_resolved;
};
struct nc_exec {
	char **command;
	size_t ncommand;
	int64_t timeout_ms;
	bool send_resolved;
};
struct nc_am {
	char *url;
};
struct nc_receiver {
	char *name;
	struct nc_webhook *webhooks;
	size_t nwebhooks;
	struct nc_slack *slacks;
	size_t nslacks;
	struct nc_email *emails;
	size_t nemails;
	struct nc_exec *execs;
	size_t nexecs;
	struct nc_am *ams;
	size_t nams;
};
struct nc_inhibit {
	char **source;
	size_t nsource;
	char **target;
	size_t ntarget;
	char **equal;
	size_t nequal;
};
struct nc_maint {
	char *name;
	char **matchers;
	size_t nmatchers;
	char *start; /* one-off: RFC 3339 */
	char *end;
	char *schedule; /* recurring: "Sundays 02:00-04:00 Europe/Berlin" */
};
struct nc_level {
	int64_t after_ms; /* since the escalation started */
	char **receivers;
	size_t nreceivers;
};
struct nc_policy {
	char *name;
	char **matchers;
	size_t nmatchers;
	struct nc_level *levels;
	size_t nlevels;
};
struct nc_participant {
	char *name;
	char *email;
	char *webhook;
};
struct nc_override {
	char *participant;
	char *start;
	char *end;
};
struct nc_schedule {
	char *name;
	int rotation;  /* 0 daily, 1 weekly */
	char *handoff; /* "09:00" local */
	char *time_zone;
	char *start; /* "2026-01-05": the first handoff day */
	struct nc_participant *participants;
	size_t nparticipants;
	struct nc_override *overrides;
	size_t noverrides;
};
struct nc_smtp {
	char *smarthost;
	char *from;
	char *auth_username;
	char *auth_password;
	int tls;
	char *ca_file;             /* PEM CA bundle trusted for the server's certificate */
	bool insecure_skip_verify; /* accept any certificate and host name (testing only) */
};
struct nc_conf {
	char *external_url;
	int64_t resolve_timeout_ms;
	int64_t retry_initial_ms;
	int64_t retry_max_ms;
	int64_t retry_expire_ms;
	int64_t delivery_timeout_ms;
	int64_t ack_link_ttl_ms;
	int64_t history_ms;
	struct nc_smtp smtp;
	struct nc_route route;
	struct nc_receiver *receivers;
	size_t nreceivers;
	struct nc_inhibit *inhibits;
	size_t ninhibits;
	struct nc_maint *maints;
	size_t nmaints;
	struct nc_policy *policies;
	size_t npolicies;
	struct nc_schedule *schedules;
	size_t nschedules;
};
/* Registers the "notify" section. */
void nfy_config_register(void);
extern const struct conf_schema nfy_conf_schema;

/* ---- matchers in Alertmanager's syntax ---- */
struct nfy_matchers {
	struct matcher *v;
	size_t n;
};
/* One matcher: `name=value`, `name!="v"`, `name=~"re.*"`, `name!~re`. Value may be quoted
 * (Go escapes \" \\ \n) or bare (trimmed). 0, or -1 with err naming the position. */
int nfy_matcher_parse(const char *s, size_t n, struct matcher *out, struct ward_err *err);
/* A list: `{a="b", c=~"d"}` or `a="b",c=~"d"` or a single matcher. Appends to out. */
int nfy_matchers_parse(const char *s, size_t n, struct nfy_matchers *out, struct ward_err *err);
/* Each of strs (one or more matchers each) into out. */
int nfy_matchers_parse_strv(char *const *strs, size_t n, struct nfy_matchers *out,
                            struct ward_err *err);
void nfy_matchers_free(struct nfy_matchers *m);
bool nfy_matchers_match(const struct nfy_matchers *m, const struct labels *ls);
/* Writes {a="b",c=~"d"} */
void nfy_matchers_write(struct buf *out, const struct nfy_matchers *m);

/* ---- the compiled config ---- */
enum nfy_tls { NFY_TLS_INHERIT = 0, NFY_TLS_NONE, NFY_TLS_TRY, NFY_TLS_STARTTLS, NFY_TLS_TLS };

struct nfy_route {
	char *receiver;
	struct nfy_matchers m;
	char **group_by; /* borrowed from the decoded conf */
	size_t ngroup_by;
	bool group_all; /* group_by: ['...'] */
	bool cont;
	int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
	char *key; /* "{}/{severity=\"critical\"}" as Alertmanager keys routes */
	struct nfy_route *kids;
	size_t nkids;
};
struct nfy_inhibit {
	struct nfy_matchers source, target;
	char **equal;
	size_t nequal;
};
struct nfy_maint {
	const char *name;
	struct nfy_matchers m;
	int64_t start_ms, end_ms; /* one-off; 0 when recurring */
	bool recurring;
	unsigned weekdays;    /* bit 0 = Sunday, as struct tm */
	int from_min, to_min; /* minutes after local midnight; to <= from wraps past midnight */
	char tz[64];
};
struct nfy_policy {
	const char *name;
	struct nfy_matchers m;
	const struct nc_level *levels; /* borrowed */
	size_t nlevels;
};
struct nfy_override {
	size_t participant;
	int64_t start_ms, end_ms;
};
struct nfy_schedule {
	const struct nc_schedule *c; /* borrowed */
	bool weekly;
	int handoff_min;
	int64_t start_day; /* days since 1970-01-01 of the first handoff day (civil, local) */
	struct nfy_override *overrides;
	size_t noverrides;
};
struct nfy_cfg {
	const struct nc_conf *c; /* borrowed: the caller keeps the struct conf referenced */
	struct nfy_route root;
	struct nfy_inhibit *inhibits;
	size_t ninhibits;
	struct nfy_maint *maints;
	size_t nmaints;
	struct nfy_policy *policies;
	size_t npolicies;
	struct nfy_schedule *schedules;
	size_t nschedules;
};
/* Compiles a decoded section. NULL with err (one line per problem). */
struct nfy_cfg *nfy_cfg_compile(const struct nc_conf *c, struct ward_err *err);
void nfy_cfg_free(struct nfy_cfg *cfg);
const struct nc_receiver *nfy_cfg_receiver(const struct nfy_cfg *cfg, const char *name);
const struct nfy_schedule *nfy_cfg_schedule(const struct nfy_cfg *cfg, const char *name);
/* Alertmanager's route matching: the routes an alert goes to (deepest matches, continue
 * honoured). out has room for max; returns how many. */
size_t nfy_route_match(const struct nfy_route *root, const struct labels *ls,
                       const struct nfy_route **out, size_t max);

/* ---- time zones, windows, schedules (tz.c) ---- */
/* Local time of ms in an IANA zone ("Europe/Berlin"; "" or "UTC" for UTC). 0 or -1 when the
 * zone does not exist. Serialised by a lock: TZ is process-wide. */
int nfy_localtime(const char *tz, int64_t ms, struct tm *out);
bool nfy_tz_valid(const char *tz);
/* "Sundays 02:00-04:00 Europe/Berlin", "Mon-Fri 22:00-06:00 UTC", "daily 01:00-02:00 UTC". */
int nfy_schedule_parse(const char *s, struct nfy_maint *out, struct ward_err *err);
bool nfy_maint_active(const struct nfy_maint *w, int64_t now_ms);
/* "HH:MM" -> minutes. -1 on error. */
int nfy_parse_hhmm(const char *s);
int64_t nfy_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Who is on duty: index into participants, or -1 when there are none. */
int nfy_oncall_at(const struct nfy_schedule *s, int64_t now_ms);

/* ---- the engine ---- */
struct nfy_alert {
	char fp[17];
	struct labels labels;
	struct labels annotations;
	int64_t starts_ms, ends_ms, updated_ms;
	char *generator_url;
	bool ends_explicit; /* endsAt was given (else now + resolve_timeout) */
	bool firing;        /* last state announced to subscribers */
};
struct nfy_silence {
	char id[37];
	struct nfy_matchers m;
	json_t *matchers_json; /* as given, for the API */
	int64_t starts_ms, ends_ms, updated_ms;
	char *created_by;
	char *comment;
};
struct nfy_group {
	char *key;
	char *route_key;
	const struct nfy_route *route; /* valid for the cfg the engine holds */
	char *receiver;
	struct labels group_labels;
	char (*fps)[17];
	size_t nfps, capfps;
	int64_t next_flush_ms;
	int64_t last_sent_ms;
	uint64_t last_hash;
	bool sent_firing; /* something firing was sent, so a resolved notice is due */
};
struct nfy_esc {
	char fp[17];
	char *policy;
	int level; /* 0-based level reached */
	int64_t started_ms;
	int64_t acked_ms;
	char *acked_by;
	int64_t resolved_ms;
	json_t *alert; /* the alert as posted, so a restart can resume without it */
};
/* What the engine wants sent: a notification to a receiver name ("oncall:x" allowed)
 * about some alerts. Built into jobs by deliver.c. */
struct nfy_out {
	char *receiver;
	char *group_key;
	struct labels group_labels;
	json_t *alerts; /* array of alert objects in webhook v4 shape */
	bool firing;    /* any firing */
	int esc_level;  /* 0: route notification; else the 1-based escalation level */
};
struct nfy_events {
	struct notify_event *v;
	char **strs; /* owned strings the events point to */
	struct labels **lss;
	size_t n, cap, nstrs, caps, nlss, capl;
};

struct nfy_engine {
	struct nfy_cfg *cfg;
	struct nfy_alert **alerts;
	size_t nalerts, capalerts;
	struct nfy_group **groups;
	size_t ngroups, capgroups;
	struct nfy_silence **silences;
	size_t nsilences, capsilences;
	struct nfy_esc **escs;
	size_t nescs, capescs;
	struct nfy_out *outs;
	size_t nouts, capouts;
	struct nfy_events ev;
	/* escalation rows that changed and must be written to the store */
	char (*dirty_escs)[17];
	size_t ndirty, capdirty;
	const char *ack_base; /* external URL for ack links; NULL: none */
	uint8_t ack_key[32];
	bool have_key;
};
void nfy_engine_init(struct nfy_engine *e);
void nfy_engine_free(struct nfy_engine *e);
/* Swaps in a compiled config (the engine takes it); groups are re-derived. */
void nfy_engine_set_cfg(struct nfy_engine *e, struct nfy_cfg *cfg);
struct nfy_alert *nfy_engine_find(struct nfy_engine *e, const char *fp);
/* Takes alerts (copies). */
void nfy_engine_post(struct nfy_engine *e, const struct notify_alert *v, size_t n, int64_t now_ms);
/* Does what is due at now_ms: group flushes, escalation steps, garbage collection.
 * Appends to e->outs and e->ev. Returns the earliest time something is due next (or
 * now + 1 s). */
int64_t nfy_engine_tick(struct nfy_engine *e, int64_t now_ms);
void nfy_outs_clear(struct nfy_engine *e);
void nfy_events_clear(struct nfy_events *ev);
/* Why an alert is muted at now: silence ids, inhibiting fingerprints, maintenance names.
 * Each may be NULL. Returns true when muted. */
bool nfy_engine_muted(struct nfy_engine *e, const struct nfy_alert *a, int64_t now_ms,
                      json_t *silenced_by, json_t *inhibited_by, json_t *muted_by);
bool nfy_alert_resolved(const struct nfy_alert *a, int64_t now_ms);
json_t *nfy_alert_json(const struct nfy_alert *a, int64_t now_ms);
/* Silences: add or replace (by id). The engine takes s. */
void nfy_engine_add_silence(struct nfy_engine *e, struct nfy_silence *s);
struct nfy_silence *nfy_engine_find_silence(struct nfy_engine *e, const char *id);
void nfy_silence_free(struct nfy_silence *s);
const char *nfy_silence_state(const struct nfy_silence *s, int64_t now_ms);
/* Parses an Alertmanager silence body. NULL with err. */
struct nfy_silence *nfy_silence_from_json(json_t *j, int64_t now_ms, struct ward_err *err);
json_t *nfy_silence_json(const struct nfy_silence *s, int64_t now_ms);
/* Escalations */
struct nfy_esc *nfy_engine_find_esc(struct nfy_engine *e, const char *fp);
void nfy_engine_add_esc(struct nfy_engine *e, struct nfy_esc *x); /* takes x */
int nfy_engine_ack(struct nfy_engine *e, const char *fp, const char *actor, int64_t now_ms);
json_t *nfy_esc_json(const struct nfy_esc *x);
void nfy_esc_free(struct nfy_esc *x);
/* An ack link token for fp valid until exp_ms, and its check (0 ok, -1 bad/expired). */
void nfy_ack_token(const uint8_t key[32], const char *fp, int64_t exp_ms, struct buf *out);
int nfy_ack_verify(const uint8_t key[32], const char *tok, int64_t now_ms, char fp[17]);
void nfy_fingerprint(const struct labels *ls, char out[17]);
void nfy_events_push(struct nfy_events *ev, enum notify_event_kind kind, int64_t at, const char *fp,
                     const struct labels *ls, const char *receiver, const char *integration,
                     const char *result, const char *actor, int level, const char *group_key);

/* ---- payloads (payload.c) ---- */
/* Alertmanager webhook v4 body. */
json_t *nfy_payload_webhook(const struct nfy_out *o, const char *receiver, const char *external_url,
                            int64_t max_alerts);
json_t *nfy_payload_slack(const struct nfy_out *o, const struct nc_slack *s,
                          const char *external_url);
/* Subject and plain-text body. */
void nfy_payload_email(const struct nfy_out *o, struct buf *subject, struct buf *body);
/* The alerts as Alertmanager's POST /api/v2/alerts takes them. */
json_t *nfy_payload_am(const struct nfy_out *o);
/* Backoff before attempt `attempts` + 1: initial * 2^(attempts-1), at most max, with
 * jitter of up to 10% taken from jitter01 in [0, 1). */
int64_t nfy_backoff_ms(int attempts, int64_t initial_ms, int64_t max_ms, double jitter01);

/* ---- deliveries (deliver.c) ---- */
struct nfy_job {
	int64_t id; /* row id in notify_queue */
	char *receiver;
	char *integration; /* webhook slack email exec alertmanager */
	char *target;      /* url, address or command, for the log */
	char *spec;        /* JSON: everything the delivery needs */
	char *group_key;
	int attempts;
	int64_t created_ms, next_ms, expires_ms;
	/* result of the last attempt (set by the worker) */
	bool ok;
	char error[256];
	double seconds;
	int64_t enqueued_mono_ms;
	bool stored;   /* its notify_queue row exists (guarded by N.qmu) */
	bool recorded; /* this attempt's result is in the store and metrics */
	bool retry;    /* set when recorded: goes back to pending */
};
void nfy_job_free(struct nfy_job *j);
/* Runs one delivery synchronously (on a worker thread). */
void nfy_deliver(struct nfy_job *j, int64_t timeout_ms);
/* Builds jobs for an out (resolving "oncall:x" receivers). Appends to *jobs. */
void nfy_out_to_jobs(const struct nfy_cfg *cfg, const struct nfy_out *o, int64_t now_ms,
                     struct nfy_job ***jobs, size_t *njobs, size_t *capjobs);

#endif
