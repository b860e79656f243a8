/* kind_exec.c: the exec probe: runs a command (no shell) with uv_spawn in its own process
 * group, reads its stdout through a pipe up to max_output (the rest is read and dropped so
 * a flooding plugin never blocks), kills the whole group at the timeout, and maps the
 * result with the Nagios plugin protocol (perfdata.c): exit 0 OK .. 3 UNKNOWN, first line
 * the message, perfdata -> probe_exec_perfdata{label,uom} and its _warning/_critical/_min/
 * _max companions.
 *
 * Invariant: the run completes once the process has exited (or never started) and the
 * pipe, process and timer handles are closed.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"

#define PLUGIN_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct xrun {
	struct probe_run *run;
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	int open; /* handles not yet closed */
	bool spawned, exited, eof, timed_out, finished, truncated;
	int64_t exit_status;
	int term_signal;
	struct buf output;
};

static void x_closed(uv_handle_t *h) {
	struct xrun *x = h->data;
	if (--x->open > 0)
		return;
	struct probe_run *r = x->run;
	buf_free(&x->output);
	free(x);
	r->k = NULL;
	probe_run_done(r);
}

static void x_close_all(struct xrun *x) {
	uv_timer_stop(&x->timer);
	uv_close((uv_handle_t *)&x->timer, x_closed);
	if (!uv_is_closing((uv_handle_t *)&x->out))
		uv_close((uv_handle_t *)&x->out, x_closed);
	uv_close((uv_handle_t *)&x->proc, x_closed);
}

static const char *base_name(const char *p) {
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void x_result(struct xrun *x) {
	const struct probe_check_conf *c = x->run->cfg;
	struct probe_result *res = &x->run->res;
	const char *prog = base_name(c->command[0]);
	char *msg = NULL, *perf = NULL;
	probe_nagios_split(x->output.data ? x->output.data : "", x->output.len, &msg, &perf);
	enum probe_nagios st =
	        probe_nagios_from_exit(x->exited && x->term_signal == 0 ? (int)x->exit_status : -1);
	if (x->timed_out)
		st = NAGIOS_UNKNOWN;
	probe_result_add(res, "probe_exec_status", (double)st, NULL);
	probe_result_add(res, "probe_exec_output_truncated", x->truncated ? 1 : 0, NULL);
	struct probe_perf *pv = NULL;
	size_t np = 0;
	struct ward_err perr;
	ward_err_clear(&perr);
	probe_perfdata_parse(perf, strlen(perf), &pv, &np, &perr);
	static const char *const suffix[] = {"", "_warning", "_critical", "_min", "_max"};
	for (size_t i = 0; i < np; i++) {
		const struct probe_perf *p = &pv[i];
		double vals[5] = {p->value, p->warn, p->crit, p->min, p->max};
		bool has[5] = {!isnan(p->value), p->has_warn, p->has_crit, p->has_min, p->has_max};
		for (size_t k = 0; k < 5; k++) {
			if (!has[k])
				continue;
			char name[64];
			snprintf(name, sizeof(name), "probe_exec_perfdata%s", suffix[k]);
			probe_result_add(res, name, vals[k], "label", p->label, "uom", p->uom,
			                 NULL);
		}
	}
	probe_perf_free(pv, np);

	char d[32];
	ward_fmt_duration(c->timeout_ms, d);
	if (x->timed_out) {
		probe_result_fail(res, "timeout after %s: %s killed%s", d, prog,
		                  x->truncated ? " (output truncated)" : "");
	} else if (!x->spawned) {
		/* reason already set by the spawn failure */
	} else if (x->term_signal) {
		probe_result_fail(res, "%s was killed by signal %d", prog, x->term_signal);
	} else {
		res->success = probe_nagios_success(st, c->warning_ok);
		buf_reset(&res->reason);
		if (msg[0])
			buf_printf(&res->reason, "%s%s%s", msg,
			           x->exit_status > 3 ? " (exit status " : "",
			           x->exit_status > 3 ? "unknown)" : "");
		else
			buf_printf(&res->reason, "%s exited with %lld (%s) and printed nothing",
			           prog, (long long)x->exit_status, probe_nagios_name(st));
	}
	free(msg);
	free(perf);
}

static void x_maybe_finish(struct xrun *x) {
	if (x->finished || !x->exited || !x->eof)
		return;
	x->finished = true;
	x_result(x);
	x_close_all(x);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
	struct xrun *x = p->data;
	x->exited = true;
	x->exit_status = status;
	x->term_signal = sig;
	x_maybe_finish(x);
}

static void on_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
	static char scratch[65536]; /* loop thread only; consumed before the next read */
	b->base = scratch;
	b->len = sizeof(scratch);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
	struct xrun *x = s->data;
	if (n > 0) {
		int64_t room = x->run->cfg->max_output_bytes - (int64_t)x->output.len;
		if (room <= 0 || (int64_t)n > room)
			x->truncated = true;
		if (room > 0)
			buf_append(&x->output, b->base,
			           (size_t)n < (size_t)room ? (size_t)n : (size_t)room);
		return;
	}
	if (n < 0) {
		uv_read_stop(s);
		x->eof = true;
		x_maybe_finish(x);
	}
}

static void on_timeout(uv_timer_t *t) {
	struct xrun *x = t->data;
	if (x->finished)
		return;
	if (!x->exited) {
		x->timed_out = true;
		/* The plugin leads its own process group: kill it and whatever it started. */
		if (x->proc.pid > 0)
			kill(-x->proc.pid, SIGKILL);
		uv_process_kill(&x->proc, SIGKILL);
		/* Its exit arrives through on_exit_cb; a grandchild holding the pipe is gone
		 * with the group, so EOF follows. Give both a bounded moment. */
		uv_timer_start(&x->timer, on_timeout, 2000, 0);
		return;
	}
	/* Exited, but something still holds the pipe open: stop waiting for it. */
	uv_read_stop((uv_stream_t *)&x->out);
	x->eof = true;
	x_maybe_finish(x);
}

static int exec_start(struct probe_run *r) {
	const struct probe_check_conf *c = r->cfg;
	struct xrun *x = ward_xcalloc(1, sizeof(*x));
	x->run = r;
	r->k = x;
	uv_pipe_init(r->loop, &x->out, 0);
	uv_timer_init(r->loop, &x->timer);
	x->out.data = x->timer.data = x->proc.data = x;
	x->open = 3;
	uv_stdio_container_t stdio[3] = {
	        {.flags = UV_IGNORE},
	        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->out},
	        {.flags = UV_IGNORE},
	};
	char **argv = ward_xcalloc(c->ncommand + 1, sizeof(*argv));
	for (size_t i = 0; i < c->ncommand; i++)
		argv[i] = c->command[i];
	/* A plugin sees a fixed, small environment: never ward's own (tokens, passwords given
	 * through ${ENV} in the config), and the C locale so its output parses the same. */
	static char *const env[] = {"PATH=" PLUGIN_PATH, "LC_ALL=C", NULL};
	uv_process_options_t o = {
	        .exit_cb = on_exit_cb,
	        .file = c->command[0],
	        .args = argv,
	        .env = (char **)env,
	        .stdio = stdio,
	        .stdio_count = 3,
	        .flags = UV_PROCESS_DETACHED, /* setsid: its own process group, killed whole */
	};
	int rc = uv_spawn(r->loop, &x->proc, &o);
	free(argv);
	if (rc != 0) {
		probe_result_fail(&r->res, "cannot run %s: %s", c->command[0], uv_strerror(rc));
		x->finished = true;
		probe_result_add(&r->res, "probe_exec_status", NAGIOS_UNKNOWN, NULL);
		x_close_all(x);
		return 0;
	}
	x->spawned = true;
	uv_read_start((uv_stream_t *)&x->out, on_alloc, on_read);
	uv_timer_start(&x->timer, on_timeout, (uint64_t)c->timeout_ms, 0);
	return 0;
}

static void exec_cancel(struct probe_run *r) {
	struct xrun *x = r->k;
	if (!x || x->finished)
		return;
	x->timed_out = true;
	if (!x->exited && x->proc.pid > 0) {
		kill(-x->proc.pid, SIGKILL);
		uv_process_kill(&x->proc, SIGKILL);
	}
	uv_timer_start(&x->timer, on_timeout, 2000, 0);
}

const struct probe_kind_ops probe_exec_ops = {exec_start, exec_cancel};
