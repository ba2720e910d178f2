/* SPDX-License-Identifier: GPL-2.0 */
/* What the kernel aggregated per series (the http_agg map), read as changes since the last read. */
#ifndef TAPIR_HTTP_AGG_H
#define TAPIR_HTTP_AGG_H

#include <stdint.h>
#include <linux/types.h>

#include "tapir/http.h"

struct tapir_http_agg;

/* A series that changed: @delta holds what it gained since the last read, and last_ns the end
 * of its latest request. */
typedef void (*tapir_http_agg_fn)(void *ctx, const struct tapir_agg_key *key,
				  const struct tapir_agg *delta);

/* The reader of map @fd (a per-CPU hash of struct tapir_agg over @ncpus possible CPUs); NULL
 * with errno set when out of memory. */
struct tapir_http_agg *tapir_http_agg__new(int fd, int ncpus);
void tapir_http_agg__free(struct tapir_http_agg *a);

/* Read every series, calling @fn for each that changed. Returns the series read or -errno. */
int tapir_http_agg__read(struct tapir_http_agg *a, tapir_http_agg_fn fn, void *ctx);

/*
 * Delete the series of label set @labels_id from the map (its cgroups are gone), each after a
 * last read that hands @fn what it gained. Returns the series deleted.
 */
int tapir_http_agg__forget(struct tapir_http_agg *a, uint32_t labels_id, tapir_http_agg_fn fn,
			   void *ctx);

/* The per-CPU values of one series summed into @sum, taking the latest last_ns. */
void tapir_agg_sum(struct tapir_agg *sum, const struct tapir_agg *percpu, int ncpus);

/* @delta = @now - @before, field by field (last_ns: @now's). Returns whether anything grew. */
int tapir_agg_delta(struct tapir_agg *delta, const struct tapir_agg *now,
		    const struct tapir_agg *before);

#endif
