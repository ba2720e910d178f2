// SPDX-License-Identifier: GPL-2.0
/* A stand-in for vLLM's OpenAI server in tests and benchmarks: chat and text completions,
 * streamed one token event per write at a set pace, hundreds of connections on one epoll loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * llm_server [-a ADDR] [-p PORT] [-i INTERVAL_US] [-w WORKERS] [-m MODEL]
 *
 * POST /v1/chat/completions, /chat/completions, /v1/completions, /completions with a
 * Content-Length body: the body is scanned, not parsed, for "max_tokens" (or
 * "max_completion_tokens"; default 16), "stream": true and "include_usage": true. The prompt
 * counts a token per 4 bytes of the body, rounded up: prompt_tokens = (body bytes + 3) / 4.
 * Every answer is max_tokens tokens of " tok", finish_reason "length", in vLLM's shapes:
 * - stream: headers, then one write per event, each one chunk of the chunked coding: the role
 *   event (chat only) at once, a content event every INTERVAL_US (0: as fast as the socket
 *   takes them), and right after the last one the usage event ("choices":[] and "usage") when
 *   include_usage was asked, then "data: [DONE]" with the closing 0-size chunk in one write;
 * - otherwise one JSON body with Content-Length, "usage" last, at once.
 * GET /health answers "ok"; GET /stats the server's own counts, as JSON, over all workers:
 * requests, llm_requests, streams, token_events (content events written whole), usages (usage
 * events or bodies written whole), usage_prompt_tokens and usage_completion_tokens (their
 * figures), unreported_streams and unreported_events (streams that ended or died without their
 * usage written whole, and their content events: what a counter of events must estimate).
 * Keep-alive unless the client says close or speaks HTTP/1.0. WORKERS processes (default 1)
 * share the listening socket; they end with the first.
 */

#define HEAD_MAX   (64 << 10)
#define BODY_MAX   (8 << 20)
#define TOKEN	   " tok"
#define TOKENS_MAX 1000000

enum api { API_CHAT, API_COMPLETIONS };

/* What a piece adds to the counts once its last byte is written. */
struct tally {
	uint64_t events, usages, prompt, completion;
};

/* The counts of every worker, in memory they share. */
struct stats {
	_Atomic uint64_t requests, llm_requests, streams, token_events, usages, usage_prompt,
		usage_completion, unreported_streams, unreported_events;
};

struct conn {
	int fd;
	char *in; /* NUL-terminated at in_len */
	size_t in_len, in_cap, req_len;
	char *out; /* bytes a write did not take */
	size_t out_len, out_cap;
	struct tally pend; /* what out adds once written */
	bool busy;	   /* a request is being answered; the next waits */
	bool finishing;	   /* its last piece is written or pending */
	bool keep_alive, eof;
	bool continued; /* 100 Continue sent for the request being read */
	/* The stream being sent. */
	bool streaming, usage, counting;
	enum api api;
	uint32_t left, sent, prompt;
	unsigned long id;
	uint64_t events_done, usages_done;
	long created;
	/* The queue of streams by due time. */
	uint64_t due;
	struct conn *prev, *next;
	bool queued;
};

static struct stats *stats;
static uint64_t interval_ns;
static const char *model = "tapir-test-model";
static int ep, tfd, lfd;
static uint64_t armed;
static struct conn *q_head, *q_tail;
/* epoll's data for the listening socket and the timer; connections carry their struct conn. */
static int tag_listen, tag_timer;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

/* Streams wait in one FIFO: every wait is the same interval, so appending at now + interval
 * keeps the queue ordered by due time. */
static void enqueue(struct conn *c, uint64_t due)
{
	c->due = due;
	c->next = NULL;
	c->prev = q_tail;
	if (q_tail)
		q_tail->next = c;
	else
		q_head = c;
	q_tail = c;
	c->queued = true;
}

static void dequeue(struct conn *c)
{
	if (!c->queued)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		q_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		q_tail = c->prev;
	c->queued = false;
}

static void settle(struct conn *c, const struct tally *t)
{
	if (t->events)
		atomic_fetch_add(&stats->token_events, t->events);
	if (t->usages) {
		atomic_fetch_add(&stats->usages, t->usages);
		atomic_fetch_add(&stats->usage_prompt, t->prompt);
		atomic_fetch_add(&stats->usage_completion, t->completion);
	}
	c->events_done += t->events;
	c->usages_done += t->usages;
}

/* A stream ended, whole or not: without its usage, its events are what a counter must use. */
static void stream_settled(struct conn *c)
{
	if (!c->counting)
		return;
	if (!c->usages_done) {
		atomic_fetch_add(&stats->unreported_streams, 1);
		atomic_fetch_add(&stats->unreported_events, c->events_done);
	}
	c->counting = false;
}

static void conn_close(struct conn *c)
{
	dequeue(c);
	stream_settled(c);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static int watch(struct conn *c, int op)
{
	struct epoll_event e = { .events = (c->eof ? 0 : EPOLLIN) | (c->out_len ? EPOLLOUT : 0),
				 .data.ptr = c };

	return epoll_ctl(ep, op, c->fd, &e);
}

/*
 * Write one piece, or queue it behind what the socket did not take; @t counts once it is all
 * written. Returns 0, or -1 when the connection is dead (the caller closes it).
 */
static int send_piece(struct conn *c, const char *p, size_t n, const struct tally *t)
{
	ssize_t w = 0;
	bool was_empty = !c->out_len;

	if (!c->out_len) {
		w = write(c->fd, p, n);
		if (w < 0 && errno != EAGAIN)
			return -1;
		if (w < 0)
			w = 0;
		if ((size_t)w == n) {
			settle(c, t);
			return 0;
		}
	}
	if (c->out_len + n - w > c->out_cap) {
		size_t cap = (c->out_len + n - w) * 2;
		char *b = realloc(c->out, cap);

		if (!b)
			return -1;
		c->out = b;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p + w, n - w);
	c->out_len += n - w;
	c->pend.events += t->events;
	c->pend.usages += t->usages;
	c->pend.prompt += t->prompt;
	c->pend.completion += t->completion;
	dequeue(c);
	return was_empty ? watch(c, EPOLL_CTL_MOD) : 0;
}

/* One chunk of the chunked coding holding one SSE event whose data is the formatted text. */
static int send_event(struct conn *c, const struct tally *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int send_event(struct conn *c, const struct tally *t, const char *fmt, ...)
{
	char data[1024], buf[1100];
	va_list ap;
	int n, k;

	va_start(ap, fmt);
	n = vsnprintf(data, sizeof(data), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(data))
		return -1;
	k = snprintf(buf, sizeof(buf), "%x\r\ndata: %s\n\n\r\n", n + 8, data);
	return send_piece(c, buf, k, t);
}

static const char *object_of(const struct conn *c)
{
	return c->api == API_CHAT ? "chat.completion.chunk" : "text_completion";
}

static const char *id_prefix(const struct conn *c)
{
	return c->api == API_CHAT ? "chatcmpl" : "cmpl";
}

/* The next event of a stream: a token, or the last token with what follows it. */
static int stream_step(struct conn *c)
{
	static const struct tally none, one = { .events = 1 };
	struct tally u = { .usages = 1, .prompt = c->prompt, .completion = c->sent + 1 };
	const char *fin = c->left == 1 ? "\"length\"" : "null";
	static const char done[] = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";

	if (c->api == API_CHAT) {
		if (send_event(c, &one,
			       "{\"id\":\"chatcmpl-%lu\",\"object\":\"chat.completion.chunk\","
			       "\"created\":%ld,\"model\":\"%s\",\"choices\":[{\"index\":0,"
			       "\"delta\":{\"content\":\"" TOKEN "\"},\"logprobs\":null,"
			       "\"finish_reason\":%s}]}",
			       c->id, c->created, model, fin))
			return -1;
	} else if (send_event(c, &one,
			      "{\"id\":\"cmpl-%lu\",\"object\":\"text_completion\",\"created\":%ld,"
			      "\"model\":\"%s\",\"choices\":[{\"index\":0,\"text\":\"" TOKEN "\","
			      "\"logprobs\":null,\"finish_reason\":%s,\"stop_reason\":null}]}",
			      c->id, c->created, model, fin)) {
		return -1;
	}
	c->sent++;
	if (--c->left)
		return 0;
	if (c->usage &&
	    send_event(c, &u,
		       "{\"id\":\"%s-%lu\",\"object\":\"%s\",\"created\":%ld,\"model\":\"%s\","
		       "\"choices\":[],\"usage\":{\"prompt_tokens\":%u,\"total_tokens\":%u,"
		       "\"completion_tokens\":%u,\"prompt_tokens_details\":null}}",
		       id_prefix(c), c->id, object_of(c), c->created, model, c->prompt,
		       c->prompt + c->sent, c->sent))
		return -1;
	c->streaming = false;
	c->finishing = true;
	return send_piece(c, done, sizeof(done) - 1, &none);
}

static int process_input(struct conn *c);

/* The answer is all written: the request's bytes go, and the next request is read. */
static int response_done(struct conn *c)
{
	stream_settled(c);
	c->busy = c->finishing = false;
	memmove(c->in, c->in + c->req_len, c->in_len - c->req_len + 1);
	c->in_len -= c->req_len;
	c->req_len = 0;
	if (!c->keep_alive)
		return -1;
	return process_input(c);
}

/* After a piece went out whole or the socket took the rest: what comes next. */
static int advance(struct conn *c, uint64_t now)
{
	if (c->out_len)
		return 0; /* EPOLLOUT brings it back */
	if (c->streaming) {
		if (!c->queued)
			enqueue(c, now + interval_ns);
		return 0;
	}
	return c->finishing ? response_done(c) : 0;
}

static int send_simple(struct conn *c, int status, const char *reason, const char *type,
		       const char *body, const struct tally *t)
{
	char head[512];
	size_t n = strlen(body);
	int k = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nServer: llm_server\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\n%s\r\n",
			 status, reason, type, n, c->keep_alive ? "" : "Connection: close\r\n");
	char *all = malloc(k + n);
	int err;

	if (!all)
		return -1;
	memcpy(all, head, k);
	memcpy(all + k, body, n);
	c->finishing = true;
	err = send_piece(c, all, k + n, t);
	free(all);
	return err;
}

/* The value after "@key": in the body, skipping blanks; NULL when the key is not there. */
static const char *json_value(const char *body, size_t n, const char *key)
{
	char quoted[64];
	int k = snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	const char *p = memmem(body, n, quoted, k), *end = body + n;

	if (!p)
		return NULL;
	for (p += k; p < end && strchr(" \t\r\n", *p); p++)
		;
	if (p == end || *p != ':')
		return NULL;
	for (p++; p < end && strchr(" \t\r\n", *p); p++)
		;
	return p < end ? p : NULL;
}

static bool json_true(const char *body, size_t n, const char *key)
{
	const char *v = json_value(body, n, key);

	return v && body + n - v >= 4 && !memcmp(v, "true", 4);
}

static int start_stream(struct conn *c, bool usage)
{
	static const struct tally none;
	char head[256];
	int k = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nServer: llm_server\r\n"
			 "Content-Type: text/event-stream; charset=utf-8\r\n"
			 "Transfer-Encoding: chunked\r\n%s\r\n",
			 c->keep_alive ? "" : "Connection: close\r\n");

	atomic_fetch_add(&stats->streams, 1);
	c->usage = usage;
	c->streaming = c->counting = true;
	c->events_done = c->usages_done = 0;
	if (send_piece(c, head, k, &none))
		return -1;
	if (c->api != API_CHAT)
		return 0; /* completions streams have no role event */
	/* The role event at once, the first token an interval later. */
	return send_event(c, &none,
			  "{\"id\":\"chatcmpl-%lu\",\"object\":\"chat.completion.chunk\","
			  "\"created\":%ld,\"model\":\"%s\",\"choices\":[{\"index\":0,"
			  "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
			  "\"logprobs\":null,\"finish_reason\":null}]}",
			  c->id, c->created, model);
}

/* A whole answer: the tokens as one text, "usage" last. */
static int answer_whole(struct conn *c, long max)
{
	struct tally u = { .usages = 1, .prompt = c->prompt, .completion = max };
	size_t cap = max * (sizeof(TOKEN) - 1) + 1024, n;
	char *body = malloc(cap), *p;
	int err;

	if (!body)
		return -1;
	n = snprintf(body, cap,
		     "{\"id\":\"%s-%lu\",\"object\":\"%s\",\"created\":%ld,\"model\":\"%s\","
		     "\"choices\":[{\"index\":0,%s",
		     id_prefix(c), c->id,
		     c->api == API_CHAT ? "chat.completion" : "text_completion", c->created, model,
		     c->api == API_CHAT ? "\"message\":{\"role\":\"assistant\",\"content\":\""
					: "\"text\":\"");
	for (p = body + n; max--; p += sizeof(TOKEN) - 1)
		memcpy(p, TOKEN, sizeof(TOKEN) - 1);
	snprintf(p, body + cap - p,
		 "\"%s,\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null}],"
		 "\"usage\":{\"prompt_tokens\":%u,\"total_tokens\":%lu,\"completion_tokens\":%lu,"
		 "\"prompt_tokens_details\":null},\"prompt_logprobs\":null}",
		 c->api == API_CHAT ? ",\"tool_calls\":[]}" : "", c->prompt,
		 (unsigned long)(c->prompt + u.completion), (unsigned long)u.completion);
	err = send_simple(c, 200, "OK", "application/json", body, &u);
	free(body);
	return err;
}

static int answer_llm(struct conn *c, enum api api, const char *body, size_t n)
{
	const char *v = json_value(body, n, "max_tokens");
	long max = 16;

	if (!v)
		v = json_value(body, n, "max_completion_tokens");
	if (v && *v >= '0' && *v <= '9')
		max = strtol(v, NULL, 10);
	if (max < 1)
		max = 1;
	if (max > TOKENS_MAX)
		max = TOKENS_MAX;
	c->id = atomic_fetch_add(&stats->llm_requests, 1) + 1; /* one numbering for every worker */
	c->api = api;
	c->created = time(NULL);
	c->prompt = (n + 3) / 4;
	c->left = max;
	c->sent = 0;
	if (json_true(body, n, "stream"))
		return start_stream(c, json_true(body, n, "include_usage"));
	return answer_whole(c, max);
}

static int answer_stats(struct conn *c)
{
	static const struct tally none;
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"requests\":%lu,\"llm_requests\":%lu,\"streams\":%lu,\"token_events\":%lu,"
		 "\"usages\":%lu,\"usage_prompt_tokens\":%lu,\"usage_completion_tokens\":%lu,"
		 "\"unreported_streams\":%lu,\"unreported_events\":%lu}\n",
		 (unsigned long)stats->requests, (unsigned long)stats->llm_requests,
		 (unsigned long)stats->streams, (unsigned long)stats->token_events,
		 (unsigned long)stats->usages, (unsigned long)stats->usage_prompt,
		 (unsigned long)stats->usage_completion, (unsigned long)stats->unreported_streams,
		 (unsigned long)stats->unreported_events);
	return send_simple(c, 200, "OK", "application/json", body, &none);
}

/* A field's value in the head [@p, @end), or NULL; @name includes the colon. */
static const char *field(const char *p, const char *end, const char *name)
{
	size_t k = strlen(name);

	for (p = memchr(p, '\n', end - p); p && p + 1 + k < end;
	     p = memchr(p + 1, '\n', end - p - 1))
		if (!strncasecmp(p + 1, name, k)) {
			for (p += 1 + k; *p == ' ' || *p == '\t'; p++)
				;
			return p;
		}
	return NULL;
}

static int route(struct conn *c, const char *head, size_t head_len, const char *body, size_t n)
{
	static const struct tally none;
	char method[8], path[64];

	if (sscanf(head, "%7s %63s", method, path) != 2)
		return send_simple(c, 400, "Bad Request", "text/plain", "bad request\n", &none);
	if (!strcmp(method, "POST")) {
		if (!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/chat/completions"))
			return answer_llm(c, API_CHAT, body, n);
		if (!strcmp(path, "/v1/completions") || !strcmp(path, "/completions"))
			return answer_llm(c, API_COMPLETIONS, body, n);
	} else if (!strcmp(method, "GET")) {
		if (!strcmp(path, "/health"))
			return send_simple(c, 200, "OK", "text/plain", "ok\n", &none);
		if (!strcmp(path, "/stats"))
			return answer_stats(c);
	}
	return send_simple(c, 404, "Not Found", "text/plain", "not found\n", &none);
}

/* A whole request in the buffer is answered; 0 while it is not all there yet. */
static int process_input(struct conn *c)
{
	const char *end, *eol, *v, *head = c->in;
	size_t head_len, body_len = 0;

	if (c->busy)
		return 0;
	end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end)
		return c->in_len > HEAD_MAX || c->eof ? -1 : 0;
	head_len = end + 4 - c->in;
	v = field(head, end + 2, "content-length:");
	if (v)
		body_len = strtoul(v, NULL, 10);
	if (field(head, end + 2, "transfer-encoding:") || body_len > BODY_MAX)
		return -1; /* chunked or huge request bodies: not for this server */
	if (c->in_len < head_len + body_len) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		static const struct tally none;

		/* curl asks before a body over 1 KiB, and waits a second for the answer. */
		v = field(head, end + 2, "expect:");
		if (v && !strncasecmp(v, "100-continue", 12) && !c->continued) {
			c->continued = true;
			return send_piece(c, cont, sizeof(cont) - 1, &none);
		}
		return c->eof ? -1 : 0;
	}
	c->continued = false;
	v = field(head, end + 2, "connection:");
	eol = memchr(head, '\r', end + 2 - head);
	if (eol - head > 8 && !memcmp(eol - 8, "HTTP/1.1", 8))
		c->keep_alive = !(v && !strncasecmp(v, "close", 5));
	else
		c->keep_alive = v && !strncasecmp(v, "keep-alive", 10);
	c->busy = true;
	c->req_len = head_len + body_len;
	atomic_fetch_add(&stats->requests, 1);
	if (route(c, head, head_len, c->in + head_len, body_len))
		return -1;
	return advance(c, now_ns());
}

static int on_readable(struct conn *c)
{
	ssize_t n;

	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
			char *b;

			if (cap > HEAD_MAX + BODY_MAX + 65536)
				return -1;
			b = realloc(c->in, cap + 1);
			if (!b)
				return -1;
			c->in = b;
			c->in_cap = cap;
		}
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0)
			break;
		if (n == 0) {
			c->eof = true;
			if (watch(c, EPOLL_CTL_MOD))
				return -1;
			break;
		}
		c->in_len += n;
		c->in[c->in_len] = 0;
	}
	if (n < 0 && errno != EAGAIN)
		return -1;
	if (c->busy)
		return 0;
	return process_input(c) || (c->eof && !c->busy) ? -1 : 0;
}

static int on_writable(struct conn *c)
{
	ssize_t w = write(c->fd, c->out, c->out_len);
	struct tally t = c->pend;

	if (w < 0)
		return errno == EAGAIN ? 0 : -1;
	memmove(c->out, c->out + w, c->out_len - w);
	c->out_len -= w;
	if (c->out_len)
		return 0;
	memset(&c->pend, 0, sizeof(c->pend));
	settle(c, &t);
	if (watch(c, EPOLL_CTL_MOD))
		return -1;
	return advance(c, now_ns());
}

static void on_accept(void)
{
	int fd, one = 1;
	struct conn *c;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (watch(c, EPOLL_CTL_ADD)) {
			conn_close(c);
			continue;
		}
	}
}

/* Every stream due by now sends its next event; each once per pass, however short the pace. */
static void run_due(void)
{
	uint64_t now = now_ns();
	struct conn *c, *last = q_tail;

	while ((c = q_head) && c->due <= now) {
		bool was_last = c == last;

		dequeue(c);
		if (stream_step(c) || advance(c, now))
			conn_close(c);
		if (was_last)
			break;
	}
}

/* The timer rings when the queue's head is due; with nothing queued it is off. */
static void arm_timer(void)
{
	uint64_t due = q_head ? q_head->due : 0;
	struct itimerspec its = { 0 };

	if (due == armed)
		return;
	its.it_value.tv_sec = due / 1000000000ULL;
	its.it_value.tv_nsec = due % 1000000000ULL;
	if (due && !its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
	armed = due;
}

static void serve(void)
{
	struct epoll_event ev[256];
	int i, n, timeout;

	for (;;) {
		/* Streams already due: poll the sockets and go on sending. */
		timeout = q_head && q_head->due <= now_ns() ? 0 : -1;
		if (timeout < 0)
			arm_timer();
		n = epoll_wait(ep, ev, 256, timeout);
		for (i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;

			if (c == (void *)&tag_listen) {
				on_accept();
			} else if (c == (void *)&tag_timer) {
				uint64_t ticks;

				/* It rang: the next arm_timer() sets it again. */
				if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
					armed = 0;
			} else if ((ev[i].events & EPOLLOUT && on_writable(c)) ||
				   (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) &&
				    on_readable(c))) {
				conn_close(c);
			}
		}
		run_due();
	}
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	socklen_t len = sizeof(a);

	if (fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	fprintf(stderr, "llm_server: listening on %s:%d\n", addr, ntohs(a.sin_port));
	return fd;
}

/* One worker's loop: its own epoll and timer on the shared listening socket. */
static int worker(void)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen };

	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ep < 0 || tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e))
		return -1;
	e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &tag_timer };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e))
		return -1;
	serve();
	return 0;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 8000, workers = 1, opt, i;

	while ((opt = getopt(argc, argv, "a:p:i:w:m:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'i': interval_ns = strtoull(optarg, NULL, 10) * 1000; break;
		case 'w': workers = atoi(optarg); break;
		case 'm': model = optarg; break;
		default:
			fprintf(stderr,
				"usage: %s [-a ADDR] [-p PORT] [-i INTERVAL_US] [-w WORKERS] [-m MODEL]\n"
				"a stand-in vLLM: OpenAI chat and text completions, streamed a token\n"
				"event per write every INTERVAL_US (0: at once); see tools/llm_server.c\n",
				argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	lfd = listen_on(addr, port);
	if (stats == MAP_FAILED || lfd < 0) {
		perror("llm_server");
		return 1;
	}
	for (i = 1; i < workers; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("llm_server: fork");
			return 1;
		}
		if (!pid) {
			/* The workers go with the first. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			break;
		}
	}
	if (worker()) {
		perror("llm_server");
		return 1;
	}
	return 0;
}
