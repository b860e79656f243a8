/* cmd_rules.c: `ward rules check FILE...` and `ward rules test FILE...`, offline rule
 * tooling as promtool's `check rules` and `test rules`; `ward rules defaults [NAME]` prints
 * the default rule set the daemon loads (to copy, read or feed to promtool).
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

static const char defaults_usage[] =
	"Usage: ward rules defaults [NAME]\n"
	"\n"
	"Prints the default rule set `ward serve` loads unless the config says\n"
	"`rules: {defaults: false}`: every embedded file, or only NAME (host.yml, probes.yml,\n"
	"backup.yml). Each file is a Prometheus rule file: copy one, change it, load it with\n"
	"rules.files and turn the defaults off.\n"
	"\n"
	"Options:\n"
	"  --list       only list the files and their rules\n"
	"  -h, --help   show this help\n";

#define RULES_MAX_FILES 256

static int rules_check(struct cli *cli, const struct cli_verb *v, int argc, char **argv)
{
	const char *pos[RULES_MAX_FILES];
	int npos = 0, rc;
	const struct cli_opt opts[] = {{NULL, 0, NULL, NULL}};
	if (cli_parse("ward rules check", v->usage, v->exits, argc, argv, opts, pos, RULES_MAX_FILES,
		      &npos, &rc))
		return rc;
	if (npos == 0)
		return cli_usage_error("ward rules check", "give at least one rule file");
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
	if (cli_parse("ward rules test", v->usage, v->exits, argc, argv, opts, pos, RULES_MAX_FILES,
		      &npos, &rc))
		return rc;
	if (npos == 0)
		return cli_usage_error("ward rules test", "give at least one test file");
	int bad = 0;
	for (int i = 0; i < npos; i++) {
		struct buf out = BUF_INIT;
		bad += alert_unittest_file(pos[i], &out) != 0;
		fputs(buf_cstr(&out), stdout);
		buf_free(&out);
	}
	return bad ? WARD_EXIT_PROBLEM : WARD_EXIT_OK;
}

static int rules_defaults(struct cli *cli, const struct cli_verb *v, int argc, char **argv)
{
	const char *pos[2];
	int npos = 0, rc;
	bool list = false;
	const struct cli_opt opts[] = {{"list", 0, NULL, &list}, {NULL, 0, NULL, NULL}};
	if (cli_parse("ward rules defaults", v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	size_t n;
	const struct alert_default_file *f = alert_default_files(&n);
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (npos && strcmp(pos[0], f[i].name))
			continue;
		found = true;
		if (!list) {
			if (n > 1 && !npos)
				printf("# ---- %s ----\n", f[i].name);
			fwrite(f[i].data, 1, f[i].len, stdout);
			continue;
		}
		struct ward_err err;
		ward_err_clear(&err);
		struct alert_ruleset *rs = alert_rules_load_buffer(f[i].name, f[i].data, f[i].len, &err);
		if (!rs) {
			fprintf(stderr, "ward rules defaults: %s (a build defect: report it)\n", err.msg);
			return WARD_EXIT_PROBLEM;
		}
		for (size_t g = 0; g < rs->ngroups; g++)
			for (size_t r = 0; r < rs->groups[g].nrules; r++)
				printf("%-12s %-14s %s\n", f[i].name, rs->groups[g].name,
				       rs->groups[g].rules[r].name);
		alert_ruleset_free(rs);
	}
	if (!found) {
		struct buf names = BUF_INIT;
		for (size_t i = 0; i < n; i++)
			buf_printf(&names, "%s%s", i ? ", " : "", f[i].name);
		int r = cli_usage_error("ward rules defaults", "no default rule file %s; there are %s",
					pos[0], buf_cstr(&names));
		buf_free(&names);
		return r;
	}
	return WARD_EXIT_OK;
}

#define RULES_EXITS (CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_PROBLEM) | CLI_X(WARD_EXIT_USAGE))

static const struct cli_verb rules_verbs[] = {
	{"check", "check rule files (offline)", check_usage, RULES_EXITS, rules_check},
	{"test", "run promtool-format rule unit tests (offline)", test_usage, RULES_EXITS,
	 rules_test},
	{"defaults", "print the default rule set the daemon loads", defaults_usage, RULES_EXITS,
	 rules_defaults},
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
