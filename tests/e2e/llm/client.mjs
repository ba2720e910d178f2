// SPDX-License-Identifier: GPL-2.0
// Drives an OpenAI-compatible server with the official openai client and prints what the client
// itself saw of each request: the ground truth that tests/e2e/test_llm.py compares tapir with.
//
// Usage: node client.mjs BASE_URL < scenarios
// stdin holds scenarios as JSON, one per line or a JSON array on a line; each runs as its line
// arrives, one after the other, on the client's own keep-alive connections:
//   {"name": "...", "api": "chat" | "completions" | "embeddings" | "responses",
//    "body": {...the request's fields, "model" defaulting to "standin"},
//    "abort_after": K}  // optional: abort the stream with an AbortController after K
//                       // content-bearing chunks
// The request carries the header X-Scenario: NAME. Output: one JSON line per request:
//   name, api, stream, status (HTTP status; null when no response came), error (message),
//   aborted, usage ({prompt_tokens, completion_tokens, total_tokens, cached_tokens} or null;
//   the responses API's input_tokens, output_tokens and input_tokens_details.cached_tokens under
//   these names), content (streams: content-bearing choice deltas per choice index; the
//   responses API's non-empty *.delta events per output_index), events (streams: chunks that
//   carry content, tapir's token events), chunks (all chunks or events of a stream), choices (of
//   a JSON answer; the responses API's output items), embeddings (vectors), t_start,
//   t_first_content, t_end (ms since the epoch,
//   fractional), client ("openai@VERSION").
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

import OpenAI from "openai";

const VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/openai/package.json", import.meta.url)),
).version;
const now = () => performance.timeOrigin + performance.now();

const client = new OpenAI({
  baseURL: process.argv[2],
  apiKey: "x",
  maxRetries: 0,
  timeout: 60_000,
});

function usageOf(u) {
  if (!u) return null;
  return {
    prompt_tokens: u.prompt_tokens ?? u.input_tokens ?? null,
    completion_tokens: u.completion_tokens ?? u.output_tokens ?? null,
    total_tokens: u.total_tokens ?? null,
    cached_tokens: (u.prompt_tokens_details ?? u.input_tokens_details)?.cached_tokens ?? null,
  };
}

// The choices of a chunk that carry content, as tapir counts token events; a responses API
// event: itself, indexed by its output item, when it is a non-empty delta.
function bearing(api, chunk) {
  if (api === "responses")
    return chunk.type?.endsWith(".delta") && chunk.delta
      ? [{ index: chunk.output_index ?? 0 }]
      : [];
  return (chunk.choices ?? []).filter((c) =>
    api === "chat" ? c.delta?.content || c.delta?.reasoning_content : c.text,
  );
}

async function run(sc) {
  const body = { model: "standin", ...sc.body };
  const out = {
    name: sc.name,
    api: sc.api,
    stream: !!body.stream,
    status: null,
    error: null,
    aborted: false,
    usage: null,
    content: null,
    events: null,
    chunks: null,
    choices: null,
    embeddings: null,
    t_start: now(),
    t_first_content: null,
    t_end: null,
    client: `openai@${VERSION}`,
  };
  const ac = new AbortController();
  const opts = { headers: { "X-Scenario": sc.name }, signal: ac.signal };
  const endpoint = {
    chat: client.chat.completions,
    completions: client.completions,
    embeddings: client.embeddings,
    responses: client.responses,
  }[sc.api];
  try {
    if (!out.stream) {
      const res = await endpoint.create(body, opts);
      out.status = 200;
      out.usage = usageOf(res.usage);
      if (sc.api === "embeddings") out.embeddings = res.data.length;
      else if (sc.api === "responses") out.choices = res.output.length;
      else out.choices = res.choices.length;
    } else {
      const stream = await endpoint.create(body, opts);
      out.status = 200;
      out.content = {};
      out.events = 0;
      out.chunks = 0;
      let seen = 0;
      for await (const chunk of stream) {
        out.chunks++;
        const u = sc.api === "responses" ? chunk.response?.usage : chunk.usage;
        if (u) out.usage = usageOf(u);
        const hits = bearing(sc.api, chunk);
        if (hits.length) out.events++;
        if (hits.length && out.t_first_content === null) out.t_first_content = now();
        for (const c of hits) out.content[c.index] = (out.content[c.index] ?? 0) + 1;
        seen += hits.length;
        if (sc.abort_after && seen >= sc.abort_after) {
          ac.abort();
          out.aborted = true;
          break;
        }
      }
    }
  } catch (err) {
    if (err instanceof OpenAI.APIError) out.status = err.status ?? null;
    out.error = String(err?.message ?? err);
  }
  out.t_end = now();
  return out;
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const parsed = JSON.parse(line);
  for (const sc of Array.isArray(parsed) ? parsed : [parsed]) {
    process.stdout.write(JSON.stringify(await run(sc)) + "\n");
  }
}
