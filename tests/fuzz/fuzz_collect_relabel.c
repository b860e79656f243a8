/* fuzz_collect_relabel.c: libFuzzer target for relabeling (src/collect/relabel.c), whose
 * inputs come from config files and, through metric_relabel_configs, from every scraped
 * label. Input: first byte picks the action (and a modulus); then NUL-separated fields:
 * regex, replacement, target_label, separator, and name/value pairs of a label set; the
 * first two pairs' names are the source labels. Properties: relabel_new either compiles
 * or says why; relabel_apply never crashes; a kept set stays sorted with unique names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size < 2 || size > 4096)
		return 0;
	char *copy = malloc(size + 1);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = 0;
	char *f[32];
	size_t nf = 0;
	for (char *p = copy; nf < 32 && p < copy + size - 1; p += strlen(p) + 1)
		f[nf++] = p;
	if (nf < 4) {
		free(copy);
		return 0;
	}
	struct relabel_conf rc = {.regex = f[0],
	                          .replacement = f[1],
	                          .target_label = f[2],
	                          .separator = f[3],
	                          .action = data[0] % 11,
	                          .modulus = (data[0] >> 4) + 1};
	char *src[2];
	struct labels ls;
	labels_init(&ls);
	for (size_t i = 4; i + 1 < nf; i += 2) {
		if (!*f[i] || !*f[i + 1])
			continue;
		labels_set(&ls, f[i], f[i + 1]);
		if (rc.nsource_labels < 2)
			src[rc.nsource_labels++] = f[i];
	}
	rc.source_labels = src;
	struct ward_err err;
	ward_err_clear(&err);
	struct relabel *r = relabel_new(&rc, 1, &err);
	if (!r) {
		if (!ward_err_isset(&err))
			abort();
	} else {
		if (relabel_apply(r, &ls))
			for (size_t i = 0; i + 1 < ls.n; i++)
				if (strcmp(ls.v[i].name, ls.v[i + 1].name) >= 0)
					abort();
		relabel_free(r);
	}
	labels_free(&ls);
	free(copy);
	return 0;
}
