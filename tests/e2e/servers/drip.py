# SPDX-License-Identifier: GPL-2.0
"""A threaded HTTP/1.1 keep-alive server with slow bodies, to be killed in the middle of one. It
keeps its own count on stdout, one flushed line per event:

  read PATH   a whole request was read, before any byte of its answer
  head PATH   the status line and headers of its answer were written
  done PATH   the whole answer was written

  GET /ok        200, 3 bytes
  GET /drip/N    200, Content-Length N, written 16 KiB at a time, 20 ms apart
  GET /hang      read, never answered

usage: drip.py PORT
"""
import socket
import sys
import threading
import time

lock = threading.Lock()


def say(what, path):
    with lock:
        sys.stdout.write(f"{what} {path}\n")
        sys.stdout.flush()


def answer(c, path):
    if path == "/hang":
        threading.Event().wait()
    drip = path.startswith("/drip/")
    n = int(path.split("/")[2]) if drip else 3
    c.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
    say("head", path)
    if not drip:
        c.sendall(b"ok\n")
    while drip and n:
        piece = min(n, 16384)
        c.sendall(b"d" * piece)
        n -= piece
        time.sleep(0.02)
    say("done", path)


def serve(c):
    with c:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            say("read", path)
            answer(c, path)


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
