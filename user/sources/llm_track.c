// SPDX-License-Identifier: GPL-2.0
/* LLM requests in flight: the kernel's payload pieces, put back together and parsed. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llm_track.h"
#include "tapir/http.h"

#define BUCKETS	 1024	    /* hash chains; a power of two */
#define HEAD_MAX (16 << 10) /* bytes of a message's head (start line and fields) kept */

/* A message's head, gathered until its blank line. */
struct head {
	char *buf;
	size_t len;
	bool done;
};

struct req {
	struct req *next;
	uint64_t sock, cgroup_id, start_ns, last_ns;
	uint32_t id, labels_id;
	enum tapir_llm_api api;
	/* The request: its head, then the head of its body, kept until the answer's head. */
	struct head in;
	char *body;
	size_t body_len, body_max;
	uint64_t in_off;
	bool in_broken; /* a gap or an odd framing: the body head is not read */
	/* The answer: its head, then its body through the parser. */
	struct head out;
	struct tapir_llm_req *q;
	uint64_t out_off;		 /* the next byte expected */
	uint64_t out_lost;		 /* bytes lost before the parser existed */
	enum tapir_llm_unparsed out_bad; /* the head could not be read */
	uint16_t status;
	bool sse, chunked;
	int mark; /* the head callback's, -1 until then */
};

struct tapir_llm_track {
	struct req *chain[BUCKETS];
	size_t n, head_bytes;
	tapir_llm_done_fn done;
	tapir_llm_head_fn head;
	void *ctx;
};

static size_t bucket(uint64_t sock, uint32_t id)
{
	uint64_t h = (sock ^ ((uint64_t)id << 32 | id)) * 0x9e3779b97f4a7c15ULL;

	return h >> 54 & (BUCKETS - 1);
}

/*
 * A request is its socket, its number on the connection and the time of its first byte: the next
 * connection accepted may reuse a closed one's socket memory and numbers from 1 again, and the
 * daemon reads every piece waiting in llm_events before a record, the next connection's too
 * (seen with a connection per request: busybox wget in the kernel matrix).
 */
static struct req **slot_of(struct tapir_llm_track *t, uint64_t sock, uint32_t id,
			    uint64_t start_ns)
{
	struct req **p = &t->chain[bucket(sock, id)];

	while (*p && ((*p)->sock != sock || (*p)->id != id || (*p)->start_ns != start_ns))
		p = &(*p)->next;
	return p;
}

struct tapir_llm_track *tapir_llm_track__new(size_t request_head_bytes, tapir_llm_done_fn done,
					     tapir_llm_head_fn head, void *ctx)
{
	struct tapir_llm_track *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->head_bytes = request_head_bytes;
	t->done = done;
	t->head = head;
	t->ctx = ctx;
	return t;
}

static void req_free(struct req *r)
{
	free(r->in.buf);
	free(r->out.buf);
	free(r->body);
	tapir_llm_req__free(r->q);
	free(r);
}

void tapir_llm_track__free(struct tapir_llm_track *t)
{
	struct req *r, *next;
	size_t i;

	if (!t)
		return;
	for (i = 0; i < BUCKETS; i++)
		for (r = t->chain[i]; r; r = next) {
			next = r->next;
			req_free(r);
		}
	free(t);
}

/*
 * Gather @n bytes into head @h until its blank line (CRLF CRLF, or bare LFs). Returns the bytes
 * of @buf taken (all of them until the head is done), or -E2BIG past HEAD_MAX.
 */
static long head_feed(struct head *h, const char *buf, size_t n)
{
	size_t i, from = h->len > 3 ? h->len - 3 : 0;
	char *nb;

	if (h->len + n > HEAD_MAX)
		n = HEAD_MAX - h->len + 1; /* enough to find its end, or to know it is too long */
	nb = realloc(h->buf, h->len + n + 1);
	if (!nb)
		return -ENOMEM;
	h->buf = nb;
	memcpy(h->buf + h->len, buf, n);
	h->len += n;
	for (i = from; i < h->len; i++) {
		if (h->buf[i] != '\n')
			continue;
		if ((i >= 1 && h->buf[i - 1] == '\n') ||
		    (i >= 2 && h->buf[i - 1] == '\r' && h->buf[i - 2] == '\n')) {
			long took = (long)(i + 1) - (long)(h->len - n);

			h->len = i + 1;
			h->buf[h->len] = '\0';
			h->done = true;
			return took;
		}
	}
	return h->len > HEAD_MAX ? -E2BIG : (long)n;
}

/* Does field @name of head @h contain @token (both case-insensitive)? */
static bool field_has(const struct head *h, const char *name, const char *token)
{
	size_t nl = strlen(name), tl = strlen(token);
	const char *p = strchr(h->buf, '\n'), *end, *v;

	while (p && *++p) {
		end = strchr(p, '\n');
		if (!end)
			break;
		if ((size_t)(end - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':')
			for (v = p + nl + 1; v + tl <= end; v++)
				if (!strncasecmp(v, token, tl))
					return true;
		p = end;
	}
	return false;
}

/* The status of answer head @h: 0 when its start line is not HTTP/1.x's. */
static uint16_t head_status(const struct head *h)
{
	const char *s = h->buf;

	if (h->len < 12 || strncmp(s, "HTTP/1.", 7) || s[8] != ' ' || s[9] < '1' || s[9] > '5' ||
	    s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
		return 0;
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

/* Request bytes: its head, then the head of its body, kept for the parser. */
static void in_bytes(struct tapir_llm_track *t, struct req *r, const char *buf, size_t n)
{
	long took = 0;
	char *nb;

	if (!r->in.done) {
		took = head_feed(&r->in, buf, n);
		if (took < 0 || !r->in.done) {
			r->in_broken |= took < 0;
			return;
		}
		if (!r->in_broken && t->head)
			r->mark = t->head(t->ctx, r->labels_id, r->cgroup_id, r->start_ns,
					  r->in.buf, r->in.len) &
				  0xff;
		/* A chunked body's head would have to be de-chunked: not worth it for a head. */
		r->in_broken |= field_has(&r->in, "transfer-encoding", "chunked");
		r->body_max = r->api == TAPIR_API_HEAD ? 0 : t->head_bytes;
	}
	n -= took;
	if (r->in_broken || r->q || !n || r->body_len >= r->body_max)
		return;
	if (n > r->body_max - r->body_len)
		n = r->body_max - r->body_len;
	nb = realloc(r->body, r->body_len + n);
	if (!nb)
		return;
	r->body = nb;
	memcpy(r->body + r->body_len, buf + took, n);
	r->body_len += n;
}

/* The parser of @r starts, with @info: the request's body head kept so far is its now. */
static void parser_start(struct req *r, const struct tapir_llm_resp_info *info)
{
	r->q = tapir_llm_req__new(r->api, info);
	if (!r->q)
		return;
	if (r->body_len && !r->in_broken)
		tapir_llm_req__request_body(r->q, r->body, r->body_len);
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* The answer's head is complete: its parser starts. */
static void out_start(struct req *r)
{
	struct tapir_llm_resp_info info = {
		.status = r->status,
		.sse = r->sse,
		.chunked = r->chunked,
		.req_start_ns = r->start_ns,
	};

	/* No bytes were lost before it: after such a gap no answer byte reaches here. */
	parser_start(r, &info);
}

/* Answer bytes at @ts: interim heads skipped, the final head read, the body parsed. */
static void out_bytes(struct req *r, const char *buf, size_t n, uint64_t ts)
{
	long took;

	while (n && !r->q && !r->out_bad) {
		took = head_feed(&r->out, buf, n);
		if (took < 0) {
			r->out_bad = took == -E2BIG ? TAPIR_LLM_TOO_LARGE : TAPIR_LLM_NO_MEMORY;
			return;
		}
		if (!r->out.done)
			return;
		buf += took;
		n -= took;
		r->status = head_status(&r->out);
		if (!r->status) {
			r->out_bad = TAPIR_LLM_BAD_JSON; /* not an HTTP answer we can read */
			return;
		}
		if (r->status >= 200 || r->status == 101) {
			r->sse = field_has(&r->out, "content-type", "text/event-stream");
			r->chunked = field_has(&r->out, "transfer-encoding", "chunked");
			out_start(r);
			if (!r->q)
				r->out_bad = TAPIR_LLM_NO_MEMORY;
		}
		/* 100 Continue and friends: the answer's head is the next one. */
		free(r->out.buf);
		r->out = (struct head){ 0 };
	}
	if (r->q && n)
		tapir_llm_req__response_body(r->q, buf, n, ts);
}

int tapir_llm_track__chunk(struct tapir_llm_track *t, const void *data, size_t size)
{
	const struct tapir_llm_chunk *c = data;
	const char *buf = (const char *)data + sizeof(*c);
	struct req **p, *r;
	uint64_t gap;

	if (size < sizeof(*c) || c->len > size - sizeof(*c))
		return -EINVAL;
	p = slot_of(t, c->sock, c->id, c->start_ns);
	r = *p;
	if (!r) {
		if ((c->api <= TAPIR_LLM_NONE || c->api > TAPIR_LLM_TGI_STREAM) &&
		    c->api != TAPIR_API_HEAD)
			return -EINVAL;
		if (t->n >= TAPIR_LLM_TRACK_MAX)
			return -ENOSPC;
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		r->sock = c->sock;
		r->id = c->id;
		r->api = c->api;
		r->cgroup_id = c->cgroup_id;
		r->labels_id = c->labels_id;
		r->start_ns = c->start_ns;
		r->mark = -1;
		*p = r;
		t->n++;
	}
	r->last_ns = c->ts;
	if (c->dir == TAPIR_DIR_IN) {
		/* The request's own bytes: a gap in its head only costs its fields. */
		if (c->off != r->in_off)
			r->in_broken = true;
		r->in_off = (uint64_t)c->off + c->len;
		in_bytes(t, r, buf, c->len);
		return 0;
	}
	if (c->off < r->out_off || r->api == TAPIR_API_HEAD)
		return 0; /* never sent twice; a record from before is ignored */
	gap = c->off - r->out_off;
	if (gap) {
		if (r->q)
			tapir_llm_req__lost(r->q, gap);
		else
			r->out_lost += gap;
	}
	r->out_off = (uint64_t)c->off + c->len;
	if (r->out_lost && !r->q)
		return 0; /* a hole before the answer's head: its framing is unknown */
	out_bytes(r, buf, c->len, c->ts);
	return 0;
}

/* The result of @r, which ended at @end_ns (@aborted: its connection died first). */
static void finish(struct req *r, uint64_t end_ns, bool aborted, bool client_gone, uint16_t status,
		   struct tapir_llm_result *res)
{
	struct tapir_llm_resp_info info = { .status = status, .req_start_ns = r->start_ns };

	if (!r->q && !r->out_bad && !r->out_lost && !r->out.len) {
		/* No answer at all: an error with no tokens, as the request's record says (an
		 * abort is the 499 or 502 the HTTP families count it as). */
		if (!info.status && aborted)
			info.status = client_gone ? 499 : 502;
		parser_start(r, &info);
	}
	if (!r->q) {
		memset(res, 0, sizeof(*res));
		res->flags = TAPIR_LLM_UNPARSED;
		res->unparsed = r->out_bad    ? r->out_bad
				: r->out_lost ? TAPIR_LLM_LOST
				: r->out.len  ? TAPIR_LLM_TRUNCATED
					      : TAPIR_LLM_NO_MEMORY;
		res->stream = res->include_usage = -1;
		return;
	}
	tapir_llm_req__finish(r->q, end_ns, aborted, res);
}

static void unlink_req(struct tapir_llm_track *t, struct req **p)
{
	struct req *r = *p;

	*p = r->next;
	t->n--;
	req_free(r);
}

void tapir_llm_track__record(struct tapir_llm_track *t, const struct tapir_http_event *e,
			     bool count)
{
	struct tapir_llm_result res;
	struct req **p = slot_of(t, e->sock, e->llm_id, e->start_ns), *r = *p;

	if (!count || (r && r->api == TAPIR_API_HEAD)) {
		if (r)
			unlink_req(t, p);
		return;
	}
	if (!r) {
		/* Every piece of it was lost: it is known only as unparsed. */
		memset(&res, 0, sizeof(res));
		res.flags = TAPIR_LLM_UNPARSED;
		res.unparsed = TAPIR_LLM_LOST;
		res.stream = res.include_usage = -1;
		t->done(t->ctx, e->labels_id, e->cgroup_id, &res);
		return;
	}
	/* The end of the answer that never came over. */
	if (e->llm_out > r->out_off) {
		if (r->q)
			tapir_llm_req__lost(r->q, e->llm_out - r->out_off);
		else
			r->out_lost += e->llm_out - r->out_off;
	}
	finish(r, e->end_ns,
	       e->outcome == TAPIR_OUT_CLIENT_ABORT || e->outcome == TAPIR_OUT_SERVER_ABORT,
	       e->outcome == TAPIR_OUT_CLIENT_ABORT, e->status, &res);
	t->done(t->ctx, e->labels_id, e->cgroup_id, &res);
	unlink_req(t, p);
}

void tapir_llm_track__expire(struct tapir_llm_track *t, uint64_t now_ns, uint64_t idle_ns,
			     tapir_llm_alive_fn alive, void *ctx)
{
	struct tapir_llm_result res;
	struct req **p;
	size_t i;

	for (i = 0; i < BUCKETS; i++) {
		p = &t->chain[i];
		while (*p) {
			if (now_ns < (*p)->last_ns || now_ns - (*p)->last_ns < idle_ns ||
			    (alive && alive(ctx, (*p)->sock, (*p)->id, (*p)->start_ns))) {
				p = &(*p)->next;
				continue;
			}
			if ((*p)->api != TAPIR_API_HEAD) {
				memset(&res, 0, sizeof(res));
				res.flags = TAPIR_LLM_UNPARSED;
				res.unparsed = TAPIR_LLM_LOST;
				res.stream = res.include_usage = -1;
				t->done(t->ctx, (*p)->labels_id, (*p)->cgroup_id, &res);
			}
			unlink_req(t, p);
		}
	}
}

void tapir_llm_track__each(const struct tapir_llm_track *t,
			   void (*fn)(void *ctx, uint32_t labels_id, uint64_t cgroup_id), void *ctx)
{
	const struct req *r;
	size_t i;

	for (i = 0; i < BUCKETS; i++)
		for (r = t->chain[i]; r; r = r->next)
			if (r->api != TAPIR_API_HEAD)
				fn(ctx, r->labels_id, r->cgroup_id);
}

int tapir_llm_track__mark(const struct tapir_llm_track *t, const struct tapir_http_event *e)
{
	const struct req *r =
		*slot_of((struct tapir_llm_track *)t, e->sock, e->llm_id, e->start_ns);

	return r ? r->mark : -1;
}

size_t tapir_llm_track__in_flight(const struct tapir_llm_track *t)
{
	return t->n;
}
