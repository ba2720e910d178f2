/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's YAML configuration: what to watch, with which labels, and tunables. */
#ifndef TAPIR_CONFIG_H
#define TAPIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The deployment labels every request family carries, in exposition order. */
enum tapir_label {
	TAPIR_L_MODEL_ID,
	TAPIR_L_MODEL_NAME,
	TAPIR_L_DEPLOYMENT_ID,
	TAPIR_L_ENVIRONMENT,
	TAPIR_L_ROLLOUT_PHASE,
	TAPIR_L_COUNT,
};

extern const char *const tapir_label_names[TAPIR_L_COUNT];

struct tapir_rule {
	char *cgroup;		     /* fnmatch(3) glob on the cgroup v2 path, FNM_PATHNAME */
	char *labels[TAPIR_L_COUNT]; /* never NULL after load: "" where unset */
	char *env[TAPIR_L_COUNT];    /* environment variable giving the label, NULL if none */
	int line;		     /* where the rule starts in the file, for messages */
};

/* struct tapir_config.bpf_variant: which build of the HTTP programs to load (--bpf-variant). */
enum tapir_bpf_variant {
	TAPIR_BPF_AUTO,	  /* bpf_loop where the kernel has it, else compat */
	TAPIR_BPF_LOOP,	  /* bpf_loop and global functions: 5.17+ */
	TAPIR_BPF_COMPAT, /* bounded loops and tail calls: every kernel with BTF and ring buffers */
};

/* struct tapir_config.bpf_hooks: where the HTTP programs watch sends and receives (--bpf-hooks). */
enum tapir_bpf_hooks {
	TAPIR_HOOKS_AUTO,    /* socket where the kernel has its tracepoints, else syscall */
	TAPIR_HOOKS_SOCKET,  /* sock_{send,recv}_length: 6.3+, loop build only */
	TAPIR_HOOKS_SYSCALL, /* syscall tracepoints: every kernel */
};

struct tapir_config {
	char *path;	 /* file it came from, NULL for built-in defaults */
	int bpf_variant; /* enum tapir_bpf_variant; from the command line, not the file */
	int bpf_hooks;	 /* enum tapir_bpf_hooks; from the command line */
	char *listen;	 /* "ADDR:PORT" */
	struct tapir_rule *rules;
	size_t n_rules;
	double *latency_buckets; /* seconds, strictly increasing, > 0 */
	size_t n_latency_buckets;
	double *size_buckets; /* bytes, strictly increasing, > 0 */
	size_t n_size_buckets;
	uint32_t max_connections; /* entries of the BPF conns map */
	uint32_t ringbuf_bytes;	  /* BPF ring buffer size: a power of two, >= 4096 */
	uint32_t gc_interval_ms;  /* how often dead processes' connections are swept */
	uint32_t
		series_grace_s; /* series of a label set whose cgroups are all gone live this long */
	uint32_t max_series; /* per metric family; beyond it, new series are dropped and counted */
	char **probe_paths;  /* request paths that count as readiness probes */
	size_t n_probe_paths;
	uint32_t unknown_after_s; /* readiness becomes "unknown" after this long without a signal */
	char *nvml_library;
	/* Kubernetes pod metadata from the kubelet's /pods; kubelet_url NULL: off. */
	char *kubelet_url;
	char *kube_token_file; /* bearer token, re-read on each fetch; NULL: none */
	char *kube_ca_file;    /* NULL: the system's CAs */
	bool kube_insecure;    /* skip TLS verification (kubelet serving certs are self-signed) */
	uint32_t kube_refresh_s;
	char *kube_labels[TAPIR_L_COUNT];
	/* "label:KEY", "annotation:KEY", "pod", "namespace" */ /* dlopen() name of NVML */
};

/* Built-in defaults (no rules). Returns NULL and sets errno on allocation failure. */
struct tapir_config *tapir_config__new_default(void);

/*
 * Parse @path. On success returns 0 and sets *@out. On failure returns -EINVAL (or -errno for
 * I/O and allocation), sets *@out to NULL and writes "FILE:LINE: reason" into @err.
 */
int tapir_config__load(const char *path, struct tapir_config **out, char *err, size_t errlen);

/* Same, from a string; @name stands for the file name in messages. */
int tapir_config__parse(const char *name, const char *text, size_t len, struct tapir_config **out,
			char *err, size_t errlen);

void tapir_config__free(struct tapir_config *cfg);

#endif
