/* api_query.c: the read side of the Prometheus HTTP API: query, query_range, series,
 * labels, label values, metadata, query_exemplars, status/buildinfo, status/tsdb.
 *
 * Parameters come from the query string or a form body (GET and POST alike), times as
 * RFC 3339 or Unix seconds, steps as durations or seconds, and errors use Prometheus'
 * types and codes (bad_data 400, execution 422, timeout 503), so Grafana's data source
 * and promtool-style clients read them as they read Prometheus'.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promapi/promapi_internal.h"
#include "ward_build.h"

#define MAX_POINTS_PER_SERIES 11000 /* Prometheus' limit for query_range */
#define MIN_TIME_MS (-9223372036854LL)  /* what Prometheus uses for "no start" (ms) */
#define MAX_TIME_MS (9223372036854LL)

static int storage_select(void *ctx, int64_t mint, int64_t maxt, const struct matcher *ms,
			  size_t nms, int64_t step_hint_ms, struct tsdb_series **out, size_t *n,
			  struct ward_err *err)
{
	struct promapi *p = ctx;
	return tsdb_select(p->db, mint, maxt, ms, nms, step_hint_ms, 0, out, n, err);
}

struct promql_storage promapi_storage(struct promapi *p)
{
	return (struct promql_storage){.select = storage_select, .ctx = p};
}

/* Parses a time parameter; absent gives def. -1 after answering 400. */
static int time_param(const struct http_req *req, struct http_resp *resp, const char *name,
		      int64_t def, int64_t *out)
{
	const char *v = http_param(req, name);
	if (!v || !*v) {
		*out = def;
		return 0;
	}
	if (ward_parse_time(v, strlen(v), out) != 0) {
		http_resp_error(resp, 400, "bad_data",
				"invalid parameter \"%s\": cannot parse \"%s\" to a valid timestamp",
				name, v);
		return -1;
	}
	return 0;
}

/* A duration as "15s" or as seconds "15" / "0.5". */
static int duration_param(const struct http_req *req, struct http_resp *resp, const char *name,
			  int64_t *out)
{
	const char *v = http_param(req, name);
	*out = 0;
	if (!v || !*v)
		return 0;
	char *end;
	double secs = strtod(v, &end);
	if (*end == '\0' && end != v) {
		if (!isfinite(secs) || secs > 9.2e15 / 1000 || secs < -9.2e15 / 1000) {
			http_resp_error(resp, 400, "bad_data",
					"invalid parameter \"%s\": cannot parse \"%s\" to a valid "
					"duration. It overflows int64",
					name, v);
			return -1;
		}
		*out = (int64_t)llround(secs * 1000.0);
		return 0;
	}
	if (ward_parse_duration(v, strlen(v), out, NULL) != 0) {
		http_resp_error(resp, 400, "bad_data",
				"invalid parameter \"%s\": cannot parse \"%s\" to a valid duration",
				name, v);
		return -1;
	}
	return 0;
}

static void answer_eval_error(struct http_resp *resp, enum promql_errtype et,
			      const struct ward_err *err)
{
	switch (et) {
	case PROMQL_ERR_BAD_DATA:
		http_resp_error(resp, 400, "bad_data", "%s", err->msg);
		break;
	case PROMQL_ERR_TIMEOUT:
		http_resp_error(resp, 503, "timeout", "%s", err->msg);
		break;
	case PROMQL_ERR_EXECUTION:
		http_resp_error(resp, 422, "execution", "%s", err->msg);
		break;
	default:
		http_resp_error(resp, 500, "internal", "%s", err->msg);
		break;
	}
}

/* Options from the config, narrowed by a ?timeout= parameter. */
static int query_opts(struct promapi *p, const struct http_req *req, struct http_resp *resp,
		      struct promql_opts *o)
{
	struct conf *c = ward_conf_get(p->ctx);
	promapi_query_opts(c, o);
	conf_unref(c);
	int64_t t = 0;
	if (duration_param(req, resp, "timeout", &t) != 0)
		return -1;
	if (t > 0 && (o->timeout_ms == 0 || t < o->timeout_ms))
		o->timeout_ms = t;
	return 0;
}

static struct promql_expr *parse_query(const struct http_req *req, struct http_resp *resp)
{
	const char *q = http_param(req, "query");
	if (!q) {
		http_resp_error(resp, 400, "bad_data", "invalid parameter \"query\": query missing");
		return NULL;
	}
	struct ward_err err;
	ward_err_clear(&err);
	struct promql_expr *e = promql_parse(q, strlen(q), &err);
	if (!e)
		http_resp_error(resp, 400, "bad_data", "invalid parameter \"query\": %s", err.msg);
	return e;
}

static void send_result(struct http_resp *resp, const struct promql_result *r)
{
	resp->status = 200;
	resp->content_type = "application/json";
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	promql_result_json(r, &resp->body);
	buf_puts(&resp->body, "}\n");
}

static void h_query(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct promapi *p = arg;
	struct promql_opts o;
	int64_t t;
	if (query_opts(p, req, resp, &o) || time_param(req, resp, "time", ward_now_ms(), &t))
		return;
	struct promql_expr *e = parse_query(req, resp);
	if (!e)
		return;
	struct promql_storage st = promapi_storage(p);
	struct promql_result r = {0};
	enum promql_errtype et = PROMQL_ERR_INTERNAL;
	struct ward_err err;
	ward_err_clear(&err);
	if (promql_eval_instant(&st, e, t, &o, &r, &et, &err) != 0)
		answer_eval_error(resp, et, &err);
	else
		send_result(resp, &r);
	promql_result_free(&r);
	promql_expr_free(e);
}

static void h_query_range(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct promapi *p = arg;
	struct promql_opts o;
	int64_t start, end, step;
	if (query_opts(p, req, resp, &o))
		return;
	if (!http_param(req, "start") || !http_param(req, "end")) {
		http_resp_error(resp, 400, "bad_data",
				"invalid parameter \"%s\": missing; query_range needs start, end "
				"and step",
				http_param(req, "start") ? "end" : "start");
		return;
	}
	if (time_param(req, resp, "start", 0, &start) || time_param(req, resp, "end", 0, &end) ||
	    duration_param(req, resp, "step", &step))
		return;
	if (end < start) {
		http_resp_error(resp, 400, "bad_data",
				"invalid parameter \"end\": end timestamp must not be before start "
				"time");
		return;
	}
	if (step <= 0) {
		http_resp_error(resp, 400, "bad_data",
				"invalid parameter \"step\": zero or negative query resolution step "
				"widths are not accepted. Try a positive integer");
		return;
	}
	if ((end - start) / step > MAX_POINTS_PER_SERIES) {
		http_resp_error(resp, 400, "bad_data",
				"exceeded maximum resolution of 11,000 points per timeseries. Try "
				"decreasing the query resolution (?step=XX)");
		return;
	}
	struct promql_expr *e = parse_query(req, resp);
	if (!e)
		return;
	struct promql_storage st = promapi_storage(p);
	struct promql_result r = {0};
	enum promql_errtype et = PROMQL_ERR_INTERNAL;
	struct ward_err err;
	ward_err_clear(&err);
	if (promql_eval_range(&st, e, start, end, step, &o, &r, &et, &err) != 0)
		answer_eval_error(resp, et, &err);
	else
		send_result(resp, &r);
	promql_result_free(&r);
	promql_expr_free(e);
}

/* The match[] parameters as matcher sets; -1 after answering 400. */
struct match_sets {
	struct matcher **sets;
	size_t *lens;
	size_t n;
};

static void match_sets_free(struct match_sets *m)
{
	for (size_t i = 0; i < m->n; i++) {
		for (size_t j = 0; j < m->lens[i]; j++)
			matcher_free(&m->sets[i][j]);
		free(m->sets[i]);
	}
	free(m->sets);
	free(m->lens);
}

static int parse_matches(const struct http_req *req, struct http_resp *resp,
			 struct match_sets *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->params[i].name, "match[]") != 0)
			continue;
		const char *s = req->params[i].value;
		struct matcher *ms = NULL;
		size_t n = 0;
		struct ward_err err;
		ward_err_clear(&err);
		if (promql_parse_selector(s, strlen(s), &ms, &n, &err) != 0) {
			http_resp_error(resp, 400, "bad_data", "invalid parameter \"match[]\": %s",
					err.msg);
			match_sets_free(m);
			return -1;
		}
		m->sets = ward_xrealloc(m->sets, (m->n + 1) * sizeof(*m->sets));
		m->lens = ward_xrealloc(m->lens, (m->n + 1) * sizeof(*m->lens));
		m->sets[m->n] = ms;
		m->lens[m->n] = n;
		m->n++;
	}
	return 0;
}

static json_t *labels_json(const struct labels *ls)
{
	json_t *o = json_object();
	for (size_t i = 0; i < ls->n; i++)
		json_object_set_new(o, ls->v[i].name, json_string(ls->v[i].value));
	return o;
}

static void send_data(struct http_resp *resp, json_t *data)
{
	char *s = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	http_resp_json(resp, 200, s);
	free(s);
	json_decref(data);
}

static void h_series(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct promapi *p = arg;
	struct match_sets m;
	int64_t start, end;
	if (time_param(req, resp, "start", MIN_TIME_MS, &start) ||
	    time_param(req, resp, "end", MAX_TIME_MS, &end) || parse_matches(req, resp, &m))
		return;
	if (m.n == 0) {
		http_resp_error(resp, 400, "bad_data", "no match[] parameter provided");
		return;
	}
	/* Union of every match[], de-duplicated by label set (a JSON object keyed by the
	 * printed label set keeps it simple and ordered). */
	json_t *seen = json_object();
	json_t *out = json_array();
	for (size_t i = 0; i < m.n; i++) {
		struct labels *ls = NULL;
		size_t n = 0;
		/* label sets only: no sample is read (Grafana lists series often) */
		(void)tsdb_series_labels(p->db, start, end, m.sets[i], m.lens[i], &ls, &n);
		for (size_t j = 0; j < n; j++) {
			bool fresh = true;
			if (m.n > 1) { /* a set may match several match[] */
				struct buf key = BUF_INIT;
				labels_write(&key, &ls[j]);
				fresh = !json_object_get(seen, buf_cstr(&key));
				if (fresh)
					json_object_set_new(seen, buf_cstr(&key), json_true());
				buf_free(&key);
			}
			if (fresh)
				json_array_append_new(out, labels_json(&ls[j]));
			labels_free(&ls[j]);
		}
		free(ls);
	}
	json_decref(seen);
	match_sets_free(&m);
	send_data(resp, out);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Shared by labels and label values: the sorted union over every match[] (or all). */
static void names_or_values(struct http_req *req, struct http_resp *resp, struct promapi *p,
			    const char *label)
{
	struct match_sets m;
	int64_t start, end;
	if (time_param(req, resp, "start", MIN_TIME_MS, &start) ||
	    time_param(req, resp, "end", MAX_TIME_MS, &end) || parse_matches(req, resp, &m))
		return;
	size_t rounds = m.n ? m.n : 1;
	char **all = NULL;
	size_t nall = 0;
	for (size_t i = 0; i < rounds; i++) {
		char **v = NULL;
		size_t n = 0;
		struct ward_err err;
		ward_err_clear(&err);
		const struct matcher *ms = m.n ? m.sets[i] : NULL;
		size_t nms = m.n ? m.lens[i] : 0;
		int rc = label ? tsdb_label_values(p->db, label, start, end, ms, nms, &v, &n, &err)
			       : tsdb_label_names(p->db, start, end, ms, nms, &v, &n, &err);
		if (rc != 0) {
			http_resp_error(resp, 422, "execution", "%s", err.msg);
			tsdb_strings_free(all, nall);
			match_sets_free(&m);
			return;
		}
		all = ward_xrealloc(all, (nall + n + 1) * sizeof(*all));
		if (n)
			memcpy(all + nall, v, n * sizeof(*v));
		nall += n;
		free(v);
	}
	if (nall > 1)
		qsort(all, nall, sizeof(*all), cmp_str);
	json_t *out = json_array();
	for (size_t i = 0; i < nall; i++)
		if (i == 0 || strcmp(all[i], all[i - 1]) != 0)
			json_array_append_new(out, json_string(all[i]));
	tsdb_strings_free(all, nall);
	match_sets_free(&m);
	send_data(resp, out);
}

static void h_labels(struct http_req *req, struct http_resp *resp, void *arg)
{
	names_or_values(req, resp, arg, NULL);
}


static void h_label_values(struct http_req *req, struct http_resp *resp, void *arg)
{
	/* path_tail is "<name>/values" */
	const char *tail = req->path_tail;
	const char *slash = strchr(tail, '/');
	if (!slash || strcmp(slash, "/values") != 0) {
		http_resp_error(resp, 404, "not_found", "use /api/v1/label/<name>/values");
		return;
	}
	char *name = ward_strndup(tail, (size_t)(slash - tail));
	if (!labels_valid_name(name)) {
		http_resp_error(resp, 400, "bad_data", "invalid label name: \"%s\"", name);
		free(name);
		return;
	}
	names_or_values(req, resp, arg, name);
	free(name);
}

static void h_metadata(struct http_req *req, struct http_resp *resp, void *arg)
{
	/* What scrapes and remote_write reported (tsdb_metadata_*), in Prometheus' shape:
	 * {"name": [{"type", "help", "unit"}]}; metric= one family, limit= at most that many. */
	struct promapi *p = arg;
	const char *lim = http_param(req, "limit"), *metric = http_param(req, "metric");
	long limit = 0;
	if (lim && *lim) {
		char *end;
		limit = strtol(lim, &end, 10);
		if (*end) {
			http_resp_error(resp, 400, "bad_data",
			                "limit must be an integer, not \"%.100s\"", lim);
			return;
		}
	}
	struct tsdb_metadata *v;
	size_t n = tsdb_metadata_list(p->db, metric && *metric ? metric : NULL,
	                              limit > 0 ? (size_t)limit : 0, &v);
	json_t *out = json_object();
	for (size_t i = 0; i < n && limit >= 0; i++)
		json_object_set_new(out, v[i].family,
		                    json_pack("[{s:s,s:s,s:s}]", "type", v[i].type, "help", v[i].help,
		                              "unit", v[i].unit));
	tsdb_metadata_free(v, n);
	send_data(resp, out);
}

/* ward keeps no exemplars (remote_write and scrapes drop them, counted), so every valid
 * request has the answer Prometheus gives without exemplar storage: an empty list. The
 * parameters are still checked in Prometheus' order, so a bad request fails the same way;
 * Grafana's data source calls this whenever a panel has exemplars switched on. */
static void h_query_exemplars(struct http_req *req, struct http_resp *resp, void *arg)
{
	(void)arg;
	int64_t start, end;
	if (time_param(req, resp, "start", MIN_TIME_MS, &start) ||
	    time_param(req, resp, "end", MAX_TIME_MS, &end))
		return;
	if (end < start) {
		http_resp_error(resp, 400, "bad_data",
				"end timestamp must not be before start timestamp");
		return;
	}
	struct promql_expr *e = parse_query(req, resp);
	if (!e)
		return;
	promql_expr_free(e);
	send_data(resp, json_array());
}

static void h_buildinfo(struct http_req *req, struct http_resp *resp, void *arg)
{
	send_data(resp, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "version", WARD_VERSION_STR,
				  "revision", WARD_REVISION, "branch", "", "buildUser", "",
				  "buildDate", "", "goVersion", "none (ward is written in C)"));
}

static void h_status_tsdb(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct promapi *p = arg;
	struct tsdb_stats s;
	tsdb_stats(p->db, &s);
	uint64_t samples = s.head_samples + s.block_samples;
	double bps = s.block_samples ? (double)s.block_bytes / (double)s.block_samples : 0;
	json_t *head = json_pack("{s:I,s:I,s:I,s:I}", "numSeries", (json_int_t)s.series,
				 "chunkCount", (json_int_t)s.head_chunks, "minTime",
				 (json_int_t)s.head_mint, "maxTime", (json_int_t)s.head_maxt);
	json_t *w = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "series",
			      (json_int_t)s.series, "samples", (json_int_t)samples, "head_samples",
			      (json_int_t)s.head_samples, "head_bytes", (json_int_t)s.head_bytes,
			      "blocks", (json_int_t)s.blocks, "block_bytes",
			      (json_int_t)s.block_bytes, "bytes_per_sample", bps, "wal_bytes",
			      (json_int_t)s.wal_bytes, "appended_total",
			      (json_int_t)s.appended_total, "rejected_too_old",
			      (json_int_t)s.rejected_too_old, "rejected_duplicate",
			      (json_int_t)s.rejected_duplicate, "quarantined",
			      (json_int_t)s.quarantined, "min_time", (json_int_t)s.min_time);
	send_data(resp, json_pack("{s:o,s:[],s:[],s:[],s:[],s:o}", "headStats", head,
				  "seriesCountByMetricName", "labelValueCountByLabelName",
				  "memoryInBytesByLabelName", "seriesCountByLabelValuePair", "ward",
				  w));
}

void promapi_write_register(struct promapi *p);

void promapi_routes_register(struct promapi *p)
{
	http_route(NULL, "/api/v1/query", ROLE_VIEWER, h_query, p);
	http_route(NULL, "/api/v1/query_range", ROLE_VIEWER, h_query_range, p);
	http_route(NULL, "/api/v1/series", ROLE_VIEWER, h_series, p);
	http_route(NULL, "/api/v1/labels", ROLE_VIEWER, h_labels, p);
	http_route("GET", "/api/v1/label/*", ROLE_VIEWER, h_label_values, p);
	http_route("GET", "/api/v1/metadata", ROLE_VIEWER, h_metadata, p);
	http_route(NULL, "/api/v1/query_exemplars", ROLE_VIEWER, h_query_exemplars, p);
	http_route("GET", "/api/v1/status/buildinfo", ROLE_VIEWER, h_buildinfo, p);
	http_route("GET", "/api/v1/status/tsdb", ROLE_VIEWER, h_status_tsdb, p);
	promapi_write_register(p);
}
