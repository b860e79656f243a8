/* rotate.c: logrotate's model for the files ward manages. For each file matching a rule
 * whose trigger fired (size, or time since its last rotation, or force):
 *   path.N-1[.ext] -> path.N ... path.1 -> path.2, dropping those past keep;
 *   create:       rename path -> path.1, create an empty path with the old mode;
 *   copytruncate: copy path -> path.1, truncate path in place;
 *   compress path.1 into path.1.zst (zstd) or path.1.gz (gzip via zlib), remove path.1;
 * then each rule's postrotate command runs once. The time of the last rotation per file
 * is kept in a small JSON state file. dry_run only reports what would happen.
 * Called by the module's timer and by `ward logs rotate`.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>
#ifdef LOGS_HAVE_ZLIB
#include <zlib.h>
#endif

#include "logs/logs_internal.h"

static const char *ext_of(int compress) {
	return compress == 1 ? ".zst" : compress == 2 ? ".gz" : "";
}

static int compress_file(const char *path, int how, struct ward_err *err) {
	char *data = NULL;
	size_t len = 0;
	struct buf dst = BUF_INIT;
	int rc = -1;
	struct stat st;
	if (stat(path, &st) != 0 || ward_read_file(path, (size_t)1 << 34, &data, &len, err) != 0)
		goto out;
	buf_printf(&dst, "%s%s", path, ext_of(how));
	if (how == 1) {
		size_t bound = ZSTD_compressBound(len);
		char *c = ward_xmalloc(bound);
		size_t n = ZSTD_compress(c, bound, data, len, 3);
		if (ZSTD_isError(n)) {
			ward_err_set(err, "%s: zstd: %s", path, ZSTD_getErrorName(n));
			free(c);
			goto out;
		}
		rc = ward_write_file_atomic(buf_cstr(&dst), c, n, (int)(st.st_mode & 0777), err);
		free(c);
	} else {
#ifdef LOGS_HAVE_ZLIB
		gzFile gz = gzopen(buf_cstr(&dst), "wb");
		if (!gz || gzwrite(gz, data, (unsigned)len) != (int)len || gzclose(gz) != Z_OK) {
			ward_err_set(err, "%s: gzip failed", buf_cstr(&dst));
			goto out;
		}
		rc = 0;
#else
		ward_err_set(err, "%s: gzip is not available in this build; use zstd", path);
		goto out;
#endif
	}
	if (rc == 0 && unlink(path) != 0) {
		ward_err_set(err, "%s: cannot remove after compressing: %s", path, strerror(errno));
		rc = -1;
	}
out:
	free(data);
	buf_free(&dst);
	return rc;
}

static bool exists(const char *p) {
	struct stat st;
	return stat(p, &st) == 0;
}

/* The rotated name path.N with whichever extension it has on disk (or ext when none). */
static void numbered(struct buf *b, const char *path, int64_t n, const char *ext) {
	buf_reset(b);
	buf_printf(b, "%s.%lld%s", path, (long long)n, ext);
}

static int rotate_one(const struct logs_rotate_rule *r, const char *path, bool dry_run,
                      struct buf *report, struct ward_err *err) {
	struct buf a = BUF_INIT, b = BUF_INIT;
	const char *ext = ext_of(r->compress);
	static const char *const exts[] = {"", ".zst", ".gz"};
	int rc = -1;
	struct stat st;
	if (stat(path, &st) != 0)
		goto done_ok;
	/* Shift path.N -> path.N+1 from the oldest; drop past keep. */
	for (int64_t n = r->keep; n >= 1; n--) {
		for (int e = 0; e < 3; e++) {
			numbered(&a, path, n, exts[e]);
			if (!exists(buf_cstr(&a)))
				continue;
			if (n >= r->keep) {
				buf_printf(report, "%sremove %s\n", dry_run ? "would " : "",
				           buf_cstr(&a));
				if (!dry_run)
					(void)unlink(buf_cstr(&a));
				continue;
			}
			numbered(&b, path, n + 1, exts[e]);
			buf_printf(report, "%srename %s -> %s\n", dry_run ? "would " : "",
			           buf_cstr(&a), buf_cstr(&b));
			if (!dry_run && rename(buf_cstr(&a), buf_cstr(&b)) != 0) {
				ward_err_set(err, "%s: rename: %s", buf_cstr(&a), strerror(errno));
				goto out;
			}
		}
	}
	if (r->keep == 0) {
		buf_printf(report, "%struncate %s (keep 0)\n", dry_run ? "would " : "", path);
		if (!dry_run && truncate(path, 0) != 0) {
			ward_err_set(err, "%s: truncate: %s", path, strerror(errno));
			goto out;
		}
		goto done_ok;
	}
	numbered(&a, path, 1, "");
	if (r->mode == 0) {
		buf_printf(report, "%srename %s -> %s and create it anew\n",
		           dry_run ? "would " : "", path, buf_cstr(&a));
		if (!dry_run) {
			if (rename(path, buf_cstr(&a)) != 0) {
				ward_err_set(err, "%s: rename: %s", path, strerror(errno));
				goto out;
			}
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			              st.st_mode & 0777);
			if (fd < 0) {
				ward_err_set(err, "%s: create: %s", path, strerror(errno));
				goto out;
			}
			if (fchown(fd, st.st_uid, st.st_gid) != 0) {
				/* not root: the file keeps our owner, as logrotate without `create`
				 */
			}
			close(fd);
		}
	} else {
		buf_printf(report, "%scopy %s -> %s and truncate it\n", dry_run ? "would " : "",
		           path, buf_cstr(&a));
		if (!dry_run) {
			if (ward_copy_file(path, buf_cstr(&a), st.st_mode & 0777, err) != 0)
				goto out;
			if (truncate(path, 0) != 0) {
				ward_err_set(err, "%s: truncate: %s", path, strerror(errno));
				goto out;
			}
		}
	}
	if (r->compress) {
		buf_printf(report, "%scompress %s -> %s%s\n", dry_run ? "would " : "", buf_cstr(&a),
		           buf_cstr(&a), ext);
		if (!dry_run && compress_file(buf_cstr(&a), r->compress, err) != 0)
			goto out;
	}
done_ok:
	rc = 0;
out:
	buf_free(&a);
	buf_free(&b);
	return rc;
}

int logs_rotate_run(const struct logs_rotate_rule *rules, size_t n, const char *state_path,
                    bool dry_run, bool force, int64_t now_ms, struct buf *report,
                    struct ward_err *err) {
	json_error_t je;
	json_t *state = state_path ? json_load_file(state_path, 0, &je) : NULL;
	if (!json_is_object(state)) {
		json_decref(state);
		state = json_object();
	}
	int rc = 0;
	bool changed = false;
	for (size_t i = 0; i < n; i++) {
		const struct logs_rotate_rule *r = &rules[i];
		glob_t g;
		bool any = false;
		if (glob(r->path, 0, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc; k++) {
			const char *p = g.gl_pathv[k];
			size_t pl = strlen(p);
			/* Never rotate what a rule produced: name.N, name.N.zst, name.N.gz. */
			const char *dot = strrchr(p, '.');
			if (dot && (strcmp(dot, ".zst") == 0 || strcmp(dot, ".gz") == 0))
				continue;
			if (dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1))
				continue;
			struct stat st;
			if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			json_t *last = json_object_get(state, p);
			int64_t last_ms = json_is_integer(last) ? json_integer_value(last) : 0;
			if (!last_ms) {
				/* First sight: the clock for time triggers starts now. */
				json_object_set_new(state, p, json_integer(now_ms));
				changed = true;
				last_ms = now_ms;
			}
			bool due = force || (r->size > 0 && st.st_size > r->size) ||
			           (r->every_ms > 0 && now_ms - last_ms >= r->every_ms);
			if (!due || (st.st_size == 0 && !force))
				continue;
			struct ward_err e;
			ward_err_clear(&e);
			if (rotate_one(r, p, dry_run, report, &e) != 0) {
				ward_err_append(err, "%s", e.msg);
				rc = -1;
				continue;
			}
			any = true;
			if (!dry_run) {
				json_object_set_new(state, p, json_integer(now_ms));
				changed = true;
			}
			(void)pl;
		}
		globfree(&g);
		if (any && r->postrotate && r->postrotate[0]) {
			buf_printf(report, "%srun postrotate: %s\n", dry_run ? "would " : "",
			           r->postrotate);
			if (!dry_run) {
				int st = system(r->postrotate);
				if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					ward_err_append(err, "postrotate \"%s\" failed (status %d)",
					                r->postrotate, st);
					rc = -1;
				}
			}
		}
	}
	if (changed && !dry_run && state_path) {
		char *text = json_dumps(state, JSON_COMPACT);
		struct ward_err e;
		ward_err_clear(&e);
		if (ward_write_file_atomic(state_path, text, strlen(text), 0600, &e) != 0) {
			ward_err_append(err, "%s", e.msg);
			rc = -1;
		}
		free(text);
	}
	json_decref(state);
	return rc;
}
