# SPDX-License-Identifier: GPL-2.0
"""Outbound HTTP/1.x end to end: real clients in a watched cgroup (curl, Python's urllib and
http.client, Node's built-in fetch) send requests to servers of this test process, which is in no
watched cgroup, and tapir_outbound_requests_total and _duration_seconds must equal what the clients
themselves counted, by status and by destination. The destinations are the session daemon's
outbound.destinations (conftest.py): "model-api" is 127.0.0.3 at Daemon.outbound_port, "predict" a
path prefix on any server, "loopback6" any server on ::1, and everything else "other". Also: a
server that sleeps 200 ms bounds each duration from below and the client's own time from above; a
server that dies mid-answer is a 502, a client that gives up a 499, and one that only shuts down
its sending side once its request is written neither; TLS and other protocols are counted as
ignored outbound connections and add no request; connections open before the daemon started are not
followed; and the client's deployment serves nothing, so its inbound families never move, not even
while its requests are in flight."""
import collections
import http.server
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

from certs import Pki
from conftest import (PY, Cgroup, Scrape, free_port, metrics_text, spawn_tapir, stop_proc,
                      wait_serving)

OUT = "tapir_outbound_requests_total"
DUR = "tapir_outbound_request_duration_seconds"
IGNORED = "tapir_ignored_connections_total"
REQ = "baseten_inference_requests_total"
E2E = "baseten_end_to_end_response_time_seconds"
INFLIGHT = "baseten_concurrent_requests"


class Handler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1: the status is the path's last segment when it is a number (else 200),
    ?ms=N sleeps that long first, a path ending in /die sends a third of its answer and closes.
    A request that begins sets the server's `began` event."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer()

    def answer(self):
        self.server.began.set()
        url = urllib.parse.urlsplit(self.path)
        ms = urllib.parse.parse_qs(url.query).get("ms")
        if ms:
            time.sleep(int(ms[0]) / 1000)
        last = url.path.rsplit("/", 1)[-1]
        if last == "die":
            self.send_response(200)
            self.send_header("Content-Length", "30")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        body = b"answer of %s\n" % url.path.encode()
        self.send_response(int(last) if last.isdigit() else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host, port, family=socket.AF_INET, tls=None):
        self.address_family = family
        self.began = threading.Event()
        super().__init__((host, port), Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # without HTTPServer's reverse DNS lookup
        self.server_name, self.server_port = "tapir-test", self.server_address[1]

    def handle_error(self, request, client_address):
        pass  # a client that gave up: the write into its closed socket fails

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def servers(daemon):
    """The servers, outside any watched cgroup: "api" (127.0.0.3 at the "model-api" port),
    "api_other_port" (127.0.0.3, another port), "local" (127.0.0.1) and "v6" (::1)."""
    s = {"api": Server("127.0.0.3", daemon.outbound_port),
         "api_other_port": Server("127.0.0.3", 0),
         "local": Server("127.0.0.1", 0),
         "v6": Server("::1", 0, family=socket.AF_INET6)}
    yield s
    for srv in s.values():
        srv.stop()


def url(srv, path):
    host = "[::1]" if srv.address_family == socket.AF_INET6 else srv.server_address[0]
    return f"http://{host}:{srv.port}{path}"


def run_in(slot, argv, timeout=30):
    """Run a client in the slot's cgroup; returns (exit status, stdout)."""
    p = slot.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    return p.returncode, out


def curl(slot, urls, *args):
    """One curl invocation for every URL (one connection, kept alive across them when they
    share a server); returns its (http_code, num_connects, time_total) per transfer and exit
    status."""
    argv = ["curl", "-s", "-w", "%{http_code} %{num_connects} %{time_total}\n", *args]
    for u in urls:
        argv += ["-o", "/dev/null", u]
    rc, out = run_in(slot, argv)
    rows = [line.split() for line in out.splitlines()]
    return [(int(c), int(n), float(t)) for c, n, t in rows], rc


def outbound(s, model):
    """{(status_code, destination): requests} of the model's outbound family, zeros left out."""
    s.value(OUT)  # the family must be there
    return {(int(l["status_code"]), l["destination"]): v for l, v in
            s.select(OUT, model_name=model) if v}


def durations(s, model):
    """{destination: observations} of the model's outbound duration histogram."""
    s.value(DUR + "_count")
    return {l["destination"]: v for l, v in s.select(DUR + "_count", model_name=model) if v}


def settled(daemon, model, n):
    """The scrape once the model's n outbound requests are in and nothing more comes."""
    daemon.wait_for(lambda s: s.value(OUT, model_name=model) >= n, what=f"{n} outbound")
    return daemon.settle(model, name=OUT)


def assert_serves_nothing(s, model):
    """The client's deployment served no request: its inbound families are empty."""
    assert s.value(REQ, model_name=model) == 0
    assert s.value(E2E + "_count", model_name=model) == 0
    assert s.value(INFLIGHT, model_name=model) == 0


def expect(sent):
    """What tapir must show for [(status the client saw, destination)]."""
    return dict(collections.Counter(sent)), dict(collections.Counter(d for _, d in sent))


def test_curl_keepalive_statuses_and_destinations(daemon, slot, servers):
    api, other_port, local = servers["api"], servers["api_other_port"], servers["local"]
    # One connection each: the address and port rule wins over the path rule below it.
    to_api = ["/status/200", "/status/404", "/x/200", "/status/500", "/v1/predict/200"]
    to_local = ["/status/200", "/v1/predict/200", "/v1/predictions/404", "/v2/predict/500"]
    got, rc = curl(slot, [url(api, p) for p in to_api])
    assert rc == 0 and [n for _, n, _ in got] == [1, 0, 0, 0, 0]  # kept alive
    sent = [(c, "model-api") for c, _, _ in got]
    got, rc = curl(slot, [url(local, p) for p in to_local])
    assert rc == 0 and [n for _, n, _ in got] == [1, 0, 0, 0]
    sent += [(c, d) for (c, _, _), d in zip(got, ["other", "predict", "predict", "other"])]
    for path in ("/status/200", "/status/404"):  # the address, not the port
        got, rc = curl(slot, [url(other_port, path)] * 2)
        sent += [(c, "other") for c, _, _ in got]
    assert sorted(c for c, _ in sent) == [200] * 7 + [404] * 4 + [500] * 2
    want, per_dest = expect(sent)
    s = settled(daemon, slot.model, len(sent))
    assert outbound(s, slot.model) == want
    assert durations(s, slot.model) == per_dest
    labels = s.select(OUT, model_name=slot.model, status_code=404, destination="model-api")[0][0]
    assert labels == {"model_id": f"mid-{slot.index}", "model_name": slot.model,
                      "deployment_id": f"dep-{slot.index}", "status_code": "404",
                      "destination": "model-api", "environment": "production",
                      "rollout_phase": "stable"}
    assert_serves_nothing(s, slot.model)


PY_CLIENT = r"""
import http.client, sys, urllib.error, urllib.request
for u in sys.argv[3:]:
    try:
        with urllib.request.urlopen(u, timeout=10) as r:
            r.read()
            print("urllib", r.status)
    except urllib.error.HTTPError as e:
        e.read()
        print("urllib", e.code)
# One kept-alive connection, through a dual-stack socket: ::ffff:127.0.0.3 is IPv4.
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for method, path in (("GET", "/a/200"), ("POST", "/b/500"), ("GET", "/c/404"),
                     ("POST", "/v1/predict/200")):
    c.request(method, path, body=b"x" * 3000 if method == "POST" else None)
    r = c.getresponse()
    r.read()
    print("http.client", r.status)
print("family", c.sock.family.name)
c.close()
"""


def test_python_urllib_and_http_client(daemon, slot, servers):
    api, local, v6 = servers["api"], servers["local"], servers["v6"]
    urls = [(url(local, "/status/200"), "other"), (url(local, "/status/404"), "other"),
            (url(local, "/v1/predict/500"), "predict"), (url(api, "/status/200"), "model-api"),
            (url(v6, "/status/200"), "loopback6"), (url(v6, "/status/500"), "loopback6")]
    rc, out = run_in(slot, [PY, "-c", PY_CLIENT, "::ffff:127.0.0.3", str(api.port),
                            *[u for u, _ in urls]])
    assert rc == 0, out
    lines = [l.split() for l in out.splitlines()]
    assert lines[-1] == ["family", "AF_INET6"]
    codes = [int(c) for k, c in lines if k == "urllib"]
    kept = [int(c) for k, c in lines if k == "http.client"]
    assert codes == [200, 404, 500, 200, 200, 500] and kept == [200, 500, 404, 200]
    sent = [(c, d) for c, (_, d) in zip(codes, urls)] + [(c, "model-api") for c in kept]
    want, per_dest = expect(sent)
    s = settled(daemon, slot.model, len(sent))
    assert outbound(s, slot.model) == want
    assert durations(s, slot.model) == per_dest
    assert_serves_nothing(s, slot.model)


NODE_CLIENT = r"""
(async () => {
  for (const u of process.argv.slice(1)) {
    const r = await fetch(u, { method: u.includes("predict") ? "POST" : "GET",
                               body: u.includes("predict") ? "{\"x\": 1}" : undefined });
    await r.arrayBuffer();
    console.log(r.status);
  }
})();
"""


def test_node_fetch(daemon, slot, servers):
    api, local = servers["api"], servers["local"]
    urls = [(url(api, "/status/200"), "model-api"), (url(api, "/status/404"), "model-api"),
            (url(api, "/status/200"), "model-api"), (url(local, "/v1/predict/200"), "predict"),
            (url(local, "/v1/predict/500"), "predict"), (url(local, "/status/500"), "other")]
    rc, out = run_in(slot, ["node", "-e", NODE_CLIENT, *[u for u, _ in urls]])
    assert rc == 0, out
    codes = [int(c) for c in out.split()]
    assert codes == [200, 404, 200, 200, 500, 500]
    want, per_dest = expect([(c, d) for c, (_, d) in zip(codes, urls)])
    s = settled(daemon, slot.model, len(codes))
    assert outbound(s, slot.model) == want
    assert durations(s, slot.model) == per_dest
    assert_serves_nothing(s, slot.model)


def test_duration_of_answers_200ms_late(daemon, slot, servers):
    margin = 0.3
    last = 0.0
    for i in range(3):
        (got,), rc = curl(slot, [url(servers["api"], "/status/200?ms=200")])
        code, _, client_s = got
        assert (rc, code) == (0, 200)
        s = daemon.wait_for(lambda s: s.value(DUR + "_count", model_name=slot.model) == i + 1,
                            what=f"{i + 1} durations")
        total = s.value(DUR + "_sum", model_name=slot.model, destination="model-api")
        one, last = total - last, total
        # From the write of the request to the read that ended its answer: within curl's own.
        assert 0.2 <= one <= client_s and one < 0.2 + margin, (one, client_s)
    m = dict(model_name=slot.model, destination="model-api")
    assert s.bucket(DUR, "0.1", **m) == 0
    assert s.bucket(DUR, "0.5", **m) == 3
    assert s.value(DUR + "_count", **m) == 3
    assert outbound(daemon.settle(slot.model, name=OUT), slot.model) == {(200, "model-api"): 3}


def test_requests_in_flight_are_not_served_ones(daemon, slot, servers):
    srv = servers["local"]
    srv.began.clear()
    p = slot.popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                    url(srv, "/status/200?ms=1500")], stdout=subprocess.PIPE, text=True)
    assert srv.began.wait(10)
    # The client waits for its answer: its deployment has nothing in flight of its own.
    s = daemon.scrape()
    assert s.value(OUT, model_name=slot.model) == 0
    assert_serves_nothing(s, slot.model)
    assert p.communicate(timeout=10)[0] == "200"
    s = settled(daemon, slot.model, 1)
    assert outbound(s, slot.model) == {(200, "other"): 1}
    assert_serves_nothing(s, slot.model)


def test_server_gone_is_502_and_giving_up_499(daemon, slot, servers):
    api, local = servers["api"], servers["local"]
    (got,), rc = curl(slot, [url(api, "/die")])
    assert (got[0], rc) == (200, 18)  # curl: 200, then "transfer closed with data remaining"
    (got,), rc = curl(slot, [url(local, "/v1/predict/die")])
    assert (got[0], rc) == (200, 18)
    # curl gives up on a 3 s answer after 0.5 s: this side closed first.
    (got,), rc = curl(slot, [url(local, "/status/200?ms=3000")], "--max-time", "0.5")
    assert (got[0], rc) == (0, 28)
    s = settled(daemon, slot.model, 3)
    assert outbound(s, slot.model) == {(502, "model-api"): 1, (502, "predict"): 1,
                                       (499, "other"): 1}
    assert durations(s, slot.model) == {"model-api": 1, "predict": 1, "other": 1}
    assert_serves_nothing(s, slot.model)


HALF_CLOSE_CLIENT = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /half/200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
s.shutdown(socket.SHUT_WR)  # nothing more to say; the answer is still read
answer = b""
while chunk := s.recv(65536):
    answer += chunk
print(answer.split(b" ")[1].decode(), answer.endswith(b"answer of /half/200\n"))
"""


def test_half_close_after_the_request_is_not_giving_up(daemon, slot, servers):
    # shutdown(SHUT_WR) once the request is written (as `nc -N` does) ends this side's
    # sending, not its wait: the whole answer comes, and its status is the one to count.
    rc, out = run_in(slot, [PY, "-c", HALF_CLOSE_CLIENT, str(servers["local"].port)])
    assert (rc, out.split()) == (0, ["200", "True"])
    s = settled(daemon, slot.model, 1)
    assert outbound(s, slot.model) == {(200, "other"): 1}
    assert_serves_nothing(s, slot.model)


class Greeter(socketserver.StreamRequestHandler):
    """A protocol where the server speaks first (SMTP, MySQL)."""

    def handle(self):
        self.wfile.write(b"220 tapir-test ready\r\n")
        self.rfile.readline()


class Pong(socketserver.StreamRequestHandler):
    """A protocol where the client speaks first, and no HTTP (Redis)."""

    def handle(self):
        self.rfile.read(len(b"*1\r\n$4\r\nPING\r\n"))
        self.wfile.write(b"+PONG\r\n")


OTHER_CLIENT = r"""
import socket, sys
g = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(g.makefile("rb").readline().decode().strip())
g.sendall(b"QUIT\r\n")
g.close()
r = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
r.sendall(b"*1\r\n$4\r\nPING\r\n")
print(r.makefile("rb").readline().decode().strip())
r.close()
"""


def test_tls_and_other_protocols_are_ignored_outbound(daemon, slot, servers, tmp_path):
    pki = Pki(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server, pki.server_key)
    tls = Server("127.0.0.1", 0, tls=ctx)
    greeter = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Greeter)
    pong = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Pong)
    for srv in (greeter, pong):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        before = daemon.scrape()
        rc, out = run_in(slot, ["curl", "-s", "--cacert", pki.ca, "-o", "/dev/null", "-w",
                                "%{http_code} %{scheme}",
                                f"https://127.0.0.1:{tls.port}/v1/predict/200"])
        assert (rc, out) == (0, "200 HTTPS")
        rc, out = run_in(slot, [PY, "-c", OTHER_CLIENT, str(greeter.server_address[1]),
                                str(pong.server_address[1])])
        assert (rc, out.split("\n")[:2]) == (0, ["220 tapir-test ready", "+PONG"])
        # A plain request after them, so that their records are known to be in.
        (got,), rc = curl(slot, [url(servers["local"], "/status/200")])
        assert (got[0], rc) == (200, 0)
        s = settled(daemon, slot.model, 1)
    finally:
        tls.stop()
        for srv in (greeter, pong):
            srv.shutdown()
            srv.server_close()
    assert outbound(s, slot.model) == {(200, "other"): 1}
    delta = {r: s.value(IGNORED, reason=r) - before.value(IGNORED, reason=r)
             for r in ("outbound", "tls", "not_http", "http2")}
    assert delta == {"outbound": 3, "tls": 0, "not_http": 0, "http2": 0}
    assert_serves_nothing(s, slot.model)


KEEP_OPEN_CLIENT = r"""
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", "/before/200")
r = c.getresponse(); r.read(); print(r.status, flush=True)
sys.stdin.readline()  # the daemon is up
for path in ("/open/200", "/open/404", "/open/500"):
    c.request("GET", path)
    r = c.getresponse(); r.read(); print(r.status, flush=True)
n = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
n.request("GET", "/new/404")
r = n.getresponse(); r.read(); print(r.status, flush=True)
"""


def test_connections_open_before_start_are_not_followed(cgroot, tmp_path, servers):
    mount, rel = cgroot
    cg = Cgroup(f"{mount}{rel}/outbound-prestart")
    proc = client = None
    try:
        client = cg.popen([PY, "-c", KEEP_OPEN_CLIENT, str(servers["local"].port)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline().strip() == "200"
        port = free_port()
        cfg = tmp_path / "tapir.yaml"
        cfg.write_text(f'listen: "127.0.0.1:{port}"\ndeployments:\n'
                       f'  - cgroup: "{rel}/outbound-prestart"\n'
                       '    labels: {model_name: "prestart-client"}\n')
        proc = spawn_tapir(tmp_path, cfg)
        wait_serving(port, proc, tmp_path / "log")
        before = Scrape(metrics_text(port))
        client.stdin.write("go\n")
        client.stdin.flush()
        out, _ = client.communicate(timeout=10)
        assert out.split() == ["200", "404", "500", "404"]
        deadline = time.monotonic() + 10
        while True:
            s = Scrape(metrics_text(port))
            if s.value(OUT, model_name="prestart-client") >= 1:
                break
            assert time.monotonic() < deadline, s.text
            time.sleep(0.1)
        time.sleep(0.5)
        s = Scrape(metrics_text(port))
    finally:
        for p in (client, proc):
            if p:
                stop_proc(p)
        cg.destroy()
    # Only the connection opened after the start: its one request.
    assert outbound(s, "prestart-client") == {(404, "other"): 1}
    assert s.value(REQ) == 0
    for r in ("outbound", "tls", "not_http", "http2", "tapir", "not_tcp"):
        assert s.value(IGNORED, reason=r) == before.value(IGNORED, reason=r), r
    assert proc.returncode == 0, open(tmp_path / "log").read()
