/* logs.h: the one public header of src/logs: log collection, storage and search.
 *
 * - The store (<data>/logs): streams keyed by their label set; lines buffered per stream
 *   into blocks that are zstd-compressed and appended to segment files with a header
 *   (stream, min/max time, count, lengths, crc32c). A write-ahead log makes an append
 *   durable before it is acknowledged (see logs_store_append); a flush writes blocks and
 *   then a commit record, so a torn tail is found at open and trimmed, never read back.
 * - The query language: a LogQL subset (stream selectors, line filters, json/logfmt
 *   parsers, field filters, *_over_time/rate and sum/count/avg/min/max by ()).
 * - Parsers for syslog (RFC 3164, RFC 5424, octet-counted framing), JSON and logfmt.
 * - Sources (syslog server, file tailing, HTTP push), rotation, and logs_module.
 * Timestamps of log lines are int64_t nanoseconds since the epoch (as Loki).
 */
#ifndef WARD_LOGS_H
#define WARD_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

struct ward_module;
extern const struct ward_module logs_module;

/* ---- store ---- */
struct logs_store_opts {
	const char *dir;         /* created when missing */
	int64_t retention_ms;    /* drop segments whose newest line is older (0: keep) */
	int64_t retention_bytes; /* drop oldest segments past this total (0: no limit) */
	size_t block_bytes;      /* buffered lines are cut into blocks of about this size */
	int64_t block_age_ms;    /* everything is cut when a buffered line is this old */
	size_t max_head_bytes;   /* ... or when all buffered lines reach this size */
	int64_t segment_bytes;   /* a new segment file past this size (and every UTC day) */
	size_t max_line_bytes;   /* longer lines are truncated with LOGS_TRUNC_MARKER */
	bool wal_fsync;          /* fdatasync the WAL before an append with sync=true returns */
};
#define LOGS_TRUNC_MARKER "...[truncated by ward]"
void logs_store_opts_default(struct logs_store_opts *o);

struct logs_store;
/* Opens (or creates) the store: loads the stream index, scans segments (trimming a torn
 * tail), replays the WAL. NULL with err on failure. */
struct logs_store *logs_store_open(const struct logs_store_opts *o, struct ward_err *err);
/* Flushes buffered lines and closes. NULL-safe. */
void logs_store_close(struct logs_store *s);

struct logs_entry {
	int64_t ts_ns;
	const char *line; /* borrowed; need not be NUL-terminated */
	size_t len;
};
/* Appends lines to the stream with these labels (created when new). Lines longer than
 * max_line_bytes are truncated with a marker; invalid UTF-8 bytes are kept as the text
 * "\xNN". The lines are in the WAL when this returns (write(2): they survive a crash of
 * the process); with sync they are also fdatasync'd when wal_fsync is set. Thread-safe.
 * 0, or -1 with err (disk full, I/O error). */
int logs_store_append(struct logs_store *s, const struct labels *ls, const struct logs_entry *e,
                      size_t n, bool sync, struct ward_err *err);
/* Cuts every buffered line into blocks now. 0 or -1. */
int logs_store_flush(struct logs_store *s, struct ward_err *err);
/* Periodic work: cuts blocks that are old enough, applies retention. 0 or -1. */
int logs_store_maintain(struct logs_store *s, int64_t now_ms, struct ward_err *err);

struct logs_store_stats {
	uint64_t streams, segments, blocks;
	uint64_t stored_bytes;   /* segment files */
	uint64_t head_bytes;     /* buffered, not yet in blocks */
	uint64_t lines_appended; /* since open */
	uint64_t lines_truncated;
	uint64_t bytes_appended; /* raw line bytes since open */
};
void logs_store_stats(struct logs_store *s, struct logs_store_stats *out);
/* Wakes when lines are appended, or after timeout_ms; returns the append counter. */
uint64_t logs_store_wait(struct logs_store *s, uint64_t seen, int64_t timeout_ms);

/* ---- query ---- */
struct logs_query;
/* Parses a LogQL expression (pointer + length). NULL with err "col N: what; hint". */
struct logs_query *logs_query_parse(const char *src, size_t len, struct ward_err *err);
void logs_query_free(struct logs_query *q);
bool logs_query_is_metric(const struct logs_query *q);
/* Writes the canonical form of q (for tests and error messages). */
void logs_query_print(const struct logs_query *q, struct buf *out);

enum logs_direction { LOGS_BACKWARD = 0, LOGS_FORWARD };
struct logs_query_opts {
	int64_t start_ns, end_ns; /* log queries: [start, end]; metric: output steps */
	int64_t step_ns;          /* metric range queries; 0 for an instant query (at end) */
	size_t limit;             /* log queries: lines at most (default 100) */
	enum logs_direction direction;
	size_t max_series;  /* metric queries: series at most (default 10000) */
	int64_t *newest_ns; /* log queries: when set, receives the newest returned line's time
	                     * (unchanged when none is returned) */
};
/* Runs q over the store and writes the Loki "data" object (resultType streams, matrix or
 * vector) into out. 0, or -1 with err (limits exceeded, I/O). */
int logs_query_exec(struct logs_store *s, const struct logs_query *q,
                    const struct logs_query_opts *o, struct buf *out, struct ward_err *err);

/* ---- parsers (pointer + length; never trust a terminator) ---- */
struct logs_field {
	char *name;
	char *value;
};
struct logs_fields {
	struct logs_field *v;
	size_t n, cap;
};
void logs_fields_free(struct logs_fields *f);
void logs_fields_reset(struct logs_fields *f);
void logs_fields_add(struct logs_fields *f, const char *name, size_t nlen, const char *value,
                     size_t vlen);
const char *logs_fields_get(const struct logs_fields *f, const char *name);
/* Top-level members of a JSON object into fields; nested objects are flattened with "_"
 * (Loki's json parser); numbers and booleans as their text. 0, or -1 when not an object. */
int logs_parse_json(const char *s, size_t n, struct logs_fields *out);
/* key=value key="quoted \"value\"" ... 0; malformed parts are skipped (never fails). */
int logs_parse_logfmt(const char *s, size_t n, struct logs_fields *out);

struct logs_syslog_msg {
	int pri;       /* -1 when absent */
	int facility;  /* pri / 8 */
	int severity;  /* pri % 8 */
	int version;   /* 1 for RFC 5424, 0 for RFC 3164 */
	int64_t ts_ns; /* 0 when absent or unparsable (the caller uses receipt time) */
	const char *host, *app, *procid, *msgid, *sd, *msg; /* point into the input */
	size_t host_len, app_len, procid_len, msgid_len, sd_len, msg_len;
};
/* Parses one syslog message (RFC 5424 when "<PRI>1 " starts it, else RFC 3164, else the
 * whole text as the message). now_ms fills a 3164 timestamp's missing year. Never fails. */
void logs_syslog_parse(const char *s, size_t n, int64_t now_ms, struct logs_syslog_msg *out);
const char *logs_syslog_severity_name(int sev); /* "emerg" ... "debug" */
const char *logs_syslog_facility_name(int fac);

/* Framing of a syslog TCP stream (RFC 6587): octet counting ("LEN SP MSG") when a frame
 * starts with a digit, else newline-terminated. Feed bytes; on_msg gets each message.
 * Messages longer than max_msg are truncated (the rest is skipped). Bounded memory. */
struct logs_framer {
	struct buf pending;
	size_t max_msg;
	size_t want;        /* octet-counted: bytes still expected for the current message */
	size_t skip;        /* bytes of an over-long message still to drop */
	bool counting;      /* inside an octet-counted message */
	bool dropping_line; /* inside an over-long newline-framed message */
	uint64_t truncated;
};
typedef void (*logs_msg_fn)(void *arg, const char *msg, size_t len);
void logs_framer_init(struct logs_framer *f, size_t max_msg);
void logs_framer_free(struct logs_framer *f);
/* 0, or -1 when the stream is broken beyond recovery (close the connection). */
int logs_framer_feed(struct logs_framer *f, const char *p, size_t n, logs_msg_fn fn, void *arg);
/* Delivers a final unterminated newline-framed message at EOF. */
void logs_framer_finish(struct logs_framer *f, logs_msg_fn fn, void *arg);

/* Parses a time written as nanoseconds, RFC 3339 or unix seconds with fraction. 0 or -1. */
int logs_parse_time_ns(const char *s, size_t n, int64_t *out_ns);
/* Makes a line storable: invalid UTF-8 bytes become "\xNN". Returns true when changed. */
bool logs_sanitize_utf8(const char *s, size_t n, struct buf *out);

/* ---- rotation (logrotate's model), used by the module's timer and `ward logs rotate` ---- */
struct logs_rotate_rule {
	char *path;       /* a glob */
	int64_t size;     /* rotate when larger (0: no size trigger) */
	int64_t every_ms; /* rotate when the last rotation is this old (0: no time trigger) */
	int64_t keep;     /* rotated files kept */
	int compress;     /* 0 none, 1 zstd, 2 gzip */
	int mode;         /* 0 create, 1 copytruncate */
	char *postrotate; /* /bin/sh -c command after rotating (NULL: none) */
};
/* Applies rules now. state_path keeps the last rotation time per file. dry_run only
 * reports. force rotates regardless of triggers. Each action is appended to report (one
 * line each). 0, or -1 with err (the other files are still tried). */
int logs_rotate_run(const struct logs_rotate_rule *rules, size_t n, const char *state_path,
                    bool dry_run, bool force, int64_t now_ms, struct buf *report,
                    struct ward_err *err);

/* Runs the rotation rules of c's "logs" section now, with the state file under
 * <data_dir>/logs (for `ward logs rotate`). 0, or -1 with err. */
struct conf;
int logs_rotate_from_config(const struct conf *c, const char *data_dir, bool dry_run, bool force,
                            struct buf *report, struct ward_err *err);

#endif
