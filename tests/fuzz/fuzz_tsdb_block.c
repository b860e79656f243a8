/* fuzz_tsdb_block.c: libFuzzer target for opening a block (block.c): the index parsers of
 * format 1 and 2 and the chunk framing, then reading every chunk of every series. The input
 * is [u8 flags][u16 LE chunk bytes][u16 LE size of the index's first section][rest]. The
 * chunk bytes are cut into chunks of [u16 LE length][bytes] and framed with lengths and
 * checksums as the writer does; the rest is split into the index's two sections, given their
 * checksums and a footer, under the magic of format 1 (flags bit 0) or 2, so that mutations
 * reach the parsers instead of stopping at a checksum. With flags bit 1 the rest is the
 * whole index file as is (footer and checksum checks). Opening must never crash or leak.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/tsdb_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64], bdir[128];

static void put(const char *name, const void *d, size_t n) {
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", bdir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (n && write(fd, d, n) != (ssize_t)n)
		abort();
	close(fd);
}

static void section(struct buf *b, const uint8_t *p, size_t n, uint64_t *off, uint64_t *len) {
	*off = b->len;
	*len = n;
	buf_append(b, p, n);
	tsdb_buf_u32(b, ward_crc32c(0, p, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const char meta[] =
	        "{\"ulid\": \"01M8B83X8FHKYNAD5REGWV2FM9\", \"minTime\": 0, "
	        "\"maxTime\": 1000000, \"resolution\": 0, \"compaction\": "
	        "{\"level\": 1, \"sources\": []}, \"stats\": {\"numSamples\": 1}}";
	struct ward_err err;

	if (!root[0]) {
		snprintf(root, sizeof(root), "/tmp/fuzz_tsdb_block_XXXXXX");
		if (!mkdtemp(root))
			abort();
		snprintf(bdir, sizeof(bdir), "%s/01M8B83X8FHKYNAD5REGWV2FM9", root);
		if (mkdir(bdir, 0700) < 0)
			abort();
		put("meta.json", meta, strlen(meta));
	}
	if (size < 5)
		return 0;
	uint8_t flags = data[0];
	size_t nch = (size_t)(data[1] | data[2] << 8), na = (size_t)(data[3] | data[4] << 8);
	data += 5;
	size -= 5;
	nch = nch < size ? nch : size;

	struct buf ch = BUF_INIT, ix = BUF_INIT;
	buf_append(&ch, "WTSDBCH1", 8);
	for (size_t i = 0; i + 2 <= nch;) {
		size_t len = (size_t)(data[i] | data[i + 1] << 8);
		i += 2;
		len = len < nch - i ? len : nch - i;
		tsdb_buf_u32(&ch, (uint32_t)len);
		buf_append(&ch, data + i, len);
		tsdb_buf_u32(&ch, ward_crc32c(0, data + i, len));
		i += len;
	}
	data += nch;
	size -= nch;
	if (flags & 2) {
		buf_append(&ix, data, size);
	} else {
		const char *magic = (flags & 1) ? "WTSDBIX1" : "WTSDBIX2";
		uint64_t off[2], len[2];
		na = na < size ? na : size;
		buf_append(&ix, magic, 8);
		section(&ix, data, na, &off[0], &len[0]);
		section(&ix, data + na, size - na, &off[1], &len[1]);
		size_t f = ix.len;
		tsdb_buf_u64(&ix, off[0]);
		tsdb_buf_u64(&ix, len[0]);
		tsdb_buf_u64(&ix, off[1]);
		tsdb_buf_u64(&ix, len[1]);
		tsdb_buf_u32(&ix, ward_crc32c(0, ix.data + f, 32));
		buf_append(&ix, magic, 8);
	}
	put("chunks", ch.data, ch.len);
	put("index", ix.data, ix.len);
	buf_free(&ch);
	buf_free(&ix);

	struct tsdb_block *b = block_open(bdir, &err);
	if (!b)
		return 0;
	struct tsdb_svec s = {0};
	for (uint32_t i = 0; i < b->nseries; i++)
		for (uint8_t c = 0; c < COL_N; c++) {
			s.n = 0;
			(void)block_series_read(b, i, c, INT64_MIN, INT64_MAX, &s);
			(void)block_series_overlaps(b, i, 0, 1000);
		}
	svec_free(&s);
	block_free(b);
	return 0;
}
