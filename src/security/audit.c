/* audit.c: the writer and reader of the hash-chained audit trail (see security.h).
 *
 * Records are JSON lines in <dir>/000001.log, 000002.log, ...; the exact line format and the
 * bytes each hash covers are documented at the top of audit_format.c. Record seq N carries
 * prev = hash of record N-1 (64 zeros for seq 1); the chain runs on across segments.
 * Invariants, all guarded by audit.mu: the segment file on disk ends with a complete line;
 * seq/hash are those of its last line; a record is counted (seq advances) only after its
 * whole line was written and fdatasync'd, and a failed write is cut off again. One process
 * writes a trail at a time (flock on the directory). The daemon calls open/append/close;
 * the HTTP API calls query, head and size.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "security/audit_internal.h"

struct audit {
	pthread_mutex_t mu; /* guards everything below */
	char *dir;
	int dir_fd;       /* held open for the flock that keeps a second writer out */
	int fd;           /* current segment, O_APPEND; -1 until the first append */
	uint32_t seg_no;  /* number of the current segment */
	int64_t seg_size; /* bytes in the current segment */
	int64_t total;    /* bytes in all segments */
	int64_t seg_max;
	bool dirty; /* a failed write left bytes past seg_size that must be cut first */
	uint64_t seq;
	char hash[AUDIT_HEX_LEN + 1];
};

static const char zero_hash[AUDIT_HEX_LEN + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";

static void seg_path(struct buf *b, const char *dir, uint32_t no) {
	char name[32];
	audit_segment_name(no, name);
	buf_reset(b);
	buf_printf(b, "%s/%s", dir, name);
}

/* Reads the last line of a file of size bytes that ends in '\n' (without the '\n') into a
 * new string; *start is its offset. Reads backwards in growing windows, so memory is about
 * the length of that line. 0 or -1 (errno set). */
static int read_last_line(int fd, int64_t size, char **line, size_t *len, int64_t *start) {
	int64_t win = 4096;
	char *p = NULL;
	for (;;) {
		int64_t off = size > win ? size - win : 0, n = size - off, i;
		p = ward_xrealloc(p, (size_t)n + 1);
		if (pread(fd, p, (size_t)n, off) != n) {
			if (errno == 0)
				errno = EIO;
			free(p);
			return -1;
		}
		for (i = n - 2; i >= 0 && p[i] != '\n'; i--)
			;
		if (i >= 0 || off == 0) {
			int64_t s = i + 1;
			*len = (size_t)(n - 1 - s);
			memmove(p, p + s, *len);
			p[*len] = '\0';
			*line = p;
			*start = off + s;
			return 0;
		}
		win *= 2;
	}
}

/* Cuts the segment back to new_size and makes that durable. */
static int cut_segment(int fd, int64_t new_size) {
	if (ftruncate(fd, new_size) < 0 || fdatasync(fd) < 0)
		return -1;
	return 0;
}

/* Brings the last segment to a state whose last line is a complete, parsable record (or
 * empty): a tail without '\n' and then one unparsable final line are crash leftovers of an
 * unacknowledged append and are cut off with a warning. *size is updated. */
static int trim_torn_tail(int fd, const char *path, int64_t *size, struct ward_err *err) {
	char *line = NULL, bytes[32], last;
	size_t len;
	int64_t start;
	struct audit_entry e;
	struct ward_err perr = {{0}};

	if (*size > 0) {
		if (pread(fd, &last, 1, *size - 1) != 1)
			goto io_fail;
		if (last != '\n') {
			int64_t cut = *size, off;
			char chunk[4096];
			/* find the last '\n'; everything after it is the torn record */
			while (cut > 0) {
				int64_t n =
				        cut > (int64_t)sizeof chunk ? (int64_t)sizeof chunk : cut;
				off = cut - n;
				if (pread(fd, chunk, (size_t)n, off) != n)
					goto io_fail;
				while (n > 0 && chunk[n - 1] != '\n')
					n--;
				cut = off + n;
				if (n > 0)
					break;
			}
			snprintf(bytes, sizeof bytes, "%lld", (long long)(*size - cut));
			ward_log(LOG_WARN,
			         "audit: trimmed a torn last record (a write cut short by a "
			         "crash, never acknowledged)",
			         "segment", path, "bytes", bytes, NULL);
			if (cut_segment(fd, cut) < 0)
				goto io_fail;
			*size = cut;
		}
	}
	if (*size == 0)
		return 0;
	if (read_last_line(fd, *size, &line, &len, &start) < 0)
		goto io_fail;
	if (audit_parse_line(line, len, &e, &perr) == 0) {
		audit_entry_free(&e);
		free(line);
		return 0;
	}
	snprintf(bytes, sizeof bytes, "%lld", (long long)(*size - start));
	ward_log(LOG_WARN,
	         "audit: trimmed an unparsable last record (a write cut short by a "
	         "crash, never acknowledged)",
	         "segment", path, "bytes", bytes, "error", perr.msg, NULL);
	free(line);
	if (cut_segment(fd, start) < 0)
		goto io_fail;
	*size = start;
	return 0;
io_fail:
	ward_err_set(err, "audit segment %s: %s", path, strerror(errno));
	return -1;
}

/* Restores seq and hash from the newest segment with a record. The last segment was already
 * trimmed; an unparsable last line anywhere now is corruption, not a crash leftover. */
static int restore_head(struct audit *a, const uint32_t *segs, size_t n, struct ward_err *err) {
	struct buf path = BUF_INIT;
	int rc = -1;
	for (size_t i = n; i-- > 0;) {
		struct stat st;
		char *line = NULL;
		size_t len;
		int64_t start;
		struct audit_entry e;
		struct ward_err perr = {{0}};
		int fd;

		seg_path(&path, a->dir, segs[i]);
		fd = open(path.data, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			ward_err_set(err, "audit segment %s: %s", path.data, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		if (st.st_size == 0) {
			close(fd);
			continue;
		}
		if (read_last_line(fd, st.st_size, &line, &len, &start) < 0) {
			ward_err_set(err, "audit segment %s: %s", path.data, strerror(errno));
			close(fd);
			goto out;
		}
		close(fd);
		if (audit_parse_line(line, len, &e, &perr) < 0) {
			ward_err_set(err,
			             "audit segment %s: its last record is corrupt (%s); run "
			             "`ward audit verify` and move the damaged segment aside",
			             path.data, perr.msg);
			free(line);
			goto out;
		}
		free(line);
		a->seq = e.seq;
		memcpy(a->hash, e.hash, sizeof a->hash);
		audit_entry_free(&e);
		break;
	}
	rc = 0;
out:
	buf_free(&path);
	return rc;
}

struct audit *audit_open(const char *dir, struct ward_err *err) {
	struct audit *a = ward_xcalloc(1, sizeof *a);
	uint32_t *segs = NULL;
	size_t n = 0;
	struct buf path = BUF_INIT;

	pthread_mutex_init(&a->mu, NULL);
	a->dir = ward_strdup(dir);
	a->dir_fd = -1;
	a->fd = -1;
	a->seg_max = AUDIT_SEGMENT_MAX_BYTES;
	memcpy(a->hash, zero_hash, sizeof a->hash);
	a->seg_no = 1;

	if (ward_crypto_init() < 0) {
		ward_err_set(err, "audit: the crypto library failed to initialise");
		goto fail;
	}
	if (ward_mkdir_p(dir, 0700, err) < 0)
		goto fail;
	a->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dir_fd < 0) {
		ward_err_set(err, "audit directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (flock(a->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		ward_err_set(err,
		             "audit directory %s is in use by another process (%s); stop the "
		             "other ward serve first",
		             dir, strerror(errno));
		goto fail;
	}
	if (audit_list_segments(dir, &segs, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		seg_path(&path, dir, segs[i]);
		if (stat(path.data, &st) < 0) {
			ward_err_set(err, "audit segment %s: %s", path.data, strerror(errno));
			goto fail;
		}
		a->total += st.st_size;
	}
	if (n > 0) {
		struct stat st;
		int64_t size;
		a->seg_no = segs[n - 1];
		seg_path(&path, dir, a->seg_no);
		a->fd = open(path.data, O_RDWR | O_APPEND | O_CLOEXEC);
		if (a->fd < 0 || fstat(a->fd, &st) < 0) {
			ward_err_set(err, "audit segment %s: %s", path.data, strerror(errno));
			goto fail;
		}
		size = st.st_size;
		if (trim_torn_tail(a->fd, path.data, &size, err) < 0)
			goto fail;
		a->total -= st.st_size - size;
		a->seg_size = size;
		if (restore_head(a, segs, n, err) < 0)
			goto fail;
	}
	free(segs);
	buf_free(&path);
	return a;
fail:
	free(segs);
	buf_free(&path);
	audit_close(a);
	return NULL;
}

void audit_close(struct audit *a) {
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->dir_fd >= 0)
		close(a->dir_fd); /* releases the flock */
	pthread_mutex_destroy(&a->mu);
	free(a->dir);
	free(a);
}

void audit_set_segment_max(struct audit *a, int64_t max_bytes) {
	pthread_mutex_lock(&a->mu);
	a->seg_max = max_bytes;
	pthread_mutex_unlock(&a->mu);
}

/* Makes a->fd the segment the next line of len bytes goes to: the current one, or a new one
 * when the line would take the current one past seg_max. Called with a->mu held. */
static int ensure_segment(struct audit *a, size_t len, struct ward_err *err) {
	struct buf path = BUF_INIT;
	int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
	if (a->fd >= 0 && !(a->seg_size > 0 && a->seg_size + (int64_t)len > a->seg_max))
		return 0;
	if (a->fd >= 0) {
		close(a->fd);
		a->fd = -1;
		a->seg_no++;
		a->seg_size = 0;
		flags |= O_EXCL; /* a newer segment than ours must not exist */
	}
	seg_path(&path, a->dir, a->seg_no);
	a->fd = open(path.data, flags, 0600);
	if (a->fd < 0) {
		ward_err_set(err, "audit segment %s: %s", path.data, strerror(errno));
		buf_free(&path);
		return -1;
	}
	buf_free(&path);
	if (ward_fsync_dir(a->dir) < 0) {
		ward_err_set(err, "audit directory %s: fsync failed: %s", a->dir, strerror(errno));
		return -1;
	}
	return 0;
}

int audit_append(struct audit *a, const struct audit_record *r, struct ward_err *err) {
	struct audit_entry e = {0};
	struct buf canon = BUF_INIT, line = BUF_INIT;
	uint8_t h[WARD_SHA256_LEN];
	char hash_hex[AUDIT_HEX_LEN + 1];
	size_t off = 0;
	int rc = -1;

	if (r->details && r->details[0]) {
		e.details = audit_canon_details(r->details, strlen(r->details), err);
		if (!e.details)
			return -1;
	}
	/* borrowed for the call; audit_canon treats NULL as "" */
	e.actor_id = (char *)r->actor_id;
	e.actor_name = (char *)r->actor_name;
	e.source = (char *)r->source;
	e.action = (char *)r->action;
	e.target = (char *)r->target;
	e.result = (char *)r->result;
	e.request_id = (char *)r->request_id;

	pthread_mutex_lock(&a->mu);
	e.seq = a->seq + 1;
	e.ts_ms = ward_now_ms();
	memcpy(e.prev, a->hash, sizeof e.prev);
	audit_canon(&canon, &e);
	ward_sha256(canon.data, canon.len, h);
	ward_hex(h, sizeof h, hash_hex);
	audit_line_from_canon(&line, &canon, hash_hex);
	buf_putc(&line, '\n');
	if (line.len > AUDIT_LINE_MAX_BYTES) {
		ward_err_set(err,
		             "audit record for %s is %zu bytes, more than the limit of %d; "
		             "shorten its details",
		             r->action ? r->action : "(no action)", line.len, AUDIT_LINE_MAX_BYTES);
		goto out;
	}
	if (a->dirty) {
		if (ftruncate(a->fd, a->seg_size) < 0)
			goto write_fail;
		a->dirty = false;
	}
	if (ensure_segment(a, line.len, err) < 0)
		goto out;
	while (off < line.len) {
		ssize_t w = write(a->fd, line.data + off, line.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0)
			errno = ENOSPC;
		if (w <= 0)
			goto write_fail;
		off += (size_t)w;
	}
	if (fdatasync(a->fd) < 0)
		goto write_fail;
	a->seq = e.seq;
	memcpy(a->hash, hash_hex, sizeof a->hash);
	a->seg_size += (int64_t)line.len;
	a->total += (int64_t)line.len;
	rc = 0;
	goto out;
write_fail : {
	char name[32];
	int saved = errno ? errno : EIO;
	audit_segment_name(a->seg_no, name);
	ward_err_set(err,
	             "audit segment %s/%s: write failed: %s; the record was not "
	             "stored (check free disk space)",
	             a->dir, name, strerror(saved));
	/* an unacknowledged partial line must not sit under the next record */
	if (ftruncate(a->fd, a->seg_size) < 0) {
		a->dirty = true;
		ward_log(LOG_ERROR,
		         "audit: could not cut a failed write off the segment; "
		         "retrying before the next record",
		         "segment", name, NULL);
	}
}
out:
	pthread_mutex_unlock(&a->mu);
	free(e.details);
	buf_free(&canon);
	buf_free(&line);
	return rc;
}

void audit_head(struct audit *a, uint64_t *seq, char hash_hex[2 * WARD_SHA256_LEN + 1]) {
	pthread_mutex_lock(&a->mu);
	if (seq)
		*seq = a->seq;
	if (hash_hex) /* may be NULL: only the seq wanted */
		snprintf(hash_hex, AUDIT_HEX_LEN + 1, "%s", a->hash);
	pthread_mutex_unlock(&a->mu);
}

int64_t audit_size_bytes(struct audit *a) {
	int64_t n;
	pthread_mutex_lock(&a->mu);
	n = a->total;
	pthread_mutex_unlock(&a->mu);
	return n;
}

/* Exact match, or a prefix match when the pattern ends in '.' ("token.") or '*' ("token.*"
 * and "tok*" both match by what precedes the '*'). */
static bool action_matches(const char *pat, const char *action) {
	size_t n = strlen(pat);
	if (n > 0 && pat[n - 1] == '*')
		return strncmp(action, pat, n - 1) == 0;
	if (n > 0 && pat[n - 1] == '.')
		return strncmp(action, pat, n) == 0;
	return strcmp(action, pat) == 0;
}

static bool entry_matches(const struct audit_query *q, const struct audit_entry *e) {
	if (q->since_ms && e->ts_ms < q->since_ms)
		return false;
	if (q->until_ms && e->ts_ms > q->until_ms)
		return false;
	if (q->actor && q->actor[0] && strcmp(q->actor, e->actor_id) != 0 &&
	    strcmp(q->actor, e->actor_name) != 0)
		return false;
	if (q->action && q->action[0] && !action_matches(q->action, e->action))
		return false;
	return true;
}

/* Scans one segment forwards, up to bound bytes, keeping only the newest `room` matches in a
 * ring, then moves them newest first to res. Memory stays at `room` entries plus one line. */
static int query_segment(const char *path, int64_t bound, const struct audit_query *q,
                         struct audit_entry *ring, size_t room, struct audit_entry *res,
                         size_t *nres, struct ward_err *err) {
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, cnt = 0, head = 0; /* ring[head] is the slot the next match goes to */
	int64_t off = 0;
	ssize_t len;

	if (!f) {
		ward_err_set(err, "audit segment %s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		struct audit_entry e;
		off += len;
		if (off > bound || line[len - 1] != '\n')
			break; /* written after our snapshot, or torn */
		if (audit_parse_line(line, (size_t)len - 1, &e, NULL) < 0)
			continue; /* audit_verify reports it; a query shows what it can read */
		if (q->before_seq && e.seq >= q->before_seq) {
			audit_entry_free(&e);
			break; /* seq only grows within a segment */
		}
		if (!entry_matches(q, &e)) {
			audit_entry_free(&e);
			continue;
		}
		if (cnt == room)
			audit_entry_free(&ring[head]);
		else
			cnt++;
		ring[head] = e;
		head = (head + 1) % room;
	}
	free(line);
	fclose(f);
	for (size_t i = 0; i < cnt; i++) {
		head = (head + room - 1) % room;
		res[(*nres)++] = ring[head];
		memset(&ring[head], 0, sizeof ring[head]);
	}
	return 0;
}

int audit_query(struct audit *a, const struct audit_query *q, struct audit_entry **out,
                struct ward_err *err) {
	size_t limit = q->limit ? q->limit : AUDIT_QUERY_DEFAULT_LIMIT, n = 0, nres = 0;
	uint32_t *segs = NULL, last_seg;
	int64_t last_size;
	struct audit_entry *res, *ring;
	struct buf path = BUF_INIT;
	int rc = -1;

	*out = NULL;
	if (limit > AUDIT_QUERY_MAX_LIMIT)
		limit = AUDIT_QUERY_MAX_LIMIT;
	/* a snapshot: lines past it may still be being written */
	pthread_mutex_lock(&a->mu);
	last_seg = a->seg_no;
	last_size = a->seg_size;
	pthread_mutex_unlock(&a->mu);

	if (audit_list_segments(a->dir, &segs, &n, err) < 0)
		return -1;
	res = ward_xcalloc(limit, sizeof *res);
	ring = ward_xcalloc(limit, sizeof *ring);
	for (size_t i = n; i-- > 0 && nres < limit;) {
		if (segs[i] > last_seg)
			continue;
		seg_path(&path, a->dir, segs[i]);
		if (query_segment(path.data, segs[i] == last_seg ? last_size : INT64_MAX, q, ring,
		                  limit - nres, res, &nres, err) < 0)
			goto fail;
	}
	*out = res;
	rc = (int)nres;
	goto out;
fail:
	for (size_t i = 0; i < nres; i++)
		audit_entry_free(&res[i]);
	free(res);
out:
	free(ring);
	free(segs);
	buf_free(&path);
	return rc;
}
