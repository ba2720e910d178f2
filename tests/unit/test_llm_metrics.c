// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the LLM token families: what each kind of result adds, and the shared family. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engines.h"
#include "llm_metrics.h"
#include "pod_id.h"
#include "registry.h"

static const char *const labels[] = { "mid", "llama", "dep", "prod", "stable" };
#define DEP  "model_id=\"mid\",model_name=\"llama\",deployment_id=\"dep\""
#define TAIL "environment=\"prod\",rollout_phase=\"stable\""
#define POD  "{" DEP ",_internal_pod_id=\"p1\"," TAIL

static char *render(struct tapir_registry *reg)
{
	struct tapir_buf b;
	char *text;

	tapir_buf__init(&b);
	assert_int_equal(tapir_registry__render(reg, &b), 0);
	text = strdup(b.data);
	tapir_buf__free(&b);
	return text;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing: %s", line);
}

static void test_record(void **state)
{
	struct tapir_registry *reg = tapir_registry__new();
	struct tapir_llm_metrics *m = tapir_llm_metrics__new(reg, NULL);
	struct tapir_llm_result exact = {
		.input_tokens = 100,
		.output_tokens = 40,
		.cached_tokens = 75,
		.flags = TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT | TAPIR_LLM_CACHED | TAPIR_LLM_EXACT,
		.token_events = 3,
		.ttft_ns = 250000000,
		.tokens_per_s = 42,
		.gap_counts = { [3] = 2 },
		.gap_sum_s = 0.04,
	};
	struct tapir_llm_result est = {
		.output_tokens = 7,
		.flags = TAPIR_LLM_OUTPUT | TAPIR_LLM_ESTIMATED,
	};
	struct tapir_llm_result bad = { .flags = TAPIR_LLM_UNPARSED, .unparsed = TAPIR_LLM_LOST };
	char *text;

	assert_non_null(m);
	tapir_llm_metrics__record(m, 0, labels, "p1", &exact);
	tapir_llm_metrics__record(m, 0, labels, "p1", &est);
	tapir_llm_metrics__record(m, 0, labels, "p1", &bad);
	tapir_llm_metrics__set_in_flight(m, labels, "p1", 3);
	tapir_llm_metrics__payload_lost(m, TAPIR_LLM_LOST_DROPPED, 4096);
	text = render(reg);
	assert_has(text, "baseten_llm_input_tokens_total" POD "} 100\n");
	assert_has(text, "baseten_llm_output_tokens_total" POD "} 47\n");
	assert_has(text, "baseten_llm_input_tokens_per_request_count" POD "} 1\n");
	assert_has(text, "baseten_llm_output_tokens_per_request_count" POD "} 2\n");
	assert_has(text, "baseten_llm_tokens_per_second_per_request_bucket" POD ",le=\"40\"} 0\n");
	assert_has(text, "baseten_llm_tokens_per_second_per_request_bucket" POD ",le=\"50\"} 1\n");
	assert_has(text, "baseten_llm_kv_cache_hit_rate_bucket" POD ",le=\"0.7\"} 0\n");
	assert_has(text, "baseten_llm_kv_cache_hit_rate_bucket" POD ",le=\"0.8\"} 1\n");
	assert_has(text, "baseten_llm_num_requests" POD "} 3\n");
	assert_has(text,
		   "tapir_llm_time_to_first_token_seconds_bucket{" DEP "," TAIL ",le=\"0.3\"} 1\n");
	assert_has(text, "tapir_llm_inter_token_latency_seconds_bucket{" DEP "," TAIL
			 ",le=\"0.02\"} 2\n");
	assert_has(text, "tapir_llm_inter_token_latency_seconds_count{" DEP "," TAIL "} 2\n");
	assert_has(text, "tapir_llm_usage_estimated_total{" DEP "," TAIL "} 1\n");
	assert_has(text, "tapir_llm_requests_unparsed_total{reason=\"lost\"} 1\n");
	assert_has(text, "tapir_llm_payload_lost_total{reason=\"dropped\"} 4096\n");
	free(text);

	tapir_llm_metrics__forget(m, labels, "p1");
	text = render(reg);
	assert_null(strstr(text, "baseten_llm_input_tokens_total{"));
	free(text);
	tapir_llm_metrics__free(m);
	tapir_registry__free(reg);
}

/* With the engines' hit-rate family, no second one, and no per-request rates in theirs. */
static void test_shared_hit_rate(void **state)
{
	struct tapir_registry *reg = tapir_registry__new();
	struct tapir_family *hit = tapir_registry__family(
		reg, "baseten_llm_kv_cache_hit_rate", "h", TAPIR_HISTOGRAM, NULL, 0,
		tapir_llm_hit_rate_buckets, TAPIR_LLM_HIT_RATE_BUCKETS);
	struct tapir_llm_metrics *m = tapir_llm_metrics__new(reg, hit);
	struct tapir_llm_result r = {
		.input_tokens = 10,
		.cached_tokens = 5,
		.flags = TAPIR_LLM_INPUT | TAPIR_LLM_CACHED,
	};

	assert_non_null(m);
	tapir_llm_metrics__record(m, 0, labels, "p1", &r);
	assert_int_equal(tapir_family__n_series(hit), 0);
	tapir_llm_metrics__free(m);
	/* Without the family handed over, a second registration is refused. */
	errno = 0;
	assert_null(tapir_llm_metrics__new(reg, NULL));
	assert_int_equal(errno, EEXIST);
	assert_null(tapir_engines__hit_rate_family(NULL));
	tapir_registry__free(reg);
}

static void test_pod_id(void **state)
{
	char a[TAPIR_POD_ID_HEX + 1], b[TAPIR_POD_ID_HEX + 1];

	tapir_pod_id("/kubepods.slice/kubepods-pod0a1b2c3d_1111_2222_3333_444455556666.slice/"
		     "cri-containerd-abc.scope",
		     a);
	tapir_pod_id("/kubepods.slice/kubepods-pod0a1b2c3d_1111_2222_3333_444455556666.slice/"
		     "cri-containerd-def.scope",
		     b);
	assert_int_equal(strlen(a), TAPIR_POD_ID_HEX);
	assert_string_equal(a, b); /* one pod, two containers */
	tapir_pod_id("/system.slice/x.service", b);
	assert_int_equal(strlen(b), TAPIR_POD_ID_HEX);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_shared_hit_rate),
		cmocka_unit_test(test_pod_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
