# SPDX-License-Identifier: GPL-2.0
"""LLM token metrics end to end: the official `openai` npm client (tests/e2e/llm, one pinned
version) drives an OpenAI-compatible stand-in (servers/llm_standin.py) that speaks vLLM's wire
format, or SGLang's, from a watched cgroup: chat and completions, streamed with and without
usage and as JSON, n = 2, cached prompt tokens, embeddings, a 400 and a stream the client aborts.
The other APIs tapir reads come from the same stand-in: OpenAI's responses API through the same
client, Anthropic's Messages API and TGI's /generate and /generate_stream from a raw socket (no
official OpenAI client speaks them), whose usage the test reads from the bytes it received.

The truth is what the client itself saw of each request (its usage, the content-bearing choice
deltas of each stream, the status, whether it aborted), and for times the stand-in's own log
(when each content-bearing chunk had been handed to the transport). What tapir adds to each
family per request must be what README ("LLM token metrics") derives from that, exactly for
counts, within 5 ms per request for times. Also: baseten_llm_num_requests while streams are in
flight and after; per-request KV cache hit rates where no engine owns baseten_llm_kv_cache_hit_rate
(a daemon with engines off); and traffic that is not an LLM API adds nothing. A self-check runs
the stand-in and the client without tapir."""
import collections
import hashlib
import json
import os
import select
import shutil
import subprocess
import time

import pytest

from client import RawConn, get, post
from conftest import (PY, SERVERS, Cgroup, Scrape, cgroup2_mount, free_port, hooks_of,
                      metrics_text, spawn_tapir, stop_proc, wait_port, wait_serving)

LLM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llm")
CLIENT = os.path.join(LLM_DIR, "client.mjs")
TTFT_MS, ITL_MS = 120, 20  # the stand-in's default pacing
QUIET = 0.3  # after the expected figures showed: time for anything unexpected to show too

IN_TOTAL = "baseten_llm_input_tokens_total"
OUT_TOTAL = "baseten_llm_output_tokens_total"
IN_REQ = "baseten_llm_input_tokens_per_request"
OUT_REQ = "baseten_llm_output_tokens_per_request"
TPS = "baseten_llm_tokens_per_second_per_request"
HIT = "baseten_llm_kv_cache_hit_rate"
IN_FLIGHT = "baseten_llm_num_requests"
TTFT = "tapir_llm_time_to_first_token_seconds"
ITL = "tapir_llm_inter_token_latency_seconds"
ESTIMATED = "tapir_llm_usage_estimated_total"
UNPARSED = "tapir_llm_requests_unparsed_total"
LOST = "tapir_llm_payload_lost_total"
HTTP_REQ = "baseten_inference_requests_total"
IN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
              131072, 262144, float("inf")]
OUT_BUCKETS = [1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
               float("inf")]
HIT_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, float("inf")]


def le(x):
    return "+Inf" if x == float("inf") else f"{x:g}"


# --- scenarios: what each request is, and what the client must see of it ----------------------

USAGE = {"include_usage": True}


def user(text):
    return {"role": "user", "content": text}


class Scenario:
    def __init__(self, name, api, body, usage=None, content=None, status=200, abort_after=None):
        self.name, self.api, self.body, self.abort_after = name, api, body, abort_after
        self.usage = usage  # (prompt, completion, cached) the client must get, or None
        self.content = content  # content-bearing deltas per choice of a stream
        self.status = status
        self.stream = api == "tgi_stream" or bool(body.get("stream"))  # TGI's is its path

    def request(self):
        r = {"name": self.name, "api": self.api, "body": self.body}
        if self.abort_after:
            r["abort_after"] = self.abort_after
        return r


# Inputs are the prompt's words, outputs max_tokens per choice; one chunk per token and choice.
# All of them, by README's rules: input tokens 55 (9 requests with usage), output tokens 46 (12
# requests: 33 from usage, 13 estimated from the content of the 3 streams without usage, the
# abort included), 7 first tokens, 27 inter-token gaps (680 ms by the schedule), 11 token rates;
# the 400 adds nothing. Cached rates 6/8, 5/5 and 0/3 where tapir owns the hit-rate family.
SCENARIOS = [
    Scenario("chat_stream_usage", "chat",
             {"messages": [{"role": "system", "content": "You are terse."},
                           user("Tell me about the sky please")],
              "max_tokens": 6, "stream": True, "stream_options": USAGE},
             usage=(9, 6, None), content=[6]),
    Scenario("chat_stream_no_usage", "chat",
             {"messages": [user("one two three four five")], "max_tokens": 4, "stream": True},
             content=[4]),
    Scenario("chat_json", "chat",
             {"messages": [user("seven words are in this one prompt")], "max_tokens": 5},
             usage=(7, 5, None)),
    Scenario("completions_stream_usage", "completions",
             {"prompt": "eight words make up the prompt of this", "max_tokens": 5,
              "stream": True, "stream_options": USAGE},
             usage=(8, 5, None), content=[5]),
    Scenario("completions_json", "completions",
             {"prompt": "four words of prompt", "max_tokens": 3}, usage=(4, 3, None)),
    Scenario("chat_stream_n2_usage", "chat",
             {"messages": [user("six words for two choices here")], "n": 2, "max_tokens": 3,
              "stream": True, "stream_options": USAGE},
             usage=(6, 6, None), content=[3, 3]),
    Scenario("completions_stream_n2_no_usage", "completions",
             {"prompt": "a three word", "n": 2, "max_tokens": 3, "stream": True},
             content=[3, 3]),
    Scenario("chat_stream_cached", "chat",
             {"messages": [user("eight words of which six are cached here")], "max_tokens": 4,
              "user": "cached:6", "stream": True, "stream_options": USAGE},
             usage=(8, 4, 6), content=[4]),
    Scenario("chat_json_cached", "chat",
             {"messages": [user("five words all cached here")], "max_tokens": 2,
              "user": "cached:5"},
             usage=(5, 2, 5)),
    Scenario("chat_json_cached_zero", "chat",
             {"messages": [user("zero cached words")], "max_tokens": 2, "user": "cached:0"},
             usage=(3, 2, 0)),
    Scenario("embeddings", "embeddings", {"input": ["a b c", "d e"]}, usage=(5, 0, None)),
    Scenario("error_400", "chat", {"messages": [user("far too long")], "max_tokens": 5000},
             status=400),
    # 150 ms between tokens: the stand-in sees the client leave before its next token.
    Scenario("abort", "chat",
             {"messages": [user("abort me please")], "max_tokens": 20, "itl_ms": 150,
              "stream": True, "stream_options": USAGE},
             content=[3], abort_after=3),
]
CACHED = [s for s in SCENARIOS if s.usage and s.usage[2] is not None]

# The other APIs, usage in OpenAI's terms as README defines it: inputs the words (the responses
# API: instructions and input; Anthropic: system and messages, its input_tokens plus the cache's
# writes and reads, cached the reads), none for TGI; outputs the requested tokens, one token
# event each. All of them: input tokens 39 (7 requests), output tokens 36 (10 requests, 6
# estimated from the events of the 2 streams without a final count), 6 first tokens, 18 gaps, 1
# unparsed (TGI's JSON without details); the 400 adds nothing. Cached rates 4/9, 5/5 and 2/6
# where tapir owns the hit-rate family (the responses API's others report 0 cached).
SHAPES = [
    Scenario("responses_stream", "responses",
             {"instructions": "Be terse.",
              "input": [{"role": "user",
                         "content": [{"type": "input_text", "text": "four words of input"}]}],
              "max_output_tokens": 4, "stream": True},
             usage=(6, 4, 0), content=[4]),
    Scenario("responses_json", "responses",
             {"input": "six words in one plain string", "max_output_tokens": 3,
              "user": "cached:2"},
             usage=(6, 3, 2)),
    Scenario("anthropic_stream", "anthropic",
             {"model": "standin", "system": "Be brief.",
              "messages": [user("Tell me about the sea")], "max_tokens": 5, "stream": True},
             usage=(7, 5, None), content=[5]),
    Scenario("anthropic_stream_cached", "anthropic",
             {"model": "standin",
              "messages": [user([{"type": "text",
                                  "text": "nine words of which four are read two written"}])],
              "max_tokens": 4, "metadata": {"user_id": "cached:4,written:2"}, "stream": True},
             usage=(9, 4, 4), content=[4]),
    Scenario("anthropic_json", "anthropic",
             {"model": "standin", "messages": [user("three plain words")], "max_tokens": 2},
             usage=(3, 2, None)),
    Scenario("anthropic_json_cached", "anthropic",
             {"model": "standin", "messages": [user("five words all read here")], "max_tokens": 3,
              "metadata": {"user_id": "cached:5"}},
             usage=(5, 3, 5)),
    Scenario("anthropic_400", "anthropic",
             {"model": "standin", "messages": [user("far too long")], "max_tokens": 5000},
             status=400),
    # Cut after 3 deltas (150 ms apart): the usage seen, message_start's (output 1), lags behind
    # them, so the output is the 3 deltas, estimated, and the input message_start's.
    Scenario("anthropic_abort", "anthropic",
             {"model": "standin", "messages": [user("abort me please")], "max_tokens": 20,
              "itl_ms": 150, "stream": True},
             usage=(3, 1, None), content=[3], abort_after=3),
    Scenario("tgi_generate", "tgi",
             {"inputs": "What is deep learning", "parameters": {"max_new_tokens": 4,
                                                                "details": True}},
             usage=(None, 4, None)),
    # Without parameters.details (TGI's default) no count: the JSON is unparsed, the stream's
    # events are its tokens.
    Scenario("tgi_generate_no_details", "tgi",
             {"inputs": "no details asked", "parameters": {"max_new_tokens": 3}}),
    Scenario("tgi_stream", "tgi_stream",
             {"inputs": "stream five tokens", "parameters": {"max_new_tokens": 5,
                                                             "details": True}},
             usage=(None, 5, None), content=[5]),
    Scenario("tgi_stream_no_details", "tgi_stream",
             {"inputs": "no details", "parameters": {"max_new_tokens": 3}},
             content=[3]),
]
SHAPES_CACHED = [s for s in SHAPES if s.usage and s.usage[2]]


def check_client(sc, r):
    """The client saw what the scenario was designed to give it (set-up, not tapir)."""
    assert r["status"] == sc.status, r
    if sc.status != 200:
        return
    got = r["usage"] and (r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"],
                          r["usage"]["cached_tokens"])
    assert got == sc.usage, r
    if sc.stream:
        assert r["content"] == {str(i): n for i, n in enumerate(sc.content)}, r
        assert r["events"] == sum(sc.content), r  # one choice per chunk
    assert r["aborted"] == bool(sc.abort_after), r


# --- processes: the stand-in and the client ----------------------------------------------------

@pytest.fixture(scope="module")
def openai_js():
    """The pinned openai package in tests/e2e/llm/node_modules (npm ci when missing or stale)."""
    assert shutil.which("node"), "node is needed: the client is the official openai npm package"
    with open(os.path.join(LLM_DIR, "package-lock.json")) as f:
        want = json.load(f)["packages"]["node_modules/openai"]["version"]
    have = None
    try:
        with open(os.path.join(LLM_DIR, "node_modules", "openai", "package.json")) as f:
            have = json.load(f)["version"]
    except OSError:
        pass
    if have != want:
        npm = shutil.which("npm")
        assert npm, f"npm is needed to install openai@{want} into {LLM_DIR}/node_modules"
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LLM_DIR,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci failed in {LLM_DIR}:\n{r.stdout}{r.stderr}"
    return want


class Standin:
    """servers/llm_standin.py under Debian's uvicorn, in @cg when given; its log in @tmp."""

    def __init__(self, tmp, flavor="vllm", cg=None):
        self.port = free_port()
        self.log = os.path.join(tmp, f"llm-{flavor}-{self.port}.jsonl")
        argv = [PY, "-m", "uvicorn", "--app-dir", SERVERS, "llm_standin:app", "--host",
                "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        env = dict(os.environ, TAPIR_LLM_FLAVOR=flavor, TAPIR_LLM_LOG=self.log)
        out = open(os.path.join(tmp, f"llm-{flavor}-{self.port}.out"), "w")
        spawn = cg.popen if cg else subprocess.Popen
        self.proc = spawn(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)
        # A first request through every layer, so that no first-time cost (lazy imports, the
        # log file) falls between a measured request's arrival and the app's t_start.
        conn = RawConn(self.port)
        conn.send(post("/predict", b"{}"))
        assert conn.read_response()[0] == 200
        conn.close()

    def entry(self, scenario, timeout=5.0):
        """The stand-in's log line of @scenario (written when the request has ended)."""
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(self.log):
                with open(self.log) as f:
                    for line in f:
                        e = json.loads(line)
                        if e["scenario"] == scenario:
                            return e
            assert time.monotonic() < deadline, f"no log line of {scenario} in {self.log}"
            time.sleep(0.02)

    def stop(self):
        stop_proc(self.proc)


RAW_PATHS = {"anthropic": "/v1/messages", "tgi": "/generate", "tgi_stream": "/generate_stream"}


def sse_split(text):
    """The (event, data) of each whole event in SSE @text (LF line ends, as the stand-in writes
    them), and the rest."""
    *whole, rest = text.split("\n\n")
    events = []
    for block in whole:
        event, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((event, "\n".join(data)))
    return events, rest


def anthropic_usage(u):
    """README's Anthropic counts in OpenAI's terms: the input is input_tokens and the cache's
    writes and reads, the cached tokens the reads."""
    return {"prompt_tokens": u["input_tokens"] + u.get("cache_creation_input_tokens", 0)
            + u.get("cache_read_input_tokens", 0),
            "completion_tokens": u["output_tokens"],
            "cached_tokens": u.get("cache_read_input_tokens")}


def tgi_usage(details):
    """TGI counts only what it generated: no prompt count."""
    return details and {"prompt_tokens": None, "completion_tokens": details["generated_tokens"],
                        "cached_tokens": None}


class RawClient:
    """Anthropic's and TGI's APIs, which the openai client does not speak, on one keep-alive
    socket: the result line client.mjs would give, read from the bytes received. Usage as
    anthropic_usage and tgi_usage make it (a stream's: Anthropic's message_start usage updated
    by message_delta's, TGI's details); events are README's token events (a content_block_delta
    with text, a TGI event with a token). abort_after closes the socket after that many."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def run(self, sc):
        body = json.dumps(sc.body).encode()
        head = (f"POST {RAW_PATHS[sc.api]} HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Type: application/json\r\nX-Scenario: {sc.name}\r\n"
                f"Content-Length: {len(body)}\r\n")
        if sc.api == "anthropic":
            head += "anthropic-version: 2023-06-01\r\nx-api-key: x\r\n"
        self.conn = self.conn or RawConn(self.port)
        self.conn.send(head.encode() + b"\r\n" + body)
        out = {"name": sc.name, "api": sc.api, "stream": sc.stream, "status": None,
               "aborted": False, "usage": None, "content": None, "events": None}
        if not sc.stream:
            out["status"], _, raw, _ = self.conn.read_response()
            if out["status"] == 200:
                doc = json.loads(raw)
                out["usage"] = (anthropic_usage(doc["usage"]) if sc.api == "anthropic"
                                else tgi_usage(doc.get("details")))
            return out
        out["status"], headers, _, _ = self.conn.read_response(head=True)
        assert out["status"] == 200 and headers.get("transfer-encoding") == "chunked", headers
        out["content"], out["events"] = {}, 0
        usage, text = None, ""
        for piece in self.conn.chunks():
            events, text = sse_split(text + piece.decode())
            for event, data in events:
                doc = json.loads(data)
                if sc.api == "anthropic":
                    assert event == doc["type"], (event, data)
                    if doc["type"] == "message_start":
                        usage = dict(doc["message"]["usage"])
                    elif doc["type"] == "message_delta":
                        usage.update(doc["usage"])
                    out["usage"] = usage and anthropic_usage(usage)
                    bearing = doc["type"] == "content_block_delta" and doc["delta"].get("text")
                else:
                    if doc.get("details"):
                        out["usage"] = tgi_usage(doc["details"])
                    bearing = isinstance(doc.get("token"), dict)
                if bearing:
                    out["events"] += 1
                    out["content"]["0"] = out["content"].get("0", 0) + 1
                if sc.abort_after and out["events"] >= sc.abort_after:
                    self.close()
                    out["aborted"] = True
                    return out
        return out

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


class Client:
    """client.mjs: scenarios in on stdin, one result line out per request; Anthropic and TGI
    scenarios go through a RawClient instead."""

    def __init__(self, port, tmp, cg=None):
        self.port, self.raw = port, None
        self.err = os.path.join(tmp, f"client-{port}.err")
        spawn = cg.popen if cg else subprocess.Popen
        self.proc = spawn(["node", CLIENT, f"http://127.0.0.1:{port}/v1"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=open(self.err, "w"), text=True, cwd=LLM_DIR)

    def send(self, sc):
        self.proc.stdin.write(json.dumps(sc.request()) + "\n")
        self.proc.stdin.flush()

    def result(self, timeout=30.0):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        assert line, "the openai client gave no result:\n" + open(self.err).read()
        return json.loads(line)

    def run(self, sc):
        if sc.api in RAW_PATHS:
            self.raw = self.raw or RawClient(self.port)
            return self.raw.run(sc)
        self.send(sc)
        return self.result()

    def close(self):
        if self.raw:
            self.raw.close()
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- what tapir must make of each request ------------------------------------------------------

class View:
    """One request as README's rules count it, from the client's view and the server's times."""

    def __init__(self, r, srv):
        self.input = self.output = self.hit = self.ttft = self.span = self.tps = None
        self.estimated = self.unparsed = False
        self.events = 0
        self.itl_schedule = 0.0
        if r["status"] != 200:
            return  # an error status without any count: no tokens, nothing guessed
        u = r["usage"]
        if r["stream"]:
            self.events = r["events"]
            # The server sent no token the client did not see (the abort included).
            assert len(srv["token_ms"]) == self.events, (r, srv)
            if self.events:
                self.ttft = srv["token_ms"][0] / 1000
            if self.events > 1:
                self.span = (srv["token_ms"][-1] - srv["token_ms"][0]) / 1000
                p = srv["params"]  # steps seen: each step has a token of every choice
                self.itl_schedule = (self.events // p["n"] - 1) * p["itl_ms"] / 1000
        if u:
            self.input, self.output = u["prompt_tokens"], u["completion_tokens"]
            if u["cached_tokens"] is not None and self.input:
                self.hit = min(1.0, u["cached_tokens"] / self.input)
        if not r["stream"]:
            self.unparsed = not u  # a JSON answer without a count: counted nowhere else
        elif not u or r["aborted"]:
            # Streamed without usage, or cut: one token per content-bearing delta, unless the
            # usage seen before the cut says more (its input stands: Anthropic's message_start).
            seen = sum(r["content"].values())
            if self.output is None or seen > self.output:
                self.output, self.estimated = seen, True
        if self.output:
            self.tps = self.output / (self.span if self.span else srv["end_ms"] / 1000)


class Figures:
    """Expected deltas of the exactly known samples: {(name, scope, extra labels): value}."""

    def __init__(self, hit_rates):
        self.want = {}
        self.hit_rates = hit_rates  # per-request rates are tapir's (no engine owns the family)
        self.ttft = self.itl = self.itl_schedule = self.tps = self.hit = 0.0
        self.streams = 0
        for fam, buckets in ((IN_REQ, IN_BUCKETS), (OUT_REQ, OUT_BUCKETS), (TPS, None),
                             (HIT, HIT_BUCKETS)):
            self.add(fam + "_count", "pod", 0)
            for b in buckets or []:
                self.add(fam + "_bucket", "pod", 0, le=le(b))
        for name, scope in ((IN_TOTAL, "pod"), (OUT_TOTAL, "pod"), (IN_REQ + "_sum", "pod"),
                            (OUT_REQ + "_sum", "pod"), (TTFT + "_count", "dep"),
                            (ITL + "_count", "dep"), (ESTIMATED, "dep"), (UNPARSED, "all"),
                            (LOST, "all")):
            self.add(name, scope, 0)

    def add(self, name, scope, v, **extra):
        key = (name, scope, tuple(sorted(extra.items())))
        self.want[key] = self.want.get(key, 0) + v

    def observe(self, fam, v, buckets):
        self.add(fam + "_count", "pod", 1)
        if fam in (IN_REQ, OUT_REQ):  # whole tokens; rates are compared apart
            self.add(fam + "_sum", "pod", v)
        for b in buckets or []:
            self.add(fam + "_bucket", "pod", int(v <= b), le=le(b))

    def request(self, view):
        if view.input is not None:
            self.add(IN_TOTAL, "pod", view.input)
            self.observe(IN_REQ, view.input, IN_BUCKETS)
        if view.output is not None:
            self.add(OUT_TOTAL, "pod", view.output)
            self.observe(OUT_REQ, view.output, OUT_BUCKETS)
        if view.tps:
            self.observe(TPS, view.tps, None)
            self.tps += view.tps
        if view.hit is not None and self.hit_rates:
            self.observe(HIT, view.hit, HIT_BUCKETS)
            self.hit += view.hit
        if view.estimated:
            self.add(ESTIMATED, "dep", 1)
        if view.unparsed:
            self.add(UNPARSED, "all", 1)
        if view.events:
            self.add(TTFT + "_count", "dep", 1)
            self.ttft += view.ttft
        if view.events > 1:
            self.add(ITL + "_count", "dep", view.events - 1)
            self.itl += view.span
            self.itl_schedule += view.itl_schedule
            self.streams += 1


def slot_rel(cg):
    """The path of cgroup @cg below the cgroup2 mount, as tapir names replicas."""
    return cg.path[len(cgroup2_mount()):]


class Target:
    """The label sets of one replica, pod (the reference's labels and _internal_pod_id) and dep
    (the deployment's labels), and what a scrape shows for Figures' keys."""

    def __init__(self, rel, model_id, model_name, deployment_id):
        self.dep = dict(model_id=model_id, model_name=model_name, deployment_id=deployment_id,
                        environment="production", rollout_phase="stable")
        # _internal_pod_id hashes the cgroup path (relative to the mount) of a replica.
        self.pod = dict(self.dep, _internal_pod_id=hashlib.sha256(rel.encode()).hexdigest()[:16])

    def value(self, s, name, scope, extra=()):
        labels = {"pod": self.pod, "dep": self.dep, "all": {}}[scope]
        return s.value(name, **labels, **dict(extra))

    def delta(self, before, after, fig):
        return {k: self.value(after, *k) - self.value(before, *k) for k in fig.want}

    def mismatches(self, before, after, fig):
        got = self.delta(before, after, fig)
        return [f"{n}{dict(e)} ({scope}): tapir +{got[(n, scope, e)]:g}, want +{w:g}"
                for (n, scope, e), w in fig.want.items() if got[(n, scope, e)] != w]

    def reached(self, before, after, fig):
        got = self.delta(before, after, fig)
        return all(got[k] >= w for k, w in fig.want.items())


def settle_on(scrape, target, before, fig, what, extra_http=0):
    """Scrape until the expected figures show (and the HTTP request count grew by @extra_http),
    then QUIET more; the last scrape."""
    def shown(s):
        if extra_http and s.value(HTTP_REQ, model_name=target.dep["model_name"]) < (
                before.value(HTTP_REQ, model_name=target.dep["model_name"]) + extra_http):
            return False
        return target.reached(before, s, fig)

    deadline = time.monotonic() + 10
    while True:
        s = scrape()
        if shown(s):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: tapir did not show the expected figures in 10 s:\n  "
                                 + "\n  ".join(target.mismatches(before, s, fig)))
        time.sleep(0.1)
    time.sleep(QUIET)
    return scrape()


def queued_for(hooks):
    """How much longer than the server's own stamp a TTFT may be: on the socket-buffer hooks a
    request starts when its first segment reaches the socket, so the time it waits there for
    uvicorn's loop (which the stand-in cannot stamp) is in tapir's figure. Loose, for this noisy
    VM; the lower bound stays the server's."""
    return 0.02 if hooks == "skb" else 0.0


def check_figures(target, before, after, fig, what, schedule=False, queued=0.0):
    bad = target.mismatches(before, after, fig)
    assert not bad, f"{what}:\n  " + "\n  ".join(bad)
    ttft = target.value(after, TTFT + "_sum", "dep") - target.value(before, TTFT + "_sum", "dep")
    n = fig.want[(TTFT + "_count", "dep", ())]
    assert -0.005 * n <= ttft - fig.ttft <= (0.005 + queued) * n, (
        f"{what}: TTFT sum {ttft:.4f} s, server {fig.ttft:.4f} s")
    itl = target.value(after, ITL + "_sum", "dep") - target.value(before, ITL + "_sum", "dep")
    assert abs(itl - fig.itl) <= 0.005 * fig.streams, (
        f"{what}: inter-token latency sum {itl:.4f} s, server {fig.itl:.4f} s")
    # Over many streams a stall of the stand-in's loop weighs little; over one (a seed request)
    # a token written 25 ms late is 25% of the schedule: the stand-in's log is the truth there.
    if schedule and fig.streams >= 5:
        assert abs(itl - fig.itl_schedule) <= 0.1 * fig.itl_schedule, (
            f"{what}: inter-token latency sum {itl:.4f} s, schedule {fig.itl_schedule:.4f} s")
    tps = target.value(after, TPS + "_sum", "pod") - target.value(before, TPS + "_sum", "pod")
    assert tps == pytest.approx(fig.tps, rel=0.1), f"{what}: tokens/s sum {tps}, server {fig.tps}"
    hit = target.value(after, HIT + "_sum", "pod") - target.value(before, HIT + "_sum", "pod")
    assert hit == pytest.approx(fig.hit, abs=1e-9), f"{what}: hit rate sum {hit}, want {fig.hit}"
    assert target.value(after, IN_FLIGHT, "pod") == 0, f"{what}: still in flight after the end"


def run_scenarios(scrape, target, standin, client, scenarios, hit_rates, what):
    """Each scenario on its own: its figures, then the whole run's; returns the run's Figures."""
    first = before = scrape()
    hooks = hooks_of(first)
    total = Figures(hit_rates)
    for sc in scenarios:
        r = client.run(sc)
        check_client(sc, r)
        view = View(r, standin.entry(sc.name))
        fig = Figures(hit_rates)
        fig.request(view)
        total.request(view)
        after = settle_on(scrape, target, before, fig, f"{what}, {sc.name}",
                          extra_http=0 if sc.status == 200 else 1)
        check_figures(target, before, after, fig, f"{what}, {sc.name}",
                      queued=queued_for(hooks))
        before = after
    check_figures(target, first, before, total, f"{what}, all scenarios", schedule=True,
                  queued=queued_for(hooks))
    return total


# --- tests -------------------------------------------------------------------------------------

def check_standin_stream(sc, r, e):
    """The stand-in's log of stream @sc agrees with what the client saw of it, @r, and kept its
    pacing."""
    p = e["params"]
    assert e["content"] == r["content"]
    assert e["done"] == (not sc.abort_after) and e["disconnected"] == bool(sc.abort_after)
    assert len(e["token_ms"]) == r["events"]
    # Step k of every choice goes when due (TTFT + k * ITL), never before, and late only by
    # what a loaded machine may stall the stand-in's loop.
    steps = [t for i, t in enumerate(e["token_ms"]) if i % p["n"] == 0]
    for k, t in enumerate(steps):
        due = p["ttft_ms"] + k * p["itl_ms"]
        assert due <= t <= due + 50, f"step {k} at {t:.1f} ms, due {due} ms: {e}"


@pytest.mark.parametrize("flavor", ["vllm", "sglang"])
def test_llm_standin_selfcheck(flavor, openai_js, tmp_path):
    """No tapir: the client sees exactly the designed usage and chunks, over the wire the
    stand-in is meant to speak, and the stand-in's log keeps its pacing."""
    standin = Standin(str(tmp_path), flavor)
    client = Client(standin.port, str(tmp_path))
    try:
        for sc in SCENARIOS:
            r = client.run(sc)
            assert r["client"] == f"openai@{openai_js}"
            check_client(sc, r)
            e = standin.entry(sc.name)
            assert e["status"] == sc.status and e["flavor"] == flavor
            if sc.stream and sc.status == 200:
                check_standin_stream(sc, r, e)
        # The wire: SSE in chunked transfer coding, the usage chunk (no choices) and [DONE]
        # last; in a JSON body usage last (vLLM's chat: then prompt_logprobs).
        conn = RawConn(standin.port)
        body = json.dumps({"model": "m", "messages": [user("a b")], "max_tokens": 2,
                           "stream": True, "stream_options": USAGE, "ttft_ms": 0}).encode()
        conn.send(post("/v1/chat/completions", body))
        st, headers, raw, _ = conn.read_response()
        assert st == 200 and headers["transfer-encoding"] == "chunked"
        assert headers["content-type"].startswith("text/event-stream")
        events = raw.decode().split("\n\n")
        assert events[-2:] == ["data: [DONE]", ""]
        assert json.loads(events[-3][6:])["choices"] == []
        assert all(json.loads(e[6:]).get("usage") is None for e in events[:-3])
        conn.send(post("/v1/chat/completions", json.dumps(
            {"model": "m", "messages": [user("a b")], "max_tokens": 2, "ttft_ms": 0}).encode()))
        st, headers, raw, _ = conn.read_response()
        assert st == 200 and list(json.loads(raw))[-2 if flavor == "vllm" else -1] == "usage"
        conn.close()
    finally:
        client.close()
        standin.stop()


def test_llm_standin_selfcheck_shapes(openai_js, tmp_path):
    """No tapir: the responses API (through the openai client), Anthropic and TGI give their
    clients the designed counts and token events, in the wire shapes of tests/unit/test_llm.c,
    and the stand-in logs them at its pace."""
    standin = Standin(str(tmp_path))
    client = Client(standin.port, str(tmp_path))
    try:
        for sc in SHAPES:
            r = client.run(sc)
            check_client(sc, r)
            e = standin.entry(sc.name)
            assert e["status"] == sc.status
            if sc.stream and sc.status == 200:
                check_standin_stream(sc, r, e)
        # The wire: Anthropic's typed events in order, TGI's "data:" without the space and its
        # details last, the responses API's usage in response.completed.
        conn = RawConn(standin.port)
        conn.send(post("/v1/messages", json.dumps(
            {"messages": [user("a b")], "max_tokens": 2, "stream": True, "ttft_ms": 0}).encode()))
        st, headers, raw, _ = conn.read_response()
        assert st == 200 and headers["transfer-encoding"] == "chunked"
        assert [e for e, _ in sse_split(raw.decode())[0]] == [
            "message_start", "content_block_start", "ping", "content_block_delta",
            "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
        conn.send(post("/generate_stream", json.dumps(
            {"inputs": "a", "parameters": {"max_new_tokens": 2, "details": True},
             "ttft_ms": 0}).encode()))
        st, headers, raw, _ = conn.read_response()
        events = raw.decode().split("\n\n")
        assert st == 200 and events[-1] == "" and all(e.startswith("data:{") for e in events[:-1])
        assert [json.loads(e[5:])["details"] is not None for e in events[:-1]] == [False, True]
        conn.send(post("/v1/responses", json.dumps(
            {"input": "a b", "max_output_tokens": 2, "stream": True, "ttft_ms": 0}).encode()))
        st, headers, raw, _ = conn.read_response()
        event, data = sse_split(raw.decode())[0][-1]
        assert st == 200 and event == "response.completed"
        assert json.loads(data)["response"]["usage"]["input_tokens"] == 2
        conn.close()
    finally:
        client.close()
        standin.stop()


@pytest.mark.parametrize("flavor", ["vllm", "sglang"])
def test_llm_tokens_match_client(flavor, daemon, slot, openai_js, tmp_path):
    """Every scenario on its own, then all of them: tapir's token counts, per-request
    distributions, estimated count, TTFT and inter-token latency equal what the client saw and
    the stand-in timed. The session daemon scrapes engines, so baseten_llm_kv_cache_hit_rate is
    the engines' (README): cached-token requests add no per-request rate to it."""
    target = Target(slot_rel(slot), f"mid-{slot.index}", slot.model, f"dep-{slot.index}")
    standin = Standin(str(tmp_path), flavor, slot)
    client = Client(standin.port, str(tmp_path))
    try:
        run_scenarios(daemon.scrape, target, standin, client, SCENARIOS, False, flavor)
    finally:
        client.close()
        standin.stop()


def test_llm_shapes_match_client(daemon, slot, openai_js, tmp_path):
    """The responses API, Anthropic's Messages API and TGI, each request on its own, then all:
    tapir's token counts, per-request distributions, estimated and unparsed counts equal what
    the client read from the bytes it received, by README's definitions (Anthropic's input with
    the cache's reads and writes, TGI's without input); TTFT and inter-token latency within
    5 ms per request of the stand-in's log."""
    target = Target(slot_rel(slot), f"mid-{slot.index}", slot.model, f"dep-{slot.index}")
    standin = Standin(str(tmp_path), "vllm", slot)
    client = Client(standin.port, str(tmp_path))
    try:
        run_scenarios(daemon.scrape, target, standin, client, SHAPES, False, "other APIs")
    finally:
        client.close()
        standin.stop()


def test_llm_outbound_tokens_match_client(daemon, slot, openai_js, tmp_path):
    """The openai client in a watched cgroup calls the stand-in, which is in none (a router
    calling its engine, an agent calling a hosted model): tapir_outbound_llm_* by destination
    and by how the tokens are known equal what the client itself saw, per README's rules; the
    first token's time within 5 ms per request of the stand-in's own; and the deployment's own
    LLM and request families never move."""
    labels = dict(model_id=f"mid-{slot.index}", deployment_id=f"dep-{slot.index}")
    standin = Standin(str(tmp_path), "vllm")  # in the test's cgroup: not watched
    client = Client(standin.port, str(tmp_path), cg=slot)
    want_req, want_in, want_out, ttfts = collections.Counter(), 0, 0, []
    sent = [sc for sc in SCENARIOS if sc.api not in RAW_PATHS]
    try:
        for sc in sent:
            v = View(client.run(sc), standin.entry(sc.name))
            kind = ("unknown" if v.unparsed else "estimated" if v.estimated
                    else "usage" if v.input is not None or v.output is not None else "none")
            want_req[kind] += 1
            want_in += v.input or 0
            want_out += v.output or 0
            if v.ttft is not None:
                ttfts.append(v.ttft)
    finally:
        client.close()
        standin.stop()
    deadline = time.monotonic() + 15
    while True:
        s = daemon.scrape()
        got = {k: s.value("tapir_outbound_llm_requests_total", destination="other", tokens=k,
                          **labels) for k in ("usage", "estimated", "none", "unknown")}
        if sum(got.values()) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {k: v for k, v in got.items() if v} == dict(want_req)
    assert s.value("tapir_outbound_llm_input_tokens_total", destination="other",
                   **labels) == want_in
    assert s.value("tapir_outbound_llm_output_tokens_total", destination="other",
                   **labels) == want_out
    ttft = "tapir_outbound_llm_time_to_first_token_seconds"
    assert s.value(ttft + "_count", destination="other", **labels) == len(ttfts)
    # The client's first token: the server's, plus the loopback and the client's read.
    got_sum = s.value(ttft + "_sum", destination="other", **labels)
    assert sum(ttfts) - 0.001 * len(ttfts) <= got_sum <= sum(ttfts) + 0.005 * len(ttfts), \
        (got_sum, ttfts)
    # Not the deployment's own tokens, nor requests it served.
    for fam in ("baseten_llm_input_tokens_total", "baseten_llm_output_tokens_total",
                "baseten_inference_requests_total"):
        assert s.value(fam, **labels) == 0, fam
    assert s.value("tapir_outbound_requests_total", destination="other",
                   **labels) == len(sent)


def test_llm_in_flight(daemon, slot, openai_js, tmp_path):
    """baseten_llm_num_requests counts the LLM requests in flight: two slow streams (3 s to the
    first token) from two clients show as 2 before either answers, and 0 once both ended. (A
    scrape of the session daemon late in the suite takes a few hundred ms: 1.2 s left room
    for two.)"""
    target = Target(slot_rel(slot), f"mid-{slot.index}", slot.model, f"dep-{slot.index}")
    standin = Standin(str(tmp_path), "vllm", slot)
    slow = [Scenario(f"slow_{k}", "chat",
                     {"messages": [user("a slow stream")], "max_tokens": 6, "ttft_ms": 3000,
                      "itl_ms": 50, "stream": True, "stream_options": USAGE},
                     usage=(3, 6, None), content=[6]) for k in range(2)]
    clients = [Client(standin.port, str(tmp_path)) for _ in slow]
    try:
        assert target.value(daemon.scrape(), IN_FLIGHT, "pod") == 0
        for c, sc in zip(clients, slow):
            c.send(sc)
        seen, deadline = [], time.monotonic() + 2.7
        while time.monotonic() < deadline and 2 not in seen:
            seen.append(target.value(daemon.scrape(), IN_FLIGHT, "pod"))
            time.sleep(0.05)
        answered = select.select([c.proc.stdout for c in clients], [], [], 0)[0]
        assert not answered, "a slow stream ended before tapir showed it in flight"
        assert 2 in seen, f"in flight while both streams were: {seen}"
        for c, sc in zip(clients, slow):
            check_client(sc, c.result())
        daemon.wait_for(lambda s: target.value(s, IN_FLIGHT, "pod") == 0, what="0 in flight")
    finally:
        for c in clients:
            c.close()
        standin.stop()


def llm_samples(s, model):
    """Every LLM sample of deployment @model, and the unparsed and lost totals (which have no
    deployment labels); an LLM family missing from the exposition fails."""
    fams = [IN_TOTAL, OUT_TOTAL, IN_REQ + "_count", OUT_REQ + "_count", TPS + "_count",
            HIT + "_count", IN_FLIGHT, TTFT + "_count", ITL + "_count", ESTIMATED, UNPARSED, LOST]
    missing = [f for f in fams if f not in s.names]
    assert not missing, f"LLM families missing from the exposition: {missing}"
    own = {(n, tuple(sorted(l.items()))): v for n, l, v in s.samples
           if n.startswith(("baseten_llm_", "tapir_llm_")) and l.get("model_name") == model}
    own["unparsed"], own["lost"] = s.value(UNPARSED), s.value(LOST)
    return own


def test_llm_not_llm_traffic_adds_nothing(daemon, slot, openai_js, tmp_path):
    """GETs, other methods on LLM paths, and POSTs to paths that are not LLM APIs (some answered
    with bodies and streams that look like chat completions, usage included) add nothing to any
    LLM family, once the replica's LLM series exist."""
    target = Target(slot_rel(slot), f"mid-{slot.index}", slot.model, f"dep-{slot.index}")
    standin = Standin(str(tmp_path), "vllm", slot)
    client = Client(standin.port, str(tmp_path))
    try:
        # One LLM request first: the replica's series exist, and must not move from here on.
        run_scenarios(daemon.scrape, target, standin, client, SCENARIOS[:1], False, "seed")
    finally:
        client.close()
    chat = json.dumps({"model": "m", "messages": [user("a b c")], "max_tokens": 2}).encode()
    reqs = [get("/health"), get("/v1/models"), get("/v1/chat/completions"),
            b"PUT /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(chat), chat),
            post("/predict", chat), post("/predict_stream", chat),
            post("/v1/chat/completionsx", chat), post("/v2/completions", chat),
            post("/v1/chat", chat), get("/health")]
    try:
        before = daemon.scrape()
        snap = llm_samples(before, slot.model)
        conn = RawConn(standin.port)
        statuses = []
        for req in reqs:
            conn.send(req)
            statuses.append(conn.read_response()[0])
        conn.close()
        assert statuses == [200, 200, 405, 405, 200, 200, 404, 404, 404, 200]
        n0 = before.value(HTTP_REQ, model_name=slot.model)
        daemon.wait_for(lambda s: s.value(HTTP_REQ, model_name=slot.model) >= n0 + len(reqs),
                        what=f"{len(reqs)} HTTP requests")
        time.sleep(QUIET)
        assert llm_samples(daemon.scrape(), slot.model) == snap
    finally:
        standin.stop()


@pytest.mark.parametrize("hooks", ["socket", "skb"])
def test_llm_hit_rate_per_request(hooks, cgroot, openai_js, tmp_path):
    """With engines off nobody else owns baseten_llm_kv_cache_hit_rate: each request that
    reports cached tokens adds its cached / prompt rate (6/8, 5/5, 0/3; Anthropic's reads over
    its whole input 4/9 and 5/5, the responses API's 2/6), others none. On the socket-buffer
    hooks (skb), which copy the payload out of the TCP segments, every scenario and API shape
    besides: the same figures, from a container made after the daemon started. (The session's
    daemon runs every scenario on the hooks the suite picks.)"""
    mount, rel = cgroot
    port = free_port()
    cfg = tmp_path / "tapir.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{port}"\n'
                   "engines:\n  enabled: false\n"
                   "deployments:\n"
                   f'  - cgroup: "{rel}/llmhit/*"\n'
                   "    labels: {model_id: mh, model_name: llmhit, deployment_id: dh, "
                   "environment: production, rollout_phase: stable}\n")
    scenarios = SCENARIOS[:1] + CACHED + SHAPES_CACHED
    if hooks == "skb":
        scenarios = SCENARIOS + SHAPES  # the cached ones among them
    proc = spawn_tapir(tmp_path, cfg, "--bpf-hooks", hooks)
    cg = None
    try:
        wait_serving(port, proc, tmp_path / "log")
        scrape = lambda: Scrape(metrics_text(port))
        watched = scrape().value("tapir_watched_cgroups")
        cg = Cgroup(f"{mount}{rel}/llmhit/replica0")
        deadline = time.monotonic() + 10
        while scrape().value("tapir_watched_cgroups") < watched + 1:
            assert time.monotonic() < deadline, "replica not watched"
            time.sleep(0.1)
        target = Target(f"{rel}/llmhit/replica0", "mh", "llmhit", "dh")
        standin = Standin(str(tmp_path), "vllm", cg)
        client = Client(standin.port, str(tmp_path))
        try:
            run_scenarios(scrape, target, standin, client, scenarios, True,
                          f"engines off, {hooks} hooks")
        finally:
            client.close()
            standin.stop()
    finally:
        if cg:
            cg.destroy()
            os.rmdir(f"{mount}{rel}/llmhit")
        stop_proc(proc)
    assert proc.returncode == 0, (tmp_path / "log").read_text()
