/* tail.c: file tailing on the daemon's loop. Globs are expanded on inotify events
 * (uv_fs_event on each glob's directory, coalesced) and every second. A file is known by
 * (dev, inode): renamed away and recreated (logrotate create): the old descriptor is read to
 * its end, then the new file from 0; truncated in place (copytruncate): reading restarts at
 * 0; deleted: read to the end and closed. Invariant: `done` is just past the last line handed
 * to the store; the offsets file records it per path and inode after every scan that moved
 * it (rename(2), no fsync) and durably at stop, so a restart resumes at that byte: nothing
 * lost, nothing repeated (only a crash in the microseconds between the store's WAL write and
 * the offsets write can repeat those lines).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "logs/module_internal.h"

#define SCAN_EVERY_MS     1000
#define COALESCE_MS       20
#define READ_CHUNK        (64 * 1024)
#define READ_MAX_PER_SCAN (8u << 20) /* fairness between files; the next scan continues */
#define MULTILINE_IDLE_MS 1000       /* an entry with no continuation for this long is done */
/* Rotated-away inodes remembered, so that a glob also matching app.log.1 does not read
 * again what app.log already sent. */
#define RETIRED_MAX 64
#define MAX_LINE    (256 * 1024) /* longer lines are truncated (the store marks them) */

struct tfile {
	char *path;
	size_t src;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t pos;  /* read position */
	uint64_t done; /* checkpointed: past the last stored line */
	struct buf part;
	bool skipping;
	struct buf ml; /* multiline entry being joined */
	uint64_t ml_end;
	int64_t ml_mono;
	bool seen;
	struct tfile *next;
};

struct saved {
	char *path;
	uint64_t dev, ino, offset;
};

struct tdir {
	uv_fs_event_t ev;
	char *dir;
	struct logs_tailer *t;
};

struct logs_tailer {
	struct logs_mod *m;
	uv_loop_t *loop;
	struct logs_pipeline *pipes;
	char **globs;
	int *start_at;
	size_t n;
	struct tfile *files;
	uv_timer_t poll, soon;
	bool soon_armed;
	struct tdir **dirs;
	size_t ndirs;
	int closing;
	char *offsets_path;
	struct saved *saved;
	struct saved retired[RETIRED_MAX]; /* inodes drained after a rotation (path unused) */
	size_t nretired;
	size_t nsaved;
	bool dirty;
	struct logs_fields scratch;
	/* the group of lines being batched into one store append */
	struct logs_batch batch;
};

/* ---- batching ---- */

static void group_flush(struct logs_tailer *t) {
	logs_batch_flush(t->m, &t->batch, "file", "logs: file lines not stored");
}

static void emit(struct logs_tailer *t, struct tfile *f, const char *line, size_t len) {
	struct labels ls;
	int64_t ts;
	labels_init(&ls);
	logs_pipeline_apply(&t->pipes[f->src], line, len, ward_now_ms() * 1000000, &ls, &ts,
	                    &t->scratch);
	labels_set(&ls, "filename", f->path);
	if (logs_batch_other_stream(&t->batch, &ls))
		group_flush(t);
	logs_batch_add(&t->batch, &ls, line, len, ts);
	labels_free(&ls);
	if (t->batch.arena.len >= (4u << 20))
		group_flush(t);
}

/* A complete line ending at file offset end_off (just past its newline). */
static void on_line(struct logs_tailer *t, struct tfile *f, const char *line, size_t len,
                    uint64_t end_off) {
	const struct logs_pipeline *p = &t->pipes[f->src];
	if (len && line[len - 1] == '\r')
		len--;
	if (!p->ml_re) {
		emit(t, f, line, len);
		f->done = end_off;
		return;
	}
	if (logs_pipeline_is_start(p, line, len) || !f->ml.len) {
		if (f->ml.len) {
			emit(t, f, f->ml.data, f->ml.len);
			f->done = f->ml_end;
		}
		buf_reset(&f->ml);
		buf_append(&f->ml, line, len);
	} else if (f->ml.len < MAX_LINE) {
		buf_putc(&f->ml, '\n');
		buf_append(&f->ml, line, len);
	}
	f->ml_end = end_off;
	f->ml_mono = ward_mono_ms();
}

static void ml_flush(struct logs_tailer *t, struct tfile *f, bool force) {
	if (!f->ml.len)
		return;
	if (!force && ward_mono_ms() - f->ml_mono < MULTILINE_IDLE_MS)
		return;
	emit(t, f, f->ml.data, f->ml.len);
	f->done = f->ml_end;
	buf_reset(&f->ml);
}

/* Reads what is new in f->fd; false at EOF or error. */
static void read_file(struct logs_tailer *t, struct tfile *f) {
	char chunk[READ_CHUNK];
	size_t total = 0;
	uint64_t before = f->done;
	while (total < READ_MAX_PER_SCAN) {
		ssize_t r = pread(f->fd, chunk, sizeof(chunk), (off_t)f->pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		total += (size_t)r;
		size_t i = 0;
		while (i < (size_t)r) {
			char *nl = memchr(chunk + i, '\n', (size_t)r - i);
			size_t end = nl ? (size_t)(nl - chunk) : (size_t)r;
			if (f->skipping) {
				if (nl) {
					f->skipping = false;
					f->done = f->pos + end + 1;
				}
				i = end + (nl ? 1 : 0);
				continue;
			}
			if (!nl) {
				buf_append(&f->part, chunk + i, end - i);
				if (f->part.len > MAX_LINE) {
					/* Hand over MAX_LINE + 1 bytes: the store truncates and
					 * marks. */
					on_line(t, f, f->part.data, MAX_LINE + 1, f->done);
					buf_reset(&f->part);
					f->skipping = true;
				}
				i = end;
				continue;
			}
			uint64_t end_off = f->pos + end + 1;
			if (f->part.len) {
				buf_append(&f->part, chunk + i, end - i);
				size_t l = f->part.len > MAX_LINE + 1 ? MAX_LINE + 1 : f->part.len;
				on_line(t, f, f->part.data, l, end_off);
				buf_reset(&f->part);
			} else {
				size_t l = end - i > MAX_LINE + 1 ? MAX_LINE + 1 : end - i;
				on_line(t, f, chunk + i, l, end_off);
			}
			i = end + 1;
		}
		f->pos += (uint64_t)r;
	}
	group_flush(t);
	if (f->done != before)
		t->dirty = true;
}

/* ---- offsets ---- */

static void offsets_write(struct logs_tailer *t, bool durable) {
	json_t *arr = json_array();
	for (struct tfile *f = t->files; f; f = f->next)
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:I}", "path", f->path, "dev",
		                                     (json_int_t)f->dev, "ino", (json_int_t)f->ino,
		                                     "offset", (json_int_t)f->done));
	/* Files not seen this run keep their saved offsets (a glob may match again later). */
	for (size_t i = 0; i < t->nsaved; i++) {
		bool live = false;
		for (struct tfile *f = t->files; f; f = f->next)
			if (strcmp(f->path, t->saved[i].path) == 0)
				live = true;
		if (!live)
			json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:I}", "path",
			                                     t->saved[i].path, "dev",
			                                     (json_int_t)t->saved[i].dev, "ino",
			                                     (json_int_t)t->saved[i].ino, "offset",
			                                     (json_int_t)t->saved[i].offset));
	}
	json_t *root = json_pack("{s:i,s:o}", "version", 1, "files", arr);
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	struct ward_err err;
	ward_err_clear(&err);
	if (durable) {
		if (ward_write_file_atomic(t->offsets_path, text, strlen(text), 0600, &err) != 0)
			ward_log(LOG_WARN, "logs: cannot write offsets", "error", err.msg, NULL);
	} else {
		/* rename(2) without fsync: survives a crash of the process, which is what a
		 * restart is; the durable write happens at stop. */
		struct buf tmp = BUF_INIT;
		buf_printf(&tmp, "%s.tmp", t->offsets_path);
		int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		size_t n = strlen(text);
		if (fd < 0 || write(fd, text, n) != (ssize_t)n || close(fd) != 0 ||
		    rename(buf_cstr(&tmp), t->offsets_path) != 0)
			ward_log(LOG_WARN, "logs: cannot write offsets", "path", t->offsets_path,
			         "error", strerror(errno), NULL);
		buf_free(&tmp);
	}
	free(text);
	t->dirty = false;
}

static void offsets_load(struct logs_tailer *t) {
	json_error_t je;
	json_t *root = json_load_file(t->offsets_path, 0, &je);
	json_t *arr = json_object_get(root, "files");
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *p = json_string_value(json_object_get(e, "path"));
		if (!p)
			continue;
		t->saved = ward_xrealloc(t->saved, (t->nsaved + 1) * sizeof(*t->saved));
		t->saved[t->nsaved++] = (struct saved){
		        .path = ward_strdup(p),
		        .dev = (uint64_t)json_integer_value(json_object_get(e, "dev")),
		        .ino = (uint64_t)json_integer_value(json_object_get(e, "ino")),
		        .offset = (uint64_t)json_integer_value(json_object_get(e, "offset"))};
	}
	json_decref(root);
}

static struct saved *saved_find(struct logs_tailer *t, const char *path) {
	for (size_t i = 0; i < t->nsaved; i++)
		if (strcmp(t->saved[i].path, path) == 0)
			return &t->saved[i];
	return NULL;
}

/* ---- tracking ---- */

static void tfile_close(struct tfile *f) {
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* Finishes the old descriptor of a rotated file: everything to EOF, and a final partial
 * line or multiline entry too (nobody will append to it any more). */
static void drain_old(struct logs_tailer *t, struct tfile *f) {
	read_file(t, f);
	if (f->part.len && !f->skipping)
		on_line(t, f, f->part.data, f->part.len, f->pos);
	buf_reset(&f->part);
	f->skipping = false;
	ml_flush(t, f, true);
	group_flush(t);
	if (t->nretired == RETIRED_MAX) {
		memmove(&t->retired[0], &t->retired[1], (RETIRED_MAX - 1) * sizeof(t->retired[0]));
		t->nretired--;
	}
	t->retired[t->nretired++] =
	        (struct saved){.dev = (uint64_t)f->dev, .ino = (uint64_t)f->ino, .offset = f->pos};
	tfile_close(f);
}

static int open_at(struct tfile *f, uint64_t off) {
	struct stat st;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	if (off > (uint64_t)st.st_size)
		off = 0; /* truncated while we were away */
	f->pos = f->done = off;
	buf_reset(&f->part);
	buf_reset(&f->ml);
	f->skipping = false;
	return 0;
}

/* At start: the file at path was rotated while ward was down; finish the old inode when it
 * still sits in the same directory under another name (app.log.1). */
static void finish_rotated_away(struct logs_tailer *t, struct tfile *f, const struct saved *sv) {
	char *dup = ward_strdup(f->path);
	const char *dir = dirname(dup);
	glob_t g;
	struct buf pat = BUF_INIT;
	buf_printf(&pat, "%s/*", dir);
	if (glob(buf_cstr(&pat), 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			struct stat st;
			if (stat(g.gl_pathv[i], &st) != 0 || st.st_ino != sv->ino ||
			    st.st_dev != sv->dev || !S_ISREG(st.st_mode))
				continue;
			int fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				break;
			f->fd = fd;
			f->dev = st.st_dev;
			f->ino = st.st_ino;
			f->pos = f->done = sv->offset <= (uint64_t)st.st_size ? sv->offset : 0;
			drain_old(t, f);
			break;
		}
		globfree(&g);
	}
	buf_free(&pat);
	free(dup);
}

static void check_file(struct logs_tailer *t, struct tfile *f) {
	struct stat st;
	bool exists = stat(f->path, &st) == 0 && S_ISREG(st.st_mode);
	if (f->fd >= 0 && (!exists || st.st_ino != f->ino || st.st_dev != f->dev)) {
		/* Renamed or deleted: what was written to the old inode still counts. */
		drain_old(t, f);
		t->dirty = true;
		if (exists) {
			if (open_at(f, 0) == 0)
				t->dirty = true;
		}
	} else if (f->fd < 0 && exists) {
		if (open_at(f, 0) == 0)
			t->dirty = true;
	} else if (f->fd >= 0 && (uint64_t)st.st_size < f->pos) {
		/* copytruncate: the file was emptied in place. */
		f->pos = f->done = 0;
		buf_reset(&f->part);
		buf_reset(&f->ml);
		f->skipping = false;
		t->dirty = true;
	}
	if (f->fd >= 0) {
		read_file(t, f);
		ml_flush(t, f, false);
		group_flush(t);
	}
}

static void scan(struct logs_tailer *t) {
	for (struct tfile *f = t->files; f; f = f->next)
		f->seen = false;
	for (size_t s = 0; s < t->n; s++) {
		glob_t g;
		if (glob(t->globs[s], 0, NULL, &g) != 0)
			continue;
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *p = g.gl_pathv[i];
			struct tfile *f;
			for (f = t->files; f; f = f->next)
				if (strcmp(f->path, p) == 0)
					break;
			if (f) {
				f->seen = true;
				continue;
			}
			struct stat st;
			if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			/* The inode of a file being followed under another name (just renamed by a
			 * rotation): the other entry reads it to the end; pick it up after that. */
			bool held = false;
			for (struct tfile *o = t->files; o; o = o->next)
				if (o->fd >= 0 && o->dev == st.st_dev && o->ino == st.st_ino)
					held = true;
			if (held)
				continue;
			const struct saved *ret = NULL;
			for (size_t k = 0; k < t->nretired; k++)
				if (t->retired[k].dev == (uint64_t)st.st_dev &&
				    t->retired[k].ino == (uint64_t)st.st_ino)
					ret = &t->retired[k];
			f = ward_xcalloc(1, sizeof(*f));
			f->path = ward_strdup(p);
			f->src = s;
			f->fd = -1;
			f->seen = true;
			f->next = t->files;
			t->files = f;
			const struct saved *sv = saved_find(t, p);
			uint64_t off = 0;
			if (ret) {
				off = ret->offset;
			} else if (sv && sv->ino == (uint64_t)st.st_ino &&
			           sv->dev == (uint64_t)st.st_dev) {
				off = sv->offset;
			} else if (sv) {
				finish_rotated_away(t, f, sv);
			} else if (t->start_at[s] == 1 && !t->poll.data) {
				off = (uint64_t)st.st_size; /* only for files there at start */
			}
			if (open_at(f, off) == 0)
				t->dirty = true;
		}
		globfree(&g);
	}
	for (struct tfile *f = t->files; f; f = f->next)
		check_file(t, f);
	if (t->dirty)
		offsets_write(t, false);
}

static void poll_tick(uv_timer_t *h) {
	scan(h->data);
}

static void soon_tick(uv_timer_t *h) {
	struct logs_tailer *t = h->data;
	t->soon_armed = false;
	scan(t);
}

static void on_event(uv_fs_event_t *h, const char *name, int events, int status) {
	struct tdir *d = h->data;
	struct logs_tailer *t = d->t;
	if (t->soon_armed)
		return;
	t->soon_armed = true;
	uv_timer_start(&t->soon, soon_tick, COALESCE_MS, 0);
}

struct logs_tailer *logs_tailer_start(struct logs_mod *m, uv_loop_t *loop,
                                      const struct logs_file_conf *files, size_t n,
                                      const char *offsets_path, struct ward_err *err) {
	struct logs_tailer *t = ward_xcalloc(1, sizeof(*t));
	t->m = m;
	t->loop = loop;
	t->n = n;
	t->pipes = ward_xcalloc(n, sizeof(*t->pipes));
	t->globs = ward_xcalloc(n, sizeof(char *));
	t->start_at = ward_xcalloc(n, sizeof(int));
	t->offsets_path = ward_strdup(offsets_path);
	logs_batch_init(&t->batch);
	for (size_t i = 0; i < n; i++) {
		if (logs_pipeline_init(&t->pipes[i], &files[i], err) != 0) {
			for (size_t k = 0; k < i; k++)
				logs_pipeline_free(&t->pipes[k]);
			free(t->pipes);
			free(t->globs);
			free(t->start_at);
			free(t->offsets_path);
			free(t);
			return NULL;
		}
		t->globs[i] = ward_strdup(files[i].path);
		t->start_at[i] = files[i].start_at;
	}
	offsets_load(t);
	uv_timer_init(loop, &t->poll);
	uv_timer_init(loop, &t->soon);
	t->soon.data = t;
	scan(t); /* t->poll.data is NULL during the first scan: start_at applies */
	t->poll.data = t;
	uv_timer_start(&t->poll, poll_tick, SCAN_EVERY_MS, SCAN_EVERY_MS);
	for (size_t i = 0; i < n; i++) {
		char *dup = ward_strdup(files[i].path);
		const char *dir = dirname(dup);
		bool have = false;
		for (size_t k = 0; k < t->ndirs; k++)
			if (strcmp(t->dirs[k]->dir, dir) == 0)
				have = true;
		if (!have) {
			struct tdir *d = ward_xcalloc(1, sizeof(*d));
			d->dir = ward_strdup(dir);
			d->t = t;
			uv_fs_event_init(loop, &d->ev);
			d->ev.data = d;
			if (uv_fs_event_start(&d->ev, on_event, d->dir, 0) != 0)
				ward_log(LOG_WARN,
				         "logs: cannot watch a directory; polling it every second",
				         "dir", d->dir, NULL);
			t->dirs = ward_xrealloc(t->dirs, (t->ndirs + 1) * sizeof(*t->dirs));
			t->dirs[t->ndirs++] = d;
		}
		free(dup);
	}
	return t;
}

static void tailer_free(struct logs_tailer *t) {
	for (size_t i = 0; i < t->n; i++) {
		logs_pipeline_free(&t->pipes[i]);
		free(t->globs[i]);
	}
	free(t->pipes);
	free(t->globs);
	free(t->start_at);
	while (t->files) {
		struct tfile *f = t->files;
		t->files = f->next;
		tfile_close(f);
		buf_free(&f->part);
		buf_free(&f->ml);
		free(f->path);
		free(f);
	}
	for (size_t i = 0; i < t->nsaved; i++)
		free(t->saved[i].path);
	free(t->saved);
	free(t->dirs);
	free(t->offsets_path);
	logs_fields_free(&t->scratch);
	logs_batch_free(&t->batch);
	free(t);
}

static void handle_closed(uv_handle_t *h) {
	struct logs_tailer *t;
	if (h->type == UV_FS_EVENT) {
		struct tdir *d = h->data;
		t = d->t;
		free(d->dir);
		free(d);
	} else {
		t = h->data;
	}
	if (--t->closing == 0)
		tailer_free(t);
}

void logs_tailer_stop(struct logs_tailer *t) {
	if (!t)
		return;
	scan(t); /* what was written up to now */
	for (struct tfile *f = t->files; f; f = f->next)
		ml_flush(t, f, true);
	group_flush(t);
	offsets_write(t, true);
	t->closing = 2 + (int)t->ndirs;
	t->poll.data = t;
	t->soon.data = t;
	uv_close((uv_handle_t *)&t->poll, handle_closed);
	uv_close((uv_handle_t *)&t->soon, handle_closed);
	for (size_t i = 0; i < t->ndirs; i++)
		uv_close((uv_handle_t *)&t->dirs[i]->ev, handle_closed);
}
