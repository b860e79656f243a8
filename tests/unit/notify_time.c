/* notify_time.c: unit tests for maintenance windows (one-off, recurring in an IANA zone,
 * across midnight, on both DST change nights) and on-call rotations (daily, weekly with
 * handoff time in a zone, overrides). Uses the system tz database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify/notify_internal.h"

static int64_t T(const char *s) {
	int64_t ms;
	assert_int_equal(ward_parse_time(s, strlen(s), &ms), 0);
	return ms;
}

static void recurring_window_follows_local_time(void **state) {
	struct nfy_maint w = {0};
	struct ward_err err;
	assert_int_equal(nfy_schedule_parse("Sundays 02:00-04:00 Europe/Berlin", &w, &err), 0);
	/* 2026-01-11 is a Sunday; Berlin is UTC+1 in winter */
	assert_false(nfy_maint_active(&w, T("2026-01-11T00:59:00Z")));
	assert_true(nfy_maint_active(&w, T("2026-01-11T01:00:00Z")));
	assert_true(nfy_maint_active(&w, T("2026-01-11T02:59:00Z")));
	assert_false(nfy_maint_active(&w, T("2026-01-11T03:00:00Z")));
	assert_false(nfy_maint_active(&w, T("2026-01-12T01:30:00Z"))); /* Monday */
	/* summer: UTC+2 */
	assert_true(nfy_maint_active(&w, T("2026-07-05T00:30:00Z")));
	assert_false(nfy_maint_active(&w, T("2026-07-05T02:00:00Z")));
}

static void window_on_dst_nights_uses_wall_clock(void **state) {
	struct nfy_maint w = {0};
	struct ward_err err;
	assert_int_equal(nfy_schedule_parse("Sun 02:00-04:00 Europe/Berlin", &w, &err), 0);
	/* spring forward 2026-03-29 01:00Z: 02:00-03:00 local does not exist -> one hour */
	assert_false(nfy_maint_active(&w, T("2026-03-29T00:59:00Z"))); /* 01:59 CET */
	assert_true(nfy_maint_active(&w, T("2026-03-29T01:00:00Z")));  /* 03:00 CEST */
	assert_false(nfy_maint_active(&w, T("2026-03-29T02:00:00Z"))); /* 04:00 CEST */
	/* fall back 2026-10-25 01:00Z: 02:00-03:00 happens twice -> three hours */
	assert_false(nfy_maint_active(&w, T("2026-10-24T23:59:00Z"))); /* 01:59 CEST */
	assert_true(nfy_maint_active(&w, T("2026-10-25T00:00:00Z")));  /* 02:00 CEST */
	assert_true(nfy_maint_active(&w, T("2026-10-25T01:30:00Z")));  /* 02:30 CET */
	assert_true(nfy_maint_active(&w, T("2026-10-25T02:59:00Z")));  /* 03:59 CET */
	assert_false(nfy_maint_active(&w, T("2026-10-25T03:00:00Z"))); /* 04:00 CET */
}

static void window_past_midnight_belongs_to_its_start_day(void **state) {
	struct nfy_maint w = {0};
	struct ward_err err;
	assert_int_equal(nfy_schedule_parse("Fri 22:00-02:00 UTC", &w, &err), 0);
	assert_true(nfy_maint_active(&w, T("2026-01-09T23:00:00Z")));  /* Friday */
	assert_true(nfy_maint_active(&w, T("2026-01-10T01:00:00Z")));  /* Saturday morning */
	assert_false(nfy_maint_active(&w, T("2026-01-11T01:00:00Z"))); /* Sunday morning */
	assert_false(nfy_maint_active(&w, T("2026-01-10T23:00:00Z"))); /* Saturday night */
}

static void bad_schedules_are_refused(void **state) {
	struct nfy_maint w = {0};
	struct ward_err err;
	assert_int_equal(nfy_schedule_parse("Sundays 02:00-04:00 Mars/Olympus", &w, &err), -1);
	assert_int_equal(nfy_schedule_parse("Funday 02:00-04:00 UTC", &w, &err), -1);
	assert_int_equal(nfy_schedule_parse("Sun 02:00 UTC", &w, &err), -1);
	assert_int_equal(nfy_schedule_parse("Sun 25:00-04:00 UTC", &w, &err), -1);
	assert_int_equal(nfy_schedule_parse("Sun 02:00-04:00 ../../etc/passwd", &w, &err), -1);
	assert_int_equal(nfy_schedule_parse("Mon-Fri 09:00-17:00 America/New_York", &w, &err), 0);
	assert_int_equal(w.weekdays, 0x3e);
}

static void oncall_rotates_at_local_handoff(void **state) {
	struct nc_participant ps[3] = {{.name = "ann"}, {.name = "bob"}, {.name = "cid"}};
	struct nc_schedule c = {.name = "s",
	                        .handoff = "09:00",
	                        .time_zone = "Europe/Berlin",
	                        .participants = ps,
	                        .nparticipants = 3};
	struct nfy_schedule s = {.c = &c, .weekly = false, .handoff_min = 9 * 60};
	s.start_day = nfy_days_from_civil(2026, 1, 5);
	/* daily: ann from Jan 5 09:00 Berlin (08:00Z) */
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-05T08:00:00Z")), 0);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-05T07:59:00Z")),
	                 2); /* still the day before */
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-06T08:00:00Z")), 1);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-08T08:00:00Z")), 0);
	/* across the spring DST change the handoff stays at 09:00 local (07:00Z) */
	int64_t d = nfy_days_from_civil(2026, 3, 30) - s.start_day;
	assert_int_equal(nfy_oncall_at(&s, T("2026-03-30T07:00:00Z")), (int)(d % 3));
	assert_int_equal(nfy_oncall_at(&s, T("2026-03-30T06:59:00Z")), (int)((d + 2) % 3));
	/* weekly */
	s.weekly = true;
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-05T08:00:00Z")), 0);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-11T20:00:00Z")), 0);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-12T08:00:00Z")), 1);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-19T08:00:00Z")), 2);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-26T08:00:00Z")), 0);
	/* an override wins while it lasts */
	struct nfy_override o = {.participant = 2,
	                         .start_ms = T("2026-01-13T00:00:00Z"),
	                         .end_ms = T("2026-01-14T00:00:00Z")};
	s.overrides = &o;
	s.noverrides = 1;
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-13T12:00:00Z")), 2);
	assert_int_equal(nfy_oncall_at(&s, T("2026-01-14T12:00:00Z")), 1);
}

static void backoff_doubles_up_to_the_cap(void **state) {
	assert_int_equal(nfy_backoff_ms(1, 1000, 300000, 0), 1000);
	assert_int_equal(nfy_backoff_ms(2, 1000, 300000, 0), 2000);
	assert_int_equal(nfy_backoff_ms(5, 1000, 300000, 0), 16000);
	assert_int_equal(nfy_backoff_ms(30, 1000, 300000, 0), 300000);
	assert_int_equal(nfy_backoff_ms(1000000, 1000, 300000, 0), 300000);
	int64_t j = nfy_backoff_ms(2, 1000, 300000, 0.99);
	assert_true(j > 2000 && j <= 2200);
}

int main(void) {
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(recurring_window_follows_local_time),
	        cmocka_unit_test(window_on_dst_nights_uses_wall_clock),
	        cmocka_unit_test(window_past_midnight_belongs_to_its_start_day),
	        cmocka_unit_test(bad_schedules_are_refused),
	        cmocka_unit_test(oncall_rotates_at_local_handoff),
	        cmocka_unit_test(backoff_doubles_up_to_the_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
