/* dtoa.c: the shortest decimal digits that read back as the same double, as Go's strconv
 * (and so Prometheus) prints floats. Used by every place that writes a sample value in
 * JSON or text, which a range query does for each of its points: keep it cheap.
 *
 * Method: integers below 2^53 are exact in their own digits. Otherwise the shortest
 * precision p in 1..17 with strtod(printf("%.{p-1}e")) == v is searched for; round-tripping
 * is monotonic in p, so a binary search finds it, and it starts at 15 because values
 * computed by rate() and friends nearly always need 16 or 17 digits (two or three probes,
 * not seventeen). Invariant: the digits have no trailing zeros and the first is not 0.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static bool round_trips(double v, int prec, char *tmp, size_t cap)
{
	snprintf(tmp, cap, "%.*e", prec - 1, v);
	return strtod(tmp, NULL) == v;
}

int ward_dtoa_shortest(double v, char digits[WARD_DTOA_DIGITS], int *e10)
{
	char tmp[48];
	int nd = 0;

	v = fabs(v);
	if (v == 0 || !isfinite(v)) {
		digits[0] = '0';
		*e10 = 0;
		return 1;
	}
	if (v < 9007199254740992.0 && v == floor(v)) {
		char r[20];
		int n = 0;
		for (uint64_t u = (uint64_t)v; u; u /= 10)
			r[n++] = (char)('0' + u % 10);
		*e10 = n - 1;
		int z = 0;
		while (z < n - 1 && r[z] == '0')
			z++;
		for (int i = n - 1; i >= z; i--)
			digits[nd++] = r[i];
		return nd;
	}
	int lo = 1, hi = 17, probe = 15;
	bool have_hi = false; /* tmp holds the digits of hi */
	while (lo < hi) {
		if (round_trips(v, probe, tmp, sizeof(tmp))) {
			hi = probe;
			have_hi = true;
		} else {
			lo = probe + 1;
			have_hi = false;
		}
		probe = lo + (hi - lo) / 2;
	}
	if (!have_hi)
		snprintf(tmp, sizeof(tmp), "%.*e", hi - 1, v);
	const char *p = tmp;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	*e10 = atoi(p + (*p == 'e'));
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	return nd;
}
