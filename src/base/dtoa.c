/* dtoa.c: the shortest decimal digits that read back as the same double, as Go's strconv
 * (and so Prometheus) prints floats. Used by every place that writes a sample value in
 * JSON or text, which a range query does for each of its points: keep it cheap.
 *
 * Method: integers below 2^53 are exact in their own digits. Otherwise the 17 correctly
 * rounded digits (which always read back) come from 128-bit integer arithmetic for the
 * usual magnitudes (1e-5 to 1e17) and from printf for the rest; each shorter length p is tried by
 * rounding those to p digits and checking that the result reads back as v, which for up
 * to 2^53 and 10^+-22 is one exact floating-point operation, not a strtod. A rounding tie
 * that the exact digits cannot settle falls back to searching with printf and strtod.
 * The hot path calls no library function: the exponent and mantissa come from the bits,
 * the decimal exponent from the binary one, powers of ten from tables, and digits are
 * written two per division. Invariant: the digits have no trailing zeros and the first is
 * not 0.
 */
#include <float.h>
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

static const char digit_pairs[201] = "000102030405060708091011121314151617181920212223242526272829"
				      "303132333435363738394041424344454647484950515253545556575859"
				      "606162636465666768697071727374757677787980818283848586878889"
				      "90919293949596979899";

static const uint64_t pow10_u64[20] = {
	1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
	10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
	1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
	10000000000000000000u};

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

/* The 17 correctly rounded digits of v (ties to even, as printf) and the exponent of the
 * first, exactly, with 128-bit integers: v = m * 2^-s, so v * 10^k = m * 10^k >> s with
 * the remainder deciding the rounding. For 1e-5 <= v < 1e17 with a fraction (where the
 * products fit); false otherwise, and the caller prints. */
static bool digits17_exact(double v, char d[17], int *e, int *dir)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	int bexp = (int)(bits >> 52 & 0x7ff); /* v > 0, finite; 0 means subnormal */
	if (bexp == 0 || v < 1e-5 || v >= 1e17)
		return false;
	uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52; /* v = m * 2^-s */
	int be = bexp - 1022, s = 53 - be; /* v is in [2^(be-1), 2^be) */
	if (s <= 0 || s > 120)
		return false;
	/* floor(log10(v)) from the binary exponent (v is in [2^(be-1), 2^be)): 78913 / 2^18
	 * is log10(2) rounded down, so the estimate is exact or one low; one comparison with
	 * the next power of ten settles it, and the retries below correct a near miss. */
	int e10 = ((be - 1) * 78913) >> 18; /* an arithmetic shift: floor for negatives too */
	if (e10 + 1 >= -5 && e10 + 1 <= 22 &&
	    v >= (e10 + 1 >= 0 ? pow10_exact[e10 + 1] : 1 / pow10_exact[-(e10 + 1)]))
		e10++;
	const unsigned __int128 lo = (unsigned __int128)10000000000000000u, hi = lo * 10;
	for (int attempt = 0; attempt < 3; attempt++) {
		int k = 16 - e10;
		if (k < 0 || k > 21)
			return false;
		unsigned __int128 p10 = k <= 19 ? pow10_u64[k]
						: (unsigned __int128)pow10_u64[19] * pow10_u64[k - 19];
		unsigned __int128 prod = (unsigned __int128)m * p10;
		unsigned __int128 q = prod >> s, rem = prod - (q << s);
		unsigned __int128 half = (unsigned __int128)1 << (s - 1);
		if (q >= hi) {
			e10++;
			continue;
		}
		*dir = rem == 0 ? 0 : 1; /* v is above the digits, or on them */
		if (rem > half || (rem == half && (q & 1))) {
			q++;
			*dir = -1; /* below */
		}
		if (q < lo) {
			e10--;
			continue;
		}
		if (q == hi) { /* 99..9.5 rounded up: 1 and zeros, one place higher */
			q = lo;
			e10++;
		}
		uint64_t u = (uint64_t)q;
		for (int i = 15; i >= 1; i -= 2, u /= 100) /* two digits per division */
			memcpy(d + i, digit_pairs + 2 * (u % 100), 2);
		d[0] = (char)('0' + u);
		*e = e10;
		return true;
	}
	return false;
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
	if (v < 9007199254740992.0 && v >= 1 && (double)(uint64_t)v == v) {
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
	int e, dir = 0; /* where v is from d: above 1, below -1, on it or unknown 0 */
	if (!digits17_exact(v, d, &e, &dir)) {
		dir = 0;
		snprintf(tmp, sizeof(tmp), "%.16e", v);
		const char *p = tmp;
		for (; *p && *p != 'e' && nd < 17; p++)
			if (*p >= '0' && *p <= '9')
				d[nd++] = *p;
		while (*p && *p != 'e')
			p++;
		e = atoi(p + (*p == 'e'));
	}
	int last = 16; /* index of the last nonzero digit of d */
	while (last > 0 && d[last] == '0')
		last--;
	uint64_t prefix = 0; /* the first k digits of d */
	for (int k = 1; k <= last; k++) { /* k digits */
		prefix = prefix * 10 + (uint64_t)(d[k - 1] - '0');
		/* Dropping digits k.. changes v by at least 0.0d_k of 10^(e-k+2); one half ulp is
		 * below 1.2e-15 of 10^e, so for k <= 14 a candidate can only read back when d_k
		 * is 0 (rounding down) or 9 (rounding up). Skip the rest without a check.
		 * (Subnormals have fewer bits, so a wider ulp: always check them.) */
		if (k <= 14 && d[k] != '0' && d[k] != '9' && v >= DBL_MIN)
			continue;
		uint64_t m = prefix;
		int ek = e;
		if (d[k] > '5' || (d[k] == '5' && (k < last || dir > 0))) {
			m++;
			if (m == (uint64_t)pow10_exact[k]) { /* 99.9 -> 100: one digit fewer */
				m /= 10;
				ek++;
			}
		} else if (d[k] == '5' && dir == 0) { /* a tie, or unknown: ask printf */
			return shortest_by_search(v, digits, e10);
		}
		if (!reads_back(m, ek - k + 1, v))
			continue;
		*e10 = ek;
		int i = k - 1;
		for (; i >= 1; i -= 2, m /= 100)
			memcpy(digits + i - 1, digit_pairs + 2 * (m % 100), 2);
		if (i == 0)
			digits[0] = (char)('0' + m);
		int nk = k;
		while (nk > 1 && digits[nk - 1] == '0')
			nk--;
		return nk;
	}
	memcpy(digits, d, (size_t)(last + 1));
	*e10 = e;
	return last + 1;
}
