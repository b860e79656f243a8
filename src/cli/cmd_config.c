/* cmd_config.c: `ward config check|default|reference|reload`.
 *
 * check, default and reference are offline: they call ward_modules_init() so that every
 * module's config section is registered, exactly as `ward serve` sees them, and never touch
 * the network or the data directory. reload asks a running server (POST /api/v1/reload).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"

#define EMBEDDED_NAME "<embedded default>"

static const char check_usage[] =
        "Usage: ward config check [FILE] [--json]\n"
        "\n"
        "Validates a configuration file offline, with the same checks `ward serve` applies.\n"
        "Without FILE: /etc/ward/ward.yaml if it exists, else the embedded default.\n"
        "Prints \"FILE: ok\", or every problem as file:line:column: key: what is wrong.\n"
        "\n"
        "Options:\n"
        "  --json      print {\"file\":...,\"ok\":true|false,\"errors\":[...]}\n"
        "  -h, --help  show this help\n";

static int config_check(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	const char *path;
	const char *name;
	struct ward_err err;
	struct conf *c;
	int npos, rc;

	(void)cli;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	path = npos ? pos[0] : ward_default_config_path();
	ward_modules_init();
	ward_err_clear(&err);
	if (path && access(path, R_OK) != 0) {
		fprintf(stderr, "%s: cannot read %s: %s; give the path of an existing file\n",
		        argv[0], path, strerror(errno));
		if (json) {
			json_t *o = json_pack("{s:s, s:b, s:[s]}", "file", path, "ok", 0, "errors",
			                      strerror(errno));
			cli_print_json(o);
			json_decref(o);
		}
		return WARD_EXIT_USAGE;
	}
	if (path) {
		name = path;
		c = conf_load_file(path, &err);
	} else {
		name = EMBEDDED_NAME;
		c = conf_load_buffer(EMBEDDED_NAME, conf_embedded_default,
		                     strlen(conf_embedded_default), &err);
	}
	if (c && !ward_err_isset(&err)) {
		conf_unref(c);
		if (json) {
			json_t *o = json_pack("{s:s, s:b, s:[]}", "file", name, "ok", 1, "errors");
			cli_print_json(o);
			json_decref(o);
		} else {
			printf("%s: ok\n", name);
		}
		return WARD_EXIT_OK;
	}
	conf_unref(c);
	if (!ward_err_isset(&err))
		ward_err_set(&err, "%s: the configuration was rejected without a reason", name);
	if (json) {
		json_t *errors = json_array();
		const char *line = err.msg;
		while (*line) {
			const char *nl = strchr(line, '\n');
			size_t n = nl ? (size_t)(nl - line) : strlen(line);
			if (n)
				json_array_append_new(errors, json_stringn(line, n));
			line += n + (nl ? 1 : 0);
		}
		json_t *o = json_pack("{s:s, s:b, s:o}", "file", name, "ok", 0, "errors", errors);
		cli_print_json(o);
		json_decref(o);
	} else {
		fprintf(stderr, "%s\n", err.msg);
		fprintf(stderr,
		        "%s: invalid configuration; fix the lines above and run "
		        "'ward config check' again\n",
		        name);
	}
	return WARD_EXIT_USAGE;
}

static const char default_usage[] =
        "Usage: ward config default\n"
        "\n"
        "Prints the embedded default configuration (what `ward serve` uses without a file),\n"
        "a starting point for /etc/ward/ward.yaml:\n"
        "  ward config default > /etc/ward/ward.yaml\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n";

static int config_default(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	int npos, rc;

	(void)cli;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, NULL, NULL, 0, &npos, &rc))
		return rc;
	fputs(conf_embedded_default, stdout);
	return WARD_EXIT_OK;
}

static const char reference_usage[] =
        "Usage: ward config reference\n"
        "\n"
        "Prints the configuration reference (every section and key, its type, default and\n"
        "meaning) as Markdown, generated from the schemas the modules register.\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n";

static int config_reference(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	struct buf out = BUF_INIT;
	int npos, rc;

	(void)cli;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, NULL, NULL, 0, &npos, &rc))
		return rc;
	ward_modules_init();
	conf_write_reference(&out);
	fwrite(buf_cstr(&out), 1, out.len, stdout);
	buf_free(&out);
	return WARD_EXIT_OK;
}

static const char reload_usage[] =
        "Usage: ward config reload [--json] [--url URL] [--token TOKEN]\n"
        "\n"
        "Asks the running server to reload its configuration from where it came from (as\n"
        "SIGHUP does). If the new configuration is invalid the server keeps the old one and\n"
        "this command prints why. Needs an admin token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's answer as JSON\n"
        "  -h, --help  show this help\n";

static int config_reload(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	json_t *data;
	char when[64];
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = cli_api(cli, "POST", "/api/v1/reload", NULL, ROLE_ADMIN, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
	} else {
		cli_fmt_time(cli_json_str(data, "loaded_at", NULL), when);
		printf("configuration reloaded from %s (loaded at %s)\n",
		       cli_json_str(data, "source", "?"), when);
	}
	json_decref(data);
	return WARD_EXIT_OK;
}

static const struct cli_verb config_verbs[] = {
        {"check", "validate a configuration file (offline)", check_usage,
         CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_USAGE), config_check},
        {"default", "print the embedded default configuration", default_usage,
         CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_USAGE), config_default},
        {"reference", "print the configuration reference (Markdown)", reference_usage,
         CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_USAGE), config_reference},
        {"reload", "make the running server reload its configuration", reload_usage, CLI_X_ONLINE,
         config_reload},
        {NULL, NULL, NULL, 0, NULL},
};

static int config_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "config", "Check, show and reload ward's configuration.",
	                    config_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_config = {"config", "check, show and reload the configuration",
                                       config_run};
