/* api.c: the logs HTTP API (docs/api.md):
 *   GET|POST /api/v1/logs/query        (viewer) instant query, Loki's data shapes
 *   GET|POST /api/v1/logs/query_range  (viewer) range query
 *   GET      /api/v1/logs/tail         (viewer) long-poll tail: ?since=<ns>&wait=10s; with
 *                                      stream=1 (or Accept: application/x-ndjson) a live
 *                                      NDJSON stream, at most MAX_TAIL_STREAMS at once
 *   POST     /api/v1/logs/push         (operator) JSON lines, labels from ?labels= and fields
 *   POST     /loki/api/v1/push         (operator) Loki's push API (JSON)
 * Handlers run on the HTTP worker threads; they use only the store (thread-safe). A push
 * is answered only after its lines are in the WAL (fsync'd when logs.wal_fsync is on).
 * A live tail's producer never blocks: it queries only when the store's append counter
 * moved, and holds at most one batch of lines between calls.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <jansson.h>

#include "logs/module_internal.h"

#define DEFAULT_LIMIT    100
#define MAX_LIMIT        5000                  /* as Loki's max_entries_limit_per_query default */
#define TAIL_FUTURE_NS   (60LL * 1000000000)   /* clocks of senders run a little ahead */
#define TAIL_MAX_WAIT_MS 9000                  /* below the daemon's 10 s stop grace */
#define DEFAULT_SINCE_NS (3600LL * 1000000000) /* an hour, as Loki's default */
/* Live tails: each holds a connection and a query; 64 is far more than people watching. */
#define MAX_TAIL_STREAMS 64
/* Lines per query of a live tail: with 256 KiB lines (logs.max_line) a batch stays ~25 MB. */
#define STREAM_BATCH 100
/* A heartbeat line after this much silence: proxies keep the connection, clients (ward
 * logs tail -f waits 20 s) tell a quiet stream from a dead one, and a gone client is
 * noticed by the failed write. Below server.limits.connection_timeout's smallest sane value. */
#define STREAM_HEARTBEAT_MS 5000

static int64_t now_ns(void) {
	return ward_now_ms() * 1000000;
}

static int time_param(const struct http_req *req, const char *name, int64_t def, int64_t *out,
                      struct http_resp *resp) {
	const char *v = http_param(req, name);
	if (!v || !v[0]) {
		*out = def;
		return 0;
	}
	if (logs_parse_time_ns(v, strlen(v), out) != 0) {
		http_resp_error(
		        resp, 400, "bad_data",
		        "%s: cannot parse \"%s\" as a time; use nanoseconds, unix seconds or "
		        "RFC 3339",
		        name, v);
		return -1;
	}
	return 0;
}

static int dur_param(const struct http_req *req, const char *name, int64_t def_ns, int64_t *out_ns,
                     struct http_resp *resp) {
	const char *v = http_param(req, name);
	int64_t ms;
	if (!v || !v[0]) {
		*out_ns = def_ns;
		return 0;
	}
	char *end;
	double secs = strtod(v, &end);
	if (end != v && !*end && secs > 0 && secs < 1e9) { /* Loki and Grafana send seconds */
		*out_ns = (int64_t)(secs * 1e9);
		return 0;
	}
	if (ward_parse_duration(v, strlen(v), &ms, NULL) != 0 || ms <= 0) {
		http_resp_error(resp, 400, "bad_data",
		                "%s: \"%s\" is not a duration such as 30s, 5m or 1h", name, v);
		return -1;
	}
	*out_ns = ms * 1000000;
	return 0;
}

static int common_opts(const struct http_req *req, struct http_resp *resp,
                       struct logs_query_opts *o) {
	memset(o, 0, sizeof(*o));
	o->limit = DEFAULT_LIMIT;
	const char *lim = http_param(req, "limit");
	if (lim && lim[0]) {
		char *end;
		long long l = strtoll(lim, &end, 10);
		if (*end || l < 1 || l > MAX_LIMIT) {
			http_resp_error(resp, 400, "bad_data", "limit must be from 1 to %d",
			                MAX_LIMIT);
			return -1;
		}
		o->limit = (size_t)l;
	}
	const char *dir = http_param(req, "direction");
	if (dir && dir[0]) {
		if (strcmp(dir, "forward") == 0 || strcmp(dir, "FORWARD") == 0)
			o->direction = LOGS_FORWARD;
		else if (strcmp(dir, "backward") == 0 || strcmp(dir, "BACKWARD") == 0)
			o->direction = LOGS_BACKWARD;
		else {
			http_resp_error(resp, 400, "bad_data",
			                "direction must be forward or backward, not \"%s\"", dir);
			return -1;
		}
	}
	return 0;
}

static struct logs_query *parse_param(const struct http_req *req, struct http_resp *resp) {
	const char *qs = http_param(req, "query");
	struct ward_err err;
	if (!qs || !qs[0]) {
		http_resp_error(resp, 400, "bad_data",
		                "query is missing; pass query={job=\"x\"} or a metric query");
		return NULL;
	}
	ward_err_clear(&err);
	struct logs_query *q = logs_query_parse(qs, strlen(qs), &err);
	if (!q)
		http_resp_error(resp, 400, "bad_data", "%s", err.msg);
	return q;
}

static void run(struct logs_mod *m, const struct logs_query *q, const struct logs_query_opts *o,
                struct http_resp *resp) {
	struct buf out = BUF_INIT;
	struct ward_err err;
	ward_err_clear(&err);
	if (!m->store) {
		http_resp_error(resp, 503, "unavailable", "the log store is not open");
		return;
	}
	if (logs_query_exec(m->store, q, o, &out, &err) != 0)
		http_resp_error(resp, 422, "execution", "%s", err.msg);
	else
		http_resp_json(resp, 200, buf_cstr(&out));
	buf_free(&out);
}

static void h_query(struct http_req *req, struct http_resp *resp, void *arg) {
	struct logs_query_opts o;
	int64_t t, since;
	if (common_opts(req, resp, &o) != 0 || time_param(req, "time", now_ns(), &t, resp) != 0 ||
	    dur_param(req, "since", DEFAULT_SINCE_NS, &since, resp) != 0)
		return;
	struct logs_query *q = parse_param(req, resp);
	if (!q)
		return;
	o.end_ns = t;
	o.start_ns = q->metric ? t : t - since;
	o.step_ns = 0;
	run(arg, q, &o, resp);
	logs_query_free(q);
}

static void h_query_range(struct http_req *req, struct http_resp *resp, void *arg) {
	struct logs_query_opts o;
	int64_t end, start, since;
	if (common_opts(req, resp, &o) != 0 || time_param(req, "end", now_ns(), &end, resp) != 0 ||
	    dur_param(req, "since", DEFAULT_SINCE_NS, &since, resp) != 0 ||
	    time_param(req, "start", end - since, &start, resp) != 0)
		return;
	if (end < start) {
		http_resp_error(resp, 400, "bad_data", "end is before start");
		return;
	}
	/* Loki's default step: about 250 points over the range, at least a second. */
	int64_t def_step = (end - start) / 250;
	def_step = def_step / 1000000000 * 1000000000;
	if (def_step < 1000000000)
		def_step = 1000000000;
	if (dur_param(req, "step", def_step, &o.step_ns, resp) != 0)
		return;
	struct logs_query *q = parse_param(req, resp);
	if (!q)
		return;
	o.start_ns = start;
	o.end_ns = end;
	run(arg, q, &o, resp);
	logs_query_free(q);
}

/* ---- live tail (NDJSON stream) ---- */

static atomic_int tail_streams; /* open live tails, for MAX_TAIL_STREAMS */

struct tail_stream {
	struct logs_mod *m;
	struct logs_query *q;
	int64_t since;       /* lines with ts > since are still to send */
	uint64_t seen;       /* the store's append counter at the last query */
	bool again;          /* the last batch was cut short: query again without waiting */
	int64_t last_out_ms; /* monotonic time of the last line written (heartbeats) */
};

struct tail_entry {
	const char *ts;
	int64_t ts_ns;
	const char *line;
	size_t len;
	const char *labels; /* the stream's labels as compact JSON */
};

static int tail_entry_cmp(const void *a, const void *b) {
	const struct tail_entry *x = a, *y = b;
	return x->ts_ns < y->ts_ns ? -1 : x->ts_ns > y->ts_ns;
}

static void tail_error_line(struct buf *out, const char *msg) {
	buf_puts(out, "{\"error\":");
	buf_json_str(out, msg, strlen(msg));
	buf_puts(out, "}\n");
}

/* Turns the query result (Loki's streams shape) into NDJSON lines in time order, stopping
 * at a time boundary once out holds HTTP_STREAM_MAX_APPEND bytes; moves ts->since to the
 * last line written. *got receives the number of lines in the result. true when lines were
 * left out (so the caller queries again). */
static bool tail_emit(struct tail_stream *ts, json_t *data, struct buf *out, size_t *got) {
	json_t *res = json_object_get(data, "result"), *s, *v;
	size_t i, j, n = 0, cap = 0, nres = json_array_size(res);
	struct tail_entry *e = NULL;
	char **labels = ward_xcalloc(nres ? nres : 1, sizeof(char *));
	bool cut = false;
	json_array_foreach(res, i, s) {
		labels[i] = json_dumps(json_object_get(s, "stream"), JSON_COMPACT);
		json_array_foreach(json_object_get(s, "values"), j, v) {
			const char *t = json_string_value(json_array_get(v, 0));
			json_t *l = json_array_get(v, 1);
			if (!t || !json_is_string(l) || !labels[i])
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				e = ward_xrealloc(e, cap * sizeof(*e));
			}
			e[n++] = (struct tail_entry){t, strtoll(t, NULL, 10), json_string_value(l),
			                             json_string_length(l), labels[i]};
		}
	}
	if (n)
		qsort(e, n, sizeof(*e), tail_entry_cmp);
	*got = n;
	for (size_t k = 0; k < n; k++) {
		if (out->len >= HTTP_STREAM_MAX_APPEND && e[k].ts_ns > ts->since) {
			cut = true;
			break;
		}
		buf_printf(out, "{\"stream\":%s,\"ts\":\"%s\",\"line\":", e[k].labels, e[k].ts);
		buf_json_str(out, e[k].line, e[k].len);
		buf_puts(out, "}\n");
		if (e[k].ts_ns > ts->since)
			ts->since = e[k].ts_ns;
	}
	for (i = 0; i < nres; i++)
		free(labels[i]);
	free(labels);
	free(e);
	return cut;
}

static enum http_stream_rc tail_produce(void *arg, struct buf *out) {
	struct tail_stream *ts = arg;
	struct logs_mod *m = ts->m;
	int64_t now_ms = ward_mono_ms();
	if (!m->store) {
		tail_error_line(out, "the log store was closed; reconnect later");
		return HTTP_STREAM_END;
	}
	struct logs_store_stats st;
	logs_store_stats(m->store, &st);
	if (st.lines_appended != ts->seen || ts->again) {
		/* Read the counter before querying: a line appended meanwhile moves it again. */
		ts->seen = st.lines_appended;
		struct logs_query_opts o = {.limit = STREAM_BATCH, .direction = LOGS_FORWARD};
		o.start_ns = ts->since + 1;
		o.end_ns = now_ns() + TAIL_FUTURE_NS;
		struct buf res = BUF_INIT;
		struct ward_err err;
		ward_err_clear(&err);
		if (logs_query_exec(m->store, ts->q, &o, &res, &err) != 0) {
			tail_error_line(out, err.msg);
			buf_free(&res);
			return HTTP_STREAM_END;
		}
		json_t *data = json_loadb(res.data ? res.data : "", res.len, JSON_ALLOW_NUL, NULL);
		buf_free(&res);
		size_t before = out->len, got = 0;
		bool cut = data ? tail_emit(ts, data, out, &got) : false;
		json_decref(data);
		/* A full batch may have left lines behind in the window; so has a cut one. */
		ts->again = cut || got >= STREAM_BATCH;
		if (out->len > before) {
			ts->last_out_ms = now_ms;
			return HTTP_STREAM_MORE;
		}
	}
	if (now_ms - ts->last_out_ms >= STREAM_HEARTBEAT_MS) {
		buf_printf(out, "{\"heartbeat\":\"%" PRId64 "\"}\n", now_ns());
		ts->last_out_ms = now_ms;
	}
	return HTTP_STREAM_MORE;
}

static void tail_free(void *arg) {
	struct tail_stream *ts = arg;
	logs_query_free(ts->q);
	free(ts);
	atomic_fetch_sub(&tail_streams, 1);
}

static bool wants_stream(const struct http_req *req) {
	const char *s = http_param(req, "stream");
	if (s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0))
		return true;
	const char *acc = http_header(req, "Accept");
	return acc && strstr(acc, "application/x-ndjson");
}

/* Starts a live tail of q from since (takes q). */
static void tail_stream_start(struct http_req *req, struct http_resp *resp, struct logs_mod *m,
                              struct logs_query *q, int64_t since) {
	if (atomic_fetch_add(&tail_streams, 1) >= MAX_TAIL_STREAMS) {
		atomic_fetch_sub(&tail_streams, 1);
		http_resp_error(resp, 503, "unavailable",
		                "%d live tails are open, the most this server keeps; close one, or "
		                "poll without stream=1 (long-poll)",
		                MAX_TAIL_STREAMS);
		logs_query_free(q);
		return;
	}
	struct tail_stream *ts = ward_xcalloc(1, sizeof(*ts));
	ts->m = m;
	ts->q = q;
	ts->since = since;
	ts->again = true; /* the first call queries at once */
	ts->last_out_ms = ward_mono_ms();
	http_resp_header(resp, "X-Accel-Buffering", "no"); /* nginx: pass lines through now */
	http_resp_stream(req, resp, "application/x-ndjson", tail_produce, tail_free, ts);
}

/* Long-poll tail: lines with since < ts <= now; waits up to `wait` for some to arrive.
 * Without since, the tail starts with the current millisecond: timestamps here have
 * millisecond resolution, so a line stored in the same millisecond as the request would
 * otherwise be missed (ts == since is "already seen"). */
static void h_tail(struct http_req *req, struct http_resp *resp, void *arg) {
	struct logs_mod *m = arg;
	struct logs_query_opts o;
	int64_t since, wait_ns;
	if (common_opts(req, resp, &o) != 0 ||
	    time_param(req, "since", now_ns() - 1, &since, resp) != 0 ||
	    dur_param(req, "wait", 10000000000LL, &wait_ns, resp) != 0)
		return;
	struct logs_query *q = parse_param(req, resp);
	if (!q)
		return;
	if (q->metric) {
		http_resp_error(resp, 400, "bad_data",
		                "tail needs a log query, not a metric query");
		logs_query_free(q);
		return;
	}
	if (!m->store) {
		http_resp_error(resp, 503, "unavailable", "the log store is not open");
		logs_query_free(q);
		return;
	}
	if (wants_stream(req)) {
		tail_stream_start(req, resp, m, q, since);
		return;
	}
	int64_t wait_ms = wait_ns / 1000000;
	if (wait_ms > TAIL_MAX_WAIT_MS)
		wait_ms = TAIL_MAX_WAIT_MS;
	int64_t deadline = ward_mono_ms() + wait_ms;
	struct logs_store_stats st;
	logs_store_stats(m->store, &st);
	uint64_t seen = st.lines_appended;
	o.direction = LOGS_FORWARD;
	/* next_since is the newest line returned, not the end of the window: a line stamped
	 * earlier than now but arriving later (second-precision syslog, a file's own times)
	 * is still found by the next poll, unless something newer was returned before it. */
	int64_t newest = since;
	o.newest_ns = &newest;
	for (;;) {
		struct buf out = BUF_INIT;
		struct ward_err err;
		ward_err_clear(&err);
		o.start_ns = since + 1;
		o.end_ns = now_ns() + TAIL_FUTURE_NS;
		if (logs_query_exec(m->store, q, &o, &out, &err) != 0) {
			http_resp_error(resp, 422, "execution", "%s", err.msg);
			buf_free(&out);
			break;
		}
		int64_t left = deadline - ward_mono_ms();
		if (newest > since || left <= 0) {
			/* The data object with next_since spliced in before its closing brace. */
			out.len--;
			buf_printf(&out, ",\"next_since\":\"%" PRId64 "\"}", newest);
			http_resp_json(resp, 200, buf_cstr(&out));
			buf_free(&out);
			break;
		}
		buf_free(&out);
		seen = logs_store_wait(m->store, seen, left < 500 ? left : 500);
	}
	logs_query_free(q);
}

/* ---- push ---- */

/* "job=app,host=a" or {job="app",host="a"} into ls. 0 or -1. */
static int parse_label_param(const char *s, struct labels *ls, struct ward_err *err) {
	size_t n = strlen(s), i = 0;
	if (n && s[0] == '{') {
		i = 1;
		if (s[n - 1] == '}')
			n--;
	}
	while (i < n) {
		while (i < n && (s[i] == ',' || s[i] == ' '))
			i++;
		size_t ks = i;
		while (i < n && s[i] != '=')
			i++;
		if (i >= n) {
			if (i > ks) {
				ward_err_set(err, "labels: \"%.*s\" has no '='", (int)(i - ks),
				             s + ks);
				return -1;
			}
			break;
		}
		char *name = ward_strndup(s + ks, i - ks);
		i++;
		struct buf v = BUF_INIT;
		if (i < n && s[i] == '"') {
			i++;
			while (i < n && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				buf_putc(&v, s[i++]);
			}
			i++;
		} else {
			while (i < n && s[i] != ',')
				buf_putc(&v, s[i++]);
		}
		labels_set(ls, name, buf_cstr(&v));
		free(name);
		buf_free(&v);
	}
	return 0;
}

struct group {
	struct labels labels;
	struct logs_entry *e;
	size_t n, cap;
};

static void group_add(struct group **gs, size_t *ng, const struct labels *ls, int64_t ts,
                      const char *line, size_t len) {
	struct group *g = NULL;
	for (size_t i = 0; i < *ng; i++)
		if (labels_equal(&(*gs)[i].labels, ls)) {
			g = &(*gs)[i];
			break;
		}
	if (!g) {
		*gs = ward_xrealloc(*gs, (*ng + 1) * sizeof(**gs));
		g = &(*gs)[(*ng)++];
		memset(g, 0, sizeof(*g));
		labels_copy(&g->labels, ls);
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->e = ward_xrealloc(g->e, g->cap * sizeof(*g->e));
	}
	g->e[g->n++] = (struct logs_entry){.ts_ns = ts, .line = line, .len = len};
}

static int groups_store(struct logs_mod *m, struct group *gs, size_t ng, struct ward_err *err) {
	int rc = 0;
	for (size_t i = 0; i < ng; i++) {
		if (rc == 0 && logs_store_append(m->store, &gs[i].labels, gs[i].e, gs[i].n,
		                                 i + 1 == ng, err) != 0)
			rc = -1;
		labels_free(&gs[i].labels);
		free(gs[i].e);
	}
	free(gs);
	return rc;
}

static const char *const time_keys[] = {"ts", "time", "timestamp", "@timestamp", NULL};

static void h_push(struct http_req *req, struct http_resp *resp, void *arg) {
	struct logs_mod *m = arg;
	struct labels base;
	struct ward_err err;
	struct logs_fields f = {0};
	struct group *gs = NULL;
	size_t ng = 0, accepted = 0, rejected = 0;
	char **lf = NULL;
	size_t nlf = 0;
	labels_init(&base);
	ward_err_clear(&err);
	const char *lp = http_param(req, "labels");
	if (lp && parse_label_param(lp, &base, &err) != 0) {
		http_resp_error(resp, 400, "bad_data", "%s", err.msg);
		goto out;
	}
	if (!labels_get(&base, "job"))
		labels_set(&base, "job", "push");
	const char *lfs = http_param(req, "label_fields");
	if (!lfs)
		lfs = "level";
	for (const char *p = lfs; *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l) {
			lf = ward_xrealloc(lf, (nlf + 1) * sizeof(char *));
			lf[nlf++] = ward_strndup(p, l);
		}
		p += l + (c ? 1 : 0);
	}
	int64_t now = now_ns();
	const char *b = req->body, *end = req->body + req->body_len;
	struct labels ls;
	labels_init(&ls);
	while (b < end) {
		const char *nl = memchr(b, '\n', (size_t)(end - b));
		const char *le = nl ? nl : end;
		size_t len = (size_t)(le - b);
		if (len && b[len - 1] == '\r')
			len--;
		if (len == 0) {
			b = le + 1;
			continue;
		}
		logs_fields_reset(&f);
		if (logs_parse_json(b, len, &f) != 0) {
			rejected++;
			b = le + 1;
			continue;
		}
		labels_copy(&ls, &base);
		for (size_t i = 0; i < nlf; i++) {
			const char *v = logs_fields_get(&f, lf[i]);
			if (v && v[0] && strlen(v) <= 128)
				labels_set(&ls, lf[i], v);
		}
		int64_t ts = now;
		for (int k = 0; time_keys[k]; k++) {
			const char *v = logs_fields_get(&f, time_keys[k]);
			if (v && logs_parse_time_ns(v, strlen(v), &ts) == 0)
				break;
			ts = now;
		}
		group_add(&gs, &ng, &ls, ts, b, len);
		accepted++;
		b = le + 1;
	}
	labels_free(&ls);
	if (groups_store(m, gs, ng, &err) != 0) {
		http_resp_error(resp, 507, "internal", "%s", err.msg);
		goto out;
	}
	logs_count(m, "push", (double)accepted);
	struct buf d = BUF_INIT;
	buf_printf(&d, "{\"accepted\":%zu,\"rejected\":%zu}", accepted, rejected);
	http_resp_json(resp, rejected && !accepted ? 400 : 200, buf_cstr(&d));
	buf_free(&d);
out:
	for (size_t i = 0; i < nlf; i++)
		free(lf[i]);
	free(lf);
	logs_fields_free(&f);
	labels_free(&base);
}

static void h_loki_push(struct http_req *req, struct http_resp *resp, void *arg) {
	struct logs_mod *m = arg;
	json_error_t je;
	struct ward_err err;
	struct group *gs = NULL;
	size_t ng = 0, n = 0;
	ward_err_clear(&err);
	const char *ct = http_header(req, "Content-Type");
	if (ct && strstr(ct, "protobuf")) {
		http_resp_error(resp, 415, "bad_data",
		                "only Loki's JSON push format is supported; configure the shipper "
		                "to send application/json");
		return;
	}
	json_t *root = json_loadb(req->body, req->body_len, JSON_ALLOW_NUL, &je);
	json_t *streams = root ? json_object_get(root, "streams") : NULL;
	if (!json_is_array(streams)) {
		http_resp_error(
		        resp, 400, "bad_data",
		        "body must be {\"streams\":[{\"stream\":{...},\"values\":[[\"<ns>\","
		        "\"line\"]]}]}%s%s",
		        root ? "" : ": ", root ? "" : je.text);
		json_decref(root);
		return;
	}
	size_t i;
	json_t *s;
	json_array_foreach(streams, i, s) {
		json_t *lab = json_object_get(s, "stream"), *vals = json_object_get(s, "values");
		struct labels ls;
		labels_init(&ls);
		const char *k;
		json_t *v;
		json_object_foreach(lab, k, v) {
			if (json_is_string(v))
				labels_set(&ls, k, json_string_value(v));
		}
		if (ls.n == 0) {
			labels_free(&ls);
			groups_store(m, gs, ng, &err);
			http_resp_error(resp, 400, "bad_data",
			                "streams[%zu]: a stream needs at least one label", i);
			json_decref(root);
			return;
		}
		size_t j;
		json_t *e;
		json_array_foreach(vals, j, e) {
			json_t *t = json_array_get(e, 0), *l = json_array_get(e, 1);
			int64_t ts;
			if (!json_is_string(t) || !json_is_string(l) ||
			    logs_parse_time_ns(json_string_value(t), json_string_length(t), &ts) !=
			            0) {
				labels_free(&ls);
				groups_store(m, gs, ng, &err);
				http_resp_error(
				        resp, 400, "bad_data",
				        "streams[%zu].values[%zu]: want [\"<unix ns>\", \"line\"]",
				        i, j);
				json_decref(root);
				return;
			}
			group_add(&gs, &ng, &ls, ts, json_string_value(l), json_string_length(l));
			n++;
		}
		labels_free(&ls);
	}
	if (groups_store(m, gs, ng, &err) != 0) {
		http_resp_error(resp, 507, "internal", "%s", err.msg);
	} else {
		logs_count(m, "loki", (double)n);
		resp->status = 204; /* what Loki answers; shippers check for 2xx */
	}
	json_decref(root);
}

void logs_api_register(struct logs_mod *m) {
	http_route("GET", "/api/v1/logs/query", ROLE_VIEWER, h_query, m);
	http_route("POST", "/api/v1/logs/query", ROLE_VIEWER, h_query, m);
	http_route("GET", "/api/v1/logs/query_range", ROLE_VIEWER, h_query_range, m);
	http_route("POST", "/api/v1/logs/query_range", ROLE_VIEWER, h_query_range, m);
	http_route("GET", "/api/v1/logs/tail", ROLE_VIEWER, h_tail, m);
	http_route("POST", "/api/v1/logs/push", ROLE_OPERATOR, h_push, m);
	http_route("POST", "/loki/api/v1/push", ROLE_OPERATOR, h_loki_push, m);
}
