/* wal.c: the write-ahead log: numbered segment files <db>/wal/00000001.. of at most
 * WAL_SEGMENT_MAX bytes holding records [u32 len][u32 crc32c(type+payload)][u8 type]
 * [payload] (little-endian; len counts the payload).
 *
 * Invariants: a record is written with one write(2); when a write or fsync fails the
 * segment is cut back to its previous length, so a failed commit leaves no partial record
 * behind later ones. Replay stops at the first bad record of the last segment and
 * truncates there (the torn tail is copied to quarantine); a bad record in an earlier
 * segment moves that segment to quarantine. Each open starts a fresh segment.
 * Callers: db.c under the db write lock.
 */
#include "tsdb/tsdb_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_HDR 9

static void seg_path(const struct tsdb_wal *w, uint32_t seg, char *out, size_t n) {
	snprintf(out, n, "%s/%08u", w->dir, seg);
}

int wal_open(struct tsdb_wal *w, const char *dbdir, struct ward_err *err) {
	struct buf b = BUF_INIT;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	buf_printf(&b, "%s/wal", dbdir);
	w->dir = buf_detach(&b);
	buf_printf(&b, "%s/quarantine", dbdir);
	w->qdir = buf_detach(&b);
	return ward_mkdir_p(w->dir, 0700, err);
}

void wal_close(struct tsdb_wal *w) {
	if (w->fd >= 0) {
		if (w->dirty)
			fdatasync(w->fd);
		close(w->fd);
	}
	free(w->dir);
	free(w->qdir);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

static int u32_cmp(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Segment numbers present, sorted. */
static uint32_t *list_segments(const struct tsdb_wal *w, size_t *n) {
	uint32_t *v = NULL;
	size_t cap = 0;
	DIR *d = opendir(w->dir);
	struct dirent *de;

	*n = 0;
	if (!d)
		return NULL;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len != 8 || strspn(de->d_name, "0123456789") != 8)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			v = ward_xrealloc(v, cap * sizeof(*v));
		}
		v[(*n)++] = (uint32_t)strtoul(de->d_name, NULL, 10);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), u32_cmp);
	return v;
}

void wal_frame(struct buf *out, uint8_t type, const void *payload, size_t n) {
	uint8_t hdr[WAL_HDR];
	uint32_t crc = ward_crc32c(0, &type, 1);
	crc = ward_crc32c(crc, payload, n);
	tsdb_put_u32(hdr, (uint32_t)n);
	tsdb_put_u32(hdr + 4, crc);
	hdr[8] = type;
	buf_append(out, hdr, WAL_HDR);
	buf_append(out, payload, n);
}

static void quarantine_bytes(const struct tsdb_wal *w, uint32_t seg, size_t off, const uint8_t *p,
                             size_t n) {
	char path[4096];
	if (ward_mkdir_p(w->qdir, 0700, NULL) < 0)
		return;
	snprintf(path, sizeof(path), "%s/wal-%08u-tail-at-%zu", w->qdir, seg, off);
	ward_write_file_atomic(path, p, n, 0600, NULL);
}

int wal_replay(struct tsdb_wal *w, int (*fn)(void *arg, uint8_t type, const uint8_t *p, size_t n),
               void *arg, uint64_t *quarantined, struct ward_err *err) {
	size_t nseg;
	uint32_t *segs = list_segments(w, &nseg);
	char path[4096];

	w->bytes = 0;
	for (size_t si = 0; si < nseg; si++) {
		bool last = si + 1 == nseg;
		seg_path(w, segs[si], path, sizeof(path));
		int fd = open(path, O_RDWR | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			ward_err_set(err, "tsdb: cannot open WAL segment %s: %s; check permissions",
			             path, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(segs);
			return -1;
		}
		size_t size = (size_t)st.st_size, off = 0;
		uint8_t *map = NULL;
		if (size > 0) {
			map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (map == MAP_FAILED) {
				ward_err_set(err, "tsdb: cannot map WAL segment %s: %s", path,
				             strerror(errno));
				close(fd);
				free(segs);
				return -1;
			}
		}
		bool bad = false;
		while (off < size) {
			if (size - off < WAL_HDR) {
				bad = true;
				break;
			}
			uint32_t len = tsdb_get_u32(map + off), crc = tsdb_get_u32(map + off + 4);
			uint8_t type = map[off + 8];
			if (len > size - off - WAL_HDR ||
			    ward_crc32c(0, map + off + 8, (size_t)len + 1) != crc ||
			    (type != WAL_REC_SERIES && type != WAL_REC_SAMPLES) ||
			    fn(arg, type, map + off + WAL_HDR, len) < 0) {
				bad = true;
				break;
			}
			off += WAL_HDR + (size_t)len;
		}
		if (bad && last) {
			ward_log(LOG_WARN, "tsdb: WAL tail damaged or torn; truncating", "path",
			         path, NULL);
			quarantine_bytes(w, segs[si], off, map + off, size - off);
			if (ftruncate(fd, (off_t)off) == 0)
				fsync(fd);
			size = off;
			(*quarantined)++;
		}
		if (map)
			munmap(map, (size_t)st.st_size);
		close(fd);
		if (bad && !last) {
			char qpath[4096];
			ward_log(LOG_WARN, "tsdb: damaged WAL segment moved to quarantine", "path",
			         path, NULL);
			ward_mkdir_p(w->qdir, 0700, NULL);
			snprintf(qpath, sizeof(qpath), "%s/wal-%08u", w->qdir, segs[si]);
			if (rename(path, qpath) < 0)
				unlink(path);
			(*quarantined)++;
			continue;
		}
		w->bytes += (int64_t)size;
	}
	w->seg = nseg ? segs[nseg - 1] : 0;
	free(segs);
	return wal_cut(w, err);
}

int wal_cut(struct tsdb_wal *w, struct ward_err *err) {
	char path[4096];

	if (w->fd >= 0) {
		if (w->dirty && fdatasync(w->fd) < 0) {
			ward_err_set(err, "tsdb: fsync of WAL segment %s/%08u failed: %s", w->dir,
			             w->seg, strerror(errno));
			return -1;
		}
		close(w->fd);
		w->fd = -1;
	}
	seg_path(w, w->seg + 1, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ward_err_set(err,
		             "tsdb: cannot create WAL segment %s: %s; check free space and "
		             "permissions",
		             path, strerror(errno));
		return -1;
	}
	ward_fsync_dir(w->dir);
	w->fd = fd;
	w->seg++;
	w->seg_size = 0;
	w->dirty = false;
	return 0;
}

int wal_sync(struct tsdb_wal *w, struct ward_err *err) {
	if (w->fd < 0 || !w->dirty)
		return 0;
	if (fdatasync(w->fd) < 0) {
		ward_err_set(err, "tsdb: fsync of WAL segment %s/%08u failed: %s", w->dir, w->seg,
		             strerror(errno));
		return -1;
	}
	w->dirty = false;
	return 0;
}

int wal_write(struct tsdb_wal *w, const void *data, size_t n, bool sync, struct ward_err *err) {
	const uint8_t *p = data;
	size_t done = 0;

	if (w->fd < 0 || (w->seg_size > 0 && w->seg_size + n > WAL_SEGMENT_MAX)) {
		if (wal_cut(w, err) < 0)
			return -1;
	}
	while (done < n) {
		ssize_t r = write(w->fd, p + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : ENOSPC;
			ward_err_set(err,
			             "tsdb: cannot write WAL segment %s/%08u: %s; nothing of "
			             "this batch was stored; free disk space and retry",
			             w->dir, w->seg, strerror(e));
			goto fail;
		}
		done += (size_t)r;
	}
	w->dirty = true;
	if (sync && fdatasync(w->fd) < 0) {
		ward_err_set(err,
		             "tsdb: fsync of WAL segment %s/%08u failed: %s; nothing of this "
		             "batch was stored",
		             w->dir, w->seg, strerror(errno));
		goto fail;
	}
	if (sync)
		w->dirty = false;
	w->seg_size += n;
	w->bytes += (int64_t)n;
	return 0;
fail:
	if (ftruncate(w->fd, (off_t)w->seg_size) < 0 ||
	    lseek(w->fd, (off_t)w->seg_size, SEEK_SET) < 0) {
		/* The partial record stays: start a new segment so no later record follows it;
		 * replay quarantines this one. */
		close(w->fd);
		w->fd = -1;
	}
	return -1;
}

void wal_remove_before(struct tsdb_wal *w, uint32_t seg) {
	size_t nseg;
	uint32_t *segs = list_segments(w, &nseg);
	char path[4096];
	struct stat st;

	w->bytes = 0;
	for (size_t i = 0; i < nseg; i++) {
		seg_path(w, segs[i], path, sizeof(path));
		if (segs[i] < seg)
			unlink(path);
		else if (stat(path, &st) == 0)
			w->bytes += (int64_t)st.st_size;
	}
	ward_fsync_dir(w->dir);
	free(segs);
}
