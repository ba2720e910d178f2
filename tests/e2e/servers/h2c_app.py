# SPDX-License-Identifier: GPL-2.0
"""An ASGI app for hypercorn, which takes h2c upgrades (RFC 7540 3.2): /small answers 10 bytes,
/medium 20,000, /big 100,000, /echo the request body back, anything else 404 with 9 bytes."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    path = scope["path"]
    status, out = 200, None
    if path == "/small":
        out = b"hello, h2\n"
    elif path == "/big":
        out = b"b" * 100000
    elif path == "/medium":
        out = b"m" * 20000
    elif path == "/echo":
        out = body
    else:
        status, out = 404, b"not found"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": out})
