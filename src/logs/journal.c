/* journal.c: the systemd journal as a log source, through sd-journal (built only when
 * libsystemd is found: WARD_HAVE_JOURNAL). One thread owns the sd_journal handle: it reads
 * entries in batches, hands each batch to the store (thread-safe), then records the cursor
 * of the batch's last entry in <data>/logs/journal.cursor (rename(2) after each batch,
 * durably at stop), and waits on sd_journal_wait with a short timeout so stop is prompt.
 * Invariant: the saved cursor names the last entry handed to the store, so a restart seeks
 * there, skips that entry and goes on: nothing lost, nothing repeated (a crash between the
 * store's WAL write and the cursor write can repeat that one batch). Journal fields may be
 * binary or huge: MESSAGE is bounded by max_line (the store truncates and marks), its NUL
 * bytes are written as \x00, and a field becomes a label only when it is short, valid
 * UTF-8 without control characters. sd-journal orders entries across files by time: a file
 * that appears with entries older than the position reached is not read back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
/* sd-journal.h pulls in <syslog.h>, whose LOG_DEBUG and LOG_INFO macros would shadow
 * ward's enum log_level names: include it first and drop them before base.h. */
#include <systemd/sd-journal.h>
#undef LOG_DEBUG
#undef LOG_INFO

#include "logs/module_internal.h"

#define WAIT_USEC       (200 * 1000) /* how long stop may wait for the thread to notice */
#define ERROR_PAUSE_MS  1000         /* after a failed read or wait, before trying again */
#define BATCH_MAX       1024         /* entries per store append and cursor write */
#define BATCH_BYTES_MAX (4u << 20)   /* ... or this many line bytes */
#define LABEL_VALUE_MAX 128          /* longer unit/host values are not made labels */
#define CURSOR_MAX      4096         /* a cursor is ~140 bytes; more is a corrupt file */
#define FIELD_NAME_MAX  64           /* sd-journal's own limit on field names */

struct logs_journal {
	struct logs_mod *m;
	sd_journal *j;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	struct logs_pipeline pipe;
	size_t max_line;
	char *cursor_path;
	char *cursor;      /* of the last entry handed to the store; NULL before the first */
	char *skip_cursor; /* saved at the last run: the first entry read is skipped if it is it */
	bool dirty;        /* cursor moved since the last write */
	struct logs_fields scratch;
	/* the group of entries being batched into one store append (one label set) */
	struct logs_batch batch;
	char *gcursor;       /* the cursor of the group's last entry */
	struct buf nul_free; /* scratch: a MESSAGE with its NUL bytes written as \x00 */
};

/* ---- pure helpers (unit-tested in tests/unit/logs_journal.c) ---- */

const char *logs_journal_level(const char *v, size_t n) {
	if (n != 1 || v[0] < '0' || v[0] > '7')
		return NULL;
	return logs_syslog_severity_name(v[0] - '0');
}

int logs_journal_match_check(const char *m, struct ward_err *err) {
	if (strcmp(m, "+") == 0)
		return 0;
	const char *eq = strchr(m, '=');
	if (!eq || eq == m) {
		ward_err_set(err,
		             "\"%s\" is not FIELD=value (or \"+\" between groups), e.g. "
		             "_SYSTEMD_UNIT=nginx.service",
		             m);
		return -1;
	}
	size_t n = (size_t)(eq - m);
	if (n > FIELD_NAME_MAX) {
		ward_err_set(err, "field name of \"%.80s\" is longer than %d bytes", m,
		             FIELD_NAME_MAX);
		return -1;
	}
	if (m[0] >= '0' && m[0] <= '9') {
		ward_err_set(err, "field name of \"%s\" starts with a digit", m);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char c = m[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
			ward_err_set(
			        err,
			        "field name of \"%s\" has '%c' at %zu; journal field names are "
			        "upper-case letters, digits and _ (_SYSTEMD_UNIT, PRIORITY)",
			        m, c, i + 1);
			return -1;
		}
	}
	return 0;
}

bool logs_journal_field(const void *data, size_t len, const char *name, const char **v,
                        size_t *vn) {
	size_t nl = strlen(name);
	const char *d = data;
	if (!d || len <= nl || memcmp(d, name, nl) != 0 || d[nl] != '=')
		return false;
	*v = d + nl + 1;
	*vn = len - nl - 1;
	return true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
	size_t k;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		k = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		k = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		k = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, or a surrogate */
	return k;
}

bool logs_journal_label_value(const char *v, size_t n, char *out, size_t outsz) {
	if (n == 0 || n >= outsz)
		return false;
	const unsigned char *s = (const unsigned char *)v;
	for (size_t i = 0; i < n;) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
		size_t k = utf8_len(s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

/* ---- the cursor file ---- */

static void cursor_write(struct logs_journal *jr, bool durable) {
	if (!jr->cursor)
		return;
	json_t *root = json_pack("{s:i,s:s}", "version", 1, "cursor", jr->cursor);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!text)
		return;
	size_t n = strlen(text);
	if (durable) {
		struct ward_err err;
		ward_err_clear(&err);
		if (ward_write_file_atomic(jr->cursor_path, text, n, 0600, &err) != 0)
			ward_log(LOG_WARN,
			         "logs: cannot write the journal cursor; a restart may read "
			         "entries again",
			         "error", err.msg, NULL);
	} else {
		/* rename(2) without fsync: survives a crash of the process, which is what a
		 * restart is; the durable write happens at stop (as tail.c does with offsets). */
		struct buf tmp = BUF_INIT;
		buf_printf(&tmp, "%s.tmp", jr->cursor_path);
		int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		bool ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;
		if (fd >= 0 && close(fd) != 0)
			ok = false;
		if (!ok || rename(buf_cstr(&tmp), jr->cursor_path) != 0)
			ward_log(LOG_WARN,
			         "logs: cannot write the journal cursor; a restart may read "
			         "entries again",
			         "path", jr->cursor_path, "error", strerror(errno), NULL);
		buf_free(&tmp);
	}
	free(text);
	jr->dirty = false;
}

/* The saved cursor, or NULL when there is none (first start) or it is unreadable. */
static char *cursor_load(const char *path) {
	char *text = NULL, *out = NULL;
	size_t len;
	struct ward_err err;
	struct stat st;
	if (stat(path, &st) != 0)
		return NULL; /* never saved */
	ward_err_clear(&err);
	if (ward_read_file(path, CURSOR_MAX + 64, &text, &len, &err) != 0) {
		ward_log(LOG_WARN, "logs: cannot read the journal cursor; starting by start_at",
		         "error", err.msg, NULL);
		return NULL;
	}
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	const char *c = json_string_value(json_object_get(root, "cursor"));
	if (c && c[0] && strlen(c) < CURSOR_MAX)
		out = ward_strdup(c);
	else
		ward_log(LOG_WARN,
		         "logs: the journal cursor file is corrupt; starting by start_at "
		         "(delete it to silence this)",
		         "path", path, NULL);
	json_decref(root);
	free(text);
	return out;
}

/* ---- batching ---- */

static void group_flush(struct logs_journal *jr) {
	if (!logs_batch_flush(jr->m, &jr->batch, "journal", "logs: journal entries not stored"))
		return;
	/* Stored (or given up on, as the other sources do): the cursor moves past them. */
	free(jr->cursor);
	jr->cursor = jr->gcursor;
	jr->gcursor = NULL;
	jr->dirty = true;
}

/* Sets name to the journal field's value when it makes a sane label and the pipeline did
 * not already set it (static labels and parsed fields win). */
static void field_label(struct logs_journal *jr, struct labels *ls, const char *name,
                        const char *field) {
	const void *d;
	size_t l;
	const char *v;
	size_t vn;
	char val[LABEL_VALUE_MAX + 1];
	if (labels_get(ls, name) || sd_journal_get_data(jr->j, field, &d, &l) < 0 ||
	    !logs_journal_field(d, l, field, &v, &vn))
		return;
	if (strcmp(field, "PRIORITY") == 0) {
		const char *lvl = logs_journal_level(v, vn);
		if (lvl)
			labels_set(ls, name, lvl);
		return;
	}
	if (logs_journal_label_value(v, vn, val, sizeof(val)))
		labels_set(ls, name, val);
}

/* The entry the journal is positioned at; false when it was not added (no MESSAGE). */
static bool entry(struct logs_journal *jr) {
	const void *d;
	size_t l;
	const char *msg;
	size_t mlen;
	uint64_t usec;
	int64_t ts;
	if (sd_journal_get_data(jr->j, "MESSAGE", &d, &l) < 0 ||
	    !logs_journal_field(d, l, "MESSAGE", &msg, &mlen)) {
		logs_count_dropped(jr->m, "journal_no_message", 1);
		return false;
	}
	if (mlen > jr->max_line)
		mlen = jr->max_line + 1; /* the store truncates it and adds its marker */
	if (memchr(msg, '\0', mlen)) {
		/* Binary MESSAGE: NUL bytes become the text \x00, as the store writes invalid
		 * UTF-8 bytes; lines elsewhere in ward (queries, the CLI) are text. */
		buf_reset(&jr->nul_free);
		for (size_t i = 0; i < mlen && jr->nul_free.len <= jr->max_line; i++) {
			if (msg[i])
				buf_putc(&jr->nul_free, msg[i]);
			else
				buf_puts(&jr->nul_free, "\\x00");
		}
		msg = jr->nul_free.data;
		mlen = jr->nul_free.len;
	}
	if (sd_journal_get_realtime_usec(jr->j, &usec) < 0 || usec > (uint64_t)INT64_MAX / 1000)
		ts = ward_now_ms() * 1000000;
	else
		ts = (int64_t)usec * 1000;
	struct labels ls;
	labels_init(&ls);
	logs_pipeline_apply(&jr->pipe, msg, mlen, ts, &ls, &ts, &jr->scratch);
	field_label(jr, &ls, "unit", "_SYSTEMD_UNIT");
	field_label(jr, &ls, "host", "_HOSTNAME");
	field_label(jr, &ls, "level", "PRIORITY");
	if (logs_batch_other_stream(&jr->batch, &ls))
		group_flush(jr);
	logs_batch_add(&jr->batch, &ls, msg, mlen, ts);
	labels_free(&ls);
	return true;
}

/* Reads up to BATCH_MAX entries into the store. The number read (0: none new), or -1. */
static int drain(struct logs_journal *jr) {
	int n = 0;
	size_t bytes = 0;
	while (n < BATCH_MAX && bytes < BATCH_BYTES_MAX) {
		int r = sd_journal_next(jr->j);
		if (r < 0) {
			ward_log(LOG_WARN, "logs: cannot read the next journal entry; retrying",
			         "error", strerror(-r), NULL);
			n = -1;
			break;
		}
		if (r == 0)
			break;
		n++;
		if (jr->skip_cursor) {
			bool same = sd_journal_test_cursor(jr->j, jr->skip_cursor) > 0;
			free(jr->skip_cursor);
			jr->skip_cursor = NULL;
			if (same)
				continue; /* stored before the restart */
		}
		char *cur = NULL;
		if (sd_journal_get_cursor(jr->j, &cur) < 0)
			cur = NULL;
		size_t before = jr->batch.arena.len;
		entry(jr);
		bytes += jr->batch.arena.len >= before ? jr->batch.arena.len - before : 0;
		if (cur) {
			free(jr->gcursor);
			jr->gcursor = cur;
		}
	}
	if (jr->batch.n) {
		group_flush(jr);
	} else if (jr->gcursor) { /* only entries without MESSAGE: still move past them */
		free(jr->cursor);
		jr->cursor = jr->gcursor;
		jr->gcursor = NULL;
		jr->dirty = true;
	}
	if (jr->dirty)
		cursor_write(jr, false);
	return n;
}

/* Sleeps ms, waking early when stop is asked. */
static void pause_ms(struct logs_journal *jr, int64_t ms) {
	for (; ms > 0 && !atomic_load(&jr->stop); ms -= 50)
		usleep(50 * 1000);
}

static void *run(void *arg) {
	struct logs_journal *jr = arg;
	while (!atomic_load(&jr->stop)) {
		int n = drain(jr);
		if (n < 0) {
			pause_ms(jr, ERROR_PAUSE_MS);
			continue;
		}
		if (n > 0)
			continue; /* there may be more; wait only when caught up */
		int r = sd_journal_wait(jr->j, WAIT_USEC);
		if (r < 0) {
			/* No inotify (limits, odd file systems): poll instead. */
			ward_log(LOG_DEBUG, "logs: sd_journal_wait failed; polling the journal",
			         "error", strerror(-r), NULL);
			pause_ms(jr, WAIT_USEC / 1000);
		}
	}
	return NULL;
}

static void journal_free(struct logs_journal *jr) {
	if (jr->j)
		sd_journal_close(jr->j);
	logs_pipeline_free(&jr->pipe);
	logs_fields_free(&jr->scratch);
	logs_batch_free(&jr->batch);
	buf_free(&jr->nul_free);
	free(jr->gcursor);
	free(jr->cursor);
	free(jr->skip_cursor);
	free(jr->cursor_path);
	free(jr);
}

/* Opens the journal named by path: the local one (NULL), a directory, or one file. */
static int journal_open(sd_journal **j, const char *path, struct ward_err *err) {
	struct stat st;
	int r;
	if (!path || !path[0]) {
		r = sd_journal_open(j, SD_JOURNAL_LOCAL_ONLY);
		if (r < 0)
			ward_err_set(err,
			             "logs.journal: cannot open the local journal: %s; is "
			             "systemd-journald in use here? Set logs.journal.path to a "
			             "directory of journal files otherwise",
			             strerror(-r));
		return r < 0 ? -1 : 0;
	}
	if (stat(path, &st) != 0) {
		ward_err_set(err,
		             "logs.journal.path: %s: %s; create it, fix the path, or set "
		             "logs.journal.enabled: false",
		             path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		r = sd_journal_open_directory(j, path, 0);
	} else {
		const char *files[] = {path, NULL};
		r = sd_journal_open_files(j, files, 0);
	}
	if (r < 0) {
		ward_err_set(err,
		             "logs.journal.path: cannot open %s as a journal: %s; it must be "
		             "a directory of *.journal files or one such file",
		             path, strerror(-r));
		return -1;
	}
	return 0;
}

/* Positions the journal so that the next sd_journal_next() reads the first entry to
 * store. */
static int journal_seek(struct logs_journal *jr, int start_at, struct ward_err *err) {
	char *saved = cursor_load(jr->cursor_path);
	int r;
	if (saved) {
		r = sd_journal_seek_cursor(jr->j, saved);
		if (r >= 0) {
			jr->skip_cursor = saved;
			jr->cursor = ward_strdup(saved);
			return 0;
		}
		ward_log(LOG_WARN,
		         "logs: the saved journal cursor is not usable; starting by "
		         "start_at",
		         "error", strerror(-r), NULL);
		free(saved);
	}
	if (start_at == 1) {
		r = sd_journal_seek_tail(jr->j);
		/* Step onto the last entry, so that next() reads what comes after it, and save
		 * it so entries written while ward is down are read at the next start. */
		if (r >= 0 && sd_journal_previous(jr->j) > 0) {
			char *cur = NULL;
			if (sd_journal_get_cursor(jr->j, &cur) >= 0) {
				jr->cursor = cur;
				cursor_write(jr, true);
			}
		}
	} else {
		r = sd_journal_seek_head(jr->j);
	}
	if (r < 0) {
		ward_err_set(err, "logs.journal: cannot seek the journal: %s", strerror(-r));
		return -1;
	}
	return 0;
}

struct logs_journal *logs_journal_start(struct logs_mod *m, const struct logs_journal_conf *c,
                                        size_t max_line, const char *cursor_path,
                                        struct ward_err *err) {
	struct logs_journal *jr = ward_xcalloc(1, sizeof(*jr));
	struct logs_file_conf fc;
	jr->m = m;
	jr->max_line = max_line;
	jr->cursor_path = ward_strdup(cursor_path);
	atomic_init(&jr->stop, false);
	logs_batch_init(&jr->batch);
	logs_journal_file_conf(c, &fc);
	if (logs_pipeline_init(&jr->pipe, &fc, err) != 0)
		goto fail;
	if (journal_open(&jr->j, c->path, err) != 0)
		goto fail;
	/* Bounds what sd-journal decompresses for one field; MESSAGE= plus one byte more
	 * than a line may be, so the store still sees that it was too long. */
	(void)sd_journal_set_data_threshold(jr->j, max_line + 16);
	for (size_t i = 0; i < c->nmatches; i++) {
		const char *mt = c->matches[i];
		int r = strcmp(mt, "+") == 0 ? sd_journal_add_disjunction(jr->j)
		                             : sd_journal_add_match(jr->j, mt, strlen(mt));
		if (r < 0) {
			ward_err_set(err, "logs.journal.matches[%zu]: \"%s\": %s", i, mt,
			             strerror(-r));
			goto fail;
		}
	}
	if (journal_seek(jr, c->start_at, err) != 0)
		goto fail;
	int r = pthread_create(&jr->thread, NULL, run, jr);
	if (r != 0) {
		ward_err_set(err, "logs.journal: cannot start its thread: %s", strerror(r));
		goto fail;
	}
	jr->running = true;
	ward_log(LOG_INFO, "logs: reading the journal", "path",
	         c->path && c->path[0] ? c->path : "(local)", "resume",
	         jr->skip_cursor ? "cursor"
	         : c->start_at   ? "end"
	                         : "beginning",
	         NULL);
	return jr;
fail:
	journal_free(jr);
	return NULL;
}

void logs_journal_stop(struct logs_journal *jr) {
	if (!jr)
		return;
	atomic_store(&jr->stop, true);
	if (jr->running)
		pthread_join(jr->thread, NULL);
	group_flush(jr); /* nothing is pending after a drain; kept for safety */
	cursor_write(jr, true);
	journal_free(jr);
}
