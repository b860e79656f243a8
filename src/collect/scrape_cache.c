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
 * config reload; the series (the staleness state) are kept. Nothing here holds tsdb refs,
 * so head garbage collection cannot leave an entry pointing at nothing. One thread at a time
 * (the engine scrapes a target once at a time).
 */
#include <stdlib.h>
#include <string.h>

#include "collect/collect_internal.h"
#include "tsdb/tsdb.h"

struct sc_series {
	struct sc_series *next; /* chain by h */
	uint64_t h;             /* labels_hash(&ls) */
	struct labels ls;       /* one allocation with the strings (see series_new) */
	uint32_t refs;          /* entries pointing here */
	uint64_t mark;          /* the scrape (number) that last wrote it without a timestamp */
	uint64_t in_set;        /* the last successful such scrape: its staleness set */
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
	size_t next; /* index in last of the predicted next line */
	uint64_t scrape; /* number of the scrape in progress, or of the last one */
	uint64_t done;   /* number of the last scrape ended: its set is the series whose in_set
	                  * is done (none when it failed) */
	/* what the entries were computed under */
	bool ctx_valid;
	enum collect_format format;
	const struct relabel *mrl;
	bool honor_labels;
	uint64_t target_hash;
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

/* A copy of ls in one allocation: the struct, the label array, then the strings. */
static struct sc_series *series_new(const struct labels *ls, uint64_t h) {
	size_t bytes = sizeof(struct sc_series) + ls->n * sizeof(struct label);
	for (size_t i = 0; i < ls->n; i++)
		bytes += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
	struct sc_series *s = ward_xcalloc(1, bytes);
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
	struct sc_series *s = series_new(ls, h);
	chain_add(&set->series, s);
	return s;
}

const struct labels *scrape_cache_series_labels(const struct sc_series *s) {
	return &s->ls;
}

bool scrape_cache_series_mark(struct scrape_series_set *set, struct sc_series *s, bool *added) {
	if (s->mark == set->scrape)
		return false;
	s->mark = set->scrape;
	*added = s->in_set != set->done;
	return true;
}

/* ---- entries ---- */

static void entry_free(struct sc_entry *e) {
	if (e->s)
		e->s->refs--;
	free(e);
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
	struct sc_entry *e = ward_xmalloc(sizeof(*e) + n);
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
				entry_free(e);
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
				free(s);
				set->series.n--;
			} else {
				pp = &s->next;
			}
		}
	}
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
}

void scrape_series_set_free(struct scrape_series_set *set) {
	if (!set)
		return;
	sweep(set, true);
	for (size_t i = 0; i < set->series.nb; i++) {
		struct sc_series *s = set->series.b[i];
		while (s) {
			struct sc_series *next = s->next;
			free(s);
			s = next;
		}
	}
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
