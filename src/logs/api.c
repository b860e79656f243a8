/* api.c: the logs HTTP API (docs/api.md):
 *   GET|POST /api/v1/logs/query        (viewer) instant query, Loki's data shapes
 *   GET|POST /api/v1/logs/query_range  (viewer) range query
 *   GET      /api/v1/logs/tail         (viewer) long-poll tail: ?since=<ns>&wait=10s
 *   POST     /api/v1/logs/push         (operator) JSON lines, labels from ?labels= and fields
 *   POST     /loki/api/v1/push         (operator) Loki's push API (JSON)
 * Handlers run on the HTTP worker threads; they use only the store (thread-safe). A push
 * is answered only after its lines are in the WAL (fsync'd when logs.wal_fsync is on).
 */
#include <inttypes.h>
#include <stdlib.h>

#include <jansson.h>

#include "logs/module_internal.h"

#define DEFAULT_LIMIT    100
#define MAX_LIMIT        5000                  /* as Loki's max_entries_limit_per_query default */
#define TAIL_FUTURE_NS   (60LL * 1000000000)   /* clocks of senders run a little ahead */
#define TAIL_MAX_WAIT_MS 9000                  /* below the daemon's 10 s stop grace */
#define DEFAULT_SINCE_NS (3600LL * 1000000000) /* an hour, as Loki's default */

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

/* Long-poll tail: lines with since < ts <= now; waits up to `wait` for some to arrive. */
static void h_tail(struct http_req *req, struct http_resp *resp, void *arg) {
	struct logs_mod *m = arg;
	struct logs_query_opts o;
	int64_t since, wait_ns;
	if (common_opts(req, resp, &o) != 0 ||
	    time_param(req, "since", now_ns(), &since, resp) != 0 ||
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
	json_t *root = json_loadb(req->body, req->body_len, 0, &je);
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
