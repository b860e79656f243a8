/* fuzz_backup_index.c: libFuzzer target for the index file decoder (backup_index_decode in
 * src/backup/format.c). Any input must be refused or decoded without a crash or leak, and a
 * decoded index must re-encode to exactly the input; the decoded entries then go through the
 * in-memory index, which must find every one of them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct backup_index_pack *p = NULL;
	struct ward_err err = {{0}};
	struct buf again = BUF_INIT;
	struct bindex x;
	size_t n = 0;

	if (backup_index_decode(data, size, &p, &n, &err) != 0)
		return 0;
	backup_index_encode(p, n, &again);
	if (again.len != size || memcmp(again.data, data, size) != 0)
		abort();
	bindex_init(&x);
	for (size_t i = 0; i < n; i++) {
		uint32_t pi = bindex_pack(&x, p[i].id);
		for (size_t j = 0; j < p[i].n; j++)
			bindex_add(&x, pi, &p[i].e[j]);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < p[i].n; j++)
			if (!bindex_get(&x, p[i].e[j].id))
				abort();
	bindex_free(&x);
	buf_free(&again);
	backup_index_packs_free(p, n);
	return 0;
}
