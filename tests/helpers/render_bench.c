// SPDX-License-Identifier: GPL-2.0
/*
 * Times the exposition of a registry shaped like a busy node's: per deployment the gauges and
 * container figures of the replicas families, and for some deployments the request counter and
 * the four request histograms with the default buckets. Not a test: it prints figures.
 *
 *   render_bench [-d DEPLOYMENTS] [-H WITH_TRAFFIC] [-r REPLICAS] [-n ROUNDS] [-o FILE]
 *
 * -o writes the text of the last round, to compare two builds' output byte for byte.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The daemon's label lists (labels.c) and default buckets (config.c). */
static const char *const req_labels[] = { "model_id", "model_name",  "deployment_id", "status_code",
					  "is_async", "environment", "rollout_phase" };
static const char *const dep_labels[] = { "model_id", "model_name", "deployment_id", "environment",
					  "rollout_phase" };
static const char *const rep_labels[] = { "model_id", "model_name",  "deployment_id",
					  "replica",  "environment", "rollout_phase" };
static const char *const cond_labels[] = { "model_id",	"model_name",  "deployment_id",
					   "condition", "environment", "rollout_phase" };
static const double latency[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,	  2.5,
				  5,	 10,   30,    60,   120, 300,  600, 1200, 1800 };
static const double sizes[] = { 64,	 256,	  1024,	    4096,     16384,	 65536,	    262144,
				1048576, 4194304, 16777216, 67108864, 268435456, 1073741824 };

enum {
	REQS,
	E2E,
	TTFB,
	REQ_SIZE,
	RESP_SIZE,
	INFLIGHT,
	WS,
	CPU,
	MEM,
	RESTARTS,
	ACTIVE,
	STARTING,
	READY,
	N_FAM
};

struct fam_def {
	const char *name;
	enum tapir_metric_type type;
	const char *const *labels;
	size_t n_labels;
	const double *buckets;
	size_t n_buckets;
};

#define FAM(n, t, l)                            \
	{                                       \
		n, t, l, ARRAY_SIZE(l), NULL, 0 \
	}
#define HIST(n, b)                                                                       \
	{                                                                                \
		n, TAPIR_HISTOGRAM, req_labels, ARRAY_SIZE(req_labels), b, ARRAY_SIZE(b) \
	}
static const struct fam_def defs[N_FAM] = {
	[REQS] = FAM("baseten_inference_requests_total", TAPIR_COUNTER, req_labels),
	[E2E] = HIST("baseten_end_to_end_response_time_seconds", latency),
	[TTFB] = HIST("baseten_time_to_first_byte_seconds", latency),
	[REQ_SIZE] = HIST("baseten_request_size_bytes", sizes),
	[RESP_SIZE] = HIST("baseten_response_size_bytes", sizes),
	[INFLIGHT] = FAM("baseten_concurrent_requests", TAPIR_GAUGE, dep_labels),
	[WS] = FAM("baseten_ongoing_websocket_connections", TAPIR_GAUGE, dep_labels),
	[CPU] = FAM("baseten_container_cpu_usage_seconds_total", TAPIR_COUNTER, rep_labels),
	[MEM] = FAM("baseten_container_cpu_memory_working_set_bytes", TAPIR_GAUGE, rep_labels),
	[RESTARTS] = FAM("baseten_container_restarts_total", TAPIR_COUNTER, dep_labels),
	[ACTIVE] = FAM("baseten_replicas_active", TAPIR_GAUGE, dep_labels),
	[STARTING] = FAM("baseten_replicas_starting", TAPIR_GAUGE, dep_labels),
	[READY] = FAM("baseten_pod_readiness", TAPIR_GAUGE, cond_labels),
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Requests of one deployment and status, as the drain records them. */
static void traffic(struct tapir_family **f, const char *const *v, unsigned int n)
{
	struct tapir_series *s[5];
	unsigned int i, k;

	for (k = 0; k < 5; k++)
		s[k] = tapir_series__get(f[REQS + k], v);
	for (i = 0; i < n; i++) {
		uint64_t ns = 200000 + next_rand() % 900000000;

		tapir_series__add(s[0], 1);
		tapir_series__observe(s[1], (double)ns / 1e9);
		tapir_series__observe(s[2], (double)(ns / 3) / 1e9);
		tapir_series__observe(s[3], (double)(next_rand() % 20000));
		tapir_series__observe(s[4], (double)(next_rand() % 2000000));
	}
}

static int fill(struct tapir_registry *reg, struct tapir_family **f, unsigned int deployments,
		unsigned int with_traffic, unsigned int replicas)
{
	static const char *const conds[] = { "true", "false", "unknown" };
	char model[32], dep[32], name[64], rep[32];
	const char *v[7];
	unsigned int d, i;

	for (i = 0; i < N_FAM; i++) {
		f[i] = tapir_registry__family(reg, defs[i].name, "Help text of the family.",
					      defs[i].type, defs[i].labels, defs[i].n_labels,
					      defs[i].buckets, defs[i].n_buckets);
		if (!f[i])
			return -errno;
	}
	for (d = 0; d < deployments; d++) {
		snprintf(model, sizeof(model), "m%07u", d * 7919 % 10000000);
		snprintf(dep, sizeof(dep), "d%07u", d * 104729 % 10000000);
		snprintf(name, sizeof(name), "llama-3-8b-instruct-%u", d);
		/* deployment labels: model_id, model_name, deployment_id, environment, phase */
		const char *dv[5] = { model, name, dep, "production", "stable" };

		tapir_series__set(tapir_series__get(f[INFLIGHT], dv), d % 3);
		tapir_series__set(tapir_series__get(f[WS], dv), 0);
		tapir_series__add(tapir_series__get(f[RESTARTS], dv), d % 2);
		tapir_series__set(tapir_series__get(f[ACTIVE], dv), replicas);
		tapir_series__set(tapir_series__get(f[STARTING], dv), 0);
		for (i = 0; i < 3; i++) {
			const char *cv[6] = { model, name, dep, conds[i], "production", "stable" };

			tapir_series__set(tapir_series__get(f[READY], cv), i ? 0 : replicas);
		}
		for (i = 0; i < replicas; i++) {
			snprintf(rep, sizeof(rep), "%012llx", (unsigned long long)next_rand());
			const char *rv[6] = { model, name, dep, rep, "production", "stable" };

			tapir_series__set(tapir_series__get(f[CPU], rv),
					  (double)(next_rand() % 100000000000ULL) / 1e6);
			tapir_series__set(tapir_series__get(f[MEM], rv),
					  (double)(next_rand() % (16ULL << 30)));
		}
		if (d >= with_traffic)
			continue;
		v[0] = model, v[1] = name, v[2] = dep, v[4] = "false", v[5] = "production";
		v[6] = "stable";
		v[3] = "200";
		traffic(f, v, 200);
		if (d % 4 == 0) {
			v[3] = "500";
			traffic(f, v, 3);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int deployments = 1000, with_traffic = 100, replicas = 1, rounds = 200, i;
	struct tapir_family *f[N_FAM];
	struct tapir_registry *reg;
	const char *save = NULL;
	struct tapir_buf out;
	FILE *fp;
	uint64_t t0, best = UINT64_MAX, sum = 0, t;
	size_t lines = 0, k;
	int opt, err;

	while ((opt = getopt(argc, argv, "d:H:r:n:o:")) != -1) {
		switch (opt) {
		case 'd': deployments = strtoul(optarg, NULL, 10); break;
		case 'H': with_traffic = strtoul(optarg, NULL, 10); break;
		case 'r': replicas = strtoul(optarg, NULL, 10); break;
		case 'n': rounds = strtoul(optarg, NULL, 10); break;
		case 'o': save = optarg; break;
		default:
			fprintf(stderr,
				"usage: %s [-d deployments] [-H with traffic] "
				"[-r replicas] [-n rounds] [-o file]\n",
				argv[0]);
			return 2;
		}
	}
	reg = tapir_registry__new();
	if (!reg)
		return 1;
	err = fill(reg, f, deployments, with_traffic, replicas);
	if (err) {
		fprintf(stderr, "cannot fill the registry: %s\n", strerror(-err));
		return 1;
	}
	tapir_buf__init(&out);
	for (i = 0; i < rounds; i++) {
		tapir_buf__reset(&out);
		t0 = mono_ns();
		err = tapir_registry__render(reg, &out);
		t = mono_ns() - t0;
		if (err) {
			fprintf(stderr, "render failed: %s\n", strerror(-err));
			return 1;
		}
		sum += t;
		best = t < best ? t : best;
	}
	for (k = 0; k < out.len; k++)
		lines += (k == 0 || out.data[k - 1] == '\n') && out.data[k] != '#';
	printf("series %zu, sample lines %zu, bytes %zu; render over %u rounds: "
	       "mean %.3f ms, best %.3f ms, %.1f ns per sample line\n",
	       tapir_registry__n_series(reg), lines, out.len, rounds, sum / 1e6 / rounds,
	       best / 1e6, (double)best / (double)lines);
	if (save) {
		fp = fopen(save, "we");
		if (!fp || fwrite(out.data, 1, out.len, fp) != out.len || fclose(fp)) {
			fprintf(stderr, "cannot write %s: %s\n", save, strerror(errno));
			return 1;
		}
	}
	tapir_buf__free(&out);
	tapir_registry__free(reg);
	return 0;
}
