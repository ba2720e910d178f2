/* SPDX-License-Identifier: GPL-2.0 */
/* `tapir inspect`: the live cgroup -> labels -> gauges table, read from the pinned maps. */
#ifndef TAPIR_INSPECT_H
#define TAPIR_INSPECT_H

#include <stdio.h>

#include "config.h"

/* Print the table to @out; 0, or -errno when the maps are not pinned under @pin_dir. */
int tapir_inspect(const char *pin_dir, const struct tapir_config *cfg, FILE *out);

#endif
