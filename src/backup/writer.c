/* writer.c: storing blobs. Chunks and trees are queued to writer threads that hash, compress
 * and seal them straight into the open pack; pack threads write full packs, give their
 * buffers back, then make them durable and write their index files; backup_flush merges
 * what was written into the in-memory index. A pack is durable before an index file names
 * it: a crash leaves at most unindexed packs, which prune deletes. Used by archive.c (and
 * maint.c's repack through put_blob); the invariants of each part are stated where it is.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "backup/backup_internal.h"

#define PACK_HEADER_AD "ward-pack-header"

/* ---- writing ----
 * Two ways in, both on the caller's thread: put_blob (trees, repacked blobs) comes with its
 * id and checks for duplicates at once; put_data (file chunks) only copies the chunk into a
 * job and takes a ticket, and a writer thread computes the id (the repository's keyed hash,
 * the costliest step after zstd), stores it under the ticket and decides whether the chunk
 * is new. So the caller's thread only reads and cuts; hashing, compression and sealing of
 * several chunks run on the writer threads at once. Tickets finish out of order; ids_low is
 * the mark below which every ticket has its id, so the caller can take the ids it needs as
 * they come (backup_data_ready) instead of draining the pipeline (backup_data_wait).
 * Writer threads reserve room in the open pack of their type (under w->mu), seal their
 * blob into it without the lock, and the last writer into a full pack hands it to a pack
 * thread, which writes and fsyncs it and its index file (outside the lock), so the disk
 * never stalls hashing and compression. Finished
 * packs wait in w->done until backup_flush merges them into r->idx on the caller's thread,
 * so r->idx is only written by one thread, and only while no writer runs (the writers read
 * it); until then r->pending (under w->mu) answers "already stored?" for the ids in flight. */
struct bjob {
	struct bjob *next;
	uint8_t type;
	bool hash;       /* a data chunk of put_data: the writer computes id */
	uint64_t ticket; /* put_data's ticket: the id goes to w->ids[ticket - w->ids_base] */
	uint8_t id[BACKUP_ID_LEN];
	size_t n;
	uint8_t data[];
};

struct bdone {
	struct bdone *next;
	struct backup_index_pack ip;
	char index_name[BACKUP_HEX_LEN];
};

/* A pack being filled. A writer reserves room for its sealed blob and writes the blob's
 * entry under w->mu, then seals the blob into it without the lock (busy counts such writes
 * in progress), so writers never queue behind each other. A closed pack takes no more
 * reservations; whoever ends its last write (or closes it idle) hands it to a pack thread. */
struct wpack {
	struct wpack *next; /* in the pack threads' queue */
	struct backup_packer pk;
	int busy;
	bool closed;
	uint8_t type;
};

/* Data packs alive at once, at most: the one filling and the ones the pack threads write
 * (with their pages, about 17 MiB each, the bulk of a backup's memory); a writer that
 * needs a new pack waits. Written packs' buffers are kept for reuse only within this
 * bound, so keeping them costs no memory at the peak. */
#define LIVE_DATA (IO_PACKS + 1)
#define SPARE_BUFS 1

/* Packs handed to the pack threads and not yet written, at most (two, because writing
 * one takes longer than filling one with incompressible data); with the one filling, three
 * packs are in memory at most. A pack thread gives its pack's buffer back once the bytes
 * are written and then waits for the disk's flushes (the pack's fsync, its directory's,
 * then its index file's): IO_THREADS of them, so the flushes of several packs overlap
 * while the buffers are already being filled again. */
#define IO_PACKS   2
#define IO_THREADS 6

/* Chunks queued but not yet sealed, at most: bounds memory while a disk is slow. */
#define WRITER_QUEUE_BYTES (16u * 1024 * 1024)

struct backup_writer {
	pthread_t th[BACKUP_WRITER_THREADS];
	int nth;
	pthread_mutex_t mu; /* guards everything below, r->pending and r->data_added* */
	pthread_cond_t cv_work, cv_space, cv_ids;
	struct bjob *head, *tail;
	size_t queued;
	bool stop;
	struct wpack *open[2]; /* the pack filling, per blob type, or NULL */
	/* Pack buffers written and kept for the next pack: their pages stay mapped, so a new
	 * pack does not fault in and zero 16 MiB again. At most SPARE_BUFS. */
	char *spare[SPARE_BUFS];
	int nspare;
	int live_data; /* data packs alive (filling, closed or being written): <= LIVE_DATA */
	/* Full packs wait here for the pack threads, which write and fsync them (and their
	 * index files), so the workers never block on the disk. in_io counts the packs handed
	 * over and not yet written: at most IO_PACKS. */
	pthread_t io[IO_THREADS];
	int nio;
	bool io_stop;
	pthread_cond_t cv_io, cv_io_space;
	struct wpack *io_head, *io_tail;
	size_t in_io;
	struct bdone *done;
	int rc;
	struct ward_err err;
	uint64_t stored;
	/* The ids of put_data's tickets from ids_base (the first the caller still needs) to
	 * ids_next (the next to give out), at ids[ticket - ids_base]; have[] marks the ones
	 * known (or dropped after a failure), and every ticket below ids_low is. */
	uint8_t (*ids)[BACKUP_ID_LEN];
	uint8_t *have;
	size_t ids_cap;
	uint64_t ids_base, ids_next, ids_low;
	struct backup_repo *r; /* read-only from the threads: keys, backend, level, idx */
};

/* Seals the header behind the blobs, names the pack by its content and puts it in place,
 * not yet durable (pack_commit makes it so). Any thread. */
static int pack_put(struct backup_repo *r, struct backup_packer *pk, char name[BACKUP_HEX_LEN],
                    bool sync, struct ward_err *err) {
	struct buf hdr = BUF_INIT;
	uint32_t hlen;
	uint8_t le[4];
	size_t before;
	int rc;

	backup_pack_header_encode(pk->e, pk->n, &hdr);
	before = pk->data.len;
	backup_seal(&r->enc_key, hdr.data, hdr.len, PACK_HEADER_AD, strlen(PACK_HEADER_AD),
	            &pk->data);
	hlen = (uint32_t)(pk->data.len - before);
	for (int i = 0; i < 4; i++)
		le[i] = (uint8_t)(hlen >> (8 * i));
	buf_append(&pk->data, le, 4);
	backup_content_name(r, pk->data.data, pk->data.len, name);
	if (!sync && r->be->write_nosync)
		rc = r->be->write_nosync(r->be, BACKUP_FT_DATA, name, pk->data.data, pk->data.len,
		                         err);
	else
		rc = r->be->write(r->be, BACKUP_FT_DATA, name, pk->data.data, pk->data.len, err);
	buf_free(&hdr);
	return rc;
}

/* Makes a pack put by pack_put durable, then writes its index file (so an index never
 * names a pack that a crash could take away); takes the n entries e into d. */
static int pack_commit(struct backup_repo *r, const char name[BACKUP_HEX_LEN], bool synced,
                       struct backup_pack_entry *e, size_t n, struct bdone *d,
                       struct ward_err *err) {
	struct buf idx = BUF_INIT;
	int rc = 0;

	if (!synced && r->be->sync)
		rc = r->be->sync(r->be, BACKUP_FT_DATA, name, err);
	ward_unhex(name, 2 * BACKUP_ID_LEN, d->ip.id, BACKUP_ID_LEN);
	d->ip.e = e;
	d->ip.n = n;
	if (rc == 0) {
		backup_index_encode(&d->ip, 1, &idx);
		rc = backup_write_sealed(r, BACKUP_FT_INDEX, &idx, d->index_name, err);
	}
	buf_free(&idx);
	return rc;
}

/* A pack buffer starts page-aligned with room for a whole pack, so backend_local can write
 * it around the page cache (it checks the alignment; a buffer that had to grow further is
 * written the ordinary way). Room never touched costs address space, not memory. */
#define PACK_ALIGN 4096u
#define PACK_ROOM  (BACKUP_PACK_TARGET + BACKUP_DEF_MAX + 1024u * 1024)

static void packer_drop(struct backup_packer *pk) {
	free(pk->e);
	buf_free(&pk->data);
	memset(pk, 0, sizeof(*pk));
}

/* Called with w->mu held: a new empty pack of the type with room for at least need bytes;
 * for a data pack, waits until fewer than LIVE_DATA are alive. */
static struct wpack *pack_new(struct backup_writer *w, uint8_t type, size_t need) {
	struct wpack *wp;
	size_t room = need + 1024u * 1024 > PACK_ROOM ? need + 1024u * 1024 : PACK_ROOM;
	void *p;

	if (type == BLOB_DATA) {
		while (w->live_data >= LIVE_DATA && !w->rc)
			pthread_cond_wait(&w->cv_io_space, &w->mu);
		w->live_data++;
	}
	wp = ward_xcalloc(1, sizeof(*wp));
	wp->type = type;
	if (type == BLOB_DATA && room == PACK_ROOM && w->nspare > 0) {
		p = w->spare[--w->nspare];
	} else if (posix_memalign(&p, PACK_ALIGN, room) != 0) {
		abort(); /* out of memory: as ward_xmalloc */
	}
	wp->pk.data.data = p;
	wp->pk.data.len = 0;
	wp->pk.data.cap = room;
	wp->pk.data.data[0] = '\0';
	return wp;
}

/* Called with w->mu held when a pack is written or dropped: keeps its buffer for the next
 * pack while that stays within LIVE_DATA buffers, else frees it; frees the rest. */
static void pack_gone(struct backup_writer *w, struct wpack *wp) {
	struct buf *b = &wp->pk.data;

	if (wp->type == BLOB_DATA)
		w->live_data--;
	if (wp->type == BLOB_DATA && b->cap == PACK_ROOM && (uintptr_t)b->data % PACK_ALIGN == 0 &&
	    w->nspare < SPARE_BUFS && w->live_data + w->nspare < LIVE_DATA) {
		w->spare[w->nspare++] = b->data;
		b->data = NULL;
	}
	packer_drop(&wp->pk);
	free(wp);
	pthread_cond_broadcast(&w->cv_io_space);
}

static bool pack_full(const struct backup_packer *pk) {
	return pk->data.len >= BACKUP_PACK_TARGET || pk->n >= BACKUP_MAX_PACK_BLOBS / 2;
}

/* Called with w->mu held by the pack thread that took wp off the queue; returns with it
 * held and wp gone. Puts wp in place unlocked, gives its buffer back (and its place in the
 * queue: another pack can be written meanwhile), then makes it durable and writes its index
 * file: the disk's flushes, not the buffers, are what waits. */
static void write_locked(struct backup_writer *w, struct wpack *wp) {
	struct bdone *d = ward_xcalloc(1, sizeof(*d));
	struct backup_pack_entry *e;
	char name[BACKUP_HEX_LEN];
	struct ward_err e2;
	size_t n;
	int rc;

	pthread_mutex_unlock(&w->mu);
	ward_err_clear(&e2);
	rc = pack_put(w->r, &wp->pk, name, false, &e2);
	pthread_mutex_lock(&w->mu);
	e = wp->pk.e;
	n = wp->pk.n;
	wp->pk.e = NULL;
	if (rc == 0)
		w->stored += wp->pk.data.len;
	pack_gone(w, wp);
	w->in_io--;
	pthread_cond_broadcast(&w->cv_io_space);
	if (rc == 0) {
		pthread_mutex_unlock(&w->mu);
		rc = pack_commit(w->r, name, false, e, n, d, &e2);
		pthread_mutex_lock(&w->mu);
		e = NULL; /* d's now */
	}
	if (rc == 0) {
		d->next = w->done;
		w->done = d;
	} else {
		free(e);
		free(d->ip.e);
		free(d);
		if (!w->rc) {
			w->rc = rc;
			w->err = e2;
		}
		pthread_cond_broadcast(&w->cv_space);
		pthread_cond_broadcast(&w->cv_ids);
		pthread_cond_broadcast(&w->cv_io_space);
	}
}


/* Called with w->mu held by the writer that closed wp or ended its last write: hands wp to
 * the pack threads once there is room in their queue (the writer waits meanwhile, so
 * memory stays bounded). */
static void hand_to_io(struct backup_writer *w, struct wpack *wp) {
	while (w->in_io >= IO_PACKS && !w->rc)
		pthread_cond_wait(&w->cv_io_space, &w->mu);
	if (w->rc) {
		pack_gone(w, wp); /* a pack write failed: the run is lost */
		return;
	}
	wp->next = NULL;
	if (w->io_tail)
		w->io_tail->next = wp;
	else
		w->io_head = wp;
	w->io_tail = wp;
	w->in_io++;
	pthread_cond_signal(&w->cv_io);
}

/* Called with w->mu held: takes wp out of filling; hands it over at once if no write into
 * it is in progress. */
static void pack_close(struct backup_writer *w, struct wpack *wp, int type) {
	wp->closed = true;
	if (w->open[type] == wp)
		w->open[type] = NULL;
	if (wp->busy == 0)
		hand_to_io(w, wp);
}

/* Called with w->mu held: reserves len bytes for a sealed blob in the filling pack of its
 * type, whose entry (all but the bytes) it writes; the caller writes the bytes into the
 * returned pack at *off and calls write_done. May wait for the pack threads. */
static struct wpack *pack_reserve(struct backup_writer *w, const struct bjob *j, uint8_t flags,
                                  size_t len, size_t *off) {
	struct wpack *wp;
	struct backup_pack_entry *e;

	for (;;) {
		wp = w->open[j->type];
		if (!wp) {
			wp = pack_new(w, j->type, len);
			/* another writer may have opened one while this one waited */
			if (w->open[j->type]) {
				pack_gone(w, wp);
				continue;
			}
			w->open[j->type] = wp;
			break;
		}
		if (wp->pk.data.len + len <= wp->pk.data.cap)
			break;
		pack_close(w, wp, j->type); /* full for this blob: it goes to the next pack */
	}
	if (wp->pk.n == wp->pk.cap) {
		wp->pk.cap = wp->pk.cap ? wp->pk.cap * 2 : 64;
		wp->pk.e = ward_xrealloc(wp->pk.e, wp->pk.cap * sizeof(*wp->pk.e));
	}
	e = &wp->pk.e[wp->pk.n++];
	e->type = j->type;
	e->flags = flags;
	memcpy(e->id, j->id, BACKUP_ID_LEN);
	e->offset = wp->pk.data.len;
	e->length = (uint32_t)len;
	e->raw_len = (uint32_t)j->n;
	*off = wp->pk.data.len;
	wp->pk.data.len += len;
	wp->busy++;
	if (pack_full(&wp->pk))
		pack_close(w, wp, j->type); /* busy: the write hands it over */
	return wp;
}

/* Called with w->mu held after a write into wp ended. */
static void write_done(struct backup_writer *w, struct wpack *wp) {
	if (--wp->busy == 0 && wp->closed)
		hand_to_io(w, wp);
}

/* A pack thread: writes full packs and their index files, one at a time. */
static void *io_main(void *arg) {
	struct backup_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct wpack *q;
		while (!w->io_head && !w->io_stop)
			pthread_cond_wait(&w->cv_io, &w->mu);
		if (!w->io_head)
			break;
		q = w->io_head;
		w->io_head = q->next;
		if (!w->io_head)
			w->io_tail = NULL;
		if (w->rc) {
			pack_gone(w, q);
			w->in_io--;
			pthread_cond_broadcast(&w->cv_io_space);
		} else {
			write_locked(w, q);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* The zstd level of one blob, as the repository config says: large_level for a data chunk
 * of at least the chunker's minimum, which only a large file (logs, dumps, images) yields,
 * level for the rest (whole small files, trees). Readers do not care: a frame is a frame. */
static int blob_level(const struct backup_repo *r, const struct bjob *j) {
	if (j->type == BLOB_DATA && j->n >= r->chunk_min)
		return r->zstd_large_level;
	return r->zstd_level;
}

/* Called with w->mu held after a data chunk's id is known (or the chunk is dropped). */
static void ticket_done(struct backup_writer *w, uint64_t ticket) {
	w->have[ticket - w->ids_base] = 1;
	while (w->ids_low < w->ids_next && w->have[w->ids_low - w->ids_base])
		w->ids_low++;
	if (w->ids_low == w->ids_next)
		pthread_cond_broadcast(&w->cv_ids);
}

static void *writer_main(void *arg) {
	struct backup_writer *w = arg;
	struct backup_repo *r = w->r;
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	struct buf z = BUF_INIT;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct bjob *j;
		struct wpack *wp;
		const void *plain;
		size_t plen, zb, off;
		uint8_t flags = 0;

		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cv_work, &w->mu);
		if (!w->head)
			break;
		j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		w->queued -= j->n;
		pthread_cond_broadcast(&w->cv_space);
		if (w->rc) {
			if (j->hash)
				ticket_done(w, j->ticket);
			free(j); /* a pack write failed: the run is lost, drain the queue */
			continue;
		}
		pthread_mutex_unlock(&w->mu);

		if (j->hash) {
			bool fresh;
			backup_blob_id(&r->id_key, j->data, j->n, j->id);
			pthread_mutex_lock(&w->mu);
			memcpy(w->ids[j->ticket - w->ids_base], j->id, BACKUP_ID_LEN);
			/* r->idx does not change while writers run; pending is ours. */
			fresh = !bindex_get(&r->idx, j->id) && idset_add(&r->pending, j->id);
			if (fresh) {
				r->data_added += j->n;
				r->data_added_blobs++;
			}
			ticket_done(w, j->ticket);
			if (!fresh) {
				free(j);
				continue;
			}
			pthread_mutex_unlock(&w->mu);
		}

		plain = j->data;
		plen = j->n;
		zb = ZSTD_compressBound(j->n);
		buf_reset(&z);
		buf_reserve(&z, zb + 1);
		{
			size_t zn = ZSTD_compressCCtx(zc, z.data, zb, j->data, j->n, blob_level(r, j));
			/* Keep the compressed form only when it saves something. */
			if (!ZSTD_isError(zn) && zn < j->n) {
				plain = z.data;
				plen = zn;
				flags = BLOB_F_ZSTD;
			}
		}
		pthread_mutex_lock(&w->mu);
		wp = pack_reserve(w, j, flags, plen + BACKUP_SEAL_OVERHEAD, &off);
		pthread_mutex_unlock(&w->mu);
		/* Sealed straight into the pack: its buffer never moves while busy, room was
		 * reserved up front. */
		backup_seal_to(&r->enc_key, plain, plen, j->id, BACKUP_ID_LEN,
		               (uint8_t *)wp->pk.data.data + off);
		free(j);
		pthread_mutex_lock(&w->mu);
		write_done(w, wp);
	}
	pthread_mutex_unlock(&w->mu);
	ZSTD_freeCCtx(zc);
	buf_free(&z);
	return NULL;
}

static int writer_start(struct backup_repo *r, struct ward_err *err) {
	struct backup_writer *w = ward_xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv_work, NULL);
	pthread_cond_init(&w->cv_space, NULL);
	pthread_cond_init(&w->cv_ids, NULL);
	pthread_cond_init(&w->cv_io, NULL);
	pthread_cond_init(&w->cv_io_space, NULL);
	w->r = r;
	r->w = w;
	for (int i = 0; i < IO_THREADS; i++) {
		if (pthread_create(&w->io[i], NULL, io_main, w) != 0)
			break;
		w->nio++;
	}
	if (w->nio == 0) {
		ward_err_set(err, "cannot start a pack thread");
		return BACKUP_ERR_IO;
	}
	for (int i = 0; i < BACKUP_WRITER_THREADS; i++) {
		if (pthread_create(&w->th[i], NULL, writer_main, w) != 0)
			break;
		w->nth++;
	}
	if (w->nth == 0) {
		ward_err_set(err, "cannot start a writer thread");
		return BACKUP_ERR_IO;
	}
	return 0;
}

/* Stops and joins the threads; leaves packs, done list and error in w. */
static void writer_join(struct backup_writer *w) {
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nth; i++)
		pthread_join(w->th[i], NULL);
	w->nth = 0;
	/* The workers are gone, so no pack joins the queue: the pack threads drain it. */
	pthread_mutex_lock(&w->mu);
	w->io_stop = true;
	pthread_cond_broadcast(&w->cv_io);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nio; i++)
		pthread_join(w->io[i], NULL);
	w->nio = 0;
}

void backup_writer_free(struct backup_repo *r) {
	struct backup_writer *w = r->w;
	if (!w)
		return;
	writer_join(w);
	while (w->head) {
		struct bjob *j = w->head;
		w->head = j->next;
		free(j);
	}
	while (w->done) {
		struct bdone *d = w->done;
		w->done = d->next;
		free(d->ip.e);
		free(d);
	}
	for (int i = 0; i < 2; i++)
		if (w->open[i]) {
			packer_drop(&w->open[i]->pk);
			free(w->open[i]);
		}
	for (int i = 0; i < w->nspare; i++)
		free(w->spare[i]);
	while (w->io_head) {
		struct wpack *q = w->io_head;
		w->io_head = q->next;
		packer_drop(&q->pk);
		free(q);
	}
	free(w->ids);
	free(w->have);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv_work);
	pthread_cond_destroy(&w->cv_space);
	pthread_cond_destroy(&w->cv_ids);
	pthread_cond_destroy(&w->cv_io);
	pthread_cond_destroy(&w->cv_io_space);
	free(w);
	r->w = NULL;
}

int backup_flush(struct backup_repo *r, struct ward_err *err) {
	struct backup_writer *w = r->w;
	int rc = 0;

	if (!w)
		return 0;
	writer_join(w);
	/* The threads are gone: the rest runs on this thread without the lock. */
	for (int i = 0; i < 2 && !w->rc; i++)
		if (w->open[i] && w->open[i]->pk.n) {
			struct backup_packer *pk = &w->open[i]->pk;
			struct bdone *d = ward_xcalloc(1, sizeof(*d));
			char name[BACKUP_HEX_LEN];
			struct ward_err e2;
			ward_err_clear(&e2);
			w->rc = pack_put(r, pk, name, true, &e2);
			if (w->rc == 0) {
				w->rc = pack_commit(r, name, true, pk->e, pk->n, d, &e2);
				pk->e = NULL; /* d's now */
				pk->n = pk->cap = 0;
			}
			if (w->rc) {
				w->err = e2;
				free(d->ip.e);
				free(d);
			} else {
				w->stored += pk->data.len;
				d->next = w->done;
				w->done = d;
			}
		}
	while (w->done) {
		struct bdone *d = w->done;
		uint32_t pi = bindex_pack(&r->idx, d->ip.id);
		for (size_t i = 0; i < d->ip.n; i++)
			bindex_add(&r->idx, pi, &d->ip.e[i]);
		r->written_index =
		        ward_xrealloc(r->written_index, (r->nwritten_index + 1) * sizeof(char *));
		r->written_index[r->nwritten_index++] = ward_strdup(d->index_name);
		w->done = d->next;
		free(d->ip.e);
		free(d);
	}
	r->bytes_stored += w->stored;
	w->stored = 0;
	if (w->rc) {
		ward_err_set(err, "%s", w->err.msg);
		rc = w->rc;
	}
	backup_writer_free(r);
	idset_free(&r->pending);
	idset_init(&r->pending);
	backup_lock_refresh(r);
	return rc;
}

static struct bjob *job_new(enum backup_blob_type type, const void *p, size_t n) {
	struct bjob *j = ward_xmalloc(sizeof(*j) + n);
	j->next = NULL;
	j->type = (uint8_t)type;
	j->hash = false;
	j->ticket = 0;
	j->n = n;
	if (n)
		memcpy(j->data, p, n);
	return j;
}

/* Called with w->mu held: waits for room, then queues j (or frees it after a failure). */
static int enqueue_locked(struct backup_writer *w, struct bjob *j, struct ward_err *err) {
	while (w->queued > 0 && w->queued + j->n > WRITER_QUEUE_BYTES && !w->rc)
		pthread_cond_wait(&w->cv_space, &w->mu);
	if (w->rc) {
		ward_err_set(err, "%s", w->err.msg);
		free(j);
		return w->rc;
	}
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued += j->n;
	pthread_cond_signal(&w->cv_work);
	return 0;
}

int backup_put_blob(struct backup_repo *r, enum backup_blob_type type, const void *p, size_t n,
                    const uint8_t id[BACKUP_ID_LEN], bool *added, struct ward_err *err) {
	struct backup_writer *w;
	struct bjob *j;
	bool fresh;
	int rc = 0;

	*added = false;
	backup_lock_refresh(r); /* a cheap clock check; rewrites the lock every 5 minutes */
	if (bindex_get(&r->idx, id))
		return 0;
	if (!r->w && (rc = writer_start(r, err)) != 0)
		return rc;
	w = r->w;
	pthread_mutex_lock(&w->mu);
	fresh = idset_add(&r->pending, id);
	pthread_mutex_unlock(&w->mu);
	if (!fresh)
		return 0;
	j = job_new(type, p, n);
	memcpy(j->id, id, BACKUP_ID_LEN);
	pthread_mutex_lock(&w->mu);
	rc = enqueue_locked(w, j, err);
	pthread_mutex_unlock(&w->mu);
	if (rc == 0)
		*added = true;
	return rc;
}

int backup_put_data(struct backup_repo *r, const void *p, size_t n, uint64_t *ticket,
                    struct ward_err *err) {
	struct backup_writer *w;
	struct bjob *j;
	int rc;

	backup_lock_refresh(r);
	if (!r->w && (rc = writer_start(r, err)) != 0)
		return rc;
	w = r->w;
	j = job_new(BLOB_DATA, p, n);
	j->hash = true;
	pthread_mutex_lock(&w->mu);
	if (w->ids_next - w->ids_base == w->ids_cap) {
		w->ids_cap = w->ids_cap ? w->ids_cap * 2 : 256;
		w->ids = ward_xrealloc(w->ids, w->ids_cap * BACKUP_ID_LEN);
		w->have = ward_xrealloc(w->have, w->ids_cap);
	}
	j->ticket = w->ids_next;
	w->have[w->ids_next - w->ids_base] = 0;
	rc = enqueue_locked(w, j, err);
	if (rc == 0)
		*ticket = w->ids_next++;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static int data_mark(struct backup_repo *r, bool wait, uint64_t *ready, struct ward_err *err) {
	struct backup_writer *w = r->w;
	int rc = 0;

	*ready = UINT64_MAX; /* no writer: no ticket is outstanding */
	if (!w)
		return 0;
	pthread_mutex_lock(&w->mu);
	while (wait && w->ids_low != w->ids_next && !w->rc)
		pthread_cond_wait(&w->cv_ids, &w->mu);
	if (w->rc) {
		ward_err_set(err, "%s", w->err.msg);
		rc = w->rc;
	}
	*ready = w->ids_low;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void backup_data_added(struct backup_repo *r, uint64_t *bytes, uint64_t *blobs) {
	struct backup_writer *w = r->w;
	if (w)
		pthread_mutex_lock(&w->mu);
	*bytes = r->data_added;
	*blobs = r->data_added_blobs;
	if (w)
		pthread_mutex_unlock(&w->mu);
}

int backup_data_ready(struct backup_repo *r, uint64_t *ready, struct ward_err *err) {
	return data_mark(r, false, ready, err);
}

int backup_data_wait(struct backup_repo *r, uint64_t *ready, struct ward_err *err) {
	return data_mark(r, true, ready, err);
}

const uint8_t *backup_data_id(struct backup_repo *r, uint64_t ticket) {
	struct backup_writer *w = r->w;
	/* A ticket below the mark the caller was given is written and stays put: writers only
	 * write higher slots, and only this thread moves or grows the array. */
	if (!w || ticket < w->ids_base || ticket >= w->ids_next)
		abort(); /* broken invariant: a ticket released or never given out */
	return w->ids[ticket - w->ids_base];
}

void backup_data_release(struct backup_repo *r, uint64_t upto) {
	struct backup_writer *w = r->w;
	size_t drop, keep;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	if (upto > w->ids_low)
		upto = w->ids_low;
	drop = (size_t)(upto - w->ids_base);
	/* Slide the live part down once the dead part is half the array (amortised O(1)). */
	if (drop > 0 && (upto == w->ids_next || drop >= w->ids_cap / 2)) {
		keep = (size_t)(w->ids_next - upto);
		if (keep) {
			memmove(w->ids, w->ids + drop, keep * BACKUP_ID_LEN);
			memmove(w->have, w->have + drop, keep);
		}
		w->ids_base = upto;
	}
	pthread_mutex_unlock(&w->mu);
}
