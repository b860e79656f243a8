/* remote_write.c: decoding Prometheus remote_write WriteRequest protobufs by hand.
 *
 * The schema is small and frozen (prometheus/prompb types.proto, remote.proto):
 *   WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
 *   MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
 *                    string unit = 5; }
 *   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
 *                  repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
 *   Label        { string name = 1; string value = 2; }
 *   Sample       { double value = 1; int64 timestamp = 2; }
 * so a direct decoder is shorter than the glue for a generated one, and allocates only the
 * per-series arrays. Every length is checked against the bytes left; unknown fields are
 * skipped by wire type, as protobuf requires. Invariant: never reads past buf + n.
 */
#include <stdlib.h>
#include <string.h>

#include "promapi/promapi.h"

#define MAX_LABELS_PER_SERIES 512

struct pb {
	const uint8_t *p, *end, *start;
};

static int varint(struct pb *b, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (b->p >= b->end)
			return -1;
		uint8_t c = *b->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* Skips a field of the given wire type. */
static int skip(struct pb *b, unsigned wt)
{
	uint64_t n;
	switch (wt) {
	case 0:
		return varint(b, &n);
	case 1:
		if (b->end - b->p < 8)
			return -1;
		b->p += 8;
		return 0;
	case 2:
		if (varint(b, &n) || n > (uint64_t)(b->end - b->p))
			return -1;
		b->p += n;
		return 0;
	case 5:
		if (b->end - b->p < 4)
			return -1;
		b->p += 4;
		return 0;
	default:
		return -1;
	}
}

/* Reads a length-delimited field's bounds into sub. */
static int sub_msg(struct pb *b, struct pb *sub)
{
	uint64_t n;
	if (varint(b, &n) || n > (uint64_t)(b->end - b->p))
		return -1;
	sub->p = b->p;
	sub->end = b->p + n;
	sub->start = b->start;
	b->p += n;
	return 0;
}

struct series_buf {
	struct labels ls;
	int64_t *t;
	double *v;
	size_t n, cap;
};

static int decode_label(struct pb *m, struct series_buf *s, struct ward_err *err)
{
	const uint8_t *name = NULL, *value = NULL;
	size_t nl = 0, vl = 0;
	while (m->p < m->end) {
		uint64_t key;
		if (varint(m, &key))
			return -1;
		unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
		if ((field == 1 || field == 2) && wt == 2) {
			struct pb str;
			if (sub_msg(m, &str))
				return -1;
			if (field == 1) {
				name = str.p;
				nl = (size_t)(str.end - str.p);
			} else {
				value = str.p;
				vl = (size_t)(str.end - str.p);
			}
		} else if (skip(m, wt)) {
			return -1;
		}
	}
	if (!name || nl == 0) {
		ward_err_set(err, "a label without a name");
		return -2;
	}
	if (s->ls.n >= MAX_LABELS_PER_SERIES) {
		ward_err_set(err, "more than %d labels in one series", MAX_LABELS_PER_SERIES);
		return -2;
	}
	char *nm = ward_strndup((const char *)name, nl);
	char *vv = ward_strndup(value ? (const char *)value : "", vl);
	if (labels_get(&s->ls, nm)) {
		ward_err_set(err, "duplicate label name \"%s\"", nm);
		free(nm);
		free(vv);
		return -2;
	}
	labels_set(&s->ls, nm, vv);
	free(nm);
	free(vv);
	return 0;
}

static int decode_sample(struct pb *m, struct series_buf *s)
{
	double v = 0;
	int64_t t = 0;
	while (m->p < m->end) {
		uint64_t key;
		if (varint(m, &key))
			return -1;
		unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
		if (field == 1 && wt == 1) {
			if (m->end - m->p < 8)
				return -1;
			uint64_t bits = 0;
			for (int i = 7; i >= 0; i--)
				bits = (bits << 8) | m->p[i];
			memcpy(&v, &bits, sizeof(v));
			m->p += 8;
		} else if (field == 2 && wt == 0) {
			uint64_t u;
			if (varint(m, &u))
				return -1;
			t = (int64_t)u;
		} else if (skip(m, wt)) {
			return -1;
		}
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->t = ward_xrealloc(s->t, s->cap * sizeof(*s->t));
		s->v = ward_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->t[s->n] = t;
	s->v[s->n] = v;
	s->n++;
	return 0;
}

/* MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
 *                  string unit = 5; } */
static int decode_metadata(struct pb *m, const struct promapi_write_sink *sink)
{
	static const char *const types[] = {"unknown", "counter", "gauge",  "histogram",
					    "gaugehistogram", "summary", "info", "stateset"};
	uint64_t type = 0;
	const uint8_t *fs[6] = {0};
	size_t fl[6] = {0};
	while (m->p < m->end) {
		uint64_t key;
		if (varint(m, &key))
			return -1;
		unsigned f = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
		if (f == 1 && wt == 0) {
			if (varint(m, &type))
				return -1;
		} else if ((f == 2 || f == 4 || f == 5) && wt == 2) {
			struct pb str;
			if (sub_msg(m, &str))
				return -1;
			fs[f] = str.p;
			fl[f] = (size_t)(str.end - str.p);
		} else if (skip(m, wt)) {
			return -1;
		}
	}
	if (!fl[2] || memchr(fs[2], 0, fl[2]) || !sink || !sink->metadata)
		return 0; /* no usable family name */
	char *name = ward_strndup((const char *)fs[2], fl[2]);
	char *help = ward_strndup(fs[4] ? (const char *)fs[4] : "", fl[4]);
	char *unit = ward_strndup(fs[5] ? (const char *)fs[5] : "", fl[5]);
	sink->metadata(sink->arg, name, type < 8 ? types[type] : "unknown", help, unit);
	free(name);
	free(help);
	free(unit);
	return 0;
}

int promapi_decode_write(const uint8_t *buf, size_t n, const struct promapi_write_sink *sink,
			 size_t *skipped, struct ward_err *err)
{
	struct pb b = {.p = buf, .end = buf + n, .start = buf};
	struct series_buf s = {0};
	labels_init(&s.ls);
	size_t skip_count = 0;
	int rc = 0;
	while (b.p < b.end) {
		size_t off = (size_t)(b.p - buf);
		uint64_t key;
		if (varint(&b, &key))
			goto bad;
		unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
		if (field == 3 && wt == 2) {
			/* metadata is advice: a malformed one is passed over, never the samples */
			struct pb md;
			if (sub_msg(&b, &md))
				goto bad;
			(void)decode_metadata(&md, sink);
			continue;
		}
		if (field != 1 || wt != 2) {
			if (skip(&b, wt))
				goto bad;
			continue;
		}
		struct pb ts;
		if (sub_msg(&b, &ts))
			goto bad;
		labels_free(&s.ls);
		s.n = 0;
		while (ts.p < ts.end) {
			uint64_t k2;
			if (varint(&ts, &k2))
				goto bad;
			unsigned f2 = (unsigned)(k2 >> 3), w2 = (unsigned)(k2 & 7);
			struct pb m;
			if ((f2 == 1 || f2 == 2) && w2 == 2) {
				if (sub_msg(&ts, &m))
					goto bad;
				int r = f2 == 1 ? decode_label(&m, &s, err) : decode_sample(&m, &s);
				if (r == -2) {
					ward_err_append(err, "in the series starting at byte %zu", off);
					rc = -1;
					goto out;
				}
				if (r)
					goto bad;
			} else {
				if ((f2 == 3 || f2 == 4) && w2 == 2)
					skip_count++;
				if (skip(&ts, w2))
					goto bad;
			}
		}
		if (sink && sink->series && sink->series(sink->arg, &s.ls, s.t, s.v, s.n) != 0) {
			rc = -1;
			goto out;
		}
	}
	goto out;
bad:
	ward_err_set(err, "malformed protobuf at byte %zu of %zu: not a remote_write WriteRequest",
		     (size_t)(b.p - buf), n);
	rc = -1;
out:
	labels_free(&s.ls);
	free(s.t);
	free(s.v);
	if (skipped)
		*skipped = skip_count;
	return rc;
}
