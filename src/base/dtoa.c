/* dtoa.c: the shortest decimal digits that read back as the same double, as Go's strconv
 * (and so Prometheus) prints floats. Used by every place that writes a sample value in
 * JSON or text, which a range query does for each of its points: keep it cheap.
 *
 * Method: integers below 2^53 are exact in their own digits. Otherwise one printf gives the
 * 17 correctly rounded digits (which always read back); each shorter length p is tried by
 * rounding those to p digits and checking that the result reads back as v, which for up
 * to 2^53 and 10^+-22 is one exact floating-point operation, not a strtod. A rounding tie
 * falls back to searching with printf and strtod. Invariant: the digits have no trailing
 * zeros and the first is not 0.
 */
#include <inttypes.h>
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

/* The definition, by search (each probe prints and reads back): the fallback. */
static int shortest_by_search(double v, char digits[WARD_DTOA_DIGITS], int *e10)
{
	char tmp[48];
	int nd = 0, lo = 1, hi = 17, probe = 15;
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

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Whether m * 10^q reads back as v: one correctly rounded operation when m and 10^|q| are
 * exact doubles (what strtod would give), else strtod itself. */
static bool reads_back(uint64_t m, int q, double v)
{
	if (m <= (UINT64_C(1) << 53) && q >= -22 && q <= 22)
		return (q >= 0 ? (double)m * pow10_exact[q] : (double)m / pow10_exact[-q]) == v;
	char t[48];
	snprintf(t, sizeof(t), "%" PRIu64 "e%d", m, q);
	return strtod(t, NULL) == v;
}

int ward_dtoa_shortest(double v, char digits[WARD_DTOA_DIGITS], int *e10)
{
	char tmp[48], d[17];
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
	/* 17 digits always read back; a shorter candidate of p digits is those rounded to p
	 * (the nearest p-digit decimal: if any p-digit decimal reads back, it does). A tie
	 * (digit p is 5 and nothing follows) may hide which side v was on: search instead. */
	snprintf(tmp, sizeof(tmp), "%.16e", v);
	const char *p = tmp;
	for (; *p && *p != 'e' && nd < 17; p++)
		if (*p >= '0' && *p <= '9')
			d[nd++] = *p;
	while (*p && *p != 'e')
		p++;
	int e = atoi(p + (*p == 'e'));
	int last = 16; /* index of the last nonzero digit of d */
	while (last > 0 && d[last] == '0')
		last--;
	for (int k = 1; k <= last; k++) { /* k digits */
		uint64_t m = 0;
		for (int i = 0; i < k; i++)
			m = m * 10 + (uint64_t)(d[i] - '0');
		int ek = e;
		if (d[k] > '5' || (d[k] == '5' && k < last)) {
			m++;
			if (m == (uint64_t)pow10_exact[k]) { /* 99.9 -> 100: one digit fewer */
				m /= 10;
				ek++;
			}
		} else if (d[k] == '5') {
			return shortest_by_search(v, digits, e10);
		}
		int nk = 0;
		for (uint64_t t = m; t; t /= 10)
			nk++;
		if (!reads_back(m, ek - nk + 1, v))
			continue;
		*e10 = ek;
		for (int i = nk - 1; i >= 0; i--, m /= 10)
			digits[i] = (char)('0' + m % 10);
		while (nk > 1 && digits[nk - 1] == '0')
			nk--;
		return nk;
	}
	memcpy(digits, d, (size_t)(last + 1));
	*e10 = e;
	return last + 1;
}
