/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* An HTTP/2 connection in the kernel: both walkers, and what each step hands the daemon. */
#ifndef TAPIR_H2_CONN_H
#define TAPIR_H2_CONN_H

/*
 * Pure code, shared by bpf/http.bpf.c and the unit tests (which drive real HTTP/2 through it
 * into user/sources/h2_track.c). Includes nothing: the includer has included http.h and
 * h2_frame.h, and defines, before including this file, the hook
 *
 *   int tapir_h2_emit(TAPIR_H2_ENV *env, struct tapir_h2_conn_state *h, __u32 dir, __u8 kind,
 *		       __u32 stream_id, __u32 value, __u32 value2, __u8 flags, __u32 off,
 *		       __u32 len);
 *	a record of direction @dir (struct tapir_h2_rec) with, for TAPIR_H2R_BLOCK, the @len
 *	bytes at offset @off of the step's bytes; it sets TAPIR_H2R_F_LOST itself when h->lost[dir]
 *	(and clears h->lost[dir] once a record went out). 0, or -1 when the record was not sent
 *	(the ring was full, the bytes could not be read): h->lost[dir] is set then.
 *
 * and TAPIR_H2_ENV, the type of its context.
 */

/* Both directions of a connection, by TAPIR_DIR_*: the client's frames, the server's. */
struct tapir_h2_conn_state {
	struct tapir_h2_walker w[2];
	__u32 block_bytes[2]; /* bytes of the current header block handed over */
	__u8 block_flags[2];  /* END_STREAM, PUSH of the block begun (TAPIR_H2R_F_*) */
	__u8 cut[2];	      /* the rest of the current block is not handed over */
	__u8 lost[2];	      /* block bytes were lost: the next record says so */
	__u8 seen[2];	      /* a whole, valid frame header came: this side speaks HTTP/2 */
};

/* A connection whose client preface is still to come, its server's frames from their start. */
TAPIR_INLINE void tapir_h2_conn_init(struct tapir_h2_conn_state *h)
{
	__builtin_memset(h, 0, sizeof(*h));
	tapir_h2_init(&h->w[TAPIR_DIR_IN], 0, TH2_MAX_FRAME_DEFAULT);
	tapir_h2_init(&h->w[TAPIR_DIR_OUT], TH2_PREFACE_LEN, TH2_MAX_FRAME_DEFAULT);
}

/* A connection open before tapir started, picked up where a frame seems to begin, either way:
 * no preface to come. Frames longer than the default maximum end the walk (counted): a peer
 * that raised it in a SETTINGS tapir never saw is rarer than bytes that only look like a frame. */
TAPIR_INLINE void tapir_h2_conn_init_mid(struct tapir_h2_conn_state *h)
{
	__builtin_memset(h, 0, sizeof(*h));
	tapir_h2_init(&h->w[TAPIR_DIR_IN], TH2_PREFACE_LEN, TH2_MAX_FRAME_DEFAULT);
	tapir_h2_init(&h->w[TAPIR_DIR_OUT], TH2_PREFACE_LEN, TH2_MAX_FRAME_DEFAULT);
}

/*
 * A header block fragment of direction @d in the step's bytes (or only the end of a block): at
 * most TAPIR_H2_BLOCK_BYTES of one block are handed over; beyond, or when they cannot be, the
 * block is given up (the daemon is told with TAPIR_H2R_F_LOST, and nothing more of it comes).
 * Returns 1 when a block was given up here.
 */
TAPIR_INLINE int tapir_h2_block(TAPIR_H2_ENV *env, struct tapir_h2_conn_state *h, __u32 d,
				const struct tapir_h2_event *ev)
{
	__u32 n = ev->what == TH2_P_BLOCK ? ev->len : 0, have;
	__u8 flags;

	d &= 1;
	if (h->cut[d])
		return 0; /* the daemon gave this block up already */
	flags = h->block_flags[d];
	if (ev->end && (ev->flags & TH2_F_END_HEADERS))
		flags |= TAPIR_H2R_F_END_HEADERS;
	have = h->block_bytes[d];
	if (have > TAPIR_H2_BLOCK_BYTES || n > TAPIR_H2_BLOCK_BYTES - have) {
		h->cut[d] = 1;
		h->lost[d] = 1;
		tapir_h2_emit(env, h, d, TAPIR_H2R_BLOCK, ev->stream_id, 0, 0, 0, 0, 0);
		return 1;
	}
	h->block_bytes[d] = have + n;
	if (tapir_h2_emit(env, h, d, TAPIR_H2R_BLOCK, ev->stream_id, 0, 0, flags, ev->off, n)) {
		h->cut[d] = 1;
		return 1;
	}
	return 0;
}

/*
 * What one step of direction @d found (@ev): the records it makes, in order. Returns 1 when a
 * header block was given up (TAPIR_STAT_H2_BLOCK_CAP), else 0.
 */
TAPIR_INLINE int tapir_h2_on_step(TAPIR_H2_ENV *env, struct tapir_h2_conn_state *h, __u32 d,
				  const struct tapir_h2_event *ev)
{
	__u8 type = ev->type, kind = ev->kind;

	d &= 1;
	if (kind == TH2_EV_FRAME)
		h->seen[d] = 1;
	if (kind == TH2_EV_FRAME && (type == TH2_HEADERS || type == TH2_PUSH_PROMISE)) {
		h->block_flags[d] = type == TH2_PUSH_PROMISE	     ? TAPIR_H2R_F_PUSH
				    : (ev->flags & TH2_F_END_STREAM) ? TAPIR_H2R_F_END_STREAM
								     : 0;
		h->block_bytes[d] = 0;
		h->cut[d] = 0;
	} else if (kind == TH2_EV_SETTING && ev->value2 == TH2_SET_MAX_FRAME_SIZE) {
		/* What this side may receive: the other side's frames. */
		tapir_h2_set_max_frame(&h->w[d ^ 1], ev->value);
	} else if (kind == TH2_EV_RST) {
		tapir_h2_emit(env, h, d, TAPIR_H2R_RST, ev->stream_id, ev->value, 0, 0, 0, 0);
	} else if (kind == TH2_EV_GOAWAY) {
		tapir_h2_emit(env, h, d, TAPIR_H2R_GOAWAY, 0, ev->value, ev->value2, 0, 0, 0);
	}
	if ((ev->what == TH2_P_DATA && ev->len) || (ev->end && type == TH2_DATA))
		tapir_h2_emit(env, h, d, TAPIR_H2R_DATA, ev->stream_id,
			      ev->what == TH2_P_DATA ? ev->len : 0, 0,
			      ev->end && (ev->flags & TH2_F_END_STREAM) ? TAPIR_H2R_F_END_STREAM
									: 0,
			      0, 0);
	if ((ev->what == TH2_P_BLOCK && ev->len) ||
	    (ev->end && (ev->flags & TH2_F_END_HEADERS) &&
	     (type == TH2_HEADERS || type == TH2_PUSH_PROMISE || type == TH2_CONTINUATION)))
		return tapir_h2_block(env, h, d, ev);
	return 0;
}

#endif
