/* eval.c: evaluates a parsed LogQL query over the store and writes Loki's "data" object.
 *
 * Log queries visit blocks newest first (backward) or oldest first (forward) and stop as
 * soon as no remaining block can beat the `limit` lines already kept, so `|= "error"` with
 * a limit touches only the blocks it needs. Metric queries collect (time, bytes) per
 * output series over [start - range, end] and count each step with two pointers over the
 * sorted times. A block that fails its crc is skipped and logged, never returned.
 * Called by the HTTP API (api.c) and tests.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "logs/logs_internal.h"

#define MAX_STEPS 11000 /* as Prometheus: more points than a graph can show */

/* ---- series table ---- */
struct series {
	struct labels labels;
	uint64_t hash;
	int64_t *ts;
	uint32_t *bytes;
	size_t n, cap;
	/* log queries: */
	size_t *entries;
	size_t nentries;
};
struct stab {
	struct series *v;
	size_t n, cap;
	uint32_t *idx; /* open addressing, series index + 1 */
	size_t icap;
};

static size_t stab_get(struct stab *t, const struct labels *ls, bool *created) {
	uint64_t h = labels_hash(ls);
	if (t->icap) {
		size_t j = h & (t->icap - 1);
		while (t->idx[j]) {
			struct series *s = &t->v[t->idx[j] - 1];
			if (s->hash == h && labels_equal(&s->labels, ls)) {
				if (created)
					*created = false;
				return t->idx[j] - 1;
			}
			j = (j + 1) & (t->icap - 1);
		}
	}
	if ((t->n + 1) * 2 > t->icap) {
		size_t nc = t->icap ? t->icap * 2 : 64;
		uint32_t *ni = ward_xcalloc(nc, sizeof(uint32_t));
		for (size_t i = 0; i < t->n; i++) {
			size_t j = t->v[i].hash & (nc - 1);
			while (ni[j])
				j = (j + 1) & (nc - 1);
			ni[j] = (uint32_t)i + 1;
		}
		free(t->idx);
		t->idx = ni;
		t->icap = nc;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = ward_xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	struct series *s = &t->v[t->n];
	memset(s, 0, sizeof(*s));
	labels_copy(&s->labels, ls);
	s->hash = h;
	size_t j = h & (t->icap - 1);
	while (t->idx[j])
		j = (j + 1) & (t->icap - 1);
	t->idx[j] = (uint32_t)t->n + 1;
	if (created)
		*created = true;
	return t->n++;
}

static void stab_free(struct stab *t) {
	for (size_t i = 0; i < t->n; i++) {
		labels_free(&t->v[i].labels);
		free(t->v[i].ts);
		free(t->v[i].bytes);
		free(t->v[i].entries);
	}
	free(t->v);
	free(t->idx);
	memset(t, 0, sizeof(*t));
}

static void put_labels_json(struct buf *out, const struct labels *ls) {
	buf_putc(out, '{');
	for (size_t i = 0; i < ls->n; i++) {
		if (i)
			buf_putc(out, ',');
		buf_json_str(out, ls->v[i].name, strlen(ls->v[i].name));
		buf_putc(out, ':');
		buf_json_str(out, ls->v[i].value, strlen(ls->v[i].value));
	}
	buf_putc(out, '}');
}

/* ---- log queries ---- */
struct hit {
	int64_t ts;
	size_t series;
	uint64_t seq; /* arrival order, to keep equal timestamps stable */
	char *line;
	size_t len;
};

static int hit_cmp_desc(const void *a, const void *b) {
	const struct hit *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? 1 : -1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}
static int hit_cmp_asc(const void *a, const void *b) {
	const struct hit *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}
static int blk_cmp_desc(const void *a, const void *b) {
	const struct logs_blockref *x = a, *y = b;
	return x->max_ts < y->max_ts ? 1 : x->max_ts > y->max_ts ? -1 : 0;
}
static int blk_cmp_asc(const void *a, const void *b) {
	const struct logs_blockref *x = a, *y = b;
	return x->min_ts < y->min_ts ? -1 : x->min_ts > y->min_ts ? 1 : 0;
}

static void hits_trim(struct hit *h, size_t *n, size_t limit, bool backward) {
	if (*n > 1)
		qsort(h, *n, sizeof(*h), backward ? hit_cmp_desc : hit_cmp_asc);
	for (size_t i = limit; i < *n; i++)
		free(h[i].line);
	if (*n > limit)
		*n = limit;
}

static int exec_log(struct logs_snapshot *sn, const struct logs_query *q,
                    const struct logs_query_opts *o, struct buf *out, struct ward_err *err) {
	bool backward = o->direction == LOGS_BACKWARD;
	size_t limit = o->limit ? o->limit : 100;
	struct hit *hits = NULL;
	size_t nh = 0, ch = 0;
	uint64_t seq = 0;
	bool full = false;
	int64_t cutoff = 0;
	struct stab tab = {0};
	struct logs_fields fields = {0};
	struct buf raw = BUF_INIT;
	size_t *stream_series = ward_xcalloc(sn->nstreams ? sn->nstreams : 1, sizeof(size_t));
	for (size_t i = 0; i < sn->nstreams; i++)
		stream_series[i] = SIZE_MAX;

	if (sn->nblocks > 1)
		qsort(sn->blocks, sn->nblocks, sizeof(*sn->blocks),
		      backward ? blk_cmp_desc : blk_cmp_asc);
	for (size_t bi = 0; bi < sn->nblocks; bi++) {
		const struct logs_blockref *b = &sn->blocks[bi];
		if (full && (backward ? b->max_ts < cutoff : b->min_ts > cutoff))
			break;
		struct ward_err re;
		ward_err_clear(&re);
		if (logs_snapshot_read(sn, b, &raw, &re) != 0) {
			ward_log(LOG_WARN, "logs: skipped an unreadable block", "error", re.msg,
			         NULL);
			continue;
		}
		const uint8_t *p = (const uint8_t *)raw.data, *end = p + raw.len;
		int64_t prev = 0, ts;
		const char *line;
		size_t len;
		const struct labels *stream = &sn->streams[b->stream];
		while (logs_raw_next(&p, end, &prev, &ts, &line, &len) == 1) {
			if (ts < o->start_ns || ts > o->end_ns)
				continue;
			if (full && (backward ? ts < cutoff : ts > cutoff))
				continue;
			struct labels lo;
			labels_init(&lo);
			bool hf = false;
			if (!logs_pipeline_run(q, stream, line, len, &fields, &lo, &hf)) {
				labels_free(&lo);
				continue;
			}
			size_t si;
			if (!hf) {
				if (stream_series[b->stream] == SIZE_MAX)
					stream_series[b->stream] = stab_get(&tab, stream, NULL);
				si = stream_series[b->stream];
			} else {
				si = stab_get(&tab, &lo, NULL);
			}
			labels_free(&lo);
			if (nh == ch) {
				ch = ch ? ch * 2 : 256;
				hits = ward_xrealloc(hits, ch * sizeof(*hits));
			}
			/* the whole line: it may hold NUL bytes (len, not strlen, is its size) */
			char *copy = ward_xmalloc(len + 1);
			if (len)
				memcpy(copy, line, len);
			copy[len] = 0;
			hits[nh++] = (struct hit){.ts = ts,
			                          .series = si,
			                          .seq = seq++,
			                          .line = copy,
			                          .len = len};
			if (nh >= 2 * limit) {
				hits_trim(hits, &nh, limit, backward);
				full = true;
				cutoff = hits[nh - 1].ts;
			}
		}
	}
	hits_trim(hits, &nh, limit, backward);
	for (size_t i = 0; o->newest_ns && i < nh; i++)
		if (hits[i].ts > *o->newest_ns)
			*o->newest_ns = hits[i].ts;
	/* Group by series, in the order of their first hit. */
	for (size_t i = 0; i < nh; i++) {
		struct series *s = &tab.v[hits[i].series];
		s->entries = ward_xrealloc(s->entries, (s->nentries + 1) * sizeof(size_t));
		s->entries[s->nentries++] = i;
	}
	buf_puts(out, "{\"resultType\":\"streams\",\"result\":[");
	bool first = true;
	for (size_t si = 0; si < tab.n; si++) {
		struct series *s = &tab.v[si];
		if (!s->nentries)
			continue;
		if (!first)
			buf_putc(out, ',');
		first = false;
		buf_puts(out, "{\"stream\":");
		put_labels_json(out, &s->labels);
		buf_puts(out, ",\"values\":[");
		for (size_t k = 0; k < s->nentries; k++) {
			struct hit *h = &hits[s->entries[k]];
			buf_printf(out, "%s[\"%" PRId64 "\",", k ? "," : "", h->ts);
			buf_json_str(out, h->line, h->len);
			buf_putc(out, ']');
		}
		buf_puts(out, "]}");
	}
	buf_printf(out, "],\"stats\":{\"lines\":%zu}}", nh);
	for (size_t i = 0; i < nh; i++)
		free(hits[i].line);
	free(hits);
	free(stream_series);
	stab_free(&tab);
	logs_fields_free(&fields);
	buf_free(&raw);
	(void)err;
	return 0;
}

/* ---- metric queries ---- */

static int cmp_i64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts a series' samples by time, carrying bytes along. */
static void series_sort(struct series *s) {
	bool sorted = true;
	for (size_t i = 1; i < s->n && sorted; i++)
		if (s->ts[i] < s->ts[i - 1])
			sorted = false;
	if (sorted)
		return;
	struct pair {
		int64_t ts;
		uint32_t b;
	} *p = ward_xmalloc(s->n * sizeof(*p));
	for (size_t i = 0; i < s->n; i++)
		p[i] = (struct pair){s->ts[i], s->bytes[i]};
	if (s->n > 1)
		qsort(p, s->n, sizeof(*p), cmp_i64); /* ts is the first member */
	for (size_t i = 0; i < s->n; i++) {
		s->ts[i] = p[i].ts;
		s->bytes[i] = p[i].b;
	}
	free(p);
}

static void grouping(const struct logs_query *q, const struct labels *in, struct labels *out) {
	labels_init(out);
	if (q->agg == AGG_NONE) {
		labels_copy(out, in);
		return;
	}
	if (q->without) {
		labels_copy(out, in);
		for (size_t i = 0; i < q->nby; i++)
			labels_del(out, q->by[i]);
		return;
	}
	for (size_t i = 0; i < q->nby; i++) {
		const char *v = labels_get(in, q->by[i]);
		if (v)
			labels_set(out, q->by[i], v);
	}
}

static void put_ts_sec(struct buf *out, int64_t ns) {
	int64_t ms = ns / 1000000;
	if (ms % 1000 == 0)
		buf_printf(out, "%" PRId64, ms / 1000);
	else
		buf_printf(out, "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000));
}

static int exec_metric(struct logs_snapshot *sn, const struct logs_query *q,
                       const struct logs_query_opts *o, struct buf *out, struct ward_err *err) {
	bool instant = o->step_ns <= 0;
	int64_t start = instant ? o->end_ns : o->start_ns, end = o->end_ns;
	int64_t step = instant ? 1 : o->step_ns;
	size_t nsteps = (size_t)((end - start) / step) + 1;
	size_t max_series = o->max_series ? o->max_series : 10000;
	int64_t lo = start - q->range_ns;
	struct stab tab = {0}, agg = {0};
	struct logs_fields fields = {0};
	struct buf raw = BUF_INIT;
	int rc = -1;
	double *vals = NULL;
	unsigned char *has = NULL;
	size_t *stream_series = ward_xcalloc(sn->nstreams ? sn->nstreams : 1, sizeof(size_t));
	for (size_t i = 0; i < sn->nstreams; i++)
		stream_series[i] = SIZE_MAX;

	for (size_t bi = 0; bi < sn->nblocks; bi++) {
		const struct logs_blockref *b = &sn->blocks[bi];
		struct ward_err re;
		ward_err_clear(&re);
		if (logs_snapshot_read(sn, b, &raw, &re) != 0) {
			ward_log(LOG_WARN, "logs: skipped an unreadable block", "error", re.msg,
			         NULL);
			continue;
		}
		const uint8_t *p = (const uint8_t *)raw.data, *e = p + raw.len;
		int64_t prev = 0, ts;
		const char *line;
		size_t len;
		const struct labels *stream = &sn->streams[b->stream];
		while (logs_raw_next(&p, e, &prev, &ts, &line, &len) == 1) {
			if (ts <= lo || ts > end)
				continue;
			struct labels lab;
			labels_init(&lab);
			bool hf = false;
			bool need_labels = false;
			for (size_t k = 0; k < q->nstages; k++)
				if (q->stages[k].kind == STAGE_JSON ||
				    q->stages[k].kind == STAGE_LOGFMT)
					need_labels = true;
			if (!logs_pipeline_run(q, stream, line, len, &fields,
			                       need_labels ? &lab : NULL, &hf)) {
				labels_free(&lab);
				continue;
			}
			size_t si;
			bool created = false;
			if (!hf) {
				if (stream_series[b->stream] == SIZE_MAX)
					stream_series[b->stream] = stab_get(&tab, stream, &created);
				si = stream_series[b->stream];
			} else {
				si = stab_get(&tab, &lab, &created);
			}
			labels_free(&lab);
			if (created && tab.n > max_series * 10) {
				ward_err_set(err,
				             "the query produces more than %zu series before "
				             "aggregation; narrow the selector or drop a parser",
				             max_series * 10);
				goto out;
			}
			struct series *s = &tab.v[si];
			if (s->n == s->cap) {
				s->cap = s->cap ? s->cap * 2 : 64;
				s->ts = ward_xrealloc(s->ts, s->cap * sizeof(int64_t));
				s->bytes = ward_xrealloc(s->bytes, s->cap * sizeof(uint32_t));
			}
			s->ts[s->n] = ts;
			s->bytes[s->n++] = (uint32_t)len;
		}
	}
	/* Per input series and step, the range function's value; then aggregate. */
	double range_s = (double)q->range_ns / 1e9;
	size_t *gi = ward_xcalloc(tab.n ? tab.n : 1, sizeof(size_t));
	for (size_t si = 0; si < tab.n; si++) {
		struct labels g;
		grouping(q, &tab.v[si].labels, &g);
		gi[si] = stab_get(&agg, &g, NULL);
		labels_free(&g);
	}
	if (agg.n > max_series) {
		free(gi);
		ward_err_set(err,
		             "the query returns %zu series, more than %zu; aggregate with "
		             "sum by (...)",
		             agg.n, max_series);
		goto out;
	}
	vals = ward_xcalloc(agg.n * nsteps + 1, sizeof(double));
	double *cnt = ward_xcalloc(agg.n * nsteps + 1, sizeof(double));
	has = ward_xcalloc(agg.n * nsteps + 1, 1);
	for (size_t si = 0; si < tab.n; si++) {
		struct series *s = &tab.v[si];
		series_sort(s);
		size_t a = 0, z = 0;
		uint64_t bsum = 0; /* bytes in [a, z) */
		for (size_t k = 0; k < nsteps; k++) {
			int64_t t = start + (int64_t)k * step;
			while (z < s->n && s->ts[z] <= t)
				bsum += s->bytes[z++];
			while (a < z && s->ts[a] <= t - q->range_ns)
				bsum -= s->bytes[a++];
			size_t c = z - a;
			if (!c)
				continue;
			double v;
			switch (q->range_fn) {
			case RANGE_COUNT:
				v = (double)c;
				break;
			case RANGE_RATE:
				v = (double)c / range_s;
				break;
			case RANGE_BYTES:
				v = (double)bsum;
				break;
			default:
				v = (double)bsum / range_s;
				break;
			}
			size_t cell = gi[si] * nsteps + k;
			if (!has[cell]) {
				vals[cell] = (q->agg == AGG_COUNT) ? 1 : v;
			} else {
				switch (q->agg) {
				case AGG_MIN:
					vals[cell] = fmin(vals[cell], v);
					break;
				case AGG_MAX:
					vals[cell] = fmax(vals[cell], v);
					break;
				case AGG_COUNT:
					vals[cell] += 1;
					break;
				default:
					vals[cell] += v;
					break;
				}
			}
			has[cell] = 1;
			cnt[cell] += 1;
		}
	}
	if (q->agg == AGG_AVG)
		for (size_t c = 0; c < agg.n * nsteps; c++)
			if (has[c])
				vals[c] /= cnt[c];
	free(cnt);
	free(gi);
	buf_printf(out, "{\"resultType\":\"%s\",\"result\":[", instant ? "vector" : "matrix");
	bool first = true;
	for (size_t g = 0; g < agg.n; g++) {
		bool any = false;
		for (size_t k = 0; k < nsteps; k++)
			any |= has[g * nsteps + k];
		if (!any)
			continue;
		if (!first)
			buf_putc(out, ',');
		first = false;
		buf_puts(out, "{\"metric\":");
		put_labels_json(out, &agg.v[g].labels);
		buf_puts(out, instant ? ",\"value\":" : ",\"values\":[");
		bool f2 = true;
		for (size_t k = 0; k < nsteps; k++) {
			if (!has[g * nsteps + k])
				continue;
			if (!f2)
				buf_putc(out, ',');
			f2 = false;
			buf_putc(out, '[');
			put_ts_sec(out, start + (int64_t)k * step);
			buf_puts(out, ",\"");
			buf_put_double(out, vals[g * nsteps + k]);
			buf_puts(out, "\"]");
		}
		buf_puts(out, instant ? "}" : "]}");
	}
	buf_puts(out, "]}");
	rc = 0;
out:
	free(vals);
	free(has);
	free(stream_series);
	stab_free(&tab);
	stab_free(&agg);
	logs_fields_free(&fields);
	buf_free(&raw);
	return rc;
}

int logs_query_exec(struct logs_store *s, const struct logs_query *q,
                    const struct logs_query_opts *o, struct buf *out, struct ward_err *err) {
	struct logs_snapshot sn;
	int64_t lo = o->start_ns, hi = o->end_ns;
	if (hi < lo) {
		ward_err_set(err, "end is before start");
		return -1;
	}
	if (q->metric) {
		if (o->step_ns > 0 && (uint64_t)((hi - lo) / o->step_ns) >= MAX_STEPS) {
			ward_err_set(err, "(end - start) / step is more than %d points; raise step",
			             MAX_STEPS);
			return -1;
		}
		lo = (o->step_ns > 0 ? o->start_ns : o->end_ns) - q->range_ns;
	}
	if (logs_store_snapshot(s, q->matchers, q->nmatchers, lo, hi, &sn, err) != 0)
		return -1;
	int rc = q->metric ? exec_metric(&sn, q, o, out, err) : exec_log(&sn, q, o, out, err);
	logs_snapshot_free(&sn);
	return rc;
}
