/* cmd_token.c: `ward token create|list|revoke`, the API tokens of a running server
 * (/api/v1/tokens, admin role).
 *
 * The secret of a created token is printed exactly once, on stdout, alone on its line, so
 * a script can capture it; the advice to store it goes to stderr. revoke also accepts a
 * whole token (it takes the id out of it and never echoes the secret).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define TOKEN_PREFIX     "ward_"
#define TOKEN_ID_HEX     16
#define TOKEN_SECRET_HEX 48

static const char create_usage[] =
        "Usage: ward token create --role ROLE --name NAME [--json]\n"
        "\n"
        "Creates an API token on the server and prints it once: store it now, it cannot be\n"
        "shown again (the server keeps only its hash). Needs an admin token.\n"
        "\n"
        "Options:\n"
        "  -r, --role ROLE  viewer (reads), operator (acts) or admin (manages tokens, config)\n"
        "  -n, --name NAME  a name for the token, unique among active tokens (\"ci\", \"alice\")\n"
        "  --json           print the server's answer as JSON (it includes the token)\n"
        "  -h, --help       show this help\n";

static int token_create(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *role = NULL, *name = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
	        {"role", 'r', &role, NULL},
	        {"name", 'n', &name, NULL},
	        {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	enum http_role r;
	json_t *body, *data;
	char *body_s;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	if (!role || !name)
		return cli_usage_error(argv[0], "both --role and --name are required");
	if (http_role_parse(role, &r) != 0)
		return cli_usage_error(argv[0], "unknown role '%s'; use viewer, operator or admin",
		                       role);
	if (!name[0])
		return cli_usage_error(argv[0], "--name must not be empty");
	body = json_pack("{s:s, s:s}", "name", name, "role", http_role_name(r));
	body_s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	rc = cli_api(cli, "POST", "/api/v1/tokens", body_s, ROLE_ADMIN, &data);
	free(body_s);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
	} else {
		const char *tok = cli_json_str(data, "token", NULL);
		fprintf(stderr, "created token %s \"%s\" with role %s:\n",
		        cli_json_str(data, "id", "?"), cli_json_str(data, "name", name),
		        cli_json_str(data, "role", role));
		printf("%s\n", tok ? tok : "(the server sent no token)");
		fflush(stdout);
		fprintf(stderr, "Store this token now (a password manager, or WARD_TOKEN for the "
		                "CLI): it cannot be shown again.\n");
	}
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char list_usage[] =
        "Usage: ward token list [--json]\n"
        "\n"
        "Lists the server's API tokens, newest first (never their secrets). Needs an admin\n"
        "token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's data as JSON\n"
        "  -h, --help  show this help\n";

static int token_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"ID",      "NAME",      "ROLE",
	                                      "CREATED", "LAST USED", "STATUS"};
	struct cli_table *t;
	json_t *data, *tok;
	size_t i;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = cli_api(cli, "GET", "/api/v1/tokens", NULL, ROLE_ADMIN, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		json_decref(data);
		return WARD_EXIT_OK;
	}
	t = cli_table_new(6, headers);
	json_array_foreach(data, i, tok) {
		char created[64], used[64], status[80];
		const char *revoked = cli_json_str(tok, "revoked", NULL);
		const char *last = cli_json_str(tok, "last_used", NULL);
		cli_fmt_time(cli_json_str(tok, "created", NULL), created);
		if (last)
			cli_fmt_time(last, used);
		else
			snprintf(used, sizeof(used), "never");
		if (revoked) {
			char when[64];
			cli_fmt_time(revoked, when);
			snprintf(status, sizeof(status), "revoked %s", when);
		} else {
			snprintf(status, sizeof(status), "active");
		}
		const char *row[] = {cli_json_str(tok, "id", "?"),
		                     cli_json_str(tok, "name", ""),
		                     cli_json_str(tok, "role", "?"),
		                     created,
		                     used,
		                     status};
		cli_table_add(t, row);
	}
	if (json_array_size(data) == 0)
		fprintf(stderr, "no tokens\n");
	else
		cli_table_print(t, stdout);
	cli_table_free(t);
	json_decref(data);
	return WARD_EXIT_OK;
}

static const char revoke_usage[] =
        "Usage: ward token revoke ID [--json]\n"
        "\n"
        "Revokes an API token by its id (the 16 hex characters shown by 'ward token list').\n"
        "Requests with it are refused from then on. Needs an admin token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's answer as JSON\n"
        "  -h, --help  show this help\n";

static bool is_hex(const char *s, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int token_revoke(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	char id[TOKEN_ID_HEX + 1];
	struct buf path = BUF_INIT;
	json_t *data;
	char when[64];
	size_t len;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "the token id is required");
	len = strlen(pos[0]);
	if (len == strlen(TOKEN_PREFIX) + TOKEN_ID_HEX + TOKEN_SECRET_HEX &&
	    ward_has_prefix(pos[0], TOKEN_PREFIX)) {
		/* A whole token was pasted: its id is the 16 hex after the prefix. */
		memcpy(id, pos[0] + strlen(TOKEN_PREFIX), TOKEN_ID_HEX);
	} else if (len == TOKEN_ID_HEX) {
		memcpy(id, pos[0], TOKEN_ID_HEX);
	} else {
		return cli_usage_error(argv[0],
		                       "'%s' is not a token id (16 hex characters, as shown by "
		                       "'ward token list')",
		                       pos[0]);
	}
	id[TOKEN_ID_HEX] = '\0';
	for (size_t i = 0; i < TOKEN_ID_HEX; i++)
		id[i] = (char)tolower((unsigned char)id[i]);
	if (!is_hex(id, TOKEN_ID_HEX))
		return cli_usage_error(argv[0],
		                       "a token id is 16 hex characters (see 'ward token list')");
	buf_printf(&path, "/api/v1/tokens/%s", id);
	rc = cli_api(cli, "DELETE", buf_cstr(&path), NULL, ROLE_ADMIN, &data);
	buf_free(&path);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
	} else {
		cli_fmt_time(cli_json_str(data, "revoked", NULL), when);
		printf("revoked token %s at %s\n", cli_json_str(data, "id", id), when);
	}
	json_decref(data);
	return WARD_EXIT_OK;
}

static const struct cli_verb token_verbs[] = {
        {"create", "create an API token and print it once", create_usage, CLI_X_ONLINE,
         token_create},
        {"list", "list API tokens", list_usage, CLI_X_ONLINE, token_list},
        {"revoke", "revoke an API token", revoke_usage, CLI_X_ONLINE | CLI_X(WARD_EXIT_NOTFOUND),
         token_revoke},
        {NULL, NULL, NULL, 0, NULL},
};

static int token_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "token", "Manage the API tokens of a running server.", token_verbs,
	                    argc, argv);
}

const struct cli_cmd cli_cmd_token = {"token", "create, list and revoke API tokens", token_run};
