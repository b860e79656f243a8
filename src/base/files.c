/* files.c: whole-file read, atomic write, mkdir -p and directory fsync.
 *
 * Atomic write: data goes to a unique temp file in the target's directory, is fsynced,
 * renamed over the target, and the directory is fsynced, so a crash leaves either the old
 * or the new content, never a mix. Errors name the path and errno text. Callers: conf,
 * store, security (keys, audit), the CLI.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint tmp_counter;

int ward_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
                   struct ward_err *err) {
	struct buf b = BUF_INIT;
	int fd;
	ssize_t r;

	*out = NULL;
	if (len)
		*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ward_err_set(err, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		buf_reserve(&b, 65536);
		r = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ward_err_set(err, "cannot read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		b.data[b.len] = '\0';
		if (b.len > max_bytes) {
			ward_err_set(err,
			             "%s is larger than the limit of %zu bytes; check that "
			             "the path is right",
			             path, max_bytes);
			goto fail;
		}
	}
	close(fd);
	if (len)
		*len = b.len;
	*out = buf_detach(&b);
	return 0;
fail:
	close(fd);
	buf_free(&b);
	return -1;
}

static int write_all(int fd, const void *data, size_t n) {
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The directory part of path ("." when there is none). Caller frees. */
static char *dir_of(const char *path) {
	const char *slash = strrchr(path, '/');

	if (!slash)
		return ward_strdup(".");
	if (slash == path)
		return ward_strdup("/");
	return ward_strndup(path, (size_t)(slash - path));
}

int ward_write_file_atomic(const char *path, const void *data, size_t n, int mode,
                           struct ward_err *err) {
	struct buf tmp = BUF_INIT;
	char *dir = NULL;
	int fd = -1;

	/* pid + per-process counter + clock make the name unique; O_EXCL makes sure. */
	buf_printf(&tmp, "%s.tmp-%ld-%u-%llx", path, (long)getpid(),
	           atomic_fetch_add(&tmp_counter, 1), (unsigned long long)ward_mono_ns());
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		ward_err_set(err, "cannot create %s: %s", tmp.data, strerror(errno));
		goto fail;
	}
	if (write_all(fd, data, n) < 0) {
		ward_err_set(err, "cannot write %s: %s", tmp.data, strerror(errno));
		goto fail_unlink;
	}
	if (fsync(fd) < 0) {
		ward_err_set(err, "cannot fsync %s: %s", tmp.data, strerror(errno));
		goto fail_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		ward_err_set(err, "cannot close %s: %s", tmp.data, strerror(errno));
		goto fail_unlink;
	}
	fd = -1;
	if (rename(tmp.data, path) < 0) {
		ward_err_set(err, "cannot rename %s to %s: %s", tmp.data, path, strerror(errno));
		goto fail_unlink;
	}
	dir = dir_of(path);
	if (ward_fsync_dir(dir) < 0) {
		ward_err_set(err, "wrote %s but cannot fsync its directory %s: %s", path, dir,
		             strerror(errno));
		goto fail;
	}
	free(dir);
	buf_free(&tmp);
	return 0;
fail_unlink:
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp.data);
fail:
	if (fd >= 0)
		close(fd);
	free(dir);
	buf_free(&tmp);
	return -1;
}

int ward_mkdir_p(const char *path, int mode, struct ward_err *err) {
	char *p = ward_strdup(path);
	size_t i, n = strlen(p);
	struct stat st;

	if (n == 0) {
		ward_err_set(err, "cannot create a directory with an empty path");
		goto fail;
	}
	for (i = 1; i <= n; i++) {
		if (i < n && p[i] != '/')
			continue;
		if (i < n)
			p[i] = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			ward_err_set(err, "cannot create directory %s: %s", p, strerror(errno));
			goto fail;
		}
		if (stat(p, &st) < 0) {
			ward_err_set(err, "cannot create directory %s: %s", p, strerror(errno));
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			ward_err_set(err, "cannot create directory %s: a file is in the way", p);
			goto fail;
		}
		if (i < n)
			p[i] = '/';
	}
	free(p);
	return 0;
fail:
	free(p);
	return -1;
}

int ward_fsync_dir(const char *path) {
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	if (rc < 0 && (errno == EINVAL || errno == EROFS))
		rc = 0; /* some filesystems cannot fsync directories; nothing more we can do */
	close(fd);
	return rc < 0 ? -1 : 0;
}

int ward_copy_file(const char *from, const char *to, int mode, struct ward_err *err)
{
	char b[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int rc = -1;
	if (in < 0 || out < 0) {
		ward_err_set(err, "%s: cannot copy to %s: %s", from, to, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t r = read(in, b, sizeof(b));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ward_err_set(err, "%s: read: %s", from, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		if (write(out, b, (size_t)r) != r) {
			ward_err_set(err, "%s: write: %s", to, strerror(errno));
			goto out;
		}
	}
	if (fsync(out) != 0) {
		ward_err_set(err, "%s: fsync: %s", to, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}
