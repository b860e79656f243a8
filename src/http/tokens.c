/* tokens.c: API bearer tokens in the state store (component "http").
 *
 * A token is "ward_" + 16 hex chars of public id + 48 hex chars of secret (24 random
 * bytes). Only SHA-256(token) is stored. A check looks the row up by id and compares the
 * stored hash with the presented token's hash in constant time, so neither timing nor the
 * database reveals a usable token. Names are unique among active tokens (a partial unique
 * index, which PostgreSQL also has). last_used is written at most once a minute per token
 * so that reads do not turn into a write per request.
 */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "store/store.h"

#define TOKEN_PREFIX "ward_"
#define TOKEN_ID_HEX 16
#define TOKEN_SECRET_HEX 48
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + TOKEN_ID_HEX + TOKEN_SECRET_HEX)
#define LAST_USED_RESOLUTION_MS 60000 /* coarse on purpose: a write per request is too dear */

static const struct store_migration token_migrations[] = {
	{1, "CREATE TABLE tokens ("
	    " id TEXT PRIMARY KEY,"
	    " name TEXT NOT NULL,"
	    " role INTEGER NOT NULL,"
	    " hash BLOB NOT NULL,"
	    " created_ms INTEGER NOT NULL,"
	    " created_by TEXT,"
	    " last_used_ms INTEGER,"
	    " revoked_ms INTEGER);"
	    "CREATE UNIQUE INDEX tokens_active_name ON tokens(name) WHERE revoked_ms IS NULL"},
};

void http_tokens_register(void)
{
	store_register_migrations("http", token_migrations,
				  sizeof(token_migrations) / sizeof(token_migrations[0]));
}

void http_token_free(struct http_token *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->created_by);
	t->name = t->created_by = NULL;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

int http_token_create(struct store *st, const char *name, enum http_role role,
		      const char *created_by, char secret_out[80], struct http_token *out,
		      struct ward_err *err)
{
	if (!name || !*name || strlen(name) > 100) {
		ward_err_set(err, "token name must be 1 to 100 characters");
		return -1;
	}
	if (role < ROLE_VIEWER || role > ROLE_ADMIN) {
		ward_err_set(err, "role must be viewer, operator or admin");
		return -1;
	}
	uint8_t raw[TOKEN_ID_HEX / 2 + TOKEN_SECRET_HEX / 2];
	ward_random_bytes(raw, sizeof(raw));
	char hex[sizeof(raw) * 2 + 1];
	ward_hex(raw, sizeof(raw), hex);
	snprintf(secret_out, 80, "%s%s", TOKEN_PREFIX, hex);
	uint8_t hash[WARD_SHA256_LEN];
	ward_sha256(secret_out, strlen(secret_out), hash);
	char id[TOKEN_ID_HEX + 1];
	memcpy(id, hex, TOKEN_ID_HEX);
	id[TOKEN_ID_HEX] = '\0';
	int64_t now = ward_now_ms();
	struct store_val p[] = {SV_TEXT(id),		 SV_TEXT(name), SV_INT(role),
				SV_BLOB(hash, sizeof(hash)), SV_INT(now),   SV_TEXT(created_by)};
	int rc = store_exec(st,
			    "INSERT INTO tokens (id, name, role, hash, created_ms, created_by)"
			    " VALUES (?, ?, ?, ?, ?, ?)",
			    p, 6, NULL, err);
	if (rc == STORE_CONFLICT) {
		ward_err_set(err, "an active token named \"%s\" exists; revoke it or pick another name",
			     name);
		secret_out[0] = '\0';
		return -1;
	}
	if (rc != STORE_OK) {
		secret_out[0] = '\0';
		return -1;
	}
	if (out) {
		memset(out, 0, sizeof(*out));
		memcpy(out->id, id, sizeof(id));
		out->name = ward_strdup(name);
		out->role = role;
		out->created_ms = now;
		out->created_by = ward_strdup(created_by);
	}
	return 0;
}

struct list_ctx {
	struct http_token *v;
	size_t n;
};

static int list_row(void *arg, const struct store_val *c, size_t nc)
{
	struct list_ctx *l = arg;
	l->v = ward_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct http_token *t = &l->v[l->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", c[0].s ? c[0].s : "");
	t->name = ward_strdup(c[1].s ? c[1].s : "");
	t->role = (enum http_role)c[2].i;
	t->created_ms = c[3].i;
	t->created_by = c[4].type == STORE_NULL ? NULL : ward_strdup(c[4].s);
	t->last_used_ms = c[5].type == STORE_NULL ? 0 : c[5].i;
	t->revoked_ms = c[6].type == STORE_NULL ? 0 : c[6].i;
	return 0;
}

int http_token_list(struct store *st, struct http_token **out, size_t *n, struct ward_err *err)
{
	struct list_ctx l = {0};
	int rc = store_query(st,
			     "SELECT id, name, role, created_ms, created_by, last_used_ms, revoked_ms"
			     " FROM tokens ORDER BY created_ms DESC, id",
			     NULL, 0, list_row, &l, err);
	if (rc != STORE_OK) {
		for (size_t i = 0; i < l.n; i++)
			http_token_free(&l.v[i]);
		free(l.v);
		return -1;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

int http_token_revoke(struct store *st, const char *id, struct ward_err *err)
{
	int64_t changes = 0;
	struct store_val p[] = {SV_INT(ward_now_ms()), SV_TEXT(id)};
	if (store_exec(st, "UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
		       p, 2, &changes, err) != STORE_OK)
		return -1;
	return changes > 0 ? 0 : 1;
}

struct check_ctx {
	bool found;
	uint8_t hash[WARD_SHA256_LEN];
	bool hash_ok;
	char name[128];
	int role;
	int64_t last_used_ms;
	bool revoked;
};

static int check_row(void *arg, const struct store_val *c, size_t nc)
{
	struct check_ctx *k = arg;
	k->found = true;
	k->hash_ok = c[0].type == STORE_BLOB && c[0].n == WARD_SHA256_LEN;
	if (k->hash_ok)
		memcpy(k->hash, c[0].s, WARD_SHA256_LEN);
	snprintf(k->name, sizeof(k->name), "%s", c[1].s ? c[1].s : "");
	k->role = (int)c[2].i;
	k->last_used_ms = c[3].type == STORE_NULL ? 0 : c[3].i;
	k->revoked = c[4].type != STORE_NULL;
	return 1; /* one row is all there is */
}

int http_token_check(struct store *st, const char *token, struct http_actor *out,
		     struct ward_err *err)
{
	size_t plen = sizeof(TOKEN_PREFIX) - 1;
	if (!token || strlen(token) != TOKEN_LEN || strncmp(token, TOKEN_PREFIX, plen) != 0 ||
	    !is_hex(token + plen, TOKEN_LEN - plen))
		return 1;
	char id[TOKEN_ID_HEX + 1];
	memcpy(id, token + plen, TOKEN_ID_HEX);
	id[TOKEN_ID_HEX] = '\0';
	struct check_ctx k = {0};
	struct store_val p[] = {SV_TEXT(id)};
	int rc = store_query(st,
			     "SELECT hash, name, role, last_used_ms, revoked_ms FROM tokens WHERE id = ?",
			     p, 1, check_row, &k, err);
	if (rc < 0)
		return -1;
	uint8_t hash[WARD_SHA256_LEN];
	ward_sha256(token, TOKEN_LEN, hash);
	if (!k.found || !k.hash_ok || !ward_ct_equal(hash, k.hash, WARD_SHA256_LEN))
		return 1;
	if (k.revoked)
		return 2;
	memcpy(out->id, id, sizeof(id));
	snprintf(out->name, sizeof(out->name), "%s", k.name);
	out->role = (enum http_role)k.role;
	int64_t now = ward_now_ms();
	if (now - k.last_used_ms >= LAST_USED_RESOLUTION_MS) {
		struct store_val u[] = {SV_INT(now), SV_TEXT(id)};
		struct ward_err e2;
		ward_err_clear(&e2);
		(void)store_exec(st, "UPDATE tokens SET last_used_ms = ? WHERE id = ?", u, 2, NULL,
				 &e2); /* best effort: a missed last_used is not worth a 500 */
	}
	return 0;
}

static int count_row(void *arg, const struct store_val *c, size_t nc)
{
	*(int64_t *)arg = c[0].i;
	return 0;
}

int http_token_count_active(struct store *st)
{
	int64_t n = 0;
	struct ward_err err;
	ward_err_clear(&err);
	if (store_query(st, "SELECT COUNT(*) FROM tokens WHERE revoked_ms IS NULL", NULL, 0,
			count_row, &n, &err) != STORE_OK)
		return -1;
	return (int)n;
}
