/* cmd_incident.c: `ward incident list|show|ack|note|status|close|commander|report`: the
 * incidents of a running server (/api/v1/incidents, src/incident). Reads need a viewer
 * token, changes an operator token; the server audits every change. `report` prints the
 * Markdown post-incident report as is, for a file or a wiki.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char list_usage[] =
        "Usage: ward incident list [--status PHASE|open] [--severity SEVn] [--json]\n"
        "\n"
        "Lists incidents, newest first. Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  --status S    only incidents in this phase (detected, contained, investigating,\n"
        "                remediated, recovered, closed), or 'open' for all but closed\n"
        "  --severity S  only SEV1, SEV2, SEV3 or SEV4\n"
        "  --json        print the server's data as JSON\n"
        "  -h, --help    show this help\n";

static int inc_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const char *status = NULL, *sev = NULL;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json},
	                               {"status", 0, &status, NULL},
	                               {"severity", 0, &sev, NULL},
	                               {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"ID",     "SEVERITY",  "STATUS", "CATEGORY",
	                                      "OPENED", "COMMANDER", "TITLE"};
	int npos, rc;
	json_t *data, *x;
	size_t i;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	struct buf path = BUF_INIT, q = BUF_INIT;
	if (status)
		cli_query_add(&q, "status", status);
	if (sev)
		cli_query_add(&q, "severity", sev);
	buf_puts(&path, "/api/v1/incidents");
	if (q.len)
		buf_printf(&path, "?%s", buf_cstr(&q));
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_VIEWER, &data);
	buf_free(&path);
	buf_free(&q);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	struct cli_table *t = cli_table_new(7, headers);
	json_array_foreach(data, i, x) {
		char opened[64];
		cli_fmt_time(cli_json_str(x, "opened_at", NULL), opened);
		const char *row[] = {cli_json_str(x, "id", "?"),
		                     cli_json_str(x, "severity", "?"),
		                     cli_json_str(x, "status", "?"),
		                     cli_json_str(x, "category", "?"),
		                     opened,
		                     cli_json_str(x, "commander", "-"),
		                     cli_json_str(x, "title", "")};
		cli_table_add(t, row);
	}
	if (json_array_size(data))
		cli_table_print(t, stdout);
	else
		fprintf(stderr, "no incidents\n");
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

/* Appends "/api/v1/incidents/<id>" when id looks like one (INC-12 or 12); 0, or a usage
 * error's exit code. */
static int id_path(const char *cmd, struct buf *path, const char *id) {
	size_t n = strlen(id);
	bool ok = n > 0 && n < 32;
	for (size_t i = 0; i < n && ok; i++)
		ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z') ||
		     (id[i] >= 'a' && id[i] <= 'z') || id[i] == '-';
	if (!ok)
		return cli_usage_error(cmd,
		                       "'%s' is not an incident id (INC-12, as 'ward incident "
		                       "list' shows)",
		                       id);
	buf_printf(path, "/api/v1/incidents/%s", id);
	return 0;
}

static void print_secs(const char *what, json_t *v) {
	if (json_is_number(v)) {
		char d[32];
		ward_fmt_duration((int64_t)(json_number_value(v) * 1000.0), d);
		printf("%-20s %s\n", what, d);
	}
}

static void print_incident(json_t *x) {
	char t[64];
	printf("%s: %s\n", cli_json_str(x, "id", "?"), cli_json_str(x, "title", ""));
	printf("%-20s %s\n", "severity:", cli_json_str(x, "severity", "?"));
	printf("%-20s %s\n", "category:", cli_json_str(x, "category", "?"));
	printf("%-20s %s\n", "status:", cli_json_str(x, "status", "?"));
	printf("%-20s %s\n", "commander:", cli_json_str(x, "commander", "-"));
	cli_fmt_time(cli_json_str(x, "opened_at", NULL), t);
	printf("%-20s %s by %s\n", "opened:", t, cli_json_str(x, "opened_by", "?"));
	if (json_is_string(json_object_get(x, "acked_at"))) {
		cli_fmt_time(cli_json_str(x, "acked_at", NULL), t);
		printf("%-20s %s by %s\n", "acknowledged:", t, cli_json_str(x, "acked_by", "?"));
	}
	print_secs("time to acknowledge:", json_object_get(x, "time_to_acknowledge_seconds"));
	print_secs("time to recover:", json_object_get(x, "time_to_recover_seconds"));
	size_t i;
	json_t *e;
	json_t *alerts = json_object_get(x, "alerts");
	if (json_array_size(alerts)) {
		printf("\nalerts:\n");
		json_array_foreach(alerts, i, e) {
			printf("  %s %-8s %s\n", cli_json_str(e, "fingerprint", "?"),
			       json_is_true(json_object_get(e, "firing")) ? "firing" : "resolved",
			       cli_json_str(json_object_get(e, "labels"), "alertname", "?"));
		}
	}
	printf("\ntimeline:\n");
	json_array_foreach(json_object_get(x, "timeline"), i, e) {
		cli_fmt_time(cli_json_str(e, "at", NULL), t);
		/* a note may hold newlines or terminal escapes: one line each, printable */
		char *text = ward_strdup(cli_json_str(e, "text", ""));
		for (char *c = text; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = ' ';
		printf("  %s  %-14s %s  (%s)\n", t, cli_json_str(e, "kind", "?"), text,
		       cli_json_str(e, "actor", "?"));
		free(text);
	}
}

static const char show_usage[] =
        "Usage: ward incident show ID [--json]\n"
        "\n"
        "Shows an incident (INC-12 or 12): its fields, alerts and timeline. Needs a viewer\n"
        "token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's data as JSON\n"
        "  -h, --help  show this help\n";

static int inc_show(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos, rc;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "the incident id is required (INC-12)");
	struct buf path = BUF_INIT;
	if ((rc = id_path(argv[0], &path, pos[0])) != 0) {
		buf_free(&path);
		return rc;
	}
	json_t *data;
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_VIEWER, &data);
	buf_free(&path);
	if (rc)
		return rc;
	if (json)
		cli_print_json(data);
	else
		print_incident(data);
	json_decref(data);
	return WARD_EXIT_OK;
}

/* POST /api/v1/incidents/<id>/<action> with body; prints a one-line result. */
static int post_action(struct cli *cli, const char *cmd, const char *id, const char *action,
                       json_t *body, bool json) {
	struct buf path = BUF_INIT;
	int rc;
	if ((rc = id_path(cmd, &path, id)) != 0) {
		buf_free(&path);
		json_decref(body);
		return rc;
	}
	buf_printf(&path, "/%s", action);
	char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	json_t *data;
	rc = cli_api(cli, "POST", buf_cstr(&path), b, ROLE_OPERATOR, &data);
	free(b);
	buf_free(&path);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
	} else {
		printf("%s: %s", cli_json_str(data, "id", id), cli_json_str(data, "status", "?"));
		json_t *tta = json_object_get(data, "time_to_acknowledge_seconds");
		if (strcmp(action, "ack") == 0 && json_is_number(tta)) {
			char d[32];
			ward_fmt_duration((int64_t)(json_number_value(tta) * 1000.0), d);
			printf(", acknowledged by %s after %s", cli_json_str(data, "acked_by", "?"),
			       d);
		}
		printf("\n");
	}
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char ack_usage[] =
        "Usage: ward incident ack ID [--json]\n"
        "\n"
        "Acknowledges an incident: records who and the time to acknowledge, and stops the\n"
        "escalation of its firing alerts. Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  --json      print the incident as JSON\n"
        "  -h, --help  show this help\n";

static const char close_usage[] =
        "Usage: ward incident close ID [--json]\n"
        "\n"
        "Closes an incident (its last phase; it cannot be reopened). Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  --json      print the incident as JSON\n"
        "  -h, --help  show this help\n";

static int one_id(const struct cli_verb *v, int argc, char **argv, bool *json, const char **id,
                  int *rc) {
	const struct cli_opt opts[] = {{"json", 0, NULL, json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, rc))
		return 1;
	if (npos != 1) {
		*rc = cli_usage_error(argv[0], "the incident id is required (INC-12)");
		return 1;
	}
	*id = pos[0];
	return 0;
}

static int inc_ack(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const char *id;
	int rc;
	if (one_id(v, argc, argv, &json, &id, &rc))
		return rc;
	return post_action(cli, argv[0], id, "ack", NULL, json);
}

static int inc_close(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const char *id;
	int rc;
	if (one_id(v, argc, argv, &json, &id, &rc))
		return rc;
	return post_action(cli, argv[0], id, "close", NULL, json);
}

static const char note_usage[] =
        "Usage: ward incident note ID TEXT [--json]\n"
        "\n"
        "Adds a note to an incident's timeline (quote TEXT). Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  --json      print the incident as JSON\n"
        "  -h, --help  show this help\n";

static const char status_usage[] =
        "Usage: ward incident status ID PHASE [--json]\n"
        "\n"
        "Moves an incident to a later phase: contained, investigating, remediated, recovered\n"
        "or closed (phases only move forward). Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  --json      print the incident as JSON\n"
        "  -h, --help  show this help\n";

static const char commander_usage[] = "Usage: ward incident commander ID NAME [--json]\n"
                                      "\n"
                                      "Sets the incident commander. Needs an operator token.\n"
                                      "\n"
                                      "Options:\n"
                                      "  --json      print the incident as JSON\n"
                                      "  -h, --help  show this help\n";

static int two_args(struct cli *cli, const struct cli_verb *v, int argc, char **argv,
                    const char *action, const char *key, const char *what) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[2];
	int npos, rc;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 2, &npos, &rc))
		return rc;
	if (npos != 2)
		return cli_usage_error(argv[0], "the incident id and the %s are required", what);
	return post_action(cli, argv[0], pos[0], action, json_pack("{s:s}", key, pos[1]), json);
}

static int inc_note(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	return two_args(cli, v, argc, argv, "note", "text", "note text");
}
static int inc_status(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	return two_args(cli, v, argc, argv, "status", "status", "phase");
}
static int inc_commander(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	return two_args(cli, v, argc, argv, "commander", "commander", "commander's name");
}

static const char report_usage[] =
        "Usage: ward incident report ID\n"
        "\n"
        "Prints the post-incident report of an incident as Markdown: summary, impact, time to\n"
        "acknowledge and to recover, phases, timeline, alerts, notes and an action items\n"
        "section to fill in. Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n";

static int inc_report(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const struct cli_opt opts[] = {{NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos, rc;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "the incident id is required (INC-12)");
	struct buf path = BUF_INIT;
	if ((rc = id_path(argv[0], &path, pos[0])) != 0) {
		buf_free(&path);
		return rc;
	}
	buf_puts(&path, "/report?format=json");
	json_t *data;
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_VIEWER, &data);
	buf_free(&path);
	if (rc)
		return rc;
	fputs(cli_json_str(data, "markdown", ""), stdout);
	json_decref(data);
	return WARD_EXIT_OK;
}

#define X_ONE (CLI_X_ONLINE | CLI_X(WARD_EXIT_NOTFOUND))
static const struct cli_verb inc_verbs[] = {
        {"list", "list incidents", list_usage, CLI_X_ONLINE, inc_list},
        {"show", "show an incident with its timeline", show_usage, X_ONE, inc_show},
        {"ack", "acknowledge an incident", ack_usage, X_ONE, inc_ack},
        {"note", "add a note to an incident's timeline", note_usage, X_ONE, inc_note},
        {"status", "move an incident to a later phase", status_usage, X_ONE, inc_status},
        {"close", "close an incident", close_usage, X_ONE, inc_close},
        {"commander", "set an incident's commander", commander_usage, X_ONE, inc_commander},
        {"report", "print the post-incident report (Markdown)", report_usage, X_ONE, inc_report},
        {NULL, NULL, NULL, 0, NULL},
};

static int inc_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "incident", "Incidents: their phases, timelines and reports.",
	                    inc_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_incident = {"incident", "list, follow and report incidents", inc_run};
