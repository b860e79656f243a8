/* http_router.c: the route table finds exact routes before prefixes, the longest prefix,
 * tells 404 from 405, and replaces a route registered twice; urlencoded parsing decodes
 * what clients send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_internal.h"

static void h1(struct http_req *r, struct http_resp *p, void *a) {}
static void h2(struct http_req *r, struct http_resp *p, void *a) {}

static void router_prefers_exact_then_longest_prefix(void **state)
{
	http_routes_reset();
	assert_int_equal(http_route("GET", "/api/v1/*", ROLE_VIEWER, h1, NULL), 0);
	assert_int_equal(http_route("GET", "/api/v1/tokens/*", ROLE_ADMIN, h2, NULL), 0);
	assert_int_equal(http_route("GET", "/api/v1/tokens", ROLE_ADMIN, h1, (void *)1), 0);
	struct http_route_entry e;
	size_t tail;
	assert_int_equal(http_router_find("GET", "/api/v1/tokens", &e, &tail), 0);
	assert_false(e.prefix);
	assert_ptr_equal(e.arg, (void *)1);
	assert_int_equal(http_router_find("GET", "/api/v1/tokens/abc", &e, &tail), 0);
	assert_ptr_equal(e.handler, h2);
	assert_string_equal("/api/v1/tokens/abc" + tail, "abc");
	assert_int_equal(http_router_find("GET", "/api/v1/other", &e, &tail), 0);
	assert_ptr_equal(e.handler, h1);
	assert_int_equal(http_router_find("GET", "/nothing", &e, &tail), 404);
	http_routes_reset();
}

static void router_tells_405_from_404(void **state)
{
	http_routes_reset();
	http_route("POST", "/api/v1/reload", ROLE_ADMIN, h1, NULL);
	struct http_route_entry e;
	size_t tail;
	assert_int_equal(http_router_find("GET", "/api/v1/reload", &e, &tail), 405);
	assert_int_equal(http_router_find("POST", "/api/v1/reload", &e, &tail), 0);
	assert_int_equal(http_router_find("POST", "/api/v1/reloadx", &e, &tail), 404);
	http_routes_reset();
}

static void router_replaces_same_route(void **state)
{
	http_routes_reset();
	http_route("GET", "/x", ROLE_VIEWER, h1, NULL);
	http_route("GET", "/x", ROLE_ADMIN, h2, NULL);
	struct http_route_entry e;
	size_t tail;
	assert_int_equal(http_router_find("GET", "/x", &e, &tail), 0);
	assert_ptr_equal(e.handler, h2);
	assert_int_equal(e.min_role, ROLE_ADMIN);
	assert_int_equal(http_route("GET", "relative", ROLE_ADMIN, h2, NULL), -1);
	http_routes_reset();
}

static void urlencoded_decodes_plus_percent_and_repeats(void **state)
{
	struct http_param *p = NULL;
	size_t n = 0;
	const char *s = "match%5B%5D=up&match[]=a+b&empty=&flag&bad=%zz%4";
	http_parse_urlencoded(s, strlen(s), &p, &n);
	assert_int_equal(n, 5);
	assert_string_equal(p[0].name, "match[]");
	assert_string_equal(p[0].value, "up");
	assert_string_equal(p[1].value, "a b");
	assert_string_equal(p[2].value, "");
	assert_string_equal(p[3].name, "flag");
	assert_string_equal(p[4].value, "%zz%4");
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

static void listen_addresses_parse_or_explain(void **state)
{
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(http_parse_listen("127.0.0.1:9797", NULL, NULL, 0, &err), 0);
	assert_int_equal(http_parse_listen("[::1]:9797", NULL, NULL, 0, &err), 0);
	assert_int_equal(http_parse_listen("localhost:0", NULL, NULL, 0, &err), 0);
	assert_int_equal(http_parse_listen("127.0.0.1", NULL, NULL, 0, &err), -1);
	assert_non_null(strstr(err.msg, "no port"));
	assert_int_equal(http_parse_listen("127.0.0.1:70000", NULL, NULL, 0, &err), -1);
	assert_non_null(strstr(err.msg, "0 to 65535"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(router_prefers_exact_then_longest_prefix),
		cmocka_unit_test(router_tells_405_from_404),
		cmocka_unit_test(router_replaces_same_route),
		cmocka_unit_test(urlencoded_decodes_plus_percent_and_repeats),
		cmocka_unit_test(listen_addresses_parse_or_explain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
