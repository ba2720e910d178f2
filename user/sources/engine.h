/* SPDX-License-Identifier: GPL-2.0 */
/* vLLM and SGLang: which process is one, and its /metrics normalized to one name per concept. */
#ifndef TAPIR_ENGINE_H
#define TAPIR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

enum tapir_engine_kind {
	TAPIR_ENGINE_NONE,
	TAPIR_ENGINE_VLLM,
	TAPIR_ENGINE_SGLANG,
	TAPIR_ENGINE_KINDS,
};

/* "vllm", "sglang" ("" for none). */
const char *tapir_engine_name(enum tapir_engine_kind k);
/* The port an engine serves on when its command line names none. */
unsigned int tapir_engine_default_port(enum tapir_engine_kind k);

/*
 * What the command line @cmdline (/proc/PID/cmdline: @len bytes of NUL-terminated arguments)
 * runs: `vllm serve`, `python -m vllm.entrypoints.openai.api_server`, `python -m
 * sglang.launch_server` or `sglang serve` (directly or through a python interpreter), and the
 * port its --port names (0 if none) in *@port.
 */
enum tapir_engine_kind tapir_engine_classify(const char *cmdline, size_t len, unsigned int *port);

/* The concepts re-exported, each under one native name per engine whatever its version. */
enum tapir_engine_fam {
	TAPIR_EF_RUNNING,
	TAPIR_EF_WAITING,
	TAPIR_EF_PROMPT_TOKENS,
	TAPIR_EF_GENERATION_TOKENS,
	TAPIR_EF_TTFT,
	TAPIR_EF_ITL,
	TAPIR_EF_E2E,
	TAPIR_EF_QUEUE,
	TAPIR_EF_KV_USAGE,
	TAPIR_EF_PREFIX_QUERIES,
	TAPIR_EF_PREFIX_HITS,
	TAPIR_EF_PREFIX_HIT_RATE,
	TAPIR_EF_PREEMPTIONS,
	TAPIR_EF_SPEC_ACCEPTED,
	TAPIR_EF_SPEC_DRAFT,
	TAPIR_EF_REQUEST_SUCCESS,
	TAPIR_EF_USED_TOKENS,
	TAPIR_EF_COUNT,
};

enum tapir_engine_ftype { TAPIR_EFT_GAUGE, TAPIR_EFT_COUNTER, TAPIR_EFT_HISTOGRAM };

struct tapir_engine_family_info {
	const char *name; /* exported name: the engine's newest; NULL: not exported for it */
	const char *help;
	enum tapir_engine_ftype type;
};

/* What family @fam of engine @k is exported as. */
const struct tapir_engine_family_info *tapir_engine_family(enum tapir_engine_kind k,
							   enum tapir_engine_fam fam);

#define TAPIR_ENGINE_MODEL_MAX	  256 /* model_name bytes kept */
#define TAPIR_ENGINE_SHORT_MAX	  32  /* engine and finished_reason bytes kept */
#define TAPIR_ENGINE_BUCKETS_MAX  64  /* buckets of one re-exported histogram */
#define TAPIR_ENGINE_SERIES_MAX	  256 /* normalized series of one target */
#define TAPIR_ENGINE_CAPACITY_MAX 16  /* vLLM engines (data parallel ranks) of one target */

/* One normalized series: labels model_name, engine (and finished_reason), and its figures. */
struct tapir_engine_series {
	enum tapir_engine_fam fam;
	unsigned int prio; /* rank of the source name: the newest name wins */
	char model[TAPIR_ENGINE_MODEL_MAX];
	char engine[TAPIR_ENGINE_SHORT_MAX];
	char reason[TAPIR_ENGINE_SHORT_MAX];
	double value; /* counters and gauges; a histogram's _count */
	double sum;   /* histograms */
	bool filled;
	size_t n_buckets; /* histograms: upper bounds (the last +Inf) and cumulative counts */
	double bounds[TAPIR_ENGINE_BUCKETS_MAX], cum[TAPIR_ENGINE_BUCKETS_MAX];
};

/* A target's /metrics, normalized. */
struct tapir_engine_metrics {
	enum tapir_engine_kind kind;
	struct tapir_engine_series *s;
	size_t n;
	/* vLLM's KV cache capacity in tokens (num_gpu_blocks x block_size of cache_config_info),
	 * by the engine label. */
	struct {
		char engine[TAPIR_ENGINE_SHORT_MAX];
		double tokens;
	} capacity[TAPIR_ENGINE_CAPACITY_MAX];
	size_t n_capacity;
};

/*
 * Parse and normalize the /metrics text of an engine of kind @kind. Returns 0; -EINVAL on a
 * syntax error (the text is refused whole, as Prometheus refuses a scrape); -E2BIG past
 * @max_samples samples or TAPIR_ENGINE_SERIES_MAX normalized series; -ENOMEM. @m is
 * overwritten (clear one that holds a result first) and empty on error.
 */
int tapir_engine_metrics__parse(struct tapir_engine_metrics *m, enum tapir_engine_kind kind,
				const char *text, size_t len, size_t max_samples);
void tapir_engine_metrics__clear(struct tapir_engine_metrics *m);

/* The first series of family @fam, NULL if none (series of one family are contiguous only
 * in creation order, so callers that need all of them walk m->s). */
const struct tapir_engine_series *tapir_engine_metrics__find(const struct tapir_engine_metrics *m,
							     enum tapir_engine_fam fam);

/* KV cache tokens in use: vLLM's usage fraction x capacity per engine, SGLang's used tokens;
 * false when the scrape cannot tell. */
bool tapir_engine_metrics__in_flight_tokens(const struct tapir_engine_metrics *m, double *out);

#endif
