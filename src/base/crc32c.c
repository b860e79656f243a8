/* crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, one byte
 * at a time: the checksum of every on-disk record ward writes (tsdb WAL records, block
 * chunks and index sections; log blocks). The table is built once (pthread_once) so the
 * function is safe from any thread. crc starts at 0 and may be chained:
 * ward_crc32c(ward_crc32c(0, a, n), b, m) == crc of a||b.
 */
#include "base/base.h"

#include <pthread.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t ward_crc32c(uint32_t crc, const void *data, size_t n) {
	const uint8_t *p = data;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
