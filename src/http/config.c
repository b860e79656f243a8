/* config.c: the "server" configuration section, decoded into struct http_config.
 *
 * Registered by the core module's init through http_register_config(); the loader knows
 * the section only through this schema.
 */
#include <stddef.h>
#include <string.h>

#include "conf/conf.h"
#include "http/http_internal.h"

#define LIM(f) offsetof(struct http_limits, f)
#define SRV(f) offsetof(struct http_config, f)

static const struct conf_field limits_fields[] = {
	{.key = "max_body", .type = CONF_SIZE, .offset = LIM(max_body_bytes), .defval = "1MiB",
	 .min = 1024, .max = 1024.0 * 1024 * 1024, .flags = CONF_RANGE,
	 .help = "largest request body accepted; larger ones get 413"},
	{.key = "max_header", .type = CONF_SIZE, .offset = LIM(max_header_bytes),
	 .defval = "16KiB", .min = 4096, .max = 1024.0 * 1024, .flags = CONF_RANGE,
	 .help = "memory for one request's line and headers; more gets 431"},
	{.key = "rate_per_client", .type = CONF_FLOAT, .offset = LIM(rate_per_client),
	 .defval = "100", .min = 0, .max = 1e6, .flags = CONF_RANGE,
	 .help = "requests per second per client address (0: unlimited); excess gets 429"},
	{.key = "burst", .type = CONF_INT, .offset = LIM(burst), .defval = "200", .min = 1,
	 .max = 1e6, .flags = CONF_RANGE, .help = "requests a client may make at once"},
	{.key = "connection_timeout", .type = CONF_DURATION, .offset = LIM(connection_timeout_ms),
	 .defval = "30s", .min = 1000, .max = 3600e3, .flags = CONF_RANGE,
	 .help = "an idle or stalled connection is closed after this"},
	{.key = "max_connections", .type = CONF_INT, .offset = LIM(max_connections),
	 .defval = "512", .min = 1, .max = 65536, .flags = CONF_RANGE,
	 .help = "open connections at most"},
	{.key = "max_connections_per_client", .type = CONF_INT,
	 .offset = LIM(max_connections_per_client), .defval = "64", .min = 1, .max = 65536,
	 .flags = CONF_RANGE, .help = "open connections from one address at most"},
	{0},
};

static const struct conf_schema limits_schema = {
	.name = "limits", .size = sizeof(struct http_limits), .fields = limits_fields};

static int server_validate(void *obj, const struct conf_pos *pos, struct ward_err *err)
{
	const struct http_config *c = obj;
	if ((c->tls_cert_file == NULL) != (c->tls_key_file == NULL)) {
		conf_error_at(err, pos,
			      "server: tls_cert_file and tls_key_file go together; set both or "
			      "neither");
		return -1;
	}
	if (c->listen) {
		struct ward_err e;
		ward_err_clear(&e);
		if (http_parse_listen(c->listen, NULL, NULL, 0, &e) != 0) {
			conf_error_at(err, pos, "server.listen: %s", e.msg);
			return -1;
		}
	}
	return 0;
}

static const struct conf_field server_fields[] = {
	{.key = "listen", .type = CONF_STR, .offset = SRV(listen), .defval = "127.0.0.1:9797",
	 .help = "address:port to listen on; loopback unless you mean otherwise"},
	{.key = "tls_cert_file", .type = CONF_STR, .offset = SRV(tls_cert_file),
	 .help = "PEM certificate; with tls_key_file, serve HTTPS"},
	{.key = "tls_key_file", .type = CONF_STR, .offset = SRV(tls_key_file), .flags = 0,
	 .help = "PEM private key for tls_cert_file"},
	{.key = "threads", .type = CONF_INT, .offset = SRV(threads), .defval = "4", .min = 1,
	 .max = 256, .flags = CONF_RANGE, .help = "HTTP worker threads"},
	{.key = "limits", .type = CONF_OBJ, .offset = SRV(limits), .sub = &limits_schema,
	 .help = "request limits"},
	{0},
};

static const struct conf_schema server_schema = {.name = "server",
						 .size = sizeof(struct http_config),
						 .fields = server_fields,
						 .validate = server_validate};

void http_register_config(void)
{
	(void)conf_register_section(&server_schema);
}
