// SPDX-License-Identifier: GPL-2.0
/* Unit tests for engine detection from command lines and the normalization of their metrics. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "engine_scrape.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A command line as /proc shows it: arguments separated by NULs ('|' here). */
static enum tapir_engine_kind classify(const char *bar_separated, unsigned int *port)
{
	char buf[512];
	size_t n = strlen(bar_separated), i;

	memcpy(buf, bar_separated, n + 1);
	for (i = 0; i < n; i++)
		if (buf[i] == '|')
			buf[i] = '\0';
	return tapir_engine_classify(buf, n + 1, port);
}

static void test_classify(void **state)
{
	static const struct {
		const char *cmdline;
		enum tapir_engine_kind kind;
		unsigned int port;
	} cases[] = {
		{ "vllm|serve|meta-llama/Llama-3.1-8B|--port|8080", TAPIR_ENGINE_VLLM, 8080 },
		{ "/usr/local/bin/vllm|serve|m", TAPIR_ENGINE_VLLM, 0 },
		{ "/usr/bin/python3|/usr/local/bin/vllm|serve|m|--port=9000", TAPIR_ENGINE_VLLM,
		  9000 },
		{ "python3|-m|vllm.entrypoints.openai.api_server|--model|m|--port|8001",
		  TAPIR_ENGINE_VLLM, 8001 },
		{ "python3.12|-u|-X|utf8|-m|vllm.entrypoints.openai.api_server", TAPIR_ENGINE_VLLM,
		  0 },
		{ "python|-m|vllm.entrypoints.cli.main|serve|m", TAPIR_ENGINE_VLLM, 0 },
		{ "python3|-mvllm.entrypoints.openai.api_server|--port|8002", TAPIR_ENGINE_VLLM,
		  8002 },
		{ "python3|-msglang.launch_server", TAPIR_ENGINE_SGLANG, 0 },
		{ "python3|-mvllm.entrypoints.cli.main|serve", TAPIR_ENGINE_VLLM, 0 },
		{ "python3|-m|sglang.launch_server|--model-path|m|--port|30001",
		  TAPIR_ENGINE_SGLANG, 30001 },
		{ "sglang|serve|--model-path|m", TAPIR_ENGINE_SGLANG, 0 },
		/* Not engines: another module, a child of one, a client, -c, a wrong port. */
		{ "python3|-m|vllm.entrypoints.api_server", TAPIR_ENGINE_NONE, 0 },
		{ "python3|-c|from multiprocessing.spawn import spawn_main; spawn_main()|"
		  "--multiprocessing-fork",
		  TAPIR_ENGINE_NONE, 0 },
		{ "vllm|bench|serve", TAPIR_ENGINE_NONE, 0 },
		{ "python3|-c|import vllm|-m|vllm.entrypoints.openai.api_server", TAPIR_ENGINE_NONE,
		  0 },
		{ "nginx|-g|daemon off;", TAPIR_ENGINE_NONE, 0 },
		{ "python3", TAPIR_ENGINE_NONE, 0 },
		{ "python3|-m", TAPIR_ENGINE_NONE, 0 },
		{ "vllm|serve|m|--port|99999", TAPIR_ENGINE_VLLM, 0 },
		{ "vllm|serve|m|--port|80x", TAPIR_ENGINE_VLLM, 0 },
	};
	unsigned int port;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		port = 12345;
		assert_int_equal(classify(cases[i].cmdline, &port), cases[i].kind);
		assert_int_equal(port, cases[i].port);
	}
	assert_int_equal(tapir_engine_classify("", 0, &port), TAPIR_ENGINE_NONE);
	/* No terminating NUL (a cut /proc read). */
	assert_int_equal(tapir_engine_classify("vllm\0serve", 10, &port), TAPIR_ENGINE_VLLM);
}

static const struct tapir_engine_series *get(const struct tapir_engine_metrics *m,
					     enum tapir_engine_fam fam, const char *engine)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->s[i].fam == fam && !strcmp(m->s[i].engine, engine))
			return &m->s[i];
	return NULL;
}

/* vLLM 0.6 (V0): no engine label, the old names, a hit-rate gauge, spec decoding. */
static const char v0[] =
	"# TYPE vllm:cache_config_info gauge\n"
	"vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",num_gpu_blocks=\"1000\"} "
	"1.0\n"
	"vllm:num_requests_running{model_name=\"m\"} 3.0\n"
	"vllm:num_requests_swapped{model_name=\"m\"} 0.0\n"
	"vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\n"
	"vllm:gpu_prefix_cache_hit_rate{model_name=\"m\"} 0.5\n"
	"vllm:prompt_tokens_total{model_name=\"m\"} 100.0\n"
	"vllm:prompt_tokens_created{model_name=\"m\"} 1.7e9\n"
	"vllm:spec_decode_num_accepted_tokens_total{model_name=\"m\"} 40.0\n"
	"vllm:spec_decode_num_draft_tokens_total{model_name=\"m\"} 60.0\n"
	"vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 5.0\n"
	"vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 2.0\n"
	"vllm:time_per_output_token_seconds_bucket{le=\"0.01\",model_name=\"m\"} 1.0\n"
	"vllm:time_per_output_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 4.0\n"
	"vllm:time_per_output_token_seconds_bucket{le=\"0.5\",model_name=\"m\"} 3.0\n"
	"vllm:time_per_output_token_seconds_count{model_name=\"m\"} 4.0\n"
	"vllm:time_per_output_token_seconds_sum{model_name=\"m\"} 1.25\n"
	"other_family 7\n";

static void test_vllm_v0(void **state)
{
	struct tapir_engine_metrics m;
	const struct tapir_engine_series *e;
	double tokens;

	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, v0, strlen(v0), 0), 0);
	assert_non_null(e = get(&m, TAPIR_EF_RUNNING, ""));
	assert_string_equal(e->model, "m");
	assert_true(e->value == 3);
	assert_true(get(&m, TAPIR_EF_KV_USAGE, "")->value == 0.25);
	assert_true(get(&m, TAPIR_EF_PREFIX_HIT_RATE, "")->value == 0.5);
	assert_null(get(&m, TAPIR_EF_PREFIX_QUERIES, ""));
	assert_true(get(&m, TAPIR_EF_SPEC_ACCEPTED, "")->value == 40);
	assert_true(get(&m, TAPIR_EF_SPEC_DRAFT, "")->value == 60);
	/* Two finish reasons, two series. */
	e = get(&m, TAPIR_EF_REQUEST_SUCCESS, "");
	assert_string_equal(e->reason, "stop");
	assert_true(e[1].fam == TAPIR_EF_REQUEST_SUCCESS && e[1].value == 2);
	/* The old time-per-output-token histogram is the inter-token latency, sorted. */
	e = get(&m, TAPIR_EF_ITL, "");
	assert_int_equal(e->n_buckets, 3);
	assert_true(e->bounds[0] == 0.01 && e->bounds[1] == 0.5 && isinf(e->bounds[2]));
	assert_true(e->cum[0] == 1 && e->cum[1] == 3 && e->cum[2] == 4);
	assert_true(e->value == 4 && e->sum == 1.25);
	/* In flight: 0.25 x 1000 blocks x 16 tokens. */
	assert_true(tapir_engine_metrics__in_flight_tokens(&m, &tokens));
	assert_true(tokens == 4000);
	tapir_engine_metrics__clear(&m);
}

/* vLLM 0.10 (V1): engine label, deprecated names served beside the new ones, two engines. */
static const char v1[] =
	"vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"100\"} 1.0\n"
	"vllm:cache_config_info{block_size=\"16\",engine=\"1\",num_gpu_blocks=\"200\"} 1.0\n"
	"vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.9\n"
	"vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
	"vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.25\n"
	"vllm:gpu_prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 999.0\n"
	"vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 80.0\n"
	"vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 20.0\n"
	"vllm:time_per_output_token_seconds_count{engine=\"0\",model_name=\"m\"} 9.0\n"
	"vllm:inter_token_latency_seconds_bucket{engine=\"0\",le=\"0.1\",model_name=\"m\"} 2.0\n"
	"vllm:inter_token_latency_seconds_count{engine=\"0\",model_name=\"m\"} 2.0\n"
	"vllm:inter_token_latency_seconds_sum{engine=\"0\",model_name=\"m\"} 0.1\n";

static void test_vllm_v1(void **state)
{
	struct tapir_engine_metrics m;
	const struct tapir_engine_series *e;
	double tokens;
	size_t i, n_kv = 0;

	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, v1, strlen(v1), 0), 0);
	for (i = 0; i < m.n; i++)
		n_kv += m.s[i].fam == TAPIR_EF_KV_USAGE;
	assert_int_equal(n_kv, 2); /* the deprecated name is dropped */
	assert_true(get(&m, TAPIR_EF_KV_USAGE, "0")->value == 0.5);
	assert_true(get(&m, TAPIR_EF_PREFIX_QUERIES, "0")->value == 80);
	assert_true(get(&m, TAPIR_EF_PREFIX_HITS, "0")->value == 20);
	e = get(&m, TAPIR_EF_ITL, "0");
	assert_true(e->value == 2); /* not the deprecated histogram's 9 */
	/* +Inf added from the count where the text had none. */
	assert_int_equal(e->n_buckets, 2);
	assert_true(isinf(e->bounds[1]) && e->cum[1] == 2);
	/* 0.5 x 1600 + 0.25 x 3200 */
	assert_true(tapir_engine_metrics__in_flight_tokens(&m, &tokens));
	assert_true(tokens == 1600);
	tapir_engine_metrics__clear(&m);
}

/* SGLang: ranks tapir drops add up (counts) or keep their highest (fractions). */
static const char sgl[] =
	"# TYPE sglang:num_used_tokens gauge\n"
	"sglang:num_used_tokens{model_name=\"m\",tp_rank=\"0\"} 300.0\n"
	"sglang:num_used_tokens{model_name=\"m\",tp_rank=\"1\"} 200.0\n"
	"sglang:token_usage{model_name=\"m\",tp_rank=\"0\"} 0.2\n"
	"sglang:token_usage{model_name=\"m\",tp_rank=\"1\"} 0.4\n"
	"sglang:cached_tokens_total{model_name=\"m\"} 10.0\n"
	"sglang:time_to_first_token_seconds_bucket{le=\"0.1\",model_name=\"m\"} 1\n"
	"sglang:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 1\n"
	"sglang:time_to_first_token_seconds_count{model_name=\"m\"} 1\n"
	"sglang:time_to_first_token_seconds_sum{model_name=\"m\"} 0.05\n"
	"# EOF\n";

static void test_sglang(void **state)
{
	struct tapir_engine_metrics m;
	double tokens;

	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_SGLANG, sgl, strlen(sgl), 0),
			 0);
	assert_true(get(&m, TAPIR_EF_USED_TOKENS, "")->value == 500);
	assert_true(get(&m, TAPIR_EF_KV_USAGE, "")->value == 0.4);
	assert_true(get(&m, TAPIR_EF_PREFIX_HITS, "")->value == 10);
	assert_int_equal(get(&m, TAPIR_EF_TTFT, "")->n_buckets, 2);
	assert_true(tapir_engine_metrics__in_flight_tokens(&m, &tokens));
	assert_true(tokens == 500);
	/* vLLM names mean nothing to an SGLang target. */
	tapir_engine_metrics__clear(&m);
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_SGLANG, v0, strlen(v0), 0),
			 0);
	assert_int_equal(m.n, 0);
	assert_false(tapir_engine_metrics__in_flight_tokens(&m, &tokens));
	tapir_engine_metrics__clear(&m);
}

static void test_hostile(void **state)
{
	struct tapir_engine_metrics m;
	char *text, *p;
	size_t i;

	/* Garbage, and a valid prefix before it: nothing is kept. */
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM,
						     "vllm:num_requests_"
						     "running 1\n}{",
						     24, 0),
			 -EINVAL);
	assert_int_equal(m.n, 0);
	/* A bucket without le. */
	p = "vllm:e2e_request_latency_seconds_bucket{model_name=\"m\"} 1\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0),
			 -EINVAL);
	/* Too many samples, and too many model names. */
	text = malloc(400 * 64);
	for (p = text, i = 0; i < 400; i++)
		p += sprintf(p, "vllm:num_requests_running{model_name=\"m%zu\"} 1\n", i);
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, text, p - text, 100),
			 -E2BIG);
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, text, p - text, 0),
			 -E2BIG);
	assert_int_equal(m.n, 0);
	free(text);
	/* A model name longer than kept: cut, never overflowing. */
	text = malloc(2048);
	p = text + sprintf(text, "vllm:num_requests_running{model_name=\"");
	memset(p, 'a', 1000);
	strcpy(p + 1000, "\"} 1\n");
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, text, strlen(text), 0),
			 0);
	assert_int_equal(strlen(m.s[0].model), TAPIR_ENGINE_MODEL_MAX - 1);
	tapir_engine_metrics__clear(&m);
	free(text);
}

/* Histograms as Prometheus reads them, or not at all (review findings). */
static void test_histogram_edges(void **state)
{
	const struct tapir_engine_series *e;
	struct tapir_engine_metrics m;
	char *text, *p;
	int i;

	(void)state;
#define E2E "vllm:e2e_request_latency_seconds"
	/* No _count: the +Inf bucket is the count. */
	p = E2E "_bucket{le=\"1.0\"} 2\n" E2E "_bucket{le=\"+Inf\"} 5\n" E2E "_sum 3.5\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0), 0);
	e = tapir_engine_metrics__find(&m, TAPIR_EF_E2E);
	assert_non_null(e);
	assert_int_equal(e->n_buckets, 2);
	assert_true(e->bounds[1] == INFINITY);
	assert_true(e->value == 5);
	tapir_engine_metrics__clear(&m);
	/* le as strtod would take it, not Prometheus: hex, a leading space; -Inf bounds nothing. */
	p = E2E "_bucket{le=\"0x10\"} 1\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0),
			 -EINVAL);
	p = E2E "_bucket{le=\" 1\"} 1\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0),
			 -EINVAL);
	p = E2E "_bucket{le=\"-Inf\"} 1\n" E2E "_count 1\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0),
			 -EINVAL);
	/* Cumulative counts that fall (two label sets merged with other bounds): not exported. */
	p = E2E "_bucket{le=\"1\",x=\"a\"} 10\n" E2E "_bucket{le=\"2\",x=\"b\"} 0\n" E2E
		"_bucket{le=\"+Inf\",x=\"a\"} 10\n" E2E "_count 10\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0), 0);
	assert_null(tapir_engine_metrics__find(&m, TAPIR_EF_E2E));
	tapir_engine_metrics__clear(&m);
	/* Values no engine could mean: NaN, infinite or negative; not passed on. */
	p = "vllm:num_requests_running{model_name=\"a\"} NaN\n"
	    "vllm:num_requests_waiting -3\n"
	    "vllm:num_preemptions_total +Inf\n"
	    "vllm:prompt_tokens_total{model_name=\"a\"} 5\n"
	    "vllm:prompt_tokens_total{model_name=\"a\",x=\"2\"} NaN\n";
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, p, strlen(p), 0), 0);
	assert_null(tapir_engine_metrics__find(&m, TAPIR_EF_RUNNING));
	assert_null(tapir_engine_metrics__find(&m, TAPIR_EF_WAITING));
	assert_null(tapir_engine_metrics__find(&m, TAPIR_EF_PREEMPTIONS));
	e = tapir_engine_metrics__find(&m, TAPIR_EF_PROMPT_TOKENS);
	assert_non_null(e);
	assert_true(e->value == 5);
	tapir_engine_metrics__clear(&m);
	/* As many finite bounds as there is room for besides +Inf: +Inf is added, last. */
	text = malloc(TAPIR_ENGINE_BUCKETS_MAX * 80 + 64);
	for (p = text, i = 1; i < TAPIR_ENGINE_BUCKETS_MAX; i++)
		p += sprintf(p, E2E "_bucket{le=\"%d\"} %d\n", i, i);
	p += sprintf(p, E2E "_count 100\n");
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, text, p - text, 0), 0);
	e = tapir_engine_metrics__find(&m, TAPIR_EF_E2E);
	assert_non_null(e);
	assert_int_equal(e->n_buckets, TAPIR_ENGINE_BUCKETS_MAX);
	assert_true(e->bounds[TAPIR_ENGINE_BUCKETS_MAX - 1] == INFINITY);
	assert_true(e->cum[TAPIR_ENGINE_BUCKETS_MAX - 1] == 100);
	tapir_engine_metrics__clear(&m);
	/* One finite bound more: refused whole, never exported without +Inf. */
	p += sprintf(p, E2E "_bucket{le=\"%d\"} 100\n", TAPIR_ENGINE_BUCKETS_MAX);
	assert_int_equal(tapir_engine_metrics__parse(&m, TAPIR_ENGINE_VLLM, text, p - text, 0),
			 -E2BIG);
	free(text);
#undef E2E
}

static void test_families(void **state)
{
	assert_string_equal(tapir_engine_family(TAPIR_ENGINE_VLLM, TAPIR_EF_KV_USAGE)->name,
			    "vllm:kv_cache_usage_perc");
	assert_string_equal(tapir_engine_family(TAPIR_ENGINE_SGLANG, TAPIR_EF_KV_USAGE)->name,
			    "sglang:token_usage");
	assert_null(tapir_engine_family(TAPIR_ENGINE_SGLANG, TAPIR_EF_SPEC_DRAFT));
	assert_null(tapir_engine_family(TAPIR_ENGINE_VLLM, TAPIR_EF_USED_TOKENS));
	assert_null(tapir_engine_family(TAPIR_ENGINE_NONE, TAPIR_EF_RUNNING));
}

/* Which failed fetches look the engine's port up again: a wrong guess answers anything but a
 * refusal; a slow engine, or what it answered, says nothing about its port. */
static void test_error_relocates(void **state)
{
	assert_true(tapir_engine_error__relocates(TAPIR_EE_CONNECT));
	assert_true(tapir_engine_error__relocates(TAPIR_EE_HTTP_STATUS));
	assert_true(tapir_engine_error__relocates(TAPIR_EE_PROTOCOL));
	assert_true(tapir_engine_error__relocates(TAPIR_EE_TOO_LARGE));
	assert_true(tapir_engine_error__relocates(TAPIR_EE_NETNS));
	assert_false(tapir_engine_error__relocates(TAPIR_EE_NONE));
	assert_false(tapir_engine_error__relocates(TAPIR_EE_TIMEOUT));
	assert_false(tapir_engine_error__relocates(TAPIR_EE_PARSE));
	assert_false(tapir_engine_error__relocates(TAPIR_EE_TOO_MANY_SERIES));
	assert_false(tapir_engine_error__relocates(TAPIR_EE_INIT));
	assert_string_equal(tapir_engine_error_name(TAPIR_EE_INIT), "init");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),	cmocka_unit_test(test_vllm_v0),
		cmocka_unit_test(test_vllm_v1),		cmocka_unit_test(test_sglang),
		cmocka_unit_test(test_hostile),		cmocka_unit_test(test_families),
		cmocka_unit_test(test_error_relocates), cmocka_unit_test(test_histogram_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
