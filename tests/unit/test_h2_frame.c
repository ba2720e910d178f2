// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the HTTP/2 frame walker (include/tapir/h2_frame.h) over libnghttp2's bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2_talk.h"
#include "h2_walk.h"

static struct walk_out whole, cut; /* big: not on the stack */

/* The walker's view of a direction, whole: client's from the preface, limits as advertised. */
static void walk_dir(struct walk_out *o, const struct talk_dir *d, int dir, __u32 max_frame,
		     const size_t *cuts, size_t ncuts, int wide)
{
	walk_init(o, dir ? TH2_PREFACE_LEN : 0, max_frame);
	walk_cuts(o, d->bytes.p, d->bytes.len, cuts, ncuts, wide);
}

/* The header blocks the walk delimited, decoded in order as "name=value\n" and "--\n". */
static void decode_blocks(const struct walk_out *o, const uint8_t *p, struct talk_buf *text)
{
	struct talk_buf block = { 0 };
	nghttp2_hd_inflater *inf;
	uint8_t flags = 0;
	size_t i;

	assert_int_equal(nghttp2_hd_inflate_new(&inf), 0);
	for (i = 0; i < o->n; i++) {
		const struct walk_item *it = &o->item[i];
		const uint8_t *in;
		size_t left;

		if (it->tag == WALK_ITEM_EVENT && it->kind == TH2_EV_FRAME) {
			flags = it->flags;
			if (it->type == TH2_HEADERS || it->type == TH2_PUSH_PROMISE)
				block.len = 0;
		}
		if (it->tag == WALK_ITEM_BYTES && it->what == TH2_P_BLOCK)
			talk_put(&block, p + it->off, it->len);
		if (it->tag != WALK_ITEM_END || !(flags & TH2_F_END_HEADERS) ||
		    (it->type != TH2_HEADERS && it->type != TH2_PUSH_PROMISE &&
		     it->type != TH2_CONTINUATION))
			continue;
		in = block.p;
		left = block.len;
		for (;;) {
			nghttp2_nv nv;
			int fl = 0;
			ssize_t n = nghttp2_hd_inflate_hd2(inf, &nv, &fl, in, left, 1);

			assert_true(n >= 0);
			in += n;
			left -= (size_t)n;
			if (fl & NGHTTP2_HD_INFLATE_EMIT) {
				talk_put(text, nv.name, nv.namelen);
				talk_put(text, "=", 1);
				talk_put(text, nv.value, nv.valuelen);
				talk_put(text, "\n", 1);
			}
			if (fl & NGHTTP2_HD_INFLATE_FINAL)
				break;
		}
		nghttp2_hd_inflate_end_headers(inf);
		talk_put(text, "--\n", 3);
	}
	nghttp2_hd_inflate_del(inf);
	free(block.p);
}

/* The walk agrees with what the receiving nghttp2 made of the same bytes. */
static void check_against_receiver(const struct walk_out *o, const struct talk_dir *d)
{
	struct talk_buf data = { 0 }, text = { 0 };
	size_t i, f = 0;

	assert_int_equal(o->stop, d->bytes.len);
	for (i = 0; i < o->n; i++) {
		const struct walk_item *it = &o->item[i];

		if (it->tag == WALK_ITEM_EVENT && it->kind == TH2_EV_FRAME) {
			assert_true(f < d->nframes);
			assert_int_equal(it->type, d->frames[f].type);
			assert_int_equal(it->flags, d->frames[f].flags);
			assert_int_equal(it->stream_id, d->frames[f].stream_id);
			assert_int_equal(it->length, d->frames[f].length);
			f++;
		}
		assert_int_not_equal(it->kind, TH2_EV_ERROR);
		if (it->tag == WALK_ITEM_BYTES && it->what == TH2_P_DATA)
			talk_put(&data, d->bytes.p + it->off, it->len);
	}
	assert_int_equal(f, d->nframes);
	assert_int_equal(data.len, d->data.len);
	if (data.len)
		assert_memory_equal(data.p, d->data.p, data.len);
	decode_blocks(o, d->bytes.p, &text);
	assert_int_equal(text.len, d->headers.len);
	assert_memory_equal(text.p, d->headers.p, text.len);
	free(data.p);
	free(text.p);
}

static size_t count_events(const struct walk_out *o, uint8_t kind, uint32_t value, uint32_t value2)
{
	size_t i, n = 0;

	for (i = 0; i < o->n; i++)
		if (o->item[i].tag == WALK_ITEM_EVENT && o->item[i].kind == kind &&
		    o->item[i].value == value && o->item[i].value2 == value2)
			n++;
	return n;
}

static void test_conversation(void **state)
{
	struct talk t;
	int pad;

	for (pad = 0; pad < 2; pad++) {
		talk_grpc(&t, pad);
		walk_dir(&whole, &t.dir[0], 0, TH2_MAX_FRAME_DEFAULT, NULL, 0, 0);
		check_against_receiver(&whole, &t.dir[0]);
		assert_int_equal(count_events(&whole, TH2_EV_PREFACE, 0, 0), 1);
		assert_int_equal(count_events(&whole, TH2_EV_RST, NGHTTP2_CANCEL, 0), 1);
		/* The client's SETTINGS let the server send 64 KiB frames: the wiring raises
		 * the other direction's limit from this event. */
		assert_int_equal(
			count_events(&whole, TH2_EV_SETTING, 65536, TH2_SET_MAX_FRAME_SIZE), 1);
		walk_dir(&whole, &t.dir[1], 1, 65536, NULL, 0, 0);
		check_against_receiver(&whole, &t.dir[1]);
		assert_int_equal(count_events(&whole, TH2_EV_RST, NGHTTP2_REFUSED_STREAM, 0), 1);
		assert_int_equal(count_events(&whole, TH2_EV_GOAWAY, 9, NGHTTP2_NO_ERROR), 1);
		assert_int_equal(count_events(&whole, TH2_EV_PREFACE, 0, 0), 0);
		talk_free(&t);
	}
}

/* Without the client's SETTINGS, the server's 65535-byte DATA frame is beyond the limit. */
static void test_max_frame(void **state)
{
	struct talk t;
	size_t i;

	talk_grpc(&t, 0);
	walk_dir(&whole, &t.dir[1], 1, TH2_MAX_FRAME_DEFAULT, NULL, 0, 0);
	assert_true(whole.n > 0);
	i = whole.n - 1;
	assert_int_equal(whole.item[i].kind, TH2_EV_ERROR);
	assert_int_equal(whole.item[i].value, TH2_ERR_LENGTH);
	assert_int_equal(whole.w.state, TH2_S_ERROR);
	/* Stopped right after that frame's header. */
	assert_int_equal(t.dir[1].bytes.p[whole.stop - 9 + 3], TH2_DATA);
	assert_true(whole.stop < t.dir[1].bytes.len);
	/* The ceiling checks nothing. */
	walk_dir(&whole, &t.dir[1], 1, TH2_MAX_FRAME_CEIL, NULL, 0, 0);
	assert_int_equal(whole.stop, t.dir[1].bytes.len);
	talk_free(&t);
}

/* One cut anywhere, in both window modes; every byte a segment; the sender's own writes. */
static void test_every_split(void **state)
{
	static size_t cuts[200000];
	struct talk t;
	int pad, dir, wide;
	size_t c, n, len;

	for (pad = 0; pad < 2; pad++) {
		talk_grpc(&t, pad);
		for (dir = 0; dir < 2; dir++) {
			const struct talk_dir *d = &t.dir[dir];

			len = d->bytes.len;
			walk_dir(&whole, d, dir, 65536, NULL, 0, 0);
			for (wide = 0; wide < 2; wide++)
				for (c = 1; c < len; c++) {
					walk_dir(&cut, d, dir, 65536, &c, 1, wide);
					if (!walk_same(&whole, &cut))
						fail_msg("pad %d dir %d cut at %zu differs", pad,
							 dir, c);
				}
			assert_true(len <= sizeof(cuts) / sizeof(cuts[0]));
			for (c = 1; c < len; c++)
				cuts[c - 1] = c;
			walk_dir(&cut, d, dir, 65536, cuts, len - 1, 0);
			assert_true(walk_same(&whole, &cut));
			assert_true(cut.steps >= len);
			n = d->nchunks - 1; /* the last write ends the buffer */
			walk_dir(&cut, d, dir, 65536, d->chunk_end, n, 1);
			assert_true(walk_same(&whole, &cut));
		}
		talk_free(&t);
	}
}

/* Several cuts at once, where a small PRNG says. */
static void test_random_splits(void **state)
{
	static size_t cuts[16];
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	struct talk t;
	int pad, dir, r;
	size_t i, k;

	for (pad = 0; pad < 2; pad++) {
		talk_grpc(&t, pad);
		for (dir = 0; dir < 2; dir++) {
			const struct talk_dir *d = &t.dir[dir];

			walk_dir(&whole, d, dir, 65536, NULL, 0, 0);
			for (r = 0; r < 2000; r++) {
				size_t n = 2 + r % 14, at = 0;

				for (i = 0, k = 0; i < n; i++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					/* Mostly small gaps: many cuts inside headers. */
					at += 1 + (r & 1 ? x % 40 : x % (d->bytes.len / n));
					if (at >= d->bytes.len)
						break;
					cuts[k++] = at;
				}
				walk_dir(&cut, d, dir, 65536, cuts, k, r & 2);
				assert_true(walk_same(&whole, &cut));
			}
		}
		talk_free(&t);
	}
}

static void test_preface(void **state)
{
	static const char pri[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t bad[TH2_PREFACE_LEN];
	size_t c, i;

	/* An HTTP/1.1 request is refused at its first byte. */
	walk_init(&whole, 0, 0);
	walk_cuts(&whole, (const uint8_t *)get, sizeof(get) - 1, NULL, 0, 0);
	assert_int_equal(whole.stop, 1);
	assert_int_equal(whole.w.error, TH2_ERR_PREFACE);
	/* A slip anywhere in the preface is found at that byte, whatever the cuts. */
	for (i = 0; i < TH2_PREFACE_LEN; i++) {
		memcpy(bad, pri, TH2_PREFACE_LEN);
		bad[i] ^= 0x20;
		for (c = 0; c < TH2_PREFACE_LEN; c++) {
			walk_init(&cut, 0, 0);
			walk_cuts(&cut, bad, TH2_PREFACE_LEN, &c, c ? 1 : 0, c & 1);
			assert_int_equal(cut.stop, i + 1);
			assert_int_equal(cut.n, 1);
			assert_int_equal(cut.item[0].kind, TH2_EV_ERROR);
			assert_int_equal(cut.item[0].value, TH2_ERR_PREFACE);
		}
	}
	/* The rest of a preface that someone else began to read (an HTTP/1.x parser that saw
	 * "PRI * HTTP/2.0\r\n\r\n" as a request). */
	walk_init(&whole, 18, 0);
	walk_cuts(&whole, (const uint8_t *)pri + 18, 6, NULL, 0, 0);
	assert_int_equal(whole.n, 1);
	assert_int_equal(whole.item[0].kind, TH2_EV_PREFACE);
	assert_int_equal(whole.w.state, TH2_S_HEADER);
}

/* Offset of the @nth frame header of @type in a direction's bytes. */
static size_t frame_at(const struct talk_dir *d, int dir, uint8_t type, int nth)
{
	size_t off = dir ? 0 : TH2_PREFACE_LEN;

	while (off + 9 <= d->bytes.len) {
		const uint8_t *h = d->bytes.p + off;

		if (h[3] == type && nth-- == 0)
			return off;
		off += 9 + (((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2]);
	}
	fail_msg("no such frame");
	return 0;
}

/* Walk a copy of a direction with one byte changed: the error and where it stops. */
static void expect_error(const struct talk_dir *d, int dir, size_t at, uint8_t value, int why,
			 size_t stop)
{
	uint8_t *p = malloc(d->bytes.len);
	size_t c;

	assert_non_null(p);
	memcpy(p, d->bytes.p, d->bytes.len);
	p[at] = value;
	walk_init(&whole, dir ? TH2_PREFACE_LEN : 0, 65536);
	walk_cuts(&whole, p, d->bytes.len, NULL, 0, 0);
	assert_int_equal(whole.w.state, TH2_S_ERROR);
	assert_int_equal(whole.w.error, why);
	assert_int_equal(whole.stop, stop);
	for (c = stop > 12 ? stop - 12 : 1; c < stop + 3 && c < d->bytes.len; c++) {
		walk_init(&cut, dir ? TH2_PREFACE_LEN : 0, 65536);
		walk_cuts(&cut, p, d->bytes.len, &c, 1, c & 1);
		assert_true(walk_same(&whole, &cut));
	}
	free(p);
}

static void test_lost_sync(void **state)
{
	struct talk t;
	size_t h;

	talk_grpc(&t, 1);
	/* A HEADERS frame on stream 0. */
	h = frame_at(&t.dir[0], 0, TH2_HEADERS, 0);
	expect_error(&t.dir[0], 0, h + 8, 0, TH2_ERR_STREAM, h + 9);
	/* A SETTINGS frame on stream 1. */
	h = frame_at(&t.dir[0], 0, TH2_SETTINGS, 0);
	expect_error(&t.dir[0], 0, h + 8, 1, TH2_ERR_STREAM, h + 9);
	/* A CONTINUATION that continues nothing. */
	h = frame_at(&t.dir[0], 0, TH2_HEADERS, 0);
	expect_error(&t.dir[0], 0, h + 3, TH2_CONTINUATION, TH2_ERR_CONTINUATION, h + 9);
	/* A header block interrupted: the 40 KB block's first CONTINUATION turned into DATA. */
	h = frame_at(&t.dir[0], 0, TH2_CONTINUATION, 0);
	expect_error(&t.dir[0], 0, h + 3, TH2_DATA, TH2_ERR_CONTINUATION, h + 9);
	/* A PING of 7 bytes (its length's low byte changed). */
	h = frame_at(&t.dir[0], 0, TH2_PING, 0);
	expect_error(&t.dir[0], 0, h + 2, 7, TH2_ERR_SIZE, h + 9);
	/* Padding longer than the padded HEADERS frame. */
	h = frame_at(&t.dir[0], 0, TH2_HEADERS, 0);
	assert_true(t.dir[0].bytes.p[h + 4] & TH2_F_PADDED);
	expect_error(&t.dir[0], 0, h + 9, 255, TH2_ERR_PADDING, h + 10);
	/* An RST_STREAM of 5 bytes... would shift everything: its length's check alone. */
	h = frame_at(&t.dir[1], 1, TH2_RST_STREAM, 0);
	expect_error(&t.dir[1], 1, h + 2, 5, TH2_ERR_SIZE, h + 9);
	talk_free(&t);
}

/* What a caller reads: nothing while payload is skipped, at most 24 bytes otherwise. */
static void test_need(void **state)
{
	struct tapir_h2_walker w;
	struct tapir_h2_event ev;
	static const uint8_t data_frame[] = { 0, 0x40, 0, TH2_DATA, 0, 0, 0, 0, 1 };

	tapir_h2_init(&w, 0, 0);
	assert_int_equal(tapir_h2_need(&w), 8); /* the preface goes a word at a time */
	tapir_h2_init(&w, 20, 0);
	assert_int_equal(tapir_h2_need(&w), 4);
	tapir_h2_init(&w, TH2_PREFACE_LEN, 0);
	assert_int_equal(tapir_h2_need(&w), TH2_HEADER_LEN);
	/* A 16 KiB DATA frame's header, then its payload in one step of a 1 MiB segment. */
	assert_int_equal(tapir_h2_step(&w, data_frame, 5, 5, &ev), 5);
	assert_int_equal(ev.kind, TH2_EV_NONE);
	assert_int_equal(tapir_h2_need(&w), 4);
	assert_int_equal(tapir_h2_step(&w, data_frame + 5, 4, 4, &ev), 4);
	assert_int_equal(ev.kind, TH2_EV_FRAME);
	assert_int_equal(ev.length, 16384);
	assert_int_equal(ev.stream_id, 1);
	assert_int_equal(tapir_h2_need(&w), 0);
	assert_int_equal(tapir_h2_step(&w, NULL, 0, 1 << 20, &ev), 16384);
	assert_int_equal(ev.what, TH2_P_DATA);
	assert_int_equal(ev.off, 0);
	assert_int_equal(ev.len, 16384);
	assert_true(ev.end);
	assert_int_equal(tapir_h2_need(&w), TH2_HEADER_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation), cmocka_unit_test(test_max_frame),
		cmocka_unit_test(test_every_split),  cmocka_unit_test(test_random_splits),
		cmocka_unit_test(test_preface),	     cmocka_unit_test(test_lost_sync),
		cmocka_unit_test(test_need),
	};

	_Static_assert(sizeof(struct tapir_h2_walker) <= 48, "walker state fits a map value");
	_Static_assert(sizeof(struct tapir_h2_event) == 32, "event layout");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
