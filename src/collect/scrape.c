/* scrape.c: what a scrape means, without the network: building targets from static_configs
 * and relabel_configs (Prometheus' populateLabels), and turning one response body (or a
 * failure) into tsdb samples: target labels merged (honor_labels, or conflicts renamed
 * exported_*), metric_relabel_configs, sample_limit, the report series (up,
 * scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling,
 * scrape_series_added) and staleness markers for series that disappeared or for every
 * series when the scrape failed. A line whose series text the target's cache
 * (scrape_cache.c) knows from the last scrape goes straight to its stored label set: no
 * label parsing, merging or relabeling. Called by engine.c on libuv's worker pool, one call
 * per target at a time (a target's series set is never shared).
 */
#include <stdlib.h>
#include <string.h>

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

static const char *const report_names[] = {
        "up", "scrape_duration_seconds", "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling", "scrape_series_added"};

static void report(struct tsdb_appender *a, const struct labels *tl, const char *name, int64_t t,
                   double v);

int scrape_series_set_stale(struct scrape_series_set *prev, const struct labels *target_labels,
                            struct tsdb *db, int64_t t_ms, struct ward_err *err) {
	struct tsdb_appender *a = tsdb_appender_new(db);
	if (prev)
		(void)scrape_series_set_stale_all(prev, a, t_ms);
	for (size_t i = 0; target_labels && i < sizeof(report_names) / sizeof(report_names[0]); i++)
		report(a, target_labels, report_names[i], t_ms, tsdb_stale_nan());
	return tsdb_commit(a, NULL, err);
}

/* ---- one scrape ---- */

struct sink_ctx {
	const struct scrape_process_opts *o;
	struct tsdb *db;
	struct tsdb_appender *app;
	struct scrape_series_set *set;
	const struct collect_parse_stats *st;
	bool format_known;
	/* the line known() was asked about: its series text and entry (NULL: not cached) */
	const char *text;
	size_t ntext;
	uint64_t text_h;
	struct sc_entry *entry;
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

/* The series a parsed sample is stored as: target labels merged, metric relabeling
 * applied. NULL when relabeling drops it. */
static struct sc_series *series_of(struct sink_ctx *s, const struct labels *ls) {
	char **owned = NULL;
	size_t nowned = 0;
	struct sc_series *ser = NULL;
	struct labels view = merge_view(s, ls, &owned, &nowned);
	const struct labels *final = &view;
	if (s->o->metric_relabel) {
		labels_copy(&s->scratch, &view);
		if (!relabel_apply(s->o->metric_relabel, &s->scratch) ||
		    !labels_get(&s->scratch, "__name__"))
			goto out;
		final = &s->scratch;
	}
	ser = scrape_cache_series(s->set, final);
out:
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	return ser;
}

/* The parser asks before parsing a line's labels: a line seen in the last scrape (or earlier
 * in this one) maps to its series without them. */
static bool on_known(void *arg, const char *text, size_t n, uint64_t *hash) {
	struct sink_ctx *s = arg;
	if (!s->format_known) { /* entries hold only for the format they were parsed in */
		scrape_cache_format(s->set, s->st->format);
		s->format_known = true;
	}
	s->text = text;
	s->ntext = n;
	s->entry = scrape_cache_find(s->set, text, n, &s->text_h);
	if (!s->entry)
		return false;
	*hash = scrape_cache_entry_parse_hash(s->entry);
	return true;
}

static int on_sample(void *arg, const struct labels *ls, int64_t t_ms, bool has_t, double v) {
	struct sink_ctx *s = arg;
	struct sc_series *ser;
	if (!ls) { /* known: the parser trusted the entry */
		if (!s->entry) {
			ward_err_set(s->err, "scrape cache: a known line without its entry");
			return -1;
		}
		ser = scrape_cache_entry_series(s->set, s->entry);
	} else {
		ser = series_of(s, ls);
		if (s->text) /* remember the line (also when relabeling drops it) */
			scrape_cache_add(s->set, s->text, s->ntext, s->text_h, labels_hash(ls),
			                 ser);
	}
	s->text = NULL;
	s->entry = NULL;
	if (!ser)
		return 0; /* dropped by metric relabeling */
	s->post++;
	if (s->o->sample_limit && s->post > s->o->sample_limit) {
		ward_err_set(s->err,
		             "sample_limit exceeded: more than %zu samples after metric "
		             "relabeling; raise sample_limit or drop series",
		             s->o->sample_limit);
		return -1;
	}
	bool use_t = has_t && s->o->honor_timestamps;
	int64_t t = use_t ? t_ms : s->now;
	uint32_t *ref = scrape_cache_series_ref(s->set, ser, s->db);
	if (tsdb_append_ref(s->app, *ref, t, v) != 0 && /* not known, or gone from the head */
	    tsdb_append_get_ref(s->app, scrape_cache_series_labels(ser), t, v, ref, NULL) != 0)
		return 0; /* an invalid label set after relabeling is dropped, as Prometheus does */
	if (use_t)
		return 0; /* series with their own timestamps get no staleness (as Prometheus) */
	bool added;
	if (scrape_cache_series_mark(s->set, ser, &added) && added)
		s->added++;
	return 0;
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
	struct tsdb_appender *app = tsdb_appender_new(db);
	struct collect_parse_stats st;
	memset(&st, 0, sizeof(st));
	struct sink_ctx s = {
	        .o = o, .db = db, .app = app, .set = prev, .st = &st, .now = t_ms, .err = &err};
	labels_init(&s.scratch);
	scrape_cache_begin(prev, o);
	if (body && res->up) {
		struct collect_parse_limits lim;
		collect_parse_limits_default(&lim);
		if (o->line_limit)
			lim.max_line_bytes = o->line_limit;
		struct collect_sample_sink sink = {
		        .sample = on_sample, .meta = on_meta, .known = on_known, .arg = &s};
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
		res->post_relabel = 0;
		s.added = 0;
	}
	scrape_cache_end(prev, res->up, app, t_ms);
	res->added = s.added;
	report(app, o->target_labels, "up", t_ms, res->up ? 1 : 0);
	report(app, o->target_labels, "scrape_duration_seconds", t_ms, duration_s);
	report(app, o->target_labels, "scrape_samples_scraped", t_ms, (double)res->scraped);
	report(app, o->target_labels, "scrape_samples_post_metric_relabeling", t_ms,
	       (double)res->post_relabel);
	report(app, o->target_labels, "scrape_series_added", t_ms, (double)s.added);
	ward_err_clear(&err);
	if (tsdb_commit(app, NULL, &err) != 0 && res->up) {
		res->up = false;
		snprintf(res->error, sizeof(res->error), "storing samples: %.480s", err.msg);
	}
}
