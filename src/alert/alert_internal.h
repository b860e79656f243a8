/* alert_internal.h: what the files of src/alert share and nobody else sees: the structs
 * rule files decode into (rules.c), instance helpers (eval.c), the module's state
 * (module.c, api.c).
 */
#ifndef WARD_ALERT_INTERNAL_H
#define WARD_ALERT_INTERNAL_H

#include "alert/alert.h"
#include "conf/conf.h"

struct rf_rule {
	char *alert, *record, *expr;
	int64_t for_ms, kff_ms;
	struct conf_kv *labels;
	size_t nlabels;
	struct conf_kv *ann;
	size_t nann;
	int line, col; /* set by the validate callback */
};
struct rf_group {
	char *name;
	int64_t interval_ms;
	int64_t limit;
	struct rf_rule *rules;
	size_t nrules;
	int line, col;
};
struct rf_file {
	struct rf_group *groups;
	size_t ngroups;
};
extern const struct conf_schema alert_rulefile_schema;
/* Decodes one rule file (from data when not NULL, else from path). Free f with
 * conf_free_obj(&alert_rulefile_schema, f). 0 or -1 with err. */
int alert_rulefile_decode(const char *path, const char *data, size_t len, struct rf_file *f,
			  struct ward_err *err);

void alert_inst_clear(struct alert_inst *a);

/* How long a resolved alert is still reported (to notify) before it is forgotten, as
 * Prometheus' resolvedRetention. */
#define ALERT_RESOLVED_RETENTION_MS (15 * 60 * 1000)

/* Alert state of one rule in the state store (component "alert"), keyed by group file,
 * group name, rule name and expression. save: 0 or -1 with err. restore: appends the saved
 * instances to r->active and returns how many (0 when none). Called by module.c. */
struct store;
void alert_register_migrations(void);
int alert_rule_save(struct store *st, const struct alert_group *g, const struct alert_rule *r,
		    struct ward_err *err);
int alert_rule_restore(struct store *st, const struct alert_group *g, struct alert_rule *r);

#endif
