// SPDX-License-Identifier: GPL-2.0
/* Label lists of every family: the deployment labels, with the family's own in the middle. */
#include "labels.h"

size_t tapir_labels(const char **out, const char *const *deployment, const char *const *extra,
		    size_t n_extra)
{
	size_t n = 0, i;

	if (n_extra > TAPIR_LABELS_EXTRA_MAX)
		n_extra = TAPIR_LABELS_EXTRA_MAX;
	out[n++] = deployment[TAPIR_L_MODEL_ID];
	out[n++] = deployment[TAPIR_L_MODEL_NAME];
	out[n++] = deployment[TAPIR_L_DEPLOYMENT_ID];
	for (i = 0; i < n_extra; i++)
		out[n++] = extra[i];
	out[n++] = deployment[TAPIR_L_ENVIRONMENT];
	out[n++] = deployment[TAPIR_L_ROLLOUT_PHASE];
	return n;
}
