/* SPDX-License-Identifier: GPL-2.0 */
/* Container CPU and memory with cAdvisor's definitions, from cgroup v2 or the v1 controllers. */
#ifndef TAPIR_RESOURCES_H
#define TAPIR_RESOURCES_H

#include <stdbool.h>
#include <stdint.h>

struct tapir_usage {
	bool has_cpu, has_mem;
	double cpu_seconds; /* cumulative, all CPUs */
	double working_set; /* bytes: usage minus inactive file pages, at least 0 */
};

/* Find the v1 cpuacct and memory mounts (hybrid hosts); call once at start. */
void tapir_resources_init(void);

/*
 * Read the usage of the cgroup v2 directory @dir. Where v2 lacks a controller (hybrid hosts,
 * such as memory in v1), the v1 cgroup of @pid (a process of the container, 0 if none) is read
 * instead. Returns 0 (fields flagged as found) or -errno.
 */
int tapir_usage_read(const char *dir, int pid, struct tapir_usage *u);

/* A process in @dir or below it, 0 if none. */
int tapir_cgroup_first_pid(const char *dir);

/* Is this container cgroup a pod's sandbox (its first process is "pause")? */
bool tapir_cgroup_is_sandbox(const char *dir);

/* The cgroup v2 path of @pid ("0::" line of /proc/PID/cgroup) into @buf. */
int tapir_pid_cgroup2(int pid, char *buf, size_t len);

#endif
