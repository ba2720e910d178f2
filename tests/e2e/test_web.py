# SPDX-License-Identifier: GPL-2.0
"""The /metrics endpoint's web settings: TLS, client certificates and basic auth checked with
curl and with a real Prometheus scraping through them; SIGHUP reloads; limits that hold against
1,000 slowloris connections, concurrent scrapes and request bodies."""
import json
import os
import resource
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from certs import Pki
from conftest import ROOT, TAPIR, free_port, spawn_tapir, stop_proc, wait_port

REFUSED = "tapir_web_refused_total"


def bcrypt(password):
    """A real bcrypt hash from htpasswd (apache2-utils), as an operator would make one."""
    out = subprocess.run(["htpasswd", "-nbB", "-C", "5", "u", password], check=True,
                         capture_output=True, text=True).stdout.strip()
    return out.split(":", 1)[1]


class Endpoint:
    """A tapir daemon whose web settings come from a --web-config file the test rewrites."""

    def __init__(self, tmp_path, web_yaml, https=False):
        self.dir = tmp_path
        self.port = free_port()
        self.web = tmp_path / "web.yml"
        self.web.write_text(web_yaml)
        cfg = tmp_path / "tapir.yaml"
        cfg.write_text(f'listen: "127.0.0.1:{self.port}"\n')
        self.proc = spawn_tapir(tmp_path, cfg, "--web-config", str(self.web))
        wait_port(self.port, timeout=60, proc=self.proc)
        self.scheme = "https" if https else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/metrics"

    def log(self):
        return (self.dir / "log").read_text()

    def curl(self, *args):
        """HTTP status of one curl GET (0: no HTTP answer, e.g. a refused handshake)."""
        r = subprocess.run(["curl", "-s", "-o", os.devnull, "-w", "%{http_code}",
                            "--max-time", "10", *args, self.url],
                           capture_output=True, text=True)
        return int(r.stdout or 0)

    def reload(self, web_yaml, expect):
        """Rewrite the web config, SIGHUP, and wait for the daemon to say `expect`."""
        before = self.log().count(expect)
        self.web.write_text(web_yaml)
        self.proc.send_signal(1)
        deadline = time.monotonic() + 10
        while self.log().count(expect) == before:
            assert time.monotonic() < deadline, "no reload in the log:\n" + self.log()
            time.sleep(0.05)

    def stop(self):
        """SIGTERM; a clean exit (under ASan: no leak, no report) is part of every test."""
        stop_proc(self.proc)
        assert self.proc.returncode == 0, f"tapir exited {self.proc.returncode}:\n" + self.log()


def parse(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def refused(metrics, reason):
    return metrics[(REFUSED, (("reason", reason),))]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_web(pki, users=None, client_ca=True, extra=""):
    text = ("tls_server_config:\n"
            f"  cert_file: {pki.server}\n"
            f"  key_file: {pki.server_key}\n")
    if client_ca:
        text += f"  client_ca_file: {pki.ca}\n"
    if users:
        text += "basic_auth_users:\n" + "".join(f"  {u}: '{h}'\n" for u, h in users.items())
    return text + extra


def test_tls_client_certs_and_basic_auth_with_curl(tmp_path, pki):
    ep = Endpoint(tmp_path, tls_web(pki, {"prometheus": bcrypt("s3cret")}), https=True)
    try:
        ca = ["--cacert", pki.ca]
        good = ca + ["--cert", pki.client, "--key", pki.client_key]
        made = {"unauthorized": 0, "client_certificate": 0}
        assert ep.curl(*good, "-u", "prometheus:s3cret") == 200
        # The right certificate with the wrong password, or none; wrong certificates with the
        # right password: each refused, and counted under its reason.
        for creds in (["-u", "prometheus:wrong"], ["-u", "nobody:s3cret"], []):
            assert ep.curl(*good, *creds) == 401
            made["unauthorized"] += 1
        for cert, key in ((None, None), (pki.expired, pki.expired_key),
                          (pki.rogue, pki.rogue_key)):
            args = ca + (["--cert", cert, "--key", key] if cert else [])
            assert ep.curl(*args, "-u", "prometheus:s3cret") == 403
            made["client_certificate"] += 1
        # /healthz, for the kubelet's probes, needs neither; it tells nothing but "ok".
        hz = subprocess.run(["curl", "-s", "--max-time", "5", "--cacert", pki.ca,
                             f"https://127.0.0.1:{ep.port}/healthz"],
                            capture_output=True, text=True)
        assert hz.stdout == "ok\n"
        # Plain HTTP on the TLS port, and a client that does not trust the server: no answer.
        assert ep.curl(*good, "-u", "prometheus:s3cret", "--cacert", pki.other_ca) == 0
        plain = subprocess.run(["curl", "-s", "-o", os.devnull, "-w", "%{http_code}",
                                "--max-time", "5", f"http://127.0.0.1:{ep.port}/metrics"],
                               capture_output=True, text=True)
        assert plain.stdout in ("000", "")

        # The body is an exposition, and the refusals are all there.
        ctx = ssl.create_default_context(cafile=pki.ca)
        ctx.load_cert_chain(pki.client, pki.client_key)
        req = urllib.request.Request(ep.url)
        req.add_header("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ=")  # prometheus:s3cret
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            assert r.status == 200
            m = parse(r.read().decode())
        for reason, n in made.items():
            assert refused(m, reason) == n, reason
    finally:
        ep.stop()


def test_min_version_tls13_refuses_tls12_clients(tmp_path, pki):
    web = tls_web(pki, client_ca=False) + "  min_version: TLS13\n"
    ep = Endpoint(tmp_path, web, https=True)
    try:
        assert ep.curl("--cacert", pki.ca) == 200
        assert ep.curl("--cacert", pki.ca, "--tls-max", "1.2") == 0
        assert ep.curl("--cacert", pki.ca, "--tlsv1.3") == 200
    finally:
        ep.stop()


def prometheus_query(port, q):
    """The result of an instant query; [] while Prometheus is still starting (503)."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)["data"]["result"]
    except urllib.error.HTTPError as e:
        if e.code == 503:
            return []
        raise


def shipped_static_job():
    """The tapir-static job of tools/k8s/prometheus-scrape.yaml, as shipped."""
    with open(os.path.join(ROOT, "tools", "k8s", "prometheus-scrape.yaml")) as f:
        doc = next(yaml.safe_load_all(f))
    return next(j for j in doc["scrape_configs"] if j["job_name"] == "tapir-static")


def test_real_prometheus_scrapes_through_tls_client_certs_and_auth(tmp_path, pki):
    """Prometheus with the shipped static job of tools/k8s/prometheus-scrape.yaml (paths and
    targets pointed at the test's), plus a client certificate: up with the right password,
    down with a wrong one, and the refusals tapir counted are what Prometheus stored."""
    ep = Endpoint(tmp_path, tls_web(pki, {"prometheus": bcrypt("s3cret")}), https=True)
    prom_port = free_port()
    jobs = []
    for name, password in (("tapir", "s3cret"), ("wrong", "nope")):
        job = shipped_static_job()
        assert job["scheme"] == "https" and job["basic_auth"]["username"] == "prometheus"
        pw = tmp_path / f"{name}.password"
        pw.write_text(password)
        job.update(job_name=name, scrape_interval="1s", scrape_timeout="1s",
                   static_configs=[{"targets": [f"127.0.0.1:{ep.port}"]}])
        job["tls_config"].update(ca_file=pki.ca, cert_file=pki.client, key_file=pki.client_key)
        job["basic_auth"]["password_file"] = str(pw)
        jobs.append(job)
    conf = tmp_path / "prometheus.yml"
    conf.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"},
                                    "scrape_configs": jobs}))
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(["prometheus", f"--config.file={conf}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(prom_port, timeout=60, proc=prom)
        deadline = time.monotonic() + 60
        while True:
            up = {r["metric"]["job"]: r["value"][1] for r in prometheus_query(prom_port, "up")}
            # What Prometheus stored is what tapir counted: the wrong job's refusals too.
            wrong = prometheus_query(prom_port,
                                     f'{REFUSED}{{job="tapir",reason="unauthorized"}}')
            if (up.get("tapir") == "1" and up.get("wrong") == "0" and wrong and
                    float(wrong[0]["value"][1]) >= 1):
                break
            assert time.monotonic() < deadline, \
                f"up={up} refused={wrong}\n" + (tmp_path / "prometheus.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        stop_proc(prom)
        ep.stop()


def test_sighup_reloads_web_settings_and_keeps_the_metrics(tmp_path, pki):
    ep = Endpoint(tmp_path, tls_web(pki, {"prometheus": bcrypt("old")}), https=True)
    try:
        good = ["--cacert", pki.ca, "--cert", pki.client, "--key", pki.client_key]
        for _ in range(3):
            assert ep.curl(*good, "-u", "prometheus:wrong") == 401
        assert ep.curl(*good, "-u", "prometheus:old") == 200

        # A new password, a new server certificate, no client certificates: in force at once.
        ep.reload(tls_web(pki, {"prometheus": bcrypt("new")}, client_ca=False)
                  .replace("server.pem", "server2.pem").replace("server-key.pem",
                                                                "server2-key.pem"),
                  "SIGHUP: web settings reloaded")
        assert ep.curl(*good, "-u", "prometheus:old") == 401
        assert ep.curl("--cacert", pki.ca, "-u", "prometheus:new") == 200
        cert = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ep.port}",
                               "-CAfile", pki.ca], input="", capture_output=True, text=True,
                              timeout=10).stdout
        assert "subject=CN = server2" in cert

        # Bad files at reload: logged with file and line, and the settings in force stay.
        for bad, why in (
                (tls_web(pki).replace("server-key.pem", "server2-key.pem"), "do not match"),
                (tls_web(pki).replace(pki.server, str(tmp_path / "missing.pem")),
                 "No such file"),
                ("basic_auth_users:\n  prometheus: plaintext\n", "not a bcrypt hash"),
                ("tls_server_config: [\n", "invalid YAML")):
            ep.reload(bad, "the web settings in force stay")
            assert why in ep.log().splitlines()[-1], ep.log()[-2000:]
            assert ep.curl("--cacert", pki.ca, "-u", "prometheus:new") == 200

        # The metric state went through every reload: the 4 refusals before and after.
        ctx = ssl.create_default_context(cafile=pki.ca)
        req = urllib.request.Request(ep.url)
        req.add_header("Authorization", "Basic cHJvbWV0aGV1czpuZXc=")  # prometheus:new
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            assert refused(parse(r.read().decode()), "unauthorized") == 4
    finally:
        ep.stop()


@pytest.mark.parametrize("web, line, why", [
    ("basic_auth_users:\n  prom: '$2y$05$short'\n", 2, "not a bcrypt hash"),
    ("tls_server_config:\n  cert_file: /x.pem\n", 2, "needs both cert_file and key_file"),
    ("tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n",
     2, "No such file"),
    ("tls_server_config:\n  cert_file: C\n  key_file: K\n  client_auth_type: RequireAnyClientCert\n",
     4, "client_auth_type must be"),
    ("tls_server_config:\n  cert_file: C\n  key_file: K\n  min_version: TLS10\n", 4,
     "min_version must be TLS12 or TLS13"),
    ("max_requests: 0\n", 1, "max_requests must be in 1..1024"),
    ("cipher_suites: []\n", 1, "unknown key"),
])
def test_web_config_errors_name_file_line_and_reason(tmp_path, web, line, why):
    web_file = tmp_path / "web.yml"
    web_file.write_text(web)
    r = subprocess.run([TAPIR, "--web-config",
                        str(web_file), "--pin-dir", "none"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert f"{web_file}:{line}: " in r.stderr and why in r.stderr, r.stderr


def test_web_section_and_web_config_together_is_an_error(tmp_path):
    cfg, web = tmp_path / "tapir.yaml", tmp_path / "web.yml"
    cfg.write_text("web:\n  max_requests: 4\n")
    web.write_text("max_requests: 8\n")
    r = subprocess.run([TAPIR, "--config", str(cfg),
                        "--web-config", str(web), "--pin-dir", "none"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and f"{cfg}:2: web settings are given here" in r.stderr


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])


def test_1000_slowloris_connections_neither_block_scrapes_nor_grow_memory(tmp_path):
    ep = Endpoint(tmp_path, "max_connections: 32\nheader_timeout_s: 2\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
    socks = []
    try:
        with urllib.request.urlopen(ep.url, timeout=10) as r:
            assert r.status == 200
        rss0 = rss_kib(ep.proc.pid)
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", ep.port))
            except BlockingIOError:
                pass
            socks.append(s)
        time.sleep(0.5)
        for rnd in range(4):
            # Each slow client sends one more header byte, as slowloris does, then a scrape.
            for s in socks:
                try:
                    s.send(b"GET /metrics HTTP/1.1\r\nX-a: b" if rnd == 0 else b"b")
                except OSError:
                    pass
            t = time.monotonic()
            with urllib.request.urlopen(ep.url, timeout=10) as r:
                assert r.status == 200 and b"tapir_build_info" in r.read()
            assert time.monotonic() - t < 2.0
            fds = len(os.listdir(f"/proc/{ep.proc.pid}/fd"))
            assert fds < 200, f"{fds} fds open in the daemon"
            time.sleep(1)
        # Memory stays bounded (libmicrohttpd's 32 KiB per connection, at most ~2 x 32 open).
        assert rss_kib(ep.proc.pid) - rss0 < 8 * 1024
        # Every slow connection was closed by the daemon, and counted under its reason.
        closed = 0
        for s in socks:
            s.setblocking(True)
            s.settimeout(0.05)
            try:
                closed += s.recv(100) == b""
            except socket.timeout:
                pass
            except OSError:
                closed += 1
        assert closed == 1000
        with urllib.request.urlopen(ep.url, timeout=10) as r:
            m = parse(r.read().decode())
        assert refused(m, "max_connections") + refused(m, "header_timeout") == 1000
        assert refused(m, "header_timeout") >= 1
    finally:
        for s in socks:
            s.close()
        ep.stop()


def raw_get(port, path="/metrics", extra=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
              extra + b"\r\n")
    return s


def read_status(s):
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return int(data.split(b" ", 2)[1]), data


def test_max_requests_answers_503_beyond_and_bodies_are_refused(tmp_path):
    ep = Endpoint(tmp_path, "max_requests: 1\n")
    try:
        codes = {}
        socks = [raw_get(ep.port) for _ in range(30)]
        for s in socks:
            code, data = read_status(s)
            codes[code] = codes.get(code, 0) + 1
            if code == 503:
                assert b"Retry-After: 1" in data
        assert set(codes) <= {200, 503} and codes.get(200, 0) >= 1 and codes.get(503, 0) >= 1
        code, _ = read_status(raw_get(ep.port, extra=b"Content-Length: 5\r\n"))
        assert code == 413
        code, _ = read_status(raw_get(ep.port, extra=b"Transfer-Encoding: chunked\r\n"))
        assert code == 413
        with urllib.request.urlopen(ep.url, timeout=10) as r:
            m = parse(r.read().decode())
        assert refused(m, "max_requests") == codes[503]
        assert refused(m, "request_body") == 2
    finally:
        ep.stop()
