/* SPDX-License-Identifier: GPL-2.0 */
/* What the fake NVML library counts, for tests that load it next to the code under test. */
#ifndef TAPIR_FAKE_NVML_H
#define TAPIR_FAKE_NVML_H

#define FAKE_NVML_MAX_DEVS 8

struct fake_nvml_stats {
	unsigned int inits;	   /* successful nvmlInit_v2 calls */
	unsigned int shutdowns;	   /* successful nvmlShutdown calls */
	int live;		   /* inits - shutdowns */
	unsigned int insufficient; /* INSUFFICIENT_SIZE answers, both list calls */
	unsigned int proc_calls;   /* nvmlDeviceGetComputeRunningProcesses_v3 calls */
	unsigned int util_calls;   /* nvmlDeviceGetProcessUtilization calls */
	/* lastSeenTimeStamp of the newest nvmlDeviceGetProcessUtilization call, per device */
	unsigned long long last_seen[FAKE_NVML_MAX_DEVS];
};

/* Exported by the library; look them up with dlsym. */
typedef struct fake_nvml_stats *(*fake_nvml_stats_fn)(void);
#define FAKE_NVML_STATS_SYM "fake_nvml_stats"

#endif
