/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The connection driver: pairs requests with responses and settles what a connection leaves. */
#ifndef TAPIR_CONN_H
#define TAPIR_CONN_H

/*
 * Pure code, shared by the BPF programs (bpf/http.bpf.c) and the unit tests, which drive
 * exactly what the kernel runs. It touches no map and no user memory: the includer defines, before including
 * this file, the hooks below (static, always inlined on BPF), and `TAPIR_CONN_ENV`, the type
 * of the context they get.
 *
 *   void tapir_conn_record(TAPIR_CONN_ENV *env, struct tapir_conn *c, __u32 slot,
 *                          __u8 outcome, __u16 status, __u64 now);
 *	the request in @slot is over: emit its record (before it is popped)
 *   void tapir_conn_stat(TAPIR_CONN_ENV *env, __u32 idx);	  a TAPIR_STAT_* counter
 *
 * and may define TAPIR_CONN_SETTLE(env, c) (below).
 *
 * The connection itself is the only record of what is in flight: its pending requests
 * (`count`) and whether it was upgraded. The daemon sums those per cgroup for the gauges, so
 * a connection swept or deleted takes its share with it; nothing else keeps a count.
 */
#include "http.h"

#define TAPIR_SLOT(c, i) (((c)->head + (i)) & (TAPIR_MAX_PENDING - 1))

/* Emit the record of the oldest pending request and pop it. */
TAPIR_INLINE void tapir_conn_finish(TAPIR_CONN_ENV *env, struct tapir_conn *c, __u8 outcome,
				    __u16 status, __u64 now)
{
	__u32 h = TAPIR_SLOT(c, 0);

	tapir_conn_record(env, c, h, outcome, status, now);
	c->head = (h + 1) & (TAPIR_MAX_PENDING - 1);
	c->count--;
	c->first_byte_ns = 0;
	c->resp_bytes = 0;
	c->llm_out_off = 0;
}

/* The oldest request's answer ended before the request did (c->answered): its record is made
 * now, as its last byte was read (or the connection ends), with the time and status of that
 * answer. */
TAPIR_INLINE void tapir_conn_settle_answered(TAPIR_CONN_ENV *env, struct tapir_conn *c)
{
	c->answered = 0;
	tapir_conn_finish(env, c, TAPIR_OUT_COMPLETE, c->answered_status, c->answered_ns);
}

/* The includer may make it a call of its own (the BPF programs: verified once, not at each of
 * the many places a connection is given up). */
#ifndef TAPIR_CONN_SETTLE
#define TAPIR_CONN_SETTLE(env, c) tapir_conn_settle_answered(env, c)
#endif

TAPIR_INLINE void tapir_conn_settle(TAPIR_CONN_ENV *env, struct tapir_conn *c)
{
	if (c->answered)
		TAPIR_CONN_SETTLE(env, c);
}

/* Give up on a connection: its pending requests are dropped, and @why counted. An answered
 * request whose last bytes were not read yet is recorded first: its answer was whole. */
TAPIR_INLINE void tapir_conn_abandon(TAPIR_CONN_ENV *env, struct tapir_conn *c, __u32 why)
{
	tapir_conn_settle(env, c);
	/* An outbound connection that is no HTTP/1.x is counted apart from the servers'. */
	if ((c->flags & TAPIR_CF_CLIENT) &&
	    (why == TAPIR_STAT_IGNORED_NOT_HTTP || why == TAPIR_STAT_IGNORED_TLS ||
	     why == TAPIR_STAT_IGNORED_HTTP2))
		why = TAPIR_STAT_IGNORED_OUTBOUND;
	tapir_conn_stat(env, why);
	c->count = 0;
	c->state = TAPIR_CONN_IGNORED;
}

/* Nothing more to look at on @c: not HTTP, or no longer (an upgraded connection whose first
 * bytes after the 101 were not HTTP/2). */
TAPIR_INLINE int tapir_conn_passive(const struct tapir_conn *c)
{
	return c->state >= TAPIR_CONN_IGNORED && c->state != TAPIR_CONN_H2 &&
	       !(c->state == TAPIR_CONN_UPGRADED && !(c->flags & TAPIR_CF_UPGRADE_SEEN));
}

/**
 * tapir_conn_finalize - account for a connection that is going away
 *
 * The server's FIN (close or shutdown), the socket destroyed, or its address reused. A close-delimited response ends here and
 * is complete; every other pending request was cut off: by the client when it was seen to go
 * away (499), else by the server (502). On an outbound connection the peer is the server: its
 * going away cut the answer off (502), and this side's own close gave up on it (499).
 */
TAPIR_INLINE void tapir_conn_finalize(TAPIR_CONN_ENV *env, struct tapir_conn *c, __u64 now)
{
	__u8 outcome;
	int i;

	if (c->state == TAPIR_CONN_UPGRADED) {
		c->state = TAPIR_CONN_IGNORED;
		return;
	}
	tapir_conn_settle(env, c);
	for (i = 0; i < TAPIR_MAX_PENDING; i++) {
		if (!c->count)
			break;
		if (c->resp.state == TP_BODY_CLOSE)
			outcome = TAPIR_OUT_COMPLETE;
		else if (!c->peer_gone == !(c->flags & TAPIR_CF_CLIENT))
			outcome = TAPIR_OUT_SERVER_ABORT;
		else
			outcome = TAPIR_OUT_CLIENT_ABORT;
		tapir_conn_finish(env, c, outcome, c->resp.status, now);
		tapir_http_init(&c->resp, TP_KIND_RESPONSE);
	}
}

/* Results of tapir_conn_request() and tapir_conn_response(). */
#define TAPIR_GO_ON   0	 /* keep parsing */
#define TAPIR_NEW_REQ 1	 /* a request started in the slot tapir_conn_newest(): keep its line */
#define TAPIR_STOP    -1 /* the connection left HTTP/1.x or was dropped: parse no more */

TAPIR_INLINE __u32 tapir_conn_newest(const struct tapir_conn *c)
{
	return TAPIR_SLOT(c, c->count - 1);
}

/**
 * tapir_conn_request - a request-side parser event
 *
 * Bytes between events are attributed to the request in progress; a framing error before
 * the first whole request line means the connection is not HTTP/1.x at all.
 */
TAPIR_INLINE int tapir_conn_request(TAPIR_CONN_ENV *env, struct tapir_conn *c, int ev,
				    struct tapir_conn_pos *a)
{
	__u32 t;

	if (c->flags & TAPIR_CF_NO_MORE_REQ) {
		/* After an ambiguous request the server may read the rest as body or as
		 * another request: nothing after it is counted as one. */
		a->mark = a->off;
		return TAPIR_GO_ON;
	}
	if (ev == TP_EV_START) {
		c->state = TAPIR_CONN_HTTP;
		c->flags &= ~TAPIR_CF_PRESTART;
		if (c->flags & TAPIR_CF_UNTRACKED) {
			/* No room to follow it: counted, and parsed only to find where the
			 * next request the same read carries (pipelined) begins. */
			tapir_conn_stat(env, TAPIR_STAT_REQ_UNTRACKED);
			a->mark = a->off - 1;
			return TAPIR_GO_ON;
		}
		if (c->count) {
			t = tapir_conn_newest(c);
			c->req_bytes[t] += a->off - 1 - a->mark;
		}
		a->mark = a->off - 1;
		if (c->count >= TAPIR_MAX_PENDING) {
			tapir_conn_stat(env, TAPIR_STAT_PENDING_OVERFLOW);
			return TAPIR_GO_ON;
		}
		t = TAPIR_SLOT(c, c->count);
		c->start_ns[t] = a->now;
		c->req_bytes[t] = 0;
		c->method[t] = TP_M_UNKNOWN;
		c->llm_id[t] = 0; /* the payload capture numbers it once its line is read */
		c->count++;
		return TAPIR_NEW_REQ;
	}
	if (ev == TP_EV_DONE || ev == TP_EV_AMBIGUOUS) {
		c->flags |= TAPIR_CF_SPOKE_HTTP;
		if (c->count) {
			t = tapir_conn_newest(c);
			c->req_bytes[t] += a->off - a->mark;
			c->method[t] = c->req.method;
		}
		a->mark = a->off;
		tapir_conn_settle(env, c); /* the request already answered is whole now */
		if (ev == TP_EV_AMBIGUOUS) {
			/* Content-Length with Transfer-Encoding (RFC 9112 6.3): servers refuse
			 * it and close, or read on in a way we cannot know. Its answer is still
			 * paired with it; what follows is never taken for a request. */
			tapir_conn_stat(env, TAPIR_STAT_AMBIGUOUS_REQUEST);
			c->flags |= TAPIR_CF_NO_MORE_REQ;
		}
		tapir_http_init(&c->req, TP_KIND_REQUEST);
		return TAPIR_GO_ON;
	}
	if (c->flags & TAPIR_CF_PRESTART) {
		/* Open before tapir started: these may be the rest of a request it never saw
		 * begin (a body), or no HTTP at all. The answer, if any, will tell. */
		tapir_http_init(&c->req, TP_KIND_REQUEST);
		a->mark = a->off;
		return TAPIR_STOP;
	}
	/* TP_EV_ERROR: before a first whole request line, this simply is not HTTP/1.x (TLS,
	 * HTTP/2, another protocol); after it, HTTP we failed to follow. */
	if ((c->flags & TAPIR_CF_SPOKE_HTTP) || (c->req.flags & TP_F_LINE_OK))
		tapir_conn_abandon(env, c, TAPIR_STAT_PARSE_REQUEST);
	else
		tapir_conn_abandon(env, c,
				   c->req.method == TP_M_PRI ? TAPIR_STAT_IGNORED_HTTP2
							     : TAPIR_STAT_IGNORED_NOT_HTTP);
	return TAPIR_STOP;
}

/* A response-side parser event: TTFB, interim responses, the end of an answer. */
TAPIR_INLINE int tapir_conn_response(TAPIR_CONN_ENV *env, struct tapir_conn *c, int ev,
				     struct tapir_conn_pos *a)
{
	__u32 h = TAPIR_SLOT(c, 0);
	__u8 upgraded;

	if (ev == TP_EV_START) {
		a->mark = a->off - 1;
		/* Another answer while the last one's request is still being read: a server
		 * that answered twice. That request is over; this answer is a stray. */
		tapir_conn_settle(env, c);
		if (!c->count) {
			/* Framed all the same, so the next request is found where it starts. */
			tapir_conn_stat(env, (c->flags & TAPIR_CF_PRESTART)
						     ? TAPIR_STAT_BEFORE_START
						     : TAPIR_STAT_STRAY_RESPONSE);
			c->flags &= ~TAPIR_CF_PRESTART;
			return TAPIR_GO_ON;
		}
		if (c->method[h] == TP_M_UNKNOWN && c->count == 1)
			c->method[h] = c->req.method; /* answered before the body was read */
		if (c->method[h] == TP_M_HEAD)
			c->resp.flags |= TP_F_NO_BODY;
		if (!c->first_byte_ns)
			c->first_byte_ns = a->ts;
		return TAPIR_GO_ON;
	}
	if (ev == TP_EV_INTERIM) {
		/* 100 Continue and friends: on the wire, but not the answer; TTFB waits for
		 * the final response. */
		c->resp_bytes += a->off - a->mark;
		a->mark = a->off;
		c->first_byte_ns = 0;
		if (c->count && c->method[h] == TP_M_HEAD)
			c->resp.flags |= TP_F_NO_BODY;
		return TAPIR_GO_ON;
	}
	if (ev == TP_EV_DONE) {
		if (c->count == 1 && !(c->resp.flags & TP_F_UPGRADED) && c->req.state != TP_IDLE &&
		    !(c->flags & TAPIR_CF_NO_MORE_REQ)) {
			/* Answered from its head, its body still coming (nginx's `return`,
			 * an early 413): recorded when the body ends, so that its size counts
			 * the bytes read after the answer too. */
			c->resp_bytes += a->off - a->mark;
			c->answered = 1;
			c->answered_status = c->resp.status;
			c->answered_ns = a->now;
		} else if (c->count) {
			c->resp_bytes += a->off - a->mark;
			upgraded = c->resp.flags & TP_F_UPGRADED;
			tapir_conn_finish(env, c,
					  upgraded ? TAPIR_OUT_UPGRADED : TAPIR_OUT_COMPLETE,
					  c->resp.status, a->now);
			if (upgraded) {
				tapir_conn_stat(env, TAPIR_STAT_UPGRADED);
				c->state = TAPIR_CONN_UPGRADED;
				return TAPIR_STOP;
			}
		}
		a->mark = a->off;
		tapir_http_init(&c->resp, TP_KIND_RESPONSE);
		return TAPIR_GO_ON;
	}
	tapir_conn_abandon(env, c,
			   (c->flags & TAPIR_CF_PRESTART) ? TAPIR_STAT_IGNORED_NOT_HTTP
							  : TAPIR_STAT_PARSE_RESPONSE);
	return TAPIR_STOP;
}

/* A segment ended: the bytes since the last event belong to the message in progress. */
TAPIR_INLINE void tapir_conn_segment_end(struct tapir_conn *c, int dir_out, __u64 len, __u64 mark)
{
	if (!c->count || len <= mark)
		return;
	if (!dir_out) {
		if (!(c->flags & TAPIR_CF_NO_MORE_REQ))
			c->req_bytes[tapir_conn_newest(c)] += len - mark;
	} else if (c->resp.state != TP_IDLE) {
		c->resp_bytes += len - mark;
	}
}

#endif /* TAPIR_CONN_H */
