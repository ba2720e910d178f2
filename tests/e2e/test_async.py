# SPDX-License-Identifier: GPL-2.0
"""Async inference end to end. A real gateway (servers/async_gateway.py: FastAPI under Debian's
uvicorn, an asyncio queue, two workers) accepts jobs on POST /async/predict, answers 202 and queues
them; its workers POST each job to a real model server (servers/async_model.py) at /predict with
X-Request-Start: t=<enqueue time>, then POST the result to a webhook receiver
(servers/webhook_sink.py: 50-150 ms per delivery, about one in four answered 500). The gateway and
the model server run in two child cgroups of one cgroup that a rule of the test's own daemon
names, with an `async` section: /predict is async, so is a request carrying X-Async-Job, a 2xx
answer on /async/* is a job queued, POSTs to the receiver are webhooks. The receiver runs in this
test's cgroup, which no rule watches.

The truth is what the servers and the test's own clients logged or saw: the gateway's enqueue
and dispatch time of every job, its queue length at every change, its webhook latencies (from
just before its write to the end of its read) and statuses, the bytes its small HTTP client put
on and took off the wire; when the model's app got each request; the receiver's delay and
status of each delivery; the test's status and bytes of each request it sent itself. A time
tapir measures lies between two the servers logged: a job's arrival between the gateway's
dispatch (or the test's send) and the model app's arrival, a webhook's latency between the
receiver's delay and the gateway's own measure; a millisecond or two apart on an idle machine,
more when a loaded one stalls a server. tapir must add exactly: each request served by the
deployment to the six request families under is_async "true" or "false" (submits under
neither), each async request to baseten_time_in_async_queue_seconds (count exact, sum within
5 ms per job of those bounds, each job in its bucket unless it is within 5 ms of a bound) or,
with its enqueue header absent, malformed or in the future, to
tapir_async_queue_time_unknown_total under that reason; each webhook to
baseten_async_webhook_requests_total and _latency_seconds (sum within 5 ms per webhook) and, like
every request the gateway sends, to tapir_outbound_requests_total. baseten_async_queue_size must
equal the gateway's queue length where both are quiescent: N jobs held by paused workers, and 0
once they drained; a submit answered 422, or cut short by its client, never enters it; async
requests that no submit preceded never take it below 0. Enqueue times in every format README
names (t= or bare, seconds to nanoseconds by magnitude, spaced, either field, any case) are
observed; hostile ones (garbage, 10 KB, exponents, signs, year 2100, fields only named alike or
written in the body) are counted by reason, and the daemon lives on. In the compat build, a
request with a 10 KB head is beyond its parser steps: tapir_parse_failures_total{reason=
"scan_limit"} instead. A second rule, on a model server alone, marks jobs by a field's whole
value (`header: "X-Async-Job: yes"`) and has no queue. A self-check runs the three servers
without tapir."""
import calendar
import collections
import json
import math
import os
import subprocess
import time
import types

import pytest

from client import RawConn
from conftest import (PY, SERVERS, Cgroup, Scrape, free_port, metrics_text, other_hooks,
                      spawn_tapir, stop_proc, wait_port, wait_serving)

REQ = "baseten_inference_requests_total"
E2E = "baseten_end_to_end_response_time_seconds"
TTFB = "baseten_time_to_first_byte_seconds"
REQ_SIZE = "baseten_request_size_bytes"
RESP_SIZE = "baseten_response_size_bytes"
QTIME = "baseten_time_in_async_queue_seconds"
QSIZE = "baseten_async_queue_size"
HOOKS = "baseten_async_webhook_requests_total"
HOOK_LAT = "baseten_async_webhook_latency_seconds"
UNKNOWN = "tapir_async_queue_time_unknown_total"
OUT = "tapir_outbound_requests_total"
PARSE = "tapir_parse_failures_total"

LABELS = dict(model_id="am-1", model_name="async-model", deployment_id="ad-1",
              environment="production", rollout_phase="stable")
# A second deployment: a model server alone, whose rule marks async jobs by a field's value only.
VALUED = dict(model_id="am-2", model_name="async-valued", deployment_id="ad-2",
              environment="production", rollout_phase="stable")
# Not the default buckets: the queue-time and webhook histograms must take the config's.
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30]
TOL = 0.005  # per observed time
QUIET = 0.3  # after the expected figures showed: time for anything unexpected to show too
HOOK_PATH = "/hooks/done"


# --- the servers ------------------------------------------------------------------------------

def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def wait_until(pred, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def request(method, path, headers=(), body=b""):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def call(port, method, path, headers=(), body=b"", pieces=1):
    """One request on a connection of its own, written in @pieces 20 ms apart. Returns
    (status, body, bytes sent, bytes received, time.time() just before the first write)."""
    data = request(method, path, headers, body)
    conn = RawConn(port)
    try:
        t = time.time()
        conn.send(data, pieces=pieces, gap=0.02)
        status, _, answer, wire = conn.read_response()
    finally:
        conn.close()
    return status, answer, len(data), wire, t


class Servers:
    """The webhook receiver (in this process's cgroup), the model server and the gateway (in
    @model_cg and @gateway_cg when given), their logs in @tmp."""

    def __init__(self, tmp, model_cg=None, gateway_cg=None, sink_port=None):
        self.procs = []
        self.sink_port = sink_port or free_port()
        self.model_port, self.gateway_port = free_port(), free_port()
        self.sink_log = os.path.join(tmp, "sink.jsonl")
        self.model_log = os.path.join(tmp, "model.jsonl")
        self.gateway_log = os.path.join(tmp, "gateway.jsonl")
        self.tmp = tmp
        try:
            self.spawn("sink", None, [PY, os.path.join(SERVERS, "webhook_sink.py"),
                                      str(self.sink_port), self.sink_log], self.sink_port)
            self.spawn("model", model_cg, self.uvicorn("async_model", self.model_port),
                       self.model_port, TAPIR_ASYNC_MODEL_LOG=self.model_log)
            self.spawn("gateway", gateway_cg, self.uvicorn("async_gateway", self.gateway_port),
                       self.gateway_port, TAPIR_ASYNC_MODEL_PORT=str(self.model_port),
                       TAPIR_ASYNC_HOOK_PORT=str(self.sink_port), TAPIR_ASYNC_LOG=self.gateway_log,
                       TAPIR_ASYNC_HOOK_PATH=HOOK_PATH, TAPIR_ASYNC_WORKERS="2")
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def uvicorn(module, port):
        # Idle connections kept for 5 minutes: a worker's connection must not be closed under
        # it while the workers are paused.
        return [PY, "-m", "uvicorn", "--app-dir", SERVERS, f"{module}:app", "--host",
                "127.0.0.1", "--port", str(port), "--log-level", "warning",
                "--timeout-keep-alive", "300"]

    def spawn(self, name, cg, argv, port, **env):
        out = open(os.path.join(self.tmp, f"{name}.out"), "w")
        spawn = cg.popen if cg else subprocess.Popen
        p = spawn(argv, env=dict(os.environ, **env), stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        wait_port(port, proc=p)

    def stop(self):
        for p in reversed(self.procs):
            stop_proc(p)

    # The gateway, as its clients see it.
    def submit(self, job):
        st, answer, sent, received, _ = call(self.gateway_port, "POST", "/async/predict",
                                             [("Content-Type", "application/json")],
                                             json.dumps(job).encode())
        return st, json.loads(answer), sent, received

    def control(self, path):
        st, answer, sent, received, _ = call(self.gateway_port, "POST", path)
        assert st == 200, (path, answer)
        return st, json.loads(answer), sent, received

    def gateway(self, ev=None):
        return [e for e in read_log(self.gateway_log) if ev is None or e["ev"] == ev]

    def qlen(self):
        """The gateway's queue length after its latest change."""
        changes = [e for e in self.gateway() if "qlen" in e]
        return changes[-1]["qlen"] if changes else 0

    def wait_done(self, jobs):
        """Wait until the gateway and the receiver logged the webhook of every job in @jobs.
        Returns the gateway's events of them by kind and job, and under "served" the model
        server's log of each job, under "delivered" the receiver's."""
        jobs = set(jobs)

        def finished():
            errors = self.gateway("error")
            assert not errors, errors
            return (jobs <= {e["job"] for e in self.gateway("webhook")}
                    and jobs <= {e["job"] for e in self.sink()})

        wait_until(finished, f"the webhooks of jobs {sorted(jobs)}")
        done = {ev: {e["job"]: e for e in self.gateway(ev) if e.get("job") in jobs}
                for ev in ("accepted", "taken", "model", "webhook")}
        done["served"] = {int(e["job"]): e for e in self.model()
                          if e["job"] is not None and int(e["job"]) in jobs}
        done["delivered"] = {e["job"]: e for e in self.sink() if e["job"] in jobs}
        return done

    def model(self, tag=None):
        return [e for e in read_log(self.model_log) if tag is None or e["tag"] == tag]

    def sink(self):
        return read_log(self.sink_log)


def queue_times(done):
    """Each job's time in the queue, as an interval: from its enqueue time (as X-Request-Start
    carried it) to just before the gateway began writing it to the model server, and to when
    the model's app got it (after the model server read it)."""
    return [(m["dispatch"] - float(m["enqueue"]), done["served"][job]["arrival"] - float(
        m["enqueue"])) for job, m in done["model"].items()]


def webhook_latencies(done):
    """Each webhook's latency, as an interval: from the receiver's delay (it answers that long
    after it read the delivery) to what the gateway measured (from just before its write to
    after its read of the answer's end)."""
    return [(done["delivered"][job]["delay_ms"] / 1000, w["latency"])
            for job, w in done["webhook"].items()]


def check_servers(srv, done, paused_jobs=(), paused_s=0.0):
    """The servers' logs agree with each other about @done's jobs."""
    sink = collections.Counter((e["job"], e["status"]) for e in srv.sink()
                               if e["method"] == "POST")
    for job, m in done["model"].items():
        served = done["served"][job]
        assert served["x-request-start"] == f"t={m['enqueue']}"
        assert served["status"] == m["status"]
        assert m["dispatch"] <= served["arrival"] <= m["end"]
        hook = done["webhook"][job]
        assert sink[(job, hook["status"])] == 1, (job, hook)
        assert hook["req_bytes"] > 0 and hook["resp_bytes"] > 0
    for job in paused_jobs:
        m = done["model"][job]
        assert m["dispatch"] - float(m["enqueue"]) >= paused_s


# --- what tapir must show ---------------------------------------------------------------------

def series(s, name, keys, labels=LABELS, **more):
    """{tuple of @keys' label values: value} of the samples of @name of the deployment whose
    labels are @labels."""
    out = collections.Counter()
    for l, v in s.select(name, **labels, **more):
        out[tuple(l[k] for k in keys)] += v
    return out


def delta(before, after, name, keys=(), labels=LABELS, **more):
    """What @name gained from @before to @after, per @keys, zeros left out; @after must have
    the family, @before need not have had it yet."""
    after.value(name)
    got = series(after, name, keys, labels, **more)
    got.subtract(series(before, name, keys, labels, **more))
    return {k: v for k, v in got.items() if v}


def one(d):
    return d.get((), 0)


def buckets(s, name, labels=LABELS):
    return {float(l["le"]): v for l, v in s.select(name + "_bucket", **labels)}


def check_histogram(before, after, name, spans, what, labels=LABELS):
    """@name gained one observation per (lo, hi) in @spans, each a time the servers bound from
    both sides (an instant tapir sees falls between two that the servers logged; on an idle
    machine they are a millisecond or two apart): the count exactly, the sum within TOL per
    observation of the bounds' sums, every cumulative bucket at least the observations whose
    upper bound is TOL below its bound, at most those whose lower bound is up to TOL above."""
    n = len(spans)
    assert one(delta(before, after, name + "_count", labels=labels)) == n, (
        f"{what}: count, want {n}")
    got = one(delta(before, after, name + "_sum", labels=labels))
    lo, hi = sum(a for a, _ in spans), sum(b for _, b in spans)
    assert lo - TOL * n - 1e-9 <= got <= hi + TOL * n + 1e-9, (
        f"{what}: sum {got:.6f} s, truth {lo:.6f}..{hi:.6f} s over {n}")
    b0, b1 = buckets(before, name, labels), buckets(after, name, labels)
    if not spans and not b1:
        return  # no series: nothing observed yet
    assert sorted(b1) == BUCKETS + [math.inf], f"{what}: bounds {sorted(b1)}"
    for b in sorted(b1):
        got = b1[b] - b0.get(b, 0)
        least = sum(h <= b - TOL for _, h in spans)
        most = sum(a <= b + TOL for a, _ in spans)
        assert least <= got <= most, (
            f"{what}: le={b:g} gained {got:g}, want {least}..{most}; "
            f"truth {sorted((round(a, 4), round(h, 4)) for a, h in spans)}")


def queue_size(s, strict=True):
    got = s.select(QSIZE, **LABELS)
    if not strict and not got:
        return 0
    s.value(QSIZE)
    assert len(got) == 1, got
    assert got[0][0] == LABELS
    return got[0][1]


class Expect:
    """What tapir must add to the deployment's families, from the servers' and clients' own
    account."""

    def __init__(self, labels=LABELS):
        self.labels = labels
        self.requests = collections.Counter()  # (status, is_async): requests
        self.req_bytes = collections.Counter()  # is_async: bytes
        self.resp_bytes = collections.Counter()
        self.queue = []  # (seconds at least, at most)
        self.unknown = collections.Counter()  # reason: requests
        self.hooks = []  # (seconds at least, at most)
        self.outbound = collections.Counter()  # (status, destination): requests
        self.parse_failures = collections.Counter()  # reason: requests (not the deployment's)

    def served(self, status, is_async, sent, received):
        a = "true" if is_async else "false"
        self.requests[(str(status), a)] += 1
        self.req_bytes[a] += sent
        self.resp_bytes[a] += received

    def jobs(self, done):
        """The gateway's account of @done's jobs: model requests, queue times, webhooks."""
        for m in done["model"].values():
            self.served(m["status"], True, m["req_bytes"], m["resp_bytes"])
            self.outbound[(str(m["status"]), "other")] += 1
        self.queue += queue_times(done)
        self.hooks += webhook_latencies(done)
        for w in done["webhook"].values():
            self.outbound[(str(w["status"]), "hooks")] += 1

    def shown(self, before, s):
        """Whether @s shows at least every count expected."""
        checks = [(REQ, sum(self.requests.values())), (QTIME + "_count", len(self.queue)),
                  (UNKNOWN, sum(self.unknown.values())), (HOOKS, len(self.hooks)),
                  (OUT, sum(self.outbound.values()))]
        try:
            return (all(one(delta(before, s, n, labels=self.labels)) >= want
                        for n, want in checks)
                    and s.value(PARSE) - before.value(PARSE) >= sum(
                        self.parse_failures.values()))
        except KeyError:  # a family not there yet
            return False

    def settle(self, before, scrape, what):
        deadline = time.monotonic() + 10
        while True:
            s = scrape()
            if self.shown(before, s):
                break
            if time.monotonic() > deadline:
                return s  # the checks say what is missing
            time.sleep(0.1)
        time.sleep(QUIET)
        return scrape()

    def check(self, before, after, what):
        st, lab = ("status_code", "is_async"), self.labels
        want = dict(self.requests)
        for fam in (REQ, E2E + "_count", TTFB + "_count", REQ_SIZE + "_count",
                    RESP_SIZE + "_count"):
            assert delta(before, after, fam, st, lab) == want, f"{what}: {fam}"
        for fam, sizes in ((REQ_SIZE, self.req_bytes), (RESP_SIZE, self.resp_bytes)):
            got = delta(before, after, fam + "_sum", ("is_async",), lab)
            assert got == {(a,): v for a, v in sizes.items() if v}, f"{what}: {fam}_sum"
        check_histogram(before, after, QTIME, self.queue, f"{what}: queue time", lab)
        assert delta(before, after, UNKNOWN, ("reason",), lab) == {
            (r,): v for r, v in self.unknown.items() if v}, f"{what}: unknown queue times"
        assert one(delta(before, after, HOOKS, labels=lab)) == len(self.hooks), (
            f"{what}: webhooks")
        check_histogram(before, after, HOOK_LAT, self.hooks, f"{what}: webhook latency", lab)
        assert delta(before, after, OUT, ("status_code", "destination"), lab) == dict(
            self.outbound), f"{what}: outbound requests"
        failures = {l["reason"]: v - before.value(PARSE, reason=l["reason"])
                    for l, v in after.select(PARSE)}
        assert {r: v for r, v in failures.items() if v} == dict(self.parse_failures), (
            f"{what}: {PARSE}")


def check_labels(s):
    """Every series of the async families (and the request families) is one of the two
    deployments'; only the one with submit_paths has a queue, only the one with a webhook
    webhooks."""
    extra = {UNKNOWN: {"reason"}, REQ: {"status_code", "is_async"}}
    for name in (QTIME + "_count", QSIZE, HOOKS, HOOK_LAT + "_count", UNKNOWN, REQ):
        s.value(name)
        for l, v in s.select(name):
            base = {k: v for k, v in l.items() if k not in extra.get(name, ())}
            assert base == LABELS or (base == VALUED and name != QSIZE), (name, l)
            if base == VALUED and name in (HOOKS, HOOK_LAT + "_count"):
                assert v == 0, (name, l, v)
            if name == REQ:
                assert l["is_async"] in ("true", "false"), l


# --- the deployment under a daemon of this test's own -------------------------------------------

class Stack:
    def __init__(self, tmp, cgroot, hooks=None):
        mount, rel = cgroot
        self.tmp, self.cgs, self.proc, self.servers, self.valued = tmp, [], None, None, None
        self.sink_port = free_port()
        self.port = free_port()
        cfg = tmp / "tapir.yaml"
        cfg.write_text("\n".join([
            f'listen: "127.0.0.1:{self.port}"',
            "buckets:",
            f"  latency_seconds: [{', '.join(f'{b:g}' for b in BUCKETS)}]",
            "outbound:",
            "  destinations:",
            f'    - {{name: "hooks", address: "127.0.0.1", port: {self.sink_port}}}',
            "deployments:",
            f'  - cgroup: "{rel}/asyncdep"',
            "    labels:",
            *[f'      {k}: "{v}"' for k, v in LABELS.items()],
            "    async:",
            '      paths: ["/predict"]',
            '      header: "X-Async-Job"',
            '      submit_paths: ["/async/*"]',
            '      webhook: {destination: "hooks", method: "POST"}',
            f'  - cgroup: "{rel}/asyncvalued"',
            "    labels:",
            *[f'      {k}: "{v}"' for k, v in VALUED.items()],
            "    async:",
            '      header: "X-Async-Job: yes"',
        ]) + "\n")
        variant = os.environ.get("TAPIR_E2E_BPF_VARIANT", "auto")
        hooks = hooks or os.environ.get("TAPIR_E2E_BPF_HOOKS", "auto")
        self.proc = spawn_tapir(tmp, cfg, "--bpf-variant", variant, "--bpf-hooks", hooks)
        try:
            wait_serving(self.port, self.proc, tmp / "log")
            s = self.scrape()
            self.compat = s.value("tapir_bpf_program_attached", feature="http",
                                  variant="compat") > 0
            watched = s.value("tapir_watched_cgroups")
            # The rule names the parent; the gateway and the model server are watched as its
            # children, and share its labels.
            for sub in ("asyncdep", "asyncdep/gateway", "asyncdep/model", "asyncvalued"):
                self.cgs.append(Cgroup(f"{mount}{rel}/{sub}"))
            wait_until(lambda: self.scrape().value("tapir_watched_cgroups") >= watched + 4,
                       "the deployments' cgroups watched")
            self.servers = Servers(str(tmp), model_cg=self.cgs[2], gateway_cg=self.cgs[1],
                                   sink_port=self.sink_port)
            self.valued_port = free_port()
            self.valued_log = str(tmp / "valued.jsonl")
            self.valued = self.cgs[3].popen(
                Servers.uvicorn("async_model", self.valued_port),
                env=dict(os.environ, TAPIR_ASYNC_MODEL_LOG=self.valued_log),
                stdout=open(tmp / "valued.out", "w"), stderr=subprocess.STDOUT)
            wait_port(self.valued_port, proc=self.valued)
            # One job through every layer first, so that no first-time cost falls in a test.
            st, answer, _, _ = self.servers.submit({"input": "warm up"})
            assert st == 202, answer
            self.servers.wait_done([answer["job_id"]])
        except BaseException:
            self.stop()
            raise

    def scrape(self):
        return Scrape(metrics_text(self.port))

    def walks(self, r):
        """Whether the HTTP programs follow request @r (read in one syscall): not, in the
        compat build, one with a 10 KB head (beyond its 33 x 32 parser steps: README, "Where
        every loss goes" and tapir_parse_failures_total)."""
        return not (self.compat and r.sent > 8192)

    def alive(self):
        assert self.proc.poll() is None, (
            f"tapir exited with {self.proc.returncode}:\n" + (self.tmp / "log").read_text())

    def wait_queue_size(self, n):
        """Wait until the gauge shows @n, then check that it stays there; the last scrape."""
        deadline = time.monotonic() + 10
        while queue_size(self.scrape(), strict=False) != n:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(QUIET)
        s = self.scrape()
        assert queue_size(s) == n, f"{QSIZE}: {queue_size(s)}, the gateway's queue {n}"
        return s

    def stop(self):
        if self.valued:
            stop_proc(self.valued)
        if self.servers:
            self.servers.stop()
        for cg in reversed(self.cgs):
            cg.destroy()
        if self.proc:
            stop_proc(self.proc)


# Each test twice: on the hooks the suite runs, and on the other hooks (other_hooks(): the heads
# copied out of the processes' calls when the suite's copy them out of the TCP segments).
@pytest.fixture(scope="module", params=[None, other_hooks()], ids=["hooks", "other"])
def stack(cgroot, tmp_path_factory, request):
    if request.param and os.environ.get("TAPIR_E2E_BPF_VARIANT", "auto") == "compat":
        pytest.skip("the other hooks need the loop build")
    st = Stack(tmp_path_factory.mktemp("async"), cgroot, request.param)
    yield st
    st.stop()
    assert st.proc.returncode == 0, (st.tmp / "log").read_text()


# --- tests ------------------------------------------------------------------------------------


PAUSED_JOBS = [{"input": f"paused job {i}", "sleep_ms": 20 + 5 * i, "fail": i in (2, 5)}
               for i in range(8)]
LATER_JOBS = [{"input": f"later job {i}", "sleep_ms": 25, "fail": i == 1} for i in range(4)]
IDLE_JOBS = [{"input": f"idle job {i}", "sleep_ms": 10} for i in range(2)]
# Answered 202 only after an idle worker has dispatched it, and the model answered it.
EARLY_JOB = {"input": "dispatched before its 202", "sleep_ms": 10, "ack_delay_ms": 150}
NOT_A_JOB = {"sleep_ms": 10}  # no input: 422
PAUSE_S = 0.3


def accept(srv, job):
    st, answer, _, _ = srv.submit(job)
    assert st == 202, answer
    return answer["job_id"]


def control(srv, exp, path):
    """A control request to the gateway: served by the deployment, not async."""
    st, answer, sent, received = srv.control(path)
    exp.served(st, False, sent, received)
    return answer


def test_async_servers_selfcheck(tmp_path):
    """The gateway, the model server and the receiver without tapir: their own logs agree, and
    the gateway's queue behaves as the tests below rely on."""
    srv = Servers(str(tmp_path))
    try:
        srv.control("/pause")
        jobs = [accept(srv, job) for job in PAUSED_JOBS[:4]]
        assert srv.submit(NOT_A_JOB)[0] == 422
        time.sleep(PAUSE_S)
        assert srv.qlen() == 4 and not srv.gateway("taken")
        assert len(srv.gateway("accepted")) == 4 and len(srv.gateway("rejected")) == 1
        srv.control("/resume")
        done = srv.wait_done(jobs)
        check_servers(srv, done, jobs, PAUSE_S)
        assert [e["qlen"] for e in srv.gateway() if e["ev"] in ("accepted", "taken")] == [
            1, 2, 3, 4, 3, 2, 1, 0]
        assert [done["model"][j]["status"] for j in jobs] == [
            500 if job["fail"] else 200 for job in PAUSED_JOBS[:4]]
        assert {e["status"] for e in srv.sink()} == {200, 500}
        assert srv.control("/probe-hooks")[1] == {"status": 200}
        assert [e["method"] for e in srv.sink()].count("GET") == 1
        assert len(srv.sink()) == 5 and len(srv.model()) == 4
        # The receiver's delay is in each latency the gateway saw, and (but for a stall of a
        # loaded machine) not much more: no delayed ACK of its own.
        over = sorted(b - a for a, b in webhook_latencies(done))
        assert over[0] >= 0 and over[len(over) // 2] < 0.02, over
    finally:
        srv.stop()


def test_queue_time_queue_size_and_webhooks(stack):
    """Jobs held by paused workers (the gauge equals the gateway's queue; a 422 and a submit
    cut short are not in it), then drained by two workers with more arriving behind them,
    then jobs to idle workers, one of them dispatched and answered before its 202: each
    job's model request async, its time in the queue, its webhook; the gateway's control
    requests sync, its submits nowhere in the request families; a GET of the webhook path an
    outbound request to the destination but no webhook; the gauge back to 0."""
    srv, exp = stack.servers, Expect()
    before = stack.scrape()
    assert queue_size(before, strict=False) == 0 and srv.qlen() == 0
    control(srv, exp, "/pause")
    accepted = len(srv.gateway("accepted"))
    paused = [accept(srv, job) for job in PAUSED_JOBS]
    rejected = len(srv.gateway("rejected"))
    assert srv.submit(NOT_A_JOB)[0] == 422
    assert len(srv.gateway("rejected")) == rejected + 1
    # A submit cut short: its head and part of its body, then its client leaves.
    conn = RawConn(srv.gateway_port)
    conn.send(b"POST /async/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input\": ")
    time.sleep(0.1)
    conn.close()
    # Paused: the submits are all in the queue, the 422 and the one cut short are not.
    stack.wait_queue_size(len(paused))
    assert srv.qlen() == len(paused) == len(srv.gateway("accepted")) - accepted
    time.sleep(max(0.0, PAUSE_S - QUIET))
    control(srv, exp, "/resume")
    later = []
    for job in LATER_JOBS:
        later.append(accept(srv, job))
        time.sleep(0.12)
    srv.wait_done(paused + later)
    idle = []
    for job in IDLE_JOBS:  # to idle workers: out of the queue at once
        idle.append(accept(srv, job))
        srv.wait_done(idle)
    early = accept(srv, EARLY_JOB)
    done = srv.wait_done(paused + later + idle + [early])
    (acked,) = [e for e in srv.gateway("acked") if e["job"] == early]
    assert done["model"][early]["end"] < acked["t"]
    check_servers(srv, done, paused, PAUSE_S)
    assert {w["status"] for w in done["webhook"].values()} == {200, 500}
    assert {m["status"] for m in done["model"].values()} == {200, 500}
    exp.jobs(done)
    # A GET of the webhook path: to the webhook destination, not a webhook.
    probe = control(srv, exp, "/probe-hooks")
    exp.outbound[(str(probe["status"]), "hooks")] += 1
    after = exp.settle(before, stack.scrape, "jobs")
    exp.check(before, after, "jobs")
    assert srv.qlen() == 0
    stack.wait_queue_size(0)
    check_labels(after)
    stack.alive()


def t_form(e):
    return f"t={e:.6f}"


# (name, path, headers: (name, value or function of the enqueue time), seconds in the queue)
FORMATS = [
    ("t_microseconds", "/predict", [("X-Request-Start", t_form)], 0.015),
    ("t_milliseconds", "/predict", [("X-Request-Start", lambda e: f"t={e:.3f}")], 0.035),
    ("seconds_fraction", "/predict", [("X-Request-Start", lambda e: f"{e:.4f}")], 0.07),
    ("seconds", "/predict", [("X-Request-Start", lambda e: str(int(e)))], 1.6),
    ("milliseconds", "/predict", [("X-Request-Start", lambda e: str(int(e * 1e3)))], 0.15),
    ("microseconds", "/predict", [("X-Request-Start", lambda e: str(int(e * 1e6)))], 0.27),
    ("nanoseconds", "/predict", [("X-Request-Start", lambda e: str(int(e * 1e9)))], 0.42),
    ("x_queue_start", "/predict", [("X-Queue-Start", t_form)], 0.6),
    ("lower_case_name", "/predict", [("x-request-start", t_form)], 0.85),
    # enqueue_headers' order decides, not the request's
    ("both_headers", "/predict", [("X-Request-Start", t_form),
                                  ("X-Queue-Start", lambda e: t_form(e - 5))], 1.2),
    ("both_headers_queue_start_first", "/predict",
     [("X-Queue-Start", lambda e: t_form(e - 5)), ("X-Request-Start", t_form)], 3.5),
    ("query", "/predict?trace=1", [("X-Request-Start", t_form)], 0.27),
    ("marked_by_header", "/sync", [("X-Async-Job", "1"), ("X-Request-Start", t_form)], 0.15),
    ("after_10k_header", "/predict", [("X-Pad", "p" * 10240), ("X-Request-Start", t_form)],
     0.07),
    ("milliseconds_fraction", "/predict", [("X-Request-Start", lambda e: f"{e * 1e3:.3f}")],
     0.3),
    # Apache's "t=%t": microseconds after t=, the magnitude tells as for a bare number
    ("t_microseconds_apache", "/predict",
     [("X-Request-Start", lambda e: f"t={int(e * 1e6)}")], 0.018),
    ("value_spaced", "/predict", [("X-Request-Start", lambda e: f"  {t_form(e)}  ")], 0.04),
    ("upper_case_name", "/predict", [("X-REQUEST-START", t_form)], 0.6),
    # a clock up to 1 ms ahead of the server's: 0 s in the queue, not the future
    ("ahead_within_a_millisecond", "/predict", [("X-Request-Start", t_form)], -0.0008),
]


def denoted(text):
    """The enqueue time (seconds since the epoch) a header value denotes: t= and a number, or
    a number, whose unit its magnitude tells."""
    text = text.strip()
    n = float(text[2:] if text.startswith("t=") else text)
    for limit, unit in ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6)):
        if n < limit:
            return n / unit
    return n / 1e9


def enqueue_value(values):
    """The value of the first of enqueue_headers (the default) that @values has."""
    for name in ("x-request-start", "x-queue-start"):
        for h, v in values.items():
            if h.lower() == name:
                return v
    return None


def in_queue(r):
    """Request @r's time in the queue, as an interval: from enqueue time to its send, and to
    its arrival at the model's app; a time up to 1 ms ahead of arrival counts as 0."""
    e = denoted(enqueue_value(r.values))
    return max(0.0, r.sent_at - e), max(0.0, r.arrival - e)


def send_direct(srv, name, path, headers, enqueue=None, port=None, log=None, body=None,
                status=200, pieces=1):
    """@name's request, from this process straight to the model server (of @srv, or on @port,
    logging to @log), written in @pieces, answered @status; the header values that are
    functions get @enqueue
    (default: now). Returns what this process and the model server saw of it: sent_at
    (time.time() just before the send), arrival (when the model's app got it; None for a
    path it has no route for), status, sent and received (bytes), values ({header: value})."""
    if enqueue is None:
        enqueue = time.time()
    values = [(h, v(enqueue) if callable(v) else v) for h, v in headers]
    if body is None:
        body = json.dumps({"input": name, "sleep_ms": 5}).encode()
    st, _, sent, received, t = call(port or srv.model_port, "POST", path,
                                    values + [("X-Test-Tag", name)], body, pieces)
    assert st == status, name
    served = [e for e in read_log(log or srv.model_log) if e["tag"] == name]
    assert len(served) == (st != 404), (name, served)
    for h, v in values:
        if served and h.lower() in served[0]:
            assert served[0][h.lower()].strip() == v[:80].strip(), (name, h)
    return types.SimpleNamespace(sent_at=t, arrival=served[0]["arrival"] if served else None,
                                 status=st, sent=sent, received=received, values=dict(values))


def pipelined(srv, names, offsets):
    """Requests @names to the model server's /predict in one write, each enqueued @offsets
    seconds before it; what send_direct returns of each."""
    t0 = time.time()
    reqs = [request("POST", "/predict", [("X-Request-Start", t_form(t0 - o)),
                                         ("X-Test-Tag", n)],
                    json.dumps({"input": n, "sleep_ms": 5}).encode())
            for n, o in zip(names, offsets)]
    conn = RawConn(srv.model_port)
    try:
        t = time.time()
        conn.send(b"".join(reqs))
        answers = [conn.read_response() for _ in reqs]
    finally:
        conn.close()
    out = []
    for n, o, req, (st, _, _, wire) in zip(names, offsets, reqs, answers):
        (served,) = srv.model(tag=n)
        out.append(types.SimpleNamespace(sent_at=t, arrival=served["arrival"], status=st,
                                         sent=len(req), received=wire,
                                         values={"X-Request-Start": t_form(t0 - o)}))
    return out


def test_enqueue_header_formats(stack):
    srv, exp = stack.servers, Expect()
    before = stack.scrape()
    for name, path, headers, offset in FORMATS:
        r = send_direct(srv, name, path, headers, time.time() - offset)
        if not stack.walks(r):
            exp.parse_failures["scan_limit"] += 1
            continue
        exp.served(r.status, True, r.sent, r.received)
        exp.queue.append(in_queue(r))
    # Heads in 7 pieces 20 ms apart: the fields, and the path, cut across writes.
    for name, path, headers in (
            ("seven_pieces", "/predict", [("X-Request-Start", t_form)]),
            ("seven_pieces_marked", "/sync", [("X-Async-Job", "1"),
                                              ("X-Request-Start", t_form)])):
        r = send_direct(srv, name, path, headers, time.time() - 0.45, pieces=7)
        exp.served(r.status, True, r.sent, r.received)
        exp.queue.append(in_queue(r))
    after = exp.settle(before, stack.scrape, "formats")
    exp.check(before, after, "formats")
    # Arrivals that no submit preceded.
    assert queue_size(after) == 0
    check_labels(after)
    stack.alive()


def year_2100():
    return float(calendar.timegm((2100, 1, 1, 0, 0, 0)))


# (name, path, headers, reason: None for a request that is not async)
HOSTILE = [
    ("absent", "/predict", [], "absent"),
    ("marked_absent", "/sync", [("X-Async-Job", "yes")], "absent"),
    ("garbage", "/predict", [("X-Request-Start", "garbage")], "malformed"),
    ("t_empty", "/predict", [("X-Request-Start", "t=")], "malformed"),
    ("t_letters", "/predict", [("X-Request-Start", "t=abc")], "malformed"),
    ("trailing_junk", "/predict", [("X-Request-Start", lambda e: f"{e - 1:.3f}abc")],
     "malformed"),
    ("garbage_10k", "/predict", [("X-Request-Start", "x" * 10240)], "malformed"),
    # README: a head over 16 KiB does not reach the daemon whole; its path still says async
    ("head_over_16k", "/predict", [("X-Pad", "p" * 17000), ("X-Request-Start", t_form)],
     "lost"),
    ("first_header_malformed", "/predict",
     [("X-Request-Start", "garbage"), ("X-Queue-Start", lambda e: t_form(e - 1))], "malformed"),
    ("year_2100", "/predict", [("X-Request-Start", lambda e: t_form(year_2100()))], "future"),
    ("year_2100_ms", "/predict",
     [("X-Request-Start", lambda e: str(int(year_2100() * 1000)))], "future"),
    ("seconds_ahead", "/predict", [("X-Request-Start", lambda e: t_form(e + 3))], "future"),
    ("exponent", "/predict", [("X-Request-Start", lambda e: f"{e:.3e}")], "malformed"),
    ("signed", "/predict", [("X-Request-Start", lambda e: f"+{e:.3f}")], "malformed"),
    ("negative", "/predict", [("X-Request-Start", "-5")], "malformed"),
    ("two_dots", "/predict", [("X-Request-Start", lambda e: f"t={e - 1:.3f}.5")], "malformed"),
    ("t_twice", "/predict", [("X-Request-Start", lambda e: f"t=t={e - 1:.3f}")], "malformed"),
    # names that only begin like the configured ones
    ("longer_name", "/predict", [("X-Request-Starts", lambda e: t_form(e - 1))], "absent"),
    ("sync_longer_async_name", "/sync", [("X-Async-Jobs", "1")], None),
    ("sync_garbage", "/sync", [("X-Request-Start", "garbage")], None),
    ("sync_2100", "/sync", [("X-Request-Start", lambda e: t_form(year_2100()))], None),
    # /predict exactly: not a path that only begins or ends like it
    ("predictions", "/predictions", [("X-Request-Start", "garbage")], None),
    ("v1_predict", "/v1/predict", [("X-Request-Start", "garbage")], None),
]
# Fields in the body are no fields.
IN_BODY = b"X-Request-Start: t=1000000000.000000\r\nX-Async-Job: 1\r\n\r\n"


def test_hostile_enqueue_headers(stack):
    srv, exp = stack.servers, Expect()
    before = stack.scrape()
    for name, path, headers, reason in HOSTILE:
        r = send_direct(srv, name, path, headers, status=200 if path in ("/predict", "/sync")
                        else 404)
        if not stack.walks(r):
            exp.parse_failures["scan_limit"] += 1
            continue
        exp.served(r.status, reason is not None, r.sent, r.received)
        if reason:
            exp.unknown[reason] += 1
    for name, path, reason in (("body_fields", "/predict", "absent"),
                               ("sync_body_fields", "/sync", None)):
        r = send_direct(srv, name, path, [], body=IN_BODY)
        exp.served(r.status, reason is not None, r.sent, r.received)
        if reason:
            exp.unknown[reason] += 1
    after = exp.settle(before, stack.scrape, "hostile")
    exp.check(before, after, "hostile")
    assert queue_size(after) == 0
    check_labels(after)
    stack.alive()


def test_queue_size_never_below_zero(stack):
    """Async requests that no submit preceded leave the gauge at 0, not below: jobs queued
    after them count from 0."""
    srv, exp = stack.servers, Expect()
    before = stack.scrape()
    for i in range(3):
        name = f"unsubmitted {i}"
        r = send_direct(srv, name, "/predict", [("X-Request-Start", t_form)],
                        time.time() - 0.03)
        exp.served(r.status, True, r.sent, r.received)
        exp.queue.append(in_queue(r))
    s = exp.settle(before, stack.scrape, "unsubmitted")
    assert queue_size(s) == 0
    control(srv, exp, "/pause")
    jobs = [accept(srv, job) for job in IDLE_JOBS]
    stack.wait_queue_size(len(jobs))
    assert srv.qlen() == len(jobs)
    control(srv, exp, "/resume")
    exp.jobs(srv.wait_done(jobs))
    after = exp.settle(before, stack.scrape, "after unsubmitted")
    exp.check(before, after, "after unsubmitted")
    stack.wait_queue_size(0)
    assert srv.qlen() == 0
    stack.alive()


# (name, path, headers, whether async) to a model server whose rule has only
# header: "X-Async-Job: yes" (the whole value, in any case)
VALUED_CASES = [
    ("value", "/sync", [("X-Async-Job", "yes"), ("X-Request-Start", t_form)], True),
    ("value_in_upper_case", "/sync", [("X-Async-Job", "YES"), ("X-Request-Start", t_form)],
     True),
    ("value_spaced", "/sync", [("X-Async-Job", "  yes  "), ("X-Request-Start", t_form)], True),
    ("name_in_lower_case", "/sync", [("x-async-job", "Yes")], True),
    ("another_value", "/sync", [("X-Async-Job", "no"), ("X-Request-Start", t_form)], False),
    ("longer_value", "/sync", [("X-Async-Job", "yes please"), ("X-Request-Start", t_form)],
     False),
    ("no_field", "/sync", [("X-Request-Start", t_form)], False),
    ("predict_without_field", "/predict", [("X-Request-Start", t_form)], False),
]


def test_header_with_a_value(stack):
    """A rule with only `header: "Name: value"`: that whole value marks a job, in any case;
    another value, or none, does not, nor does /predict (the rule has no paths). No queue and
    no webhooks for it, and the other deployment moves not."""
    exp = Expect(VALUED)
    before = stack.scrape()
    for name, path, headers, is_async in VALUED_CASES:
        r = send_direct(None, name, path, headers, time.time() - 0.05, stack.valued_port,
                        stack.valued_log)
        exp.served(r.status, is_async, r.sent, r.received)
        if is_async and enqueue_value(r.values):
            exp.queue.append(in_queue(r))
        elif is_async:
            exp.unknown["absent"] += 1
    after = exp.settle(before, stack.scrape, "header value")
    exp.check(before, after, "header value")
    assert not after.select(QSIZE, model_name=VALUED["model_name"])
    assert delta(before, after, REQ, ("status_code", "is_async")) == {}
    check_labels(after)
    stack.alive()


def test_pipelined_jobs(stack):
    """Three jobs in one write on one connection, read by the model server in one read (README:
    up to 4 pipelined requests are followed, each on its own; the kernel hands over the head of
    the newest request that begins in a read): each is an async job by its path, the newest
    with its time in queue, the two before it counted not_captured."""
    srv, exp = stack.servers, Expect()
    before = stack.scrape()
    rs = pipelined(srv, ["pipelined_0", "pipelined_1", "pipelined_2"], [0.03, 0.3, 0.65])
    for i, r in enumerate(rs):
        assert r.status == 200
        exp.served(r.status, True, r.sent, r.received)
        if i == len(rs) - 1:
            exp.queue.append(in_queue(r))
        else:
            exp.unknown["not_captured"] += 1
    after = exp.settle(before, stack.scrape, "pipelined")
    exp.check(before, after, "pipelined")
    stack.alive()


def test_one_connection_many_kinds(stack):
    """One kept-alive connection, one request after another: each is classified on its own."""
    srv, exp = stack.servers, Expect()
    before = stack.scrape()
    conn = RawConn(srv.model_port)
    try:
        for path, headers, is_async in (
                ("/sync", [], False),
                ("/predict", [("X-Request-Start", lambda e: t_form(e - 0.2))], True),
                ("/sync", [("X-Async-Job", "1"), ("X-Request-Start", lambda e: t_form(e - 0.4))],
                 True),
                ("/sync", [], False),
                ("/predict", [], True)):
            now = time.time()
            values = {h: v(now) for h, v in headers if callable(v)}
            data = request("POST", path, [(h, values.get(h, v)) for h, v in headers],
                           json.dumps({"input": path, "sleep_ms": 5}).encode())
            t = time.time()
            conn.send(data)
            st, _, _, wire = conn.read_response()
            arrival = srv.model()[-1]["arrival"]
            exp.served(st, is_async, len(data), wire)
            if is_async and values:
                r = types.SimpleNamespace(sent_at=t, arrival=arrival, values=values)
                exp.queue.append(in_queue(r))
            elif is_async:
                exp.unknown["absent"] += 1
    finally:
        conn.close()
    after = exp.settle(before, stack.scrape, "one connection")
    exp.check(before, after, "one connection")
    stack.alive()
