/* base_parse.c: libFuzzer target for base's parsers: durations, sizes, times, hex, the
 * Snappy block decoder, and the JSON/logfmt writers (which must accept any bytes). The first input byte picks the parser;
 * the rest is the input, given by pointer and length with no terminator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct ward_err err;
	struct buf b = BUF_INIT;
	int64_t v;
	char out[32];
	uint8_t bytes[64];
	char *copy;

	if (size < 1)
		return 0;
	/* A heap copy without NUL so reads past the end are caught by ASan. */
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 7) {
	case 0:
		if (ward_parse_duration(copy, size - 1, &v, &err) == 0) {
			int64_t back;
			ward_fmt_duration(v, out);
			if (ward_parse_duration(out, strlen(out), &back, NULL) != 0 || back != v)
				abort();
		}
		break;
	case 1:
		if (ward_parse_size(copy, size - 1, &v, &err) == 0) {
			int64_t back;
			ward_fmt_size(v, out);
			if (ward_parse_size(out, strlen(out), &back, NULL) != 0 || back != v)
				abort();
		}
		break;
	case 2:
		if (ward_parse_time(copy, size - 1, &v) == 0)
			ward_fmt_rfc3339(v, out);
		break;
	case 3:
		(void)ward_unhex(copy, size - 1, bytes, (size - 1) / 2 > 64 ? 64 : (size - 1) / 2);
		break;
	case 4:
		buf_json_str(&b, copy, size - 1);
		break;
	case 5:
		buf_logfmt_val(&b, copy, size - 1);
		break;
	case 6: {
		size_t len;
		if (ward_snappy_decoded_len(copy, size - 1, &len) >= 0 && len <= (1u << 20)) {
			uint8_t *out = malloc(len ? len : 1);
			(void)ward_snappy_decode(copy, size - 1, out, len);
			free(out);
		}
		break;
	}
	}
	buf_free(&b);
	free(copy);
	return 0;
}
