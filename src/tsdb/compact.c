/* compact.c: the block set over time: compaction, downsampling and retention.
 *
 * Compaction merges blocks of one resolution that fall inside one aligned range of 3x and
 * then 9x block_duration (once the range is complete, or at once when forced); equal
 * timestamps keep the value of the newer block. Downsampling writes, for every raw block
 * whose samples are all downsample_5m_after_ms older than the newest one (40 h by default,
 * as Thanos) and not yet covered by 5m blocks, a 5m block (and from 5m blocks older than
 * downsample_1h_after_ms, 10 days, 1h blocks) holding per
 * series and window five columns min, max, sum, count, last, stamped with the time of the
 * window's last sample; stale markers are skipped. Retention deletes blocks whose maxTime
 * is older than the newest data minus retention_ms, then the oldest blocks until the total
 * size fits retention_bytes. A new block is complete on disk before its sources are
 * deleted; a crash in between leaves duplicates that reads de-duplicate and the next open
 * removes (blocks_drop_replaced). Callers: db.c (maintain, open) under the write lock.
 */
#include "tsdb/tsdb_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const int64_t resolutions[] = {0, 300000, 3600000};

static int block_cmp(const void *a, const void *b) {
	const struct tsdb_block *x = *(struct tsdb_block *const *)a;
	const struct tsdb_block *y = *(struct tsdb_block *const *)b;
	if (x->resolution_ms != y->resolution_ms)
		return x->resolution_ms < y->resolution_ms ? -1 : 1;
	if (x->mint != y->mint)
		return x->mint < y->mint ? -1 : 1;
	return strcmp(x->ulid, y->ulid);
}

void blocks_sort(struct tsdb_blocks *bs) {
	qsort(bs->v, bs->n, sizeof(*bs->v), block_cmp);
}

void blocks_add(struct tsdb_blocks *bs, struct tsdb_block *b) {
	bs->v = ward_xrealloc(bs->v, (bs->n + 1) * sizeof(*bs->v));
	bs->v[bs->n++] = b;
	blocks_sort(bs);
}

void blocks_delete(struct tsdb_blocks *bs, size_t i) {
	struct tsdb_block *b = bs->v[i];
	char tmp[4096];

	/* Renamed first so a crash mid-delete leaves a .tmp dir, which open removes. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", b->dir);
	if (rename(b->dir, tmp) == 0)
		tsdb_rm_dir(tmp);
	else
		tsdb_rm_dir(b->dir);
	block_free(b);
	memmove(bs->v + i, bs->v + i + 1, (bs->n - i - 1) * sizeof(*bs->v));
	bs->n--;
}

/* Merges the blocks at idx[0..n) into one new block added to bs; the inputs are deleted. */
static int merge_blocks(const char *dbdir, struct tsdb_blocks *bs, size_t *idx, size_t n,
                        struct ward_err *err) {
	struct tsdb_block **in = ward_xcalloc(n, sizeof(*in));
	uint32_t *pos = ward_xcalloc(n, sizeof(*pos));
	struct tsdb_svec cols[COL_N];
	struct block_meta_in m = {INT64_MAX, INT64_MIN, 0, 0, NULL, 0};
	const char **sources = NULL;
	size_t nsrc = 0;
	int rc = -1;
	char ulid[27];

	memset(cols, 0, sizeof(cols));
	for (size_t i = 0; i < n; i++) {
		in[i] = bs->v[idx[i]];
		m.mint = in[i]->mint < m.mint ? in[i]->mint : m.mint;
		m.maxt = in[i]->maxt > m.maxt ? in[i]->maxt : m.maxt;
		m.level = in[i]->level > m.level ? in[i]->level : m.level;
		m.resolution_ms = in[i]->resolution_ms;
		sources = ward_xrealloc(sources, (nsrc + in[i]->nsources + 1) * sizeof(*sources));
		for (size_t k = 0; k < in[i]->nsources; k++)
			sources[nsrc++] = in[i]->sources[k];
	}
	m.level++;
	m.sources = sources;
	m.nsources = nsrc;
	struct block_writer *bw = bw_new(dbdir, err);
	if (!bw)
		goto out;
	for (;;) {
		const struct labels *cur = NULL;
		for (size_t i = 0; i < n; i++)
			if (pos[i] < in[i]->nseries &&
			    (!cur || labels_cmp(&in[i]->series[pos[i]].ls, cur) < 0))
				cur = &in[i]->series[pos[i]].ls;
		if (!cur)
			break;
		bool raw = m.resolution_ms == 0;
		for (int c = 0; c < COL_N; c++)
			cols[c].n = 0;
		for (size_t i = 0; i < n; i++) {
			if (pos[i] >= in[i]->nseries ||
			    !labels_equal(&in[i]->series[pos[i]].ls, cur))
				continue;
			for (int c = raw ? COL_RAW : COL_MIN; c <= (raw ? COL_RAW : COL_LAST); c++)
				if (block_series_read(in[i], pos[i], (uint8_t)c, INT64_MIN,
				                      INT64_MAX, &cols[c]) < 0) {
					ward_err_set(err,
					             "tsdb: block %s: chunk damaged during "
					             "compaction",
					             in[i]->dir);
					bw_abort(bw);
					goto out;
				}
		}
		const double *cv[COL_N] = {0};
		size_t cnt = 0;
		const int64_t *t = NULL;
		for (int c = raw ? COL_RAW : COL_MIN; c <= (raw ? COL_RAW : COL_LAST); c++) {
			svec_sort_dedup(&cols[c]);
			cv[c] = cols[c].v;
			if (c > COL_MIN && cols[c].n != cnt) {
				ward_err_set(err,
				             "tsdb: downsampled columns disagree in compaction");
				bw_abort(bw);
				goto out;
			}
			cnt = cols[c].n;
			t = cols[c].t;
		}
		struct labels keep;
		labels_init(&keep);
		labels_copy(&keep, cur); /* cur points into an input that pos moves past */
		int r = bw_add(bw, &keep, t, cv, cnt, err);
		for (size_t i = 0; i < n; i++)
			if (pos[i] < in[i]->nseries &&
			    labels_equal(&in[i]->series[pos[i]].ls, &keep))
				pos[i]++;
		labels_free(&keep);
		if (r < 0) {
			bw_abort(bw);
			goto out;
		}
	}
	if (bw_finish(bw, &m, ulid, err) < 0)
		goto out;
	if (ulid[0]) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/blocks/%s", dbdir, ulid);
		struct tsdb_block *nb = block_open(dir, err);
		if (!nb)
			goto out;
		/* Delete inputs (highest index first so the others stay valid). */
		for (size_t i = n; i-- > 0;)
			blocks_delete(bs, idx[i]);
		blocks_add(bs, nb);
	} else {
		for (size_t i = n; i-- > 0;)
			blocks_delete(bs, idx[i]);
	}
	rc = 0;
out:
	for (int c = 0; c < COL_N; c++)
		svec_free(&cols[c]);
	free(sources);
	free(in);
	free(pos);
	return rc;
}

static int size_t_cmp(const void *a, const void *b) {
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* One pass: finds one compactable group and merges it. 1 merged, 0 nothing, -1 error. */
static int compact_once(const char *dbdir, struct tsdb_blocks *bs, const struct tsdb_opts *o,
                        int64_t db_maxt, bool force, struct ward_err *err) {
	for (size_t r = 0; r < sizeof(resolutions) / sizeof(resolutions[0]); r++) {
		for (int64_t mult = 3; mult <= 9; mult *= 3) {
			int64_t span = o->block_duration_ms * mult;
			for (size_t i = 0; i < bs->n; i++) {
				struct tsdb_block *b = bs->v[i];
				if (b->resolution_ms != resolutions[r])
					continue;
				int64_t lo = tsdb_align(b->mint, span);
				int64_t hi = tsdb_sat_add(lo, span - 1);
				if (b->maxt > hi)
					continue;
				if (!force && hi >= db_maxt)
					continue;
				size_t *idx = ward_xcalloc(bs->n, sizeof(*idx)), n = 0;
				for (size_t j = 0; j < bs->n; j++)
					if (bs->v[j]->resolution_ms == resolutions[r] &&
					    bs->v[j]->mint >= lo && bs->v[j]->maxt <= hi)
						idx[n++] = j;
				if (n >= 2) {
					qsort(idx, n, sizeof(*idx), size_t_cmp);
					int rc = merge_blocks(dbdir, bs, idx, n, err);
					free(idx);
					return rc < 0 ? -1 : 1;
				}
				free(idx);
			}
		}
	}
	return 0;
}

/* Whether blocks of resolution res together cover [mint, maxt]. */
bool blocks_covered(const struct tsdb_blocks *bs, int64_t res, int64_t mint, int64_t maxt) {
	int64_t cur = mint;
	bool progress = true;
	while (progress && cur <= maxt) {
		progress = false;
		for (size_t i = 0; i < bs->n; i++) {
			const struct tsdb_block *b = bs->v[i];
			if (b->resolution_ms == res && b->mint <= cur && b->maxt >= cur) {
				if (b->maxt == INT64_MAX)
					return true;
				cur = b->maxt + 1;
				progress = true;
			}
		}
	}
	return cur > maxt;
}

void downsample_series(const int64_t *t, const double *const in[COL_N], size_t n, int64_t res_ms,
                       struct tsdb_svec *out) {
	bool raw = in[COL_RAW] != NULL;
	bool open = false;
	int64_t win = 0, last_t = 0;
	double mn = 0, mx = 0, sum = 0, count = 0, last = 0;

	for (size_t i = 0; i <= n; i++) {
		int64_t w = i < n ? tsdb_floor_div(t[i], res_ms) : 0;
		if (open && (i == n || w != win)) {
			svec_push(&out[COL_MIN], last_t, mn);
			svec_push(&out[COL_MAX], last_t, mx);
			svec_push(&out[COL_SUM], last_t, sum);
			svec_push(&out[COL_COUNT], last_t, count);
			svec_push(&out[COL_LAST], last_t, last);
			open = false;
		}
		if (i == n)
			break;
		double vmin, vmax, vsum, vcount, vlast;
		if (raw) {
			if (tsdb_is_stale_nan(in[COL_RAW][i]))
				continue;
			vmin = vmax = vsum = vlast = in[COL_RAW][i];
			vcount = 1;
		} else {
			vmin = in[COL_MIN][i];
			vmax = in[COL_MAX][i];
			vsum = in[COL_SUM][i];
			vcount = in[COL_COUNT][i];
			vlast = in[COL_LAST][i];
		}
		if (!open) {
			open = true;
			win = w;
			mn = vmin;
			mx = vmax;
			sum = vsum;
			count = vcount;
		} else {
			mn = vmin < mn ? vmin : mn;
			mx = vmax > mx ? vmax : mx;
			sum += vsum;
			count += vcount;
		}
		last = vlast;
		last_t = t[i];
	}
}

static int downsample_block(const char *dbdir, struct tsdb_blocks *bs, struct tsdb_block *src,
                            int64_t res, struct ward_err *err) {
	struct tsdb_svec in[COL_N], out[COL_N];
	struct block_meta_in m = {src->mint, src->maxt, 1, res, NULL, 0};
	char ulid[27];
	int rc = -1;
	bool raw = src->resolution_ms == 0;

	memset(in, 0, sizeof(in));
	memset(out, 0, sizeof(out));
	struct block_writer *bw = bw_new(dbdir, err);
	if (!bw)
		return -1;
	for (uint32_t i = 0; i < src->nseries; i++) {
		const double *cv[COL_N] = {0};
		for (int c = 0; c < COL_N; c++) {
			in[c].n = 0;
			out[c].n = 0;
		}
		for (int c = raw ? COL_RAW : COL_MIN; c <= (raw ? COL_RAW : COL_LAST); c++) {
			if (block_series_read(src, i, (uint8_t)c, INT64_MIN, INT64_MAX, &in[c]) < 0)
				goto fail_damaged;
			cv[c] = in[c].v;
		}
		size_t nin = in[raw ? COL_RAW : COL_MIN].n;
		for (int c = COL_MIN; !raw && c <= COL_LAST; c++)
			if (in[c].n != nin)
				goto fail_damaged;
		downsample_series(in[raw ? COL_RAW : COL_MIN].t, cv, nin, res, out);
		const double *ov[COL_N] = {NULL,           out[COL_MIN].v,   out[COL_MAX].v,
		                           out[COL_SUM].v, out[COL_COUNT].v, out[COL_LAST].v};
		if (bw_add(bw, &src->series[i].ls, out[COL_MIN].t, ov, out[COL_MIN].n, err) < 0)
			goto fail;
	}
	if (bw_finish(bw, &m, ulid, err) < 0) {
		bw = NULL;
		goto out;
	}
	bw = NULL;
	if (ulid[0]) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/blocks/%s", dbdir, ulid);
		struct tsdb_block *nb = block_open(dir, err);
		if (!nb)
			goto out;
		blocks_add(bs, nb);
	}
	rc = 0;
	goto out;
fail_damaged:
	ward_err_set(err, "tsdb: block %s: chunk damaged during downsampling", src->dir);
fail:
	bw_abort(bw);
out:
	for (int c = 0; c < COL_N; c++) {
		svec_free(&in[c]);
		svec_free(&out[c]);
	}
	return rc;
}

/* Whether all of b's samples are at least after_ms older than db_maxt. */
static bool old_enough(const struct tsdb_block *b, int64_t after_ms, int64_t db_maxt) {
	return db_maxt != INT64_MIN &&
	       b->maxt <= tsdb_sat_add(db_maxt, after_ms > 0 ? -after_ms : 0);
}

int compact_downsample(const char *dbdir, struct tsdb_blocks *bs, const struct tsdb_opts *o,
                       int64_t db_maxt, struct ward_err *err) {
	for (size_t r = 1; r < sizeof(resolutions) / sizeof(resolutions[0]); r++) {
		int64_t after = r == 1 ? o->downsample_5m_after_ms : o->downsample_1h_after_ms;
		/* Snapshot the sources first: downsampling only adds blocks, so the pointers stay
		 * valid, and a source whose output is empty (only stale markers) is visited once.
		 */
		struct tsdb_block **todo = ward_xcalloc(bs->n ? bs->n : 1, sizeof(*todo));
		size_t n = 0;
		for (size_t i = 0; i < bs->n; i++)
			if (bs->v[i]->resolution_ms == resolutions[r - 1] &&
			    old_enough(bs->v[i], after, db_maxt) &&
			    !blocks_covered(bs, resolutions[r], bs->v[i]->mint, bs->v[i]->maxt))
				todo[n++] = bs->v[i];
		for (size_t i = 0; i < n; i++)
			if (downsample_block(dbdir, bs, todo[i], resolutions[r], err) < 0) {
				free(todo);
				return -1;
			}
		free(todo);
	}
	return 0;
}

void compact_retention(struct tsdb_blocks *bs, const struct tsdb_opts *o, int64_t db_maxt) {
	if (o->retention_ms > 0 && db_maxt != INT64_MIN) {
		int64_t cutoff = tsdb_sat_add(db_maxt, -o->retention_ms);
		for (size_t i = bs->n; i-- > 0;)
			if (bs->v[i]->maxt < cutoff)
				blocks_delete(bs, i);
	}
	if (o->retention_bytes > 0) {
		for (;;) {
			int64_t total = 0;
			size_t oldest = SIZE_MAX;
			for (size_t i = 0; i < bs->n; i++) {
				total += bs->v[i]->bytes;
				if (oldest == SIZE_MAX || bs->v[i]->mint < bs->v[oldest]->mint)
					oldest = i;
			}
			if (total <= o->retention_bytes || oldest == SIZE_MAX)
				break;
			blocks_delete(bs, oldest);
		}
	}
}

int compact_run(const char *dbdir, struct tsdb_blocks *bs, const struct tsdb_opts *o,
                int64_t db_maxt, bool force, uint64_t *quarantined, struct ward_err *err) {
	int r;
	(void)quarantined;
	while ((r = compact_once(dbdir, bs, o, db_maxt, force, err)) == 1)
		;
	if (r < 0)
		return -1;
	if (o->downsample && compact_downsample(dbdir, bs, o, db_maxt, err) < 0)
		return -1;
	while ((r = compact_once(dbdir, bs, o, db_maxt, force, err)) == 1)
		;
	if (r < 0)
		return -1;
	compact_retention(bs, o, db_maxt);
	return 0;
}
