/* module.c: the incident module: the "incidents" config section, its tables in the state
 * store, the notify subscriber that opens incidents and writes timelines, the metrics.
 * Invariants: all incident state lives in the store (nothing is lost at a restart); every
 * read-modify-write of it happens under M.mu, and M.mu is never held while calling notify
 * or the audit trail (notify may call back into us from notify_ack). Called by the daemon
 * (module lifecycle), by notify (events) and by api.c (the HTTP handlers).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf/conf.h"
#include "core/core.h"
#include "incident/incident.h"
#include "incident/incident_internal.h"
#include "notify/notify.h"
#include "store/store.h"

struct inc_module M = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- config ---- */

#define O(f) offsetof(struct inc_conf, f)
static const char *const category_enum[] = {"availability", "performance", "security", "data",
                                            NULL};
static const struct conf_field inc_fields[] = {
        {.key = "open_on",
         .type = CONF_STRLIST,
         .offset = O(open_on),
         .count_offset = O(nopen_on),
         .help = "Alertmanager matchers a firing alert must all match to open an incident, "
                 "e.g. [\"severity=critical\"]; empty: incidents are only opened by hand"},
        {.key = "group_by",
         .type = CONF_STRLIST,
         .offset = O(group_by),
         .count_offset = O(ngroup_by),
         .help = "labels besides alertname whose alerts share one open incident"},
        {.key = "default_category",
         .type = CONF_ENUM,
         .offset = O(default_category),
         .defval = "availability",
         .enum_names = category_enum,
         .help = "category of incidents opened from alerts without a category label"},
        {0},
};

static int inc_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct inc_conf *c = obj;
	int rc = 0;
	for (size_t i = 0; i < c->nopen_on; i++) {
		struct matcher m;
		struct ward_err e;
		ward_err_clear(&e);
		if (incident_matcher_parse(c->open_on[i], strlen(c->open_on[i]), &m, &e) < 0) {
			conf_error_at(err, pos, "incidents.open_on[%zu]: %s", i, e.msg);
			rc = -1;
			continue;
		}
		matcher_free(&m);
	}
	return rc;
}

static const struct conf_schema inc_schema = {
        .name = "incidents",
        .size = sizeof(struct inc_conf),
        .fields = inc_fields,
        .validate = inc_validate,
};

/* Replaces the matchers and group labels in force. Called without M.mu. */
static void take_config(const struct conf *c) {
	const struct inc_conf *ic = conf_section(c, "incidents");
	struct matcher *m = ward_xcalloc(ic && ic->nopen_on ? ic->nopen_on : 1, sizeof(*m));
	size_t n = 0;
	for (size_t i = 0; ic && i < ic->nopen_on; i++) {
		struct ward_err e;
		if (incident_matcher_parse(ic->open_on[i], strlen(ic->open_on[i]), &m[n], &e) == 0)
			n++;
	}
	char **gb = ward_xcalloc(ic && ic->ngroup_by ? ic->ngroup_by : 1, sizeof(*gb));
	size_t ngb = 0;
	for (size_t i = 0; ic && i < ic->ngroup_by; i++)
		gb[ngb++] = ward_strdup(ic->group_by[i]);
	pthread_mutex_lock(&M.mu);
	struct matcher *oldm = M.open_on;
	size_t oldn = M.nopen_on;
	char **oldgb = M.group_by;
	size_t oldngb = M.ngroup_by;
	M.open_on = m;
	M.nopen_on = n;
	M.group_by = gb;
	M.ngroup_by = ngb;
	M.default_category = ic ? ic->default_category : 0;
	pthread_mutex_unlock(&M.mu);
	for (size_t i = 0; i < oldn; i++)
		matcher_free(&oldm[i]);
	free(oldm);
	for (size_t i = 0; i < oldngb; i++)
		free(oldgb[i]);
	free(oldgb);
}

/* ---- store ---- */

static const struct store_migration migrations[] = {
        {1, "CREATE TABLE incidents ("
            " id INTEGER PRIMARY KEY, title TEXT NOT NULL, severity INTEGER NOT NULL,"
            " category TEXT NOT NULL, commander TEXT, status INTEGER NOT NULL, group_key TEXT,"
            " opened_ms INTEGER NOT NULL, opened_by TEXT NOT NULL, acked_ms INTEGER,"
            " acked_by TEXT, recovered_ms INTEGER, closed_ms INTEGER);"
            "CREATE INDEX incidents_by_group ON incidents(group_key, status);"
            "CREATE TABLE incident_phases (incident_id INTEGER NOT NULL, status INTEGER NOT NULL,"
            " at_ms INTEGER NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (incident_id, status));"
            "CREATE TABLE incident_alerts (incident_id INTEGER NOT NULL,"
            " fingerprint TEXT NOT NULL, labels TEXT NOT NULL, firing INTEGER NOT NULL,"
            " since_ms INTEGER NOT NULL, resolved_ms INTEGER,"
            " PRIMARY KEY (incident_id, fingerprint));"
            "CREATE TABLE incident_timeline (id INTEGER PRIMARY KEY,"
            " incident_id INTEGER NOT NULL, at_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
            " actor TEXT NOT NULL, text TEXT NOT NULL);"
            "CREATE INDEX incident_timeline_by_incident ON incident_timeline(incident_id, id)"},
};

static char *col_str(const struct store_val *c) {
	return c->type == STORE_TEXT ? ward_strdup(c->s) : NULL;
}
static int64_t col_int(const struct store_val *c) {
	return c->type == STORE_INT ? c->i : 0;
}

void inc_free(struct inc *x) {
	if (!x)
		return;
	free(x->title);
	free(x->category);
	free(x->commander);
	free(x->group_key);
	free(x->opened_by);
	free(x->acked_by);
	for (int i = 0; i < INCIDENT_NSTATUS; i++)
		free(x->phase_by[i]);
	memset(x, 0, sizeof(*x));
}

static int inc_row(void *arg, const struct store_val *c, size_t n) {
	struct inc *x = arg;
	(void)n;
	x->id = col_int(&c[0]);
	x->title = col_str(&c[1]);
	x->severity = (int)col_int(&c[2]);
	x->category = col_str(&c[3]);
	x->commander = col_str(&c[4]);
	x->status = (enum incident_status)col_int(&c[5]);
	x->group_key = col_str(&c[6]);
	x->opened_ms = col_int(&c[7]);
	x->opened_by = col_str(&c[8]);
	x->acked_ms = col_int(&c[9]);
	x->acked_by = col_str(&c[10]);
	x->recovered_ms = col_int(&c[11]);
	x->closed_ms = col_int(&c[12]);
	return 1;
}

static int phase_row(void *arg, const struct store_val *c, size_t n) {
	struct inc *x = arg;
	(void)n;
	int64_t s = col_int(&c[0]);
	if (s >= 0 && s < INCIDENT_NSTATUS) {
		x->phase_ms[s] = col_int(&c[1]);
		free(x->phase_by[s]);
		x->phase_by[s] = col_str(&c[2]);
	}
	return 0;
}

int inc_load(int64_t id, struct inc *out, struct ward_err *err) {
	memset(out, 0, sizeof(*out));
	struct store_val p[] = {SV_INT(id)};
	int rc = store_query(M.ctx->store,
	                     "SELECT id, title, severity, category, commander, status, group_key,"
	                     " opened_ms, opened_by, acked_ms, acked_by, recovered_ms, closed_ms"
	                     " FROM incidents WHERE id = ?",
	                     p, 1, inc_row, out, err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 1;
	if (store_query(M.ctx->store,
	                "SELECT status, at_ms, actor FROM incident_phases WHERE incident_id = ?", p,
	                1, phase_row, out, err) < 0) {
		inc_free(out);
		return -1;
	}
	return 0;
}

void inc_timeline_add(int64_t id, int64_t at_ms, const char *kind, const char *actor,
                      const char *text) {
	struct ward_err err;
	struct store_val p[] = {SV_INT(id), SV_INT(at_ms), SV_TEXT(kind), SV_TEXT(actor),
	                        SV_TEXT(text ? text : "")};
	if (store_exec(M.ctx->store,
	               "INSERT INTO incident_timeline (incident_id, at_ms, kind, actor, text)"
	               " VALUES (?, ?, ?, ?, ?)",
	               p, 5, NULL, &err) < 0)
		ward_log(LOG_ERROR, "incident: could not record a timeline entry", "error", err.msg,
		         NULL);
}

static const char *sev_label(int sev) {
	static const char *const names[] = {"SEV1", "SEV2", "SEV3", "SEV4"};
	return sev >= 1 && sev <= 4 ? names[sev - 1] : "SEV4";
}
const char *inc_sev_name(int sev) {
	return sev_label(sev);
}

static int count_row(void *arg, const struct store_val *c, size_t n) {
	(void)n;
	*(int64_t *)arg = col_int(&c[0]);
	return 0;
}

void inc_refresh_open_gauge(void) {
	for (int s = 1; s <= 4; s++) {
		int64_t cnt = 0;
		struct ward_err err;
		struct store_val p[] = {SV_INT(INCIDENT_CLOSED), SV_INT(s)};
		store_query(M.ctx->store,
		            "SELECT COUNT(*) FROM incidents WHERE status < ? AND severity = ?", p,
		            2, count_row, &cnt, &err);
		const char *v[] = {sev_label(s)};
		metric_set(M.m_open, v, (double)cnt);
	}
}

int64_t inc_create(const char *title, int sev, const char *category, const char *commander,
                   const char *group_key, int64_t at_ms, const char *actor, struct ward_err *err) {
	struct store_val p[] = {SV_TEXT(title),
	                        SV_INT(sev),
	                        SV_TEXT(category),
	                        SV_TEXT(commander),
	                        SV_INT(INCIDENT_DETECTED),
	                        SV_TEXT(group_key),
	                        SV_INT(at_ms),
	                        SV_TEXT(actor)};
	if (store_exec(M.ctx->store,
	               "INSERT INTO incidents (title, severity, category, commander, status,"
	               " group_key, opened_ms, opened_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	               p, 8, NULL, err) < 0)
		return -1;
	int64_t id = 0;
	if (store_query(M.ctx->store, "SELECT MAX(id) FROM incidents", NULL, 0, count_row, &id,
	                err) < 0)
		return -1;
	struct store_val q[] = {SV_INT(id), SV_INT(INCIDENT_DETECTED), SV_INT(at_ms),
	                        SV_TEXT(actor)};
	if (store_exec(M.ctx->store,
	               "INSERT INTO incident_phases (incident_id, status, at_ms, actor)"
	               " VALUES (?, ?, ?, ?)",
	               q, 4, NULL, err) < 0)
		return -1;
	struct buf t = BUF_INIT;
	buf_printf(&t, "INC-%lld opened: %s (%s, %s)", (long long)id, title, sev_label(sev),
	           category);
	inc_timeline_add(id, at_ms, "opened", actor, buf_cstr(&t));
	buf_free(&t);
	const char *v[] = {sev_label(sev), category};
	metric_add(M.m_total, v, 1);
	inc_refresh_open_gauge();
	return id;
}

int inc_move(struct inc *x, enum incident_status to, int64_t at_ms, const char *actor,
             struct ward_err *err) {
	enum incident_status from = x->status;
	if (incident_advance(&x->status, x->phase_ms, to, at_ms) < 0) {
		ward_err_set(err,
		             "INC-%lld is %s; it cannot move to %s (phases only move forward: "
		             "detected, contained, investigating, remediated, recovered, closed)",
		             (long long)x->id, incident_status_name(from),
		             incident_status_name(to));
		return -1;
	}
	if (to == INCIDENT_RECOVERED)
		x->recovered_ms = at_ms;
	else if (to < INCIDENT_RECOVERED)
		x->recovered_ms = 0;
	if (to == INCIDENT_CLOSED)
		x->closed_ms = at_ms;
	struct store_val p[] = {SV_INT(x->status),
	                        x->recovered_ms ? SV_INT(x->recovered_ms) : SV_NULL(),
	                        x->closed_ms ? SV_INT(x->closed_ms) : SV_NULL(), SV_INT(x->id)};
	if (store_exec(
	            M.ctx->store,
	            "UPDATE incidents SET status = ?, recovered_ms = ?, closed_ms = ? WHERE id = ?",
	            p, 4, NULL, err) < 0)
		return -1;
	struct store_val d[] = {SV_INT(x->id), SV_INT(to)};
	if (store_exec(M.ctx->store,
	               "DELETE FROM incident_phases WHERE incident_id = ? AND status >= ?", d, 2,
	               NULL, err) < 0)
		return -1;
	struct store_val q[] = {SV_INT(x->id), SV_INT(to), SV_INT(at_ms), SV_TEXT(actor)};
	if (store_exec(M.ctx->store,
	               "INSERT INTO incident_phases (incident_id, status, at_ms, actor)"
	               " VALUES (?, ?, ?, ?)",
	               q, 4, NULL, err) < 0)
		return -1;
	free(x->phase_by[to]);
	x->phase_by[to] = ward_strdup(actor);
	struct buf t = BUF_INIT;
	buf_printf(&t, "%s -> %s", incident_status_name(from), incident_status_name(to));
	if (to == INCIDENT_RECOVERED && at_ms >= x->opened_ms) {
		char d2[32];
		ward_fmt_duration(at_ms - x->opened_ms, d2);
		buf_printf(&t, " (time to recover %s)", d2);
		metric_observe(M.m_ttr, NULL, (double)(at_ms - x->opened_ms) / 1000.0);
	}
	inc_timeline_add(x->id, at_ms, "status", actor, buf_cstr(&t));
	buf_free(&t);
	inc_refresh_open_gauge();
	return 0;
}

int inc_ack(struct inc *x, int64_t at_ms, const char *actor, struct ward_err *err) {
	if (x->acked_ms)
		return 1;
	struct store_val p[] = {SV_INT(at_ms), SV_TEXT(actor), SV_INT(x->id)};
	if (store_exec(M.ctx->store, "UPDATE incidents SET acked_ms = ?, acked_by = ? WHERE id = ?",
	               p, 3, NULL, err) < 0)
		return -1;
	x->acked_ms = at_ms;
	free(x->acked_by);
	x->acked_by = ward_strdup(actor);
	int64_t tta = at_ms > x->opened_ms ? at_ms - x->opened_ms : 0;
	char d[32];
	ward_fmt_duration(tta, d);
	struct buf t = BUF_INIT;
	buf_printf(&t, "acknowledged (time to acknowledge %s)", d);
	inc_timeline_add(x->id, at_ms, "ack", actor, buf_cstr(&t));
	buf_free(&t);
	metric_observe(M.m_tta, NULL, (double)tta / 1000.0);
	return 0;
}

/* ---- following notify ---- */

struct id_list {
	int64_t *v;
	size_t n, cap;
};
static void ids_push(struct id_list *l, int64_t id) {
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == id)
			return;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->v = ward_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = id;
}
static int id_row(void *arg, const struct store_val *c, size_t n) {
	(void)n;
	ids_push(arg, col_int(&c[0]));
	return 0;
}

static char *labels_json_text(const struct labels *ls) {
	json_t *o = json_object();
	for (size_t i = 0; ls && i < ls->n; i++)
		json_object_set_new(o, ls->v[i].name, json_string(ls->v[i].value));
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

/* The incidents (not closed) an alert fingerprint is attached to. */
static void incidents_of(const char *fp, struct id_list *out) {
	struct ward_err err;
	struct store_val p[] = {SV_TEXT(fp), SV_INT(INCIDENT_CLOSED)};
	store_query(M.ctx->store,
	            "SELECT a.incident_id FROM incident_alerts a JOIN incidents i"
	            " ON i.id = a.incident_id WHERE a.fingerprint = ? AND i.status < ?",
	            p, 2, id_row, out, &err);
}

static void alert_desc(const struct labels *ls, struct buf *out) {
	const char *an = ls ? labels_get(ls, "alertname") : NULL;
	buf_puts(out, an ? an : "alert");
	if (ls) {
		struct labels rest;
		labels_init(&rest);
		labels_copy(&rest, ls);
		labels_del(&rest, "alertname");
		labels_write(out, &rest);
		labels_free(&rest);
	}
}

/* Returns the id of an incident opened (for the audit), or 0. */
static int64_t on_firing(const struct notify_event *ev, struct id_list *reopened) {
	struct ward_err err;
	struct buf key = BUF_INIT, d = BUF_INIT;
	int64_t opened = 0, id = 0;
	incident_group_key(ev->labels, M.group_by, M.ngroup_by, &key);
	struct id_list ids = {0};
	struct store_val p[] = {SV_TEXT(buf_cstr(&key)), SV_INT(INCIDENT_CLOSED)};
	store_query(M.ctx->store,
	            "SELECT id FROM incidents WHERE group_key = ? AND status < ? ORDER BY id DESC",
	            p, 2, id_row, &ids, &err);
	if (ids.n) {
		id = ids.v[0];
	} else if (incident_matchers_match(M.open_on, M.nopen_on, ev->labels)) {
		const char *an = labels_get(ev->labels, "alertname");
		const char *catl = labels_get(ev->labels, "category");
		enum incident_category cat = (enum incident_category)M.default_category;
		if (catl)
			(void)incident_category_parse(catl, &cat);
		const char *summary = labels_get(ev->labels, "summary");
		struct buf title = BUF_INIT;
		buf_puts(&title, an ? an : "alert");
		if (summary)
			buf_printf(&title, ": %s", summary);
		id = inc_create(buf_cstr(&title),
		                incident_severity_from_label(labels_get(ev->labels, "severity")),
		                incident_category_name(cat), NULL, buf_cstr(&key), ev->at_ms,
		                "system", &err);
		buf_free(&title);
		if (id < 0) {
			ward_log(LOG_ERROR, "incident: could not open an incident", "error",
			         err.msg, NULL);
			id = 0;
		}
		opened = id;
	}
	if (id > 0) {
		char *lj = labels_json_text(ev->labels);
		struct store_val del[] = {SV_INT(id), SV_TEXT(ev->fingerprint)};
		store_exec(M.ctx->store,
		           "DELETE FROM incident_alerts WHERE incident_id = ? AND fingerprint = ?",
		           del, 2, NULL, &err);
		struct store_val ins[] = {SV_INT(id), SV_TEXT(ev->fingerprint), SV_TEXT(lj),
		                          SV_INT(ev->at_ms)};
		if (store_exec(
		            M.ctx->store,
		            "INSERT INTO incident_alerts (incident_id, fingerprint, labels, firing,"
		            " since_ms) VALUES (?, ?, ?, 1, ?)",
		            ins, 4, NULL, &err) < 0)
			ward_log(LOG_ERROR, "incident: could not attach an alert", "error", err.msg,
			         NULL);
		free(lj);
		alert_desc(ev->labels, &d);
		buf_printf(&d, " firing (%s)", ev->fingerprint);
		inc_timeline_add(id, ev->at_ms, "alert_firing", "system", buf_cstr(&d));
		struct inc x;
		if (!opened && inc_load(id, &x, &err) == 0) {
			if (x.status == INCIDENT_RECOVERED)
				(void)inc_move(&x, INCIDENT_INVESTIGATING, ev->at_ms, "system",
				               &err);
			inc_free(&x);
		}
	}
	free(ids.v);
	buf_free(&key);
	buf_free(&d);
	return opened;
}

static void on_resolved(const struct notify_event *ev, struct id_list *recovered) {
	struct ward_err err;
	struct id_list ids = {0};
	incidents_of(ev->fingerprint, &ids);
	struct buf d = BUF_INIT;
	alert_desc(ev->labels, &d);
	buf_printf(&d, " resolved (%s)", ev->fingerprint);
	for (size_t i = 0; i < ids.n; i++) {
		struct store_val p[] = {SV_INT(ev->at_ms), SV_INT(ids.v[i]),
		                        SV_TEXT(ev->fingerprint)};
		store_exec(M.ctx->store,
		           "UPDATE incident_alerts SET firing = 0, resolved_ms = ?"
		           " WHERE incident_id = ? AND fingerprint = ?",
		           p, 3, NULL, &err);
		inc_timeline_add(ids.v[i], ev->at_ms, "alert_resolved", "system", buf_cstr(&d));
		int64_t firing = 0;
		struct store_val q[] = {SV_INT(ids.v[i])};
		store_query(
		        M.ctx->store,
		        "SELECT COUNT(*) FROM incident_alerts WHERE incident_id = ? AND firing = 1",
		        q, 1, count_row, &firing, &err);
		struct inc x;
		if (firing == 0 && inc_load(ids.v[i], &x, &err) == 0) {
			if (x.status < INCIDENT_RECOVERED) {
				if (inc_move(&x, INCIDENT_RECOVERED, ev->at_ms, "system", &err) ==
				    0)
					ids_push(recovered, x.id);
				else
					ward_log(LOG_ERROR, "incident: could not mark recovered",
					         "error", err.msg, NULL);
			}
			inc_free(&x);
		}
	}
	free(ids.v);
	buf_free(&d);
}

static void on_escalated_or_ack(const struct notify_event *ev) {
	struct ward_err err;
	struct id_list ids = {0};
	incidents_of(ev->fingerprint, &ids);
	struct buf d = BUF_INIT;
	alert_desc(ev->labels, &d);
	if (ev->kind == NOTIFY_EV_ESCALATED)
		buf_printf(&d, " escalated to level %d (%s)", ev->level,
		           ev->receiver ? ev->receiver : "?");
	else
		buf_puts(&d, " acknowledged; its escalation stops");
	const char *actor = ev->kind == NOTIFY_EV_ACK && ev->actor ? ev->actor : "system";
	for (size_t i = 0; i < ids.n; i++) {
		inc_timeline_add(ids.v[i], ev->at_ms,
		                 ev->kind == NOTIFY_EV_ESCALATED ? "escalated" : "alert_acked",
		                 actor, buf_cstr(&d));
		struct inc x;
		if (ev->kind == NOTIFY_EV_ACK && inc_load(ids.v[i], &x, &err) == 0) {
			(void)inc_ack(&x, ev->at_ms, actor, &err);
			inc_free(&x);
		}
	}
	free(ids.v);
	buf_free(&d);
}

/* The group labels of a notify group key "<route>:{a="b",c="d"}". */
static void parse_group_key(const char *key, struct labels *out) {
	const char *s = strstr(key, ":{");
	for (const char *t = s; t; t = strstr(t + 1, ":{"))
		s = t;
	if (!s)
		return;
	s += 2;
	while (*s && *s != '}') {
		const char *ns = s;
		while (*s && *s != '=' && *s != '}')
			s++;
		if (*s != '=' || s[1] != '"')
			return;
		char *name = ward_strndup(ns, (size_t)(s - ns));
		s += 2;
		struct buf v = BUF_INIT;
		while (*s && *s != '"') {
			if (*s == '\\' && s[1]) {
				s++;
				buf_putc(&v, *s == 'n' ? '\n' : *s);
			} else {
				buf_putc(&v, *s);
			}
			s++;
		}
		labels_set(out, name, buf_cstr(&v));
		free(name);
		buf_free(&v);
		if (*s == '"')
			s++;
		if (*s == ',')
			s++;
	}
}

struct notif_scan {
	const struct labels *gl;
	struct id_list *ids;
};
static int notif_row(void *arg, const struct store_val *c, size_t n) {
	struct notif_scan *ns = arg;
	(void)n;
	json_t *o = json_loads(c[1].type == STORE_TEXT ? c[1].s : "{}", 0, NULL);
	bool all = o != NULL;
	for (size_t i = 0; all && i < ns->gl->n; i++) {
		const char *v = json_string_value(json_object_get(o, ns->gl->v[i].name));
		all = v && strcmp(v, ns->gl->v[i].value) == 0;
	}
	json_decref(o);
	if (all)
		ids_push(ns->ids, col_int(&c[0]));
	return 0;
}

static void on_notification(const struct notify_event *ev) {
	struct ward_err err;
	if (!ev->group_key)
		return;
	struct labels gl;
	labels_init(&gl);
	parse_group_key(ev->group_key, &gl);
	if (gl.n == 0) {
		labels_free(&gl);
		return;
	}
	struct id_list ids = {0};
	struct notif_scan ns = {&gl, &ids};
	struct store_val p[] = {SV_INT(INCIDENT_CLOSED)};
	store_query(M.ctx->store,
	            "SELECT a.incident_id, a.labels FROM incident_alerts a JOIN incidents i"
	            " ON i.id = a.incident_id WHERE i.status < ?",
	            p, 1, notif_row, &ns, &err);
	struct buf d = BUF_INIT;
	buf_printf(&d, "notification to %s via %s: %s", ev->receiver ? ev->receiver : "?",
	           ev->integration ? ev->integration : "?", ev->result ? ev->result : "?");
	for (size_t i = 0; i < ids.n; i++)
		inc_timeline_add(ids.v[i], ev->at_ms, "notification", "system", buf_cstr(&d));
	free(ids.v);
	buf_free(&d);
	labels_free(&gl);
}

static void on_event(const struct notify_event *ev, void *arg) {
	(void)arg;
	int64_t opened = 0;
	struct id_list moved = {0}; /* incidents the system moved, for the audit trail */
	pthread_mutex_lock(&M.mu);
	if (!M.ctx) {
		pthread_mutex_unlock(&M.mu);
		return;
	}
	struct ward_ctx *ctx = M.ctx;
	switch (ev->kind) {
	case NOTIFY_EV_FIRING:
		if (ev->labels && ev->fingerprint)
			opened = on_firing(ev, &moved);
		break;
	case NOTIFY_EV_RESOLVED:
		if (ev->fingerprint)
			on_resolved(ev, &moved);
		break;
	case NOTIFY_EV_ESCALATED:
	case NOTIFY_EV_ACK:
		if (ev->fingerprint && *ev->fingerprint)
			on_escalated_or_ack(ev);
		break;
	case NOTIFY_EV_NOTIFICATION:
		on_notification(ev);
		break;
	}
	pthread_mutex_unlock(&M.mu);
	if (opened > 0) {
		char target[32], det[128];
		snprintf(target, sizeof(target), "INC-%lld", (long long)opened);
		snprintf(det, sizeof(det), "{\"fingerprint\":\"%.16s\"}", ev->fingerprint);
		(void)ward_audit_system(ctx, "incident.open", target, "ok", det);
	}
	for (size_t i = 0; i < moved.n; i++) {
		char target[32];
		snprintf(target, sizeof(target), "INC-%lld", (long long)moved.v[i]);
		(void)ward_audit_system(ctx, "incident.status", target, "ok",
		                        ev->kind == NOTIFY_EV_RESOLVED
		                                ? "{\"status\":\"recovered\"}"
		                                : "{\"status\":\"investigating\"}");
	}
	free(moved.v);
}

/* ---- lifecycle ---- */

static void inc_init(void) {
	static const double buckets[] = {10,   30,   60,   120,   300,   600,  900,
	                                 1800, 3600, 7200, 14400, 43200, 86400};
	static const char *const sev_l[] = {"severity", NULL};
	static const char *const total_l[] = {"severity", "category", NULL};
	(void)conf_register_section(&inc_schema);
	(void)store_register_migrations("incident", migrations,
	                                sizeof(migrations) / sizeof(migrations[0]));
	M.m_open = metric_register("ward_incidents_open", "Incidents not closed, by severity.",
	                           METRIC_GAUGE, sev_l, NULL, 0);
	M.m_total = metric_register("ward_incidents_total",
	                            "Incidents opened, by severity and category.", METRIC_COUNTER,
	                            total_l, NULL, 0);
	M.m_tta = metric_register("ward_incident_time_to_acknowledge_seconds",
	                          "Time from an incident's detection to its first acknowledgement.",
	                          METRIC_HISTOGRAM, NULL, buckets,
	                          sizeof(buckets) / sizeof(buckets[0]));
	M.m_ttr = metric_register("ward_incident_time_to_recover_seconds",
	                          "Time from an incident's detection to its recovery.",
	                          METRIC_HISTOGRAM, NULL, buckets,
	                          sizeof(buckets) / sizeof(buckets[0]));
}

static int inc_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	static bool subscribed;
	M.ctx = ctx;
	take_config(c);
	pthread_mutex_lock(&M.mu);
	inc_refresh_open_gauge();
	pthread_mutex_unlock(&M.mu);
	inc_api_register();
	if (!subscribed) {
		if (notify_subscribe(on_event, NULL) < 0) {
			ward_err_set(err, "incident: could not subscribe to notify's events (more "
			                  "than 16 subscribers?)");
			return -1;
		}
		subscribed = true;
	}
	return 0;
}

static int inc_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	(void)ctx;
	(void)err;
	take_config(c);
	return 0;
}

static void inc_stop(struct ward_ctx *ctx) {
	(void)ctx;
	pthread_mutex_lock(&M.mu);
	M.ctx = NULL;
	pthread_mutex_unlock(&M.mu);
}

const struct ward_module incident_module = {
        .name = "incident",
        .init = inc_init,
        .start = inc_start,
        .apply = inc_apply,
        .stop = inc_stop,
};
