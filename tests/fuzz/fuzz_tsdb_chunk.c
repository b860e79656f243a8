/* fuzz_tsdb_chunk.c: libFuzzer target for the chunk decoders (XOR and DQ) and the encoder
 * choice. With the first byte even, the rest is decoded as a chunk: it must never crash,
 * never yield more samples than its count (at most 32767, so the work is bounded) and never
 * let time go backwards. With it odd, the rest is read as up to 256 samples of 16 bytes
 * (int64 timestamp delta, double value bits; value bytes sometimes snapped to a decimal grid
 * so that DQ is reached), encoded with chunk_encode and decoded again: every sample must come
 * back bit for bit, whichever encoding was chosen.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/tsdb_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_any(const uint8_t *d, size_t n) {
	struct chunk_it it;
	int64_t t, prev = INT64_MIN;
	double v;
	size_t got = 0;

	if (chunk_it_init(&it, d, n) < 0)
		return;
	while (chunk_it_next(&it, &t, &v) == 1) {
		if (t < prev || ++got > 65535)
			abort();
		prev = t;
	}
	struct tsdb_svec s = {0};
	(void)svec_add_chunk(&s, d, n, INT64_MIN, INT64_MAX);
	svec_free(&s);
}

static void round_trip(const uint8_t *d, size_t n) {
	static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
	size_t ns = n / 16 > 256 ? 256 : n / 16;
	int64_t t[256];
	double v[256];

	if (ns == 0)
		return;
	for (size_t i = 0; i < ns; i++) {
		uint64_t dt, vb;
		memcpy(&dt, d + 16 * i, 8);
		memcpy(&vb, d + 16 * i + 8, 8);
		/* mostly small steps, sometimes huge; never backwards */
		int64_t step = (int64_t)((dt >> (dt & 63)) & INT64_MAX);
		if (i == 0)
			t[i] = (int64_t)dt;
		else if (__builtin_add_overflow(t[i - 1], step, &t[i]))
			t[i] = t[i - 1];
		if (vb & 1) { /* on a decimal grid: m / 10^k */
			int64_t m = (int64_t)(vb >> 12) >> (vb >> 2 & 63);
			v[i] = (double)((vb & 2) ? -m : m) / p10[(vb >> 8) % 10];
		} else {
			memcpy(&v[i], &vb, 8);
		}
	}
	uint32_t len;
	uint8_t *c = chunk_encode(t, v, ns, &len);
	if (!c)
		abort(); /* timestamps ascend, so encoding cannot fail */
	struct chunk_it it;
	int64_t gt;
	double gv;
	if (chunk_it_init(&it, c, len) < 0)
		abort();
	for (size_t i = 0; i < ns; i++)
		if (chunk_it_next(&it, &gt, &gv) != 1 || gt != t[i] ||
		    tsdb_dbits(gv) != tsdb_dbits(v[i]))
			abort();
	if (chunk_it_next(&it, &gt, &gv) != 0)
		abort();
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size < 1)
		return 0;
	if (data[0] & 1)
		round_trip(data + 1, size - 1);
	else
		decode_any(data + 1, size - 1);
	return 0;
}
