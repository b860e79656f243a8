/* fuzz_notify_config.c: libFuzzer target for notify's config parsers: the first line of
 * the input is parsed as Alertmanager matchers and as a maintenance schedule; the whole
 * input is decoded as a "notify" section (route tree, receivers, inhibit rules, windows,
 * policies, schedules) and compiled. Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static int init;
	if (!init) {
		log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT, 2);
		init = 1;
	}
	const char *s = (const char *)data;
	size_t line = 0;
	while (line < size && s[line] != '\n')
		line++;
	struct ward_err err;
	struct nfy_matchers m = {0};
	ward_err_clear(&err);
	(void)nfy_matchers_parse(s, line, &m, &err);
	nfy_matchers_free(&m);
	char *l = ward_strndup(s, line);
	struct nfy_maint w = {0};
	(void)nfy_schedule_parse(l, &w, &err);
	free(l);
	struct nc_conf c;
	memset(&c, 0, sizeof(c));
	ward_err_clear(&err);
	if (conf_decode_buffer("fuzz.yaml", s, size, &nfy_conf_schema, &c, &err) == 0) {
		struct nfy_cfg *cfg = nfy_cfg_compile(&c, &err);
		nfy_cfg_free(cfg);
	}
	conf_free_obj(&nfy_conf_schema, &c);
	return 0;
}
