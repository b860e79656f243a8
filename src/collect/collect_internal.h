/* collect_internal.h: what the files of src/collect share beyond collect.h: the config
 * sections ("host", "processes", "scrape"), the host collector, process watching,
 * relabeling and the scrape engine. Everything here is used by collect_module (module.c)
 * and by the unit tests; nothing outside src/collect includes it.
 */
#ifndef WARD_COLLECT_INTERNAL_H
#define WARD_COLLECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "collect/collect.h"
#include "conf/conf.h"

struct tsdb;

/* ---- a batch of collected samples (host, processes), rendered or stored ---- */
struct cm_family {
	char *name;
	const char *type; /* "counter", "gauge", "untyped" (static strings) */
	char *help;
};
struct cm_sample {
	struct labels ls; /* __name__ included */
	double v;
	size_t family; /* index into families */
};
struct cm_batch {
	struct cm_family *fam;
	size_t nfam, capfam;
	struct cm_sample *s;
	size_t n, cap;
};
void cm_init(struct cm_batch *b);
void cm_free(struct cm_batch *b);
/* Starts a family; following cm_add calls belong to it until the next cm_family. */
void cm_family(struct cm_batch *b, const char *name, const char *type, const char *help);
/* Adds a sample of the current family: label name/value pairs, NULL-terminated. */
void cm_add(struct cm_batch *b, double v, ...);
/* The text format 0.0.4, families in the order they were started (empty ones skipped). */
void cm_write_text(const struct cm_batch *b, struct buf *out);
/* Appends every sample to db at t_ms with the extra labels (job, instance) set.
 * 0, or -1 with err. */
int cm_commit(const struct cm_batch *b, struct tsdb *db, int64_t t_ms, const char *job,
              const char *instance, struct ward_err *err);

/* ---- the host collector ---- */
enum host_collector {
	HOST_CPU = 0,
	HOST_STAT,
	HOST_LOADAVG,
	HOST_MEMINFO,
	HOST_PRESSURE,
	HOST_DISKSTATS,
	HOST_FILESYSTEM,
	HOST_NETDEV,
	HOST_NETSTAT,
	HOST_SOCKSTAT,
	HOST_FILEFD,
	HOST_TIME,
	HOST_UNAME,
	HOST_VMSTAT,
	HOST_NCOLLECTORS
};
extern const char *const host_collector_names[]; /* "cpu", "stat", ... NULL-terminated */

struct host_conf {
	bool enabled;
	int64_t interval_ms;
	char *job;
	char *instance;    /* NULL: the host name */
	char **collectors; /* NULL/empty: all */
	size_t ncollectors;
	char *procfs; /* "/proc" */
	char *sysfs;  /* "/sys" */
	/* node_exporter's filter flags (Go regexes, unanchored as Go's MatchString) */
	char *diskstats_device_exclude;
	char *filesystem_mount_points_exclude;
	char *filesystem_fs_types_exclude;
	char *netdev_device_exclude; /* "" or NULL: none */
};
/* Where and what to read. Paths let the tests point at a fixture tree. */
struct host_opts {
	const char *procfs;
	const char *sysfs;
	bool enabled[HOST_NCOLLECTORS];
	const char *disk_exclude, *mount_exclude, *fstype_exclude, *netdev_exclude;
};
/* node_exporter's upstream defaults. */
#define HOST_DISK_EXCLUDE "^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$"
#define HOST_FS_MOUNT_EXCLUDE \
	"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
#define HOST_FS_TYPE_EXCLUDE                                                                    \
	"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|" \
	"iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|"       \
	"squashfs|sysfs|tracefs)$"
/* A matcher with Go's MatchString semantics (a match anywhere), for the filter flags. */
int host_filter_init(struct matcher *m, const char *re, struct ward_err *err);
void host_opts_from_conf(struct host_opts *o, const struct host_conf *hc);
/* Reads everything enabled into b (which it appends to). Missing files skip their part
 * (pressure on old kernels); returns how many collectors failed. */
int host_gather(const struct host_opts *o, struct cm_batch *b);

/* ---- processes ---- */
struct proc_restart_conf {
	char *command;
	int64_t max;    /* runs at most ... */
	int64_t cycles; /* ... in this many cycles */
};
struct proc_watch_conf {
	char *name;
	char *pidfile;
	char *comm;    /* exact process name (/proc/PID/comm) */
	char *cmdline; /* regex over the command line, arguments joined by spaces */
	struct proc_restart_conf restart;
};
struct proc_conf {
	int64_t interval_ms;
	struct proc_watch_conf *watch;
	size_t nwatch;
};
/* What one scan found for one watch. */
struct proc_stat {
	bool up;
	size_t count;
	double cpu_seconds;
	double rss_bytes;
	double fds;
	double threads;
	double start_time; /* oldest matched process, Unix seconds */
};
struct proc_matcher;
/* NULL with err when the regex does not compile. */
struct proc_matcher *proc_matcher_new(const struct proc_watch_conf *w, struct ward_err *err);
void proc_matcher_free(struct proc_matcher *m);
/* Scans procfs for every matcher at once. */
void proc_scan(const char *procfs, struct proc_matcher *const *ms, size_t n, struct proc_stat *out);

/* ---- relabeling (Prometheus' model/relabel) ---- */
enum relabel_action {
	RELABEL_REPLACE = 0,
	RELABEL_KEEP,
	RELABEL_DROP,
	RELABEL_HASHMOD,
	RELABEL_LABELMAP,
	RELABEL_LABELDROP,
	RELABEL_LABELKEEP,
	RELABEL_LOWERCASE,
	RELABEL_UPPERCASE,
	RELABEL_KEEPEQUAL,
	RELABEL_DROPEQUAL
};
extern const char *const relabel_action_names[];
struct relabel_conf {
	char **source_labels;
	size_t nsource_labels;
	char *separator;
	char *regex;
	int64_t modulus;
	char *target_label;
	char *replacement;
	int action;
};
extern const struct conf_schema relabel_schema;
struct relabel;
/* Compiles rules; NULL with err naming the rule and the regex problem. */
struct relabel *relabel_new(const struct relabel_conf *rc, size_t n, struct ward_err *err);
void relabel_free(struct relabel *r);
/* Applies every rule to ls in place. Returns false when the set is dropped (then ls is
 * unspecified). A NULL r keeps everything. */
bool relabel_apply(const struct relabel *r, struct labels *ls);

/* ---- scraping ---- */
struct scrape_static_conf {
	char **targets;
	size_t ntargets;
	struct conf_kv *labels;
	size_t nlabels;
};
struct scrape_basic_auth {
	char *username;
	char *password;
	char *password_file;
};
struct scrape_authz {
	char *type;
	char *credentials;
	char *credentials_file;
};
struct scrape_job_conf {
	char *job_name;
	int64_t scrape_interval_ms; /* 0: the global one */
	int64_t scrape_timeout_ms;  /* 0: the global one (capped at the interval) */
	char *metrics_path;
	char *scheme;
	struct conf_kv *params;
	size_t nparams;
	struct scrape_basic_auth basic_auth;
	struct scrape_authz authorization;
	char *bearer_token;
	char *bearer_token_file;
	bool honor_labels;
	bool honor_timestamps;
	bool tls_skip_verify;
	int64_t sample_limit;
	int64_t body_size_limit;
	struct scrape_static_conf *static_configs;
	size_t nstatic_configs;
	struct relabel_conf *relabel_configs;
	size_t nrelabel_configs;
	struct relabel_conf *metric_relabel_configs;
	size_t nmetric_relabel_configs;
};
struct scrape_conf {
	int64_t scrape_interval_ms;
	int64_t scrape_timeout_ms;
	int64_t max_concurrent;
	int64_t body_size_limit;
	int64_t line_limit;
	struct scrape_job_conf *scrape_configs;
	size_t nscrape_configs;
};

/* One target as the static config and relabeling make it. */
struct scrape_target_def {
	char *job;
	struct labels discovered; /* before relabeling */
	struct labels labels;     /* after: what samples get */
	char *url;
};
/* Builds the targets of one job (those that relabeling keeps). *out new array; free with
 * scrape_target_defs_free. 0 or -1 with err. */
int scrape_targets_build(const struct scrape_conf *sc, const struct scrape_job_conf *j,
                         struct scrape_target_def **out, size_t *n, struct ward_err *err);
void scrape_target_defs_free(struct scrape_target_def *d, size_t n);

/* The result of handling one scrape body (or failure), written to db. */
/* What a target remembers between scrapes (scrape_cache.c): its lines' series text -> the
 * series they are stored as, and the last scrape's series, for staleness. */
struct scrape_series_set;
struct scrape_series_set *scrape_series_set_new(void);
void scrape_series_set_free(struct scrape_series_set *s);
/* Forgets what lines map to (a config reload may have changed honor_labels or the metric
 * relabeling); keeps the last scrape's series, so staleness stays right. NULL-safe. */
void scrape_series_set_forget(struct scrape_series_set *s);
/* Writes stale markers at t_ms for every series of prev (emptied) and, when target_labels
 * is not NULL, for the target's report series (up, scrape_*): a target that went away. */
int scrape_series_set_stale(struct scrape_series_set *prev, const struct labels *target_labels,
                            struct tsdb *db, int64_t t_ms, struct ward_err *err);

struct scrape_result {
	bool up;
	char error[512];
	size_t scraped;      /* samples in the body */
	size_t post_relabel; /* after metric_relabel_configs */
	size_t added;        /* series not in the previous scrape */
};
struct scrape_process_opts {
	const struct labels *target_labels;
	const struct relabel *metric_relabel;
	bool honor_labels;
	bool honor_timestamps;
	size_t sample_limit; /* 0: none */
	size_t line_limit;   /* 0: the parser's default */
	const char *content_type;
};
/* Parses body (or takes the failure when body is NULL and error is set in res), appends
 * samples, report series and stale markers to db. prev is updated to this scrape's series. */
void scrape_process(struct tsdb *db, const struct scrape_process_opts *o, const char *body,
                    size_t n, int64_t t_ms, double duration_s, struct scrape_series_set *prev,
                    struct scrape_result *res);

/* The pieces of struct scrape_series_set that scrape_process uses (scrape_cache.c). */
struct tsdb_appender;
struct sc_entry;  /* a line's series text and what it maps to */
struct sc_series; /* a label set as stored */
/* Starts a scrape: numbers it, drops the entries if opts differ from the last scrape's. */
void scrape_cache_begin(struct scrape_series_set *set, const struct scrape_process_opts *o);
/* The format the body is parsed in: entries of another format are dropped. */
void scrape_cache_format(struct scrape_series_set *set, enum collect_format f);
/* The entry of this text, or NULL; *h is the text's hash (for scrape_cache_add). */
struct sc_entry *scrape_cache_find(struct scrape_series_set *set, const char *text, size_t n,
                                   uint64_t *h);
/* A new entry for text (copied): parse_h is the labels_hash of its parsed labels, s its
 * series (NULL: dropped by metric relabeling). Marked seen in this scrape. */
struct sc_entry *scrape_cache_add(struct scrape_series_set *set, const char *text, size_t n,
                                  uint64_t h, uint64_t parse_h, struct sc_series *s);
uint64_t scrape_cache_entry_parse_hash(const struct sc_entry *e);
/* Marks e seen in this scrape and returns its series (NULL: dropped). */
struct sc_series *scrape_cache_entry_series(struct scrape_series_set *set, struct sc_entry *e);
/* The series with this label set (copied when new). */
struct sc_series *scrape_cache_series(struct scrape_series_set *set, const struct labels *ls);
const struct labels *scrape_cache_series_labels(const struct sc_series *s);
/* The slot holding s's ref in db's head (0: not known yet); refs learned from another store
 * are forgotten first. */
uint32_t *scrape_cache_series_ref(struct scrape_series_set *set, struct sc_series *s,
                                  const struct tsdb *db);
/* Puts s in this scrape's set: false when it already is (two lines made the same series);
 * *added tells whether it was not in the last scrape's set. */
bool scrape_cache_series_mark(struct scrape_series_set *set, struct sc_series *s, bool *added);
/* Ends the scrape: ok, this scrape's set replaces the last one; not ok, the set becomes
 * empty. Stale markers at t_ms go to a for the last set's series not in the new one. Lines
 * this scrape did not have are forgotten. */
void scrape_cache_end(struct scrape_series_set *set, bool ok, struct tsdb_appender *a,
                      int64_t t_ms);
/* Stale markers for every series of the last scrape's set into a, then empties the set and
 * the entries. Returns how many. */
size_t scrape_series_set_stale_all(struct scrape_series_set *set, struct tsdb_appender *a,
                                   int64_t t_ms);
/* How many entries and series the set holds (tests: memory stays bounded). */
void scrape_cache_stats(const struct scrape_series_set *set, size_t *entries, size_t *series);

/* ---- config ---- */
void collect_config_register(void);

#endif
