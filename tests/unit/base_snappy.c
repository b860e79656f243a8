/* base_snappy.c: unit tests for the Snappy block decoder: hand-built blocks using every
 * element kind (long literals, the three copy forms, overlapping copies), every way a block
 * can be corrupt, and, when the reference library is installed (libsnappy-dev, which
 * scripts/deps.sh installs), blocks compressed by the real libsnappy from random, repetitive
 * and text-like inputs must decode to the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

#ifdef WARD_HAVE_LIBSNAPPY
#include <snappy-c.h>
#endif

static int decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *len) {
	if (ward_snappy_decoded_len(in, n, len) < 0 || *len > cap)
		return -1;
	return ward_snappy_decode(in, n, out, *len);
}

static void every_element_kind_decodes(void **state) {
	(void)state;
	uint8_t out[300];
	size_t len;
	/* "abcd" literal, then copy1 len 8 offset 4 (overlapping: repeats "abcd" twice) */
	const uint8_t a[] = {12, 3 << 2, 'a', 'b', 'c', 'd', 1 | (4 << 2), 4};
	assert_int_equal(decode(a, sizeof(a), out, sizeof(out), &len), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(out, "abcdabcdabcd", 12);
	/* "xy" then copy2 len 6 offset 2, then copy4 len 3 offset 8 */
	const uint8_t b[] = {11, 1 << 2, 'x', 'y', 2 | (5 << 2), 2, 0, 3 | (2 << 2), 8, 0, 0, 0};
	assert_int_equal(decode(b, sizeof(b), out, sizeof(out), &len), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(out, "xyxyxyxyxyx", 11);
	/* a 200-byte literal with its length in one extra byte (tag 60); the declared length
	 * takes two varint bytes */
	uint8_t c[4 + 200] = {0xc8, 0x01, 60 << 2, 199};
	for (int i = 0; i < 200; i++)
		c[4 + i] = (uint8_t)i;
	assert_int_equal(decode(c, sizeof(c), out, sizeof(out), &len), 0);
	assert_int_equal(len, 200);
	for (int i = 0; i < 200; i++)
		assert_int_equal(out[i], i);
	/* the empty block */
	const uint8_t e[] = {0};
	assert_int_equal(decode(e, sizeof(e), out, sizeof(out), &len), 0);
	assert_int_equal(len, 0);
}

static void corrupt_blocks_are_refused(void **state) {
	(void)state;
	uint8_t out[64];
	size_t len;
	const uint8_t *cases[] = {
	        (const uint8_t[]){4, 3 << 2, 'a', 'b'},          /* literal runs past the input */
	        (const uint8_t[]){2, 3 << 2, 'a', 'b', 'c', 'd'}, /* literal overruns the length */
	        (const uint8_t[]){5, 0, 'a', 1 | (0 << 2), 0},    /* copy with offset 0 */
	        (const uint8_t[]){5, 0, 'a', 1 | (0 << 2), 2},    /* copy before the start */
	        (const uint8_t[]){9, 0, 'a', 1 | (7 << 2), 1},    /* copy overruns the length */
	        (const uint8_t[]){3, 0, 'a'},                     /* shorter than declared */
	        (const uint8_t[]){5, 0, 'a', 2 | (3 << 2), 1},    /* copy2 missing a byte */
	        (const uint8_t[]){5, 0, 'a', 3 | (3 << 2), 1, 0}, /* copy4 missing bytes */
	        (const uint8_t[]){9, 61 << 2, 1},                 /* literal length truncated */
	        (const uint8_t[]){0x80, 0x80},                    /* header truncated */
	        (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x7f},  /* header over 32 bits */
	};
	const size_t lens[] = {4, 6, 5, 5, 5, 3, 5, 6, 3, 2, 5};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t want = 0;
		int hdr = ward_snappy_decoded_len(cases[i], lens[i], &want);
		int rc = hdr < 0 || want > sizeof(out) ? -1
		                                       : ward_snappy_decode(cases[i], lens[i], out, want);
		if (rc != -1)
			fail_msg("corrupt case %zu decoded", i);
	}
	/* a right block decoded into a buffer of another length is refused */
	const uint8_t a[] = {4, 3 << 2, 'a', 'b', 'c', 'd'};
	assert_int_equal(ward_snappy_decode(a, sizeof(a), out, 3), -1);
	assert_int_equal(ward_snappy_decode(a, sizeof(a), out, 5), -1);
	(void)len;
}

#ifdef WARD_HAVE_LIBSNAPPY
static void fill(uint8_t *p, size_t n, int kind, uint32_t seed) {
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		switch (kind) {
		case 0: p[i] = (uint8_t)x; break;                      /* incompressible */
		case 1: p[i] = (uint8_t)"abc"[i % 3]; break;             /* one long pattern */
		case 2: p[i] = (uint8_t)("node_cpu_seconds_total{"[x % 23]); break; /* text-like */
		default: p[i] = i > 4096 && x % 7 ? p[i - 4096 + x % 64] : (uint8_t)x; break;
		}
	}
}

static void libsnappy_blocks_decode_to_the_same_bytes(void **state) {
	(void)state;
	const size_t sizes[] = {0, 1, 17, 4095, 65536, 65537, 300000, 2 << 20};
	for (int kind = 0; kind < 4; kind++)
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t n = sizes[s];
			uint8_t *src = malloc(n + 1);
			fill(src, n, kind, (uint32_t)(s * 4 + (size_t)kind));
			size_t clen = snappy_max_compressed_length(n);
			char *comp = malloc(clen);
			assert_int_equal(snappy_compress((const char *)src, n, comp, &clen), SNAPPY_OK);
			size_t len;
			uint8_t *out = malloc(n + 1);
			assert_int_equal(ward_snappy_decoded_len(comp, clen, &len) > 0, 1);
			assert_int_equal(len, n);
			assert_int_equal(ward_snappy_decode(comp, clen, out, len), 0);
			assert_memory_equal(out, src, n);
			if (clen > 2) { /* and a cut block is refused */
				assert_int_equal(ward_snappy_decode(comp, clen - 1, out, len), -1);
			}
			free(src);
			free(comp);
			free(out);
		}
}
#endif

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(every_element_kind_decodes),
	        cmocka_unit_test(corrupt_blocks_are_refused),
#ifdef WARD_HAVE_LIBSNAPPY
	        cmocka_unit_test(libsnappy_blocks_decode_to_the_same_bytes),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
