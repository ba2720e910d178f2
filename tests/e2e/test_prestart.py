# SPDX-License-Identifier: GPL-2.0
"""Requests in flight when tapir starts (a restart under load): each answer is counted as lost
before start, never silently dropped, and the connections are followed from their next
request."""
import os
import subprocess
import threading
import time

from client import RawConn, get, post
from conftest import (PY, SERVERS, TAPIR, Cgroup, Scrape, free_port, metrics_text, wait_port,
                      wait_serving)


def test_requests_in_flight_at_start_are_counted(tmp_path, cgroot):
    mount, rel = cgroot
    cg = Cgroup(f"{mount}{rel}/prestart")
    sport = free_port()
    srv = cg.popen([PY, "-m", "uvicorn", "--app-dir", SERVERS, "app:app", "--host", "127.0.0.1",
                    "--port", str(sport), "--log-level", "warning"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        wait_port(sport, proc=srv)
        # Five keep-alive connections with a 3 s request in flight on each, and one with a
        # 2 s request whose 3 MB upload is still being sent when the daemon starts.
        conns = [RawConn(sport) for _ in range(5)]
        for c in conns:
            c.send(get("/sleep?ms=3000"))
        upload = RawConn(sport)
        body = b"x" * (3 << 20)
        req = post("/predict", body)
        upload.send(req[:len(req) - (2 << 20)])
        port = free_port()
        cfg = tmp_path / "tapir.yaml"
        cfg.write_text(f'listen: "127.0.0.1:{port}"\ndeployments:\n'
                       f'  - cgroup: "{rel}/prestart"\n    labels: {{model_name: "prestart"}}\n')
        log = open(tmp_path / "log", "w")
        proc = subprocess.Popen([TAPIR, "--config", str(cfg), "--pin-dir", "none"], stdout=log,
                                stderr=subprocess.STDOUT)
        wait_serving(port, proc, tmp_path / "log")
        upload.send(req[len(req) - (2 << 20):], pieces=4, gap=0.05)
        for c in conns:
            assert c.read_response()[0] == 200
        assert upload.read_response()[0] == 200
        # The same connections go on: each of these is seen from its first byte.
        sent = 0
        for c in conns + [upload]:
            before = c.sent
            c.send(get("/status/201"))
            assert c.read_response()[0] == 201
            sent += c.sent - before
        deadline = time.monotonic() + 10
        while True:
            s = Scrape(metrics_text(port))
            if s.value("baseten_inference_requests_total", model_name="prestart") >= 6:
                break
            assert time.monotonic() < deadline, s.text
            time.sleep(0.1)
        time.sleep(0.5)
        s = Scrape(metrics_text(port))
        assert s.value("tapir_records_lost_total", reason="before_start") == 6
        assert s.value("baseten_inference_requests_total", model_name="prestart") == 6
        assert s.value("baseten_inference_requests_total", model_name="prestart",
                       status_code="201") == 6
        assert s.value("baseten_request_size_bytes_sum", model_name="prestart") == sent
        assert s.value("tapir_parse_failures_total") == 0
        for c in conns + [upload]:
            c.close()
    finally:
        if proc:
            proc.terminate()
            assert proc.wait(15) == 0
        srv.kill()
        srv.wait()
        cg.destroy()
