/* SPDX-License-Identifier: GPL-2.0 */
/* The reference's request families, fed one record per completed request. */
#ifndef TAPIR_HTTP_METRICS_H
#define TAPIR_HTTP_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "tapir/http.h"
#include "config.h"
#include "registry.h"

struct tapir_http_metrics;

struct tapir_http_metrics *tapir_http_metrics__new(struct tapir_registry *r,
						   const struct tapir_config *cfg);
void tapir_http_metrics__free(struct tapir_http_metrics *m);

/*
 * Account one request under label set @labels_id, whose TAPIR_L_COUNT values are @labels: the
 * cgroup's label set now, not the one its connection started with (the environment may have
 * been read since). @is_async: an async job (deployments[].async), for the is_async label.
 */
void tapir_http_metrics__record(struct tapir_http_metrics *m, const struct tapir_http_event *e,
				bool is_async, uint32_t labels_id, const char *const *labels);

/* Add @a, what the kernel aggregated for series (@labels_id, @status) since the last read
 * (include/tapir/agg.h): its buckets are those of the config, each followed by +Inf. */
void tapir_http_metrics__merge(struct tapir_http_metrics *m, uint32_t labels_id,
			       const char *const *labels, uint16_t status,
			       const struct tapir_agg *a);

/* Set baseten_concurrent_requests and baseten_ongoing_websocket_connections for label set
 * @labels_id (@labels), whose series are remembered until it is forgotten. */
void tapir_http_metrics__set_gauges(struct tapir_http_metrics *m, uint32_t labels_id,
				    const char *const *labels, double inflight, double websockets);

/* Drop every series of label set @labels_id (its cgroups are gone). */
void tapir_http_metrics__forget(struct tapir_http_metrics *m, uint32_t labels_id,
				const char *const *labels);

#endif
