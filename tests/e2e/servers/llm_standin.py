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
choice's role chunk just before its first token and finish_reason in a chunk of its own. Not LLM
APIs, for negative tests: GET /health and /v1/models, POST /predict (a chat completion body with
usage) and /predict_stream (a chat completion stream).

Tokens, all deterministic:
- input: the whitespace-separated words of every message's content (chat, string or text
  parts), of the prompt (completions; a list of token ids counts its length) or of the input
  (embeddings);
- output: max_completion_tokens, else max_tokens (default 16), per choice; a stream sends one
  chunk per token and choice (`n` choices), each with non-empty content, so n * max_tokens in all;
- cached: a request with "user": "cached:K" reports prompt_tokens_details.cached_tokens = K
  (else prompt_tokens_details is null, as the engines report it without a cache report);
- max_tokens above 4096 (or a body that is not JSON) is answered with vLLM's 400 error body.
Pacing: decode step k (from 0) of every choice is due TTFT + k * ITL ms after the request
started: 120 and 20 ms by default, per request from the body fields "ttft_ms" and "itl_ms" (the
official clients pass unknown fields through). A non-streaming answer goes when its last step is
due; embeddings at once. vLLM and SGLang send their role chunk with the first token, so does this.

Log: one JSON line per HTTP request, appended when the request ends: scenario (the request's
X-Scenario header), method, path, status, flavor, params (ttft_ms, itl_ms, max_tokens, n, stream,
include_usage), t_start (time.monotonic() when the app got the request), then in ms after t_start:
token_ms (when each content-bearing event had been handed to the transport: uvicorn's write
returned), end_ms; content (content-bearing choice deltas per choice index), usage (the last one
sent), done ([DONE] sent) and disconnected (the client left before the end)."""
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


def request_params(request, body):
    rec = request.scope["tapir_llm"]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    p = {"ttft_ms": float(body.get("ttft_ms", TTFT_MS)),
         "itl_ms": float(body.get("itl_ms", ITL_MS)),
         "max_tokens": int(max_tokens), "n": int(body.get("n") or 1),
         "stream": bool(body.get("stream")),
         "include_usage": bool((body.get("stream_options") or {}).get("include_usage"))}
    rec["params"] = p
    return rec["t_start"], p


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
    due = lambda k: t0 + (p["ttft_ms"] + k * p["itl_ms"]) / 1000
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

def sse_events(body):
    return [e for e in body.decode().split("\n\n") if e.startswith("data: ")]


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
            for event in sse_events(body):
                data = event[len("data: "):]
                if data == "[DONE]":
                    rec["done"] = True
                    continue
                doc = json.loads(data)
                if doc.get("usage"):
                    rec["usage"] = doc["usage"]
                bearing = [c["index"] for c in doc.get("choices", [])
                           if (c.get("delta") or {}).get("content") or c.get("text")]
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
                    rec["usage"] = json.loads(body).get("usage")
                except (ValueError, AttributeError):
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
