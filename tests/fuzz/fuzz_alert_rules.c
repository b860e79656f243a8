/* fuzz_alert_rules.c: libFuzzer target for the rule file loader (YAML -> schema ->
 * PromQL and template checks): any input must give a rule set or an error, never a crash
 * or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "alert/alert_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rf_file f;
	struct ward_err err;
	ward_err_clear(&err);
	(void)alert_rulefile_decode("fuzz.yml", (const char *)data, size, &f, &err);
	conf_free_obj(&alert_rulefile_schema, &f);
	return 0;
}
