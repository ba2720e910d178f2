// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the HTTP/2 path from the kernel's records to requests: real HTTP/2 from nghttp2
 * walked by the frame walker through include/tapir/h2_conn.h (what bpf/http.bpf.c runs), its
 * records fed to user/sources/h2_track.c, and each finished stream turned into a request record.
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

#include "h2_talk.h"
#include "h2_track.h"
#include <linux/types.h>

#include "tapir/http.h"
#include "tapir/h2_frame.h"

/* The kernel's side: records built as http.bpf.c builds them, into the tracker directly. */
struct env {
	struct tapir_h2_track *t;
	const uint8_t *step; /* the step's bytes */
	uint64_t ts;
	int fail_block; /* the next block record is not sent, as when the ring is full */
	int opened;	/* the connection's TAPIR_H2R_OPEN went in already (replay() sends one) */
	size_t records;
};

struct tapir_h2_conn_state;
static int tapir_h2_emit(struct env *env, struct tapir_h2_conn_state *h, __u32 d, __u8 kind,
			 __u32 sid, __u32 value, __u32 value2, __u8 flags, __u32 off, __u32 len);
#define TAPIR_H2_ENV struct env
#include "tapir/h2_conn.h"

#define SOCK 0xffff888012345678ULL
#define CGID 4242

static int tapir_h2_emit(struct env *env, struct tapir_h2_conn_state *h, __u32 d, __u8 kind,
			 __u32 sid, __u32 value, __u32 value2, __u8 flags, __u32 off, __u32 len)
{
	static uint8_t rec[sizeof(struct tapir_h2_rec) + TAPIR_H2_BLOCK_BYTES];
	struct tapir_h2_rec *e = (struct tapir_h2_rec *)rec;

	assert_true(len <= TAPIR_H2_BLOCK_BYTES);
	if (env->fail_block && kind == TAPIR_H2R_BLOCK && len) {
		env->fail_block = 0;
		h->lost[d] = 1;
		return -1;
	}
	memset(e, 0, sizeof(*e));
	e->type = TAPIR_REC_H2;
	e->labels_id = 7;
	e->sock = SOCK;
	e->cgroup_id = CGID;
	e->ts = env->ts;
	e->tgid = 99;
	e->stream_id = sid;
	e->value = value;
	e->value2 = value2;
	e->kind = kind;
	e->dir = d;
	e->flags = flags | (h->lost[d] ? TAPIR_H2R_F_LOST : 0);
	e->len = len;
	memcpy(rec + sizeof(*e), env->step + off, len);
	assert_int_equal(tapir_h2_track__record(env->t, rec, sizeof(*e) + len), 0);
	h->lost[d] = 0;
	env->records++;
	return 0;
}

/* What the tracker reported. */
struct done {
	struct tapir_h2_who who[64];
	struct tapir_h2_result r[64];
	size_t n;
};

static void on_done(void *ctx, const struct tapir_h2_who *who, const struct tapir_h2_result *r)
{
	struct done *d = ctx;

	assert_true(d->n < 64);
	d->who[d->n] = *who;
	d->r[d->n++] = *r;
}

static const struct tapir_h2_result *result_of(const struct done *d, uint32_t id, size_t *at)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->r[i].stream_id == id) {
			if (at)
				*at = i;
			return &d->r[i];
		}
	return NULL;
}

/* One syscall's @len bytes of direction @dir, step by step; the blocks given up. */
static int syscall(struct env *env, struct tapir_h2_conn_state *h, int dir, const uint8_t *p,
		   size_t len)
{
	size_t pos = 0;
	int cut = 0;

	while (pos < len) {
		struct tapir_h2_event ev;
		uint8_t win[TH2_WIN] = { 0 };
		size_t left = len - pos, w = tapir_h2_need(&h->w[dir]);
		__u32 n;

		if (w > left)
			w = left;
		memcpy(win, p + pos, w);
		n = tapir_h2_step(&h->w[dir], win, (__u32)w, left, &ev);
		assert_int_not_equal(ev.kind, TH2_EV_ERROR);
		env->step = p + pos;
		cut += tapir_h2_on_step(env, h, dir, &ev);
		pos += n;
	}
	return cut;
}

static void send_end(struct tapir_h2_track *t, __u8 kind);

/* The conversation, write by write (write k at k ms), each cut once more at @split (0: not);
 * first the TAPIR_H2R_OPEN that h2_begin() sends, unless the test sent its own. */
static int replay(struct env *env, const struct talk *t, size_t split, size_t upto)
{
	struct tapir_h2_conn_state h;
	size_t k, from[2] = { 0, 0 };
	int cut = 0;

	if (!env->opened)
		send_end(env->t, TAPIR_H2R_OPEN);
	env->opened = 0;
	tapir_h2_conn_init(&h);
	for (k = 0; k < t->norder && k < upto; k++) {
		int d = t->order[k].dir;
		const uint8_t *p = t->dir[d].bytes.p + from[d];
		size_t len = t->order[k].end - from[d];

		env->ts = (k + 1) * 1000000ULL;
		if (split && split < len) {
			cut += syscall(env, &h, d, p, split);
			cut += syscall(env, &h, d, p + split, len - split);
		} else {
			cut += syscall(env, &h, d, p, len);
		}
		from[d] = t->order[k].end;
	}
	return cut;
}

static void send_end(struct tapir_h2_track *t, __u8 kind)
{
	struct tapir_h2_rec e = { .type = TAPIR_REC_H2,
				  .sock = SOCK,
				  .cgroup_id = CGID,
				  .kind = kind,
				  .ts = 999000000ULL };

	assert_int_equal(tapir_h2_track__record(t, &e, sizeof(e)), 0);
}

static void check_conversation(const struct done *d)
{
	const struct tapir_h2_result *r;
	struct tapir_http_event e;
	size_t at = 0;

	/* Stream 5's 40 KB header block is over the kernel's budget: given up, and its stream
	 * with it (counted there as TAPIR_STAT_H2_BLOCK_CAP). */
	assert_int_equal(d->n, 4);
	assert_null(result_of(d, 5, NULL));

	r = result_of(d, 1, &at);
	assert_non_null(r);
	assert_int_equal(d->who[at].sock, SOCK);
	assert_int_equal(d->who[at].cgroup_id, CGID);
	assert_int_equal(d->who[at].labels_id, 7);
	assert_int_equal(d->who[at].tgid, 99);
	assert_int_equal(r->grpc_status, 0);
	tapir_h2_track__event(&d->who[at], r, &e);
	assert_int_equal(e.type, TAPIR_REC_HTTP);
	assert_int_equal(e.status, 200);
	assert_int_equal(e.outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.method, TP_M_POST);
	assert_int_equal(e.req_bytes, 300);
	assert_int_equal(e.resp_bytes, 1200);
	assert_int_equal(e.cgroup_id, CGID);
	assert_int_equal(e.labels_id, 7);
	assert_int_equal(e.sock, SOCK);
	assert_true(e.start_ns && e.start_ns < e.first_byte_ns && e.first_byte_ns <= e.end_ns);
	/* "POST /helloworld.Greeter/SayHello" cut at the line's 32 bytes, no NUL needed. */
	assert_memory_equal(e.line, "POST /helloworld.Greeter/SayHell", TAPIR_LINE_BYTES);

	r = result_of(d, 3, &at);
	assert_non_null(r);
	tapir_h2_track__event(&d->who[at], r, &e);
	assert_int_equal(e.method, TP_M_GET);
	assert_int_equal(e.status, 200);
	assert_int_equal(e.resp_bytes, 100000);
	assert_int_equal(e.req_bytes, 0);
	assert_string_equal((const char *)e.line, "GET /big?x=1");

	r = result_of(d, 7, &at); /* the client cancelled it: a 499 */
	assert_non_null(r);
	tapir_h2_track__event(&d->who[at], r, &e);
	assert_int_equal(e.outcome, TAPIR_OUT_CLIENT_ABORT);
	assert_int_equal(tapir_status_label(e.outcome, e.status), 499);
	assert_int_equal(e.first_byte_ns, 0);

	r = result_of(d, 9, &at); /* the server refused it: a 502 */
	assert_non_null(r);
	tapir_h2_track__event(&d->who[at], r, &e);
	assert_int_equal(e.outcome, TAPIR_OUT_SERVER_ABORT);
	assert_int_equal(tapir_status_label(e.outcome, e.status), 502);
}

static void test_conversation_to_requests(void **state)
{
	static struct talk t;
	struct done d = { 0 };
	struct env env = { 0 };
	uint64_t lost[TAPIR_H2_LOST_REASONS];
	size_t splits[] = { 0, 1, 5, 9, 10, 17, 100, 4096 };

	(void)state;
	talk_grpc(&t, 0);
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		memset(&d, 0, sizeof(d));
		env.t = tapir_h2_track__new(16, on_done, &d);
		assert_non_null(env.t);
		assert_int_equal(replay(&env, &t, splits[i], SIZE_MAX), 1);
		send_end(env.t, TAPIR_H2R_CLOSE);
		check_conversation(&d);
		assert_int_equal(tapir_h2_track__conns(env.t), 0);
		tapir_h2_track__lost(env.t, lost);
		assert_int_equal(lost[TAPIR_H2_LOST_FRAMING], 0);
		/* The request direction's HPACK table is unknown after the block given up: the
		 * blocks of streams 7 and 9 refer to entries it added. */
		assert_int_equal(lost[TAPIR_H2_LOST_UNDECODED], 2);
		/* Stream 5's answer, whose request never came, counted on after the connection
		 * is gone. */
		assert_int_equal(lost[TAPIR_H2_LOST_UNMATCHED], 1);
		tapir_h2_track__free(env.t);
	}
	talk_free(&t);
}

static void count_open(void *ctx, uint64_t cgroup_id, size_t n)
{
	assert_int_equal(cgroup_id, CGID);
	*(size_t *)ctx += n;
}

/* Frames lost mid-conversation: what was open is dropped and counted, never reported. */
static void test_framing_lost_drops_open_streams(void **state)
{
	static struct talk t;
	struct done d = { 0 };
	struct env env = { 0 };
	uint64_t lost[TAPIR_H2_LOST_REASONS];
	size_t open = 0, k;

	(void)state;
	talk_grpc(&t, 0);
	env.t = tapir_h2_track__new(16, on_done, &d);
	assert_non_null(env.t);
	for (k = 0; k < t.norder && t.order[k].dir == 0; k++)
		;
	replay(&env, &t, 0, k); /* the client's writes before the server's first: five requests */
	tapir_h2_track__inflight(env.t, count_open, &open);
	assert_int_equal(open, 4); /* stream 5's block was given up */
	send_end(env.t, TAPIR_H2R_ERROR);
	assert_int_equal(d.n, 0);
	tapir_h2_track__lost(env.t, lost);
	assert_int_equal(lost[TAPIR_H2_LOST_FRAMING], 4);
	assert_int_equal(tapir_h2_track__conns(env.t), 0);
	tapir_h2_track__free(env.t);
	talk_free(&t);
}

/* A connection begins where one is still held (its end record was lost to a full ring): the old
 * one's streams are dropped and counted, never reported as the new one's. */
static void test_open_drops_a_stale_connection(void **state)
{
	static struct talk t;
	struct done d = { 0 };
	struct env env = { 0 };
	uint64_t lost[TAPIR_H2_LOST_REASONS];
	size_t k;

	(void)state;
	talk_grpc(&t, 0);
	env.t = tapir_h2_track__new(16, on_done, &d);
	assert_non_null(env.t);
	for (k = 0; k < t.norder && t.order[k].dir == 0; k++)
		;
	replay(&env, &t, 0, k);
	assert_int_equal(tapir_h2_track__conns(env.t), 1);
	send_end(env.t, TAPIR_H2R_OPEN);
	assert_int_equal(d.n, 0);
	assert_int_equal(tapir_h2_track__conns(env.t), 1); /* the new one, nothing in it yet */
	tapir_h2_track__lost(env.t, lost);
	assert_int_equal(lost[TAPIR_H2_LOST_FRAMING], 4);
	/* The new connection starts from nothing: its whole conversation comes out right. */
	env.opened = 1;
	replay(&env, &t, 0, SIZE_MAX);
	send_end(env.t, TAPIR_H2R_CLOSE);
	check_conversation(&d);
	tapir_h2_track__free(env.t);
	talk_free(&t);
}

/* A record the ring had no room for: the next one of that direction says so, and the header
 * block it belonged to is given up, not decoded from half its bytes. */
static void test_lost_record_gives_the_block_up(void **state)
{
	static struct talk t;
	struct done d = { 0 };
	struct env env = { .fail_block = 1 };
	uint64_t lost[TAPIR_H2_LOST_REASONS];

	(void)state;
	talk_grpc(&t, 0);
	env.t = tapir_h2_track__new(16, on_done, &d);
	assert_non_null(env.t);
	/* Stream 1's request block is not sent, stream 5's is over the budget. */
	assert_int_equal(replay(&env, &t, 0, SIZE_MAX), 2);
	send_end(env.t, TAPIR_H2R_CLOSE);
	assert_null(result_of(&d, 1, NULL));
	assert_null(result_of(&d, 5, NULL));
	assert_non_null(result_of(&d, 3, NULL));
	assert_non_null(result_of(&d, 7, NULL));
	assert_non_null(result_of(&d, 9, NULL));
	assert_int_equal(d.n, 3);
	tapir_h2_track__lost(env.t, lost);
	assert_int_equal(lost[TAPIR_H2_LOST_UNMATCHED], 2); /* the answers of 1 and 5 */
	tapir_h2_track__free(env.t);
	talk_free(&t);
}

/*
 * An h2c upgrade (RFC 7540 3.2): the kernel says so in the connection's first record; the
 * server's frames start with its SETTINGS and answer stream 1 (the HTTP/1.1 request, never seen
 * as HTTP/2) before the client's preface; stream 3 is an ordinary request after it.
 */
static void test_upgrade_answers_stream_one(void **state)
{
	static struct talk t;
	static struct talk_body resp1, resp3;
	struct done d = { 0 };
	struct env env = { 0 };
	struct tapir_h2_rec open = { .type = TAPIR_REC_H2,
				     .sock = SOCK,
				     .cgroup_id = CGID,
				     .kind = TAPIR_H2R_OPEN,
				     .value = TAPIR_H2_OPEN_UPGRADE,
				     .ts = 500000ULL };
	nghttp2_settings_entry set[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 } };
	nghttp2_nv ok[] = { TALK_NV(":status", "200"), TALK_NV("content-type", "text/plain") };
	nghttp2_nv gone[] = { TALK_NV(":status", "404") };
	nghttp2_nv get[] = { TALK_NV(":method", "GET"), TALK_NV(":scheme", "http"),
			     TALK_NV(":path", "/next"), TALK_NV(":authority", "localhost") };
	nghttp2_data_provider prov = { .read_callback = talk_read };
	const struct tapir_h2_result *r;
	uint8_t payload[64];
	ssize_t n;
	int32_t s3;

	(void)state;
	talk_init(&t, 0);
	n = nghttp2_pack_settings_payload(payload, sizeof(payload), set, 1);
	assert_true(n > 0);
	assert_int_equal(nghttp2_session_upgrade2(t.client, payload, (size_t)n, 0, NULL), 0);
	assert_int_equal(nghttp2_session_upgrade2(t.server, payload, (size_t)n, 0, NULL), 0);
	resp1 = (struct talk_body){ 5000, 0, 1, NULL, 0 };
	resp3 = (struct talk_body){ 9, 0, 3, NULL, 0 };
	prov.source.ptr = &resp1;
	assert_int_equal(nghttp2_submit_response(t.server, 1, ok, 2, &prov), 0);
	s3 = nghttp2_submit_request(t.client, NULL, get, 4, NULL, NULL);
	assert_int_equal(s3, 3);
	talk_pump(&t);
	prov.source.ptr = &resp3;
	assert_int_equal(nghttp2_submit_response(t.server, s3, gone, 1, &prov), 0);
	talk_pump(&t);

	env.t = tapir_h2_track__new(16, on_done, &d);
	assert_non_null(env.t);
	assert_int_equal(tapir_h2_track__record(env.t, &open, sizeof(open)), 0);
	assert_int_equal(tapir_h2_track__conns(env.t), 1);
	env.opened = 1;
	assert_int_equal(replay(&env, &t, 0, SIZE_MAX), 0);
	assert_int_equal(d.n, 2);
	r = result_of(&d, 1, NULL);
	assert_non_null(r);
	assert_true(r->flags & TAPIR_H2_R_UPGRADE);
	assert_int_equal(r->outcome, TAPIR_H2_OUT_COMPLETE);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->resp_bytes, 5000);
	assert_int_equal(r->req_bytes, 0);
	assert_int_equal(r->start_ns, 500000ULL);
	assert_string_equal(r->method, ""); /* the HTTP/1.1 request's: the daemon pairs them */
	r = result_of(&d, 3, NULL);
	assert_non_null(r);
	assert_false(r->flags & TAPIR_H2_R_UPGRADE);
	assert_int_equal(r->status, 404);
	assert_int_equal(r->resp_bytes, 9);
	assert_string_equal(r->path, "/next");
	send_end(env.t, TAPIR_H2R_CLOSE);
	assert_int_equal(d.n, 2);
	tapir_h2_track__free(env.t);
	talk_free(&t);
}

static void test_connection_limit(void **state)
{
	struct done d = { 0 };
	struct tapir_h2_track *t = tapir_h2_track__new(1, on_done, &d);
	struct tapir_h2_rec e = { .type = TAPIR_REC_H2,
				  .cgroup_id = CGID,
				  .kind = TAPIR_H2R_DATA,
				  .stream_id = 1,
				  .value = 10 };
	uint64_t lost[TAPIR_H2_LOST_REASONS];

	(void)state;
	assert_non_null(t);
	e.sock = 1;
	assert_int_equal(tapir_h2_track__record(t, &e, sizeof(e)), 0);
	e.sock = 2;
	assert_int_equal(tapir_h2_track__record(t, &e, sizeof(e)), 0);
	assert_int_equal(tapir_h2_track__conns(t), 1);
	tapir_h2_track__lost(t, lost);
	assert_int_equal(lost[TAPIR_H2_LOST_CONNS], 1);
	/* A short record is refused; so is one whose data runs past it. */
	assert_int_equal(tapir_h2_track__record(t, &e, sizeof(e) - 1), -EINVAL);
	e.len = 4;
	assert_int_equal(tapir_h2_track__record(t, &e, sizeof(e) + 3), -EINVAL);
	tapir_h2_track__free(t);
}

static void test_event_of_odd_results(void **state)
{
	struct tapir_h2_who who = { .sock = 1, .cgroup_id = 2, .labels_id = 3, .tgid = 4 };
	struct tapir_h2_result r = { .stream_id = 1, .outcome = TAPIR_H2_OUT_COMPLETE };
	struct tapir_http_event e;

	(void)state;
	/* Ended without a :status (a DATA END_STREAM without HEADERS): the server's fault. */
	tapir_h2_track__event(&who, &r, &e);
	assert_int_equal(e.outcome, TAPIR_OUT_SERVER_ABORT);
	/* A method longer than any known, a path cut: never a NUL-less overrun. */
	strcpy(r.method, "PROPFIND");
	memset(r.path, 'p', sizeof(r.path) - 1);
	r.status = 207;
	tapir_h2_track__event(&who, &r, &e);
	assert_int_equal(e.method, TP_M_UNKNOWN);
	assert_int_equal(e.status, 207);
	assert_memory_equal(e.line, "PROPFIND pppppppppppppppppppppp", TAPIR_LINE_BYTES - 1);
	/* Closed, or cut off by GOAWAY: 502. */
	r.outcome = TAPIR_H2_OUT_CLOSED;
	tapir_h2_track__event(&who, &r, &e);
	assert_int_equal(e.outcome, TAPIR_OUT_SERVER_ABORT);
	r.outcome = TAPIR_H2_OUT_RESET;
	r.flags = TAPIR_H2_R_CLIENT_RESET;
	tapir_h2_track__event(&who, &r, &e);
	assert_int_equal(e.outcome, TAPIR_OUT_CLIENT_ABORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation_to_requests),
		cmocka_unit_test(test_framing_lost_drops_open_streams),
		cmocka_unit_test(test_lost_record_gives_the_block_up),
		cmocka_unit_test(test_open_drops_a_stale_connection),
		cmocka_unit_test(test_upgrade_answers_stream_one),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_event_of_odd_results),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
