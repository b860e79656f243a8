/* logs_internal.h: what the files of src/logs share and nobody else sees: varints,
 * the store's snapshot interface for the query engine, the query AST, and the module's
 * state (config, sources).
 */
#ifndef WARD_LOGS_INTERNAL_H
#define WARD_LOGS_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "logs/logs.h"


static inline void logs_put_u32(uint8_t *p, uint32_t v) {
	memcpy(p, &v, 4); /* little-endian hosts only (x86-64, arm64): checked at build */
}
static inline uint32_t logs_get_u32(const uint8_t *p) {
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline void logs_put_i64(uint8_t *p, int64_t v) {
	memcpy(p, &v, 8);
}
static inline int64_t logs_get_i64(const uint8_t *p) {
	int64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline void logs_buf_uvarint(struct buf *b, uint64_t v) {
	uint8_t tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	buf_append(b, tmp, n);
}
static inline int logs_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
	uint64_t v = 0;
	unsigned shift = 0;
	while (*p < end && shift < 64) {
		uint8_t c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
		shift += 7;
	}
	return -1;
}

/* One raw (uncompressed) block is a sequence of entries: zigzag varint of ts minus the
 * previous entry's ts (0 before the first), uvarint length, the line bytes. */
void logs_raw_put(struct buf *raw, int64_t *prev, int64_t ts, const char *line, size_t len);
/* 1 and the next entry, 0 at the end, -1 when corrupt. */
int logs_raw_next(const uint8_t **p, const uint8_t *end, int64_t *prev, int64_t *ts,
                  const char **line, size_t *len);

/* ---- store snapshot for queries ---- */
#define LOGS_HEAD_SEG UINT32_MAX
struct logs_blockref {
	uint32_t seg;    /* segment number, or LOGS_HEAD_SEG for the snapshot's head copy */
	uint32_t stream; /* index into the snapshot's streams */
	uint64_t off;    /* offset of the block header in the segment */
	uint32_t comp_len, raw_len, count;
	int64_t min_ts, max_ts;
};
struct logs_snapshot {
	char *dir;
	struct labels *streams; /* matched streams' labels */
	size_t nstreams;
	struct logs_blockref *blocks; /* overlapping the range */
	size_t nblocks;
	struct buf *heads; /* per stream: a copy of its buffered entries (raw format) */
	int *fds;          /* per segment number seen: lazily opened (index by position) */
	uint32_t *fd_seg;
	size_t nfds;
};
/* Selects streams matching every matcher, and their blocks overlapping [start, end]. */
int logs_store_snapshot(struct logs_store *s, const struct matcher *m, size_t nm, int64_t start_ns,
                        int64_t end_ns, struct logs_snapshot *out, struct ward_err *err);
/* Reads and decompresses a block into raw (replacing its content). 0, or -1 when the block
 * is unreadable or fails its crc (err says where; the caller skips it). */
int logs_snapshot_read(struct logs_snapshot *sn, const struct logs_blockref *b, struct buf *raw,
                       struct ward_err *err);
void logs_snapshot_free(struct logs_snapshot *sn);

/* ---- query AST ---- */
enum logs_stage_kind {
	STAGE_LINE_CONTAINS,  /* |= "x" */
	STAGE_LINE_NCONTAINS, /* != "x" */
	STAGE_LINE_RE,        /* |~ "re" */
	STAGE_LINE_NRE,       /* !~ "re" */
	STAGE_JSON,
	STAGE_LOGFMT,
	STAGE_FIELD, /* | name op value */
};
enum logs_cmp {
	CMP_EQ,
	CMP_NEQ,
	CMP_RE,
	CMP_NRE,
	CMP_GT,
	CMP_GE,
	CMP_LT,
	CMP_LE,
};
struct logs_stage {
	enum logs_stage_kind kind;
	char *text;   /* line filter text, or field name */
	char *value;  /* field filter value */
	bool numeric; /* field filter value is a number */
	double num;
	enum logs_cmp cmp;
	void *re; /* pcre2_code for regex line/field filters */
};
enum logs_range_fn { RANGE_COUNT, RANGE_RATE, RANGE_BYTES, RANGE_BYTES_RATE };
enum logs_agg_fn { AGG_NONE, AGG_SUM, AGG_COUNT, AGG_AVG, AGG_MIN, AGG_MAX };
struct logs_query {
	struct matcher *matchers;
	size_t nmatchers;
	struct logs_stage *stages;
	size_t nstages;
	bool metric;
	enum logs_range_fn range_fn;
	int64_t range_ns;
	enum logs_agg_fn agg;
	bool without;
	char **by;
	size_t nby;
};
/* Runs the pipeline over one line; fields is scratch. True when the line passes. With
 * labels_out, the stream labels plus extracted fields are written there. */
bool logs_pipeline_run(const struct logs_query *q, const struct labels *stream, const char *line,
                       size_t len, struct logs_fields *fields, struct labels *labels_out,
                       bool *has_fields);

#endif
