// SPDX-License-Identifier: GPL-2.0
/* Unit tests for kernel aggregation: its pure rules (include/tapir/agg.h), the reader's sums
 * and deltas, and that an aggregate merged into a series renders as the records it stands for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/types.h>

#include "tapir/http.h"
#include "buf.h"
#include "http_agg.h"
#include "registry.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* config.c's defaults, which the kernel gets converted (user/bpf/loader.c). */
static const double lat_s[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,	2.5,
				10,    30,   60,    120,  300, 600,  1200, 1800 };
static const double size_b[] = { 64, 256, 1024, 4096, 16384, 65536, 1048576 };

static void test_status_label(void **state)
{
	(void)state;
	assert_int_equal(tapir_status_label(TAPIR_OUT_COMPLETE, 204), 204);
	assert_int_equal(tapir_status_label(TAPIR_OUT_CLIENT_ABORT, 200), 499);
	assert_int_equal(tapir_status_label(TAPIR_OUT_SERVER_ABORT, 0), 502);
	assert_int_equal(tapir_status_label(TAPIR_OUT_UPGRADED, 101), 101);
}

static void test_bucket_edges(void **state)
{
	const __u64 b[] = { 10, 20, 30 };

	(void)state;
	assert_int_equal(tapir_agg_bucket(b, 3, 0), 0);
	assert_int_equal(tapir_agg_bucket(b, 3, 10), 0); /* le: the bound itself is inside */
	assert_int_equal(tapir_agg_bucket(b, 3, 11), 1);
	assert_int_equal(tapir_agg_bucket(b, 3, 30), 2);
	assert_int_equal(tapir_agg_bucket(b, 3, 31), 3); /* +Inf */
	assert_int_equal(tapir_agg_bucket(b, 0, 5), 0);	 /* no bounds: +Inf only */
	assert_int_equal(tapir_agg_bound(0.005, 1e9), 5000000);
	assert_int_equal(tapir_agg_bound(0.1, 1e9), 100000000);
	assert_int_equal(tapir_agg_bound(1800, 1e9), 1800000000000ULL);
}

/*
 * The kernel's bucket of a duration in ns (bounds converted as the loader does) is the
 * registry's for the same duration in seconds, as a record would be observed: on and around
 * every bound, and for a spread of values in between.
 */
static void test_bucket_matches_registry(void **state)
{
	const char *labels[] = { "k" }, *values[] = { "v" };
	__u64 b[TAPIR_AGG_BOUNDS], v, vals[4096];
	struct tapir_registry *r = tapir_registry__new();
	struct tapir_family *f = tapir_registry__family(r, "t", "t", TAPIR_HISTOGRAM, labels, 1,
							lat_s, ARRAY_SIZE(lat_s));
	struct tapir_series *s = tapir_series__get(f, values), *m;
	__u64 counts[TAPIR_AGG_BOUNDS + 1] = { 0 };
	struct tapir_buf a, bb;
	size_t i, n = 0;
	int d;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(lat_s); i++) {
		b[i] = tapir_agg_bound(lat_s[i], 1e9);
		for (d = -2; d <= 2; d++)
			vals[n++] = b[i] + d;
	}
	for (v = 1; n < ARRAY_SIZE(vals); v = v * 3 + 7)
		vals[n++] = v % 4000000000000ULL;
	for (i = 0; i < n; i++) {
		tapir_series__observe(s, (double)vals[i] / 1e9);
		counts[tapir_agg_bucket(b, ARRAY_SIZE(lat_s), vals[i])]++;
	}
	/* The same observations merged into a second registry render the same. */
	struct tapir_registry *r2 = tapir_registry__new();
	struct tapir_family *f2 = tapir_registry__family(r2, "t", "t", TAPIR_HISTOGRAM, labels, 1,
							 lat_s, ARRAY_SIZE(lat_s));
	double sum = 0;

	for (i = 0; i < n; i++)
		sum += (double)vals[i] / 1e9;
	m = tapir_series__get(f2, values);
	tapir_series__merge(m, counts, ARRAY_SIZE(counts), sum);
	tapir_buf__init(&a);
	tapir_buf__init(&bb);
	assert_int_equal(tapir_registry__render(r, &a), 0);
	assert_int_equal(tapir_registry__render(r2, &bb), 0);
	/* Sums in floating point may differ in their last digits: compare the buckets. */
	assert_int_equal(tapir_series__count(s), tapir_series__count(m));
	tapir_buf__append(&a, "", 1);
	tapir_buf__append(&bb, "", 1);
	*strstr(a.data, "t_sum") = '\0';
	*strstr(bb.data, "t_sum") = '\0';
	assert_string_equal(a.data, bb.data);
	tapir_buf__free(&a);
	tapir_buf__free(&bb);
	tapir_registry__free(r);
	tapir_registry__free(r2);
}

static __u64 word_of(const char *line, __u8 method)
{
	__u64 x = 0;

	memcpy(&x, line + tapir_path_start(method), 8);
	return x; /* little-endian, as the kernel loads it */
}

static void test_probe_candidates(void **state)
{
	const char *paths[] = { "/health", "/v1/models/model", "/ready" };
	struct tapir_probe_prefix pp;
	char line[TAPIR_LINE_BYTES + 8];

	(void)state;
	tapir_probe_prefixes(&pp, paths, ARRAY_SIZE(paths));
	assert_int_equal(pp.mask[0], 0x00ffffffffffffffULL); /* 7 bytes */
	assert_int_equal(pp.mask[1], ~0ULL);		     /* the first 8 of 16 */
	assert_int_equal(pp.mask[3], 0);		     /* unused: never matches... */
#define CAND(l, m)                                                  \
	(memset(line, 0, sizeof(line)), memcpy(line, l, strlen(l)), \
	 tapir_probe_candidate(word_of(line, m), pp.word, pp.mask, ARRAY_SIZE(paths)))
	assert_true(CAND("GET /health HTTP/1.1", TP_M_GET));
	assert_true(CAND("GET /healthz HTTP/1.1", TP_M_GET)); /* the daemon tells these apart */
	assert_true(CAND("HEAD /ready?x=1 HTTP/1.1", TP_M_HEAD));
	assert_true(CAND("GET /v1/models/model HTTP/1.1", TP_M_GET));
	assert_true(CAND("GET /v1/models/other HTTP/1.1", TP_M_GET));
	assert_false(CAND("GET /v1/chat/completions HTTP/1.1", TP_M_GET));
	assert_false(CAND("GET / HTTP/1.1", TP_M_GET));
	assert_false(CAND("POST /predict HTTP/1.1", TP_M_POST));
	assert_false(CAND("OPTIONS /he HTTP/1.1", TP_M_OPTIONS));
	/* ...because n stops the scan before it: */
	assert_false(tapir_probe_candidate(0, pp.word, pp.mask, ARRAY_SIZE(paths)));
	assert_int_equal(tapir_path_start(TP_M_UNKNOWN), 0);
	assert_int_equal(tapir_path_start(TP_M_DELETE), strlen("DELETE "));
	assert_int_equal(tapir_path_start(TP_M_OPTIONS), strlen("OPTIONS "));
}

static void test_sum_and_delta(void **state)
{
	struct tapir_agg cpu[3], sum, before, delta;

	(void)state;
	memset(cpu, 0, sizeof(cpu));
	cpu[0].requests = 5;
	cpu[0].last_ns = 900;
	cpu[0].e2e.n[2] = 5;
	cpu[0].e2e.sum = 50;
	cpu[2].requests = 2;
	cpu[2].last_ns = 1000;
	cpu[2].e2e.n[TAPIR_AGG_BOUNDS] = 2;
	cpu[2].resp_size.sum = 4096;
	tapir_agg_sum(&sum, cpu, 3);
	assert_int_equal(sum.requests, 7);
	assert_int_equal(sum.last_ns, 1000); /* the latest, not a sum */
	assert_int_equal(sum.e2e.n[2], 5);
	assert_int_equal(sum.e2e.n[TAPIR_AGG_BOUNDS], 2);
	assert_int_equal(sum.resp_size.sum, 4096);

	before = sum;
	assert_false(tapir_agg_delta(&delta, &sum, &before)); /* nothing new */
	cpu[1].requests = 1;
	cpu[1].last_ns = 1200;
	cpu[1].ttfb.n[0] = 1;
	tapir_agg_sum(&sum, cpu, 3);
	assert_true(tapir_agg_delta(&delta, &sum, &before));
	assert_int_equal(delta.requests, 1);
	assert_int_equal(delta.ttfb.n[0], 1);
	assert_int_equal(delta.e2e.n[2], 0);
	assert_int_equal(delta.last_ns, 1200);
	/* A word read lower than last time (never, in the kernel) gives 0, not a wrap. */
	before.e2e.n[2] = 6;
	tapir_agg_delta(&delta, &sum, &before);
	assert_int_equal(delta.e2e.n[2], 0);
}

static void test_size_bounds(void **state)
{
	__u64 b[TAPIR_AGG_BOUNDS];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(size_b); i++)
		b[i] = tapir_agg_bound(size_b[i], 1);
	assert_int_equal(tapir_agg_bucket(b, ARRAY_SIZE(size_b), 1024), 2);
	assert_int_equal(tapir_agg_bucket(b, ARRAY_SIZE(size_b), 1025), 3);
	assert_int_equal(tapir_agg_bucket(b, ARRAY_SIZE(size_b), 2000000), ARRAY_SIZE(size_b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_label),
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_bucket_matches_registry),
		cmocka_unit_test(test_probe_candidates),
		cmocka_unit_test(test_sum_and_delta),
		cmocka_unit_test(test_size_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
