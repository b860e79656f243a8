/* api.c: the incident HTTP API: GET /api/v1/incidents (viewer; filters status, severity),
 * POST /api/v1/incidents (operator; open by hand), GET /api/v1/incidents/<id>[/report] and
 * POST /api/v1/incidents/<id>/{ack,note,status,close,commander} (operator). Every change
 * is audited (incident.open, .ack, .note, .status, .close, .commander) after M.mu is
 * released; a change that cannot be audited answers 500. Handlers run on HTTP threads.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "http/http.h"
#include "incident/incident_internal.h"
#include "notify/notify.h"
#include "store/store.h"

static void actor_of(const struct http_req *req, char *out, size_t n) {
	snprintf(out, n, "%s (%s)", req->actor.name, req->actor.id);
}

static json_t *time_json(int64_t ms) {
	if (!ms)
		return json_null();
	char t[32];
	ward_fmt_rfc3339(ms, t);
	return json_string(t);
}

static json_t *str_json(const char *s) {
	return s ? json_string(s) : json_null();
}

/* Accepts "INC-12" or "12" (n bytes). 0 or -1. */
static int parse_id(const char *s, size_t n, int64_t *out) {
	if (n > 4 && (strncmp(s, "INC-", 4) == 0 || strncmp(s, "inc-", 4) == 0)) {
		s += 4;
		n -= 4;
	}
	if (n == 0 || n > 15)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return v > 0 ? 0 : -1;
}

struct rows {
	json_t *arr;
	int kind; /* 0 timeline, 1 alerts */
};
static int rows_row(void *arg, const struct store_val *c, size_t n) {
	struct rows *r = arg;
	(void)n;
	if (r->kind == 0) {
		json_array_append_new(r->arr,
		                      json_pack("{s:o,s:s,s:s,s:s}", "at", time_json(c[0].i),
		                                "kind", c[1].s, "actor", c[2].s, "text", c[3].s));
	} else {
		json_t *ls = json_loads(c[1].s, 0, NULL);
		json_array_append_new(
		        r->arr, json_pack("{s:s,s:o,s:b,s:o,s:o}", "fingerprint", c[0].s, "labels",
		                          ls ? ls : json_object(), "firing", (int)c[2].i, "since",
		                          time_json(c[3].i), "resolved_at",
		                          time_json(c[4].type == STORE_INT ? c[4].i : 0)));
	}
	return 0;
}

static json_t *inc_json(const struct inc *x, bool full) {
	char id[32];
	snprintf(id, sizeof(id), "INC-%" PRId64, x->id);
	json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:s,s:o,s:s,s:o,s:s}", "id", id, "number",
	                      (json_int_t)x->id, "title", x->title ? x->title : "", "severity",
	                      inc_sev_name(x->severity), "category", x->category ? x->category : "",
	                      "commander", str_json(x->commander), "status",
	                      incident_status_name(x->status), "group_key", str_json(x->group_key),
	                      "opened_by", x->opened_by ? x->opened_by : "");
	json_object_set_new(o, "opened_at", time_json(x->opened_ms));
	json_object_set_new(o, "acked_at", time_json(x->acked_ms));
	json_object_set_new(o, "acked_by", str_json(x->acked_by));
	json_object_set_new(o, "time_to_acknowledge_seconds",
	                    x->acked_ms ? json_real((double)(x->acked_ms - x->opened_ms) / 1000.0)
	                                : json_null());
	json_object_set_new(o, "recovered_at", time_json(x->recovered_ms));
	json_object_set_new(o, "time_to_recover_seconds",
	                    x->recovered_ms
	                            ? json_real((double)(x->recovered_ms - x->opened_ms) / 1000.0)
	                            : json_null());
	json_object_set_new(o, "closed_at", time_json(x->closed_ms));
	json_t *ph = json_array();
	for (int s = 0; s < INCIDENT_NSTATUS; s++)
		if (x->phase_ms[s])
			json_array_append_new(ph, json_pack("{s:s,s:o,s:s}", "status",
			                                    incident_status_name(s), "at",
			                                    time_json(x->phase_ms[s]), "by",
			                                    x->phase_by[s] ? x->phase_by[s] : ""));
	json_object_set_new(o, "phases", ph);
	struct ward_err err;
	struct store_val p[] = {SV_INT(x->id)};
	struct rows al = {json_array(), 1};
	store_query(M.ctx->store,
	            "SELECT fingerprint, labels, firing, since_ms, resolved_ms FROM incident_alerts"
	            " WHERE incident_id = ? ORDER BY since_ms, fingerprint",
	            p, 1, rows_row, &al, &err);
	json_object_set_new(o, "alerts", al.arr);
	if (full) {
		struct rows tl = {json_array(), 0};
		store_query(M.ctx->store,
		            "SELECT at_ms, kind, actor, text FROM incident_timeline"
		            " WHERE incident_id = ? ORDER BY at_ms, id",
		            p, 1, rows_row, &tl, &err);
		json_object_set_new(o, "timeline", tl.arr);
	}
	return o;
}

static void send_json(struct http_resp *resp, int status, json_t *data) {
	char *s = json_dumps(data, JSON_COMPACT);
	http_resp_json(resp, status, s);
	free(s);
	json_decref(data);
}

static int id_row(void *arg, const struct store_val *c, size_t n) {
	(void)n;
	json_array_append_new(arg, json_integer(c[0].i));
	return 0;
}

static void h_list(struct http_req *req, struct http_resp *resp, void *arg) {
	(void)arg;
	const char *fs = http_param(req, "status");
	const char *fv = http_param(req, "severity");
	enum incident_status st = INCIDENT_DETECTED;
	int sev = -1;
	bool only_open = fs && strcmp(fs, "open") == 0;
	if (fs && *fs && !only_open && incident_status_parse(fs, &st) < 0) {
		http_resp_error(resp, 400, "bad_data",
		                "status '%s' is not a phase (detected, contained, investigating, "
		                "remediated, recovered, closed) or 'open'",
		                fs);
		return;
	}
	if (fv && *fv && (sev = incident_severity_parse(fv)) < 0) {
		http_resp_error(resp, 400, "bad_data", "severity '%s' is not SEV1..SEV4", fv);
		return;
	}
	struct ward_err err;
	json_t *ids = json_array(), *out = json_array();
	pthread_mutex_lock(&M.mu);
	int rc = store_query(M.ctx->store, "SELECT id FROM incidents ORDER BY id DESC", NULL, 0,
	                     id_row, ids, &err);
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		struct inc x;
		if (rc < 0 || inc_load(json_integer_value(v), &x, &err) != 0)
			continue;
		bool keep = (!fs || !*fs ||
		             (only_open ? x.status != INCIDENT_CLOSED : x.status == st)) &&
		            (sev < 0 || x.severity == sev);
		if (keep)
			json_array_append_new(out, inc_json(&x, false));
		inc_free(&x);
	}
	pthread_mutex_unlock(&M.mu);
	json_decref(ids);
	if (rc < 0) {
		json_decref(out);
		http_resp_error(resp, 500, "internal", "incidents: %s", err.msg);
		return;
	}
	send_json(resp, 200, out);
}

static json_t *body_obj(const struct http_req *req, struct http_resp *resp, bool required) {
	if (!req->body_len) {
		if (required)
			http_resp_error(resp, 400, "bad_data", "a JSON object body is required");
		return required ? NULL : json_object();
	}
	json_error_t je;
	json_t *b = json_loadb(req->body, req->body_len, 0, &je);
	if (!b || !json_is_object(b)) {
		http_resp_error(resp, 400, "bad_data", "body: line %d column %d: %s", je.line,
		                je.column, b ? "expected a JSON object" : je.text);
		json_decref(b);
		return NULL;
	}
	return b;
}

/* Audits; on failure turns resp into a 500. Returns 0 or -1. */
static int audit(const struct http_req *req, struct http_resp *resp, const char *action, int64_t id,
                 const char *details) {
	char target[32];
	snprintf(target, sizeof(target), "INC-%" PRId64, id);
	if (ward_audit_req(M.ctx, req, action, target, "ok", details) < 0) {
		buf_reset(&resp->body);
		http_resp_error(resp, 500, "internal",
		                "%s %s was done but could not be audited; check the audit "
		                "directory's disk",
		                action, target);
		return -1;
	}
	return 0;
}

static void h_create(struct http_req *req, struct http_resp *resp, void *arg) {
	(void)arg;
	json_t *b = body_obj(req, resp, true);
	if (!b)
		return;
	const char *title = json_string_value(json_object_get(b, "title"));
	json_t *jsev = json_object_get(b, "severity");
	const char *cat = json_string_value(json_object_get(b, "category"));
	const char *cmdr = json_string_value(json_object_get(b, "commander"));
	int sev = 3;
	enum incident_category c = INCIDENT_CAT_AVAILABILITY;
	char sevbuf[16];
	if (json_is_integer(jsev)) {
		snprintf(sevbuf, sizeof(sevbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(jsev));
		sev = incident_severity_parse(sevbuf);
	} else if (json_is_string(jsev)) {
		sev = incident_severity_parse(json_string_value(jsev));
	} else if (jsev) {
		sev = -1;
	}
	if (!title || !*title) {
		http_resp_error(resp, 400, "bad_data",
		                "\"title\" (a non-empty string) is required");
	} else if (sev < 0) {
		http_resp_error(resp, 400, "bad_data", "\"severity\" must be SEV1..SEV4");
	} else if (cat && incident_category_parse(cat, &c) < 0) {
		http_resp_error(resp, 400, "bad_data",
		                "\"category\" must be availability, performance, security or data");
	} else {
		char actor[200];
		struct ward_err err;
		actor_of(req, actor, sizeof(actor));
		pthread_mutex_lock(&M.mu);
		if (!cat)
			c = (enum incident_category)M.default_category;
		int64_t id = inc_create(title, sev, incident_category_name(c), cmdr, NULL,
		                        ward_now_ms(), actor, &err);
		json_t *out = NULL;
		struct inc x;
		if (id > 0 && inc_load(id, &x, &err) == 0) {
			out = inc_json(&x, true);
			inc_free(&x);
		}
		pthread_mutex_unlock(&M.mu);
		if (!out) {
			http_resp_error(resp, 500, "internal", "could not open the incident: %s",
			                err.msg);
		} else {
			send_json(resp, 201, out);
			audit(req, resp, "incident.open", id, NULL);
		}
	}
	json_decref(b);
}

/* ---- the Markdown report ---- */

static void md_text(struct buf *b, const char *s) {
	/* table cells: no newlines, no pipes */
	for (; s && *s; s++)
		buf_putc(b, *s == '|' ? '/' : (*s == '\n' || *s == '\r') ? ' ' : *s);
}

static void md_time(struct buf *b, int64_t ms) {
	char t[32];
	if (!ms) {
		buf_puts(b, "-");
		return;
	}
	ward_fmt_rfc3339(ms, t);
	buf_puts(b, t);
}

static void md_dur(struct buf *b, int64_t from, int64_t to) {
	char d[32];
	if (!to || to < from) {
		buf_puts(b, "-");
		return;
	}
	ward_fmt_duration(to - from, d);
	buf_puts(b, d);
}

struct md_rows {
	struct buf *b;
	int kind; /* 0 timeline, 1 alerts, 2 notes */
	size_t n;
};
static int md_row(void *arg, const struct store_val *c, size_t n) {
	struct md_rows *r = arg;
	(void)n;
	r->n++;
	if (r->kind == 0) {
		buf_puts(r->b, "| ");
		md_time(r->b, c[0].i);
		buf_puts(r->b, " | ");
		md_text(r->b, c[1].s);
		buf_puts(r->b, " | ");
		md_text(r->b, c[2].s);
		buf_puts(r->b, " | ");
		md_text(r->b, c[3].s);
		buf_puts(r->b, " |\n");
	} else if (r->kind == 1) {
		buf_puts(r->b, "| `");
		md_text(r->b, c[0].s);
		buf_puts(r->b, "` | `");
		md_text(r->b, c[1].s);
		buf_puts(r->b, "` | ");
		md_time(r->b, c[3].i);
		buf_puts(r->b, " | ");
		md_time(r->b, c[4].type == STORE_INT ? c[4].i : 0);
		buf_puts(r->b, " |\n");
	} else {
		buf_puts(r->b, "- ");
		md_time(r->b, c[0].i);
		buf_puts(r->b, " — ");
		md_text(r->b, c[2].s);
		buf_puts(r->b, ": ");
		md_text(r->b, c[3].s);
		buf_putc(r->b, '\n');
	}
	return 0;
}

static void report(const struct inc *x, struct buf *b) {
	struct ward_err err;
	struct store_val p[] = {SV_INT(x->id)};
	int64_t end = x->recovered_ms ? x->recovered_ms : x->closed_ms;
	buf_printf(b, "# Post-incident report: INC-%" PRId64 " — ", x->id);
	md_text(b, x->title);
	buf_puts(b, "\n\n## Summary\n\n");
	buf_printf(b, "- **Severity:** %s\n- **Category:** %s\n- **Status:** %s\n",
	           inc_sev_name(x->severity), x->category ? x->category : "-",
	           incident_status_name(x->status));
	buf_puts(b, "- **Commander:** ");
	md_text(b, x->commander ? x->commander : "(none assigned)");
	buf_puts(b, "\n- **Opened:** ");
	md_time(b, x->opened_ms);
	buf_puts(b, " by ");
	md_text(b, x->opened_by);
	buf_puts(b, "\n- **Acknowledged:** ");
	md_time(b, x->acked_ms);
	if (x->acked_by) {
		buf_puts(b, " by ");
		md_text(b, x->acked_by);
	}
	buf_puts(b, "\n- **Recovered:** ");
	md_time(b, x->recovered_ms);
	buf_puts(b, "\n- **Closed:** ");
	md_time(b, x->closed_ms);
	buf_puts(b, "\n\n## Impact\n\n");
	buf_printf(b, "A %s %s incident, ", inc_sev_name(x->severity),
	           x->category ? x->category : "");
	if (end) {
		buf_puts(b, "lasting ");
		md_dur(b, x->opened_ms, end);
		buf_puts(b, " from detection to recovery.");
	} else {
		buf_puts(b, "not yet recovered.");
	}
	buf_puts(b, " _Describe who and what was affected._\n\n## Metrics\n\n");
	buf_puts(b, "| metric | value |\n|---|---|\n| time to acknowledge (MTTA) | ");
	md_dur(b, x->opened_ms, x->acked_ms);
	buf_puts(b, " |\n| time to recover (MTTR) | ");
	md_dur(b, x->opened_ms, x->recovered_ms);
	buf_puts(b, " |\n\n## Phases\n\n| phase | at | by |\n|---|---|---|\n");
	for (int s = 0; s < INCIDENT_NSTATUS; s++) {
		if (!x->phase_ms[s])
			continue;
		buf_printf(b, "| %s | ", incident_status_name(s));
		md_time(b, x->phase_ms[s]);
		buf_puts(b, " | ");
		md_text(b, x->phase_by[s]);
		buf_puts(b, " |\n");
	}
	buf_puts(b, "\n## Timeline\n\n| time | event | who | details |\n|---|---|---|---|\n");
	struct md_rows tl = {b, 0, 0};
	store_query(M.ctx->store,
	            "SELECT at_ms, kind, actor, text FROM incident_timeline WHERE incident_id = ?"
	            " ORDER BY at_ms, id",
	            p, 1, md_row, &tl, &err);
	buf_puts(b,
	         "\n## Alerts\n\n| fingerprint | labels | fired | resolved |\n|---|---|---|---|\n");
	struct md_rows al = {b, 1, 0};
	store_query(M.ctx->store,
	            "SELECT fingerprint, labels, firing, since_ms, resolved_ms FROM incident_alerts"
	            " WHERE incident_id = ? ORDER BY since_ms, fingerprint",
	            p, 1, md_row, &al, &err);
	if (!al.n)
		buf_puts(b, "| - | (opened by hand; no alerts attached) | - | - |\n");
	buf_puts(b, "\n## Notes\n\n");
	struct md_rows nt = {b, 2, 0};
	store_query(M.ctx->store,
	            "SELECT at_ms, kind, actor, text FROM incident_timeline WHERE incident_id = ?"
	            " AND kind = 'note' ORDER BY at_ms, id",
	            p, 1, md_row, &nt, &err);
	if (!nt.n)
		buf_puts(b, "(none)\n");
	buf_puts(b, "\n## Action items\n\n- [ ] _What will keep this from happening again? "
	            "Owner and date for each item._\n");
}

static void h_get(struct http_req *req, struct http_resp *resp, void *arg) {
	(void)arg;
	const char *tail = req->path_tail ? req->path_tail : "";
	const char *slash = strchr(tail, '/');
	size_t idn = slash ? (size_t)(slash - tail) : strlen(tail);
	const char *sub = slash ? slash + 1 : "";
	int64_t id;
	if (parse_id(tail, idn, &id) < 0) {
		http_resp_error(resp, 400, "bad_data",
		                "'%.*s' is not an incident id (INC-12 or 12)",
		                (int)(idn > 64 ? 64 : idn), tail);
		return;
	}
	if (*sub && strcmp(sub, "report") != 0) {
		http_resp_error(resp, 404, "not_found", "no such incident resource '%s'", sub);
		return;
	}
	struct ward_err err;
	struct inc x;
	pthread_mutex_lock(&M.mu);
	int rc = inc_load(id, &x, &err);
	if (rc == 0) {
		if (*sub) {
			struct buf md = BUF_INIT;
			report(&x, &md);
			const char *fmt = http_param(req, "format");
			if (fmt && strcmp(fmt, "json") == 0) {
				json_t *o = json_pack("{s:s}", "markdown", buf_cstr(&md));
				send_json(resp, 200, o);
			} else {
				resp->status = 200;
				resp->content_type = "text/markdown; charset=utf-8";
				buf_append(&resp->body, md.data, md.len);
			}
			buf_free(&md);
		} else {
			send_json(resp, 200, inc_json(&x, true));
		}
		inc_free(&x);
	}
	pthread_mutex_unlock(&M.mu);
	if (rc == 1)
		http_resp_error(resp, 404, "not_found",
		                "no incident INC-%" PRId64 "; 'ward incident list' shows them", id);
	else if (rc < 0)
		http_resp_error(resp, 500, "internal", "incident: %s", err.msg);
}

struct fp_list {
	char (*v)[17];
	size_t n;
};
static int fp_row(void *arg, const struct store_val *c, size_t n) {
	struct fp_list *l = arg;
	(void)n;
	l->v = ward_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	snprintf(l->v[l->n++], 17, "%s", c[0].s);
	return 0;
}

static void h_post(struct http_req *req, struct http_resp *resp, void *arg) {
	(void)arg;
	const char *tail = req->path_tail ? req->path_tail : "";
	const char *slash = strchr(tail, '/');
	int64_t id;
	if (!slash || parse_id(tail, (size_t)(slash - tail), &id) < 0) {
		http_resp_error(resp, 404, "not_found",
		                "POST /api/v1/incidents/<id>/{ack,note,status,close,commander}");
		return;
	}
	const char *verb = slash + 1;
	static const char *const verbs[] = {"ack", "note", "status", "close", "commander"};
	int vi = -1;
	for (int i = 0; i < 5; i++)
		if (strcmp(verb, verbs[i]) == 0)
			vi = i;
	if (vi < 0) {
		http_resp_error(resp, 404, "not_found",
		                "no incident action '%s' (ack, note, status, close, commander)",
		                verb);
		return;
	}
	json_t *b = body_obj(req, resp, vi == 1 || vi == 2 || vi == 4);
	if (!b)
		return;
	const char *text = json_string_value(json_object_get(b, "text"));
	const char *sname = json_string_value(json_object_get(b, "status"));
	const char *cmdr = json_string_value(json_object_get(b, "commander"));
	enum incident_status to = INCIDENT_CLOSED;
	if (vi == 1 && (!text || !*text)) {
		http_resp_error(resp, 400, "bad_data", "\"text\" (the note) is required");
		goto out;
	}
	if (vi == 2 && (!sname || incident_status_parse(sname, &to) < 0)) {
		http_resp_error(resp, 400, "bad_data",
		                "\"status\" must be one of detected, contained, investigating, "
		                "remediated, recovered, closed");
		goto out;
	}
	if (vi == 4 && (!cmdr || !*cmdr)) {
		http_resp_error(resp, 400, "bad_data", "\"commander\" (a name) is required");
		goto out;
	}
	char actor[200];
	actor_of(req, actor, sizeof(actor));
	struct ward_err err;
	ward_err_clear(&err);
	struct inc x;
	struct fp_list fps = {0};
	int64_t now = ward_now_ms();
	int status = 200;
	json_t *out = NULL;
	struct buf det = BUF_INIT;
	pthread_mutex_lock(&M.mu);
	int rc = inc_load(id, &x, &err);
	if (rc == 0) {
		switch (vi) {
		case 0:
			rc = inc_ack(&x, now, actor, &err);
			if (rc == 1) {
				rc = 0;
				inc_timeline_add(id, now, "ack", actor, "acknowledged again");
			}
			if (rc == 0) {
				struct store_val p[] = {SV_INT(id)};
				store_query(M.ctx->store,
				            "SELECT fingerprint FROM incident_alerts"
				            " WHERE incident_id = ? AND firing = 1",
				            p, 1, fp_row, &fps, &err);
			}
			break;
		case 1:
			inc_timeline_add(id, now, "note", actor, text);
			buf_puts(&det, "{\"text\":");
			buf_json_str(&det, text, strlen(text));
			buf_putc(&det, '}');
			break;
		case 2:
		case 3:
			rc = inc_move(&x, to, now, actor, &err);
			if (rc < 0 && x.status != to && incident_transition_allowed(x.status, to))
				status = 500;
			else if (rc < 0)
				status = 409;
			buf_printf(&det, "{\"status\":\"%s\"}", incident_status_name(to));
			break;
		case 4: {
			struct store_val p[] = {SV_TEXT(cmdr), SV_INT(id)};
			rc = store_exec(M.ctx->store,
			                "UPDATE incidents SET commander = ? WHERE id = ?", p, 2,
			                NULL, &err) < 0
			             ? -1
			             : 0;
			if (rc == 0) {
				free(x.commander);
				x.commander = ward_strdup(cmdr);
				struct buf t = BUF_INIT;
				buf_printf(&t, "commander: %s", cmdr);
				inc_timeline_add(id, now, "commander", actor, buf_cstr(&t));
				buf_free(&t);
				buf_puts(&det, "{\"commander\":");
				buf_json_str(&det, cmdr, strlen(cmdr));
				buf_putc(&det, '}');
			} else {
				status = 500;
			}
			break;
		}
		}
		if (rc == 0) {
			inc_free(&x);
			if (inc_load(id, &x, &err) == 0)
				out = inc_json(&x, true);
		}
		inc_free(&x);
	}
	pthread_mutex_unlock(&M.mu);
	if (rc == 1 && !out) {
		http_resp_error(resp, 404, "not_found",
		                "no incident INC-%" PRId64 "; 'ward incident list' shows them", id);
	} else if (!out) {
		http_resp_error(resp, status == 200 ? 500 : status,
		                status == 409 ? "conflict" : "internal", "%s", err.msg);
	} else {
		/* stops the escalations of the alerts, without our lock: notify calls back */
		for (size_t i = 0; i < fps.n; i++) {
			struct ward_err e2;
			(void)notify_ack(fps.v[i], actor, &e2);
		}
		static const char *const actions[] = {"incident.ack", "incident.note",
		                                      "incident.status", "incident.close",
		                                      "incident.commander"};
		send_json(resp, 200, out);
		audit(req, resp, actions[vi], id, det.len ? buf_cstr(&det) : NULL);
	}
	free(fps.v);
	buf_free(&det);
out:
	json_decref(b);
}

void inc_api_register(void) {
	http_route("GET", "/api/v1/incidents", ROLE_VIEWER, h_list, NULL);
	http_route("POST", "/api/v1/incidents", ROLE_OPERATOR, h_create, NULL);
	http_route("GET", "/api/v1/incidents/*", ROLE_VIEWER, h_get, NULL);
	http_route("POST", "/api/v1/incidents/*", ROLE_OPERATOR, h_post, NULL);
}
