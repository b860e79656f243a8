/* fuzz_conf.c: libFuzzer target for the configuration loader (libyaml tree, limits,
 * ${ENV} substitution, schema decoding, error reporting, freeing).
 *
 * A small schema with every field type is registered once; each input is loaded with
 * conf_load_buffer and decoded again with conf_decode_buffer, and whatever comes back is
 * freed, so ASan sees leaks and double frees on every path.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct f_item {
	char *name;
	char **tags;
	size_t ntags;
};

struct f_sub {
	int64_t n;
	struct conf_kv *kv;
	size_t nkv;
};

struct f_section {
	char *s;
	int64_t i;
	double f;
	bool b;
	int64_t d_ms;
	int64_t sz;
	int e;
	char **list;
	size_t nlist;
	struct conf_kv *map;
	size_t nmap;
	struct f_sub sub;
	struct f_item *items;
	size_t nitems;
	char *secret;
};

static const char *const f_enum[] = {"a", "b", "c", NULL};

static const struct conf_field sub_fields[] = {
        {.key = "n",
         .type = CONF_INT,
         .offset = offsetof(struct f_sub, n),
         .defval = "3",
         .flags = CONF_RANGE,
         .min = -5,
         .max = 5},
        {.key = "kv",
         .type = CONF_STRMAP,
         .offset = offsetof(struct f_sub, kv),
         .count_offset = offsetof(struct f_sub, nkv)},
        {0},
};
static const struct conf_schema sub_schema = {"sub", sizeof(struct f_sub), sub_fields, NULL};

static const struct conf_field item_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = offsetof(struct f_item, name),
         .flags = CONF_REQUIRED},
        {.key = "tags",
         .type = CONF_STRLIST,
         .offset = offsetof(struct f_item, tags),
         .count_offset = offsetof(struct f_item, ntags)},
        {0},
};
static const struct conf_schema item_schema = {"item", sizeof(struct f_item), item_fields, NULL};

static int f_validate(void *obj, const struct conf_pos *pos, struct ward_err *err) {
	const struct f_section *s = obj;

	if (s->i == 42) {
		conf_error_at(err, pos, "x.i: 42 is reserved");
		return -1;
	}
	return 0;
}

static const struct conf_field section_fields[] = {
        {.key = "s",
         .type = CONF_STR,
         .offset = offsetof(struct f_section, s),
         .defval = "${FUZZ_CONF_UNSET:-x}"},
        {.key = "i", .type = CONF_INT, .offset = offsetof(struct f_section, i)},
        {.key = "f",
         .type = CONF_FLOAT,
         .offset = offsetof(struct f_section, f),
         .flags = CONF_RANGE,
         .min = 0,
         .max = 1e9},
        {.key = "b", .type = CONF_BOOL, .offset = offsetof(struct f_section, b)},
        {.key = "d",
         .type = CONF_DURATION,
         .offset = offsetof(struct f_section, d_ms),
         .defval = "30s"},
        {.key = "sz",
         .type = CONF_SIZE,
         .offset = offsetof(struct f_section, sz),
         .defval = "1MiB",
         .flags = CONF_RANGE,
         .min = 1,
         .max = 1e12},
        {.key = "e",
         .type = CONF_ENUM,
         .offset = offsetof(struct f_section, e),
         .enum_names = f_enum},
        {.key = "list",
         .type = CONF_STRLIST,
         .offset = offsetof(struct f_section, list),
         .count_offset = offsetof(struct f_section, nlist),
         .defval = "[p, q]"},
        {.key = "map",
         .type = CONF_STRMAP,
         .offset = offsetof(struct f_section, map),
         .count_offset = offsetof(struct f_section, nmap)},
        {.key = "sub",
         .type = CONF_OBJ,
         .offset = offsetof(struct f_section, sub),
         .sub = &sub_schema},
        {.key = "items",
         .type = CONF_OBJLIST,
         .offset = offsetof(struct f_section, items),
         .count_offset = offsetof(struct f_section, nitems),
         .sub = &item_schema},
        {.key = "secret",
         .type = CONF_STR,
         .offset = offsetof(struct f_section, secret),
         .flags = CONF_SECRET},
        {0},
};
static const struct conf_schema x_schema = {"x", sizeof(struct f_section), section_fields,
                                            f_validate};
static const struct conf_schema y_schema = {"y", sizeof(struct f_sub), sub_fields, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static bool registered;
	struct ward_err err;
	struct f_section obj;
	struct conf *c;

	if (!registered) {
		conf_register_section(&x_schema);
		conf_register_section(&y_schema);
		registered = true;
	}
	c = conf_load_buffer("fuzz.yaml", (const char *)data, size, &err);
	if (c) {
		(void)conf_section(c, "x");
		conf_unref(c);
	}
	memset(&obj, 0, sizeof(obj));
	(void)conf_decode_buffer("fuzz.yaml", (const char *)data, size, &x_schema, &obj, &err);
	conf_free_obj(&x_schema, &obj);
	return 0;
}
