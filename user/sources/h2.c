// SPDX-License-Identifier: GPL-2.0
/* One HTTP/2 connection seen from outside: HPACK by libnghttp2, and its streams' requests. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"

/*
 * Decoding a header block, and what happens when tapir did not see the connection begin.
 *
 * HPACK is stateful: a field can be an index into a dynamic table that earlier blocks of the
 * same direction filled. Each direction has its own nghttp2 inflater, fed every block in
 * order. Entries are indexed newest first, so an inflater that missed the start of the
 * connection still holds the newest entries at the right indices (each block seen since adds
 * its entries as the peer's encoder did); only indices beyond what it holds are unknown.
 *
 * Before decoding, a block's representations are scanned (RFC 7541 6: prefix bits, integers,
 * string lengths; never a name or value, which only nghttp2 decodes) and every index checked
 * against what the inflater can know: its entries plus those the block adds before the
 * reference. A block that refers to nothing unknown is decoded as it is. Otherwise it is
 * rewritten first, and counted as undecoded:
 *   - an indexed field beyond the known entries is left out;
 *   - a literal field whose name is such an index is left out; if it was to be added to the
 *     table, an empty entry ("" = "") takes its place, so that the indices of everything after
 *     stay right (an empty entry is 32 bytes, no more than the real one, so it is evicted no
 *     sooner than the peer evicted the real one);
 *   - a table size update beyond TAPIR_H2_TABLE_MAX is lowered to it.
 * Every field of the static table (":status: 200" is index 8, ":method: POST" 3), every
 * literal with a static name (":path", ":status: 503", "content-type", whatever the value,
 * Huffman-coded or not), every literal name ("grpc-status" is none of the static table's) and
 * every entry known still comes through; what was left out does not, nor does a later
 * reference to an empty entry, by its name or whole, which makes that block undecoded too (no
 * real field has an empty name). A block that is malformed or cut short gives what comes
 * before the damage, then its direction's inflater starts over (whatever the rest added is
 * unknown), as it does when nghttp2 refuses a block.
 */

/* One representation of a block, its shape only. */
#define REP_INDEXED 1 /* 1xxxxxxx: a field from the tables */
#define REP_INC	    2 /* 01xxxxxx: a literal field, added to the table */
#define REP_LITERAL 3 /* 0000xxxx, 0001xxxx: a literal field, not added */
#define REP_SIZE    4 /* 001xxxxx: a dynamic table size update */

#define STATIC_ENTRIES 61

struct rep {
	size_t at, len;
	uint8_t kind;
	uint32_t index; /* the field's, or its name's (0: a literal name); a size update's size */
};

/* An HPACK integer with a @prefix-bit prefix at *pos (RFC 7541 5.1), at most 2^32 - 1. */
static int hpack_int(const uint8_t *p, size_t len, size_t *pos, unsigned prefix, uint32_t *out)
{
	uint32_t max = (1u << prefix) - 1;
	uint64_t v;
	unsigned shift = 0;
	uint8_t b;

	if (*pos >= len)
		return -1;
	v = p[(*pos)++] & max;
	if (v < max) {
		*out = (uint32_t)v;
		return 0;
	}
	do {
		if (*pos >= len || shift > 28)
			return -1;
		b = p[(*pos)++];
		v += (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A string literal at *pos (RFC 7541 5.2): skipped, by its length. */
static int hpack_skip_string(const uint8_t *p, size_t len, size_t *pos)
{
	uint32_t n;

	if (hpack_int(p, len, pos, 7, &n) || n > len - *pos)
		return -1;
	*pos += n;
	return 0;
}

/* The representation at *pos; -1 when malformed or cut short. */
static int hpack_next(const uint8_t *p, size_t len, size_t *pos, struct rep *r)
{
	uint8_t b = p[*pos];
	unsigned prefix;

	r->at = *pos;
	if (b & 0x80) {
		r->kind = REP_INDEXED;
		if (hpack_int(p, len, pos, 7, &r->index) || r->index == 0)
			return -1;
	} else if (b & 0x20 && !(b & 0x40)) {
		r->kind = REP_SIZE;
		if (hpack_int(p, len, pos, 5, &r->index))
			return -1;
	} else {
		r->kind = b & 0x40 ? REP_INC : REP_LITERAL;
		prefix = b & 0x40 ? 6 : 4;
		if (hpack_int(p, len, pos, prefix, &r->index))
			return -1;
		if (r->index == 0 && hpack_skip_string(p, len, pos))
			return -1;
		if (hpack_skip_string(p, len, pos))
			return -1;
	}
	r->len = *pos - r->at;
	return 0;
}

/* An HPACK integer written with a @prefix-bit prefix after @first's bits. */
static size_t hpack_put_int(uint8_t *out, uint8_t first, unsigned prefix, uint32_t v)
{
	uint32_t max = (1u << prefix) - 1;
	size_t n = 0;

	if (v < max) {
		out[n++] = first | (uint8_t)v;
		return n;
	}
	out[n++] = first | (uint8_t)max;
	v -= max;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v & 0x7f) | 0x80;
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

#define SCAN_SAFE      0 /* nothing to change */
#define SCAN_REWRITTEN 1 /* something left out, replaced or lowered */
#define SCAN_DAMAGED   2 /* malformed or cut short: @out holds what came before */

/*
 * The block as an inflater holding @known dynamic entries can decode it (see the top of the
 * file), into @out (room for 2 * @len bytes).
 */
static int hpack_rewrite(const uint8_t *p, size_t len, uint32_t known, uint8_t *out,
			 size_t *out_len)
{
	static const uint8_t empty_entry[] = { 0x40, 0x00, 0x00 };
	int ret = SCAN_SAFE, fields = 0;
	size_t pos = 0, o = 0;
	struct rep r;

	while (pos < len) {
		if (hpack_next(p, len, &pos, &r)) {
			ret = SCAN_DAMAGED;
			break;
		}
		switch (r.kind) {
		case REP_SIZE:
			if (fields) { /* only at the start of a block: nghttp2 refuses it */
				ret = SCAN_DAMAGED;
				goto out;
			}
			if (r.index == 0)
				known = 0;
			if (r.index > TAPIR_H2_TABLE_MAX) {
				o += hpack_put_int(out + o, 0x20, 5, TAPIR_H2_TABLE_MAX);
				ret = SCAN_REWRITTEN;
				continue;
			}
			break;
		case REP_INDEXED:
			fields = 1;
			if (r.index > STATIC_ENTRIES + known) {
				ret = SCAN_REWRITTEN;
				continue;
			}
			break;
		case REP_INC:
			fields = 1;
			if (known < UINT32_MAX)
				known++;
			if (r.index > STATIC_ENTRIES + known - 1) {
				memcpy(out + o, empty_entry, sizeof(empty_entry));
				o += sizeof(empty_entry);
				ret = SCAN_REWRITTEN;
				continue;
			}
			break;
		case REP_LITERAL:
			fields = 1;
			if (r.index > STATIC_ENTRIES + known) {
				ret = SCAN_REWRITTEN;
				continue;
			}
			break;
		}
		memcpy(out + o, p + r.at, r.len);
		o += r.len;
	}
out:
	*out_len = o;
	return ret;
}

/* The fields of one block that tapir keeps. */
struct fields {
	uint16_t status;
	int16_t grpc_status;
	uint8_t has_method, has_path, has_ctype;
	uint8_t unknown; /* a field referred to an empty entry that stands for an unknown one */
	char method[TAPIR_H2_METHOD_MAX];
	char path[TAPIR_H2_PATH_MAX];
	char ctype[TAPIR_H2_CTYPE_MAX];
};

static void copy_bounded(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static int name_is(const nghttp2_nv *nv, const char *name)
{
	size_t n = strlen(name);

	return nv->namelen == n && !strncasecmp((const char *)nv->name, name, n);
}

static void take_field(struct fields *f, const nghttp2_nv *nv)
{
	if (!nv->namelen) { /* one of our empty entries: a field we cannot know */
		f->unknown = 1;
		return;
	}
	if (name_is(nv, ":status")) {
		f->status = 0;
		if (nv->valuelen == 3 && nv->value[0] >= '1' && nv->value[0] <= '9' &&
		    nv->value[1] >= '0' && nv->value[1] <= '9' && nv->value[2] >= '0' &&
		    nv->value[2] <= '9')
			f->status = (uint16_t)((nv->value[0] - '0') * 100 +
					       (nv->value[1] - '0') * 10 + (nv->value[2] - '0'));
	} else if (name_is(nv, ":method") && !f->has_method) {
		copy_bounded(f->method, sizeof(f->method), nv->value, nv->valuelen);
		f->has_method = 1;
	} else if (name_is(nv, ":path") && !f->has_path) {
		copy_bounded(f->path, sizeof(f->path), nv->value, nv->valuelen);
		f->has_path = 1;
	} else if (name_is(nv, "content-type") && !f->has_ctype) {
		copy_bounded(f->ctype, sizeof(f->ctype), nv->value, nv->valuelen);
		f->has_ctype = 1;
	} else if (name_is(nv, "grpc-status")) {
		f->grpc_status =
			(int16_t)tapir_h2_grpc_status_parse((const char *)nv->value, nv->valuelen);
	}
}

struct h2_dir {
	nghttp2_hd_inflater *inf; /* NULL until needed, and after a reset */
	uint8_t *blk;		  /* the pending header block */
	size_t len, cap;
	uint32_t blk_stream; /* 0: none pending */
	unsigned blk_flags;
	uint8_t blk_cut; /* longer than TAPIR_H2_BLOCK_MAX: the rest was not kept */
	uint64_t blk_start_ns;
};

struct h2_stream {
	struct tapir_h2_result r;
	uint8_t final; /* the final response's headers were seen: what follows is trailers */
};

#define SEEN_IDS 1024 /* the client's latest streams whose request was seen, remembered */

struct tapir_h2_conn {
	tapir_h2_done_fn done;
	void *ctx;
	struct h2_dir dir[2];
	struct h2_stream **streams; /* sorted by stream id */
	size_t n, cap;
	uint32_t max_opened;   /* highest stream id the client opened */
	uint32_t first_opened; /* the first stream followed: below it, begun before (mid-way) */
	int mid;	       /* picked up mid-way: a request block needs a decoded :method */
	/* Of the 2 * SEEN_IDS stream ids up to max_opened, the client's that opened a request
	 * (followed, over already, or beyond the table's room): bit (id / 2) % SEEN_IDS. */
	uint64_t seen[SEEN_IDS / 64];
	uint8_t *scratch; /* a rewritten block */
	size_t scratch_cap;
	struct tapir_h2_stats stats;
};

struct tapir_h2_conn *tapir_h2_conn__new(tapir_h2_done_fn done, void *ctx)
{
	struct tapir_h2_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->done = done;
	c->ctx = ctx;
	return c;
}

void tapir_h2_conn__free(struct tapir_h2_conn *c)
{
	size_t i;
	int d;

	if (!c)
		return;
	for (d = 0; d < 2; d++) {
		if (c->dir[d].inf)
			nghttp2_hd_inflate_del(c->dir[d].inf);
		free(c->dir[d].blk);
	}
	for (i = 0; i < c->n; i++)
		free(c->streams[i]);
	free(c->streams);
	free(c->scratch);
	free(c);
}

const struct tapir_h2_stats *tapir_h2_conn__stats(const struct tapir_h2_conn *c)
{
	return &c->stats;
}

size_t tapir_h2_conn__open_streams(const struct tapir_h2_conn *c)
{
	return c->n;
}

/* --- streams ------------------------------------------------------------------------------ */

/* Index of @id in the table, or of where it would go. */
static size_t stream_slot(const struct tapir_h2_conn *c, uint32_t id)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->streams[mid]->r.stream_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct h2_stream *stream_find(const struct tapir_h2_conn *c, uint32_t id)
{
	size_t i = stream_slot(c, id);

	return i < c->n && c->streams[i]->r.stream_id == id ? c->streams[i] : NULL;
}

static struct h2_stream *stream_open(struct tapir_h2_conn *c, uint32_t id)
{
	struct h2_stream *s;
	size_t i;

	if (c->n >= TAPIR_H2_MAX_STREAMS) {
		c->stats.streams_dropped++;
		return NULL;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct h2_stream **t = realloc(c->streams, cap * sizeof(*t));

		if (!t)
			return NULL;
		c->streams = t;
		c->cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->r.stream_id = id;
	s->r.grpc_status = TAPIR_H2_GRPC_NONE;
	i = stream_slot(c, id);
	memmove(&c->streams[i + 1], &c->streams[i], (c->n - i) * sizeof(*c->streams));
	c->streams[i] = s;
	c->n++;
	return s;
}

/* The server ended stream @id, which is not followed: on a connection picked up mid-way, one
 * begun before the first one followed (each ends so once; a RST_STREAM after it, or instead of
 * it, is not counted). */
static void unseen_end(struct tapir_h2_conn *c, uint32_t id)
{
	if (c->mid && (!c->first_opened || id < c->first_opened))
		c->stats.unseen_ended++;
}

/* Whether stream @id opened a request, by the bit it shares with ids 2 * SEEN_IDS apart. */
static int seen_has(const struct tapir_h2_conn *c, uint32_t id)
{
	uint32_t i = (id >> 1) % SEEN_IDS;

	return (int)(c->seen[i / 64] >> (i % 64) & 1);
}

static void seen_set(struct tapir_h2_conn *c, uint32_t id, int on)
{
	uint32_t i = (id >> 1) % SEEN_IDS;

	if (on)
		c->seen[i / 64] |= 1ULL << (i % 64);
	else
		c->seen[i / 64] &= ~(1ULL << (i % 64));
}

/* The client opened stream @id, above max_opened: the ids it passed over opened nothing. */
static void client_opened(struct tapir_h2_conn *c, uint32_t id)
{
	uint32_t k;

	if (id - c->max_opened >= 2 * SEEN_IDS)
		memset(c->seen, 0, sizeof(c->seen));
	else
		for (k = c->max_opened + 1; k < id; k++)
			if (k & 1)
				seen_set(c, k, 0);
	seen_set(c, id, 1);
	c->max_opened = id;
	if (!c->first_opened)
		c->first_opened = id;
}

/* The server's final answer to stream @id, which is not followed: a request lost (its header
 * block never came), unless the stream began before a mid-way pick-up (unseen_end()), or its
 * request was seen (a client's RST_STREAM crossed the answer; one beyond the table's room,
 * counted as streams_limit), or it is too far below the latest to tell. */
static void unmatched_answer(struct tapir_h2_conn *c, uint32_t id)
{
	if (c->mid && (!c->first_opened || id < c->first_opened))
		return;
	if (id <= c->max_opened && (c->max_opened - id >= 2 * SEEN_IDS || seen_has(c, id)))
		return;
	c->stats.unmatched++;
}

void tapir_h2_conn__mid(struct tapir_h2_conn *c)
{
	c->mid = 1;
}

int tapir_h2_conn__upgrade_late(struct tapir_h2_conn *c)
{
	if (c->n || c->max_opened)
		return -EEXIST;
	client_opened(c, 1);
	return 0;
}

int tapir_h2_conn__upgrade(struct tapir_h2_conn *c, uint64_t now_ns)
{
	struct h2_stream *s;

	if (c->n || c->max_opened)
		return -EEXIST;
	s = stream_open(c, 1);
	if (!s)
		return -ENOMEM;
	client_opened(c, 1);
	s->r.start_ns = now_ns;
	s->r.flags |= TAPIR_H2_R_UPGRADE | TAPIR_H2_R_REQ_ENDED;
	return 0;
}

/* The stream is over: report it and forget it. */
static void stream_end(struct tapir_h2_conn *c, struct h2_stream *s, uint8_t outcome, uint32_t code,
		       uint64_t now_ns)
{
	size_t i = stream_slot(c, s->r.stream_id);

	s->r.outcome = outcome;
	s->r.error_code = code;
	s->r.end_ns = now_ns;
	if (c->done)
		c->done(c->ctx, &s->r);
	memmove(&c->streams[i], &c->streams[i + 1], (c->n - i - 1) * sizeof(*c->streams));
	c->n--;
	free(s);
}

static int is_grpc(const char *ctype)
{
	return !strncasecmp(ctype, "application/grpc", 16) &&
	       (ctype[16] == 0 || ctype[16] == '+' || ctype[16] == ';');
}

/* --- header blocks ------------------------------------------------------------------------ */

static void inflater_reset(struct tapir_h2_conn *c, struct h2_dir *d)
{
	if (d->inf) {
		nghttp2_hd_inflate_del(d->inf);
		d->inf = NULL;
		c->stats.inflater_resets++;
	}
}

static int inflater_get(struct h2_dir *d)
{
	if (d->inf)
		return 0;
	if (nghttp2_hd_inflate_new(&d->inf))
		return -ENOMEM;
	/* Accept the table sizes that peers ask for in practice (browsers: 64 KiB); the size
	 * updates in the blocks say what the encoder really uses. */
	if (nghttp2_hd_inflate_change_table_size(d->inf, TAPIR_H2_TABLE_MAX)) {
		nghttp2_hd_inflate_del(d->inf);
		d->inf = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Decode @len bytes with the direction's inflater into @f: 0, or -1 where nghttp2 refused it
 * (the fields before the refusal are in @f). */
static int inflate_block(struct h2_dir *d, const uint8_t *in, size_t len, struct fields *f)
{
	static const uint8_t none[1];

	if (!in)
		in = none; /* an empty block never got a buffer */
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t n = nghttp2_hd_inflate_hd2(d->inf, &nv, &fl, in, len, 1);

		if (n < 0)
			return -1;
		in += n;
		len -= (size_t)n;
		if (fl & NGHTTP2_HD_INFLATE_EMIT)
			take_field(f, &nv);
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->inf);
			return 0;
		}
		if (!n && !(fl & NGHTTP2_HD_INFLATE_EMIT))
			return -1; /* no progress: cannot happen with in_final set */
	}
}

/* Decode the pending block of @d into @f; whether it was decoded in full, or -errno. */
static int decode_block(struct tapir_h2_conn *c, struct h2_dir *d, struct fields *f)
{
	uint32_t known;
	size_t out_len;
	int scan, err;

	memset(f, 0, sizeof(*f));
	f->grpc_status = TAPIR_H2_GRPC_NONE;
	err = inflater_get(d);
	if (err)
		return err;
	/* A rewrite is at most 3/2 of the block: an empty entry (3 bytes) replaces 2 at least. */
	if (c->scratch_cap < d->len * 2 + 8) {
		uint8_t *p = realloc(c->scratch, d->len * 2 + 8);

		if (!p)
			return -ENOMEM;
		c->scratch = p;
		c->scratch_cap = d->len * 2 + 8;
	}
	known = (uint32_t)(nghttp2_hd_inflate_get_num_table_entries(d->inf) - STATIC_ENTRIES);
	scan = hpack_rewrite(d->blk, d->len, known, c->scratch, &out_len);
	if (scan == SCAN_SAFE && !d->blk_cut) {
		if (!inflate_block(d, d->blk, d->len, f))
			return !f->unknown;
		/* Refused after all (an entry evicted sooner than the scan could tell, a bad
		 * Huffman code): start over, with what a fresh table can make of it. */
		inflater_reset(c, d);
		memset(f, 0, sizeof(*f));
		f->grpc_status = TAPIR_H2_GRPC_NONE;
		err = inflater_get(d);
		if (err)
			return err;
		scan = hpack_rewrite(d->blk, d->len, 0, c->scratch, &out_len);
	}
	if (inflate_block(d, c->scratch, out_len, f) || scan == SCAN_DAMAGED || d->blk_cut)
		inflater_reset(c, d);
	return 0;
}

/* A request's or a response's header block of stream @id, decoded into @f. */
static void apply_block(struct tapir_h2_conn *c, int dir, uint32_t id, unsigned flags,
			const struct fields *f, int full, uint64_t start_ns, uint64_t now_ns)
{
	struct h2_stream *s = stream_find(c, id);

	if (dir == TAPIR_H2_REQUEST && !s) {
		/* A stream already over, or not followed; mid-way, a block that names no method is
		 * no request's start (the trailers of a stream begun before, or a wrong guess). */
		if (id <= c->max_opened || (c->mid && !f->method[0])) {
			c->stats.unknown_stream++;
			return;
		}
		client_opened(c, id);
		s = stream_open(c, id);
		if (!s)
			return;
		s->r.start_ns = start_ns;
		memcpy(s->r.method, f->method, sizeof(f->method));
		memcpy(s->r.path, f->path, sizeof(f->path));
		memcpy(s->r.content_type, f->ctype, sizeof(f->ctype));
		if (f->has_ctype && is_grpc(f->ctype))
			s->r.flags |= TAPIR_H2_R_GRPC;
	} else if (!s) {
		c->stats.unknown_stream++;
		if (flags & TAPIR_H2_END_STREAM)
			unseen_end(c, id);
		if (f->status >= 200 && (id & 1)) /* even: a stream the server pushed */
			unmatched_answer(c, id);
		return;
	}
	if (!full)
		s->r.flags |= TAPIR_H2_R_UNDECODED;
	if (dir == TAPIR_H2_REQUEST) {
		if (flags & TAPIR_H2_END_STREAM)
			s->r.flags |= TAPIR_H2_R_REQ_ENDED;
		return;
	}
	if (!s->r.first_resp_ns)
		s->r.first_resp_ns = start_ns;
	if (!s->final && f->status >= 200) {
		s->final = 1;
		s->r.status = f->status;
		if (f->has_ctype) {
			memcpy(s->r.content_type, f->ctype, sizeof(f->ctype));
			if (is_grpc(f->ctype))
				s->r.flags |= TAPIR_H2_R_GRPC;
		}
		if ((flags & TAPIR_H2_END_STREAM) && f->grpc_status != TAPIR_H2_GRPC_NONE)
			s->r.flags |= TAPIR_H2_R_TRAILERS_ONLY;
	}
	if (f->grpc_status != TAPIR_H2_GRPC_NONE)
		s->r.grpc_status = f->grpc_status;
	if (flags & TAPIR_H2_END_STREAM)
		stream_end(c, s, TAPIR_H2_OUT_COMPLETE, 0, now_ns);
}

static void block_forget(struct h2_dir *d)
{
	d->len = 0;
	d->blk_stream = 0;
	d->blk_flags = 0;
	d->blk_cut = 0;
}

int tapir_h2_conn__lost(struct tapir_h2_conn *c, int dir)
{
	struct h2_dir *d;

	if (!c || (dir != TAPIR_H2_REQUEST && dir != TAPIR_H2_RESPONSE))
		return -EINVAL;
	d = &c->dir[dir];
	if (d->blk_stream)
		c->stats.blocks_lost++;
	block_forget(d);
	inflater_reset(c, d);
	return 0;
}

static int block_append(struct h2_dir *d, const void *frag, size_t len)
{
	if (d->len + len > TAPIR_H2_BLOCK_MAX) {
		len = TAPIR_H2_BLOCK_MAX - d->len;
		d->blk_cut = 1;
	}
	if (d->len + len > d->cap) {
		size_t cap = d->cap ? d->cap : 1024;
		uint8_t *p;

		while (cap < d->len + len)
			cap *= 2;
		p = realloc(d->blk, cap);
		if (!p)
			return -ENOMEM;
		d->blk = p;
		d->cap = cap;
	}
	if (len)
		memcpy(d->blk + d->len, frag, len);
	d->len += len;
	return 0;
}

int tapir_h2_conn__headers(struct tapir_h2_conn *c, int dir, uint32_t stream_id, unsigned flags,
			   const void *frag, size_t len, uint64_t now_ns)
{
	struct fields f;
	struct h2_dir *d;
	uint64_t start_ns;
	int full, err;

	if (!c || (dir != TAPIR_H2_REQUEST && dir != TAPIR_H2_RESPONSE) || !stream_id ||
	    (len && !frag))
		return -EINVAL;
	d = &c->dir[dir];
	if (d->blk_stream && d->blk_stream != stream_id)
		tapir_h2_conn__lost(c, dir);
	if (!d->blk_stream) {
		d->blk_stream = stream_id;
		d->blk_start_ns = now_ns;
	}
	d->blk_flags |= flags & (TAPIR_H2_END_STREAM | TAPIR_H2_PUSH);
	err = block_append(d, frag, len);
	if (err)
		return err;
	if (!(flags & TAPIR_H2_END_HEADERS))
		return 0;
	c->stats.blocks++;
	if (d->blk_cut)
		c->stats.blocks_lost++;
	full = decode_block(c, d, &f);
	if (full < 0) {
		tapir_h2_conn__lost(c, dir);
		return full;
	}
	if (!full)
		c->stats.blocks_undecoded++;
	flags = d->blk_flags;
	start_ns = d->blk_start_ns;
	block_forget(d);
	if (!(flags & TAPIR_H2_PUSH))
		apply_block(c, dir, stream_id, flags, &f, full, start_ns, now_ns);
	return 0;
}

/* --- the other frames --------------------------------------------------------------------- */

int tapir_h2_conn__data(struct tapir_h2_conn *c, int dir, uint32_t stream_id, uint64_t bytes,
			int end_stream, uint64_t now_ns)
{
	struct h2_stream *s;

	if (!c || (dir != TAPIR_H2_REQUEST && dir != TAPIR_H2_RESPONSE) || !stream_id)
		return -EINVAL;
	s = stream_find(c, stream_id);
	if (!s) {
		c->stats.unknown_stream++;
		if (end_stream && dir == TAPIR_H2_RESPONSE)
			unseen_end(c, stream_id);
		return 0;
	}
	if (dir == TAPIR_H2_REQUEST) {
		s->r.req_bytes += bytes;
		if (end_stream)
			s->r.flags |= TAPIR_H2_R_REQ_ENDED;
		return 0;
	}
	s->r.resp_bytes += bytes;
	if (!s->r.first_resp_ns)
		s->r.first_resp_ns = now_ns;
	if (end_stream)
		stream_end(c, s, TAPIR_H2_OUT_COMPLETE, 0, now_ns);
	return 0;
}

int tapir_h2_conn__rst(struct tapir_h2_conn *c, int dir, uint32_t stream_id, uint32_t error_code,
		       uint64_t now_ns)
{
	struct h2_stream *s;

	if (!c || (dir != TAPIR_H2_REQUEST && dir != TAPIR_H2_RESPONSE) || !stream_id)
		return -EINVAL;
	s = stream_find(c, stream_id);
	if (!s) {
		c->stats.unknown_stream++;
		return 0;
	}
	if (dir == TAPIR_H2_REQUEST)
		s->r.flags |= TAPIR_H2_R_CLIENT_RESET;
	stream_end(c, s, TAPIR_H2_OUT_RESET, error_code, now_ns);
	return 0;
}

int tapir_h2_conn__goaway(struct tapir_h2_conn *c, int dir, uint32_t last_stream_id,
			  uint32_t error_code, uint64_t now_ns)
{
	if (!c || (dir != TAPIR_H2_REQUEST && dir != TAPIR_H2_RESPONSE))
		return -EINVAL;
	/* A client's GOAWAY speaks of the server's streams (pushes), which open no request. */
	if (dir == TAPIR_H2_REQUEST)
		return 0;
	while (c->n && c->streams[c->n - 1]->r.stream_id > last_stream_id)
		stream_end(c, c->streams[c->n - 1], TAPIR_H2_OUT_GOAWAY, error_code, now_ns);
	return 0;
}

int tapir_h2_conn__close(struct tapir_h2_conn *c, uint64_t now_ns)
{
	if (!c)
		return -EINVAL;
	while (c->n)
		stream_end(c, c->streams[0], TAPIR_H2_OUT_CLOSED, 0, now_ns);
	return 0;
}

/* --- gRPC status -------------------------------------------------------------------------- */

static const char *const grpc_names[] = {
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

_Static_assert(sizeof(grpc_names) / sizeof(grpc_names[0]) == TAPIR_H2_GRPC_INVALID,
	       "a name for every code below TAPIR_H2_GRPC_INVALID");

int tapir_h2_grpc_status_parse(const char *value, size_t len)
{
	unsigned v = 0;
	size_t i;

	if (!value || !len)
		return TAPIR_H2_GRPC_INVALID;
	for (i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return TAPIR_H2_GRPC_INVALID;
		v = v * 10 + (unsigned)(value[i] - '0');
		if (v >= TAPIR_H2_GRPC_INVALID)
			return TAPIR_H2_GRPC_INVALID;
	}
	return (int)v;
}

const char *tapir_h2_grpc_status_name(int grpc_status)
{
	if (grpc_status == TAPIR_H2_GRPC_NONE)
		return "";
	if (grpc_status < 0 || grpc_status >= TAPIR_H2_GRPC_INVALID)
		return "UNKNOWN";
	return grpc_names[grpc_status];
}
