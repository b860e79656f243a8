/* daemon.c: backup_module, the daemon side of backups. Keeps the configured jobs (plus the
 * default "ward_state" job once a repository is configured), fires them on their cron or
 * @every schedules from a loop timer, runs backups and restore drills on libuv's worker
 * pool (one run and one drill per job at a time), records every run in the store table
 * backup_runs, exports ward_backup_* metrics, and serves /api/v1/backups/... .
 * Invariants: job state is guarded by D.lock (HTTP threads read it); a run holds its own
 * config reference, so a reload never changes a config under a worker; passphrases are
 * read per run and wiped, never logged. Sources: dir (backup_run_paths), postgres (pg_dump
 * -Fc streamed through a pipe, no temporary file), command (sh -c, its stdout), ward_state
 * (state.db copied with store_backup_to into a staging dir, and the time-series store as a
 * tsdb_snapshot there: hard links to its blocks and sealed WAL segments taken under its
 * lock, so the snapshot holds what was committed at one instant; <data_dir>/tsdb as it is
 * only when the store is not open).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "backup/backup.h"
#include "conf/conf.h"
#include "core/core.h"
#include "http/http.h"
#include "store/store.h"
#include "tsdb/tsdb.h"

extern char **environ;

#define TICK_MS 500
/* Runs and drills in flight at once: they hold libuv worker threads (4 by default) that
 * other modules need too; due work waits for a slot and keeps its place. */
#define MAX_INFLIGHT 2

struct bjob {
	char name[72];
	struct backup_job_conf jc; /* shallow copy; strings borrowed from D.conf */
	struct backup_cron cron, dcron;
	bool has_dcron;
	int64_t next_ms, next_drill_ms;
	bool running, drilling, run_req, drill_req, removed;
	struct work *cur;
	/* last results */
	bool has_last, last_ok;
	int64_t last_start_ms, last_end_ms, last_success_ms;
	char last_snapshot[BACKUP_HEX_LEN];
	char last_msg[256];
	bool has_drill, drill_ok;
	int64_t drill_ms;
	double restore_s;
	char drill_msg[256];
};

struct work {
	uv_work_t w;
	struct bjob *j;
	struct conf *conf;
	const struct backup_conf *bc;
	struct backup_job_conf jc;
	bool drill, manual;
	volatile int cancel;
	volatile pid_t child;
	int64_t start_ms, deadline_ms;
	/* results */
	bool ok;
	struct backup_stats st;
	char snapshot[BACKUP_HEX_LEN];
	char msg[512];
	struct backup_drill_result dr;
};

static struct {
	pthread_mutex_t lock;
	/* Runs and drills of this daemon hold it shared; forget and prune (which take the
	 * repository's exclusive lock) only run when they get it exclusively, so the daemon's
	 * own jobs never fail each other with "locked". */
	pthread_rwlock_t repo_rw;
	struct ward_ctx *ctx;
	uv_loop_t *loop;
	uv_timer_t tick;
	struct conf *conf;
	struct bjob **jobs;
	size_t njobs;
	int inflight;
	bool started, stopping;
	struct metric *m_last_success, *m_last_dur, *m_read, *m_added, *m_files, *m_errors,
	        *m_last_ok, *m_drill_ok, *m_drill_dur, *m_restore, *m_drill_rto, *m_interval;
} D = {.lock = PTHREAD_MUTEX_INITIALIZER, .repo_rw = PTHREAD_RWLOCK_INITIALIZER};

static const struct store_migration migrations[] = {
        {1, "CREATE TABLE backup_runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, kind TEXT NOT "
            "NULL, trigger TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, "
            "ok INTEGER NOT NULL, snapshot TEXT, bytes_read INTEGER, bytes_added INTEGER, "
            "files INTEGER, restore_ms INTEGER, message TEXT);"
            "CREATE INDEX backup_runs_job ON backup_runs(job, start_ms)"},
};

/* ---- helpers ---- */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}

static void mkdirs(const char *path) {
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0700);
			*p = '/';
		}
	mkdir(tmp, 0700);
}

static const char *run_kind(const struct work *w) {
	return w->drill ? "drill" : "backup";
}

/* ---- sources ---- */
struct stream {
	struct work *w;
	char errpath[4200];
	const char *what;
};

static void tail_of(const char *path, char *out, size_t cap) {
	char *data = NULL;
	size_t n = 0;
	struct ward_err e;
	out[0] = 0;
	if (ward_read_file(path, 1 << 20, &data, &n, &e) != 0)
		return;
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == ' '))
		n--;
	size_t from = n > cap - 1 ? n - (cap - 1) : 0;
	snprintf(out, cap, "%.*s", (int)(n - from), data + from);
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
	free(data);
}

static int stream_commit(void *arg, struct ward_err *err) {
	struct stream *s = arg;
	pid_t pid = s->w->child;
	int st = 0;
	if (pid <= 0)
		return 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	s->w->child = 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char tail[300];
	tail_of(s->errpath, tail, sizeof(tail));
	if (WIFEXITED(st))
		ward_err_set(err, "%s exited with status %d: %s; no snapshot was written", s->what,
		             WEXITSTATUS(st), tail[0] ? tail : "(no output)");
	else
		ward_err_set(err, "%s was killed by signal %d; no snapshot was written", s->what,
		             WTERMSIG(st));
	return -1;
}

static int run_stream(struct work *w, struct backup_repo *r, struct backup_run_opts *o,
                      struct backup_snapshot **snap, struct ward_err *err) {
	struct stream s = {.w = w};
	char name[128];
	int p[2], rc;
	char *pg[] = {"pg_dump", "-Fc", "-d", w->jc.source.conninfo, NULL};
	char *sh[] = {"/bin/sh", "-c", w->jc.source.command, NULL};
	char *const *argv = w->jc.source.type == BACKUP_SRC_POSTGRES ? pg : sh;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	s.what = w->jc.source.type == BACKUP_SRC_POSTGRES ? "pg_dump" : "the command";
	snprintf(s.errpath, sizeof(s.errpath), "%s/backup/%s.stderr", D.ctx->data_dir, w->jc.name);
	if (w->jc.source.type == BACKUP_SRC_POSTGRES)
		snprintf(name, sizeof(name), "%s.pgdump", w->jc.name);
	else
		snprintf(name, sizeof(name), "%s", w->jc.name);
	if (pipe2(p, O_CLOEXEC) != 0) {
		ward_err_set(err, "pipe: %s", strerror(errno));
		return BACKUP_ERR_SOURCE;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, s.errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		ward_err_set(err, "cannot start %s: %s", argv[0], strerror(rc));
		return BACKUP_ERR_SOURCE;
	}
	w->child = pid;
	o->before_commit = stream_commit;
	o->cb_arg = &s;
	rc = backup_run_stream(r, p[0], name, o, snap, err);
	close(p[0]);
	if (w->child > 0) {
		struct ward_err e2;
		kill(w->child, SIGTERM);
		stream_commit(&s, &e2);
	}
	return rc;
}

static int run_ward_state(struct work *w, struct backup_repo *r, struct backup_run_opts *o,
                          struct backup_snapshot **snap, struct ward_err *err) {
	char stage[4200], db[4300], tsdb[4300];
	struct stat st;
	const char *paths[2];
	size_t n = 0;
	snprintf(stage, sizeof(stage), "%s/backup/staging/%s", D.ctx->data_dir, w->jc.name);
	nftw(stage, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	mkdirs(stage);
	snprintf(db, sizeof(db), "%s/state.db", stage);
	if (store_backup_to(D.ctx->store, db, err) != 0)
		return BACKUP_ERR_SOURCE;
	paths[n++] = db;
	if (D.ctx->tsdb) { /* a point-in-time copy, made of hard links */
		snprintf(tsdb, sizeof(tsdb), "%s/tsdb", stage);
		if (tsdb_snapshot(D.ctx->tsdb, tsdb, err) != 0) {
			nftw(stage, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			return BACKUP_ERR_SOURCE;
		}
		paths[n++] = tsdb;
	} else {
		snprintf(tsdb, sizeof(tsdb), "%s/tsdb", D.ctx->data_dir);
		if (stat(tsdb, &st) == 0 && S_ISDIR(st.st_mode))
			paths[n++] = tsdb;
	}
	static const char *const excl[] = {"/*/tsdb/quarantine"};
	o->exclude = excl;
	o->nexclude = 1;
	int rc = backup_run_paths(r, paths, n, o, snap, err);
	nftw(stage, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

static void count_warn(const char *path, const char *msg, void *arg) {
	(void)arg;
	ward_log(LOG_WARN, "backup warning", "path", path, "warning", msg, NULL);
}

static void do_backup(struct work *w) {
	char pass[1024];
	size_t plen = 0;
	struct ward_err err = {{0}};
	struct backup_repo *r = NULL;
	struct backup_snapshot *snap = NULL;
	struct backup_run_opts o = {0};
	int rc;

	if (backup_conf_passphrase(w->bc, pass, sizeof(pass), &plen, &err) != 0)
		goto fail;
	rc = backup_open(w->bc->repository, pass, plen, &r, &err);
	memset(pass, 0, sizeof(pass));
	if (rc)
		goto fail;
	o.job = w->jc.name;
	o.warn = count_warn;
	o.cancel = &w->cancel;
	pthread_rwlock_rdlock(&D.repo_rw);
	switch (w->jc.source.type) {
	case BACKUP_SRC_DIR:
		o.include = (const char *const *)w->jc.source.include;
		o.ninclude = w->jc.source.ninclude;
		o.exclude = (const char *const *)w->jc.source.exclude;
		o.nexclude = w->jc.source.nexclude;
		o.one_file_system = w->jc.source.one_file_system;
		rc = backup_run_paths(r, (const char *const *)w->jc.source.paths,
		                      w->jc.source.npaths, &o, &snap, &err);
		break;
	case BACKUP_SRC_POSTGRES:
	case BACKUP_SRC_COMMAND:
		rc = run_stream(w, r, &o, &snap, &err);
		break;
	default:
		rc = run_ward_state(w, r, &o, &snap, &err);
		break;
	}
	pthread_rwlock_unlock(&D.repo_rw);
	if (rc)
		goto fail;
	w->st = snap->stats;
	snprintf(w->snapshot, sizeof(w->snapshot), "%s", snap->id);
	if (snap->partial) {
		snprintf(w->msg, sizeof(w->msg),
		         "snapshot %.8s is partial: %zu entries unreadable (first: %s)", snap->id,
		         snap->nunreadable, snap->nunreadable ? snap->unreadable[0] : "?");
		goto out;
	}
	w->ok = true;
	snprintf(w->msg, sizeof(w->msg), "snapshot %.8s: %llu files", snap->id,
	         (unsigned long long)snap->stats.files);
	const struct backup_keep_conf *k = &w->jc.keep;
	struct backup_policy p = {(int)k->last,   (int)k->hourly,  (int)k->daily,
	                          (int)k->weekly, (int)k->monthly, (int)k->yearly};
	if (!backup_policy_empty(&p) && pthread_rwlock_trywrlock(&D.repo_rw) != 0) {
		ward_log(LOG_INFO,
		         "backup forget postponed to the next run: other jobs are running", "job",
		         w->jc.name, NULL);
	} else if (!backup_policy_empty(&p)) {
		size_t removed = 0;
		struct ward_err e2 = {{0}};
		if (backup_forget_job(r, w->jc.name, &p, &removed, &e2) != 0)
			ward_log(LOG_WARN, "backup forget skipped", "job", w->jc.name, "error",
			         e2.msg, NULL);
		else if (removed > 0) {
			struct backup_prune_stats ps;
			if (backup_prune(r, NULL, NULL, &ps, &e2) != 0)
				ward_log(LOG_WARN, "backup prune skipped", "job", w->jc.name,
				         "error", e2.msg, NULL);
		}
		pthread_rwlock_unlock(&D.repo_rw);
	}
	goto out;
fail:
	snprintf(w->msg, sizeof(w->msg), "%.500s", err.msg[0] ? err.msg : "failed");
out:
	backup_snapshot_free(snap);
	backup_close(r);
}

static void record(struct work *w, int64_t end_ms) {
	struct ward_err err = {{0}};
	struct store_val v[] = {
	        SV_TEXT(w->jc.name),
	        SV_TEXT(run_kind(w)),
	        SV_TEXT(w->manual ? "manual" : "schedule"),
	        SV_INT(w->start_ms),
	        SV_INT(end_ms),
	        SV_INT(w->ok ? 1 : 0),
	        SV_TEXT(w->drill ? w->dr.snapshot : w->snapshot),
	        SV_INT(w->drill ? 0 : (int64_t)w->st.bytes_read),
	        SV_INT(w->drill ? 0 : (int64_t)w->st.bytes_added),
	        SV_INT(w->drill ? (int64_t)w->dr.files : (int64_t)w->st.files),
	        w->drill ? SV_INT((int64_t)(w->dr.restore_s * 1000)) : SV_NULL(),
	        SV_TEXT(w->drill ? w->dr.message : w->msg),
	};
	if (store_exec(
	            D.ctx->store,
	            "INSERT INTO backup_runs(job, kind, trigger, start_ms, end_ms, ok, snapshot, "
	            "bytes_read, bytes_added, files, restore_ms, message) VALUES "
	            "(?,?,?,?,?,?,?,?,?,?,?,?)",
	            v, sizeof(v) / sizeof(v[0]), NULL, &err) != 0)
		ward_log(LOG_WARN, "backup run not recorded", "job", w->jc.name, "error", err.msg,
		         NULL);
}

static void work_cb(uv_work_t *req) {
	struct work *w = req->data;
	if (w->drill) {
		char scratch[4200];
		if (w->bc->scratch_dir)
			snprintf(scratch, sizeof(scratch), "%s", w->bc->scratch_dir);
		else
			snprintf(scratch, sizeof(scratch), "%s/backup/scratch", D.ctx->data_dir);
		pthread_rwlock_rdlock(&D.repo_rw);
		w->ok = backup_drill_run(w->bc, &w->jc, scratch, &w->cancel, &w->dr) == 0;
		pthread_rwlock_unlock(&D.repo_rw);
	} else {
		do_backup(w);
	}
	record(w, ward_now_ms());
}

static void free_job(struct bjob *j) {
	free(j);
}

static void after_cb(uv_work_t *req, int status) {
	struct work *w = req->data;
	struct bjob *j = w->j;
	const char *lv[] = {w->jc.name, NULL};
	int64_t end = ward_now_ms();
	double dur = (double)(end - w->start_ms) / 1000.0;
	(void)status;
	if (w->drill) {
		metric_set(D.m_drill_ok, lv, w->ok ? 1 : 0);
		metric_set(D.m_drill_dur, lv, w->dr.duration_s);
		if (w->dr.snapshot[0])
			metric_set(D.m_restore, lv, w->dr.restore_s);
		ward_log(w->ok ? LOG_INFO : LOG_WARN,
		         w->ok ? "backup drill passed" : "backup drill failed", "job", w->jc.name,
		         "result", w->dr.message, NULL);
	} else {
		metric_set(D.m_last_dur, lv, dur);
		metric_add(D.m_read, lv, (double)w->st.bytes_read);
		metric_add(D.m_added, lv, (double)w->st.bytes_added);
		metric_add(D.m_files, lv, (double)w->st.files);
		metric_set(D.m_last_ok, lv, w->ok ? 1 : 0);
		if (w->ok)
			metric_set(D.m_last_success, lv, (double)end / 1000.0);
		else
			metric_add(D.m_errors, lv, 1);
		ward_log(w->ok ? LOG_INFO : LOG_WARN, w->ok ? "backup done" : "backup failed",
		         "job", w->jc.name, "result", w->msg, NULL);
	}
	pthread_mutex_lock(&D.lock);
	if (w->drill) {
		j->drilling = false;
		j->has_drill = true;
		j->drill_ok = w->ok;
		j->drill_ms = end;
		j->restore_s = w->dr.restore_s;
		snprintf(j->drill_msg, sizeof(j->drill_msg), "%.250s", w->dr.message);
	} else {
		j->running = false;
		j->cur = NULL;
		j->has_last = true;
		j->last_ok = w->ok;
		j->last_start_ms = w->start_ms;
		j->last_end_ms = end;
		if (w->ok)
			j->last_success_ms = end;
		snprintf(j->last_snapshot, sizeof(j->last_snapshot), "%s", w->snapshot);
		snprintf(j->last_msg, sizeof(j->last_msg), "%.250s", w->msg);
	}
	bool gone = j->removed && !j->running && !j->drilling;
	D.inflight--;
	pthread_mutex_unlock(&D.lock);
	if (gone)
		free_job(j);
	conf_unref(w->conf);
	free(w);
}

/* Under D.lock. */
static void launch(struct bjob *j, bool drill, bool manual) {
	struct work *w = ward_xcalloc(1, sizeof(*w));
	w->w.data = w;
	w->j = j;
	w->conf = conf_ref(D.conf);
	w->bc = conf_section(D.conf, "backup");
	w->jc = j->jc;
	w->drill = drill;
	w->manual = manual;
	w->start_ms = ward_now_ms();
	w->deadline_ms = w->start_ms + (j->jc.timeout_ms > 0 ? j->jc.timeout_ms : 6 * 3600000);
	if (uv_queue_work(D.loop, &w->w, work_cb, after_cb) != 0) {
		conf_unref(w->conf);
		free(w);
		ward_log(LOG_ERROR, "backup run not queued", "job", j->name, NULL);
		return;
	}
	D.inflight++;
	if (drill) {
		j->drilling = true;
	} else {
		j->running = true;
		j->cur = w;
	}
}

static void tick_cb(uv_timer_t *t) {
	(void)t;
	int64_t now = ward_now_ms();
	pthread_mutex_lock(&D.lock);
	for (size_t i = 0; i < D.njobs && !D.stopping; i++) {
		struct bjob *j = D.jobs[i];
		if (!j->running && D.inflight < MAX_INFLIGHT && (j->run_req || now >= j->next_ms)) {
			bool manual = j->run_req;
			j->run_req = false;
			if (now >= j->next_ms)
				j->next_ms = backup_cron_next(&j->cron, now);
			launch(j, false, manual);
		} else if (j->running && j->cur && now > j->cur->deadline_ms && !j->cur->cancel) {
			j->cur->cancel = 1;
			if (j->cur->child > 0)
				kill(j->cur->child, SIGTERM);
			ward_log(LOG_WARN, "backup run timed out; cancelling", "job", j->name,
			         NULL);
		}
		if (!j->drilling && D.inflight < MAX_INFLIGHT &&
		    (j->drill_req || (j->has_dcron && now >= j->next_drill_ms))) {
			bool manual = j->drill_req;
			j->drill_req = false;
			if (j->has_dcron && now >= j->next_drill_ms)
				j->next_drill_ms = backup_cron_next(&j->dcron, now);
			launch(j, true, manual);
		}
	}
	pthread_mutex_unlock(&D.lock);
}

/* ---- config ---- */
static struct bjob *find_job(struct bjob **v, size_t n, const char *name) {
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

/* The longest gap between two of the next 16 fire times: what the alert rules allow a
 * backup to be late by (they add one more interval). */
static int64_t schedule_interval_ms(const struct backup_cron *c, int64_t now) {
	int64_t t = backup_cron_next(c, now), gap = 0;
	for (int i = 0; i < 16 && t > 0; i++) {
		int64_t u = backup_cron_next(c, t);
		if (u < 0)
			break;
		if (u - t > gap)
			gap = u - t;
		t = u;
	}
	return gap;
}

static void set_job(struct bjob *j, const struct backup_job_conf *jc, int64_t now) {
	struct ward_err e;
	bool sched_changed = !ward_streq(j->jc.schedule, jc->schedule) || j->next_ms == 0;
	bool drill_changed =
	        !ward_streq(j->jc.drill.schedule, jc->drill.schedule) || j->next_drill_ms == 0;
	j->jc = *jc;
	snprintf(j->name, sizeof(j->name), "%s", jc->name);
	if (backup_cron_parse(jc->schedule, strlen(jc->schedule), &j->cron, &e) != 0)
		j->cron = (struct backup_cron){.every = true, .every_ms = 86400000};
	j->has_dcron = jc->drill.schedule &&
	               backup_cron_parse(jc->drill.schedule, strlen(jc->drill.schedule), &j->dcron,
	                                 &e) == 0;
	if (sched_changed)
		j->next_ms = backup_cron_next(&j->cron, now);
	if (j->next_ms < 0)
		j->next_ms = INT64_MAX;
	if (j->has_dcron && drill_changed)
		j->next_drill_ms = backup_cron_next(&j->dcron, now);
	if (j->next_drill_ms < 0)
		j->next_drill_ms = INT64_MAX;
	const char *lv[] = {j->name, NULL};
	metric_add(D.m_errors, lv, 0);
	metric_add(D.m_read, lv, 0);
	metric_add(D.m_added, lv, 0);
	metric_add(D.m_files, lv, 0);
	metric_set(D.m_drill_rto, lv, (double)jc->drill.rto_target_ms / 1000.0);
	metric_set(D.m_interval, lv, (double)schedule_interval_ms(&j->cron, now) / 1000.0);
}

static void install(const struct conf *c) {
	const struct backup_conf *bc = conf_section(c, "backup");
	int64_t now = ward_now_ms();
	size_t cap = (bc ? bc->njobs : 0) + 1, n = 0;
	struct bjob **nv = ward_xcalloc(cap, sizeof(*nv));
	static const struct backup_job_conf ws_template = {
	        .name = "ward_state",
	        .source = {.type = BACKUP_SRC_WARD_STATE},
	        .keep = {.last = 3, .hourly = 24, .daily = 7, .weekly = 4},
	        .drill = {.rto_target_ms = 3600000},
	        .timeout_ms = 3600000,
	};

	pthread_mutex_lock(&D.lock);
	struct conf *old = D.conf;
	D.conf = conf_ref((struct conf *)c);
	bool have_ws = false;
	for (size_t i = 0; bc && bc->repository && i < bc->njobs; i++) {
		const struct backup_job_conf *jc = &bc->jobs[i];
		if (jc->source.type == BACKUP_SRC_WARD_STATE || strcmp(jc->name, "ward_state") == 0)
			have_ws = true;
		struct bjob *j = find_job(D.jobs, D.njobs, jc->name);
		if (!j)
			j = ward_xcalloc(1, sizeof(*j));
		set_job(j, jc, now);
		nv[n++] = j;
	}
	if (bc && bc->repository && bc->ward_state && !have_ws) {
		struct backup_job_conf ws = ws_template;
		ws.schedule = bc->ward_state_schedule ? bc->ward_state_schedule : "@every 1h";
		struct bjob *j = find_job(D.jobs, D.njobs, "ward_state");
		if (!j)
			j = ward_xcalloc(1, sizeof(*j));
		set_job(j, &ws, now);
		nv[n++] = j;
	}
	for (size_t i = 0; i < D.njobs; i++) {
		struct bjob *j = D.jobs[i];
		if (find_job(nv, n, j->name) == j)
			continue;
		if (j->running || j->drilling)
			j->removed = true;
		else
			free_job(j);
	}
	free(D.jobs);
	D.jobs = nv;
	D.njobs = n;
	pthread_mutex_unlock(&D.lock);
	conf_unref(old);
}

/* ---- HTTP ---- */
static void put_time(struct buf *b, const char *key, int64_t ms) {
	char t[32];
	if (ms <= 0 || ms == INT64_MAX) {
		buf_printf(b, "\"%s\":null", key);
		return;
	}
	ward_fmt_rfc3339(ms, t);
	buf_printf(b, "\"%s\":\"%s\"", key, t);
}

static void h_jobs(struct http_req *req, struct http_resp *resp, void *arg) {
	struct buf b = BUF_INIT;
	(void)req;
	(void)arg;
	buf_putc(&b, '[');
	pthread_mutex_lock(&D.lock);
	for (size_t i = 0; i < D.njobs; i++) {
		struct bjob *j = D.jobs[i];
		if (i)
			buf_putc(&b, ',');
		buf_puts(&b, "{\"name\":");
		buf_json_str(&b, j->name, strlen(j->name));
		buf_puts(&b, ",\"schedule\":");
		buf_json_str(&b, j->jc.schedule, strlen(j->jc.schedule));
		buf_printf(&b, ",\"source\":\"%s\",\"running\":%s,\"drilling\":%s,",
		           backup_source_names[j->jc.source.type], j->running ? "true" : "false",
		           j->drilling ? "true" : "false");
		put_time(&b, "next_run", j->next_ms);
		buf_putc(&b, ',');
		put_time(&b, "last_success", j->last_success_ms);
		buf_puts(&b, ",\"last_run\":");
		if (j->has_last) {
			buf_printf(&b, "{\"ok\":%s,", j->last_ok ? "true" : "false");
			put_time(&b, "start", j->last_start_ms);
			buf_printf(&b, ",\"duration_seconds\":%.3f,\"snapshot\":",
			           (double)(j->last_end_ms - j->last_start_ms) / 1000.0);
			buf_json_str(&b, j->last_snapshot, strlen(j->last_snapshot));
			buf_puts(&b, ",\"message\":");
			buf_json_str(&b, j->last_msg, strlen(j->last_msg));
			buf_putc(&b, '}');
		} else {
			buf_puts(&b, "null");
		}
		buf_puts(&b, ",\"drill\":{\"schedule\":");
		if (j->jc.drill.schedule)
			buf_json_str(&b, j->jc.drill.schedule, strlen(j->jc.drill.schedule));
		else
			buf_puts(&b, "null");
		buf_printf(&b, ",\"rto_target_seconds\":%.3f,",
		           (double)j->jc.drill.rto_target_ms / 1000.0);
		put_time(&b, "next_run", j->has_dcron ? j->next_drill_ms : 0);
		if (j->has_drill) {
			buf_printf(&b, ",\"last\":{\"ok\":%s,\"restore_seconds\":%.3f,",
			           j->drill_ok ? "true" : "false", j->restore_s);
			put_time(&b, "time", j->drill_ms);
			buf_puts(&b, ",\"message\":");
			buf_json_str(&b, j->drill_msg, strlen(j->drill_msg));
			buf_putc(&b, '}');
		} else {
			buf_puts(&b, ",\"last\":null");
		}
		buf_puts(&b, "}}");
	}
	pthread_mutex_unlock(&D.lock);
	buf_putc(&b, ']');
	http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

static int run_row(void *arg, const struct store_val *c, size_t n) {
	struct buf *b = arg;
	char t0[32], t1[32];
	if (n < 13)
		return 0;
	if (b->len > 1)
		buf_putc(b, ',');
	ward_fmt_rfc3339(c[4].i, t0);
	ward_fmt_rfc3339(c[5].i, t1);
	buf_printf(b, "{\"id\":%lld,\"job\":", (long long)c[0].i);
	buf_json_str(b, c[1].s, c[1].n);
	buf_printf(b,
	           ",\"kind\":\"%s\",\"trigger\":\"%s\",\"start\":\"%s\",\"end\":\"%s\","
	           "\"duration_seconds\":%.3f,\"ok\":%s,\"snapshot\":",
	           c[2].s, c[3].s, t0, t1, (double)(c[5].i - c[4].i) / 1000.0,
	           c[6].i ? "true" : "false");
	if (c[7].type == STORE_TEXT && c[7].n)
		buf_json_str(b, c[7].s, c[7].n);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"bytes_read\":%lld,\"bytes_added\":%lld,\"files\":%lld,",
	           (long long)c[8].i, (long long)c[9].i, (long long)c[10].i);
	if (c[11].type == STORE_INT)
		buf_printf(b, "\"restore_seconds\":%.3f,", (double)c[11].i / 1000.0);
	buf_puts(b, "\"message\":");
	if (c[12].type == STORE_TEXT)
		buf_json_str(b, c[12].s, c[12].n);
	else
		buf_puts(b, "\"\"");
	buf_putc(b, '}');
	return 0;
}

static void h_runs(struct http_req *req, struct http_resp *resp, void *arg) {
	const char *job = http_param(req, "job"), *kind = http_param(req, "kind"),
	           *lim = http_param(req, "limit");
	long limit = lim ? strtol(lim, NULL, 10) : 100;
	struct buf b = BUF_INIT;
	struct ward_err err = {{0}};
	(void)arg;
	if (limit <= 0 || limit > 10000)
		limit = 100;
	struct store_val v[] = {SV_TEXT(job), SV_TEXT(job), SV_TEXT(kind), SV_TEXT(kind),
	                        SV_INT(limit)};
	buf_putc(&b, '[');
	int rc = store_query(D.ctx->store,
	                     "SELECT id, job, kind, trigger, start_ms, end_ms, ok, snapshot, "
	                     "bytes_read, bytes_added, files, restore_ms, message FROM backup_runs "
	                     "WHERE (? IS NULL OR job = ?) AND (? IS NULL OR kind = ?) "
	                     "ORDER BY id DESC LIMIT ?",
	                     v, 5, run_row, &b, &err);
	buf_putc(&b, ']');
	if (rc < 0)
		http_resp_error(resp, 500, "internal", "backup runs: %s", err.msg);
	else
		http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

static void h_post(struct http_req *req, struct http_resp *resp, void *arg) {
	const char *tail = req->path_tail ? req->path_tail : "";
	const char *slash = strrchr(tail, '/');
	char name[72];
	(void)arg;
	if (!slash || slash == tail || (size_t)(slash - tail) >= sizeof(name) ||
	    (strcmp(slash, "/run") != 0 && strcmp(slash, "/drill") != 0)) {
		http_resp_error(resp, 404, "not_found",
		                "use POST /api/v1/backups/jobs/<name>/run or .../<name>/drill");
		return;
	}
	bool drill = strcmp(slash, "/drill") == 0;
	const char *action = drill ? "backup.drill" : "backup.run";
	snprintf(name, sizeof(name), "%.*s", (int)(slash - tail), tail);
	pthread_mutex_lock(&D.lock);
	struct bjob *j = find_job(D.jobs, D.njobs, name);
	bool busy = j && (drill ? (j->drilling || j->drill_req) : (j->running || j->run_req));
	pthread_mutex_unlock(&D.lock);
	if (!j) {
		ward_audit_req(D.ctx, req, action, name, "not_found", NULL);
		http_resp_error(resp, 404, "not_found",
		                "no backup job \"%s\"; GET /api/v1/backups/jobs lists them", name);
		return;
	}
	if (busy) {
		ward_audit_req(D.ctx, req, action, name, "busy", NULL);
		http_resp_error(resp, 409, "conflict",
		                "job \"%s\" already has a %s running or queued; try again later",
		                name, drill ? "drill" : "run");
		return;
	}
	if (ward_audit_req(D.ctx, req, action, name, "ok", NULL) != 0) {
		http_resp_error(resp, 500, "internal",
		                "the audit record could not be written; "
		                "nothing was started");
		return;
	}
	pthread_mutex_lock(&D.lock);
	j = find_job(D.jobs, D.njobs, name);
	if (j) {
		if (drill)
			j->drill_req = true;
		else
			j->run_req = true;
	}
	pthread_mutex_unlock(&D.lock);
	struct buf b = BUF_INIT;
	buf_puts(&b, "{\"job\":");
	buf_json_str(&b, name, strlen(name));
	buf_printf(&b, ",\"queued\":\"%s\"}", drill ? "drill" : "run");
	http_resp_json(resp, 202, buf_cstr(&b));
	buf_free(&b);
}

/* ---- module ---- */
static void backup_init_mod(void) {
	static const char *const job_l[] = {"job", NULL};
	backup_conf_register();
	store_register_migrations("backup", migrations, sizeof(migrations) / sizeof(migrations[0]));
	D.m_last_success = metric_register("ward_backup_last_success_timestamp_seconds",
	                                   "When the job's last successful backup ended.",
	                                   METRIC_GAUGE, job_l, NULL, 0);
	D.m_last_dur = metric_register("ward_backup_last_duration_seconds",
	                               "How long the job's last backup run took.", METRIC_GAUGE,
	                               job_l, NULL, 0);
	D.m_read =
	        metric_register("ward_backup_bytes_read_total", "Bytes read from the job's source.",
	                        METRIC_COUNTER, job_l, NULL, 0);
	D.m_added = metric_register("ward_backup_bytes_added_total",
	                            "New bytes after deduplication (before compression).",
	                            METRIC_COUNTER, job_l, NULL, 0);
	D.m_files = metric_register("ward_backup_files_total", "Files in the job's snapshots.",
	                            METRIC_COUNTER, job_l, NULL, 0);
	D.m_errors = metric_register("ward_backup_errors_total", "Backup runs that failed.",
	                             METRIC_COUNTER, job_l, NULL, 0);
	D.m_last_ok = metric_register("ward_backup_last_run_success",
	                              "1 when the job's last backup run succeeded, else 0.",
	                              METRIC_GAUGE, job_l, NULL, 0);
	D.m_drill_ok = metric_register("ward_backup_drill_last_success",
	                               "1 when the job's last restore drill passed, else 0.",
	                               METRIC_GAUGE, job_l, NULL, 0);
	D.m_drill_dur = metric_register("ward_backup_drill_duration_seconds",
	                                "How long the job's last restore drill took.", METRIC_GAUGE,
	                                job_l, NULL, 0);
	D.m_restore = metric_register("ward_backup_restore_seconds",
	                              "Time to restore in the job's last drill (recovery time).",
	                              METRIC_GAUGE, job_l, NULL, 0);
	D.m_interval = metric_register("ward_backup_schedule_interval_seconds",
	                               "The longest gap between two runs the job's schedule makes.",
	                               METRIC_GAUGE, job_l, NULL, 0);
	D.m_drill_rto = metric_register("ward_backup_rto_target_seconds",
	                                "The job's configured recovery time objective.",
	                                METRIC_GAUGE, job_l, NULL, 0);
}

/* The last success of each job survives restarts: read back from backup_runs. */
static int last_row(void *arg, const struct store_val *c, size_t n) {
	(void)arg;
	if (n < 2 || c[0].type != STORE_TEXT)
		return 0;
	const char *lv[] = {c[0].s, NULL};
	pthread_mutex_lock(&D.lock);
	struct bjob *j = find_job(D.jobs, D.njobs, c[0].s);
	if (j) {
		j->last_success_ms = c[1].i;
		metric_set(D.m_last_success, lv, (double)c[1].i / 1000.0);
	}
	pthread_mutex_unlock(&D.lock);
	return 0;
}

static int backup_start_mod(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	char dir[4200];
	(void)err;
	D.ctx = ctx;
	D.loop = ctx->loop;
	D.stopping = false;
	snprintf(dir, sizeof(dir), "%s/backup", ctx->data_dir);
	mkdirs(dir);
	install(c);
	struct ward_err e2 = {{0}};
	if (store_query(ctx->store,
	                "SELECT job, MAX(end_ms) FROM backup_runs WHERE kind = 'backup' AND ok = 1 "
	                "GROUP BY job",
	                NULL, 0, last_row, NULL, &e2) < 0)
		ward_log(LOG_WARN, "backup: last successes not read", "error", e2.msg, NULL);
	uv_timer_init(D.loop, &D.tick);
	uv_timer_start(&D.tick, tick_cb, TICK_MS, TICK_MS);
	D.started = true;
	http_route("GET", "/api/v1/backups/jobs", ROLE_VIEWER, h_jobs, NULL);
	http_route("GET", "/api/v1/backups/runs", ROLE_VIEWER, h_runs, NULL);
	http_route("POST", "/api/v1/backups/jobs/*", ROLE_OPERATOR, h_post, NULL);
	char nbuf[32];
	snprintf(nbuf, sizeof(nbuf), "%zu", D.njobs);
	ward_log(LOG_INFO, "backups started", "jobs", nbuf, NULL);
	return 0;
}

static int backup_apply_mod(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	(void)ctx;
	(void)err;
	if (D.started)
		install(c);
	return 0;
}

static void closed_cb(uv_handle_t *h) {
	(void)h;
}

static void backup_stop_mod(struct ward_ctx *ctx) {
	(void)ctx;
	if (!D.started)
		return;
	pthread_mutex_lock(&D.lock);
	D.stopping = true;
	for (size_t i = 0; i < D.njobs; i++)
		if (D.jobs[i]->cur) {
			D.jobs[i]->cur->cancel = 1;
			if (D.jobs[i]->cur->child > 0)
				kill(D.jobs[i]->cur->child, SIGTERM);
		}
	pthread_mutex_unlock(&D.lock);
	uv_timer_stop(&D.tick);
	uv_close((uv_handle_t *)&D.tick, closed_cb);
	for (;;) {
		pthread_mutex_lock(&D.lock);
		int n = D.inflight;
		pthread_mutex_unlock(&D.lock);
		if (n == 0)
			break;
		uv_run(D.loop, UV_RUN_ONCE);
	}
	uv_run(D.loop, UV_RUN_NOWAIT);
	pthread_mutex_lock(&D.lock);
	for (size_t i = 0; i < D.njobs; i++)
		free_job(D.jobs[i]);
	free(D.jobs);
	D.jobs = NULL;
	D.njobs = 0;
	struct conf *old = D.conf;
	D.conf = NULL;
	D.started = false;
	pthread_mutex_unlock(&D.lock);
	conf_unref(old);
}

const struct ward_module backup_module = {
        .name = "backup",
        .init = backup_init_mod,
        .start = backup_start_mod,
        .apply = backup_apply_mod,
        .stop = backup_stop_mod,
};
