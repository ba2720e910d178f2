// SPDX-License-Identifier: GPL-2.0
/* Unit tests for LLM token accounting: engines' exact wire samples, fed split at every byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm.h"
#include "llm_wire.h"
#include "llm_samples.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MS	      1000000ULL

enum { EOL_LF, EOL_CRLF, EOL_CR, EOLS };

struct sample {
	const char *name;
	enum tapir_llm_api api;
	bool sse, aborted;
	uint16_t status;
	const char *body;
	/* expected */
	uint64_t in, out, cached;
	unsigned int flags;
	uint64_t events;
};

/* vLLM 0.8 chat stream, no usage asked: three content chunks after the role chunk. */
#define VLLM_BODY                                                          \
	VLLM_ROLE VLLM_CHUNK("Hello", "null") VLLM_CHUNK(" world", "null") \
		VLLM_CHUNK("!", "\"stop\"")

/* vLLM with continuous_usage_stats: usage in every chunk, the last one final. */
#define VLLM_CONT(c, fin, k)                                                                        \
	"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" c "\"},"              \
	"\"logprobs\":null,\"finish_reason\":" fin "}],\"usage\":{\"prompt_tokens\":7,"             \
	"\"total_tokens\":" #k ",\"completion_tokens\":" #k "}}\n\n"

/* SGLang 0.4 chat stream: nulls everywhere, usage chunk with cached tokens. */
#define SGL_CHUNK(c)                                                                                \
	"data: {\"id\":\"a1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"         \
	"\"model\":\"default\",\"choices\":[{\"index\":0,\"delta\":{\"role\":null,\"content\":\"" c \
	"\",\"reasoning_content\":null,\"tool_calls\":null},\"logprobs\":null,"                     \
	"\"finish_reason\":null,\"matched_stop\":null}],\"usage\":null}\n\n"
#define SGL_BODY                                                                            \
	SGL_CHUNK("The")                                                                    \
	SGL_CHUNK(" sky")                                                                   \
	SGL_CHUNK(" is")                                                                    \
	SGL_CHUNK(" blue")                                                                  \
	"data: {\"id\":\"a1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000," \
	"\"model\":\"default\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,"             \
	"\"total_tokens\":44,\"completion_tokens\":4,\"prompt_tokens_details\":"            \
	"{\"cached_tokens\":32}}}\n\ndata: [DONE]\n\n"

/* vLLM completions, n = 3: one choice per chunk, and one chunk with two. */
#define CMPL(i, t)                                                                       \
	"{\"index\":" #i ",\"text\":\"" t "\",\"logprobs\":null,\"finish_reason\":null," \
	"\"stop_reason\":null}"
#define CMPL_CHUNK(...)                                                                   \
	"data: {\"id\":\"cmpl-3\",\"object\":\"text_completion\",\"created\":1718000000," \
	"\"model\":\"m\",\"choices\":[" __VA_ARGS__ "]}\n\n"
#define CMPL_BODY                \
	CMPL_CHUNK(CMPL(0, "a")) \
	CMPL_CHUNK(CMPL(1, "b")) \
	CMPL_CHUNK(CMPL(2, "c")) \
	CMPL_CHUNK(CMPL(0, "d") "," CMPL(1, "e")) CMPL_CHUNK(CMPL(2, "f")) CMPL_CHUNK(CMPL(2, ""))

#define RESP_STREAM                                                                                \
	"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"     \
	"\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\","      \
	"\"usage\":null}}\n\n"                                                                     \
	"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","       \
	"\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"      \
	"\"delta\":\"Hi\"}\n\n"                                                                    \
	"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","       \
	"\"sequence_number\":5,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,"      \
	"\"delta\":\" there\"}\n\n"                                                                \
	"event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\","         \
	"\"sequence_number\":6,\"text\":\"Hi there\"}\n\n"                                         \
	"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9," \
	"\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\","        \
	"\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":4},"           \
	"\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":0},"                  \
	"\"total_tokens\":13}}}\n\n"

#define ANT_STREAM                                                                               \
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"," \
	"\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\","       \
	"\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"            \
	"\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":100,"                     \
	"\"output_tokens\":1}}}\n\n"                                                             \
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"       \
	"\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"                               \
	"event: ping\ndata: {\"type\": \"ping\"}\n\n"                                            \
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"       \
	"\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"                            \
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"       \
	"\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n"                                \
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"     \
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"    \
	"\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"             \
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

/* TGI writes "data:" without the space. */
#define TGI_STREAM                                                                        \
	"data:{\"index\":1,\"token\":{\"id\":12,\"text\":\"Hi\",\"logprob\":-0.1,"        \
	"\"special\":false},\"generated_text\":null,\"details\":null}\n\n"                \
	"data:{\"index\":2,\"token\":{\"id\":13,\"text\":\" you\",\"logprob\":-0.3,"      \
	"\"special\":false},\"generated_text\":null,\"details\":null}\n\n"                \
	"data:{\"index\":3,\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":-0.2,"       \
	"\"special\":true},\"generated_text\":\"Hi you\",\"details\":{\"finish_reason\":" \
	"\"eos_token\",\"generated_tokens\":3,\"seed\":null}}\n\n"

#define ERR_EVENT                                                                      \
	"data: {\"error\":{\"object\":\"error\",\"message\":\"engine died\",\"type\":" \
	"\"InternalServerError\",\"param\":null,\"code\":500}}\n\n"

#define F_EXACT (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT | TAPIR_LLM_EXACT)
#define F_EST	(TAPIR_LLM_OUTPUT | TAPIR_LLM_ESTIMATED)
#define F_CUT	(TAPIR_LLM_CUT | TAPIR_LLM_ERROR)

static const struct sample samples[] = {
	{ "vllm stream, no usage", TAPIR_LLM_CHAT, true, false, 200, VLLM_BODY "data: [DONE]\n\n",
	  0, 3, 0, F_EST, 3 },
	{ "vllm stream, include_usage", TAPIR_LLM_CHAT, true, false, 200,
	  VLLM_BODY VLLM_USAGE "data: [DONE]\n\n", 12, 3, 0, F_EXACT, 3 },
	{ "vllm continuous_usage_stats", TAPIR_LLM_CHAT, true, false, 200,
	  VLLM_CONT("", "null", 0) VLLM_CONT("a", "null", 1) VLLM_CONT("b", "null", 2)
		  VLLM_CONT("c", "\"length\"", 3) "data: [DONE]\n\n",
	  7, 3, 0, F_EXACT, 3 },
	{ "sglang stream, usage and cached", TAPIR_LLM_CHAT, true, false, 200, SGL_BODY, 40, 4, 32,
	  F_EXACT | TAPIR_LLM_CACHED, 4 },
	{ "vllm non-streaming, usage last", TAPIR_LLM_CHAT, false, false, 200,
	  "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
	  "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\","
	  "\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}],"
	  "\"usage\":{\"prompt_tokens\":20,\"total_tokens\":25,\"completion_tokens\":5,"
	  "\"prompt_tokens_details\":{\"cached_tokens\":16}},\"prompt_logprobs\":null}",
	  20, 5, 16, F_EXACT | TAPIR_LLM_CACHED, 0 },
	{ "completions n=3, no usage", TAPIR_LLM_COMPLETIONS, true, false, 200,
	  CMPL_BODY "data: [DONE]\n\n", 0, 6, 0, F_EST, 5 },
	{ "completions n=3, usage", TAPIR_LLM_COMPLETIONS, true, false, 200,
	  CMPL_BODY "data: {\"id\":\"cmpl-3\",\"object\":\"text_completion\",\"created\":1,"
		    "\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
		    "\"total_tokens\":11,\"completion_tokens\":6}}\n\ndata: [DONE]\n\n",
	  5, 6, 0, F_EXACT, 5 },
	{ "embeddings", TAPIR_LLM_EMBEDDINGS, false, false, 200,
	  "{\"id\":\"embd-1\",\"object\":\"list\",\"created\":1,\"model\":\"e\",\"data\":[{\"index\":0,"
	  "\"object\":\"embedding\",\"embedding\":[0.1,-0.2]}],\"usage\":{\"prompt_tokens\":9,"
	  "\"total_tokens\":9,\"completion_tokens\":0,\"prompt_tokens_details\":null}}",
	  9, 0, 0, F_EXACT, 0 },
	{ "error body, 400", TAPIR_LLM_CHAT, false, false, 400,
	  "{\"object\":\"error\",\"message\":\"This model's maximum context length is 4096\","
	  "\"type\":\"BadRequestError\",\"param\":null,\"code\":400}",
	  0, 0, 0, TAPIR_LLM_ERROR, 0 },
	{ "error body, 200", TAPIR_LLM_CHAT, false, false, 200,
	  "{\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\",\"code\":500}}", 0, 0,
	  0, TAPIR_LLM_ERROR, 0 },
	{ "plain-text 500", TAPIR_LLM_CHAT, false, false, 500, "Internal Server Error", 0, 0, 0,
	  TAPIR_LLM_ERROR, 0 },
	{ "error event mid-stream", TAPIR_LLM_CHAT, true, false, 200,
	  VLLM_ROLE VLLM_CHUNK("Hello", "null") ERR_EVENT "data: [DONE]\n\n", 0, 1, 0,
	  F_EST | TAPIR_LLM_ERROR, 1 },
	{ "cut stream", TAPIR_LLM_CHAT, true, true, 200,
	  VLLM_ROLE VLLM_CHUNK("Hello", "null") VLLM_CHUNK(" world", "null") "data: {\"id\":\"chat",
	  0, 2, 0, F_EST | F_CUT, 2 },
	{ "responses, non-streaming", TAPIR_LLM_RESPONSES, false, false, 200,
	  "{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\","
	  "\"model\":\"m\",\"output\":[{\"type\":\"message\",\"id\":\"msg_1\",\"status\":"
	  "\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":"
	  "\"Hi\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":36,\"input_tokens_details\":"
	  "{\"cached_tokens\":0},\"output_tokens\":87,\"output_tokens_details\":"
	  "{\"reasoning_tokens\":0},\"total_tokens\":123}}",
	  36, 87, 0, F_EXACT | TAPIR_LLM_CACHED, 0 },
	{ "responses, streaming", TAPIR_LLM_RESPONSES, true, false, 200, RESP_STREAM, 11, 2, 4,
	  F_EXACT | TAPIR_LLM_CACHED, 2 },
	{ "anthropic, non-streaming", TAPIR_LLM_ANTHROPIC, false, false, 200,
	  "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
	  "\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],\"stop_reason\":\"end_turn\","
	  "\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":0,"
	  "\"cache_read_input_tokens\":20,\"output_tokens\":5}}",
	  30, 5, 20, F_EXACT | TAPIR_LLM_CACHED, 0 },
	{ "anthropic, streaming", TAPIR_LLM_ANTHROPIC, true, false, 200, ANT_STREAM, 128, 15, 100,
	  F_EXACT | TAPIR_LLM_CACHED, 2 },
	{ "tgi generate", TAPIR_LLM_TGI, false, false, 200,
	  "{\"generated_text\":\"Hi\",\"details\":{\"finish_reason\":\"length\","
	  "\"generated_tokens\":20,\"seed\":null,\"prefill\":[],\"tokens\":[]}}",
	  0, 20, 0, TAPIR_LLM_OUTPUT, 0 },
	{ "tgi generate_stream", TAPIR_LLM_TGI_STREAM, true, false, 200, TGI_STREAM, 0, 3, 0,
	  TAPIR_LLM_OUTPUT, 3 },
	{ "non-streaming, no usage", TAPIR_LLM_CHAT, false, false, 200, "{\"id\":\"x\"}", 0, 0, 0,
	  TAPIR_LLM_UNPARSED, 0 },
	{ "non-streaming, truncated", TAPIR_LLM_CHAT, false, true, 200, "{\"id\":\"x\",\"usage", 0,
	  0, 0, TAPIR_LLM_UNPARSED, 0 },
};

/* --- feeding helpers ---------------------------------------------------------------------- */

struct wire {
	char *p;
	size_t len;
};

static void put(struct wire *w, const char *s, size_t n)
{
	w->p = realloc(w->p, w->len + n + 1);
	assert_non_null(w->p);
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

/* @body with its SSE line ends made @eol (JSON has no raw newline to change). */
static struct wire with_eol(const char *body, int eol)
{
	struct wire w = { 0 };
	const char *p;

	for (p = body; *p; p++) {
		if (*p != '\n')
			put(&w, p, 1);
		else if (eol == EOL_LF)
			put(&w, "\n", 1);
		else
			put(&w, eol == EOL_CRLF ? "\r\n" : "\r", eol == EOL_CRLF ? 2 : 1);
	}
	return w;
}

/* Chunked: sizes 1 to 13 in turn, some with extensions, uppercase hex, then a trailer. A cut
 * body has no last chunk. */
static struct wire chunked(const struct wire *in, bool cut)
{
	struct wire w = { 0 };
	size_t off = 0, n, k = 0;
	char line[64];

	while (off < in->len) {
		n = k % 13 + 1;
		n = n < in->len - off ? n : in->len - off;
		snprintf(line, sizeof(line), k % 3 ? "%zX\r\n" : "%zx;ext=\"a;b\"\r\n", n);
		put(&w, line, strlen(line));
		put(&w, in->p + off, n);
		put(&w, "\r\n", 2);
		off += n;
		k++;
	}
	if (!cut)
		put(&w, "0\r\nX-Trailer: 1\r\n\r\n", 19);
	return w;
}

static struct tapir_llm_req *new_req(const struct sample *s, bool chunk)
{
	struct tapir_llm_resp_info info = {
		.status = s->status,
		.sse = s->sse,
		.chunked = chunk,
		.req_start_ns = 1,
	};
	struct tapir_llm_req *q = tapir_llm_req__new(s->api, &info);

	assert_non_null(q);
	return q;
}

/* Feed @w in pieces that end at each offset of @cuts (ascending, the last = len). */
static void feed(const struct sample *s, const struct wire *w, bool chunk, const size_t *cuts,
		 size_t n_cuts, struct tapir_llm_result *r)
{
	struct tapir_llm_req *q = new_req(s, chunk);
	size_t i, from = 0;

	for (i = 0; i < n_cuts; i++) {
		tapir_llm_req__response_body(q, w->p + from, cuts[i] - from, 5);
		from = cuts[i];
	}
	tapir_llm_req__finish(q, 10, s->aborted, r);
	tapir_llm_req__free(q);
}

static void check(const struct sample *s, const struct tapir_llm_result *r, const char *how)
{
	if (r->input_tokens != s->in || r->output_tokens != s->out ||
	    r->cached_tokens != s->cached || r->flags != s->flags || r->token_events != s->events)
		fail_msg("%s (%s): in %lu out %lu cached %lu flags %#x events %lu, unparsed %s",
			 s->name, how, (unsigned long)r->input_tokens,
			 (unsigned long)r->output_tokens, (unsigned long)r->cached_tokens, r->flags,
			 (unsigned long)r->token_events, tapir_llm_unparsed_name(r->unparsed));
}

/* Whole, at every two-piece split, and byte by byte: the same result, the expected one. */
static void every_split(const struct sample *s, const struct wire *w, bool chunk, const char *how)
{
	struct tapir_llm_result whole, r;
	size_t cut[2], i, *bytes;

	cut[0] = w->len;
	feed(s, w, chunk, cut, 1, &whole);
	check(s, &whole, how);
	for (i = 0; i <= w->len; i++) {
		cut[0] = i;
		cut[1] = w->len;
		feed(s, w, chunk, cut, 2, &r);
		if (memcmp(&r, &whole, sizeof(r))) {
			check(s, &r, how);
			fail_msg("%s (%s): split at %zu differs", s->name, how, i);
		}
	}
	bytes = calloc(w->len + 1, sizeof(*bytes));
	assert_non_null(bytes);
	for (i = 0; i < w->len; i++)
		bytes[i] = i + 1;
	feed(s, w, chunk, bytes, w->len, &r);
	free(bytes);
	if (memcmp(&r, &whole, sizeof(r))) {
		check(s, &r, how);
		fail_msg("%s (%s): byte by byte differs", s->name, how);
	}
}

static void test_samples(void **state)
{
	static const char *const eol_names[] = { "LF", "CRLF", "CR" };
	char how[64];
	size_t i;
	int eol, chunk;

	for (i = 0; i < ARRAY_SIZE(samples); i++) {
		for (eol = 0; eol < (samples[i].sse ? EOLS : 1); eol++) {
			struct wire plain = with_eol(samples[i].body, eol);
			struct wire ch = chunked(&plain, samples[i].aborted);

			for (chunk = 0; chunk < 2; chunk++) {
				snprintf(how, sizeof(how), "%s, %s", eol_names[eol],
					 chunk ? "chunked" : "plain");
				every_split(&samples[i], chunk ? &ch : &plain, chunk, how);
			}
			free(plain.p);
			free(ch.p);
		}
	}
}

/* --- timing ------------------------------------------------------------------------------- */

struct tokens {
	uint64_t ts[16];
	unsigned int deltas[16];
	size_t n;
};

static void on_token(void *ctx, uint64_t ts, unsigned int deltas)
{
	struct tokens *t = ctx;

	assert_true(t->n < 16);
	t->ts[t->n] = ts;
	t->deltas[t->n++] = deltas;
}

/* Each event its own snippet, 20 ms apart after a 250 ms prefill: exact timestamps. */
static void test_token_timing(void **state)
{
	static const char *const events[] = {
		VLLM_ROLE,
		VLLM_CHUNK("Hello", "null"),
		VLLM_CHUNK(" world", "null"),
		VLLM_CHUNK("!", "\"stop\""),
		VLLM_USAGE,
		"data: [DONE]\n\n",
	};
	struct tokens t = { 0 };
	struct tapir_llm_resp_info info = { .status = 200,
					    .sse = true,
					    .req_start_ns = 1000 * MS,
					    .on_token = on_token,
					    .ctx = &t };
	struct tapir_llm_req *q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	struct tapir_llm_result r;
	uint64_t ts = 1250 * MS;
	size_t i;
	int ret = 0;

	assert_non_null(q);
	for (i = 0; i < ARRAY_SIZE(events); i++, ts += 20 * MS)
		ret = tapir_llm_req__response_body(q, events[i], strlen(events[i]), ts);
	assert_int_equal(ret, 1); /* [DONE]: nothing more to read */
	tapir_llm_req__finish(q, 1400 * MS, false, &r);
	tapir_llm_req__free(q);
	assert_int_equal(t.n, 3);
	assert_int_equal(t.ts[0], 1270 * MS);
	assert_int_equal(t.ts[1], 1290 * MS);
	assert_int_equal(t.ts[2], 1310 * MS);
	assert_int_equal(r.first_token_ns, 1270 * MS);
	assert_int_equal(r.last_token_ns, 1310 * MS);
	assert_int_equal(r.ttft_ns, 270 * MS);
	/* two gaps of 20 ms, in the (0.015, 0.02] bucket */
	assert_int_equal(r.gap_counts[3], 2);
	assert_float_equal(r.gap_sum_s, 0.04, 1e-9);
	/* 3 tokens over the 40 ms between the first and last token events */
	assert_float_equal(r.tokens_per_s, 75, 1e-6);
	assert_int_equal(r.flags, F_EXACT);
}

/* A JSON body: no token events; the rate is over the whole exchange. */
static void test_rate_without_events(void **state)
{
	const char *body = "{\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":50}}";
	struct tapir_llm_resp_info info = { .status = 200, .req_start_ns = 1000 * MS };
	struct tapir_llm_req *q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	struct tapir_llm_result r;

	assert_non_null(q);
	assert_int_equal(tapir_llm_req__response_body(q, body, strlen(body), 2000 * MS), 1);
	tapir_llm_req__finish(q, 3000 * MS, false, &r);
	tapir_llm_req__free(q);
	assert_int_equal(r.token_events, 0);
	assert_int_equal(r.ttft_ns, 0);
	assert_float_equal(r.tokens_per_s, 25, 1e-9);
}

/* --- losses, bounds, the request ---------------------------------------------------------- */

static void test_lost(void **state)
{
	struct tapir_llm_resp_info info = { .status = 200, .sse = true };
	struct tapir_llm_req *q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	const char *a = VLLM_ROLE VLLM_CHUNK("Hello", "null");
	const char *b = VLLM_BODY VLLM_USAGE;
	struct tapir_llm_result r;

	/* A hole before the usage: unparsed, whatever follows. */
	tapir_llm_req__response_body(q, a, strlen(a), 1);
	tapir_llm_req__lost(q, 100);
	tapir_llm_req__response_body(q, VLLM_USAGE, strlen(VLLM_USAGE), 2);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	assert_int_equal(r.flags, TAPIR_LLM_UNPARSED);
	assert_string_equal(tapir_llm_unparsed_name(r.unparsed), "lost");

	/* A hole after the final usage hides at most [DONE]. */
	q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	tapir_llm_req__response_body(q, b, strlen(b), 1);
	tapir_llm_req__lost(q, 14);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	assert_int_equal(r.flags, F_EXACT);
	assert_int_equal(r.output_tokens, 3);
}

static void test_bounds(void **state)
{
	struct tapir_llm_resp_info info = { .status = 200 };
	struct tapir_llm_req *q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	struct tapir_llm_result r;
	char *big = malloc(TAPIR_LLM_DOC_MAX + 2);
	char deep[2 * TAPIR_LLM_DEPTH + 40];
	size_t i;

	/* A document past the cap. */
	assert_non_null(big);
	big[0] = '[';
	memset(big + 1, ' ', TAPIR_LLM_DOC_MAX + 1);
	assert_int_equal(tapir_llm_req__response_body(q, big, 1000, 1), 0);
	assert_int_equal(tapir_llm_req__response_body(q, big + 1000, TAPIR_LLM_DOC_MAX, 1), 1);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	assert_string_equal(tapir_llm_unparsed_name(r.unparsed), "too_large");

	/* An event past the cap. */
	info.sse = true;
	q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	memcpy(big, "data: ", 6);
	tapir_llm_req__response_body(q, big, TAPIR_LLM_DOC_MAX + 2, 1);
	assert_int_equal(tapir_llm_req__response_body(q, big + 6, 10, 1), 1);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	free(big);
	assert_string_equal(tapir_llm_unparsed_name(r.unparsed), "too_large");

	/* Nesting past the depth limit. */
	q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	i = snprintf(deep, sizeof(deep), "data: ");
	memset(deep + i, '[', TAPIR_LLM_DEPTH + 1);
	memcpy(deep + i + TAPIR_LLM_DEPTH + 1, "\n\n", 2);
	tapir_llm_req__response_body(q, deep, i + TAPIR_LLM_DEPTH + 3, 1);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	assert_string_equal(tapir_llm_unparsed_name(r.unparsed), "bad_json");

	/* Broken chunking. */
	info.chunked = true;
	q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	tapir_llm_req__response_body(q, "zz\r\n", 4, 1);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	assert_string_equal(tapir_llm_unparsed_name(r.unparsed), "bad_chunking");
}

static void test_request_body(void **state)
{
	const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
			   "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":2}";
	struct tapir_llm_resp_info info = { .status = 200, .sse = true };
	struct tapir_llm_req *q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	struct tapir_llm_result r;
	size_t i;

	for (i = 0; body[i]; i++)
		assert_int_equal(tapir_llm_req__request_body(q, body + i, 1), 0);
	tapir_llm_req__finish(q, 3, false, &r);
	tapir_llm_req__free(q);
	assert_int_equal(r.stream, 1);
	assert_int_equal(r.include_usage, 1);
	assert_int_equal(r.n, 2);

	/* A head cut by the kernel: unknown, and the request is not failed for it. */
	q = tapir_llm_req__new(TAPIR_LLM_CHAT, &info);
	assert_int_equal(tapir_llm_req__request_body(q, body, 40), 0);
	tapir_llm_req__response_body(q, VLLM_BODY VLLM_USAGE, strlen(VLLM_BODY VLLM_USAGE), 1);
	tapir_llm_req__finish(q, 3, true, &r);
	tapir_llm_req__free(q);
	assert_int_equal(r.stream, -1);
	assert_int_equal(r.include_usage, -1);
	assert_int_equal(r.output_tokens, 3);
}

static void test_paths(void **state)
{
	static const struct {
		const char *path;
		enum tapir_llm_api api;
	} cases[] = {
		{ "/v1/chat/completions", TAPIR_LLM_CHAT },
		{ "/chat/completions", TAPIR_LLM_CHAT },
		{ "/v1/chat/completions?x=1", TAPIR_LLM_CHAT },
		{ "/v1/completions/", TAPIR_LLM_COMPLETIONS },
		{ "/completions", TAPIR_LLM_COMPLETIONS },
		{ "/v1/embeddings", TAPIR_LLM_EMBEDDINGS },
		{ "/embeddings", TAPIR_LLM_EMBEDDINGS },
		{ "/v1/responses", TAPIR_LLM_RESPONSES },
		{ "/responses", TAPIR_LLM_RESPONSES },
		{ "/v1/messages", TAPIR_LLM_ANTHROPIC },
		{ "/generate", TAPIR_LLM_TGI },
		{ "/generate_stream?a", TAPIR_LLM_TGI_STREAM },
		{ "/messages", TAPIR_LLM_NONE },
		{ "/v1/chat", TAPIR_LLM_NONE },
		{ "/v1/chat/completionsx", TAPIR_LLM_NONE },
		{ "/v2/completions", TAPIR_LLM_NONE },
		{ "/v1", TAPIR_LLM_NONE },
		{ "/", TAPIR_LLM_NONE },
		{ "", TAPIR_LLM_NONE },
		{ "/metrics", TAPIR_LLM_NONE },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		if (tapir_llm_api_of_path(cases[i].path) != cases[i].api)
			fail_msg("%s: %d", cases[i].path, tapir_llm_api_of_path(cases[i].path));
	assert_int_equal(tapir_llm_api_of_path(NULL), TAPIR_LLM_NONE);
	errno = 0;
	assert_null(tapir_llm_req__new(TAPIR_LLM_NONE, &(struct tapir_llm_resp_info){ 0 }));
	assert_int_equal(errno, EINVAL);
	tapir_llm_req__free(NULL);
}

/* --- SSE framing on its own --------------------------------------------------------------- */

struct events {
	char text[1024];
	size_t len;
};

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
	struct events *e = ctx;

	assert_int_equal(strlen(data), len);
	e->len += snprintf(e->text + e->len, sizeof(e->text) - e->len, "[%s|%s]", event, data);
	return 0;
}

static void test_sse_framing(void **state)
{
	/* BOM, comments, no space, two spaces, multi-line data, id/retry, an unknown field, a
	 * field without a colon, event reset between events, CR then LF across pieces, and a
	 * last event without its blank line (never dispatched). */
	const char text[] = "\xef\xbb\xbf: hello\r\n"
			    "data:a\r\n\r\n"
			    "event: e1\nid: 7\nretry: 100\nfoo: bar\ndata:  b\ndata: c\n\n"
			    "data\n\n"
			    "data: d\r\r"
			    "event: x\n\n"
			    "data: e\n";
	const char *want = "[|a][e1| b\nc][|][|d]";
	struct tapir_sse s;
	struct events e;
	size_t i, len = sizeof(text) - 1;

	for (i = 0; i <= len; i++) {
		memset(&e, 0, sizeof(e));
		tapir_sse__init(&s, 1024);
		assert_int_equal(tapir_sse__feed(&s, text, i, on_event, &e), 0);
		assert_int_equal(tapir_sse__feed(&s, text + i, len - i, on_event, &e), 0);
		tapir_sse__release(&s);
		if (strcmp(e.text, want))
			fail_msg("split at %zu: %s", i, e.text);
	}
}

static int collect(void *ctx, const char *data, size_t len)
{
	struct wire *w = ctx;

	put(w, data, len);
	return 0;
}

static void test_dechunk(void **state)
{
	const char wire[] = "4;a=b\r\nWiki\r\n5\npedia\n0\r\nX: y\r\nZ: w\r\n\r\ntrailing";
	struct tapir_dechunk d;
	struct wire out;
	size_t i, len = sizeof(wire) - 1;
	int ret;

	for (i = 0; i <= len; i++) {
		memset(&d, 0, sizeof(d));
		memset(&out, 0, sizeof(out));
		ret = tapir_dechunk__feed(&d, wire, i, collect, &out);
		if (ret != 1)
			ret = tapir_dechunk__feed(&d, wire + i, len - i, collect, &out);
		assert_int_equal(ret, 1);
		assert_int_equal(out.len, 9);
		assert_memory_equal(out.p, "Wikipedia", 9);
		free(out.p);
	}
	/* Refusals: a size past 2^40, payload not followed by CRLF, a size line without digits. */
	memset(&out, 0, sizeof(out));
	memset(&d, 0, sizeof(d));
	assert_int_equal(tapir_dechunk__feed(&d, "fffffffffffffffff\r\n", 19, collect, &out),
			 -EBADMSG);
	memset(&d, 0, sizeof(d));
	assert_int_equal(tapir_dechunk__feed(&d, "3\r\nabcX", 7, collect, &out), -EBADMSG);
	assert_int_equal(tapir_dechunk__feed(&d, "\r\n", 2, collect, &out), -EBADMSG);
	memset(&d, 0, sizeof(d));
	assert_int_equal(tapir_dechunk__feed(&d, ";x\r\n", 4, collect, &out), -EBADMSG);
	assert_int_equal(out.len, 3);
	free(out.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_token_timing),
		cmocka_unit_test(test_rate_without_events),
		cmocka_unit_test(test_lost),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_request_body),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_sse_framing),
		cmocka_unit_test(test_dechunk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
