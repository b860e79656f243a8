/* fuzz_logs_syslog.c: libFuzzer target for the syslog parser (RFC 5424 / 3164) and the
 * RFC 6587 framer: any bytes must parse without reading outside the input, every span
 * returned must lie inside it, and framing memory must stay bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logs/logs.h"

static void check_span(const char *base, size_t n, const char *p, size_t l) {
	if (l && (p < base || p + l > base + n))
		abort();
}

static void on_msg(void *arg, const char *m, size_t n) {
	struct logs_syslog_msg s;
	size_t *count = arg;
	(*count)++;
	if (n > 256)
		abort(); /* max_msg below */
	logs_syslog_parse(m, n, 1700000000000LL, &s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	/* An exact-size heap copy, so ASan sees any read past the end. */
	char *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	struct logs_syslog_msg s;
	logs_syslog_parse(p, size, 1700000000000LL, &s);
	check_span(p, size, s.host, s.host_len);
	check_span(p, size, s.app, s.app_len);
	check_span(p, size, s.procid, s.procid_len);
	check_span(p, size, s.msgid, s.msgid_len);
	check_span(p, size, s.sd, s.sd_len);
	check_span(p, size, s.msg, s.msg_len);
	struct logs_framer f;
	size_t count = 0;
	logs_framer_init(&f, 256);
	size_t half = size / 2;
	logs_framer_feed(&f, p, half, on_msg, &count);
	logs_framer_feed(&f, p + half, size - half, on_msg, &count);
	if (f.pending.len > 256 + 16)
		abort();
	logs_framer_finish(&f, on_msg, &count);
	logs_framer_free(&f);
	free(p);
	return 0;
}
