/* index.c: the inverted index (name=value -> sorted postings of series refs) and the
 * label-set codec shared by the WAL and blocks.
 *
 * Invariants: postings are sorted and unique; `all` holds every indexed ref. Matcher
 * evaluation follows Prometheus: a matcher that does not match "" selects the union of the
 * postings of the values it matches (a direct lookup for =); a matcher that matches ""
 * selects every series except those whose value for that name it rejects (so a series
 * without the label is kept). The result is the intersection over all matchers.
 * Callers: head.c (the head's index), block.c (each block's index), db.c (queries).
 */
#include "tsdb/tsdb_internal.h"

#include <stdlib.h>

static uint64_t str_hash(const char *s) {
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	while (*s) {
		h ^= (uint8_t)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

void idx_init(struct tsdb_index *x) {
	memset(x, 0, sizeof(*x));
}

static void postings_free_chain(struct idx_postings *p) {
	while (p) {
		struct idx_postings *next = p->next;
		free(p->value);
		free(p->refs);
		free(p);
		p = next;
	}
}

void idx_free(struct tsdb_index *x) {
	for (size_t i = 0; i < x->ntab; i++) {
		struct idx_name *nm = x->tab[i];
		while (nm) {
			struct idx_name *next = nm->next;
			for (size_t j = 0; j < nm->ntab; j++)
				postings_free_chain(nm->tab[j]);
			free(nm->tab);
			free(nm->name);
			free(nm);
			nm = next;
		}
	}
	free(x->tab);
	free(x->all);
	idx_init(x);
}

static struct idx_name *name_find(const struct tsdb_index *x, const char *name) {
	if (!x->ntab)
		return NULL;
	for (struct idx_name *nm = x->tab[str_hash(name) & (x->ntab - 1)]; nm; nm = nm->next)
		if (strcmp(nm->name, name) == 0)
			return nm;
	return NULL;
}

static struct idx_postings *value_find(const struct idx_name *nm, const char *value) {
	if (!nm || !nm->ntab)
		return NULL;
	for (struct idx_postings *p = nm->tab[str_hash(value) & (nm->ntab - 1)]; p; p = p->next)
		if (strcmp(p->value, value) == 0)
			return p;
	return NULL;
}

const struct idx_postings *idx_get(const struct tsdb_index *x, const char *name,
                                   const char *value) {
	return value_find(name_find(x, name), value);
}

static void name_grow(struct tsdb_index *x) {
	size_t n = x->ntab ? x->ntab * 2 : 16;
	struct idx_name **tab = ward_xcalloc(n, sizeof(*tab));
	for (size_t i = 0; i < x->ntab; i++) {
		struct idx_name *nm = x->tab[i];
		while (nm) {
			struct idx_name *next = nm->next;
			size_t b = str_hash(nm->name) & (n - 1);
			nm->next = tab[b];
			tab[b] = nm;
			nm = next;
		}
	}
	free(x->tab);
	x->tab = tab;
	x->ntab = n;
}

static void value_grow(struct idx_name *nm) {
	size_t n = nm->ntab ? nm->ntab * 2 : 4;
	struct idx_postings **tab = ward_xcalloc(n, sizeof(*tab));
	for (size_t i = 0; i < nm->ntab; i++) {
		struct idx_postings *p = nm->tab[i];
		while (p) {
			struct idx_postings *next = p->next;
			size_t b = str_hash(p->value) & (n - 1);
			p->next = tab[b];
			tab[b] = p;
			p = next;
		}
	}
	free(nm->tab);
	nm->tab = tab;
	nm->ntab = n;
}

static void refs_insert(uint32_t **refs, uint32_t *n, uint32_t *cap, uint32_t ref) {
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 2;
		*refs = ward_xrealloc(*refs, *cap * sizeof(**refs));
	}
	uint32_t i = *n;
	if (i > 0 && (*refs)[i - 1] >= ref) {
		uint32_t lo = 0, hi = *n;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if ((*refs)[mid] < ref)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < *n && (*refs)[lo] == ref)
			return;
		memmove(*refs + lo + 1, *refs + lo, (*n - lo) * sizeof(**refs));
		i = lo;
	}
	(*refs)[i] = ref;
	(*n)++;
}

static void refs_remove(uint32_t *refs, uint32_t *n, uint32_t ref) {
	uint32_t lo = 0, hi = *n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (refs[mid] < ref)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < *n && refs[lo] == ref) {
		memmove(refs + lo, refs + lo + 1, (*n - lo - 1) * sizeof(*refs));
		(*n)--;
	}
}

void idx_add(struct tsdb_index *x, uint32_t ref, const struct labels *ls) {
	uint32_t nall = (uint32_t)x->nall, capall = (uint32_t)x->capall;
	refs_insert(&x->all, &nall, &capall, ref);
	x->nall = nall;
	x->capall = capall;
	for (size_t i = 0; i < ls->n; i++) {
		struct idx_name *nm = name_find(x, ls->v[i].name);
		if (!nm) {
			if (x->nnames >= x->ntab * 3 / 4)
				name_grow(x);
			nm = ward_xcalloc(1, sizeof(*nm));
			nm->name = ward_strdup(ls->v[i].name);
			size_t b = str_hash(nm->name) & (x->ntab - 1);
			nm->next = x->tab[b];
			x->tab[b] = nm;
			x->nnames++;
		}
		struct idx_postings *p = value_find(nm, ls->v[i].value);
		if (!p) {
			if (nm->nvals >= nm->ntab * 3 / 4)
				value_grow(nm);
			p = ward_xcalloc(1, sizeof(*p));
			p->value = ward_strdup(ls->v[i].value);
			size_t b = str_hash(p->value) & (nm->ntab - 1);
			p->next = nm->tab[b];
			nm->tab[b] = p;
			nm->nvals++;
		}
		refs_insert(&p->refs, &p->n, &p->cap, ref);
	}
}

void idx_del(struct tsdb_index *x, uint32_t ref, const struct labels *ls) {
	uint32_t nall = (uint32_t)x->nall;
	refs_remove(x->all, &nall, ref);
	x->nall = nall;
	for (size_t i = 0; i < ls->n; i++) {
		struct idx_name *nm = name_find(x, ls->v[i].name);
		if (!nm)
			continue;
		size_t b = str_hash(ls->v[i].value) & (nm->ntab - 1);
		for (struct idx_postings **pp = &nm->tab[b]; *pp; pp = &(*pp)->next) {
			struct idx_postings *p = *pp;
			if (strcmp(p->value, ls->v[i].value) != 0)
				continue;
			refs_remove(p->refs, &p->n, ref);
			if (p->n == 0) {
				*pp = p->next;
				p->next = NULL;
				postings_free_chain(p);
				nm->nvals--;
			}
			break;
		}
	}
}

/* ---- set operations on sorted ref arrays ---- */
struct refset {
	uint32_t *v;
	size_t n;
};

static int ref_cmp(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The first index >= lo of v[0..n) whose value is >= x: doubling steps, then bisection,
 * so a small set intersected with a large one costs its size times a logarithm. */
static size_t gallop(const uint32_t *v, size_t n, size_t lo, uint32_t x) {
	size_t step = 1, hi = lo;
	while (hi < n && v[hi] < x) {
		lo = hi + 1;
		hi += step;
		step *= 2;
	}
	if (hi > n)
		hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Keeps in cur (in place) the refs that are (keep_common) or are not in b. */
static void rs_filter(struct refset *cur, const uint32_t *b, size_t nb, bool keep_common) {
	size_t k = 0, j = 0;
	bool gal = cur->n * 8 < nb;
	for (size_t i = 0; i < cur->n; i++) {
		uint32_t x = cur->v[i];
		if (gal)
			j = gallop(b, nb, j, x);
		else
			while (j < nb && b[j] < x)
				j++;
		bool common = j < nb && b[j] == x;
		if (common == keep_common)
			cur->v[k++] = x;
	}
	cur->n = k;
}

/* The union of the postings of name's values for which (matcher matches) == want: the
 * lists concatenated, sorted and made unique (not merged pairwise, which is quadratic in
 * the number of values). */
static struct refset values_union(const struct idx_name *nm, const struct matcher *m, bool want) {
	struct refset acc = {0};
	size_t cap = 0, nlists = 0;
	if (!nm)
		return acc;
	for (size_t b = 0; b < nm->ntab; b++)
		for (struct idx_postings *p = nm->tab[b]; p; p = p->next) {
			if (matcher_matches(m, p->value) != want || !p->n)
				continue;
			if (acc.n + p->n > cap) {
				cap = (acc.n + p->n) * 2;
				acc.v = ward_xrealloc(acc.v, cap * sizeof(*acc.v));
			}
			memcpy(acc.v + acc.n, p->refs, p->n * sizeof(*acc.v));
			acc.n += p->n;
			nlists++;
		}
	if (nlists > 1) {
		qsort(acc.v, acc.n, sizeof(*acc.v), ref_cmp);
		size_t k = 0;
		for (size_t i = 0; i < acc.n; i++)
			if (!k || acc.v[k - 1] != acc.v[i])
				acc.v[k++] = acc.v[i];
		acc.n = k;
	}
	return acc;
}

/* Evaluation order: equality matchers by their list's length (shortest first: the result
 * can only shrink), then other matchers that need a value, then those that match "". */
struct morder {
	const struct matcher *m;
	const struct idx_postings *p; /* for =: its list, NULL when the value is absent */
	int rank;                     /* 0 =, 1 other positive, 2 matches "" */
};

static int morder_cmp(const void *a, const void *b) {
	const struct morder *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	if (x->rank == 0) {
		size_t nx = x->p ? x->p->n : 0, ny = y->p ? y->p->n : 0;
		return nx < ny ? -1 : nx > ny;
	}
	return 0;
}

void idx_select(const struct tsdb_index *x, const struct matcher *ms, size_t nms, uint32_t **out,
                size_t *n) {
	struct refset cur = {0};
	bool have = false;
	struct morder stack_ord[8];
	struct morder *ord = nms <= 8 ? stack_ord : ward_xmalloc(nms * sizeof(*ord));

	for (size_t i = 0; i < nms; i++) {
		const struct matcher *m = &ms[i];
		ord[i] = (struct morder){.m = m, .p = NULL, .rank = 1};
		if (matcher_matches(m, ""))
			ord[i].rank = 2;
		else if (m->op == MATCH_EQ) {
			ord[i].rank = 0;
			ord[i].p = value_find(name_find(x, m->name), m->value);
		}
	}
	qsort(ord, nms, sizeof(*ord), morder_cmp);
	for (size_t i = 0; i < nms && (!have || cur.n); i++) {
		const struct morder *o = &ord[i];
		const struct idx_name *nm;
		switch (o->rank) {
		case 0:
			if (!o->p || !o->p->n) {
				cur.n = 0;
			} else if (!have) {
				cur.v = ward_xmalloc(o->p->n * sizeof(uint32_t));
				memcpy(cur.v, o->p->refs, o->p->n * sizeof(uint32_t));
				cur.n = o->p->n;
			} else {
				rs_filter(&cur, o->p->refs, o->p->n, true);
			}
			break;
		case 1: {
			struct refset sel = values_union(name_find(x, o->m->name), o->m, true);
			if (!have) {
				cur = sel;
				sel.v = NULL;
			} else {
				rs_filter(&cur, sel.v, sel.n, true);
			}
			free(sel.v);
			break;
		}
		default:
			nm = name_find(x, o->m->name);
			struct refset sel = values_union(nm, o->m, false);
			if (!have) {
				cur.n = x->nall;
				cur.v = ward_xmalloc((x->nall ? x->nall : 1) * sizeof(uint32_t));
				if (x->nall)
					memcpy(cur.v, x->all, x->nall * sizeof(uint32_t));
			}
			rs_filter(&cur, sel.v, sel.n, false);
			free(sel.v);
			break;
		}
		have = true;
	}
	if (ord != stack_ord)
		free(ord);
	if (!have) {
		cur.n = x->nall;
		cur.v = cur.n ? ward_xmalloc(cur.n * sizeof(uint32_t)) : NULL;
		if (cur.n)
			memcpy(cur.v, x->all, cur.n * sizeof(uint32_t));
	}
	if (!cur.n) {
		free(cur.v);
		cur.v = NULL;
	}
	*out = cur.v;
	*n = cur.n;
}

size_t idx_bytes(const struct tsdb_index *x) {
	size_t total = x->ntab * sizeof(void *) + x->capall * sizeof(uint32_t);
	for (size_t i = 0; i < x->ntab; i++)
		for (struct idx_name *nm = x->tab[i]; nm; nm = nm->next) {
			total += sizeof(*nm) + strlen(nm->name) + 1 + nm->ntab * sizeof(void *);
			for (size_t b = 0; b < nm->ntab; b++)
				for (struct idx_postings *p = nm->tab[b]; p; p = p->next)
					total += sizeof(*p) + strlen(p->value) + 1 +
					         p->cap * sizeof(uint32_t);
		}
	return total;
}

void idx_each(const struct tsdb_index *x,
              void (*fn)(void *arg, const char *name, const struct idx_postings *p), void *arg) {
	for (size_t i = 0; i < x->ntab; i++)
		for (struct idx_name *nm = x->tab[i]; nm; nm = nm->next)
			for (size_t b = 0; b < nm->ntab; b++)
				for (struct idx_postings *p = nm->tab[b]; p; p = p->next)
					fn(arg, nm->name, p);
}

/* ---- label-set codec ---- */
char *tsdb_get_str(const uint8_t **p, const uint8_t *end) {
	uint64_t n;
	if (tsdb_get_uvarint(p, end, &n) < 0 || n > (uint64_t)(end - *p))
		return NULL;
	if (memchr(*p, 0, n))
		return NULL;
	char *s = ward_strndup((const char *)*p, n);
	*p += n;
	return s;
}

void tsdb_buf_labels(struct buf *b, const struct labels *ls) {
	tsdb_buf_uvarint(b, ls->n);
	for (size_t i = 0; i < ls->n; i++) {
		tsdb_buf_str(b, ls->v[i].name);
		tsdb_buf_str(b, ls->v[i].value);
	}
}

int tsdb_get_labels(const uint8_t **p, const uint8_t *end, struct labels *ls) {
	uint64_t n;
	labels_init(ls);
	if (tsdb_get_uvarint(p, end, &n) < 0 || n == 0 || n > (uint64_t)(end - *p))
		return -1;
	ls->v = ward_xcalloc(n, sizeof(*ls->v));
	for (uint64_t i = 0; i < n; i++) {
		ls->v[i].name = tsdb_get_str(p, end);
		ls->v[i].value = ls->v[i].name ? tsdb_get_str(p, end) : NULL;
		ls->n = i + 1;
		if (!ls->v[i].name || !ls->v[i].value)
			goto fail;
	}
	if (tsdb_labels_invalid(ls))
		goto fail;
	return 0;
fail:
	labels_free(ls);
	return -1;
}

static bool name_ok(const char *s) {
	if (!*s)
		return false;
	for (const char *c = s; *c; c++) {
		bool alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_';
		if (!alpha && !(c > s && *c >= '0' && *c <= '9'))
			return false;
	}
	return true;
}

const char *tsdb_labels_invalid(const struct labels *ls) {
	bool has_name = false;
	if (!ls || ls->n == 0)
		return "empty label set";
	for (size_t i = 0; i < ls->n; i++) {
		if (!ls->v[i].name || !ls->v[i].value)
			return "missing label name or value";
		if (!name_ok(ls->v[i].name))
			return "invalid label name";
		if (!ls->v[i].value[0])
			return "empty label value";
		if (i > 0 && strcmp(ls->v[i - 1].name, ls->v[i].name) >= 0)
			return "label names not sorted or duplicated";
		if (strcmp(ls->v[i].name, "__name__") == 0)
			has_name = true;
	}
	return has_name ? NULL : "no __name__ label";
}
