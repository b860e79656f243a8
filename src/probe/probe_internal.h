/* probe_internal.h: what the files of src/probe share: the decoded "probes" section, one
 * probe run (the contract between the scheduler in engine.c and the kinds in kind_*.c), and
 * the result a run produces.
 *
 * Contract of a kind: start(run) begins the work on run->loop and returns 0, or -1 after
 * filling run->res (then the engine finishes the run itself). A started kind calls
 * probe_run_done(run) exactly once, after it has released or scheduled the release of its
 * handles; it enforces run->cfg->timeout_ms itself. cancel(run) (at shutdown) makes it
 * finish promptly, still through probe_run_done. Everything runs on the loop thread.
 */
#ifndef WARD_PROBE_INTERNAL_H
#define WARD_PROBE_INTERNAL_H

#include <uv.h>

#include "conf/conf.h"
#include "probe/probe.h"

enum probe_kind { KIND_HTTP = 0, KIND_TCP, KIND_DNS, KIND_POSTGRESQL, KIND_REDIS, KIND_EXEC };
extern const char *const probe_kind_names[];

struct probe_check_conf {
	char *name;
	int kind;
	char *target;
	int64_t interval_ms, timeout_ms, jitter_ms;
	int64_t failure_threshold, success_threshold;
	struct conf_kv *labels;
	size_t nlabels;
	/* http */
	char *method;
	struct conf_kv *headers;
	size_t nheaders;
	char *body;
	char **valid_status_codes; /* "200", "2xx", "301-308" */
	size_t nvalid_status_codes;
	char **fail_if_body_matches, **fail_if_body_not_matches;
	size_t nfail_if_body_matches, nfail_if_body_not_matches;
	bool follow_redirects;
	int64_t max_redirects;
	/* tls (http, tcp, redis) */
	bool tls;
	bool tls_verify;
	char *ca_file, *cert_file, *key_file, *server_name;
	int64_t cert_min_validity_ms;
	/* tcp */
	char *send;
	char *expect; /* tcp: regex on what the server sends; dns, postgresql: see config.c */
	char **expect_answers; /* dns */
	size_t nexpect_answers;
	/* dns */
	char *query_type;
	char *dns_server;
	/* postgresql */
	char *query;
	bool stats;
	/* redis */
	char *password;
	/* exec */
	char **command;
	size_t ncommand;
	bool warning_ok;
	int64_t max_output_bytes;
	int64_t max_body_bytes;
};

struct probe_conf {
	int64_t max_concurrency;
	int64_t state_persist_ms;
	struct probe_check_conf *checks;
	size_t nchecks;
};

void probe_config_register(void);
/* The instance label of a check: its target, or for postgresql host:port/dbname (never a
 * password). New string. */
char *probe_instance_of(const struct probe_check_conf *c);

/* ---- one result ---- */
struct probe_sample {
	char *name;
	struct labels extra; /* labels beyond job/probe/instance and the configured ones */
	double v;
};
struct probe_result {
	bool success;
	struct buf reason; /* a sentence for a person; "" filled as "ok" on success */
	double duration_s;
	struct probe_sample *samples;
	size_t nsamples, cap;
};
void probe_result_init(struct probe_result *r);
void probe_result_free(struct probe_result *r);
/* Adds a sample; extra labels as NULL-terminated name, value pairs. */
void probe_result_add(struct probe_result *r, const char *name, double v, ...);
/* Sets success=false and the reason (replacing any). */
void probe_result_fail(struct probe_result *r, const char *fmt, ...) WARD_PRINTF(2, 3);

struct probe_check;
struct probe_run {
	struct probe_check *chk;
	const struct probe_check_conf *cfg;
	uv_loop_t *loop;
	int64_t start_ns; /* monotonic */
	struct probe_result res;
	void *k; /* the kind's state */
	bool cancelled;
};
void probe_run_done(struct probe_run *r);

struct probe_kind_ops {
	int (*start)(struct probe_run *r);
	void (*cancel)(struct probe_run *r);
};
extern const struct probe_kind_ops probe_http_ops, probe_tcp_ops, probe_dns_ops, probe_pg_ops,
        probe_redis_ops, probe_exec_ops;

/* HTTP kind plumbing: the curl multi handle is shared by all http runs. */
int probe_http_global_init(uv_loop_t *loop);
void probe_http_global_close(void);

/* Seconds until a certificate's notAfter (X509 *), for tcp and http. */
double probe_cert_expiry_unix(const void *x509);

/* Status code matching: "200", "2xx", "300-399"; empty list means 200-299. */
bool probe_status_ok(const struct probe_check_conf *c, long status);

#endif
