/* http_ratelimit.c: the per-client token bucket allows a burst, then refills at the rate,
 * keeps clients apart, says how long to wait, and forgets idle clients.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "http/http_internal.h"

static void bucket_allows_burst_then_refuses_with_retry_after(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	int retry = 0;
	for (int i = 0; i < 5; i++)
		assert_true(ratelimit_take(rl, "a", 2, 5, 1000, &retry));
	assert_false(ratelimit_take(rl, "a", 2, 5, 1000, &retry));
	assert_int_equal(retry, 1);
	/* another client has its own bucket */
	assert_true(ratelimit_take(rl, "b", 2, 5, 1000, &retry));
	/* half a second refills one token at 2/s */
	assert_true(ratelimit_take(rl, "a", 2, 5, 1500, &retry));
	assert_false(ratelimit_take(rl, "a", 2, 5, 1500, &retry));
	ratelimit_free(rl);
}

static void slow_rate_reports_whole_seconds(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	int retry = 0;
	assert_true(ratelimit_take(rl, "a", 0.1, 1, 0, &retry));
	assert_false(ratelimit_take(rl, "a", 0.1, 1, 0, &retry));
	assert_int_equal(retry, 10);
	ratelimit_free(rl);
}

static void zero_rate_means_unlimited(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	int retry = 0;
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(rl, "a", 0, 1, 0, &retry));
	assert_int_equal(ratelimit_clients(rl), 0);
	ratelimit_free(rl);
}

static void idle_clients_are_forgotten(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	int retry = 0;
	char name[32];
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		ratelimit_take(rl, name, 10, 10, 0, &retry);
	}
	assert_int_equal(ratelimit_clients(rl), 64);
	/* 10 s later every bucket is full again: the next new client prunes them */
	ratelimit_take(rl, "late", 10, 10, 10000, &retry);
	assert_int_equal(ratelimit_clients(rl), 1);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_allows_burst_then_refuses_with_retry_after),
		cmocka_unit_test(slow_rate_reports_whole_seconds),
		cmocka_unit_test(zero_rate_means_unlimited),
		cmocka_unit_test(idle_clients_are_forgotten),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
