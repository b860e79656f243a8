/* fuzz_backup_pack.c: libFuzzer target for the pack header decoder
 * (backup_pack_header_decode in src/backup/format.c). The first 4 input bytes give the data
 * length the header is checked against. Any input must be refused or decoded without a crash
 * or leak; a decoded header must re-encode to the same bytes and lie within the data length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct backup_pack_entry *e = NULL;
	struct ward_err err = {{0}};
	struct buf again = BUF_INIT;
	uint64_t data_len;
	size_t n = 0;

	if (size < 4)
		return 0;
	data_len = (uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)data[2] << 16 |
	           (uint64_t)data[3] << 24;
	if (backup_pack_header_decode(data + 4, size - 4, data_len, &e, &n, &err) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].offset + e[i].length > data_len)
			abort();
	backup_pack_header_encode(e, n, &again);
	if (again.len != size - 4 || memcmp(again.data, data + 4, again.len) != 0)
		abort();
	buf_free(&again);
	free(e);
	return 0;
}
