/* base_log.c: unit tests for structured logging: formats, levels, secret redaction and
 * whole lines under concurrent writers. Output goes to a temp file we read back. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"

static const char SECRET_VALUE[] = "wt_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/* Creates an unlinked temp file to log into. */
static int tmp_fd(void) {
	char path[] = "/tmp/ward-base-log-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static char *read_all(int fd) {
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t r;
	off_t off = 0;

	while ((r = pread(fd, chunk, sizeof(chunk), off)) > 0) {
		buf_append(&b, chunk, (size_t)r);
		off += r;
	}
	return buf_detach(&b);
}

static void log_json_line_has_ts_level_msg_then_fields(void **state) {
	int fd = tmp_fd();
	char *out;

	log_setup(LOG_INFO, LOG_FORMAT_AUTO, fd); /* a file is not a tty: JSON */
	ward_log(LOG_INFO, "listening", "addr", "127.0.0.1:9797", "note", NULL, NULL);
	out = read_all(fd);
	assert_true(ward_has_prefix(out, "{\"ts\":\""));
	assert_non_null(strstr(out, "Z\",\"level\":\"info\",\"msg\":\"listening\","
	                            "\"addr\":\"127.0.0.1:9797\",\"note\":\"\"}\n"));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
	free(out);
	close(fd);
}

static void log_logfmt_quotes_values_that_need_it(void **state) {
	int fd = tmp_fd();
	char *out;

	log_setup(LOG_DEBUG, LOG_FORMAT_LOGFMT, fd);
	ward_log(LOG_WARN, "disk almost full", "path", "/var/lib/ward", "free", "2 GiB", NULL);
	out = read_all(fd);
	assert_true(ward_has_prefix(out, "ts=20"));
	assert_non_null(strstr(out, " level=warn msg=\"disk almost full\" path=/var/lib/ward "
	                            "free=\"2 GiB\"\n"));
	free(out);
	close(fd);
}

static void log_drops_events_below_level(void **state) {
	int fd = tmp_fd();
	char *out;

	log_setup(LOG_WARN, LOG_FORMAT_JSON, fd);
	ward_log(LOG_INFO, "hidden", NULL);
	ward_log(LOG_DEBUG, "hidden too", NULL);
	ward_log(LOG_ERROR, "shown", NULL);
	out = read_all(fd);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "\"level\":\"error\",\"msg\":\"shown\""));
	assert_int_equal(log_get_level(), LOG_WARN);
	log_set_level(LOG_DEBUG);
	assert_int_equal(log_get_level(), LOG_DEBUG);
	free(out);
	close(fd);
}

static void log_never_writes_secret_values(void **state) {
	static const char *const keys[] = {
	        "token",         "Authorization", "password",     "db_password", "passphrase",
	        "client_secret", "cookie",        "Set-Cookie",   "key",         "api_key",
	        "private_key",   "apiKey",        "bearer_token", "X-Auth-Token"};
	enum log_format fmts[] = {LOG_FORMAT_JSON, LOG_FORMAT_LOGFMT};
	size_t i, f;
	int fd;
	char *out;

	for (f = 0; f < 2; f++) {
		fd = tmp_fd();
		log_setup(LOG_DEBUG, fmts[f], fd);
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			ward_log(LOG_ERROR, "auth", "user", "ops", keys[i], SECRET_VALUE, NULL);
		out = read_all(fd);
		assert_null(strstr(out, SECRET_VALUE));
		assert_null(strstr(out, "wt_9f8e"));
		assert_non_null(strstr(out, "[redacted]"));
		assert_non_null(strstr(out, "ops"));
		free(out);
		close(fd);
	}
}

static void log_key_is_secret_matches_documented_words_only(void **state) {
	assert_true(log_key_is_secret("token"));
	assert_true(log_key_is_secret("TOKEN_ID"));
	assert_true(log_key_is_secret("refresh_token"));
	assert_true(log_key_is_secret("Authorization"));
	assert_true(log_key_is_secret("session_cookie"));
	assert_true(log_key_is_secret("ssh_key"));
	assert_true(log_key_is_secret("key"));
	assert_true(log_key_is_secret("smtp_passwd"));
	assert_false(log_key_is_secret("user"));
	assert_false(log_key_is_secret("addr"));
	assert_false(log_key_is_secret("keyspace"));
	assert_false(log_key_is_secret("monkey_count"));
	assert_false(log_key_is_secret(NULL));
}

static void log_level_names_parse_and_print(void **state) {
	enum log_level l;

	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("WARN", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("warning", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("loud", &l), -1);
	assert_int_equal(log_level_parse(NULL, &l), -1);
	assert_string_equal(log_level_name(LOG_INFO), "info");
	assert_string_equal(log_level_name((enum log_level)42), "unknown");
}

#define LOG_THREADS 4
#define LOG_LINES   300

static void *log_worker(void *arg) {
	char id[16];
	int i;

	snprintf(id, sizeof(id), "%d", (int)(intptr_t)arg);
	for (i = 0; i < LOG_LINES; i++)
		ward_log(LOG_INFO, "concurrent line with some padding to make it longer", "thread",
		         id, "filler", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		         NULL);
	return NULL;
}

static void log_lines_from_threads_never_interleave(void **state) {
	pthread_t th[LOG_THREADS];
	int fd = tmp_fd(), i, lines = 0;
	char *out, *line, *save = NULL;

	log_setup(LOG_INFO, LOG_FORMAT_JSON, fd);
	for (i = 0; i < LOG_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_worker, (void *)(intptr_t)i), 0);
	for (i = 0; i < LOG_THREADS; i++)
		pthread_join(th[i], NULL);
	out = read_all(fd);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_true(ward_has_prefix(line, "{\"ts\":"));
		assert_int_equal(line[strlen(line) - 1], '}');
		lines++;
	}
	assert_int_equal(lines, LOG_THREADS * LOG_LINES);
	free(out);
	close(fd);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(log_json_line_has_ts_level_msg_then_fields),
	        cmocka_unit_test(log_logfmt_quotes_values_that_need_it),
	        cmocka_unit_test(log_drops_events_below_level),
	        cmocka_unit_test(log_never_writes_secret_values),
	        cmocka_unit_test(log_key_is_secret_matches_documented_words_only),
	        cmocka_unit_test(log_level_names_parse_and_print),
	        cmocka_unit_test(log_lines_from_threads_never_interleave),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	log_setup(LOG_INFO, LOG_FORMAT_AUTO, 2);
	return rc;
}
