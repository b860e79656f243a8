/* cmd_query.c: `ward query EXPR` and `ward query range EXPR`, PromQL against a running
 * server (/api/v1/query and /api/v1/query_range, viewer role).
 *
 * Vectors print one line per series ("<labels> <value>"), matrices one block per series,
 * scalars and strings their value; --json prints the server's data as Prometheus returns it.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_metric(json_t *metric)
{
	const char *name = cli_json_str(metric, "__name__", "");
	printf("%s{", name);
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach(metric, k, v) {
		if (strcmp(k, "__name__") == 0)
			continue;
		printf("%s%s=\"%s\"", first ? "" : ", ", k, json_string_value(v));
		first = false;
	}
	printf("}");
}

static void print_point(json_t *p)
{
	double t = json_number_value(json_array_get(p, 0));
	const char *v = json_string_value(json_array_get(p, 1));
	printf("%s @%.3f", v ? v : "?", t);
}

static void print_result(json_t *data)
{
	const char *type = cli_json_str(data, "resultType", "");
	json_t *res = json_object_get(data, "result");
	size_t i;
	json_t *e;
	if (strcmp(type, "scalar") == 0 || strcmp(type, "string") == 0) {
		print_point(res);
		printf("\n");
		return;
	}
	if (json_array_size(res) == 0) {
		fprintf(stderr, "no data\n");
		return;
	}
	json_array_foreach(res, i, e) {
		print_metric(json_object_get(e, "metric"));
		if (strcmp(type, "vector") == 0) {
			printf(" => ");
			print_point(json_object_get(e, "value"));
			printf("\n");
			continue;
		}
		printf("\n");
		size_t j;
		json_t *p;
		json_array_foreach(json_object_get(e, "values"), j, p) {
			printf("  ");
			print_point(p);
			printf("\n");
		}
	}
}

static const char range_usage[] =
	"Usage: ward query range EXPR --start TIME --end TIME --step DURATION [--json]\n"
	"\n"
	"Evaluates a PromQL expression at every step from start to end (at most 11000 points).\n"
	"TIME is RFC 3339 (2026-11-24T10:00:00Z), Unix seconds, or a duration meaning that long\n"
	"ago (1h); --end defaults to now. Needs a viewer token.\n"
	"\n"
	"Options:\n"
	"  --start TIME      first evaluation\n"
	"  --end TIME        last evaluation (default: now)\n"
	"  --step DURATION   15s, 1m, ... (default: 1m)\n"
	"  --json            print the server's data as JSON\n"
	"  -h, --help        show this help\n";

static const char instant_usage[] =
	"Usage: ward query EXPR [--time TIME] [--json]\n"
	"       ward query range EXPR --start TIME [--end TIME] [--step DURATION] [--json]\n"
	"\n"
	"Evaluates a PromQL expression on the server, as Prometheus' /api/v1/query does.\n"
	"TIME is RFC 3339, Unix seconds, or a duration meaning that long ago (5m). Needs a\n"
	"viewer token.\n"
	"\n"
	"Options:\n"
	"  --time TIME   evaluation time (default: now)\n"
	"  --json        print the server's data as JSON\n"
	"  -h, --help    show this help\n";

/* TIME as RFC 3339 / Unix seconds passes through; a duration becomes now - duration. */
static int fix_time(const char *cmd, const char *opt, const char *in, char out[64])
{
	int64_t ms;
	if (ward_parse_time(in, strlen(in), &ms) == 0) {
		snprintf(out, 64, "%s", in);
		return 0;
	}
	if (ward_parse_duration(in, strlen(in), &ms, NULL) == 0) {
		int64_t t = ward_now_ms() - ms;
		snprintf(out, 64, "%lld.%03lld", (long long)(t / 1000), (long long)(t % 1000));
		return 0;
	}
	return cli_usage_error(cmd, "%s: cannot read \"%s\" as a time or a duration", opt, in);
}

static int run_query(struct cli *cli, const char *path, struct buf *q, bool json)
{
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s?%s", path, buf_cstr(q));
	json_t *data = NULL;
	int rc = cli_api(cli, "GET", buf_cstr(&p), NULL, ROLE_VIEWER, &data);
	buf_free(&p);
	if (rc)
		return rc;
	if (json)
		cli_print_json(data);
	else
		print_result(data);
	json_decref(data);
	return WARD_EXIT_OK;
}

static int query_range(struct cli *cli, int argc, char **argv)
{
	const char *start = NULL, *end = NULL, *step = "1m";
	bool json = false;
	const struct cli_opt opts[] = {{"start", 0, &start, NULL},
				       {"end", 0, &end, NULL},
				       {"step", 0, &step, NULL},
				       {"json", 0, NULL, &json},
				       {NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos = 0, rc;
	if (cli_parse("ward query range", range_usage, CLI_X_ONLINE, argc, argv, opts, pos, 1, &npos,
		      &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error("ward query range", "give one PromQL expression");
	if (!start)
		return cli_usage_error("ward query range", "--start is required");
	char s[64], e[64];
	if ((rc = fix_time("ward query range", "--start", start, s)) != 0)
		return rc;
	if (end && (rc = fix_time("ward query range", "--end", end, e)) != 0)
		return rc;
	if (!end)
		snprintf(e, sizeof(e), "%.3f", (double)ward_now_ms() / 1000.0);
	struct buf q = BUF_INIT;
	cli_query_add(&q, "query", pos[0]);
	cli_query_add(&q, "start", s);
	cli_query_add(&q, "end", e);
	cli_query_add(&q, "step", step);
	rc = run_query(cli, "/api/v1/query_range", &q, json);
	buf_free(&q);
	return rc;
}

static int query_run(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "range") == 0)
		return query_range(cli, argc - 1, argv + 1);
	const char *time = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"time", 0, &time, NULL}, {"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos = 0, rc;
	if (cli_parse("ward query", instant_usage, CLI_X_ONLINE, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error("ward query", "give one PromQL expression");
	struct buf q = BUF_INIT;
	cli_query_add(&q, "query", pos[0]);
	if (time) {
		char t[64];
		if ((rc = fix_time("ward query", "--time", time, t)) != 0) {
			buf_free(&q);
			return rc;
		}
		cli_query_add(&q, "time", t);
	}
	rc = run_query(cli, "/api/v1/query", &q, json);
	buf_free(&q);
	return rc;
}

const struct cli_cmd cli_cmd_query = {
	.name = "query",
	.summary = "evaluate PromQL on the server (instant, or `query range`)",
	.run = query_run,
};
