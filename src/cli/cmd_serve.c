/* cmd_serve.c: `ward serve`, which runs the daemon in the foreground until SIGTERM/SIGINT.
 *
 * Only option parsing lives here; the daemon is ward_serve() in src/core. Its return value
 * is already an exit code (enum ward_exit).
 */
#include "cli/cli.h"
#include "core/core.h"

static const char serve_usage[] =
        "Usage: ward serve [--config FILE] [--listen ADDR] [--data DIR]\n"
        "\n"
        "Runs the ward daemon in the foreground until SIGTERM or SIGINT; SIGHUP reloads the\n"
        "configuration. On the first start it creates an admin token and prints it once.\n"
        "\n"
        "Options:\n"
        "  -c, --config FILE  configuration file (default: /etc/ward/ward.yaml if it exists,\n"
        "                     else the embedded default; see 'ward config default')\n"
        "  -l, --listen ADDR  address to listen on, overriding server.listen\n"
        "                     (\"127.0.0.1:9797\", \"[::1]:9797\", \":9797\" for every address)\n"
        "  -d, --data DIR     data directory, overriding storage.data_dir\n"
        "  -h, --help         show this help\n";

static int serve_run(struct cli *cli, int argc, char **argv) {
	struct ward_serve_opts o = {0};
	const struct cli_opt opts[] = {
	        {"config", 'c', &o.config_path, NULL},
	        {"listen", 'l', &o.listen, NULL},
	        {"data", 'd', &o.data_dir, NULL},
	        {NULL, 0, NULL, NULL},
	};
	const unsigned exits = CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_USAGE) |
	                       CLI_X(WARD_EXIT_UNAVAILABLE) | CLI_X(WARD_EXIT_INTERNAL);
	int npos, rc;

	(void)cli;
	if (cli_parse("ward serve", serve_usage, exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	return ward_serve(&o);
}

const struct cli_cmd cli_cmd_serve = {"serve", "run the daemon (foreground)", serve_run};
