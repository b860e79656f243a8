/* eval.c: the PromQL evaluator core: selectors, matrices, subqueries, instant and range
 * queries, results and their JSON.
 *
 * An instant query evaluates the tree at one time t; a range query evaluates it at every
 * step and merges the vectors by label set, except that a selector or a range function over
 * a selector (the query itself, or its first such sub-expression) is evaluated series-wise
 * for all steps at once first (see "series-wise range evaluation"). Instant selectors
 * take the newest sample in [t - lookback, t] unless it is a stale marker; range selectors
 * take the samples in [t - range, t] without stale markers, and subqueries evaluate at the
 * step-aligned times in [t - range, t]: closed windows, as Prometheus 2.x (Debian 12 ships
 * 2.42, the peer of our compatibility test). WINDOW_LEFT_OPEN switches all three to
 * Prometheus 3's left-open windows.
 * Each selector reads storage once per query (plus a read-ahead) and later steps take
 * views (borrowed slices) of that. Evaluation keeps all its state in struct eval_ctx: concurrent queries are safe as
 * long as the storage's select is. Called through promql_eval_instant / promql_eval_range.
 */
#include "promql/promql_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LOOKBACK_MS (5 * 60 * 1000)
/* promqltest and Prometheus' default global evaluation interval: a subquery without a
 * step uses it. */
#define DEFAULT_SUBQUERY_STEP_MS (60 * 1000)
/* 0: windows are closed, [t - lookback, t], [t - range, t] (Prometheus 2); 1: left-open,
 * (t - lookback, t], (t - range, t] (Prometheus 3). One switch so the choice is visible and
 * testable (tests/promql/staleness.test and selectors.test pin it). */
#define WINDOW_LEFT_OPEN 0

bool promql_is_stale(double v) {
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b == PROMQL_STALE_BITS;
}

double promql_stale(void) {
	uint64_t b = PROMQL_STALE_BITS;
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

void promql_opts_default(struct promql_opts *o) {
	memset(o, 0, sizeof(*o));
	o->lookback_ms = DEFAULT_LOOKBACK_MS;
}

/* ---- small containers ---- */
void promql_vec_push(struct vec *v, struct labels *ls_moved, double val) {
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->s = ward_xrealloc(v->s, v->cap * sizeof(v->s[0]));
	}
	v->s[v->n].ls = *ls_moved;
	v->s[v->n].v = val;
	v->s[v->n].t = INT64_MIN;
	v->n++;
	labels_init(ls_moved);
}

void promql_vec_free(struct vec *v) {
	size_t i;

	for (i = 0; i < v->n; i++)
		labels_free(&v->s[i].ls);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

void promql_series_free_all(struct tsdb_series *s, size_t n) {
	size_t i;

	for (i = 0; i < n; i++) {
		labels_free(&s[i].labels);
		free(s[i].t);
		free(s[i].v);
	}
	free(s);
}

void promql_value_free(struct value *v) {
	free(v->str);
	promql_vec_free(&v->vec);
	promql_series_free_all(v->m, v->nm);
	memset(v, 0, sizeof(*v));
}

void promql_labels_drop_name(struct labels *ls) {
	labels_del(ls, "__name__");
}

static int cmp_sample_labels(const void *a, const void *b) {
	return labels_cmp(&((const struct sample *)a)->ls, &((const struct sample *)b)->ls);
}

void promql_sort_vec(struct vec *v) {
	if (v->n > 1)
		qsort(v->s, v->n, sizeof(v->s[0]), cmp_sample_labels);
}

struct hashed {
	uint64_t h;
	size_t i;
};

static int cmp_hashed(const void *a, const void *b) {
	const struct hashed *x = a, *y = b;
	return x->h < y->h ? -1 : x->h > y->h;
}

/* Equal label sets have equal hashes: sort the hashes and compare only neighbours whose
 * hashes collide (no key strings, no map; this runs for every step's result). */
bool promql_vec_has_dup_labels(const struct vec *v) {
	struct hashed stackbuf[64], *hs;
	bool dup = false;
	size_t i, j;

	if (v->n < 2)
		return false;
	hs = v->n <= 64 ? stackbuf : ward_xmalloc(v->n * sizeof(*hs));
	for (i = 0; i < v->n; i++)
		hs[i] = (struct hashed){labels_hash(&v->s[i].ls), i};
	qsort(hs, v->n, sizeof(*hs), cmp_hashed);
	for (i = 1; i < v->n && !dup; i++)
		for (j = i; j > 0 && hs[j - 1].h == hs[i].h && !dup; j--)
			dup = labels_equal(&v->s[hs[j - 1].i].ls, &v->s[hs[i].i].ls);
	if (hs != stackbuf)
		free(hs);
	return dup;
}

/* Key of the labels named (on) or of all labels but those named and __name__ (!on). */
void promql_sig(const struct labels *ls, char **names, size_t nnames, bool on, struct buf *out) {
	size_t i, j;

	buf_reset(out);
	buf_putc(out, 0);
	for (i = 0; i < ls->n; i++) {
		bool listed = false;
		for (j = 0; j < nnames; j++)
			if (strcmp(ls->v[i].name, names[j]) == 0) {
				listed = true;
				break;
			}
		if (on ? !listed : (listed || strcmp(ls->v[i].name, "__name__") == 0))
			continue;
		buf_puts(out, ls->v[i].name);
		buf_putc(out, '\xff');
		buf_puts(out, ls->v[i].value);
		buf_putc(out, '\xff');
	}
}

/* Key of the whole label set. */
void promql_labels_key(const struct labels *ls, struct buf *out) {
	size_t i;

	buf_reset(out);
	buf_putc(out, 0);
	for (i = 0; i < ls->n; i++) {
		buf_puts(out, ls->v[i].name);
		buf_putc(out, '\xff');
		buf_puts(out, ls->v[i].value);
		buf_putc(out, '\xff');
	}
}

static uint64_t hash_bytes(const char *s, size_t n) {
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void strmap_free(struct strmap *m) {
	free(m->slots);
	free(m->arena);
	memset(m, 0, sizeof(*m));
}

static bool slot_eq(const struct strmap *m, const struct strmap_slot *sl, uint64_t h,
                    const char *key, size_t len) {
	return sl->hash == h && sl->len == len && memcmp(m->arena + sl->off - 1, key, len) == 0;
}

size_t strmap_get(const struct strmap *m, const char *key, size_t len) {
	uint64_t h;
	size_t i;

	if (m->cap == 0)
		return SIZE_MAX;
	h = hash_bytes(key, len);
	for (i = h & (m->cap - 1); m->slots[i].off; i = (i + 1) & (m->cap - 1))
		if (slot_eq(m, &m->slots[i], h, key, len))
			return m->slots[i].val;
	return SIZE_MAX;
}

void strmap_put(struct strmap *m, const char *key, size_t len, size_t val) {
	uint64_t h = hash_bytes(key, len);
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		struct strmap_slot *ns = ward_xcalloc(ncap, sizeof(*ns));
		for (i = 0; i < m->cap; i++) {
			size_t j;
			if (!m->slots[i].off)
				continue;
			for (j = m->slots[i].hash & (ncap - 1); ns[j].off; j = (j + 1) & (ncap - 1))
				;
			ns[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	for (i = h & (m->cap - 1); m->slots[i].off; i = (i + 1) & (m->cap - 1))
		if (slot_eq(m, &m->slots[i], h, key, len)) {
			m->slots[i].val = val;
			return;
		}
	if (m->alen + len + 1 > m->acap) {
		m->acap = (m->alen + len + 1) * 2;
		m->arena = ward_xrealloc(m->arena, m->acap);
	}
	if (len)
		memcpy(m->arena + m->alen, key, len);
	m->slots[i] = (struct strmap_slot){.hash = h, .off = m->alen + 1, .len = len, .val = val};
	m->alen += len;
	m->n++;
}

int promql_fail(struct eval_ctx *ec, const char *fmt, ...) {
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!ward_err_isset(ec->err))
		ward_err_set(ec->err, "%s", msg);
	if (!ec->etype)
		ec->etype = PROMQL_ERR_EXECUTION;
	return -1;
}

static int check_limits(struct eval_ctx *ec) {
	if (ec->deadline_mono_ms && ward_mono_ms() > ec->deadline_mono_ms) {
		ec->etype = PROMQL_ERR_TIMEOUT;
		return promql_fail(ec, "query timed out in query execution");
	}
	if (ec->opts.max_samples && ec->samples_loaded > ec->opts.max_samples)
		return promql_fail(ec, "query processing would load too many samples into memory "
		                       "in query execution");
	return 0;
}

int promql_check_limits(struct eval_ctx *ec) {
	return check_limits(ec);
}

static int64_t at_time(const struct eval_ctx *ec, const struct promql_expr *e) {
	switch (e->at) {
	case AT_TS:
		return e->at_ms;
	case AT_START:
		return ec->start_ms;
	case AT_END:
		return ec->end_ms;
	default:
		return ec->t;
	}
}

/* First index whose time is >= t. */
static size_t lower_bound(const int64_t *ts, size_t n, int64_t t) {
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ts[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void cache_free(struct eval_ctx *ec) {
	size_t i;

	for (i = 0; i < ec->ncache; i++)
		promql_series_free_all(ec->cache[i].ss, ec->cache[i].n);
	free(ec->cache);
	ec->cache = NULL;
	ec->ncache = ec->cache_cap = 0;
	free(ec->cache_slot);
	ec->cache_slot = NULL;
	ec->ncache_slot = 0;
	promql_series_free_all(ec->pre, ec->npre);
	ec->pre = NULL;
	ec->npre = 0;
	ec->pre_node = NULL;
	free(ec->pre_loaded);
	ec->pre_loaded = NULL;
	free(ec->pre_cursor);
	ec->pre_cursor = NULL;
	promql_pre_agg_free(ec);
}

static size_t slot_of(const struct promql_expr *vs, size_t nslot) {
	return (size_t)(((uintptr_t)vs >> 4) * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (nslot - 1);
}

/* The cache entry of selector vs, or NULL: a query can hold thousands of selectors. */
static struct sel_cache *cache_find(struct eval_ctx *ec, const struct promql_expr *vs) {
	if (!ec->ncache_slot)
		return NULL;
	for (size_t j = slot_of(vs, ec->ncache_slot);; j = (j + 1) & (ec->ncache_slot - 1)) {
		size_t k = ec->cache_slot[j];
		if (k == 0)
			return NULL;
		if (ec->cache[k - 1].vs == vs)
			return &ec->cache[k - 1];
	}
}

/* A new cache entry for vs (not in the cache yet), zeroed but for vs. */
static struct sel_cache *cache_add(struct eval_ctx *ec, const struct promql_expr *vs) {
	struct sel_cache *c;
	if (ec->ncache == ec->cache_cap) {
		ec->cache_cap = ec->cache_cap ? ec->cache_cap * 2 : 8;
		ec->cache = ward_xrealloc(ec->cache, ec->cache_cap * sizeof(ec->cache[0]));
	}
	if (2 * (ec->ncache + 1) >= ec->ncache_slot) {
		free(ec->cache_slot);
		ec->ncache_slot = ec->ncache_slot ? ec->ncache_slot * 2 : 16;
		ec->cache_slot = ward_xcalloc(ec->ncache_slot, sizeof(size_t));
		for (size_t i = 0; i < ec->ncache; i++) {
			size_t j = slot_of(ec->cache[i].vs, ec->ncache_slot);
			while (ec->cache_slot[j])
				j = (j + 1) & (ec->ncache_slot - 1);
			ec->cache_slot[j] = i + 1;
		}
	}
	c = &ec->cache[ec->ncache++];
	memset(c, 0, sizeof(*c));
	c->vs = vs;
	{
		size_t j = slot_of(vs, ec->ncache_slot);
		while (ec->cache_slot[j])
			j = (j + 1) & (ec->ncache_slot - 1);
		ec->cache_slot[j] = ec->ncache;
	}
	return c;
}

/* Reads the series of selector vs with samples in [mint, maxt] as views into the cache
 * (labels and samples borrowed: free only the array). Evaluation moves forward
 * in time step by step, so a selector reads its window plus prefetch_ms ahead once and
 * later steps take slices of that (what Prometheus does by selecting a range query's whole
 * span at once); a window outside what was read reads again. */
static int do_select(struct eval_ctx *ec, const struct promql_expr *vs, int64_t mint, int64_t maxt,
                     struct tsdb_series **out, size_t *n) {
	struct ward_err err;
	struct sel_cache *c = NULL;
	struct tsdb_series *r = NULL;
	size_t i, nr = 0;

	*out = NULL;
	*n = 0;
	c = cache_find(ec, vs);
	if (!c || mint < c->mint || maxt > c->maxt) {
		int64_t fetch_max =
		        maxt > INT64_MAX - ec->prefetch_ms ? INT64_MAX : maxt + ec->prefetch_ms;
		struct tsdb_series *ss = NULL;
		size_t nss = 0;
		ward_err_clear(&err);
		if (ec->st->select(ec->st->ctx, mint, fetch_max, vs->ms, vs->nms, 0, &ss, &nss,
		                   &err) < 0) {
			ec->etype = PROMQL_ERR_EXECUTION;
			return promql_fail(ec, "%s", err.msg);
		}
		if (!c)
			c = cache_add(ec, vs);
		else
			promql_series_free_all(c->ss, c->n);
		c->vs = vs;
		c->mint = mint;
		c->maxt = fetch_max;
		c->ss = ss;
		c->n = nss;
	}
	for (i = 0; i < c->n; i++) {
		const struct tsdb_series *s = &c->ss[i];
		size_t lo = lower_bound(s->t, s->n, mint);
		size_t hi = lower_bound(s->t, s->n, maxt == INT64_MAX ? maxt : maxt + 1);
		struct tsdb_series *d;
		if (hi <= lo)
			continue;
		if ((nr & (nr - 1)) == 0) /* grow at powers of two */
			r = ward_xrealloc(r, (nr ? nr * 2 : 1) * sizeof(r[0]));
		d = &r[nr++];
		d->labels = s->labels; /* a view into the cache: borrowed, not owned */
		d->n = hi - lo;
		d->t = s->t + lo;
		d->v = s->v + lo;
		ec->samples_loaded += d->n;
	}
	*out = r;
	*n = nr;
	if (check_limits(ec) < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

/* Sum of the subquery ranges in e: how far back a subquery step can reach. */
static int64_t subquery_span(const struct promql_expr *e) {
	int64_t s = 0;
	size_t i;

	if (!e)
		return 0;
	if (e->kind == N_SUBQ)
		s += e->range_ms;
	s += subquery_span(e->expr) + subquery_span(e->lhs) + subquery_span(e->rhs) +
	     subquery_span(e->param);
	for (i = 0; i < e->nargs; i++)
		s += subquery_span(e->args[i]);
	return s;
}

static int eval_vsel(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	int64_t te = at_time(ec, e) - e->offset_ms;
	int64_t lb = ec->opts.lookback_ms > 0 ? ec->opts.lookback_ms : DEFAULT_LOOKBACK_MS;
	struct tsdb_series *ss;
	size_t n, i;

	out->type = PROMQL_VECTOR;
	if (do_select(ec, e, te - lb + WINDOW_LEFT_OPEN, te, &ss, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		struct tsdb_series *s = &ss[i];
		size_t j = s->n;
		struct labels ls;
		while (j > 0 && s->t[j - 1] > te)
			j--;
		if (j == 0 || s->t[j - 1] < te - lb + WINDOW_LEFT_OPEN ||
		    promql_is_stale(s->v[j - 1]))
			continue;
		labels_init(&ls);
		labels_copy(&ls, &s->labels);
		promql_vec_push(&out->vec, &ls, s->v[j - 1]);
		out->vec.s[out->vec.n - 1].t = s->t[j - 1];
	}
	free(ss);
	return 0;
}

static int eval_msel(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	const struct promql_expr *vs = e->expr;
	int64_t te = at_time(ec, vs) - vs->offset_ms;
	struct tsdb_series *ss;
	size_t n, i, k = 0;

	out->type = PROMQL_MATRIX;
	if (do_select(ec, vs, te - e->range_ms + WINDOW_LEFT_OPEN, te, &ss, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const struct tsdb_series *s = &ss[i];
		struct tsdb_series *d = &ss[k];
		size_t j, w = 0;
		int64_t *t;
		double *v;
		for (j = 0; j < s->n; j++)
			if (!(s->t[j] < te - e->range_ms + WINDOW_LEFT_OPEN || s->t[j] > te ||
			      promql_is_stale(s->v[j])))
				w++;
		if (w == 0)
			continue;
		t = ward_xmalloc(w * sizeof(t[0]));
		v = ward_xmalloc(w * sizeof(v[0]));
		w = 0;
		for (j = 0; j < s->n; j++) {
			if (s->t[j] < te - e->range_ms + WINDOW_LEFT_OPEN || s->t[j] > te ||
			    promql_is_stale(s->v[j]))
				continue;
			t[w] = s->t[j];
			v[w] = s->v[j];
			w++;
		}
		/* d may be s itself (k == i): take the borrowed labels before overwriting */
		{
			struct labels borrowed = s->labels, own;
			labels_init(&own);
			labels_copy(&own, &borrowed);
			d->labels = own;
		}
		d->t = t;
		d->v = v;
		d->n = w;
		k++;
	}
	if (k == 0) {
		free(ss);
		ss = NULL;
	}
	out->m = ss;
	out->nm = k;
	return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

struct series_acc {
	struct strmap idx;
	struct tsdb_series *s;
	size_t n, cap;
	size_t *scap;
};

static void acc_push(struct series_acc *a, size_t i, int64_t t, double v) {
	struct tsdb_series *s = &a->s[i];

	if (s->n == a->scap[i]) {
		a->scap[i] = a->scap[i] ? a->scap[i] * 2 : 16;
		s->t = ward_xrealloc(s->t, a->scap[i] * sizeof(s->t[0]));
		s->v = ward_xrealloc(s->v, a->scap[i] * sizeof(s->v[0]));
	}
	s->t[s->n] = t;
	s->v[s->n] = v;
	s->n++;
}

static size_t acc_add(struct series_acc *a, const struct labels *ls, int64_t t, double v) {
	struct buf key = BUF_INIT;
	size_t i;

	promql_labels_key(ls, &key);
	i = strmap_get(&a->idx, key.data, key.len);
	if (i == SIZE_MAX) {
		if (a->n == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 8;
			a->s = ward_xrealloc(a->s, a->cap * sizeof(a->s[0]));
			a->scap = ward_xrealloc(a->scap, a->cap * sizeof(a->scap[0]));
		}
		i = a->n++;
		memset(&a->s[i], 0, sizeof(a->s[i]));
		a->scap[i] = 0;
		labels_copy(&a->s[i].labels, ls);
		strmap_put(&a->idx, key.data, key.len, i);
	}
	buf_free(&key);
	acc_push(a, i, t, v);
	return i;
}

/* acc_add for the sample at position pos of a step's vector: a step's vector mostly has the
 * same series at the same position as the step before, so hint[pos] (the series it went to
 * then) is tried first by comparing labels, before building the key. */
static size_t acc_add_hinted(struct series_acc *a, size_t **hint, size_t *nhint, size_t pos,
                             const struct labels *ls, int64_t t, double v) {
	size_t i;

	if (pos < *nhint && (*hint)[pos] < a->n && labels_equal(&a->s[(*hint)[pos]].labels, ls)) {
		acc_push(a, (*hint)[pos], t, v);
		return (*hint)[pos];
	}
	i = acc_add(a, ls, t, v);
	if (pos >= *nhint) {
		size_t n = pos + 1 > *nhint * 2 ? pos + 1 : *nhint * 2, k;
		*hint = ward_xrealloc(*hint, n * sizeof((*hint)[0]));
		for (k = *nhint; k < n; k++)
			(*hint)[k] = SIZE_MAX;
		*nhint = n;
	}
	(*hint)[pos] = i;
	return i;
}

static void acc_done(struct series_acc *a, struct tsdb_series **out, size_t *n) {
	strmap_free(&a->idx);
	free(a->scap);
	*out = a->s;
	*n = a->n;
}

static int cmp_series(const void *a, const void *b) {
	return labels_cmp(&((const struct tsdb_series *)a)->labels,
	                  &((const struct tsdb_series *)b)->labels);
}

/* Sorts series by labels; series from storage mostly come sorted already, which one pass
 * sees (a merge sort compares n log n times even then). */
static void sort_series(struct tsdb_series *s, size_t n) {
	size_t i;

	for (i = 1; i < n && cmp_series(&s[i - 1], &s[i]) <= 0; i++)
		;
	if (i < n)
		qsort(s, n, sizeof(s[0]), cmp_series);
}

static int eval_subquery(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	int64_t te = at_time(ec, e) - e->offset_ms;
	int64_t step = e->step_ms > 0 ? e->step_ms : DEFAULT_SUBQUERY_STEP_MS;
	int64_t start = step * floor_div(te - e->range_ms, step), ts, saved = ec->t;
	struct series_acc acc;
	int rc = 0;
	size_t i;

	memset(&acc, 0, sizeof(acc));
	if (start < te - e->range_ms + WINDOW_LEFT_OPEN)
		start += step;
	out->type = PROMQL_MATRIX;
	for (ts = start; ts <= te; ts += step) {
		struct value v;
		memset(&v, 0, sizeof(v));
		ec->t = ts;
		rc = promql_eval(ec, e->expr, &v);
		if (rc == 0) {
			if (v.type == PROMQL_VECTOR) {
				for (i = 0; i < v.vec.n; i++)
					acc_add(&acc, &v.vec.s[i].ls, ts, v.vec.s[i].v);
			} else if (v.type == PROMQL_SCALAR) {
				struct labels none = {0};
				acc_add(&acc, &none, ts, v.scalar);
			}
		}
		promql_value_free(&v);
		if (rc < 0)
			break;
	}
	ec->t = saved;
	acc_done(&acc, &out->m, &out->nm);
	if (out->nm > 1)
		qsort(out->m, out->nm, sizeof(out->m[0]), cmp_series);
	return rc;
}

int promql_eval_matrix(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	while (e->kind == N_PAREN)
		e = e->expr;
	if (e->kind == N_MSEL)
		return eval_msel(ec, e, out);
	if (e->kind == N_SUBQ)
		return eval_subquery(ec, e, out);
	return promql_eval(ec, e, out);
}

static int eval_pre(struct eval_ctx *ec, struct value *out);

int promql_eval(struct eval_ctx *ec, const struct promql_expr *e, struct value *out) {
	size_t i;

	memset(out, 0, sizeof(*out));
	if (check_limits(ec) < 0)
		return -1;
	if (e == ec->pre_node)
		return eval_pre(ec, out);
	switch (e->kind) {
	case N_NUM:
		out->type = PROMQL_SCALAR;
		out->scalar = e->num;
		return 0;
	case N_STR:
		out->type = PROMQL_STRING;
		out->str = ward_strdup(e->str);
		return 0;
	case N_PAREN:
		return promql_eval(ec, e->expr, out);
	case N_VSEL:
		return eval_vsel(ec, e, out);
	case N_MSEL:
	case N_SUBQ:
		return promql_eval_matrix(ec, e, out);
	case N_NEG:
		if (promql_eval(ec, e->expr, out) < 0)
			return -1;
		if (out->type == PROMQL_SCALAR) {
			out->scalar = -out->scalar;
			return 0;
		}
		for (i = 0; i < out->vec.n; i++) {
			promql_labels_drop_name(&out->vec.s[i].ls);
			out->vec.s[i].v = -out->vec.s[i].v;
			out->vec.s[i].t = INT64_MIN;
		}
		if (promql_vec_has_dup_labels(&out->vec))
			return promql_fail(ec,
			                   "vector cannot contain metrics with the same labelset");
		return 0;
	case N_CALL: {
		struct value *args = ward_xcalloc(e->nargs ? e->nargs : 1, sizeof(*args));
		int rc = 0;
		for (i = 0; i < e->nargs && rc == 0; i++) {
			if (promql_func_arg_type(e->fn, i) == PROMQL_MATRIX)
				rc = promql_eval_matrix(ec, e->args[i], &args[i]);
			else
				rc = promql_eval(ec, e->args[i], &args[i]);
		}
		if (rc == 0)
			rc = e->fn->impl(ec, e, args, out);
		for (i = 0; i < e->nargs; i++)
			promql_value_free(&args[i]);
		free(args);
		if (rc == 0 && out->type == PROMQL_VECTOR && promql_vec_has_dup_labels(&out->vec))
			return promql_fail(ec,
			                   "vector cannot contain metrics with the same labelset");
		return rc;
	}
	case N_AGG:
		return promql_eval_aggregate(ec, e, out);
	case N_BIN:
		return promql_eval_binop(ec, e, out);
	default:
		return promql_fail(ec, "unsupported expression");
	}
}

/* ---- public entry points ---- */
static void ctx_init(struct eval_ctx *ec, const struct promql_storage *st,
                     const struct promql_opts *o, int64_t start, int64_t end,
                     struct ward_err *err) {
	memset(ec, 0, sizeof(*ec));
	ec->st = st;
	if (o)
		ec->opts = *o;
	else
		promql_opts_default(&ec->opts);
	if (ec->opts.lookback_ms <= 0)
		ec->opts.lookback_ms = DEFAULT_LOOKBACK_MS;
	ec->start_ms = start;
	ec->end_ms = end;
	ec->t = start;
	if (ec->opts.timeout_ms > 0)
		ec->deadline_mono_ms = ward_mono_ms() + ec->opts.timeout_ms;
	ec->err = err;
	ward_err_clear(err);
}

static void ctx_prefetch(struct eval_ctx *ec, const struct promql_expr *e) {
	/* both terms are bounded by the parser's duration limit, so no overflow */
	ec->prefetch_ms = (ec->end_ms - ec->start_ms) + subquery_span(e);
}

/* sort(), sort_desc(), topk() and bottomk() define the order of their output. */
static bool keeps_order(const struct promql_expr *e) {
	while (e->kind == N_PAREN)
		e = e->expr;
	if (e->kind == N_CALL)
		return strcmp(e->fn->name, "sort") == 0 || strcmp(e->fn->name, "sort_desc") == 0;
	if (e->kind == N_AGG)
		return e->agg == AGG_TOPK || e->agg == AGG_BOTTOMK;
	return false;
}

static void vec_to_result(struct vec *v, int64_t t, struct promql_result *out) {
	size_t i;

	out->type = PROMQL_VECTOR;
	out->nseries = v->n;
	out->series = ward_xcalloc(v->n ? v->n : 1, sizeof(out->series[0]));
	for (i = 0; i < v->n; i++) {
		out->series[i].labels = v->s[i].ls;
		labels_init(&v->s[i].ls);
		out->series[i].t = ward_xmalloc(sizeof(int64_t));
		out->series[i].v = ward_xmalloc(sizeof(double));
		out->series[i].t[0] = t;
		out->series[i].v[0] = v->s[i].v;
		out->series[i].n = 1;
	}
}

int promql_eval_instant(const struct promql_storage *st, const struct promql_expr *e, int64_t t_ms,
                        const struct promql_opts *o, struct promql_result *out,
                        enum promql_errtype *etype, struct ward_err *err) {
	struct eval_ctx ec;
	struct value v;

	memset(out, 0, sizeof(*out));
	ctx_init(&ec, st, o, t_ms, t_ms, err);
	ctx_prefetch(&ec, e);
	if (promql_eval(&ec, e, &v) < 0) {
		cache_free(&ec);
		promql_value_free(&v);
		if (etype)
			*etype = ec.etype ? ec.etype : PROMQL_ERR_EXECUTION;
		return -1;
	}
	cache_free(&ec);
	out->t_ms = t_ms;
	switch (v.type) {
	case PROMQL_SCALAR:
		out->type = PROMQL_SCALAR;
		out->scalar = v.scalar;
		break;
	case PROMQL_STRING:
		out->type = PROMQL_STRING;
		out->str = v.str;
		v.str = NULL;
		break;
	case PROMQL_VECTOR:
		if (!keeps_order(e))
			promql_sort_vec(&v.vec);
		vec_to_result(&v.vec, t_ms, out);
		break;
	case PROMQL_MATRIX:
		out->type = PROMQL_MATRIX;
		out->series = v.m;
		out->nseries = v.nm;
		v.m = NULL;
		v.nm = 0;
		if (out->nseries > 1)
			qsort(out->series, out->nseries, sizeof(out->series[0]), cmp_series);
		break;
	default:
		break;
	}
	promql_value_free(&v);
	return 0;
}


/* ---- series-wise range evaluation ----
 * A range query whose expression is an instant selector, or one of the functions below over
 * a matrix selector, is evaluated one series at a time: the selector reads storage once,
 * each series slides its window over all steps (two indices that only move forward) and its
 * points go straight into its own output series, so labels are copied once per series, not
 * once per step. The function's own implementation computes every point (given a one-series
 * matrix that borrows the selected samples), so values are those of the step-by-step path.
 * Anything else, and any case where that path would merge or reject equal label sets, takes
 * the step-by-step path. */
static const char *const seriesw_fns[] = {
        "rate",           "increase",         "delta",          "irate",
        "idelta",         "deriv",            "resets",         "changes",
        "avg_over_time",  "min_over_time",    "max_over_time",  "sum_over_time",
        "count_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
        "first_over_time", "present_over_time", "mad_over_time",  NULL,
};

static const struct promql_expr *strip_paren(const struct promql_expr *e) {
	while (e && e->kind == N_PAREN)
		e = e->expr;
	return e;
}

/* The selector (and the call, or NULL for a bare selector) when e has a series-wise shape. */
static bool seriesw_shape(const struct promql_expr *e, const struct promql_expr **call,
                          const struct promql_expr **msel, const struct promql_expr **vs) {
	const struct promql_expr *m;
	size_t i;

	e = strip_paren(e);
	*call = NULL;
	*msel = NULL;
	if (e->kind == N_VSEL) {
		*vs = e;
		return e->at == AT_NONE;
	}
	if (e->kind != N_CALL || e->nargs != 1 || !e->fn || !e->fn->impl)
		return false;
	for (i = 0; seriesw_fns[i]; i++)
		if (strcmp(seriesw_fns[i], e->fn->name) == 0)
			break;
	if (!seriesw_fns[i])
		return false;
	m = strip_paren(e->args[0]);
	if (!m || m->kind != N_MSEL || !m->expr || m->expr->kind != N_VSEL ||
	    m->expr->at != AT_NONE || m->range_ms <= 0)
		return false;
	*call = e;
	*msel = m;
	*vs = m->expr;
	return true;
}

#define SERIESW_TIME_LIMIT (INT64_C(1) << 52)


/* One series of a bare selector: the newest sample in each step's lookback window. loaded
 * counts, per step, one sample for each point, or with window every sample of the lookback
 * window, stale markers included (what do_select counts for the step path's selector). */
static size_t seriesw_vsel(const struct eval_ctx *ec, const struct tsdb_series *s,
                           int64_t offset, int64_t start, int64_t step, size_t nsteps,
                           struct tsdb_series *d, size_t *loaded, bool window) {
	int64_t lb = ec->opts.lookback_ms;
	size_t j = 0, lo = 0, k, n = 0;

	for (k = 0; k < nsteps; k++) {
		int64_t t = start + (int64_t)k * step, te = t - offset;
		while (j < s->n && s->t[j] <= te)
			j++;
		while (lo < j && s->t[lo] < te - lb + WINDOW_LEFT_OPEN)
			lo++;
		if (loaded && window)
			loaded[k] += j - lo;
		if (j == 0 || s->t[j - 1] < te - lb + WINDOW_LEFT_OPEN ||
		    promql_is_stale(s->v[j - 1]))
			continue;
		d->t[n] = t;
		d->v[n] = s->v[j - 1];
		n++;
		if (loaded && !window)
			loaded[k]++;
	}
	return n;
}

/* Moves [*lo, *hi) of s forward to the samples in the window (te - range, te] (windows move
 * forward only); false when the window holds none. */
static bool window_next(const struct tsdb_series *s, int64_t te, int64_t range, size_t *lo,
                        size_t *hi) {
	int64_t wmin = te - range + WINDOW_LEFT_OPEN;
	while (*hi < s->n && s->t[*hi] <= te)
		(*hi)++;
	while (*lo < s->n && s->t[*lo] < wmin)
		(*lo)++;
	return *hi > *lo;
}

/* seriesw_call for a function with windows: the windows of all steps go to it at once. */
static int seriesw_windows(const struct promql_expr *call, int64_t range, struct tsdb_series *s,
                           int64_t offset, int64_t start, int64_t step, size_t nsteps,
                           struct tsdb_series *d, size_t *nout, size_t *loaded) {
	size_t *wlo = ward_xmalloc(nsteps * sizeof(*wlo)), *whi = ward_xmalloc(nsteps * sizeof(*whi));
	int64_t *rend = ward_xmalloc(nsteps * sizeof(*rend)), *wt = ward_xmalloc(nsteps * sizeof(*wt));
	double *out = ward_xmalloc(nsteps * sizeof(*out));
	bool *ok = ward_xmalloc(nsteps * sizeof(*ok));
	size_t lo = 0, hi = 0, k, nw = 0, n = 0;

	for (k = 0; k < nsteps; k++) {
		int64_t t = start + (int64_t)k * step, te = t - offset;
		if (!window_next(s, te, range, &lo, &hi))
			continue;
		if (loaded)
			loaded[k] += hi - lo;
		wlo[nw] = lo;
		whi[nw] = hi;
		rend[nw] = te;
		wt[nw] = t;
		nw++;
	}
	call->fn->windows(call, s, &(struct fn_windows){wlo, whi, rend, nw}, out, ok);
	for (k = 0; k < nw; k++) {
		if (!ok[k])
			continue;
		d->t[n] = wt[k];
		d->v[n] = out[k];
		n++;
	}
	if (n > 0) {
		labels_copy(&d->labels, &s->labels);
		promql_labels_drop_name(&d->labels);
	}
	*nout = n;
	free(wlo);
	free(whi);
	free(rend);
	free(wt);
	free(out);
	free(ok);
	return 0;
}

/* One series through a range function; s has no stale markers. -1 when the function fails. */
static int seriesw_call(struct eval_ctx *ec, const struct promql_expr *call, int64_t range,
                        struct tsdb_series *s, int64_t offset, int64_t start, int64_t step,
                        size_t nsteps, struct value *ov, struct tsdb_series *d, size_t *nout,
                        size_t *loaded) {
	struct tsdb_series view;
	struct value arg;
	bool have_labels = false;
	size_t lo = 0, hi = 0, k, i, n = 0;

	if (call->fn->windows)
		return seriesw_windows(call, range, s, offset, start, step, nsteps, d, nout, loaded);
	for (k = 0; k < nsteps; k++) {
		int64_t t = start + (int64_t)k * step, te = t - offset;
		if (!window_next(s, te, range, &lo, &hi))
			continue;
		if (loaded)
			loaded[k] += hi - lo;
		memset(&view, 0, sizeof(view));
		if (!have_labels) /* borrowed until the first point names the series */
			view.labels = s->labels;
		view.t = s->t + lo;
		view.v = s->v + lo;
		view.n = hi - lo;
		memset(&arg, 0, sizeof(arg));
		arg.type = PROMQL_MATRIX;
		arg.m = &view;
		arg.nm = 1;
		ov->type = PROMQL_NONE;
		ec->t = t;
		if (call->fn->impl(ec, call, &arg, ov) < 0)
			return -1;
		for (i = 0; i < ov->vec.n; i++) {
			if (i == 0 && !have_labels) {
				d->labels = ov->vec.s[i].ls;
				labels_init(&ov->vec.s[i].ls);
				have_labels = true;
			} else {
				labels_free(&ov->vec.s[i].ls);
			}
			if (i == 0) {
				d->t[n] = t;
				d->v[n] = ov->vec.s[i].v;
				n++;
			}
		}
		if (ov->vec.n > 1) /* never for these functions; keep the general path honest */
			return -1;
		ov->vec.n = 0;
	}
	*nout = n;
	return 0;
}

/* Whether two of the n series have the same labels: equal labels have equal hashes, so
 * sort the hashes and compare only neighbours whose hashes collide. */
bool promql_series_has_dup(const struct tsdb_series *r, size_t n) {
	struct hashed stackbuf[64], *hs;
	bool dup = false;
	size_t i, j;

	if (n < 2)
		return false;
	hs = n <= 64 ? stackbuf : ward_xmalloc(n * sizeof(*hs));
	for (i = 0; i < n; i++)
		hs[i] = (struct hashed){labels_hash(&r[i].labels), i};
	qsort(hs, n, sizeof(*hs), cmp_hashed);
	for (i = 1; i < n && !dup; i++)
		for (j = i; j > 0 && hs[j - 1].h == hs[i].h && !dup; j--)
			dup = labels_equal(&r[hs[j - 1].i].labels, &r[hs[i].i].labels);
	if (hs != stackbuf)
		free(hs);
	return dup;
}

/* The points of e (a series-wise shape) at every step, one series per selected series in the
 * order storage gave them (the order the step-by-step path sees them in), series without
 * points left out. With loaded (nsteps counters), adds the samples each step holds (see
 * seriesw_vsel for window). 1: done; 0: not applicable (nothing changed but ec->t and
 * loaded); -1: error. */
static int eval_serieswise(struct eval_ctx *ec, const struct promql_expr *e, int64_t start,
                           int64_t end, int64_t step, struct tsdb_series **out, size_t *nout,
                           size_t *loaded, bool window) {
	const struct promql_expr *call, *msel, *vs;
	struct tsdb_series *ss = NULL, *res = NULL;
	struct value ov;
	struct ward_err err;
	int64_t w, mint, maxt;
	size_t nss = 0, nres = 0, nsteps, i;
	int rc = 0;

	if (!seriesw_shape(e, &call, &msel, &vs))
		return 0;
	if (start < -SERIESW_TIME_LIMIT || end > SERIESW_TIME_LIMIT ||
	    vs->offset_ms < -SERIESW_TIME_LIMIT || vs->offset_ms > SERIESW_TIME_LIMIT)
		return 0;
	w = msel ? msel->range_ms : ec->opts.lookback_ms;
	if (w < 0 || w > SERIESW_TIME_LIMIT)
		return 0;
	nsteps = (size_t)((end - start) / step) + 1;
	mint = start - vs->offset_ms - w + WINDOW_LEFT_OPEN;
	maxt = end - vs->offset_ms;
	ward_err_clear(&err);
	if (ec->st->select(ec->st->ctx, mint, maxt, vs->ms, vs->nms, 0, &ss, &nss, &err) < 0) {
		ec->etype = PROMQL_ERR_EXECUTION;
		return promql_fail(ec, "%s", err.msg);
	}
	memset(&ov, 0, sizeof(ov));
	res = ward_xcalloc(nss ? nss : 1, sizeof(res[0]));
	for (i = 0; i < nss; i++) {
		struct tsdb_series *s = &ss[i], *d = &res[nres];
		size_t n = 0;
		if (check_limits(ec) < 0) {
			rc = -1;
			break;
		}
		d->t = ward_xmalloc(nsteps * sizeof(d->t[0]));
		d->v = ward_xmalloc(nsteps * sizeof(d->v[0]));
		if (!call) {
			n = seriesw_vsel(ec, s, vs->offset_ms, start, step, nsteps, d, loaded,
			                 window);
			if (n > 0) {
				d->labels = s->labels;
				labels_init(&s->labels);
			}
		} else {
			size_t j, k = 0;
			for (j = 0; j < s->n; j++) {
				if (promql_is_stale(s->v[j]))
					continue;
				s->t[k] = s->t[j];
				s->v[k] = s->v[j];
				k++;
			}
			s->n = k;
			if (seriesw_call(ec, call, msel->range_ms, s, vs->offset_ms, start, step,
			                 nsteps, &ov, d, &n, loaded) < 0) {
				nres++; /* d is freed with the rest */
				rc = -1;
				break;
			}
		}
		if (n == 0) {
			labels_free(&d->labels);
			free(d->t);
			free(d->v);
			memset(d, 0, sizeof(*d));
			continue;
		}
		d->n = n;
		d->t = ward_xrealloc(d->t, n * sizeof(d->t[0]));
		d->v = ward_xrealloc(d->v, n * sizeof(d->v[0]));
		nres++;
	}
	promql_value_free(&ov);
	promql_series_free_all(ss, nss);
	ec->t = start;
	if (rc < 0) {
		promql_series_free_all(res, nres);
		if (!ward_err_isset(ec->err)) /* a function refused a point: let the step-by-step
		                                 * path report it as it would */
			return 0;
		return -1;
	}
	if (promql_series_has_dup(res, nres)) {
		promql_series_free_all(res, nres);
		return 0;
	}
	if (nres == 0) {
		free(res);
		res = NULL;
	}
	*out = res;
	*nout = nres;
	return 1;
}

bool promql_rv_leaf_shape(const struct promql_expr *e) {
	const struct promql_expr *call, *msel, *vs;

	return seriesw_shape(e, &call, &msel, &vs);
}

int promql_rv_leaf(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                   struct rv *out) {
	memset(out, 0, sizeof(*out));
	return eval_serieswise(ec, e, rs->start, rs->end, rs->step, &out->s, &out->n, rs->loaded,
	                       !rs->count_points);
}

void promql_rv_free(struct rv *v) {
	promql_series_free_all(v->s, v->n);
	memset(v, 0, sizeof(*v));
}

/* With max_samples, the samples each step held (rs->loaded) against the limit: 0, or -1 with
 * the step path's error. */
static int check_loaded(struct eval_ctx *ec, const struct rsteps *rs) {
	size_t i;

	for (i = 0; rs->loaded && i < rs->nsteps; i++)
		if (rs->loaded[i] > ec->opts.max_samples) {
			ec->samples_loaded = rs->loaded[i];
			return check_limits(ec);
		}
	return 0;
}

static void rsteps_init(struct rsteps *rs, const struct eval_ctx *ec, int64_t start, int64_t end,
                        int64_t step) {
	memset(rs, 0, sizeof(*rs));
	rs->start = start;
	rs->end = end;
	rs->step = step;
	rs->nsteps = (size_t)((end - start) / step) + 1;
	/* max_samples bounds, at each step, the samples the selectors hold for it (as the
	 * step-by-step path counts them, stale markers aside) */
	if (ec->opts.max_samples)
		rs->loaded = ward_xcalloc(rs->nsteps, sizeof(*rs->loaded));
}

/* A range query whose whole expression evaluates series-wise (promql_rv_eval). 1, 0 or -1
 * as there. */
static int eval_range_serieswise(struct eval_ctx *ec, const struct promql_expr *e, int64_t start,
                                 int64_t end, int64_t step, struct promql_result *out) {
	struct rsteps rs;
	struct rv v;
	int rc;

	if (!promql_rv_shape(e))
		return 0;
	rsteps_init(&rs, ec, start, end, step);
	/* a bare selector counts its points (what it has always counted, as Prometheus does);
	 * inside an operator a selector counts as the step path counts it */
	rs.count_points = strip_paren(e)->kind == N_VSEL;
	rc = promql_rv_eval(ec, e, &rs, &v);
	if (rc > 0 && v.is_scalar)
		rc = 0; /* a scalar: the step path writes it out */
	if (rc > 0 && check_loaded(ec, &rs) < 0)
		rc = -1;
	free(rs.loaded);
	if (rc <= 0) {
		promql_rv_free(&v);
		return rc;
	}
	sort_series(v.s, v.n);
	out->series = v.s;
	out->nseries = v.n;
	out->type = PROMQL_MATRIX;
	out->t_ms = end;
	return 1;
}

/* The node a range query precomputes: the first (top-down, left to right) that every step
 * evaluates at the step's own time (not under a subquery) and that is a function call of a
 * series-wise shape or, with ops, an operator or unary minus whose operands all evaluate
 * series-wise (promql_rv_shape: the largest such tree). Never root itself (tried whole
 * before). One pass, bottom-up for the shapes: returns whether e has promql_rv_shape and
 * sets *found (NULL: none). */
static bool pre_scan(const struct promql_expr *e, const struct promql_expr *root, bool ops,
                     const struct promql_expr **found) {
	const struct promql_expr *call, *msel, *vs, *kids[4] = {NULL, NULL, NULL, NULL};
	bool shape = false, kid_shape[4] = {false, false, false, false};
	size_t i, nk = 0;

	*found = NULL;
	if (!e)
		return false;
	switch (e->kind) {
	case N_NUM:
		return true;
	case N_STR:
	case N_MSEL:
	case N_SUBQ:
		return false;
	case N_VSEL:
		return seriesw_shape(e, &call, &msel, &vs);
	case N_CALL:
		if (seriesw_shape(e, &call, &msel, &vs)) {
			*found = e != root ? e : NULL;
			return true;
		}
		for (i = 0; i < e->nargs && !*found; i++)
			pre_scan(e->args[i], root, ops, found);
		return false;
	default:
		break;
	}
	kids[nk++] = e->expr;
	kids[nk++] = e->lhs;
	kids[nk++] = e->rhs;
	kids[nk++] = e->param;
	for (i = 0; i < nk; i++) {
		const struct promql_expr *f;
		kid_shape[i] = pre_scan(kids[i], root, ops, &f);
		if (!*found)
			*found = f;
	}
	if (e->kind == N_PAREN || e->kind == N_NEG)
		shape = kid_shape[0];
	else if (e->kind == N_BIN)
		shape = e->op != T_AND && e->op != T_OR && e->op != T_UNLESS && kid_shape[1] &&
		        kid_shape[2];
	if (ops && shape && e != root && (e->kind == N_BIN || e->kind == N_NEG) &&
	    e->type == PROMQL_VECTOR)
		*found = e;
	return shape;
}

/* ec->pre for the node pre_scan finds in e. 1 with one, 0 without, -1 with an error. */
static int pre_try(struct eval_ctx *ec, const struct promql_expr *e, bool ops,
                   const struct rsteps *rs) {
	const struct promql_expr *p, *root = strip_paren(e);
	struct rv v;
	int rc;

	pre_scan(root, root, ops, &p);
	if (!p)
		return 0;
	rc = promql_rv_eval(ec, p, rs, &v);
	if (rc > 0 && v.is_scalar)
		rc = 0;
	if (rc <= 0) {
		promql_rv_free(&v);
		return rc;
	}
	ec->pre = v.s;
	ec->npre = v.n;
	ec->pre_node = strip_paren(p);
	ec->pre_start = rs->start;
	ec->pre_step = rs->step;
	return 1;
}

/* Computes ec->pre for a series-wise sub-expression of e, so that each step of a range query
 * takes its vector from there: the largest operator tree that evaluates series-wise, or, when
 * that one cannot, the first range function. 0 (with or without one) or -1 with an error. */
static int pre_compute(struct eval_ctx *ec, const struct promql_expr *e, int64_t start,
                       int64_t end, int64_t step) {
	struct rsteps rs;
	int rc;

	rsteps_init(&rs, ec, start, end, step);
	rc = pre_try(ec, e, true, &rs);
	if (rc == 0) {
		if (rs.loaded)
			memset(rs.loaded, 0, rs.nsteps * sizeof(*rs.loaded));
		rc = pre_try(ec, e, false, &rs);
	}
	if (rc > 0) {
		ec->pre_loaded = rs.loaded; /* each step starts its count from there */
		return 0;
	}
	free(rs.loaded);
	return rc;
}

/* The vector of the precomputed node at ec->t: what promql_eval of the call would give;
 * with borrow, its labels are those of ec->pre (see promql_eval_borrow). */
bool promql_pre_point(struct eval_ctx *ec, size_t i, double *v) {
	const struct tsdb_series *s = &ec->pre[i];
	size_t j;

	if (!ec->pre_cursor)
		ec->pre_cursor = ward_xcalloc(ec->npre ? ec->npre : 1, sizeof(*ec->pre_cursor));
	j = ec->pre_cursor[i];
	if (j > 0 && s->t[j - 1] >= ec->t) /* time went back: never in a range query, but */
		j = lower_bound(s->t, s->n, ec->t);
	while (j < s->n && s->t[j] < ec->t)
		j++;
	ec->pre_cursor[i] = j;
	if (j == s->n || s->t[j] != ec->t)
		return false;
	*v = s->v[j];
	return true;
}

static int eval_pre_vec(struct eval_ctx *ec, struct value *out, bool borrow) {
	size_t i;

	out->type = PROMQL_VECTOR;
	for (i = 0; i < ec->npre; i++) {
		const struct tsdb_series *s = &ec->pre[i];
		struct labels ls;
		double v;
		if (!promql_pre_point(ec, i, &v))
			continue;
		if (borrow)
			ls = s->labels;
		else {
			labels_init(&ls);
			labels_copy(&ls, &s->labels);
		}
		promql_vec_push(&out->vec, &ls, v);
	}
	return 0;
}

int promql_eval_borrow(struct eval_ctx *ec, const struct promql_expr *e, struct value *out,
                       bool *borrowed) {
	*borrowed = false;
	e = strip_paren(e);
	if (ec->pre_node && e == ec->pre_node) {
		memset(out, 0, sizeof(*out));
		if (check_limits(ec) < 0)
			return -1;
		*borrowed = true;
		return eval_pre_vec(ec, out, true);
	}
	return promql_eval(ec, e, out);
}

void promql_vec_unborrow(struct vec *v) {
	size_t i;

	for (i = 0; i < v->n; i++)
		labels_init(&v->s[i].ls);
}

static int eval_pre(struct eval_ctx *ec, struct value *out) {
	return eval_pre_vec(ec, out, false);
}

int promql_eval_range(const struct promql_storage *st, const struct promql_expr *e,
                      int64_t start_ms, int64_t end_ms, int64_t step_ms,
                      const struct promql_opts *o, struct promql_result *out,
                      enum promql_errtype *etype, struct ward_err *err) {
	struct eval_ctx ec;
	struct series_acc acc;
	int64_t t;
	size_t i, *hint = NULL, nhint = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&acc, 0, sizeof(acc));
	ctx_init(&ec, st, o, start_ms, end_ms, err);
	if (step_ms <= 0 || end_ms < start_ms) {
		ward_err_set(err,
		             "invalid range: start %" PRId64 ", end %" PRId64 ", step %" PRId64
		             " (end must not be before start and step must be positive)",
		             start_ms, end_ms, step_ms);
		if (etype)
			*etype = PROMQL_ERR_BAD_DATA;
		return -1;
	}
	if (e->type != PROMQL_SCALAR && e->type != PROMQL_VECTOR) {
		ward_err_set(err,
		             "invalid expression type \"%s\" for range query, must be Scalar "
		             "or instant Vector",
		             e->type == PROMQL_MATRIX ? "range vector" : promql_type_name(e->type));
		if (etype)
			*etype = PROMQL_ERR_BAD_DATA;
		return -1;
	}
	ctx_prefetch(&ec, e);
	rc = eval_range_serieswise(&ec, e, start_ms, end_ms, step_ms, out);
	if (rc != 0) {
		if (rc < 0 && etype)
			*etype = ec.etype ? ec.etype : PROMQL_ERR_EXECUTION;
		return rc < 0 ? -1 : 0;
	}
	ward_err_clear(err);
	ec.etype = 0;
	if (pre_compute(&ec, e, start_ms, end_ms, step_ms) < 0) {
		if (etype)
			*etype = ec.etype ? ec.etype : PROMQL_ERR_EXECUTION;
		return -1;
	}
	ec.t = start_ms;
	for (t = start_ms; t <= end_ms; t += step_ms) {
		struct value v;
		ec.t = t;
		/* max_samples bounds what one step holds, not the sum over all steps; a
		 * precomputed node's selector holds its share of this step already */
		ec.samples_loaded = 0;
		if (ec.pre_loaded)
			ec.samples_loaded = ec.pre_loaded[(t - ec.pre_start) / ec.pre_step];
		if (promql_eval(&ec, e, &v) < 0) {
			promql_value_free(&v);
			cache_free(&ec);
			free(hint);
			acc_done(&acc, &out->series, &out->nseries);
			promql_series_free_all(out->series, out->nseries);
			memset(out, 0, sizeof(*out));
			if (etype)
				*etype = ec.etype ? ec.etype : PROMQL_ERR_EXECUTION;
			return -1;
		}
		if (v.type == PROMQL_SCALAR) {
			struct labels none = {0};
			acc_add(&acc, &none, t, v.scalar);
		} else {
			for (i = 0; i < v.vec.n; i++)
				acc_add_hinted(&acc, &hint, &nhint, i, &v.vec.s[i].ls, t,
				               v.vec.s[i].v);
		}
		promql_value_free(&v);
		if (t > INT64_MAX - step_ms)
			break;
	}
	cache_free(&ec);
	free(hint);
	acc_done(&acc, &out->series, &out->nseries);
	if (out->nseries > 1)
		qsort(out->series, out->nseries, sizeof(out->series[0]), cmp_series);
	out->type = PROMQL_MATRIX;
	out->t_ms = end_ms;
	return 0;
}

void promql_result_free(struct promql_result *r) {
	if (!r)
		return;
	free(r->str);
	promql_series_free_all(r->series, r->nseries);
	memset(r, 0, sizeof(*r));
}

/* ---- JSON ---- */
void promql_fmt_float(struct buf *b, double v) {
	buf_put_double_f(b, v); /* Go's 'f', -1, as Prometheus writes sample values */
}

/* Writes ms as Prometheus does: float64(ms)/1000 with 'f', -1, which is the seconds, then
 * at most 3 decimals without trailing zeros, into tmp (32 bytes); returns the length. Digits
 * by hand: a range answer writes one per point, and printf was a sixth of a large answer's
 * time. */
static size_t fmt_ts(char tmp[32], int64_t ms) {
	uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms, sec = a / 1000;
	unsigned frac = (unsigned)(a % 1000);
	char buf[32], *p = buf + sizeof(buf);
	size_t n;

	if (frac) {
		char f[3] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
		             (char)('0' + frac % 10)};
		size_t nf = f[2] != '0' ? 3 : f[1] != '0' ? 2 : 1;
		p -= nf;
		memcpy(p, f, nf);
		*--p = '.';
	}
	do {
		*--p = (char)('0' + sec % 10);
		sec /= 10;
	} while (sec);
	if (ms < 0)
		*--p = '-';
	n = (size_t)(buf + sizeof(buf) - p);
	memcpy(tmp, p, n);
	return n;
}

static void put_ts(struct buf *b, int64_t ms) {
	char tmp[32];

	buf_append(b, tmp, fmt_ts(tmp, ms));
}

/* What a matrix answer's points repeat: the text of the value written before in the series
 * (a series whose value repeats formats it once), and the "[<ts>,\"" of each timestamp (all
 * series share the steps), in a small open-addressing table that stops taking new entries
 * when three quarters full (later timestamps are then formatted each time). */
#define TS_MEMO_BITS 9 /* 512 slots: more than twice a usual range's steps */
#define TS_MEMO_SLOTS (1u << TS_MEMO_BITS)
struct point_memo {
	uint64_t vbits;
	size_t vlen; /* 0: empty */
	char v[40];
	size_t nts;
	int64_t ts[TS_MEMO_SLOTS];
	uint8_t tslen[TS_MEMO_SLOTS]; /* 0: empty */
	char tss[TS_MEMO_SLOTS][40];
};

/* The "[<ts>,\"" of t, from m or formatted into tmp; returns the text and sets *len. */
static const char *ts_prefix(struct point_memo *m, int64_t t, char tmp[40], size_t *len) {
	size_t slot = (size_t)(((uint64_t)t * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - TS_MEMO_BITS));
	char *q;

	while (m->tslen[slot] && m->ts[slot] != t)
		slot = (slot + 1) & (TS_MEMO_SLOTS - 1);
	if (m->tslen[slot]) {
		*len = m->tslen[slot];
		return m->tss[slot];
	}
	q = tmp;
	*q++ = '[';
	q += fmt_ts(q, t);
	*q++ = ',';
	*q++ = '"';
	*len = (size_t)(q - tmp);
	if (m->nts < TS_MEMO_SLOTS / 4 * 3) {
		m->nts++;
		m->ts[slot] = t;
		m->tslen[slot] = (uint8_t)*len;
		memcpy(m->tss[slot], tmp, *len);
	}
	return tmp;
}

static void put_sample(struct buf *b, int64_t t, double v) {
	buf_putc(b, '[');
	put_ts(b, t);
	buf_append(b, ",\"", 2);
	promql_fmt_float(b, v);
	buf_append(b, "\"]", 2);
}

/* put_sample with m, and the comma before it unless first. */
static void put_point(struct buf *b, int64_t t, double v, bool first, struct point_memo *m) {
	char tmp[40];
	size_t plen;
	const char *pre = ts_prefix(m, t, tmp, &plen);
	uint64_t bits;
	char *p;

	buf_reserve(b, 96); /* comma, prefix (< 40) and a remembered value (<= 40) fit */
	p = b->data + b->len;
	if (!first)
		*p++ = ',';
	memcpy(p, pre, plen);
	p += plen;
	memcpy(&bits, &v, sizeof(bits));
	if (m->vlen && m->vbits == bits) {
		memcpy(p, m->v, m->vlen);
		p += m->vlen;
		b->len = (size_t)(p - b->data);
	} else {
		size_t at = (size_t)(p - b->data);
		b->len = at;
		promql_fmt_float(b, v);
		if (b->len - at <= sizeof(m->v)) {
			m->vbits = bits;
			m->vlen = b->len - at;
			memcpy(m->v, b->data + at, m->vlen);
		}
	}
	buf_append(b, "\"]", 2);
}

static void put_metric(struct buf *b, const struct labels *ls) {
	size_t i;

	buf_puts(b, "{\"metric\":{");
	for (i = 0; i < ls->n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_json_str(b, ls->v[i].name, strlen(ls->v[i].name));
		buf_putc(b, ':');
		buf_json_str(b, ls->v[i].value, strlen(ls->v[i].value));
	}
	buf_puts(b, "},");
}

void promql_result_json(const struct promql_result *r, struct buf *out) {
	struct point_memo *pm;
	size_t i, j;

	switch (r->type) {
	case PROMQL_SCALAR:
		buf_puts(out, "{\"resultType\":\"scalar\",\"result\":");
		put_sample(out, r->t_ms, r->scalar);
		buf_putc(out, '}');
		return;
	case PROMQL_STRING:
		buf_puts(out, "{\"resultType\":\"string\",\"result\":[");
		put_ts(out, r->t_ms);
		buf_putc(out, ',');
		buf_json_str(out, r->str ? r->str : "", r->str ? strlen(r->str) : 0);
		buf_puts(out, "]}");
		return;
	case PROMQL_VECTOR:
		buf_puts(out, "{\"resultType\":\"vector\",\"result\":[");
		for (i = 0; i < r->nseries; i++) {
			if (i)
				buf_putc(out, ',');
			put_metric(out, &r->series[i].labels);
			buf_puts(out, "\"value\":");
			if (r->series[i].n > 0)
				put_sample(out, r->series[i].t[0], r->series[i].v[0]);
			else
				put_sample(out, r->t_ms, NAN);
			buf_putc(out, '}');
		}
		buf_puts(out, "]}");
		return;
	case PROMQL_MATRIX: {
		/* points take about 35 bytes, a series' labels a few hundred: reserve once, so
		 * that a large answer is not copied each time the buffer doubles */
		size_t npts = 0;
		for (i = 0; i < r->nseries; i++)
			npts += r->series[i].n;
		buf_reserve(out, npts * 36 + r->nseries * 256);
		pm = ward_xcalloc(1, sizeof(*pm));
		buf_puts(out, "{\"resultType\":\"matrix\",\"result\":[");
		for (i = 0; i < r->nseries; i++) {
			if (i)
				buf_putc(out, ',');
			put_metric(out, &r->series[i].labels);
			buf_puts(out, "\"values\":[");
			pm->vlen = 0;
			for (j = 0; j < r->series[i].n; j++)
				put_point(out, r->series[i].t[j], r->series[i].v[j], j == 0, pm);
			buf_puts(out, "]}");
		}
		buf_puts(out, "]}");
		free(pm);
		return;
	}
	default:
		buf_puts(out, "{\"resultType\":\"vector\",\"result\":[]}");
	}
}
