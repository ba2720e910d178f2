// SPDX-License-Identifier: GPL-2.0
/* Writes a registry with every kind of family and hostile label values, for outside parsers. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const deploy_labels[] = { "model_id", "model_name", "deployment_id",
					     "environment", "rollout_phase" };

static const double latency[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double sizes[] = { 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };

/* Label sets a cgroup path or a config file could plausibly hand us. */
static int fill(struct tapir_family *f, int kind, const char *long_value)
{
	const char *const sets[][5] = {
		{ "m1", "llama", "d1", "production", "stable" },
		{ "m2", "", "d2", "", "" },
		{ "q\"uote", "back\\slash", "new\nline", "tab\there", "sp ace" },
		{ "bad\xff\xfe", "overlong\xc0\xaf", "surrogate\xed\xa0\x80", "big\xf4\x90\x80\x80",
		  "cut\xe2\x82" },
		{ "caf\xc3\xa9", "\xe2\x82\xac\xf0\x9f\x98\x80", "a,b=\"c\"}", "{x=\"y\"}",
		  "\\\"\\n" },
		{ long_value, long_value, "d3", "staging", "canary" },
	};
	const double gauges[ARRAY_SIZE(sets)] = { -2.5, NAN, INFINITY, -INFINITY, 1.0 / 3, 1e-9 };
	struct tapir_series *s;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sets); i++) {
		s = tapir_series__get(f, sets[i]);
		if (!s)
			return -errno;
		switch (kind) {
		case TAPIR_COUNTER: tapir_series__add(s, 1000 * i + 1); break;
		case TAPIR_GAUGE: tapir_series__set(s, gauges[i]); break;
		default:
			tapir_series__observe(s, 0.2);
			tapir_series__observe(s, 0.003 * i);
			tapir_series__observe(s, 12);
		}
	}
	return 0;
}

static int build(struct tapir_registry *r, const char *long_value)
{
	struct tapir_family *f;
	struct tapir_series *s;
	size_t i;
	int err;

	f = tapir_registry__family(r, "baseten_inference_requests_total",
				   "HTTP requests answered, by deployment.", TAPIR_COUNTER,
				   deploy_labels, 5, NULL, 0);
	if (!f)
		return -errno;
	err = fill(f, TAPIR_COUNTER, long_value);
	if (err)
		return err;

	f = tapir_registry__family(r, "baseten_inference_in_flight_requests",
				   "Requests received and not yet answered.", TAPIR_GAUGE,
				   deploy_labels, 5, NULL, 0);
	if (!f)
		return -errno;
	err = fill(f, TAPIR_GAUGE, long_value);
	if (err)
		return err;

	f = tapir_registry__family(r, "baseten_inference_latency_seconds",
				   "Time from request to the last response byte.\nIn seconds \\ s.",
				   TAPIR_HISTOGRAM, deploy_labels, 5, latency, ARRAY_SIZE(latency));
	if (!f)
		return -errno;
	err = fill(f, TAPIR_HISTOGRAM, long_value);
	if (err)
		return err;

	f = tapir_registry__family(r, "tapir_events_dropped_total",
				   "Ring buffer records lost to a full buffer.", TAPIR_COUNTER,
				   NULL, 0, NULL, 0);
	if (!f)
		return -errno;
	tapir_series__add(tapir_series__get(f, NULL), 12345678901.0);

	f = tapir_registry__family(r, "tapir_tracked_connections", "Connections being followed.",
				   TAPIR_GAUGE, NULL, 0, NULL, 0);
	if (!f)
		return -errno;
	tapir_series__set(tapir_series__get(f, NULL), 0);

	f = tapir_registry__family(r, "tapir_response_size_bytes", "Response body sizes.",
				   TAPIR_HISTOGRAM, NULL, 0, sizes, ARRAY_SIZE(sizes));
	if (!f)
		return -errno;
	s = tapir_series__get(f, NULL);
	for (i = 0; i < 100000; i++)
		tapir_series__observe(s, (double)(i * 37 % 2000000));

	/* a family that has seen nothing yet */
	f = tapir_registry__family(r, "tapir_parse_errors_total", "Requests the parser gave up on.",
				   TAPIR_COUNTER, deploy_labels, 5, NULL, 0);
	return f ? 0 : -errno;
}

int main(void)
{
	struct tapir_registry *r;
	struct tapir_buf out;
	char *long_value;
	size_t i;
	int err;

	long_value = malloc(10241);
	r = tapir_registry__new();
	if (!long_value || !r) {
		fprintf(stderr, "render_sample: out of memory\n");
		return 1;
	}
	/* 10 KB that crosses the cut with escapes and multibyte characters */
	for (i = 0; i < 10240; i++)
		long_value[i] = "ab\"\\\n\xc3\xa9"[i % 7];
	long_value[10240] = '\0';

	tapir_buf__init(&out);
	err = build(r, long_value);
	if (!err)
		err = tapir_registry__render(r, &out);
	if (!err && fwrite(out.data, 1, out.len, stdout) != out.len)
		err = -EIO;
	if (!err && fflush(stdout))
		err = -errno;
	if (err)
		fprintf(stderr, "render_sample: %s\n", strerror(-err));
	tapir_buf__free(&out);
	tapir_registry__free(r);
	free(long_value);
	return err ? 1 : 0;
}
