# SPDX-License-Identifier: GPL-2.0
"""A server that listens anew for each connection: for each line "serve" on stdin it opens a
listening socket on 127.0.0.1 (a port of the kernel's choice, printed), answers one request on
one connection with 200 and closes, then prints "done". A socket belongs to the cgroup of the
process that made it (an accepted one to its listener's): a test that moves this process into a
cgroup before "serve" has that cgroup's connection, on every hook set."""
import socket
import sys

BODY = b"ok\n"

for line in sys.stdin:
    if line.strip() != "serve":
        continue
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        print(ls.getsockname()[1], flush=True)
        conn, _ = ls.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(BODY) + BODY)
    print("done", flush=True)
