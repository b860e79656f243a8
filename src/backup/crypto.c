/* crypto.c: the cryptographic envelope of the repository. Every sealed object is
 * nonce(24) || XChaCha20-Poly1305-IETF(ciphertext || tag(16)) with a fresh random nonce, so
 * the same key can seal any number of objects. Blob and tree ids are BLAKE2b-256 keyed with a
 * key derived from the master key, so an id says nothing about content to someone without
 * the key. Callers: repo.c (files, blobs, keys), archive.c (ids). libsodium must be
 * initialised (ward_crypto_init) first.
 */
#include <sodium.h>
#include <string.h>

#include "backup/backup_internal.h"

/* crypto_kdf context: 8 bytes, part of the format. */
#define KDF_CTX "wardbkup"
#define KDF_ENC 1
#define KDF_ID  2

void backup_seal(const uint8_t key[BACKUP_KEY_LEN], const void *p, size_t n, const void *ad,
                 size_t adlen, struct buf *out) {
	unsigned long long clen = 0;
	uint8_t *dst;

	buf_reserve(out, n + BACKUP_SEAL_OVERHEAD + 1);
	dst = (uint8_t *)out->data + out->len;
	randombytes_buf(dst, BACKUP_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(dst + BACKUP_NONCE_LEN, &clen, p, n, ad, adlen,
	                                           NULL, dst, key);
	out->len += BACKUP_NONCE_LEN + (size_t)clen;
	out->data[out->len] = '\0';
}

int backup_open_sealed(const uint8_t key[BACKUP_KEY_LEN], const void *c, size_t n, const void *ad,
                       size_t adlen, struct buf *out) {
	const uint8_t *src = c;
	unsigned long long mlen = 0;
	uint8_t *dst;

	if (n < BACKUP_SEAL_OVERHEAD)
		return -1;
	buf_reserve(out, n + 1);
	dst = (uint8_t *)out->data + out->len;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL, src + BACKUP_NONCE_LEN,
	                                               n - BACKUP_NONCE_LEN, ad, adlen, src,
	                                               key) != 0)
		return -1;
	out->len += (size_t)mlen;
	out->data[out->len] = '\0';
	return 0;
}

void backup_blob_id(const uint8_t idkey[BACKUP_KEY_LEN], const void *p, size_t n,
                    uint8_t out[BACKUP_ID_LEN]) {
	crypto_generichash(out, BACKUP_ID_LEN, p, n, idkey, BACKUP_KEY_LEN);
}

void backup_derive_keys(const uint8_t master[BACKUP_KEY_LEN], uint8_t enc[BACKUP_KEY_LEN],
                        uint8_t idk[BACKUP_KEY_LEN]) {
	crypto_kdf_derive_from_key(enc, BACKUP_KEY_LEN, KDF_ENC, KDF_CTX, master);
	crypto_kdf_derive_from_key(idk, BACKUP_KEY_LEN, KDF_ID, KDF_CTX, master);
}
