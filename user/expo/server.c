// SPDX-License-Identifier: GPL-2.0
/* HTTP endpoint: GET /metrics renders the registry at scrape time; GET / says what this is. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "server.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct tapir_server {
	struct MHD_Daemon *mhd;
	tapir_render_fn render;
	void *ctx;
};

static const char landing[] = "<!DOCTYPE html><html><head><title>tapir</title></head><body>"
			      "<h1>tapir</h1><p>eBPF observer for model-serving containers.</p>"
			      "<p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct tapir_server *s = cls;
	struct tapir_buf b;
	int err;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9,
			     MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)landing,
			     sizeof(landing) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10,
			     MHD_RESPMEM_PERSISTENT);
	tapir_buf__init(&b);
	err = s->render(s->ctx, &b);
	if (err || b.oom) {
		tapir_buf__free(&b);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			     "cannot render metrics\n", 22, MHD_RESPMEM_PERSISTENT);
	}
	/* The response takes ownership of the buffer. */
	return reply(conn, MHD_HTTP_OK, CONTENT_TYPE, b.data, b.len, MHD_RESPMEM_MUST_FREE);
}

/* Split "host:port" or "[v6]:port" and resolve it. */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char host[256];
	const char *port;
	int err;

	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');

		if (!end || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, listen + 1, end - listen - 1);
		host[end - listen - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(listen, ':');

		if (!colon || (size_t)(colon - listen) >= sizeof(host))
			return -EINVAL;
		memcpy(host, listen, colon - listen);
		host[colon - listen] = '\0';
		port = colon + 1;
	}
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (err) {
		pr_err("cannot resolve listen address %s: %s", listen, gai_strerror(err));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct tapir_server *tapir_server__new(const char *listen, tapir_render_fn render, void *ctx)
{
	struct sockaddr_storage ss;
	struct tapir_server *s;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	socklen_t len;
	int err;

	err = resolve(listen, &ss, &len);
	if (err) {
		errno = -err;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->render = render;
	s->ctx = ctx;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_CONNECTION_LIMIT,
				  64U, MHD_OPTION_END);
	if (!s->mhd) {
		pr_err("cannot listen on %s (address in use, or not permitted)", listen);
		free(s);
		errno = EADDRINUSE;
		return NULL;
	}
	return s;
}

void tapir_server__free(struct tapir_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}
