/* listen.c: parsing a listen address and opening the listening socket ourselves, so that
 * "address already in use" and friends reach the user as one clear line instead of
 * libmicrohttpd's silent NULL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http_internal.h"

#define LISTEN_BACKLOG 511

int http_parse_listen(const char *s, void *sa_out, size_t *sa_len, size_t sa_cap,
		      struct ward_err *err)
{
	if (!s || !*s) {
		ward_err_set(err, "empty listen address; write host:port such as 127.0.0.1:9797");
		return -1;
	}
	const char *colon = strrchr(s, ':');
	if (!colon) {
		ward_err_set(err, "\"%s\" has no port; write host:port such as 127.0.0.1:9797", s);
		return -1;
	}
	char host[256];
	size_t hlen = (size_t)(colon - s);
	const char *h = s;
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		h = s + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		ward_err_set(err, "host in \"%s\" is too long", s);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535) {
		ward_err_set(err, "port in \"%s\" must be a number from 0 to 65535", s);
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%ld", port);
	int rc = getaddrinfo(hlen ? host : "0.0.0.0", portstr, &hints, &res);
	if (rc != 0 || !res) {
		ward_err_set(err, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	if (sa_out) {
		if (res->ai_addrlen > sa_cap) {
			freeaddrinfo(res);
			ward_err_set(err, "address of \"%s\" too long", s);
			return -1;
		}
		memcpy(sa_out, res->ai_addr, res->ai_addrlen);
		*sa_len = res->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
}

/* Opens, binds and listens; returns the fd or -1 with err. *port_out gets the bound port. */
int http_listen_socket(const char *listen_addr, int *port_out, struct ward_err *err)
{
	struct sockaddr_storage ss;
	size_t sl = 0;
	if (http_parse_listen(listen_addr, &ss, &sl, sizeof(ss), err) != 0)
		return -1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ward_err_set(err, "%s: cannot create a socket: %s", listen_addr, strerror(errno));
		return -1;
	}
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE)
			ward_err_set(err,
				     "%s: address already in use; stop the other process or set "
				     "server.listen (or --listen) to a free address",
				     listen_addr);
		else if (e == EADDRNOTAVAIL)
			ward_err_set(err, "%s: no such address on this machine; check server.listen",
				     listen_addr);
		else if (e == EACCES)
			ward_err_set(err, "%s: permission denied; ports below 1024 need privileges",
				     listen_addr);
		else
			ward_err_set(err, "%s: cannot bind: %s", listen_addr, strerror(e));
		return -1;
	}
	if (listen(fd, LISTEN_BACKLOG) != 0) {
		ward_err_set(err, "%s: cannot listen: %s", listen_addr, strerror(errno));
		close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);
	*port_out = 0;
	if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0) {
		if (bound.ss_family == AF_INET)
			*port_out = ntohs(((struct sockaddr_in *)&bound)->sin_port);
		else if (bound.ss_family == AF_INET6)
			*port_out = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	}
	return fd;
}
