# SPDX-License-Identifier: GPL-2.0
"""An HTTP/1.1 server that reads each connection in one thread and writes its answers in
another, each pinned to a CPU of its own (as a Go server's goroutines may land): a request is
read while the last one's answer is written. Requests with a Content-Length body are read
whole; each answer is 200 with a body of the request's path length in bytes."""
import os
import queue
import socket
import sys
import threading


def pin(i):
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[i % len(cpus)]})


def reader(conn, answers):
    pin(0)
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            chunk = conn.recv(1024)
            if not chunk:
                answers.put(None)
                return
            buf += chunk
            continue
        head = buf[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(buf) < end + 4 + length:
            chunk = conn.recv(1024)
            if not chunk:
                answers.put(None)
                return
            buf += chunk
        buf = buf[end + 4 + length:]
        answers.put(len(head.split(" ")[1]))


def writer(conn, answers):
    pin(1)
    while True:
        n = answers.get()
        if n is None:
            conn.close()
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (n, b"a" * n))


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen()
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answers = queue.Queue()
        threading.Thread(target=reader, args=(conn, answers), daemon=True).start()
        threading.Thread(target=writer, args=(conn, answers), daemon=True).start()


main()
