// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the metric registry: exact exposition text, lookups, caps and validation. */
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

#include "registry.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const double latency[] = { 0.005, 0.1, 0.25, 1 };

static void assert_render(struct tapir_registry *r, const char *want)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	assert_int_equal(tapir_registry__render(r, &b), 0);
	assert_string_equal(b.data, want);
	tapir_buf__free(&b);
}

static int setup(void **state)
{
	*state = tapir_registry__new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	tapir_registry__free(*state);
	return 0;
}

static void test_render_small(void **state)
{
	static const char *const req_labels[] = { "model_id", "environment" };
	static const char *const v1[] = { "m1", "production" };
	static const char *const v2[] = { "m2", "" };
	struct tapir_registry *r = *state;
	struct tapir_family *req, *inflight, *lat;
	struct tapir_series *s;

	req = tapir_registry__family(r, "baseten_inference_requests_total", "Requests served.",
				     TAPIR_COUNTER, req_labels, 2, NULL, 0);
	inflight = tapir_registry__family(r, "tapir_connections", "Open connections.", TAPIR_GAUGE,
					  NULL, 0, NULL, 0);
	lat = tapir_registry__family(r, "baseten_inference_latency_seconds", "Time to respond.",
				     TAPIR_HISTOGRAM, req_labels, 2, latency, ARRAY_SIZE(latency));
	assert_non_null(req);
	assert_non_null(inflight);
	assert_non_null(lat);

	tapir_series__add(tapir_series__get(req, v1), 3);
	tapir_series__add(tapir_series__get(req, v2), 1);
	tapir_series__add(tapir_series__get(req, v1), 2);
	s = tapir_series__get(inflight, NULL);
	tapir_series__set(s, 7);
	tapir_series__add(s, -2.5);
	s = tapir_series__get(lat, v1);
	tapir_series__observe(s, 0.2);
	tapir_series__observe(s, 0.05);
	tapir_series__observe(s, 3);

	assert_render(
		r,
		"# HELP baseten_inference_requests_total Requests served.\n"
		"# TYPE baseten_inference_requests_total counter\n"
		"baseten_inference_requests_total{model_id=\"m1\",environment=\"production\"} 5\n"
		"baseten_inference_requests_total{model_id=\"m2\",environment=\"\"} 1\n"
		"# HELP tapir_connections Open connections.\n"
		"# TYPE tapir_connections gauge\n"
		"tapir_connections 4.5\n"
		"# HELP baseten_inference_latency_seconds Time to respond.\n"
		"# TYPE baseten_inference_latency_seconds histogram\n"
		"baseten_inference_latency_seconds_bucket{model_id=\"m1\",environment=\"production\",le=\"0.005\"} 0\n"
		"baseten_inference_latency_seconds_bucket{model_id=\"m1\",environment=\"production\",le=\"0.1\"} 1\n"
		"baseten_inference_latency_seconds_bucket{model_id=\"m1\",environment=\"production\",le=\"0.25\"} 2\n"
		"baseten_inference_latency_seconds_bucket{model_id=\"m1\",environment=\"production\",le=\"1\"} 2\n"
		"baseten_inference_latency_seconds_bucket{model_id=\"m1\",environment=\"production\",le=\"+Inf\"} 3\n"
		"baseten_inference_latency_seconds_sum{model_id=\"m1\",environment=\"production\"} 3.25\n"
		"baseten_inference_latency_seconds_count{model_id=\"m1\",environment=\"production\"} 3\n");
}

static void test_histogram_buckets(void **state)
{
	struct tapir_registry *r = *state;
	struct tapir_family *f;
	struct tapir_series *s;

	f = tapir_registry__family(r, "lat_seconds", "Latency.", TAPIR_HISTOGRAM, NULL, 0, latency,
				   ARRAY_SIZE(latency));
	assert_non_null(f);
	s = tapir_series__get(f, NULL);
	assert_non_null(s);
	tapir_series__observe(s, 0.2);
	assert_int_equal(tapir_series__count(s), 1);
	assert_true(tapir_series__sum(s) == 0.2);
	assert_render(r, "# HELP lat_seconds Latency.\n"
			 "# TYPE lat_seconds histogram\n"
			 "lat_seconds_bucket{le=\"0.005\"} 0\n"
			 "lat_seconds_bucket{le=\"0.1\"} 0\n"
			 "lat_seconds_bucket{le=\"0.25\"} 1\n"
			 "lat_seconds_bucket{le=\"1\"} 1\n"
			 "lat_seconds_bucket{le=\"+Inf\"} 1\n"
			 "lat_seconds_sum 0.2\n"
			 "lat_seconds_count 1\n");

	/* bounds are inclusive; 0 falls in the first bucket, past the last in +Inf only */
	tapir_series__observe(s, 0.1);
	tapir_series__observe(s, 0);
	tapir_series__observe(s, 0.005);
	tapir_series__observe(s, 1);
	tapir_series__observe(s, 1.0000001);
	tapir_series__observe(s, 1e9);
	assert_int_equal(tapir_series__count(s), 7);
	assert_render(r, "# HELP lat_seconds Latency.\n"
			 "# TYPE lat_seconds histogram\n"
			 "lat_seconds_bucket{le=\"0.005\"} 2\n"
			 "lat_seconds_bucket{le=\"0.1\"} 3\n"
			 "lat_seconds_bucket{le=\"0.25\"} 4\n"
			 "lat_seconds_bucket{le=\"1\"} 5\n"
			 "lat_seconds_bucket{le=\"+Inf\"} 7\n"
			 "lat_seconds_sum 1000000002.3050001\n"
			 "lat_seconds_count 7\n");
}

/* Buckets copied from an engine: its own bounds per series, replaced whole on each copy. */
static void test_copied_buckets(void **state)
{
	static const char *const names[] = { "replica" };
	static const char *const a[] = { "a" }, *const b[] = { "b" };
	static const double bounds[] = { 0.01, 2.5, INFINITY }, cum[] = { 1, 3, 4 };
	static const double bounds2[] = { 1, INFINITY }, cum2[] = { 0, 2 };
	static const double unsorted[] = { 2, 1, INFINITY }, no_inf[] = { 1, 2 };
	struct tapir_registry *r = *state;
	struct tapir_family *f, *g;
	struct tapir_series *sa, *sb;

	f = tapir_registry__family(r, "ttft_seconds", NULL, TAPIR_HISTOGRAM, names, 1, NULL, 0);
	assert_non_null(f);
	sa = tapir_series__get(f, a);
	sb = tapir_series__get(f, b);
	assert_int_equal(tapir_series__set_buckets(sa, bounds, cum, 3, 1.25, 4), 0);
	assert_int_equal(tapir_series__set_buckets(sb, bounds2, cum2, 2, 3, 2), 0);
	assert_render(r, "# TYPE ttft_seconds histogram\n"
			 "ttft_seconds_bucket{replica=\"a\",le=\"0.01\"} 1\n"
			 "ttft_seconds_bucket{replica=\"a\",le=\"2.5\"} 3\n"
			 "ttft_seconds_bucket{replica=\"a\",le=\"+Inf\"} 4\n"
			 "ttft_seconds_sum{replica=\"a\"} 1.25\n"
			 "ttft_seconds_count{replica=\"a\"} 4\n"
			 "ttft_seconds_bucket{replica=\"b\",le=\"1\"} 0\n"
			 "ttft_seconds_bucket{replica=\"b\",le=\"+Inf\"} 2\n"
			 "ttft_seconds_sum{replica=\"b\"} 3\n"
			 "ttft_seconds_count{replica=\"b\"} 2\n");
	/* A new copy replaces the old one, bounds included. */
	assert_int_equal(tapir_series__set_buckets(sa, bounds2, cum2, 2, 3, 2), 0);
	tapir_series__remove(f, sb);
	assert_render(r, "# TYPE ttft_seconds histogram\n"
			 "ttft_seconds_bucket{replica=\"a\",le=\"1\"} 0\n"
			 "ttft_seconds_bucket{replica=\"a\",le=\"+Inf\"} 2\n"
			 "ttft_seconds_sum{replica=\"a\"} 3\n"
			 "ttft_seconds_count{replica=\"a\"} 2\n");
	assert_int_equal(tapir_series__set_buckets(sa, unsorted, cum, 3, 0, 0), -EINVAL);
	assert_int_equal(tapir_series__set_buckets(sa, no_inf, cum, 2, 0, 0), -EINVAL);
	assert_int_equal(tapir_series__set_buckets(sa, bounds, cum, 0, 0, 0), -EINVAL);
	g = tapir_registry__family(r, "g", NULL, TAPIR_GAUGE, NULL, 0, NULL, 0);
	assert_int_equal(
		tapir_series__set_buckets(tapir_series__get(g, NULL), bounds, cum, 3, 0, 0),
		-EINVAL);
}

/* Many observations, spread over every bucket, add up exactly. */
static void test_histogram_many(void **state)
{
	static const double b[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096 };
	struct tapir_registry *r = *state;
	struct tapir_family *f;
	struct tapir_series *s;
	struct tapir_buf out;
	char want[64];
	int i;

	f = tapir_registry__family(r, "size_bytes", "Sizes.", TAPIR_HISTOGRAM, NULL, 0, b,
				   ARRAY_SIZE(b));
	s = tapir_series__get(f, NULL);
	for (i = 0; i < 1000000; i++)
		tapir_series__observe(s, i % 5000);
	assert_int_equal(tapir_series__count(s), 1000000);
	/* 200 rounds of 0..4999 */
	assert_true(tapir_series__sum(s) == 200.0 * 4999 * 5000 / 2);

	tapir_buf__init(&out);
	assert_int_equal(tapir_registry__render(r, &out), 0);
	/* values 0 and 1 per round: 400 */
	assert_non_null(strstr(out.data, "size_bytes_bucket{le=\"1\"} 400\n"));
	/* 0..4096 per round */
	assert_non_null(strstr(out.data, "size_bytes_bucket{le=\"4096\"} 819400\n"));
	assert_non_null(strstr(out.data, "size_bytes_bucket{le=\"+Inf\"} 1000000\n"));
	snprintf(want, sizeof(want), "size_bytes_sum %.0f\n", 200.0 * 4999 * 5000 / 2);
	assert_non_null(strstr(out.data, want));
	tapir_buf__free(&out);
}

static void test_no_labels_no_buckets(void **state)
{
	struct tapir_registry *r = *state;
	struct tapir_family *f;

	/* +Inf alone; an explicit +Inf at the end is the same histogram */
	f = tapir_registry__family(r, "a_seconds", "A.", TAPIR_HISTOGRAM, NULL, 0, NULL, 0);
	tapir_series__observe(tapir_series__get(f, NULL), 2);
	f = tapir_registry__family(r, "b_seconds", "B.", TAPIR_HISTOGRAM, NULL, 0,
				   (const double[]){ 1, INFINITY }, 2);
	assert_non_null(f);
	tapir_series__observe(tapir_series__get(f, NULL), 2);
	assert_render(r, "# HELP a_seconds A.\n"
			 "# TYPE a_seconds histogram\n"
			 "a_seconds_bucket{le=\"+Inf\"} 1\n"
			 "a_seconds_sum 2\n"
			 "a_seconds_count 1\n"
			 "# HELP b_seconds B.\n"
			 "# TYPE b_seconds histogram\n"
			 "b_seconds_bucket{le=\"1\"} 0\n"
			 "b_seconds_bucket{le=\"+Inf\"} 1\n"
			 "b_seconds_sum 2\n"
			 "b_seconds_count 1\n");
}

static void test_empty_family_and_help(void **state)
{
	static const char *const names[] = { "x" };
	struct tapir_registry *r = *state;

	assert_non_null(tapir_registry__family(r, "idle_total", "Nothing \\ yet.\nReally.",
					       TAPIR_COUNTER, names, 1, NULL, 0));
	assert_non_null(tapir_registry__family(r, "quiet", NULL, TAPIR_GAUGE, NULL, 0, NULL, 0));
	assert_render(r, "# HELP idle_total Nothing \\\\ yet.\\nReally.\n"
			 "# TYPE idle_total counter\n"
			 "# TYPE quiet gauge\n");
}

static void test_hostile_labels(void **state)
{
	static const char *const names[] = { "a", "b" };
	static const char *const v[] = { "q\"u\\o\nte", "bad\xff\xc0\xaf,b=\"x\"}" };
	struct tapir_registry *r = *state;
	struct tapir_family *f;

	f = tapir_registry__family(r, "hostile_total", "Hostile.", TAPIR_COUNTER, names, 2, NULL,
				   0);
	tapir_series__add(tapir_series__get(f, v), 1);
	assert_render(r, "# HELP hostile_total Hostile.\n"
			 "# TYPE hostile_total counter\n"
			 "hostile_total{a=\"q\\\"u\\\\o\\nte\",b=\"bad\xef\xbf\xbd\xef\xbf\xbd"
			 "\xef\xbf\xbd,b=\\\"x\\\"}\"} 1\n");
}

/* Values that move a separator between labels name different series. */
static void test_lookup_separators(void **state)
{
	static const char *const names[] = { "a", "b" };
	static const char *const v1[] = { "x\",b=\"y", "" };
	static const char *const v2[] = { "x", "y" };
	static const char *const v3[] = { "x,", "y" };
	static const char *const v4[] = { "x", ",y" };
	static const char *const v5[] = { "", "" };
	static const char *const v6[] = { NULL, NULL };
	struct tapir_registry *r = *state;
	struct tapir_series *s1, *s2, *s3, *s4, *s5;
	struct tapir_family *f;

	f = tapir_registry__family(r, "sep", "Sep.", TAPIR_GAUGE, names, 2, NULL, 0);
	s1 = tapir_series__get(f, v1);
	s2 = tapir_series__get(f, v2);
	s3 = tapir_series__get(f, v3);
	s4 = tapir_series__get(f, v4);
	s5 = tapir_series__get(f, v5);
	assert_non_null(s1);
	assert_true(s1 != s2 && s1 != s3 && s1 != s4 && s1 != s5);
	assert_true(s2 != s3 && s2 != s4 && s2 != s5);
	assert_true(s3 != s4 && s3 != s5 && s4 != s5);
	assert_int_equal(tapir_family__n_series(f), 5);
	assert_ptr_equal(tapir_series__get(f, v1), s1);
	assert_ptr_equal(tapir_series__get(f, v4), s4);
	/* NULL reads as "" */
	assert_ptr_equal(tapir_series__get(f, v6), s5);
	assert_int_equal(tapir_family__n_series(f), 5);
}

/* Values that print the same are the same series, so a scrape never repeats one. */
static void test_lookup_same_rendering(void **state)
{
	static const char *const names[] = { "v" };
	static const char *const bad1[] = { "x\xff" }, *const bad2[] = { "x\xfe" };
	struct tapir_registry *r = *state;
	char long1[2001], long2[2001];
	const char *l1[] = { long1 }, *l2[] = { long2 };
	struct tapir_family *f;

	memset(long1, 'a', 2000);
	memset(long2, 'a', 2000);
	long1[2000] = long2[2000] = '\0';
	long2[1999] = 'b';
	f = tapir_registry__family(r, "same", "Same.", TAPIR_GAUGE, names, 1, NULL, 0);
	assert_ptr_equal(tapir_series__get(f, bad1), tapir_series__get(f, bad2));
	assert_ptr_equal(tapir_series__get(f, l1), tapir_series__get(f, l2));
	assert_int_equal(tapir_family__n_series(f), 2);
}

static void test_many_series(void **state)
{
	static const char *const names[] = { "model_id", "deployment_id" };
	struct tapir_registry *r = *state;
	struct tapir_series **s;
	struct tapir_family *f;
	struct tapir_buf out;
	char a[32], b[32];
	const char *v[] = { a, b };
	int i, n = 20000;

	s = calloc(n, sizeof(*s));
	assert_non_null(s);
	f = tapir_registry__family(r, "req_total", "Requests.", TAPIR_COUNTER, names, 2, NULL, 0);
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "m%d", i % 100);
		snprintf(b, sizeof(b), "d%d", i);
		s[i] = tapir_series__get(f, v);
		assert_non_null(s[i]);
		tapir_series__add(s[i], i);
	}
	assert_int_equal(tapir_family__n_series(f), n);
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "m%d", i % 100);
		snprintf(b, sizeof(b), "d%d", i);
		assert_ptr_equal(tapir_series__get(f, v), s[i]);
		assert_true(tapir_series__value(s[i]) == i);
	}
	for (i = 0; i < n; i += 2)
		tapir_series__remove(f, s[i]);
	assert_int_equal(tapir_family__n_series(f), n / 2);
	for (i = 1; i < n; i += 2) {
		snprintf(a, sizeof(a), "m%d", i % 100);
		snprintf(b, sizeof(b), "d%d", i);
		assert_ptr_equal(tapir_series__get(f, v), s[i]);
	}

	tapir_buf__init(&out);
	assert_int_equal(tapir_registry__render(r, &out), 0);
	assert_null(strstr(out.data, "deployment_id=\"d0\"}"));
	assert_non_null(strstr(out.data, "req_total{model_id=\"m1\",deployment_id=\"d1\"} 1\n"));
	assert_non_null(
		strstr(out.data, "req_total{model_id=\"m99\",deployment_id=\"d19999\"} 19999\n"));
	tapir_buf__free(&out);
	free(s);
}

static void test_remove(void **state)
{
	static const char *const names[] = { "c" };
	static const char *const va[] = { "a" }, *const vb[] = { "b" }, *const vc[] = { "c" };
	struct tapir_registry *r = *state;
	struct tapir_series *a, *b, *c;
	struct tapir_family *f;

	f = tapir_registry__family(r, "up", "Up.", TAPIR_GAUGE, names, 1, NULL, 0);
	a = tapir_series__get(f, va);
	b = tapir_series__get(f, vb);
	c = tapir_series__get(f, vc);
	tapir_series__set(a, 1);
	tapir_series__set(b, 2);
	tapir_series__set(c, 3);
	tapir_series__remove(f, b);
	assert_render(r, "# HELP up Up.\n# TYPE up gauge\nup{c=\"a\"} 1\nup{c=\"c\"} 3\n");
	tapir_series__remove(f, a);
	tapir_series__remove(f, c);
	tapir_series__remove(f, NULL);
	assert_int_equal(tapir_family__n_series(f), 0);
	assert_render(r, "# HELP up Up.\n# TYPE up gauge\n");
	/* comes back at zero */
	b = tapir_series__get(f, vb);
	assert_true(tapir_series__value(b) == 0);
	assert_render(r, "# HELP up Up.\n# TYPE up gauge\nup{c=\"b\"} 0\n");
}

static void test_series_cap(void **state)
{
	static const char *const names[] = { "k" };
	static const char *const v1[] = { "1" }, *const v2[] = { "2" }, *const v3[] = { "3" };
	struct tapir_registry *r = *state;
	struct tapir_series *s1, *s2;
	struct tapir_family *f;

	f = tapir_registry__family(r, "capped_total", "Capped.", TAPIR_COUNTER, names, 1, NULL, 0);
	tapir_family__set_max_series(f, 2);
	s1 = tapir_series__get(f, v1);
	s2 = tapir_series__get(f, v2);
	assert_non_null(s1);
	assert_non_null(s2);
	errno = 0;
	assert_null(tapir_series__get(f, v3));
	assert_int_equal(errno, ENOSPC);
	assert_null(tapir_series__get(f, v3));
	assert_int_equal(tapir_family__overflow(f), 2);
	/* existing series are still found and do not count as overflow */
	assert_ptr_equal(tapir_series__get(f, v1), s1);
	assert_int_equal(tapir_family__overflow(f), 2);
	/* updates on the NULL an overflow returns are no-ops */
	tapir_series__add(tapir_series__get(f, v3), 1);
	assert_int_equal(tapir_family__overflow(f), 3);
	assert_int_equal(tapir_family__n_series(f), 2);

	tapir_series__remove(f, s2);
	assert_non_null(tapir_series__get(f, v3));
	assert_int_equal(tapir_family__n_series(f), 2);

	tapir_family__set_max_series(f, 0);
	assert_non_null(tapir_series__get(f, v2));
	assert_int_equal(tapir_family__n_series(f), 3);
	assert_int_equal(tapir_family__overflow(f), 3);
}

static void test_kind_rules(void **state)
{
	struct tapir_registry *r = *state;
	struct tapir_series *c, *g, *h;
	struct tapir_family *f;

	f = tapir_registry__family(r, "c_total", "C.", TAPIR_COUNTER, NULL, 0, NULL, 0);
	c = tapir_series__get(f, NULL);
	f = tapir_registry__family(r, "g", "G.", TAPIR_GAUGE, NULL, 0, NULL, 0);
	g = tapir_series__get(f, NULL);
	f = tapir_registry__family(r, "h", "H.", TAPIR_HISTOGRAM, NULL, 0, latency,
				   ARRAY_SIZE(latency));
	h = tapir_series__get(f, NULL);
	assert_non_null(c);
	assert_non_null(g);
	assert_non_null(h);
	/* counters never go down; set is for externally kept totals */
	tapir_series__add(c, 2);
	tapir_series__add(c, -1);
	tapir_series__add(c, NAN);
	assert_true(tapir_series__value(c) == 2);
	tapir_series__set(c, 10);
	tapir_series__observe(c, 1);
	assert_true(tapir_series__value(c) == 10);
	assert_int_equal(tapir_series__count(c), 0);

	tapir_series__add(g, -3);
	assert_true(tapir_series__value(g) == -3);

	tapir_series__add(h, 5);
	tapir_series__set(h, 5);
	assert_true(tapir_series__value(h) == 0);
	assert_int_equal(tapir_series__count(h), 0);

	/* NULL series are ignored */
	tapir_series__add(NULL, 1);
	tapir_series__set(NULL, 1);
	tapir_series__observe(NULL, 1);
	assert_true(tapir_series__value(NULL) == 0);
	assert_int_equal(tapir_series__count(NULL), 0);
	assert_true(tapir_series__sum(NULL) == 0);
}

static void expect_bad(struct tapir_registry *r, const char *name, enum tapir_metric_type type,
		       const char *const *labels, size_t n_labels, const double *b, size_t n_b,
		       int err)
{
	errno = 0;
	assert_null(tapir_registry__family(r, name, "x", type, labels, n_labels, b, n_b));
	assert_int_equal(errno, err);
}

static void test_validation(void **state)
{
	static const char *const ok_labels[] = { "a", "_b", "c9", "le" };
	static const char *const dunder[] = { "__name" };
	static const char *const colon[] = { "a:b" };
	static const char *const digit[] = { "9a" };
	static const char *const empty[] = { "" };
	static const char *const dash[] = { "a-b" };
	static const char *const dup[] = { "a", "a" };
	static const char *const null[] = { NULL };
	struct tapir_registry *r = *state;

	expect_bad(r, NULL, TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "", TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "1abc", TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "a-b", TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "a b", TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "a{}", TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "caf\xc3\xa9", TAPIR_GAUGE, NULL, 0, NULL, 0, EINVAL);
	expect_bad(r, "ok", (enum tapir_metric_type)7, NULL, 0, NULL, 0, EINVAL);

	expect_bad(r, "ok", TAPIR_GAUGE, dunder, 1, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, colon, 1, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, digit, 1, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, empty, 1, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, dash, 1, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, dup, 2, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, null, 1, NULL, 0, EINVAL);
	expect_bad(r, "ok", TAPIR_GAUGE, NULL, 1, NULL, 0, EINVAL);
	/* le belongs to the buckets */
	expect_bad(r, "ok", TAPIR_HISTOGRAM, ok_labels, 4, NULL, 0, EINVAL);

	expect_bad(r, "ok", TAPIR_HISTOGRAM, NULL, 0, (const double[]){ 1, 1 }, 2, EINVAL);
	expect_bad(r, "ok", TAPIR_HISTOGRAM, NULL, 0, (const double[]){ 2, 1 }, 2, EINVAL);
	expect_bad(r, "ok", TAPIR_HISTOGRAM, NULL, 0, (const double[]){ 1, NAN }, 2, EINVAL);
	expect_bad(r, "ok", TAPIR_HISTOGRAM, NULL, 0, (const double[]){ -INFINITY, 1 }, 2, EINVAL);
	expect_bad(r, "ok", TAPIR_HISTOGRAM, NULL, 0, (const double[]){ INFINITY, 1 }, 2, EINVAL);
	expect_bad(r, "ok", TAPIR_HISTOGRAM, NULL, 0, NULL, 3, EINVAL);
	/* buckets on a counter are a mistake */
	expect_bad(r, "ok", TAPIR_COUNTER, NULL, 0, latency, 1, EINVAL);

	assert_non_null(
		tapir_registry__family(r, "a:b_c9", "x", TAPIR_GAUGE, ok_labels, 4, NULL, 0));
	assert_non_null(tapir_registry__family(r, "_x", "x", TAPIR_GAUGE, NULL, 0, NULL, 0));
	assert_non_null(tapir_registry__family(r, ":x", "x", TAPIR_GAUGE, NULL, 0, NULL, 0));
	assert_non_null(tapir_registry__family(r, "hist", "x", TAPIR_HISTOGRAM, ok_labels, 3,
					       (const double[]){ -1, 0, 1 }, 3));

	/* names already in use, also as a histogram's sample names */
	expect_bad(r, "_x", TAPIR_COUNTER, NULL, 0, NULL, 0, EEXIST);
	expect_bad(r, "hist_count", TAPIR_COUNTER, NULL, 0, NULL, 0, EEXIST);
	expect_bad(r, "hist_bucket", TAPIR_GAUGE, NULL, 0, NULL, 0, EEXIST);
	assert_non_null(tapir_registry__family(r, "q_sum", "x", TAPIR_GAUGE, NULL, 0, NULL, 0));
	expect_bad(r, "q", TAPIR_HISTOGRAM, NULL, 0, NULL, 0, EEXIST);
	assert_non_null(
		tapir_registry__family(r, "hist_counts", "x", TAPIR_GAUGE, NULL, 0, NULL, 0));
}

static void test_render_oom(void **state)
{
	struct tapir_registry *r = *state;
	struct tapir_buf b;

	tapir_registry__family(r, "g", "G.", TAPIR_GAUGE, NULL, 0, NULL, 0);
	tapir_buf__init(&b);
	b.oom = 1;
	assert_int_equal(tapir_registry__render(r, &b), -ENOMEM);
	tapir_buf__free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_render_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copied_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_labels_no_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_family_and_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_separators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_same_rendering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_series, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kind_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_oom, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
