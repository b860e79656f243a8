/* payload.c: what receivers get: Alertmanager's webhook payload (version 4, so anything
 * that takes Alertmanager webhooks takes ward's), a Slack-compatible incoming-webhook
 * message, a plain-text email, and Alertmanager's own POST /api/v2/alerts body; plus the
 * retry backoff. Pure functions of a struct nfy_out; called when jobs are built.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"

static json_t *labels_obj(const struct labels *ls) {
	json_t *o = json_object();
	for (size_t i = 0; i < ls->n; i++)
		json_object_set_new(o, ls->v[i].name, json_string(ls->v[i].value));
	return o;
}

/* The key/value pairs every alert of the array has with the same value. */
static json_t *common_of(json_t *alerts, const char *field) {
	json_t *common = NULL;
	size_t i;
	json_t *a;
	json_array_foreach(alerts, i, a) {
		json_t *o = json_object_get(a, field);
		if (!common) {
			common = json_deep_copy(o ? o : json_object());
			continue;
		}
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(common, tmp, k, v) {
			json_t *w = json_object_get(o, k);
			if (!w || !json_equal(v, w))
				json_object_del(common, k);
		}
	}
	return common ? common : json_object();
}

json_t *nfy_payload_webhook(const struct nfy_out *o, const char *receiver, const char *external_url,
                            int64_t max_alerts) {
	json_t *alerts = json_array();
	size_t n = json_array_size(o->alerts), truncated = 0;
	for (size_t i = 0; i < n; i++) {
		if (max_alerts > 0 && i >= (size_t)max_alerts) {
			truncated++;
			continue;
		}
		json_array_append(alerts, json_array_get(o->alerts, i));
	}
	json_t *p = json_pack("{s:s,s:s,s:i,s:s,s:s,s:o,s:o,s:o,s:s,s:o}", "version", "4",
	                      "groupKey", o->group_key, "truncatedAlerts", (json_int_t)truncated,
	                      "status", o->firing ? "firing" : "resolved", "receiver", receiver,
	                      "groupLabels", labels_obj(&o->group_labels), "commonLabels",
	                      common_of(o->alerts, "labels"), "commonAnnotations",
	                      common_of(o->alerts, "annotations"), "externalURL",
	                      external_url ? external_url : "", "alerts", alerts);
	return p;
}

static size_t count_status(json_t *alerts, const char *st) {
	size_t n = 0, i;
	json_t *a;
	json_array_foreach(alerts, i,
	                   a) if (ward_streq(json_string_value(json_object_get(a, "status")), st))
	        n++;
	return n;
}

/* "[FIRING:2] HighLatency job=api" as Alertmanager's default titles read. */
static void title(const struct nfy_out *o, struct buf *out) {
	size_t nf = count_status(o->alerts, "firing");
	if (o->firing)
		buf_printf(out, "[FIRING:%zu]", nf);
	else
		buf_puts(out, "[RESOLVED]");
	if (o->esc_level)
		buf_printf(out, " [escalation level %d]", o->esc_level);
	for (size_t i = 0; i < o->group_labels.n; i++)
		buf_printf(out, " %s%s%s",
		           ward_streq(o->group_labels.v[i].name, "alertname")
		                   ? ""
		                   : o->group_labels.v[i].name,
		           ward_streq(o->group_labels.v[i].name, "alertname") ? "" : "=",
		           o->group_labels.v[i].value);
	if (o->group_labels.n == 0) {
		const char *an = json_string_value(json_object_get(
		        json_object_get(json_array_get(o->alerts, 0), "labels"), "alertname"));
		if (an)
			buf_printf(out, " %s", an);
	}
}

static void alert_lines(json_t *a, struct buf *out, const char *indent) {
	const char *k;
	json_t *v;
	buf_printf(out, "%sstatus: %s  since %s\n", indent,
	           json_string_value(json_object_get(a, "status")),
	           json_string_value(json_object_get(a, "startsAt")));
	buf_printf(out, "%slabels:\n", indent);
	json_object_foreach(json_object_get(a, "labels"), k, v)
	        buf_printf(out, "%s  %s = %s\n", indent, k, json_string_value(v));
	json_t *ann = json_object_get(a, "annotations");
	if (json_object_size(ann)) {
		buf_printf(out, "%sannotations:\n", indent);
		json_object_foreach(ann, k, v)
		        buf_printf(out, "%s  %s = %s\n", indent, k, json_string_value(v));
	}
	const char *gen = json_string_value(json_object_get(a, "generatorURL"));
	if (gen && *gen)
		buf_printf(out, "%ssource: %s\n", indent, gen);
	const char *ack = json_string_value(json_object_get(a, "ackURL"));
	if (ack)
		buf_printf(out, "%sacknowledge: %s\n", indent, ack);
}

json_t *nfy_payload_slack(const struct nfy_out *o, const struct nc_slack *s,
                          const char *external_url) {
	struct buf t = BUF_INIT, body = BUF_INIT;
	title(o, &t);
	size_t i;
	json_t *a;
	json_array_foreach(o->alerts, i, a) {
		const char *sum = json_string_value(
		        json_object_get(json_object_get(a, "annotations"), "summary"));
		const char *an = json_string_value(
		        json_object_get(json_object_get(a, "labels"), "alertname"));
		buf_printf(&body, "• %s%s%s", an ? an : "alert", sum ? ": " : "", sum ? sum : "");
		const char *ack = json_string_value(json_object_get(a, "ackURL"));
		if (ack)
			buf_printf(&body, " (<%s|acknowledge>)", ack);
		buf_putc(&body, '\n');
	}
	json_t *att =
	        json_pack("{s:s,s:s,s:s,s:s}", "color", o->firing ? "danger" : "good", "title",
	                  buf_cstr(&t), "text", buf_cstr(&body), "fallback", buf_cstr(&t));
	if (external_url && *external_url)
		json_object_set_new(att, "title_link", json_string(external_url));
	json_t *p = json_pack("{s:s,s:[o]}", "text", buf_cstr(&t), "attachments", att);
	if (s && s->channel)
		json_object_set_new(p, "channel", json_string(s->channel));
	if (s && s->username)
		json_object_set_new(p, "username", json_string(s->username));
	buf_free(&t);
	buf_free(&body);
	return p;
}

void nfy_payload_email(const struct nfy_out *o, struct buf *subject, struct buf *body) {
	title(o, subject);
	buf_printf(body, "%s\n\n", buf_cstr(subject));
	size_t i;
	json_t *a;
	json_array_foreach(o->alerts, i, a) {
		buf_printf(body, "Alert %zu of %zu (%s)\n", i + 1, json_array_size(o->alerts),
		           json_string_value(json_object_get(a, "fingerprint")));
		alert_lines(a, body, "  ");
		buf_putc(body, '\n');
	}
	buf_printf(body, "-- \nward, group %s\n", o->group_key);
}

json_t *nfy_payload_am(const struct nfy_out *o) {
	json_t *out = json_array();
	size_t i;
	json_t *a;
	json_array_foreach(o->alerts, i, a) {
		json_t *x = json_pack("{s:O,s:O,s:O}", "labels", json_object_get(a, "labels"),
		                      "annotations", json_object_get(a, "annotations"), "startsAt",
		                      json_object_get(a, "startsAt"));
		/* Alertmanager validates generatorURL as a URI: leave an empty one out */
		const char *gen = json_string_value(json_object_get(a, "generatorURL"));
		if (gen && *gen)
			json_object_set_new(x, "generatorURL", json_string(gen));
		if (ward_streq(json_string_value(json_object_get(a, "status")), "resolved"))
			json_object_set(x, "endsAt", json_object_get(a, "endsAt"));
		json_array_append_new(out, x);
	}
	return out;
}

int64_t nfy_backoff_ms(int attempts, int64_t initial_ms, int64_t max_ms, double jitter01) {
	if (attempts < 1)
		attempts = 1;
	double d = (double)initial_ms;
	for (int i = 1; i < attempts && d < (double)max_ms; i++)
		d *= 2;
	if (d > (double)max_ms)
		d = (double)max_ms;
	d += d * 0.1 * jitter01;
	return (int64_t)d;
}
