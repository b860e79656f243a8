/* kind_http.c: the http/https probe on one libcurl multi handle driven by the libuv loop
 * (curl_multi_socket_action with a uv_poll per socket and one uv_timer), so thousands of
 * checks share one thread. Produces blackbox_exporter's http metrics: status code, phase
 * durations, content length, redirects, TLS version and earliest certificate expiry.
 *
 * Invariants: an easy handle is in the multi exactly while its run is in flight; its
 * CURLOPT_PRIVATE is the run. TLS details are read from the header callback, while the
 * connection is still attached to the transfer.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"

static CURLM *M;
static uv_loop_t *L;
static uv_timer_t M_timer;
static int M_handles; /* uv handles of ours still open */

struct sockctx {
	uv_poll_t poll;
	curl_socket_t fd;
};

struct hrun {
	struct probe_run *run;
	CURL *e;
	struct curl_slist *hdrs;
	struct buf body;
	int64_t body_total;
	double earliest_expiry; /* unix seconds; 0 when not seen */
	char tls_version[32];
	char errbuf[CURL_ERROR_SIZE];
};

double probe_cert_expiry_unix(const void *x509) {
	const ASN1_TIME *na = X509_get0_notAfter((const X509 *)x509);
	int days = 0, secs = 0;
	if (!na || !ASN1_TIME_diff(&days, &secs, NULL, na))
		return 0;
	return (double)time(NULL) + (double)days * 86400.0 + (double)secs;
}

static void note_tls(struct hrun *h) {
	const struct curl_tlssessioninfo *ti = NULL;
	if (h->tls_version[0])
		return;
	if (curl_easy_getinfo(h->e, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
	    ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals)
		return;
	SSL *ssl = ti->internals;
	snprintf(h->tls_version, sizeof(h->tls_version), "%s", SSL_get_version(ssl));
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		double t = probe_cert_expiry_unix(sk_X509_value(chain, i));
		if (t > 0 && (h->earliest_expiry == 0 || t < h->earliest_expiry))
			h->earliest_expiry = t;
	}
	X509 *leaf = SSL_get1_peer_certificate(ssl);
	if (leaf) {
		double t = probe_cert_expiry_unix(leaf);
		if (t > 0 && (h->earliest_expiry == 0 || t < h->earliest_expiry))
			h->earliest_expiry = t;
		X509_free(leaf);
	}
}

static size_t header_cb(char *p, size_t sz, size_t n, void *arg) {
	note_tls(arg);
	return sz * n;
}

static size_t write_cb(char *p, size_t sz, size_t n, void *arg) {
	struct hrun *h = arg;
	size_t len = sz * n;
	note_tls(h);
	h->body_total += (int64_t)len;
	int64_t room = h->run->cfg->max_body_bytes - (int64_t)h->body.len;
	if (room > 0)
		buf_append(&h->body, p, (size_t)room < len ? (size_t)room : len);
	return len;
}

static bool body_matches(const char *re, const struct buf *body) {
	int ec;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_MULTILINE, &ec,
	                              &off, NULL);
	if (!c)
		return false;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
	int rc = pcre2_match(c, (PCRE2_SPTR)(body->data ? body->data : ""), body->len, 0, 0, md,
	                     NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(c);
	return rc >= 0;
}

static double us(CURL *e, CURLINFO what) {
	curl_off_t v = 0;
	curl_easy_getinfo(e, what, &v);
	return (double)v / 1e6;
}

static void hrun_free(struct hrun *h) {
	if (h->e)
		curl_easy_cleanup(h->e);
	curl_slist_free_all(h->hdrs);
	buf_free(&h->body);
	free(h);
}

static void complete(struct hrun *h, CURLcode rc) {
	struct probe_run *r = h->run;
	const struct probe_check_conf *c = r->cfg;
	struct probe_result *res = &r->res;
	CURL *e = h->e;
	long status = 0, redirects = 0, httpver = 0;
	char *url = NULL, *ip = NULL;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
	curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
	curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &httpver);
	double t_dns = us(e, CURLINFO_NAMELOOKUP_TIME_T), t_conn = us(e, CURLINFO_CONNECT_TIME_T),
	       t_app = us(e, CURLINFO_APPCONNECT_TIME_T),
	       t_pre = us(e, CURLINFO_PRETRANSFER_TIME_T),
	       t_start = us(e, CURLINFO_STARTTRANSFER_TIME_T),
	       t_total = us(e, CURLINFO_TOTAL_TIME_T);
	curl_off_t clen = -1;
	curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	bool ssl = url && ward_has_prefix(url, "https://");

	probe_result_add(res, "probe_http_duration_seconds", t_dns, "phase", "resolve", NULL);
	probe_result_add(res, "probe_http_duration_seconds", t_conn > t_dns ? t_conn - t_dns : 0,
	                 "phase", "connect", NULL);
	probe_result_add(res, "probe_http_duration_seconds", t_app > t_conn ? t_app - t_conn : 0,
	                 "phase", "tls", NULL);
	double base = t_app > 0 ? t_app : t_conn;
	(void)t_pre;
	probe_result_add(res, "probe_http_duration_seconds", t_start > base ? t_start - base : 0,
	                 "phase", "processing", NULL);
	probe_result_add(res, "probe_http_duration_seconds",
	                 t_total > t_start && t_start > 0 ? t_total - t_start : 0, "phase",
	                 "transfer", NULL);
	probe_result_add(res, "probe_dns_lookup_time_seconds", t_dns, NULL);
	probe_result_add(res, "probe_http_status_code", (double)status, NULL);
	probe_result_add(res, "probe_http_content_length", (double)clen, NULL);
	probe_result_add(res, "probe_http_uncompressed_body_length", (double)h->body_total, NULL);
	probe_result_add(res, "probe_http_redirects", (double)redirects, NULL);
	probe_result_add(res, "probe_http_ssl", ssl ? 1 : 0, NULL);
	double ver = httpver == CURL_HTTP_VERSION_1_0   ? 1.0
	             : httpver == CURL_HTTP_VERSION_1_1 ? 1.1
	             : httpver == CURL_HTTP_VERSION_2_0 ? 2.0
	             : httpver == 30                    ? 3.0
	                                                : 0;
	probe_result_add(res, "probe_http_version", ver, NULL);
	if (ip && ip[0])
		probe_result_add(res, "probe_ip_protocol", strchr(ip, ':') ? 6 : 4, NULL);
	if (h->tls_version[0]) {
		probe_result_add(res, "probe_tls_version_info", 1, "version", h->tls_version, NULL);
	}
	if (h->earliest_expiry > 0)
		probe_result_add(res, "probe_ssl_earliest_cert_expiry", h->earliest_expiry, NULL);

	if (rc != CURLE_OK) {
		long os_errno = 0;
		curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
		char d[32];
		ward_fmt_duration(c->timeout_ms, d);
		if (rc == CURLE_OPERATION_TIMEDOUT)
			probe_result_fail(res, "timeout after %s (%s)", d, c->target);
		else if (rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
			probe_result_fail(res, "connection refused (%s)", c->target);
		else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
			probe_result_fail(res, "TLS certificate not accepted: %s",
			                  h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		else if (rc == CURLE_COULDNT_RESOLVE_HOST)
			probe_result_fail(res, "cannot resolve the host of %s", c->target);
		else
			probe_result_fail(res, "%s (%s)",
			                  h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
			                  c->target);
		probe_result_add(res, "probe_failed_due_to_regex", 0, NULL);
		goto out;
	}
	bool regex_failed = false;
	if (!probe_status_ok(c, status)) {
		probe_result_fail(res, "HTTP %ld from %s", status, url ? url : c->target);
	} else {
		for (size_t i = 0; i < c->nfail_if_body_matches && !regex_failed; i++)
			if (body_matches(c->fail_if_body_matches[i], &h->body)) {
				probe_result_fail(res, "body of %s matches \"%s\"", c->target,
				                  c->fail_if_body_matches[i]);
				regex_failed = true;
			}
		for (size_t i = 0; i < c->nfail_if_body_not_matches && !regex_failed; i++)
			if (!body_matches(c->fail_if_body_not_matches[i], &h->body)) {
				probe_result_fail(res, "body of %s does not match \"%s\"",
				                  c->target, c->fail_if_body_not_matches[i]);
				regex_failed = true;
			}
	}
	probe_result_add(res, "probe_failed_due_to_regex", regex_failed ? 1 : 0, NULL);
	if (res->success && c->cert_min_validity_ms > 0 && h->earliest_expiry > 0) {
		double left = h->earliest_expiry - (double)time(NULL);
		if (left < (double)c->cert_min_validity_ms / 1000.0) {
			if (left < 0)
				probe_result_fail(res, "certificate of %s expired %.0f days ago",
				                  c->target, -left / 86400.0);
			else
				probe_result_fail(res, "certificate of %s expires in %.0f days",
				                  c->target, left / 86400.0);
		}
	}
	if (res->success)
		buf_printf(&res->reason, "HTTP %ld from %s in %.3fs", status, url ? url : c->target,
		           t_total);
out:
	r->k = NULL;
	hrun_free(h);
	probe_run_done(r);
}

static void check_multi(void) {
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(M, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode rc = msg->data.result;
		struct hrun *h = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&h);
		curl_multi_remove_handle(M, e);
		if (h)
			complete(h, rc);
	}
}

static void sock_closed(uv_handle_t *hd) {
	M_handles--;
	free(hd->data);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
	struct sockctx *sc = p->data;
	int flags = 0, running;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(M, sc->fd, flags, &running);
	check_multi();
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
	struct sockctx *sc = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			uv_poll_stop(&sc->poll);
			uv_close((uv_handle_t *)&sc->poll, sock_closed);
			curl_multi_assign(M, s, NULL);
		}
		return 0;
	}
	if (!sc) {
		sc = ward_xcalloc(1, sizeof(*sc));
		sc->fd = s;
		if (uv_poll_init_socket(L, &sc->poll, s) != 0) {
			free(sc);
			return -1;
		}
		sc->poll.data = sc;
		M_handles++;
		curl_multi_assign(M, s, sc);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&sc->poll, ev, poll_cb);
	return 0;
}

static void mtimer_cb(uv_timer_t *t) {
	int running;
	curl_multi_socket_action(M, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi();
}

static int mtimer_set(CURLM *m, long timeout_ms, void *userp) {
	if (timeout_ms < 0)
		uv_timer_stop(&M_timer);
	else
		uv_timer_start(&M_timer, mtimer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

int probe_http_global_init(uv_loop_t *loop) {
	if (M)
		return 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	M = curl_multi_init();
	if (!M)
		return -1;
	L = loop;
	uv_timer_init(loop, &M_timer);
	M_handles = 1;
	curl_multi_setopt(M, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(M, CURLMOPT_TIMERFUNCTION, mtimer_set);
	/* Keep-alive connections to the same hosts are reused across runs, as a browser
	 * would; bounded so thousands of targets do not hold thousands of sockets. */
	curl_multi_setopt(M, CURLMOPT_MAXCONNECTS, 512L);
	return 0;
}

static void mtimer_closed(uv_handle_t *h) {
	M_handles--;
}

void probe_http_global_close(void) {
	if (!M)
		return;
	uv_timer_stop(&M_timer);
	/* Cleanup closes the cached connections through sock_cb (CURL_POLL_REMOVE). */
	curl_multi_cleanup(M);
	M = NULL;
	uv_close((uv_handle_t *)&M_timer, mtimer_closed);
	while (M_handles > 0)
		uv_run(L, UV_RUN_ONCE);
}

static int http_start(struct probe_run *r) {
	const struct probe_check_conf *c = r->cfg;
	struct hrun *h = ward_xcalloc(1, sizeof(*h));
	h->run = r;
	h->e = curl_easy_init();
	if (!h->e) {
		probe_result_fail(&r->res, "libcurl could not create a request (out of memory?)");
		hrun_free(h);
		return -1;
	}
	CURL *e = h->e;
	curl_easy_setopt(e, CURLOPT_URL, c->target);
	curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, c->follow_redirects ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)c->max_redirects);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ward-probe/" WARD_VERSION);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	}
	if (c->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
	}
	if (c->method && !strcmp(c->method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (c->method && strcmp(c->method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
	for (size_t i = 0; i < c->nheaders; i++) {
		struct buf hl = BUF_INIT;
		buf_printf(&hl, "%s: %s", c->headers[i].key, c->headers[i].value);
		h->hdrs = curl_slist_append(h->hdrs, buf_cstr(&hl));
		buf_free(&hl);
	}
	if (h->hdrs)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
	if (curl_multi_add_handle(M, e) != CURLM_OK) {
		probe_result_fail(&r->res, "libcurl refused the request");
		hrun_free(h);
		return -1;
	}
	r->k = h;
	return 0;
}

static void http_cancel(struct probe_run *r) {
	struct hrun *h = r->k;
	if (!h)
		return;
	curl_multi_remove_handle(M, h->e);
	r->k = NULL;
	probe_result_fail(&r->res, "cancelled");
	hrun_free(h);
	probe_run_done(r);
}

const struct probe_kind_ops probe_http_ops = {http_start, http_cancel};
