/* module.c: the core's own module entry: its config sections, the token and audit-anchor
 * migrations, and the daemon's API routes and self-metrics.
 */
#include <pthread.h>

#include "core/core_internal.h"
#include "store/store.h"

static void core_init(void)
{
	core_register_config();
	http_register_config();
	http_tokens_register();
	core_anchor_register();
}

static int core_start(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err)
{
	core_api_register(ctx);
	core_selfmetrics_register(ctx);
	return 0;
}

static int core_apply(struct ward_ctx *ctx, const struct conf *c, struct ward_err *err)
{
	core_apply_log(c);
	const struct http_config *hc = conf_section(c, "server");
	if (ctx->http && hc)
		http_server_set_limits(ctx->http, &hc->limits);
	return 0;
}

const struct ward_module core_module = {
	.name = "core",
	.init = core_init,
	.start = core_start,
	.apply = core_apply,
};

