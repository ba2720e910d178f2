/* SPDX-License-Identifier: GPL-2.0 */
/* Label lists of every family: the deployment labels, with the family's own in the middle. */
#ifndef TAPIR_LABELS_H
#define TAPIR_LABELS_H

#include <stddef.h>

#include "config.h"

/* Labels a family may add to the deployment labels. */
#define TAPIR_LABELS_EXTRA_MAX 4
#define TAPIR_LABELS_MAX       (TAPIR_L_COUNT + TAPIR_LABELS_EXTRA_MAX)

/*
 * Fill @out with a family's label names or values in the reference set's order: model_id,
 * model_name, deployment_id, then @extra (a family's own: status_code, replica, ...), then
 * environment and rollout_phase. @deployment: TAPIR_L_COUNT names (tapir_label_names) or the
 * values of a label set. @out has room for TAPIR_LABELS_MAX. Returns how many were written.
 */
size_t tapir_labels(const char **out, const char *const *deployment, const char *const *extra,
		    size_t n_extra);

#endif
