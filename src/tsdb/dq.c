/* dq.c: the decimal-quantised chunk ("DQ"), the second chunk encoding beside XOR.
 *
 * Most metric values are exactly m / 10^k for an integer m and a small k: counters stepping
 * by 0.01 or 1, gauges in multiples of 4096 or 0.01, constants. XOR spends many bits on
 * those; DQ stores the integers m, and the timestamps, as first or second differences in a
 * Rice code, choosing per chunk and per column whatever is smallest. docs/tsdb-format.md
 * has the byte layout; in short:
 *   [u16 BE 0x8000 | n, n in 1..32767][varint t0][u8 k, 0..15][varint m0]
 *   n >= 2: two column headers (timestamps, then m):
 *     [u8 mode: bit 0 second differences, bit 1 centred (zigzag), bits 2..7 Rice r]
 *     [varint d1, second differences only][varint base][uvarint g]
 *   then one bit stream, MSB first: for every sample i >= 1 the timestamp's residual, then
 *   the value's; a residual is absent when g is 0 or for sample 1 of a second-difference
 *   column. residual = base + q*g (wrapping uint64); q is Rice-coded u (zigzag-decoded when
 *   centred): u >> r as ones ended by a zero, then the low r bits; DQ_QMAX ones escape to
 *   64 raw bits. First differences: x_i = x_{i-1} + residual. Second: d_i = d_{i-1} +
 *   residual (d_1 from the header), x_i = x_{i-1} + d_i. A value is (double)m / 10^k.
 * Invariants: the encoder checks every value bit for bit and decodes the whole chunk before
 * handing it out, so -0.0, NaN (stale markers), infinities and values off the grid leave the
 * chunk to XOR; XOR chunks never have bit 15 of the count set (at most 32767 samples). The
 * decoder checks every read against the length, rejects time going backwards and does O(1)
 * work per sample, so any byte string is safe to decode. Callers: chunk.c.
 */
#include "tsdb/tsdb_internal.h"

#include <math.h>
#include <stdlib.h>

#define DQ_HDR_FLAG  0x80 /* in the first byte */
#define DQ_KMAX      15   /* 10^15 is exact, and m stays within 2^53 for real values */
#define DQ_QMAX      24   /* a unary part this long escapes to 64 raw bits */
#define DQ_M_LIMIT   9007199254740992.0 /* 2^53: (double)m is exact up to here */
#define MODE_ORDER2  1
#define MODE_CENTRED 2

static const double p10[DQ_KMAX + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

static inline double dq_value(uint64_t m, unsigned k) {
	double d = (double)(int64_t)m;
	return k ? d / p10[k] : d;
}

/* ---- bit writer (appends to a buf) ---- */
struct bitw {
	struct buf *b;
	uint64_t acc; /* the low n bits are pending */
	unsigned n;
};

static void bitw_put(struct bitw *w, uint64_t v, unsigned nbits) {
	if (nbits > 32) {
		bitw_put(w, v >> 32, nbits - 32);
		nbits = 32;
	}
	if (nbits == 0)
		return;
	w->acc = (w->acc << nbits) | (v & ((1ull << nbits) - 1));
	w->n += nbits;
	while (w->n >= 8) {
		w->n -= 8;
		buf_putc(w->b, (char)(uint8_t)(w->acc >> w->n));
	}
}

static void bitw_flush(struct bitw *w) {
	if (w->n)
		buf_putc(w->b, (char)(uint8_t)(w->acc << (8 - w->n)));
	w->n = 0;
}

static inline uint64_t rice_cost(uint64_t u, unsigned r) {
	uint64_t q = u >> r;
	return q < DQ_QMAX ? q + 1 + r : DQ_QMAX + 64;
}

static void rice_put(struct bitw *w, uint64_t u, unsigned r) {
	uint64_t q = u >> r;
	if (q < DQ_QMAX) {
		bitw_put(w, (1ull << (q + 1)) - 2, (unsigned)q + 1);
		bitw_put(w, u, r);
	} else {
		bitw_put(w, (1ull << DQ_QMAX) - 1, DQ_QMAX);
		bitw_put(w, u, 64);
	}
}

static unsigned uvarint_len(uint64_t v) {
	unsigned n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}
static inline uint64_t zz(uint64_t s) {
	return (s << 1) ^ (uint64_t)((int64_t)s >> 63);
}
static inline uint64_t unzz(uint64_t u) {
	return (u >> 1) ^ (0 - (u & 1));
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* ---- encoder ---- */

/* m with v == (double)m / 10^k bit for bit, |m| <= 2^53; false when there is none. */
static bool on_grid(double v, unsigned k, int64_t *m) {
	if (!isfinite(v))
		return false;
	double s = v * p10[k];
	if (!(s >= -DQ_M_LIMIT && s <= DQ_M_LIMIT))
		return false;
	int64_t mm = (int64_t)nearbyint(s);
	if (tsdb_dbits(dq_value((uint64_t)mm, k)) != tsdb_dbits(v))
		return false;
	*m = mm;
	return true;
}

/* One k for the whole chunk and every m, or false. A value on the grid of k is on the grid
 * of every larger k as long as m stays exact (the same rational, rounded once), so k only
 * grows; the values before the last growth are recomputed with the final k. */
static bool quantise(const double *v, size_t n, int64_t *m, unsigned *kout) {
	unsigned k = 0;
	size_t redo = 0;
	for (size_t i = 0; i < n; i++) {
		while (!on_grid(v[i], k, &m[i])) {
			if (++k > DQ_KMAX)
				return false;
			redo = i;
		}
	}
	for (size_t i = 0; i < redo; i++)
		if (!on_grid(v[i], k, &m[i]))
			return false;
	*kout = k;
	return true;
}

struct col_plan {
	uint8_t mode, r;
	uint64_t d1, lo, base, g, qc; /* lo: smallest residual; qc: centre in steps of g */
	uint64_t bits;                /* header bits + stream bits */
};

/* Residuals of x[0..n) for order 1 or 2 into res; their count. */
static size_t residuals(const uint64_t *x, size_t n, bool order2, uint64_t *res) {
	size_t k = 0;
	for (size_t i = order2 ? 2 : 1; i < n; i++)
		res[k++] = order2 ? (x[i] - x[i - 1]) - (x[i - 1] - x[i - 2]) : x[i] - x[i - 1];
	return k;
}

/* The cheapest Rice parameter for u[0..n), trying around log2 of the mean. */
static void choose_r(const uint64_t *u, size_t n, uint8_t *r, uint64_t *bits) {
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)u[i];
	double mean = n ? sum / (double)n : 0;
	unsigned r0 = mean >= 1 ? 63 - (unsigned)__builtin_clzll(mean >= 9.2e18 ? UINT64_MAX
	                                                                        : (uint64_t)mean)
	                        : 0;
	*bits = UINT64_MAX;
	for (unsigned r1 = r0 ? r0 - 1 : 0; r1 <= r0 + 1 && r1 <= 63; r1++) {
		uint64_t b = 0;
		for (size_t i = 0; i < n; i++)
			b += rice_cost(u[i], r1);
		if (b < *bits) {
			*bits = b;
			*r = (uint8_t)r1;
		}
	}
}

/* The cheapest way to code column x[0..n), n >= 2. res and u are scratch of n. */
static void plan_col(const uint64_t *x, size_t n, uint64_t *res, uint64_t *u,
                     struct col_plan *best) {
	best->bits = UINT64_MAX;
	for (int order2 = 0; order2 <= (n >= 3); order2++) {
		size_t nr = residuals(x, n, order2, res);
		uint64_t lo = res[0], g = 0, maxq = 0;
		for (size_t i = 1; i < nr; i++)
			if ((int64_t)res[i] < (int64_t)lo)
				lo = res[i];
		for (size_t i = 0; i < nr; i++)
			g = gcd64(g, res[i] - lo);
		struct col_plan p = {.mode = (uint8_t)(order2 ? MODE_ORDER2 : 0), .lo = lo, .g = g};
		p.d1 = x[1] - x[0];
		uint64_t hdr = 1 + (order2 ? uvarint_len(zz(p.d1)) : 0) + uvarint_len(g);
		if (g == 0) { /* every residual equals lo: nothing in the stream */
			p.base = lo;
			p.bits = 8 * (hdr + uvarint_len(zz(lo)));
			if (p.bits < best->bits)
				*best = p;
			continue;
		}
		double sum = 0;
		for (size_t i = 0; i < nr; i++) {
			u[i] = (res[i] - lo) / g;
			maxq = u[i] > maxq ? u[i] : maxq;
			sum += (double)u[i];
		}
		/* from the smallest residual up */
		p.base = lo;
		choose_r(u, nr, &p.r, &p.bits);
		p.bits += 8 * (hdr + uvarint_len(zz(lo)));
		if (p.bits < best->bits)
			*best = p;
		/* centred on the mean, zigzag; only when the steps fit int64 comfortably */
		if (maxq > (1ull << 62))
			continue;
		uint64_t qc = (uint64_t)llround(sum / (double)nr);
		for (size_t i = 0; i < nr; i++)
			u[i] = zz(u[i] - qc);
		struct col_plan c = p;
		c.mode |= MODE_CENTRED;
		c.qc = qc;
		c.base = lo + qc * g;
		choose_r(u, nr, &c.r, &c.bits);
		c.bits += 8 * (hdr + uvarint_len(zz(c.base)));
		if (c.bits < best->bits)
			*best = c;
	}
}

static void put_col_header(struct buf *b, const struct col_plan *p) {
	buf_putc(b, (char)(uint8_t)(p->mode | p->r << 2));
	if (p->mode & MODE_ORDER2)
		tsdb_buf_varint(b, (int64_t)p->d1);
	tsdb_buf_varint(b, (int64_t)p->base);
	tsdb_buf_uvarint(b, p->g);
}

/* Writes sample i's residual of column x under plan p. */
static void put_residual(struct bitw *w, const struct col_plan *p, const uint64_t *x, size_t i) {
	bool order2 = p->mode & MODE_ORDER2;
	if (p->g == 0 || (order2 && i == 1))
		return;
	uint64_t r = order2 ? (x[i] - x[i - 1]) - (x[i - 1] - x[i - 2]) : x[i] - x[i - 1];
	uint64_t u = (r - p->lo) / p->g;
	rice_put(w, (p->mode & MODE_CENTRED) ? zz(u - p->qc) : u, p->r);
}

/* Decodes the chunk and compares every sample bit for bit. */
static bool dq_verify(const uint8_t *d, size_t len, const int64_t *t, const double *v, size_t n) {
	struct dq_it it;
	int64_t gt;
	double gv;
	if (dq_it_init(&it, d, len) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (dq_it_next(&it, &gt, &gv) != 1 || gt != t[i] ||
		    tsdb_dbits(gv) != tsdb_dbits(v[i]))
			return false;
	return dq_it_next(&it, &gt, &gv) == 0;
}

uint8_t *dq_encode(const int64_t *t, const double *v, size_t n, uint32_t *len) {
	uint8_t *out = NULL;
	unsigned k;

	if (n == 0 || n > DQ_MAX_SAMPLES)
		return NULL;
	for (size_t i = 1; i < n; i++)
		if (t[i] < t[i - 1])
			return NULL;
	int64_t *m = ward_xmalloc(n * sizeof(*m));
	uint64_t *scratch = ward_xmalloc(2 * n * sizeof(*scratch));
	struct buf b = BUF_INIT;
	if (!quantise(v, n, m, &k))
		goto out;
	/* Signed and unsigned versions of one type may alias; the columns are read as uint64
	 * so that every difference wraps instead of overflowing. */
	const uint64_t *tx = (const uint64_t *)t, *mx = (const uint64_t *)m;
	buf_reserve(&b, 32 + n);
	buf_putc(&b, (char)(uint8_t)(DQ_HDR_FLAG | n >> 8));
	buf_putc(&b, (char)(uint8_t)n);
	tsdb_buf_varint(&b, t[0]);
	buf_putc(&b, (char)(uint8_t)k);
	tsdb_buf_varint(&b, m[0]);
	if (n >= 2) {
		struct col_plan pt, pv;
		plan_col(tx, n, scratch, scratch + n, &pt);
		plan_col(mx, n, scratch, scratch + n, &pv);
		put_col_header(&b, &pt);
		put_col_header(&b, &pv);
		struct bitw w = {&b, 0, 0};
		for (size_t i = 1; i < n; i++) {
			put_residual(&w, &pt, tx, i);
			put_residual(&w, &pv, mx, i);
		}
		bitw_flush(&w);
	}
	if (b.len > UINT32_MAX ||
	    !dq_verify((const uint8_t *)b.data, b.len, t, v, n)) /* cannot happen; be safe */
		goto out;
	*len = (uint32_t)b.len;
	out = (uint8_t *)b.data;
	b.data = NULL;
out:
	buf_free(&b);
	free(m);
	free(scratch);
	return out;
}

/* ---- decoder ---- */

bool dq_is_dq(const uint8_t *data, size_t len) {
	return len >= 2 && (data[0] & DQ_HDR_FLAG);
}

static int get_col_header(const uint8_t **p, const uint8_t *end, struct dq_col *c, uint64_t x0) {
	int64_t s;
	uint64_t g;
	if (*p >= end)
		return -1;
	uint8_t mode = *(*p)++;
	c->order2 = mode & MODE_ORDER2;
	c->centred = (mode & MODE_CENTRED) != 0;
	c->r = mode >> 2;
	c->d = 0;
	if (c->order2) {
		if (tsdb_get_varint(p, end, &s) < 0)
			return -1;
		c->d = (uint64_t)s;
	}
	if (tsdb_get_varint(p, end, &s) < 0 || tsdb_get_uvarint(p, end, &g) < 0)
		return -1;
	c->base = (uint64_t)s;
	c->g = g;
	c->x = x0;
	return 0;
}

int dq_it_init(struct dq_it *it, const uint8_t *data, size_t len) {
	const uint8_t *p = data + 2, *end = data + len;
	int64_t t0, m0;

	memset(it, 0, sizeof(*it));
	if (!dq_is_dq(data, len))
		return -1;
	it->n = (uint16_t)((data[0] & 0x7f) << 8 | data[1]);
	if (it->n == 0 || tsdb_get_varint(&p, end, &t0) < 0 || p >= end)
		return -1;
	it->k = *p++;
	if (it->k > DQ_KMAX || tsdb_get_varint(&p, end, &m0) < 0)
		return -1;
	it->t = t0;
	it->col[0].x = (uint64_t)t0;
	it->col[1].x = (uint64_t)m0;
	if (it->n >= 2 && (get_col_header(&p, end, &it->col[0], (uint64_t)t0) < 0 ||
	                   get_col_header(&p, end, &it->col[1], (uint64_t)m0) < 0))
		return -1;
	it->data = data;
	it->len = len;
	it->bitoff = (size_t)(p - data) * 8;
	return 0;
}

/* 64 bits from bit offset pos, zeros past the end (at least 57 of them are real when
 * pos + 57 <= len * 8). */
static inline uint64_t peek64(const uint8_t *d, size_t len, size_t pos) {
	size_t byte = pos >> 3;
	uint64_t w = 0;
	if (byte + 8 <= len) {
		for (int i = 0; i < 8; i++)
			w = w << 8 | d[byte + i];
	} else {
		for (size_t i = 0; i < 8; i++)
			w = w << 8 | (byte + i < len ? d[byte + i] : 0);
	}
	return w << (pos & 7);
}

static int get_bits(struct dq_it *it, unsigned nbits, uint64_t *out) {
	if (nbits > it->len * 8 - it->bitoff)
		return -1;
	if (nbits == 0) {
		*out = 0;
		return 0;
	}
	if (nbits > 56) {
		uint64_t hi, lo;
		get_bits(it, nbits - 32, &hi);
		get_bits(it, 32, &lo);
		*out = hi << 32 | lo;
		return 0;
	}
	*out = peek64(it->data, it->len, it->bitoff) >> (64 - nbits);
	it->bitoff += nbits;
	return 0;
}

static int rice_get(struct dq_it *it, unsigned r, uint64_t *out) {
	size_t avail = it->len * 8 - it->bitoff;
	uint64_t w = ~peek64(it->data, it->len, it->bitoff);
	unsigned ones = w ? (unsigned)__builtin_clzll(w) : 64;
	uint64_t low;
	if (ones >= DQ_QMAX) {
		if (avail < DQ_QMAX)
			return -1;
		it->bitoff += DQ_QMAX;
		return get_bits(it, 64, out);
	}
	if (ones + 1 > avail)
		return -1; /* the ending zero was padding */
	it->bitoff += ones + 1;
	if (get_bits(it, r, &low) < 0)
		return -1;
	*out = ((uint64_t)ones << r) | low;
	return 0;
}

static inline int col_next(struct dq_it *it, struct dq_col *c) {
	uint64_t r;
	if (c->order2 && it->i == 1) {
		c->x += c->d;
		return 0;
	}
	if (c->g == 0) {
		r = c->base;
	} else {
		uint64_t u;
		if (rice_get(it, c->r, &u) < 0)
			return -1;
		r = c->base + (c->centred ? unzz(u) : u) * c->g;
	}
	if (c->order2) {
		c->d += r;
		c->x += c->d;
	} else {
		c->x += r;
	}
	return 0;
}

int dq_it_next(struct dq_it *it, int64_t *t, double *v) {
	if (it->i >= it->n)
		return 0;
	if (it->i > 0) {
		if (col_next(it, &it->col[0]) < 0 || col_next(it, &it->col[1]) < 0)
			return -1;
		if ((int64_t)it->col[0].x < it->t)
			return -1;
		it->t = (int64_t)it->col[0].x;
	}
	it->i++;
	*t = it->t;
	*v = dq_value(it->col[1].x, it->k);
	return 1;
}
