// SPDX-License-Identifier: GPL-2.0
/* h2c upgrades: the HTTP/1.1 request that asked for one, paired with its answer on stream 1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h2_pair.h"

enum { HALF_REQUEST, HALF_STREAM, HALF_OPEN };

struct half {
	uint64_t sock;
	uint64_t since_ms;
	int kind;   /* HALF_* (HALF_OPEN: the connection turned to HTTP/2, its 101 not read yet) */
	int opened; /* HALF_REQUEST: its connection turned to HTTP/2 */
	struct tapir_http_event e;
	struct tapir_h2_result r;
};

struct tapir_h2_pair {
	struct half *h; /* held, oldest first */
	size_t n, cap;
	tapir_h2_pair_fn emit;
	void *ctx;
};

struct tapir_h2_pair *tapir_h2_pair__new(size_t cap, tapir_h2_pair_fn emit, void *ctx)
{
	struct tapir_h2_pair *p;

	if (!cap || !emit) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->h = calloc(cap, sizeof(*p->h));
	if (!p->h) {
		free(p);
		return NULL;
	}
	p->cap = cap;
	p->emit = emit;
	p->ctx = ctx;
	return p;
}

void tapir_h2_pair__free(struct tapir_h2_pair *p)
{
	if (!p)
		return;
	free(p->h);
	free(p);
}

static void emit_alone(struct tapir_h2_pair *p, const struct half *h)
{
	if (h->kind != HALF_OPEN)
		p->emit(p->ctx, &h->e, h->kind == HALF_STREAM ? &h->r : NULL);
}

static void take(struct tapir_h2_pair *p, size_t i)
{
	memmove(&p->h[i], &p->h[i + 1], (p->n - i - 1) * sizeof(*p->h));
	p->n--;
}

/* The held half of @kind on @sock, or -1. */
static long find(const struct tapir_h2_pair *p, uint64_t sock, int kind)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->h[i].sock == sock && p->h[i].kind == kind)
			return (long)i;
	return -1;
}

static struct half *hold(struct tapir_h2_pair *p, uint64_t sock, int kind, uint64_t now_ms)
{
	struct half *h;

	if (p->n == p->cap) {
		/* A 101 whose connection turned to HTTP/2 goes uncounted: its stream 1 will count
		 * (alone, without the request's start, method and path), never both. */
		if (!p->h[0].opened)
			emit_alone(p, &p->h[0]);
		take(p, 0);
	}
	h = &p->h[p->n++];
	memset(h, 0, sizeof(*h));
	h->sock = sock;
	h->since_ms = now_ms;
	h->kind = kind;
	return h;
}

/* Stream 1's figures on the request that asked for the upgrade: one request. */
static void merge(struct tapir_h2_pair *p, const struct tapir_http_event *req,
		  const struct tapir_http_event *s, const struct tapir_h2_result *r)
{
	struct tapir_http_event e = *s;

	e.start_ns = req->start_ns;
	e.req_bytes = req->req_bytes;
	e.method = req->method;
	memcpy(e.line, req->line, sizeof(e.line));
	e.labels_id = req->labels_id;
	e.cgroup_id = req->cgroup_id;
	p->emit(p->ctx, &e, r);
}

void tapir_h2_pair__end(struct tapir_h2_pair *p, uint64_t sock)
{
	size_t i = 0;

	while (i < p->n) {
		if (p->h[i].sock == sock && (p->h[i].opened || p->h[i].kind == HALF_OPEN))
			take(p, i);
		else
			i++;
	}
}

void tapir_h2_pair__open(struct tapir_h2_pair *p, uint64_t sock, uint64_t now_ms)
{
	long i = find(p, sock, HALF_REQUEST);

	if (i >= 0)
		p->h[i].opened = 1;
	else if (find(p, sock, HALF_OPEN) < 0)
		hold(p, sock, HALF_OPEN, now_ms);
}

/* Half @kind of the request on @sock arrives (@e, and @r for a stream): counted with the other
 * half if that is held, else held itself, taking the connection's mark of HTTP/2 if one came. */
static void arrive(struct tapir_h2_pair *p, uint64_t sock, int kind,
		   const struct tapir_http_event *e, const struct tapir_h2_result *r,
		   uint64_t now_ms)
{
	long i = find(p, sock, kind == HALF_REQUEST ? HALF_STREAM : HALF_REQUEST);
	struct half *h;

	if (i >= 0) {
		if (kind == HALF_REQUEST)
			merge(p, e, &p->h[i].e, &p->h[i].r);
		else
			merge(p, &p->h[i].e, e, r);
		take(p, (size_t)i);
		return;
	}
	i = find(p, sock, HALF_OPEN);
	if (i >= 0)
		take(p, (size_t)i);
	h = hold(p, sock, kind, now_ms);
	h->e = *e;
	if (r)
		h->r = *r;
	h->opened = kind == HALF_REQUEST && i >= 0;
}

void tapir_h2_pair__request(struct tapir_h2_pair *p, const struct tapir_http_event *e,
			    uint64_t now_ms)
{
	arrive(p, e->sock, HALF_REQUEST, e, NULL, now_ms);
}

void tapir_h2_pair__stream(struct tapir_h2_pair *p, const struct tapir_h2_who *who,
			   const struct tapir_h2_result *r, uint64_t now_ms)
{
	struct tapir_http_event e;

	tapir_h2_track__event(who, r, &e);
	arrive(p, who->sock, HALF_STREAM, &e, r, now_ms);
}

void tapir_h2_pair__expire(struct tapir_h2_pair *p, uint64_t now_ms, int all)
{
	size_t i = 0;

	while (i < p->n) {
		const struct half *h = &p->h[i];
		uint64_t wait = h->opened ? TAPIR_H2_PAIR_OPEN_MS : TAPIR_H2_PAIR_HOLD_MS;

		if (all || now_ms - h->since_ms >= wait) {
			emit_alone(p, h);
			take(p, i);
		} else {
			i++;
		}
	}
}

size_t tapir_h2_pair__held(const struct tapir_h2_pair *p)
{
	return p->n;
}
