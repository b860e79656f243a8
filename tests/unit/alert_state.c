/* alert_state.c: the alert state machine as Prometheus runs it: pending, firing after
 * `for`, resolved, keep_firing_for, ALERTS series, stale markers, carrying state over a
 * reload, and restoring it from the state store after a restart (a pending alert keeps
 * its activeAt, so `for` does not start again). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert/alert_internal.h"
#include "store/store.h"

#define MIN 60000

struct env {
	struct promql_memstore *m;
	struct promql_storage st;
	struct alert_eval_env ev;
	struct alert_ruleset *rs;
	size_t nwritten;
	size_t nalerts_series;
	size_t nstale;
};

static int capture(void *arg, const struct alert_sample *v, size_t n, int64_t t, struct ward_err *e)
{
	struct env *x = arg;
	for (size_t i = 0; i < n; i++) {
		x->nwritten++;
		const char *name = labels_get(&v[i].labels, "__name__");
		if (name && !strcmp(name, "ALERTS"))
			x->nalerts_series++;
		if (tsdb_is_stale_nan(v[i].v))
			x->nstale++;
		promql_memstore_add(x->m, &v[i].labels, t, v[i].v);
	}
	return 0;
}

static char *write_tmp(const char *text)
{
	static int n;
	char *p = malloc(64);
	snprintf(p, 64, "/tmp/alert_state_%d_%d.yml", (int)getpid(), n++);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

static void env_init(struct env *x, const char *load, const char *rules)
{
	memset(x, 0, sizeof(*x));
	x->m = promql_memstore_new();
	assert_int_equal(promql_memstore_load(x->m, load, strlen(load), NULL), 0);
	x->st = promql_memstore_storage(x->m);
	x->ev = (struct alert_eval_env){.st = &x->st, .write_alerts_series = true,
					.write = capture, .write_arg = x};
	char *p = write_tmp(rules);
	struct ward_err e;
	ward_err_clear(&e);
	const char *paths[] = {p};
	x->rs = alert_rules_load(paths, 1, &e);
	if (!x->rs)
		fail_msg("%s", e.msg);
	unlink(p);
	free(p);
}

static void env_free(struct env *x)
{
	alert_ruleset_free(x->rs);
	promql_memstore_free(x->m);
}

static struct alert_rule *rule0(struct env *x)
{
	return &x->rs->groups[0].rules[0];
}

static enum alert_state state_at(struct env *x, int64_t t)
{
	alert_group_eval(&x->rs->groups[0], t, &x->ev);
	struct alert_rule *r = rule0(x);
	assert_null(r->last_error);
	return r->nactive ? r->active[0].state : ALERT_INACTIVE;
}

static const char RULE_FOR[] = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n"
			       "    for: 3m\n    labels: {severity: page}\n"
			       "    annotations: {summary: '{{ $labels.job }} is {{ $value }}'}\n";

static void pending_then_firing_after_for_then_resolved(void **s)
{
	struct env x;
	env_init(&x, "load 1m\n  up{job=\"a\"} 1 0 0 0 0 0 1 1\n", RULE_FOR);
	assert_int_equal(state_at(&x, 0), ALERT_INACTIVE);
	assert_int_equal(state_at(&x, 1 * MIN), ALERT_PENDING);
	assert_int_equal(state_at(&x, 3 * MIN), ALERT_PENDING);
	assert_int_equal(state_at(&x, 4 * MIN), ALERT_FIRING);
	struct alert_inst *a = &rule0(&x)->active[0];
	assert_string_equal(labels_get(&a->labels, "alertname"), "Down");
	assert_string_equal(labels_get(&a->labels, "severity"), "page");
	assert_null(labels_get(&a->labels, "__name__"));
	assert_string_equal(labels_get(&a->annotations, "summary"), "a is 0");
	assert_int_equal(a->active_at_ms, 1 * MIN);
	assert_true(x.nalerts_series > 0);
	/* condition gone: resolved (inactive, kept for notification), ALERTS go stale */
	size_t stale_before = x.nstale;
	assert_int_equal(state_at(&x, 6 * MIN), ALERT_INACTIVE);
	assert_int_equal(rule0(&x)->active[0].resolved_at_ms, 6 * MIN);
	assert_true(x.nstale > stale_before);
	env_free(&x);
}

static void pending_alert_that_clears_is_dropped(void **s)
{
	struct env x;
	env_init(&x, "load 1m\n  up{job=\"a\"} 0 1 1\n", RULE_FOR);
	assert_int_equal(state_at(&x, 0), ALERT_PENDING);
	assert_int_equal(state_at(&x, 1 * MIN), ALERT_INACTIVE);
	assert_int_equal(rule0(&x)->nactive, 0);
	env_free(&x);
}

static void keep_firing_for_holds_after_condition_clears(void **s)
{
	struct env x;
	env_init(&x, "load 1m\n  up{job=\"a\"} 0 1 1 1 1 1\n",
		 "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n"
		 "    keep_firing_for: 2m\n");
	assert_int_equal(state_at(&x, 0), ALERT_FIRING); /* no for: fires at once */
	assert_int_equal(state_at(&x, 1 * MIN), ALERT_FIRING);
	assert_int_equal(rule0(&x)->active[0].keep_firing_since_ms, 1 * MIN);
	assert_int_equal(state_at(&x, 2 * MIN), ALERT_FIRING);
	assert_int_equal(state_at(&x, 3 * MIN), ALERT_INACTIVE);
	env_free(&x);
}

static void reload_carries_state(void **s)
{
	struct env x;
	env_init(&x, "load 1m\n  up{job=\"a\"} 0 0 0 0 0 0\n", RULE_FOR);
	assert_int_equal(state_at(&x, 0), ALERT_PENDING);
	struct env y;
	env_init(&y, "load 1m\n  up{job=\"a\"} 0 0 0 0 0 0\n", RULE_FOR);
	/* same file name is needed for carrying: give y's group x's file */
	free(y.rs->groups[0].file);
	y.rs->groups[0].file = ward_strdup(x.rs->groups[0].file);
	alert_ruleset_carry_state(y.rs, x.rs);
	assert_int_equal(rule0(&y)->nactive, 1);
	assert_int_equal(state_at(&y, 3 * MIN), ALERT_FIRING); /* for counted from 0 */
	env_free(&x);
	env_free(&y);
}

static void restart_restores_pending_without_restarting_for(void **s)
{
	char db[64];
	snprintf(db, sizeof(db), "/tmp/alert_state_%d.db", (int)getpid());
	unlink(db);
	store_reset_migrations();
	alert_register_migrations();
	struct ward_err e;
	ward_err_clear(&e);
	struct store *st = store_open(db, false, &e);
	assert_non_null(st);

	struct env x;
	env_init(&x, "load 1m\n  up{job=\"a\"} 0 0 0 0 0 0\n", RULE_FOR);
	assert_int_equal(state_at(&x, 1 * MIN), ALERT_PENDING);
	assert_int_equal(alert_rule_save(st, &x.rs->groups[0], rule0(&x), &e), 0);

	/* "restart": a fresh rule set, state read back from the store */
	struct env y;
	env_init(&y, "load 1m\n  up{job=\"a\"} 0 0 0 0 0 0\n", RULE_FOR);
	free(y.rs->groups[0].file);
	y.rs->groups[0].file = ward_strdup(x.rs->groups[0].file);
	assert_int_equal(alert_rule_restore(st, &y.rs->groups[0], rule0(&y)), 1);
	assert_int_equal(rule0(&y)->active[0].state, ALERT_PENDING);
	assert_int_equal(rule0(&y)->active[0].active_at_ms, 1 * MIN);
	/* fires 3m after the original activeAt, not 3m after the restart */
	assert_int_equal(state_at(&y, 4 * MIN), ALERT_FIRING);
	env_free(&x);
	env_free(&y);
	store_close(st);
	unlink(db);
}

static void recording_rule_writes_series_and_stale_marker(void **s)
{
	struct env x;
	env_init(&x, "load 1m\n  v{a=\"1\"} 1 1 stale\n  v{a=\"2\"} 2 2 2\n",
		 "groups:\n- name: g\n  rules:\n  - record: v:x2\n    expr: v * 2\n"
		 "    labels: {src: r}\n");
	alert_group_eval(&x.rs->groups[0], 1 * MIN, &x.ev);
	assert_int_equal(x.nwritten, 2);
	alert_group_eval(&x.rs->groups[0], 2 * MIN, &x.ev);
	assert_int_equal(x.nstale, 1); /* v:x2{a="1"} ended */
	env_free(&x);
}

static void duplicate_labelsets_are_a_rule_error(void **s)
{
	struct env x;
	env_init(&x, "load 1m\n  v{a=\"1\"} 1\n  v{a=\"2\"} 2\n",
		 "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: v\n    labels: {a: same}\n");
	alert_group_eval(&x.rs->groups[0], 0, &x.ev);
	assert_non_null(rule0(&x)->last_error);
	assert_non_null(strstr(rule0(&x)->last_error, "same labelset"));
	env_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pending_then_firing_after_for_then_resolved),
		cmocka_unit_test(pending_alert_that_clears_is_dropped),
		cmocka_unit_test(keep_firing_for_holds_after_condition_clears),
		cmocka_unit_test(reload_carries_state),
		cmocka_unit_test(restart_restores_pending_without_restarting_for),
		cmocka_unit_test(recording_rule_writes_series_and_stale_marker),
		cmocka_unit_test(duplicate_labelsets_are_a_rule_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
