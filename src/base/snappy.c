/* snappy.c: a decoder for the Snappy block format, the framing-less form remote_write bodies
 * use: a little-endian base-128 varint holding the decoded length, then elements, each a tag
 * byte whose low two bits say what follows:
 *   00 literal: length-1 in the tag's upper six bits (0..59), or in the next 1..4 bytes
 *      (little-endian) when those bits are 60..63; then the bytes themselves;
 *   01 copy, length 4..11 from tag bits 2..4, offset 0..2047 from tag bits 5..7 and one byte;
 *   10 copy, length 1..64 from the upper six bits, offset in the next two bytes;
 *   11 copy, the same with a four-byte offset.
 * A copy repeats `length` bytes starting `offset` bytes back in the output; the ranges may
 * overlap (offset < length repeats a pattern).
 *
 * Invariants: nothing is read past in[n) nor written past out[len); a copy never reaches
 * before the start of the output and its offset is never 0; decoding succeeds only when the
 * elements produce exactly the declared length. Any other input is refused, never guessed at.
 */
#include <string.h>

#include "base/base.h"

int ward_snappy_decoded_len(const void *in, size_t n, size_t *len)
{
	const uint8_t *p = in;
	uint64_t v = 0;
	for (size_t i = 0; i < n && i < 5; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (v > UINT32_MAX)
				return -1;
			*len = (size_t)v;
			return (int)i + 1;
		}
	}
	return -1; /* truncated, or longer than the format's 32 bits */
}

int ward_snappy_decode(const void *in, size_t n, void *out, size_t len)
{
	size_t want;
	int hdr = ward_snappy_decoded_len(in, n, &want);
	if (hdr < 0 || want != len)
		return -1;
	const uint8_t *p = (const uint8_t *)in + hdr, *end = (const uint8_t *)in + n;
	uint8_t *o = out, *const o0 = out, *const oend = (uint8_t *)out + len;
	while (p < end) {
		uint8_t tag = *p++;
		size_t l, off;
		switch (tag & 3) {
		case 0:
			l = tag >> 2;
			if (l >= 60) {
				size_t k = l - 59; /* 1..4 length bytes */
				if ((size_t)(end - p) < k)
					return -1;
				l = 0;
				for (size_t i = 0; i < k; i++)
					l |= (size_t)p[i] << (8 * i);
				p += k;
			}
			l += 1;
			if ((size_t)(end - p) < l || (size_t)(oend - o) < l)
				return -1;
			memcpy(o, p, l);
			o += l;
			p += l;
			continue;
		case 1:
			if (end - p < 1)
				return -1;
			l = 4 + ((tag >> 2) & 7);
			off = (size_t)(tag >> 5) << 8 | p[0];
			p += 1;
			break;
		case 2:
			if (end - p < 2)
				return -1;
			l = 1 + (tag >> 2);
			off = (size_t)p[0] | (size_t)p[1] << 8;
			p += 2;
			break;
		default:
			if (end - p < 4)
				return -1;
			l = 1 + (tag >> 2);
			off = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
			      (size_t)p[3] << 24;
			p += 4;
			break;
		}
		if (off == 0 || off > (size_t)(o - o0) || (size_t)(oend - o) < l)
			return -1;
		const uint8_t *from = o - off;
		if (off >= l) {
			memcpy(o, from, l);
			o += l;
		} else {
			for (size_t i = 0; i < l; i++) /* overlapping: a repeating pattern */
				*o++ = from[i];
		}
	}
	return o == oend ? 0 : -1;
}
