/* collect_relabel.c: relabeling (src/collect/relabel.c) against the semantics of
 * Prometheus' model/relabel: every action, the defaults, full anchoring with (?s), Go's
 * $-expansion rules, hashmod's MD5 value (976 for "baz" mod 1000, as relabel_test.go), and
 * config errors. Labels are written as text so a failure shows the whole set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/collect_internal.h"

/* A rule with Prometheus' defaults, as the config decoder fills them. */
static struct relabel_conf rule(int action, const char *src, const char *regex, const char *target,
                                const char *repl) {
	struct relabel_conf r = {.separator = ";",
	                         .regex = (char *)(regex ? regex : "(.*)"),
	                         .replacement = (char *)(repl ? repl : "$1"),
	                         .action = action,
	                         .target_label = (char *)target};
	/* static storage: rules live until the test's end, nothing to free */
	static char *srcs[8][4];
	static char text[8][64];
	static int slot;
	if (src) {
		int k = slot++ % 8;
		char **s = srcs[k];
		size_t n = 0;
		char *save = NULL;
		snprintf(text[k], sizeof(text[k]), "%s", src);
		for (char *t = strtok_r(text[k], ",", &save); t && n < 4;
		     t = strtok_r(NULL, ",", &save))
			s[n++] = t;
		r.source_labels = s;
		r.nsource_labels = n;
	}
	return r;
}

static struct labels lset(const char *first, ...) {
	struct labels ls;
	labels_init(&ls);
	va_list ap;
	va_start(ap, first);
	for (const char *k = first; k; k = va_arg(ap, const char *))
		labels_set(&ls, k, va_arg(ap, const char *));
	va_end(ap);
	return ls;
}

/* Applies rules to ls; returns "DROPPED" or the set as {a="b",...}. */
static char *run(struct relabel_conf *rc, size_t n, struct labels *ls) {
	struct ward_err err;
	ward_err_clear(&err);
	struct relabel *r = relabel_new(rc, n, &err);
	assert_non_null(r);
	bool keep = relabel_apply(r, ls);
	relabel_free(r);
	struct buf b = BUF_INIT;
	if (!keep) {
		buf_puts(&b, "DROPPED");
	} else {
		labels_set(ls, "__name__", "m");
		labels_write(&b, ls);
	}
	labels_free(ls);
	return buf_detach(&b);
}

#define CHECK(want, got)                       \
	do {                                   \
		char *g_ = (got);              \
		assert_string_equal(g_, want); \
		free(g_);                      \
	} while (0)

static void replace_expands_groups_into_target(void **st) {
	struct relabel_conf r = rule(RELABEL_REPLACE, "a", "f(.*)", "d", "ch${1}-ch${1}");
	struct labels ls = lset("a", "foo", "b", "bar", NULL);
	CHECK("m{a=\"foo\",b=\"bar\",d=\"choo-choo\"}", run(&r, 1, &ls));
}

static void replace_joins_sources_with_separator(void **st) {
	struct relabel_conf r = rule(RELABEL_REPLACE, "a,b", "f(.*);(.*)r", "a", "b${1}${2}m");
	struct labels ls = lset("a", "foo", "b", "bar", NULL);
	CHECK("m{a=\"boobam\",b=\"bar\"}", run(&r, 1, &ls));
}

static void replace_without_match_changes_nothing(void **st) {
	struct relabel_conf r = rule(RELABEL_REPLACE, "a", "x(.*)", "d", NULL);
	struct labels ls = lset("a", "foo", NULL);
	CHECK("m{a=\"foo\"}", run(&r, 1, &ls));
}

static void replace_with_empty_result_deletes_target(void **st) {
	struct relabel_conf r = rule(RELABEL_REPLACE, "missing", NULL, "a", NULL);
	struct labels ls = lset("a", "foo", "b", "x", NULL);
	CHECK("m{b=\"x\"}", run(&r, 1, &ls));
}

static void replace_skips_invalid_expanded_target(void **st) {
	struct relabel_conf r = rule(RELABEL_REPLACE, "a", "(.*)", "${1}", "v");
	struct labels ls = lset("a", "1bad", NULL);
	CHECK("m{a=\"1bad\"}", run(&r, 1, &ls));
	struct relabel_conf r2 = rule(RELABEL_REPLACE, "a", "(.*)", "t_${1}", "v");
	struct labels ls2 = lset("a", "ok", NULL);
	CHECK("m{a=\"ok\",t_ok=\"v\"}", run(&r2, 1, &ls2));
}

static void expansion_follows_go_rules(void **st) {
	/* $1x names group "1x" (absent: empty); $$ is a dollar; ${name} a named group */
	struct relabel_conf r = rule(RELABEL_REPLACE, "a", "(?P<w>f)(o+)", "d", "$1x|$$|${w}|$2");
	struct labels ls = lset("a", "foo", NULL);
	CHECK("m{a=\"foo\",d=\"|$|f|oo\"}", run(&r, 1, &ls));
}

static void regex_is_fully_anchored_and_dot_matches_newline(void **st) {
	struct relabel_conf k = rule(RELABEL_KEEP, "a", "o", NULL, NULL);
	struct labels ls = lset("a", "foo", NULL);
	CHECK("DROPPED", run(&k, 1, &ls));
	struct relabel_conf k2 = rule(RELABEL_KEEP, "a", "f.*", NULL, NULL);
	struct labels ls2 = lset("a", "f\no", NULL);
	CHECK("m{a=\"f\\no\"}", run(&k2, 1, &ls2));
	/* "foo\n" must not match "foo" (no $-before-newline leniency) */
	struct relabel_conf k3 = rule(RELABEL_KEEP, "a", "foo", NULL, NULL);
	struct labels ls3 = lset("a", "foo\n", NULL);
	CHECK("DROPPED", run(&k3, 1, &ls3));
}

static void keep_and_drop_decide_on_the_joined_value(void **st) {
	struct relabel_conf k = rule(RELABEL_KEEP, "a,b", "foo;bar", NULL, NULL);
	struct labels ls = lset("a", "foo", "b", "bar", NULL);
	CHECK("m{a=\"foo\",b=\"bar\"}", run(&k, 1, &ls));
	struct relabel_conf d = rule(RELABEL_DROP, "a", "f.*", NULL, NULL);
	struct labels ls2 = lset("a", "foo", NULL);
	CHECK("DROPPED", run(&d, 1, &ls2));
	struct relabel_conf d2 = rule(RELABEL_DROP, "a", "x", NULL, NULL);
	struct labels ls3 = lset("a", "foo", NULL);
	CHECK("m{a=\"foo\"}", run(&d2, 1, &ls3));
	/* a missing source label joins as "" */
	struct relabel_conf d3 = rule(RELABEL_DROP, "nope", "", NULL, NULL);
	struct labels ls4 = lset("a", "foo", NULL);
	CHECK("DROPPED", run(&d3, 1, &ls4));
}

static void hashmod_matches_prometheus(void **st) {
	struct relabel_conf r = rule(RELABEL_HASHMOD, "c", NULL, "d", NULL);
	r.modulus = 1000;
	struct labels ls = lset("a", "foo", "b", "bar", "c", "baz", NULL);
	CHECK("m{a=\"foo\",b=\"bar\",c=\"baz\",d=\"976\"}", run(&r, 1, &ls));
}

static void labelmap_copies_matching_names(void **st) {
	struct relabel_conf r = rule(RELABEL_LABELMAP, NULL, "(b.*)", NULL, "bar_${1}");
	struct labels ls = lset("a", "foo", "b1", "bar", "b2", "baz", NULL);
	CHECK("m{a=\"foo\",b1=\"bar\",b2=\"baz\",bar_b1=\"bar\",bar_b2=\"baz\"}", run(&r, 1, &ls));
	struct relabel_conf m = rule(RELABEL_LABELMAP, NULL, "__meta_(.+)", NULL, NULL);
	struct labels ls2 = lset("__meta_zone", "eu", NULL);
	CHECK("m{__meta_zone=\"eu\",zone=\"eu\"}", run(&m, 1, &ls2));
}

static void labeldrop_and_labelkeep_filter_names(void **st) {
	struct relabel_conf d = rule(RELABEL_LABELDROP, NULL, "b.*", NULL, NULL);
	struct labels ls = lset("a", "foo", "b1", "bar", "b2", "baz", NULL);
	CHECK("m{a=\"foo\"}", run(&d, 1, &ls));
	struct relabel_conf k = rule(RELABEL_LABELKEEP, NULL, "b.*", NULL, NULL);
	struct labels ls2 = lset("a", "foo", "b1", "bar", "b2", "baz", NULL);
	CHECK("m{b1=\"bar\",b2=\"baz\"}", run(&k, 1, &ls2));
}

static void lowercase_uppercase_and_equal_actions(void **st) {
	struct relabel_conf r[2] = {rule(RELABEL_LOWERCASE, "a", NULL, "l", NULL),
	                            rule(RELABEL_UPPERCASE, "a", NULL, "u", NULL)};
	struct labels ls = lset("a", "FoO", NULL);
	CHECK("m{a=\"FoO\",l=\"foo\",u=\"FOO\"}", run(r, 2, &ls));
	struct relabel_conf ke = rule(RELABEL_KEEPEQUAL, "a", NULL, "b", NULL);
	struct labels ls2 = lset("a", "x", "b", "y", NULL);
	CHECK("DROPPED", run(&ke, 1, &ls2));
	struct relabel_conf de = rule(RELABEL_DROPEQUAL, "a", NULL, "b", NULL);
	struct labels ls3 = lset("a", "x", "b", "x", NULL);
	CHECK("DROPPED", run(&de, 1, &ls3));
}

static void rules_apply_in_order_and_stop_at_drop(void **st) {
	struct relabel_conf r[3] = {rule(RELABEL_REPLACE, "a", NULL, "b", "set"),
	                            rule(RELABEL_DROP, "b", "set", NULL, NULL),
	                            rule(RELABEL_REPLACE, "a", NULL, "c", NULL)};
	struct labels ls = lset("a", "foo", NULL);
	CHECK("DROPPED", run(r, 3, &ls));
}

static void bad_rules_are_config_errors(void **st) {
	struct ward_err err;
	struct relabel_conf r = rule(RELABEL_REPLACE, "a", "(", "b", NULL);
	ward_err_clear(&err);
	assert_null(relabel_new(&r, 1, &err));
	assert_non_null(strstr(err.msg, "regex"));
	struct relabel_conf h = rule(RELABEL_HASHMOD, "a", NULL, "b", NULL);
	ward_err_clear(&err);
	assert_null(relabel_new(&h, 1, &err));
	assert_non_null(strstr(err.msg, "modulus"));
	struct relabel_conf t = rule(RELABEL_REPLACE, "a", NULL, NULL, NULL);
	ward_err_clear(&err);
	assert_null(relabel_new(&t, 1, &err));
	assert_non_null(strstr(err.msg, "target_label"));
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(replace_expands_groups_into_target),
	        cmocka_unit_test(replace_joins_sources_with_separator),
	        cmocka_unit_test(replace_without_match_changes_nothing),
	        cmocka_unit_test(replace_with_empty_result_deletes_target),
	        cmocka_unit_test(replace_skips_invalid_expanded_target),
	        cmocka_unit_test(expansion_follows_go_rules),
	        cmocka_unit_test(regex_is_fully_anchored_and_dot_matches_newline),
	        cmocka_unit_test(keep_and_drop_decide_on_the_joined_value),
	        cmocka_unit_test(hashmod_matches_prometheus),
	        cmocka_unit_test(labelmap_copies_matching_names),
	        cmocka_unit_test(labeldrop_and_labelkeep_filter_names),
	        cmocka_unit_test(lowercase_uppercase_and_equal_actions),
	        cmocka_unit_test(rules_apply_in_order_and_stop_at_drop),
	        cmocka_unit_test(bad_rules_are_config_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
