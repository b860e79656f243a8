/* collect_expfmt.c: unit tests of the exposition-format parser (src/collect/expfmt.c):
 * realistic node_exporter-style 0.0.4 bodies and OpenMetrics bodies parse to the expected
 * samples, and every error path reports its line and what was expected. Each body is
 * copied into an exact-size heap buffer without terminator, so ASan catches any read past
 * the length. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/collect.h"

struct got {
	struct buf out;    /* one line per sample: labels value [@t] */
	struct buf meta;   /* one line per metadata line: KIND family text */
	size_t stop_after; /* 0: never stop */
	size_t n;
	bool sorted_ok;
};

static int on_sample(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	struct got *g = arg;

	for (size_t i = 0; i + 1 < ls->n; i++)
		if (strcmp(ls->v[i].name, ls->v[i + 1].name) >= 0)
			g->sorted_ok = false;
	for (size_t i = 0; i < ls->n; i++)
		if (!ls->v[i].value[0])
			g->sorted_ok = false;
	labels_write(&g->out, ls);
	buf_putc(&g->out, ' ');
	buf_put_double(&g->out, v);
	if (has_t)
		buf_printf(&g->out, " @%lld", (long long)t);
	buf_putc(&g->out, '\n');
	g->n++;
	return g->stop_after && g->n >= g->stop_after ? 1 : 0;
}

static int on_meta(void *arg, enum collect_meta_kind k, const char *fam, const char *text) {
	struct got *g = arg;
	static const char *const kinds[] = {"HELP", "TYPE", "UNIT"};

	buf_printf(&g->meta, "%s %s %s\n", kinds[k], fam, text);
	return 0;
}

static void got_free(struct got *g) {
	buf_free(&g->out);
	buf_free(&g->meta);
}

/* A sink with known(), as the scraper's cache uses it: while learning it answers "unknown"
 * and remembers each line's series text with its label set; afterwards it answers "known"
 * for those texts and supplies the remembered label set when sample() gets NULL. */
struct memo_ent {
	char *text;
	size_t n;
	uint64_t h;
	struct labels ls;
};
struct memo {
	struct got *g;
	bool learn;
	struct memo_ent *v;
	size_t nv;
	const char *cur; /* the line known() was last asked about */
	size_t ncur;
	ssize_t hit;
	size_t hits;
};

static ssize_t memo_find(const struct memo *m, const char *text, size_t n) {
	for (size_t i = 0; i < m->nv; i++)
		if (m->v[i].n == n && memcmp(m->v[i].text, text, n) == 0)
			return (ssize_t)i;
	return -1;
}

static bool memo_known(void *arg, const char *text, size_t n, uint64_t *h) {
	struct memo *m = arg;

	m->cur = text;
	m->ncur = n;
	m->hit = m->learn ? -1 : memo_find(m, text, n);
	if (m->hit < 0)
		return false;
	*h = m->v[m->hit].h;
	m->hits++;
	return true;
}

static int memo_sample(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	struct memo *m = arg;

	if (!ls) {
		assert_true(m->hit >= 0);
		return on_sample(m->g, &m->v[m->hit].ls, t, has_t, v);
	}
	assert_non_null(m->cur);
	if (memo_find(m, m->cur, m->ncur) < 0) {
		struct memo_ent *e;
		m->v = realloc(m->v, (m->nv + 1) * sizeof(*m->v));
		e = &m->v[m->nv++];
		e->text = malloc(m->ncur ? m->ncur : 1);
		memcpy(e->text, m->cur, m->ncur);
		e->n = m->ncur;
		e->h = labels_hash(ls);
		labels_init(&e->ls);
		labels_copy(&e->ls, ls);
	}
	m->cur = NULL;
	return on_sample(m->g, ls, t, has_t, v);
}

static int memo_meta(void *arg, enum collect_meta_kind k, const char *fam, const char *text) {
	struct memo *m = arg;
	return on_meta(m->g, k, fam, text);
}

/* Every body the tests parse is also parsed twice with a memo sink: learning, then with every
 * line it accepted known. Both must give exactly what the plain parse gave (samples,
 * metadata, rc, message, counts): known() saves work and changes nothing else. g0 is the
 * plain parse's got, whose output from this parse starts at out0/meta0 and whose count was
 * n0 before it (a got may collect several parses). */
static void check_known_is_invisible(const char *copy, size_t n, enum collect_format fmt,
                                     const struct collect_parse_limits *lim, const struct got *g0,
                                     size_t out0, size_t meta0, size_t n0, int rc0,
                                     const struct collect_parse_stats *st0,
                                     const struct ward_err *err0) {
	struct memo m = {.learn = true};
	struct collect_sample_sink sink = {memo_sample, memo_meta, &m, memo_known};
	size_t wl = g0->out.len - out0, ml = g0->meta.len - meta0;

	for (int pass = 0; pass < 2; pass++) {
		struct got g = {.stop_after = g0->stop_after, .n = n0, .sorted_ok = true};
		struct collect_parse_stats st;
		struct ward_err err;
		int rc;

		m.g = &g;
		m.learn = pass == 0;
		m.hits = 0;
		rc = collect_parse_exposition(copy, n, fmt, lim, &sink, &st, &err);
		if (rc != rc0 || strcmp(err.msg, err0->msg) != 0 || g.out.len != wl ||
		    (wl && memcmp(g.out.data, g0->out.data + out0, wl) != 0))
			print_error("pass %d with known(): rc %d (want %d) '%s' (want '%s')\n%s\n",
			            pass, rc, rc0, err.msg, err0->msg, buf_cstr(&g.out));
		assert_int_equal(rc, rc0);
		assert_string_equal(err.msg, err0->msg);
		assert_int_equal(g.out.len, wl);
		assert_true(wl == 0 || memcmp(g.out.data, g0->out.data + out0, wl) == 0);
		assert_int_equal(g.meta.len, ml);
		assert_true(ml == 0 || memcmp(g.meta.data, g0->meta.data + meta0, ml) == 0);
		assert_int_equal(g.sorted_ok, g0->sorted_ok);
		assert_int_equal(st.samples, st0->samples);
		assert_int_equal(st.lines, st0->lines);
		assert_int_equal(st.bytes, st0->bytes);
		assert_int_equal(st.err_line, st0->err_line);
		assert_int_equal(st.with_timestamp, st0->with_timestamp);
		if (pass == 1 && m.nv)
			assert_true(m.hits > 0); /* the known path ran */
		got_free(&g);
	}
	for (size_t i = 0; i < m.nv; i++) {
		free(m.v[i].text);
		labels_free(&m.v[i].ls);
	}
	free(m.v);
}

/* Parses s (copied without terminator) and returns the rc; g collects what the sink saw. */
static int parse_lim(const char *s, enum collect_format fmt, const struct collect_parse_limits *lim,
                     struct got *g, struct collect_parse_stats *st, struct ward_err *err) {
	size_t n = strlen(s);
	char *copy = malloc(n ? n : 1);
	struct collect_sample_sink sink = {on_sample, on_meta, g};
	size_t out0 = g->out.len, meta0 = g->meta.len, n0 = g->n;
	int rc;

	memcpy(copy, s, n);
	g->sorted_ok = true;
	rc = collect_parse_exposition(copy, n, fmt, lim, &sink, st, err);
	check_known_is_invisible(copy, n, fmt, lim, g, out0, meta0, n0, rc, st, err);
	free(copy);
	return rc;
}

static int parse(const char *s, enum collect_format fmt, struct got *g, struct ward_err *err) {
	struct collect_parse_stats st;
	return parse_lim(s, fmt, NULL, g, &st, err);
}

/* Expects parse failure with rc and a message that contains want. */
static void expect_err(const char *body, enum collect_format fmt, int want_rc, const char *want) {
	struct got g = {0};
	struct ward_err err;
	int rc = parse(body, fmt, &g, &err);

	if (rc != want_rc || !strstr(err.msg, want))
		print_error("body:\n%s\nrc %d (want %d), message: %s\nwant: %s\n", body, rc,
		            want_rc, err.msg, want);
	assert_int_equal(rc, want_rc);
	assert_non_null(strstr(err.msg, want));
	got_free(&g);
}

static const char node_exporter_body[] =
        "# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection "
        "cycles.\n"
        "# TYPE go_gc_duration_seconds summary\n"
        "go_gc_duration_seconds{quantile=\"0\"} 2.3411e-05\n"
        "go_gc_duration_seconds{quantile=\"0.25\"} 3.0146e-05\n"
        "go_gc_duration_seconds{quantile=\"1\"} 0.000417851\n"
        "go_gc_duration_seconds_sum 0.012541833\n"
        "go_gc_duration_seconds_count 214\n"
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
        "# TYPE node_cpu_seconds_total counter\n"
        "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 183426.65\n"
        "node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 84.95\n"
        "node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 183520.31\n"
        "# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in "
        "bytes.\n"
        "# TYPE node_filesystem_avail_bytes gauge\n"
        "node_filesystem_avail_bytes{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"} "
        "2.1932204032e+10\n"
        "# HELP node_network_info Non-numeric data from /sys/class/net/<iface>, value is always "
        "1.\n"
        "# TYPE node_network_info gauge\n"
        "node_network_info{address=\"52:54:00:12:34:56\",broadcast=\"ff:ff:ff:ff:ff:ff\","
        "device=\"eth0\",duplex=\"full\",ifalias=\"\",operstate=\"up\"} 1\n"
        "# HELP http_request_duration_seconds A histogram of request latencies.\n"
        "# TYPE http_request_duration_seconds histogram\n"
        "http_request_duration_seconds_bucket{handler=\"/\",le=\"0.1\"} 8\n"
        "http_request_duration_seconds_bucket{handler=\"/\",le=\"+Inf\"} 10\n"
        "http_request_duration_seconds_sum{handler=\"/\"} 1.75\n"
        "http_request_duration_seconds_count{handler=\"/\"} 10\n"
        "# A plain comment\n"
        "\n"
        "node_load1 0.21\n";

static void text_node_exporter_body_parses_to_expected_samples(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_stats st;
	const char *want =
	        "go_gc_duration_seconds{quantile=\"0\"} 2.3411e-05\n"
	        "go_gc_duration_seconds{quantile=\"0.25\"} 3.0146e-05\n"
	        "go_gc_duration_seconds{quantile=\"1\"} 0.000417851\n"
	        "go_gc_duration_seconds_sum 0.012541833\n"
	        "go_gc_duration_seconds_count 214\n"
	        "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 183426.65\n"
	        "node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 84.95\n"
	        "node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 183520.31\n"
	        "node_filesystem_avail_bytes{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/"
	        "\"} "
	        "2.1932204032e+10\n"
	        "node_network_info{address=\"52:54:00:12:34:56\",broadcast=\"ff:ff:ff:ff:ff:ff\","
	        "device=\"eth0\",duplex=\"full\",operstate=\"up\"} 1\n"
	        "http_request_duration_seconds_bucket{handler=\"/\",le=\"0.1\"} 8\n"
	        "http_request_duration_seconds_bucket{handler=\"/\",le=\"+Inf\"} 10\n"
	        "http_request_duration_seconds_sum{handler=\"/\"} 1.75\n"
	        "http_request_duration_seconds_count{handler=\"/\"} 10\n"
	        "node_load1 0.21\n";

	(void)state;
	assert_int_equal(parse_lim(node_exporter_body, COLLECT_FORMAT_AUTO, NULL, &g, &st, &err),
	                 COLLECT_OK);
	assert_string_equal(err.msg, "");
	assert_string_equal(buf_cstr(&g.out), want);
	assert_true(g.sorted_ok);
	assert_int_equal(st.format, COLLECT_FORMAT_TEXT_004);
	assert_int_equal(st.samples, 15);
	assert_int_equal(st.families, 6);
	assert_int_equal(st.with_timestamp, 0);
	assert_int_equal(st.bytes, strlen(node_exporter_body));
	assert_non_null(
	        strstr(buf_cstr(&g.meta), "TYPE http_request_duration_seconds histogram\n"));
	assert_non_null(
	        strstr(buf_cstr(&g.meta),
	               "HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"));
	got_free(&g);
}

static void text_accepts_blanks_timestamps_trailing_comma_and_crlf(void **state) {
	struct got g = {0};
	struct ward_err err;
	const char *body = "  metric_a { a = \"1\" , b=\"2\",}  3\t1732449063123  \r\n"
	                   "metric_b -1.5e3 -5\n"
	                   "metric_c{} 7";

	(void)state;
	assert_int_equal(parse(body, COLLECT_FORMAT_TEXT_004, &g, &err), COLLECT_OK);
	assert_string_equal(buf_cstr(&g.out), "metric_a{a=\"1\",b=\"2\"} 3 @1732449063123\n"
	                                      "metric_b -1500 @-5\n"
	                                      "metric_c 7\n");
	got_free(&g);
}

static void values_accept_nan_inf_and_exponents(void **state) {
	struct got g = {0};
	struct ward_err err;
	const char *body = "a NaN\nb +Inf\nc -Inf\nd Inf\ne 1e-3\nf .5\ng 5.\nh -0\ni 1E+2\n"
	                   "j nan\nk -infinity\nl 0.000000000000000000000000001\n";

	(void)state;
	assert_int_equal(parse(body, COLLECT_FORMAT_TEXT_004, &g, &err), COLLECT_OK);
	assert_string_equal(buf_cstr(&g.out), "a NaN\nb +Inf\nc -Inf\nd +Inf\ne 0.001\nf 0.5\n"
	                                      "g 5\nh -0\ni 100\nj NaN\nk -Inf\nl 1e-27\n");
	got_free(&g);
}

static int keep_value(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	*(double *)arg = v;
	return 0;
}

/* Decimals short enough for the parser's exact fast path (and some just past it) give
 * bit for bit what strtod gives: random mantissas of 1 to 17 digits, a point anywhere,
 * exponents from -30 to 30, signs, leading and trailing zeros. */
static void decimal_values_match_strtod_bit_for_bit(void **state) {
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char body[80], num[64];
	(void)state;
	for (int i = 0; i < 50000; i++) {
		size_t k = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int digits = 1 + (int)(x % 17), point = (int)((x >> 8) % (uint64_t)(digits + 2)) - 1;
		uint64_t r = x >> 16;
		if ((x >> 5) & 1)
			num[k++] = (x >> 6) & 1 ? '-' : '+';
		for (int d = 0; d < digits; d++) {
			if (d == point)
				num[k++] = '.';
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			num[k++] = (char)('0' + (d == 0 && (r & 3) == 0 ? 0 : (int)(x % 10)));
		}
		if ((r >> 3) & 1)
			k += (size_t)snprintf(num + k, sizeof(num) - k, "e%d", (int)((r >> 4) % 61) - 30);
		num[k] = 0;
		snprintf(body, sizeof(body), "m %s\n", num);
		double got = -1, want = strtod(num, NULL);
		struct collect_sample_sink sink = {.sample = keep_value, .arg = &got};
		struct ward_err err;
		assert_int_equal(collect_parse_exposition(body, strlen(body), COLLECT_FORMAT_TEXT_004,
		                                          NULL, &sink, NULL, &err),
		                 COLLECT_OK);
		if (memcmp(&got, &want, sizeof(got)) != 0)
			print_error("%s: got %.17g, strtod %.17g\n", num, got, want);
		assert_memory_equal(&got, &want, sizeof(got));
	}
}

static void label_values_unescape_and_keep_unknown_escapes_in_text(void **state) {
	struct got g = {0};
	struct ward_err err;
	const char *body = "m{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\"\\n\",odd=\"a\\tb\"} 1\n";

	(void)state;
	assert_int_equal(parse(body, COLLECT_FORMAT_TEXT_004, &g, &err), COLLECT_OK);
	/* labels_write escapes again: the round trip shows what was stored. */
	assert_string_equal(buf_cstr(&g.out),
	                    "m{msg=\"say \\\"hi\\\"\\n\",odd=\"a\\\\tb\",path=\"C:\\\\dir\"} 1\n");
	got_free(&g);
}

static void help_text_is_unescaped_and_reported(void **state) {
	struct got g = {0};
	struct ward_err err;

	(void)state;
	assert_int_equal(parse("# HELP m a\\\\b\\nc \\q\n# TYPE m gauge\nm 1\n",
	                       COLLECT_FORMAT_TEXT_004, &g, &err),
	                 COLLECT_OK);
	assert_string_equal(buf_cstr(&g.meta), "HELP m a\\b\nc \\q\nTYPE m gauge\n");
	got_free(&g);
}

static const char om_body[] =
        "# TYPE acme_http_router_request_seconds summary\n"
        "# UNIT acme_http_router_request_seconds seconds\n"
        "# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request "
        "router.\n"
        "acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32 "
        "1520879607.789\n"
        "acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0 "
        "1520879607.789\n"
        "acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n"
        "# TYPE go_goroutines gauge\n"
        "# HELP go_goroutines Number of goroutines that currently exist.\n"
        "go_goroutines 69\n"
        "# TYPE process_cpu_seconds counter\n"
        "# UNIT process_cpu_seconds seconds\n"
        "# HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n"
        "process_cpu_seconds_total 4.20072246e+06 1520879607\n"
        "process_cpu_seconds_total 4.20072247e+06 1520879608.5 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n"
        "# TYPE foo histogram\n"
        "foo_bucket{le=\"0.0\"} 0\n"
        "foo_bucket{le=\"1e-05\"} 0 # {trace_id=\"a\"} 0.000001 123.456\n"
        "foo_bucket{le=\"+Inf\"} 17\n"
        "foo_count 17\n"
        "foo_sum 324789.3\n"
        "foo_created 1520430000.123\n"
        "# TYPE build info\n"
        "build_info{version=\"1.2\"} 1\n"
        "# TYPE door stateset\n"
        "door{door=\"open\"} 1\n"
        "door{door=\"closed\"} 0\n"
        "# TYPE a_unknown unknown\n"
        "a_unknown{} NaN\n"
        "# EOF\n";

static void openmetrics_body_parses_with_seconds_timestamps_and_skips_exemplars(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_stats st;
	const char *want =
	        "acme_http_router_request_seconds_sum{method=\"GET\",path=\"/api/v1\"} 9036.32 "
	        "@1520879607789\n"
	        "acme_http_router_request_seconds_count{method=\"GET\",path=\"/api/v1\"} 807283 "
	        "@1520879607789\n"
	        "acme_http_router_request_seconds_created{method=\"GET\",path=\"/api/v1\"} "
	        "1.605281325e+09\n"
	        "go_goroutines 69\n"
	        "process_cpu_seconds_total 4.20072246e+06 @1520879607000\n"
	        "process_cpu_seconds_total 4.20072247e+06 @1520879608500\n"
	        "foo_bucket{le=\"0.0\"} 0\n"
	        "foo_bucket{le=\"1e-05\"} 0\n"
	        "foo_bucket{le=\"+Inf\"} 17\n"
	        "foo_count 17\n"
	        "foo_sum 324789.3\n"
	        "foo_created 1.520430000123e+09\n"
	        "build_info{version=\"1.2\"} 1\n"
	        "door{door=\"open\"} 1\n"
	        "door{door=\"closed\"} 0\n"
	        "a_unknown NaN\n";

	(void)state;
	assert_int_equal(parse_lim(om_body, COLLECT_FORMAT_AUTO, NULL, &g, &st, &err), COLLECT_OK);
	assert_string_equal(err.msg, "");
	assert_string_equal(buf_cstr(&g.out), want);
	assert_int_equal(st.format, COLLECT_FORMAT_OPENMETRICS);
	assert_int_equal(st.exemplars, 2);
	assert_int_equal(st.with_timestamp, 4);
	assert_int_equal(st.min_t_ms, 1520879607000);
	assert_int_equal(st.max_t_ms, 1520879608500);
	assert_int_equal(st.families, 7);
	assert_non_null(strstr(buf_cstr(&g.meta), "UNIT process_cpu_seconds seconds\n"));
	got_free(&g);
}

static void same_series_with_other_timestamps_is_not_a_duplicate(void **state) {
	struct got g = {0};
	struct ward_err err;

	(void)state;
	assert_int_equal(parse("# TYPE up gauge\nup 1 1\nup 0 2.5\nup 1 3\n# EOF",
	                       COLLECT_FORMAT_OPENMETRICS, &g, &err),
	                 COLLECT_OK);
	assert_string_equal(buf_cstr(&g.out), "up 1 @1000\nup 0 @2500\nup 1 @3000\n");
	got_free(&g);
	memset(&g, 0, sizeof(g));
	assert_int_equal(parse("up 1 1000\nup 0 2000\n", COLLECT_FORMAT_TEXT_004, &g, &err),
	                 COLLECT_OK);
	got_free(&g);
}

static void empty_body_and_empty_label_values_are_fine(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_stats st;

	(void)state;
	assert_int_equal(
	        collect_parse_exposition(NULL, 0, COLLECT_FORMAT_AUTO, NULL, NULL, &st, &err),
	        COLLECT_OK);
	assert_int_equal(st.samples, 0);
	assert_int_equal(parse("\n\n", COLLECT_FORMAT_AUTO, &g, &err), COLLECT_OK);
	assert_int_equal(parse("m{a=\"\",b=\"x\"} 1\n", COLLECT_FORMAT_AUTO, &g, &err), COLLECT_OK);
	assert_string_equal(buf_cstr(&g.out), "m{b=\"x\"} 1\n");
	assert_true(g.sorted_ok);
	got_free(&g);
}

static void text_syntax_errors_name_the_line_and_what_was_expected(void **state) {
	(void)state;
	expect_err("a 1\n9bad 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "line 2: expected a metric name, found '9bad'");
	expect_err("a{1=\"x\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "line 1: expected a label name or '}'");
	expect_err("a{b:c=\"x\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected '=' after label name 'b'");
	expect_err("a{b=x} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected '\"' to open the value of label 'b'");
	expect_err("a{b=\"x} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "the value of label 'b' is not closed");
	expect_err("a{b=\"x\\", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "the value of label 'b' is not closed");
	expect_err("a{b=\"x\" c=\"y\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected ',' or '}' after the value of label 'b', found 'c=\"y\"}'");
	expect_err("a{b=\"x\"}\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "line 1: expected a value after 'a'");
	expect_err("a{b=\"x\"}1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected a space and a value after 'a'");
	expect_err("a 0x1p3\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected a number as the value (like 1, -2.5e-3, NaN or +Inf), found '0x1p3'");
	expect_err("a 1e\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX, "found '1e'");
	expect_err("a 1_000\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX, "found '1_000'");
	expect_err("a 1e999\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "value '1e999' is out of range");
	expect_err("a 1 1.5\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected a timestamp in milliseconds (like 1732449063123) after the value, "
	           "found '1.5'");
	expect_err("a 1 99999999999999999999\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected a timestamp in milliseconds");
	expect_err("a 1 2 3\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected the end of the line after the timestamp, found '3'");
	expect_err("a{__name__=\"b\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "label name __name__ is reserved");
	expect_err("a{x=\"1\",x=\"2\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "label 'x' appears twice in one sample");
	expect_err("# TYPE\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected a metric name after '# TYPE'");
	expect_err("# TYPE a countr\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "unknown metric type 'countr' for 'a' (expected counter, gauge, histogram, "
	           "summary or untyped)");
	expect_err("# TYPE a info\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "unknown metric type 'info'");
	expect_err("# TYPE a gauge extra\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "unknown metric type 'gauge extra'");
	expect_err("# HELP 1a x\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "expected a metric name after '# HELP', found '1a x'");
}

static void nul_byte_in_a_line_is_an_error(void **state) {
	struct ward_err err;
	const char body[] = "a 1\nb{x=\"a\0b\"} 2\n";

	(void)state;
	assert_int_equal(collect_parse_exposition(body, sizeof(body) - 1, COLLECT_FORMAT_AUTO, NULL,
	                                          NULL, NULL, &err),
	                 COLLECT_ESYNTAX);
	assert_string_equal(err.msg, "line 2: the line contains a NUL byte");
}

static void invalid_utf8_in_label_values_and_help_is_an_error(void **state) {
	(void)state;
	expect_err("a{x=\"\xff\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "line 1: the value of label 'x' is not valid UTF-8");
	expect_err("a{x=\"\xc0\xaf\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "not valid UTF-8"); /* overlong '/' */
	expect_err("a{x=\"\xed\xa0\x80\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "not valid UTF-8"); /* a surrogate */
	expect_err("a{x=\"\xe2\x82\"} 1\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "not valid UTF-8"); /* truncated */
	expect_err("# HELP a caf\xe9\n", COLLECT_FORMAT_TEXT_004, COLLECT_ESYNTAX,
	           "the HELP text of 'a' is not valid UTF-8");

	struct got g = {0};
	struct ward_err err;
	assert_int_equal(
	        parse("a{x=\"caf\xc3\xa9 \xf0\x9f\x98\x80\"} 1\n", COLLECT_FORMAT_AUTO, &g, &err),
	        COLLECT_OK);
	got_free(&g);
}

static void duplicates_are_errors(void **state) {
	(void)state;
	expect_err("a{x=\"1\"} 1\nb 2\na{x=\"1\"} 3\n", COLLECT_FORMAT_TEXT_004, COLLECT_EDUP,
	           "line 3: duplicate series a{x=\"1\"}");
	/* label order does not make a different series */
	expect_err("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n", COLLECT_FORMAT_TEXT_004,
	           COLLECT_EDUP, "line 2: duplicate series");
	expect_err("a 1 1000\na 2 1000\n", COLLECT_FORMAT_TEXT_004, COLLECT_EDUP,
	           "duplicate series a at the same timestamp");
	expect_err("a 1 1000\na 2\n", COLLECT_FORMAT_TEXT_004, COLLECT_EDUP, "duplicate series a");
	expect_err("# TYPE a gauge\n# TYPE a counter\n", COLLECT_FORMAT_TEXT_004, COLLECT_EDUP,
	           "line 2: second TYPE line for 'a'");
	expect_err("# HELP a x\na 1\n# HELP a y\n", COLLECT_FORMAT_TEXT_004, COLLECT_EDUP,
	           "line 3: second HELP line for 'a'");
}

static void limits_are_enforced(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_stats st;
	struct collect_parse_limits lim = {0};

	(void)state;
	lim.max_samples = 2;
	assert_int_equal(parse_lim("a 1\nb 1\nc 1\n", COLLECT_FORMAT_AUTO, &lim, &g, &st, &err),
	                 COLLECT_ELIMIT);
	assert_string_equal(err.msg, "line 3: sample limit exceeded (2)");
	assert_int_equal(st.samples, 2);
	assert_int_equal(st.err_line, 3);
	assert_int_equal(g.n, 2);

	lim = (struct collect_parse_limits){0};
	lim.max_line_bytes = 8;
	assert_int_equal(parse_lim("a 1\nabcdefgh 1\n", COLLECT_FORMAT_AUTO, &lim, &g, &st, &err),
	                 COLLECT_ELIMIT);
	assert_string_equal(err.msg, "line 2: the line is longer than the limit of 8 bytes");
	/* exactly the limit is fine, also as a last line without '\n' */
	assert_int_equal(
	        parse_lim("abcdef 1\nabcdef 2", COLLECT_FORMAT_TEXT_004, &lim, &g, &st, &err),
	        COLLECT_EDUP);
	assert_int_equal(
	        parse_lim("abcdef 1\nabcdefg 2", COLLECT_FORMAT_TEXT_004, &lim, &g, &st, &err),
	        COLLECT_ELIMIT);

	lim = (struct collect_parse_limits){0};
	lim.max_label_count = 2;
	assert_int_equal(parse_lim("a{x=\"1\"} 1\na{x=\"1\",y=\"2\"} 1\n", COLLECT_FORMAT_AUTO,
	                           &lim, &g, &st, &err),
	                 COLLECT_ELIMIT);
	assert_string_equal(err.msg, "line 2: the sample has 3 labels (with __name__), more than "
	                             "the limit of 2");

	lim = (struct collect_parse_limits){0};
	lim.max_label_bytes = 4;
	assert_int_equal(parse_lim("a{x=\"1234\"} 1\na{x=\"12345\"} 1\n", COLLECT_FORMAT_AUTO, &lim,
	                           &g, &st, &err),
	                 COLLECT_ELIMIT);
	assert_string_equal(err.msg, "line 2: a label value is 5 bytes, more than the limit of 4");
	assert_int_equal(parse_lim("a{abcde=\"1\"} 1\n", COLLECT_FORMAT_AUTO, &lim, &g, &st, &err),
	                 COLLECT_ELIMIT);
	assert_int_equal(parse_lim("abcde 1\n", COLLECT_FORMAT_AUTO, &lim, &g, &st, &err),
	                 COLLECT_ELIMIT);
	got_free(&g);
}

static void a_huge_line_is_refused_without_scanning_past_the_limit(void **state) {
	size_t n = (size_t)4 << 20;
	char *body = malloc(n);
	struct ward_err err;
	struct collect_parse_stats st;

	(void)state;
	memset(body, 'a', n); /* one 4 MiB "line" without '\n' */
	assert_int_equal(
	        collect_parse_exposition(body, n, COLLECT_FORMAT_TEXT_004, NULL, NULL, &st, &err),
	        COLLECT_ELIMIT);
	assert_string_equal(err.msg, "line 1: the line is longer than the limit of 1048576 bytes");
	free(body);
}

static void openmetrics_errors_name_the_line(void **state) {
	(void)state;
	expect_err("# TYPE a gauge\na 1\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 3: the body ends without '# EOF'");
	expect_err("a 1\n# EOF\na 2\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 3: text after '# EOF'");
	expect_err("a 1\n# EOF\n\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 3: text after '# EOF'");
	expect_err("a 1\n\nb 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 2: empty line");
	expect_err("a  1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 1: expected a number as the value");
	expect_err("a 1 \n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "expected the end of the line or an exemplar");
	expect_err("a{x=\"1\",} 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 1: expected a label name, found '}'");
	expect_err("a{x=\"1\", y=\"1\"} 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "expected a label name, found ' '");
	expect_err("a{x=\"\\t\"} 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "invalid escape '\\t' in the value of label 'x'");
	expect_err("# HELP a x\\ty\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "invalid escape in the HELP text of 'a'");
	expect_err("# a comment\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 1: expected '# HELP', '# TYPE', '# UNIT' or '# EOF', found '# a comment'");
	expect_err("# TYPE a gaugehistogramx\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "unknown metric type 'gaugehistogramx'");
	expect_err("# TYPE a untyped\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "unknown metric type 'untyped'");
	expect_err("a 1 x\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "expected a timestamp in seconds (like 1732449063.123) after the value, found "
	           "'x'");
	expect_err("a 1 NaN\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "expected a timestamp in seconds");
	expect_err("a 1 1 junk\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "expected the end of the line or an exemplar (' # {...} value') after the "
	           "timestamp, found 'junk'");
	expect_err("# TYPE c counter\nc 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 2: counter 'c' must be sampled as c_total (or c_created), not c");
	expect_err("# TYPE h histogram\nh_bucket 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS,
	           COLLECT_ESYNTAX, "line 2: histogram bucket sample of 'h' has no 'le' label");
	expect_err("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS,
	           COLLECT_ESYNTAX, "label 'le' of 'h' must be a number");
	expect_err("# TYPE h histogram\nh 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "histogram 'h' must be sampled as h_bucket");
	expect_err("# TYPE s summary\ns 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "summary sample of 's' has no 'quantile' label");
	expect_err("# TYPE i info\ni 1\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "info 'i' must be sampled as i_info");
	expect_err("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n",
	           COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "line 5: metric family 'a' appears again after other families");
	expect_err("# TYPE a gauge\na 1\n# HELP a late\n# EOF\n", COLLECT_FORMAT_OPENMETRICS,
	           COLLECT_ESYNTAX, "line 3: '# HELP' for 'a' comes after its samples");
	expect_err("# UNIT a_bytes seconds\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "metric 'a_bytes' with unit 'seconds' must end in '_seconds'");
	expect_err("# UNIT a_seconds seconds\n# UNIT a_seconds seconds\n# EOF\n",
	           COLLECT_FORMAT_OPENMETRICS, COLLECT_EDUP, "line 2: second UNIT line");
	expect_err("a 1\r\n# EOF\n", COLLECT_FORMAT_OPENMETRICS, COLLECT_ESYNTAX,
	           "expected a number as the value");
}

static void auto_detects_openmetrics_by_the_eof_line(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_stats st;

	(void)state;
	assert_int_equal(parse_lim("a 1 1.5\n# EOF\n", COLLECT_FORMAT_AUTO, NULL, &g, &st, &err),
	                 COLLECT_OK);
	assert_int_equal(st.format, COLLECT_FORMAT_OPENMETRICS);
	assert_string_equal(buf_cstr(&g.out), "a 1 @1500\n");
	/* in 0.0.4 "# EOF" is just a comment */
	assert_int_equal(
	        parse_lim("a 1 1500\n# EOF\n", COLLECT_FORMAT_TEXT_004, NULL, &g, &st, &err),
	        COLLECT_OK);
	assert_int_equal(parse_lim("a 1 1500\n", COLLECT_FORMAT_AUTO, NULL, &g, &st, &err),
	                 COLLECT_OK);
	assert_int_equal(st.format, COLLECT_FORMAT_TEXT_004);
	got_free(&g);
}

static void content_type_names_the_format(void **state) {
	const char *om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
	const char *txt = "text/plain; version=0.0.4; charset=utf-8";

	(void)state;
	assert_int_equal(collect_format_from_content_type(om, strlen(om)),
	                 COLLECT_FORMAT_OPENMETRICS);
	assert_int_equal(collect_format_from_content_type(txt, strlen(txt)),
	                 COLLECT_FORMAT_TEXT_004);
	assert_int_equal(collect_format_from_content_type("application/json", 16),
	                 COLLECT_FORMAT_AUTO);
	assert_int_equal(collect_format_from_content_type(NULL, 0), COLLECT_FORMAT_AUTO);
	assert_string_equal(collect_format_name(COLLECT_FORMAT_OPENMETRICS), "openmetrics");
	assert_string_equal(collect_strerror(COLLECT_EDUP), "duplicate");
}

static void openmetrics_help_knows_quote_escapes_and_defaults_are_sane(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_limits lim;

	(void)state;
	assert_int_equal(parse("# HELP a say \\\"hi\\\" \\\\ \\n\n# HELP b\n# EOF\n",
	                       COLLECT_FORMAT_OPENMETRICS, &g, &err),
	                 COLLECT_OK);
	assert_string_equal(buf_cstr(&g.meta), "HELP a say \"hi\" \\ \n\nHELP b \n");
	collect_parse_limits_default(&lim);
	assert_int_equal(lim.max_samples, 0);
	assert_true(lim.max_line_bytes >= 65536);
	assert_true(lim.max_label_count >= 64);
	got_free(&g);
}

static void a_sink_can_stop_the_parse(void **state) {
	struct got g = {0};
	struct ward_err err;
	struct collect_parse_stats st;

	(void)state;
	g.stop_after = 2;
	assert_int_equal(parse_lim("a 1\nb 2\nc 3\n", COLLECT_FORMAT_AUTO, NULL, &g, &st, &err),
	                 COLLECT_ESTOPPED);
	assert_string_equal(err.msg, "line 2: the consumer stopped the parse");
	assert_int_equal(st.err_line, 2);
	assert_int_equal(g.n, 2);
	got_free(&g);
}

static void metrics_written_by_ward_itself_parse(void **state) {
	struct buf b = BUF_INIT;
	struct got g = {0};
	struct ward_err err;
	static const double buckets[] = {0.1, 1};
	static const char *const lnames[] = {"route", NULL};
	const char *vals[] = {"/api/v1/x \"q\"\\n", NULL};

	(void)state;
	metric_reset_all();
	metric_add(metric_register("t_requests_total", "Requests.\nSecond line \\", METRIC_COUNTER,
	                           lnames, NULL, 0),
	           vals, 3);
	metric_observe(metric_register("t_latency_seconds", "Latency.", METRIC_HISTOGRAM, NULL,
	                               buckets, 2),
	               NULL, 0.5);
	metric_write_all(&b);
	assert_int_equal(parse(buf_cstr(&b), COLLECT_FORMAT_AUTO, &g, &err), COLLECT_OK);
	assert_non_null(strstr(buf_cstr(&g.out), "t_latency_seconds_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(buf_cstr(&g.out), "route=\"/api/v1/x \\\"q\\\"\\\\n\"} 3\n"));
	metric_reset_all();
	buf_free(&b);
	got_free(&g);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(text_node_exporter_body_parses_to_expected_samples),
	        cmocka_unit_test(text_accepts_blanks_timestamps_trailing_comma_and_crlf),
	        cmocka_unit_test(values_accept_nan_inf_and_exponents),
	        cmocka_unit_test(decimal_values_match_strtod_bit_for_bit),
	        cmocka_unit_test(label_values_unescape_and_keep_unknown_escapes_in_text),
	        cmocka_unit_test(help_text_is_unescaped_and_reported),
	        cmocka_unit_test(
	                openmetrics_body_parses_with_seconds_timestamps_and_skips_exemplars),
	        cmocka_unit_test(same_series_with_other_timestamps_is_not_a_duplicate),
	        cmocka_unit_test(empty_body_and_empty_label_values_are_fine),
	        cmocka_unit_test(text_syntax_errors_name_the_line_and_what_was_expected),
	        cmocka_unit_test(nul_byte_in_a_line_is_an_error),
	        cmocka_unit_test(invalid_utf8_in_label_values_and_help_is_an_error),
	        cmocka_unit_test(duplicates_are_errors),
	        cmocka_unit_test(limits_are_enforced),
	        cmocka_unit_test(a_huge_line_is_refused_without_scanning_past_the_limit),
	        cmocka_unit_test(openmetrics_errors_name_the_line),
	        cmocka_unit_test(auto_detects_openmetrics_by_the_eof_line),
	        cmocka_unit_test(content_type_names_the_format),
	        cmocka_unit_test(openmetrics_help_knows_quote_escapes_and_defaults_are_sane),
	        cmocka_unit_test(a_sink_can_stop_the_parse),
	        cmocka_unit_test(metrics_written_by_ward_itself_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
