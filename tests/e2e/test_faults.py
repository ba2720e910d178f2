# SPDX-License-Identifier: GPL-2.0
"""Faults and limits: sibling containers under one rule, a full connection table, an ambiguous
request, and pin directories that are owned, stale or replaced."""
import collections
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

from client import RawConn, get
from conftest import (NGINX_CONF, PY, SERVERS, TAPIR, Cgroup, Scrape, free_port, metrics_text,
                      spawn_tapir, stop_proc, stub_requests, tcp_states, wait_listening,
                      wait_port)

REQ = "baseten_inference_requests_total"
INFLIGHT = "baseten_concurrent_requests"
LOST = "tapir_records_lost_total"
EVICTED = "tapir_connections_evicted_total"
PARSE = "tapir_parse_failures_total"


class OwnDaemon:
    """A daemon of the test's own: `body` is the YAML after `listen`; logs to tmp_path/name/log."""

    def __init__(self, tmp_path, name, body, pin_dir="none"):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.port = free_port()
        self.config = self.dir / "tapir.yaml"
        self.config.write_text(f'listen: "127.0.0.1:{self.port}"\n' + body)
        self.proc = spawn_tapir(self.dir, self.config, pin_dir=pin_dir)
        deadline = time.monotonic() + 60
        while "tapir_bpf_program_attached" not in metrics_text(self.port):
            assert self.proc.poll() is None, f"tapir exited {self.proc.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, "tapir did not come up:\n" + self.log()
            time.sleep(0.1)

    def log(self):
        return (self.dir / "log").read_text()

    def scrape(self):
        return Scrape(metrics_text(self.port))

    def wait_for(self, pred, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            s = self.scrape()
            try:
                if pred(s):
                    return s
            except KeyError:  # the daemon did not answer this time
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last scrape:\n"
                                     + "\n".join(l for l in s.text.splitlines()
                                                 if l[:1] != "#" and "_bucket" not in l))
            time.sleep(0.1)

    def settle(self, value, quiet=0.5, timeout=15.0):
        """Scrape until value(scrape) has not moved for `quiet` seconds."""
        last, since = None, time.monotonic()
        deadline = since + timeout
        while True:
            s = self.scrape()
            v = value(s)
            if v != last:
                last, since = v, time.monotonic()
            elif time.monotonic() - since >= quiet or time.monotonic() > deadline:
                return s
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_quietly(wait_for, pred, **kw):
    """wait_for(pred) without failing on a timeout: the assertions after it say what is wrong,
    with the figures, rather than a scrape dump."""
    try:
        wait_for(pred, **kw)
    except AssertionError:
        pass


def test_sibling_containers_under_one_rule_keep_their_own_labels(cgroot, tmp_path):
    """One rule, three containers below it with MID=a, b, c in their environment (two started
    before the daemon, one after): each container's requests carry its own model_id, and the
    counts equal the 200s the client got from each container."""
    mount, rel = cgroot
    base = f"{mount}{rel}/model"
    cgs = [Cgroup(f"{base}/r{i}") for i in range(3)]
    ports = [free_port() for _ in range(3)]
    procs, d = [], None

    def serve(i, mid):
        p = cgs[i].popen([PY, "-m", "http.server", str(ports[i]), "--bind", "127.0.0.1",
                          "--directory", str(tmp_path)], env=dict(os.environ, MID=mid),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_port(ports[i], proc=p)

    try:
        serve(0, "a")
        serve(1, "b")
        d = OwnDaemon(tmp_path, "tapir", f'deployments:\n  - cgroup: "{rel}/model/*"\n'
                      '    labels: {model_name: siblings}\n    env: {model_id: MID}\n')
        serve(2, "c")  # environment read at its exec
        d.wait_for(lambda s: s.value("tapir_watched_cgroups") == 3, what="3 cgroups watched")
        # The label sets are known once the gauges show them (a bug shows below anyway).
        wait_quietly(d.wait_for, lambda s: {l["model_id"] for l, _ in s.select(INFLIGHT)}
                     >= {"a", "b", "c"}, timeout=5)
        got = collections.Counter()
        for i, n in ((0, 3), (2, 2), (1, 5)):
            for _ in range(n):
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[i]}/", timeout=10) as r:
                    r.read()
                    got["abc"[i], r.status] += 1
        assert got == {("a", 200): 3, ("c", 200): 2, ("b", 200): 5}
        wait_quietly(d.wait_for, lambda s: s.value(REQ) >= 10)
        s = d.settle(lambda s: s.value(REQ))
        series = {(l["model_id"], l["status_code"]): v for l, v in s.select(REQ) if v}
        assert series == {("a", "200"): 3, ("b", "200"): 5, ("c", "200"): 2}, series
        for mid, n in (("a", 3), ("b", 5), ("c", 2)):
            for fam in ("baseten_request_size_bytes_count", "baseten_response_size_bytes_count",
                        "baseten_end_to_end_response_time_seconds_count"):
                assert s.value(fam, model_id=mid) == n, (fam, mid)
    finally:
        for p in procs:
            stop_proc(p)
        if d:
            d.stop()
        for cg in cgs:
            cg.destroy()
        os.rmdir(base)


def test_connection_table_full_counts_connections_and_requests(cgroot, tmp_path):
    """max_connections 4, 32 keep-alive connections open at once to nginx, 5 requests on each:
    28 connections refused a table entry (evicted table_full), their 140 requests counted as
    lost, and observed + lost equal to the requests nginx's stub_status says it read and to the
    client's 160 200s (plus the stub_status requests themselves)."""
    mount, rel = cgroot
    base = f"{mount}{rel}/faults-table"
    cg = Cgroup(f"{base}/c0")
    ngx, d = None, None
    conns = []
    try:
        d = OwnDaemon(tmp_path, "tapir", "limits: {max_connections: 4}\n"
                      f'deployments:\n  - cgroup: "{rel}/faults-table/*"\n'
                      '    labels: {model_name: tablefull}\n')
        d.wait_for(lambda s: s.value("tapir_watched_cgroups") == 1, what="cgroup watched")
        port = free_port()
        ntmp = tmp_path / "nginx"
        ntmp.mkdir()
        (ntmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=ntmp, port=port))
        ngx = cg.popen(["nginx", "-p", str(ntmp), "-c", str(ntmp / "nginx.conf"),
                        "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wait_listening(port, ngx)
        r0 = stub_requests(port)
        assert r0 == 1  # nothing else reached this nginx
        conns = [RawConn(port) for _ in range(32)]  # all open before the first request
        ok = 0
        for _ in range(5):
            for c in conns:
                c.send(get("/ok"))
                ok += c.read_response()[0] == 200
        assert ok == 160

        def observed(s):
            return s.value(REQ, model_name="tablefull")

        def lost(s):
            return s.value(LOST, reason="connection_table_full")

        wait_quietly(d.wait_for, lambda s: observed(s) + lost(s) >= 161)
        s = d.settle(lambda s: (observed(s), lost(s), s.value(EVICTED)))
        figures = {"evicted": s.value(EVICTED, reason="table_full"), "lost": lost(s),
                   "observed": observed(s)}
        # The stub_status request and the 4 connections that got entries: 1 + 4 x 5.
        assert figures == {"evicted": 28, "lost": 140, "observed": 21}, figures
        assert s.value(EVICTED) == 28  # no other reason
        assert s.value(INFLIGHT, model_name="tablefull") == 0
        for c in conns:
            c.close()
        conns = []
        # Wait until nginx has closed its ends too (no socket left in CLOSE_WAIT or
        # ESTABLISHED), so that the last stub_status connection finds room.
        deadline = time.monotonic() + 10
        while {"01", "08"} & set(tcp_states(port)):
            assert time.monotonic() < deadline, tcp_states(port)
            time.sleep(0.05)
        r1 = stub_requests(port)
        assert r1 == r0 + 160 + 1
        wait_quietly(d.wait_for, lambda s: observed(s) + lost(s) >= r1)
        s = d.settle(lambda s: (observed(s), lost(s)))
        assert observed(s) + lost(s) == r1, (observed(s), lost(s), r1)
        assert s.value(EVICTED, reason="table_full") == 28
        assert observed(s) == 22 and s.value(REQ, model_name="tablefull", status_code=200) == 22
    finally:
        for c in conns:
            c.close()
        if ngx:
            stop_proc(ngx)
        if d:
            d.stop()
        cg.destroy()
        os.rmdir(base)


AMBIGUOUS = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
             b"\r\n0\r\n\r\n" + b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")


def read_to_eof(sock, quiet=2.0):
    """Everything the server sends until it closes (or is silent for `quiet` seconds)."""
    sock.settimeout(quiet)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def status_lines(data):
    """Status codes of the responses in `data`, framed by Content-Length (the last one may be
    close-delimited)."""
    codes = []
    while data:
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        assert m, data
        codes.append(int(m.group(1)))
        end = data.index(b"\r\n\r\n") + 4
        cl = re.search(rb"\r\ncontent-length: *(\d+)", data[:end], re.I)
        if not cl:
            break
        data = data[end + int(cl.group(1)):]
    return codes


@pytest.mark.parametrize("kind,want", [("nginx", [400]), ("http.server", [501])])
def test_ambiguous_request_makes_no_phantom_requests(daemon, slot, start, kind, want):
    """Content-Length with Transfer-Encoding: chunked, then a GET in the same write: the server
    answers once and closes. tapir counts exactly the responses the client read before EOF, by
    status (no 499, 502 or 404 for bytes the server never took as a request), and one
    ambiguous_request parse failure."""
    before = daemon.scrape().value(PARSE, reason="ambiguous_request")
    port, _ = start(kind)
    conn = RawConn(port)
    conn.send(AMBIGUOUS)
    codes = status_lines(read_to_eof(conn.sock))
    conn.close()
    assert codes == want  # the ground truth: what this server answers to it
    wait_quietly(daemon.wait_for, lambda s: s.value(REQ, model_name=slot.model) >= len(codes)
                 and s.value(PARSE, reason="ambiguous_request") >= before + 1)
    s = daemon.settle(slot.model, quiet=1.0)
    counted = {l["status_code"]: v for l, v in s.select(REQ, model_name=slot.model) if v}
    assert counted == {str(c): n for c, n in collections.Counter(codes).items()}, counted
    parse = {l["reason"]: v for l, v in s.select(PARSE)}
    assert parse["ambiguous_request"] == before + 1, parse
    assert s.value(INFLIGHT, model_name=slot.model) == 0


def bpffs_mounted():
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == "/sys/fs/bpf" and l.partition(" - ")[2].split()[0] == "bpf"
                   for l in f)


def inspect(pins):
    return subprocess.run([TAPIR, "inspect", "--pin-dir", pins], capture_output=True,
                          text=True, timeout=30)


def pinned_map_id(path):
    out = subprocess.run(["bpftool", "-j", "map", "show", "pinned", path], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)["id"]


def test_pin_dir_owned_stale_and_replaced(cgroot, tmp_path):
    """A second daemon on a pin directory that a running one owns exits 2 and leaves the
    owner and its pins alone; after kill -9 of the owner (3 requests in flight), inspect calls
    the pins stale (exit 1); a new daemon replaces them and inspect is happy again. Ground
    truth: exit statuses, the pinned maps' ids, and the client's in-flight requests."""
    mount, rel = cgroot
    if not bpffs_mounted():
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    pins = f"/sys/fs/bpf/tapir-test-{uuid.uuid4().hex[:12]}"
    base = f"{mount}{rel}/faults-pins"
    cg = Cgroup(f"{base}/c0")
    port = free_port()
    srv = cg.popen([PY, os.path.join(SERVERS, "slow.py"), str(port)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = f'deployments:\n  - cgroup: "{rel}/faults-pins/*"\n    labels: {{model_name: pins}}\n'
    a = c = None
    clients, answers = [], []
    try:
        wait_port(port, proc=srv)
        a = OwnDaemon(tmp_path, "a", body, pin_dir=pins)
        a.wait_for(lambda s: s.value("tapir_watched_cgroups") == 1, what="cgroup watched")
        r = inspect(pins)
        assert r.returncode == 0, r.stderr
        pinned = sorted(os.listdir(pins))
        conns_id = pinned_map_id(f"{pins}/conns")

        # (a) a second daemon on the same directory
        r = subprocess.run([TAPIR, "--config", str(a.config), "--listen",
                            f"127.0.0.1:{free_port()}", "--pin-dir", pins],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stdout + r.stderr
        assert re.search(r"owned by (a )?running tapir", r.stderr, re.I), r.stderr
        assert a.proc.poll() is None
        assert sorted(os.listdir(pins)) == pinned
        assert pinned_map_id(f"{pins}/conns") == conns_id
        r = inspect(pins)
        assert r.returncode == 0, r.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sleep/0", timeout=10) as resp:
            assert resp.status == 200
        a.wait_for(lambda s: s.value(REQ, model_name="pins", status_code=200) == 1,
                   what="A still counting")

        # (b) kill -9 with requests in flight
        def slow():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/sleep/3000",
                                        timeout=20) as resp:
                answers.append(resp.status)

        clients = [threading.Thread(target=slow) for _ in range(3)]
        for t in clients:
            t.start()
        a.wait_for(lambda s: s.value(INFLIGHT, model_name="pins") == 3, what="3 in flight")
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        r = inspect(pins)
        assert r.returncode == 1, r.stdout + r.stderr
        assert re.search(r"no running tapir", r.stdout + r.stderr, re.I), r.stdout + r.stderr

        c = OwnDaemon(tmp_path, "c", body, pin_dir=pins)
        assert c.proc.poll() is None
        assert pinned_map_id(f"{pins}/conns") != conns_id  # replaced, not reused
        r = inspect(pins)
        assert r.returncode == 0, r.stdout + r.stderr
        for t in clients:
            t.join(20)
        assert answers == [200, 200, 200]
        # C found those 3 connections open at its start: their answers are counted as lost
        # before_start, not as requests, and nothing of A's in-flight state carried over.
        wait_quietly(c.wait_for, lambda s: s.value(LOST, reason="before_start") >= 3, timeout=5)
        s = c.settle(lambda s: (s.value(LOST), s.value(REQ)))
        figures = {"before_start": s.value(LOST, reason="before_start"),
                   "requests": s.value(REQ, model_name="pins"),
                   "in_flight": s.value(INFLIGHT, model_name="pins")}
        assert figures == {"before_start": 3, "requests": 0, "in_flight": 0}, figures
    finally:
        for t in clients:
            t.join(20)
        for dmn in (a, c):
            if dmn:
                dmn.stop()
        stop_proc(srv)
        cg.destroy()
        os.rmdir(base)
        if os.path.isdir(pins):
            for name in os.listdir(pins):
                os.unlink(os.path.join(pins, name))
            os.rmdir(pins)
