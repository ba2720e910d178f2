// SPDX-License-Identifier: GPL-2.0
/* vLLM and SGLang recognised from a command line, and their /metrics reduced to what tapir keeps. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "grow.h"
#include "promtext.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *tapir_engine_name(enum tapir_engine_kind k)
{
	return k == TAPIR_ENGINE_VLLM ? "vllm" : k == TAPIR_ENGINE_SGLANG ? "sglang" : "";
}

unsigned int tapir_engine_default_port(enum tapir_engine_kind k)
{
	return k == TAPIR_ENGINE_VLLM ? 8000 : k == TAPIR_ENGINE_SGLANG ? 30000 : 0;
}

/* --- command lines ----------------------------------------------------------------------- */

#define MAX_ARGS 256

static const char *base_name(const char *s)
{
	const char *slash = strrchr(s, '/');

	return slash ? slash + 1 : s;
}

/* Python's own options that take a value as the next argument. */
static bool python_opt_with_value(const char *a)
{
	return !strcmp(a, "-W") || !strcmp(a, "-X") || !strcmp(a, "--check-hash-based-pycs");
}

static unsigned int port_arg(char **argv, int argc, int from)
{
	const char *v = NULL;
	unsigned long p;
	char *end;
	int i;

	for (i = from; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			v = argv[i + 1];
		else if (!strncmp(argv[i], "--port=", 7))
			v = argv[i] + 7;
	}
	if (!v || !*v)
		return 0;
	errno = 0;
	p = strtoul(v, &end, 10);
	return errno || *end || p < 1 || p > 65535 ? 0 : (unsigned int)p;
}

/* `vllm serve`, `sglang serve`: a console script, run directly or by the interpreter. */
static enum tapir_engine_kind script(char **argv, int argc, int i)
{
	const char *b = base_name(argv[i]);

	if (i + 1 >= argc || strcmp(argv[i + 1], "serve"))
		return TAPIR_ENGINE_NONE;
	if (!strcmp(b, "vllm"))
		return TAPIR_ENGINE_VLLM;
	if (!strcmp(b, "sglang"))
		return TAPIR_ENGINE_SGLANG;
	return TAPIR_ENGINE_NONE;
}

/* Module @m run by `python -m`, its arguments from argv[@next]. */
static enum tapir_engine_kind module(const char *m, char **argv, int argc, int next)
{
	if (!strcmp(m, "vllm.entrypoints.openai.api_server"))
		return TAPIR_ENGINE_VLLM;
	if (!strcmp(m, "vllm.entrypoints.cli.main") && next < argc && !strcmp(argv[next], "serve"))
		return TAPIR_ENGINE_VLLM;
	if (!strcmp(m, "sglang.launch_server"))
		return TAPIR_ENGINE_SGLANG;
	return TAPIR_ENGINE_NONE;
}

static enum tapir_engine_kind classify_argv(char **argv, int argc, unsigned int *port)
{
	enum tapir_engine_kind k = TAPIR_ENGINE_NONE;
	int i = 0;

	if (!strncmp(base_name(argv[0]), "python", 6)) {
		for (i = 1; i < argc && argv[i][0] == '-'; i++) {
			if (!strncmp(argv[i], "-m", 2) && argv[i][2]) {
				/* -mMODULE, as Python takes it too: arguments follow */
				k = module(argv[i] + 2, argv, argc, i + 1);
				goto found;
			}
			if (!strcmp(argv[i], "-m")) {
				if (i + 1 < argc)
					k = module(argv[i + 1], argv, argc, i + 2);
				i++;
				goto found;
			}
			if (argv[i][1] == 'c' || !strcmp(argv[i], "-"))
				return TAPIR_ENGINE_NONE; /* -c code, or a script from stdin */
			if (python_opt_with_value(argv[i]))
				i++;
		}
		if (i >= argc)
			return TAPIR_ENGINE_NONE;
	}
	k = script(argv, argc, i);
found:
	if (k != TAPIR_ENGINE_NONE)
		*port = port_arg(argv, argc, i + 1);
	return k;
}

enum tapir_engine_kind tapir_engine_classify(const char *cmdline, size_t len, unsigned int *port)
{
	char *copy, *argv[MAX_ARGS];
	enum tapir_engine_kind k;
	size_t off = 0;
	int argc = 0;

	*port = 0;
	if (!len)
		return TAPIR_ENGINE_NONE;
	copy = malloc(len + 1);
	if (!copy)
		return TAPIR_ENGINE_NONE;
	memcpy(copy, cmdline, len);
	copy[len] = '\0'; /* the last argument's NUL, if /proc cut it */
	while (off < len && argc < MAX_ARGS) {
		argv[argc++] = copy + off;
		off += strlen(copy + off) + 1;
	}
	k = classify_argv(argv, argc, port);
	free(copy);
	return k;
}

/* --- families and the names they had ------------------------------------------------------ */

static const struct tapir_engine_family_info families[TAPIR_ENGINE_KINDS][TAPIR_EF_COUNT] = {
	[TAPIR_ENGINE_VLLM] = {
		[TAPIR_EF_RUNNING] = { "vllm:num_requests_running",
			"Requests in model execution batches.", TAPIR_EFT_GAUGE },
		[TAPIR_EF_WAITING] = { "vllm:num_requests_waiting",
			"Requests waiting to be processed.", TAPIR_EFT_GAUGE },
		[TAPIR_EF_PROMPT_TOKENS] = { "vllm:prompt_tokens_total",
			"Prefill tokens processed.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_GENERATION_TOKENS] = { "vllm:generation_tokens_total",
			"Generation tokens processed.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_TTFT] = { "vllm:time_to_first_token_seconds",
			"Time to first token in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_ITL] = { "vllm:inter_token_latency_seconds",
			"Inter-token latency in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_E2E] = { "vllm:e2e_request_latency_seconds",
			"End-to-end request latency in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_QUEUE] = { "vllm:request_queue_time_seconds",
			"Time requests spent waiting in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_KV_USAGE] = { "vllm:kv_cache_usage_perc",
			"KV cache usage, 1 means 100 percent.", TAPIR_EFT_GAUGE },
		[TAPIR_EF_PREFIX_QUERIES] = { "vllm:prefix_cache_queries_total",
			"Prefix cache queries, in queried tokens.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_PREFIX_HITS] = { "vllm:prefix_cache_hits_total",
			"Prefix cache hits, in cached tokens.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_PREFIX_HIT_RATE] = { "vllm:gpu_prefix_cache_hit_rate",
			"GPU prefix cache block hit rate since start (vLLM V0 only).",
			TAPIR_EFT_GAUGE },
		[TAPIR_EF_PREEMPTIONS] = { "vllm:num_preemptions_total",
			"Preemptions by the engine.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_SPEC_ACCEPTED] = { "vllm:spec_decode_num_accepted_tokens_total",
			"Accepted tokens of speculative decoding.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_SPEC_DRAFT] = { "vllm:spec_decode_num_draft_tokens_total",
			"Draft tokens of speculative decoding.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_REQUEST_SUCCESS] = { "vllm:request_success_total",
			"Requests finished, by finish reason.", TAPIR_EFT_COUNTER },
	},
	[TAPIR_ENGINE_SGLANG] = {
		[TAPIR_EF_RUNNING] = { "sglang:num_running_reqs", "Running requests.",
			TAPIR_EFT_GAUGE },
		[TAPIR_EF_WAITING] = { "sglang:num_queue_reqs",
			"Requests in the waiting queue.", TAPIR_EFT_GAUGE },
		[TAPIR_EF_PROMPT_TOKENS] = { "sglang:prompt_tokens_total",
			"Prefill tokens processed.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_GENERATION_TOKENS] = { "sglang:generation_tokens_total",
			"Generation tokens processed.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_TTFT] = { "sglang:time_to_first_token_seconds",
			"Time to first token in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_ITL] = { "sglang:inter_token_latency_seconds",
			"Inter-token latency in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_E2E] = { "sglang:e2e_request_latency_seconds",
			"End-to-end request latency in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_QUEUE] = { "sglang:queue_time_seconds",
			"Queueing time in seconds.", TAPIR_EFT_HISTOGRAM },
		[TAPIR_EF_KV_USAGE] = { "sglang:token_usage", "KV cache token usage, 0 to 1.",
			TAPIR_EFT_GAUGE },
		[TAPIR_EF_PREFIX_HITS] = { "sglang:cached_tokens_total",
			"Prompt tokens served from the prefix cache.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_PREFIX_HIT_RATE] = { "sglang:cache_hit_rate",
			"Prefix cache hit rate.", TAPIR_EFT_GAUGE },
		[TAPIR_EF_PREEMPTIONS] = { "sglang:num_retracted_requests_total",
			"Retracted (preempted) requests.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_REQUEST_SUCCESS] = { "sglang:num_requests_total",
			"Requests processed.", TAPIR_EFT_COUNTER },
		[TAPIR_EF_USED_TOKENS] = { "sglang:num_used_tokens",
			"KV cache tokens in use.", TAPIR_EFT_GAUGE },
	},
};

const struct tapir_engine_family_info *tapir_engine_family(enum tapir_engine_kind k,
							   enum tapir_engine_fam fam)
{
	if (k <= TAPIR_ENGINE_NONE || k >= TAPIR_ENGINE_KINDS || fam >= TAPIR_EF_COUNT)
		return NULL;
	return families[k][fam].name ? &families[k][fam] : NULL;
}

/*
 * Every name a family has had, as samples carry it (counters with _total, histograms without
 * their suffixes). A higher prio is a newer name: when one text has both (vLLM 0.10 serves the
 * deprecated name beside the new one), the newer one is kept.
 */
struct source {
	enum tapir_engine_kind kind;
	enum tapir_engine_fam fam;
	const char *name;
	unsigned int prio;
};

static const struct source sources[] = {
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_RUNNING, "vllm:num_requests_running", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_WAITING, "vllm:num_requests_waiting", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PROMPT_TOKENS, "vllm:prompt_tokens_total", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_GENERATION_TOKENS, "vllm:generation_tokens_total", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_TTFT, "vllm:time_to_first_token_seconds", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_ITL, "vllm:time_per_output_token_seconds", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_ITL, "vllm:inter_token_latency_seconds", 2 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_E2E, "vllm:e2e_request_latency_seconds", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_QUEUE, "vllm:request_queue_time_seconds", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_KV_USAGE, "vllm:gpu_cache_usage_perc", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_KV_USAGE, "vllm:kv_cache_usage_perc", 2 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PREFIX_QUERIES, "vllm:gpu_prefix_cache_queries_total", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PREFIX_QUERIES, "vllm:prefix_cache_queries_total", 2 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PREFIX_HITS, "vllm:gpu_prefix_cache_hits_total", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PREFIX_HITS, "vllm:prefix_cache_hits_total", 2 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PREFIX_HIT_RATE, "vllm:gpu_prefix_cache_hit_rate", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_PREEMPTIONS, "vllm:num_preemptions_total", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_SPEC_ACCEPTED, "vllm:spec_decode_num_accepted_tokens_total",
	  1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_SPEC_DRAFT, "vllm:spec_decode_num_draft_tokens_total", 1 },
	{ TAPIR_ENGINE_VLLM, TAPIR_EF_REQUEST_SUCCESS, "vllm:request_success_total", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_RUNNING, "sglang:num_running_reqs", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_WAITING, "sglang:num_queue_reqs", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_PROMPT_TOKENS, "sglang:prompt_tokens_total", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_GENERATION_TOKENS, "sglang:generation_tokens_total", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_TTFT, "sglang:time_to_first_token_seconds", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_ITL, "sglang:time_per_output_token_seconds", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_ITL, "sglang:inter_token_latency_seconds", 2 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_E2E, "sglang:e2e_request_latency_seconds", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_QUEUE, "sglang:queue_time_seconds", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_KV_USAGE, "sglang:token_usage", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_PREFIX_HITS, "sglang:cached_tokens_total", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_PREFIX_HIT_RATE, "sglang:cache_hit_rate", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_PREEMPTIONS, "sglang:num_retracted_requests_total", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_REQUEST_SUCCESS, "sglang:num_requests_total", 1 },
	{ TAPIR_ENGINE_SGLANG, TAPIR_EF_USED_TOKENS, "sglang:num_used_tokens", 1 },
};

#define VLLM_CACHE_INFO "vllm:cache_config_info"

/* --- normalization ------------------------------------------------------------------------ */

enum part { P_VALUE, P_BUCKET, P_SUM, P_COUNT };

struct norm {
	struct tapir_engine_metrics *m;
	size_t cap;
	int err;
};

static bool is_name(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !memcmp(s, lit, n);
}

static bool ends_with(const char *s, size_t n, const char *suffix, size_t *base)
{
	size_t k = strlen(suffix);

	if (n < k || memcmp(s + n - k, suffix, k))
		return false;
	*base = n - k;
	return true;
}

/* Which source a sample name is, and which part of it; NULL for everything else. */
static const struct source *match(enum tapir_engine_kind kind, const char *name, size_t n,
				  enum part *part)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	const struct source *src;
	size_t i, k, base;

	for (i = 0; i < ARRAY_SIZE(sources); i++) {
		src = &sources[i];
		if (src->kind != kind)
			continue;
		if (families[kind][src->fam].type != TAPIR_EFT_HISTOGRAM) {
			if (is_name(name, n, src->name)) {
				*part = P_VALUE;
				return src;
			}
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(suffixes); k++) {
			if (ends_with(name, n, suffixes[k], &base) &&
			    is_name(name, base, src->name)) {
				*part = (enum part)(P_BUCKET + k);
				return src;
			}
		}
	}
	return NULL;
}

/* Copy a label value, cut on a UTF-8 character boundary to fit @size with its NUL. */
static void copy_value(char *dst, size_t size, const struct tapir_prom_label *l)
{
	size_t n = l->value_len < size ? l->value_len : size - 1;

	while (n < l->value_len && n && ((unsigned char)l->value[n] & 0xc0) == 0x80)
		n--;
	memcpy(dst, l->value, n);
	dst[n] = '\0';
}

static const struct tapir_prom_label *label(const struct tapir_prom_sample *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n_labels; i++)
		if (is_name(s->labels[i].name, s->labels[i].name_len, name))
			return &s->labels[i];
	return NULL;
}

static void label_copy(char *dst, size_t size, const struct tapir_prom_sample *s, const char *name)
{
	const struct tapir_prom_label *l = label(s, name);

	if (l)
		copy_value(dst, size, l);
	else
		dst[0] = '\0';
}

/* The series of @src for the labels of @s that tapir keeps: found, or added. */
static struct tapir_engine_series *series_for(struct norm *nm, const struct source *src,
					      const struct tapir_prom_sample *s)
{
	struct tapir_engine_metrics *m = nm->m;
	struct tapir_engine_series key, *e;
	size_t i;

	label_copy(key.model, sizeof(key.model), s, "model_name");
	label_copy(key.engine, sizeof(key.engine), s, "engine");
	if (src->fam == TAPIR_EF_REQUEST_SUCCESS)
		label_copy(key.reason, sizeof(key.reason), s, "finished_reason");
	else
		key.reason[0] = '\0';
	for (i = 0; i < m->n; i++) {
		e = &m->s[i];
		if (e->fam == src->fam && e->prio == src->prio && !strcmp(e->model, key.model) &&
		    !strcmp(e->engine, key.engine) && !strcmp(e->reason, key.reason))
			return e;
	}
	if (m->n == TAPIR_ENGINE_SERIES_MAX) {
		nm->err = -E2BIG;
		return NULL;
	}
	if (tapir_grow_zeroed((void **)&m->s, &nm->cap, m->n, sizeof(*m->s))) {
		nm->err = -ENOMEM;
		return NULL;
	}
	e = &m->s[m->n++];
	memset(e, 0, offsetof(struct tapir_engine_series, bounds));
	e->fam = src->fam;
	e->prio = src->prio;
	memcpy(e->model, key.model, sizeof(key.model));
	memcpy(e->engine, key.engine, sizeof(key.engine));
	memcpy(e->reason, key.reason, sizeof(key.reason));
	return e;
}

/*
 * Labels tapir does not keep (SGLang's tp_rank, say) can make several samples one series:
 * counts add up; a fraction (KV usage, hit rate) keeps its highest.
 */
static void merge_value(struct tapir_engine_series *e, double v)
{
	bool fraction = e->fam == TAPIR_EF_KV_USAGE || e->fam == TAPIR_EF_PREFIX_HIT_RATE;

	/* Every family here counts or measures something that is never negative: a NaN, an
	 * infinity or a negative value is a broken engine's, and is not passed on. */
	if (!isfinite(v) || v < 0)
		return;
	if (!e->filled)
		e->value = v;
	else if (fraction)
		e->value = v > e->value ? v : e->value;
	else
		e->value += v;
	e->filled = true;
}

static int add_bucket(struct norm *nm, struct tapir_engine_series *e,
		      const struct tapir_prom_sample *s)
{
	const struct tapir_prom_label *le = label(s, "le");
	const char *why;
	double bound;
	size_t i, finite = 0;

	/* As Prometheus reads le: no hex, no spaces; -Inf and NaN bound nothing. */
	if (!le || tapir_prom_float(le->value, le->value_len, &bound, &why) || isnan(bound) ||
	    bound == -INFINITY)
		return -EINVAL;
	for (i = 0; i < e->n_buckets; i++) {
		if (e->bounds[i] == bound) {
			e->cum[i] += s->value;
			return 0;
		}
		finite += e->bounds[i] != INFINITY;
	}
	/* The last slot is kept for +Inf, which finish_histogram() adds when the text has none. */
	if (e->n_buckets == TAPIR_ENGINE_BUCKETS_MAX ||
	    (bound != INFINITY && finite == TAPIR_ENGINE_BUCKETS_MAX - 1))
		return -E2BIG;
	e->bounds[e->n_buckets] = bound;
	e->cum[e->n_buckets++] = s->value;
	return 0;
}

/* vLLM's cache_config_info: a gauge of 1 whose labels are the cache settings. */
static void cache_info(struct tapir_engine_metrics *m, const struct tapir_prom_sample *s)
{
	char blocks[32], size[32], *e1, *e2;
	double tokens;

	if (m->n_capacity == TAPIR_ENGINE_CAPACITY_MAX)
		return;
	label_copy(blocks, sizeof(blocks), s, "num_gpu_blocks");
	label_copy(size, sizeof(size), s, "block_size");
	tokens = strtod(blocks, &e1) * strtod(size, &e2);
	if (!blocks[0] || !size[0] || *e1 || *e2 || !isfinite(tokens) || tokens <= 0)
		return;
	label_copy(m->capacity[m->n_capacity].engine, TAPIR_ENGINE_SHORT_MAX, s, "engine");
	m->capacity[m->n_capacity++].tokens = tokens;
}

static int on_sample(void *ctx, const struct tapir_prom_sample *s)
{
	struct norm *nm = ctx;
	const struct source *src;
	struct tapir_engine_series *e;
	enum part part;
	int err;

	if (nm->m->kind == TAPIR_ENGINE_VLLM && is_name(s->name, s->name_len, VLLM_CACHE_INFO)) {
		cache_info(nm->m, s);
		return 0;
	}
	src = match(nm->m->kind, s->name, s->name_len, &part);
	if (!src)
		return 0;
	e = series_for(nm, src, s);
	if (!e)
		return nm->err;
	switch (part) {
	case P_VALUE: merge_value(e, s->value); break;
	case P_BUCKET:
		err = add_bucket(nm, e, s);
		if (err)
			return err;
		break;
	case P_SUM: e->sum += s->value; break;
	case P_COUNT:
		e->value += s->value;
		e->filled = true;
		break;
	}
	return 0;
}

static int by_bound(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Buckets in order with +Inf last (the count, where the text had no +Inf bucket; the +Inf
 * bucket, where it had no _count). A histogram whose cumulative counts fall from one bound to
 * the next (buckets of label sets merged with different bounds, or a broken engine) is not
 * one: @e is emptied and 0 returned, so that it is not exported.
 */
static bool finish_histogram(struct tapir_engine_series *e)
{
	double pairs[2 * TAPIR_ENGINE_BUCKETS_MAX];
	size_t i;

	for (i = 0; i < e->n_buckets; i++) {
		pairs[2 * i] = e->bounds[i];
		pairs[2 * i + 1] = e->cum[i];
	}
	qsort(pairs, e->n_buckets, 2 * sizeof(double), by_bound);
	for (i = 0; i < e->n_buckets; i++) {
		e->bounds[i] = pairs[2 * i];
		e->cum[i] = pairs[2 * i + 1];
	}
	if (!e->n_buckets || e->bounds[e->n_buckets - 1] != INFINITY) {
		e->bounds[e->n_buckets] = INFINITY; /* add_bucket() kept the slot */
		e->cum[e->n_buckets++] = e->value;
	} else if (!e->filled) {
		e->value = e->cum[e->n_buckets - 1];
		e->filled = true;
	}
	for (i = 1; i < e->n_buckets; i++)
		if (!(e->cum[i] >= e->cum[i - 1])) {
			e->n_buckets = 0;
			return false;
		}
	return true;
}

/* Keep each family's newest name only, and put histograms in order. */
static void finish(struct tapir_engine_metrics *m)
{
	unsigned int best[TAPIR_EF_COUNT] = { 0 };
	size_t i, j;

	for (i = 0; i < m->n; i++)
		if (m->s[i].prio > best[m->s[i].fam])
			best[m->s[i].fam] = m->s[i].prio;
	for (i = j = 0; i < m->n; i++) {
		if (m->s[i].prio != best[m->s[i].fam])
			continue;
		if (families[m->kind][m->s[i].fam].type == TAPIR_EFT_HISTOGRAM) {
			if (!finish_histogram(&m->s[i]))
				continue; /* not a histogram: not exported */
		} else if (!m->s[i].filled) {
			continue; /* no value it could be given (merge_value()) */
		}
		if (i != j)
			m->s[j] = m->s[i];
		j++;
	}
	m->n = j;
}

int tapir_engine_metrics__parse(struct tapir_engine_metrics *m, enum tapir_engine_kind kind,
				const char *text, size_t len, size_t max_samples)
{
	static const struct tapir_prom_ops ops = { .sample = on_sample };
	struct norm nm = { .m = m };
	int err;

	memset(m, 0, sizeof(*m));
	m->kind = kind;
	if (kind <= TAPIR_ENGINE_NONE || kind >= TAPIR_ENGINE_KINDS)
		return -EINVAL;
	err = tapir_prom_parse(text, len, max_samples, &ops, &nm, NULL);
	if (err) {
		tapir_engine_metrics__clear(m);
		m->kind = kind;
		return err;
	}
	finish(m);
	return 0;
}

void tapir_engine_metrics__clear(struct tapir_engine_metrics *m)
{
	free(m->s);
	memset(m, 0, sizeof(*m));
}

const struct tapir_engine_series *tapir_engine_metrics__find(const struct tapir_engine_metrics *m,
							     enum tapir_engine_fam fam)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->s[i].fam == fam)
			return &m->s[i];
	return NULL;
}

static const double *capacity_of(const struct tapir_engine_metrics *m, const char *engine)
{
	size_t i;

	for (i = 0; i < m->n_capacity; i++)
		if (!strcmp(m->capacity[i].engine, engine))
			return &m->capacity[i].tokens;
	/* One engine whose info gauge lacks the label its usage has (or the reverse). */
	return m->n_capacity == 1 ? &m->capacity[0].tokens : NULL;
}

bool tapir_engine_metrics__in_flight_tokens(const struct tapir_engine_metrics *m, double *out)
{
	enum tapir_engine_fam fam =
		m->kind == TAPIR_ENGINE_SGLANG ? TAPIR_EF_USED_TOKENS : TAPIR_EF_KV_USAGE;
	const double *cap;
	bool any = false;
	size_t i;

	*out = 0;
	for (i = 0; i < m->n; i++) {
		const struct tapir_engine_series *e = &m->s[i];

		if (e->fam != fam || !isfinite(e->value))
			continue;
		if (m->kind == TAPIR_ENGINE_SGLANG) {
			*out += e->value;
		} else {
			cap = capacity_of(m, e->engine);
			if (!cap)
				continue;
			*out += e->value * *cap;
		}
		any = true;
	}
	return any;
}
