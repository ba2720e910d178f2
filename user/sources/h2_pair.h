/* SPDX-License-Identifier: GPL-2.0 */
/* h2c upgrades: the HTTP/1.1 request that asked for one, paired with its answer on stream 1. */
#ifndef TAPIR_H2_PAIR_H
#define TAPIR_H2_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "tapir/http.h"
#include "h2_track.h"

/*
 * A request answered 101 comes as a record of the events ring; if the connection then turns
 * out to be HTTP/2 (an h2c upgrade: the kernel's TAPIR_H2R_OPEN with TAPIR_H2_OPEN_UPGRADE), the
 * answer to that same request comes, when it is over, as stream 1 of h2_events
 * (TAPIR_H2_R_UPGRADE). The 101 is held here until its stream 1 ends, then both go out as one
 * request: the HTTP/1.1 request's start, method, path and size with stream 1's status, first
 * byte, end and answer size. A 101 whose connection did not turn to HTTP/2 within
 * TAPIR_H2_PAIR_HOLD_MS (a WebSocket) goes out as the 101 it was; a stream 1 whose 101 record
 * never came goes out as the stream it is. The rings are read in either order: each half waits
 * for the other.
 */
#define TAPIR_H2_PAIR_HOLD_MS 1000
/* A 101 whose connection turned to HTTP/2 waits this long at most for its stream 1's end. */
#define TAPIR_H2_PAIR_OPEN_MS (3600 * 1000)

/* One request to count: @r is stream 1's result when there is one (for gRPC), else NULL. */
typedef void (*tapir_h2_pair_fn)(void *ctx, const struct tapir_http_event *e,
				 const struct tapir_h2_result *r);

struct tapir_h2_pair;

/* NULL with errno set. @cap: halves held at most; to make room the oldest goes, alone, or
 * uncounted if it is a 101 whose stream 1 will count by itself. */
struct tapir_h2_pair *tapir_h2_pair__new(size_t cap, tapir_h2_pair_fn emit, void *ctx);
void tapir_h2_pair__free(struct tapir_h2_pair *p);

/* The kernel's TAPIR_H2R_OPEN with TAPIR_H2_OPEN_UPGRADE: @sock turned to HTTP/2 after a 101. */
void tapir_h2_pair__open(struct tapir_h2_pair *p, uint64_t sock, uint64_t now_ms);
/*
 * The HTTP/2 connection at @sock is over or no longer followed (its end, its frames lost, a new
 * connection at its address, no room to follow it): a 101 still held for its stream 1 goes,
 * uncounted, since that stream was reported already or counted lost by h2_track.
 */
void tapir_h2_pair__end(struct tapir_h2_pair *p, uint64_t sock);
/* A request record whose outcome is TAPIR_OUT_UPGRADED. */
void tapir_h2_pair__request(struct tapir_h2_pair *p, const struct tapir_http_event *e,
			    uint64_t now_ms);
/* Stream 1 of an h2c upgrade (r->flags has TAPIR_H2_R_UPGRADE), over. */
void tapir_h2_pair__stream(struct tapir_h2_pair *p, const struct tapir_h2_who *who,
			   const struct tapir_h2_result *r, uint64_t now_ms);
/* Halves held past their time go out alone (an h2c connection's mark alone is dropped); all
 * with @all. */
void tapir_h2_pair__expire(struct tapir_h2_pair *p, uint64_t now_ms, int all);
size_t tapir_h2_pair__held(const struct tapir_h2_pair *p);

#endif
