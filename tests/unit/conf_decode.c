/* conf_decode.c: unit tests for conf_decode_buffer/file (YAML documents other than
 * ward.yaml), conf_free_obj, the problem cap, and the Markdown reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"

struct t_rule {
	char *alert;
	char *expr;
	int64_t for_ms;
	struct conf_kv *labels;
	size_t nlabels;
};

struct t_group {
	char *name;
	int64_t interval_ms;
	struct t_rule *rules;
	size_t nrules;
};

struct t_file {
	struct t_group *groups;
	size_t ngroups;
	char **tags;
	size_t ntags;
	double weight;
	int64_t cap_bytes;
};

static const struct conf_field rule_fields[] = {
        {.key = "alert",
         .type = CONF_STR,
         .offset = offsetof(struct t_rule, alert),
         .flags = CONF_REQUIRED,
         .help = "alert name"},
        {.key = "expr",
         .type = CONF_STR,
         .offset = offsetof(struct t_rule, expr),
         .flags = CONF_REQUIRED,
         .help = "PromQL | expression"},
        {.key = "for",
         .type = CONF_DURATION,
         .offset = offsetof(struct t_rule, for_ms),
         .defval = "0",
         .help = "pending time"},
        {.key = "labels",
         .type = CONF_STRMAP,
         .offset = offsetof(struct t_rule, labels),
         .count_offset = offsetof(struct t_rule, nlabels),
         .help = "extra labels"},
        {0},
};
static const struct conf_schema rule_schema = {"rule", sizeof(struct t_rule), rule_fields, NULL};

static const struct conf_field group_fields[] = {
        {.key = "name",
         .type = CONF_STR,
         .offset = offsetof(struct t_group, name),
         .flags = CONF_REQUIRED,
         .help = "group name"},
        {.key = "interval",
         .type = CONF_DURATION,
         .offset = offsetof(struct t_group, interval_ms),
         .defval = "1m",
         .help = "evaluation interval"},
        {.key = "rules",
         .type = CONF_OBJLIST,
         .offset = offsetof(struct t_group, rules),
         .count_offset = offsetof(struct t_group, nrules),
         .sub = &rule_schema,
         .help = "rules"},
        {0},
};
static const struct conf_schema group_schema = {"group", sizeof(struct t_group), group_fields,
                                                NULL};

static const struct conf_field file_fields[] = {
        {.key = "groups",
         .type = CONF_OBJLIST,
         .offset = offsetof(struct t_file, groups),
         .count_offset = offsetof(struct t_file, ngroups),
         .sub = &group_schema,
         .flags = CONF_REQUIRED,
         .help = "rule groups"},
        {.key = "tags",
         .type = CONF_STRLIST,
         .offset = offsetof(struct t_file, tags),
         .count_offset = offsetof(struct t_file, ntags),
         .help = "tags"},
        {.key = "weight",
         .type = CONF_FLOAT,
         .offset = offsetof(struct t_file, weight),
         .flags = CONF_RANGE,
         .min = 0,
         .max = 1,
         .help = "weight"},
        {.key = "cap",
         .type = CONF_SIZE,
         .offset = offsetof(struct t_file, cap_bytes),
         .defval = "1KiB",
         .flags = CONF_RANGE,
         .min = 1024,
         .max = 1048576,
         .help = "cap"},
        {0},
};
static const struct conf_schema file_schema = {"rules_file", sizeof(struct t_file), file_fields,
                                               NULL};

static int decode(const char *text, struct t_file *f, struct ward_err *err) {
	memset(f, 0, sizeof(*f));
	return conf_decode_buffer("r.yaml", text, strlen(text), &file_schema, f, err);
}

static void decode_nested_lists_of_objects(void **state) {
	struct ward_err err;
	struct t_file f;

	if (decode("groups:\n"
	           "  - name: host\n"
	           "    rules:\n"
	           "      - alert: DiskFull\n"
	           "        expr: disk > 0.9\n"
	           "        for: 5m\n"
	           "        labels: {severity: page}\n"
	           "      - alert: Down\n"
	           "        expr: up == 0\n"
	           "  - name: empty\n"
	           "    interval: 10s\n"
	           "weight: 0.25\n"
	           "cap: 2KiB\n",
	           &f, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(f.ngroups, 2);
	assert_string_equal(f.groups[0].name, "host");
	assert_int_equal(f.groups[0].interval_ms, 60000);
	assert_int_equal(f.groups[0].nrules, 2);
	assert_string_equal(f.groups[0].rules[0].expr, "disk > 0.9");
	assert_int_equal(f.groups[0].rules[0].for_ms, 300000);
	assert_int_equal(f.groups[0].rules[0].nlabels, 1);
	assert_string_equal(f.groups[0].rules[0].labels[0].value, "page");
	assert_int_equal(f.groups[0].rules[1].for_ms, 0);
	assert_int_equal(f.groups[1].interval_ms, 10000);
	assert_int_equal(f.groups[1].nrules, 0);
	assert_true(f.weight == 0.25);
	assert_int_equal(f.cap_bytes, 2048);
	conf_free_obj(&file_schema, &f);
	assert_null(f.groups);
	assert_int_equal(f.ngroups, 0);
	conf_free_obj(&file_schema, &f); /* a freed object can be freed again */
}

static void decode_reports_problems_inside_lists(void **state) {
	struct ward_err err;
	struct t_file f;

	assert_int_equal(decode("groups:\n"
	                        "  - name: g\n"
	                        "    rules:\n"
	                        "      - alert: A\n"
	                        "        for: soon\n"
	                        "weight: 2\n"
	                        "cap: 10\n"
	                        "tags: [a, ~]\n",
	                        &f, &err),
	                 -1);
	assert_string_equal(
	        err.msg,
	        "r.yaml:4:9: groups[0].rules[0].expr: required key is missing; add \"expr:\" "
	        "with a string\n"
	        "r.yaml:5:9: groups[0].rules[0].for: invalid duration \"soon\" at position 0: "
	        "expected a number; use units y w d h m s ms, such as 1h30m\n"
	        "r.yaml:8:11: tags[1]: expected a string, got nothing\n"
	        "r.yaml:6:1: weight: \"2\" is out of range; it must be between 0 and 1\n"
	        "r.yaml:7:1: cap: \"10\" is out of range; it must be between 1KiB and 1MiB");
	conf_free_obj(&file_schema, &f); /* a failed decode leaves a freeable object */
}

static void decode_of_empty_document_enforces_required_keys(void **state) {
	struct ward_err err;
	struct t_file f;

	assert_int_equal(decode("", &f, &err), -1);
	assert_string_equal(err.msg, "r.yaml:1:1: groups: required key is missing; add "
	                             "\"groups:\" with a list of mappings");
	conf_free_obj(&file_schema, &f);
}

static void decode_rejects_wrong_shapes(void **state) {
	struct ward_err err;
	struct t_file f;

	assert_int_equal(decode("groups: {name: x}\n", &f, &err), -1);
	assert_string_equal(err.msg, "r.yaml:1:1: groups: expected a list of mappings (each item "
	                             "starting with \"- \"), got a mapping");
	conf_free_obj(&file_schema, &f);
	assert_int_equal(decode("just text\n", &f, &err), -1);
	assert_string_equal(err.msg, "r.yaml:1:1: the top level must be a mapping (key: value "
	                             "lines), got \"just text\"");
	assert_int_equal(decode("groups: []\ntags: {a: b}\n", &f, &err), -1);
	assert_string_equal(err.msg, "r.yaml:2:1: tags: expected a list of strings, got a mapping");
	conf_free_obj(&file_schema, &f);
	assert_int_equal(decode("groups: []\nweight: \"nan\"\n", &f, &err), -1);
	assert_string_equal(err.msg, "r.yaml:2:1: weight: expected a finite number, got \"nan\"");
	conf_free_obj(&file_schema, &f);
	assert_int_equal(decode("groups: []\ntags: \"a\\0b\"\n", &f, &err), -1);
	assert_string_equal(err.msg, "r.yaml:2:1: tags: the value contains a NUL character (\\0)");
	conf_free_obj(&file_schema, &f);
	/* a NUL inside a scalar is quoted back escaped, and never read past */
	assert_int_equal(
	        decode("groups: \"\\0\\0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
	               &f, &err),
	        -1);
	assert_string_equal(err.msg,
	                    "r.yaml:1:1: groups: expected a list of mappings (each item starting "
	                    "with \"- \"), got "
	                    "\"\\x00\\x00xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"...");
	conf_free_obj(&file_schema, &f);
}

static void many_problems_are_capped_with_a_count(void **state) {
	struct ward_err err;
	struct t_file f;
	char text[4096];
	size_t n = 0;

	n += (size_t)snprintf(text + n, sizeof(text) - n, "groups: []\ntags: [");
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s[x]", i ? ", " : "");
	snprintf(text + n, sizeof(text) - n, "]\n");
	assert_int_equal(decode(text, &f, &err), -1);
	assert_non_null(strstr(err.msg, "r.yaml:2:8: tags[0]: expected a string, got a list\n"));
	assert_non_null(strstr(err.msg, "\nr.yaml: 10 more problems not shown; fix the ones above "
	                                "first"));
	conf_free_obj(&file_schema, &f);
}

static void decode_file_reads_a_path(void **state) {
	char path[] = "/tmp/conf_decode_XXXXXX";
	int fd = mkstemp(path);
	struct ward_err err;
	struct t_file f = {0};
	FILE *fp;

	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fputs("groups:\n  - name: only\n", fp);
	fclose(fp);
	if (conf_decode_file(path, &file_schema, &f, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(f.ngroups, 1);
	assert_string_equal(f.groups[0].name, "only");
	conf_free_obj(&file_schema, &f);
	unlink(path);
	assert_int_equal(conf_decode_file(path, &file_schema, &f, &err), -1);
	assert_non_null(strstr(err.msg, path));
}

static void reference_lists_every_key_with_type_default_and_range(void **state) {
	static const struct conf_schema section = {"rules", sizeof(struct t_file), file_fields,
	                                           NULL};
	struct buf out = BUF_INIT;
	const char *md;

	conf_reset_registry();
	assert_int_equal(conf_register_section(&section), 0);
	conf_write_reference(&out);
	md = buf_cstr(&out);
	assert_non_null(strstr(md, "## `rules`\n\n| key | type | default | range | help |\n"
	                           "|---|---|---|---|---|\n"));
	assert_non_null(strstr(md, "| `rules.groups` | list of objects |  |  | rule groups "
	                           "(required) |\n"));
	assert_non_null(strstr(md, "| `rules.groups[].interval` | duration | `1m` |  | "
	                           "evaluation interval |\n"));
	assert_non_null(strstr(md, "| `rules.groups[].rules[].expr` | string |  |  | PromQL \\| "
	                           "expression (required) |\n"));
	assert_non_null(strstr(md, "| `rules.cap` | size | `1KiB` | 1KiB .. 1MiB | cap |\n"));
	buf_free(&out);
	conf_reset_registry();
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(decode_nested_lists_of_objects),
	        cmocka_unit_test(decode_reports_problems_inside_lists),
	        cmocka_unit_test(decode_of_empty_document_enforces_required_keys),
	        cmocka_unit_test(decode_rejects_wrong_shapes),
	        cmocka_unit_test(many_problems_are_capped_with_a_count),
	        cmocka_unit_test(decode_file_reads_a_path),
	        cmocka_unit_test(reference_lists_every_key_with_type_default_and_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
