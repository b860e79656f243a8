/* backend_local.c: the local-directory backend. Layout: config, keys/<id>, data/<2 hex>/<id>,
 * index/<id>, snapshots/<id>, locks/<id>. Every write goes to a temporary file ".tmp-<rand>"
 * in the target directory, is fsync'd, renamed over the name and the directory fsync'd, so a
 * crash leaves the old file or the whole new one; listings skip temporary files (prune
 * removes them). Names are checked to be plain ([0-9a-z-], no '/'), so a hostile name cannot
 * escape the repository. Large page-aligned writes (pack files) bypass the page cache.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/backup_internal.h"

/* A write of at least DIRECT_MIN bytes from a DIRECT_ALIGN-aligned buffer (writer.c aligns
 * pack buffers) goes around the page cache with O_DIRECT, except its unaligned tail: the
 * file is fsync'd at once anyway, and copying about a gigabyte of packs into the cache was
 * a tenth of a first backup's CPU time. File systems without O_DIRECT (tmpfs) refuse it at
 * open or at the first write; the ordinary path takes over. */
#define DIRECT_ALIGN 4096u
#define DIRECT_MIN   (1u << 20)

static const char *const type_dir[] = {"", "keys", "data", "index", "snapshots", "locks"};

/* Pack files kept open for reading: a restore or a check reads thousands of blobs from
 * a few hundred packs, and opening the pack for each blob was three system calls more per
 * blob. Packs never change once written; a removed pack leaves the cache at once. An entry
 * in use (refs) is never closed: readers pread outside the lock. */
#define FD_CACHE 16

struct cached_fd {
	char name[BACKUP_HEX_LEN + 8];
	int fd; /* -1: empty */
	int refs;
	int64_t size;
	uint64_t used; /* tick of the last use, for least-recently-used eviction */
};

struct local {
	char *root;
	pthread_mutex_t mu; /* guards fds and tick */
	struct cached_fd fds[FD_CACHE];
	uint64_t tick;
};

static bool name_ok(const char *name) {
	size_t n = strlen(name);
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-'))
			return false;
	}
	return true;
}

/* Full path of a file into p; 0 or -1 for a bad name. */
static int file_path(struct local *l, enum backup_ftype t, const char *name, struct buf *p,
                     struct ward_err *err) {
	buf_reset(p);
	if (t == BACKUP_FT_CONFIG) {
		buf_printf(p, "%s/config", l->root);
		return 0;
	}
	if ((unsigned)t > BACKUP_FT_LOCK || !name_ok(name) ||
	    (t == BACKUP_FT_DATA && strlen(name) < 2)) {
		ward_err_set(err, "backup repository %s: bad file name \"%s\"", l->root, name);
		return -1;
	}
	if (t == BACKUP_FT_DATA)
		buf_printf(p, "%s/data/%.2s/%s", l->root, name, name);
	else
		buf_printf(p, "%s/%s/%s", l->root, type_dir[t], name);
	return 0;
}

/* Writes a temporary file and renames it into place; with sync, the file and then its
 * directory are fsync'd, so the object is durable under its name on return. */
static int put_file(struct backup_backend *be, enum backup_ftype t, const char *name,
                    const void *data, size_t n, bool sync, struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf path = BUF_INIT, tmp = BUF_INIT;
	char rnd[17], *slash;
	uint8_t r[8];
	const uint8_t *p = data;
	int fd = -1, rc = BACKUP_ERR_IO;
	bool direct;

	if (file_path(l, t, name, &path, err)) {
		rc = BACKUP_ERR_USAGE;
		goto out;
	}
	ward_random_bytes(r, sizeof(r));
	ward_hex(r, sizeof(r), rnd);
	slash = strrchr(path.data, '/');
	buf_append(&tmp, path.data, (size_t)(slash - path.data));
	buf_printf(&tmp, "/.tmp-%s", rnd);
	direct = n >= DIRECT_MIN && (uintptr_t)data % DIRECT_ALIGN == 0;
	if (direct) {
		fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0600);
		if (fd < 0 && errno == EINVAL)
			unlink(tmp.data); /* some file systems create the file, then refuse */
		direct = fd >= 0;
	}
	if (fd < 0)
		fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ward_err_set(err, "cannot create %s: %s (is the repository writable?)", tmp.data,
		             strerror(errno));
		goto out;
	}
	while (n > 0) {
		/* O_DIRECT takes whole aligned blocks; the tail, an unaligned position or a file
		 * system that refuses after all (EINVAL) go through the page cache */
		size_t want = !direct ? n
		              : (uintptr_t)p % DIRECT_ALIGN ? 0
		                                             : n & ~(size_t)(DIRECT_ALIGN - 1);
		ssize_t w = want ? write(fd, p, want) : 0;
		if (w < 0 && errno == EINTR)
			continue;
		if (direct && (want == 0 || (w < 0 && errno == EINVAL))) {
			int fl = fcntl(fd, F_GETFL);
			if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) != 0) {
				ward_err_set(err, "cannot write %s: %s", tmp.data, strerror(errno));
				goto out;
			}
			direct = false;
			continue;
		}
		if (w <= 0) {
			ward_err_set(err, "cannot write %s: %s", tmp.data,
			             w < 0 ? strerror(errno) : "short write");
			goto out;
		}
		p += w;
		n -= (size_t)w;
	}
	if (sync && fsync(fd) != 0) {
		ward_err_set(err, "cannot fsync %s: %s", tmp.data, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp.data, path.data) != 0) {
		ward_err_set(err, "cannot rename %s to %s: %s", tmp.data, path.data,
		             strerror(errno));
		goto out;
	}
	*slash = '\0';
	if (sync)
		ward_fsync_dir(path.data);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc && tmp.data)
		unlink(tmp.data);
	buf_free(&path);
	buf_free(&tmp);
	return rc;
}

static int l_write(struct backup_backend *be, enum backup_ftype t, const char *name,
                   const void *data, size_t n, struct ward_err *err) {
	return put_file(be, t, name, data, n, true, err);
}

static int l_write_nosync(struct backup_backend *be, enum backup_ftype t, const char *name,
                          const void *data, size_t n, struct ward_err *err) {
	return put_file(be, t, name, data, n, false, err);
}

/* Makes a file written by l_write_nosync durable: its data and inode, then the directory
 * entry the rename made. */
static int l_sync(struct backup_backend *be, enum backup_ftype t, const char *name,
                  struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf path = BUF_INIT;
	int fd = -1, rc = BACKUP_ERR_IO;

	if (file_path(l, t, name, &path, err)) {
		rc = BACKUP_ERR_USAGE;
		goto out;
	}
	fd = open(path.data, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		ward_err_set(err, "cannot fsync %s: %s", path.data, strerror(errno));
		goto out;
	}
	*strrchr(path.data, '/') = '\0';
	ward_fsync_dir(path.data);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_free(&path);
	return rc;
}

/* A pack's cached descriptor (opened and added if need be, evicting an idle one), with a
 * reference the caller gives back with pack_fd_put; NULL when the cache is full of busy
 * ones or the file cannot be opened (errno set). */
static struct cached_fd *pack_fd_get(struct local *l, const char *name, const char *path) {
	struct cached_fd *c, *victim = NULL;
	struct stat st;
	int fd;

	if (strlen(name) >= sizeof(l->fds[0].name)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	pthread_mutex_lock(&l->mu);
	for (int i = 0; i < FD_CACHE; i++) {
		c = &l->fds[i];
		if (c->fd >= 0 && strcmp(c->name, name) == 0) {
			c->refs++;
			c->used = ++l->tick;
			pthread_mutex_unlock(&l->mu);
			return c;
		}
		if (c->refs == 0 &&
		    (!victim || c->fd < 0 || (victim->fd >= 0 && c->used < victim->used)))
			victim = c;
	}
	if (!victim) {
		pthread_mutex_unlock(&l->mu);
		errno = EBUSY;
		return NULL;
	}
	if (victim->fd >= 0)
		close(victim->fd);
	victim->fd = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		pthread_mutex_unlock(&l->mu);
		errno = e;
		return NULL;
	}
	snprintf(victim->name, sizeof(victim->name), "%s", name);
	victim->fd = fd;
	victim->size = (int64_t)st.st_size;
	victim->refs = 1;
	victim->used = ++l->tick;
	pthread_mutex_unlock(&l->mu);
	return victim;
}

static void pack_fd_put(struct local *l, struct cached_fd *c) {
	pthread_mutex_lock(&l->mu);
	c->refs--;
	pthread_mutex_unlock(&l->mu);
}

/* Forgets a pack that is being removed (closes its descriptor when idle). */
static void pack_fd_forget(struct local *l, const char *name) {
	pthread_mutex_lock(&l->mu);
	for (int i = 0; i < FD_CACHE; i++) {
		struct cached_fd *c = &l->fds[i];
		if (c->fd < 0 || strcmp(c->name, name) != 0)
			continue;
		c->name[0] = '\0'; /* found by no name; a busy one is closed once evicted */
		if (c->refs == 0) {
			close(c->fd);
			c->fd = -1;
		}
	}
	pthread_mutex_unlock(&l->mu);
}

static int l_read(struct backup_backend *be, enum backup_ftype t, const char *name, uint64_t off,
                  size_t len, struct buf *out, struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf path = BUF_INIT;
	struct cached_fd *c = NULL;
	struct stat st;
	int fd = -1, rc = BACKUP_ERR_IO;
	size_t want, got = 0;

	buf_reset(out);
	if (file_path(l, t, name, &path, err)) {
		rc = BACKUP_ERR_USAGE;
		goto out;
	}
	if (t == BACKUP_FT_DATA && (c = pack_fd_get(l, name, path.data)) != NULL) {
		st.st_size = (off_t)c->size;
	} else if (t == BACKUP_FT_DATA && errno != EBUSY) {
		rc = errno == ENOENT ? BACKUP_ERR_NOTFOUND : BACKUP_ERR_IO;
		ward_err_set(err, "cannot read %s: %s", path.data, strerror(errno));
		goto out;
	} else {
		fd = open(path.data, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0) {
			rc = errno == ENOENT ? BACKUP_ERR_NOTFOUND : BACKUP_ERR_IO;
			ward_err_set(err, "cannot read %s: %s", path.data, strerror(errno));
			goto out;
		}
	}
	if (off > (uint64_t)st.st_size || (len && off + len > (uint64_t)st.st_size)) {
		ward_err_set(err, "%s: %zu bytes at %llu are past its end (%lld bytes): truncated?",
		             path.data, len, (unsigned long long)off, (long long)st.st_size);
		rc = BACKUP_ERR_CORRUPT;
		goto out;
	}
	want = len ? len : (size_t)((uint64_t)st.st_size - off);
	buf_reserve(out, want + 1);
	while (got < want) {
		ssize_t r = pread(c ? c->fd : fd, out->data + got, want - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ward_err_set(err, "cannot read %s: %s", path.data,
			             r < 0 ? strerror(errno) : "unexpected end of file");
			goto out;
		}
		got += (size_t)r;
	}
	out->len = got;
	out->data[got] = '\0';
	rc = 0;
out:
	if (c)
		pack_fd_put(l, c);
	if (fd >= 0)
		close(fd);
	buf_free(&path);
	return rc;
}

/* Starts reading the range into the page cache without waiting (the restore reads a few
 * dozen files ahead of its workers, so a cold repository is read with many requests in
 * flight instead of one blob at a time). */
static void l_prefetch(struct backup_backend *be, enum backup_ftype t, const char *name,
                       uint64_t off, size_t len) {
	struct local *l = be->ctx;
	struct buf path = BUF_INIT;
	struct cached_fd *c;

	/* Through the read cache: the read that follows finds the pack open. */
	if (t == BACKUP_FT_DATA && file_path(l, t, name, &path, NULL) == 0 &&
	    (c = pack_fd_get(l, name, path.data)) != NULL) {
		posix_fadvise(c->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
		pack_fd_put(l, c);
	}
	buf_free(&path);
}

static int list_dir(const char *dir, backup_list_fn fn, void *arg, struct ward_err *err,
                    bool missing_ok) {
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		if (errno == ENOENT && missing_ok)
			return 0;
		ward_err_set(err, "cannot list %s: %s", dir, strerror(errno));
		return BACKUP_ERR_IO;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (!name_ok(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		rc = fn(de->d_name, (int64_t)st.st_size, arg);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int l_list(struct backup_backend *be, enum backup_ftype t, backup_list_fn fn, void *arg,
                  struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf p = BUF_INIT;
	int rc = 0;

	if (t == BACKUP_FT_CONFIG || (unsigned)t > BACKUP_FT_LOCK)
		return BACKUP_ERR_USAGE;
	if (t != BACKUP_FT_DATA) {
		buf_printf(&p, "%s/%s", l->root, type_dir[t]);
		rc = list_dir(p.data, fn, arg, err, false);
	} else {
		for (int i = 0; i < 256 && rc == 0; i++) {
			buf_reset(&p);
			buf_printf(&p, "%s/data/%02x", l->root, i);
			rc = list_dir(p.data, fn, arg, err, true);
		}
	}
	buf_free(&p);
	return rc;
}

static int l_remove(struct backup_backend *be, enum backup_ftype t, const char *name,
                    struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf p = BUF_INIT;
	int rc = 0;

	if (file_path(l, t, name, &p, err)) {
		buf_free(&p);
		return BACKUP_ERR_USAGE;
	}
	if (t == BACKUP_FT_DATA)
		pack_fd_forget(l, name);
	if (unlink(p.data) != 0) {
		rc = errno == ENOENT ? BACKUP_ERR_NOTFOUND : BACKUP_ERR_IO;
		ward_err_set(err, "cannot remove %s: %s", p.data, strerror(errno));
	} else {
		char *slash = strrchr(p.data, '/');
		*slash = '\0';
		ward_fsync_dir(p.data);
	}
	buf_free(&p);
	return rc;
}

static int l_stat(struct backup_backend *be, enum backup_ftype t, const char *name, int64_t *size,
                  struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf p = BUF_INIT;
	struct stat st;
	int rc = 0;

	if (file_path(l, t, name, &p, err)) {
		buf_free(&p);
		return BACKUP_ERR_USAGE;
	}
	if (stat(p.data, &st) != 0) {
		rc = errno == ENOENT ? BACKUP_ERR_NOTFOUND : BACKUP_ERR_IO;
		ward_err_set(err, "cannot stat %s: %s", p.data, strerror(errno));
	} else {
		*size = (int64_t)st.st_size;
	}
	buf_free(&p);
	return rc;
}

static int l_create(struct backup_backend *be, struct ward_err *err) {
	struct local *l = be->ctx;
	struct buf p = BUF_INIT;
	DIR *d;
	int rc = BACKUP_ERR_IO;

	if (ward_mkdir_p(l->root, 0700, err))
		goto out;
	d = opendir(l->root);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				closedir(d);
				ward_err_set(err,
				             "%s is not empty: a repository is created in an empty "
				             "or new directory",
				             l->root);
				rc = BACKUP_ERR_EXISTS;
				goto out;
			}
		}
		closedir(d);
	}
	for (int t = BACKUP_FT_KEY; t <= BACKUP_FT_LOCK; t++) {
		buf_reset(&p);
		buf_printf(&p, "%s/%s", l->root, type_dir[t]);
		if (ward_mkdir_p(p.data, 0700, err))
			goto out;
	}
	for (int i = 0; i < 256; i++) {
		buf_reset(&p);
		buf_printf(&p, "%s/data/%02x", l->root, i);
		if (ward_mkdir_p(p.data, 0700, err))
			goto out;
	}
	ward_fsync_dir(l->root);
	rc = 0;
out:
	buf_free(&p);
	return rc;
}

static int sweep_dir(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, ".tmp-", 5) == 0 && unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	closedir(d);
	return n;
}

static int l_sweep(struct backup_backend *be) {
	struct local *l = be->ctx;
	struct buf p = BUF_INIT;
	int n = 0;

	buf_puts(&p, l->root);
	n += sweep_dir(p.data);
	for (int t = BACKUP_FT_KEY; t <= BACKUP_FT_LOCK; t++) {
		buf_reset(&p);
		buf_printf(&p, "%s/%s", l->root, type_dir[t]);
		n += sweep_dir(p.data);
	}
	for (int i = 0; i < 256; i++) {
		buf_reset(&p);
		buf_printf(&p, "%s/data/%02x", l->root, i);
		n += sweep_dir(p.data);
	}
	buf_free(&p);
	return n;
}

static void l_free(struct backup_backend *be) {
	struct local *l;
	if (!be)
		return;
	l = be->ctx;
	for (int i = 0; i < FD_CACHE; i++)
		if (l->fds[i].fd >= 0)
			close(l->fds[i].fd);
	pthread_mutex_destroy(&l->mu);
	free(l->root);
	free(l);
	free(be->location);
	free(be);
}

struct backup_backend *backup_backend_local(const char *path) {
	struct backup_backend *be = ward_xcalloc(1, sizeof(*be));
	struct local *l = ward_xcalloc(1, sizeof(*l));
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		n--;
	l->root = ward_strndup(path, n);
	pthread_mutex_init(&l->mu, NULL);
	for (int i = 0; i < FD_CACHE; i++)
		l->fds[i].fd = -1;
	be->ctx = l;
	be->write = l_write;
	be->write_nosync = l_write_nosync;
	be->sync = l_sync;
	be->read = l_read;
	be->list = l_list;
	be->remove = l_remove;
	be->stat = l_stat;
	be->create = l_create;
	be->sweep = l_sweep;
	be->prefetch = l_prefetch;
	be->free = l_free;
	be->location = ward_strdup(l->root);
	return be;
}
