/* audit_internal.h: what audit.c, audit_verify.c, audit_format.c and the unit tests share.
 * Not part of the public contract (that is security.h); nothing outside src/security and
 * tests/unit/security_*.c includes it.
 */
#ifndef WARD_AUDIT_INTERNAL_H
#define WARD_AUDIT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "security/security.h"

/* A segment is closed and a new one started before a line would take it past this size, so
 * one file stays small enough to copy, inspect and verify by hand. */
#define AUDIT_SEGMENT_MAX_BYTES (64LL * 1024 * 1024)
/* A record line longer than this is refused by audit_append: details are a summary, not a
 * payload, and readers hold one whole line in memory. */
#define AUDIT_LINE_MAX_BYTES (1024 * 1024)
/* audit_query with limit 0 returns this many entries. */
#define AUDIT_QUERY_DEFAULT_LIMIT 100
/* ...and never more than this many, which bounds the memory one query holds. */
#define AUDIT_QUERY_MAX_LIMIT 10000
#define AUDIT_HEX_LEN         (2 * WARD_SHA256_LEN)

/* The canonical bytes of a record, the ones its hash covers:
 * {"seq":N,"time":"...","actor_id":"...",...,"details":{...},"prev":"<hex>"}
 * e->details must already be canonical (see audit_canon_details). */
void audit_canon(struct buf *out, const struct audit_entry *e);
/* The line as written (without '\n'): canon with its closing '}' replaced by
 * ,"hash":"<hash_hex>"} . */
void audit_line_from_canon(struct buf *line, const struct buf *canon, const char *hash_hex);
/* Parses JSON object text (n bytes) and returns it as canonical text (compact, keys sorted),
 * a new string the caller frees. NULL with err when it is not a JSON object. */
char *audit_canon_details(const char *text, size_t n, struct ward_err *err);
/* "2026-11-24T11:51:03.123Z"; the only form the trail writes and reads. */
void audit_fmt_time(int64_t ms, char out[32]);
int audit_parse_time(const char *s, size_t n, int64_t *out_ms);

/* Sorted numbers of the segment files (NNNNNN.log) in dir; *out is a new array, caller frees.
 * 0 (possibly with *n == 0), or -1 with err (dir unreadable). */
int audit_list_segments(const char *dir, uint32_t **out, size_t *n, struct ward_err *err);
void audit_segment_name(uint32_t no, char out[32]);

/* Tests only: roll segments at max_bytes instead of AUDIT_SEGMENT_MAX_BYTES. */
void audit_set_segment_max(struct audit *a, int64_t max_bytes);

#endif
