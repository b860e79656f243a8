/* client.c: ward's outbound HTTP client helpers through libcurl's easy API, as declared at the
 * end of http.h: one blocking request, and a streamed GET (live tails). Used by the CLI (to
 * talk to `ward serve`) and later by notifiers.
 *
 * Invariants: redirects are never followed (a 3xx comes back as is, so a token is never sent
 * to a second host); only http and https are spoken; the body is captured up to
 * HTTP_CLIENT_MAX_BODY bytes; on any failure before a response, status is 0 and error holds
 * curl's text. Our copy of the Authorization header is wiped after the request.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "http/http.h"

/* A CLI response (an audit page of 1000 entries) is a few MB at most; anything far larger
 * means we are talking to the wrong thing, and must not eat the client's memory. */
#define HTTP_CLIENT_MAX_BODY ((size_t)64 * 1024 * 1024)
/* Connecting to a live server takes milliseconds; a longer wait means it is not there. */
#define HTTP_CLIENT_CONNECT_TIMEOUT_MS 10000
#define HTTP_CLIENT_DEFAULT_TIMEOUT_MS 30000

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static CURLcode client_global_rc = CURLE_OK;

static void client_global_init(void) {
	client_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct client_sink {
	struct buf *body;
	bool too_large;
};

static size_t client_write_cb(char *ptr, size_t size, size_t nmemb, void *arg) {
	struct client_sink *sink = arg;
	size_t n = size * nmemb;

	if (sink->body->len + n > HTTP_CLIENT_MAX_BODY) {
		sink->too_large = true;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	buf_append(sink->body, ptr, n);
	return n;
}

static void client_fail(struct http_client_resp *out, const char *fmt, ...) WARD_PRINTF(2, 3);
static void client_fail(struct http_client_resp *out, const char *fmt, ...) {
	va_list ap;

	out->status = 0;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
}

static const char *ca_file; /* set once at start, read by every request */

void http_client_set_ca_file(const char *path)
{
	ca_file = path;
}

/* A fresh libcurl handle (the library initialised once), or NULL with out's error set. */
static CURL *client_handle(struct http_client_resp *out) {
	pthread_once(&client_once, client_global_init);
	if (client_global_rc != CURLE_OK) {
		client_fail(out, "cannot initialise libcurl: %s",
		            curl_easy_strerror(client_global_rc));
		return NULL;
	}
	CURL *h = curl_easy_init();
	if (!h)
		client_fail(out, "%s", "cannot initialise a libcurl handle (out of memory?)");
	return h;
}

int http_client_do(const char *method, const char *url, const char *token, const char *content_type,
                   const char *body, size_t body_len, int64_t timeout_ms,
                   struct http_client_resp *out) {
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct buf auth = BUF_INIT;
	struct buf ctype = BUF_INIT;
	struct client_sink sink;
	CURL *h = NULL;
	CURLcode rc;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&out->body);
	sink.body = &out->body;
	sink.too_large = false;

	if (!method || !url) {
		client_fail(out, "%s", "http_client_do: method and url are required");
		return -1;
	}
	h = client_handle(out);
	if (!h)
		return -1;
	if (timeout_ms <= 0)
		timeout_ms = HTTP_CLIENT_DEFAULT_TIMEOUT_MS;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(timeout_ms < HTTP_CLIENT_CONNECT_TIMEOUT_MS
	                                ? timeout_ms
	                                : HTTP_CLIENT_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(h, CURLOPT_USERAGENT, "ward/" WARD_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	/* Proxies from the environment would see the bearer token; the CLI talks to its own
	 * server, and notifiers will set a proxy explicitly when they need one. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);

	headers = curl_slist_append(headers, "Accept: application/json");
	if (token && token[0]) {
		buf_printf(&auth, "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, buf_cstr(&auth));
	}
	if (content_type && content_type[0]) {
		buf_printf(&ctype, "Content-Type: %s", content_type);
		headers = curl_slist_append(headers, buf_cstr(&ctype));
	}
	/* No "Expect: 100-continue" round trip for larger bodies. */
	headers = curl_slist_append(headers, "Expect:");
	if (!headers) {
		client_fail(out, "%s", "cannot build request headers (out of memory?)");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		}
	}

	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (sink.too_large) {
			char lim[32];
			ward_fmt_size((int64_t)HTTP_CLIENT_MAX_BODY, lim);
			client_fail(out, "the response body is larger than %s; refusing to read it",
			            lim);
		} else {
			client_fail(out, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		}
		buf_free(&out->body);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	if (out->status == 0) {
		client_fail(out, "%s", "no HTTP status in the response");
		goto out;
	}
	ret = 0;
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	if (auth.data)
		explicit_bzero(auth.data, auth.cap);
	buf_free(&auth);
	buf_free(&ctype);
	buf_cstr(&out->body); /* callers may treat the body as a string */
	return ret;
}

void http_client_resp_free(struct http_client_resp *r) {
	if (!r)
		return;
	buf_free(&r->body);
	r->status = 0;
	r->error[0] = '\0';
}

/* ---- streamed GET ---- */

/* An error answer's body is a small JSON envelope; keep no more of it than this. */
#define HTTP_CLIENT_MAX_ERROR_BODY ((size_t)64 * 1024)

struct stream_sink {
	CURL *h;
	http_client_data_fn on_data;
	void *arg;
	struct buf *body; /* a non-2xx answer's body */
	bool stopped;     /* on_data returned false */
};

static size_t stream_write_cb(char *ptr, size_t size, size_t nmemb, void *arg) {
	struct stream_sink *sink = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(sink->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		if (sink->body->len < HTTP_CLIENT_MAX_ERROR_BODY)
			buf_append(sink->body, ptr,
			           n < HTTP_CLIENT_MAX_ERROR_BODY - sink->body->len
			                   ? n
			                   : HTTP_CLIENT_MAX_ERROR_BODY - sink->body->len);
		return n;
	}
	if (!sink->on_data(sink->arg, ptr, n)) {
		sink->stopped = true;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

int http_client_stream(const char *url, const char *token, const char *accept,
                       int64_t idle_timeout_ms, http_client_data_fn on_data, void *arg,
                       struct http_client_resp *out) {
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct buf auth = BUF_INIT, acc = BUF_INIT;
	struct stream_sink sink = {0};
	CURL *h = NULL;
	CURLcode rc;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&out->body);
	if (!url || !on_data) {
		client_fail(out, "%s", "http_client_stream: url and on_data are required");
		return -1;
	}
	h = client_handle(out);
	if (!h)
		return -1;
	if (idle_timeout_ms <= 0)
		idle_timeout_ms = HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
	sink.h = h;
	sink.on_data = on_data;
	sink.arg = arg;
	sink.body = &out->body;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTP_CLIENT_CONNECT_TIMEOUT_MS);
	/* No overall timeout: a stream lasts as long as it lasts. Silence is the failure: less
	 * than one byte a second for the idle time (heartbeats keep a live stream above it). */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((idle_timeout_ms + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_USERAGENT, "ward/" WARD_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* as http_client_do: the token stays ours */
	if (ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
	buf_printf(&acc, "Accept: %s", accept && accept[0] ? accept : "*/*");
	headers = curl_slist_append(headers, buf_cstr(&acc));
	if (token && token[0]) {
		buf_printf(&auth, "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, buf_cstr(&auth));
	}
	if (!headers) {
		client_fail(out, "%s", "cannot build request headers (out of memory?)");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && sink.stopped)) {
		client_fail(out, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	if (out->status == 0) {
		client_fail(out, "%s", "no HTTP status in the response");
		goto out;
	}
	ret = 0;
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	if (auth.data)
		explicit_bzero(auth.data, auth.cap);
	buf_free(&auth);
	buf_free(&acc);
	buf_cstr(&out->body);
	return ret;
}
