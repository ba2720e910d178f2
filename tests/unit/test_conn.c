// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the walk and the connection driver: the code the BPF programs run, natively. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include <cmocka.h>

#include "tapir/http.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LEN(lit)      (sizeof(lit) - 1)

/* One request record as the BPF side would put it in the ring buffer. */
struct rec {
	__u16 status;
	__u8 outcome, method;
	__u64 req_bytes, resp_bytes, start_ns, first_byte_ns, end_ns;
	char line[TAPIR_LINE_BYTES + 1];
};

/* What the hooks saw: the records and the loss counters. */
struct env {
	struct rec rec[64];
	size_t n;
	__u64 stats[TAPIR_STAT_MAX];
	__u64 steps;
};

static inline void tapir_conn_stat(struct env *e, __u32 idx)
{
	e->stats[idx]++;
}

static inline void tapir_conn_record(struct env *e, struct tapir_conn *c, __u32 slot, __u8 outcome,
				     __u16 status, __u64 now)
{
	struct rec *r;

	assert_true(e->n < ARRAY_SIZE(e->rec));
	r = &e->rec[e->n++];
	r->status = status;
	r->outcome = outcome;
	r->method = c->method[slot];
	r->req_bytes = c->req_bytes[slot];
	r->resp_bytes = c->resp_bytes;
	r->start_ns = c->start_ns[slot];
	r->first_byte_ns = c->first_byte_ns;
	r->end_ns = now;
	memcpy(r->line, c->line[slot], TAPIR_LINE_BYTES);
	r->line[TAPIR_LINE_BYTES] = '\0';
}

/* The traced process's memory is this process's memory; address 0 is unreadable. */
static inline int tapir_walk_read(struct env *env, void *dst, __u32 n, __u64 src)
{
	if (!src)
		return -1;
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return 0;
}

/* Whole heads the walk tried, and those it took. */
static unsigned heads_tried, heads_taken;

static int count_head(int r)
{
	heads_tried++;
	heads_taken += r != 0;
	return r;
}

#define TAPIR_CONN_ENV		  struct env
#define TAPIR_WALK_HEAD(p, w, at) count_head(tapir_walk_head(p, w, at))
#include "tapir/conn.h"
#include "tapir/walk.h"

static struct tapir_conn conn_new(void)
{
	struct tapir_conn c;

	memset(&c, 0, sizeof(c));
	tapir_http_init(&c.req, TP_KIND_REQUEST);
	tapir_http_init(&c.resp, TP_KIND_RESPONSE);
	return c;
}

/* Walk one syscall to its end, as exit_io() does after its own checks. */
static void walk(struct env *e, struct tapir_conn *c, __u8 kind, __u8 dir, __u64 buf, __u32 iovcnt,
		 __u64 len, __u64 ts, __u64 now)
{
	struct tapir_conn_key key = { 13 };
	struct tapir_walk w;

	if (c->state >= TAPIR_CONN_IGNORED)
		return;
	tapir_walk_begin(&w, &key, kind, dir, buf, iovcnt, len, ts, now);
	while (!tapir_walk_step(e, &w, c))
		assert_true(++e->steps < 10000000);
}

static void io(struct env *e, struct tapir_conn *c, __u8 dir, const char *buf, size_t len, __u64 ts)
{
	walk(e, c, TAPIR_IO_PLAIN, dir, (uintptr_t)buf, 0, len, ts, ts + 1);
}

#define IN(e, c, s, ts)	 io(e, c, TAPIR_DIR_IN, s, LEN(s), ts)
#define OUT(e, c, s, ts) io(e, c, TAPIR_DIR_OUT, s, LEN(s), ts)

#define GET_A	"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
#define POST_B	"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
#define GET_C	"GET /c HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
#define OK_2	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define NF_0	"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
#define CHUNKED "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"

static void test_keepalive_requests_pair_with_answers(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, GET_A, 10);
	OUT(&e, &c, OK_2, 20);
	IN(&e, &c, POST_B, 30);
	OUT(&e, &c, NF_0, 40);
	IN(&e, &c, GET_C, 50);
	OUT(&e, &c, CHUNKED, 60);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].req_bytes, LEN(GET_A));
	assert_int_equal(e.rec[0].resp_bytes, LEN(OK_2));
	assert_int_equal(e.rec[0].method, TP_M_GET);
	assert_int_equal(e.rec[0].start_ns, 11); /* the exit of the read that brought the line */
	assert_int_equal(e.rec[0].first_byte_ns, 20); /* the entry of the first answering write */
	assert_int_equal(e.rec[0].end_ns, 21);
	assert_string_equal(e.rec[0].line, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(e.rec[1].status, 404);
	assert_int_equal(e.rec[1].method, TP_M_POST);
	assert_int_equal(e.rec[1].req_bytes, LEN(POST_B));
	assert_int_equal(e.rec[1].resp_bytes, LEN(NF_0));
	assert_int_equal(e.rec[2].resp_bytes, LEN(CHUNKED));
	assert_int_equal(c.count, 0);
	for (size_t i = 0; i < TAPIR_STAT_MAX; i++)
		assert_int_equal(e.stats[i], 0);
}

/*
 * wrk's request and nginx's answer of a 1 KiB file, as the kernel walks them: the request in one
 * step (its first byte, its whole head), the answer in two (its head, then its body). Each step
 * is a call from the kernel's loop; a step that only found or ended a segment was one more.
 */
static void test_usual_exchange_takes_three_steps(void **state)
{
	static const char req[] = "GET /static.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
	static const char hdr[] =
		"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
		"Date: Sat, 05 Dec 2026 18:50:00 GMT\r\nContent-Type: text/plain\r\n"
		"Content-Length: 1024\r\nConnection: keep-alive\r\n"
		"ETag: \"6751f0a0-400\"\r\nAccept-Ranges: bytes\r\n\r\n";
	struct tapir_conn c = conn_new();
	struct env e = { 0 };
	char resp[LEN(hdr) + 1024];
	__u64 before;

	memcpy(resp, hdr, LEN(hdr));
	memset(resp + LEN(hdr), 'x', 1024);
	IN(&e, &c, req, 10);
	assert_int_equal(e.steps + 1, 1); /* walk() counts the steps before the last */
	before = e.steps;
	io(&e, &c, TAPIR_DIR_OUT, resp, sizeof(resp), 20);
	assert_int_equal(e.steps - before + 1, 2);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].req_bytes, LEN(req));
	assert_int_equal(e.rec[0].resp_bytes, sizeof(resp));
	assert_int_equal(e.rec[0].end_ns, 21);
}

/* A head longer than the window is tried whole once, then taken in smaller pieces. */
static void test_head_past_the_window_is_tried_once(void **state)
{
	static const char a[] = "GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ";
	struct tapir_conn c = conn_new();
	struct env e = { 0 };
	char req[LEN(a) + 300 + 4];

	memcpy(req, a, LEN(a));
	memset(req + LEN(a), 'a', 300);
	memcpy(req + LEN(a) + 300, "\r\n\r\n", 4);
	heads_tried = heads_taken = 0;
	io(&e, &c, TAPIR_DIR_IN, req, sizeof(req), 10);
	assert_int_equal(heads_tried, 1);
	assert_int_equal(heads_taken, 0);
	OUT(&e, &c, OK_2, 20);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].req_bytes, sizeof(req));
}

/*
 * A second request whose first byte leaves 15 bytes in the window: its head does not fit that
 * window, and is taken whole from the next one.
 */
static void test_head_is_tried_again_in_a_new_window(void **state)
{
	static const char a[] = "GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: ";
	static const char b[] = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tapir_conn c = conn_new();
	struct env e = { 0 };
	char req[TAPIR_WIN - 16 + LEN(b)];
	size_t pad = TAPIR_WIN - 16 - LEN(a) - 4;

	memcpy(req, a, LEN(a));
	memset(req + LEN(a), 'p', pad);
	memcpy(req + LEN(a) + pad, "\r\n\r\n", 4);
	memcpy(req + TAPIR_WIN - 16, b, LEN(b));
	heads_tried = heads_taken = 0;
	io(&e, &c, TAPIR_DIR_IN, req, sizeof(req), 10);
	assert_int_equal(heads_taken, 2);
	assert_int_equal(heads_tried, 3);
	OUT(&e, &c, OK_2, 20);
	OUT(&e, &c, OK_2, 30);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.rec[0].req_bytes, TAPIR_WIN - 16);
	assert_int_equal(e.rec[1].req_bytes, LEN(b));
	assert_string_equal(e.rec[1].line, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
}

static void test_pipelined_requests_queue_four_deep(void **state)
{
	static const char five[] = GET_A POST_B GET_C GET_A GET_A;
	static const char answers[] = OK_2 NF_0 CHUNKED OK_2;
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, five, 10);
	assert_int_equal(c.count, TAPIR_MAX_PENDING);
	assert_int_equal(e.stats[TAPIR_STAT_PENDING_OVERFLOW], 1);
	OUT(&e, &c, answers, 20);
	assert_int_equal(e.n, 4);
	assert_int_equal(e.rec[0].req_bytes, LEN(GET_A));
	assert_int_equal(e.rec[1].req_bytes, LEN(POST_B));
	assert_int_equal(e.rec[2].req_bytes, LEN(GET_C));
	/* The fifth request had no slot: its bytes went to the fourth. */
	assert_int_equal(e.rec[3].req_bytes, 2 * LEN(GET_A));
	assert_int_equal(e.rec[1].status, 404);
	assert_int_equal(e.rec[2].resp_bytes, LEN(CHUNKED));
	assert_string_equal(e.rec[2].line, "GET /c HTTP/1.1\r\nHost: x\r\nConnec");
}

static void test_head_answer_has_no_body(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", 10);
	OUT(&e, &c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 20);
	IN(&e, &c, GET_A, 30);
	OUT(&e, &c, OK_2, 40);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.rec[0].method, TP_M_HEAD);
	assert_int_equal(e.rec[0].resp_bytes,
			 LEN("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
	assert_int_equal(e.rec[1].status, 200);
}

static void test_interim_answer_is_not_the_status(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	IN(&e, &c, "POST /b HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 10);
	OUT(&e, &c, cont, 20);
	IN(&e, &c, "hello", 30);
	OUT(&e, &c, OK_2, 40);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].resp_bytes, LEN(cont) + LEN(OK_2));
	assert_int_equal(e.rec[0].first_byte_ns, 40); /* the final answer, not the 100 */
}

#define POST_HEAD "POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
#define TOO_LARGE "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"

/* An answer written before its request's body was read whole (nginx's `return`): the record
 * waits for the body's last byte, and carries the answer's own end and status. */
static void test_answer_before_the_body_waits_for_it(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, POST_HEAD "hel", 10);
	OUT(&e, &c, OK_2, 20);
	assert_int_equal(e.n, 0);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.answered, 1);
	IN(&e, &c, "lowor", 30);
	assert_int_equal(e.n, 0);
	IN(&e, &c, "ld" GET_A, 40); /* the body's end and the next request, in one read */
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.rec[0].method, TP_M_POST);
	assert_int_equal(e.rec[0].req_bytes, LEN(POST_HEAD) + 10);
	assert_int_equal(e.rec[0].resp_bytes, LEN(OK_2));
	assert_int_equal(e.rec[0].first_byte_ns, 20);
	assert_int_equal(e.rec[0].end_ns, 21); /* the answer's end, not the body's */
	assert_int_equal(c.answered, 0);
	assert_int_equal(c.count, 1);
	OUT(&e, &c, NF_0, 50);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.rec[1].status, 404);
	assert_int_equal(e.rec[1].req_bytes, LEN(GET_A));
	assert_int_equal(e.rec[1].first_byte_ns, 50);
	for (size_t i = 0; i < TAPIR_STAT_MAX; i++)
		assert_int_equal(e.stats[i], 0);
}

/* The body never comes whole: the answered request is recorded, complete, however the
 * connection ends, with the bytes that did come. */
static void test_answer_before_the_body_survives_the_end(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	/* The server closes after its 413. */
	IN(&e, &c, POST_HEAD "hel", 10);
	OUT(&e, &c, TOO_LARGE, 20);
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.rec[0].status, 413);
	assert_int_equal(e.rec[0].req_bytes, LEN(POST_HEAD) + 3);
	assert_int_equal(e.rec[0].end_ns, 21);
	assert_int_equal(c.count, 0);

	/* A chunked body that goes wrong after the answer: recorded, then the parse error. */
	c = conn_new();
	e = (struct env){ 0 };
	IN(&e, &c, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 10);
	OUT(&e, &c, OK_2, 20);
	IN(&e, &c, "cde\r\nZZ\r\n", 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.stats[TAPIR_STAT_PARSE_REQUEST], 1);
	assert_int_equal(c.count, 0);

	/* A second answer while the body is still coming: the first request is over, and
	 * the second answer has no request. */
	c = conn_new();
	e = (struct env){ 0 };
	IN(&e, &c, POST_HEAD "hel", 10);
	OUT(&e, &c, TOO_LARGE, 20);
	OUT(&e, &c, OK_2, 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 413);
	assert_int_equal(e.stats[TAPIR_STAT_STRAY_RESPONSE], 1);
	assert_int_equal(c.count, 0);
}

/* A 100 Continue, then the final answer before the body (a 417): the final status waits for
 * the body, with the interim's bytes in the answer's size. */
static void test_final_answer_before_the_body_after_a_continue(void **state)
{
	static const char head[] =
		"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	static const char fail[] = "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n";
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, head, 10);
	OUT(&e, &c, cont, 20);
	OUT(&e, &c, fail, 30);
	assert_int_equal(e.n, 0);
	IN(&e, &c, "hello", 40);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 417);
	assert_int_equal(e.rec[0].req_bytes, LEN(head) + 5);
	assert_int_equal(e.rec[0].resp_bytes, LEN(cont) + LEN(fail));
	assert_int_equal(e.rec[0].first_byte_ns, 30);
	assert_int_equal(e.rec[0].end_ns, 31);
}

static void test_upgrade_leaves_http(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 10);
	OUT(&e, &c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", 20);
	assert_int_equal(c.state, TAPIR_CONN_UPGRADED);
	IN(&e, &c, "\x81\x05hello", 30); /* frames are never parsed */
	OUT(&e, &c, "\x81\x05hello", 40);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_UPGRADED);
	assert_int_equal(e.stats[TAPIR_STAT_UPGRADED], 1);
	tapir_conn_finalize(&e, &c, 50);
	assert_int_equal(e.n, 1);
	assert_int_equal(c.state, TAPIR_CONN_IGNORED);
}

static void test_finalize_settles_every_pending_request(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	/* The client went away: every pending request is a 499. */
	IN(&e, &c, GET_A GET_C, 10);
	c.peer_gone = 1;
	tapir_conn_finalize(&e, &c, 20);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_CLIENT_ABORT);
	assert_int_equal(e.rec[1].outcome, TAPIR_OUT_CLIENT_ABORT);

	/* The server closed with an answer half written: a 502, its bytes counted. */
	c = conn_new();
	e.n = 0;
	IN(&e, &c, GET_A, 10);
	OUT(&e, &c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 20);
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_SERVER_ABORT);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].resp_bytes,
			 LEN("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));

	/* A body delimited by the close: complete. */
	c = conn_new();
	e.n = 0;
	IN(&e, &c, "GET /a HTTP/1.0\r\n\r\n", 10);
	OUT(&e, &c, "HTTP/1.0 200 OK\r\n\r\nuntil the end", 20);
	assert_int_equal(e.n, 0);
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.rec[0].resp_bytes, LEN("HTTP/1.0 200 OK\r\n\r\nuntil the end"));
}

static void test_ambiguous_request_stops_request_parsing(void **state)
{
	static const char smuggle[] = "POST / HTTP/1.1\r\nContent-Length: 4\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" GET_A;
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, smuggle, 10);
	assert_int_equal(c.count, 1);
	assert_int_equal(e.stats[TAPIR_STAT_AMBIGUOUS_REQUEST], 1);
	OUT(&e, &c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	    20);
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 1); /* the 400, and no phantom 499/502 for the GET */
	assert_int_equal(e.rec[0].status, 400);
	assert_int_equal(e.rec[0].req_bytes, LEN(smuggle) - LEN("0\r\n\r\n" GET_A));
}

static void test_answer_to_a_request_before_start(void **state)
{
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	c.flags = TAPIR_CF_PRESTART;
	IN(&e, &c, "the rest of a body", 10); /* not a request line: waits for the answer */
	assert_int_equal(c.state, TAPIR_CONN_NEW);
	OUT(&e, &c, OK_2, 20);
	assert_int_equal(e.stats[TAPIR_STAT_BEFORE_START], 1);
	assert_int_equal(e.n, 0);
	IN(&e, &c, GET_A, 30);
	OUT(&e, &c, NF_0, 40);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 404);
	assert_int_equal(e.rec[0].req_bytes, LEN(GET_A));
	assert_int_equal(e.stats[TAPIR_STAT_STRAY_RESPONSE], 0);
}

static void test_untracked_read_counts_every_request_it_starts(void **state)
{
	static const char three[] = GET_A POST_B "GET /c HTTP/1.1\r\nHo";
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	c.flags = TAPIR_CF_UNTRACKED; /* a reserved slot: the conns map had no room */
	IN(&e, &c, three, 10);
	assert_int_equal(e.stats[TAPIR_STAT_REQ_UNTRACKED], 3); /* the last one only begun */
	assert_int_equal(c.count, 0);
	assert_int_equal(e.stats[TAPIR_STAT_PENDING_OVERFLOW], 0);
	tapir_conn_finalize(&e, &c, 20);
	assert_int_equal(e.n, 0); /* nothing pending: no record, no phantom 502 */
}

static void test_iovecs_and_blind_bytes(void **state)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 6";
	static const char tail[] = "\r\n\r\n";
	struct tapir_iovec iov[3] = {
		{ (uintptr_t)head, LEN(head) },
		{ (uintptr_t)tail, LEN(tail) },
		{ (uintptr_t) "abc", 3 },
	};
	struct tapir_conn c = conn_new();
	struct env e = { 0 };

	IN(&e, &c, GET_A, 10);
	walk(&e, &c, TAPIR_IO_IOV, TAPIR_DIR_OUT, (uintptr_t)iov, 3, LEN(head) + LEN(tail) + 3, 20,
	     21);
	assert_int_equal(e.n, 0);
	/* sendfile: the rest of the body, never read. */
	walk(&e, &c, TAPIR_IO_BLIND, TAPIR_DIR_OUT, 0, 0, 3, 30, 31);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].resp_bytes, LEN(head) + LEN(tail) + 6);
	assert_int_equal(e.rec[0].end_ns, 31);
	/* Header bytes nobody can read: the connection is dropped, and counted. */
	IN(&e, &c, GET_A, 40);
	walk(&e, &c, TAPIR_IO_BLIND, TAPIR_DIR_OUT, 0, 0, 10, 50, 51);
	assert_int_equal(c.state, TAPIR_CONN_IGNORED);
	assert_int_equal(e.stats[TAPIR_STAT_PARSE_RESPONSE], 1);
}

/* The start of each request line as kept for the daemon: the request's first TAPIR_LINE_BYTES
 * bytes of its read (fewer when the read ends sooner, NUL-padded), whether the window shows them
 * (a read's first request, one past the first window), or not quite (a request 240 bytes into a
 * window: read again from memory). Ground truth: the read's own bytes. */
static void assert_line(const struct rec *r, const char *rd, size_t len, const char *start)
{
	char want[TAPIR_LINE_BYTES + 1] = { 0 };
	size_t at = start - rd, n = len - at < TAPIR_LINE_BYTES ? len - at : TAPIR_LINE_BYTES;

	memcpy(want, start, n);
	assert_memory_equal(r->line, want, sizeof(want));
}

static void test_kept_line_is_the_request_start(void **state)
{
	char rd[1024], pad[300];
	const char *starts[4];
	struct tapir_conn c = conn_new();
	struct env e = { 0 };
	size_t len = 0, i;

	/* 4 pipelined GETs in one read: at 0, then at 240 (8 bytes before a window's end), then
	 * past the first window, then one cut 20 bytes into its line by the read's end. */
	memset(pad, 'p', sizeof(pad));
	starts[0] = rd;
	len += sprintf(rd + len, "GET /first/request HTTP/1.1\r\nX-Pad: %.*s\r\n\r\n",
		       (int)(240 - 40), pad);
	assert_int_equal(len, 240);
	starts[1] = rd + len;
	len += sprintf(rd + len, "GET /second/request/crossing HTTP/1.1\r\nX-Pad: %.*s\r\n\r\n",
		       100, pad);
	starts[2] = rd + len;
	len += sprintf(rd + len, "POST /third HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	starts[3] = rd + len;
	len += sprintf(rd + len, "GET /fourth/is/cut/h");
	io(&e, &c, TAPIR_DIR_IN, rd, len, 10);
	assert_int_equal(c.count, 4);
	for (i = 0; i < 4; i++)
		OUT(&e, &c, OK_2, 20 + i);
	/* The last was answered before its end was read: recorded when the connection ends. */
	assert_int_equal(e.n, 3);
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 4);
	for (i = 0; i < 4; i++)
		assert_line(&e.rec[i], rd, len, starts[i]);
}

/* A writev of more iovecs than are read in one go: the rest are read one by one. */
static void test_iovecs_past_the_batch(void **state)
{
	static const char parts[][16] = {
		"HTTP/1.1 ",	 "201 Created\r\n", "Content-", "Length: 5",
		"\r\nServer: t", "\r\n\r\n",	    "he",	"llo"
	};
	struct tapir_iovec iov[ARRAY_SIZE(parts)];
	struct tapir_conn c = conn_new();
	struct env e = { 0 };
	size_t i, total = 0;

	for (i = 0; i < ARRAY_SIZE(parts); i++) {
		iov[i] = (struct tapir_iovec){ (uintptr_t)parts[i], strlen(parts[i]) };
		total += strlen(parts[i]);
	}
	assert_true(ARRAY_SIZE(parts) > TAPIR_IOV_BATCH);
	IN(&e, &c, GET_A, 10);
	walk(&e, &c, TAPIR_IO_IOV, TAPIR_DIR_OUT, (uintptr_t)iov, ARRAY_SIZE(parts), total, 20, 21);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 201);
	assert_int_equal(e.rec[0].resp_bytes, total);
	assert_int_equal(e.stats[TAPIR_STAT_READ_FAULT], 0);
}

/* A conversation; each message is split at every point into two syscalls (and, for the
 * answers, into two iovecs of one): the records must not change. */
static const char *const conversation[][2] = {
	{ GET_A, OK_2 },
	{ POST_B, CHUNKED },
	{ "GET /s HTTP/1.1\r\nX-Long-Header-Name-Here: some value\r\n\r\n",
	  "HTTP/1.1 503 Service Unavailable\r\nServer: test\r\nContent-Length: 4\r\n\r\nbusy" },
	{ "HEAD /h HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" },
};

static void run_conversation(struct env *e, size_t msg, size_t cut, int iov)
{
	struct tapir_conn c = conn_new();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(conversation); i++) {
		const char *rq = conversation[i][0], *rs = conversation[i][1];
		size_t lq = strlen(rq), ls = strlen(rs);
		size_t kq = i == msg && cut < lq ? cut : lq, ks = i == msg && cut < ls ? cut : ls;

		io(e, &c, TAPIR_DIR_IN, rq, kq, 10 * i);
		if (kq < lq)
			io(e, &c, TAPIR_DIR_IN, rq + kq, lq - kq, 10 * i + 1);
		if (iov) {
			struct tapir_iovec v[2] = { { (uintptr_t)rs, ks },
						    { (uintptr_t)rs + ks, ls - ks } };

			walk(e, &c, TAPIR_IO_IOV, TAPIR_DIR_OUT, (uintptr_t)v, 2, ls, 10 * i + 5,
			     10 * i + 6);
		} else {
			io(e, &c, TAPIR_DIR_OUT, rs, ks, 10 * i + 5);
			if (ks < ls)
				io(e, &c, TAPIR_DIR_OUT, rs + ks, ls - ks, 10 * i + 5);
		}
	}
	assert_int_equal(c.count, 0);
}

static void test_every_split_point_gives_the_same_records(void **state)
{
	static struct env ref, e;
	size_t msg, cut, i;
	int iov;

	memset(&ref, 0, sizeof(ref));
	run_conversation(&ref, ~(size_t)0, 0, 0);
	assert_int_equal(ref.n, ARRAY_SIZE(conversation));
	for (msg = 0; msg < ARRAY_SIZE(conversation); msg++)
		for (cut = 0; cut < 120; cut++)
			for (iov = 0; iov < 2; iov++) {
				memset(&e, 0, sizeof(e));
				run_conversation(&e, msg, cut, iov);
				assert_int_equal(e.n, ref.n);
				for (i = 0; i < ref.n; i++) {
					assert_int_equal(e.rec[i].status, ref.rec[i].status);
					assert_int_equal(e.rec[i].outcome, ref.rec[i].outcome);
					assert_int_equal(e.rec[i].req_bytes, ref.rec[i].req_bytes);
					assert_int_equal(e.rec[i].resp_bytes,
							 ref.rec[i].resp_bytes);
					assert_int_equal(e.rec[i].method, ref.rec[i].method);
				}
				for (i = 0; i < TAPIR_STAT_MAX; i++)
					assert_int_equal(e.stats[i], 0);
			}
	assert_int_equal(ref.rec[2].status, 503);
	assert_int_equal(ref.rec[3].method, TP_M_HEAD);
}

/*
 * One syscall of a process on a connection it opened, as on_io() and walk() in bpf/http.bpf.c
 * take it (TAPIR_CF_CLIENT): the parser's direction swaps, so its writes (@io_dir OUT) carry
 * requests and its reads answers; a write's bytes are stamped at its entry and a read's at its
 * return, both @at; a server that speaks first, or a TLS ClientHello, is no HTTP/1.x.
 */
static void client_io(struct env *e, struct tapir_conn *c, __u8 io_dir, const char *buf, size_t len,
		      __u64 at)
{
	__u8 dir = !io_dir;

	if (c->state >= TAPIR_CONN_IGNORED)
		return;
	if (c->state == TAPIR_CONN_NEW && dir == TAPIR_DIR_OUT) {
		tapir_conn_abandon(e, c, TAPIR_STAT_IGNORED_NOT_HTTP);
		return;
	}
	if (c->state == TAPIR_CONN_NEW && dir == TAPIR_DIR_IN && len && buf[0] == 0x16) {
		tapir_conn_abandon(e, c, TAPIR_STAT_IGNORED_TLS);
		return;
	}
	walk(e, c, TAPIR_IO_PLAIN, dir, (uintptr_t)buf, 0, len, at, at);
}

#define SEND(e, c, s, at) client_io(e, c, TAPIR_DIR_OUT, s, LEN(s), at)
#define RECV(e, c, s, at) client_io(e, c, TAPIR_DIR_IN, s, LEN(s), at)

static struct tapir_conn client_new(void)
{
	struct tapir_conn c = conn_new();

	c.flags = TAPIR_CF_CLIENT;
	return c;
}

static void test_outbound_requests_are_writes_and_answers_reads(void **state)
{
	struct tapir_conn c = client_new();
	struct env e = { 0 };

	SEND(&e, &c, GET_A, 100); /* the write's entry */
	assert_int_equal(c.count, 1);
	RECV(&e, &c, OK_2, 300); /* the read's return */
	SEND(&e, &c, POST_B, 400);
	RECV(&e, &c, NF_0, 450);
	SEND(&e, &c, GET_C, 500);
	RECV(&e, &c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\n", 600);
	assert_int_equal(e.n, 2);
	RECV(&e, &c, "oops", 700);
	assert_int_equal(e.n, 3);
	assert_int_equal(c.count, 0);
	assert_int_equal(c.state, TAPIR_CONN_HTTP);

	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.rec[0].status, 200);
	assert_int_equal(e.rec[0].method, TP_M_GET);
	assert_string_equal(e.rec[0].line, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(e.rec[0].start_ns, 100);
	assert_int_equal(e.rec[0].first_byte_ns, 300);
	assert_int_equal(e.rec[0].end_ns, 300);
	assert_int_equal(e.rec[0].req_bytes, LEN(GET_A));
	assert_int_equal(e.rec[0].resp_bytes, LEN(OK_2));
	assert_int_equal(e.rec[1].status, 404);
	assert_int_equal(e.rec[1].method, TP_M_POST);
	assert_int_equal(e.rec[1].req_bytes, LEN(POST_B));
	assert_int_equal(e.rec[1].start_ns, 400);
	assert_int_equal(e.rec[1].end_ns, 450);
	/* An answer in two reads: its first byte came with the first, its end with the second. */
	assert_int_equal(e.rec[2].status, 500);
	assert_int_equal(e.rec[2].start_ns, 500);
	assert_int_equal(e.rec[2].first_byte_ns, 600);
	assert_int_equal(e.rec[2].end_ns, 700);
	for (size_t i = 0; i < TAPIR_STAT_MAX; i++)
		assert_int_equal(e.stats[i], 0);
}

/* An outbound request answered before this side wrote all of its body: the record waits for
 * the last write, and the size is every byte written. */
static void test_outbound_answer_before_the_body(void **state)
{
	struct tapir_conn c = client_new();
	struct env e = { 0 };

	SEND(&e, &c, POST_HEAD "hel", 10);
	RECV(&e, &c, TOO_LARGE, 20);
	assert_int_equal(e.n, 0);
	SEND(&e, &c, "loworld", 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].status, 413);
	assert_int_equal(e.rec[0].req_bytes, LEN(POST_HEAD) + 10);
	assert_int_equal(e.rec[0].resp_bytes, LEN(TOO_LARGE));
	assert_int_equal(e.rec[0].end_ns, 20);
	assert_int_equal(c.count, 0);
}

static void test_outbound_server_gone_is_502(void **state)
{
	static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	struct tapir_conn c = client_new();
	struct env e = { 0 };

	/* The server closed with its answer a third written (the read of 0, or CLOSE_WAIT). */
	SEND(&e, &c, GET_A, 10);
	RECV(&e, &c, cut, 20);
	c.peer_gone = 1;
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_SERVER_ABORT);
	assert_int_equal(tapir_status_label(e.rec[0].outcome, e.rec[0].status), 502);
	assert_int_equal(e.rec[0].resp_bytes, LEN(cut));
	assert_int_equal(e.rec[0].end_ns, 30);

	/* Two pipelined requests, no answer at all: both cut off by the server. */
	c = client_new();
	e.n = 0;
	SEND(&e, &c, GET_A GET_C, 10);
	assert_int_equal(c.count, 2);
	c.peer_gone = 1;
	tapir_conn_finalize(&e, &c, 20);
	assert_int_equal(e.n, 2);
	assert_int_equal(tapir_status_label(e.rec[0].outcome, e.rec[0].status), 502);
	assert_int_equal(tapir_status_label(e.rec[1].outcome, e.rec[1].status), 502);
	assert_string_equal(e.rec[1].line, "GET /c HTTP/1.1\r\nHost: x\r\nConnec");

	/* An answer delimited by the server's close is complete, not cut off. */
	c = client_new();
	e.n = 0;
	SEND(&e, &c, "GET /a HTTP/1.0\r\n\r\n", 10);
	RECV(&e, &c, "HTTP/1.0 200 OK\r\n\r\nuntil the end", 20);
	assert_int_equal(e.n, 0);
	c.peer_gone = 1;
	tapir_conn_finalize(&e, &c, 30);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.rec[0].status, 200);
	for (size_t i = 0; i < TAPIR_STAT_MAX; i++)
		assert_int_equal(e.stats[i], 0);
}

static void test_outbound_own_close_is_499(void **state)
{
	struct tapir_conn c = client_new();
	struct env e = { 0 };

	/* This side closed while its request waited: it gave up (a client's timeout). */
	SEND(&e, &c, GET_A, 10);
	RECV(&e, &c, OK_2, 20);
	SEND(&e, &c, POST_B, 30);
	RECV(&e, &c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 40);
	tapir_conn_finalize(&e, &c, 50);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.rec[0].outcome, TAPIR_OUT_COMPLETE);
	assert_int_equal(e.rec[1].outcome, TAPIR_OUT_CLIENT_ABORT);
	assert_int_equal(tapir_status_label(e.rec[1].outcome, e.rec[1].status), 499);
	assert_int_equal(e.rec[1].method, TP_M_POST);
	assert_int_equal(e.rec[1].start_ns, 30);
	assert_int_equal(e.rec[1].end_ns, 50);
	assert_int_equal(c.count, 0);

	/* Nothing pending: a close settles nothing. */
	tapir_conn_finalize(&e, &c, 60);
	assert_int_equal(e.n, 2);
}

static void test_outbound_reads_never_start_requests(void **state)
{
	struct tapir_conn c = client_new();
	struct env e = { 0 };

	/* What this side reads never starts a request: an answer it did not ask for is a
	 * stray, as an unasked answer is on a server connection. */
	SEND(&e, &c, GET_A, 10);
	RECV(&e, &c, OK_2, 20);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.stats[TAPIR_STAT_STRAY_RESPONSE], 0);
	RECV(&e, &c, OK_2, 30); /* an answer nobody asked for */
	assert_int_equal(e.n, 1);
	assert_int_equal(e.stats[TAPIR_STAT_STRAY_RESPONSE], 1);

	/* The server connection's view of the same bytes is the other way round. */
	c = conn_new();
	memset(&e, 0, sizeof(e));
	IN(&e, &c, GET_A, 10);
	OUT(&e, &c, OK_2, 20);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.rec[0].start_ns, 11);
	assert_int_equal(e.rec[0].first_byte_ns, 20);
}

/* Bytes of an outbound connection that are no HTTP/1.x request: ignored, as "outbound". */
static void assert_outbound_ignored(const char *first, size_t len, __u8 io_dir)
{
	struct tapir_conn c = client_new();
	struct env e = { 0 };

	client_io(&e, &c, io_dir, first, len, 10);
	assert_int_equal(c.state, TAPIR_CONN_IGNORED);
	for (size_t i = 0; i < TAPIR_STAT_MAX; i++)
		assert_int_equal(e.stats[i], i == TAPIR_STAT_IGNORED_OUTBOUND);
	/* Never looked at again, HTTP or not. */
	SEND(&e, &c, GET_A, 20);
	RECV(&e, &c, OK_2, 30);
	tapir_conn_finalize(&e, &c, 40);
	assert_int_equal(e.n, 0);
	assert_int_equal(e.stats[TAPIR_STAT_IGNORED_OUTBOUND], 1);
}

static void test_outbound_not_http_is_ignored_as_outbound(void **state)
{
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	static const char redis[] = "*1\r\n$4\r\nPING\r\n";
	static const char h2[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const char greeting[] = "220 mail.example ESMTP\r\n";
	struct tapir_conn c;
	struct env e = { 0 };

	assert_outbound_ignored(tls, LEN(tls), TAPIR_DIR_OUT);
	assert_outbound_ignored(redis, LEN(redis), TAPIR_DIR_OUT);
	assert_outbound_ignored(h2, LEN(h2), TAPIR_DIR_OUT);
	assert_outbound_ignored(greeting, LEN(greeting), TAPIR_DIR_IN); /* the server first */

	/* A server connection keeps its reasons. */
	c = conn_new();
	IN(&e, &c, redis, 10);
	assert_int_equal(e.stats[TAPIR_STAT_IGNORED_NOT_HTTP], 1);
	c = conn_new();
	IN(&e, &c, h2, 10);
	assert_int_equal(e.stats[TAPIR_STAT_IGNORED_HTTP2], 1);
	assert_int_equal(e.stats[TAPIR_STAT_IGNORED_OUTBOUND], 0);

	/* HTTP that outbound parsing fails to follow, once spoken, is a parse failure. */
	c = client_new();
	memset(&e, 0, sizeof(e));
	SEND(&e, &c, GET_A, 10);
	RECV(&e, &c, "SSH-2.0-OpenSSH\r\n\r\n", 20);
	assert_int_equal(c.state, TAPIR_CONN_IGNORED);
	assert_int_equal(e.stats[TAPIR_STAT_PARSE_RESPONSE], 1);
	assert_int_equal(e.stats[TAPIR_STAT_IGNORED_OUTBOUND], 0);
	assert_int_equal(e.n, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive_requests_pair_with_answers),
		cmocka_unit_test(test_usual_exchange_takes_three_steps),
		cmocka_unit_test(test_head_past_the_window_is_tried_once),
		cmocka_unit_test(test_head_is_tried_again_in_a_new_window),
		cmocka_unit_test(test_pipelined_requests_queue_four_deep),
		cmocka_unit_test(test_head_answer_has_no_body),
		cmocka_unit_test(test_interim_answer_is_not_the_status),
		cmocka_unit_test(test_answer_before_the_body_waits_for_it),
		cmocka_unit_test(test_answer_before_the_body_survives_the_end),
		cmocka_unit_test(test_final_answer_before_the_body_after_a_continue),
		cmocka_unit_test(test_upgrade_leaves_http),
		cmocka_unit_test(test_finalize_settles_every_pending_request),
		cmocka_unit_test(test_ambiguous_request_stops_request_parsing),
		cmocka_unit_test(test_answer_to_a_request_before_start),
		cmocka_unit_test(test_untracked_read_counts_every_request_it_starts),
		cmocka_unit_test(test_iovecs_and_blind_bytes),
		cmocka_unit_test(test_kept_line_is_the_request_start),
		cmocka_unit_test(test_iovecs_past_the_batch),
		cmocka_unit_test(test_every_split_point_gives_the_same_records),
		cmocka_unit_test(test_outbound_requests_are_writes_and_answers_reads),
		cmocka_unit_test(test_outbound_answer_before_the_body),
		cmocka_unit_test(test_outbound_server_gone_is_502),
		cmocka_unit_test(test_outbound_own_close_is_499),
		cmocka_unit_test(test_outbound_reads_never_start_requests),
		cmocka_unit_test(test_outbound_not_http_is_ignored_as_outbound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
