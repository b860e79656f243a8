/* main.c: entry point of the `ward` binary: `ward <noun> <verb> [options]`.
 *
 * The command groups are the table below (name, summary, handler); adding a group is one
 * file exporting a struct cli_cmd plus one line here. main() takes the global options
 * (--url, --token), which may stand anywhere on the line, out of argv before dispatching,
 * and is the only place besides the groups that decides the process exit code
 * (enum ward_exit, listed in `ward --help`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* One line per command group, in the order `ward --help` lists them. */
static const struct cli_cmd *const commands[] = {
        &cli_cmd_serve,
        &cli_cmd_config,
        &cli_cmd_token,
        &cli_cmd_silence,
        &cli_cmd_escalation,
        &cli_cmd_incident,
        &cli_cmd_audit,
        &cli_cmd_backup,
        &cli_cmd_logs,
        &cli_cmd_query,
        &cli_cmd_tsdb,
        &cli_cmd_check,
        &cli_cmd_target,
        &cli_cmd_rules,
        &cli_cmd_alert,
        &cli_cmd_version,
        NULL,
};

static void print_help(FILE *f) {
	fputs("Usage: ward <command> [<subcommand>] [options]\n"
	      "\n"
	      "ward: operations in one binary. `ward serve` runs the daemon; the other commands\n"
	      "manage it, online over its HTTP API or offline on its files.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; commands[i]; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "Global options (before or after the command):\n"
	      "  --url URL      the server to talk to (else $WARD_URL, else url: in the client\n"
	      "                 file, else " CLI_DEFAULT_URL ")\n"
	      "  --token TOKEN  the API token (else $WARD_TOKEN, else token: in the client file)\n"
	      "  -h, --help     show help; works on every command ('ward token create --help')\n"
	      "\n"
	      "Client file: $WARD_CLIENT_CONFIG, else $XDG_CONFIG_HOME/ward/client.yaml, else\n"
	      "~/.config/ward/client.yaml, with the keys url: and token: (keep it mode 600).\n"
	      "HTTPS with a private CA: set $WARD_CACERT to its PEM file.\n"
	      "\n",
	      f);
	cli_print_exit_codes(f, ~0u);
}

/* Removes --url/--token (and their values) from argv, wherever they are, stopping at "--".
 * Returns the new argc, or -1 after printing a usage error. */
static int take_global_opts(struct cli *cli, int argc, char **argv) {
	static const struct {
		const char *name;
		size_t off;
	} globals[] = {
	        {"url", offsetof(struct cli, flag_url)},
	        {"token", offsetof(struct cli, flag_token)},
	};
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool taken = false;

		if (strcmp(a, "--") == 0) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		for (size_t g = 0; g < sizeof(globals) / sizeof(globals[0]) && !taken; g++) {
			const char **slot = (const char **)((char *)cli + globals[g].off);
			size_t n = strlen(globals[g].name);
			if (a[0] != '-' || a[1] != '-' || strncmp(a + 2, globals[g].name, n) != 0)
				continue;
			if (a[2 + n] == '=') {
				*slot = a + 3 + n;
			} else if (a[2 + n] == '\0') {
				if (i + 1 >= argc) {
					fprintf(stderr,
					        "ward: option '--%s' needs a value\n"
					        "run 'ward --help' for usage\n",
					        globals[g].name);
					return -1;
				}
				*slot = argv[++i];
			} else {
				continue;
			}
			if (!(*slot)[0]) {
				fprintf(stderr,
				        "ward: option '--%s' is empty\nrun 'ward --help' for "
				        "usage\n",
				        globals[g].name);
				return -1;
			}
			taken = true;
		}
		if (!taken)
			argv[out++] = argv[i];
	}
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv) {
	struct cli cli = {0};
	const char *names[32];
	size_t n = 0;
	const char *suggestion;
	int rc;

	argc = take_global_opts(&cli, argc, argv);
	if (argc < 0)
		return WARD_EXIT_USAGE;
	if (argc < 2) {
		print_help(stderr);
		fputs("\nward: a command is needed\n", stderr);
		return WARD_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		print_help(stdout);
		return WARD_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		argv[1] = (char *)"version";
	}
	/* "ward help token create" is "ward token create --help". */
	if (strcmp(argv[1], "help") == 0) {
		if (argc == 2) {
			print_help(stdout);
			return WARD_EXIT_OK;
		}
		/* Drop "help" and put "--help" last: argc stays the same. */
		memmove(argv + 1, argv + 2, (size_t)(argc - 2) * sizeof(char *));
		argv[argc - 1] = (char *)"--help";
	}
	for (size_t i = 0; commands[i]; i++) {
		if (strcmp(commands[i]->name, argv[1]) == 0) {
			rc = commands[i]->run(&cli, argc - 1, argv + 1);
			cli_free(&cli);
			fflush(stdout);
			if (ferror(stdout)) {
				fprintf(stderr, "ward: cannot write the output\n");
				return WARD_EXIT_INTERNAL;
			}
			return rc;
		}
		names[n++] = commands[i]->name;
	}
	if (argv[1][0] == '-')
		fprintf(stderr, "ward: unknown option '%s'\n", argv[1]);
	else
		fprintf(stderr, "ward: unknown command '%s'\n", argv[1]);
	suggestion = argv[1][0] != '-' ? cli_suggest(argv[1], names, n) : NULL;
	if (suggestion)
		fprintf(stderr, "did you mean 'ward %s'?\n", suggestion);
	fprintf(stderr, "run 'ward --help'\n");
	return WARD_EXIT_USAGE;
}
