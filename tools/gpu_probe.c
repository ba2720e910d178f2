// SPDX-License-Identifier: GPL-2.0
/* Print what tapir's NVML reader sees, in CSV close to nvidia-smi's, for a side-by-side check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "log.h"

static int print(struct tapir_gpu *g)
{
	const struct tapir_gpu_device *devs;
	const struct tapir_gpu_proc *procs;
	size_t n_devs, n_procs, i;
	int err;

	err = tapir_gpu__collect(g, &procs, &n_procs, &devs, &n_devs);
	if (err) {
		fprintf(stderr, "collect: %s\n", strerror(-err));
		return err;
	}
	printf("# index, uuid, utilization.gpu [%%]\n");
	for (i = 0; i < n_devs; i++)
		printf("%u, %s, %.0f\n", devs[i].index, devs[i].uuid, devs[i].util_pct);
	printf("# gpu index, gpu_uuid, pid, used_memory [MiB], sm [%%]\n");
	for (i = 0; i < n_procs; i++)
		printf("%u, %s, %u, %.0f, %.0f\n", procs[i].gpu_index, procs[i].gpu_uuid,
		       procs[i].pid, procs[i].mem_mib, procs[i].util_pct);
	return 0;
}

/* gpu_probe [libnvidia-ml path] [seconds between the two collects] */
int main(int argc, char **argv)
{
	unsigned int gap = argc > 2 ? (unsigned int)atoi(argv[2]) : 2;
	struct tapir_gpu *g;
	int err;

	tapir_log_set_level(TAPIR_LOG_DEBUG);
	g = tapir_gpu__new(argc > 1 && argv[1][0] ? argv[1] : NULL);
	if (!g) {
		fprintf(stderr, "tapir_gpu__new: %s\n", strerror(errno));
		return 2;
	}
	/* The first collect reads the driver's whole sample buffer; the second, only what is new. */
	err = print(g);
	if (!err) {
		sleep(gap);
		printf("# after %us\n", gap);
		err = print(g);
	}
	tapir_gpu__free(g);
	return err ? 1 : 0;
}
