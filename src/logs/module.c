/* module.c: logs_module's life: the "logs" config section, opening the store under
 * <data>/logs at start, the HTTP routes, the syslog server and file tailers on the daemon's
 * loop, the journal reader on its own thread (with libsystemd), a maintenance timer (cut
 * old blocks, retention) and a rotation timer; stop stops the sources first (so their last
 * lines land), then flushes and closes the store.
 * Invariant: self.store is set before routes are registered and cleared only at stop.
 */
#include <stdlib.h>
#include <string.h>

#include "logs/module_internal.h"

#define MAINTAIN_EVERY_MS 1000 /* cuts blocks whose oldest line is block_age old */

static struct logs_mod self;

struct logs_mod *logs_mod_get(void) {
	return &self;
}

static const char *const format_names[] = {"raw", "json", "logfmt", "regex", NULL};
static const char *const start_names[] = {"beginning", "end", NULL};
static const char *const compress_names[] = {"none", "zstd", "gzip", NULL};
static const char *const mode_names[] = {"create", "copytruncate", NULL};

#define FC(f) offsetof(struct logs_file_conf, f)
static const struct conf_field file_fields[] = {
        {.key = "path",
         .type = CONF_STR,
         .offset = FC(path),
         .flags = CONF_REQUIRED,
         .help = "a glob of files to tail (/var/log/app/*.log)"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = FC(labels),
         .count_offset = FC(nlabels),
         .help = "static labels of every line (job, host, ...); job defaults to \"file\""},
        {.key = "format",
         .type = CONF_ENUM,
         .offset = FC(format),
         .defval = "raw",
         .enum_names = format_names,
         .help = "how lines are parsed into fields: raw, json, "
                 "logfmt, or regex (named groups)"},
        {.key = "regex",
         .type = CONF_STR,
         .offset = FC(regex),
         .help = "with format regex: a PCRE2 pattern with named groups (?<level>\\w+)"},
        {.key = "time_field",
         .type = CONF_STR,
         .offset = FC(time_field),
         .help = "the field holding the line's time (default: receipt time)"},
        {.key = "time_format",
         .type = CONF_STR,
         .offset = FC(time_format),
         .defval = "rfc3339",
         .help = "rfc3339, unix, unix_ms, unix_ns, or a strptime format (%d/%b/%Y:%H:%M:%S %z)"},
        {.key = "multiline_start",
         .type = CONF_STR,
         .offset = FC(multiline_start),
         .help = "a regex matching the first line of an entry; other lines join the previous"},
        {.key = "label_fields",
         .type = CONF_STRLIST,
         .offset = FC(label_fields),
         .count_offset = FC(nlabel_fields),
         .help = "parsed fields promoted to labels; keep them low-cardinality (level, unit)"},
        {.key = "start_at",
         .type = CONF_ENUM,
         .offset = FC(start_at),
         .defval = "beginning",
         .enum_names = start_names,
         .help = "where a file never seen before is read from"},
        {0},
};
static const struct conf_schema file_schema = {
        .name = "logs.files", .size = sizeof(struct logs_file_conf), .fields = file_fields};

#define JC(f) offsetof(struct logs_journal_conf, f)
static const struct conf_field journal_fields[] = {
        {.key = "enabled",
         .type = CONF_BOOL,
         .offset = JC(enabled),
         .defval = "false",
         .help = "read the systemd journal (needs a ward built with libsystemd)"},
        {.key = "path",
         .type = CONF_STR,
         .offset = JC(path),
         .help = "a directory of *.journal files or one journal file (default: the local "
                 "system journal)"},
        {.key = "matches",
         .type = CONF_STRLIST,
         .offset = JC(matches),
         .count_offset = JC(nmatches),
         .help = "journalctl matches: FIELD=value (same field: OR; different fields: AND), "
                 "\"+\" between groups (_SYSTEMD_UNIT=nginx.service)"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = JC(labels),
         .count_offset = JC(nlabels),
         .help = "static labels of every entry; job defaults to \"journal\"; unit, host "
                 "and level come from _SYSTEMD_UNIT, _HOSTNAME and PRIORITY unless set"},
        {.key = "format",
         .type = CONF_ENUM,
         .offset = JC(format),
         .defval = "raw",
         .enum_names = format_names,
         .help = "how MESSAGE is parsed into fields: raw, json, logfmt, or regex"},
        {.key = "regex",
         .type = CONF_STR,
         .offset = JC(regex),
         .help = "with format regex: a PCRE2 pattern with named groups"},
        {.key = "time_field",
         .type = CONF_STR,
         .offset = JC(time_field),
         .help = "a parsed field holding the time (default: the entry's realtime timestamp)"},
        {.key = "time_format",
         .type = CONF_STR,
         .offset = JC(time_format),
         .defval = "rfc3339",
         .help = "rfc3339, unix, unix_ms, unix_ns, or a strptime format"},
        {.key = "label_fields",
         .type = CONF_STRLIST,
         .offset = JC(label_fields),
         .count_offset = JC(nlabel_fields),
         .help = "parsed fields promoted to labels; keep them low-cardinality"},
        {.key = "start_at",
         .type = CONF_ENUM,
         .offset = JC(start_at),
         .defval = "beginning",
         .enum_names = start_names,
         .help = "where reading starts when no cursor was saved (the first start)"},
        {0},
};
static const struct conf_schema journal_schema = {
        .name = "logs.journal", .size = sizeof(struct logs_journal_conf), .fields = journal_fields};

#define RC(f) offsetof(struct logs_rotate_conf, f)
static const struct conf_field rotate_fields[] = {
        {.key = "path",
         .type = CONF_STR,
         .offset = RC(path),
         .flags = CONF_REQUIRED,
         .help = "a glob of files to rotate"},
        {.key = "size",
         .type = CONF_SIZE,
         .offset = RC(size),
         .defval = "0",
         .help = "rotate when a file is larger (0: no size trigger)"},
        {.key = "every",
         .type = CONF_DURATION,
         .offset = RC(every_ms),
         .defval = "0",
         .help = "rotate when the last rotation is this old (0: no time trigger)"},
        {.key = "keep",
         .type = CONF_INT,
         .offset = RC(keep),
         .defval = "7",
         .min = 0,
         .max = 10000,
         .flags = CONF_RANGE,
         .help = "rotated files to keep"},
        {.key = "compress",
         .type = CONF_ENUM,
         .offset = RC(compress),
         .defval = "zstd",
         .enum_names = compress_names,
         .help = "none, zstd or gzip for rotated files"},
        {.key = "mode",
         .type = CONF_ENUM,
         .offset = RC(mode),
         .defval = "create",
         .enum_names = mode_names,
         .help = "create: rename and create anew; copytruncate: copy, then truncate in place"},
        {.key = "postrotate",
         .type = CONF_STR,
         .offset = RC(postrotate),
         .help = "a /bin/sh command run after the files of this rule were rotated"},
        {0},
};
static const struct conf_schema rotate_schema = {
        .name = "logs.rotate", .size = sizeof(struct logs_rotate_conf), .fields = rotate_fields};

#define SC(f) offsetof(struct logs_syslog_conf, f)
static const struct conf_field syslog_fields[] = {
        {.key = "udp",
         .type = CONF_STR,
         .offset = SC(udp),
         .help = "listen address for syslog over UDP (127.0.0.1:5514); empty: off"},
        {.key = "tcp",
         .type = CONF_STR,
         .offset = SC(tcp),
         .help = "listen address for syslog over TCP (octet-counted or newline framing)"},
        {.key = "max_message",
         .type = CONF_SIZE,
         .offset = SC(max_message),
         .defval = "64KiB",
         .min = 480,
         .max = 16 << 20,
         .flags = CONF_RANGE,
         .help = "longer messages are truncated and counted"},
        {.key = "max_connections",
         .type = CONF_INT,
         .offset = SC(max_connections),
         .defval = "256",
         .min = 1,
         .max = 65536,
         .flags = CONF_RANGE,
         .help = "TCP senders at once; more are refused"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = SC(labels),
         .count_offset = SC(nlabels),
         .help = "extra labels of every syslog line"},
        {0},
};
static const struct conf_schema syslog_schema = {
        .name = "logs.syslog", .size = sizeof(struct logs_syslog_conf), .fields = syslog_fields};

static int listen_ok(const char *addr, const char *key, const struct conf_pos *pos,
                     struct ward_err *err) {
	if (!addr || !addr[0])
		return 0;
	struct ward_err e;
	ward_err_clear(&e);
	if (http_parse_listen(addr, NULL, NULL, 0, &e) != 0) {
		conf_error_at(err, pos, "%s: %s", key, e.msg);
		return -1;
	}
	return 0;
}

static int journal_check(const struct logs_journal_conf *jc, const struct conf_pos *pos,
                         struct ward_err *err) {
#ifndef WARD_HAVE_JOURNAL
	(void)jc;
	conf_error_at(err, pos,
	              "logs.journal: this ward was built without libsystemd, so it cannot read the "
	              "systemd journal; install libsystemd-dev (Debian, Ubuntu) or systemd-devel "
	              "(Fedora, RHEL) and rebuild ward, or set logs.journal.enabled: false");
	return -1;
#else
	int rc = 0;
	for (size_t i = 0; i < jc->nmatches; i++) {
		struct ward_err e;
		ward_err_clear(&e);
		if (logs_journal_match_check(jc->matches[i], &e) != 0) {
			conf_error_at(err, pos, "logs.journal.matches[%zu]: %s", i, e.msg);
			rc = -1;
		}
	}
	struct logs_file_conf fc;
	struct logs_pipeline p;
	struct ward_err e;
	ward_err_clear(&e);
	logs_journal_file_conf(jc, &fc);
	if (logs_pipeline_init(&p, &fc, &e) != 0) {
		conf_error_at(err, pos, "logs.journal: %s", e.msg);
		return -1;
	}
	logs_pipeline_free(&p);
	return rc;
#endif
}

static int logs_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct logs_conf *c = obj;
	int rc = 0;
	rc |= listen_ok(c->syslog.udp, "logs.syslog.udp", pos, err);
	rc |= listen_ok(c->syslog.tcp, "logs.syslog.tcp", pos, err);
	for (size_t i = 0; i < c->nrecording; i++) {
		struct ward_err e;
		ward_err_clear(&e);
		if (logs_recording_check(&c->recording[i], &e) != 0) {
			conf_error_at(err, pos, "logs.recording_rules[%zu]: %s", i, e.msg);
			rc = -1;
		}
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		struct logs_pipeline p;
		struct ward_err e;
		ward_err_clear(&e);
		if (logs_pipeline_init(&p, &c->files[i], &e) != 0) {
			conf_error_at(err, pos, "logs.files[%zu]: %s", i, e.msg);
			rc = -1;
			continue;
		}
		logs_pipeline_free(&p);
	}
	if (c->journal.enabled && journal_check(&c->journal, pos, err) != 0)
		rc = -1;
	return rc ? -1 : 0;
}

#define LC(f) offsetof(struct logs_conf, f)
static const struct conf_field logs_fields[] = {
        {.key = "enabled",
         .type = CONF_BOOL,
         .offset = LC(enabled),
         .defval = "true",
         .help = "store logs and serve /api/v1/logs (sources are each off until configured)"},
        {.key = "retention",
         .type = CONF_DURATION,
         .offset = LC(retention_ms),
         .defval = "30d",
         .min = 0,
         .max = 100 * 365 * 86400e3,
         .flags = CONF_RANGE,
         .help = "drop log segments whose newest line is older (0: keep forever)"},
        {.key = "retention_size",
         .type = CONF_SIZE,
         .offset = LC(retention_bytes),
         .defval = "0",
         .help = "drop the oldest segments past this many bytes (0: no limit)"},
        {.key = "block_size",
         .type = CONF_SIZE,
         .offset = LC(block_bytes),
         .defval = "256KiB",
         .min = 4096,
         .max = 64 << 20,
         .flags = CONF_RANGE,
         .help = "buffered lines are compressed into blocks of about this size"},
        {.key = "buffer_size",
         .type = CONF_SIZE,
         .offset = LC(buffer_bytes),
         .defval = "16MiB",
         .min = 64 << 10,
         .max = 1 << 30,
         .flags = CONF_RANGE,
         .help = "lines buffered in memory (and in the WAL) before they are cut into blocks"},
        {.key = "block_age",
         .type = CONF_DURATION,
         .offset = LC(block_age_ms),
         .defval = "5s",
         .min = 100,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "... or when its oldest buffered line is this old"},
        {.key = "segment_size",
         .type = CONF_SIZE,
         .offset = LC(segment_bytes),
         .defval = "128MiB",
         .min = 1 << 20,
         .max = 64.0 * (1 << 30),
         .flags = CONF_RANGE,
         .help = "segment files are cut at this size and every UTC day"},
        {.key = "max_line",
         .type = CONF_SIZE,
         .offset = LC(max_line_bytes),
         .defval = "256KiB",
         .min = 1024,
         .max = 64 << 20,
         .flags = CONF_RANGE,
         .help = "longer lines are truncated with a marker and counted"},
        {.key = "wal_fsync",
         .type = CONF_BOOL,
         .offset = LC(wal_fsync),
         .defval = "true",
         .help = "an HTTP push is acknowledged only after its lines are fsync'd to the WAL"},
        {.key = "syslog",
         .type = CONF_OBJ,
         .offset = LC(syslog),
         .sub = &syslog_schema,
         .help = "the syslog server (RFC 3164 and 5424 over UDP and TCP); off by default"},
        {.key = "files",
         .type = CONF_OBJLIST,
         .offset = LC(files),
         .count_offset = LC(nfiles),
         .sub = &file_schema,
         .help = "files to tail, each with its parsing pipeline"},
        {.key = "journal",
         .type = CONF_OBJ,
         .offset = LC(journal),
         .sub = &journal_schema,
         .help = "the systemd journal as a source (sd-journal); off by default"},
        {.key = "rotate",
         .type = CONF_OBJLIST,
         .offset = LC(rotate),
         .count_offset = LC(nrotate),
         .sub = &rotate_schema,
         .help = "files ward rotates (logrotate's model)"},
        {.key = "rotate_interval",
         .type = CONF_DURATION,
         .offset = LC(rotate_interval_ms),
         .defval = "1m",
         .min = 1000,
         .max = 86400e3,
         .flags = CONF_RANGE,
         .help = "how often rotation triggers are checked"},
        {.key = "recording_rules",
         .type = CONF_OBJLIST,
         .offset = LC(recording),
         .count_offset = LC(nrecording),
         .sub = &logs_recording_schema,
         .help = "metric queries over logs written to the time-series store, so rules and "
                 "alerts can use them (\"rate of 5xx lines\")"},
        {.key = "recording_interval",
         .type = CONF_DURATION,
         .offset = LC(recording_interval_ms),
         .defval = "15s",
         .min = 1000,
         .max = 3600e3,
         .flags = CONF_RANGE,
         .help = "how often the recording rules are evaluated"},
        {0},
};
const struct conf_schema logs_conf_schema = {.name = "logs",
                                             .size = sizeof(struct logs_conf),
                                             .fields = logs_fields,
                                             .validate = logs_validate};

void logs_rules_from_conf(const struct logs_conf *c, struct logs_rotate_rule **out, size_t *n) {
	*n = c->nrotate;
	*out = ward_xcalloc(c->nrotate ? c->nrotate : 1, sizeof(**out));
	for (size_t i = 0; i < c->nrotate; i++) {
		const struct logs_rotate_conf *r = &c->rotate[i];
		(*out)[i] = (struct logs_rotate_rule){.path = ward_strdup(r->path),
		                                      .size = r->size,
		                                      .every_ms = r->every_ms,
		                                      .keep = r->keep,
		                                      .compress = r->compress,
		                                      .mode = r->mode,
		                                      .postrotate = ward_strdup(r->postrotate)};
	}
}

void logs_rules_free(struct logs_rotate_rule *r, size_t n) {
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].path);
		free(r[i].postrotate);
	}
	free(r);
}

int logs_rotate_from_config(const struct conf *c, const char *data_dir, bool dry_run, bool force,
                            struct buf *report, struct ward_err *err) {
	const struct logs_conf *lc = conf_section(c, "logs");
	struct logs_rotate_rule *rules;
	size_t n;
	if (!lc) {
		ward_err_set(err, "the logs section is not registered in this build");
		return -1;
	}
	struct buf dir = BUF_INIT, state = BUF_INIT;
	buf_printf(&dir, "%s/logs", data_dir);
	if (!dry_run && ward_mkdir_p(buf_cstr(&dir), 0700, err) != 0) {
		buf_free(&dir);
		return -1;
	}
	buf_printf(&state, "%s/rotate.state", buf_cstr(&dir));
	logs_rules_from_conf(lc, &rules, &n);
	int rc = logs_rotate_run(rules, n, buf_cstr(&state), dry_run, force, ward_now_ms(), report,
	                         err);
	logs_rules_free(rules, n);
	buf_free(&dir);
	buf_free(&state);
	return rc;
}

void logs_count(struct logs_mod *m, const char *source, double n) {
	const char *v[] = {source};
	metric_add(m->m_lines, v, n);
}

void logs_count_dropped(struct logs_mod *m, const char *reason, double n) {
	const char *v[] = {reason};
	metric_add(m->m_dropped, v, n);
}

static double stored_bytes_fn(void *arg) {
	struct logs_mod *m = arg;
	if (!m->store)
		return 0;
	struct logs_store_stats st;
	logs_store_stats(m->store, &st);
	return (double)st.stored_bytes;
}

static void logs_init(void) {
	static const char *const src_l[] = {"source", NULL};
	static const char *const reason_l[] = {"reason", NULL};
	(void)conf_register_section(&logs_conf_schema);
	self.m_lines =
	        metric_register("ward_logs_lines_received_total", "Log lines received, by source.",
	                        METRIC_COUNTER, src_l, NULL, 0);
	self.m_dropped = metric_register("ward_logs_lines_dropped_total",
	                                 "Log lines dropped or truncated, by reason.",
	                                 METRIC_COUNTER, reason_l, NULL, 0);
	metric_register_fn("ward_logs_stored_bytes", "Bytes in log segment files.", METRIC_GAUGE,
	                   stored_bytes_fn, &self);
}

static void maint_tick(uv_timer_t *t) {
	struct ward_err err;
	ward_err_clear(&err);
	if (self.store && logs_store_maintain(self.store, ward_now_ms(), &err) != 0)
		ward_log(LOG_WARN, "logs: maintenance failed", "error", err.msg, NULL);
}

static void rotate_tick(uv_timer_t *t) {
	struct ward_err err;
	struct buf report = BUF_INIT, state = BUF_INIT;
	if (!self.nrules)
		return;
	ward_err_clear(&err);
	buf_printf(&state, "%s/rotate.state", self.dir);
	if (logs_rotate_run(self.rules, self.nrules, buf_cstr(&state), false, false, ward_now_ms(),
	                    &report, &err) != 0)
		ward_log(LOG_WARN, "logs: rotation failed", "error", err.msg, NULL);
	if (report.len)
		ward_log(LOG_INFO, "logs: rotated", "actions", buf_cstr(&report), NULL);
	buf_free(&report);
	buf_free(&state);
}

static void logs_stop(struct ward_ctx *ctx);

/* What start() read and apply() cannot change: everything but the rotation rules. */
static char *restart_fingerprint(const struct logs_conf *lc) {
	struct buf b = BUF_INIT;
	buf_printf(&b, "%d|%lld|%lld|%lld|%lld|%lld|%lld|%d|%s|%s|%lld|%lld|", lc->enabled,
	           (long long)lc->retention_ms, (long long)lc->retention_bytes,
	           (long long)lc->block_bytes ^ (long long)lc->buffer_bytes,
	           (long long)lc->block_age_ms, (long long)lc->segment_bytes,
	           (long long)lc->max_line_bytes, lc->wal_fsync,
	           lc->syslog.udp ? lc->syslog.udp : "", lc->syslog.tcp ? lc->syslog.tcp : "",
	           (long long)lc->syslog.max_message, (long long)lc->syslog.max_connections);
	for (size_t i = 0; i < lc->syslog.nlabels; i++)
		buf_printf(&b, "sl:%s=%s|", lc->syslog.labels[i].key, lc->syslog.labels[i].value);
	for (size_t i = 0; i < lc->nfiles; i++) {
		const struct logs_file_conf *f = &lc->files[i];
		buf_printf(&b, "f:%s|%d|%s|%s|%s|%s|%d|", f->path, f->format,
		           f->regex ? f->regex : "", f->time_field ? f->time_field : "",
		           f->time_format ? f->time_format : "",
		           f->multiline_start ? f->multiline_start : "", f->start_at);
		for (size_t k = 0; k < f->nlabels; k++)
			buf_printf(&b, "l:%s=%s|", f->labels[k].key, f->labels[k].value);
		for (size_t k = 0; k < f->nlabel_fields; k++)
			buf_printf(&b, "lf:%s|", f->label_fields[k]);
	}
	const struct logs_journal_conf *j = &lc->journal;
	buf_printf(&b, "j:%d|%s|%d|%s|%s|%s|%d|", j->enabled, j->path ? j->path : "", j->format,
	           j->regex ? j->regex : "", j->time_field ? j->time_field : "",
	           j->time_format ? j->time_format : "", j->start_at);
	for (size_t k = 0; k < j->nmatches; k++)
		buf_printf(&b, "jm:%s|", j->matches[k]);
	for (size_t k = 0; k < j->nlabels; k++)
		buf_printf(&b, "jl:%s=%s|", j->labels[k].key, j->labels[k].value);
	for (size_t k = 0; k < j->nlabel_fields; k++)
		buf_printf(&b, "jlf:%s|", j->label_fields[k]);
	return buf_detach(&b);
}

static int logs_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	const struct logs_conf *lc = conf_section(c, "logs");
	if (!lc || !lc->enabled)
		return 0;
	struct logs_store_opts o;
	logs_store_opts_default(&o);
	struct buf dir = BUF_INIT, offs = BUF_INIT;
	buf_printf(&dir, "%s/logs", ctx->data_dir);
	self.dir = buf_detach(&dir);
	o.dir = self.dir;
	o.retention_ms = lc->retention_ms;
	o.retention_bytes = lc->retention_bytes;
	o.block_bytes = (size_t)lc->block_bytes;
	o.max_head_bytes = (size_t)lc->buffer_bytes;
	o.block_age_ms = lc->block_age_ms;
	o.segment_bytes = lc->segment_bytes;
	o.max_line_bytes = (size_t)lc->max_line_bytes;
	o.wal_fsync = lc->wal_fsync;
	self.ctx = ctx;
	free(self.fingerprint);
	self.fingerprint = restart_fingerprint(lc);
	self.store = logs_store_open(&o, err);
	if (!self.store)
		goto fail;
	logs_api_register(&self);
	uv_timer_init(ctx->loop, &self.maint_timer);
	uv_timer_start(&self.maint_timer, maint_tick, MAINTAIN_EVERY_MS, MAINTAIN_EVERY_MS);
	uv_timer_init(ctx->loop, &self.rotate_timer);
	self.timers_on = true;
	logs_rules_from_conf(lc, &self.rules, &self.nrules);
	if (self.nrules)
		uv_timer_start(&self.rotate_timer, rotate_tick, (uint64_t)lc->rotate_interval_ms,
		               (uint64_t)lc->rotate_interval_ms);
	self.recorder = logs_recorder_start(&self, ctx->loop, lc);
	if ((lc->syslog.udp && lc->syslog.udp[0]) || (lc->syslog.tcp && lc->syslog.tcp[0])) {
		self.syslog = logs_syslog_start(&self, ctx->loop, &lc->syslog, err);
		if (!self.syslog)
			goto fail;
	}
	if (lc->nfiles) {
		buf_printf(&offs, "%s/offsets", self.dir);
		self.tailer = logs_tailer_start(&self, ctx->loop, lc->files, lc->nfiles,
		                                buf_cstr(&offs), err);
		buf_free(&offs);
		if (!self.tailer)
			goto fail;
	}
#ifdef WARD_HAVE_JOURNAL
	if (lc->journal.enabled) {
		buf_printf(&offs, "%s/journal.cursor", self.dir);
		self.journal = logs_journal_start(&self, &lc->journal, (size_t)lc->max_line_bytes,
		                                  buf_cstr(&offs), err);
		buf_free(&offs);
		if (!self.journal)
			goto fail;
	}
#endif
	return 0;
fail:
	buf_free(&offs);
	logs_stop(ctx); /* the daemon stops only the modules that started */
	return -1;
}

static int logs_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err) {
	/* Rotation rules take effect at once; sources and storage need a restart. */
	const struct logs_conf *lc = conf_section(c, "logs");
	if (!lc)
		return 0;
	char *fp = restart_fingerprint(lc);
	bool same = self.fingerprint ? strcmp(fp, self.fingerprint) == 0 : !lc->enabled;
	free(fp);
	if (!same) {
		ward_err_set(err, "logs: storage, syslog, files or journal settings changed; they "
		                  "take effect at the next start of ward (only logs.rotate applies "
		                  "on reload)");
		return -1;
	}
	if (!self.store)
		return 0;
	if (self.recorder)
		logs_recorder_update(self.recorder, lc);
	else
		self.recorder = logs_recorder_start(&self, ctx->loop, lc);
	logs_rules_free(self.rules, self.nrules);
	logs_rules_from_conf(lc, &self.rules, &self.nrules);
	uv_timer_stop(&self.rotate_timer);
	if (self.nrules)
		uv_timer_start(&self.rotate_timer, rotate_tick, (uint64_t)lc->rotate_interval_ms,
		               (uint64_t)lc->rotate_interval_ms);
	return 0;
}

static void logs_stop(struct ward_ctx *ctx) {
	if (self.recorder) {
		logs_recorder_stop(self.recorder, ctx->loop);
		self.recorder = NULL;
	}
	if (self.syslog) {
		logs_syslog_stop(self.syslog);
		self.syslog = NULL;
	}
	if (self.tailer) {
		logs_tailer_stop(self.tailer);
		self.tailer = NULL;
	}
#ifdef WARD_HAVE_JOURNAL
	logs_journal_stop(self.journal); /* joins its thread: no append after this */
	self.journal = NULL;
#endif
	if (self.timers_on) {
		uv_timer_stop(&self.maint_timer);
		uv_timer_stop(&self.rotate_timer);
		uv_close((uv_handle_t *)&self.maint_timer, NULL);
		uv_close((uv_handle_t *)&self.rotate_timer, NULL);
		self.timers_on = false;
	}
	/* Let the closes above finish before the store goes. */
	uv_run(ctx->loop, UV_RUN_NOWAIT);
	logs_store_close(self.store); /* the HTTP server is stopped by now */
	self.store = NULL;
	logs_rules_free(self.rules, self.nrules);
	self.rules = NULL;
	self.nrules = 0;
	free(self.dir);
	self.dir = NULL;
	free(self.fingerprint);
	self.fingerprint = NULL;
}

const struct ward_module logs_module = {
        .name = "logs",
        .init = logs_init,
        .start = logs_start,
        .apply = logs_apply,
        .stop = logs_stop,
};
