/* log.c: structured logging, one event per line, secrets redacted.
 *
 * Lines are logfmt (`ts=... level=info msg=... k=v`) on a terminal in LOG_FORMAT_AUTO, JSON
 * objects otherwise: {"ts":"<RFC 3339 ms>","level":"info","msg":"...","k":"v",...}.
 * Invariants: each line is built in a private buffer and handed to the kernel in one
 * write(2) (retried only for a short write), so lines from different threads never
 * interleave; a value whose key log_key_is_secret() accepts is replaced by "[redacted]"
 * before it touches any buffer. Settings are atomics, so every call is thread-safe.
 * Callers: every module, through ward_log.
 */
#include "base/base.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_REDACTED "[redacted]"

static atomic_int log_level_cur = LOG_INFO;
static atomic_int log_format_cur = LOG_FORMAT_AUTO;
static atomic_int log_fd_cur = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, enum log_format format, int fd) {
	atomic_store(&log_level_cur, (int)level);
	atomic_store(&log_format_cur, (int)format);
	atomic_store(&log_fd_cur, fd);
}

void log_set_level(enum log_level level) {
	atomic_store(&log_level_cur, (int)level);
}

enum log_level log_get_level(void) {
	return (enum log_level)atomic_load(&log_level_cur);
}

int log_level_parse(const char *s, enum log_level *out) {
	size_t i;

	if (!s)
		return -1;
	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

const char *log_level_name(enum log_level l) {
	if ((int)l < 0 || (int)l > LOG_ERROR)
		return "unknown";
	return level_names[l];
}

/* Substrings that mark a key as secret anywhere in it (compared case-insensitively). */
static const char *const secret_words[] = {
        "token", "password", "passwd", "passphrase", "secret", "authorization", "cookie",
};

/* A key is secret when, lower-cased, it contains one of secret_words, or it is "key" or
 * ends in "key" (api_key, private_key, apikey). Deliberately broad: "tokens_total" is
 * redacted too; a wrongly hidden counter costs little, a leaked token a great deal. */
bool log_key_is_secret(const char *key) {
	char low[128];
	size_t i, n;

	if (!key)
		return false;
	n = strlen(key);
	if (n >= sizeof(low))
		return true; /* absurdly long keys are not worth the risk */
	for (i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	low[n] = '\0';
	for (i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
		if (strstr(low, secret_words[i]))
			return true;
	return n >= 3 && strcmp(low + n - 3, "key") == 0;
}

/* logfmt keys must be bare: anything but [A-Za-z0-9_.-] becomes '_'. */
static void put_logfmt_key(struct buf *b, const char *k) {
	size_t i, n = strlen(k);

	if (n == 0) {
		buf_putc(b, '_');
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		buf_putc(b, (isalnum(c) || c == '_' || c == '.' || c == '-') ? (char)c : '_');
	}
}

static void write_line(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report a logging failure */
		}
		p += w;
		n -= (size_t)w;
	}
}

void ward_logv(enum log_level level, const char *msg, va_list kv) {
	struct buf b = BUF_INIT;
	char ts[32];
	int fd = atomic_load(&log_fd_cur);
	int fmt = atomic_load(&log_format_cur);
	const char *k, *v;

	if ((int)level < atomic_load(&log_level_cur))
		return;
	if (fmt == LOG_FORMAT_AUTO)
		fmt = isatty(fd) ? LOG_FORMAT_LOGFMT : LOG_FORMAT_JSON;
	if (!msg)
		msg = "";
	ward_fmt_rfc3339(ward_now_ms(), ts);
	buf_reserve(&b, 256);
	if (fmt == LOG_FORMAT_LOGFMT) {
		buf_printf(&b, "ts=%s level=%s msg=", ts, log_level_name(level));
		buf_logfmt_val(&b, msg, strlen(msg));
	} else {
		buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
		           log_level_name(level));
		buf_json_str(&b, msg, strlen(msg));
	}
	while ((k = va_arg(kv, const char *)) != NULL) {
		v = va_arg(kv, const char *);
		if (!v)
			v = "";
		if (log_key_is_secret(k))
			v = LOG_REDACTED;
		if (fmt == LOG_FORMAT_LOGFMT) {
			buf_putc(&b, ' ');
			put_logfmt_key(&b, k);
			buf_putc(&b, '=');
			buf_logfmt_val(&b, v, strlen(v));
		} else {
			buf_putc(&b, ',');
			buf_json_str(&b, k, strlen(k));
			buf_putc(&b, ':');
			buf_json_str(&b, v, strlen(v));
		}
	}
	if (fmt != LOG_FORMAT_LOGFMT)
		buf_putc(&b, '}');
	buf_putc(&b, '\n');
	write_line(fd, b.data, b.len);
	buf_free(&b);
}

void ward_log(enum log_level level, const char *msg, ...) {
	va_list ap;

	va_start(ap, msg);
	ward_logv(level, msg, ap);
	va_end(ap);
}
