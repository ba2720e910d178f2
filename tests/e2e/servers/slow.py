# SPDX-License-Identifier: GPL-2.0
"""A threaded HTTP/1.0 server: GET /sleep/MS answers 200 after MS milliseconds, else 404."""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) == 3 and parts[1] == "sleep" and parts[2].isdigit():
            time.sleep(int(parts[2]) / 1000)
            code, body = 200, b"slept\n"
        else:
            code, body = 404, b"no\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
