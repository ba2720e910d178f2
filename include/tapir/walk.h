/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The walk: a syscall's bytes, segment by segment, through a connection's parsers and driver. */
#ifndef TAPIR_WALK_H
#define TAPIR_WALK_H

/*
 * Shared by the BPF programs and the unit tests, which drive exactly this code over buffers of
 * their own. Besides the hooks of conn.h (included before this file, with its TAPIR_CONN_ENV),
 * the includer defines:
 *
 *   int tapir_walk_read(TAPIR_CONN_ENV *env, void *dst, __u32 n, __u64 src);   copy the n bytes
 *	at src: the traced process's memory (BPF: bpf_probe_read_user), or with the socket-buffer
 *	hooks offset src of the segment that @env is (bpf_skb_load_bytes); 0 or an error
 *
 * and may define TAPIR_WALK_FEED, TAPIR_WALK_FAST and TAPIR_WALK_EVENT to route the parser
 * step, the fast path and the event handler through functions of its own (BPF: global
 * functions the verifier checks once); they default to the plain ones.
 */
#include "conn.h"

#define TAPIR_MAX_IOV	16 /* iovecs looked at per readv/writev/recvmsg/sendmsg */
#define TAPIR_IOV_BATCH 4  /* iovecs read at once (a server's head and body, usually) */
#define TAPIR_IO_PLAIN	0  /* read/write/recvfrom/sendto: one buffer */
#define TAPIR_IO_IOV	1  /* readv/writev/recvmsg/sendmsg: an iovec array */
#define TAPIR_IO_BLIND	2  /* sendfile: bytes we cannot see */

/* struct iovec as the kernel lays it out on 64-bit. */
struct tapir_iovec {
	__u64 base;
	__u64 len;
};

/*
 * A syscall's bytes being walked, segment by segment (one buffer, or one iovec each). On BPF
 * it lives in a per-CPU map, not on the stack: it is big, and in the compat build it carries
 * the walk from one tail call to the next.
 */
struct tapir_walk {
	struct tapir_conn_key key;
	struct tapir_conn_pos pos; /* of the current segment */
	__u64 buf;		   /* user buffer, or iovec array */
	__u64 left;		   /* bytes of the syscall not yet in a segment */
	__u64 seg_ubuf;		   /* user address of the segment; 0 when unreadable */
	__u64 seg_len;
	__u64 off;     /* offset in the segment */
	__u64 woff;    /* segment offset of win[0] */
	__u64 len;     /* bytes of the syscall */
	__u64 seg_at;  /* syscall offset of the segment */
	__u64 line_at; /* syscall offset of the last request line that began in it */
	__u32 wlen;    /* valid bytes in win */
	__u32 iov_i;
	__u32 iovcnt;
	__u32 iov_have;	 /* iovecs in iov[], read in one go at the first */
	__u32 line_read; /* bytes of the newest request line that tapir_walk_step() still reads */
	__u32 no_head;	 /* 1 + the segment offset where this window did not take a whole head */
	struct tapir_iovec iov[TAPIR_IOV_BATCH];
	/* tapir_http_head()'s copy of the parser */
	struct tapir_http_parser head;
	__u8 kind;   /* TAPIR_IO_* */
	__u8 dir;    /* TAPIR_DIR_* */
	__u8 in_seg; /* a segment is being walked */
	__u8 done;   /* every byte walked, or the connection left HTTP/1.x */
	__u8 win[TAPIR_WIN];
};

#ifndef TAPIR_WALK_FEED
#define TAPIR_WALK_FEED(p, c) tapir_http_feed(p, c)
#endif
#ifndef TAPIR_WALK_FAST
#define TAPIR_WALK_FAST(p, x0, x1) tapir_http_fast(p, x0, x1)
#endif
#ifndef TAPIR_WALK_SKIP
#define TAPIR_WALK_SKIP(p, w, at) tapir_walk_skip(p, w, at)
#endif
#ifndef TAPIR_OPS_PER_STEP
#define TAPIR_OPS_PER_STEP 16 /* shortcuts (fast path, skips) taken in one step at most */
#endif
#ifndef TAPIR_FEED_IN_OPS
#define TAPIR_FEED_IN_OPS 1 /* single bytes count as ops of a step (0: a step ends with one) */
#endif
#ifndef TAPIR_SKIPS
#define TAPIR_SKIPS 1 /* line skips (tapir_http_skip_window()); 0: none (compat build) */
#endif
#ifndef TAPIR_HEADS
#define TAPIR_HEADS 1 /* whole message heads (tapir_http_head()); 0: none (compat build) */
#endif
#ifndef TAPIR_WALK_HEAD
#define TAPIR_WALK_HEAD(p, w, at) tapir_walk_head(p, w, at)
#endif
#ifndef TAPIR_WALK_EVENT
#define TAPIR_WALK_EVENT(env, c, ev, w) tapir_walk_event(env, c, ev, w)
#endif

/* Set @w up for a syscall of @len bytes on connection @key (@buf: buffer or iovec array). */
TAPIR_INLINE void tapir_walk_begin(struct tapir_walk *w, const struct tapir_conn_key *key,
				   __u8 kind, __u8 dir, __u64 buf, __u32 iovcnt, __u64 len,
				   __u64 ts, __u64 now)
{
	w->key = *key;
	w->pos.off = 0;
	w->pos.mark = 0;
	w->pos.ts = ts;
	w->pos.now = now;
	w->buf = kind == TAPIR_IO_BLIND ? 0 : buf;
	w->left = len;
	w->len = len;
	w->seg_at = 0;
	w->line_at = 0;
	w->seg_ubuf = 0;
	w->seg_len = 0;
	w->off = 0;
	w->woff = 0;
	w->wlen = 0;
	w->iov_i = 0;
	w->iovcnt = iovcnt;
	w->iov_have = 0;
	w->kind = kind;
	w->dir = dir;
	w->in_seg = 0;
	w->done = 0;
	w->line_read = 0;
	w->no_head = 0;
	/* One buffer (or bytes passed over blind) is the walk's one segment, set up here: its
	 * first step parses, where a step of its own would only have found the segment. */
	if (kind != TAPIR_IO_IOV && len) {
		w->seg_ubuf = w->buf;
		w->seg_len = len;
		w->left = 0;
		w->woff = ~0ULL >> 1;
		w->in_seg = 1;
	}
}

/*
 * Copy the start of the request line that begins at pos.off - 1 (as much as the segment has),
 * NUL-padded: from the window, which has just shown its first byte and usually has it all, else
 * (w->line_read) by tapir_walk_step() once the event is handled, with the read's context: this
 * runs in the event handler, a function of its own on BPF.
 */
TAPIR_INLINE void tapir_walk_keep_line(__u8 *line, struct tapir_walk *w)
{
	__u64 at = w->pos.off - 1, n, o, x;
	__u32 i;

	w->line_at = w->seg_at + at;
	if (!w->seg_ubuf || at >= w->seg_len) {
		__builtin_memset(line, 0, TAPIR_LINE_BYTES);
		return;
	}
	n = w->seg_len - at;
	if (n > TAPIR_LINE_BYTES)
		n = TAPIR_LINE_BYTES;
	o = at - w->woff;
	if (at >= w->woff && o + n <= w->wlen) {
		TAPIR_OPAQUE(o); /* a no-op mask (o < wlen <= TAPIR_WIN), for the verifier */
		o &= TAPIR_WIN - 1;
		if (o <= TAPIR_WIN - TAPIR_LINE_BYTES) {
			for (i = 0; i < TAPIR_LINE_BYTES / 8; i++) {
				x = TAPIR_LOAD64(&w->win[o + 8 * i]);
				if (n < 8 * i + 8) /* past the segment: NUL */
					x = n > 8 * i ? x & (~0ULL >> (64 - 8 * (n - 8 * i))) : 0;
				TAPIR_STORE64(&line[8 * i], x);
			}
			return;
		}
	}
	__builtin_memset(line, 0, TAPIR_LINE_BYTES);
	w->line_read = n;
}

/* An event of either parser, handed to the connection driver. */
TAPIR_INLINE int tapir_walk_event(TAPIR_CONN_ENV *env, struct tapir_conn *c, int ev,
				  struct tapir_walk *w)
{
	int r;

	if (w->dir == TAPIR_DIR_OUT)
		return tapir_conn_response(env, c, ev, &w->pos);
	r = tapir_conn_request(env, c, ev, &w->pos);
	if (r == TAPIR_NEW_REQ) {
		tapir_walk_keep_line(c->line[tapir_conn_newest(c) & (TAPIR_MAX_PENDING - 1)], w);
		r = TAPIR_GO_ON;
	}
	return r;
}

/* Move on to the next segment of the syscall: the buffer, or the next iovec. 1: none left. */
TAPIR_INLINE int tapir_walk_next_segment(TAPIR_CONN_ENV *env, struct tapir_walk *w)
{
	struct tapir_iovec iov = { 0, 0 };
	__u64 base = 0, n;
	__u32 k;
	int err;

	if (!w->left)
		return 1;
	n = w->left;
	if (w->kind == TAPIR_IO_PLAIN) {
		base = w->buf;
	} else if (w->kind == TAPIR_IO_IOV && w->iov_i < w->iovcnt && w->iov_i < TAPIR_MAX_IOV) {
		/* Beyond TAPIR_MAX_IOV the rest goes in one blind segment: fine inside a body, a
		 * parse failure elsewhere. The first TAPIR_IOV_BATCH iovecs come in one read. */
		if (w->iov_i == 0) {
			k = w->iovcnt < TAPIR_IOV_BATCH ? w->iovcnt : TAPIR_IOV_BATCH;
			if (k > 1 && !tapir_walk_read(env, w->iov, k * sizeof(iov), w->buf))
				w->iov_have = k;
		}
		if (w->iov_i < w->iov_have) {
			iov = w->iov[w->iov_i & (TAPIR_IOV_BATCH - 1)];
			err = 0;
		} else {
			err = tapir_walk_read(env, &iov, sizeof(iov),
					      w->buf + w->iov_i * sizeof(iov));
		}
		if (err) {
			tapir_conn_stat(env, TAPIR_STAT_READ_FAULT);
		} else {
			base = iov.base;
			if (iov.len < n)
				n = iov.len;
		}
		w->iov_i++;
	}
	w->seg_at = w->len - w->left;
	w->seg_ubuf = base;
	w->seg_len = n;
	w->left -= n;
	w->off = 0;
	w->woff = ~0ULL >> 1;
	w->wlen = 0;
	w->pos.mark = 0;
	w->no_head = 0;
	w->in_seg = 1;
	return 0;
}

/* In a tapir_http_skip_state(): the lines the window shows from @at that need no reading
 * (tapir_http_skip_window()). 0 when fewer than 8 bytes are left in the window (then feed). */
TAPIR_INLINE __u32 tapir_walk_skip(struct tapir_http_parser *p, const struct tapir_walk *w,
				   __u32 at)
{
	return tapir_http_skip_window(p, w->win, w->wlen, at);
}

/* A whole message head from @at (tapir_http_head()): the bytes taken, and the event of its end
 * times 65536; 0 when the head is not of that shape. */
TAPIR_INLINE int tapir_walk_head(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at)
{
	int ev = TP_EV_NONE;
	__u32 n = tapir_http_head(p, &w->head, w->win, w->wlen, at, &ev);

	return n ? (int)n | (ev << 16) : 0;
}

/**
 * tapir_walk_step - one parser step of a walk, and its event if any
 *
 * Returns 1 when the walk is over (every byte seen, a fault, or the connection left
 * HTTP/1.x), 0 to go on. Bodies of known length go in one step; whole heads of the usual
 * shape in one go (tapir_http_head()); lines whose rest does not matter to their LF; the
 * usual header names and values up to 16 bytes at a time; the rest byte by byte; all through a
 * 256-byte window of the process's memory.
 */
TAPIR_INLINE int tapir_walk_step(TAPIR_CONN_ENV *env, struct tapir_walk *w, struct tapir_conn *c)
{
	struct tapir_http_parser *p;
	__u64 left, max, n, x0, x1;
	__u32 at, o, taken, i, again = 0;
	int ev, r;

	if (w->off >= w->seg_len)
		goto seg_end; /* the walk's first step for an iovec array */
	if (c->state >= TAPIR_CONN_IGNORED)
		goto over;
	if (w->dir == TAPIR_DIR_IN && (c->flags & TAPIR_CF_NO_MORE_REQ)) {
		w->off = w->seg_len; /* after an ambiguous request: not parsed */
		goto seg_end;
	}
	p = w->dir == TAPIR_DIR_IN ? &c->req : &c->resp;
	left = w->seg_len - w->off;
	max = tapir_http_bulk_max(p);
	if (max) {
		n = left < max ? left : max;
		w->off += n;
		ev = tapir_http_bulk(p, n);
		goto event;
	}
	if (!w->seg_ubuf) {
		ev = TP_EV_ERROR; /* framing bytes we cannot see */
		goto event;
	}
	/* Refill when the window cannot show the next 16 bytes but the segment can. */
	if (w->off < w->woff || w->off >= w->woff + w->wlen ||
	    (w->off + 16 > w->woff + w->wlen && w->woff + w->wlen < w->seg_len)) {
		n = left < TAPIR_WIN ? left : TAPIR_WIN;
		/* 1 to TAPIR_WIN (left is not 0), in a form whose bound every verifier keeps: a
		 * segment's read takes no size that may be 0, and 6.1's keeps none from a test. */
		n = ((n - 1) & (TAPIR_WIN - 1)) + 1;
		if (tapir_walk_read(env, w->win, n, w->seg_ubuf + w->off)) {
			tapir_conn_stat(env, TAPIR_STAT_READ_FAULT);
			ev = TP_EV_ERROR;
			goto event;
		}
		w->woff = w->off;
		w->wlen = n;
		w->no_head = 0; /* a new window: a head may fit it */
	}
	at = (w->off - w->woff) & (TAPIR_WIN - 1);
	/*
	 * Whole lines, names, values and runs of a start line, as many as the window shows, and
	 * single bytes where no shortcut applies (a line's last bytes at the window's end, the
	 * blank line after the headers), until an event, a body or the window's end.
	 */
	taken = 0;
	ev = TP_EV_NONE;
	/* A message's usual first byte without a call into the parser; its head then in this
	 * step too, after the START event (below). */
	if (TAPIR_HEADS && p->state == TP_IDLE) {
		ev = tapir_http_first(p, w->win[at & (TAPIR_WIN - 1)]);
		if (ev != TP_EV_NONE) {
			taken = 1;
			goto took;
		}
	}
	/* Right after a message's first byte fed: its whole head, if the window has it and it is
	 * of the usual shape (unless the step of that byte found it is not); a body is the next
	 * step's. */
	r = TAPIR_HEADS && p->state == TP_START && p->pos == 1 && w->no_head != (__u32)w->off + 1
		    ? TAPIR_WALK_HEAD(p, w, at)
		    : 0;
	if (r) {
		taken = r & 0xffff;
		ev = r >> 16;
		goto took;
	}
	for (i = 0; i < TAPIR_OPS_PER_STEP; i++) {
		n = 0;
		if (TAPIR_SKIPS && tapir_http_skip_state(p)) {
			n = TAPIR_WALK_SKIP(p, w, at);
		} else if (at + 16 <= w->wlen && tapir_http_fast_state(p->state)) {
			o = at;
			TAPIR_OPAQUE(o); /* a no-op mask (wlen <= TAPIR_WIN), for the verifier */
			o &= TAPIR_WIN - 1;
			if (o <= TAPIR_WIN - 16) {
				x0 = TAPIR_LOAD64(&w->win[o]);
				x1 = TAPIR_LOAD64(&w->win[o + 8]);
				n = TAPIR_WALK_FAST(p, x0, x1);
			}
		}
		if (!n) {
			/* One byte, the one no shortcut took: a step always moves. */
			if (taken && (!TAPIR_FEED_IN_OPS || at >= w->wlen))
				break;
			ev = TAPIR_WALK_FEED(p, w->win[at & (TAPIR_WIN - 1)]);
			taken++;
			at++;
			if (!TAPIR_FEED_IN_OPS || (ev != TP_EV_NONE && ev != TP_EV_HEADERS))
				break;
			ev = TP_EV_NONE;
		} else {
			taken += n;
			at += n;
		}
		if (tapir_http_bulk_max(p))
			break; /* a body: the next step takes it whole */
	}
took:
	w->off += taken;
event:
	if (ev == TP_EV_NONE || ev == TP_EV_HEADERS)
		goto seg_end;
	w->pos.off = w->off;
	r = TAPIR_WALK_EVENT(env, c, ev, w);
	if (w->line_read) {
		/* The new request's line, where the window did not show it all. */
		n = w->line_read;
		w->line_read = 0;
		n = ((n - 1) & (TAPIR_LINE_BYTES - 1)) + 1; /* 1 to TAPIR_LINE_BYTES, as above */
		tapir_walk_read(env, c->line[tapir_conn_newest(c) & (TAPIR_MAX_PENDING - 1)], n,
				w->seg_ubuf + (w->line_at - w->seg_at));
	}
	if (r == TAPIR_STOP)
		goto over;
	/* A message's first byte, then its whole head in the same step where the window shows
	 * it (the event's handler may have left HTTP/1.x: the parser then is not at TP_START). */
	if (TAPIR_HEADS && ev == TP_EV_START && !again && c->state < TAPIR_CONN_IGNORED &&
	    w->off >= w->woff && w->off < w->woff + w->wlen) {
		again = 1;
		r = TAPIR_WALK_HEAD(p, w, (w->off - w->woff) & (TAPIR_WIN - 1));
		if (r) {
			w->off += r & 0xffff;
			ev = r >> 16;
			goto event;
		}
		w->no_head = (__u32)w->off + 1; /* the next step takes it in smaller pieces */
	}
seg_end:
	/* The segment's end in the step that took its last bytes: a walk of one buffer is over
	 * in the step that took its last byte, not in one more. */
	if (w->off < w->seg_len)
		return 0;
	if (w->in_seg) {
		tapir_conn_segment_end(c, w->dir, w->seg_len, w->pos.mark);
		w->in_seg = 0;
	}
	if (!tapir_walk_next_segment(env, w))
		return 0;
over:
	w->done = 1;
	return 1;
}

#endif /* TAPIR_WALK_H */
