/* resp.c: request parameters and response helpers shared by every handler.
 *
 * The API answers in the Prometheus HTTP API's envelope, so clients written for that API
 * (Grafana, promtool, scripts) read ward's errors too.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"

static const char *const role_names[] = {"public", "viewer", "operator", "admin"};

const char *http_role_name(enum http_role r)
{
	if ((unsigned)r > ROLE_ADMIN)
		return "unknown";
	return role_names[r];
}

int http_role_parse(const char *s, enum http_role *out)
{
	for (int r = ROLE_VIEWER; r <= ROLE_ADMIN; r++) {
		if (s && strcmp(s, role_names[r]) == 0) {
			*out = (enum http_role)r;
			return 0;
		}
	}
	return -1;
}

const char *http_param(const struct http_req *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return r->params[i].value;
	return NULL;
}

void http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
	/* Header values come from our own code; strip CR/LF anyway so none can split. */
	buf_puts(&resp->headers, name);
	buf_puts(&resp->headers, ": ");
	for (const char *p = value; *p; p++)
		if (*p != '\r' && *p != '\n')
			buf_putc(&resp->headers, *p);
	buf_puts(&resp->headers, "\r\n");
}

void http_resp_json(struct http_resp *resp, int status, const char *data_json)
{
	resp->status = status;
	resp->content_type = "application/json";
	buf_reset(&resp->body);
	buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
	buf_puts(&resp->body, data_json ? data_json : "null");
	buf_puts(&resp->body, "}\n");
}

void http_resp_error(struct http_resp *resp, int status, const char *error_type, const char *fmt,
		     ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	resp->status = status;
	resp->content_type = "application/json";
	buf_reset(&resp->body);
	buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":");
	buf_json_str(&resp->body, error_type, strlen(error_type));
	buf_puts(&resp->body, ",\"error\":");
	buf_json_str(&resp->body, msg.data ? msg.data : "", msg.len);
	buf_puts(&resp->body, "}\n");
	buf_free(&msg);
}


char *http_url_decode(const char *s, size_t n, bool plus)
{
	char *out = ward_xmalloc(n + 1);
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && ward_hexval(s[i + 1]) >= 0 && ward_hexval(s[i + 2]) >= 0) {
			out[w++] = (char)(ward_hexval(s[i + 1]) * 16 + ward_hexval(s[i + 2]));
			i += 2;
		} else if (plus && s[i] == '+') {
			out[w++] = ' ';
		} else {
			out[w++] = s[i];
		}
	}
	out[w] = '\0';
	return out;
}

void http_parse_urlencoded(const char *s, size_t n, struct http_param **params, size_t *nparams)
{
	size_t i = 0;
	while (i < n) {
		size_t end = i;
		while (end < n && s[end] != '&')
			end++;
		if (end > i) {
			size_t eq = i;
			while (eq < end && s[eq] != '=')
				eq++;
			*params = ward_xrealloc(*params, (*nparams + 1) * sizeof(**params));
			(*params)[*nparams].name = http_url_decode(s + i, eq - i, true);
			(*params)[*nparams].value =
				eq < end ? http_url_decode(s + eq + 1, end - eq - 1, true)
					 : ward_strdup("");
			(*nparams)++;
		}
		i = end + 1;
	}
}
