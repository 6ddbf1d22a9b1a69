"""FastAPI + uvicorn baseline: the Python identity engine behind the ASE once route.

Run: python3 -m uvicorn identity_app:app --host 127.0.0.1 --port PORT --workers N
The function `identity` is the one the suite's python-identity engine wraps.
"""
import base64
import json

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()

DATA_FIELDS = ("text", "audio", "image", "video", "other")


def identity(data: bytes) -> bytes:
    """The engine: returns its input."""
    return data


@app.get("/healthz")
async def healthz():
    return {"ok": True}


@app.post("/v1/private/{service}")
async def once(service: str, request: Request):
    try:
        req = json.loads(await request.body())
    except ValueError as e:
        body = {"header": {"code": 10163, "message": str(e), "sid": ""}}
        return Response(json.dumps(body), status_code=400, media_type="application/json")
    out = {}
    for name, item in (req.get("payload") or {}).items():
        item = dict(item)
        for field in DATA_FIELDS:
            if field in item:
                item[field] = base64.b64encode(identity(base64.b64decode(item[field]))).decode()
        out[name] = item
    body = {"header": {"code": 0, "message": "success", "sid": "fastapi", "status": 3}, "payload": out}
    return Response(json.dumps(body), media_type="application/json")
