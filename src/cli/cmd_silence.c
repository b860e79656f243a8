/* cmd_silence.c: `ward silence add|list|expire`, silences of a running server through
 * /api/v1/silences (the same handlers as Alertmanager's /api/v2/silences, in ward's envelope); add
 * and expire need an operator token and are audited by the server, list needs a viewer token.
 *
 * Matchers are written as Alertmanager writes them (`alertname=Down`, `job=~"api.*"`);
 * the server parses them, so the CLI and the API accept exactly the same syntax.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define SILENCE_MAX_MATCHERS 32

static const char add_usage[] =
        "Usage: ward silence add MATCHER... [--duration 2h | --end TIME] [--start TIME]\n"
        "                        [--comment TEXT] [--author NAME] [--json]\n"
        "\n"
        "Creates a silence: alerts matching every MATCHER (Alertmanager syntax, such as\n"
        "alertname=Down or 'job=~\"api.*\"') are muted from start to end. Prints its id.\n"
        "Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  -d, --duration D  how long (default 1h; 30m, 2h, 1d)\n"
        "  --start TIME      RFC 3339 start (default now)\n"
        "  --end TIME        RFC 3339 end (instead of --duration)\n"
        "  -c, --comment T   why (shown with the silence)\n"
        "  -a, --author N    who (default: the token's name)\n"
        "  --json            print the server's answer as JSON\n"
        "  -h, --help        show this help\n";

static int silence_add(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *dur = NULL, *start = NULL, *end = NULL, *comment = NULL, *author = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
	        {"duration", 'd', &dur, NULL},  {"start", 0, &start, NULL},
	        {"end", 0, &end, NULL},         {"comment", 'c', &comment, NULL},
	        {"author", 'a', &author, NULL}, {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	const char *pos[SILENCE_MAX_MATCHERS];
	int npos, rc;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, SILENCE_MAX_MATCHERS,
	              &npos, &rc))
		return rc;
	if (npos == 0)
		return cli_usage_error(argv[0],
		                       "give at least one matcher, such as alertname=Down");
	if (dur && end)
		return cli_usage_error(argv[0], "give --duration or --end, not both");
	int64_t start_ms = ward_now_ms(), end_ms;
	struct ward_err err;
	ward_err_clear(&err);
	if (start && ward_parse_time(start, strlen(start), &start_ms) != 0)
		return cli_usage_error(argv[0], "--start '%s' is not an RFC 3339 time", start);
	if (end) {
		if (ward_parse_time(end, strlen(end), &end_ms) != 0)
			return cli_usage_error(argv[0], "--end '%s' is not an RFC 3339 time", end);
	} else {
		int64_t d = 3600000;
		if (dur && ward_parse_duration(dur, strlen(dur), &d, &err) != 0)
			return cli_usage_error(argv[0], "--duration: %s", err.msg);
		end_ms = start_ms + d;
	}
	char s1[32], s2[32];
	ward_fmt_rfc3339(start_ms, s1);
	ward_fmt_rfc3339(end_ms, s2);
	json_t *ms = json_array();
	for (int i = 0; i < npos; i++)
		json_array_append_new(ms, json_string(pos[i]));
	json_t *body = json_pack("{s:o,s:s,s:s,s:s}", "matchers", ms, "startsAt", s1, "endsAt", s2,
	                         "comment", comment ? comment : "");
	if (author)
		json_object_set_new(body, "createdBy", json_string(author));
	char *bs = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	json_t *data;
	rc = cli_api(cli, "POST", "/api/v1/silences", bs, ROLE_OPERATOR, &data);
	free(bs);
	if (rc)
		return rc;
	if (json)
		cli_print_json(data);
	else
		printf("%s\n", cli_json_str(data, "silenceID", "?"));
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char list_usage[] =
        "Usage: ward silence list [--all] [--json]\n"
        "\n"
        "Lists silences: active and pending ones, and with --all the expired ones kept as\n"
        "history. Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  --all       include expired silences\n"
        "  --json      print the server's data as JSON\n"
        "  -h, --help  show this help\n";

static void matchers_text(json_t *ms, struct buf *out) {
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m) {
		bool re = json_is_true(json_object_get(m, "isRegex"));
		json_t *eqv = json_object_get(m, "isEqual");
		bool eq = eqv ? json_is_true(eqv) : true;
		buf_printf(out, "%s%s%s\"%s\"", i ? "," : "", cli_json_str(m, "name", "?"),
		           re ? (eq ? "=~" : "!~") : (eq ? "=" : "!="),
		           cli_json_str(m, "value", ""));
	}
}

static int silence_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false, all = false;
	const struct cli_opt opts[] = {
	        {"json", 0, NULL, &json}, {"all", 0, NULL, &all}, {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"};
	int npos, rc;
	json_t *data, *s;
	size_t i, shown = 0;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = cli_api(cli, "GET", "/api/v1/silences", NULL, ROLE_VIEWER, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	struct cli_table *t = cli_table_new(6, headers);
	json_array_foreach(data, i, s) {
		const char *state = cli_json_str(json_object_get(s, "status"), "state", "?");
		if (!all && strcmp(state, "expired") == 0)
			continue;
		struct buf m = BUF_INIT;
		char ends[64];
		matchers_text(json_object_get(s, "matchers"), &m);
		cli_fmt_time(cli_json_str(s, "endsAt", NULL), ends);
		const char *row[] = {cli_json_str(s, "id", "?"),
		                     state,
		                     buf_cstr(&m),
		                     ends,
		                     cli_json_str(s, "createdBy", ""),
		                     cli_json_str(s, "comment", "")};
		cli_table_add(t, row);
		buf_free(&m);
		shown++;
	}
	if (shown)
		cli_table_print(t, stdout);
	else
		fprintf(stderr, "no silences%s\n", all ? "" : " (add --all for expired ones)");
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char expire_usage[] =
        "Usage: ward silence expire ID\n"
        "\n"
        "Ends a silence now (it is kept as history). Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n";

static int silence_expire(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const struct cli_opt opts[] = {{NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos, rc;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0],
		                       "the silence id is required (see 'ward silence list')");
	for (const char *p = pos[0]; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-'))
			return cli_usage_error(argv[0], "'%s' is not a silence id", pos[0]);
	struct buf path = BUF_INIT;
	buf_printf(&path, "/api/v1/silences/%s", pos[0]);
	json_t *data = NULL;
	rc = cli_api(cli, "DELETE", buf_cstr(&path), NULL, ROLE_OPERATOR, &data);
	buf_free(&path);
	json_decref(data);
	if (rc)
		return rc;
	printf("expired silence %s\n", pos[0]);
	return WARD_EXIT_OK;
}

static const struct cli_verb silence_verbs[] = {
        {"add", "mute alerts matching some matchers for a while", add_usage, CLI_X_ONLINE,
         silence_add},
        {"list", "list silences", list_usage, CLI_X_ONLINE, silence_list},
        {"expire", "end a silence now", expire_usage, CLI_X_ONLINE | CLI_X(WARD_EXIT_NOTFOUND),
         silence_expire},
        {NULL, NULL, NULL, 0, NULL},
};

static int silence_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "silence", "Mute alerts on a running server.", silence_verbs, argc,
	                    argv);
}

const struct cli_cmd cli_cmd_silence = {"silence", "add, list and expire alert silences",
                                        silence_run};
