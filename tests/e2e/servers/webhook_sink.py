# SPDX-License-Identifier: GPL-2.0
"""The receiver of the async gateway's webhooks: slow, and sometimes failing, on purpose.

`python3 webhook_sink.py PORT LOG`: a threaded HTTP/1.1 server on 127.0.0.1:PORT (keep-alive,
every answer with a Content-Length). POST (any path): a delivery; its JSON body's "job_id" seeds
what the answer is, so that a job always gets the same one whatever the order of deliveries: a
delay drawn from 50..150 ms, then 500 for about one job in four, else 200. GET (any path): 200 at
once. Every request is logged to LOG (JSON lines) just before its answer is written: method,
path, job (null for a GET or a body without one), status, delay_ms, body_bytes."""
import json
import random
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def verdict(job):
    """(delay in ms, status) of a delivery for @job."""
    rng = random.Random(f"webhook-{job}")
    return rng.randint(50, 150), 500 if rng.random() < 0.25 else 200


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go in two writes: without this, the body waits for the ACK that
    # the client delays (40 ms), and the answers would not be as slow as drawn.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.answer(None, 0, 200, 0)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            job = json.loads(body).get("job_id")
        except (ValueError, AttributeError):
            job = None
        delay_ms, status = verdict(job)
        time.sleep(delay_ms / 1000)
        self.answer(job, delay_ms, status, len(body))

    def answer(self, job, delay_ms, status, body_bytes):
        # Logged first: once the client has its answer, the log has the request.
        rec = {"method": self.command, "path": self.path, "job": job, "status": status,
               "delay_ms": delay_ms, "body_bytes": body_bytes}
        with LOCK, open(self.server.log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        out = json.dumps({"received": job, "status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class Sink(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # without HTTPServer's reverse DNS lookup
        self.server_name, self.server_port = "webhook-sink", self.server_address[1]


def main():
    srv = Sink(("127.0.0.1", int(sys.argv[1])), Handler)
    srv.log_path = sys.argv[2]
    srv.serve_forever()


if __name__ == "__main__":
    main()
