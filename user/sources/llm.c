// SPDX-License-Identifier: GPL-2.0
/* Reads token usage and token events out of OpenAI, Anthropic and TGI request and response bodies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "llm.h"
#include "tapir/http.h"
#include "llm_wire.h"

const double tapir_llm_latency_buckets[TAPIR_LLM_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
	0.5,   0.75, 1,	    1.5,  2,	3,    5,     10,  20,	30,  60,
};

static const char *const unparsed_names[TAPIR_LLM_UNPARSED_REASONS] = {
	[TAPIR_LLM_PARSED] = "",	   [TAPIR_LLM_TOO_LARGE] = "too_large",
	[TAPIR_LLM_BAD_JSON] = "bad_json", [TAPIR_LLM_BAD_CHUNKING] = "bad_chunking",
	[TAPIR_LLM_LOST] = "lost",	   [TAPIR_LLM_TRUNCATED] = "truncated",
	[TAPIR_LLM_NO_USAGE] = "no_usage", [TAPIR_LLM_NO_MEMORY] = "no_memory",
};

const char *tapir_llm_unparsed_name(enum tapir_llm_unparsed u)
{
	return (unsigned int)u < TAPIR_LLM_UNPARSED_REASONS ? unparsed_names[u] : "";
}

struct tapir_llm_req {
	enum tapir_llm_api api;
	struct tapir_llm_resp_info info;
	struct tapir_dechunk dc;
	struct tapir_sse sse;
	struct json_tokener *tok; /* the JSON body, as far as it came; or each event's data */
	char *doc;		  /* the JSON body so far (at most TAPIR_LLM_DOC_MAX) */
	size_t doc_bytes, doc_cap;
	struct json_tokener *req_tok; /* the request body's head */
	size_t req_bytes;
	bool req_over;
	uint64_t ts; /* of the snippet being fed */
	struct tapir_llm_result r;
	uint64_t deltas;  /* content-bearing choice deltas, the estimate of output tokens */
	bool usage;	  /* some usage was read */
	bool final_usage; /* the usage that no later event changes */
	bool body_done;	  /* the JSON document, or the stream's end marker, was seen */
	bool doc_begun;	  /* the JSON body's first byte past whitespace was seen: '{' or '[' */
	bool wire_done;	  /* the last chunk was seen */
	bool stopped;	  /* unparsed: the rest is ignored */
};

/* --- paths -------------------------------------------------------------------------------- */

static const struct {
	const char *path;
	enum tapir_llm_api api;
} api_paths[] = {
	{ "/chat/completions", TAPIR_LLM_CHAT },
	{ "/completions", TAPIR_LLM_COMPLETIONS },
	{ "/embeddings", TAPIR_LLM_EMBEDDINGS },
	{ "/responses", TAPIR_LLM_RESPONSES },
};

enum tapir_llm_api tapir_llm_api_of_path(const char *path)
{
	size_t len, i;

	if (!path)
		return TAPIR_LLM_NONE;
	len = strcspn(path, "?#");
	if (len > 1 && path[len - 1] == '/')
		len--;
	if (len == 12 && !memcmp(path, "/v1/messages", 12))
		return TAPIR_LLM_ANTHROPIC;
	if (len == 9 && !memcmp(path, "/generate", 9))
		return TAPIR_LLM_TGI;
	if (len == 16 && !memcmp(path, "/generate_stream", 16))
		return TAPIR_LLM_TGI_STREAM;
	if (len >= 3 && !memcmp(path, "/v1/", 4)) {
		path += 3;
		len -= 3;
	}
	for (i = 0; i < sizeof(api_paths) / sizeof(api_paths[0]); i++)
		if (strlen(api_paths[i].path) == len && !memcmp(path, api_paths[i].path, len))
			return api_paths[i].api;
	return TAPIR_LLM_NONE;
}

enum tapir_llm_api tapir_llm_api_of_suffix(const char *path)
{
	static const char *const ends[] = { "/generate_stream",	 "/generate",	 "/messages",
					    "/chat/completions", "/completions", "/embeddings",
					    "/responses" };
	size_t len = path ? strlen(path) : 0, i, n;

	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		n = strlen(ends[i]);
		if (len >= n && !memcmp(path + len - n, ends[i], n))
			return !strcmp(ends[i], "/messages") ? TAPIR_LLM_ANTHROPIC
							     : tapir_llm_api_of_path(ends[i]);
	}
	return TAPIR_LLM_NONE;
}

/* The paths the kernel looks for out of the box: tapir_llm_api_of_path's. */
static const char *const builtin_paths[TAPIR_LLM_BUILTIN] = {
	"/v1/chat/completions", "/chat/completions", "/v1/completions",	 "/completions",
	"/v1/embeddings",	"/embeddings",	     "/v1/responses",	 "/responses",
	"/v1/messages",		"/generate",	     "/generate_stream",
};

_Static_assert(TAPIR_LLM_TABLE == TAPIR_LLM_PATHS, "the kernel's table");

static void table_entry(struct tapir_llm_path_table *t, size_t i, const char *path,
			enum tapir_llm_api api)
{
	size_t len = strlen(path), k;

	for (k = 0; k < len; k++) {
		t->word[i][k / 8] |= (uint64_t)(unsigned char)path[k] << (8 * (k % 8));
		t->mask[i][k / 8] |= 0xffULL << (8 * (k % 8));
	}
	t->len[i] = len;
	t->api[i] = api;
}

int tapir_llm_path_table(struct tapir_llm_path_table *t, const char *const *extra, size_t n_extra)
{
	size_t i, n = 0;

	memset(t, 0, sizeof(*t));
	if (TAPIR_LLM_BUILTIN + n_extra > TAPIR_LLM_TABLE)
		return -E2BIG;
	for (i = 0; i < TAPIR_LLM_BUILTIN; i++)
		table_entry(t, n++, builtin_paths[i], tapir_llm_api_of_path(builtin_paths[i]));
	for (i = 0; i < n_extra; i++) {
		if (strlen(extra[i]) > TAPIR_LLM_PATH_MAX ||
		    tapir_llm_api_of_suffix(extra[i]) == TAPIR_LLM_NONE)
			return -EINVAL;
		table_entry(t, n++, extra[i], tapir_llm_api_of_suffix(extra[i]));
	}
	return n;
}

/* --- objects ------------------------------------------------------------------------------ */

struct tapir_llm_req *tapir_llm_req__new(enum tapir_llm_api api,
					 const struct tapir_llm_resp_info *info)
{
	struct tapir_llm_req *q;

	if (api <= TAPIR_LLM_NONE || api > TAPIR_LLM_TGI_STREAM || !info) {
		errno = EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->api = api;
	q->info = *info;
	q->tok = json_tokener_new_ex(TAPIR_LLM_DEPTH);
	if (!q->tok) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	/* Strict: what a lenient json-c takes (comments, trailing commas) no server sends. What
	 * follows a document is ours to judge: refused alike however the bytes are split. */
	json_tokener_set_flags(q->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	tapir_sse__init(&q->sse, TAPIR_LLM_DOC_MAX);
	q->r.stream = q->r.include_usage = -1;
	return q;
}

void tapir_llm_req__free(struct tapir_llm_req *q)
{
	if (!q)
		return;
	json_tokener_free(q->tok);
	if (q->req_tok) /* json-c 0.16 does not take NULL */
		json_tokener_free(q->req_tok);
	tapir_sse__release(&q->sse);
	free(q->doc);
	free(q);
}

/* The request is unparsed for reason @u (the first reason stays); its buffers go now. */
static int stop(struct tapir_llm_req *q, enum tapir_llm_unparsed u)
{
	if (!q->stopped) {
		q->stopped = true;
		q->r.unparsed = u;
	}
	tapir_sse__release(&q->sse);
	free(q->doc);
	q->doc = NULL;
	q->doc_cap = 0;
	return 1;
}

/* --- JSON helpers ------------------------------------------------------------------------- */

static struct json_object *member(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A non-negative integer member, else false. */
static bool count_of(struct json_object *o, const char *key, uint64_t *out)
{
	struct json_object *v = member(o, key);
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return false;
	x = json_object_get_int64(v);
	if (x < 0)
		return false;
	*out = (uint64_t)x;
	return true;
}

static bool nonempty_string(struct json_object *o, const char *key)
{
	struct json_object *v = member(o, key);

	return json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0;
}

static bool str_is(struct json_object *o, const char *key, const char *want)
{
	struct json_object *v = member(o, key);

	return json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), want);
}

/* A body or event that says it is an error: {"error": ...} (OpenAI, vLLM, SGLang, TGI) or
 * {"type": "error"} (Anthropic). */
static bool is_error(struct json_object *o)
{
	struct json_object *e = member(o, "error");

	return (e && !json_object_is_type(e, json_type_null)) || str_is(o, "type", "error");
}

/* --- usage -------------------------------------------------------------------------------- */

static void set_input(struct tapir_llm_req *q, uint64_t v)
{
	q->r.input_tokens = v;
	q->r.flags |= TAPIR_LLM_INPUT;
	q->usage = true;
}

static void set_output(struct tapir_llm_req *q, uint64_t v)
{
	q->r.output_tokens = v;
	q->r.flags |= TAPIR_LLM_OUTPUT;
	q->usage = true;
}

static void set_cached(struct tapir_llm_req *q, uint64_t v)
{
	q->r.cached_tokens = v;
	q->r.flags |= TAPIR_LLM_CACHED;
}

/*
 * A usage object; what it has replaces what earlier ones said (vLLM's continuous usage
 * repeats it in every chunk: the last is the figure). Anthropic counts cache reads and writes
 * apart from input_tokens: here they are part of the input, as OpenAI's prompt_tokens has them.
 */
static void take_usage(struct tapir_llm_req *q, struct json_object *u)
{
	uint64_t in, out, read = 0, created = 0, cached;

	if (!json_object_is_type(u, json_type_object))
		return;
	switch (q->api) {
	case TAPIR_LLM_ANTHROPIC:
		count_of(u, "cache_creation_input_tokens", &created);
		if (count_of(u, "cache_read_input_tokens", &read))
			set_cached(q, read);
		if (count_of(u, "input_tokens", &in))
			set_input(q, in + created + read);
		if (count_of(u, "output_tokens", &out))
			set_output(q, out);
		return;
	case TAPIR_LLM_RESPONSES:
		if (count_of(u, "input_tokens", &in))
			set_input(q, in);
		if (count_of(u, "output_tokens", &out))
			set_output(q, out);
		if (count_of(member(u, "input_tokens_details"), "cached_tokens", &cached))
			set_cached(q, cached);
		return;
	default:
		if (count_of(u, "prompt_tokens", &in))
			set_input(q, in);
		if (count_of(u, "completion_tokens", &out))
			set_output(q, out);
		else if (q->api == TAPIR_LLM_EMBEDDINGS && q->r.flags & TAPIR_LLM_INPUT)
			set_output(q, 0); /* embeddings generate nothing */
		if (count_of(member(u, "prompt_tokens_details"), "cached_tokens", &cached))
			set_cached(q, cached);
	}
}

/* TGI's details.generated_tokens (its only count; the prompt's it gives only per token). */
static bool take_tgi(struct tapir_llm_req *q, struct json_object *o)
{
	uint64_t out;

	if (!count_of(member(o, "details"), "generated_tokens", &out))
		return false;
	set_output(q, out);
	return true;
}

/* --- token events ------------------------------------------------------------------------- */

static bool choice_has_content(enum tapir_llm_api api, struct json_object *c)
{
	struct json_object *d, *calls;

	if (api != TAPIR_LLM_CHAT)
		return nonempty_string(c, "text");
	d = member(c, "delta");
	calls = member(d, "tool_calls");
	return nonempty_string(d, "content") || nonempty_string(d, "reasoning_content") ||
	       nonempty_string(d, "reasoning") ||
	       (json_object_is_type(calls, json_type_array) && json_object_array_length(calls));
}

/*
 * How many content-bearing deltas event @o carries: per choice that has content for the
 * OpenAI streams (n > 1 streams each choice's step in its own or a shared chunk: every choice
 * with content is one decode step of its sequence), else 0 or 1.
 */
static unsigned int deltas_of(struct tapir_llm_req *q, struct json_object *o)
{
	struct json_object *choices, *d;
	unsigned int n = 0;
	size_t i, len;

	switch (q->api) {
	case TAPIR_LLM_CHAT:
	case TAPIR_LLM_COMPLETIONS:
		choices = member(o, "choices");
		if (!json_object_is_type(choices, json_type_array))
			return 0;
		len = json_object_array_length(choices);
		for (i = 0; i < len; i++)
			n += choice_has_content(q->api, json_object_array_get_idx(choices, i));
		return n;
	case TAPIR_LLM_RESPONSES: {
		struct json_object *t = member(o, "type");
		const char *s =
			json_object_is_type(t, json_type_string) ? json_object_get_string(t) : "";
		size_t sl = strlen(s);

		return sl > 6 && !strcmp(s + sl - 6, ".delta") && nonempty_string(o, "delta");
	}
	case TAPIR_LLM_ANTHROPIC:
		if (!str_is(o, "type", "content_block_delta"))
			return 0;
		d = member(o, "delta");
		return nonempty_string(d, "text") || nonempty_string(d, "thinking") ||
		       nonempty_string(d, "partial_json");
	case TAPIR_LLM_TGI_STREAM:
	case TAPIR_LLM_TGI:
		/* One event per generated token, special ones (EOS) included as TGI counts them. */
		return json_object_is_type(member(o, "token"), json_type_object);
	default: return 0;
	}
}

static int bucket_of(double s)
{
	int i;

	for (i = 0; i < TAPIR_LLM_LATENCY_BUCKETS; i++)
		if (s <= tapir_llm_latency_buckets[i])
			return i;
	return TAPIR_LLM_LATENCY_BUCKETS;
}

static void token_event(struct tapir_llm_req *q, unsigned int deltas)
{
	struct tapir_llm_result *r = &q->r;
	double gap;

	if (!r->token_events) {
		r->first_token_ns = q->ts;
	} else {
		/* Pieces could come out of order only by a caller's bug: a gap is never negative. */
		gap = q->ts > r->last_token_ns ? (q->ts - r->last_token_ns) / 1e9 : 0;
		r->gap_counts[bucket_of(gap)]++;
		r->gap_sum_s += gap;
	}
	if (q->ts > r->last_token_ns || !r->token_events)
		r->last_token_ns = q->ts;
	r->token_events++;
	q->deltas += deltas;
	if (q->info.on_token)
		q->info.on_token(q->info.ctx, q->ts, deltas);
}

/* --- events ------------------------------------------------------------------------------- */

/* The usage and end marker of one event of API @q->api's stream. */
static void stream_markers(struct tapir_llm_req *q, struct json_object *o)
{
	struct json_object *choices, *resp;

	switch (q->api) {
	case TAPIR_LLM_ANTHROPIC:
		if (str_is(o, "type", "message_start"))
			take_usage(q, member(member(o, "message"), "usage"));
		else if (str_is(o, "type", "message_delta") && member(o, "usage")) {
			take_usage(q, member(o, "usage"));
			q->final_usage = true;
		} else if (str_is(o, "type", "message_stop"))
			q->body_done = true;
		return;
	case TAPIR_LLM_RESPONSES:
		/* response.completed, .incomplete or .failed: the last event, with the usage. */
		resp = member(o, "response");
		if (str_is(o, "type", "response.completed") ||
		    str_is(o, "type", "response.incomplete") ||
		    str_is(o, "type", "response.failed")) {
			take_usage(q, member(resp, "usage"));
			q->final_usage = q->usage;
			q->body_done = true;
			if (str_is(o, "type", "response.failed"))
				q->r.flags |= TAPIR_LLM_ERROR;
		}
		return;
	case TAPIR_LLM_TGI:
	case TAPIR_LLM_TGI_STREAM:
		if (take_tgi(q, o))
			q->final_usage = q->body_done = true;
		return;
	default:
		take_usage(q, member(o, "usage"));
		/* The include_usage chunk: usage and no choices, after the last token. */
		choices = member(o, "choices");
		if (member(o, "usage") && q->usage &&
		    json_object_is_type(choices, json_type_array) &&
		    !json_object_array_length(choices))
			q->final_usage = true;
	}
}

/* JSON text @data is one whole document, or the request is unparsed. */
static struct json_object *parse_doc(struct tapir_llm_req *q, const char *data, size_t len)
{
	struct json_object *o;

	size_t end;

	json_tokener_reset(q->tok);
	o = json_tokener_parse_ex(q->tok, data, len);
	end = o ? json_tokener_get_parse_end(q->tok) : 0;
	while (end < len && data[end] && strchr(" \t\r\n", data[end]))
		end++;
	if (o && end == len)
		return o;
	json_object_put(o);
	return NULL;
}

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
	struct tapir_llm_req *q = ctx;
	struct json_object *o;
	unsigned int deltas;

	if (len == 6 && !memcmp(data, "[DONE]", 6)) {
		q->body_done = true;
		return 1;
	}
	o = parse_doc(q, data, len);
	if (!o)
		return stop(q, TAPIR_LLM_BAD_JSON);
	if (json_object_is_type(o, json_type_object)) {
		if (is_error(o) || !strcmp(event, "error"))
			q->r.flags |= TAPIR_LLM_ERROR;
		stream_markers(q, o);
		deltas = deltas_of(q, o);
		if (deltas)
			token_event(q, deltas);
	}
	json_object_put(o);
	/* Past the end marker, nothing is read: what a split would keep apart stays apart. */
	return q->body_done;
}

/* --- a JSON body -------------------------------------------------------------------------- */

static void json_body(struct tapir_llm_req *q, struct json_object *o)
{
	q->body_done = true;
	if (!json_object_is_type(o, json_type_object)) {
		stop(q, TAPIR_LLM_NO_USAGE);
		return;
	}
	if (is_error(o))
		q->r.flags |= TAPIR_LLM_ERROR;
	if (q->api == TAPIR_LLM_TGI || q->api == TAPIR_LLM_TGI_STREAM)
		take_tgi(q, o);
	else
		take_usage(q, member(o, "usage"));
	q->final_usage = q->usage;
}

/*
 * The JSON body so far, parsed from its start by a fresh tokener: 1 when the document is whole
 * (and taken), 0 while it may go on, else the body is unparsed. From its start, not fed piece by
 * piece: json-c takes some bytes differently whole and cut ("{"a":1" then "-}" passes, "{"a":1-}"
 * fails), and a result must not depend on where the kernel's pieces end.
 */
static int parse_body(struct tapir_llm_req *q)
{
	struct json_object *o;
	enum json_tokener_error err;

	json_tokener_reset(q->tok);
	o = json_tokener_parse_ex(q->tok, q->doc, (int)q->doc_bytes);
	err = json_tokener_get_error(q->tok);
	if (!o && err != json_tokener_continue)
		return stop(q, TAPIR_LLM_BAD_JSON);
	if (!o)
		return 0;
	json_body(q, o);
	json_object_put(o);
	return 1; /* the rest, chunk framing included, is not read */
}

static int on_json(void *ctx, const char *data, size_t len)
{
	struct tapir_llm_req *q = ctx;
	size_t take, cap, i;
	char *d;
	int ret;

	if (q->body_done)
		return 0; /* whitespace after the document */
	/* An answer is an object (or a list of them); a scalar is none. */
	for (i = 0; !q->doc_begun && i < len; i++) {
		if (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')
			continue;
		if (data[i] != '{' && data[i] != '[')
			return stop(q, TAPIR_LLM_BAD_JSON);
		q->doc_begun = true;
	}
	/* Up to the cap only: a document that ends within it is whole, however it is split. */
	take = len < TAPIR_LLM_DOC_MAX - q->doc_bytes ? len : TAPIR_LLM_DOC_MAX - q->doc_bytes;
	if (q->doc_bytes + take > q->doc_cap) {
		cap = q->doc_cap ? q->doc_cap : 1024;
		while (cap < q->doc_bytes + take)
			cap *= 2;
		d = realloc(q->doc, cap);
		if (!d)
			return stop(q, TAPIR_LLM_NO_MEMORY);
		q->doc = d;
		q->doc_cap = cap;
	}
	memcpy(q->doc + q->doc_bytes, data, take);
	q->doc_bytes += take;
	/* A document can only end at a closing bracket: parsed again when one came, and before
	 * the body is given up for another reason (a document broken before that is bad JSON,
	 * wherever the pieces end). */
	if ((take && (memchr(data, '}', take) || memchr(data, ']', take))) || take < len) {
		ret = parse_body(q);
		if (ret)
			return ret;
	}
	return take < len ? stop(q, TAPIR_LLM_TOO_LARGE) : 0;
}

/* The JSON body so far, before it is given up for something else than its JSON. */
static void json_verdict(struct tapir_llm_req *q)
{
	if (!q->info.sse && !q->stopped && !q->body_done && q->doc_bytes)
		parse_body(q);
}

/* --- feeding ------------------------------------------------------------------------------ */

/* De-chunked body bytes, to the layer that the Content-Type picks. */
static int on_body(void *ctx, const char *data, size_t len)
{
	struct tapir_llm_req *q = ctx;
	int ret;

	if (!q->info.sse)
		return on_json(q, data, len);
	/* A stop (1) ends the de-chunker's feed too. */
	ret = tapir_sse__feed(&q->sse, data, len, on_event, q);
	if (ret == -E2BIG)
		return stop(q, TAPIR_LLM_TOO_LARGE);
	if (ret < 0)
		return stop(q, TAPIR_LLM_NO_MEMORY);
	return ret;
}

/* Whether more bytes could still change the result. */
static bool settled(const struct tapir_llm_req *q)
{
	return q->stopped || q->body_done || q->wire_done;
}

int tapir_llm_req__response_body(struct tapir_llm_req *q, const void *buf, size_t n, uint64_t ts_ns)
{
	int ret;

	if (settled(q) || !n)
		return settled(q);
	q->ts = ts_ns;
	if (!q->info.chunked) {
		on_body(q, buf, n);
		return settled(q);
	}
	ret = tapir_dechunk__feed(&q->dc, buf, n, on_body, q);
	if (ret == -EBADMSG) {
		json_verdict(q);
		stop(q, TAPIR_LLM_BAD_CHUNKING);
	} else if (ret == 1 && !q->stopped && !q->body_done)
		q->wire_done = true; /* the last chunk */
	return settled(q);
}

void tapir_llm_req__lost(struct tapir_llm_req *q, uint64_t bytes)
{
	if (!bytes || settled(q))
		return;
	/* A stream's usage is final before its end marker: the hole may hide only the marker. */
	if (q->final_usage) {
		q->body_done = true;
		return;
	}
	json_verdict(q);
	stop(q, TAPIR_LLM_LOST);
}

/* --- the request -------------------------------------------------------------------------- */

static bool bool_of(struct json_object *o, const char *key, int *out)
{
	struct json_object *v = member(o, key);

	if (!json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

int tapir_llm_req__request_body(struct tapir_llm_req *q, const void *buf, size_t n)
{
	struct json_object *o;

	if (q->req_over || !n)
		return 0;
	if (!q->req_tok) {
		q->req_tok = json_tokener_new_ex(TAPIR_LLM_DEPTH);
		if (!q->req_tok)
			return -ENOMEM;
		json_tokener_set_flags(q->req_tok, JSON_TOKENER_STRICT);
	}
	if (n > TAPIR_LLM_DOC_MAX - q->req_bytes)
		goto over;
	q->req_bytes += n;
	o = json_tokener_parse_ex(q->req_tok, buf, n);
	if (!o && json_tokener_get_error(q->req_tok) == json_tokener_continue)
		return 0;
	if (json_object_is_type(o, json_type_object)) {
		bool_of(o, "stream", &q->r.stream);
		bool_of(member(o, "stream_options"), "include_usage", &q->r.include_usage);
		count_of(o, "n", &q->r.n);
	}
	json_object_put(o);
over:
	/* Read or given up: the tokener's partial tree goes now. */
	q->req_over = true;
	json_tokener_free(q->req_tok);
	q->req_tok = NULL;
	return 0;
}

/* Output tokens per second: over the span of the token events when there are two or more,
 * else over the whole exchange. */
static double rate(const struct tapir_llm_req *q, uint64_t end_ns)
{
	const struct tapir_llm_result *r = &q->r;
	uint64_t span;

	if (!(r->flags & TAPIR_LLM_OUTPUT) || !r->output_tokens)
		return 0;
	if (r->token_events >= 2 && r->last_token_ns > r->first_token_ns)
		span = r->last_token_ns - r->first_token_ns;
	else if (end_ns > q->info.req_start_ns)
		span = end_ns - q->info.req_start_ns;
	else
		return 0;
	return r->output_tokens / (span / 1e9);
}

/* The counts of a stream: its usage if it had one, else the content-bearing deltas. A cut
 * stream whose last usage is behind the deltas seen (Anthropic's message_start) counts these. */
static void stream_counts(struct tapir_llm_req *q)
{
	struct tapir_llm_result *r = &q->r;

	if (!(r->flags & TAPIR_LLM_OUTPUT) || (!q->final_usage && q->deltas > r->output_tokens)) {
		r->output_tokens = q->deltas;
		r->flags |= TAPIR_LLM_OUTPUT | TAPIR_LLM_ESTIMATED;
	}
}

void tapir_llm_req__finish(struct tapir_llm_req *q, uint64_t end_ns, bool aborted,
			   struct tapir_llm_result *out)
{
	struct tapir_llm_result *r = &q->r;

	if (q->info.status >= 400) {
		r->flags |= TAPIR_LLM_ERROR;
		/* An error's body need not be JSON, nor be there: without a count, its tokens are
		 * none, not unknown. */
		if (!q->usage && !q->deltas) {
			q->stopped = false;
			r->unparsed = TAPIR_LLM_PARSED;
			goto timing;
		}
	}
	if (!q->stopped && q->info.sse) {
		if (!q->body_done || (aborted && !q->final_usage))
			r->flags |= TAPIR_LLM_CUT | TAPIR_LLM_ERROR;
		stream_counts(q);
	} else if (!q->stopped && !q->body_done) {
		/* Bytes that broke the document since its last closing bracket say so now. */
		if (!q->doc_bytes || !parse_body(q))
			stop(q, q->doc_bytes ? TAPIR_LLM_TRUNCATED : TAPIR_LLM_NO_USAGE);
	} else if (!q->stopped && !q->usage && !(r->flags & TAPIR_LLM_ERROR)) {
		stop(q, TAPIR_LLM_NO_USAGE);
	}
	if (q->stopped) {
		r->flags &= ~(TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT | TAPIR_LLM_CACHED |
			      TAPIR_LLM_ESTIMATED);
		r->flags |= TAPIR_LLM_UNPARSED;
	}
	if ((r->flags & (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT)) ==
		    (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT) &&
	    !(r->flags & TAPIR_LLM_ESTIMATED))
		r->flags |= TAPIR_LLM_EXACT;
timing:
	if (r->token_events && r->first_token_ns >= q->info.req_start_ns)
		r->ttft_ns = r->first_token_ns - q->info.req_start_ns;
	r->tokens_per_s = rate(q, end_ns);
	*out = *r;
}
