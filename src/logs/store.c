/* store.c: the log store under <data>/logs: "streams" (the label index, one crc'd record
 * per stream), "NNNNNNNN.seg" (append-only segments of zstd blocks) and "wal" (lines
 * accepted but not yet in a committed block). Invariants: a flush writes all buffered lines
 * as blocks plus one commit record carrying the WAL generation, in one write and one
 * fdatasync, and only then empties the WAL; at open, whatever follows a segment's last good
 * commit is trimmed and an uncommitted WAL is replayed, so a line is stored exactly once;
 * no block is read back without its payload crc matching. One mutex guards the store;
 * queries copy what they need (logs_store_snapshot) and read segments without it.
 * Callers: the module (sources, HTTP push, timers), the query engine, tests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "logs/logs_internal.h"

#define SEG_MAGIC_BLOCK  0x42474c57u /* "WLGB" */
#define SEG_MAGIC_COMMIT 0x43474c57u /* "WLGC" */
#define WAL_MAGIC        0x57474c57u /* "WLGW" */
#define HDR_LEN          48
#define WAL_HDR_LEN      16
/* A block's raw size is bounded by block_bytes plus one line; refuse absurd headers. */
#define MAX_BLOCK_RAW    ((uint32_t)256 << 20)
#define ZSTD_LEVEL       3 /* level 3: ~5x on logs at hundreds of MB/s; higher costs ingest rate */
#define POSTINGS_BUCKETS 4096

struct head {
	struct buf raw;
	uint32_t count;
	int64_t min_ts, max_ts, prev;
	int64_t since_ms; /* monotonic time of the first buffered line */
};

struct stream {
	struct labels labels;
	uint64_t hash;
	struct logs_blockref *blocks;
	size_t nblocks, cap;
	struct head head;
};

struct seg {
	uint32_t no;
	uint64_t size;
	int64_t min_ts, max_ts;
	int64_t day;
};

struct posting {
	struct posting *next;
	char *key; /* name '\0' value */
	size_t klen;
	uint32_t *ids;
	size_t n, cap;
};

struct logs_store {
	pthread_mutex_t mu;  /* guards everything below */
	pthread_cond_t cond; /* signalled on append */
	struct logs_store_opts o;
	char *dir;
	struct stream **streams;
	size_t nstreams, cap;
	uint32_t *hidx; /* open addressing: stream index + 1, 0 empty */
	size_t hcap;
	struct posting *postings[POSTINGS_BUCKETS];
	struct seg *segs;
	size_t nsegs;
	int seg_fd;
	int wal_fd;
	uint64_t wal_size;
	uint64_t gen;
	int streams_fd;
	size_t head_bytes;
	ZSTD_CCtx *cctx;
	struct buf wbuf, tmp, line, chunk;
	struct logs_store_stats st;
	uint64_t appended;
};

/* ---- raw entry encoding ---- */

void logs_raw_put(struct buf *raw, int64_t *prev, int64_t ts, const char *line, size_t len) {
	int64_t d = (int64_t)((uint64_t)ts - (uint64_t)*prev);
	logs_buf_uvarint(raw, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
	logs_buf_uvarint(raw, len);
	buf_append(raw, line, len);
	*prev = ts;
}

int logs_raw_next(const uint8_t **p, const uint8_t *end, int64_t *prev, int64_t *ts,
                  const char **line, size_t *len) {
	uint64_t z, l;
	if (*p >= end)
		return 0;
	if (logs_get_uvarint(p, end, &z) < 0 || logs_get_uvarint(p, end, &l) < 0)
		return -1;
	if (l > (uint64_t)(end - *p))
		return -1;
	int64_t d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
	*ts = (int64_t)((uint64_t)*prev + (uint64_t)d);
	*prev = *ts;
	*line = (const char *)*p;
	*len = (size_t)l;
	*p += l;
	return 1;
}

/* ---- small file helpers ---- */

static void path_of(struct buf *b, const char *dir, const char *name) {
	buf_reset(b);
	buf_printf(b, "%s/%s", dir, name);
}

static void seg_name(struct buf *b, const char *dir, uint32_t no) {
	buf_reset(b);
	buf_printf(b, "%s/%08u.seg", dir, no);
}

static int write_all(int fd, const void *p, size_t n) {
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off) {
	char *c = p;
	while (n > 0) {
		ssize_t r = pread(fd, c, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return -1;
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

void logs_store_opts_default(struct logs_store_opts *o) {
	memset(o, 0, sizeof(*o));
	o->retention_ms = 30LL * 86400 * 1000;
	o->block_bytes = 256 * 1024;
	o->block_age_ms = 5000;
	o->max_head_bytes = 16u << 20;
	o->segment_bytes = 128LL << 20;
	o->max_line_bytes = 256 * 1024;
	o->wal_fsync = true;
}

/* ---- streams and the label index ---- */

static struct posting *posting_get(struct logs_store *s, const char *name, const char *value,
                                   bool create) {
	struct buf k = BUF_INIT;
	buf_puts(&k, name);
	buf_putc(&k, '\0');
	buf_puts(&k, value);
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < k.len; i++)
		h = (h ^ (uint8_t)k.data[i]) * 1099511628211ULL;
	struct posting **slot = &s->postings[h % POSTINGS_BUCKETS], *p;
	for (p = *slot; p; p = p->next)
		if (p->klen == k.len && memcmp(p->key, k.data, k.len) == 0)
			break;
	if (!p && create) {
		p = ward_xcalloc(1, sizeof(*p));
		p->klen = k.len;
		p->key = buf_detach(&k);
		p->next = *slot;
		*slot = p;
	}
	buf_free(&k);
	return p;
}

static void hidx_insert(struct logs_store *s, uint32_t idx) {
	if ((s->nstreams + 1) * 2 > s->hcap) {
		size_t ncap = s->hcap ? s->hcap * 2 : 1024;
		uint32_t *nh = ward_xcalloc(ncap, sizeof(uint32_t));
		for (size_t i = 0; i < s->hcap; i++) {
			if (!s->hidx[i])
				continue;
			size_t j = s->streams[s->hidx[i] - 1]->hash & (ncap - 1);
			while (nh[j])
				j = (j + 1) & (ncap - 1);
			nh[j] = s->hidx[i];
		}
		free(s->hidx);
		s->hidx = nh;
		s->hcap = ncap;
	}
	size_t j = s->streams[idx]->hash & (s->hcap - 1);
	while (s->hidx[j])
		j = (j + 1) & (s->hcap - 1);
	s->hidx[j] = idx + 1;
}

static int stream_find(struct logs_store *s, const struct labels *ls, uint64_t h) {
	if (!s->hcap)
		return -1;
	size_t j = h & (s->hcap - 1);
	while (s->hidx[j]) {
		struct stream *st = s->streams[s->hidx[j] - 1];
		if (st->hash == h && labels_equal(&st->labels, ls))
			return (int)(s->hidx[j] - 1);
		j = (j + 1) & (s->hcap - 1);
	}
	return -1;
}

/* Adds a stream in memory (the caller has made it durable, or is loading it). */
static uint32_t stream_add(struct logs_store *s, const struct labels *ls) {
	struct stream *st = ward_xcalloc(1, sizeof(*st));
	labels_copy(&st->labels, ls);
	st->hash = labels_hash(ls);
	if (s->nstreams == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->streams = ward_xrealloc(s->streams, s->cap * sizeof(*s->streams));
	}
	uint32_t idx = (uint32_t)s->nstreams++;
	s->streams[idx] = st;
	hidx_insert(s, idx);
	for (size_t i = 0; i < ls->n; i++) {
		struct posting *p = posting_get(s, ls->v[i].name, ls->v[i].value, true);
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 4;
			p->ids = ward_xrealloc(p->ids, p->cap * sizeof(uint32_t));
		}
		p->ids[p->n++] = idx;
	}
	s->st.streams = s->nstreams;
	return idx;
}

/* Record: crc32c(len||payload) u32, len u32, payload = id u32, n u32, (nlen u32, name,
 * vlen u32, value)*. */
static void stream_record(struct buf *out, uint32_t id, const struct labels *ls) {
	struct buf p = BUF_INIT;
	uint8_t w[4];
	logs_put_u32(w, id);
	buf_append(&p, w, 4);
	logs_put_u32(w, (uint32_t)ls->n);
	buf_append(&p, w, 4);
	for (size_t i = 0; i < ls->n; i++) {
		size_t nl = strlen(ls->v[i].name), vl = strlen(ls->v[i].value);
		logs_put_u32(w, (uint32_t)nl);
		buf_append(&p, w, 4);
		buf_append(&p, ls->v[i].name, nl);
		logs_put_u32(w, (uint32_t)vl);
		buf_append(&p, w, 4);
		buf_append(&p, ls->v[i].value, vl);
	}
	uint8_t h[8];
	logs_put_u32(h + 4, (uint32_t)p.len);
	uint32_t crc = ward_crc32c(ward_crc32c(0, h + 4, 4), p.data, p.len);
	logs_put_u32(h, crc);
	buf_append(out, h, 8);
	buf_append(out, p.data, p.len);
	buf_free(&p);
}

static int streams_load(struct logs_store *s, struct ward_err *err) {
	struct buf path = BUF_INIT;
	char *data = NULL;
	size_t len = 0, off = 0;
	int rc = -1;

	path_of(&path, s->dir, "streams");
	s->streams_fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->streams_fd < 0) {
		ward_err_set(err,
		             "%s: cannot open the log stream index: %s; check the data "
		             "directory's permissions",
		             buf_cstr(&path), strerror(errno));
		goto out;
	}
	if (ward_read_file(buf_cstr(&path), (size_t)1 << 31, &data, &len, err) != 0)
		goto out;
	while (off + 8 <= len) {
		const uint8_t *p = (const uint8_t *)data + off;
		uint32_t crc = logs_get_u32(p), plen = logs_get_u32(p + 4);
		if (plen < 8 || plen > len - off - 8)
			break;
		if (ward_crc32c(ward_crc32c(0, p + 4, 4), p + 8, plen) != crc)
			break;
		const uint8_t *q = p + 8, *end = q + plen;
		uint32_t id = logs_get_u32(q), n = logs_get_u32(q + 4);
		q += 8;
		struct labels ls;
		labels_init(&ls);
		bool ok = id == s->nstreams;
		for (uint32_t i = 0; ok && i < n; i++) {
			if (end - q < 4) {
				ok = false;
				break;
			}
			uint32_t nl = logs_get_u32(q);
			q += 4;
			if ((size_t)(end - q) < (size_t)nl + 4) {
				ok = false;
				break;
			}
			char *name = ward_strndup((const char *)q, nl);
			q += nl;
			uint32_t vl = logs_get_u32(q);
			q += 4;
			if ((size_t)(end - q) < vl) {
				free(name);
				ok = false;
				break;
			}
			char *val = ward_strndup((const char *)q, vl);
			q += vl;
			labels_set(&ls, name, val);
			free(name);
			free(val);
		}
		if (!ok) {
			labels_free(&ls);
			break;
		}
		stream_add(s, &ls);
		labels_free(&ls);
		off += 8 + plen;
	}
	if (off < len) {
		ward_log(LOG_WARN, "logs: trimmed a torn tail of the stream index", "path",
		         buf_cstr(&path), NULL);
		if (ftruncate(s->streams_fd, (off_t)off) != 0) {
			ward_err_set(err, "%s: cannot trim a torn tail: %s", buf_cstr(&path),
			             strerror(errno));
			goto out;
		}
	}
	if (lseek(s->streams_fd, (off_t)off, SEEK_SET) < 0)
		goto out;
	rc = 0;
out:
	free(data);
	buf_free(&path);
	return rc;
}

/* Under s->mu. Finds or durably creates the stream; -1 with err on I/O failure. */
static int stream_get(struct logs_store *s, const struct labels *ls, struct ward_err *err) {
	uint64_t h = labels_hash(ls);
	int idx = stream_find(s, ls, h);
	if (idx >= 0)
		return idx;
	struct buf rec = BUF_INIT;
	stream_record(&rec, (uint32_t)s->nstreams, ls);
	off_t at = lseek(s->streams_fd, 0, SEEK_END);
	if (write_all(s->streams_fd, rec.data, rec.len) != 0 || fdatasync(s->streams_fd) != 0) {
		ward_err_set(err, "%s/streams: cannot add a stream: %s; free disk space", s->dir,
		             strerror(errno));
		if (at >= 0 && ftruncate(s->streams_fd, at) == 0)
			(void)lseek(s->streams_fd, at, SEEK_SET);
		buf_free(&rec);
		return -1;
	}
	buf_free(&rec);
	return (int)stream_add(s, ls);
}

/* ---- segments ---- */

static void block_header(uint8_t *h, uint32_t magic, uint32_t stream, uint32_t count,
                         int64_t min_ts, int64_t max_ts, uint32_t raw_len, uint32_t comp_len,
                         uint32_t pcrc) {
	memset(h, 0, HDR_LEN);
	logs_put_u32(h, magic);
	logs_put_u32(h + 8, stream);
	logs_put_u32(h + 12, count);
	logs_put_i64(h + 16, min_ts);
	logs_put_i64(h + 24, max_ts);
	logs_put_u32(h + 32, raw_len);
	logs_put_u32(h + 36, comp_len);
	logs_put_u32(h + 40, pcrc);
	logs_put_u32(h + 4, ward_crc32c(0, h + 8, HDR_LEN - 8));
}

static void stream_add_block(struct stream *st, const struct logs_blockref *b) {
	if (st->nblocks == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 8;
		st->blocks = ward_xrealloc(st->blocks, st->cap * sizeof(*st->blocks));
	}
	st->blocks[st->nblocks++] = *b;
}

static int64_t day_of_ms(int64_t ms) {
	return ms / 86400000;
}

/* Scans one segment: registers committed blocks, trims what follows the last commit.
 * verify_payload checks every block's payload crc (done for the newest segment, where a
 * torn write can be). */
static int seg_scan(struct logs_store *s, struct seg *sg, bool verify_payload, uint64_t *max_gen,
                    struct ward_err *err) {
	struct buf path = BUF_INIT, payload = BUF_INIT;
	struct logs_blockref *pend = NULL;
	size_t npend = 0, cpend = 0;
	int rc = -1;
	uint64_t off = 0, good = 0;
	struct stat stt;

	seg_name(&path, s->dir, sg->no);
	int fd = open(buf_cstr(&path), O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &stt) != 0) {
		ward_err_set(err, "%s: cannot open a log segment: %s", buf_cstr(&path),
		             strerror(errno));
		goto out;
	}
	uint64_t size = (uint64_t)stt.st_size;
	sg->min_ts = INT64_MAX;
	sg->max_ts = INT64_MIN;
	sg->day = day_of_ms((int64_t)stt.st_mtime * 1000);
	while (off + HDR_LEN <= size) {
		uint8_t h[HDR_LEN];
		if (pread_all(fd, h, HDR_LEN, off) != 0)
			break;
		uint32_t magic = logs_get_u32(h);
		if ((magic != SEG_MAGIC_BLOCK && magic != SEG_MAGIC_COMMIT) ||
		    ward_crc32c(0, h + 8, HDR_LEN - 8) != logs_get_u32(h + 4))
			break;
		uint32_t comp_len = logs_get_u32(h + 36);
		if (comp_len > size - off - HDR_LEN)
			break;
		if (magic == SEG_MAGIC_COMMIT) {
			uint64_t g = (uint64_t)logs_get_i64(h + 16);
			if (g > *max_gen)
				*max_gen = g;
			for (size_t i = 0; i < npend; i++) {
				struct logs_blockref *b = &pend[i];
				if (b->stream >= s->nstreams)
					continue; /* index lost the stream: cannot label it */
				stream_add_block(s->streams[b->stream], b);
				if (b->min_ts < sg->min_ts)
					sg->min_ts = b->min_ts;
				if (b->max_ts > sg->max_ts)
					sg->max_ts = b->max_ts;
				s->st.blocks++;
			}
			npend = 0;
			off += HDR_LEN;
			good = off;
			continue;
		}
		struct logs_blockref b = {.seg = sg->no,
		                          .stream = logs_get_u32(h + 8),
		                          .off = off,
		                          .comp_len = comp_len,
		                          .raw_len = logs_get_u32(h + 32),
		                          .count = logs_get_u32(h + 12),
		                          .min_ts = logs_get_i64(h + 16),
		                          .max_ts = logs_get_i64(h + 24)};
		if (b.raw_len > MAX_BLOCK_RAW)
			break;
		if (verify_payload) {
			buf_reset(&payload);
			buf_reserve(&payload, comp_len);
			if (pread_all(fd, payload.data, comp_len, off + HDR_LEN) != 0 ||
			    ward_crc32c(0, payload.data, comp_len) != logs_get_u32(h + 40))
				break;
		}
		if (npend == cpend) {
			cpend = cpend ? cpend * 2 : 16;
			pend = ward_xrealloc(pend, cpend * sizeof(*pend));
		}
		pend[npend++] = b;
		off += HDR_LEN + comp_len;
	}
	if (good < size) {
		char n[32];
		snprintf(n, sizeof(n), "%llu", (unsigned long long)(size - good));
		ward_log(LOG_WARN, "logs: trimmed an uncommitted or torn segment tail", "path",
		         buf_cstr(&path), "bytes", n, NULL);
		if (ftruncate(fd, (off_t)good) != 0 || fdatasync(fd) != 0) {
			ward_err_set(err, "%s: cannot trim a torn tail: %s", buf_cstr(&path),
			             strerror(errno));
			goto out;
		}
	}
	sg->size = good;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(pend);
	buf_free(&path);
	buf_free(&payload);
	return rc;
}

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int segs_load(struct logs_store *s, uint64_t *max_gen, struct ward_err *err) {
	DIR *d = opendir(s->dir);
	struct dirent *de;
	uint32_t *nos = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		ward_err_set(err, "%s: cannot list: %s", s->dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		unsigned no;
		char tail[8];
		if (strlen(de->d_name) != 12 || sscanf(de->d_name, "%8u.%3s", &no, tail) != 2 ||
		    strcmp(tail, "seg") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			nos = ward_xrealloc(nos, cap * sizeof(*nos));
		}
		nos[n++] = no;
	}
	closedir(d);
	if (n)
		qsort(nos, n, sizeof(*nos), cmp_u32);
	s->segs = ward_xcalloc(n ? n : 1, sizeof(*s->segs));
	for (size_t i = 0; i < n; i++) {
		struct seg *sg = &s->segs[s->nsegs++];
		sg->no = nos[i];
		if (seg_scan(s, sg, i + 1 == n, max_gen, err) != 0) {
			free(nos);
			return -1;
		}
		s->st.stored_bytes += sg->size;
	}
	free(nos);
	s->st.segments = s->nsegs;
	return 0;
}

static int seg_open_active(struct logs_store *s, struct ward_err *err) {
	struct buf path = BUF_INIT;
	struct seg *sg = &s->segs[s->nsegs - 1];
	seg_name(&path, s->dir, sg->no);
	s->seg_fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->seg_fd < 0) {
		ward_err_set(err, "%s: cannot open: %s", buf_cstr(&path), strerror(errno));
		buf_free(&path);
		return -1;
	}
	buf_free(&path);
	return 0;
}

/* Under mu: makes sure the active segment can take n more bytes today. */
static int seg_roll_if_needed(struct logs_store *s, size_t n, struct ward_err *err) {
	int64_t today = day_of_ms(ward_now_ms());
	if (s->nsegs > 0 && s->seg_fd >= 0) {
		struct seg *sg = &s->segs[s->nsegs - 1];
		if (sg->day == today &&
		    (sg->size == 0 || sg->size + n <= (uint64_t)s->o.segment_bytes))
			return 0;
		if (sg->size == 0) { /* empty: reuse whatever day it was made */
			sg->day = today;
			return 0;
		}
	}
	if (s->seg_fd >= 0)
		close(s->seg_fd);
	s->seg_fd = -1;
	s->segs = ward_xrealloc(s->segs, (s->nsegs + 1) * sizeof(*s->segs));
	struct seg *ns = &s->segs[s->nsegs];
	memset(ns, 0, sizeof(*ns));
	ns->no = s->nsegs ? s->segs[s->nsegs - 1].no + 1 : 1;
	ns->day = today;
	ns->min_ts = INT64_MAX;
	ns->max_ts = INT64_MIN;
	s->nsegs++;
	s->st.segments = s->nsegs;
	if (seg_open_active(s, err) != 0)
		return -1;
	(void)ward_fsync_dir(s->dir);
	return 0;
}

/* ---- WAL ---- */

static int wal_reset(struct logs_store *s, struct ward_err *err) {
	uint8_t h[WAL_HDR_LEN];
	memset(h, 0, sizeof(h));
	logs_put_u32(h, WAL_MAGIC);
	logs_put_i64(h + 8, (int64_t)s->gen);
	if (ftruncate(s->wal_fd, 0) != 0 || pwrite(s->wal_fd, h, WAL_HDR_LEN, 0) != WAL_HDR_LEN ||
	    lseek(s->wal_fd, WAL_HDR_LEN, SEEK_SET) < 0 ||
	    (s->o.wal_fsync && fdatasync(s->wal_fd))) {
		ward_err_set(err, "%s/wal: cannot reset the log WAL: %s", s->dir, strerror(errno));
		return -1;
	}
	s->wal_size = WAL_HDR_LEN;
	return 0;
}

static void head_put(struct logs_store *s, uint32_t idx, int64_t ts, const char *line, size_t len) {
	struct head *h = &s->streams[idx]->head;
	size_t before = h->raw.len;
	if (h->count == 0) {
		h->min_ts = h->max_ts = ts;
		h->prev = 0;
		h->since_ms = ward_mono_ms();
	}
	if (ts < h->min_ts)
		h->min_ts = ts;
	if (ts > h->max_ts)
		h->max_ts = ts;
	logs_raw_put(&h->raw, &h->prev, ts, line, len);
	h->count++;
	s->head_bytes += h->raw.len - before;
}

/* WAL record payload: stream u32, n u32, then (ts i64, len u32, bytes)*. */
static int wal_replay(struct logs_store *s, uint64_t committed, struct ward_err *err) {
	struct buf path = BUF_INIT;
	char *data = NULL;
	size_t len = 0;
	int rc = -1;

	path_of(&path, s->dir, "wal");
	s->wal_fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->wal_fd < 0) {
		ward_err_set(err, "%s: cannot open: %s", buf_cstr(&path), strerror(errno));
		goto out;
	}
	if (ward_read_file(buf_cstr(&path), (size_t)1 << 32, &data, &len, err) != 0)
		goto out;
	const uint8_t *d = (const uint8_t *)data;
	if (len < WAL_HDR_LEN || logs_get_u32(d) != WAL_MAGIC ||
	    (uint64_t)logs_get_i64(d + 8) <= committed) {
		s->gen = committed + 1;
		rc = wal_reset(s, err);
		goto out;
	}
	s->gen = (uint64_t)logs_get_i64(d + 8);
	size_t off = WAL_HDR_LEN;
	uint64_t lines = 0;
	while (off + 8 <= len) {
		uint32_t crc = logs_get_u32(d + off), plen = logs_get_u32(d + off + 4);
		if (plen < 8 || plen > len - off - 8 || ward_crc32c(0, d + off + 8, plen) != crc)
			break;
		const uint8_t *q = d + off + 8, *end = q + plen;
		uint32_t sid = logs_get_u32(q), n = logs_get_u32(q + 4);
		q += 8;
		if (sid >= s->nstreams)
			break;
		for (uint32_t i = 0; i < n && end - q >= 12; i++) {
			int64_t ts = logs_get_i64(q);
			uint32_t l = logs_get_u32(q + 8);
			q += 12;
			if ((size_t)(end - q) < l)
				break;
			head_put(s, sid, ts, (const char *)q, l);
			q += l;
			lines++;
		}
		off += 8 + plen;
	}
	if (off < len) {
		ward_log(LOG_WARN, "logs: trimmed a torn WAL tail", "path", buf_cstr(&path), NULL);
		if (ftruncate(s->wal_fd, (off_t)off) != 0) {
			ward_err_set(err, "%s: cannot trim: %s", buf_cstr(&path), strerror(errno));
			goto out;
		}
	}
	if (lines) {
		char nb[32];
		snprintf(nb, sizeof(nb), "%llu", (unsigned long long)lines);
		ward_log(LOG_INFO, "logs: replayed the WAL", "lines", nb, NULL);
	}
	s->wal_size = off;
	if (lseek(s->wal_fd, (off_t)off, SEEK_SET) < 0)
		goto out;
	rc = 0;
out:
	free(data);
	buf_free(&path);
	return rc;
}

/* ---- flush ---- */

static int flush_locked(struct logs_store *s, struct ward_err *err) {
	size_t nheads = 0;
	for (size_t i = 0; i < s->nstreams; i++)
		if (s->streams[i]->head.count)
			nheads++;
	if (!nheads)
		return 0;
	buf_reset(&s->wbuf);
	size_t k = 0, cref = nheads * 2;
	struct logs_blockref *refs = ward_xcalloc(cref, sizeof(*refs));
	struct buf *chunk = &s->chunk;
	for (size_t i = 0; i < s->nstreams; i++) {
		struct head *h = &s->streams[i]->head;
		if (!h->count)
			continue;
		/* A head may hold more than one block's worth: cut it at entry boundaries into
		 * blocks of about block_bytes (each block's deltas start from 0 again). */
		const uint8_t *p = (const uint8_t *)h->raw.data, *end = p + h->raw.len;
		int64_t prev = 0, cprev = 0, ts, lo = INT64_MAX, hi = INT64_MIN;
		const char *line;
		size_t len;
		uint32_t count = 0;
		buf_reset(chunk);
		for (;;) {
			int r = logs_raw_next(&p, end, &prev, &ts, &line, &len);
			if (r == 1) {
				logs_raw_put(chunk, &cprev, ts, line, len);
				count++;
				lo = ts < lo ? ts : lo;
				hi = ts > hi ? ts : hi;
			}
			if (r == 1 && chunk->len < s->o.block_bytes)
				continue;
			if (count == 0) /* at the end with nothing pending */
				break;
			size_t bound = ZSTD_compressBound(chunk->len);
			size_t at = s->wbuf.len;
			buf_reserve(&s->wbuf, HDR_LEN + bound);
			uint8_t *dst = (uint8_t *)s->wbuf.data + at + HDR_LEN;
			size_t c = ZSTD_compressCCtx(s->cctx, dst, bound, chunk->data, chunk->len,
			                             ZSTD_LEVEL);
			if (ZSTD_isError(c)) {
				ward_err_set(err, "logs: zstd: %s", ZSTD_getErrorName(c));
				free(refs);
				return -1;
			}
			block_header((uint8_t *)s->wbuf.data + at, SEG_MAGIC_BLOCK, (uint32_t)i,
			             count, lo, hi, (uint32_t)chunk->len, (uint32_t)c,
			             ward_crc32c(0, dst, c));
			s->wbuf.len = at + HDR_LEN + c;
			if (k == cref) {
				cref *= 2;
				refs = ward_xrealloc(refs, cref * sizeof(*refs));
			}
			refs[k++] = (struct logs_blockref){.stream = (uint32_t)i,
			                                   .off = at,
			                                   .comp_len = (uint32_t)c,
			                                   .raw_len = (uint32_t)chunk->len,
			                                   .count = count,
			                                   .min_ts = lo,
			                                   .max_ts = hi};
			buf_reset(chunk);
			cprev = 0;
			count = 0;
			lo = INT64_MAX;
			hi = INT64_MIN;
			if (r != 1)
				break;
		}
	}
	uint8_t ch[HDR_LEN];
	block_header(ch, SEG_MAGIC_COMMIT, 0, 0, (int64_t)s->gen, (int64_t)s->gen, 0, 0, 0);
	buf_append(&s->wbuf, ch, HDR_LEN);
	if (seg_roll_if_needed(s, s->wbuf.len, err) != 0) {
		free(refs);
		return -1;
	}
	struct seg *sg = &s->segs[s->nsegs - 1];
	uint64_t base = sg->size;
	ssize_t w = 0;
	size_t done = 0;
	while (done < s->wbuf.len) {
		w = pwrite(s->seg_fd, s->wbuf.data + done, s->wbuf.len - done,
		           (off_t)(base + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (done < s->wbuf.len || fdatasync(s->seg_fd) != 0) {
		ward_err_set(err,
		             "%s/%08u.seg: cannot write log blocks: %s; the lines stay in the "
		             "WAL; free disk space",
		             s->dir, sg->no, errno ? strerror(errno) : "short write");
		if (ftruncate(s->seg_fd, (off_t)base) != 0) {
			/* the next open trims it: nothing after the last commit is read */
		}
		free(refs);
		return -1;
	}
	sg->size += s->wbuf.len;
	s->st.stored_bytes += s->wbuf.len;
	for (size_t i = 0; i < k; i++) {
		refs[i].seg = sg->no;
		refs[i].off += base;
		struct stream *st = s->streams[refs[i].stream];
		stream_add_block(st, &refs[i]);
		if (refs[i].min_ts < sg->min_ts)
			sg->min_ts = refs[i].min_ts;
		if (refs[i].max_ts > sg->max_ts)
			sg->max_ts = refs[i].max_ts;
		struct head *h = &st->head;
		h->count = 0;
		if (h->raw.cap > 4 * s->o.block_bytes) {
			buf_free(&h->raw);
		} else {
			buf_reset(&h->raw);
		}
	}
	s->st.blocks += k;
	s->head_bytes = 0;
	free(refs);
	s->gen++;
	return wal_reset(s, err);
}

int logs_store_flush(struct logs_store *s, struct ward_err *err) {
	pthread_mutex_lock(&s->mu);
	int rc = flush_locked(s, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- append ---- */

bool logs_sanitize_utf8(const char *s, size_t n, struct buf *out) {
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, run = 0;
	bool changed = false;
	while (i < n) {
		uint8_t c = p[i];
		size_t len = 0;
		if (c < 0x80)
			len = 1;
		else if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				ok = false;
		if (ok && len == 3) {
			if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f))
				ok = false;
		} else if (ok && len == 4) {
			if ((c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f))
				ok = false;
		}
		if (ok) {
			i += len;
			continue;
		}
		if (!changed) {
			buf_reset(out);
			changed = true;
		}
		buf_append(out, s + run, i - run);
		buf_printf(out, "\\x%02X", c);
		i++;
		run = i;
	}
	if (changed)
		buf_append(out, s + run, n - run);
	return changed;
}

int logs_store_append(struct logs_store *s, const struct labels *ls, const struct logs_entry *e,
                      size_t n, bool sync, struct ward_err *err) {
	int rc = -1;
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	int idx = stream_get(s, ls, err);
	if (idx < 0)
		goto out;
	struct buf *rec = &s->tmp;
	buf_reset(rec);
	uint8_t w[12];
	memset(w, 0, 8);
	buf_append(rec, w, 8); /* crc, len */
	logs_put_u32(w, (uint32_t)idx);
	logs_put_u32(w + 4, (uint32_t)n);
	buf_append(rec, w, 8);
	uint64_t bytes = 0, trunc = 0;
	for (size_t i = 0; i < n; i++) {
		const char *line = e[i].line;
		size_t len = e[i].len;
		struct buf *fixed = &s->line;
		if (len > s->o.max_line_bytes) {
			size_t keep = s->o.max_line_bytes;
			while (keep > 0 && ((uint8_t)line[keep] & 0xc0) == 0x80)
				keep--; /* never cut a UTF-8 sequence */
			buf_reset(fixed);
			buf_append(fixed, line, keep);
			buf_puts(fixed, LOGS_TRUNC_MARKER);
			line = fixed->data;
			len = fixed->len;
			trunc++;
		}
		if (logs_sanitize_utf8(line, len, &s->wbuf)) {
			buf_reset(
			        &s->line); /* line may point into it: wbuf already holds the copy */
			buf_append(&s->line, s->wbuf.data, s->wbuf.len);
			line = s->line.data;
			len = s->line.len;
		}
		logs_put_i64(w, e[i].ts_ns);
		logs_put_u32(w + 8, (uint32_t)len);
		buf_append(rec, w, 12);
		buf_append(rec, line, len);
		bytes += len;
	}
	uint32_t plen = (uint32_t)(rec->len - 8);
	logs_put_u32((uint8_t *)rec->data + 4, plen);
	logs_put_u32((uint8_t *)rec->data, ward_crc32c(0, rec->data + 8, plen));
	if (write_all(s->wal_fd, rec->data, rec->len) != 0 ||
	    (sync && s->o.wal_fsync && fdatasync(s->wal_fd) != 0)) {
		ward_err_set(err, "%s/wal: cannot append log lines: %s; free disk space", s->dir,
		             strerror(errno));
		if (ftruncate(s->wal_fd, (off_t)s->wal_size) == 0)
			(void)lseek(s->wal_fd, (off_t)s->wal_size, SEEK_SET);
		goto out;
	}
	s->wal_size += rec->len;
	/* The WAL record is the truth; decode it into the head so both agree byte for byte. */
	const uint8_t *q = (const uint8_t *)rec->data + 16,
	              *end = (const uint8_t *)rec->data + rec->len;
	while (end - q >= 12) {
		int64_t ts = logs_get_i64(q);
		uint32_t l = logs_get_u32(q + 8);
		q += 12;
		head_put(s, (uint32_t)idx, ts, (const char *)q, l);
		q += l;
	}
	s->st.lines_appended += n;
	s->st.lines_truncated += trunc;
	s->st.bytes_appended += bytes;
	s->appended += n;
	pthread_cond_broadcast(&s->cond);
	rc = 0;
	if (s->head_bytes >= s->o.max_head_bytes) {
		struct ward_err e2;
		ward_err_clear(&e2);
		if (flush_locked(s, &e2) != 0) /* the lines are safe in the WAL; retried later */
			ward_log(LOG_WARN, "logs: flush failed", "error", e2.msg, NULL);
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

uint64_t logs_store_wait(struct logs_store *s, uint64_t seen, int64_t timeout_ms) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (s->appended == seen) {
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) != 0)
			break;
	}
	uint64_t v = s->appended;
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* ---- retention and maintenance ---- */

static void drop_seg_locked(struct logs_store *s, size_t i) {
	struct buf path = BUF_INIT;
	uint32_t no = s->segs[i].no;
	seg_name(&path, s->dir, no);
	(void)unlink(buf_cstr(&path));
	buf_free(&path);
	for (size_t k = 0; k < s->nstreams; k++) {
		struct stream *st = s->streams[k];
		size_t w = 0;
		for (size_t j = 0; j < st->nblocks; j++)
			if (st->blocks[j].seg != no)
				st->blocks[w++] = st->blocks[j];
			else
				s->st.blocks--;
		st->nblocks = w;
	}
	s->st.stored_bytes -= s->segs[i].size;
	memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof(*s->segs));
	s->nsegs--;
	s->st.segments = s->nsegs;
}

int logs_store_maintain(struct logs_store *s, int64_t now_ms, struct ward_err *err) {
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	int64_t mono = ward_mono_ms();
	for (size_t i = 0; i < s->nstreams; i++) {
		struct head *h = &s->streams[i]->head;
		if (h->count && mono - h->since_ms >= s->o.block_age_ms) {
			rc = flush_locked(s, err);
			break;
		}
	}
	/* Never the active segment: it is the one being written. */
	while (s->nsegs > 1) {
		struct seg *old = &s->segs[0];
		bool expired = s->o.retention_ms > 0 && old->max_ts != INT64_MIN &&
		               old->max_ts / 1000000 < now_ms - s->o.retention_ms;
		bool too_big = s->o.retention_bytes > 0 &&
		               s->st.stored_bytes > (uint64_t)s->o.retention_bytes;
		if (!expired && !too_big)
			break;
		char no[16];
		snprintf(no, sizeof(no), "%08u", old->no);
		ward_log(LOG_INFO, "logs: retention dropped a segment", "segment", no, "reason",
		         expired ? "age" : "size", NULL);
		drop_seg_locked(s, 0);
	}
	/* A segment whose day is over is closed even when small, so age retention can drop it. */
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void logs_store_stats(struct logs_store *s, struct logs_store_stats *out) {
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	out->head_bytes = s->head_bytes;
	pthread_mutex_unlock(&s->mu);
}

/* ---- open / close ---- */

struct logs_store *logs_store_open(const struct logs_store_opts *o, struct ward_err *err) {
	struct logs_store *s = ward_xcalloc(1, sizeof(*s));
	uint64_t committed = 0;

	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->o = *o;
	if (!s->o.block_bytes)
		s->o.block_bytes = 256 * 1024;
	if (!s->o.max_head_bytes)
		s->o.max_head_bytes = 16u << 20;
	if (s->o.segment_bytes <= 0)
		s->o.segment_bytes = 128LL << 20;
	if (!s->o.max_line_bytes)
		s->o.max_line_bytes = 256 * 1024;
	s->dir = ward_strdup(o->dir);
	s->o.dir = s->dir;
	s->seg_fd = s->wal_fd = s->streams_fd = -1;
	s->cctx = ZSTD_createCCtx();
	if (ward_mkdir_p(s->dir, 0700, err) != 0)
		goto fail;
	if (streams_load(s, err) != 0 || segs_load(s, &committed, err) != 0)
		goto fail;
	if (s->nsegs > 0 && seg_open_active(s, err) != 0)
		goto fail;
	if (wal_replay(s, committed, err) != 0)
		goto fail;
	return s;
fail:
	logs_store_close(s);
	return NULL;
}

void logs_store_close(struct logs_store *s) {
	if (!s)
		return;
	if (s->wal_fd >= 0) {
		struct ward_err err;
		ward_err_clear(&err);
		if (logs_store_flush(s, &err) != 0)
			ward_log(LOG_WARN, "logs: final flush failed; the WAL keeps the lines",
			         "error", err.msg, NULL);
	}
	for (size_t i = 0; i < s->nstreams; i++) {
		labels_free(&s->streams[i]->labels);
		free(s->streams[i]->blocks);
		buf_free(&s->streams[i]->head.raw);
		free(s->streams[i]);
	}
	free(s->streams);
	free(s->hidx);
	for (size_t i = 0; i < POSTINGS_BUCKETS; i++) {
		struct posting *p = s->postings[i];
		while (p) {
			struct posting *nx = p->next;
			free(p->key);
			free(p->ids);
			free(p);
			p = nx;
		}
	}
	free(s->segs);
	if (s->seg_fd >= 0)
		close(s->seg_fd);
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	if (s->streams_fd >= 0)
		close(s->streams_fd);
	ZSTD_freeCCtx(s->cctx);
	buf_free(&s->wbuf);
	buf_free(&s->tmp);
	buf_free(&s->line);
	buf_free(&s->chunk);
	free(s->dir);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* ---- snapshots for queries ---- */

static bool stream_matches(const struct stream *st, const struct matcher *m, size_t nm) {
	for (size_t i = 0; i < nm; i++)
		if (!matcher_matches(&m[i], labels_get(&st->labels, m[i].name)))
			return false;
	return true;
}

int logs_store_snapshot(struct logs_store *s, const struct matcher *m, size_t nm, int64_t start_ns,
                        int64_t end_ns, struct logs_snapshot *out, struct ward_err *err) {
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	out->dir = ward_strdup(s->dir);
	/* Candidates from the postings of the most selective non-empty equality matcher. */
	const uint32_t *cand = NULL;
	size_t ncand = s->nstreams;
	bool use_postings = false;
	for (size_t i = 0; i < nm; i++) {
		if (m[i].op != MATCH_EQ || !m[i].value[0])
			continue;
		struct posting *p = posting_get(s, m[i].name, m[i].value, false);
		if (!p) {
			ncand = 0;
			use_postings = true;
			break;
		}
		if (!use_postings || p->n < ncand) {
			cand = p->ids;
			ncand = p->n;
			use_postings = true;
		}
	}
	size_t bcap = 0;
	out->streams = ward_xcalloc(ncand ? ncand : 1, sizeof(*out->streams));
	out->heads = ward_xcalloc(ncand ? ncand : 1, sizeof(*out->heads));
	for (size_t c = 0; c < ncand; c++) {
		uint32_t idx = use_postings ? cand[c] : (uint32_t)c;
		struct stream *st = s->streams[idx];
		if (!stream_matches(st, m, nm))
			continue;
		uint32_t si = (uint32_t)out->nstreams++;
		labels_copy(&out->streams[si], &st->labels);
		for (size_t j = 0; j < st->nblocks + 1; j++) {
			struct logs_blockref b;
			if (j < st->nblocks) {
				b = st->blocks[j];
			} else {
				if (!st->head.count)
					break;
				b = (struct logs_blockref){.seg = LOGS_HEAD_SEG,
				                           .count = st->head.count,
				                           .min_ts = st->head.min_ts,
				                           .max_ts = st->head.max_ts};
			}
			if (b.max_ts < start_ns || b.min_ts > end_ns)
				continue;
			if (b.seg == LOGS_HEAD_SEG)
				buf_append(&out->heads[si], st->head.raw.data, st->head.raw.len);
			b.stream = si;
			if (out->nblocks == bcap) {
				bcap = bcap ? bcap * 2 : 64;
				out->blocks =
				        ward_xrealloc(out->blocks, bcap * sizeof(*out->blocks));
			}
			out->blocks[out->nblocks++] = b;
		}
	}
	pthread_mutex_unlock(&s->mu);
	(void)err;
	return 0;
}

int logs_snapshot_read(struct logs_snapshot *sn, const struct logs_blockref *b, struct buf *raw,
                       struct ward_err *err) {
	buf_reset(raw);
	if (b->seg == LOGS_HEAD_SEG) {
		struct buf *h = &sn->heads[b->stream];
		buf_append(raw, h->data ? h->data : "", h->len);
		return 0;
	}
	int fd = -1;
	for (size_t i = 0; i < sn->nfds; i++)
		if (sn->fd_seg[i] == b->seg)
			fd = sn->fds[i];
	if (fd < 0) {
		struct buf path = BUF_INIT;
		seg_name(&path, sn->dir, b->seg);
		fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
		buf_free(&path);
		if (fd < 0) {
			ward_err_set(err, "segment %08u is gone (retention): %s", b->seg,
			             strerror(errno));
			return -1;
		}
		sn->fds = ward_xrealloc(sn->fds, (sn->nfds + 1) * sizeof(int));
		sn->fd_seg = ward_xrealloc(sn->fd_seg, (sn->nfds + 1) * sizeof(uint32_t));
		sn->fds[sn->nfds] = fd;
		sn->fd_seg[sn->nfds++] = b->seg;
	}
	uint8_t *comp = ward_xmalloc(b->comp_len + HDR_LEN);
	int rc = -1;
	if (pread_all(fd, comp, HDR_LEN + b->comp_len, b->off) != 0) {
		ward_err_set(err, "segment %08u offset %llu: short read", b->seg,
		             (unsigned long long)b->off);
		goto out;
	}
	if (ward_crc32c(0, comp + HDR_LEN, b->comp_len) != logs_get_u32(comp + 40)) {
		ward_err_set(err, "segment %08u offset %llu: block crc mismatch; skipped", b->seg,
		             (unsigned long long)b->off);
		goto out;
	}
	buf_reserve(raw, b->raw_len + 1);
	size_t d = ZSTD_decompress(raw->data, b->raw_len, comp + HDR_LEN, b->comp_len);
	if (ZSTD_isError(d) || d != b->raw_len) {
		ward_err_set(err, "segment %08u offset %llu: cannot decompress", b->seg,
		             (unsigned long long)b->off);
		goto out;
	}
	raw->len = d;
	raw->data[d] = '\0';
	rc = 0;
out:
	free(comp);
	return rc;
}

void logs_snapshot_free(struct logs_snapshot *sn) {
	for (size_t i = 0; i < sn->nstreams; i++) {
		labels_free(&sn->streams[i]);
		buf_free(&sn->heads[i]);
	}
	for (size_t i = 0; i < sn->nfds; i++)
		close(sn->fds[i]);
	free(sn->fds);
	free(sn->fd_seg);
	free(sn->streams);
	free(sn->heads);
	free(sn->blocks);
	free(sn->dir);
	memset(sn, 0, sizeof(*sn));
}
