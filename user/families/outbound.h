/* SPDX-License-Identifier: GPL-2.0 */
/* Requests the watched processes send: tapir_outbound_*, by bounded destination. */
#ifndef TAPIR_OUTBOUND_H
#define TAPIR_OUTBOUND_H

#include <stdint.h>

#include "config.h"
#include "registry.h"
#include "tapir/http.h"

struct tapir_outbound;

/* Families in @r; destinations from @cfg (kept). NULL with errno on failure. */
struct tapir_outbound *tapir_outbound__new(struct tapir_registry *r,
					   const struct tapir_config *cfg);
void tapir_outbound__free(struct tapir_outbound *o);

/* An outbound connection began or ended (TAPIR_REC_CONN_OUT): where its requests go. */
void tapir_outbound__conn(struct tapir_outbound *o, const struct tapir_conn_out_event *e);

/* The destination label of a request to @peer for request line @line (NUL-padded, not
 * terminated): the first outbound.destinations rule that matches, else "other". */
const char *tapir_outbound__destination(const struct tapir_outbound *o,
					const struct tapir_peer_key *peer, const __u8 *line);

/* A request of label set @labels_id (values @labels) sent on connection e->sock
 * (TAPIR_REC_HTTP_OUT). Returns its destination label. */
const char *tapir_outbound__record(struct tapir_outbound *o, const struct tapir_http_event *e,
				   uint32_t labels_id, const char *const *labels);

/* Drop the series of label set @labels_id (values @labels): its cgroups are gone. */
void tapir_outbound__forget(struct tapir_outbound *o, uint32_t labels_id,
			    const char *const *labels);

#endif
