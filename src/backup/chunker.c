/* chunker.c: FastCDC content-defined chunking (Xia et al., 2016/2020) with normalized
 * chunking: a gear rolling hash over the last 64 bytes, a harder mask (more bits) before the
 * average size and an easier one after it, so chunk sizes cluster around avg, and cut points
 * depend only on nearby content: inserting a byte moves one or two boundaries, not all.
 * The gear table comes from splitmix64 with a fixed seed, so chunk boundaries are the same
 * across runs and machines (docs/backup-format.md). Called by archive.c; pure.
 */
#include "backup/backup_internal.h"

/* The seed is a published constant of the format: changing it changes every boundary. */
#define GEAR_SEED 0x77617264626b7570ull /* "wardbkup" */

static uint64_t splitmix64(uint64_t *s) {
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* k one-bits at the top of the word: the top bits of a left-shifting gear hash depend on the
 * last 64 bytes, the low bits only on the last few. */
static uint64_t top_mask(unsigned k) {
	if (k == 0)
		return 0;
	if (k >= 64)
		return ~0ull;
	return ((1ull << k) - 1) << (64 - k);
}

static unsigned log2_floor(size_t v) {
	unsigned b = 0;
	while (v > 1) {
		v >>= 1;
		b++;
	}
	return b;
}

void backup_chunker_init(struct backup_chunker *c, size_t min, size_t avg, size_t max) {
	uint64_t s = GEAR_SEED;
	unsigned bits;

	for (int i = 0; i < 256; i++)
		c->gear[i] = splitmix64(&s);
	c->min = min;
	c->avg = avg;
	c->max = max;
	bits = log2_floor(avg > min ? avg - min : avg);
	/* Normalization level 2: two bits harder before avg, two easier after. */
	c->mask_s = top_mask(bits + 2);
	c->mask_l = top_mask(bits > 2 ? bits - 2 : 1);
}

size_t backup_chunker_cut(const struct backup_chunker *c, const uint8_t *p, size_t n) {
	uint64_t fp = 0;
	size_t i, normal, end;

	if (n <= c->min)
		return n;
	end = n > c->max ? c->max : n;
	normal = c->avg < end ? c->avg : end;
	for (i = c->min; i < normal; i++) {
		fp = (fp << 1) + c->gear[p[i]];
		if (!(fp & c->mask_s))
			return i + 1;
	}
	for (; i < end; i++) {
		fp = (fp << 1) + c->gear[p[i]];
		if (!(fp & c->mask_l))
			return i + 1;
	}
	return end;
}
