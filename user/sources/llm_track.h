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

/* Bytes of one request's head kept for its parser at most (llm.request_head_bytes). */
struct tapir_llm_track *tapir_llm_track__new(size_t request_head_bytes, tapir_llm_done_fn done,
					     void *ctx);
void tapir_llm_track__free(struct tapir_llm_track *t);

/*
 * One record of the llm_events ring (struct tapir_llm_chunk and its data): a request that is
 * new is in flight from here. Returns 0, or -EINVAL for a record too short for its header.
 */
int tapir_llm_track__chunk(struct tapir_llm_track *t, const void *data, size_t size);

/*
 * The request record of LLM request @e (e->llm_id != 0): after every piece of it (the caller
 * drains llm_events first). Its result goes to the done callback unless @count is false (a path
 * another rule asked for), then it is forgotten.
 */
void tapir_llm_track__record(struct tapir_llm_track *t, const struct tapir_http_event *e,
			     bool count);

/* Requests whose record never came (lost with a full ring) are dropped after @idle_ns without a
 * piece; each counts as unparsed, reason "lost". */
void tapir_llm_track__expire(struct tapir_llm_track *t, uint64_t now_ns, uint64_t idle_ns);

/* Each request in flight: its label set and cgroup, for baseten_llm_num_requests. */
void tapir_llm_track__each(const struct tapir_llm_track *t,
			   void (*fn)(void *ctx, uint32_t labels_id, uint64_t cgroup_id),
			   void *ctx);
size_t tapir_llm_track__in_flight(const struct tapir_llm_track *t);

#endif
