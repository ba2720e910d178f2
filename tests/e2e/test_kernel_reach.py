# SPDX-License-Identifier: GPL-2.0
"""Kernel reach on this host: both BPF variants load and count exactly, tapir check tells what
loads, and a refused program, a missing BTF file or a stale pin directory each say so."""
import os
import re
import subprocess
import time

import pytest

from client import RawConn, get
from conftest import (PY, SERVERS, TAPIR, Cgroup, Scrape, free_port, metrics_text,
                      wait_listening, wait_port, wait_serving)

REQ = "baseten_inference_requests_total"


def own_daemon(tmp_path, cgroot, name, *args, env=None, below=""):
    """A daemon of the test's own watching one fresh cgroup (with @below, a glob, those of its
    children that match instead); returns (proc, port, cgroup)."""
    mount, rel = cgroot
    cg = Cgroup(f"{mount}{rel}/{name}")
    port = free_port()
    cfg = tmp_path / "tapir.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{port}"\n'
                   f'deployments:\n  - cgroup: "{rel}/{name}{"/" + below if below else ""}"\n'
                   f'    labels: {{model_name: "{name}"}}\n')
    log = open(tmp_path / "log", "w")
    proc = subprocess.Popen([TAPIR, "--config", str(cfg), "--pin-dir", "none", *args],
                            stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **(env or {})))
    wait_serving(port, proc, tmp_path / "log")
    return proc, port, cg


def stop(proc):
    proc.terminate()
    assert proc.wait(15) == 0


def settled(port, model, want, timeout=15):
    """Scrape until the model's request count reaches want and holds for half a second."""
    deadline = time.monotonic() + timeout
    while True:
        s = Scrape(metrics_text(port))
        if s.value(REQ, model_name=model) >= want:
            time.sleep(0.5)
            return Scrape(metrics_text(port))
        assert time.monotonic() < deadline, f"only {s.value(REQ, model_name=model)} of {want}"
        time.sleep(0.1)


def every_syscall_family(sport):
    """Requests to tests/e2e/servers/syscalls.py on @sport through every reader and writer, in
    three pieces each, with no body, 6 KB of headers or a 70000-byte body: (requests, bytes
    sent, bytes received) as the client counted them."""
    sent = recv = n = 0
    big = "".join(f"X-Filler-{i}: {'v' * 90}\r\n" for i in range(60))  # ~6 KB of headers
    for rd in ("read", "readv", "recv", "recvmsg"):
        for wr in ("write", "writev", "send", "sendmsg", "sendfile"):
            for size, extra in ((0, ""), (100, big), (70000, "")):
                conn = RawConn(sport)
                req = get(f"/{rd}/{wr}/{size}").replace(b"\r\n\r\n",
                                                          b"\r\n" + extra.encode() + b"\r\n")
                conn.send(req, pieces=3, gap=0.01)
                st, _, body, wire = conn.read_response()
                conn.close()
                assert (st, len(body)) == (200, size)
                sent += conn.sent
                recv += wire
                n += 1
    return n, sent, recv


def test_check_lists_every_program_and_variant():
    """tapir check loads every program of both HTTP builds and the lifecycle feature here."""
    r = subprocess.run([TAPIR, "check"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [l.split(None, 3) for l in r.stdout.splitlines()
            if re.match(r"(sys_|sock_|http_|walk_|h2_|cgroup_|sched_|oom_|inet_)", l)]
    got = {(row[0], row[2] if row[1] == "http" else "") for row in rows}
    for variant in ("loop", "compat"):
        for sc in ("read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto",
                   "sendmsg", "sendfile64"):
            assert (f"sys_exit_{sc}", variant) in got and (f"sys_enter_{sc}", variant) in got
    assert ("walk_more", "compat") in got and ("h2_more", "compat") in got
    assert {("sock_recv", "loop"), ("sock_send", "loop"), ("http_sock_state", "loop"),
            ("http_sock_state", "compat")} <= got
    assert all(row[-1].strip() == "loaded" for row in rows
               if not row[0].startswith(("walk_more_", "h2_more_"))), r.stdout
    # The trampoline programs (fexit, and the compat build's walk_more_* for them): this host
    # refuses BPF trampolines (EPERM), and check says so without failing; the kernel matrix
    # runs them.
    fexit = [row for row in (l.split(None, 3) for l in r.stdout.splitlines())
             if row and row[0].startswith(("fexit_", "walk_more_", "h2_more_"))]
    assert {row[0] for row in fexit} >= {"fexit_tcp_sendmsg", "fexit_tcp_recvmsg4",
                                         "fexit_tcp_recvmsg5", "fexit_tcp_recvmsg6",
                                         "fexit_tcp_sendpage", "walk_more_sendmsg",
                                         "h2_more_sendmsg"}
    for row in fexit:
        assert row[-1].startswith(("loaded", "REFUSED", "kernel function not present",
                                   "tcp_recvmsg takes another")), row
    assert "request families (http): work (loop variant, skb hooks)" in r.stdout
    assert "socket-buffer hooks (--bpf-hooks skb): work" in r.stdout
    assert {("http_skb_in", "loop"), ("http_skb_out", "loop")} <= got


@pytest.mark.parametrize("args", [["--bpf-variant", "compat"], ["--bpf-hooks", "syscall"]],
                         ids=["compat", "syscall_hooks"])
def test_older_kernel_variants_count_exactly(tmp_path, cgroot, args):
    """What kernels before 6.3 run, forced here: the compat build (no bpf_loop, before 5.17)
    and the loop build on syscall hooks (no sock_{send,recv}_length). Every syscall family,
    requests in pieces and 6 KB header blocks, compared with the client's own bytes."""
    proc, port, cg = own_daemon(tmp_path, cgroot, "compat", *args)
    try:
        s = Scrape(metrics_text(port))
        if args[0] == "--bpf-variant":
            assert s.value("tapir_bpf_program_attached", program="walk_more",
                           variant="compat") == 1
            assert s.value("tapir_bpf_program_attached", variant="loop") == 0
        assert s.value("tapir_bpf_program_attached", program="sys_exit_read") == 1
        assert s.value("tapir_bpf_program_attached", program="sys_enter_close") == 0
        assert not s.select("tapir_bpf_program_attached", program="sock_recv")
        sport = free_port()
        srv = cg.popen([PY, os.path.join(SERVERS, "syscalls.py"), str(sport)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(sport, proc=srv)
        n, sent, recv = every_syscall_family(sport)
        s = settled(port, "compat", n)
        assert s.value(REQ, model_name="compat", status_code=200) == n
        assert s.value("baseten_request_size_bytes_sum", model_name="compat") == sent
        assert s.value("baseten_response_size_bytes_sum", model_name="compat") == recv
        assert s.value("tapir_parse_failures_total") == 0
        assert s.value("tapir_records_lost_total") == 0
    finally:
        stop(proc)
        cg.destroy()


def test_verifier_refusal_keeps_the_other_families(tmp_path, cgroot):
    """A program the verifier refuses (injected: TAPIR_TEST_VERIFIER_REFUSE) turns the HTTP
    feature off with the verifier's own verdict in the log and in the metrics; container CPU,
    restarts and the rest go on."""
    proc, port, cg = own_daemon(tmp_path, cgroot, "refused",
                                env={"TAPIR_TEST_VERIFIER_REFUSE": "1"})
    try:
        # 0.5 s of CPU, however long a loaded host takes to give it.
        burner = cg.popen([PY, "-c", "import time\nwhile time.process_time() < 0.5: pass\n"
                           "time.sleep(60)"])
        deadline = time.monotonic() + 15
        while True:
            s = Scrape(metrics_text(port))
            cpu = s.value("baseten_container_cpu_usage_seconds_total", model_name="refused")
            if cpu >= 0.4 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert cpu >= 0.4, "container CPU is not reported without the HTTP feature"
        assert s.value("tapir_bpf_program_attached", program="http_sock_state",
                       reason="verifier") == 0
        assert s.select("tapir_bpf_program_attached", program="sys_exit_read",
                        reason="object_refused")
        lc = s.select("tapir_bpf_program_attached", feature="lifecycle")
        assert lc and all(v == 1 for _, v in lc)
        assert s.select(REQ) == []  # no request series: nothing was measured
        burner.kill()
        burner.wait()
    finally:
        stop(proc)
        cg.destroy()
    log = (tmp_path / "log").read_text()
    assert "refused program 'http_sock_state'" in log, log
    assert re.search(r"verifier: R1 invalid mem access", log), log  # the verdict, not cut
    assert "Permission denied" not in log.split("refused program")[1].splitlines()[0]
    r = subprocess.run([TAPIR, "check"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, TAPIR_TEST_VERIFIER_REFUSE="1"))
    assert r.returncode == 1, r.stdout
    assert re.search(r"http_sock_state\s+http\s+loop\s+REFUSED: R1 invalid mem access", r.stdout)
    assert "CANNOT WORK" in r.stdout


def test_h2_walker_refused_keeps_http1(tmp_path, cgroot):
    """A verifier that refuses the compat build's HTTP/2 walker (injected:
    TAPIR_TEST_VERIFIER_REFUSE=h2) gets the compat build without it: HTTP/1.x counts, an HTTP/2
    connection counts ignored (http2), and the log says why."""
    proc, port, cg = own_daemon(tmp_path, cgroot, "noh2", "--bpf-variant", "compat",
                                env={"TAPIR_TEST_VERIFIER_REFUSE": "h2"})
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.txt").write_bytes(b"x" * 100)
    h2port = free_port()
    h2 = cg.popen(["nghttpd", "--no-tls", "-d", str(root), str(h2port)],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sport = free_port()
    srv = cg.popen([PY, os.path.join(SERVERS, "syscalls.py"), str(sport)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(h2port, h2)  # no probe: nghttpd's SETTINGS would count it http2
        wait_port(sport, proc=srv)
        s0 = Scrape(metrics_text(port))
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "--http2-prior-knowledge", f"http://127.0.0.1:{h2port}/a.txt"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert out == "200"
        conn = RawConn(sport)
        conn.send(get("/read/write/10"))
        assert conn.read_response()[0] == 200
        conn.close()
        s = settled(port, "noh2", 1)
        assert s.value(REQ, model_name="noh2") == 1  # the HTTP/1.1 request, not the HTTP/2 one
        assert s.value("tapir_ignored_connections_total", reason="http2") \
            == s0.value("tapir_ignored_connections_total", reason="http2") + 1
        assert s.value("tapir_bpf_program_attached", program="walk_more", variant="compat") == 1
        assert s.value("tapir_bpf_program_attached", program="h2_more") == 0
    finally:
        for p in (h2, srv):
            p.kill()
            p.wait()
        stop(proc)
        cg.destroy()
    log = (tmp_path / "log").read_text()
    assert "refused program 'h2_more'" in log, log
    assert "HTTP/2 not followed" in log, log


def test_refusal_names_the_refused_program_with_verifier_stats(tmp_path, cgroot):
    """With TAPIR_VERIFIER_STATS every program has a log of its own, and a failed load closes
    every program it loaded: the refusal names the program libbpf said failed (h2_more,
    injected), not the first one whose statistics were logged (walk_more)."""
    proc, _, cg = own_daemon(tmp_path, cgroot, "statsref", "--bpf-variant", "compat",
                             env={"TAPIR_TEST_VERIFIER_REFUSE": "h2",
                                  "TAPIR_VERIFIER_STATS": "1"})
    stop(proc)
    cg.destroy()
    log = (tmp_path / "log").read_text()
    assert "refused program 'h2_more'" in log, log
    assert "refused program 'walk_more'" not in log, log
    assert re.search(r"http: verifier: walk_more processed \d+ insns", log), log


def test_missing_btf_is_named(tmp_path):
    """Without /sys/kernel/btf/vmlinux (hidden in a private mount namespace) tapir and tapir
    check stop with a message naming the file."""
    cfg = tmp_path / "tapir.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{free_port()}"\n')
    for argv in ([TAPIR, "--config", str(cfg), "--pin-dir", "none"], [TAPIR, "check"]):
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh", *argv],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "kernel BTF not found at /sys/kernel/btf/vmlinux" in r.stderr, r.stderr


@pytest.mark.parametrize("args,why", [
    (["--bpf-hooks", "kprobe"], "--bpf-hooks wants auto, socket, fexit, syscall or skb"),
    (["--bpf-variant", "compat", "--bpf-hooks", "socket"], "socket needs the loop build"),
    (["--bpf-variant", "compat", "--bpf-hooks", "skb"], "skb needs the loop build"),
])
def test_bad_hook_choice_is_a_usage_error(args, why):
    r = subprocess.run([TAPIR, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    assert why in r.stderr
