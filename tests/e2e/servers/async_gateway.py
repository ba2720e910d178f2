# SPDX-License-Identifier: GPL-2.0
"""An async inference gateway: accepts jobs into a real asyncio queue, and workers hand each job
to the model server (async_model.py), then deliver its result to a webhook receiver
(webhook_sink.py). It logs its own account of everything tapir is to measure.

Run by Debian's uvicorn: `python3 -m uvicorn --app-dir tests/e2e/servers async_gateway:app`, set
up by TAPIR_ASYNC_MODEL_PORT (the model server on 127.0.0.1), TAPIR_ASYNC_HOOK_PORT (the webhook
receiver on 127.0.0.1), TAPIR_ASYNC_HOOK_PATH (default /hooks/done), TAPIR_ASYNC_LOG (JSON lines)
and TAPIR_ASYNC_WORKERS (default 2).

Routes:
- POST /async/predict: a job, JSON {"input": non-empty string, "sleep_ms": 0..5000 (the model's
  sleep, default 30), "fail": bool (the model answers 500), "ack_delay_ms": 0..5000 (default 0)}.
  Answered 202 {"job_id": N} once the job is in the queue and ack_delay_ms more have passed (so
  that an idle worker dispatches it before the answer goes); a body that fails validation is
  answered 422 and never queued.
- POST /pause: workers take no job from the queue until POST /resume (a job being worked on is
  finished).
- POST /probe-hooks: a GET of the webhook path, on a connection of its own: a request to the
  webhook receiver that is not a delivery.

Each worker has one kept-alive connection to the model server and one to the receiver, spoken by
a small HTTP/1.1 client of its own, so that the gateway knows exactly when it started writing each
request, when it had read the end of each answer, and how many bytes went each way. A job is
POSTed to the model's /predict with X-Request-Start: t=<enqueue time, seconds.microseconds> and
X-Job-Id; then its result is POSTed to the webhook path as JSON {"job_id", "status", "output"}.

Log, one JSON line per event ("ev"), "t" the wall clock (time.time()) when it was written:
- accepted: job, enqueue (the enqueue time exactly as X-Request-Start carries it), qlen (the queue's
  length after the job went in);
- acked: job (just before its 202 is handed to uvicorn);
- rejected: errors (a submit answered 422);
- taken: job, worker, qlen (after the job left the queue);
- model: job, worker, enqueue, dispatch (time.time() just before the request's first write),
  status, req_bytes and resp_bytes (on the wire, head and body), end (time.time() when the
  answer's last byte had been read);
- webhook: job, worker, method, status, latency (seconds, from just before the request's first
  write to the end of the answer's read, time.perf_counter()), req_bytes, resp_bytes;
- hook_get: status, latency (the probe);
- paused, resumed: qlen;
- error: where, what (a request that failed; the test fails on any)."""
import asyncio
import itertools
import json
import os
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, conint, constr

MODEL_PORT = int(os.environ.get("TAPIR_ASYNC_MODEL_PORT", "0"))
HOOK_PORT = int(os.environ.get("TAPIR_ASYNC_HOOK_PORT", "0"))
HOOK_PATH = os.environ.get("TAPIR_ASYNC_HOOK_PATH", "/hooks/done")
LOG = os.environ.get("TAPIR_ASYNC_LOG")
WORKERS = int(os.environ.get("TAPIR_ASYNC_WORKERS", "2"))

app = FastAPI()


def log(ev, **fields):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps({"ev": ev, "t": time.time(), **fields}) + "\n")


class Peer:
    """One kept-alive HTTP/1.1 connection to 127.0.0.1:@port, opened on first use. Answers must
    carry a Content-Length (the model's uvicorn and the receiver's http.server always do)."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method, path, headers=(), body=b""):
        """Returns (status, body, req_bytes, resp_bytes, wall clock and perf_counter just before
        the first write, perf_counter once the answer's last byte was read)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        wall, start = time.time(), time.perf_counter()
        self.writer.write(data)
        await self.writer.drain()
        answer_head = await self.reader.readuntil(b"\r\n\r\n")
        lines = answer_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if "content-length" not in fields:
            raise RuntimeError(f"answer without Content-Length: {lines[0]}")
        answer = await self.reader.readexactly(int(fields["content-length"]))
        end = time.perf_counter()
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, answer, len(data), len(answer_head) + len(answer), wall, start, end

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Job(BaseModel):
    input: constr(min_length=1)
    sleep_ms: conint(ge=0, le=5000) = 30
    fail: bool = False
    ack_delay_ms: conint(ge=0, le=5000) = 0


class Queue:
    """The jobs waiting, and whether the workers may take them."""

    def __init__(self):
        self.jobs = asyncio.Queue()
        self.cond = asyncio.Condition()
        self.paused = False
        self.ids = itertools.count(1)

    async def put(self, job):
        async with self.cond:
            n = next(self.ids)
            us = time.time_ns() // 1000
            enqueue = f"{us // 1000000}.{us % 1000000:06d}"
            self.jobs.put_nowait((n, enqueue, job))
            log("accepted", job=n, enqueue=enqueue, qlen=self.jobs.qsize())
            self.cond.notify_all()
        return n

    async def take(self, worker):
        async with self.cond:
            await self.cond.wait_for(lambda: not self.paused and not self.jobs.empty())
            item = self.jobs.get_nowait()
            log("taken", job=item[0], worker=worker, qlen=self.jobs.qsize())
            return item

    async def pause(self, paused):
        async with self.cond:
            self.paused = paused
            log("paused" if paused else "resumed", qlen=self.jobs.qsize())
            self.cond.notify_all()
        return self.jobs.qsize()


QUEUE = None


async def work(worker):
    model, hook = Peer(MODEL_PORT), Peer(HOOK_PORT)
    while True:
        n, enqueue, job = await QUEUE.take(worker)
        where = "model"
        try:
            body = json.dumps({"input": job.input, "sleep_ms": job.sleep_ms,
                               "fail": job.fail}).encode()
            st, answer, req_b, resp_b, wall, _, _ = await model.request(
                "POST", "/predict", [("Content-Type", "application/json"),
                                     ("X-Request-Start", f"t={enqueue}"), ("X-Job-Id", n)], body)
            log("model", job=n, worker=worker, enqueue=enqueue, dispatch=wall, status=st,
                req_bytes=req_b, resp_bytes=resp_b, end=time.time())
            where = "webhook"
            result = json.dumps({"job_id": n, "status": st,
                                 "output": json.loads(answer).get("output")}).encode()
            st, _, req_b, resp_b, _, start, end = await hook.request(
                "POST", HOOK_PATH, [("Content-Type", "application/json")], result)
            log("webhook", job=n, worker=worker, method="POST", status=st,
                latency=end - start, req_bytes=req_b, resp_bytes=resp_b)
        except Exception as e:  # noqa: BLE001: logged for the test to fail on
            log("error", job=n, worker=worker, where=where, what=repr(e))
            model.close()
            hook.close()


@app.on_event("startup")
async def startup():
    global QUEUE
    QUEUE = Queue()
    app.state.workers = [asyncio.create_task(work(w)) for w in range(WORKERS)]


@app.exception_handler(RequestValidationError)
async def rejected(request: Request, exc: RequestValidationError):
    log("rejected", path=request.url.path, errors=len(exc.errors()))
    return JSONResponse({"detail": "not a job", "errors": len(exc.errors())}, status_code=422)


@app.post("/async/predict", status_code=202)
async def submit(job: Job):
    n = await QUEUE.put(job)
    if job.ack_delay_ms:
        await asyncio.sleep(job.ack_delay_ms / 1000)
    log("acked", job=n)
    return {"job_id": n}


@app.post("/pause")
async def pause():
    return {"paused": True, "qlen": await QUEUE.pause(True)}


@app.post("/resume")
async def resume():
    return {"paused": False, "qlen": await QUEUE.pause(False)}


@app.post("/probe-hooks")
async def probe_hooks():
    peer = Peer(HOOK_PORT)
    try:
        st, _, _, _, _, start, end = await peer.request("GET", HOOK_PATH)
    finally:
        peer.close()
    log("hook_get", status=st, latency=end - start)
    return {"status": st}
