/* SPDX-License-Identifier: GPL-2.0 */
/* A client for the kubelet's /pods endpoint: the node's pods, their labels and containers. */
#ifndef TAPIR_KUBELET_H
#define TAPIR_KUBELET_H

#include <stdbool.h>
#include <stddef.h>

/* Bodies above this are refused: a node of 250 pods with managedFields is a few MiB. */
#define TAPIR_KUBELET_MAX_BODY	 (64UL << 20)
#define TAPIR_KUBELET_TIMEOUT_MS 5000L /* when tapir_kubelet_opts.timeout_ms is 0 or less */

/* Every string below is NUL-terminated, valid UTF-8 and never NULL ("" where absent). */
struct tapir_kube_container {
	char *name;
	char *container_id; /* the runtime's id, "containerd://" etc. cut off; "" until started */
	bool ready;
};

struct tapir_kube_pod {
	char *uid, *name, *namespace_;
	char **label_keys, **label_values;
	size_t n_labels;
	char **annotation_keys, **annotation_values;
	size_t n_annotations;
	struct tapir_kube_container
		*containers; /* status.containerStatuses, in the kubelet's order */
	size_t n_containers;
	int ready; /* the Ready condition: 1 True, 0 False, -1 Unknown or absent */
	char *phase;
};

struct tapir_kube_pods {
	struct tapir_kube_pod *pods;
	size_t n;
};

struct tapir_kubelet_opts {
	const char *url;	/* "https://127.0.0.1:10250/pods", "http://127.0.0.1:10255/pods" */
	const char *token_file; /* bearer token, re-read on every fetch; NULL sends none */
	const char *ca_file;	/* CA bundle; NULL for the system's */
	bool insecure;	 /* skip TLS verification: kubelet serving certs are often self-signed */
	long timeout_ms; /* whole request; 0 or less for TAPIR_KUBELET_TIMEOUT_MS */
};

/* An http:// or https:// URL is required (errno EINVAL otherwise). Copies everything in @o. */
struct tapir_kubelet *tapir_kubelet__new(const struct tapir_kubelet_opts *o);
void tapir_kubelet__free(struct tapir_kubelet *k);

/*
 * GET the URL and parse the PodList into @out, which is overwritten, not freed: clear it
 * before it is reused. Returns 0, or -errno with @out empty: what open(2) or read(2) said
 * of the token file, -EINVAL for an empty token or one with spaces or control characters
 * inside, -EFBIG for one over 64 KiB; then connect(2)'s error (-ECONNREFUSED, ...),
 * -ETIMEDOUT, -EHOSTUNREACH (name lookup), -ECONNRESET, -EPROTO (TLS, HTTP other than 200,
 * 401, 403, 404), -EACCES (401, 403), -ENOENT (404), -EFBIG (body above
 * TAPIR_KUBELET_MAX_BODY), -EINVAL (not a PodList), -ENOMEM, -EIO. A failure is logged once
 * for as long as it repeats unchanged, and counted. Not thread-safe: one caller per object.
 */
int tapir_kubelet__fetch(struct tapir_kubelet *k, struct tapir_kube_pods *out);
/* Failed fetches since __new. */
unsigned long long tapir_kubelet__failures(const struct tapir_kubelet *k);

/*
 * Parse a /pods document (a v1 PodList) of @len bytes into @out, overwritten as above.
 * Returns 0, -EINVAL for anything that is not a well-formed PodList (bad JSON or UTF-8,
 * nesting deeper than 64, a field of the wrong type, a pod without uid, name or namespace,
 * a NUL inside a kept string), -EFBIG where @len exceeds INT_MAX, or -ENOMEM; @out is
 * empty on error. Missing or null optional fields read as absent. An annotation whose value
 * holds a NUL (the API server lets one through) is left out rather than cut short.
 */
int tapir_kube_pods__parse(const char *json, size_t len, struct tapir_kube_pods *out);
/* Free everything @p holds and leave it empty; NULL-safe and idempotent. */
void tapir_kube_pods__clear(struct tapir_kube_pods *p);

/* Lookups by linear search; NULL where there is no such pod, label or annotation. */
const struct tapir_kube_pod *tapir_kube_pods__by_uid(const struct tapir_kube_pods *p,
						     const char *uid);
const char *tapir_kube_pod__label(const struct tapir_kube_pod *p, const char *key);
const char *tapir_kube_pod__annotation(const struct tapir_kube_pod *p, const char *key);

#endif
