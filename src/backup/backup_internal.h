/* backup_internal.h: what the files of src/backup share and nobody else sees: the chunker,
 * the crypto envelope, the binary codecs (pack header, index, tree), the in-memory index,
 * the pack writer and the repository struct. The codecs are pure (pointer + length in,
 * structs out) so the fuzz targets and unit tests can drive them directly.
 */
#ifndef WARD_BACKUP_INTERNAL_H
#define WARD_BACKUP_INTERNAL_H

#include "backup/backup.h"

#define BACKUP_FORMAT_VERSION 1
#define BACKUP_KEY_LEN        32
/* nonce (24) + tag (16): what sealing adds to a plaintext. */
#define BACKUP_NONCE_LEN     24
#define BACKUP_TAG_LEN       16
#define BACKUP_SEAL_OVERHEAD (BACKUP_NONCE_LEN + BACKUP_TAG_LEN)

#define BACKUP_DEF_MIN (512u * 1024)
#define BACKUP_DEF_AVG (1024u * 1024)
#define BACKUP_DEF_MAX (8u * 1024 * 1024)
/* Chunker bounds accepted from a config: small enough for tests, large enough to be sane. */
#define BACKUP_CDC_MIN_LIMIT 64u
#define BACKUP_CDC_MAX_LIMIT (64u * 1024 * 1024)
/* A pack is closed once it holds this much: big enough that a 300 GiB repository has few
 * tens of thousands of files, small enough to hold in memory while it is written. */
#define BACKUP_PACK_TARGET (16u * 1024 * 1024)
/* Decoders refuse counts above these, so hostile input cannot make us allocate much. */
#define BACKUP_MAX_PACK_BLOBS   (1u << 20)
#define BACKUP_MAX_TREE_ENTRIES (1u << 22)
#define BACKUP_MAX_NAME         4096
#define BACKUP_MAX_FILE_CHUNKS  (1u << 28)
/* A tree blob or snapshot larger than this is corrupt. */
#define BACKUP_MAX_META (256u * 1024 * 1024)

enum backup_blob_type { BLOB_DATA = 0, BLOB_TREE = 1 };
#define BLOB_F_ZSTD 1 /* the blob's plaintext is zstd-compressed */

/* ---- chunker (chunker.c) ---- */
struct backup_chunker {
	uint64_t gear[256];
	size_t min, avg, max;
	uint64_t mask_s, mask_l; /* the harder mask before avg, the easier after */
};
void backup_chunker_init(struct backup_chunker *c, size_t min, size_t avg, size_t max);
/* Length of the first chunk of p[0..n). When n < max and more data may follow, the caller
 * must only take the cut when it is < n (or when at_eof). */
size_t backup_chunker_cut(const struct backup_chunker *c, const uint8_t *p, size_t n);

/* ---- crypto (crypto.c) ---- */
/* A repository's choices (config "cipher" and "id_hash"); 0 is what a config without the
 * field means. */
enum backup_cipher { BACKUP_CIPHER_XCHACHA20_POLY1305 = 0, BACKUP_CIPHER_XAES_256_GCM = 1 };
enum backup_id_hash { BACKUP_ID_BLAKE2B_KEYED = 0, BACKUP_ID_HMAC_SHA256 = 1 };
/* The config spelling ("xchacha20-poly1305", "xaes-256-gcm"; "blake2b-256-keyed",
 * "hmac-sha256"), and back: 0 or -1 for a name this ward does not know. */
const char *backup_cipher_name(enum backup_cipher c);
const char *backup_id_hash_name(enum backup_id_hash h);
int backup_cipher_parse(const char *s, enum backup_cipher *out);
int backup_id_hash_parse(const char *s, enum backup_id_hash *out);
#define BACKUP_CIPHER_NAMES  "xchacha20-poly1305, xaes-256-gcm"
#define BACKUP_ID_HASH_NAMES "blake2b-256-keyed, hmac-sha256"

/* A sealing key with its cipher; read-only once set, so threads share it. */
struct backup_seal_key {
	uint8_t key[BACKUP_KEY_LEN];
	uint8_t k1[16]; /* XAES-256-GCM: the CMAC subkey K1 of key, precomputed */
	enum backup_cipher cipher;
};
/* An id key with its hash. */
struct backup_id_key {
	uint8_t key[BACKUP_KEY_LEN];
	enum backup_id_hash hash;
};
void backup_seal_key_set(struct backup_seal_key *k, const uint8_t key[BACKUP_KEY_LEN],
                         enum backup_cipher cipher);
void backup_id_key_set(struct backup_id_key *k, const uint8_t key[BACKUP_KEY_LEN],
                       enum backup_id_hash hash);
/* out = nonce(24, random) || ciphertext || tag(16) of p under k with ad. Appends to out. */
void backup_seal(const struct backup_seal_key *k, const void *p, size_t n, const void *ad,
                 size_t adlen, struct buf *out);
/* As backup_seal into dst, which has room for exactly n + BACKUP_SEAL_OVERHEAD bytes. */
void backup_seal_to(const struct backup_seal_key *k, const void *p, size_t n, const void *ad,
                    size_t adlen, uint8_t *dst);
/* As backup_seal with the caller's nonce: for test vectors only (a nonce must never repeat
 * under one key). */
void backup_seal_nonce(const struct backup_seal_key *k, const uint8_t nonce[BACKUP_NONCE_LEN],
                       const void *p, size_t n, const void *ad, size_t adlen, struct buf *out);
/* Opens a sealed message; appends the plaintext to out. 0 or -1 (forged / truncated). */
int backup_open_sealed(const struct backup_seal_key *k, const void *c, size_t n, const void *ad,
                       size_t adlen, struct buf *out);
/* Chunk/tree id: the keyed hash of p (BLAKE2b-256 keyed, or HMAC-SHA256). */
void backup_blob_id(const struct backup_id_key *k, const void *p, size_t n,
                    uint8_t out[BACKUP_ID_LEN]);
/* Derives the encryption and id keys from a master key. */
void backup_derive_keys(const uint8_t master[BACKUP_KEY_LEN], uint8_t enc[BACKUP_KEY_LEN],
                        uint8_t idk[BACKUP_KEY_LEN]);

/* ---- pack header (format.c) ---- */
struct backup_pack_entry {
	uint8_t type;  /* enum backup_blob_type */
	uint8_t flags; /* BLOB_F_* */
	uint8_t id[BACKUP_ID_LEN];
	uint64_t offset;  /* of the sealed blob in the pack */
	uint32_t length;  /* sealed length */
	uint32_t raw_len; /* plaintext length before compression */
};
void backup_pack_header_encode(const struct backup_pack_entry *e, size_t n, struct buf *out);
/* Decodes a plaintext header; checks that blobs lie inside data_len bytes without overlap.
 * *out is a new array. 0 or -1 with err. */
int backup_pack_header_decode(const uint8_t *p, size_t n, uint64_t data_len,
                              struct backup_pack_entry **out, size_t *count, struct ward_err *err);

/* ---- index file (format.c) ---- */
struct backup_index_pack {
	uint8_t id[BACKUP_ID_LEN];
	struct backup_pack_entry *e;
	size_t n;
};
void backup_index_encode(const struct backup_index_pack *packs, size_t n, struct buf *out);
int backup_index_decode(const uint8_t *p, size_t n, struct backup_index_pack **out, size_t *count,
                        struct ward_err *err);
void backup_index_packs_free(struct backup_index_pack *v, size_t n);

/* ---- tree (format.c) ---- */
struct backup_tree {
	struct backup_node *v; /* sorted by name, names unique */
	size_t n, cap;
};
void backup_tree_encode(const struct backup_tree *t, struct buf *out);
int backup_tree_decode(const uint8_t *p, size_t n, struct backup_tree *t, struct ward_err *err);
void backup_tree_free(struct backup_tree *t);
void backup_node_clear(struct backup_node *n);
/* Adds a copy of nothing: returns a zeroed slot at the end (caller fills, then sorts). */
struct backup_node *backup_tree_push(struct backup_tree *t);
void backup_tree_sort(struct backup_tree *t);
const struct backup_node *backup_tree_find(const struct backup_tree *t, const char *name);

/* ---- snapshot (format.c) ---- */
void backup_snapshot_encode(const struct backup_snapshot *s, struct buf *out);
/* Decodes JSON into *s (members new; id untouched). */
int backup_snapshot_decode(const uint8_t *p, size_t n, struct backup_snapshot *s,
                           struct ward_err *err);
void backup_snapshot_clear(struct backup_snapshot *s);

/* ---- in-memory index (index.c) ---- */
struct bindex_ent {
	uint8_t id[BACKUP_ID_LEN];
	uint32_t pack; /* index into bindex.packs */
	uint8_t type, flags;
	uint64_t offset;
	uint32_t length, raw_len;
};
struct bindex {
	struct bindex_ent *slots; /* open addressing; empty slot: pack == UINT32_MAX */
	size_t cap, n;
	uint8_t (*packs)[BACKUP_ID_LEN];
	size_t npacks, packs_cap;
};
void bindex_init(struct bindex *x);
void bindex_free(struct bindex *x);
uint32_t bindex_pack(struct bindex *x, const uint8_t id[BACKUP_ID_LEN]); /* adds or finds */
/* Adds an entry (keeps the first one seen for an id). */
void bindex_add(struct bindex *x, uint32_t pack, const struct backup_pack_entry *e);
const struct bindex_ent *bindex_get(const struct bindex *x, const uint8_t id[BACKUP_ID_LEN]);

/* ---- a set of ids (index.c) ---- */
struct idset {
	uint8_t (*v)[BACKUP_ID_LEN];
	uint8_t *used;
	size_t cap, n;
};
void idset_init(struct idset *s);
void idset_free(struct idset *s);
bool idset_add(struct idset *s, const uint8_t id[BACKUP_ID_LEN]); /* true when new */
bool idset_has(const struct idset *s, const uint8_t id[BACKUP_ID_LEN]);

/* ---- repository (repo.c) ---- */
struct backup_packer {
	struct buf data; /* sealed blobs so far */
	struct backup_pack_entry *e;
	size_t n, cap;
};
struct backup_repo {
	struct backup_backend *be;
	char id[BACKUP_HEX_LEN];
	char key_id[BACKUP_HEX_LEN];
	uint8_t master[BACKUP_KEY_LEN]; /* kept to seal it under new passphrases; zeroed on close */
	struct backup_seal_key enc_key; /* with the config's cipher */
	bool sha256_names;              /* config version 2: files are named by SHA-256 */
	struct backup_id_key id_key;    /* with the config's id_hash */
	enum backup_cipher cipher;      /* config "cipher" */
	enum backup_id_hash id_hash;    /* config "id_hash" */
	size_t chunk_min, chunk_avg, chunk_max;
	int zstd_level;
	int zstd_large_level; /* chunks of at least chunk_min; the config's large_level */
	uint64_t kdf_ops;
	size_t kdf_mem;
	struct bindex idx;
	bool idx_loaded;
	struct backup_writer *w; /* compress/seal/write threads while storing (writer.c) */
	struct idset pending;    /* ids queued or in packs not yet merged into idx */
	char **index_files;      /* names of index files loaded (for prune) */
	size_t nindex_files;
	char **written_index; /* index files written through this repo */
	size_t nwritten_index;
	uint64_t bytes_stored; /* sealed bytes written into packs */
	/* Data chunks put_data found new, and their plaintext bytes: written by the writer
	 * threads under their lock, read after backup_data_ready/wait or backup_flush. */
	uint64_t data_added, data_added_blobs;
	char lock_name[BACKUP_HEX_LEN];
	bool locked, lock_excl;
	int64_t lock_refreshed_ms;
	void *zd; /* ZSTD_DCtx for reading */
	struct buf scratch, scratch2;
};

/* Loads every index file into r->idx (once). A damaged index file is an error unless
 * tolerate is set (check reports it and continues). */
int backup_load_index(struct backup_repo *r, bool tolerate, backup_check_fn fn, void *arg,
                      struct ward_err *err);
/* Stores a blob unless the index has it. *added tells whether it was new. Flushes a full
 * pack (pack file, then its index file). */
int backup_put_blob(struct backup_repo *r, enum backup_blob_type type, const void *p, size_t n,
                    const uint8_t id[BACKUP_ID_LEN], bool *added, struct ward_err *err);
/* Queues a data chunk whose id a writer thread computes, then stores it unless the index has
 * it. Tickets count up from 0 in the order of the calls. Every ticket below the mark that
 * backup_data_ready reports (without waiting) or below the one backup_data_wait waits for
 * (all of them) has its id: backup_data_id(r, ticket) reads it until the caller calls
 * backup_data_release(r, upto), which says tickets below upto are no longer needed. */
int backup_put_data(struct backup_repo *r, const void *p, size_t n, uint64_t *ticket,
                    struct ward_err *err);
int backup_data_ready(struct backup_repo *r, uint64_t *ready, struct ward_err *err);
int backup_data_wait(struct backup_repo *r, uint64_t *ready, struct ward_err *err);
const uint8_t *backup_data_id(struct backup_repo *r, uint64_t ticket);
void backup_data_release(struct backup_repo *r, uint64_t upto);
/* Tells the backend that the blobs will be read soon (a hint; unknown ids are skipped). */
void backup_prefetch(struct backup_repo *r, const uint8_t (*ids)[BACKUP_ID_LEN], size_t n);
/* r->data_added and r->data_added_blobs, read under the writers' lock. */
void backup_data_added(struct backup_repo *r, uint64_t *bytes, uint64_t *blobs);
/* Waits for the writer threads, writes the open packs and their index files, and merges
 * everything written into r->idx. The sync point: after it every stored blob is durable,
 * indexed on disk and readable. */
int backup_flush(struct backup_repo *r, struct ward_err *err);
/* Stops the writer threads without flushing (close on an error path). */
void backup_writer_free(struct backup_repo *r);
/* Writer threads used while storing: hashing of data chunks, compression and sealing run
 * there (and two more threads write the pack files), so reading and chunking overlap with
 * all of it. */
#define BACKUP_WRITER_THREADS 2
/* Reads, decrypts, decompresses and verifies a blob into out (replacing its content). */
int backup_get_blob(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], struct buf *out,
                    struct ward_err *err);
/* Decrypts one sealed blob given its index data (shared by get_blob and check). */
int backup_decode_blob(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], uint8_t flags,
                       uint32_t raw_len, const uint8_t *sealed, size_t n, struct buf *out,
                       struct ward_err *err);
/* A reader of blobs for another thread (restore workers): its own scratch state; the repo
 * is only read, so several readers may work at once while nothing stores or loads the index. */
struct backup_reader;
struct backup_reader *backup_reader_new(void);
void backup_reader_free(struct backup_reader *rd);
int backup_reader_get(struct backup_repo *r, struct backup_reader *rd,
                      const uint8_t id[BACKUP_ID_LEN], struct buf *out, struct ward_err *err);
int backup_load_tree(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], struct backup_tree *t,
                     struct ward_err *err);
/* Encodes, stores and returns the id of a tree. */
int backup_save_tree(struct backup_repo *r, const struct backup_tree *t,
                     uint8_t id_out[BACKUP_ID_LEN], struct ward_err *err);
int backup_write_snapshot(struct backup_repo *r, struct backup_snapshot *s, struct ward_err *err);
/* Locks: shared or exclusive. BACKUP_ERR_LOCKED when a live conflicting lock exists. */
int backup_lock(struct backup_repo *r, bool exclusive, struct ward_err *err);
void backup_lock_refresh(struct backup_repo *r);
void backup_unlock(struct backup_repo *r);
/* Name of a file that is its content's hash (packs, indexes, snapshots): BLAKE2b-256 in a
 * version-1 repository, SHA-256 in a version-2 one (r->sha256_names). */
void backup_content_name(const struct backup_repo *r, const void *p, size_t n,
                         char out[BACKUP_HEX_LEN]);
/* Writes a sealed file named by its content hash; returns the name. */
int backup_write_sealed(struct backup_repo *r, enum backup_ftype t, const struct buf *plain,
                        char name_out[BACKUP_HEX_LEN], struct ward_err *err);
/* Reads a sealed file, checks its name against its hash, and opens it into out. */
int backup_read_sealed(struct backup_repo *r, enum backup_ftype t, const char *name,
                       struct buf *out, struct ward_err *err);
/* Lists names of a type into a new array of new strings, sorted. */
int backup_list_names(struct backup_repo *r, enum backup_ftype t, char ***out, size_t *n,
                      struct ward_err *err);
void backup_names_free(char **v, size_t n);
void backup_progress_emit(struct backup_progress *p, int64_t start_ms, int64_t *last_ms, bool final,
                          backup_progress_fn fn, void *arg);

/* ---- glob helpers (archive.c) ---- */
bool backup_glob_match(const char *const *pats, size_t n, const char *path, const char *name);

#endif
