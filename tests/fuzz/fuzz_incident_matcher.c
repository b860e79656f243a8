/* fuzz_incident_matcher.c: libFuzzer target for the incidents.open_on matcher parser
 * (incident_matcher_parse): any input is parsed as one matcher of exactly its length (no
 * terminator); a parsed matcher is then matched against a label set holding the input as a
 * value, and a group key is built from it. Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "incident/incident.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *copy = ward_xmalloc(size ? size : 1); /* exact length: ASan catches over-reads */
	memcpy(copy, data, size);
	struct ward_err err;
	struct matcher m;
	ward_err_clear(&err);
	if (incident_matcher_parse(copy, size, &m, &err) == 0) {
		struct labels ls;
		labels_init(&ls);
		char *v = ward_strndup(copy, size);
		labels_set(&ls, "alertname", "Fuzz");
		labels_set(&ls, m.name, v);
		(void)incident_matchers_match(&m, 1, &ls);
		char *gb[] = {m.name};
		struct buf key = BUF_INIT;
		incident_group_key(&ls, gb, 1, &key);
		buf_free(&key);
		labels_free(&ls);
		free(v);
		matcher_free(&m);
	}
	free(copy);
	return 0;
}
