/* cli_plumbing.c: unit tests of the CLI's shared plumbing (src/cli/client.c) and of the
 * outbound HTTP helper (src/http/client.c) against a one-shot loopback server thread:
 * option parsing, help, suggestions, tables, time formatting, client file resolution,
 * exit-code mapping and the client's no-redirect / body-capture / failure behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* ---- a one-shot HTTP server on 127.0.0.1:<ephemeral> ---- */
struct oneshot {
	int lfd;
	int port;
	const char *response;
	char request[8192];
	pthread_t th;
};

static void *oneshot_main(void *arg) {
	struct oneshot *o = arg;
	int fd = accept(o->lfd, NULL, NULL);
	size_t n = 0;

	if (fd < 0)
		return NULL;
	/* Read until the end of the headers plus any Content-Length body (small in tests). */
	while (n < sizeof(o->request) - 1) {
		ssize_t r = recv(fd, o->request + n, sizeof(o->request) - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		o->request[n] = '\0';
		char *end = strstr(o->request, "\r\n\r\n");
		if (end) {
			const char *cl = strcasestr(o->request, "Content-Length:");
			size_t want = cl ? (size_t)atoi(cl + 15) : 0;
			if (n >= (size_t)(end + 4 - o->request) + want)
				break;
		}
	}
	if (write(fd, o->response, strlen(o->response)) < 0) {
		/* the client went away; the test will say so */
	}
	close(fd);
	return NULL;
}

static void oneshot_start(struct oneshot *o, const char *response) {
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);

	memset(o, 0, sizeof(*o));
	o->response = response;
	o->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(o->lfd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(o->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(o->lfd, 1), 0);
	assert_int_equal(getsockname(o->lfd, (struct sockaddr *)&a, &len), 0);
	o->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&o->th, NULL, oneshot_main, o), 0);
}

static void oneshot_join(struct oneshot *o) {
	pthread_join(o->th, NULL);
	close(o->lfd);
}

/* ---- http_client_do ---- */

static void http_client_captures_status_body_and_sends_bearer(void **state) {
	struct oneshot o;
	struct http_client_resp r;
	char url[64];

	(void)state;
	oneshot_start(&o, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
	                  "Content-Length: 11\r\nConnection: close\r\n\r\n{\"a\":\"b c\"}");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/tokens", o.port);
	assert_int_equal(
	        http_client_do("POST", url, "ward_secret", "application/json", "{}", 2, 5000, &r),
	        0);
	oneshot_join(&o);
	assert_int_equal(r.status, 201);
	assert_string_equal(buf_cstr(&r.body), "{\"a\":\"b c\"}");
	assert_non_null(strstr(o.request, "POST /api/v1/tokens HTTP/1.1"));
	assert_non_null(strstr(o.request, "Authorization: Bearer ward_secret"));
	assert_non_null(strstr(o.request, "Content-Type: application/json"));
	assert_non_null(strstr(o.request, "\r\n\r\n{}"));
	http_client_resp_free(&r);
}

static void http_client_does_not_follow_redirects(void **state) {
	struct oneshot o;
	struct http_client_resp r;
	char url[64];

	(void)state;
	oneshot_start(&o, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
	                  "Content-Length: 0\r\nConnection: close\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", o.port);
	assert_int_equal(http_client_do("GET", url, "t", NULL, NULL, 0, 5000, &r), 0);
	oneshot_join(&o);
	assert_int_equal(r.status, 302);
	http_client_resp_free(&r);
}

static void http_client_reports_refused_connection_with_status_0(void **state) {
	struct http_client_resp r;
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	char url[64];
	int fd;

	(void)state;
	/* Take a free port, then close it unlistened so a connect there is refused. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	close(fd);
	assert_int_equal(http_client_do("GET", url, NULL, NULL, NULL, 0, 2000, &r), -1);
	assert_int_equal(r.status, 0);
	assert_true(r.error[0] != '\0');
	http_client_resp_free(&r);
}

static void http_client_refuses_other_protocols(void **state) {
	struct http_client_resp r;

	(void)state;
	assert_int_equal(http_client_do("GET", "file:///etc/passwd", NULL, NULL, NULL, 0, 2000, &r),
	                 -1);
	assert_int_equal(r.status, 0);
	http_client_resp_free(&r);
}

/* ---- cli_api exit codes ---- */

static int api_with_response(const char *response, json_t **data) {
	struct oneshot o;
	struct cli cli = {0};
	char url[64];
	int rc;

	oneshot_start(&o, response);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", o.port);
	cli.flag_url = url;
	cli.flag_token = "ward_x";
	rc = cli_api(&cli, "GET", "/api/v1/tokens", NULL, ROLE_ADMIN, data);
	oneshot_join(&o);
	/* The trailing slash of --url is dropped: no "//api" in the request line. */
	assert_non_null(strstr(o.request, "GET /api/v1/tokens HTTP/1.1"));
	cli_free(&cli);
	return rc;
}

static char *resp(const char *status, const char *body) {
	static char out[1024];
	snprintf(out, sizeof(out),
	         "HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
	         "Content-Length: %zu\r\n\r\n%s",
	         status, strlen(body), body);
	return out;
}

static void cli_api_maps_http_outcomes_to_exit_codes(void **state) {
	json_t *data = NULL;

	(void)state;
	assert_int_equal(
	        api_with_response(resp("200 OK", "{\"status\":\"success\",\"data\":[1]}"), &data),
	        WARD_EXIT_OK);
	assert_true(json_is_array(data));
	json_decref(data);
	assert_int_equal(api_with_response(resp("401 Unauthorized",
	                                        "{\"status\":\"error\",\"errorType\":"
	                                        "\"unauthorized\",\"error\":\"bad token\"}"),
	                                   &data),
	                 WARD_EXIT_DENIED);
	assert_null(data);
	assert_int_equal(api_with_response(resp("403 Forbidden", "{\"status\":\"error\"}"), &data),
	                 WARD_EXIT_DENIED);
	assert_int_equal(api_with_response(resp("404 Not Found", "nope"), &data),
	                 WARD_EXIT_NOTFOUND);
	assert_int_equal(api_with_response(resp("409 Conflict", "{\"error\":\"in use\"}"), &data),
	                 WARD_EXIT_USAGE);
	assert_int_equal(api_with_response(resp("400 Bad Request", "{}"), &data), WARD_EXIT_USAGE);
	assert_int_equal(api_with_response(resp("500 Internal Server Error", "{}"), &data),
	                 WARD_EXIT_INTERNAL);
	/* 200 that is not a ward envelope: the URL points at something else. */
	assert_int_equal(api_with_response(resp("200 OK", "<html>"), &data), WARD_EXIT_UNAVAILABLE);
}

/* ---- options ---- */

static void cli_parse_takes_options_in_any_order_and_both_value_forms(void **state) {
	const char *role = NULL, *name = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"role", 'r', &role, NULL},
	                               {"name", 'n', &name, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	char *argv[] = {"cmd", "pos1", "--role=viewer", "--json", "-n", "ci", "--", "--x", NULL};
	const char *pos[2];
	int npos, rc;

	(void)state;
	assert_false(cli_parse("cmd", "usage", 0, 8, argv, opts, pos, 2, &npos, &rc));
	assert_string_equal(role, "viewer");
	assert_string_equal(name, "ci");
	assert_true(json);
	assert_int_equal(npos, 2);
	assert_string_equal(pos[0], "pos1");
	assert_string_equal(pos[1], "--x");
}

static void cli_parse_rejects_unknown_options_and_missing_values_with_exit_2(void **state) {
	const char *role = NULL;
	const struct cli_opt opts[] = {{"role", 0, &role, NULL}, {NULL, 0, NULL, NULL}};
	char *a1[] = {"cmd", "--bogus", NULL};
	char *a2[] = {"cmd", "--role", NULL};
	char *a3[] = {"cmd", "extra", NULL};
	int npos, rc = -1;

	(void)state;
	assert_true(cli_parse("cmd", "u", 0, 2, a1, opts, NULL, 0, &npos, &rc));
	assert_int_equal(rc, WARD_EXIT_USAGE);
	rc = -1;
	assert_true(cli_parse("cmd", "u", 0, 2, a2, opts, NULL, 0, &npos, &rc));
	assert_int_equal(rc, WARD_EXIT_USAGE);
	rc = -1;
	assert_true(cli_parse("cmd", "u", 0, 2, a3, opts, NULL, 0, &npos, &rc));
	assert_int_equal(rc, WARD_EXIT_USAGE);
}

static void cli_parse_help_returns_0(void **state) {
	char *argv[] = {"cmd", "--whatever", "-h", NULL};
	int npos, rc = -1;

	(void)state;
	/* An unknown option before --help is still an error: options are read in order. */
	assert_true(cli_parse("cmd", "u", 0, 3, argv, NULL, NULL, 0, &npos, &rc));
	assert_int_equal(rc, WARD_EXIT_USAGE);
	argv[1] = "-h";
	assert_true(cli_parse("cmd", "u", 0, 3, argv, NULL, NULL, 0, &npos, &rc));
	assert_int_equal(rc, WARD_EXIT_OK);
}

static void cli_suggest_finds_typos_and_prefixes(void **state) {
	const char *names[] = {"serve", "config", "token", "audit", "version"};

	(void)state;
	assert_string_equal(cli_suggest("tokn", names, 5), "token");
	assert_string_equal(cli_suggest("conf", names, 5), "config");
	assert_string_equal(cli_suggest("aduit", names, 5), "audit");
	assert_null(cli_suggest("xyzzy", names, 5));
}

/* ---- output ---- */

static void cli_table_aligns_columns_and_neutralises_control_chars(void **state) {
	static const char *const h[] = {"ID", "NAME"};
	const char *r1[] = {"1", "alice"};
	const char *r2[] = {"12345", "evil\x1b[2J"};
	struct cli_table *t = cli_table_new(2, h);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	cli_table_add(t, r1);
	cli_table_add(t, r2);
	cli_table_print(t, f);
	fclose(f);
	assert_string_equal(out, "ID     NAME\n1      alice\n12345  evil?[2J\n");
	free(out);
	cli_table_free(t);
}

static void cli_fmt_time_shows_local_time_or_the_text_given(void **state) {
	char out[64];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	cli_fmt_time("2026-11-24T11:51:03.123Z", out);
	assert_string_equal(out, "2026-11-24T11:51:03Z");
	setenv("TZ", "CET-1", 1);
	tzset();
	cli_fmt_time("2026-11-24T11:51:03Z", out);
	assert_string_equal(out, "2026-11-24T12:51:03+01:00");
	cli_fmt_time("not a time", out);
	assert_string_equal(out, "not a time");
	cli_fmt_time(NULL, out);
	assert_string_equal(out, "-");
}

/* ---- resolving url and token ---- */

static void cli_resolve_prefers_flags_then_env_then_client_file(void **state) {
	char dir[] = "/tmp/ward-cli-test-XXXXXX";
	char path[128];
	struct cli cli = {0};
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/client.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("url: http://file.example:1/\ntoken: ward_fromfile\n", f);
	fclose(f);
	chmod(path, 0600);
	setenv("WARD_CLIENT_CONFIG", path, 1);
	unsetenv("WARD_URL");
	unsetenv("WARD_TOKEN");

	assert_int_equal(cli_resolve(&cli), 0);
	assert_string_equal(cli.url, "http://file.example:1");
	assert_string_equal(cli.token, "ward_fromfile");
	cli_free(&cli);

	setenv("WARD_URL", "http://env.example:2", 1);
	assert_int_equal(cli_resolve(&cli), 0);
	assert_string_equal(cli.url, "http://env.example:2");
	assert_string_equal(cli.token, "ward_fromfile");
	cli_free(&cli);

	cli.flag_url = "http://flag.example:3";
	cli.flag_token = "ward_flag";
	assert_int_equal(cli_resolve(&cli), 0);
	assert_string_equal(cli.url, "http://flag.example:3");
	assert_string_equal(cli.token, "ward_flag");
	cli_free(&cli);

	/* A named client file that does not exist is a usage error, not a silent default. */
	unlink(path);
	memset(&cli, 0, sizeof(cli));
	assert_int_equal(cli_resolve(&cli), WARD_EXIT_USAGE);
	rmdir(dir);

	unsetenv("WARD_CLIENT_CONFIG");
	unsetenv("WARD_URL");
	setenv("XDG_CONFIG_HOME", "/nonexistent-ward-test", 1);
	assert_int_equal(cli_resolve(&cli), 0);
	assert_string_equal(cli.url, CLI_DEFAULT_URL);
	assert_null(cli.token);
	cli_free(&cli);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(http_client_captures_status_body_and_sends_bearer),
	        cmocka_unit_test(http_client_does_not_follow_redirects),
	        cmocka_unit_test(http_client_reports_refused_connection_with_status_0),
	        cmocka_unit_test(http_client_refuses_other_protocols),
	        cmocka_unit_test(cli_api_maps_http_outcomes_to_exit_codes),
	        cmocka_unit_test(cli_parse_takes_options_in_any_order_and_both_value_forms),
	        cmocka_unit_test(cli_parse_rejects_unknown_options_and_missing_values_with_exit_2),
	        cmocka_unit_test(cli_parse_help_returns_0),
	        cmocka_unit_test(cli_suggest_finds_typos_and_prefixes),
	        cmocka_unit_test(cli_table_aligns_columns_and_neutralises_control_chars),
	        cmocka_unit_test(cli_fmt_time_shows_local_time_or_the_text_given),
	        cmocka_unit_test(cli_resolve_prefers_flags_then_env_then_client_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
