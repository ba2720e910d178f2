// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the config loader: values, defaults, and the line and reason of every error. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define NAME "tapir.yaml"

static const double want_latency[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800,
};

static const double want_size[] = {
	64,	 256,	  1024,	    4096,     16384,	 65536,	     262144,
	1048576, 4194304, 16777216, 67108864, 268435456, 1073741824,
};

static const char *const want_probe_paths[] = {
	"/v1/models/model", "/health", "/healthz", "/ready", "/readyz",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct tapir_config *parse_ok(const char *text)
{
	struct tapir_config *cfg = NULL;
	char err[1024] = "";
	int ret;

	ret = tapir_config__parse(NAME, text, strlen(text), &cfg, err, sizeof(err));
	if (ret)
		fail_msg("unexpected error %d: %s\n--- input ---\n%s", ret, err, text);
	assert_non_null(cfg);
	return cfg;
}

/* The input must fail with -EINVAL, "tapir.yaml:LINE: ..." and @reason somewhere after it. */
static void expect_error(const char *text, int line, const char *reason)
{
	struct tapir_config *cfg = (struct tapir_config *)&cfg;
	char err[1024] = "", prefix[64];
	int ret;

	ret = tapir_config__parse(NAME, text, strlen(text), &cfg, err, sizeof(err));
	if (ret != -EINVAL)
		fail_msg("want -EINVAL, got %d (%s)\n--- input ---\n%s", ret, err, text);
	assert_null(cfg);
	snprintf(prefix, sizeof(prefix), NAME ":%d: ", line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err + strlen(prefix), reason))
		fail_msg("want \"%s...%s...\"\n got \"%s\"\n--- input ---\n%s", prefix, reason, err,
			 text);
}

static void assert_default_buckets(const struct tapir_config *cfg)
{
	size_t i;

	assert_int_equal(cfg->n_latency_buckets, ARRAY_SIZE(want_latency));
	for (i = 0; i < ARRAY_SIZE(want_latency); i++)
		assert_true(cfg->latency_buckets[i] == want_latency[i]);
	assert_int_equal(cfg->n_size_buckets, ARRAY_SIZE(want_size));
	for (i = 0; i < ARRAY_SIZE(want_size); i++)
		assert_true(cfg->size_buckets[i] == want_size[i]);
}

static void assert_default_probe_paths(const struct tapir_config *cfg)
{
	size_t i;

	assert_int_equal(cfg->n_probe_paths, ARRAY_SIZE(want_probe_paths));
	for (i = 0; i < ARRAY_SIZE(want_probe_paths); i++)
		assert_string_equal(cfg->probe_paths[i], want_probe_paths[i]);
}

static void assert_default_llm(const struct tapir_config *cfg)
{
	assert_true(cfg->llm_enabled);
	assert_null(cfg->llm_paths);
	assert_int_equal(cfg->n_llm_paths, 0);
	assert_int_equal(cfg->llm_request_head_bytes, 16384);
	assert_int_equal(cfg->llm_response_bytes, 1048576);
	assert_int_equal(cfg->llm_ringbuf_bytes, 1048576);
}

static void assert_defaults_except_rules(const struct tapir_config *cfg)
{
	assert_string_equal(cfg->listen, "0.0.0.0:9464");
	assert_default_buckets(cfg);
	assert_int_equal(cfg->max_connections, 65536);
	assert_int_equal(cfg->ringbuf_bytes, 2097152);
	assert_int_equal(cfg->gc_interval_ms, 1000);
	assert_default_probe_paths(cfg);
	assert_int_equal(cfg->unknown_after_s, 300);
	assert_string_equal(cfg->nvml_library, "libnvidia-ml.so.1");
	assert_default_llm(cfg);
}

static void test_label_names(void **state)
{
	assert_string_equal(tapir_label_names[TAPIR_L_MODEL_ID], "model_id");
	assert_string_equal(tapir_label_names[TAPIR_L_MODEL_NAME], "model_name");
	assert_string_equal(tapir_label_names[TAPIR_L_DEPLOYMENT_ID], "deployment_id");
	assert_string_equal(tapir_label_names[TAPIR_L_ENVIRONMENT], "environment");
	assert_string_equal(tapir_label_names[TAPIR_L_ROLLOUT_PHASE], "rollout_phase");
}

static void test_defaults(void **state)
{
	struct tapir_config *cfg = tapir_config__new_default();

	assert_non_null(cfg);
	assert_null(cfg->path);
	assert_int_equal(cfg->n_rules, 0);
	assert_defaults_except_rules(cfg);
	/* Powers of 4 from 64 B to 1 GiB. */
	assert_true(want_size[0] == 64);
	for (size_t i = 1; i < ARRAY_SIZE(want_size); i++)
		assert_true(want_size[i] == 4 * want_size[i - 1]);
	tapir_config__free(cfg);
}

/* Labels from the environment of the container's processes. */
static void test_env_labels(void **state)
{
	struct tapir_config *cfg;

	cfg = parse_ok("deployments:\n"
		       "  - cgroup: /kubepods/*\n"
		       "    labels: {environment: production}\n"
		       "    env: {model_id: MODEL_ID, model_name: MODEL_NAME}\n");
	assert_string_equal(cfg->rules[0].env[TAPIR_L_MODEL_ID], "MODEL_ID");
	assert_string_equal(cfg->rules[0].env[TAPIR_L_MODEL_NAME], "MODEL_NAME");
	assert_null(cfg->rules[0].env[TAPIR_L_DEPLOYMENT_ID]);
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_ENVIRONMENT], "production");
	tapir_config__free(cfg);

	expect_error("deployments:\n  - cgroup: /a\n    env: {modelid: X}\n", 3,
		     "unknown key \"modelid\"");
	expect_error("deployments:\n  - cgroup: /a\n    env:\n      model_id: \"A=B\"\n", 4,
		     "must name an environment variable");
	expect_error("deployments:\n  - cgroup: /a\n    env: [MODEL_ID]\n", 3, "env");
}

static void test_series_limits(void **state)
{
	struct tapir_config *cfg = parse_ok("limits:\n  series_grace_s: 0\n  max_series: 7\n");

	assert_int_equal(cfg->series_grace_s, 0);
	assert_int_equal(cfg->max_series, 7);
	tapir_config__free(cfg);
	cfg = parse_ok("listen: \"a:1\"\n");
	assert_int_equal(cfg->series_grace_s, 300);
	assert_int_equal(cfg->max_series, 50000);
	assert_int_equal(cfg->aggregated_series, 1024);
	tapir_config__free(cfg);
	cfg = parse_ok("limits:\n  aggregated_series: 0\n");
	assert_int_equal(cfg->aggregated_series, 0); /* every request a record */
	tapir_config__free(cfg);
	expect_error("limits:\n  max_series: 0\n", 2, "max_series must be in 1..10000000");
	expect_error("limits:\n  aggregated_series: 65537\n", 2,
		     "aggregated_series must be in 0..65536, got \"65537\"");
	expect_error("limits:\n  aggregated_series: -1\n", 2, "aggregated_series");
	expect_error("limits:\n  series_grace_s: 90000\n", 2, "series_grace_s must be in");
}

static void test_kubernetes(void **state)
{
	struct tapir_config *cfg;

	cfg = parse_ok("kubernetes:\n"
		       "  kubelet_url: \"https://127.0.0.1:10250/pods\"\n"
		       "  token_file: /var/run/secrets/kubernetes.io/serviceaccount/token\n"
		       "  insecure: true\n"
		       "  labels:\n"
		       "    model_id: \"label:baseten.co/model-id\"\n"
		       "    deployment_id: \"annotation:d\"\n"
		       "    model_name: pod\n");
	assert_string_equal(cfg->kubelet_url, "https://127.0.0.1:10250/pods");
	assert_true(cfg->kube_insecure);
	assert_int_equal(cfg->kube_refresh_s, 30);
	assert_string_equal(cfg->kube_labels[TAPIR_L_MODEL_ID], "label:baseten.co/model-id");
	assert_string_equal(cfg->kube_labels[TAPIR_L_MODEL_NAME], "pod");
	assert_null(cfg->kube_labels[TAPIR_L_ENVIRONMENT]);
	tapir_config__free(cfg);
	cfg = parse_ok("listen: \"a:1\"\n");
	assert_null(cfg->kubelet_url);
	tapir_config__free(cfg);
	expect_error("kubernetes:\n  insecure: true\n", 2, "kubernetes needs kubelet_url");
	expect_error("kubernetes:\n  kubelet_url: ftp://x\n", 2, "http:// or https://");
	expect_error("kubernetes:\n  kubelet_url: http://x\n  insecure: maybe\n", 3,
		     "insecure must be true or false");
	expect_error("kubernetes:\n  kubelet_url: http://x\n  labels:\n    model_id: \"lbl:x\"\n",
		     4, "must be \"label:KEY\"");
	expect_error("kubernetes:\n  kubelet_url: http://x\n  refresh_s: 0\n", 3,
		     "refresh_s must be in 1..3600");
}

static const char example[] = "listen: \"0.0.0.0:9464\"\n"
			      "deployments:\n"
			      "  - cgroup: \"/tapir-e2e/model-a/*\"\n"
			      "    labels:\n"
			      "      model_id: \"m-a\"\n"
			      "      model_name: \"alpha\"\n"
			      "      deployment_id: \"d-a\"\n"
			      "      environment: \"production\"\n"
			      "      rollout_phase: \"stable\"\n"
			      "  - cgroup: /tapir-e2e/model-b/*\n"
			      "    labels:\n"
			      "      model_id: m-b\n"
			      "      rollout_phase: promoting\n"
			      "buckets:\n"
			      "  latency_seconds: [0.005, 0.01, 0.1, 1, 10]\n"
			      "  size_bytes: [64, 256, 1024]\n"
			      "limits:\n"
			      "  max_connections: 1024\n"
			      "  ringbuf_bytes: 8388608\n"
			      "  gc_interval_ms: 250\n"
			      "readiness:\n"
			      "  probe_paths: [\"/v1/models/model\", \"/health\"]\n"
			      "  unknown_after_s: 60\n"
			      "gpu:\n"
			      "  nvml_library: \"/usr/lib64/libnvidia-ml.so.1\"\n";

static void test_example(void **state)
{
	static const double lat[] = { 0.005, 0.01, 0.1, 1, 10 };
	static const double size[] = { 64, 256, 1024 };
	struct tapir_config *cfg = parse_ok(example);
	const struct tapir_rule *r;
	size_t i;

	assert_null(cfg->path);
	assert_string_equal(cfg->listen, "0.0.0.0:9464");
	assert_int_equal(cfg->n_rules, 2);

	r = &cfg->rules[0];
	assert_int_equal(r->line, 3);
	assert_string_equal(r->cgroup, "/tapir-e2e/model-a/*");
	assert_string_equal(r->labels[TAPIR_L_MODEL_ID], "m-a");
	assert_string_equal(r->labels[TAPIR_L_MODEL_NAME], "alpha");
	assert_string_equal(r->labels[TAPIR_L_DEPLOYMENT_ID], "d-a");
	assert_string_equal(r->labels[TAPIR_L_ENVIRONMENT], "production");
	assert_string_equal(r->labels[TAPIR_L_ROLLOUT_PHASE], "stable");

	r = &cfg->rules[1];
	assert_int_equal(r->line, 10);
	assert_string_equal(r->cgroup, "/tapir-e2e/model-b/*");
	assert_string_equal(r->labels[TAPIR_L_MODEL_ID], "m-b");
	assert_string_equal(r->labels[TAPIR_L_MODEL_NAME], "");
	assert_string_equal(r->labels[TAPIR_L_DEPLOYMENT_ID], "");
	assert_string_equal(r->labels[TAPIR_L_ENVIRONMENT], "");
	assert_string_equal(r->labels[TAPIR_L_ROLLOUT_PHASE], "promoting");

	assert_int_equal(cfg->n_latency_buckets, ARRAY_SIZE(lat));
	for (i = 0; i < ARRAY_SIZE(lat); i++)
		assert_true(cfg->latency_buckets[i] == lat[i]);
	assert_int_equal(cfg->n_size_buckets, ARRAY_SIZE(size));
	for (i = 0; i < ARRAY_SIZE(size); i++)
		assert_true(cfg->size_buckets[i] == size[i]);
	assert_int_equal(cfg->max_connections, 1024);
	assert_int_equal(cfg->ringbuf_bytes, 8388608);
	assert_int_equal(cfg->gc_interval_ms, 250);
	assert_int_equal(cfg->n_probe_paths, 2);
	assert_string_equal(cfg->probe_paths[0], "/v1/models/model");
	assert_string_equal(cfg->probe_paths[1], "/health");
	assert_int_equal(cfg->unknown_after_s, 60);
	assert_string_equal(cfg->nvml_library, "/usr/lib64/libnvidia-ml.so.1");
	tapir_config__free(cfg);
}

static void test_empty_configs(void **state)
{
	static const char *const texts[] = {
		"",
		"\n\n",
		"# only a comment\n",
		"---\n",
		"--- ~\n",
		"deployments: []\n",
		"deployments:\n",
		"{}\n",
		"buckets: {}\nlimits: {}\n",
		"readiness:\ngpu:\n",
		"readiness: {}\ngpu: {}\n",
		"llm:\n",
		"llm: {}\n",
		"llm:\n  paths:\n",
		"llm: {paths: []}\n",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(texts); i++) {
		struct tapir_config *cfg = parse_ok(texts[i]);

		assert_int_equal(cfg->n_rules, 0);
		assert_null(cfg->rules);
		assert_defaults_except_rules(cfg);
		tapir_config__free(cfg);
	}
}

static void test_missing_keys_default(void **state)
{
	struct tapir_config *cfg;

	cfg = parse_ok("deployments:\n  - cgroup: /a\n");
	assert_int_equal(cfg->n_rules, 1);
	assert_defaults_except_rules(cfg);
	for (int i = 0; i < TAPIR_L_COUNT; i++) {
		assert_non_null(cfg->rules[0].labels[i]);
		assert_string_equal(cfg->rules[0].labels[i], "");
	}
	assert_false(cfg->rules[0].no_llm);
	tapir_config__free(cfg);

	/* Overriding one bucket list or one limit leaves the others alone. */
	cfg = parse_ok("buckets:\n  size_bytes: [1]\nlimits:\n  gc_interval_ms: 10\n");
	assert_int_equal(cfg->n_size_buckets, 1);
	assert_true(cfg->size_buckets[0] == 1);
	assert_int_equal(cfg->n_latency_buckets, ARRAY_SIZE(want_latency));
	assert_int_equal(cfg->gc_interval_ms, 10);
	assert_int_equal(cfg->max_connections, 65536);
	assert_int_equal(cfg->ringbuf_bytes, 2097152);
	tapir_config__free(cfg);

	/* Null and empty label values count as unset. */
	cfg = parse_ok("deployments:\n"
		       "  - cgroup: /a\n"
		       "    labels:\n"
		       "      model_id:\n"
		       "      model_name: ~\n"
		       "      environment: \"\"\n"
		       "      rollout_phase: \"null\"\n");
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_MODEL_ID], "");
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_MODEL_NAME], "");
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_ENVIRONMENT], "");
	/* Quoted, it is a string. */
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_ROLLOUT_PHASE], "null");
	tapir_config__free(cfg);
}

static void test_bucket_sequence_styles(void **state)
{
	static const double want[] = { 0.5, 1, 2.5, 1e3 };
	static const char *const texts[] = {
		"buckets:\n  latency_seconds: [0.5, 1, 2.5, 1e3]\n",
		"buckets:\n  latency_seconds: [\n    0.5,\n    1,\n    2.5,\n    1e3,\n  ]\n",
		"buckets:\n  latency_seconds:\n    - 0.5\n    - 1\n    - 2.5\n    - 1e3\n",
		"buckets:\n  latency_seconds:\n  - 0.5\n  - 1\n  - +2.5\n  - 1000.0\n",
		"buckets: {latency_seconds: [.5, 1., 25e-1, 1E+3]}\n",
	};
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(texts); i++) {
		struct tapir_config *cfg = parse_ok(texts[i]);

		assert_int_equal(cfg->n_latency_buckets, ARRAY_SIZE(want));
		for (j = 0; j < ARRAY_SIZE(want); j++)
			assert_true(cfg->latency_buckets[j] == want[j]);
		tapir_config__free(cfg);
	}
}

static void test_hostile_label_values(void **state)
{
	static const char text[] = "deployments:\n"
				   "  - cgroup: \"/a b/\\\"q\\\"/*\"\n"
				   "    labels:\n"
				   "      model_id: \"say \\\"hi\\\"\"\n"
				   "      model_name: 'back\\slash \\n not an escape'\n"
				   "      deployment_id: \"line1\\nline2\\ttab\"\n"
				   "      environment: |\n"
				   "        first\n"
				   "        second \"quoted\" \\\n"
				   "      rollout_phase: \"caf\\u00e9 \xe2\x9c\x93 {}=,#\"\n";
	struct tapir_config *cfg = parse_ok(text);
	const struct tapir_rule *r = &cfg->rules[0];

	assert_string_equal(r->cgroup, "/a b/\"q\"/*");
	assert_string_equal(r->labels[TAPIR_L_MODEL_ID], "say \"hi\"");
	assert_string_equal(r->labels[TAPIR_L_MODEL_NAME], "back\\slash \\n not an escape");
	assert_string_equal(r->labels[TAPIR_L_DEPLOYMENT_ID], "line1\nline2\ttab");
	assert_string_equal(r->labels[TAPIR_L_ENVIRONMENT], "first\nsecond \"quoted\" \\\n");
	assert_string_equal(r->labels[TAPIR_L_ROLLOUT_PHASE], "caf\xc3\xa9 \xe2\x9c\x93 {}=,#");
	tapir_config__free(cfg);
}

static void test_long_label_value(void **state)
{
	const size_t n = 10 * 1024;
	struct tapir_config *cfg;
	char *text, *value;
	int len;

	value = malloc(n + 1);
	assert_non_null(value);
	for (size_t i = 0; i < n; i++)
		value[i] = 'a' + i % 26;
	value[n] = '\0';
	len = asprintf(&text,
		       "deployments:\n  - cgroup: /x\n    labels:\n      model_name: \"%s\"\n",
		       value);
	assert_true(len > 0);
	cfg = parse_ok(text);
	assert_int_equal(strlen(cfg->rules[0].labels[TAPIR_L_MODEL_NAME]), n);
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_MODEL_NAME], value);
	tapir_config__free(cfg);

	/*
	 * An unknown 10 KB key (explicit, as YAML caps implicit keys at 1024 characters) is cut
	 * short in the message, which stays on one line.
	 */
	free(text);
	len = asprintf(&text,
		       "deployments:\n  - cgroup: /x\n    labels:\n      ? \"%s\\n\"\n      : v\n",
		       value);
	assert_true(len > 0);
	{
		struct tapir_config *bad = NULL;
		char err[1024];

		assert_int_equal(tapir_config__parse(NAME, text, len, &bad, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, NAME ":4: unknown key \"abcdef"))
			fail_msg("got %s", err);
		assert_non_null(strstr(err, "..."));
		assert_null(strchr(err, '\n'));
		assert_true(strlen(err) < 400);
	}
	free(text);
	free(value);
}

static void test_rule_values_are_scalars_verbatim(void **state)
{
	/* Plain scalars that YAML would call numbers or booleans stay as written. */
	struct tapir_config *cfg = parse_ok("deployments:\n"
					    "  - cgroup: /x\n"
					    "    labels: {model_id: 0123, model_name: true, "
					    "deployment_id: 1.50, environment: prod}\n");

	assert_string_equal(cfg->rules[0].labels[TAPIR_L_MODEL_ID], "0123");
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_MODEL_NAME], "true");
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_DEPLOYMENT_ID], "1.50");
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_ENVIRONMENT], "prod");
	tapir_config__free(cfg);
}

static void test_anchors(void **state)
{
	struct tapir_config *cfg = parse_ok("deployments:\n"
					    "  - cgroup: /a/*\n"
					    "    labels: &l {model_name: shared}\n"
					    "  - cgroup: /b/*\n"
					    "    labels: *l\n");

	assert_int_equal(cfg->n_rules, 2);
	assert_string_equal(cfg->rules[1].cgroup, "/b/*");
	assert_string_equal(cfg->rules[1].labels[TAPIR_L_MODEL_NAME], "shared");
	tapir_config__free(cfg);
}

static void test_listen_valid(void **state)
{
	static const char *const good[] = {
		"0.0.0.0:9464",	  "127.0.0.1:1",	"localhost:65535", "metrics.example.com:80",
		"[::]:9464",	  "[::1]:9464",		"[fe80::1]:8080",  "host-1:9000",
		"10.0.0.1:09464", "[::ffff:1.2.3.4]:1",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		char text[128];
		struct tapir_config *cfg;

		snprintf(text, sizeof(text), "listen: \"%s\"\n", good[i]);
		cfg = parse_ok(text);
		assert_string_equal(cfg->listen, good[i]);
		tapir_config__free(cfg);
	}
}

static void test_listen_invalid(void **state)
{
	static const struct {
		const char *listen;
		const char *reason;
	} cases[] = {
		{ "9464", "must be HOST:PORT" },
		{ "", "must be HOST:PORT" },
		{ "0.0.0.0:", "port must be a number in 1..65535" },
		{ "0.0.0.0:0", "port must be a number in 1..65535" },
		{ "0.0.0.0:65536", "port must be a number in 1..65535" },
		{ "0.0.0.0:-1", "port must be a number in 1..65535" },
		{ "0.0.0.0:http", "port must be a number in 1..65535" },
		{ "0.0.0.0:94 64", "port must be a number" },
		{ ":9464", "missing host" },
		{ "::1:9464", "put an IPv6 address in brackets" },
		{ "[::1:9464", "unterminated '['" },
		{ "[::1]x:9464", "unterminated '['" },
		{ "[nope]:9464", "\"nope\" is not an IPv6 address" },
		{ "256.0.0.1:9464", "\"256.0.0.1\" is not an IPv4 address" },
		{ "1.2.3:9464", "is not an IPv4 address" },
		{ "bad_host:9464", "\"bad_host\" is not a valid host name" },
		{ "-bad:9464", "is not a valid host name" },
		{ "a..b:9464", "is not a valid host name" },
		{ " 0.0.0.0:9464", "is not a valid host name" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[128];

		snprintf(text, sizeof(text), "# c\nlisten: \"%s\"\n", cases[i].listen);
		expect_error(text, 2, cases[i].reason);
	}
	expect_error("listen: [a, b]\n", 1, "listen must be a string, not a list");
	expect_error("listen:\n  host: x\n", 2, "listen must be a string, not a mapping");
	expect_error("listen:\n", 1, "must be HOST:PORT");
}

static void test_error_malformed_yaml(void **state)
{
	expect_error("listen: \"0.0.0.0:9464\n", 2, "invalid YAML");
	expect_error("deployments:\n  - cgroup: /a\n   labels: {}\n", 3, "invalid YAML");
	expect_error("limits:\n\tmax_connections: 5\n", 2, "invalid YAML");
	expect_error("buckets: [1, 2\n", 2, "invalid YAML");
	expect_error("a: b: c\n", 1, "mapping values are not allowed");
	expect_error("deployments: *nothing\n", 1, "undefined alias");
	/* Invalid UTF-8 is a reader error, located from its byte offset. */
	expect_error("listen: \"0.0.0.0:9464\"\n# \xff\xfe\n", 2, "invalid YAML");
	expect_error("listen: \"0.0.0.0:9464\"\n---\nlisten: \"0.0.0.0:1\"\n", 3,
		     "only one YAML document");
	expect_error("---\n{}\n---\nfoo: [\n", 5, "invalid YAML");
}

static void test_error_unknown_keys(void **state)
{
	expect_error("listen: \"0.0.0.0:9464\"\nlisen: x\n", 2,
		     "unknown key \"lisen\" at the top level (expected one of listen, deployments, "
		     "buckets, limits, readiness, gpu, kubernetes, web, engines, llm, outbound)");
	expect_error("deployments:\n"
		     "  - cgroup: /x\n"
		     "    labels:\n"
		     "      model_id: a\n"
		     "      model_name: b\n"
		     "      deployment_id: c\n"
		     "      modle_id: d\n",
		     7,
		     "unknown key \"modle_id\" in labels (expected one of model_id, model_name, "
		     "deployment_id, environment, rollout_phase)");
	expect_error("deployments:\n  - cgroup: /x\n    label: {}\n", 3,
		     "unknown key \"label\" in deployment (expected one of cgroup, labels, env, "
		     "llm, async)");
	expect_error("buckets:\n  latency: [1]\n", 2,
		     "unknown key \"latency\" in buckets (expected one of latency_seconds, "
		     "size_bytes)");
	expect_error(
		"limits:\n  max_conns: 5\n", 2,
		"unknown key \"max_conns\" in limits (expected one of max_connections, "
		"ringbuf_bytes, gc_interval_ms, series_grace_s, max_series, aggregated_series)");
	expect_error("readiness:\n  probe_path: [/a]\n", 2,
		     "unknown key \"probe_path\" in readiness (expected one of probe_paths, "
		     "unknown_after_s)");
	expect_error("gpu:\n  nvml: libnvidia-ml.so\n", 2,
		     "unknown key \"nvml\" in gpu (expected one of nvml_library)");
	expect_error("llm:\n  path: [/x/chat/completions]\n", 2,
		     "unknown key \"path\" in llm (expected one of enabled, paths, "
		     "request_head_bytes, response_bytes, ringbuf_bytes)");
	expect_error("deployments:\n  - cgroup: /x\n    labels:\n      instance: x\n", 4,
		     "unknown key \"instance\" in labels");
	/* Keys are exact: no case folding. */
	expect_error("Listen: \"0.0.0.0:9464\"\n", 1, "unknown key \"Listen\"");
	expect_error("? [a]\n: b\n", 1, "keys at the top level must be strings, not a list");
	expect_error("limits:\n  \"max_connections\\0x\": 5\n", 2,
		     "unknown key \"max_connections\\x00x\" in limits");
}

static void test_error_wrong_types(void **state)
{
	expect_error("- a\n- b\n", 1, "the top level must be a mapping of settings, not a list");
	expect_error("just text\n", 1, "the top level must be a mapping");
	expect_error("deployments:\n  cgroup: /x\n", 2,
		     "deployments must be a list, not a mapping");
	expect_error("deployments: /x\n", 1, "deployments must be a list, not a scalar");
	expect_error("deployments:\n  - /x\n", 2, "each deployment must be a mapping");
	expect_error("deployments:\n  -\n", 2, "each deployment must be a mapping");
	expect_error("deployments:\n  - cgroup: [/x]\n", 2, "cgroup must be a string, not a list");
	expect_error("deployments:\n  - cgroup: /x\n    labels: [a, b]\n", 3,
		     "labels must be a mapping, not a list");
	expect_error("deployments:\n  - cgroup: /x\n    labels: model_id\n", 3,
		     "labels must be a mapping, not a scalar");
	expect_error("deployments:\n  - cgroup: /x\n    labels:\n      model_id: {a: b}\n", 4,
		     "label model_id must be a string, not a mapping");
	expect_error("deployments:\n  - cgroup: /x\n    labels:\n      environment:\n        - a\n",
		     5, "label environment must be a string, not a list");
	expect_error("deployments:\n  - cgroup: /x\n    labels:\n      model_id: \"a\\0b\"\n", 4,
		     "label model_id contains a NUL character");
	expect_error("buckets: [1, 2]\n", 1, "buckets must be a mapping, not a list");
	expect_error("limits: 5\n", 1, "limits must be a mapping, not a scalar");
	expect_error("buckets:\n  size_bytes: 64\n", 2,
		     "size_bytes must be a list of numbers, not a scalar");
	expect_error("buckets:\n  size_bytes:\n    a: 1\n", 3,
		     "size_bytes must be a list of numbers, not a mapping");
	expect_error("buckets:\n  size_bytes: [[1]]\n", 2,
		     "size_bytes[0] must be a number, not a list");
	expect_error("limits:\n  max_connections: [1]\n", 2,
		     "max_connections must be an integer, not a list");
	expect_error("readiness: [/a]\n", 1, "readiness must be a mapping, not a list");
	expect_error("readiness: 300\n", 1, "readiness must be a mapping, not a scalar");
	expect_error("gpu: libnvidia-ml.so.1\n", 1, "gpu must be a mapping, not a scalar");
	expect_error("gpu:\n  - nvml_library: x\n", 2, "gpu must be a mapping, not a list");
}

static void test_error_missing_cgroup(void **state)
{
	expect_error("deployments:\n"
		     "  - cgroup: /ok\n"
		     "  - labels:\n"
		     "      model_id: x\n",
		     3, "deployment is missing the required key \"cgroup\"");
	expect_error("deployments:\n  - {}\n", 2, "missing the required key \"cgroup\"");
	expect_error("deployments:\n  - cgroup: tapir/*\n", 2,
		     "cgroup \"tapir/*\" must be a cgroup v2 path or glob starting with '/'");
	expect_error("deployments:\n  - cgroup: \"\"\n", 2, "starting with '/'");
	expect_error("deployments:\n  - cgroup:\n", 2, "starting with '/'");
}

static void test_error_bad_numbers(void **state)
{
	static const struct {
		const char *value;
		const char *reason;
	} cases[] = {
		{ "[0.1, abc]", "latency_seconds[1]: \"abc\" is not a number" },
		{ "[0.1, \"0.2\"]", "latency_seconds[1]: \"0.2\" is not a number" },
		{ "[0x10]", "latency_seconds[0]: \"0x10\" is not a number" },
		{ "[.inf]", "\".inf\" is not a number" },
		{ "[nan]", "\"nan\" is not a number" },
		{ "[1e999]", "latency_seconds[0]: \"1e999\" is out of range" },
		{ "[1e]", "\"1e\" is not a number" },
		{ "[1,000]", "latency_seconds[1]: bucket bounds must be > 0, got 000" },
		{ "[0]", "latency_seconds[0]: bucket bounds must be > 0, got 0" },
		{ "[-1, 1]", "latency_seconds[0]: bucket bounds must be > 0, got -1" },
		{ "[0.1, 0.1]", "latency_seconds[1]: 0.1 is not greater than the bound before it" },
		{ "[1, 2, 1.5]",
		  "latency_seconds[2]: 1.5 is not greater than the bound before it (2)" },
		{ "[]", "latency_seconds must not be empty" },
		{ "", "latency_seconds must not be empty" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[256];

		snprintf(text, sizeof(text), "buckets:\n  size_bytes: [1]\n  latency_seconds: %s\n",
			 cases[i].value);
		expect_error(text, 3, cases[i].reason);
	}
	/* A block list points at the offending item's own line. */
	expect_error("buckets:\n  size_bytes:\n    - 64\n    - 256\n    - 128\n", 5,
		     "size_bytes[2]: 128 is not greater than the bound before it (256)");
}

static void test_limits(void **state)
{
	static const struct {
		const char *text;
		const char *reason;
	} bad[] = {
		{ "max_connections: 0", "max_connections must be in 1..16777216, got \"0\"" },
		{ "max_connections: 16777217", "max_connections must be in 1..16777216" },
		{ "max_connections: -5", "max_connections: \"-5\" is not a whole number" },
		{ "max_connections: 1.5", "is not a whole number" },
		{ "max_connections: \"5\"", "is not a whole number" },
		{ "max_connections: 99999999999999999999999", "must be in 1..16777216" },
		{ "max_connections:", "is not a whole number" },
		{ "ringbuf_bytes: 5000",
		  "ringbuf_bytes must be a power of two in 4096..1073741824" },
		{ "ringbuf_bytes: 2048",
		  "must be a power of two in 4096..1073741824, got \"2048\"" },
		{ "ringbuf_bytes: 2147483648", "must be a power of two in 4096..1073741824" },
		{ "ringbuf_bytes: 4294967296", "must be a power of two" },
		{ "gc_interval_ms: 9", "gc_interval_ms must be in 10..600000, got \"9\"" },
		{ "gc_interval_ms: 600001", "gc_interval_ms must be in 10..600000" },
	};
	struct tapir_config *cfg;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		char text[256];

		snprintf(text, sizeof(text), "limits:\n  %s\n", bad[i].text);
		expect_error(text, 2, bad[i].reason);
	}

	cfg = parse_ok("limits:\n"
		       "  max_connections: 16777216\n"
		       "  ringbuf_bytes: 1073741824\n"
		       "  gc_interval_ms: 600000\n");
	assert_int_equal(cfg->max_connections, 16777216);
	assert_int_equal(cfg->ringbuf_bytes, 1073741824);
	assert_int_equal(cfg->gc_interval_ms, 600000);
	tapir_config__free(cfg);

	cfg = parse_ok("limits: {max_connections: 1, ringbuf_bytes: 4096, gc_interval_ms: 10}\n");
	assert_int_equal(cfg->max_connections, 1);
	assert_int_equal(cfg->ringbuf_bytes, 4096);
	assert_int_equal(cfg->gc_interval_ms, 10);
	tapir_config__free(cfg);
}

static void test_probe_paths_valid(void **state)
{
	static const struct {
		const char *text;
		const char *want[3];
		size_t n;
	} cases[] = {
		{ "readiness:\n  probe_paths: [\"/v1/models/model\", \"/health\"]\n",
		  { "/v1/models/model", "/health" },
		  2 },
		{ "readiness:\n  probe_paths:\n    - /ready\n    - \"/a/b%20c\"\n    - '/x'\n",
		  { "/ready", "/a/b%20c", "/x" },
		  3 },
		{ "readiness: {probe_paths: [/]}\n", { "/" }, 1 },
		/* Kept as written: duplicates, non-ASCII bytes, percent escapes. */
		{ "readiness:\n  probe_paths: [/h, /h, \"/caf\\u00e9/%41;v=1\"]\n",
		  { "/h", "/h", "/caf\xc3\xa9/%41;v=1" },
		  3 },
		{ "readiness:\n  probe_paths: [\"/0123\", \"/true\", \"//\"]\n",
		  { "/0123", "/true", "//" },
		  3 },
	};
	struct tapir_config *cfg;
	char path[256], text[512];
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		cfg = parse_ok(cases[i].text);
		assert_int_equal(cfg->n_probe_paths, cases[i].n);
		for (j = 0; j < cases[i].n; j++)
			assert_string_equal(cfg->probe_paths[j], cases[i].want[j]);
		/* The other readiness key keeps its default. */
		assert_int_equal(cfg->unknown_after_s, 300);
		tapir_config__free(cfg);
	}

	/* Exactly 200 bytes is allowed. */
	path[0] = '/';
	memset(path + 1, 'p', 199);
	path[200] = '\0';
	snprintf(text, sizeof(text), "readiness:\n  probe_paths: [\"%s\"]\n", path);
	cfg = parse_ok(text);
	assert_int_equal(cfg->n_probe_paths, 1);
	assert_int_equal(strlen(cfg->probe_paths[0]), 200);
	tapir_config__free(cfg);

	/* An alias is read like the list it names. */
	cfg = parse_ok("readiness:\n  probe_paths: &p [/a, /b]\n  unknown_after_s: 5\n"
		       "gpu: {nvml_library: x}\n");
	assert_int_equal(cfg->n_probe_paths, 2);
	assert_string_equal(cfg->probe_paths[1], "/b");
	tapir_config__free(cfg);
}

static void test_probe_paths_invalid(void **state)
{
	static const struct {
		const char *value;
		const char *reason;
	} cases[] = {
		{ "[]", "probe_paths must not be empty" },
		{ "", "probe_paths must not be empty" },
		{ "~", "probe_paths must not be empty" },
		{ "/health", "probe_paths must be a list of strings, not a scalar" },
		{ "{a: /b}", "probe_paths must be a list of strings, not a mapping" },
		{ "[[/a]]", "probe_paths[0] must be a string, not a list" },
		{ "[/a, {b: c}]", "probe_paths[1] must be a string, not a mapping" },
		{ "[\"/a\\0b\"]", "probe_paths[0] contains a NUL character" },
		{ "[health]",
		  "probe_paths[0]: \"health\" must be a request path starting with '/', e.g. "
		  "\"/health\"" },
		{ "[/a, \"\"]", "probe_paths[1]: \"\" must be a request path starting with '/'" },
		{ "[/a, ~]", "probe_paths[1]: \"~\" must be a request path starting with '/'" },
		{ "[\"http://h/health\"]", "\"http://h/health\" must be a request path" },
		{ "[\" /health\"]", "probe_paths[0]: \" /health\" must be a request path" },
		{ "[\"/he alth\"]",
		  "probe_paths[0]: \"/he alth\" contains whitespace or a control character" },
		{ "[\"/health \"]", "contains whitespace or a control character" },
		{ "[\"/a\\tb\"]", "probe_paths[0]: \"/a\\x09b\" contains whitespace" },
		{ "[/ok, \"/a\\nb\"]", "probe_paths[1]: \"/a\\nb\" contains whitespace" },
		{ "[\"/a\\rb\"]", "\"/a\\x0db\" contains whitespace or a control character" },
		{ "[\"/a\\x01\"]", "\"/a\\x01\" contains whitespace or a control character" },
		{ "[\"/a\\x7f\"]", "\"/a\\x7f\" contains whitespace or a control character" },
	};
	char path[256], text[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text),
			 "readiness:\n  unknown_after_s: 5\n  probe_paths: %s\n", cases[i].value);
		expect_error(text, 3, cases[i].reason);
	}

	/* 201 bytes is one too many; the message shows the start of the path, cut short. */
	path[0] = '/';
	memset(path + 1, 'p', 200);
	path[201] = '\0';
	snprintf(text, sizeof(text), "readiness:\n  probe_paths: [/ok, \"%s\"]\n", path);
	expect_error(text, 2, "probe_paths[1]: \"/ppppp");
	expect_error(text, 2, "\"... is 201 bytes long, more than 200");

	/* A block list points at the offending item's own line. */
	expect_error("readiness:\n  probe_paths:\n    - /a\n    - /b\n    - c\n", 5,
		     "probe_paths[2]: \"c\" must be a request path starting with '/'");
	expect_error("readiness:\n  probe_paths:\n", 2, "probe_paths must not be empty");
}

static void test_unknown_after_s(void **state)
{
	static const struct {
		const char *value;
		const char *reason;
	} bad[] = {
		{ "0", "unknown_after_s must be in 1..86400, got \"0\"" },
		{ "86401", "unknown_after_s must be in 1..86400, got \"86401\"" },
		{ "4294967296", "unknown_after_s must be in 1..86400" },
		{ "99999999999999999999999", "unknown_after_s must be in 1..86400" },
		{ "-1", "unknown_after_s: \"-1\" is not a whole number" },
		{ "1.5", "unknown_after_s: \"1.5\" is not a whole number" },
		{ "5m", "unknown_after_s: \"5m\" is not a whole number" },
		{ "\"300\"", "unknown_after_s: \"300\" is not a whole number" },
		{ "", "unknown_after_s: \"\" is not a whole number" },
		{ "[300]", "unknown_after_s must be an integer, not a list" },
		{ "{s: 1}", "unknown_after_s must be an integer, not a mapping" },
	};
	static const struct {
		const char *value;
		uint32_t want;
	} good[] = {
		{ "1", 1 },
		{ "86400", 86400 },
		{ "300", 300 },
		{ "0600", 600 },
	};
	struct tapir_config *cfg;
	char text[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text),
			 "readiness:\n  probe_paths: [/a]\n  unknown_after_s: %s\n", bad[i].value);
		expect_error(text, 3, bad[i].reason);
	}
	for (i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(text, sizeof(text), "readiness:\n  unknown_after_s: %s\n", good[i].value);
		cfg = parse_ok(text);
		assert_int_equal(cfg->unknown_after_s, good[i].want);
		/* The other readiness key keeps its default. */
		assert_default_probe_paths(cfg);
		tapir_config__free(cfg);
	}
}

static void test_nvml_library(void **state)
{
	static const char *const good[] = {
		"libnvidia-ml.so.1",
		"libnvidia-ml.so",
		"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
		"./fake nvml/libnvidia-ml.so",
		"/opt/caf\xc3\xa9/libnvidia-ml.so.1",
	};
	static const struct {
		const char *value;
		const char *reason;
	} bad[] = {
		{ "\"\"", "nvml_library must not be empty (a path or a soname, e.g. "
			  "\"libnvidia-ml.so.1\")" },
		{ "", "nvml_library must not be empty" },
		{ "~", "nvml_library must not be empty" },
		{ "null", "nvml_library must not be empty" },
		{ "[libnvidia-ml.so.1]", "nvml_library must be a string, not a list" },
		{ "{path: x}", "nvml_library must be a string, not a mapping" },
		{ "\"lib\\0nvml\"", "nvml_library contains a NUL character" },
	};
	struct tapir_config *cfg;
	char text[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(text, sizeof(text), "gpu:\n  nvml_library: \"%s\"\n", good[i]);
		cfg = parse_ok(text);
		assert_string_equal(cfg->nvml_library, good[i]);
		assert_int_equal(cfg->unknown_after_s, 300);
		assert_default_probe_paths(cfg);
		tapir_config__free(cfg);
	}
	/* Plain and single-quoted scalars too. */
	cfg = parse_ok("gpu: {nvml_library: libnvidia-ml.so.1}\n");
	assert_string_equal(cfg->nvml_library, "libnvidia-ml.so.1");
	tapir_config__free(cfg);
	cfg = parse_ok("gpu:\n  nvml_library: '~'\n");
	assert_string_equal(cfg->nvml_library, "~");
	tapir_config__free(cfg);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), "# gpu\ngpu:\n  nvml_library: %s\n", bad[i].value);
		expect_error(text, 3, bad[i].reason);
	}
}

static void test_engines(void **state)
{
	struct tapir_config *cfg;

	cfg = parse_ok("");
	assert_true(cfg->engines_enabled);
	assert_int_equal(cfg->engine_interval_s, 5);
	assert_int_equal(cfg->engine_timeout_ms, 3000);
	assert_int_equal(cfg->engine_max_body, 4 << 20);
	assert_int_equal(cfg->engine_max_samples, 10000);
	assert_int_equal(cfg->autoscaling_window_s, 60);
	assert_int_equal(cfg->n_engine_rules, 0);
	tapir_config__free(cfg);

	cfg = parse_ok("engines:\n"
		       "  enabled: false\n"
		       "  scrape_interval_s: 2\n"
		       "  timeout_ms: 500\n"
		       "  max_body_bytes: 65536\n"
		       "  max_series: 100\n"
		       "  autoscaling_window_s: 30\n"
		       "  rules:\n"
		       "    - cgroup: \"/kubepods/*\"\n"
		       "      engine: sglang\n"
		       "      port: 30001\n"
		       "      path: /engine/metrics\n"
		       "    - cgroup: /system.slice/*\n"
		       "      engine: off\n"
		       "    - cgroup: /\n");
	assert_false(cfg->engines_enabled);
	assert_int_equal(cfg->engine_interval_s, 2);
	assert_int_equal(cfg->engine_timeout_ms, 500);
	assert_int_equal(cfg->engine_max_body, 65536);
	assert_int_equal(cfg->engine_max_samples, 100);
	assert_int_equal(cfg->autoscaling_window_s, 30);
	assert_int_equal(cfg->n_engine_rules, 3);
	assert_string_equal(cfg->engine_rules[0].cgroup, "/kubepods/*");
	assert_int_equal(cfg->engine_rules[0].engine, 2);
	assert_int_equal(cfg->engine_rules[0].port, 30001);
	assert_string_equal(cfg->engine_rules[0].path, "/engine/metrics");
	assert_int_equal(cfg->engine_rules[0].line, 9);
	assert_int_equal(cfg->engine_rules[1].engine, TAPIR_ENGINE_RULE_OFF);
	assert_int_equal(cfg->engine_rules[2].engine, TAPIR_ENGINE_RULE_AUTO);
	assert_int_equal(cfg->engine_rules[2].port, 0);
	assert_string_equal(cfg->engine_rules[2].path, "/metrics");
	tapir_config__free(cfg);

	expect_error("engines:\n  enabled: yes\n", 2, "engines.enabled must be true or false");
	expect_error("engines:\n  scrape_interval_s: 0\n", 2,
		     "engines.scrape_interval_s must be in 1..3600, got \"0\"");
	expect_error("engines:\n  timeout_ms: 50\n", 2, "engines.timeout_ms must be in 100..60000");
	expect_error("engines:\n  scrape_interval_s: 1\n  timeout_ms: 2000\n", 3,
		     "engines.timeout_ms (2000) must not exceed scrape_interval_s (1 s)");
	expect_error("engines:\n  max_body_bytes: 10\n", 2, "engines.max_body_bytes must be in");
	expect_error("engines:\n  max_series: 5\n", 2, "engines.max_series must be in 100..");
	expect_error("engines:\n  autoscaling_window_s: -1\n", 2, "is not a whole number");
	expect_error("engines:\n  wibble: 1\n", 2, "unknown key \"wibble\" in engines");
	expect_error("engines:\n  rules: {}\n", 2, "engines.rules must be a list");
	expect_error("engines:\n  rules:\n    - engine: vllm\n", 3,
		     "engines rule is missing the required key \"cgroup\"");
	expect_error("engines:\n  rules:\n    - cgroup: x\n", 3,
		     "cgroup \"x\" must be a cgroup v2 path or glob starting with '/'");
	expect_error("engines:\n  rules:\n    - cgroup: /\n      engine: tgi\n", 4,
		     "engine must be auto, vllm, sglang or off, got \"tgi\"");
	expect_error("engines:\n  rules:\n    - cgroup: /\n      port: 70000\n", 4,
		     "engines.rules.port must be in 1..65535");
	expect_error("engines:\n  rules:\n    - cgroup: /\n      path: metrics\n", 4,
		     "path must start with '/'");
	expect_error("engines:\n  rules:\n    - cgroup: /\n      path: \"/a b\"\n", 4,
		     "without blanks");
}

static void test_llm(void **state)
{
	struct tapir_config *cfg;

	cfg = parse_ok("llm:\n"
		       "  enabled: false\n"
		       "  paths: [/openai/chat/completions]\n"
		       "  request_head_bytes: 65536\n"
		       "  response_bytes: 8388608\n"
		       "  ringbuf_bytes: 16777216\n");
	assert_false(cfg->llm_enabled);
	assert_int_equal(cfg->n_llm_paths, 1);
	assert_string_equal(cfg->llm_paths[0], "/openai/chat/completions");
	assert_int_equal(cfg->llm_request_head_bytes, 65536);
	assert_int_equal(cfg->llm_response_bytes, 8388608);
	assert_int_equal(cfg->llm_ringbuf_bytes, 16777216);
	/* Other sections keep their defaults. */
	assert_int_equal(cfg->ringbuf_bytes, 2097152);
	assert_true(cfg->engines_enabled);
	tapir_config__free(cfg);

	/* One key leaves the others at their defaults. */
	cfg = parse_ok("llm:\n  enabled: true\n");
	assert_default_llm(cfg);
	tapir_config__free(cfg);
	cfg = parse_ok("llm: {request_head_bytes: 1024}\n");
	assert_int_equal(cfg->llm_request_head_bytes, 1024);
	assert_int_equal(cfg->llm_response_bytes, 1048576);
	assert_int_equal(cfg->llm_ringbuf_bytes, 1048576);
	tapir_config__free(cfg);

	/* The bounds themselves are accepted. */
	cfg = parse_ok("llm:\n  request_head_bytes: 1048576\n  response_bytes: 4096\n"
		       "  ringbuf_bytes: 4096\n");
	assert_int_equal(cfg->llm_request_head_bytes, 1048576);
	assert_int_equal(cfg->llm_response_bytes, 4096);
	assert_int_equal(cfg->llm_ringbuf_bytes, 4096);
	tapir_config__free(cfg);
	cfg = parse_ok("llm:\n  response_bytes: 67108864\n  ringbuf_bytes: 1073741824\n");
	assert_int_equal(cfg->llm_response_bytes, 67108864);
	assert_int_equal(cfg->llm_ringbuf_bytes, 1073741824);
	tapir_config__free(cfg);
}

static void test_llm_invalid(void **state)
{
	static const struct {
		const char *key, *value, *reason;
	} cases[] = {
		{ "enabled", "yes", "llm.enabled must be true or false, got \"yes\"" },
		{ "enabled", "1", "llm.enabled must be true or false" },
		{ "enabled", "[true]", "llm.enabled must be a string, not a list" },
		{ "request_head_bytes", "1023",
		  "llm.request_head_bytes must be in 1024..1048576, got \"1023\"" },
		{ "request_head_bytes", "1048577",
		  "llm.request_head_bytes must be in 1024..1048576, got \"1048577\"" },
		{ "request_head_bytes", "0", "llm.request_head_bytes must be in 1024..1048576" },
		{ "request_head_bytes", "-1", "request_head_bytes: \"-1\" is not a whole number" },
		{ "request_head_bytes", "16k",
		  "request_head_bytes: \"16k\" is not a whole number" },
		{ "request_head_bytes", "\"16384\"", "is not a whole number" },
		{ "response_bytes", "4095",
		  "llm.response_bytes must be in 4096..67108864, got \"4095\"" },
		{ "response_bytes", "67108865",
		  "llm.response_bytes must be in 4096..67108864, got \"67108865\"" },
		{ "response_bytes", "99999999999999999999",
		  "llm.response_bytes must be in 4096.." },
		{ "response_bytes", "{a: 1}", "response_bytes must be an integer, not a mapping" },
		{ "ringbuf_bytes", "2048",
		  "llm.ringbuf_bytes must be a power of two in 4096..1073741824, got \"2048\"" },
		{ "ringbuf_bytes", "2147483648",
		  "llm.ringbuf_bytes must be a power of two in 4096..1073741824, got \"2147483648\"" },
		{ "ringbuf_bytes", "12288", "llm.ringbuf_bytes must be a power of two" },
		{ "ringbuf_bytes", "4194305", "llm.ringbuf_bytes must be a power of two" },
		{ "ringbuf_bytes", "0", "llm.ringbuf_bytes must be a power of two" },
		{ "paths", "/x/chat/completions",
		  "llm.paths must be a list of strings, not a scalar" },
		{ "paths", "{a: /x/generate}",
		  "llm.paths must be a list of strings, not a mapping" },
	};
	char text[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "listen: \"0.0.0.0:9464\"\nllm:\n  %s: %s\n",
			 cases[i].key, cases[i].value);
		expect_error(text, 3, cases[i].reason);
	}
	expect_error("llm: [enabled]\n", 1, "llm must be a mapping, not a list");
	expect_error("llm: false\n", 1, "llm must be a mapping, not a scalar");
}

static void test_llm_paths_valid(void **state)
{
	/* Each suffix, 24 bytes at most, under any prefix. */
	static const char *const want[] = {
		"/openai/chat/completions", "/x/completions",
		"/api/embeddings",	    "/api/v2/responses",
		"/anthropic/messages",	    "/tgi/generate",
		"/tgi/generate_stream",	    "/messages",
		"/v1/chat/completions",	    "//generate",
		"/caf\xc3\xa9/completions", "/a%20b/embeddings",
		"/a;b=1/generate",
	};
	struct tapir_config *cfg;
	char text[1024];
	size_t i, off;

	/* As many as the table has room for: 13. */
	off = snprintf(text, sizeof(text), "llm:\n  paths:\n");
	for (i = 0; i < ARRAY_SIZE(want); i++)
		off += snprintf(text + off, sizeof(text) - off, "    - \"%s\"\n", want[i]);
	cfg = parse_ok(text);
	assert_int_equal(cfg->n_llm_paths, ARRAY_SIZE(want));
	for (i = 0; i < ARRAY_SIZE(want); i++)
		assert_string_equal(cfg->llm_paths[i], want[i]);
	assert_true(cfg->llm_enabled);
	assert_int_equal(cfg->llm_request_head_bytes, 16384);
	tapir_config__free(cfg);

	/* Flow style, plain and quoted scalars. */
	cfg = parse_ok("llm: {paths: [/a/generate, '/b/responses', \"/c/embeddings\"]}\n");
	assert_int_equal(cfg->n_llm_paths, 3);
	assert_string_equal(cfg->llm_paths[0], "/a/generate");
	assert_string_equal(cfg->llm_paths[1], "/b/responses");
	assert_string_equal(cfg->llm_paths[2], "/c/embeddings");
	tapir_config__free(cfg);

	/* Null and empty: none beyond the built-in ones. */
	cfg = parse_ok("llm:\n  paths: ~\n");
	assert_null(cfg->llm_paths);
	assert_int_equal(cfg->n_llm_paths, 0);
	tapir_config__free(cfg);
}

static void test_llm_paths_invalid(void **state)
{
	static const struct {
		const char *value;
		const char *reason;
	} cases[] = {
		{ "[[/x/generate]]", "llm.paths[0] must be a string, not a list" },
		{ "[/x/generate, {a: b}]", "llm.paths[1] must be a string, not a mapping" },
		{ "[\"/x\\0/generate\"]", "llm.paths[0] contains a NUL character" },
		{ "[x/generate]",
		  "llm.paths[0]: \"x/generate\" must be a request path starting with '/', e.g. "
		  "\"/openai/chat/completions\"" },
		{ "[\"\"]", "llm.paths[0]: \"\" must be a request path starting with '/'" },
		{ "[~]", "llm.paths[0]: \"~\" must be a request path starting with '/'" },
		{ "[\"http://h/generate\"]", "\"http://h/generate\" must be a request path" },
		{ "[/openai/v1/chat/completions]",
		  "llm.paths[0]: \"/openai/v1/chat/completions\" is 27 bytes long, more than 24" },
		/* 25 bytes: one too many for the kernel's three words. */
		{ "[/abcdefg/chat/completions]", "is 25 bytes long, more than 24" },
		{ "[\"/a b/generate\"]",
		  "llm.paths[0]: \"/a b/generate\" contains whitespace or a control character" },
		{ "[\"/a\\tb/generate\"]", "\"/a\\x09b/generate\" contains whitespace" },
		{ "[\"/x/generate\\n\"]", "\"/x/generate\\n\" contains whitespace" },
		{ "[\"/a\\x7f/generate\"]", "contains whitespace or a control character" },
		{ "[\"/a?b=1/generate\"]",
		  "llm.paths[0]: \"/a?b=1/generate\" contains '?': a path only, without query or "
		  "fragment" },
		{ "[\"/a#b/generate\"]", "\"/a#b/generate\" contains '#'" },
		{ "[/x/generate, /x/chat]",
		  "llm.paths[1]: \"/x/chat\" must end in /chat/completions, /completions, "
		  "/embeddings, /responses, /messages, /generate or /generate_stream" },
		{ "[/]", "\"/\" must end in /chat/completions" },
		{ "[/x/generate/]", "\"/x/generate/\" must end in" },
		{ "[/x/chat_completions]", "must end in" },
		{ "[/x/generatex]", "must end in" },
		{ "[/x/Generate]", "must end in" },
		{ "[/a/generate, /b/generate, /a/generate]",
		  "llm.paths[2]: \"/a/generate\" is given twice (llm.paths[0])" },
	};
	char text[1024];
	size_t i, off;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "llm:\n  enabled: true\n  paths: %s\n",
			 cases[i].value);
		expect_error(text, 3, cases[i].reason);
	}

	/* A block list points at the offending item's own line. */
	expect_error("llm:\n  paths:\n    - /a/generate\n    - /a/messages\n    - /a/generate\n", 5,
		     "llm.paths[2]: \"/a/generate\" is given twice (llm.paths[0])");
	expect_error("llm:\n  paths:\n    - /a/generate\n    - /a/msgs\n", 4,
		     "llm.paths[1]: \"/a/msgs\" must end in");

	/* 14 paths: the 14th is one more than the table holds beyond the built-in 11. */
	off = snprintf(text, sizeof(text), "llm:\n  paths:\n");
	for (i = 0; i < 14; i++)
		off += snprintf(text + off, sizeof(text) - off, "    - /p%zu/generate\n", i);
	expect_error(text, 16, "llm.paths: at most 13 paths beyond the 11 built-in ones, got 14");
	/* One fewer is fine. */
	off = snprintf(text, sizeof(text), "llm:\n  paths:\n");
	for (i = 0; i < 13; i++)
		off += snprintf(text + off, sizeof(text) - off, "    - /p%zu/generate\n", i);
	{
		struct tapir_config *cfg = parse_ok(text);

		assert_int_equal(cfg->n_llm_paths, 13);
		assert_string_equal(cfg->llm_paths[12], "/p12/generate");
		tapir_config__free(cfg);
	}
}

/* deployments[].llm: false turns payload capture off for that rule's cgroups. */
static void test_deployment_llm(void **state)
{
	struct tapir_config *cfg;

	cfg = parse_ok("deployments:\n"
		       "  - cgroup: /batch/*\n"
		       "    llm: false\n"
		       "  - cgroup: /chat/*\n"
		       "    llm: true\n"
		       "    labels: {model_id: m}\n"
		       "  - cgroup: /other/*\n");
	assert_int_equal(cfg->n_rules, 3);
	assert_true(cfg->rules[0].no_llm);
	assert_false(cfg->rules[1].no_llm);
	assert_string_equal(cfg->rules[1].labels[TAPIR_L_MODEL_ID], "m");
	assert_false(cfg->rules[2].no_llm);
	/* The global switch is separate. */
	assert_true(cfg->llm_enabled);
	tapir_config__free(cfg);

	expect_error("deployments:\n  - cgroup: /a\n  - cgroup: /b\n    llm: no\n", 4,
		     "deployments[].llm must be true or false, got \"no\"");
	expect_error("deployments:\n  - cgroup: /a\n    llm: \"off\"\n", 3,
		     "deployments[].llm must be true or false, got \"off\"");
	expect_error("deployments:\n  - cgroup: /a\n    llm: {enabled: false}\n", 3,
		     "deployments[].llm must be a string, not a mapping");
}

/* deployments[].async: every key, the defaults, and what needs request heads. */
static void test_deployment_async(void **state)
{
	struct tapir_config *cfg;
	const struct tapir_async_rule *a;

	cfg = parse_ok("outbound:\n"
		       "  destinations: [{name: hooks, port: 9000}]\n"
		       "deployments:\n"
		       "  - cgroup: /model/*\n"
		       "    async:\n"
		       "      paths: [\"/predict\", \"/v1/*/run\"]\n"
		       "      header: \"X-Async: yes please\"\n"
		       "      submit_paths: [\"/async/*\"]\n"
		       "      webhook: {destination: hooks}\n"
		       "  - cgroup: /gw/*\n"
		       "    async:\n"
		       "      header: X-Job-Id\n"
		       "      enqueue_headers: [X-Enqueued-At]\n"
		       "      webhook: {destination: hooks, method: PUT}\n"
		       "  - cgroup: /hooks-only/*\n"
		       "    async: {webhook: {destination: hooks}}\n"
		       "  - cgroup: /plain/*\n");
	a = cfg->rules[0].async;
	assert_non_null(a);
	assert_int_equal(a->n_paths, 2);
	assert_string_equal(a->paths[1], "/v1/*/run");
	assert_string_equal(a->header, "X-Async");
	assert_string_equal(a->header_value, "yes please");
	assert_int_equal(a->n_enqueue_headers, 2); /* the default pair */
	assert_string_equal(a->enqueue_headers[0], "X-Request-Start");
	assert_string_equal(a->enqueue_headers[1], "X-Queue-Start");
	assert_string_equal(a->submit_paths[0], "/async/*");
	assert_string_equal(a->webhook_destination, "hooks");
	assert_string_equal(a->webhook_method, "POST");
	a = cfg->rules[1].async;
	assert_null(a->header_value);
	assert_int_equal(a->n_enqueue_headers, 1);
	assert_string_equal(a->enqueue_headers[0], "X-Enqueued-At");
	assert_string_equal(a->webhook_method, "PUT");
	assert_true(tapir_rule__wants_heads(&cfg->rules[0]));
	assert_true(tapir_rule__wants_heads(&cfg->rules[1]));
	/* Webhooks are outbound records: no request head is needed for them. */
	assert_false(tapir_rule__wants_heads(&cfg->rules[2]));
	assert_null(cfg->rules[3].async);
	assert_false(tapir_rule__wants_heads(&cfg->rules[3]));
	assert_true(tapir_config__wants_heads(cfg));
	tapir_config__free(cfg);

	cfg = parse_ok("deployments:\n  - cgroup: /a\n    async:\n");
	assert_null(cfg->rules[0].async);
	assert_false(tapir_config__wants_heads(cfg));
	tapir_config__free(cfg);

	expect_error("deployments:\n  - cgroup: /a\n    async: {}\n", 3,
		     "async needs at least one of paths, header, submit_paths and webhook");
	expect_error("deployments:\n  - cgroup: /a\n    async: [/x]\n", 3,
		     "deployments[].async must be a mapping, not a list");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      paths: [predict]\n", 4,
		     "async.paths[0] must be a glob on request paths");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      paths: []\n", 4,
		     "async.paths must name 1..16 entries, got 0");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      paths: \"/x\"\n", 4,
		     "async.paths must be a list of strings, not a scalar");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      header: \"X Async\"\n", 4,
		     "async.header must be a field name");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      header: \"X-Async:\"\n", 4,
		     "async.header must be a field name");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      paths: [/p]\n"
		     "      enqueue_headers: [\"X-Start:\"]\n",
		     5, "async.enqueue_headers[0] must be a field name");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      webhook: {method: POST}\n", 4,
		     "async.webhook is missing the required key \"destination\"");
	expect_error("outbound: {destinations: [{name: hooks}]}\n"
		     "deployments:\n  - cgroup: /a\n    async:\n"
		     "      webhook: {destination: hooks, method: post}\n",
		     5, "async.webhook.method must be an upper-case method, got \"post\"");
	expect_error("deployments:\n  - cgroup: /a\n    async:\n      webhook: {destination: x}\n",
		     4,
		     "async.webhook.destination \"x\" is not the name of an outbound.destinations "
		     "entry");
	expect_error(
		"deployments:\n  - cgroup: /a\n    async:\n      paths: [/p]\n      queue: 1\n", 5,
		"unknown key \"queue\" in async");
}

/* deployments[].llm as a list: on, with paths of its own; the kernel's table holds every list. */
static void test_deployment_llm_paths(void **state)
{
	struct tapir_config *cfg;
	char yaml[4096];
	size_t n = 0;
	int i;

	cfg = parse_ok("llm:\n  paths: [/a/chat/completions]\n"
		       "deployments:\n"
		       "  - cgroup: /x/*\n"
		       "    llm: [/x/v1/chat/completions, /a/chat/completions]\n"
		       "  - cgroup: /y/*\n"
		       "    llm: []\n");
	assert_int_equal(cfg->rules[0].n_llm_paths, 2);
	assert_string_equal(cfg->rules[0].llm_paths[0], "/x/v1/chat/completions");
	assert_false(cfg->rules[0].no_llm);
	assert_int_equal(cfg->rules[1].n_llm_paths, 0);
	assert_false(cfg->rules[1].no_llm);
	tapir_config__free(cfg);

	expect_error("deployments:\n  - cgroup: /a\n    llm: [/predict]\n", 3,
		     "deployments[].llm[0]: \"/predict\" must end in /chat/completions, "
		     "/completions, /embeddings, /responses, /messages, /generate or "
		     "/generate_stream");
	expect_error("deployments:\n  - cgroup: /a\n    llm:\n      - /b/completions\n"
		     "      - /b/completions\n",
		     5,
		     "deployments[].llm[1]: \"/b/completions\" is given twice "
		     "(deployments[].llm[0])");
	/* 13 paths fit beside the built-in ones, counted once however many lists name them:
	 * 7 in llm.paths, 6 more in two rules that share 3, then one too many in a third rule. */
	n += snprintf(yaml + n, sizeof(yaml) - n, "llm:\n  paths:\n");
	for (i = 0; i < 7; i++)
		n += snprintf(yaml + n, sizeof(yaml) - n, "    - /g%d/completions\n", i);
	n += snprintf(yaml + n, sizeof(yaml) - n,
		      "deployments:\n  - cgroup: /a\n    llm: [/g0/completions, /r0/completions, "
		      "/r1/completions, /r2/completions]\n  - cgroup: /b\n    llm: "
		      "[/r0/completions, /r3/completions, /r4/completions, /r5/completions]\n");
	cfg = parse_ok(yaml);
	tapir_config__free(cfg);
	snprintf(yaml + n, sizeof(yaml) - n, "  - cgroup: /c\n    llm: [/r6/completions]\n");
	expect_error(yaml, 16,
		     "llm.paths and the rules' llm lists name more than 13 paths beyond the 11 "
		     "built-in ones");
}

static void test_error_duplicate_keys(void **state)
{
	expect_error("listen: \"0.0.0.0:1\"\n# x\nlisten: \"0.0.0.0:2\"\n", 3,
		     "duplicate key \"listen\" at the top level (first set at line 1)");
	expect_error("deployments:\n"
		     "  - cgroup: /x\n"
		     "    labels:\n"
		     "      model_id: a\n"
		     "      model_id: b\n",
		     5, "duplicate key \"model_id\" in labels (first set at line 4)");
	expect_error("deployments:\n  - cgroup: /x\n    cgroup: /y\n", 3,
		     "duplicate key \"cgroup\" in deployment");
	expect_error("limits: {gc_interval_ms: 10, gc_interval_ms: 20}\n", 1,
		     "duplicate key \"gc_interval_ms\" in limits");
	expect_error("buckets:\n  size_bytes: [1]\n  \"size_bytes\": [2]\n", 3,
		     "duplicate key \"size_bytes\" in buckets (first set at line 2)");
	expect_error("readiness:\n  probe_paths: [/a]\n  unknown_after_s: 1\n  probe_paths: [/b]\n",
		     4, "duplicate key \"probe_paths\" in readiness (first set at line 2)");
	expect_error("gpu: {nvml_library: a, nvml_library: b}\n", 1,
		     "duplicate key \"nvml_library\" in gpu");
	expect_error("gpu: {}\nreadiness: {}\ngpu: {}\n", 3,
		     "duplicate key \"gpu\" at the top level (first set at line 1)");
	expect_error("llm:\n  enabled: true\n  paths: []\n  enabled: false\n", 4,
		     "duplicate key \"enabled\" in llm (first set at line 2)");
	expect_error("deployments:\n  - cgroup: /x\n    llm: false\n    llm: true\n", 4,
		     "duplicate key \"llm\" in deployment (first set at line 3)");
}

static void test_error_truncated_buffer(void **state)
{
	struct tapir_config *cfg = NULL;
	char err[16];

	memset(err, 'x', sizeof(err));
	assert_int_equal(tapir_config__parse(NAME, "bogus: 1\n", 9, &cfg, err, 12), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err, "tapir.yaml:");
	assert_int_equal(err[12], 'x');
	/* No buffer at all is fine too. */
	assert_int_equal(tapir_config__parse(NAME, "bogus: 1\n", 9, &cfg, NULL, 0), -EINVAL);
	assert_null(cfg);
}

static void test_parse_not_nul_terminated(void **state)
{
	static const char text[] = "listen: \"0.0.0.0:1\"\nTRAILING GARBAGE";
	struct tapir_config *cfg = NULL;
	char err[256];

	assert_int_equal(tapir_config__parse(NAME, text, strlen("listen: \"0.0.0.0:1\"\n"), &cfg,
					     err, sizeof(err)),
			 0);
	assert_string_equal(cfg->listen, "0.0.0.0:1");
	tapir_config__free(cfg);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/tapir-test-config-XXXXXX";
	struct tapir_config *cfg = NULL;
	char err[512];
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, example, strlen(example)), (ssize_t)strlen(example));
	close(fd);

	assert_int_equal(tapir_config__load(path, &cfg, err, sizeof(err)), 0);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, path);
	assert_int_equal(cfg->n_rules, 2);
	assert_string_equal(cfg->rules[0].labels[TAPIR_L_MODEL_NAME], "alpha");
	tapir_config__free(cfg);

	/* Errors name the file as given. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "limits:\n  nope: 1\n", 18), 18);
	close(fd);
	cfg = (struct tapir_config *)&cfg;
	assert_int_equal(tapir_config__load(path, &cfg, err, sizeof(err)), -EINVAL);
	assert_null(cfg);
	assert_true(strncmp(err, path, strlen(path)) == 0);
	assert_string_equal(err + strlen(path),
			    ":2: unknown key \"nope\" in limits (expected one "
			    "of max_connections, ringbuf_bytes, "
			    "gc_interval_ms, series_grace_s, max_series, aggregated_series)");
	unlink(path);
}

static void test_load_errors(void **state)
{
	struct tapir_config *cfg = (struct tapir_config *)&cfg;
	char err[512];

	assert_int_equal(tapir_config__load("/nonexistent/tapir.yaml", &cfg, err, sizeof(err)),
			 -ENOENT);
	assert_null(cfg);
	assert_string_equal(err, "/nonexistent/tapir.yaml: No such file or directory");

	cfg = (struct tapir_config *)&cfg;
	assert_int_equal(tapir_config__load("/tmp", &cfg, err, sizeof(err)), -EISDIR);
	assert_null(cfg);
	assert_string_equal(err, "/tmp: Is a directory");

	/* An empty file is a valid config with no rules. */
	assert_int_equal(tapir_config__load("/dev/null", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_rules, 0);
	assert_defaults_except_rules(cfg);
	tapir_config__free(cfg);
}

static void test_shipped_config(void **state)
{
	struct tapir_config *cfg = NULL;
	char err[512] = "";

	/* Run from the repository root, as `make test-unit` does; skip anywhere else. */
	if (access("config/tapir.yaml", R_OK))
		skip();
	if (tapir_config__load("config/tapir.yaml", &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(cfg->listen, "0.0.0.0:9464");
	/* Shipped without rules: the zero-config default watches every cgroup. */
	assert_int_equal(cfg->n_rules, 0);
	/* readiness, gpu and llm are documented there with their defaults, commented out. */
	assert_default_probe_paths(cfg);
	assert_int_equal(cfg->unknown_after_s, 300);
	assert_string_equal(cfg->nvml_library, "libnvidia-ml.so.1");
	assert_default_llm(cfg);
	tapir_config__free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_names),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_env_labels),
		cmocka_unit_test(test_series_limits),
		cmocka_unit_test(test_kubernetes),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_empty_configs),
		cmocka_unit_test(test_missing_keys_default),
		cmocka_unit_test(test_bucket_sequence_styles),
		cmocka_unit_test(test_hostile_label_values),
		cmocka_unit_test(test_long_label_value),
		cmocka_unit_test(test_rule_values_are_scalars_verbatim),
		cmocka_unit_test(test_anchors),
		cmocka_unit_test(test_listen_valid),
		cmocka_unit_test(test_listen_invalid),
		cmocka_unit_test(test_error_malformed_yaml),
		cmocka_unit_test(test_error_unknown_keys),
		cmocka_unit_test(test_error_wrong_types),
		cmocka_unit_test(test_error_missing_cgroup),
		cmocka_unit_test(test_error_bad_numbers),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_probe_paths_valid),
		cmocka_unit_test(test_probe_paths_invalid),
		cmocka_unit_test(test_unknown_after_s),
		cmocka_unit_test(test_nvml_library),
		cmocka_unit_test(test_engines),
		cmocka_unit_test(test_llm),
		cmocka_unit_test(test_llm_invalid),
		cmocka_unit_test(test_llm_paths_valid),
		cmocka_unit_test(test_llm_paths_invalid),
		cmocka_unit_test(test_deployment_llm),
		cmocka_unit_test(test_deployment_llm_paths),
		cmocka_unit_test(test_error_duplicate_keys),
		cmocka_unit_test(test_error_truncated_buffer),
		cmocka_unit_test(test_parse_not_nul_terminated),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_shipped_config),
		cmocka_unit_test(test_deployment_async),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
