/* batch.c: struct cm_batch, the samples one collection cycle (host or processes) produced:
 * grouped by family in the order families were started, rendered as the text format for
 * GET /metrics/node and appended to the tsdb with the job/instance labels. Owned by one
 * thread at a time (the worker that fills it, then the module that publishes it).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect_internal.h"
#include "tsdb/tsdb.h"

void cm_init(struct cm_batch *b) {
	memset(b, 0, sizeof(*b));
}

void cm_free(struct cm_batch *b) {
	for (size_t i = 0; i < b->nfam; i++) {
		free(b->fam[i].name);
		free(b->fam[i].help);
	}
	for (size_t i = 0; i < b->n; i++)
		labels_free(&b->s[i].ls);
	free(b->fam);
	free(b->s);
	memset(b, 0, sizeof(*b));
}

void cm_family(struct cm_batch *b, const char *name, const char *type, const char *help) {
	if (b->nfam == b->capfam) {
		b->capfam = b->capfam ? 2 * b->capfam : 64;
		b->fam = ward_xrealloc(b->fam, b->capfam * sizeof(*b->fam));
	}
	b->fam[b->nfam++] = (struct cm_family){
	        .name = ward_strdup(name), .type = type, .help = ward_strdup(help)};
}

void cm_add(struct cm_batch *b, double v, ...) {
	if (b->nfam == 0)
		return;
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		b->s = ward_xrealloc(b->s, b->cap * sizeof(*b->s));
	}
	struct cm_sample *s = &b->s[b->n++];
	s->v = v;
	s->family = b->nfam - 1;
	labels_init(&s->ls);
	labels_set(&s->ls, "__name__", b->fam[b->nfam - 1].name);
	va_list ap;
	va_start(ap, v);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *val = va_arg(ap, const char *);
		labels_set(&s->ls, k, val);
	}
	va_end(ap);
}

static void put_help(struct buf *out, const char *s) {
	for (; *s; s++) {
		if (*s == '\\')
			buf_puts(out, "\\\\");
		else if (*s == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *s);
	}
}

void cm_write_text(const struct cm_batch *b, struct buf *out) {
	size_t i = 0;
	for (size_t f = 0; f < b->nfam; f++) {
		if (i >= b->n || b->s[i].family != f)
			continue;
		buf_printf(out, "# HELP %s ", b->fam[f].name);
		put_help(out, b->fam[f].help ? b->fam[f].help : "");
		buf_printf(out, "\n# TYPE %s %s\n", b->fam[f].name, b->fam[f].type);
		for (; i < b->n && b->s[i].family == f; i++) {
			labels_write(out, &b->s[i].ls);
			buf_putc(out, ' ');
			buf_put_double(out, b->s[i].v);
			buf_putc(out, '\n');
		}
	}
}

int cm_commit(const struct cm_batch *b, struct tsdb *db, int64_t t_ms, const char *job,
              const char *instance, struct ward_err *err) {
	struct tsdb_appender *a = tsdb_appender_new(db);
	struct labels ls;
	labels_init(&ls);
	for (size_t i = 0; i < b->n; i++) {
		labels_copy(&ls, &b->s[i].ls);
		if (job && !labels_get(&ls, "job"))
			labels_set(&ls, "job", job);
		if (instance && !labels_get(&ls, "instance"))
			labels_set(&ls, "instance", instance);
		if (tsdb_append(a, &ls, t_ms, b->s[i].v, err) != 0) {
			labels_free(&ls);
			tsdb_rollback(a);
			return -1;
		}
	}
	labels_free(&ls);
	return tsdb_commit(a, NULL, err);
}
