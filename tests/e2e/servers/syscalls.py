# SPDX-License-Identifier: GPL-2.0
"""An HTTP/1.1 server that reads and writes each request with the syscall its path names, so
every syscall family tapir hooks is driven by real traffic. One request per connection.

  /<reader>/<writer>[/<n>]   reader: read readv recv recvmsg
                             writer: write writev send sendmsg sendfile, or
                               closedelim  no Content-Length: the body ends at close
                               abort       close without answering
                               reset       reset (SO_LINGER 0) without answering
                               die         the whole process exits without answering

usage: syscalls.py PORT [PORT...]   a port written [::1]:PORT listens on IPv6 loopback
"""
import os
import struct
import socket
import sys
import tempfile
import threading

READERS = {
    "read": lambda c, n: os.read(c.fileno(), n),
    "readv": lambda c, n: (lambda b: bytes(b[:os.readv(c.fileno(), [b])]))(bytearray(n)),
    "recv": lambda c, n: c.recv(n),
    "recvmsg": lambda c, n: c.recvmsg(n)[0],
}


def write_all(fn, data):
    while data:
        data = data[fn(data):]


def writer(name, c, head, body, tmpdir):
    fd = c.fileno()
    if name == "closedelim":
        head = head.replace(f"Content-Length: {len(body)}\r\n".encode(), b"")
        write_all(c.send, head)
        write_all(c.send, body)
    elif name == "abort":
        pass
    elif name == "reset":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif name == "die":
        os._exit(3)
    elif name == "write":
        write_all(lambda d: os.write(fd, d), head + body)
    elif name == "writev":
        # Header and body in separate iovecs, as nginx and libuv do.
        n = os.writev(fd, [head, body])
        write_all(lambda d: os.write(fd, d), (head + body)[n:])
    elif name == "send":
        write_all(c.send, head + body)
    elif name == "sendmsg":
        n = c.sendmsg([head, body])
        write_all(c.send, (head + body)[n:])
    elif name == "sendfile":
        write_all(c.send, head)
        with tempfile.TemporaryFile(dir=tmpdir) as f:
            f.write(body)
            f.flush()
            off = 0
            while off < len(body):
                off += os.sendfile(fd, f.fileno(), off, len(body) - off)


def serve(c, tmpdir):
    with c:
        data = b""
        # Read with small syscalls so headers straddle several of them.
        reader = None
        while b"\r\n\r\n" not in data:
            if reader is None and b" " in data[4:]:
                path = data.split(b" ")[1].decode()
                reader = READERS[path.split("/")[1]]
            chunk = (reader or READERS["recv"])(c, 17)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ")[1].decode()
        parts = path.split("/")
        rd, wr = parts[1], parts[2]
        n = int(parts[3]) if len(parts) > 3 else 100
        body = bytes((i % 251 for i in range(n)))
        head = (f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nX-Reader: {rd}\r\n"
                "Connection: close\r\n\r\n").encode()
        writer(wr, c, head, body, tmpdir)


def listen(spec, tmpdir):
    if spec.startswith("[::1]:"):
        s = socket.socket(socket.AF_INET6)
        addr = ("::1", int(spec.rsplit(":", 1)[1]))
    else:
        s = socket.socket()
        addr = ("127.0.0.1", int(spec))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, tmpdir), daemon=True).start()


def main():
    tmpdir = tempfile.mkdtemp()
    threads = [threading.Thread(target=listen, args=(spec, tmpdir), daemon=True)
               for spec in sys.argv[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
