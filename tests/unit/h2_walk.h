/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The HTTP/2 frame walker (include/tapir/h2_frame.h) driven over a buffer cut into segments,
 * as a BPF caller drives it, with what it reports in a form that does not depend on the cuts:
 * the events in order, each payload as one range, each frame's end. Shared by test_h2_frame,
 * test_h2 and fuzz_h2.
 */
#ifndef TAPIR_TEST_H2_WALK_H
#define TAPIR_TEST_H2_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/types.h>

#include "tapir/h2_frame.h"

#define WALK_MAX_ITEMS 4096

#define WALK_ITEM_EVENT 1 /* a step's event (kind != TH2_EV_NONE) */
#define WALK_ITEM_BYTES 2 /* payload: [off, off + len) of the whole buffer, of kind what */
#define WALK_ITEM_END	3 /* the current frame's payload is complete */

struct walk_item {
	uint8_t tag, kind, type, flags, what;
	uint32_t stream_id, length, value, value2;
	uint64_t off, len;
};

struct walk_out {
	struct walk_item item[WALK_MAX_ITEMS];
	size_t n;
	size_t steps;
	uint64_t stop; /* bytes consumed in all: where an error stopped the walk, or the end */
	struct tapir_h2_walker w;
};

static inline void walk_push(struct walk_out *o, const struct walk_item *it)
{
	struct walk_item *last = o->n ? &o->item[o->n - 1] : NULL;

	/* Pieces of one payload cut by segment ends read as one range. */
	if (it->tag == WALK_ITEM_BYTES && last && last->tag == WALK_ITEM_BYTES &&
	    last->what == it->what && last->off + last->len == it->off) {
		last->len += it->len;
		return;
	}
	if (o->n < WALK_MAX_ITEMS)
		o->item[o->n++] = *it;
}

/* What the caller does with one step's event, at @at (the step's first byte). */
static inline void walk_record(struct walk_out *o, const struct tapir_h2_event *ev, uint64_t at)
{
	struct walk_item it = { .type = ev->type,
				.flags = ev->flags,
				.stream_id = ev->stream_id,
				.length = ev->length };

	if (ev->kind != TH2_EV_NONE) {
		it.tag = WALK_ITEM_EVENT;
		it.kind = ev->kind;
		it.value = ev->value;
		it.value2 = ev->value2;
		walk_push(o, &it);
	}
	if (ev->len) {
		it.tag = WALK_ITEM_BYTES;
		it.kind = 0;
		it.value = it.value2 = 0;
		it.what = ev->what;
		it.off = at + ev->off;
		it.len = ev->len;
		walk_push(o, &it);
	}
	if (ev->end) {
		memset(&it, 0, sizeof(it));
		it.tag = WALK_ITEM_END;
		it.type = ev->type;
		it.stream_id = ev->stream_id;
		walk_push(o, &it);
	}
}

/*
 * Walk @len bytes cut before each of @cuts (increasing, inside the buffer) with a walker that
 * @o->w was set up as. @wide: the window holds up to TH2_WIN bytes, not only what the step
 * asks for (both must give the same walk).
 */
static inline void walk_cuts(struct walk_out *o, const uint8_t *p, size_t len, const size_t *cuts,
			     size_t ncuts, int wide)
{
	size_t seg, start = 0, end;

	o->n = 0;
	o->steps = 0;
	for (seg = 0; seg <= ncuts; seg++) {
		size_t pos;

		end = seg < ncuts ? cuts[seg] : len;
		for (pos = start; pos < end;) {
			struct tapir_h2_event ev;
			uint8_t win[TH2_WIN];
			size_t left = end - pos, w = wide ? TH2_WIN : tapir_h2_need(&o->w);
			__u32 n;

			if (w > left)
				w = left;
			/* A window of its own, as the BPF caller copies one: no read beyond it. */
			memset(win, 0xa5, sizeof(win));
			memcpy(win, p + pos, w);
			n = tapir_h2_step(&o->w, win, (__u32)w, left, &ev);
			o->steps++;
			walk_record(o, &ev, pos);
			if (ev.kind == TH2_EV_ERROR || !n) {
				o->stop = pos + n;
				return;
			}
			pos += n;
		}
		start = end;
	}
	o->stop = len;
}

static inline void walk_init(struct walk_out *o, __u32 preface_seen, __u32 max_frame)
{
	tapir_h2_init(&o->w, preface_seen, max_frame);
}

/* Two walks said the same, and left their walkers alike. */
static inline int walk_same(const struct walk_out *a, const struct walk_out *b)
{
	size_t i;

	if (a->n != b->n || a->stop != b->stop || memcmp(&a->w, &b->w, sizeof(a->w)))
		return 0;
	for (i = 0; i < a->n; i++) {
		const struct walk_item *x = &a->item[i], *y = &b->item[i];

		if (x->tag != y->tag || x->kind != y->kind || x->type != y->type ||
		    x->flags != y->flags || x->what != y->what || x->stream_id != y->stream_id ||
		    x->length != y->length || x->value != y->value || x->value2 != y->value2 ||
		    x->off != y->off || x->len != y->len)
			return 0;
	}
	return 1;
}

#endif
