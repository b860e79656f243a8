/* gorilla.c: the XOR chunk (Facebook Gorilla, as Prometheus uses it) and sample vectors.
 *
 * A chunk is [u16 BE count][bits]: the first sample's timestamp and value as 64 raw bits
 * each; then per sample a delta-of-delta timestamp in buckets (0 / 10+14 / 110+17 /
 * 1110+20 / 1111+64 bits) and the value XORed with the previous one (0: same; 10: inside
 * the previous leading/trailing-zero window; 11 + 5 bits leading + 6 bits length + bits).
 * Timestamps never go backwards (equal is allowed); the decoder checks every read against
 * the length and rejects negative deltas and impossible windows, so any byte string is
 * safe to decode. Values are stored as bits, so NaN payloads (stale markers) survive.
 */
#include "tsdb/tsdb_internal.h"

#include <stdlib.h>

#define GORILLA_HDR 2

void gorilla_enc_init(struct gorilla_enc *e) {
	memset(e, 0, sizeof(*e));
	e->leading = 0xff;
}

void gorilla_enc_free(struct gorilla_enc *e) {
	free(e->data);
	gorilla_enc_init(e);
}

static void put_bits(struct gorilla_enc *e, uint64_t v, unsigned nbits) {
	while (nbits > 0) {
		if (e->bits == 8) {
			if (e->len == e->cap) {
				e->cap = e->cap < 32 ? 32 : e->cap + e->cap / 2;
				e->data = ward_xrealloc(e->data, e->cap);
			}
			e->data[e->len++] = 0;
			e->bits = 0;
		}
		unsigned room = 8 - e->bits;
		unsigned take = nbits < room ? nbits : room;
		uint8_t chunk = (uint8_t)((v >> (nbits - take)) & ((1u << take) - 1));
		e->data[e->len - 1] |= (uint8_t)(chunk << (room - take));
		e->bits = (uint8_t)(e->bits + take);
		nbits -= take;
	}
}

int gorilla_append(struct gorilla_enc *e, int64_t t, double v) {
	uint64_t vb = tsdb_dbits(v);

	if (e->n >= GORILLA_MAX_SAMPLES) /* bit 15 of the count marks a DQ chunk */
		return -1;
	if (e->n == 0) {
		if (!e->data) {
			e->cap = 32;
			e->data = ward_xmalloc(e->cap);
		}
		e->len = GORILLA_HDR;
		e->data[0] = e->data[1] = 0;
		e->bits = 8;
		put_bits(e, (uint64_t)t, 64);
		put_bits(e, vb, 64);
		e->tdelta = 0;
	} else {
		if (t < e->t)
			return -1;
		int64_t delta = (int64_t)((uint64_t)t - (uint64_t)e->t);
		int64_t dod = (int64_t)((uint64_t)delta - (uint64_t)e->tdelta);
		if (dod == 0) {
			put_bits(e, 0, 1);
		} else if (dod >= -8191 && dod <= 8192) {
			put_bits(e, 2, 2);
			put_bits(e, (uint64_t)dod, 14);
		} else if (dod >= -65535 && dod <= 65536) {
			put_bits(e, 6, 3);
			put_bits(e, (uint64_t)dod, 17);
		} else if (dod >= -524287 && dod <= 524288) {
			put_bits(e, 14, 4);
			put_bits(e, (uint64_t)dod, 20);
		} else {
			put_bits(e, 15, 4);
			put_bits(e, (uint64_t)dod, 64);
		}
		e->tdelta = delta;
		uint64_t x = vb ^ e->v;
		if (x == 0) {
			put_bits(e, 0, 1);
		} else {
			unsigned lead = (unsigned)__builtin_clzll(x),
			         trail = (unsigned)__builtin_ctzll(x);
			if (lead > 31)
				lead = 31;
			if (e->leading != 0xff && lead >= e->leading && trail >= e->trailing) {
				put_bits(e, 2, 2);
				put_bits(e, x >> e->trailing, 64u - e->leading - e->trailing);
			} else {
				unsigned sig = 64 - lead - trail;
				put_bits(e, 3, 2);
				put_bits(e, lead, 5);
				put_bits(e, sig == 64 ? 0 : sig, 6);
				put_bits(e, x >> trail, sig);
				e->leading = (uint8_t)lead;
				e->trailing = (uint8_t)trail;
			}
		}
	}
	e->t = t;
	e->v = vb;
	e->n++;
	e->data[0] = (uint8_t)(e->n >> 8);
	e->data[1] = (uint8_t)e->n;
	return 0;
}

uint8_t *gorilla_detach(struct gorilla_enc *e, uint32_t *len) {
	uint8_t *d = e->data;

	*len = e->len;
	if (d && e->cap > e->len)
		d = ward_xrealloc(d, e->len ? e->len : 1);
	e->data = NULL;
	gorilla_enc_init(e);
	return d;
}

int gorilla_it_init(struct gorilla_it *it, const uint8_t *data, size_t len) {
	memset(it, 0, sizeof(*it));
	if (len < GORILLA_HDR)
		return -1;
	it->data = data;
	it->len = len;
	it->n = (uint16_t)(data[0] << 8 | data[1]);
	it->bitoff = GORILLA_HDR * 8;
	it->leading = 0xff;
	return 0;
}

static int get_bits(struct gorilla_it *it, unsigned nbits, uint64_t *out) {
	uint64_t v = 0;

	if (nbits > it->len * 8 - it->bitoff)
		return -1;
	while (nbits > 0) {
		size_t byte = it->bitoff / 8;
		unsigned used = (unsigned)(it->bitoff % 8), room = 8 - used;
		unsigned take = nbits < room ? nbits : room;
		uint8_t b =
		        (uint8_t)(it->data[byte] >> (room - take)) & (uint8_t)((1u << take) - 1);
		v = (take == 64 ? 0 : v << take) | b;
		it->bitoff += take;
		nbits -= take;
	}
	*out = v;
	return 0;
}

/* The buckets hold -(2^(bits-1) - 1) .. 2^(bits-1), as Prometheus' bitRange: the pattern
 * with only the top bit set is +2^(bits-1), not the two's complement minimum (the encoder
 * writes +8192 in 14 bits; -8192 goes to the next bucket). */
static int64_t bucket_value(uint64_t v, unsigned bits) {
	if (bits >= 64)
		return (int64_t)v;
	if (v > (1ull << (bits - 1)))
		v |= ~0ull << bits;
	return (int64_t)v;
}

int gorilla_it_next(struct gorilla_it *it, int64_t *t, double *v) {
	uint64_t b;

	if (it->i >= it->n)
		return 0;
	if (it->i == 0) {
		if (get_bits(it, 64, &b) < 0)
			return -1;
		it->t = (int64_t)b;
		if (get_bits(it, 64, &it->v) < 0)
			return -1;
	} else {
		unsigned prefix = 0, nb;
		while (prefix < 4) {
			if (get_bits(it, 1, &b) < 0)
				return -1;
			if (!b)
				break;
			prefix++;
		}
		static const unsigned widths[5] = {0, 14, 17, 20, 64};
		nb = widths[prefix];
		int64_t dod = 0;
		if (nb) {
			if (get_bits(it, nb, &b) < 0)
				return -1;
			dod = bucket_value(b, nb);
		}
		int64_t delta = (int64_t)((uint64_t)it->tdelta + (uint64_t)dod);
		if (delta < 0)
			return -1;
		int64_t nt = (int64_t)((uint64_t)it->t + (uint64_t)delta);
		if (nt < it->t)
			return -1;
		it->tdelta = delta;
		it->t = nt;
		if (get_bits(it, 1, &b) < 0)
			return -1;
		if (b) {
			if (get_bits(it, 1, &b) < 0)
				return -1;
			if (b) {
				uint64_t lead, sig;
				if (get_bits(it, 5, &lead) < 0 || get_bits(it, 6, &sig) < 0)
					return -1;
				if (sig == 0)
					sig = 64;
				if (lead + sig > 64)
					return -1;
				it->leading = (uint8_t)lead;
				it->trailing = (uint8_t)(64 - lead - sig);
			} else if (it->leading == 0xff) {
				return -1;
			}
			unsigned sig = 64u - it->leading - it->trailing;
			if (get_bits(it, sig, &b) < 0)
				return -1;
			it->v ^= it->trailing >= 64 ? 0 : b << it->trailing;
		}
	}
	it->i++;
	*t = it->t;
	*v = tsdb_bitsd(it->v);
	return 1;
}

void svec_push(struct tsdb_svec *s, int64_t t, double v) {
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->t = ward_xrealloc(s->t, s->cap * sizeof(*s->t));
		s->v = ward_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->t[s->n] = t;
	s->v[s->n] = v;
	s->n++;
}

void svec_free(struct tsdb_svec *s) {
	free(s->t);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Insertion-merge friendly: inputs are usually a few sorted runs; a stable merge sort. */
static void msort(int64_t *t, double *v, int64_t *tt, double *tv, size_t n) {
	if (n < 2)
		return;
	size_t h = n / 2;
	msort(t, v, tt, tv, h);
	msort(t + h, v + h, tt, tv, n - h);
	if (t[h - 1] <= t[h])
		return;
	size_t i = 0, j = h, k = 0;
	while (i < h && j < n) {
		if (t[j] < t[i]) {
			tt[k] = t[j];
			tv[k++] = v[j++];
		} else {
			tt[k] = t[i];
			tv[k++] = v[i++];
		}
	}
	while (i < h) {
		tt[k] = t[i];
		tv[k++] = v[i++];
	}
	while (j < n) {
		tt[k] = t[j];
		tv[k++] = v[j++];
	}
	memcpy(t, tt, n * sizeof(*t));
	memcpy(v, tv, n * sizeof(*v));
}

void svec_sort_dedup(struct tsdb_svec *s) {
	size_t i, k;
	bool sorted = true;

	for (i = 1; i < s->n && sorted; i++)
		if (s->t[i] <= s->t[i - 1])
			sorted = false;
	if (sorted)
		return;
	int64_t *tt = ward_xmalloc(s->n * sizeof(*tt));
	double *tv = ward_xmalloc(s->n * sizeof(*tv));
	msort(s->t, s->v, tt, tv, s->n);
	free(tt);
	free(tv);
	for (i = 0, k = 0; i < s->n; i++) {
		if (k > 0 && s->t[k - 1] == s->t[i]) {
			s->v[k - 1] = s->v[i];
			continue;
		}
		s->t[k] = s->t[i];
		s->v[k++] = s->v[i];
	}
	s->n = k;
}
