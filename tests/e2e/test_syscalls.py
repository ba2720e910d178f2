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
    """The hook set the daemon chose, whole: on this kernel (6.3+) the socket hooks and no
    syscall tracepoint at all, unless the suite forces the syscall hooks or the compat build."""
    s = daemon.scrape()
    progs = s.select("tapir_bpf_program_attached")
    names = {l["program"] for l, _ in progs}
    syscall = (os.environ.get("TAPIR_E2E_BPF_HOOKS") == "syscall"
               or os.environ.get("TAPIR_E2E_BPF_VARIANT") == "compat")
    sys_progs = {f"sys_{e}_{sc}" for e in ("enter", "exit")
                 for sc in ("read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto",
                            "sendmsg", "sendfile64")}
    assert "http_sock_state" in names
    if syscall:
        assert sys_progs <= names
        assert not {"sock_recv", "sock_send"} & names
    else:
        assert {"sock_recv", "sock_send"} <= names
        assert not sys_progs & names, "a syscall tracepoint taxes every syscall of every process"
    detached = [l["program"] for l, v in progs if v != 1]
    assert detached == [], f"not attached on this kernel: {detached}"
