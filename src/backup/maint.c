/* maint.c: keeping a repository: forget (restic's keep policies, per group of snapshots of
 * the same host, job and paths), prune (drop unreferenced data: write the repacked blobs and
 * a complete new index before deleting any old index or pack, so an interruption anywhere
 * leaves every referenced blob reachable) and check (structure, and with --read-data the
 * content: a damaged blob is named with every snapshot and file that uses it).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup/backup_internal.h"

/* ---- forget ---- */
bool backup_policy_empty(const struct backup_policy *p) {
	return p->last <= 0 && p->hourly <= 0 && p->daily <= 0 && p->weekly <= 0 &&
	       p->monthly <= 0 && p->yearly <= 0;
}

enum { R_LAST, R_HOURLY, R_DAILY, R_WEEKLY, R_MONTHLY, R_YEARLY, R_N };

static int64_t bucket(int rule, int64_t t_ns, size_t i) {
	time_t secs = (time_t)(t_ns / 1000000000);
	struct tm tm;
	char w[16];
	if (t_ns < 0 && t_ns % 1000000000)
		secs--;
	gmtime_r(&secs, &tm);
	switch (rule) {
	case R_LAST:
		return (int64_t)i;
	case R_HOURLY:
		return ((int64_t)(tm.tm_year + 1900) * 1000 + tm.tm_yday) * 100 + tm.tm_hour;
	case R_DAILY:
		return (int64_t)(tm.tm_year + 1900) * 1000 + tm.tm_yday;
	case R_WEEKLY:
		strftime(w, sizeof(w), "%G%V", &tm); /* ISO 8601 year and week */
		return strtoll(w, NULL, 10);
	case R_MONTHLY:
		return (int64_t)(tm.tm_year + 1900) * 100 + tm.tm_mon;
	default:
		return tm.tm_year + 1900;
	}
}

void backup_policy_apply(const struct backup_policy *p, const int64_t *times_ns, size_t n,
                         bool *keep) {
	int count[R_N] = {p->last, p->hourly, p->daily, p->weekly, p->monthly, p->yearly};
	int64_t last[R_N];
	bool seen[R_N] = {false};

	for (size_t i = 0; i < n; i++) {
		keep[i] = false;
		for (int r = 0; r < R_N; r++) {
			int64_t b;
			if (count[r] <= 0)
				continue;
			b = bucket(r, times_ns[i], i);
			if (!seen[r] || b != last[r]) {
				keep[i] = true;
				last[r] = b;
				seen[r] = true;
				count[r]--;
			}
		}
	}
}

static bool same_group(const struct backup_snapshot *a, const struct backup_snapshot *b) {
	if (!ward_streq(a->host, b->host) || !ward_streq(a->job, b->job) || a->npaths != b->npaths)
		return false;
	for (size_t i = 0; i < a->npaths; i++)
		if (strcmp(a->paths[i], b->paths[i]) != 0)
			return false;
	return true;
}

int backup_forget(struct backup_repo *r, const struct backup_policy *p, bool dry_run,
                  backup_forget_fn fn, void *arg, struct ward_err *err) {
	struct backup_snapshot *v = NULL;
	size_t n = 0;
	bool *done = NULL, *keep = NULL;
	int64_t *times = NULL;
	size_t *members = NULL;
	int rc;

	if (backup_policy_empty(p)) {
		ward_err_set(err, "no policy given: forget needs at least one --keep-* option (it "
		                  "never removes every snapshot)");
		return BACKUP_ERR_USAGE;
	}
	rc = dry_run ? 0 : backup_lock(r, true, err);
	if (rc)
		return rc;
	rc = backup_snapshots(r, &v, &n, err);
	if (rc)
		goto out;
	done = ward_xcalloc(n + 1, sizeof(bool));
	keep = ward_xcalloc(n + 1, sizeof(bool));
	times = ward_xcalloc(n + 1, sizeof(int64_t));
	members = ward_xcalloc(n + 1, sizeof(size_t));
	/* v is oldest first; groups are walked newest first. */
	for (size_t i = n; i > 0; i--) {
		size_t k = 0;
		if (done[i - 1])
			continue;
		for (size_t j = i; j > 0; j--)
			if (!done[j - 1] && same_group(&v[i - 1], &v[j - 1])) {
				done[j - 1] = true;
				members[k] = j - 1;
				times[k] = v[j - 1].time_ns;
				k++;
			}
		backup_policy_apply(p, times, k, keep);
		for (size_t m = 0; m < k && rc == 0; m++) {
			struct backup_snapshot *s = &v[members[m]];
			if (fn)
				fn(s, keep[m], arg);
			if (!keep[m] && !dry_run)
				rc = r->be->remove(r->be, BACKUP_FT_SNAPSHOT, s->id, err);
		}
	}
out:
	free(done);
	free(keep);
	free(times);
	free(members);
	backup_snapshots_free(v, n);
	if (!dry_run)
		backup_unlock(r);
	return rc;
}

/* ---- walking what snapshots use ---- */
static int mark_tree(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], struct idset *used,
                     struct ward_err *err) {
	struct backup_tree t;
	int rc;
	if (!idset_add(used, id))
		return 0; /* seen: everything below is marked */
	rc = backup_load_tree(r, id, &t, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		if (t.v[i].type == BACKUP_NODE_DIR)
			rc = mark_tree(r, t.v[i].subtree, used, err);
		for (size_t j = 0; j < t.v[i].ncontent; j++)
			idset_add(used, t.v[i].content[j]);
	}
	backup_tree_free(&t);
	return rc;
}

/* ---- prune ---- */
struct pack_use {
	struct backup_pack_entry *e;
	size_t n, cap, used;
	uint64_t used_bytes, bytes;
	bool on_disk;
};

struct disk_packs {
	char **names;
	int64_t *sizes;
	size_t n, cap;
};
static int disk_cb(const char *name, int64_t size, void *arg) {
	struct disk_packs *d = arg;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->names = ward_xrealloc(d->names, d->cap * sizeof(char *));
		d->sizes = ward_xrealloc(d->sizes, d->cap * sizeof(int64_t));
	}
	d->names[d->n] = ward_strdup(name);
	d->sizes[d->n++] = size;
	return 0;
}
static void disk_free(struct disk_packs *d) {
	backup_names_free(d->names, d->n);
	free(d->sizes);
}

static void group_by_pack(const struct bindex *x, struct pack_use *pu) {
	for (size_t i = 0; i < x->cap; i++) {
		const struct bindex_ent *s = &x->slots[i];
		struct pack_use *p;
		struct backup_pack_entry *e;
		if (s->pack == UINT32_MAX)
			continue;
		p = &pu[s->pack];
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 16;
			p->e = ward_xrealloc(p->e, p->cap * sizeof(*p->e));
		}
		e = &p->e[p->n++];
		memcpy(e->id, s->id, BACKUP_ID_LEN);
		e->type = s->type;
		e->flags = s->flags;
		e->offset = s->offset;
		e->length = s->length;
		e->raw_len = s->raw_len;
		p->bytes += s->length;
	}
}

static int entry_off_cmp(const void *a, const void *b) {
	const struct backup_pack_entry *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Writes one index file holding every entry of x. */
static int write_full_index(struct backup_repo *r, const struct bindex *x,
                            char name_out[BACKUP_HEX_LEN], struct ward_err *err) {
	struct pack_use *pu = ward_xcalloc(x->npacks + 1, sizeof(*pu));
	struct backup_index_pack *ip = ward_xcalloc(x->npacks + 1, sizeof(*ip));
	struct buf b = BUF_INIT;
	size_t k = 0;
	int rc;

	group_by_pack(x, pu);
	for (size_t i = 0; i < x->npacks; i++) {
		if (!pu[i].n)
			continue;
		qsort(pu[i].e, pu[i].n, sizeof(*pu[i].e), entry_off_cmp);
		memcpy(ip[k].id, x->packs[i], BACKUP_ID_LEN);
		ip[k].e = pu[i].e;
		ip[k].n = pu[i].n;
		k++;
	}
	backup_index_encode(ip, k, &b);
	rc = backup_write_sealed(r, BACKUP_FT_INDEX, &b, name_out, err);
	for (size_t i = 0; i < x->npacks; i++)
		free(pu[i].e);
	free(pu);
	free(ip);
	buf_free(&b);
	return rc;
}

int backup_prune(struct backup_repo *r, backup_warn_fn warn, void *cb_arg,
                 struct backup_prune_stats *st, struct ward_err *err) {
	struct backup_snapshot *snaps = NULL;
	size_t nsnaps = 0;
	struct idset used;
	struct bindex old;
	struct pack_use *pu = NULL;
	struct disk_packs disk = {0};
	struct buf sealed = BUF_INIT, plain = BUF_INIT;
	char hex[BACKUP_HEX_LEN], newindex[BACKUP_HEX_LEN];
	uint8_t *kind = NULL; /* per old pack: 0 keep, 1 repack, 2 delete */
	int rc;

	memset(st, 0, sizeof(*st));
	idset_init(&used);
	bindex_init(&old);
	rc = backup_lock(r, true, err);
	if (rc)
		return rc;
	/* Exclusive: no one else writes, so every temporary file is a dead writer's. */
	if (r->be->sweep)
		st->temp_files_removed = (uint64_t)r->be->sweep(r->be);
	rc = backup_load_index(r, false, NULL, NULL, err);
	if (rc)
		goto out;
	st->index_files_before = r->nindex_files;
	rc = backup_snapshots(r, &snaps, &nsnaps, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < nsnaps && rc == 0; i++)
		rc = mark_tree(r, snaps[i].tree, &used, err);
	if (rc) {
		ward_err_append(err, "prune stopped before changing anything: a snapshot cannot "
		                     "be read in full ('ward backup check')");
		goto out;
	}
	for (size_t i = 0; i < used.cap; i++) {
		if (used.used[i] && !bindex_get(&r->idx, used.v[i])) {
			ward_hex(used.v[i], BACKUP_ID_LEN, hex);
			ward_err_set(err,
			             "blob %s is used by a snapshot but is in no index; prune "
			             "stopped before changing anything ('ward backup check')",
			             hex);
			rc = BACKUP_ERR_CORRUPT;
			goto out;
		}
	}
	rc = r->be->list(r->be, BACKUP_FT_DATA, disk_cb, &disk, err);
	if (rc)
		goto out;
	/* Take the loaded index aside; r->idx becomes the new index, built from kept packs. */
	old = r->idx;
	bindex_init(&r->idx);
	pu = ward_xcalloc(old.npacks + 1, sizeof(*pu));
	kind = ward_xcalloc(old.npacks + 1, 1);
	group_by_pack(&old, pu);
	for (size_t i = 0; i < old.npacks; i++) {
		for (size_t j = 0; j < pu[i].n; j++)
			if (idset_has(&used, pu[i].e[j].id)) {
				pu[i].used++;
				pu[i].used_bytes += pu[i].e[j].length;
			}
		kind[i] = pu[i].used == pu[i].n ? 0 : pu[i].used ? 1 : 2;
		if (kind[i] == 0) {
			uint32_t pi = bindex_pack(&r->idx, old.packs[i]);
			for (size_t j = 0; j < pu[i].n; j++)
				bindex_add(&r->idx, pi, &pu[i].e[j]);
		}
	}
	/* Repack: copy the used blobs of partly used packs into new packs. */
	for (size_t i = 0; i < old.npacks && rc == 0; i++) {
		if (kind[i] != 1)
			continue;
		ward_hex(old.packs[i], BACKUP_ID_LEN, hex);
		backup_lock_refresh(r);
		rc = r->be->read(r->be, BACKUP_FT_DATA, hex, 0, 0, &sealed, err);
		for (size_t j = 0; j < pu[i].n && rc == 0; j++) {
			struct backup_pack_entry *e = &pu[i].e[j];
			bool added;
			if (!idset_has(&used, e->id))
				continue;
			if (e->offset + e->length > sealed.len) {
				rc = BACKUP_ERR_CORRUPT;
				ward_err_set(err, "pack %s is shorter than its index says", hex);
				break;
			}
			rc = backup_decode_blob(r, e->id, e->flags, e->raw_len,
			                        (const uint8_t *)sealed.data + e->offset, e->length,
			                        &plain, err);
			if (rc == 0)
				rc = backup_put_blob(r, (enum backup_blob_type)e->type, plain.data,
				                     plain.len, e->id, &added, err);
		}
		if (rc == 0)
			st->packs_repacked++;
	}
	if (rc == 0)
		rc = backup_flush(r, err);
	if (rc) {
		ward_err_append(err, "prune stopped; nothing was deleted");
		goto out;
	}
	/* The new index, complete, before anything is deleted. */
	rc = write_full_index(r, &r->idx, newindex, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < r->nindex_files; i++)
		if (strcmp(r->index_files[i], newindex) != 0)
			r->be->remove(r->be, BACKUP_FT_INDEX, r->index_files[i], NULL);
	for (size_t i = 0; i < r->nwritten_index; i++)
		if (strcmp(r->written_index[i], newindex) != 0)
			r->be->remove(r->be, BACKUP_FT_INDEX, r->written_index[i], NULL);
	st->index_files_after = 1;
	/* Now the packs no index refers to. */
	for (size_t d = 0; d < disk.n; d++) {
		uint8_t id[BACKUP_ID_LEN];
		bool in_old = false;
		size_t oi = 0;
		if (ward_unhex(disk.names[d], strlen(disk.names[d]), id, BACKUP_ID_LEN) != 0)
			continue;
		for (size_t i = 0; i < old.npacks; i++)
			if (memcmp(old.packs[i], id, BACKUP_ID_LEN) == 0) {
				in_old = true;
				oi = i;
				break;
			}
		if (in_old && kind[oi] == 0) {
			st->packs_kept++;
			continue;
		}
		if (!in_old) {
			/* Written by this prune (new packs are in r->idx) or unindexed. */
			bool fresh = false;
			for (size_t i = 0; i < r->idx.npacks && !fresh; i++)
				fresh = memcmp(r->idx.packs[i], id, BACKUP_ID_LEN) == 0;
			if (fresh)
				continue;
			st->packs_unindexed++;
			if (warn)
				warn(disk.names[d],
				     "pack in no index (left by an interrupted backup): "
				     "deleted",
				     cb_arg);
		} else {
			st->packs_deleted += kind[oi] == 2;
			st->blobs_removed += pu[oi].n - pu[oi].used;
		}
		if (r->be->remove(r->be, BACKUP_FT_DATA, disk.names[d], NULL) == 0)
			st->bytes_freed += (uint64_t)disk.sizes[d];
	}
	st->blobs_kept = r->idx.n;
	/* What this repo loaded is gone: reload next time. */
	backup_names_free(r->index_files, r->nindex_files);
	r->index_files = ward_xcalloc(1, sizeof(char *));
	r->index_files[0] = ward_strdup(newindex);
	r->nindex_files = 1;
	backup_names_free(r->written_index, r->nwritten_index);
	r->written_index = NULL;
	r->nwritten_index = 0;
out:
	if (pu) {
		for (size_t i = 0; i < old.npacks; i++)
			free(pu[i].e);
		free(pu);
	}
	if (old.cap || old.npacks) {
		if (rc) {
			/* Put the loaded index back so the repo stays usable. */
			bindex_free(&r->idx);
			r->idx = old;
		} else {
			bindex_free(&old);
		}
	}
	free(kind);
	disk_free(&disk);
	idset_free(&used);
	buf_free(&sealed);
	buf_free(&plain);
	backup_snapshots_free(snaps, nsnaps);
	backup_unlock(r);
	return rc;
}

/* ---- check ---- */
struct chk {
	struct backup_repo *r;
	const struct backup_check_opts *o;
	backup_check_fn fn;
	void *arg;
	struct backup_check_result *res;
	struct idset seen_trees;
	struct idset damaged; /* blobs found damaged or missing */
	struct idset clean;   /* trees known to hold no damaged blob */
};

static void report(struct chk *c, bool error, const char *fmt, ...) WARD_PRINTF(3, 4);
static void report(struct chk *c, bool error, const char *fmt, ...) {
	char msg[WARD_ERR_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (error)
		c->res->errors++;
	else
		c->res->warnings++;
	if (c->fn)
		c->fn(error ? "error" : "warning", msg, c->arg);
}

static void check_tree(struct chk *c, const struct backup_snapshot *s,
                       const uint8_t id[BACKUP_ID_LEN], struct buf *path) {
	struct backup_tree t;
	struct ward_err e2;
	char hex[BACKUP_HEX_LEN];
	size_t base = path->len;

	if (!idset_add(&c->seen_trees, id))
		return;
	c->res->trees++;
	backup_lock_refresh(c->r);
	ward_hex(id, BACKUP_ID_LEN, hex);
	if (!bindex_get(&c->r->idx, id)) {
		report(c, true, "tree %s (directory %s of snapshot %.8s) is in no index", hex,
		       path->len ? path->data : "/", s->id);
		idset_add(&c->damaged, id);
		return;
	}
	ward_err_clear(&e2);
	if (backup_load_tree(c->r, id, &t, &e2) != 0) {
		report(c, true, "tree %s (directory %s of snapshot %.8s) cannot be read: %s", hex,
		       path->len ? path->data : "/", s->id, e2.msg);
		idset_add(&c->damaged, id);
		return;
	}
	for (size_t i = 0; i < t.n; i++) {
		path->len = base;
		buf_printf(path, "/%s", t.v[i].name);
		if (t.v[i].type == BACKUP_NODE_DIR)
			check_tree(c, s, t.v[i].subtree, path);
		for (size_t j = 0; j < t.v[i].ncontent; j++) {
			if (bindex_get(&c->r->idx, t.v[i].content[j]))
				continue;
			ward_hex(t.v[i].content[j], BACKUP_ID_LEN, hex);
			report(c, true, "chunk %s of %s in snapshot %.8s is in no index", hex,
			       path->data, s->id);
			idset_add(&c->damaged, t.v[i].content[j]);
		}
	}
	path->len = base;
	if (path->data)
		path->data[base] = '\0';
	backup_tree_free(&t);
}

/* Reports every file of snapshot s under tree id that uses a damaged blob. Returns whether
 * the tree holds one. */
static bool name_damage(struct chk *c, const struct backup_snapshot *s,
                        const uint8_t id[BACKUP_ID_LEN], struct buf *path) {
	struct backup_tree t;
	struct ward_err e2;
	size_t base = path->len;
	bool found = false;
	char hex[BACKUP_HEX_LEN];

	if (idset_has(&c->clean, id))
		return false;
	if (idset_has(&c->damaged, id) || backup_load_tree(c->r, id, &t, &e2) != 0) {
		ward_hex(id, BACKUP_ID_LEN, hex);
		report(c, true, "damaged tree %s: snapshot %.8s loses directory %s", hex, s->id,
		       path->len ? path->data : "/");
		return true;
	}
	for (size_t i = 0; i < t.n; i++) {
		path->len = base;
		buf_printf(path, "/%s", t.v[i].name);
		if (t.v[i].type == BACKUP_NODE_DIR && name_damage(c, s, t.v[i].subtree, path))
			found = true;
		for (size_t j = 0; j < t.v[i].ncontent; j++)
			if (idset_has(&c->damaged, t.v[i].content[j])) {
				ward_hex(t.v[i].content[j], BACKUP_ID_LEN, hex);
				report(c, true, "damaged chunk %s is used by snapshot %.8s file %s",
				       hex, s->id, path->data);
				found = true;
			}
	}
	path->len = base;
	if (path->data)
		path->data[base] = '\0';
	backup_tree_free(&t);
	if (!found)
		idset_add(&c->clean, id);
	return found;
}

static void read_pack(struct chk *c, size_t pi, const struct pack_use *pu, struct buf *data,
                      struct buf *plain) {
	char name[BACKUP_HEX_LEN], sum[BACKUP_HEX_LEN], hex[BACKUP_HEX_LEN];
	struct ward_err e2;
	uint32_t hlen = 0;

	ward_hex(c->r->idx.packs[pi], BACKUP_ID_LEN, name);
	ward_err_clear(&e2);
	if (c->r->be->read(c->r->be, BACKUP_FT_DATA, name, 0, 0, data, &e2) != 0) {
		report(c, true, "pack %s cannot be read: %s", name, e2.msg);
		return;
	}
	c->res->packs_read++;
	backup_content_name(c->r, data->data, data->len, sum);
	if (strcmp(sum, name) != 0)
		report(c, true, "pack %s is damaged: its content hash is %.16s...", name, sum);
	/* The header (trailer) must open and agree with the file's length. */
	if (data->len >= 4) {
		const uint8_t *t = (const uint8_t *)data->data + data->len - 4;
		hlen = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
		       (uint32_t)t[3] << 24;
	}
	if (hlen + 4ull > data->len) {
		report(c, true, "pack %s: header length %u is impossible (header damaged)", name,
		       hlen);
	} else {
		const char *ad = "ward-pack-header";
		struct backup_pack_entry *e = NULL;
		size_t ne = 0;
		buf_reset(plain);
		if (backup_open_sealed(&c->r->enc_key, data->data + data->len - 4 - hlen, hlen, ad,
		                       strlen(ad), plain) != 0 ||
		    backup_pack_header_decode((const uint8_t *)plain->data, plain->len,
		                              data->len - 4 - hlen, &e, &ne, &e2) != 0)
			report(c, true,
			       "pack %s: its header is damaged (the index still locates "
			       "its blobs)",
			       name);
		free(e);
	}
	for (size_t j = 0; j < pu->n; j++) {
		const struct backup_pack_entry *e = &pu->e[j];
		c->res->blobs_read++;
		ward_hex(e->id, BACKUP_ID_LEN, hex);
		if (e->offset + e->length > data->len) {
			report(c, true, "%s %s: pack %s is truncated", e->type ? "tree" : "chunk",
			       hex, name);
			idset_add(&c->damaged, e->id);
			continue;
		}
		ward_err_clear(&e2);
		if (backup_decode_blob(c->r, e->id, e->flags, e->raw_len,
		                       (const uint8_t *)data->data + e->offset, e->length, plain,
		                       &e2) != 0) {
			report(c, true, "%s %s in pack %s is damaged: %s",
			       e->type ? "tree" : "chunk", hex, name, e2.msg);
			idset_add(&c->damaged, e->id);
		}
	}
}

static void index_damaged(const char *kind, const char *msg, void *arg) {
	report(arg, true, "%s", msg);
}

int backup_check(struct backup_repo *r, const struct backup_check_opts *o, backup_check_fn fn,
                 void *arg, struct backup_check_result *res, struct ward_err *err) {
	static const struct backup_check_opts none = {0};
	struct chk c = {r, o ? o : &none, fn, arg, res, {0}, {0}, {0}};
	struct disk_packs disk = {0};
	struct pack_use *pu = NULL;
	char **snames = NULL;
	size_t nsnames = 0;
	struct backup_snapshot *snaps = NULL;
	size_t nsnaps = 0;
	struct buf path = BUF_INIT, data = BUF_INIT, plain = BUF_INIT;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = backup_lock(r, false, err);
	if (rc)
		return rc;
	/* The index may already be loaded (and was then read without error). */
	rc = backup_load_index(r, true, index_damaged, &c, err);
	if (rc)
		goto out;
	rc = r->be->list(r->be, BACKUP_FT_DATA, disk_cb, &disk, err);
	if (rc)
		goto out;
	pu = ward_xcalloc(r->idx.npacks + 1, sizeof(*pu));
	group_by_pack(&r->idx, pu);
	res->packs = r->idx.npacks;
	res->blobs = r->idx.n;
	for (size_t i = 0; i < r->idx.npacks; i++) {
		char name[BACKUP_HEX_LEN];
		uint64_t end = 0;
		bool found = false;
		ward_hex(r->idx.packs[i], BACKUP_ID_LEN, name);
		for (size_t j = 0; j < pu[i].n; j++)
			if (pu[i].e[j].offset + pu[i].e[j].length > end)
				end = pu[i].e[j].offset + pu[i].e[j].length;
		for (size_t d = 0; d < disk.n && !found; d++)
			if (strcmp(disk.names[d], name) == 0) {
				found = true;
				pu[i].on_disk = true;
				if ((uint64_t)disk.sizes[d] < end + 4)
					report(&c, true,
					       "pack %s is %lld bytes, shorter than its "
					       "index says (%llu): truncated",
					       name, (long long)disk.sizes[d],
					       (unsigned long long)end + 4);
			}
		if (!found) {
			report(&c, true, "pack %s is in the index but missing", name);
			for (size_t j = 0; j < pu[i].n; j++)
				idset_add(&c.damaged, pu[i].e[j].id);
		}
	}
	for (size_t d = 0; d < disk.n; d++) {
		uint8_t id[BACKUP_ID_LEN];
		bool known = false;
		if (ward_unhex(disk.names[d], strlen(disk.names[d]), id, BACKUP_ID_LEN) != 0) {
			report(&c, false, "data file %s has no pack name", disk.names[d]);
			continue;
		}
		for (size_t i = 0; i < r->idx.npacks && !known; i++)
			known = memcmp(r->idx.packs[i], id, BACKUP_ID_LEN) == 0;
		if (!known)
			report(&c, false,
			       "pack %.16s is in no index (an interrupted backup): "
			       "'ward backup prune' removes it",
			       disk.names[d]);
	}
	/* Snapshots and trees. */
	rc = backup_list_names(r, BACKUP_FT_SNAPSHOT, &snames, &nsnames, err);
	if (rc)
		goto out;
	snaps = ward_xcalloc(nsnames + 1, sizeof(*snaps));
	for (size_t i = 0; i < nsnames; i++) {
		struct ward_err e2;
		ward_err_clear(&e2);
		if (backup_read_sealed(r, BACKUP_FT_SNAPSHOT, snames[i], &plain, &e2) != 0 ||
		    backup_snapshot_decode((const uint8_t *)plain.data, plain.len, &snaps[nsnaps],
		                           &e2) != 0) {
			report(&c, true, "snapshot %s is damaged: %s", snames[i], e2.msg);
			continue;
		}
		snprintf(snaps[nsnaps].id, sizeof(snaps[nsnaps].id), "%s", snames[i]);
		nsnaps++;
	}
	res->snapshots = nsnaps;
	for (size_t i = 0; i < nsnaps; i++) {
		buf_reset(&path);
		check_tree(&c, &snaps[i], snaps[i].tree, &path);
	}
	/* Content. */
	if (c.o->read_data) {
		size_t want = r->idx.npacks,
		       *order = ward_xcalloc(r->idx.npacks + 1, sizeof(size_t));
		struct backup_progress p = {0};
		int64_t start = ward_mono_ms(), last = start;
		for (size_t i = 0; i < r->idx.npacks; i++) {
			order[i] = i;
			p.bytes_total += pu[i].bytes;
		}
		if (c.o->subset_pct > 0 && c.o->subset_pct < 100) {
			/* A random subset, so repeated runs cover everything in time. */
			for (size_t i = r->idx.npacks; i > 1; i--) {
				uint32_t k;
				size_t t;
				ward_random_bytes(&k, sizeof(k));
				t = order[i - 1];
				order[i - 1] = order[k % i];
				order[k % i] = t;
			}
			want = (size_t)((double)r->idx.npacks * c.o->subset_pct / 100.0 + 0.999);
			if (want == 0 && r->idx.npacks)
				want = 1;
			p.bytes_total = 0;
			for (size_t i = 0; i < want; i++)
				p.bytes_total += pu[order[i]].bytes;
		}
		p.files_total = want;
		for (size_t i = 0; i < want; i++) {
			if (!pu[order[i]].on_disk)
				continue;
			read_pack(&c, order[i], &pu[order[i]], &data, &plain);
			backup_lock_refresh(r);
			p.files_done++;
			p.bytes_done += pu[order[i]].bytes;
			backup_progress_emit(&p, start, &last, false, c.o->progress, c.o->cb_arg);
		}
		backup_progress_emit(&p, start, &last, true, c.o->progress, c.o->cb_arg);
		free(order);
	}
	res->damaged_blobs = c.damaged.n;
	if (c.damaged.n) {
		for (size_t i = 0; i < nsnaps; i++) {
			buf_reset(&path);
			name_damage(&c, &snaps[i], snaps[i].tree, &path);
		}
	}
out:
	if (pu) {
		for (size_t i = 0; i < r->idx.npacks; i++)
			free(pu[i].e);
		free(pu);
	}
	disk_free(&disk);
	backup_names_free(snames, nsnames);
	backup_snapshots_free(snaps, nsnaps);
	idset_free(&c.seen_trees);
	idset_free(&c.damaged);
	idset_free(&c.clean);
	buf_free(&path);
	buf_free(&data);
	buf_free(&plain);
	backup_unlock(r);
	return rc;
}
