/* incident_internal.h: what module.c and api.c of src/incident share; private to it.
 * Every inc_* function that touches the store must be called with M.mu held. */
#ifndef WARD_INCIDENT_INTERNAL_H
#define WARD_INCIDENT_INTERNAL_H

#include <pthread.h>

#include "incident/incident.h"

struct ward_ctx;
struct metric;

struct inc_conf {
	char **open_on;
	size_t nopen_on;
	char **group_by;
	size_t ngroup_by;
	int default_category;
};

struct inc_module {
	pthread_mutex_t mu; /* guards the fields below and every incident read-modify-write */
	struct ward_ctx *ctx;
	struct matcher *open_on;
	size_t nopen_on;
	char **group_by;
	size_t ngroup_by;
	int default_category;
	struct metric *m_open, *m_total, *m_tta, *m_ttr;
};
extern struct inc_module M;

/* One incident row and its phase times (0 when not reached). */
struct inc {
	int64_t id;
	char *title;
	int severity;
	char *category;
	char *commander;
	enum incident_status status;
	char *group_key;
	int64_t opened_ms;
	char *opened_by;
	int64_t acked_ms;
	char *acked_by;
	int64_t recovered_ms;
	int64_t closed_ms;
	int64_t phase_ms[INCIDENT_NSTATUS];
	char *phase_by[INCIDENT_NSTATUS];
};
void inc_free(struct inc *x);
/* 0 found, 1 no such incident, -1 err. */
int inc_load(int64_t id, struct inc *out, struct ward_err *err);
/* New incident in phase detected; its id or -1 with err. */
int64_t inc_create(const char *title, int sev, const char *category, const char *commander,
                   const char *group_key, int64_t at_ms, const char *actor, struct ward_err *err);
/* Moves x to phase `to` (durably, with a timeline entry). 0 or -1 with err. */
int inc_move(struct inc *x, enum incident_status to, int64_t at_ms, const char *actor,
             struct ward_err *err);
/* First acknowledgement: 0; 1 already acknowledged; -1 err. */
int inc_ack(struct inc *x, int64_t at_ms, const char *actor, struct ward_err *err);
void inc_timeline_add(int64_t id, int64_t at_ms, const char *kind, const char *actor,
                      const char *text);
void inc_refresh_open_gauge(void);
const char *inc_sev_name(int sev);
/* api.c: registers the HTTP routes. */
void inc_api_register(void);

#endif
