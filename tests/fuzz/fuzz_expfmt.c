/* fuzz_expfmt.c: libFuzzer target for the exposition-format parser (src/collect/expfmt.c).
 * The first input byte picks the format (auto, 0.0.4, OpenMetrics) and whether small limits
 * apply; the rest is the body, in an exact-size heap copy so ASan catches reads past it.
 * Properties checked: every label set handed to the sink is sorted, unique, non-empty and
 * valid; what was accepted, written back as 0.0.4 text, parses to exactly the same
 * samples (so escaping and number parsing round-trip); and a sink with known() (as the
 * scraper's cache), answering "known" for every series text it was given labels for in an
 * earlier parse of the same body, sees exactly the same samples, rc and message. */
#include <stdint.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int render(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	struct buf *out = arg;

	if (ls->n == 0 || strcmp(ls->v[0].name, "__name__") > 0)
		abort(); /* __name__ sorts first among valid names only if present */
	for (size_t i = 0; i < ls->n; i++) {
		if (!ls->v[i].value[0])
			abort();
		if (i + 1 < ls->n && strcmp(ls->v[i].name, ls->v[i + 1].name) >= 0)
			abort();
	}
	if (!labels_get(ls, "__name__"))
		abort();
	labels_write(out, ls);
	buf_putc(out, ' ');
	buf_put_double(out, v);
	if (has_t)
		buf_printf(out, " %lld", (long long)t);
	buf_putc(out, '\n');
	return 0;
}

/* The known() side: series texts seen with their label sets (linear search: inputs are small;
 * past MEMO_MAX texts, nothing more is remembered). */
#define MEMO_MAX 4096
struct memo {
	struct buf out;
	bool learn;
	char **text;
	size_t *ntext;
	uint64_t *h;
	struct labels *ls;
	size_t n;
	const char *cur;
	size_t ncur;
	ssize_t hit;
};

static ssize_t memo_find(const struct memo *m, const char *t, size_t n) {
	for (size_t i = 0; i < m->n; i++)
		if (m->ntext[i] == n && memcmp(m->text[i], t, n) == 0)
			return (ssize_t)i;
	return -1;
}

static bool memo_known(void *arg, const char *t, size_t n, uint64_t *h) {
	struct memo *m = arg;
	m->cur = t;
	m->ncur = n;
	m->hit = m->learn ? -1 : memo_find(m, t, n);
	if (m->hit < 0)
		return false;
	*h = m->h[m->hit];
	return true;
}

static int memo_sample(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	struct memo *m = arg;
	if (!ls) {
		if (m->hit < 0)
			abort(); /* NULL only after known() said yes */
		return render(&m->out, &m->ls[m->hit], t, has_t, v);
	}
	if (m->learn && m->cur && m->n < MEMO_MAX && memo_find(m, m->cur, m->ncur) < 0) {
		if (m->n == 0) {
			m->text = calloc(MEMO_MAX, sizeof(*m->text));
			m->ntext = calloc(MEMO_MAX, sizeof(*m->ntext));
			m->h = calloc(MEMO_MAX, sizeof(*m->h));
			m->ls = calloc(MEMO_MAX, sizeof(*m->ls));
		}
		m->text[m->n] = malloc(m->ncur ? m->ncur : 1);
		memcpy(m->text[m->n], m->cur, m->ncur);
		m->ntext[m->n] = m->ncur;
		m->h[m->n] = labels_hash(ls);
		labels_copy(&m->ls[m->n], ls);
		m->n++;
	}
	m->cur = NULL;
	return render(&m->out, ls, t, has_t, v);
}

static void memo_free(struct memo *m) {
	for (size_t i = 0; i < m->n; i++) {
		free(m->text[i]);
		labels_free(&m->ls[i]);
	}
	free(m->text);
	free(m->ntext);
	free(m->h);
	free(m->ls);
	buf_free(&m->out);
}

/* Parses again with known(): learning, then answering from what was learnt. Both must give
 * what the plain parse gave. */
static void check_known(const char *copy, size_t n, enum collect_format fmt,
                        const struct collect_parse_limits *lim, int rc0, const char *msg0,
                        const struct buf *r0) {
	struct memo m = {.learn = true};
	struct collect_sample_sink s = {memo_sample, NULL, &m, memo_known};
	for (int pass = 0; pass < 2; pass++) {
		struct collect_parse_stats st;
		struct ward_err err;
		m.learn = pass == 0;
		buf_reset(&m.out);
		int rc = collect_parse_exposition(copy, n, fmt, lim, &s, &st, &err);
		if (rc != rc0 || strcmp(err.msg, msg0) != 0 || m.out.len != r0->len ||
		    (r0->len && memcmp(m.out.data, r0->data, r0->len) != 0))
			abort();
	}
	memo_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const enum collect_format fmts[] = {COLLECT_FORMAT_AUTO, COLLECT_FORMAT_TEXT_004,
	                                           COLLECT_FORMAT_OPENMETRICS};
	struct collect_parse_limits lim, *limp = NULL;
	struct collect_parse_stats st, st2;
	struct ward_err err;
	struct buf r1 = BUF_INIT, r2 = BUF_INIT;
	struct collect_sample_sink s1 = {render, NULL, &r1}, s2 = {render, NULL, &r2};
	char *copy;
	int rc;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 4) {
		lim.max_samples = 50;
		lim.max_line_bytes = 200;
		lim.max_label_count = 6;
		lim.max_label_bytes = 20;
		limp = &lim;
	}
	rc = collect_parse_exposition(copy, size - 1, fmts[(data[0] & 3) % 3], limp, &s1, &st,
	                              &err);
	if ((rc == 0) != (err.msg[0] == '\0'))
		abort();
	if (rc != 0 && strncmp(err.msg, "line ", 5) != 0)
		abort();
	check_known(copy, size - 1, fmts[(data[0] & 3) % 3], limp, rc, err.msg, &r1);
	if (rc == 0) {
		struct collect_parse_limits none = {0};
		rc = collect_parse_exposition(r1.data, r1.len, COLLECT_FORMAT_TEXT_004, &none, &s2,
		                              &st2, &err);
		if (rc != 0 || r1.len != r2.len || (r1.len && memcmp(r1.data, r2.data, r1.len)) ||
		    st.samples != st2.samples)
			abort();
	}
	buf_free(&r1);
	buf_free(&r2);
	free(copy);
	return 0;
}
