/* pipeline.c: a source's parsing pipeline (logs.files[] or logs.journal): parse the line
 * as json, logfmt or a PCRE2 regex with named groups; take the timestamp from a field with
 * a format; promote the configured fields to labels (kept apart from the line, which is
 * stored as is); and tell where a multiline entry starts. Compiled once per source; used
 * by the one thread of its source (tail.c, journal.c). Field values promoted to labels are
 * capped in length so a bad pattern cannot make a label out of a whole line.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "logs/module_internal.h"

#define LABEL_VALUE_MAX 128

static pcre2_code *compile(const char *pat, const char *what, struct ward_err *err) {
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
	                               PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
	if (!re) {
		PCRE2_UCHAR m[256];
		pcre2_get_error_message(ec, m, sizeof(m));
		ward_err_set(err, "%s \"%s\" at offset %zu: %s", what, pat, (size_t)eo,
		             (const char *)m);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

int logs_pipeline_init(struct logs_pipeline *p, const struct logs_file_conf *c,
                       struct ward_err *err) {
	memset(p, 0, sizeof(*p));
	labels_init(&p->base);
	p->format = c->format;
	if (c->format == FMT_REGEX) {
		if (!c->regex) {
			ward_err_set(err, "format regex needs a regex with named groups");
			goto fail;
		}
		if (!(p->re = compile(c->regex, "regex", err)))
			goto fail;
	}
	if (c->multiline_start && !(p->ml_re = compile(c->multiline_start, "multiline_start", err)))
		goto fail;
	p->time_field = ward_strdup(c->time_field);
	p->time_format = ward_strdup(c->time_format ? c->time_format : "rfc3339");
	p->nlabel_fields = c->nlabel_fields;
	p->label_fields = ward_xcalloc(c->nlabel_fields + 1, sizeof(char *));
	for (size_t i = 0; i < c->nlabel_fields; i++)
		p->label_fields[i] = ward_strdup(c->label_fields[i]);
	for (size_t i = 0; i < c->nlabels; i++)
		labels_set(&p->base, c->labels[i].key, c->labels[i].value);
	if (!labels_get(&p->base, "job"))
		labels_set(&p->base, "job", c->default_job ? c->default_job : "file");
	return 0;
fail:
	logs_pipeline_free(p);
	return -1;
}

void logs_journal_file_conf(const struct logs_journal_conf *c, struct logs_file_conf *out) {
	*out = (struct logs_file_conf){.path = c->path,
	                               .labels = c->labels,
	                               .nlabels = c->nlabels,
	                               .format = c->format,
	                               .regex = c->regex,
	                               .time_field = c->time_field,
	                               .time_format = c->time_format,
	                               .label_fields = c->label_fields,
	                               .nlabel_fields = c->nlabel_fields,
	                               .start_at = c->start_at,
	                               .default_job = "journal"};
}

void logs_pipeline_free(struct logs_pipeline *p) {
	if (p->re)
		pcre2_code_free(p->re);
	if (p->ml_re)
		pcre2_code_free(p->ml_re);
	free(p->time_field);
	free(p->time_format);
	for (size_t i = 0; i < p->nlabel_fields; i++)
		free(p->label_fields[i]);
	free(p->label_fields);
	labels_free(&p->base);
	memset(p, 0, sizeof(*p));
}

static bool re_match(pcre2_code *re, const char *s, size_t n, pcre2_match_data **mdo) {
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
	if (mdo && rc >= 0) {
		*mdo = md;
		return true;
	}
	pcre2_match_data_free(md);
	return rc >= 0;
}

bool logs_pipeline_is_start(const struct logs_pipeline *p, const char *line, size_t len) {
	return !p->ml_re || re_match(p->ml_re, line, len, NULL);
}

static void regex_fields(pcre2_code *re, const char *s, size_t n, struct logs_fields *out) {
	pcre2_match_data *md = NULL;
	if (!re_match(re, s, n, &md))
		return;
	uint32_t count, esz;
	PCRE2_SPTR table;
	pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
	pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &esz);
	pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	for (uint32_t i = 0; i < count; i++) {
		PCRE2_SPTR e = table + i * esz;
		int g = (e[0] << 8) | e[1];
		const char *name = (const char *)(e + 2);
		if (ov[2 * g] == PCRE2_UNSET)
			continue;
		logs_fields_add(out, name, strlen(name), s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
	}
	pcre2_match_data_free(md);
}

static int parse_ts(const char *fmt, const char *v, int64_t *out) {
	size_t n = strlen(v);
	char *end;
	if (strcmp(fmt, "rfc3339") == 0)
		return logs_parse_time_ns(v, n, out);
	if (strcmp(fmt, "unix") == 0 || strcmp(fmt, "unix_ms") == 0 ||
	    strcmp(fmt, "unix_ns") == 0) {
		int64_t mul = fmt[4] == '\0' ? 1000000000 : fmt[5] == 'm' ? 1000000 : 1;
		errno = 0;
		long long iv = strtoll(v, &end, 10);
		if (end != v && !*end && errno == 0) { /* integers stay exact */
			if (iv > INT64_MAX / mul || iv < INT64_MIN / mul)
				return -1;
			*out = (int64_t)iv * mul;
			return 0;
		}
		double d = strtod(v, &end);
		if (end == v || *end || !(d > -9e18 / (double)mul && d < 9e18 / (double)mul))
			return -1;
		*out = (int64_t)(d * (double)mul);
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	end = strptime(v, fmt, &tm);
	if (!end)
		return -1;
	long gmtoff = tm.tm_gmtoff;
	int64_t t = (int64_t)timegm(&tm) - gmtoff;
	*out = t * 1000000000;
	return 0;
}

void logs_pipeline_apply(const struct logs_pipeline *p, const char *line, size_t len,
                         int64_t now_ns, struct labels *labels_out, int64_t *ts_out,
                         struct logs_fields *f) {
	labels_copy(labels_out, &p->base);
	*ts_out = now_ns;
	if (p->format == FMT_RAW)
		return;
	logs_fields_reset(f);
	if (p->format == FMT_JSON)
		(void)logs_parse_json(line, len, f);
	else if (p->format == FMT_LOGFMT)
		(void)logs_parse_logfmt(line, len, f);
	else if (p->re)
		regex_fields(p->re, line, len, f);
	for (size_t i = 0; i < p->nlabel_fields; i++) {
		const char *v = logs_fields_get(f, p->label_fields[i]);
		if (v && v[0] && strlen(v) <= LABEL_VALUE_MAX)
			labels_set(labels_out, p->label_fields[i], v);
	}
	if (p->time_field) {
		const char *v = logs_fields_get(f, p->time_field);
		int64_t ts;
		if (v && parse_ts(p->time_format, v, &ts) == 0)
			*ts_out = ts;
	}
}
