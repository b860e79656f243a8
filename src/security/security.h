/* security.h: the one public header of src/security. Today: the audit trail.
 *
 * The audit trail is append-only and hash-chained. Each record is one JSON line in a
 * segment file under <data>/audit/ and carries its sequence number and the SHA-256 of its
 * predecessor, so a modified, deleted, inserted or reordered record breaks the chain and
 * audit_verify() names the first bad one. audit_append() returns only after the record is
 * on disk (fdatasync), so a record whose API call returned survives kill -9.
 *
 * Later: auth-failure watch, file integrity, vulnerability scan, each in its own file.
 */
#ifndef WARD_SECURITY_H
#define WARD_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* One record as callers give it. Strings are borrowed for the call; NULL means empty. */
struct audit_record {
	const char *actor_id;   /* token id, or "system" */
	const char *actor_name; /* token name, or "system" */
	const char *source;     /* client address ("127.0.0.1"), or "local" */
	const char *action;     /* dotted verb: "token.create", "config.reload", "auth.fail" */
	const char *target;     /* what was acted on: a token id, a path, a file */
	const char *result;     /* "ok", "denied", "rejected", "error" */
	const char *details;    /* a JSON object text, or NULL for {} */
	const char *request_id; /* the HTTP request id, when there is one */
};

/* A record as read back. Strings are owned by the entry (freed with audit_entry_free). */
struct audit_entry {
	uint64_t seq;
	int64_t ts_ms;
	char *actor_id, *actor_name, *source, *action, *target, *result, *details, *request_id;
	char prev[2 * WARD_SHA256_LEN + 1]; /* hex of the predecessor's hash */
	char hash[2 * WARD_SHA256_LEN + 1]; /* hex of this record's hash */
};
void audit_entry_free(struct audit_entry *e);

struct audit;
/* Opens (creating if needed) <dir>. A torn last line (a write cut by a crash, never
 * acknowledged) is trimmed and reported through ward_log. NULL with err on failure. */
struct audit *audit_open(const char *dir, struct ward_err *err);
void audit_close(struct audit *a); /* NULL-safe */
/* Appends one record, durable before return. Thread-safe. 0, or -1 with err. */
int audit_append(struct audit *a, const struct audit_record *r, struct ward_err *err);
/* The last sequence number and hash (hex), e.g. to anchor them elsewhere. */
void audit_head(struct audit *a, uint64_t *seq, char hash_hex[2 * WARD_SHA256_LEN + 1]);
/* Total bytes of the segment files (for /metrics). */
int64_t audit_size_bytes(struct audit *a);

/* Query: entries matching every set filter, newest first, at most limit of them, starting
 * below before_seq (0: from the newest). Filters: since/until in ms (0: unbounded), actor
 * matches actor_id or actor_name exactly, action matches exactly or as a prefix when it ends
 * in '.' or '*'. Returns the number of entries written to *out (caller frees each with
 * audit_entry_free and the array with free), or -1 with err. */
struct audit_query {
	int64_t since_ms, until_ms;
	const char *actor;
	const char *action;
	uint64_t before_seq;
	size_t limit;
};
int audit_query(struct audit *a, const struct audit_query *q, struct audit_entry **out,
		struct ward_err *err);

/* Verifies the chain in dir offline (the daemon may be running). On success returns 0 and
 * sets *count. On the first bad record returns 1 and err names it ("segment 000001.log line
 * 17, seq 17: hash mismatch: the record was modified"); -1 on I/O error.
 * If anchor_seq > 0, the chain must reach that seq with hash anchor_hash (hex), which
 * catches records deleted from the tail. */
int audit_verify(const char *dir, uint64_t anchor_seq, const char *anchor_hash, uint64_t *count,
		 struct ward_err *err);

/* Parses one JSON line as written by audit_append, without checking the chain. 0 or -1.
 * Exposed for the fuzz target and for tools. */
int audit_parse_line(const char *line, size_t n, struct audit_entry *out, struct ward_err *err);

#endif
