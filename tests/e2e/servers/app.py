# SPDX-License-Identifier: GPL-2.0
"""FastAPI model-server stand-in for tests: sleeps, statuses, streams, uploads, downloads."""
import asyncio
import time

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

app = FastAPI()


async def sleep_at_least(seconds):
    """A sleep that is never short: the tests take it as a lower bound of latencies.

    uvloop (uvicorn's loop when installed) times from libuv's cached loop clock, in whole
    milliseconds, so asyncio.sleep(0.2) may end a fraction of a millisecond before 0.2 s of
    real time have passed since the call. Sleep again on the real clock until they have.
    """
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(left)


@app.get("/v1/models/model")
async def ready():
    return {"ready": True}


@app.post("/predict")
async def predict(request: Request):
    body = await request.body()
    return {"received": len(body)}


@app.get("/sleep")
async def sleep(ms: int = 200):
    await sleep_at_least(ms / 1000)
    return Response(content=b"slept\n", media_type="text/plain")


@app.get("/status/{code}")
async def status(code: int):
    return Response(content=f"status {code}\n".encode(), status_code=code,
                    media_type="text/plain")


@app.get("/bytes/{n}")
async def nbytes(n: int):
    return Response(content=b"x" * n, media_type="application/octet-stream")


@app.get("/stream")
async def stream(chunks: int = 2, gap_ms: int = 300):
    async def gen():
        for i in range(chunks):
            if i:
                await sleep_at_least(gap_ms / 1000)
            yield f"chunk {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/sse")
async def sse(events: int = 200, gap_ms: int = 20):
    async def gen():
        for i in range(events):
            if i:
                await sleep_at_least(gap_ms / 1000)
            yield f'data: {{"token": {i}}}\n\n'.encode()

    return StreamingResponse(gen(), media_type="text/event-stream")
