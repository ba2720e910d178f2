/* SPDX-License-Identifier: GPL-2.0 */
/* Replicas: container resources, restarts and exit reasons, readiness, GPUs, per deployment. */
#ifndef TAPIR_REPLICAS_H
#define TAPIR_REPLICAS_H

#include <stdint.h>
#include <linux/types.h>

#include "tapir/http.h"
#include "cgroups.h"
#include "config.h"
#include "gpu.h"
#include "registry.h"

struct tapir_replicas;

struct tapir_replicas *tapir_replicas__new(struct tapir_registry *r, const struct tapir_config *cfg,
					   struct tapir_cgroups *cg);
void tapir_replicas__free(struct tapir_replicas *rs);
struct tapir_podmeta;
/* Name replicas of Kubernetes pods after their pod once the kubelet knows it. */
void tapir_replicas__set_kube(struct tapir_replicas *rs, struct tapir_podmeta *kube);

/* Bring the replica set in line with the last cgroup scan. */
void tapir_replicas__sync(struct tapir_replicas *rs, uint64_t now_ms);
/* A process, cgroup or listening-socket event. */
void tapir_replicas__lifecycle(struct tapir_replicas *rs, const struct tapir_lifecycle_event *e,
			       uint64_t now_ms);
/* A completed request of replica @replica_id (a readiness signal). */
void tapir_replicas__request(struct tapir_replicas *rs, uint64_t replica_id,
			     const struct tapir_http_event *e);
/* The latest of some requests of replica @replica_id, which ended at @end_ns (CLOCK_MONOTONIC)
 * with status label @status; @probe: a readiness probe. Older than what is known: no news. */
void tapir_replicas__signal(struct tapir_replicas *rs, uint64_t replica_id, bool probe,
			    uint16_t status, uint64_t end_ns);
/* Seed listening sockets that predate the daemon into @listeners_fd (socket inode -> cgroup). */
void tapir_replicas__seed_listeners(struct tapir_replicas *rs, int listeners_fd);
/* A turn of the main loop: container figures older than a second, a slice at a time. */
void tapir_replicas__tick(struct tapir_replicas *rs, uint64_t now_ms);
/* Scrape time: CPU, memory, GPUs, readiness and replica gauges. */
void tapir_replicas__refresh(struct tapir_replicas *rs, int listeners_fd, struct tapir_gpu *gpu,
			     uint64_t now_ms);

/* Drop the deployment-level series of forgotten label set @labels_id (@labels). */
void tapir_replicas__forget(struct tapir_replicas *rs, uint32_t labels_id,
			    const char *const *labels);

/* Exit reason of a wait status: "oom", "signal", "error" or "clean". */
const char *tapir_exit_reason(int32_t status, int oom);

#endif
