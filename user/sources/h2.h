/* SPDX-License-Identifier: GPL-2.0 */
/* One HTTP/2 connection seen from outside: its header blocks decoded, its streams' requests. */
#ifndef TAPIR_H2_H
#define TAPIR_H2_H

#include <stddef.h>
#include <stdint.h>

/*
 * The caller walks each direction with include/tapir/h2_frame.h and hands over what it found:
 * header block fragments (HEADERS, PUSH_PROMISE, CONTINUATION), DATA byte counts, END_STREAM,
 * RST_STREAM and GOAWAY, each with the time it saw them. HPACK is libnghttp2's inflater, one
 * per direction; when a block refers to dynamic table entries sent before tapir looked (a
 * connection already open), the fields it can still read are taken and the block counts as
 * undecoded (see h2.c). Each stream the client opens ends in one result, once.
 */

#define TAPIR_H2_REQUEST  0 /* client to server */
#define TAPIR_H2_RESPONSE 1 /* server to client */

#define TAPIR_H2_MAX_STREAMS 256   /* open streams followed; beyond, counted and not followed */
#define TAPIR_H2_BLOCK_MAX   65536 /* bytes of one header block kept; beyond, undecoded */
#define TAPIR_H2_TABLE_MAX   65536 /* HPACK dynamic table accepted (SETTINGS_HEADER_TABLE_SIZE) */

#define TAPIR_H2_METHOD_MAX 16
#define TAPIR_H2_PATH_MAX   256
#define TAPIR_H2_CTYPE_MAX  64

/* tapir_h2_conn__headers() flags, from the frames' own. */
#define TAPIR_H2_END_HEADERS 0x1 /* this piece ends the header block */
#define TAPIR_H2_END_STREAM  0x2 /* the HEADERS frame carries END_STREAM */
#define TAPIR_H2_PUSH	     0x4 /* the block is a PUSH_PROMISE's: decoded, opens nothing */

/* How a stream ended (struct tapir_h2_result.outcome). */
#define TAPIR_H2_OUT_COMPLETE 0 /* the response ended with END_STREAM */
#define TAPIR_H2_OUT_RESET    1 /* RST_STREAM, from either side: error_code */
#define TAPIR_H2_OUT_GOAWAY   2 /* the server's GOAWAY left it out (id > last stream id) */
#define TAPIR_H2_OUT_CLOSED   3 /* the connection ended first */

/* struct tapir_h2_result.flags */
#define TAPIR_H2_R_UNDECODED	 0x01 /* one of its header blocks was not decoded in full */
#define TAPIR_H2_R_TRAILERS_ONLY 0x02 /* one response block with grpc-status and END_STREAM */
#define TAPIR_H2_R_GRPC		 0x04 /* a content-type of application/grpc, +proto and the like */
#define TAPIR_H2_R_REQ_ENDED	 0x08 /* the client ended its request (END_STREAM) */
#define TAPIR_H2_R_CLIENT_RESET	 0x10 /* TAPIR_H2_OUT_RESET: the client sent the RST_STREAM */
#define TAPIR_H2_R_UPGRADE	 0x20 /* stream 1 of an h2c upgrade: its request was HTTP/1.1 */

/* struct tapir_h2_result.grpc_status besides the codes 0..16. */
#define TAPIR_H2_GRPC_NONE    (-1) /* no grpc-status field */
#define TAPIR_H2_GRPC_INVALID 17   /* a value that is not one of the codes 0..16 */

struct tapir_h2_result {
	uint32_t stream_id;
	uint16_t status;	/* :status of the final response; 0: none seen */
	int16_t grpc_status;	/* 0..16, TAPIR_H2_GRPC_NONE or TAPIR_H2_GRPC_INVALID */
	uint8_t outcome;	/* TAPIR_H2_OUT_* */
	uint8_t flags;		/* TAPIR_H2_R_* */
	uint32_t error_code;	/* RST_STREAM's or GOAWAY's */
	uint64_t req_bytes;	/* DATA payload, padding left out */
	uint64_t resp_bytes;	/* DATA payload, padding left out */
	uint64_t start_ns;	/* the request's HEADERS */
	uint64_t first_resp_ns; /* the first response frame: HEADERS (1xx too) or DATA; 0: none */
	uint64_t end_ns;
	char method[TAPIR_H2_METHOD_MAX]; /* each a bounded, NUL-terminated copy; "": not seen */
	char path[TAPIR_H2_PATH_MAX];
	char content_type[TAPIR_H2_CTYPE_MAX]; /* the response's, else the request's */
};

struct tapir_h2_stats {
	uint64_t blocks;	   /* header blocks ended (END_HEADERS) */
	uint64_t blocks_undecoded; /* of them, not decoded in full */
	uint64_t blocks_lost;	   /* header blocks given up on: tapir_h2_conn__lost, cut short */
	uint64_t inflater_resets;  /* a direction's HPACK table started over */
	uint64_t streams_dropped;  /* new streams beyond TAPIR_H2_MAX_STREAMS */
	uint64_t unknown_stream;   /* blocks, DATA, RST_STREAM for a stream not followed */
	uint64_t unseen_ended;	   /* on a connection picked up mid-way: streams begun before it
				    * (below the first followed) that the server ended */
	uint64_t unmatched;	   /* final answers to the client's streams whose request was
				    * never seen (its header block lost) */
};

struct tapir_h2_conn;

/* A stream is over; @r is valid during the call. */
typedef void (*tapir_h2_done_fn)(void *ctx, const struct tapir_h2_result *r);

/* NULL with errno set on failure. */
struct tapir_h2_conn *tapir_h2_conn__new(tapir_h2_done_fn done, void *ctx);
/* Frees the streams still open without reporting them (tapir_h2_conn__close() reports). */
void tapir_h2_conn__free(struct tapir_h2_conn *c);

/*
 * A piece of a header block, in order: the fragments of a HEADERS (or PUSH_PROMISE) frame and
 * of its CONTINUATIONs on @stream_id, in as many pieces as the caller has (an empty one is
 * fine). The block is decoded at the piece with TAPIR_H2_END_HEADERS. Its time is that of its
 * first piece. A block begun while another was pending means the other lost its end: that one
 * is given up (as by tapir_h2_conn__lost()).
 */
int tapir_h2_conn__headers(struct tapir_h2_conn *c, int dir, uint32_t stream_id, unsigned flags,
			   const void *frag, size_t len, uint64_t now_ns);
/* DATA payload of @bytes (may be 0) on @stream_id; @end_stream: the frame's END_STREAM. */
int tapir_h2_conn__data(struct tapir_h2_conn *c, int dir, uint32_t stream_id, uint64_t bytes,
			int end_stream, uint64_t now_ns);
int tapir_h2_conn__rst(struct tapir_h2_conn *c, int dir, uint32_t stream_id, uint32_t error_code,
		       uint64_t now_ns);
/* GOAWAY sent in @dir: the server's ends the client's streams above @last_stream_id. */
int tapir_h2_conn__goaway(struct tapir_h2_conn *c, int dir, uint32_t last_stream_id,
			  uint32_t error_code, uint64_t now_ns);
/* Some of a header block's bytes in @dir never arrived: its table is unknown from here. */
int tapir_h2_conn__lost(struct tapir_h2_conn *c, int dir);
/*
 * The connection left HTTP/1.1 for HTTP/2 through an h2c upgrade at @now_ns (RFC 7540 3.2):
 * stream 1 is open, its request (sent as HTTP/1.1, not seen here: no method or path) complete,
 * and it ends with the server's answer on it, flagged TAPIR_H2_R_UPGRADE. Before any stream.
 */
int tapir_h2_conn__upgrade(struct tapir_h2_conn *c, uint64_t now_ns);
/*
 * The connection was picked up mid-way (open before tapir started): its HPACK tables are
 * unknown, and a request block that does not decode a :method opens no stream.
 */
void tapir_h2_conn__mid(struct tapir_h2_conn *c);
/* An h2c upgrade seen late (TAPIR_H2_OPEN_UPGRADE_LATE): stream 1 is the 101's request, counted
 * as that, and not followed; its answer is no request lost. -EEXIST once streams began. */
int tapir_h2_conn__upgrade_late(struct tapir_h2_conn *c);
/* The connection ended: every stream still open ends TAPIR_H2_OUT_CLOSED. */
int tapir_h2_conn__close(struct tapir_h2_conn *c, uint64_t now_ns);

const struct tapir_h2_stats *tapir_h2_conn__stats(const struct tapir_h2_conn *c);
size_t tapir_h2_conn__open_streams(const struct tapir_h2_conn *c);

/*
 * A grpc-status value: the code 0..16 it names, or TAPIR_H2_GRPC_INVALID for anything else (a
 * larger number, a sign, a space, a letter, nothing). Digits only, as gRPC writes it.
 */
int tapir_h2_grpc_status_parse(const char *value, size_t len);
/*
 * The label of a grpc_status: "OK" .. "UNAUTHENTICATED" for 0..16, "UNKNOWN" for
 * TAPIR_H2_GRPC_INVALID (what gRPC's own clients make of a code they do not know), "" for
 * TAPIR_H2_GRPC_NONE. Always one of these 18 strings.
 */
const char *tapir_h2_grpc_status_name(int grpc_status);

#endif
