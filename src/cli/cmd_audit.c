/* cmd_audit.c: `ward audit list` (online: GET /api/v1/audit, admin role) and
 * `ward audit verify` (offline: checks the hash chain in <data>/audit with audit_verify(),
 * anchored by the seq and hash the daemon keeps in state.db, so records cut from the tail
 * are caught too).
 *
 * verify only reads: it never opens the trail for writing (audit_open would trim a torn
 * tail), so it is safe while the daemon runs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "security/security.h"

/* The server's cap on one page of entries (docs/api.md). */
#define AUDIT_LIST_MAX 1000
/* A segment larger than this is not something verify should slurp to find its last line. */
#define AUDIT_SEGMENT_READ_MAX ((size_t)1 << 30)

static const char list_usage[] =
        "Usage: ward audit list [--since T] [--until T] [--actor A] [--action X] [--limit N]\n"
        "                       [--before SEQ] [--json]\n"
        "\n"
        "Lists audit trail entries of the running server, newest first. Needs an admin token.\n"
        "\n"
        "Options:\n"
        "  --since T       only entries at or after T: RFC 3339 (2026-11-24T11:00:00Z), unix\n"
        "                  seconds, or a duration ago (\"1h\", \"2d\")\n"
        "  --until T       only entries before T (same forms)\n"
        "  --actor A       only entries by this token id or name, or \"system\"\n"
        "  --action X      only this action (\"token.create\"), or a prefix ending in '.' or '*'\n"
        "                  (\"token.\")\n"
        "  --limit N       at most N entries (1-1000; default 100)\n"
        "  --before SEQ    only entries with seq below SEQ (the next page)\n"
        "  --json          print the server's data as JSON\n"
        "  -h, --help      show this help\n";

/* Accepts what the server accepts (RFC 3339, unix seconds) plus "<duration> ago" written as
 * a bare duration; puts the value to send in out. 0, or 2 after printing a usage error. */
static int audit_time_arg(const char *cmd, const char *opt, const char *v, struct buf *out) {
	int64_t ms, ago;
	struct ward_err err;
	char ts[32];

	buf_reset(out);
	if (ward_parse_time(v, strlen(v), &ms) == 0) {
		buf_puts(out, v);
		return 0;
	}
	ward_err_clear(&err);
	if (ward_parse_duration(v, strlen(v), &ago, &err) == 0) {
		ward_fmt_rfc3339(ward_now_ms() - ago, ts);
		buf_puts(out, ts);
		return 0;
	}
	return cli_usage_error(cmd,
	                       "--%s '%s' is not a time: use RFC 3339 (2026-11-24T11:00:00Z), "
	                       "unix seconds, or a duration ago (1h, 2d)",
	                       opt, v);
}

static int parse_count(const char *s, uint64_t max, uint64_t *out) {
	char *end;
	unsigned long long v;

	if (!s[0] || s[0] == '-' || s[0] == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int audit_list(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *since = NULL, *until = NULL, *actor = NULL, *action = NULL;
	const char *limit = NULL, *before = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
	        {"since", 0, &since, NULL},   {"until", 0, &until, NULL},
	        {"actor", 0, &actor, NULL},   {"action", 0, &action, NULL},
	        {"limit", 'n', &limit, NULL}, {"before", 0, &before, NULL},
	        {"json", 0, NULL, &json},     {NULL, 0, NULL, NULL},
	};
	static const char *const headers[] = {"SEQ",    "TIME",   "ACTOR", "SOURCE",
	                                      "ACTION", "TARGET", "RESULT"};
	struct buf q = BUF_INIT, t = BUF_INIT, path = BUF_INIT;
	struct cli_table *tab = NULL;
	json_t *data = NULL, *entries, *e, *next;
	uint64_t n;
	size_t i;
	int npos, rc;

	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	if (since) {
		if ((rc = audit_time_arg(argv[0], "since", since, &t)))
			goto out;
		cli_query_add(&q, "since", buf_cstr(&t));
	}
	if (until) {
		if ((rc = audit_time_arg(argv[0], "until", until, &t)))
			goto out;
		cli_query_add(&q, "until", buf_cstr(&t));
	}
	cli_query_add(&q, "actor", actor);
	cli_query_add(&q, "action", action);
	if (limit) {
		if (parse_count(limit, AUDIT_LIST_MAX, &n) != 0) {
			rc = cli_usage_error(argv[0], "--limit must be a number from 1 to %d",
			                     AUDIT_LIST_MAX);
			goto out;
		}
		cli_query_add(&q, "limit", limit);
	}
	if (before) {
		if (parse_count(before, UINT64_MAX, &n) != 0) {
			rc = cli_usage_error(argv[0], "--before must be a sequence number (> 0)");
			goto out;
		}
		cli_query_add(&q, "before", before);
	}
	buf_printf(&path, "/api/v1/audit%s%s", q.len ? "?" : "", buf_cstr(&q));
	rc = cli_api(cli, "GET", buf_cstr(&path), NULL, ROLE_ADMIN, &data);
	if (rc)
		goto out;
	if (json) {
		cli_print_json(data);
		goto out;
	}
	entries = json_object_get(data, "entries");
	tab = cli_table_new(7, headers);
	json_array_foreach(entries, i, e) {
		char seq[32], when[64];
		json_t *s = json_object_get(e, "seq");
		const char *id = cli_json_str(e, "actor_id", "");
		const char *name = cli_json_str(e, "actor_name", "");
		struct buf who = BUF_INIT;

		snprintf(seq, sizeof(seq), "%" JSON_INTEGER_FORMAT,
		         json_is_integer(s) ? json_integer_value(s) : (json_int_t)0);
		cli_fmt_time(cli_json_str(e, "time", NULL), when);
		/* "alice (3f2a...)" for tokens; "system" once for the daemon itself. */
		if (!id[0] || ward_streq(id, name) || ward_streq(id, "-"))
			buf_puts(&who, name[0] ? name : id);
		else
			buf_printf(&who, "%s (%s)", name, id);
		const char *target = cli_json_str(e, "target", "");
		const char *row[] = {seq,
		                     when,
		                     buf_cstr(&who),
		                     cli_json_str(e, "source", ""),
		                     cli_json_str(e, "action", ""),
		                     target[0] ? target : "-",
		                     cli_json_str(e, "result", "")};
		cli_table_add(tab, row);
		buf_free(&who);
	}
	if (json_array_size(entries) == 0) {
		fprintf(stderr, "no audit entries match\n");
	} else {
		cli_table_print(tab, stdout);
		next = json_object_get(data, "next_before");
		if (json_is_integer(next))
			fprintf(stderr, "more entries: add --before %" JSON_INTEGER_FORMAT "\n",
			        json_integer_value(next));
	}
out:
	cli_table_free(tab);
	json_decref(data);
	buf_free(&q);
	buf_free(&t);
	buf_free(&path);
	return rc;
}

static const char verify_usage[] =
        "Usage: ward audit verify [--data DIR] [--config FILE] [--json]\n"
        "\n"
        "Verifies the audit trail's hash chain offline (safe while the daemon runs): every\n"
        "record must follow its predecessor, and the chain must reach the head recorded in\n"
        "state.db, so modified, inserted, reordered or deleted records are found. Prints the\n"
        "first bad record.\n"
        "\n"
        "Options:\n"
        "  -d, --data DIR     the server's data directory (default: from the configuration)\n"
        "  -c, --config FILE  the server's configuration file, to find storage.data_dir\n"
        "  --json             print "
        "{\"ok\",\"dir\",\"records\",\"head_seq\",\"anchor_seq\",\"error\"}\n"
        "  -h, --help         show this help\n";

/* The seq of the last record in the newest segment, by reading its last complete line.
 * 0 when it cannot be told (the count alone is reported then). */
static uint64_t audit_head_seq(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *de;
	char *best = NULL, *data = NULL;
	struct buf path = BUF_INIT;
	struct ward_err err;
	struct audit_entry e;
	size_t len, end, start;
	uint64_t seq = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".log") == 0 &&
		    (!best || strcmp(de->d_name, best) > 0)) {
			free(best);
			best = ward_strdup(de->d_name);
		}
	}
	closedir(d);
	if (!best)
		return 0;
	buf_printf(&path, "%s/%s", dir, best);
	if (ward_read_file(buf_cstr(&path), AUDIT_SEGMENT_READ_MAX, &data, &len, &err) != 0)
		goto out;
	/* The last complete line: ends in '\n'; anything after the last '\n' is torn. */
	end = len;
	while (end > 0 && data[end - 1] != '\n')
		end--;
	while (end > 0 && data[end - 1] == '\n')
		end--;
	start = end;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	memset(&e, 0, sizeof(e));
	if (end > start && audit_parse_line(data + start, end - start, &e, &err) == 0)
		seq = e.seq;
	audit_entry_free(&e);
out:
	free(data);
	free(best);
	buf_free(&path);
	return seq;
}

static int audit_verify_cmd(struct cli *cli, const struct cli_verb *v, int argc, char **argv) {
	const char *data_opt = NULL, *config = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
	        {"data", 'd', &data_opt, NULL},
	        {"config", 'c', &config, NULL},
	        {"json", 0, NULL, &json},
	        {NULL, 0, NULL, NULL},
	};
	struct ward_err err;
	struct buf dir = BUF_INIT, db = BUF_INIT;
	char *data_dir = NULL;
	char anchor_hash[65] = "";
	uint64_t anchor_seq = 0, count = 0, head = 0;
	bool anchored = false;
	struct stat st;
	int npos, rc, vr;

	(void)cli;
	if (cli_parse(argv[0], v->usage, v->exits, argc, argv, opts, NULL, 0, &npos, &rc))
		return rc;
	ward_err_clear(&err);
	ward_modules_init();
	data_dir = ward_resolve_data_dir(config, data_opt, &err);
	if (!data_dir) {
		fprintf(stderr, "%s: %s\n", argv[0], err.msg);
		return WARD_EXIT_USAGE;
	}
	buf_printf(&dir, "%s/audit", data_dir);
	if (stat(buf_cstr(&dir), &st) != 0 && errno == ENOENT) {
		fprintf(stderr,
		        "%s: there is no audit trail at %s\n"
		        "hint: pass the server's data directory with --data DIR, or its "
		        "configuration with --config FILE\n",
		        argv[0], buf_cstr(&dir));
		rc = WARD_EXIT_USAGE;
		goto out;
	}
	errno = 0;
	if (stat(buf_cstr(&dir), &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: cannot use %s: %s\n", argv[0], buf_cstr(&dir),
		        errno ? strerror(errno) : "not a directory");
		rc = WARD_EXIT_INTERNAL;
		goto out;
	}
	buf_printf(&db, "%s/state.db", data_dir);
	if (access(buf_cstr(&db), F_OK) == 0) {
		if (ward_audit_anchor_read(data_dir, &anchor_seq, anchor_hash, &err) != 0) {
			fprintf(stderr, "%s: cannot read the audit anchor from %s: %s\n", argv[0],
			        buf_cstr(&db), err.msg);
			rc = WARD_EXIT_INTERNAL;
			goto out;
		}
		anchored = anchor_seq > 0;
	}
	ward_err_clear(&err);
	vr = audit_verify(buf_cstr(&dir), anchor_seq, anchored ? anchor_hash : NULL, &count, &err);
	if (vr == 0)
		head = audit_head_seq(buf_cstr(&dir));
	if (json) {
		json_t *o = json_pack(
		        "{s:b, s:s, s:I, s:o, s:o, s:o}", "ok", vr == 0, "dir", buf_cstr(&dir),
		        "records", (json_int_t)count, "head_seq",
		        vr == 0 && head ? json_integer((json_int_t)head) : json_null(),
		        "anchor_seq", anchored ? json_integer((json_int_t)anchor_seq) : json_null(),
		        "error", vr == 0 ? json_null() : json_string(err.msg));
		cli_print_json(o);
		json_decref(o);
	}
	if (vr == 0) {
		if (!json) {
			if (head)
				printf("audit trail ok: %llu records, chain head seq %llu\n",
				       (unsigned long long)count, (unsigned long long)head);
			else
				printf("audit trail ok: %llu records\n", (unsigned long long)count);
		}
		if (!anchored)
			fprintf(stderr,
			        "note: no anchor in %s, so records cut from the end of the trail "
			        "cannot be detected\n",
			        buf_cstr(&db));
		rc = WARD_EXIT_OK;
	} else if (vr == 1) {
		if (!json)
			fprintf(stderr, "audit trail BROKEN in %s: %s\n", buf_cstr(&dir), err.msg);
		rc = WARD_EXIT_PROBLEM;
	} else {
		if (!json)
			fprintf(stderr, "%s: cannot verify %s: %s\n", argv[0], buf_cstr(&dir),
			        err.msg);
		rc = WARD_EXIT_INTERNAL;
	}
out:
	free(data_dir);
	buf_free(&dir);
	buf_free(&db);
	return rc;
}

static const struct cli_verb audit_verbs[] = {
        {"list", "list audit trail entries of the running server", list_usage, CLI_X_ONLINE,
         audit_list},
        {"verify", "verify the audit trail's hash chain (offline)", verify_usage,
         CLI_X(WARD_EXIT_OK) | CLI_X(WARD_EXIT_PROBLEM) | CLI_X(WARD_EXIT_USAGE) |
                 CLI_X(WARD_EXIT_INTERNAL),
         audit_verify_cmd},
        {NULL, NULL, NULL, 0, NULL},
};

static int audit_run(struct cli *cli, int argc, char **argv) {
	return cli_dispatch(cli, "audit", "Read and verify the tamper-evident audit trail.",
	                    audit_verbs, argc, argv);
}

const struct cli_cmd cli_cmd_audit = {"audit", "list and verify the audit trail", audit_run};
