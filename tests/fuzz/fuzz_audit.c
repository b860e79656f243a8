/* fuzz_audit.c: libFuzzer target for audit_parse_line (src/security/audit_format.c).
 * Any input must be rejected or parsed without a crash or leak. When a line parses, its
 * canonical re-serialisation must parse again and re-serialise to the same bytes: audit_verify
 * relies on that to recompute hashes, so a failure here is a format bug, and aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "security/audit_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct audit_entry e, again;
	struct ward_err err = {{0}};
	struct buf c1 = BUF_INIT, c2 = BUF_INIT, line = BUF_INIT;

	if (audit_parse_line((const char *)data, size, &e, &err) < 0)
		return 0;
	audit_canon(&c1, &e);
	audit_line_from_canon(&line, &c1, e.hash);
	if (audit_parse_line(line.data, line.len, &again, &err) < 0)
		abort(); /* our own output must parse */
	audit_canon(&c2, &again);
	if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len) != 0)
		abort(); /* serialise(parse(serialise(x))) must equal serialise(x) */
	audit_entry_free(&again);
	audit_entry_free(&e);
	buf_free(&c1);
	buf_free(&c2);
	buf_free(&line);
	return 0;
}
