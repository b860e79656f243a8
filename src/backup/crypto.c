/* crypto.c: the cryptographic envelope of the repository. Every sealed object is
 * nonce(24) || ciphertext || tag(16) with a fresh random nonce, so the same key can seal
 * any number of objects. The cipher is the repository's choice (config "cipher"):
 * XChaCha20-Poly1305-IETF (libsodium; repositories without the field, and every key file)
 * or XAES-256-GCM (c2sp.org/XAES-256-GCM over OpenSSL's AES-256; new repositories), which
 * derives a per-message AES-256-GCM key from the key and the first 12 nonce bytes and uses
 * the last 12 as the GCM nonce. Blob and tree ids are keyed hashes (config "id_hash":
 * BLAKE2b-256 keyed, or HMAC-SHA256) with a key derived from the master key, so an id says
 * nothing about content to someone without the key. Callers: repo.c (files, blobs, keys),
 * blobs.c, writer.c, restore.c, maint.c. libsodium must be initialised (ward_crypto_init) first.
 *
 * Threads: sealing, opening and hashing run on the writer and restore threads at once with
 * the same keys. A key struct is read-only after backup_*_key_set; the OpenSSL contexts,
 * which are not, are per thread (created on first use, freed when the thread exits).
 */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup_internal.h"

/* crypto_kdf context: 8 bytes, part of the format. */
#define KDF_CTX "wardbkup"
#define KDF_ENC 1
#define KDF_ID  2

#define AES_BLOCK 16
#define GCM_NONCE 12 /* XAES: the last 12 of the 24 nonce bytes */
/* EVP_*Update takes an int length: feed longer messages in pieces of this size. */
#define EVP_PIECE (1 << 30)

static const char *const cipher_names[] = {"xchacha20-poly1305", "xaes-256-gcm"};
static const char *const id_hash_names[] = {"blake2b-256-keyed", "hmac-sha256"};

const char *backup_cipher_name(enum backup_cipher c) {
	return (unsigned)c < 2 ? cipher_names[c] : "?";
}
const char *backup_id_hash_name(enum backup_id_hash h) {
	return (unsigned)h < 2 ? id_hash_names[h] : "?";
}
int backup_cipher_parse(const char *s, enum backup_cipher *out) {
	for (int i = 0; i < 2; i++)
		if (strcmp(s, cipher_names[i]) == 0) {
			*out = (enum backup_cipher)i;
			return 0;
		}
	return -1;
}
int backup_id_hash_parse(const char *s, enum backup_id_hash *out) {
	for (int i = 0; i < 2; i++)
		if (strcmp(s, id_hash_names[i]) == 0) {
			*out = (enum backup_id_hash)i;
			return 0;
		}
	return -1;
}

/* ---- per-thread OpenSSL state ---- */
struct ossl_tls {
	EVP_CIPHER_CTX *ecb; /* AES-256-ECB, no padding: the XAES subkey derivation */
	EVP_CIPHER_CTX *gcm; /* AES-256-GCM, rekeyed per message */
	EVP_MAC_CTX *mac;    /* HMAC with SHA-256 */
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static __thread struct ossl_tls *tls_cur;
static EVP_MAC *hmac_alg;

static void tls_free(void *p) {
	struct ossl_tls *t = p;
	EVP_CIPHER_CTX_free(t->ecb);
	EVP_CIPHER_CTX_free(t->gcm);
	EVP_MAC_CTX_free(t->mac);
	free(t);
}

static void tls_init_once(void) {
	if (pthread_key_create(&tls_key, tls_free) != 0 ||
	    !(hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL)))
		abort(); /* broken invariant: libcrypto without AES or HMAC */
}

/* Only allocation can fail here; as with ward_xmalloc, that aborts. */
static struct ossl_tls *tls_get(void) {
	struct ossl_tls *t = tls_cur;
	OSSL_PARAM params[2];

	if (t)
		return t;
	pthread_once(&tls_once, tls_init_once);
	t = ward_xcalloc(1, sizeof(*t));
	t->ecb = EVP_CIPHER_CTX_new();
	t->gcm = EVP_CIPHER_CTX_new();
	t->mac = EVP_MAC_CTX_new(hmac_alg);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!t->ecb || !t->gcm || !t->mac ||
	    EVP_EncryptInit_ex(t->ecb, EVP_aes_256_ecb(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(t->ecb, 0) != 1 ||
	    EVP_CipherInit_ex(t->gcm, EVP_aes_256_gcm(), NULL, NULL, NULL, 1) != 1 ||
	    EVP_MAC_CTX_set_params(t->mac, params) != 1)
		abort();
	pthread_setspecific(tls_key, t);
	tls_cur = t;
	return t;
}

/* ---- keys ---- */

/* out = AES-256(key, in) for n/16 blocks. */
static void aes_blocks(struct ossl_tls *t, const uint8_t key[BACKUP_KEY_LEN], const uint8_t *in,
                       uint8_t *out, int n) {
	int len = 0;
	if (EVP_EncryptInit_ex(t->ecb, NULL, NULL, key, NULL) != 1 ||
	    EVP_EncryptUpdate(t->ecb, out, &len, in, n) != 1 || len != n)
		abort();
}

void backup_seal_key_set(struct backup_seal_key *k, const uint8_t key[BACKUP_KEY_LEN],
                         enum backup_cipher cipher) {
	memset(k, 0, sizeof(*k));
	memcpy(k->key, key, BACKUP_KEY_LEN);
	k->cipher = cipher;
	if (cipher == BACKUP_CIPHER_XAES_256_GCM) {
		/* CMAC subkey K1 (NIST SP 800-38B 6.1): L = AES(K, 0^128), K1 = L << 1, xor
		 * 0x87 into the last byte when the bit shifted out was set. */
		uint8_t zero[AES_BLOCK] = {0}, l[AES_BLOCK];
		aes_blocks(tls_get(), key, zero, l, AES_BLOCK);
		for (int i = 0; i < AES_BLOCK; i++)
			k->k1[i] = (uint8_t)(l[i] << 1 | (i + 1 < AES_BLOCK ? l[i + 1] >> 7 : 0));
		if (l[0] & 0x80)
			k->k1[AES_BLOCK - 1] ^= 0x87;
		sodium_memzero(l, sizeof(l));
	}
}

void backup_id_key_set(struct backup_id_key *k, const uint8_t key[BACKUP_KEY_LEN],
                       enum backup_id_hash hash) {
	memcpy(k->key, key, BACKUP_KEY_LEN);
	k->hash = hash;
}

/* XAES-256-GCM subkey for a nonce: Kx = AES(K, M1 ^ K1) || AES(K, M2 ^ K1) with
 * Mi = 0x00 || i || 'X' || 0x00 || nonce[0..12). */
static void xaes_subkey(struct ossl_tls *t, const struct backup_seal_key *k,
                        const uint8_t nonce[BACKUP_NONCE_LEN], uint8_t kx[BACKUP_KEY_LEN]) {
	uint8_t m[2 * AES_BLOCK];
	for (int j = 0; j < 2; j++) {
		uint8_t *mj = m + j * AES_BLOCK;
		mj[0] = 0x00;
		mj[1] = (uint8_t)(j + 1);
		mj[2] = 0x58;
		mj[3] = 0x00;
		memcpy(mj + 4, nonce, 12);
		for (int i = 0; i < AES_BLOCK; i++)
			mj[i] ^= k->k1[i];
	}
	aes_blocks(t, k->key, m, kx, 2 * AES_BLOCK);
}

/* AES-256-GCM over kx and nonce[12..24) of p[0..n) into dst; enc: tag written after the
 * ciphertext, else checked against tag_in. 0 or -1 (forged). */
static int xaes_crypt(const struct backup_seal_key *k, int enc, const uint8_t *nonce,
                      const uint8_t *src, size_t n, const void *ad, size_t adlen, uint8_t *dst,
                      const uint8_t *tag_in) {
	struct ossl_tls *t = tls_get();
	EVP_CIPHER_CTX *c = t->gcm;
	uint8_t kx[BACKUP_KEY_LEN];
	int len = 0, ok;

	xaes_subkey(t, k, nonce, kx);
	ok = EVP_CipherInit_ex(c, NULL, NULL, kx, nonce + BACKUP_NONCE_LEN - GCM_NONCE, enc);
	sodium_memzero(kx, sizeof(kx));
	if (ok != 1)
		abort();
	for (size_t off = 0; off < adlen; off += EVP_PIECE) {
		int m = adlen - off < EVP_PIECE ? (int)(adlen - off) : EVP_PIECE;
		if (EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)ad + off, m) != 1)
			abort();
	}
	for (size_t off = 0; off < n; off += EVP_PIECE) {
		int m = n - off < EVP_PIECE ? (int)(n - off) : EVP_PIECE;
		if (EVP_CipherUpdate(c, dst + off, &len, src + off, m) != 1 || len != m)
			abort();
	}
	if (enc) {
		if (EVP_CipherFinal_ex(c, dst + n, &len) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, BACKUP_TAG_LEN, dst + n) != 1)
			abort();
		return 0;
	}
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, BACKUP_TAG_LEN, (void *)tag_in) != 1)
		abort();
	if (EVP_CipherFinal_ex(c, dst + n, &len) != 1) {
		ERR_clear_error();
		sodium_memzero(dst, n); /* no unauthenticated plaintext left behind */
		return -1;
	}
	return 0;
}

/* Writes nonce || ciphertext || tag: exactly n + BACKUP_SEAL_OVERHEAD bytes at dst. */
static void seal_raw(const struct backup_seal_key *k, const uint8_t nonce[BACKUP_NONCE_LEN],
                     const void *p, size_t n, const void *ad, size_t adlen, uint8_t *dst) {
	unsigned long long clen = 0;

	memcpy(dst, nonce, BACKUP_NONCE_LEN);
	if (k->cipher == BACKUP_CIPHER_XAES_256_GCM)
		xaes_crypt(k, 1, dst, p, n, ad, adlen, dst + BACKUP_NONCE_LEN, NULL);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt(dst + BACKUP_NONCE_LEN, &clen, p, n, ad,
		                                           adlen, NULL, dst, k->key);
}

void backup_seal(const struct backup_seal_key *k, const void *p, size_t n, const void *ad,
                 size_t adlen, struct buf *out) {
	uint8_t nonce[BACKUP_NONCE_LEN];
	randombytes_buf(nonce, sizeof(nonce));
	backup_seal_nonce(k, nonce, p, n, ad, adlen, out);
}

void backup_seal_to(const struct backup_seal_key *k, const void *p, size_t n, const void *ad,
                    size_t adlen, uint8_t *dst) {
	uint8_t nonce[BACKUP_NONCE_LEN];
	randombytes_buf(nonce, sizeof(nonce));
	seal_raw(k, nonce, p, n, ad, adlen, dst);
}

void backup_seal_nonce(const struct backup_seal_key *k, const uint8_t nonce[BACKUP_NONCE_LEN],
                       const void *p, size_t n, const void *ad, size_t adlen, struct buf *out) {
	buf_reserve(out, n + BACKUP_SEAL_OVERHEAD + 1);
	seal_raw(k, nonce, p, n, ad, adlen, (uint8_t *)out->data + out->len);
	out->len += n + BACKUP_SEAL_OVERHEAD;
	out->data[out->len] = '\0';
}

int backup_open_sealed(const struct backup_seal_key *k, const void *c, size_t n, const void *ad,
                       size_t adlen, struct buf *out) {
	const uint8_t *src = c;
	unsigned long long mlen = 0;
	uint8_t *dst;

	if (n < BACKUP_SEAL_OVERHEAD)
		return -1;
	buf_reserve(out, n + 1);
	dst = (uint8_t *)out->data + out->len;
	if (k->cipher == BACKUP_CIPHER_XAES_256_GCM) {
		mlen = n - BACKUP_SEAL_OVERHEAD;
		if (xaes_crypt(k, 0, src, src + BACKUP_NONCE_LEN, (size_t)mlen, ad, adlen, dst,
		               src + n - BACKUP_TAG_LEN) != 0)
			return -1;
	} else if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	                   dst, &mlen, NULL, src + BACKUP_NONCE_LEN, n - BACKUP_NONCE_LEN, ad,
	                   adlen, src, k->key) != 0) {
		return -1;
	}
	out->len += (size_t)mlen;
	out->data[out->len] = '\0';
	return 0;
}

void backup_blob_id(const struct backup_id_key *k, const void *p, size_t n,
                    uint8_t out[BACKUP_ID_LEN]) {
	if (k->hash == BACKUP_ID_HMAC_SHA256) {
		EVP_MAC_CTX *m = tls_get()->mac;
		size_t len = 0;
		if (EVP_MAC_init(m, k->key, BACKUP_KEY_LEN, NULL) != 1 ||
		    EVP_MAC_update(m, p, n) != 1 ||
		    EVP_MAC_final(m, out, &len, BACKUP_ID_LEN) != 1 || len != BACKUP_ID_LEN)
			abort();
		return;
	}
	crypto_generichash(out, BACKUP_ID_LEN, p, n, k->key, BACKUP_KEY_LEN);
}

void backup_derive_keys(const uint8_t master[BACKUP_KEY_LEN], uint8_t enc[BACKUP_KEY_LEN],
                        uint8_t idk[BACKUP_KEY_LEN]) {
	crypto_kdf_derive_from_key(enc, BACKUP_KEY_LEN, KDF_ENC, KDF_CTX, master);
	crypto_kdf_derive_from_key(idk, BACKUP_KEY_LEN, KDF_ID, KDF_CTX, master);
}
