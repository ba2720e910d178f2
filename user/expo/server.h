/* SPDX-License-Identifier: GPL-2.0 */
/* The /metrics endpoint (libmicrohttpd) and a small landing page. */
#ifndef TAPIR_SERVER_H
#define TAPIR_SERVER_H

#include "buf.h"

struct tapir_server;

/* Fill @out with the exposition; 0 or -errno. Called on the server's thread. */
typedef int (*tapir_render_fn)(void *ctx, struct tapir_buf *out);

/* Listen on "HOST:PORT" ("[v6]:PORT" for IPv6). NULL with errno set on failure. */
struct tapir_server *tapir_server__new(const char *listen, tapir_render_fn render, void *ctx);
void tapir_server__free(struct tapir_server *s);

#endif
