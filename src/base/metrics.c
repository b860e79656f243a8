/* metrics.c: ward's own metrics registry and its Prometheus text (0.0.4) exposition.
 *
 * One process-wide registry guarded by one mutex (reg_lock guards every family, series and
 * value below). Families are kept sorted by name and series within a family sorted by label
 * values, so output order is stable and lookups are binary searches. Registration is
 * idempotent by name and never fails: invalid metric or label name characters become '_'.
 * A family without labels has its one series from the start, so it is exported as 0.
 * Callers: every module registers and updates; http serves metric_write_all on /metrics.
 */
#include "base/base.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct series {
	char **values;     /* one per label name */
	double value;      /* counter or gauge */
	uint64_t *buckets; /* histogram: per-bucket counts (not cumulative), nbuckets of them */
	uint64_t count;    /* histogram: observations */
	double sum;        /* histogram: sum of observations */
};

struct metric {
	char *name;
	char *help;
	enum metric_type type;
	char **labels; /* label names */
	size_t nlabels;
	double *bounds; /* histogram upper bounds, ascending, +Inf implicit */
	size_t nbounds;
	struct series **series; /* sorted by label values */
	size_t nseries;
	metric_fn fn; /* scrape-time value, or NULL */
	void *fn_arg;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric **reg_families; /* sorted by name */
static size_t reg_n;

/* Name characters the exposition format allows: [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' for
 * label names). */
static char *sanitize_name(const char *s, bool colon_ok) {
	char *p = ward_strdup(s && *s ? s : "_");
	size_t i;

	for (i = 0; p[i]; i++) {
		char c = p[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			p[i] = '_';
	}
	return p;
}

static const char *family_name_at(const void *arr, size_t i) {
	return ((struct metric *const *)arr)[i]->name;
}

static size_t family_find(const char *name, bool *found) {
	return ward_sorted_find(reg_families, reg_n, name, family_name_at, found);
}

static void family_insert(size_t at, struct metric *m) {
	reg_families = ward_xrealloc(reg_families, (reg_n + 1) * sizeof(reg_families[0]));
	memmove(&reg_families[at + 1], &reg_families[at], (reg_n - at) * sizeof(reg_families[0]));
	reg_families[at] = m;
	reg_n++;
}

static int values_cmp(const struct metric *m, char *const *a, const char *const *b) {
	size_t i;

	for (i = 0; i < m->nlabels; i++) {
		const char *bv = b && b[i] ? b[i] : "";
		int c = strcmp(a[i], bv);
		if (c)
			return c;
	}
	return 0;
}

/* Finds or creates the series for values. Caller holds reg_lock. */
static struct series *series_get(struct metric *m, const char *const *values) {
	size_t lo = 0, hi = m->nseries, i;
	struct series *s;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = values_cmp(m, m->series[mid]->values, values);
		if (c == 0)
			return m->series[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	s = ward_xcalloc(1, sizeof(*s));
	s->values = ward_xcalloc(m->nlabels ? m->nlabels : 1, sizeof(char *));
	for (i = 0; i < m->nlabels; i++)
		s->values[i] = ward_strdup(values && values[i] ? values[i] : "");
	if (m->type == METRIC_HISTOGRAM)
		s->buckets = ward_xcalloc(m->nbounds ? m->nbounds : 1, sizeof(uint64_t));
	m->series = ward_xrealloc(m->series, (m->nseries + 1) * sizeof(m->series[0]));
	memmove(&m->series[lo + 1], &m->series[lo], (m->nseries - lo) * sizeof(m->series[0]));
	m->series[lo] = s;
	m->nseries++;
	return s;
}

static struct metric *family_new(const char *name, const char *help, enum metric_type type) {
	struct metric *m = ward_xcalloc(1, sizeof(*m));

	m->name = sanitize_name(name, true);
	m->help = ward_strdup(help ? help : "");
	m->type = type;
	return m;
}

struct metric *metric_register(const char *name, const char *help, enum metric_type type,
                               const char *const *labels, const double *buckets, size_t nbuckets) {
	struct metric *m;
	char *clean = sanitize_name(name, true);
	bool found;
	size_t at, i;

	pthread_mutex_lock(&reg_lock);
	at = family_find(clean, &found);
	if (found) {
		m = reg_families[at];
		goto out;
	}
	m = family_new(clean, help, type);
	while (labels && labels[m->nlabels])
		m->nlabels++;
	if (m->nlabels) {
		m->labels = ward_xcalloc(m->nlabels, sizeof(char *));
		for (i = 0; i < m->nlabels; i++)
			m->labels[i] = sanitize_name(labels[i], false);
	}
	if (type == METRIC_HISTOGRAM && nbuckets && buckets) {
		m->bounds = ward_xcalloc(nbuckets, sizeof(double));
		/* Keep only strictly ascending finite bounds; +Inf is always added on output. */
		for (i = 0; i < nbuckets; i++) {
			if (!isfinite(buckets[i]))
				continue;
			if (m->nbounds && buckets[i] <= m->bounds[m->nbounds - 1])
				continue;
			m->bounds[m->nbounds++] = buckets[i];
		}
	}
	if (m->nlabels == 0)
		series_get(m, NULL);
	family_insert(at, m);
out:
	pthread_mutex_unlock(&reg_lock);
	free(clean);
	return m;
}

void metric_register_fn(const char *name, const char *help, enum metric_type type, metric_fn fn,
                        void *arg) {
	struct metric *m;
	char *clean = sanitize_name(name, true);
	bool found;
	size_t at;

	if (type == METRIC_HISTOGRAM)
		type = METRIC_GAUGE; /* a function yields one number, not a distribution */
	pthread_mutex_lock(&reg_lock);
	at = family_find(clean, &found);
	if (found) {
		m = reg_families[at];
		/* A family with labels or buckets cannot become one scrape-time number. */
		if (m->nlabels == 0 && m->type != METRIC_HISTOGRAM) {
			m->fn = fn;
			m->fn_arg = arg;
		}
	} else {
		m = family_new(clean, help, type);
		m->fn = fn;
		m->fn_arg = arg;
		family_insert(at, m);
	}
	pthread_mutex_unlock(&reg_lock);
	free(clean);
}

void metric_add(struct metric *m, const char *const *values, double delta) {
	struct series *s;

	if (!m || m->type == METRIC_HISTOGRAM)
		return;
	if (m->type == METRIC_COUNTER && !(delta >= 0))
		return; /* counters only go up; a negative or NaN delta is a caller bug */
	pthread_mutex_lock(&reg_lock);
	if (!m->fn) {
		s = series_get(m, values);
		s->value += delta;
	}
	pthread_mutex_unlock(&reg_lock);
}

void metric_set(struct metric *m, const char *const *values, double v) {
	struct series *s;

	if (!m || m->type == METRIC_HISTOGRAM)
		return;
	pthread_mutex_lock(&reg_lock);
	if (!m->fn) {
		s = series_get(m, values);
		s->value = v;
	}
	pthread_mutex_unlock(&reg_lock);
}

void metric_observe(struct metric *m, const char *const *values, double v) {
	struct series *s;
	size_t i;

	if (!m || m->type != METRIC_HISTOGRAM)
		return;
	pthread_mutex_lock(&reg_lock);
	s = series_get(m, values);
	for (i = 0; i < m->nbounds; i++) {
		if (v <= m->bounds[i]) {
			s->buckets[i]++;
			break;
		}
	}
	s->count++;
	s->sum += v;
	pthread_mutex_unlock(&reg_lock);
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void put_escaped(struct buf *out, const char *s, bool quote) {
	for (; *s; s++) {
		if (*s == '\\')
			buf_puts(out, "\\\\");
		else if (*s == '\n')
			buf_puts(out, "\\n");
		else if (quote && *s == '"')
			buf_puts(out, "\\\"");
		else
			buf_putc(out, *s);
	}
}

/* Writes name{labels[,le="x"]} for one series; le may be NULL. */
static void put_series_name(struct buf *out, const struct metric *m, const char *suffix,
                            const struct series *s, const char *le) {
	size_t i;

	buf_puts(out, m->name);
	buf_puts(out, suffix);
	if (m->nlabels == 0 && !le)
		return;
	buf_putc(out, '{');
	for (i = 0; i < m->nlabels; i++) {
		if (i)
			buf_putc(out, ',');
		buf_printf(out, "%s=\"", m->labels[i]);
		put_escaped(out, s->values[i], true);
		buf_putc(out, '"');
	}
	if (le) {
		if (m->nlabels)
			buf_putc(out, ',');
		buf_printf(out, "le=\"%s\"", le);
	}
	buf_putc(out, '}');
}

static void write_histogram_series(struct buf *out, const struct metric *m,
                                   const struct series *s) {
	struct buf le = BUF_INIT;
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < m->nbounds; i++) {
		cum += s->buckets[i];
		buf_reset(&le);
		buf_put_double(&le, m->bounds[i]);
		put_series_name(out, m, "_bucket", s, buf_cstr(&le));
		buf_printf(out, " %llu\n", (unsigned long long)cum);
	}
	put_series_name(out, m, "_bucket", s, "+Inf");
	buf_printf(out, " %llu\n", (unsigned long long)s->count);
	put_series_name(out, m, "_sum", s, NULL);
	buf_putc(out, ' ');
	buf_put_double(out, s->sum);
	buf_putc(out, '\n');
	put_series_name(out, m, "_count", s, NULL);
	buf_printf(out, " %llu\n", (unsigned long long)s->count);
	buf_free(&le);
}

static const char *type_name(enum metric_type t) {
	switch (t) {
	case METRIC_COUNTER:
		return "counter";
	case METRIC_GAUGE:
		return "gauge";
	case METRIC_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

void metric_write_all(struct buf *out) {
	size_t f, i;

	pthread_mutex_lock(&reg_lock);
	for (f = 0; f < reg_n; f++) {
		const struct metric *m = reg_families[f];

		buf_printf(out, "# HELP %s ", m->name);
		put_escaped(out, m->help, false);
		buf_printf(out, "\n# TYPE %s %s\n", m->name, type_name(m->type));
		if (m->fn) {
			buf_printf(out, "%s ", m->name);
			buf_put_double(out, m->fn(m->fn_arg));
			buf_putc(out, '\n');
			continue;
		}
		for (i = 0; i < m->nseries; i++) {
			const struct series *s = m->series[i];
			if (m->type == METRIC_HISTOGRAM) {
				write_histogram_series(out, m, s);
				continue;
			}
			put_series_name(out, m, "", s, NULL);
			buf_putc(out, ' ');
			buf_put_double(out, s->value);
			buf_putc(out, '\n');
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

static void family_free(struct metric *m) {
	size_t i, j;

	for (i = 0; i < m->nseries; i++) {
		for (j = 0; j < m->nlabels; j++)
			free(m->series[i]->values[j]);
		free(m->series[i]->values);
		free(m->series[i]->buckets);
		free(m->series[i]);
	}
	for (j = 0; j < m->nlabels; j++)
		free(m->labels[j]);
	free(m->series);
	free(m->labels);
	free(m->bounds);
	free(m->name);
	free(m->help);
	free(m);
}

void metric_reset_all(void) {
	size_t f;

	pthread_mutex_lock(&reg_lock);
	for (f = 0; f < reg_n; f++)
		family_free(reg_families[f]);
	free(reg_families);
	reg_families = NULL;
	reg_n = 0;
	pthread_mutex_unlock(&reg_lock);
}
