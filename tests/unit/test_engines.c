// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for what engines.c makes of the scraper's rounds: the scraper and the cgroups are
 * this file's (the linker takes a symbol from libtapir.a only when no object defines it), so
 * that each round's outcomes are the test's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgroups.h"
#include "config.h"
#include "engine_scrape.h"
#include "engines.h"
#include "registry.h"
#include "replica_table.h"

/* --- the scraper and the cgroups, as the test says ---------------------------------------- */

struct tapir_engine_scraper {
	int unused;
};

static struct tapir_engine_scraper scraper;
static struct tapir_engine_outcome *next_out;
static size_t next_n;
static int collect_ret = -EAGAIN, submit_ret;
static unsigned int submits;

struct tapir_engine_scraper *tapir_engine_scraper__new(const struct tapir_config *cfg,
						       int own_clients_fd)
{
	return &scraper;
}

void tapir_engine_scraper__free(struct tapir_engine_scraper *s)
{
}

int tapir_engine_scraper__submit(struct tapir_engine_scraper *s, struct tapir_engine_job *jobs,
				 size_t n)
{
	tapir_engine_jobs__free(jobs, n);
	submits++;
	return submit_ret;
}

int tapir_engine_scraper__collect(struct tapir_engine_scraper *s, struct tapir_engine_outcome **out,
				  size_t *n)
{
	int ret = collect_ret;

	*out = next_out;
	*n = next_n;
	next_out = NULL;
	next_n = 0;
	collect_ret = -EAGAIN;
	return ret;
}

void tapir_engine_outcomes__free(struct tapir_engine_outcome *o, size_t n)
{
	while (o && n--)
		tapir_engine_metrics__clear(&o[n].metrics);
	free(o);
}

/* No cgroup is watched here, so no job has directories. */
void tapir_engine_jobs__free(struct tapir_engine_job *jobs, size_t n)
{
	free(jobs);
}

const char *tapir_engine_error_name(enum tapir_engine_error e)
{
	return e == TAPIR_EE_TIMEOUT ? "timeout" : e == TAPIR_EE_STOPPED ? "stopped" : "other";
}

static const char *const pod_labels[TAPIR_L_COUNT] = { "mid", "mname", "dep1", "prod", "stable" };

const char *const *tapir_cgroups__labels(const struct tapir_cgroups *cg, uint32_t id)
{
	return pod_labels;
}

const struct tapir_watched *tapir_cgroups__watched(const struct tapir_cgroups *cg, size_t *n)
{
	*n = 0;
	return NULL;
}

const char *tapir_cgroups__root(const struct tapir_cgroups *cg)
{
	return "/sys/fs/cgroup";
}

int tapir_cgroup_matches(const char *glob, const char *rel)
{
	return 0;
}

/* --- fixture ------------------------------------------------------------------------------ */

#define POD "/kubepods.slice/kubepods-pod0a1b2c3d_0000_1111_2222_333344445555.slice"

struct fx {
	struct tapir_registry *reg;
	struct tapir_config *cfg;
	struct tapir_replicas rs;
	struct replica r[2];
	char rel[2][256];
	struct tapir_engines *e;
	struct tapir_buf out;
	uint64_t now_ms;
};

/* Two replicas (containers of one pod, labels_id 7) named @name0 and @name1. */
static void fx_init(struct fx *x, const char *name0, const char *name1)
{
	int i;

	memset(x, 0, sizeof(*x));
	x->reg = tapir_registry__new();
	x->cfg = tapir_config__new_default();
	assert_non_null(x->reg);
	assert_non_null(x->cfg);
	for (i = 0; i < 2; i++) {
		snprintf(x->rel[i], sizeof(x->rel[i]), POD "/cri-containerd-%064d.scope", i);
		x->r[i].id = i + 1;
		x->r[i].labels_id = 7;
		x->r[i].rel = x->rel[i];
		x->r[i].present = true;
		snprintf(x->r[i].name, sizeof(x->r[i].name), "%s", i ? name1 : name0);
	}
	x->rs.r = x->r;
	x->rs.n = 2;
	x->e = tapir_engines__new(x->reg, x->cfg, NULL, &x->rs, -1);
	assert_non_null(x->e);
	tapir_buf__init(&x->out);
	x->now_ms = 100000;
	submits = 0;
	submit_ret = 0;
}

static void fx_fini(struct fx *x)
{
	tapir_engines__free(x->e);
	tapir_buf__free(&x->out);
	tapir_registry__free(x->reg);
	tapir_config__free(x->cfg);
}

/* One outcome: @text scraped from replica @id, or @err. */
static void outcome(struct tapir_engine_outcome *o, uint64_t id, enum tapir_engine_error err,
		    const char *text)
{
	memset(o, 0, sizeof(*o));
	o->replica_id = id;
	o->kind = TAPIR_ENGINE_VLLM;
	o->error = err;
	if (!err)
		assert_int_equal(tapir_engine_metrics__parse(&o->metrics, TAPIR_ENGINE_VLLM, text,
							     strlen(text), 1000),
				 0);
}

/* A round: submitted at the tick, its @n outcomes collected at the next. */
static void round_of(struct fx *x, struct tapir_engine_outcome *out, size_t n, int ret)
{
	tapir_engines__tick(x->e, x->now_ms);
	next_out = out;
	next_n = n;
	collect_ret = ret;
	tapir_engines__refresh(x->e, x->now_ms + 1);
	x->now_ms += 100000;
}

/* A round with replica @id's one outcome. */
static void round_one(struct fx *x, uint64_t id, enum tapir_engine_error err, const char *text)
{
	struct tapir_engine_outcome *out = calloc(1, sizeof(*out));

	assert_non_null(out);
	outcome(out, id, err, text);
	round_of(x, out, 1, 0);
}

static const char *render(struct fx *x)
{
	tapir_buf__reset(&x->out);
	assert_int_equal(tapir_registry__render(x->reg, &x->out), 0);
	return x->out.data ? x->out.data : "";
}

#define SPEC	"baseten_llm_spec_decode_num_accepted_tokens_total{"
#define SPEC5	"vllm:spec_decode_num_accepted_tokens_total 5\n"
#define SPEC7	"vllm:spec_decode_num_accepted_tokens_total 7\n"
#define RUNNING "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 1\n"

/* The figure of the one baseten_llm_spec_decode_num_accepted_tokens_total series, or -1. */
static double spec_value(struct fx *x)
{
	const char *p = strstr(render(x), SPEC);

	if (!p)
		return -1;
	assert_null(strstr(p + 1, SPEC));
	return strtod(strchr(p, '}') + 1, NULL);
}

/* --- tests -------------------------------------------------------------------------------- */

/*
 * Two engines in one pod print one baseten_llm_* label set: the first to make the series keeps
 * it, and when it goes the other takes the series over instead of writing a freed one.
 */
static void test_one_pod_two_engines(void **state)
{
	struct tapir_engine_outcome *out;
	struct fx x;

	fx_init(&x, "c0", "c1");
	out = calloc(2, sizeof(*out));
	outcome(&out[0], 1, TAPIR_EE_NONE, SPEC5);
	outcome(&out[1], 2, TAPIR_EE_NONE, SPEC7);
	round_of(&x, out, 2, 0);
	assert_true(spec_value(&x) == 5);

	/* Replica 1's engine is gone: its series goes, and replica 2's figures take its place. */
	out = calloc(2, sizeof(*out));
	out[0] = (struct tapir_engine_outcome){ .replica_id = 1 };
	outcome(&out[1], 2, TAPIR_EE_NONE, SPEC7);
	round_of(&x, out, 2, 0);
	assert_true(spec_value(&x) == 7);

	round_one(&x, 2, TAPIR_EE_NONE, SPEC7);
	assert_true(spec_value(&x) == 7);
	fx_fini(&x);
}

/*
 * A replica back in a new cgroup under the same name, its engine answering in the first round
 * after the old cgroup went: the new target makes the series once the old one removed them.
 */
static void test_replica_back_in_new_cgroup(void **state)
{
	struct fx x;

	fx_init(&x, "vllm", "vllm");
	round_one(&x, 1, TAPIR_EE_NONE, RUNNING);
	assert_non_null(strstr(render(&x), "vllm:num_requests_running{"));

	x.r[0].present = false;
	round_one(&x, 2, TAPIR_EE_NONE, RUNNING);
	assert_non_null(strstr(render(&x), "vllm:num_requests_running{"));

	round_one(&x, 2, TAPIR_EE_NONE, RUNNING);
	assert_non_null(strstr(render(&x), "vllm:num_requests_running{"));
	fx_fini(&x);
}

/* A failed scrape takes the engine's series, not what tapir derived from earlier ones. */
static void test_error_keeps_derived(void **state)
{
	struct fx x;

	fx_init(&x, "c0", "c1");
	round_one(&x, 1, TAPIR_EE_NONE, SPEC5 RUNNING);
	assert_non_null(strstr(render(&x), "vllm:num_requests_running{"));

	round_one(&x, 1, TAPIR_EE_TIMEOUT, NULL);
	assert_null(strstr(render(&x), "vllm:num_requests_running{"));
	assert_true(spec_value(&x) == 5);
	assert_non_null(
		strstr(render(&x), "tapir_engine_scrape_errors_total{reason=\"timeout\"} 1"));
	fx_fini(&x);
}

/* A round that finished without outcomes (no memory for them) ends the round all the same. */
static void test_round_without_outcomes(void **state)
{
	struct fx x;

	fx_init(&x, "c0", "c1");
	round_one(&x, 1, TAPIR_EE_NONE, RUNNING);
	round_of(&x, NULL, 0, 0);
	assert_null(strstr(render(&x), "vllm:num_requests_running{"));
	round_of(&x, NULL, 0, -EAGAIN);
	assert_int_equal(submits, 3);
	fx_fini(&x);
}

/* A scraper whose thread stopped: every engine series goes, counted, and no round follows. */
static void test_scraper_stopped(void **state)
{
	struct fx x;

	fx_init(&x, "c0", "c1");
	round_one(&x, 1, TAPIR_EE_NONE, SPEC5 RUNNING);
	round_of(&x, NULL, 0, -ESRCH);
	assert_null(strstr(render(&x), "vllm:num_requests_running{"));
	assert_true(spec_value(&x) == -1);
	assert_non_null(
		strstr(render(&x), "tapir_engine_scrape_errors_total{reason=\"stopped\"} 1"));
	round_of(&x, NULL, 0, -EAGAIN);
	assert_int_equal(submits, 2);

	/* Stopped between rounds: the submit says so. */
	fx_fini(&x);
	fx_init(&x, "c0", "c1");
	submit_ret = -ESRCH;
	round_of(&x, NULL, 0, -EAGAIN);
	round_of(&x, NULL, 0, -EAGAIN);
	assert_int_equal(submits, 1);
	assert_non_null(
		strstr(render(&x), "tapir_engine_scrape_errors_total{reason=\"stopped\"} 1"));
	fx_fini(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_pod_two_engines),
		cmocka_unit_test(test_replica_back_in_new_cgroup),
		cmocka_unit_test(test_error_keeps_derived),
		cmocka_unit_test(test_round_without_outcomes),
		cmocka_unit_test(test_scraper_stopped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
