/* base.h: the one public header of src/base, the helpers every module uses.
 *
 * - struct buf: the growable byte buffer used for every string we build; its length is
 *   always known and its data is always NUL-terminated after any buf_* call.
 * - struct ward_err: the message a failing call leaves for a person (file, line, what).
 * - exit codes, time, durations and sizes (parsed one way everywhere), hashing and
 *   randomness, structured logging with secret redaction, and the metrics registry that
 *   feeds ward's own /metrics.
 * Library code never exits; only main and the CLI decide to.
 */
#ifndef WARD_BASE_H
#define WARD_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WARD_VERSION "0.1.0"

#if defined(__GNUC__)
#define WARD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WARD_PRINTF(a, b)
#endif


/* ---- exit codes (documented in README.md) ---- */
enum ward_exit {
	WARD_EXIT_OK = 0,          /* success */
	WARD_EXIT_PROBLEM = 1,     /* the command ran and found a problem (check/verify failed) */
	WARD_EXIT_USAGE = 2,       /* bad usage or invalid configuration; nothing was changed */
	WARD_EXIT_UNAVAILABLE = 3, /* the server could not be reached or is not ready */
	WARD_EXIT_DENIED = 4,      /* the server refused: no token, bad token or wrong role */
	WARD_EXIT_NOTFOUND = 5,    /* the thing named does not exist */
	WARD_EXIT_INTERNAL = 6,    /* an I/O or internal error; see the message */
};

/* ---- errors ---- */
#define WARD_ERR_MAX 2048
struct ward_err {
	char msg[WARD_ERR_MAX]; /* empty when no error was recorded */
};
void ward_err_clear(struct ward_err *err);
/* Sets the message (replacing any previous one). err may be NULL. */
void ward_err_set(struct ward_err *err, const char *fmt, ...) WARD_PRINTF(2, 3);
/* Appends "\n" + message, so several problems can be reported at once. */
void ward_err_append(struct ward_err *err, const char *fmt, ...) WARD_PRINTF(2, 3);
bool ward_err_isset(const struct ward_err *err);

/* ---- growable buffer ----
 * A zeroed struct buf is a valid empty buffer. On allocation failure the process aborts
 * (an out-of-memory daemon cannot keep its promises anyway). */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT {NULL, 0, 0}
void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) WARD_PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) WARD_PRINTF(2, 0);
/* Always returns a NUL-terminated string (possibly ""), borrowed from b. */
const char *buf_cstr(struct buf *b);
/* Returns the data as a new NUL-terminated string; caller frees; b is left empty. */
char *buf_detach(struct buf *b);
/* Appends s (n bytes) as a JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD. */
void buf_json_str(struct buf *b, const char *s, size_t n);
/* Appends a logfmt value: bare when safe, otherwise quoted and escaped. */
void buf_logfmt_val(struct buf *b, const char *s, size_t n);
/* Appends a double the way Prometheus prints it: NaN, +Inf, -Inf, shortest round-trip. */
void buf_put_double(struct buf *b, double v);
/* The same shortest digits as Go's FormatFloat(v, 'e', -1) ("1.5e+00") and (v, 'f', -1)
 * ("1500000"). NaN, +Inf, -Inf as above. */
void buf_put_double_e(struct buf *b, double v);
void buf_put_double_f(struct buf *b, double v);
/* The shortest digits (no dot, no trailing zeros) that read back as |v|, and the decimal
 * exponent of the first: |v| = 0.d1d2... * 10^(e10+1). v finite; 0 gives "0". */
#define WARD_DTOA_DIGITS 20
int ward_dtoa_shortest(double v, char digits[WARD_DTOA_DIGITS], int *e10);

/* Small string helpers. */
char *ward_strdup(const char *s);                 /* NULL-safe; aborts on OOM */
char *ward_strndup(const char *s, size_t n);      /* always NUL-terminates */
void *ward_xmalloc(size_t n);                     /* aborts on OOM */
void *ward_xcalloc(size_t n, size_t size);        /* aborts on OOM or overflow */
void *ward_xrealloc(void *p, size_t n);           /* aborts on OOM */
bool ward_streq(const char *a, const char *b);    /* NULL-safe */
bool ward_has_prefix(const char *s, const char *prefix);

/* ---- time ----
 * Timestamps are int64_t milliseconds since the Unix epoch unless a name says otherwise. */
int64_t ward_now_ms(void);
int64_t ward_mono_ms(void);  /* monotonic clock, for measuring intervals */
int64_t ward_mono_ns(void);
/* Formats ms as RFC 3339 UTC with milliseconds: "2026-11-24T11:51:03.123Z". */
void ward_fmt_rfc3339(int64_t ms, char out[32]);
/* Parses RFC 3339 ("2026-11-24T11:51:03Z", fraction and offset optional) or a Unix
 * timestamp in seconds with optional fraction ("1732449063.5"). 0 or -1. */
int ward_parse_time(const char *s, size_t n, int64_t *out_ms);

/* Durations as Prometheus writes them: one or more <number><unit> with units
 * ms s m h d w y, largest first ("1h30m", "500ms", "2d"). "0" alone means zero.
 * Returns 0, or -1 with a reason in err. Overflow is an error. */
int ward_parse_duration(const char *s, size_t n, int64_t *out_ms, struct ward_err *err);
/* Formats ms as the shortest Prometheus duration ("1h30m", "500ms", "0s"). */
void ward_fmt_duration(int64_t ms, char out[32]);

/* Sizes: a non-negative integer with optional unit B, KB MB GB TB (powers of 1000) or
 * KiB MiB GiB TiB (powers of 1024); "512MiB", "10KB", "4096". 0 or -1 with err. */
int ward_parse_size(const char *s, size_t n, int64_t *out_bytes, struct ward_err *err);
void ward_fmt_size(int64_t bytes, char out[32]);

/* ---- hashing and randomness (libsodium) ---- */
#define WARD_SHA256_LEN 32
int ward_crypto_init(void); /* call once before any of the below; 0 or -1 */
void ward_sha256(const void *data, size_t n, uint8_t out[WARD_SHA256_LEN]);
void ward_random_bytes(void *out, size_t n);
/* Constant-time comparison of two equal-length byte strings. */
bool ward_ct_equal(const void *a, const void *b, size_t n);
/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void ward_hex(const uint8_t *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int ward_hexval(int c);
/* Parses exactly 2n hex chars into out; 0 or -1. */
int ward_unhex(const char *in, size_t inlen, uint8_t *out, size_t n);

/* Binary search of an array sorted by a string key (strcmp order): the index of key, or
 * where it would be inserted; *found says which. key_at(arr, i) is element i's key. */
size_t ward_sorted_find(const void *arr, size_t n, const char *key,
                        const char *(*key_at)(const void *arr, size_t i), bool *found);

/* CRC-32C (Castagnoli) of n bytes, chained from crc (0 to start). Thread-safe. */
uint32_t ward_crc32c(uint32_t crc, const void *data, size_t n);

/* Snappy block format (remote_write bodies). ward_snappy_decoded_len reads the declared
 * decoded length into *len and returns the header's size in bytes, or -1 when the header is
 * truncated or too long. ward_snappy_decode decodes into out, which holds exactly len bytes
 * (the declared length): 0, or -1 when the input is corrupt or decodes to any other length. */
int ward_snappy_decoded_len(const void *in, size_t n, size_t *len);
int ward_snappy_decode(const void *in, size_t n, void *out, size_t len);

/* ---- structured logging ----
 * One line per event: logfmt on a terminal, JSON lines otherwise (or as configured).
 * Values whose key names a secret (token, password, passphrase, secret, key, authorization,
 * cookie) are always written as "[redacted]", whatever the caller passes. */
enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_AUTO = 0, LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };
/* Thread-safe. fd is where lines go (2 by default). */
void log_setup(enum log_level level, enum log_format format, int fd);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out); /* "debug" "info" "warn" "error" */
const char *log_level_name(enum log_level l);
/* ward_log(LOG_INFO, "listening", "addr", "127.0.0.1:9797", NULL): key/value string pairs,
 * NULL-terminated. A NULL value is written as an empty string. */
void ward_log(enum log_level level, const char *msg, ...);
void ward_logv(enum log_level level, const char *msg, va_list kv);
/* True when the key names something that must never be logged. */
bool log_key_is_secret(const char *key);

/* ---- ward's own metrics (exposition on /metrics) ----
 * A metric family is registered once (idempotent by name) and then updated from any
 * thread. Label values are given in the order of the names at registration. */
enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };
struct metric;
/* labels: NULL-terminated array of label names (may be NULL). buckets: for histograms,
 * ascending upper bounds, nbuckets of them (+Inf is implicit). Never returns NULL. */
struct metric *metric_register(const char *name, const char *help, enum metric_type type,
			       const char *const *labels, const double *buckets, size_t nbuckets);
/* values: as many label values as the family has names (NULL when it has none). */
void metric_add(struct metric *m, const char *const *values, double delta);
void metric_set(struct metric *m, const char *const *values, double v);
void metric_observe(struct metric *m, const char *const *values, double v);
/* A gauge computed at scrape time. fn is called with arg under the registry lock. */
typedef double (*metric_fn)(void *arg);
void metric_register_fn(const char *name, const char *help, enum metric_type type, metric_fn fn,
			void *arg);
/* Writes every registered family in the Prometheus text format 0.0.4. */
void metric_write_all(struct buf *out);
/* For tests: drop every family. */
void metric_reset_all(void);


/* ---- files ---- */
/* Reads a whole file into a new NUL-terminated buffer (caller frees *out). Files larger
 * than max_bytes are an error. 0, or -1 with err naming the path and errno text. */
int ward_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
		   struct ward_err *err);
/* Writes data to path atomically (temp file in the same directory, fsync, rename, fsync
 * of the directory). mode as for open(2). 0 or -1 with err. */
int ward_write_file_atomic(const char *path, const void *data, size_t n, int mode,
			   struct ward_err *err);
/* Copies from to to (created or truncated with mode), then fsyncs it. 0 or -1 with err. */
int ward_copy_file(const char *from, const char *to, int mode, struct ward_err *err);
/* mkdir -p with mode (0700 for data directories). 0 or -1 with err. */
int ward_mkdir_p(const char *path, int mode, struct ward_err *err);
/* fsync a directory (after creating or renaming an entry in it). 0 or -1. */
int ward_fsync_dir(const char *path);

/* ---- label sets (series identity for tsdb, promql, collectors, alerts) ----
 * A struct labels is an array of name/value pairs sorted by name, names unique. It owns
 * its strings. Comparing two sorted sets is byte-wise, pair by pair, as Prometheus does. */
struct label {
	char *name;
	char *value;
};
struct labels {
	struct label *v;
	size_t n;
};
void labels_init(struct labels *ls);
void labels_free(struct labels *ls); /* frees the strings and the array; leaves ls empty */
/* Adds or replaces name (copies both); keeps the set sorted. An empty value removes it, as
 * Prometheus treats an empty label as absent. */
void labels_set(struct labels *ls, const char *name, const char *value);
void labels_del(struct labels *ls, const char *name);
const char *labels_get(const struct labels *ls, const char *name); /* NULL when absent */
void labels_copy(struct labels *dst, const struct labels *src);    /* dst is overwritten */
int labels_cmp(const struct labels *a, const struct labels *b);
bool labels_equal(const struct labels *a, const struct labels *b);
uint64_t labels_hash(const struct labels *ls); /* stable across runs (no seed) */
/* Prometheus' name rules: label names [a-zA-Z_][a-zA-Z0-9_]*, metric names
 * [a-zA-Z_:][a-zA-Z0-9_:]*. NULL and "" are not valid. */
bool labels_valid_name(const char *s);
bool labels_valid_metric_name(const char *s);
/* {__name__="x",a="b"} -> x{a="b"}, values escaped as the exposition format does. */
void labels_write(struct buf *out, const struct labels *ls);

/* A label matcher: = != =~ !~ . Regexes are fully anchored, as in Prometheus. */
enum matcher_op { MATCH_EQ = 0, MATCH_NEQ, MATCH_RE, MATCH_NRE };
struct matcher {
	enum matcher_op op;
	char *name;
	char *value;
	void *re; /* compiled pcre2_code for RE/NRE; NULL otherwise */
};
/* Initialises m (copies name and value; compiles the regex). 0, or -1 with err naming the
 * regex problem and its offset. */
int matcher_init(struct matcher *m, enum matcher_op op, const char *name, const char *value,
		 struct ward_err *err);
void matcher_free(struct matcher *m);
/* Matches a label value (NULL or "" for an absent label). Thread-safe. */
bool matcher_matches(const struct matcher *m, const char *value);
const char *matcher_op_str(enum matcher_op op); /* "=", "!=", "=~", "!~" */

#endif
