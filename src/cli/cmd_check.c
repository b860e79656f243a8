/* cmd_check.c: `ward check list|run`, the service probes of a running server
 * (GET /api/v1/checks with a viewer token, POST /api/v1/checks/<name>/run with an
 * operator token).
 *
 * `ward check run` exits 0 when the probe succeeded and 1 when it ran and failed, so a
 * script can use it as a health test; --json prints the server's data unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char list_usage[] =
        "Usage: ward check list [--state STATE] [--json]\n"
        "\n"
        "Lists the server's checks (the \"probes\" section of its config) with their state\n"
        "(ok, failing, unknown), since when, and the reason of the last result. Needs a\n"
        "viewer token.\n"
        "\n"
        "Options:\n"
        "  --state STATE  only checks in this state (ok, failing, unknown)\n"
        "  --json         print the server's data as JSON\n"
        "  -h, --help     show this help\n";

static void fmt_last(json_t *chk, char *out, size_t n) {
	json_t *last = json_object_get(chk, "last");
	if (!json_is_object(last)) {
		snprintf(out, n, "not run yet");
		return;
	}
	snprintf(out, n, "%s", cli_json_str(last, "reason", ""));
}

static int check_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const char *state = NULL;
	const struct cli_opt opts[] = {
	        {"state", 0, &state, NULL},
	        {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	static const char *const headers[] = {"NAME", "KIND", "STATE", "SINCE", "FAILS", "LAST"};
	struct buf path = BUF_INIT;
	json_t *data, *chk;
	size_t i;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	if (state && strcmp(state, "ok") != 0 && strcmp(state, "failing") != 0 &&
	    strcmp(state, "unknown") != 0)
		return cli_usage_error(argv[0], "--state is ok, failing or unknown, not '%s'",
		                       state);
	buf_puts(&path, "/api/v1/checks");
	if (state) {
		buf_putc(&path, '?');
		cli_query_add(&path, "state", state);
	}
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_VIEWER, &data);
	buf_free(&path);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	json_t *checks = json_object_get(data, "checks");
	struct cli_table *t = cli_table_new(6, headers);
	json_array_foreach(checks, i, chk) {
		char since[64], fails[32], last[512];
		cli_fmt_time(cli_json_str(chk, "since", NULL), since);
		snprintf(fails, sizeof(fails), "%lld",
		         (long long)json_integer_value(
		                 json_object_get(chk, "consecutive_failures")));
		fmt_last(chk, last, sizeof(last));
		const char *row[] = {cli_json_str(chk, "name", "?"),
		                     cli_json_str(chk, "kind", "?"),
		                     cli_json_str(chk, "state", "?"),
		                     since,
		                     fails,
		                     last};
		cli_table_add(t, row);
	}
	if (json_array_size(checks) == 0)
		fprintf(stderr, "no checks%s (add them under \"probes: checks:\" in the config)\n",
		        state ? " in that state" : "");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char run_usage[] =
        "Usage: ward check run NAME [--json]\n"
        "\n"
        "Runs one check now on the server and prints its result: success or failure, the\n"
        "reason, the duration and the samples it produced. The run counts like a scheduled\n"
        "one (state, history) and is audited as check.run. Needs an operator token.\n"
        "Exits 0 when the check succeeded, 1 when it failed.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's data as JSON\n"
        "  -h, --help  show this help\n";

static int check_run(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	struct buf path = BUF_INIT;
	json_t *data;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0],
		                       "the check's name is required (see 'ward check list')");
	if (!pos[0][0] || strchr(pos[0], '/') || strchr(pos[0], '?') || strchr(pos[0], '%'))
		return cli_usage_error(argv[0], "'%s' is not a check name", pos[0]);
	buf_printf(&path, "/api/v1/checks/%s/run", pos[0]);
	rc = cli_api(cli, "POST", buf_cstr(&path), NULL, ROLE_OPERATOR, &data);
	buf_free(&path);
	if (rc)
		return rc;
	json_t *res = json_object_get(data, "result");
	bool ok = json_is_true(json_object_get(res, "success"));
	if (json) {
		cli_print_json(data);
	} else {
		json_t *chk = json_object_get(data, "check");
		printf("%s %s: %s\n", cli_json_str(chk, "name", pos[0]), ok ? "OK" : "FAILED",
		       cli_json_str(res, "reason", ""));
		printf("  kind %s, target %s, took %.3fs, state %s\n",
		       cli_json_str(chk, "kind", "?"), cli_json_str(chk, "target", "?"),
		       json_number_value(json_object_get(res, "duration_seconds")),
		       cli_json_str(chk, "state", "?"));
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(res, "samples"), i, s) {
			printf("  %s", cli_json_str(s, "name", "?"));
			json_t *ls = json_object_get(s, "labels");
			if (json_object_size(ls) > 0) {
				const char *k;
				json_t *lv;
				bool first = true;
				printf("{");
				json_object_foreach(ls, k, lv) {
					printf("%s%s=\"%s\"", first ? "" : ",", k,
					       json_string_value(lv));
					first = false;
				}
				printf("}");
			}
			json_t *val = json_object_get(s, "value");
			if (json_is_number(val))
				printf(" %g\n", json_number_value(val));
			else
				printf(" %s\n",
				       json_string_value(val) ? json_string_value(val) : "?");
		}
	}
	json_decref(data);
	return ok ? WARD_EXIT_OK : WARD_EXIT_PROBLEM;
}

static const struct cli_verb check_verbs[] = {
        {"list", "list checks with their state", list_usage, CLI_X_ONLINE, check_list},
        {"run", "run one check now and print its result", run_usage,
         CLI_X_ONLINE | CLI_X(WARD_EXIT_PROBLEM) | CLI_X(WARD_EXIT_NOTFOUND), check_run},
        {NULL, NULL, NULL, 0, NULL},
};

static int check_run_group(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "check", "Service checks (probes) of a running server.",
	                    check_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_check = {"check", "list service checks and run one now",
                                      check_run_group};
