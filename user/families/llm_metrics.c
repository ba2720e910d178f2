// SPDX-License-Identifier: GPL-2.0
/* LLM token families: counters and per-request distributions from parsed request results. */
#include <errno.h>
#include <stdlib.h>

#include "config.h"
#include "labels.h"
#include "llm_metrics.h"

const double tapir_llm_hit_rate_buckets[TAPIR_LLM_HIT_RATE_BUCKETS] = {
	0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1,
};

/* Prompts from a word to a 256k context, doubling. */
static const double input_buckets[] = { 1,    8,    16,	  32,	 64,	128,   256,    512,   1024,
					2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144 };
/* Outputs from one token (a classifier, an embedding's 0 goes to the first) to 64k. */
static const double output_buckets[] = { 1,    4,    16,   32,	 64,	128,   256,  512,
					 1024, 2048, 4096, 8192, 16384, 32768, 65536 };
/* Per-request decode speeds, from a slow CPU model to speculative decoding on small models. */
static const double tps_buckets[] = { 1,   2,	5,   10,  20,  30,   40,   50,	75,
				      100, 150, 200, 300, 500, 1000, 2000, 5000 };

enum { F_IN_TOTAL, F_OUT_TOTAL, F_IN_REQ, F_OUT_REQ, F_TPS, F_HIT, F_IN_FLIGHT, F_POD_COUNT };
enum { D_TTFT, D_ITL, D_ESTIMATED, D_COUNT };

struct tapir_llm_metrics {
	struct tapir_family *pod[F_POD_COUNT]; /* the reference's labels, _internal_pod_id */
	struct tapir_family *dep[D_COUNT];     /* the deployment's labels */
	struct tapir_family *unparsed, *lost;
	bool own_hit_rate;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const pod_extra[] = { "_internal_pod_id" };
static const char *const reason_label[] = { "reason" };
static const char *const lost_names[TAPIR_LLM_LOST_REASONS] = { "dropped", "cap", "unreadable" };

static int pod_families(struct tapir_llm_metrics *m, struct tapir_registry *r)
{
	const char *l[TAPIR_LABELS_MAX];
	size_t n = tapir_labels(l, tapir_label_names, pod_extra, 1);

	m->pod[F_IN_TOTAL] = tapir_registry__family(r, "baseten_llm_input_tokens_total",
						    "Total number of input tokens processed.",
						    TAPIR_COUNTER, l, n, NULL, 0);
	m->pod[F_OUT_TOTAL] = tapir_registry__family(r, "baseten_llm_output_tokens_total",
						     "Total number of output tokens generated.",
						     TAPIR_COUNTER, l, n, NULL, 0);
	m->pod[F_IN_REQ] =
		tapir_registry__family(r, "baseten_llm_input_tokens_per_request",
				       "Distribution of input tokens per request.", TAPIR_HISTOGRAM,
				       l, n, input_buckets, N(input_buckets));
	m->pod[F_OUT_REQ] =
		tapir_registry__family(r, "baseten_llm_output_tokens_per_request",
				       "Distribution of output tokens per request.",
				       TAPIR_HISTOGRAM, l, n, output_buckets, N(output_buckets));
	m->pod[F_TPS] = tapir_registry__family(r, "baseten_llm_tokens_per_second_per_request",
					       "Distribution of tokens per second per request.",
					       TAPIR_HISTOGRAM, l, n, tps_buckets, N(tps_buckets));
	if (m->own_hit_rate)
		m->pod[F_HIT] = tapir_registry__family(
			r, "baseten_llm_kv_cache_hit_rate",
			"Distribution of KV cache hit rates observed by workers.", TAPIR_HISTOGRAM,
			l, n, tapir_llm_hit_rate_buckets, TAPIR_LLM_HIT_RATE_BUCKETS);
	m->pod[F_IN_FLIGHT] = tapir_registry__family(
		r, "baseten_llm_num_requests",
		"Instantaneous number of concurrent in-flight requests across BIS-LLM workers.",
		TAPIR_GAUGE, l, n, NULL, 0);
	for (n = 0; n < F_POD_COUNT; n++)
		if (!m->pod[n] && (n != F_HIT || m->own_hit_rate))
			return -errno;
	return 0;
}

static int tapir_families(struct tapir_llm_metrics *m, struct tapir_registry *r)
{
	const char *l[TAPIR_LABELS_MAX];
	size_t n = tapir_labels(l, tapir_label_names, NULL, 0);

	m->dep[D_TTFT] = tapir_registry__family(
		r, "tapir_llm_time_to_first_token_seconds",
		"Time from the request to its first content-bearing streamed event.",
		TAPIR_HISTOGRAM, l, n, tapir_llm_latency_buckets, TAPIR_LLM_LATENCY_BUCKETS);
	m->dep[D_ITL] = tapir_registry__family(
		r, "tapir_llm_inter_token_latency_seconds",
		"Gaps between consecutive content-bearing streamed events of a request.",
		TAPIR_HISTOGRAM, l, n, tapir_llm_latency_buckets, TAPIR_LLM_LATENCY_BUCKETS);
	m->dep[D_ESTIMATED] = tapir_registry__family(
		r, "tapir_llm_usage_estimated_total",
		"LLM requests whose output tokens were counted from streamed events, without usage.",
		TAPIR_COUNTER, l, n, NULL, 0);
	m->unparsed =
		tapir_registry__family(r, "tapir_llm_requests_unparsed_total",
				       "LLM requests whose token counts are unknown, by reason.",
				       TAPIR_COUNTER, reason_label, 1, NULL, 0);
	m->lost = tapir_registry__family(
		r, "tapir_llm_payload_lost_total",
		"Bytes of LLM answers the kernel could not hand over, by reason.", TAPIR_COUNTER,
		reason_label, 1, NULL, 0);
	if (!m->dep[D_TTFT] || !m->dep[D_ITL] || !m->dep[D_ESTIMATED] || !m->unparsed || !m->lost)
		return -errno;
	return 0;
}

struct tapir_llm_metrics *tapir_llm_metrics__new(struct tapir_registry *r,
						 struct tapir_family *hit_rate)
{
	struct tapir_llm_metrics *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return NULL;
	m->own_hit_rate = !hit_rate;
	err = pod_families(m, r);
	err = err ?: tapir_families(m, r);
	if (err) {
		/* Families stay in the registry, which owns them. */
		free(m);
		errno = -err;
		return NULL;
	}
	return m;
}

void tapir_llm_metrics__free(struct tapir_llm_metrics *m)
{
	free(m);
}

static void count_unparsed(struct tapir_llm_metrics *m, enum tapir_llm_unparsed u)
{
	const char *v[1] = { tapir_llm_unparsed_name(u) };

	tapir_series__add(tapir_series__get(m->unparsed, v), 1);
}

static void record_tokens(struct tapir_llm_metrics *m, const char *const *v,
			  const struct tapir_llm_result *res)
{
	double rate;

	if (res->flags & TAPIR_LLM_INPUT) {
		tapir_series__add(tapir_series__get(m->pod[F_IN_TOTAL], v), res->input_tokens);
		tapir_series__observe(tapir_series__get(m->pod[F_IN_REQ], v), res->input_tokens);
	}
	if (res->flags & TAPIR_LLM_OUTPUT) {
		tapir_series__add(tapir_series__get(m->pod[F_OUT_TOTAL], v), res->output_tokens);
		tapir_series__observe(tapir_series__get(m->pod[F_OUT_REQ], v), res->output_tokens);
	}
	if (res->tokens_per_s > 0)
		tapir_series__observe(tapir_series__get(m->pod[F_TPS], v), res->tokens_per_s);
	if (m->own_hit_rate && (res->flags & TAPIR_LLM_CACHED) && (res->flags & TAPIR_LLM_INPUT) &&
	    res->input_tokens) {
		rate = (double)res->cached_tokens / res->input_tokens;
		tapir_series__observe(tapir_series__get(m->pod[F_HIT], v), rate > 1 ? 1 : rate);
	}
}

void tapir_llm_metrics__record(struct tapir_llm_metrics *m, uint32_t labels_id,
			       const char *const *labels, const char *pod_id,
			       const struct tapir_llm_result *res)
{
	const char *v[TAPIR_LABELS_MAX], *d[TAPIR_LABELS_MAX];
	const char *extra[] = { pod_id };

	if (!m || !res)
		return;
	if (res->flags & TAPIR_LLM_UNPARSED) {
		count_unparsed(m, res->unparsed);
		return;
	}
	tapir_labels(v, labels, extra, 1);
	tapir_labels(d, labels, NULL, 0);
	record_tokens(m, v, res);
	if (res->flags & TAPIR_LLM_ESTIMATED)
		tapir_series__add(tapir_series__get(m->dep[D_ESTIMATED], d), 1);
	if (res->token_events) {
		tapir_series__observe(tapir_series__get(m->dep[D_TTFT], d), res->ttft_ns / 1e9);
		if (res->token_events > 1)
			tapir_series__merge(tapir_series__get(m->dep[D_ITL], d), res->gap_counts,
					    TAPIR_LLM_LATENCY_BUCKETS + 1, res->gap_sum_s);
	}
}

void tapir_llm_metrics__set_in_flight(struct tapir_llm_metrics *m, const char *const *labels,
				      const char *pod_id, double n)
{
	const char *v[TAPIR_LABELS_MAX];
	const char *extra[] = { pod_id };

	if (!m)
		return;
	tapir_labels(v, labels, extra, 1);
	tapir_series__set(tapir_series__get(m->pod[F_IN_FLIGHT], v), n);
}

void tapir_llm_metrics__payload_lost(struct tapir_llm_metrics *m, enum tapir_llm_lost_reason reason,
				     uint64_t bytes)
{
	const char *v[1];

	if (!m || (unsigned int)reason >= TAPIR_LLM_LOST_REASONS)
		return;
	v[0] = lost_names[reason];
	tapir_series__add(tapir_series__get(m->lost, v), bytes);
}

void tapir_llm_metrics__forget(struct tapir_llm_metrics *m, const char *const *labels,
			       const char *pod_id)
{
	const char *v[TAPIR_LABELS_MAX];
	const char *extra[] = { pod_id };
	size_t i;

	if (!m)
		return;
	tapir_labels(v, labels, extra, 1);
	for (i = 0; i < F_POD_COUNT; i++)
		if (m->pod[i])
			tapir_series__remove(m->pod[i], tapir_series__get(m->pod[i], v));
}

void tapir_llm_metrics__forget_deployment(struct tapir_llm_metrics *m, const char *const *labels)
{
	const char *v[TAPIR_LABELS_MAX];
	size_t i;

	if (!m)
		return;
	tapir_labels(v, labels, NULL, 0);
	for (i = 0; i < D_COUNT; i++)
		tapir_series__remove(m->dep[i], tapir_series__get(m->dep[i], v));
}
