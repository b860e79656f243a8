/* security_audit.c: unit tests of the hash-chained audit trail (src/security/audit*.c).
 * Each test works in its own temporary directory, edits segment files by hand the way an
 * attacker or a crash would, and checks what audit_open, audit_verify and audit_query say.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "security/audit_internal.h"
#include "security/security.h"

struct fixture {
	char dir[64];
	char seg1[96];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	return remove(path);
}

static int setup(void **state) {
	struct fixture *fx = calloc(1, sizeof *fx);
	char tmpl[] = "/tmp/ward-audit-test-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	/* a subdirectory, so audit_open has to create it */
	snprintf(fx->dir, sizeof fx->dir, "%s/audit", tmpl);
	snprintf(fx->seg1, sizeof fx->seg1, "%s/000001.log", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state) {
	struct fixture *fx = *state;
	char *parent = strdup(fx->dir);
	*strrchr(parent, '/') = '\0';
	nftw(parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(parent);
	free(fx);
	return 0;
}

static void append_one(struct audit *a, const char *actor, const char *action, int i) {
	struct ward_err err = {{0}};
	char target[32], details[64], req[32];
	snprintf(target, sizeof target, "obj-%d", i);
	snprintf(details, sizeof details, "{\"n\":%d,\"why\":\"test\"}", i);
	snprintf(req, sizeof req, "req-%d", i);
	struct audit_record r = {.actor_id = actor,
	                         .actor_name = actor,
	                         .source = "127.0.0.1",
	                         .action = action,
	                         .target = target,
	                         .result = "ok",
	                         .details = details,
	                         .request_id = req};
	if (audit_append(a, &r, &err) != 0)
		fail_msg("audit_append: %s", err.msg);
}

static struct audit *open_ok(const char *dir) {
	struct ward_err err = {{0}};
	struct audit *a = audit_open(dir, &err);
	if (!a)
		fail_msg("audit_open: %s", err.msg);
	return a;
}

static void fill(const char *dir, int n) {
	struct audit *a = open_ok(dir);
	for (int i = 1; i <= n; i++)
		append_one(a, "tok-1", "token.create", i);
	audit_close(a);
}

/* The lines of a file, each with its '\n'; the array and strings are freed by free_lines. */
static char **read_lines(const char *path, size_t *n) {
	FILE *f = fopen(path, "r");
	char **v = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t len;
	assert_non_null(f);
	*n = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		v = realloc(v, (*n + 1) * sizeof *v);
		v[(*n)++] = strndup(line, (size_t)len);
	}
	free(line);
	fclose(f);
	return v;
}

static void write_lines(const char *path, char **v, size_t n) {
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fputs(v[i], f);
	fclose(f);
}

static void free_lines(char **v, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void append_raw(const char *path, const char *text) {
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_verify(const char *dir, uint64_t anchor_seq, const char *anchor_hash,
                          int want_rc, const char *want_msg) {
	struct ward_err err = {{0}};
	uint64_t count = 0;
	int rc = audit_verify(dir, anchor_seq, anchor_hash, &count, &err);
	if (rc != want_rc)
		fail_msg("audit_verify returned %d, want %d: %s", rc, want_rc, err.msg);
	if (want_msg && !strstr(err.msg, want_msg))
		fail_msg("audit_verify said \"%s\", want it to contain \"%s\"", err.msg, want_msg);
}

static void append_then_verify_ok_and_reopen_continues(void **state) {
	struct fixture *fx = *state;
	struct ward_err err = {{0}};
	uint64_t seq, count = 0;
	char hash[AUDIT_HEX_LEN + 1];
	struct stat st;

	fill(fx->dir, 10);
	assert_int_equal(stat(fx->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(audit_verify(fx->dir, 0, NULL, &count, &err), 0);
	assert_int_equal(count, 10);

	struct audit *a = open_ok(fx->dir);
	audit_head(a, &seq, hash);
	assert_int_equal(seq, 10);
	assert_int_equal(audit_size_bytes(a), (stat(fx->seg1, &st), st.st_size));
	append_one(a, "system", "serve.start", 11);
	audit_head(a, &seq, hash);
	assert_int_equal(seq, 11);
	audit_close(a);
	assert_int_equal(audit_verify(fx->dir, 11, hash, &count, &err), 0);
	assert_int_equal(count, 11);
	expect_verify(fx->dir, 11,
	              "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1,
	              "seq 11: hash ");
}

static void first_record_links_to_zero_hash(void **state) {
	struct fixture *fx = *state;
	size_t n;
	struct audit_entry e;
	fill(fx->dir, 2);
	char **v = read_lines(fx->seg1, &n);
	assert_int_equal(n, 2);
	assert_int_equal(audit_parse_line(v[0], strlen(v[0]) - 1, &e, NULL), 0);
	assert_int_equal(e.seq, 1);
	assert_string_equal(e.prev,
	                    "0000000000000000000000000000000000000000000000000000000000000000");
	assert_string_equal(e.details, "{\"n\":1,\"why\":\"test\"}");
	assert_string_equal(e.request_id, "req-1");
	char first_hash[AUDIT_HEX_LEN + 1];
	memcpy(first_hash, e.hash, sizeof first_hash);
	audit_entry_free(&e);
	assert_int_equal(audit_parse_line(v[1], strlen(v[1]) - 1, &e, NULL), 0);
	assert_string_equal(e.prev, first_hash);
	audit_entry_free(&e);
	free_lines(v, n);
}

static void verify_names_a_modified_field(void **state) {
	struct fixture *fx = *state;
	size_t n;
	fill(fx->dir, 10);
	char **v = read_lines(fx->seg1, &n);
	char *p = strstr(v[4], "obj-5");
	assert_non_null(p);
	p[4] = '7'; /* one byte of the target of seq 5 */
	write_lines(fx->seg1, v, n);
	free_lines(v, n);
	expect_verify(fx->dir, 0, NULL, 1,
	              "segment 000001.log line 5, seq 5: hash mismatch: the record was modified");
}

static void verify_names_a_reformatted_line(void **state) {
	struct fixture *fx = *state;
	size_t n;
	fill(fx->dir, 4);
	char **v = read_lines(fx->seg1, &n);
	/* same JSON meaning, different bytes: still an edit */
	char *p = strstr(v[2], "\"result\"");
	char *edited = NULL;
	assert_non_null(p);
	assert_true(asprintf(&edited, "%.*s %s", (int)(p - v[2]), v[2], p) > 0);
	free(v[2]);
	v[2] = edited;
	write_lines(fx->seg1, v, n);
	free_lines(v, n);
	expect_verify(fx->dir, 0, NULL, 1, "line 3, seq 3: hash mismatch");
}

static void verify_names_a_deleted_middle_line(void **state) {
	struct fixture *fx = *state;
	size_t n;
	fill(fx->dir, 10);
	char **v = read_lines(fx->seg1, &n);
	free(v[4]);
	memmove(&v[4], &v[5], (n - 5) * sizeof *v);
	write_lines(fx->seg1, v, n - 1);
	free_lines(v, n - 1);
	expect_verify(fx->dir, 0, NULL, 1,
	              "segment 000001.log line 5, seq 6: sequence gap: expected seq 5, found 6: "
	              "records were deleted");
}

static void verify_names_swapped_lines(void **state) {
	struct fixture *fx = *state;
	size_t n;
	fill(fx->dir, 10);
	char **v = read_lines(fx->seg1, &n);
	char *t = v[3];
	v[3] = v[4];
	v[4] = t;
	write_lines(fx->seg1, v, n);
	free_lines(v, n);
	expect_verify(fx->dir, 0, NULL, 1, "segment 000001.log line 4, seq 5: sequence gap");
}

/* A forged record that hashes correctly but whose prev is not its predecessor's hash. */
static char *forge(const char *model_line, uint64_t seq, const char *prev) {
	struct audit_entry e;
	struct buf canon = BUF_INIT, line = BUF_INIT;
	uint8_t h[WARD_SHA256_LEN];
	char hex[AUDIT_HEX_LEN + 1];
	assert_int_equal(audit_parse_line(model_line, strlen(model_line) - 1, &e, NULL), 0);
	e.seq = seq;
	memcpy(e.prev, prev, AUDIT_HEX_LEN + 1);
	free(e.actor_name);
	e.actor_name = strdup("mallory");
	audit_canon(&canon, &e);
	ward_sha256(canon.data, canon.len, h);
	ward_hex(h, sizeof h, hex);
	audit_line_from_canon(&line, &canon, hex);
	buf_putc(&line, '\n');
	audit_entry_free(&e);
	buf_free(&canon);
	return buf_detach(&line);
}

static void verify_names_a_forged_inserted_line(void **state) {
	struct fixture *fx = *state;
	size_t n;
	fill(fx->dir, 10);
	char **v = read_lines(fx->seg1, &n);
	v = realloc(v, (n + 1) * sizeof *v);
	memmove(&v[5], &v[4], (n - 4) * sizeof *v);
	v[4] = forge(v[5], 5, "1111111111111111111111111111111111111111111111111111111111111111");
	write_lines(fx->seg1, v, n + 1);
	free_lines(v, n + 1);
	expect_verify(fx->dir, 0, NULL, 1,
	              "segment 000001.log line 5, seq 5: prev hash mismatch: a record before it "
	              "was deleted, inserted or reordered");
}

static void verify_names_the_record_after_a_well_linked_forgery(void **state) {
	struct fixture *fx = *state;
	size_t n;
	struct audit_entry e4;
	fill(fx->dir, 10);
	char **v = read_lines(fx->seg1, &n);
	assert_int_equal(audit_parse_line(v[3], strlen(v[3]) - 1, &e4, NULL), 0);
	v = realloc(v, (n + 1) * sizeof *v);
	memmove(&v[5], &v[4], (n - 4) * sizeof *v);
	v[4] = forge(v[5], 5, e4.hash); /* links to seq 4 correctly */
	audit_entry_free(&e4);
	write_lines(fx->seg1, v, n + 1);
	free_lines(v, n + 1);
	expect_verify(fx->dir, 0, NULL, 1,
	              "line 6, seq 5: sequence out of order: expected seq 6, found 5");
}

static void tail_deletion_is_caught_only_with_an_anchor(void **state) {
	struct fixture *fx = *state;
	size_t n;
	uint64_t seq, count;
	char hash[AUDIT_HEX_LEN + 1];
	struct ward_err err = {{0}};
	struct audit *a = open_ok(fx->dir);
	for (int i = 1; i <= 10; i++)
		append_one(a, "tok-1", "token.create", i);
	audit_head(a, &seq, hash);
	audit_close(a);
	char **v = read_lines(fx->seg1, &n);
	write_lines(fx->seg1, v, n - 2);
	free_lines(v, n);
	assert_int_equal(audit_verify(fx->dir, 0, NULL, &count, &err), 0);
	assert_int_equal(count, 8);
	char want[256];
	snprintf(want, sizeof want,
	         "chain ends at seq 8 but the anchor says seq 10 with hash %s: records were "
	         "deleted from the end",
	         hash);
	expect_verify(fx->dir, seq, hash, 1, want);
}

static void reopen_trims_a_torn_tail_and_the_chain_continues(void **state) {
	struct fixture *fx = *state;
	uint64_t seq;
	fill(fx->dir, 5);
	append_raw(fx->seg1, "{\"seq\":6,\"time\":\"2026-"); /* cut mid-write, no newline */
	struct audit *a = open_ok(fx->dir);
	audit_head(a, &seq, NULL);
	assert_int_equal(seq, 5);
	append_one(a, "tok-1", "token.delete", 6);
	audit_close(a);
	expect_verify(fx->dir, 0, NULL, 0, NULL);

	/* an unparsable complete last line is a crash leftover too */
	append_raw(fx->seg1, "garbage\n");
	a = open_ok(fx->dir);
	audit_head(a, &seq, NULL);
	assert_int_equal(seq, 6);
	append_one(a, "tok-1", "token.delete", 7);
	audit_close(a);
	expect_verify(fx->dir, 0, NULL, 0, NULL);

	/* but only the last line: two bad lines are corruption, not a crash; open refuses */
	struct ward_err err = {{0}};
	append_raw(fx->seg1, "{\"seq\":8,\"ti\n");
	append_raw(fx->seg1, "garbage\n");
	assert_null(audit_open(fx->dir, &err));
	assert_non_null(strstr(err.msg, "corrupt"));
	expect_verify(fx->dir, 0, NULL, 1, "line 8: unparsable line");
}

static void verify_skips_an_incomplete_last_line_being_written(void **state) {
	struct fixture *fx = *state;
	uint64_t count;
	struct ward_err err = {{0}};
	fill(fx->dir, 3);
	append_raw(fx->seg1, "{\"seq\":4,");
	assert_int_equal(audit_verify(fx->dir, 0, NULL, &count, &err), 0);
	assert_int_equal(count, 3);
}

static void query_filters_by_time_actor_action_and_pages(void **state) {
	struct fixture *fx = *state;
	struct ward_err err = {{0}};
	struct audit_entry *out;
	struct audit *a = open_ok(fx->dir);
	struct timespec pause = {0, 20 * 1000 * 1000};
	int n;

	append_one(a, "alice", "token.create", 1);
	append_one(a, "bob", "config.reload", 2);
	append_one(a, "alice", "token.delete", 3);
	nanosleep(&pause, NULL);
	int64_t mid = ward_now_ms();
	nanosleep(&pause, NULL);
	append_one(a, "bob", "token.create", 4);
	append_one(a, "system", "serve.stop", 5);
	append_one(a, "alice", "tokens", 6);

	/* everything, newest first */
	n = audit_query(a, &(struct audit_query){0}, &out, &err);
	assert_int_equal(n, 6);
	for (int i = 0; i < n; i++)
		assert_int_equal(out[i].seq, 6 - i);
	for (int i = 0; i < n; i++)
		audit_entry_free(&out[i]);
	free(out);

	n = audit_query(a, &(struct audit_query){.since_ms = mid}, &out, &err);
	assert_int_equal(n, 3);
	assert_int_equal(out[2].seq, 4);
	for (int i = 0; i < n; i++)
		audit_entry_free(&out[i]);
	free(out);

	n = audit_query(a, &(struct audit_query){.until_ms = mid}, &out, &err);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].seq, 3);
	for (int i = 0; i < n; i++)
		audit_entry_free(&out[i]);
	free(out);

	n = audit_query(a, &(struct audit_query){.actor = "alice"}, &out, &err);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].seq, 6);
	assert_int_equal(out[1].seq, 3);
	assert_int_equal(out[2].seq, 1);
	for (int i = 0; i < n; i++)
		audit_entry_free(&out[i]);
	free(out);

	const char *prefixes[] = {"token.", "token.*"};
	for (int k = 0; k < 2; k++) {
		n = audit_query(a, &(struct audit_query){.action = prefixes[k]}, &out, &err);
		assert_int_equal(n, 3); /* not "tokens" */
		assert_int_equal(out[0].seq, 4);
		assert_int_equal(out[1].seq, 3);
		assert_int_equal(out[2].seq, 1);
		for (int i = 0; i < n; i++)
			audit_entry_free(&out[i]);
		free(out);
	}
	n = audit_query(a, &(struct audit_query){.action = "token.create", .actor = "bob"}, &out,
	                &err);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].seq, 4);
	assert_string_equal(out[0].actor_name, "bob");
	assert_string_equal(out[0].target, "obj-4");
	audit_entry_free(&out[0]);
	free(out);

	/* paging: two at a time, each page below the last seq seen */
	uint64_t before = 0, seen = 0;
	for (int page = 0; page < 4; page++) {
		n = audit_query(a, &(struct audit_query){.limit = 2, .before_seq = before}, &out,
		                &err);
		assert_true(n >= 0);
		if (page == 3) {
			assert_int_equal(n, 0);
			free(out);
			break;
		}
		assert_int_equal(n, 2);
		assert_int_equal(out[0].seq, 6 - 2 * page);
		assert_int_equal(out[1].seq, 5 - 2 * page);
		before = out[1].seq;
		seen += (uint64_t)n;
		for (int i = 0; i < n; i++)
			audit_entry_free(&out[i]);
		free(out);
	}
	assert_int_equal(seen, 6);
	audit_close(a);
}

struct thread_arg {
	struct audit *a;
	int id;
};

enum { THREADS = 4, PER_THREAD = 25 };

static void *appender(void *p) {
	struct thread_arg *t = p;
	char actor[16];
	snprintf(actor, sizeof actor, "thread-%d", t->id);
	for (int i = 0; i < PER_THREAD; i++)
		append_one(t->a, actor, "test.concurrent", i);
	return NULL;
}

static void concurrent_appends_keep_a_valid_chain(void **state) {
	struct fixture *fx = *state;
	struct audit *a = open_ok(fx->dir);
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	struct ward_err err = {{0}};
	uint64_t seq, count;

	audit_set_segment_max(a, 4096); /* rolls happen under contention too */
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){a, i};
		assert_int_equal(pthread_create(&th[i], NULL, appender, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	audit_head(a, &seq, NULL);
	assert_int_equal(seq, THREADS * PER_THREAD);
	audit_close(a);
	if (audit_verify(fx->dir, 0, NULL, &count, &err) != 0)
		fail_msg("verify: %s", err.msg);
	assert_int_equal(count, THREADS * PER_THREAD);
}

static void segments_roll_and_the_chain_continues_across_them(void **state) {
	struct fixture *fx = *state;
	struct ward_err err = {{0}};
	struct audit_entry *out;
	uint32_t *segs;
	size_t nseg;
	uint64_t count, seq;
	int64_t total = 0;
	struct audit *a = open_ok(fx->dir);

	audit_set_segment_max(a, 1000);
	for (int i = 1; i <= 30; i++)
		append_one(a, "tok-1", "token.create", i);
	assert_int_equal(audit_list_segments(fx->dir, &segs, &nseg, &err), 0);
	assert_true(nseg >= 5);
	for (size_t i = 0; i < nseg; i++) {
		char path[160], name[32];
		struct stat st;
		audit_segment_name(segs[i], name);
		assert_int_equal(segs[i], i + 1);
		snprintf(path, sizeof path, "%s/%s", fx->dir, name);
		assert_int_equal(stat(path, &st), 0);
		assert_true(st.st_size <= 1000);
		total += st.st_size;
	}
	free(segs);
	assert_int_equal(audit_size_bytes(a), total);

	/* a query spanning segments is still newest first */
	int n = audit_query(a, &(struct audit_query){.limit = 12, .before_seq = 25}, &out, &err);
	assert_int_equal(n, 12);
	for (int i = 0; i < n; i++) {
		assert_int_equal(out[i].seq, 24 - i);
		audit_entry_free(&out[i]);
	}
	free(out);
	audit_close(a);

	a = open_ok(fx->dir);
	audit_head(a, &seq, NULL);
	assert_int_equal(seq, 30);
	append_one(a, "tok-1", "token.create", 31);
	audit_close(a);
	assert_int_equal(audit_verify(fx->dir, 0, NULL, &count, &err), 0);
	assert_int_equal(count, 31);

	/* losing a whole segment is a gap at the first record of the next one */
	char path[160];
	snprintf(path, sizeof path, "%s/000002.log", fx->dir);
	assert_int_equal(unlink(path), 0);
	expect_verify(fx->dir, 0, NULL, 1, "segment 000003.log line 1");
	expect_verify(fx->dir, 0, NULL, 1, "sequence gap");
}

static void details_are_canonical_and_strings_round_trip(void **state) {
	struct fixture *fx = *state;
	struct ward_err err = {{0}};
	struct audit_entry *out;
	struct audit *a = open_ok(fx->dir);
	const char *odd =
	        "quote\" back\\ nl\n tab\t ctl\x01 bad\xff utf8 \xc3\xa9 \xf0\x9f\x94\x92";
	struct audit_record r = {.actor_id = odd,
	                         .actor_name = NULL,
	                         .action = "x.y",
	                         .details = " { \"b\" : 2.5, \"a\" : [1, \"\\u00e9\"] } "};
	assert_int_equal(audit_append(a, &r, &err), 0);
	r.details = "[1,2]";
	assert_int_equal(audit_append(a, &r, &err), -1);
	assert_non_null(strstr(err.msg, "JSON object"));
	r.details = "{\"a\":";
	assert_int_equal(audit_append(a, &r, &err), -1);
	r.details = NULL;
	assert_int_equal(audit_append(a, &r, &err), 0);

	int n = audit_query(a, &(struct audit_query){0}, &out, &err);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].details, "{}");
	assert_string_equal(out[1].details, "{\"a\":[1,\"\xc3\xa9\"],\"b\":2.5}");
	assert_string_equal(out[1].actor_name, "");
	assert_non_null(strstr(out[1].actor_id, "bad\xef\xbf\xbd utf8"));
	for (int i = 0; i < n; i++)
		audit_entry_free(&out[i]);
	free(out);
	audit_close(a);
	expect_verify(fx->dir, 0, NULL, 0, NULL);
}

static void a_second_writer_is_refused(void **state) {
	struct fixture *fx = *state;
	struct ward_err err = {{0}};
	struct audit *a = open_ok(fx->dir);
	assert_null(audit_open(fx->dir, &err));
	assert_non_null(strstr(err.msg, "in use"));
	audit_close(a);
}

static void parse_line_rejects_garbage(void **state) {
	struct audit_entry e;
	struct ward_err err = {{0}};
	const char *bad[] = {
	        "",
	        "{",
	        "[]",
	        "null",
	        "{}",
	        "{\"seq\":1}",
	        "{\"seq\":0,\"time\":\"2026-01-01T00:00:00.000Z\",\"actor_id\":\"\",\"actor_name\":"
	        "\"\",\"source\":\"\",\"action\":\"\",\"target\":\"\",\"result\":\"\",\"request_"
	        "id\":"
	        "\"\",\"details\":{},\"prev\":"
	        "\"0000000000000000000000000000000000000000000000000000"
	        "000000000000\",\"hash\":"
	        "\"00000000000000000000000000000000000000000000000000000000000"
	        "00000\"}",
	        "{\"seq\":1,\"seq\":2}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(audit_parse_line(bad[i], strlen(bad[i]), &e, &err), -1);
		assert_true(err.msg[0] != '\0');
		err.msg[0] = '\0';
	}
	const char *good =
	        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00.000Z\",\"actor_id\":\"\",\"actor_name\":"
	        "\"\",\"source\":\"\",\"action\":\"\",\"target\":\"\",\"result\":\"\",\"request_"
	        "id\":"
	        "\"\",\"details\":{},\"prev\":"
	        "\"0000000000000000000000000000000000000000000000000000"
	        "000000000000\",\"hash\":"
	        "\"00000000000000000000000000000000000000000000000000000000000"
	        "00000\"}";
	assert_int_equal(audit_parse_line(good, strlen(good), &e, &err), 0);
	assert_int_equal(e.ts_ms, 1767225600000LL);
	audit_entry_free(&e);
}

int main(void) {
	ward_crypto_init();
	log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT, 2); /* the torn-tail warnings are expected */
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(append_then_verify_ok_and_reopen_continues, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(first_record_links_to_zero_hash, setup, teardown),
	        cmocka_unit_test_setup_teardown(verify_names_a_modified_field, setup, teardown),
	        cmocka_unit_test_setup_teardown(verify_names_a_reformatted_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(verify_names_a_deleted_middle_line, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(verify_names_swapped_lines, setup, teardown),
	        cmocka_unit_test_setup_teardown(verify_names_a_forged_inserted_line, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(verify_names_the_record_after_a_well_linked_forgery,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(tail_deletion_is_caught_only_with_an_anchor, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(reopen_trims_a_torn_tail_and_the_chain_continues,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(verify_skips_an_incomplete_last_line_being_written,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(query_filters_by_time_actor_action_and_pages, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(concurrent_appends_keep_a_valid_chain, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(segments_roll_and_the_chain_continues_across_them,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(details_are_canonical_and_strings_round_trip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(a_second_writer_is_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(parse_line_rejects_garbage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
