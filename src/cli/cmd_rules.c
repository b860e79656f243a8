/* cmd_rules.c: `ward rules check FILE...` and `ward rules test FILE...`, offline rule
 * tooling as promtool's `check rules` and `test rules`.
 *
 * check loads each rule file with the same loader the daemon uses and prints
 * file:line:col problems; test runs promtool's rule unit-test format on an in-memory
 * store. Both exit 0 when every file passed, 1 otherwise (2 for bad usage).
 */
#include <stdio.h>
#include <string.h>

#include "alert/alert.h"
#include "cli/cli.h"

static const char check_usage[] =
	"Usage: ward rules check FILE...\n"
	"\n"
	"Checks Prometheus rule files (groups, alerting and recording rules, PromQL, templates)\n"
	"without a server, as `promtool check rules` does; problems are printed as\n"
	"file:line:col.\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n";

static const char test_usage[] =
	"Usage: ward rules test FILE...\n"
	"\n"
	"Runs rule unit tests in promtool's format (rule_files, evaluation_interval, tests with\n"
	"input_series, alert_rule_test, promql_expr_test) without a server, as `promtool test\n"
	"rules` does.\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n";

#define RULES_MAX_FILES 256

static int rules_check(struct cli *cli, const struct cli_verb *v, int argc, char **argv)
{
	const char *pos[RULES_MAX_FILES];
	int npos = 0, rc;
	const struct cli_opt opts[] = {{NULL, 0, NULL, NULL}};
	if (cli_parse("rules check", v->usage, v->exits, argc, argv, opts, pos, RULES_MAX_FILES,
		      &npos, &rc))
		return rc;
	if (npos == 0)
		return cli_usage_error("rules check", "give at least one rule file");
	int bad = 0;
	for (int i = 0; i < npos; i++) {
		struct ward_err err;
		ward_err_clear(&err);
		printf("Checking %s\n", pos[i]);
		struct alert_ruleset *rs = alert_rules_load(&pos[i], 1, &err);
		if (!rs) {
			printf("  FAILED:\n%s\n\n", err.msg);
			bad++;
			continue;
		}
		printf("  SUCCESS: %zu rules found\n\n", alert_ruleset_nrules(rs));
		alert_ruleset_free(rs);
	}
	return bad ? WARD_EXIT_PROBLEM : WARD_EXIT_OK;
}

static int rules_test(struct cli *cli, const struct cli_verb *v, int argc, char **argv)
{
	const char *pos[RULES_MAX_FILES];
	int npos = 0, rc;
	const struct cli_opt opts[] = {{NULL, 0, NULL, NULL}};
	if (cli_parse("rules test", v->usage, v->exits, argc, argv, opts, pos, RULES_MAX_FILES,
		      &npos, &rc))
		return rc;
	if (npos == 0)
		return cli_usage_error("rules test", "give at least one test file");
	int bad = 0;
	for (int i = 0; i < npos; i++) {
		struct buf out = BUF_INIT;
		bad += alert_unittest_file(pos[i], &out) != 0;
		fputs(buf_cstr(&out), stdout);
		buf_free(&out);
	}
	return bad ? WARD_EXIT_PROBLEM : WARD_EXIT_OK;
}

#define RULES_EXITS (CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_PROBLEM) | CLI_X(WARD_EXIT_USAGE))

static const struct cli_verb rules_verbs[] = {
	{"check", "check rule files (offline)", check_usage, RULES_EXITS, rules_check},
	{"test", "run promtool-format rule unit tests (offline)", test_usage, RULES_EXITS,
	 rules_test},
	{NULL, NULL, NULL, 0, NULL},
};

static int rules_run(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "rules", "Prometheus rule files: check and unit-test them offline",
			    rules_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_rules = {
	.name = "rules",
	.summary = "check and unit-test Prometheus rule files (offline)",
	.run = rules_run,
};
