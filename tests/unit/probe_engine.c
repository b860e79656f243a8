/* probe_engine.c: the probe module on a real libuv loop and state store, without the
 * daemon: checks run on schedule, state changes reach subscribers after they are stored,
 * run counts and lateness are recorded, and stop leaves nothing running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "conf/conf.h"
#include "core/core.h"
#include "probe/probe.h"
#include "store/store.h"

/* The core library names the module registry; this test is its own composition root. */
const struct ward_module *const ward_modules[] = {NULL};
void ward_modules_init(void) {
}

struct seen {
	int n;
	char check[64], to[16], reason[256];
	int stored; /* rows in probe_events when the callback ran */
	struct store *st;
};

static int count_row(void *arg, const struct store_val *cols, size_t n) {
	*(int *)arg = (int)cols[0].i;
	return 0;
}

static void on_change(void *arg, const struct probe_event *ev) {
	struct seen *s = arg;
	s->n++;
	snprintf(s->check, sizeof(s->check), "%s", ev->check);
	snprintf(s->to, sizeof(s->to), "%s", probe_state_name(ev->to));
	snprintf(s->reason, sizeof(s->reason), "%s", ev->reason);
	store_query(s->st, "SELECT count(*) FROM probe_events", NULL, 0, count_row, &s->stored,
	            NULL);
}

static void stop_timer_cb(uv_timer_t *t) {
	uv_stop(t->loop);
}

static void engine_runs_checks_and_notifies_subscribers_after_storing(void **state) {
	char dir[] = "/tmp/probe-engine-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/state.db", dir);
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(ward_crypto_init(), 0);
	probe_module.init();
	struct store *st = store_open(path, false, &err);
	assert_non_null(st);
	const char *y = "probes:\n"
	                "  checks:\n"
	                "    - {name: broken, kind: exec, command: [/bin/false], interval: 1s,"
	                " jitter: 0s}\n"
	                "    - {name: fine, kind: exec, command: [/bin/true], interval: 1s}\n";
	struct conf *c = conf_load_buffer("t.yaml", y, strlen(y), &err);
	if (!c)
		fail_msg("%s", err.msg);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct ward_ctx ctx = {.data_dir = dir, .store = st, .loop = &loop};
	struct seen s = {.st = st};
	int id = probe_subscribe(on_change, &s);
	assert_true(id > 0);
	assert_int_equal(probe_module.start(&ctx, c, &err), 0);
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, stop_timer_cb, 3500, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	probe_module.stop(&ctx);
	probe_unsubscribe(id);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0); /* nothing of ours left open */

	assert_int_equal(s.n, 2); /* unknown->failing and unknown->ok, once each */
	assert_true(s.stored >= 1);
	int events = 0;
	store_query(st,
	            "SELECT count(*) FROM probe_events WHERE name = 'broken' AND"
	            " to_state = 'failing' AND reason LIKE 'false exited with 1 (WARNING)%'",
	            NULL, 0, count_row, &events, NULL);
	assert_int_equal(events, 1);
	int rows = 0;
	store_query(st, "SELECT count(*) FROM probe_state", NULL, 0, count_row, &rows, NULL);
	assert_int_equal(rows, 2);
	struct buf m = BUF_INIT;
	metric_write_all(&m);
	assert_non_null(strstr(m.data, "ward_probe_runs_total{kind=\"exec\",result=\"failure\"}"));
	assert_non_null(strstr(m.data, "ward_probe_schedule_lateness_seconds_count"));
	buf_free(&m);
	conf_unref(c);
	store_close(st);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(engine_runs_checks_and_notifies_subscribers_after_storing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
