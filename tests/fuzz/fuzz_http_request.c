/* fuzz_http_request.c: libFuzzer target for request handling. A real API server (the
 * http module on libmicrohttpd, with token auth against a real state store) listens on
 * 127.0.0.1; each input is sent as raw bytes on a fresh connection, the write side is
 * closed, and the answer is read until the server closes. The literal "TOKEN" in an input
 * is replaced by a valid admin token, so authenticated paths are reached too.
 * Finds: crashes, sanitizer reports and hangs in parsing, routing, auth, limits, params.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "http/http.h"
#include "store/store.h"

static int port;
static char token[80];

static void echo(struct http_req *req, struct http_resp *resp, void *arg)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "{");
	for (size_t i = 0; i < req->nparams; i++) {
		buf_json_str(&b, req->params[i].name, strlen(req->params[i].name));
		buf_putc(&b, ':');
		buf_json_str(&b, req->params[i].value, strlen(req->params[i].value));
		buf_putc(&b, ',');
	}
	buf_puts(&b, "\"tail\":");
	buf_json_str(&b, req->path_tail ? req->path_tail : "", req->path_tail ? strlen(req->path_tail) : 0);
	buf_puts(&b, "}");
	const char *ua = http_header(req, "User-Agent");
	if (ua)
		http_resp_header(resp, "X-Echo-UA", ua);
	http_resp_json(resp, 200, buf_cstr(&b));
	buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ward_err err;
	ward_err_clear(&err);
	ward_crypto_init();
	log_setup(LOG_ERROR, LOG_FORMAT_JSON, open("/dev/null", O_WRONLY));
	char dir[] = "/tmp/ward-fuzz-http-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	http_tokens_register();
	char path[128];
	snprintf(path, sizeof(path), "%s/state.db", dir);
	struct store *st = store_open(path, false, &err);
	if (!st)
		abort();
	if (http_token_create(st, "fuzz", ROLE_ADMIN, "fuzz", token, NULL, &err) != 0)
		abort();
	http_route(NULL, "/public", ROLE_PUBLIC, echo, NULL);
	http_route("GET", "/api/v1/echo/*", ROLE_VIEWER, echo, NULL);
	http_route("POST", "/api/v1/admin", ROLE_ADMIN, echo, NULL);
	struct http_config cfg = {
		.listen = "127.0.0.1:0",
		.threads = 2,
		.limits = {.max_body_bytes = 4096, .max_header_bytes = 8192, .rate_per_client = 0,
			   .burst = 1, .connection_timeout_ms = 1000, .max_connections = 64,
			   .max_connections_per_client = 64},
	};
	struct http_server *s = http_server_start(&cfg, st, NULL, &err);
	if (!s)
		abort();
	port = http_server_port(s);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf req = BUF_INIT;
	for (size_t i = 0; i < size; i++) {
		if (i + 5 <= size && memcmp(data + i, "TOKEN", 5) == 0) {
			buf_puts(&req, token);
			i += 4;
		} else {
			buf_putc(&req, (char)data[i]);
		}
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		size_t off = 0;
		while (off < req.len) {
			ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		shutdown(fd, SHUT_WR);
		char rbuf[4096];
		struct pollfd p = {.fd = fd, .events = POLLIN};
		/* Complete requests are answered within milliseconds; an incomplete one would
		 * wait for the server's idle timeout, which would only slow the fuzzer down. */
		while (poll(&p, 1, 100) > 0) {
			ssize_t r = recv(fd, rbuf, sizeof(rbuf), 0);
			if (r <= 0)
				break;
		}
	}
	close(fd);
	buf_free(&req);
	return 0;
}
