/* SPDX-License-Identifier: GPL-2.0 */
/* Kubernetes and container identity read from a cgroup v2 path alone, without any I/O. */
#ifndef TAPIR_IDENTITY_H
#define TAPIR_IDENTITY_H

enum tapir_runtime {
	TAPIR_RT_NONE,	     /* not a container */
	TAPIR_RT_CONTAINERD, /* cri-containerd-<id> */
	TAPIR_RT_CRIO,	     /* crio-<id>, crio-conmon-<id> */
	TAPIR_RT_DOCKER,     /* docker-<id>, /docker/<id> */
	TAPIR_RT_UNKNOWN, /* a bare <id> under a cgroupfs pod: containerd and docker both do that */
};

enum tapir_qos {
	TAPIR_QOS_NONE,
	TAPIR_QOS_GUARANTEED,
	TAPIR_QOS_BURSTABLE,
	TAPIR_QOS_BESTEFFORT,
};

#define TAPIR_ID_SHORT 12 /* hex digits of a container id shown as its name, as docker ps does */

struct tapir_identity {
	char pod_uid[40]; /* as the API server spells it ('-', not systemd's '_'), "" if none */
	char container_id[72]; /* the full 64-hex id, "" for pod-level and non-container cgroups */
	enum tapir_runtime runtime;
	enum tapir_qos qos;
	int is_pod;	/* the path is the pod-level cgroup itself */
	int is_conmon;	/* CRI-O's conmon cgroup: its monitor, not a container */
	char name[128]; /* a display name; see tapir_identity_parse() */
};

/*
 * Fill @id from @path, a cgroup v2 path relative to the mount ("/kubepods.slice/...", as in
 * /proc/<pid>/cgroup). Returns 0, or -EINVAL where @path is empty, relative, or has a "." or
 * ".." component; @id is cleared either way.
 *
 * @id->name is the short (12 hex) container id for a container, "pod<uid>" for a pod-level
 * cgroup, "conmon-<short id>" for a conmon cgroup, the unit name without ".service" or ".scope"
 * for anything else ("vllm" for /system.slice/vllm.service), "/" for the root.
 *
 * The pod sandbox ("pause") container has a cgroup of the same shape as any other container of
 * its pod, so a path cannot tell it apart: callers must look at the process (comm "pause") or
 * at the kubelet's view of the pod.
 */
int tapir_identity_parse(const char *path, struct tapir_identity *id);

/* "guaranteed", "burstable", "besteffort", or "" for TAPIR_QOS_NONE and unknown values. */
const char *tapir_qos_name(enum tapir_qos q);
/* "containerd", "cri-o", "docker", or "" for TAPIR_RT_NONE, TAPIR_RT_UNKNOWN and unknown values. */
const char *tapir_runtime_name(enum tapir_runtime rt);

#endif
