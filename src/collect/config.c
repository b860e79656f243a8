/* config.c: the collect module's config sections, decoded by the conf machinery:
 *   host:       the host collector (interval 10s, at least 1s; collectors; job/instance)
 *   processes:  interval and the watched processes (pidfile | comm | cmdline regex,
 *               optional Monit-style restart: command, at most max runs in cycles cycles)
 *   scrape:     Prometheus' global scrape settings and scrape_configs in Prometheus' own
 *               shape (a config section is a mapping, so the list sits under "scrape:").
 * Cross-field checks (regexes compile, one matcher per process, unique job names, timeout
 * at most the interval) point at file:line:col. Registered by collect_module's init.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect_internal.h"

/* ---- host ---- */
#define HC(f) offsetof(struct host_conf, f)
static const struct conf_field host_fields[] = {
        {.key = "enabled",
         .type = CONF_BOOL,
         .offset = HC(enabled),
         .defval = "true",
         .help = "collect host metrics (node_exporter's names)"},
        {.key = "interval",
         .type = CONF_DURATION,
         .offset = HC(interval_ms),
         .defval = "10s",
         .min = 1000,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "how often (at least 1s)"},
        {.key = "job",
         .type = CONF_STR,
         .offset = HC(job),
         .defval = "node",
         .help = "the job label of host samples in the tsdb"},
        {.key = "instance",
         .type = CONF_STR,
         .offset = HC(instance),
         .help = "the instance label (default: the host name)"},
        {.key = "collectors",
         .type = CONF_STRLIST,
         .offset = HC(collectors),
         .count_offset = HC(ncollectors),
         .help = "collectors to run (default all): cpu stat loadavg meminfo pressure diskstats "
                 "filesystem netdev netstat sockstat filefd time uname vmstat"},
        {.key = "procfs",
         .type = CONF_STR,
         .offset = HC(procfs),
         .defval = "/proc",
         .help = "where procfs is mounted"},
        {.key = "sysfs",
         .type = CONF_STR,
         .offset = HC(sysfs),
         .defval = "/sys",
         .help = "where sysfs is mounted"},
        {.key = "diskstats_device_exclude",
         .type = CONF_STR,
         .offset = HC(diskstats_device_exclude),
         .help = "regex of disks to leave out (default: node_exporter's)"},
        {.key = "filesystem_mount_points_exclude",
         .type = CONF_STR,
         .offset = HC(filesystem_mount_points_exclude),
         .help = "regex of mount points to leave out (default: node_exporter's)"},
        {.key = "filesystem_fs_types_exclude",
         .type = CONF_STR,
         .offset = HC(filesystem_fs_types_exclude),
         .help = "regex of file system types to leave out (default: node_exporter's)"},
        {.key = "netdev_device_exclude",
         .type = CONF_STR,
         .offset = HC(netdev_device_exclude),
         .help = "regex of network devices to leave out (default: none)"},
        {0},
};

static int host_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct host_conf *h = obj;
	int rc = 0;
	for (size_t i = 0; i < h->ncollectors; i++) {
		bool ok = false;
		for (int k = 0; host_collector_names[k]; k++)
			ok = ok || !strcmp(h->collectors[i], host_collector_names[k]);
		if (!ok) {
			conf_error_at(
			        err, pos,
			        "host.collectors: unknown collector \"%s\"; known: cpu stat "
			        "loadavg meminfo pressure diskstats filesystem netdev netstat "
			        "sockstat filefd time uname vmstat",
			        h->collectors[i]);
			rc = -1;
		}
	}
	const char *res[] = {h->diskstats_device_exclude, h->filesystem_mount_points_exclude,
	                     h->filesystem_fs_types_exclude, h->netdev_device_exclude};
	for (size_t i = 0; i < 4; i++) {
		struct matcher m;
		struct ward_err e;
		ward_err_clear(&e);
		if (!res[i] || !*res[i])
			continue;
		if (host_filter_init(&m, res[i], &e) != 0) {
			conf_error_at(err, pos, "host: filter regex \"%s\": %s", res[i], e.msg);
			rc = -1;
			continue;
		}
		matcher_free(&m);
	}
	return rc;
}

static const struct conf_schema host_schema = {.name = "host",
                                               .size = sizeof(struct host_conf),
                                               .fields = host_fields,
                                               .validate = host_validate};

/* ---- processes ---- */
#define PR(f) offsetof(struct proc_restart_conf, f)
static const struct conf_field restart_fields[] = {
        {.key = "command",
         .type = CONF_STR,
         .offset = PR(command),
         .help = "shell command run when the process is down (e.g. systemctl restart x)"},
        {.key = "max",
         .type = CONF_INT,
         .offset = PR(max),
         .defval = "3",
         .min = 1,
         .max = 1000,
         .flags = CONF_RANGE,
         .help = "run the command at most this many times ..."},
        {.key = "cycles",
         .type = CONF_INT,
         .offset = PR(cycles),
         .defval = "5",
         .min = 1,
         .max = 100000,
         .flags = CONF_RANGE,
         .help = "... within this many check cycles"},
        {0},
};
static const struct conf_schema restart_schema = {.name = "process_restart",
                                                  .size = sizeof(struct proc_restart_conf),
                                                  .fields = restart_fields};

#define PW(f) offsetof(struct proc_watch_conf, f)
static const struct conf_field watch_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = PW(name),
         .flags = CONF_REQUIRED,
         .help = "the process label of its metrics"},
        {.key = "pidfile",
         .type = CONF_STR,
         .offset = PW(pidfile),
         .help = "match the PID written in this file"},
        {.key = "comm",
         .type = CONF_STR,
         .offset = PW(comm),
         .help = "match processes with this exact name (/proc/PID/comm)"},
        {.key = "cmdline",
         .type = CONF_STR,
         .offset = PW(cmdline),
         .help = "match processes whose command line (arguments joined by spaces) matches"},
        {.key = "restart",
         .type = CONF_OBJ,
         .offset = PW(restart),
         .sub = &restart_schema,
         .help = "what to do when no process matches"},
        {0},
};

static int watch_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct proc_watch_conf *w = obj;
	int n = (w->pidfile != NULL) + (w->comm != NULL) + (w->cmdline != NULL);
	if (n != 1) {
		conf_error_at(
		        err, pos,
		        "processes.watch \"%s\": give exactly one of pidfile, comm or cmdline",
		        w->name ? w->name : "");
		return -1;
	}
	if (w->cmdline) {
		struct matcher m;
		struct ward_err e;
		ward_err_clear(&e);
		if (matcher_init(&m, MATCH_RE, "cmdline", w->cmdline, &e) != 0) {
			conf_error_at(err, pos, "processes.watch \"%s\": cmdline: %s", w->name,
			              e.msg);
			return -1;
		}
		matcher_free(&m);
	}
	return 0;
}

static const struct conf_schema watch_schema = {.name = "process",
                                                .size = sizeof(struct proc_watch_conf),
                                                .fields = watch_fields,
                                                .validate = watch_validate};

#define PS(f) offsetof(struct proc_conf, f)
static const struct conf_field proc_fields[] = {
        {.key = "interval",
         .type = CONF_DURATION,
         .offset = PS(interval_ms),
         .defval = "10s",
         .min = 1000,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "one check cycle"},
        {.key = "watch",
         .type = CONF_OBJLIST,
         .offset = PS(watch),
         .sub = &watch_schema,
         .count_offset = PS(nwatch),
         .help = "the processes to watch"},
        {0},
};

static int proc_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct proc_conf *p = obj;
	for (size_t i = 0; i < p->nwatch; i++)
		for (size_t j = 0; j < i; j++)
			if (ward_streq(p->watch[i].name, p->watch[j].name)) {
				conf_error_at(err, pos, "processes.watch: name \"%s\" used twice",
				              p->watch[i].name);
				return -1;
			}
	return 0;
}

static const struct conf_schema proc_schema = {.name = "processes",
                                               .size = sizeof(struct proc_conf),
                                               .fields = proc_fields,
                                               .validate = proc_validate};

/* ---- relabel_configs ---- */
const char *const relabel_action_names[] = {"replace",   "keep",      "drop",      "hashmod",
                                            "labelmap",  "labeldrop", "labelkeep", "lowercase",
                                            "uppercase", "keepequal", "dropequal", NULL};
#define RC(f) offsetof(struct relabel_conf, f)
static const struct conf_field relabel_fields[] = {
        {.key = "source_labels",
         .type = CONF_STRLIST,
         .offset = RC(source_labels),
         .count_offset = RC(nsource_labels),
         .help = "labels whose values are joined"},
        {.key = "separator",
         .type = CONF_STR,
         .offset = RC(separator),
         .defval = ";",
         .help = "between joined values"},
        {.key = "regex",
         .type = CONF_STR,
         .offset = RC(regex),
         .defval = "(.*)",
         .help = "fully anchored regex"},
        {.key = "modulus",
         .type = CONF_INT,
         .offset = RC(modulus),
         .min = 0,
         .max = 1e18,
         .flags = CONF_RANGE,
         .help = "hashmod: the modulus"},
        {.key = "target_label",
         .type = CONF_STR,
         .offset = RC(target_label),
         .help = "label written by replace, hashmod, lowercase, uppercase"},
        {.key = "replacement",
         .type = CONF_STR,
         .offset = RC(replacement),
         .defval = "$1",
         .help = "written value ($1, ${name} expand)"},
        {.key = "action",
         .type = CONF_ENUM,
         .offset = RC(action),
         .enum_names = relabel_action_names,
         .defval = "replace",
         .help = "replace keep drop hashmod labelmap labeldrop labelkeep lowercase uppercase "
                 "keepequal dropequal"},
        {0},
};

static int relabel_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct relabel_conf *r = obj;
	struct ward_err e;
	ward_err_clear(&e);
	struct relabel *rl = relabel_new(r, 1, &e);
	if (!rl) {
		conf_error_at(err, pos, "%s", e.msg);
		return -1;
	}
	relabel_free(rl);
	return 0;
}

const struct conf_schema relabel_schema = {.name = "relabel_config",
                                           .size = sizeof(struct relabel_conf),
                                           .fields = relabel_fields,
                                           .validate = relabel_validate};

/* ---- scrape ---- */
#define SS(f) offsetof(struct scrape_static_conf, f)
static const struct conf_field static_fields[] = {
        {.key = "targets",
         .type = CONF_STRLIST,
         .offset = SS(targets),
         .count_offset = SS(ntargets),
         .help = "host:port of each target"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = SS(labels),
         .count_offset = SS(nlabels),
         .help = "labels given to these targets"},
        {0},
};
static const struct conf_schema static_schema = {.name = "static_config",
                                                 .size = sizeof(struct scrape_static_conf),
                                                 .fields = static_fields};

#define BA(f) offsetof(struct scrape_basic_auth, f)
static const struct conf_field basic_fields[] = {
        {.key = "username", .type = CONF_STR, .offset = BA(username), .help = "user"},
        {.key = "password",
         .type = CONF_STR,
         .offset = BA(password),
         .flags = CONF_SECRET,
         .help = "password"},
        {.key = "password_file",
         .type = CONF_STR,
         .offset = BA(password_file),
         .help = "file holding the password"},
        {0},
};
static const struct conf_schema basic_schema = {
        .name = "basic_auth", .size = sizeof(struct scrape_basic_auth), .fields = basic_fields};

#define AZ(f) offsetof(struct scrape_authz, f)
static const struct conf_field authz_fields[] = {
        {.key = "type",
         .type = CONF_STR,
         .offset = AZ(type),
         .defval = "Bearer",
         .help = "the Authorization scheme"},
        {.key = "credentials",
         .type = CONF_STR,
         .offset = AZ(credentials),
         .flags = CONF_SECRET,
         .help = "the credentials"},
        {.key = "credentials_file",
         .type = CONF_STR,
         .offset = AZ(credentials_file),
         .help = "file holding the credentials"},
        {0},
};
static const struct conf_schema authz_schema = {
        .name = "authorization", .size = sizeof(struct scrape_authz), .fields = authz_fields};

#define SJ(f) offsetof(struct scrape_job_conf, f)
static const char *const scheme_names[] = {"http", "https", NULL};
static const struct conf_field job_fields[] = {
        {.key = "job_name",
         .type = CONF_STR,
         .offset = SJ(job_name),
         .flags = CONF_REQUIRED,
         .help = "the job label"},
        {.key = "scrape_interval",
         .type = CONF_DURATION,
         .offset = SJ(scrape_interval_ms),
         .min = 0,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "default: scrape.scrape_interval"},
        {.key = "scrape_timeout",
         .type = CONF_DURATION,
         .offset = SJ(scrape_timeout_ms),
         .min = 0,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "default: scrape.scrape_timeout"},
        {.key = "metrics_path",
         .type = CONF_STR,
         .offset = SJ(metrics_path),
         .defval = "/metrics",
         .help = "HTTP path"},
        {.key = "scheme",
         .type = CONF_STR,
         .offset = SJ(scheme),
         .defval = "http",
         .help = "http or https"},
        {.key = "params",
         .type = CONF_STRMAP,
         .offset = SJ(params),
         .count_offset = SJ(nparams),
         .help = "URL parameters (one value each)"},
        {.key = "basic_auth",
         .type = CONF_OBJ,
         .offset = SJ(basic_auth),
         .sub = &basic_schema,
         .help = "HTTP basic authentication"},
        {.key = "authorization",
         .type = CONF_OBJ,
         .offset = SJ(authorization),
         .sub = &authz_schema,
         .help = "Authorization header"},
        {.key = "bearer_token",
         .type = CONF_STR,
         .offset = SJ(bearer_token),
         .flags = CONF_SECRET,
         .help = "Authorization: Bearer (older Prometheus spelling)"},
        {.key = "bearer_token_file",
         .type = CONF_STR,
         .offset = SJ(bearer_token_file),
         .help = "file holding the bearer token"},
        {.key = "honor_labels",
         .type = CONF_BOOL,
         .offset = SJ(honor_labels),
         .defval = "false",
         .help = "keep the target's labels on conflict (else they become exported_*)"},
        {.key = "honor_timestamps",
         .type = CONF_BOOL,
         .offset = SJ(honor_timestamps),
         .defval = "true",
         .help = "use timestamps the target gives"},
        {.key = "tls_skip_verify",
         .type = CONF_BOOL,
         .offset = SJ(tls_skip_verify),
         .defval = "false",
         .help = "https: do not verify the certificate"},
        {.key = "sample_limit",
         .type = CONF_INT,
         .offset = SJ(sample_limit),
         .defval = "0",
         .min = 0,
         .max = 1e12,
         .flags = CONF_RANGE,
         .help = "a scrape with more samples (after metric relabeling) fails (0: none)"},
        {.key = "body_size_limit",
         .type = CONF_SIZE,
         .offset = SJ(body_size_limit),
         .defval = "0",
         .help = "default: scrape.body_size_limit"},
        {.key = "static_configs",
         .type = CONF_OBJLIST,
         .offset = SJ(static_configs),
         .sub = &static_schema,
         .count_offset = SJ(nstatic_configs),
         .help = "targets"},
        {.key = "relabel_configs",
         .type = CONF_OBJLIST,
         .offset = SJ(relabel_configs),
         .sub = &relabel_schema,
         .count_offset = SJ(nrelabel_configs),
         .help = "applied to target labels"},
        {.key = "metric_relabel_configs",
         .type = CONF_OBJLIST,
         .offset = SJ(metric_relabel_configs),
         .sub = &relabel_schema,
         .count_offset = SJ(nmetric_relabel_configs),
         .help = "applied to every scraped sample"},
        {0},
};

static int job_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct scrape_job_conf *j = obj;
	bool ok = false;
	for (int i = 0; scheme_names[i]; i++)
		ok = ok || ward_streq(j->scheme, scheme_names[i]);
	if (!ok) {
		conf_error_at(err, pos, "scrape_configs \"%s\": scheme must be http or https",
		              j->job_name);
		return -1;
	}
	if (j->scrape_interval_ms && j->scrape_timeout_ms > j->scrape_interval_ms) {
		conf_error_at(
		        err, pos,
		        "scrape_configs \"%s\": scrape_timeout is longer than scrape_interval",
		        j->job_name);
		return -1;
	}
	int nauth = (j->basic_auth.username != NULL) +
	            (j->authorization.credentials != NULL ||
	             j->authorization.credentials_file != NULL) +
	            (j->bearer_token != NULL || j->bearer_token_file != NULL);
	if (nauth > 1) {
		conf_error_at(
		        err, pos,
		        "scrape_configs \"%s\": give at most one of basic_auth, authorization "
		        "and bearer_token",
		        j->job_name);
		return -1;
	}
	return 0;
}

static const struct conf_schema job_schema = {.name = "scrape_config",
                                              .size = sizeof(struct scrape_job_conf),
                                              .fields = job_fields,
                                              .validate = job_validate};

#define SC(f) offsetof(struct scrape_conf, f)
static const struct conf_field scrape_fields[] = {
        {.key = "scrape_interval",
         .type = CONF_DURATION,
         .offset = SC(scrape_interval_ms),
         .defval = "1m",
         .min = 1000,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "default interval of every job"},
        {.key = "scrape_timeout",
         .type = CONF_DURATION,
         .offset = SC(scrape_timeout_ms),
         .defval = "10s",
         .min = 10,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "default timeout (capped at the job's interval)"},
        {.key = "max_concurrent",
         .type = CONF_INT,
         .offset = SC(max_concurrent),
         .defval = "64",
         .min = 1,
         .max = 10000,
         .flags = CONF_RANGE,
         .help = "scrapes in flight at most"},
        {.key = "body_size_limit",
         .type = CONF_SIZE,
         .offset = SC(body_size_limit),
         .defval = "64MiB",
         .min = 1024,
         .max = 4.0 * 1024 * 1024 * 1024,
         .flags = CONF_RANGE,
         .help = "a larger (decompressed) body fails the scrape"},
        {.key = "line_limit",
         .type = CONF_SIZE,
         .offset = SC(line_limit),
         .defval = "1MiB",
         .min = 256,
         .max = 256.0 * 1024 * 1024,
         .flags = CONF_RANGE,
         .help = "a longer exposition line fails the scrape"},
        {.key = "scrape_configs",
         .type = CONF_OBJLIST,
         .offset = SC(scrape_configs),
         .sub = &job_schema,
         .count_offset = SC(nscrape_configs),
         .help = "Prometheus' scrape_configs"},
        {0},
};

static int scrape_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct scrape_conf *s = obj;
	for (size_t i = 0; i < s->nscrape_configs; i++)
		for (size_t j = 0; j < i; j++)
			if (ward_streq(s->scrape_configs[i].job_name,
			               s->scrape_configs[j].job_name)) {
				conf_error_at(err, pos,
				              "scrape.scrape_configs: job_name \"%s\" "
				              "used twice",
				              s->scrape_configs[i].job_name);
				return -1;
			}
	return 0;
}

static const struct conf_schema scrape_schema = {.name = "scrape",
                                                 .size = sizeof(struct scrape_conf),
                                                 .fields = scrape_fields,
                                                 .validate = scrape_validate};

void collect_config_register(void) {
	(void)conf_register_section(&host_schema);
	(void)conf_register_section(&proc_schema);
	(void)conf_register_section(&scrape_schema);
}
