# SPDX-License-Identifier: GPL-2.0
"""The model server behind the async gateway (async_gateway.py): answers async jobs on /predict
after a known sleep, and plain requests on /sync, logging when each request reached the app.

Run by Debian's uvicorn: `python3 -m uvicorn --app-dir tests/e2e/servers async_model:app`, set up
by TAPIR_ASYNC_MODEL_LOG (the log, JSON lines) and TAPIR_ASYNC_MODEL_SLEEP_MS (default 30).

Routes: POST /predict: the body, when it is a JSON object, may say "sleep_ms" (else the default)
and "fail" (answer 500 instead of 200); any other body is a job with the defaults. The answer is
JSON: the job id the gateway sent (X-Job-Id), the "input" reversed. GET and POST /sync answer 200
at once.

Log: one JSON line per request, appended when its answer is ready: method, path, query, status,
job (X-Job-Id or null), tag (X-Test-Tag or null: a test's own name for a request), arrival
(time.time() when the app got the request: after its first byte was read, so an upper bound of
that read) and the first 80 characters of the X-Request-Start, X-Queue-Start and X-Async-Job
headers (null when absent)."""
import asyncio
import json
import os
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

LOG = os.environ.get("TAPIR_ASYNC_MODEL_LOG")
SLEEP_MS = float(os.environ.get("TAPIR_ASYNC_MODEL_SLEEP_MS", "30"))
SHOWN = ("x-request-start", "x-queue-start", "x-async-job")

app = FastAPI()


def log(request, arrival, status, **extra):
    if not LOG:
        return
    rec = {"method": request.method, "path": request.url.path, "query": request.url.query,
           "status": status, "job": request.headers.get("x-job-id"),
           "tag": request.headers.get("x-test-tag"), "arrival": arrival}
    for h in SHOWN:
        v = request.headers.get(h)
        rec[h] = None if v is None else v[:80]
    rec.update(extra)
    with open(LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")


@app.post("/predict")
async def predict(request: Request):
    arrival = time.time()
    body = await request.body()
    try:
        spec = json.loads(body)
    except ValueError:
        spec = None
    if not isinstance(spec, dict):
        spec = {}
    sleep_ms = spec.get("sleep_ms", SLEEP_MS)
    await asyncio.sleep(sleep_ms / 1000)
    status = 500 if spec.get("fail") else 200
    log(request, arrival, status, sleep_ms=sleep_ms)
    text = spec.get("input") if isinstance(spec.get("input"), str) else ""
    return JSONResponse({"job_id": request.headers.get("x-job-id"), "output": text[::-1]},
                        status_code=status)


@app.api_route("/sync", methods=["GET", "POST"])
async def sync(request: Request):
    arrival = time.time()
    await request.body()
    log(request, arrival, 200)
    return {"ok": True}
