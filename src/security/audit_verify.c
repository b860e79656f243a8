/* audit_verify.c: offline verification of an audit trail directory (`ward audit verify`).
 *
 * Walks the segments in numeric order and every line in them, recomputing each record's hash
 * from its parsed fields (the bytes are defined in audit_format.c) and checking that seq runs
 * 1, 2, 3... and that each prev is its predecessor's hash. Stops at the first bad record and
 * names it: segment, line, seq and what kind of damage explains it. Reads only; safe while
 * the daemon appends (an incomplete last line of the last segment is an append in progress
 * or a crash leftover that the daemon trims, never an acknowledged record, so it is skipped).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "security/audit_internal.h"

struct verify_state {
	uint64_t seq;                 /* last good record */
	char hash[AUDIT_HEX_LEN + 1]; /* its hash */
	uint64_t count;
	uint64_t anchor_seq;
	char anchor_hash[AUDIT_HEX_LEN + 1];
	struct buf canon, line;
};

/* 0 when the record at (seg, line_no) is good and advances the chain; 1 with err otherwise. */
static int check_record(struct verify_state *vs, const char *seg, uint64_t line_no,
                        const char *text, size_t len, struct ward_err *err) {
	struct audit_entry e;
	struct ward_err perr = {{0}};
	uint8_t h[WARD_SHA256_LEN];
	char hex[AUDIT_HEX_LEN + 1];
	uint64_t expect = vs->seq + 1;
	int rc = 1;

	if (audit_parse_line(text, len, &e, &perr) < 0) {
		ward_err_set(err, "segment %s line %" PRIu64 ": unparsable line: %s", seg, line_no,
		             perr.msg);
		return 1;
	}
	buf_reset(&vs->canon);
	buf_reset(&vs->line);
	audit_canon(&vs->canon, &e);
	ward_sha256(vs->canon.data, vs->canon.len, h);
	ward_hex(h, sizeof h, hex);
	audit_line_from_canon(&vs->line, &vs->canon, e.hash);
	if (strcmp(hex, e.hash) != 0 || vs->line.len != len ||
	    memcmp(vs->line.data, text, len) != 0) {
		ward_err_set(err,
		             "segment %s line %" PRIu64 ", seq %" PRIu64 ": hash mismatch: the "
		             "record was modified",
		             seg, line_no, e.seq);
		goto out;
	}
	if (e.seq > expect) {
		ward_err_set(err,
		             "segment %s line %" PRIu64 ", seq %" PRIu64 ": sequence gap: "
		             "expected seq %" PRIu64 ", found %" PRIu64 ": records were deleted",
		             seg, line_no, e.seq, expect, e.seq);
		goto out;
	}
	if (e.seq < expect) {
		ward_err_set(err,
		             "segment %s line %" PRIu64 ", seq %" PRIu64 ": sequence out of "
		             "order: expected seq %" PRIu64 ", found %" PRIu64 ": records were "
		             "inserted, duplicated or reordered",
		             seg, line_no, e.seq, expect, e.seq);
		goto out;
	}
	if (strcmp(e.prev, vs->hash) != 0) {
		ward_err_set(err,
		             "segment %s line %" PRIu64 ", seq %" PRIu64 ": prev hash "
		             "mismatch: a record before it was deleted, inserted or reordered",
		             seg, line_no, e.seq);
		goto out;
	}
	if (vs->anchor_seq == e.seq && strcmp(vs->anchor_hash, e.hash) != 0) {
		ward_err_set(err,
		             "segment %s line %" PRIu64 ", seq %" PRIu64 ": hash %s but the "
		             "anchor says %s: the chain was rewritten at or before this record",
		             seg, line_no, e.seq, e.hash, vs->anchor_hash);
		goto out;
	}
	vs->seq = e.seq;
	memcpy(vs->hash, e.hash, sizeof vs->hash);
	vs->count++;
	rc = 0;
out:
	audit_entry_free(&e);
	return rc;
}

/* 0 when the segment is good, 1 on the first bad record, -1 on I/O error. */
static int verify_segment(struct verify_state *vs, const char *dir, uint32_t no, bool is_last,
                          struct ward_err *err) {
	char name[32];
	struct buf path = BUF_INIT;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t line_no = 0;
	int rc = 0;

	audit_segment_name(no, name);
	buf_printf(&path, "%s/%s", dir, name);
	f = fopen(path.data, "re");
	if (!f) {
		ward_err_set(err, "audit segment %s: %s", path.data, strerror(errno));
		buf_free(&path);
		return -1;
	}
	errno = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		line_no++;
		if (line[len - 1] != '\n') {
			if (is_last)
				break; /* see the file-top comment */
			ward_err_set(err,
			             "segment %s line %" PRIu64 ": unparsable line: it has no "
			             "end (a torn write in a segment that is not the last)",
			             name, line_no);
			rc = 1;
			goto out;
		}
		rc = check_record(vs, name, line_no, line, (size_t)len - 1, err);
		if (rc)
			goto out;
	}
	if (ferror(f)) {
		ward_err_set(err, "audit segment %s: read failed: %s", path.data, strerror(errno));
		rc = -1;
	}
out:
	free(line);
	fclose(f);
	buf_free(&path);
	return rc;
}

int audit_verify(const char *dir, uint64_t anchor_seq, const char *anchor_hash, uint64_t *count,
                 struct ward_err *err) {
	struct verify_state vs = {0};
	uint32_t *segs = NULL;
	size_t n = 0;
	int rc = -1;

	if (count)
		*count = 0;
	memset(vs.hash, '0', AUDIT_HEX_LEN);
	if (anchor_seq > 0) {
		size_t len = anchor_hash ? strlen(anchor_hash) : 0;
		if (len != AUDIT_HEX_LEN) {
			ward_err_set(err,
			             "the anchor hash must be %d hex digits, got %zu characters",
			             AUDIT_HEX_LEN, len);
			return -1;
		}
		for (size_t i = 0; i < len; i++) {
			char c = anchor_hash[i];
			if (c >= 'A' && c <= 'F')
				c = (char)(c - 'A' + 'a');
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
				ward_err_set(err,
				             "the anchor hash must be hex digits; character %zu "
				             "is not",
				             i + 1);
				return -1;
			}
			vs.anchor_hash[i] = c;
		}
		vs.anchor_seq = anchor_seq;
	}
	if (ward_crypto_init() < 0) {
		ward_err_set(err, "audit: the crypto library failed to initialise");
		return -1;
	}
	if (audit_list_segments(dir, &segs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		rc = verify_segment(&vs, dir, segs[i], i + 1 == n, err);
		if (rc)
			goto out;
	}
	if (anchor_seq > vs.seq) {
		ward_err_set(err,
		             "chain ends at seq %" PRIu64 " but the anchor says seq %" PRIu64
		             " with hash %s: records were deleted from the end",
		             vs.seq, anchor_seq, vs.anchor_hash);
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	if (count)
		*count = vs.count;
	free(segs);
	buf_free(&vs.canon);
	buf_free(&vs.line);
	return rc;
}
