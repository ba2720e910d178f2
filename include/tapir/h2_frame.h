/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP/2 framing: the frames of one direction of a connection, walked by their lengths. */
#ifndef TAPIR_H2_FRAME_H
#define TAPIR_H2_FRAME_H

/*
 * Like http_parse.h, this header includes nothing (BPF gets __u8..__u64 from vmlinux.h, user
 * code from <linux/types.h>) and is static and always inlined, for BPF and for the tests alike.
 *
 * The walker frames; it never stores payload. It is fed one direction of a connection in
 * whatever pieces the syscalls cut it into, one step at a time:
 *
 *	n = tapir_h2_step(&w, win, wlen, left, &ev);
 *
 * where left is what remains of the segment from the current position and win, a buffer of
 * TH2_WIN bytes, holds its next wlen (the caller copies min(left, tapir_h2_need(&w)) of them;
 * none when the step reads nothing; the step may load all TH2_WIN and masks what is beyond). A step consumes n bytes: the rest of the client preface, or of a frame header, or
 * one field it reads (the pad length, an RST_STREAM or GOAWAY code, one SETTINGS entry), and
 * then, by length alone, as much of the frame's payload as the segment holds. So a DATA frame
 * costs one step however long it is, and the payload is never looked at: ev tells where the
 * header block fragment or the DATA content lies among the n bytes, with the padding, the pad
 * length and the priority fields left out, for the caller to copy or count.
 *
 * Every step reports the current frame's header in ev, and ev.end once its last payload byte
 * is consumed: the place to act on END_STREAM and END_HEADERS, after the payload was counted.
 * An error (not HTTP/2, or a peer a real endpoint would have hung up on, i.e. we lost the
 * frame boundaries) is final: every later step returns 0 and reports it again.
 *
 * On BPF, run the step as a global function (a pointer to a TH2_WIN-byte type for the window,
 * so the verifier knows its size): it is checked once, in about 3,200 instructions, and a
 * bpf_loop can call it per frame. Inlined, one step costs 10,000 to 20,000 instructions, and
 * two or more inlined in one program multiply past the verifier's limit.
 */

#ifndef TAPIR_INLINE
#define TAPIR_INLINE static inline __attribute__((always_inline))
#endif
#ifndef TAPIR_OPAQUE
#define TAPIR_OPAQUE(x) asm volatile("" : "+r"(x))
#endif

/* Frame types (RFC 9113 6). */
#define TH2_DATA	  0x0
#define TH2_HEADERS	  0x1
#define TH2_PRIORITY	  0x2
#define TH2_RST_STREAM	  0x3
#define TH2_SETTINGS	  0x4
#define TH2_PUSH_PROMISE  0x5
#define TH2_PING	  0x6
#define TH2_GOAWAY	  0x7
#define TH2_WINDOW_UPDATE 0x8
#define TH2_CONTINUATION  0x9

/* Frame flags. */
#define TH2_F_END_STREAM  0x01 /* DATA, HEADERS */
#define TH2_F_ACK	  0x01 /* SETTINGS, PING */
#define TH2_F_END_HEADERS 0x04 /* HEADERS, PUSH_PROMISE, CONTINUATION */
#define TH2_F_PADDED	  0x08 /* DATA, HEADERS, PUSH_PROMISE */
#define TH2_F_PRIORITY	  0x20 /* HEADERS */

/* SETTINGS identifiers the callers care about. */
#define TH2_SET_HEADER_TABLE_SIZE 0x1
#define TH2_SET_MAX_FRAME_SIZE	  0x5

#define TH2_PREFACE_LEN	      24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define TH2_HEADER_LEN	      9
#define TH2_MAX_FRAME_DEFAULT 16384    /* SETTINGS_MAX_FRAME_SIZE until the receiver says more */
#define TH2_MAX_FRAME_CEIL    16777215 /* its ceiling, 2^24 - 1: all a length field can hold */
#define TH2_WIN		      32       /* a step reads at most this many bytes; a power of two */

/* Walker states (struct tapir_h2_walker.state). */
#define TH2_S_PREFACE 0 /* the client connection preface, `have` bytes of it matched */
#define TH2_S_HEADER  1 /* a frame header, `have` bytes of it in buf */
#define TH2_S_PADLEN  2 /* the pad length byte of a PADDED frame */
#define TH2_S_FIELD   3 /* a fixed field: RST_STREAM's code, GOAWAY's first 8 bytes, a setting */
#define TH2_S_BODY    4 /* the rest of the payload, taken by length */
#define TH2_S_ERROR   5

/* What a step found (struct tapir_h2_event.kind). */
#define TH2_EV_NONE    0 /* progress only: part of a header, or payload */
#define TH2_EV_PREFACE 1 /* the client preface is complete */
#define TH2_EV_FRAME   2 /* a frame header is complete: type, flags, stream_id, length */
#define TH2_EV_RST     3 /* RST_STREAM: value = error code */
#define TH2_EV_GOAWAY  4 /* value = last stream id, value2 = error code */
#define TH2_EV_SETTING 5 /* one entry of a SETTINGS frame (not an ACK): value2 = id, value */
#define TH2_EV_ERROR   6 /* value = TH2_ERR_*; final */

/* What the payload bytes of a step are (struct tapir_h2_event.what). */
#define TH2_P_NONE  0 /* nothing to look at (or no payload this step) */
#define TH2_P_BLOCK 1 /* header block fragment: HEADERS, PUSH_PROMISE, CONTINUATION */
#define TH2_P_DATA  2 /* DATA content, padding left out */

/* Why the walk stopped (TH2_EV_ERROR's value). */
#define TH2_ERR_PREFACE	     1 /* the client preface does not match */
#define TH2_ERR_LENGTH	     2 /* a length beyond max_frame */
#define TH2_ERR_SIZE	     3 /* a length a frame of its type cannot have */
#define TH2_ERR_STREAM	     4 /* a stream frame on stream 0, or a connection frame on another */
#define TH2_ERR_PADDING	     5 /* padding as long as the payload, or longer */
#define TH2_ERR_CONTINUATION 6 /* a header block interrupted, or a CONTINUATION out of one */

/*
 * One direction of a connection. Small (44 bytes) and free of pointers: it lives in a BPF map
 * value, one per direction of each connection.
 */
struct tapir_h2_walker {
	__u32 rest;	    /* payload bytes of the current frame still to come */
	__u32 length;	    /* the current frame's payload length */
	__u32 stream_id;    /* the current frame's stream */
	__u32 block_stream; /* stream whose header block awaits a CONTINUATION; 0: none */
	__u32 max_frame;    /* a longer payload is an error (TH2_ERR_LENGTH) */
	__u8 buf[16];	    /* a frame header or a field, when a segment ends inside it */
	__u8 have;	    /* bytes in buf; in TH2_S_PREFACE, bytes of the preface matched */
	__u8 state;	    /* TH2_S_* */
	__u8 type;	    /* the current frame's */
	__u8 flags;	    /* the current frame's */
	__u8 lead;	    /* payload bytes to skip before the body: priority, promised stream */
	__u8 pad;	    /* padding bytes that end the payload (counted in rest) */
	__u8 error;	    /* TH2_ERR_* in TH2_S_ERROR */
	__u8 __pad[1];
};

/* What one step found. Of the step's n bytes, [off, off + len) are payload of kind `what`
 * (BLOCK or DATA; len is 0 otherwise: other payloads are skipped unseen). */
struct tapir_h2_event {
	__u32 off;
	__u32 len;
	__u32 stream_id; /* the current frame's header */
	__u32 length;
	__u32 value; /* see TH2_EV_* */
	__u32 value2;
	__u8 kind;  /* TH2_EV_* */
	__u8 type;  /* the current frame's header */
	__u8 flags; /* the current frame's header */
	__u8 what;  /* TH2_P_* of [off, off + len) */
	__u8 end;   /* the current frame's payload is complete */
	__u8 __pad[3];
};

/* The client connection preface packed big-endian, 8 bytes a word: no table, so no .rodata
 * (libbpf before 1.2 cannot load the .rodata.cst32 section that a 32-byte one becomes). */
#define TH2_PREFACE_0 0x505249202a204854ULL /* "PRI * HT" */
#define TH2_PREFACE_1 0x54502f322e300d0aULL /* "TP/2.0\r\n" */
#define TH2_PREFACE_2 0x0d0a534d0d0a0d0aULL /* "\r\nSM\r\n\r\n" */

/* Eight bytes of the preface from byte @h on (0..23), big-endian; zeros past its end. */
TAPIR_INLINE __u64 tapir_h2_preface_at(__u32 h)
{
	__u32 q = h >> 3, r = (h & 7) * 8;
	__u64 a = q == 0 ? TH2_PREFACE_0 : q == 1 ? TH2_PREFACE_1 : TH2_PREFACE_2;
	__u64 b = q == 0 ? TH2_PREFACE_1 : q == 1 ? TH2_PREFACE_2 : 0;

	return r ? (a << r) | (b >> (64 - r)) : a;
}

/* Index of the first (most significant) non-zero byte of @d, which is not 0. */
TAPIR_INLINE __u32 tapir_h2_first_byte(__u64 d)
{
	__u32 k = 0;

	if (!(d >> 32)) {
		k += 4;
		d <<= 32;
	}
	if (!(d >> 48)) {
		k += 2;
		d <<= 16;
	}
	if (!(d >> 56))
		k += 1;
	return k;
}

/*
 * @preface_seen: bytes of the client preface already consumed elsewhere; 0 for a client's
 * direction from its first byte, TH2_PREFACE_LEN (or more) for a server's, which has none.
 * @max_frame: the receiver's SETTINGS_MAX_FRAME_SIZE if known (TH2_MAX_FRAME_DEFAULT at the
 * start of a connection); TH2_MAX_FRAME_CEIL checks nothing.
 */
TAPIR_INLINE void tapir_h2_set_max_frame(struct tapir_h2_walker *w, __u32 max_frame)
{
	if (max_frame < TH2_MAX_FRAME_DEFAULT)
		max_frame = TH2_MAX_FRAME_DEFAULT;
	if (max_frame > TH2_MAX_FRAME_CEIL)
		max_frame = TH2_MAX_FRAME_CEIL;
	w->max_frame = max_frame;
}

TAPIR_INLINE void tapir_h2_init(struct tapir_h2_walker *w, __u32 preface_seen, __u32 max_frame)
{
	__builtin_memset(w, 0, sizeof(*w));
	if (preface_seen < TH2_PREFACE_LEN) {
		w->state = TH2_S_PREFACE;
		w->have = preface_seen;
	} else {
		w->state = TH2_S_HEADER;
	}
	tapir_h2_set_max_frame(w, max_frame);
}

/* Field bytes of a frame in TH2_S_FIELD. */
TAPIR_INLINE __u32 tapir_h2_field_len(__u8 type)
{
	return type == TH2_RST_STREAM ? 4 : type == TH2_GOAWAY ? 8 : 6;
}

/* Bytes the next step looks at, at most: the caller copies min(left, this) into its window. */
TAPIR_INLINE __u32 tapir_h2_need(const struct tapir_h2_walker *w)
{
	switch (w->state) {
	case TH2_S_PREFACE: return w->have < TH2_PREFACE_LEN - 8 ? 8 : TH2_PREFACE_LEN - w->have;
	case TH2_S_HEADER: return TH2_HEADER_LEN - (w->have < TH2_HEADER_LEN ? w->have : 0);
	case TH2_S_PADLEN: return 1;
	case TH2_S_FIELD: return tapir_h2_field_len(w->type) - (w->have & 7);
	}
	return 0;
}

TAPIR_INLINE __u32 tapir_h2_be32(const __u8 *b)
{
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

TAPIR_INLINE __u32 tapir_h2_fail(struct tapir_h2_walker *w, struct tapir_h2_event *ev, __u8 why,
				 __u32 used)
{
	w->state = TH2_S_ERROR;
	w->error = why;
	ev->kind = TH2_EV_ERROR;
	ev->value = why;
	return used;
}

/*
 * Copy up to @want - have bytes of the window into buf; how many were copied. Branch-free in
 * what it counts, and each byte's store guarded alone, so that the verifier sees the paths
 * join again after every byte instead of one path per length.
 */
TAPIR_INLINE __u32 tapir_h2_gather(struct tapir_h2_walker *w, const __u8 *win, __u32 wlen,
				   __u32 want)
{
	__u32 i, h = w->have, n = 0, at;

	if (h < want)
		n = want - h;
	if (n > wlen)
		n = wlen;
	for (i = 0; i < TH2_HEADER_LEN; i++) {
		if (i < n) {
			at = h + i;
			TAPIR_OPAQUE(at); /* keeps the mask below for the verifier */
			w->buf[at & 15] = win[i & (TH2_WIN - 1)];
		}
	}
	w->have = h + n;
	return n;
}

/* The payload from here on is taken by length: the lead, the body, the padding. */
TAPIR_INLINE void tapir_h2_to_body(struct tapir_h2_walker *w)
{
	w->state = TH2_S_BODY;
	w->have = 0;
}

/* A frame header is complete in buf: check it and choose how its payload is taken. */
TAPIR_INLINE int tapir_h2_header(struct tapir_h2_walker *w)
{
	const __u8 *b = w->buf;
	__u32 len = ((__u32)b[0] << 16) | ((__u32)b[1] << 8) | b[2];
	__u32 sid = tapir_h2_be32(&b[5]) & 0x7fffffff;
	__u8 type = b[3], flags = b[4];
	int stream_frame = type == TH2_DATA || type == TH2_HEADERS || type == TH2_PRIORITY ||
			   type == TH2_RST_STREAM || type == TH2_PUSH_PROMISE ||
			   type == TH2_CONTINUATION;
	int block = type == TH2_HEADERS || type == TH2_PUSH_PROMISE || type == TH2_CONTINUATION;

	w->length = len;
	w->rest = len;
	w->type = type;
	w->flags = flags;
	w->stream_id = sid;
	w->lead = 0;
	w->pad = 0;
	if (len > w->max_frame)
		return TH2_ERR_LENGTH;
	/* RFC 9113 6.10: nothing may come between the frames of one header block. */
	if (w->block_stream ? type != TH2_CONTINUATION || sid != w->block_stream
			    : type == TH2_CONTINUATION)
		return TH2_ERR_CONTINUATION;
	if (stream_frame ? sid == 0
			 : (type == TH2_SETTINGS || type == TH2_PING || type == TH2_GOAWAY) && sid)
		return TH2_ERR_STREAM;
	if ((type == TH2_SETTINGS && (len % 6 || ((flags & TH2_F_ACK) && len))) ||
	    ((type == TH2_PING) && len != 8) || (type == TH2_WINDOW_UPDATE && len != 4) ||
	    (type == TH2_RST_STREAM && len != 4) || (type == TH2_GOAWAY && len < 8))
		return TH2_ERR_SIZE;
	if (block)
		w->block_stream = (flags & TH2_F_END_HEADERS) ? 0 : sid;
	if (type == TH2_HEADERS && (flags & TH2_F_PRIORITY))
		w->lead = 5;
	else if (type == TH2_PUSH_PROMISE)
		w->lead = 4;
	if ((type == TH2_DATA || type == TH2_HEADERS || type == TH2_PUSH_PROMISE) &&
	    (flags & TH2_F_PADDED)) {
		if (len < 1 + (__u32)w->lead)
			return TH2_ERR_SIZE;
		w->state = TH2_S_PADLEN;
		w->have = 0;
		return 0;
	}
	if (len < w->lead)
		return TH2_ERR_SIZE;
	if (type == TH2_RST_STREAM || type == TH2_GOAWAY || (type == TH2_SETTINGS && len)) {
		w->state = TH2_S_FIELD;
		w->have = 0;
		return 0;
	}
	tapir_h2_to_body(w);
	return 0;
}

/* A field is complete in buf: report it. */
TAPIR_INLINE void tapir_h2_field(struct tapir_h2_walker *w, struct tapir_h2_event *ev)
{
	const __u8 *b = w->buf;

	if (w->type == TH2_RST_STREAM) {
		ev->kind = TH2_EV_RST;
		ev->value = tapir_h2_be32(b);
		w->rest -= 4;
	} else if (w->type == TH2_GOAWAY) {
		ev->kind = TH2_EV_GOAWAY;
		ev->value = tapir_h2_be32(b) & 0x7fffffff;
		ev->value2 = tapir_h2_be32(&b[4]);
		w->rest -= 8;
	} else {
		ev->kind = TH2_EV_SETTING;
		ev->value2 = ((__u32)b[0] << 8) | b[1];
		ev->value = tapir_h2_be32(&b[2]);
		w->rest -= 6;
	}
	w->have = 0;
	/* A GOAWAY's debug data and the end of every frame go by length. */
	if (w->type != TH2_SETTINGS || !w->rest)
		tapir_h2_to_body(w);
}

/* Take as much of the payload by length as @left allows, from @at of the step's bytes. */
TAPIR_INLINE __u32 tapir_h2_body(struct tapir_h2_walker *w, __u64 left, __u32 at,
				 struct tapir_h2_event *ev)
{
	__u32 used = 0, n, body;

	if (w->lead) {
		n = left < w->lead ? (__u32)left : w->lead;
		w->lead -= n;
		w->rest -= n;
		used += n;
		left -= n;
		if (w->lead)
			return used;
	}
	body = w->rest - w->pad;
	if (body) {
		n = left < body ? (__u32)left : body;
		if (w->type == TH2_DATA)
			ev->what = TH2_P_DATA;
		else if (w->type == TH2_HEADERS || w->type == TH2_PUSH_PROMISE ||
			 w->type == TH2_CONTINUATION)
			ev->what = TH2_P_BLOCK;
		if (ev->what) {
			ev->off = at + used;
			ev->len = n;
		}
		w->rest -= n;
		used += n;
		left -= n;
		if (n < body)
			return used;
	}
	n = left < w->rest ? (__u32)left : w->rest; /* the padding */
	w->rest -= n;
	w->pad -= n;
	used += n;
	if (!w->rest) {
		ev->end = 1;
		w->state = TH2_S_HEADER;
		w->have = 0;
	}
	return used;
}

/*
 * One step over the segment's next @left bytes, of which @win (TH2_WIN bytes readable) holds
 * the first @wlen, at least min(left, tapir_h2_need(w)) of them. Returns the bytes consumed: at
 * least one while left > 0, 0 once in error.
 */
TAPIR_INLINE __u32 tapir_h2_step(struct tapir_h2_walker *w, const __u8 *win, __u32 wlen, __u64 left,
				 struct tapir_h2_event *ev)
{
	__u32 used = 0, i, h, n;
	__u64 x;
	int err;

	__builtin_memset(ev, 0, sizeof(*ev));
	if (wlen > left)
		wlen = (__u32)left;
	if (wlen > TH2_WIN)
		wlen = TH2_WIN;
	switch (w->state) {
	case TH2_S_PREFACE:
		/* Up to 8 bytes a step, compared as one word: no branch per byte. */
		h = w->have < TH2_PREFACE_LEN ? w->have : TH2_PREFACE_LEN - 1;
		n = TH2_PREFACE_LEN - h;
		if (n > wlen)
			n = wlen;
		if (n > 8)
			n = 8;
		if (!n)
			return 0;
		x = 0;
		for (i = 0; i < 8; i++)
			x = (x << 8) | win[i];
		x ^= tapir_h2_preface_at(h);
		if (n < 8)
			x &= ~(~0ULL >> (n * 8)); /* the bytes beyond the segment's */
		if (x) {
			i = tapir_h2_first_byte(x);
			w->have = h + i;
			return tapir_h2_fail(w, ev, TH2_ERR_PREFACE, i + 1);
		}
		w->have = h + n;
		if (w->have >= TH2_PREFACE_LEN) {
			w->state = TH2_S_HEADER;
			w->have = 0;
			ev->kind = TH2_EV_PREFACE;
		}
		return n;
	case TH2_S_HEADER:
		used = tapir_h2_gather(w, win, wlen, TH2_HEADER_LEN);
		if (w->have < TH2_HEADER_LEN)
			break;
		err = tapir_h2_header(w);
		if (err)
			return tapir_h2_fail(w, ev, err, used);
		ev->kind = TH2_EV_FRAME;
		break;
	case TH2_S_PADLEN:
		if (!wlen)
			break;
		w->pad = win[0];
		w->rest -= 1;
		used = 1;
		if ((__u32)w->pad + w->lead > w->rest)
			return tapir_h2_fail(w, ev, TH2_ERR_PADDING, used);
		tapir_h2_to_body(w);
		break;
	case TH2_S_FIELD:
		n = tapir_h2_field_len(w->type);
		used = tapir_h2_gather(w, win, wlen, n);
		if (w->have >= n)
			tapir_h2_field(w, ev);
		break;
	case TH2_S_BODY: break;
	default:
		ev->kind = TH2_EV_ERROR;
		ev->value = w->error;
		return 0;
	}
	if (w->state == TH2_S_BODY && left > used)
		used += tapir_h2_body(w, left - used, used, ev);
	else if (w->state == TH2_S_BODY && !w->rest)
		used += tapir_h2_body(w, 0, used, ev); /* an empty payload ends with its header */
	ev->type = w->type;
	ev->flags = w->flags;
	ev->stream_id = w->stream_id;
	ev->length = w->length;
	return used;
}

#endif
