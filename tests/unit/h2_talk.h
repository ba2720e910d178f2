/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Real HTTP/2 for the tests: a libnghttp2 client and server talking through memory, the bytes
 * of each direction kept with what the receiving library made of them (every frame header it
 * began, the DATA it delivered, the header fields it decoded), to compare tapir's view with.
 */
#ifndef TAPIR_TEST_H2_TALK_H
#define TAPIR_TEST_H2_TALK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#define TALK_MAX_FRAMES 1024
#define TALK_MAX_CHUNKS 1024

/* Growing byte buffer. */
struct talk_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void talk_put(struct talk_buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
}

struct talk_frame {
	uint32_t length, stream_id;
	uint8_t type, flags;
};

/* One direction of the conversation, and what its receiver saw. */
struct talk_dir {
	struct talk_buf bytes;
	size_t chunk_end[TALK_MAX_CHUNKS]; /* where the sender's writes ended */
	size_t nchunks;
	struct talk_frame frames[TALK_MAX_FRAMES]; /* every frame header the receiver began */
	size_t nframes;
	struct talk_buf data;	 /* DATA content delivered, in order */
	struct talk_buf headers; /* "name=value\n" per field, "--\n" after each header block */
};

struct talk {
	nghttp2_session *client, *server;
	struct talk_dir dir[2]; /* 0: client to server (the preface first), 1: server to client */
	int pad;		/* pad frames (HEADERS and DATA) to a multiple of 64 */
	struct {
		uint8_t dir;
		size_t end;
	} order[2 * TALK_MAX_CHUNKS]; /* every write of either side, in the order they came */
	size_t norder;
};

static inline int talk_dir_of(struct talk *t, nghttp2_session *s)
{
	return s == t->server ? 0 : 1; /* the receiving session's direction */
}

static inline int talk_on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
	struct talk_dir *d = &((struct talk *)ud)->dir[talk_dir_of(ud, s)];

	if (d->nframes < TALK_MAX_FRAMES)
		d->frames[d->nframes++] =
			(struct talk_frame){ (uint32_t)hd->length, (uint32_t)hd->stream_id,
					     hd->type, hd->flags };
	return 0;
}

static inline int talk_on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id,
			       const uint8_t *data, size_t len, void *ud)
{
	talk_put(&((struct talk *)ud)->dir[talk_dir_of(ud, s)].data, data, len);
	return 0;
}

static inline int talk_on_header(nghttp2_session *s, const nghttp2_frame *frame,
				 const uint8_t *name, size_t namelen, const uint8_t *value,
				 size_t valuelen, uint8_t flags, void *ud)
{
	struct talk_buf *b = &((struct talk *)ud)->dir[talk_dir_of(ud, s)].headers;

	talk_put(b, name, namelen);
	talk_put(b, "=", 1);
	talk_put(b, value, valuelen);
	talk_put(b, "\n", 1);
	return 0;
}

static inline int talk_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
	if (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_PUSH_PROMISE)
		talk_put(&((struct talk *)ud)->dir[talk_dir_of(ud, s)].headers, "--\n", 3);
	return 0;
}

static inline ssize_t talk_padding(nghttp2_session *s, const nghttp2_frame *frame,
				   size_t max_payload, void *ud)
{
	size_t want = (frame->hd.length + 64) / 64 * 64;

	return want <= max_payload ? (ssize_t)want : (ssize_t)frame->hd.length;
}

/* DATA frames as long as the peer allows, not 16 KiB: frames beyond the default maximum. */
static inline ssize_t talk_read_length(nghttp2_session *s, uint8_t type, int32_t stream_id,
				       int32_t conn_window, int32_t stream_window,
				       uint32_t remote_max_frame, void *ud)
{
	int32_t w = conn_window < stream_window ? conn_window : stream_window;

	return w < (int32_t)remote_max_frame ? w : (ssize_t)remote_max_frame;
}

/* A request or response body: `len` bytes of a repeating pattern. */
struct talk_body {
	size_t len, off;
	uint8_t seed;
	const nghttp2_nv *trailers; /* sent after the body, as gRPC does */
	size_t ntrailers;
};

static inline ssize_t talk_read(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
				uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct talk_body *b = src->ptr;
	size_t i, n = b->len - b->off < len ? b->len - b->off : len;

	for (i = 0; i < n; i++)
		buf[i] = (uint8_t)(b->seed + (b->off + i) * 7);
	b->off += n;
	if (b->off == b->len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (b->ntrailers) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(s, stream_id, b->trailers, b->ntrailers))
				abort();
		}
	}
	return (ssize_t)n;
}

static inline void talk_init(struct talk *t, int pad)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;

	memset(t, 0, sizeof(*t));
	t->pad = pad;
	if (nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
		abort();
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, talk_on_begin_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, talk_on_data);
	nghttp2_session_callbacks_set_on_header_callback(cb, talk_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, talk_on_frame_recv);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb, talk_read_length);
	if (pad)
		nghttp2_session_callbacks_set_select_padding_callback(cb, talk_padding);
	/* Every field reaches the callbacks as sent, whatever HTTP semantics would say. */
	nghttp2_option_set_no_http_messaging(opt, 1);
	if (nghttp2_session_client_new2(&t->client, cb, t, opt) ||
	    nghttp2_session_server_new2(&t->server, cb, t, opt))
		abort();
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
}

static inline void talk_free(struct talk *t)
{
	int d;

	nghttp2_session_del(t->client);
	nghttp2_session_del(t->server);
	for (d = 0; d < 2; d++) {
		free(t->dir[d].bytes.p);
		free(t->dir[d].data.p);
		free(t->dir[d].headers.p);
	}
}

/* Everything each side wants to send, to the other, until both are quiet. */
static inline void talk_pump(struct talk *t)
{
	int busy = 1, d;

	while (busy) {
		busy = 0;
		for (d = 0; d < 2; d++) {
			nghttp2_session *from = d ? t->server : t->client;
			nghttp2_session *to = d ? t->client : t->server;
			struct talk_dir *dir = &t->dir[d];
			const uint8_t *p;
			ssize_t n;

			while ((n = nghttp2_session_mem_send(from, &p)) > 0) {
				talk_put(&dir->bytes, p, (size_t)n);
				if (dir->nchunks < TALK_MAX_CHUNKS)
					dir->chunk_end[dir->nchunks++] = dir->bytes.len;
				if (t->norder < 2 * TALK_MAX_CHUNKS) {
					t->order[t->norder].dir = (uint8_t)d;
					t->order[t->norder++].end = dir->bytes.len;
				}
				if (nghttp2_session_mem_recv(to, p, (size_t)n) != n)
					abort();
				busy = 1;
			}
			if (n < 0)
				abort();
		}
	}
}

#define TALK_NV(n, v)                                                                \
	{                                                                            \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,        \
			NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE \
	}

/*
 * A gRPC-shaped conversation with every frame type a server sees: SETTINGS and their ACKs, a
 * unary call answered with trailers (stream 1), a PUSH_PROMISE on it, a request with PRIORITY
 * and a 100 KB answer in 64 KiB frames with WINDOW_UPDATEs (3), a 40 KB header that needs
 * CONTINUATION and a trailers-only answer (5), a call the client cancels (7) and one the server
 * refuses (9), PINGs, and a GOAWAY with debug data. With @pad, HEADERS and DATA are PADDED.
 */
static inline void talk_grpc(struct talk *t, int pad)
{
	static char big[40000];
	static struct talk_body req1 = { 0 }, resp1, resp3, resp2;
	nghttp2_settings_entry set[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
		{ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 65536 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
	};
	nghttp2_nv unary[] = {
		TALK_NV(":method", "POST"),
		TALK_NV(":scheme", "http"),
		TALK_NV(":path", "/helloworld.Greeter/SayHello"),
		TALK_NV(":authority", "localhost:50051"),
		TALK_NV("content-type", "application/grpc"),
		TALK_NV("te", "trailers"),
		TALK_NV("grpc-timeout", "1S"),
	};
	nghttp2_nv get[] = {
		TALK_NV(":method", "GET"),    TALK_NV(":scheme", "https"),
		TALK_NV(":path", "/big?x=1"), TALK_NV(":authority", "localhost"),
		TALK_NV("accept", "*/*"),
	};
	nghttp2_nv huge[] = {
		TALK_NV(":method", "POST"),
		TALK_NV(":scheme", "http"),
		TALK_NV(":path", "/helloworld.Greeter/Missing"),
		TALK_NV(":authority", "localhost:50051"),
		TALK_NV("content-type", "application/grpc+proto"),
		{ (uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big), 0 },
	};
	nghttp2_nv ok[] = {
		TALK_NV(":status", "200"),
		TALK_NV("content-type", "application/grpc"),
		TALK_NV("grpc-accept-encoding", "identity,deflate,gzip"),
	};
	static nghttp2_nv trailers[] = {
		TALK_NV("grpc-status", "0"),
		TALK_NV("grpc-message", ""),
	};
	nghttp2_nv trailers_only[] = {
		TALK_NV(":status", "200"),
		TALK_NV("content-type", "application/grpc"),
		TALK_NV("grpc-status", "5"),
		TALK_NV("grpc-message", "no such method"),
	};
	nghttp2_nv page[] = {
		TALK_NV(":status", "200"),
		TALK_NV("content-type", "application/octet-stream"),
		TALK_NV("content-length", "100000"),
	};
	nghttp2_nv push[] = {
		TALK_NV(":method", "GET"),
		TALK_NV(":scheme", "http"),
		TALK_NV(":path", "/pushed.css"),
		TALK_NV(":authority", "localhost:50051"),
	};
	nghttp2_data_provider prov;
	nghttp2_priority_spec pri;
	int32_t s1, s3, s5, s7, s9, s2;
	uint8_t ping[8] = "tapir!!!";

	talk_init(t, pad);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('!' + i * 13 % 90);
	req1 = (struct talk_body){ 300, 0, 1, NULL, 0 };
	resp1 = (struct talk_body){ 1200, 0, 2, trailers, 2 };
	resp3 = (struct talk_body){ 100000, 0, 3, NULL, 0 };
	resp2 = (struct talk_body){ 50, 0, 4, NULL, 0 };

	if (nghttp2_submit_settings(t->client, NGHTTP2_FLAG_NONE, set, 3) ||
	    nghttp2_submit_settings(t->server, NGHTTP2_FLAG_NONE, set, 1))
		abort();
	prov.source.ptr = &req1;
	prov.read_callback = talk_read;
	s1 = nghttp2_submit_request(t->client, NULL, unary, 7, &prov, NULL);
	nghttp2_priority_spec_init(&pri, s1, 32, 0);
	s3 = nghttp2_submit_request(t->client, &pri, get, 5, NULL, NULL);
	s5 = nghttp2_submit_request(t->client, NULL, huge, 6, NULL, NULL);
	s7 = nghttp2_submit_request(t->client, NULL, unary, 7, NULL, NULL);
	s9 = nghttp2_submit_request(t->client, NULL, get, 5, NULL, NULL);
	if (s1 != 1 || s3 != 3 || s5 != 5 || s7 != 7 || s9 != 9)
		abort();
	if (nghttp2_submit_ping(t->client, NGHTTP2_FLAG_NONE, ping))
		abort();
	talk_pump(t);

	s2 = nghttp2_submit_push_promise(t->server, NGHTTP2_FLAG_NONE, s1, push, 4, NULL);
	if (s2 != 2)
		abort();
	prov.source.ptr = &resp1;
	if (nghttp2_submit_response(t->server, s1, ok, 3, &prov))
		abort();
	prov.source.ptr = &resp3;
	if (nghttp2_submit_response(t->server, s3, page, 3, &prov) ||
	    nghttp2_submit_response(t->server, s5, trailers_only, 4, NULL) ||
	    nghttp2_submit_rst_stream(t->client, NGHTTP2_FLAG_NONE, s7, NGHTTP2_CANCEL) ||
	    nghttp2_submit_rst_stream(t->server, NGHTTP2_FLAG_NONE, s9, NGHTTP2_REFUSED_STREAM))
		abort();
	prov.source.ptr = &resp2;
	if (nghttp2_submit_response(t->server, s2, page, 1, &prov))
		abort();
	talk_pump(t);
	if (nghttp2_submit_ping(t->server, NGHTTP2_FLAG_NONE, ping))
		abort();
	talk_pump(t);
	/* Last: a server that sent GOAWAY and has no stream left reads no more. */
	if (nghttp2_submit_goaway(t->server, NGHTTP2_FLAG_NONE, s9, NGHTTP2_NO_ERROR,
				  (const uint8_t *)"bye", 3))
		abort();
	talk_pump(t);
}

#endif
