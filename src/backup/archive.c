/* archive.c: making snapshots. backup_run_paths walks the given trees depth-first in name
 * order, chunks each file with FastCDC, stores new chunks, writes one tree blob per directory
 * (bottom-up) and finally the snapshot; backup_run_stream does the same for one stream.
 * A file whose size, mtime and inode equal the parent snapshot's entry reuses its chunk list
 * without being read. Source problems never abort the run: vanished or changed files are
 * warnings, unreadable ones are listed and make the snapshot partial. Holds a shared lock.
 * Called from the CLI (and later a daemon worker thread): no globals, no output.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/backup_internal.h"

struct hardlink {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
	uint8_t (*content)[BACKUP_ID_LEN];
	size_t ncontent;
};

/* A file whose chunks are queued and whose ids the writer threads are computing: they land
 * in t->v[idx] once every one of its tickets is below the writers' mark (advance). Pends
 * are queued in ticket order. */
struct pend {
	struct backup_tree *t; /* the tree of its directory: unsaved until the pend is gone */
	size_t idx;
	uint64_t first; /* ticket of the first chunk; the file's tickets are consecutive */
	size_t n;
};

/* A directory read to the end whose tree waits for the ids of its files' chunks (every
 * ticket below need) and of its subdirectories' trees (deferred before it, so saved before
 * it: the queue is saved in order). Saving it writes its id into parent->v[pidx].subtree.
 * So the reading thread never waits for the writers between directories. */
struct deferred {
	struct backup_tree *t; /* heap; freed once saved */
	struct backup_tree *parent;
	size_t pidx;
	uint64_t need;
};

struct arch {
	struct backup_repo *r;
	const struct backup_run_opts *o;
	struct backup_chunker cdc;
	uint8_t *rbuf;
	size_t rcap;
	struct backup_stats st;
	struct backup_progress prog;
	int64_t start_ms, last_ms;
	char **unreadable;
	size_t nunreadable;
	struct hardlink *links;
	size_t nlinks;
	dev_t root_dev;
	bool cancelled;
	uint64_t stored0; /* r->bytes_stored when the run began */
	uint64_t added0, added_blobs0; /* r->data_added(_blobs) when the run began */
	struct pend *pend; /* pend[pend_head..npend) are waiting */
	size_t pend_head, npend, pend_cap;
	struct deferred *dq; /* dq[dq_head..ndq) are waiting */
	size_t dq_head, ndq, dq_cap;
	uint64_t tickets; /* tickets given out so far (the next one) */
};

bool backup_glob_match(const char *const *pats, size_t n, const char *path, const char *name) {
	for (size_t i = 0; i < n; i++) {
		const char *p = pats[i];
		if (strchr(p, '/')) {
			size_t pl = strlen(p);
			if (fnmatch(p, path, 0) == 0)
				return true;
			/* "/etc/nginx" also selects what is below it. */
			if (strncmp(path, p, pl) == 0 && path[pl] == '/')
				return true;
		} else if (fnmatch(p, name, 0) == 0) {
			return true;
		}
	}
	return false;
}

static void warn(struct arch *a, const char *path, const char *fmt, ...) WARD_PRINTF(3, 4);
static void warn(struct arch *a, const char *path, const char *fmt, ...) {
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (a->o->warn)
		a->o->warn(path, msg, a->o->cb_arg);
}

static void unreadable(struct arch *a, const char *path, int e) {
	a->unreadable = ward_xrealloc(a->unreadable, (a->nunreadable + 1) * sizeof(char *));
	a->unreadable[a->nunreadable++] = ward_strdup(path);
	a->st.errors++;
	warn(a, path, "unreadable, left out of the snapshot: %s", strerror(e));
}

static void progress(struct arch *a, const char *cur, bool final) {
	a->prog.current = cur;
	a->prog.bytes_added = a->st.bytes_added;
	backup_progress_emit(&a->prog, a->start_ms, &a->last_ms, final, a->o->progress,
	                     a->o->cb_arg);
}

static bool cancelled(struct arch *a) {
	if (a->o->cancel && *a->o->cancel)
		a->cancelled = true;
	return a->cancelled;
}

/* Drops the done head of a queue kept as v[head..n): when it is empty, or once the done part
 * is at least half, so a run that never drains keeps memory for what waits, not for every
 * file it has seen. */
static void compact(void *v, size_t *head, size_t *n, size_t size) {
	if (*head == *n) {
		*head = *n = 0;
	} else if (*head >= *n / 2 && *head >= 64) {
		memmove(v, (char *)v + *head * size, (*n - *head) * size);
		*n -= *head;
		*head = 0;
	}
}

/* Gives the files whose chunk ids are all known their content lists, then saves the
 * deferred trees that no longer wait for anything, in order. With wait, first waits for
 * every queued chunk, so everything deferred is saved (before a hard link's ids are copied,
 * and before the top-level tree is saved). */
static int advance(struct arch *a, bool wait, struct ward_err *err) {
	uint64_t ready, added, blobs;
	int rc;

	if (a->pend_head == a->npend && a->dq_head == a->ndq)
		return 0;
	rc = wait ? backup_data_wait(a->r, &ready, err) : backup_data_ready(a->r, &ready, err);
	if (rc)
		return rc;
	for (; a->pend_head < a->npend; a->pend_head++) {
		struct pend *p = &a->pend[a->pend_head];
		struct backup_node *n = &p->t->v[p->idx];
		if (p->first + p->n > ready)
			break;
		n->content = ward_xmalloc(p->n * BACKUP_ID_LEN);
		n->ncontent = p->n;
		for (size_t k = 0; k < p->n; k++)
			memcpy(n->content[k], backup_data_id(a->r, p->first + k), BACKUP_ID_LEN);
	}
	backup_data_release(a->r, a->pend_head < a->npend ? a->pend[a->pend_head].first : ready);
	compact(a->pend, &a->pend_head, &a->npend, sizeof(*a->pend));
	for (; a->dq_head < a->ndq; a->dq_head++) {
		struct deferred *d = &a->dq[a->dq_head];
		if (d->need > ready)
			break;
		backup_tree_sort(d->t);
		rc = backup_save_tree(a->r, d->t, d->parent->v[d->pidx].subtree, err);
		backup_tree_free(d->t);
		free(d->t);
		d->t = NULL;
		if (rc) {
			a->dq_head++;
			return rc;
		}
	}
	compact(a->dq, &a->dq_head, &a->ndq, sizeof(*a->dq));
	backup_data_added(a->r, &added, &blobs);
	a->st.bytes_added = added - a->added0;
	a->st.blobs_added = blobs - a->added_blobs0;
	return 0;
}

/* Queues t (read to the end) to be saved into parent->v[pidx] once the tickets given out so
 * far have their ids; takes t. */
static void defer_tree(struct arch *a, struct backup_tree *t, struct backup_tree *parent,
                       size_t pidx) {
	struct deferred *d;
	if (a->ndq == a->dq_cap) {
		a->dq_cap = a->dq_cap ? a->dq_cap * 2 : 64;
		a->dq = ward_xrealloc(a->dq, a->dq_cap * sizeof(*a->dq));
	}
	d = &a->dq[a->ndq++];
	d->t = t;
	d->parent = parent;
	d->pidx = pidx;
	d->need = a->tickets;
}

/* Chunks everything from fd and queues the chunks; their ids reach t->v[idx] through
 * advance. Returns 0, a negative rc (repository failure or cancel), or a positive errno for
 * a read error of the source. */
static int chunk_fd(struct arch *a, int fd, struct backup_tree *t, size_t idx, uint64_t *nread,
                    const char *path, struct ward_err *err) {
	size_t start = 0, len = 0, nchunks = 0;
	uint64_t first = 0;
	bool eof = false;

	*nread = 0;
	for (;;) {
		size_t cut;
		uint64_t ticket;
		int rc;

		while (!eof && len - start < a->cdc.max) {
			ssize_t got;
			if (a->rcap - len < a->cdc.max / 4 + 1) {
				memmove(a->rbuf, a->rbuf + start, len - start);
				len -= start;
				start = 0;
			}
			got = read(fd, a->rbuf + len, a->rcap - len);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return errno ? errno : EIO;
			if (got == 0)
				eof = true;
			len += (size_t)got;
			*nread += (uint64_t)got;
			a->st.bytes_read += (uint64_t)got;
			a->prog.bytes_done += (uint64_t)got;
		}
		if (len == start)
			break;
		cut = backup_chunker_cut(&a->cdc, a->rbuf + start, len - start);
		rc = backup_put_data(a->r, a->rbuf + start, cut, &ticket, err);
		if (rc)
			return rc;
		if (nchunks++ == 0)
			first = ticket;
		a->tickets = ticket + 1;
		start += cut;
		progress(a, path, false);
		if (cancelled(a)) {
			ward_err_set(err, "backup cancelled");
			return BACKUP_ERR_CANCELLED;
		}
	}
	if (nchunks) {
		struct pend *p;
		if (a->npend == a->pend_cap) {
			a->pend_cap = a->pend_cap ? a->pend_cap * 2 : 64;
			a->pend = ward_xrealloc(a->pend, a->pend_cap * sizeof(*a->pend));
		}
		p = &a->pend[a->npend++];
		p->t = t;
		p->idx = idx;
		p->first = first;
		p->n = nchunks;
	}
	return 0;
}

static void fill_meta(struct backup_node *n, const struct stat *st) {
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	n->inode = st->st_ino;
	n->dev = st->st_dev;
	n->nlink = (uint32_t)st->st_nlink;
	if (S_ISREG(st->st_mode))
		n->size = (uint64_t)st->st_size;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		n->rdev = st->st_rdev;
}

static bool parent_unchanged(struct arch *a, const struct backup_node *p, const struct stat *st) {
	int64_t mt = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (!p || a->o->force || p->type != BACKUP_NODE_FILE || p->size != (uint64_t)st->st_size ||
	    p->mtime_ns != mt || p->inode != (uint64_t)st->st_ino)
		return false;
	for (size_t i = 0; i < p->ncontent; i++)
		if (!bindex_get(&a->r->idx, p->content[i]))
			return false;
	return true;
}

static void copy_content(struct backup_node *n, uint8_t (*c)[BACKUP_ID_LEN], size_t k) {
	n->ncontent = k;
	n->content = k ? ward_xmalloc(k * BACKUP_ID_LEN) : NULL;
	if (k)
		memcpy(n->content, c, k * BACKUP_ID_LEN);
}

/* Returns 0 when the node is to be kept, 1 when it is to be dropped, negative to abort. */
static int save_file(struct arch *a, const char *path, struct backup_tree *t, size_t idx,
                     const struct stat *st, const struct backup_node *pn, struct ward_err *err) {
	struct backup_node *n = &t->v[idx];
	struct stat st2, st3;
	uint64_t nread = 0;
	int fd, rc;

	a->st.files++;
	a->st.bytes_total += (uint64_t)st->st_size;
	a->prog.files_done++;
	if (st->st_nlink > 1) {
		for (size_t i = 0; i < a->nlinks; i++) {
			struct hardlink *h = &a->links[i];
			if (h->dev == (uint64_t)st->st_dev && h->ino == (uint64_t)st->st_ino &&
			    h->size == (uint64_t)st->st_size && h->mtime_ns == n->mtime_ns) {
				copy_content(n, h->content, h->ncontent);
				a->prog.bytes_done += (uint64_t)st->st_size;
				a->st.files_unchanged++;
				return 0;
			}
		}
	}
	if (parent_unchanged(a, pn, st)) {
		copy_content(n, pn->content, pn->ncontent);
		a->st.files_unchanged++;
		a->prog.bytes_done += (uint64_t)st->st_size;
		progress(a, path, false);
		goto remember;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			warn(a, path, "vanished during the backup, left out");
			a->st.files--;
			a->st.bytes_total -= (uint64_t)st->st_size;
			return 1;
		}
		unreadable(a, path, errno);
		a->st.files--;
		a->st.bytes_total -= (uint64_t)st->st_size;
		return 1;
	}
	if (fstat(fd, &st2) == 0 && (st2.st_ino != st->st_ino || !S_ISREG(st2.st_mode))) {
		close(fd);
		warn(a, path, "was replaced during the backup, left out");
		a->st.files--;
		a->st.bytes_total -= (uint64_t)st->st_size;
		return 1;
	}
	rc = chunk_fd(a, fd, t, idx, &nread, path, err);
	if (rc > 0) {
		close(fd);
		unreadable(a, path, rc);
		a->st.files--;
		a->st.bytes_total -= (uint64_t)st->st_size;
		return 1;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	if (fstat(fd, &st3) == 0 &&
	    (st3.st_size != st->st_size || st3.st_mtim.tv_sec != st->st_mtim.tv_sec ||
	     st3.st_mtim.tv_nsec != st->st_mtim.tv_nsec || nread != (uint64_t)st->st_size)) {
		/* Keep what was read, with the metadata seen before reading: the next run sees
		 * an mtime that differs and reads the file again. */
		warn(a, path, "changed while it was read; the snapshot has the bytes read");
		a->st.bytes_total += nread;
		a->st.bytes_total -= (uint64_t)st->st_size;
		n->size = nread;
	}
	close(fd);
	if (pn && pn->type == BACKUP_NODE_FILE)
		a->st.files_changed++;
	else
		a->st.files_new++;
remember:
	if (st->st_nlink > 1) {
		struct hardlink *h;
		/* The other names of this inode copy its ids: they must be known now. */
		rc = advance(a, true, err);
		if (rc)
			return rc;
		a->links = ward_xrealloc(a->links, (a->nlinks + 1) * sizeof(*a->links));
		h = &a->links[a->nlinks++];
		h->dev = (uint64_t)st->st_dev;
		h->ino = (uint64_t)st->st_ino;
		h->size = n->size;
		h->mtime_ns = n->mtime_ns;
		h->content = NULL;
		h->ncontent = 0;
		if (n->ncontent) {
			h->content = ward_xmalloc(n->ncontent * BACKUP_ID_LEN);
			memcpy(h->content, n->content, n->ncontent * BACKUP_ID_LEN);
			h->ncontent = n->ncontent;
		}
	}
	return 0;
}

static int save_dir(struct arch *a, const char *path, const struct backup_node *pn,
                    struct backup_tree *parent, size_t pidx, struct ward_err *err);

static int name_cmp(const void *x, const void *y) {
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Saves one entry (any type) into a node of t. */
static int save_entry(struct arch *a, const char *path, const char *name, bool top,
                      struct backup_tree *t, const struct backup_node *pn, struct ward_err *err) {
	struct stat st;
	struct backup_node *n;
	int rc = 0;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			warn(a, path, "vanished during the backup, left out");
		else
			unreadable(a, path, errno);
		return 0;
	}
	if (!top && a->o->nexclude && backup_glob_match(a->o->exclude, a->o->nexclude, path, name))
		return 0;
	if (!top && a->o->ninclude && !S_ISDIR(st.st_mode) &&
	    !backup_glob_match(a->o->include, a->o->ninclude, path, name))
		return 0;
	n = backup_tree_push(t);
	n->name = ward_strdup(name);
	fill_meta(n, &st);
	if (S_ISREG(st.st_mode)) {
		n->type = BACKUP_NODE_FILE;
		rc = save_file(a, path, t, t->n - 1, &st, pn, err);
		if (rc == 1) {
			backup_node_clear(n);
			t->n--;
			rc = 0;
		}
	} else if (S_ISDIR(st.st_mode)) {
		const struct backup_node *sub = pn && pn->type == BACKUP_NODE_DIR ? pn : NULL;
		n->type = BACKUP_NODE_DIR;
		a->st.dirs++;
		if (top)
			a->root_dev = st.st_dev;
		if (!top && a->o->one_file_system && st.st_dev != a->root_dev) {
			struct backup_tree empty = {0};
			rc = backup_save_tree(a->r, &empty, n->subtree, err);
		} else {
			rc = save_dir(a, path, sub, t, t->n - 1, err);
		}
	} else if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t k = readlink(path, target, PATH_MAX);
		n->type = BACKUP_NODE_SYMLINK;
		a->st.others++;
		if (k < 0) {
			unreadable(a, path, errno);
			backup_node_clear(n);
			t->n--;
			return 0;
		}
		n->target = ward_strndup(target, (size_t)k);
	} else {
		n->type = S_ISFIFO(st.st_mode)  ? BACKUP_NODE_FIFO
		          : S_ISCHR(st.st_mode) ? BACKUP_NODE_CHARDEV
		          : S_ISBLK(st.st_mode) ? BACKUP_NODE_BLOCKDEV
		                                : BACKUP_NODE_SOCKET;
		a->st.others++;
	}
	return rc;
}

/* Reads a directory into a tree of its own and defers saving it: its id reaches
 * parent->v[pidx].subtree when advance saves it. */
static int save_dir(struct arch *a, const char *path, const struct backup_node *pn,
                    struct backup_tree *parent, size_t pidx, struct ward_err *err) {
	struct backup_tree *t = ward_xcalloc(1, sizeof(*t)), pt = {0};
	bool have_parent = false;
	char **names = NULL;
	size_t nn = 0, cap = 0;
	struct buf child = BUF_INIT;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	d = opendir(path);
	if (!d) {
		if (errno == ENOENT) {
			warn(a, path, "vanished during the backup; saved empty");
		} else {
			unreadable(a, path, errno);
		}
		free(t);
		return backup_save_tree(a->r, &pt, parent->v[pidx].subtree, err);
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (nn == cap) {
			cap = cap ? cap * 2 : 32;
			names = ward_xrealloc(names, cap * sizeof(char *));
		}
		names[nn++] = ward_strdup(de->d_name);
	}
	closedir(d);
	if (nn > 1)
		qsort(names, nn, sizeof(char *), name_cmp);
	if (pn) {
		struct ward_err e2;
		have_parent = backup_load_tree(a->r, pn->subtree, &pt, &e2) == 0;
	}
	for (size_t i = 0; i < nn && rc == 0; i++) {
		buf_reset(&child);
		if (strcmp(path, "/") == 0)
			buf_printf(&child, "/%s", names[i]);
		else
			buf_printf(&child, "%s/%s", path, names[i]);
		rc = save_entry(a, child.data, names[i], false, t,
		                have_parent ? backup_tree_find(&pt, names[i]) : NULL, err);
	}
	/* Deferred even after a failure: pends may point into t, and arch_end frees it. */
	defer_tree(a, t, parent, pidx);
	if (rc == 0)
		rc = advance(a, false, err);
	backup_names_free(names, nn);
	buf_free(&child);
	if (have_parent)
		backup_tree_free(&pt);
	return rc;
}

/* ---- the run ---- */
static void scan(struct arch *a, const char *path, bool top, dev_t dev) {
	struct stat st;
	DIR *d;
	struct dirent *de;
	struct buf child = BUF_INIT;
	const char *name = strrchr(path, '/');

	name = name ? name + 1 : path;
	if (lstat(path, &st) != 0)
		return;
	if (!top && a->o->nexclude && backup_glob_match(a->o->exclude, a->o->nexclude, path, name))
		return;
	if (S_ISREG(st.st_mode)) {
		if (top || !a->o->ninclude ||
		    backup_glob_match(a->o->include, a->o->ninclude, path, name)) {
			a->prog.files_total++;
			a->prog.bytes_total += (uint64_t)st.st_size;
		}
		return;
	}
	if (!S_ISDIR(st.st_mode) || (!top && a->o->one_file_system && st.st_dev != dev))
		return;
	if (!(d = opendir(path)))
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		buf_reset(&child);
		buf_printf(&child, "%s/%s", strcmp(path, "/") ? path : "", de->d_name);
		scan(a, child.data, false, top ? st.st_dev : dev);
	}
	closedir(d);
	buf_free(&child);
}

static int arch_begin(struct arch *a, struct backup_repo *r, const struct backup_run_opts *o,
                      struct ward_err *err) {
	int rc;
	memset(a, 0, sizeof(*a));
	a->r = r;
	a->o = o;
	backup_chunker_init(&a->cdc, r->chunk_min, r->chunk_avg, r->chunk_max);
	a->rcap = 2 * r->chunk_max + 64 * 1024;
	a->rbuf = ward_xmalloc(a->rcap);
	a->start_ms = ward_mono_ms();
	a->last_ms = a->start_ms;
	a->stored0 = r->bytes_stored;
	a->added0 = r->data_added;
	a->added_blobs0 = r->data_added_blobs;
	rc = backup_lock(r, false, err);
	if (rc == 0)
		rc = backup_load_index(r, false, NULL, NULL, err);
	return rc;
}

static void arch_end(struct arch *a) {
	free(a->rbuf);
	free(a->pend);
	for (size_t i = a->dq_head; i < a->ndq; i++) {
		backup_tree_free(a->dq[i].t);
		free(a->dq[i].t);
	}
	free(a->dq);
	backup_names_free(a->unreadable, a->nunreadable);
	for (size_t i = 0; i < a->nlinks; i++)
		free(a->links[i].content);
	free(a->links);
	backup_unlock(a->r);
}

static bool same_paths(const struct backup_snapshot *s, char **paths, size_t n) {
	if (s->npaths != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->paths[i], paths[i]) != 0)
			return false;
	return true;
}

/* The parent: o->parent, else the latest snapshot of the same host, job and paths. */
static int find_parent(struct arch *a, const char *host, char **paths, size_t n,
                       struct backup_snapshot **out, struct ward_err *err) {
	struct backup_snapshot *v = NULL;
	size_t nv = 0;
	int rc;

	*out = NULL;
	if (a->o->parent)
		return backup_snapshot_find(a->r, a->o->parent, NULL, out, err);
	rc = backup_snapshots(a->r, &v, &nv, err);
	if (rc)
		return rc;
	for (size_t i = nv; i > 0; i--) {
		struct backup_snapshot *s = &v[i - 1];
		if (ward_streq(s->host, host) && ward_streq(s->job, a->o->job) &&
		    same_paths(s, paths, n)) {
			rc = backup_snapshot_find(a->r, s->id, NULL, out, err);
			break;
		}
	}
	backup_snapshots_free(v, nv);
	return rc;
}

static int finish(struct arch *a, int64_t time_ns, const char *host, char **paths, size_t npaths,
                  const uint8_t tree[BACKUP_ID_LEN], const struct backup_snapshot *parent,
                  struct backup_snapshot **out, struct ward_err *err) {
	struct backup_snapshot *s = ward_xcalloc(1, sizeof(*s));
	char user[64];
	struct passwd pw, *res = NULL;
	char tmp[1024];
	int rc = backup_flush(a->r, err);

	if (rc == 0 && a->o->before_commit && a->o->before_commit(a->o->cb_arg, err) != 0)
		rc = BACKUP_ERR_SOURCE;
	if (rc) {
		free(s);
		return rc;
	}
	if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(user, sizeof(user), "%s", res->pw_name);
	else
		snprintf(user, sizeof(user), "%u", (unsigned)getuid());
	s->time_ns = time_ns;
	s->host = ward_strdup(host);
	s->user = ward_strdup(user);
	s->job = a->o->job ? ward_strdup(a->o->job) : NULL;
	s->paths = ward_xcalloc(npaths + 1, sizeof(char *));
	for (size_t i = 0; i < npaths; i++)
		s->paths[i] = ward_strdup(paths[i]);
	s->npaths = npaths;
	s->tags = ward_xcalloc(a->o->ntags + 1, sizeof(char *));
	for (size_t i = 0; i < a->o->ntags; i++)
		s->tags[i] = ward_strdup(a->o->tags[i]);
	s->ntags = a->o->ntags;
	memcpy(s->tree, tree, BACKUP_ID_LEN);
	if (parent) {
		s->has_parent = true;
		ward_unhex(parent->id, strlen(parent->id), s->parent, BACKUP_ID_LEN);
	}
	s->partial = a->nunreadable > 0;
	s->unreadable = a->unreadable;
	s->nunreadable = a->nunreadable;
	a->unreadable = NULL;
	a->nunreadable = 0;
	a->st.bytes_stored = a->r->bytes_stored - a->stored0;
	a->st.duration_ms = ward_mono_ms() - a->start_ms;
	s->stats = a->st;
	rc = backup_write_snapshot(a->r, s, err);
	progress(a, NULL, true);
	if (rc || !out)
		backup_snapshot_free(s);
	else
		*out = s;
	return rc;
}

int backup_run_paths(struct backup_repo *r, const char *const *paths, size_t npaths,
                     const struct backup_run_opts *o, struct backup_snapshot **out,
                     struct ward_err *err) {
	static const struct backup_run_opts none = {0};
	struct arch a;
	struct backup_tree root = {0}, ptree = {0};
	struct backup_snapshot *parent = NULL;
	char **abs = NULL, host[256];
	uint8_t tree_id[BACKUP_ID_LEN];
	bool have_ptree = false;
	int64_t t0 = (int64_t)ward_now_ms() * 1000000;
	int rc;

	if (out)
		*out = NULL;
	if (!o)
		o = &none;
	if (npaths == 0) {
		ward_err_set(err, "nothing to back up: give at least one path");
		return BACKUP_ERR_USAGE;
	}
	abs = ward_xcalloc(npaths, sizeof(char *));
	for (size_t i = 0; i < npaths; i++) {
		abs[i] = realpath(paths[i], NULL);
		if (!abs[i]) {
			ward_err_set(err, "cannot back up %s: %s", paths[i], strerror(errno));
			rc = errno == ENOENT ? BACKUP_ERR_NOTFOUND : BACKUP_ERR_IO;
			backup_names_free(abs, i);
			return rc;
		}
	}
	for (size_t i = 0; i < npaths; i++)
		for (size_t j = 0; j < i; j++) {
			const char *bi = strrchr(abs[i], '/') + 1, *bj = strrchr(abs[j], '/') + 1;
			if (strcmp(bi, bj) == 0) {
				ward_err_set(err,
				             "%s and %s have the same name \"%s\": a snapshot "
				             "holds each path under its last component",
				             abs[j], abs[i], bi);
				backup_names_free(abs, npaths);
				return BACKUP_ERR_USAGE;
			}
		}
	if (o->host)
		snprintf(host, sizeof(host), "%s", o->host);
	else if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	rc = arch_begin(&a, r, o, err);
	if (rc)
		goto out;
	rc = find_parent(&a, host, abs, npaths, &parent, err);
	if (rc == BACKUP_ERR_NOTFOUND && !o->parent)
		rc = 0;
	if (rc)
		goto out;
	if (parent) {
		struct ward_err e2;
		have_ptree = backup_load_tree(r, parent->tree, &ptree, &e2) == 0;
	}
	if (o->progress)
		for (size_t i = 0; i < npaths; i++)
			scan(&a, abs[i], true, 0);
	for (size_t i = 0; i < npaths && rc == 0; i++) {
		const char *name = strrchr(abs[i], '/') + 1;
		if (!name[0])
			name = "root";
		rc = save_entry(&a, abs[i], name, true, &root,
		                have_ptree ? backup_tree_find(&ptree, name) : NULL, err);
	}
	if (rc == 0)
		rc = advance(&a, true, err);
	if (rc)
		goto out;
	backup_tree_sort(&root);
	rc = backup_save_tree(r, &root, tree_id, err);
	if (rc == 0)
		rc = finish(&a, t0, host, abs, npaths, tree_id, parent, out, err);
out:
	if (rc)
		backup_flush(r, NULL); /* keep what was stored: the next run reuses it */
	arch_end(&a);
	backup_tree_free(&root);
	if (have_ptree)
		backup_tree_free(&ptree);
	backup_snapshot_free(parent);
	backup_names_free(abs, npaths);
	return rc;
}

int backup_run_stream(struct backup_repo *r, int fd, const char *name,
                      const struct backup_run_opts *o, struct backup_snapshot **out,
                      struct ward_err *err) {
	static const struct backup_run_opts none = {0};
	struct arch a;
	struct backup_tree root = {0};
	struct backup_node *n;
	char host[256], *paths[1];
	uint8_t tree_id[BACKUP_ID_LEN];
	uint64_t nread = 0;
	int64_t t0 = (int64_t)ward_now_ms() * 1000000;
	int rc;

	if (out)
		*out = NULL;
	if (!o)
		o = &none;
	if (!name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
		ward_err_set(err, "the stream needs a file name without '/' (got \"%s\")",
		             name ? name : "");
		return BACKUP_ERR_USAGE;
	}
	if (o->host)
		snprintf(host, sizeof(host), "%s", o->host);
	else if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	rc = arch_begin(&a, r, o, err);
	if (rc)
		goto out;
	n = backup_tree_push(&root);
	n->name = ward_strdup(name);
	n->type = BACKUP_NODE_FILE;
	n->mode = 0600;
	n->uid = getuid();
	n->gid = getgid();
	n->nlink = 1;
	rc = chunk_fd(&a, fd, &root, 0, &nread, name, err);
	if (rc > 0) {
		ward_err_set(err, "cannot read the stream: %s", strerror(rc));
		rc = BACKUP_ERR_IO;
	}
	if (rc == 0)
		rc = advance(&a, true, err);
	if (rc)
		goto out;
	n = &root.v[0];
	n->size = nread;
	n->mtime_ns = (int64_t)ward_now_ms() * 1000000;
	a.st.files = 1;
	a.st.files_new = 1;
	a.st.bytes_total = nread;
	a.prog.files_done = 1;
	rc = backup_save_tree(r, &root, tree_id, err);
	paths[0] = (char *)name;
	if (rc == 0)
		rc = finish(&a, t0, host, paths, 1, tree_id, NULL, out, err);
out:
	if (rc)
		backup_flush(r, NULL);
	arch_end(&a);
	backup_tree_free(&root);
	return rc;
}
