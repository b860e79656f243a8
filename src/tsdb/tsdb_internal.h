/* tsdb_internal.h: the structures shared by the files of src/tsdb (never included outside).
 *
 * Layers: crc32c and varints (here) < XOR (gorilla.c) and DQ (dq.c) chunks, chunk.c choosing
 * and reading either < index (postings) < head (in-memory series) / wal (log segments) /
 * block (immutable on-disk blocks) < compact < db (the public API, locking). Every struct here is owned by exactly one db and guarded by the
 * db's rwlock (see db.c); nothing here locks on its own.
 */
#ifndef WARD_TSDB_INTERNAL_H
#define WARD_TSDB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "tsdb/tsdb.h"

/* CRC-32C comes from base (ward_crc32c). */

/* ---- little-endian and varint helpers ---- */
static inline void tsdb_put_u32(uint8_t *p, uint32_t v) {
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t tsdb_get_u32(const uint8_t *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void tsdb_put_u64(uint8_t *p, uint64_t v) {
	tsdb_put_u32(p, (uint32_t)v);
	tsdb_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t tsdb_get_u64(const uint8_t *p) {
	return (uint64_t)tsdb_get_u32(p) | (uint64_t)tsdb_get_u32(p + 4) << 32;
}
static inline void tsdb_buf_u32(struct buf *b, uint32_t v) {
	uint8_t t[4];
	tsdb_put_u32(t, v);
	buf_append(b, t, 4);
}
static inline void tsdb_buf_u64(struct buf *b, uint64_t v) {
	uint8_t t[8];
	tsdb_put_u64(t, v);
	buf_append(b, t, 8);
}
static inline void tsdb_buf_uvarint(struct buf *b, uint64_t v) {
	uint8_t t[10];
	size_t n = 0;
	while (v >= 0x80) {
		t[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	t[n++] = (uint8_t)v;
	buf_append(b, t, n);
}
static inline void tsdb_buf_varint(struct buf *b, int64_t v) {
	tsdb_buf_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static inline void tsdb_buf_str(struct buf *b, const char *s) {
	size_t n = strlen(s);
	tsdb_buf_uvarint(b, n);
	buf_append(b, s, n);
}
/* Readers: 0, or -1 when the input ends early or is malformed; *p advances. */
static inline int tsdb_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
	uint64_t v = 0;
	unsigned shift = 0;
	while (*p < end) {
		uint8_t c = *(*p)++;
		if (shift == 63 && c > 1)
			return -1;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
		shift += 7;
		if (shift > 63)
			return -1;
	}
	return -1;
}
static inline int tsdb_get_varint(const uint8_t **p, const uint8_t *end, int64_t *out) {
	uint64_t u;
	if (tsdb_get_uvarint(p, end, &u) < 0)
		return -1;
	*out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return 0;
}
/* A length-prefixed string copied into a new NUL-terminated string (no embedded NUL). */
char *tsdb_get_str(const uint8_t **p, const uint8_t *end);
/* Reads labels written as uvarint count + (name, value) strings; validates the set. */
int tsdb_get_labels(const uint8_t **p, const uint8_t *end, struct labels *ls);
void tsdb_buf_labels(struct buf *b, const struct labels *ls);
/* Names valid, sorted, unique, __name__ present, values non-empty. NULL or a reason. */
const char *tsdb_labels_invalid(const struct labels *ls);

/* Time arithmetic that saturates instead of overflowing (timestamps may be any int64). */
static inline int64_t tsdb_floor_div(int64_t a, int64_t b) {
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
static inline int64_t tsdb_sat_add(int64_t a, int64_t b) {
	int64_t r;
	return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}
/* Start of the aligned range of width w holding t (clamped at INT64_MIN). */
static inline int64_t tsdb_align(int64_t t, int64_t w) {
	int64_t r;
	return __builtin_mul_overflow(tsdb_floor_div(t, w), w, &r) ? INT64_MIN : r;
}

static inline uint64_t tsdb_dbits(double v) {
	uint64_t u;
	memcpy(&u, &v, 8);
	return u;
}
static inline double tsdb_bitsd(uint64_t u) {
	double v;
	memcpy(&v, &u, 8);
	return v;
}

/* ---- gorilla.c: one XOR chunk ----
 * Layout: [u16 big-endian sample count, at most GORILLA_MAX_SAMPLES][bit stream]. Timestamps: first as 64 raw bits, then
 * delta-of-delta in buckets; values: XOR with the previous value's bits. */
#define GORILLA_SAMPLES_PER_CHUNK 120
struct gorilla_enc {
	uint8_t *data;
	uint32_t len, cap; /* bytes used (last maybe partial), allocated */
	uint8_t bits;      /* bits used in data[len-1]: 1..8, or 8 when len is 2 */
	uint8_t leading, trailing;
	uint16_t n;
	int64_t t, tdelta;
	uint64_t v;
};
void gorilla_enc_init(struct gorilla_enc *e);
void gorilla_enc_free(struct gorilla_enc *e);
/* 0, or -1 when t is older than the previous sample or the chunk is full. */
int gorilla_append(struct gorilla_enc *e, int64_t t, double v);
/* Shrinks the buffer to its length and hands it over (the encoder is reset). */
uint8_t *gorilla_detach(struct gorilla_enc *e, uint32_t *len);

struct gorilla_it {
	const uint8_t *data;
	size_t len, bitoff;
	uint16_t n, i;
	uint8_t leading, trailing;
	int64_t t, tdelta;
	uint64_t v;
};
int gorilla_it_init(struct gorilla_it *it, const uint8_t *data, size_t len);
/* 1 with a sample, 0 at the end, -1 when the chunk is malformed. */
int gorilla_it_next(struct gorilla_it *it, int64_t *t, double *v);

/* ---- dq.c: one decimal-quantised chunk (values m / 10^k, integers Rice-coded) ----
 * Bit 15 of the leading u16 count marks DQ; XOR chunks never set it. */
#define GORILLA_MAX_SAMPLES 0x7fff
#define DQ_MAX_SAMPLES      0x7fff
struct dq_col {
	uint64_t base, g, d, x; /* residual base and step, previous difference, value */
	uint8_t r;              /* Rice parameter */
	bool order2, centred;
};
struct dq_it {
	const uint8_t *data;
	size_t len, bitoff;
	uint16_t n, i;
	uint8_t k;
	int64_t t;
	struct dq_col col[2]; /* timestamps, m */
};
/* A new DQ chunk of the n samples (t ascending), or NULL when some value is not m / 10^k
 * bit for bit (k <= 15, |m| <= 2^53) or n is 0 or too large. */
uint8_t *dq_encode(const int64_t *t, const double *v, size_t n, uint32_t *len);
bool dq_is_dq(const uint8_t *data, size_t len);
int dq_it_init(struct dq_it *it, const uint8_t *data, size_t len);
/* 1 with a sample, 0 at the end, -1 when the chunk is malformed. */
int dq_it_next(struct dq_it *it, int64_t *t, double *v);

/* ---- chunk.c: any chunk encoding ---- */
struct chunk_it {
	bool dq;
	union {
		struct gorilla_it x;
		struct dq_it q;
	} u;
};
int chunk_it_init(struct chunk_it *it, const uint8_t *data, size_t len);
/* 1 with a sample, 0 at the end, -1 when the chunk is malformed. */
static inline int chunk_it_next(struct chunk_it *it, int64_t *t, double *v) {
	return it->dq ? dq_it_next(&it->u.q, t, v) : gorilla_it_next(&it->u.x, t, v);
}
/* The smaller of the XOR and the DQ chunk of n samples (t ascending, 1 <= n <=
 * GORILLA_MAX_SAMPLES); new buffer, caller frees. NULL only when t goes backwards. */
uint8_t *chunk_encode(const int64_t *t, const double *v, size_t n, uint32_t *len);

/* ---- sample vectors (query and cut scratch) ---- */
struct tsdb_svec {
	int64_t *t;
	double *v;
	size_t n, cap;
};
void svec_push(struct tsdb_svec *s, int64_t t, double v);
void svec_free(struct tsdb_svec *s);
/* Decodes a chunk and appends samples within [mint, maxt]. 0 or -1 when malformed. */
int svec_add_chunk(struct tsdb_svec *s, const uint8_t *data, size_t len, int64_t mint,
                   int64_t maxt);
/* Sorts by time (stable) and keeps the LAST of equal timestamps. */
void svec_sort_dedup(struct tsdb_svec *s);

/* ---- index.c: postings per name=value ---- */
struct idx_postings {
	char *value;
	uint32_t *refs; /* sorted ascending, unique */
	uint32_t n, cap;
	struct idx_postings *next;
};
struct idx_name {
	char *name;
	struct idx_postings **tab; /* chained hash of values */
	size_t ntab, nvals;
	struct idx_name *next;
};
struct tsdb_index {
	struct idx_name **tab;
	size_t ntab, nnames;
	uint32_t *all; /* every ref */
	size_t nall, capall;
};
void idx_init(struct tsdb_index *x);
void idx_free(struct tsdb_index *x);
void idx_add(struct tsdb_index *x, uint32_t ref, const struct labels *ls);
void idx_del(struct tsdb_index *x, uint32_t ref, const struct labels *ls);
/* Refs matching every matcher (all refs when nms is 0), sorted; *out is new (may be NULL
 * with *n 0). */
void idx_select(const struct tsdb_index *x, const struct matcher *ms, size_t nms, uint32_t **out,
                size_t *n);
const struct idx_postings *idx_get(const struct tsdb_index *x, const char *name, const char *value);
size_t idx_bytes(const struct tsdb_index *x);
/* Calls fn for every (name, value, postings). */
void idx_each(const struct tsdb_index *x,
              void (*fn)(void *arg, const char *name, const struct idx_postings *p), void *arg);

/* ---- head.c ---- */
struct head_chunk {
	uint8_t *data;
	uint32_t len;
	uint16_t n;
	int64_t mint, maxt;
};
struct ooo_sample {
	int64_t t;
	double v;
};
struct head_series {
	uint32_t ref;
	uint64_t hash;
	struct labels ls;
	struct head_chunk *chunks; /* closed, ascending time */
	uint32_t nchunks, capchunks;
	struct gorilla_enc open;
	int64_t open_mint;
	int64_t maxt;           /* newest in-order sample; INT64_MIN when empty */
	struct ooo_sample *ooo; /* sorted side buffer of out-of-order samples */
	uint32_t nooo, capooo;
	struct head_series *hnext, *rnext; /* chains by labels hash and by ref */
};
enum head_result { HEAD_OK = 0, HEAD_TOO_OLD, HEAD_DUPLICATE, HEAD_IGNORED };
struct tsdb_head {
	struct head_series **htab, **rtab;
	size_t ntab, nseries;
	uint32_t next_ref;
	struct tsdb_index idx;
	uint64_t samples, chunks;
	int64_t bytes;
	int64_t mint, maxt; /* INT64_MAX/INT64_MIN when empty */
};
void head_init(struct tsdb_head *h);
void head_free(struct tsdb_head *h);
struct head_series *head_by_labels(struct tsdb_head *h, const struct labels *ls, uint64_t hash);
struct head_series *head_by_ref(struct tsdb_head *h, uint32_t ref);
/* Creates a series with this ref (copies ls); next_ref moves past it. */
struct head_series *head_create(struct tsdb_head *h, uint32_t ref, const struct labels *ls,
                                uint64_t hash);
void head_remove(struct tsdb_head *h, struct head_series *s);
enum head_result head_append(struct tsdb_head *h, struct head_series *s, int64_t t, double v,
                             int64_t ooo_window_ms);
/* Appends the series' samples within [mint, maxt] to out, sorted and de-duplicated. */
void head_series_read(const struct head_series *s, int64_t mint, int64_t maxt,
                      struct tsdb_svec *out);
bool head_series_overlaps(const struct head_series *s, int64_t mint, int64_t maxt);
/* Every series, sorted by labels (new array, caller frees). */
struct head_series **head_sorted(struct tsdb_head *h, size_t *n);
void head_recount(struct tsdb_head *h); /* recomputes samples, chunks, bytes, mint, maxt */

/* ---- wal.c ---- */
#define WAL_SEGMENT_MAX (128u << 20)
enum wal_rec_type { WAL_REC_SERIES = 1, WAL_REC_SAMPLES = 2 };
struct tsdb_wal {
	char *dir;  /* <db>/wal */
	char *qdir; /* <db>/quarantine */
	int fd;
	uint32_t seg;
	uint64_t seg_size;
	int64_t bytes; /* all segments */
	bool dirty;    /* written since the last fsync */
};
int wal_open(struct tsdb_wal *w, const char *dbdir, struct ward_err *err);
void wal_close(struct tsdb_wal *w);
/* Replays every segment in order, calling fn for each valid record. A bad record in the
 * last segment truncates it there; a bad earlier segment is moved to quarantine. Adds
 * the number of quarantined items to *quarantined. Then opens a fresh segment. */
int wal_replay(struct tsdb_wal *w, int (*fn)(void *arg, uint8_t type, const uint8_t *p, size_t n),
               void *arg, uint64_t *quarantined, struct ward_err *err);
/* Appends one or more framed records (see wal_frame) with a single write; on failure the
 * segment is cut back to where it was and nothing counts as written. */
int wal_write(struct tsdb_wal *w, const void *data, size_t n, bool sync, struct ward_err *err);
int wal_sync(struct tsdb_wal *w, struct ward_err *err);
/* Frames payload as one record appended to out. */
void wal_frame(struct buf *out, uint8_t type, const void *payload, size_t n);
/* Starts a new segment; returns the number of the first segment to keep. */
int wal_cut(struct tsdb_wal *w, struct ward_err *err);
/* Deletes segments numbered below seg. */
void wal_remove_before(struct tsdb_wal *w, uint32_t seg);

/* ---- block.c ---- */
enum block_col { COL_RAW = 0, COL_MIN, COL_MAX, COL_SUM, COL_COUNT, COL_LAST, COL_N };
struct block_chunk_meta {
	int64_t mint, maxt;
	uint64_t off; /* of the chunk's length field in the chunks file */
	uint32_t len;
	uint16_t n;
	uint8_t col;
};
struct block_series {
	struct labels ls;
	struct block_chunk_meta *chunks;
	uint32_t nchunks;
};
struct tsdb_block {
	char ulid[27];
	char *dir;
	int64_t mint, maxt; /* inclusive */
	int level;
	int64_t resolution_ms;
	uint64_t nsamples, nchunks;
	int64_t bytes;
	char **sources;
	size_t nsources;
	uint8_t *map;
	size_t maplen;
	struct block_series *series; /* sorted by labels */
	uint32_t nseries;
	struct tsdb_index idx;
};
struct block_meta_in {
	int64_t mint, maxt;
	int level;
	int64_t resolution_ms;
	const char *const *sources; /* ulids of compacted blocks (NULL: itself) */
	size_t nsources;
};
struct block_writer;
struct block_writer *bw_new(const char *dbdir, struct ward_err *err);
/* Series must come sorted by labels. cols[c] is NULL for absent columns; t ascending. */
int bw_add(struct block_writer *bw, const struct labels *ls, const int64_t *t,
           const double *const cols[COL_N], size_t n, struct ward_err *err);
/* Writes index and meta.json, renames <ulid>.tmp to <ulid>. ulid_out gets the id. An
 * empty writer (no series) writes nothing and sets ulid_out to "". */
int bw_finish(struct block_writer *bw, const struct block_meta_in *m, char ulid_out[27],
              struct ward_err *err);
void bw_abort(struct block_writer *bw);
/* Opens and verifies a block; -1 with err when damaged. */
struct tsdb_block *block_open(const char *blockdir, struct ward_err *err);
void block_free(struct tsdb_block *b);
/* Appends the samples of column col of series i within [mint, maxt]; 0 or -1. */
int block_series_read(const struct tsdb_block *b, uint32_t i, uint8_t col, int64_t mint,
                      int64_t maxt, struct tsdb_svec *out);
bool block_series_overlaps(const struct tsdb_block *b, uint32_t i, int64_t mint, int64_t maxt);
/* Removes a directory tree (block dirs are flat). */
int tsdb_rm_dir(const char *path);
void tsdb_ulid(char out[27], int64_t ms);

/* ---- compact.c ---- */
struct tsdb_blocks {
	struct tsdb_block **v; /* sorted by (resolution, mint) */
	size_t n;
};
/* Merges adjacent raw blocks (3x, 9x block_duration), downsamples, applies retention.
 * Changes *bs in place. */
int compact_run(const char *dbdir, struct tsdb_blocks *bs, const struct tsdb_opts *o,
                int64_t db_maxt, bool force, uint64_t *quarantined, struct ward_err *err);
/* Downsamples the blocks old enough (o->downsample_*_after_ms before db_maxt) that no block
 * of the next resolution covers yet. */
int compact_downsample(const char *dbdir, struct tsdb_blocks *bs, const struct tsdb_opts *o,
                       int64_t db_maxt, struct ward_err *err);
void compact_retention(struct tsdb_blocks *bs, const struct tsdb_opts *o, int64_t db_maxt);
void blocks_sort(struct tsdb_blocks *bs);
/* Whether blocks of resolution res together cover [mint, maxt]. */
bool blocks_covered(const struct tsdb_blocks *bs, int64_t res, int64_t mint, int64_t maxt);
void blocks_add(struct tsdb_blocks *bs, struct tsdb_block *b);
void blocks_delete(struct tsdb_blocks *bs, size_t i); /* removes from disk and list */
/* Downsampled aggregates of one series' samples (stale markers skipped) into windows of
 * res_ms; in holds either raw samples (cols[COL_RAW]) or aggregates (cols 1..5). */
void downsample_series(const int64_t *t, const double *const in[COL_N], size_t n, int64_t res_ms,
                       struct tsdb_svec *outcols /* COL_N of them */);

/* meta.c: the metadata table of a db (db.c owns it). */
struct tsdb_meta;
struct tsdb_meta *tsdb_meta_new(void);
void tsdb_meta_free(struct tsdb_meta *m);
struct tsdb_meta *tsdb_meta_of(struct tsdb *db);

#endif
