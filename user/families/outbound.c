// SPDX-License-Identifier: GPL-2.0
/* Requests the watched processes send: tapir_outbound_*, by bounded destination. */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "labels.h"
#include "llm.h"
#include "outbound.h"
#include "reqline.h"

#define PEER_BUCKETS 4096      /* a power of two */
#define PEERS_MAX    (1 << 18) /* outbound connections remembered at once */

/* An outbound connection open now, by socket. */
struct peer {
	struct peer *next;
	__u64 sock;
	struct tapir_peer_key key;
	char addr[INET6_ADDRSTRLEN];
};

/* The series of one (label set, status, destination). */
struct combo {
	uint32_t labels_id;
	uint16_t code;
	const char *dest;
	struct tapir_series *requests, *duration;
};

/* A series of the outbound LLM families, remembered for its label set's end. */
struct llm_series {
	uint32_t labels_id;
	struct tapir_family *f;
	struct tapir_series *s;
};

enum { L_REQUESTS, L_INPUT, L_OUTPUT, L_TTFT, L_COUNT };

struct tapir_outbound {
	const struct tapir_config *cfg;
	struct tapir_family *requests, *duration;
	struct tapir_family *llm[L_COUNT];
	struct llm_series *llm_series;
	size_t n_llm_series, llm_cap;
	struct peer *peers[PEER_BUCKETS];
	size_t n_peers;
	struct combo *combos;
	size_t n_combos, cap;
};

static const char *const req_extra[] = { "status_code", "destination" };
static const char *const dur_extra[] = { "destination" };
static const char *const llm_req_extra[] = { "destination", "tokens" };

struct tapir_outbound *tapir_outbound__new(struct tapir_registry *r, const struct tapir_config *cfg)
{
	struct tapir_outbound *o = calloc(1, sizeof(*o));
	const char *l[TAPIR_LABELS_MAX];
	size_t n;

	if (!o)
		return NULL;
	o->cfg = cfg;
	n = tapir_labels(l, tapir_label_names, req_extra, 2);
	o->requests = tapir_registry__family(
		r, "tapir_outbound_requests_total",
		"Requests the deployment's processes sent, by status and destination.",
		TAPIR_COUNTER, l, n, NULL, 0);
	n = tapir_labels(l, tapir_label_names, dur_extra, 1);
	o->duration = tapir_registry__family(
		r, "tapir_outbound_request_duration_seconds",
		"Time from the start of an outbound request to the end of its answer.",
		TAPIR_HISTOGRAM, l, n, cfg->latency_buckets, cfg->n_latency_buckets);
	n = tapir_labels(l, tapir_label_names, llm_req_extra, 2);
	o->llm[L_REQUESTS] = tapir_registry__family(
		r, "tapir_outbound_llm_requests_total",
		"LLM API requests the deployment's processes sent, by destination and how their "
		"tokens are known.",
		TAPIR_COUNTER, l, n, NULL, 0);
	n = tapir_labels(l, tapir_label_names, dur_extra, 1);
	o->llm[L_INPUT] = tapir_registry__family(
		r, "tapir_outbound_llm_input_tokens_total",
		"Input tokens of the LLM API requests the deployment's processes sent.",
		TAPIR_COUNTER, l, n, NULL, 0);
	o->llm[L_OUTPUT] = tapir_registry__family(
		r, "tapir_outbound_llm_output_tokens_total",
		"Output tokens of the answers to the LLM API requests the deployment's processes sent.",
		TAPIR_COUNTER, l, n, NULL, 0);
	o->llm[L_TTFT] = tapir_registry__family(
		r, "tapir_outbound_llm_time_to_first_token_seconds",
		"From the write of an outbound LLM request to the read of its first token event.",
		TAPIR_HISTOGRAM, l, n, tapir_llm_latency_buckets, TAPIR_LLM_LATENCY_BUCKETS);
	if (!o->requests || !o->duration || !o->llm[L_REQUESTS] || !o->llm[L_INPUT] ||
	    !o->llm[L_OUTPUT] || !o->llm[L_TTFT]) {
		free(o);
		return NULL;
	}
	return o;
}

void tapir_outbound__free(struct tapir_outbound *o)
{
	struct peer *p, *next;
	size_t i;

	if (!o)
		return;
	for (i = 0; i < PEER_BUCKETS; i++)
		for (p = o->peers[i]; p; p = next) {
			next = p->next;
			free(p);
		}
	free(o->combos);
	free(o->llm_series);
	free(o);
}

static struct peer **peer_slot(struct tapir_outbound *o, __u64 sock)
{
	struct peer **p = &o->peers[(sock * 0x9e3779b97f4a7c15ULL) >> 52 & (PEER_BUCKETS - 1)];

	while (*p && (*p)->sock != sock)
		p = &(*p)->next;
	return p;
}

void tapir_outbound__conn(struct tapir_outbound *o, const struct tapir_conn_out_event *e)
{
	struct peer **slot = peer_slot(o, e->sock), *p = *slot;

	if (!e->begin) {
		if (p) {
			*slot = p->next;
			free(p);
			o->n_peers--;
		}
		return;
	}
	if (!p) {
		if (o->n_peers >= PEERS_MAX)
			return; /* its requests go to destinations that name no address */
		p = calloc(1, sizeof(*p));
		if (!p)
			return;
		p->sock = e->sock;
		*slot = p;
		o->n_peers++;
	}
	/* A socket's memory may serve a new connection: the latest begin is the one. */
	p->key = e->peer;
	if (!inet_ntop(e->peer.family == AF_INET6 ? AF_INET6 : AF_INET, e->peer.addr, p->addr,
		       sizeof(p->addr)))
		p->addr[0] = '\0';
}

static const char *destination(const struct tapir_outbound *o, const struct tapir_peer_key *key,
			       const char *addr, const char *path)
{
	const struct tapir_destination *d;
	size_t i;

	for (i = 0; i < o->cfg->n_destinations; i++) {
		d = &o->cfg->destinations[i];
		if (d->address && (!addr || fnmatch(d->address, addr, 0)))
			continue;
		if (d->port && (!key || key->port != d->port))
			continue;
		if (d->path && strncmp(path, d->path, strlen(d->path)))
			continue;
		return d->name;
	}
	return "other";
}

const char *tapir_outbound__destination(const struct tapir_outbound *o,
					const struct tapir_peer_key *peer, const __u8 *line)
{
	char addr[INET6_ADDRSTRLEN], path[TAPIR_LINE_BYTES + 1];

	tapir_request_path((const char *)line, TAPIR_LINE_BYTES, path, sizeof(path));
	if (peer && !inet_ntop(peer->family == AF_INET6 ? AF_INET6 : AF_INET, peer->addr, addr,
			       sizeof(addr)))
		addr[0] = '\0';
	return destination(o, peer, peer ? addr : NULL, path);
}

static struct combo *combo_of(struct tapir_outbound *o, uint32_t labels_id, uint16_t code,
			      const char *dest, const char *const *labels)
{
	const char *v[TAPIR_LABELS_MAX], *extra[2];
	char status[8];
	struct combo *c;
	size_t i;

	for (i = 0; i < o->n_combos; i++) {
		c = &o->combos[i];
		if (c->labels_id == labels_id && c->code == code && c->dest == dest)
			return c;
	}
	if (o->n_combos == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 32;

		c = realloc(o->combos, cap * sizeof(*c));
		if (!c)
			return NULL;
		o->combos = c;
		o->cap = cap;
	}
	c = &o->combos[o->n_combos];
	snprintf(status, sizeof(status), "%u", code);
	extra[0] = status;
	extra[1] = dest;
	tapir_labels(v, labels, extra, 2);
	c->requests = tapir_series__get(o->requests, v);
	tapir_labels(v, labels, extra + 1, 1);
	c->duration = tapir_series__get(o->duration, v);
	if (!c->requests || !c->duration)
		return NULL; /* series cap: counted by the family's overflow */
	c->labels_id = labels_id;
	c->code = code;
	c->dest = dest;
	o->n_combos++;
	return c;
}

const char *tapir_outbound__record(struct tapir_outbound *o, const struct tapir_http_event *e,
				   uint32_t labels_id, const char *const *labels)
{
	const struct peer *p = *peer_slot(o, e->sock);
	char path[TAPIR_LINE_BYTES + 1];
	struct combo *c;
	const char *dest;

	tapir_request_path((const char *)e->line, TAPIR_LINE_BYTES, path, sizeof(path));
	dest = destination(o, p ? &p->key : NULL, p ? p->addr : NULL, path);
	c = combo_of(o, labels_id, tapir_status_label(e->outcome, e->status), dest, labels);
	if (!c)
		return dest;
	tapir_series__add(c->requests, 1);
	if (e->end_ns >= e->start_ns)
		tapir_series__observe(c->duration, (double)(e->end_ns - e->start_ns) / 1e9);
	return dest;
}

/* Series @v of LLM family @f for label set @labels_id, remembered the first time. */
static struct tapir_series *llm_series(struct tapir_outbound *o, int f, uint32_t labels_id,
				       const char *const *v)
{
	struct tapir_series *s = tapir_series__get(o->llm[f], v);
	size_t i;

	if (!s)
		return NULL; /* series cap: counted by the family's overflow */
	for (i = 0; i < o->n_llm_series; i++)
		if (o->llm_series[i].s == s)
			return s;
	if (o->n_llm_series == o->llm_cap) {
		size_t cap = o->llm_cap ? 2 * o->llm_cap : 32;
		struct llm_series *n = realloc(o->llm_series, cap * sizeof(*n));

		if (!n)
			return s; /* counted; forgotten with the registry only */
		o->llm_series = n;
		o->llm_cap = cap;
	}
	o->llm_series[o->n_llm_series++] = (struct llm_series){ labels_id, o->llm[f], s };
	return s;
}

void tapir_outbound__llm(struct tapir_outbound *o, uint32_t labels_id, const char *const *labels,
			 uint64_t sock, const char *head, const struct tapir_llm_result *res)
{
	const struct peer *p = *peer_slot(o, sock);
	__u8 line[TAPIR_LINE_BYTES] = { 0 };
	char path[TAPIR_LINE_BYTES + 1];
	const char *v[TAPIR_LABELS_MAX], *extra[2], *dest;

	if (head)
		memcpy(line, head, strnlen(head, sizeof(line)));
	tapir_request_path((const char *)line, TAPIR_LINE_BYTES, path, sizeof(path));
	dest = destination(o, p ? &p->key : NULL, p ? p->addr : NULL, path);
	extra[0] = dest;
	/* How its tokens are known: unparsed; counted from events without usage; from the usage;
	 * none at all (an error answer). */
	extra[1] = (res->flags & TAPIR_LLM_UNPARSED)			 ? "unknown"
		   : (res->flags & TAPIR_LLM_ESTIMATED)			 ? "estimated"
		   : (res->flags & (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT)) ? "usage"
									 : "none";
	tapir_labels(v, labels, extra, 2);
	tapir_series__add(llm_series(o, L_REQUESTS, labels_id, v), 1);
	if (res->flags & TAPIR_LLM_UNPARSED)
		return;
	tapir_labels(v, labels, extra, 1);
	if (res->flags & TAPIR_LLM_INPUT)
		tapir_series__add(llm_series(o, L_INPUT, labels_id, v), (double)res->input_tokens);
	if (res->flags & TAPIR_LLM_OUTPUT)
		tapir_series__add(llm_series(o, L_OUTPUT, labels_id, v),
				  (double)res->output_tokens);
	if (res->token_events)
		tapir_series__observe(llm_series(o, L_TTFT, labels_id, v), res->ttft_ns / 1e9);
}

void tapir_outbound__forget(struct tapir_outbound *o, uint32_t labels_id, const char *const *labels)
{
	size_t i = 0, j;

	(void)labels;
	if (!o)
		return;
	while (i < o->n_combos) {
		struct combo *c = &o->combos[i];

		if (c->labels_id != labels_id) {
			i++;
			continue;
		}
		tapir_series__remove(o->requests, c->requests);
		if (c->duration) {
			/* One duration series serves every status of a destination. */
			for (j = 0; j < o->n_combos; j++)
				if (j != i && o->combos[j].duration == c->duration)
					o->combos[j].duration = NULL;
			tapir_series__remove(o->duration, c->duration);
		}
		o->combos[i] = o->combos[--o->n_combos];
	}
	for (i = 0; i < o->n_llm_series;) {
		if (o->llm_series[i].labels_id != labels_id) {
			i++;
			continue;
		}
		tapir_series__remove(o->llm_series[i].f, o->llm_series[i].s);
		o->llm_series[i] = o->llm_series[--o->n_llm_series];
	}
}
