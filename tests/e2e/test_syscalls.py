# SPDX-License-Identifier: GPL-2.0
"""Every syscall family tapir hooks, driven by a real server: counts and bytes must be exact
whichever way the server reads its requests and writes its responses."""
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
    s = daemon.scrape()
    progs = s.select("tapir_bpf_program_attached")
    names = {l["program"] for l, _ in progs}
    for sc in ("read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto", "sendmsg",
               "sendfile64"):
        assert f"sys_enter_{sc}" in names and f"sys_exit_{sc}" in names
    assert {"sys_exit_accept", "sys_exit_accept4", "sys_enter_close"} <= names
    detached = [l["program"] for l, v in progs if v != 1]
    assert detached == [], f"not attached on this kernel: {detached}"
