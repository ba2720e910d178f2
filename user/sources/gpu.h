/* SPDX-License-Identifier: GPL-2.0 */
/* GPU figures per device and per process, read through NVML loaded at run time. */
#ifndef TAPIR_GPU_H
#define TAPIR_GPU_H

#include <stddef.h>

struct tapir_gpu;

/* One process on one GPU. */
struct tapir_gpu_proc {
	unsigned int gpu_index; /* NVML device index */
	char gpu_uuid[96];
	unsigned int pid;
	double mem_mib;	 /* usedGpuMemory / 2^20, or -1 where NVML cannot tell */
	double util_pct; /* 0..100: per-process SM utilisation, or -1 if unknown */
};

struct tapir_gpu_device {
	unsigned int index;
	char uuid[96];
	double util_pct; /* device-wide, or -1 if unknown */
};

/*
 * Load NVML (@libpath, or libnvidia-ml.so.1 from the loader's search path) and initialise it.
 * On a node without a usable NVIDIA GPU, returns NULL with errno ENODEV after one info line
 * saying why GPU metrics are off. NVML is never linked at build time.
 */
struct tapir_gpu *tapir_gpu__new(const char *libpath);
/*
 * Refresh the figures. The arrays stay valid until the next collect or free. A device that
 * fails a query keeps its place with util_pct -1 and contributes no processes.
 * Returns 0, or -EINVAL / -ENOMEM.
 */
int tapir_gpu__collect(struct tapir_gpu *g, const struct tapir_gpu_proc **procs, size_t *n_procs,
		       const struct tapir_gpu_device **devs, size_t *n_devs);
/* Shut NVML down and unload it; NULL-safe. */
void tapir_gpu__free(struct tapir_gpu *g);

#endif
