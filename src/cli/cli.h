/* cli.h: shared plumbing of the `ward` command-line interface (src/cli/), private to it.
 *
 * A command group ("token", "audit") is one file exporting one struct cli_cmd, listed once
 * in main.c's table. A group with verbs dispatches them with cli_dispatch() over its own
 * table of struct cli_verb. Every command parses its options with cli_parse(), which
 * handles -h/--help and reports unknown options the same way everywhere (exit 2).
 * Online commands talk to `ward serve` through cli_api(), which resolves the server URL and
 * token (flags, environment, client file, default) and maps HTTP outcomes to exit codes.
 */
#ifndef WARD_CLI_H
#define WARD_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/base.h"
#include "http/http.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:9797"
/* Every API call of the foundation answers in milliseconds; 30 s means the server is stuck. */
#define CLI_TIMEOUT_MS 30000

/* Global state: the --url/--token flags (NULL when not given) and what they resolve to. */
struct cli {
	const char *flag_url;
	const char *flag_token;
	char *url;            /* resolved by cli_resolve(); owned */
	char *token;          /* resolved; owned; never printed */
	const char *url_from; /* "--url", "WARD_URL", a client file path, or "default" */
	bool resolved;
};

/* A top-level command: "serve", "config", ... run gets argv[0] == name. */
struct cli_cmd {
	const char *name;
	const char *summary;
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* Bits for the "Exit codes" section of a command's help. */
#define CLI_X(code) (1u << (code))
#define CLI_X_ONLINE                                                                   \
	(CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_USAGE) | CLI_X(WARD_EXIT_UNAVAILABLE) | \
	 CLI_X(WARD_EXIT_DENIED) | CLI_X(WARD_EXIT_INTERNAL))

/* A verb of a group: "ward token list". usage is the full help text (usage line, what it
 * does, options); exits selects the exit codes listed after it. */
struct cli_verb {
	const char *name;
	const char *summary;
	const char *usage;
	unsigned exits;
	int (*run)(struct cli *cli, const struct cli_verb *v, int argc, char **argv);
};

/* Runs the verb named by argv[1] of group `group` (argv[0]). Handles no verb, -h/--help
 * and unknown verbs. */
int cli_dispatch(struct cli *cli, const char *group, const char *group_summary,
                 const struct cli_verb *verbs, int argc, char **argv);

/* ---- options ---- */
struct cli_opt {
	const char *name;   /* long name without "--" */
	char short_name;    /* 0 when none */
	const char **value; /* set for options that take a value */
	bool *flag;         /* set for boolean options */
};
/* Parses argv[1..] (argv[0] is the command). Options may come in any order, before or after
 * positional arguments; "--name=value" and "--name value" both work; "--" ends options.
 * Positional arguments are collected in pos (at most max_pos; more is a usage error).
 * Returns true when the caller must return *rc now (help printed: 0; bad usage: 2). */
bool cli_parse(const char *cmd, const char *usage, unsigned exits, int argc, char **argv,
               const struct cli_opt *opts, const char **pos, int max_pos, int *npos, int *rc);
/* Prints the help of a command (usage + exit codes) to f. */
void cli_print_help(FILE *f, const char *usage, unsigned exits);
/* "ward token create: <msg>\nrun 'ward token create --help'" on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) WARD_PRINTF(2, 3);
/* The exit codes table of `ward --help`. */
void cli_print_exit_codes(FILE *f, unsigned exits);
/* Closest name in a NULL-terminated-by-name table, for "did you mean"; NULL when none. */
const char *cli_suggest(const char *word, const char *const *names, size_t n);

/* ---- talking to the server ---- */
/* Resolves url and token once. Returns 0, or an exit code (2) when the client file is
 * broken (message printed). */
int cli_resolve(struct cli *cli);
/* One API call. path starts with "/" and may carry a query string. body_json may be NULL.
 * need is the role the endpoint needs (for the hint on 401/403). On success returns 0 and
 * *data gets a new reference to the envelope's "data" (json_decref it). Otherwise prints
 * the server's error with a hint to stderr and returns the exit code. */
int cli_api(struct cli *cli, const char *method, const char *path, const char *body_json,
            enum http_role need, json_t **data);
/* Appends "name=value&" URL-encoded to a query string being built. */
void cli_query_add(struct buf *q, const char *name, const char *value);
/* Frees what cli_resolve allocated. */
void cli_free(struct cli *cli);

/* ---- output ---- */
/* Pretty JSON to stdout, newline-terminated. */
void cli_print_json(json_t *v);
/* An RFC 3339 time from the server, shown in local time ("2026-11-24T12:51:03+01:00");
 * given text as is when it does not parse; "-" for NULL/null. out has 64 bytes. */
void cli_fmt_time(const char *rfc3339, char out[64]);
/* A string member of a JSON object, or def when absent/not a string. */
const char *cli_json_str(json_t *obj, const char *key, const char *def);

/* A table with aligned columns; cells are copied, control characters shown as '?'. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, const char *const *headers);
void cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

/* ---- the groups (one file each) ---- */
extern const struct cli_cmd cli_cmd_serve;
extern const struct cli_cmd cli_cmd_config;
extern const struct cli_cmd cli_cmd_token;
extern const struct cli_cmd cli_cmd_silence;
extern const struct cli_cmd cli_cmd_escalation;
extern const struct cli_cmd cli_cmd_incident;
extern const struct cli_cmd cli_cmd_audit;
extern const struct cli_cmd cli_cmd_backup;
extern const struct cli_cmd cli_cmd_logs;
extern const struct cli_cmd cli_cmd_query;
extern const struct cli_cmd cli_cmd_tsdb;
extern const struct cli_cmd cli_cmd_check;
extern const struct cli_cmd cli_cmd_target;
extern const struct cli_cmd cli_cmd_rules;
extern const struct cli_cmd cli_cmd_alert;
extern const struct cli_cmd cli_cmd_version;

#endif
