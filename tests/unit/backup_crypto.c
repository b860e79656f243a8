/* backup_crypto.c: unit tests for the repository ciphers and id hashes against published
 * vectors: XAES-256-GCM's (c2sp.org/XAES-256-GCM: both worked examples, including the CMAC
 * subkey K1 for each MSB of L, and the 10 000-iteration accumulated test), and keyed ids
 * (HMAC-SHA256 and keyed BLAKE2b-256) checked against Python's hmac and hashlib. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "backup/backup_internal.h"

static void unhex(const char *h, uint8_t *out, size_t n) {
	assert_int_equal(strlen(h), 2 * n);
	assert_int_equal(ward_unhex(h, 2 * n, out, n), 0);
}

struct xaes_vec {
	uint8_t key_byte;
	const char *k1, *plain, *ad, *sealed; /* sealed: ciphertext || tag */
};
static const struct xaes_vec xaes_vecs[] = {
        {0x01, "e531954aca063d5b8d9c47a47d4cc6f0", "XAES-256-GCM", "",
         "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
        {0x03, "23810ec50edb99f374409466ed1f4b7b", "XAES-256-GCM", "c2sp.org/XAES-256-GCM",
         "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
};

static void xaes_matches_the_c2sp_vectors(void **state) {
	const char *nonce = "ABCDEFGHIJKLMNOPQRSTUVWX";

	assert_int_equal(ward_crypto_init(), 0);
	for (size_t v = 0; v < sizeof(xaes_vecs) / sizeof(xaes_vecs[0]); v++) {
		const struct xaes_vec *x = &xaes_vecs[v];
		uint8_t raw[BACKUP_KEY_LEN], k1[16], want[64];
		size_t wlen = strlen(x->sealed) / 2;
		struct backup_seal_key key;
		struct buf c = BUF_INIT, p = BUF_INIT;

		memset(raw, x->key_byte, sizeof(raw));
		backup_seal_key_set(&key, raw, BACKUP_CIPHER_XAES_256_GCM);
		unhex(x->k1, k1, sizeof(k1));
		assert_memory_equal(key.k1, k1, sizeof(k1));
		unhex(x->sealed, want, wlen);
		backup_seal_nonce(&key, (const uint8_t *)nonce, x->plain, strlen(x->plain), x->ad,
		                  strlen(x->ad), &c);
		assert_int_equal(c.len, BACKUP_NONCE_LEN + wlen);
		assert_memory_equal(c.data, nonce, BACKUP_NONCE_LEN);
		assert_memory_equal(c.data + BACKUP_NONCE_LEN, want, wlen);
		assert_int_equal(backup_open_sealed(&key, c.data, c.len, x->ad, strlen(x->ad), &p),
		                 0);
		assert_int_equal(p.len, strlen(x->plain));
		assert_memory_equal(p.data, x->plain, p.len);
		buf_free(&c);
		buf_free(&p);
	}
}

/* The spec's accumulated test: key[32], nonce[24], plaintext<0..255>, aad<0..255> read from
 * SHAKE-128(""), each ciphertext||tag absorbed into a second SHAKE-128. */
#define ACC_ITERS 10000
#define ACC_MAX   (32 + 24 + 1 + 255 + 1 + 255)
static void xaes_matches_the_c2sp_accumulated_test(void **state) {
	size_t rng_len = (size_t)ACC_ITERS * ACC_MAX, pos = 0;
	uint8_t *rng = malloc(rng_len), got[32], want[32];
	EVP_MD_CTX *in = EVP_MD_CTX_new(), *acc = EVP_MD_CTX_new();
	struct buf c = BUF_INIT, p = BUF_INIT;

	assert_int_equal(ward_crypto_init(), 0);
	assert_non_null(rng);
	/* An XOF's shorter output is a prefix of its longer one: draw the whole stream at once. */
	assert_int_equal(EVP_DigestInit_ex(in, EVP_shake128(), NULL), 1);
	assert_int_equal(EVP_DigestFinalXOF(in, rng, rng_len), 1);
	unhex("7f9c2ba4e88f827d616045507605853e", want, 16);
	assert_memory_equal(rng, want, 16);
	assert_int_equal(EVP_DigestInit_ex(acc, EVP_shake128(), NULL), 1);
	for (int i = 0; i < ACC_ITERS; i++) {
		struct backup_seal_key key;
		const uint8_t *k = rng + pos, *nonce = rng + pos + 32, *pt, *ad;
		size_t ptlen, adlen;

		pos += 32 + 24;
		ptlen = rng[pos++];
		pt = rng + pos;
		pos += ptlen;
		adlen = rng[pos++];
		ad = rng + pos;
		pos += adlen;
		backup_seal_key_set(&key, k, BACKUP_CIPHER_XAES_256_GCM);
		buf_reset(&c);
		backup_seal_nonce(&key, nonce, pt, ptlen, ad, adlen, &c);
		assert_int_equal(
		        EVP_DigestUpdate(acc, c.data + BACKUP_NONCE_LEN, c.len - BACKUP_NONCE_LEN),
		        1);
		/* Each one also opens again (the decrypt path over every length 0..255). */
		buf_reset(&p);
		assert_int_equal(backup_open_sealed(&key, c.data, c.len, ad, adlen, &p), 0);
		assert_int_equal(p.len, ptlen);
		if (ptlen)
			assert_memory_equal(p.data, pt, ptlen);
	}
	assert_int_equal(EVP_DigestFinalXOF(acc, got, sizeof(got)), 1);
	unhex("e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939", want, 32);
	assert_memory_equal(got, want, 32);
	EVP_MD_CTX_free(in);
	EVP_MD_CTX_free(acc);
	free(rng);
	buf_free(&c);
	buf_free(&p);
}

/* Expected values from Python: hmac.new(key, msg, hashlib.sha256) and
 * hashlib.blake2b(msg, key=key, digest_size=32), key = bytes(range(32)). */
static void blob_ids_match_reference_hashes(void **state) {
	static const struct {
		enum backup_id_hash h;
		int msg; /* 0: "ward backup chunk", 1: empty, 2: 100000 bytes (i*7+3)%256 */
		const char *want;
	} v[] = {
	        {BACKUP_ID_HMAC_SHA256, 0,
	         "9a742b1725e58120e0195485688f8bb66ae19f8b63b25cd2ac4aebdce6eb2019"},
	        {BACKUP_ID_HMAC_SHA256, 1,
	         "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb"},
	        {BACKUP_ID_HMAC_SHA256, 2,
	         "5d1677544c26ea66aaad303224c72f48156de3a7262477b1abafffcb49673ba9"},
	        {BACKUP_ID_BLAKE2B_KEYED, 0,
	         "efa47d2dd728955e0420060a00ae370175946d7cd5ff0a7bf5ad5eceaaf4f082"},
	        {BACKUP_ID_BLAKE2B_KEYED, 2,
	         "1c49550450ce286d7b05fc700582673026e2b922e669dd10d3a61f29b95e5f0e"},
	};
	uint8_t raw[BACKUP_KEY_LEN], got[BACKUP_ID_LEN], want[BACKUP_ID_LEN], *big = malloc(100000);
	struct backup_id_key key;

	assert_int_equal(ward_crypto_init(), 0);
	for (int i = 0; i < BACKUP_KEY_LEN; i++)
		raw[i] = (uint8_t)i;
	for (int i = 0; i < 100000; i++)
		big[i] = (uint8_t)((i * 7 + 3) % 256);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const void *m = v[i].msg == 0   ? "ward backup chunk"
		                : v[i].msg == 1 ? ""
		                                : (char *)big;
		size_t n = v[i].msg == 0 ? 17 : v[i].msg == 1 ? 0 : 100000;
		backup_id_key_set(&key, raw, v[i].h);
		backup_blob_id(&key, m, n, got);
		unhex(v[i].want, want, sizeof(want));
		assert_memory_equal(got, want, sizeof(want));
	}
	free(big);
}

static void names_parse_and_unknown_ones_are_refused(void **state) {
	enum backup_cipher c;
	enum backup_id_hash h;

	assert_int_equal(backup_cipher_parse("xaes-256-gcm", &c), 0);
	assert_int_equal(c, BACKUP_CIPHER_XAES_256_GCM);
	assert_int_equal(backup_cipher_parse("xchacha20-poly1305", &c), 0);
	assert_int_equal(c, BACKUP_CIPHER_XCHACHA20_POLY1305);
	assert_int_equal(backup_cipher_parse("aes-256-gcm", &c), -1);
	assert_int_equal(backup_id_hash_parse("hmac-sha256", &h), 0);
	assert_int_equal(h, BACKUP_ID_HMAC_SHA256);
	assert_int_equal(backup_id_hash_parse("blake2b-256-keyed", &h), 0);
	assert_int_equal(h, BACKUP_ID_BLAKE2B_KEYED);
	assert_int_equal(backup_id_hash_parse("sha256", &h), -1);
	assert_string_equal(backup_cipher_name(BACKUP_CIPHER_XAES_256_GCM), "xaes-256-gcm");
	assert_string_equal(backup_id_hash_name(BACKUP_ID_BLAKE2B_KEYED), "blake2b-256-keyed");
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(xaes_matches_the_c2sp_vectors),
	        cmocka_unit_test(xaes_matches_the_c2sp_accumulated_test),
	        cmocka_unit_test(blob_ids_match_reference_hashes),
	        cmocka_unit_test(names_parse_and_unknown_ones_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
