# SPDX-License-Identifier: GPL-2.0
"""Correctness under faults and hostile input: sibling containers keep their own labels, a full
connection table is counted so that nothing goes missing, an ambiguous request creates no
phantom requests, and pin directories have one owner."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from client import RawConn, get
from conftest import (PY, SERVERS, TAPIR, Cgroup, Scrape, free_port, metrics_text, rmdir_retry,
                      wait_port)

REQ = "baseten_inference_requests_total"


def up(proc, port, log, timeout=30):
    deadline = time.monotonic() + timeout
    while "tapir_build_info" not in metrics_text(port):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def daemon(tmp_path, body, *args):
    """A daemon of the test's own: config text @body after the listen line."""
    port = free_port()
    cfg = tmp_path / "tapir.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{port}"\n' + body)
    log = tmp_path / f"log-{port}"
    proc = subprocess.Popen([TAPIR, "--config", str(cfg), *args], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    up(proc, port, log)
    return proc, port, log


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        assert proc.wait(15) == 0


def wait_count(port, want, timeout=15, **labels):
    deadline = time.monotonic() + timeout
    while True:
        s = Scrape(metrics_text(port))
        if s.value(REQ, **labels) >= want or time.monotonic() > deadline:
            time.sleep(0.5)
            return Scrape(metrics_text(port))
        time.sleep(0.1)


def nginx(cg, tmp):
    """nginx (keep-alive) in cgroup @cg; returns (port, proc)."""
    port = free_port()
    with open(os.path.join(SERVERS, "nginx.conf.in")) as f:
        text = f.read()
    text = (text.replace("@PORT@", str(port)).replace("@ROOT@", tmp).replace("@TMP@", tmp)
            .replace("@UPSTREAM@", "1"))
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(text)
    p = cg.popen(["nginx", "-p", tmp, "-c", conf, "-g", "daemon off;"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    return port, p


def test_sibling_containers_keep_their_own_labels(tmp_path, cgroot):
    """Three replicas under one rule, model_id from each one's environment (a, b, c): requests
    counted per replica exactly as each client sent them."""
    mount, rel = cgroot
    parent = f"{mount}{rel}/siblings"
    pins = f"/sys/fs/bpf/tapir-siblings-{os.getpid()}"
    os.makedirs(parent)
    cgs, procs, ports = [], [], []
    proc = None
    try:
        proc, port, _ = daemon(tmp_path, f'deployments:\n  - cgroup: "{rel}/siblings/*"\n'
                                         '    env: {model_id: MID}\n', "--pin-dir", pins)
        for i, mid in enumerate("abc"):
            cg = Cgroup(f"{parent}/r{i}")
            sport = free_port()
            p = cg.popen([PY, "-m", "http.server", str(sport), "--bind", "127.0.0.1",
                          "--directory", str(tmp_path)], env=dict(os.environ, MID=mid),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(sport, proc=p)
            cgs.append(cg)
            procs.append(p)
            ports.append(sport)
        want = {"a": 3, "c": 2, "b": 5}
        for mid, n in want.items():  # r0 first, then r2, then r1: order must not matter
            for _ in range(n):
                conn = RawConn(ports["abc".index(mid)])
                conn.send(get("/"))
                assert conn.read_response()[0] == 200
                conn.close()
        s = wait_count(port, 10)
        for mid, n in want.items():
            assert s.value(REQ, model_id=mid, status_code=200) == n, (mid, s.select(REQ))
            assert s.value("baseten_request_size_bytes_count", model_id=mid) == n
            assert s.value("baseten_response_size_bytes_count", model_id=mid) == n
        out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                              f"{pins}/watched_cgroups"], capture_output=True, text=True,
                             check=True).stdout
        # Three label sets in the kernel's map too, as an operator reads it with bpftool.
        entries = json.loads(out)
        assert len(entries) == 3 and len({e["formatted"]["value"]["labels_id"]
                                          for e in entries}) == 3, out
    finally:
        if proc:
            stop(proc)
        for p in procs:
            p.kill()
            p.wait()
        for cg in cgs:
            cg.destroy()
        rmdir_retry(parent)
        shutil.rmtree(pins, ignore_errors=True)


def test_full_connection_table_counts_connections_and_requests(tmp_path, cgroot):
    """32 keep-alive connections, 5 requests each, with room for 4: table_full counts the 28
    connections once each, and requests observed + requests lost == the client's 160."""
    mount, rel = cgroot
    cg = Cgroup(f"{mount}{rel}/tablefull")
    tmp = tempfile.mkdtemp(prefix="tapir-tf-")
    proc = srv = None
    try:
        proc, port, _ = daemon(tmp_path, "limits: {max_connections: 4}\n"
                                         f'deployments:\n  - cgroup: "{rel}/tablefull"\n'
                                         '    labels: {model_name: "tablefull"}\n',
                               "--pin-dir", "none")
        sport, srv = nginx(cg, tmp)
        conns = [RawConn(sport) for _ in range(32)]
        ok = 0
        for _ in range(5):
            for c in conns:
                c.send(get("/ok"))
                ok += c.read_response()[0] == 200
        for c in conns:
            c.close()
        assert ok == 160
        time.sleep(1.5)
        s = Scrape(metrics_text(port))
        seen = s.value(REQ, model_name="tablefull")
        lost = s.value("tapir_records_lost_total", reason="connection_table_full")
        evicted = s.value("tapir_connections_evicted_total", reason="table_full")
        assert seen + lost == ok, (seen, lost)
        assert evicted == 28, evicted
        assert seen == 4 * 5, seen  # the 4 connections that got an entry, every request
    finally:
        if proc:
            stop(proc)
        if srv:
            srv.kill()
            srv.wait()
        cg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


AMBIGUOUS = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
             b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")


def statuses_until_eof(port):
    """Send the ambiguous pair on one connection; the status lines the server sent until it
    closed (or stayed silent for 2 s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.sendall(AMBIGUOUS)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def test_ambiguous_request_makes_no_phantom_requests(daemon, slot, start):
    """Content-Length with chunked, then a GET on the same connection: tapir counts exactly the
    answers the client got (nginx: one 400; http.server: one 501), never a 499 or 502 for a
    request the server did not take as one."""
    port, _ = start("nginx")
    hport, _ = start("http.server")
    before = daemon.scrape()
    amb0 = before.value("tapir_parse_failures_total", reason="ambiguous_request")
    got = statuses_until_eof(port) + statuses_until_eof(hport)
    assert got and all(code in (400, 501) for code in got), got
    daemon.wait_for(lambda s: s.value(REQ, model_name=slot.model) >= len(got),
                    what="the answers")
    s = daemon.settle(slot.model)
    for code in set(got):
        assert s.value(REQ, model_name=slot.model, status_code=code) == got.count(code)
    assert s.value(REQ, model_name=slot.model) == len(got), s.select(REQ, model_name=slot.model)
    assert s.value("tapir_parse_failures_total", reason="ambiguous_request") == amb0 + 2


def test_pin_directory_has_one_owner_and_stale_pins_say_so(tmp_path, cgroot):
    """A second daemon on the same pin directory refuses to start (exit 2) and leaves the first
    one's pins alone; after kill -9, tapir inspect says no daemon owns the pins (exit 1); a new
    daemon takes the directory over."""
    pins = f"/sys/fs/bpf/tapir-pins-{os.getpid()}"
    a = b = c = None
    try:
        a, _, _ = daemon(tmp_path, "", "--pin-dir", pins)
        port_b = free_port()
        cfg = tmp_path / "b.yaml"
        cfg.write_text(f'listen: "127.0.0.1:{port_b}"\n')
        r = subprocess.run([TAPIR, "--config", str(cfg), "--pin-dir", pins],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r.stderr
        assert re.search(r"owned by a running tapir", r.stderr), r.stderr
        assert a.poll() is None
        r = subprocess.run([TAPIR, "inspect", "--pin-dir", pins], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        a.kill()
        a.wait()
        deadline = time.monotonic() + 10
        while True:  # the lock goes when the killed process's files are closed
            r = subprocess.run([TAPIR, "inspect", "--pin-dir", pins], capture_output=True,
                               text=True)
            if r.returncode == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.returncode == 1 and "no running tapir owns" in r.stderr, (r.returncode,
                                                                          r.stderr)
        c, _, _ = daemon(tmp_path, "", "--pin-dir", pins)
        r = subprocess.run([TAPIR, "inspect", "--pin-dir", pins], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    finally:
        for p in (a, b, c):
            if p and p.poll() is None:
                stop(p)
        shutil.rmtree(pins, ignore_errors=True)
