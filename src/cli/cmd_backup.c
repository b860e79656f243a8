/* cmd_backup.c: `ward backup init|run|snapshots|ls|restore|diff|forget|prune|check|unlock|
 * key add|list|remove`: offline commands that talk to a backup repository directly (like
 * restic), through the library in src/backup.
 *
 * The repository comes from --repo or WARD_BACKUP_REPO; the passphrase from --password-file
 * or WARD_BACKUP_PASSWORD, else a prompt on the terminal. The passphrase is never echoed,
 * printed or logged. Exit codes: 0 ok; 1 a problem was found (check failed, partial snapshot,
 * files not restored); 2 usage; 4 wrong passphrase; 5 not found; 3 locked; 6 I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "backup/backup.h"
#include "cli/cli.h"

#define BK_X_COMMON                                                                    \
	(CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_USAGE) | CLI_X(WARD_EXIT_UNAVAILABLE) | \
	 CLI_X(WARD_EXIT_DENIED) | CLI_X(WARD_EXIT_NOTFOUND) | CLI_X(WARD_EXIT_INTERNAL))
#define BK_X_PROBLEM (BK_X_COMMON | CLI_X(WARD_EXIT_PROBLEM))
/* A passphrase longer than this is not typed by a person nor sane in a file. */
#define PASS_MAX 4096

/* The shared exit codes were named for the server; say what 3 and 4 mean here. */
#define BK_NOTE                                                                                  \
	"\nHere exit code 3 means the repository is locked by another process, and 4 that the\n" \
	"passphrase is wrong.\n"

#define REPO_OPTS                                                                         \
	"  --repo DIR            the repository (else $WARD_BACKUP_REPO)\n"               \
	"  --password-file FILE  read the passphrase from the first line of FILE (else\n" \
	"                        $WARD_BACKUP_PASSWORD, else a prompt on the terminal)\n"

static int rc_to_exit(int rc) {
	switch (rc) {
	case BACKUP_OK:
		return WARD_EXIT_OK;
	case BACKUP_ERR_PASSPHRASE:
		return WARD_EXIT_DENIED;
	case BACKUP_ERR_NOTFOUND:
		return WARD_EXIT_NOTFOUND;
	case BACKUP_ERR_LOCKED:
		return WARD_EXIT_UNAVAILABLE;
	case BACKUP_ERR_USAGE:
	case BACKUP_ERR_EXISTS:
		return WARD_EXIT_USAGE;
	case BACKUP_ERR_CORRUPT:
	case BACKUP_ERR_SOURCE:
		return WARD_EXIT_PROBLEM;
	default:
		return WARD_EXIT_INTERNAL;
	}
}

static int fail(const char *cmd, int rc, const struct ward_err *err) {
	fprintf(stderr, "%s: %s\n", cmd, err->msg[0] ? err->msg : backup_strerror(rc));
	return rc_to_exit(rc);
}

/* ---- repository and passphrase ---- */
static const char *repo_path(const char *flag) {
	const char *env = getenv("WARD_BACKUP_REPO");
	if (flag && flag[0])
		return flag;
	return env && env[0] ? env : NULL;
}

static int prompt(const char *what, char *out, size_t cap) {
	struct termios old, noecho;
	FILE *tty = fopen("/dev/tty", "r+");
	size_t n;
	bool restore = false;

	if (!tty)
		return -1;
	fprintf(tty, "%s: ", what);
	fflush(tty);
	if (tcgetattr(fileno(tty), &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &noecho) == 0;
	}
	if (!fgets(out, (int)cap, tty))
		out[0] = '\0';
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

/* Reads the passphrase: file, else env_name, else a prompt (twice when confirm). Returns 0,
 * or an exit code after printing why. out has PASS_MAX + 2 bytes. */
static int get_pass(const char *cmd, const char *file, const char *env_name, const char *what,
                    bool confirm, char *out) {
	const char *env = getenv(env_name);
	size_t n;

	out[0] = '\0';
	if (file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			fprintf(stderr, "%s: cannot read the password file %s: %s\n", cmd, file,
			        strerror(errno));
			return WARD_EXIT_USAGE;
		}
		if (!fgets(out, PASS_MAX + 2, f))
			out[0] = '\0';
		fclose(f);
	} else if (env && env[0]) {
		snprintf(out, PASS_MAX + 2, "%s", env);
	} else {
		char again[PASS_MAX + 2];
		if (!isatty(0) || prompt(what, out, PASS_MAX + 2) != 0) {
			fprintf(stderr, "%s: no passphrase: give --password-file FILE or set %s\n",
			        cmd, env_name);
			return WARD_EXIT_USAGE;
		}
		if (confirm) {
			prompt("again", again, sizeof(again));
			if (strcmp(again, out) != 0) {
				fprintf(stderr, "%s: the passphrases differ\n", cmd);
				return WARD_EXIT_USAGE;
			}
		}
	}
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	if (n == 0) {
		fprintf(stderr, "%s: the passphrase is empty\n", cmd);
		return WARD_EXIT_USAGE;
	}
	if (n > PASS_MAX) {
		fprintf(stderr, "%s: the passphrase is longer than %d bytes\n", cmd, PASS_MAX);
		return WARD_EXIT_USAGE;
	}
	return 0;
}

static void wipe(char *p, size_t n) {
	volatile char *v = p;
	while (n--)
		*v++ = 0;
}

/* Opens the repository named by the flags; returns 0 or an exit code (message printed). */
static int open_repo(const char *cmd, const char *repo_flag, const char *pass_file,
                     struct backup_repo **r) {
	char pass[PASS_MAX + 2];
	struct ward_err err;
	const char *path = repo_path(repo_flag);
	int rc;

	*r = NULL;
	if (!path)
		return cli_usage_error(cmd, "no repository: give --repo DIR or set "
		                            "WARD_BACKUP_REPO");
	rc = get_pass(cmd, pass_file, "WARD_BACKUP_PASSWORD", "repository passphrase", false, pass);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_open(path, pass, strlen(pass), r, &err);
	wipe(pass, sizeof(pass));
	if (rc)
		return fail(cmd, rc, &err);
	return 0;
}

/* ---- output helpers ---- */
static void fmt_bytes(uint64_t n, char out[32]) {
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%" PRIu64 " B", n);
	else
		snprintf(out, 32, "%.1f %s", v, units[u]);
}

static void fmt_ns(int64_t ns, char out[64]) {
	char rfc[32];
	ward_fmt_rfc3339(ns / 1000000, rfc);
	cli_fmt_time(rfc, out);
}

static json_t *strs_json(char **v, size_t n) {
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *snapshot_json(const struct backup_snapshot *s) {
	char when[32], tree[BACKUP_HEX_LEN], parent[BACKUP_HEX_LEN];
	json_t *o;
	ward_fmt_rfc3339(s->time_ns / 1000000, when);
	ward_hex(s->tree, BACKUP_ID_LEN, tree);
	o = json_pack("{s:s, s:s%, s:s, s:s, s:s, s:o, s:o, s:s, s:b, s:o}", "id", s->id,
	              "short_id", s->id, (size_t)8, "time", when, "host", s->host ? s->host : "",
	              "user", s->user ? s->user : "", "paths", strs_json(s->paths, s->npaths),
	              "tags", strs_json(s->tags, s->ntags), "tree", tree, "partial", s->partial,
	              "unreadable", strs_json(s->unreadable, s->nunreadable));
	json_object_set_new(o, "job", s->job ? json_string(s->job) : json_null());
	if (s->has_parent) {
		ward_hex(s->parent, BACKUP_ID_LEN, parent);
		json_object_set_new(o, "parent", json_string(parent));
	}
	json_object_set_new(
	        o, "stats",
	        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "files",
	                  (json_int_t)s->stats.files, "dirs", (json_int_t)s->stats.dirs,
	                  "files_new", (json_int_t)s->stats.files_new, "files_changed",
	                  (json_int_t)s->stats.files_changed, "files_unchanged",
	                  (json_int_t)s->stats.files_unchanged, "bytes_read",
	                  (json_int_t)s->stats.bytes_read, "bytes_total",
	                  (json_int_t)s->stats.bytes_total, "bytes_added",
	                  (json_int_t)s->stats.bytes_added, "bytes_stored",
	                  (json_int_t)s->stats.bytes_stored, "blobs_added",
	                  (json_int_t)s->stats.blobs_added, "errors", (json_int_t)s->stats.errors,
	                  "duration_ms", (json_int_t)s->stats.duration_ms));
	return o;
}

/* ---- progress bar ---- */
struct bar {
	bool tty;
	const char *what;
	bool shown;
};

static void fmt_eta(int64_t ms, char out[32]) {
	int64_t s = ms / 1000;
	if (ms < 0)
		snprintf(out, 32, "--:--");
	else if (s >= 3600)
		snprintf(out, 32, "%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60),
		         (int)(s % 60));
	else
		snprintf(out, 32, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

static void on_progress(const struct backup_progress *p, void *arg) {
	struct bar *b = arg;
	char done[32], total[32], rate[32], eta[32], line[40] = {0};
	double frac;
	int fill;

	if (!b->tty)
		return;
	fmt_bytes(p->bytes_done, done);
	fmt_bytes(p->bytes_total, total);
	fmt_bytes((uint64_t)p->rate_bps, rate);
	fmt_eta(p->eta_ms, eta);
	frac = p->bytes_total ? (double)p->bytes_done / (double)p->bytes_total : 0;
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		line[i] = i < fill ? '=' : i == fill ? '>' : ' ';
	fprintf(stderr,
	        "\r%s [%s] %3.0f%%  %" PRIu64 "/%" PRIu64 " files  %s/%s  %s/s  ETA %s\033[K",
	        b->what, line, frac * 100, p->files_done, p->files_total, done, total, rate, eta);
	b->shown = true;
	if (p->final) {
		fputc('\n', stderr);
		b->shown = false;
	}
}

static void on_warn(const char *path, const char *msg, void *arg) {
	struct bar *b = arg;
	if (b && b->shown) {
		fputs("\r\033[K", stderr);
	}
	fprintf(stderr, "warning: %s: %s\n", path, msg);
}

/* Collects every value of a repeatable option (--exclude a --exclude=b) from argv. */
static size_t collect_opt(int argc, char **argv, const char *name, const char **out, size_t cap) {
	size_t n = 0, nl = strlen(name);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, nl) != 0)
			continue;
		if (a[2 + nl] == '=' && n < cap)
			out[n++] = a + 3 + nl;
		else if (a[2 + nl] == '\0' && i + 1 < argc && n < cap)
			out[n++] = argv[++i];
	}
	return n;
}

#define MAX_GLOBS 64

/* ---- init ---- */
static const char init_usage[] =
        "Usage: ward backup init [--repo DIR] [--password-file FILE]\n"
        "\n"
        "Creates an encrypted backup repository in DIR (absent or empty). The master key is\n"
        "sealed under the passphrase with Argon2id: without a passphrase the data cannot be\n"
        "read, so keep it safe (add a second one with 'ward backup key add').\n"
        "\n"
        "Options:\n" REPO_OPTS
        "  --chunk-avg SIZE      average chunk size (default 1MiB; min is half, max 8x)\n"
        "  --cipher NAME         xaes-256-gcm (default) or xchacha20-poly1305\n"
        "  --id-hash NAME        chunk ids: hmac-sha256 (default) or blake2b-256-keyed\n"
        "  --json                print the repository id as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

static int bk_init(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *avg_s = NULL, *cipher = NULL, *id_hash = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"chunk-avg", 0, &avg_s, NULL},
	                               {"cipher", 0, &cipher, NULL},
	                               {"id-hash", 0, &id_hash, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	struct backup_init_opts io = {0};
	char pass[PASS_MAX + 2];
	struct ward_err err;
	struct backup_repo *r = NULL;
	const char *path;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	path = repo_path(repo);
	if (!path)
		return cli_usage_error(argv[0], "no repository: give --repo DIR or set "
		                                "WARD_BACKUP_REPO");
	ward_err_clear(&err);
	if (avg_s) {
		int64_t avg;
		if (ward_parse_size(avg_s, strlen(avg_s), &avg, &err) != 0 || avg < 1024 ||
		    avg > (16 << 20))
			return cli_usage_error(argv[0], "--chunk-avg must be a size from 1KiB to "
			                                "16MiB");
		io.chunk_avg = (size_t)avg;
		io.chunk_min = (size_t)avg / 2;
		io.chunk_max = (size_t)avg * 8;
	}
	io.cipher = cipher;
	io.id_hash = id_hash;
	if (backup_init_check(&io, &err) != 0)
		return cli_usage_error(argv[0], "%s", err.msg);
	rc = get_pass(argv[0], pf, "WARD_BACKUP_PASSWORD", "new repository passphrase", true, pass);
	if (rc)
		return rc;
	rc = backup_init(path, pass, strlen(pass), &io, &err);
	if (rc == 0)
		rc = backup_open(path, pass, strlen(pass), &r, &err);
	wipe(pass, sizeof(pass));
	if (rc)
		return fail(argv[0], rc, &err);
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "repository", path, "id",
		                      backup_repo_id(r), "key", backup_repo_key_id(r));
		cli_print_json(o);
		json_decref(o);
	} else {
		printf("created backup repository %.8s at %s\n", backup_repo_id(r), path);
		fprintf(stderr, "Keep the passphrase safe: without it the backups cannot be "
		                "read.\n");
	}
	backup_close(r);
	return WARD_EXIT_OK;
}

/* ---- run ---- */
static const char run_usage[] =
        "Usage: ward backup run [PATH...] [--stdin-from CMD] [--job NAME] [options]\n"
        "\n"
        "Backs up files and directories, or the output of a command (--stdin-from, e.g.\n"
        "\"pg_dump -Fc mydb\", streamed with no temporary file; '-' reads ward's stdin).\n"
        "Unchanged files (same size, mtime and inode as in the previous snapshot of the same\n"
        "job, host and paths) are not read again. Files that vanish or change during the run\n"
        "are warnings; unreadable files are listed and the snapshot is marked partial (exit\n"
        "code 1).\n"
        "\n"
        "Options:\n" REPO_OPTS
        "  --job NAME            name the job (groups snapshots for the parent and forget)\n"
        "  --tag TAG             add a tag (repeatable)\n"
        "  --exclude GLOB        skip matching entries (repeatable; a GLOB with '/' matches\n"
        "                        the whole path, else the name)\n"
        "  --include GLOB        keep only matching files (repeatable)\n"
        "  --one-file-system     do not cross into other file systems\n"
        "  --stdin-from CMD      back up CMD's stdout (run with /bin/sh -c); no snapshot is\n"
        "                        written when CMD exits non-zero\n"
        "  --stdin-name NAME     file name of the stream in the snapshot (default: the job,\n"
        "                        else \"stdin\")\n"
        "  --force               read every file even when unchanged\n"
        "  --host NAME           record this host name (default: this machine's)\n"
        "  --json                print the snapshot as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

struct child {
	pid_t pid;
	const char *cmd;
};

static int child_done(void *arg, struct ward_err *err) {
	struct child *c = arg;
	int status = 0;
	if (c->pid <= 0)
		return 0;
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	c->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		ward_err_set(err,
		             "\"%s\" exited with status %d: no snapshot was written (its "
		             "output is incomplete)",
		             c->cmd, WEXITSTATUS(status));
	else
		ward_err_set(err, "\"%s\" was killed by signal %d: no snapshot was written", c->cmd,
		             WTERMSIG(status));
	return -1;
}

struct run_ctx {
	struct bar bar;
	struct child child;
};

static void run_progress(const struct backup_progress *p, void *arg) {
	on_progress(p, &((struct run_ctx *)arg)->bar);
}
static void run_warn(const char *path, const char *msg, void *arg) {
	on_warn(path, msg, &((struct run_ctx *)arg)->bar);
}
static int run_commit(void *arg, struct ward_err *err) {
	return child_done(&((struct run_ctx *)arg)->child, err);
}

static int bk_run(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *job = NULL, *stdin_from = NULL, *stdin_name = NULL,
	           *host = NULL, *dummy = NULL;
	bool json = false, ofs = false, force = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"job", 0, &job, NULL},
	                               {"tag", 0, &dummy, NULL},
	                               {"exclude", 0, &dummy, NULL},
	                               {"include", 0, &dummy, NULL},
	                               {"one-file-system", 0, NULL, &ofs},
	                               {"stdin-from", 0, &stdin_from, NULL},
	                               {"stdin-name", 0, &stdin_name, NULL},
	                               {"force", 0, NULL, &force},
	                               {"host", 0, &host, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	const char *pos[256], *excl[MAX_GLOBS], *incl[MAX_GLOBS], *tags[MAX_GLOBS];
	struct backup_run_opts o = {0};
	struct run_ctx ctx = {{0}, {0, NULL}};
	struct backup_snapshot *s = NULL;
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc, exit_code;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 256, &npos, &rc))
		return rc;
	if (!stdin_from && npos == 0)
		return cli_usage_error(argv[0], "give the paths to back up, or --stdin-from CMD");
	if (stdin_from && npos > 0)
		return cli_usage_error(argv[0], "give paths or --stdin-from, not both");
	o.nexclude = collect_opt(argc, argv, "exclude", excl, MAX_GLOBS);
	o.ninclude = collect_opt(argc, argv, "include", incl, MAX_GLOBS);
	o.ntags = collect_opt(argc, argv, "tag", tags, MAX_GLOBS);
	o.exclude = excl;
	o.include = incl;
	o.tags = tags;
	o.job = job;
	o.host = host;
	o.one_file_system = ofs;
	o.force = force;
	ctx.bar.tty = isatty(2) && !json;
	ctx.bar.what = "backup";
	/* Without a terminal there is no bar, and no need for the pre-scan that sizes it. */
	o.progress = ctx.bar.tty ? run_progress : NULL;
	o.warn = run_warn;
	o.cb_arg = &ctx;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	if (stdin_from) {
		int fd = 0;
		const char *name = stdin_name ? stdin_name : job ? job : "stdin";
		if (strcmp(stdin_from, "-") != 0) {
			int p[2];
			if (pipe(p) != 0) {
				backup_close(r);
				fprintf(stderr, "%s: pipe: %s\n", argv[0], strerror(errno));
				return WARD_EXIT_INTERNAL;
			}
			ctx.child.cmd = stdin_from;
			ctx.child.pid = fork();
			if (ctx.child.pid == 0) {
				dup2(p[1], 1);
				close(p[0]);
				close(p[1]);
				execl("/bin/sh", "sh", "-c", stdin_from, (char *)NULL);
				_exit(127);
			}
			close(p[1]);
			fd = p[0];
			if (ctx.child.pid < 0) {
				close(fd);
				backup_close(r);
				fprintf(stderr, "%s: fork: %s\n", argv[0], strerror(errno));
				return WARD_EXIT_INTERNAL;
			}
			o.before_commit = run_commit;
		}
		rc = backup_run_stream(r, fd, name, &o, &s, &err);
		if (fd != 0)
			close(fd);
		if (ctx.child.pid > 0) {
			kill(ctx.child.pid, SIGTERM);
			child_done(&ctx.child, &err);
		}
	} else {
		rc = backup_run_paths(r, pos, (size_t)npos, &o, &s, &err);
	}
	if (ctx.bar.shown)
		fputc('\n', stderr);
	backup_close(r);
	if (rc)
		return fail(argv[0], rc, &err);
	exit_code = s->partial ? WARD_EXIT_PROBLEM : WARD_EXIT_OK;
	if (json) {
		json_t *j = snapshot_json(s);
		cli_print_json(j);
		json_decref(j);
	} else {
		char added[32], read[32], stored[32];
		fmt_bytes(s->stats.bytes_added, added);
		fmt_bytes(s->stats.bytes_read, read);
		fmt_bytes(s->stats.bytes_stored, stored);
		printf("snapshot %.8s saved: %" PRIu64 " files (%" PRIu64 " new, %" PRIu64
		       " changed, %" PRIu64 " unchanged), %" PRIu64 " dirs; read %s, added %s "
		       "(%s stored) in %.1fs\n",
		       s->id, s->stats.files, s->stats.files_new, s->stats.files_changed,
		       s->stats.files_unchanged, s->stats.dirs, read, added, stored,
		       (double)s->stats.duration_ms / 1000.0);
		if (s->partial) {
			fprintf(stderr, "the snapshot is PARTIAL: %zu entries could not be read:\n",
			        s->nunreadable);
			for (size_t i = 0; i < s->nunreadable; i++)
				fprintf(stderr, "  %s\n", s->unreadable[i]);
		}
	}
	backup_snapshot_free(s);
	return exit_code;
}

/* ---- snapshots ---- */
static const char snapshots_usage[] =
        "Usage: ward backup snapshots [--job NAME] [--json]\n"
        "\n"
        "Lists the snapshots of the repository, oldest first.\n"
        "\n"
        "Options:\n" REPO_OPTS "  --job NAME            only the snapshots of this job\n"
        "  --json                print them as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

static int bk_snapshots(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *job = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"job", 0, &job, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"ID",    "TIME", "HOST", "JOB",
	                                      "PATHS", "SIZE", "FLAGS"};
	struct backup_snapshot *v_ = NULL;
	struct backup_repo *r;
	struct ward_err err;
	size_t n = 0;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_snapshots(r, &v_, &n, &err);
	backup_close(r);
	if (rc)
		return fail(argv[0], rc, &err);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			if (!job || ward_streq(v_[i].job, job))
				json_array_append_new(a, snapshot_json(&v_[i]));
		cli_print_json(a);
		json_decref(a);
	} else {
		struct cli_table *t = cli_table_new(7, headers);
		size_t shown = 0;
		for (size_t i = 0; i < n; i++) {
			char when[64], size[32], id[9];
			struct buf paths = BUF_INIT;
			if (job && !ward_streq(v_[i].job, job))
				continue;
			snprintf(id, sizeof(id), "%.8s", v_[i].id);
			fmt_ns(v_[i].time_ns, when);
			fmt_bytes(v_[i].stats.bytes_total, size);
			for (size_t k = 0; k < v_[i].npaths; k++)
				buf_printf(&paths, "%s%s", k ? "," : "", v_[i].paths[k]);
			const char *row[] = {id,
			                     when,
			                     v_[i].host,
			                     v_[i].job ? v_[i].job : "-",
			                     buf_cstr(&paths),
			                     size,
			                     v_[i].partial ? "partial" : ""};
			cli_table_add(t, row);
			buf_free(&paths);
			shown++;
		}
		if (shown)
			cli_table_print(t, stdout);
		else
			fprintf(stderr, "no snapshots\n");
		cli_table_free(t);
	}
	backup_snapshots_free(v_, n);
	return WARD_EXIT_OK;
}

/* ---- ls ---- */
static const char ls_usage[] =
        "Usage: ward backup ls SNAPSHOT [PATH] [--json]\n"
        "\n"
        "Lists the entries of a snapshot (an id, a unique id prefix, or \"latest\") at and\n"
        "below PATH (\"/\" by default; paths start with the name of a backed-up directory).\n"
        "\n"
        "Options:\n" REPO_OPTS
        "  --job NAME            with \"latest\": the latest snapshot of this job\n"
        "  -l, --long            show type, mode, size and time\n"
        "  --json                print the entries as JSON lines\n"
        "  -h, --help            show this help\n" BK_NOTE;

struct ls_ctx {
	bool json, lng;
};

static int ls_print(const char *path, const struct backup_node *n, void *arg) {
	struct ls_ctx *c = arg;
	if (c->json) {
		char when[32];
		json_t *o;
		char *s;
		ward_fmt_rfc3339(n->mtime_ns / 1000000, when);
		o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:s}", "path", path, "type",
		              backup_node_type_name(n->type), "mode", (int)n->mode, "uid",
		              (json_int_t)n->uid, "gid", (json_int_t)n->gid, "size",
		              (json_int_t)n->size, "mtime", when);
		if (n->target)
			json_object_set_new(o, "target", json_string(n->target));
		s = json_dumps(o, JSON_COMPACT);
		puts(s);
		free(s);
		json_decref(o);
	} else if (c->lng) {
		char when[64];
		fmt_ns(n->mtime_ns, when);
		printf("%-7s %04o %5u %5u %12" PRIu64 " %s %s%s%s\n",
		       backup_node_type_name(n->type), n->mode, n->uid, n->gid, n->size, when, path,
		       n->target ? " -> " : "", n->target ? n->target : "");
	} else {
		printf("%s%s\n", path, n->type == BACKUP_NODE_DIR ? "/" : "");
	}
	return 0;
}

static int bk_ls(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *job = NULL;
	struct ls_ctx c = {false, false};
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},   {"password-file", 0, &pf, NULL},
	                               {"job", 0, &job, NULL},     {"long", 'l', NULL, &c.lng},
	                               {"json", 0, NULL, &c.json}, {NULL, 0, NULL, NULL}};
	const char *pos[2];
	struct backup_snapshot *s = NULL;
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 2, &npos, &rc))
		return rc;
	if (npos < 1)
		return cli_usage_error(argv[0], "give a snapshot (id, prefix or \"latest\")");
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_snapshot_find(r, pos[0], job, &s, &err);
	if (rc == 0)
		rc = backup_ls(r, s, npos > 1 ? pos[1] : "/", true, ls_print, &c, &err);
	backup_snapshot_free(s);
	backup_close(r);
	return rc ? fail(argv[0], rc, &err) : WARD_EXIT_OK;
}

/* ---- restore ---- */
static const char restore_usage[] =
        "Usage: ward backup restore SNAPSHOT --target DIR [--include PATH|GLOB]...\n"
        "\n"
        "Restores a snapshot (or the entries --include selects, with all below them) under\n"
        "DIR, with modes, times, symlinks and hard links (and owners when run as root).\n"
        "Files whose data is damaged are reported and skipped; the rest is restored (exit 1).\n"
        "\n"
        "Options:\n" REPO_OPTS "  --target DIR          where to restore (created)\n"
        "  --include PATH|GLOB   restore only this (repeatable): \"/etc/nginx\", \"*.conf\"\n"
        "  --job NAME            with \"latest\": the latest snapshot of this job\n"
        "  --verify              read each restored file back and check it\n"
        "  --sync                flush the restored files to disk before exiting\n"
        "  --json                print the result as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

static int bk_restore(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *target = NULL, *job = NULL, *dummy = NULL;
	bool json = false, verify = false, sync = false;
	const struct cli_opt opts[] = {
	        {"repo", 0, &repo, NULL},     {"password-file", 0, &pf, NULL},
	        {"sync", 0, NULL, &sync},     {"target", 't', &target, NULL},
	        {"include", 0, &dummy, NULL}, {"job", 0, &job, NULL},
	        {"verify", 0, NULL, &verify}, {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL}};
	const char *pos[1], *incl[MAX_GLOBS];
	struct backup_restore_opts o = {0};
	struct backup_restore_result res;
	struct backup_snapshot *s = NULL;
	struct backup_repo *r;
	struct bar bar = {0};
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos < 1 || !target)
		return cli_usage_error(argv[0], "give a snapshot and --target DIR");
	o.ninclude = collect_opt(argc, argv, "include", incl, MAX_GLOBS);
	o.include = incl;
	o.verify = verify;
	o.sync = sync;
	bar.tty = isatty(2) && !json;
	bar.what = "restore";
	o.progress = on_progress;
	o.warn = on_warn;
	o.cb_arg = &bar;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_snapshot_find(r, pos[0], job, &s, &err);
	if (rc == 0)
		rc = backup_restore(r, s, target, &o, &res, &err);
	backup_close(r);
	if (rc) {
		backup_snapshot_free(s);
		return fail(argv[0], rc, &err);
	}
	if (json) {
		json_t *j =
		        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "snapshot", s->id,
		                  "target", target, "files", (json_int_t)res.files, "dirs",
		                  (json_int_t)res.dirs, "others", (json_int_t)res.others, "bytes",
		                  (json_int_t)res.bytes, "errors", (json_int_t)res.errors);
		cli_print_json(j);
		json_decref(j);
	} else {
		char b[32];
		fmt_bytes(res.bytes, b);
		printf("restored snapshot %.8s to %s: %" PRIu64 " files, %" PRIu64 " dirs, %" PRIu64
		       " others, %s\n",
		       s->id, target, res.files, res.dirs, res.others, b);
		if (res.errors)
			fprintf(stderr,
			        "%" PRIu64 " entries could NOT be restored (see the warnings)\n",
			        res.errors);
	}
	backup_snapshot_free(s);
	return res.errors ? WARD_EXIT_PROBLEM : WARD_EXIT_OK;
}

/* ---- diff ---- */
static const char diff_usage[] =
        "Usage: ward backup diff SNAPSHOT-A SNAPSHOT-B [--json]\n"
        "\n"
        "Shows what changed from A to B: + added, - removed, M modified, T type changed.\n"
        "\n"
        "Options:\n" REPO_OPTS "  --json                print the changes as a JSON array\n"
        "  -h, --help            show this help\n" BK_NOTE;

static void diff_print(char c, const char *path, void *arg) {
	json_t *a = arg;
	if (a) {
		char s[2] = {c, 0};
		json_array_append_new(a, json_pack("{s:s, s:s}", "change", s, "path", path));
	} else {
		printf("%c %s\n", c, path);
	}
}

static int bk_diff(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	const char *pos[2];
	struct backup_snapshot *a = NULL, *b = NULL;
	struct backup_repo *r;
	struct ward_err err;
	json_t *arr = NULL;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 2, &npos, &rc))
		return rc;
	if (npos != 2)
		return cli_usage_error(argv[0], "give two snapshots");
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	if (json)
		arr = json_array();
	rc = backup_snapshot_find(r, pos[0], NULL, &a, &err);
	if (rc == 0)
		rc = backup_snapshot_find(r, pos[1], NULL, &b, &err);
	if (rc == 0)
		rc = backup_diff(r, a, b, diff_print, arr, &err);
	backup_close(r);
	backup_snapshot_free(a);
	backup_snapshot_free(b);
	if (rc) {
		json_decref(arr);
		return fail(argv[0], rc, &err);
	}
	if (arr) {
		cli_print_json(arr);
		json_decref(arr);
	}
	return WARD_EXIT_OK;
}

/* ---- forget ---- */
static const char forget_usage[] =
        "Usage: ward backup forget --keep-last N [--keep-hourly N] [--keep-daily N]\n"
        "                          [--keep-weekly N] [--keep-monthly N] [--keep-yearly N]\n"
        "\n"
        "Removes the snapshots the policy does not keep, in each group of snapshots of the\n"
        "same host, job and paths (restic's rules: keep-daily 7 keeps the newest snapshot of\n"
        "each of the 7 newest days that have one; days, weeks, ... are UTC). At least one\n"
        "--keep option is needed. The data stays until 'ward backup prune'.\n"
        "\n"
        "Options:\n" REPO_OPTS "  --keep-last N ...     the policy\n"
        "  --dry-run             only show what would be removed\n"
        "  --prune               run prune afterwards\n"
        "  --json                print each snapshot's fate as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

struct forget_ctx {
	json_t *arr;
	size_t removed, kept;
};

static void forget_print(const struct backup_snapshot *s, bool keep, void *arg) {
	struct forget_ctx *c = arg;
	char when[64];
	if (keep)
		c->kept++;
	else
		c->removed++;
	if (c->arr) {
		json_t *o = snapshot_json(s);
		json_object_set_new(o, "keep", json_boolean(keep));
		json_array_append_new(c->arr, o);
		return;
	}
	fmt_ns(s->time_ns, when);
	printf("%s %.8s  %s  %s %s\n", keep ? "keep  " : "remove", s->id, when, s->host,
	       s->job ? s->job : "");
}

static int parse_keep(const char *cmd, const char *name, const char *s, int *out) {
	char *end;
	long v;
	if (!s)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 1000000)
		return cli_usage_error(cmd, "--%s needs a count (got '%s')", name, s);
	*out = (int)v;
	return 0;
}

static int bk_prune_run(const char *cmd, struct backup_repo *r, bool json);

static int bk_forget(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *k[6] = {NULL};
	static const char *const names[6] = {"keep-last",   "keep-hourly",  "keep-daily",
	                                     "keep-weekly", "keep-monthly", "keep-yearly"};
	bool json = false, dry = false, prune = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},   {"password-file", 0, &pf, NULL},
	                               {names[0], 0, &k[0], NULL}, {names[1], 0, &k[1], NULL},
	                               {names[2], 0, &k[2], NULL}, {names[3], 0, &k[3], NULL},
	                               {names[4], 0, &k[4], NULL}, {names[5], 0, &k[5], NULL},
	                               {"dry-run", 0, NULL, &dry}, {"prune", 0, NULL, &prune},
	                               {"json", 0, NULL, &json},   {NULL, 0, NULL, NULL}};
	struct backup_policy p = {0};
	int *slots[6] = {&p.last, &p.hourly, &p.daily, &p.weekly, &p.monthly, &p.yearly};
	struct forget_ctx c = {NULL, 0, 0};
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	for (int i = 0; i < 6; i++)
		if ((rc = parse_keep(argv[0], names[i], k[i], slots[i])) != 0)
			return rc;
	if (backup_policy_empty(&p))
		return cli_usage_error(argv[0], "give at least one --keep-* option with a count "
		                                "above 0");
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	if (json)
		c.arr = json_array();
	ward_err_clear(&err);
	rc = backup_forget(r, &p, dry, forget_print, &c, &err);
	if (rc) {
		backup_close(r);
		json_decref(c.arr);
		return fail(argv[0], rc, &err);
	}
	if (c.arr) {
		cli_print_json(c.arr);
		json_decref(c.arr);
	} else {
		fprintf(stderr, "%s %zu snapshots, kept %zu\n", dry ? "would remove" : "removed",
		        c.removed, c.kept);
	}
	rc = WARD_EXIT_OK;
	if (prune && !dry)
		rc = bk_prune_run(argv[0], r, json);
	backup_close(r);
	return rc;
}

/* ---- prune ---- */
static const char prune_usage[] =
        "Usage: ward backup prune [--json]\n"
        "\n"
        "Deletes the data no snapshot uses: packs with only unused blobs are deleted, packs\n"
        "with some are repacked, the index is rewritten. New packs and the new index are\n"
        "written before anything is deleted, so an interruption loses nothing a snapshot\n"
        "needs. Holds an exclusive lock.\n"
        "\n"
        "Options:\n" REPO_OPTS "  --json                print the statistics as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

static void prune_warn(const char *path, const char *msg, void *arg) {
	fprintf(stderr, "%.16s: %s\n", path, msg);
}

static int bk_prune_run(const char *cmd, struct backup_repo *r, bool json) {
	struct backup_prune_stats st;
	struct ward_err err;
	int rc;

	ward_err_clear(&err);
	rc = backup_prune(r, prune_warn, NULL, &st, &err);
	if (rc)
		return fail(cmd, rc, &err);
	if (json) {
		json_t *o = json_pack(
		        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "packs_kept",
		        (json_int_t)st.packs_kept, "packs_repacked", (json_int_t)st.packs_repacked,
		        "packs_deleted", (json_int_t)st.packs_deleted, "packs_unindexed",
		        (json_int_t)st.packs_unindexed, "blobs_kept", (json_int_t)st.blobs_kept,
		        "blobs_removed", (json_int_t)st.blobs_removed, "bytes_freed",
		        (json_int_t)st.bytes_freed);
		json_object_set_new(o, "temp_files_removed",
		                    json_integer((json_int_t)st.temp_files_removed));
		cli_print_json(o);
		json_decref(o);
	} else {
		char freed[32];
		fmt_bytes(st.bytes_freed, freed);
		printf("prune: %" PRIu64 " packs kept, %" PRIu64 " repacked, %" PRIu64
		       " deleted, %" PRIu64 " unindexed removed; %" PRIu64 " blobs removed, %s "
		       "freed\n",
		       st.packs_kept, st.packs_repacked, st.packs_deleted, st.packs_unindexed,
		       st.blobs_removed, freed);
	}
	return WARD_EXIT_OK;
}

static int bk_prune(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	struct backup_repo *r;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	rc = bk_prune_run(argv[0], r, json);
	backup_close(r);
	return rc;
}

/* ---- check ---- */
static const char check_usage[] =
        "Usage: ward backup check [--read-data | --read-data-subset N%] [--json]\n"
        "\n"
        "Checks the repository: every index and snapshot decodes, every blob a snapshot uses\n"
        "is indexed and its pack exists. With --read-data every blob is decrypted and its\n"
        "hash verified (--read-data-subset 10% reads a random tenth of the packs). A damaged\n"
        "blob is named with each snapshot and file that uses it. Exit 1 when a problem is\n"
        "found.\n"
        "\n"
        "Options:\n" REPO_OPTS "  --read-data           read and verify all data\n"
        "  --read-data-subset N% read and verify N percent of the packs\n"
        "  --json                print the findings as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

struct check_ctx {
	json_t *arr;
};

static void check_print(const char *kind, const char *msg, void *arg) {
	struct check_ctx *c = arg;
	if (c->arr)
		json_array_append_new(c->arr,
		                      json_pack("{s:s, s:s}", "kind", kind, "message", msg));
	else
		fprintf(stderr, "%s: %s\n", kind, msg);
}

static int bk_check(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *subset = NULL;
	bool json = false, read_data = false;
	const struct cli_opt opts[] = {
	        {"repo", 0, &repo, NULL},           {"password-file", 0, &pf, NULL},
	        {"read-data", 0, NULL, &read_data}, {"read-data-subset", 0, &subset, NULL},
	        {"json", 0, NULL, &json},           {NULL, 0, NULL, NULL}};
	struct backup_check_opts o = {0};
	struct backup_check_result res;
	struct check_ctx c = {NULL};
	struct bar bar = {0};
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	o.read_data = read_data;
	if (subset) {
		char *end;
		double pct = strtod(subset, &end);
		if (end == subset || (*end && strcmp(end, "%") != 0) || !(pct > 0 && pct <= 100))
			return cli_usage_error(argv[0], "--read-data-subset needs a percentage "
			                                "above 0 and at most 100 (\"10%%\")");
		o.read_data = true;
		o.subset_pct = pct;
	}
	bar.tty = isatty(2) && !json;
	bar.what = "check";
	o.progress = on_progress;
	o.cb_arg = &bar;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	if (json)
		c.arr = json_array();
	ward_err_clear(&err);
	rc = backup_check(r, &o, check_print, &c, &res, &err);
	backup_close(r);
	if (rc) {
		json_decref(c.arr);
		return fail(argv[0], rc, &err);
	}
	if (json) {
		json_t *j = json_pack(
		        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "ok", res.errors == 0,
		        "errors", (json_int_t)res.errors, "warnings", (json_int_t)res.warnings,
		        "snapshots", (json_int_t)res.snapshots, "trees", (json_int_t)res.trees,
		        "packs", (json_int_t)res.packs, "packs_read", (json_int_t)res.packs_read,
		        "blobs_read", (json_int_t)res.blobs_read, "damaged_blobs",
		        (json_int_t)res.damaged_blobs, "findings", c.arr);
		cli_print_json(j);
		json_decref(j);
	} else {
		printf("check: %" PRIu64 " snapshots, %" PRIu64 " trees, %" PRIu64
		       " packs (%" PRIu64 " read, %" PRIu64 " blobs verified): %s (%" PRIu64
		       " errors, %" PRIu64 " warnings)\n",
		       res.snapshots, res.trees, res.packs, res.packs_read, res.blobs_read,
		       res.errors ? "PROBLEMS FOUND" : "no errors", res.errors, res.warnings);
	}
	return res.errors ? WARD_EXIT_PROBLEM : WARD_EXIT_OK;
}

/* ---- unlock ---- */
static const char unlock_usage[] =
        "Usage: ward backup unlock\n"
        "\n"
        "Removes stale locks: older than 30 minutes without refresh, or of a process that\n"
        "no longer runs on this host. Live locks are never removed.\n"
        "\n"
        "Options:\n" REPO_OPTS "  -h, --help            show this help\n" BK_NOTE;

static int bk_unlock(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL;
	const struct cli_opt opts[] = {
	        {"repo", 0, &repo, NULL}, {"password-file", 0, &pf, NULL}, {NULL, 0, NULL, NULL}};
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_unlock_stale(r, &err);
	backup_close(r);
	if (rc < 0)
		return fail(argv[0], rc, &err);
	printf("removed %d stale locks\n", rc);
	return WARD_EXIT_OK;
}

/* ---- keys ---- */
static const char key_add_usage[] =
        "Usage: ward backup key add [--new-password-file FILE]\n"
        "\n"
        "Adds a passphrase to the repository (the same master key sealed under it).\n"
        "\n"
        "Options:\n" REPO_OPTS
        "  --new-password-file FILE  the new passphrase (else $WARD_BACKUP_NEW_PASSWORD, else\n"
        "                        a prompt)\n"
        "  --json                print the new key's id as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

static int key_add(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL, *npf = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"new-password-file", 0, &npf, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	char pass[PASS_MAX + 2], id[BACKUP_HEX_LEN];
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	rc = get_pass(argv[0], npf, "WARD_BACKUP_NEW_PASSWORD", "new passphrase", true, pass);
	if (rc) {
		backup_close(r);
		return rc;
	}
	ward_err_clear(&err);
	rc = backup_key_add(r, pass, strlen(pass), id, &err);
	wipe(pass, sizeof(pass));
	backup_close(r);
	if (rc)
		return fail(argv[0], rc, &err);
	if (json) {
		json_t *o = json_pack("{s:s}", "id", id);
		cli_print_json(o);
		json_decref(o);
	} else {
		printf("added key %.8s\n", id);
	}
	return WARD_EXIT_OK;
}

static const char key_list_usage[] =
        "Usage: ward backup key list [--json]\n"
        "\n"
        "Lists the keys (passphrases) of the repository; '*' marks the one in use.\n"
        "\n"
        "Options:\n" REPO_OPTS "  --json                print them as JSON\n"
        "  -h, --help            show this help\n" BK_NOTE;

static int key_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL;
	bool json = false;
	const struct cli_opt opts[] = {{"repo", 0, &repo, NULL},
	                               {"password-file", 0, &pf, NULL},
	                               {"json", 0, NULL, &json},
	                               {NULL, 0, NULL, NULL}};
	static const char *const headers[] = {"", "ID", "USER", "HOST", "CREATED"};
	struct backup_key_info *keys = NULL;
	struct backup_repo *r;
	struct ward_err err;
	size_t n = 0;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_key_list(r, &keys, &n, &err);
	backup_close(r);
	if (rc)
		return fail(argv[0], rc, &err);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			char when[32];
			ward_fmt_rfc3339(keys[i].created_ms, when);
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b}", "id",
			                                   keys[i].id, "user", keys[i].user, "host",
			                                   keys[i].host, "created", when, "current",
			                                   keys[i].current));
		}
		cli_print_json(a);
		json_decref(a);
	} else {
		struct cli_table *t = cli_table_new(5, headers);
		for (size_t i = 0; i < n; i++) {
			char when[64], rfc[32], id[9];
			ward_fmt_rfc3339(keys[i].created_ms, rfc);
			cli_fmt_time(rfc, when);
			snprintf(id, sizeof(id), "%.8s", keys[i].id);
			const char *row[] = {keys[i].current ? "*" : "", id, keys[i].user,
			                     keys[i].host, when};
			cli_table_add(t, row);
		}
		cli_table_print(t, stdout);
		cli_table_free(t);
	}
	free(keys);
	return WARD_EXIT_OK;
}

static const char key_remove_usage[] =
        "Usage: ward backup key remove ID\n"
        "\n"
        "Removes a key (by id or unique prefix). The last key and the key of the passphrase\n"
        "in use are never removed.\n"
        "\n"
        "Options:\n" REPO_OPTS "  -h, --help            show this help\n" BK_NOTE;

static int key_remove(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *repo = NULL, *pf = NULL;
	const struct cli_opt opts[] = {
	        {"repo", 0, &repo, NULL}, {"password-file", 0, &pf, NULL}, {NULL, 0, NULL, NULL}};
	const char *pos[1];
	struct backup_repo *r;
	struct ward_err err;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "give the id of the key to remove");
	rc = open_repo(argv[0], repo, pf, &r);
	if (rc)
		return rc;
	ward_err_clear(&err);
	rc = backup_key_remove(r, pos[0], &err);
	backup_close(r);
	if (rc)
		return fail(argv[0], rc, &err);
	printf("removed key %s\n", pos[0]);
	return WARD_EXIT_OK;
}

static const struct cli_verb key_verbs[] = {
        {"add", "add a passphrase", key_add_usage, BK_X_COMMON, key_add},
        {"list", "list the passphrases' keys", key_list_usage, BK_X_COMMON, key_list},
        {"remove", "remove a key (never the last)", key_remove_usage, BK_X_COMMON, key_remove},
        {NULL, NULL, NULL, 0, NULL},
};

static const char key_usage[] = "Usage: ward backup key add|list|remove\n";

static int bk_key(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	return cli_dispatch(cli, "backup key", "The passphrases of a backup repository.", key_verbs,
	                    argc, argv);
}

static const struct cli_verb verbs[] = {
        {"init", "create a repository", init_usage, BK_X_COMMON, bk_init},
        {"run", "back up paths or a command's output", run_usage, BK_X_PROBLEM, bk_run},
        {"snapshots", "list snapshots", snapshots_usage, BK_X_COMMON, bk_snapshots},
        {"ls", "list the files of a snapshot", ls_usage, BK_X_COMMON, bk_ls},
        {"restore", "restore a snapshot", restore_usage, BK_X_PROBLEM, bk_restore},
        {"diff", "compare two snapshots", diff_usage, BK_X_COMMON, bk_diff},
        {"forget", "remove snapshots by policy", forget_usage, BK_X_COMMON, bk_forget},
        {"prune", "delete unused data", prune_usage, BK_X_COMMON, bk_prune},
        {"check", "verify the repository", check_usage, BK_X_PROBLEM, bk_check},
        {"unlock", "remove stale locks", unlock_usage, BK_X_COMMON, bk_unlock},
        {"key", "manage passphrases (add, list, remove)", key_usage, BK_X_COMMON, bk_key},
        {NULL, NULL, NULL, 0, NULL},
};

static int run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "backup",
	                    "Deduplicated, encrypted, verified backups in a repository (offline:\n"
	                    "the commands work on the repository directly).",
	                    verbs, argc, argv);
}

const struct cli_cmd cli_cmd_backup = {"backup", "deduplicated, encrypted backups", run};
