# SPDX-License-Identifier: GPL-2.0
"""Every syscall family tapir hooks, driven by a real server: counts and bytes must be exact
whichever way the server reads its requests and writes its responses."""
import os

import pytest

from client import RawConn, get

READERS = ["read", "readv", "recv", "recvmsg"]
WRITERS = ["write", "writev", "send", "sendmsg", "sendfile"]
REQ = "baseten_inference_requests_total"


def test_every_reader_and_writer(daemon, slot, start):
    port, _ = start("syscalls")
    failures = daemon.scrape().value("tapir_parse_failures_total")
    sent = recv = n = 0
    for rd in READERS:
        for wr in WRITERS:
            for size in (0, 100, 70000):
                conn = RawConn(port)
                conn.send(get(f"/{rd}/{wr}/{size}"), pieces=3, gap=0.01)
                st, headers, body, wire = conn.read_response()
                conn.close()
                assert (st, len(body), headers["x-reader"]) == (200, size, rd)
                sent += conn.sent
                recv += wire
                n += 1
    s = daemon.wait_for(lambda s: s.value(REQ, model_name=slot.model) >= n, what=f"{n} requests")
    s = daemon.settle(slot.model)
    assert s.value(REQ, model_name=slot.model, status_code=200) == n
    assert s.value("baseten_request_size_bytes_sum", model_name=slot.model) == sent
    assert s.value("baseten_response_size_bytes_sum", model_name=slot.model) == recv
    assert s.value("tapir_parse_failures_total") == failures


def test_every_program_is_attached_on_this_kernel(daemon):
    """The hook set the daemon chose, whole: on this kernel (5.17+, cgroup v2) the socket-buffer
    hooks, with neither the socket hooks nor any syscall tracepoint (those run for every process);
    the socket hooks (6.3+) when the suite forces them; the syscall tracepoints when it forces
    those or the compat build."""
    s = daemon.scrape()
    progs = s.select("tapir_bpf_program_attached")
    names = {l["program"] for l, _ in progs}
    forced = os.environ.get("TAPIR_E2E_BPF_HOOKS", "auto")
    if os.environ.get("TAPIR_E2E_BPF_VARIANT") == "compat":
        forced = "syscall"
    sys_progs = {f"sys_{e}_{sc}" for e in ("enter", "exit")
                 for sc in ("read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto",
                            "sendmsg", "sendfile64")}
    sock_progs = {"sock_recv", "sock_send"}
    fexit_progs = {"fexit_tcp_sendmsg"}
    skb_progs = {"http_skb_in", "http_skb_out"}
    assert "http_sock_state" in names
    want = {"syscall": sys_progs, "socket": sock_progs, "fexit": fexit_progs}.get(forced,
                                                                              skb_progs)
    assert want <= names, f"--bpf-hooks {forced}: {sorted(names)}"
    for other in (sys_progs, sock_progs, fexit_progs, skb_progs):
        if other is not want:
            assert not other & names, f"{sorted(other & names)} beside the {forced} hooks"
    detached = [l["program"] for l, v in progs if v != 1]
    assert detached == [], f"not attached on this kernel: {detached}"
