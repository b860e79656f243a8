/* cmd_tsdb.c: `ward tsdb stats` (online: GET /api/v1/status/tsdb, viewer role) and
 * `ward tsdb import FILE` (offline: appends the samples of an OpenMetrics or 0.0.4 text file
 * to <data>/tsdb through src/tsdb).
 *
 * import reads the file through mmap (no copy) and parses it twice: first only to check it,
 * so a broken file changes nothing, then to append in batches of IMPORT_BATCH samples. It
 * holds <data>/ward.lock like `ward serve`, so neither can start while the other runs, and
 * opens the store with no retention (the daemon applies its own when it next runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "collect/collect.h"
#include "core/core.h"
#include "tsdb/tsdb.h"

/* Samples per commit: large enough that the WAL fsync per batch costs little, small
 * enough that a batch's staged copy stays a few MiB. */
#define IMPORT_BATCH 10000
/* Let the engine cut due blocks every this many batches, so a long import does not keep
 * the whole file in the head. */
#define IMPORT_MAINTAIN_EVERY 100
/* Redraw the progress line at most this often. */
#define PROGRESS_MS 250
/* Import files are trusted input of the operator but a line of more than 16 MiB is a
 * broken file, not a metric. */
#define IMPORT_MAX_LINE ((size_t)16 << 20)

/* "12.3 MiB" for people (ward_fmt_size is exact, for config values). */
static void human_bytes(double b, char out[32]) {
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t i = 0;

	while (b >= 1024 && i + 1 < sizeof(u) / sizeof(u[0])) {
		b /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, 32, "%.0f B", b);
	else
		snprintf(out, 32, "%.1f %s", b, u[i]);
}

/* ---- stats ---- */

static const char stats_usage[] =
        "Usage: ward tsdb stats [--json]\n"
        "\n"
        "Shows the time-series store of the running server: series and chunks in the head,\n"
        "its time range, blocks, bytes per sample, and the metric names with the most\n"
        "series. Needs a viewer token.\n"
        "\n"
        "Options:\n"
        "  --json      print the server's data as JSON (Prometheus' /api/v1/status/tsdb shape\n"
        "              plus \"ward\")\n"
        "  -h, --help  show this help\n";

static json_int_t jint(json_t *o, const char *k) {
	json_t *v = json_object_get(o, k);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (json_int_t)json_real_value(v);
	return 0;
}

static void ms_time(json_t *o, const char *k, char out[64]) {
	json_t *v = json_object_get(o, k);
	char ts[32];

	if (!json_is_integer(v) || json_integer_value(v) == INT64_MIN ||
	    json_integer_value(v) == INT64_MAX) {
		snprintf(out, 64, "-");
		return;
	}
	ward_fmt_rfc3339((int64_t)json_integer_value(v), ts);
	cli_fmt_time(ts, out);
}

/* Prints a [{"name":..,"value":..}] list as a table, if the server sent one. */
static void print_top(json_t *data, const char *key, const char *title, const char *col) {
	json_t *list = json_object_get(data, key), *e;
	const char *headers[] = {col, "COUNT"};
	struct cli_table *t;
	size_t i;

	if (!json_is_array(list) || json_array_size(list) == 0)
		return;
	printf("\n%s:\n", title);
	t = cli_table_new(2, headers);
	json_array_foreach(list, i, e) {
		char n[32];
		snprintf(n, sizeof(n), "%" JSON_INTEGER_FORMAT, jint(e, "value"));
		const char *row[] = {cli_json_str(e, "name", "?"), n};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
}

static int tsdb_stats_cmd(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	bool json = false;
	const struct cli_opt opts[] = {
	        {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	json_t *data = NULL, *head, *w, *bps;
	char t1[64], t2[64], hb[32], wb[32];
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	rc = cli_api(cli, "GET", "/api/v1/status/tsdb", NULL, ROLE_VIEWER, &data);
	if (rc)
		return rc;
	if (json) {
		cli_print_json(data);
		goto out;
	}
	head = json_object_get(data, "headStats");
	w = json_object_get(data, "ward");
	ms_time(head, "minTime", t1);
	ms_time(head, "maxTime", t2);
	printf("head:    %" JSON_INTEGER_FORMAT " series, %" JSON_INTEGER_FORMAT " chunks\n",
	       jint(head, "numSeries"), jint(head, "numChunks"));
	printf("range:   %s .. %s\n", t1, t2);
	if (json_is_object(w)) {
		human_bytes((double)jint(w, "head_bytes"), hb);
		human_bytes((double)jint(w, "wal_bytes"), wb);
		printf("samples: %" JSON_INTEGER_FORMAT " in %" JSON_INTEGER_FORMAT
		       " blocks and the "
		       "head\n",
		       jint(w, "samples"), jint(w, "blocks"));
		bps = json_object_get(w, "bytes_per_sample");
		if (json_is_number(bps))
			printf("size:    %.2f bytes/sample; head %s, WAL %s\n",
			       json_number_value(bps), hb, wb);
		else
			printf("size:    head %s, WAL %s\n", hb, wb);
	}
	print_top(data, "seriesCountByMetricName", "Metric names with the most series", "NAME");
	print_top(data, "labelValueCountByLabelName", "Labels with the most values", "LABEL");
	print_top(data, "seriesCountByLabelValuePair", "Label pairs in the most series", "PAIR");
out:
	json_decref(data);
	return rc;
}

/* ---- import ---- */

static const char import_usage[] =
        "Usage: ward tsdb import FILE [--data DIR] [--config FILE] [--format F]\n"
        "\n"
        "Imports the samples of FILE (OpenMetrics text, or Prometheus text 0.0.4; every sample\n"
        "needs a timestamp) into the time-series store, offline: `ward serve` must not be\n"
        "running on the data directory. The file is checked first, so a file with an error\n"
        "imports nothing. Samples the store refuses (older than what a series already holds,\n"
        "or the same time with another value) are counted and reported. FILE may be '-' for\n"
        "standard input.\n"
        "\n"
        "Options:\n"
        "  -d, --data DIR     the server's data directory (default: from the configuration)\n"
        "  -c, --config FILE  the server's configuration file, to find storage.data_dir\n"
        "  --format F         auto (default: OpenMetrics when the file ends in '# EOF'),\n"
        "                     openmetrics (timestamps in seconds) or text (in milliseconds)\n"
        "  -h, --help         show this help\n";

struct import {
	struct tsdb *db;
	struct tsdb_appender *app;
	size_t staged;  /* in app */
	size_t batches; /* committed */
	uint64_t appended, rejected, invalid;
	size_t first_invalid_line;
	struct ward_err first_invalid;
	const struct collect_parse_stats *st;
	struct ward_err *err; /* the parser's: a stop reason goes here */
	int stop_rc;          /* exit code when the sink stopped the parse */
	/* progress */
	bool tty;
	const char *phase;
	size_t total;
	int64_t t0, last;
};

static void progress(struct import *im, bool final) {
	int64_t now = ward_mono_ms();
	double secs, pct;

	if (!im->tty || (!final && now - im->last < PROGRESS_MS))
		return;
	im->last = now;
	secs = (double)(now - im->t0) / 1000.0;
	pct = im->total ? 100.0 * (double)im->st->bytes / (double)im->total : 100.0;
	fprintf(stderr, "\r%s: %5.1f%%  %zu lines (%.0f lines/s)  %zu samples\033[K", im->phase,
	        pct, im->st->lines, secs > 0 ? (double)im->st->lines / secs : 0.0, im->st->samples);
	if (final)
		fputc('\n', stderr);
}

static int import_commit(struct import *im) {
	struct ward_err cerr;
	size_t rej = 0;

	if (!im->app)
		return 0;
	ward_err_clear(&cerr);
	if (tsdb_commit(im->app, &rej, &cerr) != 0) {
		im->app = NULL;
		ward_err_set(im->err, "line %zu: cannot write to the store: %s", im->st->lines,
		             cerr.msg);
		im->stop_rc = WARD_EXIT_INTERNAL;
		return -1;
	}
	im->app = NULL;
	im->rejected += rej;
	im->appended += im->staged - rej;
	im->staged = 0;
	if (++im->batches % IMPORT_MAINTAIN_EVERY == 0 &&
	    tsdb_maintain(im->db, false, &cerr) != 0) {
		ward_err_set(im->err, "line %zu: store maintenance failed: %s", im->st->lines,
		             cerr.msg);
		im->stop_rc = WARD_EXIT_INTERNAL;
		return -1;
	}
	return 0;
}

/* The sink of both passes: the first (db NULL) only insists on timestamps. */
static int import_sample(void *arg, const struct labels *ls, int64_t t, bool has_t, double v) {
	struct import *im = arg;
	struct ward_err aerr;

	if ((im->st->samples & 1023) == 0)
		progress(im, false);
	if (!has_t) {
		ward_err_set(
		        im->err,
		        "line %zu: the sample has no timestamp; import needs one on every sample "
		        "(OpenMetrics: seconds; text 0.0.4: milliseconds)",
		        im->st->lines);
		im->stop_rc = WARD_EXIT_USAGE;
		return 1;
	}
	if (!im->db)
		return 0;
	if (!im->app)
		im->app = tsdb_appender_new(im->db);
	ward_err_clear(&aerr);
	if (tsdb_append(im->app, ls, t, v, &aerr) != 0) {
		if (!im->invalid++) {
			im->first_invalid_line = im->st->lines;
			im->first_invalid = aerr;
		}
		im->rejected++;
		return 0;
	}
	if (++im->staged >= IMPORT_BATCH)
		return import_commit(im) ? 1 : 0;
	return 0;
}

/* Maps FILE (or reads stdin for "-"). 0, or an exit code after printing why. */
static int import_load(const char *cmd, const char *path, const char **data, size_t *n, void **map,
                       struct buf *in) {
	struct stat st;
	int fd;

	*map = NULL;
	if (strcmp(path, "-") == 0) {
		char chunk[65536];
		ssize_t r;
		while ((r = read(0, chunk, sizeof(chunk))) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				fprintf(stderr, "%s: cannot read standard input: %s\n", cmd,
				        strerror(errno));
				return WARD_EXIT_INTERNAL;
			}
			buf_append(in, chunk, (size_t)r);
		}
		*data = in->data ? in->data : "";
		*n = in->len;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", cmd, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return errno == ENOENT ? WARD_EXIT_NOTFOUND : WARD_EXIT_INTERNAL;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: %s is not a regular file (use '-' to read a pipe)\n", cmd,
		        path);
		close(fd);
		return WARD_EXIT_USAGE;
	}
	*n = (size_t)st.st_size;
	*data = "";
	if (*n > 0) {
		*map = mmap(NULL, *n, PROT_READ, MAP_PRIVATE, fd, 0);
		if (*map == MAP_FAILED) {
			*map = NULL;
			fprintf(stderr, "%s: cannot map %s: %s\n", cmd, path, strerror(errno));
			close(fd);
			return WARD_EXIT_INTERNAL;
		}
		madvise(*map, *n, MADV_SEQUENTIAL);
		*data = *map;
	}
	close(fd);
	return 0;
}

/* Takes <data>/ward.lock as `ward serve` does. Returns the fd, or -1 after printing why
 * (*rc set). */
static int import_lock(const char *cmd, const char *data_dir, int *rc) {
	struct buf p = BUF_INIT;
	struct ward_err err;
	int fd;

	ward_err_clear(&err);
	if (ward_mkdir_p(data_dir, 0700, &err) != 0) {
		fprintf(stderr, "%s: %s\n", cmd, err.msg);
		*rc = WARD_EXIT_INTERNAL;
		return -1;
	}
	buf_printf(&p, "%s/ward.lock", data_dir);
	fd = open(buf_cstr(&p), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", cmd, buf_cstr(&p), strerror(errno));
		*rc = WARD_EXIT_INTERNAL;
	} else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr,
		        "%s: %s is in use: `ward serve` (or another import) is running on it; stop "
		        "it first, or import into another --data directory\n",
		        cmd, data_dir);
		close(fd);
		fd = -1;
		*rc = WARD_EXIT_UNAVAILABLE;
	}
	buf_free(&p);
	return fd;
}

static int tsdb_import_cmd(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *data_opt = NULL, *config = NULL, *format = NULL, *pos[1];
	const struct cli_opt opts[] = {
	        {"data", 'd', &data_opt, NULL},
	        {"config", 'c', &config, NULL},
	        {"format", 0, &format, NULL},
	        {NULL, 0, NULL, NULL},
	};
	enum collect_format fmt = COLLECT_FORMAT_AUTO;
	struct collect_parse_limits lim;
	struct collect_parse_stats st;
	struct collect_sample_sink sink;
	struct import im;
	struct ward_err err;
	struct tsdb_opts o;
	struct tsdb_stats ts;
	struct buf dir = BUF_INIT, in = BUF_INIT;
	char *data_dir = NULL;
	const char *data = NULL;
	void *map = NULL;
	size_t n = 0;
	int npos, rc, prc, lockfd = -1;
	char a[32], b[48], sz[32];

	(void)cli;
	memset(&im, 0, sizeof(im));
	memset(&st, 0, sizeof(st));
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, pos, 1, &npos, &rc))
		return rc;
	if (npos != 1)
		return cli_usage_error(argv[0], "name the file to import (or '-' for stdin)");
	if (format) {
		if (strcmp(format, "openmetrics") == 0)
			fmt = COLLECT_FORMAT_OPENMETRICS;
		else if (strcmp(format, "text") == 0)
			fmt = COLLECT_FORMAT_TEXT_004;
		else if (strcmp(format, "auto") != 0)
			return cli_usage_error(
			        argv[0], "--format must be auto, openmetrics or text, not '%s'",
			        format);
	}
	ward_err_clear(&err);
	ward_modules_init();
	data_dir = ward_resolve_data_dir(config, data_opt, &err);
	if (!data_dir) {
		fprintf(stderr, "%s: %s\n", argv[0], err.msg);
		return WARD_EXIT_USAGE;
	}
	if ((rc = import_load(argv[0], pos[0], &data, &n, &map, &in)))
		goto out;

	collect_parse_limits_default(&lim);
	lim.max_line_bytes = IMPORT_MAX_LINE;
	im.st = &st;
	im.err = &err;
	im.tty = isatty(2);
	im.total = n;
	sink = (struct collect_sample_sink){import_sample, NULL, &im};

	/* Pass 1: check the whole file, write nothing. */
	im.phase = "checking";
	im.t0 = im.last = ward_mono_ms();
	prc = collect_parse_exposition(data, n, fmt, &lim, &sink, &st, &err);
	progress(&im, true);
	if (prc != COLLECT_OK) {
		fprintf(stderr, "%s: %s: %s\nnothing was imported\n", argv[0], pos[0], err.msg);
		rc = prc == COLLECT_ESTOPPED ? im.stop_rc : WARD_EXIT_USAGE;
		goto out;
	}
	if (st.samples == 0) {
		fprintf(stderr, "%s: %s holds no samples; nothing to import\n", argv[0], pos[0]);
		rc = WARD_EXIT_OK;
		goto out;
	}

	/* Pass 2: append. */
	lockfd = import_lock(argv[0], data_dir, &rc);
	if (lockfd < 0)
		goto out;
	buf_printf(&dir, "%s/tsdb", data_dir);
	tsdb_opts_default(&o);
	o.dir = buf_cstr(&dir);
	o.retention_ms = 0; /* the daemon applies its retention; an import deletes nothing */
	ward_err_clear(&err);
	im.db = tsdb_open(&o, &err);
	if (!im.db) {
		fprintf(stderr, "%s: cannot open the store in %s: %s\n", argv[0], buf_cstr(&dir),
		        err.msg);
		rc = strstr(err.msg, "in use") ? WARD_EXIT_UNAVAILABLE : WARD_EXIT_INTERNAL;
		goto out;
	}
	if (!im.tty)
		fprintf(stderr, "importing %zu samples from %s into %s\n", st.samples, pos[0],
		        buf_cstr(&dir));
	im.phase = "importing";
	im.t0 = im.last = ward_mono_ms();
	prc = collect_parse_exposition(data, n, fmt, &lim, &sink, &st, &err);
	if (prc == COLLECT_OK && import_commit(&im) != 0)
		prc = COLLECT_ESTOPPED;
	progress(&im, true);
	if (prc != COLLECT_OK) {
		tsdb_rollback(im.app);
		im.app = NULL;
		fprintf(stderr, "%s: %s: %s\n%" PRIu64 " samples before it were imported\n",
		        argv[0], pos[0], err.msg, im.appended);
		rc = prc == COLLECT_ESTOPPED ? im.stop_rc : WARD_EXIT_USAGE;
		goto out;
	}
	if (im.tty)
		fprintf(stderr, "writing blocks...\n");
	ward_err_clear(&err);
	if (tsdb_maintain(im.db, true, &err) != 0) {
		fprintf(stderr,
		        "%s: the samples are in the store's WAL, but cutting blocks failed: %s\n"
		        "`ward serve` will retry on its next maintenance\n",
		        argv[0], err.msg);
		rc = WARD_EXIT_INTERNAL;
		goto out;
	}
	tsdb_stats(im.db, &ts);
	{
		char t1[32], t2[32];
		ward_fmt_rfc3339(st.min_t_ms, t1);
		ward_fmt_rfc3339(st.max_t_ms, t2);
		human_bytes((double)n, sz);
		snprintf(a, sizeof(a), "%.1f", (double)(ward_mono_ms() - im.t0) / 1000.0);
		snprintf(b, sizeof(b), "%zu metric famil%s", st.families,
		         st.families == 1 ? "y" : "ies");
		printf("imported %" PRIu64 " of %zu samples (%s, %s, %s) from %s to %s in %s s\n",
		       im.appended, st.samples, collect_format_name(st.format), sz, b, t1, t2, a);
		printf("store: %" PRIu64 " blocks, %" PRIu64 " series in the head\n", ts.blocks,
		       ts.series);
	}
	if (im.rejected) {
		fprintf(stderr,
		        "%" PRIu64 " samples were rejected: %" PRIu64 " older than their series' "
		        "newest sample, %" PRIu64 " with another value at the same time, %" PRIu64
		        " with an invalid label set\n",
		        im.rejected, ts.rejected_too_old, ts.rejected_duplicate, im.invalid);
		if (im.invalid)
			fprintf(stderr, "first invalid, line %zu: %s\n", im.first_invalid_line,
			        im.first_invalid.msg);
		rc = WARD_EXIT_PROBLEM;
	} else {
		rc = WARD_EXIT_OK;
	}
out:
	if (im.db || im.app) {
		tsdb_rollback(im.app);
		tsdb_close(im.db);
	}
	if (lockfd >= 0)
		close(lockfd);
	if (map)
		munmap(map, n);
	buf_free(&in);
	buf_free(&dir);
	free(data_dir);
	return rc;
}

static const struct cli_verb tsdb_verbs[] = {
        {"stats", "show the time-series store of the running server", stats_usage, CLI_X_ONLINE,
         tsdb_stats_cmd},
        {"import", "import samples from an OpenMetrics or text file (offline)", import_usage,
         CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_PROBLEM) | CLI_X(WARD_EXIT_USAGE) |
                 CLI_X(WARD_EXIT_UNAVAILABLE) | CLI_X(WARD_EXIT_NOTFOUND) |
                 CLI_X(WARD_EXIT_INTERNAL),
         tsdb_import_cmd},
        {NULL, NULL, NULL, 0, NULL},
};

static int tsdb_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "tsdb",
	                    "Inspect the time-series store and import samples into it.", tsdb_verbs,
	                    argc, argv);
}

const struct cli_cmd cli_cmd_tsdb = {"tsdb", "inspect the time-series store and import samples",
                                     tsdb_run};
