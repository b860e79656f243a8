/* selfmetrics.c: ward's metrics about itself, computed when /metrics is scraped: process
 * CPU, memory, file descriptors and start time (named as every Prometheus client library
 * names them), build info, and the sizes of its stores.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/core_internal.h"
#include "security/security.h"
#include "store/store.h"
#include "ward_build.h"

static double cpu_seconds(void *arg)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Reads a "Name:   123 kB" line of /proc/self/status, in bytes. */
static double status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 0;
	char line[256];
	double v = 0;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtod(line + kl + 1, NULL) * 1024.0;
			break;
		}
	}
	fclose(f);
	return v;
}

static double rss_bytes(void *arg)
{
	return status_kb("VmRSS");
}

static double vsize_bytes(void *arg)
{
	return status_kb("VmSize");
}

static double open_fds(void *arg)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	double n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

static double max_fds(void *arg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	return (double)rl.rlim_cur;
}

static double start_time(void *arg)
{
	const struct ward_ctx *ctx = arg;
	return (double)ctx->start_ms / 1000.0;
}

static double state_bytes(void *arg)
{
	struct ward_ctx *ctx = arg;
	return (double)store_size_bytes(ctx->store);
}

static double audit_bytes(void *arg)
{
	struct ward_ctx *ctx = arg;
	return (double)audit_size_bytes(ctx->audit);
}

static double audit_records(void *arg)
{
	struct ward_ctx *ctx = arg;
	uint64_t seq = 0;
	char hash[2 * WARD_SHA256_LEN + 1];
	audit_head(ctx->audit, &seq, hash);
	return (double)seq;
}

static double reload_ok(void *arg)
{
	struct daemon *d = ((struct ward_ctx *)arg)->internal;
	return (double)atomic_load(&d->reload_ok);
}

static double reload_ok_time(void *arg)
{
	struct daemon *d = ((struct ward_ctx *)arg)->internal;
	return (double)atomic_load(&d->reload_ok_ms) / 1000.0;
}

void core_selfmetrics_register(struct ward_ctx *ctx)
{
	metric_register_fn("process_cpu_seconds_total", "User and system CPU time spent, seconds.",
			   METRIC_COUNTER, cpu_seconds, NULL);
	metric_register_fn("process_resident_memory_bytes", "Resident memory size in bytes.",
			   METRIC_GAUGE, rss_bytes, NULL);
	metric_register_fn("process_virtual_memory_bytes", "Virtual memory size in bytes.",
			   METRIC_GAUGE, vsize_bytes, NULL);
	metric_register_fn("process_open_fds", "Number of open file descriptors.", METRIC_GAUGE,
			   open_fds, NULL);
	metric_register_fn("process_max_fds", "Maximum number of open file descriptors.",
			   METRIC_GAUGE, max_fds, NULL);
	metric_register_fn("process_start_time_seconds",
			   "Start time of the process since the Unix epoch, seconds.", METRIC_GAUGE,
			   start_time, ctx);
	metric_register_fn("ward_state_store_size_bytes",
			   "Bytes on disk of the state store (state.db and its WAL).", METRIC_GAUGE,
			   state_bytes, ctx);
	metric_register_fn("ward_audit_size_bytes", "Bytes on disk of the audit trail.",
			   METRIC_GAUGE, audit_bytes, ctx);
	metric_register_fn("ward_audit_records", "Records in the audit trail (its last seq).",
			   METRIC_GAUGE, audit_records, ctx);
	metric_register_fn("ward_config_last_reload_successful",
			   "1 when the last configuration reload was accepted, else 0.",
			   METRIC_GAUGE, reload_ok, ctx);
	metric_register_fn("ward_config_last_reload_success_timestamp_seconds",
			   "When the configuration in force was loaded.", METRIC_GAUGE,
			   reload_ok_time, ctx);
	static const char *const bl[] = {"version", "revision", NULL};
	struct metric *bi = metric_register("ward_build_info",
					    "A constant 1, labelled with ward's version and "
					    "revision.",
					    METRIC_GAUGE, bl, NULL, 0);
	const char *bv[] = {WARD_VERSION_STR, WARD_REVISION};
	metric_set(bi, bv, 1);
}
