# SPDX-License-Identifier: GPL-2.0
"""A raw HTTP/1.1 client that counts every byte it puts on and takes off the wire."""
import socket
import time


class RawConn:
    def __init__(self, port, host="127.0.0.1", nodelay=True):
        self.sock = socket.create_connection((host, port), timeout=30)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sent = 0
        self.received = 0

    def send(self, data, pieces=1, gap=0.0):
        """Send data split into `pieces` writes, `gap` seconds apart."""
        step = max(1, -(-len(data) // pieces))
        for i in range(0, len(data), step):
            if i and gap:
                time.sleep(gap)
            self.sock.sendall(data[i:i + step])
        self.sent += len(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk
        self.received += len(chunk)

    def read_response(self, head=False):
        """Read one response; returns (status, headers dict, body, wire bytes)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head_bytes = self.buf[:end]
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        self.buf = self.buf[end:]
        wire = end
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
            wire += n
        elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
            while True:
                data, need = self._chunk()
                body += data
                wire += need
                if not data:  # the last chunk
                    break
        else:  # close-delimited
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
            wire += len(body)
        return status, headers, body, wire

    def _chunk(self):
        """The next chunk of a chunked body: its payload (empty for the last one) and its bytes
        on the wire, size line and CRLFs included."""
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        size = int(self.buf[:i].split(b";")[0], 16)
        need = i + 2 + size + 2
        while len(self.buf) < need:
            self._fill()
        data, self.buf = self.buf[i + 2:i + 2 + size], self.buf[need:]
        return data, need

    def chunks(self):
        """The payloads of a chunked body as they arrive, after read_response(head=True); the
        caller may stop early (and close)."""
        while True:
            data, _ = self._chunk()
            if not data:
                return
            yield data

    def close(self):
        self.sock.close()


def get(path, host="localhost"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tapir-test\r\n\r\n".encode()


def post(path, body, host="localhost"):
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
