/* SPDX-License-Identifier: GPL-2.0 */
/* HTTP/2 connections as the kernel walks them: its records in, one request per stream out. */
#ifndef TAPIR_H2_TRACK_H
#define TAPIR_H2_TRACK_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "tapir/http.h"
#include "h2.h"

/*
 * The h2_events ring (bpf/http.bpf.c, "HTTP/2") carries, per connection and in order, header
 * block fragments, DATA byte counts, END_STREAM, RST_STREAM, GOAWAY and the connection's end.
 * Each connection gets a struct tapir_h2_conn (h2.c), fed as the records come, and each stream
 * the client opens ends in one result, handed to the caller with who served it.
 */

/* Where a stream was served. */
struct tapir_h2_who {
	uint64_t sock;
	uint64_t cgroup_id;
	uint32_t labels_id;
	uint32_t tgid;
};

/* What the daemon loses of HTTP/2 (tapir_http2_lost_total's reasons). */
enum {
	TAPIR_H2_LOST_FRAMING, /* streams open when their connection's frames (or end) were lost */
	TAPIR_H2_LOST_STREAMS, /* streams beyond TAPIR_H2_MAX_STREAMS open on a connection */
	TAPIR_H2_LOST_UNDECODED,    /* header blocks not decoded in full (HPACK state unknown) */
	TAPIR_H2_LOST_CONNS,	    /* connections beyond the table's room */
	TAPIR_H2_LOST_BEFORE_START, /* streams of a connection picked up mid-way that had begun */
	TAPIR_H2_LOST_UNMATCHED,    /* answers to streams whose request block never came */
	TAPIR_H2_LOST_REASONS,
};

typedef void (*tapir_h2_track_fn)(void *ctx, const struct tapir_h2_who *who,
				  const struct tapir_h2_result *r);

struct tapir_h2_track;

/* NULL with errno set. @max_conns: connections followed at most. */
struct tapir_h2_track *tapir_h2_track__new(size_t max_conns, tapir_h2_track_fn done, void *ctx);
void tapir_h2_track__free(struct tapir_h2_track *t);

/* One record of the ring (struct tapir_h2_rec and its data); 0, or -EINVAL for a short one. */
int tapir_h2_track__record(struct tapir_h2_track *t, const void *data, size_t size);

/* Open streams per connection, for the in-flight gauge: @fn(ctx, cgroup_id, n) for each. */
void tapir_h2_track__inflight(const struct tapir_h2_track *t,
			      void (*fn)(void *ctx, uint64_t cgroup_id, size_t n), void *ctx);

/* Losses so far, by TAPIR_H2_LOST_*. */
void tapir_h2_track__lost(const struct tapir_h2_track *t, uint64_t *lost);
size_t tapir_h2_track__conns(const struct tapir_h2_track *t);
/* Whether the connection at @sock is followed (held in the table). */
int tapir_h2_track__follows(struct tapir_h2_track *t, uint64_t sock);

/*
 * The request record a finished stream stands for, in the request families: its :status when
 * the server ended it, 499 (TAPIR_OUT_CLIENT_ABORT) when the client reset it, 502
 * (TAPIR_OUT_SERVER_ABORT) when the server reset it, refused it by GOAWAY or the connection
 * ended first; the sizes are DATA payload bytes; TTFB is the first response HEADERS or DATA.
 * The line is "METHOD PATH", cut at TAPIR_LINE_BYTES.
 */
void tapir_h2_track__event(const struct tapir_h2_who *who, const struct tapir_h2_result *r,
			   struct tapir_http_event *e);

#endif
