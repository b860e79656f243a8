/* rules.c: loading Prometheus rule files (groups of alerting and recording rules) with
 * conf's schema decoder, so every problem is reported as file:line:col.
 *
 * Checks beyond the schema, as Prometheus' rulefmt does: exactly one of alert/record, a
 * PromQL expr that parses, a valid metric name for record, for/keep_firing_for/annotations
 * only on alerting rules, valid label names, templates that parse, unique group names per
 * file. A load either succeeds whole or fails whole. Called by the module (start, reload),
 * `ward rules check` and the unit-test runner.
 */
#include <ctype.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alert_internal.h"

#define RF(f) offsetof(struct rf_rule, f)
static const struct conf_field rule_fields[] = {
	{.key = "alert", .type = CONF_STR, .offset = RF(alert), .help = "name of the alert"},
	{.key = "record", .type = CONF_STR, .offset = RF(record), .help = "series to record"},
	{.key = "expr", .type = CONF_STR, .offset = RF(expr), .flags = CONF_REQUIRED,
	 .help = "PromQL expression"},
	{.key = "for", .type = CONF_DURATION, .offset = RF(for_ms), .min = 0, .max = 9e15,
	 .flags = CONF_RANGE, .help = "how long the condition must hold before firing"},
	{.key = "keep_firing_for", .type = CONF_DURATION, .offset = RF(kff_ms), .min = 0,
	 .max = 9e15, .flags = CONF_RANGE, .help = "keep firing this long after it clears"},
	{.key = "labels", .type = CONF_STRMAP, .offset = RF(labels), .count_offset = RF(nlabels),
	 .help = "labels to add or overwrite"},
	{.key = "annotations", .type = CONF_STRMAP, .offset = RF(ann), .count_offset = RF(nann),
	 .help = "annotations (templates)"},
	{0},
};



static int rule_validate(void *obj, const struct conf_pos *pos, struct ward_err *err)
{
	struct rf_rule *r = obj;
	int rc = 0;
	r->line = pos->line;
	r->col = pos->col;
	if (!r->alert == !r->record) {
		conf_error_at(err, pos, "a rule needs exactly one of \"alert:\" and \"record:\"");
		return -1;
	}
	const char *name = r->alert ? r->alert : r->record;
	if (r->record && !labels_valid_metric_name(r->record)) {
		conf_error_at(err, pos, "record: invalid metric name \"%s\"", r->record);
		rc = -1;
	}
	if (r->alert && !*r->alert) {
		conf_error_at(err, pos, "alert: the name must not be empty");
		rc = -1;
	}
	if (r->record && (r->for_ms || r->kff_ms || r->nann)) {
		conf_error_at(err, pos,
			      "rule \"%s\": for, keep_firing_for and annotations are only for "
			      "alerting rules; remove them or make it an alert",
			      name);
		rc = -1;
	}
	if (r->expr) {
		struct ward_err e;
		ward_err_clear(&e);
		struct promql_expr *x = promql_parse(r->expr, strlen(r->expr), &e);
		if (!x) {
			conf_error_at(err, pos, "rule \"%s\": expr: %s", name, e.msg);
			rc = -1;
		} else {
			enum promql_type ty = promql_expr_type(x);
			if (ty != PROMQL_VECTOR && ty != PROMQL_SCALAR) {
				conf_error_at(err, pos,
					      "rule \"%s\": expr: invalid expression type \"%s\" "
					      "for a rule; must be vector or scalar",
					      name, promql_type_name(ty));
				rc = -1;
			}
			promql_expr_free(x);
		}
	}
	for (size_t i = 0; i < r->nlabels; i++) {
		if (!labels_valid_name(r->labels[i].key) || !strcmp(r->labels[i].key, "__name__")) {
			conf_error_at(err, pos, "rule \"%s\": invalid label name \"%s\"", name,
				      r->labels[i].key);
			rc = -1;
		}
		struct ward_err e;
		ward_err_clear(&e);
		const char *v = r->labels[i].value ? r->labels[i].value : "";
		if (r->alert && alert_tmpl_check(r->labels[i].key, v, strlen(v), &e)) {
			conf_error_at(err, pos, "rule \"%s\": label %s: %s", name, r->labels[i].key,
				      e.msg);
			rc = -1;
		}
	}
	for (size_t i = 0; i < r->nann; i++) {
		if (!labels_valid_name(r->ann[i].key)) {
			conf_error_at(err, pos, "rule \"%s\": invalid annotation name \"%s\"", name,
				      r->ann[i].key);
			rc = -1;
		}
		struct ward_err e;
		ward_err_clear(&e);
		const char *v = r->ann[i].value ? r->ann[i].value : "";
		if (alert_tmpl_check(r->ann[i].key, v, strlen(v), &e)) {
			conf_error_at(err, pos, "rule \"%s\": annotation %s: %s", name, r->ann[i].key,
				      e.msg);
			rc = -1;
		}
	}
	return rc;
}

static const struct conf_schema rule_schema = {
	.name = "rule", .size = sizeof(struct rf_rule), .fields = rule_fields,
	.validate = rule_validate};

#define RG(f) offsetof(struct rf_group, f)
static const struct conf_field group_fields[] = {
	{.key = "name", .type = CONF_STR, .offset = RG(name), .flags = CONF_REQUIRED,
	 .help = "group name, unique in the file"},
	{.key = "interval", .type = CONF_DURATION, .offset = RG(interval_ms), .min = 0,
	 .max = 9e15, .flags = CONF_RANGE, .help = "evaluation interval of this group"},
	{.key = "limit", .type = CONF_INT, .offset = RG(limit), .min = 0, .max = 1e12,
	 .flags = CONF_RANGE, .help = "at most this many alerts or series per rule (0: none)"},
	{.key = "rules", .type = CONF_OBJLIST, .offset = RG(rules), .sub = &rule_schema,
	 .count_offset = RG(nrules), .help = "the rules, evaluated in order"},
	{0},
};

static int group_validate(void *obj, const struct conf_pos *pos, struct ward_err *err)
{
	struct rf_group *g = obj;
	g->line = pos->line;
	g->col = pos->col;
	if (g->name && !*g->name) {
		conf_error_at(err, pos, "group name must not be empty");
		return -1;
	}
	return 0;
}

static const struct conf_schema group_schema = {
	.name = "group", .size = sizeof(struct rf_group), .fields = group_fields,
	.validate = group_validate};

#define RFL(f) offsetof(struct rf_file, f)
static const struct conf_field file_fields[] = {
	{.key = "groups", .type = CONF_OBJLIST, .offset = RFL(groups), .sub = &group_schema,
	 .count_offset = RFL(ngroups), .help = "rule groups"},
	{0},
};

static int file_validate(void *obj, const struct conf_pos *pos, struct ward_err *err)
{
	struct rf_file *f = obj;
	int rc = 0;
	for (size_t i = 0; i < f->ngroups; i++)
		for (size_t j = 0; j < i; j++)
			if (f->groups[i].name && f->groups[j].name &&
			    !strcmp(f->groups[i].name, f->groups[j].name)) {
				struct conf_pos p = {pos->file, f->groups[i].line, f->groups[i].col};
				conf_error_at(err, &p, "groupname: \"%s\" is repeated in the same file",
					      f->groups[i].name);
				rc = -1;
			}
	return rc;
}

const struct conf_schema alert_rulefile_schema = {
	.name = "rulefile", .size = sizeof(struct rf_file), .fields = file_fields,
	.validate = file_validate};

static void kv_to_labels(struct labels *ls, const struct conf_kv *kv, size_t n)
{
	labels_init(ls);
	for (size_t i = 0; i < n; i++)
		labels_set(ls, kv[i].key, kv[i].value ? kv[i].value : "");
}

static void rule_free(struct alert_rule *r)
{
	free(r->name);
	free(r->expr_text);
	promql_expr_free(r->expr);
	labels_free(&r->labels);
	labels_free(&r->annotations);
	for (size_t i = 0; i < r->nactive; i++)
		alert_inst_clear(&r->active[i]);
	free(r->active);
	for (size_t i = 0; i < r->nprev; i++)
		labels_free(&r->prev_series[i]);
	free(r->prev_series);
	free(r->last_error);
}

void alert_ruleset_free(struct alert_ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->ngroups; i++) {
		struct alert_group *g = &rs->groups[i];
		for (size_t j = 0; j < g->nrules; j++)
			rule_free(&g->rules[j]);
		free(g->rules);
		free(g->name);
		free(g->file);
	}
	free(rs->groups);
	free(rs);
}

size_t alert_ruleset_nrules(const struct alert_ruleset *rs)
{
	size_t n = 0;
	for (size_t i = 0; rs && i < rs->ngroups; i++)
		n += rs->groups[i].nrules;
	return n;
}

/* Appends the groups of one decoded file. */
static int add_file(struct alert_ruleset *rs, const char *path, struct rf_file *f,
		    struct ward_err *err)
{
	rs->groups = ward_xrealloc(rs->groups, (rs->ngroups + f->ngroups + 1) * sizeof(*rs->groups));
	for (size_t i = 0; i < f->ngroups; i++) {
		struct rf_group *rg = &f->groups[i];
		struct alert_group *g = &rs->groups[rs->ngroups++];
		memset(g, 0, sizeof(*g));
		g->name = ward_strdup(rg->name);
		g->file = ward_strdup(path);
		g->interval_ms = rg->interval_ms;
		g->limit = rg->limit;
		g->rules = ward_xcalloc(rg->nrules + 1, sizeof(*g->rules));
		for (size_t j = 0; j < rg->nrules; j++) {
			struct rf_rule *rr = &rg->rules[j];
			struct alert_rule *r = &g->rules[g->nrules++];
			r->alerting = rr->alert != NULL;
			r->name = ward_strdup(rr->alert ? rr->alert : rr->record);
			r->expr_text = ward_strdup(rr->expr);
			r->expr = promql_parse(rr->expr, strlen(rr->expr), err);
			if (!r->expr)
				return -1; /* validated already; cannot happen */
			r->for_ms = rr->for_ms;
			r->keep_firing_for_ms = rr->kff_ms;
			r->line = rr->line;
			r->col = rr->col;
			kv_to_labels(&r->labels, rr->labels, rr->nlabels);
			kv_to_labels(&r->annotations, rr->ann, rr->nann);
		}
	}
	return 0;
}

int alert_rulefile_decode(const char *path, const char *data, size_t len, struct rf_file *f,
			  struct ward_err *err)
{
	memset(f, 0, sizeof(*f));
	if (data)
		return conf_decode_buffer(path, data, len, &alert_rulefile_schema, f, err);
	return conf_decode_file(path, &alert_rulefile_schema, f, err);
}

struct alert_ruleset *alert_rules_load(const char *const *paths, size_t npaths,
				       struct ward_err *err)
{
	struct alert_ruleset *rs = ward_xcalloc(1, sizeof(*rs));
	bool failed = false;
	ward_err_clear(err);
	for (size_t i = 0; i < npaths; i++) {
		struct rf_file f;
		struct ward_err e;
		ward_err_clear(&e);
		if (alert_rulefile_decode(paths[i], NULL, 0, &f, &e) != 0) {
			if (ward_err_isset(err))
				ward_err_append(err, "%s", e.msg);
			else
				ward_err_set(err, "%s", e.msg);
			failed = true;
		} else if (!failed && add_file(rs, paths[i], &f, err) != 0) {
			failed = true;
		}
		conf_free_obj(&alert_rulefile_schema, &f);
	}
	if (failed) {
		alert_ruleset_free(rs);
		return NULL;
	}
	return rs;
}

struct alert_ruleset *alert_rules_load_buffer(const char *name, const char *data, size_t len,
					      struct ward_err *err)
{
	struct alert_ruleset *rs = ward_xcalloc(1, sizeof(*rs));
	struct rf_file f;
	ward_err_clear(err);
	int rc = alert_rulefile_decode(name, data ? data : "", len, &f, err);
	if (rc == 0)
		rc = add_file(rs, name, &f, err);
	conf_free_obj(&alert_rulefile_schema, &f);
	if (rc != 0) {
		alert_ruleset_free(rs);
		return NULL;
	}
	return rs;
}

void alert_ruleset_merge(struct alert_ruleset *dst, struct alert_ruleset *src)
{
	if (!src)
		return;
	if (src->ngroups) {
		dst->groups = ward_xrealloc(dst->groups,
					    (dst->ngroups + src->ngroups + 1) * sizeof(*dst->groups));
		memcpy(dst->groups + dst->ngroups, src->groups, src->ngroups * sizeof(*src->groups));
		dst->ngroups += src->ngroups;
	}
	free(src->groups);
	free(src);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct alert_ruleset *alert_rules_load_globs(const char *const *globs, size_t n,
					     const char *base_dir, struct ward_err *err)
{
	char **paths = NULL;
	size_t np = 0;
	for (size_t i = 0; i < n; i++) {
		struct buf pat = BUF_INIT;
		if (globs[i][0] != '/' && base_dir && *base_dir)
			buf_printf(&pat, "%s/%s", base_dir, globs[i]);
		else
			buf_puts(&pat, globs[i]);
		glob_t g;
		int rc = glob(buf_cstr(&pat), GLOB_NOSORT, NULL, &g);
		if (rc == 0) {
			paths = ward_xrealloc(paths, (np + g.gl_pathc + 1) * sizeof(*paths));
			for (size_t j = 0; j < g.gl_pathc; j++)
				paths[np++] = ward_strdup(g.gl_pathv[j]);
		}
		if (rc == 0 || rc == GLOB_NOMATCH)
			globfree(&g);
		buf_free(&pat);
	}
	if (np)
		qsort(paths, np, sizeof(*paths), cmp_str);
	/* drop duplicates (two globs naming one file) */
	size_t k = 0;
	for (size_t i = 0; i < np; i++) {
		if (k && !strcmp(paths[k - 1], paths[i])) {
			free(paths[i]);
			continue;
		}
		paths[k++] = paths[i];
	}
	struct alert_ruleset *rs = alert_rules_load((const char *const *)paths, k, err);
	for (size_t i = 0; i < k; i++)
		free(paths[i]);
	free(paths);
	return rs;
}

void alert_ruleset_carry_state(struct alert_ruleset *rs, struct alert_ruleset *old)
{
	if (!rs || !old)
		return;
	for (size_t i = 0; i < rs->ngroups; i++) {
		struct alert_group *g = &rs->groups[i];
		for (size_t oi = 0; oi < old->ngroups; oi++) {
			struct alert_group *og = &old->groups[oi];
			if (strcmp(g->name, og->name) || strcmp(g->file, og->file))
				continue;
			g->last_eval_ms = og->last_eval_ms;
			g->last_duration_s = og->last_duration_s;
			for (size_t j = 0; j < g->nrules; j++) {
				struct alert_rule *r = &g->rules[j];
				for (size_t oj = 0; oj < og->nrules; oj++) {
					struct alert_rule *or = &og->rules[oj];
					if (or->alerting != r->alerting || strcmp(or->name, r->name) ||
					    strcmp(or->expr_text, r->expr_text) || or->nactive == 0)
						continue;
					/* steal: old is about to be freed and never evaluated again */
					r->active = or->active;
					r->nactive = or->nactive;
					or->active = NULL;
					or->nactive = 0;
					r->prev_series = or->prev_series;
					r->nprev = or->nprev;
					or->prev_series = NULL;
					or->nprev = 0;
					break;
				}
			}
		}
	}
}
