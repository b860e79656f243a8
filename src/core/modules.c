/* modules.c: the module registry. A new module adds one line to ward_modules[] and
 * nothing else outside its folder. Order is start order; stop runs in reverse.
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

static const struct ward_module core_module = {
	.name = "core",
	.init = core_init,
	.start = core_start,
	.apply = core_apply,
};

const struct ward_module *const ward_modules[] = {
	&core_module,
	NULL,
};

static void init_all(void)
{
	for (size_t i = 0; ward_modules[i]; i++)
		if (ward_modules[i]->init)
			ward_modules[i]->init();
}

void ward_modules_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_all);
}
