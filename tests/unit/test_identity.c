// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the cgroup path identity parser: every kubelet and runtime shape, and abuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "identity.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Made-up values of the right shape. */
#define ID    "3f4a9c0e2b7d61a85e0c9b4d7a2f16e83c5b0a9d4e7f2c1b8a6d3e0f9c2b5a71"
#define ID2   "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define SHORT "3f4a9c0e2b7d"
#define UID   "5c0f3e2a-7b1d-4e9a-8c6f-2d4b9a0e7f13"
#define UID_  "5c0f3e2a_7b1d_4e9a_8c6f_2d4b9a0e7f13"
#define SUID  "8daa50c3a64c9ff60bb9eab7b44b56fd" /* a static pod: md5 hex, no dashes */

/* The same values one character off. */
#define ID63 "3f4a9c0e2b7d61a85e0c9b4d7a2f16e83c5b0a9d4e7f2c1b8a6d3e0f9c2b5a7"
#define ID65 ID "0"

struct want {
	const char *path;
	int ret;
	const char *uid;
	const char *cid;
	enum tapir_runtime rt;
	enum tapir_qos qos;
	int is_pod;
	int is_conmon;
	const char *name;
};

/* Every string field NUL-terminated inside its array, whatever the input. */
static void check_bounded(const struct tapir_identity *id)
{
	assert_non_null(memchr(id->pod_uid, '\0', sizeof(id->pod_uid)));
	assert_non_null(memchr(id->container_id, '\0', sizeof(id->container_id)));
	assert_non_null(memchr(id->name, '\0', sizeof(id->name)));
}

static void check(const struct want *w)
{
	struct tapir_identity id;
	int ret;

	memset(&id, 0xa5, sizeof(id));
	ret = tapir_identity_parse(w->path, &id);
	if (ret != w->ret || strcmp(id.pod_uid, w->uid) || strcmp(id.container_id, w->cid) ||
	    id.runtime != w->rt || id.qos != w->qos || id.is_pod != w->is_pod ||
	    id.is_conmon != w->is_conmon || strcmp(id.name, w->name))
		print_error(
			"path %s\n got ret=%d uid=%s cid=%s rt=%d qos=%d pod=%d conmon=%d name=%s\n",
			w->path ? w->path : "(null)", ret, id.pod_uid, id.container_id, id.runtime,
			id.qos, id.is_pod, id.is_conmon, id.name);
	assert_int_equal(ret, w->ret);
	check_bounded(&id);
	assert_string_equal(id.pod_uid, w->uid);
	assert_string_equal(id.container_id, w->cid);
	assert_int_equal(id.runtime, w->rt);
	assert_int_equal(id.qos, w->qos);
	assert_int_equal(id.is_pod, w->is_pod);
	assert_int_equal(id.is_conmon, w->is_conmon);
	assert_string_equal(id.name, w->name);
}

static void check_table(const struct want *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check(&w[i]);
}

/* The pod cgroup of each QoS class, per driver: prefix, then the UID in that driver's spelling,
 * then suffix. */
static const struct {
	enum tapir_qos qos;
	const char *systemd[2];
	const char *cgroupfs[2];
} qos_parents[] = {
	{ TAPIR_QOS_GUARANTEED,
	  { "/kubepods.slice/kubepods-pod", ".slice" },
	  { "/kubepods/pod", "" } },
	{ TAPIR_QOS_BURSTABLE,
	  { "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod", ".slice" },
	  { "/kubepods/burstable/pod", "" } },
	{ TAPIR_QOS_BESTEFFORT,
	  { "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod", ".slice" },
	  { "/kubepods/besteffort/pod", "" } },
};

/* The container leaf of each runtime, per driver; NULL where that pair does not occur. */
static const struct {
	enum tapir_runtime rt;
	const char *systemd;
	const char *cgroupfs;
} leaves[] = {
	{ TAPIR_RT_CONTAINERD, "cri-containerd-" ID ".scope", "cri-containerd-" ID },
	{ TAPIR_RT_CRIO, "crio-" ID ".scope", "crio-" ID },
	{ TAPIR_RT_DOCKER, "docker-" ID ".scope", NULL },
	{ TAPIR_RT_UNKNOWN, NULL, ID },
};

static void check_pod_matrix(int systemd, const char *uid_in, const char *uid_out)
{
	char pod[512], path[1024], name[64];
	struct want w;
	size_t q, r;

	snprintf(name, sizeof(name), "pod%s", uid_out);
	for (q = 0; q < ARRAY_SIZE(qos_parents); q++) {
		const char *const *fix = systemd ? qos_parents[q].systemd : qos_parents[q].cgroupfs;

		snprintf(pod, sizeof(pod), "%s%s%s", fix[0], uid_in, fix[1]);

		/* The pod-level cgroup itself, with and without a trailing slash. */
		w = (struct want){ pod, 0, uid_out, "", TAPIR_RT_NONE, qos_parents[q].qos,
				   1,	0, name };
		check(&w);
		snprintf(path, sizeof(path), "%s/", pod);
		w.path = path;
		check(&w);

		for (r = 0; r < ARRAY_SIZE(leaves); r++) {
			const char *leaf = systemd ? leaves[r].systemd : leaves[r].cgroupfs;

			if (!leaf)
				continue;
			snprintf(path, sizeof(path), "%s/%s", pod, leaf);
			w = (struct want){ path, 0, uid_out, ID, leaves[r].rt, qos_parents[q].qos,
					   0,	 0, SHORT };
			check(&w);
		}

		/* CRI-O's monitor sits next to its container and is not one. */
		snprintf(path, sizeof(path),
			 systemd ? "%s/crio-conmon-%s.scope" : "%s/crio-conmon-%s", pod, ID);
		w = (struct want){ path, 0, uid_out,	    "", TAPIR_RT_CRIO, qos_parents[q].qos,
				   0,	 1, "conmon-" SHORT };
		check(&w);
	}
}

static void test_systemd_driver(void **state)
{
	check_pod_matrix(1, UID_, UID);
}

static void test_cgroupfs_driver(void **state)
{
	check_pod_matrix(0, UID, UID);
}

static void test_static_pods(void **state)
{
	check_pod_matrix(1, SUID, SUID);
	check_pod_matrix(0, SUID, SUID);
}

static void test_nested(void **state)
{
	static const struct want w[] = {
		/* kind, seen from the host: the node is a docker container (systemd driver). */
		{ "/system.slice/docker-" ID2 ".scope/kubelet.slice/kubelet-kubepods.slice/"
		  "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_
		  ".slice/cri-containerd-" ID ".scope",
		  0, UID, ID, TAPIR_RT_CONTAINERD, TAPIR_QOS_BESTEFFORT, 0, 0, SHORT },
		/* A kind pod-level cgroup is the pod, not the node's container around it. */
		{ "/system.slice/docker-" ID2 ".scope/kubelet.slice/kubelet-kubepods.slice/"
		  "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_ ".slice",
		  0, UID, "", TAPIR_RT_NONE, TAPIR_QOS_BESTEFFORT, 1, 0, "pod" UID },
		{ "/docker/" ID2 "/kubepods/burstable/pod" UID "/xmrig", 0, UID, "", TAPIR_RT_NONE,
		  TAPIR_QOS_BURSTABLE, 0, 0, "xmrig" },
		/* kind, seen from inside the node's cgroup namespace. */
		{ "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
		  "kubelet-kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID ".scope",
		  0, UID, ID, TAPIR_RT_CONTAINERD, TAPIR_QOS_BURSTABLE, 0, 0, SHORT },
		{ "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" UID_ ".slice", 0,
		  UID, "", TAPIR_RT_NONE, TAPIR_QOS_GUARANTEED, 1, 0, "pod" UID },
		/* kind/minikube with docker's cgroupfs driver outside and systemd inside. */
		{ "/docker/" ID2
		  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
		  ".slice/crio-" ID ".scope",
		  0, UID, ID, TAPIR_RT_CRIO, TAPIR_QOS_BESTEFFORT, 0, 0, SHORT },
		/* cgroupfs inside docker, and a --cgroup-root above kubepods. */
		{ "/docker/" ID2 "/kubepods/burstable/pod" UID "/" ID, 0, UID, ID, TAPIR_RT_UNKNOWN,
		  TAPIR_QOS_BURSTABLE, 0, 0, SHORT },
		{ "/custom/root/kubepods/pod" UID "/" ID, 0, UID, ID, TAPIR_RT_UNKNOWN,
		  TAPIR_QOS_GUARANTEED, 0, 0, SHORT },
		/* The node container itself, and a service inside it, are the node's docker id. */
		{ "/system.slice/docker-" ID2 ".scope/kubelet.slice/kubelet-kubepods.slice", 0, "",
		  ID2, TAPIR_RT_DOCKER, TAPIR_QOS_NONE, 0, 0, "a1b2c3d4e5f6" },
		{ "/docker/" ID2 "/system.slice/containerd.service", 0, "", ID2, TAPIR_RT_DOCKER,
		  TAPIR_QOS_NONE, 0, 0, "a1b2c3d4e5f6" },
		/* A pod's own cgroupns view starts at its QoS slice. */
		{ "/kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID ".scope", 0, UID, ID,
		  TAPIR_RT_CONTAINERD, TAPIR_QOS_BURSTABLE, 0, 0, SHORT },
		/* Cgroups a container makes below its own still belong to it. */
		{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
		  ".slice/crio-" ID ".scope/container",
		  0, UID, ID, TAPIR_RT_CRIO, TAPIR_QOS_BURSTABLE, 0, 0, SHORT },
		{ "/kubepods/besteffort/pod" UID "/" ID "/init.scope/a/b", 0, UID, ID,
		  TAPIR_RT_UNKNOWN, TAPIR_QOS_BESTEFFORT, 0, 0, SHORT },
		/* Docker in a pod's container: the innermost container is the workload. */
		{ "/kubepods/burstable/pod" UID "/" ID "/docker/" ID2, 0, "", ID2, TAPIR_RT_DOCKER,
		  TAPIR_QOS_NONE, 0, 0, "a1b2c3d4e5f6" },
		/* A pod in a pod (kind in a pod): the inner pod. */
		{ "/kubepods/burstable/pod" SUID "/" ID2 "/kubelet.slice/kubelet-kubepods.slice/"
		  "kubelet-kubepods-pod" UID_ ".slice/docker-" ID ".scope",
		  0, UID, ID, TAPIR_RT_DOCKER, TAPIR_QOS_GUARANTEED, 0, 0, SHORT },
		/* Below a pod, but in nothing shaped like a container. */
		{ "/kubepods/burstable/pod" UID "/xmrig", 0, UID, "", TAPIR_RT_NONE,
		  TAPIR_QOS_BURSTABLE, 0, 0, "xmrig" },
		{ "/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" ID63 ".scope", 0, UID, "",
		  TAPIR_RT_NONE, TAPIR_QOS_GUARANTEED, 0, 0, "crio-" ID63 },
	};

	check_table(w, ARRAY_SIZE(w));
}

static void test_plain(void **state)
{
	static const struct want w[] = {
		{ "/system.slice/docker-" ID ".scope", 0, "", ID, TAPIR_RT_DOCKER, TAPIR_QOS_NONE,
		  0, 0, SHORT },
		{ "/docker/" ID, 0, "", ID, TAPIR_RT_DOCKER, TAPIR_QOS_NONE, 0, 0, SHORT },
		{ "/system.slice/cri-containerd-" ID ".scope", 0, "", ID, TAPIR_RT_CONTAINERD,
		  TAPIR_QOS_NONE, 0, 0, SHORT },
		{ "/system.slice/crio-conmon-" ID ".scope", 0, "", "", TAPIR_RT_CRIO,
		  TAPIR_QOS_NONE, 0, 1, "conmon-" SHORT },
		{ "/system.slice/vllm.service", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0,
		  "vllm" },
		{ "/system.slice/system-getty.slice/getty@tty1.service", 0, "", "", TAPIR_RT_NONE,
		  TAPIR_QOS_NONE, 0, 0, "getty@tty1" },
		{ "/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1a2b3.scope", 0, "",
		  "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0, "run-r1a2b3" },
		{ "/user.slice/user-1000.slice", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0,
		  "user-1000.slice" },
		{ "/init.scope", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0, "init" },
		{ "/tapir-e2e/slot3/replica0", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0,
		  "replica0" },
		{ "/", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0, "/" },
		{ "//", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0, "/" },
		{ "//system.slice//vllm.service//", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0,
		  "vllm" },
		/* The levels above pods carry no pod. */
		{ "/kubepods.slice", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0,
		  "kubepods.slice" },
		{ "/kubepods.slice/kubepods-burstable.slice", 0, "", "", TAPIR_RT_NONE,
		  TAPIR_QOS_NONE, 0, 0, "kubepods-burstable.slice" },
		{ "/kubepods/besteffort", 0, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0,
		  "besteffort" },
	};

	check_table(w, ARRAY_SIZE(w));
}

static void test_malformed(void **state)
{
	static const struct want w[] = {
		{ NULL, -EINVAL, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0, "" },
		{ "", -EINVAL, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE, 0, 0, "" },
		{ "kubepods.slice/kubepods-pod" UID_ ".slice", -EINVAL, "", "", TAPIR_RT_NONE,
		  TAPIR_QOS_NONE, 0, 0, "" },
		{ "/kubepods/../kubepods/pod" UID, -EINVAL, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE,
		  0, 0, "" },
		{ "/kubepods/pod" UID "/" ID "/.", -EINVAL, "", "", TAPIR_RT_NONE, TAPIR_QOS_NONE,
		  0, 0, "" },
	};

	check_table(w, ARRAY_SIZE(w));
	assert_int_equal(tapir_identity_parse("/", NULL), -EINVAL);
}

/* Near misses: each is some other cgroup, named plainly, never a pod or a container. */
static void test_near_misses(void **state)
{
	static const char *const paths[] = {
		"/kubepods-pod.slice",
		"/kubepods.slice/kubepods-pod.slice",
		"/kubepods.slice/kubepods-pod" UID_ "0.slice",
		"/kubepods.slice/kubepods-pod" SUID "0.slice",
		"/kubepods.slice/kubepods-pod5c0f3e2a_7b1d_4e9a_8c6f_2d4b9a0e7f1.slice",
		"/kubepods.slice/kubepods-pod5C0F3E2A_7B1D_4E9A_8C6F_2D4B9A0E7F13.slice",
		"/kubepods.slice/kubepods-pod5c0f3e2a_7b1d_4e9a_8c6f_2d4b9a0e7g13.slice",
		"/kubepods.slice/kubepods-pod" UID ".slice", /* '-' would be a slice level */
		"/kubepods.slice/kubepods-pod5c0f3e2a_7b1d-4e9a_8c6f_2d4b9a0e7f13.slice",
		"/kubepods.slice/kubepods-pod" UID_, /* no .slice */
		"/kubepods.slice/kubepods-guaranteed-pod" UID_ ".slice",
		"/kubepods.slice/xkubepods-pod" UID_ ".slice", /* not at a level boundary */
		"/kubepods/pod" UID_,			       /* '_' is systemd's spelling */
		"/kubepods/burstable/pod" SUID "0",
		"/kubepods/guaranteed/pod" UID,
		"/burstable/pod" UID, /* no kubepods above the QoS level */
		"/kubepods/burstable/xpod" UID,
		"/kubepods/burstable/pod",
		"/kubepods/burstable/pod" UID ".slice",
		"/system.slice/docker-" ID63 ".scope",
		"/system.slice/docker-" ID65 ".scope",
		"/system.slice/docker-3F4A9C0E2B7D61A85E0C9B4D7A2F16E83C5B0A9D4E7F2C1B8A6D3E0F9C2B5A71.scope",
		"/system.slice/docker-.scope",
		"/system.slice/docker-" ID ".service",
		"/system.slice/cri-o-" ID ".scope",
		"/system.slice/" ID, /* a bare id is only a container under docker or a pod */
		"/docker/" ID63,
		"/docker/" ID65,
		"/docker/" ID ".scope",
		"/docker/d\xc3\xa9j\xc3\xa0-vu",
		"/\xe2\x98\x83.slice/\xf0\x9f\x90\xb3-" ID ".scope",
		"/kubepods.slice/kubepods-pod\xef\xbc\xbf" UID_ ".slice",
		"/sys\x01tem.slice/\x7f\n\t.service",
		"/\xff\xfe/\x80",
	};
	struct tapir_identity id;
	const char *last;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		memset(&id, 0xa5, sizeof(id));
		if (tapir_identity_parse(paths[i], &id))
			fail_msg("%s: not parsed", paths[i]);
		check_bounded(&id);
		if (id.pod_uid[0] || id.container_id[0] || id.runtime || id.qos || id.is_pod ||
		    id.is_conmon)
			fail_msg("%s: taken for a pod or container", paths[i]);
		last = strrchr(paths[i], '/') + 1;
		if (strncmp(id.name, last, strlen(id.name)) || !id.name[0])
			fail_msg("%s: name '%s'", paths[i], id.name);
	}
}

/* A long component is cut to fit, before a UTF-8 character rather than through it. */
static void test_long_names(void **state)
{
	struct tapir_identity id;
	char path[4096];
	size_t n;

	path[0] = '/';
	memset(path + 1, 'a', 300);
	strcpy(path + 301, ".service");
	assert_int_equal(tapir_identity_parse(path, &id), 0);
	assert_int_equal(strlen(id.name), sizeof(id.name) - 1);

	/* 126 ASCII bytes and then a 3-byte snowman: only the ASCII fits. */
	memset(path + 1, 'b', 126);
	strcpy(path + 127, "\xe2\x98\x83\xe2\x98\x83");
	assert_int_equal(tapir_identity_parse(path, &id), 0);
	assert_int_equal(strlen(id.name), 126);
	memset(path + 1, 'b', 124);
	strcpy(path + 125, "\xe2\x98\x83\xe2\x98\x83");
	assert_int_equal(tapir_identity_parse(path, &id), 0);
	assert_string_equal(id.name + 124, "\xe2\x98\x83");

	/* A 4 KB path of many levels, ending in a real container. */
	for (n = 0; n < 3800; n += 2)
		memcpy(path + n, "/x", 2);
	snprintf(path + n, sizeof(path) - n, "/kubepods/pod%s/%s", UID, ID);
	assert_int_equal(tapir_identity_parse(path, &id), 0);
	assert_string_equal(id.container_id, ID);
	assert_string_equal(id.pod_uid, UID);
}

/* A 1 MiB path with a 1 MiB component: no fixed-size buffer anywhere. */
static void test_huge_path(void **state)
{
	size_t n = 1 << 20;
	struct tapir_identity id;
	char *path = malloc(n + 1);

	assert_non_null(path);
	path[0] = '/';
	memset(path + 1, 'k', n - 1);
	path[n] = '\0';
	assert_int_equal(tapir_identity_parse(path, &id), 0);
	check_bounded(&id);
	for (size_t i = 0; i + 1 < n; i += 2)
		path[i] = '/';
	assert_int_equal(tapir_identity_parse(path, &id), 0);
	check_bounded(&id);
	free(path);
}

/*
 * Every prefix of, and single-byte mutation to, real paths: whatever comes out is bounded, and
 * a result that names a container or pod names one that is in the input.
 */
static void test_mutations(void **state)
{
	static const char *const seeds[] = {
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
		".slice/cri-containerd-" ID ".scope",
		"/kubepods/besteffort/pod" UID "/crio-conmon-" ID,
		"/system.slice/docker-" ID2 ".scope/kubelet.slice/kubelet-kubepods.slice/"
		"kubelet-kubepods-pod" SUID ".slice/" ID,
	};
	static const char bytes[] = { '/', '-', '_', '.', 'a', 'g', '0', '\x80', '\xc3' };
	struct tapir_identity id;
	char buf[512];
	size_t s, i, b, len;
	int ret;

	for (s = 0; s < ARRAY_SIZE(seeds); s++) {
		len = strlen(seeds[s]);
		assert_true(len < sizeof(buf));
		for (i = 0; i <= len; i++) {
			memcpy(buf, seeds[s], i);
			buf[i] = '\0';
			ret = tapir_identity_parse(buf, &id);
			assert_true(ret == 0 || ret == -EINVAL);
			check_bounded(&id);
		}
		for (i = 0; i < len; i++) {
			for (b = 0; b < ARRAY_SIZE(bytes); b++) {
				strcpy(buf, seeds[s]);
				buf[i] = bytes[b];
				ret = tapir_identity_parse(buf, &id);
				assert_true(ret == 0 || ret == -EINVAL);
				check_bounded(&id);
				if (id.container_id[0])
					assert_non_null(strstr(buf, id.container_id));
				if (id.pod_uid[0] && !strchr(id.pod_uid, '-'))
					assert_non_null(strstr(buf, id.pod_uid));
			}
		}
	}
}

static void test_names(void **state)
{
	assert_string_equal(tapir_qos_name(TAPIR_QOS_GUARANTEED), "guaranteed");
	assert_string_equal(tapir_qos_name(TAPIR_QOS_BURSTABLE), "burstable");
	assert_string_equal(tapir_qos_name(TAPIR_QOS_BESTEFFORT), "besteffort");
	assert_string_equal(tapir_qos_name(TAPIR_QOS_NONE), "");
	assert_string_equal(tapir_qos_name((enum tapir_qos)42), "");
	assert_string_equal(tapir_runtime_name(TAPIR_RT_CONTAINERD), "containerd");
	assert_string_equal(tapir_runtime_name(TAPIR_RT_CRIO), "cri-o");
	assert_string_equal(tapir_runtime_name(TAPIR_RT_DOCKER), "docker");
	assert_string_equal(tapir_runtime_name(TAPIR_RT_UNKNOWN), "");
	assert_string_equal(tapir_runtime_name(TAPIR_RT_NONE), "");
	assert_string_equal(tapir_runtime_name((enum tapir_runtime) - 1), "");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_systemd_driver), cmocka_unit_test(test_cgroupfs_driver),
		cmocka_unit_test(test_static_pods),    cmocka_unit_test(test_nested),
		cmocka_unit_test(test_plain),	       cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_near_misses),    cmocka_unit_test(test_long_names),
		cmocka_unit_test(test_huge_path),      cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
