/* SPDX-License-Identifier: GPL-2.0 */
/* Async inference (deployments[].async): is_async, time in queue, queue size and webhooks. */
#ifndef TAPIR_ASYNC_H
#define TAPIR_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"
#include "tapir/http.h"

struct tapir_async;

/* What a request's head said (the mark llm_track keeps for its record). */
#define TAPIR_ASYNC_SEEN   0x1 /* classified from its whole head */
#define TAPIR_ASYNC_JOB	   0x2 /* an async request reaching the model server */
#define TAPIR_ASYNC_SUBMIT 0x4 /* a job submitted to the gateway, counted in the queue */

/* Families in @r, buckets from @cfg. NULL with errno on failure. */
struct tapir_async *tapir_async__new(struct tapir_registry *r, const struct tapir_config *cfg);
void tapir_async__free(struct tapir_async *a);

/*
 * The whole head (@len bytes) of a request that arrived at @arrival_s (seconds since the epoch)
 * in a cgroup of @rule (which has async rules), label set @labels_id (values @labels): a job's
 * time in queue is observed (or counted unknown) and it leaves the queue; a submit enters it.
 * Returns the request's mark (TAPIR_ASYNC_*).
 */
int tapir_async__head(struct tapir_async *a, const struct tapir_async_rule *rule,
		      uint32_t labels_id, const char *const *labels, double arrival_s,
		      const char *head, size_t len);

/*
 * The record of a request of that cgroup, @mark the head's: TAPIR_ASYNC_LOST, the head did not
 * arrive whole; TAPIR_ASYNC_NO_HEAD, none was handed over (a request pipelined behind another in
 * one read). The record's line then decides, and a job's queue time counts unknown ("lost",
 * "not_captured"). Returns the mark: a submit is not an inference (the request families skip
 * it), and one that was not answered 2xx leaves the queue again.
 */
#define TAPIR_ASYNC_LOST    (-1)
#define TAPIR_ASYNC_NO_HEAD (-2)
int tapir_async__record(struct tapir_async *a, const struct tapir_async_rule *rule,
			uint32_t labels_id, const char *const *labels,
			const struct tapir_http_event *e, int mark);

/* An outbound request of that cgroup to destination @dest: a webhook delivery when the rule
 * says so. */
void tapir_async__outbound(struct tapir_async *a, const struct tapir_async_rule *rule,
			   uint32_t labels_id, const char *const *labels,
			   const struct tapir_http_event *e, const char *dest);

/* Drop the series of label set @labels_id (values @labels): its cgroups are gone. */
void tapir_async__forget(struct tapir_async *a, uint32_t labels_id, const char *const *labels);

/*
 * An enqueue time field's value (@len bytes): "t=" and seconds with a fraction (the
 * X-Request-Start convention), or a bare number, the unit decided by magnitude: below 1e11
 * seconds, below 1e14 milliseconds, below 1e17 microseconds, below 1e20 nanoseconds, since the
 * epoch. Sets *@epoch_s; returns 0, or -EINVAL for anything else.
 */
int tapir_async_enqueue_time(const char *value, size_t len, double *epoch_s);

/*
 * The value of field @name (case-insensitive) in head @head (@len bytes: a request line, then
 * fields), without its surrounding blanks: a pointer into @head, its length in *@vlen; NULL when
 * absent. The first of several wins.
 */
const char *tapir_head_field(const char *head, size_t len, const char *name, size_t *vlen);

#endif
