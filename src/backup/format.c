/* format.c: the binary codecs of the repository (docs/backup-format.md): pack headers,
 * index files and trees, and the JSON of snapshots. All integers are little-endian. Every
 * decoder takes pointer + length, bounds every count by the bytes left before allocating,
 * rejects trailing bytes, and says where it stopped. Pure: no I/O, no keys; the callers
 * (repo.c, archive.c, maint.c, the fuzz targets) decrypt first.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup_internal.h"

#define PACK_MAGIC  "WBPK"
#define INDEX_MAGIC "WBIX"
#define TREE_MAGIC  "WBTR"
#define ENTRY_LEN   (1 + 1 + BACKUP_ID_LEN + 8 + 4 + 4)

/* ---- little-endian writing ---- */
static void put_u8(struct buf *b, uint8_t v) {
	buf_append(b, &v, 1);
}
static void put_u16(struct buf *b, uint16_t v) {
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	buf_append(b, x, 2);
}
static void put_u32(struct buf *b, uint32_t v) {
	uint8_t x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	buf_append(b, x, 4);
}
static void put_u64(struct buf *b, uint64_t v) {
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	buf_append(b, x, 8);
}

/* ---- bounded reading ---- */
struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;
};
static bool rd_need(struct rd *r, size_t k) {
	if (r->bad || r->n - r->off < k) {
		r->bad = true;
		return false;
	}
	return true;
}
static uint8_t get_u8(struct rd *r) {
	if (!rd_need(r, 1))
		return 0;
	return r->p[r->off++];
}
static uint16_t get_u16(struct rd *r) {
	uint16_t v;
	if (!rd_need(r, 2))
		return 0;
	v = (uint16_t)(r->p[r->off] | (r->p[r->off + 1] << 8));
	r->off += 2;
	return v;
}
static uint32_t get_u32(struct rd *r) {
	uint32_t v = 0;
	if (!rd_need(r, 4))
		return 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | r->p[r->off + (size_t)i];
	r->off += 4;
	return v;
}
static uint64_t get_u64(struct rd *r) {
	uint64_t v = 0;
	if (!rd_need(r, 8))
		return 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | r->p[r->off + (size_t)i];
	r->off += 8;
	return v;
}
static const uint8_t *get_bytes(struct rd *r, size_t k) {
	const uint8_t *p;
	if (!rd_need(r, k))
		return NULL;
	p = r->p + r->off;
	r->off += k;
	return p;
}
static size_t rd_left(const struct rd *r) {
	return r->n - r->off;
}

static int check_magic(struct rd *r, const char *magic, const char *what, struct ward_err *err) {
	const uint8_t *m = get_bytes(r, 4);
	uint8_t ver;
	if (!m || memcmp(m, magic, 4) != 0) {
		ward_err_set(err, "%s: bad magic (not a %s, or not of this format)", what, what);
		return -1;
	}
	ver = get_u8(r);
	if (r->bad || ver != BACKUP_FORMAT_VERSION) {
		ward_err_set(err, "%s: format version %u is not supported (this ward reads %d)",
		             what, ver, BACKUP_FORMAT_VERSION);
		return -1;
	}
	return 0;
}

/* ---- pack entries ---- */
static void put_entry(struct buf *b, const struct backup_pack_entry *e) {
	put_u8(b, e->type);
	put_u8(b, e->flags);
	buf_append(b, e->id, BACKUP_ID_LEN);
	put_u64(b, e->offset);
	put_u32(b, e->length);
	put_u32(b, e->raw_len);
}

static int get_entries(struct rd *r, size_t count, struct backup_pack_entry *v, const char *what,
                       struct ward_err *err) {
	for (size_t i = 0; i < count; i++) {
		struct backup_pack_entry *e = &v[i];
		const uint8_t *id;
		e->type = get_u8(r);
		e->flags = get_u8(r);
		id = get_bytes(r, BACKUP_ID_LEN);
		if (id)
			memcpy(e->id, id, BACKUP_ID_LEN);
		e->offset = get_u64(r);
		e->length = get_u32(r);
		e->raw_len = get_u32(r);
		if (r->bad) {
			ward_err_set(err, "%s: truncated at entry %zu (byte %zu)", what, i, r->off);
			return -1;
		}
		if (e->type > BLOB_TREE || (e->flags & ~BLOB_F_ZSTD)) {
			ward_err_set(err, "%s: entry %zu has unknown type %u or flags %u", what, i,
			             e->type, e->flags);
			return -1;
		}
		if (e->length < BACKUP_SEAL_OVERHEAD || e->offset > UINT64_MAX - e->length) {
			ward_err_set(err, "%s: entry %zu has an impossible length %u", what, i,
			             e->length);
			return -1;
		}
	}
	return 0;
}

void backup_pack_header_encode(const struct backup_pack_entry *e, size_t n, struct buf *out) {
	buf_append(out, PACK_MAGIC, 4);
	put_u8(out, BACKUP_FORMAT_VERSION);
	put_u32(out, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_entry(out, &e[i]);
}

int backup_pack_header_decode(const uint8_t *p, size_t n, uint64_t data_len,
                              struct backup_pack_entry **out, size_t *count, struct ward_err *err) {
	struct rd r = {p, n, 0, false};
	struct backup_pack_entry *v = NULL;
	uint32_t cnt;
	uint64_t next = 0;

	*out = NULL;
	*count = 0;
	if (check_magic(&r, PACK_MAGIC, "pack header", err))
		return -1;
	cnt = get_u32(&r);
	if (r.bad || cnt > BACKUP_MAX_PACK_BLOBS || (uint64_t)cnt * ENTRY_LEN != rd_left(&r)) {
		ward_err_set(err, "pack header: blob count %u does not match its %zu bytes", cnt,
		             rd_left(&r));
		return -1;
	}
	v = ward_xcalloc(cnt ? cnt : 1, sizeof(*v));
	if (get_entries(&r, cnt, v, "pack header", err))
		goto fail;
	/* Blobs are laid out back to back from offset 0, in header order. */
	for (size_t i = 0; i < cnt; i++) {
		if (v[i].offset != next || v[i].offset + v[i].length > data_len) {
			ward_err_set(err,
			             "pack header: blob %zu at %llu+%u is outside the %llu data "
			             "bytes or out of order",
			             i, (unsigned long long)v[i].offset, v[i].length,
			             (unsigned long long)data_len);
			goto fail;
		}
		next = v[i].offset + v[i].length;
	}
	*out = v;
	*count = cnt;
	return 0;
fail:
	free(v);
	return -1;
}

/* ---- index ---- */
void backup_index_encode(const struct backup_index_pack *packs, size_t n, struct buf *out) {
	buf_append(out, INDEX_MAGIC, 4);
	put_u8(out, BACKUP_FORMAT_VERSION);
	put_u32(out, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		buf_append(out, packs[i].id, BACKUP_ID_LEN);
		put_u32(out, (uint32_t)packs[i].n);
		for (size_t j = 0; j < packs[i].n; j++)
			put_entry(out, &packs[i].e[j]);
	}
}

void backup_index_packs_free(struct backup_index_pack *v, size_t n) {
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].e);
	free(v);
}

int backup_index_decode(const uint8_t *p, size_t n, struct backup_index_pack **out, size_t *count,
                        struct ward_err *err) {
	struct rd r = {p, n, 0, false};
	struct backup_index_pack *v = NULL;
	uint32_t np;
	size_t done = 0;

	*out = NULL;
	*count = 0;
	if (check_magic(&r, INDEX_MAGIC, "index", err))
		return -1;
	np = get_u32(&r);
	/* Each pack takes at least 36 bytes: bound the count by the bytes left. */
	if (r.bad || (uint64_t)np * (BACKUP_ID_LEN + 4) > rd_left(&r)) {
		ward_err_set(err, "index: pack count %u is more than its %zu bytes can hold", np,
		             rd_left(&r));
		return -1;
	}
	v = ward_xcalloc(np ? np : 1, sizeof(*v));
	for (; done < np; done++) {
		const uint8_t *id = get_bytes(&r, BACKUP_ID_LEN);
		uint32_t ne = get_u32(&r);
		if (r.bad || ne > BACKUP_MAX_PACK_BLOBS || (uint64_t)ne * ENTRY_LEN > rd_left(&r)) {
			ward_err_set(err, "index: pack %zu is truncated or has too many blobs (%u)",
			             done, ne);
			goto fail;
		}
		memcpy(v[done].id, id, BACKUP_ID_LEN);
		v[done].e = ward_xcalloc(ne ? ne : 1, sizeof(*v[done].e));
		v[done].n = ne;
		if (get_entries(&r, ne, v[done].e, "index", err)) {
			done++;
			goto fail;
		}
	}
	if (rd_left(&r)) {
		ward_err_set(err, "index: %zu trailing bytes", rd_left(&r));
		goto fail;
	}
	*out = v;
	*count = np;
	return 0;
fail:
	backup_index_packs_free(v, done);
	return -1;
}

/* ---- trees ---- */
void backup_node_clear(struct backup_node *n) {
	free(n->name);
	free(n->target);
	free(n->content);
	memset(n, 0, sizeof(*n));
}

void backup_tree_free(struct backup_tree *t) {
	for (size_t i = 0; i < t->n; i++)
		backup_node_clear(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

struct backup_node *backup_tree_push(struct backup_tree *t) {
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = ward_xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	return &t->v[t->n++];
}

static int node_cmp(const void *a, const void *b) {
	return strcmp(((const struct backup_node *)a)->name, ((const struct backup_node *)b)->name);
}

void backup_tree_sort(struct backup_tree *t) {
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), node_cmp);
}

const struct backup_node *backup_tree_find(const struct backup_tree *t, const char *name) {
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->v[mid].name, name);
		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void backup_tree_encode(const struct backup_tree *t, struct buf *out) {
	buf_append(out, TREE_MAGIC, 4);
	put_u8(out, BACKUP_FORMAT_VERSION);
	put_u32(out, (uint32_t)t->n);
	for (size_t i = 0; i < t->n; i++) {
		const struct backup_node *e = &t->v[i];
		size_t nl = strlen(e->name), tl = e->target ? strlen(e->target) : 0;
		put_u16(out, (uint16_t)nl);
		buf_append(out, e->name, nl);
		put_u8(out, (uint8_t)e->type);
		put_u32(out, e->mode);
		put_u32(out, e->uid);
		put_u32(out, e->gid);
		put_u64(out, (uint64_t)e->mtime_ns);
		put_u64(out, e->size);
		put_u64(out, e->inode);
		put_u64(out, e->dev);
		put_u64(out, e->rdev);
		put_u32(out, e->nlink);
		put_u32(out, (uint32_t)tl);
		buf_append(out, e->target ? e->target : "", tl);
		if (e->type == BACKUP_NODE_DIR)
			buf_append(out, e->subtree, BACKUP_ID_LEN);
		put_u32(out, (uint32_t)e->ncontent);
		for (size_t j = 0; j < e->ncontent; j++)
			buf_append(out, e->content[j], BACKUP_ID_LEN);
	}
}

static bool name_ok(const uint8_t *p, size_t n) {
	if (n == 0 || n > BACKUP_MAX_NAME)
		return false;
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return false;
	return !memchr(p, '/', n) && !memchr(p, '\0', n);
}

int backup_tree_decode(const uint8_t *p, size_t n, struct backup_tree *t, struct ward_err *err) {
	struct rd r = {p, n, 0, false};
	uint32_t cnt;

	memset(t, 0, sizeof(*t));
	if (check_magic(&r, TREE_MAGIC, "tree", err))
		return -1;
	cnt = get_u32(&r);
	/* The smallest entry is 68 bytes. */
	if (r.bad || cnt > BACKUP_MAX_TREE_ENTRIES || (uint64_t)cnt * 68 > rd_left(&r)) {
		ward_err_set(err, "tree: entry count %u is more than its %zu bytes can hold", cnt,
		             rd_left(&r));
		return -1;
	}
	t->v = ward_xcalloc(cnt ? cnt : 1, sizeof(*t->v));
	t->cap = cnt ? cnt : 1;
	for (size_t i = 0; i < cnt; i++) {
		struct backup_node *e = &t->v[i];
		uint16_t nl = get_u16(&r);
		const uint8_t *name = get_bytes(&r, nl);
		uint32_t tl, nc;
		const uint8_t *tgt;

		t->n = i + 1;
		if (!name || !name_ok(name, nl)) {
			ward_err_set(err, "tree: entry %zu has a bad name (byte %zu)", i, r.off);
			goto fail;
		}
		e->name = ward_strndup((const char *)name, nl);
		e->type = (enum backup_node_type)get_u8(&r);
		e->mode = get_u32(&r);
		e->uid = get_u32(&r);
		e->gid = get_u32(&r);
		e->mtime_ns = (int64_t)get_u64(&r);
		e->size = get_u64(&r);
		e->inode = get_u64(&r);
		e->dev = get_u64(&r);
		e->rdev = get_u64(&r);
		e->nlink = get_u32(&r);
		tl = get_u32(&r);
		if (r.bad || e->type > BACKUP_NODE_SOCKET || e->mode > 07777 ||
		    tl > BACKUP_MAX_NAME || (tl && e->type != BACKUP_NODE_SYMLINK)) {
			ward_err_set(err, "tree: entry %zu (\"%s\") has a bad type, mode or target",
			             i, e->name);
			goto fail;
		}
		tgt = get_bytes(&r, tl);
		if (!tgt || memchr(tgt, '\0', tl)) {
			ward_err_set(err, "tree: entry %zu (\"%s\") has a bad symlink target", i,
			             e->name);
			goto fail;
		}
		if (e->type == BACKUP_NODE_SYMLINK)
			e->target = ward_strndup((const char *)tgt, tl);
		if (e->type == BACKUP_NODE_DIR) {
			const uint8_t *sub = get_bytes(&r, BACKUP_ID_LEN);
			if (sub)
				memcpy(e->subtree, sub, BACKUP_ID_LEN);
		}
		nc = get_u32(&r);
		if (r.bad || nc > BACKUP_MAX_FILE_CHUNKS ||
		    (uint64_t)nc * BACKUP_ID_LEN > rd_left(&r) ||
		    (nc && e->type != BACKUP_NODE_FILE)) {
			ward_err_set(err, "tree: entry %zu (\"%s\") has a bad chunk list", i,
			             e->name);
			goto fail;
		}
		if (nc) {
			e->content = ward_xcalloc(nc, BACKUP_ID_LEN);
			memcpy(e->content, get_bytes(&r, (size_t)nc * BACKUP_ID_LEN),
			       (size_t)nc * BACKUP_ID_LEN);
			e->ncontent = nc;
		}
		if (i > 0 && strcmp(t->v[i - 1].name, e->name) >= 0) {
			ward_err_set(err, "tree: entry %zu (\"%s\") is out of order or repeated", i,
			             e->name);
			goto fail;
		}
	}
	if (rd_left(&r)) {
		ward_err_set(err, "tree: %zu trailing bytes", rd_left(&r));
		goto fail;
	}
	return 0;
fail:
	backup_tree_free(t);
	return -1;
}

/* ---- snapshots (JSON) ---- */
static json_t *str_array(char **v, size_t n) {
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

void backup_snapshot_encode(const struct backup_snapshot *s, struct buf *out) {
	char tree[BACKUP_HEX_LEN], parent[BACKUP_HEX_LEN], when[32];
	json_t *o, *st;
	char *txt;

	ward_hex(s->tree, BACKUP_ID_LEN, tree);
	ward_fmt_rfc3339(s->time_ns / 1000000, when);
	st = json_pack(
	        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "files",
	        (json_int_t)s->stats.files, "dirs", (json_int_t)s->stats.dirs, "others",
	        (json_int_t)s->stats.others, "files_new", (json_int_t)s->stats.files_new,
	        "files_changed", (json_int_t)s->stats.files_changed, "files_unchanged",
	        (json_int_t)s->stats.files_unchanged, "bytes_read", (json_int_t)s->stats.bytes_read,
	        "bytes_total", (json_int_t)s->stats.bytes_total, "bytes_added",
	        (json_int_t)s->stats.bytes_added, "bytes_stored", (json_int_t)s->stats.bytes_stored,
	        "blobs_added", (json_int_t)s->stats.blobs_added, "errors",
	        (json_int_t)s->stats.errors, "duration_ms", (json_int_t)s->stats.duration_ms);
	o = json_pack("{s:i, s:s, s:I, s:s, s:s, s:o, s:o, s:s, s:b, s:o, s:o}", "version",
	              BACKUP_FORMAT_VERSION, "time", when, "time_ns", (json_int_t)s->time_ns,
	              "host", s->host ? s->host : "", "user", s->user ? s->user : "", "paths",
	              str_array(s->paths, s->npaths), "tags", str_array(s->tags, s->ntags), "tree",
	              tree, "partial", s->partial, "unreadable",
	              str_array(s->unreadable, s->nunreadable), "stats", st);
	if (s->job)
		json_object_set_new(o, "job", json_string(s->job));
	if (s->has_parent) {
		ward_hex(s->parent, BACKUP_ID_LEN, parent);
		json_object_set_new(o, "parent", json_string(parent));
	}
	txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	buf_puts(out, txt);
	free(txt);
	json_decref(o);
}

void backup_snapshot_clear(struct backup_snapshot *s) {
	char id[BACKUP_HEX_LEN];
	memcpy(id, s->id, sizeof(id));
	free(s->host);
	free(s->user);
	free(s->job);
	for (size_t i = 0; i < s->npaths; i++)
		free(s->paths[i]);
	free(s->paths);
	for (size_t i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	for (size_t i = 0; i < s->nunreadable; i++)
		free(s->unreadable[i]);
	free(s->unreadable);
	memset(s, 0, sizeof(*s));
	memcpy(s->id, id, sizeof(id));
}

static int get_strs(json_t *o, const char *key, char ***out, size_t *n, struct ward_err *err) {
	json_t *a = json_object_get(o, key), *v;
	size_t i;
	*out = NULL;
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a)) {
		ward_err_set(err, "snapshot: \"%s\" is not an array", key);
		return -1;
	}
	*out = ward_xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v)) {
			ward_err_set(err, "snapshot: \"%s\"[%zu] is not a string", key, i);
			return -1;
		}
		(*out)[(*n)++] = ward_strndup(json_string_value(v), json_string_length(v));
	}
	return 0;
}

static uint64_t get_stat(json_t *st, const char *k) {
	json_t *v = json_object_get(st, k);
	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v)
	                                                        : 0;
}

int backup_snapshot_decode(const uint8_t *p, size_t n, struct backup_snapshot *s,
                           struct ward_err *err) {
	json_error_t je;
	json_t *o, *v, *st;
	const char *tree, *parent;

	backup_snapshot_clear(s);
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
	if (!o || !json_is_object(o)) {
		ward_err_set(err, "snapshot: not a JSON object (%s at byte %d)",
		             o ? "wrong type" : je.text, o ? 0 : je.position);
		json_decref(o);
		return -1;
	}
	v = json_object_get(o, "version");
	if (!json_is_integer(v) || json_integer_value(v) != BACKUP_FORMAT_VERSION) {
		ward_err_set(err, "snapshot: format version is missing or not %d",
		             BACKUP_FORMAT_VERSION);
		goto fail;
	}
	v = json_object_get(o, "time_ns");
	tree = json_string_value(json_object_get(o, "tree"));
	if (!json_is_integer(v) || !tree || strlen(tree) != 2 * BACKUP_ID_LEN ||
	    ward_unhex(tree, strlen(tree), s->tree, BACKUP_ID_LEN)) {
		ward_err_set(err, "snapshot: \"time_ns\" or \"tree\" is missing or malformed");
		goto fail;
	}
	s->time_ns = json_integer_value(v);
	parent = json_string_value(json_object_get(o, "parent"));
	if (parent) {
		if (strlen(parent) != 2 * BACKUP_ID_LEN ||
		    ward_unhex(parent, strlen(parent), s->parent, BACKUP_ID_LEN)) {
			ward_err_set(err, "snapshot: \"parent\" is malformed");
			goto fail;
		}
		s->has_parent = true;
	}
	s->host = ward_strdup(json_string_value(json_object_get(o, "host")) ?: "");
	s->user = ward_strdup(json_string_value(json_object_get(o, "user")) ?: "");
	if (json_string_value(json_object_get(o, "job")))
		s->job = ward_strdup(json_string_value(json_object_get(o, "job")));
	s->partial = json_is_true(json_object_get(o, "partial"));
	if (get_strs(o, "paths", &s->paths, &s->npaths, err) ||
	    get_strs(o, "tags", &s->tags, &s->ntags, err) ||
	    get_strs(o, "unreadable", &s->unreadable, &s->nunreadable, err))
		goto fail;
	st = json_object_get(o, "stats");
	s->stats.files = get_stat(st, "files");
	s->stats.dirs = get_stat(st, "dirs");
	s->stats.others = get_stat(st, "others");
	s->stats.files_new = get_stat(st, "files_new");
	s->stats.files_changed = get_stat(st, "files_changed");
	s->stats.files_unchanged = get_stat(st, "files_unchanged");
	s->stats.bytes_read = get_stat(st, "bytes_read");
	s->stats.bytes_total = get_stat(st, "bytes_total");
	s->stats.bytes_added = get_stat(st, "bytes_added");
	s->stats.bytes_stored = get_stat(st, "bytes_stored");
	s->stats.blobs_added = get_stat(st, "blobs_added");
	s->stats.errors = get_stat(st, "errors");
	s->stats.duration_ms = (int64_t)get_stat(st, "duration_ms");
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	backup_snapshot_clear(s);
	return -1;
}
