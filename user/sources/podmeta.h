/* SPDX-License-Identifier: GPL-2.0 */
/* Pod metadata as a label source: the kubelet's /pods (kubelet.c), fetched on a thread of its
 * own, kept as a snapshot the main loop reads pod labels, names and readiness from. */
#ifndef TAPIR_PODMETA_H
#define TAPIR_PODMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define TAPIR_KUBE_VALUE_MAX 1024 /* label values beyond this are cut (the exposition cuts too) */

struct tapir_podmeta;

/* Start fetching when @cfg names a kubelet; NULL otherwise (errno 0) or on failure. */
struct tapir_podmeta *tapir_podmeta__new(const struct tapir_config *cfg);
void tapir_podmeta__free(struct tapir_podmeta *k);

/* Bumped after every successful fetch: labels waiting for a pod can be resolved again. */
uint64_t tapir_podmeta__generation(struct tapir_podmeta *k);
/* A pod tapir did not know appeared: fetch now rather than at the next period. */
void tapir_podmeta__wake(struct tapir_podmeta *k);
void tapir_podmeta__counts(struct tapir_podmeta *k, uint64_t *ok, uint64_t *failed);

/*
 * The configured labels of pod @uid: for each label with a mapping whose value the pod has,
 * vals[i] is filled and set[i] is true. Returns 1 when the pod is known, 0 when not (yet).
 */
int tapir_podmeta__labels(struct tapir_podmeta *k, const char *uid,
			  char vals[][TAPIR_KUBE_VALUE_MAX], bool *set);

/* The Ready condition of pod @uid: 1 true, 0 false, -1 unknown or pod not known. */
int tapir_podmeta__pod_ready(struct tapir_podmeta *k, const char *uid);

/* The name of pod @uid into @buf; 1 when known, 0 when not (yet). */
int tapir_podmeta__pod_name(struct tapir_podmeta *k, const char *uid, char *buf, size_t len);

#endif
