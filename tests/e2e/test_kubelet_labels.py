# SPDX-License-Identifier: GPL-2.0
"""Pod metadata as a label source, end to end: a kubelet stand-in serves a /pods document over
HTTPS with a bearer token (the only stand-in: a kubelet cannot run here), a real server runs in
a kubelet-style container cgroup of that pod, and its request series carry the pod's labels
and annotations as configured. With the kubelet gone, the other sources still label new
containers and the failures are counted."""
import json
import os
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

from client import RawConn, get
from conftest import PY, free_port, metrics_text, rmdir_retry, spawn_tapir, wait_port
from test_kubelet_client import TOKEN, Kubelet, certs  # noqa: F401 (certs is a fixture)

UID = "7d2f0c1e-4b5a-4c3d-9e8f-0a1b2c3d4e5f"
CID = "ab" * 32


def pod_list(uid=UID, ready="True"):
    return json.dumps({"kind": "PodList", "apiVersion": "v1", "items": [{
        "metadata": {"name": "vllm-llama-7b-6d9f-x2k", "namespace": "org-1", "uid": uid,
                     "labels": {"baseten.co/model-id": "m-llama", "app": "vllm"},
                     "annotations": {"baseten.co/deployment-id": "dep-42",
                                     "baseten.co/note": 'say "hi"\nback\\slash'}},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": ready}],
                   "containerStatuses": [{"name": "model", "ready": True,
                                          "containerID": f"containerd://{CID}"}]}}]}).encode()


def series(port, model_filter=None):
    text = metrics_text(port)
    out = []
    for f in text_string_to_metric_families(text):
        if f.name == "baseten_inference_requests":
            out += [s.labels for s in f.samples if s.name.endswith("_total")]
    return text, out


def test_pod_labels_and_annotations_label_requests(cgroot, certs, tmp_path):  # noqa: F811
    mount, rel = cgroot
    pod = (f"{rel}/kl/kubepods.slice/kubepods-burstable.slice/"
           f"kubepods-burstable-pod{UID.replace('-', '_')}.slice")
    container = f"{mount}{pod}/cri-containerd-{CID}.scope"
    other = f"{mount}{rel}/kl/plain/web"
    os.makedirs(container)
    os.makedirs(other)
    kubelet = Kubelet(tls=certs[0], token=TOKEN)
    kubelet.body = pod_list()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    mport = free_port()
    cfg = tmp_path / "k.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{mport}"\n'
                   "deployments:\n"
                   f'  - cgroup: "{rel}/kl/kubepods.slice/*/*"\n'
                   '    labels: {environment: "production", model_name: "from-rule"}\n'
                   f'  - cgroup: "{rel}/kl/plain/*"\n'
                   '    labels: {model_name: "plain-web"}\n'
                   "kubernetes:\n"
                   f'  kubelet_url: "https://127.0.0.1:{kubelet.port}/pods"\n'
                   f'  token_file: "{token}"\n'
                   "  insecure: true\n"
                   "  refresh_s: 1\n"
                   "  labels:\n"
                   '    model_id: "label:baseten.co/model-id"\n'
                   '    model_name: "label:app"\n'
                   '    deployment_id: "annotation:baseten.co/deployment-id"\n'
                   '    rollout_phase: "annotation:baseten.co/note"\n')
    daemon = spawn_tapir(tmp_path, cfg)
    procs = []

    def serve(cg):
        port = free_port()

        def enter():
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write("0")
        p = subprocess.Popen([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                              "--directory", str(tmp_path)], preexec_fn=enter,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_port(port, proc=p)
        return port

    def request(port):
        conn = RawConn(port)
        conn.send(get("/"))
        assert conn.read_response()[0] == 200
        conn.close()

    def wait_series(pred, what):
        deadline = time.monotonic() + 15
        while True:
            text, rows = series(mport)
            if pred(rows) or time.monotonic() > deadline:
                return text, rows
            time.sleep(0.2)

    try:
        wait_port(mport, timeout=60, proc=daemon)
        port = serve(container)
        time.sleep(1.5)  # a fetch has come and gone: the pod is known
        request(port)
        text, rows = wait_series(lambda r: any(l["model_name"] == "vllm" for l in r), "pod")
        mine = [l for l in rows if l["model_name"] == "vllm"]
        assert mine, text
        assert mine[0]["model_id"] == "m-llama"
        assert mine[0]["deployment_id"] == "dep-42"
        assert mine[0]["rollout_phase"] == 'say "hi"\nback\\slash'
        assert mine[0]["environment"] == "production"  # static, where the pod says nothing
        # The rule matches pods: the pod is the replica, named after the pod.
        deadline = time.monotonic() + 10
        while 'replica="vllm-llama-7b-6d9f-x2k"' not in text and time.monotonic() < deadline:
            time.sleep(0.3)
            text = metrics_text(mport)
        cpu = [s for f in text_string_to_metric_families(text)
               if f.name == "baseten_container_cpu_usage_seconds" for s in f.samples
               if s.labels["replica"] == "vllm-llama-7b-6d9f-x2k"]
        assert cpu and cpu[0].labels["model_id"] == "m-llama", text
        assert kubelet.seen and all(a == f"Bearer {TOKEN}" for a in kubelet.seen)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr

        # Readiness: the pod listens and answered 2xx, so ready; then the kubelet says the pod
        # is not Ready, and the kubelet wins.
        def readiness(cond):
            fams = {f.name: f for f in text_string_to_metric_families(metrics_text(mport))}
            return sum(s.value for s in fams["baseten_pod_readiness"].samples
                       if s.labels["model_name"] == "vllm" and s.labels["condition"] == cond)

        deadline = time.monotonic() + 10
        while readiness("true") != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert readiness("true") == 1
        kubelet.body = pod_list(ready="False")
        deadline = time.monotonic() + 10
        while readiness("false") != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (readiness("true"), readiness("false")) == (0, 1)
        # The kubelet turns us away (then goes away): fetches fail and are counted; the other
        # sources still work. (Its handler threads would otherwise keep serving the
        # keep-alive connection the client holds.)
        kubelet.token = "not-ours-any-more"
        kubelet.stop()
        port2 = serve(other)
        request(port2)
        text, rows = wait_series(lambda r: any(l["model_name"] == "plain-web" for l in r),
                                 "plain")
        assert any(l["model_name"] == "plain-web" for l in rows), text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            fams = {f.name: f for f in text_string_to_metric_families(metrics_text(mport))}
            failed = [s.value for s in fams["tapir_kubelet_fetches"].samples
                      if s.labels.get("result") == "error" and s.name.endswith("_total")]
            if failed and failed[0] >= 1:
                break
            time.sleep(0.3)
        assert failed and failed[0] >= 1
        assert daemon.poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait()
        daemon.terminate()
        daemon.wait(10)
        try:
            kubelet.stop()
        except Exception:
            pass
        for d in (container, f"{mount}{pod}", f"{mount}{rel}/kl/kubepods.slice/kubepods-burstable.slice",
                  f"{mount}{rel}/kl/kubepods.slice", other, f"{mount}{rel}/kl/plain",
                  f"{mount}{rel}/kl"):
            rmdir_retry(d)
