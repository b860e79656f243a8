/* fuzz_notify_alerts.c: libFuzzer target for the POST /api/v2/alerts JSON decoder, and for
 * the engine taking what it decodes (fingerprints, routing on an empty config, a tick) and
 * the silence decoder on the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct notify_alert *v;
	size_t n;
	struct ward_err err;
	ward_err_clear(&err);
	if (nfy_decode_alerts((const char *)data, size, 0, &v, &n, &err) == 0) {
		struct nfy_engine e;
		nfy_engine_init(&e);
		nfy_engine_post(&e, v, n, 1000);
		nfy_engine_tick(&e, 2000);
		for (size_t i = 0; i < e.nalerts; i++) {
			json_t *j = nfy_alert_json(e.alerts[i], 2000);
			json_decref(j);
		}
		nfy_engine_free(&e);
		nfy_alerts_free(v, n);
	}
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		struct nfy_silence *s = nfy_silence_from_json(j, 1000, &err);
		nfy_silence_free(s);
		json_decref(j);
	}
	return 0;
}
