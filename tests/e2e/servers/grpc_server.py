# SPDX-License-Identifier: GPL-2.0
"""A gRPC server on raw bytes (no generated code): python3-grpcio's own HTTP/2, for test_h2.py.

/t.T/Echo      unary: answers a message of the size the first 4 bytes ask for (big-endian)
/t.T/Stream    server streaming: bytes 0-3 the count, 4-7 the size of each message
/t.T/Fail      unary: aborts with the status code in byte 0 (trailers only)
/t.T/Sleep     unary: sleeps the milliseconds in bytes 0-3, then answers 1 byte
"""
import sys
import time
from concurrent import futures

import grpc


def _n(req, at):
    return int.from_bytes(req[at:at + 4], "big")


def echo(req, ctx):
    return b"e" * _n(req, 0)


def stream(req, ctx):
    for _ in range(_n(req, 0)):
        yield b"s" * _n(req, 4)


def fail(req, ctx):
    ctx.abort(next(c for c in grpc.StatusCode if c.value[0] == req[0]), "failing on purpose")


def sleep(req, ctx):
    time.sleep(_n(req, 0) / 1000)
    return b"z"


def main():
    port = int(sys.argv[1])
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         handlers=[grpc.method_handlers_generic_handler("t.T", handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
