/* err.c: struct ward_err, the message a failing call leaves for a person.
 *
 * Invariant: msg is always NUL-terminated; an empty msg means "no error recorded".
 * Messages longer than WARD_ERR_MAX are truncated, never overflowed. Every module's
 * fallible function takes a `struct ward_err *` (possibly NULL) and fills it here.
 */
#include "base/base.h"

#include <stdio.h>
#include <string.h>

void ward_err_clear(struct ward_err *err) {
	if (err)
		err->msg[0] = '\0';
}

void ward_err_set(struct ward_err *err, const char *fmt, ...) {
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

void ward_err_append(struct ward_err *err, const char *fmt, ...) {
	va_list ap;
	size_t len;

	if (!err)
		return;
	len = strnlen(err->msg, sizeof(err->msg));
	if (len > 0 && len + 1 < sizeof(err->msg)) {
		err->msg[len++] = '\n';
		err->msg[len] = '\0';
	}
	if (len + 1 >= sizeof(err->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg + len, sizeof(err->msg) - len, fmt, ap);
	va_end(ap);
}

bool ward_err_isset(const struct ward_err *err) {
	return err && err->msg[0] != '\0';
}
