/* backup_format.c: unit tests for the repository's crypto envelope and codecs: sealing round
 * trips and detects any flipped byte, keyed ids depend on the key, and pack headers, index
 * files, trees and snapshots decode to what was encoded while truncated or hostile input is
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/backup_internal.h"

static void seal_round_trips_and_detects_tampering_with(enum backup_cipher cipher) {
	uint8_t raw[BACKUP_KEY_LEN], raw2[BACKUP_KEY_LEN];
	struct backup_seal_key key, other, other_cipher;
	struct buf c = BUF_INIT, p = BUF_INIT;
	const char *msg = "the quick brown fox";

	assert_int_equal(ward_crypto_init(), 0);
	ward_random_bytes(raw, sizeof(raw));
	ward_random_bytes(raw2, sizeof(raw2));
	backup_seal_key_set(&key, raw, cipher);
	backup_seal_key_set(&other, raw2, cipher);
	backup_seal_key_set(&other_cipher, raw,
	                    cipher == BACKUP_CIPHER_XAES_256_GCM ? BACKUP_CIPHER_XCHACHA20_POLY1305
	                                                         : BACKUP_CIPHER_XAES_256_GCM);
	backup_seal(&key, msg, strlen(msg), "ad", 2, &c);
	assert_int_equal(c.len, strlen(msg) + BACKUP_SEAL_OVERHEAD);
	assert_int_equal(backup_open_sealed(&key, c.data, c.len, "ad", 2, &p), 0);
	assert_int_equal(p.len, strlen(msg));
	assert_memory_equal(p.data, msg, p.len);
	/* Every single flipped byte is detected. */
	for (size_t i = 0; i < c.len; i++) {
		c.data[i] ^= 0x01;
		buf_reset(&p);
		assert_int_not_equal(backup_open_sealed(&key, c.data, c.len, "ad", 2, &p), 0);
		assert_int_equal(p.len, 0);
		c.data[i] ^= 0x01;
	}
	assert_int_not_equal(backup_open_sealed(&other, c.data, c.len, "ad", 2, &p), 0);
	assert_int_not_equal(backup_open_sealed(&other_cipher, c.data, c.len, "ad", 2, &p), 0);
	assert_int_not_equal(backup_open_sealed(&key, c.data, c.len, "xx", 2, &p), 0);
	assert_int_not_equal(backup_open_sealed(&key, c.data, 10, "ad", 2, &p), 0);
	/* Two seals of the same text differ (fresh nonces). */
	{
		struct buf c2 = BUF_INIT;
		backup_seal(&key, msg, strlen(msg), "ad", 2, &c2);
		assert_memory_not_equal(c.data, c2.data, c.len);
		buf_free(&c2);
	}
	/* The empty message seals to the overhead alone and opens to nothing. */
	buf_reset(&c);
	buf_reset(&p);
	backup_seal(&key, "", 0, NULL, 0, &c);
	assert_int_equal(c.len, BACKUP_SEAL_OVERHEAD);
	assert_int_equal(backup_open_sealed(&key, c.data, c.len, NULL, 0, &p), 0);
	assert_int_equal(p.len, 0);
	buf_free(&c);
	buf_free(&p);
}

static void seal_round_trips_and_detects_tampering(void **state) {
	seal_round_trips_and_detects_tampering_with(BACKUP_CIPHER_XCHACHA20_POLY1305);
	seal_round_trips_and_detects_tampering_with(BACKUP_CIPHER_XAES_256_GCM);
}

static void blob_ids_are_keyed(void **state) {
	uint8_t k1[BACKUP_KEY_LEN] = {1}, k2[BACKUP_KEY_LEN] = {2}, a[32], b[32], c[32], d[32];
	struct backup_id_key i1, i2, i3;

	for (int h = 0; h < 2; h++) {
		backup_id_key_set(&i1, k1, (enum backup_id_hash)h);
		backup_id_key_set(&i2, k2, (enum backup_id_hash)h);
		backup_id_key_set(&i3, k1, (enum backup_id_hash)!h);
		backup_blob_id(&i1, "data", 4, a);
		backup_blob_id(&i1, "data", 4, b);
		backup_blob_id(&i2, "data", 4, c);
		backup_blob_id(&i3, "data", 4, d);
		assert_memory_equal(a, b, 32);
		assert_memory_not_equal(a, c, 32);
		assert_memory_not_equal(a, d, 32); /* the hash is part of the id */
	}
}

static void fill_entries(struct backup_pack_entry *e, size_t n) {
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].type = i % 2;
		e[i].flags = BLOB_F_ZSTD;
		memset(e[i].id, (int)i + 1, BACKUP_ID_LEN);
		e[i].offset = off;
		e[i].length = 100 + (uint32_t)i;
		e[i].raw_len = 1000 + (uint32_t)i;
		off += e[i].length;
	}
}

static void pack_header_round_trips_and_checks_bounds(void **state) {
	struct backup_pack_entry e[5], *out = NULL;
	struct buf b = BUF_INIT;
	size_t n = 0;
	struct ward_err err;

	fill_entries(e, 5);
	backup_pack_header_encode(e, 5, &b);
	assert_int_equal(backup_pack_header_decode((uint8_t *)b.data, b.len, 510, &out, &n, &err),
	                 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, e, sizeof(e));
	free(out);
	/* Blobs past the data area, truncation and trailing bytes are refused. */
	assert_int_not_equal(
	        backup_pack_header_decode((uint8_t *)b.data, b.len, 509, &out, &n, &err), 0);
	for (size_t k = 0; k < b.len; k++)
		assert_int_not_equal(
		        backup_pack_header_decode((uint8_t *)b.data, k, 510, &out, &n, &err), 0);
	buf_putc(&b, 0);
	assert_int_not_equal(
	        backup_pack_header_decode((uint8_t *)b.data, b.len, 510, &out, &n, &err), 0);
	buf_free(&b);
}

static void index_round_trips(void **state) {
	struct backup_pack_entry e1[3], e2[2];
	struct backup_index_pack ip[2], *out = NULL;
	struct buf b = BUF_INIT;
	size_t n = 0;
	struct ward_err err;

	fill_entries(e1, 3);
	fill_entries(e2, 2);
	memset(ip[0].id, 0xaa, BACKUP_ID_LEN);
	ip[0].e = e1;
	ip[0].n = 3;
	memset(ip[1].id, 0xbb, BACKUP_ID_LEN);
	ip[1].e = e2;
	ip[1].n = 2;
	backup_index_encode(ip, 2, &b);
	assert_int_equal(backup_index_decode((uint8_t *)b.data, b.len, &out, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out[0].id, ip[0].id, BACKUP_ID_LEN);
	assert_int_equal(out[1].n, 2);
	assert_memory_equal(out[0].e, e1, sizeof(e1));
	assert_memory_equal(out[1].e, e2, sizeof(e2));
	backup_index_packs_free(out, n);
	for (size_t k = 0; k < b.len; k++)
		assert_int_not_equal(backup_index_decode((uint8_t *)b.data, k, &out, &n, &err), 0);
	buf_free(&b);
}

static void tree_round_trips_every_type(void **state) {
	struct backup_tree t = {0}, u;
	struct backup_node *n;
	struct buf b = BUF_INIT;
	struct ward_err err;

	n = backup_tree_push(&t);
	n->name = ward_strdup("b-file");
	n->type = BACKUP_NODE_FILE;
	n->mode = 0644;
	n->uid = 1000;
	n->gid = 100;
	n->mtime_ns = 1732449063123456789;
	n->size = 3;
	n->inode = 77;
	n->dev = 5;
	n->nlink = 2;
	n->content = calloc(2, BACKUP_ID_LEN);
	memset(n->content[1], 9, BACKUP_ID_LEN);
	n->ncontent = 2;
	n = backup_tree_push(&t);
	n->name = ward_strdup("a-dir");
	n->type = BACKUP_NODE_DIR;
	n->mode = 0755;
	memset(n->subtree, 3, BACKUP_ID_LEN);
	n = backup_tree_push(&t);
	n->name = ward_strdup("c-link");
	n->type = BACKUP_NODE_SYMLINK;
	n->mode = 0777;
	n->target = ward_strdup("../somewhere else");
	n = backup_tree_push(&t);
	n->name = ward_strdup("d-dev");
	n->type = BACKUP_NODE_CHARDEV;
	n->rdev = 0x0103;
	backup_tree_sort(&t);
	backup_tree_encode(&t, &b);
	assert_int_equal(backup_tree_decode((uint8_t *)b.data, b.len, &u, &err), 0);
	assert_int_equal(u.n, 4);
	assert_string_equal(u.v[0].name, "a-dir");
	assert_memory_equal(u.v[0].subtree, t.v[0].subtree, BACKUP_ID_LEN);
	assert_int_equal(u.v[1].mtime_ns, 1732449063123456789);
	assert_int_equal(u.v[1].ncontent, 2);
	assert_memory_equal(u.v[1].content, t.v[1].content, 2 * BACKUP_ID_LEN);
	assert_int_equal(u.v[1].nlink, 2);
	assert_string_equal(u.v[2].target, "../somewhere else");
	assert_int_equal(u.v[3].rdev, 0x0103);
	assert_non_null(backup_tree_find(&u, "c-link"));
	assert_null(backup_tree_find(&u, "zzz"));
	backup_tree_free(&u);
	for (size_t k = 0; k < b.len; k++)
		assert_int_not_equal(backup_tree_decode((uint8_t *)b.data, k, &u, &err), 0);
	backup_tree_free(&t);
	buf_free(&b);
}

static void tree_decoder_refuses_escaping_names(void **state) {
	static const char *const bad[] = {"..", ".", "a/b"};
	for (size_t i = 0; i < 3; i++) {
		struct backup_tree t = {0}, u;
		struct buf b = BUF_INIT;
		struct ward_err err;
		struct backup_node *n = backup_tree_push(&t);
		n->name = ward_strdup(bad[i]);
		n->type = BACKUP_NODE_FILE;
		backup_tree_encode(&t, &b);
		assert_int_not_equal(backup_tree_decode((uint8_t *)b.data, b.len, &u, &err), 0);
		assert_non_null(strstr(err.msg, "bad name"));
		backup_tree_free(&t);
		buf_free(&b);
	}
}

static void snapshot_round_trips(void **state) {
	struct backup_snapshot s = {0}, u = {0};
	struct buf b = BUF_INIT;
	struct ward_err err;
	char *paths[] = {"/etc", "/home/x"}, *tags[] = {"daily"}, *unr[] = {"/etc/shadow"};

	s.time_ns = 1732449063000000001;
	s.host = "db1";
	s.user = "root";
	s.job = "etc";
	s.paths = paths;
	s.npaths = 2;
	s.tags = tags;
	s.ntags = 1;
	memset(s.tree, 0xab, BACKUP_ID_LEN);
	s.has_parent = true;
	memset(s.parent, 0xcd, BACKUP_ID_LEN);
	s.partial = true;
	s.unreadable = unr;
	s.nunreadable = 1;
	s.stats.files = 10;
	s.stats.bytes_added = 12345;
	backup_snapshot_encode(&s, &b);
	assert_int_equal(backup_snapshot_decode((uint8_t *)b.data, b.len, &u, &err), 0);
	assert_int_equal(u.time_ns, s.time_ns);
	assert_string_equal(u.host, "db1");
	assert_string_equal(u.job, "etc");
	assert_int_equal(u.npaths, 2);
	assert_string_equal(u.paths[1], "/home/x");
	assert_string_equal(u.tags[0], "daily");
	assert_memory_equal(u.tree, s.tree, BACKUP_ID_LEN);
	assert_true(u.has_parent);
	assert_memory_equal(u.parent, s.parent, BACKUP_ID_LEN);
	assert_true(u.partial);
	assert_string_equal(u.unreadable[0], "/etc/shadow");
	assert_int_equal(u.stats.files, 10);
	assert_int_equal(u.stats.bytes_added, 12345);
	backup_snapshot_clear(&u);
	assert_int_not_equal(backup_snapshot_decode((uint8_t *)"{}", 2, &u, &err), 0);
	assert_int_not_equal(backup_snapshot_decode((uint8_t *)b.data, b.len / 2, &u, &err), 0);
	buf_free(&b);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(seal_round_trips_and_detects_tampering),
	        cmocka_unit_test(blob_ids_are_keyed),
	        cmocka_unit_test(pack_header_round_trips_and_checks_bounds),
	        cmocka_unit_test(index_round_trips),
	        cmocka_unit_test(tree_round_trips_every_type),
	        cmocka_unit_test(tree_decoder_refuses_escaping_names),
	        cmocka_unit_test(snapshot_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
