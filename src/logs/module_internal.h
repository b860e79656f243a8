/* module_internal.h: the logs module's configuration structs and its running state,
 * shared by module.c (lifecycle), api.c (HTTP), syslog.c, tail.c, journal.c, pipeline.c.
 * Sources and timers live on the daemon's libuv loop (one thread); HTTP handlers run on
 * the server's threads and touch only the store (thread-safe) and atomic counters.
 */
#ifndef WARD_LOGS_MODULE_INTERNAL_H
#define WARD_LOGS_MODULE_INTERNAL_H

#include <uv.h>

#include "conf/conf.h"
#include "core/core.h"
#include "logs/logs_internal.h"

enum logs_format { FMT_RAW = 0, FMT_JSON, FMT_LOGFMT, FMT_REGEX };

struct logs_file_conf {
	char *path; /* a glob */
	struct conf_kv *labels;
	size_t nlabels;
	int format; /* enum logs_format */
	char *regex;
	char *time_field;
	char *time_format; /* rfc3339, unix, unix_ms, unix_ns, or a strptime format */
	char *multiline_start;
	char **label_fields;
	size_t nlabel_fields;
	int start_at;            /* 0 beginning, 1 end */
	const char *default_job; /* job label when labels has none; NULL: "file" (borrowed) */
};

struct logs_rotate_conf {
	char *path;
	int64_t size;
	int64_t every_ms;
	int64_t keep;
	int compress;
	int mode;
	char *postrotate;
};

struct logs_syslog_conf {
	char *udp; /* listen address; NULL/empty: off */
	char *tcp;
	int64_t max_message;
	int64_t max_connections;
	struct conf_kv *labels;
	size_t nlabels;
};

/* logs.journal: the systemd journal through sd-journal (journal.c, built only with
 * libsystemd: WARD_HAVE_JOURNAL). The parsing fields mean what they mean for files. */
struct logs_journal_conf {
	bool enabled;
	char *path;     /* a directory of *.journal files or one file; NULL: the local journal */
	char **matches; /* "FIELD=value" or "+" (OR between groups), as journalctl takes */
	size_t nmatches;
	struct conf_kv *labels;
	size_t nlabels;
	int format; /* enum logs_format, applied to MESSAGE */
	char *regex;
	char *time_field;
	char *time_format;
	char **label_fields;
	size_t nlabel_fields;
	int start_at; /* 0 beginning, 1 end: where reading starts without a saved cursor */
};

struct logs_conf {
	bool enabled;
	int64_t retention_ms;
	int64_t retention_bytes;
	int64_t block_bytes;
	int64_t buffer_bytes;
	int64_t block_age_ms;
	int64_t segment_bytes;
	int64_t max_line_bytes;
	bool wal_fsync;
	struct logs_syslog_conf syslog;
	struct logs_file_conf *files;
	size_t nfiles;
	struct logs_journal_conf journal;
	struct logs_rotate_conf *rotate;
	size_t nrotate;
	int64_t rotate_interval_ms;
	struct logs_recording_conf *recording;
	size_t nrecording;
	int64_t recording_interval_ms;
};

/* A log-based recording rule: a metric query over logs whose result is written to the
 * time-series store as the series `record`, plus labels. */
struct logs_recording_conf {
	char *record;
	char *expr;
	struct conf_kv *labels;
	size_t nlabels;
};
extern const struct conf_schema logs_recording_schema;
struct logs_mod;
struct logs_recorder;
/* Starts evaluating the rules of lc every recording_interval on loop (queries run on the
 * worker pool). NULL when there are none. */
struct logs_recorder *logs_recorder_start(struct logs_mod *m, uv_loop_t *loop,
                                          const struct logs_conf *lc);
/* Replaces the rules (on reload); takes effect at the next evaluation. */
void logs_recorder_update(struct logs_recorder *r, const struct logs_conf *lc);
/* Stops; waits for a running evaluation. */
void logs_recorder_stop(struct logs_recorder *r, uv_loop_t *loop);
/* Checks one rule (record name, expr is a metric query); 0 or -1 with err. */
int logs_recording_check(const struct logs_recording_conf *r, struct ward_err *err);

/* A per-source parsing pipeline, compiled from a logs_file_conf. */
struct logs_pipeline {
	int format;
	void *re;    /* pcre2_code: regex format */
	void *ml_re; /* pcre2_code: multiline start */
	char *time_field;
	char *time_format;
	char **label_fields;
	size_t nlabel_fields;
	struct labels base; /* static labels */
};
int logs_pipeline_init(struct logs_pipeline *p, const struct logs_file_conf *c,
                       struct ward_err *err);
void logs_pipeline_free(struct logs_pipeline *p);
/* True when line starts a new entry (always true without a multiline pattern). */
bool logs_pipeline_is_start(const struct logs_pipeline *p, const char *line, size_t len);
/* Labels and timestamp for one entry (labels_out is overwritten). ts defaults to now_ns. */
void logs_pipeline_apply(const struct logs_pipeline *p, const char *line, size_t len,
                         int64_t now_ns, struct labels *labels_out, int64_t *ts_out,
                         struct logs_fields *scratch);

struct logs_syslog;
struct logs_tailer;
struct logs_journal;

struct logs_mod {
	struct ward_ctx *ctx;
	struct logs_store *store;
	char *dir;
	uv_timer_t maint_timer;
	uv_timer_t rotate_timer;
	bool timers_on;
	struct logs_syslog *syslog;
	struct logs_tailer *tailer;
	struct logs_journal *journal; /* NULL unless logs.journal.enabled (and built with it) */
	struct logs_rotate_rule *rules;
	size_t nrules;
	struct logs_recorder *recorder; /* log-based recording rules; NULL when none */
	char *fingerprint;        /* the settings start() used; apply() refuses to change them */
	struct metric *m_lines;   /* ward_logs_lines_received_total{source} */
	struct metric *m_dropped; /* ward_logs_lines_dropped_total{reason} */
};
struct logs_mod *logs_mod_get(void);

void logs_api_register(struct logs_mod *m);
/* Counts lines received from a source ("syslog", "file", "push", "loki"). */
void logs_count(struct logs_mod *m, const char *source, double n);
void logs_count_dropped(struct logs_mod *m, const char *reason, double n);

/* A run of lines of one stream, stored with one logs_store_append (batch.c; used by the
 * file tailer and the journal reader). */
struct logs_batch {
	struct labels labels; /* the stream of every line in the batch */
	struct buf arena;     /* the lines, back to back */
	size_t *off, *len;
	int64_t *ts;
	size_t n, cap;
};
void logs_batch_init(struct logs_batch *b);
void logs_batch_free(struct logs_batch *b);
/* True when ls is not the batch's stream (and the batch holds lines): flush before adding. */
bool logs_batch_other_stream(const struct logs_batch *b, const struct labels *ls);
void logs_batch_add(struct logs_batch *b, const struct labels *ls, const char *line, size_t len,
                    int64_t ts_ns);
/* Stores the batch (counted as received from source, or dropped with the warning what when
 * the store refuses) and empties it. Returns how many lines it held. */
size_t logs_batch_flush(struct logs_mod *m, struct logs_batch *b, const char *source,
                        const char *what);

struct logs_syslog *logs_syslog_start(struct logs_mod *m, uv_loop_t *loop,
                                      const struct logs_syslog_conf *c, struct ward_err *err);
void logs_syslog_stop(struct logs_syslog *s); /* closes handles; the loop frees them */
int logs_syslog_port(const struct logs_syslog *s, bool tcp);

struct logs_tailer *logs_tailer_start(struct logs_mod *m, uv_loop_t *loop,
                                      const struct logs_file_conf *files, size_t n,
                                      const char *offsets_path, struct ward_err *err);
void logs_tailer_stop(struct logs_tailer *t); /* reads what is left, checkpoints, closes */

/* ---- the systemd journal source (journal.c; only when WARD_HAVE_JOURNAL) ---- */
/* The pipeline settings of a journal source as a file source's (strings are borrowed from
 * c; job defaults to "journal"). Always available: module.c validates with it. */
void logs_journal_file_conf(const struct logs_journal_conf *c, struct logs_file_conf *out);
#ifdef WARD_HAVE_JOURNAL
/* Opens the journal of c, adds its matches, seeks past the entry whose cursor is saved in
 * cursor_path (else to the head or the tail, by start_at), and follows it on a thread of
 * its own, appending each entry's MESSAGE (at most max_line bytes; longer ones are handed
 * to the store to truncate and mark) to m->store. NULL with err when it cannot be opened. */
struct logs_journal *logs_journal_start(struct logs_mod *m, const struct logs_journal_conf *c,
                                        size_t max_line, const char *cursor_path,
                                        struct ward_err *err);
/* Stops the thread, writes the cursor durably, closes. NULL-safe. */
void logs_journal_stop(struct logs_journal *j);
/* PRIORITY's value ("0".."7") as a syslog level name (emerg .. debug); NULL otherwise. */
const char *logs_journal_level(const char *v, size_t n);
/* Checks one match: "+" or FIELD=value with FIELD of A-Z, 0-9, _ (not a leading digit),
 * at most 64 bytes. 0, or -1 with err saying what is wrong. */
int logs_journal_match_check(const char *m, struct ward_err *err);
/* When data ("NAME=value", len bytes, not terminated) is field name, points v and vn at the
 * value and returns true. */
bool logs_journal_field(const void *data, size_t len, const char *name, const char **v, size_t *vn);
/* Copies a field value into out (outsz bytes, NUL-terminated) when it makes a sane label:
 * 1..outsz-1 bytes of valid UTF-8 without control characters. False otherwise. */
bool logs_journal_label_value(const char *v, size_t n, char *out, size_t outsz);
#endif

/* Decodes the rotate list of the config into rules (caller frees with the helper). */
void logs_rules_from_conf(const struct logs_conf *c, struct logs_rotate_rule **out, size_t *n);
void logs_rules_free(struct logs_rotate_rule *r, size_t n);

/* The "logs" section's schema (for `ward logs rotate`, which decodes it offline). */
extern const struct conf_schema logs_conf_schema;

#endif
