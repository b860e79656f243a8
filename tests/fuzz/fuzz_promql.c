/* fuzz_promql.c: libFuzzer target for the PromQL parser and evaluator: any bytes are parsed
 * (pointer and length, no terminator); a parsed expression is printed canonically, the
 * canonical form must parse again and print the same, then it is evaluated against a small
 * in-memory store under a timeout and a sample limit, and everything is freed (ASan checks
 * the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promql/promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct promql_memstore *store;

static const char load_text[] = "load 30s\n"
				"  a{job=\"x\",i=\"0\"} 0+1x20 stale 5 NaN\n"
				"  a{job=\"x\",i=\"1\"} 10-1x20 _ Inf\n"
				"  b{job=\"x\"} 1 2 3 _x5 4\n"
				"  h_bucket{le=\"1\"} 0+1x20\n"
				"  h_bucket{le=\"+Inf\"} 0+2x20\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct ward_err err;
	struct promql_expr *e, *e2;
	struct buf b = BUF_INIT, b2 = BUF_INIT;
	char *copy;

	if (!store) {
		store = promql_memstore_new();
		if (promql_memstore_load(store, load_text, sizeof(load_text) - 1, &err) < 0)
			abort();
	}
	/* a heap copy without NUL so reads past the end are caught */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	e = promql_parse(copy, size, &err);
	if (e) {
		struct promql_storage st = promql_memstore_storage(store);
		struct promql_opts o;
		struct promql_result r;
		enum promql_errtype et;

		promql_expr_string(e, &b);
		e2 = promql_parse(b.data ? b.data : "", b.len, &err);
		if (!e2)
			abort(); /* the canonical form must parse */
		promql_expr_string(e2, &b2);
		if (b.len != b2.len || memcmp(b.data, b2.data, b.len) != 0)
			abort(); /* and be a fixed point */
		promql_expr_free(e2);
		promql_opts_default(&o);
		o.timeout_ms = 20;
		o.max_samples = 20000;
		if (promql_eval_instant(&st, e, 300000, &o, &r, &et, &err) == 0) {
			buf_reset(&b);
			promql_result_json(&r, &b);
			promql_result_free(&r);
		}
		if (promql_expr_type(e) == PROMQL_SCALAR || promql_expr_type(e) == PROMQL_VECTOR) {
			if (promql_eval_range(&st, e, 0, 600000, 60000, &o, &r, &et, &err) == 0)
				promql_result_free(&r);
		}
	}
	promql_expr_free(e);
	buf_free(&b);
	buf_free(&b2);
	free(copy);
	return 0;
}
