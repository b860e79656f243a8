/* fuzz_remote_write.c: libFuzzer target for the remote_write WriteRequest decoder. The
 * input is the protobuf (after snappy); the sink checks what it is handed is sane.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promapi/promapi.h"

static int sink(void *arg, const struct labels *ls, const int64_t *t, const double *v, size_t n)
{
	for (size_t i = 1; i < ls->n; i++)
		if (strcmp(ls->v[i - 1].name, ls->v[i].name) >= 0)
			abort(); /* labels must come out sorted and unique */
	volatile double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += v[i] + (double)t[i];
	return 0;
}

static void metadata(void *arg, const char *family, const char *type, const char *help,
		     const char *unit)
{
	if (!*family || !type || !help || !unit)
		abort(); /* a family name, and the other strings always present */
	volatile size_t n = strlen(type) + strlen(help) + strlen(unit);
	(void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ward_err err;
	ward_err_clear(&err);
	struct promapi_write_sink s = {.series = sink, .metadata = metadata};
	size_t skipped = 0;
	(void)promapi_decode_write(data, size, &s, &skipped, &err);
	return 0;
}
