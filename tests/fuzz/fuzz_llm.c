// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: LLM token accounting (user/sources/llm.c and its framing, llm_wire.c) on what a
 * model server sends back. The first bytes pick the API, the framing and the status; the rest is
 * the body, fed whole and then in pieces cut where the input says. Both feeds must give the very
 * same result, and a result must be consistent: nothing known of an unparsed request, an exact
 * one with both counts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

#define KNOWN (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT | TAPIR_LLM_CACHED | TAPIR_LLM_ESTIMATED)

/* Feed @body in pieces that end at the offsets @cuts picks (none: whole), losing @lost bytes
 * after the first piece when asked. */
static void run(const struct tapir_llm_resp_info *info, enum tapir_llm_api api, const uint8_t *body,
		size_t len, const uint8_t *cuts, size_t n_cuts, bool aborted,
		struct tapir_llm_result *r)
{
	struct tapir_llm_req *q = tapir_llm_req__new(api, info);
	size_t from = 0, to, i;

	if (!q)
		abort();
	/* The body is also a request head: whatever it is, nothing may break. */
	tapir_llm_req__request_body(q, body, len);
	for (i = 0; i < n_cuts && from < len; i++) {
		to = from + cuts[i] % 64;
		to = to < len ? to : len;
		tapir_llm_req__response_body(q, body + from, to - from, 7);
		from = to;
	}
	tapir_llm_req__response_body(q, body + from, len - from, 7);
	tapir_llm_req__finish(q, 9, aborted, r);
	tapir_llm_req__free(q);
}

static void check(const struct tapir_llm_result *r)
{
	if ((r->flags & TAPIR_LLM_UNPARSED) && (r->flags & (KNOWN | TAPIR_LLM_EXACT)))
		abort();
	if (!(r->flags & TAPIR_LLM_UNPARSED) != (r->unparsed == TAPIR_LLM_PARSED))
		abort();
	if ((r->flags & TAPIR_LLM_EXACT) && (r->flags & (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT)) !=
						    (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT))
		abort();
	if ((r->flags & TAPIR_LLM_CUT) && !(r->flags & TAPIR_LLM_ERROR))
		abort();
	if (r->token_events && r->first_token_ns != 7)
		abort();
	if (!(r->tokens_per_s >= 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tapir_llm_resp_info info = { .req_start_ns = 1 };
	struct tapir_llm_result whole, split;
	enum tapir_llm_api api;
	size_t n_cuts;
	bool aborted;

	if (size < 3)
		return 0;
	/* byte 0: API (3 bits), SSE, chunked, aborted, status 4xx; byte 1: cuts */
	api = (data[0] & 7) % TAPIR_LLM_TGI_STREAM + 1;
	info.sse = data[0] & 0x08;
	info.chunked = data[0] & 0x10;
	aborted = data[0] & 0x20;
	info.status = data[0] & 0x40 ? 429 : 200;
	n_cuts = data[1] % 16;
	data += 2;
	size -= 2;
	if (n_cuts > size)
		n_cuts = size;
	run(&info, api, data + n_cuts, size - n_cuts, NULL, 0, aborted, &whole);
	run(&info, api, data + n_cuts, size - n_cuts, data, n_cuts, aborted, &split);
	check(&whole);
	if (memcmp(&whole, &split, sizeof(whole)))
		abort();
	return 0;
}
