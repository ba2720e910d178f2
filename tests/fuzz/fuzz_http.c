// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the HTTP/1.x parser the BPF programs run (include/tapir/http_parse.h), compiled
 * for user space. Differential: every input is parsed byte by byte (the reference) and again
 * the way the walk takes it (whole heads, line skips, 16-byte shortcuts, bulk bodies), cut into
 * segments at places the input chooses. Both must end in the same parser state after the same
 * events at the same offsets; any difference, and any sanitizer report, is a finding.
 *
 * Input: byte 0 picks the message kind and which answers are to HEAD requests; byte 1 the
 * segment length (1 to 64); the rest is the traffic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "tapir/http_parse.h"

#define MAX_EVENTS 4096

struct ev {
	int type;
	size_t off;
	__u16 status;
	__u8 flags, state;
};

struct drv {
	struct tapir_http_parser p;
	__u8 kind, heads; /* bit i: the i-th answer (mod 8) is to a HEAD request */
	int shortcuts;
	int stopped;
	size_t off, done, nev;
	struct ev ev[MAX_EVENTS];
};

static void init(struct drv *d, __u8 kind, __u8 heads, int shortcuts)
{
	memset(d, 0, offsetof(struct drv, ev));
	d->kind = kind;
	d->heads = heads;
	d->shortcuts = shortcuts;
	tapir_http_init(&d->p, kind);
}

static void event(struct drv *d, int type)
{
	if (type == TP_EV_NONE)
		return;
	if (d->nev < MAX_EVENTS)
		d->ev[d->nev++] = (struct ev){ type, d->off, d->p.status, d->p.flags, d->p.state };
	switch (type) {
	case TP_EV_START:
	case TP_EV_INTERIM:
		/* What the connection driver does for the answer to a HEAD request. */
		if (d->kind == TP_KIND_RESPONSE && (d->heads >> (d->done & 7)) & 1)
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

/* The walk's line skip, within the 256 bytes a window would show. */
static __u32 skip(struct drv *d, const __u8 *at, size_t left)
{
	return tapir_http_skip_window(&d->p, at, left < TAPIR_WIN ? left : TAPIR_WIN, 0);
}

/* A whole head as the walk takes it: from a window of TAPIR_WIN bytes, whose bytes past the
 * segment are whatever a window held before (here: the segment's own, over again). */
static __u32 head(struct drv *d, struct tapir_http_parser *work, const __u8 *at, size_t left,
		  int *ev)
{
	__u8 win[TAPIR_WIN];
	size_t n = left < TAPIR_WIN ? left : TAPIR_WIN, i;

	for (i = 0; i < TAPIR_WIN; i++)
		win[i] = at[i % n];
	return tapir_http_head(&d->p, work, win, n, 0, ev);
}

static void feed(struct drv *d, const __u8 *buf, size_t len)
{
	struct tapir_http_parser work;
	size_t off = 0;
	__u64 max, n, x0, x1;

	while (off < len && !d->stopped) {
		size_t left = len - off;
		int ev = TP_EV_NONE;

		max = tapir_http_bulk_max(&d->p);
		if (max) {
			n = left < max ? left : max;
			if (d->shortcuts) {
				ev = tapir_http_bulk(&d->p, n);
			} else {
				/* The reference takes body bytes one by one too. */
				n = 1;
				ev = tapir_http_feed(&d->p, buf[off]);
			}
		} else if (d->shortcuts && (ev = tapir_http_first(&d->p, buf[off])) != TP_EV_NONE) {
			n = 1; /* a message's usual first byte, as the walk takes it */
		} else if (d->shortcuts && d->p.state == TP_START && d->p.pos == 1 &&
			   (n = head(d, &work, buf + off, left, &ev))) {
			/* a whole head; ev: what its last byte raised */
		} else if (d->shortcuts && tapir_http_skip_state(&d->p) &&
			   (n = skip(d, buf + off, left))) {
		} else if (d->shortcuts && left >= 16 && tapir_http_fast_state(d->p.state) &&
			   !tapir_http_skip_state(&d->p) &&
			   (memcpy(&x0, buf + off, 8), memcpy(&x1, buf + off + 8, 8),
			    n = tapir_http_fast(&d->p, x0, x1))) {
		} else {
			n = 1;
			ev = tapir_http_feed(&d->p, buf[off]);
		}
		if (n == 0 || n > left)
			abort(); /* no progress, or past the segment */
		off += n;
		d->off += n;
		event(d, ev);
	}
}

static void same(const struct drv *a, const struct drv *b)
{
	if (a->done != b->done || a->nev != b->nev || a->stopped != b->stopped ||
	    memcmp(&a->p, &b->p, sizeof(a->p)) || memcmp(a->ev, b->ev, a->nev * sizeof(a->ev[0])))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct drv ref, cut;
	size_t seg, from;

	if (size < 2)
		return 0;
	init(&ref, data[0] & 1 ? TP_KIND_RESPONSE : TP_KIND_REQUEST, data[0] >> 1, 0);
	init(&cut, ref.kind, ref.heads, 1);
	seg = 1 + data[1] % 64;
	data += 2;
	size -= 2;
	feed(&ref, data, size);
	for (from = 0; from < size && !cut.stopped; from += seg)
		feed(&cut, data + from, size - from < seg ? size - from : seg);
	/* The reference stops where the walk would: compare up to there. */
	if (ref.p.state > TP_ERROR || ref.off > size)
		abort();
	same(&ref, &cut);
	return 0;
}
