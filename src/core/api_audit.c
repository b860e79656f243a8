/* api_audit.c: GET /api/v1/audit (admin): the audit trail filtered by time, actor and
 * action, newest first, paged by sequence number.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "security/security.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000

static int parse_time_param(const struct http_req *req, const char *name, int64_t *out,
			    struct http_resp *resp)
{
	const char *v = http_param(req, name);
	*out = 0;
	if (!v || !*v)
		return 0;
	if (ward_parse_time(v, strlen(v), out) != 0) {
		http_resp_error(resp, 400, "bad_data",
				"%s: cannot parse \"%s\"; use RFC 3339 (2026-11-24T11:51:03Z) or "
				"unix seconds",
				name, v);
		return -1;
	}
	return 0;
}

static int parse_uint_param(const struct http_req *req, const char *name, uint64_t *out,
			    struct http_resp *resp)
{
	const char *v = http_param(req, name);
	if (!v || !*v)
		return 0;
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end || v[0] == '-') {
		http_resp_error(resp, 400, "bad_data", "%s: expected a non-negative integer, got \"%s\"",
				name, v);
		return -1;
	}
	*out = n;
	return 0;
}

static void h_audit(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	struct audit_query q = {.limit = AUDIT_PAGE_DEFAULT};
	uint64_t limit = AUDIT_PAGE_DEFAULT, before = 0;
	if (parse_time_param(req, "since", &q.since_ms, resp) ||
	    parse_time_param(req, "until", &q.until_ms, resp) ||
	    parse_uint_param(req, "limit", &limit, resp) ||
	    parse_uint_param(req, "before", &before, resp))
		return;
	if (limit == 0 || limit > AUDIT_PAGE_MAX) {
		http_resp_error(resp, 400, "bad_data", "limit must be 1 to %d", AUDIT_PAGE_MAX);
		return;
	}
	q.limit = (size_t)limit;
	q.before_seq = before;
	q.actor = http_param(req, "actor");
	q.action = http_param(req, "action");
	if (q.actor && !*q.actor)
		q.actor = NULL;
	if (q.action && !*q.action)
		q.action = NULL;

	struct audit_entry *v = NULL;
	struct ward_err err;
	ward_err_clear(&err);
	int n = audit_query(ctx->audit, &q, &v, &err);
	if (n < 0) {
		http_resp_error(resp, 500, "internal", "reading the audit trail failed: %s",
				err.msg);
		return;
	}
	json_t *next = (n > 0 && (size_t)n == q.limit && v[n - 1].seq > 1)
			       ? json_integer((json_int_t)v[n - 1].seq)
			       : json_null();
	json_t *a = json_array();
	for (int i = 0; i < n; i++) {
		struct audit_entry *e = &v[i];
		json_t *details = e->details ? json_loads(e->details, 0, NULL) : NULL;
		json_t *o = json_pack("{s:I,s:o,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:o,s:s?,s:s,s:s}",
				      "seq", (json_int_t)e->seq, "time", core_json_time(e->ts_ms),
				      "actor_id", e->actor_id, "actor_name", e->actor_name,
				      "source", e->source, "action", e->action, "target", e->target,
				      "result", e->result, "details",
				      details ? details : json_object(), "request_id",
				      e->request_id, "prev_hash", e->prev, "hash", e->hash);
		if (o)
			json_array_append_new(a, o);
		audit_entry_free(e);
	}
	free(v);
	core_send_data(resp, 200, json_pack("{s:o,s:o}", "entries", a, "next_before", next));
}

void core_api_audit_register(struct ward_ctx *ctx)
{
	http_route("GET", "/api/v1/audit", ROLE_ADMIN, h_audit, ctx);
}
