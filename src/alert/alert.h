/* alert.h: the one public header of src/alert: Prometheus' rule evaluation inside ward.
 *
 * Rule files are Prometheus' (groups of alerting and recording rules); they are loaded
 * from the globs of the "rules" config section and reloaded with the config (a file with
 * an error rejects the reload with file:line:col and the old rules stay). Each group is
 * evaluated on a timer on the daemon's loop, its PromQL work on libuv's worker pool, one
 * evaluation of a group at a time. Alerts move inactive -> pending -> firing -> resolved
 * as in Prometheus (for, keep_firing_for); ALERTS and ALERTS_FOR_STATE are written to the
 * tsdb; alert state survives restarts through the state store. Label and annotation
 * templates are Go text/template as Prometheus uses them (template.c).
 *
 * The library part (loading, templates, one group evaluation, promtool's unit-test format)
 * needs no daemon, so `ward rules check` and `ward rules test` run offline on
 * promql_memstore.
 */
#ifndef WARD_ALERT_H
#define WARD_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "core/core.h"
#include "promql/promql.h"

extern const struct ward_module alert_module;

/* ---- templates ---- */
/* What a template sees: $labels/.Labels, $externalLabels, $externalURL, $value/.Value;
 * the query function runs PromQL on st at t_ms (st may be NULL: query then fails). */
struct alert_tmpl_data {
	const struct labels *labels;
	const struct labels *external_labels;
	const char *external_url;
	double value;
	const struct promql_storage *st;
	const struct promql_opts *qopts;
	int64_t t_ms;
};
/* Expands a template (s, n bytes) named name into out (appended). 0, or -1 with err
 * "template: NAME:LINE:COL: what" (positions in s, 1-based); out then holds what was
 * expanded before the error. */
int alert_tmpl_expand(const char *name, const char *s, size_t n, const struct alert_tmpl_data *d,
		      struct buf *out, struct ward_err *err);
/* Parses only (rule file checks). 0 or -1 with err as above. */
int alert_tmpl_check(const char *name, const char *s, size_t n, struct ward_err *err);

/* ---- rule files ---- */
enum alert_state { ALERT_INACTIVE = 0, ALERT_PENDING, ALERT_FIRING };
const char *alert_state_name(enum alert_state s); /* "inactive" "pending" "firing" */

/* One alert instance of an alerting rule (identified by its labels). */
struct alert_inst {
	struct labels labels;      /* sample labels - __name__ + rule labels + alertname */
	struct labels annotations; /* expanded */
	enum alert_state state;
	double value;
	int64_t active_at_ms;
	int64_t fired_at_ms;
	int64_t resolved_at_ms;       /* 0 while active */
	int64_t keep_firing_since_ms; /* 0 unless kept firing by keep_firing_for */
	int64_t last_sent_ms;         /* last handed to notify */
	bool seen;                    /* scratch for evaluation */
};

struct alert_rule {
	bool alerting;
	char *name; /* alert: or record: */
	char *expr_text;
	struct promql_expr *expr;
	int64_t for_ms, keep_firing_for_ms;
	struct labels labels;      /* values may be templates (alerting rules) */
	struct labels annotations; /* templates */
	int line, col;             /* in the rule file */
	/* evaluation state */
	struct alert_inst *active;
	size_t nactive;
	struct labels *prev_series; /* series written last evaluation (for stale markers) */
	size_t nprev;
	char *last_error;           /* NULL when healthy */
	int64_t last_eval_ms;
	double last_duration_s;
	bool evaluated;
};

struct alert_group {
	char *name;
	char *file;
	int64_t interval_ms; /* 0: the config's evaluation_interval */
	int64_t limit;       /* 0: none */
	struct alert_rule *rules;
	size_t nrules;
	int64_t last_eval_ms;
	double last_duration_s;
};

struct alert_ruleset {
	struct alert_group *groups;
	size_t ngroups;
};
/* Loads rule files (paths, not globs); a file with problems fails the whole load, err
 * holding "file:line:col: what" lines. NULL on error. */
struct alert_ruleset *alert_rules_load(const char *const *paths, size_t npaths,
				       struct ward_err *err);
/* Expands globs (relative ones against base_dir when not NULL) and loads the files, sorted.
 * A glob matching nothing is not an error (as in Prometheus). */
struct alert_ruleset *alert_rules_load_globs(const char *const *globs, size_t n,
					     const char *base_dir, struct ward_err *err);
void alert_ruleset_free(struct alert_ruleset *rs); /* NULL-safe */
/* Loads one rule file held in memory; name is its file in groups and errors. */
struct alert_ruleset *alert_rules_load_buffer(const char *name, const char *data, size_t len,
					      struct ward_err *err);
/* Moves every group of src to the end of dst and frees src (NULL-safe). */
void alert_ruleset_merge(struct alert_ruleset *dst, struct alert_ruleset *src);

/* The default rule set: the YAML files of dist/rules, embedded at build time (disk
 * filling, memory pressure, a probe down, a backup overdue). Their groups' file is
 * "ward:defaults/NAME". */
struct alert_default_file {
	const char *name; /* "host.yml" */
	const char *data; /* NUL-terminated YAML */
	size_t len;
};
/* The embedded files, *n of them. */
const struct alert_default_file *alert_default_files(size_t *n);
/* Loads every default file; NULL with err if one does not load (a build defect). */
struct alert_ruleset *alert_rules_load_defaults(struct ward_err *err);

/* Moves (steals) alert state from old to rs for rules with the same group file+name, rule name and
 * expression (reload keeps pending and firing alerts). */
void alert_ruleset_carry_state(struct alert_ruleset *rs, struct alert_ruleset *old);
/* Counts of rules in rs. */
size_t alert_ruleset_nrules(const struct alert_ruleset *rs);

/* ---- evaluation of one group at one instant ---- */
struct alert_sample {
	struct labels labels;
	double v;
};
struct alert_eval_env {
	const struct promql_storage *st;
	const struct promql_opts *qopts;
	const struct labels *external_labels;
	const char *external_url;
	bool write_alerts_series; /* ALERTS / ALERTS_FOR_STATE (false in `rules test`, as promtool) */
	/* Called once per rule with its output (recording series or ALERTS), so that later
	 * rules of the group read it. t_ms is the evaluation time. 0 or -1 with err. */
	int (*write)(void *arg, const struct alert_sample *v, size_t n, int64_t t_ms,
		     struct ward_err *err);
	void *write_arg;
};
/* Evaluates every rule of g in order at t_ms: updates alert states, writes outputs. Rule
 * errors are kept per rule (last_error) and do not stop the group. */
void alert_group_eval(struct alert_group *g, int64_t t_ms, const struct alert_eval_env *env);

/* ---- promtool's rule unit tests ---- */
/* Runs one test file in promtool's format; writes promtool-like output to out ("Unit
 * Testing:  FILE\n  SUCCESS\n" or "  FAILED:\n" with details). Returns 0 when every test
 * passed, 1 when one failed or the file is invalid. */
int alert_unittest_file(const char *path, struct buf *out);

/* ---- API JSON (also used by tests) ---- */
/* Prometheus' /api/v1/rules "data" and /api/v1/alerts "data" for rs. */
void alert_rules_json(const struct alert_ruleset *rs, struct buf *out);
void alert_alerts_json(const struct alert_ruleset *rs, struct buf *out);

#endif
