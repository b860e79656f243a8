/* backup_forget.c: unit tests for the forget policy (restic's semantics): a table of
 * snapshot times and policies with the snapshots each keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/backup_internal.h"

#define H (3600ll * 1000000000)
#define D (24 * H)
/* 2026-01-01T00:00:00Z, a Thursday. */
#define T0 (1767225600ll * 1000000000)

struct policy_case {
	const char *name;
	struct backup_policy p;
	int64_t times[16]; /* newest first, 0-terminated */
	const char *keep;  /* 'k' kept, '-' forgotten, one per time */
};

static const struct policy_case cases[] = {
        {"last 2 keeps the two newest", {.last = 2}, {T0 + 3 * H, T0 + 2 * H, T0 + H, T0}, "kk--"},
        {"hourly 2 keeps the newest of each of two hours",
         {.hourly = 2},
         {T0 + H + 30, T0 + H + 10, T0 + 50, T0 + 10, T0 - H},
         "k-k--"},
        {"daily 3 over five days, two snapshots a day",
         {.daily = 3},
         {T0 + 4 * D + H, T0 + 4 * D, T0 + 3 * D + H, T0 + 3 * D, T0 + 2 * D + H, T0 + 2 * D,
          T0 + D, T0},
         "k-k-k---"},
        {"daily skips days without a snapshot",
         {.daily = 2},
         {T0 + 10 * D, T0 + 5 * D, T0 + 5 * D - H, T0},
         "kk--"},
        {"weekly 2 uses ISO weeks",
         /* T0 is Thursday of 2026-W01; T0+4D is Monday of W02. */
         {.weekly = 2},
         {T0 + 5 * D, T0 + 4 * D, T0 + 3 * D, T0 + 2 * D, T0 - 4 * D},
         "k-k--"},
        {"monthly 2 and yearly 1",
         {.monthly = 2, .yearly = 1},
         {T0 + 40 * D, T0 + 35 * D, T0 + 10 * D, T0 - 10 * D},
         "k-k-"},
        {"yearly keeps last snapshot of each year",
         {.yearly = 3},
         {T0 + 400 * D, T0 + 10 * D, T0 - D, T0 - 2 * D, T0 - 400 * D},
         "kkk--"},
        {"rules combine: last 1 plus daily 2",
         {.last = 1, .daily = 2},
         {T0 + D + 2 * H, T0 + D + H, T0 + 2 * H, T0 + H},
         "k-k-"},
        {"a policy larger than history keeps all", {.last = 10}, {T0 + 2, T0 + 1, T0}, "kkk"},
};

static void policy_table_matches_restic_semantics(void **state) {
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct policy_case *pc = &cases[c];
		size_t n = 0;
		bool keep[16];
		while (pc->times[n] && n < 16)
			n++;
		if (pc->times[0] == T0 && n == 0)
			n = 1;
		backup_policy_apply(&pc->p, pc->times, n, keep);
		for (size_t i = 0; i < n; i++) {
			if (keep[i] != (pc->keep[i] == 'k'))
				fail_msg("case \"%s\": snapshot %zu is %s, expected %s", pc->name,
				         i, keep[i] ? "kept" : "forgotten",
				         pc->keep[i] == 'k' ? "kept" : "forgotten");
		}
	}
}

static void empty_policy_is_refused(void **state) {
	struct backup_policy p = {0};
	assert_true(backup_policy_empty(&p));
	p.weekly = 1;
	assert_false(backup_policy_empty(&p));
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(policy_table_matches_restic_semantics),
	        cmocka_unit_test(empty_policy_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
