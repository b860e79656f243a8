/* stream.c: streamed responses (http_resp_stream) on libmicrohttpd's content-reader callback.
 *
 * The server runs MHD with a thread pool in which each thread polls many connections with
 * epoll, so a reader callback that blocked would stall every other connection of its thread.
 * Producers therefore never block: when one has nothing to send, its connection is
 * suspended (parked: it holds no thread) and put on the parked list; a ticker thread resumes
 * every parked connection each HTTP_STREAM_TICK_MS, and MHD calls the producer again.
 *
 * Invariants (lock = http_streams.lock): a stream is on the parked list exactly while its
 * connection is suspended by us; only the ticker or shutdown resume it, and they take it off
 * the list under the lock, so a parked connection is never freed by MHD (which cannot close
 * a suspended one) and the free callback never needs the list. After shutdown nothing is
 * parked again and produce is not called again.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_internal.h"

/* MHD asks for the body in blocks of this size (the chunk size on the wire, at most). */
#define STREAM_BLOCK_BYTES (16 * 1024)

struct http_streams {
	pthread_mutex_t lock; /* guards parked, stopping, ticker wake-ups */
	pthread_cond_t cond;
	struct http_stream *parked; /* singly linked through next */
	bool stopping;
	bool ticker_on;
	pthread_t ticker;
	atomic_int open; /* streams whose response exists */
};

struct http_stream {
	http_stream_produce_fn produce;
	http_stream_free_fn free_fn;
	void *arg;
	struct http_streams *hub;
	struct MHD_Connection *conn;
	struct buf pending; /* produced, not yet handed to MHD: bytes [off, len) */
	size_t off;
	bool ended;               /* produce returned HTTP_STREAM_END */
	struct http_stream *next; /* on the parked list */
};

static void deadline_after(struct timespec *ts, int64_t ms) {
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Resumes every parked connection; lock held. */
static void resume_all(struct http_streams *h) {
	struct http_stream *st = h->parked;
	h->parked = NULL;
	while (st) {
		struct http_stream *next = st->next;
		st->next = NULL;
		MHD_resume_connection(st->conn);
		st = next;
	}
}

static void *ticker_main(void *arg) {
	struct http_streams *h = arg;
	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		if (!h->parked) {
			pthread_cond_wait(&h->cond, &h->lock);
			continue;
		}
		struct timespec ts;
		deadline_after(&ts, HTTP_STREAM_TICK_MS);
		int rc = 0;
		while (!h->stopping && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&h->cond, &h->lock, &ts);
		if (!h->stopping)
			resume_all(h);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct http_streams *http_streams_new(void) {
	struct http_streams *h = ward_xcalloc(1, sizeof(*h));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&h->lock, NULL);
	if (pthread_create(&h->ticker, NULL, ticker_main, h) != 0) {
		http_streams_free(h);
		return NULL;
	}
	h->ticker_on = true;
	return h;
}

void http_streams_shutdown(struct http_streams *h) {
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	resume_all(h);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->ticker_on) {
		pthread_join(h->ticker, NULL);
		h->ticker_on = false;
	}
}

void http_streams_free(struct http_streams *h) {
	if (!h)
		return;
	http_streams_shutdown(h);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int http_streams_open(const struct http_streams *h) {
	return h ? atomic_load(&((struct http_streams *)h)->open) : 0;
}

static bool is_stopping(struct http_streams *h) {
	pthread_mutex_lock(&h->lock);
	bool s = h->stopping;
	pthread_mutex_unlock(&h->lock);
	return s;
}

/* Parks st's connection until the next tick. false when the server is stopping (then
 * nothing is parked and the stream must end). Called from MHD's reader callback, the one
 * place besides the access handler where MHD allows suspending. */
static bool park(struct http_stream *st) {
	struct http_streams *h = st->hub;
	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return false;
	}
	bool wake = h->parked == NULL;
	st->next = h->parked;
	h->parked = st;
	MHD_suspend_connection(st->conn);
	if (wake)
		pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return true;
}

/* MHD's content reader: hands out pending bytes, asks the producer for more, or parks. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
	struct http_stream *st = cls;
	(void)pos;
	if (st->off >= st->pending.len) {
		buf_reset(&st->pending);
		st->off = 0;
		if (st->ended || is_stopping(st->hub))
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (st->produce(st->arg, &st->pending) == HTTP_STREAM_END)
			st->ended = true;
		if (st->pending.len == 0) {
			if (st->ended || !park(st))
				return MHD_CONTENT_READER_END_OF_STREAM;
			return 0; /* parked: MHD calls again once the ticker resumes us */
		}
	}
	size_t n = st->pending.len - st->off;
	if (n > max)
		n = max;
	memcpy(out, st->pending.data + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls) {
	struct http_stream *st = cls;
	if (st->hub)
		atomic_fetch_sub(&st->hub->open, 1);
	http_stream_discard(st);
}

struct http_stream *http_stream_new(http_stream_produce_fn produce, http_stream_free_fn free_fn,
                                    void *arg) {
	struct http_stream *st = ward_xcalloc(1, sizeof(*st));
	st->produce = produce;
	st->free_fn = free_fn;
	st->arg = arg;
	buf_init(&st->pending);
	return st;
}

void http_stream_discard(struct http_stream *st) {
	if (!st)
		return;
	if (st->free_fn)
		st->free_fn(st->arg);
	buf_free(&st->pending);
	free(st);
}

struct MHD_Response *http_stream_response(struct http_stream *st, struct http_streams *h,
                                          struct MHD_Connection *conn) {
	st->hub = h;
	st->conn = conn;
	atomic_fetch_add(&h->open, 1);
	struct MHD_Response *r = MHD_create_response_from_callback(
	        MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, stream_read, st, stream_free);
	if (!r)
		stream_free(st);
	return r;
}
