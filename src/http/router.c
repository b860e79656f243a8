/* router.c: the route registry of the API server.
 *
 * Modules register routes (method, exact path or prefix, least role, handler); the server
 * looks them up per request. The table only grows or replaces entries in place, and is
 * guarded by a rwlock: lookups take it shared, registrations exclusive. Exact paths win
 * over prefixes; among prefixes the longest wins.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

static pthread_rwlock_t routes_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct http_route_entry *routes; /* guarded by routes_lock */
static size_t nroutes, routes_cap;      /* guarded by routes_lock */

int http_route(const char *method, const char *path, enum http_role min_role, http_handler h,
	       void *arg)
{
	if (!path || path[0] != '/' || !h)
		return -1;
	size_t plen = strlen(path);
	bool prefix = plen >= 2 && path[plen - 1] == '*' && path[plen - 2] == '/';
	if (prefix)
		plen--;
	pthread_rwlock_wrlock(&routes_lock);
	for (size_t i = 0; i < nroutes; i++) {
		struct http_route_entry *r = &routes[i];
		if (r->prefix == prefix && strlen(r->path) == plen &&
		    memcmp(r->path, path, plen) == 0 && ward_streq(r->method, method)) {
			r->min_role = min_role;
			r->handler = h;
			r->arg = arg;
			pthread_rwlock_unlock(&routes_lock);
			return 0;
		}
	}
	if (nroutes == routes_cap) {
		routes_cap = routes_cap ? routes_cap * 2 : 32;
		routes = ward_xrealloc(routes, routes_cap * sizeof(*routes));
	}
	routes[nroutes++] = (struct http_route_entry){
		.method = method ? ward_strdup(method) : NULL,
		.path = ward_strndup(path, plen),
		.prefix = prefix,
		.min_role = min_role,
		.handler = h,
		.arg = arg,
	};
	pthread_rwlock_unlock(&routes_lock);
	return 0;
}

void http_routes_reset(void)
{
	pthread_rwlock_wrlock(&routes_lock);
	for (size_t i = 0; i < nroutes; i++) {
		free(routes[i].method);
		free(routes[i].path);
	}
	free(routes);
	routes = NULL;
	nroutes = routes_cap = 0;
	pthread_rwlock_unlock(&routes_lock);
}

int http_router_find(const char *method, const char *path, struct http_route_entry *out,
		     size_t *tail)
{
	int rc = 404;
	size_t best_len = 0;
	bool best_exact = false;
	pthread_rwlock_rdlock(&routes_lock);
	for (size_t i = 0; i < nroutes; i++) {
		const struct http_route_entry *r = &routes[i];
		size_t rl = strlen(r->path);
		bool exact;
		if (!r->prefix) {
			if (strcmp(r->path, path) != 0)
				continue;
			exact = true;
		} else {
			if (strncmp(r->path, path, rl) != 0)
				continue;
			exact = false;
		}
		if (best_exact && !exact)
			continue;
		if (!exact && !best_exact && rc != 404 && rl < best_len)
			continue;
		if (r->method && strcmp(r->method, method) != 0) {
			if (rc == 404)
				rc = 405;
			continue;
		}
		*out = *r;
		*tail = r->prefix ? rl : strlen(path);
		best_len = rl;
		best_exact = exact;
		rc = 0;
	}
	pthread_rwlock_unlock(&routes_lock);
	return rc;
}
