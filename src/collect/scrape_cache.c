/* scrape_cache.c: what a target remembers between scrapes (struct scrape_series_set), as
 * Prometheus' scrape cache: (1) each sample line's series text (the bytes before the value)
 * -> the label set the sample is stored under (target labels merged, metric relabeling
 * applied; or "dropped"), so an unchanged line skips label parsing, merging, relabeling and
 * sorting; (2) the stored label sets ("series") with the scrape in which each was last
 * written without its own timestamp, for staleness markers and scrape_series_added.
 *
 * Invariants: an entry lives only while its text was in the latest scrape (entries not
 * seen are dropped when a scrape ends), so the entries are bounded by one body's lines. A
 * series lives while an entry points to it or it was in the latest scrape's set (it then
 * gets its stale marker when a scrape misses it). Entries depend on the format, the target
 * labels, honor_labels and the metric relabeling: scrape_cache_begin() drops them all when
 * any of those differs from the last scrape, and scrape_series_set_forget() drops them on a
 * config reload; the series (the staleness state) are kept. A series may remember its tsdb
 * ref, to append without label work: refs are never reused while a store is open, so a ref
 * the head no longer holds is refused (tsdb_append_ref) and the caller appends by labels,
 * never into another series; refs of another store are dropped (ref_db). One thread at a
 * time (the engine scrapes a target once at a time).
 */
#include <stdlib.h>
#include <string.h>

#include "collect/collect_internal.h"
#include "tsdb/tsdb.h"

struct sc_series {
	struct sc_series *next; /* chain by h; while compacting, the new copy */
	uint64_t h;             /* labels_hash(&ls) */
	struct labels ls;       /* in the same block: the label array, then the strings */
	uint32_t refs;          /* entries pointing here */
	uint32_t bytes;         /* size of the block */
	uint64_t mark;          /* the scrape (number) that last wrote it without a timestamp */
	uint64_t in_set;        /* the last successful such scrape: its staleness set */
	uint32_t tsdb_ref;      /* its ref in set->ref_db's head, 0 when not known */
};

struct sc_entry {
	struct sc_entry *next; /* chain by h */
	uint64_t h;            /* text_hash of the text */
	uint64_t parse_h;      /* labels_hash of the parsed labels, for the parser */
	struct sc_series *s;   /* NULL: metric relabeling drops the line's samples */
	uint64_t seen;         /* the last scrape that had the line */
	size_t pos;            /* index in the order of that scrape */
	size_t n;
	char text[];
};

/* The arena entries and series live in: slabs of growing size, so a target's cache is
 * contiguous and not interleaved with the small, short-lived allocations of the parser and
 * the tsdb (which fragmented malloc's heap and made a first scrape 1.5x dearer). Freed
 * blocks only count as dead; when dead bytes outweigh live ones, the live blocks are copied
 * to fresh slabs (compact()). */
struct sc_slab {
	struct sc_slab *next;
	size_t used, cap;
	_Alignas(16) char data[];
};
#define SLAB_MIN_BYTES   4096u
#define SLAB_MAX_BYTES   (256u << 10)
#define COMPACT_MIN_DEAD (16u << 10) /* below this, waste is not worth a copy */

/* Entries in the order a scrape met them (each once). */
struct sc_order {
	struct sc_entry **v;
	size_t n, cap;
};

struct chain_tab {
	void **b; /* buckets: power of two, or 0 */
	size_t nb, n;
};

struct scrape_series_set {
	struct chain_tab entries, series;
	/* Bodies list their lines in the same order every time: the line after the one
	 * found at last.pos is tried first, without hashing; cur is this scrape's order. */
	struct sc_order last, cur;
	size_t next;           /* index in last of the predicted next line */
	struct sc_slab *slabs; /* newest first */
	size_t live, dead;     /* bytes of blocks in the slabs */
	uint64_t scrape;       /* number of the scrape in progress, or of the last one */
	uint64_t done; /* number of the last scrape ended: its set is the series whose in_set
	                * is done (none when it failed) */
	/* what the entries were computed under */
	bool ctx_valid;
	enum collect_format format;
	const struct relabel *mrl;
	bool honor_labels;
	uint64_t target_hash;
	const struct tsdb *ref_db; /* the store the series' tsdb_refs belong to */
};

/* 8 bytes at a time (memcpy: no misaligned loads), then a final mix: the series text of a
 * line is hashed once per scrape, so this is on the hot path; FNV's byte loop is 4x slower. */
static uint64_t text_hash(const char *s, size_t n) {
	const uint64_t k = 0x9e3779b97f4a7c15ULL;
	uint64_t h = n * k, w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	if (n) {
		w = 0;
		memcpy(&w, s, n);
		h = (h ^ w) * k;
	}
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	return h;
}

/* ---- the arena ---- */
static void *arena_alloc(struct scrape_series_set *set, size_t n) {
	n = (n + 15) & ~(size_t)15;
	struct sc_slab *sl = set->slabs;
	if (!sl || sl->used + n > sl->cap) {
		size_t cap = sl ? 2 * sl->cap : SLAB_MIN_BYTES;
		if (cap > SLAB_MAX_BYTES)
			cap = SLAB_MAX_BYTES;
		if (cap < n)
			cap = n;
		sl = ward_xmalloc(sizeof(*sl) + cap);
		sl->next = set->slabs;
		sl->used = 0;
		sl->cap = cap;
		set->slabs = sl;
	}
	void *p = sl->data + sl->used;
	sl->used += n;
	set->live += n;
	return p;
}

static void arena_release(struct scrape_series_set *set, size_t n) {
	n = (n + 15) & ~(size_t)15;
	set->live -= n;
	set->dead += n;
}

static void slabs_free(struct sc_slab *sl) {
	while (sl) {
		struct sc_slab *next = sl->next;
		free(sl);
		sl = next;
	}
}

/* ---- chained tables of structs that start with (next, h) ---- */
struct chain_node {
	struct chain_node *next;
	uint64_t h;
};

static void **chain_bucket(struct chain_tab *t, uint64_t h) {
	return &t->b[h & (t->nb - 1)];
}

static void chain_add(struct chain_tab *t, void *node) {
	struct chain_node *x = node;
	if (t->n + 1 > t->nb) { /* load at most 1 */
		size_t nb = t->nb ? t->nb * 2 : 64;
		void **b = ward_xcalloc(nb, sizeof(*b));
		for (size_t i = 0; i < t->nb; i++) {
			struct chain_node *c = t->b[i];
			while (c) {
				struct chain_node *next = c->next;
				c->next = b[c->h & (nb - 1)];
				b[c->h & (nb - 1)] = c;
				c = next;
			}
		}
		free(t->b);
		t->b = b;
		t->nb = nb;
	}
	void **slot = chain_bucket(t, x->h);
	x->next = *slot;
	*slot = x;
	t->n++;
}

/* ---- series ---- */

/* A copy of ls in one block: the struct, the label array, then the strings. */
static struct sc_series *series_new(struct scrape_series_set *set, const struct labels *ls,
                                    uint64_t h) {
	size_t bytes = sizeof(struct sc_series) + ls->n * sizeof(struct label);
	for (size_t i = 0; i < ls->n; i++)
		bytes += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
	struct sc_series *s = arena_alloc(set, bytes);
	memset(s, 0, sizeof(*s));
	s->bytes = (uint32_t)bytes;
	struct label *v = (struct label *)(s + 1);
	char *p = (char *)(v + ls->n);
	for (size_t i = 0; i < ls->n; i++) {
		size_t a = strlen(ls->v[i].name) + 1, b = strlen(ls->v[i].value) + 1;
		memcpy(p, ls->v[i].name, a);
		v[i].name = p;
		p += a;
		memcpy(p, ls->v[i].value, b);
		v[i].value = p;
		p += b;
	}
	s->ls.v = v;
	s->ls.n = ls->n;
	s->h = h;
	return s;
}

struct sc_series *scrape_cache_series(struct scrape_series_set *set, const struct labels *ls) {
	uint64_t h = labels_hash(ls);
	if (set->series.nb)
		for (struct sc_series *s = *chain_bucket(&set->series, h); s; s = s->next)
			if (s->h == h && labels_equal(&s->ls, ls))
				return s;
	struct sc_series *s = series_new(set, ls, h);
	chain_add(&set->series, s);
	return s;
}

const struct labels *scrape_cache_series_labels(const struct sc_series *s) {
	return &s->ls;
}

uint32_t *scrape_cache_series_ref(struct scrape_series_set *set, struct sc_series *s,
                                  const struct tsdb *db) {
	if (set->ref_db != db) { /* refs name series of one store only */
		for (size_t i = 0; i < set->series.nb; i++)
			for (struct sc_series *x = set->series.b[i]; x; x = x->next)
				x->tsdb_ref = 0;
		set->ref_db = db;
	}
	return &s->tsdb_ref;
}

bool scrape_cache_series_mark(struct scrape_series_set *set, struct sc_series *s, bool *added) {
	if (s->mark == set->scrape)
		return false;
	s->mark = set->scrape;
	*added = s->in_set != set->done;
	return true;
}

/* ---- entries ---- */

static size_t entry_bytes(const struct sc_entry *e) {
	return sizeof(*e) + e->n;
}

static void entry_free(struct scrape_series_set *set, struct sc_entry *e) {
	if (e->s)
		e->s->refs--;
	arena_release(set, entry_bytes(e));
}

/* Puts e in this scrape's order (once). */
static void order_push(struct scrape_series_set *set, struct sc_entry *e) {
	struct sc_order *o = &set->cur;
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 256;
		o->v = ward_xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	e->seen = set->scrape;
	e->pos = o->n;
	o->v[o->n++] = e;
}

struct sc_entry *scrape_cache_find(struct scrape_series_set *set, const char *text, size_t n,
                                   uint64_t *h) {
	struct sc_entry *e;
	*h = 0;
	if (set->next < set->last.n) { /* the line after the last one found */
		e = set->last.v[set->next];
		if (e->n == n && memcmp(e->text, text, n) == 0) {
			set->next++;
			return e;
		}
	}
	*h = text_hash(text, n);
	if (!set->entries.nb)
		return NULL;
	for (e = *chain_bucket(&set->entries, *h); e; e = e->next)
		if (e->h == *h && e->n == n && memcmp(e->text, text, n) == 0) {
			/* the body moved: predict from here on (entries not seen in the last
			 * scrape, i.e. seen earlier in this one, keep the prediction as is) */
			if (e->seen == set->done)
				set->next = e->pos + 1;
			return e;
		}
	return NULL;
}

struct sc_entry *scrape_cache_add(struct scrape_series_set *set, const char *text, size_t n,
                                  uint64_t h, uint64_t parse_h, struct sc_series *s) {
	struct sc_entry *e = arena_alloc(set, sizeof(*e) + n);
	e->h = h ? h : text_hash(text, n);
	e->parse_h = parse_h;
	e->s = s;
	e->n = n;
	memcpy(e->text, text, n);
	if (s)
		s->refs++;
	chain_add(&set->entries, e);
	order_push(set, e);
	return e;
}

uint64_t scrape_cache_entry_parse_hash(const struct sc_entry *e) {
	return e->parse_h;
}

struct sc_series *scrape_cache_entry_series(struct scrape_series_set *set, struct sc_entry *e) {
	if (e->seen != set->scrape)
		order_push(set, e);
	return e->s;
}

/* Frees the entries keep() refuses, and the series nobody points to that are not in the
 * latest set. */
static void sweep(struct scrape_series_set *set, bool all_entries) {
	if (all_entries) {
		set->cur.n = 0;
		set->last.n = 0;
		set->next = 0;
	}
	/* cur holds each entry seen in this scrape once, so the walk can stop as soon as the
	 * counts agree: at once in the usual case, a body with the same lines as the last */
	for (size_t i = 0; i < set->entries.nb && (all_entries || set->cur.n != set->entries.n);
	     i++) {
		struct sc_entry **pp = (struct sc_entry **)&set->entries.b[i];
		while (*pp) {
			struct sc_entry *e = *pp;
			if (all_entries || e->seen != set->scrape) {
				*pp = e->next;
				entry_free(set, e);
				set->entries.n--;
			} else {
				pp = &e->next;
			}
		}
	}
	for (size_t i = 0; i < set->series.nb; i++) {
		struct sc_series **pp = (struct sc_series **)&set->series.b[i];
		while (*pp) {
			struct sc_series *s = *pp;
			if (s->refs == 0 && s->in_set != set->done) {
				*pp = s->next;
				arena_release(set, s->bytes);
				set->series.n--;
			} else {
				pp = &s->next;
			}
		}
	}
}

/* Copies the live series and entries to fresh slabs (the old ones are freed): series
 * first, each leaving its new address in its old next; then the entries, in the order of
 * the last scrape (which holds every live entry: call after scrape_cache_end's sweep or
 * with no entries). The tables are rebuilt. */
static void compact(struct scrape_series_set *set) {
	struct sc_slab *old = set->slabs;
	set->slabs = NULL;
	set->live = set->dead = 0;
	struct chain_tab st = set->series, et = set->entries;
	memset(&set->series, 0, sizeof(set->series));
	memset(&set->entries, 0, sizeof(set->entries));
	for (size_t i = 0; i < st.nb; i++) {
		struct sc_series *s = st.b[i];
		while (s) {
			struct sc_series *next = s->next;
			struct sc_series *c = arena_alloc(set, s->bytes);
			memcpy(c, s, s->bytes);
			char *ob = (char *)s, *nb = (char *)c;
			c->ls.v = (struct label *)(c + 1);
			for (size_t k = 0; k < c->ls.n; k++) {
				c->ls.v[k].name = nb + (c->ls.v[k].name - ob);
				c->ls.v[k].value = nb + (c->ls.v[k].value - ob);
			}
			s->next = c;
			chain_add(&set->series, c);
			s = next;
		}
	}
	for (size_t i = 0; i < set->last.n; i++) {
		struct sc_entry *e = set->last.v[i];
		struct sc_entry *c = arena_alloc(set, entry_bytes(e));
		memcpy(c, e, entry_bytes(e));
		if (c->s)
			c->s = c->s->next;
		set->last.v[i] = c;
		chain_add(&set->entries, c);
	}
	free(st.b);
	free(et.b);
	slabs_free(old);
}

static void maybe_compact(struct scrape_series_set *set) {
	if (set->dead > COMPACT_MIN_DEAD && set->dead > set->live)
		compact(set);
}

/* ---- the set's life ---- */

struct scrape_series_set *scrape_series_set_new(void) {
	struct scrape_series_set *set = ward_xcalloc(1, sizeof(*set));
	/* scrapes are numbered from 2, so that the last set (done) is never the 0 of a series
	 * that was in no set yet */
	set->scrape = set->done = 1;
	return set;
}

void scrape_series_set_forget(struct scrape_series_set *set) {
	if (!set)
		return;
	sweep(set, true);
	set->ctx_valid = false;
	maybe_compact(set);
}

void scrape_series_set_free(struct scrape_series_set *set) {
	if (!set)
		return;
	slabs_free(set->slabs);
	free(set->entries.b);
	free(set->series.b);
	free(set->last.v);
	free(set->cur.v);
	free(set);
}

void scrape_cache_begin(struct scrape_series_set *set, const struct scrape_process_opts *o) {
	set->scrape = set->done + 1;
	set->cur.n = 0;
	set->next = 0;
	uint64_t th = labels_hash(o->target_labels);
	if (set->ctx_valid && (set->mrl != o->metric_relabel ||
	                       set->honor_labels != o->honor_labels || set->target_hash != th))
		scrape_series_set_forget(set);
	set->mrl = o->metric_relabel;
	set->honor_labels = o->honor_labels;
	set->target_hash = th;
}

void scrape_cache_format(struct scrape_series_set *set, enum collect_format f) {
	if (set->ctx_valid && set->format != f)
		scrape_series_set_forget(set);
	set->format = f;
	set->ctx_valid = true;
}

void scrape_cache_end(struct scrape_series_set *set, bool ok, struct tsdb_appender *a,
                      int64_t t_ms) {
	for (size_t i = 0; i < set->series.nb; i++)
		for (struct sc_series *s = set->series.b[i]; s; s = s->next) {
			if (ok && s->mark == set->scrape)
				s->in_set = set->scrape;
			else if (s->in_set == set->done)
				(void)tsdb_append(a, &s->ls, t_ms, tsdb_stale_nan(), NULL);
		}
	set->done = set->scrape;
	sweep(set, false);
	/* this scrape's order is the next one's prediction (it holds exactly the entries
	 * kept) */
	struct sc_order t = set->last;
	set->last = set->cur;
	set->cur = t;
	set->cur.n = 0;
	maybe_compact(set);
}

size_t scrape_series_set_stale_all(struct scrape_series_set *set, struct tsdb_appender *a,
                                   int64_t t_ms) {
	size_t n = 0;
	for (size_t i = 0; i < set->series.nb; i++)
		for (struct sc_series *s = set->series.b[i]; s; s = s->next)
			if (s->in_set == set->done) {
				(void)tsdb_append(a, &s->ls, t_ms, tsdb_stale_nan(), NULL);
				n++;
			}
	/* the set is empty now: the next scrape (if any) starts afresh */
	set->scrape = ++set->done;
	sweep(set, true);
	set->ctx_valid = false;
	return n;
}

void scrape_cache_stats(const struct scrape_series_set *set, size_t *entries, size_t *series) {
	*entries = set->entries.n;
	*series = set->series.n;
}
