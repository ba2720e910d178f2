# SPDX-License-Identifier: GPL-2.0
"""Scrapes and the drain of records do not wait for each other: under wrk at saturation, with
1,000 cgroups created and removed and a scrape every 100 ms, every request nginx served is
counted, nothing is lost, and every scrape answers within its bounded wait."""
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

from conftest import (NGINX_CONF, TAPIR, Cgroup, Scrape, free_port, metrics_text, rmdir_retry,
                      stub_requests, wait_port, wait_serving)

def test_scrapes_during_churn_and_saturation(tmp_path, cgroot):
    mount, rel = cgroot
    base = f"{mount}{rel}/scrape-drain"
    os.makedirs(base)
    srv_cg = Cgroup(f"{base}/nginx")
    tmp = tempfile.mkdtemp(prefix="tapir-sd-")
    port, nport = free_port(), free_port()
    cfg = tmp_path / "tapir.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{port}"\n'
                   f'deployments:\n  - cgroup: "{rel}/scrape-drain/*"\n')
    log = open(tmp_path / "log", "w")
    tapir = subprocess.Popen([TAPIR, "--config", str(cfg), "--pin-dir", "none"], stdout=log,
                             stderr=subprocess.STDOUT)
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, port=nport))
    nginx = srv_cg.popen(["nginx", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"), "-g",
                          "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latencies, stop = [], threading.Event()
    churned = [0]

    def scraper():
        while not stop.is_set():
            t0 = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                r.read()
            latencies.append(time.monotonic() - t0)
            time.sleep(0.1)

    def churner():
        for i in range(1000):
            os.mkdir(f"{base}/c{i}")
        for i in range(1000):
            rmdir_retry(f"{base}/c{i}")
            churned[0] += 1

    try:
        wait_port(nport, proc=nginx)
        wait_serving(port, tapir, tmp_path / "log")
        time.sleep(1)
        s0 = Scrape(metrics_text(port))
        served0 = stub_requests(nport)
        threads = [threading.Thread(target=scraper), threading.Thread(target=churner)]
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", "-d8s", f"http://127.0.0.1:{nport}/ok"],
                               stdout=subprocess.PIPE, text=True)
        for t in threads:
            t.start()
        out = wrk.communicate(timeout=60)[0]
        threads[1].join(timeout=120)
        stop.set()
        threads[0].join(timeout=30)
        assert churned[0] == 1000
        made = int(re.search(r"(\d+) requests in", out).group(1))
        served = stub_requests(nport) - served0 - 1  # this stub request not counted
        time.sleep(1.5)
        s = Scrape(metrics_text(port))
        # Both status requests went through tapir too: take them out.
        seen = (s.value("baseten_inference_requests_total")
                - s0.value("baseten_inference_requests_total") - 2)
        lost = s.value("tapir_records_lost_total") - s0.value("tapir_records_lost_total")
        p50, worst = statistics.median(latencies), max(latencies)
        print(f"\nwrk made {made}, nginx read {served}, tapir counted {seen}, lost {lost}; "
              f"{len(latencies)} scrapes during 1,000 cgroups churned: p50 "
              f"{p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms")
        assert made > 10000
        assert lost == 0
        assert seen == served, (seen, served)
        assert s.value("tapir_parse_failures_total") == 0
        assert worst < 2.5, latencies  # never longer than the bounded wait for a fresh one
        assert len(latencies) >= 40
    finally:
        stop.set()
        tapir.terminate()
        assert tapir.wait(15) == 0
        nginx.kill()
        nginx.wait()
        srv_cg.destroy()
        for i in range(1000):
            if os.path.isdir(f"{base}/c{i}"):
                rmdir_retry(f"{base}/c{i}")
        os.rmdir(base)
        shutil.rmtree(tmp, ignore_errors=True)
