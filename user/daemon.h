/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon: wires loader, cgroup discovery, metric families and the HTTP endpoint. */
#ifndef TAPIR_DAEMON_H
#define TAPIR_DAEMON_H

#include "config.h"

struct tapir_daemon;

/* Load and attach everything @cfg asks for, pinning maps under @pin_dir (NULL: none); NULL
 * with errno set on failure. */
struct tapir_daemon *tapir_daemon__new(const struct tapir_config *cfg, const char *pin_dir);
/* Serve until tapir_daemon__stop(); returns 0 or -errno. */
int tapir_daemon__run(struct tapir_daemon *d);
/* Async-signal-safe. */
void tapir_daemon__stop(struct tapir_daemon *d);
/* Async-signal-safe: read the web settings again on the next turn of the loop (SIGHUP). */
void tapir_daemon__reload(struct tapir_daemon *d);
void tapir_daemon__free(struct tapir_daemon *d);

#endif
