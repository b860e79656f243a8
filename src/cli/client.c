/* client.c: the plumbing every `ward` command shares: option parsing and help, verb
 * dispatch, resolving which server and token to use, calling the API and turning its
 * answers into exit codes, and printing tables, times and JSON.
 *
 * Invariants: the token is never printed or put in a message; every usage error goes to
 * stderr with a hint naming the --help to run and returns WARD_EXIT_USAGE; data goes to
 * stdout, diagnostics to stderr. Called by main.c and the cmd_*.c group files.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "conf/conf.h"

/* ---- help and usage errors ---- */

static const char *const exit_text[] = {
        [WARD_EXIT_OK] = "success",
        [WARD_EXIT_PROBLEM] = "the command ran and found a problem (check or verify failed)",
        [WARD_EXIT_USAGE] = "bad usage, invalid configuration or request; nothing was changed",
        [WARD_EXIT_UNAVAILABLE] = "the server could not be reached or is not ready",
        [WARD_EXIT_DENIED] = "the server refused: no token, bad token or role too low",
        [WARD_EXIT_NOTFOUND] = "the thing named does not exist",
        [WARD_EXIT_INTERNAL] = "an I/O or internal error; see the message",
};

void cli_print_exit_codes(FILE *f, unsigned exits) {
	fputs("Exit codes:\n", f);
	for (size_t i = 0; i < sizeof(exit_text) / sizeof(exit_text[0]); i++)
		if (exits & CLI_X(i))
			fprintf(f, "  %zu  %s\n", i, exit_text[i]);
}

void cli_print_help(FILE *f, const char *usage, unsigned exits) {
	fputs(usage, f);
	if (usage[0] && usage[strlen(usage) - 1] != '\n')
		fputc('\n', f);
	if (exits) {
		fputc('\n', f);
		cli_print_exit_codes(f, exits);
	}
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
	va_list ap;

	fprintf(stderr, "%s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nrun '%s --help' for usage\n", cmd);
	return WARD_EXIT_USAGE;
}

static size_t edit_distance(const char *a, const char *b) {
	size_t la = strlen(a), lb = strlen(b);
	size_t row[64];

	if (la >= 63 || lb >= 63)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *cli_suggest(const char *word, const char *const *names, size_t n) {
	const char *best = NULL;
	size_t best_d = 3; /* more than two edits away is not a typo */

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, names[i]);
		if (word[0] && ward_has_prefix(names[i], word) && d > 1)
			d = 1; /* "tok" for "token" */
		if (d < best_d) {
			best = names[i];
			best_d = d;
		}
	}
	return best;
}

/* ---- options ---- */

static const struct cli_opt *find_long(const struct cli_opt *opts, const char *name, size_t n) {
	for (const struct cli_opt *o = opts; o && o->name; o++)
		if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
			return o;
	return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *opts, char c) {
	for (const struct cli_opt *o = opts; o && o->name; o++)
		if (o->short_name && o->short_name == c)
			return o;
	return NULL;
}

bool cli_parse(const char *cmd, const char *usage, unsigned exits, int argc, char **argv,
               const struct cli_opt *opts, const char **pos, int max_pos, int *npos, int *rc) {
	bool opts_done = false;

	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct cli_opt *o = NULL;
		const char *val = NULL;
		char shortbuf[3] = "-?";

		if (opts_done || a[0] != '-' || a[1] == '\0') {
			if (*npos >= max_pos) {
				*rc = max_pos == 0
				              ? cli_usage_error(cmd, "unexpected argument '%s'", a)
				              : cli_usage_error(cmd, "too many arguments ('%s')",
				                                a);
				return true;
			}
			pos[(*npos)++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cli_print_help(stdout, usage, exits);
			*rc = WARD_EXIT_OK;
			return true;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			o = find_long(opts, name, n);
			if (!o) {
				*rc = cli_usage_error(cmd, "unknown option '--%.*s'", (int)n, name);
				return true;
			}
			if (eq) {
				if (!o->value) {
					*rc = cli_usage_error(cmd, "option '--%s' takes no value",
					                      o->name);
					return true;
				}
				val = eq + 1;
			}
		} else {
			if (a[2] != '\0') {
				*rc = cli_usage_error(cmd,
				                      "unknown option '%s' (long options "
				                      "start with '--')",
				                      a);
				return true;
			}
			o = find_short(opts, a[1]);
			if (!o) {
				*rc = cli_usage_error(cmd, "unknown option '%s'", a);
				return true;
			}
			shortbuf[1] = a[1];
		}
		if (o->value) {
			if (!val) {
				if (i + 1 >= argc) {
					*rc = cli_usage_error(cmd, "option '%s' needs a value",
					                      a[1] == '-' ? a : shortbuf);
					return true;
				}
				val = argv[++i];
			}
			*o->value = val;
		} else if (o->flag) {
			*o->flag = true;
		}
	}
	return false;
}

int cli_dispatch(struct cli *cli, const char *group, const char *group_summary,
                 const struct cli_verb *verbs, int argc, char **argv) {
	char cmd[128];
	const char *names[32];
	size_t n = 0;
	const char *suggestion;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		FILE *f = argc < 2 ? stderr : stdout;
		fprintf(f, "Usage: ward %s <command> [options]\n\n%s\n\nCommands:\n", group,
		        group_summary);
		for (const struct cli_verb *v = verbs; v->name; v++)
			fprintf(f, "  %-10s %s\n", v->name, v->summary);
		fprintf(f, "\nRun 'ward %s <command> --help' for the options of one command.\n",
		        group);
		if (argc < 2) {
			fprintf(stderr, "\nward %s: a command is needed\n", group);
			return WARD_EXIT_USAGE;
		}
		return WARD_EXIT_OK;
	}
	for (const struct cli_verb *v = verbs; v->name; v++) {
		if (strcmp(v->name, argv[1]) == 0) {
			snprintf(cmd, sizeof(cmd), "ward %s %s", group, v->name);
			argv[1] = cmd; /* so the verb's messages name the whole command */
			return v->run(cli, v, argc - 1, argv + 1);
		}
		if (n < sizeof(names) / sizeof(names[0]))
			names[n++] = v->name;
	}
	snprintf(cmd, sizeof(cmd), "ward %s", group);
	suggestion = cli_suggest(argv[1], names, n);
	if (suggestion)
		return cli_usage_error(cmd, "unknown command '%s'; did you mean '%s'?", argv[1],
		                       suggestion);
	return cli_usage_error(cmd, "unknown command '%s'", argv[1]);
}

/* ---- resolving the server ---- */

struct client_file {
	char *url;
	char *token;
};

static const struct conf_field client_file_fields[] = {
        {.key = "url",
         .type = CONF_STR,
         .offset = offsetof(struct client_file, url),
         .help = "base URL of `ward serve`, e.g. http://127.0.0.1:9797"},
        {.key = "token",
         .type = CONF_STR,
         .offset = offsetof(struct client_file, token),
         .flags = CONF_SECRET,
         .help = "API token (ward_...)"},
        {.key = NULL},
};
static const struct conf_schema client_file_schema = {
        .name = "client",
        .size = sizeof(struct client_file),
        .fields = client_file_fields,
};

/* The client file to read, or NULL when there is none. *explicit_path says the user named
 * it with WARD_CLIENT_CONFIG (then a missing file is an error). Returns a new string. */
static char *client_file_path(bool *explicit_path) {
	const char *env = getenv("WARD_CLIENT_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	struct buf p = BUF_INIT;

	*explicit_path = false;
	if (env && env[0]) {
		*explicit_path = true;
		return ward_strdup(env);
	}
	if (xdg && xdg[0])
		buf_printf(&p, "%s/ward/client.yaml", xdg);
	else if (home && home[0])
		buf_printf(&p, "%s/.config/ward/client.yaml", home);
	else
		return NULL;
	if (access(buf_cstr(&p), F_OK) != 0) {
		buf_free(&p);
		return NULL;
	}
	return buf_detach(&p);
}

static const char *nonempty_env(const char *name) {
	const char *v = getenv(name);
	return v && v[0] ? v : NULL;
}

int cli_resolve(struct cli *cli) {
	struct client_file cf = {0};
	struct ward_err err;
	char *path = NULL;
	bool explicit_path = false;
	const char *url = cli->flag_url;
	const char *token = cli->flag_token;
	static char url_from_buf[1024];

	if (cli->resolved)
		return 0;
	cli->url_from = url ? "--url" : NULL;
	if (!url && (url = nonempty_env("WARD_URL")))
		cli->url_from = "WARD_URL";
	if (!token)
		token = nonempty_env("WARD_TOKEN");
	/* A private CA (self-signed server.tls_cert_file): trust it instead of the system's. */
	http_client_set_ca_file(nonempty_env("WARD_CACERT"));
	if (!url || !token) {
		path = client_file_path(&explicit_path);
		if (path) {
			struct stat st;
			ward_err_clear(&err);
			if (explicit_path && access(path, F_OK) != 0) {
				fprintf(stderr,
				        "ward: WARD_CLIENT_CONFIG names %s, which does not exist; "
				        "create it (url: and token:) or unset WARD_CLIENT_CONFIG\n",
				        path);
				free(path);
				return WARD_EXIT_USAGE;
			}
			if (conf_decode_file(path, &client_file_schema, &cf, &err) != 0) {
				fprintf(stderr, "ward: client file %s is invalid:\n%s\n", path,
				        err.msg);
				conf_free_obj(&client_file_schema, &cf);
				free(path);
				return WARD_EXIT_USAGE;
			}
			if (cf.token && stat(path, &st) == 0 && (st.st_mode & 077))
				fprintf(stderr,
				        "ward: warning: %s holds a token but others can read it; "
				        "run 'chmod 600 %s'\n",
				        path, path);
			if (!url && cf.url && cf.url[0]) {
				url = cf.url;
				snprintf(url_from_buf, sizeof(url_from_buf), "%s", path);
				cli->url_from = url_from_buf;
			}
			if (!token && cf.token && cf.token[0])
				token = cf.token;
		}
	}
	if (!url) {
		url = CLI_DEFAULT_URL;
		cli->url_from = "default";
	}
	cli->url = ward_strdup(url);
	/* "http://host:9797/" and "http://host:9797" mean the same server. */
	for (size_t n = strlen(cli->url); n > 0 && cli->url[n - 1] == '/'; n--)
		cli->url[n - 1] = '\0';
	cli->token = token ? ward_strdup(token) : NULL;
	cli->resolved = true;
	if (cf.token)
		explicit_bzero(cf.token, strlen(cf.token));
	conf_free_obj(&client_file_schema, &cf);
	free(path);
	return 0;
}

void cli_free(struct cli *cli) {
	free(cli->url);
	if (cli->token)
		explicit_bzero(cli->token, strlen(cli->token));
	free(cli->token);
	cli->url = cli->token = NULL;
	cli->resolved = false;
}

void cli_query_add(struct buf *q, const char *name, const char *value) {
	char *e;

	if (!value)
		return;
	e = curl_easy_escape(NULL, value, (int)strlen(value));
	if (q->len)
		buf_putc(q, '&');
	buf_printf(q, "%s=%s", name, e ? e : "");
	curl_free(e);
}

/* The first line of a non-JSON body, for messages; at most 200 bytes, control chars out. */
static void body_excerpt(const struct buf *b, char out[208]) {
	size_t n = 0;

	for (size_t i = 0; b->data && i < b->len && n < 200; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if (c == '\n' || c == '\r')
			break;
		out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[n] = '\0';
}

static int status_exit(long status) {
	if (status == 401 || status == 403)
		return WARD_EXIT_DENIED;
	if (status == 404)
		return WARD_EXIT_NOTFOUND;
	if (status == 429 || status == 503)
		return WARD_EXIT_UNAVAILABLE; /* not ready or busy: try again later */
	if (status >= 500)
		return WARD_EXIT_INTERNAL;
	return WARD_EXIT_USAGE; /* 400, 405, 409, 413 and other refusals of the request */
}

int cli_api(struct cli *cli, const char *method, const char *path, const char *body_json,
            enum http_role need, json_t **data) {
	struct http_client_resp resp;
	struct buf url = BUF_INIT;
	json_t *root = NULL, *d;
	json_error_t jerr;
	const char *msg;
	char excerpt[208];
	int rc;

	*data = NULL;
	rc = cli_resolve(cli);
	if (rc)
		return rc;
	buf_printf(&url, "%s%s", cli->url, path);
	if (http_client_do(method, buf_cstr(&url), cli->token,
	                   body_json ? "application/json" : NULL, body_json,
	                   body_json ? strlen(body_json) : 0, CLI_TIMEOUT_MS, &resp) != 0) {
		fprintf(stderr,
		        "ward: cannot reach ward at %s: %s; is `ward serve` running? "
		        "set --url or WARD_URL\n",
		        cli->url, resp.error);
		rc = WARD_EXIT_UNAVAILABLE;
		goto out;
	}
	root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
	if (resp.status >= 200 && resp.status < 300) {
		if (!root || !json_is_object(root) ||
		    !ward_streq(cli_json_str(root, "status", NULL), "success") ||
		    !(d = json_object_get(root, "data"))) {
			body_excerpt(&resp.body, excerpt);
			fprintf(stderr,
			        "ward: %s did not answer like a ward server (HTTP %ld: %s); "
			        "check --url or WARD_URL\n",
			        cli->url, resp.status, excerpt);
			rc = WARD_EXIT_UNAVAILABLE;
			goto out;
		}
		*data = json_incref(d);
		rc = WARD_EXIT_OK;
		goto out;
	}

	rc = status_exit(resp.status);
	msg = root ? cli_json_str(root, "error", NULL) : NULL;
	if (msg) {
		fprintf(stderr, "ward: %s (HTTP %ld)\n", msg, resp.status);
	} else {
		body_excerpt(&resp.body, excerpt);
		fprintf(stderr, "ward: %s %s: HTTP %ld%s%s\n", method, buf_cstr(&url), resp.status,
		        excerpt[0] ? ": " : "", excerpt);
	}
	if (resp.status == 401) {
		if (!cli->token)
			fprintf(stderr,
			        "hint: no token was given; set --token or WARD_TOKEN (or token: in "
			        "~/.config/ward/client.yaml) to a token with role %s or higher\n",
			        http_role_name(need));
		else
			fprintf(stderr,
			        "hint: the token was not accepted (unknown or revoked); set "
			        "--token "
			        "or WARD_TOKEN to a valid token with role %s or higher\n",
			        http_role_name(need));
	} else if (resp.status == 403) {
		fprintf(stderr,
		        "hint: this command needs a token with role %s or higher; set --token or "
		        "WARD_TOKEN to one (an admin can create it with 'ward token create')\n",
		        http_role_name(need));
	} else if (resp.status == 404 && !msg) {
		fprintf(stderr, "hint: is %s a ward server of this version? check --url\n",
		        cli->url);
	} else if (resp.status == 429) {
		fprintf(stderr, "hint: the server is rate limiting this client; try again in a "
		                "few seconds\n");
	}
out:
	json_decref(root);
	buf_free(&url);
	http_client_resp_free(&resp);
	return rc;
}

/* ---- output ---- */

void cli_print_json(json_t *v) {
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
}

const char *cli_json_str(json_t *obj, const char *key, const char *def) {
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : def;
}

void cli_fmt_time(const char *s, char out[64]) {
	int64_t ms;
	time_t t;
	struct tm tm;
	long off;
	size_t n;

	if (!s || !s[0]) {
		snprintf(out, 64, "-");
		return;
	}
	if (ward_parse_time(s, strlen(s), &ms) != 0) {
		snprintf(out, 64, "%s", s);
		return;
	}
	t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	if (!localtime_r(&t, &tm)) {
		snprintf(out, 64, "%s", s);
		return;
	}
	n = strftime(out, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff;
	if (off == 0) {
		snprintf(out + n, 64 - n, "Z");
	} else {
		char sign = off < 0 ? '-' : '+';
		if (off < 0)
			off = -off;
		snprintf(out + n, 64 - n, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
	}
}

struct cli_table {
	size_t ncols;
	size_t nrows; /* including the header row */
	size_t cap;
	char **cells; /* nrows * ncols */
};

struct cli_table *cli_table_new(size_t ncols, const char *const *headers) {
	struct cli_table *t = ward_xcalloc(1, sizeof(*t));
	t->ncols = ncols;
	cli_table_add(t, headers);
	return t;
}

/* Copies a cell, replacing control characters so a hostile name cannot drive the terminal. */
static char *cell_dup(const char *s) {
	char *c = ward_strdup(s ? s : "");
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
}

void cli_table_add(struct cli_table *t, const char *const *cells) {
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = ward_xrealloc(t->cells, t->cap * t->ncols * sizeof(char *));
	}
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = cell_dup(cells[c]);
	t->nrows++;
}

/* Display width: UTF-8 code points, each taken as one column. */
static size_t display_width(const char *s) {
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void cli_table_print(struct cli_table *t, FILE *f) {
	size_t *width = ward_xcalloc(t->ncols, sizeof(size_t));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = display_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			fputs(cell, f);
			if (c + 1 < t->ncols)
				fprintf(f, "%*s", (int)(width[c] - display_width(cell) + 2), "");
		}
		fputc('\n', f);
	}
	free(width);
}

void cli_table_free(struct cli_table *t) {
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
