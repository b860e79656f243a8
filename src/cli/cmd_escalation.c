/* cmd_escalation.c: `ward escalation list|ack|oncall`: the escalations of a running
 * server (/api/v1/escalations), acknowledging one so it stops (POST
 * /api/v1/escalations/<fingerprint>/ack, operator, audited by the server as alert.ack),
 * and who is on call now in each schedule (/api/v1/oncall). `ward alert` belongs to the
 * rules, so acknowledging lives here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char list_usage[] =
        "Usage: ward escalation list [--json]\n"
        "\n"
        "Lists escalations: the alert, its policy, the level reached and whether it was\n"
        "acknowledged or resolved. Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's data as JSON\n"
        "  -h, --help  show this help\n";

static int esc_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"FINGERPRINT", "ALERT", "POLICY",  "LEVEL",
	                                      "STATE",       "SINCE", "ACKED BY"};
	int npos, rc;
	json_t *data, *x;
	size_t i;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = cli_api(cli, "GET", "/api/v1/escalations", NULL, ROLE_VIEWER, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	struct cli_table *t = cli_table_new(7, headers);
	json_array_foreach(data, i, x) {
		char since[64], level[16];
		cli_fmt_time(cli_json_str(x, "started", NULL), since);
		snprintf(level, sizeof(level), "%lld",
		         (long long)json_integer_value(json_object_get(x, "level")));
		const char *row[] = {
		        cli_json_str(x, "fingerprint", "?"),
		        cli_json_str(json_object_get(json_object_get(x, "alert"), "labels"),
		                     "alertname", "?"),
		        cli_json_str(x, "policy", "?"),
		        level,
		        cli_json_str(x, "state", "?"),
		        since,
		        cli_json_str(x, "acked_by", "-")};
		cli_table_add(t, row);
	}
	if (json_array_size(data))
		cli_table_print(t, stdout);
	else
		fprintf(stderr, "no escalations\n");
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char ack_usage[] =
        "Usage: ward escalation ack FINGERPRINT [--json]\n"
        "\n"
        "Acknowledges an alert (its 16 hex fingerprint, from 'ward escalation list'): its\n"
        "escalation stops at the level it reached. Needs an operator token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's answer as JSON\n"
        "  -h, --help  show this help\n";

static int esc_ack(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	int npos, rc;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "the alert fingerprint is required");
	size_t n = strlen(pos[0]);
	bool hex = n == 16;
	for (size_t i = 0; i < n && hex; i++)
		hex = (pos[0][i] >= '0' && pos[0][i] <= '9') ||
		      (pos[0][i] >= 'a' && pos[0][i] <= 'f');
	if (!hex)
		return cli_usage_error(argv[0],
		                       "'%s' is not a fingerprint (16 hex characters, as "
		                       "'ward escalation list' shows)",
		                       pos[0]);
	struct buf path = BUF_INIT;
	buf_printf(&path, "/api/v1/escalations/%s/ack", pos[0]);
	json_t *data;
	rc = cli_api(cli, "POST", buf_cstr(&path), NULL, ROLE_OPERATOR, &data);
	buf_free(&path);
	if (rc)
		return rc;
	if (json)
		cli_print_json(data);
	else
		printf("acknowledged %s at level %lld\n", pos[0],
		       (long long)json_integer_value(json_object_get(data, "level")));
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char oncall_usage[] =
        "Usage: ward escalation oncall [--json]\n"
        "\n"
        "Shows who is on call now in each on-call schedule. Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's data as JSON\n"
        "  -h, --help  show this help\n";

static int esc_oncall(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"SCHEDULE", "ON CALL", "EMAIL", "ROTATION", "ZONE"};
	int npos, rc;
	json_t *data, *x;
	size_t i;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = cli_api(cli, "GET", "/api/v1/oncall", NULL, ROLE_VIEWER, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	struct cli_table *t = cli_table_new(5, headers);
	json_array_foreach(data, i, x) {
		json_t *p = json_object_get(x, "on_call");
		const char *row[] = {cli_json_str(x, "schedule", "?"), cli_json_str(p, "name", "-"),
		                     cli_json_str(p, "email", "-"),
		                     cli_json_str(x, "rotation", "?"),
		                     cli_json_str(x, "time_zone", "?")};
		cli_table_add(t, row);
	}
	if (json_array_size(data))
		cli_table_print(t, stdout);
	else
		fprintf(stderr, "no on-call schedules configured\n");
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const struct cli_verb esc_verbs[] = {
        {"list", "list escalations", list_usage, CLI_X_ONLINE, esc_list},
        {"ack", "acknowledge an alert so its escalation stops", ack_usage,
         CLI_X_ONLINE | CLI_X(WARD_EXIT_NOTFOUND), esc_ack},
        {"oncall", "who is on call now", oncall_usage, CLI_X_ONLINE, esc_oncall},
        {NULL, NULL, NULL, 0, NULL},
};

static int esc_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "escalation", "Escalations, acknowledgements and on-call.",
	                    esc_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_escalation = {"escalation",
                                           "list and acknowledge escalations; "
                                           "who is on call",
                                           esc_run};
