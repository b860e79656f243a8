/* promql.h: the one public header of src/promql: a PromQL lexer, parser and evaluator
 * that give the same answers as Prometheus on the same data.
 *
 * The engine reads data through struct promql_storage (a select callback), so it runs on
 * ward's tsdb in the daemon and on a small in-memory store in tests and in `ward rules
 * test`. Results use struct tsdb_series (labels + samples) for vectors and matrices.
 *
 * Semantics follow Prometheus 2.x: lookback delta 5m for instant selectors, staleness
 * markers end a series, rate/increase extrapolation, label set and ordering rules of each
 * function and operator, NaN and +-Inf printed as "NaN", "+Inf", "-Inf".
 */
#ifndef WARD_PROMQL_H
#define WARD_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "tsdb/tsdb.h"

/* Where the evaluator reads series: every series matching all matchers with samples in
 * [mint, maxt] (stale markers included), as tsdb_select does. */
struct promql_storage {
	int (*select)(void *ctx, int64_t mint, int64_t maxt, const struct matcher *ms, size_t nms,
		      int64_t step_hint_ms, struct tsdb_series **out, size_t *n,
		      struct ward_err *err);
	void *ctx;
};

struct promql_expr;
/* Parses a PromQL expression (s, n bytes). NULL with err "parse error at line 1, char 7:
 * unexpected ..." (positions as Prometheus reports them). */
struct promql_expr *promql_parse(const char *s, size_t n, struct ward_err *err);
void promql_expr_free(struct promql_expr *e); /* NULL-safe */
/* The expression printed back in canonical form (for rule files and errors). */
void promql_expr_string(const struct promql_expr *e, struct buf *out);

enum promql_type { PROMQL_NONE = 0, PROMQL_SCALAR, PROMQL_VECTOR, PROMQL_MATRIX, PROMQL_STRING };
const char *promql_type_name(enum promql_type t); /* "scalar", "vector", "matrix", "string" */
enum promql_type promql_expr_type(const struct promql_expr *e);

struct promql_result {
	enum promql_type type;
	double scalar;   /* PROMQL_SCALAR */
	int64_t t_ms;    /* time of a scalar or string result */
	char *str;       /* PROMQL_STRING */
	/* PROMQL_VECTOR: each series has n == 1; PROMQL_MATRIX: n >= 1, ascending time. */
	struct tsdb_series *series;
	size_t nseries;
};
void promql_result_free(struct promql_result *r);

struct promql_opts {
	int64_t lookback_ms;   /* default 5m */
	int64_t timeout_ms;    /* 0: none; otherwise "query timed out in ..." */
	size_t max_samples;    /* 0: none; loaded samples at most ("query processing would load too many samples into memory") */
};
void promql_opts_default(struct promql_opts *o);

/* Error classes, for the API's errorType. */
enum promql_errtype { PROMQL_ERR_BAD_DATA = 1, PROMQL_ERR_EXECUTION, PROMQL_ERR_TIMEOUT,
		      PROMQL_ERR_INTERNAL };

/* Evaluates at one instant. 0, or -1 with err and *etype set. */
int promql_eval_instant(const struct promql_storage *st, const struct promql_expr *e,
			int64_t t_ms, const struct promql_opts *o, struct promql_result *out,
			enum promql_errtype *etype, struct ward_err *err);
/* Evaluates over [start, end] every step; the result is a matrix (or, for a scalar or
 * string expression, a matrix with one series without labels). */
int promql_eval_range(const struct promql_storage *st, const struct promql_expr *e,
		      int64_t start_ms, int64_t end_ms, int64_t step_ms,
		      const struct promql_opts *o, struct promql_result *out,
		      enum promql_errtype *etype, struct ward_err *err);

/* The "data" member of a Prometheus /api/v1/query(_range) answer:
 * {"resultType":"vector","result":[{"metric":{...},"value":[1700000000.123,"1.5"]}]} */
void promql_result_json(const struct promql_result *r, struct buf *out);

/* ---- an in-memory storage for tests and `ward rules test` ---- */
struct promql_memstore;
struct promql_memstore *promql_memstore_new(void);
void promql_memstore_free(struct promql_memstore *m);
/* Adds a sample (kept sorted per series). */
void promql_memstore_add(struct promql_memstore *m, const struct labels *ls, int64_t t_ms,
			 double v);
/* Loads the "load" block syntax of Prometheus' promqltest / promtool input_series:
 *   load 1m
 *     metric{a="b"} 0+10x100 _ 5 stale
 * expanding notation "a+bxN", "a-bxN", "_" (missing), "stale". 0 or -1 with err. */
int promql_memstore_load(struct promql_memstore *m, const char *text, size_t n,
			 struct ward_err *err);
struct promql_storage promql_memstore_storage(struct promql_memstore *m);

/* Parses a series selector as the API's match[] takes it ("up", "{job=~\"a.*\"}",
 * "http_requests_total{code!=\"200\"}") into matchers (the metric name becomes a
 * __name__ "=" matcher). *out is a new array; free each with matcher_free, then the array.
 * At least one matcher must not match the empty string, as Prometheus requires. 0, or -1
 * with err. */
int promql_parse_selector(const char *s, size_t n, struct matcher **out, size_t *nout,
			  struct ward_err *err);

#endif
