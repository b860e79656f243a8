/* crypto.c: hashing, randomness, constant-time comparison and hex, over libsodium.
 *
 * ward_crypto_init must have succeeded before any other call (sodium_init is idempotent
 * and thread-safe, so calling it from several modules is fine). Callers: security (token
 * hashes, audit chain), store, the CLI.
 */
#include "base/base.h"

#include <sodium.h>

int ward_crypto_init(void) {
	return sodium_init() < 0 ? -1 : 0;
}

void ward_sha256(const void *data, size_t n, uint8_t out[WARD_SHA256_LEN]) {
	crypto_hash_sha256(out, (const unsigned char *)data, (unsigned long long)n);
}

void ward_random_bytes(void *out, size_t n) {
	randombytes_buf(out, n);
}

bool ward_ct_equal(const void *a, const void *b, size_t n) {
	return sodium_memcmp(a, b, n) == 0;
}

void ward_hex(const uint8_t *in, size_t n, char *out) {
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int ward_hexval(int c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ward_unhex(const char *in, size_t inlen, uint8_t *out, size_t n) {
	size_t i;

	if (!in || inlen != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		int hi = ward_hexval(in[2 * i]), lo = ward_hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
