/* api_write.c: POST /api/v1/write, Prometheus remote_write (protobuf in a snappy block).
 *
 * The whole request becomes one tsdb batch: decoded, staged, then committed, which logs it
 * to the WAL before the 204 goes out, so an acknowledged write survives a crash. A request
 * with an invalid series is refused whole with 400 (the sender must not retry it); a failed
 * commit (disk full, I/O) answers 500 so the sender retries later. Samples the store
 * refuses one by one (too old, duplicate) are counted, as Prometheus counts them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promapi/promapi_internal.h"

#define MAX_DECODED_BYTES (256u << 20) /* a decompression bomb stops here */

static struct metric *m_samples, *m_requests;

static void register_metrics(void)
{
	static const char *const res[] = {"result", NULL};
	static const char *const code[] = {"code", NULL};
	m_samples = metric_register("ward_remote_write_samples_total",
				    "Samples received through remote_write, by result.",
				    METRIC_COUNTER, res, NULL, 0);
	m_requests = metric_register("ward_remote_write_requests_total",
				     "remote_write requests by HTTP status code.", METRIC_COUNTER,
				     code, NULL, 0);
}

struct write_ctx {
	struct tsdb *db;
	struct tsdb_appender *app;
	size_t samples;
	struct ward_err *err;
};

static int on_series(void *arg, const struct labels *ls, const int64_t *t, const double *v,
		     size_t n)
{
	struct write_ctx *w = arg;
	if (tsdb_append_n(w->app, ls, t, v, n, w->err) != 0)
		return -1;
	w->samples += n;
	return 0;
}

static void on_metadata(void *arg, const char *family, const char *type, const char *help,
			const char *unit)
{
	struct write_ctx *w = arg;
	tsdb_metadata_set(w->db, family, TSDB_META_TYPE, type);
	tsdb_metadata_set(w->db, family, TSDB_META_HELP, help);
	tsdb_metadata_set(w->db, family, TSDB_META_UNIT, unit);
}

static void count(int status, size_t accepted, size_t rejected)
{
	char c[8];
	snprintf(c, sizeof(c), "%d", status);
	const char *cv[] = {c};
	metric_add(m_requests, cv, 1);
	const char *a[] = {"accepted"}, *r[] = {"rejected"};
	metric_add(m_samples, a, (double)accepted);
	metric_add(m_samples, r, (double)rejected);
}

static void h_write(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct promapi *p = arg;
	const char *enc = http_header(req, "Content-Encoding");
	if (enc && strcasecmp(enc, "snappy") != 0) {
		http_resp_error(resp, 415, "bad_data",
				"unsupported Content-Encoding \"%s\"; remote_write sends snappy", enc);
		count(415, 0, 0);
		return;
	}
	size_t ulen = 0;
	if (ward_snappy_decoded_len(req->body, req->body_len, &ulen) < 0 ||
	    ulen > MAX_DECODED_BYTES) {
		http_resp_error(resp, 400, "bad_data",
				"body is not a snappy block (or decodes to more than %u MiB)",
				MAX_DECODED_BYTES >> 20);
		count(400, 0, 0);
		return;
	}
	char *raw = ward_xmalloc(ulen ? ulen : 1);
	if (ward_snappy_decode(req->body, req->body_len, raw, ulen) != 0) {
		free(raw);
		http_resp_error(resp, 400, "bad_data", "corrupt snappy block");
		count(400, 0, 0);
		return;
	}
	struct ward_err err;
	ward_err_clear(&err);
	struct write_ctx w = {.db = p->db, .app = tsdb_appender_new(p->db), .err = &err};
	struct promapi_write_sink sink = {.series = on_series, .metadata = on_metadata, .arg = &w};
	if (promapi_decode_write((const uint8_t *)raw, ulen, &sink, NULL, &err) != 0) {
		free(raw);
		tsdb_rollback(w.app);
		http_resp_error(resp, 400, "bad_data", "%s", err.msg);
		count(400, 0, 0);
		return;
	}
	free(raw);
	size_t rejected = 0;
	if (tsdb_commit(w.app, &rejected, &err) != 0) {
		http_resp_error(resp, 500, "internal", "write failed, retry later: %s", err.msg);
		count(500, 0, 0);
		return;
	}
	count(204, w.samples - rejected, rejected);
	resp->status = 204;
}

void promapi_write_register(struct promapi *p);
void promapi_write_register(struct promapi *p)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);
	http_route("POST", "/api/v1/write", ROLE_OPERATOR, h_write, p);
}
