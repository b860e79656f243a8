/* conf_load.c: unit tests for loading ward.yaml against registered section schemas.
 *
 * A test schema uses every field type, nested objects and lists; the tests pin the exact
 * "file:line:col: key.path: ..." of each kind of mistake, env substitution, defaults,
 * reference counting and the hostile-input limits (billion laughs, deep nesting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"

struct t_limits {
	int64_t burst;
	double ratio;
};

struct t_token {
	char *name;
	char *secret;
	char **roles;
	size_t nroles;
};

struct t_server {
	char *listen;
	int64_t port;
	double ratio;
	bool tls;
	int64_t timeout_ms;
	int64_t max_body;
	int mode;
	char **hosts;
	size_t nhosts;
	struct conf_kv *labels;
	size_t nlabels;
	struct t_limits limits;
	struct t_token *tokens;
	size_t ntokens;
	int64_t password;
};

struct t_log {
	int level;
	int format;
};

struct t_storage {
	char *data_dir;
	char *name;
};

static const char *const mode_names[] = {"fast", "safe", "paranoid", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"auto", "logfmt", "json", NULL};

static const struct conf_field limits_fields[] = {
        {.key = "burst",
         .type = CONF_INT,
         .offset = offsetof(struct t_limits, burst),
         .defval = "10",
         .flags = CONF_RANGE,
         .min = 1,
         .max = 1000,
         .help = "burst"},
        {.key = "ratio",
         .type = CONF_FLOAT,
         .offset = offsetof(struct t_limits, ratio),
         .defval = "0.5",
         .help = "ratio"},
        {0},
};
static const struct conf_schema limits_schema = {"limits", sizeof(struct t_limits), limits_fields,
                                                 NULL};

static const struct conf_field token_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = offsetof(struct t_token, name),
         .flags = CONF_REQUIRED,
         .help = "token name"},
        {.key = "secret",
         .type = CONF_STR,
         .offset = offsetof(struct t_token, secret),
         .flags = CONF_SECRET,
         .help = "the token"},
        {.key = "roles",
         .type = CONF_STRLIST,
         .offset = offsetof(struct t_token, roles),
         .count_offset = offsetof(struct t_token, nroles),
         .help = "roles"},
        {0},
};
static const struct conf_schema token_schema = {"token", sizeof(struct t_token), token_fields,
                                                NULL};

static int validate_calls;
static struct conf_pos validate_pos;

static int server_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct t_server *s = obj;

	validate_calls++;
	validate_pos = *pos;
	if (s->port == 13) {
		conf_error_at(err, pos, "server.port: 13 is unlucky; pick another");
		return -1;
	}
	return 0;
}

static const struct conf_field server_fields[] = {
        {.key = "listen",
         .type = CONF_STR,
         .offset = offsetof(struct t_server, listen),
         .defval = "127.0.0.1:9797",
         .help = "address"},
        {.key = "port",
         .type = CONF_INT,
         .offset = offsetof(struct t_server, port),
         .defval = "9797",
         .flags = CONF_RANGE,
         .min = 1,
         .max = 65535,
         .help = "port"},
        {.key = "ratio",
         .type = CONF_FLOAT,
         .offset = offsetof(struct t_server, ratio),
         .defval = "1.5",
         .help = "ratio"},
        {.key = "tls", .type = CONF_BOOL, .offset = offsetof(struct t_server, tls), .help = "tls"},
        {.key = "timeout",
         .type = CONF_DURATION,
         .offset = offsetof(struct t_server, timeout_ms),
         .defval = "30s",
         .flags = CONF_RANGE,
         .min = 1000,
         .max = 3600000,
         .help = "timeout"},
        {.key = "max_body",
         .type = CONF_SIZE,
         .offset = offsetof(struct t_server, max_body),
         .defval = "1MiB",
         .help = "body"},
        {.key = "mode",
         .type = CONF_ENUM,
         .offset = offsetof(struct t_server, mode),
         .defval = "safe",
         .enum_names = mode_names,
         .help = "mode"},
        {.key = "hosts",
         .type = CONF_STRLIST,
         .offset = offsetof(struct t_server, hosts),
         .count_offset = offsetof(struct t_server, nhosts),
         .defval = "[a, b]",
         .help = "hosts"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = offsetof(struct t_server, labels),
         .count_offset = offsetof(struct t_server, nlabels),
         .help = "labels"},
        {.key = "limits",
         .type = CONF_OBJ,
         .offset = offsetof(struct t_server, limits),
         .sub = &limits_schema,
         .help = "limits"},
        {.key = "tokens",
         .type = CONF_OBJLIST,
         .offset = offsetof(struct t_server, tokens),
         .count_offset = offsetof(struct t_server, ntokens),
         .sub = &token_schema,
         .help = "tokens"},
        {.key = "password",
         .type = CONF_INT,
         .offset = offsetof(struct t_server, password),
         .flags = CONF_SECRET,
         .help = "secret (an int, to provoke errors)"},
        {0},
};
static const struct conf_schema server_schema = {"server", sizeof(struct t_server), server_fields,
                                                 server_validate};

static const struct conf_field log_fields[] = {
        {.key = "level",
         .type = CONF_ENUM,
         .offset = offsetof(struct t_log, level),
         .defval = "info",
         .enum_names = level_names},
        {.key = "format",
         .type = CONF_ENUM,
         .offset = offsetof(struct t_log, format),
         .defval = "auto",
         .enum_names = format_names},
        {0},
};
static const struct conf_schema log_schema = {"log", sizeof(struct t_log), log_fields, NULL};

static const struct conf_field storage_fields[] = {
        {.key = "data_dir",
         .type = CONF_STR,
         .offset = offsetof(struct t_storage, data_dir),
         .defval = "${WARD_DATA:-./ward-data}"},
        {.key = "name",
         .type = CONF_STR,
         .offset = offsetof(struct t_storage, name),
         .flags = CONF_REQUIRED},
        {0},
};
static const struct conf_schema storage_schema = {"storage", sizeof(struct t_storage),
                                                  storage_fields, NULL};

static int setup(void **state) {
	conf_reset_registry();
	assert_int_equal(conf_register_section(&server_schema), 0);
	assert_int_equal(conf_register_section(&log_schema), 0);
	assert_int_equal(conf_register_section(&storage_schema), 0);
	unsetenv("WARD_DATA");
	unsetenv("CONF_T_UNSET");
	validate_calls = 0;
	return 0;
}

static struct conf *load(const char *text, struct ward_err *err) {
	return conf_load_buffer("t.yaml", text, strlen(text), err);
}

/* Loads text expecting failure; returns the error message. */
static const char *load_fail(const char *text, struct ward_err *err) {
	struct conf *c = load(text, err);

	if (c)
		fail_msg("expected an error loading:\n%s", text);
	assert_true(ward_err_isset(err));
	return err->msg;
}

static void empty_file_gives_all_defaults(void **state) {
	struct ward_err err;
	struct conf *c = load("", &err);
	const struct t_server *s;
	const struct t_log *l;
	const struct t_storage *st;

	assert_non_null(c);
	s = conf_section(c, "server");
	assert_non_null(s);
	assert_string_equal(s->listen, "127.0.0.1:9797");
	assert_int_equal(s->port, 9797);
	assert_true(s->ratio == 1.5);
	assert_false(s->tls);
	assert_int_equal(s->timeout_ms, 30000);
	assert_int_equal(s->max_body, 1048576);
	assert_int_equal(s->mode, 1);
	assert_int_equal(s->nhosts, 2);
	assert_string_equal(s->hosts[1], "b");
	assert_int_equal(s->nlabels, 0);
	assert_int_equal(s->limits.burst, 10);
	assert_true(s->limits.ratio == 0.5);
	assert_int_equal(s->ntokens, 0);
	l = conf_section(c, "log");
	assert_int_equal(l->level, 1);
	st = conf_section(c, "storage");
	assert_string_equal(st->data_dir, "./ward-data");
	assert_null(st->name); /* required only when the section is written */
	assert_null(conf_section(c, "nope"));
	assert_string_equal(conf_source(c), "t.yaml");
	assert_int_equal(validate_calls, 1);
	conf_unref(c);

	c = load("# only a comment\n---\n", &err);
	assert_non_null(c);
	conf_unref(c);
}

static void every_type_decodes(void **state) {
	struct ward_err err;
	struct conf *c = load("server:\n"
	                      "  listen: 0.0.0.0:80\n"
	                      "  port: 8080\n"
	                      "  ratio: -2.25\n"
	                      "  tls: yes\n"
	                      "  timeout: 1m30s\n"
	                      "  max_body: 10KB\n"
	                      "  mode: Paranoid\n"
	                      "  hosts: [x, \"y\", 'z']\n"
	                      "  labels: {env: prod, team: \"ops\", empty: }\n"
	                      "  limits:\n"
	                      "    burst: 99\n"
	                      "  tokens:\n"
	                      "    - name: ci\n"
	                      "      secret: s3cr3t\n"
	                      "      roles: admin\n"
	                      "    - name: ro\n"
	                      "      roles: [reader, auditor]\n"
	                      "storage:\n"
	                      "  name: main\n",
	                      &err);
	const struct t_server *s;

	if (!c)
		fail_msg("%s", err.msg);
	s = conf_section(c, "server");
	assert_string_equal(s->listen, "0.0.0.0:80");
	assert_int_equal(s->port, 8080);
	assert_true(s->ratio == -2.25);
	assert_true(s->tls);
	assert_int_equal(s->timeout_ms, 90000);
	assert_int_equal(s->max_body, 10000);
	assert_int_equal(s->mode, 2);
	assert_int_equal(s->nhosts, 3);
	assert_string_equal(s->hosts[0], "x");
	assert_string_equal(s->hosts[2], "z");
	assert_int_equal(s->nlabels, 3);
	assert_string_equal(s->labels[0].key, "env");
	assert_string_equal(s->labels[1].value, "ops");
	assert_string_equal(s->labels[2].value, "");
	assert_int_equal(s->limits.burst, 99);
	assert_true(s->limits.ratio == 0.5); /* nested default */
	assert_int_equal(s->ntokens, 2);
	assert_string_equal(s->tokens[0].name, "ci");
	assert_string_equal(s->tokens[0].secret, "s3cr3t");
	assert_int_equal(s->tokens[0].nroles, 1); /* a scalar is a one-element list */
	assert_string_equal(s->tokens[0].roles[0], "admin");
	assert_int_equal(s->tokens[1].nroles, 2);
	assert_string_equal(s->tokens[1].roles[1], "auditor");
	assert_null(s->tokens[1].secret);
	assert_string_equal(((const struct t_storage *)conf_section(c, "storage"))->name, "main");
	conf_unref(c);
}

static void bool_accepts_yaml11_words(void **state) {
	const char *yes[] = {"true", "True", "yes", "on", "ON"};
	const char *no[] = {"false", "no", "off", "Off"};
	char text[64];
	struct ward_err err;

	for (size_t i = 0; i < 5 + 4; i++) {
		struct conf *c;
		bool want = i < 5;

		snprintf(text, sizeof(text), "server:\n  tls: %s\n", want ? yes[i] : no[i - 5]);
		c = load(text, &err);
		assert_non_null(c);
		assert_int_equal(((const struct t_server *)conf_section(c, "server"))->tls, want);
		conf_unref(c);
	}
}

static void unknown_key_names_position_path_and_suggestion(void **state) {
	struct ward_err err;

	assert_string_equal(
	        load_fail("server:\n  limits:\n    brust: 5\n", &err),
	        "t.yaml:3:5: server.limits.brust: unknown key (did you mean \"burst\"?); "
	        "known keys here: burst, ratio");
}

static void unknown_section_lists_known_sections(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("log:\n  level: info\nmetrics: {}\n", &err),
	                    "t.yaml:3:1: metrics: unknown section; known sections: server, log, "
	                    "storage");
}

static void wrong_type_names_key_and_value(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("server:\n  limits:\n    burst: lots\n", &err),
	                    "t.yaml:3:5: server.limits.burst: expected an integer, got \"lots\"");
	assert_string_equal(load_fail("server:\n  listen: [a, b]\n", &err),
	                    "t.yaml:2:3: server.listen: expected a string, got a list");
	assert_string_equal(load_fail("server: 5\n", &err),
	                    "t.yaml:1:1: server: expected a mapping (key: value lines), got \"5\"");
	assert_string_equal(
	        load_fail("server:\n  tls: maybe\n", &err),
	        "t.yaml:2:3: server.tls: expected true or false (or yes/no, on/off), got "
	        "\"maybe\"");
	assert_string_equal(load_fail("server:\n  tokens:\n    - name: a\n    - x\n", &err),
	                    "t.yaml:4:7: server.tokens[1]: expected a mapping, got \"x\"");
}

static void out_of_range_names_limits(void **state) {
	struct ward_err err;

	assert_string_equal(
	        load_fail("server:\n  port: 70000\n", &err),
	        "t.yaml:2:3: server.port: \"70000\" is out of range; it must be between "
	        "1 and 65535");
	assert_string_equal(
	        load_fail("server:\n  timeout: 2h\n", &err),
	        "t.yaml:2:3: server.timeout: \"2h\" is out of range; it must be between "
	        "1s and 1h");
}

static void bad_duration_is_explained(void **state) {
	struct ward_err err;
	const char *msg = load_fail("log:\n  level: info\nserver:\n  timeout: 5 minutes\n", &err);

	assert_true(ward_has_prefix(msg, "t.yaml:4:3: server.timeout: invalid duration "
	                                 "\"5 minutes\""));
	assert_null(strchr(msg, '\n'));
}

static void enum_error_lists_allowed_names(void **state) {
	struct ward_err err;

	assert_string_equal(
	        load_fail("log:\n  format: xml\n", &err),
	        "t.yaml:2:3: log.format: expected one of auto, logfmt, json, got \"xml\"");
}

static void missing_env_var_is_named(void **state) {
	struct ward_err err;

	assert_string_equal(
	        load_fail("server:\n  listen: ${CONF_T_UNSET}:80\n", &err),
	        "t.yaml:2:3: server.listen: environment variable CONF_T_UNSET is not set; "
	        "set it or write ${CONF_T_UNSET:-default}");
	assert_string_equal(
	        load_fail("server:\n  listen: ${CONF_T_UNSET\n", &err),
	        "t.yaml:2:3: server.listen: \"${\" without a closing \"}\"; write ${NAME} "
	        "or ${NAME:-default}, or $$ for a literal $");
}

static void env_substitution_replaces_values(void **state) {
	struct ward_err err;
	struct conf *c;
	const struct t_server *s;

	setenv("CONF_T_HOST", "10.0.0.1", 1);
	setenv("CONF_T_PORT", "8443", 1);
	setenv("CONF_T_EMPTY", "", 1);
	setenv("WARD_DATA", "/var/lib/ward", 1);
	c = load("server:\n"
	         "  listen: ${CONF_T_HOST}:${CONF_T_PORT}\n"
	         "  port: ${CONF_T_PORT}\n"
	         "  hosts: [\"$$HOME\", \"${CONF_T_UNSET:-fallback}\", \"${CONF_T_EMPTY:-e}\","
	         " \"x${CONF_T_EMPTY}y\", \"a$b\"]\n",
	         &err);
	if (!c)
		fail_msg("%s", err.msg);
	s = conf_section(c, "server");
	assert_string_equal(s->listen, "10.0.0.1:8443");
	assert_int_equal(s->port, 8443);
	assert_int_equal(s->nhosts, 5);
	assert_string_equal(s->hosts[0], "$HOME");
	assert_string_equal(s->hosts[1], "fallback");
	assert_string_equal(s->hosts[2], "e");
	assert_string_equal(s->hosts[3], "xy");
	assert_string_equal(s->hosts[4], "a$b");
	/* defaults go through substitution too */
	assert_string_equal(((const struct t_storage *)conf_section(c, "storage"))->data_dir,
	                    "/var/lib/ward");
	conf_unref(c);
}

static void duplicate_key_is_an_error(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("server:\n  port: 1\n  port: 2\n", &err),
	                    "t.yaml:3:3: server.port: duplicate key (first written at line 2); "
	                    "remove one");
	assert_string_equal(load_fail("server:\n  labels:\n    a: 1\n    b: 2\n    a: 3\n", &err),
	                    "t.yaml:5:5: server.labels.a: duplicate key (first written at line 3); "
	                    "remove one");
	assert_string_equal(
	        load_fail("log: {}\nserver: {}\nlog: {}\n", &err),
	        "t.yaml:3:1: log: duplicate section (first written at line 1); merge them");
}

static void yaml_syntax_error_has_line_and_column(void **state) {
	struct ward_err err;
	const char *msg = load_fail("server:\n  listen: a\n   port: 5\n", &err);

	assert_true(ward_has_prefix(msg, "t.yaml:3:8: YAML syntax error: "));
	msg = load_fail("server:\n  hosts: [a, b\n", &err);
	assert_true(ward_has_prefix(msg, "t.yaml:3:1: YAML syntax error: "));
}

static void truncated_file_is_a_syntax_error(void **state) {
	struct ward_err err;
	const char *msg = load_fail("server:\n  listen: \"127.0.0.1", &err);

	assert_string_equal(msg,
	                    "t.yaml:2:21: YAML syntax error: found unexpected end of stream "
	                    "(while scanning a quoted scalar at line 2); check indentation and "
	                    "quoting");
}

static void all_problems_are_reported(void **state) {
	struct ward_err err;

	assert_string_equal(
	        load_fail("server:\n"
	                  "  port: 0\n"
	                  "  bogus: 1\n"
	                  "  limits: {burst: lots}\n"
	                  "log:\n"
	                  "  level: loud\n",
	                  &err),
	        "t.yaml:3:3: server.bogus: unknown key; known keys here: listen, port, "
	        "ratio, tls, timeout, max_body, mode, hosts, labels, limits, tokens, "
	        "password\n"
	        "t.yaml:2:3: server.port: \"0\" is out of range; it must be between 1 and "
	        "65535\n"
	        "t.yaml:4:12: server.limits.burst: expected an integer, got \"lots\"\n"
	        "t.yaml:6:3: log.level: expected one of debug, info, warn, error, got "
	        "\"loud\"");
}

static void required_key_missing_is_reported(void **state) {
	struct ward_err err;

	assert_string_equal(
	        load_fail("storage:\n  data_dir: /x\n", &err),
	        "t.yaml:2:3: storage.name: required key is missing; add \"name:\" with a "
	        "string");
	assert_string_equal(load_fail("server:\n  tokens:\n    - roles: [a]\n", &err),
	                    "t.yaml:3:7: server.tokens[0].name: required key is missing; add "
	                    "\"name:\" with a string");
}

static void secret_values_never_appear_in_errors(void **state) {
	struct ward_err err;
	const char *msg = load_fail("server:\n  password: hunter2\n", &err);

	assert_string_equal(msg, "t.yaml:2:3: server.password: expected an integer, got "
	                         "[redacted]");
	assert_null(strstr(msg, "hunter2"));
}

static void top_level_must_be_a_mapping(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("- a\n- b\n", &err),
	                    "t.yaml:1:1: the top level must be a mapping of sections (like "
	                    "\"server:\"), got a list");
}

static void validate_runs_with_object_position(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("\nserver:\n  port: 13\n", &err),
	                    "t.yaml:3:3: server.port: 13 is unlucky; pick another");
	assert_int_equal(validate_calls, 1);
	assert_int_equal(validate_pos.line, 3);
	assert_int_equal(validate_pos.col, 3);
	assert_string_equal(validate_pos.file, "t.yaml");
}

static void refcount_keeps_conf_alive(void **state) {
	struct ward_err err;
	struct conf *c = load("server:\n  listen: x\n", &err);
	struct conf *r = conf_ref(c);
	const struct t_server *s;

	assert_ptr_equal(r, c);
	conf_unref(c);
	s = conf_section(r, "server");
	assert_string_equal(s->listen, "x"); /* still alive: one reference left */
	conf_unref(r);
	conf_unref(NULL);
	assert_null(conf_ref(NULL));
}

static void billion_laughs_is_rejected(void **state) {
	struct ward_err err;
	const char *msg = load_fail("a: &a [x, x, x, x, x, x, x, x, x]\n"
	                            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                            "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                            "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	                            "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	                            "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n",
	                            &err);

	assert_string_equal(msg, "t.yaml:2:8: YAML aliases (*a) are not supported; write the "
	                         "value out instead");
}

static void deep_nesting_is_rejected(void **state) {
	struct ward_err err;
	char text[300];
	size_t n = 0;

	for (int i = 0; i < 100; i++)
		text[n++] = '[';
	for (int i = 0; i < 100; i++)
		text[n++] = ']';
	text[n] = '\0';
	assert_string_equal(load_fail(text, &err), "t.yaml:1:65: nested deeper than 64 levels");
}

static void second_document_is_rejected(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("log: {}\n---\nserver: {}\n", &err),
	                    "t.yaml:2:1: a second YAML document (\"---\"); ward reads only one per "
	                    "file");
}

static void complex_mapping_key_is_rejected(void **state) {
	struct ward_err err;

	assert_string_equal(load_fail("server: {[a]: b}\n", &err),
	                    "t.yaml:1:10: a mapping key must be a plain string, not a list");
}

static void register_same_name_twice_fails(void **state) {
	assert_int_equal(conf_register_section(&server_schema), -1);
	assert_int_equal(conf_register_section(NULL), -1);
}

/* The embedded default names server.listen, log.level/format and storage.data_dir; this
 * test registers a storage section whose own default differs, to see the file win. */
static void embedded_default_loads(void **state) {
	static const struct conf_field opt_fields[] = {
	        {.key = "data_dir",
	         .type = CONF_STR,
	         .offset = offsetof(struct t_storage, data_dir),
	         .defval = "/nowhere"},
	        {0},
	};
	static const struct conf_schema storage_nodefault = {"storage", sizeof(struct t_storage),
	                                                     opt_fields, NULL};
	struct ward_err err;
	struct conf *c;

	conf_reset_registry();
	assert_int_equal(conf_register_section(&server_schema), 0);
	assert_int_equal(conf_register_section(&log_schema), 0);
	assert_int_equal(conf_register_section(&storage_nodefault), 0);
	setenv("WARD_DATA", "/srv/ward", 1);
	c = conf_load_buffer("<embedded default>", conf_embedded_default,
	                     strlen(conf_embedded_default), &err);
	if (!c)
		fail_msg("%s", err.msg);
	assert_string_equal(((const struct t_server *)conf_section(c, "server"))->listen,
	                    "127.0.0.1:9797");
	assert_int_equal(((const struct t_log *)conf_section(c, "log"))->format, 0);
	assert_string_equal(((const struct t_storage *)conf_section(c, "storage"))->data_dir,
	                    "/srv/ward");
	assert_string_equal(conf_source(c), "<embedded default>");
	conf_unref(c);
}

static void load_file_reads_and_names_the_path(void **state) {
	char path[] = "/tmp/conf_load_XXXXXX";
	int fd = mkstemp(path);
	struct ward_err err;
	struct conf *c;
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("server:\n  port: 99999\n", f);
	fclose(f);
	c = conf_load_file(path, &err);
	assert_null(c);
	assert_true(ward_has_prefix(err.msg, path));
	assert_non_null(strstr(err.msg, ":2:3: server.port: "));
	unlink(path);
	assert_null(conf_load_file(path, &err));
	assert_non_null(strstr(err.msg, path));
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(empty_file_gives_all_defaults, setup),
	        cmocka_unit_test_setup(every_type_decodes, setup),
	        cmocka_unit_test_setup(bool_accepts_yaml11_words, setup),
	        cmocka_unit_test_setup(unknown_key_names_position_path_and_suggestion, setup),
	        cmocka_unit_test_setup(unknown_section_lists_known_sections, setup),
	        cmocka_unit_test_setup(wrong_type_names_key_and_value, setup),
	        cmocka_unit_test_setup(out_of_range_names_limits, setup),
	        cmocka_unit_test_setup(bad_duration_is_explained, setup),
	        cmocka_unit_test_setup(enum_error_lists_allowed_names, setup),
	        cmocka_unit_test_setup(missing_env_var_is_named, setup),
	        cmocka_unit_test_setup(env_substitution_replaces_values, setup),
	        cmocka_unit_test_setup(duplicate_key_is_an_error, setup),
	        cmocka_unit_test_setup(yaml_syntax_error_has_line_and_column, setup),
	        cmocka_unit_test_setup(truncated_file_is_a_syntax_error, setup),
	        cmocka_unit_test_setup(all_problems_are_reported, setup),
	        cmocka_unit_test_setup(required_key_missing_is_reported, setup),
	        cmocka_unit_test_setup(secret_values_never_appear_in_errors, setup),
	        cmocka_unit_test_setup(top_level_must_be_a_mapping, setup),
	        cmocka_unit_test_setup(validate_runs_with_object_position, setup),
	        cmocka_unit_test_setup(refcount_keeps_conf_alive, setup),
	        cmocka_unit_test_setup(billion_laughs_is_rejected, setup),
	        cmocka_unit_test_setup(deep_nesting_is_rejected, setup),
	        cmocka_unit_test_setup(second_document_is_rejected, setup),
	        cmocka_unit_test_setup(complex_mapping_key_is_rejected, setup),
	        cmocka_unit_test_setup(register_same_name_twice_fails, setup),
	        cmocka_unit_test_setup(embedded_default_loads, setup),
	        cmocka_unit_test_setup(load_file_reads_and_names_the_path, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
