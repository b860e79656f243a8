/* batch.c: a run of lines of one stream gathered before one logs_store_append, shared by
 * the file tailer and the journal reader. Lines live in one arena; a line of another
 * stream means the caller flushes first (logs_batch_other_stream), so a batch never mixes
 * streams. Invariant: n == 0 or labels hold the stream of every line in the batch.
 */
#include <stdlib.h>
#include <string.h>

#include "logs/module_internal.h"

void logs_batch_init(struct logs_batch *b)
{
	memset(b, 0, sizeof(*b));
	labels_init(&b->labels);
}

void logs_batch_free(struct logs_batch *b)
{
	labels_free(&b->labels);
	buf_free(&b->arena);
	free(b->off);
	free(b->len);
	free(b->ts);
	memset(b, 0, sizeof(*b));
}

bool logs_batch_other_stream(const struct logs_batch *b, const struct labels *ls)
{
	return b->n && !labels_equal(ls, &b->labels);
}

void logs_batch_add(struct logs_batch *b, const struct labels *ls, const char *line, size_t len,
		    int64_t ts_ns)
{
	if (!b->n)
		labels_copy(&b->labels, ls);
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->off = ward_xrealloc(b->off, b->cap * sizeof(size_t));
		b->len = ward_xrealloc(b->len, b->cap * sizeof(size_t));
		b->ts = ward_xrealloc(b->ts, b->cap * sizeof(int64_t));
	}
	b->off[b->n] = b->arena.len;
	b->len[b->n] = len;
	b->ts[b->n++] = ts_ns;
	buf_append(&b->arena, line, len);
}

size_t logs_batch_flush(struct logs_mod *m, struct logs_batch *b, const char *source,
			const char *what)
{
	size_t n = b->n;
	if (!n)
		return 0;
	struct logs_entry *e = ward_xmalloc(n * sizeof(*e));
	for (size_t i = 0; i < n; i++)
		e[i] = (struct logs_entry){
			.ts_ns = b->ts[i], .line = b->arena.data + b->off[i], .len = b->len[i]};
	struct ward_err err;
	ward_err_clear(&err);
	if (logs_store_append(m->store, &b->labels, e, n, false, &err) != 0) {
		logs_count_dropped(m, "store_error", (double)n);
		ward_log(LOG_WARN, what, "error", err.msg, NULL);
	} else {
		logs_count(m, source, (double)n);
	}
	free(e);
	b->n = 0;
	buf_reset(&b->arena);
	return n;
}
