// SPDX-License-Identifier: GPL-2.0
/* Container figures per replica: CPU and working set from cgroupfs, GPU memory and utilisation
 * from NVML, attributed to replicas through /proc/PID/cgroup. */
#include <stdio.h>
#include <string.h>

#include "labels.h"
#include "replica_table.h"
#include "resources.h"

void tapir_containers_usage(struct tapir_replicas *rs, struct replica *r)
{
	struct tapir_usage u;
	char dir[4608];
	const char *v[TAPIR_LABELS_MAX];
	int pid;

	snprintf(dir, sizeof(dir), "%s%s", tapir_cgroups__root(rs->cg), r->rel);
	/* A process leads to the v1 controllers of hybrid hosts. A cgroup that had none when last
	 * looked at (read_figures looks once a second) is not walked for one at every read. */
	pid = r->main_pid ? (int)r->main_pid : r->checked ? tapir_cgroup_first_pid(dir) : 0;
	if (tapir_usage_read(dir, pid, &u) || !tapir_replica_values(rs, r, v, NULL))
		return;
	if (u.has_cpu) {
		if (!r->cpu)
			r->cpu = tapir_series__get(rs->cpu, v);
		tapir_series__set(r->cpu, u.cpu_seconds);
	}
	if (u.has_mem) {
		if (!r->mem)
			r->mem = tapir_series__get(rs->mem, v);
		tapir_series__set(r->mem, u.working_set);
	}
}

/* The replica a process belongs to, from its cgroup v2 path. */
static struct replica *of_pid(struct tapir_replicas *rs, unsigned int pid)
{
	char path[4096];
	size_t i, len;

	if (tapir_pid_cgroup2(pid, path, sizeof(path)))
		return NULL;
	for (i = 0; i < rs->n; i++) {
		len = strlen(rs->r[i].rel);
		if (rs->r[i].present && !strncmp(path, rs->r[i].rel, len) &&
		    (path[len] == '\0' || path[len] == '/'))
			return &rs->r[i];
	}
	return NULL;
}

static struct gpu_series *gpu_slot(struct tapir_replicas *rs, struct replica *r, unsigned int gpu)
{
	const char *v[TAPIR_LABELS_MAX];
	char idx[16];
	size_t i;

	for (i = 0; i < rs->n_gpus; i++)
		if (rs->gpus[i].replica_id == r->id && rs->gpus[i].gpu == gpu)
			return &rs->gpus[i];
	snprintf(idx, sizeof(idx), "%u", gpu);
	if (rs->n_gpus == MAX_GPU_SERIES || !tapir_replica_values(rs, r, v, idx))
		return NULL;
	rs->gpus[rs->n_gpus] = (struct gpu_series){
		.mem = tapir_series__get(rs->gpu_mem, v),
		.util = tapir_series__get(rs->gpu_util, v),
		.replica_id = r->id,
		.gpu = gpu,
	};
	return &rs->gpus[rs->n_gpus++];
}

/*
 * GPU memory is per process, summed per replica and GPU. Utilisation is the sum of the
 * replica's per-process SM figures (at most 100); where NVML has none for any of them, the
 * device's own figure stands in.
 */
void tapir_containers_gpus(struct tapir_replicas *rs, struct tapir_gpu *gpu)
{
	const struct tapir_gpu_device *devs;
	const struct tapir_gpu_proc *procs;
	double util[MAX_GPU_SERIES], mem[MAX_GPU_SERIES];
	bool has_util[MAX_GPU_SERIES];
	size_t np, nd, i, k;
	struct gpu_series *g;
	struct replica *r;

	if (!gpu || tapir_gpu__collect(gpu, &procs, &np, &devs, &nd))
		return;
	for (i = 0; i < rs->n_gpus; i++)
		rs->gpus[i].touched = false;
	memset(has_util, 0, sizeof(has_util));
	for (i = 0; i < np; i++) {
		r = of_pid(rs, procs[i].pid);
		if (!r)
			continue;
		g = gpu_slot(rs, r, procs[i].gpu_index);
		if (!g)
			continue;
		k = g - rs->gpus;
		if (!g->touched) {
			g->touched = true;
			mem[k] = util[k] = 0;
		}
		if (procs[i].mem_mib > 0)
			mem[k] += procs[i].mem_mib;
		if (procs[i].util_pct >= 0) {
			util[k] += procs[i].util_pct;
			has_util[k] = true;
		}
	}
	for (i = 0; i < rs->n_gpus; i++) {
		g = &rs->gpus[i];
		if (!g->touched) {
			tapir_series__remove(rs->gpu_mem, g->mem);
			tapir_series__remove(rs->gpu_util, g->util);
			rs->gpus[i--] = rs->gpus[--rs->n_gpus];
			continue;
		}
		if (!has_util[i])
			for (k = 0; k < nd; k++)
				if (devs[k].index == g->gpu && devs[k].util_pct >= 0)
					util[i] = devs[k].util_pct;
		tapir_series__set(g->mem, mem[i]);
		tapir_series__set(g->util, util[i] > 100 ? 100 : util[i]);
	}
}
