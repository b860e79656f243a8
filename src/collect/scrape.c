/* scrape.c: what a scrape means, without the network: building targets from static_configs
 * and relabel_configs (Prometheus' populateLabels), and turning one response body (or a
 * failure) into tsdb samples: target labels merged (honor_labels, or conflicts renamed
 * exported_*), metric_relabel_configs, sample_limit, the report series (up,
 * scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling,
 * scrape_series_added) and staleness markers for series that disappeared or for every
 * series when the scrape failed. Called by engine.c on libuv's worker pool, one call per
 * target at a time (a target's series set is never shared).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "collect/collect_internal.h"
#include "tsdb/tsdb.h"

/* ---- targets ---- */

void scrape_target_defs_free(struct scrape_target_def *d, size_t n) {
	for (size_t i = 0; d && i < n; i++) {
		free(d[i].job);
		free(d[i].url);
		labels_free(&d[i].discovered);
		labels_free(&d[i].labels);
	}
	free(d);
}

int scrape_targets_build(const struct scrape_conf *sc, const struct scrape_job_conf *j,
                         struct scrape_target_def **out, size_t *n, struct ward_err *err) {
	*out = NULL;
	*n = 0;
	struct relabel *rl = relabel_new(j->relabel_configs, j->nrelabel_configs, err);
	if (!rl)
		return -1;
	int64_t iv = j->scrape_interval_ms ? j->scrape_interval_ms : sc->scrape_interval_ms;
	int64_t to = j->scrape_timeout_ms ? j->scrape_timeout_ms : sc->scrape_timeout_ms;
	if (to > iv)
		to = iv;
	char ivs[32], tos[32];
	ward_fmt_duration(iv, ivs);
	ward_fmt_duration(to, tos);
	size_t cap = 0;
	struct scrape_target_def *d = NULL;
	for (size_t s = 0; s < j->nstatic_configs; s++) {
		const struct scrape_static_conf *st = &j->static_configs[s];
		for (size_t t = 0; t < st->ntargets; t++) {
			struct labels ls;
			labels_init(&ls);
			for (size_t k = 0; k < st->nlabels; k++)
				labels_set(&ls, st->labels[k].key, st->labels[k].value);
			labels_set(&ls, "__address__", st->targets[t]);
			labels_set(&ls, "job", j->job_name);
			labels_set(&ls, "__scrape_interval__", ivs);
			labels_set(&ls, "__scrape_timeout__", tos);
			labels_set(&ls, "__metrics_path__",
			           j->metrics_path ? j->metrics_path : "/metrics");
			labels_set(&ls, "__scheme__", j->scheme ? j->scheme : "http");
			for (size_t k = 0; k < j->nparams; k++) {
				struct buf pn = BUF_INIT;
				buf_printf(&pn, "__param_%s", j->params[k].key);
				labels_set(&ls, buf_cstr(&pn), j->params[k].value);
				buf_free(&pn);
			}
			struct labels res;
			labels_init(&res);
			labels_copy(&res, &ls);
			if (!relabel_apply(rl, &res) || !labels_get(&res, "__address__")) {
				labels_free(&ls);
				labels_free(&res);
				continue;
			}
			if (!labels_get(&res, "instance"))
				labels_set(&res, "instance", labels_get(&res, "__address__"));
			struct buf url = BUF_INIT;
			const char *addr = labels_get(&res, "__address__");
			const char *scheme = labels_get(&res, "__scheme__");
			const char *path = labels_get(&res, "__metrics_path__");
			buf_printf(&url, "%s://%s%s", scheme ? scheme : "http", addr,
			           path ? path : "/metrics");
			char sepc = strchr(buf_cstr(&url), '?') ? '&' : '?';
			for (size_t k = 0; k < res.n; k++) {
				if (!ward_has_prefix(res.v[k].name, "__param_"))
					continue;
				buf_printf(&url, "%c%s=%s", sepc, res.v[k].name + 8,
				           res.v[k].value);
				sepc = '&';
			}
			for (size_t k = 0; k < res.n;) {
				if (ward_has_prefix(res.v[k].name, "__")) {
					char *nm = ward_strdup(res.v[k].name);
					labels_del(&res, nm);
					free(nm);
				} else {
					k++;
				}
			}
			if (*n == cap) {
				cap = cap ? 2 * cap : 8;
				d = ward_xrealloc(d, cap * sizeof(*d));
			}
			d[*n] = (struct scrape_target_def){.job = ward_strdup(j->job_name),
			                                   .discovered = ls,
			                                   .labels = res,
			                                   .url = buf_detach(&url)};
			(*n)++;
		}
	}
	relabel_free(rl);
	*out = d;
	return 0;
}

/* ---- series sets (for staleness) ----
 * The series of the last scrape, sorted by (hash, labels). A scrape looks each sample up
 * in it: a series seen again moves its label set over to the new set instead of copying
 * it, so a steady target costs no label allocations here; the entries not seen get stale
 * markers. */

struct ss_entry {
	uint64_t h;
	struct labels ls;
	ssize_t from; /* while building: index of the same series in prev, or -1 */
	bool seen;    /* in prev: the current scrape has this series */
};
struct scrape_series_set {
	struct ss_entry *e;
	size_t n, cap;
};

struct scrape_series_set *scrape_series_set_new(void) {
	return ward_xcalloc(1, sizeof(struct scrape_series_set));
}

static void ss_clear(struct scrape_series_set *s) {
	for (size_t i = 0; i < s->n; i++)
		labels_free(&s->e[i].ls);
	s->n = 0;
}

void scrape_series_set_free(struct scrape_series_set *s) {
	if (!s)
		return;
	ss_clear(s);
	free(s->e);
	free(s);
}

static struct ss_entry *ss_push(struct scrape_series_set *s, uint64_t h) {
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->e = ward_xrealloc(s->e, s->cap * sizeof(*s->e));
	}
	struct ss_entry *e = &s->e[s->n++];
	e->h = h;
	labels_init(&e->ls);
	e->from = -1;
	e->seen = false;
	return e;
}

static int ss_cmp_key(uint64_t h, const struct labels *ls, const struct ss_entry *e) {
	if (h != e->h)
		return h < e->h ? -1 : 1;
	return labels_cmp(ls, &e->ls);
}

static int ss_cmp(const void *a, const void *b) {
	const struct ss_entry *x = a, *y = b;
	return ss_cmp_key(x->h, &x->ls, y);
}

static ssize_t ss_find(const struct scrape_series_set *s, uint64_t h, const struct labels *ls) {
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ss_cmp_key(h, ls, &s->e[mid]);
		if (c == 0)
			return (ssize_t)mid;
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static const char *const report_names[] = {
        "up", "scrape_duration_seconds", "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling", "scrape_series_added"};

static void report(struct tsdb_appender *a, const struct labels *tl, const char *name, int64_t t,
                   double v);

int scrape_series_set_stale(struct scrape_series_set *prev, const struct labels *target_labels,
                            struct tsdb *db, int64_t t_ms, struct ward_err *err) {
	struct tsdb_appender *a = tsdb_appender_new(db);
	for (size_t i = 0; prev && i < prev->n; i++)
		(void)tsdb_append(a, &prev->e[i].ls, t_ms, tsdb_stale_nan(), NULL);
	for (size_t i = 0; target_labels && i < sizeof(report_names) / sizeof(report_names[0]); i++)
		report(a, target_labels, report_names[i], t_ms, tsdb_stale_nan());
	if (prev)
		ss_clear(prev);
	return tsdb_commit(a, NULL, err);
}

/* ---- one scrape ---- */

struct sink_ctx {
	const struct scrape_process_opts *o;
	struct tsdb *db;
	struct tsdb_appender *app;
	struct scrape_series_set *cur, *prev;
	struct labels scratch; /* owned copy, only when metric relabeling runs */
	struct label *view;    /* borrowed strings: the merged set without copies */
	size_t viewcap;
	int64_t now;
	size_t post, added;
	struct ward_err *err;
};

/* # HELP / # TYPE / # UNIT lines: the target's metadata, for /api/v1/metadata. */
static int on_meta(void *arg, enum collect_meta_kind kind, const char *family, const char *text) {
	struct sink_ctx *s = arg;
	enum tsdb_meta_field f = kind == COLLECT_META_TYPE   ? TSDB_META_TYPE
	                         : kind == COLLECT_META_UNIT ? TSDB_META_UNIT
	                                                     : TSDB_META_HELP;
	tsdb_metadata_set(s->db, family, f, text);
	return 0;
}

static bool has_name(const struct labels *ls, const char *name) {
	return labels_get(ls, name) != NULL;
}

/* Target labels merged into the sample's (Prometheus' mutateSampleLabels): with
 * honor_labels the sample's own win; otherwise a clashing sample label is kept as
 * exported_<name> (prefixed again while that clashes too). Strings are borrowed, except
 * exported_ names, which are returned in *owned (caller frees). Sorted by name. */
static struct labels merge_view(struct sink_ctx *s, const struct labels *ls, char ***owned,
                                size_t *nowned) {
	const struct labels *tl = s->o->target_labels;
	size_t need = ls->n + tl->n;
	if (need > s->viewcap) {
		s->viewcap = need * 2;
		s->view = ward_xrealloc(s->view, s->viewcap * sizeof(*s->view));
	}
	size_t n = 0;
	bool unsorted = false;
	for (size_t i = 0; i < ls->n; i++) {
		struct label l = ls->v[i];
		if (!s->o->honor_labels && has_name(tl, l.name)) {
			struct buf en = BUF_INIT;
			buf_printf(&en, "exported_%s", l.name);
			while (has_name(ls, buf_cstr(&en))) {
				struct buf e2 = BUF_INIT;
				buf_printf(&e2, "exported_%s", buf_cstr(&en));
				buf_free(&en);
				en = e2;
			}
			l.name = buf_detach(&en);
			*owned = ward_xrealloc(*owned, (*nowned + 1) * sizeof(**owned));
			(*owned)[(*nowned)++] = l.name;
			unsorted = true;
		}
		s->view[n++] = l;
	}
	for (size_t i = 0; i < tl->n; i++) {
		if (s->o->honor_labels && has_name(ls, tl->v[i].name))
			continue;
		s->view[n++] = tl->v[i];
		unsorted = true;
	}
	if (unsorted) /* insertion sort: a handful of labels */
		for (size_t i = 1; i < n; i++) {
			struct label k = s->view[i];
			size_t j = i;
			while (j > 0 && strcmp(s->view[j - 1].name, k.name) > 0) {
				s->view[j] = s->view[j - 1];
				j--;
			}
			s->view[j] = k;
		}
	return (struct labels){.v = s->view, .n = n};
}

static int on_sample(void *arg, const struct labels *ls, int64_t t_ms, bool has_t, double v) {
	struct sink_ctx *s = arg;
	char **owned = NULL;
	size_t nowned = 0;
	int rc = 0;
	struct labels view = merge_view(s, ls, &owned, &nowned);
	const struct labels *final = &view;
	if (s->o->metric_relabel) {
		labels_copy(&s->scratch, &view);
		if (!relabel_apply(s->o->metric_relabel, &s->scratch) ||
		    !labels_get(&s->scratch, "__name__"))
			goto out;
		final = &s->scratch;
	}
	s->post++;
	if (s->o->sample_limit && s->post > s->o->sample_limit) {
		ward_err_set(s->err,
		             "sample_limit exceeded: more than %zu samples after metric "
		             "relabeling; raise sample_limit or drop series",
		             s->o->sample_limit);
		rc = -1;
		goto out;
	}
	bool use_t = has_t && s->o->honor_timestamps;
	if (tsdb_append(s->app, final, use_t ? t_ms : s->now, v, NULL) != 0)
		goto out; /* an invalid label set after relabeling is dropped, as Prometheus does */
	if (use_t)
		goto out; /* series with their own timestamps get no staleness (as Prometheus) */
	uint64_t h = labels_hash(final);
	ssize_t at = ss_find(s->prev, h, final);
	if (at >= 0) {
		if (s->prev->e[at].seen)
			goto out; /* the same series twice (relabeling merged two) */
		s->prev->e[at].seen = true;
		ss_push(s->cur, h)->from = at;
	} else {
		labels_copy(&ss_push(s->cur, h)->ls, final);
		s->added++;
	}
out:
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	return rc;
}

static void report(struct tsdb_appender *a, const struct labels *tl, const char *name, int64_t t,
                   double v) {
	struct labels ls;
	labels_init(&ls);
	labels_copy(&ls, tl);
	labels_set(&ls, "__name__", name);
	(void)tsdb_append(a, &ls, t, v, NULL);
	labels_free(&ls);
}

void scrape_process(struct tsdb *db, const struct scrape_process_opts *o, const char *body,
                    size_t n, int64_t t_ms, double duration_s, struct scrape_series_set *prev,
                    struct scrape_result *res) {
	struct ward_err err;
	ward_err_clear(&err);
	struct scrape_series_set *cur = scrape_series_set_new();
	struct tsdb_appender *app = tsdb_appender_new(db);
	struct sink_ctx s = {
	        .o = o, .db = db, .app = app, .cur = cur, .prev = prev, .now = t_ms, .err = &err};
	labels_init(&s.scratch);
	for (size_t i = 0; i < prev->n; i++)
		prev->e[i].seen = false;
	if (body && res->up) {
		struct collect_parse_limits lim;
		collect_parse_limits_default(&lim);
		if (o->line_limit)
			lim.max_line_bytes = o->line_limit;
		struct collect_sample_sink sink = {.sample = on_sample, .meta = on_meta, .arg = &s};
		struct collect_parse_stats st;
		enum collect_format fmt =
		        o->content_type ? collect_format_from_content_type(o->content_type,
		                                                           strlen(o->content_type))
		                        : COLLECT_FORMAT_AUTO;
		int rc = collect_parse_exposition(body, n, fmt, &lim, &sink, &st, &err);
		res->scraped = st.samples;
		res->post_relabel = s.post;
		if (rc != COLLECT_OK) {
			res->up = false;
			snprintf(res->error, sizeof(res->error), "%.500s",
			         err.msg[0] ? err.msg : collect_strerror(rc));
		}
	}
	labels_free(&s.scratch);
	free(s.view);
	if (!res->up) {
		/* nothing of a failed scrape is kept; every series of the last one goes stale */
		tsdb_rollback(app);
		app = tsdb_appender_new(db);
		ss_clear(cur);
		for (size_t i = 0; i < prev->n; i++)
			prev->e[i].seen = false;
		res->post_relabel = 0;
		s.added = 0;
	}
	/* series seen again take their label sets over from prev */
	for (size_t i = 0; i < cur->n; i++) {
		if (cur->e[i].from < 0)
			continue;
		cur->e[i].ls = prev->e[cur->e[i].from].ls;
		labels_init(&prev->e[cur->e[i].from].ls);
	}
	if (cur->n > 1)
		qsort(cur->e, cur->n, sizeof(*cur->e), ss_cmp);
	/* dedupe new series that relabeling made equal */
	size_t w = 0;
	for (size_t i = 0; i < cur->n; i++) {
		if (w > 0 && ss_cmp(&cur->e[w - 1], &cur->e[i]) == 0) {
			labels_free(&cur->e[i].ls);
			continue;
		}
		cur->e[w++] = cur->e[i];
	}
	cur->n = w;
	for (size_t i = 0; i < prev->n; i++)
		if (!prev->e[i].seen)
			(void)tsdb_append(app, &prev->e[i].ls, t_ms, tsdb_stale_nan(), NULL);
	size_t added = s.added;
	res->added = added;
	report(app, o->target_labels, "up", t_ms, res->up ? 1 : 0);
	report(app, o->target_labels, "scrape_duration_seconds", t_ms, duration_s);
	report(app, o->target_labels, "scrape_samples_scraped", t_ms, (double)res->scraped);
	report(app, o->target_labels, "scrape_samples_post_metric_relabeling", t_ms,
	       (double)res->post_relabel);
	report(app, o->target_labels, "scrape_series_added", t_ms, (double)added);
	ward_err_clear(&err);
	if (tsdb_commit(app, NULL, &err) != 0 && res->up) {
		res->up = false;
		snprintf(res->error, sizeof(res->error), "storing samples: %.480s", err.msg);
	}
	/* prev := cur */
	ss_clear(prev);
	free(prev->e);
	*prev = *cur;
	free(cur);
}
