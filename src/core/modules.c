/* modules.c: the module registry, the composition root of the daemon. A new module adds
 * one line here (and its library to the `ward` executable) and nothing else outside its
 * folder. Order is start order; stop runs in reverse. Built with the executable, not into
 * the core library, so that modules may use the core without a dependency cycle.
 */
#include <pthread.h>

#include "alert/alert.h"
#include "collect/collect.h"
#include "backup/backup.h"
#include "core/core.h"
#include "incident/incident.h"
#include "logs/logs.h"
#include "notify/notify.h"
#include "probe/probe.h"
#include "promapi/promapi.h"

const struct ward_module *const ward_modules[] = {
	&core_module,
	&promapi_module,
	&collect_module,
	&probe_module,
	&notify_module,
	&incident_module,
	&logs_module,
	&backup_module,
	&alert_module, /* last: its apply() commits the new rules */
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
