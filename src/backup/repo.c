/* repo.c: the repository: init and open (config + keys sealed under Argon2id), key
 * management, locks, sealed files named by their hash, the in-memory index and the blob
 * store (zstd, then sealed with the config's cipher and the blob id as associated data,
 * gathered in packs; each pack is followed by an index file for it, so a crash loses at most
 * the pack being written). Invariant: an index entry is written only after its pack is
 * durable, and a snapshot only after the index entries of all its blobs; so a snapshot never
 * refers to a blob that is not stored. Callers: archive.c, restore.c, maint.c and the CLI
 * (through backup.h).
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "backup/backup_internal.h"

#define KEY_AD         "ward-backup-key"
#define PACK_HEADER_AD "ward-pack-header"
/* Argon2id defaults: libsodium's "interactive" memory with 3 passes: about 0.2 s here. */
#define DEF_KDF_OPS    3
#define DEF_KDF_MEM    (64u * 1024 * 1024)
#define DEF_ZSTD_LEVEL 3
/* Chunks cut from large files (logs, dumps, images) at level 1: on bench/backup's logs this
 * came out the same size as level 3 (167.0 vs 167.5 MiB) in half the CPU time, while whole
 * small files (source code) grew 8 % at level 1 and so keep level 3. */
#define DEF_ZSTD_LARGE_LEVEL 1
/* The config's version when the repository's cipher or id hash is not the version-1 pair
 * (XChaCha20-Poly1305, keyed BLAKE2b-256): wards that predate the choice refuse it instead of
 * reporting every sealed file as damaged. Everything but the config stays at
 * BACKUP_FORMAT_VERSION, and a repository made with the old pair keeps version 1. */
#define CONFIG_VERSION_CHOICES 2
/* A lock is refreshed this often while an operation runs (stale after BACKUP_LOCK_STALE_S). */
#define LOCK_REFRESH_MS (5 * 60 * 1000)

static const char *const ftype_ad[] = {"config", "key", "data", "index", "snapshot", "lock"};

const char *backup_strerror(int rc) {
	switch (rc) {
	case BACKUP_OK:
		return "ok";
	case BACKUP_ERR_IO:
		return "I/O error";
	case BACKUP_ERR_NOTFOUND:
		return "not found";
	case BACKUP_ERR_PASSPHRASE:
		return "wrong passphrase";
	case BACKUP_ERR_LOCKED:
		return "repository locked";
	case BACKUP_ERR_CORRUPT:
		return "damaged data";
	case BACKUP_ERR_USAGE:
		return "bad usage";
	case BACKUP_ERR_EXISTS:
		return "already exists";
	case BACKUP_ERR_CANCELLED:
		return "cancelled";
	case BACKUP_ERR_SOURCE:
		return "the source failed";
	}
	return "unknown error";
}

void backup_content_name(const struct backup_repo *r, const void *p, size_t n,
                         char out[BACKUP_HEX_LEN]) {
	uint8_t h[BACKUP_ID_LEN];
	/* Unkeyed, so anyone can verify a file against its name without the key. Version 1:
	 * BLAKE2b-256 (about twice as fast as libsodium's portable SHA-256). Version 2: SHA-256
	 * through OpenSSL, which uses the CPU's SHA instructions: 1.6 GB/s against 0.9 here,
	 * and every stored byte is named. */
	if (r->sha256_names) {
		if (EVP_Digest(p, n, h, NULL, EVP_sha256(), NULL) != 1)
			abort(); /* only out of memory */
	} else {
		crypto_generichash(h, sizeof(h), p, n, NULL, 0);
	}
	ward_hex(h, sizeof(h), out);
}

static void random_name(char out[BACKUP_HEX_LEN]) {
	uint8_t r[BACKUP_ID_LEN];
	ward_random_bytes(r, sizeof(r));
	ward_hex(r, sizeof(r), out);
}

static void host_name(char *out, size_t n) {
	if (gethostname(out, n) != 0)
		snprintf(out, n, "unknown");
	out[n - 1] = '\0';
}

static void user_name(char *out, size_t n) {
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(out, n, "%s", res->pw_name);
	else
		snprintf(out, n, "%u", (unsigned)getuid());
}

/* ---- names ---- */
struct names {
	char **v;
	size_t n, cap;
};
static int names_cb(const char *name, int64_t size, void *arg) {
	struct names *ns = arg;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		ns->v = ward_xrealloc(ns->v, ns->cap * sizeof(char *));
	}
	ns->v[ns->n++] = ward_strdup(name);
	return 0;
}
static int str_cmp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}
int backup_list_names(struct backup_repo *r, enum backup_ftype t, char ***out, size_t *n,
                      struct ward_err *err) {
	struct names ns = {0};
	int rc = r->be->list(r->be, t, names_cb, &ns, err);
	if (rc) {
		backup_names_free(ns.v, ns.n);
		return rc;
	}
	if (ns.n > 1)
		qsort(ns.v, ns.n, sizeof(char *), str_cmp);
	*out = ns.v;
	*n = ns.n;
	return 0;
}
void backup_names_free(char **v, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- sealed files ---- */
int backup_write_sealed(struct backup_repo *r, enum backup_ftype t, const struct buf *plain,
                        char name_out[BACKUP_HEX_LEN], struct ward_err *err) {
	struct buf c = BUF_INIT;
	int rc;
	backup_seal(&r->enc_key, plain->data, plain->len, ftype_ad[t], strlen(ftype_ad[t]), &c);
	backup_content_name(r, c.data, c.len, name_out);
	rc = r->be->write(r->be, t, name_out, c.data, c.len, err);
	buf_free(&c);
	return rc;
}

int backup_read_sealed(struct backup_repo *r, enum backup_ftype t, const char *name,
                       struct buf *out, struct ward_err *err) {
	struct buf c = BUF_INIT;
	char h[BACKUP_HEX_LEN];
	int rc = r->be->read(r->be, t, name, 0, 0, &c, err);
	if (rc)
		goto out;
	backup_content_name(r, c.data, c.len, h);
	buf_reset(out);
	if (strcmp(h, name) != 0 ||
	    backup_open_sealed(&r->enc_key, c.data, c.len, ftype_ad[t], strlen(ftype_ad[t]), out)) {
		ward_err_set(err,
		             "%s/%s is damaged: its content does not match its name or fails "
		             "authentication",
		             ftype_ad[t], name);
		rc = BACKUP_ERR_CORRUPT;
	}
out:
	buf_free(&c);
	return rc;
}

/* ---- config and keys ---- */
static int parse_config(struct backup_repo *r, const char *txt, size_t n, struct ward_err *err) {
	json_error_t je;
	json_t *o = json_loadb(txt, n, 0, &je);
	json_int_t ver, mn, av, mx, lvl, large = 0;
	const char *id, *cipher_s, *id_hash_s;
	int rc = BACKUP_ERR_CORRUPT;

	if (!o || json_unpack_ex(o, &je, 0, "{s:I, s:s, s:{s:I, s:I, s:I}, s?{s?I}}", "version",
	                         &ver, "id", &id, "chunker", "min", &mn, "avg", &av, "max", &mx,
	                         "compression", "level", &lvl) != 0) {
		ward_err_set(err, "%s/config is not a ward backup config: %s", r->be->location,
		             je.text);
		goto out;
	}
	lvl = DEF_ZSTD_LEVEL;
	json_unpack(o, "{s?{s?I, s?I}}", "compression", "level", &lvl, "large_level", &large);
	/* Written before these fields were read: what every ward used then. */
	cipher_s = backup_cipher_name(BACKUP_CIPHER_XCHACHA20_POLY1305);
	id_hash_s = backup_id_hash_name(BACKUP_ID_BLAKE2B_KEYED);
	if (json_unpack_ex(o, &je, 0, "{s?s, s?s}", "cipher", &cipher_s, "id_hash", &id_hash_s) !=
	    0) {
		ward_err_set(err, "%s/config: cipher and id_hash must be strings: %s",
		             r->be->location, je.text);
		goto out;
	}
	if (large == 0) /* written before large_level existed: one level for every blob */
		large = lvl;
	if (ver != BACKUP_FORMAT_VERSION && ver != CONFIG_VERSION_CHOICES) {
		ward_err_set(err,
		             "%s: repository format version %lld is not supported (this ward "
		             "reads %d and %d)",
		             r->be->location, (long long)ver, BACKUP_FORMAT_VERSION,
		             CONFIG_VERSION_CHOICES);
		goto out;
	}
	if (strlen(id) != 2 * BACKUP_ID_LEN || mn < BACKUP_CDC_MIN_LIMIT || av <= mn || mx <= av ||
	    mx > BACKUP_CDC_MAX_LIMIT || lvl < 1 || lvl > 19 || large < 1 || large > 19) {
		ward_err_set(err, "%s/config: bad id or chunker sizes", r->be->location);
		goto out;
	}
	if (backup_cipher_parse(cipher_s, &r->cipher) != 0) {
		ward_err_set(err,
		             "%s/config: the repository uses cipher \"%s\", which this ward does "
		             "not support (it supports %s)",
		             r->be->location, cipher_s, BACKUP_CIPHER_NAMES);
		goto out;
	}
	if (backup_id_hash_parse(id_hash_s, &r->id_hash) != 0) {
		ward_err_set(err,
		             "%s/config: the repository uses id_hash \"%s\", which this ward does "
		             "not support (it supports %s)",
		             r->be->location, id_hash_s, BACKUP_ID_HASH_NAMES);
		goto out;
	}
	if (ver == BACKUP_FORMAT_VERSION && (r->cipher != BACKUP_CIPHER_XCHACHA20_POLY1305 ||
	                                     r->id_hash != BACKUP_ID_BLAKE2B_KEYED)) {
		ward_err_set(err,
		             "%s/config: version %d names cipher \"%s\" and id_hash \"%s\", but "
		             "a version %d repository is always %s and %s",
		             r->be->location, BACKUP_FORMAT_VERSION, cipher_s, id_hash_s,
		             BACKUP_FORMAT_VERSION,
		             backup_cipher_name(BACKUP_CIPHER_XCHACHA20_POLY1305),
		             backup_id_hash_name(BACKUP_ID_BLAKE2B_KEYED));
		goto out;
	}
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->chunk_min = (size_t)mn;
	r->chunk_avg = (size_t)av;
	r->chunk_max = (size_t)mx;
	r->zstd_level = (int)lvl;
	r->zstd_large_level = (int)large;
	r->sha256_names = ver == CONFIG_VERSION_CHOICES;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static int derive_pass_key(const char *pass, size_t passlen, const uint8_t *salt, uint64_t ops,
                           size_t mem, uint8_t out[BACKUP_KEY_LEN], struct ward_err *err) {
	if (crypto_pwhash(out, BACKUP_KEY_LEN, pass, passlen, salt, ops, mem,
	                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		ward_err_set(err,
		             "Argon2id key derivation failed (out of memory? it needs %zu MiB)",
		             mem >> 20);
		return BACKUP_ERR_IO;
	}
	return 0;
}

/* Seals the master key under a passphrase into a key file; writes keys/<id>. */
static int write_key(struct backup_backend *be, const char *repo_id, const uint8_t *master,
                     const char *pass, size_t passlen, uint64_t ops, size_t mem,
                     char id_out[BACKUP_HEX_LEN], struct ward_err *err) {
	uint8_t salt[crypto_pwhash_SALTBYTES], pk[BACKUP_KEY_LEN];
	struct backup_seal_key sk;
	char salt_hex[2 * sizeof(salt) + 1], host[256], user[64], when[32], *txt = NULL,
	                                                                    *sealed_hex;
	struct buf sealed = BUF_INIT;
	json_t *o;
	int rc;
	int64_t now = ward_now_ms();

	randombytes_buf(salt, sizeof(salt));
	rc = derive_pass_key(pass, passlen, salt, ops, mem, pk, err);
	if (rc)
		return rc;
	/* Key files are XChaCha20-Poly1305 whatever the repository's cipher: they are read
	 * before anything else, are tiny, and stay readable by every ward. */
	backup_seal_key_set(&sk, pk, BACKUP_CIPHER_XCHACHA20_POLY1305);
	backup_seal(&sk, master, BACKUP_KEY_LEN, repo_id, strlen(repo_id), &sealed);
	sodium_memzero(pk, sizeof(pk));
	sodium_memzero(&sk, sizeof(sk));
	sealed_hex = ward_xmalloc(2 * sealed.len + 1);
	ward_hex((const uint8_t *)sealed.data, sealed.len, sealed_hex);
	ward_hex(salt, sizeof(salt), salt_hex);
	host_name(host, sizeof(host));
	user_name(user, sizeof(user));
	ward_fmt_rfc3339(now, when);
	o = json_pack("{s:i, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "version",
	              BACKUP_FORMAT_VERSION, "created", when, "created_ms", (json_int_t)now, "host",
	              host, "user", user, "kdf", "argon2id", "ops", (json_int_t)ops, "mem",
	              (json_int_t)mem, "salt", salt_hex, "sealed", sealed_hex);
	txt = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	random_name(id_out);
	rc = be->write(be, BACKUP_FT_KEY, id_out, txt, strlen(txt), err);
	free(txt);
	free(sealed_hex);
	buf_free(&sealed);
	return rc;
}

/* Fills o's defaults from opts (may be NULL) and checks it: 0 or BACKUP_ERR_USAGE. */
static int init_opts_resolve(const struct backup_init_opts *opts, struct backup_init_opts *o,
                             enum backup_cipher *cipher, enum backup_id_hash *id_hash,
                             struct ward_err *err) {
	memset(o, 0, sizeof(*o));
	if (opts)
		*o = *opts;
	if (!o->chunk_min)
		o->chunk_min = BACKUP_DEF_MIN;
	if (!o->chunk_avg)
		o->chunk_avg = BACKUP_DEF_AVG;
	if (!o->chunk_max)
		o->chunk_max = BACKUP_DEF_MAX;
	if (!o->zstd_large_level)
		o->zstd_large_level = o->zstd_level ? o->zstd_level : DEF_ZSTD_LARGE_LEVEL;
	if (!o->zstd_level)
		o->zstd_level = DEF_ZSTD_LEVEL;
	if (!o->kdf_ops)
		o->kdf_ops = DEF_KDF_OPS;
	if (!o->kdf_mem)
		o->kdf_mem = DEF_KDF_MEM;
	if (o->chunk_min < BACKUP_CDC_MIN_LIMIT || o->chunk_avg <= o->chunk_min ||
	    o->chunk_max <= o->chunk_avg || o->chunk_max > BACKUP_CDC_MAX_LIMIT) {
		ward_err_set(err, "chunk sizes must satisfy %u <= min < avg < max <= %u",
		             BACKUP_CDC_MIN_LIMIT, BACKUP_CDC_MAX_LIMIT);
		return BACKUP_ERR_USAGE;
	}
	/* New repositories: the pair that costs least CPU (docs/backup-format.md, config). */
	if (!o->cipher)
		o->cipher = backup_cipher_name(BACKUP_CIPHER_XAES_256_GCM);
	if (!o->id_hash)
		o->id_hash = backup_id_hash_name(BACKUP_ID_HMAC_SHA256);
	if (backup_cipher_parse(o->cipher, cipher) != 0) {
		ward_err_set(err, "unknown cipher \"%s\" (this ward supports %s)", o->cipher,
		             BACKUP_CIPHER_NAMES);
		return BACKUP_ERR_USAGE;
	}
	if (backup_id_hash_parse(o->id_hash, id_hash) != 0) {
		ward_err_set(err, "unknown id hash \"%s\" (this ward supports %s)", o->id_hash,
		             BACKUP_ID_HASH_NAMES);
		return BACKUP_ERR_USAGE;
	}
	return 0;
}

int backup_init_check(const struct backup_init_opts *opts, struct ward_err *err) {
	struct backup_init_opts o;
	enum backup_cipher cipher;
	enum backup_id_hash id_hash;
	return init_opts_resolve(opts, &o, &cipher, &id_hash, err);
}

int backup_init_backend(struct backup_backend *be, const char *pass, size_t passlen,
                        const struct backup_init_opts *opts, struct ward_err *err) {
	struct backup_init_opts o;
	enum backup_cipher cipher;
	enum backup_id_hash id_hash;
	uint8_t master[BACKUP_KEY_LEN], rid[BACKUP_ID_LEN];
	char id[BACKUP_HEX_LEN], key_id[BACKUP_HEX_LEN], *txt;
	json_t *cfg;
	int64_t size;
	int rc, version;

	if (ward_crypto_init() != 0) {
		ward_err_set(err, "libsodium failed to initialise");
		return BACKUP_ERR_IO;
	}
	if ((rc = init_opts_resolve(opts, &o, &cipher, &id_hash, err)) != 0)
		return rc;
	if (passlen == 0) {
		ward_err_set(err, "the passphrase is empty: give one with at least one character");
		return BACKUP_ERR_USAGE;
	}
	if (be->stat(be, BACKUP_FT_CONFIG, "config", &size, NULL) == 0) {
		ward_err_set(err, "%s already holds a backup repository", be->location);
		return BACKUP_ERR_EXISTS;
	}
	if (be->create && (rc = be->create(be, err)) != 0)
		return rc;
	randombytes_buf(master, sizeof(master));
	randombytes_buf(rid, sizeof(rid));
	ward_hex(rid, sizeof(rid), id);
	rc = write_key(be, id, master, pass, passlen, o.kdf_ops, o.kdf_mem, key_id, err);
	sodium_memzero(master, sizeof(master));
	if (rc)
		return rc;
	version = cipher == BACKUP_CIPHER_XCHACHA20_POLY1305 && id_hash == BACKUP_ID_BLAKE2B_KEYED
	                  ? BACKUP_FORMAT_VERSION
	                  : CONFIG_VERSION_CHOICES;
	cfg = json_pack("{s:i, s:s, s:{s:I, s:I, s:I, s:s}, s:{s:s, s:i, s:i}, s:b, s:s, s:s}",
	                "version", version, "id", id, "chunker", "min", (json_int_t)o.chunk_min,
	                "avg", (json_int_t)o.chunk_avg, "max", (json_int_t)o.chunk_max, "algorithm",
	                "fastcdc-gear64", "compression", "algorithm", "zstd", "level", o.zstd_level,
	                "large_level", o.zstd_large_level, "encrypted", 1, "cipher",
	                backup_cipher_name(cipher), "id_hash", backup_id_hash_name(id_hash));
	txt = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(cfg);
	/* The config last: a directory without it is not a repository yet. */
	rc = be->write(be, BACKUP_FT_CONFIG, "config", txt, strlen(txt), err);
	free(txt);
	return rc;
}

int backup_init(const char *path, const char *pass, size_t passlen,
                const struct backup_init_opts *opts, struct ward_err *err) {
	struct backup_backend *be = backup_backend_local(path);
	int rc = backup_init_backend(be, pass, passlen, opts, err);
	be->free(be);
	return rc;
}

/* Tries one key file; 0 with master filled, BACKUP_ERR_PASSPHRASE, or another error. */
static int try_key(struct backup_repo *r, const char *name, const char *pass, size_t passlen,
                   uint8_t master[BACKUP_KEY_LEN], struct ward_err *err) {
	struct buf txt = BUF_INIT, plain = BUF_INIT;
	json_error_t je;
	json_t *o = NULL;
	const char *salt_hex, *sealed_hex;
	json_int_t ops, mem;
	uint8_t salt[crypto_pwhash_SALTBYTES], pk[BACKUP_KEY_LEN], *sealed = NULL;
	struct backup_seal_key sk;
	size_t slen;
	int rc = r->be->read(r->be, BACKUP_FT_KEY, name, 0, 0, &txt, err);

	if (rc)
		goto out;
	rc = BACKUP_ERR_CORRUPT;
	o = json_loadb(txt.data, txt.len, 0, &je);
	if (!o ||
	    json_unpack(o, "{s:I, s:I, s:s, s:s}", "ops", &ops, "mem", &mem, "salt", &salt_hex,
	                "sealed", &sealed_hex) != 0 ||
	    ops < 1 || ops > 64 || mem < 8192 || mem > ((json_int_t)4 << 30) ||
	    ward_unhex(salt_hex, strlen(salt_hex), salt, sizeof(salt)) != 0 ||
	    strlen(sealed_hex) != 2 * (BACKUP_KEY_LEN + BACKUP_SEAL_OVERHEAD)) {
		ward_err_set(err, "keys/%s is not a valid key file", name);
		goto out;
	}
	slen = strlen(sealed_hex) / 2;
	sealed = ward_xmalloc(slen);
	if (ward_unhex(sealed_hex, 2 * slen, sealed, slen) != 0) {
		ward_err_set(err, "keys/%s is not a valid key file", name);
		goto out;
	}
	rc = derive_pass_key(pass, passlen, salt, (uint64_t)ops, (size_t)mem, pk, err);
	if (rc)
		goto out;
	backup_seal_key_set(&sk, pk, BACKUP_CIPHER_XCHACHA20_POLY1305); /* see write_key */
	if (backup_open_sealed(&sk, sealed, slen, r->id, strlen(r->id), &plain) != 0 ||
	    plain.len != BACKUP_KEY_LEN) {
		rc = BACKUP_ERR_PASSPHRASE;
		goto out;
	}
	memcpy(master, plain.data, BACKUP_KEY_LEN);
	rc = 0;
out:
	sodium_memzero(pk, sizeof(pk));
	sodium_memzero(&sk, sizeof(sk));
	if (plain.data)
		sodium_memzero(plain.data, plain.cap);
	buf_free(&plain);
	buf_free(&txt);
	free(sealed);
	json_decref(o);
	return rc;
}

int backup_open_backend(struct backup_backend *be, const char *pass, size_t passlen,
                        struct backup_repo **out, struct ward_err *err) {
	struct backup_repo *r = ward_xcalloc(1, sizeof(*r));
	struct buf cfg = BUF_INIT;
	char **keys = NULL;
	size_t nkeys = 0;
	uint8_t master[BACKUP_KEY_LEN];
	int rc;

	*out = NULL;
	r->be = be;
	r->kdf_ops = DEF_KDF_OPS;
	r->kdf_mem = DEF_KDF_MEM;
	bindex_init(&r->idx);
	if (ward_crypto_init() != 0) {
		ward_err_set(err, "libsodium failed to initialise");
		rc = BACKUP_ERR_IO;
		goto fail;
	}
	rc = be->read(be, BACKUP_FT_CONFIG, "config", 0, 0, &cfg, err);
	if (rc == BACKUP_ERR_NOTFOUND) {
		ward_err_set(err,
		             "%s is not a backup repository (no config file); create one with "
		             "'ward backup init'",
		             be->location);
		goto fail;
	}
	if (rc || (rc = parse_config(r, cfg.data, cfg.len, err)) != 0)
		goto fail;
	if ((rc = backup_list_names(r, BACKUP_FT_KEY, &keys, &nkeys, err)) != 0)
		goto fail;
	rc = BACKUP_ERR_PASSPHRASE;
	for (size_t i = 0; i < nkeys && rc == BACKUP_ERR_PASSPHRASE; i++) {
		struct ward_err kerr;
		ward_err_clear(&kerr);
		rc = try_key(r, keys[i], pass, passlen, master, &kerr);
		if (rc == 0)
			snprintf(r->key_id, sizeof(r->key_id), "%s", keys[i]);
		else if (rc != BACKUP_ERR_PASSPHRASE)
			rc = BACKUP_ERR_PASSPHRASE; /* a broken key file does not hide the others */
	}
	if (rc) {
		ward_err_set(err,
		             "wrong passphrase: none of the %zu keys of %s opens with it (check "
		             "--password-file or WARD_BACKUP_PASSWORD)",
		             nkeys, be->location);
		goto fail;
	}
	{
		uint8_t enc[BACKUP_KEY_LEN], idk[BACKUP_KEY_LEN];
		backup_derive_keys(master, enc, idk);
		backup_seal_key_set(&r->enc_key, enc, r->cipher);
		backup_id_key_set(&r->id_key, idk, r->id_hash);
		sodium_memzero(enc, sizeof(enc));
		sodium_memzero(idk, sizeof(idk));
	}
	memcpy(r->master, master, sizeof(master));
	sodium_memzero(master, sizeof(master));
	backup_names_free(keys, nkeys);
	buf_free(&cfg);
	*out = r;
	return 0;
fail:
	backup_names_free(keys, nkeys);
	buf_free(&cfg);
	backup_close(r);
	return rc;
}

int backup_open(const char *path, const char *pass, size_t passlen, struct backup_repo **out,
                struct ward_err *err) {
	return backup_open_backend(backup_backend_local(path), pass, passlen, out, err);
}

void backup_close(struct backup_repo *r) {
	if (!r)
		return;
	backup_unlock(r);
	sodium_memzero(r->master, sizeof(r->master));
	sodium_memzero(&r->enc_key, sizeof(r->enc_key));
	sodium_memzero(&r->id_key, sizeof(r->id_key));
	bindex_free(&r->idx);
	backup_writer_free(r);
	idset_free(&r->pending);
	backup_names_free(r->index_files, r->nindex_files);
	backup_names_free(r->written_index, r->nwritten_index);
	ZSTD_freeDCtx(r->zd);
	buf_free(&r->scratch);
	buf_free(&r->scratch2);
	if (r->be)
		r->be->free(r->be);
	free(r);
}

const char *backup_repo_id(const struct backup_repo *r) {
	return r->id;
}
const char *backup_repo_key_id(const struct backup_repo *r) {
	return r->key_id;
}
void backup_set_kdf(struct backup_repo *r, uint64_t ops, size_t mem) {
	r->kdf_ops = ops;
	r->kdf_mem = mem;
}

/* ---- keys ---- */
int backup_key_add(struct backup_repo *r, const char *pass, size_t passlen,
                   char id_out[BACKUP_HEX_LEN], struct ward_err *err) {
	if (passlen == 0) {
		ward_err_set(err, "the new passphrase is empty");
		return BACKUP_ERR_USAGE;
	}
	return write_key(r->be, r->id, r->master, pass, passlen, r->kdf_ops, r->kdf_mem, id_out,
	                 err);
}

static int key_info_cmp(const void *a, const void *b) {
	const struct backup_key_info *x = a, *y = b;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

int backup_key_list(struct backup_repo *r, struct backup_key_info **out, size_t *n,
                    struct ward_err *err) {
	char **names = NULL;
	size_t nn = 0;
	struct backup_key_info *v;
	struct buf txt = BUF_INIT;
	int rc = backup_list_names(r, BACKUP_FT_KEY, &names, &nn, err);

	if (rc)
		return rc;
	v = ward_xcalloc(nn ? nn : 1, sizeof(*v));
	for (size_t i = 0; i < nn; i++) {
		json_t *o;
		snprintf(v[i].id, sizeof(v[i].id), "%s", names[i]);
		v[i].current = strcmp(names[i], r->key_id) == 0;
		if (r->be->read(r->be, BACKUP_FT_KEY, names[i], 0, 0, &txt, NULL) != 0)
			continue;
		o = json_loadb(txt.data, txt.len, 0, NULL);
		if (o) {
			json_t *c = json_object_get(o, "created_ms");
			snprintf(v[i].host, sizeof(v[i].host), "%s",
			         json_string_value(json_object_get(o, "host")) ?: "");
			snprintf(v[i].user, sizeof(v[i].user), "%s",
			         json_string_value(json_object_get(o, "user")) ?: "");
			v[i].created_ms = json_is_integer(c) ? json_integer_value(c) : 0;
		}
		json_decref(o);
	}
	buf_free(&txt);
	if (nn > 1)
		qsort(v, nn, sizeof(*v), key_info_cmp);
	backup_names_free(names, nn);
	*out = v;
	*n = nn;
	return 0;
}

int backup_key_remove(struct backup_repo *r, const char *id, struct ward_err *err) {
	char **names = NULL, *match = NULL;
	size_t nn = 0, hits = 0;
	int rc;

	if (!id || !id[0]) {
		ward_err_set(err, "give the id of the key to remove ('ward backup key list')");
		return BACKUP_ERR_USAGE;
	}
	rc = backup_lock(r, true, err);
	if (rc)
		return rc;
	rc = backup_list_names(r, BACKUP_FT_KEY, &names, &nn, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < nn; i++)
		if (ward_has_prefix(names[i], id)) {
			match = names[i];
			hits++;
		}
	if (hits != 1) {
		ward_err_set(err,
		             hits ? "key id \"%s\" is ambiguous: give more digits"
		                  : "no key with id \"%s\" ('ward backup key list' shows them)",
		             id);
		rc = hits ? BACKUP_ERR_USAGE : BACKUP_ERR_NOTFOUND;
		goto out;
	}
	if (nn == 1) {
		ward_err_set(err,
		             "key %.8s is the last key of the repository: add another first, "
		             "or the data can never be read again",
		             match);
		rc = BACKUP_ERR_USAGE;
		goto out;
	}
	if (strcmp(match, r->key_id) == 0) {
		ward_err_set(err,
		             "key %.8s is the one this passphrase opened: remove it with "
		             "another passphrase",
		             match);
		rc = BACKUP_ERR_USAGE;
		goto out;
	}
	rc = r->be->remove(r->be, BACKUP_FT_KEY, match, err);
out:
	backup_names_free(names, nn);
	backup_unlock(r);
	return rc;
}

/* ---- locks ---- */
struct lock_info {
	bool exclusive;
	char host[256];
	long pid;
	int64_t time_ms;
};

static int parse_lock(const char *txt, size_t n, struct lock_info *li) {
	json_t *o = json_loadb(txt, n, 0, NULL);
	json_int_t pid = 0, t = 0;
	int ex = 0;
	const char *host = "";
	int rc = -1;
	if (o && json_unpack(o, "{s:b, s:s, s:I, s:I}", "exclusive", &ex, "host", &host, "pid",
	                     &pid, "time_ms", &t) == 0) {
		li->exclusive = ex;
		snprintf(li->host, sizeof(li->host), "%s", host);
		li->pid = (long)pid;
		li->time_ms = t;
		rc = 0;
	}
	json_decref(o);
	return rc;
}

static bool lock_stale(const struct lock_info *li) {
	char host[256];
	if (ward_now_ms() - li->time_ms > (int64_t)BACKUP_LOCK_STALE_S * 1000)
		return true;
	host_name(host, sizeof(host));
	if (strcmp(host, li->host) == 0 && li->pid > 0 && kill((pid_t)li->pid, 0) != 0 &&
	    errno == ESRCH)
		return true;
	return false;
}

static int write_lock(struct backup_repo *r, struct ward_err *err) {
	char host[256], when[32], *txt;
	json_t *o;
	int rc;
	int64_t now = ward_now_ms();

	host_name(host, sizeof(host));
	ward_fmt_rfc3339(now, when);
	o = json_pack("{s:b, s:s, s:I, s:I, s:s}", "exclusive", r->lock_excl, "host", host, "pid",
	              (json_int_t)getpid(), "time_ms", (json_int_t)now, "time", when);
	txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	rc = r->be->write(r->be, BACKUP_FT_LOCK, r->lock_name, txt, strlen(txt), err);
	free(txt);
	if (rc == 0)
		r->lock_refreshed_ms = ward_mono_ms();
	return rc;
}

int backup_lock(struct backup_repo *r, bool exclusive, struct ward_err *err) {
	char **names = NULL;
	size_t nn = 0;
	struct buf txt = BUF_INIT;
	int rc;

	if (r->locked)
		return 0;
	random_name(r->lock_name);
	r->lock_excl = exclusive;
	rc = write_lock(r, err);
	if (rc)
		return rc;
	r->locked = true;
	rc = backup_list_names(r, BACKUP_FT_LOCK, &names, &nn, err);
	if (rc)
		goto fail;
	for (size_t i = 0; i < nn; i++) {
		struct lock_info li;
		char when[32];
		if (strcmp(names[i], r->lock_name) == 0)
			continue;
		if (r->be->read(r->be, BACKUP_FT_LOCK, names[i], 0, 0, &txt, NULL) != 0 ||
		    parse_lock(txt.data, txt.len, &li) != 0 || lock_stale(&li))
			continue;
		if (!exclusive && !li.exclusive)
			continue;
		ward_fmt_rfc3339(li.time_ms, when);
		ward_err_set(err,
		             "%s is locked (%s lock %.8s by pid %ld on %s, refreshed %s): wait "
		             "for it to finish; a lock older than %d minutes or of a dead process "
		             "is ignored",
		             r->be->location, li.exclusive ? "exclusive" : "shared", names[i],
		             li.pid, li.host, when, BACKUP_LOCK_STALE_S / 60);
		rc = BACKUP_ERR_LOCKED;
		goto fail;
	}
	backup_names_free(names, nn);
	buf_free(&txt);
	return 0;
fail:
	backup_names_free(names, nn);
	buf_free(&txt);
	backup_unlock(r);
	return rc;
}

void backup_lock_refresh(struct backup_repo *r) {
	if (r->locked && ward_mono_ms() - r->lock_refreshed_ms > LOCK_REFRESH_MS)
		write_lock(r, NULL);
}

void backup_unlock(struct backup_repo *r) {
	if (!r->locked)
		return;
	r->be->remove(r->be, BACKUP_FT_LOCK, r->lock_name, NULL);
	r->locked = false;
}

int backup_unlock_stale(struct backup_repo *r, struct ward_err *err) {
	char **names = NULL;
	size_t nn = 0;
	struct buf txt = BUF_INIT;
	int rc = backup_list_names(r, BACKUP_FT_LOCK, &names, &nn, err), removed = 0;

	if (rc)
		return rc;
	for (size_t i = 0; i < nn; i++) {
		struct lock_info li;
		if (r->locked && strcmp(names[i], r->lock_name) == 0)
			continue;
		if (r->be->read(r->be, BACKUP_FT_LOCK, names[i], 0, 0, &txt, NULL) != 0)
			continue;
		if (parse_lock(txt.data, txt.len, &li) != 0 || lock_stale(&li)) {
			if (r->be->remove(r->be, BACKUP_FT_LOCK, names[i], NULL) == 0)
				removed++;
		}
	}
	buf_free(&txt);
	backup_names_free(names, nn);
	return removed;
}
