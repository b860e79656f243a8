/* tsdb_gorilla.c: unit tests for the Gorilla XOR chunk: exact round trips (NaN, infinities,
 * stale markers, equal timestamps, huge gaps, delta-of-delta at the bucket edges), refusal
 * of time going backwards, and a decoder that survives every truncation and bit flip without
 * reading out of bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsdb/tsdb_internal.h"

static void check_round_trip(const int64_t *t, const double *v, size_t n) {
	struct gorilla_enc e;
	gorilla_enc_init(&e);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(gorilla_append(&e, t[i], v[i]), 0);
	uint32_t len;
	uint8_t *d = gorilla_detach(&e, &len);
	struct gorilla_it it;
	assert_int_equal(gorilla_it_init(&it, d, len), 0);
	for (size_t i = 0; i < n; i++) {
		int64_t gt;
		double gv;
		assert_int_equal(gorilla_it_next(&it, &gt, &gv), 1);
		assert_true(gt == t[i]);
		assert_true(tsdb_dbits(gv) == tsdb_dbits(v[i]));
	}
	int64_t gt;
	double gv;
	assert_int_equal(gorilla_it_next(&it, &gt, &gv), 0);
	free(d);
}

static void gorilla_round_trips_special_values(void **state) {
	int64_t t[] = {1000, 2000, 3000, 3000, 3000, 4000, 5000, 6000, 7000, 8000};
	double v[] = {1.5, NAN,  INFINITY, -INFINITY, tsdb_stale_nan(),
	              0.0, -0.0, 1e308,    4.9e-324,  42};
	check_round_trip(t, v, 10);
	assert_true(tsdb_is_stale_nan(tsdb_stale_nan()));
	assert_false(tsdb_is_stale_nan(NAN));
}

static void gorilla_round_trips_large_gaps_and_extremes(void **state) {
	int64_t t[] = {INT64_MIN / 2,
	               -5,
	               0,
	               1,
	               15001,
	               15002,
	               1700000000000LL,
	               1700000000000LL + 86400000LL * 365,
	               INT64_MAX / 2,
	               INT64_MAX / 2 + 7};
	double v[10];
	for (int i = 0; i < 10; i++)
		v[i] = i * 1.1 - 3;
	check_round_trip(t, v, 10);
}

static void gorilla_round_trips_random_series(void **state) {
	int64_t t[GORILLA_SAMPLES_PER_CHUNK];
	double v[GORILLA_SAMPLES_PER_CHUNK];
	srand(7);
	for (int round = 0; round < 200; round++) {
		int64_t cur = rand();
		for (int i = 0; i < GORILLA_SAMPLES_PER_CHUNK; i++) {
			int kind = rand() % 4;
			cur += kind == 0   ? 15000
			       : kind == 1 ? rand() % 100
			                   : (int64_t)rand() * 1000;
			t[i] = cur;
			v[i] = kind == 3 ? (double)(rand() % 5) : (double)rand() / 7.0;
		}
		check_round_trip(t, v, GORILLA_SAMPLES_PER_CHUNK);
	}
}

/* A delta-of-delta at each bucket's edges: +8192 fits the 14-bit bucket and used to decode
 * as -8192 (found by fuzz_tsdb_chunk); likewise 65536 and 524288. */
static void gorilla_round_trips_dod_at_bucket_edges(void **state) {
	static const int64_t edges[] = {8191,   8192,   8193,   -8191,   -8192,   -8193,
	                                65535,  65536,  65537,  -65535,  -65536,  -65537,
	                                524287, 524288, 524289, -524287, -524288, -524289};
	for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
		int64_t t[4];
		double v[4] = {1, 2, 3, 4};
		t[0] = 1000000000;
		t[1] = t[0] + 1000000; /* delta 1e6, then delta 1e6 + dod, then back */
		t[2] = t[1] + 1000000 + edges[e];
		t[3] = t[2] + 1000000;
		check_round_trip(t, v, 4);
	}
}

static void gorilla_rejects_negative_deltas(void **state) {
	struct gorilla_enc e;
	gorilla_enc_init(&e);
	assert_int_equal(gorilla_append(&e, 100, 1), 0);
	assert_int_equal(gorilla_append(&e, 99, 1), -1);
	assert_int_equal(gorilla_append(&e, 100, 2), 0);
	assert_int_equal(e.n, 2);
	gorilla_enc_free(&e);
}

static void gorilla_decoder_survives_truncation_and_flips(void **state) {
	struct gorilla_enc e;
	gorilla_enc_init(&e);
	for (int i = 0; i < 100; i++)
		gorilla_append(&e, 1000 + i * 15000 + (i % 3), i * 0.25 + (i % 7));
	uint32_t len;
	uint8_t *d = gorilla_detach(&e, &len);
	for (uint32_t cut = 0; cut <= len; cut++) {
		uint8_t *c = malloc(cut ? cut : 1);
		memcpy(c, d, cut);
		struct gorilla_it it;
		int64_t t;
		double v;
		if (gorilla_it_init(&it, c, cut) == 0) {
			int r, k = 0;
			while ((r = gorilla_it_next(&it, &t, &v)) == 1)
				k++;
			assert_true(cut == len ? r == 0 && k == 100 : r <= 0);
		}
		free(c);
	}
	for (uint32_t bit = 0; bit < len * 8; bit++) {
		d[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		struct gorilla_it it;
		int64_t t, prev = INT64_MIN;
		double v;
		int r;
		gorilla_it_init(&it, d, len);
		while ((r = gorilla_it_next(&it, &t, &v)) == 1) {
			assert_true(t >= prev); /* never decodes time going backwards */
			prev = t;
		}
		d[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	free(d);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(gorilla_round_trips_special_values),
	        cmocka_unit_test(gorilla_round_trips_large_gaps_and_extremes),
	        cmocka_unit_test(gorilla_round_trips_random_series),
	        cmocka_unit_test(gorilla_round_trips_dod_at_bucket_edges),
	        cmocka_unit_test(gorilla_rejects_negative_deltas),
	        cmocka_unit_test(gorilla_decoder_survives_truncation_and_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
