/* notify_module.h: the running module's state (module.c) shared with its HTTP handlers
 * (api.c). N.mu guards N.e (the engine) and N.conf; N.qmu guards the job lists, the
 * subscriber table and the async handle's readiness.
 */
#ifndef WARD_NOTIFY_MODULE_H
#define WARD_NOTIFY_MODULE_H

#include <pthread.h>
#include <uv.h>

#include "core/core.h"
#include "notify/notify_internal.h"

#define NFY_WORKERS  8 /* deliveries in flight at once; a hung receiver holds one */
#define NFY_MAX_SUBS 16

#define NFY_PUSH(arr, n, cap, x)                                              \
	do {                                                                  \
		if ((n) == (cap)) {                                           \
			(cap) = (cap) ? (cap)*2 : 16;                         \
			(arr) = ward_xrealloc((arr), (cap) * sizeof(*(arr))); \
		}                                                             \
		(arr)[(n)++] = (x);                                           \
	} while (0)

struct nfy_sub {
	notify_event_fn fn;
	void *arg;
};

struct nfy_state {
	pthread_mutex_t mu;
	struct nfy_engine e;
	struct conf *conf;
	struct ward_ctx *ctx;
	bool running;

	pthread_mutex_t qmu;
	pthread_cond_t qcv;
	struct nfy_job **pending, **ready, **done;
	size_t npending, cappending, nready, capready, ndone, capdone, nrunning;
	bool stopping, kick_ready;
	int64_t delivery_timeout_ms;
	pthread_t workers[NFY_WORKERS];
	struct nfy_sub subs[NFY_MAX_SUBS];
	size_t nsubs;

	uv_timer_t timer;
	uv_async_t kick;
	struct metric *m_total, *m_failed, *m_latency;
};
extern struct nfy_state N;

void nfy_api_register(struct ward_ctx *ctx);
void nfy_store_silence(const struct nfy_silence *s);
void nfy_take_events(struct nfy_events *out);
void nfy_dispatch_events(struct nfy_events *ev);
void nfy_kick(void);
/* Parses an Alertmanager POST /api/v2/alerts body into alerts (caller frees each with
 * nfy_alerts_free). 0, or -1 with err naming the index and field. */
int nfy_decode_alerts(const char *body, size_t len, int64_t now_ms, struct notify_alert **out,
                      size_t *n, struct ward_err *err);
void nfy_alerts_free(struct notify_alert *v, size_t n);

#endif
