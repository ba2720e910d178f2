/* SPDX-License-Identifier: GPL-2.0 */
/* HTTP/2 and gRPC families: gRPC statuses per deployment, and what HTTP/2 decoding lost. */
#ifndef TAPIR_GRPC_H
#define TAPIR_GRPC_H

#include <stdint.h>

#include "registry.h"

struct tapir_grpc_metrics;

struct tapir_grpc_metrics *tapir_grpc_metrics__new(struct tapir_registry *r);
void tapir_grpc_metrics__free(struct tapir_grpc_metrics *m);

/* A gRPC response of label set @labels_id (@labels) with @grpc_status (0..16, or 17: a value
 * that is none of them, shown as UNKNOWN as gRPC's clients do). */
void tapir_grpc_metrics__record(struct tapir_grpc_metrics *m, uint32_t labels_id,
				const char *const *labels, int grpc_status);
/* tapir_http2_lost_total, read from user/sources/h2_track.c (TAPIR_H2_LOST_REASONS values). */
void tapir_grpc_metrics__set_lost(struct tapir_grpc_metrics *m, const uint64_t *lost);
/* Drop the series of label set @labels_id. */
void tapir_grpc_metrics__forget(struct tapir_grpc_metrics *m, uint32_t labels_id,
				const char *const *labels);

#endif
