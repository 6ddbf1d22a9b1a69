"""A third-party text API to forward to: FastAPI, served by uvicorn.

    UPPER_API_TOKEN=demo-token /usr/bin/python3 -m uvicorn --app-dir examples/forward \
        --host 127.0.0.1 --port 8000 upper_api:app

POST /v1/upper {"text": "hello", "lang": "en"} with "Authorization: Bearer <token>"
answers {"result": {"text": "HELLO", "length": 5}, "lang": "en", "model": "upper-1"};
the text "overload" answers 503, a wrong token 401.
"""
import os

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

app = FastAPI(title="upper")
TOKEN = os.environ.get("UPPER_API_TOKEN", "demo-token")


class UpperRequest(BaseModel):
    text: str
    lang: str = "en"


@app.post("/v1/upper")
def upper(req: UpperRequest, authorization: str = Header(default="")):
    if authorization != "Bearer " + TOKEN:
        raise HTTPException(status_code=401, detail="invalid token")
    if req.text == "overload":
        raise HTTPException(status_code=503, detail="overloaded, try later")
    return {"result": {"text": req.text.upper(), "length": len(req.text)}, "lang": req.lang, "model": "upper-1"}


@app.get("/healthz")
def healthz():
    return {"ok": True}
