// SPDX-License-Identifier: GPL-2.0
/* Unit tests for h2_pair.c: an h2c upgrade's 101 record and its stream 1 counted as one request,
 * whichever comes first; a half alone goes out as it is once its hold is over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "h2_pair.h"

struct out {
	struct tapir_http_event e[16];
	int with_result[16];
	size_t n;
};

static void emit(void *ctx, const struct tapir_http_event *e, const struct tapir_h2_result *r)
{
	struct out *o = ctx;

	assert_true(o->n < 16);
	o->e[o->n] = *e;
	o->with_result[o->n++] = r != NULL;
}

/* The HTTP/1.1 request that asked for the upgrade, as the kernel records it: answered 101. */
static struct tapir_http_event upgrade_request(uint64_t sock)
{
	struct tapir_http_event e = { .type = TAPIR_REC_HTTP,
				      .labels_id = 3,
				      .cgroup_id = 77,
				      .sock = sock,
				      .start_ns = 1000,
				      .first_byte_ns = 1500,
				      .end_ns = 1600,
				      .req_bytes = 180,
				      .resp_bytes = 70,
				      .status = 101,
				      .outcome = TAPIR_OUT_UPGRADED,
				      .method = TP_M_GET };

	memcpy(e.line, "GET /v1/models HTTP/1.1", 23);
	return e;
}

static struct tapir_h2_result stream_one(void)
{
	struct tapir_h2_result r = { .stream_id = 1,
				     .status = 200,
				     .grpc_status = TAPIR_H2_GRPC_NONE,
				     .outcome = TAPIR_H2_OUT_COMPLETE,
				     .flags = TAPIR_H2_R_UPGRADE | TAPIR_H2_R_REQ_ENDED,
				     .resp_bytes = 5000,
				     .start_ns = 1700,
				     .first_resp_ns = 1800,
				     .end_ns = 2500 };
	return r;
}

static const struct tapir_h2_who who = { .sock = 0xabc, .cgroup_id = 77, .labels_id = 3 };

static void check_paired(const struct out *o)
{
	const struct tapir_http_event *e = &o->e[0];

	assert_int_equal(o->n, 1);
	assert_true(o->with_result[0]);
	assert_int_equal(e->status, 200);
	assert_int_equal(e->outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e->start_ns, 1000);	  /* the request's */
	assert_int_equal(e->first_byte_ns, 1800); /* the answer's, on stream 1 */
	assert_int_equal(e->end_ns, 2500);
	assert_int_equal(e->req_bytes, 180);
	assert_int_equal(e->resp_bytes, 5000);
	assert_int_equal(e->method, TP_M_GET);
	assert_memory_equal(e->line, "GET /v1/models", 14);
	assert_int_equal(e->labels_id, 3);
	assert_int_equal(e->cgroup_id, 77);
}

static void test_request_then_stream(void **state)
{
	struct out o = { 0 };
	struct tapir_h2_pair *p = tapir_h2_pair__new(4, emit, &o);
	struct tapir_http_event e = upgrade_request(0xabc);
	struct tapir_h2_result r = stream_one();

	(void)state;
	assert_non_null(p);
	tapir_h2_pair__request(p, &e, 10);
	tapir_h2_pair__open(p, 0xabc, 11);
	assert_int_equal(o.n, 0);
	assert_int_equal(tapir_h2_pair__held(p), 1);
	/* A long answer: the 101 of a connection that turned to HTTP/2 waits for it. */
	tapir_h2_pair__expire(p, 10 + 100 * TAPIR_H2_PAIR_HOLD_MS, 0);
	assert_int_equal(o.n, 0);
	tapir_h2_pair__stream(p, &who, &r, 10 + 100 * TAPIR_H2_PAIR_HOLD_MS);
	assert_int_equal(tapir_h2_pair__held(p), 0);
	check_paired(&o);
	tapir_h2_pair__free(p);
}

/* The two rings are drained in either order: stream 1 may be over before its 101 is read. */
static void test_stream_then_request(void **state)
{
	struct out o = { 0 };
	struct tapir_h2_pair *p = tapir_h2_pair__new(4, emit, &o);
	struct tapir_http_event e = upgrade_request(0xabc);
	struct tapir_h2_result r = stream_one();

	(void)state;
	tapir_h2_pair__open(p, 0xabc, 5);
	tapir_h2_pair__stream(p, &who, &r, 10);
	assert_int_equal(o.n, 0);
	assert_int_equal(tapir_h2_pair__held(p), 1); /* the mark went with the stream */
	tapir_h2_pair__request(p, &e, 20);
	check_paired(&o);
	tapir_h2_pair__free(p);

	/* The connection's mark first, then its 101, then (much later) its stream 1. */
	memset(&o, 0, sizeof(o));
	p = tapir_h2_pair__new(4, emit, &o);
	tapir_h2_pair__open(p, 0xabc, 5);
	tapir_h2_pair__request(p, &e, 6);
	assert_int_equal(tapir_h2_pair__held(p), 1);
	tapir_h2_pair__expire(p, 5 + TAPIR_H2_PAIR_OPEN_MS - 1, 0);
	assert_int_equal(o.n, 0);
	tapir_h2_pair__stream(p, &who, &r, 5 + TAPIR_H2_PAIR_OPEN_MS - 1);
	check_paired(&o);
	tapir_h2_pair__free(p);
}

/* A 101 with no HTTP/2 after it (a WebSocket) is the 101 it was, once its hold is over. */
static void test_lone_halves_expire(void **state)
{
	struct out o = { 0 };
	struct tapir_h2_pair *p = tapir_h2_pair__new(4, emit, &o);
	struct tapir_http_event e = upgrade_request(0x1);
	struct tapir_h2_result r = stream_one();

	(void)state;
	tapir_h2_pair__request(p, &e, 100);
	tapir_h2_pair__stream(p, &who, &r, 600); /* another socket: no pair */
	tapir_h2_pair__open(p, 0x2, 100);	 /* a mark alone is dropped, never counted */
	tapir_h2_pair__expire(p, 100 + TAPIR_H2_PAIR_HOLD_MS - 1, 0);
	assert_int_equal(o.n, 0);
	tapir_h2_pair__expire(p, 100 + TAPIR_H2_PAIR_HOLD_MS, 0);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.e[0].status, 101);
	assert_int_equal(o.e[0].outcome, TAPIR_OUT_UPGRADED);
	assert_false(o.with_result[0]);
	tapir_h2_pair__expire(p, 0, 1);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.e[1].status, 200);
	assert_true(o.with_result[1]);
	assert_int_equal(tapir_h2_pair__held(p), 0);
	tapir_h2_pair__free(p);
}

/* A full table lets its oldest half go, counted alone, never lost. */
static void test_full_table(void **state)
{
	struct out o = { 0 };
	struct tapir_h2_pair *p = tapir_h2_pair__new(2, emit, &o);
	struct tapir_http_event e;
	uint64_t s;

	(void)state;
	for (s = 1; s <= 3; s++) {
		e = upgrade_request(s);
		tapir_h2_pair__request(p, &e, s);
	}
	assert_int_equal(o.n, 1);
	assert_int_equal(o.e[0].sock, 1);
	assert_int_equal(tapir_h2_pair__held(p), 2);
	tapir_h2_pair__expire(p, 0, 1);
	assert_int_equal(o.n, 3);
	assert_null(tapir_h2_pair__new(0, emit, &o));
	tapir_h2_pair__free(p);
}

/* A connection that ended, lost its frames or gave its address to a new one: the 101 held for
 * its stream 1 goes uncounted (h2_track reported that stream or counted it lost); a 101 still
 * waiting to learn whether HTTP/2 follows stays. */
static void test_end_settles(void **state)
{
	struct out o = { 0 };
	struct tapir_h2_pair *p = tapir_h2_pair__new(4, emit, &o);
	struct tapir_http_event e = upgrade_request(0xabc), other = upgrade_request(0xdef);
	struct tapir_h2_result r = stream_one();

	(void)state;
	tapir_h2_pair__request(p, &e, 10);
	tapir_h2_pair__open(p, 0xabc, 11);
	tapir_h2_pair__request(p, &other, 12);
	tapir_h2_pair__end(p, 0xabc);
	tapir_h2_pair__end(p, 0xdef);
	assert_int_equal(tapir_h2_pair__held(p), 1);
	/* A new upgrade at the first address pairs with its own 101, not the old one. */
	e.start_ns = 9000;
	tapir_h2_pair__request(p, &e, 20);
	tapir_h2_pair__open(p, 0xabc, 21);
	tapir_h2_pair__stream(p, &who, &r, 22);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.e[0].start_ns, 9000);
	tapir_h2_pair__expire(p, 12 + TAPIR_H2_PAIR_HOLD_MS, 0);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.e[1].sock, 0xdef);
	assert_int_equal(o.e[1].status, 101);
	assert_int_equal(tapir_h2_pair__held(p), 0);
	tapir_h2_pair__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_then_stream),
		cmocka_unit_test(test_stream_then_request),
		cmocka_unit_test(test_lone_halves_expire),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_end_settles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
