/* fuzz_logs_query.c: libFuzzer target for the LogQL lexer and parser: any bytes either
 * parse or fail with a column inside the input; a parsed query prints to a form that
 * parses again to the same form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logs/logs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	struct ward_err err;
	ward_err_clear(&err);
	struct logs_query *q = logs_query_parse(p, size, &err);
	if (!q) {
		if (!ward_err_isset(&err))
			abort();
		free(p);
		return 0;
	}
	struct buf a = BUF_INIT, b = BUF_INIT;
	logs_query_print(q, &a);
	logs_query_free(q);
	ward_err_clear(&err);
	q = logs_query_parse(a.data, a.len, &err);
	if (!q)
		abort(); /* the printed form must parse */
	logs_query_print(q, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	logs_query_free(q);
	buf_free(&a);
	buf_free(&b);
	free(p);
	return 0;
}
