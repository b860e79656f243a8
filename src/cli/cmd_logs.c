/* cmd_logs.c: `ward logs query` and `ward logs tail` (online: /api/v1/logs/query_range,
 * /api/v1/logs/query and the NDJSON live stream of /api/v1/logs/tail, viewer role), and
 * `ward logs rotate` (offline: applies the config's logs.rotate rules to the files now,
 * the same code the daemon's timer runs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "core/core.h"
#include "logs/logs.h"

#define LOGS_LIMIT_MAX 5000 /* the server's cap (docs/api.md) */
/* The server sends a heartbeat every 5 s; this long without a byte means the stream is dead. */
#define FOLLOW_IDLE_MS 20000
/* Reconnecting: wait this long first, doubling up to the maximum while it keeps failing. */
#define FOLLOW_RETRY_MIN_MS 500
#define FOLLOW_RETRY_MAX_MS 10000
/* A stream line holds one log line (logs.max_line is at most 64 MiB) escaped as JSON. */
#define FOLLOW_MAX_LINE ((size_t)512 * 1024 * 1024)

static const char query_usage[] =
        "Usage: ward logs query EXPR [--since D] [--limit N] [--forward] [--json]\n"
        "\n"
        "Runs a LogQL query on the running server. A log query ({job=\"nginx\"} |= \"error\")\n"
        "prints matching lines, newest first; a metric query (sum by (level)\n"
        "(count_over_time({job=\"app\"}[5m]))) prints one value per series, now.\n"
        "\n"
        "Options:\n"
        "  --since D       how far back a log query looks (default 1h; 30m, 2d, ...)\n"
        "  -n, --limit N   at most N lines (1-5000; default 100)\n"
        "  --forward       oldest first\n"
        "  --json          print the server's data as JSON (Loki's shapes)\n"
        "  -h, --help      show this help\n";

static const char tail_usage[] =
        "Usage: ward logs tail [-f] EXPR [--since D] [--limit N] [--json]\n"
        "\n"
        "Prints the latest lines matching a log query; with -f keeps printing new ones as\n"
        "they arrive (a live stream from /api/v1/logs/tail) until interrupted, and\n"
        "reconnects from the last line seen when the connection drops.\n"
        "\n"
        "Options:\n"
        "  -f, --follow    keep printing new lines\n"
        "  --since D       how far back to start (default 10m)\n"
        "  -n, --limit N   lines shown at start (default 20)\n"
        "  --json          print each line as the server's JSON object, one per line:\n"
        "                  {\"stream\":{labels},\"ts\":\"<ns>\",\"line\":\"...\"}\n"
        "  -h, --help      show this help\n";

static const char rotate_usage[] =
        "Usage: ward logs rotate [--dry-run] [--force] [--config FILE] [--data DIR]\n"
        "\n"
        "Rotates the files of the configuration's logs.rotate rules whose size or time\n"
        "trigger fired (all of them with --force), as the daemon does every\n"
        "logs.rotate_interval. Prints each action.\n"
        "\n"
        "Options:\n"
        "  --dry-run          print what would be done; change nothing\n"
        "  --force            rotate every matching file regardless of triggers\n"
        "  -c, --config FILE  the configuration (default: /etc/ward/ward.yaml or built-in)\n"
        "  -d, --data DIR     the data directory (where rotate.state is kept)\n"
        "  -h, --help         show this help\n";

static int check_limit(const char *cmd, const char *limit) {
	char *end;
	long v;
	if (!limit)
		return 0;
	errno = 0;
	v = strtol(limit, &end, 10);
	if (errno || *end || v < 1 || v > LOGS_LIMIT_MAX)
		return cli_usage_error(cmd, "--limit must be a number from 1 to %d",
		                       LOGS_LIMIT_MAX);
	return 0;
}

static int check_dur(const char *cmd, const char *opt, const char *v) {
	int64_t ms;
	struct ward_err err;
	ward_err_clear(&err);
	if (v && ward_parse_duration(v, strlen(v), &ms, &err) != 0)
		return cli_usage_error(cmd, "--%s: %s", opt, err.msg);
	return 0;
}

static void print_labels(json_t *obj) {
	const char *k;
	json_t *v;
	bool first = true;
	putchar('{');
	json_object_foreach(obj, k, v) {
		printf("%s%s=\"%s\"", first ? "" : ",", k,
		       json_is_string(v) ? json_string_value(v) : "");
		first = false;
	}
	putchar('}');
}

struct line {
	const char *ts;
	const char *text;
	json_t *labels;
};

static int line_cmp(const void *a, const void *b) {
	const struct line *x = a, *y = b;
	size_t lx = strlen(x->ts), ly = strlen(y->ts);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x->ts, y->ts);
}

static void print_line(const char *ts, json_t *labels, const char *text, bool ndjson) {
	if (ndjson) {
		json_t *o = json_pack("{s:O,s:s,s:s}", "stream", labels ? labels : json_null(),
		                      "ts", ts, "line", text);
		char *d = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (d)
			puts(d);
		free(d);
		json_decref(o);
		return;
	}
	char t[32];
	ward_fmt_rfc3339(strtoll(ts, NULL, 10) / 1000000, t);
	printf("%s ", t);
	print_labels(labels);
	printf(" %s\n", text);
}

/* Prints a streams result as "TIME {labels} line" (or the stream's JSON objects), merged
 * by time. */
static void print_streams(json_t *data, bool newest_first, bool ndjson, int64_t *max_ts) {
	json_t *res = json_object_get(data, "result"), *s, *v;
	size_t i, j, n = 0, cap = 0;
	struct line *lines = NULL;
	json_array_foreach(res, i, s) {
		json_t *labels = json_object_get(s, "stream");
		json_array_foreach(json_object_get(s, "values"), j, v) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				lines = ward_xrealloc(lines, cap * sizeof(*lines));
			}
			lines[n++] = (struct line){json_string_value(json_array_get(v, 0)),
			                           json_string_value(json_array_get(v, 1)), labels};
			if (!lines[n - 1].ts || !lines[n - 1].text)
				n--;
		}
	}
	if (n > 1)
		qsort(lines, n, sizeof(*lines), line_cmp);
	for (size_t k = 0; k < n; k++) {
		struct line *l = &lines[newest_first ? n - 1 - k : k];
		int64_t ns = strtoll(l->ts, NULL, 10);
		print_line(l->ts, l->labels, l->text, ndjson);
		if (max_ts && ns > *max_ts)
			*max_ts = ns;
	}
	fflush(stdout);
	free(lines);
}

static void print_vector(json_t *data) {
	json_t *res = json_object_get(data, "result"), *s;
	size_t i;
	json_array_foreach(res, i, s) {
		json_t *val = json_object_get(s, "value");
		if (!val)
			val = json_array_get(json_object_get(s, "values"),
			                     json_array_size(json_object_get(s, "values")) - 1);
		print_labels(json_object_get(s, "metric"));
		printf(" %s\n", json_string_value(json_array_get(val, 1)) ?: "");
	}
	if (json_array_size(res) == 0)
		fprintf(stderr, "no series\n");
}

static int logs_query_cmd(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *since = NULL, *limit = NULL, *pos[1];
	bool json = false, forward = false;
	const struct cli_opt opts[] = {
	        {"since", 0, &since, NULL}, {"limit", 'n', &limit, NULL},
	        {"json", 0, NULL, &json},   {"forward", 0, NULL, &forward},
	        {NULL, 0, NULL, NULL},
	};
	struct buf q = BUF_INIT, path = BUF_INIT;
	json_t *data = NULL;
	int npos, rc;
	struct ward_err err;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "give one query expression");
	if ((rc = check_limit(argv[0], limit)) || (rc = check_dur(argv[0], "since", since)))
		return rc;
	ward_err_clear(&err);
	struct logs_query *lq = logs_query_parse(pos[0], strlen(pos[0]), &err);
	if (!lq)
		return cli_usage_error(argv[0], "%s", err.msg);
	bool metric = logs_query_is_metric(lq);
	logs_query_free(lq);
	cli_query_add(&q, "query", pos[0]);
	cli_query_add(&q, "limit", limit);
	cli_query_add(&q, "since", since ? since : "1h");
	if (forward)
		cli_query_add(&q, "direction", "forward");
	buf_printf(&path, "/api/v1/logs/%s?%s", metric ? "query" : "query_range", buf_cstr(&q));
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_VIEWER, &data);
	if (rc)
		goto out;
	if (json)
		cli_print_json(data);
	else if (metric)
		print_vector(data);
	else
		print_streams(data, !forward, false, NULL);
out:
	json_decref(data);
	buf_free(&q);
	buf_free(&path);
	return rc;
}

/* ---- following the live stream ---- */

struct follow {
	bool json;
	int64_t last;     /* newest line time printed (the since of a reconnect) */
	struct buf part;  /* an incomplete line of the stream */
	bool skipping;    /* part grew past FOLLOW_MAX_LINE: dropping until the newline */
	bool got_line;    /* a line (or heartbeat) arrived on this connection */
	char *error;      /* an {"error":...} the server ended the stream with */
};

static void follow_object(struct follow *f, const char *s, size_t n) {
	json_t *o = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return; /* an empty line or something we do not know: skip it */
	}
	f->got_line = true;
	const char *ts = cli_json_str(o, "ts", NULL), *line = cli_json_str(o, "line", NULL);
	const char *err = cli_json_str(o, "error", NULL);
	if (err) {
		free(f->error);
		f->error = ward_strdup(err);
	} else if (ts && line) {
		int64_t ns = strtoll(ts, NULL, 10);
		if (f->json) {
			fwrite(s, 1, n, stdout);
			putchar('\n');
		} else {
			print_line(ts, json_object_get(o, "stream"), line, false);
		}
		if (ns > f->last)
			f->last = ns;
	} /* else a heartbeat: {"heartbeat":"<ns>"} */
	json_decref(o);
}

static bool follow_data(void *arg, const char *data, size_t len) {
	struct follow *f = arg;
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (!f->skipping && f->part.len + n > FOLLOW_MAX_LINE) {
			fprintf(stderr, "ward: skipped a stream line longer than %zu bytes\n",
			        FOLLOW_MAX_LINE);
			f->skipping = true;
			buf_free(&f->part);
		}
		if (!f->skipping)
			buf_append(&f->part, data, n);
		if (nl) {
			if (!f->skipping && f->part.len)
				follow_object(f, f->part.data, f->part.len);
			buf_reset(&f->part);
			f->skipping = false;
			n++;
		}
		data += n;
		len -= n;
	}
	fflush(stdout);
	return true;
}

/* Follows q from f->last until a request is refused (returns its exit code); a dropped or
 * ended stream is reopened from the last line seen. */
static int follow_stream(struct cli *cli, const char *query, struct follow *f) {
	int64_t retry_ms = FOLLOW_RETRY_MIN_MS;
	bool announced = false; /* "reconnecting" said for this outage */
	int rc;
	if ((rc = cli_resolve(cli)))
		return rc;
	for (;;) {
		struct buf q = BUF_INIT, url = BUF_INIT;
		struct http_client_resp r;
		char sb[32];
		snprintf(sb, sizeof(sb), "%" PRId64, f->last);
		cli_query_add(&q, "query", query);
		cli_query_add(&q, "since", sb);
		cli_query_add(&q, "stream", "1");
		buf_printf(&url, "%s/api/v1/logs/tail?%s", cli->url, buf_cstr(&q));
		f->got_line = false;
		buf_reset(&f->part);
		f->skipping = false;
		int src = http_client_stream(buf_cstr(&url), cli->token, "application/x-ndjson",
		                             FOLLOW_IDLE_MS, follow_data, f, &r);
		buf_free(&q);
		buf_free(&url);
		if (src == 0 && (r.status < 200 || r.status > 299)) {
			json_t *root = json_loadb(r.body.data ? r.body.data : "", r.body.len,
			                          JSON_ALLOW_NUL, NULL);
			const char *msg = cli_json_str(root, "error", NULL);
			fprintf(stderr, "ward: the live tail was refused: %s (HTTP %ld)\n",
			        msg ? msg : "no reason given", r.status);
			if (r.status == 401 || r.status == 403)
				fprintf(stderr, "hint: set --token or WARD_TOKEN to a token with role "
				                "viewer or higher\n");
			rc = r.status == 401 || r.status == 403 ? WARD_EXIT_DENIED
			     : r.status == 503 || r.status == 429 ? WARD_EXIT_UNAVAILABLE
			     : r.status >= 500                    ? WARD_EXIT_INTERNAL
			                                          : WARD_EXIT_USAGE;
			json_decref(root);
			http_client_resp_free(&r);
			return rc;
		}
		if (f->got_line) { /* it worked for a while: a new outage starts now */
			retry_ms = FOLLOW_RETRY_MIN_MS;
			announced = false;
		}
		if (!announced) {
			fprintf(stderr, "ward: the live tail %s (%s); reconnecting from the last line\n",
			        src == 0 ? "ended" : "dropped",
			        f->error ? f->error : src == 0 ? "the server closed it" : r.error);
			announced = true;
		}
		free(f->error);
		f->error = NULL;
		http_client_resp_free(&r);
		struct timespec ts = {retry_ms / 1000, (retry_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		retry_ms = retry_ms * 2 > FOLLOW_RETRY_MAX_MS ? FOLLOW_RETRY_MAX_MS : retry_ms * 2;
	}
}

static int logs_tail_cmd(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *since = NULL, *limit = NULL, *pos[1];
	bool follow = false, json = false;
	const struct cli_opt opts[] = {
	        {"follow", 'f', NULL, &follow}, {"since", 0, &since, NULL},
	        {"limit", 'n', &limit, NULL},   {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	struct buf q = BUF_INIT, path = BUF_INIT;
	json_t *data = NULL;
	int npos, rc;
	struct ward_err err;
	int64_t last = 0;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "give one log query expression");
	if ((rc = check_limit(argv[0], limit)) || (rc = check_dur(argv[0], "since", since)))
		return rc;
	ward_err_clear(&err);
	struct logs_query *lq = logs_query_parse(pos[0], strlen(pos[0]), &err);
	if (!lq)
		return cli_usage_error(argv[0], "%s", err.msg);
	bool metric = logs_query_is_metric(lq);
	logs_query_free(lq);
	if (metric)
		return cli_usage_error(argv[0], "tail needs a log query, not a metric query");
	int64_t start = ward_now_ms() * 1000000;
	cli_query_add(&q, "query", pos[0]);
	cli_query_add(&q, "limit", limit ? limit : "20");
	cli_query_add(&q, "since", since ? since : "10m");
	char endb[32];
	snprintf(endb, sizeof(endb), "%" PRId64, start);
	cli_query_add(&q, "end", endb);
	buf_printf(&path, "/api/v1/logs/query_range?%s", buf_cstr(&q));
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_VIEWER, &data);
	if (rc)
		goto out;
	print_streams(data, false, json, &last);
	json_decref(data);
	data = NULL;
	if (follow) {
		struct follow f = {.json = json, .last = start};
		buf_init(&f.part);
		rc = follow_stream(cli, pos[0], &f);
		buf_free(&f.part);
		free(f.error);
	}
out:
	json_decref(data);
	buf_free(&q);
	buf_free(&path);
	return rc;
}

static int logs_rotate_cmd(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *config = NULL, *data_opt = NULL;
	bool dry = false, force = false;
	const struct cli_opt opts[] = {
	        {"dry-run", 0, NULL, &dry},     {"force", 0, NULL, &force},
	        {"config", 'c', &config, NULL}, {"data", 'd', &data_opt, NULL},
	        {NULL, 0, NULL, NULL},
	};
	struct ward_err err;
	struct buf report = BUF_INIT;
	struct conf *c = NULL;
	char *data_dir = NULL;
	int npos, rc;

	(void)cli;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	ward_err_clear(&err);
	ward_modules_init();
	if (!config)
		config = ward_default_config_path();
	c = config ? conf_load_file(config, &err)
	           : conf_load_buffer("<embedded default>", conf_embedded_default,
	                              strlen(conf_embedded_default), &err);
	if (!c) {
		fprintf(stderr, "%s: %s\n", argv[0], err.msg);
		return WARD_EXIT_USAGE;
	}
	data_dir = ward_resolve_data_dir(config, data_opt, &err);
	if (!data_dir) {
		fprintf(stderr, "%s: %s\n", argv[0], err.msg);
		rc = WARD_EXIT_USAGE;
		goto out;
	}
	rc = logs_rotate_from_config(c, data_dir, dry, force, &report, &err);
	fputs(buf_cstr(&report), stdout);
	if (!report.len)
		fprintf(stderr, "nothing to rotate\n");
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", argv[0], err.msg);
		rc = WARD_EXIT_PROBLEM;
	}
out:
	conf_unref(c);
	free(data_dir);
	buf_free(&report);
	return rc;
}

static const struct cli_verb logs_verbs[] = {
        {"query", "run a LogQL query", query_usage, CLI_X_ONLINE, logs_query_cmd},
        {"tail", "print the latest matching lines; -f follows", tail_usage, CLI_X_ONLINE,
         logs_tail_cmd},
        {"rotate", "rotate the files of logs.rotate now (offline)", rotate_usage,
         CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_PROBLEM) | CLI_X(WARD_EXIT_USAGE), logs_rotate_cmd},
        {NULL, NULL, NULL, 0, NULL},
};

static int logs_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "logs", "Search, follow and rotate logs.", logs_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_logs = {"logs", "search, follow and rotate logs", logs_run};
