/* ratelimit.c: per-client token buckets for the API server.
 *
 * One bucket per client address: it refills at `rate` tokens a second up to `burst`, and
 * each request takes one. A full bucket is the same as no bucket, so buckets idle long
 * enough to be full again are dropped when the table grows, which bounds its memory by
 * the number of clients active within the last burst/rate seconds. Guarded by one mutex.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

struct bucket {
	char *client;
	double tokens;
	int64_t last_ms;
};

struct ratelimit {
	pthread_mutex_t lock; /* guards everything below */
	struct bucket *v;
	size_t n, cap;
};

struct ratelimit *ratelimit_new(void)
{
	struct ratelimit *rl = ward_xcalloc(1, sizeof(*rl));
	pthread_mutex_init(&rl->lock, NULL);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < rl->n; i++)
		free(rl->v[i].client);
	free(rl->v);
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static double refill(const struct bucket *b, double rate, double burst, int64_t now_ms)
{
	double t = b->tokens + (double)(now_ms - b->last_ms) / 1000.0 * rate;
	return t > burst ? burst : t;
}

/* Drops buckets that have refilled completely; called with the lock held. */
static void prune(struct ratelimit *rl, double rate, double burst, int64_t now_ms)
{
	size_t w = 0;
	for (size_t i = 0; i < rl->n; i++) {
		if (refill(&rl->v[i], rate, burst, now_ms) >= burst) {
			free(rl->v[i].client);
			continue;
		}
		rl->v[w++] = rl->v[i];
	}
	rl->n = w;
}

bool ratelimit_take(struct ratelimit *rl, const char *client, double rate, double burst,
		    int64_t now_ms, int *retry_after_s)
{
	if (rate <= 0)
		return true;
	if (burst < 1)
		burst = 1;
	bool ok;
	pthread_mutex_lock(&rl->lock);
	struct bucket *b = NULL;
	for (size_t i = 0; i < rl->n; i++) {
		if (strcmp(rl->v[i].client, client) == 0) {
			b = &rl->v[i];
			break;
		}
	}
	if (!b) {
		if (rl->n == rl->cap) {
			prune(rl, rate, burst, now_ms);
			if (rl->n == rl->cap) {
				rl->cap = rl->cap ? rl->cap * 2 : 64;
				rl->v = ward_xrealloc(rl->v, rl->cap * sizeof(*rl->v));
			}
		}
		b = &rl->v[rl->n++];
		*b = (struct bucket){.client = ward_strdup(client), .tokens = burst, .last_ms = now_ms};
	}
	b->tokens = refill(b, rate, burst, now_ms);
	b->last_ms = now_ms;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		ok = true;
	} else {
		ok = false;
		double wait = (1.0 - b->tokens) / rate;
		int s = (int)ceil(wait);
		*retry_after_s = s < 1 ? 1 : s;
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

size_t ratelimit_clients(struct ratelimit *rl)
{
	pthread_mutex_lock(&rl->lock);
	size_t n = rl->n;
	pthread_mutex_unlock(&rl->lock);
	return n;
}
