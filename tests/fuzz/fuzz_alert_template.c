/* fuzz_alert_template.c: libFuzzer target for the template engine: parse and execute any
 * input with labels, a value and a small store for query; errors are fine, crashes,
 * leaks and runaway work are not. */
#include <stdint.h>
#include <stdlib.h>

#include "alert/alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct promql_memstore *m;
	static struct promql_storage st;
	static struct labels ls;
	if (!m) {
		m = promql_memstore_new();
		static const char load[] = "load 1m\n  up{job=\"a\",instance=\"x:1\"} 1 0\n";
		(void)promql_memstore_load(m, load, sizeof(load) - 1, NULL);
		st = promql_memstore_storage(m);
		labels_init(&ls);
		labels_set(&ls, "instance", "x:1");
		labels_set(&ls, "job", "a");
	}
	if (size > 4096)
		return 0;
	struct alert_tmpl_data d = {.labels = &ls, .value = 1234.5, .st = &st, .t_ms = 60000};
	struct buf out = BUF_INIT;
	struct ward_err err;
	ward_err_clear(&err);
	(void)alert_tmpl_expand("fuzz", (const char *)data, size, &d, &out, &err);
	buf_free(&out);
	return 0;
}
