// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the async families: enqueue time formats, fields of a head, which requests are
 * jobs and submits, the queue from arrivals and answers, webhooks, and forgetting a label set. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "async.h"
#include "buf.h"
#include "config.h"
#include "registry.h"

static const char rules[] = "outbound:\n"
			    "  destinations: [{name: hooks, port: 9000}, {name: api}]\n"
			    "deployments:\n"
			    "  - cgroup: /model\n"
			    "    async:\n"
			    "      paths: [\"/predict\", \"/jobs/*/run\"]\n"
			    "      header: \"X-Async: 1\"\n"
			    "      submit_paths: [\"/async/*\"]\n"
			    "      webhook: {destination: hooks}\n"
			    "  - cgroup: /nogateway\n"
			    "    async:\n"
			    "      header: X-Job\n"
			    "      enqueue_headers: [X-Enqueued, X-Request-Start]\n";

static const char *const labels[] = { "m", "model", "d", "", "" };
static const char *const labels2[] = { "m2", "model2", "d2", "", "" };

struct fixture {
	struct tapir_config *cfg;
	struct tapir_registry *reg;
	struct tapir_async *a;
	const struct tapir_async_rule *gw, *plain;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	*state = f;
	if (tapir_config__parse("test.yaml", rules, strlen(rules), &f->cfg, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	f->gw = f->cfg->rules[0].async;
	f->plain = f->cfg->rules[1].async;
	f->reg = tapir_registry__new();
	f->a = f->reg ? tapir_async__new(f->reg, f->cfg) : NULL;
	return f->a ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tapir_async__free(f->a);
	tapir_registry__free(f->reg);
	tapir_config__free(f->cfg);
	free(f);
	return 0;
}

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

/* @want is a whole line of the exposition (or, with @absent, no line starts with it). */
static void expect_line(struct tapir_registry *reg, const char *want, bool absent)
{
	char *text = render(reg), *at = strstr(text, want);

	while (at && at != text && at[-1] != '\n')
		at = strstr(at + 1, want);
	if (absent && at)
		fail_msg("unexpected: %s", want);
	if (!absent && (!at || at[strlen(want)] != '\n'))
		fail_msg("missing: %s\n%s", want, text);
	free(text);
}

#define HAS(reg, line)	  expect_line(reg, line, false)
#define HAS_NO(reg, line) expect_line(reg, line, true)
#define SET \
	"model_id=\"m\",model_name=\"model\",deployment_id=\"d\",environment=\"\",rollout_phase=\"\""
/* The reason comes after deployment_id, as status_code does in the request families. */
#define REASON(r)                                                             \
	"model_id=\"m\",model_name=\"model\",deployment_id=\"d\",reason=\"" r \
	"\",environment=\"\",rollout_phase=\"\""

static void test_enqueue_time(void **state)
{
	static const struct {
		const char *v;
		double want; /* 0: refused */
	} cases[] = {
		{ "t=1733440000.123456", 1733440000.123456 }, /* seconds with a fraction */
		{ "1733440000", 1733440000 },
		{ "1733440000.5", 1733440000.5 },
		{ "1733440000123", 1733440000.123 },	   /* milliseconds */
		{ "t=1733440000123", 1733440000.123 },	   /* nginx's t=${msec} without a dot */
		{ "1733440000123456", 1733440000.123456 }, /* microseconds (t= too) */
		{ "t=1733440000123456", 1733440000.123456 },
		{ "1733440000123456789", 1733440000.123456789 }, /* nanoseconds */
		{ "99999999999", 99999999999 },			 /* just below 1e11: seconds */
		{ "100000000000", 100000000 },			 /* 1e11: milliseconds */
		{ "", 0 },
		{ "t=", 0 },
		{ "t=abc", 0 },
		{ "-1733440000", 0 },
		{ "1.7e9", 0 },
		{ "0", 0 },
		{ "0x6752", 0 },
		{ "1733440000 ", 0 }, /* the caller trims; a blank inside is garbage */
		{ "inf", 0 },
		{ "nan", 0 },
		{ "123456789012345678901234", 0 }, /* past 1e20 */
		{ "1733440000.1.2", 0 },
	};
	size_t i;
	double got;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = tapir_async_enqueue_time(cases[i].v, strlen(cases[i].v), &got);

		if (!cases[i].want) {
			if (rc != -EINVAL)
				fail_msg("\"%s\" accepted as %f", cases[i].v, got);
			continue;
		}
		if (rc)
			fail_msg("\"%s\" refused", cases[i].v);
		if (got < cases[i].want - 1e-6 || got > cases[i].want + 1e-6)
			fail_msg("\"%s\": %.9f, want %.9f", cases[i].v, got, cases[i].want);
	}
}

static void test_head_field(void **state)
{
	static const char head[] = "POST /predict HTTP/1.1\r\n"
				   "Host: x\r\n"
				   "x-request-start:   t=1733440000.5  \r\n"
				   "X-Empty:\r\n"
				   "X-Request-Start: second\r\n"
				   "X-Request-Started: no\r\n"
				   "\r\n";
	size_t n;
	const char *v;

	(void)state;
	v = tapir_head_field(head, strlen(head), "X-Request-Start", &n);
	assert_non_null(v);
	assert_int_equal(n, strlen("t=1733440000.5"));
	assert_memory_equal(v, "t=1733440000.5", n);
	v = tapir_head_field(head, strlen(head), "x-empty", &n);
	assert_non_null(v);
	assert_int_equal(n, 0);
	assert_null(tapir_head_field(head, strlen(head), "X-Request", &n));
	assert_null(tapir_head_field(head, strlen(head), "POST /predict HTTP/1.1", &n));
	/* Bare LFs, and a head cut short. */
	v = tapir_head_field("GET / HTTP/1.1\nA: b\n\n", 21, "a", &n);
	assert_non_null(v);
	assert_memory_equal(v, "b", n);
	v = tapir_head_field("GET / HTTP/1.1\r\nA: bc", 21, "A", &n);
	assert_non_null(v);
	assert_int_equal(n, 2);
}

/* A head of @line with @fields (each ending in CRLF). */
static int head(struct fixture *f, const struct tapir_async_rule *r, uint32_t id,
		const char *const *l, double arrival, const char *line, const char *fields)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "%s HTTP/1.1\r\nHost: x\r\n%s\r\n", line, fields);

	return tapir_async__head(f->a, r, id, l, arrival, buf, n);
}

static struct tapir_http_event rec(const char *line, __u16 status, __u8 outcome)
{
	struct tapir_http_event e = { .type = TAPIR_REC_HTTP,
				      .status = status,
				      .outcome = outcome,
				      .start_ns = 1000,
				      .end_ns = 1000 + 250000000 };

	strncpy((char *)e.line, line, sizeof(e.line));
	return e;
}

static void test_classify(void **state)
{
	struct fixture *f = *state;
	const double now = 1733440000;

	assert_int_equal(head(f, f->gw, 0, labels, now, "POST /predict", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST /predict?x=1", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST /jobs/7/run", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	/* fnmatch without FNM_PATHNAME: '*' crosses '/' */
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST /jobs/a/b/run", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST /predict/x", ""), TAPIR_ASYNC_SEEN);
	assert_int_equal(head(f, f->gw, 0, labels, now, "GET /sync", "X-Async: 1\r\n"),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "GET /sync", "x-async: 1\r\n"),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "GET /sync", "X-Async: 10\r\n"),
			 TAPIR_ASYNC_SEEN);
	/* A proxy's absolute-form target. */
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST http://model:8080/predict", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST https://model:8443/predict", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST http://model", ""), TAPIR_ASYNC_SEEN);
	assert_int_equal(head(f, f->gw, 0, labels, now, "POST /async/predict", ""),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_SUBMIT);
	/* Any value of a bare header name. */
	assert_int_equal(head(f, f->plain, 1, labels2, now, "POST /x", "X-Job: anything\r\n"),
			 TAPIR_ASYNC_SEEN | TAPIR_ASYNC_JOB);
	assert_int_equal(head(f, f->plain, 1, labels2, now, "POST /x", ""), TAPIR_ASYNC_SEEN);
}

static void test_queue_time(void **state)
{
	struct fixture *f = *state;
	const double now = 1733440000.5;

	head(f, f->gw, 0, labels, now, "POST /predict", "X-Request-Start: t=1733440000.25\r\n");
	head(f, f->gw, 0, labels, now, "POST /predict", "X-Queue-Start: 1733440000000\r\n");
	/* The first enqueue field present wins, even when malformed. */
	head(f, f->gw, 0, labels, now, "POST /predict",
	     "X-Request-Start: garbage\r\nX-Queue-Start: 1733440000000\r\n");
	head(f, f->gw, 0, labels, now, "POST /predict", "");
	head(f, f->gw, 0, labels, now, "POST /predict", "X-Request-Start: t=4102444800.0\r\n");
	/* Within a millisecond after arrival: rounding, so 0 s. */
	head(f, f->gw, 0, labels, now, "POST /predict", "X-Request-Start: 1733440000500500\r\n");
	HAS(f->reg, "baseten_time_in_async_queue_seconds_count{" SET "} 3");
	HAS(f->reg, "baseten_time_in_async_queue_seconds_sum{" SET "} 0.75");
	HAS(f->reg, "baseten_time_in_async_queue_seconds_bucket{" SET ",le=\"0.005\"} 1");
	HAS(f->reg, "baseten_time_in_async_queue_seconds_bucket{" SET ",le=\"0.25\"} 2");
	HAS(f->reg, "baseten_time_in_async_queue_seconds_bucket{" SET ",le=\"0.5\"} 3");
	HAS(f->reg, "tapir_async_queue_time_unknown_total{" REASON("absent") "} 1");
	HAS(f->reg, "tapir_async_queue_time_unknown_total{" REASON("malformed") "} 1");
	HAS(f->reg, "tapir_async_queue_time_unknown_total{" REASON("future") "} 1");
	/* A rule's own enqueue fields only. */
	head(f, f->plain, 1, labels2, now, "POST /x",
	     "X-Job: 1\r\nX-Queue-Start: 1733440000000\r\n");
	head(f, f->plain, 1, labels2, now, "POST /x", "X-Job: 1\r\nX-Enqueued: 1733440000\r\n");
	HAS(f->reg, "baseten_time_in_async_queue_seconds_sum{model_id=\"m2\",model_name=\"model2\","
		    "deployment_id=\"d2\",environment=\"\",rollout_phase=\"\"} 0.5");
	HAS(f->reg,
	    "tapir_async_queue_time_unknown_total{model_id=\"m2\",model_name=\"model2\","
	    "deployment_id=\"d2\",reason=\"absent\",environment=\"\",rollout_phase=\"\"} 1");
	/* No gateway, no queue. */
	HAS_NO(f->reg, "baseten_async_queue_size{model_id=\"m2\"");
}

static void test_queue(void **state)
{
	struct fixture *f = *state;
	struct tapir_http_event e;
	const double now = 1733440000;
	int i, m;

	/* A gateway's queue shows from its first request. */
	head(f, f->gw, 0, labels, now, "GET /healthz", "");
	HAS(f->reg, "baseten_async_queue_size{" SET "} 0");
	/* A job dispatched with nothing queued: one queued before tapir started. */
	head(f, f->gw, 0, labels, now, "POST /predict", "");
	HAS(f->reg, "baseten_async_queue_size{" SET "} 0");
	for (i = 0; i < 3; i++) {
		m = head(f, f->gw, 0, labels, now, "POST /async/predict", "");
		e = rec("POST /async/predict", 202, TAPIR_OUT_COMPLETE);
		assert_int_equal(tapir_async__record(f->a, f->gw, 0, labels, &e, m), m);
	}
	HAS(f->reg, "baseten_async_queue_size{" SET "} 3");
	/* Refused, or cut short: out again once answered. */
	m = head(f, f->gw, 0, labels, now, "POST /async/predict", "");
	HAS(f->reg, "baseten_async_queue_size{" SET "} 4");
	e = rec("POST /async/predict", 422, TAPIR_OUT_COMPLETE);
	tapir_async__record(f->a, f->gw, 0, labels, &e, m);
	m = head(f, f->gw, 0, labels, now, "POST /async/predict", "");
	e = rec("POST /async/predict", 0, TAPIR_OUT_CLIENT_ABORT);
	tapir_async__record(f->a, f->gw, 0, labels, &e, m);
	HAS(f->reg, "baseten_async_queue_size{" SET "} 3");
	/* A job dispatched before its submit's answer was recorded: its arrival came first. */
	m = head(f, f->gw, 0, labels, now, "POST /async/predict", "");
	head(f, f->gw, 0, labels, now, "POST /predict", "");
	e = rec("POST /async/predict", 202, TAPIR_OUT_COMPLETE);
	tapir_async__record(f->a, f->gw, 0, labels, &e, m);
	HAS(f->reg, "baseten_async_queue_size{" SET "} 3");
	/* Heads lost: the record's line decides, late. */
	e = rec("POST /async/predict", 200, TAPIR_OUT_COMPLETE);
	assert_int_equal(tapir_async__record(f->a, f->gw, 0, labels, &e, -1), TAPIR_ASYNC_SUBMIT);
	HAS(f->reg, "baseten_async_queue_size{" SET "} 4");
	e = rec("POST /predict", 200, TAPIR_OUT_COMPLETE);
	assert_int_equal(tapir_async__record(f->a, f->gw, 0, labels, &e, -1), TAPIR_ASYNC_JOB);
	HAS(f->reg, "baseten_async_queue_size{" SET "} 3");
	HAS(f->reg, "tapir_async_queue_time_unknown_total{" REASON("lost") "} 1");
	/* No head handed over at all (pipelined behind another request in one read). */
	e = rec("POST /predict", 200, TAPIR_OUT_COMPLETE);
	assert_int_equal(tapir_async__record(f->a, f->gw, 0, labels, &e, TAPIR_ASYNC_NO_HEAD),
			 TAPIR_ASYNC_JOB);
	HAS(f->reg, "baseten_async_queue_size{" SET "} 2");
	HAS(f->reg, "tapir_async_queue_time_unknown_total{" REASON("not_captured") "} 1");
	for (i = 0; i < 4; i++)
		head(f, f->gw, 0, labels, now, "POST /predict", "");
	HAS(f->reg, "baseten_async_queue_size{" SET "} 0");
}

static void test_webhooks(void **state)
{
	struct fixture *f = *state;
	struct tapir_http_event e = rec("POST /hook/1", 500, TAPIR_OUT_COMPLETE);

	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "hooks");
	e = rec("POST /hook/2", 200, TAPIR_OUT_COMPLETE);
	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "hooks");
	e = rec("POST /hook/3", 0, TAPIR_OUT_SERVER_ABORT);
	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "hooks");
	/* Another method, another destination, a rule without webhooks: none. */
	e = rec("GET /hook/4", 200, TAPIR_OUT_COMPLETE);
	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "hooks");
	e = rec("POSTS /hook/5", 200, TAPIR_OUT_COMPLETE);
	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "hooks");
	e = rec("POST /hook/6", 200, TAPIR_OUT_COMPLETE);
	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "api");
	tapir_async__outbound(f->a, f->plain, 1, labels2, &e, "hooks");
	HAS(f->reg, "baseten_async_webhook_requests_total{" SET "} 3");
	HAS(f->reg, "baseten_async_webhook_latency_seconds_sum{" SET "} 0.75");
	HAS(f->reg, "baseten_async_webhook_latency_seconds_bucket{" SET ",le=\"0.25\"} 3");
	HAS_NO(f->reg, "baseten_async_webhook_requests_total{model_id=\"m2\"");
}

static void test_forget(void **state)
{
	struct fixture *f = *state;
	struct tapir_http_event e = rec("POST /hook/1", 200, TAPIR_OUT_COMPLETE);

	head(f, f->gw, 0, labels, 1e9, "POST /predict", "X-Request-Start: 999999999\r\n");
	head(f, f->gw, 0, labels, 1e9, "POST /predict", "");
	head(f, f->gw, 0, labels, 1e9, "POST /async/x", "");
	tapir_async__outbound(f->a, f->gw, 0, labels, &e, "hooks");
	head(f, f->plain, 1, labels2, 1e9, "POST /x", "X-Job: 1\r\n");
	tapir_async__forget(f->a, 0, labels);
	HAS_NO(f->reg, "baseten_time_in_async_queue_seconds_count{" SET);
	HAS_NO(f->reg, "baseten_async_queue_size{" SET);
	HAS_NO(f->reg, "baseten_async_webhook_requests_total{" SET);
	HAS_NO(f->reg, "tapir_async_queue_time_unknown_total{model_id=\"m\",");
	HAS(f->reg,
	    "tapir_async_queue_time_unknown_total{model_id=\"m2\",model_name=\"model2\","
	    "deployment_id=\"d2\",reason=\"absent\",environment=\"\",rollout_phase=\"\"} 1");
	/* It comes back from zero. */
	head(f, f->gw, 0, labels, 1e9, "POST /async/x", "");
	HAS(f->reg, "baseten_async_queue_size{" SET "} 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enqueue_time),
		cmocka_unit_test(test_head_field),
		cmocka_unit_test_setup_teardown(test_classify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhooks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
