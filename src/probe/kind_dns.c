/* kind_dns.c: the dns probe: one query (A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV) sent
 * with libresolv (res_nmkquery + res_nsend on a private resolver state) on libuv's worker
 * pool, so the loop never waits; the answers are formatted as text ("192.0.2.1",
 * "10 mail.example.com.") and matched against expect_answers. The resolver's own timeout
 * is the probe's timeout (whole seconds, at least one) with a single try.
 *
 * Invariant: the work item owns nothing of the run until its after-work callback, which
 * runs on the loop thread and completes the run.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"

#define MAX_ANSWERS 64

struct drun {
	uv_work_t work;
	struct probe_run *run;
	char name[256];
	int type;
	bool has_server;
	struct sockaddr_in server;
	int timeout_s;
	/* results, written by the worker */
	int rc; /* 0 answered, -1 failed (err says why) */
	char err[256];
	int rcode, n_an, n_ns, n_ar;
	char *answers[MAX_ANSWERS];
	int nanswers;
	double lookup_s;
};

static int type_of(const char *s) {
	static const struct {
		const char *n;
		int t;
	} map[] = {{"A", ns_t_a},     {"AAAA", ns_t_aaaa}, {"CNAME", ns_t_cname},
	           {"MX", ns_t_mx},   {"NS", ns_t_ns},     {"TXT", ns_t_txt},
	           {"SOA", ns_t_soa}, {"PTR", ns_t_ptr},   {"SRV", ns_t_srv}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].n, s))
			return map[i].t;
	return ns_t_a;
}

static const char *rcode_name(int rc) {
	static const char *const n[] = {"NOERROR",  "FORMERR", "SERVFAIL",
	                                "NXDOMAIN", "NOTIMP",  "REFUSED"};
	return rc >= 0 && rc < 6 ? n[rc] : "RCODE?";
}

static void format_rr(const ns_msg *msg, const ns_rr *rr, struct buf *out) {
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rl = ns_rr_rdlen(*rr);
	char name[NS_MAXDNAME];
	const unsigned char *som = ns_msg_base(*msg), *eom = ns_msg_end(*msg);
	switch (ns_rr_type(*rr)) {
	case ns_t_a:
		if (rl == 4) {
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, rd, ip, sizeof(ip));
			buf_puts(out, ip);
		}
		break;
	case ns_t_aaaa:
		if (rl == 16) {
			char ip[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, rd, ip, sizeof(ip));
			buf_puts(out, ip);
		}
		break;
	case ns_t_cname:
	case ns_t_ns:
	case ns_t_ptr:
	case ns_t_soa:
		if (dn_expand(som, eom, rd, name, sizeof(name)) >= 0)
			buf_printf(out, "%s.", name);
		break;
	case ns_t_mx:
		if (rl > 2 && dn_expand(som, eom, rd + 2, name, sizeof(name)) >= 0)
			buf_printf(out, "%u %s.", (unsigned)ns_get16(rd), name);
		break;
	case ns_t_srv:
		if (rl > 6 && dn_expand(som, eom, rd + 6, name, sizeof(name)) >= 0)
			buf_printf(out, "%u %u %u %s.", (unsigned)ns_get16(rd),
			           (unsigned)ns_get16(rd + 2), (unsigned)ns_get16(rd + 4), name);
		break;
	case ns_t_txt:
		for (size_t i = 0; i < rl;) {
			size_t l = rd[i++];
			if (i + l > rl)
				break;
			buf_append(out, rd + i, l);
			i += l;
		}
		break;
	default:
		buf_printf(out, "type%d", ns_rr_type(*rr));
	}
}

static void dns_work(uv_work_t *w) {
	struct drun *d = w->data;
	struct __res_state st;
	unsigned char q[NS_PACKETSZ], ans[65536];
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0) {
		snprintf(d->err, sizeof(d->err), "the resolver could not be set up");
		d->rc = -1;
		return;
	}
	if (d->has_server) {
		st.nsaddr_list[0] = d->server;
		st.nscount = 1;
	}
	st.retrans = d->timeout_s;
	st.retry = 1;
	int ql = res_nmkquery(&st, ns_o_query, d->name, ns_c_in, d->type, NULL, 0, NULL, q,
	                      sizeof(q));
	if (ql < 0) {
		snprintf(d->err, sizeof(d->err), "not a valid name to query");
		d->rc = -1;
		goto out;
	}
	int64_t t0 = ward_mono_ns();
	int al = res_nsend(&st, q, ql, ans, sizeof(ans));
	d->lookup_s = (double)(ward_mono_ns() - t0) / 1e9;
	if (al < 0) {
		snprintf(d->err, sizeof(d->err), "no answer from the DNS server");
		d->rc = -1;
		goto out;
	}
	ns_msg msg;
	if (ns_initparse(ans, al, &msg) != 0) {
		snprintf(d->err, sizeof(d->err), "the DNS answer does not parse");
		d->rc = -1;
		goto out;
	}
	d->rcode = ns_msg_getflag(msg, ns_f_rcode);
	d->n_an = ns_msg_count(msg, ns_s_an);
	d->n_ns = ns_msg_count(msg, ns_s_ns);
	d->n_ar = ns_msg_count(msg, ns_s_ar);
	for (int i = 0; i < d->n_an && d->nanswers < MAX_ANSWERS; i++) {
		ns_rr rr;
		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
			break;
		struct buf b = BUF_INIT;
		format_rr(&msg, &rr, &b);
		d->answers[d->nanswers++] = buf_detach(&b);
	}
	d->rc = 0;
out:
	res_nclose(&st);
}

static bool match_any(const char *re, char **v, int n) {
	int ec;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
	if (!c)
		return false;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
	bool ok = false;
	for (int i = 0; i < n && !ok; i++)
		ok = pcre2_match(c, (PCRE2_SPTR)v[i], strlen(v[i]), 0, 0, md, NULL) >= 0;
	pcre2_match_data_free(md);
	pcre2_code_free(c);
	return ok;
}

static void dns_after(uv_work_t *w, int status) {
	struct drun *d = w->data;
	struct probe_run *r = d->run;
	const struct probe_check_conf *c = r->cfg;
	struct probe_result *res = &r->res;
	char dur[32];
	ward_fmt_duration(c->timeout_ms, dur);
	if (status == UV_ECANCELED) {
		probe_result_fail(res, "cancelled");
	} else if (d->rc != 0) {
		if (strstr(d->err, "no answer") &&
		    d->lookup_s * 1000 >= (double)c->timeout_ms * 0.9)
			probe_result_fail(res, "timeout after %s resolving %s %s", dur,
			                  c->query_type, d->name);
		else
			probe_result_fail(res, "%s (%s %s)", d->err, c->query_type, d->name);
	} else {
		probe_result_add(res, "probe_dns_lookup_time_seconds", d->lookup_s, NULL);
		probe_result_add(res, "probe_dns_answer_rrs", d->n_an, NULL);
		probe_result_add(res, "probe_dns_authority_rrs", d->n_ns, NULL);
		probe_result_add(res, "probe_dns_additional_rrs", d->n_ar, NULL);
		probe_result_add(res, "probe_dns_rcode", d->rcode, "rcode", rcode_name(d->rcode),
		                 NULL);
		if (d->rcode != 0) {
			probe_result_fail(res, "%s for %s %s", rcode_name(d->rcode), c->query_type,
			                  d->name);
		} else if (d->nanswers == 0) {
			probe_result_fail(res, "no %s record for %s", c->query_type, d->name);
		} else {
			for (size_t i = 0; i < c->nexpect_answers; i++)
				if (!match_any(c->expect_answers[i], d->answers, d->nanswers)) {
					probe_result_fail(
					        res,
					        "no answer for %s %s matches \"%s\" (got %s%s)",
					        c->query_type, d->name, c->expect_answers[i],
					        d->answers[0], d->nanswers > 1 ? ", ..." : "");
					break;
				}
			if (res->success)
				buf_printf(&res->reason, "%s %s -> %s%s", c->query_type, d->name,
				           d->answers[0], d->nanswers > 1 ? " (and more)" : "");
		}
	}
	for (int i = 0; i < d->nanswers; i++)
		free(d->answers[i]);
	free(d);
	r->k = NULL;
	probe_run_done(r);
}

static int dns_start(struct probe_run *r) {
	const struct probe_check_conf *c = r->cfg;
	struct drun *d = ward_xcalloc(1, sizeof(*d));
	d->run = r;
	snprintf(d->name, sizeof(d->name), "%s", c->target);
	d->type = type_of(c->query_type ? c->query_type : "A");
	d->timeout_s = (int)((c->timeout_ms + 999) / 1000);
	if (c->dns_server) {
		char host[64];
		int port = 53;
		snprintf(host, sizeof(host), "%s", c->dns_server);
		char *colon = strchr(host, ':');
		if (colon) {
			*colon = '\0';
			port = atoi(colon + 1);
		}
		d->server.sin_family = AF_INET;
		d->server.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &d->server.sin_addr) != 1 || port <= 0 ||
		    port > 65535) {
			probe_result_fail(&r->res,
			                  "dns_server \"%s\" is not an IPv4 address[:port]",
			                  c->dns_server);
			free(d);
			return -1;
		}
		d->has_server = true;
	}
	d->work.data = d;
	r->k = d;
	if (uv_queue_work(r->loop, &d->work, dns_work, dns_after) != 0) {
		probe_result_fail(&r->res, "the worker pool refused the lookup");
		r->k = NULL;
		free(d);
		return -1;
	}
	return 0;
}

static void dns_cancel(struct probe_run *r) {
	struct drun *d = r->k;
	if (d)
		uv_cancel((uv_req_t *)&d->work); /* a lookup already running ends by its timeout */
}

const struct probe_kind_ops probe_dns_ops = {dns_start, dns_cancel};
