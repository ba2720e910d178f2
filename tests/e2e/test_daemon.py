# SPDX-License-Identifier: GPL-2.0
"""The daemon as a user meets it: CLI, configuration errors, hostile traffic and labels, and
an exposition that real Prometheus tooling accepts."""
import os
import random
import re
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from client import RawConn, get
from conftest import (PY, SERVERS, TAPIR, Daemon, free_port, metrics_text, rmdir_retry,
                      spawn_tapir, wait_port)

REQ = "baseten_inference_requests_total"


def run_tapir(*args, timeout=10):
    return subprocess.run([TAPIR, *args], capture_output=True, text=True, timeout=timeout)


def test_help_and_version():
    r = run_tapir("--help")
    assert r.returncode == 0 and "--config FILE" in r.stdout and "--listen" in r.stdout
    r = run_tapir("--version")
    assert r.returncode == 0 and r.stdout.startswith("tapir ")
    r = run_tapir("--bogus")
    assert r.returncode == 2 and "Usage" in r.stderr


@pytest.mark.parametrize("text,line,reason", [
    ("listen: \"a:1\"\ndeployments: [1, 2\nlimits: {}\n", 3, "invalid YAML"),
    ("listen: \"0.0.0.0:9464\"\ndeployments:\n  - cgroup: \"/a/*\"\n    labels:\n"
     "      modle_id: x\n", 5, "unknown key \"modle_id\""),
    ("deployments:\n  - labels: {model_id: a}\n", 2, "cgroup"),
    ("listen: \"nowhere\"\n", 1, "listen"),
    ("buckets:\n  latency_seconds: [1, 0.5]\n", 2, "increasing"),
    ("limits:\n  ringbuf_bytes: 1000\n", 2, "ringbuf_bytes"),
    ("surprise: 1\n", 1, "unknown key \"surprise\""),
])
def test_config_errors_name_file_line_and_reason(tmp_path, text, line, reason):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = run_tapir("--config", str(cfg))
    assert r.returncode == 2, r.stderr
    assert f"{cfg}:{line}:" in r.stderr, r.stderr
    assert reason in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_config_file(tmp_path):
    r = run_tapir("--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "nope.yaml" in r.stderr and "No such file" in r.stderr


def echo(slot, *argv):
    p = slot.popen([PY, os.path.join(SERVERS, "echo.py"), *argv], stdout=subprocess.PIPE,
                   text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def talk(port, data):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            got += s.recv(4096)
        assert got == data


TLS_HELLO = bytes.fromhex("160301005a010000560303") + os.urandom(32) + bytes.fromhex(
    "000004130113020100002900000010000e000c02683208687474702f312e31")
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_non_http_traffic_is_ignored_and_counted(daemon, slot, tmp_path):
    before = daemon.scrape()
    port = free_port()
    p = echo(slot, "tcp", str(port))
    for data in (b"hello there\r\n", b"\x00\x01binary", b"EHLO mail\r\n"):
        talk(port, data)
    for _ in range(2):
        talk(port, TLS_HELLO)
    talk(port, H2_PREFACE)
    sock_path = str(tmp_path / "echo.sock")
    u = echo(slot, "unix", sock_path)
    for _ in range(3):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock_path)
            s.sendall(get("/over-unix"))
            s.recv(4096)

    def delta(s, reason):
        return (s.value("tapir_ignored_connections_total", reason=reason)
                - before.value("tapir_ignored_connections_total", reason=reason))

    # The socket-buffer hooks see TCP segments only: a request line over a Unix socket is never
    # theirs to count.
    unix = 0 if daemon.hooks() == "skb" else 3
    # Each is counted when its connection ends: on the socket-buffer hooks when the socket is
    # destroyed, after the echo server closed it.
    s = daemon.wait_for(lambda s: delta(s, "not_tcp") >= unix and delta(s, "tls") >= 2
                        and delta(s, "not_http") >= 3 and delta(s, "http2") >= 1,
                        what="ignored connections counted")
    assert delta(s, "not_http") == 3
    assert delta(s, "tls") == 2
    assert delta(s, "http2") == 1
    assert delta(s, "not_tcp") == unix
    assert s.value(REQ, model_name=slot.model) == 0
    p.kill()
    u.kill()


def test_hostile_traffic_never_breaks_the_daemon(daemon, slot, start, tmp_path):
    (tmp_path / "ok.txt").write_bytes(b"fine\n")
    port, _ = start("nginx", docroot=str(tmp_path))
    rnd = random.Random(7)
    valid = get("/ok.txt")
    for i in range(300):
        if i % 3 == 0:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        elif i % 3 == 1:
            data = bytearray(valid)
            for _ in range(rnd.randrange(1, 5)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            data = bytes(data)
        else:
            data = (b"GET /" + b"a" * rnd.randrange(20000) + b" HTTP/1.1\r\n"
                    + b"X: " + b"y" * rnd.randrange(10000) + b"\r\n\r\n")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
        except OSError:
            pass
    # Still alive, still exact on well-formed traffic afterwards.
    before = daemon.scrape().value(REQ, model_name=slot.model, status_code=200)
    conn = RawConn(port)
    for _ in range(50):
        conn.send(valid)
        assert conn.read_response()[0] == 200
    conn.close()
    s = daemon.wait_for(
        lambda s: s.value(REQ, model_name=slot.model, status_code=200) >= before + 50,
        what="50 more requests")
    assert daemon.proc.poll() is None
    r = subprocess.run(["promtool", "check", "metrics"], input=s.text, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_exposition_passes_promtool_with_traffic(daemon, slot, start):
    port, _ = start("uvicorn")
    for code in (200, 404, 500, 503):
        conn = RawConn(port)
        conn.send(get(f"/status/{code}"))
        conn.read_response()
        conn.close()
    s = daemon.wait_for(lambda s: s.value(REQ, model_name=slot.model) >= 4, what="4 requests")
    r = subprocess.run(["promtool", "check", "metrics"], input=s.text, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    types = {f.name: f.type for f in text_string_to_metric_families(s.text)}
    assert types["baseten_inference_requests"] == "counter"
    for h in ("baseten_end_to_end_response_time_seconds", "baseten_time_to_first_byte_seconds",
              "baseten_request_size_bytes", "baseten_response_size_bytes"):
        assert types[h] == "histogram"
    assert types["baseten_concurrent_requests"] == "gauge"
    assert types["tapir_build_info"] == "gauge"


def test_hostile_label_values_round_trip(cgroot, tmp_path):
    mount, rel = cgroot
    hostile = {
        "model_id": 'quote"back\\slash',
        "model_name": "new\nline",
        "deployment_id": "ünïcödé ✓",
        "environment": "x" * 5000,
        "rollout_phase": "",
    }
    port = free_port()
    cfg = tmp_path / "hostile.yaml"
    lines = [f'listen: "127.0.0.1:{port}"', "deployments:", f'  - cgroup: "{rel}/hostile/*"',
             "    labels:"]
    for k, v in hostile.items():
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'      {k}: "{esc}"')
    cfg.write_text("\n".join(lines) + "\n")
    os.makedirs(f"{mount}{rel}/hostile/c0")
    p = spawn_tapir(tmp_path, cfg)
    try:
        wait_port(port, timeout=60, proc=p)
        text = ""
        deadline = time.monotonic() + 30
        while "baseten_concurrent_requests{" not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            text = metrics_text(port)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        labels = fams["baseten_concurrent_requests"].samples[0].labels
        for k in ("model_id", "model_name", "deployment_id", "rollout_phase"):
            assert labels[k] == hostile[k]
        # Values are cut at 1 KiB, on a character boundary.
        assert labels["environment"] == "x" * 1024
    finally:
        p.terminate()
        p.wait(10)
        os.rmdir(f"{mount}{rel}/hostile/c0")
        os.rmdir(f"{mount}{rel}/hostile")


def _policy(pid, tid):
    """The scheduling policy of a thread: field 41 of its stat (after the parenthesised comm)."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[38])


def test_main_loop_never_preempts_the_servers(daemon):
    """The loop's wake-ups run as SCHED_BATCH (3), which never preempts a served process on
    wake-up; the /metrics thread, made before it, keeps SCHED_OTHER (0)."""
    pid = daemon.proc.pid
    daemon.scrape()
    tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    assert _policy(pid, pid) == 3
    others = {t: _policy(pid, t) for t in tids if t != pid}
    assert others and 0 in others.values(), others


def test_pinned_maps_bpftool_and_inspect(daemon, slot, start):
    """Operators read the live state with bpftool (BTF makes it readable) and tapir inspect."""
    port, _ = start("uvicorn")
    conn = RawConn(port)  # keep one connection open: it shows up in conns
    conn.send(get("/status/200"))
    assert conn.read_response()[0] == 200
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                          f"{daemon.pin_dir}/watched_cgroups"], capture_output=True, text=True,
                         check=True).stdout
    import json
    entries = json.loads(out)
    assert entries and all("labels_id" in e["formatted"]["value"]
                           for e in entries), out
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", f"{daemon.pin_dir}/conns"],
                         capture_output=True, text=True, check=True).stdout
    conns = json.loads(out)
    assert any(c["formatted"]["value"]["state"] == 1 for c in conns)  # TAPIR_CONN_HTTP
    r = subprocess.run([TAPIR, "inspect", "--config", daemon.config, "--pin-dir", daemon.pin_dir],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.split()[1].endswith(f"/{slot.model}/replica0")]
    assert len(line) == 1, r.stdout
    fields = line[0].split()
    assert fields[2] == slot.model and int(fields[5]) >= 1 and int(fields[6]) >= 1, line
    conn.close()
    r = subprocess.run([TAPIR, "inspect", "--pin-dir", "/sys/fs/bpf/nothing-here"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no maps pinned" in r.stderr


def test_labels_from_the_process_environment(daemon, slot, start):
    """The rule maps model_id and deployment_id to environment variables: a container started
    with them gets them on its request series; the rule's static labels fill the rest."""
    # Hostile too: a newline, a backslash, a byte that is not UTF-8 (0xff, passed through
    # surrogateescape) and 10 KB of text.
    port, _ = start("uvicorn", env={"TAPIR_TEST_MODEL_ID": 'env "model" 42\nline\\two\udcff',
                                    "TAPIR_TEST_DEPLOYMENT_ID": "d" * 10000})
    conn = RawConn(port)
    conn.send(get("/status/200"))
    assert conn.read_response()[0] == 200
    conn.close()
    s = daemon.wait_for(lambda s: s.value(REQ, model_name=slot.model) == 1, what="request")
    labels = s.select(REQ, model_name=slot.model)[0][0]
    assert labels["model_id"] == 'env "model" 42\nline\\two\ufffd'  # U+FFFD for the bad byte
    assert labels["deployment_id"] == "d" * 1024  # cut at 1 KiB
    assert labels["environment"] == "production"
    r = subprocess.run(["promtool", "check", "metrics"], input=s.text, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_zero_config_names_every_http_server(cgroot, tmp_path):
    """No rules: every cgroup is watched, and one that serves HTTP shows up under its own name
    (here the directory's); cgroups that serve nothing add no series."""
    mount, rel = cgroot
    web = f"{mount}{rel}/zero-config-web"
    idle = f"{mount}{rel}/zero-config-idle"
    os.makedirs(web)
    os.makedirs(idle)
    port, mport = free_port(), free_port()
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("# nothing: watch everything\n")
    p = spawn_tapir(tmp_path, cfg, "--listen", f"127.0.0.1:{mport}")

    def enter(path):
        def fn():
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write("0")
        return fn

    srv = subprocess.Popen([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                            "--directory", str(tmp_path)], preexec_fn=enter(web),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=enter(idle))
    try:
        wait_port(mport, timeout=60, proc=p)
        wait_port(port, proc=srv)
        time.sleep(0.5)
        for _ in range(3):
            subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"],
                           check=True)
        text = ""
        deadline = time.monotonic() + 10
        while 'model_name="zero-config-web"' not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            text = metrics_text(mport)
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        reqs = [s for s in fams["baseten_inference_requests"].samples
                if s.name.endswith("_total") and s.labels["model_name"] == "zero-config-web"]
        assert sum(s.value for s in reqs) == 3, text
        assert "zero-config-idle" not in text
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    finally:
        for q in (srv, sleeper, p):
            q.kill() if q is not p else q.terminate()
            q.wait(10)
        os.rmdir(web)
        os.rmdir(idle)


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_churn_1000_containers_series_and_memory_return_to_baseline(cgroot, tmp_path):
    """1,000 container cgroups, each named (so each its own label set), served and destroyed,
    twice: after the grace period the series count is back to its baseline, and the second
    round leaves the daemon's RSS where the first left it."""
    mount, rel = cgroot
    base = f"{mount}{rel}/churn"
    park = f"{mount}{rel}/churn-park"
    os.makedirs(base)
    os.makedirs(park)
    mport = free_port()
    cfg = tmp_path / "churn.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{mport}"\nlimits:\n  series_grace_s: 1\n'
                   f'deployments:\n  - cgroup: "{rel}/churn/*"\n')
    p = spawn_tapir(tmp_path, cfg)

    def enter_park():
        with open(os.path.join(park, "cgroup.procs"), "w") as f:
            f.write("0")

    # Listening anew in each container: the socket-buffer hooks see a connection in the cgroup of
    # the process that made its listening socket.
    srv = subprocess.Popen([PY, os.path.join(SERVERS, "oneshot.py")], preexec_fn=enter_park,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def scrape():
        text = metrics_text(mport)
        return {s.name: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if not s.labels}

    def watched_now():
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
            text = r.read().decode()
        return int(re.search(r"^tapir_watched_cgroups (\d+)", text, re.M).group(1))

    def watched(want):
        deadline = time.monotonic() + 5
        while watched_now() != want:
            assert time.monotonic() < deadline, f"watched cgroups never reached {want}"
            time.sleep(0.001)

    def churn(n):
        for i in range(n):
            cg = f"{base}/c{i}"
            os.mkdir(cg)
            watched(1)  # a container's first request comes after the daemon saw it appear
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write(str(srv.pid))
            srv.stdin.write("serve\n")
            srv.stdin.flush()
            conn = RawConn(int(srv.stdout.readline()))
            conn.send(get("/log"))
            assert conn.read_response()[0] == 200
            conn.close()
            assert srv.stdout.readline().strip() == "done"
            with open(os.path.join(park, "cgroup.procs"), "w") as f:
                f.write(str(srv.pid))
            rmdir_retry(cg)  # a just-finished request thread may linger briefly
            watched(0)

    def settled_series(want_at_most, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            m = scrape()
            if m["tapir_series"] <= want_at_most or time.monotonic() > deadline:
                return m
            time.sleep(0.5)

    try:
        wait_port(mport, timeout=60, proc=p)
        time.sleep(1)
        scrape()  # the first scrape creates tapir's own series; count from the second
        baseline = scrape()["tapir_series"]
        churn(1)
        assert scrape()["tapir_series"] > baseline  # a container's series exist while it does
        churn(1000)
        m = settled_series(baseline)
        assert m["tapir_records_total"] == 1001
        assert m["tapir_series"] == baseline, (m["tapir_series"], baseline)
        rss1 = _rss_kib(p.pid)
        churn(1000)
        m = settled_series(baseline)
        assert m["tapir_series"] == baseline, (m["tapir_series"], baseline)
        assert m["tapir_records_total"] == 2001
        rss2 = _rss_kib(p.pid)
        assert rss2 <= rss1 * 1.05 + 2048, (rss1, rss2)
    finally:
        srv.kill()
        srv.wait()
        p.terminate()
        p.wait(10)
        os.rmdir(base)
        os.rmdir(park)
