/* module.c: the promapi module's life: the "tsdb" config section, opening the tsdb under
 * <data>/tsdb at start, a maintenance timer (head cuts, compaction, retention) whose work
 * runs on libuv's worker pool so the loop never waits on disk, the self-scrape timer that
 * writes ward's own /metrics into the store, and closing at stop.
 *
 * Invariant: at most one maintenance job runs at a time (maint_busy); the tsdb pointer is
 * set before routes are registered and cleared only after the HTTP server has stopped.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "promapi/promapi_internal.h"

#define MAINTAIN_EVERY_MS 60000 /* cheap when nothing is due; head cuts are hourly at most */

static struct promapi self;

struct promapi *promapi_get(void)
{
	return &self;
}

struct tsdb *promapi_tsdb(void)
{
	return self.db;
}

#define PC(f) offsetof(struct promapi_conf, f)
static const struct conf_field tsdb_fields[] = {
	{.key = "retention", .type = CONF_DURATION, .offset = PC(retention_ms), .defval = "15d",
	 .min = 0, .max = 100 * 365 * 86400e3, .flags = CONF_RANGE,
	 .help = "drop data older than this (0: keep forever)"},
	{.key = "retention_size", .type = CONF_SIZE, .offset = PC(retention_bytes), .defval = "0",
	 .help = "drop the oldest blocks past this many bytes (0: no limit)"},
	{.key = "block_duration", .type = CONF_DURATION, .offset = PC(block_duration_ms),
	 .defval = "2h", .min = 60e3, .max = 31 * 86400e3, .flags = CONF_RANGE,
	 .help = "how much time the in-memory head covers before it is cut into a block"},
	{.key = "out_of_order_window", .type = CONF_DURATION, .offset = PC(ooo_window_ms),
	 .defval = "10m", .min = 0, .max = 7 * 86400e3, .flags = CONF_RANGE,
	 .help = "samples this far behind a series' newest are still accepted"},
	{.key = "wal_fsync", .type = CONF_STR, .offset = PC(wal_fsync), .defval = "always",
	 .help = "\"always\" (every acknowledged write is on disk) or a duration (fsync that often)"},
	{.key = "downsample", .type = CONF_BOOL, .offset = PC(downsample), .defval = "true",
	 .help = "keep 5m and 1h resolutions of old data for long-range queries"},
	{.key = "downsample_5m_after", .type = CONF_DURATION, .offset = PC(downsample_5m_after_ms),
	 .defval = "40h", .min = 0, .max = 100 * 365 * 86400e3, .flags = CONF_RANGE,
	 .help = "5m copies of blocks whose samples are all this much older than the newest"},
	{.key = "downsample_1h_after", .type = CONF_DURATION, .offset = PC(downsample_1h_after_ms),
	 .defval = "10d", .min = 0, .max = 100 * 365 * 86400e3, .flags = CONF_RANGE,
	 .help = "1h copies of 5m blocks whose samples are all this much older than the newest"},
	{.key = "self_scrape_interval", .type = CONF_DURATION, .offset = PC(self_scrape_ms),
	 .defval = "15s", .min = 0, .max = 3600e3, .flags = CONF_RANGE,
	 .help = "how often ward writes its own /metrics into the store (0: never)"},
	{.key = "query_timeout", .type = CONF_DURATION, .offset = PC(query_timeout_ms),
	 .defval = "2m", .min = 100, .max = 3600e3, .flags = CONF_RANGE,
	 .help = "a query running longer is stopped"},
	{.key = "query_max_samples", .type = CONF_INT, .offset = PC(query_max_samples),
	 .defval = "50000000", .min = 1000, .max = 1e10, .flags = CONF_RANGE,
	 .help = "samples one query may load at most"},
	{.key = "lookback_delta", .type = CONF_DURATION, .offset = PC(lookback_ms), .defval = "5m",
	 .min = 1000, .max = 86400e3, .flags = CONF_RANGE,
	 .help = "how far back an instant selector looks for a sample"},
	{0},
};

static int tsdb_validate(void *obj, const struct conf_pos *pos, struct ward_err *err)
{
	const struct promapi_conf *c = obj;
	if (c->wal_fsync && strcmp(c->wal_fsync, "always") != 0) {
		int64_t ms;
		struct ward_err e;
		ward_err_clear(&e);
		if (ward_parse_duration(c->wal_fsync, strlen(c->wal_fsync), &ms, &e) != 0 || ms <= 0) {
			conf_error_at(err, pos,
				      "tsdb.wal_fsync: \"%s\" is neither \"always\" nor a duration "
				      "such as 1s",
				      c->wal_fsync);
			return -1;
		}
	}
	return 0;
}

static const struct conf_schema tsdb_schema = {.name = "tsdb",
					       .size = sizeof(struct promapi_conf),
					       .fields = tsdb_fields,
					       .validate = tsdb_validate};

static void promapi_init(void)
{
	(void)conf_register_section(&tsdb_schema);
}

void promapi_query_opts(const struct conf *c, struct promql_opts *o)
{
	promql_opts_default(o);
	const struct promapi_conf *pc = conf_section(c, "tsdb");
	if (!pc)
		return;
	o->timeout_ms = pc->query_timeout_ms;
	o->max_samples = (size_t)pc->query_max_samples;
	o->lookback_ms = pc->lookback_ms;
}

/* ---- maintenance on the worker pool ---- */

static void maint_work(uv_work_t *w)
{
	struct ward_err err;
	ward_err_clear(&err);
	if (tsdb_maintain(self.db, false, &err) != 0)
		ward_log(LOG_WARN, "tsdb maintenance failed", "error", err.msg, NULL);
}

static void maint_done(uv_work_t *w, int status)
{
	self.maint_busy = false;
}

static void maint_tick(uv_timer_t *t)
{
	if (self.maint_busy || !self.db)
		return;
	self.maint_busy = true;
	if (uv_queue_work(t->loop, &self.maint_req, maint_work, maint_done) != 0)
		self.maint_busy = false;
}

static void scrape_tick(uv_timer_t *t)
{
	promapi_self_scrape(&self);
}

static void set_scrape_timer(const struct promapi_conf *pc)
{
	uv_timer_stop(&self.scrape_timer);
	if (pc->self_scrape_ms > 0)
		uv_timer_start(&self.scrape_timer, scrape_tick, (uint64_t)pc->self_scrape_ms,
			       (uint64_t)pc->self_scrape_ms);
}

/* The tsdb's line in GET /health: degraded once anything was quarantined. */
static int tsdb_health(void *arg, struct buf *out)
{
	struct tsdb_stats s;
	if (!self.db) {
		buf_puts(out, "{\"open\":false}");
		return 1;
	}
	tsdb_stats(self.db, &s);
	buf_printf(out,
		   "{\"series\":%llu,\"head_samples\":%llu,\"blocks\":%llu,\"quarantined\":%llu,"
		   "\"rejected_too_old\":%llu}",
		   (unsigned long long)s.series, (unsigned long long)s.head_samples,
		   (unsigned long long)s.blocks, (unsigned long long)s.quarantined,
		   (unsigned long long)s.rejected_too_old);
	return s.quarantined > 0 ? 1 : 0;
}

/* tsdb statistics as metrics, read at scrape time. */
#define STAT_FN(fname, expr)                          \
	static double fname(void *arg)                \
	{                                             \
		struct tsdb_stats s;                  \
		if (!self.db)                         \
			return 0;                     \
		tsdb_stats(self.db, &s);              \
		return (double)(expr);                \
	}
STAT_FN(st_series, s.series)
STAT_FN(st_head_samples, s.head_samples)
STAT_FN(st_head_bytes, s.head_bytes)
STAT_FN(st_blocks, s.blocks)
STAT_FN(st_block_bytes, s.block_bytes)
STAT_FN(st_wal_bytes, s.wal_bytes)
STAT_FN(st_appended, s.appended_total)
STAT_FN(st_too_old, s.rejected_too_old)
STAT_FN(st_duplicate, s.rejected_duplicate)
STAT_FN(st_quarantined, s.quarantined)

static void register_stat_metrics(void)
{
	metric_register_fn("ward_tsdb_head_series", "Series in the in-memory head.", METRIC_GAUGE,
			   st_series, NULL);
	metric_register_fn("ward_tsdb_head_samples", "Samples in the in-memory head.",
			   METRIC_GAUGE, st_head_samples, NULL);
	metric_register_fn("ward_tsdb_head_bytes", "Memory held by head chunks and index.",
			   METRIC_GAUGE, st_head_bytes, NULL);
	metric_register_fn("ward_tsdb_blocks", "Persisted blocks.", METRIC_GAUGE, st_blocks, NULL);
	metric_register_fn("ward_tsdb_block_bytes", "Bytes of persisted blocks on disk.",
			   METRIC_GAUGE, st_block_bytes, NULL);
	metric_register_fn("ward_tsdb_wal_bytes", "Bytes of the write-ahead log on disk.",
			   METRIC_GAUGE, st_wal_bytes, NULL);
	metric_register_fn("ward_tsdb_samples_appended_total", "Samples accepted since start.",
			   METRIC_COUNTER, st_appended, NULL);
	metric_register_fn("ward_tsdb_rejected_too_old_total",
			   "Samples refused for being older than the out-of-order window.",
			   METRIC_COUNTER, st_too_old, NULL);
	metric_register_fn("ward_tsdb_rejected_duplicate_total",
			   "Samples refused for repeating a timestamp with another value.",
			   METRIC_COUNTER, st_duplicate, NULL);
	metric_register_fn("ward_tsdb_quarantined_total",
			   "Damaged WAL segments or blocks moved aside since start.", METRIC_COUNTER,
			   st_quarantined, NULL);
}

static int promapi_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err)
{
	const struct promapi_conf *pc = conf_section(c, "tsdb");
	struct tsdb_opts o;
	tsdb_opts_default(&o);
	struct buf dir = BUF_INIT;
	buf_printf(&dir, "%s/tsdb", ctx->data_dir);
	o.dir = buf_cstr(&dir);
	o.retention_ms = pc->retention_ms;
	o.retention_bytes = pc->retention_bytes;
	o.block_duration_ms = pc->block_duration_ms;
	o.ooo_window_ms = pc->ooo_window_ms;
	o.downsample = pc->downsample;
	o.downsample_5m_after_ms = pc->downsample_5m_after_ms;
	o.downsample_1h_after_ms = pc->downsample_1h_after_ms;
	if (pc->wal_fsync && strcmp(pc->wal_fsync, "always") != 0) {
		o.fsync = TSDB_FSYNC_PERIODIC;
		(void)ward_parse_duration(pc->wal_fsync, strlen(pc->wal_fsync), &o.fsync_interval_ms,
					  NULL);
	}
	self.ctx = ctx;
	self.db = tsdb_open(&o, err);
	buf_free(&dir);
	if (!self.db)
		return -1;
	ctx->tsdb = self.db;
	promapi_routes_register(&self);
	ward_health_register("tsdb", tsdb_health, NULL);
	register_stat_metrics();
	uv_timer_init(ctx->loop, &self.maint_timer);
	uv_timer_start(&self.maint_timer, maint_tick, MAINTAIN_EVERY_MS, MAINTAIN_EVERY_MS);
	uv_timer_init(ctx->loop, &self.scrape_timer);
	set_scrape_timer(pc);
	return 0;
}

static int promapi_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err)
{
	if (!self.db)
		return 0;
	set_scrape_timer(conf_section(c, "tsdb"));
	return 0;
}

static void promapi_stop(struct ward_ctx *ctx)
{
	if (!self.db)
		return;
	uv_timer_stop(&self.maint_timer);
	uv_timer_stop(&self.scrape_timer);
	/* A maintenance job still on the pool finishes before the loop is closed; the daemon
	 * closes the loop after modules stop, so wait for it here. */
	while (self.maint_busy)
		uv_run(ctx->loop, UV_RUN_ONCE);
	ctx->tsdb = NULL;
	tsdb_close(self.db);
	self.db = NULL;
}

const struct ward_module promapi_module = {
	.name = "promapi",
	.init = promapi_init,
	.start = promapi_start,
	.apply = promapi_apply,
	.stop = promapi_stop,
};
