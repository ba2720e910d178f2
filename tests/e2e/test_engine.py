# SPDX-License-Identifier: GPL-2.0
"""vLLM and SGLang engine metrics, end to end: stand-in engines run as real processes with the
real command lines (`python3 -m vllm.entrypoints.openai.api_server`, a `vllm serve` console
script, `python3 -m sglang.launch_server`) in watched cgroups, serve /metrics in the shapes of
vLLM 0.6 (V0), vLLM 0.10 (V1) and SGLang, with figures that change at every scrape, and keep
each body they served. tapir finds them with no engine config, and what it re-exports and
derives must equal what it was served, exactly. Also: an engine in a network namespace of its
own listening on 127.0.0.1 only, hostile engines that cost nothing but their own scrape, a rule
that turns scraping off, series that go with their engine, and the cost of a scrape."""
import hashlib
import os
import subprocess
import time

import pytest
from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from conftest import (PY, SERVERS, Cgroup, Scrape, free_port, metrics_text, spawn_tapir,
                      stop_proc, wait_serving)

SLOTS = 12
MODEL = "standin/model-7b"

# Exported name -> the names it had, newest first (README: the rename table).
RENAMES = {
    "vllm": {
        "vllm:num_requests_running": ["vllm:num_requests_running"],
        "vllm:num_requests_waiting": ["vllm:num_requests_waiting"],
        "vllm:prompt_tokens_total": ["vllm:prompt_tokens_total"],
        "vllm:generation_tokens_total": ["vllm:generation_tokens_total"],
        "vllm:time_to_first_token_seconds": ["vllm:time_to_first_token_seconds"],
        "vllm:inter_token_latency_seconds": ["vllm:inter_token_latency_seconds",
                                             "vllm:time_per_output_token_seconds"],
        "vllm:e2e_request_latency_seconds": ["vllm:e2e_request_latency_seconds"],
        "vllm:request_queue_time_seconds": ["vllm:request_queue_time_seconds"],
        "vllm:kv_cache_usage_perc": ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        "vllm:prefix_cache_queries_total": ["vllm:prefix_cache_queries_total",
                                            "vllm:gpu_prefix_cache_queries_total"],
        "vllm:prefix_cache_hits_total": ["vllm:prefix_cache_hits_total",
                                         "vllm:gpu_prefix_cache_hits_total"],
        "vllm:gpu_prefix_cache_hit_rate": ["vllm:gpu_prefix_cache_hit_rate"],
        "vllm:num_preemptions_total": ["vllm:num_preemptions_total"],
        "vllm:spec_decode_num_accepted_tokens_total": [
            "vllm:spec_decode_num_accepted_tokens_total"],
        "vllm:spec_decode_num_draft_tokens_total": ["vllm:spec_decode_num_draft_tokens_total"],
        "vllm:request_success_total": ["vllm:request_success_total"],
    },
    "sglang": {
        "sglang:num_running_reqs": ["sglang:num_running_reqs"],
        "sglang:num_queue_reqs": ["sglang:num_queue_reqs"],
        "sglang:prompt_tokens_total": ["sglang:prompt_tokens_total"],
        "sglang:generation_tokens_total": ["sglang:generation_tokens_total"],
        "sglang:time_to_first_token_seconds": ["sglang:time_to_first_token_seconds"],
        "sglang:inter_token_latency_seconds": ["sglang:inter_token_latency_seconds",
                                               "sglang:time_per_output_token_seconds"],
        "sglang:e2e_request_latency_seconds": ["sglang:e2e_request_latency_seconds"],
        "sglang:queue_time_seconds": ["sglang:queue_time_seconds"],
        "sglang:token_usage": ["sglang:token_usage"],
        "sglang:cached_tokens_total": ["sglang:cached_tokens_total"],
        "sglang:cache_hit_rate": ["sglang:cache_hit_rate"],
        "sglang:num_retracted_requests_total": ["sglang:num_retracted_requests_total"],
        "sglang:num_requests_total": ["sglang:num_requests_total"],
        "sglang:num_used_tokens": ["sglang:num_used_tokens"],
    },
}
HISTOGRAMS = {n for e in RENAMES.values() for n in e if n.endswith("_seconds")}
FRACTIONS = {"vllm:kv_cache_usage_perc", "vllm:gpu_prefix_cache_hit_rate", "sglang:token_usage",
             "sglang:cache_hit_rate"}
MARKER = {"vllm": ("vllm:prompt_tokens_total", 100), "sglang": ("sglang:prompt_tokens_total", 90)}
HIT_BOUNDS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, float("inf")]


@pytest.fixture(scope="module")
def tapir(cgroot, tmp_path_factory):
    _, rel = cgroot
    tmp = tmp_path_factory.mktemp("engine")
    port = free_port()
    lines = [f'listen: "127.0.0.1:{port}"', "deployments:"]
    for i in range(SLOTS):
        lines += [f'  - cgroup: "{rel}/eng{i}/*"',
                  f"    labels: {{model_id: m{i}, model_name: llm{i}, deployment_id: dep{i}, "
                  "environment: production, rollout_phase: stable}"]
    lines += ["engines:", "  scrape_interval_s: 1", "  timeout_ms: 1000",
              "  autoscaling_window_s: 3600", "  rules:",
              f'    - cgroup: "{rel}/eng{SLOTS - 1}/*"', "      engine: off"]
    cfg = tmp / "tapir.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    proc = spawn_tapir(tmp, cfg)
    wait_serving(port, proc, tmp / "log")
    yield port, proc, tmp
    stop_proc(proc)
    assert proc.returncode == 0, (tmp / "log").read_text()


_slot = iter(range(SLOTS - 1))


def make_packages(root):
    """vllm 0.6.3, vllm 0.10.1 and sglang packages (under root/v0, root/v1, root/sgl) whose
    entry points run the stand-in, and a `vllm` console script in root/v1/bin."""
    for sub, pkg, version, entry in (("v0", "vllm", "0.6.3", "entrypoints/openai/api_server"),
                                     ("v1", "vllm", "0.10.1", "entrypoints/openai/api_server"),
                                     ("sgl", "sglang", "0.4.10", "launch_server")):
        base = os.path.join(root, sub, pkg)
        os.makedirs(os.path.dirname(os.path.join(base, entry)), exist_ok=True)
        with open(os.path.join(base, "__init__.py"), "w") as f:
            f.write(f'__version__ = "{version}"\n')
        d = base
        for part in entry.split("/")[:-1]:
            d = os.path.join(d, part)
            open(os.path.join(d, "__init__.py"), "a").close()
        run = (f"import sys\nsys.path.insert(0, {SERVERS!r})\nimport engine_standin, {pkg}\n"
               f"engine_standin.main({pkg!r}, {pkg}.__version__)\n")
        with open(os.path.join(base, entry + ".py"), "w") as f:
            f.write("if __name__ == '__main__':\n    " + run.replace("\n", "\n    ") + "\n")
    os.makedirs(os.path.join(root, "v1", "bin"), exist_ok=True)
    script = os.path.join(root, "v1", "bin", "vllm")
    with open(script, "w") as f:
        f.write(f"#!{PY}\n" + (f"import sys\nsys.path.insert(0, {SERVERS!r})\n"
                              "import engine_standin, vllm\n"
                              "engine_standin.main('vllm', vllm.__version__)\n"))
    os.chmod(script, 0o755)


class Engine:
    """A stand-in engine in a fresh replica cgroup of its own deployment."""

    def __init__(self, cgroot, root, shape, mode="", netns=False, slot=None):
        mount, rel = cgroot
        self.i = next(_slot) if slot is None else slot
        self.rel = f"{rel}/eng{self.i}/replica0"
        self.cg = Cgroup(mount + self.rel)
        self.log = os.path.join(root, f"log{self.i}")
        os.makedirs(self.log, exist_ok=True)
        self.engine = "sglang" if shape == "sglang" else "vllm"
        self.port = free_port()
        sub = {"vllm-v0": "v0", "vllm-v1": "v1", "sglang": "sgl"}[shape]
        if shape == "vllm-v0":
            argv = [PY, "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL]
        elif shape == "vllm-v1":
            argv = [os.path.join(root, "v1", "bin", "vllm"), "serve", MODEL]
        else:
            argv = [PY, "-m", "sglang.launch_server", "--model-path", MODEL]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        ready = os.path.join(self.log, "ready")
        env = dict(os.environ, PYTHONPATH=os.path.join(root, sub), TAPIR_STANDIN_LOG=self.log,
                   TAPIR_STANDIN_MODE=mode, TAPIR_STANDIN_READY=ready,
                   TAPIR_STANDIN_OPENMETRICS="1" if shape == "sglang" else "0")
        if netns:
            # A network namespace of its own: 127.0.0.1 there is not the host's.
            argv = ["unshare", "--net", "--", "sh", "-c",
                    'ip link set lo up && exec "$@"', "sh"] + argv
        self.proc = self.cg.popen(argv, env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(self.log, "stderr"), "w"))
        deadline = time.monotonic() + 15
        while not os.path.exists(ready):
            assert self.proc.poll() is None, open(os.path.join(self.log, "stderr")).read()
            assert time.monotonic() < deadline, "stand-in did not start"
            time.sleep(0.05)

    def body(self, n):
        with open(os.path.join(self.log, f"{n}.txt")) as f:
            return f.read()

    def samples(self, n):
        text = self.body(n)
        parse = parse_openmetrics if text.rstrip().endswith("# EOF") else parse_text
        return [(s.name, s.labels, s.value) for fam in parse(text) for s in fam.samples]

    def stop(self):
        stop_proc(self.proc)
        self.cg.destroy()


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pkgs"))
    make_packages(root)
    return root


def expected_exports(engine, samples):
    """What tapir must re-export from one body: {(name, labels as a frozenset): value}."""
    out = {}
    for exported, sources in RENAMES[engine].items():
        hist = exported in HISTOGRAMS
        for src in sources:
            names = {src + s: s for s in ("_bucket", "_sum", "_count")} if hist else {src: ""}
            picked = [(names[n], l, v) for n, l, v in samples if n in names]
            if not picked:
                continue
            for suffix, labels, value in picked:
                keep = {k: labels.get(k, "") for k in ("model_name", "engine")}
                if exported.endswith("request_success_total"):
                    keep["finished_reason"] = labels.get("finished_reason", "")
                if suffix == "_bucket":
                    keep["le"] = float(labels["le"])
                key = (exported + suffix, frozenset(keep.items()))
                if key in out and exported in FRACTIONS:
                    out[key] = max(out[key], value)
                else:
                    out[key] = out.get(key, 0) + value
            break
    return out


def exported_by_tapir(scrape, engine, deployment, replica):
    out = {}
    names = {n + s for n in RENAMES[engine] for s in ("", "_bucket", "_sum", "_count")}
    for name, labels, value in scrape.samples:
        if name not in names or labels.get("replica") != replica:
            continue
        assert labels.pop("deployment_id") == deployment
        labels.pop("replica")
        if "le" in labels:
            labels["le"] = float(labels["le"])
        out[(name, frozenset(labels.items()))] = value
    return out


def in_flight(engine, samples):
    if engine == "sglang":
        return sum(v for n, _, v in samples if n == "sglang:num_used_tokens")
    info = [l for n, l, _ in samples if n == "vllm:cache_config_info"][0]
    usage = max(v for n, _, v in samples if n in ("vllm:kv_cache_usage_perc",))if any(
        n == "vllm:kv_cache_usage_perc" for n, _, _ in samples) else max(
        v for n, _, v in samples if n == "vllm:gpu_cache_usage_perc")
    return usage * float(info["num_gpu_blocks"]) * float(info["block_size"])


def counter(engine, samples, names):
    for name in names:
        vals = [v for n, _, v in samples if n == name]
        if vals:
            return sum(vals)
    return None


def hit_rates(engine, bodies):
    """The hit rate tapir observes between consecutive scrapes."""
    rates = []
    for prev, cur in zip(bodies, bodies[1:]):
        if engine == "sglang":
            dq = counter(engine, cur, ["sglang:prompt_tokens_total"]) - counter(
                engine, prev, ["sglang:prompt_tokens_total"])
            dh = counter(engine, cur, ["sglang:cached_tokens_total"]) - counter(
                engine, prev, ["sglang:cached_tokens_total"])
        elif counter(engine, cur, ["vllm:prefix_cache_queries_total"]) is None:
            rates.append(counter(engine, cur, ["vllm:gpu_prefix_cache_hit_rate"]))
            continue
        else:
            dq = counter(engine, cur, ["vllm:prefix_cache_queries_total"]) - counter(
                engine, prev, ["vllm:prefix_cache_queries_total"])
            dh = counter(engine, cur, ["vllm:prefix_cache_hits_total"]) - counter(
                engine, prev, ["vllm:prefix_cache_hits_total"])
        rates.append(min(1.0, max(0.0, dh / dq)))
    return rates


def scrape(port):
    return Scrape(metrics_text(port))


def wait_scrapes(port, eng, at_least, timeout=30):
    """Scrape tapir until it shows the stand-in's scrape number >= at_least; (scrape, n)."""
    name, per = MARKER[eng.engine]
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(port)
        vals = [v for n, l, v in s.samples if n == name and l.get("replica") == "replica0"
                and l.get("deployment_id") == f"dep{eng.i}"]
        if vals and vals[0] / per >= at_least:
            return s, int(vals[0] / per)
        assert time.monotonic() < deadline, "tapir did not re-export the engine:\n" + s.text
        time.sleep(0.2)


def check_exact(port, eng, at_least=4, no_errors=True):
    s, n = wait_scrapes(port, eng, at_least)
    bodies = [eng.samples(k) for k in range(1, n + 1)]
    want = expected_exports(eng.engine, bodies[-1])
    got = exported_by_tapir(s, eng.engine, f"dep{eng.i}", "replica0")
    assert got == want
    assert any(k[0].endswith("_bucket") for k in got)  # histograms came through
    # baseten_llm_* with the LLM label set; _internal_pod_id hashes the cgroup path.
    llm = dict(model_id=f"m{eng.i}", model_name=f"llm{eng.i}", deployment_id=f"dep{eng.i}",
               environment="production", rollout_phase="stable",
               _internal_pod_id=hashlib.sha256(eng.rel.encode()).hexdigest()[:16])
    flights = [in_flight(eng.engine, b) for b in bodies]
    assert s.select("baseten_llm_in_flight_tokens", **llm) == [(llm, flights[-1])]
    [(_, avg)] = s.select("baseten_llm_avg_in_flight_tokens", **llm)
    assert avg == pytest.approx(sum(flights) / len(flights), rel=1e-12)
    rates = hit_rates(eng.engine, bodies)
    assert s.value("baseten_llm_kv_cache_hit_rate_count", **llm) == len(rates)
    assert s.value("baseten_llm_kv_cache_hit_rate_sum", **llm) == pytest.approx(sum(rates))
    for le in HIT_BOUNDS:
        want_le = sum(1 for r in rates if r <= le)
        got_le = s.value("baseten_llm_kv_cache_hit_rate_bucket",
                         le="+Inf" if le == float("inf") else f"{le:g}", **llm)
        assert got_le == want_le, f"le={le}"
    acc = s.select("baseten_llm_spec_decode_num_accepted_tokens_total", **llm)
    draft = s.select("baseten_llm_spec_decode_num_draft_tokens_total", **llm)
    if eng.engine == "vllm":
        assert acc == [(llm, counter("vllm", bodies[-1],
                                     ["vllm:spec_decode_num_accepted_tokens_total"]))]
        assert draft == [(llm, counter("vllm", bodies[-1],
                                       ["vllm:spec_decode_num_draft_tokens_total"]))]
    else:
        assert acc == [] and draft == []  # no speculative decoding counters
    if no_errors:
        assert s.value("tapir_engine_scrape_errors_total") == 0
    # tapir's own GETs of /metrics are not the engine's traffic: ignored, never counted.
    assert s.select("baseten_inference_requests_total", deployment_id=f"dep{eng.i}") == []
    assert s.value("tapir_ignored_connections_total", reason="tapir") >= n
    return s


@pytest.mark.parametrize("shape", ["vllm-v0", "vllm-v1", "sglang"])
def test_detected_and_exact(cgroot, tapir, packages, shape):
    port, _, _ = tapir
    eng = Engine(cgroot, packages, shape)
    try:
        s = check_exact(port, eng)
        assert s.value("tapir_engine_targets", engine=eng.engine) >= 1
        # Figures move between scrapes, and tapir keeps up with them.
        check_exact(port, eng, at_least=int(
            s.value(MARKER[eng.engine][0], deployment_id=f"dep{eng.i}")
            / MARKER[eng.engine][1]) + 2)
    finally:
        eng.stop()


def test_netns_loopback_only(cgroot, tapir, packages):
    port, _, _ = tapir
    eng = Engine(cgroot, packages, "vllm-v1", netns=True)
    try:
        # Not reachable from the host's loopback: only from inside its namespace.
        with pytest.raises(OSError):
            import socket
            socket.create_connection(("127.0.0.1", eng.port), timeout=0.5).close()
        check_exact(port, eng)
    finally:
        eng.stop()


def test_series_go_with_the_engine(cgroot, tapir, packages):
    port, _, _ = tapir
    eng = Engine(cgroot, packages, "sglang")
    wait_scrapes(port, eng, 2)
    stop_proc(eng.proc)
    deadline = time.monotonic() + 10
    while True:
        s = scrape(port)
        left = [n for n, l, _ in s.samples if l.get("deployment_id") == f"dep{eng.i}"
                and (n.startswith("sglang:") or n.startswith("baseten_llm_"))]
        if not left:
            break
        assert time.monotonic() < deadline, left
        time.sleep(0.2)
    eng.cg.destroy()


def test_rule_turns_scraping_off(cgroot, tapir, packages):
    port, _, tmp = tapir
    eng = Engine(cgroot, packages, "vllm-v1", slot=SLOTS - 1)
    try:
        time.sleep(3)
        s = scrape(port)
        assert not [n for n, l, _ in s.samples if l.get("deployment_id") == f"dep{eng.i}"
                    and n.startswith("vllm:")]
        assert not os.path.exists(os.path.join(eng.log, "1.txt"))
    finally:
        eng.stop()


def test_hostile_engines_are_contained(cgroot, tapir, packages):
    port, proc, _ = tapir
    before = scrape(port)
    base = {r: before.value("tapir_engine_scrape_errors_total", reason=r)
            for r in ("too_large", "too_many_series", "timeout", "parse")}
    good = Engine(cgroot, packages, "vllm-v1")
    bad = [Engine(cgroot, packages, "vllm-v1", mode=m)
           for m in ("huge", "many", "stall", "garbage")]
    try:
        slowest = 0
        deadline = time.monotonic() + 20
        while True:
            t0 = time.monotonic()
            s = scrape(port)
            slowest = max(slowest, time.monotonic() - t0)
            counts = {r: s.value("tapir_engine_scrape_errors_total", reason=r) - base[r]
                      for r in base}
            if all(c >= 2 for c in counts.values()):
                break
            assert time.monotonic() < deadline, counts
            time.sleep(0.1)
        # tapir's own exposition never waited on a stalled or huge engine.
        assert slowest < 0.5, slowest
        assert proc.poll() is None
        for b in bad:
            assert not [n for n, l, _ in s.samples if l.get("deployment_id") == f"dep{b.i}"
                        and (n.startswith("vllm:") or n.startswith("baseten_llm_"))]
        # The good engine, scraped beside them, is exact.
        check_exact(port, good, no_errors=False)
        assert "tapir_build_info" in s.text and "baseten_replicas_active" in s.text
    finally:
        for e in [good] + bad:
            e.stop()


def thread_cpu_ns(pid, comm):
    """CPU time of the daemon's thread named @comm, in ns (schedstat's first field)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() != comm:
                continue
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    raise AssertionError(f"no thread {comm} in tapir")


def test_scrape_cost(cgroot, tapir, packages, capsys):
    """CPU of the scraper thread per scrape of one vLLM V1 target (detection, connect, GET,
    parse, normalization): printed for README's figure. The main loop's share is copying the
    normalized series into the registry."""
    port, proc, _ = tapir
    eng = Engine(cgroot, packages, "vllm-v1")
    try:
        _, n0 = wait_scrapes(port, eng, 2)
        c0, t0 = thread_cpu_ns(proc.pid, "engine-scrape"), time.monotonic()
        _, n1 = wait_scrapes(port, eng, n0 + 20, timeout=60)
        busy = thread_cpu_ns(proc.pid, "engine-scrape") - c0
        per = busy / (n1 - n0)
        size = len(eng.body(n1))
        samples = len(eng.samples(n1))
        with capsys.disabled():
            print(f"\nengine scrape cost: {per / 1e6:.2f} ms CPU per scrape of a vLLM V1 "
                  f"body of {size} bytes, {samples} samples ({n1 - n0} scrapes in "
                  f"{time.monotonic() - t0:.1f} s)")
        assert per < 20e6
    finally:
        eng.stop()
