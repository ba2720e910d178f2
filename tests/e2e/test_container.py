# SPDX-License-Identifier: GPL-2.0
"""Container figures end to end: CPU against the kernel's own rusage, working set against a
known allocation, restarts and their reasons, readiness learned passively, and GPUs through the
real dlopen of an NVML (the fake in tests/fake_nvml, speaking NVML's C ABI)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from client import RawConn, get
from conftest import PY, free_port, wait_port

CPU = "baseten_container_cpu_usage_seconds_total"
MEM = "baseten_container_cpu_memory_working_set_bytes"
RESTARTS = "baseten_container_restarts_total"
EXITS = "tapir_container_exits_total"


def v1_dir(ctrl):
    """The test process's own cgroup in the v1 hierarchy of `ctrl`, or None on pure v2."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                with open("/proc/self/mountinfo") as m:
                    for ml in m:
                        left, _, right = ml.partition(" - ")
                        fs, _, opts = right.split()[:3]
                        if fs == "cgroup" and ctrl in opts.split(","):
                            return left.split()[4] + path
    return None


class MemoryCgroup:
    """Where the container's memory is accounted: a v1 memory cgroup beside the v2 one on
    hybrid hosts (created under the test's own), or the v2 cgroup itself."""

    def __init__(self, slot, name, limit=None):
        base = v1_dir("memory")
        self.v1 = os.path.join(base, name) if base else None
        if self.v1:
            os.makedirs(self.v1, exist_ok=True)
            if limit:
                with open(os.path.join(self.v1, "memory.limit_in_bytes"), "w") as f:
                    f.write(str(limit))
        elif limit:
            with open(os.path.join(slot.path, "memory.max"), "w") as f:
                f.write(str(limit))

    def enter(self):
        if self.v1:
            with open(os.path.join(self.v1, "cgroup.procs"), "w") as f:
                f.write("0")

    def destroy(self):
        if self.v1:
            for _ in range(50):
                try:
                    os.rmdir(self.v1)
                    return
                except OSError:
                    time.sleep(0.1)


def run_in(slot, code, mem=None, **kw):
    procs = os.path.join(slot.path, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write("0")
        if mem:
            mem.enter()

    return subprocess.Popen([PY, "-c", code], preexec_fn=enter, **kw)


def test_cpu_agrees_with_rusage(daemon, slot):
    burn = ("import time, resource\n"
            "t = time.process_time()\n"
            "while time.process_time() - t < 2.0: pass\n")
    before = os.times()
    p = run_in(slot, burn)
    p.wait()
    after = os.times()
    child = (after.children_user - before.children_user) + (after.children_system
                                                             - before.children_system)
    s = daemon.wait_for(lambda s: s.value(CPU, replica="replica0", model_name=slot.model) > 0,
                        what="cpu counter")
    got = s.value(CPU, replica="replica0", model_name=slot.model)
    assert child > 1.9
    assert abs(got - child) <= 0.02 * child, (got, child)


def test_working_set_matches_a_known_allocation(daemon, slot):
    mem = MemoryCgroup(slot, f"tapir-e2e-{os.getpid()}-{slot.model}")
    size = 400 << 20
    hold = (f"import sys, time\nb = b'x' * {size}\nprint('ready', flush=True)\n"
            "sys.stdin.read()\n")
    p = run_in(slot, hold, mem=mem, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        s = daemon.wait_for(lambda s: s.value(MEM, replica="replica0", model_name=slot.model)
                            > size * 0.9, what="working set")
        ws = s.value(MEM, replica="replica0", model_name=slot.model)
        assert abs(ws - size) <= 0.05 * size, (ws, size)
    finally:
        p.kill()
        p.wait()
        mem.destroy()


def test_restarts_and_exit_reasons(daemon, slot):
    mem = MemoryCgroup(slot, f"tapir-e2e-{os.getpid()}-oom", limit=64 << 20)
    m = dict(model_name=slot.model)

    def exits(reason):
        return lambda s: s.value(EXITS, reason=reason, replica="replica0", **m) == 1

    # 1. exit status 1
    assert run_in(slot, "raise SystemExit(1)").wait() == 1
    daemon.wait_for(exits("error"), what="exit 1 seen")
    # 2. kill -9 (a restart: a new main process after the first died)
    p = run_in(slot, "import time; time.sleep(60)")
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    daemon.wait_for(exits("signal"), what="kill -9 seen")
    # 3. OOM kill under a 64 MiB limit
    p = run_in(slot, "b = [bytearray(b'x' * (1 << 20)) for _ in range(512)]", mem=mem)
    assert p.wait() == -signal.SIGKILL
    daemon.wait_for(exits("oom"), what="oom kill seen")
    # 4. clean exit, then the container comes back
    assert run_in(slot, "pass", mem=mem).wait() == 0
    daemon.wait_for(exits("clean"), what="clean exit seen")
    p = run_in(slot, "import time; time.sleep(60)")
    s = daemon.wait_for(lambda s: s.value(RESTARTS, **m) == 4, what="4 restarts")
    assert s.value(EXITS, replica="replica0", **m) == 4
    p.kill()
    p.wait()
    mem.destroy()


def test_readiness_starting_ready_not_ready_unknown(daemon, slot, start):
    m = dict(model_name=slot.model)

    def state(s):
        return (s.value("baseten_replicas_starting", **m), s.value("baseten_replicas_active", **m),
                s.value("baseten_pod_readiness", condition="true", **m),
                s.value("baseten_pod_readiness", condition="false", **m),
                s.value("baseten_pod_readiness", condition="unknown", **m))

    # The cgroup exists, nothing listens yet: starting, not ready.
    daemon.wait_for(lambda s: state(s) == (1, 0, 0, 1, 0), what="starting")
    port, proc = start("uvicorn")
    s = daemon.scrape()
    assert state(s)[:2] == (1, 0)  # listening alone is not ready: no probe answered yet
    conn = RawConn(port)
    conn.send(get("/v1/models/model"))
    assert conn.read_response()[0] == 200
    conn.close()
    daemon.wait_for(lambda s: state(s) == (0, 1, 1, 0, 0), what="ready")
    # A failing request that is not the probe does not change the probe's verdict.
    conn = RawConn(port)
    conn.send(get("/status/500"))
    assert conn.read_response()[0] == 500
    conn.close()
    assert state(daemon.scrape()) == (0, 1, 1, 0, 0)
    proc.terminate()
    proc.wait()
    daemon.wait_for(lambda s: state(s) == (0, 0, 0, 1, 0), what="not ready after it stopped")
    # No signal for unknown_after_s (4 s in the test config): unknown.
    daemon.wait_for(lambda s: state(s) == (0, 0, 0, 0, 1), timeout=10, what="unknown")


def test_gpu_figures_through_nvml(daemon, slot):
    procs = [run_in(slot, "import time; time.sleep(60)") for _ in range(3)]
    time.sleep(0.2)
    a, b, c = (p.pid for p in procs)
    outside = os.getpid()  # a process of no watched cgroup: never attributed
    script = (f"device 0 GPU-00000000-tapir-test-0 util=40\n"
              f"device 1 GPU-00000000-tapir-test-1 util=77\n"
              f"proc 0 pid={a} mem_mib=1024 sm=30\n"
              f"proc 0 pid={b} mem_mib=512 sm=25\n"
              f"proc 1 pid={c} mem_mib=2048\n"
              f"proc 1 pid={outside} mem_mib=999 sm=99\n")
    with open(daemon.nvml_script, "w") as f:
        f.write(script)
    g = dict(model_name=slot.model, replica="replica0")
    try:
        s = daemon.wait_for(lambda s: s.value("baseten_gpu_memory_used", gpu="1", **g) == 2048,
                            what="gpu series")
        assert s.value("baseten_gpu_memory_used", gpu="0", **g) == 1536
        assert s.value("baseten_gpu_utilization", gpu="0", **g) == 55
        # No per-process sample on GPU 1: the device's own figure stands in.
        assert s.value("baseten_gpu_utilization", gpu="1", **g) == 77
        assert len(s.select("baseten_gpu_memory_used", model_name=slot.model)) == 2
        assert sum(v for l, v in s.select("baseten_gpu_memory_used")) == 1536 + 2048
        # Processes gone from the GPU: their series go too.
        with open(daemon.nvml_script, "w") as f:
            f.write("device 0 GPU-00000000-tapir-test-0 util=0\n"
                    "device 1 GPU-00000000-tapir-test-1 util=0\n")
        daemon.wait_for(lambda s: not s.select("baseten_gpu_memory_used", model_name=slot.model),
                        what="gpu series gone")
    finally:
        for p in procs:
            p.kill()
            p.wait()
