// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the Prometheus and OpenMetrics text parser: every construct, and refusals. */
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

#include "promtext.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What the callbacks saw, one line of text per sample or type: "name{a=v,...} value". */
struct seen {
	char lines[64][512];
	size_t n;
};

static int on_type(void *ctx, const char *name, size_t len, enum tapir_prom_type t)
{
	struct seen *s = ctx;

	snprintf(s->lines[s->n++], 512, "TYPE %.*s %d", (int)len, name, (int)t);
	return 0;
}

static int on_sample(void *ctx, const struct tapir_prom_sample *smp)
{
	struct seen *s = ctx;
	char *out = s->lines[s->n++];
	size_t i, off;

	off = snprintf(out, 512, "%.*s{", (int)smp->name_len, smp->name);
	for (i = 0; i < smp->n_labels; i++)
		off += snprintf(out + off, 512 - off, "%s%.*s=%.*s", i ? "," : "",
				(int)smp->labels[i].name_len, smp->labels[i].name,
				(int)smp->labels[i].value_len, smp->labels[i].value);
	snprintf(out + off, 512 - off, "} %g%s", smp->value, smp->has_timestamp ? " ts" : "");
	return 0;
}

static const struct tapir_prom_ops ops = { .type = on_type, .sample = on_sample };

static int parse(const char *text, struct seen *s, struct tapir_prom_error *err)
{
	memset(s, 0, sizeof(*s));
	return tapir_prom_parse(text, strlen(text), 0, &ops, s, err);
}

static void test_prometheus_text(void **state)
{
	const char *text = "# HELP vllm:num_requests_running Number of requests.\n"
			   "# TYPE vllm:num_requests_running gauge\n"
			   "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3.0\n"
			   "\n"
			   "# a comment\n"
			   "plain 1e3 1712345678000\n"
			   "tab{ a = \"x\" , } \t -2.5e-1\r\n"
			   "h_bucket{le=\"+Inf\"} 7\n"
			   "inf +Inf\nninf -Inf\nnan NaN\n";
	struct seen s;

	assert_int_equal(parse(text, &s, NULL), 0);
	assert_int_equal(s.n, 8);
	assert_string_equal(s.lines[0], "TYPE vllm:num_requests_running 2");
	assert_string_equal(s.lines[1], "vllm:num_requests_running{model_name=m,engine=0} 3");
	assert_string_equal(s.lines[2], "plain{} 1000 ts");
	assert_string_equal(s.lines[3], "tab{a=x} -0.25");
	assert_string_equal(s.lines[4], "h_bucket{le=+Inf} 7");
	assert_string_equal(s.lines[5], "inf{} inf");
	assert_string_equal(s.lines[6], "ninf{} -inf");
	assert_string_equal(s.lines[7], "nan{} nan");
}

static void test_escapes(void **state)
{
	const char *text = "m{a=\"q\\\"b\\\\s\\nn\",b=\"\"} 1\n";
	struct seen s;

	assert_int_equal(parse(text, &s, NULL), 0);
	assert_string_equal(s.lines[0], "m{a=q\"b\\s\nn,b=} 1");
}

/* What prometheus_client serves when asked for OpenMetrics: _total/_created, exemplars, EOF. */
static void test_openmetrics(void **state)
{
	const char *text = "# HELP sglang:prompt_tokens Number of prefill tokens processed.\n"
			   "# TYPE sglang:prompt_tokens counter\n"
			   "# UNIT x_seconds seconds\n"
			   "sglang:prompt_tokens_total{model_name=\"m\"} 7.0\n"
			   "sglang:prompt_tokens_created{model_name=\"m\"} 1.7e+09\n"
			   "# TYPE t histogram\n"
			   "t_bucket{le=\"0.1\"} 2.0 # {trace_id=\"abc\"} 0.05 1.7e+09\n"
			   "t_count 2.0 1.5\n"
			   "# TYPE s unknown\n"
			   "# EOF\n";
	struct seen s;

	assert_int_equal(parse(text, &s, NULL), 0);
	assert_int_equal(s.n, 7);
	assert_string_equal(s.lines[0], "TYPE sglang:prompt_tokens 1");
	assert_string_equal(s.lines[1], "sglang:prompt_tokens_total{model_name=m} 7");
	assert_string_equal(s.lines[4], "t_bucket{le=0.1} 2");
	assert_string_equal(s.lines[5], "t_count{} 2 ts");
	assert_string_equal(s.lines[6], "TYPE s 0");
}

static void test_refused(void **state)
{
	static const struct {
		const char *text;
		size_t line;
		const char *reason;
	} cases[] = {
		{ "ok 1\n9bad 1\n", 2, "expected a metric name" },
		{ "m{a=\"x\n", 1, "unterminated label value" },
		{ "m{a=\"x\"\n", 1, "expected ',' or '}'" },
		{ "m{a=x} 1\n", 1, "expected a quoted label value" },
		{ "m{a=\"\\t\"} 1\n", 1, "unknown escape in a label value" },
		{ "m{a=\"1\",a=\"2\"} 1\n", 1, "duplicate label" },
		{ "m{a=\"1\" b=\"2\"} 1\n", 1, "expected ',' or '}'" },
		{ "m{1a=\"1\"} 1\n", 1, "expected a label name" },
		{ "m 0x10\n", 1, "junk in a number" },
		{ "m 1.5x\n", 1, "junk in a number" },
		{ "m 1e\n", 1, "bad exponent" },
		{ "m\n", 1, "expected a blank before the value" },
		{ "m 1 2 3\n", 1, "junk after the value" },
		{ "m{a=\"1\"}1\n", 1, "expected a blank before the value" },
		{ "# TYPE m wibble\n", 1, "unknown metric type" },
		{ "# EOF\nm 1\n", 2, "text after # EOF" },
		{ "m .\n", 1, "expected a number" },
	};
	struct tapir_prom_error err;
	struct seen s;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(parse(cases[i].text, &s, &err), -EINVAL);
		assert_int_equal(err.line, cases[i].line);
		assert_string_equal(err.reason, cases[i].reason);
	}
}

static void test_limits(void **state)
{
	char *text, *p;
	struct tapir_prom_error err;
	struct seen s;
	size_t i;

	/* A NUL byte anywhere. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(tapir_prom_parse("m 1\n\0", 5, 0, &ops, &s, &err), -EINVAL);
	/* A value one byte over the limit, and one at it. */
	text = malloc(TAPIR_PROM_MAX_LABEL_LEN + 64);
	p = text + sprintf(text, "m{a=\"");
	memset(p, 'x', TAPIR_PROM_MAX_LABEL_LEN + 1);
	strcpy(p + TAPIR_PROM_MAX_LABEL_LEN + 1, "\"} 1\n");
	assert_int_equal(parse(text, &s, &err), -EINVAL);
	assert_string_equal(err.reason, "label value too long");
	strcpy(p + TAPIR_PROM_MAX_LABEL_LEN, "\"} 1\n");
	memset(&s, 0, sizeof(s));
	assert_int_equal(
		tapir_prom_parse(text, strlen(text), 0, &(struct tapir_prom_ops){ 0 }, NULL, &err),
		0);
	free(text);
	/* 33 labels. */
	text = malloc(33 * 16 + 16);
	p = text + sprintf(text, "m{");
	for (i = 0; i < 33; i++)
		p += sprintf(p, "l%zu=\"v\",", i);
	strcpy(p, "} 1\n");
	assert_int_equal(parse(text, &s, &err), -EINVAL);
	assert_string_equal(err.reason, "too many labels");
	free(text);
	/* Samples past the cap. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(tapir_prom_parse("a 1\nb 2\nc 3\n", 12, 2, &ops, &s, &err), -E2BIG);
	assert_int_equal(s.n, 2);
}

static int stop_at_second(void *ctx, const struct tapir_prom_sample *smp)
{
	return ++*(int *)ctx == 2 ? -ECANCELED : 0;
}

static void test_callback_stops(void **state)
{
	const struct tapir_prom_ops stop = { .sample = stop_at_second };
	int calls = 0;

	assert_int_equal(tapir_prom_parse("a 1\nb 2\nc 3\n", 12, 0, &stop, &calls, NULL),
			 -ECANCELED);
	assert_int_equal(calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_text), cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_openmetrics),	cmocka_unit_test(test_refused),
		cmocka_unit_test(test_limits),		cmocka_unit_test(test_callback_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
