/* ruletest.c: promtool's rule unit tests (`promtool test rules`) on promql_memstore, for
 * `ward rules test`: rule files relative to the test file, evaluation_interval,
 * group_eval_order, input series in expanding notation, alert_rule_test and
 * promql_expr_test. As promtool: groups are evaluated at 0, interval, ... up to the last
 * eval_time, recording rules write into the store, ALERTS are not written, an alert check
 * at t looks at the evaluation at the latest ts <= t, rule errors fail the test.
 */
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alert_internal.h"

struct ut_exp_alert {
	struct conf_kv *labels;
	size_t nlabels;
	struct conf_kv *ann;
	size_t nann;
};
struct ut_alert_test {
	int64_t eval_time_ms;
	char *alertname;
	struct ut_exp_alert *exp;
	size_t nexp;
};
struct ut_sample {
	char *labels;
	char *value;
};
struct ut_expr_test {
	char *expr;
	int64_t eval_time_ms;
	struct ut_sample *exp;
	size_t nexp;
};
struct ut_series {
	char *series;
	char *values;
};
struct ut_test {
	char *name;
	int64_t interval_ms;
	struct ut_series *input;
	size_t ninput;
	struct conf_kv *ext;
	size_t next;
	char *external_url;
	struct ut_alert_test *at;
	size_t nat;
	struct ut_expr_test *et;
	size_t net;
};
struct ut_file {
	char **rule_files;
	size_t nrule_files;
	int64_t eval_interval_ms;
	char **order;
	size_t norder;
	struct ut_test *tests;
	size_t ntests;
};

#define EA(f) offsetof(struct ut_exp_alert, f)
static const struct conf_field exp_alert_fields[] = {
	{.key = "exp_labels", .type = CONF_STRMAP, .offset = EA(labels),
	 .count_offset = EA(nlabels)},
	{.key = "exp_annotations", .type = CONF_STRMAP, .offset = EA(ann), .count_offset = EA(nann)},
	{0},
};
static const struct conf_schema exp_alert_schema = {
	.name = "exp_alert", .size = sizeof(struct ut_exp_alert), .fields = exp_alert_fields};

#define AT(f) offsetof(struct ut_alert_test, f)
static const struct conf_field alert_test_fields[] = {
	{.key = "eval_time", .type = CONF_DURATION, .offset = AT(eval_time_ms), .min = 0,
	 .max = 9e15, .flags = CONF_RANGE},
	{.key = "alertname", .type = CONF_STR, .offset = AT(alertname), .flags = CONF_REQUIRED},
	{.key = "exp_alerts", .type = CONF_OBJLIST, .offset = AT(exp), .sub = &exp_alert_schema,
	 .count_offset = AT(nexp)},
	{0},
};
static const struct conf_schema alert_test_schema = {
	.name = "alert_rule_test", .size = sizeof(struct ut_alert_test), .fields = alert_test_fields};

#define SM(f) offsetof(struct ut_sample, f)
static const struct conf_field sample_fields[] = {
	{.key = "labels", .type = CONF_STR, .offset = SM(labels)},
	{.key = "value", .type = CONF_STR, .offset = SM(value), .flags = CONF_REQUIRED},
	{0},
};
static const struct conf_schema sample_schema = {
	.name = "exp_sample", .size = sizeof(struct ut_sample), .fields = sample_fields};

#define ET(f) offsetof(struct ut_expr_test, f)
static const struct conf_field expr_test_fields[] = {
	{.key = "expr", .type = CONF_STR, .offset = ET(expr), .flags = CONF_REQUIRED},
	{.key = "eval_time", .type = CONF_DURATION, .offset = ET(eval_time_ms), .min = 0,
	 .max = 9e15, .flags = CONF_RANGE},
	{.key = "exp_samples", .type = CONF_OBJLIST, .offset = ET(exp), .sub = &sample_schema,
	 .count_offset = ET(nexp)},
	{0},
};
static const struct conf_schema expr_test_schema = {
	.name = "promql_expr_test", .size = sizeof(struct ut_expr_test), .fields = expr_test_fields};

#define SE(f) offsetof(struct ut_series, f)
static const struct conf_field series_fields[] = {
	{.key = "series", .type = CONF_STR, .offset = SE(series), .flags = CONF_REQUIRED},
	{.key = "values", .type = CONF_STR, .offset = SE(values)},
	{0},
};
static const struct conf_schema series_schema = {
	.name = "input_series", .size = sizeof(struct ut_series), .fields = series_fields};

#define TG(f) offsetof(struct ut_test, f)
static const struct conf_field test_fields[] = {
	{.key = "name", .type = CONF_STR, .offset = TG(name)},
	{.key = "interval", .type = CONF_DURATION, .offset = TG(interval_ms), .min = 0,
	 .max = 9e15, .flags = CONF_RANGE},
	{.key = "input_series", .type = CONF_OBJLIST, .offset = TG(input), .sub = &series_schema,
	 .count_offset = TG(ninput)},
	{.key = "external_labels", .type = CONF_STRMAP, .offset = TG(ext), .count_offset = TG(next)},
	{.key = "external_url", .type = CONF_STR, .offset = TG(external_url)},
	{.key = "alert_rule_test", .type = CONF_OBJLIST, .offset = TG(at), .sub = &alert_test_schema,
	 .count_offset = TG(nat)},
	{.key = "promql_expr_test", .type = CONF_OBJLIST, .offset = TG(et), .sub = &expr_test_schema,
	 .count_offset = TG(net)},
	{0},
};
static const struct conf_schema test_schema = {
	.name = "test", .size = sizeof(struct ut_test), .fields = test_fields};

#define UF(f) offsetof(struct ut_file, f)
static const struct conf_field file_fields[] = {
	{.key = "rule_files", .type = CONF_STRLIST, .offset = UF(rule_files),
	 .count_offset = UF(nrule_files)},
	{.key = "evaluation_interval", .type = CONF_DURATION, .offset = UF(eval_interval_ms),
	 .defval = "1m", .min = 1, .max = 9e15, .flags = CONF_RANGE},
	{.key = "group_eval_order", .type = CONF_STRLIST, .offset = UF(order),
	 .count_offset = UF(norder)},
	{.key = "tests", .type = CONF_OBJLIST, .offset = UF(tests), .sub = &test_schema,
	 .count_offset = UF(ntests)},
	{0},
};
static const struct conf_schema ut_file_schema = {
	.name = "rule_test_file", .size = sizeof(struct ut_file), .fields = file_fields};

static void fmt_dur(int64_t ms, struct buf *out)
{
	char d[32];
	ward_fmt_duration(ms, d);
	buf_puts(out, d);
}

/* Writes into the memstore: recording rule outputs. */
static int mem_write(void *arg, const struct alert_sample *v, size_t n, int64_t t_ms,
		     struct ward_err *err)
{
	struct promql_memstore *m = arg;
	for (size_t i = 0; i < n; i++)
		promql_memstore_add(m, &v[i].labels, t_ms, v[i].v);
	return 0;
}

struct la {
	struct labels labels, ann;
};
static int la_cmp(const void *a, const void *b)
{
	const struct la *x = a, *y = b;
	int c = labels_cmp(&x->labels, &y->labels);
	return c ? c : labels_cmp(&x->ann, &y->ann);
}
static void la_print(struct buf *out, struct la *v, size_t n)
{
	buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_puts(out, ", ");
		buf_puts(out, "{Labels:");
		labels_write(out, &v[i].labels);
		buf_puts(out, " Annotations:");
		labels_write(out, &v[i].ann);
		buf_putc(out, '}');
	}
	buf_putc(out, ']');
}
static void la_free(struct la *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		labels_free(&v[i].labels);
		labels_free(&v[i].ann);
	}
	free(v);
}

static void check_alert(struct alert_ruleset *rs, struct alert_group **order, size_t norder,
			const struct ut_alert_test *at, struct buf *errs)
{
	struct la *got = NULL, *exp = NULL;
	size_t ngot = 0, nexp = 0;
	for (size_t gi = 0; gi < norder; gi++) {
		struct alert_group *g = order[gi];
		for (size_t i = 0; i < g->nrules; i++) {
			struct alert_rule *r = &g->rules[i];
			if (!r->alerting || strcmp(r->name, at->alertname))
				continue;
			for (size_t j = 0; j < r->nactive; j++) {
				if (r->active[j].state != ALERT_FIRING)
					continue;
				got = ward_xrealloc(got, (ngot + 1) * sizeof(*got));
				labels_init(&got[ngot].labels);
				labels_init(&got[ngot].ann);
				labels_copy(&got[ngot].labels, &r->active[j].labels);
				labels_copy(&got[ngot].ann, &r->active[j].annotations);
				ngot++;
			}
		}
	}
	(void)rs;
	exp = ward_xcalloc(at->nexp + 1, sizeof(*exp));
	for (size_t i = 0; i < at->nexp; i++) {
		labels_init(&exp[i].labels);
		labels_init(&exp[i].ann);
		for (size_t k = 0; k < at->exp[i].nlabels; k++)
			labels_set(&exp[i].labels, at->exp[i].labels[k].key,
				   at->exp[i].labels[k].value ? at->exp[i].labels[k].value : "");
		labels_set(&exp[i].labels, "alertname", at->alertname);
		for (size_t k = 0; k < at->exp[i].nann; k++)
			labels_set(&exp[i].ann, at->exp[i].ann[k].key,
				   at->exp[i].ann[k].value ? at->exp[i].ann[k].value : "");
	}
	nexp = at->nexp;
	if (ngot)
		qsort(got, ngot, sizeof(*got), la_cmp);
	if (nexp)
		qsort(exp, nexp, sizeof(*exp), la_cmp);
	bool same = ngot == nexp;
	for (size_t i = 0; same && i < ngot; i++)
		same = labels_equal(&got[i].labels, &exp[i].labels) &&
		       labels_equal(&got[i].ann, &exp[i].ann);
	if (!same) {
		buf_printf(errs, "    alertname: %s, time: ", at->alertname);
		fmt_dur(at->eval_time_ms, errs);
		buf_puts(errs, ", \n        exp:");
		la_print(errs, exp, nexp);
		buf_puts(errs, ", \n        got:");
		la_print(errs, got, ngot);
		buf_putc(errs, '\n');
	}
	la_free(got, ngot);
	la_free(exp, nexp);
}

struct smp {
	struct labels labels;
	double v;
};
static int smp_cmp(const void *a, const void *b)
{
	return labels_cmp(&((const struct smp *)a)->labels, &((const struct smp *)b)->labels);
}
static void smp_print(struct buf *out, struct smp *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_puts(out, i ? ",\n            " : "\n            ");
		labels_write(out, &v[i].labels);
		buf_puts(out, " ");
		buf_put_double(out, v[i].v);
	}
}

/* Parses 'metric{a="b"}' as promtool's parser.ParseMetric. 0 or -1 with err. */
static int parse_metric(const char *s, struct labels *out, struct ward_err *err)
{
	struct matcher *ms = NULL;
	size_t n = 0;
	labels_init(out);
	if (promql_parse_selector(s, strlen(s), &ms, &n, err) != 0) {
		/* a selector without any non-empty matcher (e.g. "{}") is not a valid metric */
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (ms[i].op != MATCH_EQ) {
			ward_err_set(err, "%s: only = label matchers are allowed in a metric", s);
			rc = -1;
		} else {
			labels_set(out, ms[i].name, ms[i].value);
		}
		matcher_free(&ms[i]);
	}
	free(ms);
	return rc;
}

static void check_expr(const struct promql_storage *st, const struct ut_expr_test *et,
		       struct buf *errs)
{
	struct ward_err e;
	ward_err_clear(&e);
	struct promql_expr *x = promql_parse(et->expr, strlen(et->expr), &e);
	struct promql_result r = {0};
	if (x) {
		struct promql_opts o;
		promql_opts_default(&o);
		enum promql_errtype ty;
		if (promql_eval_instant(st, x, et->eval_time_ms, &o, &r, &ty, &e) != 0) {
			promql_expr_free(x);
			x = NULL;
		}
	}
	if (!x) {
		buf_printf(errs, "    expr: \"%s\", time: ", et->expr);
		fmt_dur(et->eval_time_ms, errs);
		buf_printf(errs, ", err: %s\n", e.msg);
		return;
	}
	promql_expr_free(x);
	struct smp *got = NULL, *exp = ward_xcalloc(et->nexp + 1, sizeof(*exp));
	size_t ngot = 0;
	if (r.type == PROMQL_SCALAR) {
		got = ward_xcalloc(1, sizeof(*got));
		labels_init(&got[0].labels);
		got[0].v = r.scalar;
		ngot = 1;
	} else if (r.type == PROMQL_VECTOR) {
		got = ward_xcalloc(r.nseries + 1, sizeof(*got));
		for (size_t i = 0; i < r.nseries; i++) {
			labels_init(&got[i].labels);
			labels_copy(&got[i].labels, &r.series[i].labels);
			got[i].v = r.series[i].n ? r.series[i].v[0] : NAN;
		}
		ngot = r.nseries;
	}
	promql_result_free(&r);
	bool bad = false;
	for (size_t i = 0; i < et->nexp; i++) {
		labels_init(&exp[i].labels);
		if (parse_metric(et->exp[i].labels ? et->exp[i].labels : "", &exp[i].labels, &e)) {
			buf_printf(errs, "    expr: \"%s\", time: ", et->expr);
			fmt_dur(et->eval_time_ms, errs);
			buf_printf(errs, ", err: %s\n", e.msg);
			bad = true;
			break;
		}
		char *end;
		exp[i].v = strtod(et->exp[i].value, &end);
		if (*end || !*et->exp[i].value) {
			buf_printf(errs, "    expr: \"%s\": value \"%s\" is not a number\n", et->expr,
				   et->exp[i].value);
			bad = true;
			break;
		}
	}
	if (!bad) {
		if (ngot)
			qsort(got, ngot, sizeof(*got), smp_cmp);
		if (et->nexp)
			qsort(exp, et->nexp, sizeof(*exp), smp_cmp);
		bool same = ngot == et->nexp;
		for (size_t i = 0; same && i < ngot; i++)
			same = labels_equal(&got[i].labels, &exp[i].labels) && got[i].v == exp[i].v;
		if (!same) {
			buf_printf(errs, "    expr: \"%s\", time: ", et->expr);
			fmt_dur(et->eval_time_ms, errs);
			buf_puts(errs, ",\n        exp:");
			smp_print(errs, exp, et->nexp);
			buf_puts(errs, "\n        got:");
			smp_print(errs, got, ngot);
			buf_putc(errs, '\n');
		}
	}
	for (size_t i = 0; i < ngot; i++)
		labels_free(&got[i].labels);
	for (size_t i = 0; i < et->nexp; i++)
		labels_free(&exp[i].labels);
	free(got);
	free(exp);
}

/* One test group; problems appended to errs. */
static void run_group(const struct ut_file *f, const struct ut_test *tg, const char *dir,
		      struct buf *errs)
{
	struct ward_err err;
	ward_err_clear(&err);
	int64_t itv = tg->interval_ms > 0 ? tg->interval_ms : f->eval_interval_ms;
	struct promql_memstore *m = promql_memstore_new();
	struct alert_ruleset *rs = NULL;
	struct alert_group **order = NULL;
	struct labels ext;
	labels_init(&ext);
	for (size_t i = 0; i < tg->next; i++)
		labels_set(&ext, tg->ext[i].key, tg->ext[i].value ? tg->ext[i].value : "");

	struct buf load = BUF_INIT;
	buf_puts(&load, "load ");
	fmt_dur(itv, &load);
	buf_putc(&load, '\n');
	for (size_t i = 0; i < tg->ninput; i++)
		buf_printf(&load, "  %s %s\n", tg->input[i].series,
			   tg->input[i].values ? tg->input[i].values : "");
	if (promql_memstore_load(m, load.data, load.len, &err) != 0) {
		buf_printf(errs, "    %s\n", err.msg);
		goto out;
	}
	rs = alert_rules_load_globs((const char *const *)f->rule_files, f->nrule_files, dir, &err);
	if (!rs) {
		buf_printf(errs, "    %s\n", err.msg);
		goto out;
	}
	/* evaluation order: group_eval_order first, then the others in file order */
	order = ward_xcalloc(rs->ngroups + 1, sizeof(*order));
	size_t no = 0;
	bool *used = ward_xcalloc(rs->ngroups + 1, sizeof(bool));
	for (size_t i = 0; i < f->norder; i++) {
		bool found = false;
		for (size_t j = 0; j < rs->ngroups; j++)
			if (!used[j] && !strcmp(rs->groups[j].name, f->order[i])) {
				used[j] = true;
				order[no++] = &rs->groups[j];
				found = true;
			}
		if (!found)
			buf_printf(errs, "    group_eval_order: group \"%s\" is not in any rule file\n",
				   f->order[i]);
	}
	if (f->norder && no != rs->ngroups)
		buf_printf(errs, "    group_eval_order must list every group\n");
	for (size_t j = 0; j < rs->ngroups; j++)
		if (!used[j])
			order[no++] = &rs->groups[j];
	free(used);
	if (errs->len)
		goto out;

	int64_t maxt = 0;
	for (size_t i = 0; i < tg->nat; i++)
		if (tg->at[i].eval_time_ms > maxt)
			maxt = tg->at[i].eval_time_ms;
	for (size_t i = 0; i < tg->net; i++)
		if (tg->et[i].eval_time_ms > maxt)
			maxt = tg->et[i].eval_time_ms;
	struct promql_storage st = promql_memstore_storage(m);
	struct promql_opts qo;
	promql_opts_default(&qo);
	struct alert_eval_env env = {.st = &st,
				     .qopts = &qo,
				     .external_labels = &ext,
				     .external_url = tg->external_url,
				     .write_alerts_series = false,
				     .write = mem_write,
				     .write_arg = m};
	for (int64_t ts = 0; ts <= maxt; ts += itv) {
		for (size_t gi = 0; gi < no; gi++) {
			alert_group_eval(order[gi], ts, &env);
			for (size_t ri = 0; ri < order[gi]->nrules; ri++) {
				struct alert_rule *r = &order[gi]->rules[ri];
				if (r->last_error) {
					buf_printf(errs, "    rule: %s, time: ", r->name);
					fmt_dur(ts, errs);
					buf_printf(errs, ", err: %s\n", r->last_error);
				}
			}
		}
		for (size_t i = 0; i < tg->nat; i++)
			if (tg->at[i].eval_time_ms >= ts && tg->at[i].eval_time_ms < ts + itv)
				check_alert(rs, order, no, &tg->at[i], errs);
	}
	for (size_t i = 0; i < tg->net; i++)
		check_expr(&st, &tg->et[i], errs);
out:
	buf_free(&load);
	free(order);
	alert_ruleset_free(rs);
	labels_free(&ext);
	promql_memstore_free(m);
}

int alert_unittest_file(const char *path, struct buf *out)
{
	struct ut_file f;
	struct ward_err err;
	memset(&f, 0, sizeof(f));
	ward_err_clear(&err);
	buf_printf(out, "Unit Testing:  %s\n", path);
	int rc = 0;
	if (conf_decode_file(path, &ut_file_schema, &f, &err) != 0) {
		buf_printf(out, "  FAILED:\n%s\n\n", err.msg);
		conf_free_obj(&ut_file_schema, &f);
		return 1;
	}
	char *pcopy = ward_strdup(path);
	const char *dir = dirname(pcopy);
	struct buf errs = BUF_INIT;
	for (size_t i = 0; i < f.ntests; i++) {
		struct buf ge = BUF_INIT;
		run_group(&f, &f.tests[i], dir, &ge);
		if (ge.len) {
			if (f.tests[i].name)
				buf_printf(&errs, "    name: %s,\n", f.tests[i].name);
			buf_append(&errs, ge.data, ge.len);
		}
		buf_free(&ge);
	}
	if (errs.len) {
		buf_puts(out, "  FAILED:\n");
		buf_append(out, errs.data, errs.len);
		buf_putc(out, '\n');
		rc = 1;
	} else {
		buf_puts(out, "  SUCCESS\n\n");
	}
	buf_free(&errs);
	free(pcopy);
	conf_free_obj(&ut_file_schema, &f);
	return rc;
}
