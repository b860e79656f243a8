/* collect_module.h: glue between module.c and engine.c (the scrape engine). Internal. */
#ifndef WARD_COLLECT_MODULE_H
#define WARD_COLLECT_MODULE_H

#include <uv.h>

#include "collect/collect_internal.h"

/* Starts the engine on loop with the "scrape" section of c; db returns the store (NULL
 * when there is none). 0 or -1 with err. Loop thread only. */
int engine_start(uv_loop_t *loop, struct tsdb *(*db)(void), struct conf *c, struct ward_err *err);
/* Replaces the targets with those of c; unchanged targets keep their series state. */
int engine_apply(struct conf *c, struct ward_err *err);
/* Stops every scrape, waits for processing in flight, frees everything. */
void engine_stop(void);
/* The data of GET /api/v1/targets (any thread). state: "active", "dropped", "any" or NULL. */
void engine_targets_json(struct buf *b, const char *state);

#endif
