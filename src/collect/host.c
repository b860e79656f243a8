/* host.c: the host collector: reads /proc and /sys and emits node_exporter's metric names,
 * labels, units and default device/filesystem filters, so that dashboards and rules
 * written for node_exporter work unchanged. Each collector reads its own files; a
 * missing file (no /proc/pressure on old kernels) just skips it. Pure and reentrant: the
 * module calls host_gather() from libuv's worker pool; the unit tests call it on a fixture
 * tree (struct host_opts.procfs/sysfs).
 * TCP connection states: node_exporter has no such family by default (its tcpstat
 * collector is off); we emit node_sockstat_TCP_inuse/_tw/_orphan/_alloc like it does.
 */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "collect/collect_internal.h"

const char *const host_collector_names[] = {"cpu",      "stat",      "loadavg",    "meminfo",
                                            "pressure", "diskstats", "filesystem", "netdev",
                                            "netstat",  "sockstat",  "filefd",     "time",
                                            "uname",    "vmstat",    NULL};

/* node_exporter's defaults (collector/diskstats_linux.go, filesystem_linux.go,
 * netstat_linux.go, vmstat_linux.go). */
#define NETSTAT_FIELDS                                                                        \
	"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|" \
	"OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|"       \
	"TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|"      \
	"CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
#define VMSTAT_FIELDS "^(oom_kill|pgpg|pswp|pg.*fault).*"

#define HOST_FILE_MAX (4u << 20) /* /proc files are small; /proc/stat on 1000 CPUs ~ 200k */

void host_opts_from_conf(struct host_opts *o, const struct host_conf *hc) {
	o->procfs = hc && hc->procfs ? hc->procfs : "/proc";
	o->sysfs = hc && hc->sysfs ? hc->sysfs : "/sys";
	o->disk_exclude = hc && hc->diskstats_device_exclude ? hc->diskstats_device_exclude
	                                                     : HOST_DISK_EXCLUDE;
	o->mount_exclude = hc && hc->filesystem_mount_points_exclude
	                           ? hc->filesystem_mount_points_exclude
	                           : HOST_FS_MOUNT_EXCLUDE;
	o->fstype_exclude = hc && hc->filesystem_fs_types_exclude ? hc->filesystem_fs_types_exclude
	                                                          : HOST_FS_TYPE_EXCLUDE;
	o->netdev_exclude = hc && hc->netdev_device_exclude && *hc->netdev_device_exclude
	                            ? hc->netdev_device_exclude
	                            : NULL;
	for (int i = 0; i < HOST_NCOLLECTORS; i++)
		o->enabled[i] = !hc || hc->ncollectors == 0;
	for (size_t j = 0; hc && j < hc->ncollectors; j++)
		for (int i = 0; i < HOST_NCOLLECTORS; i++)
			if (!strcmp(hc->collectors[j], host_collector_names[i]))
				o->enabled[i] = true;
}

static char *slurp(const struct host_opts *o, const char *rel, size_t *len) {
	char path[512];
	char *data = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%s", o->procfs, rel);
	if (ward_read_file(path, HOST_FILE_MAX, &data, &n, NULL) != 0)
		return NULL;
	if (len)
		*len = n;
	return data;
}

/* Fields of one line split on whitespace, in place. */
static size_t split_ws(char *line, char **f, size_t max) {
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
		f[n++] = t;
	return n;
}

static bool re_match(const struct matcher *m, const char *s) {
	return matcher_matches(m, s);
}

int host_filter_init(struct matcher *m, const char *re, struct ward_err *err) {
	struct buf p = BUF_INIT;
	buf_printf(&p, ".*(?:%s).*", re);
	int rc = matcher_init(m, MATCH_RE, "filter", buf_cstr(&p), err);
	buf_free(&p);
	return rc;
}

/* ---- /proc/stat: cpu and stat ---- */

static const char *const cpu_modes[] = {"user",   "nice", "system",  "idle",
                                        "iowait", "irq",  "softirq", "steal"};

static int collect_stat(const struct host_opts *o, struct cm_batch *b, bool cpu, bool stat) {
	char *data = slurp(o, "stat", NULL);
	if (!data)
		return -1;
	double hz = (double)sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	char *save = NULL;
	double ctxt = NAN, btime = NAN, procs = NAN, running = NAN, blocked = NAN, intr = NAN;
	bool fam_cpu = false;
	struct buf guest = BUF_INIT; /* "cpu\tmode\tvalue\n" lines for the guest family */
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[16];
		if (!strncmp(line, "cpu", 3) && isdigit((unsigned char)line[3])) {
			size_t n = split_ws(line, f, 16);
			if (!cpu || n < 9)
				continue;
			if (!fam_cpu) {
				cm_family(b, "node_cpu_seconds_total", "counter",
				          "Seconds the CPUs spent in each mode.");
				fam_cpu = true;
			}
			for (size_t m = 0; m < 8 && m + 1 < n; m++)
				cm_add(b, strtod(f[m + 1], NULL) / hz, "cpu", f[0] + 3, "mode",
				       cpu_modes[m], NULL);
			if (n >= 11)
				buf_printf(&guest, "%s\t%.17g\t%.17g\n", f[0] + 3,
				           strtod(f[9], NULL) / hz, strtod(f[10], NULL) / hz);
			continue;
		}
		size_t n = split_ws(line, f, 3);
		if (n < 2)
			continue;
		double v = strtod(f[1], NULL);
		if (!strcmp(f[0], "ctxt"))
			ctxt = v;
		else if (!strcmp(f[0], "btime"))
			btime = v;
		else if (!strcmp(f[0], "processes"))
			procs = v;
		else if (!strcmp(f[0], "procs_running"))
			running = v;
		else if (!strcmp(f[0], "procs_blocked"))
			blocked = v;
		else if (!strcmp(f[0], "intr"))
			intr = v;
	}
	if (cpu && guest.len) {
		cm_family(b, "node_cpu_guest_seconds_total", "counter",
		          "Seconds the CPUs spent in guests (VMs) for each mode.");
		char *s2 = NULL;
		for (char *l = strtok_r(guest.data, "\n", &s2); l; l = strtok_r(NULL, "\n", &s2)) {
			char *g[3];
			char *s3 = NULL;
			g[0] = strtok_r(l, "\t", &s3);
			g[1] = strtok_r(NULL, "\t", &s3);
			g[2] = strtok_r(NULL, "\t", &s3);
			if (!g[2])
				continue;
			cm_add(b, strtod(g[1], NULL), "cpu", g[0], "mode", "user", NULL);
			cm_add(b, strtod(g[2], NULL), "cpu", g[0], "mode", "nice", NULL);
		}
	}
	buf_free(&guest);
	if (stat) {
		struct {
			const char *name, *type, *help;
			double v;
		} s[] = {
		        {"node_boot_time_seconds", "gauge", "Node boot time, in unixtime.", btime},
		        {"node_context_switches_total", "counter",
		         "Total number of context switches.", ctxt},
		        {"node_forks_total", "counter", "Total number of forks.", procs},
		        {"node_intr_total", "counter", "Total number of interrupts serviced.",
		         intr},
		        {"node_procs_blocked", "gauge",
		         "Number of processes blocked waiting for I/O to complete.", blocked},
		        {"node_procs_running", "gauge", "Number of processes in runnable state.",
		         running},
		};
		for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
			if (isnan(s[i].v))
				continue;
			cm_family(b, s[i].name, s[i].type, s[i].help);
			cm_add(b, s[i].v, NULL);
		}
	}
	free(data);
	return 0;
}

/* ---- loadavg ---- */

static int collect_loadavg(const struct host_opts *o, struct cm_batch *b) {
	char *data = slurp(o, "loadavg", NULL);
	if (!data)
		return -1;
	char *f[3];
	int rc = -1;
	if (split_ws(data, f, 3) == 3) {
		const char *names[] = {"node_load1", "node_load5", "node_load15"};
		const char *helps[] = {"1m load average.", "5m load average.", "15m load average."};
		for (int i = 0; i < 3; i++) {
			cm_family(b, names[i], "gauge", helps[i]);
			cm_add(b, strtod(f[i], NULL), NULL);
		}
		rc = 0;
	}
	free(data);
	return rc;
}

/* ---- meminfo: "Active(anon):  123 kB" -> node_memory_Active_anon_bytes ---- */

static int collect_meminfo(const struct host_opts *o, struct cm_batch *b) {
	char *data = slurp(o, "meminfo", NULL);
	if (!data)
		return -1;
	char *save = NULL;
	struct buf name = BUF_INIT, help = BUF_INIT;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		size_t n = split_ws(line, f, 4);
		if (n < 2)
			continue;
		size_t kl = strlen(f[0]);
		if (kl < 2 || f[0][kl - 1] != ':')
			continue;
		f[0][kl - 1] = 0;
		buf_reset(&name);
		buf_puts(&name, "node_memory_");
		for (const char *p = f[0]; *p; p++) {
			if (*p == '(')
				buf_putc(&name, '_');
			else if (*p != ')')
				buf_putc(&name, *p);
		}
		double v = strtod(f[1], NULL);
		if (n == 3) {
			v *= 1024;
			buf_puts(&name, "_bytes");
		}
		buf_reset(&help);
		buf_printf(&help, "Memory information field %s.",
		           buf_cstr(&name) + strlen("node_memory_"));
		cm_family(b, buf_cstr(&name), "gauge", buf_cstr(&help));
		cm_add(b, v, NULL);
	}
	buf_free(&name);
	buf_free(&help);
	free(data);
	return 0;
}

/* ---- pressure: "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" (microseconds) ---- */

static bool psi_total(const struct host_opts *o, const char *res, const char *kind, double *out) {
	char rel[64];
	snprintf(rel, sizeof(rel), "pressure/%s", res);
	char *data = slurp(o, rel, NULL);
	if (!data)
		return false;
	bool found = false;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, kind, strlen(kind)) != 0)
			continue;
		const char *t = strstr(line, "total=");
		if (t) {
			*out = strtod(t + 6, NULL) / 1e6;
			found = true;
		}
	}
	free(data);
	return found;
}

static int collect_pressure(const struct host_opts *o, struct cm_batch *b) {
	static const struct {
		const char *res, *kind, *name, *help;
	} p[] = {
	        {"cpu", "some", "node_pressure_cpu_waiting_seconds_total",
	         "Total time in seconds that processes have waited for CPU time"},
	        {"cpu", "full", "node_pressure_cpu_stalled_seconds_total",
	         "Total time in seconds no process could make progress due to CPU contention"},
	        {"io", "some", "node_pressure_io_waiting_seconds_total",
	         "Total time in seconds that processes have waited due to IO congestion"},
	        {"io", "full", "node_pressure_io_stalled_seconds_total",
	         "Total time in seconds no process could make progress due to IO congestion"},
	        {"memory", "some", "node_pressure_memory_waiting_seconds_total",
	         "Total time in seconds that processes have waited for memory"},
	        {"memory", "full", "node_pressure_memory_stalled_seconds_total",
	         "Total time in seconds no process could make progress due to memory congestion"},
	};
	int found = 0;
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		double v;
		if (!psi_total(o, p[i].res, p[i].kind, &v))
			continue;
		cm_family(b, p[i].name, "counter", p[i].help);
		cm_add(b, v, NULL);
		found++;
	}
	return 0;
}

/* ---- diskstats ---- */

static int collect_diskstats(const struct host_opts *o, struct cm_batch *b) {
	static const struct {
		int field; /* index after the device name; -1 none */
		double scale;
		const char *name, *type, *help;
	} m[] = {
	        {0, 1, "node_disk_reads_completed_total", "counter",
	         "The total number of reads completed successfully."},
	        {1, 1, "node_disk_reads_merged_total", "counter",
	         "The total number of reads merged."},
	        {2, 512, "node_disk_read_bytes_total", "counter",
	         "The total number of bytes read successfully."},
	        {3, 0.001, "node_disk_read_time_seconds_total", "counter",
	         "The total number of seconds spent by all reads."},
	        {4, 1, "node_disk_writes_completed_total", "counter",
	         "The total number of writes completed successfully."},
	        {5, 1, "node_disk_writes_merged_total", "counter", "The number of writes merged."},
	        {6, 512, "node_disk_written_bytes_total", "counter",
	         "The total number of bytes written successfully."},
	        {7, 0.001, "node_disk_write_time_seconds_total", "counter",
	         "This is the total number of seconds spent by all writes."},
	        {8, 1, "node_disk_io_now", "gauge", "The number of I/Os currently in progress."},
	        {9, 0.001, "node_disk_io_time_seconds_total", "counter",
	         "Total seconds spent doing I/Os."},
	        {10, 0.001, "node_disk_io_time_weighted_seconds_total", "counter",
	         "The weighted # of seconds spent doing I/Os."},
	        {11, 1, "node_disk_discards_completed_total", "counter",
	         "The total number of discards completed successfully."},
	        {12, 1, "node_disk_discards_merged_total", "counter",
	         "The total number of discards merged."},
	        {13, 1, "node_disk_discarded_sectors_total", "counter",
	         "The total number of sectors discarded successfully."},
	        {14, 0.001, "node_disk_discard_time_seconds_total", "counter",
	         "This is the total number of seconds spent by all discards."},
	        {15, 1, "node_disk_flush_requests_total", "counter",
	         "The total number of flush requests completed successfully"},
	        {16, 0.001, "node_disk_flush_requests_time_seconds_total", "counter",
	         "This is the total number of seconds spent by all flush requests."},
	};
	char *data = slurp(o, "diskstats", NULL);
	if (!data)
		return -1;
	struct ward_err err;
	struct matcher ex;
	if (host_filter_init(&ex, o->disk_exclude, &err) != 0) {
		free(data);
		return -1;
	}
	/* Rows first, so that each family's samples stay together. */
	struct row {
		char dev[64];
		double f[17];
		size_t nf;
	} *rows = NULL;
	size_t nrows = 0, cap = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[24];
		size_t n = split_ws(line, f, 24);
		if (n < 14 || re_match(&ex, f[2]))
			continue;
		if (nrows == cap) {
			cap = cap ? 2 * cap : 16;
			rows = ward_xrealloc(rows, cap * sizeof(*rows));
		}
		struct row *r = &rows[nrows++];
		snprintf(r->dev, sizeof(r->dev), "%s", f[2]);
		r->nf = n - 3 < 17 ? n - 3 : 17;
		for (size_t i = 0; i < r->nf; i++)
			r->f[i] = strtod(f[3 + i], NULL);
	}
	for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		bool started = false;
		for (size_t i = 0; i < nrows; i++) {
			if ((size_t)m[k].field >= rows[i].nf)
				continue;
			if (!started) {
				cm_family(b, m[k].name, m[k].type, m[k].help);
				started = true;
			}
			cm_add(b, rows[i].f[m[k].field] * m[k].scale, "device", rows[i].dev, NULL);
		}
	}
	free(rows);
	matcher_free(&ex);
	free(data);
	return 0;
}

/* ---- filesystems: /proc/1/mounts as node_exporter reads (falls back to self) ---- */

static void unescape_mount(char *s) {
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

static int collect_filesystem(const struct host_opts *o, struct cm_batch *b) {
	char *data = slurp(o, "1/mounts", NULL);
	if (!data)
		data = slurp(o, "self/mounts", NULL);
	if (!data)
		return -1;
	struct ward_err err;
	struct matcher mex, tex;
	if (host_filter_init(&mex, o->mount_exclude, &err) != 0) {
		free(data);
		return -1;
	}
	if (host_filter_init(&tex, o->fstype_exclude, &err) != 0) {
		matcher_free(&mex);
		free(data);
		return -1;
	}
	struct fs {
		char *dev, *type, *mnt;
		double v[7]; /* size free avail files files_free readonly device_error */
	} *fss = NULL;
	size_t nfs = 0, cap = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[6];
		if (split_ws(line, f, 6) < 4)
			continue;
		unescape_mount(f[1]);
		if (re_match(&mex, f[1]) || re_match(&tex, f[2]))
			continue;
		bool dup = false;
		for (size_t i = 0; i < nfs && !dup; i++)
			dup = !strcmp(fss[i].mnt, f[1]) && !strcmp(fss[i].dev, f[0]);
		if (dup)
			continue;
		if (nfs == cap) {
			cap = cap ? 2 * cap : 16;
			fss = ward_xrealloc(fss, cap * sizeof(*fss));
		}
		struct fs *e = &fss[nfs++];
		e->dev = f[0];
		e->type = f[2];
		e->mnt = f[1];
		struct statvfs st;
		char path[4096];
		/* With a procfs other than /proc (tests, containers) mount points are read as
		 * given: the fixture's statvfs values are those of the real path. */
		snprintf(path, sizeof(path), "%s", f[1]);
		if (statvfs(path, &st) != 0) {
			memset(e->v, 0, sizeof(e->v));
			e->v[6] = 1;
			continue;
		}
		double bs = (double)st.f_frsize;
		e->v[0] = (double)st.f_blocks * bs;
		e->v[1] = (double)st.f_bfree * bs;
		e->v[2] = (double)st.f_bavail * bs;
		e->v[3] = (double)st.f_files;
		e->v[4] = (double)st.f_ffree;
		e->v[5] = (st.f_flag & ST_RDONLY) ? 1 : 0;
		e->v[6] = 0;
		/* node_exporter reads the "ro" mount option rather than statfs flags */
		char *opts = f[3];
		char *s4 = NULL;
		for (char *t = strtok_r(opts, ",", &s4); t; t = strtok_r(NULL, ",", &s4))
			if (!strcmp(t, "ro"))
				e->v[5] = 1;
	}
	static const struct {
		const char *name, *help;
		bool skip_on_error;
	} m[] = {
	        {"node_filesystem_size_bytes", "Filesystem size in bytes.", true},
	        {"node_filesystem_free_bytes", "Filesystem free space in bytes.", true},
	        {"node_filesystem_avail_bytes",
	         "Filesystem space available to non-root users in bytes.", true},
	        {"node_filesystem_files", "Filesystem total file nodes.", true},
	        {"node_filesystem_files_free", "Filesystem total free file nodes.", true},
	        {"node_filesystem_readonly", "Filesystem read-only status.", false},
	        {"node_filesystem_device_error",
	         "Whether an error occurred while getting statistics "
	         "for the given device.",
	         false},
	};
	for (size_t k = 0; k < 7; k++) {
		bool started = false;
		for (size_t i = 0; i < nfs; i++) {
			if (m[k].skip_on_error && fss[i].v[6] != 0)
				continue;
			if (!started) {
				cm_family(b, m[k].name, "gauge", m[k].help);
				started = true;
			}
			cm_add(b, fss[i].v[k], "device", fss[i].dev, "fstype", fss[i].type,
			       "mountpoint", fss[i].mnt, NULL);
		}
	}
	free(fss);
	matcher_free(&mex);
	matcher_free(&tex);
	free(data);
	return 0;
}

/* ---- /proc/net/dev ---- */

static int collect_netdev(const struct host_opts *o, struct cm_batch *b) {
	static const char *const fields[16] = {
	        "receive_bytes",  "receive_packets",  "receive_errs",       "receive_drop",
	        "receive_fifo",   "receive_frame",    "receive_compressed", "receive_multicast",
	        "transmit_bytes", "transmit_packets", "transmit_errs",      "transmit_drop",
	        "transmit_fifo",  "transmit_colls",   "transmit_carrier",   "transmit_compressed"};
	char *data = slurp(o, "net/dev", NULL);
	if (!data)
		return -1;
	struct matcher ex;
	bool have_ex = false;
	if (o->netdev_exclude) {
		struct ward_err err;
		if (host_filter_init(&ex, o->netdev_exclude, &err) != 0) {
			free(data);
			return -1;
		}
		have_ex = true;
	}
	struct row {
		char dev[64];
		double v[16];
	} *rows = NULL;
	size_t nrows = 0, cap = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon || strchr(line, '|'))
			continue;
		*colon = 0;
		char *dev = line;
		while (*dev == ' ')
			dev++;
		char *f[16];
		if (split_ws(colon + 1, f, 16) < 16 || (have_ex && re_match(&ex, dev)))
			continue;
		if (nrows == cap) {
			cap = cap ? 2 * cap : 8;
			rows = ward_xrealloc(rows, cap * sizeof(*rows));
		}
		snprintf(rows[nrows].dev, sizeof(rows[nrows].dev), "%s", dev);
		for (int i = 0; i < 16; i++)
			rows[nrows].v[i] = strtod(f[i], NULL);
		nrows++;
	}
	struct buf name = BUF_INIT, help = BUF_INIT;
	for (int k = 0; k < 16 && nrows; k++) {
		buf_reset(&name);
		buf_printf(&name, "node_network_%s_total", fields[k]);
		buf_reset(&help);
		buf_printf(&help, "Network device statistic %s.", fields[k]);
		cm_family(b, buf_cstr(&name), "counter", buf_cstr(&help));
		for (size_t i = 0; i < nrows; i++)
			cm_add(b, rows[i].v[k], "device", rows[i].dev, NULL);
	}
	buf_free(&name);
	buf_free(&help);
	free(rows);
	if (have_ex)
		matcher_free(&ex);
	free(data);
	return 0;
}

/* ---- netstat: /proc/net/netstat, /proc/net/snmp (header line + value line pairs) and
 * /proc/net/snmp6 ("Ip6InOctets 123") ---- */

static void netstat_pairs(char *data, const struct matcher *keep, struct cm_batch *b) {
	char *save = NULL;
	char *hdr = NULL;
	struct buf name = BUF_INIT;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!hdr) {
			hdr = line;
			continue;
		}
		char *h[512], *v[512];
		size_t nh = split_ws(hdr, h, 512), nv = split_ws(line, v, 512);
		hdr = NULL;
		if (nh != nv || nh < 2)
			continue;
		size_t pl = strlen(h[0]);
		if (pl && h[0][pl - 1] == ':')
			h[0][pl - 1] = 0;
		for (size_t i = 1; i < nh; i++) {
			buf_reset(&name);
			buf_printf(&name, "%s_%s", h[0], h[i]);
			if (!matcher_matches(keep, buf_cstr(&name)))
				continue;
			char full[256];
			snprintf(full, sizeof(full), "node_netstat_%s", buf_cstr(&name));
			char help[300];
			snprintf(help, sizeof(help), "Statistic %s.", buf_cstr(&name));
			cm_family(b, full, "untyped", help);
			cm_add(b, strtod(v[i], NULL), NULL);
		}
	}
	buf_free(&name);
}

static int collect_netstat(const struct host_opts *o, struct cm_batch *b) {
	struct ward_err err;
	struct matcher keep;
	if (matcher_init(&keep, MATCH_RE, "f", NETSTAT_FIELDS, &err) != 0)
		return -1;
	int rc = -1;
	const char *files[] = {"net/netstat", "net/snmp"};
	for (int i = 0; i < 2; i++) {
		char *data = slurp(o, files[i], NULL);
		if (!data)
			continue;
		netstat_pairs(data, &keep, b);
		free(data);
		rc = 0;
	}
	char *data = slurp(o, "net/snmp6", NULL);
	if (data) {
		char *save = NULL;
		for (char *line = strtok_r(data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *f[2];
			if (split_ws(line, f, 2) != 2)
				continue;
			/* "Ip6InOctets" -> "Ip6_InOctets", "Icmp6InMsgs" -> "Icmp6_InMsgs" */
			char *p = strchr(f[0], '6');
			if (!p)
				continue;
			char name[256];
			snprintf(name, sizeof(name), "%.*s_%s", (int)(p + 1 - f[0]), f[0], p + 1);
			if (!matcher_matches(&keep, name))
				continue;
			char full[300], help[300];
			snprintf(full, sizeof(full), "node_netstat_%s", name);
			snprintf(help, sizeof(help), "Statistic %s.", name);
			cm_family(b, full, "untyped", help);
			cm_add(b, strtod(f[1], NULL), NULL);
		}
		free(data);
	}
	matcher_free(&keep);
	return rc;
}

/* ---- sockstat: "TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 1" ---- */

static void sockstat_file(char *data, const char *suffix, struct cm_batch *b) {
	long page = sysconf(_SC_PAGESIZE);
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[32];
		size_t n = split_ws(line, f, 32);
		if (n < 3)
			continue;
		size_t pl = strlen(f[0]);
		if (pl && f[0][pl - 1] == ':')
			f[0][pl - 1] = 0;
		for (size_t i = 1; i + 1 < n; i += 2) {
			char name[256], help[300];
			double v = strtod(f[i + 1], NULL);
			if (!strcmp(f[0], "sockets"))
				snprintf(name, sizeof(name), "node_sockstat_sockets_%s", f[i]);
			else
				snprintf(name, sizeof(name), "node_sockstat_%s%s_%s", f[0], suffix,
				         f[i]);
			snprintf(help, sizeof(help), "Number of %s sockets in state %s.", f[0],
			         f[i]);
			cm_family(b, name, "gauge", help);
			cm_add(b, v, NULL);
			if (!strcmp(f[i], "mem") && strcmp(f[0], "FRAG") != 0) {
				snprintf(name, sizeof(name), "node_sockstat_%s%s_mem_bytes", f[0],
				         suffix);
				cm_family(b, name, "gauge", help);
				cm_add(b, v * (double)page, NULL);
			}
		}
	}
}

static int collect_sockstat(const struct host_opts *o, struct cm_batch *b) {
	char *data = slurp(o, "net/sockstat", NULL);
	if (!data)
		return -1;
	sockstat_file(data, "", b);
	free(data);
	/* sockstat6 lines are "TCP6: inuse 2": the protocol already carries the 6 */
	data = slurp(o, "net/sockstat6", NULL);
	if (data) {
		sockstat_file(data, "", b);
		free(data);
	}
	return 0;
}

static int collect_filefd(const struct host_opts *o, struct cm_batch *b) {
	char *data = slurp(o, "sys/fs/file-nr", NULL);
	if (!data)
		return -1;
	char *f[3];
	int rc = -1;
	if (split_ws(data, f, 3) == 3) {
		cm_family(b, "node_filefd_allocated", "gauge",
		          "File descriptor statistics: allocated.");
		cm_add(b, strtod(f[0], NULL), NULL);
		cm_family(b, "node_filefd_maximum", "gauge",
		          "File descriptor statistics: maximum.");
		cm_add(b, strtod(f[2], NULL), NULL);
		rc = 0;
	}
	free(data);
	return rc;
}

static int collect_vmstat(const struct host_opts *o, struct cm_batch *b) {
	char *data = slurp(o, "vmstat", NULL);
	if (!data)
		return -1;
	struct ward_err err;
	struct matcher keep;
	if (matcher_init(&keep, MATCH_RE, "f", VMSTAT_FIELDS, &err) != 0) {
		free(data);
		return -1;
	}
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[2];
		if (split_ws(line, f, 2) != 2 || !matcher_matches(&keep, f[0]))
			continue;
		char name[256], help[300];
		snprintf(name, sizeof(name), "node_vmstat_%s", f[0]);
		snprintf(help, sizeof(help), "/proc/vmstat information field %s.", f[0]);
		cm_family(b, name, "untyped", help);
		cm_add(b, strtod(f[1], NULL), NULL);
	}
	matcher_free(&keep);
	free(data);
	return 0;
}

static void collect_time(struct cm_batch *b) {
	cm_family(b, "node_time_seconds", "gauge", "System time in seconds since epoch (1970).");
	cm_add(b, (double)ward_now_ms() / 1000.0, NULL);
}

static void collect_uname(struct cm_batch *b) {
	struct utsname u;
	if (uname(&u) != 0)
		return;
	cm_family(b, "node_uname_info", "gauge",
	          "Labeled system information as provided by the uname system call.");
	cm_add(b, 1, "domainname", u.domainname, "machine", u.machine, "nodename", u.nodename,
	       "release", u.release, "sysname", u.sysname, "version", u.version, NULL);
}

int host_gather(const struct host_opts *o, struct cm_batch *b) {
	int failed = 0;
	const bool *e = o->enabled;
	if (e[HOST_CPU] || e[HOST_STAT])
		failed += collect_stat(o, b, e[HOST_CPU], e[HOST_STAT]) != 0;
	if (e[HOST_LOADAVG])
		failed += collect_loadavg(o, b) != 0;
	if (e[HOST_MEMINFO])
		failed += collect_meminfo(o, b) != 0;
	if (e[HOST_PRESSURE])
		failed += collect_pressure(o, b) != 0;
	if (e[HOST_DISKSTATS])
		failed += collect_diskstats(o, b) != 0;
	if (e[HOST_FILESYSTEM])
		failed += collect_filesystem(o, b) != 0;
	if (e[HOST_NETDEV])
		failed += collect_netdev(o, b) != 0;
	if (e[HOST_NETSTAT])
		failed += collect_netstat(o, b) != 0;
	if (e[HOST_SOCKSTAT])
		failed += collect_sockstat(o, b) != 0;
	if (e[HOST_FILEFD])
		failed += collect_filefd(o, b) != 0;
	if (e[HOST_VMSTAT])
		failed += collect_vmstat(o, b) != 0;
	if (e[HOST_TIME])
		collect_time(b);
	if (e[HOST_UNAME])
		collect_uname(b);
	return failed;
}
