/* audit_glue.c: how the daemon writes its audit trail, and the anchor that guards its tail.
 *
 * ward_audit_req/ward_audit_system fill the actor and source and append one record,
 * durable before they return. After each append the anchor (seq and hash of the newest
 * record) is stored in state.db, so `ward audit verify` catches records cut from the end
 * of the trail, which a hash chain alone cannot see. The anchor only moves forward.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "security/security.h"
#include "store/store.h"

static const struct store_migration anchor_migrations[] = {
	{1, "CREATE TABLE audit_anchor ("
	    " id INTEGER PRIMARY KEY CHECK (id = 1),"
	    " seq INTEGER NOT NULL,"
	    " hash TEXT NOT NULL,"
	    " updated_ms INTEGER NOT NULL)"},
};

void core_anchor_register(void)
{
	store_register_migrations("core", anchor_migrations,
				  sizeof(anchor_migrations) / sizeof(anchor_migrations[0]));
}

void core_anchor_update(struct ward_ctx *ctx)
{
	uint64_t seq = 0;
	char hash[2 * WARD_SHA256_LEN + 1];
	audit_head(ctx->audit, &seq, hash);
	if (seq == 0)
		return;
	struct store_val p[] = {SV_INT((int64_t)seq), SV_TEXT(hash), SV_INT(ward_now_ms())};
	struct ward_err err;
	ward_err_clear(&err);
	if (store_exec(ctx->store,
		       "INSERT INTO audit_anchor (id, seq, hash, updated_ms) VALUES (1, ?, ?, ?)"
		       " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,"
		       " updated_ms = excluded.updated_ms WHERE excluded.seq > audit_anchor.seq",
		       p, 3, NULL, &err) != STORE_OK)
		ward_log(LOG_WARN, "could not update the audit anchor", "error", err.msg, NULL);
}

static int append(struct ward_ctx *ctx, const struct audit_record *r)
{
	struct ward_err err;
	ward_err_clear(&err);
	if (audit_append(ctx->audit, r, &err) != 0) {
		ward_log(LOG_ERROR, "audit append failed", "error", err.msg, "action", r->action,
			 NULL);
		return -1;
	}
	core_anchor_update(ctx);
	return 0;
}

int ward_audit_req(struct ward_ctx *ctx, const struct http_req *req, const char *action,
		   const char *target, const char *result, const char *details_json)
{
	struct audit_record r = {
		.actor_id = req->actor.id,
		.actor_name = req->actor.name,
		.source = req->client,
		.action = action,
		.target = target,
		.result = result,
		.details = details_json,
		.request_id = req->request_id,
	};
	return append(ctx, &r);
}

int ward_audit_system(struct ward_ctx *ctx, const char *action, const char *target,
		      const char *result, const char *details_json)
{
	struct audit_record r = {
		.actor_id = "system",
		.actor_name = "system",
		.source = "local",
		.action = action,
		.target = target,
		.result = result,
		.details = details_json,
	};
	return append(ctx, &r);
}

struct anchor_row {
	uint64_t seq;
	char *hash;
};

static int anchor_row(void *arg, const struct store_val *c, size_t nc)
{
	struct anchor_row *a = arg;
	a->seq = (uint64_t)c[0].i;
	a->hash = ward_strdup(c[1].s ? c[1].s : "");
	return 0;
}

int ward_audit_anchor_read(const char *data_dir, uint64_t *seq, char hash_hex[65],
			   struct ward_err *err)
{
	*seq = 0;
	hash_hex[0] = '\0';
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/state.db", data_dir);
	struct store *st = store_open(buf_cstr(&path), true, err);
	buf_free(&path);
	if (!st)
		return -1;
	struct anchor_row a = {0};
	struct ward_err qerr;
	ward_err_clear(&qerr);
	int rc = store_query(st, "SELECT seq, hash FROM audit_anchor WHERE id = 1", NULL, 0,
			     anchor_row, &a, &qerr);
	store_close(st);
	if (rc < 0) {
		/* No anchor table yet (a store from before it existed): nothing to check. */
		free(a.hash);
		return 0;
	}
	*seq = a.seq;
	if (a.hash)
		snprintf(hash_hex, 65, "%s", a.hash);
	free(a.hash);
	return 0;
}
