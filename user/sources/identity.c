// SPDX-License-Identifier: GPL-2.0
/* Derives pod UID, QoS class, container id and runtime from the shape of a cgroup v2 path. */
#include <errno.h>
#include <string.h>

#include "identity.h"

/*
 * The shapes, as kubelet and the runtimes spell them (examples from public bug reports):
 *
 * kubelet --cgroup-driver=systemd encodes the ancestry in each slice name and escapes the '-'
 * of the pod UID as '_':
 *   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/<ctr>
 *   /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/<ctr>
 *   /kubepods.slice/kubepods-pod<uid_>.slice/<ctr>                    (guaranteed)
 * with <ctr> one of cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope (cri-dockerd),
 * and crio-conmon-<id>.scope next to CRI-O's containers. A --cgroup-root slice prefixes every
 * name: kind runs kubelet under kubelet.slice, so its pods are
 *   /kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/
 *   kubelet-kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
 * and from the host that whole tree sits below the node's own /system.slice/docker-<id>.scope
 * (or /docker/<id>).
 *
 * kubelet --cgroup-driver=cgroupfs uses plain directories and the UID as is:
 *   /kubepods/burstable/pod<uid>/<id>, /kubepods/besteffort/pod<uid>/<id>, /kubepods/pod<uid>/<id>
 * where containerd and docker name the container by its bare id, and CRI-O's cgroupfs manager
 * as crio-<id> with its monitor in crio-conmon-<id>.
 *
 * Outside Kubernetes: /system.slice/docker-<id>.scope (docker, systemd driver), /docker/<id>
 * (docker, cgroupfs driver), /system.slice/crio-conmon-<id>.scope (CRI-O's conmon_cgroup =
 * "system.slice"), and services such as /system.slice/vllm.service.
 *
 * Each component is judged by its own shape, wherever it sits, so that the nested trees above
 * need no special case; the deepest component that says something wins, because it is the
 * workload: for a kind node that is the pod inside, not the node's docker container.
 */

#define ID_LEN	   64 /* containerd, CRI-O and docker ids are sha256-sized lowercase hex */
#define UUID_LEN   36 /* an API server pod UID, RFC 4122 text form */
#define STATIC_LEN 32 /* a static pod's UID: the kubelet's md5 of the manifest, in hex */

struct comp {
	const char *s;
	size_t len;
};

struct pod_match {
	int depth; /* component index, -1 for none */
	enum tapir_qos qos;
	char uid[UUID_LEN + 1];
};

struct ctr_match {
	int depth;
	int in_pod; /* directly below the pod component that was the deepest one at the time */
	int conmon;
	enum tapir_runtime runtime;
	const char *id; /* ID_LEN characters inside the caller's path */
};

static const struct {
	const char *tag;
	enum tapir_qos qos;
} pod_slice_tags[] = {
	{ "kubepods-pod", TAPIR_QOS_GUARANTEED },
	{ "kubepods-burstable-pod", TAPIR_QOS_BURSTABLE },
	{ "kubepods-besteffort-pod", TAPIR_QOS_BESTEFFORT },
};

/* "crio-conmon-" is tried before "crio-" only for clarity: "conmon-..." is no id anyway. */
static const struct {
	const char *prefix;
	enum tapir_runtime runtime;
	int conmon;
} ctr_prefixes[] = {
	{ "cri-containerd-", TAPIR_RT_CONTAINERD, 0 },
	{ "crio-conmon-", TAPIR_RT_CRIO, 1 },
	{ "crio-", TAPIR_RT_CRIO, 0 },
	{ "docker-", TAPIR_RT_DOCKER, 0 },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Lowercase only: every producer of these ids writes lowercase, so anything else is not one. */
static int is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

static int is_id(const char *s, size_t n)
{
	return n == ID_LEN && is_hex(s, n);
}

static int comp_eq(struct comp c, const char *str)
{
	size_t n = strlen(str);

	return c.len == n && !memcmp(c.s, str, n);
}

static int has_prefix(struct comp c, const char *prefix)
{
	size_t n = strlen(prefix);

	return c.len >= n && !memcmp(c.s, prefix, n);
}

/* Drop @suffix from @c if it ends with it and something is left; 1 if it did. */
static int strip_suffix(struct comp *c, const char *suffix)
{
	size_t n = strlen(suffix);

	if (c->len <= n || memcmp(c->s + c->len - n, suffix, n))
		return 0;
	c->len -= n;
	return 1;
}

/* The next non-empty component at *@p; 0 at the end of the path. */
static int next_comp(const char **p, struct comp *c)
{
	const char *s = *p;

	while (*s == '/')
		s++;
	if (!*s)
		return 0;
	c->s = s;
	while (*s && *s != '/')
		s++;
	c->len = s - c->s;
	*p = s;
	return 1;
}

/*
 * A pod UID in either form kubelet generates, with @sep where the UUID has '-' ('_' under the
 * systemd driver), copied to @out in the API server's spelling. A static pod whose manifest
 * sets metadata.uid by hand can carry anything; such pods are not recognised.
 */
static int parse_uid(const char *s, size_t n, char sep, char *out)
{
	size_t i;

	if (n == STATIC_LEN) {
		if (!is_hex(s, n))
			return 0;
		memcpy(out, s, n);
		out[n] = '\0';
		return 1;
	}
	if (n != UUID_LEN)
		return 0;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != sep)
				return 0;
			out[i] = '-';
		} else {
			if (!is_hex(s + i, 1))
				return 0;
			out[i] = s[i];
		}
	}
	out[n] = '\0';
	return 1;
}

/* systemd driver: [<root prefix>-]kubepods[-<qos>]-pod<uid_>.slice */
static int match_pod_slice(struct comp c, struct pod_match *m)
{
	static const size_t uid_lens[] = { UUID_LEN, STATIC_LEN };
	size_t i, j, tag_len, at;

	if (!strip_suffix(&c, ".slice"))
		return 0;
	for (i = 0; i < ARRAY_SIZE(uid_lens); i++) {
		for (j = 0; j < ARRAY_SIZE(pod_slice_tags); j++) {
			tag_len = strlen(pod_slice_tags[j].tag);
			if (c.len < tag_len + uid_lens[i])
				continue;
			at = c.len - uid_lens[i] - tag_len;
			if (memcmp(c.s + at, pod_slice_tags[j].tag, tag_len))
				continue;
			if (at && c.s[at - 1] != '-')
				continue;
			if (!parse_uid(c.s + at + tag_len, uid_lens[i], '_', m->uid))
				continue;
			m->qos = pod_slice_tags[j].qos;
			return 1;
		}
	}
	return 0;
}

/* cgroupfs driver: kubepods/pod<uid> or kubepods/{burstable,besteffort}/pod<uid> */
static int match_pod_dir(struct comp c, struct comp parent, struct comp grand, struct pod_match *m)
{
	enum tapir_qos qos;

	if (comp_eq(parent, "kubepods"))
		qos = TAPIR_QOS_GUARANTEED;
	else if (comp_eq(parent, "burstable") && comp_eq(grand, "kubepods"))
		qos = TAPIR_QOS_BURSTABLE;
	else if (comp_eq(parent, "besteffort") && comp_eq(grand, "kubepods"))
		qos = TAPIR_QOS_BESTEFFORT;
	else
		return 0;
	if (!has_prefix(c, "pod") || !parse_uid(c.s + 3, c.len - 3, '-', m->uid))
		return 0;
	m->qos = qos;
	return 1;
}

/*
 * A runtime-prefixed id, with or without ".scope" (systemd vs cgroupfs managers), anywhere; a
 * bare id only right below a pod (either runtime) or below "docker" (docker's cgroupfs driver).
 */
static int match_ctr(struct comp c, struct comp parent, int in_pod, struct ctr_match *m)
{
	struct comp body = c;
	size_t i, n;

	strip_suffix(&body, ".scope");
	for (i = 0; i < ARRAY_SIZE(ctr_prefixes); i++) {
		n = strlen(ctr_prefixes[i].prefix);
		if (!has_prefix(body, ctr_prefixes[i].prefix) || !is_id(body.s + n, body.len - n))
			continue;
		m->id = body.s + n;
		m->runtime = ctr_prefixes[i].runtime;
		m->conmon = ctr_prefixes[i].conmon;
		m->in_pod = in_pod;
		return 1;
	}
	if (!is_id(c.s, c.len))
		return 0;
	if (in_pod)
		m->runtime = TAPIR_RT_UNKNOWN;
	else if (comp_eq(parent, "docker"))
		m->runtime = TAPIR_RT_DOCKER;
	else
		return 0;
	m->id = c.s;
	m->conmon = 0;
	m->in_pod = in_pod;
	return 1;
}

/* Copy at most size - 1 bytes, cutting before a UTF-8 character rather than through it. */
static void copy_name(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size) {
		n = size - 1;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* A unit shows as what systemctl users call it: "vllm", not "vllm.service". */
static void plain_name(struct tapir_identity *id, struct comp last)
{
	if (!strip_suffix(&last, ".service"))
		strip_suffix(&last, ".scope");
	copy_name(id->name, sizeof(id->name), last.s, last.len);
}

static void fill_ctr(struct tapir_identity *id, const struct ctr_match *m)
{
	id->runtime = m->runtime;
	if (m->conmon) {
		id->is_conmon = 1;
		memcpy(id->name, "conmon-", 7);
		memcpy(id->name + 7, m->id, TAPIR_ID_SHORT);
		id->name[7 + TAPIR_ID_SHORT] = '\0';
		return;
	}
	memcpy(id->container_id, m->id, ID_LEN);
	id->container_id[ID_LEN] = '\0';
	memcpy(id->name, m->id, TAPIR_ID_SHORT);
	id->name[TAPIR_ID_SHORT] = '\0';
}

int tapir_identity_parse(const char *path, struct tapir_identity *id)
{
	struct pod_match pod = { .depth = -1 }, pm;
	struct ctr_match ctr = { .depth = -1 }, cm;
	struct comp c, parent = { "", 0 }, grand = { "", 0 };
	const char *p = path;
	int depth = 0;

	if (!id)
		return -EINVAL;
	memset(id, 0, sizeof(*id));
	if (!path || path[0] != '/')
		return -EINVAL;

	for (; next_comp(&p, &c); depth++) {
		/* The kernel refuses such names; a path holding one was made up. */
		if (comp_eq(c, ".") || comp_eq(c, ".."))
			return -EINVAL;
		if (match_pod_slice(c, &pm) || match_pod_dir(c, parent, grand, &pm)) {
			pod = pm;
			pod.depth = depth;
		} else if (match_ctr(c, parent, pod.depth >= 0 && pod.depth == depth - 1, &cm)) {
			ctr = cm;
			ctr.depth = depth;
		}
		grand = parent;
		parent = c;
	}

	if (!depth) {
		strcpy(id->name, "/");
		return 0;
	}
	if (ctr.depth > pod.depth) {
		fill_ctr(id, &ctr);
		if (!ctr.in_pod)
			return 0;
	} else if (pod.depth == depth - 1) {
		id->is_pod = 1;
		strcpy(id->name, "pod");
		strcpy(id->name + 3, pod.uid);
	} else if (pod.depth < 0) {
		plain_name(id, parent);
		return 0;
	} else {
		/* Below a pod but in no container we know, e.g. a cgroup a container made itself. */
		plain_name(id, parent);
	}
	strcpy(id->pod_uid, pod.uid);
	id->qos = pod.qos;
	return 0;
}

const char *tapir_qos_name(enum tapir_qos q)
{
	switch (q) {
	case TAPIR_QOS_GUARANTEED: return "guaranteed";
	case TAPIR_QOS_BURSTABLE: return "burstable";
	case TAPIR_QOS_BESTEFFORT: return "besteffort";
	default: return "";
	}
}

const char *tapir_runtime_name(enum tapir_runtime rt)
{
	switch (rt) {
	case TAPIR_RT_CONTAINERD: return "containerd";
	case TAPIR_RT_CRIO: return "cri-o";
	case TAPIR_RT_DOCKER: return "docker";
	default: return "";
	}
}
