/* SPDX-License-Identifier: GPL-2.0 */
/* tapir's own health families (tapir_*): what it attached, and everything it could not record. */
#ifndef TAPIR_HEALTH_H
#define TAPIR_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"
#include "registry.h"

struct tapir_health;

/* Figures gathered at scrape time; the BPF counters are summed over CPUs. */
struct tapir_health_input {
	const uint64_t *bpf_stats; /* TAPIR_STAT_MAX entries */
	uint64_t records;	   /* request records received */
	uint64_t unlabelled;	   /* records whose label set was unknown */
	uint64_t lifecycle_lost;   /* lifecycle events lost */
	size_t watched_cgroups;
	uint64_t series_dropped;       /* new series refused by the per-family cap */
	size_t series;		       /* series in the registry */
	bool has_kube;		       /* a kubelet is configured */
	uint64_t kube_ok, kube_failed; /* its /pods fetches */
	const struct tapir_prog_status *progs;
	size_t n_progs;
	/* The /metrics endpoint's refusals, by reason. */
	const uint64_t *web_refused;
	const char *const *web_refused_names;
	size_t n_web_refused;
};

struct tapir_health *tapir_health__new(struct tapir_registry *r);
void tapir_health__free(struct tapir_health *h);
/* */
void tapir_health__update(struct tapir_health *h, const struct tapir_health_input *in);

#endif
