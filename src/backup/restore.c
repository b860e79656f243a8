/* restore.c: reading snapshots back: ls (walk a snapshot's trees), diff (merge two trees by
 * name, skipping identical subtrees by id), and restore (recreate files, directories,
 * symlinks, hard links, fifos and devices under a target with their modes and times, and
 * ownership when root). A chunk that fails verification fails only the files that use it:
 * they are removed and reported, everything else is restored. Files with the same content
 * list are decoded once; the others are copied from the first in the kernel. Names come from the tree
 * decoder, which refuses '/', "." and "..", so nothing is written outside the target.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backup/backup_internal.h"

const char *backup_node_type_name(enum backup_node_type t) {
	static const char *const names[] = {"file",    "dir",      "symlink", "fifo",
	                                    "chardev", "blockdev", "socket"};
	return (unsigned)t <= BACKUP_NODE_SOCKET ? names[t] : "unknown";
}

/* ---- ls ---- */
static int ls_walk(struct backup_repo *r, const uint8_t id[BACKUP_ID_LEN], struct buf *path,
                   bool recursive, backup_ls_fn fn, void *arg, struct ward_err *err) {
	struct backup_tree t;
	size_t base = path->len;
	int rc = backup_load_tree(r, id, &t, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		path->len = base;
		buf_printf(path, "/%s", t.v[i].name);
		rc = fn(path->data, &t.v[i], arg);
		if (rc == 0 && recursive && t.v[i].type == BACKUP_NODE_DIR)
			rc = ls_walk(r, t.v[i].subtree, path, true, fn, arg, err);
	}
	path->len = base;
	if (path->data)
		path->data[base] = '\0';
	backup_tree_free(&t);
	return rc;
}

int backup_ls(struct backup_repo *r, const struct backup_snapshot *s, const char *path,
              bool recursive, backup_ls_fn fn, void *arg, struct ward_err *err) {
	uint8_t cur[BACKUP_ID_LEN];
	struct buf p = BUF_INIT;
	char *copy, *save = NULL, *comp;
	int rc = backup_load_index(r, false, NULL, NULL, err);

	if (rc)
		return rc;
	memcpy(cur, s->tree, BACKUP_ID_LEN);
	copy = ward_strdup(path ? path : "/");
	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		struct backup_tree t;
		const struct backup_node *n;
		rc = backup_load_tree(r, cur, &t, err);
		if (rc)
			goto out;
		n = backup_tree_find(&t, comp);
		buf_printf(&p, "/%s", comp);
		if (!n) {
			ward_err_set(err, "%s is not in snapshot %.8s", p.data, s->id);
			backup_tree_free(&t);
			rc = BACKUP_ERR_NOTFOUND;
			goto out;
		}
		if (n->type != BACKUP_NODE_DIR) {
			char *rest = strtok_r(NULL, "/", &save);
			if (rest) {
				ward_err_set(err, "%s is not a directory", p.data);
				rc = BACKUP_ERR_NOTFOUND;
			} else {
				rc = fn(p.data, n, arg);
			}
			backup_tree_free(&t);
			goto out;
		}
		memcpy(cur, n->subtree, BACKUP_ID_LEN);
		backup_tree_free(&t);
	}
	rc = ls_walk(r, cur, &p, recursive, fn, arg, err);
out:
	free(copy);
	buf_free(&p);
	return rc;
}

/* ---- diff ---- */
static int diff_all(struct backup_repo *r, const struct backup_node *n, struct buf *path, char c,
                    backup_diff_fn fn, void *arg, struct ward_err *err) {
	struct backup_tree t;
	size_t base = path->len;
	int rc;

	fn(c, path->data, arg);
	if (n->type != BACKUP_NODE_DIR)
		return 0;
	rc = backup_load_tree(r, n->subtree, &t, err);
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		path->len = base;
		buf_printf(path, "/%s", t.v[i].name);
		rc = diff_all(r, &t.v[i], path, c, fn, arg, err);
	}
	path->len = base;
	path->data[base] = '\0';
	if (rc == 0)
		backup_tree_free(&t);
	return rc;
}

static bool file_differs(const struct backup_node *a, const struct backup_node *b) {
	if (a->size != b->size || a->mtime_ns != b->mtime_ns || a->mode != b->mode ||
	    a->uid != b->uid || a->gid != b->gid || a->ncontent != b->ncontent)
		return true;
	if (a->ncontent && memcmp(a->content, b->content, a->ncontent * BACKUP_ID_LEN) != 0)
		return true;
	if (a->type == BACKUP_NODE_SYMLINK && !ward_streq(a->target, b->target))
		return true;
	return a->rdev != b->rdev;
}

static int diff_trees(struct backup_repo *r, const uint8_t ta[BACKUP_ID_LEN],
                      const uint8_t tb[BACKUP_ID_LEN], struct buf *path, backup_diff_fn fn,
                      void *arg, struct ward_err *err) {
	struct backup_tree a = {0}, b = {0};
	size_t i = 0, j = 0, base = path->len;
	int rc;

	if (memcmp(ta, tb, BACKUP_ID_LEN) == 0)
		return 0;
	rc = backup_load_tree(r, ta, &a, err);
	if (rc)
		return rc;
	rc = backup_load_tree(r, tb, &b, err);
	if (rc) {
		backup_tree_free(&a);
		return rc;
	}
	while ((i < a.n || j < b.n) && rc == 0) {
		int c = i >= a.n ? 1 : j >= b.n ? -1 : strcmp(a.v[i].name, b.v[j].name);
		path->len = base;
		buf_printf(path, "/%s", c <= 0 ? a.v[i].name : b.v[j].name);
		if (c < 0) {
			rc = diff_all(r, &a.v[i++], path, '-', fn, arg, err);
		} else if (c > 0) {
			rc = diff_all(r, &b.v[j++], path, '+', fn, arg, err);
		} else {
			const struct backup_node *x = &a.v[i++], *y = &b.v[j++];
			if (x->type != y->type) {
				fn('T', path->data, arg);
			} else if (x->type == BACKUP_NODE_DIR) {
				if (x->mode != y->mode || x->uid != y->uid || x->gid != y->gid)
					fn('M', path->data, arg);
				rc = diff_trees(r, x->subtree, y->subtree, path, fn, arg, err);
			} else if (file_differs(x, y)) {
				fn('M', path->data, arg);
			}
		}
	}
	path->len = base;
	if (path->data)
		path->data[base] = '\0';
	backup_tree_free(&a);
	backup_tree_free(&b);
	return rc;
}

int backup_diff(struct backup_repo *r, const struct backup_snapshot *a,
                const struct backup_snapshot *b, backup_diff_fn fn, void *arg,
                struct ward_err *err) {
	struct buf path = BUF_INIT;
	int rc = backup_load_index(r, false, NULL, NULL, err);
	if (rc == 0)
		rc = diff_trees(r, a->tree, b->tree, &path, fn, arg, err);
	buf_free(&path);
	return rc;
}

/* ---- restore ---- */
/* Workers creating and writing files: decryption, decompression and writes of several
 * files overlap. Files queued at most: bounds memory, and how far ahead the walk prefetches. */
#define RESTORE_THREADS 2
#define RESTORE_QUEUE   64

struct rjob {
	struct rjob *next;
	int fd;
	char *dst, *spath;
	struct backup_node n; /* content and metadata (name and target unused) */
	size_t same;          /* index in rst.same of the content list, or SIZE_MAX */
	char *copy_from;      /* a finished file with the same content list, or NULL */
	uint64_t copy_bytes;  /* its length */
};

/* Files with the same content list (copies of a file under other names) are decoded once:
 * a later one is copied from the first in the kernel once that one is written, instead of
 * reading, decrypting, decompressing and verifying the same chunks again. An entry is
 * "done" once its file is completely written and closed. */
struct same_file {
	uint64_t key; /* of the content list */
	uint8_t (*content)[BACKUP_ID_LEN];
	size_t ncontent;
	char *path;
	uint64_t bytes;
	bool done;
};

struct link_seen {
	uint64_t dev, ino;
	char *path;
};

/* A restored directory whose mode, owner and times are set once every worker is done
 * (workers create files in it until then); kept in the order the walk finished them,
 * children before parents, so a read-only directory is locked only after its contents. */
struct dir_done {
	char *path;
	struct backup_node meta; /* no name, target or content */
};

struct rst {
	struct backup_repo *r;
	const struct backup_restore_opts *o;
	struct backup_restore_result *res;
	struct backup_progress prog;
	int64_t start_ms, last_ms;
	struct link_seen *links;
	size_t nlinks;
	struct dir_done *dirs;
	size_t ndirs, dirs_cap;
	bool root;
	size_t target_len; /* of the target directory prefix in dst */
	/* Files are created and written by worker threads, so creating many small files
	 * (the walk's bottleneck) runs on every core; the walk (this thread) makes the
	 * directories and queues the files, and directories get their metadata at the end. */
	pthread_mutex_t mu; /* guards res, prog, the callbacks and everything below */
	pthread_cond_t cv_work, cv_space;
	pthread_t th[RESTORE_THREADS];
	int nth;
	struct rjob *head, *tail;
	size_t queued;
	bool stop;
	int rc; /* first fatal error of a worker (disk full) */
	struct ward_err err;
	struct same_file *same; /* by index (stable: jobs keep one); under mu */
	size_t same_n, same_cap;
	size_t *same_slot; /* open addressing by key: index + 1, 0 = empty; under mu */
	size_t nslots;
};

static void rwarn(struct rst *s, const char *path, const char *fmt, ...) WARD_PRINTF(3, 4);
static void rwarn(struct rst *s, const char *path, const char *fmt, ...) {
	char msg[WARD_ERR_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->mu);
	s->res->errors++;
	if (s->o->warn)
		s->o->warn(path, msg, s->o->cb_arg);
	pthread_mutex_unlock(&s->mu);
}

static void set_meta(struct rst *s, const char *dst, const struct backup_node *n, int fd) {
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = (time_t)(n->mtime_ns / 1000000000);
	ts[0].tv_nsec = ts[1].tv_nsec = (long)(n->mtime_ns % 1000000000);
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_nsec += 1000000000;
		ts[1].tv_nsec += 1000000000;
		ts[0].tv_sec--;
		ts[1].tv_sec--;
	}
	if (n->type == BACKUP_NODE_SYMLINK) {
		if (s->root && lchown(dst, n->uid, n->gid) != 0)
			rwarn(s, dst, "cannot set the owner: %s", strerror(errno));
		utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW);
		return;
	}
	if (s->root && (fd >= 0 ? fchown(fd, n->uid, n->gid) : chown(dst, n->uid, n->gid)) != 0)
		rwarn(s, dst, "cannot set the owner: %s", strerror(errno));
	if ((fd >= 0 ? fchmod(fd, n->mode) : chmod(dst, n->mode)) != 0)
		rwarn(s, dst, "cannot set the mode: %s", strerror(errno));
	if (fd >= 0)
		futimens(fd, ts);
	else
		utimensat(AT_FDCWD, dst, ts, 0);
}

/* Makes dst a directory, replacing whatever non-directory is there. */
static int ensure_dir(const char *dst) {
	struct stat st;
	if (lstat(dst, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		if (unlink(dst) != 0)
			return -1;
	}
	return mkdir(dst, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static void remove_existing(const char *dst) {
	struct stat st;
	if (lstat(dst, &st) == 0 && !S_ISDIR(st.st_mode))
		unlink(dst);
}

/* Creates the file dst to write: a new name at once, else whatever is there (a file, a
 * symlink, a fifo) is unlinked first, so nothing is ever written through a link. -1 with
 * errno when it cannot be made. */
static int create_file(const char *dst, bool rw) {
	int fl = (rw ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = open(dst, fl, 0600);
	if (fd < 0 && errno == EEXIST) {
		remove_existing(dst);
		fd = open(dst, fl, 0600);
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static uint64_t content_key(const struct backup_node *n) {
	uint64_t h = 0xcbf29ce484222325ull ^ n->ncontent;
	for (size_t i = 0; i < n->ncontent; i++) {
		uint64_t v;
		memcpy(&v, n->content[i], sizeof(v)); /* ids are keyed hashes: well mixed */
		h = (h ^ v) * 0x100000001b3ull;
	}
	return h ? h : 1;
}

/* Finds the entry of n's content list, or makes one for dst. Main thread, under mu. */
static size_t same_find(struct rst *s, const struct backup_node *n, const char *dst, bool *found) {
	uint64_t key = content_key(n);
	size_t i, mask;
	struct same_file *e;

	if (2 * (s->same_n + 1) > s->nslots) {
		size_t nslots = s->nslots ? 2 * s->nslots : 1024;
		size_t *v = ward_xcalloc(nslots, sizeof(*v));
		for (size_t k = 0; k < s->same_n; k++) {
			for (i = s->same[k].key & (nslots - 1); v[i]; i = (i + 1) & (nslots - 1))
				;
			v[i] = k + 1;
		}
		free(s->same_slot);
		s->same_slot = v;
		s->nslots = nslots;
	}
	mask = s->nslots - 1;
	for (i = key & mask; s->same_slot[i]; i = (i + 1) & mask) {
		e = &s->same[s->same_slot[i] - 1];
		if (e->key == key && e->ncontent == n->ncontent &&
		    memcmp(e->content, n->content, n->ncontent * BACKUP_ID_LEN) == 0) {
			*found = true;
			return s->same_slot[i] - 1;
		}
	}
	*found = false;
	if (s->same_n == s->same_cap) {
		s->same_cap = s->same_cap ? 2 * s->same_cap : 256;
		s->same = ward_xrealloc(s->same, s->same_cap * sizeof(*s->same));
	}
	e = &s->same[s->same_n];
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->content = ward_xmalloc(n->ncontent * BACKUP_ID_LEN);
	memcpy(e->content, n->content, n->ncontent * BACKUP_ID_LEN);
	e->ncontent = n->ncontent;
	e->path = ward_strdup(dst);
	s->same_slot[i] = ++s->same_n;
	return s->same_n - 1;
}

/* Copies j->copy_from into j->fd in the kernel. 0, or -1 when the copy did not work out
 * (j->fd is then empty again and the content is to be decoded). */
static int copy_same(struct rst *s, struct rjob *j) {
	uint64_t done = 0;
	int src = open(j->copy_from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (src < 0)
		return -1;
	while (done < j->copy_bytes) {
		ssize_t k = copy_file_range(src, NULL, j->fd, NULL, (size_t)(j->copy_bytes - done), 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		done += (uint64_t)k;
	}
	close(src);
	if (done != j->copy_bytes) {
		/* Start over empty; should even that fail, the decoding writes report it. */
		if (ftruncate(j->fd, 0) == 0)
			lseek(j->fd, 0, SEEK_SET);
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	s->res->bytes += done;
	s->prog.bytes_done += done;
	backup_progress_emit(&s->prog, s->start_ms, &s->last_ms, false, s->o->progress,
	                     s->o->cb_arg);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Writes one file's content (a worker thread). Returns 0, or BACKUP_ERR_IO / CANCELLED. */
static int write_content(struct rst *s, struct backup_reader *rd, struct buf *blob, struct rjob *j,
                         struct ward_err *err) {
	const struct backup_node *n = &j->n;
	uint64_t written = 0;

	if (j->copy_from && copy_same(s, j) == 0)
		return 0;
	for (size_t i = 0; i < n->ncontent; i++) {
		struct ward_err e2;
		int rc;
		if (s->o->cancel && *s->o->cancel) {
			ward_err_set(err, "restore cancelled");
			return BACKUP_ERR_CANCELLED;
		}
		ward_err_clear(&e2);
		rc = backup_reader_get(s->r, rd, n->content[i], blob, &e2);
		if (rc) {
			unlink(j->dst);
			rwarn(s, j->spath, "not restored: %s", e2.msg);
			if (rc == BACKUP_ERR_IO) {
				ward_err_set(err, "%s", e2.msg);
				return rc;
			}
			return 1;
		}
		if (write_all(j->fd, blob->data, blob->len) != 0) {
			ward_err_set(err, "cannot write %s: %s", j->dst, strerror(errno));
			return BACKUP_ERR_IO;
		}
		written += blob->len;
		pthread_mutex_lock(&s->mu);
		s->res->bytes += blob->len;
		s->prog.bytes_done += blob->len;
		backup_progress_emit(&s->prog, s->start_ms, &s->last_ms, false, s->o->progress,
		                     s->o->cb_arg);
		pthread_mutex_unlock(&s->mu);
	}
	if (s->o->verify) {
		/* Read the file back and compare each chunk's keyed hash. */
		off_t off = 0;
		for (size_t i = 0; i < n->ncontent; i++) {
			const struct bindex_ent *e = bindex_get(&s->r->idx, n->content[i]);
			uint8_t id[BACKUP_ID_LEN];
			buf_reset(blob);
			buf_reserve(blob, e->raw_len + 1);
			if (pread(j->fd, blob->data, e->raw_len, off) != (ssize_t)e->raw_len) {
				rwarn(s, j->spath, "verification failed: %s is short", j->dst);
				break;
			}
			backup_blob_id(&s->r->id_key, blob->data, e->raw_len, id);
			if (memcmp(id, n->content[i], BACKUP_ID_LEN) != 0) {
				rwarn(s, j->spath, "verification failed: %s differs", j->dst);
				break;
			}
			off += e->raw_len;
		}
	}
	j->copy_bytes = written;
	return 0;
}

static void job_free(struct rjob *j) {
	free(j->copy_from);
	free(j->dst);
	free(j->spath);
	free(j->n.content);
	free(j);
}

static void *restore_worker(void *arg) {
	struct rst *s = arg;
	struct backup_reader *rd = backup_reader_new();
	struct buf blob = BUF_INIT;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct rjob *j;
		struct ward_err e2;
		int rc;

		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cv_work, &s->mu);
		if (!s->head)
			break;
		j = s->head;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		pthread_cond_broadcast(&s->cv_space);
		if (s->rc) {
			if (j->fd >= 0)
				close(j->fd);
			job_free(j);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		if (j->fd < 0 && (j->fd = create_file(j->dst, s->o->verify)) < 0) {
			rwarn(s, j->spath, "cannot create %s: %s", j->dst, strerror(errno));
			job_free(j);
			pthread_mutex_lock(&s->mu);
			continue;
		}
		ward_err_clear(&e2);
		rc = write_content(s, rd, &blob, j, &e2);
		if (rc == 0)
			set_meta(s, j->dst, &j->n, j->fd);
		if (close(j->fd) != 0 && rc == 0) {
			ward_err_set(&e2, "cannot write %s: %s", j->dst, strerror(errno));
			rc = BACKUP_ERR_IO;
		}
		pthread_mutex_lock(&s->mu);
		if (rc == 0) {
			s->res->files++;
			s->prog.files_done++;
			if (j->same != SIZE_MAX && !j->copy_from) {
				s->same[j->same].done = true;
				s->same[j->same].bytes = j->copy_bytes;
			}
		} else if (rc < 0 && !s->rc) {
			s->rc = rc;
			s->err = e2;
		}
		job_free(j);
	}
	pthread_mutex_unlock(&s->mu);
	backup_reader_free(rd);
	buf_free(&blob);
	return NULL;
}

/* Queues a file for a worker, which creates it and writes its content (directories get
 * their times once every worker is done). The first name of a hard-linked inode is created
 * here, so its other names can link to it at once. */
static int restore_file(struct rst *s, const char *dst, const char *spath,
                        const struct backup_node *n, struct ward_err *err) {
	struct rjob *j;
	int fd = -1, rc = 0;
	bool prefetch;

	if (n->nlink > 1) {
		for (size_t i = 0; i < s->nlinks; i++)
			if (s->links[i].dev == n->dev && s->links[i].ino == n->inode) {
				remove_existing(dst);
				if (link(s->links[i].path, dst) == 0) {
					pthread_mutex_lock(&s->mu);
					s->res->files++;
					pthread_mutex_unlock(&s->mu);
					return 0;
				}
				break; /* fall back to a copy */
			}
	}
	backup_lock_refresh(s->r);
	if (n->nlink > 1) {
		fd = create_file(dst, s->o->verify);
		if (fd < 0) {
			rwarn(s, spath, "cannot create %s: %s", dst, strerror(errno));
			return 0;
		}
		s->links = ward_xrealloc(s->links, (s->nlinks + 1) * sizeof(*s->links));
		s->links[s->nlinks].dev = n->dev;
		s->links[s->nlinks].ino = n->inode;
		s->links[s->nlinks].path = ward_strdup(dst);
		s->nlinks++;
	}
	j = ward_xcalloc(1, sizeof(*j));
	j->same = SIZE_MAX;
	if (n->ncontent && !s->o->verify) {
		bool found;
		size_t k;
		pthread_mutex_lock(&s->mu);
		k = same_find(s, n, dst, &found);
		if (!found)
			j->same = k; /* this file is the one decoded */
		else if (s->same[k].done) {
			j->copy_from = ward_strdup(s->same[k].path);
			j->copy_bytes = s->same[k].bytes;
		}
		pthread_mutex_unlock(&s->mu);
	}
	j->fd = fd;
	j->dst = ward_strdup(dst);
	j->spath = ward_strdup(spath);
	j->n = *n;
	j->n.name = NULL;
	j->n.target = NULL;
	j->n.content = NULL;
	if (n->ncontent) {
		j->n.content = ward_xmalloc(n->ncontent * BACKUP_ID_LEN);
		memcpy(j->n.content, n->content, n->ncontent * BACKUP_ID_LEN);
	}
	prefetch = !j->copy_from && n->ncontent; /* j is the workers' once queued */
	pthread_mutex_lock(&s->mu);
	while (s->queued >= RESTORE_QUEUE && !s->rc)
		pthread_cond_wait(&s->cv_space, &s->mu);
	if (s->rc) {
		ward_err_set(err, "%s", s->err.msg);
		rc = s->rc;
		if (fd >= 0)
			close(fd);
		job_free(j);
	} else {
		if (s->tail)
			s->tail->next = j;
		else
			s->head = j;
		s->tail = j;
		s->queued++;
		pthread_cond_signal(&s->cv_work);
	}
	pthread_mutex_unlock(&s->mu);
	/* The workers are up to RESTORE_QUEUE files behind: start reading what they need. */
	if (rc == 0 && prefetch)
		backup_prefetch(s->r, n->content, n->ncontent);
	return rc;
}

static int restore_node(struct rst *s, const struct backup_node *n, struct buf *dst,
                        struct buf *spath, bool selected, struct ward_err *err);

/* Restores a directory's entries; the directory itself exists when made is true. */
static int restore_dir(struct rst *s, const struct backup_node *dn, struct buf *dst,
                       struct buf *spath, bool selected, struct ward_err *err) {
	struct backup_tree t;
	struct ward_err e2;
	size_t dbase = dst->len, sbase = spath->len;
	int rc;

	ward_err_clear(&e2);
	rc = backup_load_tree(s->r, dn->subtree, &t, &e2);
	if (rc) {
		rwarn(s, spath->len ? spath->data : "/", "directory not restored: %s", e2.msg);
		if (rc == BACKUP_ERR_IO)
			ward_err_set(err, "%s", e2.msg);
		return rc == BACKUP_ERR_IO ? rc : 0;
	}
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		dst->len = dbase;
		spath->len = sbase;
		buf_printf(dst, "/%s", t.v[i].name);
		buf_printf(spath, "/%s", t.v[i].name);
		rc = restore_node(s, &t.v[i], dst, spath, selected, err);
	}
	dst->len = dbase;
	dst->data[dbase] = '\0';
	spath->len = sbase;
	if (spath->data)
		spath->data[sbase] = '\0';
	backup_tree_free(&t);
	return rc;
}

/* Makes every missing ancestor of dst below the target (for entries selected by include
 * whose parents were not). */
static int make_parents(const char *dst, size_t target_len) {
	char *p = ward_strdup(dst);
	int rc = 0;
	for (char *q = p + target_len + 1; (q = strchr(q, '/')); q++) {
		*q = '\0';
		if (ensure_dir(p) != 0)
			rc = -1;
		*q = '/';
	}
	free(p);
	return rc;
}

static int restore_node(struct rst *s, const struct backup_node *n, struct buf *dst,
                        struct buf *spath, bool selected, struct ward_err *err) {
	const char *name = strrchr(spath->data, '/') + 1;
	int rc = 0;

	if (!selected && s->o->ninclude &&
	    backup_glob_match(s->o->include, s->o->ninclude, spath->data, name))
		selected = true;
	if (!s->o->ninclude)
		selected = true;
	if (n->type == BACKUP_NODE_DIR) {
		if (selected) {
			if ((s->o->ninclude && make_parents(dst->data, s->target_len) != 0) ||
			    ensure_dir(dst->data) != 0) {
				rwarn(s, spath->data, "cannot create %s: %s", dst->data,
				      strerror(errno));
				return 0;
			}
		}
		rc = restore_dir(s, n, dst, spath, selected, err);
		if (selected && rc == 0) {
			struct dir_done *d;
			if (s->ndirs == s->dirs_cap) {
				s->dirs_cap = s->dirs_cap ? 2 * s->dirs_cap : 64;
				s->dirs = ward_xrealloc(s->dirs, s->dirs_cap * sizeof(*s->dirs));
			}
			d = &s->dirs[s->ndirs++];
			d->path = ward_strdup(dst->data);
			d->meta = *n;
			d->meta.name = d->meta.target = NULL;
			d->meta.content = NULL;
			d->meta.ncontent = 0;
			pthread_mutex_lock(&s->mu);
			s->res->dirs++;
			pthread_mutex_unlock(&s->mu);
		}
		return rc;
	}
	if (!selected)
		return 0;
	/* Without includes the walk made every parent already. */
	if (s->o->ninclude && make_parents(dst->data, s->target_len) != 0) {
		rwarn(s, spath->data, "cannot create the parents of %s: %s", dst->data,
		      strerror(errno));
		return 0;
	}
	switch (n->type) {
	case BACKUP_NODE_FILE:
		return restore_file(s, dst->data, spath->data, n, err);
	case BACKUP_NODE_SYMLINK:
		remove_existing(dst->data);
		if (symlink(n->target ? n->target : "", dst->data) != 0) {
			rwarn(s, spath->data, "cannot create the symlink %s: %s", dst->data,
			      strerror(errno));
			return 0;
		}
		break;
	case BACKUP_NODE_FIFO:
		remove_existing(dst->data);
		if (mkfifo(dst->data, 0600) != 0) {
			rwarn(s, spath->data, "cannot create the fifo %s: %s", dst->data,
			      strerror(errno));
			return 0;
		}
		break;
	case BACKUP_NODE_CHARDEV:
	case BACKUP_NODE_BLOCKDEV:
		if (!s->root)
			return 0; /* only root can make devices; not an error of the backup */
		remove_existing(dst->data);
		if (mknod(dst->data, (n->type == BACKUP_NODE_CHARDEV ? S_IFCHR : S_IFBLK) | 0600,
		          (dev_t)n->rdev) != 0) {
			rwarn(s, spath->data, "cannot create the device %s: %s", dst->data,
			      strerror(errno));
			return 0;
		}
		break;
	default:
		return 0; /* sockets are recreated by their servers */
	}
	set_meta(s, dst->data, n, -1);
	pthread_mutex_lock(&s->mu);
	s->res->others++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int backup_restore(struct backup_repo *r, const struct backup_snapshot *snap, const char *target,
                   const struct backup_restore_opts *o, struct backup_restore_result *res,
                   struct ward_err *err) {
	static const struct backup_restore_opts none = {0};
	struct rst s;
	struct backup_node root = {0};
	struct buf dst = BUF_INIT, spath = BUF_INIT;
	struct backup_tree t;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	s.r = r;
	s.o = o ? o : &none;
	s.res = res;
	s.root = geteuid() == 0;
	s.start_ms = s.last_ms = ward_mono_ms();
	s.prog.bytes_total = s.o->ninclude ? 0 : snap->stats.bytes_total;
	s.prog.files_total = s.o->ninclude ? 0 : snap->stats.files;
	if (!target || !target[0]) {
		ward_err_set(err, "restore needs a target directory");
		return BACKUP_ERR_USAGE;
	}
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv_work, NULL);
	pthread_cond_init(&s.cv_space, NULL);
	rc = backup_lock(r, false, err);
	if (rc)
		goto out;
	rc = backup_load_index(r, false, NULL, NULL, err);
	if (rc)
		goto out;
	if (ward_mkdir_p(target, 0700, err)) {
		rc = BACKUP_ERR_IO;
		goto out;
	}
	buf_puts(&dst, target);
	while (dst.len > 1 && dst.data[dst.len - 1] == '/')
		dst.data[--dst.len] = '\0';
	s.target_len = dst.len;
	/* The root tree: its entries go directly under target. */
	rc = backup_load_tree(r, snap->tree, &t, err);
	if (rc)
		goto out;
	backup_tree_free(&t);
	root.type = BACKUP_NODE_DIR;
	memcpy(root.subtree, snap->tree, BACKUP_ID_LEN);
	buf_puts(&spath, "");
	for (int i = 0; i < RESTORE_THREADS; i++)
		if (pthread_create(&s.th[i], NULL, restore_worker, &s) == 0)
			s.nth++;
	if (s.nth == 0) {
		ward_err_set(err, "cannot start a restore thread");
		rc = BACKUP_ERR_IO;
		goto out;
	}
	rc = restore_dir(&s, &root, &dst, &spath, false, err);
	pthread_mutex_lock(&s.mu);
	s.stop = true;
	pthread_cond_broadcast(&s.cv_work);
	pthread_mutex_unlock(&s.mu);
	for (int i = 0; i < s.nth; i++)
		pthread_join(s.th[i], NULL);
	s.nth = 0;
	for (size_t i = 0; i < s.ndirs; i++)
		set_meta(&s, s.dirs[i].path, &s.dirs[i].meta, -1);
	if (rc == 0 && s.rc) {
		rc = s.rc;
		ward_err_set(err, "%s", s.err.msg);
	}
	if (rc == 0 && s.o->sync) {
		int dfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || syncfs(dfd) != 0) {
			ward_err_set(err, "cannot sync the restored files under %s: %s", target,
			             strerror(errno));
			rc = BACKUP_ERR_IO;
		}
		if (dfd >= 0)
			close(dfd);
	}
	backup_progress_emit(&s.prog, s.start_ms, &s.last_ms, true, s.o->progress, s.o->cb_arg);
out:
	for (size_t i = 0; i < s.nlinks; i++)
		free(s.links[i].path);
	free(s.links);
	for (size_t i = 0; i < s.ndirs; i++)
		free(s.dirs[i].path);
	free(s.dirs);
	for (size_t i = 0; i < s.same_n; i++) {
		free(s.same[i].content);
		free(s.same[i].path);
	}
	free(s.same);
	free(s.same_slot);
	while (s.head) {
		struct rjob *j = s.head;
		s.head = j->next;
		if (j->fd >= 0)
			close(j->fd);
		job_free(j);
	}
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv_work);
	pthread_cond_destroy(&s.cv_space);
	buf_free(&dst);
	buf_free(&spath);
	backup_unlock(r);
	return rc;
}
