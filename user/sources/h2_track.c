// SPDX-License-Identifier: GPL-2.0
/* HTTP/2 connections as the kernel walks them: its records in, one request per stream out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h2_track.h"

#define BUCKETS 4096 /* a power of two */

struct conn {
	struct conn *next;
	struct tapir_h2_track *t;
	struct tapir_h2_conn *h2;
	struct tapir_h2_who who;
};

struct tapir_h2_track {
	struct conn *bucket[BUCKETS];
	size_t n, max;
	uint64_t lost[TAPIR_H2_LOST_REASONS]; /* of connections already freed, and the table's */
	tapir_h2_track_fn done;
	void *ctx;
};

static size_t hash(uint64_t sock)
{
	return (sock * 0x9e3779b97f4a7c15ULL) >> 52 & (BUCKETS - 1);
}

static void on_stream(void *ctx, const struct tapir_h2_result *r)
{
	struct conn *c = ctx;

	c->t->done(c->t->ctx, &c->who, r);
}

struct tapir_h2_track *tapir_h2_track__new(size_t max_conns, tapir_h2_track_fn done, void *ctx)
{
	struct tapir_h2_track *t;

	if (!done) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->max = max_conns;
	t->done = done;
	t->ctx = ctx;
	return t;
}

static struct conn **find(struct tapir_h2_track *t, uint64_t sock)
{
	struct conn **p = &t->bucket[hash(sock)];

	while (*p && (*p)->who.sock != sock)
		p = &(*p)->next;
	return p;
}

/* What connection @h2's own counts add to each of tapir_http2_lost_total's reasons. */
static void add_losses(uint64_t *lost, const struct tapir_h2_conn *h2)
{
	const struct tapir_h2_stats *st = tapir_h2_conn__stats(h2);

	lost[TAPIR_H2_LOST_STREAMS] += st->streams_dropped;
	lost[TAPIR_H2_LOST_UNDECODED] += st->blocks_undecoded;
	lost[TAPIR_H2_LOST_BEFORE_START] += st->unseen_ended;
	lost[TAPIR_H2_LOST_UNMATCHED] += st->unmatched;
}

/* Forget connection *@p: its open streams reported closed (@report) or dropped. */
static void drop(struct tapir_h2_track *t, struct conn **p, int report, uint64_t now)
{
	struct conn *c = *p;

	if (report)
		tapir_h2_conn__close(c->h2, now);
	else
		t->lost[TAPIR_H2_LOST_FRAMING] += tapir_h2_conn__open_streams(c->h2);
	add_losses(t->lost, c->h2);
	tapir_h2_conn__free(c->h2);
	*p = c->next;
	free(c);
	t->n--;
}

void tapir_h2_track__free(struct tapir_h2_track *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < BUCKETS; i++)
		while (t->bucket[i])
			drop(t, &t->bucket[i], 0, 0);
	free(t);
}

/* The connection of record @e, made if need be. One whose first record is not its
 * TAPIR_H2R_OPEN (lost to a full ring, or no room in the table then) began unseen: it is taken
 * as picked up mid-way. */
static struct conn *conn_of(struct tapir_h2_track *t, const struct tapir_h2_rec *e)
{
	struct conn **p = find(t, e->sock), *c = *p;

	if (c) {
		c->who.labels_id = e->labels_id;
		c->who.tgid = e->tgid;
		return c;
	}
	if (t->n >= t->max) {
		t->lost[TAPIR_H2_LOST_CONNS]++;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->h2 = tapir_h2_conn__new(on_stream, c);
	if (!c->h2) {
		free(c);
		return NULL;
	}
	c->t = t;
	c->who.sock = e->sock;
	c->who.cgroup_id = e->cgroup_id;
	c->who.labels_id = e->labels_id;
	c->who.tgid = e->tgid;
	*p = c;
	t->n++;
	if (e->kind != TAPIR_H2R_OPEN)
		tapir_h2_conn__mid(c->h2);
	return c;
}

int tapir_h2_track__record(struct tapir_h2_track *t, const void *data, size_t size)
{
	const struct tapir_h2_rec *e = data;
	int dir = e->dir == TAPIR_DIR_IN ? TAPIR_H2_REQUEST : TAPIR_H2_RESPONSE;
	struct conn **p, *c;

	if (size < sizeof(*e) || e->len > size - sizeof(*e))
		return -EINVAL;
	if (e->kind == TAPIR_H2R_CLOSE || e->kind == TAPIR_H2R_ERROR || e->kind == TAPIR_H2R_OPEN) {
		/* A connection still held where a new one begins lost its end record (a full
		 * ring): its streams are dropped, never reported as the new one's. */
		p = find(t, e->sock);
		if (*p)
			drop(t, p, e->kind == TAPIR_H2R_CLOSE, e->ts);
		if (e->kind != TAPIR_H2R_OPEN)
			return 0;
		c = conn_of(t, e);
		if (c && e->value == TAPIR_H2_OPEN_UPGRADE)
			tapir_h2_conn__upgrade(c->h2, e->ts);
		else if (c && e->value == TAPIR_H2_OPEN_UPGRADE_LATE)
			tapir_h2_conn__upgrade_late(c->h2);
		else if (c && e->value == TAPIR_H2_OPEN_PRESTART)
			tapir_h2_conn__mid(c->h2);
		return 0;
	}
	c = conn_of(t, e);
	if (!c)
		return 0;
	if (e->flags & TAPIR_H2R_F_LOST)
		tapir_h2_conn__lost(c->h2, dir);
	switch (e->kind) {
	case TAPIR_H2R_BLOCK:
		/* A block given up in the kernel says so alone: nothing of it to decode. */
		if (e->len || (e->flags & TAPIR_H2R_F_END_HEADERS))
			tapir_h2_conn__headers(c->h2, dir, e->stream_id,
					       e->flags & (TAPIR_H2_END_HEADERS |
							   TAPIR_H2_END_STREAM | TAPIR_H2_PUSH),
					       (const char *)data + sizeof(*e), e->len, e->ts);
		break;
	case TAPIR_H2R_DATA:
		tapir_h2_conn__data(c->h2, dir, e->stream_id, e->value,
				    !!(e->flags & TAPIR_H2R_F_END_STREAM), e->ts);
		break;
	case TAPIR_H2R_RST: tapir_h2_conn__rst(c->h2, dir, e->stream_id, e->value, e->ts); break;
	case TAPIR_H2R_GOAWAY: tapir_h2_conn__goaway(c->h2, dir, e->value, e->value2, e->ts); break;
	}
	return 0;
}

void tapir_h2_track__inflight(const struct tapir_h2_track *t,
			      void (*fn)(void *ctx, uint64_t cgroup_id, size_t n), void *ctx)
{
	const struct conn *c;
	size_t i, n;

	for (i = 0; i < BUCKETS; i++)
		for (c = t->bucket[i]; c; c = c->next) {
			n = tapir_h2_conn__open_streams(c->h2);
			if (n)
				fn(ctx, c->who.cgroup_id, n);
		}
}

void tapir_h2_track__lost(const struct tapir_h2_track *t, uint64_t *lost)
{
	const struct conn *c;
	size_t i;

	memcpy(lost, t->lost, sizeof(t->lost));
	for (i = 0; i < BUCKETS; i++)
		for (c = t->bucket[i]; c; c = c->next)
			add_losses(lost, c->h2);
}

size_t tapir_h2_track__conns(const struct tapir_h2_track *t)
{
	return t->n;
}

int tapir_h2_track__follows(struct tapir_h2_track *t, uint64_t sock)
{
	return *find(t, sock) != NULL;
}

void tapir_h2_track__event(const struct tapir_h2_who *who, const struct tapir_h2_result *r,
			   struct tapir_http_event *e)
{
	__u64 tok = 0;
	size_t i;

	memset(e, 0, sizeof(*e));
	e->type = TAPIR_REC_HTTP;
	e->labels_id = who->labels_id;
	e->cgroup_id = who->cgroup_id;
	e->sock = who->sock;
	e->tgid = who->tgid;
	e->start_ns = r->start_ns;
	e->first_byte_ns = r->first_resp_ns;
	e->end_ns = r->end_ns;
	e->req_bytes = r->req_bytes;
	e->resp_bytes = r->resp_bytes;
	e->status = r->status;
	if (r->outcome == TAPIR_H2_OUT_COMPLETE && r->status)
		e->outcome = TAPIR_OUT_COMPLETE;
	else if (r->outcome == TAPIR_H2_OUT_RESET && (r->flags & TAPIR_H2_R_CLIENT_RESET))
		e->outcome = TAPIR_OUT_CLIENT_ABORT;
	else
		e->outcome = TAPIR_OUT_SERVER_ABORT;
	for (i = 0; i < 7 && r->method[i]; i++)
		tok = tok << 8 | (uint8_t)r->method[i];
	e->method = r->method[i] ? TP_M_UNKNOWN : tapir_method_id(tok);
	/* "METHOD PATH", as an HTTP/1.x request line starts: what probe paths are matched on. */
	i = strnlen(r->method, sizeof(r->method));
	memcpy(e->line, r->method, i);
	if (i < TAPIR_LINE_BYTES)
		e->line[i++] = ' ';
	if (i < TAPIR_LINE_BYTES)
		memcpy(e->line + i, r->path, strnlen(r->path, TAPIR_LINE_BYTES - i));
}
