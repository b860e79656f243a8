/* cmd_target.c: `ward target list`, the Prometheus scrape targets of a running server
 * (GET /api/v1/targets with a viewer token): job, URL, health, last scrape, its duration
 * and the last error. --json prints the server's data unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char list_usage[] =
        "Usage: ward target list [--health HEALTH] [--json]\n"
        "\n"
        "Lists the server's scrape targets (the \"scrape\" section of its config) with their\n"
        "health (up, down, unknown), the last scrape, its duration and the last error.\n"
        "Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  --health HEALTH  only targets with this health (up, down, unknown)\n"
        "  --json           print the server's data as JSON\n"
        "  -h, --help       show this help\n";

static int target_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const char *health = NULL;
	const struct cli_opt opts[] = {
	        {"health", 0, &health, NULL},
	        {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	static const char *const headers[] = {"JOB", "URL", "HEALTH", "LAST", "DURATION", "ERROR"};
	json_t *data, *tg;
	size_t i, shown = 0;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	if (health && strcmp(health, "up") != 0 && strcmp(health, "down") != 0 &&
	    strcmp(health, "unknown") != 0)
		return cli_usage_error(argv[0], "--health is up, down or unknown, not '%s'",
		                       health);
	rc = cli_api(cli, "GET", "/api/v1/targets", NULL, ROLE_VIEWER, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	json_t *targets = json_object_get(data, "activeTargets");
	struct cli_table *t = cli_table_new(6, headers);
	json_array_foreach(targets, i, tg) {
		const char *h = cli_json_str(tg, "health", "?");
		if (health && strcmp(h, health) != 0)
			continue;
		char last[64], dur[32];
		const char *ls = cli_json_str(tg, "lastScrape", NULL);
		if (ls && strncmp(ls, "0001-", 5) == 0)
			snprintf(last, sizeof(last), "never");
		else
			cli_fmt_time(ls, last);
		snprintf(dur, sizeof(dur), "%.3fs",
		         json_number_value(json_object_get(tg, "lastScrapeDuration")));
		const char *row[] = {cli_json_str(tg, "scrapePool", "?"),
		                     cli_json_str(tg, "scrapeUrl", "?"),
		                     h,
		                     last,
		                     dur,
		                     cli_json_str(tg, "lastError", "")};
		cli_table_add(t, row);
		shown++;
	}
	if (shown == 0)
		fprintf(stderr,
		        "no targets%s (add them under \"scrape: scrape_configs:\" in the "
		        "config)\n",
		        health ? " with that health" : "");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const struct cli_verb target_verbs[] = {
        {"list", "list scrape targets and their health", list_usage, CLI_X_ONLINE, target_list},
        {NULL, NULL, NULL, 0, NULL},
};

static int target_run_group(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "target", "Prometheus scrape targets of a running server.",
	                    target_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_target = {"target", "list Prometheus scrape targets and their health",
                                       target_run_group};
