# SPDX-License-Identifier: GPL-2.0
"""A stand-in for vLLM (0.6 V0, 0.10 V1) or SGLang: the OpenAI routes and a /metrics page in the
engine's own shape, made with prometheus_client as the engines make theirs. Scrape n serves
figures that are functions of n, and the body of each scrape is kept in $TAPIR_STANDIN_LOG/n.txt
so a test can compare what tapir exports with what it was served. TAPIR_STANDIN_MODE makes it
hostile: huge (10 MiB), many (100,000 series), stall (never answers), garbage."""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

MODEL = "standin/model-7b"

V0_TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
           7.5, 10.0]
V1_TTFT = V0_TTFT + [20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
TPOT = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
V1_TPOT = TPOT + [5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
V0_E2E = [1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0]
V1_E2E = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
          120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]
SGL_TTFT = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400]
SGL_ITL = [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
           0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000]
SGL_E2E = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200,
           1800, 2400]
SGL_QUEUE = [0.0, 0.1, 0.2, 0.5, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60]


def observe_n(h, n, k, scale):
    """k*n deterministic observations spread over the buckets."""
    for i in range(k * n):
        h.observe(scale * ((i * 7919) % 97 + 1) / 97.0)


def vllm_v0(n):
    reg = CollectorRegistry()
    lab = ["model_name"]
    Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
          ["block_size", "cache_dtype", "cpu_offload_gb", "enable_prefix_caching",
           "gpu_memory_utilization", "num_cpu_blocks", "num_gpu_blocks",
           "num_gpu_blocks_override", "sliding_window", "swap_space_bytes"],
          registry=reg).labels("16", "auto", "0", "True", "0.9", "2048", "1000", "None",
                               "None", "4294967296").set(1)
    g = lambda name, doc, v: Gauge(name, doc, lab, registry=reg).labels(MODEL).set(v)
    c = lambda name, doc, v: Counter(name, doc, lab, registry=reg).labels(MODEL).inc(v)
    g("vllm:num_requests_running", "Number of requests currently running on GPU.", n % 5 + 1)
    g("vllm:num_requests_swapped", "Number of requests swapped to CPU.", 0)
    g("vllm:num_requests_waiting", "Number of requests waiting to be processed.", n % 3)
    g("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.",
      (n % 10) / 10 + 0.05)
    g("vllm:cpu_cache_usage_perc", "CPU KV-cache usage. 1 means 100 percent usage.", 0)
    g("vllm:cpu_prefix_cache_hit_rate", "CPU prefix cache block hit rate.", -1)
    g("vllm:gpu_prefix_cache_hit_rate", "GPU prefix cache block hit rate.", 0.25 + (n % 4) / 10)
    c("vllm:num_preemptions", "Cumulative number of preemption from the engine.", n // 2)
    c("vllm:prompt_tokens", "Number of prefill tokens processed.", 100 * n)
    c("vllm:generation_tokens", "Number of generation tokens processed.", 37 * n)
    ok = Counter("vllm:request_success", "Count of successfully processed requests.",
                 ["finished_reason", "model_name"], registry=reg)
    ok.labels("stop", MODEL).inc(3 * n)
    ok.labels("length", MODEL).inc(n // 3)
    for name, b, k, s in (("vllm:time_to_first_token_seconds", V0_TTFT, 3, 0.3),
                          ("vllm:time_per_output_token_seconds", TPOT, 5, 0.08),
                          ("vllm:e2e_request_latency_seconds", V0_E2E, 2, 12),
                          ("vllm:request_queue_time_seconds", V0_E2E, 2, 1.5)):
        observe_n(Histogram(name, "Histogram of " + name, lab, buckets=b,
                            registry=reg).labels(MODEL), n, k, s)
    c("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", 40 * n)
    c("vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", 60 * n)
    c("vllm:spec_decode_num_emitted_tokens", "Number of emitted tokens.", 45 * n)
    g("vllm:spec_decode_draft_acceptance_rate", "Speulative token acceptance rate.", 40 / 60)
    return reg


def vllm_v1(n):
    reg = CollectorRegistry()
    lab = ["model_name", "engine"]
    Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
          ["block_size", "cache_dtype", "enable_prefix_caching", "engine",
           "gpu_memory_utilization", "num_cpu_blocks", "num_gpu_blocks"],
          registry=reg).labels("16", "auto", "True", "0", "0.9", "0", "2000").set(1)
    g = lambda name, doc, v: Gauge(name, doc, lab, registry=reg).labels(MODEL, "0").set(v)
    c = lambda name, doc, v: Counter(name, doc, lab, registry=reg).labels(MODEL, "0").inc(v)
    g("vllm:num_requests_running", "Number of requests in model execution batches.", n % 7)
    g("vllm:num_requests_waiting", "Number of requests waiting to be processed.", n % 4)
    usage = ((n * 3) % 10) / 10 + 0.025
    g("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. DEPRECATED.", usage)
    g("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
    q, h = 80 * n, 20 * n + (n * n) % 13
    c("vllm:gpu_prefix_cache_queries", "GPU prefix cache queries. DEPRECATED.", q)
    c("vllm:gpu_prefix_cache_hits", "GPU prefix cache hits. DEPRECATED.", h)
    c("vllm:prefix_cache_queries", "Prefix cache queries, in queried tokens.", q)
    c("vllm:prefix_cache_hits", "Prefix cache hits, in cached tokens.", h)
    c("vllm:num_preemptions", "Cumulative number of preemption from the engine.", n // 3)
    c("vllm:prompt_tokens", "Number of prefill tokens processed.", 100 * n)
    c("vllm:generation_tokens", "Number of generation tokens processed.", 53 * n)
    ok = Counter("vllm:request_success", "Count of successfully processed requests.",
                 lab + ["finished_reason"], registry=reg)
    for reason, k in (("stop", 2), ("length", 1), ("abort", 0)):
        ok.labels(MODEL, "0", reason).inc(k * n)
    for name, b, k, s in (("vllm:time_to_first_token_seconds", V1_TTFT, 3, 0.3),
                          ("vllm:time_per_output_token_seconds", V1_TPOT, 5, 0.08),
                          ("vllm:inter_token_latency_seconds", V1_TPOT, 5, 0.08),
                          ("vllm:e2e_request_latency_seconds", V1_E2E, 2, 12),
                          ("vllm:request_queue_time_seconds", V1_E2E, 2, 1.5)):
        observe_n(Histogram(name, "Histogram of " + name, lab, buckets=b,
                            registry=reg).labels(MODEL, "0"), n, k, s)
    c("vllm:spec_decode_num_drafts", "Number of spec decoding drafts.", 10 * n)
    c("vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", 30 * n)
    c("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", 17 * n)
    pos = Counter("vllm:spec_decode_num_accepted_tokens_per_pos", "Accepted tokens per position.",
                  lab + ["position"], registry=reg)
    for p in range(3):
        pos.labels(MODEL, "0", str(p)).inc(n * (3 - p))
    return reg


def sglang(n):
    reg = CollectorRegistry()
    sched = ["model_name", "engine_type", "tp_rank", "pp_rank"]
    sv = (MODEL, "unified", "0", "0")
    g = lambda name, doc, v: Gauge(name, doc, sched, registry=reg).labels(*sv).set(v)
    g("sglang:num_running_reqs", "The number of running requests.", n % 6)
    g("sglang:num_used_tokens", "The number of used tokens.", 1000 + 37 * (n % 11))
    g("sglang:token_usage", "The token usage.", (n % 9) / 9)
    g("sglang:gen_throughput", "The generation throughput (token/s).", 123.5)
    g("sglang:num_queue_reqs", "The number of requests in the waiting queue.", n % 2)
    g("sglang:cache_hit_rate", "The prefix cache hit rate.", 0.125)
    g("sglang:max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.",
      161721)
    Counter("sglang:num_retracted_requests_total", "Total number of retracted requests.", sched,
            registry=reg).labels(*sv).inc(n // 4)
    observe_n(Histogram("sglang:queue_time_seconds", "Histogram of queueing time in seconds.",
                        sched, buckets=SGL_QUEUE, registry=reg).labels(*sv), n, 2, 3)
    tok = ["model_name"]
    c = lambda name, doc, v: Counter(name, doc, tok, registry=reg).labels(MODEL).inc(v)
    c("sglang:prompt_tokens_total", "Number of prefill tokens processed.", 90 * n)
    c("sglang:generation_tokens_total", "Number of generation tokens processed.", 41 * n)
    c("sglang:cached_tokens_total", "Number of cached prompt tokens.", 30 * n + n % 5)
    c("sglang:num_requests_total", "Number of requests processed.", 4 * n)
    c("sglang:num_aborted_requests_total", "Number of requests aborted.", 0)
    for name, b, k, s in (("sglang:time_to_first_token_seconds", SGL_TTFT, 3, 2),
                          ("sglang:inter_token_latency_seconds", SGL_ITL, 5, 0.05),
                          ("sglang:e2e_request_latency_seconds", SGL_E2E, 2, 30)):
        observe_n(Histogram(name, "Histogram of " + name, tok, buckets=b,
                            registry=reg).labels(MODEL), n, k, s)
    return reg


SHAPES = {"vllm-v0": vllm_v0, "vllm-v1": vllm_v1, "sglang": sglang}


def hostile_body(mode):
    if mode == "huge":
        return b"# " + b"x" * (10 << 20) + b"\n"
    if mode == "many":
        return b"".join(b'a{b="%d"} 1\n' % i for i in range(100000))
    return b'vllm:num_requests_running{model_name="m"} 1\n}{ garbage \x01\n'


def serve(shape, port, host):
    log = os.environ.get("TAPIR_STANDIN_LOG")
    mode = os.environ.get("TAPIR_STANDIN_MODE", "")
    force_om = os.environ.get("TAPIR_STANDIN_OPENMETRICS") == "1"
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, body, ctype):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/metrics":
                if mode == "stall":
                    time.sleep(3600)
                if mode:
                    return self.reply(hostile_body(mode), "text/plain")
                with lock:
                    count[0] += 1
                    n = count[0]
                    reg = SHAPES[shape](n)
                    om = force_om or "application/openmetrics-text" in self.headers.get(
                        "Accept", "")
                    body = generate_openmetrics(reg) if om else generate_latest(reg)
                    if log:
                        with open(os.path.join(log, f"{n}.txt.tmp"), "wb") as f:
                            f.write(body)
                        os.rename(os.path.join(log, f"{n}.txt.tmp"),
                                  os.path.join(log, f"{n}.txt"))
                ctype = ("application/openmetrics-text; version=1.0.0; charset=utf-8" if om
                         else "text/plain; version=0.0.4; charset=utf-8")
                return self.reply(body, ctype)
            if self.path in ("/health", "/v1/models"):
                return self.reply(json.dumps({"data": [{"id": MODEL}]}).encode(),
                                  "application/json")
            self.send_error(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            body = {"id": "cmpl-1", "object": "text_completion", "model": MODEL,
                    "choices": [{"index": 0, "text": " ok", "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
            self.reply(json.dumps(body).encode(), "application/json")

    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    if os.environ.get("TAPIR_STANDIN_READY"):
        open(os.environ["TAPIR_STANDIN_READY"], "w").close()
    srv.serve_forever()


def main(engine, version):
    ap = argparse.ArgumentParser()
    ap.add_argument("subcommand", nargs="?")  # `vllm serve MODEL`
    ap.add_argument("model", nargs="?")
    ap.add_argument("--model", "--model-path", dest="model_opt")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000 if engine == "vllm" else 30000)
    args = ap.parse_args()
    shape = "sglang" if engine == "sglang" else (
        "vllm-v0" if version.startswith("0.6") else "vllm-v1")
    serve(shape, args.port, args.host)
