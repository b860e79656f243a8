/* api.c: notify's HTTP API. Alertmanager's v2 shapes where Alertmanager has the endpoint
 * (POST/GET /api/v2/alerts, /api/v2/alerts/groups, /api/v2/silences, /api/v2/silence/{id};
 * raw JSON, no envelope, so Prometheus and amtool-style clients work), ward's envelope for
 * the rest (/api/v1/notifications, /api/v1/escalations, /api/v1/oncall, acks). Every
 * change a person makes (silences, acks) is audited before the answer goes out.
 * Handlers run on the HTTP server's threads and take N.mu for the engine.
 */
#include <stdlib.h>
#include <string.h>

#include "notify/notify_module.h"
#include "store/store.h"

#define MAX_ALERTS_PER_POST 100000

static void send_raw(struct http_resp *resp, int status, json_t *j) {
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	resp->status = status;
	buf_puts(&resp->body, s);
	free(s);
	json_decref(j);
}

static void send_data(struct http_resp *resp, int status, json_t *j) {
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	http_resp_json(resp, status, s);
	free(s);
	json_decref(j);
}

/* The silence handlers answer raw JSON at Alertmanager's /api/v2 paths and in ward's
 * envelope at /api/v1/silences (which the CLI uses). */
struct api_arg {
	struct ward_ctx *ctx;
	bool envelope;
};
static struct api_arg arg_raw, arg_env;

static void send_out(struct http_resp *resp, const struct api_arg *a, int status, json_t *j) {
	if (a->envelope)
		send_data(resp, status, j);
	else
		send_raw(resp, status, j);
}

static void actor_of(const struct http_req *req, char *out, size_t n) {
	snprintf(out, n, "%s (%s)", req->actor.name, req->actor.id);
}

/* ---- decoding POST /api/v2/alerts ---- */

void nfy_alerts_free(struct notify_alert *v, size_t n) {
	for (size_t i = 0; i < n; i++) {
		labels_free(&v[i].labels);
		labels_free(&v[i].annotations);
		free((char *)v[i].generator_url);
	}
	free(v);
}

static int labels_from(json_t *o, struct labels *ls, const char *what, size_t idx,
                       struct ward_err *err) {
	const char *k;
	json_t *v;
	if (o && !json_is_object(o)) {
		ward_err_set(err, "alert %zu: %s must be an object of strings", idx, what);
		return -1;
	}
	json_object_foreach(o, k, v) {
		if (!json_is_string(v)) {
			ward_err_set(err, "alert %zu: %s.%s must be a string", idx, what, k);
			return -1;
		}
		if (!*k) {
			ward_err_set(err, "alert %zu: %s has an empty name", idx, what);
			return -1;
		}
		labels_set(ls, k, json_string_value(v));
	}
	return 0;
}

static int time_from(json_t *o, int64_t *out, const char *what, size_t idx, struct ward_err *err) {
	*out = 0;
	if (!o || json_is_null(o))
		return 0;
	const char *s = json_string_value(o);
	if (!s || (strncmp(s, "0001-01-01", 10) != 0 && ward_parse_time(s, strlen(s), out) != 0)) {
		ward_err_set(err, "alert %zu: %s is not an RFC 3339 time", idx, what);
		return -1;
	}
	return 0;
}

int nfy_decode_alerts(const char *body, size_t len, int64_t now_ms, struct notify_alert **out,
                      size_t *n, struct ward_err *err) {
	json_error_t je;
	*out = NULL;
	*n = 0;
	json_t *j = json_loadb(body ? body : "", len, 0, &je);
	if (!j) {
		ward_err_set(err,
		             "the body is not JSON (line %d column %d: %s); send an array of "
		             "{labels, annotations, startsAt, endsAt, generatorURL}",
		             je.line, je.column, je.text);
		return -1;
	}
	if (!json_is_array(j) || json_array_size(j) > MAX_ALERTS_PER_POST) {
		json_decref(j);
		ward_err_set(err, "the body must be a JSON array of alerts (at most %d)",
		             MAX_ALERTS_PER_POST);
		return -1;
	}
	size_t cnt = json_array_size(j);
	struct notify_alert *v = ward_xcalloc(cnt + 1, sizeof(*v));
	size_t i;
	json_t *a;
	json_array_foreach(j, i, a) {
		struct notify_alert *x = &v[i];
		*n = i + 1;
		labels_init(&x->labels);
		labels_init(&x->annotations);
		if (!json_is_object(a)) {
			ward_err_set(err, "alert %zu is not an object", i);
			goto fail;
		}
		if (labels_from(json_object_get(a, "labels"), &x->labels, "labels", i, err) ||
		    labels_from(json_object_get(a, "annotations"), &x->annotations, "annotations",
		                i, err) ||
		    time_from(json_object_get(a, "startsAt"), &x->starts_at_ms, "startsAt", i,
		              err) ||
		    time_from(json_object_get(a, "endsAt"), &x->ends_at_ms, "endsAt", i, err))
			goto fail;
		if (x->labels.n == 0) {
			ward_err_set(err, "alert %zu has no labels; an alert is identified by them",
			             i);
			goto fail;
		}
		json_t *g = json_object_get(a, "generatorURL");
		if (json_is_string(g))
			x->generator_url = ward_strdup(json_string_value(g));
	}
	json_decref(j);
	*out = v;
	(void)now_ms;
	return 0;
fail:
	json_decref(j);
	nfy_alerts_free(v, *n);
	*n = 0;
	return -1;
}

static void h_post_alerts(struct http_req *req, struct http_resp *resp, void *arg) {
	struct notify_alert *v;
	size_t n;
	struct ward_err err;
	ward_err_clear(&err);
	if (nfy_decode_alerts(req->body, req->body_len, ward_now_ms(), &v, &n, &err) != 0) {
		http_resp_error(resp, 400, "bad_data", "%s", err.msg);
		return;
	}
	if (notify_post_alerts(v, n, &err) != 0)
		http_resp_error(resp, 503, "unavailable", "%s", err.msg);
	else
		resp->status = 200;
	nfy_alerts_free(v, n);
}

/* ---- GET /api/v2/alerts ---- */

static bool param_bool(const struct http_req *req, const char *name, bool def) {
	const char *v = http_param(req, name);
	if (!v)
		return def;
	return strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

static int filters_of(const struct http_req *req, struct nfy_matchers *m, struct ward_err *err) {
	for (size_t i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, "filter") == 0 &&
		    nfy_matchers_parse(req->params[i].value, strlen(req->params[i].value), m,
		                       err) != 0)
			return -1;
	return 0;
}

/* The v2 alert object (call with N.mu held). */
static json_t *gettable_alert(struct nfy_alert *a, int64_t now, bool *muted) {
	json_t *o = nfy_alert_json(a, now);
	json_t *sil = json_array(), *inh = json_array(), *mut = json_array();
	*muted = nfy_engine_muted(&N.e, a, now, sil, inh, mut);
	bool res = nfy_alert_resolved(a, now);
	char t[32];
	json_object_set_new(o, "endsAt", json_string((ward_fmt_rfc3339(a->ends_ms, t), t)));
	ward_fmt_rfc3339(a->updated_ms, t);
	json_object_set_new(o, "updatedAt", json_string(t));
	json_t *recv = json_array();
	const struct nfy_route *rs[32];
	size_t nr = N.e.cfg ? nfy_route_match(&N.e.cfg->root, &a->labels, rs, 32) : 0;
	for (size_t i = 0; i < nr; i++)
		if (rs[i]->receiver)
			json_array_append_new(recv, json_pack("{s:s}", "name", rs[i]->receiver));
	json_object_set_new(o, "receivers", recv);
	const char *state = res ? "resolved" : *muted ? "suppressed" : "active";
	json_object_set_new(o, "status",
	                    json_pack("{s:s,s:o,s:o,s:o}", "state", state, "silencedBy", sil,
	                              "inhibitedBy", inh, "mutedBy", mut));
	json_object_set_new(o, "inMaintenance", json_boolean(json_array_size(mut) > 0));
	struct nfy_esc *x = nfy_engine_find_esc(&N.e, a->fp);
	if (x)
		json_object_set_new(o, "escalation", nfy_esc_json(x));
	return o;
}

static void h_get_alerts(struct http_req *req, struct http_resp *resp, void *arg) {
	struct nfy_matchers f = {0};
	struct ward_err err;
	ward_err_clear(&err);
	if (filters_of(req, &f, &err) != 0) {
		nfy_matchers_free(&f);
		http_resp_error(resp, 400, "bad_data", "filter: %s", err.msg);
		return;
	}
	bool want_active = param_bool(req, "active", true);
	bool want_sil = param_bool(req, "silenced", true);
	bool want_inh = param_bool(req, "inhibited", true);
	bool want_res = param_bool(req, "resolved", false);
	json_t *out = json_array();
	int64_t now = ward_now_ms();
	pthread_mutex_lock(&N.mu);
	for (size_t i = 0; i < N.e.nalerts; i++) {
		struct nfy_alert *a = N.e.alerts[i];
		if (!nfy_matchers_match(&f, &a->labels))
			continue;
		bool muted;
		json_t *o = gettable_alert(a, now, &muted);
		json_t *st = json_object_get(o, "status");
		bool res = nfy_alert_resolved(a, now);
		bool sil = json_array_size(json_object_get(st, "silencedBy")) > 0 ||
		           json_array_size(json_object_get(st, "mutedBy")) > 0;
		bool inh = json_array_size(json_object_get(st, "inhibitedBy")) > 0;
		bool keep = res      ? want_res
		            : !muted ? want_active
		                     : ((sil && want_sil) || (inh && want_inh));
		if (keep)
			json_array_append_new(out, o);
		else
			json_decref(o);
	}
	pthread_mutex_unlock(&N.mu);
	nfy_matchers_free(&f);
	send_raw(resp, 200, out);
}

static void h_get_groups(struct http_req *req, struct http_resp *resp, void *arg) {
	json_t *out = json_array();
	int64_t now = ward_now_ms();
	pthread_mutex_lock(&N.mu);
	for (size_t i = 0; i < N.e.ngroups; i++) {
		struct nfy_group *g = N.e.groups[i];
		json_t *labels = json_object();
		for (size_t k = 0; k < g->group_labels.n; k++)
			json_object_set_new(labels, g->group_labels.v[k].name,
			                    json_string(g->group_labels.v[k].value));
		json_t *alerts = json_array();
		for (size_t k = 0; k < g->nfps; k++) {
			struct nfy_alert *a = nfy_engine_find(&N.e, g->fps[k]);
			bool muted;
			if (a && !nfy_alert_resolved(a, now))
				json_array_append_new(alerts, gettable_alert(a, now, &muted));
		}
		json_array_append_new(out, json_pack("{s:o,s:{s:s},s:o,s:s}", "labels", labels,
		                                     "receiver", "name", g->receiver, "alerts",
		                                     alerts, "groupKey", g->key));
	}
	pthread_mutex_unlock(&N.mu);
	send_raw(resp, 200, out);
}

/* ---- silences ---- */

static void h_post_silence(struct http_req *req, struct http_resp *resp, void *arg) {
	const struct api_arg *aa = arg;
	struct ward_ctx *ctx = aa->ctx;
	json_t *j = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	struct ward_err err;
	ward_err_clear(&err);
	int64_t now = ward_now_ms();
	if (json_is_object(j) && !json_object_get(j, "createdBy"))
		json_object_set_new(j, "createdBy", json_string(req->actor.name));
	struct nfy_silence *s = nfy_silence_from_json(j, now, &err);
	if (!s) {
		json_decref(j);
		http_resp_error(resp, 400, "bad_data", "%s", err.msg);
		return;
	}
	pthread_mutex_lock(&N.mu);
	bool replaced = false;
	const char *given = json_string_value(json_object_get(j, "id"));
	if (given && *given) {
		struct nfy_silence *old = nfy_engine_find_silence(&N.e, given);
		if (!old) {
			pthread_mutex_unlock(&N.mu);
			nfy_silence_free(s);
			json_decref(j);
			http_resp_error(resp, 404, "not_found", "no silence with id %s", given);
			return;
		}
		replaced = true;
	}
	pthread_mutex_unlock(&N.mu);
	json_t *sj = nfy_silence_json(s, now);
	char *ds = json_dumps(sj, JSON_COMPACT);
	json_decref(sj);
	if (ward_audit_req(ctx, req, replaced ? "silence.update" : "silence.create", s->id, "ok",
	                   ds) != 0) {
		free(ds);
		nfy_silence_free(s);
		json_decref(j);
		http_resp_error(
		        resp, 500, "internal",
		        "the silence could not be audited, so it was not made; see the log");
		return;
	}
	free(ds);
	char id[37];
	memcpy(id, s->id, sizeof(id));
	nfy_store_silence(s);
	pthread_mutex_lock(&N.mu);
	nfy_engine_add_silence(&N.e, s);
	pthread_mutex_unlock(&N.mu);
	json_decref(j);
	nfy_kick();
	send_out(resp, aa, 200, json_pack("{s:s}", "silenceID", id));
}

static void h_get_silences(struct http_req *req, struct http_resp *resp, void *arg) {
	struct nfy_matchers f = {0};
	struct ward_err err;
	ward_err_clear(&err);
	if (filters_of(req, &f, &err) != 0) {
		nfy_matchers_free(&f);
		http_resp_error(resp, 400, "bad_data", "filter: %s", err.msg);
		return;
	}
	json_t *out = json_array();
	int64_t now = ward_now_ms();
	pthread_mutex_lock(&N.mu);
	for (size_t i = 0; i < N.e.nsilences; i++) {
		struct nfy_silence *s = N.e.silences[i];
		bool keep = true;
		/* a filter keeps silences with a matcher of the same name and value */
		for (size_t k = 0; k < f.n && keep; k++) {
			keep = false;
			for (size_t m = 0; m < s->m.n; m++)
				if (ward_streq(s->m.v[m].name, f.v[k].name) &&
				    matcher_matches(&f.v[k], s->m.v[m].value))
					keep = true;
		}
		if (keep)
			json_array_append_new(out, nfy_silence_json(s, now));
	}
	pthread_mutex_unlock(&N.mu);
	nfy_matchers_free(&f);
	send_out(resp, arg, 200, out);
}

static void h_silence_id(struct http_req *req, struct http_resp *resp, void *arg) {
	const struct api_arg *aa = arg;
	struct ward_ctx *ctx = aa->ctx;
	const char *id = req->path_tail ? req->path_tail : "";
	int64_t now = ward_now_ms();
	pthread_mutex_lock(&N.mu);
	struct nfy_silence *s = nfy_engine_find_silence(&N.e, id);
	if (!s) {
		pthread_mutex_unlock(&N.mu);
		http_resp_error(resp, 404, "not_found",
		                "no silence with id \"%s\"; list them with GET /api/v2/silences",
		                id);
		return;
	}
	if (strcmp(req->method, "GET") == 0) {
		json_t *o = nfy_silence_json(s, now);
		pthread_mutex_unlock(&N.mu);
		send_out(resp, aa, 200, o);
		return;
	}
	if (strcmp(req->method, "DELETE") != 0) {
		pthread_mutex_unlock(&N.mu);
		http_resp_error(resp, 405, "method_not_allowed", "use GET or DELETE");
		return;
	}
	if (req->actor.role < ROLE_OPERATOR) {
		pthread_mutex_unlock(&N.mu);
		http_resp_error(resp, 403, "forbidden",
		                "expiring a silence needs an operator token");
		return;
	}
	if (strcmp(nfy_silence_state(s, now), "expired") == 0) {
		pthread_mutex_unlock(&N.mu);
		http_resp_error(resp, 400, "bad_data", "silence %s has already expired", id);
		return;
	}
	if (ward_audit_req(ctx, req, "silence.expire", id, "ok", NULL) != 0) {
		pthread_mutex_unlock(&N.mu);
		http_resp_error(resp, 500, "internal", "the expiry could not be audited; not done");
		return;
	}
	if (s->starts_ms > now)
		s->starts_ms = now;
	s->ends_ms = now;
	s->updated_ms = now;
	nfy_store_silence(s);
	json_t *o = nfy_silence_json(s, now);
	pthread_mutex_unlock(&N.mu);
	nfy_kick();
	if (aa->envelope) {
		send_data(resp, 200, o);
	} else {
		json_decref(o);
		resp->status = 200;
	}
}

/* ---- notifications, escalations, on-call ---- */

static int log_row(void *arg, const struct store_val *c, size_t n) {
	char t[32];
	ward_fmt_rfc3339(c[0].i, t);
	json_array_append_new(arg,
	                      json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:I,s:s?,s:s?,s:f}", "time", t,
	                                "receiver", c[1].s, "integration", c[2].s, "target", c[3].s,
	                                "group_key", c[4].s, "attempt", (json_int_t)c[5].i,
	                                "result", c[6].s, "error", c[7].s, "seconds", c[8].d));
	return 0;
}

static int queue_row(void *arg, const struct store_val *c, size_t n) {
	char t1[32], t2[32], t3[32];
	ward_fmt_rfc3339(c[5].i, t1);
	ward_fmt_rfc3339(c[6].i, t2);
	ward_fmt_rfc3339(c[7].i, t3);
	json_array_append_new(arg,
	                      json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:I,s:s,s:s,s:s,s:s?}", "id",
	                                (json_int_t)c[0].i, "receiver", c[1].s, "integration",
	                                c[2].s, "target", c[3].s, "group_key", c[4].s, "attempts",
	                                (json_int_t)c[8].i, "created", t1, "next_attempt", t2,
	                                "expires", t3, "last_error", c[9].s));
	return 0;
}

static void h_notifications(struct http_req *req, struct http_resp *resp, void *arg) {
	struct ward_ctx *ctx = arg;
	const char *ls = http_param(req, "limit");
	int64_t limit = ls ? strtoll(ls, NULL, 10) : 100;
	if (limit <= 0 || limit > 10000)
		limit = 100;
	const char *result = http_param(req, "result");
	json_t *log = json_array(), *queue = json_array();
	struct ward_err err;
	ward_err_clear(&err);
	struct store_val p[] = {SV_TEXT(result), SV_TEXT(result), SV_INT(limit)};
	if (store_query(ctx->store,
	                "SELECT ts_ms, receiver, integration, target, group_key, attempt, result, "
	                "error, seconds FROM notify_log WHERE (? IS NULL OR result = ?) "
	                "ORDER BY id DESC LIMIT ?",
	                p, 3, log_row, log, &err) < 0 ||
	    store_query(ctx->store,
	                "SELECT id, receiver, integration, target, group_key, created_ms, next_ms, "
	                "expires_ms, attempts, last_error FROM notify_queue ORDER BY id",
	                NULL, 0, queue_row, queue, &err) < 0) {
		json_decref(log);
		json_decref(queue);
		http_resp_error(resp, 500, "internal", "reading the notification log: %s", err.msg);
		return;
	}
	send_data(resp, 200, json_pack("{s:o,s:o}", "queued", queue, "log", log));
}

static void h_escalations(struct http_req *req, struct http_resp *resp, void *arg) {
	json_t *out = json_array();
	pthread_mutex_lock(&N.mu);
	for (size_t i = 0; i < N.e.nescs; i++)
		json_array_append_new(out, nfy_esc_json(N.e.escs[i]));
	pthread_mutex_unlock(&N.mu);
	send_data(resp, 200, out);
}

static void do_ack(struct ward_ctx *ctx, struct http_req *req, struct http_resp *resp,
                   const char *fp, const char *actor) {
	struct ward_err err;
	ward_err_clear(&err);
	char fpb[17];
	snprintf(fpb, sizeof(fpb), "%s", fp);
	pthread_mutex_lock(&N.mu);
	struct nfy_esc *x = nfy_engine_find_esc(&N.e, fpb);
	bool can = x && !x->acked_ms && !x->resolved_ms;
	pthread_mutex_unlock(&N.mu);
	if (!can) {
		http_resp_error(resp, 404, "not_found",
		                "no escalation to acknowledge for alert %s (unknown, already "
		                "acknowledged or resolved); see GET /api/v1/escalations",
		                fpb);
		return;
	}
	struct buf d = BUF_INIT;
	buf_puts(&d, "{\"by\":");
	buf_json_str(&d, actor, strlen(actor));
	buf_putc(&d, '}');
	if (ward_audit_req(ctx, req, "alert.ack", fpb, "ok", buf_cstr(&d)) != 0) {
		buf_free(&d);
		http_resp_error(resp, 500, "internal", "the ack could not be audited; not done");
		return;
	}
	buf_free(&d);
	int rc = notify_ack(fpb, actor, &err);
	if (rc < 0) {
		http_resp_error(resp, 500, "internal", "%s", err.msg);
		return;
	}
	pthread_mutex_lock(&N.mu);
	x = nfy_engine_find_esc(&N.e, fpb);
	json_t *o = x ? nfy_esc_json(x) : json_object();
	pthread_mutex_unlock(&N.mu);
	send_data(resp, 200, o);
}

/* POST /api/v1/escalations/ack {"matchers": ["alertname=Down"]}: acknowledges every
 * escalating alert the matchers select (a group at once). */
static void ack_group(struct ward_ctx *ctx, struct http_req *req, struct http_resp *resp) {
	json_t *j = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	json_t *ms = json_object_get(j, "matchers");
	struct nfy_matchers m = {0};
	struct ward_err err;
	ward_err_clear(&err);
	size_t i;
	json_t *v;
	bool bad = !json_is_array(ms) || json_array_size(ms) == 0;
	json_array_foreach(ms, i, v) {
		const char *s = json_string_value(v);
		if (!s || nfy_matchers_parse(s, strlen(s), &m, &err) != 0)
			bad = true;
	}
	json_decref(j);
	if (bad) {
		nfy_matchers_free(&m);
		http_resp_error(resp, 400, "bad_data",
		                "send {\"matchers\": [\"alertname=Down\", ...]} to acknowledge a "
		                "group%s%s",
		                err.msg[0] ? ": " : "", err.msg);
		return;
	}
	char actor[200];
	actor_of(req, actor, sizeof(actor));
	json_t *done = json_array();
	pthread_mutex_lock(&N.mu);
	for (i = 0; i < N.e.nescs; i++) {
		struct nfy_esc *x = N.e.escs[i];
		struct nfy_alert *a = nfy_engine_find(&N.e, x->fp);
		if (!x->acked_ms && !x->resolved_ms && a && nfy_matchers_match(&m, &a->labels))
			json_array_append_new(done, json_string(x->fp));
	}
	pthread_mutex_unlock(&N.mu);
	nfy_matchers_free(&m);
	json_t *det = json_pack("{s:O,s:s}", "fingerprints", done, "by", actor);
	char *ds = json_dumps(det, JSON_COMPACT);
	json_decref(det);
	if (ward_audit_req(ctx, req, "alert.ack", "group", "ok", ds) != 0) {
		free(ds);
		json_decref(done);
		http_resp_error(resp, 500, "internal", "the ack could not be audited; not done");
		return;
	}
	free(ds);
	json_array_foreach(done, i, v)(void) notify_ack(json_string_value(v), actor, &err);
	send_data(resp, 200, json_pack("{s:o}", "acknowledged", done));
}

/* POST /api/v1/alerts/<fp>/ack and /api/v1/escalations/<fp>/ack */
static void h_ack(struct http_req *req, struct http_resp *resp, void *arg) {
	const char *t = req->path_tail ? req->path_tail : "";
	size_t n = strlen(t);
	if (strcmp(t, "ack") == 0) {
		ack_group(arg, req, resp);
		return;
	}
	if (n != 16 + 4 || strcmp(t + 16, "/ack") != 0) {
		http_resp_error(resp, 404, "not_found",
		                "use POST .../<fingerprint>/ack (16 hex fingerprint)");
		return;
	}
	char fp[17];
	memcpy(fp, t, 16);
	fp[16] = '\0';
	char actor[200];
	actor_of(req, actor, sizeof(actor));
	do_ack(arg, req, resp, fp, actor);
}

static void h_ack_link(struct http_req *req, struct http_resp *resp, void *arg) {
	const char *tok = req->path_tail ? req->path_tail : "";
	char fp[17];
	pthread_mutex_lock(&N.mu);
	int ok = N.e.have_key ? nfy_ack_verify(N.e.ack_key, tok, ward_now_ms(), fp) : -1;
	pthread_mutex_unlock(&N.mu);
	if (ok != 0) {
		http_resp_error(resp, 403, "forbidden",
		                "this acknowledgement link is invalid or has expired; acknowledge "
		                "with `ward escalation ack` instead");
		return;
	}
	do_ack(arg, req, resp, fp, "ack link");
}

static void h_oncall(struct http_req *req, struct http_resp *resp, void *arg) {
	json_t *out = json_array();
	int64_t now = ward_now_ms();
	const char *at = http_param(req, "time");
	if (at)
		ward_parse_time(at, strlen(at), &now);
	pthread_mutex_lock(&N.mu);
	for (size_t i = 0; N.e.cfg && i < N.e.cfg->nschedules; i++) {
		const struct nfy_schedule *s = &N.e.cfg->schedules[i];
		int who = nfy_oncall_at(s, now);
		json_t *p = json_null();
		if (who >= 0) {
			const struct nc_participant *pp = &s->c->participants[who];
			p = json_pack("{s:s,s:s?,s:s?}", "name", pp->name, "email", pp->email,
			              "webhook", pp->webhook);
		}
		json_array_append_new(
		        out, json_pack("{s:s,s:s,s:s,s:s,s:o}", "schedule", s->c->name, "rotation",
		                       s->weekly ? "weekly" : "daily", "handoff", s->c->handoff,
		                       "time_zone", s->c->time_zone, "on_call", p));
	}
	pthread_mutex_unlock(&N.mu);
	send_data(resp, 200, out);
}

void nfy_api_register(struct ward_ctx *ctx) {
	http_route("POST", "/api/v2/alerts", ROLE_OPERATOR, h_post_alerts, ctx);
	http_route("GET", "/api/v2/alerts", ROLE_VIEWER, h_get_alerts, ctx);
	http_route("GET", "/api/v2/alerts/groups", ROLE_VIEWER, h_get_groups, ctx);
	arg_raw.ctx = arg_env.ctx = ctx;
	arg_env.envelope = true;
	http_route("POST", "/api/v2/silences", ROLE_OPERATOR, h_post_silence, &arg_raw);
	http_route("GET", "/api/v2/silences", ROLE_VIEWER, h_get_silences, &arg_raw);
	http_route(NULL, "/api/v2/silence/*", ROLE_VIEWER, h_silence_id, &arg_raw);
	http_route("POST", "/api/v1/silences", ROLE_OPERATOR, h_post_silence, &arg_env);
	http_route("GET", "/api/v1/silences", ROLE_VIEWER, h_get_silences, &arg_env);
	http_route(NULL, "/api/v1/silences/*", ROLE_VIEWER, h_silence_id, &arg_env);
	http_route("GET", "/api/v1/notifications", ROLE_VIEWER, h_notifications, ctx);
	http_route("GET", "/api/v1/escalations", ROLE_VIEWER, h_escalations, ctx);
	http_route("POST", "/api/v1/escalations/*", ROLE_OPERATOR, h_ack, ctx);
	http_route("POST", "/api/v1/alerts/*", ROLE_OPERATOR, h_ack, ctx);
	http_route("GET", "/api/v1/oncall", ROLE_VIEWER, h_oncall, ctx);
	http_route("GET", "/ack/*", ROLE_PUBLIC, h_ack_link, ctx);
}
