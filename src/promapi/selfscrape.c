/* selfscrape.c: ward watches itself. On a timer, ward's own /metrics text is rendered,
 * parsed back with the same exposition parser the scraper uses, labelled
 * {job="ward", instance="<listen address>"} as Prometheus would label a scrape of it, and
 * appended to the tsdb as one batch, with `up` set to 1.
 */
#include <string.h>

#include "collect/collect.h"
#include "promapi/promapi_internal.h"

struct scrape_ctx {
	struct tsdb_appender *app;
	const char *instance;
	int64_t now;
	struct labels scratch;
	struct ward_err *err;
};

static int on_sample(void *arg, const struct labels *ls, int64_t t_ms, bool has_t, double v)
{
	struct scrape_ctx *s = arg;
	labels_copy(&s->scratch, ls);
	labels_set(&s->scratch, "job", "ward");
	labels_set(&s->scratch, "instance", s->instance);
	return tsdb_append(s->app, &s->scratch, has_t ? t_ms : s->now, v, s->err);
}

void promapi_self_scrape(struct promapi *p)
{
	if (!p->db)
		return;
	struct buf text = BUF_INIT;
	metric_write_all(&text);
	struct conf *c = ward_conf_get(p->ctx);
	const struct http_config *hc = conf_section(c, "server");
	char instance[256];
	snprintf(instance, sizeof(instance), "%s", hc && hc->listen ? hc->listen : "ward");
	conf_unref(c);

	struct ward_err err;
	ward_err_clear(&err);
	struct scrape_ctx s = {.app = tsdb_appender_new(p->db),
			       .instance = instance,
			       .now = ward_now_ms(),
			       .err = &err};
	labels_init(&s.scratch);
	struct collect_sample_sink sink = {.sample = on_sample, .arg = &s};
	int rc = collect_parse_exposition(text.data ? text.data : "", text.len,
					  COLLECT_FORMAT_TEXT_004, NULL, &sink, NULL, &err);
	if (rc == COLLECT_OK) {
		struct labels up;
		labels_init(&up);
		labels_set(&up, "__name__", "up");
		labels_set(&up, "job", "ward");
		labels_set(&up, "instance", instance);
		rc = tsdb_append(s.app, &up, s.now, 1, &err);
		labels_free(&up);
	}
	if (rc == 0) {
		if (tsdb_commit(s.app, NULL, &err) != 0)
			ward_log(LOG_WARN, "writing ward's own metrics failed", "error", err.msg, NULL);
	} else {
		tsdb_rollback(s.app);
		ward_log(LOG_WARN, "reading ward's own metrics failed", "error", err.msg, NULL);
	}
	labels_free(&s.scratch);
	buf_free(&text);
}
