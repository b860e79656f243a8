/* promapi_decode.c: the remote_write decoder reads what Prometheus sends (labels, samples,
 * NaN values), skips exemplars and metadata, and refuses truncated or inconsistent
 * messages with the offset, never reading past the end.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promapi/promapi.h"

static void put_varint(struct buf *b, uint64_t v)
{
	while (v >= 0x80) {
		buf_putc(b, (char)(v | 0x80));
		v >>= 7;
	}
	buf_putc(b, (char)v);
}

static void put_ld(struct buf *b, unsigned field, const struct buf *inner)
{
	put_varint(b, field << 3 | 2);
	put_varint(b, inner->len);
	buf_append(b, inner->data, inner->len);
}

static void put_label(struct buf *ts, const char *n, const char *v)
{
	struct buf l = BUF_INIT, s = BUF_INIT;
	buf_puts(&s, n);
	put_ld(&l, 1, &s);
	buf_reset(&s);
	buf_puts(&s, v);
	put_ld(&l, 2, &s);
	put_ld(ts, 1, &l);
	buf_free(&l);
	buf_free(&s);
}

static void put_sample(struct buf *ts, double v, int64_t t)
{
	struct buf s = BUF_INIT;
	put_varint(&s, 1 << 3 | 1);
	uint64_t bits;
	memcpy(&bits, &v, 8);
	for (int i = 0; i < 8; i++)
		buf_putc(&s, (char)(bits >> (8 * i)));
	put_varint(&s, 2 << 3 | 0);
	put_varint(&s, (uint64_t)t);
	put_ld(ts, 2, &s);
	buf_free(&s);
}

struct got {
	int series;
	size_t samples;
	char first_job[32];
	double last_v;
	int64_t last_t;
};

static int sink(void *arg, const struct labels *ls, const int64_t *t, const double *v, size_t n)
{
	struct got *g = arg;
	if (g->series == 0 && labels_get(ls, "job"))
		snprintf(g->first_job, sizeof(g->first_job), "%s", labels_get(ls, "job"));
	g->series++;
	g->samples += n;
	if (n) {
		g->last_v = v[n - 1];
		g->last_t = t[n - 1];
	}
	return 0;
}

static void build_request(struct buf *req)
{
	struct buf ts = BUF_INIT;
	put_label(&ts, "__name__", "up");
	put_label(&ts, "job", "node");
	put_sample(&ts, 1, 1700000000000);
	put_sample(&ts, 0, 1700000015000);
	put_ld(req, 1, &ts);
	buf_reset(&ts);
	put_label(&ts, "__name__", "x");
	put_sample(&ts, NAN, 1700000030000);
	struct buf ex = BUF_INIT;
	buf_puts(&ex, "\x0a\x00");
	put_ld(&ts, 3, &ex); /* an exemplar: skipped */
	put_ld(req, 1, &ts);
	put_ld(req, 3, &ex); /* metadata: skipped */
	buf_free(&ts);
	buf_free(&ex);
}

static void decodes_series_labels_and_samples(void **state)
{
	struct buf req = BUF_INIT;
	build_request(&req);
	struct got g = {0};
	struct promapi_write_sink s = {.series = sink, .arg = &g};
	struct ward_err err;
	ward_err_clear(&err);
	size_t skipped = 0;
	assert_int_equal(promapi_decode_write((const uint8_t *)req.data, req.len, &s, &skipped, &err),
			 0);
	assert_int_equal(g.series, 2);
	assert_int_equal(g.samples, 3);
	assert_string_equal(g.first_job, "node");
	assert_true(isnan(g.last_v));
	assert_int_equal(g.last_t, 1700000030000);
	assert_int_equal(skipped, 1);
	buf_free(&req);
}

static char md_seen[256];

static void on_md(void *arg, const char *family, const char *type, const char *help,
		  const char *unit)
{
	snprintf(md_seen, sizeof(md_seen), "%s|%s|%s|%s", family, type, help, unit);
}

/* MetricMetadata (WriteRequest field 3) reaches the sink with its type named as Prometheus
 * names it; one without a family name is ignored. */
static void decodes_metric_metadata(void **state)
{
	struct buf req = BUF_INIT, md = BUF_INIT, str = BUF_INIT;
	put_varint(&md, 1 << 3 | 0);
	put_varint(&md, 1); /* COUNTER */
	buf_puts(&str, "http_requests_total");
	put_ld(&md, 2, &str);
	buf_reset(&str);
	buf_puts(&str, "Requests served.");
	put_ld(&md, 4, &str);
	put_ld(&req, 3, &md);
	struct promapi_write_sink s = {.metadata = on_md};
	struct ward_err err;
	ward_err_clear(&err);
	md_seen[0] = 0;
	assert_int_equal(promapi_decode_write((const uint8_t *)req.data, req.len, &s, NULL, &err),
			 0);
	assert_string_equal(md_seen, "http_requests_total|counter|Requests served.|");
	buf_free(&req);
	buf_free(&md);
	buf_free(&str);
}

static void truncated_request_is_refused_at_every_cut(void **state)
{
	struct buf req = BUF_INIT;
	build_request(&req);
	for (size_t cut = 1; cut < req.len; cut++) {
		struct got g = {0};
		struct promapi_write_sink s = {.series = sink, .arg = &g};
		struct ward_err err;
		ward_err_clear(&err);
		int rc = promapi_decode_write((const uint8_t *)req.data, cut, &s, NULL, &err);
		if (rc != 0)
			assert_non_null(strstr(err.msg, "byte"));
	}
	buf_free(&req);
}

static void duplicate_label_names_are_refused(void **state)
{
	struct buf req = BUF_INIT, ts = BUF_INIT;
	put_label(&ts, "__name__", "up");
	put_label(&ts, "job", "a");
	put_label(&ts, "job", "b");
	put_sample(&ts, 1, 1);
	put_ld(&req, 1, &ts);
	struct got g = {0};
	struct promapi_write_sink s = {.series = sink, .arg = &g};
	struct ward_err err;
	ward_err_clear(&err);
	assert_int_equal(promapi_decode_write((const uint8_t *)req.data, req.len, &s, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "duplicate label"));
	assert_int_equal(g.series, 0);
	buf_free(&req);
	buf_free(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_series_labels_and_samples),
		cmocka_unit_test(decodes_metric_metadata),
		cmocka_unit_test(truncated_request_is_refused_at_every_cut),
		cmocka_unit_test(duplicate_label_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
