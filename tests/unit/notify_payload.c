/* notify_payload.c: unit tests for what receivers get: the Alertmanager webhook payload
 * version 4 (every field, common labels, truncation), the Slack message, the email text,
 * the Alertmanager forward body, and the POST /api/v2/alerts decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify/notify_module.h"

static struct nfy_out mk(void) {
	struct nfy_out o = {0};
	o.receiver = "team";
	o.group_key = "{}:{alertname=\"Down\"}";
	labels_init(&o.group_labels);
	labels_set(&o.group_labels, "alertname", "Down");
	o.alerts = json_loads(
	        "[{\"status\":\"firing\",\"labels\":{\"alertname\":\"Down\",\"job\":\"api\","
	        "\"instance\":\"a\"},\"annotations\":{\"summary\":\"api down\"},\"startsAt\":"
	        "\"2026-01-01T00:00:00.000Z\",\"endsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":"
	        "\"http://x/graph\",\"fingerprint\":\"0123456789abcdef\"},"
	        "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"Down\",\"job\":\"api\","
	        "\"instance\":\"b\"},\"annotations\":{\"summary\":\"api down\"},\"startsAt\":"
	        "\"2026-01-01T00:00:00.000Z\",\"endsAt\":\"2026-01-01T00:05:00.000Z\","
	        "\"generatorURL\":\"\",\"fingerprint\":\"fedcba9876543210\"}]",
	        0, NULL);
	o.firing = true;
	return o;
}

static void webhook_payload_is_alertmanager_version_4(void **state) {
	struct nfy_out o = mk();
	json_t *p = nfy_payload_webhook(&o, "team", "http://ward:9797", 0);
	assert_string_equal(json_string_value(json_object_get(p, "version")), "4");
	assert_string_equal(json_string_value(json_object_get(p, "status")), "firing");
	assert_string_equal(json_string_value(json_object_get(p, "receiver")), "team");
	assert_string_equal(json_string_value(json_object_get(p, "groupKey")), o.group_key);
	assert_string_equal(json_string_value(json_object_get(p, "externalURL")),
	                    "http://ward:9797");
	assert_int_equal(json_integer_value(json_object_get(p, "truncatedAlerts")), 0);
	json_t *cl = json_object_get(p, "commonLabels");
	assert_int_equal(json_object_size(cl), 2); /* alertname, job; not instance */
	assert_null(json_object_get(cl, "instance"));
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(p, "commonAnnotations"), "summary")),
	                    "api down");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(p, "groupLabels"), "alertname")),
	        "Down");
	json_t *a = json_array_get(json_object_get(p, "alerts"), 0);
	const char *fields[] = {"status", "labels",       "annotations", "startsAt",
	                        "endsAt", "generatorURL", "fingerprint"};
	for (size_t i = 0; i < 7; i++)
		assert_non_null(json_object_get(a, fields[i]));
	json_decref(p);
	p = nfy_payload_webhook(&o, "team", "", 1);
	assert_int_equal(json_array_size(json_object_get(p, "alerts")), 1);
	assert_int_equal(json_integer_value(json_object_get(p, "truncatedAlerts")), 1);
	json_decref(p);
	json_decref(o.alerts);
	labels_free(&o.group_labels);
}

static void slack_email_and_forward_bodies(void **state) {
	struct nfy_out o = mk();
	struct nc_slack s = {.channel = "#ops", .username = "ward"};
	json_t *p = nfy_payload_slack(&o, &s, "http://ward");
	assert_non_null(strstr(json_string_value(json_object_get(p, "text")), "[FIRING:1]"));
	assert_string_equal(json_string_value(json_object_get(p, "channel")), "#ops");
	json_t *att = json_array_get(json_object_get(p, "attachments"), 0);
	assert_string_equal(json_string_value(json_object_get(att, "color")), "danger");
	json_decref(p);
	struct buf subj = BUF_INIT, body = BUF_INIT;
	nfy_payload_email(&o, &subj, &body);
	assert_string_equal(buf_cstr(&subj), "[FIRING:1] Down");
	assert_non_null(strstr(buf_cstr(&body), "instance = a"));
	assert_non_null(strstr(buf_cstr(&body), "summary = api down"));
	buf_free(&subj);
	buf_free(&body);
	p = nfy_payload_am(&o);
	assert_int_equal(json_array_size(p), 2);
	assert_null(json_object_get(json_array_get(p, 0), "endsAt"));
	assert_non_null(json_object_get(json_array_get(p, 1), "endsAt"));
	json_decref(p);
	json_decref(o.alerts);
	labels_free(&o.group_labels);
}

static void alerts_decoder_takes_prometheus_posts_and_refuses_bad_ones(void **state) {
	const char *ok =
	        "[{\"labels\":{\"alertname\":\"X\",\"job\":\"a\"},\"annotations\":{},"
	        "\"startsAt\":\"2026-01-01T00:00:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
	        "\"generatorURL\":\"http://p/g\"},{\"labels\":{\"alertname\":\"Y\"}}]";
	struct notify_alert *v;
	size_t n;
	struct ward_err err;
	assert_int_equal(nfy_decode_alerts(ok, strlen(ok), 0, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(labels_get(&v[0].labels, "job"), "a");
	assert_int_equal(v[0].ends_at_ms, 0);
	assert_true(v[0].starts_at_ms > 0);
	assert_string_equal(v[0].generator_url, "http://p/g");
	nfy_alerts_free(v, n);
	const char *bad[] = {"{}",
	                     "[1]",
	                     "[{\"labels\":{}}]",
	                     "[{\"labels\":{\"a\":1}}]",
	                     "[{\"labels\":{\"a\":\"b\"},\"startsAt\":\"yesterday\"}]",
	                     "[",
	                     ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ward_err_clear(&err);
		assert_int_equal(nfy_decode_alerts(bad[i], strlen(bad[i]), 0, &v, &n, &err), -1);
		assert_true(ward_err_isset(&err));
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(webhook_payload_is_alertmanager_version_4),
	        cmocka_unit_test(slack_email_and_forward_bodies),
	        cmocka_unit_test(alerts_decoder_takes_prometheus_posts_and_refuses_bad_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
