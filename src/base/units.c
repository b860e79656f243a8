/* units.c: durations and sizes, parsed and printed one way everywhere.
 *
 * Durations follow Prometheus (model.ParseDuration / Duration.String): <int><unit> pairs
 * with units y w d h m s ms, each at most once and largest first; "0" is zero; 1y = 365d.
 * Sizes are a non-negative integer with an optional B, KB..TB (1000^n) or KiB..TiB (1024^n)
 * unit, case-insensitive. All arithmetic is overflow-checked. Parsers take pointer+length.
 * Callers: conf (settings), the CLI (flags), the API (query parameters).
 */
#include "base/base.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct unit {
	const char *name;
	int64_t mult;
};

/* Largest first: a duration's units must appear in this order. */
static const struct unit duration_units[] = {
        {"y", 365LL * 24 * 3600 * 1000},
        {"w", 7LL * 24 * 3600 * 1000},
        {"d", 24LL * 3600 * 1000},
        {"h", 3600LL * 1000},
        {"m", 60LL * 1000},
        {"s", 1000},
        {"ms", 1},
};
#define N_DURATION_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

static void put_quoted(char *dst, size_t cap, const char *s, size_t n) {
	/* Keeps error messages short even for long hostile input. */
	int shown = n > 64 ? 64 : (int)n;
	snprintf(dst, cap, "\"%.*s%s\"", shown, s, n > 64 ? "..." : "");
}

int ward_parse_duration(const char *s, size_t n, int64_t *out_ms, struct ward_err *err) {
	char q[80];
	size_t i = 0, next_unit = 0, u;
	int64_t total = 0;

	if (!s)
		n = 0;
	put_quoted(q, sizeof(q), s ? s : "", n);
	if (n == 1 && s[0] == '0') {
		*out_ms = 0;
		return 0;
	}
	if (n == 0) {
		ward_err_set(err,
		             "empty duration: write a number with a unit, such as 30s or 1h30m");
		return -1;
	}
	while (i < n) {
		int64_t v = 0, part;
		size_t start = i, ulen;

		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (v > (INT64_MAX - 9) / 10)
				goto overflow;
			v = v * 10 + (s[i++] - '0');
		}
		if (i == start) {
			ward_err_set(err,
			             "invalid duration %s at position %zu: expected a number; "
			             "use units y w d h m s ms, such as 1h30m",
			             q, i);
			return -1;
		}
		ulen = 0;
		while (i + ulen < n && s[i + ulen] >= 'a' && s[i + ulen] <= 'z')
			ulen++;
		for (u = 0; u < N_DURATION_UNITS; u++)
			if (strlen(duration_units[u].name) == ulen &&
			    memcmp(duration_units[u].name, s + i, ulen) == 0)
				break;
		if (u == N_DURATION_UNITS && ulen == 0 && i < n && s[i] == '.') {
			ward_err_set(err,
			             "invalid duration %s at position %zu: fractions are not "
			             "allowed; combine units instead, such as 1h30m for 1.5h",
			             q, i);
			return -1;
		}
		if (u == N_DURATION_UNITS) {
			ward_err_set(err,
			             "invalid duration %s at position %zu: %s; use units "
			             "y w d h m s ms, such as 1h30m",
			             q, i, ulen ? "unknown unit" : "missing unit");
			return -1;
		}
		if (u < next_unit) {
			ward_err_set(err,
			             "invalid duration %s at position %zu: units must appear "
			             "once each, largest first (y w d h m s ms), such as 1h30m",
			             q, i);
			return -1;
		}
		next_unit = u + 1;
		if (v > INT64_MAX / duration_units[u].mult)
			goto overflow;
		part = v * duration_units[u].mult;
		if (total > INT64_MAX - part)
			goto overflow;
		total += part;
		i += ulen;
	}
	*out_ms = total;
	return 0;
overflow:
	ward_err_set(err, "duration %s is too large (more than about 292 million years)", q);
	return -1;
}

void ward_fmt_duration(int64_t ms, char out[32]) {
	size_t u, len = 0;
	uint64_t left;

	if (ms == 0) {
		snprintf(out, 32, "0s");
		return;
	}
	out[0] = '\0';
	if (ms < 0) {
		out[len++] = '-';
		out[len] = '\0';
		left = (uint64_t)0 - (uint64_t)ms;
	} else {
		left = (uint64_t)ms;
	}
	for (u = 0; u < N_DURATION_UNITS && left > 0; u++) {
		uint64_t mult = (uint64_t)duration_units[u].mult, v;

		/* Years and weeks only when exact, as Prometheus: "90d" reads better than "12w6d".
		 */
		if (u < 2 && left % mult != 0)
			continue;
		v = left / mult;
		if (v == 0)
			continue;
		len += (size_t)snprintf(out + len, 32 - len, "%llu%s", (unsigned long long)v,
		                        duration_units[u].name);
		left -= v * mult;
	}
}

static const struct unit size_units[] = {
        {"B", 1},
        {"KB", 1000LL},
        {"MB", 1000LL * 1000},
        {"GB", 1000LL * 1000 * 1000},
        {"TB", 1000LL * 1000 * 1000 * 1000},
        {"KiB", 1024LL},
        {"MiB", 1024LL * 1024},
        {"GiB", 1024LL * 1024 * 1024},
        {"TiB", 1024LL * 1024 * 1024 * 1024},
};
#define N_SIZE_UNITS (sizeof(size_units) / sizeof(size_units[0]))

int ward_parse_size(const char *s, size_t n, int64_t *out_bytes, struct ward_err *err) {
	char q[80];
	size_t i = 0, u, ulen;
	int64_t v = 0;

	if (!s)
		n = 0;
	put_quoted(q, sizeof(q), s ? s : "", n);
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (v > (INT64_MAX - 9) / 10)
			goto overflow;
		v = v * 10 + (s[i++] - '0');
	}
	if (i == 0) {
		ward_err_set(
		        err,
		        "invalid size %s: expected a whole number of bytes with an "
		        "optional unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, such as 512MiB",
		        q);
		return -1;
	}
	ulen = n - i;
	if (ulen == 0) {
		*out_bytes = v;
		return 0;
	}
	for (u = 0; u < N_SIZE_UNITS; u++)
		if (strlen(size_units[u].name) == ulen &&
		    strncasecmp(size_units[u].name, s + i, ulen) == 0)
			break;
	if (u == N_SIZE_UNITS) {
		ward_err_set(err,
		             "invalid size %s at position %zu: unknown unit; use B, KB, MB, "
		             "GB, TB, KiB, MiB, GiB or TiB, such as 512MiB",
		             q, i);
		return -1;
	}
	if (v > INT64_MAX / size_units[u].mult)
		goto overflow;
	*out_bytes = v * size_units[u].mult;
	return 0;
overflow:
	ward_err_set(err, "size %s is too large (the limit is 8 EiB)", q);
	return -1;
}

void ward_fmt_size(int64_t bytes, char out[32]) {
	static const struct unit order[] = {
	        {"TiB", 1024LL * 1024 * 1024 * 1024},
	        {"GiB", 1024LL * 1024 * 1024},
	        {"MiB", 1024LL * 1024},
	        {"KiB", 1024LL},
	        {"TB", 1000LL * 1000 * 1000 * 1000},
	        {"GB", 1000LL * 1000 * 1000},
	        {"MB", 1000LL * 1000},
	        {"KB", 1000LL},
	};
	size_t u;

	/* Exact units only, so the output parses back to the same number. */
	if (bytes > 0) {
		for (u = 0; u < sizeof(order) / sizeof(order[0]); u++) {
			if (bytes % order[u].mult == 0) {
				snprintf(out, 32, "%lld%s", (long long)(bytes / order[u].mult),
				         order[u].name);
				return;
			}
		}
	}
	snprintf(out, 32, "%lldB", (long long)bytes);
}
