# SPDX-License-Identifier: GPL-2.0
"""A TCP, UDP or Unix-socket echo server: traffic that is not HTTP/1.x, for tapir to ignore."""
import os
import socket
import sys
import threading


def serve(c):
    with c:
        while True:
            data = c.recv(4096)
            if not data:
                return
            c.sendall(data)


def main():
    if sys.argv[1] == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", int(sys.argv[2])))
        print("ready", flush=True)
        while True:
            data, peer = s.recvfrom(65536)
            s.sendto(data, peer)
    if sys.argv[1] == "unix":
        path = sys.argv[2]
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
    else:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(sys.argv[2])))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
