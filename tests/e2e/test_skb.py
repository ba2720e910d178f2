# SPDX-License-Identifier: GPL-2.0
"""The socket-buffer hooks (--bpf-hooks skb): requests walked from the TCP segments themselves,
exact against the clients' own counts through every syscall family, through segments lost and
sent again (a tc program on the loopback drops them: this kernel has no netem), with request
times that start when a request reaches the server's socket, not when the server reads it."""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from client import RawConn, get, post
from conftest import (PY, ROOT, SERVERS, TAPIR, Cgroup, Scrape, free_port, metrics_text,
                      wait_port, wait_serving)
from test_kernel_reach import every_syscall_family, own_daemon, settled, stop

REQ = "baseten_inference_requests_total"
E2E = "baseten_end_to_end_response_time_seconds"
DROP = os.path.join(ROOT, "build", "tests", "skb_drop")

# Waits 0.3 s after each accept before it reads the request, then answers: a server whose
# event loop is busy, while the request waits in the socket's queue.
LATE_READER = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    c, _ = s.accept()
    time.sleep(0.3)
    data = b"x"
    while data and not data.endswith(b"\\r\\n\\r\\n"):
        data = c.recv(4096)  # b"": a connection that only probed the port
    if data:
        c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
    c.close()
"""


@pytest.fixture
def skb(tmp_path, cgroot, request):
    """A daemon on the socket-buffer hooks watching a fresh cgroup: (port, cgroup)."""
    name = "skb" + request.node.name[5:][:20].replace("_", "")
    proc, port, cg = own_daemon(tmp_path, cgroot, name, "--bpf-hooks", "skb")
    cg.model = name
    yield port, cg
    stop(proc)
    cg.destroy()


class Dropper:
    """tests/helpers/skb_drop: the first arrival of each segment to (or from) a port whose
    payload starts with a marker byte is dropped on the loopback; its retransmission passes."""

    def __init__(self, port, way, marker):
        self.proc = subprocess.Popen([DROP, str(port), way, marker], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        """Detach; returns how many segments were dropped."""
        self.proc.send_signal(signal.SIGTERM)
        out = self.proc.stdout.read()
        assert self.proc.wait(10) == 0
        return int(out.split()[-1])


def exact_through_loss(port, model, dropped, n, size_family, want):
    """After a dropper's run: it dropped at least one segment per request, and tapir counted
    every request and byte (size_family's sum: @want) with no parse failure."""
    assert dropped >= n
    s = settled(port, model, n)
    assert s.value(REQ, model_name=model, status_code=200) == n
    assert s.value(f"{size_family}_sum", model_name=model) == want
    assert s.value("tapir_parse_failures_total") == 0


def on_new_connections(sport, marker, n, send):
    """@n requests to @sport, each on a connection of its own (send(conn) sends it), through a
    Dropper of @marker on the way there: how many segments it dropped."""
    drop = Dropper(sport, "to", marker)
    try:
        for _ in range(n):
            conn = RawConn(sport)
            send(conn)
            assert conn.read_response()[0] == 200
            conn.close()
    finally:
        dropped = drop.stop()
    return dropped


def counted_exactly(port, model, n, sent, recv):
    """Once settled: @n requests answered 200 and their bytes each way (@sent, @recv) as the
    client counted them, with no parse failure and nothing lost."""
    s = settled(port, model, n)
    assert s.value(REQ, model_name=model, status_code=200) == n
    assert s.value("baseten_request_size_bytes_sum", model_name=model) == sent
    assert s.value("baseten_response_size_bytes_sum", model_name=model) == recv
    assert s.value("tapir_parse_failures_total") == 0
    assert s.value("tapir_records_lost_total") == 0


def counted_or_gap(port, model, n):
    """Scrape until @n requests are counted or in segment_gap (at most 15 s): (the scrape,
    counted, gaps)."""
    deadline = time.monotonic() + 15
    while True:
        s = Scrape(metrics_text(port))
        counted = s.value(REQ, model_name=model)
        gaps = s.value("tapir_parse_failures_total", reason="segment_gap")
        if counted + gaps >= n or time.monotonic() > deadline:
            return s, counted, gaps
        time.sleep(0.1)


def uvicorn(cg):
    port = free_port()
    srv = cg.popen([PY, "-m", "uvicorn", "--app-dir", SERVERS, "app:app", "--host",
                    "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=srv)
    return port, srv


def test_skb_counts_every_syscall_family(skb):
    """Every syscall family a server reads and writes with, sendfile too (its bytes are in the
    segments), requests in pieces, 6 KB header blocks and 70000-byte bodies: the requests and
    their bytes as the client counted them; the socket and syscall hooks stay off."""
    port, cg = skb
    s = Scrape(metrics_text(port))
    assert s.value("tapir_bpf_program_attached", program="http_skb_in") == 1
    assert s.value("tapir_bpf_program_attached", program="http_skb_out") == 1
    assert not s.select("tapir_bpf_program_attached", program="sock_recv")
    assert not s.select("tapir_bpf_program_attached", program="sys_exit_read")
    sport = free_port()
    srv = cg.popen([PY, os.path.join(SERVERS, "syscalls.py"), str(sport)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(sport, proc=srv)
        n, sent, recv = every_syscall_family(sport)
        counted_exactly(port, cg.model, n, sent, recv)
    finally:
        srv.kill()
        srv.wait()


def test_skb_own_scrapes_are_not_counted(tmp_path):
    """With no rules every cgroup is watched, tapir's own among them: its /metrics connections,
    server side and (the scraper shares its cgroup here) client side, are never followed,
    though these hooks know no process, only the socket's cgroup."""
    port = free_port()
    cfg = tmp_path / "tapir.yaml"
    cfg.write_text(f'listen: "127.0.0.1:{port}"\n')
    proc = subprocess.Popen([TAPIR, "--config", str(cfg), "--pin-dir", "none",
                             "--bpf-hooks", "skb"], stdout=open(tmp_path / "log", "w"),
                            stderr=subprocess.STDOUT)
    try:
        wait_serving(port, proc, tmp_path / "log")
        before = Scrape(metrics_text(port))
        for _ in range(5):
            metrics_text(port)
        time.sleep(1)
        after = Scrape(metrics_text(port))
        for family in (REQ, "tapir_outbound_requests_total"):
            assert after.value(family) == before.value(family), family
        assert after.value("tapir_bpf_program_attached", program="http_skb_in") == 1
    finally:
        stop(proc)


def bpftool(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    return json.loads(out) if out.strip() else []


def hung(path, effective=False):
    """The socket-buffer hooks on the cgroup at @path, as bpftool sees them: {name: [ids]} of
    those attached to it, or with @effective of all that run for its sockets."""
    progs = {}
    for p in bpftool("cgroup", "show", path, *(["effective"] if effective else [])):
        if p.get("name", "").startswith("http_skb"):
            progs.setdefault(p["name"], []).append(p["id"])
    return progs


def run_cnt(ids):
    return sum(bpftool("prog", "show", "id", str(i)).get("run_cnt", 0) for i in ids)


def requests(sport, n):
    for _ in range(n):
        conn = RawConn(sport)
        conn.send(get("/read/write/10"))
        assert conn.read_response()[0] == 200
        conn.close()


def test_skb_hooks_hang_on_the_top_watched_cgroups(tmp_path, cgroot):
    """The socket-buffer hooks hang on each top-most watched cgroup, containers made after the
    daemon started included, and on no other: a nested watched cgroup's sockets run each
    program once, an unwatched server's segments run none (the kernel's own run counts), and a
    removed cgroup's links go with it."""
    mount, rel = cgroot
    proc, port, top = own_daemon(tmp_path, cgroot, "skbtops", "--bpf-hooks", "skb", below="*")
    stats = "/proc/sys/kernel/bpf_stats_enabled"
    with open(stats) as f:
        stats_was = f.read().strip()
    servers, cgs = [], []
    try:
        assert hung(top.path) == {} and hung(mount + rel, effective=True) == {}
        a = Cgroup(top.path + "/a")
        inner = Cgroup(a.path + "/inner")
        b = Cgroup(top.path + "/b")
        cgs = [inner, a, b]
        both = ["http_skb_in", "http_skb_out"]
        deadline = time.monotonic() + 15
        while sorted(hung(a.path)) != both or sorted(hung(b.path)) != both:
            assert time.monotonic() < deadline, (hung(a.path), hung(b.path))
            time.sleep(0.2)
        assert hung(inner.path) == {} and hung(top.path) == {}
        eff = hung(inner.path, effective=True)
        assert sorted(eff) == both and all(len(ids) == 1 for ids in eff.values()), eff
        ids = [i for p in (a, b) for v in hung(p.path).values() for i in v]

        ports = [free_port() for _ in range(3)]
        for where, sport in zip((inner, b, None), ports):
            argv = [PY, os.path.join(SERVERS, "syscalls.py"), str(sport)]
            servers.append(where.popen(argv) if where else subprocess.Popen(argv))
            wait_port(sport, proc=servers[-1])
        with open(stats, "w") as f:
            f.write("1")
        runs = run_cnt(ids)
        requests(ports[2], 20)  # the unwatched server, in this test's own cgroup
        assert run_cnt(ids) == runs
        requests(ports[0], 10)
        requests(ports[1], 10)
        assert run_cnt(ids) > runs + 2 * 20  # a request and an answer each, at least
        s = settled(port, "skbtops", 20)
        assert s.value(REQ, model_name="skbtops", status_code=200) == 20
        assert s.value("tapir_parse_failures_total") == 0

        # b goes: its links are released with it; a's stay.
        b_id = os.stat(b.path).st_ino
        servers[1].kill()
        servers[1].wait()
        b.destroy()
        cgs.remove(b)
        deadline = time.monotonic() + 15
        while True:
            links = {l["cgroup_id"] for l in bpftool("link", "show")
                     if l.get("type") == "cgroup" and l.get("prog_id") in ids}
            if b_id not in links:
                break
            assert time.monotonic() < deadline, links
            time.sleep(0.2)
        assert links == {os.stat(a.path).st_ino}
    finally:
        with open(stats, "w") as f:
            f.write(stats_was)
        for srv in servers:
            srv.kill()
            srv.wait()
        stop(proc)
        for c in cgs:
            c.destroy()
        top.destroy()


def test_skb_request_time_starts_in_the_socket_queue(skb):
    """A server that reads each request 0.3 s after it arrived: the end-to-end time counts
    that wait (the socket hooks, which start at the read, cannot), and never more than the
    client waited."""
    port, cg = skb
    sport = free_port()
    srv = cg.popen([PY, "-c", LATE_READER, str(sport)])
    try:
        wait_port(sport, proc=srv)
        waited = []
        for _ in range(3):
            t0 = time.monotonic()
            conn = RawConn(sport)
            conn.send(get("/late"))
            assert conn.read_response()[0] == 200
            waited.append(time.monotonic() - t0)
            conn.close()
        s = settled(port, cg.model, 3)
        total = s.value(f"{E2E}_sum", model_name=cg.model)
        assert s.value(f"{E2E}_count", model_name=cg.model) == 3
        assert 3 * 0.3 <= total <= sum(waited), (total, waited)
        assert s.value(f"{E2E}_bucket", model_name=cg.model, le="0.25") == 0
    finally:
        srv.kill()
        srv.wait()


def test_skb_lost_body_segments_are_passed_over(skb):
    """Body segments lost on the way to the server: the segments after each arrive first, and
    the gap, inside a body of known length, is passed over by length; the retransmission that
    fills it is not walked twice. Every request and every byte as the client counted them, on
    one keep-alive connection."""
    port, cg = skb
    sport, srv = uvicorn(cg)
    drop = Dropper(sport, "to", "b")
    try:
        conn = RawConn(sport)
        body = b"b" * 4000
        for _ in range(10):
            req = post("/predict", body)
            conn.send(req[:-len(body)])
            conn.send(body, pieces=4)  # four segments, each starting with the marker
            st, _, answer, _ = conn.read_response()
            assert (st, answer) == (200, b'{"received":4000}')
        conn.close()
    finally:
        dropped = drop.stop()
    try:
        exact_through_loss(port, cg.model, dropped, 10, "baseten_request_size_bytes", conn.sent)
    finally:
        srv.kill()
        srv.wait()


def test_skb_lost_request_heads_are_counted(skb):
    """A request whose head is lost while its body arrives: the connection cannot be followed
    from there, and says so (segment_gap); every request is either counted or in that count."""
    port, cg = skb
    sport, srv = uvicorn(cg)
    n = 8
    body = b"q" * 3000

    def head_then_body(conn):
        conn.send(post("/predict", body)[:-len(body)])
        conn.send(body, pieces=3)

    dropped = on_new_connections(sport, "P", n, head_then_body)
    try:
        assert dropped >= n  # each head once, its retransmission passed
        s, counted, gaps = counted_or_gap(port, cg.model, n)
        assert counted + gaps == n, (counted, gaps)
        assert gaps >= 1  # the body's segments came before the head's second copy
    finally:
        srv.kill()
        srv.wait()


def test_skb_request_with_the_handshake_end_is_walked_early(skb):
    """The handshake's last ACK lost: the client's request completes the handshake, on the
    listening socket, before the connection exists. It is walked there and the connection
    takes it over: every request counted with its bytes, none lost."""
    port, cg = skb
    sport, srv = uvicorn(cg)
    n = 5
    req = get("/bytes/10")
    dropped = on_new_connections(sport, "ack", n, lambda conn: conn.send(req))
    try:
        assert dropped >= n
        s, counted, gaps = counted_or_gap(port, cg.model, n)
        assert (counted, gaps) == (n, 0)
        assert s.value("baseten_request_size_bytes_sum", model_name=cg.model) == n * len(req)
        assert s.value("tapir_ignored_connections_total", reason="not_http") == 0
    finally:
        srv.kill()
        srv.wait()


def early_map(cg):
    """(id, max_entries) of the early map of the daemon whose programs hang on @cg."""
    deadline = time.monotonic() + 15
    while not hung(cg.path).get("http_skb_in"):
        assert time.monotonic() < deadline, "http_skb_in never hung on the cgroup"
        time.sleep(0.2)
    prog = bpftool("prog", "show", "id", str(hung(cg.path)["http_skb_in"][0]))
    for mid in prog["map_ids"]:
        m = bpftool("map", "show", "id", str(mid))
        if m.get("name") == "early":
            return mid, m["max_entries"]
    raise AssertionError(f"no early map among {prog['map_ids']}")


def tcp_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def unasked_segments(dport, n, payload):
    """@n segments carrying @payload to 127.0.0.1:@dport from ports no handshake ever opened
    (a raw socket writes the TCP header): the listening socket gets each, and answers a reset."""
    addr = socket.inet_aton("127.0.0.1")
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    try:
        for i in range(n):
            sport, seq = 20000 + i % 40000, random.getrandbits(32)
            head = struct.pack("!HHIIBBHHH", sport, dport, seq, random.getrandbits(32), 5 << 4,
                               0x18, 65535, 0, 0)  # ACK|PSH, no options
            pseudo = addr + addr + struct.pack("!BBH", 0, socket.IPPROTO_TCP,
                                               len(head) + len(payload))
            csum = tcp_checksum(pseudo + head + payload)
            raw.sendto(head[:16] + struct.pack("!H", csum) + head[18:] + payload,
                       ("127.0.0.1", 0))
    finally:
        raw.close()


def test_skb_early_entries_are_bounded(skb):
    """Request bytes sent to a watched listening port with no handshake (a scan, a client whose
    connection the server forgot) each make an entry of early: 3,000 of them fill it and count
    nothing, and a request whose handshake ends with its bytes (its last ACK lost) still gets an
    entry and is counted with its bytes, as early is an LRU (a map that kept the junk would have
    no room for it)."""
    port, cg = skb
    sport, srv = uvicorn(cg)
    mid, size = early_map(cg)
    assert size == 1024
    try:
        junk = get("/unasked")
        unasked_segments(sport, 3000, junk)
        # Filled (an LRU evicts in batches, so not always to the last entry), never past it.
        deadline = time.monotonic() + 10
        while len(entries := bpftool("map", "dump", "id", str(mid))) < 512:
            assert time.monotonic() < deadline, f"early has {len(entries)} entries"
            time.sleep(0.2)
        assert len(entries) <= 1024
        n = 3
        req = get("/bytes/10")
        dropped = on_new_connections(sport, "ack", n, lambda conn: conn.send(req))
        assert dropped >= n
        s, counted, gaps = counted_or_gap(port, cg.model, n)
        assert (counted, gaps) == (n, 0)
        time.sleep(0.5)  # nothing of the junk counts later either
        s = Scrape(metrics_text(port))
        assert s.value(REQ, model_name=cg.model) == n
        assert s.value("baseten_request_size_bytes_sum", model_name=cg.model) == n * len(req)
        for loss in ("tapir_parse_failures_total", "tapir_ignored_connections_total",
                     "tapir_records_lost_total", "tapir_connections_evicted_total"):
            assert s.value(loss) == 0, loss
    finally:
        srv.kill()
        srv.wait()


# A server whose listening socket has TCP_DEFER_ACCEPT (nginx's "listen ... deferred"): the
# kernel ends each handshake only when the client's first bytes come, on the listening socket.
DEFERRED = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    c, _ = s.accept()
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            break
        buf += data
        while b"\\r\\n\\r\\n" in buf:
            _, buf = buf.split(b"\\r\\n\\r\\n", 1)
            c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
    c.close()
"""


def test_skb_deferred_accept_server_is_followed(skb):
    """Every connection to a TCP_DEFER_ACCEPT server begins with bytes the listening socket
    receives: two requests on each of five connections, all counted with the bytes the client
    sent and received."""
    port, cg = skb
    sport = free_port()
    srv = cg.popen([PY, "-c", DEFERRED, str(sport)])
    try:
        wait_port(sport, proc=srv)
        sent = recv = 0
        for i in range(5):
            conn = RawConn(sport)
            for j in range(2):
                req = get(f"/deferred/{i}/{j}")
                conn.send(req)
                st, _, body, wire = conn.read_response()
                assert st == 200 and body == b"ok\n"
                sent += len(req)
                recv += wire
            conn.close()
        s = settled(port, cg.model, 10)
        assert s.value(REQ, model_name=cg.model, status_code=200) == 10
        assert s.value("baseten_request_size_bytes_sum", model_name=cg.model) == sent
        assert s.value("baseten_response_size_bytes_sum", model_name=cg.model) == recv
        assert s.value("tapir_parse_failures_total") == 0
    finally:
        srv.kill()
        srv.wait()


def test_skb_resent_answers_are_walked_once(skb):
    """Answers whose head segment is lost on the way to the client after the server's hook
    saw it: the retransmission repeats bytes already walked and is skipped. Counts and answer
    bytes as the client received them."""
    port, cg = skb
    sport, srv = uvicorn(cg)
    drop = Dropper(sport, "from", "H")
    try:
        conn = RawConn(sport)
        recv = 0
        for _ in range(10):
            conn.send(get("/bytes/3000"))
            st, _, body, wire = conn.read_response()
            assert (st, len(body)) == (200, 3000)
            recv += wire
        conn.close()
    finally:
        dropped = drop.stop()
    try:
        exact_through_loss(port, cg.model, dropped, 10, "baseten_response_size_bytes", recv)
    finally:
        srv.kill()
        srv.wait()


def nginx_in(cg, tmp_path):
    """nginx (tests/e2e/servers/nginx.conf.in) inside cgroup @cg: (port, proc)."""
    port = free_port()
    with open(os.path.join(SERVERS, "nginx.conf.in")) as f:
        text = f.read()
    for k, v in (("@PORT@", port), ("@ROOT@", tmp_path), ("@TMP@", tmp_path), ("@UPSTREAM@", 1)):
        text = text.replace(k, str(v))
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    srv = cg.popen(["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=srv)
    return port, srv


def read_answers(sock, n, done=None):
    """@n HTTP/1.1 answers with Content-Length read off @sock, done.release() after each:
    (their statuses, bytes)."""
    buf, statuses, total = b"", [], 0
    while len(statuses) < n:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(statuses)} of {n} answers"
            buf += chunk
            continue
        head = buf[:end].decode()
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        while len(buf) < end + 4 + length:
            chunk = sock.recv(65536)
            assert chunk, "closed inside an answer"
            buf += chunk
        statuses.append(int(head.split()[1]))
        total += end + 4 + length
        if done:
            done.release()
        buf = buf[end + 4 + length:]
    assert buf == b""
    return statuses, total


def answered_before_body(sport, scrape, model, n=8, pause=0.2):
    """@n POSTs on one keep-alive connection to nginx's `return 200` (tests/e2e/servers/
    nginx.conf.in), each sent as its head and 10 bytes of body, then the rest of the body
    once its answer came and @pause more seconds went by: nginx answers from the head and
    reads the rest later, to drop it. Then a GET. While the first body waits, scrape() must
    show nothing in flight for @model: its answer was whole. Returns (bytes sent, received)."""
    sock = socket.create_connection(("127.0.0.1", sport))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = recv = 0
    try:
        for i in range(n):
            body = b"b" * (500 + 700 * i)
            head = post("/ok", body)[:-len(body)]
            sock.sendall(head + body[:10])
            statuses, got = read_answers(sock, 1)
            assert statuses == [200]
            recv += got
            if i == 0:
                assert scrape().value("baseten_concurrent_requests", model_name=model) == 0
            time.sleep(pause)
            sock.sendall(body[10:])
            sent += len(head) + len(body)
        sock.sendall(get("/ok"))
        sent += len(get("/ok"))
        statuses, got = read_answers(sock, 1)
        assert statuses == [200]
        recv += got
    finally:
        sock.close()
    return sent, recv


def test_skb_answer_before_the_body_counts_the_body(skb, tmp_path):
    """answered_before_body() on the socket-buffer hooks: each request's size is all the
    client sent, its time ends with its answer (not the body's end, @pause later)."""
    port, cg = skb
    sport, srv = nginx_in(cg, tmp_path)
    try:
        sent, recv = answered_before_body(sport, lambda: Scrape(metrics_text(port)), cg.model)
        counted_exactly(port, cg.model, 9, sent, recv)
        assert Scrape(metrics_text(port)).value(f"{E2E}_sum", model_name=cg.model) < 9 * 0.1
    finally:
        srv.kill()
        srv.wait()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_skb_one_connection_sent_from_two_cpus(skb, tmp_path):
    """Requests on one keep-alive connection written by two threads, each on a CPU of its own:
    on the loopback a segment's ingress program runs on its sender's CPU, so two segments of
    the connection are walked at once, and a request comes in while the last answer leaves,
    unless one waits (the connection's walker word). Pipelined GETs and POSTs
    with bodies that end in later segments: every request and byte as the client counted them,
    no framing lost, nothing dropped."""
    port, cg = skb
    sport, srv = nginx_in(cg, tmp_path)
    per, batch = 3000, 2
    sock = socket.create_connection(("127.0.0.1", sport))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = [0, 0]
    # tapir follows 4 requests queued on a connection (README: Pipelined requests): a batch
    # of each writer at a time.
    room = threading.Semaphore(2 * batch)

    def writer(i):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[i]})
        rnd = random.Random(i)
        for k in range(0, per, batch):
            reqs = [post("/ok", b"b" * rnd.randrange(1, 3000)) if rnd.random() < 0.3
                    else get(f"/ok?w={i}&k={k + j}") for j in range(batch)]
            data = b"".join(reqs)
            for _ in range(batch):
                room.acquire()
            sock.sendall(data)
            sent[i] += len(data)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        statuses, recv = read_answers(sock, 2 * per, room)
        for t in threads:
            t.join()
        sock.close()
        assert statuses == [200] * (2 * per)
        counted_exactly(port, cg.model, 2 * per, sum(sent), recv)
    finally:
        srv.kill()
        srv.wait()
