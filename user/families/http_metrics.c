// SPDX-License-Identifier: GPL-2.0
/* Request families of the reference metric set, with a cache from record to series. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "http_metrics.h"
#include "labels.h"

enum { F_REQUESTS, F_E2E, F_TTFB, F_REQ_SIZE, F_RESP_SIZE, F_COUNT };

/* The request families' own labels, after deployment_id as in the reference. */
static const char *const req_extra[] = { "status_code", "is_async" };

/* Series of one (label set, status) pair, so a record costs no string hashing. */
struct slot {
	uint64_t key; /* (labels_id + 1) << 17 | is_async << 16 | status label code; 0 = empty */
	struct tapir_series *s[F_COUNT];
};

/* The gauges of one label set, so that a scrape sets them without a lookup. */
struct gauges {
	struct tapir_series *inflight, *websockets;
};

struct tapir_http_metrics {
	struct tapir_family *f[F_COUNT];
	struct tapir_family *inflight;
	struct tapir_family *websockets;
	struct slot *slots;
	size_t n_slots, used;
	struct gauges *gauges; /* by labels_id */
	size_t n_gauges;
};

struct tapir_http_metrics *tapir_http_metrics__new(struct tapir_registry *r,
						   const struct tapir_config *cfg)
{
	struct tapir_http_metrics *m = calloc(1, sizeof(*m));
	const char *req_labels[TAPIR_LABELS_MAX], *dep_labels[TAPIR_LABELS_MAX];
	size_t nl = tapir_labels(req_labels, tapir_label_names, req_extra, 2);
	size_t nd = tapir_labels(dep_labels, tapir_label_names, NULL, 0);

	if (!m)
		return NULL;
	m->f[F_REQUESTS] = tapir_registry__family(r, "baseten_inference_requests_total",
						  "Cumulative number of requests to the model.",
						  TAPIR_COUNTER, req_labels, nl, NULL, 0);
	m->f[F_E2E] = tapir_registry__family(r, "baseten_end_to_end_response_time_seconds",
					     "End-to-end response time in seconds.",
					     TAPIR_HISTOGRAM, req_labels, nl, cfg->latency_buckets,
					     cfg->n_latency_buckets);
	m->f[F_TTFB] = tapir_registry__family(
		r, "baseten_time_to_first_byte_seconds", "Time to first byte/write in seconds.",
		TAPIR_HISTOGRAM, req_labels, nl, cfg->latency_buckets, cfg->n_latency_buckets);
	m->f[F_REQ_SIZE] = tapir_registry__family(
		r, "baseten_request_size_bytes", "Request size in bytes.", TAPIR_HISTOGRAM,
		req_labels, nl, cfg->size_buckets, cfg->n_size_buckets);
	m->f[F_RESP_SIZE] = tapir_registry__family(
		r, "baseten_response_size_bytes", "Response size in bytes.", TAPIR_HISTOGRAM,
		req_labels, nl, cfg->size_buckets, cfg->n_size_buckets);
	m->inflight = tapir_registry__family(r, "baseten_concurrent_requests",
					     "Total in-flight inference requests for a deployment.",
					     TAPIR_GAUGE, dep_labels, nd, NULL, 0);
	m->websockets = tapir_registry__family(r, "baseten_ongoing_websocket_connections",
					       "Number of ongoing websocket connections.",
					       TAPIR_GAUGE, dep_labels, nd, NULL, 0);
	for (int i = 0; i < F_COUNT; i++)
		if (!m->f[i])
			goto fail;
	if (!m->inflight || !m->websockets)
		goto fail;
	m->n_slots = 256;
	m->slots = calloc(m->n_slots, sizeof(*m->slots));
	if (!m->slots)
		goto fail;
	return m;
fail:
	free(m);
	errno = errno ? errno : EINVAL;
	return NULL;
}

void tapir_http_metrics__free(struct tapir_http_metrics *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m->gauges);
	free(m);
}

static struct slot *probe(struct slot *slots, size_t n, uint64_t key)
{
	size_t i = (key * 0x9e3779b97f4a7c15ULL) >> 32;

	for (;; i++) {
		struct slot *s = &slots[i & (n - 1)];

		if (s->key == key || s->key == 0)
			return s;
	}
}

static int grow(struct tapir_http_metrics *m)
{
	size_t n = m->n_slots * 2, i;
	struct slot *ns = calloc(n, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (i = 0; i < m->n_slots; i++)
		if (m->slots[i].key)
			*probe(ns, n, m->slots[i].key) = m->slots[i];
	free(m->slots);
	m->slots = ns;
	m->n_slots = n;
	return 0;
}

static struct slot *lookup(struct tapir_http_metrics *m, uint16_t code, bool is_async,
			   uint32_t labels_id, const char *const *labels)
{
	uint64_t key = ((uint64_t)labels_id + 1) << 17 | (uint64_t)is_async << 16 | code;
	const char *values[TAPIR_LABELS_MAX], *extra[2];
	char status[8];
	struct slot *s;
	int i;

	s = probe(m->slots, m->n_slots, key);
	if (s->key)
		return s;
	if ((m->used + 1) * 2 > m->n_slots) {
		if (grow(m))
			return NULL;
		s = probe(m->slots, m->n_slots, key);
	}
	snprintf(status, sizeof(status), "%u", code);
	extra[0] = status;
	extra[1] = is_async ? "true" : "false";
	tapir_labels(values, labels, extra, 2);
	for (i = 0; i < F_COUNT; i++) {
		s->s[i] = tapir_series__get(m->f[i], values);
		if (!s->s[i])
			return NULL; /* series cap: counted by the family's overflow */
	}
	s->key = key;
	m->used++;
	return s;
}

void tapir_http_metrics__record(struct tapir_http_metrics *m, const struct tapir_http_event *e,
				bool is_async, uint32_t labels_id, const char *const *labels)
{
	struct slot *s =
		lookup(m, tapir_status_label(e->outcome, e->status), is_async, labels_id, labels);

	if (!s)
		return;
	tapir_series__add(s->s[F_REQUESTS], 1);
	if (e->end_ns >= e->start_ns)
		tapir_series__observe(s->s[F_E2E], (double)(e->end_ns - e->start_ns) / 1e9);
	if (e->first_byte_ns && e->first_byte_ns >= e->start_ns)
		tapir_series__observe(s->s[F_TTFB], (double)(e->first_byte_ns - e->start_ns) / 1e9);
	tapir_series__observe(s->s[F_REQ_SIZE], (double)e->req_bytes);
	tapir_series__observe(s->s[F_RESP_SIZE], (double)e->resp_bytes);
}

void tapir_http_metrics__merge(struct tapir_http_metrics *m, uint32_t labels_id,
			       const char *const *labels, uint16_t status,
			       const struct tapir_agg *a)
{
	struct slot *s = lookup(m, status, false, labels_id, labels); /* async: never aggregated */

	if (!s)
		return;
	tapir_series__add(s->s[F_REQUESTS], (double)a->requests);
	tapir_series__merge(s->s[F_E2E], a->e2e.n, TAPIR_AGG_BOUNDS + 1, (double)a->e2e.sum / 1e9);
	tapir_series__merge(s->s[F_TTFB], a->ttfb.n, TAPIR_AGG_BOUNDS + 1,
			    (double)a->ttfb.sum / 1e9);
	tapir_series__merge(s->s[F_REQ_SIZE], a->req_size.n, TAPIR_AGG_BOUNDS + 1,
			    (double)a->req_size.sum);
	tapir_series__merge(s->s[F_RESP_SIZE], a->resp_size.n, TAPIR_AGG_BOUNDS + 1,
			    (double)a->resp_size.sum);
}

void tapir_http_metrics__forget(struct tapir_http_metrics *m, uint32_t labels_id,
				const char *const *labels)
{
	const char *values[TAPIR_LABELS_MAX];
	struct slot *old = m->slots, *s;
	size_t i, n = m->n_slots;
	int f;

	tapir_labels(values, labels, NULL, 0);
	for (i = 0; i < n; i++) {
		if (!old[i].key || (old[i].key >> 17) != (uint64_t)labels_id + 1)
			continue;
		for (f = 0; f < F_COUNT; f++)
			tapir_series__remove(m->f[f], old[i].s[f]);
		old[i].key = 0;
		m->used--;
	}
	/* Rebuild the open-addressing table without the holes. */
	s = calloc(n, sizeof(*s));
	if (s) {
		for (i = 0; i < n; i++)
			if (old[i].key)
				*probe(s, n, old[i].key) = old[i];
		m->slots = s;
		free(old);
	}
	tapir_series__remove(m->inflight, tapir_series__get(m->inflight, values));
	tapir_series__remove(m->websockets, tapir_series__get(m->websockets, values));
	if (labels_id < m->n_gauges)
		m->gauges[labels_id] = (struct gauges){ 0 };
}

/* The cached gauges of @labels_id, looked up where missing; NULL without memory for the cache. */
static struct gauges *gauges_of(struct tapir_http_metrics *m, uint32_t labels_id,
				const char *const *labels)
{
	const char *values[TAPIR_LABELS_MAX];
	struct gauges *g;

	if (tapir_grow_zeroed((void **)&m->gauges, &m->n_gauges, labels_id, sizeof(*g)))
		return NULL;
	g = &m->gauges[labels_id];
	if (!g->inflight || !g->websockets) {
		tapir_labels(values, labels, NULL, 0);
		if (!g->inflight)
			g->inflight = tapir_series__get(m->inflight, values);
		if (!g->websockets)
			g->websockets = tapir_series__get(m->websockets, values);
	}
	return g;
}

void tapir_http_metrics__set_gauges(struct tapir_http_metrics *m, uint32_t labels_id,
				    const char *const *labels, double inflight, double websockets)
{
	struct gauges *g = gauges_of(m, labels_id, labels);

	if (!g)
		return;
	tapir_series__set(g->inflight, inflight);
	tapir_series__set(g->websockets, websockets);
}
