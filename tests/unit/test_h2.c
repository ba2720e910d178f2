// SPDX-License-Identifier: GPL-2.0
/* Unit tests for h2.c: real HTTP/2 walked as the BPF side will, and HPACK blocks from nghttp2. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2.h"
#include "h2_talk.h"
#include <linux/types.h>

#include "tapir/h2_frame.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MS	      1000000ULL

/* --- what the connection reports ------------------------------------------------------------ */

struct done {
	struct tapir_h2_result r[512];
	size_t n;
};

static void on_done(void *ctx, const struct tapir_h2_result *r)
{
	struct done *d = ctx;

	assert_true(d->n < ARRAY_SIZE(d->r));
	/* Every string is terminated inside its field. */
	assert_non_null(memchr(r->method, 0, sizeof(r->method)));
	assert_non_null(memchr(r->path, 0, sizeof(r->path)));
	assert_non_null(memchr(r->content_type, 0, sizeof(r->content_type)));
	d->r[d->n++] = *r;
}

static const struct tapir_h2_result *result_of(const struct done *d, uint32_t id)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->r[i].stream_id == id)
			return &d->r[i];
	fail_msg("no result for stream %u", id);
	return NULL;
}

/* --- the wiring, as the BPF side and the daemon will do it -------------------------------- */

/* One direction's walk and what its current header block carries. */
struct side {
	struct tapir_h2_walker w;
	uint8_t type, flags;  /* the current frame's */
	unsigned block_flags; /* END_STREAM and PUSH of the HEADERS or PUSH_PROMISE begun */
};

/* Walk @len bytes of direction @dir at time @now, handing each event to @c. */
static void feed(struct tapir_h2_conn *c, struct side *s, int dir, const uint8_t *p, size_t len,
		 uint64_t now)
{
	size_t pos = 0;

	while (pos < len) {
		struct tapir_h2_event ev;
		uint8_t win[TH2_WIN] = { 0 };
		size_t left = len - pos, w = tapir_h2_need(&s->w);
		__u32 n;

		memcpy(win, p + pos, w < left ? w : left);
		n = tapir_h2_step(&s->w, win, (__u32)(w < left ? w : left), left, &ev);
		assert_int_not_equal(ev.kind, TH2_EV_ERROR);
		if (ev.kind == TH2_EV_FRAME) {
			s->type = ev.type;
			s->flags = ev.flags;
			if (ev.type == TH2_HEADERS)
				s->block_flags =
					ev.flags & TH2_F_END_STREAM ? TAPIR_H2_END_STREAM : 0;
			else if (ev.type == TH2_PUSH_PROMISE)
				s->block_flags = TAPIR_H2_PUSH;
		} else if (ev.kind == TH2_EV_RST) {
			assert_int_equal(tapir_h2_conn__rst(c, dir, ev.stream_id, ev.value, now),
					 0);
		} else if (ev.kind == TH2_EV_GOAWAY) {
			assert_int_equal(tapir_h2_conn__goaway(c, dir, ev.value, ev.value2, now),
					 0);
		}
		if (ev.len && ev.what == TH2_P_BLOCK)
			assert_int_equal(tapir_h2_conn__headers(c, dir, ev.stream_id,
								s->block_flags, p + pos + ev.off,
								ev.len, now),
					 0);
		if (ev.len && ev.what == TH2_P_DATA)
			assert_int_equal(tapir_h2_conn__data(c, dir, ev.stream_id, ev.len, 0, now),
					 0);
		if (ev.end &&
		    (ev.type == TH2_HEADERS || ev.type == TH2_PUSH_PROMISE ||
		     ev.type == TH2_CONTINUATION) &&
		    (ev.flags & TH2_F_END_HEADERS))
			assert_int_equal(
				tapir_h2_conn__headers(c, dir, ev.stream_id,
						       s->block_flags | TAPIR_H2_END_HEADERS, NULL,
						       0, now),
				0);
		if (ev.end && ev.type == TH2_DATA && (ev.flags & TH2_F_END_STREAM))
			assert_int_equal(tapir_h2_conn__data(c, dir, ev.stream_id, 0, 1, now), 0);
		pos += n;
	}
}

/*
 * The conversation, write by write in the order the two sides made them (write k at time k
 * ms), each write cut once more at @cut bytes (0: not).
 */
static void replay(struct tapir_h2_conn *c, const struct talk *t, size_t cut)
{
	struct side side[2];
	size_t k, from[2] = { 0, 0 };

	memset(side, 0, sizeof(side));
	tapir_h2_init(&side[0].w, 0, TH2_MAX_FRAME_DEFAULT);
	tapir_h2_init(&side[1].w, TH2_PREFACE_LEN, 65536);
	for (k = 0; k < t->norder; k++) {
		int d = t->order[k].dir;
		const uint8_t *p = t->dir[d].bytes.p + from[d];
		size_t len = t->order[k].end - from[d];

		if (cut && cut < len) {
			feed(c, &side[d], d, p, cut, k * MS);
			feed(c, &side[d], d, p + cut, len - cut, k * MS);
		} else {
			feed(c, &side[d], d, p, len, k * MS);
		}
		from[d] = t->order[k].end;
	}
	assert_int_equal(tapir_h2_conn__close(c, t->norder * MS), 0);
}

static void check_grpc_talk(const struct done *d, const struct tapir_h2_conn *c)
{
	const struct tapir_h2_result *r;

	assert_int_equal(d->n, 5); /* 1, 3, 5, 7, 9: the push opens no request */
	r = result_of(d, 1);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, "/helloworld.Greeter/SayHello");
	assert_string_equal(r->content_type, "application/grpc");
	assert_int_equal(r->status, 200);
	assert_int_equal(r->grpc_status, 0);
	assert_string_equal(tapir_h2_grpc_status_name(r->grpc_status), "OK");
	assert_int_equal(r->outcome, TAPIR_H2_OUT_COMPLETE);
	assert_int_equal(r->flags, TAPIR_H2_R_GRPC | TAPIR_H2_R_REQ_ENDED);
	assert_int_equal(r->req_bytes, 300);
	assert_int_equal(r->resp_bytes, 1200);
	assert_true(r->start_ns < r->first_resp_ns && r->first_resp_ns <= r->end_ns);

	r = result_of(d, 3);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->path, "/big?x=1");
	assert_string_equal(r->content_type, "application/octet-stream");
	assert_int_equal(r->status, 200);
	assert_int_equal(r->grpc_status, TAPIR_H2_GRPC_NONE);
	assert_string_equal(tapir_h2_grpc_status_name(r->grpc_status), "");
	assert_int_equal(r->resp_bytes, 100000);
	assert_int_equal(r->outcome, TAPIR_H2_OUT_COMPLETE);
	assert_true(r->end_ns > r->first_resp_ns); /* the body took several writes */

	r = result_of(d, 5); /* a 40 KB header in CONTINUATIONs; a trailers-only answer */
	assert_string_equal(r->path, "/helloworld.Greeter/Missing");
	assert_int_equal(r->status, 200);
	assert_int_equal(r->grpc_status, 5);
	assert_string_equal(tapir_h2_grpc_status_name(r->grpc_status), "NOT_FOUND");
	assert_int_equal(r->flags,
			 TAPIR_H2_R_GRPC | TAPIR_H2_R_REQ_ENDED | TAPIR_H2_R_TRAILERS_ONLY);
	assert_int_equal(r->resp_bytes, 0);
	assert_int_equal(r->first_resp_ns, r->end_ns);

	r = result_of(d, 7); /* cancelled by the client */
	assert_int_equal(r->outcome, TAPIR_H2_OUT_RESET);
	assert_int_equal(r->error_code, NGHTTP2_CANCEL);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->first_resp_ns, 0);

	r = result_of(d, 9); /* refused by the server */
	assert_int_equal(r->outcome, TAPIR_H2_OUT_RESET);
	assert_int_equal(r->error_code, NGHTTP2_REFUSED_STREAM);

	assert_int_equal(tapir_h2_conn__open_streams(c), 0);
	assert_int_equal(tapir_h2_conn__stats(c)->blocks_undecoded, 0);
	assert_int_equal(tapir_h2_conn__stats(c)->blocks_lost, 0);
	assert_int_equal(tapir_h2_conn__stats(c)->inflater_resets, 0);
	/* Requests 1, 3, 5, 7, 9; responses 1 (headers, trailers), 3, 5, 2; the push promise. */
	assert_int_equal(tapir_h2_conn__stats(c)->blocks, 11);
}

static void test_conversation(void **state)
{
	static struct done d, again;
	struct tapir_h2_conn *c;
	struct talk t;
	size_t cut, i;
	int pad;

	for (pad = 0; pad < 2; pad++) {
		talk_grpc(&t, pad);
		memset(&d, 0, sizeof(d));
		c = tapir_h2_conn__new(on_done, &d);
		assert_non_null(c);
		replay(c, &t, 0);
		check_grpc_talk(&d, c);
		tapir_h2_conn__free(c);
		/* Header blocks and DATA in more pieces: the same results. */
		for (cut = 1; cut < 200; cut += 7) {
			memset(&again, 0, sizeof(again));
			c = tapir_h2_conn__new(on_done, &again);
			replay(c, &t, cut);
			assert_int_equal(again.n, d.n);
			for (i = 0; i < d.n; i++)
				assert_memory_equal(&again.r[i], &d.r[i], sizeof(d.r[i]));
			tapir_h2_conn__free(c);
		}
		talk_free(&t);
	}
}

/* --- HPACK blocks from nghttp2's deflater --------------------------------------------------- */

#define NV(n, v)                                                                           \
	{                                                                                  \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE \
	}

static size_t deflate(nghttp2_hd_deflater *def, nghttp2_nv *nv, size_t n, uint8_t *out, size_t cap)
{
	ssize_t len = nghttp2_hd_deflate_hd(def, out, cap, nv, n);

	assert_true(len > 0);
	return (size_t)len;
}

/* A whole block on @stream_id, in one piece. */
static void block(struct tapir_h2_conn *c, int dir, uint32_t id, unsigned flags, const uint8_t *p,
		  size_t len, uint64_t now)
{
	assert_int_equal(
		tapir_h2_conn__headers(c, dir, id, flags | TAPIR_H2_END_HEADERS, p, len, now), 0);
}

static void request(struct tapir_h2_conn *c, nghttp2_hd_deflater *def, uint32_t id,
		    const char *path, uint64_t now)
{
	nghttp2_nv nv[] = { NV(":method", "POST"),
			    NV(":scheme", "http"),
			    NV(":path", path),
			    NV(":authority", "svc:50051"),
			    NV("content-type", "application/grpc"),
			    NV("te", "trailers") };
	uint8_t buf[512];

	block(c, TAPIR_H2_REQUEST, id, TAPIR_H2_END_STREAM, buf,
	      deflate(def, nv, ARRAY_SIZE(nv), buf, sizeof(buf)), now);
}

/*
 * tapir starts watching a connection whose first @skip answers it never saw: their entries
 * are missing from its table. Each answer has a content-type new each time (a literal with a
 * static name, added to the table) and a "server" header that the encoder refers to in its
 * table until it is evicted and sent again; the first 10 also have a grpc-status, whose name
 * comes from the table after the first (so unknown to tapir, and so is every grpc-status
 * entry made from it: HPACK passes names on by reference).
 */
static void test_mid_connection(void **state)
{
	static struct done d;
	nghttp2_hd_deflater *req, *resp;
	struct tapir_h2_conn *c;
	char ctype[64], code[16];
	uint8_t buf[512];
	uint32_t i, skip = 5, n = 60;
	size_t undecoded = 0;

	memset(&d, 0, sizeof(d));
	assert_int_equal(nghttp2_hd_deflate_new(&req, 4096), 0);
	/* A small table, so that entries are evicted and sent again within the test. */
	assert_int_equal(nghttp2_hd_deflate_new(&resp, 1024), 0);
	c = tapir_h2_conn__new(on_done, &d);
	assert_non_null(c);
	for (i = 0; i < n; i++) {
		size_t len;

		snprintf(ctype, sizeof(ctype), "application/grpc+v%u", i);
		snprintf(code, sizeof(code), "%u", i);
		{
			nghttp2_nv nv[] = { NV(":status", "200"), NV("content-type", ctype),
					    NV("server", "tapir-test/1"), NV("grpc-status", code) };

			len = deflate(resp, nv, i < 10 ? 4 : 3, buf, sizeof(buf));
		}
		if (i < skip)
			continue; /* neither the request nor its answer seen */
		request(c, req, 2 * i + 1, "/pkg.Svc/Call", i * MS);
		block(c, TAPIR_H2_RESPONSE, 2 * i + 1, TAPIR_H2_END_STREAM, buf, len, i * MS + 1);
	}
	assert_int_equal(d.n, n - skip);
	for (i = 0; i < d.n; i++) {
		const struct tapir_h2_result *r = &d.r[i];
		uint32_t k = (r->stream_id - 1) / 2;

		snprintf(ctype, sizeof(ctype), "application/grpc+v%u", k);
		/* What the static table gives is always there, and nothing is ever wrong. */
		assert_int_equal(r->status, 200);
		assert_string_equal(r->content_type, ctype);
		assert_string_equal(r->method, "POST");
		assert_string_equal(r->path, "/pkg.Svc/Call");
		if (k < 10)
			assert_true(r->grpc_status == TAPIR_H2_GRPC_NONE ||
				    r->grpc_status == (int)k);
		else
			assert_int_equal(r->grpc_status, TAPIR_H2_GRPC_NONE);
		if (r->flags & TAPIR_H2_R_UNDECODED)
			undecoded++;
		/* The grpc-status name is unknown; the server entry sent again is known. */
		if (k < 10)
			assert_true(r->flags & TAPIR_H2_R_UNDECODED);
		if (k >= n - 30)
			assert_false(r->flags & TAPIR_H2_R_UNDECODED);
	}
	assert_int_equal(undecoded, tapir_h2_conn__stats(c)->blocks_undecoded);
	assert_int_equal(tapir_h2_conn__stats(c)->inflater_resets, 0);
	nghttp2_hd_deflate_del(req);
	nghttp2_hd_deflate_del(resp);
	tapir_h2_conn__free(c);
}

/* Hand-made blocks for the static-table fallback, byte by byte what RFC 7541 says. */
static void test_static_fallback(void **state)
{
	/* :status 200 (index 8); an unknown entry (62); content-type (31) "text/x" literal. */
	static const uint8_t resp[] = { 0x88, 0xbe, 0x5f, 0x06, 't', 'e', 'x', 't', '/', 'x' };
	/* :method GET (2), :path / (4): all static. */
	static const uint8_t req[] = { 0x82, 0x84 };
	/* :status 404 (13), then an index 0, which no encoder writes. */
	static const uint8_t broken[] = { 0x8d, 0x80 };
	static struct done d;
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, &d);

	memset(&d, 0, sizeof(d));
	assert_non_null(c);
	block(c, TAPIR_H2_REQUEST, 1, TAPIR_H2_END_STREAM, req, sizeof(req), 1);
	block(c, TAPIR_H2_RESPONSE, 1, TAPIR_H2_END_STREAM, resp, sizeof(resp), 2);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.r[0].method, "GET");
	assert_string_equal(d.r[0].path, "/");
	assert_int_equal(d.r[0].status, 200);
	assert_string_equal(d.r[0].content_type, "text/x");
	assert_true(d.r[0].flags & TAPIR_H2_R_UNDECODED);
	assert_int_equal(tapir_h2_conn__stats(c)->blocks_undecoded, 1);
	/* A broken block: what came before the damage, then a fresh table. */
	block(c, TAPIR_H2_REQUEST, 3, TAPIR_H2_END_STREAM, req, sizeof(req), 3);
	block(c, TAPIR_H2_RESPONSE, 3, TAPIR_H2_END_STREAM, broken, sizeof(broken), 4);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.r[1].status, 404);
	assert_true(d.r[1].flags & TAPIR_H2_R_UNDECODED);
	assert_int_equal(tapir_h2_conn__stats(c)->inflater_resets, 1);
	tapir_h2_conn__free(c);
}

/*
 * A connection picked up mid-way: the answer of a stream begun before counts once as such,
 * whatever RST_STREAM follows; a block that decodes no :method opens no stream; streams after
 * the first one followed are not "begun before".
 */
static void test_picked_up_mid_way(void **state)
{
	static const uint8_t ok[] = { 0x88 };		   /* :status 200 */
	static const uint8_t req[] = { 0x82, 0x84 };	   /* :method GET, :path / */
	static const uint8_t no_method[] = { 0x84, 0xbe }; /* :path /, an entry never seen */
	static struct done d;
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, &d);
	const struct tapir_h2_stats *st = tapir_h2_conn__stats(c);

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_non_null(c);
	tapir_h2_conn__mid(c);
	/* Stream 3 began before: its answer ends it, then a RST_STREAM(NO_ERROR) from either side. */
	block(c, TAPIR_H2_RESPONSE, 3, 0, ok, sizeof(ok), 1);
	assert_int_equal(tapir_h2_conn__data(c, TAPIR_H2_RESPONSE, 3, 10, 1, 2), 0);
	assert_int_equal(tapir_h2_conn__rst(c, TAPIR_H2_RESPONSE, 3, 0, 3), 0);
	assert_int_equal(tapir_h2_conn__rst(c, TAPIR_H2_REQUEST, 3, 0, 3), 0);
	assert_int_equal(st->unseen_ended, 1);
	/* Stream 5 began before too: its client's trailers name no method. */
	block(c, TAPIR_H2_REQUEST, 5, TAPIR_H2_END_STREAM, no_method, sizeof(no_method), 4);
	assert_int_equal(tapir_h2_conn__open_streams(c), 0);
	block(c, TAPIR_H2_RESPONSE, 5, TAPIR_H2_END_STREAM, ok, sizeof(ok), 5);
	assert_int_equal(st->unseen_ended, 2);
	/* Stream 7 begins now: a request, counted. */
	block(c, TAPIR_H2_REQUEST, 7, TAPIR_H2_END_STREAM, req, sizeof(req), 6);
	block(c, TAPIR_H2_RESPONSE, 7, TAPIR_H2_END_STREAM, ok, sizeof(ok), 7);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.r[0].stream_id, 7);
	assert_int_equal(d.r[0].status, 200);
	assert_string_equal(d.r[0].path, "/");
	assert_int_equal(st->unmatched, 0); /* the answers of 3 and 5 were before_start's */
	/* Stream 9's request block was lost: not one begun before the pick-up. */
	block(c, TAPIR_H2_RESPONSE, 9, TAPIR_H2_END_STREAM, ok, sizeof(ok), 8);
	assert_int_equal(st->unseen_ended, 2);
	assert_int_equal(st->unmatched, 1);
	assert_int_equal(d.n, 1);
	tapir_h2_conn__free(c);
}

/* A connection that reports into @d, emptied. */
static struct tapir_h2_conn *conn_into(struct done *d)
{
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, d);

	memset(d, 0, sizeof(*d));
	assert_non_null(c);
	return c;
}

/* Stream @id's request (GET /, END_STREAM) at @ns. */
static void ask(struct tapir_h2_conn *c, uint32_t id, uint64_t ns)
{
	static const uint8_t get[] = { 0x82, 0x84 }; /* :method GET, :path / */

	block(c, TAPIR_H2_REQUEST, id, TAPIR_H2_END_STREAM, get, sizeof(get), ns);
}

/* Stream @id's answer (200, END_STREAM) at @ns. */
static void answer(struct tapir_h2_conn *c, uint32_t id, uint64_t ns)
{
	static const uint8_t ok[] = { 0x88 }; /* :status 200 */

	block(c, TAPIR_H2_RESPONSE, id, TAPIR_H2_END_STREAM, ok, sizeof(ok), ns);
}

/* A final answer to a stream whose request block never came is a request lost (the kernel lost
 * the block, or the records came out of order): counted once, not a 100 or trailers before it. */
static void test_unmatched_answer(void **state)
{
	static const uint8_t nf[] = { 0x8d };				  /* :status 404 */
	static const uint8_t cont[] = { 0x08, 0x03, '1', '0', '0' };	  /* :status 100, literal */
	static const uint8_t trailers[] = { 0x40, 0x01, 'x', 0x01, 'y' }; /* x: y, no :status */
	static struct done d;
	struct tapir_h2_conn *c = conn_into(&d);
	const struct tapir_h2_stats *st = tapir_h2_conn__stats(c);

	(void)state;
	ask(c, 1, 1);
	ask(c, 5, 2);
	/* Stream 3's request was lost: its 100, then its answer, then its trailers. */
	block(c, TAPIR_H2_RESPONSE, 3, 0, cont, sizeof(cont), 3);
	assert_int_equal(st->unmatched, 0);
	block(c, TAPIR_H2_RESPONSE, 3, 0, nf, sizeof(nf), 4);
	assert_int_equal(st->unmatched, 1);
	block(c, TAPIR_H2_RESPONSE, 3, TAPIR_H2_END_STREAM, trailers, sizeof(trailers), 5);
	assert_int_equal(st->unmatched, 1);
	answer(c, 1, 6);
	answer(c, 5, 7);
	assert_int_equal(d.n, 2);
	/* A pushed stream's answer (even: the server opened it) owes no request. */
	answer(c, 2, 7);
	assert_int_equal(st->unmatched, 1);
	/* A request again on stream 1, over: not a new stream, and no answer is owed. */
	ask(c, 1, 8);
	assert_int_equal(st->unmatched, 1);
	assert_int_equal(tapir_h2_conn__open_streams(c), 0);
	/* The client resets stream 7 as the server's answer crosses it: a 499, no loss. */
	ask(c, 7, 9);
	assert_int_equal(tapir_h2_conn__rst(c, TAPIR_H2_REQUEST, 7, 8 /* CANCEL */, 10), 0);
	answer(c, 7, 11);
	assert_int_equal(d.n, 3);
	assert_int_equal(st->unmatched, 1);
	/* Stream 9 skipped (ids 9 and 11 never opened), 13 opened: 9's answer is a loss. */
	ask(c, 13, 12);
	answer(c, 9, 13);
	assert_int_equal(st->unmatched, 2);
	/* 3,000 streams on: 7 and 3965 (the id 6013's bit stands for too) are too far back to
	 * tell; 6011, passed over, is a loss. */
	ask(c, 6013, 14);
	answer(c, 7, 15);
	answer(c, 6013 - 2 * 1024, 16);
	assert_int_equal(st->unmatched, 2);
	answer(c, 6011, 17);
	assert_int_equal(st->unmatched, 3);
	/* An h2c upgrade seen late on another connection: stream 1 is the 101's request, not
	 * followed; its answer owes nothing, and the streams after it are requests as any. */
	tapir_h2_conn__free(c);
	c = conn_into(&d);
	st = tapir_h2_conn__stats(c);
	assert_int_equal(tapir_h2_conn__upgrade_late(c), 0);
	answer(c, 1, 1);
	assert_int_equal(d.n, 0);
	ask(c, 3, 2);
	answer(c, 3, 3);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.r[0].stream_id, 3);
	assert_int_equal(st->unmatched, 0);
	assert_int_equal(tapir_h2_conn__upgrade_late(c), -EEXIST);
	tapir_h2_conn__free(c);
}

/* 100 Continue, the answer, a body, then trailers with the status. */
static void test_interim_and_trailers(void **state)
{
	static struct done d;
	nghttp2_hd_deflater *req, *resp;
	nghttp2_nv cont[] = { NV(":status", "100") };
	nghttp2_nv head[] = { NV(":status", "200"), NV("content-type", "application/grpc+proto") };
	nghttp2_nv trail[] = { NV("grpc-status", "14"), NV("grpc-message", "try later") };
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, &d);
	uint8_t buf[256];

	memset(&d, 0, sizeof(d));
	assert_non_null(c);
	assert_int_equal(nghttp2_hd_deflate_new(&req, 4096), 0);
	assert_int_equal(nghttp2_hd_deflate_new(&resp, 4096), 0);
	request(c, req, 1, "/pkg.Svc/Stream", 10);
	assert_int_equal(tapir_h2_conn__data(c, TAPIR_H2_REQUEST, 1, 100, 0, 11), 0);
	block(c, TAPIR_H2_RESPONSE, 1, 0, buf, deflate(resp, cont, 1, buf, sizeof(buf)), 12);
	block(c, TAPIR_H2_RESPONSE, 1, 0, buf, deflate(resp, head, 2, buf, sizeof(buf)), 13);
	assert_int_equal(tapir_h2_conn__data(c, TAPIR_H2_RESPONSE, 1, 70, 0, 14), 0);
	assert_int_equal(tapir_h2_conn__data(c, TAPIR_H2_RESPONSE, 1, 30, 0, 15), 0);
	assert_int_equal(d.n, 0);
	block(c, TAPIR_H2_RESPONSE, 1, TAPIR_H2_END_STREAM, buf,
	      deflate(resp, trail, 2, buf, sizeof(buf)), 16);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.r[0].status, 200);
	assert_int_equal(d.r[0].grpc_status, 14);
	assert_string_equal(tapir_h2_grpc_status_name(d.r[0].grpc_status), "UNAVAILABLE");
	assert_string_equal(d.r[0].content_type, "application/grpc+proto");
	/* The request's END_STREAM was on its HEADERS, though it sent DATA after (a test). */
	assert_int_equal(d.r[0].flags, TAPIR_H2_R_GRPC | TAPIR_H2_R_REQ_ENDED);
	assert_int_equal(d.r[0].req_bytes, 100);
	assert_int_equal(d.r[0].resp_bytes, 100);
	assert_int_equal(d.r[0].start_ns, 10);
	assert_int_equal(d.r[0].first_resp_ns, 12);
	assert_int_equal(d.r[0].end_ns, 16);
	nghttp2_hd_deflate_del(req);
	nghttp2_hd_deflate_del(resp);
	tapir_h2_conn__free(c);
}

static void test_reset_goaway_close(void **state)
{
	static struct done d;
	nghttp2_hd_deflater *req;
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, &d);
	uint32_t id;

	memset(&d, 0, sizeof(d));
	assert_non_null(c);
	assert_int_equal(nghttp2_hd_deflate_new(&req, 4096), 0);
	for (id = 1; id <= 9; id += 2)
		request(c, req, id, "/x", id);
	assert_int_equal(tapir_h2_conn__rst(c, TAPIR_H2_RESPONSE, 3, NGHTTP2_INTERNAL_ERROR, 20),
			 0);
	assert_int_equal(tapir_h2_conn__goaway(c, TAPIR_H2_REQUEST, 0, 0, 21), 0); /* no effect */
	assert_int_equal(tapir_h2_conn__goaway(c, TAPIR_H2_RESPONSE, 5, NGHTTP2_NO_ERROR, 22), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.r[0].stream_id, 3);
	assert_int_equal(d.r[0].outcome, TAPIR_H2_OUT_RESET);
	assert_int_equal(d.r[0].error_code, NGHTTP2_INTERNAL_ERROR);
	assert_int_equal(d.r[1].stream_id, 9);
	assert_int_equal(d.r[1].outcome, TAPIR_H2_OUT_GOAWAY);
	assert_int_equal(d.r[2].stream_id, 7);
	assert_int_equal(d.r[2].outcome, TAPIR_H2_OUT_GOAWAY);
	assert_int_equal(d.r[2].end_ns, 22);
	/* A stream already over stays over: late frames count, open nothing. */
	request(c, req, 3, "/late", 23);
	assert_int_equal(tapir_h2_conn__rst(c, TAPIR_H2_REQUEST, 7, 0, 24), 0);
	assert_int_equal(tapir_h2_conn__stats(c)->unknown_stream, 2);
	assert_int_equal(tapir_h2_conn__open_streams(c), 2);
	assert_int_equal(tapir_h2_conn__close(c, 30), 0);
	assert_int_equal(d.n, 5);
	assert_int_equal(d.r[3].stream_id, 1);
	assert_int_equal(d.r[3].outcome, TAPIR_H2_OUT_CLOSED);
	assert_int_equal(d.r[4].stream_id, 5);
	assert_int_equal(tapir_h2_conn__open_streams(c), 0);
	nghttp2_hd_deflate_del(req);
	tapir_h2_conn__free(c);
}

static void test_stream_bound(void **state)
{
	static const uint8_t ok[] = { 0x88 }; /* :status 200 */
	static struct done d;
	nghttp2_hd_deflater *req;
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, &d);
	uint32_t i;

	memset(&d, 0, sizeof(d));
	assert_non_null(c);
	assert_int_equal(nghttp2_hd_deflate_new(&req, 4096), 0);
	for (i = 0; i < TAPIR_H2_MAX_STREAMS + 44; i++)
		request(c, req, 2 * i + 1, "/many", i);
	assert_int_equal(tapir_h2_conn__open_streams(c), TAPIR_H2_MAX_STREAMS);
	assert_int_equal(tapir_h2_conn__stats(c)->streams_dropped, 44);
	/* A stream not followed: its DATA counts as unknown; the table had room for the rest. */
	assert_int_equal(tapir_h2_conn__data(c, TAPIR_H2_RESPONSE, 2 * 300 + 1, 5, 1, 1000), 0);
	assert_int_equal(tapir_h2_conn__stats(c)->unknown_stream, 1);
	assert_int_equal(tapir_h2_conn__data(c, TAPIR_H2_RESPONSE, 1, 5, 1, 1001), 0);
	assert_int_equal(d.n, 1);
	/* The answers of the 44 not followed are theirs, counted once (streams_limit); one more
	 * is an answer whose request never came. */
	for (i = TAPIR_H2_MAX_STREAMS; i < TAPIR_H2_MAX_STREAMS + 44; i++)
		block(c, TAPIR_H2_RESPONSE, 2 * i + 1, TAPIR_H2_END_STREAM, ok, sizeof(ok), 1002);
	assert_int_equal(tapir_h2_conn__stats(c)->unmatched, 0);
	block(c, TAPIR_H2_RESPONSE, 2 * 400 + 1, TAPIR_H2_END_STREAM, ok, sizeof(ok), 1003);
	assert_int_equal(tapir_h2_conn__stats(c)->unmatched, 1);
	assert_int_equal(tapir_h2_conn__close(c, 2000), 0);
	assert_int_equal(d.n, TAPIR_H2_MAX_STREAMS);
	nghttp2_hd_deflate_del(req);
	tapir_h2_conn__free(c);
}

/* A block whose bytes were lost, and one too long to keep: the table starts over. */
static void test_lost_blocks(void **state)
{
	static struct done d;
	static uint8_t big[TAPIR_H2_BLOCK_MAX + 100];
	static const uint8_t req[] = { 0x82, 0x84 };
	struct tapir_h2_conn *c = tapir_h2_conn__new(on_done, &d);

	memset(&d, 0, sizeof(d));
	assert_non_null(c);
	block(c, TAPIR_H2_REQUEST, 1, 0, req, sizeof(req), 1); /* a table to lose */
	assert_int_equal(tapir_h2_conn__headers(c, TAPIR_H2_REQUEST, 3, 0, req, 1, 2), 0);
	assert_int_equal(tapir_h2_conn__lost(c, TAPIR_H2_REQUEST), 0);
	assert_int_equal(tapir_h2_conn__stats(c)->blocks_lost, 1);
	assert_int_equal(tapir_h2_conn__stats(c)->inflater_resets, 1);
	/* 64 KiB of ":method: GET" and more: kept up to the bound, decoded, then a reset. */
	memset(big, 0x82, sizeof(big));
	big[0] = 0x84;
	block(c, TAPIR_H2_REQUEST, 5, TAPIR_H2_END_STREAM, big, sizeof(big), 3);
	assert_int_equal(tapir_h2_conn__stats(c)->blocks_lost, 2);
	/* The table made for it, dropped after it. */
	assert_int_equal(tapir_h2_conn__stats(c)->inflater_resets, 2);
	assert_int_equal(tapir_h2_conn__close(c, 4), 0);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.r[1].path, "/");
	assert_string_equal(d.r[1].method, "GET");
	assert_true(d.r[1].flags & TAPIR_H2_R_UNDECODED);
	/* A new block on another stream while one is pending: the pending one is lost. */
	assert_int_equal(tapir_h2_conn__headers(c, TAPIR_H2_REQUEST, 7, 0, req, 1, 5), 0);
	assert_int_equal(tapir_h2_conn__headers(c, TAPIR_H2_REQUEST, 9, 0, req, 1, 6), 0);
	assert_int_equal(tapir_h2_conn__stats(c)->blocks_lost, 3);
	assert_int_equal(tapir_h2_conn__headers(c, TAPIR_H2_REQUEST, 0, 0, req, 1, 6), -EINVAL);
	assert_int_equal(tapir_h2_conn__data(c, 2, 1, 1, 0, 7), -EINVAL);
	tapir_h2_conn__free(c);
}

static void test_grpc_status(void **state)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};
	static const char *const bad[] = { "17",
					   "99",
					   "-1",
					   "+1",
					   " 0",
					   "0 ",
					   "",
					   "1a",
					   "OK",
					   "4294967297",
					   "00000000000000000000017" };
	char v[16];
	int i;

	for (i = 0; i <= 16; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(tapir_h2_grpc_status_parse(v, strlen(v)), i);
		assert_string_equal(tapir_h2_grpc_status_name(i), names[i]);
	}
	assert_int_equal(tapir_h2_grpc_status_parse("007", 3), 7);
	for (i = 0; i < (int)ARRAY_SIZE(bad); i++)
		assert_int_equal(tapir_h2_grpc_status_parse(bad[i], strlen(bad[i])),
				 TAPIR_H2_GRPC_INVALID);
	assert_int_equal(tapir_h2_grpc_status_parse(NULL, 0), TAPIR_H2_GRPC_INVALID);
	assert_string_equal(tapir_h2_grpc_status_name(TAPIR_H2_GRPC_INVALID), "UNKNOWN");
	assert_string_equal(tapir_h2_grpc_status_name(1000), "UNKNOWN");
	assert_string_equal(tapir_h2_grpc_status_name(-7), "UNKNOWN");
	assert_string_equal(tapir_h2_grpc_status_name(TAPIR_H2_GRPC_NONE), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation),
		cmocka_unit_test(test_mid_connection),
		cmocka_unit_test(test_static_fallback),
		cmocka_unit_test(test_picked_up_mid_way),
		cmocka_unit_test(test_unmatched_answer),
		cmocka_unit_test(test_interim_and_trailers),
		cmocka_unit_test(test_reset_goaway_close),
		cmocka_unit_test(test_stream_bound),
		cmocka_unit_test(test_lost_blocks),
		cmocka_unit_test(test_grpc_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
