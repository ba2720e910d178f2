// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the HTTP/1.x framing parser: every framing, every split, fast path = bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include <cmocka.h>

#include "tapir/http_parse.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LEN(lit)      (sizeof(lit) - 1)
#define MAX_EVENTS    512

/* One parser event, with the parser's view of the message when it was raised. */
struct ev {
	int type;
	__u64 off; /* stream offset just past the byte (or bulk run) that raised it */
	__u16 status;
	__u8 method;
	__u8 flags;
	__u8 state;
};

struct want {
	int type;
	__u64 off;
};

#define EV(t, o)               \
	{                      \
		TP_EV_##t, (o) \
	}

/*
 * A reference driver for the parser alone, one direction of one connection: bulk body bytes
 * while the parser allows it, otherwise one byte through tapir_http_feed(); re-init after each
 * message; mark answers to HEAD on START; stop following after an error or a 101. Its knobs
 * turn the bulk and fast paths off, to prove them equal to byte feeding. The walk and the
 * connection driver the BPF programs run are tested as they are in test_conn.c.
 */
struct drv {
	struct tapir_http_parser p;
	const char *methods; /* responses: one letter per request answered, 'H' for HEAD */
	__u64 off;	     /* bytes consumed over the whole stream */
	__u64 feeds;	     /* tapir_http_feed() calls */
	__u64 bulks;	     /* tapir_http_bulk() calls */
	__u64 steps;	     /* driver loop iterations */
	size_t done;	     /* messages completed */
	size_t nev;
	__u8 kind;
	__u8 stopped; /* error or upgrade: the BPF side stops parsing the connection */
	__u8 no_bulk; /* feed body bytes one by one as well, to cross-check tapir_http_bulk() */
	__u8 no_word; /* never take bytes in bulk, to cross-check tapir_http_fast() */
	__u64 words;  /* tapir_http_fast() calls that consumed bytes */
	__u64 fast;   /* bytes they consumed */
	__u64 heads;  /* whole heads taken by tapir_http_head() */
	struct ev ev[MAX_EVENTS]; /* last, so that drv_init() need not clear it */
};

static void drv_init(struct drv *d, __u8 kind, const char *methods)
{
	memset(d, 0, offsetof(struct drv, ev));
	d->kind = kind;
	d->methods = methods;
	tapir_http_init(&d->p, kind);
}

static int answering_head(const struct drv *d)
{
	return d->methods && d->done < strlen(d->methods) && d->methods[d->done] == 'H';
}

static void drv_event(struct drv *d, int type)
{
	struct ev *e;

	assert_true(d->nev < MAX_EVENTS);
	e = &d->ev[d->nev++];
	e->type = type;
	e->off = d->off;
	e->status = d->p.status;
	e->method = d->p.method;
	e->flags = d->p.flags;
	e->state = d->p.state;

	/* HEADERS is only recorded: walk_cb() turns it into NONE and the parser goes on alike. */
	switch (type) {
	case TP_EV_START:
	case TP_EV_INTERIM:
		/* on_response() marks the answer to a HEAD request, again after a 1xx. */
		if (d->kind == TP_KIND_RESPONSE && answering_head(d))
			d->p.flags |= TP_F_NO_BODY;
		break;
	case TP_EV_DONE:
		if (d->p.flags & TP_F_UPGRADED) {
			d->stopped = 1;
			break;
		}
		d->done++;
		tapir_http_init(&d->p, d->kind);
		break;
	case TP_EV_ERROR:
	case TP_EV_AMBIGUOUS: d->stopped = 1; break;
	}
}

/* The fast path, as walk_cb() takes it: two little-endian words; returns bytes taken. */
static __u32 fast_at(struct drv *d, const __u8 *at)
{
	__u64 x0, x1;
	__u32 n;

	memcpy(&x0, at, sizeof(x0));
	memcpy(&x1, at + 8, sizeof(x1));
	n = tapir_http_fast(&d->p, x0, x1);
	if (n) {
		d->words++;
		d->fast += n;
	}
	return n;
}

/* The line skip as tapir_walk_skip() takes it, within the 256 bytes a window would show. */
static __u32 skip_at(struct drv *d, const __u8 *at, size_t left)
{
	__u32 n = tapir_http_skip_window(&d->p, at, left < TAPIR_WIN ? left : TAPIR_WIN, 0);

	if (n) {
		d->words++;
		d->fast += n;
	}
	return n;
}

/* A whole head as tapir_walk_head() takes it, within the 256 bytes a window would show; the
 * window's bytes past the segment are anything (here: CRLFs, which would mislead a parser that
 * used them). */
static __u32 head_at(struct drv *d, const __u8 *at, size_t left, int *ev)
{
	struct tapir_http_parser work;
	__u8 win[TAPIR_WIN];
	size_t k = left < TAPIR_WIN ? left : TAPIR_WIN, i;
	__u32 n;

	memcpy(win, at, k);
	for (i = k; i < TAPIR_WIN; i++)
		win[i] = i % 2 ? '\n' : '\r';
	n = tapir_http_head(&d->p, &work, win, k, 0, ev);

	if (n) {
		d->heads++;
		d->words++;
		d->fast += n;
	}
	return n;
}

/* One syscall segment; returns the bytes consumed (all of them unless the driver stopped). */
static size_t drv_feed(struct drv *d, const void *data, size_t len)
{
	const __u8 *buf = data;
	__u64 left, max, n;
	size_t off = 0;
	int ev;

	while (off < len && !d->stopped) {
		left = len - off;
		max = d->no_bulk ? 0 : tapir_http_bulk_max(&d->p);
		if (max) {
			n = left < max ? left : max;
			ev = tapir_http_bulk(&d->p, n);
			d->bulks++;
		} else if (!d->no_word && (ev = tapir_http_first(&d->p, buf[off])) != TP_EV_NONE) {
			n = 1; /* a message's usual first byte, as the walk takes it */
			d->fast += n;
		} else if (!d->no_word && d->p.state == TP_START && d->p.pos == 1 &&
			   (n = head_at(d, buf + off, left, &ev))) {
			/* ev: what the head's last byte raised */
		} else if (!d->no_word && tapir_http_skip_state(&d->p) &&
			   (n = skip_at(d, buf + off, left))) {
			ev = TP_EV_NONE;
		} else if (!d->no_word && left >= 16 && !tapir_http_skip_state(&d->p) &&
			   (n = fast_at(d, buf + off))) {
			ev = TP_EV_NONE;
		} else {
			n = 1;
			ev = tapir_http_feed(&d->p, buf[off]);
			d->feeds++;
		}
		off += n;
		d->off += n;
		d->steps++;
		if (ev != TP_EV_NONE)
			drv_event(d, ev);
	}
	return off;
}

static void run(struct drv *d, __u8 kind, const char *methods, const void *data, size_t len)
{
	size_t got;

	drv_init(d, kind, methods);
	got = drv_feed(d, data, len);
	assert_true(got == len || d->stopped);
	assert_int_equal(got, d->off);
}

static const char *ev_name(int type)
{
	static const char *const names[] = {
		"NONE", "START", "HEADERS", "DONE", "INTERIM", "ERROR"
	};

	return type >= 0 && type < (int)ARRAY_SIZE(names) ? names[type] : "?";
}

static void dump_events(const struct drv *d)
{
	size_t i;

	for (i = 0; i < d->nev; i++)
		print_message("  %s@%llu status=%u method=%u flags=%#x state=%u\n",
			      ev_name(d->ev[i].type), (unsigned long long)d->ev[i].off,
			      d->ev[i].status, d->ev[i].method, d->ev[i].flags, d->ev[i].state);
}

static void expect_events(const struct drv *d, const struct want *w, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < d->nev; i++)
		if (d->ev[i].type != w[i].type || d->ev[i].off != w[i].off)
			break;
	if (i == n && d->nev == n)
		return;
	print_message("event %zu differs; want %s@%llu, got:\n", i,
		      i < n ? ev_name(w[i].type) : "nothing",
		      i < n ? (unsigned long long)w[i].off : 0ULL);
	dump_events(d);
	fail();
}

/* Where a message is refused: at its first byte, inside its start line, or after it. */
#define ERR_FIRST 0
#define ERR_LINE  1
#define ERR_AFTER 2

/*
 * One message, refused at @at: START comes first unless the first byte is refused, HEADERS only
 * when the error lies in the body, and TP_F_LINE_OK (which on_request() uses to tell "not HTTP"
 * from "HTTP we lost") only once the start line was whole and well formed.
 */
static void expect_error(__u8 kind, const void *data, size_t len, __u64 at, int where)
{
	struct drv d;
	size_t n;

	run(&d, kind, NULL, data, len);
	n = d.nev;
	if (n == 0 || d.ev[n - 1].type != TP_EV_ERROR || d.ev[n - 1].off != at) {
		print_message("want ERROR@%llu, got:\n", (unsigned long long)at);
		dump_events(&d);
		fail();
	}
	if (where == ERR_FIRST) {
		assert_int_equal(n, 1);
	} else {
		assert_true(n == 2 || (n == 3 && where == ERR_AFTER));
		assert_int_equal(d.ev[0].type, TP_EV_START);
		assert_int_equal(d.ev[0].off, 1);
		assert_true(n == 2 || d.ev[1].type == TP_EV_HEADERS);
	}
	assert_int_equal(!!(d.ev[n - 1].flags & TP_F_LINE_OK), where == ERR_AFTER);
	assert_int_equal(d.p.state, TP_ERROR);
	assert_true(d.stopped);
}

/* A growable byte string for messages built at run time. */
struct msg {
	char *buf;
	size_t len;
	size_t cap;
};

static void msg_reserve(struct msg *m, size_t n)
{
	if (m->len + n <= m->cap)
		return;
	m->cap = (m->len + n) * 2;
	m->buf = realloc(m->buf, m->cap);
	assert_non_null(m->buf);
}

static void msg_str(struct msg *m, const char *s)
{
	size_t n = strlen(s);

	msg_reserve(m, n);
	memcpy(m->buf + m->len, s, n);
	m->len += n;
}

static void msg_fill(struct msg *m, char c, size_t n)
{
	msg_reserve(m, n);
	memset(m->buf + m->len, c, n);
	m->len += n;
}

static __u64 rng_state;

/* splitmix64: seeded, so every run tests the same inputs. */
static __u64 rng(void)
{
	__u64 z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t rnd(size_t n)
{
	return n ? rng() % n : 0;
}

/* Requests */

static void test_req_get_no_body(void **state)
{
	static const char req[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
				  "User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
	struct want w[] = { EV(START, 1), EV(DONE, LEN(req)) };
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[1].method, TP_M_GET);
	assert_int_equal(d.ev[1].flags, TP_F_LINE_OK);
	assert_int_equal(d.ev[1].state, TP_DONE);
	assert_int_equal(d.p.state, TP_IDLE);
	assert_int_equal(d.feeds + d.fast, LEN(req));
	assert_int_equal(d.bulks, 0);
}

static void test_req_post_content_length(void **state)
{
#define POST_HDR "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
	static const char req[] = POST_HDR "hello world";
	struct want w[] = { EV(START, 1), EV(HEADERS, LEN(POST_HDR)), EV(DONE, LEN(req)) };
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[2].method, TP_M_POST);
	assert_int_equal(d.ev[2].flags, TP_F_HAS_CL | TP_F_LINE_OK);
	assert_int_equal(d.feeds + d.fast, LEN(POST_HDR));
	assert_int_equal(d.bulks, 1);

	/* Content-Length: 0 ends the message with its header block. */
	{
		static const char zero[] = "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
		struct want wz[] = { EV(START, 1), EV(DONE, LEN(zero)) };

		run(&d, TP_KIND_REQUEST, NULL, zero, LEN(zero));
		expect_events(&d, wz, ARRAY_SIZE(wz));
		assert_int_equal(d.ev[1].flags, TP_F_HAS_CL | TP_F_LINE_OK);
	}
#undef POST_HDR
}

static void test_req_post_1mib(void **state)
{
#define BIG_HDR "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"
#define NEXT	"GET /next HTTP/1.1\r\n\r\n"
	const size_t body = 1 << 20, total = LEN(BIG_HDR) + body + LEN(NEXT);
	struct want w[] = {
		EV(START, 1),
		EV(HEADERS, LEN(BIG_HDR)),
		EV(DONE, LEN(BIG_HDR) + body),
		EV(START, LEN(BIG_HDR) + body + 1),
		EV(DONE, total),
	};
	struct msg m = { 0 };
	struct drv *d = malloc(sizeof(*d));
	size_t off, n;

	assert_non_null(d);
	msg_str(&m, BIG_HDR);
	msg_fill(&m, 'x', body);
	msg_str(&m, NEXT);
	assert_int_equal(m.len, total);

	/* One buffer: the whole body goes in one bulk step. */
	run(d, TP_KIND_REQUEST, NULL, m.buf, m.len);
	expect_events(d, w, ARRAY_SIZE(w));
	assert_int_equal(d->ev[2].method, TP_M_POST);
	assert_int_equal(d->ev[4].method, TP_M_GET);
	assert_int_equal(d->feeds + d->fast, LEN(BIG_HDR) + LEN(NEXT));
	assert_int_equal(d->bulks, 1);

	/* 64 KiB reads, as a server would do them: one bulk step per read, no byte feeding. */
	drv_init(d, TP_KIND_REQUEST, NULL);
	for (off = 0; off < m.len; off += n) {
		n = m.len - off < 65536 ? m.len - off : 65536;
		assert_int_equal(drv_feed(d, m.buf + off, n), n);
	}
	expect_events(d, w, ARRAY_SIZE(w));
	assert_int_equal(d->feeds + d->fast, LEN(BIG_HDR) + LEN(NEXT));
	assert_true(d->bulks <= 17);
	free(m.buf);
	free(d);
#undef BIG_HDR
#undef NEXT
}

static void test_req_chunked(void **state)
{
#define CH_HDR "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
#define CH_BODY                                              \
	"5;name=value\r\nhello\r\n"                          \
	"1A; a=b; c=\"d\"\r\nabcdefghijklmnopqrstuvwxyz\r\n" \
	"E\r\n in\r\n\r\nchunks.\r\n"                        \
	"0;last\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n"
#define CH_NEXT "GET / HTTP/1.1\r\n\r\n"
	static const char req[] = CH_HDR CH_BODY CH_NEXT;
	struct want w[] = {
		EV(START, 1),
		EV(HEADERS, LEN(CH_HDR)),
		EV(DONE, LEN(CH_HDR CH_BODY)),
		EV(START, LEN(CH_HDR CH_BODY) + 1),
		EV(DONE, LEN(req)),
	};
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[2].flags, TP_F_CHUNKED | TP_F_LINE_OK);
	assert_int_equal(d.ev[2].method, TP_M_POST);
	assert_int_equal(d.bulks, 3); /* the chunk payloads, never fed byte by byte */
	assert_int_equal(d.feeds + d.fast, LEN(req) - 5 - 26 - 14);
	assert_int_equal(d.p.state, TP_IDLE);

	/* Broken chunk framing. */
	expect_error(TP_KIND_REQUEST, CH_HDR "3\r\nabcd\r\n", LEN(CH_HDR "3\r\nabcd\r\n"),
		     LEN(CH_HDR "3\r\nabcd"), ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CH_HDR "g\r\n", LEN(CH_HDR "g\r\n"), LEN(CH_HDR "g"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CH_HDR "\r\n", LEN(CH_HDR "\r\n"), LEN(CH_HDR "\r\n"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CH_HDR "-1\r\n", LEN(CH_HDR "-1\r\n"), LEN(CH_HDR "-"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CH_HDR "1234567890abcdef\r\n",
		     LEN(CH_HDR "1234567890abcdef\r\n"), LEN(CH_HDR "1234567890abcdef"), ERR_AFTER);
#undef CH_HDR
#undef CH_BODY
#undef CH_NEXT
}

static void test_req_pipelined(void **state)
{
#define P1 "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
#define P2 "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
#define P3 "abc"
#define P4 "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
#define P5 "HEAD /d HTTP/1.1\r\n\r\n"
	static const char req[] = P1 P2 P3 P4 P5;
	static const __u8 methods[] = { TP_M_GET, TP_M_POST, TP_M_PUT, TP_M_HEAD };
	struct want w[] = {
		EV(START, 1),
		EV(DONE, LEN(P1)),
		EV(START, LEN(P1) + 1),
		EV(HEADERS, LEN(P1 P2)),
		EV(DONE, LEN(P1 P2 P3)),
		EV(START, LEN(P1 P2 P3) + 1),
		EV(HEADERS, LEN(P1 P2 P3 "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")),
		EV(DONE, LEN(P1 P2 P3 P4)),
		EV(START, LEN(P1 P2 P3 P4) + 1),
		EV(DONE, LEN(req)),
	};
	struct drv d;
	size_t i, k = 0;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));
	for (i = 0; i < d.nev; i++)
		if (d.ev[i].type == TP_EV_DONE)
			assert_int_equal(d.ev[i].method, methods[k++]);
	assert_int_equal(k, ARRAY_SIZE(methods));
	assert_int_equal(d.done, 4);
#undef P1
#undef P2
#undef P3
#undef P4
#undef P5
}

static void test_req_leading_crlf(void **state)
{
	static const char req[] = "\r\n\r\nGET / HTTP/1.1\r\n\r\n"
				  "\r\nGET /2 HTTP/1.1\r\n\r\n";
	static const char lf[] = "\nGET / HTTP/1.1\nHost: a\n\n";
	struct want w[] = {
		EV(START, 5),
		EV(DONE, LEN("\r\n\r\nGET / HTTP/1.1\r\n\r\n")),
		EV(START, LEN("\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\n") + 1),
		EV(DONE, LEN(req)),
	};
	struct want wlf[] = { EV(START, 2), EV(DONE, LEN(lf)) };
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));

	/* Bare LF line ends are tolerated too (RFC 9112 2.2). */
	run(&d, TP_KIND_REQUEST, NULL, lf, LEN(lf));
	expect_events(&d, wlf, ARRAY_SIZE(wlf));

	/* Blank lines alone are no message at all. */
	run(&d, TP_KIND_REQUEST, NULL, "\r\n\r\n\n", 5);
	assert_int_equal(d.nev, 0);
	assert_int_equal(d.p.state, TP_IDLE);
}

static void test_req_http10(void **state)
{
	static const char r10[] = "GET / HTTP/1.0\r\n\r\n";
	static const char r11[] = "GET / HTTP/1.1\r\n\r\n";
	struct want w10[] = { EV(START, 1), EV(DONE, LEN(r10)) };
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, r10, LEN(r10));
	expect_events(&d, w10, ARRAY_SIZE(w10));
	assert_int_equal(d.ev[1].flags, TP_F_HTTP10 | TP_F_LINE_OK);
	assert_int_equal(d.ev[1].method, TP_M_GET);

	run(&d, TP_KIND_REQUEST, NULL, r11, LEN(r11));
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].flags, TP_F_LINE_OK);
}

static void test_req_methods(void **state)
{
	static const struct {
		const char *line;
		__u8 method;
	} t[] = {
		{ "GET / HTTP/1.1\r\n\r\n", TP_M_GET },
		{ "HEAD / HTTP/1.1\r\n\r\n", TP_M_HEAD },
		{ "POST / HTTP/1.1\r\n\r\n", TP_M_POST },
		{ "PUT / HTTP/1.1\r\n\r\n", TP_M_PUT },
		{ "DELETE /x HTTP/1.1\r\n\r\n", TP_M_DELETE },
		{ "OPTIONS * HTTP/1.1\r\n\r\n", TP_M_OPTIONS },
		{ "PATCH /x HTTP/1.1\r\n\r\n", TP_M_PATCH },
		{ "CONNECT example.com:443 HTTP/1.1\r\n\r\n", TP_M_CONNECT },
		{ "TRACE / HTTP/1.1\r\n\r\n", TP_M_TRACE },
	};
	struct drv d;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		struct want w[] = { EV(START, 1), EV(DONE, strlen(t[i].line)) };

		run(&d, TP_KIND_REQUEST, NULL, t[i].line, strlen(t[i].line));
		expect_events(&d, w, ARRAY_SIZE(w));
		assert_int_equal(d.ev[1].method, t[i].method);
	}
}

static void test_req_not_http(void **state)
{
	static const __u8 hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03,
				      0x03, 0x5a, 0x1c, 0x00, 0x20, 'G',  'E',	'T',  ' ',  '/' };
	static const char pri[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct drv d;
	int i, j;

	/* TLS ClientHello: refused on its first byte, before any START. */
	expect_error(TP_KIND_REQUEST, hello, sizeof(hello), 1, ERR_FIRST);

	/* HTTP/2 prior knowledge: refused at the space after "PRI", with the method left set,
	 * which is how on_request() tells HTTP/2 from other protocols. */
	expect_error(TP_KIND_REQUEST, pri, LEN(pri), 4, ERR_LINE);
	run(&d, TP_KIND_REQUEST, NULL, pri, LEN(pri));
	assert_int_equal(d.p.method, TP_M_PRI);
	assert_int_equal(d.p.remaining, 0x505249);

	expect_error(TP_KIND_REQUEST, "get / HTTP/1.1\r\n\r\n", 18, 1, ERR_FIRST);
	expect_error(TP_KIND_REQUEST, "Get / HTTP/1.1\r\n\r\n", 18, 2, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "FOO / HTTP/1.1\r\n\r\n", 18, 4, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "GETX / HTTP/1.1\r\n\r\n", 19, 5, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "GETS / HTTP/1.1\r\n\r\n", 19, 5, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "OPTIONSX * HTTP/1.1\r\n", 21, 8, ERR_LINE);
	expect_error(TP_KIND_REQUEST, " GET / HTTP/1.1\r\n", 17, 1, ERR_FIRST);
	expect_error(TP_KIND_REQUEST, "SSH-2.0-OpenSSH_9.2\r\n", 21, 4, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "G\0ET / HTTP/1.1\r\n", 17, 2, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "\x00\x00\x00\x00", 4, 1, ERR_FIRST);

	/* Random binary is refused within the longest method token and its space. */
	rng_state = 1;
	for (i = 0; i < 2000; i++) {
		__u8 buf[64];

		for (j = 0; j < (int)sizeof(buf); j++)
			buf[j] = rng();
		if (buf[0] == '\r' || buf[0] == '\n')
			buf[0] = 0xff;
		run(&d, TP_KIND_REQUEST, NULL, buf, sizeof(buf));
		assert_true(d.nev >= 1 && d.nev <= 2);
		assert_int_equal(d.ev[d.nev - 1].type, TP_EV_ERROR);
		assert_true(d.ev[d.nev - 1].off <= 8);
		assert_int_equal(d.done, 0);
	}
}

static void test_req_bad_version(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/2.0\r\n",  "GET / HTTP/1.1x\r\n", "GET / http/1.1\r\n",
		"GET / HTTP/1.1 \r\n", "GET / HTTP/11\r\n",   "GET / FTP/1.1\r\n",
		"GET / HTTPS/1.1\r\n", "GET /\r\n",	      "GET / \r\n",
		"GET / HTTP/1.\r\n",   "GET /xHTTP/1\r\n",
	};
	size_t i, n;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		n = strlen(bad[i]);
		expect_error(TP_KIND_REQUEST, bad[i], n, n, ERR_LINE);
	}
	/* No target at all, or the line ends before a method does. */
	expect_error(TP_KIND_REQUEST, "GET\r\n", 5, 4, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "GET\n", 4, 4, ERR_LINE);
	expect_error(TP_KIND_REQUEST, "GET \n", 5, 5, ERR_LINE);
}

static void expect_cl_body(const char *hdr, size_t body_len)
{
	struct msg m = { 0 };
	struct drv d;
	size_t h = strlen(hdr);
	struct want w[] = { EV(START, 1), EV(HEADERS, h), EV(DONE, h + body_len) };

	msg_str(&m, hdr);
	msg_fill(&m, 'b', body_len);
	run(&d, TP_KIND_REQUEST, NULL, m.buf, m.len);
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_true(d.ev[2].flags & TP_F_HAS_CL);
	free(m.buf);
}

static void test_req_header_case(void **state)
{
	static const char te[] = "POST / HTTP/1.1\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n"
				 "1\r\nx\r\n0\r\n\r\n";
	struct drv d;

	expect_cl_body("POST / HTTP/1.1\r\nCONTENT-LENGTH: 2\r\n\r\n", 2);
	expect_cl_body("POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n", 2);
	expect_cl_body("POST / HTTP/1.1\r\ncOnTeNt-LeNgTh: 2\r\n\r\n", 2);

	run(&d, TP_KIND_REQUEST, NULL, te, LEN(te));
	assert_int_equal(d.nev, 3);
	assert_int_equal(d.ev[2].type, TP_EV_DONE);
	assert_int_equal(d.ev[2].off, LEN(te));
	assert_int_equal(d.ev[2].flags, TP_F_CHUNKED | TP_F_LINE_OK);
}

static void test_req_content_length_values(void **state)
{
#define CL "POST / HTTP/1.1\r\nContent-Length: "
	/* Optional whitespace around the value. */
	expect_cl_body("POST / HTTP/1.1\r\nContent-Length:   12  \r\n\r\n", 12);
	expect_cl_body("POST / HTTP/1.1\r\nContent-Length:\t12\t\r\n\r\n", 12);
	expect_cl_body("POST / HTTP/1.1\r\nContent-Length:12\r\n\r\n", 12);
	expect_cl_body("POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n", 7);
	expect_cl_body("POST / HTTP/1.1\r\nContent-Length: 123456\r\n\r\n", 123456);

	/* Duplicates are refused (RFC 9112 6.3), equal or not, whatever their case. */
	expect_error(TP_KIND_REQUEST, CL "2\r\nContent-Length: 2\r\n\r\nok",
		     LEN(CL "2\r\nContent-Length: 2\r\n\r\nok"), LEN(CL "2\r\nContent-Length: 2"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "2\r\nX: y\r\ncontent-length: 3\r\n\r\nok",
		     LEN(CL "2\r\nX: y\r\ncontent-length: 3\r\n\r\nok"),
		     LEN(CL "2\r\nX: y\r\ncontent-length: 3"), ERR_AFTER);

	/* Anything but digits. */
	expect_error(TP_KIND_REQUEST, CL "1x\r\n\r\n", LEN(CL "1x\r\n\r\n"), LEN(CL "1x"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "-1\r\n\r\n", LEN(CL "-1\r\n\r\n"), LEN(CL "-"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "+1\r\n\r\n", LEN(CL "+1\r\n\r\n"), LEN(CL "+"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "0x10\r\n\r\n", LEN(CL "0x10\r\n\r\n"), LEN(CL "0x"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "1,1\r\n\r\n", LEN(CL "1,1\r\n\r\n"), LEN(CL "1,"),
		     ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "\r\n\r\n", LEN(CL "\r\n\r\n"), LEN(CL "\r\n"), ERR_AFTER);
	expect_error(TP_KIND_REQUEST, CL "abc\r\n\r\n", LEN(CL "abc\r\n\r\n"), LEN(CL "a"),
		     ERR_AFTER);
	/* More digits than any body could have. */
	expect_error(TP_KIND_REQUEST, CL "1234567890123456789\r\n\r\n",
		     LEN(CL "1234567890123456789\r\n\r\n"), LEN(CL "1234567890123456789"),
		     ERR_AFTER);
#undef CL
}

static void test_req_transfer_encoding(void **state)
{
#define TE  "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
#define TE2 "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
	static const char req[] = TE "3\r\nabc\r\n0\r\n\r\n";
	static const char req2[] = TE2 "3\r\nabc\r\n0\r\n\r\n";
	static const char req4[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
				   "Content-Length: 4\r\n\r\n0\r\n\r\n";
	static const char req3[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chchunked\r\n\r\n"
				   "0\r\n\r\n";
	struct want w[] = { EV(START, 1), EV(HEADERS, LEN(TE)), EV(DONE, LEN(req)) };
	struct want w2[] = { EV(START, 1), EV(AMBIGUOUS, LEN(TE2)) };
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[2].flags, TP_F_CHUNKED | TP_F_LINE_OK);

	/* Content-Length with chunked is ambiguous (RFC 9112 6.3): the parser stops at the end
	 * of the header block, in either order of the two headers. */
	run(&d, TP_KIND_REQUEST, NULL, req2, LEN(req2));
	expect_events(&d, w2, ARRAY_SIZE(w2));
	assert_int_equal(d.ev[1].flags, TP_F_CHUNKED | TP_F_HAS_CL | TP_F_LINE_OK);
	run(&d, TP_KIND_REQUEST, NULL, req4, LEN(req4));
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].type, TP_EV_AMBIGUOUS);

	/* A false start inside the value does not hide the word. */
	run(&d, TP_KIND_REQUEST, NULL, req3, LEN(req3));
	assert_int_equal(d.nev, 3);
	assert_int_equal(d.ev[2].type, TP_EV_DONE);
	assert_int_equal(d.ev[2].off, LEN(req3));
#undef TE
#undef TE2
}

static void test_req_lookalike_headers(void **state)
{
#define LA                                           \
	"POST / HTTP/1.1\r\n"                        \
	"Content-Type: text/plain\r\n"               \
	"Content-Length-Extra: 99\r\n"               \
	"Content-Lengthy: 98\r\n"                    \
	"X-Content-Length: 97\r\n"                   \
	"Content-Location: /x\r\n"                   \
	"Connection-Foo: close\r\n"                  \
	"ConnectionX: upgrade\r\n"                   \
	"Proxy-Connection: close\r\n"                \
	"Transfer-Encodings: chunked\r\n"            \
	"Transfer: chunked\r\n"                      \
	"Conn: close\r\n"                            \
	"X-Note: Content-Length: 5, chunked\r\n"     \
	"Content-Length: 3\r\n"                      \
	"Keep-Alive: Connection: Upgrade, close\r\n" \
	"\r\n"
	static const char req[] = LA "abc";
	static const char none[] = "GET / HTTP/1.1\r\nContent-Length-Extra: 5\r\n"
				   "Content-Type: text/plain\r\nConnection-Foo: close\r\n\r\n";
	struct want w[] = { EV(START, 1), EV(HEADERS, LEN(LA)), EV(DONE, LEN(req)) };
	struct want wn[] = { EV(START, 1), EV(DONE, LEN(none)) };
	struct drv d;

	run(&d, TP_KIND_REQUEST, NULL, req, LEN(req));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[2].flags, TP_F_HAS_CL | TP_F_LINE_OK);

	run(&d, TP_KIND_REQUEST, NULL, none, LEN(none));
	expect_events(&d, wn, ARRAY_SIZE(wn));
	assert_int_equal(d.ev[1].flags, TP_F_LINE_OK);
#undef LA
}

/* A request whose start line is @line_len bytes and header block @total bytes, CRLFs included. */
static void build_request(struct msg *m, size_t line_len, size_t total)
{
	m->len = 0;
	msg_str(m, "GET /");
	msg_fill(m, 'a', line_len - LEN("GET / HTTP/1.1\r\n"));
	msg_str(m, " HTTP/1.1\r\n");
	if (total > line_len + 2) {
		msg_str(m, "X-Pad: ");
		msg_fill(m, 'p', total - line_len - 2 - LEN("X-Pad: \r\n"));
		msg_str(m, "\r\n");
	}
	msg_str(m, "\r\n");
	assert_int_equal(m->len, total);
}

static void test_req_oversized(void **state)
{
	struct msg m = { 0 };
	struct drv d;

	/* A header block of exactly TP_MAX_HEADER_BYTES is fine, one byte more is not. */
	build_request(&m, 100, TP_MAX_HEADER_BYTES);
	run(&d, TP_KIND_REQUEST, NULL, m.buf, m.len);
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].type, TP_EV_DONE);
	assert_int_equal(d.ev[1].off, TP_MAX_HEADER_BYTES);

	build_request(&m, 100, TP_MAX_HEADER_BYTES + 1);
	expect_error(TP_KIND_REQUEST, m.buf, m.len, TP_MAX_HEADER_BYTES + 1, ERR_AFTER);

	/* Far larger: the error comes at the limit, not at the end. */
	build_request(&m, 100, 4 * TP_MAX_HEADER_BYTES);
	expect_error(TP_KIND_REQUEST, m.buf, m.len, TP_MAX_HEADER_BYTES + 1, ERR_AFTER);

	/* Many ordinary header lines add up the same way. */
	m.len = 0;
	msg_str(&m, "GET / HTTP/1.1\r\n");
	while (m.len <= TP_MAX_HEADER_BYTES)
		msg_str(&m, "X-Forwarded-For: 192.168.100.200\r\n");
	msg_str(&m, "\r\n");
	expect_error(TP_KIND_REQUEST, m.buf, m.len, TP_MAX_HEADER_BYTES + 1, ERR_AFTER);

	/* The start line has its own, smaller limit. */
	build_request(&m, TP_MAX_START_LINE, TP_MAX_START_LINE + 2);
	run(&d, TP_KIND_REQUEST, NULL, m.buf, m.len);
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].type, TP_EV_DONE);
	build_request(&m, TP_MAX_START_LINE + 1, TP_MAX_START_LINE + 3);
	expect_error(TP_KIND_REQUEST, m.buf, m.len, TP_MAX_START_LINE + 1, ERR_LINE);

	/* Blank lines before a message do not count against its header block. */
	build_request(&m, 100, TP_MAX_HEADER_BYTES);
	run(&d, TP_KIND_REQUEST, NULL, "\r\n\r\n", 4);
	assert_int_equal(drv_feed(&d, m.buf, m.len), m.len);
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].type, TP_EV_DONE);
	assert_int_equal(d.ev[1].off, 4 + TP_MAX_HEADER_BYTES);

	/* Same limit for responses. */
	m.len = 0;
	msg_str(&m, "HTTP/1.1 200 OK\r\nX-Pad: ");
	msg_fill(&m, 'p', TP_MAX_HEADER_BYTES);
	msg_str(&m, "\r\nContent-Length: 0\r\n\r\n");
	expect_error(TP_KIND_RESPONSE, m.buf, m.len, TP_MAX_HEADER_BYTES + 1, ERR_AFTER);
	free(m.buf);
}

/* Responses */

static void test_resp_content_length(void **state)
{
#define RH "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"
	static const char resp[] = RH "hello";
	struct want w[] = { EV(START, 1), EV(HEADERS, LEN(RH)), EV(DONE, LEN(resp)) };
	struct drv d;

	run(&d, TP_KIND_RESPONSE, "G", resp, LEN(resp));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[2].status, 200);
	assert_int_equal(d.ev[2].flags, TP_F_HAS_CL | TP_F_LINE_OK);
	assert_int_equal(d.bulks, 1);
	assert_int_equal(d.feeds + d.fast, LEN(RH));
	assert_int_equal(d.p.state, TP_IDLE);
#undef RH
}

static void test_resp_chunked(void **state)
{
	/* Chunk sizes in lower, upper and mixed case hex, with leading zeros. */
	static const char *const sizes[] = { "1",   "a",   "A",	  "1f",	  "2A",	   "fF",   "100",
					     "ABC", "def", "dEf", "1000", "0000a", "7fff", "3" };
	struct msg m = { 0 };
	struct drv d;
	size_t i, hdr, data = 0, n;

	msg_str(&m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: x\r\n\r\n");
	hdr = m.len;
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		n = strtoul(sizes[i], NULL, 16);
		msg_str(&m, sizes[i]);
		msg_str(&m, i % 2 ? ";ext=1\r\n" : "\r\n");
		msg_fill(&m, '0' + i % 10, n);
		msg_str(&m, "\r\n");
		data += n;
	}
	msg_str(&m, "0\r\n\r\n");
	{
		struct want w[] = { EV(START, 1), EV(HEADERS, hdr), EV(DONE, m.len) };

		run(&d, TP_KIND_RESPONSE, "G", m.buf, m.len);
		expect_events(&d, w, ARRAY_SIZE(w));
	}
	assert_int_equal(d.ev[2].status, 200);
	assert_int_equal(d.ev[2].flags, TP_F_CHUNKED | TP_F_LINE_OK);
	assert_int_equal(d.bulks, ARRAY_SIZE(sizes));
	assert_int_equal(d.feeds + d.fast, m.len - data);
	free(m.buf);
}

static void test_resp_close_delimited(void **state)
{
#define CD "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
	static const char more[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	static const char r10[] = "HTTP/1.0 200 OK\r\n\r\nbody";
	struct want w[] = { EV(START, 1), EV(HEADERS, LEN(CD)) };
	struct drv d;
	int i;

	drv_init(&d, TP_KIND_RESPONSE, "G");
	assert_int_equal(drv_feed(&d, CD, LEN(CD)), LEN(CD));
	/* Whatever follows is body until the connection closes, even a status line. */
	for (i = 0; i < 100; i++)
		assert_int_equal(drv_feed(&d, more, LEN(more)), LEN(more));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.p.state, TP_BODY_CLOSE);
	assert_int_equal(d.ev[1].flags, TP_F_CLOSE | TP_F_LINE_OK);
	assert_int_equal(d.ev[1].status, 200);
	assert_int_equal(d.feeds + d.fast, LEN(CD));
	assert_int_equal(d.done, 0);

	/* HTTP/1.0 without Content-Length. */
	run(&d, TP_KIND_RESPONSE, "G", r10, LEN(r10));
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].type, TP_EV_HEADERS);
	assert_int_equal(d.ev[1].flags, TP_F_HTTP10 | TP_F_LINE_OK);
	assert_int_equal(d.p.state, TP_BODY_CLOSE);
#undef CD
}

static void test_resp_no_body_status(void **state)
{
#define R1 "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
#define R2 "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n"
#define R3 "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
#define R4 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	static const char resp[] = R1 R2 R3 R4;
	struct want w[] = {
		EV(START, 1),
		EV(DONE, LEN(R1)),
		EV(START, LEN(R1) + 1),
		EV(DONE, LEN(R1 R2)),
		EV(START, LEN(R1 R2) + 1),
		EV(DONE, LEN(R1 R2 R3)),
		EV(START, LEN(R1 R2 R3) + 1),
		EV(HEADERS, LEN(R1 R2 R3) + LEN(R4) - 2),
		EV(DONE, LEN(resp)),
	};
	struct drv d;

	run(&d, TP_KIND_RESPONSE, "GGGG", resp, LEN(resp));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[1].status, 204);
	assert_int_equal(d.ev[3].status, 304);
	assert_int_equal(d.ev[5].status, 204);
	assert_int_equal(d.ev[8].status, 200);
#undef R1
#undef R2
#undef R3
#undef R4
}

static void test_resp_head(void **state)
{
#define H1 "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
#define H2 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
#define H3 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
#define H4 "HTTP/1.1 200 OK\r\n\r\n"
	static const char resp[] = H1 H2 H3 H4;
	struct want w[] = {
		EV(START, 1),
		EV(DONE, LEN(H1)),
		EV(START, LEN(H1) + 1),
		EV(HEADERS, LEN(H1 H2) - 3),
		EV(DONE, LEN(H1 H2)),
		EV(START, LEN(H1 H2) + 1),
		EV(DONE, LEN(H1 H2 H3)),
		EV(START, LEN(H1 H2 H3) + 1),
		EV(DONE, LEN(resp)),
	};
	struct drv d;

	/* Answers to HEAD, GET, HEAD, HEAD: only the GET answer has a body. */
	run(&d, TP_KIND_RESPONSE, "HGHH", resp, LEN(resp));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[1].flags, TP_F_NO_BODY | TP_F_HAS_CL | TP_F_LINE_OK);
	assert_int_equal(d.ev[4].flags, TP_F_HAS_CL | TP_F_LINE_OK);
	assert_int_equal(d.ev[6].flags, TP_F_NO_BODY | TP_F_CHUNKED | TP_F_LINE_OK);
	assert_int_equal(d.ev[8].flags, TP_F_NO_BODY | TP_F_LINE_OK);
	assert_int_equal(d.p.state, TP_IDLE);
#undef H1
#undef H2
#undef H3
#undef H4
}

static void test_resp_interim(void **state)
{
#define C1 "HTTP/1.1 100 Continue\r\n\r\n"
#define C2 "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nConnection: close\r\n\r\n"
#define C3 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
	static const char resp[] = C1 C2 C3 "ok";
	static const char head[] = C1 C3;
	struct want w[] = {
		EV(START, 1),
		EV(INTERIM, LEN(C1)),
		EV(START, LEN(C1) + 1),
		EV(INTERIM, LEN(C1 C2)),
		EV(START, LEN(C1 C2) + 1),
		EV(HEADERS, LEN(C1 C2 C3)),
		EV(DONE, LEN(resp)),
	};
	struct want wh[] = {
		EV(START, 1),
		EV(INTERIM, LEN(C1)),
		EV(START, LEN(C1) + 1),
		EV(DONE, LEN(head)),
	};
	struct drv d;
	size_t i;

	run(&d, TP_KIND_RESPONSE, "G", resp, LEN(resp));
	expect_events(&d, w, ARRAY_SIZE(w));
	/* The interim response leaves the parser idle, forgetting its status and flags. */
	assert_int_equal(d.ev[1].state, TP_IDLE);
	assert_int_equal(d.ev[3].flags, 0);
	assert_int_equal(d.ev[6].status, 200);
	assert_int_equal(d.ev[6].flags, TP_F_HAS_CL | TP_F_LINE_OK);
	assert_int_equal(d.done, 1);

	/* Answering HEAD: NO_BODY survives the 1xx. */
	run(&d, TP_KIND_RESPONSE, "H", head, LEN(head));
	expect_events(&d, wh, ARRAY_SIZE(wh));
	assert_int_equal(d.ev[3].flags, TP_F_NO_BODY | TP_F_HAS_CL | TP_F_LINE_OK);

	/* The parser keeps it by itself, without the driver setting it again after the 1xx. */
	tapir_http_init(&d.p, TP_KIND_RESPONSE);
	d.p.flags |= TP_F_NO_BODY;
	for (i = 0; i < LEN(C1) - 1; i++)
		tapir_http_feed(&d.p, C1[i]);
	assert_int_equal(tapir_http_feed(&d.p, '\n'), TP_EV_INTERIM);
	assert_int_equal(d.p.state, TP_IDLE);
	assert_int_equal(d.p.flags, TP_F_NO_BODY);
#undef C1
#undef C2
#undef C3
}

static void test_resp_switching_protocols(void **state)
{
#define SW                                     \
	"HTTP/1.1 101 Switching Protocols\r\n" \
	"Upgrade: websocket\r\n"               \
	"Connection: Upgrade\r\n"              \
	"Sec-WebSocket-Accept: x\r\n\r\n"
	static const char resp[] = SW "\x81\x05hello";
	struct want w[] = { EV(START, 1), EV(DONE, LEN(SW)) };
	struct drv d;

	drv_init(&d, TP_KIND_RESPONSE, "G");
	assert_int_equal(drv_feed(&d, resp, LEN(resp)), LEN(SW));
	expect_events(&d, w, ARRAY_SIZE(w));
	assert_int_equal(d.ev[1].status, 101);
	assert_int_equal(d.ev[1].flags, TP_F_UPGRADED | TP_F_UPGRADE | TP_F_LINE_OK);
	assert_int_equal(d.p.state, TP_DONE);
	assert_true(d.stopped);
#undef SW
}

static void test_resp_connection_flags(void **state)
{
	static const struct {
		const char *value;
		__u8 flags;
	} t[] = {
		{ "close", TP_F_CLOSE },
		{ "Close", TP_F_CLOSE },
		{ "Upgrade", TP_F_UPGRADE },
		{ "upgrade", TP_F_UPGRADE },
		{ "keep-alive", 0 },
		{ "keep-alive, CLOSE", TP_F_CLOSE },
		{ "Upgrade, close", TP_F_CLOSE | TP_F_UPGRADE },
		{ "  close  ", TP_F_CLOSE },
		{ "clos", 0 },
		{ "clclose", TP_F_CLOSE }, /* a false start must not hide the match */
		{ "upupgrade", TP_F_UPGRADE },
		{ "", 0 },
	};
	static const char ws[] =
		"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
	struct msg m = { 0 };
	struct drv d;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		m.len = 0;
		msg_str(&m, "HTTP/1.1 200 OK\r\nConnection: ");
		msg_str(&m, t[i].value);
		msg_str(&m, "\r\nContent-Length: 0\r\n\r\n");
		run(&d, TP_KIND_RESPONSE, "G", m.buf, m.len);
		assert_int_equal(d.nev, 2);
		assert_int_equal(d.ev[1].type, TP_EV_DONE);
		assert_int_equal(d.ev[1].off, m.len);
		assert_int_equal(d.ev[1].flags, t[i].flags | TP_F_HAS_CL | TP_F_LINE_OK);
	}

	/* Requests carry the same flags. */
	run(&d, TP_KIND_REQUEST, NULL, ws, LEN(ws));
	assert_int_equal(d.nev, 2);
	assert_int_equal(d.ev[1].off, LEN(ws));
	assert_int_equal(d.ev[1].flags, TP_F_UPGRADE | TP_F_LINE_OK);
	free(m.buf);
}

static void test_resp_bad_status(void **state)
{
	static const struct {
		const char *line;
		__u64 at;
		int where;
	} t[] = {
		{ "HTTP/2 200 OK\r\n", 6, ERR_LINE },
		{ "HTTP/1.1 20\r\n", 12, ERR_LINE },
		{ "HTTP/1.1 20\n", 12, ERR_LINE },
		{ "HTTP/1.1 099 x\r\n", 10, ERR_LINE },
		{ "HTTP/1.1 000 x\r\n", 10, ERR_LINE },
		{ "HTTP/1.2 200 OK\r\n", 8, ERR_LINE },
		{ "HTTP/1.1 2000 OK\r\n", 13, ERR_LINE },
		{ "HTTP/1.1  200 OK\r\n", 10, ERR_LINE },
		{ "HTTP/1.1 20x OK\r\n", 12, ERR_LINE },
		{ "HTTP/1.1 200OK\r\n", 13, ERR_LINE },
		{ "HTTP/1.1\r\n", 9, ERR_LINE },
		{ "HTTP/1.1 \r\n", 10, ERR_LINE },
		{ "http/1.1 200 OK\r\n", 1, ERR_FIRST },
		{ "ICY 200 OK\r\n", 1, ERR_FIRST },
		{ "HTTP/1.1-200 OK\r\n", 9, ERR_LINE },
		{ "\x16\x03\x03\x00\x5a\x02", 1, ERR_FIRST },
	};
	struct drv d;
	size_t i;
	int j;

	for (i = 0; i < ARRAY_SIZE(t); i++)
		expect_error(TP_KIND_RESPONSE, t[i].line, strlen(t[i].line), t[i].at, t[i].where);

	rng_state = 2;
	for (i = 0; i < 2000; i++) {
		__u8 buf[32];

		for (j = 0; j < (int)sizeof(buf); j++)
			buf[j] = rng();
		if (buf[0] == '\r' || buf[0] == '\n')
			buf[0] = 0;
		run(&d, TP_KIND_RESPONSE, "G", buf, sizeof(buf));
		assert_true(d.nev >= 1 && d.nev <= 2);
		assert_int_equal(d.ev[d.nev - 1].type, TP_EV_ERROR);
		assert_true(d.ev[d.nev - 1].off <= 7);
	}
}

static void test_resp_status_exact(void **state)
{
	static const struct {
		const char *line;
		__u16 status;
		__u8 flags;
	} t[] = {
		{ "HTTP/1.1 200 OK\r\n", 200, 0 },
		{ "HTTP/1.1 503 Service Unavailable\r\n", 503, 0 },
		{ "HTTP/1.1 418 I'm a teapot\r\n", 418, 0 },
		{ "HTTP/1.1 404\r\n", 404, 0 },
		{ "HTTP/1.1 404 \r\n", 404, 0 },
		{ "HTTP/1.1 201\n", 201, 0 },
		{ "HTTP/1.0 302 Found\r\n", 302, TP_F_HTTP10 },
		{ "HTTP/1.1 599 x y z\r\n", 599, 0 },
		{ "HTTP/1.1 999 Whatever\r\n", 999, 0 },
		{ "HTTP/1.1 200 \xff\x01 odd reason\r\n", 200, 0 },
	};
	struct msg m = { 0 };
	struct drv d;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		m.len = 0;
		msg_str(&m, t[i].line);
		msg_str(&m, "Content-Length: 0\r\n\r\n");
		run(&d, TP_KIND_RESPONSE, "G", m.buf, m.len);
		assert_int_equal(d.nev, 2);
		assert_int_equal(d.ev[1].type, TP_EV_DONE);
		assert_int_equal(d.ev[1].off, m.len);
		assert_int_equal(d.ev[1].status, t[i].status);
		assert_int_equal(d.ev[1].flags, t[i].flags | TP_F_HAS_CL | TP_F_LINE_OK);
	}
	free(m.buf);
}

static void test_sticky_states(void **state)
{
	struct tapir_http_parser p;
	int i;

	/* An error stays an error. */
	tapir_http_init(&p, TP_KIND_REQUEST);
	assert_int_equal(tapir_http_feed(&p, 0x16), TP_EV_ERROR);
	for (i = 0; i < 4; i++)
		assert_int_equal(tapir_http_feed(&p, 'G'), TP_EV_ERROR);
	assert_int_equal(tapir_http_bulk_max(&p), 0);

	/* A finished message wants a reset before the next one. */
	tapir_http_init(&p, TP_KIND_RESPONSE);
	for (i = 0; i < (int)LEN("HTTP/1.1 204 x\r\n\r"); i++)
		assert_int_equal(tapir_http_feed(&p, "HTTP/1.1 204 x\r\n\r"[i]),
				 i ? TP_EV_NONE : TP_EV_START);
	assert_int_equal(tapir_http_feed(&p, '\n'), TP_EV_DONE);
	assert_int_equal(tapir_http_bulk_max(&p), 0);
	assert_int_equal(tapir_http_feed(&p, 'H'), TP_EV_ERROR);
}

/* Split invariance */

struct sample {
	const char *name;
	__u8 kind;
	const char *methods;
	const char *data;
	size_t len;
	size_t done;	/* messages completed */
	__u8 end_state; /* parser state at the end */
};

#define SAMPLE(n, k, m, d, done, st)         \
	{                                    \
		n, k, m, d, LEN(d), done, st \
	}

static const struct sample samples[] = {
	SAMPLE("pipelined requests", TP_KIND_REQUEST, NULL,
	       "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
	       "POST /form HTTP/1.1\r\nContent-Length: 7\r\n\r\na=1&b=2"
	       "PUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	       "4;x=y\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: 1\r\n\r\n"
	       "HEAD /h HTTP/1.0\r\n\r\n"
	       "DELETE /d HTTP/1.1\r\ncontent-length:0\r\n\r\n"
	       "OPTIONS * HTTP/1.1\r\nCONTENT-LENGTH: 1\r\n\r\nz",
	       6, TP_IDLE),
	SAMPLE("responses", TP_KIND_RESPONSE, "GGGHGG",
	       "HTTP/1.1 100 Continue\r\n\r\n"
	       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	       "1a\r\nabcdefghijklmnopqrstuvwxyz\r\nA;q=1\r\n0123456789\r\n0\r\n\r\n"
	       "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"
	       "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
	       "HTTP/1.1 304 Not Modified\r\n\r\n"
	       "HTTP/1.0 200 OK\r\n\r\nclose-delimited HTTP/1.1 200 OK\r\n\r\n",
	       5, TP_BODY_CLOSE),
	SAMPLE("chunked responses", TP_KIND_RESPONSE, "GG",
	       "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
	       "Connection: close\r\n\r\n"
	       "3\r\nabc\r\nFF\r\n"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
	       "\r\n0\r\nX-T: y\r\n\r\n"
	       "HTTP/1.1 418 I'm a teapot\r\ntransfer-encoding: CHUNKED\r\n\r\n"
	       "c\r\nhello world!\r\n0\r\n\r\n",
	       2, TP_IDLE),
	/* What nginx and uvicorn send (and wrk asks) in the benchmark: the usual shapes. */
	SAMPLE("nginx and uvicorn responses", TP_KIND_RESPONSE, "GGG",
	       "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
	       "Date: Sat, 05 Dec 2026 12:41:50 GMT\r\nContent-Type: text/plain\r\n"
	       "Content-Length: 1024\r\nLast-Modified: Sat, 05 Dec 2026 12:41:49 GMT\r\n"
	       "Connection: keep-alive\r\nETag: \"6932d2cd-400\"\r\nAccept-Ranges: bytes\r\n\r\n"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	       "HTTP/1.1 200 OK\r\ndate: Sat, 05 Dec 2026 12:41:50 GMT\r\nserver: uvicorn\r\n"
	       "content-length: 26\r\ncontent-type: application/json\r\n\r\n"
	       "{\"label\":\"POSITIVE\",\"s\":1}"
	       "HTTP/1.1 503 Service Unavailable\r\nServer: nginx\r\nContent-Length: 0\r\n"
	       "Connection: close\r\n\r\n",
	       3, TP_IDLE),
	SAMPLE("wrk and hey requests", TP_KIND_REQUEST, NULL,
	       "GET /static.txt HTTP/1.1\r\nHost: 127.0.0.1:37307\r\n\r\n"
	       "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:8000\r\n"
	       "User-Agent: hey/0.0.1\r\nContent-Length: 2\r\nContent-Type: application/json\r\n"
	       "Accept-Encoding: gzip\r\n\r\n{}",
	       2, TP_IDLE),
	/* Heads tapir_http_head() takes whole, each of another shape, and their bodies. */
	SAMPLE("usual heads", TP_KIND_REQUEST, NULL,
	       "GET /a HTTP/1.0\r\nA: b\r\n x\r\nConnection: close\r\n\r\n"
	       "POST /b?q=1 HTTP/1.1\r\nContent-Length: 00000003\r\nConnection: Keep-Alive\r\n\r\nabc"
	       "PUT /c HTTP/1.1\r\nTRANSFER-ENCODING: Chunked\r\nX-Long-Header-Name: "
	       "some value\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	       "PATCH /d\r HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nz"
	       "DELETE /e HTTP/1.1\r\n\r\n",
	       5, TP_IDLE),
	SAMPLE("usual answers", TP_KIND_RESPONSE, "GHGGGGG",
	       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nok"
	       "HTTP/1.1 200 OK\r\nContent-Length: 12345678\r\n\r\n"
	       "HTTP/1.1 204 No Content\r\nDate: today\r\n\r\n"
	       "HTTP/1.1 304 Not\r Modified\r\nETag: \"x\"\r\n\r\n"
	       "HTTP/1.1 201\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	       "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
	       "HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/html\r\n\r\n"
	       "<html>the rest of the stream</html>",
	       6, TP_BODY_CLOSE),
	SAMPLE("upgrade", TP_KIND_RESPONSE, "GG",
	       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	       "Connection: Upgrade\r\n\r\n\x81\x05hello",
	       1, TP_DONE),
	SAMPLE("broken request", TP_KIND_REQUEST, NULL,
	       "GET / HTTP/1.1\r\n\r\n"
	       "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"
	       "GET / HTTP/1.1\r\n\r\n",
	       1, TP_ERROR),
};

/* Feed @s cut at the sorted offsets @cuts (repeats make empty segments). */
static void run_cuts(struct drv *d, const struct sample *s, const size_t *cuts, size_t ncuts)
{
	size_t i, from = 0, to, got;

	drv_init(d, s->kind, s->methods);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : s->len;
		got = drv_feed(d, s->data + from, to - from);
		assert_true(got == to - from || d->stopped);
		from = to;
	}
}

static void assert_same(const struct drv *a, const struct drv *b)
{
	size_t i;

	if (a->nev != b->nev) {
		print_message("want %zu events:\n", a->nev);
		dump_events(a);
		print_message("got %zu:\n", b->nev);
		dump_events(b);
	}
	assert_int_equal(a->nev, b->nev);
	for (i = 0; i < a->nev; i++) {
		assert_int_equal(a->ev[i].type, b->ev[i].type);
		assert_int_equal(a->ev[i].off, b->ev[i].off);
		assert_int_equal(a->ev[i].status, b->ev[i].status);
		assert_int_equal(a->ev[i].method, b->ev[i].method);
		assert_int_equal(a->ev[i].flags, b->ev[i].flags);
		assert_int_equal(a->ev[i].state, b->ev[i].state);
	}
	assert_int_equal(a->off, b->off);
	assert_int_equal(a->stopped, b->stopped);
	assert_int_equal(a->done, b->done);
	assert_memory_equal(&a->p, &b->p, sizeof(a->p));
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static void test_split_invariance(void **state)
{
	static struct drv ref, d;
	size_t si, i, k, cuts[12];

	rng_state = 3;
	for (si = 0; si < ARRAY_SIZE(samples); si++) {
		const struct sample *s = &samples[si];

		print_message("sample: %s (%zu bytes)\n", s->name, s->len);
		run_cuts(&ref, s, NULL, 0);
		assert_int_equal(ref.done, s->done);
		assert_int_equal(ref.p.state, s->end_state);

		/* Bulk steps are a shortcut: feeding body bytes one by one changes nothing. */
		drv_init(&d, s->kind, s->methods);
		d.no_bulk = 1;
		drv_feed(&d, s->data, s->len);
		assert_same(&ref, &d);

		/* Nor does taking no 8-byte steps, which the reference took. */
		drv_init(&d, s->kind, s->methods);
		d.no_word = 1;
		drv_feed(&d, s->data, s->len);
		assert_same(&ref, &d);
		assert_int_equal(d.words, 0);
		if (s->len > 200)
			print_message("  %llu of %zu bytes went in bulk through the fast path; "
				      "%llu steps, %llu of them single bytes\n",
				      (unsigned long long)ref.fast, s->len,
				      (unsigned long long)ref.steps, (unsigned long long)ref.feeds);

		/* Every single split point, both ends included. */
		for (i = 0; i <= s->len; i++) {
			cuts[0] = i;
			run_cuts(&d, s, cuts, 1);
			assert_same(&ref, &d);
		}

		/* One byte per segment. */
		drv_init(&d, s->kind, s->methods);
		for (i = 0; i < s->len && !d.stopped; i++)
			assert_int_equal(drv_feed(&d, s->data + i, 1), 1);
		assert_same(&ref, &d);

		/* Random multi-point splits. */
		for (i = 0; i < 3000; i++) {
			size_t ncuts = 1 + rnd(ARRAY_SIZE(cuts));

			for (k = 0; k < ncuts; k++)
				cuts[k] = rnd(s->len + 1);
			qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);
			run_cuts(&d, s, cuts, ncuts);
			assert_same(&ref, &d);
		}
	}
}

/* The usual heads (the benchmark's servers and clients among them) go in one shortcut each. */
static void test_heads_in_one_go(void **state)
{
	static const char *const names[] = { "nginx and uvicorn responses", "wrk and hey requests",
					     "usual heads", "usual answers" };
	static struct drv ref;
	size_t i, si;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		for (si = 0; si < ARRAY_SIZE(samples); si++)
			if (!strcmp(samples[si].name, names[i]))
				break;
		assert_true(si < ARRAY_SIZE(samples));
		run_cuts(&ref, &samples[si], NULL, 0);
		print_message("%s: %llu of %zu heads whole\n", names[i],
			      (unsigned long long)ref.heads, ref.done);
		/* The answer to HEAD is one: its head is whole, but it has no body and no more. */
		assert_int_equal(ref.heads, ref.done + (i == 3 ? 1 : 0));
	}
}

/* Hostile input */

#define HOSTILE_RUNS 100000
#define HOSTILE_MAX  512

/* Run @buf through a driver whole and cut in random places; both must agree and progress. */
static void hostile_one(struct drv *ref, struct drv *d, __u8 kind, const __u8 *buf, size_t len)
{
	static const char *const methods[] = { NULL, "G", "H", "HGHG", "GGGGGGGG" };
	const char *m = methods[rnd(ARRAY_SIZE(methods))];
	size_t i, from = 0, to, got, ncuts = rnd(5), cuts[4];

	drv_init(ref, kind, m);
	got = drv_feed(ref, buf, len);
	assert_true(got == len || ref->stopped);
	assert_int_equal(ref->off, got);
	assert_true(ref->steps <= len);
	assert_true(ref->p.state <= TP_ERROR);
	assert_true(!ref->stopped || ref->p.state == TP_ERROR || ref->p.state == TP_DONE);
	for (i = 0; i < ref->nev; i++) {
		assert_true(ref->ev[i].type >= TP_EV_START && ref->ev[i].type <= TP_EV_AMBIGUOUS);
		assert_true(ref->ev[i].off >= 1 && ref->ev[i].off <= got);
		assert_true(i == 0 || ref->ev[i].off >= ref->ev[i - 1].off);
	}

	for (i = 0; i < ncuts; i++)
		cuts[i] = rnd(len + 1);
	qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);
	drv_init(d, kind, m);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : len;
		got = drv_feed(d, buf + from, to - from);
		assert_true(got == to - from || d->stopped);
		from = to;
	}
	assert_same(ref, d);

	/* And byte by byte where the reference took words and lines at once. */
	drv_init(d, kind, m);
	d->no_word = 1;
	drv_feed(d, buf, len);
	assert_same(ref, d);
}

static void test_hostile_random(void **state)
{
	/* Bytes that steer the parser into its less travelled states. */
	static const char alphabet[] = "GETPOSTHEADHTTP/1.01 \r\n\r\n::\t;0123456789abcdefABCDEF"
				       "Content-Length: Transfer-Encoding: chunked Connection: "
				       "close upgrade 100 101 204 304 keep-alive\r\nKeep-Alive\r\n"
				       "CLOSE\r\nchunked\r\n1024\r\n";
	static struct drv ref, d;
	__u8 buf[HOSTILE_MAX];
	size_t i, j, len;
	int mode;

	rng_state = 4;
	for (i = 0; i < HOSTILE_RUNS; i++) {
		len = rnd(HOSTILE_MAX + 1);
		mode = rnd(4);
		for (j = 0; j < len; j++) {
			if (mode == 0)
				buf[j] = rng();
			else if (mode == 1 || rnd(8))
				buf[j] = alphabet[rnd(LEN(alphabet))];
			else
				buf[j] = rng();
		}
		/* A valid start line first, so that the random part reaches the headers. */
		if (mode == 3 && len >= 32) {
			if (i % 2)
				memcpy(buf, "GET / HTTP/1.1\r\n", 16);
			else
				memcpy(buf, "HTTP/1.1 200 OK\r\n", 17);
		}
		hostile_one(&ref, &d, i % 2 ? TP_KIND_REQUEST : TP_KIND_RESPONSE, buf, len);
	}
}

static void mutate(__u8 *buf, size_t *len, size_t cap)
{
	static const char interesting[] = "\r\n :;\t0123456789aFfx\x00\xff-";
	size_t at = rnd(*len + 1), n;
	__u8 c = rnd(2) ? (__u8)interesting[rnd(LEN(interesting) + 1)] : (__u8)rng();

	switch (rnd(6)) {
	case 0: /* overwrite */
		if (at < *len)
			buf[at] = c;
		break;
	case 1: /* insert */
		if (*len < cap) {
			memmove(buf + at + 1, buf + at, *len - at);
			buf[at] = c;
			++*len;
		}
		break;
	case 2: /* delete */
		if (at < *len) {
			memmove(buf + at, buf + at + 1, *len - at - 1);
			--*len;
		}
		break;
	case 3: /* duplicate a run */
		n = rnd(*len - at + 1) % 64;
		if (*len + n <= cap) {
			memmove(buf + at + n, buf + at, *len - at);
			*len += n;
		}
		break;
	case 4: /* truncate */ *len = at; break;
	case 5: /* flip a bit */
		if (at < *len)
			buf[at] ^= 1 << rnd(8);
		break;
	}
}

static void test_hostile_mutations(void **state)
{
	static struct drv ref, d;
	__u8 buf[2048];
	size_t i, k, len;

	rng_state = 5;
	for (i = 0; i < HOSTILE_RUNS; i++) {
		const struct sample *s = &samples[rnd(ARRAY_SIZE(samples))];

		assert_true(s->len <= sizeof(buf));
		memcpy(buf, s->data, s->len);
		len = s->len;
		for (k = 1 + rnd(4); k > 0; k--)
			mutate(buf, &len, sizeof(buf));
		hostile_one(&ref, &d, s->kind, buf, len);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_get_no_body),
		cmocka_unit_test(test_req_post_content_length),
		cmocka_unit_test(test_req_post_1mib),
		cmocka_unit_test(test_req_chunked),
		cmocka_unit_test(test_req_pipelined),
		cmocka_unit_test(test_req_leading_crlf),
		cmocka_unit_test(test_req_http10),
		cmocka_unit_test(test_req_methods),
		cmocka_unit_test(test_req_not_http),
		cmocka_unit_test(test_req_bad_version),
		cmocka_unit_test(test_req_header_case),
		cmocka_unit_test(test_req_content_length_values),
		cmocka_unit_test(test_req_transfer_encoding),
		cmocka_unit_test(test_req_lookalike_headers),
		cmocka_unit_test(test_req_oversized),
		cmocka_unit_test(test_resp_content_length),
		cmocka_unit_test(test_resp_chunked),
		cmocka_unit_test(test_resp_close_delimited),
		cmocka_unit_test(test_resp_no_body_status),
		cmocka_unit_test(test_resp_head),
		cmocka_unit_test(test_resp_interim),
		cmocka_unit_test(test_resp_switching_protocols),
		cmocka_unit_test(test_resp_connection_flags),
		cmocka_unit_test(test_resp_bad_status),
		cmocka_unit_test(test_resp_status_exact),
		cmocka_unit_test(test_sticky_states),
		cmocka_unit_test(test_split_invariance),
		cmocka_unit_test(test_heads_in_one_go),
		cmocka_unit_test(test_hostile_random),
		cmocka_unit_test(test_hostile_mutations),
	};

	/* An optional glob picks tests, e.g. "test_hostile_*" for a valgrind run. */
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
