/* head.c: the in-memory head: series with closed Gorilla chunks, one open chunk and a
 * small sorted side buffer for out-of-order samples, found by labels hash or by ref.
 *
 * Invariants: chunks of a series are in time order and never overlap (each holds at most
 * GORILLA_SAMPLES_PER_CHUNK samples); maxt is the newest in-order sample; ooo samples are
 * older than maxt and within ooo_window_ms of it when accepted, sorted and unique. Reads
 * merge chunks and the side buffer. No per-sample heap allocation: chunks grow as byte
 * arrays. Callers: db.c under the db lock (writes exclusive, reads shared).
 */
#include "tsdb/tsdb_internal.h"

#include <stdlib.h>

void head_init(struct tsdb_head *h) {
	memset(h, 0, sizeof(*h));
	idx_init(&h->idx);
	h->next_ref = 1;
	h->mint = INT64_MAX;
	h->maxt = INT64_MIN;
}

static void series_free(struct head_series *s) {
	for (uint32_t i = 0; i < s->nchunks; i++)
		free(s->chunks[i].data);
	free(s->chunks);
	gorilla_enc_free(&s->open);
	free(s->ooo);
	labels_free(&s->ls);
	free(s);
}

void head_free(struct tsdb_head *h) {
	for (size_t i = 0; i < h->ntab; i++) {
		struct head_series *s = h->htab[i];
		while (s) {
			struct head_series *next = s->hnext;
			series_free(s);
			s = next;
		}
	}
	free(h->htab);
	free(h->rtab);
	idx_free(&h->idx);
	head_init(h);
}

static size_t ref_bucket(uint32_t ref, size_t ntab) {
	return (size_t)(ref * 2654435761u) & (ntab - 1);
}

struct head_series *head_by_labels(struct tsdb_head *h, const struct labels *ls, uint64_t hash) {
	if (!h->ntab)
		return NULL;
	for (struct head_series *s = h->htab[hash & (h->ntab - 1)]; s; s = s->hnext)
		if (s->hash == hash && labels_equal(&s->ls, ls))
			return s;
	return NULL;
}

struct head_series *head_by_ref(struct tsdb_head *h, uint32_t ref) {
	if (!h->ntab)
		return NULL;
	for (struct head_series *s = h->rtab[ref_bucket(ref, h->ntab)]; s; s = s->rnext)
		if (s->ref == ref)
			return s;
	return NULL;
}

static void head_grow(struct tsdb_head *h) {
	size_t n = h->ntab ? h->ntab * 2 : 256;
	struct head_series **ht = ward_xcalloc(n, sizeof(*ht)), **rt = ward_xcalloc(n, sizeof(*rt));
	for (size_t i = 0; i < h->ntab; i++) {
		struct head_series *s = h->htab[i];
		while (s) {
			struct head_series *next = s->hnext;
			size_t b = s->hash & (n - 1);
			s->hnext = ht[b];
			ht[b] = s;
			b = ref_bucket(s->ref, n);
			s->rnext = rt[b];
			rt[b] = s;
			s = next;
		}
	}
	free(h->htab);
	free(h->rtab);
	h->htab = ht;
	h->rtab = rt;
	h->ntab = n;
}

struct head_series *head_create(struct tsdb_head *h, uint32_t ref, const struct labels *ls,
                                uint64_t hash) {
	if (h->nseries >= h->ntab * 3 / 4)
		head_grow(h);
	struct head_series *s = ward_xcalloc(1, sizeof(*s));
	s->ref = ref;
	s->hash = hash;
	labels_copy(&s->ls, ls);
	gorilla_enc_init(&s->open);
	s->maxt = INT64_MIN;
	size_t b = hash & (h->ntab - 1);
	s->hnext = h->htab[b];
	h->htab[b] = s;
	b = ref_bucket(ref, h->ntab);
	s->rnext = h->rtab[b];
	h->rtab[b] = s;
	h->nseries++;
	if (ref >= h->next_ref)
		h->next_ref = ref + 1;
	idx_add(&h->idx, ref, &s->ls);
	h->bytes += (int64_t)sizeof(*s);
	for (size_t i = 0; i < ls->n; i++)
		h->bytes += (int64_t)(strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2 +
		                      sizeof(struct label));
	return s;
}

void head_remove(struct tsdb_head *h, struct head_series *s) {
	struct head_series **pp;
	for (pp = &h->htab[s->hash & (h->ntab - 1)]; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	for (pp = &h->rtab[ref_bucket(s->ref, h->ntab)]; *pp; pp = &(*pp)->rnext)
		if (*pp == s) {
			*pp = s->rnext;
			break;
		}
	idx_del(&h->idx, s->ref, &s->ls);
	h->nseries--;
	series_free(s);
}

static void close_open_chunk(struct tsdb_head *h, struct head_series *s) {
	if (s->open.n == 0)
		return;
	if (s->nchunks == s->capchunks) {
		s->capchunks = s->capchunks ? s->capchunks * 2 : 2;
		s->chunks = ward_xrealloc(s->chunks, s->capchunks * sizeof(*s->chunks));
	}
	struct head_chunk *c = &s->chunks[s->nchunks++];
	int64_t before = s->open.cap;
	c->n = s->open.n;
	c->mint = s->open_mint;
	c->maxt = s->open.t;
	c->data = gorilla_detach(&s->open, &c->len);
	h->bytes -= before - (int64_t)c->len;
}

/* 1 when the in-order chunks hold t with these value bits, -1 with other bits, 0 not at
 * all. Decodes only the chunks whose range covers t (out-of-order appends are rare). */
static int in_order_value(const struct head_series *s, int64_t t, uint64_t vb) {
	for (uint32_t i = 0; i <= s->nchunks; i++) {
		const uint8_t *d = i < s->nchunks ? s->chunks[i].data : s->open.data;
		size_t len = i < s->nchunks ? s->chunks[i].len : s->open.len;
		int64_t lo = i < s->nchunks ? s->chunks[i].mint : s->open_mint;
		int64_t hi = i < s->nchunks ? s->chunks[i].maxt : s->open.t;
		if ((i == s->nchunks && s->open.n == 0) || t < lo || t > hi)
			continue;
		struct chunk_it it;
		int64_t ct;
		double cv;
		if (chunk_it_init(&it, d, len) < 0)
			continue;
		while (chunk_it_next(&it, &ct, &cv) == 1 && ct <= t)
			if (ct == t)
				return tsdb_dbits(cv) == vb ? 1 : -1;
	}
	return 0;
}

enum head_result head_append(struct tsdb_head *h, struct head_series *s, int64_t t, double v,
                             int64_t ooo_window_ms) {
	uint64_t vb = tsdb_dbits(v);

	if (s->maxt != INT64_MIN && t <= s->maxt) {
		if (t == s->maxt)
			return s->open.n && s->open.v == vb ? HEAD_IGNORED
			       : s->open.n                  ? HEAD_DUPLICATE
			                                    : HEAD_IGNORED;
		if (ooo_window_ms <= 0 || (uint64_t)s->maxt - (uint64_t)t > (uint64_t)ooo_window_ms)
			return HEAD_TOO_OLD;
		int dup = in_order_value(s, t, vb);
		if (dup)
			return dup > 0 ? HEAD_IGNORED : HEAD_DUPLICATE;
		/* Sorted insert into the side buffer. */
		uint32_t lo = 0, hi = s->nooo;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (s->ooo[mid].t < t)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < s->nooo && s->ooo[lo].t == t)
			return tsdb_dbits(s->ooo[lo].v) == vb ? HEAD_IGNORED : HEAD_DUPLICATE;
		if (s->nooo == s->capooo) {
			uint32_t ncap = s->capooo ? s->capooo * 2 : 4;
			s->ooo = ward_xrealloc(s->ooo, ncap * sizeof(*s->ooo));
			h->bytes += (int64_t)((ncap - s->capooo) * sizeof(*s->ooo));
			s->capooo = ncap;
		}
		memmove(s->ooo + lo + 1, s->ooo + lo, (s->nooo - lo) * sizeof(*s->ooo));
		s->ooo[lo].t = t;
		s->ooo[lo].v = v;
		s->nooo++;
	} else {
		if (s->open.n >= GORILLA_SAMPLES_PER_CHUNK)
			close_open_chunk(h, s);
		if (s->open.n == 0) {
			s->open_mint = t;
			h->chunks++;
		}
		uint32_t cap = s->open.cap;
		gorilla_append(&s->open, t, v);
		h->bytes += (int64_t)s->open.cap - cap;
		s->maxt = t;
	}
	h->samples++;
	if (t < h->mint)
		h->mint = t;
	if (t > h->maxt)
		h->maxt = t;
	return HEAD_OK;
}

void head_series_read(const struct head_series *s, int64_t mint, int64_t maxt,
                      struct tsdb_svec *out) {
	size_t start = out->n;
	for (uint32_t i = 0; i < s->nchunks; i++) {
		const struct head_chunk *c = &s->chunks[i];
		if (c->maxt < mint || c->mint > maxt)
			continue;
		svec_add_chunk(out, c->data, c->len, mint, maxt);
	}
	if (s->open.n && s->open.t >= mint && s->open_mint <= maxt)
		svec_add_chunk(out, s->open.data, s->open.len, mint, maxt);
	if (s->nooo == 0)
		return;
	bool any = false;
	for (uint32_t i = 0; i < s->nooo; i++)
		if (s->ooo[i].t >= mint && s->ooo[i].t <= maxt) {
			svec_push(out, s->ooo[i].t, s->ooo[i].v);
			any = true;
		}
	if (any) {
		/* Sort only this series' part; keep the in-order copy of equal timestamps by
		 * sorting a view whose last duplicate is the in-order one is not needed: equal
		 * timestamps between chunk and side buffer only arise from replays of the same
		 * value. */
		struct tsdb_svec view = {out->t + start, out->v + start, out->n - start,
		                         out->n - start};
		svec_sort_dedup(&view);
		out->n = start + view.n;
	}
}

bool head_series_overlaps(const struct head_series *s, int64_t mint, int64_t maxt) {
	if (s->nchunks && s->chunks[0].mint <= maxt) {
		for (uint32_t i = 0; i < s->nchunks; i++)
			if (s->chunks[i].maxt >= mint && s->chunks[i].mint <= maxt)
				return true;
	}
	if (s->open.n && s->open.t >= mint && s->open_mint <= maxt)
		return true;
	for (uint32_t i = 0; i < s->nooo; i++)
		if (s->ooo[i].t >= mint && s->ooo[i].t <= maxt)
			return true;
	return false;
}

static int series_cmp(const void *a, const void *b) {
	const struct head_series *x = *(struct head_series *const *)a;
	const struct head_series *y = *(struct head_series *const *)b;
	return labels_cmp(&x->ls, &y->ls);
}

struct head_series **head_sorted(struct tsdb_head *h, size_t *n) {
	struct head_series **v = ward_xcalloc(h->nseries ? h->nseries : 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < h->ntab; i++)
		for (struct head_series *s = h->htab[i]; s; s = s->hnext)
			v[k++] = s;
	qsort(v, k, sizeof(*v), series_cmp);
	*n = k;
	return v;
}

void head_recount(struct tsdb_head *h) {
	h->samples = h->chunks = 0;
	h->bytes = (int64_t)(h->ntab * 2 * sizeof(void *));
	h->mint = INT64_MAX;
	h->maxt = INT64_MIN;
	for (size_t i = 0; i < h->ntab; i++)
		for (struct head_series *s = h->htab[i]; s; s = s->hnext) {
			h->bytes += (int64_t)sizeof(*s) + (int64_t)s->open.cap +
			            (int64_t)(s->capchunks * sizeof(*s->chunks)) +
			            (int64_t)(s->capooo * sizeof(*s->ooo));
			for (size_t j = 0; j < s->ls.n; j++)
				h->bytes += (int64_t)(strlen(s->ls.v[j].name) +
				                      strlen(s->ls.v[j].value) + 2 +
				                      sizeof(struct label));
			for (uint32_t j = 0; j < s->nchunks; j++) {
				h->samples += s->chunks[j].n;
				h->bytes += s->chunks[j].len;
				if (s->chunks[j].mint < h->mint)
					h->mint = s->chunks[j].mint;
				if (s->chunks[j].maxt > h->maxt)
					h->maxt = s->chunks[j].maxt;
			}
			h->chunks += s->nchunks + (s->open.n ? 1 : 0);
			h->samples += s->open.n + s->nooo;
			if (s->open.n) {
				if (s->open_mint < h->mint)
					h->mint = s->open_mint;
				if (s->open.t > h->maxt)
					h->maxt = s->open.t;
			}
			if (s->nooo) {
				if (s->ooo[0].t < h->mint)
					h->mint = s->ooo[0].t;
			}
		}
}
