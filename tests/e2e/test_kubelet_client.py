# SPDX-License-Identifier: GPL-2.0
"""The kubelet client (tests/helpers/kubelet_fetch.c) against real local HTTPS and HTTP servers
that serve the recorded PodList the way a kubelet does: bearer token, self-signed certificate."""
import http.server
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import ROOT

FETCH = os.path.join(ROOT, "build", "tests", "kubelet_fetch")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "kubelet-pods.json")

# What kubelet_fetch prints for the fixture: uid name namespace ready ncontainers.
PODS = [
    "0b6f5d0e-3c1a-4e8b-9f27-5a4c1d2e3f60 model-wd8mj2q-deployment-2-7c9d6b5f4-x8k2p org-7fq2kd1 1 2",
    "d2c9a1f0-8b7e-4c6d-a5f4-3e2d1c0b9a87 truss-whisper-v3-0 org-7fq2kd1 0 3",
    "8daa50c3a64c9ff60bb9eab7b44b56fd truss-config-loader kube-system -1 0",
]
TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcGlyIn0.eyJzdWIiOiJ0YXBpciJ9.c2lnbmF0dXJl"


class Kubelet(http.server.ThreadingHTTPServer):
    """A fake kubelet. `mode` picks the answer to GET /pods; `rotate` swaps the accepted token
    (and the file holding it) after every answer, as the projected token volume does."""

    daemon_threads = True

    def __init__(self, tls=None, token=None, mode="pods"):
        super().__init__(("127.0.0.1", 0), Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.token = token
        self.mode = mode
        self.rotate = None
        self.seen = []  # Authorization headers, in order
        with open(FIXTURE, "rb") as f:
            self.body = f.read()
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that --times reuses the connection

    def log_message(self, *args):
        pass

    def answer(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        auth = self.headers.get("Authorization")
        srv.seen.append(auth)
        if self.path != "/pods":
            return self.answer(404, b"404 page not found\n", "text/plain")
        if srv.token is not None and auth != "Bearer " + srv.token:
            return self.answer(401, b"Unauthorized\n", "text/plain")
        if srv.rotate:
            # Before answering: the client reads the file again only once it has the answer.
            path, tokens = srv.rotate
            srv.token = next(tokens)
            with open(path, "w") as f:
                f.write(srv.token + "\n")
        try:
            if srv.mode == "pods":
                self.answer(200, srv.body)
            elif srv.mode == "healthz":
                self.answer(200, b"ok", "text/plain")
            elif srv.mode == "silent":
                time.sleep(5)
            elif srv.mode == "declared-huge":
                self.send_response(200)
                self.send_header("Content-Length", str(100 << 20))
                self.end_headers()
                self.wfile.write(b"{" + b" " * 65536)
            elif srv.mode == "streamed-huge":
                # No length: the body runs until the connection closes, past the 64 MiB cap.
                self.protocol_version = "HTTP/1.0"
                self.close_connection = True
                self.send_response(200)
                self.end_headers()
                chunk = b" " * (1 << 20)
                self.wfile.write(b'{"items":[')
                for _ in range(80):
                    self.wfile.write(chunk)
                self.wfile.write(b"]}")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("kubelet-tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, cert


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")  # as the kubelet's projected volume writes it
    return str(path)


@pytest.fixture
def kubelet(certs):
    servers = []

    def start(tls=True, **kw):
        srv = Kubelet(tls=certs[0] if tls else None, **kw)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def fetch(url, *args, timeout=30):
    assert os.access(FETCH, os.X_OK), f"{FETCH} missing: run make {os.path.relpath(FETCH, ROOT)}"
    return subprocess.run([FETCH, url, *args], capture_output=True, text=True, timeout=timeout)


def url(srv, scheme="https", host="127.0.0.1"):
    return f"{scheme}://{host}:{srv.port}/pods"


def assert_fails(r, *why):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    for w in why:
        assert w in r.stderr, r.stderr


def test_token_and_ca(kubelet, certs, token_file):
    srv = kubelet(token=TOKEN)
    r = fetch(url(srv), "--token-file", token_file, "--ca", certs[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == PODS
    assert r.stderr == ""
    assert srv.seen == ["Bearer " + TOKEN]


def test_wrong_or_missing_token(kubelet, certs, tmp_path, token_file):
    srv = kubelet(token=TOKEN)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-" + TOKEN + "\n")
    assert_fails(fetch(url(srv), "--token-file", str(wrong), "--ca", certs[1]), "HTTP 401",
                 "Permission denied")
    assert_fails(fetch(url(srv), "--ca", certs[1]), "HTTP 401")
    assert srv.seen == ["Bearer not-" + TOKEN, None]
    # An unreadable token is reported as such and nothing is sent.
    assert_fails(fetch(url(srv), "--token-file", str(tmp_path / "absent"), "--ca", certs[1]),
                 "No such file or directory")
    assert len(srv.seen) == 2


def test_insecure_without_ca(kubelet, token_file):
    srv = kubelet(token=TOKEN)
    r = fetch(url(srv), "--token-file", token_file, "--insecure")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == PODS


def test_tls_is_verified_by_default(kubelet, certs, token_file):
    srv = kubelet(token=TOKEN)
    # A self-signed certificate no system CA vouches for.
    assert_fails(fetch(url(srv), "--token-file", token_file), "Protocol error")
    # The right CA, but a name the certificate does not carry.
    assert_fails(fetch(url(srv, host="localhost"), "--token-file", token_file, "--ca", certs[1]),
                 "Protocol error")
    assert srv.seen == []  # the token never left the client


def test_token_reread_on_every_fetch(kubelet, certs, token_file):
    srv = kubelet(token=TOKEN)
    rotated = [f"{TOKEN}.rotated{i}" for i in range(1, 4)]
    srv.rotate = (token_file, iter(rotated))
    r = fetch(url(srv), "--token-file", token_file, "--ca", certs[1], "--times", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == PODS * 3
    assert srv.seen == ["Bearer " + t for t in [TOKEN] + rotated[:2]]


def test_server_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = s.getsockname()[1]
        for scheme in ("https", "http"):
            t0 = time.monotonic()
            r = fetch(f"{scheme}://127.0.0.1:{port}/pods", "--insecure")
            assert_fails(r, "Connection refused")
            assert time.monotonic() - t0 < 5


def test_read_only_port_over_http(kubelet):
    srv = kubelet(tls=False)
    r = fetch(url(srv, scheme="http"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == PODS
    assert srv.seen == [None]


def test_wrong_endpoint(kubelet, token_file):
    srv = kubelet(tls=False, mode="healthz")
    assert_fails(fetch(url(srv, scheme="http")), "no PodList", "Invalid argument")
    r = fetch(f"http://127.0.0.1:{srv.port}/stats/summary")
    assert_fails(r, "HTTP 404", "No such file or directory")


def test_oversized_bodies(kubelet):
    for mode in ("declared-huge", "streamed-huge"):
        srv = kubelet(tls=False, mode=mode)
        assert_fails(fetch(url(srv, scheme="http")), "File too large")


def test_timeout(kubelet):
    srv = kubelet(tls=False, mode="silent")
    t0 = time.monotonic()
    assert_fails(fetch(url(srv, scheme="http"), "--timeout-ms", "300"), "Connection timed out")
    assert time.monotonic() - t0 < 3
