/* config.c: the core's configuration sections, "log" and "storage".
 *
 * Registered from the core module's init; the loader knows them only through these
 * schemas.
 */
#include <stddef.h>
#include <stdlib.h>

#include "core/core_internal.h"

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"auto", "logfmt", "json", NULL};

static const struct conf_field log_fields[] = {
	{.key = "level", .type = CONF_ENUM, .offset = offsetof(struct core_log_conf, level),
	 .defval = "info", .enum_names = level_names, .help = "least severity written"},
	{.key = "format", .type = CONF_ENUM, .offset = offsetof(struct core_log_conf, format),
	 .defval = "auto", .enum_names = format_names,
	 .help = "auto: logfmt on a terminal, JSON lines otherwise"},
	{0},
};
static const struct conf_schema log_schema = {
	.name = "log", .size = sizeof(struct core_log_conf), .fields = log_fields};

static const struct conf_field storage_fields[] = {
	{.key = "data_dir", .type = CONF_STR,
	 .offset = offsetof(struct core_storage_conf, data_dir),
	 .help = "where ward keeps state.db, audit/ and its stores; default $WARD_DATA or "
		 "./ward-data"},
	{0},
};
static const struct conf_schema storage_schema = {
	.name = "storage", .size = sizeof(struct core_storage_conf), .fields = storage_fields};

void core_register_config(void)
{
	(void)conf_register_section(&log_schema);
	(void)conf_register_section(&storage_schema);
}

char *core_data_dir_of(const struct conf *c, const char *override)
{
	if (override && *override)
		return ward_strdup(override);
	const struct core_storage_conf *sc = c ? conf_section(c, "storage") : NULL;
	if (sc && sc->data_dir && *sc->data_dir)
		return ward_strdup(sc->data_dir);
	const char *env = getenv("WARD_DATA");
	return ward_strdup(env && *env ? env : "./ward-data");
}

void core_apply_log(const struct conf *c)
{
	const struct core_log_conf *lc = conf_section(c, "log");
	if (!lc)
		return;
	log_setup((enum log_level)lc->level, (enum log_format)lc->format, 2);
}
