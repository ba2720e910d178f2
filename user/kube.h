/* SPDX-License-Identifier: GPL-2.0 */
/* Kubernetes pod metadata as a label source: the kubelet's /pods, fetched on a thread of its own. */
#ifndef TAPIR_KUBE_H
#define TAPIR_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define TAPIR_KUBE_VALUE_MAX 1024 /* label values beyond this are cut (the exposition cuts too) */

struct tapir_kube;

/* Start fetching when @cfg names a kubelet; NULL otherwise (errno 0) or on failure. */
struct tapir_kube *tapir_kube__new(const struct tapir_config *cfg);
void tapir_kube__free(struct tapir_kube *k);

/* Bumped after every successful fetch: labels waiting for a pod can be resolved again. */
uint64_t tapir_kube__generation(struct tapir_kube *k);
/* A pod tapir did not know appeared: fetch now rather than at the next period. */
void tapir_kube__wake(struct tapir_kube *k);
void tapir_kube__counts(struct tapir_kube *k, uint64_t *ok, uint64_t *failed);

/*
 * The configured labels of pod @uid: for each label with a mapping whose value the pod has,
 * vals[i] is filled and set[i] is true. Returns 1 when the pod is known, 0 when not (yet).
 */
int tapir_kube__labels(struct tapir_kube *k, const char *uid, char vals[][TAPIR_KUBE_VALUE_MAX],
		       bool *set);

/* The Ready condition of pod @uid: 1 true, 0 false, -1 unknown or pod not known. */
int tapir_kube__pod_ready(struct tapir_kube *k, const char *uid);

/* The name of pod @uid into @buf; 1 when known, 0 when not (yet). */
int tapir_kube__pod_name(struct tapir_kube *k, const char *uid, char *buf, size_t len);

#endif
