/* config.c: the "probes" configuration section: global limits and the list of checks,
 * decoded by the conf machinery into struct probe_conf, and the cross-field checks that
 * make every error point at file:line:col (kind-specific required keys, regexes that do
 * not compile, status code patterns, duplicate names, timeout longer than the interval).
 * Registered by probe_module's init.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"

const char *const probe_kind_names[] = {"http", "tcp", "dns", "postgresql", "redis", "exec", NULL};

#define CK(f) offsetof(struct probe_check_conf, f)
#define PC(f) offsetof(struct probe_conf, f)

static const struct conf_field check_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = CK(name),
         .flags = CONF_REQUIRED,
         .help = "unique name of the check (letters, digits, '_', '-', '.')"},
        {.key = "kind",
         .type = CONF_ENUM,
         .offset = CK(kind),
         .enum_names = probe_kind_names,
         .flags = CONF_REQUIRED,
         .help = "http, tcp, dns, postgresql, redis or exec"},
        {.key = "target",
         .type = CONF_STR,
         .offset = CK(target),
         .help = "URL (http), host:port (tcp, redis), name (dns), conninfo (postgresql)"},
        {.key = "interval",
         .type = CONF_DURATION,
         .offset = CK(interval_ms),
         .defval = "30s",
         .min = 1000,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "how often the check runs"},
        {.key = "timeout",
         .type = CONF_DURATION,
         .offset = CK(timeout_ms),
         .defval = "5s",
         .min = 10,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "a run taking longer fails with \"timeout after ...\" (at most the interval)"},
        {.key = "jitter",
         .type = CONF_DURATION,
         .offset = CK(jitter_ms),
         .defval = "1s",
         .min = 0,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "each run starts up to this much later than interval says (spreads load)"},
        {.key = "failure_threshold",
         .type = CONF_INT,
         .offset = CK(failure_threshold),
         .defval = "1",
         .min = 1,
         .max = 1000,
         .flags = CONF_RANGE,
         .help = "consecutive failures before the state becomes failing"},
        {.key = "success_threshold",
         .type = CONF_INT,
         .offset = CK(success_threshold),
         .defval = "1",
         .min = 1,
         .max = 1000,
         .flags = CONF_RANGE,
         .help = "consecutive successes before a failing check is ok again"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = CK(labels),
         .count_offset = CK(nlabels),
         .help = "labels added to every sample of the check"},
        {.key = "method",
         .type = CONF_STR,
         .offset = CK(method),
         .defval = "GET",
         .help = "http: request method"},
        {.key = "headers",
         .type = CONF_STRMAP,
         .offset = CK(headers),
         .count_offset = CK(nheaders),
         .flags = CONF_SECRET,
         .help = "http: request headers"},
        {.key = "body", .type = CONF_STR, .offset = CK(body), .help = "http: request body"},
        {.key = "valid_status_codes",
         .type = CONF_STRLIST,
         .offset = CK(valid_status_codes),
         .count_offset = CK(nvalid_status_codes),
         .help = "http: accepted codes (\"200\", \"2xx\", \"300-399\"); default 2xx"},
        {.key = "fail_if_body_matches_regexp",
         .type = CONF_STRLIST,
         .offset = CK(fail_if_body_matches),
         .count_offset = CK(nfail_if_body_matches),
         .help = "http: fail when the body matches any of these"},
        {.key = "fail_if_body_not_matches_regexp",
         .type = CONF_STRLIST,
         .offset = CK(fail_if_body_not_matches),
         .count_offset = CK(nfail_if_body_not_matches),
         .help = "http: fail unless the body matches every one of these"},
        {.key = "follow_redirects",
         .type = CONF_BOOL,
         .offset = CK(follow_redirects),
         .defval = "true",
         .help = "http: follow 3xx responses"},
        {.key = "max_redirects",
         .type = CONF_INT,
         .offset = CK(max_redirects),
         .defval = "10",
         .min = 0,
         .max = 100,
         .flags = CONF_RANGE,
         .help = "http: redirects followed at most"},
        {.key = "max_body",
         .type = CONF_SIZE,
         .offset = CK(max_body_bytes),
         .defval = "1MiB",
         .min = 0,
         .max = 1024.0 * 1024 * 1024,
         .flags = CONF_RANGE,
         .help = "http: body bytes kept for regex checks (the rest is read and dropped)"},
        {.key = "tls",
         .type = CONF_BOOL,
         .offset = CK(tls),
         .defval = "false",
         .help = "tcp, redis: speak TLS after connecting"},
        {.key = "tls_verify",
         .type = CONF_BOOL,
         .offset = CK(tls_verify),
         .defval = "true",
         .help = "verify the server's certificate chain and name"},
        {.key = "ca_file",
         .type = CONF_STR,
         .offset = CK(ca_file),
         .help = "PEM CA certificates to verify against instead of the system store"},
        {.key = "cert_file",
         .type = CONF_STR,
         .offset = CK(cert_file),
         .help = "PEM client certificate"},
        {.key = "key_file",
         .type = CONF_STR,
         .offset = CK(key_file),
         .help = "PEM key of cert_file"},
        {.key = "server_name",
         .type = CONF_STR,
         .offset = CK(server_name),
         .help = "tcp, redis: TLS server name (SNI and verification) when not the target's host"},
        {.key = "cert_min_validity",
         .type = CONF_DURATION,
         .offset = CK(cert_min_validity_ms),
         .defval = "0",
         .min = 0,
         .max = 3650 * 86400e3,
         .flags = CONF_RANGE,
         .help = "fail when the certificate expires sooner than this (0: never)"},
        {.key = "send",
         .type = CONF_STR,
         .offset = CK(send),
         .help = "tcp: bytes to send after connecting (\\n, \\r, \\t, \\\\ escapes)"},
        {.key = "expect",
         .type = CONF_STR,
         .offset = CK(expect),
         .help = "tcp: regex the server's answer must match; postgresql: regex for the "
                 "first column of the first row"},
        {.key = "expect_answers",
         .type = CONF_STRLIST,
         .offset = CK(expect_answers),
         .count_offset = CK(nexpect_answers),
         .help = "dns: regexes that must each match one answer"},
        {.key = "query_type",
         .type = CONF_STR,
         .offset = CK(query_type),
         .defval = "A",
         .help = "dns: A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV"},
        {.key = "dns_server",
         .type = CONF_STR,
         .offset = CK(dns_server),
         .help = "dns: server as ip[:port] (default: the system resolver)"},
        {.key = "query",
         .type = CONF_STR,
         .offset = CK(query),
         .defval = "SELECT 1",
         .help = "postgresql: the query to run"},
        {.key = "stats",
         .type = CONF_BOOL,
         .offset = CK(stats),
         .defval = "true",
         .help = "postgresql: also read connections and replication lag (when permitted)"},
        {.key = "password",
         .type = CONF_STR,
         .offset = CK(password),
         .flags = CONF_SECRET,
         .help = "redis: AUTH password"},
        {.key = "command",
         .type = CONF_STRLIST,
         .offset = CK(command),
         .count_offset = CK(ncommand),
         .help = "exec: program and arguments (a Nagios plugin), no shell"},
        {.key = "warning_ok",
         .type = CONF_BOOL,
         .offset = CK(warning_ok),
         .defval = "false",
         .help = "exec: a WARNING exit counts as success"},
        {.key = "max_output",
         .type = CONF_SIZE,
         .offset = CK(max_output_bytes),
         .defval = "64KiB",
         .min = 256,
         .max = 16 * 1024 * 1024,
         .flags = CONF_RANGE,
         .help = "exec: output kept; a plugin printing more is truncated"},
        {0},
};

static bool regex_ok(const char *re, struct ward_err *err, const struct conf_pos *pos,
                     const char *name, const char *key) {
	int ec;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
	if (c) {
		pcre2_code_free(c);
		return true;
	}
	PCRE2_UCHAR msg[256];
	pcre2_get_error_message(ec, msg, sizeof(msg));
	conf_error_at(err, pos,
	              "probes.checks[%s].%s: regex \"%s\" does not compile at offset "
	              "%zu: %s",
	              name, key, re, (size_t)off, (const char *)msg);
	return false;
}

static bool status_pattern_ok(const char *s) {
	size_t n = strlen(s);
	if (n == 3 && s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x')
		return true;
	char *end;
	long a = strtol(s, &end, 10);
	if (end == s || a < 100 || a > 599)
		return false;
	if (*end == '\0')
		return true;
	if (*end != '-')
		return false;
	const char *b = end + 1;
	long z = strtol(b, &end, 10);
	return end != b && *end == '\0' && z >= a && z <= 599;
}

bool probe_status_ok(const struct probe_check_conf *c, long st) {
	if (c->nvalid_status_codes == 0)
		return st >= 200 && st <= 299;
	for (size_t i = 0; i < c->nvalid_status_codes; i++) {
		const char *s = c->valid_status_codes[i];
		if (strlen(s) == 3 && s[1] == 'x') {
			if (st / 100 == s[0] - '0')
				return true;
			continue;
		}
		char *end;
		long a = strtol(s, &end, 10), z = a;
		if (*end == '-')
			z = strtol(end + 1, NULL, 10);
		if (st >= a && st <= z)
			return true;
	}
	return false;
}

static int check_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct probe_check_conf *c = obj;
	const char *n = c->name ? c->name : "?";
	int bad = 0;
	if (c->name) {
		for (const char *p = c->name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.')) {
				conf_error_at(err, pos,
				              "probes.checks[%s].name: only letters, digits, '_', "
				              "'-' and '.' are allowed",
				              n);
				bad = 1;
				break;
			}
		if (!c->name[0]) {
			conf_error_at(err, pos, "probes.checks: a check's name must not be empty");
			bad = 1;
		}
	}
	/* A run never overlaps the next one: the default 5s timeout of a 1s check is 1s. */
	if (c->timeout_ms > c->interval_ms)
		c->timeout_ms = c->interval_ms;
	if (c->kind == KIND_EXEC) {
		if (c->ncommand == 0) {
			conf_error_at(err, pos,
			              "probes.checks[%s].command: required for kind exec; give the "
			              "program and its arguments as a list",
			              n);
			bad = 1;
		} else if (c->command[0][0] != '/') {
			conf_error_at(err, pos,
			              "probes.checks[%s].command: \"%s\" is not an absolute path; "
			              "write the full path (no $PATH search)",
			              n, c->command[0]);
			bad = 1;
		}
	} else if (!c->target || !c->target[0]) {
		conf_error_at(err, pos, "probes.checks[%s].target: required for kind %s", n,
		              probe_kind_names[c->kind]);
		bad = 1;
	}
	if (c->kind == KIND_HTTP && c->target && !ward_has_prefix(c->target, "http://") &&
	    !ward_has_prefix(c->target, "https://")) {
		conf_error_at(err, pos,
		              "probes.checks[%s].target: \"%s\" is not an http:// or https:// URL",
		              n, c->target);
		bad = 1;
	}
	if ((c->kind == KIND_TCP || c->kind == KIND_REDIS) && c->target &&
	    !strrchr(c->target, ':')) {
		conf_error_at(err, pos,
		              "probes.checks[%s].target: \"%s\" has no port; write host:port", n,
		              c->target);
		bad = 1;
	}
	for (size_t i = 0; i < c->nvalid_status_codes; i++)
		if (!status_pattern_ok(c->valid_status_codes[i])) {
			conf_error_at(err, pos,
			              "probes.checks[%s].valid_status_codes: \"%s\" is not a code "
			              "(200), a class (2xx) or a range (200-299)",
			              n, c->valid_status_codes[i]);
			bad = 1;
		}
	for (size_t i = 0; i < c->nfail_if_body_matches; i++)
		bad |= !regex_ok(c->fail_if_body_matches[i], err, pos, n,
		                 "fail_if_body_matches_regexp");
	for (size_t i = 0; i < c->nfail_if_body_not_matches; i++)
		bad |= !regex_ok(c->fail_if_body_not_matches[i], err, pos, n,
		                 "fail_if_body_not_matches_regexp");
	for (size_t i = 0; i < c->nexpect_answers; i++)
		bad |= !regex_ok(c->expect_answers[i], err, pos, n, "expect_answers");
	if (c->expect)
		bad |= !regex_ok(c->expect, err, pos, n, "expect");
	if ((c->cert_file == NULL) != (c->key_file == NULL)) {
		conf_error_at(err, pos, "probes.checks[%s]: cert_file and key_file go together", n);
		bad = 1;
	}
	if (c->kind == KIND_DNS && c->query_type) {
		static const char *const types[] = {"A",   "AAAA", "CNAME", "MX",  "NS",
		                                    "TXT", "SOA",  "PTR",   "SRV", NULL};
		bool ok = false;
		for (size_t i = 0; types[i]; i++)
			ok |= strcmp(types[i], c->query_type) == 0;
		if (!ok) {
			conf_error_at(err, pos,
			              "probes.checks[%s].query_type: \"%s\" is not one of A, AAAA, "
			              "CNAME, MX, NS, TXT, SOA, PTR, SRV",
			              n, c->query_type);
			bad = 1;
		}
	}
	if (c->kind == KIND_DNS && c->dns_server) {
		char host[64];
		struct in_addr a;
		snprintf(host, sizeof(host), "%s", c->dns_server);
		char *colon = strchr(host, ':');
		long port = 53;
		if (colon) {
			*colon = '\0';
			char *end;
			port = strtol(colon + 1, &end, 10);
			if (*end)
				port = -1;
		}
		if (inet_pton(AF_INET, host, &a) != 1 || port < 1 || port > 65535) {
			conf_error_at(err, pos,
			              "probes.checks[%s].dns_server: \"%s\" is not an IPv4 "
			              "address with an optional port (127.0.0.53, 10.0.0.2:5353)",
			              n, c->dns_server);
			bad = 1;
		}
	}
	for (size_t i = 0; i < c->nlabels; i++) {
		const char *k = c->labels[i].key;
		if (!strcmp(k, "job") || !strcmp(k, "probe") || !strcmp(k, "instance") ||
		    ward_has_prefix(k, "__")) {
			conf_error_at(err, pos,
			              "probes.checks[%s].labels: \"%s\" is set by ward; choose "
			              "another name",
			              n, k);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

static const struct conf_schema check_schema = {.name = "check",
                                                .size = sizeof(struct probe_check_conf),
                                                .fields = check_fields,
                                                .validate = check_validate};

static int probes_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct probe_conf *pc = obj;
	int bad = 0;
	for (size_t i = 0; i < pc->nchecks; i++)
		for (size_t j = 0; j < i; j++)
			if (pc->checks[i].name && pc->checks[j].name &&
			    !strcmp(pc->checks[i].name, pc->checks[j].name)) {
				conf_error_at(err, pos,
				              "probes.checks[%zu]: name \"%s\" is already used by "
				              "checks[%zu]; names must be unique",
				              i, pc->checks[i].name, j);
				bad = 1;
			}
	return bad ? -1 : 0;
}

static const struct conf_field probes_fields[] = {
        {.key = "max_concurrency",
         .type = CONF_INT,
         .offset = PC(max_concurrency),
         .defval = "256",
         .min = 1,
         .max = 65536,
         .flags = CONF_RANGE,
         .help = "probes in flight at most; the others wait their turn"},
        {.key = "state_persist_interval",
         .type = CONF_DURATION,
         .offset = PC(state_persist_ms),
         .defval = "60s",
         .min = 0,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "how often an unchanged check's last result is written to the state store"},
        {.key = "checks",
         .type = CONF_OBJLIST,
         .offset = PC(checks),
         .sub = &check_schema,
         .count_offset = PC(nchecks),
         .help = "the checks"},
        {0},
};

static const struct conf_schema probes_schema = {.name = "probes",
                                                 .size = sizeof(struct probe_conf),
                                                 .fields = probes_fields,
                                                 .validate = probes_validate};

void probe_config_register(void) {
	(void)conf_register_section(&probes_schema);
}

char *probe_instance_of(const struct probe_check_conf *c) {
	if (c->kind == KIND_EXEC)
		return ward_strdup(c->target && c->target[0] ? c->target : c->command[0]);
	if (c->kind != KIND_POSTGRESQL)
		return ward_strdup(c->target);
	/* conninfo: keep host, port and dbname only, never a password. */
	struct buf b = BUF_INIT;
	const char *keys[] = {"host", "port", "dbname"};
	const char *t = c->target;
	if (ward_has_prefix(t, "postgres://") || ward_has_prefix(t, "postgresql://")) {
		const char *p = strstr(t, "://") + 3;
		const char *at = strchr(p, '@');
		const char *q = strchr(p, '?');
		if (at && (!q || at < q))
			p = at + 1;
		buf_append(&b, p, q ? (size_t)(q - p) : strlen(p));
		return buf_detach(&b);
	}
	for (size_t k = 0; k < 3; k++) {
		const char *s = t;
		size_t kl = strlen(keys[k]);
		while ((s = strstr(s, keys[k])) != NULL) {
			if ((s == t || s[-1] == ' ') && s[kl] == '=') {
				const char *v = s + kl + 1;
				size_t vl = strcspn(v, " ");
				if (b.len)
					buf_putc(&b, k == 2 ? '/' : ':');
				buf_append(&b, v, vl);
				break;
			}
			s += kl;
		}
	}
	if (!b.len)
		buf_puts(&b, "postgresql");
	return buf_detach(&b);
}
