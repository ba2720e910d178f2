# SPDX-License-Identifier: GPL-2.0
"""Cgroup trees laid out as the kubelet lays them out (systemd and cgroupfs drivers; containerd,
CRI-O and Docker), with real processes inside: every container is resolved to its pod and
container, named by its short id on its request series, and the pause sandbox is not taken for
a container."""
import os
import shutil
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

from client import RawConn, get
from conftest import PY, TAPIR, free_port, metrics_text, rmdir_retry, spawn_tapir, wait_port


def uid(i):
    return f"5c6c7{i:03d}-b240-4c1c-9b6f-6bcd5d6e0aa{i % 10}"


def cid(i):
    return f"{i:02x}" * 32


def layouts():
    """(pod-relative path, container leaf, sandbox leaf, expected runtime, qos)"""
    out = []
    for i, (rt, prefix, suffix) in enumerate((("containerd", "cri-containerd-", ".scope"),
                                              ("cri-o", "crio-", ".scope"),
                                              ("docker", "docker-", ".scope"))):
        u = uid(i)
        pod = (f"kubepods.slice/kubepods-burstable.slice/"
               f"kubepods-burstable-pod{u.replace('-', '_')}.slice")
        out.append((u, pod, f"{prefix}{cid(i)}{suffix}", f"{prefix}{cid(i + 10)}{suffix}", rt,
                    "burstable"))
    for i, (rt, leaf) in enumerate((("cri-o", "crio-{}"), ("docker", "docker-{}"),
                                    ("", "{}")), start=3):
        u = uid(i)
        pod = f"kubepods/besteffort/pod{u}"
        out.append((u, pod, leaf.format(cid(i)), leaf.format(cid(i + 10)), rt, "besteffort"))
    return out


def test_kubelet_trees_resolve_pods_containers_and_ignore_the_sandbox(cgroot, tmp_path):
    mount, rel = cgroot
    root = f"{mount}{rel}/k8s"
    pause = tmp_path / "pause"
    shutil.copy("/bin/sleep", pause)  # a process named "pause", as the sandbox's is
    procs, dirs, servers = [], [], []
    mport = free_port()
    cfg = tmp_path / "k8s.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{mport}"\n')  # no rules: watch everything
    pin = f"/sys/fs/bpf/tapir-k8s-{os.getpid()}"
    daemon = spawn_tapir(tmp_path, cfg, pin_dir=pin)

    def spawn(cg, argv):
        def enter():
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write("0")
        p = subprocess.Popen(argv, preexec_fn=enter, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        return p

    try:
        wait_port(mport, timeout=60, proc=daemon)
        for u, pod, leaf, sandbox, rt, qos in layouts():
            c, s = f"{root}/{pod}/{leaf}", f"{root}/{pod}/{sandbox}"
            os.makedirs(c)
            os.makedirs(s)
            dirs += [c, s]
            port = free_port()
            spawn(s, [str(pause), "300"])
            srv = spawn(c, [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                            "--directory", str(tmp_path)])
            wait_port(port, proc=srv)
            servers.append((u, leaf, rt, qos, port))
        time.sleep(0.5)
        for _, _, _, _, port in servers:
            conn = RawConn(port)
            conn.send(get("/"))
            assert conn.read_response()[0] == 200
            conn.close()
        deadline = time.monotonic() + 10
        while True:
            text = metrics_text(mport)
            names = {s.labels["model_name"] for f in text_string_to_metric_families(text)
                     if f.name == "baseten_inference_requests" for s in f.samples}
            if len(names) >= len(servers) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Each container's requests carry its 12-hex short id as model name and replica.
        assert names >= {cid(i)[:12] for i in range(len(servers))}, names
        out = subprocess.run([TAPIR, "inspect", "--config", str(cfg), "--pin-dir", pin],
                             capture_output=True, text=True, check=True).stdout
        rows = {l.split()[1]: l for l in out.splitlines()[1:]}
        for i, (u, pod, leaf, sandbox, rt, qos) in enumerate(layouts()):
            path = f"{rel}/k8s/{pod}"
            row = rows[f"{path}/{leaf}"]
            assert f"pod={u} qos={qos} container={cid(i)[:12]}" in row, row
            if rt:
                assert f"runtime={rt}" in row, row
            assert f"sandbox pod={u}" in rows[f"{path}/{sandbox}"], rows[f"{path}/{sandbox}"]
        # The sandbox is no replica: no container series for it.
        assert cid(10)[:12] not in text
    finally:
        for p in procs:
            p.kill()
            p.wait()
        daemon.terminate()
        daemon.wait(10)
        for d in sorted(dirs + [f"{root}/{pod}" for _, pod, *_ in layouts()], key=len,
                        reverse=True):
            rmdir_retry(d)
        for dirpath, dirnames, _ in os.walk(root, topdown=False):
            for d in dirnames:
                os.rmdir(os.path.join(dirpath, d))
        os.rmdir(root)
