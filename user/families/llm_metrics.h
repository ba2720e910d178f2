/* SPDX-License-Identifier: GPL-2.0 */
/* The LLM token families (baseten_llm_* and tapir_llm_*), fed one result per LLM request. */
#ifndef TAPIR_LLM_METRICS_H
#define TAPIR_LLM_METRICS_H

#include <stdint.h>

#include "llm.h"
#include "registry.h"

/* baseten_llm_kv_cache_hit_rate's buckets, whoever registers it (engines or these families). */
#define TAPIR_LLM_HIT_RATE_BUCKETS 12
extern const double tapir_llm_hit_rate_buckets[TAPIR_LLM_HIT_RATE_BUCKETS];

/* Why payload bytes did not reach user space (tapir_llm_payload_lost_total's reason). */
enum tapir_llm_lost_reason {
	TAPIR_LLM_LOST_DROPPED,	   /* "dropped": the kernel had no room to queue them */
	TAPIR_LLM_LOST_CAP,	   /* "cap": past what the kernel captures of one request */
	TAPIR_LLM_LOST_UNREADABLE, /* "unreadable": sendfile, or memory that faulted */
	TAPIR_LLM_LOST_REASONS,
};

struct tapir_llm_metrics;

/*
 * Register the families in @r. @hit_rate: the engines' baseten_llm_kv_cache_hit_rate
 * (tapir_engines__hit_rate_family) when they registered it; its series stay theirs, one
 * observation per scrape interval, and per-request rates are not added to it. NULL: the family
 * is registered here and fed one rate per request that reports cached tokens. NULL with errno
 * on failure.
 */
struct tapir_llm_metrics *tapir_llm_metrics__new(struct tapir_registry *r,
						 struct tapir_family *hit_rate);
void tapir_llm_metrics__free(struct tapir_llm_metrics *m);

/*
 * Account one finished LLM request of label set @labels_id (TAPIR_L_COUNT values @labels) and
 * pod @pod_id (tapir_pod_id). An unparsed one counts only in tapir_llm_requests_unparsed_total;
 * otherwise what the result knows goes to each family (see README, "LLM token metrics").
 */
void tapir_llm_metrics__record(struct tapir_llm_metrics *m, uint32_t labels_id,
			       const char *const *labels, const char *pod_id,
			       const struct tapir_llm_result *res);

/* baseten_llm_num_requests: the LLM requests in flight for (@labels, @pod_id), the caller's. */
void tapir_llm_metrics__set_in_flight(struct tapir_llm_metrics *m, const char *const *labels,
				      const char *pod_id, double n);

/* @bytes of LLM payload the kernel could not hand over, for @reason. */
void tapir_llm_metrics__payload_lost(struct tapir_llm_metrics *m, enum tapir_llm_lost_reason reason,
				     uint64_t bytes);

/* Drop the series of @labels without a pod (time to first token, inter-token latency, the
 * estimated count): its label set is gone. */
void tapir_llm_metrics__forget_deployment(struct tapir_llm_metrics *m, const char *const *labels);

/* Drop the series of (@labels, @pod_id): its pod is gone. */
void tapir_llm_metrics__forget(struct tapir_llm_metrics *m, const char *const *labels,
			       const char *pod_id);

#endif
