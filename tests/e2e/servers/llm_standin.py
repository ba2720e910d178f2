# SPDX-License-Identifier: GPL-2.0
"""An OpenAI-compatible LLM server stand-in that answers in the wire shapes of vLLM's OpenAI
server, or of SGLang's (flavour "sglang"), with token counts and pacing known in advance, and
that logs its own timing of every request.

Run by Debian's uvicorn: `python3 -m uvicorn --app-dir tests/e2e/servers llm_standin:app`, set
up by TAPIR_LLM_FLAVOR (vllm, sglang), TAPIR_LLM_LOG, TAPIR_LLM_TTFT_MS and TAPIR_LLM_ITL_MS;
or `python3 llm_standin.py --port P [--flavor sglang] [--log FILE] [--ttft-ms MS] [--itl-ms MS]`.

Routes: POST /v1/chat/completions and /v1/completions (SSE when "stream", one `data: {json}`
event per chunk in chunked transfer coding, `data: [DONE]` last, the usage chunk with
`"choices": []` before it when stream_options.include_usage; else JSON with usage at the end,
vLLM's chat body then prompt_logprobs), POST /v1/embeddings (floats, or base64 when asked, as the
openai clients do by default). The shapes are those of tests/unit/test_llm.c: vLLM leaves unset
fields out, sends every choice's role chunk before the first tokens and finish_reason with the
last token; SGLang writes every field (nulls, matched_stop, "usage": null in each chunk), sends a
choice's role chunk just before its first token and finish_reason in a chunk of its own. Other
APIs, in the shapes of the same unit tests: POST /v1/responses (OpenAI's responses API: when
"stream", `event:` + `data:` events response.created, response.output_text.delta per token,
response.output_text.done, response.completed with response.usage; else JSON with usage last),
POST /v1/messages (Anthropic: when "stream", message_start with usage.input_tokens and
output_tokens 1, content_block_start, ping, content_block_delta per token, content_block_stop,
message_delta with usage.output_tokens, message_stop; else JSON with usage last), POST /generate
and /generate_stream (TGI: JSON with generated_text, and details.generated_tokens when
parameters.details; `data:` events without the space, one per token, the last with
generated_text, and details when parameters.details). Not LLM APIs, for negative tests: GET
/health and /v1/models, POST /predict (a chat completion body with usage) and /predict_stream (a
chat completion stream).

Tokens, all deterministic:
- input: the whitespace-separated words of every message's content (chat, string or text
  parts), of the prompt (completions; a list of token ids counts its length) or of the input
  (embeddings); responses: of instructions and input (a string, or messages as in chat);
  Anthropic: of system and the messages; TGI: none reported;
- output: max_completion_tokens, else max_tokens (default 16), per choice; a stream sends one
  chunk per token and choice (`n` choices), each with non-empty content, so n * max_tokens in all;
  responses: max_output_tokens; Anthropic: max_tokens; TGI: parameters.max_new_tokens;
- cached: a request with "user": "cached:K" reports prompt_tokens_details.cached_tokens = K
  (else prompt_tokens_details is null, as the engines report it without a cache report); the
  responses API reports input_tokens_details.cached_tokens, K or 0; Anthropic's
  metadata.user_id "cached:R" or "cached:R,written:W" reports cache_read_input_tokens = R and
  cache_creation_input_tokens = W (else neither), input_tokens then the words less R and W;
- max_tokens above 4096 (or a body that is not JSON) is answered with the API's error: vLLM's
  400 body, Anthropic's 400 {"type": "error"}, TGI's 422 {"error", "error_type"}.
Pacing: decode step k (from 0) of every choice is due TTFT + k * ITL ms after the request
started: 120 and 20 ms by default, per request from the body fields "ttft_ms" and "itl_ms" (the
official clients pass unknown fields through). A non-streaming answer goes when its last step is
due; embeddings at once. vLLM and SGLang send their role chunk with the first token, so does this;
the events before the first token of the responses API and Anthropic go at once.

Log: one JSON line per HTTP request, appended when the request ends: scenario (the request's
X-Scenario header), method, path, status, flavor, params (ttft_ms, itl_ms, max_tokens, n, stream,
include_usage), t_start (time.monotonic() when the app got the request), then in ms after t_start:
token_ms (when each content-bearing event had been handed to the transport: uvicorn's write
returned), end_ms; content (content-bearing choice deltas per choice index; the token events of
README's "LLM token metrics" for the other APIs, as index 0 or the responses API's output_index),
usage (the last one sent; Anthropic's message_start usage updated by message_delta's; TGI's
{"generated_tokens": N} from details), done (the end marker sent: [DONE], message_stop,
response.completed, TGI's last event) and disconnected (the client left before the end)."""
import argparse
import asyncio
import base64
import json
import os
import struct
import time
import uuid

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

FLAVOR = os.environ.get("TAPIR_LLM_FLAVOR", "vllm")
LOG = os.environ.get("TAPIR_LLM_LOG")
TTFT_MS = float(os.environ.get("TAPIR_LLM_TTFT_MS", "120"))
ITL_MS = float(os.environ.get("TAPIR_LLM_ITL_MS", "20"))
MAX_TOKENS = 4096
DEFAULT_MAX_TOKENS = 16
WORDS = ["The", " sky", " is", " blue", " and", " the", " sea", " is", " deep", "."]

api = FastAPI()


def dumps(obj):
    """JSON as pydantic's model_dump_json writes it: compact, in field order."""
    return json.dumps(obj, separators=(",", ":"))


def words(text):
    return len(text.split()) if isinstance(text, str) else 0


def input_tokens(body, kind):
    if kind == "chat":
        n = 0
        for m in body.get("messages") or []:
            content = m.get("content")
            if isinstance(content, list):
                n += sum(words(p.get("text")) for p in content if isinstance(p, dict))
            else:
                n += words(content)
        return n
    value = body.get("prompt" if kind == "completions" else "input")
    if isinstance(value, list):
        if value and all(isinstance(x, int) for x in value):
            return len(value)
        return sum(words(x) for x in value)
    return words(value)


def text_words(content):
    """Words of a message's content: a string, or the text of its parts."""
    if isinstance(content, list):
        return sum(words(p.get("text")) for p in content if isinstance(p, dict))
    return words(content)


def messages_words(messages):
    return sum(text_words(m.get("content")) for m in messages or [] if isinstance(m, dict))


def cache_spec(tag):
    """(read, written) of an Anthropic tag "cached:R" or "cached:R,written:W", else None."""
    if not isinstance(tag, str) or not tag.startswith("cached:"):
        return None
    fields = dict(f.split(":", 1) for f in tag.split(","))
    return int(fields["cached"]), int(fields.get("written", 0))


def cached_tokens(body):
    user = body.get("user")
    if isinstance(user, str) and user.startswith("cached:"):
        return int(user[len("cached:"):])
    return None


def usage(prompt, completion, cached):
    details = None if cached is None else {"cached_tokens": cached}
    return {"prompt_tokens": prompt, "total_tokens": prompt + completion,
            "completion_tokens": completion, "prompt_tokens_details": details}


def error(status, message):
    body = {"object": "error", "message": message, "type": "BadRequestError", "param": None,
            "code": status}
    return Response(content=dumps(body), status_code=status, media_type="application/json")


def token(i, k):
    return WORDS[(k + i) % len(WORDS)]


# --- chunk shapes ---------------------------------------------------------------------------

def chat_choice(i, content=None, role=None, finish=None):
    if FLAVOR == "sglang":
        delta = {"role": role, "content": content, "reasoning_content": None, "tool_calls": None}
        return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish,
                "matched_stop": None}
    delta = {"role": role, "content": content} if role else {"content": content}
    return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}


def cmpl_choice(i, text, finish=None):
    if FLAVOR == "sglang":
        return {"index": i, "text": text, "logprobs": None, "finish_reason": finish,
                "matched_stop": None}
    return {"index": i, "text": text, "logprobs": None, "finish_reason": finish,
            "stop_reason": None}


def chunk(rid, obj, model, choices, use=None, final_usage=False):
    c = {"id": rid, "object": obj, "created": int(time.time()), "model": model,
         "choices": choices}
    if FLAVOR == "sglang":
        c["usage"] = use  # SGLang writes "usage": null in every chunk
    elif final_usage:
        c["usage"] = use
    return "data: " + dumps(c) + "\n\n"


# --- routes ---------------------------------------------------------------------------------

async def until(t):
    """Sleep until time.monotonic() >= t (the loop's timers may fire a little early)."""
    while (delay := t - time.monotonic()) > 0:
        await asyncio.sleep(delay)


def request_params(request, body, max_tokens=None, stream=None):
    """The request's start and parameters (logged); @max_tokens and @stream where the API keeps
    them elsewhere than OpenAI's fields."""
    rec = request.scope["tapir_llm"]
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    p = {"ttft_ms": float(body.get("ttft_ms", TTFT_MS)),
         "itl_ms": float(body.get("itl_ms", ITL_MS)),
         "max_tokens": int(max_tokens or DEFAULT_MAX_TOKENS), "n": int(body.get("n") or 1),
         "stream": bool(body.get("stream")) if stream is None else stream,
         "include_usage": bool((body.get("stream_options") or {}).get("include_usage"))}
    rec["params"] = p
    return rec["t_start"], p


def schedule(t0, p):
    """When decode step k is due."""
    return lambda k: t0 + (p["ttft_ms"] + k * p["itl_ms"]) / 1000


def watched(request, events):
    """@events, the request marked disconnected when the client leaves before the end."""
    async def gen():
        try:
            async for e in events:
                yield e
        except BaseException:
            request.scope["tapir_llm"]["disconnected"] = True
            raise
    return StreamingResponse(gen(), media_type="text/event-stream")


def typed_event(doc):
    """An event named by its type, as the responses API and Anthropic write them."""
    return f"event: {doc['type']}\ndata: {dumps(doc)}\n\n"


async def generate(request, kind):
    try:
        body = await request.json()
    except ValueError:
        return error(400, "The request body is not valid JSON.")
    t0, p = request_params(request, body)
    prompt = input_tokens(body, kind)
    if p["max_tokens"] > MAX_TOKENS:
        return error(400, f"This model's maximum context length is {MAX_TOKENS} tokens. "
                          f"However, you requested {p['max_tokens'] + prompt} tokens "
                          f"({prompt} in the messages, {p['max_tokens']} in the completion). "
                          "Please reduce the length of the messages or completion.")
    model = body.get("model") or "standin"
    cached = cached_tokens(body)
    m, n = p["max_tokens"], p["n"]
    due = schedule(t0, p)
    use = usage(prompt, m * n, cached)
    if kind == "chat":
        rid, obj = ("chatcmpl-" if FLAVOR == "vllm" else "") + uuid.uuid4().hex, "chat.completion"
    else:
        rid, obj = ("cmpl-" if FLAVOR == "vllm" else "") + uuid.uuid4().hex, "text_completion"

    if not p["stream"]:
        await until(due(m - 1))
        text = lambda i: "".join(token(i, k) for k in range(m))
        if kind == "chat":
            if FLAVOR == "sglang":
                choices = [{"index": i, "message": {"role": "assistant", "content": text(i),
                                                    "reasoning_content": None,
                                                    "tool_calls": None},
                            "logprobs": None, "finish_reason": "length", "matched_stop": None}
                           for i in range(n)]
            else:
                choices = [{"index": i, "message": {"role": "assistant", "content": text(i),
                                                    "tool_calls": []},
                            "logprobs": None, "finish_reason": "length", "stop_reason": None}
                           for i in range(n)]
        else:
            choices = [dict(cmpl_choice(i, text(i), "length"), **(
                {} if FLAVOR == "sglang" else {"prompt_logprobs": None})) for i in range(n)]
        out = {"id": rid, "object": obj, "created": int(time.time()), "model": model,
               "choices": choices, "usage": use}
        if FLAVOR == "vllm" and kind == "chat":
            out["prompt_logprobs"] = None  # vLLM's chat body ends with it, after usage
        return Response(content=dumps(out), media_type="application/json")

    obj += ".chunk" if kind == "chat" else ""

    async def stream():
        try:
            for k in range(m):
                await until(due(k))
                last = "length" if k == m - 1 and FLAVOR == "vllm" else None
                if kind == "chat" and k == 0 and FLAVOR == "vllm":
                    for i in range(n):  # vLLM: every choice's role chunk, then the tokens
                        yield chunk(rid, obj, model, [chat_choice(i, "", role="assistant")])
                for i in range(n):
                    if kind == "chat":
                        if k == 0 and FLAVOR == "sglang":  # SGLang: each choice's own first
                            yield chunk(rid, obj, model, [chat_choice(i, "", role="assistant")])
                        yield chunk(rid, obj, model, [chat_choice(i, token(i, k), finish=last)])
                    else:
                        yield chunk(rid, obj, model, [cmpl_choice(i, token(i, k), last)])
            if FLAVOR == "sglang":
                for i in range(n):  # SGLang: a finish chunk of its own per choice
                    c = chat_choice(i, finish="length") if kind == "chat" else cmpl_choice(
                        i, "", "length")
                    yield chunk(rid, obj, model, [c])
            if p["include_usage"]:
                yield chunk(rid, obj, model, [], use, final_usage=True)
            yield "data: [DONE]\n\n"
        except BaseException:
            request.scope["tapir_llm"]["disconnected"] = True
            raise

    return StreamingResponse(stream(), media_type="text/event-stream")


@api.post("/v1/chat/completions")
async def chat(request: Request):
    return await generate(request, "chat")


@api.post("/v1/completions")
async def completions(request: Request):
    return await generate(request, "completions")


@api.post("/v1/embeddings")
async def embeddings(request: Request):
    try:
        body = await request.json()
    except ValueError:
        return error(400, "The request body is not valid JSON.")
    request.scope["tapir_llm"]["params"] = {"stream": False}
    inputs = body.get("input")
    inputs = inputs if isinstance(inputs, list) and inputs and not isinstance(
        inputs[0], int) else [inputs]
    data = []
    for i, _ in enumerate(inputs):
        vec = [round(0.125 * (i + 1) * (j + 1), 6) for j in range(4)]
        if body.get("encoding_format") == "base64":
            vec = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"index": i, "object": "embedding", "embedding": vec} if FLAVOR == "vllm"
                    else {"embedding": vec, "index": i, "object": "embedding"})
    prompt = input_tokens(body, "embeddings")
    use = usage(prompt, 0, cached_tokens(body))
    if FLAVOR == "sglang":
        out = {"data": data, "model": body.get("model"), "object": "list", "usage": use}
    else:
        out = {"id": "embd-" + uuid.uuid4().hex, "object": "list", "created": int(time.time()),
               "model": body.get("model"), "data": data, "usage": use}
    return Response(content=dumps(out), media_type="application/json")


@api.post("/v1/responses")
async def responses(request: Request):
    """OpenAI's responses API, as tests/unit/test_llm.c's samples have it."""
    try:
        body = await request.json()
    except ValueError:
        return error(400, "The request body is not valid JSON.")
    t0, p = request_params(request, body, body.get("max_output_tokens"))
    m = p["max_tokens"]
    if m > MAX_TOKENS:
        return error(400, f"max_output_tokens must be at most {MAX_TOKENS}, got {m}.")
    value = body.get("input")
    prompt = words(body.get("instructions")) + (
        messages_words(value) if isinstance(value, list) else words(value))
    use = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens":
                                                            cached_tokens(body) or 0},
           "output_tokens": m, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": prompt + m}
    rid, mid = "resp_" + uuid.uuid4().hex, "msg_" + uuid.uuid4().hex
    text = "".join(token(0, k) for k in range(m))
    due = schedule(t0, p)
    if not p["stream"]:
        await until(due(m - 1))
        out = {"id": rid, "object": "response", "created_at": int(time.time()),
               "status": "completed", "model": body.get("model") or "standin",
               "output": [{"type": "message", "id": mid, "status": "completed",
                           "role": "assistant", "content": [{"type": "output_text",
                                                             "text": text, "annotations": []}]}],
               "usage": use}
        return Response(content=dumps(out), media_type="application/json")

    async def events():
        resp = {"id": rid, "object": "response", "status": "in_progress", "usage": None}
        yield typed_event({"type": "response.created", "sequence_number": 0, "response": resp})
        for k in range(m):
            await until(due(k))
            yield typed_event({"type": "response.output_text.delta", "sequence_number": k + 1,
                               "item_id": mid, "output_index": 0, "content_index": 0,
                               "delta": token(0, k)})
        yield typed_event({"type": "response.output_text.done", "sequence_number": m + 1,
                           "text": text})
        resp = dict(resp, status="completed", usage=use)
        yield typed_event({"type": "response.completed", "sequence_number": m + 2,
                           "response": resp})

    return watched(request, events())


def anthropic_error(message):
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return Response(content=dumps(body), status_code=400, media_type="application/json")


@api.post("/v1/messages")
async def messages(request: Request):
    """Anthropic's Messages API. input_tokens leaves out what the cache read and wrote, so that
    README's input (input_tokens + cache_creation_input_tokens + cache_read_input_tokens) is the
    prompt's words."""
    try:
        body = await request.json()
    except ValueError:
        return anthropic_error("The request body is not valid JSON.")
    t0, p = request_params(request, body)
    m = p["max_tokens"]
    if m > MAX_TOKENS:
        return anthropic_error(f"max_tokens: {m} > {MAX_TOKENS}, which is the maximum allowed "
                               "number of output tokens for standin")
    system = body.get("system")
    prompt = text_words(system) + messages_words(body.get("messages"))
    cache = cache_spec((body.get("metadata") or {}).get("user_id"))
    read, written = cache or (0, 0)
    use = {"input_tokens": prompt - read - written}
    if cache:
        use.update(cache_creation_input_tokens=written, cache_read_input_tokens=read)
    mid, model = "msg_" + uuid.uuid4().hex[:24], body.get("model") or "standin"
    due = schedule(t0, p)
    if not p["stream"]:
        await until(due(m - 1))
        out = {"id": mid, "type": "message", "role": "assistant", "model": model,
               "content": [{"type": "text", "text": "".join(token(0, k) for k in range(m))}],
               "stop_reason": "max_tokens", "stop_sequence": None,
               "usage": dict(use, output_tokens=m)}
        return Response(content=dumps(out), media_type="application/json")

    async def events():
        msg = {"id": mid, "type": "message", "role": "assistant", "content": [], "model": model,
               "stop_reason": None, "stop_sequence": None, "usage": dict(use, output_tokens=1)}
        yield typed_event({"type": "message_start", "message": msg})
        yield typed_event({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}})
        yield 'event: ping\ndata: {"type": "ping"}\n\n'
        for k in range(m):
            await until(due(k))
            yield typed_event({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": token(0, k)}})
        yield typed_event({"type": "content_block_stop", "index": 0})
        yield typed_event({"type": "message_delta", "delta": {"stop_reason": "max_tokens",
                                                              "stop_sequence": None},
                           "usage": {"output_tokens": m}})
        yield typed_event({"type": "message_stop"})

    return watched(request, events())


async def tgi(request, stream):
    """TGI's /generate and /generate_stream: details only when parameters.details, as TGI."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Response(content=dumps({"error": "Failed to parse the request body as JSON",
                                       "error_type": "validation"}),
                        status_code=422, media_type="application/json")
    params = body.get("parameters") or {}
    t0, p = request_params(request, body, params.get("max_new_tokens"), stream)
    m = p["max_tokens"]
    if m > MAX_TOKENS:
        return Response(content=dumps({"error": f"`max_new_tokens` must be <= {MAX_TOKENS}. "
                                                f"Given: {m}", "error_type": "validation"}),
                        status_code=422, media_type="application/json")
    text = "".join(token(0, k) for k in range(m))
    details = {"finish_reason": "length", "generated_tokens": m, "seed": None}
    due = schedule(t0, p)
    if not stream:
        await until(due(m - 1))
        out = {"generated_text": text}
        if params.get("details"):
            out["details"] = dict(details, prefill=[], tokens=[])
        return Response(content=dumps(out), media_type="application/json")

    async def events():
        for k in range(m):
            await until(due(k))
            last = k == m - 1
            e = {"index": k + 1, "token": {"id": 100 + k, "text": token(0, k), "logprob": -0.1,
                                           "special": False},
                 "generated_text": text if last else None,
                 "details": details if last and params.get("details") else None}
            yield "data:" + dumps(e) + "\n\n"  # TGI writes no space after the colon

    return watched(request, events())


@api.post("/generate")
async def generate_tgi(request: Request):
    return await tgi(request, False)


@api.post("/generate_stream")
async def generate_stream_tgi(request: Request):
    return await tgi(request, True)


# Routes that are not LLM APIs, with bodies that look like them: tapir must leave them alone.
@api.get("/health")
async def health():
    return Response(status_code=200)


@api.get("/v1/models")
async def models():
    return {"object": "list", "data": [{"id": "standin", "object": "model"}]}


@api.post("/predict")
async def predict(request: Request):
    await request.body()
    out = {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "standin",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                        "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 50, "total_tokens": 55, "completion_tokens": 5}}
    return Response(content=dumps(out), media_type="application/json")


@api.post("/predict_stream")
async def predict_stream(request: Request):
    await request.body()

    async def stream():
        for k in range(3):
            yield chunk("chatcmpl-x", "chat.completion.chunk", "standin",
                        [chat_choice(0, token(0, k))])
        yield chunk("chatcmpl-x", "chat.completion.chunk", "standin", [],
                    usage(10, 3, None), final_usage=True)
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


# --- timing log -----------------------------------------------------------------------------

API_OF_PATH = {"/v1/responses": "responses", "/v1/messages": "anthropic", "/generate": "tgi",
               "/generate_stream": "tgi"}


def sse_events(body):
    """The data of each event in @body (whole events, as this app writes them)."""
    for block in body.decode().split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.split("\n")
                if line.startswith("data:")]
        if data:
            yield "\n".join(data)


def body_usage(api, doc):
    """The usage of a JSON answer; TGI's is its details.generated_tokens."""
    if not isinstance(doc, dict):
        return None
    if api == "tgi":
        details = doc.get("details")
        return details and {"generated_tokens": details["generated_tokens"]}
    return doc.get("usage")


def log_event(rec, api, doc):
    """Notes event @doc of an @api stream in @rec (usage, end marker); returns the indexes of
    the content it carries: one per choice with content (OpenAI), else README's token event."""
    kind = doc.get("type")
    if api == "anthropic":
        if kind == "message_start":
            rec["usage"] = dict(doc["message"]["usage"])
        elif kind == "message_delta":
            rec["usage"] = dict(rec["usage"] or {}, **doc["usage"])
        elif kind == "message_stop":
            rec["done"] = True
        return [0] if kind == "content_block_delta" and doc["delta"].get("text") else []
    if api == "responses":
        if kind == "response.completed":
            rec["usage"], rec["done"] = doc["response"]["usage"], True
        return [doc["output_index"]] if kind.endswith(".delta") and doc.get("delta") else []
    if api == "tgi":
        if doc.get("details"):
            rec["usage"] = body_usage(api, doc)
        rec["done"] = doc.get("generated_text") is not None  # the last event
        return [0] if doc.get("token") else []
    if doc.get("usage"):
        rec["usage"] = doc["usage"]
    return [c["index"] for c in doc.get("choices", [])
            if (c.get("delta") or {}).get("content") or c.get("text")]


class TimingLog:
    """ASGI wrapper: stamps every body chunk once uvicorn has written it, and logs the request."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        t0 = time.monotonic()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        rec = {"scenario": headers.get("x-scenario"), "method": scope["method"],
               "path": scope["path"], "flavor": FLAVOR, "t_start": t0, "status": None,
               "params": None, "token_ms": [], "content": {}, "usage": None, "done": False,
               "disconnected": False, "body": b""}
        scope["tapir_llm"] = rec
        api = API_OF_PATH.get(scope["path"], "openai")
        sse = [False]

        async def timed_send(message):
            if message["type"] == "http.response.start":
                rec["status"] = message["status"]
                sse[0] = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                             for k, v in message.get("headers", []))
            await send(message)
            now = time.monotonic()
            body = message.get("body", b"") if message["type"] == "http.response.body" else b""
            if not body:
                return
            if not sse[0]:
                rec["body"] += body
                return
            for data in sse_events(body):
                if data == "[DONE]":
                    rec["done"] = True
                    continue
                bearing = log_event(rec, api, json.loads(data))
                for i in bearing:
                    rec["content"][str(i)] = rec["content"].get(str(i), 0) + 1
                if bearing:
                    rec["token_ms"].append((now - t0) * 1000)

        try:
            await self.inner(scope, receive, timed_send)
        finally:
            rec["end_ms"] = (time.monotonic() - t0) * 1000
            body = rec.pop("body")
            if body and not sse[0]:
                try:
                    rec["usage"] = body_usage(api, json.loads(body))
                except ValueError:
                    pass
            if LOG:
                with open(LOG, "a") as f:
                    f.write(dumps(rec) + "\n")


app = TimingLog(api)


def main():
    global FLAVOR, LOG, TTFT_MS, ITL_MS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--flavor", choices=("vllm", "sglang"), default=FLAVOR)
    ap.add_argument("--log", default=LOG)
    ap.add_argument("--ttft-ms", type=float, default=TTFT_MS)
    ap.add_argument("--itl-ms", type=float, default=ITL_MS)
    args = ap.parse_args()
    FLAVOR, LOG, TTFT_MS, ITL_MS = args.flavor, args.log, args.ttft_ms, args.itl_ms
    import uvicorn
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
