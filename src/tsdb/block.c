/* block.c: immutable on-disk blocks <db>/blocks/<ulid>/ = chunks + index + meta.json.
 *
 * chunks: "WTSDBCH1" then per chunk [u32 len][chunk][u32 crc32c(chunk)]; a chunk is XOR or
 *         DQ, whichever is smaller (chunk.c; docs/tsdb-format.md).
 * index:  "WTSDBIX2", a symbol section (every label name and value once, sorted), a series
 *         section (per series: how many leading labels equal the previous series', the
 *         other labels as symbol numbers, then per chunk column, mint as a difference from
 *         the previous chunk's, span, length, count; chunk offsets follow from the order),
 *         each followed by its crc32c, and a footer (offsets and lengths of both, crc32c,
 *         magic). Blocks written before carry "WTSDBIX1": labels as strings, absolute chunk
 *         metas with offsets, and a postings section that nothing reads; both are read.
 *         docs/tsdb-format.md has the details.
 * meta.json: ulid, minTime/maxTime (inclusive, ms), stats, compaction level and sources,
 *         resolution in ms (0 raw, 300000, 3600000).
 * A block is written under <ulid>.tmp, fsynced and renamed, so a crash leaves either no
 * block or a whole one (leftover .tmp dirs are removed at open). Opening maps the chunks
 * file and verifies every checksum; any mismatch fails the open (db.c quarantines it).
 * The in-memory index of an open block is rebuilt from the verified series section.
 * Callers: db.c (head cut, open, select), compact.c.
 */
#include "tsdb/tsdb_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNKS_MAGIC    "WTSDBCH1"
#define INDEX_MAGIC_V1  "WTSDBIX1"
#define INDEX_MAGIC     "WTSDBIX2"
#define MAGIC_LEN       8
#define FOOTER_LEN      (32 + 4 + MAGIC_LEN)
#define INDEX_MAX_BYTES ((size_t)4 << 30)

void tsdb_ulid(char out[27], int64_t ms) {
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint8_t rnd[10];
	uint64_t t = (uint64_t)ms;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (uint8_t)(ward_mono_ns() >> (i % 8));
	for (int i = 9; i >= 0; i--) {
		out[i] = alpha[t & 31];
		t >>= 5;
	}
	/* 80 random bits as 16 base32 digits */
	uint64_t hi = tsdb_get_u64(rnd), lo = (uint64_t)rnd[8] << 8 | rnd[9];
	for (int i = 25; i >= 10; i--) {
		out[i] = alpha[lo & 31];
		lo = (lo >> 5) | ((hi & 31) << 11);
		hi >>= 5;
	}
	out[26] = 0;
}

int tsdb_rm_dir(const char *path) {
	DIR *d = opendir(path);
	struct dirent *de;
	char p[4096];

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (unlink(p) < 0 && errno == EISDIR)
			tsdb_rm_dir(p);
	}
	closedir(d);
	return rmdir(path);
}

/* ---- writer ---- */
struct block_writer {
	char *blocksdir, *tmpdir;
	char ulid[27];
	FILE *chunks;
	uint64_t off;
	struct buf series; /* per series: labels as strings, chunk count, metas length, metas */
	int64_t prev_mint; /* of the last chunk written: metas store differences */
	uint32_t nseries;
	uint64_t nsamples, nchunks;
	int64_t mint, maxt;
	struct labels last;
	struct tsdb_index idx;
	bool failed;
};

struct block_writer *bw_new(const char *dbdir, struct ward_err *err) {
	struct block_writer *bw = ward_xcalloc(1, sizeof(*bw));
	struct buf b = BUF_INIT;
	char path[4096];

	buf_printf(&b, "%s/blocks", dbdir);
	bw->blocksdir = buf_detach(&b);
	tsdb_ulid(bw->ulid, ward_now_ms());
	buf_printf(&b, "%s/%s.tmp", bw->blocksdir, bw->ulid);
	bw->tmpdir = buf_detach(&b);
	bw->mint = INT64_MAX;
	bw->maxt = INT64_MIN;
	idx_init(&bw->idx);
	labels_init(&bw->last);
	if (ward_mkdir_p(bw->tmpdir, 0700, err) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/chunks", bw->tmpdir);
	bw->chunks = fopen(path, "wbe");
	if (!bw->chunks) {
		ward_err_set(err, "tsdb: cannot create %s: %s", path, strerror(errno));
		goto fail;
	}
	fwrite(CHUNKS_MAGIC, 1, MAGIC_LEN, bw->chunks);
	bw->off = MAGIC_LEN;
	return bw;
fail:
	bw_abort(bw);
	return NULL;
}

void bw_abort(struct block_writer *bw) {
	if (!bw)
		return;
	if (bw->chunks)
		fclose(bw->chunks);
	if (bw->tmpdir)
		tsdb_rm_dir(bw->tmpdir);
	free(bw->blocksdir);
	free(bw->tmpdir);
	buf_free(&bw->series);
	labels_free(&bw->last);
	idx_free(&bw->idx);
	free(bw);
}

/* Writes the chunk of samples [0, n) of one column in the smaller encoding (chunk.c). */
static int flush_chunk(struct block_writer *bw, const int64_t *t, const double *v, size_t n,
                       uint8_t col, struct buf *metas, uint32_t *nmetas) {
	uint8_t hdr[4];
	uint32_t len;
	uint8_t *d = chunk_encode(t, v, n, &len);

	if (!d)
		return -1;
	tsdb_put_u32(hdr, len);
	fwrite(hdr, 1, 4, bw->chunks);
	fwrite(d, 1, len, bw->chunks);
	tsdb_put_u32(hdr, ward_crc32c(0, d, len));
	fwrite(hdr, 1, 4, bw->chunks);
	free(d);
	buf_putc(metas, (char)col);
	tsdb_buf_varint(metas, (int64_t)((uint64_t)t[0] - (uint64_t)bw->prev_mint));
	tsdb_buf_uvarint(metas, (uint64_t)t[n - 1] - (uint64_t)t[0]);
	tsdb_buf_uvarint(metas, len);
	tsdb_buf_uvarint(metas, n);
	bw->off += 8 + (uint64_t)len;
	bw->prev_mint = t[0];
	bw->nchunks++;
	(*nmetas)++;
	return 0;
}

int bw_add(struct block_writer *bw, const struct labels *ls, const int64_t *t,
           const double *const cols[COL_N], size_t n, struct ward_err *err) {
	struct buf metas = BUF_INIT;
	uint32_t nmetas = 0;

	if (n == 0)
		return 0;
	if (bw->last.n && labels_cmp(&bw->last, ls) >= 0) {
		ward_err_set(err, "tsdb: block writer: series out of order (internal error)");
		return -1;
	}
	for (size_t i = 1; i < n; i++)
		if (t[i] < t[i - 1]) {
			ward_err_set(err, "tsdb: block writer: samples out of order (internal error)");
			return -1;
		}
	for (int c = 0; c < COL_N; c++) {
		if (!cols[c])
			continue;
		for (size_t i = 0; i < n; i += GORILLA_SAMPLES_PER_CHUNK) {
			size_t k = n - i < GORILLA_SAMPLES_PER_CHUNK ? n - i : GORILLA_SAMPLES_PER_CHUNK;
			if (flush_chunk(bw, t + i, cols[c] + i, k, (uint8_t)c, &metas, &nmetas) < 0) {
				buf_free(&metas);
				ward_err_set(err, "tsdb: block writer: cannot encode a chunk "
				                  "(internal error)");
				return -1;
			}
		}
	}
	tsdb_buf_labels(&bw->series, ls);
	tsdb_buf_uvarint(&bw->series, nmetas);
	tsdb_buf_uvarint(&bw->series, metas.len);
	buf_append(&bw->series, metas.data, metas.len);
	buf_free(&metas);
	idx_add(&bw->idx, bw->nseries, ls);
	bw->nseries++;
	bw->nsamples += n;
	if (t[0] < bw->mint)
		bw->mint = t[0];
	if (t[n - 1] > bw->maxt)
		bw->maxt = t[n - 1];
	labels_copy(&bw->last, ls);
	return 0;
}

/* ---- symbols: every label name and value of the block, sorted, each once ---- */
struct symtab {
	const char **v; /* borrowed from the writer's index */
	size_t n, cap;
};

static void collect_symbols(void *arg, const char *name, const struct idx_postings *p) {
	struct symtab *st = arg;
	if (st->n + 2 > st->cap) {
		st->cap = st->cap ? st->cap * 2 : 256;
		st->v = ward_xrealloc(st->v, st->cap * sizeof(*st->v));
	}
	st->v[st->n++] = name;
	st->v[st->n++] = p->value;
}

static int str_cmp(const void *a, const void *b) {
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint64_t sym_ref(const struct symtab *st, const char *s) {
	const char **hit = bsearch(&s, st->v, st->n, sizeof(*st->v), str_cmp);
	return hit ? (uint64_t)(hit - st->v) : 0; /* always found: st holds every label */
}

/* The series section body (after the count) from the writer's per-series records. */
static int put_series(struct block_writer *bw, const struct symtab *st, struct buf *out) {
	const uint8_t *p = (const uint8_t *)bw->series.data, *end = p + bw->series.len;
	struct labels prev, ls;
	int rc = -1;

	labels_init(&prev);
	for (uint32_t i = 0; i < bw->nseries; i++) {
		uint64_t nmetas, mlen;
		if (tsdb_get_labels(&p, end, &ls) < 0)
			goto out;
		size_t shared = 0;
		while (shared < ls.n && shared < prev.n &&
		       strcmp(ls.v[shared].name, prev.v[shared].name) == 0 &&
		       strcmp(ls.v[shared].value, prev.v[shared].value) == 0)
			shared++;
		tsdb_buf_uvarint(out, shared);
		tsdb_buf_uvarint(out, ls.n - shared);
		for (size_t k = shared; k < ls.n; k++) {
			tsdb_buf_uvarint(out, sym_ref(st, ls.v[k].name));
			tsdb_buf_uvarint(out, sym_ref(st, ls.v[k].value));
		}
		labels_free(&prev);
		prev = ls;
		if (tsdb_get_uvarint(&p, end, &nmetas) < 0 ||
		    tsdb_get_uvarint(&p, end, &mlen) < 0 || mlen > (uint64_t)(end - p))
			goto out;
		tsdb_buf_uvarint(out, nmetas);
		buf_append(out, p, mlen);
		p += mlen;
	}
	rc = p == end ? 0 : -1;
out:
	labels_free(&prev);
	return rc;
}

int bw_finish(struct block_writer *bw, const struct block_meta_in *m, char ulid_out[27],
              struct ward_err *err) {
	struct buf idx = BUF_INIT;
	char path[4096], final[4096];
	char *meta = NULL;
	json_t *j = NULL;
	int rc = -1;

	ulid_out[0] = 0;
	if (bw->nseries == 0) {
		bw_abort(bw);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/chunks", bw->tmpdir);
	if (fflush(bw->chunks) != 0 || ferror(bw->chunks) || fsync(fileno(bw->chunks)) < 0) {
		ward_err_set(err, "tsdb: cannot write %s: %s; check free disk space", path,
		             strerror(errno));
		goto out;
	}
	fclose(bw->chunks);
	bw->chunks = NULL;

	struct symtab st = {0};
	idx_each(&bw->idx, collect_symbols, &st);
	if (st.n)
		qsort(st.v, st.n, sizeof(*st.v), str_cmp);
	size_t nsym = 0;
	for (size_t i = 0; i < st.n; i++)
		if (nsym == 0 || strcmp(st.v[nsym - 1], st.v[i]) != 0)
			st.v[nsym++] = st.v[i];
	st.n = nsym;
	buf_append(&idx, INDEX_MAGIC, MAGIC_LEN);
	uint64_t s_off = idx.len;
	tsdb_buf_uvarint(&idx, st.n);
	for (size_t i = 0; i < st.n; i++)
		tsdb_buf_str(&idx, st.v[i]);
	uint64_t s_len = idx.len - s_off;
	tsdb_buf_u32(&idx, ward_crc32c(0, idx.data + s_off, s_len));
	uint64_t p_off = idx.len;
	tsdb_buf_uvarint(&idx, bw->nseries);
	int sr = put_series(bw, &st, &idx);
	free(st.v);
	if (sr < 0) {
		ward_err_set(err, "tsdb: block writer: series records damaged (internal error)");
		goto out;
	}
	uint64_t p_len = idx.len - p_off;
	tsdb_buf_u32(&idx, ward_crc32c(0, idx.data + p_off, p_len));
	size_t f_off = idx.len;
	tsdb_buf_u64(&idx, s_off);
	tsdb_buf_u64(&idx, s_len);
	tsdb_buf_u64(&idx, p_off);
	tsdb_buf_u64(&idx, p_len);
	tsdb_buf_u32(&idx, ward_crc32c(0, idx.data + f_off, 32));
	buf_append(&idx, INDEX_MAGIC, MAGIC_LEN);
	snprintf(path, sizeof(path), "%s/index", bw->tmpdir);
	if (ward_write_file_atomic(path, idx.data, idx.len, 0600, err) < 0)
		goto out;

	j = json_pack("{s:s, s:I, s:I, s:{s:I, s:I, s:I}, s:{s:i, s:[]}, s:I, s:i}", "ulid",
	              bw->ulid, "minTime", (json_int_t)(m ? m->mint : bw->mint), "maxTime",
	              (json_int_t)(m ? m->maxt : bw->maxt), "stats", "numSamples",
	              (json_int_t)bw->nsamples, "numSeries", (json_int_t)bw->nseries, "numChunks",
	              (json_int_t)bw->nchunks, "compaction", "level", m ? m->level : 1, "sources",
	              "resolution", (json_int_t)(m ? m->resolution_ms : 0), "version", 1);
	json_t *src = json_object_get(json_object_get(j, "compaction"), "sources");
	if (m && m->nsources)
		for (size_t i = 0; i < m->nsources; i++)
			json_array_append_new(src, json_string(m->sources[i]));
	else
		json_array_append_new(src, json_string(bw->ulid));
	meta = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	snprintf(path, sizeof(path), "%s/meta.json", bw->tmpdir);
	if (!meta || ward_write_file_atomic(path, meta, strlen(meta), 0600, err) < 0)
		goto out;
	ward_fsync_dir(bw->tmpdir);
	snprintf(final, sizeof(final), "%s/%s", bw->blocksdir, bw->ulid);
	if (rename(bw->tmpdir, final) < 0) {
		ward_err_set(err, "tsdb: cannot rename %s to %s: %s", bw->tmpdir, final,
		             strerror(errno));
		goto out;
	}
	ward_fsync_dir(bw->blocksdir);
	memcpy(ulid_out, bw->ulid, 27);
	rc = 0;
out:
	free(meta);
	json_decref(j);
	buf_free(&idx);
	bw_abort(bw); /* after the rename the .tmp dir is gone, so this only frees */
	return rc;
}

/* ---- reader ---- */
void block_free(struct tsdb_block *b) {
	if (!b)
		return;
	if (b->map)
		munmap(b->map, b->maplen);
	for (uint32_t i = 0; i < b->nseries; i++) {
		labels_free(&b->series[i].ls);
		free(b->series[i].chunks);
	}
	free(b->series);
	for (size_t i = 0; i < b->nsources; i++)
		free(b->sources[i]);
	free(b->sources);
	idx_free(&b->idx);
	free(b->dir);
	free(b);
}

static int64_t file_size(const char *dir, const char *name) {
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

static int read_meta(struct tsdb_block *b, struct ward_err *err) {
	char path[4096];
	json_error_t je;
	snprintf(path, sizeof(path), "%s/meta.json", b->dir);
	json_t *j = json_load_file(path, 0, &je);
	if (!j) {
		ward_err_set(err, "tsdb: block %s: bad meta.json: %s", b->dir, je.text);
		return -1;
	}
	const char *ulid = json_string_value(json_object_get(j, "ulid"));
	json_t *comp = json_object_get(j, "compaction"), *src = json_object_get(comp, "sources");
	if (!ulid || strlen(ulid) != 26 || !json_is_integer(json_object_get(j, "minTime")) ||
	    !json_is_integer(json_object_get(j, "maxTime"))) {
		ward_err_set(err, "tsdb: block %s: meta.json lacks ulid, minTime or maxTime",
		             b->dir);
		json_decref(j);
		return -1;
	}
	memcpy(b->ulid, ulid, 27);
	b->mint = json_integer_value(json_object_get(j, "minTime"));
	b->maxt = json_integer_value(json_object_get(j, "maxTime"));
	b->level = (int)json_integer_value(json_object_get(comp, "level"));
	b->resolution_ms = json_integer_value(json_object_get(j, "resolution"));
	b->nsamples = (uint64_t)json_integer_value(
	        json_object_get(json_object_get(j, "stats"), "numSamples"));
	size_t ns = json_array_size(src);
	b->sources = ward_xcalloc(ns ? ns : 1, sizeof(char *));
	for (size_t i = 0; i < ns; i++) {
		const char *s = json_string_value(json_array_get(src, i));
		if (s)
			b->sources[b->nsources++] = ward_strdup(s);
	}
	json_decref(j);
	return 0;
}

/* Checks that a chunk of len bytes is framed at off in the chunks file. */
static bool chunk_at(const struct tsdb_block *b, uint64_t off, uint64_t len) {
	return off >= MAGIC_LEN && len <= b->maplen && off <= b->maplen - 8 - len &&
	       tsdb_get_u32(b->map + off) == len;
}

static int add_series(struct tsdb_block *b, uint64_t i, const uint8_t **p, const uint8_t *end,
                      uint64_t *nc) {
	struct block_series *s = &b->series[i];
	b->nseries = (uint32_t)i + 1;
	if (tsdb_labels_invalid(&s->ls) || (i > 0 && labels_cmp(&b->series[i - 1].ls, &s->ls) >= 0))
		return -1;
	if (tsdb_get_uvarint(p, end, nc) < 0 || *nc > (uint64_t)(end - *p))
		return -1;
	s->chunks = ward_xcalloc(*nc ? *nc : 1, sizeof(*s->chunks));
	idx_add(&b->idx, (uint32_t)i, &s->ls);
	return 0;
}

/* Index format 1: labels as strings, absolute chunk metas with offsets. */
static int parse_series_v1(struct tsdb_block *b, const uint8_t *p, const uint8_t *end) {
	uint64_t ns;
	if (tsdb_get_uvarint(&p, end, &ns) < 0 || ns > (uint64_t)(end - p) || ns > UINT32_MAX)
		return -1;
	b->series = ward_xcalloc(ns ? ns : 1, sizeof(*b->series));
	for (uint64_t i = 0; i < ns; i++) {
		struct block_series *s = &b->series[i];
		uint64_t nc;
		if (tsdb_get_labels(&p, end, &s->ls) < 0 || add_series(b, i, &p, end, &nc) < 0)
			return -1;
		for (uint64_t k = 0; k < nc; k++) {
			struct block_chunk_meta *c = &s->chunks[k];
			uint64_t span, off, len, n;
			if (p >= end)
				return -1;
			c->col = *p++;
			if (c->col >= COL_N || tsdb_get_varint(&p, end, &c->mint) < 0 ||
			    tsdb_get_uvarint(&p, end, &span) < 0 ||
			    tsdb_get_uvarint(&p, end, &off) < 0 ||
			    tsdb_get_uvarint(&p, end, &len) < 0 ||
			    tsdb_get_uvarint(&p, end, &n) < 0)
				return -1;
			if (!chunk_at(b, off, len) || n > UINT16_MAX)
				return -1;
			c->maxt = (int64_t)((uint64_t)c->mint + span);
			c->off = off;
			c->len = (uint32_t)len;
			c->n = (uint16_t)n;
			s->nchunks++;
			b->nchunks++;
		}
	}
	return p == end ? 0 : -1;
}

/* Index format 2: a symbol table, labels as symbol numbers after those shared with the
 * previous series, chunk mints as differences, offsets implied by the order. */
static int parse_series_v2(struct tsdb_block *b, const uint8_t *sp, const uint8_t *send,
                           const uint8_t *p, const uint8_t *end) {
	uint64_t nsym, ns, off = MAGIC_LEN;
	char **sym = NULL;
	int64_t mint = 0;
	int rc = -1;

	if (tsdb_get_uvarint(&sp, send, &nsym) < 0 || nsym > (uint64_t)(send - sp))
		return -1;
	sym = ward_xcalloc(nsym ? nsym : 1, sizeof(*sym));
	for (uint64_t i = 0; i < nsym; i++)
		if (!(sym[i] = tsdb_get_str(&sp, send))) {
			nsym = i;
			goto out;
		}
	if (sp != send || tsdb_get_uvarint(&p, end, &ns) < 0 || ns > (uint64_t)(end - p) ||
	    ns > UINT32_MAX)
		goto out;
	b->series = ward_xcalloc(ns ? ns : 1, sizeof(*b->series));
	for (uint64_t i = 0; i < ns; i++) {
		struct block_series *s = &b->series[i];
		const struct labels *prev = i ? &b->series[i - 1].ls : NULL;
		uint64_t shared, nnew, nc;
		if (tsdb_get_uvarint(&p, end, &shared) < 0 || shared > (prev ? prev->n : 0) ||
		    tsdb_get_uvarint(&p, end, &nnew) < 0 || nnew > (uint64_t)(end - p) ||
		    shared + nnew == 0) {
			b->nseries = (uint32_t)i + 1;
			goto out;
		}
		s->ls.v = ward_xcalloc(shared + nnew, sizeof(*s->ls.v));
		for (uint64_t k = 0; k < shared; k++) {
			s->ls.v[k].name = ward_strdup(prev->v[k].name);
			s->ls.v[k].value = ward_strdup(prev->v[k].value);
			s->ls.n++;
		}
		for (uint64_t k = 0; k < nnew; k++) {
			uint64_t nref, vref;
			if (tsdb_get_uvarint(&p, end, &nref) < 0 || nref >= nsym ||
			    tsdb_get_uvarint(&p, end, &vref) < 0 || vref >= nsym) {
				b->nseries = (uint32_t)i + 1;
				goto out;
			}
			s->ls.v[s->ls.n].name = ward_strdup(sym[nref]);
			s->ls.v[s->ls.n].value = ward_strdup(sym[vref]);
			s->ls.n++;
		}
		if (add_series(b, i, &p, end, &nc) < 0)
			goto out;
		for (uint64_t k = 0; k < nc; k++) {
			struct block_chunk_meta *c = &s->chunks[k];
			uint64_t span, len, n;
			int64_t dmint;
			if (p >= end)
				goto out;
			c->col = *p++;
			if (c->col >= COL_N || tsdb_get_varint(&p, end, &dmint) < 0 ||
			    tsdb_get_uvarint(&p, end, &span) < 0 ||
			    tsdb_get_uvarint(&p, end, &len) < 0 ||
			    tsdb_get_uvarint(&p, end, &n) < 0)
				goto out;
			if (!chunk_at(b, off, len) || n > UINT16_MAX)
				goto out;
			mint = (int64_t)((uint64_t)mint + (uint64_t)dmint);
			c->mint = mint;
			c->maxt = (int64_t)((uint64_t)mint + span);
			c->off = off;
			c->len = (uint32_t)len;
			c->n = (uint16_t)n;
			off += 8 + len;
			s->nchunks++;
			b->nchunks++;
		}
	}
	rc = p == end && off == b->maplen ? 0 : -1;
out:
	for (uint64_t i = 0; i < nsym; i++)
		free(sym[i]);
	free(sym);
	return rc;
}

struct tsdb_block *block_open(const char *blockdir, struct ward_err *err) {
	struct tsdb_block *b = ward_xcalloc(1, sizeof(*b));
	char path[4096];
	char *ix = NULL;
	size_t ixlen = 0;
	int fd = -1;

	b->dir = ward_strdup(blockdir);
	idx_init(&b->idx);
	if (read_meta(b, err) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/chunks", blockdir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < MAGIC_LEN) {
		ward_err_set(err, "tsdb: block %s: cannot read chunks file", blockdir);
		goto fail;
	}
	b->maplen = (size_t)st.st_size;
	b->map = mmap(NULL, b->maplen, PROT_READ, MAP_SHARED, fd, 0);
	if (b->map == MAP_FAILED) {
		b->map = NULL;
		ward_err_set(err, "tsdb: block %s: cannot map chunks: %s", blockdir,
		             strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (memcmp(b->map, CHUNKS_MAGIC, MAGIC_LEN) != 0)
		goto bad_chunks;
	for (size_t off = MAGIC_LEN; off < b->maplen;) {
		if (b->maplen - off < 8)
			goto bad_chunks;
		uint32_t len = tsdb_get_u32(b->map + off);
		if (len > b->maplen - off - 8 ||
		    ward_crc32c(0, b->map + off + 4, len) != tsdb_get_u32(b->map + off + 4 + len))
			goto bad_chunks;
		off += 8 + (size_t)len;
	}
	snprintf(path, sizeof(path), "%s/index", blockdir);
	if (ward_read_file(path, INDEX_MAX_BYTES, &ix, &ixlen, err) < 0)
		goto fail;
	const uint8_t *u = (const uint8_t *)ix;
	if (ixlen < MAGIC_LEN + FOOTER_LEN)
		goto bad_index;
	bool v1 = memcmp(u, INDEX_MAGIC_V1, MAGIC_LEN) == 0;
	const char *magic = v1 ? INDEX_MAGIC_V1 : INDEX_MAGIC;
	if (memcmp(u, magic, MAGIC_LEN) != 0 ||
	    memcmp(u + ixlen - MAGIC_LEN, magic, MAGIC_LEN) != 0)
		goto bad_index;
	const uint8_t *f = u + ixlen - FOOTER_LEN;
	if (ward_crc32c(0, f, 32) != tsdb_get_u32(f + 32))
		goto bad_index;
	/* v1: series, postings; v2: symbols, series */
	uint64_t s_off = tsdb_get_u64(f), s_len = tsdb_get_u64(f + 8);
	uint64_t p_off = tsdb_get_u64(f + 16), p_len = tsdb_get_u64(f + 24);
	uint64_t limit = ixlen - FOOTER_LEN;
	if (s_off > limit || s_len > limit - s_off || limit - s_off - s_len < 4 || p_off > limit ||
	    p_len > limit - p_off || limit - p_off - p_len < 4)
		goto bad_index;
	if (ward_crc32c(0, u + s_off, s_len) != tsdb_get_u32(u + s_off + s_len) ||
	    ward_crc32c(0, u + p_off, p_len) != tsdb_get_u32(u + p_off + p_len))
		goto bad_index;
	if (v1 ? parse_series_v1(b, u + s_off, u + s_off + s_len) < 0
	       : parse_series_v2(b, u + s_off, u + s_off + s_len, u + p_off, u + p_off + p_len) < 0)
		goto bad_index;
	free(ix);
	b->bytes = file_size(blockdir, "chunks") + file_size(blockdir, "index") +
	           file_size(blockdir, "meta.json");
	return b;
bad_chunks:
	ward_err_set(err, "tsdb: block %s: chunks file fails its checksum", blockdir);
	goto fail;
bad_index:
	ward_err_set(err, "tsdb: block %s: index file is damaged (checksum or structure)",
	             blockdir);
fail:
	if (fd >= 0)
		close(fd);
	free(ix);
	block_free(b);
	return NULL;
}

int block_series_read(const struct tsdb_block *b, uint32_t i, uint8_t col, int64_t mint,
                      int64_t maxt, struct tsdb_svec *out) {
	const struct block_series *s = &b->series[i];
	for (uint32_t k = 0; k < s->nchunks; k++) {
		const struct block_chunk_meta *c = &s->chunks[k];
		if (c->col != col || c->maxt < mint || c->mint > maxt)
			continue;
		if (svec_add_chunk(out, b->map + c->off + 4, c->len, mint, maxt) < 0)
			return -1;
	}
	return 0;
}

bool block_series_overlaps(const struct tsdb_block *b, uint32_t i, int64_t mint, int64_t maxt) {
	const struct block_series *s = &b->series[i];
	for (uint32_t k = 0; k < s->nchunks; k++)
		if (s->chunks[k].maxt >= mint && s->chunks[k].mint <= maxt)
			return true;
	return false;
}
