// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the request families' gauges: set through a cache by label set id, which
 * forgetting the label set empties, so that a reused id never sets the old set's series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "http_metrics.h"
#include "registry.h"

struct fixture {
	struct tapir_config *cfg;
	struct tapir_registry *reg;
	struct tapir_http_metrics *m;
};

static const char *const set_a[TAPIR_L_COUNT] = { "ma", "model-a", "da", "prod", "stable" };
static const char *const set_b[TAPIR_L_COUNT] = { "mb", "model-b", "db", "", "" };

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->cfg = tapir_config__new_default();
	f->reg = tapir_registry__new();
	f->m = f->cfg && f->reg ? tapir_http_metrics__new(f->reg, f->cfg) : NULL;
	*state = f;
	return f->m ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tapir_http_metrics__free(f->m);
	tapir_registry__free(f->reg);
	tapir_config__free(f->cfg);
	free(f);
	return 0;
}

/* The exposition's line for @series, or NULL. */
static char *line_of(struct tapir_registry *reg, const char *series)
{
	struct tapir_buf b;
	char *p, *line = NULL;

	tapir_buf__init(&b);
	assert_int_equal(tapir_registry__render(reg, &b), 0);
	p = strstr(b.data, series);
	if (p)
		line = strndup(p, strcspn(p, "\n"));
	tapir_buf__free(&b);
	return line;
}

static void assert_line(struct tapir_registry *reg, const char *series, const char *want)
{
	char *line = line_of(reg, series);

	if (!want) {
		assert_null(line);
		return;
	}
	assert_non_null(line);
	assert_string_equal(line, want);
	free(line);
}

#define INFLIGHT_A                                                                                 \
	"baseten_concurrent_requests{model_id=\"ma\",model_name=\"model-a\",deployment_id=\"da\"," \
	"environment=\"prod\",rollout_phase=\"stable\"}"
#define WS_A                                                                            \
	"baseten_ongoing_websocket_connections{model_id=\"ma\",model_name=\"model-a\"," \
	"deployment_id=\"da\",environment=\"prod\",rollout_phase=\"stable\"}"
#define INFLIGHT_B                                                                                 \
	"baseten_concurrent_requests{model_id=\"mb\",model_name=\"model-b\",deployment_id=\"db\"," \
	"environment=\"\",rollout_phase=\"\"}"

static void test_gauges_set_and_update(void **state)
{
	struct fixture *f = *state;

	tapir_http_metrics__set_gauges(f->m, 3, set_a, 2, 1);
	assert_int_equal(tapir_registry__n_series(f->reg), 2);
	assert_line(f->reg, INFLIGHT_A, INFLIGHT_A " 2");
	assert_line(f->reg, WS_A, WS_A " 1");
	tapir_http_metrics__set_gauges(f->m, 3, set_a, 5, 0);
	assert_int_equal(tapir_registry__n_series(f->reg), 2);
	assert_line(f->reg, INFLIGHT_A, INFLIGHT_A " 5");
	assert_line(f->reg, WS_A, WS_A " 0");
	/* an id past the first cache size */
	tapir_http_metrics__set_gauges(f->m, 1000, set_b, 7, 0);
	assert_int_equal(tapir_registry__n_series(f->reg), 4);
	assert_line(f->reg, INFLIGHT_B, INFLIGHT_B " 7");
	assert_line(f->reg, INFLIGHT_A, INFLIGHT_A " 5");
}

static void test_forget_then_reuse_id(void **state)
{
	struct fixture *f = *state;

	tapir_http_metrics__set_gauges(f->m, 0, set_a, 4, 2);
	tapir_http_metrics__forget(f->m, 0, set_a);
	assert_int_equal(tapir_registry__n_series(f->reg), 0);
	assert_line(f->reg, INFLIGHT_A, NULL);
	/* id 0 now names another label set: its own series, none of the old one's */
	tapir_http_metrics__set_gauges(f->m, 0, set_b, 1, 0);
	assert_int_equal(tapir_registry__n_series(f->reg), 2);
	assert_line(f->reg, INFLIGHT_B, INFLIGHT_B " 1");
	assert_line(f->reg, INFLIGHT_A, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gauges_set_and_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_then_reuse_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
