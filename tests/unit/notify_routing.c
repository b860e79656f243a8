/* notify_routing.c: unit tests for notify's Alertmanager semantics: matcher parsing, the
 * route tree (deepest match, continue, inheritance, group_by '...'), grouping timers
 * (group_wait, group_interval, repeat_interval, resolved notices), inhibition, silences and
 * escalation steps, all on a fake clock through the engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify/notify_internal.h"

struct fixture {
	struct nc_conf c;
	struct nfy_engine e;
};

static struct fixture *load(const char *yaml) {
	struct fixture *f = calloc(1, sizeof(*f));
	struct ward_err err;
	ward_err_clear(&err);
	int rc = conf_decode_buffer("test.yaml", yaml, strlen(yaml), &nfy_conf_schema, &f->c, &err);
	if (rc != 0)
		print_error("decode: %s\n", err.msg);
	assert_int_equal(rc, 0);
	struct nfy_cfg *cfg = nfy_cfg_compile(&f->c, &err);
	if (!cfg)
		print_error("compile: %s\n", err.msg);
	assert_non_null(cfg);
	nfy_engine_init(&f->e);
	nfy_engine_set_cfg(&f->e, cfg);
	return f;
}

static void unload(struct fixture *f) {
	nfy_engine_free(&f->e);
	conf_free_obj(&nfy_conf_schema, &f->c);
	free(f);
}

static void post(struct fixture *f, int64_t now, int64_t ends, const char *kv, ...) {
	struct notify_alert a = {0};
	labels_init(&a.labels);
	labels_init(&a.annotations);
	va_list ap;
	va_start(ap, kv);
	for (const char *k = kv; k; k = va_arg(ap, const char *))
		labels_set(&a.labels, k, va_arg(ap, const char *));
	va_end(ap);
	a.ends_at_ms = ends;
	nfy_engine_post(&f->e, &a, 1, now);
	labels_free(&a.labels);
	labels_free(&a.annotations);
}

static void matchers_parse_alertmanager_syntax(void **state) {
	struct nfy_matchers m = {0};
	struct ward_err err;
	const char *s = "{severity=\"critical\", job=~api.*, env!=\"dev\",team!~\"a|b\"}";
	assert_int_equal(nfy_matchers_parse(s, strlen(s), &m, &err), 0);
	assert_int_equal(m.n, 4);
	assert_int_equal(m.v[0].op, MATCH_EQ);
	assert_string_equal(m.v[1].value, "api.*");
	assert_int_equal(m.v[1].op, MATCH_RE);
	assert_int_equal(m.v[2].op, MATCH_NEQ);
	assert_int_equal(m.v[3].op, MATCH_NRE);
	struct labels ls;
	labels_init(&ls);
	labels_set(&ls, "severity", "critical");
	labels_set(&ls, "job", "api-gw");
	assert_true(nfy_matchers_match(&m, &ls));
	labels_set(&ls, "job", "xapi"); /* anchored */
	assert_false(nfy_matchers_match(&m, &ls));
	labels_free(&ls);
	nfy_matchers_free(&m);
	struct matcher one;
	assert_int_equal(nfy_matcher_parse("a=\"x\\\"y\"", 8, &one, &err), 0);
	assert_string_equal(one.value, "x\"y");
	matcher_free(&one);
	assert_int_equal(nfy_matcher_parse("=x", 2, &one, &err), -1);
	assert_int_equal(nfy_matcher_parse("a>x", 3, &one, &err), -1);
	assert_int_equal(nfy_matcher_parse("a=\"x", 4, &one, &err), -1);
	assert_int_equal(nfy_matcher_parse("a=~\"(\"", 6, &one, &err), -1);
}

static const char tree[] =
        "receivers: [{name: default}, {name: db}, {name: pager}, {name: audit}]\n"
        "route:\n"
        "  receiver: default\n"
        "  group_by: [alertname]\n"
        "  group_wait: 10s\n"
        "  group_interval: 1m\n"
        "  repeat_interval: 1h\n"
        "  routes:\n"
        "    - matchers: ['team=audit']\n"
        "      receiver: audit\n"
        "      continue: true\n"
        "    - matchers: ['service=~\"db|cache\"']\n"
        "      receiver: db\n"
        "      group_by: ['...']\n"
        "      routes:\n"
        "        - matchers: ['severity=critical']\n"
        "          receiver: pager\n"
        "          group_wait: 1s\n"
        "    - matchers: ['service=db']\n"
        "      receiver: never\n";

static void route_tree_matches_like_alertmanager(void **state) {
	/* 'never' is undefined: compile must refuse it */
	struct nc_conf c = {0};
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(conf_decode_buffer("t", tree, strlen(tree), &nfy_conf_schema, &c, &err),
	                 -1);
	assert_non_null(strstr(err.msg, "\"never\" is not defined"));
	conf_free_obj(&nfy_conf_schema, &c);

	char fixed[sizeof(tree) + 8];
	snprintf(fixed, sizeof(fixed), "%s", tree);
	char *p = strstr(fixed, "receiver: never");
	memcpy(p, "receiver: audit", 15);
	struct fixture *f = load(fixed);
	const struct nfy_route *rs[8];
	struct labels ls;
	labels_init(&ls);
	labels_set(&ls, "alertname", "X");
	assert_int_equal(nfy_route_match(&f->e.cfg->root, &ls, rs, 8), 1);
	assert_string_equal(rs[0]->receiver, "default");
	labels_set(&ls, "service", "db");
	labels_set(&ls, "severity", "critical");
	assert_int_equal(nfy_route_match(&f->e.cfg->root, &ls, rs, 8), 1);
	assert_string_equal(rs[0]->receiver, "pager"); /* deepest; no continue: stops there */
	assert_true(rs[0]->group_all);                 /* inherited '...' */
	assert_int_equal(rs[0]->group_wait_ms, 1000);
	assert_int_equal(rs[0]->group_interval_ms, 60000); /* inherited from the root */
	labels_set(&ls, "team", "audit");
	assert_int_equal(nfy_route_match(&f->e.cfg->root, &ls, rs, 8), 2); /* continue */
	assert_string_equal(rs[0]->receiver, "audit");
	assert_string_equal(rs[1]->receiver, "pager");
	labels_set(&ls, "severity", "warning");
	assert_int_equal(nfy_route_match(&f->e.cfg->root, &ls, rs, 8), 2);
	assert_string_equal(rs[1]->receiver, "db");
	labels_free(&ls);
	unload(f);
}

static void group_by_all_makes_one_group_per_label_set(void **state) {
	struct fixture *f = load("receivers: [{name: r}]\n"
	                         "route: {receiver: r, group_by: ['...'], group_wait: 0s}\n");
	post(f, 1000, 0, "alertname", "A", "i", "1", NULL);
	post(f, 1000, 0, "alertname", "A", "i", "2", NULL);
	assert_int_equal(f->e.ngroups, 2);
	nfy_engine_tick(&f->e, 1000);
	assert_int_equal(f->e.nouts, 2);
	unload(f);
}

static void grouping_waits_then_batches_then_repeats(void **state) {
	struct fixture *f = load("receivers: [{name: r}]\n"
	                         "route: {receiver: r, group_by: [alertname], group_wait: 30s,"
	                         " group_interval: 5m, repeat_interval: 1h}\n");
	int64_t t = 1000000, end = t + 36000000; /* explicit endsAt: firing for 10 h */
	post(f, t, end, "alertname", "A", "i", "1", NULL);
	nfy_engine_tick(&f->e, t + 29000);
	assert_int_equal(f->e.nouts, 0); /* group_wait not over */
	post(f, t + 20000, end, "alertname", "A", "i", "2", NULL);
	assert_int_equal(f->e.ngroups, 1);
	nfy_engine_tick(&f->e, t + 30000);
	assert_int_equal(f->e.nouts, 1);
	assert_int_equal(json_array_size(f->e.outs[0].alerts), 2);
	assert_true(f->e.outs[0].firing);
	nfy_outs_clear(&f->e);
	/* a new alert waits for group_interval, not group_wait */
	post(f, t + 40000, end, "alertname", "A", "i", "3", NULL);
	nfy_engine_tick(&f->e, t + 60000);
	assert_int_equal(f->e.nouts, 0);
	nfy_engine_tick(&f->e, t + 330000);
	assert_int_equal(f->e.nouts, 1);
	assert_int_equal(json_array_size(f->e.outs[0].alerts), 3);
	nfy_outs_clear(&f->e);
	/* unchanged: nothing at each group_interval until repeat_interval has passed */
	for (int64_t k = 2; k <= 13; k++) {
		nfy_engine_tick(&f->e, t + 30000 + k * 300000);
		if (k < 13)
			assert_int_equal(f->e.nouts, 0);
	}
	assert_int_equal(f->e.nouts, 1); /* 1 h after the last send */
	nfy_outs_clear(&f->e);
	unload(f);
}

static void resolved_alerts_get_one_resolved_notice(void **state) {
	struct fixture *f = load("receivers: [{name: r}]\n"
	                         "route: {receiver: r, group_wait: 0s, group_interval: 10s}\n");
	post(f, 1000, 0, "alertname", "A", NULL);
	nfy_engine_tick(&f->e, 1000);
	assert_int_equal(f->e.nouts, 1);
	nfy_outs_clear(&f->e);
	post(f, 5000, 5000, "alertname", "A", NULL); /* endsAt now: resolved */
	nfy_engine_tick(&f->e, 11000);
	assert_int_equal(f->e.nouts, 1);
	assert_false(f->e.outs[0].firing);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(f->e.outs[0].alerts, 0), "status")),
	                    "resolved");
	nfy_outs_clear(&f->e);
	nfy_engine_tick(&f->e, 21000);
	assert_int_equal(f->e.nouts, 0);
	assert_int_equal(f->e.ngroups, 0);
	unload(f);
}

static void inhibition_needs_equal_labels_and_a_firing_source(void **state) {
	struct fixture *f = load("receivers: [{name: r}]\n"
	                         "route: {receiver: r}\n"
	                         "inhibit_rules:\n"
	                         "  - source_matchers: [severity=critical]\n"
	                         "    target_matchers: [severity=warning]\n"
	                         "    equal: [cluster]\n");
	int64_t t = 1000;
	post(f, t, 0, "alertname", "Down", "severity", "critical", "cluster", "a", NULL);
	post(f, t, 0, "alertname", "Slow", "severity", "warning", "cluster", "a", NULL);
	post(f, t, 0, "alertname", "Slow", "severity", "warning", "cluster", "b", NULL);
	int muted = 0;
	for (size_t i = 0; i < f->e.nalerts; i++) {
		json_t *ib = json_array();
		if (nfy_engine_muted(&f->e, f->e.alerts[i], t, NULL, ib, NULL)) {
			muted++;
			assert_string_equal(labels_get(&f->e.alerts[i]->labels, "cluster"), "a");
			assert_int_equal(json_array_size(ib), 1);
		}
		json_decref(ib);
	}
	assert_int_equal(muted, 1);
	/* the source resolves: nothing is inhibited any more */
	post(f, t + 1, t + 1, "alertname", "Down", "severity", "critical", "cluster", "a", NULL);
	for (size_t i = 0; i < f->e.nalerts; i++)
		assert_false(nfy_engine_muted(&f->e, f->e.alerts[i], t + 2, NULL, NULL, NULL));
	unload(f);
}

static void silences_mute_only_while_active(void **state) {
	struct fixture *f = load("receivers: [{name: r}]\n"
	                         "route: {receiver: r, group_wait: 0s, group_interval: 1s}\n");
	int64_t now = ward_now_ms();
	char s1[32], s2[32], body[512];
	ward_fmt_rfc3339(now + 60000, s1);
	ward_fmt_rfc3339(now + 120000, s2);
	snprintf(body, sizeof(body),
	         "{\"matchers\":[{\"name\":\"job\",\"value\":\"api.*\",\"isRegex\":true}],"
	         "\"startsAt\":\"%s\",\"endsAt\":\"%s\",\"createdBy\":\"me\",\"comment\":\"x\"}",
	         s1, s2);
	json_t *j = json_loads(body, 0, NULL);
	struct ward_err err;
	struct nfy_silence *s = nfy_silence_from_json(j, now, &err);
	assert_non_null(s);
	json_decref(j);
	nfy_engine_add_silence(&f->e, s);
	post(f, now, 0, "alertname", "A", "job", "api-1", NULL);
	assert_false(nfy_engine_muted(&f->e, f->e.alerts[0], now, NULL, NULL, NULL));
	assert_string_equal(nfy_silence_state(s, now), "pending");
	assert_true(nfy_engine_muted(&f->e, f->e.alerts[0], now + 60000, NULL, NULL, NULL));
	assert_string_equal(nfy_silence_state(s, now + 60000), "active");
	assert_false(nfy_engine_muted(&f->e, f->e.alerts[0], now + 120000, NULL, NULL, NULL));
	assert_string_equal(nfy_silence_state(s, now + 120000), "expired");
	/* a muted firing alert is left out of the notification */
	post(f, now + 60000, 0, "alertname", "A", "job", "api-1", NULL);
	nfy_engine_tick(&f->e, now + 61000);
	assert_int_equal(f->e.nouts, 0);
	/* a silence matching everything is refused, as Alertmanager does */
	j = json_loads("{\"matchers\":[{\"name\":\"a\",\"value\":\".*\",\"isRegex\":true}],"
	               "\"endsAt\":\"2999-01-01T00:00:00Z\",\"createdBy\":\"me\"}",
	               0, NULL);
	assert_null(nfy_silence_from_json(j, now, &err));
	json_decref(j);
	unload(f);
}

static void escalation_steps_levels_until_acknowledged(void **state) {
	struct fixture *f = load("receivers: [{name: hook}, {name: mail}, {name: boss}]\n"
	                         "route: {receiver: hook}\n"
	                         "escalation_policies:\n"
	                         "  - name: crit\n"
	                         "    matchers: [severity=critical]\n"
	                         "    levels:\n"
	                         "      - {receivers: [hook]}\n"
	                         "      - {after: 5m, receivers: [mail]}\n"
	                         "      - {after: 15m, receivers: [boss]}\n");
	int64_t t = 1000000;
	post(f, t, 0, "alertname", "Down", "severity", "critical", NULL);
	post(f, t, 0, "alertname", "Meh", "severity", "info", NULL);
	nfy_engine_tick(&f->e, t);
	size_t esc = 0;
	for (size_t i = 0; i < f->e.nouts; i++)
		if (f->e.outs[i].esc_level == 1) {
			esc++;
			assert_string_equal(f->e.outs[i].receiver, "hook");
		}
	assert_int_equal(esc, 1);
	assert_int_equal(f->e.nescs, 1);
	nfy_outs_clear(&f->e);
	post(f, t + 200000, 0, "alertname", "Down", "severity", "critical", NULL);
	int64_t next = nfy_engine_tick(&f->e, t + 200000);
	assert_true(next <= t + 300000);
	for (size_t i = 0; i < f->e.nouts; i++)
		assert_int_equal(f->e.outs[i].esc_level, 0); /* route notices only */
	nfy_outs_clear(&f->e);
	post(f, t + 299000, 0, "alertname", "Down", "severity", "critical", NULL);
	nfy_engine_tick(&f->e, t + 300000);
	assert_int_equal(f->e.nouts, 1);
	assert_string_equal(f->e.outs[0].receiver, "mail");
	assert_int_equal(f->e.outs[0].esc_level, 2);
	nfy_outs_clear(&f->e);
	assert_int_equal(nfy_engine_ack(&f->e, f->e.escs[0]->fp, "alice", t + 400000), 0);
	assert_int_equal(nfy_engine_ack(&f->e, f->e.escs[0]->fp, "alice", t + 400000), 1);
	post(f, t + 899000, 0, "alertname", "Down", "severity", "critical", NULL);
	nfy_engine_tick(&f->e, t + 900000);
	for (size_t i = 0; i < f->e.nouts; i++)
		assert_int_equal(f->e.outs[i].esc_level, 0); /* acknowledged: no level 3 */
	unload(f);
}

static void ack_tokens_verify_and_expire(void **state) {
	uint8_t key[32] = {1, 2, 3};
	struct buf t = BUF_INIT;
	char fp[17];
	nfy_ack_token(key, "0123456789abcdef", 100000, &t);
	assert_int_equal(nfy_ack_verify(key, buf_cstr(&t), 50000, fp), 0);
	assert_string_equal(fp, "0123456789abcdef");
	assert_int_equal(nfy_ack_verify(key, buf_cstr(&t), 100000, fp), -1);
	t.data[3] = t.data[3] == 'a' ? 'b' : 'a';
	assert_int_equal(nfy_ack_verify(key, buf_cstr(&t), 50000, fp), -1);
	assert_int_equal(nfy_ack_verify(key, "garbage", 50000, fp), -1);
	buf_free(&t);
}

int main(void) {
	ward_crypto_init();
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(matchers_parse_alertmanager_syntax),
	        cmocka_unit_test(route_tree_matches_like_alertmanager),
	        cmocka_unit_test(group_by_all_makes_one_group_per_label_set),
	        cmocka_unit_test(grouping_waits_then_batches_then_repeats),
	        cmocka_unit_test(resolved_alerts_get_one_resolved_notice),
	        cmocka_unit_test(inhibition_needs_equal_labels_and_a_firing_source),
	        cmocka_unit_test(silences_mute_only_while_active),
	        cmocka_unit_test(escalation_steps_levels_until_acknowledged),
	        cmocka_unit_test(ack_tokens_verify_and_expire),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
