/* cmd_alert.c: `ward alert list [--json]`: the server's pending and firing alerts
 * (GET /api/v1/alerts, viewer role), one line each: state, since, labels, summary.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char list_usage[] =
	"Usage: ward alert list [--json]\n"
	"\n"
	"Lists the alerts the server's rules hold pending or firing. Needs a viewer token.\n"
	"\n"
	"Options:\n"
	"  --json       print the server's data as JSON\n"
	"  -h, --help   show this help\n";

static int alert_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv)
{
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	int npos = 0, rc;
	if (cli_parse("alert list", v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	json_t *data = NULL;
	rc = cli_api(cli, "GET", "/api/v1/alerts", NULL, ROLE_VIEWER, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	json_t *alerts = json_object_get(data, "alerts");
	if (json_array_size(alerts) == 0) {
		fprintf(stderr, "no pending or firing alerts\n");
		json_decref(data);
		return WARD_EXIT_OK;
	}
	static const char *const hdr[] = {"STATE", "SINCE", "ALERT", "LABELS", "SUMMARY"};
	struct cli_table *t = cli_table_new(5, hdr);
	size_t i;
	json_t *a;
	json_array_foreach(alerts, i, a) {
		json_t *labels = json_object_get(a, "labels");
		struct buf lb = BUF_INIT;
		const char *k;
		json_t *val;
		json_object_foreach(labels, k, val) {
			if (!strcmp(k, "alertname"))
				continue;
			buf_printf(&lb, "%s%s=%s", lb.len ? "," : "", k, json_string_value(val));
		}
		char since[64];
		cli_fmt_time(cli_json_str(a, "activeAt", NULL), since);
		const char *cells[] = {cli_json_str(a, "state", "?"), since,
				       cli_json_str(labels, "alertname", "?"), buf_cstr(&lb),
				       cli_json_str(json_object_get(a, "annotations"), "summary", "")};
		cli_table_add(t, cells);
		buf_free(&lb);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const struct cli_verb alert_verbs[] = {
	{"list", "pending and firing alerts", list_usage, CLI_X_ONLINE, alert_list},
	{NULL, NULL, NULL, 0, NULL},
};

static int alert_run(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "alert", "alerts of the server's rules", alert_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_alert = {
	.name = "alert",
	.summary = "list the alerts of the server's rules",
	.run = alert_run,
};
