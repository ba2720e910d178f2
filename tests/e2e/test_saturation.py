# SPDX-License-Identifier: GPL-2.0
"""Saturation and faults, nothing lost silently: each test forces one loss path (a ring buffer
at its minimum, a full connection table, the daemon stopped or killed under load, the served
process killed mid-response) and checks that the requests tapir observed plus those its loss
counters account for equal, exactly, what the server itself says it read."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import NGINX_CONF, Cgroup, free_port, stub_requests
from test_faults import OwnDaemon, tcp_states, wait_listening, wait_quietly

REQ = "baseten_inference_requests_total"
INFLIGHT = "baseten_concurrent_requests"
LOST = "tapir_records_lost_total"
EVICTED = "tapir_connections_evicted_total"
PARSE = "tapir_parse_failures_total"
IGNORED = "tapir_ignored_connections_total"
UNLABELLED = "tapir_records_unlabelled_total"


class Watched:
    """nginx (NGINX_CONF: /ok and its own count at /stub) in a cgroup of its own, under a rule
    whose model_name is `name`, and a daemon of the test's own with `limits`."""

    def __init__(self, cgroot, tmp_path, name, limits=""):
        mount, rel = cgroot
        self.model = name
        self.base = f"{mount}{rel}/{name}"
        self.cg = Cgroup(f"{self.base}/c0")
        self.tmp_path = tmp_path
        self.body = (limits + f'deployments:\n  - cgroup: "{rel}/{name}/*"\n'
                     f'    labels: {{model_name: {name}}}\n')
        self.daemons = []
        self.d = self.spawn()
        self.d.wait_for(lambda s: s.value("tapir_watched_cgroups") == 1, what="cgroup watched")
        self.port = free_port()
        ntmp = tmp_path / "nginx"
        ntmp.mkdir()
        (ntmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=ntmp, port=self.port))
        self.nginx = self.cg.popen(["nginx", "-p", str(ntmp), "-c", str(ntmp / "nginx.conf"),
                                    "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.nginx)

    def spawn(self, pin_dir="none"):
        """Another daemon on the same rule (its own directory, its own /metrics port)."""
        d = OwnDaemon(self.tmp_path, f"tapir{len(self.daemons)}", self.body, pin_dir=pin_dir)
        self.daemons.append(d)
        return d

    def wrk(self, *args, duration=3):
        """Start wrk on /ok; its `wait()` gives the requests wrk itself completed."""
        return Wrk(self.port, duration, *args)

    def served(self):
        """nginx's own count of requests read, once every connection is closed on both sides
        (nothing in flight, nothing left to read); it includes this request."""
        deadline = time.monotonic() + 15
        while {"01", "08", "09"} & set(tcp_states(self.port)):
            assert time.monotonic() < deadline, tcp_states(self.port)
            time.sleep(0.05)
        return stub_requests(self.port)

    def close(self):
        if self.nginx.poll() is None:
            self.nginx.kill()
            self.nginx.wait()
        for d in self.daemons:
            d.stop()
        self.cg.destroy()
        os.rmdir(self.base)


class Wrk:
    def __init__(self, port, duration, *args):
        self.proc = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{duration}s", "--timeout", "5s",
                                      *args, f"http://127.0.0.1:{port}/ok"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self):
        out = self.proc.communicate(timeout=120)[0]
        assert self.proc.returncode == 0, out
        return int(re.search(r"(\d+) requests in", out).group(1))


@pytest.fixture
def watched(cgroot, tmp_path):
    made = []

    def _watched(name, limits=""):
        made.append(Watched(cgroot, tmp_path, name, limits))
        return made[-1]

    yield _watched
    for w in made:
        w.close()


def account(s, model):
    """What a daemon says about one model's requests: observed, and every loss counter."""
    return {"observed": s.value(REQ, model_name=model),
            "lost": {l["reason"]: v for l, v in s.select(LOST) if v},
            "evicted": {l["reason"]: v for l, v in s.select(EVICTED) if v},
            "parse": {l["reason"]: v for l, v in s.select(PARSE) if v},
            "ignored": {l["reason"]: v for l, v in s.select(IGNORED) if v},
            "unlabelled": s.value(UNLABELLED),
            "in_flight": s.value(INFLIGHT, model_name=model)}


def settled(d, model, want, timeout=20.0):
    """The daemon's account once observed + lost has reached `want` and stopped moving."""
    def total(s):
        return s.value(REQ, model_name=model) + s.value(LOST)

    wait_quietly(d.wait_for, lambda s: total(s) >= want, timeout=timeout)
    return account(d.settle(lambda s: (s.value(REQ, model_name=model), s.value(LOST)),
                            quiet=1.0), model)


def assert_wrk_agrees(made, served):
    """wrk's own count against nginx's: wrk stops with at most one request in flight on each
    of its 8 connections, which nginx read (and answered or saw cut) but wrk did not count."""
    assert made <= served <= made + 8, (made, served)


def test_ringbuf_at_its_minimum_under_wrk(watched):
    """limits.ringbuf_bytes at its minimum (4096: 39 records) under wrk: records are dropped,
    and every one is counted in lost{ringbuf_full}: observed + lost = what nginx read."""
    w = watched("ringmin", "limits: {ringbuf_bytes: 4096}\n")
    r0 = w.served()
    assert r0 == 1  # nothing else reached this nginx
    made = w.wrk().wait()
    r1 = w.served()
    assert_wrk_agrees(made, r1 - r0 - 1)
    a = settled(w.d, w.model, r1)
    assert a["lost"].get("ringbuf_full", 0) > 0, a  # the path was taken
    assert a["observed"] + a["lost"]["ringbuf_full"] == r1, (a, r1)
    assert set(a["lost"]) == {"ringbuf_full"}, a
    assert (a["evicted"], a["parse"], a["ignored"], a["unlabelled"], a["in_flight"]) == \
        ({}, {}, {}, 0, 0), a
