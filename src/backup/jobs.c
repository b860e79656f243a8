/* jobs.c: the "backup" config section (repository, passphrase, jobs with their sources,
 * schedules, forget policies and drills), the cron schedule parser and next-fire
 * computation (UTC), and forget restricted to one job's snapshots. Pure apart from the
 * repository calls of backup_forget_job; the daemon (daemon.c) and the unit tests call it.
 * Invariant: a config that validates has only schedules that parse and fire.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup/backup.h"
#include "backup/backup_internal.h"
#include "conf/conf.h"

const char *const backup_source_names[] = {"dir", "postgres", "command", "ward_state", NULL};

/* ---- cron ---- */
static int cron_field(const char *s, size_t n, int lo, int hi, uint64_t *bits, bool *any,
                      const char *what, struct ward_err *err) {
	size_t i = 0;
	*bits = 0;
	*any = n > 0 && s[0] == '*';
	while (i < n) {
		size_t e = i;
		while (e < n && s[e] != ',')
			e++;
		long a, b, step = 1;
		size_t j = i;
		if (j < e && s[j] == '*') {
			a = lo;
			b = hi;
			j++;
		} else {
			if (j >= e || s[j] < '0' || s[j] > '9')
				goto bad;
			a = 0;
			while (j < e && s[j] >= '0' && s[j] <= '9' && a < 1000)
				a = a * 10 + (s[j++] - '0');
			b = a;
			if (j < e && s[j] == '-') {
				j++;
				if (j >= e || s[j] < '0' || s[j] > '9')
					goto bad;
				b = 0;
				while (j < e && s[j] >= '0' && s[j] <= '9' && b < 1000)
					b = b * 10 + (s[j++] - '0');
			}
		}
		if (j < e && s[j] == '/') {
			bool single = b == a && !(s[i] == '*');
			j++;
			if (j >= e || s[j] < '0' || s[j] > '9')
				goto bad;
			step = 0;
			while (j < e && s[j] >= '0' && s[j] <= '9' && step < 1000)
				step = step * 10 + (s[j++] - '0');
			if (step == 0)
				goto bad;
			if (single)
				b = hi;
		}
		if (j != e)
			goto bad;
		if (a < lo || b > hi || a > b) {
			ward_err_set(err, "schedule: %s %.*s is out of range %d-%d", what,
			             (int)(e - i), s + i, lo, hi);
			return -1;
		}
		for (long v = a; v <= b; v += step)
			*bits |= (uint64_t)1 << v;
		i = e + 1;
		if (e + 1 == n)
			goto bad; /* trailing comma */
	}
	if (*bits == 0)
		goto bad;
	return 0;
bad:
	ward_err_set(err, "schedule: bad %s field \"%.*s\" (use *, N, N-M, lists and /STEP)", what,
	             (int)n, s);
	return -1;
}

int backup_cron_parse(const char *s, size_t n, struct backup_cron *out, struct ward_err *err) {
	static const struct {
		const char *name, *expr;
	} macros[] = {{"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
	              {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
	              {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
	              {"@annually", "0 0 1 1 *"}};
	memset(out, 0, sizeof(*out));
	while (n > 0 && (s[0] == ' ' || s[0] == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 6 && memcmp(s, "@every", 6) == 0) {
		size_t i = 6;
		while (i < n && s[i] == ' ')
			i++;
		if (ward_parse_duration(s + i, n - i, &out->every_ms, err) != 0)
			return -1;
		if (out->every_ms < 1000) {
			ward_err_set(err, "schedule: @every needs at least 1s, got \"%.*s\"",
			             (int)n, s);
			return -1;
		}
		out->every = true;
		return 0;
	}
	if (n > 0 && s[0] == '@') {
		for (size_t k = 0; k < sizeof(macros) / sizeof(macros[0]); k++)
			if (strlen(macros[k].name) == n && memcmp(s, macros[k].name, n) == 0)
				return backup_cron_parse(macros[k].expr, strlen(macros[k].expr),
				                         out, err);
		ward_err_set(err,
		             "schedule: unknown macro \"%.*s\" (use @hourly, @daily, @weekly, "
		             "@monthly, @yearly or @every DURATION)",
		             (int)n, s);
		return -1;
	}
	static const char *const what[] = {"minute", "hour", "day-of-month", "month",
	                                   "day-of-week"};
	static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
	uint64_t bits[5];
	bool any[5];
	size_t i = 0;
	for (int f = 0; f < 5; f++) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t b = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		if (i == b) {
			ward_err_set(err,
			             "schedule: \"%.*s\" has %d fields; cron needs 5 (minute hour "
			             "day-of-month month day-of-week, e.g. \"0 3 * * *\")",
			             (int)n, s, f);
			return -1;
		}
		if (cron_field(s + b, i - b, lo[f], hi[f], &bits[f], &any[f], what[f], err) != 0)
			return -1;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i != n) {
		ward_err_set(err, "schedule: \"%.*s\" has more than 5 fields", (int)n, s);
		return -1;
	}
	out->min = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->mon = (uint32_t)bits[3];
	out->dow = (uint32_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	out->dom_any = any[2];
	out->dow_any = any[4];
	return 0;
}

static bool day_ok(const struct backup_cron *c, const struct tm *tm) {
	bool d = (c->dom >> tm->tm_mday) & 1, w = (c->dow >> tm->tm_wday) & 1;
	if (c->dom_any && c->dow_any)
		return true;
	if (c->dom_any)
		return w;
	if (c->dow_any)
		return d;
	return d || w;
}

int64_t backup_cron_next(const struct backup_cron *c, int64_t after_ms) {
	if (c->every)
		return after_ms + c->every_ms;
	time_t t = (time_t)(after_ms / 60000 + 1) * 60;
	if (after_ms < 0)
		t = 0;
	struct tm tm;
	gmtime_r(&t, &tm);
	for (int it = 0; it < 200000; it++) {
		if (!((c->mon >> (tm.tm_mon + 1)) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = 0;
			tm.tm_min = 0;
		} else if (!day_ok(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = 0;
			tm.tm_min = 0;
		} else if (!((c->hour >> tm.tm_hour) & 1)) {
			tm.tm_hour++;
			tm.tm_min = 0;
		} else if (!((c->min >> tm.tm_min) & 1)) {
			tm.tm_min++;
		} else {
			return (int64_t)timegm(&tm) * 1000;
		}
		tm.tm_sec = 0;
		t = timegm(&tm);
		gmtime_r(&t, &tm);
		if ((int64_t)t * 1000 - after_ms > 8LL * 366 * 86400 * 1000)
			return -1;
	}
	return -1;
}

/* ---- config ---- */
bool backup_job_name_ok(const char *s) {
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

static int check_schedule(const char *s, const char *job, const char *key,
                          const struct conf_pos *pos, struct ward_err *err) {
	struct backup_cron c;
	struct ward_err e = {{0}};
	if (backup_cron_parse(s, strlen(s), &c, &e) != 0) {
		conf_error_at(err, pos, "backup.jobs[%s].%s: %s", job, key, e.msg);
		return -1;
	}
	if (backup_cron_next(&c, ward_now_ms()) < 0) {
		conf_error_at(err, pos,
		              "backup.jobs[%s].%s: \"%s\" never fires; fix the day and month", job,
		              key, s);
		return -1;
	}
	return 0;
}

static int job_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct backup_job_conf *j = obj;
	const struct backup_source_conf *src = &j->source;
	if (!backup_job_name_ok(j->name)) {
		conf_error_at(
		        err, pos,
		        "backup.jobs: name \"%s\" must be 1-64 letters, digits, '_', '-' or '.'",
		        j->name ? j->name : "");
		return -1;
	}
	if (check_schedule(j->schedule, j->name, "schedule", pos, err) != 0)
		return -1;
	if (j->drill.schedule &&
	    check_schedule(j->drill.schedule, j->name, "drill.schedule", pos, err) != 0)
		return -1;
	switch (src->type) {
	case BACKUP_SRC_DIR:
		if (src->npaths == 0) {
			conf_error_at(err, pos,
			              "backup.jobs[%s].source.paths: a dir job needs paths",
			              j->name);
			return -1;
		}
		for (size_t i = 0; i < src->npaths; i++)
			if (src->paths[i][0] != '/') {
				conf_error_at(
				        err, pos,
				        "backup.jobs[%s].source.paths: \"%s\" is not absolute",
				        j->name, src->paths[i]);
				return -1;
			}
		break;
	case BACKUP_SRC_POSTGRES:
		if (!src->conninfo || !src->conninfo[0]) {
			conf_error_at(
			        err, pos,
			        "backup.jobs[%s].source.conninfo: a postgres job needs conninfo "
			        "(\"host=... dbname=... user=...\")",
			        j->name);
			return -1;
		}
		break;
	case BACKUP_SRC_COMMAND:
		if (!src->command || !src->command[0]) {
			conf_error_at(err, pos,
			              "backup.jobs[%s].source.command: a command job needs command",
			              j->name);
			return -1;
		}
		break;
	default:
		break;
	}
	if (src->type != BACKUP_SRC_DIR && (src->npaths || src->ninclude || src->nexclude)) {
		conf_error_at(err, pos,
		              "backup.jobs[%s].source: paths, include and exclude are for dir jobs",
		              j->name);
		return -1;
	}
	return 0;
}

static int section_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	struct backup_conf *c = obj;
	if (c->passphrase && c->passphrase_file) {
		conf_error_at(err, pos, "backup: give passphrase or passphrase_file, not both");
		return -1;
	}
	if (c->repository && c->repository[0] != '/') {
		conf_error_at(err, pos, "backup.repository: \"%s\" must be an absolute path",
		              c->repository);
		return -1;
	}
	if (!c->repository && c->njobs > 0) {
		conf_error_at(err, pos,
		              "backup: jobs need a repository (backup.repository: /path)");
		return -1;
	}
	if (c->repository && !c->passphrase && !c->passphrase_file) {
		conf_error_at(err, pos,
		              "backup: the repository needs a passphrase (passphrase: ${ENV} or "
		              "passphrase_file: /path)");
		return -1;
	}
	if (c->ward_state_schedule &&
	    check_schedule(c->ward_state_schedule, "ward_state", "ward_state_schedule", pos, err))
		return -1;
	for (size_t i = 0; i < c->njobs; i++)
		for (size_t k = i + 1; k < c->njobs; k++)
			if (strcmp(c->jobs[i].name, c->jobs[k].name) == 0) {
				conf_error_at(err, pos,
				              "backup.jobs: the name \"%s\" is used twice",
				              c->jobs[i].name);
				return -1;
			}
	return 0;
}

#define SF(f) offsetof(struct backup_source_conf, f)
static const struct conf_field source_fields[] = {
        {.key = "type",
         .type = CONF_ENUM,
         .offset = SF(type),
         .enum_names = backup_source_names,
         .flags = CONF_REQUIRED,
         .help = "dir, postgres, command or ward_state"},
        {.key = "paths",
         .type = CONF_STRLIST,
         .offset = SF(paths),
         .count_offset = SF(npaths),
         .help = "dir: absolute paths to back up"},
        {.key = "include",
         .type = CONF_STRLIST,
         .offset = SF(include),
         .count_offset = SF(ninclude),
         .help = "dir: keep only files matching one of these globs"},
        {.key = "exclude",
         .type = CONF_STRLIST,
         .offset = SF(exclude),
         .count_offset = SF(nexclude),
         .help = "dir: skip entries matching these globs"},
        {.key = "one_file_system",
         .type = CONF_BOOL,
         .offset = SF(one_file_system),
         .defval = "false",
         .help = "dir: do not cross into other file systems"},
        {.key = "conninfo",
         .type = CONF_STR,
         .offset = SF(conninfo),
         .flags = CONF_SECRET,
         .help = "postgres: libpq conninfo (key=value) of the database to dump"},
        {.key = "command",
         .type = CONF_STR,
         .offset = SF(command),
         .help = "command: shell command whose stdout is backed up (must exit 0)"},
        {0},
};
static const struct conf_schema source_schema = {.name = "backup_source",
                                                 .size = sizeof(struct backup_source_conf),
                                                 .fields = source_fields};

#define KF(f) offsetof(struct backup_keep_conf, f)
#define KEEP(k, h)                                                                                 \
	{                                                                                          \
		.key = #k, .type = CONF_INT, .offset = KF(k), .defval = "0", .min = 0, .max = 1e6, \
		.flags = CONF_RANGE, .help = h                                                     \
	}
static const struct conf_field keep_fields[] = {
        KEEP(last, "keep the n newest snapshots"),
        KEEP(hourly, "keep the newest snapshot of each of the n newest hours"),
        KEEP(daily, "... days"),
        KEEP(weekly, "... weeks"),
        KEEP(monthly, "... months"),
        KEEP(yearly, "... years"),
        {0},
};
static const struct conf_schema keep_schema = {
        .name = "backup_keep", .size = sizeof(struct backup_keep_conf), .fields = keep_fields};

#define DF(f) offsetof(struct backup_drill_conf, f)
static const struct conf_field drill_fields[] = {
        {.key = "schedule",
         .type = CONF_STR,
         .offset = DF(schedule),
         .help = "when to restore the latest snapshot and verify it (cron or @every)"},
        {.key = "query",
         .type = CONF_STR,
         .offset = DF(query),
         .defval = "SELECT 1",
         .help = "postgres: query run in the scratch database after pg_restore"},
        {.key = "rto_target",
         .type = CONF_DURATION,
         .offset = DF(rto_target_ms),
         .defval = "1h",
         .min = 1,
         .max = 30 * 86400e3,
         .flags = CONF_RANGE,
         .help = "recovery time objective: alert when a restore takes longer"},
        {0},
};
static const struct conf_schema drill_schema = {
        .name = "backup_drill", .size = sizeof(struct backup_drill_conf), .fields = drill_fields};

#define JF(f) offsetof(struct backup_job_conf, f)
static const struct conf_field job_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = JF(name),
         .flags = CONF_REQUIRED,
         .help = "unique job name (groups its snapshots)"},
        {.key = "schedule",
         .type = CONF_STR,
         .offset = JF(schedule),
         .flags = CONF_REQUIRED,
         .help = "cron (\"0 3 * * *\", UTC) or \"@every 1h\""},
        {.key = "source",
         .type = CONF_OBJ,
         .offset = JF(source),
         .sub = &source_schema,
         .flags = CONF_REQUIRED,
         .help = "what to back up"},
        {.key = "keep",
         .type = CONF_OBJ,
         .offset = JF(keep),
         .sub = &keep_schema,
         .help = "forget policy applied after each run (none: keep everything)"},
        {.key = "drill",
         .type = CONF_OBJ,
         .offset = JF(drill),
         .sub = &drill_schema,
         .help = "scheduled restore drill"},
        {.key = "timeout",
         .type = CONF_DURATION,
         .offset = JF(timeout_ms),
         .defval = "6h",
         .min = 1000,
         .max = 7 * 86400e3,
         .flags = CONF_RANGE,
         .help = "a run taking longer is cancelled and counts as failed"},
        {0},
};
static const struct conf_schema job_schema = {.name = "backup_job",
                                              .size = sizeof(struct backup_job_conf),
                                              .fields = job_fields,
                                              .validate = job_validate};

#define BF(f) offsetof(struct backup_conf, f)
static const struct conf_field backup_fields[] = {
        {.key = "repository",
         .type = CONF_STR,
         .offset = BF(repository),
         .help = "path of the repository (made with `ward backup init`)"},
        {.key = "passphrase",
         .type = CONF_STR,
         .offset = BF(passphrase),
         .flags = CONF_SECRET,
         .help = "repository passphrase (use ${ENV})"},
        {.key = "passphrase_file",
         .type = CONF_STR,
         .offset = BF(passphrase_file),
         .help = "file whose first line is the passphrase"},
        {.key = "scratch_dir",
         .type = CONF_STR,
         .offset = BF(scratch_dir),
         .help = "where drills restore (default <data_dir>/backup/scratch)"},
        {.key = "ward_state",
         .type = CONF_BOOL,
         .offset = BF(ward_state),
         .defval = "true",
         .help = "back up ward's own state (state.db, tsdb) as job \"ward_state\""},
        {.key = "ward_state_schedule",
         .type = CONF_STR,
         .offset = BF(ward_state_schedule),
         .defval = "'@every 1h'",
         .help = "schedule of the default ward_state job"},
        {.key = "jobs",
         .type = CONF_OBJLIST,
         .offset = BF(jobs),
         .sub = &job_schema,
         .count_offset = BF(njobs),
         .help = "backup jobs"},
        {0},
};
const struct conf_schema backup_conf_schema = {.name = "backup",
                                               .size = sizeof(struct backup_conf),
                                               .fields = backup_fields,
                                               .validate = section_validate};

void backup_conf_register(void) {
	(void)conf_register_section(&backup_conf_schema);
}

/* ---- forget one job ---- */
static int cmp_newest(const void *a, const void *b) {
	const struct backup_snapshot *x = *(struct backup_snapshot *const *)a,
	                             *y = *(struct backup_snapshot *const *)b;
	return x->time_ns < y->time_ns ? 1 : x->time_ns > y->time_ns ? -1 : 0;
}

int backup_forget_job(struct backup_repo *r, const char *job, const struct backup_policy *p,
                      size_t *removed, struct ward_err *err) {
	struct backup_snapshot *v = NULL, **mine = NULL;
	size_t n = 0, k = 0, gone = 0;
	int64_t *times = NULL;
	bool *keep = NULL;
	int rc;
	if (removed)
		*removed = 0;
	if (backup_policy_empty(p))
		return 0;
	rc = backup_lock(r, true, err);
	if (rc)
		return rc;
	rc = backup_snapshots(r, &v, &n, err);
	if (rc)
		goto out;
	mine = ward_xcalloc(n + 1, sizeof(*mine));
	for (size_t i = 0; i < n; i++)
		if (ward_streq(v[i].job, job))
			mine[k++] = &v[i];
	if (k > 1)
		qsort(mine, k, sizeof(*mine), cmp_newest);
	times = ward_xcalloc(k + 1, sizeof(*times));
	keep = ward_xcalloc(k + 1, sizeof(*keep));
	for (size_t i = 0; i < k; i++)
		times[i] = mine[i]->time_ns;
	backup_policy_apply(p, times, k, keep);
	for (size_t i = 0; i < k && rc == 0; i++)
		if (!keep[i]) {
			rc = r->be->remove(r->be, BACKUP_FT_SNAPSHOT, mine[i]->id, err);
			if (rc == 0)
				gone++;
		}
out:
	if (removed)
		*removed = gone;
	free(mine);
	free(times);
	free(keep);
	backup_snapshots_free(v, n);
	backup_unlock(r);
	return rc;
}

int backup_conf_passphrase(const struct backup_conf *c, char *out, size_t cap, size_t *len,
                           struct ward_err *err) {
	if (c->passphrase) {
		size_t n = strlen(c->passphrase);
		if (n == 0 || n >= cap) {
			ward_err_set(err, "backup.passphrase: empty or longer than %zu bytes",
			             cap - 1);
			return -1;
		}
		memcpy(out, c->passphrase, n + 1);
		*len = n;
		return 0;
	}
	if (!c->passphrase_file) {
		ward_err_set(err,
		             "backup: no passphrase configured (passphrase or passphrase_file)");
		return -1;
	}
	char *data = NULL;
	size_t n = 0;
	if (ward_read_file(c->passphrase_file, 64 * 1024, &data, &n, err) != 0)
		return -1;
	size_t e = 0;
	while (e < n && data[e] != '\n' && data[e] != '\r')
		e++;
	if (e == 0 || e >= cap) {
		ward_err_set(err, "%s: the first line is empty or longer than %zu bytes",
		             c->passphrase_file, cap - 1);
		memset(data, 0, n);
		free(data);
		return -1;
	}
	memcpy(out, data, e);
	out[e] = 0;
	*len = e;
	memset(data, 0, n);
	free(data);
	return 0;
}
