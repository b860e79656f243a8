/* fuzz_expfmt.c: libFuzzer target for the exposition-format parser (src/collect/expfmt.c).
 * The first input byte picks the format (auto, 0.0.4, OpenMetrics) and whether small limits
 * apply; the rest is the body, in an exact-size heap copy so ASan catches reads past it.
 * Properties checked: every label set handed to the sink is sorted, unique, non-empty and
 * valid; and what was accepted, written back as 0.0.4 text, parses to exactly the same
 * samples (so escaping and number parsing round-trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int render(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	struct buf *out = arg;

	if (ls->n == 0 || strcmp(ls->v[0].name, "__name__") > 0)
		abort(); /* __name__ sorts first among valid names only if present */
	for (size_t i = 0; i < ls->n; i++) {
		if (!ls->v[i].value[0])
			abort();
		if (i + 1 < ls->n && strcmp(ls->v[i].name, ls->v[i + 1].name) >= 0)
			abort();
	}
	if (!labels_get(ls, "__name__"))
		abort();
	labels_write(out, ls);
	buf_putc(out, ' ');
	buf_put_double(out, v);
	if (has_t)
		buf_printf(out, " %lld", (long long)t);
	buf_putc(out, '\n');
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const enum collect_format fmts[] = {COLLECT_FORMAT_AUTO, COLLECT_FORMAT_TEXT_004,
	                                           COLLECT_FORMAT_OPENMETRICS};
	struct collect_parse_limits lim, *limp = NULL;
	struct collect_parse_stats st, st2;
	struct ward_err err;
	struct buf r1 = BUF_INIT, r2 = BUF_INIT;
	struct collect_sample_sink s1 = {render, NULL, &r1}, s2 = {render, NULL, &r2};
	char *copy;
	int rc;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 4) {
		lim.max_samples = 50;
		lim.max_line_bytes = 200;
		lim.max_label_count = 6;
		lim.max_label_bytes = 20;
		limp = &lim;
	}
	rc = collect_parse_exposition(copy, size - 1, fmts[(data[0] & 3) % 3], limp, &s1, &st,
	                              &err);
	if ((rc == 0) != (err.msg[0] == '\0'))
		abort();
	if (rc != 0 && strncmp(err.msg, "line ", 5) != 0)
		abort();
	if (rc == 0) {
		struct collect_parse_limits none = {0};
		rc = collect_parse_exposition(r1.data, r1.len, COLLECT_FORMAT_TEXT_004, &none, &s2,
		                              &st2, &err);
		if (rc != 0 || r1.len != r2.len || (r1.len && memcmp(r1.data, r2.data, r1.len)) ||
		    st.samples != st2.samples)
			abort();
	}
	buf_free(&r1);
	buf_free(&r2);
	free(copy);
	return 0;
}
