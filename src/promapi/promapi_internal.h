/* promapi_internal.h: what the files of src/promapi share.
 *
 * One struct promapi per process (the module is a singleton, like the daemon). Handlers
 * run on HTTP threads and read db, which is set before routes exist and outlives them.
 */
#ifndef WARD_PROMAPI_INTERNAL_H
#define WARD_PROMAPI_INTERNAL_H

#include <stdbool.h>
#include <uv.h>

#include "conf/conf.h"
#include "promapi/promapi.h"
#include "promql/promql.h"
#include "tsdb/tsdb.h"

/* The "tsdb" config section. */
struct promapi_conf {
	int64_t retention_ms;
	int64_t retention_bytes;
	int64_t block_duration_ms;
	int64_t ooo_window_ms;
	char *wal_fsync;
	bool downsample;
	int64_t downsample_5m_after_ms;
	int64_t downsample_1h_after_ms;
	int64_t self_scrape_ms;
	int64_t query_timeout_ms;
	int64_t query_max_samples;
	int64_t lookback_ms;
};

struct promapi {
	struct ward_ctx *ctx;
	struct tsdb *db;
	uv_timer_t maint_timer, scrape_timer;
	uv_work_t maint_req;
	bool maint_busy; /* touched on the loop thread only */
};

struct promapi *promapi_get(void);
void promapi_routes_register(struct promapi *p);
/* Query options from the config in force. */
void promapi_query_opts(const struct conf *c, struct promql_opts *o);
/* Writes ward's own metrics into the store now (called from the scrape timer). */
void promapi_self_scrape(struct promapi *p);
/* The storage adapter the PromQL engine reads through. */
struct promql_storage promapi_storage(struct promapi *p);

#endif
