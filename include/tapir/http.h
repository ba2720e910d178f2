/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Map and ring-buffer layouts shared by bpf/http.bpf.c and the daemon. */
#ifndef TAPIR_HTTP_H
#define TAPIR_HTTP_H

/* Includes nothing: see http_parse.h. Fixed-width fields and explicit padding only, so that
 * bpftool can print every map with BTF and the two sides never disagree on a layout. */
#include "http_parse.h"

#define TAPIR_MAX_PENDING 4  /* pipelined requests remembered per connection; power of two */
#define TAPIR_LINE_BYTES  32 /* bytes of each request line kept (method and path prefix) */

/* struct tapir_conn.state */
#define TAPIR_CONN_NEW	    0 /* established, nothing read yet */
#define TAPIR_CONN_HTTP	    1 /* speaking HTTP/1.x, being parsed */
#define TAPIR_CONN_IGNORED  2 /* not HTTP/1.x (TLS, HTTP/2, other): never parsed again */
#define TAPIR_CONN_UPGRADED 3 /* left HTTP/1.x through 101 Switching Protocols */
#define TAPIR_CONN_H2	    4 /* sent the HTTP/2 preface: its frames go to h2_events */

/* struct tapir_conn.flags */
/* 0x01: free (the peer's going is struct tapir_conn.peer_gone, a word of its own) */
#define TAPIR_CF_SPOKE_HTTP  0x02 /* a whole request line was seen: this is HTTP/1.x */
#define TAPIR_CF_NO_MORE_REQ 0x04 /* an ambiguous request: later bytes are not requests */
#define TAPIR_CF_PRESTART    0x08 /* open before tapir started: maybe mid-request (seeded) */
#define TAPIR_CF_CLIENT	     0x10 /* this side connected out: its writes are requests */
#define TAPIR_CF_UNTRACKED   0x20 /* a reserved slot: one read of a connection without an entry */
#define TAPIR_CF_HEADS \
	0x40 /* its cgroup has TAPIR_CGI_HEADS: every request's head is handed over */
#define TAPIR_CF_UPGRADE_SEEN \
	0x80 /* TAPIR_CONN_UPGRADED: the first bytes after the 101 were looked at (h2c or not) */

/* Outcome of a request (struct tapir_http_event.outcome). */
#define TAPIR_OUT_COMPLETE     0 /* response complete */
#define TAPIR_OUT_CLIENT_ABORT 1 /* client went away before the response was complete */
#define TAPIR_OUT_SERVER_ABORT 2 /* server closed or died without completing a response */
#define TAPIR_OUT_UPGRADED     3 /* answered 101, the connection left HTTP/1.x */

/* A connection is its socket: the kernel address of its struct sock, whatever fds (dup2,
 * fork) or syscalls reach it. Only the kernel side makes keys; the daemon reads them back. */
struct tapir_conn_key {
	__u64 sock;
};

/* One server-side connection: two parsers and the queue of requests not yet answered. */
struct tapir_conn {
	struct tapir_http_parser req;
	struct tapir_http_parser resp;
	__u64 start_ns[TAPIR_MAX_PENDING];  /* first byte of each pending request */
	__u64 req_bytes[TAPIR_MAX_PENDING]; /* bytes of each pending request */
	__u64 first_byte_ns;		    /* first byte of the answer to the oldest request */
	__u64 resp_bytes;		    /* bytes of that answer so far */
	__u64 cgroup_id;
	__u32 labels_id;
	__u8 method[TAPIR_MAX_PENDING];
	/* The start of each pending request line, as read: enough for the daemon to tell
	 * readiness probes (and, later, routes) apart. NUL-padded, not NUL-terminated. */
	__u8 line[TAPIR_MAX_PENDING][TAPIR_LINE_BYTES];
	__u8 head;  /* index of the oldest pending request */
	__u8 count; /* pending requests */
	__u8 state; /* TAPIR_CONN_* */
	__u8 flags; /* TAPIR_CF_* */
	__u32 tgid; /* the process that last read or wrote it */
	/* LLM API requests (bpf/http.bpf.c, "LLM payload"): each pending request's number on
	 * this connection, 0 for any other request, and the path table entry it matched. */
	__u32 llm_id[TAPIR_MAX_PENDING];
	__u8 llm_api[TAPIR_MAX_PENDING];
	__u32 llm_next;	   /* LLM requests numbered so far */
	__u32 llm_in_id;   /* the LLM request whose bytes reads still hand over; 0: none */
	__u32 llm_in_off;  /* bytes of it handed over or lost so far */
	__u32 llm_out_off; /* bytes of the oldest request's answer handed over or lost so far */
	/* The socket-buffer hooks: the sequence number of the next byte each way (TAPIR_DIR_*),
	 * where seq_ok has bit 1 << dir. */
	__u32 seq[2];
	__u8 seq_ok;
	/* The oldest request was answered before its own last byte was read (a server that
	 * answers a POST from its head, then reads and drops the body): its record waits for
	 * that byte, with the answer's end and status (tapir_conn_settle()). */
	__u8 answered;
	__u16 answered_status;
	__u32 walker; /* CPU number + 1 of the one walking a segment of it (skb_claim_try()) */
	/* The peer went away (its FIN or reset, or a read of EOF, ECONNRESET or EPIPE). Set by
	 * whichever CPU sees it, outside the walk's claim: a word of its own, since a bit of
	 * flags, which the walker rewrites, could be lost between the two. */
	__u32 peer_gone;
	__u64 sock;	   /* its key: records name their connection */
	__u64 answered_ns; /* the end of that answer */
};

/* Requests of @c in flight, for the gauges: an answered one whose body is still read is not. */
TAPIR_INLINE __u32 tapir_conn_in_flight(const struct tapir_conn *c)
{
	return c->count - (c->count && c->answered);
}

/* Where an event happened inside the syscall segment being parsed (include/tapir/conn.h). */
struct tapir_conn_pos {
	__u64 off;  /* segment offset just past the byte that produced the event */
	__u64 mark; /* segment offset up to which bytes were attributed */
	__u64 ts;   /* syscall entry: the time of a response's first byte */
	__u64 now;  /* syscall exit */
};

/*
 * Key of own_clients: the address and port of a connection tapir itself made to a server it
 * watches (an engine scrape), as the server sees its peer. IPv4 in addr[0..3], the rest 0; an
 * IPv4 peer of a dual-stack socket (::ffff:a.b.c.d) is written as IPv4 by both sides.
 */
struct tapir_peer_key {
	__u8 addr[16];
	__u16 port;   /* host order */
	__u16 family; /* AF_INET or AF_INET6 */
	__u32 __pad;
};

/* Value of the watched_cgroups map, keyed by cgroup v2 id: written by the daemon only. What is
 * in flight lives in the conns map, per connection. */
struct tapir_cgroup_info {
	__u32 labels_id; /* the daemon's label set for this cgroup, as it stands now */
	__u32 flags;	 /* TAPIR_CGI_* */
};

#define TAPIR_CGI_NO_LLM 0x1 /* its rule turned LLM payload capture off */
#define TAPIR_CGI_HEADS	 0x2 /* its rule has async rules: every request's head is handed over */

/* Ring-buffer record types: every record starts with a __u32 type. */
#define TAPIR_REC_HTTP	    1
#define TAPIR_REC_LIFECYCLE 2
#define TAPIR_REC_LLM	    3 /* struct tapir_llm_chunk, in the llm_events ring */
#define TAPIR_REC_HTTP_OUT  4 /* struct tapir_http_event of a request this side sent */
#define TAPIR_REC_CONN_OUT \
	5 /* struct tapir_conn_out_event: an outbound connection began or ended */

#define TAPIR_REC_H2 6 /* struct tapir_h2_rec, in the h2_events ring */

struct tapir_http_event {
	__u32 type; /* TAPIR_REC_HTTP */
	__u32 labels_id;
	__u64 cgroup_id;
	__u64 start_ns;	     /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 first_byte_ns; /* 0 when no response byte was written */
	__u64 end_ns;
	__u64 req_bytes;
	__u64 resp_bytes;
	__u32 tgid;
	__u16 status;		     /* from the status line; 0 when none was written */
	__u8 method;		     /* TP_M_* */
	__u8 outcome;		     /* TAPIR_OUT_* */
	__u8 line[TAPIR_LINE_BYTES]; /* start of the request line, NUL-padded */
	__u64 sock;		     /* the connection (struct tapir_conn_key) */
	__u32 llm_id;		     /* an LLM API request: its number on the connection; else 0 */
	__u32 llm_out; /* bytes of its answer the payload capture saw: handed over or lost */
};

/*
 * LLM payload: the bytes of LLM API requests (a POST whose path is in the loader's table) and of
 * their answers, in pieces of up to TAPIR_LLM_CHUNK bytes, through the llm_events ring, for the
 * daemon's token parsers (user/sources/llm_track.c). A request is (sock, id, start_ns): the next
 * connection may reuse a socket's memory and numbers from 1 again. Its record in the events ring
 * carries the same three and comes after its last piece.
 */
#define TAPIR_DIR_IN	     0	   /* the server reads: request bytes */
#define TAPIR_DIR_OUT	     1	   /* the server writes: response bytes */
#define TAPIR_LLM_PATHS	     24	   /* entries of the path table */
#define TAPIR_LLM_PATH_WORDS 3	   /* bytes of a path compared: 8 each */
#define TAPIR_LLM_CHUNK	     16384 /* bytes of one piece at most; a power of two */
/* The API of a request numbered only for its head (a cgroup with TAPIR_CGI_HEADS): its bytes go
 * over until its head is complete, at most TAPIR_HEAD_BYTES; its answer's never. */
#define TAPIR_LLM_F_CLIENT 0x1 /* struct tapir_llm_chunk.flags: a request this side sent */
#define TAPIR_API_HEAD	   0xff
#define TAPIR_HEAD_BYTES   16384

struct tapir_llm_chunk {
	__u32 type; /* TAPIR_REC_LLM */
	__u32 id;   /* the request's number on its connection */
	__u64 sock; /* the connection (struct tapir_conn_key) */
	__u64 cgroup_id;
	__u64 start_ns; /* the request's first byte */
	__u64 ts;	/* when these bytes moved: a write's entry, a read's exit */
	__u32 off;	/* bytes of this direction of the request before data[0]: handed or lost */
	__u32 len;	/* bytes in data */
	__u32 labels_id;
	__u8 dir;   /* TAPIR_DIR_IN: the request, from its line; OUT: the answer */
	__u8 api;   /* the path table entry's API (enum tapir_llm_api) */
	__u8 flags; /* TAPIR_LLM_F_* */
	__u8 __pad;
	/* data[len] follows */
};

/*
 * An outbound connection of a watched cgroup: its server, when it was established (begin 1), and
 * its end (begin 0), so that the daemon knows where a TAPIR_REC_HTTP_OUT record on it went.
 */
struct tapir_conn_out_event {
	__u32 type; /* TAPIR_REC_CONN_OUT */
	__u32 begin;
	__u64 sock;
	struct tapir_peer_key peer;
};

/*
 * HTTP/2 (h2c with prior knowledge): the kernel walks each direction's frames by their lengths
 * (include/tapir/h2_frame.h) and hands the daemon, through the h2_events ring and in order, what
 * user/sources/h2.c needs: header block fragments (at most TAPIR_H2_BLOCK_BYTES of one block;
 * beyond, the block is cut and counted), DATA byte counts, END_STREAM, RST_STREAM and GOAWAY. The
 * payload of DATA frames never leaves the kernel.
 */
#define TAPIR_H2R_BLOCK	 1 /* data[len]: a header block fragment; flags: TAPIR_H2R_F_* */
#define TAPIR_H2R_DATA	 2 /* value: DATA payload bytes; flags: END_STREAM */
#define TAPIR_H2R_RST	 3 /* value: error code */
#define TAPIR_H2R_GOAWAY 4 /* value: last stream id, value2: error code */
#define TAPIR_H2R_ERROR	 5 /* frames lost (value: TH2_ERR_*; 0: not walked): the end */
#define TAPIR_H2R_CLOSE	 6 /* the connection ended */
/* A connection began: one still held at its address is over; value: TAPIR_H2_OPEN_UPGRADE for
 * an h2c upgrade. */
#define TAPIR_H2R_OPEN 7

#define TAPIR_H2_OPEN_UPGRADE  1 /* began after a 101 (h2c): stream 1 is the upgraded request */
#define TAPIR_H2_OPEN_PRESTART 2 /* open before tapir started: picked up at a frame, mid-way */
/* Began after a 101 at the client's preface: the server's first frames went with its 101 (or
 * after a read), stream 1's answer may be among them, and stream 1 is not followed. */
#define TAPIR_H2_OPEN_UPGRADE_LATE 3

#define TAPIR_H2R_F_END_HEADERS 0x01 /* the same values as user/sources/h2.h's */
#define TAPIR_H2R_F_END_STREAM	0x02
#define TAPIR_H2R_F_PUSH	0x04
#define TAPIR_H2R_F_LOST	0x80 /* some of this direction's header block bytes were lost */

#define TAPIR_H2_BLOCK_BYTES 16384 /* bytes of one header block handed over; a power of two */

struct tapir_h2_rec {
	__u32 type; /* TAPIR_REC_H2 */
	__u32 labels_id;
	__u64 sock; /* the connection (struct tapir_conn_key) */
	__u64 cgroup_id;
	__u64 ts; /* a read's exit, a write's entry */
	__u32 stream_id;
	__u32 value;
	__u32 value2;
	__u32 len; /* bytes in data */
	__u32 tgid;
	__u8 kind;  /* TAPIR_H2R_* */
	__u8 dir;   /* TAPIR_DIR_IN: the client's frames; OUT: the server's */
	__u8 flags; /* TAPIR_H2R_F_* */
	__u8 __pad;
	/* data[len] follows */
};

/* struct tapir_lifecycle_event.what */
#define TAPIR_LC_MKDIR	1 /* a cgroup appeared (aux: level) */
#define TAPIR_LC_RMDIR	2 /* a cgroup went away */
#define TAPIR_LC_EXEC	3 /* a process of a watched cgroup exec'd */
#define TAPIR_LC_EXIT	4 /* a process of a watched cgroup exited (code: wait status) */
#define TAPIR_LC_LISTEN 5 /* a TCP socket started (aux 1) or stopped (aux 0) listening */

#define TAPIR_LC_F_OOM 0x100 /* with TAPIR_LC_EXIT: the OOM killer chose it */

struct tapir_lifecycle_event {
	__u32 type; /* TAPIR_REC_LIFECYCLE */
	__u32 what; /* TAPIR_LC_* */
	__u64 cgroup_id;
	__u32 tgid;
	__s32 code; /* exit: wait status; listen: local port */
	__u32 aux;
	__u32 __pad;
};

/* Indices of the per-CPU stats array: everything the kernel side could not record. */
#define TAPIR_STAT_RINGBUF_LOST	     0	/* records dropped: ring buffer full */
#define TAPIR_STAT_CONN_TABLE_FULL   1	/* connections not tracked: conns map full */
#define TAPIR_STAT_PARSE_REQUEST     2	/* request framing errors on HTTP connections */
#define TAPIR_STAT_PARSE_RESPONSE    3	/* response framing errors */
#define TAPIR_STAT_IGNORED_NOT_TCP   4	/* request lines read from sockets that are not TCP */
#define TAPIR_STAT_IGNORED_NOT_HTTP  5	/* TCP connections whose first bytes are not HTTP/1.x */
#define TAPIR_STAT_IGNORED_TLS	     6	/* ... that start a TLS handshake */
#define TAPIR_STAT_IGNORED_HTTP2     7	/* HTTP/2 not followed (no h2_more), or no frame back */
#define TAPIR_STAT_PENDING_OVERFLOW  8	/* pipelined requests beyond TAPIR_MAX_PENDING */
#define TAPIR_STAT_IO_TABLE_FULL     9	/* syscalls not followed: in-flight syscall map full */
#define TAPIR_STAT_READ_FAULT	     10 /* user buffers that could not be read */
#define TAPIR_STAT_SCAN_LIMIT	     11 /* syscalls longer than the per-syscall scan budget */
#define TAPIR_STAT_STRAY_RESPONSE    12 /* response bytes with no request seen */
#define TAPIR_STAT_CONN_REPLACED     13 /* a socket address reused without a close we saw */
#define TAPIR_STAT_UPGRADED	     14 /* connections that left HTTP/1.x through 101 */
#define TAPIR_STAT_AMBIGUOUS_REQUEST 15 /* Content-Length with chunked: parsing stops there */
#define TAPIR_STAT_REQ_UNTRACKED     16 /* requests on connections the conns map had no room for */
#define TAPIR_STAT_BEFORE_START	     17 /* answers to requests that began before tapir started */
#define TAPIR_STAT_AGG_FULL	     18 /* requests sent as records: no room in http_agg for their series */
#define TAPIR_STAT_IGNORED_SELF	     19 /* connections from tapir itself (its engine scrapes) */
#define TAPIR_STAT_LLM_DROPPED	     20 /* LLM payload bytes not handed over: llm_events full */
#define TAPIR_STAT_LLM_CAP	     21 /* ... past llm.response_bytes of one answer */
#define TAPIR_STAT_LLM_UNREADABLE    22 /* ... that could not be read (sendfile, a fault) */
#define TAPIR_STAT_IGNORED_OUTBOUND  23 /* outbound connections not HTTP/1.x (TLS, a database) */
#define TAPIR_STAT_H2_UNTRACKED	     24 /* HTTP/2 connections: no room in h2_conns */
#define TAPIR_STAT_H2_FRAMING	     25 /* ... whose frames were lost (a framing error, scan limit) */
#define TAPIR_STAT_H2_RINGBUF	     26 /* HTTP/2 records dropped: h2_events full */
#define TAPIR_STAT_H2_BLOCK_CAP	     27 /* header blocks cut at TAPIR_H2_BLOCK_BYTES, or unreadable */
#define TAPIR_STAT_H2_PRESTART	     28 /* HTTP/2 connections open before tapir started */
#define TAPIR_STAT_SEGMENT_GAP	     29 /* connections left: a segment came after bytes not seen */
#define TAPIR_STAT_SEGMENT_BUSY	     30 /* segments not walked: another CPU held their connection */
#define TAPIR_STAT_MAX		     31

#include "agg.h"

/*
 * The layouts above are an ABI between two compilers (clang -target bpf, gcc) and what bpftool
 * prints: checked on both sides, so that a field added on one side without padding fails the
 * build instead of shifting every field after it.
 */
#define TAPIR_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " layout")
#define TAPIR_ASSERT_OFF(type, field, off) \
	_Static_assert(__builtin_offsetof(type, field) == (off), #type "." #field " offset")
TAPIR_ASSERT_SIZE(struct tapir_conn_key, 8);
TAPIR_ASSERT_SIZE(struct tapir_http_parser, 32);
TAPIR_ASSERT_SIZE(struct tapir_conn_pos, 32);
TAPIR_ASSERT_SIZE(struct tapir_conn, 368);
TAPIR_ASSERT_OFF(struct tapir_conn, answered_ns, 360);
TAPIR_ASSERT_OFF(struct tapir_conn, llm_id, 296);
TAPIR_ASSERT_SIZE(struct tapir_llm_chunk, 56);
TAPIR_ASSERT_OFF(struct tapir_conn, cgroup_id, 144);
TAPIR_ASSERT_OFF(struct tapir_conn, line, 160);
TAPIR_ASSERT_OFF(struct tapir_conn, head, 288);
TAPIR_ASSERT_SIZE(struct tapir_cgroup_info, 8);
TAPIR_ASSERT_OFF(struct tapir_conn, tgid, 292);
TAPIR_ASSERT_SIZE(struct tapir_http_event, 112);
TAPIR_ASSERT_OFF(struct tapir_http_event, line, 64);
TAPIR_ASSERT_SIZE(struct tapir_lifecycle_event, 32);
TAPIR_ASSERT_SIZE(struct tapir_agg_key, 16);
TAPIR_ASSERT_SIZE(struct tapir_peer_key, 24);
TAPIR_ASSERT_SIZE(struct tapir_conn_out_event, 40);
TAPIR_ASSERT_SIZE(struct tapir_h2_rec, 56);
TAPIR_ASSERT_SIZE(struct tapir_agg, 16 + 4 * 8 * (TAPIR_AGG_BOUNDS + 2));

#endif /* TAPIR_HTTP_H */
