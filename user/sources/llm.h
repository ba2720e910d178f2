/* SPDX-License-Identifier: GPL-2.0 */
/* Token counts and timings of one LLM API request, from snippets of its request and response. */
#ifndef TAPIR_LLM_H
#define TAPIR_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

/* The API a request path names; NONE for any other path. */
enum tapir_llm_api {
	TAPIR_LLM_NONE,
	TAPIR_LLM_CHAT,	       /* /v1/chat/completions */
	TAPIR_LLM_COMPLETIONS, /* /v1/completions */
	TAPIR_LLM_EMBEDDINGS,  /* /v1/embeddings */
	TAPIR_LLM_RESPONSES,   /* /v1/responses */
	TAPIR_LLM_ANTHROPIC,   /* /v1/messages */
	TAPIR_LLM_TGI,	       /* /generate */
	TAPIR_LLM_TGI_STREAM,  /* /generate_stream */
};

/*
 * The API of request path @path (a NUL-terminated request target): the OpenAI paths with or
 * without "/v1", Anthropic's /v1/messages, TGI's /generate and /generate_stream; a query string
 * or a trailing '/' is ignored. The method (POST) is the caller's to check.
 */
enum tapir_llm_api tapir_llm_api_of_path(const char *path);

/* The API of a configured path (llm.paths): the one whose path ends it, e.g. /x/chat/completions. */
enum tapir_llm_api tapir_llm_api_of_suffix(const char *path);

/*
 * The kernel's path table (bpf/http.bpf.c, llm_match()): the built-in paths, then @extra (each
 * at most TAPIR_LLM_PATH_MAX bytes, its API from its suffix), as words of the request line
 * after "POST " under masks. Returns the entries, or -E2BIG with more than fit.
 */
#define TAPIR_LLM_PATH_MAX 24
#define TAPIR_LLM_TABLE	   24 /* TAPIR_LLM_PATHS of include/tapir/http.h */
#define TAPIR_LLM_BUILTIN  11 /* built-in entries: the rest of the table is llm.paths' */
struct tapir_llm_path_table {
	uint64_t word[TAPIR_LLM_TABLE][3], mask[TAPIR_LLM_TABLE][3];
	uint8_t len[TAPIR_LLM_TABLE], api[TAPIR_LLM_TABLE];
};
int tapir_llm_path_table(struct tapir_llm_path_table *t, const char *const *extra, size_t n_extra);

/* Why a request's tokens are not known. */
enum tapir_llm_unparsed {
	TAPIR_LLM_PARSED,
	TAPIR_LLM_TOO_LARGE,	/* a JSON document or event past TAPIR_LLM_DOC_MAX */
	TAPIR_LLM_BAD_JSON,	/* not JSON, or JSON deeper than TAPIR_LLM_DEPTH */
	TAPIR_LLM_BAD_CHUNKING, /* broken chunked transfer coding */
	TAPIR_LLM_LOST,		/* bytes the kernel could not hand over, before the usage */
	TAPIR_LLM_TRUNCATED,	/* the JSON body ended before its document did */
	TAPIR_LLM_NO_USAGE,	/* a complete JSON body without a token count */
	TAPIR_LLM_NO_MEMORY,
	TAPIR_LLM_UNPARSED_REASONS,
};

/* The reason label of @u ("too_large", "bad_json", ...). */
const char *tapir_llm_unparsed_name(enum tapir_llm_unparsed u);

/* Bounds: what one JSON document (a body, or an event's data) may take, and its nesting. */
#define TAPIR_LLM_DOC_MAX (64 * 1024)
#define TAPIR_LLM_DEPTH	  24

/* Result flags. */
#define TAPIR_LLM_INPUT	    (1u << 0) /* input_tokens is the server's figure */
#define TAPIR_LLM_OUTPUT    (1u << 1) /* output_tokens is known (the server's, or estimated) */
#define TAPIR_LLM_CACHED    (1u << 2) /* cached_tokens is the server's figure */
#define TAPIR_LLM_EXACT	    (1u << 3) /* input and output both from the server's usage */
#define TAPIR_LLM_ESTIMATED (1u << 4) /* output_tokens counted from content-bearing events */
#define TAPIR_LLM_ERROR	    (1u << 5) /* an error body or event, status >= 400, or CUT */
#define TAPIR_LLM_CUT	    (1u << 6) /* a stream that ended before its end marker */
#define TAPIR_LLM_UNPARSED  (1u << 7) /* nothing is known: see unparsed */

/* Upper bounds (seconds) of the time to first token and inter-token latency histograms, from
 * 5 ms to 60 s; the per-request gap counts below use them, +Inf last. */
#define TAPIR_LLM_LATENCY_BUCKETS 22
extern const double tapir_llm_latency_buckets[TAPIR_LLM_LATENCY_BUCKETS];

/* What the response's headers said; req_start_ns and the timestamps fed share one clock. */
struct tapir_llm_resp_info {
	uint16_t status;
	bool sse;     /* Content-Type: text/event-stream */
	bool chunked; /* Transfer-Encoding: chunked (the bytes fed are the wire's) */
	uint64_t req_start_ns;
	/* Optional: each token event as it is seen, with its choice deltas (tests, tracing). */
	void (*on_token)(void *ctx, uint64_t ts_ns, unsigned int deltas);
	void *ctx;
};

struct tapir_llm_result {
	uint64_t input_tokens, output_tokens, cached_tokens;
	unsigned int flags;
	enum tapir_llm_unparsed unparsed;
	/* Token events: SSE events that carry content (see README); 0 for a JSON body. */
	uint64_t token_events;
	uint64_t first_token_ns, last_token_ns;
	/* first_token_ns - req_start_ns, when there was a token event (else 0). */
	uint64_t ttft_ns;
	/* Output tokens over the time that produced them; 0 when not known. */
	double tokens_per_s;
	/* The gaps between consecutive token events, counted by tapir_llm_latency_buckets. */
	__u64 gap_counts[TAPIR_LLM_LATENCY_BUCKETS + 1]; /* as tapir_series__merge takes them */
	double gap_sum_s;
	/* From the request body's head, when it parsed: -1 unknown, else 0/1 (and n, 0 unknown). */
	int stream, include_usage;
	uint64_t n;
};

struct tapir_llm_req;

/* A request of API @api; NULL with errno EINVAL (api NONE, no info) or ENOMEM. */
struct tapir_llm_req *tapir_llm_req__new(enum tapir_llm_api api,
					 const struct tapir_llm_resp_info *info);
void tapir_llm_req__free(struct tapir_llm_req *q);

/*
 * Bytes of the request body from its start, in as many pieces as they come. Only a head that
 * holds a whole JSON document is read (json-c builds no partial objects); a cut one is fine,
 * its fields stay unknown. Returns 0 or -ENOMEM.
 */
int tapir_llm_req__request_body(struct tapir_llm_req *q, const void *buf, size_t n);

/*
 * The next @n bytes of the response body (the raw wire bytes after the headers), seen at
 * @ts_ns. Returns 0 while more is wanted, 1 once nothing more can change the counts (the usage
 * is complete and the stream over, or the request is unparsed).
 */
int tapir_llm_req__response_body(struct tapir_llm_req *q, const void *buf, size_t n,
				 uint64_t ts_ns);

/* @bytes of the response the kernel could not hand over: unless the usage was complete, the
 * request is unparsed (framing and counts after a hole are guesses). */
void tapir_llm_req__lost(struct tapir_llm_req *q, uint64_t bytes);

/* The response ended at @end_ns (@aborted: the connection died first). Fills @out. */
void tapir_llm_req__finish(struct tapir_llm_req *q, uint64_t end_ns, bool aborted,
			   struct tapir_llm_result *out);

#endif
