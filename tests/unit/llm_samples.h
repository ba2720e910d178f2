/* SPDX-License-Identifier: GPL-2.0 */
/* Wire samples of vLLM 0.8's chat stream, shared by the LLM unit tests. */
#ifndef TAPIR_TEST_LLM_SAMPLES_H
#define TAPIR_TEST_LLM_SAMPLES_H

/* One content chunk (@c its text, @fin its finish_reason, JSON), the role chunk that opens the
 * stream, and the include_usage chunk that closes it (12 prompt, 3 completion tokens). */
#define VLLM_CHUNK(c, fin)                                                                          \
	"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" c "\"},"              \
	"\"logprobs\":null,\"finish_reason\":" fin "}]}\n\n"
#define VLLM_ROLE                                                                                   \
	"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"  \
	"\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
#define VLLM_USAGE                                                                                  \
	"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000," \
	"\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":15,"       \
	"\"completion_tokens\":3,\"prompt_tokens_details\":null}}\n\n"

#endif
