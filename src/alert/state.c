/* state.c: alert state in the state store (component "alert"): one row per alerting rule
 * holding its active alerts as JSON, keyed by group file, group name, rule name and
 * expression, so that a restart restores pending and firing alerts with their activeAt
 * (a pending alert does not start its `for` again). Called by module.c and tests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert/alert_internal.h"
#include "store/store.h"

static const struct store_migration alert_migrations[] = {
	{1, "CREATE TABLE alert_state (rule_key TEXT PRIMARY KEY, state TEXT NOT NULL, "
	    "updated_ms INTEGER NOT NULL)"},
};

void alert_register_migrations(void)
{
	(void)store_register_migrations("alert", alert_migrations, 1);
}


static void rule_key(const struct alert_group *g, const struct alert_rule *r, struct buf *out)
{
	buf_printf(out, "%s;%s;%s;%s", g->file, g->name, r->name, r->expr_text);
}

static json_t *labels_obj(const struct labels *ls)
{
	json_t *o = json_object();
	for (size_t i = 0; i < ls->n; i++)
		json_object_set_new(o, ls->v[i].name, json_string(ls->v[i].value));
	return o;
}

static void obj_labels(json_t *o, struct labels *ls)
{
	const char *k;
	json_t *v;
	labels_init(ls);
	json_object_foreach(o, k, v)
		if (json_is_string(v))
			labels_set(ls, k, json_string_value(v));
}

int alert_rule_save(struct store *st, const struct alert_group *g, const struct alert_rule *r,
		    struct ward_err *err)
{
	struct buf key = BUF_INIT;
	rule_key(g, r, &key);
	json_t *arr = json_array();
	for (size_t j = 0; j < r->nactive; j++) {
		const struct alert_inst *a = &r->active[j];
		json_array_append_new(
			arr, json_pack("{s:o,s:o,s:i,s:I,s:I,s:I,s:I,s:I,s:f}", "labels",
				       labels_obj(&a->labels), "annotations",
				       labels_obj(&a->annotations), "state", (int)a->state,
				       "active_at", (json_int_t)a->active_at_ms, "fired_at",
				       (json_int_t)a->fired_at_ms, "resolved_at",
				       (json_int_t)a->resolved_at_ms, "kfs",
				       (json_int_t)a->keep_firing_since_ms, "sent",
				       (json_int_t)a->last_sent_ms, "value",
				       isfinite(a->value) ? a->value : 0.0));
	}
	char *s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	struct store_val p[] = {SV_TEXT(buf_cstr(&key)), SV_TEXT(s), SV_INT(ward_now_ms())};
	int rc = store_exec(st,
			    "INSERT INTO alert_state (rule_key, state, updated_ms) VALUES (?, ?, ?) "
			    "ON CONFLICT(rule_key) DO UPDATE SET state = excluded.state, "
			    "updated_ms = excluded.updated_ms",
			    p, 3, NULL, err);
	free(s);
	buf_free(&key);
	return rc == 0 ? 0 : -1;
}

struct restore_ctx {
	struct alert_rule *r;
	int found;
};

static int restore_row(void *arg, const struct store_val *cols, size_t n)
{
	struct restore_ctx *rc = arg;
	json_t *arr = json_loads(cols[0].s ? cols[0].s : "[]", 0, NULL);
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		struct alert_rule *r = rc->r;
		r->active = ward_xrealloc(r->active, (r->nactive + 1) * sizeof(*r->active));
		struct alert_inst *a = &r->active[r->nactive++];
		memset(a, 0, sizeof(*a));
		obj_labels(json_object_get(e, "labels"), &a->labels);
		obj_labels(json_object_get(e, "annotations"), &a->annotations);
		a->state = (enum alert_state)json_integer_value(json_object_get(e, "state"));
		a->active_at_ms = json_integer_value(json_object_get(e, "active_at"));
		a->fired_at_ms = json_integer_value(json_object_get(e, "fired_at"));
		a->resolved_at_ms = json_integer_value(json_object_get(e, "resolved_at"));
		a->keep_firing_since_ms = json_integer_value(json_object_get(e, "kfs"));
		a->last_sent_ms = json_integer_value(json_object_get(e, "sent"));
		a->value = json_number_value(json_object_get(e, "value"));
		rc->found++;
	}
	json_decref(arr);
	return 0;
}

int alert_rule_restore(struct store *st, const struct alert_group *g, struct alert_rule *r)
{
	struct buf key = BUF_INIT;
	rule_key(g, r, &key);
	struct restore_ctx rc = {r, 0};
	struct ward_err err;
	ward_err_clear(&err);
	struct store_val p[] = {SV_TEXT(buf_cstr(&key))};
	(void)store_query(st, "SELECT state FROM alert_state WHERE rule_key = ?", p, 1, restore_row,
			  &rc, &err);
	buf_free(&key);
	return rc.found;
}

