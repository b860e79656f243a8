/* backup_jobs.c: unit tests for the backup daemon's pure parts: the cron parser and its
 * next-fire computation (UTC; month ends, leap days, day-of-month OR day-of-week, @every,
 * macros, errors) and the "backup" config section's validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup/backup.h"
#include "conf/conf.h"

static int64_t utc(int y, int mo, int d, int h, int mi) {
	struct tm tm = {
	        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return (int64_t)timegm(&tm) * 1000;
}

static int64_t next(const char *expr, int64_t after) {
	struct backup_cron c;
	struct ward_err err = {{0}};
	int rc = backup_cron_parse(expr, strlen(expr), &c, &err);
	if (rc != 0)
		fail_msg("%s: %s", expr, err.msg);
	return backup_cron_next(&c, after);
}

static void cron_daily_fires_next_day_after_its_time(void **state) {
	(void)state;
	assert_int_equal(next("0 3 * * *", utc(2026, 1, 10, 2, 59)), utc(2026, 1, 10, 3, 0));
	assert_int_equal(next("0 3 * * *", utc(2026, 1, 10, 3, 0)), utc(2026, 1, 11, 3, 0));
	assert_int_equal(next("0 3 * * *", utc(2026, 12, 31, 4, 0)), utc(2027, 1, 1, 3, 0));
}

static void cron_month_ends_skip_short_months(void **state) {
	(void)state;
	/* The 31st: skips 30-day months and February. */
	assert_int_equal(next("30 1 31 * *", utc(2026, 1, 31, 2, 0)), utc(2026, 3, 31, 1, 30));
	assert_int_equal(next("30 1 31 * *", utc(2026, 4, 1, 0, 0)), utc(2026, 5, 31, 1, 30));
	/* The 30th skips February. */
	assert_int_equal(next("0 0 30 * *", utc(2026, 1, 30, 0, 0)), utc(2026, 3, 30, 0, 0));
	/* Leap day: the next 29 February is in 2028. */
	assert_int_equal(next("0 12 29 2 *", utc(2026, 3, 1, 0, 0)), utc(2028, 2, 29, 12, 0));
	/* The 30th of February never comes. */
	assert_int_equal(next("0 0 30 2 *", utc(2026, 1, 1, 0, 0)), -1);
}

static void cron_steps_ranges_lists_and_weekdays(void **state) {
	(void)state;
	assert_int_equal(next("*/15 * * * *", utc(2026, 5, 5, 10, 7)), utc(2026, 5, 5, 10, 15));
	assert_int_equal(next("*/15 * * * *", utc(2026, 5, 5, 10, 45)), utc(2026, 5, 5, 11, 0));
	assert_int_equal(next("5,10-12 * * * *", utc(2026, 5, 5, 10, 10)), utc(2026, 5, 5, 10, 11));
	assert_int_equal(next("0 9 * * 1-5", utc(2026, 11, 27, 10, 0)), /* Friday */
	                 utc(2026, 11, 30, 9, 0));                      /* Monday */
	/* 7 is Sunday too. */
	assert_int_equal(next("0 0 * * 7", utc(2026, 11, 26, 0, 0)), utc(2026, 11, 29, 0, 0));
	/* Both day fields restricted: either matches (cron). The 1st, or a Sunday. */
	assert_int_equal(next("0 0 1 * 0", utc(2026, 11, 26, 0, 0)), utc(2026, 11, 29, 0, 0));
	assert_int_equal(next("0 0 1 * 0", utc(2026, 11, 29, 0, 0)), utc(2026, 12, 1, 0, 0));
	/* 10/20 means 10, 30, 50 in the minute field. */
	assert_int_equal(next("10/20 * * * *", utc(2026, 5, 5, 10, 31)), utc(2026, 5, 5, 10, 50));
}

static void cron_macros_and_every(void **state) {
	(void)state;
	assert_int_equal(next("@daily", utc(2026, 2, 28, 5, 0)), utc(2026, 3, 1, 0, 0));
	assert_int_equal(next("@monthly", utc(2026, 2, 28, 5, 0)), utc(2026, 3, 1, 0, 0));
	assert_int_equal(next("@yearly", utc(2026, 2, 28, 5, 0)), utc(2027, 1, 1, 0, 0));
	assert_int_equal(next("@hourly", utc(2026, 2, 28, 23, 0)), utc(2026, 3, 1, 0, 0));
	assert_int_equal(next("@weekly", utc(2026, 11, 26, 0, 0)), utc(2026, 11, 29, 0, 0));
	assert_int_equal(next("@every 2s", 1000), 3000);
	assert_int_equal(next("@every 1h30m", 0), 5400000);
}

static void cron_rejects_bad_expressions(void **state) {
	(void)state;
	static const char *const bad[] = {
	        "",          "* * * *",      "* * * * * *", "60 * * * *",  "* 24 * * *",
	        "* * 0 * *", "* * * 13 *",   "* * * * 8",   "*/0 * * * *", "1- * * * *",
	        "a * * * *", "1,,2 * * * *", "5-1 * * * *", "@sometimes",  "@every 10ms",
	        "@every x",  "1, * * * *"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct backup_cron c;
		struct ward_err err = {{0}};
		if (backup_cron_parse(bad[i], strlen(bad[i]), &c, &err) == 0)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(err.msg[0] != 0);
	}
}

/* ---- config ---- */
static int setup(void **state) {
	(void)state;
	conf_reset_registry();
	backup_conf_register();
	return 0;
}

static struct conf *load(const char *y, struct ward_err *err) {
	ward_err_clear(err);
	return conf_load_buffer("t.yaml", y, strlen(y), err);
}

static void config_decodes_jobs_with_defaults(void **state) {
	(void)state;
	struct ward_err err;
	struct conf *c = load("backup:\n"
	                      "  repository: /srv/backup\n"
	                      "  passphrase: s3cret\n"
	                      "  jobs:\n"
	                      "    - name: etc\n"
	                      "      schedule: '0 3 * * *'\n"
	                      "      source: {type: dir, paths: [/etc], exclude: ['*.tmp']}\n"
	                      "      keep: {daily: 7, weekly: 4}\n"
	                      "      drill: {schedule: '@every 1d', rto_target: 10m}\n"
	                      "    - name: pg\n"
	                      "      schedule: '@every 1h'\n"
	                      "      source: {type: postgres, conninfo: 'host=/run dbname=app'}\n",
	                      &err);
	if (!c)
		fail_msg("%s", err.msg);
	const struct backup_conf *b = conf_section(c, "backup");
	assert_non_null(b);
	assert_string_equal(b->repository, "/srv/backup");
	assert_true(b->ward_state);
	assert_string_equal(b->ward_state_schedule, "@every 1h");
	assert_int_equal(b->njobs, 2);
	assert_string_equal(b->jobs[0].name, "etc");
	assert_int_equal(b->jobs[0].source.type, BACKUP_SRC_DIR);
	assert_int_equal(b->jobs[0].source.npaths, 1);
	assert_int_equal(b->jobs[0].keep.daily, 7);
	assert_int_equal(b->jobs[0].drill.rto_target_ms, 600000);
	assert_string_equal(b->jobs[0].drill.schedule, "@every 1d");
	assert_int_equal(b->jobs[1].source.type, BACKUP_SRC_POSTGRES);
	assert_null(b->jobs[1].drill.schedule);
	assert_string_equal(b->jobs[1].drill.query, "SELECT 1");
	assert_int_equal(b->jobs[1].drill.rto_target_ms, 3600000);
	char pass[64];
	size_t n;
	assert_int_equal(backup_conf_passphrase(b, pass, sizeof(pass), &n, &err), 0);
	assert_string_equal(pass, "s3cret");
	conf_unref(c);
}

static void config_passphrase_from_env_or_file(void **state) {
	(void)state;
	struct ward_err err;
	char pass[64], path[] = "/tmp/backup_jobs_passXXXXXX";
	size_t n;
	setenv("WARD_T_BACKUP_PASS", "from env", 1);
	struct conf *c =
	        load("backup:\n  repository: /r\n  passphrase: ${WARD_T_BACKUP_PASS}\n", &err);
	if (!c)
		fail_msg("%s", err.msg);
	assert_int_equal(
	        backup_conf_passphrase(conf_section(c, "backup"), pass, sizeof(pass), &n, &err), 0);
	assert_string_equal(pass, "from env");
	conf_unref(c);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "line one\nline two\n", 18), 18);
	close(fd);
	char y[256];
	snprintf(y, sizeof(y), "backup:\n  repository: /r\n  passphrase_file: %s\n", path);
	c = load(y, &err);
	if (!c)
		fail_msg("%s", err.msg);
	assert_int_equal(
	        backup_conf_passphrase(conf_section(c, "backup"), pass, sizeof(pass), &n, &err), 0);
	assert_string_equal(pass, "line one");
	assert_int_equal(n, 8);
	conf_unref(c);
	unlink(path);
}

static void config_absent_section_has_no_jobs(void **state) {
	(void)state;
	struct ward_err err;
	struct conf *c = load("{}\n", &err);
	if (!c)
		fail_msg("%s", err.msg);
	const struct backup_conf *b = conf_section(c, "backup");
	assert_null(b->repository);
	assert_int_equal(b->njobs, 0);
	conf_unref(c);
}

static void expect_error(const char *yaml, const char *part) {
	struct ward_err err;
	struct conf *c = load(yaml, &err);
	if (c) {
		conf_unref(c);
		fail_msg("accepted:\n%s", yaml);
	}
	if (!strstr(err.msg, part))
		fail_msg("error \"%s\" does not say \"%s\"", err.msg, part);
	if (strstr(err.msg, "s3cret"))
		fail_msg("error \"%s\" shows the passphrase", err.msg);
}

#define HEAD "backup:\n  repository: /srv/b\n  passphrase: s3cret\n  jobs:\n"

static void config_rejects_bad_jobs_with_clear_errors(void **state) {
	(void)state;
	expect_error(HEAD
	             "    - {name: a, schedule: '61 * * * *', source: {type: dir, paths: [/x]}}\n",
	             "backup.jobs[a].schedule");
	expect_error(HEAD
	             "    - {name: a, schedule: '0 0 31 2 *', source: {type: dir, paths: [/x]}}\n",
	             "never fires");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: dir}}\n",
	             "needs paths");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: dir, paths: [x]}}\n",
	             "not absolute");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: postgres}}\n",
	             "needs conninfo");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: command}}\n",
	             "needs command");
	expect_error(HEAD "    - {name: 'a b', schedule: '@daily', source: {type: ward_state}}\n",
	             "letters, digits");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: ward_state}}\n"
	                  "    - {name: a, schedule: '@daily', source: {type: ward_state}}\n",
	             "used twice");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: ward_state},"
	                  " drill: {schedule: 'x'}}\n",
	             "drill.schedule");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: tape}}\n", "type");
	expect_error(HEAD "    - {name: a, schedule: '@daily', source: {type: postgres, "
	                  "conninfo: x, paths: [/a]}}\n",
	             "for dir jobs");
	expect_error("backup:\n  repository: /srv/b\n", "needs a passphrase");
	expect_error("backup:\n  repository: rel/b\n  passphrase: s3cret\n", "absolute");
	expect_error("backup:\n  repository: /b\n  passphrase: s3cret\n  passphrase_file: /f\n",
	             "not both");
	expect_error("backup:\n  passphrase: s3cret\n  jobs:\n    - {name: a, schedule: '@daily', "
	             "source: {type: ward_state}}\n",
	             "need a repository");
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(cron_daily_fires_next_day_after_its_time),
	        cmocka_unit_test(cron_month_ends_skip_short_months),
	        cmocka_unit_test(cron_steps_ranges_lists_and_weekdays),
	        cmocka_unit_test(cron_macros_and_every),
	        cmocka_unit_test(cron_rejects_bad_expressions),
	        cmocka_unit_test_setup(config_decodes_jobs_with_defaults, setup),
	        cmocka_unit_test_setup(config_passphrase_from_env_or_file, setup),
	        cmocka_unit_test_setup(config_absent_section_has_no_jobs, setup),
	        cmocka_unit_test_setup(config_rejects_bad_jobs_with_clear_errors, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
