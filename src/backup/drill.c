/* drill.c: restore drills. Restores the latest snapshot of a job into a fresh scratch
 * directory with the restore's verify (every file re-read and compared with its chunk ids),
 * then walks the snapshot and checks that every entry exists with its type and size; for
 * postgres jobs it also pg_restores the dump into a scratch database and runs the drill
 * query there. The time to restore is measured. Runs on a worker thread of the daemon
 * (daemon.c); child processes are started with posix_spawn (the daemon is multi-threaded).
 * The scratch directory and database are removed afterwards, pass or fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backup/backup.h"

extern char **environ;

/* Runs argv; stdin from in_fd (-1: /dev/null); stdout and stderr into out (at most 4 KiB
 * kept). Returns the exit status (0 success), or -1 when it could not start. */
static int run_capture(char *const argv[], int in_fd, struct buf *out) {
	int p[2];
	pid_t pid;
	posix_spawn_file_actions_t fa;
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		buf_printf(out, "%s: %s", argv[0], strerror(rc));
		return -1;
	}
	char tmp[4096];
	ssize_t n;
	while ((n = read(p[0], tmp, sizeof(tmp))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (out->len < 4096)
			buf_append(out, tmp, (size_t)n);
	}
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}
static void rm_rf(const char *path) {
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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

struct walk {
	const char *root;
	uint64_t files, bytes, bad;
	char first_bad[256];
};

static int walk_fn(const char *path, const struct backup_node *n, void *arg) {
	struct walk *w = arg;
	char full[4096];
	struct stat st;
	const char *why = NULL;
	snprintf(full, sizeof(full), "%s%s", w->root, path);
	if (lstat(full, &st) != 0)
		why = "missing";
	else if (n->type == BACKUP_NODE_FILE && !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (n->type == BACKUP_NODE_DIR && !S_ISDIR(st.st_mode))
		why = "not a directory";
	else if (n->type == BACKUP_NODE_SYMLINK && !S_ISLNK(st.st_mode))
		why = "not a symlink";
	else if (n->type == BACKUP_NODE_FILE && (uint64_t)st.st_size != n->size)
		why = "size differs";
	if (why) {
		if (w->bad++ == 0)
			snprintf(w->first_bad, sizeof(w->first_bad), "%s: %s", path, why);
	} else if (n->type == BACKUP_NODE_FILE) {
		w->files++;
		w->bytes += n->size;
	}
	return 0;
}

static void warn_fn(const char *path, const char *msg, void *arg) {
	struct backup_drill_result *res = arg;
	if (!res->message[0])
		snprintf(res->message, sizeof(res->message), "restore: %s: %s", path, msg);
}

/* "ward_drill_" + the job name with every other character than [a-z0-9_] as '_'. */
static void scratch_db(const char *job, char *out, size_t cap) {
	size_t o = (size_t)snprintf(out, cap, "ward_drill_");
	for (const char *p = job; *p && o + 1 < cap && o < 63; p++) {
		char ch = *p;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
			ch = '_';
		out[o++] = ch;
	}
	out[o] = 0;
}

static int pg_drill(const struct backup_job_conf *j, const char *dump,
                    struct backup_drill_result *res, double *restore_s) {
	char db[80], sql[200];
	struct buf out = BUF_INIT, ci = BUF_INIT;
	int rc = -1, st;
	scratch_db(j->name, db, sizeof(db));
	buf_printf(&ci, "%s dbname=%s", j->source.conninfo, db);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\"", db);
	char *drop[] = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", j->source.conninfo,
	                "-c",   sql,  NULL};
	st = run_capture(drop, -1, &out);
	if (st != 0) {
		snprintf(res->message, sizeof(res->message), "psql (drop scratch database): %.*s",
		         (int)out.len, buf_cstr(&out));
		goto out;
	}
	buf_reset(&out);
	char csql[200];
	snprintf(csql, sizeof(csql), "CREATE DATABASE \"%s\"", db);
	char *create[] = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", j->source.conninfo,
	                  "-c",   csql, NULL};
	st = run_capture(create, -1, &out);
	if (st != 0) {
		snprintf(res->message, sizeof(res->message), "psql (create scratch database): %.*s",
		         (int)out.len, buf_cstr(&out));
		goto out;
	}
	buf_reset(&out);
	int64_t t0 = ward_mono_ms();
	char *restore[] = {"pg_restore", "--no-owner",          "--exit-on-error",
	                   "-d",         (char *)buf_cstr(&ci), (char *)dump,
	                   NULL};
	st = run_capture(restore, -1, &out);
	*restore_s += (double)(ward_mono_ms() - t0) / 1000.0;
	if (st != 0) {
		snprintf(res->message, sizeof(res->message), "pg_restore exited %d: %.*s", st,
		         (int)out.len, buf_cstr(&out));
		goto drop;
	}
	buf_reset(&out);
	char *query[] = {"psql", "-X",
	                 "-A",   "-t",
	                 "-v",   "ON_ERROR_STOP=1",
	                 "-d",   (char *)buf_cstr(&ci),
	                 "-c",   j->drill.query ? j->drill.query : "SELECT 1",
	                 NULL};
	st = run_capture(query, -1, &out);
	if (st != 0) {
		snprintf(res->message, sizeof(res->message), "drill query failed: %.*s",
		         (int)out.len, buf_cstr(&out));
		goto drop;
	}
	size_t e = 0;
	while (e < out.len && out.data[e] != '\n')
		e++;
	snprintf(res->message, sizeof(res->message), "query: %.*s", (int)e, buf_cstr(&out));
	rc = 0;
drop:
	buf_reset(&out);
	(void)run_capture(drop, -1, &out);
out:
	buf_free(&out);
	buf_free(&ci);
	return rc;
}

int backup_drill_run(const struct backup_conf *c, const struct backup_job_conf *j,
                     const char *scratch_dir, volatile int *cancel,
                     struct backup_drill_result *res) {
	char pass[1024], target[4096];
	size_t plen = 0;
	struct ward_err err = {{0}};
	struct backup_repo *r = NULL;
	struct backup_snapshot *s = NULL;
	struct backup_restore_result rr = {0};
	int64_t start = ward_mono_ms();
	int rc;

	memset(res, 0, sizeof(*res));
	target[0] = 0;
	if (backup_conf_passphrase(c, pass, sizeof(pass), &plen, &err) != 0)
		goto fail;
	rc = backup_open(c->repository, pass, plen, &r, &err);
	memset(pass, 0, sizeof(pass));
	if (rc)
		goto fail;
	rc = backup_snapshot_find(r, "latest", j->name, &s, &err);
	if (rc == BACKUP_ERR_NOTFOUND) {
		ward_err_set(&err, "job %s has no snapshot yet: nothing to restore", j->name);
		goto fail;
	}
	if (rc)
		goto fail;
	snprintf(res->snapshot, sizeof(res->snapshot), "%s", s->id);
	snprintf(target, sizeof(target), "%s/%s-%lld", scratch_dir, j->name,
	         (long long)ward_now_ms());
	mkdirs(scratch_dir);
	rm_rf(target);
	struct backup_restore_opts ro = {
	        .verify = true, .warn = warn_fn, .cb_arg = res, .cancel = cancel};
	int64_t t0 = ward_mono_ms();
	rc = backup_restore(r, s, target, &ro, &rr, &err);
	res->restore_s = (double)(ward_mono_ms() - t0) / 1000.0;
	if (rc)
		goto fail;
	if (rr.errors > 0) {
		char first[512];
		snprintf(first, sizeof(first), "%s", res->message);
		snprintf(res->message, sizeof(res->message),
		         "%llu entries could not be restored or verified; first: %.400s",
		         (unsigned long long)rr.errors, first);
		goto done;
	}
	struct walk w = {.root = target};
	rc = backup_ls(r, s, "/", true, walk_fn, &w, &err);
	if (rc)
		goto fail;
	res->files = w.files;
	res->bytes = w.bytes;
	if (w.bad > 0) {
		snprintf(res->message, sizeof(res->message),
		         "%llu entries differ from the snapshot; first: %s",
		         (unsigned long long)w.bad, w.first_bad);
		goto done;
	}
	if (j->source.type == BACKUP_SRC_POSTGRES) {
		char dump[4200];
		snprintf(dump, sizeof(dump), "%s/%s.pgdump", target, j->name);
		if (pg_drill(j, dump, res, &res->restore_s) != 0)
			goto done;
	} else {
		snprintf(res->message, sizeof(res->message),
		         "restored and verified %llu files (%llu bytes)",
		         (unsigned long long)w.files, (unsigned long long)w.bytes);
	}
	res->ok = true;
	goto done;
fail:
	snprintf(res->message, sizeof(res->message), "%.500s", err.msg);
done:
	if (target[0])
		rm_rf(target);
	backup_snapshot_free(s);
	backup_close(r);
	res->duration_s = (double)(ward_mono_ms() - start) / 1000.0;
	return res->ok ? 0 : -1;
}
