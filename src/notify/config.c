/* config.c: the "notify" config section (schema for conf.h's decoder) and its compiled
 * form: the route tree with Alertmanager's inheritance (receiver, group_by and timers
 * flow from parent to child unless set), inhibit rules, maintenance windows, escalation
 * policies and on-call schedules, plus route matching.
 *
 * The compiled struct nfy_cfg borrows strings from the decoded section, so it lives no
 * longer than the struct conf it came from (module.c keeps the reference).
 */
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"

static const char *const tls_names[] = {"inherit", "none", "try", "starttls", "tls", NULL};
static const char *const rotation_names[] = {"daily", "weekly", NULL};

#define O(t, f) offsetof(struct t, f)

static const struct conf_schema route_schema;
static const struct conf_field route_fields[] = {
        {.key = "receiver",
         .type = CONF_STR,
         .offset = O(nc_route, receiver),
         .help = "receiver name (or \"oncall:<schedule>\"); inherited when absent"},
        {.key = "matchers",
         .type = CONF_STRLIST,
         .offset = O(nc_route, matchers),
         .count_offset = O(nc_route, nmatchers),
         .help = "Alertmanager matchers: [\"severity=critical\", \"job=~api.*\"]"},
        {.key = "group_by",
         .type = CONF_STRLIST,
         .offset = O(nc_route, group_by),
         .count_offset = O(nc_route, ngroup_by),
         .help = "labels to group by; ['...'] for all"},
        {.key = "continue",
         .type = CONF_BOOL,
         .offset = O(nc_route, cont),
         .defval = "false",
         .help = "keep matching the following sibling routes"},
        {.key = "group_wait",
         .type = CONF_STR,
         .offset = O(nc_route, group_wait),
         .help = "wait before the first notification of a group (default 30s)"},
        {.key = "group_interval",
         .type = CONF_STR,
         .offset = O(nc_route, group_interval),
         .help = "wait between notifications about a changing group (default 5m)"},
        {.key = "repeat_interval",
         .type = CONF_STR,
         .offset = O(nc_route, repeat_interval),
         .help = "resend an unchanged firing group this often (default 4h)"},
        {.key = "routes",
         .type = CONF_OBJLIST,
         .offset = O(nc_route, routes),
         .sub = &route_schema,
         .count_offset = O(nc_route, nroutes),
         .help = "child routes"},
        {0},
};
static const struct conf_schema route_schema = {
        .name = "route", .size = sizeof(struct nc_route), .fields = route_fields};

static const struct conf_field webhook_fields[] = {
        {.key = "url",
         .type = CONF_STR,
         .offset = O(nc_webhook, url),
         .flags = CONF_REQUIRED,
         .help = "where to POST the Alertmanager webhook (version 4) payload"},
        {.key = "send_resolved",
         .type = CONF_BOOL,
         .offset = O(nc_webhook, send_resolved),
         .defval = "true",
         .help = "also notify when alerts resolve"},
        {.key = "max_alerts",
         .type = CONF_INT,
         .offset = O(nc_webhook, max_alerts),
         .defval = "0",
         .help = "at most this many alerts per payload (0: all); the rest is truncatedAlerts"},
        {0},
};
static const struct conf_schema webhook_schema = {
        .name = "webhook_config", .size = sizeof(struct nc_webhook), .fields = webhook_fields};

static const struct conf_field slack_fields[] = {
        {.key = "api_url",
         .type = CONF_STR,
         .offset = O(nc_slack, api_url),
         .flags = CONF_REQUIRED | CONF_SECRET,
         .help = "the incoming webhook URL"},
        {.key = "channel", .type = CONF_STR, .offset = O(nc_slack, channel)},
        {.key = "username", .type = CONF_STR, .offset = O(nc_slack, username), .defval = "ward"},
        {.key = "send_resolved",
         .type = CONF_BOOL,
         .offset = O(nc_slack, send_resolved),
         .defval = "false"},
        {0},
};
static const struct conf_schema slack_schema = {
        .name = "slack_config", .size = sizeof(struct nc_slack), .fields = slack_fields};

static const struct conf_field email_fields[] = {
        {.key = "to",
         .type = CONF_STR,
         .offset = O(nc_email, to),
         .flags = CONF_REQUIRED,
         .help = "recipient address"},
        {.key = "from", .type = CONF_STR, .offset = O(nc_email, from), .help = "else smtp.from"},
        {.key = "smarthost",
         .type = CONF_STR,
         .offset = O(nc_email, smarthost),
         .help = "host:port; else smtp.smarthost"},
        {.key = "auth_username", .type = CONF_STR, .offset = O(nc_email, auth_username)},
        {.key = "auth_password",
         .type = CONF_STR,
         .offset = O(nc_email, auth_password),
         .flags = CONF_SECRET},
        {.key = "tls",
         .type = CONF_ENUM,
         .offset = O(nc_email, tls),
         .enum_names = tls_names,
         .defval = "inherit",
         .help = "none, try (STARTTLS when offered), starttls, tls (smtps)"},
        {.key = "send_resolved",
         .type = CONF_BOOL,
         .offset = O(nc_email, send_resolved),
         .defval = "false"},
        {0},
};
static const struct conf_schema email_schema = {
        .name = "email_config", .size = sizeof(struct nc_email), .fields = email_fields};

static const struct conf_field exec_fields[] = {
        {.key = "command",
         .type = CONF_STRLIST,
         .offset = O(nc_exec, command),
         .count_offset = O(nc_exec, ncommand),
         .flags = CONF_REQUIRED,
         .help = "program and arguments (no shell); the payload on stdin, WARD_* in the env"},
        {.key = "timeout",
         .type = CONF_DURATION,
         .offset = O(nc_exec, timeout_ms),
         .defval = "30s",
         .min = 100,
         .max = 3600e3,
         .flags = CONF_RANGE},
        {.key = "send_resolved",
         .type = CONF_BOOL,
         .offset = O(nc_exec, send_resolved),
         .defval = "true"},
        {0},
};
static const struct conf_schema exec_schema = {
        .name = "exec_config", .size = sizeof(struct nc_exec), .fields = exec_fields};

static const struct conf_field am_fields[] = {
        {.key = "url",
         .type = CONF_STR,
         .offset = O(nc_am, url),
         .flags = CONF_REQUIRED,
         .help = "Alertmanager base URL (http://host:9093); alerts go to <url>/api/v2/alerts"},
        {0},
};
static const struct conf_schema am_schema = {
        .name = "alertmanager_config", .size = sizeof(struct nc_am), .fields = am_fields};

static const struct conf_field receiver_fields[] = {
        {.key = "name", .type = CONF_STR, .offset = O(nc_receiver, name), .flags = CONF_REQUIRED},
        {.key = "webhook_configs",
         .type = CONF_OBJLIST,
         .offset = O(nc_receiver, webhooks),
         .sub = &webhook_schema,
         .count_offset = O(nc_receiver, nwebhooks)},
        {.key = "slack_configs",
         .type = CONF_OBJLIST,
         .offset = O(nc_receiver, slacks),
         .sub = &slack_schema,
         .count_offset = O(nc_receiver, nslacks)},
        {.key = "email_configs",
         .type = CONF_OBJLIST,
         .offset = O(nc_receiver, emails),
         .sub = &email_schema,
         .count_offset = O(nc_receiver, nemails)},
        {.key = "exec_configs",
         .type = CONF_OBJLIST,
         .offset = O(nc_receiver, execs),
         .sub = &exec_schema,
         .count_offset = O(nc_receiver, nexecs)},
        {.key = "alertmanager_configs",
         .type = CONF_OBJLIST,
         .offset = O(nc_receiver, ams),
         .sub = &am_schema,
         .count_offset = O(nc_receiver, nams)},
        {0},
};
static const struct conf_schema receiver_schema = {
        .name = "receiver", .size = sizeof(struct nc_receiver), .fields = receiver_fields};

static const struct conf_field inhibit_fields[] = {
        {.key = "source_matchers",
         .type = CONF_STRLIST,
         .offset = O(nc_inhibit, source),
         .count_offset = O(nc_inhibit, nsource)},
        {.key = "target_matchers",
         .type = CONF_STRLIST,
         .offset = O(nc_inhibit, target),
         .count_offset = O(nc_inhibit, ntarget)},
        {.key = "equal",
         .type = CONF_STRLIST,
         .offset = O(nc_inhibit, equal),
         .count_offset = O(nc_inhibit, nequal)},
        {0},
};
static const struct conf_schema inhibit_schema = {
        .name = "inhibit_rule", .size = sizeof(struct nc_inhibit), .fields = inhibit_fields};

static const struct conf_field maint_fields[] = {
        {.key = "name", .type = CONF_STR, .offset = O(nc_maint, name), .flags = CONF_REQUIRED},
        {.key = "matchers",
         .type = CONF_STRLIST,
         .offset = O(nc_maint, matchers),
         .count_offset = O(nc_maint, nmatchers),
         .help = "alerts in scope (none: every alert)"},
        {.key = "start",
         .type = CONF_STR,
         .offset = O(nc_maint, start),
         .help = "one-off window start (RFC 3339)"},
        {.key = "end",
         .type = CONF_STR,
         .offset = O(nc_maint, end),
         .help = "one-off window end (RFC 3339)"},
        {.key = "schedule",
         .type = CONF_STR,
         .offset = O(nc_maint, schedule),
         .help = "recurring: \"Sundays 02:00-04:00 Europe/Berlin\", \"Mon-Fri 22:00-06:00 UTC\""},
        {0},
};
static const struct conf_schema maint_schema = {
        .name = "maintenance_window", .size = sizeof(struct nc_maint), .fields = maint_fields};

static const struct conf_field level_fields[] = {
        {.key = "after",
         .type = CONF_DURATION,
         .offset = O(nc_level, after_ms),
         .defval = "0",
         .help = "time since the escalation started, unacknowledged, before this level"},
        {.key = "receivers",
         .type = CONF_STRLIST,
         .offset = O(nc_level, receivers),
         .count_offset = O(nc_level, nreceivers),
         .flags = CONF_REQUIRED,
         .help = "receiver names or \"oncall:<schedule>\""},
        {0},
};
static const struct conf_schema level_schema = {
        .name = "escalation_level", .size = sizeof(struct nc_level), .fields = level_fields};

static const struct conf_field policy_fields[] = {
        {.key = "name", .type = CONF_STR, .offset = O(nc_policy, name), .flags = CONF_REQUIRED},
        {.key = "matchers",
         .type = CONF_STRLIST,
         .offset = O(nc_policy, matchers),
         .count_offset = O(nc_policy, nmatchers),
         .help = "alerts this policy escalates"},
        {.key = "levels",
         .type = CONF_OBJLIST,
         .offset = O(nc_policy, levels),
         .sub = &level_schema,
         .count_offset = O(nc_policy, nlevels),
         .flags = CONF_REQUIRED},
        {0},
};
static const struct conf_schema policy_schema = {
        .name = "escalation_policy", .size = sizeof(struct nc_policy), .fields = policy_fields};

static const struct conf_field participant_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = O(nc_participant, name),
         .flags = CONF_REQUIRED},
        {.key = "email", .type = CONF_STR, .offset = O(nc_participant, email)},
        {.key = "webhook", .type = CONF_STR, .offset = O(nc_participant, webhook)},
        {0},
};
static const struct conf_schema participant_schema = {
        .name = "participant", .size = sizeof(struct nc_participant), .fields = participant_fields};

static const struct conf_field override_fields[] = {
        {.key = "participant",
         .type = CONF_STR,
         .offset = O(nc_override, participant),
         .flags = CONF_REQUIRED},
        {.key = "start", .type = CONF_STR, .offset = O(nc_override, start), .flags = CONF_REQUIRED},
        {.key = "end", .type = CONF_STR, .offset = O(nc_override, end), .flags = CONF_REQUIRED},
        {0},
};
static const struct conf_schema override_schema = {
        .name = "override", .size = sizeof(struct nc_override), .fields = override_fields};

static const struct conf_field schedule_fields[] = {
        {.key = "name", .type = CONF_STR, .offset = O(nc_schedule, name), .flags = CONF_REQUIRED},
        {.key = "rotation",
         .type = CONF_ENUM,
         .offset = O(nc_schedule, rotation),
         .enum_names = rotation_names,
         .defval = "weekly"},
        {.key = "handoff",
         .type = CONF_STR,
         .offset = O(nc_schedule, handoff),
         .defval = "09:00",
         .help = "local time of the handoff"},
        {.key = "time_zone",
         .type = CONF_STR,
         .offset = O(nc_schedule, time_zone),
         .defval = "UTC",
         .help = "IANA zone (Europe/Berlin)"},
        {.key = "start",
         .type = CONF_STR,
         .offset = O(nc_schedule, start),
         .defval = "2024-01-01",
         .help = "the first handoff day (YYYY-MM-DD): participant 1 from then"},
        {.key = "participants",
         .type = CONF_OBJLIST,
         .offset = O(nc_schedule, participants),
         .sub = &participant_schema,
         .count_offset = O(nc_schedule, nparticipants),
         .flags = CONF_REQUIRED},
        {.key = "overrides",
         .type = CONF_OBJLIST,
         .offset = O(nc_schedule, overrides),
         .sub = &override_schema,
         .count_offset = O(nc_schedule, noverrides)},
        {0},
};
static const struct conf_schema schedule_schema = {
        .name = "oncall_schedule", .size = sizeof(struct nc_schedule), .fields = schedule_fields};

static const struct conf_field smtp_fields[] = {
        {.key = "smarthost",
         .type = CONF_STR,
         .offset = O(nc_smtp, smarthost),
         .help = "host:port of the mail server"},
        {.key = "from", .type = CONF_STR, .offset = O(nc_smtp, from), .defval = "ward@localhost"},
        {.key = "auth_username", .type = CONF_STR, .offset = O(nc_smtp, auth_username)},
        {.key = "auth_password",
         .type = CONF_STR,
         .offset = O(nc_smtp, auth_password),
         .flags = CONF_SECRET},
        {.key = "tls",
         .type = CONF_ENUM,
         .offset = O(nc_smtp, tls),
         .enum_names = tls_names,
         .defval = "try",
         .help = "none, try (STARTTLS when offered), starttls (required), tls"},
        {.key = "ca_file",
         .type = CONF_STR,
         .offset = O(nc_smtp, ca_file),
         .help = "PEM CA certificate(s) to trust for the mail server (else the system's)"},
        {.key = "insecure_skip_verify",
         .type = CONF_BOOL,
         .offset = O(nc_smtp, insecure_skip_verify),
         .defval = "false",
         .help = "do not verify the mail server's certificate or host name (testing only)"},
        {0},
};
static const struct conf_schema smtp_schema = {
        .name = "smtp", .size = sizeof(struct nc_smtp), .fields = smtp_fields};

static const struct conf_field notify_fields[] = {
        {.key = "external_url",
         .type = CONF_STR,
         .offset = O(nc_conf, external_url),
         .help = "ward's URL as receivers see it (links, ack links)"},
        {.key = "resolve_timeout",
         .type = CONF_DURATION,
         .offset = O(nc_conf, resolve_timeout_ms),
         .defval = "5m",
         .min = 1000,
         .max = 86400e3 * 30,
         .flags = CONF_RANGE,
         .help = "an alert without endsAt resolves when not refreshed for this long"},
        {.key = "retry_initial",
         .type = CONF_DURATION,
         .offset = O(nc_conf, retry_initial_ms),
         .defval = "1s",
         .min = 10,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "first retry delay of a failed delivery (doubles each time)"},
        {.key = "retry_max",
         .type = CONF_DURATION,
         .offset = O(nc_conf, retry_max_ms),
         .defval = "5m",
         .min = 10,
         .max = 86400e3,
         .flags = CONF_RANGE},
        {.key = "retry_expire",
         .type = CONF_DURATION,
         .offset = O(nc_conf, retry_expire_ms),
         .defval = "24h",
         .min = 1000,
         .max = 86400e3 * 30,
         .flags = CONF_RANGE,
         .help = "an undelivered notification is given up (and counted failed) after this"},
        {.key = "delivery_timeout",
         .type = CONF_DURATION,
         .offset = O(nc_conf, delivery_timeout_ms),
         .defval = "10s",
         .min = 100,
         .max = 600e3,
         .flags = CONF_RANGE},
        {.key = "ack_link_ttl",
         .type = CONF_DURATION,
         .offset = O(nc_conf, ack_link_ttl_ms),
         .defval = "24h",
         .min = 60e3,
         .max = 86400e3 * 30,
         .flags = CONF_RANGE},
        {.key = "history",
         .type = CONF_DURATION,
         .offset = O(nc_conf, history_ms),
         .defval = "720h",
         .min = 3600e3,
         .max = 86400e3 * 3650,
         .flags = CONF_RANGE,
         .help = "expired silences, the notification log and ended escalations are kept this long"},
        {.key = "smtp", .type = CONF_OBJ, .offset = O(nc_conf, smtp), .sub = &smtp_schema},
        {.key = "route", .type = CONF_OBJ, .offset = O(nc_conf, route), .sub = &route_schema},
        {.key = "receivers",
         .type = CONF_OBJLIST,
         .offset = O(nc_conf, receivers),
         .sub = &receiver_schema,
         .count_offset = O(nc_conf, nreceivers)},
        {.key = "inhibit_rules",
         .type = CONF_OBJLIST,
         .offset = O(nc_conf, inhibits),
         .sub = &inhibit_schema,
         .count_offset = O(nc_conf, ninhibits)},
        {.key = "maintenance_windows",
         .type = CONF_OBJLIST,
         .offset = O(nc_conf, maints),
         .sub = &maint_schema,
         .count_offset = O(nc_conf, nmaints)},
        {.key = "escalation_policies",
         .type = CONF_OBJLIST,
         .offset = O(nc_conf, policies),
         .sub = &policy_schema,
         .count_offset = O(nc_conf, npolicies)},
        {.key = "oncall_schedules",
         .type = CONF_OBJLIST,
         .offset = O(nc_conf, schedules),
         .sub = &schedule_schema,
         .count_offset = O(nc_conf, nschedules)},
        {0},
};

static int notify_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct ward_err e;
	ward_err_clear(&e);
	struct nfy_cfg *cfg = nfy_cfg_compile(obj, &e);
	if (!cfg) {
		conf_error_at(err, pos, "notify: %s", e.msg);
		return -1;
	}
	nfy_cfg_free(cfg);
	return 0;
}

const struct conf_schema nfy_conf_schema = {.name = "notify",
                                            .size = sizeof(struct nc_conf),
                                            .fields = notify_fields,
                                            .validate = notify_validate};

void nfy_config_register(void) {
	(void)conf_register_section(&nfy_conf_schema);
}

/* ---- compile ---- */

#define DEF_GROUP_WAIT_MS     30000
#define DEF_GROUP_INTERVAL_MS 300000
#define DEF_REPEAT_MS         (4 * 3600000)

static int dur(const char *s, int64_t inherit, int64_t *out, const char *what,
               struct ward_err *err) {
	if (!s) {
		*out = inherit;
		return 0;
	}
	struct ward_err e;
	ward_err_clear(&e);
	if (ward_parse_duration(s, strlen(s), out, &e) != 0) {
		ward_err_append(err, "route %s \"%s\": %s", what, s, e.msg);
		return -1;
	}
	return 0;
}

static bool receiver_known(const struct nc_conf *c, const char *name) {
	if (ward_has_prefix(name, "oncall:")) {
		for (size_t i = 0; i < c->nschedules; i++)
			if (ward_streq(c->schedules[i].name, name + 7))
				return true;
		return false;
	}
	for (size_t i = 0; i < c->nreceivers; i++)
		if (ward_streq(c->receivers[i].name, name))
			return true;
	return false;
}

static int route_compile(const struct nc_conf *c, const struct nc_route *src,
                         const struct nfy_route *parent, struct nfy_route *dst,
                         struct ward_err *err) {
	int rc = 0;
	const char *recv = src->receiver ? src->receiver : parent ? parent->receiver : NULL;
	dst->receiver = ward_strdup(recv);
	if (recv && !receiver_known(c, recv) && (c->nreceivers || c->nschedules)) {
		ward_err_append(err,
		                "route receiver \"%s\" is not defined in notify.receivers "
		                "(or oncall_schedules); define it or fix the name",
		                recv);
		rc = -1;
	}
	struct ward_err e;
	ward_err_clear(&e);
	if (nfy_matchers_parse_strv(src->matchers, src->nmatchers, &dst->m, &e) != 0) {
		ward_err_append(err, "route %s", e.msg);
		rc = -1;
	}
	if (src->ngroup_by || !parent) {
		dst->group_by = src->group_by;
		dst->ngroup_by = src->ngroup_by;
		for (size_t i = 0; i < src->ngroup_by; i++)
			if (strcmp(src->group_by[i], "...") == 0)
				dst->group_all = true;
	} else {
		dst->group_by = parent->group_by;
		dst->ngroup_by = parent->ngroup_by;
		dst->group_all = parent->group_all;
	}
	dst->cont = src->cont;
	if (dur(src->group_wait, parent ? parent->group_wait_ms : DEF_GROUP_WAIT_MS,
	        &dst->group_wait_ms, "group_wait", err) ||
	    dur(src->group_interval, parent ? parent->group_interval_ms : DEF_GROUP_INTERVAL_MS,
	        &dst->group_interval_ms, "group_interval", err) ||
	    dur(src->repeat_interval, parent ? parent->repeat_interval_ms : DEF_REPEAT_MS,
	        &dst->repeat_interval_ms, "repeat_interval", err))
		rc = -1;
	if (dst->group_interval_ms <= 0)
		dst->group_interval_ms = 1;
	struct buf k = BUF_INIT;
	if (parent) {
		buf_puts(&k, parent->key);
		buf_putc(&k, '/');
	}
	nfy_matchers_write(&k, &dst->m);
	dst->key = buf_detach(&k);
	if (src->nroutes) {
		dst->kids = ward_xcalloc(src->nroutes, sizeof(*dst->kids));
		dst->nkids = src->nroutes;
		for (size_t i = 0; i < src->nroutes; i++) {
			if (route_compile(c, &src->routes[i], dst, &dst->kids[i], err) != 0)
				rc = -1;
			/* Siblings with the same matchers get distinct keys, as Alertmanager does.
			 */
			struct buf kk = BUF_INIT;
			buf_printf(&kk, "%s#%zu", dst->kids[i].key, i);
			free(dst->kids[i].key);
			dst->kids[i].key = buf_detach(&kk);
		}
	}
	return rc;
}

static void route_free(struct nfy_route *r) {
	for (size_t i = 0; i < r->nkids; i++)
		route_free(&r->kids[i]);
	free(r->kids);
	free(r->receiver);
	free(r->key);
	nfy_matchers_free(&r->m);
}

static int parse_time_str(const char *s, int64_t *out) {
	return s ? ward_parse_time(s, strlen(s), out) : -1;
}

struct nfy_cfg *nfy_cfg_compile(const struct nc_conf *c, struct ward_err *err) {
	struct nfy_cfg *cfg = ward_xcalloc(1, sizeof(*cfg));
	int rc = 0;
	struct ward_err e;
	cfg->c = c;
	if (route_compile(c, &c->route, NULL, &cfg->root, err) != 0)
		rc = -1;
	for (size_t i = 0; i < c->nreceivers; i++)
		for (size_t j = 0; j < i; j++)
			if (ward_streq(c->receivers[i].name, c->receivers[j].name)) {
				ward_err_append(err, "receiver \"%s\" is defined twice",
				                c->receivers[i].name);
				rc = -1;
			}
	cfg->inhibits = ward_xcalloc(c->ninhibits + 1, sizeof(*cfg->inhibits));
	cfg->ninhibits = c->ninhibits;
	for (size_t i = 0; i < c->ninhibits; i++) {
		ward_err_clear(&e);
		if (nfy_matchers_parse_strv(c->inhibits[i].source, c->inhibits[i].nsource,
		                            &cfg->inhibits[i].source, &e) ||
		    nfy_matchers_parse_strv(c->inhibits[i].target, c->inhibits[i].ntarget,
		                            &cfg->inhibits[i].target, &e)) {
			ward_err_append(err, "inhibit_rules[%zu]: %s", i, e.msg);
			rc = -1;
		}
		cfg->inhibits[i].equal = c->inhibits[i].equal;
		cfg->inhibits[i].nequal = c->inhibits[i].nequal;
	}
	cfg->maints = ward_xcalloc(c->nmaints + 1, sizeof(*cfg->maints));
	cfg->nmaints = c->nmaints;
	for (size_t i = 0; i < c->nmaints; i++) {
		const struct nc_maint *s = &c->maints[i];
		struct nfy_maint *w = &cfg->maints[i];
		w->name = s->name;
		ward_err_clear(&e);
		if (nfy_matchers_parse_strv(s->matchers, s->nmatchers, &w->m, &e) != 0) {
			ward_err_append(err, "maintenance window \"%s\": %s", s->name, e.msg);
			rc = -1;
		}
		if (s->schedule) {
			ward_err_clear(&e);
			if (s->start || s->end) {
				ward_err_append(err,
				                "maintenance window \"%s\": give either schedule "
				                "(recurring) or start and end (one-off), not both",
				                s->name);
				rc = -1;
			} else if (nfy_schedule_parse(s->schedule, w, &e) != 0) {
				ward_err_append(err, "maintenance window \"%s\": %s", s->name,
				                e.msg);
				rc = -1;
			}
		} else if (parse_time_str(s->start, &w->start_ms) != 0 ||
		           parse_time_str(s->end, &w->end_ms) != 0 || w->end_ms <= w->start_ms) {
			ward_err_append(
			        err,
			        "maintenance window \"%s\": needs start and end as RFC 3339 "
			        "times (end after start), or a schedule such as "
			        "\"Sundays 02:00-04:00 Europe/Berlin\"",
			        s->name);
			rc = -1;
		}
	}
	cfg->schedules = ward_xcalloc(c->nschedules + 1, sizeof(*cfg->schedules));
	cfg->nschedules = c->nschedules;
	for (size_t i = 0; i < c->nschedules; i++) {
		const struct nc_schedule *s = &c->schedules[i];
		struct nfy_schedule *d = &cfg->schedules[i];
		d->c = s;
		d->weekly = s->rotation == 1;
		d->handoff_min = nfy_parse_hhmm(s->handoff);
		unsigned y = 0, mo = 0, dd = 0;
		char tail;
		if (d->handoff_min < 0) {
			ward_err_append(err, "oncall schedule \"%s\": handoff \"%s\" is not HH:MM",
			                s->name, s->handoff);
			rc = -1;
		}
		if (!s->start || sscanf(s->start, "%4u-%2u-%2u%c", &y, &mo, &dd, &tail) != 3 ||
		    mo < 1 || mo > 12 || dd < 1 || dd > 31) {
			ward_err_append(err,
			                "oncall schedule \"%s\": start \"%s\" is not YYYY-MM-DD",
			                s->name, s->start ? s->start : "");
			rc = -1;
		} else {
			d->start_day = nfy_days_from_civil(y, mo, dd);
		}
		if (!nfy_tz_valid(s->time_zone)) {
			ward_err_append(err,
			                "oncall schedule \"%s\": unknown time zone \"%s\" (use an "
			                "IANA name such as Europe/Berlin)",
			                s->name, s->time_zone);
			rc = -1;
		}
		d->overrides = ward_xcalloc(s->noverrides + 1, sizeof(*d->overrides));
		d->noverrides = s->noverrides;
		for (size_t j = 0; j < s->noverrides; j++) {
			const struct nc_override *o = &s->overrides[j];
			size_t k;
			for (k = 0; k < s->nparticipants; k++)
				if (ward_streq(s->participants[k].name, o->participant))
					break;
			d->overrides[j].participant = k;
			if (k == s->nparticipants) {
				ward_err_append(
				        err,
				        "oncall schedule \"%s\": override names \"%s\", who "
				        "is not a participant",
				        s->name, o->participant);
				rc = -1;
			}
			if (parse_time_str(o->start, &d->overrides[j].start_ms) != 0 ||
			    parse_time_str(o->end, &d->overrides[j].end_ms) != 0) {
				ward_err_append(
				        err,
				        "oncall schedule \"%s\": override start/end must be "
				        "RFC 3339 times",
				        s->name);
				rc = -1;
			}
		}
	}
	cfg->policies = ward_xcalloc(c->npolicies + 1, sizeof(*cfg->policies));
	cfg->npolicies = c->npolicies;
	for (size_t i = 0; i < c->npolicies; i++) {
		const struct nc_policy *p = &c->policies[i];
		struct nfy_policy *d = &cfg->policies[i];
		d->name = p->name;
		d->levels = p->levels;
		d->nlevels = p->nlevels;
		ward_err_clear(&e);
		if (nfy_matchers_parse_strv(p->matchers, p->nmatchers, &d->m, &e) != 0) {
			ward_err_append(err, "escalation policy \"%s\": %s", p->name, e.msg);
			rc = -1;
		}
		for (size_t l = 0; l < p->nlevels; l++) {
			if (l && p->levels[l].after_ms < p->levels[l - 1].after_ms) {
				ward_err_append(err,
				                "escalation policy \"%s\": level %zu's after is "
				                "earlier than level %zu's; levels must be in order",
				                p->name, l + 1, l);
				rc = -1;
			}
			for (size_t r = 0; r < p->levels[l].nreceivers; r++)
				if (!receiver_known(c, p->levels[l].receivers[r])) {
					ward_err_append(
					        err,
					        "escalation policy \"%s\" level %zu: receiver "
					        "\"%s\" is not defined",
					        p->name, l + 1, p->levels[l].receivers[r]);
					rc = -1;
				}
		}
	}
	if (rc != 0) {
		nfy_cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

void nfy_cfg_free(struct nfy_cfg *cfg) {
	if (!cfg)
		return;
	route_free(&cfg->root);
	for (size_t i = 0; i < cfg->ninhibits; i++) {
		nfy_matchers_free(&cfg->inhibits[i].source);
		nfy_matchers_free(&cfg->inhibits[i].target);
	}
	free(cfg->inhibits);
	for (size_t i = 0; i < cfg->nmaints; i++)
		nfy_matchers_free(&cfg->maints[i].m);
	free(cfg->maints);
	for (size_t i = 0; i < cfg->npolicies; i++)
		nfy_matchers_free(&cfg->policies[i].m);
	free(cfg->policies);
	for (size_t i = 0; i < cfg->nschedules; i++)
		free(cfg->schedules[i].overrides);
	free(cfg->schedules);
	free(cfg);
}

const struct nc_receiver *nfy_cfg_receiver(const struct nfy_cfg *cfg, const char *name) {
	for (size_t i = 0; cfg && i < cfg->c->nreceivers; i++)
		if (ward_streq(cfg->c->receivers[i].name, name))
			return &cfg->c->receivers[i];
	return NULL;
}

const struct nfy_schedule *nfy_cfg_schedule(const struct nfy_cfg *cfg, const char *name) {
	for (size_t i = 0; cfg && i < cfg->nschedules; i++)
		if (ward_streq(cfg->schedules[i].c->name, name))
			return &cfg->schedules[i];
	return NULL;
}

static size_t match_rec(const struct nfy_route *r, const struct labels *ls,
                        const struct nfy_route **out, size_t n, size_t max) {
	size_t before = n;
	for (size_t i = 0; i < r->nkids; i++) {
		const struct nfy_route *k = &r->kids[i];
		if (!nfy_matchers_match(&k->m, ls))
			continue;
		n = match_rec(k, ls, out, n, max);
		if (!k->cont)
			break;
	}
	if (n == before && n < max)
		out[n++] = r;
	return n;
}

size_t nfy_route_match(const struct nfy_route *root, const struct labels *ls,
                       const struct nfy_route **out, size_t max) {
	if (!nfy_matchers_match(&root->m, ls))
		return 0;
	return match_rec(root, ls, out, 0, max);
}
