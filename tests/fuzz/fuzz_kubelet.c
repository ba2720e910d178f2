// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the kubelet's /pods parser (user/sources/kubelet.c), which reads what any pod
 * spec can put in labels and annotations. Whatever it keeps must be well formed: every pod has
 * its uid, name and namespace, each findable by its uid, and lookups of its labels and
 * annotations work; on error nothing is kept.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tapir_kube_pods pods;
	size_t i;
	int ret;

	memset(&pods, 0, sizeof(pods));
	ret = tapir_kube_pods__parse((const char *)data, size, &pods);
	if (ret) {
		if (pods.n)
			abort(); /* empty on error */
		tapir_kube_pods__clear(&pods);
		return 0;
	}
	for (i = 0; i < pods.n; i++) {
		const struct tapir_kube_pod *p = &pods.pods[i];

		size_t k;

		if (!p->uid || !p->name || !p->namespace_)
			abort();
		if (!tapir_kube_pods__by_uid(&pods, p->uid))
			abort();
		for (k = 0; k < p->n_labels; k++)
			if (!p->label_keys[k] || !p->label_values[k] ||
			    !tapir_kube_pod__label(p, p->label_keys[k]))
				abort();
		for (k = 0; k < p->n_annotations; k++)
			if (!p->annotation_keys[k] || !p->annotation_values[k] ||
			    !tapir_kube_pod__annotation(p, p->annotation_keys[k]))
				abort();
		if (p->ready < -1 || p->ready > 1)
			abort();
	}
	tapir_kube_pods__clear(&pods);
	tapir_kube_pods__clear(&pods); /* idempotent */
	return 0;
}
