// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: HTTP/2 as tapir will see it. Three checks on every input:
 *
 *  - the frame walker (include/tapir/h2_frame.h) walks the bytes whole and again cut into
 *    segments the input chooses, with windows of what each step needs and of TH2_WIN bytes:
 *    the same events, payload ranges, frame ends, stopping point and walker state, or abort;
 *  - the bytes as one HPACK header block: when a fresh nghttp2 inflater decodes it, a fresh
 *    tapir_h2_conn given it as a request must decode it in full, to the same :method and
 *    :path (the scan before decoding must never call a good block bad);
 *  - the bytes as a script of calls into a tapir_h2_conn (header block pieces, DATA, RST,
 *    GOAWAY, lost blocks, the end), under ASan and UBSan: no crash, no leak, every stream
 *    reported at most once, and none left after the end.
 *
 * Input: byte 0 chooses (bit 0: a server's direction, no preface; bit 1: the 16 KiB frame
 * limit, else none); byte 1 seeds the segment lengths; the rest is the traffic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/types.h>
#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "h2_walk.h"

static struct walk_out whole, cut;

static void check_walk(const uint8_t *p, size_t len, uint8_t mode, uint8_t seed)
{
	static size_t cuts[4096];
	__u32 preface = mode & 1 ? TH2_PREFACE_LEN : 0;
	__u32 max = mode & 2 ? TH2_MAX_FRAME_DEFAULT : TH2_MAX_FRAME_CEIL;
	uint32_t x = 0x9e3779b9u ^ seed;
	size_t n = 0, at = 0;

	walk_init(&whole, preface, max);
	walk_cuts(&whole, p, len, NULL, 0, 0);
	while (n < sizeof(cuts) / sizeof(cuts[0])) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		at += 1 + x % (seed & 1 ? 7 : 40);
		if (at >= len)
			break;
		cuts[n++] = at;
	}
	walk_init(&cut, preface, max);
	walk_cuts(&cut, p, len, cuts, n, seed & 2);
	if (!walk_same(&whole, &cut))
		abort();
	if (whole.stop > len || (whole.w.state != TH2_S_ERROR && whole.stop != len))
		abort();
}

/* --- HPACK: nghttp2 alone, then through tapir ---------------------------------------------- */

struct done {
	struct tapir_h2_result r;
	size_t n;
	uint32_t seen[TAPIR_H2_MAX_STREAMS * 4]; /* ids reported, to catch a second report */
	size_t nseen;
};

static void on_done(void *ctx, const struct tapir_h2_result *r)
{
	struct done *d = ctx;
	size_t i;

	if (!memchr(r->method, 0, sizeof(r->method)) || !memchr(r->path, 0, sizeof(r->path)) ||
	    !memchr(r->content_type, 0, sizeof(r->content_type)) ||
	    r->outcome > TAPIR_H2_OUT_CLOSED)
		abort();
	if (r->grpc_status != TAPIR_H2_GRPC_NONE &&
	    (r->grpc_status < 0 || r->grpc_status > TAPIR_H2_GRPC_INVALID))
		abort();
	if (!tapir_h2_grpc_status_name(r->grpc_status))
		abort();
	for (i = 0; i < d->nseen; i++)
		if (d->seen[i] == r->stream_id)
			abort();
	if (d->nseen < sizeof(d->seen) / sizeof(d->seen[0]))
		d->seen[d->nseen++] = r->stream_id;
	d->r = *r;
	d->n++;
}

static void first_value(char *dst, size_t cap, int *have, const nghttp2_nv *nv, const char *name)
{
	size_t n = strlen(name);

	if (*have || nv->namelen != n || strncasecmp((const char *)nv->name, name, n))
		return;
	n = nv->valuelen < cap - 1 ? nv->valuelen : cap - 1;
	memcpy(dst, nv->value, n);
	dst[n] = 0;
	*have = 1;
}

static void check_hpack(const uint8_t *p, size_t len)
{
	char method[TAPIR_H2_METHOD_MAX] = "", path[TAPIR_H2_PATH_MAX] = "";
	int has_method = 0, has_path = 0, empty_name = 0;
	nghttp2_hd_inflater *inf;
	struct tapir_h2_conn *c;
	const uint8_t *in = p;
	size_t left = len;
	static struct done d;

	if (len > TAPIR_H2_BLOCK_MAX || nghttp2_hd_inflate_new(&inf))
		return;
	if (nghttp2_hd_inflate_change_table_size(inf, TAPIR_H2_TABLE_MAX))
		abort();
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t n = nghttp2_hd_inflate_hd2(inf, &nv, &fl, in, left, 1);

		if (n < 0) {
			nghttp2_hd_inflate_del(inf);
			return; /* nghttp2 refuses it: nothing to compare */
		}
		in += n;
		left -= (size_t)n;
		if (fl & NGHTTP2_HD_INFLATE_EMIT) {
			first_value(method, sizeof(method), &has_method, &nv, ":method");
			first_value(path, sizeof(path), &has_path, &nv, ":path");
			empty_name |= !nv.namelen;
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL)
			break;
	}
	nghttp2_hd_inflate_del(inf);

	memset(&d, 0, sizeof(d));
	c = tapir_h2_conn__new(on_done, &d);
	if (!c)
		abort();
	if (tapir_h2_conn__headers(c, TAPIR_H2_REQUEST, 1,
				   TAPIR_H2_END_HEADERS | TAPIR_H2_END_STREAM, p, len, 1) ||
	    tapir_h2_conn__close(c, 2) || d.n != 1)
		abort();
	/* An empty name is a real field to nghttp2 and one of tapir's unknowns. */
	if (!empty_name && (d.r.flags & TAPIR_H2_R_UNDECODED))
		abort();
	if (strcmp(d.r.method, method) || strcmp(d.r.path, path))
		abort();
	tapir_h2_conn__free(c);
}

/* --- a script of calls --------------------------------------------------------------------- */

static void check_script(const uint8_t *p, size_t len)
{
	static struct done d;
	struct tapir_h2_conn *c;
	size_t i = 0;

	memset(&d, 0, sizeof(d));
	c = tapir_h2_conn__new(on_done, &d);
	if (!c)
		abort();
	while (i + 3 <= len) {
		uint8_t op = p[i], dir = op >> 7, n = p[i + 2];
		uint32_t id = p[i + 1] % 64 * 2 + 1; /* client streams, reused often */

		i += 3;
		switch (op & 7) {
		case 0:
		case 1:
		case 2:
			if (n > len - i)
				n = (uint8_t)(len - i);
			tapir_h2_conn__headers(c, dir, id, (op >> 3) & 7, p + i, n, i);
			i += n;
			break;
		case 3: tapir_h2_conn__data(c, dir, id, n, op & 8, i); break;
		case 4: tapir_h2_conn__rst(c, dir, id, n, i); break;
		case 5: tapir_h2_conn__goaway(c, dir, id, n, i); break;
		case 6: tapir_h2_conn__lost(c, dir); break;
		case 7:
			if (op & 0x40)
				tapir_h2_conn__close(c, i);
			break;
		}
		if (tapir_h2_conn__open_streams(c) > TAPIR_H2_MAX_STREAMS)
			abort();
	}
	tapir_h2_conn__close(c, len);
	if (tapir_h2_conn__open_streams(c))
		abort();
	tapir_h2_conn__free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	check_walk(data + 2, size - 2, data[0], data[1]);
	check_hpack(data + 2, size - 2);
	check_script(data + 2, size - 2);
	return 0;
}
