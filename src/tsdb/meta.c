/* meta.c: metric metadata (type, help, unit by metric family name) as scrapes and
 * remote_write report it, for /api/v1/metadata. Kept in memory only, as Prometheus keeps
 * what its targets last said: the newest report of a field wins and a restart forgets.
 * Invariants: entries sorted by family name (bsearch, and listings come out sorted); every
 * string is bounded (TSDB_META_MAX bytes) and at most TSDB_META_FAMILIES families are kept,
 * so a target cannot grow this without limit. Guarded by its own mutex.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/tsdb_internal.h"

#define TSDB_META_MAX 1024
#define TSDB_META_FAMILIES 100000

struct meta_entry {
	char *family;
	char *f[3]; /* type, help, unit */
};

struct tsdb_meta {
	pthread_mutex_t mu;
	struct meta_entry *v;
	size_t n, cap;
};

struct tsdb_meta *tsdb_meta_new(void)
{
	struct tsdb_meta *m = ward_xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void tsdb_meta_free(struct tsdb_meta *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].family);
		for (int k = 0; k < 3; k++)
			free(m->v[i].f[k]);
	}
	free(m->v);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static const char *family_at(const void *arr, size_t i)
{
	return ((const struct meta_entry *)arr)[i].family;
}

/* Index of family, or of where it would go (*found false). */
static size_t meta_find(const struct tsdb_meta *m, const char *family, bool *found)
{
	return ward_sorted_find(m->v, m->n, family, family_at, found);
}

void tsdb_metadata_set(struct tsdb *db, const char *family, enum tsdb_meta_field field,
		       const char *text)
{
	struct tsdb_meta *m = tsdb_meta_of(db);
	if (!m || !family || !*family || !text || (unsigned)field > TSDB_META_UNIT ||
	    strlen(family) > TSDB_META_MAX)
		return;
	pthread_mutex_lock(&m->mu);
	bool found;
	size_t i = meta_find(m, family, &found);
	if (!found) {
		if (m->n >= TSDB_META_FAMILIES)
			goto out;
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 64;
			m->v = ward_xrealloc(m->v, m->cap * sizeof(*m->v));
		}
		memmove(m->v + i + 1, m->v + i, (m->n - i) * sizeof(*m->v));
		m->v[i] = (struct meta_entry){.family = ward_strdup(family)};
		m->n++;
	}
	char **slot = &m->v[i].f[field];
	size_t len = strnlen(text, TSDB_META_MAX);
	if (!*slot || strncmp(*slot, text, len) || (*slot)[len]) {
		free(*slot);
		*slot = ward_strndup(text, len);
	}
out:
	pthread_mutex_unlock(&m->mu);
}

size_t tsdb_metadata_list(struct tsdb *db, const char *family, size_t limit,
			  struct tsdb_metadata **out)
{
	struct tsdb_meta *m = tsdb_meta_of(db);
	size_t k = 0;
	*out = NULL;
	if (!m)
		return 0;
	pthread_mutex_lock(&m->mu);
	size_t from = 0, to = m->n;
	if (family) {
		bool found;
		from = meta_find(m, family, &found);
		to = found ? from + 1 : from;
	}
	if (limit && to - from > limit)
		to = from + limit;
	if (to > from)
		*out = ward_xcalloc(to - from, sizeof(**out));
	for (size_t i = from; i < to; i++, k++) {
		(*out)[k].family = ward_strdup(m->v[i].family);
		(*out)[k].type = ward_strdup(m->v[i].f[TSDB_META_TYPE] ? m->v[i].f[TSDB_META_TYPE]
								  : "unknown");
		(*out)[k].help = ward_strdup(m->v[i].f[TSDB_META_HELP] ? m->v[i].f[TSDB_META_HELP]
								  : "");
		(*out)[k].unit = ward_strdup(m->v[i].f[TSDB_META_UNIT] ? m->v[i].f[TSDB_META_UNIT]
								  : "");
	}
	pthread_mutex_unlock(&m->mu);
	return k;
}

void tsdb_metadata_free(struct tsdb_metadata *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].family);
		free(v[i].type);
		free(v[i].help);
		free(v[i].unit);
	}
	free(v);
}
