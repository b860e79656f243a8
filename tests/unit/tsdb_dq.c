/* tsdb_dq.c: unit tests for the decimal-quantised (DQ) chunk and the chunk encoding choice:
 * exact round trips of random quantised series (counters, gauges in steps of 4096, constants,
 * every k from 0 to 9), refusal of values DQ cannot hold bit for bit (0.1 + 0.2, 1e308,
 * denormals, -0.0, NaN, stale markers, infinities, m past 2^53) which then go to XOR and
 * still round-trip, wrapping differences at the int64 extremes, XOR chunks (the format of
 * blocks written before DQ) read through the same reader, and a decoder that survives every
 * truncation and bit flip without reading out of bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsdb/tsdb_internal.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static double unit_rand(void) {
	return (double)(next_rand() >> 11) / 9007199254740992.0;
}

/* Decodes d and checks it holds exactly t/v. */
static void check_decodes(const uint8_t *d, uint32_t len, const int64_t *t, const double *v,
                          size_t n) {
	struct chunk_it it;
	int64_t gt;
	double gv;
	assert_int_equal(chunk_it_init(&it, d, len), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(chunk_it_next(&it, &gt, &gv), 1);
		assert_true(gt == t[i]);
		assert_true(tsdb_dbits(gv) == tsdb_dbits(v[i]));
	}
	assert_int_equal(chunk_it_next(&it, &gt, &gv), 0);
	struct tsdb_svec s = {0};
	assert_int_equal(svec_add_chunk(&s, d, len, INT64_MIN, INT64_MAX), 0);
	assert_int_equal(s.n, n);
	svec_free(&s);
}

/* chunk_encode round trip; returns whether DQ was chosen and its size in *len. */
static bool round_trip(const int64_t *t, const double *v, size_t n, uint32_t *len) {
	uint32_t l;
	uint8_t *d = chunk_encode(t, v, n, &l);
	assert_non_null(d);
	check_decodes(d, l, t, v, n);
	bool dq = dq_is_dq(d, l);
	free(d);
	if (len)
		*len = l;
	return dq;
}

static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

static void dq_round_trips_random_quantised_series(void **state) {
	(void)state;
	int64_t t[120];
	double v[120];
	for (int round = 0; round < 400; round++) {
		unsigned k = (unsigned)(round % 10);
		int kind = round / 10 % 4;
		int64_t m = (int64_t)(next_rand() % 1000000000) - (kind == 1 ? 500000000 : 0);
		int64_t ts = 1700000000000LL + (int64_t)(next_rand() % 1000000);
		size_t n = 1 + next_rand() % 120;
		for (size_t i = 0; i < n; i++) {
			t[i] = ts;
			ts += 15000 + (round % 3 == 0 ? (int64_t)(next_rand() % 21) - 10 : 0);
			v[i] = (double)m / p10[k];
			if (kind == 0) /* counter */
				m += (int64_t)(-log(1 - unit_rand()) * 500);
			else if (kind == 1) /* gauge in steps of 4096 */
				m += ((int64_t)(next_rand() % 2001) - 1000) * 4096;
			else if (kind == 2) /* smooth counter */
				m += 1000 + (int64_t)(next_rand() % 3);
			/* kind 3: constant */
		}
		uint32_t len;
		bool dq = round_trip(t, v, n, &len);
		if (n >= 8)
			assert_true(dq);
		if (kind == 3 && round % 3 != 0 && n == 120)
			assert_true(len <= 24); /* header only: nothing changes */
	}
}

static void dq_is_smaller_than_xor_on_quantised_counters(void **state) {
	(void)state;
	int64_t t[120];
	double v[120];
	int64_t m = 123456789;
	for (int i = 0; i < 120; i++) {
		t[i] = 1700000000000LL + i * 15000LL;
		v[i] = (double)m / 100;
		m += (int64_t)(-log(1 - unit_rand()) * 1200);
	}
	uint32_t qlen, xlen;
	uint8_t *q = dq_encode(t, v, 120, &qlen);
	assert_non_null(q);
	struct gorilla_enc e;
	gorilla_enc_init(&e);
	for (int i = 0; i < 120; i++)
		assert_int_equal(gorilla_append(&e, t[i], v[i]), 0);
	uint8_t *x = gorilla_detach(&e, &xlen);
	assert_true(qlen * 2 < xlen);
	free(q);
	free(x);
}

static void dq_refuses_values_off_the_grid_and_xor_keeps_them(void **state) {
	(void)state;
	const double bad[] = {0.1 + 0.2,
	                      1e308,
	                      -1e308,
	                      4.9e-324,
	                      2.2250738585072009e-308,
	                      -0.0,
	                      NAN,
	                      -NAN,
	                      tsdb_stale_nan(),
	                      INFINITY,
	                      -INFINITY,
	                      18014398509481984.0 + 4, /* 2^54 + 4: an integer, but m > 2^53 */
	                      9007199254740994.0,      /* 2^53 + 2 */
	                      1.0 / 3,
	                      1e-16};
	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		int64_t t[10];
		double v[10];
		for (int i = 0; i < 10; i++) {
			t[i] = 1000 + i * 15000;
			v[i] = i == 5 ? bad[b] : i * 0.25;
		}
		uint32_t len;
		assert_null(dq_encode(t, v, 10, &len));
		assert_false(round_trip(t, v, 10, NULL));
		/* alone, too */
		assert_null(dq_encode(t, bad + b, 1, &len));
	}
	/* 2^53 itself and the smallest step at 10^-15 are on the grid */
	int64_t t[3] = {1, 2, 3};
	double v[3] = {9007199254740992.0, -9007199254740992.0, 0.0};
	uint32_t len;
	uint8_t *d = dq_encode(t, v, 3, &len);
	assert_non_null(d);
	check_decodes(d, len, t, v, 3);
	free(d);
	double w[3] = {1e-15, 2e-15, 0.5};
	d = dq_encode(t, w, 3, &len);
	assert_non_null(d);
	check_decodes(d, len, t, w, 3);
	free(d);
}

static void dq_round_trips_extreme_timestamps_and_differences(void **state) {
	(void)state;
	int64_t t[] = {INT64_MIN,     INT64_MIN + 1, -1,       0, 0, 0, 1,
	               INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
	double v[] = {9007199254740992.0,
	              -9007199254740992.0,
	              9007199254740992.0,
	              0,
	              1,
	              -1,
	              9007199254740992.0,
	              -9007199254740992.0,
	              7,
	              -12345};
	uint32_t len;
	uint8_t *d = dq_encode(t, v, 10, &len);
	assert_non_null(d);
	check_decodes(d, len, t, v, 10);
	free(d);
	/* with k = 3 the extremes leave the grid (m would pass 2^53); XOR takes the chunk */
	v[8] = 0.001;
	assert_null(dq_encode(t, v, 10, &len));
	assert_false(round_trip(t, v, 10, NULL));
	/* time going backwards is refused by both */
	int64_t back[] = {5, 4};
	double bv[] = {1, 2};
	assert_null(dq_encode(back, bv, 2, &len));
	assert_null(chunk_encode(back, bv, 2, &len));
}

static void chunk_reader_reads_xor_chunks_of_old_blocks(void **state) {
	(void)state;
	/* Blocks written before DQ hold XOR chunks straight from gorilla_append. */
	int64_t t[120];
	double v[120];
	struct gorilla_enc e;
	gorilla_enc_init(&e);
	for (int i = 0; i < 120; i++) {
		t[i] = 1700000000000LL + i * 15000LL;
		v[i] = i * 0.5;
		assert_int_equal(gorilla_append(&e, t[i], v[i]), 0);
	}
	uint32_t len;
	uint8_t *d = gorilla_detach(&e, &len);
	assert_false(dq_is_dq(d, len));
	check_decodes(d, len, t, v, 120);
	free(d);
	/* and an XOR chunk never grows into the DQ flag */
	gorilla_enc_init(&e);
	for (int i = 0; i < GORILLA_MAX_SAMPLES; i++)
		assert_int_equal(gorilla_append(&e, i, 1.5), 0);
	assert_int_equal(gorilla_append(&e, GORILLA_MAX_SAMPLES, 1.5), -1);
	d = gorilla_detach(&e, &len);
	assert_false(dq_is_dq(d, len));
	free(d);
}

/* Every truncation and single bit flip decodes to an error or to at most n samples. */
static void dq_decoder_survives_truncation_and_bit_flips(void **state) {
	(void)state;
	int64_t t[60];
	double v[60];
	int64_t m = 5000;
	for (int i = 0; i < 60; i++) {
		t[i] = 1700000000000LL + i * 15000LL + (int64_t)(next_rand() % 7);
		v[i] = (double)m / 1000;
		m += (int64_t)(next_rand() % 100000) - 20000;
	}
	uint32_t len;
	uint8_t *d = dq_encode(t, v, 60, &len);
	assert_non_null(d);
	for (uint32_t cut = 0; cut <= len; cut++) {
		uint8_t *c = ward_xmalloc(cut ? cut : 1);
		memcpy(c, d, cut);
		struct chunk_it it;
		int64_t gt;
		double gv;
		int r = -1, got = 0;
		if (chunk_it_init(&it, c, cut) == 0)
			while ((r = chunk_it_next(&it, &gt, &gv)) == 1)
				got++;
		assert_true(got <= 60);
		/* every byte holds bits the decoder needs: a shorter chunk is malformed */
		if (cut < len)
			assert_int_equal(r, -1);
		else
			assert_int_equal(got, 60);
		free(c);
	}
	for (uint32_t bit = 0; bit < len * 8; bit++) {
		d[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
		struct chunk_it it;
		int64_t gt, prev = INT64_MIN;
		double gv;
		int got = 0;
		if (chunk_it_init(&it, d, len) == 0)
			while (chunk_it_next(&it, &gt, &gv) == 1) {
				assert_true(gt >= prev);
				prev = gt;
				got++;
			}
		assert_true(got <= 32767);
		d[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
	}
	free(d);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(dq_round_trips_random_quantised_series),
	        cmocka_unit_test(dq_is_smaller_than_xor_on_quantised_counters),
	        cmocka_unit_test(dq_refuses_values_off_the_grid_and_xor_keeps_them),
	        cmocka_unit_test(dq_round_trips_extreme_timestamps_and_differences),
	        cmocka_unit_test(chunk_reader_reads_xor_chunks_of_old_blocks),
	        cmocka_unit_test(dq_decoder_survives_truncation_and_bit_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
