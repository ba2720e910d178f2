// SPDX-License-Identifier: GPL-2.0
/* HTTP/2 and gRPC families: gRPC statuses per deployment, and what HTTP/2 decoding lost. */
#include <errno.h>
#include <stdlib.h>

#include "grpc.h"
#include "grow.h"
#include "h2.h"
#include "h2_track.h"
#include "labels.h"

#define CODES 17 /* 0..16; TAPIR_H2_GRPC_INVALID counts as UNKNOWN (2) */

struct tapir_grpc_metrics {
	struct tapir_family *responses, *lost;
	struct tapir_series **cache; /* CODES per label set */
	size_t n_cache;		     /* label sets in cache */
};

static const char *const lost_reason[TAPIR_H2_LOST_REASONS] = {
	[TAPIR_H2_LOST_FRAMING] = "framing",
	[TAPIR_H2_LOST_STREAMS] = "streams_limit",
	[TAPIR_H2_LOST_UNDECODED] = "undecoded_header_block",
	[TAPIR_H2_LOST_CONNS] = "connections_limit",
	[TAPIR_H2_LOST_BEFORE_START] = "before_start",
	[TAPIR_H2_LOST_UNMATCHED] = "unmatched_response",
};

struct tapir_grpc_metrics *tapir_grpc_metrics__new(struct tapir_registry *r)
{
	struct tapir_grpc_metrics *m = calloc(1, sizeof(*m));
	const char *names[TAPIR_LABELS_MAX];
	static const char *const extra[] = { "grpc_status" };
	size_t n = tapir_labels(names, tapir_label_names, extra, 1);

	if (!m)
		return NULL;
	m->responses = tapir_registry__family(
		r, "tapir_grpc_responses_total",
		"gRPC calls the deployment answered with a grpc-status, by its name (OK, NOT_FOUND, "
		"...); each call once, streaming ones too.",
		TAPIR_COUNTER, names, n, NULL, 0);
	m->lost = tapir_registry__family(
		r, "tapir_http2_lost_total",
		"HTTP/2 streams and header blocks the daemon could not account for, by reason.",
		TAPIR_COUNTER, (const char *const[]){ "reason" }, 1, NULL, 0);
	if (!m->responses || !m->lost) {
		free(m);
		errno = EINVAL;
		return NULL;
	}
	return m;
}

void tapir_grpc_metrics__free(struct tapir_grpc_metrics *m)
{
	if (!m)
		return;
	free(m->cache);
	free(m);
}

void tapir_grpc_metrics__record(struct tapir_grpc_metrics *m, uint32_t labels_id,
				const char *const *labels, int grpc_status)
{
	const char *values[TAPIR_LABELS_MAX], *extra[1];
	struct tapir_series **s;
	size_t n = m->n_cache;
	int code = grpc_status >= 0 && grpc_status < CODES ? grpc_status : 2;

	if (grpc_status == TAPIR_H2_GRPC_NONE)
		return;
	if (labels_id >= n) {
		n = labels_id + 1;
		s = realloc(m->cache, n * CODES * sizeof(*s));
		if (!s)
			return;
		for (size_t i = m->n_cache * CODES; i < n * CODES; i++)
			s[i] = NULL;
		m->cache = s;
		m->n_cache = n;
	}
	s = &m->cache[(size_t)labels_id * CODES + code];
	if (!*s) {
		extra[0] = tapir_h2_grpc_status_name(code);
		tapir_labels(values, labels, extra, 1);
		*s = tapir_series__get(m->responses, values);
		if (!*s)
			return; /* the series cap: counted by the family's overflow */
	}
	tapir_series__add(*s, 1);
}

void tapir_grpc_metrics__set_lost(struct tapir_grpc_metrics *m, const uint64_t *lost)
{
	struct tapir_series *s;
	int i;

	for (i = 0; i < TAPIR_H2_LOST_REASONS; i++) {
		s = tapir_series__get(m->lost, &lost_reason[i]);
		if (s)
			tapir_series__set(s, (double)lost[i]);
	}
}

void tapir_grpc_metrics__forget(struct tapir_grpc_metrics *m, uint32_t labels_id,
				const char *const *labels)
{
	int i;

	(void)labels;
	if (labels_id >= m->n_cache)
		return;
	for (i = 0; i < CODES; i++) {
		struct tapir_series **s = &m->cache[(size_t)labels_id * CODES + i];

		if (*s)
			tapir_series__remove(m->responses, *s);
		*s = NULL;
	}
}
