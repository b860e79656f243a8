/* fuzz_tsdb_wal.c: libFuzzer target for WAL replay. The input (after its first byte) is
 * written as a WAL segment in a private temp dir and a tsdb is opened on it: replay must
 * never crash or leak, whatever the bytes. When the first byte is odd an empty segment
 * follows, so the input is an earlier segment (the quarantine path); otherwise it is the
 * last one (the torn-tail truncation path). Whatever was replayed is then selected and
 * cut into a block, so decoded series and samples go through the whole engine. With bit 3
 * set the record checksums are fixed up first, so mutations reach the payload decoders
 * instead of stopping at the CRC.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsdb/tsdb.h"
#include "tsdb/tsdb_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];

static void put(const char *path, const uint8_t *d, size_t n) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (n && write(fd, d, n) != (ssize_t)n)
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char path[256], cmd[320];
	struct ward_err err;

	if (!root[0]) {
		snprintf(root, sizeof(root), "/tmp/fuzz_tsdb_wal_XXXXXX");
		if (!mkdtemp(root))
			abort();
		/* replay complaints are expected here; keep the fuzzer's output readable */
		log_setup(LOG_ERROR, LOG_FORMAT_AUTO, open("/dev/null", O_WRONLY | O_CLOEXEC));
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s/db && mkdir -p %s/db/wal", root, root);
	if (system(cmd) != 0)
		abort();
	if (size == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/db/wal/00000001", root);
	uint8_t *seg = malloc(size);
	memcpy(seg, data + 1, size - 1);
	if (data[0] & 8) {
		/* [u32 len][u32 crc][u8 type][payload] */
		for (size_t off = 0; off + 9 <= size - 1;) {
			uint32_t len = tsdb_get_u32(seg + off);
			if (len > size - 1 - off - 9)
				break;
			tsdb_put_u32(seg + off + 4, ward_crc32c(0, seg + off + 8, (size_t)len + 1));
			off += 9 + (size_t)len;
		}
	}
	put(path, seg, size - 1);
	free(seg);
	if (data[0] & 1) {
		snprintf(path, sizeof(path), "%s/db/wal/00000002", root);
		put(path, NULL, 0);
	}
	struct tsdb_opts o;
	tsdb_opts_default(&o);
	snprintf(path, sizeof(path), "%s/db", root);
	o.dir = path;
	o.ooo_window_ms = (data[0] & 2) ? 3600000 : 0;
	o.downsample = false;
	struct tsdb *db = tsdb_open(&o, &err);
	if (!db)
		return 0;
	struct tsdb_series *s;
	size_t n;
	if (tsdb_select(db, INT64_MIN, INT64_MAX, NULL, 0, 0, 0, &s, &n, &err) == 0) {
		tsdb_series_free(s, n);
		free(s);
	}
	if (data[0] & 4)
		tsdb_maintain(db, true, &err);
	tsdb_close(db);
	return 0;
}
