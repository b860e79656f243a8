/* fuzz_logs_fmt.c: libFuzzer target for the JSON and logfmt field parsers, the timestamp
 * parser and the UTF-8 sanitizer: any bytes, no crash, no read past the input, and every
 * field name comes out as a valid label name. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logs/logs.h"

static void check(const struct logs_fields *f) {
	for (size_t i = 0; i < f->n; i++) {
		const char *n = f->v[i].name;
		if (!n[0] || isdigit((unsigned char)n[0]))
			abort();
		for (; *n; n++)
			if (!isalnum((unsigned char)*n) && *n != '_')
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	struct logs_fields f = {0};
	(void)logs_parse_json(p, size, &f);
	check(&f);
	logs_fields_reset(&f);
	(void)logs_parse_logfmt(p, size, &f);
	check(&f);
	logs_fields_free(&f);
	int64_t ns;
	(void)logs_parse_time_ns(p, size, &ns);
	struct buf b = BUF_INIT;
	if (logs_sanitize_utf8(p, size, &b) && logs_sanitize_utf8(b.data, b.len, &b))
		abort(); /* the output of the sanitizer is valid UTF-8 */
	buf_free(&b);
	free(p);
	return 0;
}
