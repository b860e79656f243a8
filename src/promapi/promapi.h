/* promapi.h: the one public header of src/promapi: ward's time-series service as the
 * Prometheus HTTP API presents it.
 *
 * The module opens the tsdb under <data>/tsdb, keeps it maintained (head cuts,
 * compaction, retention) from a timer, writes ward's own /metrics into it, and serves
 * /api/v1/query, query_range, series, labels, label/<name>/values, metadata,
 * status/buildinfo, status/tsdb and remote_write at /api/v1/write, with Prometheus' JSON
 * shapes and error types, so Grafana and Prometheus itself work against ward unchanged.
 */
#ifndef WARD_PROMAPI_H
#define WARD_PROMAPI_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "core/core.h"

extern const struct ward_module promapi_module;

struct tsdb;
/* The daemon's time-series store, for modules that write samples (collectors, probes,
 * rules): valid between promapi's start and stop (modules listed after promapi in the
 * registry start later and stop earlier, so for them it is always valid). NULL outside. */
struct tsdb *promapi_tsdb(void);

/* Decoding of a remote_write WriteRequest (protobuf, already snappy-decompressed). The
 * sink gets each series' labels (sorted, as sent) and samples; a non-zero return stops.
 * Returns 0, or -1 with err naming the byte offset and what was wrong. Histograms and
 * exemplars are skipped (counted in *skipped when not NULL). */
struct promapi_write_sink {
	int (*series)(void *arg, const struct labels *ls, const int64_t *t_ms, const double *v,
		      size_t n);
	/* MetricMetadata (field 3), may be NULL: type as Prometheus names it ("counter",
	 * "gauge", ..., "unknown"), help and unit "" when absent. */
	void (*metadata)(void *arg, const char *family, const char *type, const char *help,
			 const char *unit);
	void *arg;
};
int promapi_decode_write(const uint8_t *buf, size_t n, const struct promapi_write_sink *sink,
			 size_t *skipped, struct ward_err *err);

#endif
