# SPDX-License-Identifier: GPL-2.0
"""Fixtures for end-to-end tests: real cgroups, a real tapir daemon, real servers, scrapes."""
import itertools
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from client import RawConn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TAPIR_BIN: another build of the daemon under test (make tsan runs the suite on one).
TAPIR = os.environ.get("TAPIR_BIN") or os.path.join(ROOT, "build", "tapir")
SLOTS = 96  # deployment rules in the session daemon; one per test that needs isolation


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    raise RuntimeError("no cgroup v2 hierarchy mounted")


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    raise RuntimeError("not in a cgroup v2 hierarchy")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0, host="127.0.0.1", proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port}")


def tcp_states(port):
    """States (hex, as /proc/net/tcp writes them) of the IPv4 sockets bound to local `port`."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                out.append(fields[3])
    return out


def wait_listening(port, proc, timeout=15.0):
    """Wait for a listening socket without connecting to it: a probe connection would take a
    connection-table entry of its own, and counts (an HTTP/2 server's SETTINGS go out on it)
    that may land after a test's first scrape."""
    deadline = time.monotonic() + timeout
    while "0A" not in tcp_states(port):
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"nothing listening on {port}"
        time.sleep(0.05)


def spawn_tapir(tmp_path, cfg, *args, pin_dir="none"):
    """Another daemon with a config of the test's own, logging to tmp_path/log."""
    log = open(tmp_path / "log", "w")
    return subprocess.Popen([TAPIR, "--config", str(cfg), "--pin-dir", pin_dir, *args],
                            stdout=log, stderr=subprocess.STDOUT)


def stop_proc(p):
    """SIGTERM, then SIGKILL after 5 s."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# nginx with keep-alive, a 200 and its own request count (stub_status), for tests that compare
# tapir with what nginx says it served.
NGINX_CONF = """user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /ok {{ return 200 "ok\\n"; }}
        location = /stub {{ stub_status; }}
    }}
}}
"""



def stub_requests(port):
    """nginx's own count of the requests it has read (this one included), asked on a
    connection that nginx closes before the answer reaches us."""
    conn = RawConn(port)
    conn.send(b"GET /stub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st, _, body, _ = conn.read_response()
    assert st == 200
    assert conn.buf == b"" and conn.sock.recv(1) == b""  # then nginx closed
    conn.close()
    return int(body.decode().splitlines()[2].split()[2])


def rmdir_retry(path, tries=100):
    """rmdir a cgroup whose last task may still be leaving it (EBUSY for a moment)."""
    for _ in range(tries):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    os.rmdir(path)


def metrics_text(port):
    """GET /metrics of the daemon on @port ("" when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""


def wait_serving(port, proc, log_path=None, timeout=60.0):
    """Wait until the daemon @proc serves /metrics on @port; fail with its log if it exits."""
    deadline = time.monotonic() + timeout
    while "tapir_build_info" not in metrics_text(port):
        log = open(log_path).read() if log_path else ""
        assert proc.poll() is None, f"tapir exited with {proc.returncode}:\n{log}"
        assert time.monotonic() < deadline, f"tapir did not serve /metrics:\n{log}"
        time.sleep(0.1)


class Scrape:
    """One parsed /metrics page: samples keyed by name and label set."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        self.names = set()  # every sample name the exposition declares, with or without samples
        for fam in text_string_to_metric_families(text):
            self.names.add(fam.name)
            if fam.type == "counter":
                self.names.add(fam.name + "_total")
            elif fam.type == "histogram":
                self.names.update(fam.name + x for x in ("_bucket", "_sum", "_count"))
            for s in fam.samples:
                self.samples.append((s.name, s.labels, s.value))

    def select(self, name, **labels):
        return [
            (l, v)
            for n, l, v in self.samples
            if n == name and all(l.get(k) == str(w) for k, w in labels.items())
        ]

    def value(self, name, **labels):
        """Sum of the matching samples: 0 when the family has none of them, an error when
        the family itself is missing (a before/after check must not pass on a vanished
        family)."""
        if name not in self.names:
            raise KeyError(f"metric family of {name} is not in the exposition")
        return sum(v for _, v in self.select(name, **labels))

    def bucket(self, name, le, **labels):
        return self.value(name + "_bucket", le=le, **labels)


def hooks_of(scrape):
    """The hook set a daemon chose, from the programs it has attached: skb, socket, fexit or
    syscall."""
    progs = {l["program"] for l, v in scrape.select("tapir_bpf_program_attached") if v == 1}
    if "http_skb_in" in progs:
        return "skb"
    if "sock_recv" in progs:
        return "socket"
    if any(p.startswith("fexit_") for p in progs):
        return "fexit"
    return "syscall"


def other_hooks():
    """The hooks a module's second daemon runs its tests on besides the suite's: the socket
    hooks when the suite's daemon is on the socket-buffer hooks (what auto picks on the loop
    build), else the socket-buffer hooks."""
    return "socket" if os.environ.get("TAPIR_E2E_BPF_HOOKS", "auto") in ("auto", "skb") else "skb"


class Daemon:
    def __init__(self, base_rel, workdir, hooks=None):
        self.port = free_port()
        self.base_rel = base_rel
        self.config = os.path.join(workdir, "tapir.yaml")
        # The NVML the daemon loads is tests/fake_nvml, scripted through this file.
        self.nvml_script = os.path.join(workdir, "nvml.txt")
        with open(self.nvml_script, "w") as f:
            f.write("device 0 GPU-00000000-tapir-test-0 util=0\n"
                    "device 1 GPU-00000000-tapir-test-1 util=0\n")
        lines = [f'listen: "127.0.0.1:{self.port}"',
                 "readiness:", "  unknown_after_s: 4",
                 "gpu:", f'  nvml_library: "{ROOT}/build/tests/libnvidia-ml.so.1"',
                 "deployments:"]
        for i in range(SLOTS):
            lines += [
                f'  - cgroup: "{base_rel}/slot{i}/*"',
                "    labels:",
                f'      model_id: "mid-{i}"',
                f'      model_name: "slot{i}"',
                f'      deployment_id: "dep-{i}"',
                '      environment: "production"',
                '      rollout_phase: "stable"',
                "    env:",
                "      model_id: TAPIR_TEST_MODEL_ID",
                "      deployment_id: TAPIR_TEST_DEPLOYMENT_ID",
            ]
        # test_outbound.py: its server on 127.0.0.3 at this port is "model-api" (address and
        # port), any server's /v1/predict... is "predict" (a path), any on ::1 "loopback6".
        self.outbound_port = free_port()
        lines += ["outbound:", "  destinations:",
                  '    - name: "model-api"', '      address: "127.0.0.3"',
                  f"      port: {self.outbound_port}",
                  '    - name: "predict"', '      path: "/v1/predict"',
                  '    - name: "loopback6"', '      address: "::1"']
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(workdir, "tapir.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, TAPIR_FAKE_NVML=self.nvml_script)
        self.pin_dir = f"/sys/fs/bpf/tapir-e2e-{os.getpid()}{'-' + hooks if hooks else ''}"
        # TAPIR_E2E_BPF_VARIANT=compat runs the whole suite on the compat build, and
        # TAPIR_E2E_BPF_HOOKS=syscall on the syscall hooks; @hooks: a second daemon's, for
        # a module that runs its tests on those hooks too (test_h2.py).
        variant = os.environ.get("TAPIR_E2E_BPF_VARIANT", "auto")
        hooks = hooks or os.environ.get("TAPIR_E2E_BPF_HOOKS", "auto")
        self.proc = subprocess.Popen([TAPIR, "--config", self.config, "--pin-dir", self.pin_dir,
                                      "--bpf-variant", variant, "--bpf-hooks", hooks],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("tapir exited:\n" + open(self.log_path).read())
            try:
                if "tapir_bpf_program_attached" in self.scrape_text():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("tapir did not come up:\n" + open(self.log_path).read())
            time.sleep(0.1)

    def scrape_text(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            return r.read().decode()

    def scrape(self):
        return Scrape(self.scrape_text())

    def hooks(self):
        """The hook set this daemon chose (hooks_of())."""
        return hooks_of(self.scrape())

    def wait_for(self, pred, timeout=10.0, what="condition"):
        """Scrape until pred(scrape) is true; returns the last scrape."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.scrape()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last scrape:\n"
                                     + "\n".join(l for l in s.text.splitlines()
                                                 if not l.startswith("#") and "_bucket" not in l))
            time.sleep(0.1)

    def settle(self, model, name="baseten_inference_requests_total", quiet=0.5, timeout=15.0):
        """Wait until a model's request count stops moving; returns the last scrape."""
        last, since = None, time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            s = self.scrape()
            v = s.value(name, model_name=model)
            if v != last:
                last, since = v, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return s
            if time.monotonic() > deadline:
                return s
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Cgroup:
    """A cgroup v2 directory created for a test, removed with everything in it afterwards."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)

    def procs(self):
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]

    def popen(self, argv, env=None, **kw):
        procs = os.path.join(self.path, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write("0")

        return subprocess.Popen(argv, preexec_fn=enter, env=env, **kw)

    def destroy(self):
        for _ in range(50):
            pids = self.procs()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        os.rmdir(self.path)


@pytest.fixture(scope="session")
def cgroot():
    mount = cgroup2_mount()
    rel = os.path.join(own_cgroup(), f"tapir-e2e-{os.getpid()}")
    path = mount + rel
    os.makedirs(path)
    yield mount, rel
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        for d in dirnames:
            Cgroup(os.path.join(dirpath, d)).destroy()
    os.rmdir(path)


@pytest.fixture(scope="session")
def daemon(cgroot, tmp_path_factory):
    _, rel = cgroot
    d = Daemon(rel, str(tmp_path_factory.mktemp("tapir")))
    yield d
    d.stop()
    assert d.proc.returncode == 0, open(d.log_path).read()


_slots = itertools.count()


@pytest.fixture
def slot(cgroot, daemon):
    """A fresh deployment (model_name "slotN") with a container cgroup inside it."""
    mount, rel = cgroot
    i = next(_slots)
    assert i < SLOTS, "raise SLOTS in conftest.py"
    os.makedirs(f"{mount}{rel}/slot{i}", exist_ok=True)
    before = daemon.scrape().value("tapir_watched_cgroups")
    cg = Cgroup(f"{mount}{rel}/slot{i}/replica0")
    cg.model = f"slot{i}"
    cg.index = i
    # The daemon learns of the cgroup from cgroup_mkdir; wait until it is watched.
    daemon.wait_for(lambda s: s.value("tapir_watched_cgroups") >= before + 1,
                    what="cgroup watched")
    yield cg
    cg.destroy()
    os.rmdir(f"{mount}{rel}/slot{i}")
    daemon.wait_for(lambda s: s.value("tapir_watched_cgroups") <= before, what="cgroup dropped")


SERVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers")
PY = "/usr/bin/python3"  # Debian's python: its fastapi/uvicorn/prometheus_client


@pytest.fixture
def start(slot):
    """start(kind, **opts) -> (port, proc): a real server inside the slot's cgroup."""
    procs = []
    tmp = tempfile.mkdtemp(prefix="tapir-srv-")

    def _start(kind, docroot=None, env=None, **opts):
        port = free_port()
        log = open(os.path.join(tmp, f"{kind}-{port}.log"), "w")
        if kind == "http.server":
            argv = [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                    "--directory", docroot or tmp]
        elif kind == "uvicorn":
            argv = [PY, "-m", "uvicorn", "--app-dir", SERVERS, "app:app", "--host",
                    "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            argv += opts.get("extra", [])
        elif kind == "nginx":
            conf = os.path.join(tmp, f"nginx-{port}.conf")
            with open(os.path.join(SERVERS, "nginx.conf.in")) as f:
                text = f.read()
            text = text.replace("@PORT@", str(port)).replace("@ROOT@", docroot or tmp)
            text = text.replace("@TMP@", tmp).replace("@UPSTREAM@", str(opts.get("upstream", 1)))
            with open(conf, "w") as f:
                f.write(text)
            argv = ["nginx", "-p", tmp, "-c", conf, "-g", "daemon off;"]
        elif kind == "syscalls":
            argv = [PY, os.path.join(SERVERS, "syscalls.py"), str(port), *opts.get("extra", [])]
        elif kind == "ws":
            argv = [PY, os.path.join(SERVERS, "ws.py"), str(port)]
        elif kind == "split":
            argv = [PY, os.path.join(SERVERS, "split.py"), str(port)]
        elif kind == "node":
            argv = ["node", os.path.join(SERVERS, "server.js"), str(port)]
        else:
            raise ValueError(kind)
        p = slot.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                       env=dict(os.environ, **env) if env else None)
        procs.append(p)
        wait_port(port, proc=p)
        return port, p

    yield _start
    for p in procs:
        stop_proc(p)
