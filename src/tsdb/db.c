/* db.c: the public API of the engine: open/close, appenders and commit, select, label
 * names/values, maintenance and stats.
 *
 * Locking: one rwlock per db guards the head, the WAL and the block list. Commit and
 * maintain take it exclusively; select, label queries and stats share it. A commit
 * resolves series (new ones get provisional refs), writes the whole batch to the WAL with
 * one write (fsynced under TSDB_FSYNC_ALWAYS), and only then creates the series and
 * appends the samples, so a failed write changes nothing. WAL order is apply order, so
 * replay repeats the same accept/reject decisions. The periodic fsync thread syncs the
 * WAL every fsync_interval_ms. Callers: the daemon (scrape loop, API, promql).
 */
#include "tsdb/tsdb_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BLOCK_MS          (2 * 3600 * 1000LL)
#define DEFAULT_RETENTION_MS      (15 * 24 * 3600 * 1000LL)
#define DEFAULT_FSYNC_INTERVAL_MS 1000
/* Thanos' ages: recent data is read at full resolution anyway, and a copy of it would only
 * cost disk (5m + 1h copies of fresh blocks are bigger than the raw block, five columns). */
#define DEFAULT_DS5M_AFTER_MS (40 * 3600 * 1000LL)
#define DEFAULT_DS1H_AFTER_MS (10 * 24 * 3600 * 1000LL)
/* A checkpoint is written in pieces of this size so a big head never needs a second copy
 * of itself in memory. */
#define CHECKPOINT_FLUSH_BYTES (4u << 20)
/* Downsampled reads need both a long range and a coarse step, so short or fine-grained
 * queries always see raw data (the 5m windows would hide detail they can show). */
#define DS5M_MIN_RANGE_MS (24 * 3600 * 1000LL)
#define DS5M_MIN_STEP_MS  (300 * 1000LL)
#define DS1H_MIN_RANGE_MS (30 * 24 * 3600 * 1000LL)
#define DS1H_MIN_STEP_MS  (3600 * 1000LL)

double tsdb_stale_nan(void) {
	return tsdb_bitsd(WARD_STALE_NAN_BITS);
}

bool tsdb_is_stale_nan(double v) {
	return tsdb_dbits(v) == WARD_STALE_NAN_BITS;
}

void tsdb_opts_default(struct tsdb_opts *o) {
	memset(o, 0, sizeof(*o));
	o->dir = "tsdb";
	o->block_duration_ms = DEFAULT_BLOCK_MS;
	o->retention_ms = DEFAULT_RETENTION_MS;
	o->ooo_window_ms = 0;
	o->fsync = TSDB_FSYNC_ALWAYS;
	o->fsync_interval_ms = DEFAULT_FSYNC_INTERVAL_MS;
	o->downsample = true;
	o->downsample_5m_after_ms = DEFAULT_DS5M_AFTER_MS;
	o->downsample_1h_after_ms = DEFAULT_DS1H_AFTER_MS;
}

struct tsdb {
	struct tsdb_opts o;
	char *dir, *blocksdir, *qdir;
	int lockfd;
	pthread_rwlock_t lock; /* guards everything below */
	/* Appenders look existing series up without the db lock: series_lock guards the head's
	 * series tables against head_create/head_remove (taken inside lock, never around it),
	 * and pins counts appenders holding refs found that way, so that no series they name
	 * is removed before they commit (maintenance then leaves empty series for next time). */
	pthread_rwlock_t series_lock;
	atomic_uint pins;
	struct tsdb_meta *meta; /* metric metadata (meta.c, its own lock) */
	struct tsdb_head head;
	struct tsdb_wal wal;
	struct tsdb_blocks blocks;
	uint64_t appended_total, rejected_too_old, rejected_duplicate, quarantined;
	/* periodic fsync thread */
	pthread_t syncer;
	bool syncer_on, stopping;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
};

struct staged {
	struct labels ls; /* empty when ref is set */
	uint64_t hash;
	uint32_t ref; /* a head series that existed at append time (pinned), else 0 */
	size_t same_as; /* for a new series' later samples: index + 1 of the entry with its
	                 * labels (theirs stay empty), else 0 */
	int64_t t;
	double v;
};

struct tsdb_appender {
	struct tsdb *db;
	struct staged *v;
	size_t n, cap;
	bool pinned; /* holds one of db->pins */
};

/* ---- a small ref -> series map (WAL replay) ---- */
struct refmap {
	uint32_t *keys;
	struct head_series **vals;
	size_t cap, n;
};

static struct head_series **refmap_slot(struct refmap *m, uint32_t ref, bool insert) {
	if (insert && (m->n + 1) * 2 > m->cap) {
		struct refmap nm = {0};
		nm.cap = m->cap ? m->cap * 2 : 1024;
		nm.keys = ward_xcalloc(nm.cap, sizeof(*nm.keys));
		nm.vals = ward_xcalloc(nm.cap, sizeof(*nm.vals));
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i]) {
				*refmap_slot(&nm, m->keys[i], true) = m->vals[i];
			}
		free(m->keys);
		free(m->vals);
		*m = nm;
	}
	if (!m->cap)
		return NULL;
	size_t i = (ref * 2654435761u) & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != ref)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == ref)
		return &m->vals[i];
	if (!insert)
		return NULL;
	m->keys[i] = ref;
	m->n++;
	return &m->vals[i];
}

struct replay {
	struct tsdb *db;
	struct refmap map;
};

static int replay_record(void *arg, uint8_t type, const uint8_t *p, size_t n) {
	struct replay *r = arg;
	struct tsdb_head *h = &r->db->head;
	const uint8_t *end = p + n;
	uint64_t ref, cnt;

	if (type == WAL_REC_SERIES) {
		struct labels ls;
		if (tsdb_get_uvarint(&p, end, &ref) < 0 || ref == 0 || ref > UINT32_MAX ||
		    tsdb_get_labels(&p, end, &ls) < 0)
			return -1;
		if (p != end) {
			labels_free(&ls);
			return -1;
		}
		uint64_t hash = labels_hash(&ls);
		struct head_series *s = head_by_labels(h, &ls, hash);
		if (!s) {
			uint32_t use = (uint32_t)ref;
			if (head_by_ref(h, use))
				use = h->next_ref;
			s = head_create(h, use, &ls, hash);
		}
		*refmap_slot(&r->map, (uint32_t)ref, true) = s;
		labels_free(&ls);
		return 0;
	}
	if (tsdb_get_uvarint(&p, end, &cnt) < 0 || cnt > n)
		return -1;
	int64_t t = 0;
	/* Validate the whole record before applying any of it. */
	const uint8_t *start = p;
	for (int pass = 0; pass < 2; pass++) {
		p = start;
		t = 0;
		for (uint64_t i = 0; i < cnt; i++) {
			int64_t dt;
			if (tsdb_get_uvarint(&p, end, &ref) < 0 ||
			    tsdb_get_varint(&p, end, &dt) < 0 || end - p < 8)
				return -1;
			t = (int64_t)((uint64_t)t + (uint64_t)dt);
			double v = tsdb_bitsd(tsdb_get_u64(p));
			p += 8;
			if (pass == 0 || ref > UINT32_MAX)
				continue;
			struct head_series **s = refmap_slot(&r->map, (uint32_t)ref, false);
			if (s && *s)
				head_append(h, *s, t, v, r->db->o.ooo_window_ms);
		}
		if (p != end)
			return -1;
	}
	return 0;
}

/* Writes the whole head as series and samples records in a new segment, then deletes the
 * older segments. Called after a head cut and after quarantining WAL data. */
static int checkpoint(struct tsdb *db, struct ward_err *err) {
	struct buf rec = BUF_INIT, out = BUF_INIT;
	struct tsdb_svec sv = {0};
	size_t n;
	int rc = -1;

	if (wal_cut(&db->wal, err) < 0)
		return -1;
	uint32_t keep = db->wal.seg;
	struct head_series **ss = head_sorted(&db->head, &n);
	for (size_t i = 0; i < n; i++) {
		buf_reset(&rec);
		tsdb_buf_uvarint(&rec, ss[i]->ref);
		tsdb_buf_labels(&rec, &ss[i]->ls);
		wal_frame(&out, WAL_REC_SERIES, rec.data, rec.len);
		if (out.len >= CHECKPOINT_FLUSH_BYTES) {
			if (wal_write(&db->wal, out.data, out.len, false, err) < 0)
				goto out;
			buf_reset(&out);
		}
	}
	for (size_t i = 0; i < n; i++) {
		sv.n = 0;
		head_series_read(ss[i], INT64_MIN, INT64_MAX, &sv);
		if (!sv.n)
			continue;
		buf_reset(&rec);
		tsdb_buf_uvarint(&rec, sv.n);
		int64_t prev = 0;
		for (size_t k = 0; k < sv.n; k++) {
			tsdb_buf_uvarint(&rec, ss[i]->ref);
			tsdb_buf_varint(&rec, (int64_t)((uint64_t)sv.t[k] - (uint64_t)prev));
			tsdb_buf_u64(&rec, tsdb_dbits(sv.v[k]));
			prev = sv.t[k];
		}
		wal_frame(&out, WAL_REC_SAMPLES, rec.data, rec.len);
		if (out.len >= CHECKPOINT_FLUSH_BYTES) {
			if (wal_write(&db->wal, out.data, out.len, false, err) < 0)
				goto out;
			buf_reset(&out);
		}
	}
	if (out.len && wal_write(&db->wal, out.data, out.len, true, err) < 0)
		goto out;
	if (wal_sync(&db->wal, err) < 0)
		goto out;
	wal_remove_before(&db->wal, keep);
	rc = 0;
out:
	free(ss);
	svec_free(&sv);
	buf_free(&rec);
	buf_free(&out);
	return rc;
}

static void quarantine_block(struct tsdb *db, const char *name, const char *why) {
	char from[4096], to[4096];
	snprintf(from, sizeof(from), "%s/%s", db->blocksdir, name);
	snprintf(to, sizeof(to), "%s/%s", db->qdir, name);
	ward_mkdir_p(db->qdir, 0700, NULL);
	ward_log(LOG_ERROR, "tsdb: damaged block moved to quarantine", "block", from, "reason", why,
	         "to", to, NULL);
	if (rename(from, to) < 0)
		tsdb_rm_dir(from);
	ward_fsync_dir(db->blocksdir);
	db->quarantined++;
}

/* Drops blocks whose data a compacted block of the same resolution already holds (left by
 * a crash between writing the new block and deleting its sources). */
static void drop_replaced(struct tsdb_blocks *bs) {
	for (size_t i = bs->n; i-- > 0;) {
		struct tsdb_block *b = bs->v[i];
		bool replaced = false;
		for (size_t j = 0; j < bs->n && !replaced; j++) {
			struct tsdb_block *c = bs->v[j];
			if (c == b || c->resolution_ms != b->resolution_ms || c->level <= b->level)
				continue;
			for (size_t k = 0; k < c->nsources && !replaced; k++)
				for (size_t l = 0; l < b->nsources; l++)
					if (strcmp(c->sources[k], b->sources[l]) == 0) {
						replaced = true;
						break;
					}
		}
		if (replaced)
			blocks_delete(bs, i);
	}
}

static int load_blocks(struct tsdb *db, struct ward_err *err) {
	DIR *d = opendir(db->blocksdir);
	struct dirent *de;
	char path[4096];

	if (!d) {
		ward_err_set(err, "tsdb: cannot open %s: %s", db->blocksdir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", db->blocksdir, de->d_name);
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
			tsdb_rm_dir(path);
			continue;
		}
		struct ward_err berr;
		ward_err_clear(&berr);
		struct tsdb_block *b = block_open(path, &berr);
		if (!b) {
			quarantine_block(db, de->d_name, berr.msg);
			continue;
		}
		blocks_add(&db->blocks, b);
	}
	closedir(d);
	drop_replaced(&db->blocks);
	return 0;
}

static void *syncer_main(void *arg) {
	struct tsdb *db = arg;
	pthread_mutex_lock(&db->stop_mu);
	while (!db->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (db->o.fsync_interval_ms % 1000) * 1000000;
		ts.tv_sec += db->o.fsync_interval_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&db->stop_cv, &db->stop_mu, &ts);
		if (db->stopping)
			break;
		pthread_mutex_unlock(&db->stop_mu);
		struct ward_err e;
		pthread_rwlock_wrlock(&db->lock);
		if (wal_sync(&db->wal, &e) < 0)
			ward_log(LOG_ERROR, "tsdb: periodic WAL fsync failed", "error", e.msg,
			         NULL);
		pthread_rwlock_unlock(&db->lock);
		pthread_mutex_lock(&db->stop_mu);
	}
	pthread_mutex_unlock(&db->stop_mu);
	return NULL;
}

struct tsdb *tsdb_open(const struct tsdb_opts *o, struct ward_err *err) {
	struct tsdb *db = ward_xcalloc(1, sizeof(*db));
	struct buf b = BUF_INIT;
	char path[4096];
	struct replay r = {0};

	db->o = *o;
	if (!o->dir || !o->dir[0]) {
		ward_err_set(err, "tsdb: no data directory given");
		free(db);
		return NULL;
	}
	if (db->o.block_duration_ms <= 0)
		db->o.block_duration_ms = DEFAULT_BLOCK_MS;
	if (db->o.fsync_interval_ms <= 0)
		db->o.fsync_interval_ms = DEFAULT_FSYNC_INTERVAL_MS;
	if (db->o.ooo_window_ms < 0)
		db->o.ooo_window_ms = 0;
	db->dir = ward_strdup(o->dir);
	db->o.dir = db->dir;
	buf_printf(&b, "%s/blocks", db->dir);
	db->blocksdir = buf_detach(&b);
	buf_printf(&b, "%s/quarantine", db->dir);
	db->qdir = buf_detach(&b);
	db->lockfd = -1;
	pthread_rwlock_init(&db->lock, NULL);
	pthread_rwlock_init(&db->series_lock, NULL);
	db->meta = tsdb_meta_new();
	pthread_mutex_init(&db->stop_mu, NULL);
	pthread_cond_init(&db->stop_cv, NULL);
	head_init(&db->head);
	db->wal.fd = -1;
	if (ward_mkdir_p(db->blocksdir, 0700, err) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/lock", db->dir);
	db->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (db->lockfd < 0 || flock(db->lockfd, LOCK_EX | LOCK_NB) < 0) {
		ward_err_set(err, "tsdb: %s is in use by another process (%s); stop it first",
		             db->dir, strerror(errno));
		goto fail;
	}
	if (load_blocks(db, err) < 0)
		goto fail;
	if (wal_open(&db->wal, db->dir, err) < 0)
		goto fail;
	r.db = db;
	uint64_t q = 0;
	int rc = wal_replay(&db->wal, replay_record, &r, &q, err);
	free(r.map.keys);
	free(r.map.vals);
	if (rc < 0)
		goto fail;
	/* Series created by a series record but never given a sample hold nothing. */
	size_t n;
	struct head_series **ss = head_sorted(&db->head, &n);
	for (size_t i = 0; i < n; i++)
		if (ss[i]->maxt == INT64_MIN && ss[i]->nooo == 0)
			head_remove(&db->head, ss[i]);
	free(ss);
	head_recount(&db->head);
	db->quarantined += q;
	if (q && checkpoint(db, err) < 0)
		goto fail;
	if (db->o.fsync == TSDB_FSYNC_PERIODIC) {
		if (pthread_create(&db->syncer, NULL, syncer_main, db) != 0) {
			ward_err_set(err, "tsdb: cannot start the WAL fsync thread");
			goto fail;
		}
		db->syncer_on = true;
	}
	return db;
fail:
	tsdb_close(db);
	return NULL;
}

void tsdb_close(struct tsdb *db) {
	if (!db)
		return;
	if (db->syncer_on) {
		pthread_mutex_lock(&db->stop_mu);
		db->stopping = true;
		pthread_cond_signal(&db->stop_cv);
		pthread_mutex_unlock(&db->stop_mu);
		pthread_join(db->syncer, NULL);
	}
	wal_close(&db->wal);
	head_free(&db->head);
	for (size_t i = 0; i < db->blocks.n; i++)
		block_free(db->blocks.v[i]);
	free(db->blocks.v);
	if (db->lockfd >= 0)
		close(db->lockfd);
	pthread_rwlock_destroy(&db->lock);
	pthread_rwlock_destroy(&db->series_lock);
	tsdb_meta_free(db->meta);
	pthread_mutex_destroy(&db->stop_mu);
	pthread_cond_destroy(&db->stop_cv);
	free(db->dir);
	free(db->blocksdir);
	free(db->qdir);
	free(db);
}

/* ---- writing ---- */
struct tsdb_meta *tsdb_meta_of(struct tsdb *db) {
	return db ? db->meta : NULL;
}

struct tsdb_appender *tsdb_appender_new(struct tsdb *db) {
	struct tsdb_appender *a = ward_xcalloc(1, sizeof(*a));
	a->db = db;
	return a;
}

static void reserve(struct tsdb_appender *a, size_t n) {
	if (a->n + n > a->cap) {
		while (a->n + n > a->cap)
			a->cap = a->cap ? a->cap * 2 : 16;
		a->v = ward_xrealloc(a->v, a->cap * sizeof(*a->v));
	}
}

/* Holds one of db->pins for the appender (once): series it names stay until commit. */
static void pin(struct tsdb_appender *a) {
	if (!a->pinned) {
		atomic_fetch_add(&a->db->pins, 1);
		a->pinned = true;
	}
}

int tsdb_append_ref(struct tsdb_appender *a, uint32_t ref, int64_t t_ms, double v) {
	struct tsdb *db = a->db;
	if (ref == 0)
		return 1;
	pthread_rwlock_rdlock(&db->series_lock);
	bool have = head_by_ref(&db->head, ref) != NULL;
	if (have)
		pin(a);
	pthread_rwlock_unlock(&db->series_lock);
	if (!have)
		return 1;
	reserve(a, 1);
	struct staged *s = &a->v[a->n++];
	labels_init(&s->ls);
	s->hash = 0; /* commit finds a staged ref by the ref */
	s->ref = ref;
	s->same_as = 0;
	s->t = t_ms;
	s->v = v;
	return 0;
}

static int stage_n(struct tsdb_appender *a, const struct labels *ls, const int64_t *t_ms,
                   const double *v, size_t n, uint32_t *ref_out, struct ward_err *err) {
	const char *why = tsdb_labels_invalid(ls);
	if (why) {
		ward_err_set(err, "tsdb: invalid label set: %s", why);
		return -1;
	}
	if (n == 0)
		return 0;
	reserve(a, n);
	struct tsdb *db = a->db;
	uint64_t hash = labels_hash(ls);
	uint32_t ref = 0;
	/* Most samples belong to series the head has: stage their ref, not a copy of the labels
	 * (a copy is a few dozen small allocations). */
	pthread_rwlock_rdlock(&db->series_lock);
	const struct head_series *hs = head_by_labels(&db->head, ls, hash);
	if (hs) {
		ref = hs->ref;
		pin(a);
	}
	pthread_rwlock_unlock(&db->series_lock);
	if (ref_out)
		*ref_out = ref;
	size_t first = a->n;
	for (size_t k = 0; k < n; k++) {
		struct staged *s = &a->v[a->n++];
		labels_init(&s->ls);
		s->hash = hash;
		s->ref = ref;
		s->same_as = !ref && k ? first + 1 : 0;
		s->t = t_ms[k];
		s->v = v[k];
	}
	if (!ref)
		labels_copy(&a->v[first].ls, ls);
	return 0;
}

int tsdb_append_n(struct tsdb_appender *a, const struct labels *ls, const int64_t *t_ms,
                  const double *v, size_t n, struct ward_err *err) {
	return stage_n(a, ls, t_ms, v, n, NULL, err);
}

int tsdb_append(struct tsdb_appender *a, const struct labels *ls, int64_t t_ms, double v,
                struct ward_err *err) {
	return stage_n(a, ls, &t_ms, &v, 1, NULL, err);
}

int tsdb_append_get_ref(struct tsdb_appender *a, const struct labels *ls, int64_t t_ms,
                        double v, uint32_t *ref, struct ward_err *err) {
	*ref = 0;
	return stage_n(a, ls, &t_ms, &v, 1, ref, err);
}

void tsdb_rollback(struct tsdb_appender *a) {
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		labels_free(&a->v[i].ls);
	if (a->pinned)
		atomic_fetch_sub(&a->db->pins, 1);
	free(a->v);
	free(a);
}

int tsdb_commit(struct tsdb_appender *a, size_t *rejected, struct ward_err *err) {
	struct tsdb *db = a->db;
	struct buf out = BUF_INIT, rec = BUF_INIT;
	struct head_series **ser = ward_xcalloc(a->n ? a->n : 1, sizeof(*ser));
	uint32_t *refs = ward_xcalloc(a->n ? a->n : 1, sizeof(*refs));
	size_t *newof = ward_xcalloc(a->n ? a->n : 1, sizeof(*newof)); /* staged index */
	size_t nnew = 0, rej = 0;
	int rc = -1;

	if (rejected)
		*rejected = 0;
	pthread_rwlock_wrlock(&db->lock);
	uint32_t next = db->head.next_ref;
	/* new-series lookup table: open addressing over staged indexes (+1; 0 = empty) */
	size_t tcap = 16;
	while (tcap < a->n * 2)
		tcap *= 2;
	size_t *tab = ward_xcalloc(tcap, sizeof(*tab));
	for (size_t i = 0; i < a->n; i++) {
		struct staged *s = &a->v[i];
		if (s->ref) { /* pinned since tsdb_append: still there */
			ser[i] = head_by_ref(&db->head, s->ref);
			refs[i] = s->ref;
			continue;
		}
		if (s->same_as) { /* a later sample of a series staged just before */
			refs[i] = refs[s->same_as - 1];
			ser[i] = ser[s->same_as - 1];
			continue;
		}
		ser[i] = head_by_labels(&db->head, &s->ls, s->hash);
		if (ser[i]) {
			refs[i] = ser[i]->ref;
			continue;
		}
		size_t k = s->hash & (tcap - 1);
		while (tab[k] && !(a->v[tab[k] - 1].hash == s->hash &&
		                   labels_equal(&a->v[tab[k] - 1].ls, &s->ls)))
			k = (k + 1) & (tcap - 1);
		if (tab[k]) {
			refs[i] = refs[tab[k] - 1];
			continue;
		}
		tab[k] = i + 1;
		refs[i] = next++;
		newof[nnew++] = i;
		buf_reset(&rec);
		tsdb_buf_uvarint(&rec, refs[i]);
		tsdb_buf_labels(&rec, &s->ls);
		wal_frame(&out, WAL_REC_SERIES, rec.data, rec.len);
	}
	free(tab);
	if (a->n) {
		buf_reset(&rec);
		tsdb_buf_uvarint(&rec, a->n);
		int64_t prev = 0;
		for (size_t i = 0; i < a->n; i++) {
			tsdb_buf_uvarint(&rec, refs[i]);
			tsdb_buf_varint(&rec, (int64_t)((uint64_t)a->v[i].t - (uint64_t)prev));
			tsdb_buf_u64(&rec, tsdb_dbits(a->v[i].v));
			prev = a->v[i].t;
		}
		wal_frame(&out, WAL_REC_SAMPLES, rec.data, rec.len);
		if (wal_write(&db->wal, out.data, out.len, db->o.fsync == TSDB_FSYNC_ALWAYS, err) <
		    0)
			goto out;
	}
	if (nnew)
		pthread_rwlock_wrlock(&db->series_lock);
	for (size_t j = 0; j < nnew; j++) {
		size_t i = newof[j];
		ser[i] = head_create(&db->head, refs[i], &a->v[i].ls, a->v[i].hash);
	}
	if (nnew)
		pthread_rwlock_unlock(&db->series_lock);
	for (size_t i = 0; i < a->n; i++) {
		if (!ser[i])
			ser[i] = head_by_ref(&db->head, refs[i]);
		switch (head_append(&db->head, ser[i], a->v[i].t, a->v[i].v, db->o.ooo_window_ms)) {
		case HEAD_OK:
			db->appended_total++;
			break;
		case HEAD_TOO_OLD:
			db->rejected_too_old++;
			rej++;
			break;
		case HEAD_DUPLICATE:
			db->rejected_duplicate++;
			rej++;
			break;
		case HEAD_IGNORED:
			break;
		}
	}
	if (rejected)
		*rejected = rej;
	rc = 0;
out:
	pthread_rwlock_unlock(&db->lock);
	free(ser);
	free(refs);
	free(newof);
	buf_free(&out);
	buf_free(&rec);
	tsdb_rollback(a);
	return rc;
}

/* ---- reading ---- */
struct cand {
	const struct labels *ls;
	int src; /* block index, or -1 for the head */
	uint32_t ref;
	const struct head_series *hs;
};

static int cand_cmp(const void *a, const void *b) {
	const struct cand *x = a, *y = b;
	int c = labels_cmp(x->ls, y->ls);
	if (c)
		return c;
	/* blocks in list order (older first), the head last: later wins on equal times */
	int xs = x->src < 0 ? INT32_MAX : x->src, ys = y->src < 0 ? INT32_MAX : y->src;
	return xs < ys ? -1 : xs > ys;
}

/* Which blocks a query reads: res is the downsampled resolution used (0 raw). */
static bool block_used(const struct tsdb *db, const struct tsdb_block *b, int64_t res, int64_t mint,
                       int64_t maxt) {
	if (b->maxt < mint || b->mint > maxt)
		return false;
	if (b->resolution_ms == res)
		return true;
	if (b->resolution_ms != 0)
		return false;
	/* a raw block is skipped only where the chosen resolution covers it entirely */
	return res == 0 || !blocks_covered(&db->blocks, res, b->mint, b->maxt);
}

static int64_t pick_resolution(const struct tsdb *db, int64_t mint, int64_t maxt, int64_t step_ms) {
	if (step_ms <= 0 || maxt < mint)
		return 0;
	uint64_t range = (uint64_t)maxt - (uint64_t)mint;
	if (step_ms >= DS1H_MIN_STEP_MS && range >= (uint64_t)DS1H_MIN_RANGE_MS)
		return 3600000;
	if (step_ms >= DS5M_MIN_STEP_MS && range >= (uint64_t)DS5M_MIN_RANGE_MS)
		return 300000;
	(void)db;
	return 0;
}

static struct cand *collect(struct tsdb *db, int64_t mint, int64_t maxt, int64_t res,
                            const struct matcher *ms, size_t nms, size_t *ncand) {
	struct cand *c = NULL;
	size_t n = 0, cap = 0;
	uint32_t *refs;
	size_t nrefs;

	for (int src = -1; src < (int)db->blocks.n; src++) {
		const struct tsdb_index *idx;
		if (src >= 0) {
			struct tsdb_block *b = db->blocks.v[src];
			if (!block_used(db, b, res, mint, maxt))
				continue;
			idx = &b->idx;
		} else {
			if (db->head.nseries == 0 || db->head.maxt < mint || db->head.mint > maxt)
				continue;
			idx = &db->head.idx;
		}
		idx_select(idx, ms, nms, &refs, &nrefs);
		for (size_t i = 0; i < nrefs; i++) {
			struct cand e = {NULL, src, refs[i], NULL};
			if (src < 0) {
				e.hs = head_by_ref(&db->head, refs[i]);
				if (!e.hs || !head_series_overlaps(e.hs, mint, maxt))
					continue;
				e.ls = &e.hs->ls;
			} else {
				struct tsdb_block *b = db->blocks.v[src];
				if (refs[i] >= b->nseries ||
				    !block_series_overlaps(b, refs[i], mint, maxt))
					continue;
				e.ls = &b->series[refs[i]].ls;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				c = ward_xrealloc(c, cap * sizeof(*c));
			}
			c[n++] = e;
		}
		free(refs);
	}
	if (n)
		qsort(c, n, sizeof(*c), cand_cmp);
	*ncand = n;
	return c;
}

void tsdb_series_free(struct tsdb_series *s, size_t n) {
	for (size_t i = 0; s && i < n; i++) {
		labels_free(&s[i].labels);
		free(s[i].t);
		free(s[i].v);
		s[i].t = NULL;
		s[i].v = NULL;
		s[i].n = 0;
	}
}

int tsdb_select(struct tsdb *db, int64_t mint, int64_t maxt, const struct matcher *ms, size_t nms,
                int64_t step_hint_ms, size_t max_samples, struct tsdb_series **out, size_t *n,
                struct ward_err *err) {
	struct tsdb_series *res = NULL;
	size_t nres = 0, total = 0, nc;
	int rc = -1;

	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&db->lock);
	int64_t resol = pick_resolution(db, mint, maxt, step_hint_ms);
	struct cand *c = collect(db, mint, maxt, resol, ms, nms, &nc);
	res = ward_xcalloc(nc ? nc : 1, sizeof(*res));
	for (size_t i = 0; i < nc;) {
		size_t j = i;
		struct tsdb_svec sv = {0};
		for (; j < nc && labels_equal(c[j].ls, c[i].ls); j++) {
			if (c[j].src < 0) {
				head_series_read(c[j].hs, mint, maxt, &sv);
			} else {
				struct tsdb_block *b = db->blocks.v[c[j].src];
				uint8_t col = b->resolution_ms ? COL_LAST : COL_RAW;
				if (block_series_read(b, c[j].ref, col, mint, maxt, &sv) < 0) {
					ward_err_set(err,
					             "tsdb: block %s has a damaged chunk; run "
					             "maintenance or restore the block",
					             b->dir);
					svec_free(&sv);
					goto out;
				}
			}
		}
		svec_sort_dedup(&sv);
		if (sv.n) {
			total += sv.n;
			if (max_samples > 0 && total > max_samples) {
				ward_err_set(err, "query would load more than %zu samples",
				             max_samples);
				svec_free(&sv);
				goto out;
			}
			labels_init(&res[nres].labels);
			labels_copy(&res[nres].labels, c[i].ls);
			res[nres].t = sv.t;
			res[nres].v = sv.v;
			res[nres].n = sv.n;
			nres++;
		} else {
			svec_free(&sv);
		}
		i = j;
	}
	rc = 0;
out:
	pthread_rwlock_unlock(&db->lock);
	free(c);
	if (rc < 0) {
		tsdb_series_free(res, nres);
		free(res);
		return -1;
	}
	*out = res;
	*n = nres;
	return 0;
}

int tsdb_series_labels(struct tsdb *db, int64_t mint, int64_t maxt, const struct matcher *ms,
                       size_t nms, struct labels **out, size_t *n) {
	size_t nc, k = 0;

	pthread_rwlock_rdlock(&db->lock);
	struct cand *c = collect(db, mint, maxt, 0, ms, nms, &nc);
	struct labels *res = ward_xcalloc(nc ? nc : 1, sizeof(*res));
	for (size_t i = 0; i < nc; i++) {
		if (i && labels_equal(c[i].ls, c[i - 1].ls))
			continue;
		labels_init(&res[k]);
		labels_copy(&res[k++], c[i].ls);
	}
	pthread_rwlock_unlock(&db->lock);
	free(c);
	*out = res;
	*n = k;
	return 0;
}

/* ---- snapshots ---- */
static int link_or_copy(const char *from, const char *to, struct ward_err *err) {
	if (link(from, to) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
		ward_err_set(err, "tsdb snapshot: cannot link %s to %s: %s", from, to,
		             strerror(errno));
		return -1;
	}
	return ward_copy_file(from, to, 0600, err);
}

/* Links every regular file of src (recursively) under dst, which is created. */
static int link_tree(const char *src, const char *dst, struct ward_err *err) {
	DIR *d = opendir(src);
	struct dirent *de;
	int rc = 0;

	if (!d || mkdir(dst, 0700) < 0) {
		ward_err_set(err, "tsdb snapshot: cannot read %s or create %s: %s", src, dst,
		             strerror(errno));
		if (d)
			closedir(d);
		return -1;
	}
	while (rc == 0 && (de = readdir(d))) {
		char a[4096], b[4096];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(a, sizeof(a), "%s/%s", src, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
		if (lstat(a, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc = link_tree(a, b, err);
		else if (S_ISREG(st.st_mode))
			rc = link_or_copy(a, b, err);
	}
	closedir(d);
	return rc;
}

int tsdb_snapshot(struct tsdb *db, const char *dir, struct ward_err *err) {
	char path[4096], to[4096];
	int rc = -1;

	pthread_rwlock_wrlock(&db->lock);
	snprintf(path, sizeof(path), "%s/blocks", dir);
	if (ward_mkdir_p(path, 0700, err) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/wal", dir);
	if (ward_mkdir_p(path, 0700, err) < 0)
		goto out;
	if (wal_cut(&db->wal, err) < 0)
		goto out;
	for (size_t i = 0; i < db->blocks.n; i++) {
		const struct tsdb_block *b = db->blocks.v[i];
		const char *base = strrchr(b->dir, '/');
		snprintf(to, sizeof(to), "%s/blocks/%s", dir, base ? base + 1 : b->dir);
		if (link_tree(b->dir, to, err) < 0)
			goto out;
	}
	DIR *d = opendir(db->wal.dir);
	struct dirent *de;
	if (!d) {
		ward_err_set(err, "tsdb snapshot: cannot read %s: %s", db->wal.dir, strerror(errno));
		goto out;
	}
	rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		char *end;
		unsigned long seg = strtoul(de->d_name, &end, 10);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || seg >= db->wal.seg)
			continue; /* the new, empty segment is not part of the copy */
		snprintf(path, sizeof(path), "%s/%s", db->wal.dir, de->d_name);
		snprintf(to, sizeof(to), "%s/wal/%s", dir, de->d_name);
		rc = link_or_copy(path, to, err);
	}
	closedir(d);
out:
	pthread_rwlock_unlock(&db->lock);
	return rc;
}

static int str_cmp(const void *a, const void *b) {
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Collects names (name NULL) or the values of name, sorted and unique. */
static int label_strings(struct tsdb *db, const char *name, int64_t mint, int64_t maxt,
                         const struct matcher *ms, size_t nms, char ***out, size_t *n) {
	size_t nc, k = 0, cap = 0;
	const char **v = NULL;

	pthread_rwlock_rdlock(&db->lock);
	struct cand *c = collect(db, mint, maxt, 0, ms, nms, &nc);
	for (size_t i = 0; i < nc; i++) {
		for (size_t j = 0; j < c[i].ls->n; j++) {
			const struct label *l = &c[i].ls->v[j];
			if (name && strcmp(l->name, name) != 0)
				continue;
			if (k == cap) {
				cap = cap ? cap * 2 : 64;
				v = ward_xrealloc(v, cap * sizeof(*v));
			}
			v[k++] = name ? l->value : l->name;
		}
	}
	if (k)
		qsort(v, k, sizeof(*v), str_cmp);
	char **res = ward_xcalloc(k ? k : 1, sizeof(*res));
	size_t m = 0;
	for (size_t i = 0; i < k; i++)
		if (m == 0 || strcmp(res[m - 1], v[i]) != 0)
			res[m++] = ward_strdup(v[i]);
	pthread_rwlock_unlock(&db->lock);
	free(v);
	free(c);
	*out = res;
	*n = m;
	return 0;
}

int tsdb_label_names(struct tsdb *db, int64_t mint, int64_t maxt, const struct matcher *ms,
                     size_t nms, char ***out, size_t *n, struct ward_err *err) {
	(void)err;
	return label_strings(db, NULL, mint, maxt, ms, nms, out, n);
}

int tsdb_label_values(struct tsdb *db, const char *name, int64_t mint, int64_t maxt,
                      const struct matcher *ms, size_t nms, char ***out, size_t *n,
                      struct ward_err *err) {
	if (!name || !name[0]) {
		ward_err_set(err, "tsdb: label_values needs a label name");
		return -1;
	}
	return label_strings(db, name, mint, maxt, ms, nms, out, n);
}

void tsdb_strings_free(char **v, size_t n) {
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- maintenance ---- */
static int i64_cmp(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Writes head samples older than boundary into blocks aligned to block_duration, then
 * keeps only the newer samples in the head and checkpoints the WAL. */
static int cut_head(struct tsdb *db, int64_t boundary, struct ward_err *err) {
	int64_t d = db->o.block_duration_ms;
	size_t n;
	struct head_series **ss = head_sorted(&db->head, &n);
	struct tsdb_svec sv = {0};
	int64_t *ranges = NULL; /* aligned ranges holding data: sparse data makes few blocks */
	size_t nr = 0, capr = 0;
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		sv.n = 0;
		head_series_read(ss[i], INT64_MIN, boundary - 1, &sv);
		for (size_t k = 0; k < sv.n; k++) {
			int64_t lo = tsdb_align(sv.t[k], d);
			if (nr && ranges[nr - 1] == lo)
				continue;
			if (nr == capr) {
				capr = capr ? capr * 2 : 16;
				ranges = ward_xrealloc(ranges, capr * sizeof(*ranges));
			}
			ranges[nr++] = lo;
		}
	}
	if (nr)
		qsort(ranges, nr, sizeof(*ranges), i64_cmp);
	for (size_t r = 0; r < nr; r++) {
		if (r > 0 && ranges[r] == ranges[r - 1])
			continue;
		int64_t lo = ranges[r], hi = tsdb_sat_add(lo, d - 1);
		if (hi > boundary - 1)
			hi = boundary - 1;
		struct block_writer *bw = bw_new(db->dir, err);
		char ulid[27];
		if (!bw)
			goto out;
		for (size_t i = 0; i < n; i++) {
			sv.n = 0;
			head_series_read(ss[i], lo, hi, &sv);
			const double *cols[COL_N] = {sv.v};
			if (bw_add(bw, &ss[i]->ls, sv.t, cols, sv.n, err) < 0) {
				bw_abort(bw);
				goto out;
			}
		}
		if (bw_finish(bw, NULL, ulid, err) < 0)
			goto out;
		if (ulid[0]) {
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s/%s", db->blocksdir, ulid);
			struct tsdb_block *b = block_open(dir, err);
			if (!b)
				goto out;
			blocks_add(&db->blocks, b);
		}
	}
	/* Rebuild every series from its samples at or after the boundary. */
	for (size_t i = 0; i < n; i++) {
		struct head_series *s = ss[i];
		sv.n = 0;
		head_series_read(s, boundary, INT64_MAX, &sv);
		if (sv.n == 0) {
			/* an appender may hold its ref: then it stays, empty, until next time */
			pthread_rwlock_wrlock(&db->series_lock);
			bool pinned = atomic_load(&db->pins) != 0;
			if (!pinned)
				head_remove(&db->head, s);
			pthread_rwlock_unlock(&db->series_lock);
			if (!pinned)
				continue;
		}
		for (uint32_t k = 0; k < s->nchunks; k++)
			free(s->chunks[k].data);
		free(s->chunks);
		s->chunks = NULL;
		s->nchunks = s->capchunks = 0;
		gorilla_enc_free(&s->open);
		free(s->ooo);
		s->ooo = NULL;
		s->nooo = s->capooo = 0;
		s->maxt = INT64_MIN;
		for (size_t k = 0; k < sv.n; k++)
			head_append(&db->head, s, sv.t[k], sv.v[k], 0);
	}
	head_recount(&db->head);
	rc = checkpoint(db, err);
out:
	free(ranges);
	free(ss);
	svec_free(&sv);
	return rc;
}

int tsdb_maintain(struct tsdb *db, bool force, struct ward_err *err) {
	int64_t d = db->o.block_duration_ms;
	int rc = 0;

	pthread_rwlock_wrlock(&db->lock);
	if (db->head.nseries && db->head.maxt != INT64_MIN) {
		int64_t boundary = INT64_MIN;
		if (force)
			boundary = db->head.maxt == INT64_MAX ? INT64_MAX : db->head.maxt + 1;
		else if ((uint64_t)db->head.maxt - (uint64_t)db->head.mint >= (uint64_t)(d + d / 2))
			boundary = tsdb_align(tsdb_sat_add(db->head.maxt, -d / 2), d);
		if (boundary != INT64_MIN && boundary > db->head.mint)
			rc = cut_head(db, boundary, err);
	}
	int64_t db_maxt = db->head.maxt;
	for (size_t i = 0; i < db->blocks.n; i++)
		if (db->blocks.v[i]->maxt > db_maxt)
			db_maxt = db->blocks.v[i]->maxt;
	if (rc == 0)
		rc = compact_run(db->dir, &db->blocks, &db->o, db_maxt, force, &db->quarantined,
		                 err);
	pthread_rwlock_unlock(&db->lock);
	return rc;
}

void tsdb_stats(struct tsdb *db, struct tsdb_stats *out) {
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&db->lock);
	out->series = db->head.nseries;
	out->head_samples = db->head.samples;
	out->head_chunks = db->head.chunks;
	out->head_bytes = db->head.bytes + (int64_t)idx_bytes(&db->head.idx);
	out->head_mint = db->head.nseries ? db->head.mint : 0;
	out->head_maxt = db->head.nseries ? db->head.maxt : 0;
	out->min_time = db->head.nseries ? db->head.mint : INT64_MAX;
	out->max_time = db->head.nseries ? db->head.maxt : INT64_MIN;
	out->blocks = db->blocks.n;
	for (size_t i = 0; i < db->blocks.n; i++) {
		struct tsdb_block *b = db->blocks.v[i];
		if (b->resolution_ms == 0)
			out->block_samples += b->nsamples;
		out->block_bytes += b->bytes;
		if (b->mint < out->min_time)
			out->min_time = b->mint;
		if (b->maxt > out->max_time)
			out->max_time = b->maxt;
	}
	if (out->min_time == INT64_MAX)
		out->min_time = out->max_time = 0;
	out->wal_bytes = db->wal.bytes;
	out->appended_total = db->appended_total;
	out->rejected_too_old = db->rejected_too_old;
	out->rejected_duplicate = db->rejected_duplicate;
	out->quarantined = db->quarantined;
	pthread_rwlock_unlock(&db->lock);
}
