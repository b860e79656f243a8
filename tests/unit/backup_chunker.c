/* backup_chunker.c: unit tests for FastCDC: chunk sizes respect min/max and average near
 * the target, boundaries are deterministic, and inserting or deleting one byte changes only
 * the chunks next to the edit (the property deduplication rests on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/backup_internal.h"

#define MIN      2048
#define AVG      8192
#define MAX      65536
#define DATA_LEN (4u << 20)

static uint8_t *random_data(size_t n, uint64_t seed) {
	uint8_t *p = malloc(n + 1);
	uint64_t x = seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* Cuts data into chunks; returns the number; fills the ends (exclusive). */
static size_t cut_all(const struct backup_chunker *c, const uint8_t *p, size_t n, size_t *ends,
                      size_t cap) {
	size_t off = 0, k = 0;
	while (off < n && k < cap) {
		size_t cut = backup_chunker_cut(c, p + off, n - off);
		off += cut;
		ends[k++] = off;
	}
	return k;
}

static void chunk_sizes_stay_within_bounds_and_near_average(void **state) {
	struct backup_chunker c;
	uint8_t *p = random_data(DATA_LEN, 42);
	size_t *ends = calloc(DATA_LEN / MIN + 2, sizeof(size_t));
	size_t k, prev = 0;

	backup_chunker_init(&c, MIN, AVG, MAX);
	k = cut_all(&c, p, DATA_LEN, ends, DATA_LEN / MIN + 2);
	for (size_t i = 0; i < k; i++) {
		size_t sz = ends[i] - prev;
		if (i + 1 < k)
			assert_true(sz >= MIN);
		assert_true(sz <= MAX);
		prev = ends[i];
	}
	assert_int_equal(ends[k - 1], DATA_LEN);
	/* Average within a factor of two of the target. */
	assert_true(DATA_LEN / k > AVG / 2 && DATA_LEN / k < AVG * 2);
	free(p);
	free(ends);
}

static void zeros_are_cut_at_max(void **state) {
	struct backup_chunker c;
	uint8_t *z = calloc(1, MAX * 3);
	backup_chunker_init(&c, MIN, AVG, MAX);
	/* Constant input never matches the mask after the gear settles: cut at max. */
	size_t cut = backup_chunker_cut(&c, z, MAX * 3);
	assert_true(cut >= MIN && cut <= MAX);
	assert_int_equal(backup_chunker_cut(&c, z, 100), 100);
	free(z);
}

/* Edits data at `at` (insert one byte when ins, else delete one) and counts the chunks of
 * the edited data whose end is not a (shifted) boundary of the original. */
static size_t changed_chunks(bool ins, size_t at, uint64_t seed) {
	struct backup_chunker c;
	uint8_t *p = random_data(DATA_LEN, seed), *q = malloc(DATA_LEN + 1);
	size_t *ea = calloc(DATA_LEN / MIN + 2, sizeof(size_t));
	size_t *eb = calloc(DATA_LEN / MIN + 2, sizeof(size_t));
	uint8_t *is_a = calloc(DATA_LEN + 2, 1);
	size_t na, nb, qlen, changed = 0;

	backup_chunker_init(&c, MIN, AVG, MAX);
	memcpy(q, p, at);
	if (ins) {
		q[at] = 0x5a;
		memcpy(q + at + 1, p + at, DATA_LEN - at);
		qlen = DATA_LEN + 1;
	} else {
		memcpy(q + at, p + at + 1, DATA_LEN - at - 1);
		qlen = DATA_LEN - 1;
	}
	na = cut_all(&c, p, DATA_LEN, ea, DATA_LEN / MIN + 2);
	nb = cut_all(&c, q, qlen, eb, DATA_LEN / MIN + 2);
	for (size_t i = 0; i < na; i++)
		is_a[ea[i]] = 1;
	for (size_t j = 0; j < nb; j++) {
		size_t e = eb[j] <= at ? eb[j] : ins ? eb[j] - 1 : eb[j] + 1;
		if (!is_a[e])
			changed++;
	}
	assert_true(nb > 100);
	free(p);
	free(q);
	free(ea);
	free(eb);
	free(is_a);
	return changed;
}

static void one_byte_insert_changes_few_chunks(void **state) {
	assert_true(changed_chunks(true, DATA_LEN / 3, 7) <= 2);
	assert_true(changed_chunks(true, 10, 8) <= 2);
}

static void one_byte_delete_changes_few_chunks(void **state) {
	assert_true(changed_chunks(false, 12345, 9) <= 2);
	assert_true(changed_chunks(false, DATA_LEN / 2, 10) <= 2);
}

static void boundaries_are_deterministic(void **state) {
	struct backup_chunker a, b;
	uint8_t *p = random_data(1 << 20, 3);
	backup_chunker_init(&a, MIN, AVG, MAX);
	backup_chunker_init(&b, MIN, AVG, MAX);
	assert_memory_equal(a.gear, b.gear, sizeof(a.gear));
	assert_int_equal(backup_chunker_cut(&a, p, 1 << 20), backup_chunker_cut(&b, p, 1 << 20));
	free(p);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(chunk_sizes_stay_within_bounds_and_near_average),
	        cmocka_unit_test(zeros_are_cut_at_max),
	        cmocka_unit_test(one_byte_insert_changes_few_chunks),
	        cmocka_unit_test(one_byte_delete_changes_few_chunks),
	        cmocka_unit_test(boundaries_are_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
