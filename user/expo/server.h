/* SPDX-License-Identifier: GPL-2.0 */
/* The /metrics endpoint (libmicrohttpd): TLS, basic auth, limits, and a small landing page. */
#ifndef TAPIR_SERVER_H
#define TAPIR_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

struct tapir_server;

/* Where scrapes get the exposition; every call is made on the server's thread. */
struct tapir_server_ops {
	/* Ask for an exposition newer than the one published now; returns its generation. */
	uint64_t (*request)(void *ctx);
	/* The generation published now. */
	uint64_t (*published)(void *ctx);
	/* Append the published exposition to @out: 0, or -errno when it could not be built. */
	int (*copy)(void *ctx, struct tapir_buf *out);
};

/* Requests and connections the endpoint refused or closed: tapir_web_refused_total{reason}. */
enum tapir_web_refusal {
	TAPIR_WEB_UNAUTHORIZED,	    /* 401: no or wrong credentials */
	TAPIR_WEB_THROTTLED,	    /* 429: too many password checks at once */
	TAPIR_WEB_CLIENT_CERT,	    /* 403: client certificate missing or not trusted */
	TAPIR_WEB_BUSY,		    /* 503: max_requests scrapes in progress */
	TAPIR_WEB_BODY,		    /* 413: a request with a body */
	TAPIR_WEB_HEADER_TIMEOUT,   /* closed: no whole request within header_timeout_s */
	TAPIR_WEB_CONNECTION_LIMIT, /* closed: the oldest idle one, max_connections being open */
	TAPIR_WEB_REFUSAL_MAX,
};

extern const char *const tapir_web_refusal_names[TAPIR_WEB_REFUSAL_MAX];

/*
 * Listen on "HOST:PORT" ("[v6]:PORT" for IPv6) with the settings of @web, serving on a thread of
 * its own. NULL on failure, with errno set and the reason in @err.
 */
struct tapir_server *tapir_server__new(const char *listen, const struct tapir_web *web,
				       const struct tapir_server_ops *ops, void *ctx, char *err,
				       size_t errlen);
/*
 * Apply new web settings (SIGHUP) on the same listening socket; the metric state is not the
 * server's and stays. Connections open under the old settings are closed. On failure the old
 * settings stay in force: -errno with the reason in @err.
 */
int tapir_server__reconfigure(struct tapir_server *s, const struct tapir_web *web, char *err,
			      size_t errlen);
/* The main loop published a new exposition: answer the scrapes waiting for it. */
void tapir_server__published(struct tapir_server *s);
/* Totals since start, indexed by enum tapir_web_refusal. */
void tapir_server__refusals(const struct tapir_server *s, uint64_t out[TAPIR_WEB_REFUSAL_MAX]);
void tapir_server__free(struct tapir_server *s);

#endif
