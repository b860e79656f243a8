/* engine.c: ward's Alertmanager core: alerts by fingerprint, Alertmanager's grouping
 * (group_wait, group_interval, repeat_interval), inhibition, silences, maintenance
 * windows, and escalation policies stepping through their levels until acknowledged.
 *
 * Pure in time: every function takes now_ms and the caller holds the engine lock (see
 * module.c). Output is appended to e->outs (notifications to build into jobs) and e->ev
 * (events for subscribers); the caller drains both after unlocking.
 * Invariant: a group lists each fingerprint once; muted alerts stay in their groups (they
 * are "muted and marked, not lost") but are left out of notifications.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"

#define RESOLVED_KEEP_MS     (15 * 60 * 1000) /* resolved alerts stay visible this long */
#define MAX_ROUTES_PER_ALERT 32
#define TICK_IDLE_MS         1000

#define GROW(arr, n, cap)                                                     \
	do {                                                                  \
		if ((n) == (cap)) {                                           \
			(cap) = (cap) ? (cap)*2 : 8;                          \
			(arr) = ward_xrealloc((arr), (cap) * sizeof(*(arr))); \
		}                                                             \
	} while (0)

void nfy_fingerprint(const struct labels *ls, char out[17]) {
	snprintf(out, 17, "%016llx", (unsigned long long)labels_hash(ls));
}

bool nfy_alert_resolved(const struct nfy_alert *a, int64_t now_ms) {
	return a->ends_ms > 0 && a->ends_ms <= now_ms;
}

void nfy_engine_init(struct nfy_engine *e) {
	memset(e, 0, sizeof(*e));
}

static void alert_free(struct nfy_alert *a) {
	if (!a)
		return;
	labels_free(&a->labels);
	labels_free(&a->annotations);
	free(a->generator_url);
	free(a);
}

static void group_free(struct nfy_group *g) {
	if (!g)
		return;
	free(g->key);
	free(g->route_key);
	free(g->receiver);
	labels_free(&g->group_labels);
	free(g->fps);
	free(g);
}

void nfy_silence_free(struct nfy_silence *s) {
	if (!s)
		return;
	nfy_matchers_free(&s->m);
	json_decref(s->matchers_json);
	free(s->created_by);
	free(s->comment);
	free(s);
}

void nfy_esc_free(struct nfy_esc *x) {
	if (!x)
		return;
	free(x->policy);
	free(x->acked_by);
	json_decref(x->alert);
	free(x);
}

void nfy_outs_clear(struct nfy_engine *e) {
	for (size_t i = 0; i < e->nouts; i++) {
		free(e->outs[i].receiver);
		free(e->outs[i].group_key);
		labels_free(&e->outs[i].group_labels);
		json_decref(e->outs[i].alerts);
	}
	e->nouts = 0;
}

void nfy_events_clear(struct nfy_events *ev) {
	for (size_t i = 0; i < ev->nstrs; i++)
		free(ev->strs[i]);
	for (size_t i = 0; i < ev->nlss; i++) {
		labels_free(ev->lss[i]);
		free(ev->lss[i]);
	}
	ev->n = ev->nstrs = ev->nlss = 0;
}

static const char *ev_str(struct nfy_events *ev, const char *s) {
	if (!s)
		return NULL;
	GROW(ev->strs, ev->nstrs, ev->caps);
	ev->strs[ev->nstrs] = ward_strdup(s);
	return ev->strs[ev->nstrs++];
}

void nfy_events_push(struct nfy_events *ev, enum notify_event_kind kind, int64_t at, const char *fp,
                     const struct labels *ls, const char *receiver, const char *integration,
                     const char *result, const char *actor, int level, const char *group_key) {
	struct notify_event x = {.kind = kind, .at_ms = at, .level = level};
	x.fingerprint = ev_str(ev, fp ? fp : "");
	if (ls) {
		GROW(ev->lss, ev->nlss, ev->capl);
		struct labels *c = ward_xcalloc(1, sizeof(*c));
		labels_copy(c, ls);
		ev->lss[ev->nlss++] = c;
		x.labels = c;
	}
	x.receiver = ev_str(ev, receiver);
	x.integration = ev_str(ev, integration);
	x.result = ev_str(ev, result);
	x.actor = ev_str(ev, actor);
	x.group_key = ev_str(ev, group_key);
	GROW(ev->v, ev->n, ev->cap);
	ev->v[ev->n++] = x;
}

void nfy_engine_free(struct nfy_engine *e) {
	for (size_t i = 0; i < e->nalerts; i++)
		alert_free(e->alerts[i]);
	free(e->alerts);
	for (size_t i = 0; i < e->ngroups; i++)
		group_free(e->groups[i]);
	free(e->groups);
	for (size_t i = 0; i < e->nsilences; i++)
		nfy_silence_free(e->silences[i]);
	free(e->silences);
	for (size_t i = 0; i < e->nescs; i++)
		nfy_esc_free(e->escs[i]);
	free(e->escs);
	nfy_outs_clear(e);
	free(e->outs);
	nfy_events_clear(&e->ev);
	free(e->ev.v);
	free(e->ev.strs);
	free(e->ev.lss);
	free(e->dirty_escs);
	nfy_cfg_free(e->cfg);
	memset(e, 0, sizeof(*e));
}

struct nfy_alert *nfy_engine_find(struct nfy_engine *e, const char *fp) {
	for (size_t i = 0; i < e->nalerts; i++)
		if (memcmp(e->alerts[i]->fp, fp, 16) == 0)
			return e->alerts[i];
	return NULL;
}

/* ---- grouping ---- */

static void group_labels_of(const struct nfy_route *r, const struct labels *ls,
                            struct labels *out) {
	labels_init(out);
	if (r->group_all) {
		labels_copy(out, ls);
		return;
	}
	for (size_t i = 0; i < r->ngroup_by; i++) {
		const char *v = labels_get(ls, r->group_by[i]);
		if (v)
			labels_set(out, r->group_by[i], v);
	}
}

static void group_add_fp(struct nfy_group *g, const char *fp) {
	for (size_t i = 0; i < g->nfps; i++)
		if (memcmp(g->fps[i], fp, 16) == 0)
			return;
	GROW(g->fps, g->nfps, g->capfps);
	memcpy(g->fps[g->nfps++], fp, 17);
}

static void route_alert(struct nfy_engine *e, const struct nfy_alert *a, int64_t now_ms) {
	if (!e->cfg)
		return;
	const struct nfy_route *rs[MAX_ROUTES_PER_ALERT];
	size_t nr = nfy_route_match(&e->cfg->root, &a->labels, rs, MAX_ROUTES_PER_ALERT);
	for (size_t i = 0; i < nr; i++) {
		const struct nfy_route *r = rs[i];
		if (!r->receiver)
			continue;
		struct labels gl;
		group_labels_of(r, &a->labels, &gl);
		struct buf k = BUF_INIT;
		buf_puts(&k, r->key);
		buf_putc(&k, ':');
		labels_write(&k, &gl);
		struct nfy_group *g = NULL;
		for (size_t j = 0; j < e->ngroups; j++)
			if (strcmp(e->groups[j]->key, buf_cstr(&k)) == 0 &&
			    strcmp(e->groups[j]->receiver, r->receiver) == 0) {
				g = e->groups[j];
				break;
			}
		if (!g) {
			g = ward_xcalloc(1, sizeof(*g));
			g->key = buf_detach(&k);
			g->route_key = ward_strdup(r->key);
			g->route = r;
			g->receiver = ward_strdup(r->receiver);
			g->group_labels = gl;
			labels_init(&gl);
			g->next_flush_ms = now_ms + r->group_wait_ms;
			GROW(e->groups, e->ngroups, e->capgroups);
			e->groups[e->ngroups++] = g;
		}
		buf_free(&k);
		labels_free(&gl);
		group_add_fp(g, a->fp);
	}
}

void nfy_engine_set_cfg(struct nfy_engine *e, struct nfy_cfg *cfg) {
	/* Groups point into the old route tree: keep their timers by key where the new tree
	 * has the same route, re-derive membership from the alerts. */
	struct nfy_group **old = e->groups;
	size_t nold = e->ngroups;
	e->groups = NULL;
	e->ngroups = e->capgroups = 0;
	nfy_cfg_free(e->cfg);
	e->cfg = cfg;
	int64_t now = ward_now_ms();
	for (size_t i = 0; i < e->nalerts; i++)
		route_alert(e, e->alerts[i], now);
	for (size_t i = 0; i < e->ngroups; i++)
		for (size_t j = 0; j < nold; j++)
			if (old[j] && strcmp(old[j]->key, e->groups[i]->key) == 0) {
				e->groups[i]->next_flush_ms = old[j]->next_flush_ms;
				e->groups[i]->last_sent_ms = old[j]->last_sent_ms;
				e->groups[i]->last_hash = old[j]->last_hash;
				e->groups[i]->sent_firing = old[j]->sent_firing;
			}
	for (size_t j = 0; j < nold; j++)
		group_free(old[j]);
	free(old);
}

void nfy_engine_post(struct nfy_engine *e, const struct notify_alert *v, size_t n, int64_t now_ms) {
	int64_t resolve_ms = e->cfg ? e->cfg->c->resolve_timeout_ms : 5 * 60000;
	for (size_t i = 0; i < n; i++) {
		char fp[17];
		if (v[i].labels.n == 0)
			continue;
		nfy_fingerprint(&v[i].labels, fp);
		struct nfy_alert *a = nfy_engine_find(e, fp);
		bool was_resolved = a ? nfy_alert_resolved(a, now_ms) : true;
		if (!a) {
			a = ward_xcalloc(1, sizeof(*a));
			memcpy(a->fp, fp, 17);
			labels_copy(&a->labels, &v[i].labels);
			GROW(e->alerts, e->nalerts, e->capalerts);
			e->alerts[e->nalerts++] = a;
			a->starts_ms = v[i].starts_at_ms > 0 ? v[i].starts_at_ms : now_ms;
		} else if (was_resolved) {
			a->starts_ms = v[i].starts_at_ms > 0 ? v[i].starts_at_ms : now_ms;
		} else if (v[i].starts_at_ms > 0 && v[i].starts_at_ms < a->starts_ms) {
			a->starts_ms = v[i].starts_at_ms;
		}
		labels_copy(&a->annotations, &v[i].annotations);
		free(a->generator_url);
		a->generator_url = ward_strdup(v[i].generator_url);
		a->ends_explicit = v[i].ends_at_ms > 0;
		a->ends_ms = a->ends_explicit ? v[i].ends_at_ms : now_ms + resolve_ms;
		a->updated_ms = now_ms;
		bool resolved = nfy_alert_resolved(a, now_ms);
		if (!resolved && !a->firing) {
			a->firing = true;
			nfy_events_push(&e->ev, NOTIFY_EV_FIRING, now_ms, a->fp, &a->labels, NULL,
			                NULL, NULL, NULL, 0, NULL);
		} else if (resolved && a->firing) {
			a->firing = false;
			nfy_events_push(&e->ev, NOTIFY_EV_RESOLVED, now_ms, a->fp, &a->labels, NULL,
			                NULL, NULL, NULL, 0, NULL);
		}
		if (!resolved || !was_resolved)
			route_alert(e, a, now_ms);
	}
}

/* ---- muting ---- */

const char *nfy_silence_state(const struct nfy_silence *s, int64_t now_ms) {
	if (now_ms >= s->ends_ms)
		return "expired";
	if (now_ms < s->starts_ms)
		return "pending";
	return "active";
}

static bool equal_labels(const struct labels *a, const struct labels *b, char **names, size_t n) {
	for (size_t i = 0; i < n; i++) {
		const char *x = labels_get(a, names[i]), *y = labels_get(b, names[i]);
		if (!ward_streq(x ? x : "", y ? y : ""))
			return false;
	}
	return true;
}

bool nfy_engine_muted(struct nfy_engine *e, const struct nfy_alert *a, int64_t now_ms,
                      json_t *silenced_by, json_t *inhibited_by, json_t *muted_by) {
	bool muted = false;
	for (size_t i = 0; i < e->nsilences; i++) {
		const struct nfy_silence *s = e->silences[i];
		if (now_ms >= s->starts_ms && now_ms < s->ends_ms &&
		    nfy_matchers_match(&s->m, &a->labels)) {
			muted = true;
			if (!silenced_by)
				return true;
			json_array_append_new(silenced_by, json_string(s->id));
		}
	}
	if (!e->cfg)
		return muted;
	for (size_t r = 0; r < e->cfg->ninhibits; r++) {
		const struct nfy_inhibit *ih = &e->cfg->inhibits[r];
		if (!nfy_matchers_match(&ih->target, &a->labels))
			continue;
		for (size_t i = 0; i < e->nalerts; i++) {
			const struct nfy_alert *s = e->alerts[i];
			if (s == a || nfy_alert_resolved(s, now_ms) ||
			    !nfy_matchers_match(&ih->source, &s->labels) ||
			    !equal_labels(&a->labels, &s->labels, ih->equal, ih->nequal))
				continue;
			/* An alert that is both source and target cannot inhibit its own kind
			 * (Alertmanager: only a source that is not also a target inhibits). */
			if (nfy_matchers_match(&ih->target, &s->labels) &&
			    nfy_matchers_match(&ih->source, &a->labels))
				continue;
			muted = true;
			if (!inhibited_by)
				return true;
			json_array_append_new(inhibited_by, json_string(s->fp));
			break;
		}
	}
	for (size_t i = 0; i < e->cfg->nmaints; i++) {
		const struct nfy_maint *w = &e->cfg->maints[i];
		if (nfy_matchers_match(&w->m, &a->labels) && nfy_maint_active(w, now_ms)) {
			muted = true;
			if (!muted_by)
				return true;
			json_array_append_new(muted_by, json_string(w->name));
		}
	}
	return muted;
}

/* ---- JSON shapes ---- */

static json_t *labels_json(const struct labels *ls) {
	json_t *o = json_object();
	for (size_t i = 0; i < ls->n; i++)
		json_object_set_new(o, ls->v[i].name, json_string(ls->v[i].value));
	return o;
}

static json_t *time_json(int64_t ms) {
	char t[32];
	if (ms <= 0)
		return json_string("0001-01-01T00:00:00Z");
	ward_fmt_rfc3339(ms, t);
	return json_string(t);
}

json_t *nfy_alert_json(const struct nfy_alert *a, int64_t now_ms) {
	bool res = nfy_alert_resolved(a, now_ms);
	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:s,s:s}", "status", res ? "resolved" : "firing",
	                 "labels", labels_json(&a->labels), "annotations",
	                 labels_json(&a->annotations), "startsAt", time_json(a->starts_ms),
	                 "endsAt", time_json(res ? a->ends_ms : 0), "generatorURL",
	                 a->generator_url ? a->generator_url : "", "fingerprint", a->fp);
}

static void add_ack_url(struct nfy_engine *e, json_t *aj, const char *fp, int64_t now_ms) {
	if (!e->have_key || !e->ack_base || !*e->ack_base || !e->cfg)
		return;
	struct buf t = BUF_INIT, u = BUF_INIT;
	nfy_ack_token(e->ack_key, fp, now_ms + e->cfg->c->ack_link_ttl_ms, &t);
	buf_puts(&u, e->ack_base);
	while (u.len && u.data[u.len - 1] == '/')
		u.len--;
	buf_printf(&u, "/ack/%s", buf_cstr(&t));
	json_object_set_new(aj, "ackURL", json_string(buf_cstr(&u)));
	buf_free(&t);
	buf_free(&u);
}

/* ---- the tick ---- */

static uint64_t mix(uint64_t h) {
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static void push_out(struct nfy_engine *e, const char *receiver, const char *key,
                     const struct labels *gl, json_t *alerts, bool firing, int level) {
	GROW(e->outs, e->nouts, e->capouts);
	struct nfy_out *o = &e->outs[e->nouts++];
	memset(o, 0, sizeof(*o));
	o->receiver = ward_strdup(receiver);
	o->group_key = ward_strdup(key);
	labels_init(&o->group_labels);
	if (gl)
		labels_copy(&o->group_labels, gl);
	o->alerts = alerts;
	o->firing = firing;
	o->esc_level = level;
}

static int64_t flush_group(struct nfy_engine *e, struct nfy_group *g, int64_t now_ms) {
	json_t *alerts = json_array();
	uint64_t hash = 0;
	size_t nfiring = 0, w = 0;
	for (size_t i = 0; i < g->nfps; i++) {
		struct nfy_alert *a = nfy_engine_find(e, g->fps[i]);
		if (!a)
			continue;
		bool res = nfy_alert_resolved(a, now_ms);
		if (!res) {
			memcpy(g->fps[w++], g->fps[i], 17); /* stays in the group */
			if (nfy_engine_muted(e, a, now_ms, NULL, NULL, NULL))
				continue;
			nfiring++;
		} else if (!g->sent_firing) {
			continue;
		}
		json_t *aj = nfy_alert_json(a, now_ms);
		if (!res)
			add_ack_url(e, aj, a->fp, now_ms);
		json_array_append_new(alerts, aj);
		hash += mix(labels_hash(&a->labels) ^ (res ? 0x9e3779b97f4a7c15ULL : 0));
	}
	g->nfps = w;
	bool changed = hash != g->last_hash;
	bool repeat = nfiring > 0 && now_ms - g->last_sent_ms >= g->route->repeat_interval_ms;
	if (json_array_size(alerts) > 0 && (changed || repeat) && (nfiring > 0 || g->sent_firing)) {
		push_out(e, g->receiver, g->key, &g->group_labels, alerts, nfiring > 0, 0);
		g->last_hash = hash;
		g->last_sent_ms = now_ms;
		g->sent_firing = nfiring > 0;
	} else {
		if (json_array_size(alerts) == 0)
			g->last_hash = hash;
		json_decref(alerts);
	}
	g->next_flush_ms = now_ms + g->route->group_interval_ms;
	return g->next_flush_ms;
}

static const struct nfy_policy *policy_for(struct nfy_engine *e, const struct labels *ls) {
	for (size_t i = 0; e->cfg && i < e->cfg->npolicies; i++)
		if (e->cfg->policies[i].nlevels && nfy_matchers_match(&e->cfg->policies[i].m, ls))
			return &e->cfg->policies[i];
	return NULL;
}

static const struct nfy_policy *policy_named(struct nfy_engine *e, const char *name) {
	for (size_t i = 0; e->cfg && i < e->cfg->npolicies; i++)
		if (ward_streq(e->cfg->policies[i].name, name))
			return &e->cfg->policies[i];
	return NULL;
}

static void mark_dirty(struct nfy_engine *e, const char *fp) {
	for (size_t i = 0; i < e->ndirty; i++)
		if (memcmp(e->dirty_escs[i], fp, 16) == 0)
			return;
	GROW(e->dirty_escs, e->ndirty, e->capdirty);
	memcpy(e->dirty_escs[e->ndirty++], fp, 17);
}

struct nfy_esc *nfy_engine_find_esc(struct nfy_engine *e, const char *fp) {
	for (size_t i = 0; i < e->nescs; i++)
		if (memcmp(e->escs[i]->fp, fp, 16) == 0)
			return e->escs[i];
	return NULL;
}

void nfy_engine_add_esc(struct nfy_engine *e, struct nfy_esc *x) {
	for (size_t i = 0; i < e->nescs; i++)
		if (memcmp(e->escs[i]->fp, x->fp, 16) == 0) {
			nfy_esc_free(e->escs[i]);
			e->escs[i] = x;
			return;
		}
	GROW(e->escs, e->nescs, e->capescs);
	e->escs[e->nescs++] = x;
}

static void esc_notify(struct nfy_engine *e, struct nfy_esc *x, const struct nfy_policy *p,
                       struct nfy_alert *a, int64_t now_ms) {
	const struct nc_level *lv = &p->levels[x->level];
	struct buf key = BUF_INIT;
	buf_printf(&key, "escalation/%s/%s/level%d", p->name, x->fp, x->level + 1);
	struct labels gl;
	labels_init(&gl);
	const char *an = labels_get(&a->labels, "alertname");
	if (an)
		labels_set(&gl, "alertname", an);
	for (size_t r = 0; r < lv->nreceivers; r++) {
		json_t *alerts = json_array();
		json_t *aj = nfy_alert_json(a, now_ms);
		add_ack_url(e, aj, a->fp, now_ms);
		json_object_set_new(aj, "escalationLevel", json_integer(x->level + 1));
		json_array_append_new(alerts, aj);
		push_out(e, lv->receivers[r], buf_cstr(&key), &gl, alerts, true, x->level + 1);
		nfy_events_push(&e->ev, NOTIFY_EV_ESCALATED, now_ms, a->fp, &a->labels,
		                lv->receivers[r], NULL, NULL, NULL, x->level + 1, buf_cstr(&key));
	}
	labels_free(&gl);
	buf_free(&key);
}

static int64_t escalate(struct nfy_engine *e, int64_t now_ms) {
	int64_t next = INT64_MAX;
	if (!e->cfg || e->cfg->npolicies == 0)
		return next;
	for (size_t i = 0; i < e->nalerts; i++) {
		struct nfy_alert *a = e->alerts[i];
		if (nfy_alert_resolved(a, now_ms))
			continue;
		struct nfy_esc *x = nfy_engine_find_esc(e, a->fp);
		if (x && !x->resolved_ms)
			continue;
		if (x && x->resolved_ms && a->starts_ms <= x->resolved_ms)
			continue; /* the same episode; it fires again only with a new start */
		const struct nfy_policy *p = policy_for(e, &a->labels);
		if (!p || nfy_engine_muted(e, a, now_ms, NULL, NULL, NULL))
			continue;
		x = ward_xcalloc(1, sizeof(*x));
		memcpy(x->fp, a->fp, 17);
		x->policy = ward_strdup(p->name);
		x->level = -1;
		x->started_ms = now_ms;
		x->alert = nfy_alert_json(a, now_ms);
		nfy_engine_add_esc(e, x);
		mark_dirty(e, x->fp);
	}
	for (size_t i = 0; i < e->nescs; i++) {
		struct nfy_esc *x = e->escs[i];
		if (x->acked_ms || x->resolved_ms)
			continue;
		struct nfy_alert *a = nfy_engine_find(e, x->fp);
		if (!a || nfy_alert_resolved(a, now_ms)) {
			x->resolved_ms = now_ms;
			mark_dirty(e, x->fp);
			continue;
		}
		const struct nfy_policy *p = policy_named(e, x->policy);
		if (!p)
			continue;
		if (nfy_engine_muted(e, a, now_ms, NULL, NULL, NULL)) {
			next = next < now_ms + TICK_IDLE_MS ? next : now_ms + TICK_IDLE_MS;
			continue;
		}
		while (x->level + 1 < (int)p->nlevels &&
		       now_ms - x->started_ms >= p->levels[x->level + 1].after_ms) {
			x->level++;
			mark_dirty(e, x->fp);
			esc_notify(e, x, p, a, now_ms);
		}
		if (x->level + 1 < (int)p->nlevels) {
			int64_t due = x->started_ms + p->levels[x->level + 1].after_ms;
			if (due < next)
				next = due;
		}
	}
	return next;
}

int nfy_engine_ack(struct nfy_engine *e, const char *fp, const char *actor, int64_t now_ms) {
	struct nfy_esc *x = nfy_engine_find_esc(e, fp);
	if (!x || x->acked_ms || x->resolved_ms)
		return 1;
	x->acked_ms = now_ms;
	x->acked_by = ward_strdup(actor);
	mark_dirty(e, fp);
	struct nfy_alert *a = nfy_engine_find(e, fp);
	nfy_events_push(&e->ev, NOTIFY_EV_ACK, now_ms, fp, a ? &a->labels : NULL, NULL, NULL, NULL,
	                actor, x->level + 1, NULL);
	return 0;
}

json_t *nfy_esc_json(const struct nfy_esc *x) {
	char t[32];
	json_t *o = json_pack("{s:s,s:s,s:i,s:O?}", "fingerprint", x->fp, "policy", x->policy,
	                      "level", x->level + 1, "alert", x->alert);
	ward_fmt_rfc3339(x->started_ms, t);
	json_object_set_new(o, "started", json_string(t));
	json_object_set_new(o, "acked", x->acked_ms ? time_json(x->acked_ms) : json_null());
	json_object_set_new(o, "acked_by", x->acked_by ? json_string(x->acked_by) : json_null());
	json_object_set_new(o, "resolved",
	                    x->resolved_ms ? time_json(x->resolved_ms) : json_null());
	json_object_set_new(o, "state",
	                    json_string(x->acked_ms      ? "acknowledged"
	                                : x->resolved_ms ? "resolved"
	                                                 : "escalating"));
	return o;
}

int64_t nfy_engine_tick(struct nfy_engine *e, int64_t now_ms) {
	int64_t next = now_ms + TICK_IDLE_MS;
	for (size_t i = 0; i < e->nalerts; i++) {
		struct nfy_alert *a = e->alerts[i];
		if (a->firing && nfy_alert_resolved(a, now_ms)) {
			a->firing = false;
			nfy_events_push(&e->ev, NOTIFY_EV_RESOLVED, now_ms, a->fp, &a->labels, NULL,
			                NULL, NULL, NULL, 0, NULL);
		} else if (a->firing && a->ends_ms < next) {
			next = a->ends_ms;
		}
	}
	for (size_t i = 0; i < e->ngroups;) {
		struct nfy_group *g = e->groups[i];
		if (now_ms >= g->next_flush_ms)
			flush_group(e, g, now_ms);
		if (g->nfps == 0 && !g->sent_firing) {
			group_free(g);
			e->groups[i] = e->groups[--e->ngroups];
			continue;
		}
		if (g->next_flush_ms < next)
			next = g->next_flush_ms;
		i++;
	}
	int64_t en = escalate(e, now_ms);
	if (en < next)
		next = en;
	/* garbage: resolved alerts long gone from every group, and their escalations */
	for (size_t i = 0; i < e->nalerts;) {
		struct nfy_alert *a = e->alerts[i];
		if (nfy_alert_resolved(a, now_ms) && now_ms - a->ends_ms > RESOLVED_KEEP_MS &&
		    now_ms - a->updated_ms > RESOLVED_KEEP_MS) {
			for (size_t j = 0; j < e->nescs; j++)
				if (memcmp(e->escs[j]->fp, a->fp, 16) == 0) {
					nfy_esc_free(e->escs[j]);
					e->escs[j] = e->escs[--e->nescs];
					break;
				}
			alert_free(a);
			e->alerts[i] = e->alerts[--e->nalerts];
			continue;
		}
		i++;
	}
	return next < now_ms ? now_ms : next;
}

/* ---- silences ---- */

void nfy_engine_add_silence(struct nfy_engine *e, struct nfy_silence *s) {
	for (size_t i = 0; i < e->nsilences; i++)
		if (strcmp(e->silences[i]->id, s->id) == 0) {
			nfy_silence_free(e->silences[i]);
			e->silences[i] = s;
			return;
		}
	GROW(e->silences, e->nsilences, e->capsilences);
	e->silences[e->nsilences++] = s;
}

struct nfy_silence *nfy_engine_find_silence(struct nfy_engine *e, const char *id) {
	for (size_t i = 0; i < e->nsilences; i++)
		if (strcmp(e->silences[i]->id, id) == 0)
			return e->silences[i];
	return NULL;
}

static int jtime(json_t *v, int64_t *out) {
	const char *s = json_string_value(v);
	return s ? ward_parse_time(s, strlen(s), out) : -1;
}

struct nfy_silence *nfy_silence_from_json(json_t *j, int64_t now_ms, struct ward_err *err) {
	if (!json_is_object(j)) {
		ward_err_set(err, "a silence is a JSON object with matchers, startsAt, endsAt, "
		                  "createdBy and comment");
		return NULL;
	}
	struct nfy_silence *s = ward_xcalloc(1, sizeof(*s));
	json_t *ms = json_object_get(j, "matchers");
	if (!json_is_array(ms) || json_array_size(ms) == 0) {
		ward_err_set(err, "silence: matchers must be a non-empty array of "
		                  "{\"name\",\"value\",\"isRegex\",\"isEqual\"}");
		goto fail;
	}
	s->matchers_json = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m) {
		const char *name, *value;
		bool is_re, is_eq;
		if (json_is_string(m)) {
			struct ward_err e;
			ward_err_clear(&e);
			size_t before = s->m.n;
			const char *txt = json_string_value(m);
			if (nfy_matchers_parse(txt, strlen(txt), &s->m, &e) != 0) {
				ward_err_set(err, "silence matcher %zu: %s", i, e.msg);
				goto fail;
			}
			for (size_t k = before; k < s->m.n; k++) {
				enum matcher_op op = s->m.v[k].op;
				json_array_append_new(
				        s->matchers_json,
				        json_pack("{s:s,s:s,s:b,s:b}", "name", s->m.v[k].name,
				                  "value", s->m.v[k].value, "isRegex",
				                  op == MATCH_RE || op == MATCH_NRE, "isEqual",
				                  op == MATCH_EQ || op == MATCH_RE));
			}
			continue;
		}
		name = json_string_value(json_object_get(m, "name"));
		value = json_string_value(json_object_get(m, "value"));
		json_t *eqv = json_object_get(m, "isEqual");
		is_re = json_is_true(json_object_get(m, "isRegex"));
		is_eq = eqv ? json_is_true(eqv) : true;
		if (!name || !*name || !value) {
			ward_err_set(err, "silence matcher %zu needs a name and a value", i);
			goto fail;
		}
		enum matcher_op op =
		        is_re ? (is_eq ? MATCH_RE : MATCH_NRE) : (is_eq ? MATCH_EQ : MATCH_NEQ);
		struct matcher mm;
		struct ward_err e;
		ward_err_clear(&e);
		if (matcher_init(&mm, op, name, value, &e) != 0) {
			ward_err_set(err, "silence matcher %zu: %s", i, e.msg);
			goto fail;
		}
		s->m.v = ward_xrealloc(s->m.v, (s->m.n + 1) * sizeof(*s->m.v));
		s->m.v[s->m.n++] = mm;
		json_array_append_new(s->matchers_json,
		                      json_pack("{s:s,s:s,s:b,s:b}", "name", name, "value", value,
		                                "isRegex", is_re, "isEqual", is_eq));
	}
	/* Alertmanager refuses silences that match everything, e.g. a single job=~".*". */
	bool matches_empty = true;
	for (size_t k = 0; k < s->m.n; k++)
		if (!matcher_matches(&s->m.v[k], ""))
			matches_empty = false;
	if (matches_empty) {
		ward_err_set(err, "silence: the matchers match every alert (each matches an empty "
		                  "label); add a matcher that needs a value");
		goto fail;
	}
	if (json_object_get(j, "startsAt")) {
		if (jtime(json_object_get(j, "startsAt"), &s->starts_ms) != 0) {
			ward_err_set(err, "silence: startsAt is not an RFC 3339 time");
			goto fail;
		}
	} else {
		s->starts_ms = now_ms;
	}
	if (jtime(json_object_get(j, "endsAt"), &s->ends_ms) != 0) {
		ward_err_set(err, "silence: endsAt is required (an RFC 3339 time)");
		goto fail;
	}
	if (s->ends_ms <= s->starts_ms) {
		ward_err_set(err, "silence: endsAt must be after startsAt");
		goto fail;
	}
	if (s->ends_ms <= now_ms) {
		ward_err_set(err, "silence: endsAt is in the past");
		goto fail;
	}
	if (s->starts_ms < now_ms)
		s->starts_ms = now_ms;
	s->created_by = ward_strdup(json_string_value(json_object_get(j, "createdBy")));
	s->comment = ward_strdup(json_string_value(json_object_get(j, "comment")));
	if (!s->created_by || !*s->created_by) {
		ward_err_set(err, "silence: createdBy is required");
		goto fail;
	}
	if (!s->comment)
		s->comment = ward_strdup("");
	s->updated_ms = now_ms;
	const char *id = json_string_value(json_object_get(j, "id"));
	if (id && *id) {
		snprintf(s->id, sizeof(s->id), "%s", id);
	} else {
		uint8_t r[16];
		char hx[33];
		ward_random_bytes(r, sizeof(r));
		r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
		r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
		ward_hex(r, sizeof(r), hx);
		snprintf(s->id, sizeof(s->id), "%.8s-%.4s-%.4s-%.4s-%.12s", hx, hx + 8, hx + 12,
		         hx + 16, hx + 20);
	}
	return s;
fail:
	nfy_silence_free(s);
	return NULL;
}

json_t *nfy_silence_json(const struct nfy_silence *s, int64_t now_ms) {
	return json_pack("{s:s,s:{s:s},s:o,s:O,s:o,s:o,s:s,s:s}", "id", s->id, "status", "state",
	                 nfy_silence_state(s, now_ms), "updatedAt", time_json(s->updated_ms),
	                 "matchers", s->matchers_json, "startsAt", time_json(s->starts_ms),
	                 "endsAt", time_json(s->ends_ms), "createdBy",
	                 s->created_by ? s->created_by : "", "comment",
	                 s->comment ? s->comment : "");
}

/* ---- ack links ---- */

static void ack_mac(const uint8_t key[32], const char *msg, size_t n, char hex[65]) {
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256(mac, (const unsigned char *)msg, n, key);
	ward_hex(mac, sizeof(mac), hex);
}

void nfy_ack_token(const uint8_t key[32], const char *fp, int64_t exp_ms, struct buf *out) {
	struct buf m = BUF_INIT;
	char hex[65];
	buf_printf(&m, "%.16s.%lld", fp, (long long)(exp_ms / 1000));
	ack_mac(key, m.data, m.len, hex);
	buf_printf(out, "%s.%s", buf_cstr(&m), hex);
	buf_free(&m);
}

int nfy_ack_verify(const uint8_t key[32], const char *tok, int64_t now_ms, char fp[17]) {
	const char *d1 = strchr(tok, '.');
	if (!d1 || d1 - tok != 16)
		return -1;
	const char *d2 = strchr(d1 + 1, '.');
	if (!d2 || strlen(d2 + 1) != 64)
		return -1;
	char *end;
	long long exp = strtoll(d1 + 1, &end, 10);
	if (end != d2 || exp <= 0)
		return -1;
	char hex[65];
	ack_mac(key, tok, (size_t)(d2 - tok), hex);
	if (!ward_ct_equal(hex, d2 + 1, 64))
		return -1;
	if (now_ms / 1000 >= exp)
		return -1;
	memcpy(fp, tok, 16);
	fp[16] = '\0';
	return 0;
}
