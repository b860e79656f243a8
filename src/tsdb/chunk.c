/* chunk.c: the two chunk encodings behind one face: choosing one when a chunk is written
 * into a block, and reading either.
 *
 * XOR (gorilla.c) stores any double; DQ (dq.c) stores values that are exactly m / 10^k,
 * usually in far fewer bits. A chunk says which it is in bit 15 of its leading u16 count
 * (set: DQ), so blocks written before DQ existed, which hold only XOR chunks of at most 120
 * samples, read unchanged. Callers: block.c (writer and reads), head.c, compact.c through
 * svec_add_chunk.
 */
#include "tsdb/tsdb_internal.h"

#include <stdlib.h>

int chunk_it_init(struct chunk_it *it, const uint8_t *data, size_t len) {
	it->dq = dq_is_dq(data, len);
	return it->dq ? dq_it_init(&it->u.q, data, len) : gorilla_it_init(&it->u.x, data, len);
}

uint8_t *chunk_encode(const int64_t *t, const double *v, size_t n, uint32_t *len) {
	struct gorilla_enc e;
	uint32_t xlen, qlen = 0;

	if (n == 0 || n > GORILLA_MAX_SAMPLES)
		return NULL;
	gorilla_enc_init(&e);
	for (size_t i = 0; i < n; i++)
		if (gorilla_append(&e, t[i], v[i]) < 0) {
			gorilla_enc_free(&e);
			return NULL;
		}
	uint8_t *x = gorilla_detach(&e, &xlen);
	uint8_t *q = dq_encode(t, v, n, &qlen);
	if (q && qlen < xlen) {
		free(x);
		*len = qlen;
		return q;
	}
	free(q);
	*len = xlen;
	return x;
}

int svec_add_chunk(struct tsdb_svec *s, const uint8_t *data, size_t len, int64_t mint,
                   int64_t maxt) {
	struct chunk_it it;
	int64_t t;
	double v;
	int r;

	if (chunk_it_init(&it, data, len) < 0)
		return -1;
	while ((r = chunk_it_next(&it, &t, &v)) == 1) {
		if (t > maxt)
			return 0;
		if (t >= mint)
			svec_push(s, t, v);
	}
	return r;
}
