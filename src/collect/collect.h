/* collect.h: the one public header of src/collect: reading metrics in the Prometheus
 * exposition formats, for the scraper, for watching ward's own /metrics and for
 * `ward tsdb import`.
 *
 * collect_parse_exposition() reads a whole body given by pointer and length (no terminator
 * needed, none trusted) in the text format 0.0.4 or OpenMetrics 1.0 text, and hands every
 * sample to a sink as it goes: nothing of the body is copied; each sample's label set is
 * built in reused scratch memory, so memory stays bounded by the longest line plus a
 * 24-byte hash entry (tables at most half full) per distinct series and per family, which
 * catch duplicates.
 * The first problem stops the parse; err then reads "line 12: <what was wrong and what was
 * expected>". Thread-safe: the parser keeps no global state.
 */
#ifndef WARD_COLLECT_H
#define WARD_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

enum collect_format {
	COLLECT_FORMAT_AUTO = 0,    /* OpenMetrics when the last non-empty line is "# EOF" */
	COLLECT_FORMAT_TEXT_004,    /* text/plain; version=0.0.4 */
	COLLECT_FORMAT_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
};
/* "auto", "text", "openmetrics". */
const char *collect_format_name(enum collect_format f);
/* The format a Content-Type header names (n bytes, no terminator needed): OPENMETRICS for
 * application/openmetrics-text, TEXT_004 for text/plain, AUTO for anything else. */
enum collect_format collect_format_from_content_type(const char *ct, size_t n);

/* Return codes of collect_parse_exposition. */
enum collect_rc {
	COLLECT_OK = 0,
	COLLECT_ESYNTAX = -1,  /* the body is not valid in the format (incl. invalid UTF-8) */
	COLLECT_ELIMIT = -2,   /* a limit of struct collect_parse_limits was exceeded */
	COLLECT_EDUP = -3,     /* the same series (and timestamp) twice, or metadata twice */
	COLLECT_ESTOPPED = -4, /* the sink returned non-zero */
};
const char *collect_strerror(int rc);

/* Bounds on what one exposition may hold. A field of 0 means "no limit". */
struct collect_parse_limits {
	size_t max_samples;     /* samples handed to the sink */
	size_t max_line_bytes;  /* bytes of one line, without its '\n' */
	size_t max_label_count; /* labels of one sample, __name__ included */
	size_t max_label_bytes; /* bytes of one label name or (unescaped) value */
};
/* The defaults used when lim is NULL: no sample limit, 1 MiB lines, 256 labels, 64 KiB
 * per name or value. */
void collect_parse_limits_default(struct collect_parse_limits *lim);

/* Metadata lines, reported as they are read (text unescaped, NUL-terminated). */
enum collect_meta_kind { COLLECT_META_HELP = 0, COLLECT_META_TYPE, COLLECT_META_UNIT };

/* Where samples go. The label set (sorted byte-wise by name, names unique, no empty
 * values, __name__ included) and its strings are borrowed for the duration of the call only: copy
 * what you keep (labels_copy). has_t says whether the line carried a timestamp; t_ms is 0 when it
 * did not. Return 0 to go on; anything else stops the parse with COLLECT_ESTOPPED (the sink may
 * write its reason into the same struct ward_err through its arg; the parser only fills err when it
 * is still empty). meta may be NULL.
 *
 * known (optional; last so that positional initializers stay valid) lets a sink that has seen
 * a body before skip the work of building label sets (the scraper's per-target cache). It is
 * called for every sample line whose series text (the metric name and its {...}, exactly as
 * in the body, n bytes, borrowed until the parse returns) is well-formed enough to delimit,
 * before its labels are parsed. Returning true promises that this exact text was parsed
 * before, in the same format (stats->format) and under the same limits, into a label set
 * whose labels_hash() is *hash: the parser then trusts it, does not build the label set, and
 * the line's sample() call (if the rest of the line is valid) gets ls NULL. Returning false
 * means sample() gets the label set. Every other check (values, timestamps, families,
 * OpenMetrics' rules, duplicates by *hash, limits) runs as without known. */
struct collect_sample_sink {
	int (*sample)(void *arg, const struct labels *ls, int64_t t_ms, bool has_t, double v);
	int (*meta)(void *arg, enum collect_meta_kind kind, const char *family, const char *text);
	void *arg;
	bool (*known)(void *arg, const char *series, size_t n, uint64_t *hash);
};

/* What a parse saw. Updated as the parse goes (a sink may read it for progress through
 * its arg); final when collect_parse_exposition returns, also after an error. */
struct collect_parse_stats {
	enum collect_format format; /* the format parsed (AUTO resolved) */
	size_t lines;               /* lines read so far */
	size_t bytes;               /* bytes consumed so far (through the last line read) */
	size_t samples;             /* samples handed to the sink */
	size_t families;            /* metric families seen */
	size_t with_timestamp;      /* samples that carried a timestamp */
	size_t exemplars;           /* OpenMetrics exemplars skipped */
	int64_t min_t_ms, max_t_ms; /* range of the timestamps seen (valid if with_timestamp) */
	size_t err_line;            /* line of the error; 0 when none */
};

/* Parses buf[0..n) in format fmt and calls sink->sample for every sample in order.
 * lim NULL: the defaults. stats may be NULL. Returns COLLECT_OK or a negative enum
 * collect_rc with err set to "line N: ...".
 *
 * Rules beyond the grammar: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* (and are not "__name__", which the metric name sets); a label name
 * may not repeat within a sample; label values are valid UTF-8 without NUL; an empty label
 * value is dropped (Prometheus treats it as absent); a series (label set) may appear again
 * only with another timestamp; a family has at most one HELP, TYPE and UNIT.
 * OpenMetrics also: "# EOF" ends the body, no blank lines, single spaces, metadata before
 * samples, a family's lines kept together, counters sampled as <name>_total/_created,
 * histogram buckets with a numeric "le", summary quantiles with a numeric "quantile";
 * timestamps are seconds (fractions kept to the millisecond, rounded); exemplars are
 * skipped. In 0.0.4, timestamps are integer milliseconds. */
int collect_parse_exposition(const char *buf, size_t n, enum collect_format fmt,
                             const struct collect_parse_limits *lim,
                             const struct collect_sample_sink *sink,
                             struct collect_parse_stats *stats, struct ward_err *err);

/* The collect module (host metrics, processes, scraping; struct ward_module of core.h),
 * listed in src/core/modules.c after promapi. */
struct ward_module;
extern const struct ward_module collect_module;

#endif
