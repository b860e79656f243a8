/* proc.c: finding watched processes in procfs and measuring them. A watch matches by
 * pidfile (the PID written there, if that process exists), by name (/proc/PID/comm,
 * exactly) or by a fully anchored regex over the command line (arguments joined by
 * spaces). Several matching processes are summed (cpu, rss, fds, threads); start time is
 * the oldest. One pass over /proc serves every watch. Reentrant: run on the worker pool.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect/collect_internal.h"

struct proc_matcher {
	char *pidfile;
	char *comm;
	struct matcher re;
	bool has_re;
};

struct proc_matcher *proc_matcher_new(const struct proc_watch_conf *w, struct ward_err *err) {
	struct proc_matcher *m = ward_xcalloc(1, sizeof(*m));
	m->pidfile = ward_strdup(w->pidfile);
	m->comm = ward_strdup(w->comm);
	if (w->cmdline) {
		if (matcher_init(&m->re, MATCH_RE, "cmdline", w->cmdline, err) != 0) {
			free(m->pidfile);
			free(m->comm);
			free(m);
			return NULL;
		}
		m->has_re = true;
	}
	return m;
}

void proc_matcher_free(struct proc_matcher *m) {
	if (!m)
		return;
	free(m->pidfile);
	free(m->comm);
	if (m->has_re)
		matcher_free(&m->re);
	free(m);
}

static char *read_small(const char *procfs, long pid, const char *what, size_t *len) {
	char path[256];
	char *data = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%ld/%s", procfs, pid, what);
	if (ward_read_file(path, 1u << 20, &data, &n, NULL) != 0)
		return NULL;
	if (len)
		*len = n;
	return data;
}

static double boot_time(const char *procfs) {
	char path[256];
	char *data = NULL;
	size_t n;
	snprintf(path, sizeof(path), "%s/stat", procfs);
	if (ward_read_file(path, 4u << 20, &data, &n, NULL) != 0)
		return 0;
	const char *b = strstr(data, "\nbtime ");
	double v = b ? strtod(b + 7, NULL) : 0;
	free(data);
	return v;
}

static void measure(const char *procfs, long pid, double btime, struct proc_stat *st) {
	char *stat = read_small(procfs, pid, "stat", NULL);
	if (!stat)
		return;
	/* the fields after "(comm)": the comm may hold spaces and parentheses */
	char *rp = strrchr(stat, ')');
	if (!rp) {
		free(stat);
		return;
	}
	char *f[64];
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(rp + 2, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	double hz = (double)sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	if (n > 21) {
		/* f[0] is field 3 (state): utime 14, stime 15, threads 20, starttime 22, rss 24 */
		st->cpu_seconds += (strtod(f[11], NULL) + strtod(f[12], NULL)) / hz;
		st->threads += strtod(f[17], NULL);
		double start = btime + strtod(f[19], NULL) / hz;
		if (st->count == 0 || start < st->start_time)
			st->start_time = start;
		st->rss_bytes += strtod(f[21], NULL) * (double)page;
	}
	free(stat);
	char path[256];
	snprintf(path, sizeof(path), "%s/%ld/fd", procfs, pid);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				st->fds++;
		closedir(d);
	}
	st->count++;
	st->up = true;
}

void proc_scan(const char *procfs, struct proc_matcher *const *ms, size_t n,
               struct proc_stat *out) {
	memset(out, 0, n * sizeof(*out));
	double btime = boot_time(procfs);
	bool need_scan = false;
	for (size_t i = 0; i < n; i++) {
		if (ms[i]->pidfile) {
			char *data = NULL;
			size_t len;
			if (ward_read_file(ms[i]->pidfile, 64, &data, &len, NULL) == 0) {
				long pid = strtol(data, NULL, 10);
				char p[64];
				snprintf(p, sizeof(p), "%s/%ld", procfs, pid);
				if (pid > 0 && access(p, F_OK) == 0)
					measure(procfs, pid, btime, &out[i]);
				free(data);
			}
		} else {
			need_scan = true;
		}
	}
	if (!need_scan)
		return;
	DIR *d = opendir(procfs);
	if (!d)
		return;
	struct dirent *e;
	struct buf cmd = BUF_INIT;
	long self = (long)getpid();
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		long pid = strtol(e->d_name, NULL, 10);
		if (pid == self)
			continue; /* ward itself holds every pattern in its config */
		char *comm = NULL;
		bool have_cmd = false;
		for (size_t i = 0; i < n; i++) {
			if (ms[i]->pidfile)
				continue;
			bool hit = false;
			if (ms[i]->comm) {
				if (!comm) {
					comm = read_small(procfs, pid, "comm", NULL);
					if (!comm)
						break;
					comm[strcspn(comm, "\n")] = 0;
				}
				hit = !strcmp(comm, ms[i]->comm);
			} else if (ms[i]->has_re) {
				if (!have_cmd) {
					size_t len = 0;
					char *raw = read_small(procfs, pid, "cmdline", &len);
					buf_reset(&cmd);
					if (raw) {
						while (len > 0 && raw[len - 1] == 0)
							len--;
						for (size_t k = 0; k < len; k++)
							buf_putc(&cmd, raw[k] ? raw[k] : ' ');
						free(raw);
					}
					have_cmd = true;
				}
				hit = cmd.len > 0 && matcher_matches(&ms[i]->re, buf_cstr(&cmd));
			}
			if (hit)
				measure(procfs, pid, btime, &out[i]);
		}
		free(comm);
	}
	buf_free(&cmd);
	closedir(d);
}
