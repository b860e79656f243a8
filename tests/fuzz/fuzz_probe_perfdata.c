/* fuzz_probe_perfdata.c: libFuzzer target for the Nagios plugin output parsers: the
 * message/perfdata split and the perfdata parser, on arbitrary bytes (not NUL-terminated:
 * the input is copied to an exact-size heap block so ASan sees any overread). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *in = malloc(size ? size : 1);
	if (size)
		memcpy(in, data, size);
	struct probe_perf *p = NULL;
	size_t n = 0;
	struct ward_err err;
	ward_err_clear(&err);
	probe_perfdata_parse(in, size, &p, &n, &err);
	for (size_t i = 0; i < n; i++)
		if (!p[i].label || !p[i].label[0] || strlen(p[i].uom) >= sizeof(p[i].uom))
			abort();
	probe_perf_free(p, n);
	char *msg = NULL, *perf = NULL;
	probe_nagios_split(in, size, &msg, &perf);
	probe_perfdata_parse(perf, strlen(perf), &p, &n, &err);
	probe_perf_free(p, n);
	free(msg);
	free(perf);
	free(in);
	return 0;
}
