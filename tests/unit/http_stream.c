/* http_stream.c: streamed responses (http_resp_stream) send what the producer makes after
 * the response started, on the same request; an idle stream parks its connection, so with a
 * one-thread pool other requests are still answered; a client that goes away frees the
 * stream; and http_server_stop ends open streams at once instead of waiting out the grace.
 * Talks to a real server on 127.0.0.1 through raw sockets, every read bounded by a timeout.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_internal.h"

#define READ_TIMEOUT_MS 5000 /* generous for ASan builds; a pass takes milliseconds */

struct producer {
	atomic_int available; /* lines the test made available */
	int sent;             /* lines produced (stream thread only) */
	atomic_int freed;
};

static struct producer prod;

static enum http_stream_rc produce(void *arg, struct buf *out) {
	struct producer *p = arg;
	int avail = atomic_load(&p->available);
	if (avail < 0)
		return HTTP_STREAM_END;
	while (p->sent < avail)
		buf_printf(out, "line %d\n", p->sent++);
	return HTTP_STREAM_MORE;
}

static void producer_free(void *arg) {
	struct producer *p = arg;
	atomic_store(&p->freed, 1);
}

static void h_stream(struct http_req *req, struct http_resp *resp, void *arg) {
	http_resp_stream(req, resp, "application/x-ndjson", produce, producer_free, &prod);
}

static void h_refused(struct http_req *req, struct http_resp *resp, void *arg) {
	http_resp_stream(req, resp, "application/x-ndjson", produce, producer_free, &prod);
	http_resp_error(resp, 503, "unavailable", "too many streams");
}

static void h_ping(struct http_req *req, struct http_resp *resp, void *arg) {
	http_resp_json(resp, 200, "\"pong\"");
}

static struct http_server *start(void) {
	struct ward_err err;
	ward_err_clear(&err);
	http_routes_reset();
	http_route("GET", "/stream", ROLE_PUBLIC, h_stream, NULL);
	http_route("GET", "/refused", ROLE_PUBLIC, h_refused, NULL);
	http_route("GET", "/ping", ROLE_PUBLIC, h_ping, NULL);
	struct http_config cfg = {
	        .listen = "127.0.0.1:0",
	        .threads = 1, /* one pool thread: a stream that held it would starve /ping */
	        .limits = {.max_body_bytes = 4096,
	                   .max_header_bytes = 16384,
	                   .rate_per_client = 0,
	                   .burst = 1,
	                   .connection_timeout_ms = 30000,
	                   .max_connections = 64,
	                   .max_connections_per_client = 64},
	};
	struct http_server *s = http_server_start(&cfg, NULL, NULL, &err);
	assert_non_null(s);
	atomic_store(&prod.available, 0);
	atomic_store(&prod.freed, 0);
	prod.sent = 0;
	return s;
}

static int64_t mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port, const char *path) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
	assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	return fd;
}

/* Reads into got until it holds want (true) or the timeout passes or EOF (false). */
static bool read_until(int fd, struct buf *got, const char *want, int64_t timeout_ms) {
	int64_t deadline = mono_ms() + timeout_ms;
	while (!strstr(buf_cstr(got), want)) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		char tmp[4096];
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return strstr(buf_cstr(got), want) != NULL;
		buf_append(got, tmp, (size_t)n);
	}
	return true;
}

/* Waits for the stream to be freed; with keep_writing, makes a line every 10 ms meanwhile
 * (as heartbeats do: a write to a closed peer is what tells the server it is gone). */
static bool wait_freed(int64_t timeout_ms, bool keep_writing) {
	int64_t deadline = mono_ms() + timeout_ms;
	while (!atomic_load(&prod.freed) && mono_ms() < deadline) {
		if (keep_writing)
			atomic_fetch_add(&prod.available, 1);
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return atomic_load(&prod.freed);
}

static void stream_sends_lines_made_after_it_opened_and_parks_without_a_thread(void **state) {
	struct http_server *s = start();
	int port = http_server_port(s);
	atomic_store(&prod.available, 1);
	int fd = dial(port, "/stream");
	struct buf got = BUF_INIT;
	assert_true(read_until(fd, &got, "line 0\n", READ_TIMEOUT_MS));
	assert_non_null(strstr(buf_cstr(&got), "HTTP/1.1 200"));
	assert_non_null(strstr(buf_cstr(&got), "Transfer-Encoding: chunked"));
	assert_non_null(strstr(buf_cstr(&got), "Content-Type: application/x-ndjson"));
	assert_int_equal(http_server_streams(s), 1);

	/* The stream is idle (parked); the only pool thread must still answer others. */
	int other = dial(port, "/ping");
	struct buf pong = BUF_INIT;
	assert_true(read_until(other, &pong, "pong", READ_TIMEOUT_MS));
	close(other);
	buf_free(&pong);

	/* A line made now arrives on the open response, without a new request. */
	atomic_store(&prod.available, 3);
	assert_true(read_until(fd, &got, "line 2\n", READ_TIMEOUT_MS));
	assert_false(atomic_load(&prod.freed));

	/* The client goes away: the next write fails and the stream is freed. */
	close(fd);
	assert_true(wait_freed(READ_TIMEOUT_MS, true));
	buf_free(&got);
	http_server_stop(s, 1000);
}

static void producer_end_finishes_the_chunked_body(void **state) {
	struct http_server *s = start();
	atomic_store(&prod.available, 1);
	int fd = dial(http_server_port(s), "/stream");
	struct buf got = BUF_INIT;
	assert_true(read_until(fd, &got, "line 0\n", READ_TIMEOUT_MS));
	atomic_store(&prod.available, -1);
	assert_true(read_until(fd, &got, "\r\n0\r\n\r\n", READ_TIMEOUT_MS));
	assert_true(wait_freed(READ_TIMEOUT_MS, false));
	close(fd);
	buf_free(&got);
	http_server_stop(s, 1000);
}

static void an_error_status_drops_the_stream_and_sends_the_error(void **state) {
	struct http_server *s = start();
	int fd = dial(http_server_port(s), "/refused");
	struct buf got = BUF_INIT;
	assert_true(read_until(fd, &got, "too many streams", READ_TIMEOUT_MS));
	assert_non_null(strstr(buf_cstr(&got), "HTTP/1.1 503"));
	assert_true(atomic_load(&prod.freed));
	close(fd);
	buf_free(&got);
	http_server_stop(s, 1000);
}

static void server_stop_ends_open_streams_without_waiting_the_grace(void **state) {
	struct http_server *s = start();
	atomic_store(&prod.available, 1);
	int fd = dial(http_server_port(s), "/stream");
	struct buf got = BUF_INIT;
	assert_true(read_until(fd, &got, "line 0\n", READ_TIMEOUT_MS));
	int64_t t0 = mono_ms();
	http_server_stop(s, 20000);
	assert_true(mono_ms() - t0 < 3000); /* not the 20 s grace */
	assert_true(atomic_load(&prod.freed));
	/* The client saw the body end (last chunk) or the connection close, not a hang. */
	read_until(fd, &got, "\r\n0\r\n\r\n", READ_TIMEOUT_MS);
	assert_non_null(strstr(buf_cstr(&got), "\r\n0\r\n\r\n"));
	close(fd);
	buf_free(&got);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                stream_sends_lines_made_after_it_opened_and_parks_without_a_thread),
	        cmocka_unit_test(producer_end_finishes_the_chunked_body),
	        cmocka_unit_test(an_error_status_drops_the_stream_and_sends_the_error),
	        cmocka_unit_test(server_stop_ends_open_streams_without_waiting_the_grace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
