/* backup.h: the one public header of src/backup: deduplicated, compressed, encrypted and
 * verifiable backups in a repository (format: docs/backup-format.md).
 *
 * A repository is reached through a struct backup_backend (a local directory today; an
 * S3-compatible store can implement the same five calls). A struct backup_repo is an open,
 * unlocked repository; every operation takes the lock it needs (shared for backup, check,
 * restore; exclusive for forget, prune and key removal) and releases it before returning.
 * One struct backup_repo belongs to one thread at a time; separate repos (even of the same
 * repository) may be used from separate threads, so a daemon can run backups from a worker
 * thread. Nothing here exits or prints: progress and warnings go to the callbacks given.
 */
#ifndef WARD_BACKUP_H
#define WARD_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- results ---- */
enum backup_rc {
	BACKUP_OK = 0,
	BACKUP_ERR_IO = -1,         /* the backend failed (disk, permissions); see err */
	BACKUP_ERR_NOTFOUND = -2,   /* no repository, snapshot, key or path of that name */
	BACKUP_ERR_PASSPHRASE = -3, /* no key of the repository opens with the passphrase */
	BACKUP_ERR_LOCKED = -4,     /* another process holds a conflicting lock */
	BACKUP_ERR_CORRUPT = -5,    /* a file failed authentication or does not decode */
	BACKUP_ERR_USAGE = -6,      /* bad arguments (empty policy, last key, ...) */
	BACKUP_ERR_EXISTS = -7,     /* init on a directory that already holds a repository */
	BACKUP_ERR_CANCELLED = -8,  /* *cancel became non-zero */
	BACKUP_ERR_SOURCE = -9,     /* the source failed (before_commit refused); no snapshot */
};
const char *backup_strerror(int rc);

#define BACKUP_ID_LEN  32 /* blob, pack, index and snapshot ids: 32 bytes, 64 hex digits */
#define BACKUP_HEX_LEN 65 /* hex id + NUL */

/* ---- backend: named files by type ---- */
enum backup_ftype {
	BACKUP_FT_CONFIG = 0, /* "config" (one file, name ignored) */
	BACKUP_FT_KEY,        /* keys/<id> */
	BACKUP_FT_DATA,       /* data/<first 2 hex>/<pack id> */
	BACKUP_FT_INDEX,      /* index/<id> */
	BACKUP_FT_SNAPSHOT,   /* snapshots/<id> */
	BACKUP_FT_LOCK,       /* locks/<id> */
};
typedef int (*backup_list_fn)(const char *name, int64_t size, void *arg);
/* Every call returns 0 or a negative enum backup_rc with err set. write is atomic: a reader
 * sees the old file, or no file, or the whole new one, and after return it is durable.
 * read with len 0 reads from off to the end. list calls fn for every complete file of the
 * type (temporary files are never listed); a non-zero return from fn stops the listing and
 * is returned. */
struct backup_backend {
	void *ctx;
	int (*write)(struct backup_backend *be, enum backup_ftype t, const char *name,
	             const void *data, size_t n, struct ward_err *err);
	/* The two halves of write, for a caller that wants its buffer back before the disk
	 * has caught up (both NULL, or both set): write_nosync puts the object in place, and
	 * it is durable once sync(name) returns. */
	int (*write_nosync)(struct backup_backend *be, enum backup_ftype t, const char *name,
	                    const void *data, size_t n, struct ward_err *err);
	int (*sync)(struct backup_backend *be, enum backup_ftype t, const char *name,
	            struct ward_err *err);
	int (*read)(struct backup_backend *be, enum backup_ftype t, const char *name, uint64_t off,
	            size_t len, struct buf *out, struct ward_err *err);
	int (*list)(struct backup_backend *be, enum backup_ftype t, backup_list_fn fn, void *arg,
	            struct ward_err *err);
	int (*remove)(struct backup_backend *be, enum backup_ftype t, const char *name,
	              struct ward_err *err);
	int (*stat)(struct backup_backend *be, enum backup_ftype t, const char *name, int64_t *size,
	            struct ward_err *err);
	/* Prepares the layout of a new repository (directories); may be NULL. */
	int (*create)(struct backup_backend *be, struct ward_err *err);
	/* Removes temporary files left by writers that died (kill -9 mid-write); returns how
	 * many. Only called under an exclusive lock, when no one else writes. May be NULL. */
	int (*sweep)(struct backup_backend *be);
	/* Says that len bytes at off will be read soon, so the backend can start fetching them
	 * (a hint: nothing is reported). May be NULL. */
	void (*prefetch)(struct backup_backend *be, enum backup_ftype t, const char *name,
	                 uint64_t off, size_t len);
	void (*free)(struct backup_backend *be);
	char *location; /* for messages ("/srv/backup"); owned */
};
/* A backend over a local directory (created by init). Never fails; caller frees with
 * be->free(be). */
struct backup_backend *backup_backend_local(const char *path);

/* ---- repository ---- */
struct backup_init_opts {
	size_t chunk_min, chunk_avg, chunk_max; /* 0: 512 KiB / 1 MiB / 8 MiB */
	int zstd_level;                         /* 0: 3 */
	int zstd_large_level; /* for chunks of at least chunk_min (cut from large files); 0: 1
	                       * when zstd_level is also defaulted, else zstd_level */
	uint64_t kdf_ops;                       /* Argon2id opslimit; 0: 3 */
	size_t kdf_mem;                         /* Argon2id memlimit in bytes; 0: 64 MiB */
	/* Borrowed names, as in the config (docs/backup-format.md); NULL: the defaults. */
	const char *cipher;  /* "xaes-256-gcm" (NULL) or "xchacha20-poly1305" */
	const char *id_hash; /* "hmac-sha256" (NULL) or "blake2b-256-keyed" */
};
/* Creates a repository at path (an absent or empty directory) with one key sealed under the
 * passphrase. opts may be NULL. 0 or negative rc (BACKUP_ERR_EXISTS when one is there). */
int backup_init(const char *path, const char *pass, size_t passlen,
                const struct backup_init_opts *opts, struct ward_err *err);
int backup_init_backend(struct backup_backend *be, const char *pass, size_t passlen,
                        const struct backup_init_opts *opts, struct ward_err *err);
/* Checks opts as backup_init will (sizes, cipher and id hash names) without touching
 * anything: 0 or BACKUP_ERR_USAGE with err. For asking a passphrase only for valid opts. */
int backup_init_check(const struct backup_init_opts *opts, struct ward_err *err);

struct backup_repo;
/* Opens a repository: reads the config and finds the key the passphrase opens. Writes
 * nothing. A wrong passphrase is BACKUP_ERR_PASSPHRASE. */
int backup_open(const char *path, const char *pass, size_t passlen, struct backup_repo **out,
                struct ward_err *err);
/* As above over a backend; the repo takes ownership of be (also on failure). */
int backup_open_backend(struct backup_backend *be, const char *pass, size_t passlen,
                        struct backup_repo **out, struct ward_err *err);
void backup_close(struct backup_repo *r); /* NULL-safe; releases any lock still held */
/* The repository id (hex) and the id of the key that opened it. Borrowed. */
const char *backup_repo_id(const struct backup_repo *r);
const char *backup_repo_key_id(const struct backup_repo *r);
/* For tests: lower the Argon2id cost of keys added later. */
void backup_set_kdf(struct backup_repo *r, uint64_t ops, size_t mem);

/* ---- keys (passphrases) ---- */
struct backup_key_info {
	char id[BACKUP_HEX_LEN];
	char host[256];
	char user[64];
	int64_t created_ms;
	bool current; /* the key that opened this repo */
};
int backup_key_add(struct backup_repo *r, const char *pass, size_t passlen,
                   char id_out[BACKUP_HEX_LEN], struct ward_err *err);
/* *out is a new array (caller frees), sorted by creation time. */
int backup_key_list(struct backup_repo *r, struct backup_key_info **out, size_t *n,
                    struct ward_err *err);
/* Removes a key by id or unique id prefix. Never the last key, nor the one in use. */
int backup_key_remove(struct backup_repo *r, const char *id, struct ward_err *err);

/* ---- progress and warnings ---- */
struct backup_progress {
	uint64_t files_done, files_total; /* total 0 while unknown */
	uint64_t bytes_done, bytes_total; /* bytes read (backup) or written (restore) */
	uint64_t bytes_added;             /* new data after deduplication, before compression */
	int64_t elapsed_ms;
	double rate_bps;     /* bytes_done per second so far */
	int64_t eta_ms;      /* -1 while unknown */
	const char *current; /* the path being processed; borrowed for the call */
	bool final;          /* the last call of the operation */
};
/* Called at most every 250 ms plus once at the end, from the calling thread. */
typedef void (*backup_progress_fn)(const struct backup_progress *p, void *arg);
/* A warning about one path ("vanished during backup", "unreadable: Permission denied"). */
typedef void (*backup_warn_fn)(const char *path, const char *msg, void *arg);

/* ---- snapshots ---- */
struct backup_stats {
	uint64_t files, dirs, others; /* entries in the snapshot */
	uint64_t files_new, files_changed, files_unchanged;
	uint64_t bytes_read;   /* bytes read from the source */
	uint64_t bytes_total;  /* sum of file sizes in the snapshot */
	uint64_t bytes_added;  /* new chunk bytes (uncompressed) */
	uint64_t bytes_stored; /* new bytes in packs (compressed + encrypted) */
	uint64_t blobs_added;
	uint64_t errors; /* unreadable entries */
	int64_t duration_ms;
};
struct backup_snapshot {
	char id[BACKUP_HEX_LEN];
	int64_t time_ns; /* start of the backup, ns since the epoch */
	char *host, *user, *job;
	char **paths; /* absolute source paths, or the stream's name */
	size_t npaths;
	char **tags;
	size_t ntags;
	uint8_t tree[BACKUP_ID_LEN];
	bool has_parent;
	uint8_t parent[BACKUP_ID_LEN];
	bool partial; /* some entries could not be read: listed in unreadable */
	char **unreadable;
	size_t nunreadable;
	struct backup_stats stats;
};
void backup_snapshot_free(struct backup_snapshot *s); /* frees members and s; NULL-safe */
void backup_snapshots_free(struct backup_snapshot *v, size_t n); /* an array of them */
/* Every snapshot, oldest first. *out is a new array (backup_snapshots_free). */
int backup_snapshots(struct backup_repo *r, struct backup_snapshot **out, size_t *n,
                     struct ward_err *err);
/* Finds a snapshot by id, unique id prefix, or "latest" (optionally of a job when job is
 * not NULL). *out is new (backup_snapshot_free). */
int backup_snapshot_find(struct backup_repo *r, const char *ref, const char *job,
                         struct backup_snapshot **out, struct ward_err *err);

/* ---- backup ---- */
struct backup_run_opts {
	const char *job;  /* a name grouping runs ("etc", "pg-main"); may be NULL */
	const char *host; /* NULL: gethostname() */
	const char *const *tags;
	size_t ntags;
	/* fnmatch(3) globs, no FNM_PATHNAME: a pattern with '/' matches the whole path, one
	 * without matches the entry's name. Excluded entries are skipped (a directory with all
	 * below it); with includes, only files matching one are kept (directories are walked). */
	const char *const *include;
	size_t ninclude;
	const char *const *exclude;
	size_t nexclude;
	bool one_file_system; /* do not cross into other file systems */
	bool force;           /* read every file even when the parent says it is unchanged */
	const char *parent;   /* a snapshot ref to compare with; NULL: latest of job+host */
	backup_progress_fn progress;
	backup_warn_fn warn;
	void *cb_arg;
	volatile int *cancel; /* checked between chunks; non-zero stops with CANCELLED */
	/* Called once everything is stored, before the snapshot is written; non-zero (with a
	 * message in err) stops the run without a snapshot. For streams, this is where the
	 * caller checks that the producing command (pg_dump) exited with 0. May be NULL. */
	int (*before_commit)(void *arg, struct ward_err *err);
};
/* Backs up the given files and directories (each becomes an entry of the snapshot's root
 * named by its last path component; two with the same name are a usage error). Files that
 * vanish or change while read are warnings; unreadable ones are listed and the snapshot is
 * marked partial, and the call still returns 0. *out (may be NULL) gets the snapshot. */
int backup_run_paths(struct backup_repo *r, const char *const *paths, size_t npaths,
                     const struct backup_run_opts *o, struct backup_snapshot **out,
                     struct ward_err *err);
/* Backs up everything read from fd until EOF as one file named name (e.g. the stdout of
 * `pg_dump -Fc`). Nothing is buffered beyond one chunk. */
int backup_run_stream(struct backup_repo *r, int fd, const char *name,
                      const struct backup_run_opts *o, struct backup_snapshot **out,
                      struct ward_err *err);

/* ---- browsing ---- */
enum backup_node_type {
	BACKUP_NODE_FILE = 0,
	BACKUP_NODE_DIR = 1,
	BACKUP_NODE_SYMLINK = 2,
	BACKUP_NODE_FIFO = 3,
	BACKUP_NODE_CHARDEV = 4,
	BACKUP_NODE_BLOCKDEV = 5,
	BACKUP_NODE_SOCKET = 6,
};
const char *backup_node_type_name(enum backup_node_type t);
struct backup_node {
	char *name;
	enum backup_node_type type;
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	int64_t mtime_ns;
	uint64_t size;
	uint64_t inode, dev, rdev;
	uint32_t nlink;
	char *target;                      /* symlink target, else NULL */
	uint8_t subtree[BACKUP_ID_LEN];    /* directories */
	uint8_t (*content)[BACKUP_ID_LEN]; /* files: chunk ids in order */
	size_t ncontent;
};
/* Calls fn for every entry at or below path ("/" or NULL: the whole snapshot) in depth-first
 * name order; the path given is "/name/sub". Non-zero from fn stops and is returned. */
typedef int (*backup_ls_fn)(const char *path, const struct backup_node *n, void *arg);
int backup_ls(struct backup_repo *r, const struct backup_snapshot *s, const char *path,
              bool recursive, backup_ls_fn fn, void *arg, struct ward_err *err);

/* '+' added, '-' removed, 'M' content or metadata changed, 'T' type changed. */
typedef void (*backup_diff_fn)(char change, const char *path, void *arg);
int backup_diff(struct backup_repo *r, const struct backup_snapshot *a,
                const struct backup_snapshot *b, backup_diff_fn fn, void *arg,
                struct ward_err *err);

/* ---- restore ---- */
struct backup_restore_opts {
	const char *const *include; /* paths or globs as in ls ("/etc/nginx", "*.conf") */
	size_t ninclude;
	bool verify; /* re-read each restored file and compare with its chunk ids */
	bool sync;   /* syncfs() the target at the end, so the restore survives a power cut */
	/* Restore writes file contents from worker threads: progress and warn may be called
	 * from them, never two at a time (the calls are serialised). */
	backup_progress_fn progress;
	backup_warn_fn warn;
	void *cb_arg;
	volatile int *cancel;
};
struct backup_restore_result {
	uint64_t files, dirs, others, bytes;
	uint64_t errors; /* entries that could not be restored (each reported through warn) */
};
/* Restores the snapshot (or what include selects) under target, which is created. Modes,
 * times, symlinks and hard links are restored; ownership when running as root. A damaged
 * chunk fails only the files that use it: returns 0 with res->errors > 0. */
int backup_restore(struct backup_repo *r, const struct backup_snapshot *s, const char *target,
                   const struct backup_restore_opts *o, struct backup_restore_result *res,
                   struct ward_err *err);

/* ---- forget ---- */
struct backup_policy {
	int last, hourly, daily, weekly, monthly, yearly; /* 0: rule not used */
};
bool backup_policy_empty(const struct backup_policy *p);
/* restic's semantics on one group of snapshots (same host, job and paths), sorted newest
 * first: keep-last keeps the n newest; keep-hourly (daily, ...) keeps the newest snapshot
 * of each of the n newest hours (days, ...) that have one. Buckets are UTC. Pure: fills
 * keep[i] for times_ns[i] given newest first. */
void backup_policy_apply(const struct backup_policy *p, const int64_t *times_ns, size_t n,
                         bool *keep);
/* Applies the policy to every group and removes the snapshots not kept (unless dry_run).
 * fn (may be NULL) hears each snapshot and whether it is kept. Exclusive lock. */
typedef void (*backup_forget_fn)(const struct backup_snapshot *s, bool keep, void *arg);
int backup_forget(struct backup_repo *r, const struct backup_policy *p, bool dry_run,
                  backup_forget_fn fn, void *arg, struct ward_err *err);

/* ---- prune ---- */
struct backup_prune_stats {
	uint64_t packs_kept, packs_repacked, packs_deleted, packs_unindexed;
	uint64_t blobs_kept, blobs_removed;
	uint64_t bytes_freed;
	uint64_t index_files_before, index_files_after;
	uint64_t temp_files_removed; /* left by writers killed mid-write */
};
/* Removes data no snapshot references: deletes unused packs, repacks partly used ones,
 * rewrites the index. Writes new packs and the new index before deleting anything, so an
 * interruption at any point loses no referenced blob. Exclusive lock. */
int backup_prune(struct backup_repo *r, backup_warn_fn warn, void *cb_arg,
                 struct backup_prune_stats *st, struct ward_err *err);

/* ---- check ---- */
struct backup_check_opts {
	bool read_data;    /* decrypt and verify every blob */
	double subset_pct; /* 0 < pct < 100: read only this share of the packs */
	backup_progress_fn progress;
	void *cb_arg;
};
/* One finding. kind: "error" or "warning". */
typedef void (*backup_check_fn)(const char *kind, const char *msg, void *arg);
struct backup_check_result {
	uint64_t errors, warnings;
	uint64_t snapshots, trees, blobs, packs, packs_read, blobs_read;
	uint64_t damaged_blobs;
};
/* Verifies structure (every index and snapshot decodes, every referenced blob is indexed
 * and its pack exists with a plausible size) and, with read_data, the content. A damaged
 * blob is reported with every snapshot and file path that uses it. Returns 0 when the
 * check ran (res->errors says whether problems were found). Shared lock. */
int backup_check(struct backup_repo *r, const struct backup_check_opts *o, backup_check_fn fn,
                 void *arg, struct backup_check_result *res, struct ward_err *err);

/* ---- locks ---- */
/* Removes the lock files that are stale (older than BACKUP_LOCK_STALE_S without refresh,
 * or of a dead process on this host). Returns how many were removed, or negative rc. */
#define BACKUP_LOCK_STALE_S 1800
int backup_unlock_stale(struct backup_repo *r, struct ward_err *err);

/* ---- the daemon side: jobs, schedules, drills (jobs.c, daemon.c, drill.c) ---- */
/* A schedule: cron's 5 fields (minute hour day-of-month month day-of-week, with '*', lists,
 * ranges and steps; both day fields restricted means either matches, as in cron), the
 * macros @hourly @daily @midnight @weekly @monthly @yearly @annually, or "@every DURATION".
 * Times are UTC. */
struct backup_cron {
	bool every;
	int64_t every_ms;
	uint64_t min;  /* bit m: minute m (0-59) */
	uint32_t hour; /* bit h (0-23) */
	uint32_t dom;  /* bit d (1-31) */
	uint32_t mon;  /* bit m (1-12) */
	uint32_t dow;  /* bit d (0-6, 0 Sunday; 7 is read as 0) */
	bool dom_any, dow_any;
};
int backup_cron_parse(const char *s, size_t n, struct backup_cron *out, struct ward_err *err);
/* The first fire time strictly after after_ms (for @every: after_ms + every), or -1 when
 * none comes within about eight years ("0 0 30 2 *"). */
int64_t backup_cron_next(const struct backup_cron *c, int64_t after_ms);

enum backup_source_type {
	BACKUP_SRC_DIR = 0,
	BACKUP_SRC_POSTGRES,
	BACKUP_SRC_COMMAND,
	BACKUP_SRC_WARD_STATE,
};
extern const char *const backup_source_names[]; /* "dir" "postgres" "command" "ward_state" */
struct backup_source_conf {
	int type;
	char **paths;
	size_t npaths;
	char **include;
	size_t ninclude;
	char **exclude;
	size_t nexclude;
	bool one_file_system;
	char *conninfo; /* postgres: libpq key=value conninfo (pg_dump -d) */
	char *command;  /* command: run with /bin/sh -c, its stdout is backed up */
};
struct backup_keep_conf {
	int64_t last, hourly, daily, weekly, monthly, yearly;
};
struct backup_drill_conf {
	char *schedule; /* NULL: no scheduled drill (one can still be started by the API) */
	char *query;    /* postgres: run in the scratch database; must succeed */
	int64_t rto_target_ms;
};
struct backup_job_conf {
	char *name;
	char *schedule;
	struct backup_source_conf source;
	struct backup_keep_conf keep;
	struct backup_drill_conf drill;
	int64_t timeout_ms;
};
struct backup_conf {
	char *repository;
	char *passphrase; /* CONF_SECRET */
	char *passphrase_file;
	char *scratch_dir;        /* drills restore under it; NULL: <data_dir>/backup/scratch */
	char *ward_state_schedule; /* the default ward_state job's schedule */
	bool ward_state;           /* add the default ward_state job */
	struct backup_job_conf *jobs;
	size_t njobs;
};
struct conf_schema;
/* The "backup" config section (registered by backup_module's init; tests call it). */
extern const struct conf_schema backup_conf_schema;
void backup_conf_register(void);
/* A name is 1-64 of [A-Za-z0-9_.-]. */
bool backup_job_name_ok(const char *s);
/* Applies p to the snapshots of one job only (newest first, restic's rules) and removes
 * those not kept. *removed (may be NULL) gets how many. Exclusive lock. */
int backup_forget_job(struct backup_repo *r, const char *job, const struct backup_policy *p,
                      size_t *removed, struct ward_err *err);

/* Reads the repository passphrase: the passphrase field, else the first line of
 * passphrase_file. 0, or -1 with err (which never holds the passphrase). */
int backup_conf_passphrase(const struct backup_conf *c, char *out, size_t cap, size_t *len,
                           struct ward_err *err);

/* A restore drill (drill.c): restores the job's latest snapshot under scratch_dir, checks
 * every file of the snapshot against what was restored (type, size, content through the
 * restore's verify), and for postgres jobs pg_restores the dump into a scratch database
 * ("ward_drill_<job>", dropped afterwards) and runs drill.query there. */
struct backup_drill_result {
	bool ok;
	char snapshot[BACKUP_HEX_LEN];
	double restore_s; /* restoring files (+ pg_restore): the measured recovery time */
	double duration_s;
	uint64_t files, bytes;
	char message[512]; /* why it failed, or the query's first line of output */
};
int backup_drill_run(const struct backup_conf *c, const struct backup_job_conf *j,
                     const char *scratch_dir, volatile int *cancel,
                     struct backup_drill_result *res);

struct ward_module;
extern const struct ward_module backup_module;

#endif
