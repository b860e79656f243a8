/* tsdb.h: the one public header of src/tsdb: ward's time-series storage engine.
 *
 * Series are identified by their sorted label set (struct labels from base, __name__
 * included) and get a numeric id (series ref) stable for the life of the head. An inverted
 * index (name=value -> sorted postings of series refs) serves the four matchers.
 *
 * Write path: an appender stages a batch; tsdb_commit() writes the batch to the WAL
 * (CRC-checked records in segment files under <dir>/wal/), fsyncs per the policy, and only
 * then applies it to the head and returns: a batch whose commit returned 0 survives kill -9
 * (with fsync "always"; with a periodic fsync at most fsync_interval_ms are at risk).
 * The head keeps recent samples in memory in Gorilla-compressed chunks (delta-of-delta
 * timestamps, XOR floats). Samples older than the series' newest by more than ooo_window_ms
 * are rejected and counted (reason "too_old"); duplicates with a different value are
 * rejected ("duplicate"). The head is cut into immutable blocks under <dir>/blocks/<id>/
 * (chunks, index, meta.json; each with checksums; read through mmap; docs/tsdb-format.md)
 * every block_duration; a block stores each chunk as XOR or, when every value is exactly
 * m / 10^k and that is smaller, as integer differences (DQ); blocks are compacted into
 * larger ones; retention drops blocks by age and total size; downsampled copies (5m and
 * 1h: min, max, sum, count, last) of blocks older than 40 h and 10 days (configurable)
 * serve long-range reads.
 *
 * Stale markers: a sample whose value has the bits of WARD_STALE_NAN marks the end of a
 * series (as Prometheus' scrape loop writes); queries treat it as "no value".
 *
 * Threads: appenders and queriers may be used from any thread; the engine locks inside.
 * Reads see every committed batch.
 */
#ifndef WARD_TSDB_H
#define WARD_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Prometheus' staleness marker: a NaN with this exact bit pattern. */
#define WARD_STALE_NAN_BITS 0x7ff0000000000002ULL
double tsdb_stale_nan(void);
bool tsdb_is_stale_nan(double v);

enum tsdb_fsync { TSDB_FSYNC_ALWAYS = 0, TSDB_FSYNC_PERIODIC };

struct tsdb_opts {
	const char *dir;             /* <data>/tsdb */
	int64_t block_duration_ms;   /* head cut size; default 2h */
	int64_t retention_ms;        /* 0: keep forever (default 15d) */
	int64_t retention_bytes;     /* 0: no size limit */
	int64_t ooo_window_ms;       /* how far behind a series' newest sample is accepted */
	enum tsdb_fsync fsync;       /* default ALWAYS */
	int64_t fsync_interval_ms;   /* with PERIODIC */
	bool downsample;             /* keep 5m and 1h resolutions for old blocks; default true */
	/* Downsampling waits until a block's data is old enough, measured from the newest sample
	 * in the store, as Thanos does: raw blocks get a 5m copy once all their samples are at
	 * least downsample_5m_after_ms old (default 40h), 5m blocks a 1h copy after
	 * downsample_1h_after_ms (default 10d). Queries read raw data where no copy exists yet. */
	int64_t downsample_5m_after_ms;
	int64_t downsample_1h_after_ms;
};
void tsdb_opts_default(struct tsdb_opts *o);

struct tsdb;
/* Opens (creating) the store in o->dir, replays the WAL, loads blocks. A damaged WAL tail
 * or block is detected by checksum, quarantined (moved under <dir>/quarantine/) and
 * reported (tsdb_stats.quarantined, the log); the rest is served. NULL with err. */
struct tsdb *tsdb_open(const struct tsdb_opts *o, struct ward_err *err);
/* Flushes and closes. NULL-safe. */
void tsdb_close(struct tsdb *db);

/* ---- writing ---- */
struct tsdb_appender;
struct tsdb_appender *tsdb_appender_new(struct tsdb *db);
/* Stages one sample; labels are copied. 0, or -1 with err for an invalid label set (empty,
 * no __name__, invalid names, unsorted or duplicate names). Per-sample rejections (too old,
 * duplicate) happen at commit and are counted, not errors. */
int tsdb_append(struct tsdb_appender *a, const struct labels *ls, int64_t t_ms, double v,
		struct ward_err *err);
/* tsdb_append of n samples of one series: its labels are checked, hashed and looked up
 * once (remote_write delivers a series' samples together). */
int tsdb_append_n(struct tsdb_appender *a, const struct labels *ls, const int64_t *t_ms,
		  const double *v, size_t n, struct ward_err *err);
/* For callers that append the same series again and again (a scraper's cache): as
 * tsdb_append, and *ref gets the series' ref in the head, or 0 when the series is new to the
 * head (it gets one at commit; ask again next time). Refs are never reused while the store
 * is open, and they belong to this store only. */
int tsdb_append_get_ref(struct tsdb_appender *a, const struct labels *ls, int64_t t_ms,
			double v, uint32_t *ref, struct ward_err *err);
/* Stages one sample for the series ref names, with no label work: 0, or 1 when the head no
 * longer holds that series (maintenance removed it since the ref was handed out; ref 0
 * names nothing): then append by labels. */
int tsdb_append_ref(struct tsdb_appender *a, uint32_t ref, int64_t t_ms, double v);
/* Writes the batch to the WAL (durable per policy), applies it, frees the appender.
 * Returns 0 (then *rejected, if not NULL, holds how many samples were refused), or -1 with
 * err (disk full, I/O error): nothing of the batch is applied. */
int tsdb_commit(struct tsdb_appender *a, size_t *rejected, struct ward_err *err);
void tsdb_rollback(struct tsdb_appender *a); /* frees without writing */

/* ---- reading ---- */
/* One series with its samples in [mint, maxt], ascending time, stale markers included. */
struct tsdb_series {
	struct labels labels;
	int64_t *t;
	double *v;
	size_t n;
};
void tsdb_series_free(struct tsdb_series *s, size_t n); /* frees the contents of n series */

/* Every series matching all matchers with at least one sample in [mint, maxt], sorted by
 * label set. A matcher that matches the empty string also matches series without that
 * label, as in Prometheus. *out is a new array (free with tsdb_series_free + free).
 * max_samples > 0 bounds the total returned; past it -1 with err "query would load more
 * than N samples". step_hint_ms > 0 lets the engine read a downsampled resolution when the
 * range is long (the hint is the query step); 0 reads raw data. */
int tsdb_select(struct tsdb *db, int64_t mint, int64_t maxt, const struct matcher *ms,
		size_t nms, int64_t step_hint_ms, size_t max_samples, struct tsdb_series **out,
		size_t *n, struct ward_err *err);
/* The label sets of the series tsdb_select would return, without reading a sample: a
 * series counts when its chunks' time range meets [mint, maxt]. Sorted and unique; free each
 * with labels_free and the array with free. */
int tsdb_series_labels(struct tsdb *db, int64_t mint, int64_t maxt, const struct matcher *ms,
		       size_t nms, struct labels **out, size_t *n);
/* A point-in-time copy of the store in dir (which must not exist): the WAL is cut so its
 * earlier segments are complete, then every block and those segments are hard-linked
 * (copied across file systems) under the db lock, so the copy holds exactly what was
 * committed at that instant. Opening dir as a tsdb gives that state. Cheap: blocks and
 * sealed segments never change, so links share their data. 0, or -1 with err. */
int tsdb_snapshot(struct tsdb *db, const char *dir, struct ward_err *err);
/* ---- metric metadata (what /api/v1/metadata lists) ----
 * Type, help and unit by metric family name, as scrapes and remote_write report them; in
 * memory only (as Prometheus keeps its targets' metadata), newest report wins, bounded. */
enum tsdb_meta_field { TSDB_META_TYPE = 0, TSDB_META_HELP, TSDB_META_UNIT };
void tsdb_metadata_set(struct tsdb *db, const char *family, enum tsdb_meta_field field,
		       const char *text);
struct tsdb_metadata {
	char *family, *type, *help, *unit; /* type "unknown" and "" when never reported */
};
/* Sorted by family; only family when not NULL; at most limit (0: all). Returns the count;
 * free with tsdb_metadata_free. */
size_t tsdb_metadata_list(struct tsdb *db, const char *family, size_t limit,
			  struct tsdb_metadata **out);
void tsdb_metadata_free(struct tsdb_metadata *v, size_t n);

/* Downsampled reads (added by the tsdb implementation): with step_hint_ms >= 5m and a range
 * of at least 1 day (>= 1h and >= 30 days for the 1h resolution), the parts of the range
 * that downsampled blocks cover are read from them, and each window contributes exactly
 * one sample: the window's last non-stale value, stamped with the time of that last raw
 * sample ("last"), so plain selects and rate()/increase() on counters stay meaningful.
 * Stale markers do not appear in downsampled data. The head and raw blocks not covered by
 * the chosen resolution are always read raw; step_hint_ms 0 always reads raw data only. */
/* Label names (sorted, unique) of series matching ms (all series when nms is 0) with data
 * in [mint, maxt]. *out: array of new strings. */
int tsdb_label_names(struct tsdb *db, int64_t mint, int64_t maxt, const struct matcher *ms,
		     size_t nms, char ***out, size_t *n, struct ward_err *err);
/* Values of one label, same rules. */
int tsdb_label_values(struct tsdb *db, const char *name, int64_t mint, int64_t maxt,
		      const struct matcher *ms, size_t nms, char ***out, size_t *n,
		      struct ward_err *err);
void tsdb_strings_free(char **v, size_t n);

/* ---- maintenance and stats ---- */
/* Cuts the head into a block if due, compacts, applies retention, truncates the WAL.
 * The daemon calls it from a timer; tests call it directly. force cuts whatever the head
 * holds. 0 or -1 with err. */
int tsdb_maintain(struct tsdb *db, bool force, struct ward_err *err);

struct tsdb_stats {
	uint64_t series;           /* active series in the head */
	uint64_t head_samples;
	uint64_t head_chunks;
	int64_t head_bytes;        /* memory held by head chunks and index */
	int64_t head_mint, head_maxt;
	uint64_t blocks;
	uint64_t block_samples;
	int64_t block_bytes;       /* on disk */
	int64_t wal_bytes;
	uint64_t appended_total;   /* samples accepted since open */
	uint64_t rejected_too_old, rejected_duplicate;
	uint64_t quarantined;      /* damaged files moved aside since open */
	int64_t min_time, max_time;
};
void tsdb_stats(struct tsdb *db, struct tsdb_stats *out);

#endif
