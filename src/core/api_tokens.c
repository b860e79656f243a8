/* api_tokens.c: token management over the API (admin only): create, list, revoke. Each
 * change is audited before the response goes out; a change that cannot be audited is
 * reported as a failure.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"


static json_t *token_json(const struct http_token *t)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:s?,s:o,s:o}", "id", t->id, "name", t->name, "role",
			 http_role_name(t->role), "created", core_json_time(t->created_ms), "created_by",
			 t->created_by, "last_used", core_json_time(t->last_used_ms), "revoked",
			 core_json_time(t->revoked_ms));
}

static void h_list(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	struct http_token *v = NULL;
	size_t n = 0;
	struct ward_err err;
	ward_err_clear(&err);
	if (http_token_list(ctx->store, &v, &n, &err) != 0) {
		http_resp_error(resp, 500, "internal", "listing tokens failed: %s", err.msg);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(a, token_json(&v[i]));
		http_token_free(&v[i]);
	}
	free(v);
	core_send_data(resp, 200, a);
}

static void h_create(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	json_error_t jerr;
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
	const char *name = NULL, *role_s = NULL;
	if (body && json_is_object(body)) {
		name = json_string_value(json_object_get(body, "name"));
		role_s = json_string_value(json_object_get(body, "role"));
	} else {
		/* Form parameters work too, as elsewhere in the API. */
		name = http_param(req, "name");
		role_s = http_param(req, "role");
	}
	enum http_role role;
	if (!name || !*name) {
		http_resp_error(resp, 400, "bad_data",
				"a token needs a name: send {\"name\":\"ci\",\"role\":\"viewer\"}");
		goto out;
	}
	if (!role_s || http_role_parse(role_s, &role) != 0) {
		http_resp_error(resp, 400, "bad_data",
				"role must be viewer, operator or admin (got \"%s\")",
				role_s ? role_s : "");
		goto out;
	}
	char secret[80];
	struct http_token t;
	struct ward_err err;
	ward_err_clear(&err);
	char by[200];
	snprintf(by, sizeof(by), "%s (%s)", req->actor.name, req->actor.id);
	if (http_token_create(ctx->store, name, role, by, secret, &t, &err) != 0) {
		bool conflict = strstr(err.msg, "exists") != NULL;
		json_t *d = json_pack("{s:s,s:s,s:s}", "name", name, "role", role_s, "error",
				      err.msg);
		char *ds = json_dumps(d, JSON_COMPACT);
		ward_audit_req(ctx, req, "token.create", name, "error", ds);
		free(ds);
		json_decref(d);
		http_resp_error(resp, conflict ? 409 : 400, conflict ? "conflict" : "bad_data", "%s",
				err.msg);
		goto out;
	}
	json_t *d = json_pack("{s:s,s:s}", "name", name, "role", role_s);
	char *ds = json_dumps(d, JSON_COMPACT);
	int arc = ward_audit_req(ctx, req, "token.create", t.id, "ok", ds);
	free(ds);
	json_decref(d);
	if (arc != 0) {
		/* Unaudited changes are not allowed: take the token back. */
		http_token_revoke(ctx->store, t.id, &err);
		http_resp_error(resp, 500, "internal",
				"the audit trail could not be written; token not created");
		http_token_free(&t);
		goto out;
	}
	json_t *j = token_json(&t);
	json_object_set_new(j, "token", json_string(secret));
	memset(secret, 0, sizeof(secret));
	core_send_data(resp, 201, j);
	http_token_free(&t);
out:
	json_decref(body);
}

static void h_revoke(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct ward_ctx *ctx = arg;
	const char *id = req->path_tail;
	if (!id || !*id || strchr(id, '/')) {
		http_resp_error(resp, 400, "bad_data", "usage: DELETE /api/v1/tokens/<id>");
		return;
	}
	struct ward_err err;
	ward_err_clear(&err);
	int rc = http_token_revoke(ctx->store, id, &err);
	if (rc < 0) {
		http_resp_error(resp, 500, "internal", "revoking failed: %s", err.msg);
		return;
	}
	if (rc == 1) {
		ward_audit_req(ctx, req, "token.revoke", id, "not_found", NULL);
		http_resp_error(resp, 404, "not_found",
				"no active token with id %s; see `ward token list`", id);
		return;
	}
	if (ward_audit_req(ctx, req, "token.revoke", id, "ok", NULL) != 0) {
		http_resp_error(resp, 500, "internal",
				"token revoked, but the audit trail could not be written");
		return;
	}
	core_send_data(resp, 200, json_pack("{s:s,s:o}", "id", id, "revoked",
					    core_json_time(ward_now_ms())));
}

void core_api_tokens_register(struct ward_ctx *ctx)
{
	http_route("GET", "/api/v1/tokens", ROLE_ADMIN, h_list, ctx);
	http_route("POST", "/api/v1/tokens", ROLE_ADMIN, h_create, ctx);
	http_route("DELETE", "/api/v1/tokens/*", ROLE_ADMIN, h_revoke, ctx);
}
