/* blobs.c: the blob store on top of repo.c: the in-memory index loaded from the index files,
 * blobs read back (opened with their id as associated data, decompressed and, except for a
 * restore, hashed against their id), trees as blobs, and snapshots. Storing is writer.c's.
 * Used by archive.c, restore.c, maint.c.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "backup/backup_internal.h"

/* ---- index ---- */
int backup_load_index(struct backup_repo *r, bool tolerate, backup_check_fn fn, void *arg,
                      struct ward_err *err) {
	char **names = NULL;
	size_t nn = 0;
	struct buf plain = BUF_INIT;
	int rc;

	if (r->idx_loaded)
		return 0;
	rc = backup_list_names(r, BACKUP_FT_INDEX, &names, &nn, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < nn; i++) {
		struct backup_index_pack *packs = NULL;
		size_t np = 0;
		struct ward_err e2;
		ward_err_clear(&e2);
		rc = backup_read_sealed(r, BACKUP_FT_INDEX, names[i], &plain, &e2);
		if (rc == 0 && backup_index_decode((const uint8_t *)plain.data, plain.len, &packs,
		                                   &np, &e2) != 0)
			rc = BACKUP_ERR_CORRUPT;
		if (rc) {
			if (!tolerate) {
				ward_err_set(err, "index/%s: %s ('ward backup check' for details)",
				             names[i], e2.msg);
				goto out;
			}
			if (fn) {
				char msg[WARD_ERR_MAX + 128];
				snprintf(msg, sizeof(msg), "index/%s is damaged: %s", names[i],
				         e2.msg);
				fn("error", msg, arg);
			}
			rc = 0;
			continue;
		}
		for (size_t p = 0; p < np; p++) {
			uint32_t pi = bindex_pack(&r->idx, packs[p].id);
			for (size_t j = 0; j < packs[p].n; j++)
				bindex_add(&r->idx, pi, &packs[p].e[j]);
		}
		backup_index_packs_free(packs, np);
	}
	r->idx_loaded = true;
	r->index_files = names;
	r->nindex_files = nn;
	names = NULL;
	nn = 0;
	rc = 0;
out:
	backup_names_free(names, nn);
	buf_free(&plain);
	return rc;
}

/* ---- reading ---- */
/* Decrypts, decompresses and verifies one sealed blob with the given scratch state; safe
 * from any thread as long as zd and tmp belong to it (r is only read). */
static int decode_with(struct backup_repo *r, void **zd, struct buf *tmp,
                       const uint8_t id[BACKUP_ID_LEN], uint8_t flags, uint32_t raw_len,
                       const uint8_t *sealed, size_t n, bool rehash, struct buf *out,
                       struct ward_err *err) {
	uint8_t check[BACKUP_ID_LEN];
	char hex[BACKUP_HEX_LEN];

	ward_hex(id, BACKUP_ID_LEN, hex);
	buf_reset(out);
	if (flags & BLOB_F_ZSTD) {
		size_t z;
		buf_reset(tmp);
		if (backup_open_sealed(&r->enc_key, sealed, n, id, BACKUP_ID_LEN, tmp))
			goto forged;
		if (!*zd)
			*zd = ZSTD_createDCtx();
		buf_reserve(out, (size_t)raw_len + 1);
		z = ZSTD_decompressDCtx(*zd, out->data, raw_len, tmp->data, tmp->len);
		if (ZSTD_isError(z) || z != raw_len) {
			ward_err_set(err, "blob %s does not decompress: damaged", hex);
			return BACKUP_ERR_CORRUPT;
		}
		out->len = z;
		out->data[z] = '\0';
	} else {
		if (backup_open_sealed(&r->enc_key, sealed, n, id, BACKUP_ID_LEN, out))
			goto forged;
	}
	if (!rehash)
		return 0;
	backup_blob_id(&r->id_key, out->data, out->len, check);
	if (memcmp(check, id, BACKUP_ID_LEN) != 0) {
		ward_err_set(err, "blob %s does not hash to its id: damaged", hex);
		return BACKUP_ERR_CORRUPT;
	}
	return 0;
forged:
	ward_err_set(err, "blob %s fails authentication: its pack is damaged", hex);
	return BACKUP_ERR_CORRUPT;
}

int backup_decode_blob(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], uint8_t flags,
                       uint32_t raw_len, const uint8_t *sealed, size_t n, struct buf *out,
                       struct ward_err *err) {
	return decode_with(r, &r->zd, &r->scratch2, id, flags, raw_len, sealed, n, true, out, err);
}

static int get_with(struct backup_repo *r, void **zd, struct buf *tmp, struct buf *sealed,
                    const uint8_t id[BACKUP_ID_LEN], bool rehash, struct buf *out,
                    struct ward_err *err) {
	const struct bindex_ent *e = bindex_get(&r->idx, id);
	char pack[BACKUP_HEX_LEN], hex[BACKUP_HEX_LEN];
	int rc;

	if (!e) {
		ward_hex(id, BACKUP_ID_LEN, hex);
		ward_err_set(err,
		             "blob %s is not in the index: the repository is damaged "
		             "('ward backup check')",
		             hex);
		return BACKUP_ERR_NOTFOUND;
	}
	ward_hex(r->idx.packs[e->pack], BACKUP_ID_LEN, pack);
	rc = r->be->read(r->be, BACKUP_FT_DATA, pack, e->offset, e->length, sealed, err);
	if (rc == 0)
		rc = decode_with(r, zd, tmp, id, e->flags, e->raw_len,
		                 (const uint8_t *)sealed->data, sealed->len, rehash, out, err);
	return rc;
}

int backup_get_blob(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], struct buf *out,
                    struct ward_err *err) {
	struct buf sealed = BUF_INIT;
	int rc = get_with(r, &r->zd, &r->scratch2, &sealed, id, true, out, err);
	buf_free(&sealed);
	return rc;
}

struct backup_reader {
	void *zd;
	struct buf tmp, sealed;
};

struct backup_reader *backup_reader_new(void) {
	return ward_xcalloc(1, sizeof(struct backup_reader));
}

void backup_reader_free(struct backup_reader *rd) {
	if (!rd)
		return;
	ZSTD_freeDCtx(rd->zd);
	buf_free(&rd->tmp);
	buf_free(&rd->sealed);
	free(rd);
}

int backup_reader_get(struct backup_repo *r, struct backup_reader *rd,
                      const uint8_t id[BACKUP_ID_LEN], struct buf *out, struct ward_err *err) {
	/* A blob is sealed with its id as associated data, so one that opens is the one
	 * written for that id: a restore need not hash it again (check --read-data does,
	 * which also catches a writer that sealed other bytes than it hashed). */
	return get_with(r, &rd->zd, &rd->tmp, &rd->sealed, id, false, out, err);
}

/* ---- trees ---- */
void backup_prefetch(struct backup_repo *r, const uint8_t (*ids)[BACKUP_ID_LEN], size_t n) {
	char pack[BACKUP_HEX_LEN];
	uint32_t cur = UINT32_MAX;
	uint64_t off = 0, end = 0;

	if (!r->be->prefetch)
		return;
	/* A file's chunks mostly sit one after the other in one pack: one hint per run. */
	for (size_t i = 0; i <= n; i++) {
		const struct bindex_ent *e = i < n ? bindex_get(&r->idx, ids[i]) : NULL;
		if (i < n && !e)
			continue;
		if (e && e->pack == cur && e->offset >= off && e->offset <= end + (1u << 20)) {
			if (e->offset + e->length > end)
				end = e->offset + e->length;
			continue;
		}
		if (cur != UINT32_MAX) {
			ward_hex(r->idx.packs[cur], BACKUP_ID_LEN, pack);
			r->be->prefetch(r->be, BACKUP_FT_DATA, pack, off, (size_t)(end - off));
		}
		if (e) {
			cur = e->pack;
			off = e->offset;
			end = e->offset + e->length;
		}
	}
}

int backup_load_tree(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], struct backup_tree *t,
                     struct ward_err *err) {
	struct buf b = BUF_INIT;
	int rc = backup_get_blob(r, id, &b, err);
	if (rc == 0 && backup_tree_decode((const uint8_t *)b.data, b.len, t, err) != 0)
		rc = BACKUP_ERR_CORRUPT;
	buf_free(&b);
	return rc;
}

int backup_save_tree(struct backup_repo *r, const struct backup_tree *t,
                     uint8_t id_out[BACKUP_ID_LEN], struct ward_err *err) {
	struct buf b = BUF_INIT;
	bool added;
	int rc;
	backup_tree_encode(t, &b);
	backup_blob_id(&r->id_key, b.data, b.len, id_out);
	rc = backup_put_blob(r, BLOB_TREE, b.data, b.len, id_out, &added, err);
	buf_free(&b);
	return rc;
}

/* ---- snapshots ---- */
int backup_write_snapshot(struct backup_repo *r, struct backup_snapshot *s, struct ward_err *err) {
	struct buf b = BUF_INIT;
	int rc;
	backup_snapshot_encode(s, &b);
	rc = backup_write_sealed(r, BACKUP_FT_SNAPSHOT, &b, s->id, err);
	buf_free(&b);
	return rc;
}

void backup_snapshot_free(struct backup_snapshot *s) {
	if (!s)
		return;
	backup_snapshot_clear(s);
	free(s);
}

void backup_snapshots_free(struct backup_snapshot *v, size_t n) {
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		backup_snapshot_clear(&v[i]);
	free(v);
}

static int snap_cmp(const void *a, const void *b) {
	const struct backup_snapshot *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

int backup_snapshots(struct backup_repo *r, struct backup_snapshot **out, size_t *n,
                     struct ward_err *err) {
	char **names = NULL;
	size_t nn = 0, k = 0;
	struct buf plain = BUF_INIT;
	struct backup_snapshot *v;
	int rc = backup_list_names(r, BACKUP_FT_SNAPSHOT, &names, &nn, err);

	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	v = ward_xcalloc(nn ? nn : 1, sizeof(*v));
	for (size_t i = 0; i < nn; i++) {
		struct ward_err e2;
		rc = backup_read_sealed(r, BACKUP_FT_SNAPSHOT, names[i], &plain, err);
		if (rc == BACKUP_ERR_NOTFOUND)
			continue; /* removed by a concurrent forget */
		if (rc)
			goto fail;
		if (backup_snapshot_decode((const uint8_t *)plain.data, plain.len, &v[k], &e2)) {
			ward_err_set(err, "snapshots/%s: %s", names[i], e2.msg);
			rc = BACKUP_ERR_CORRUPT;
			goto fail;
		}
		snprintf(v[k].id, sizeof(v[k].id), "%s", names[i]);
		k++;
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), snap_cmp);
	*out = v;
	*n = k;
	backup_names_free(names, nn);
	buf_free(&plain);
	return 0;
fail:
	backup_snapshots_free(v, k);
	backup_names_free(names, nn);
	buf_free(&plain);
	return rc;
}

static void snapshot_copy(struct backup_snapshot *dst, const struct backup_snapshot *src) {
	*dst = *src;
	dst->host = ward_strdup(src->host);
	dst->user = ward_strdup(src->user);
	dst->job = src->job ? ward_strdup(src->job) : NULL;
	dst->paths = ward_xcalloc(src->npaths + 1, sizeof(char *));
	for (size_t i = 0; i < src->npaths; i++)
		dst->paths[i] = ward_strdup(src->paths[i]);
	dst->tags = ward_xcalloc(src->ntags + 1, sizeof(char *));
	for (size_t i = 0; i < src->ntags; i++)
		dst->tags[i] = ward_strdup(src->tags[i]);
	dst->unreadable = ward_xcalloc(src->nunreadable + 1, sizeof(char *));
	for (size_t i = 0; i < src->nunreadable; i++)
		dst->unreadable[i] = ward_strdup(src->unreadable[i]);
}

int backup_snapshot_find(struct backup_repo *r, const char *ref, const char *job,
                         struct backup_snapshot **out, struct ward_err *err) {
	struct backup_snapshot *v = NULL, *hit = NULL;
	size_t n = 0, hits = 0;
	int rc;

	*out = NULL;
	if (!ref || !ref[0]) {
		ward_err_set(err, "no snapshot given: use an id, an id prefix or \"latest\"");
		return BACKUP_ERR_USAGE;
	}
	rc = backup_snapshots(r, &v, &n, err);
	if (rc)
		return rc;
	if (strcmp(ref, "latest") == 0) {
		for (size_t i = n; i > 0 && !hit; i--)
			if (!job || ward_streq(v[i - 1].job, job))
				hit = &v[i - 1];
		hits = hit ? 1 : 0;
	} else {
		for (size_t i = 0; i < n; i++)
			if (ward_has_prefix(v[i].id, ref)) {
				hit = &v[i];
				hits++;
			}
	}
	if (hits != 1) {
		if (hits > 1)
			ward_err_set(err, "snapshot id \"%s\" is ambiguous: give more digits", ref);
		else if (strcmp(ref, "latest") == 0)
			ward_err_set(err, "the repository has no snapshot%s%s yet",
			             job ? " of job " : "", job ? job : "");
		else
			ward_err_set(err, "no snapshot \"%s\" ('ward backup snapshots' lists them)",
			             ref);
		rc = hits > 1 ? BACKUP_ERR_USAGE : BACKUP_ERR_NOTFOUND;
		goto out;
	}
	*out = ward_xcalloc(1, sizeof(**out));
	snapshot_copy(*out, hit);
out:
	backup_snapshots_free(v, n);
	return rc;
}

/* ---- progress ---- */
#define PROGRESS_EVERY_MS 250

void backup_progress_emit(struct backup_progress *p, int64_t start_ms, int64_t *last_ms, bool final,
                          backup_progress_fn fn, void *arg) {
	int64_t now;
	if (!fn)
		return;
	now = ward_mono_ms();
	if (!final && now - *last_ms < PROGRESS_EVERY_MS)
		return;
	*last_ms = now;
	p->elapsed_ms = now - start_ms;
	p->rate_bps =
	        p->elapsed_ms > 0 ? (double)p->bytes_done * 1000.0 / (double)p->elapsed_ms : 0;
	p->eta_ms = -1;
	if (p->bytes_total > p->bytes_done && p->rate_bps > 0)
		p->eta_ms =
		        (int64_t)((double)(p->bytes_total - p->bytes_done) / p->rate_bps * 1000.0);
	else if (p->bytes_total && p->bytes_done >= p->bytes_total)
		p->eta_ms = 0;
	p->final = final;
	fn(p, arg);
}
