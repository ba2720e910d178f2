// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the kubelet client: a recorded PodList, hostile documents, failing fetches. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "kubelet.h"
#include "log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FIXTURE	      "tests/fixtures/kubelet-pods.json"

#define CID1 "3f4a9c0e2b7d61a85e0c9b4d7a2f16e83c5b0a9d4e7f2c1b8a6d3e0f9c2b5a71"
#define CID2 "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define CID3 "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
#define CID4 "5d41402abc4b2a76b9719d911017c592ae2b1d0c7f3e6a9b8c4d2e1f0a9b8c7d"

static char *fixture;
static size_t fixture_len;

/* The fixture from the repository root, or found from the binary in build/tests/. */
static int load_fixture(void **state)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n;
	FILE *f;
	long len;

	f = fopen(FIXTURE, "rb");
	if (!f) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -1;
		exe[n] = '\0';
		snprintf(path, sizeof(path), "%s/../../" FIXTURE, dirname(exe));
		f = fopen(path, "rb");
	}
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	fixture = malloc(len + 1);
	if (!fixture || fread(fixture, 1, len, f) != (size_t)len) {
		fclose(f);
		return -1;
	}
	fclose(f);
	fixture[len] = '\0';
	fixture_len = len;
	return 0;
}

static int free_fixture(void **state)
{
	free(fixture);
	return 0;
}

static int parse_str(const char *json, struct tapir_kube_pods *out)
{
	return tapir_kube_pods__parse(json, strlen(json), out);
}

static void assert_empty(const struct tapir_kube_pods *p)
{
	assert_null(p->pods);
	assert_int_equal(p->n, 0);
}

static void check_container(const struct tapir_kube_container *c, const char *name, const char *id,
			    bool ready)
{
	assert_string_equal(c->name, name);
	assert_string_equal(c->container_id, id);
	assert_int_equal(c->ready, ready);
}

/* The 10 KB annotation of the third pod, decoded: the fixture spells it with every escape. */
static char *big_annotation(void)
{
	static const char line[] =
		"line %03d: \"quoted\" back\\slash\ttab caf\xc3\xa9 \xe2\x82\xac "
		"\xf0\x9f\x98\x80 \xef\xbf\xbd {\"k\": [1, 2]} a/b\r\b\f\n";
	size_t cap = 140 * sizeof(line) + 1, len = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	for (i = 0; i < 140; i++)
		len += snprintf(s + len, cap - len, line, i);
	return s;
}

static void test_fixture(void **state)
{
	const struct tapir_kube_pod *p;
	struct tapir_kube_pods pods;
	char *big;

	assert_int_equal(tapir_kube_pods__parse(fixture, fixture_len, &pods), 0);
	assert_int_equal(pods.n, 3);

	/* A vLLM deployment pod on containerd, Ready. */
	p = &pods.pods[0];
	assert_string_equal(p->uid, "0b6f5d0e-3c1a-4e8b-9f27-5a4c1d2e3f60");
	assert_string_equal(p->name, "model-wd8mj2q-deployment-2-7c9d6b5f4-x8k2p");
	assert_string_equal(p->namespace_, "org-7fq2kd1");
	assert_string_equal(p->phase, "Running");
	assert_int_equal(p->ready, 1);
	assert_int_equal(p->n_labels, 9);
	assert_string_equal(p->label_keys[0], "app");
	assert_string_equal(p->label_values[0], "model-wd8mj2q");
	assert_string_equal(p->label_keys[8], "pod-template-hash");
	assert_string_equal(tapir_kube_pod__label(p, "model_id"), "wd8mj2q");
	assert_string_equal(tapir_kube_pod__label(p, "model_name"), "llama-3.1-8b-instruct");
	assert_string_equal(tapir_kube_pod__label(p, "deployment_id"), "q4x7m2p");
	assert_string_equal(tapir_kube_pod__label(p, "environment"), "production");
	assert_string_equal(tapir_kube_pod__label(p, "rollout_phase"), "stable");
	assert_string_equal(tapir_kube_pod__label(p, "app.kubernetes.io/name"), "vllm");
	assert_null(tapir_kube_pod__label(p, "prometheus.io/port"));
	assert_int_equal(p->n_annotations, 5);
	assert_string_equal(tapir_kube_pod__annotation(p, "prometheus.io/port"), "8080");
	assert_string_equal(tapir_kube_pod__annotation(p, "kubernetes.io/config.source"), "api");
	assert_null(tapir_kube_pod__annotation(p, "app"));
	assert_int_equal(p->n_containers, 2);
	check_container(&p->containers[0], "model", CID1, true);
	check_container(&p->containers[1], "log-shipper", CID2, true);

	/* A Truss pod on CRI-O, not Ready: one container OOM-killed, one not yet created. */
	p = &pods.pods[1];
	assert_string_equal(p->uid, "d2c9a1f0-8b7e-4c6d-a5f4-3e2d1c0b9a87");
	assert_string_equal(p->name, "truss-whisper-v3-0");
	assert_string_equal(p->namespace_, "org-7fq2kd1");
	assert_string_equal(p->phase, "Running");
	assert_int_equal(p->ready, 0);
	assert_int_equal(p->n_labels, 4);
	assert_string_equal(tapir_kube_pod__label(p, "environment"), "");
	assert_null(tapir_kube_pod__label(p, "rollout_phase"));
	assert_int_equal(p->n_annotations, 2);
	assert_int_equal(p->n_containers, 3);
	check_container(&p->containers[0], "truss-server", CID3, false);
	check_container(&p->containers[1], "model-cache", CID4, true);
	check_container(&p->containers[2], "metrics", "", false);

	/* A static pod, Pending: no labels, no conditions, no container statuses yet. */
	p = &pods.pods[2];
	assert_string_equal(p->uid, "8daa50c3a64c9ff60bb9eab7b44b56fd");
	assert_string_equal(p->name, "truss-config-loader");
	assert_string_equal(p->namespace_, "kube-system");
	assert_string_equal(p->phase, "Pending");
	assert_int_equal(p->ready, -1);
	assert_int_equal(p->n_labels, 0);
	assert_null(tapir_kube_pod__label(p, "app"));
	assert_int_equal(p->n_containers, 0);
	assert_int_equal(p->n_annotations, 3);
	big = big_annotation();
	assert_true(strlen(big) > 10000);
	assert_string_equal(tapir_kube_pod__annotation(p, "truss.baseten.co/config"), big);
	free(big);

	assert_ptr_equal(tapir_kube_pods__by_uid(&pods, "d2c9a1f0-8b7e-4c6d-a5f4-3e2d1c0b9a87"),
			 &pods.pods[1]);
	assert_null(tapir_kube_pods__by_uid(&pods, "d2c9a1f0"));
	assert_null(tapir_kube_pods__by_uid(&pods, NULL));
	assert_null(tapir_kube_pods__by_uid(NULL, "x"));
	assert_null(tapir_kube_pod__label(NULL, "x"));
	assert_null(tapir_kube_pod__annotation(p, NULL));

	tapir_kube_pods__clear(&pods);
	assert_empty(&pods);
	tapir_kube_pods__clear(&pods);
	tapir_kube_pods__clear(NULL);
}

/* Documents a kubelet may well send that are not the everyday shape. */
static void test_edge_shapes(void **state)
{
	static const char *const empty[] = {
		"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":null}",
		"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[]}",
		"  {\"items\":[]}\r\n\t ",
	};
	struct tapir_kube_pods pods;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(empty); i++) {
		assert_int_equal(parse_str(empty[i], &pods), 0);
		assert_empty(&pods);
	}

	/* JSON null reads as absent everywhere; unknown fields and kinds of spec are ignored. */
	assert_int_equal(
		parse_str(
			"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":"
			"\"ns\",\"labels\":null,\"annotations\":null},\"spec\":42,\"status\":"
			"null,\"extra\":[1,2,{\"a\":null}]},{\"metadata\":{\"uid\":\"v\","
			"\"name\":\"m\",\"namespace\":\"ns\",\"labels\":{}},\"status\":{\"phase\":"
			"null,\"conditions\":null,\"containerStatuses\":[{\"name\":\"c\","
			"\"containerID\":null,\"ready\":null},{\"name\":\"d\",\"containerID\":"
			"\"no-scheme-id\",\"ready\":true}]}}]}",
			&pods),
		0);
	assert_int_equal(pods.n, 2);
	assert_string_equal(pods.pods[0].phase, "");
	assert_int_equal(pods.pods[0].ready, -1);
	assert_int_equal(pods.pods[0].n_labels + pods.pods[0].n_annotations, 0);
	assert_int_equal(pods.pods[1].n_containers, 2);
	check_container(&pods.pods[1].containers[0], "c", "", false);
	check_container(&pods.pods[1].containers[1], "d", "no-scheme-id", true);
	assert_string_equal(pods.pods[1].phase, "");
	tapir_kube_pods__clear(&pods);

	/* Ready "Unknown", and a Ready condition among custom readiness gates. */
	assert_int_equal(
		parse_str(
			"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":"
			"\"ns\"},\"status\":{\"conditions\":[{\"type\":\"example.com/gate\","
			"\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"Unknown\"},{}]}}]}",
			&pods),
		0);
	assert_int_equal(pods.pods[0].ready, -1);
	tapir_kube_pods__clear(&pods);

	/* An annotation value holding a NUL is dropped, its neighbours kept. */
	assert_int_equal(parse_str("{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\","
				   "\"namespace\":\"ns\",\"annotations\":{\"a\":\"1\",\"b\":"
				   "\"x\\u0000y\",\"c\":\"3\"}}}]}",
				   &pods),
			 0);
	assert_int_equal(pods.pods[0].n_annotations, 2);
	assert_string_equal(tapir_kube_pod__annotation(&pods.pods[0], "a"), "1");
	assert_null(tapir_kube_pod__annotation(&pods.pods[0], "b"));
	assert_string_equal(tapir_kube_pod__annotation(&pods.pods[0], "c"), "3");
	tapir_kube_pods__clear(&pods);

	/* Lone surrogates become U+FFFD, as Go would have written them. */
	assert_int_equal(parse_str("{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\","
				   "\"namespace\":\"ns\",\"labels\":{\"a\":\"\\ud800\"}}}]}",
				   &pods),
			 0);
	assert_string_equal(pods.pods[0].label_values[0], "\xef\xbf\xbd");
	tapir_kube_pods__clear(&pods);
}

static void test_hostile(void **state)
{
#define POD(meta, status)                                                                   \
	"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":\"ns\"" meta \
	"}" status "}]}"
	static const char *const bad[] = {
		"",
		" ",
		"null",
		"true",
		"0",
		"\"PodList\"",
		"[]",
		"{}",
		"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{}}",
		"{\"kind\":\"Pod\",\"items\":[]}",
		"{\"kind\":1,\"items\":[]}",
		"{\"items\":{}}",
		"{\"items\":\"\"}",
		"{\"items\":1}",
		"{\"items\":[1]}",
		"{\"items\":[null]}",
		"{\"items\":[[]]}",
		"{\"items\":[{}]}",
		"{\"items\":[{\"metadata\":[]}]}",
		"{\"items\":[{\"metadata\":null}]}",
		"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\"}}]}",
		"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":null}}]}",
		"{\"items\":[{\"metadata\":{\"uid\":1,\"name\":\"n\",\"namespace\":\"ns\"}}]}",
		"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":{},\"namespace\":\"ns\"}}]}",
		"{\"items\":[{\"metadata\":{\"uid\":\"u\\u0000v\",\"name\":\"n\",\"namespace\":\"ns\"}}]}",
		POD(",\"labels\":[]", ""),
		POD(",\"labels\":\"a=b\"", ""),
		POD(",\"labels\":{\"a\":1}", ""),
		POD(",\"labels\":{\"a\":null}", ""),
		POD(",\"labels\":{\"a\":\"b\",\"c\":[\"d\"]}", ""),
		POD(",\"labels\":{\"a\":\"x\\u0000\"}", ""),
		POD(",\"annotations\":{\"a\":true}", ""),
		POD(",\"annotations\":7", ""),
		POD("", ",\"status\":[]"),
		POD("", ",\"status\":\"Running\""),
		POD("", ",\"status\":{\"phase\":1}"),
		POD("", ",\"status\":{\"conditions\":{}}"),
		POD("", ",\"status\":{\"conditions\":[\"Ready\"]}"),
		POD("", ",\"status\":{\"conditions\":[null]}"),
		POD("", ",\"status\":{\"conditions\":[{\"type\":1,\"status\":\"True\"}]}"),
		POD("", ",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":true}]}"),
		POD("", ",\"status\":{\"containerStatuses\":{}}"),
		POD("", ",\"status\":{\"containerStatuses\":[1]}"),
		POD("", ",\"status\":{\"containerStatuses\":[{}]}"),
		POD("", ",\"status\":{\"containerStatuses\":[{\"name\":null}]}"),
		POD("", ",\"status\":{\"containerStatuses\":[{\"name\":\"c\",\"containerID\":5}]}"),
		POD("",
		    ",\"status\":{\"containerStatuses\":[{\"name\":\"c\",\"ready\":\"true\"}]}"),
		POD("", ",\"status\":{\"containerStatuses\":[{\"name\":\"c\",\"ready\":1}]}"),
		/* Not JSON, or more than one document. */
		"{\"items\":[]",
		"{\"items\":[]}}",
		"{\"items\":[]} {}",
		"{\"items\":[]} x",
		"{\"items\":[],}",
		"{items:[]}",
		"{\"items\":[]} // comment",
		"{\"items\":[\"\xff\"]}",
		"{\"items\":[],\"x\":\"\xff\"}",
		/* UTF-8 that json-c lets through: overlong, surrogate, above U+10FFFF, cut short. */
		POD(",\"labels\":{\"a\":\"\xc0\xaf\"}", ""),
		POD(",\"labels\":{\"a\":\"\xe0\x80\xaf\"}", ""),
		POD(",\"labels\":{\"\xed\xa0\x80\":\"b\"}", ""),
		POD(",\"annotations\":{\"a\":\"\xf4\x90\x80\x80\"}", ""),
		POD(",\"annotations\":{\"a\":\"x\xe2\x82\"}", ""),
		POD("", ",\"status\":{\"phase\":\"Run\xed\xbf\xbfning\"}"),
		"{\"items\":[],\"x\":01}",
	};
#undef POD
	struct tapir_kube_pods pods;
	int accepted = 0;
	size_t i;

	/*
	 * Not refused: json-c takes single-quoted names and NaN even in strict mode. Harmless,
	 * and no kubelet writes them.
	 */
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&pods, 0xa5, sizeof(pods));
		if (parse_str(bad[i], &pods) != -EINVAL) {
			print_error("accepted: %s\n", bad[i]);
			accepted++;
		}
		assert_empty(&pods);
	}
	assert_int_equal(accepted, 0);
	/* Bytes after a NUL, which json-c takes for the end of its input. */
	assert_int_equal(tapir_kube_pods__parse("{\"items\":[]}\0{", 14, &pods), -EINVAL);
	assert_int_equal(tapir_kube_pods__parse("{\"items\":[]}\0", 13, &pods), -EINVAL);
	assert_int_equal(tapir_kube_pods__parse(NULL, 0, &pods), -EINVAL);
	assert_int_equal(tapir_kube_pods__parse("{}", (size_t)INT_MAX + 1, &pods), -EFBIG);
	assert_empty(&pods);
}

/* Every prefix at a stride, and a few thousand byte flips: an error or a whole result. */
static void test_truncated_and_mutated(void **state)
{
	struct tapir_kube_pods pods;
	uint32_t rnd = 12345;
	size_t len, i, j;
	char *copy;
	int ret;

	for (len = 0; len < fixture_len; len += len < 64 ? 1 : 97) {
		copy = malloc(len + 1); /* exactly len bytes readable: valgrind catches overreads */
		assert_non_null(copy);
		memcpy(copy, fixture, len);
		ret = tapir_kube_pods__parse(copy, len, &pods);
		free(copy);
		if (ret != -EINVAL)
			fail_msg("prefix of %zu bytes: %d", len, ret);
		assert_empty(&pods);
	}

	copy = malloc(fixture_len);
	assert_non_null(copy);
	for (i = 0; i < 3000; i++) {
		memcpy(copy, fixture, fixture_len);
		for (j = 0; j < 1 + i % 4; j++) {
			rnd = rnd * 1103515245 + 12345;
			copy[(rnd >> 8) % fixture_len] = "\"{}[],:\\ \0\xff\x01n0"[rnd % 15];
		}
		ret = tapir_kube_pods__parse(copy, fixture_len, &pods);
		assert_true(ret == 0 || ret == -EINVAL);
		if (ret) {
			assert_empty(&pods);
			continue;
		}
		for (j = 0; j < pods.n; j++) {
			assert_non_null(pods.pods[j].uid);
			assert_non_null(pods.pods[j].phase);
		}
		tapir_kube_pods__clear(&pods);
	}
	free(copy);
}

/* @n levels of @open ... @close inside a field the parser otherwise ignores. */
static char *nested(size_t n, const char *open, const char *close)
{
	static const char head[] = "{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\","
				   "\"namespace\":\"ns\"},\"spec\":";
	size_t lo = strlen(open), lc = strlen(close), len = 0;
	char *s = malloc(sizeof(head) + n * (lo + lc) + 8);
	size_t i;

	assert_non_null(s);
	len += sprintf(s, "%s", head);
	for (i = 0; i < n; i++)
		len += sprintf(s + len, "%s", open);
	len += sprintf(s + len, "1");
	for (i = 0; i < n; i++)
		len += sprintf(s + len, "%s", close);
	sprintf(s + len, "}]}");
	return s;
}

static void test_depth(void **state)
{
	struct tapir_kube_pods pods;
	char *s;

	/* Three levels above spec (list, items, pod): json-c's limit of 64 leaves room for 60. */
	s = nested(60, "[", "]");
	assert_int_equal(parse_str(s, &pods), 0);
	assert_int_equal(pods.n, 1);
	tapir_kube_pods__clear(&pods);
	free(s);

	s = nested(61, "[", "]");
	assert_int_equal(parse_str(s, &pods), -EINVAL);
	assert_empty(&pods);
	free(s);

	s = nested(1000, "[", "]");
	assert_int_equal(parse_str(s, &pods), -EINVAL);
	assert_empty(&pods);
	free(s);

	s = nested(1000, "{\"a\":", "}");
	assert_int_equal(parse_str(s, &pods), -EINVAL);
	assert_empty(&pods);
	free(s);

	/* Unclosed, as a hostile stream would end. */
	s = nested(100000, "[", "");
	assert_int_equal(parse_str(s, &pods), -EINVAL);
	free(s);
}

static void test_huge_strings(void **state)
{
	size_t big = 4u << 20;
	struct tapir_kube_pods pods;
	char *doc, *val;
	int len;

	val = malloc(big + 1);
	doc = malloc(2 * big + 256);
	assert_non_null(val);
	assert_non_null(doc);
	memset(val, 'x', big);
	val[big] = '\0';
	len = sprintf(
		doc,
		"{\"items\":[{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":\"ns\","
		"\"labels\":{\"%s\":\"%s\"}}}]}",
		val, val);
	assert_int_equal(tapir_kube_pods__parse(doc, len, &pods), 0);
	assert_int_equal(pods.pods[0].n_labels, 1);
	assert_int_equal(strlen(pods.pods[0].label_keys[0]), big);
	assert_string_equal(tapir_kube_pods__by_uid(&pods, "u")->label_values[0], val);
	tapir_kube_pods__clear(&pods);
	free(doc);
	free(val);
}

/* ---- the HTTP side, where no server is needed ---- */

static FILE *capture;
static int saved_stderr = -1;

static void capture_begin(void)
{
	capture = tmpfile();
	assert_non_null(capture);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(capture), 2) >= 0);
	tapir_log_set_level(TAPIR_LOG_INFO);
}

/* How many captured lines hold @needle. */
static unsigned int capture_end(const char *needle, char *log, size_t size)
{
	unsigned int n = 0;
	char line[1024];
	size_t len = 0;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	rewind(capture);
	log[0] = '\0';
	while (fgets(line, sizeof(line), capture)) {
		n += strstr(line, needle) != NULL;
		len += snprintf(log + len, len < size ? size - len : 0, "%s", line);
	}
	fclose(capture);
	return n;
}

/* A loopback port that refuses connections: bound, never listening. */
static int refusing_port(int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*fd >= 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &alen), 0);
	return ntohs(a.sin_port);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_new_rejects(void **state)
{
	static const char *const urls[] = { "",
					    "127.0.0.1:10250/pods",
					    "ftp://127.0.0.1/pods",
					    "file:///etc/passwd",
					    "gopher://x",
					    "https:/x" };
	struct tapir_kubelet_opts o = { 0 };
	size_t i;

	errno = 0;
	assert_null(tapir_kubelet__new(NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tapir_kubelet__new(&o));
	assert_int_equal(errno, EINVAL);
	for (i = 0; i < ARRAY_SIZE(urls); i++) {
		o.url = urls[i];
		errno = 0;
		assert_null(tapir_kubelet__new(&o));
		assert_int_equal(errno, EINVAL);
	}
	tapir_kubelet__free(NULL);
}

static void test_fetch_failures(void **state)
{
	char dir[] = "/tmp/test_kubelet.XXXXXX", token[64], url[64], log[4096];
	struct tapir_kubelet_opts o = { .url = url, .token_file = token, .timeout_ms = 2000 };
	struct tapir_kube_pods pods;
	struct tapir_kubelet *k;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(token, sizeof(token), "%s/token", dir);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/pods", refusing_port(&fd));
	k = tapir_kubelet__new(&o);
	assert_non_null(k);
	assert_int_equal(tapir_kubelet__failures(k), 0);

	capture_begin();
	/* The token is read before anything goes out, and again on every fetch. */
	assert_int_equal(tapir_kubelet__fetch(k, &pods), -ENOENT);
	assert_int_equal(tapir_kubelet__fetch(k, &pods), -ENOENT);
	write_file(token, " \n");
	assert_int_equal(tapir_kubelet__fetch(k, &pods), -EINVAL);
	write_file(token, "abc\r\nX-Injected: 1\n");
	assert_int_equal(tapir_kubelet__fetch(k, &pods), -EINVAL);
	write_file(token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0YXBpciJ9.c2lnbmF0dXJl\n");
	assert_int_equal(tapir_kubelet__fetch(k, &pods), -ECONNREFUSED);
	memset(&pods, 0xa5, sizeof(pods));
	assert_int_equal(tapir_kubelet__fetch(k, &pods), -ECONNREFUSED);
	assert_empty(&pods);
	/* Two distinct token errors and one connect error, each logged once. */
	assert_int_equal(capture_end(" warn: kubelet: ", log, sizeof(log)), 3);
	if (!strstr(log, "No such file or directory") || !strstr(log, "Invalid argument") ||
	    !strstr(log, url) || strstr(log, "eyJ"))
		fail_msg("unexpected log:\n%s", log);
	assert_int_equal(tapir_kubelet__failures(k), 6);
	tapir_kubelet__free(k);

	close(fd);
	unlink(token);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture),	    cmocka_unit_test(test_edge_shapes),
		cmocka_unit_test(test_hostile),	    cmocka_unit_test(test_truncated_and_mutated),
		cmocka_unit_test(test_depth),	    cmocka_unit_test(test_huge_strings),
		cmocka_unit_test(test_new_rejects), cmocka_unit_test(test_fetch_failures),
	};

	return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
