/* SPDX-License-Identifier: GPL-2.0 */
/* The replica table, shared by the families that read it: replicas.c, which owns it, and
 * containers.c (CPU, memory and GPU figures per replica). Private to user/families/. */
#ifndef TAPIR_REPLICA_TABLE_H
#define TAPIR_REPLICA_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "cgroups.h"
#include "gpu.h"
#include "registry.h"

#define MAX_GPU_SERIES 256

struct gpu_series {
	struct tapir_series *mem, *util;
	uint64_t replica_id;
	unsigned int gpu;
	bool touched;
};

struct replica {
	uint64_t id;
	uint32_t labels_id;
	char *rel;
	char name[128];
	bool present;
	bool replaced; /* gone, and back under the same name in a new cgroup */
	uint64_t appeared_ms, gone_ms, last_signal_ms;
	uint32_t main_pid;
	bool main_dead;	     /* its main process exited and none took over yet */
	int probe_ok;	     /* latest readiness probe: -1 none seen, 0 not 2xx, 1 2xx */
	int request_ok;	     /* latest request, likewise */
	uint64_t probe_ns;   /* when that probe ended (CLOCK_MONOTONIC) */
	uint64_t request_ns; /* when that request ended */
	bool ever_ready;     /* starting until the first time it is ready */
	bool sandbox;	     /* a pod's pause container: not a replica */
	bool checked;	     /* sandbox decided (it needs a process in the cgroup) */
	uint64_t checked_ms; /* last look for a first process, while not checked */
	uint64_t usage_ms;   /* CPU and memory figures read then */
	bool pod_named;	     /* named after its pod (or no pod to wait for) */
	char pod_uid[40];
	unsigned int listening;
	struct tapir_series *cpu, *mem;
	struct tapir_series *exits[4]; /* by reason, created on the first such exit */
};

/* The deployment-level gauges of one label set, so that a scrape sets them without lookups. */
struct dep_series {
	struct tapir_series *active, *starting, *readiness[3];
};

struct tapir_replicas {
	const struct tapir_config *cfg;
	struct tapir_cgroups *cg;
	struct tapir_podmeta *kube;
	struct tapir_family *cpu, *mem, *restarts, *exits, *active, *starting, *readiness;
	struct tapir_family *gpu_mem, *gpu_util;
	struct replica *r;
	size_t n, cap;
	size_t cursor; /* where the next read of container figures starts */
	struct gpu_series gpus[MAX_GPU_SERIES];
	size_t n_gpus;
	struct dep_series *dep; /* by labels_id */
	size_t n_dep;
};

/*
 * Series label values of a replica, with @more labels of the family after the replica's name;
 * false if its label set is already forgotten. @v has room for TAPIR_LABELS_MAX.
 */
bool tapir_replica_values(struct tapir_replicas *rs, const struct replica *r, const char **v,
			  const char *more);

/* containers.c: container CPU and working set of one replica, and GPU figures of all. */
void tapir_containers_usage(struct tapir_replicas *rs, struct replica *r);
void tapir_containers_gpus(struct tapir_replicas *rs, struct tapir_gpu *gpu);

#endif
