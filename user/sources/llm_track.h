/* SPDX-License-Identifier: GPL-2.0 */
/* LLM requests in flight: the kernel's payload pieces, put back together and parsed. */
#ifndef TAPIR_LLM_TRACK_H
#define TAPIR_LLM_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm.h"

struct tapir_http_event;
struct tapir_llm_track;

/* A request is over: its label set and cgroup as the kernel recorded them, and what it said. */
typedef void (*tapir_llm_done_fn)(void *ctx, uint32_t labels_id, uint64_t cgroup_id,
				  const struct tapir_llm_result *res);

/*
 * A request's head (request line and fields, @len bytes, NUL-terminated) arrived whole and with
 * no gap, at @start_ns: LLM requests and head-only ones (TAPIR_API_HEAD, async rules) alike.
 * What it returns (0..255) is the request's mark until its record (tapir_llm_track__mark()).
 */
typedef int (*tapir_llm_head_fn)(void *ctx, uint32_t labels_id, uint64_t cgroup_id,
				 uint64_t start_ns, const char *head, size_t len);

/* Bytes of one request's head kept for its parser at most (llm.request_head_bytes); @head may
 * be NULL. */
struct tapir_llm_track *tapir_llm_track__new(size_t request_head_bytes, tapir_llm_done_fn done,
					     tapir_llm_head_fn head, void *ctx);
void tapir_llm_track__free(struct tapir_llm_track *t);

/*
 * One record of the llm_events ring (struct tapir_llm_chunk and its data): a request that is
 * new is in flight from here. Returns 0, or -EINVAL for a record too short for its header.
 */
int tapir_llm_track__chunk(struct tapir_llm_track *t, const void *data, size_t size);

/*
 * The mark the head callback gave request @e (e->llm_id != 0), or -1 when its head did not
 * arrive whole (lost pieces, a gap, too long) or it is not followed.
 */
int tapir_llm_track__mark(const struct tapir_llm_track *t, const struct tapir_http_event *e);

/*
 * The request record of LLM request @e (e->llm_id != 0): after every piece of it (the caller
 * drains llm_events first). Its result goes to the done callback unless @count is false (a path
 * another rule asked for, or a head-only request), then it is forgotten.
 */
void tapir_llm_track__record(struct tapir_llm_track *t, const struct tapir_http_event *e,
			     bool count);

/*
 * Requests with no piece for @idle_ns whose connection no longer holds them (@alive says, for
 * the request (@sock, @id, @start_ns); NULL: none does) are dropped, each unparsed "lost": their
 * record was lost with a full ring, or their connection was given up on (a parse failure).
 */
typedef bool (*tapir_llm_alive_fn)(void *ctx, uint64_t sock, uint32_t id, uint64_t start_ns);
void tapir_llm_track__expire(struct tapir_llm_track *t, uint64_t now_ns, uint64_t idle_ns,
			     tapir_llm_alive_fn alive, void *ctx);

/* Requests followed at once at most: beyond, a new one is not (its record counts it "lost"). */
#define TAPIR_LLM_TRACK_MAX 8192

/* Each LLM request in flight (not head-only ones): its label set and cgroup, for
 * baseten_llm_num_requests. */
void tapir_llm_track__each(const struct tapir_llm_track *t,
			   void (*fn)(void *ctx, uint32_t labels_id, uint64_t cgroup_id),
			   void *ctx);
/* Requests followed now, head-only ones included. */
size_t tapir_llm_track__in_flight(const struct tapir_llm_track *t);

#endif
