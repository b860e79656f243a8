/* fuzz_backup_snapshot.c: libFuzzer target for the tree and snapshot decoders
 * (backup_tree_decode, backup_snapshot_decode in src/backup/format.c): the two decoders of
 * metadata a restore trusts. The first byte picks the decoder. Any input must be refused or
 * decoded without a crash or leak; a decoded tree must hold only safe, sorted, unique names
 * and re-encode to the input; a decoded snapshot must re-encode and decode to the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void tree(const uint8_t *data, size_t size) {
	struct backup_tree t;
	struct ward_err err = {{0}};
	struct buf again = BUF_INIT;

	if (backup_tree_decode(data, size, &t, &err) != 0)
		return;
	for (size_t i = 0; i < t.n; i++) {
		const char *nm = t.v[i].name;
		if (!nm[0] || strchr(nm, '/') || !strcmp(nm, ".") || !strcmp(nm, ".."))
			abort();
		if (i && strcmp(t.v[i - 1].name, nm) >= 0)
			abort();
	}
	backup_tree_encode(&t, &again);
	if (again.len != size || memcmp(again.data, data, size) != 0)
		abort();
	buf_free(&again);
	backup_tree_free(&t);
}

static void snapshot(const uint8_t *data, size_t size) {
	struct backup_snapshot s = {0}, u = {0};
	struct ward_err err = {{0}};
	struct buf a = BUF_INIT, b = BUF_INIT;

	if (backup_snapshot_decode(data, size, &s, &err) != 0)
		return;
	backup_snapshot_encode(&s, &a);
	if (backup_snapshot_decode((const uint8_t *)a.data, a.len, &u, &err) != 0)
		abort();
	backup_snapshot_encode(&u, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	backup_snapshot_clear(&s);
	backup_snapshot_clear(&u);
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size < 1)
		return 0;
	if (data[0] & 1)
		snapshot(data + 1, size - 1);
	else
		tree(data + 1, size - 1);
	return 0;
}
