/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One walk of HTTP/2 bytes cut into segments, as h2_run.bpf.c runs it under BPF_PROG_TEST_RUN
 * and test_h2_run.c natively: the same steps, each logged and hashed, so the two can be
 * compared. The includer defines H2_RUN_READ(dst, n, src), the copy of a window, and may
 * define H2_RUN_STEP to route the step through a function of its own.
 */
#ifndef TAPIR_H2_RUN_H
#define TAPIR_H2_RUN_H

#include "tapir/h2_frame.h"

#ifndef H2_RUN_STEP
#define H2_RUN_STEP(w, win, wlen, left, ev) tapir_h2_step(w, win, wlen, left, ev)
#endif

#define H2_RUN_DATA    (1 << 18) /* a power of two */
#define H2_RUN_MAX_SEG 512
#define H2_RUN_MAX_LOG 256

struct h2_run_step {
	__u32 n;
	__u32 __pad;
	struct tapir_h2_event ev;
};

struct h2_run {
	__u32 nseg;		       /* segments */
	__u32 wide;		       /* windows of TH2_WIN bytes, not only what a step needs */
	__u32 seg_end[H2_RUN_MAX_SEG]; /* where each segment ends, increasing */
	__u32 seg, pos;		       /* the walk: current segment, offset in data */
	__u64 steps, hash, stop;       /* steps taken, their hash, where the walk ended */
	struct tapir_h2_walker w;      /* set up by the test before the run */
	__u32 __pad;
	struct h2_run_step log[H2_RUN_MAX_LOG]; /* the first steps */
	__u8 data[H2_RUN_DATA + TH2_WIN];
};

/* One step of the walk: 1 once it is over. */
TAPIR_INLINE int h2_run_step(struct h2_run *r)
{
	struct tapir_h2_event ev;
	__u8 win[TH2_WIN];
	__u32 s = r->seg, pos = r->pos, end, need, n, i;
	__u32 *x = (__u32 *)&ev;
	__u64 h;

	if (s >= r->nseg || s >= H2_RUN_MAX_SEG) {
		r->stop = pos;
		return 1;
	}
	end = r->seg_end[s & (H2_RUN_MAX_SEG - 1)];
	if (end > H2_RUN_DATA)
		end = H2_RUN_DATA;
	if (pos >= end) {
		r->seg = s + 1;
		return 0;
	}
	need = r->wide ? TH2_WIN : tapir_h2_need(&r->w);
	if (need > end - pos)
		need = end - pos;
	if (need > TH2_WIN)
		need = TH2_WIN;
	__builtin_memset(win, 0, sizeof(win));
	if (need)
		H2_RUN_READ(win, need, &r->data[pos & (H2_RUN_DATA - 1)]);
	n = H2_RUN_STEP(&r->w, win, need, end - pos, &ev);
	/* FNV-1a over the step's length and event, a word at a time. */
	h = (r->hash ^ n) * 0x100000001b3ULL;
	for (i = 0; i < sizeof(ev) / 4; i++)
		h = (h ^ x[i]) * 0x100000001b3ULL;
	r->hash = h;
	if (r->steps < H2_RUN_MAX_LOG) {
		struct h2_run_step *l = &r->log[r->steps & (H2_RUN_MAX_LOG - 1)];

		l->n = n;
		l->ev = ev;
	}
	r->steps++;
	if (ev.kind == TH2_EV_ERROR || !n) {
		r->stop = pos + n;
		r->seg = r->nseg;
		return 1;
	}
	r->pos = pos + n;
	return 0;
}

#endif
