// SPDX-License-Identifier: GPL-2.0
/* Unit tests for llm_track.c: requests and answers handed over in pieces as the kernel hands them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm_track.h"
#include "tapir/http.h"
#include "llm_samples.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MS	      1000000ULL
#define T0	      (1000 * MS) /* every request's first byte */
#define SOCK_A	      0xffff888012345600ULL
#define SOCK_B	      0xffff888012349a00ULL

#define F_EXACT (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT | TAPIR_LLM_EXACT)
#define F_EST	(TAPIR_LLM_OUTPUT | TAPIR_LLM_ESTIMATED)

/* vLLM 0.8's streams come from llm_samples.h; its non-streaming chat answer, usage last: */
#define VLLM_JSON                                                                                 \
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","    \
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\","       \
	"\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}]," \
	"\"usage\":{\"prompt_tokens\":20,\"total_tokens\":25,\"completion_tokens\":5,"            \
	"\"prompt_tokens_details\":{\"cached_tokens\":16}},\"prompt_logprobs\":null}"

/* uvicorn's heads, as vLLM sends them. */
#define HEAD_SSE                                                                        \
	"HTTP/1.1 200 OK\r\ndate: Mon, 10 Jun 2024 06:13:20 GMT\r\nserver: uvicorn\r\n" \
	"content-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
#define HEAD_JSON                                                                       \
	"HTTP/1.1 200 OK\r\ndate: Mon, 10 Jun 2024 06:13:20 GMT\r\nserver: uvicorn\r\n" \
	"content-length: %zu\r\ncontent-type: application/json\r\n\r\n"

/* Request bodies, as the OpenAI Python client writes them. */
#define BODY_STREAM                                                                              \
	"{\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],\"model\":\"m\",\"n\":1," \
	"\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
#define BODY_JSON \
	"{\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}],\"model\":\"m\",\"stream\":false}"

/* --- what the tracker reports ------------------------------------------------------------- */

struct done {
	uint32_t labels_id;
	uint64_t cgroup_id;
	struct tapir_llm_result res;
};

struct fix {
	struct tapir_llm_track *t;
	struct done done[8];
	size_t n_done;
};

static void on_done(void *ctx, uint32_t labels_id, uint64_t cgroup_id,
		    const struct tapir_llm_result *res)
{
	struct fix *f = ctx;

	assert_true(f->n_done < ARRAY_SIZE(f->done));
	f->done[f->n_done].labels_id = labels_id;
	f->done[f->n_done].cgroup_id = cgroup_id;
	memcpy(&f->done[f->n_done].res, res, sizeof(*res));
	f->n_done++;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->t = tapir_llm_track__new(16384, on_done, NULL, f);
	if (!f->t) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	tapir_llm_track__free(f->t);
	free(f);
	return 0;
}

/* A tracker of its own, for the tests that feed one exchange many times. */
static void reset(struct fix *f, size_t request_head_bytes)
{
	tapir_llm_track__free(f->t);
	f->t = tapir_llm_track__new(request_head_bytes, on_done, NULL, f);
	assert_non_null(f->t);
	f->n_done = 0;
}

/* Field by field, so that a failure says which one. */
static void expect(const struct tapir_llm_result *got, const struct tapir_llm_result *want,
		   const char *what)
{
	size_t i;

#define SAME(field)                                                                               \
	do {                                                                                      \
		if (got->field != want->field)                                                    \
			fail_msg("%s: " #field " %lld, want %lld (flags %#x, unparsed %s)", what, \
				 (long long)got->field, (long long)want->field, got->flags,       \
				 tapir_llm_unparsed_name(got->unparsed));                         \
	} while (0)
	if (got->flags != want->flags)
		fail_msg("%s: flags %#x, want %#x (unparsed %s)", what, got->flags, want->flags,
			 tapir_llm_unparsed_name(got->unparsed));
	SAME(unparsed);
	SAME(input_tokens);
	SAME(output_tokens);
	SAME(cached_tokens);
	SAME(token_events);
	SAME(first_token_ns);
	SAME(last_token_ns);
	SAME(ttft_ns);
	SAME(stream);
	SAME(include_usage);
	SAME(n);
#undef SAME
	for (i = 0; i <= TAPIR_LLM_LATENCY_BUCKETS; i++)
		if (got->gap_counts[i] != want->gap_counts[i])
			fail_msg("%s: gap_counts[%zu] %llu, want %llu", what, i,
				 (unsigned long long)got->gap_counts[i],
				 (unsigned long long)want->gap_counts[i]);
	if (got->tokens_per_s < want->tokens_per_s - 1e-9 ||
	    got->tokens_per_s > want->tokens_per_s + 1e-9)
		fail_msg("%s: tokens_per_s %g, want %g", what, got->tokens_per_s,
			 want->tokens_per_s);
	if (got->gap_sum_s < want->gap_sum_s - 1e-12 || got->gap_sum_s > want->gap_sum_s + 1e-12)
		fail_msg("%s: gap_sum_s %g, want %g", what, got->gap_sum_s, want->gap_sum_s);
}

/* What the tracker says of a request it knows nothing of. */
static struct tapir_llm_result lost_result(void)
{
	struct tapir_llm_result r = { .flags = TAPIR_LLM_UNPARSED, .unparsed = TAPIR_LLM_LOST };

	r.stream = r.include_usage = -1;
	return r;
}

/* --- the kernel's side -------------------------------------------------------------------- */

/* One LLM request as bpf/http.bpf.c sees it: bytes of each direction handed or lost so far. */
struct kreq {
	uint64_t sock, cgroup_id, start_ns;
	uint32_t id, labels_id, in_off, out_off;
	uint8_t api;
};

static struct kreq kreq(uint64_t sock, uint32_t id, uint32_t labels_id)
{
	return (struct kreq){ .sock = sock,
			      .id = id,
			      .labels_id = labels_id,
			      .cgroup_id = 0x4000 + labels_id,
			      .start_ns = T0,
			      .api = TAPIR_LLM_CHAT };
}

/* One piece, as llm_piece() writes it to llm_events. */
static int piece(struct fix *f, const struct kreq *k, uint8_t dir, uint32_t off, const void *data,
		 size_t len, uint64_t ts)
{
	struct tapir_llm_chunk *c = calloc(1, sizeof(*c) + len);
	int ret;

	assert_non_null(c);
	c->type = TAPIR_REC_LLM;
	c->id = k->id;
	c->sock = k->sock;
	c->cgroup_id = k->cgroup_id;
	c->start_ns = k->start_ns;
	c->ts = ts;
	c->off = off;
	c->len = len;
	c->labels_id = k->labels_id;
	c->dir = dir;
	c->api = k->api;
	memcpy(c + 1, data, len);
	ret = tapir_llm_track__chunk(f->t, c, sizeof(*c) + len);
	free(c);
	return ret;
}

/* A read (IN) or write (OUT) of @len bytes at @ts: pieces of TAPIR_LLM_CHUNK bytes at most. */
static void move(struct fix *f, struct kreq *k, uint8_t dir, const void *data, size_t len,
		 uint64_t ts)
{
	uint32_t *off = dir == TAPIR_DIR_IN ? &k->in_off : &k->out_off;
	size_t n;

	while (len) {
		n = len < TAPIR_LLM_CHUNK ? len : TAPIR_LLM_CHUNK;
		assert_int_equal(piece(f, k, dir, *off, data, n, ts), 0);
		*off += n;
		data = (const char *)data + n;
		len -= n;
	}
}

/* Bytes the ring had no room for: counted in the offsets, never handed. */
static void lose(struct kreq *k, uint8_t dir, size_t n)
{
	*(dir == TAPIR_DIR_IN ? &k->in_off : &k->out_off) += n;
}

/* The request's record, after its last piece; @tail: answer bytes seen past those handed. */
static void record(struct fix *f, const struct kreq *k, uint8_t outcome, uint16_t status,
		   uint64_t end_ns, uint32_t tail)
{
	struct tapir_http_event e = {
		.type = TAPIR_REC_HTTP,
		.labels_id = k->labels_id,
		.cgroup_id = k->cgroup_id,
		.start_ns = k->start_ns,
		.end_ns = end_ns,
		.status = status,
		.method = TP_M_POST,
		.outcome = outcome,
		.sock = k->sock,
		.llm_id = k->id,
		.llm_out = k->out_off + tail,
	};

	memcpy(e.line, "POST /v1/chat/completions HTTP/1", TAPIR_LINE_BYTES);
	tapir_llm_track__record(f->t, &e, true);
}

/* --- exchanges ---------------------------------------------------------------------------- */

#define MAX_WRITES 16

/* An answer as the server wrote it: its bytes and where each write ended, and when. */
struct answer {
	char p[4096];
	size_t len, n, end[MAX_WRITES];
	uint64_t ts[MAX_WRITES];
};

static void add(struct answer *a, uint64_t ts, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(struct answer *a, uint64_t ts, const char *fmt, ...)
{
	va_list ap;
	int n;

	assert_true(a->n < MAX_WRITES);
	va_start(ap, fmt);
	n = vsnprintf(a->p + a->len, sizeof(a->p) - a->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(a->p) - a->len);
	a->len += n;
	a->end[a->n] = a->len;
	a->ts[a->n++] = ts;
}

/* One write of a chunked body: @data as one chunk, as uvicorn frames each event. */
static void add_chunk(struct answer *a, uint64_t ts, const char *data)
{
	add(a, ts, "%zx\r\n%s\r\n", strlen(data), data);
}

/* The vLLM stream: its head at 200 ms, an event every 20 ms from 250 ms, a chunk each, then the
 * last chunk. Writes: 0 head, 1 role, 2-4 content, 5 usage, 6 [DONE], 7 last chunk. */
#define STREAM_END (T0 + 351 * MS)
static void vllm_stream(struct answer *a)
{
	memset(a, 0, sizeof(*a));
	add(a, T0 + 200 * MS, "%s", HEAD_SSE);
	add_chunk(a, T0 + 250 * MS, VLLM_ROLE);
	add_chunk(a, T0 + 270 * MS, VLLM_CHUNK("Hello", "null"));
	add_chunk(a, T0 + 290 * MS, VLLM_CHUNK(" world", "null"));
	add_chunk(a, T0 + 310 * MS, VLLM_CHUNK("!", "\"stop\""));
	add_chunk(a, T0 + 330 * MS, VLLM_USAGE);
	add_chunk(a, T0 + 350 * MS, "data: [DONE]\n\n");
	add(a, T0 + 350 * MS, "0\r\n\r\n");
}

static struct tapir_llm_result vllm_stream_result(void)
{
	struct tapir_llm_result r = {
		.input_tokens = 12,
		.output_tokens = 3,
		.flags = F_EXACT,
		.token_events = 3,
		.first_token_ns = T0 + 270 * MS,
		.last_token_ns = T0 + 310 * MS,
		.ttft_ns = 270 * MS,
		.tokens_per_s = 75, /* 3 tokens over the 40 ms of the token events */
		.gap_sum_s = 0.04,
		.stream = 1,
		.include_usage = 1,
		.n = 1,
	};

	r.gap_counts[3] = 2; /* 20 ms: (0.015, 0.02] */
	return r;
}

/* The non-streaming answer at 400 ms, head and body written apart; @interim: a 100 Continue at
 * 1 ms first (the request's body is read after it); @lf: heads whose lines end in bare LFs. */
#define JSON_END (T0 + 400 * MS)
static void vllm_json(struct answer *a, bool interim, bool lf)
{
	memset(a, 0, sizeof(*a));
	if (interim)
		add(a, T0 + 1 * MS,
		    lf ? "HTTP/1.1 100 Continue\n\n" : "HTTP/1.1 100 Continue\r\n\r\n");
	if (lf)
		add(a, T0 + 400 * MS,
		    "HTTP/1.1 200 OK\nserver: x\ncontent-length: %zu\ncontent-type: application/json\n\n",
		    strlen(VLLM_JSON));
	else
		add(a, T0 + 400 * MS, HEAD_JSON, strlen(VLLM_JSON));
	add(a, T0 + 400 * MS, "%s", VLLM_JSON);
}

static struct tapir_llm_result vllm_json_result(void)
{
	return (struct tapir_llm_result){
		.input_tokens = 20,
		.output_tokens = 5,
		.cached_tokens = 16,
		.flags = F_EXACT | TAPIR_LLM_CACHED,
		.tokens_per_s = 12.5, /* 5 tokens over the whole 400 ms */
		.stream = 0,
		.include_usage = -1,
	};
}

/* The request's line, head and body, as one read. */
static size_t request(char *buf, size_t size, const char *body, const char *extra)
{
	int n = snprintf(buf, size,
			 "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:8000\r\n"
			 "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
			 "Accept: application/json\r\nContent-Type: application/json\r\n"
			 "User-Agent: OpenAI/Python 1.30.1\r\n%sContent-Length: %zu\r\n\r\n%s",
			 extra, strlen(body), body);

	assert_true(n > 0 && (size_t)n < size);
	return n;
}

static void read_request(struct fix *f, struct kreq *k, const char *body)
{
	char buf[1024];
	size_t n = request(buf, sizeof(buf), body, "");

	move(f, k, TAPIR_DIR_IN, buf, n, k->start_ns + 50000);
}

/* Writes [@from_w, @to_w) of @a; each also cut at @cut when it falls inside, or byte by byte. */
static void write_answer(struct fix *f, struct kreq *k, const struct answer *a, size_t from_w,
			 size_t to_w, size_t cut, bool bytewise)
{
	size_t w, at, to;

	for (w = from_w; w < to_w; w++)
		for (at = w ? a->end[w - 1] : 0; at < a->end[w]; at = to) {
			if (bytewise)
				to = at + 1;
			else
				to = cut > at && cut < a->end[w] ? cut : a->end[w];
			move(f, k, TAPIR_DIR_OUT, a->p + at, to - at, a->ts[w]);
		}
}

/* Writes [@from_w, @to_w) of @a lost whole. */
static void lose_writes(struct kreq *k, const struct answer *a, size_t from_w, size_t to_w)
{
	lose(k, TAPIR_DIR_OUT, a->end[to_w - 1] - (from_w ? a->end[from_w - 1] : 0));
}

/* The one result of one request, from the labels and cgroup of @k. */
static const struct tapir_llm_result *only(struct fix *f, const struct kreq *k)
{
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done[0].labels_id, k->labels_id);
	assert_int_equal(f->done[0].cgroup_id, k->cgroup_id);
	return &f->done[0].res;
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_stream(void **state)
{
	struct tapir_llm_result want = vllm_stream_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_stream(&a);
	read_request(f, &k, BODY_STREAM);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 1);
	write_answer(f, &k, &a, 0, a.n, 0, false);
	assert_int_equal(f->n_done, 0);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	expect(only(f, &k), &want, "vllm stream");
	assert_int_equal(tapir_llm_track__in_flight(f->t), 0);
}

static void test_json(void **state)
{
	struct tapir_llm_result want = vllm_json_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_json(&a, false, false);
	read_request(f, &k, BODY_JSON);
	write_answer(f, &k, &a, 0, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	expect(only(f, &k), &want, "vllm json");
}

/* A 100 Continue (and a 103) before the answer: skipped, the request's body read after it. */
static void test_interim(void **state)
{
	struct tapir_llm_result want = vllm_json_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	char buf[1024];
	size_t n = request(buf, sizeof(buf), BODY_JSON, "Expect: 100-continue\r\n");
	size_t body = n - strlen(BODY_JSON);
	struct answer a;

	vllm_json(&a, true, false);
	move(f, &k, TAPIR_DIR_IN, buf, body, T0);
	write_answer(f, &k, &a, 0, 1, 0, false);
	move(f, &k, TAPIR_DIR_IN, buf + body, n - body, T0 + 2 * MS);
	write_answer(f, &k, &a, 1, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	expect(only(f, &k), &want, "100 continue");

	/* Two interim heads and the final one in one write. */
	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	move(f, &k, TAPIR_DIR_IN, buf, n, T0);
	memset(&a, 0, sizeof(a));
	add(&a, T0 + 400 * MS,
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
	    "\r\n" HEAD_JSON "%s",
	    strlen(VLLM_JSON), VLLM_JSON);
	write_answer(f, &k, &a, 0, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	expect(only(f, &k), &want, "100 and 103 in one write");
}

/* Each exchange cut at every byte of its answer (head included), and byte by byte: the result
 * of the answer handed a write a piece, the expected one. */
static void test_every_split(void **state)
{
	static const struct {
		const char *name, *body;
		int kind; /* 0 stream, 1 json, 2 json after 100 Continue, 3 the same in bare LFs */
	} cases[] = {
		{ "vllm stream", BODY_STREAM, 0 },
		{ "vllm json", BODY_JSON, 1 },
		{ "vllm json, 100 continue", BODY_JSON, 2 },
		{ "vllm json, 100 continue, bare LFs", BODY_JSON, 3 },
	};
	struct tapir_llm_result want, whole;
	struct fix *f = *state;
	struct answer a;
	struct kreq k;
	size_t c, i;

	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		if (cases[c].kind == 0)
			vllm_stream(&a);
		else
			vllm_json(&a, cases[c].kind >= 2, cases[c].kind == 3);
		want = cases[c].kind ? vllm_json_result() : vllm_stream_result();
		for (i = 0; i <= a.len + 1; i++) {
			reset(f, 16384);
			k = kreq(SOCK_A, 1, 7);
			read_request(f, &k, cases[c].body);
			/* a.len + 1: byte by byte */
			write_answer(f, &k, &a, 0, a.n, i, i > a.len);
			record(f, &k, TAPIR_OUT_COMPLETE, 200,
			       cases[c].kind ? JSON_END : STREAM_END, 0);
			if (!i) {
				expect(only(f, &k), &want, cases[c].name);
				whole = f->done[0].res;
			} else if (memcmp(only(f, &k), &whole, sizeof(whole))) {
				expect(&f->done[0].res, &whole, cases[c].name);
				fail_msg("%s: cut at %zu differs", cases[c].name, i);
			}
		}
	}
}

/* Where the read from @at ends, of @n request bytes whose body starts at @body: @how 0 reads
 * them whole, 1 head and body apart, 2 byte by byte, 3 + i cut at byte i. */
static size_t next_cut(int how, size_t at, size_t n, size_t body)
{
	switch (how) {
	case 0: return n;
	case 1: return at < body ? body : n;
	case 2: return at + 1;
	default: return at < (size_t)how - 3 ? (size_t)how - 3 : n;
	}
}

/* The request's line, head and body in any pieces: stream, include_usage and n from its body;
 * a body past request_head_bytes, chunked, or after a gap is not read. */
static void test_request_head(void **state)
{
	const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
			   "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":2}";
	struct fix *f = *state;
	struct tapir_llm_result r;
	struct answer a;
	struct kreq k;
	char buf[1024];
	size_t n = request(buf, sizeof(buf), body, ""), i, at, to;
	int how;

	vllm_stream(&a);
	for (how = 0; how < 3 + (int)n; how++) {
		reset(f, 16384);
		k = kreq(SOCK_A, 1, 7);
		for (at = 0; at < n; at = to) {
			to = next_cut(how, at, n, n - strlen(body));
			move(f, &k, TAPIR_DIR_IN, buf + at, to - at, T0 + at);
		}
		write_answer(f, &k, &a, 0, a.n, 0, false);
		record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
		r = *only(f, &k);
		if (r.stream != 1 || r.include_usage != 1 || r.n != 2 || r.flags != F_EXACT)
			fail_msg("request fed %d: stream %d include_usage %d n %lu flags %#x", how,
				 r.stream, r.include_usage, (unsigned long)r.n, r.flags);
	}

	/* request_head_bytes: a body cut short is not a document; 0 reads none. */
	for (i = 0; i < 2; i++) {
		reset(f, i ? 0 : strlen(body) - 1);
		k = kreq(SOCK_A, 1, 7);
		move(f, &k, TAPIR_DIR_IN, buf, n, T0);
		write_answer(f, &k, &a, 0, a.n, 0, false);
		record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
		r = *only(f, &k);
		assert_int_equal(r.stream, -1);
		assert_int_equal(r.include_usage, -1);
		assert_int_equal(r.n, 0);
		assert_int_equal(r.flags, F_EXACT);
	}

	/* A chunked body is not de-chunked. */
	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	i = snprintf(
		buf, sizeof(buf),
		"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"\r\n%zx\r\n%s\r\n0\r\n\r\n",
		strlen(body), body);
	move(f, &k, TAPIR_DIR_IN, buf, i, T0);
	write_answer(f, &k, &a, 0, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	assert_int_equal(only(f, &k)->stream, -1);

	/* A gap after the head: the body is not read. */
	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	n = request(buf, sizeof(buf), body, "");
	move(f, &k, TAPIR_DIR_IN, buf, n - strlen(body), T0);
	lose(&k, TAPIR_DIR_IN, 1);
	move(f, &k, TAPIR_DIR_IN, buf + n - strlen(body) + 1, strlen(body) - 1, T0);
	write_answer(f, &k, &a, 0, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	assert_int_equal(only(f, &k)->stream, -1);
	assert_int_equal(f->done[0].res.flags, F_EXACT);
}

/* Answer bytes lost before the head is whole: its framing is unknown. */
static void test_gap_before_head(void **state)
{
	struct tapir_llm_result want = lost_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_stream(&a);
	read_request(f, &k, BODY_STREAM);
	lose_writes(&k, &a, 0, 1);
	write_answer(f, &k, &a, 1, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	expect(only(f, &k), &want, "head lost");

	/* Its first bytes handed, then a gap inside it. */
	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	read_request(f, &k, BODY_STREAM);
	move(f, &k, TAPIR_DIR_OUT, a.p, 20, a.ts[0]);
	lose(&k, TAPIR_DIR_OUT, 10);
	move(f, &k, TAPIR_DIR_OUT, a.p + 30, a.len - 30, a.ts[1]);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	expect(only(f, &k), &want, "gap inside the head");
}

/* A hole after the usage event hides at most [DONE] and the last chunk: still exact. */
static void test_gap_after_usage(void **state)
{
	struct tapir_llm_result want = vllm_stream_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_stream(&a);
	read_request(f, &k, BODY_STREAM);
	write_answer(f, &k, &a, 0, 6, 0, false);
	lose_writes(&k, &a, 6, 7);
	write_answer(f, &k, &a, 7, 8, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	expect(only(f, &k), &want, "gap after the usage");

	/* The same as a lost tail: bytes the record counts that never came. */
	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	read_request(f, &k, BODY_STREAM);
	write_answer(f, &k, &a, 0, 6, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, a.len - a.end[5]);
	expect(only(f, &k), &want, "tail lost after the usage");
}

/* A hole in the middle of the stream, before its usage: the counts after it are guesses. */
static void test_gap_mid_stream(void **state)
{
	struct tapir_llm_result want = lost_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_stream(&a);
	read_request(f, &k, BODY_STREAM);
	write_answer(f, &k, &a, 0, 3, 0, false);
	lose_writes(&k, &a, 3, 4); /* " world" */
	write_answer(f, &k, &a, 4, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	/* The token event before the hole stays on the record, the counts do not. */
	want.token_events = 1;
	want.first_token_ns = want.last_token_ns = T0 + 270 * MS;
	want.ttft_ns = 270 * MS;
	want.stream = want.include_usage = want.n = 1;
	expect(only(f, &k), &want, "gap mid-stream");
}

/* The answer's end never handed (ring full, or past llm.response_bytes) before its usage. */
static void test_lost_tail(void **state)
{
	struct tapir_llm_result want = lost_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_stream(&a);
	read_request(f, &k, BODY_STREAM);
	write_answer(f, &k, &a, 0, 5, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, STREAM_END, a.len - a.end[4]);
	want.token_events = 3;
	want.first_token_ns = T0 + 270 * MS;
	want.last_token_ns = T0 + 310 * MS;
	want.ttft_ns = 270 * MS;
	want.gap_counts[3] = 2;
	want.gap_sum_s = 0.04;
	want.stream = want.include_usage = want.n = 1;
	expect(only(f, &k), &want, "lost tail");
}

/* No answer at all: an error with no tokens (the 499 or 502 of the HTTP families), not unparsed;
 * the request's body head still read. A client gone mid-stream: a cut stream. */
static void test_abort(void **state)
{
	struct tapir_llm_result want = {
		.flags = TAPIR_LLM_ERROR, .stream = 1, .include_usage = 1, .n = 1
	};
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct answer a;

	read_request(f, &k, BODY_STREAM);
	record(f, &k, TAPIR_OUT_CLIENT_ABORT, 0, T0 + 5 * MS, 0);
	expect(only(f, &k), &want, "client abort, no answer");

	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	read_request(f, &k, BODY_STREAM);
	record(f, &k, TAPIR_OUT_SERVER_ABORT, 0, T0 + 5 * MS, 0);
	expect(only(f, &k), &want, "server abort, no answer");

	reset(f, 16384);
	k = kreq(SOCK_A, 1, 7);
	vllm_stream(&a);
	read_request(f, &k, BODY_STREAM);
	write_answer(f, &k, &a, 0, 5, 0, false);
	record(f, &k, TAPIR_OUT_CLIENT_ABORT, 200, T0 + 320 * MS, 0);
	want = vllm_stream_result();
	want.flags = F_EST | TAPIR_LLM_CUT | TAPIR_LLM_ERROR;
	want.input_tokens = 0;
	expect(only(f, &k), &want, "client gone mid-stream");
}

/* Every piece lost: the record alone, known as unparsed. */
static void test_all_lost(void **state)
{
	struct tapir_llm_result want = lost_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 3, 9);

	lose(&k, TAPIR_DIR_IN, 300);
	lose(&k, TAPIR_DIR_OUT, 900);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	expect(only(f, &k), &want, "all lost");
	assert_int_equal(tapir_llm_track__in_flight(f->t), 0);
}

/* Two requests on one connection, the second read (pipelined) before the first is answered. */
static void test_same_connection(void **state)
{
	struct tapir_llm_result ws = vllm_stream_result(), wj = vllm_json_result();
	struct fix *f = *state;
	struct kreq k1 = kreq(SOCK_A, 1, 7), k2 = kreq(SOCK_A, 2, 7);
	struct answer s, j;

	vllm_stream(&s);
	vllm_json(&j, false, false);
	read_request(f, &k1, BODY_STREAM);
	write_answer(f, &k1, &s, 0, 3, 0, false);
	read_request(f, &k2, BODY_JSON);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 2);
	write_answer(f, &k1, &s, 3, s.n, 0, false);
	record(f, &k1, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 1);
	write_answer(f, &k2, &j, 0, j.n, 0, false);
	record(f, &k2, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	assert_int_equal(f->n_done, 2);
	expect(&f->done[0].res, &ws, "first on the connection");
	expect(&f->done[1].res, &wj, "second on the connection");
	assert_int_equal(tapir_llm_track__in_flight(f->t), 0);
}

/* Two connections' pieces interleaved, piece by piece: each result its own. */
static void test_two_connections(void **state)
{
	struct tapir_llm_result ws = vllm_stream_result(), wj = vllm_json_result();
	struct fix *f = *state;
	struct kreq ka = kreq(SOCK_A, 1, 7), kb = kreq(SOCK_B, 1, 8);
	struct answer s, j;
	size_t w;

	vllm_stream(&s);
	vllm_json(&j, false, false);
	read_request(f, &kb, BODY_JSON);
	read_request(f, &ka, BODY_STREAM);
	for (w = 0; w < s.n; w++) {
		write_answer(f, &ka, &s, w, w + 1, 0, false);
		if (w < j.n)
			write_answer(f, &kb, &j, w, w + 1, 0, false);
	}
	assert_int_equal(tapir_llm_track__in_flight(f->t), 2);
	record(f, &kb, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	record(f, &ka, TAPIR_OUT_COMPLETE, 200, STREAM_END, 0);
	assert_int_equal(f->n_done, 2);
	assert_int_equal(f->done[0].labels_id, 8);
	assert_int_equal(f->done[0].cgroup_id, kb.cgroup_id);
	expect(&f->done[0].res, &wj, "connection B");
	assert_int_equal(f->done[1].labels_id, 7);
	expect(&f->done[1].res, &ws, "connection A");
}

/* A request whose record never came goes after idle_ns without a piece; a recent one stays. */
static void test_expire(void **state)
{
	struct tapir_llm_result want = lost_result(), wj = vllm_json_result();
	struct fix *f = *state;
	const char *line = "POST /v1/chat/completions HTTP/1.1\r\n";
	const char *rest = "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
	struct kreq old = kreq(SOCK_A, 1, 7), recent = kreq(SOCK_B, 1, 8);
	uint64_t idle = 600000 * MS, last = T0 + 100000 * MS;
	struct answer a;

	/* The old one's last piece is its answer's head, 100 s in: idle counts from there. */
	vllm_json(&a, false, false);
	read_request(f, &old, BODY_JSON);
	move(f, &old, TAPIR_DIR_OUT, a.p, a.end[0], last);
	recent.start_ns = T0 + 300000 * MS;
	move(f, &recent, TAPIR_DIR_IN, line, strlen(line), recent.start_ns);
	tapir_llm_track__expire(f->t, last + idle - 1, idle, NULL, NULL);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 2);
	/* A clock behind the last piece expires nothing. */
	tapir_llm_track__expire(f->t, 0, 0, NULL, NULL);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 2);
	tapir_llm_track__expire(f->t, last + idle, idle, NULL, NULL);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 1);
	expect(only(f, &old), &want, "expired");

	/* The recent one goes on as if nothing happened. */
	move(f, &recent, TAPIR_DIR_IN, rest, strlen(rest), recent.start_ns + MS);
	move(f, &recent, TAPIR_DIR_OUT, a.p, a.len, recent.start_ns + 400 * MS);
	record(f, &recent, TAPIR_OUT_COMPLETE, 200, recent.start_ns + 400 * MS, 0);
	assert_int_equal(f->n_done, 2);
	assert_int_equal(f->done[1].labels_id, 8);
	assert_int_equal(f->done[1].cgroup_id, recent.cgroup_id);
	wj.stream = -1; /* its body, {}, says nothing */
	expect(&f->done[1].res, &wj, "recent");
	assert_int_equal(tapir_llm_track__in_flight(f->t), 0);
}

/* The connection still holds it (a long wait for an answer): kept however idle. */
static bool holds_a(void *ctx, uint64_t sock, uint32_t id, uint64_t start_ns)
{
	(void)ctx;
	return sock == SOCK_A && id == 1 && start_ns == T0;
}

static void test_expire_asks_the_connection(void **state)
{
	struct tapir_llm_result want = lost_result();
	struct fix *f = *state;
	struct kreq a = kreq(SOCK_A, 1, 7), b = kreq(SOCK_B, 1, 8);
	uint64_t idle = 5000 * MS;

	read_request(f, &a, BODY_JSON);
	read_request(f, &b, BODY_JSON);
	tapir_llm_track__expire(f->t, T0 + 3600000 * MS, idle, holds_a, NULL);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 1);
	expect(only(f, &b), &want, "given up on");
	assert_int_equal(f->done[0].labels_id, 8);
}

/* A socket's memory serves a new connection, whose first LLM request is number 1 again: its
 * pieces come before the old request's record, and neither takes the other's. */
static void test_socket_reused_by_a_new_connection(void **state)
{
	struct tapir_llm_result wj = vllm_json_result();
	struct fix *f = *state;
	struct kreq old = kreq(SOCK_A, 1, 7), next = kreq(SOCK_A, 1, 7);
	struct answer a;

	vllm_json(&a, false, false);
	read_request(f, &old, BODY_JSON);
	write_answer(f, &old, &a, 0, a.n, 0, false);
	next.start_ns = T0 + 500 * MS;
	read_request(f, &next, BODY_JSON);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 2);
	record(f, &old, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	assert_int_equal(f->n_done, 1);
	expect(&f->done[0].res, &wj, "the old connection's");
	assert_int_equal(tapir_llm_track__in_flight(f->t), 1);
}

struct census {
	size_t n, of_7;
};

static void count(void *ctx, uint32_t labels_id, uint64_t cgroup_id)
{
	struct census *c = ctx;

	c->n++;
	if (labels_id == 7) {
		assert_int_equal(cgroup_id, 0x4000 + 7);
		c->of_7++;
	}
}

static void test_in_flight(void **state)
{
	struct fix *f = *state;
	struct kreq k[4] = { kreq(SOCK_A, 1, 7), kreq(SOCK_A, 2, 7), kreq(SOCK_B, 1, 8),
			     kreq(SOCK_B, 2, 7) };
	struct census c = { 0 };
	size_t i;

	tapir_llm_track__each(f->t, count, &c);
	assert_int_equal(c.n, 0);
	for (i = 0; i < ARRAY_SIZE(k); i++)
		read_request(f, &k[i], BODY_JSON);
	/* More pieces of a request in flight add nothing. */
	move(f, &k[0], TAPIR_DIR_OUT, "HTTP/1.1 200 OK\r\n", 17, T0 + 5 * MS);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 4);
	tapir_llm_track__each(f->t, count, &c);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.of_7, 3);
	record(f, &k[1], TAPIR_OUT_CLIENT_ABORT, 0, T0 + 5 * MS, 0);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 3);
	memset(&c, 0, sizeof(c));
	tapir_llm_track__each(f->t, count, &c);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.of_7, 2);
	/* A record of a request never seen leaves those in flight alone. */
	k[1].id = 9;
	record(f, &k[1], TAPIR_OUT_COMPLETE, 200, T0 + 5 * MS, 0);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 3);
	assert_int_equal(f->n_done, 2);
}

/* The head callback's view: each head it was given, and the marks it handed back. */
struct heads {
	size_t n;
	char last[256];
	uint64_t start_ns;
};

static int on_head(void *ctx, uint32_t labels_id, uint64_t cgroup_id, uint64_t start_ns,
		   const char *head, size_t len)
{
	struct heads *h = ctx;

	assert_int_equal(cgroup_id, 0x4000 + labels_id);
	assert_true(len < sizeof(h->last));
	assert_int_equal(head[len], '\0');
	memcpy(h->last, head, len + 1);
	h->start_ns = start_ns;
	return 0x100 + (int)++h->n; /* only 0..255 is kept */
}

/*
 * Head-only requests (async rules, TAPIR_API_HEAD): the callback sees each whole head once, the
 * mark waits for the record, and nothing else happens: no LLM result, no answer parsed, not in
 * flight for baseten_llm_num_requests, dropped silently when idle.
 */
static void test_head_only(void **state)
{
	static const char h1[] = "POST /predict HTTP/1.1\r\nX-Request-Start: t=1.5\r\n\r\n";
	static const char h2[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
	struct fix *f = *state;
	struct kreq k1 = kreq(SOCK_A, 1, 7), k2 = kreq(SOCK_A, 2, 7), k3 = kreq(SOCK_B, 1, 8),
		    k4 = kreq(SOCK_B, 2, 8);
	struct tapir_http_event e = { .sock = SOCK_A, .llm_id = 1, .start_ns = T0 };
	struct census c = { 0 };
	struct heads h = { 0 };

	tapir_llm_track__free(f->t);
	f->t = tapir_llm_track__new(16384, on_done, on_head, &h);
	assert_non_null(f->t);
	/* The callback's context is the tracker's; on_done is never reached here. */
	k1.api = k2.api = k3.api = k4.api = TAPIR_API_HEAD;
	/* Split anywhere, then a body: the head is given once, whole. */
	move(f, &k1, TAPIR_DIR_IN, h1, 10, T0);
	assert_int_equal(h.n, 0);
	move(f, &k1, TAPIR_DIR_IN, h1 + 10, sizeof(h1) - 1 - 10, T0 + MS);
	move(f, &k1, TAPIR_DIR_IN, "{\"x\":1}", 7, T0 + 2 * MS);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.last, h1);
	assert_int_equal(h.start_ns, T0);
	assert_int_equal(tapir_llm_track__mark(f->t, &e), 0x01);
	/* Answer bytes of a head-only request are ignored. */
	move(f, &k1, TAPIR_DIR_OUT, "HTTP/1.1 200 OK\r\n\r\n", 19, T0 + 3 * MS);
	/* A gap in the head: no callback, no mark. */
	lose(&k2, TAPIR_DIR_IN, 5);
	move(f, &k2, TAPIR_DIR_IN, h2 + 5, sizeof(h2) - 1 - 5, T0);
	assert_int_equal(h.n, 1);
	e.llm_id = 2;
	assert_int_equal(tapir_llm_track__mark(f->t, &e), -1);
	/* Not whole yet: no mark either. */
	move(f, &k3, TAPIR_DIR_IN, h2, 8, T0);
	e.sock = SOCK_B;
	e.llm_id = 1;
	assert_int_equal(tapir_llm_track__mark(f->t, &e), -1);
	move(f, &k4, TAPIR_DIR_IN, h2, sizeof(h2) - 1, T0);
	assert_int_equal(h.n, 2);
	e.llm_id = 2;
	assert_int_equal(tapir_llm_track__mark(f->t, &e), 0x02);
	/* Unknown requests have no mark. */
	e.llm_id = 9;
	assert_int_equal(tapir_llm_track__mark(f->t, &e), -1);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 4);
	tapir_llm_track__each(f->t, count, &c);
	assert_int_equal(c.n, 0);
	/* Records end them without a result, counted or not. */
	record(f, &k1, TAPIR_OUT_COMPLETE, 200, T0 + 5 * MS, 0);
	e.sock = SOCK_A;
	e.llm_id = 2;
	tapir_llm_track__record(f->t, &e, false);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 2);
	/* Idle and gone: dropped without a result. */
	tapir_llm_track__expire(f->t, T0 + 10000 * MS, 5000 * MS, NULL, NULL);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 0);
	assert_int_equal(f->n_done, 0);
	assert_int_equal(h.n, 2);
}

/* An answer head past 16 KiB is not read; one just under is. */
static void test_head_too_large(void **state)
{
	struct tapir_llm_result want = lost_result(), wj = vllm_json_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	size_t len, fill;
	char *p;
	int big;

	for (big = 1; big >= 0; big--) {
		reset(f, 16384);
		k = kreq(SOCK_A, 1, 7);
		fill = big ? 17000 : 16000;
		p = malloc(fill + 1024);
		assert_non_null(p);
		len = sprintf(p, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-big: ");
		memset(p + len, 'a', fill);
		len += fill;
		len += sprintf(p + len, "\r\ncontent-length: %zu\r\n\r\n%s", strlen(VLLM_JSON),
			       VLLM_JSON);
		read_request(f, &k, BODY_JSON);
		move(f, &k, TAPIR_DIR_OUT, p, len, JSON_END); /* two pieces */
		free(p);
		record(f, &k, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
		if (big) {
			want.unparsed = TAPIR_LLM_TOO_LARGE;
			expect(only(f, &k), &want, "head of 17 KB");
		} else {
			expect(only(f, &k), &wj, "head of 16 KB");
		}
	}
}

/* What the ring could never hold is refused; a piece from before is ignored. */
static void test_bad_pieces(void **state)
{
	struct tapir_llm_result want = vllm_json_result();
	struct fix *f = *state;
	struct kreq k = kreq(SOCK_A, 1, 7);
	struct tapir_llm_chunk c = { .type = TAPIR_REC_LLM, .id = 1, .api = TAPIR_LLM_CHAT };
	struct answer a;

	assert_int_equal(tapir_llm_track__chunk(f->t, &c, sizeof(c) - 1), -EINVAL);
	c.len = 1;
	assert_int_equal(tapir_llm_track__chunk(f->t, &c, sizeof(c)), -EINVAL);
	c.len = 0;
	c.api = TAPIR_LLM_NONE;
	assert_int_equal(tapir_llm_track__chunk(f->t, &c, sizeof(c)), -EINVAL);
	c.api = TAPIR_LLM_TGI_STREAM + 1;
	assert_int_equal(tapir_llm_track__chunk(f->t, &c, sizeof(c)), -EINVAL);
	assert_int_equal(tapir_llm_track__in_flight(f->t), 0);

	vllm_json(&a, false, false);
	read_request(f, &k, BODY_JSON);
	write_answer(f, &k, &a, 0, 1, 0, false);
	assert_int_equal(piece(f, &k, TAPIR_DIR_OUT, 0, "HTTP/1.1 500 No\r\n\r\n", 19, T0), 0);
	write_answer(f, &k, &a, 1, a.n, 0, false);
	record(f, &k, TAPIR_OUT_COMPLETE, 200, JSON_END, 0);
	expect(only(f, &k), &want, "a piece from before");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_before_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_after_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_mid_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_asks_the_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_reused_by_a_new_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_pieces, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
