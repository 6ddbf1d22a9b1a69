"""A wrapper that reports spans, events and attributes with aiges.trace (loader tests).

Once: a span "prepare" (attribute n) holding a span "tokenize", an event "cache" on the
engine-call span, the attribute model=echo-1; param fail=1 raises inside the span
"infer". Sessions (sync, wrapperRead): each wrapperWrite opens a span "frame" with the
input's status and adds an event "seen" with its length.
"""

from aiges import trace
from aiges.dto import Response, ResponseData, SessionCreateResponse
from aiges.sdk import WrapperBase


class Wrapper(WrapperBase):
    serviceId = "traced"

    def wrapperInit(self, config):
        self.last = {}
        return 0

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        n = reqData.list[0]
        with trace.span("prepare", n=len(n.data)) as sp:
            with trace.span("tokenize", fast=True):
                pass
            sp.add_event("prepared", ratio=0.5)
        trace.event("cache", hit=False)
        trace.set_attributes(model="echo-1")
        if params.get("fail") == "1":
            with trace.span("infer"):
                raise ValueError("infer failed")
        return Response([ResponseData(key=n.key, data=n.data, length=len(n.data), type=n.type, status=n.status)])

    def wrapperError(self, ret):
        return "traced error %d" % ret

    def wrapperCreate(self, params, sid, persId=0, usrTag=""):
        trace.event("created", sid=sid)
        return SessionCreateResponse(handle="h-" + sid)

    def wrapperWrite(self, handle, req, sid):
        n = req.list[0]
        with trace.span("frame", status=int(n.status)):
            trace.event("seen", bytes=len(n.data))
        self.last[handle] = n
        return 0

    def wrapperRead(self, handle, sid):
        n = self.last.pop(handle, None)
        if n is None:
            return None
        return Response([ResponseData(key="out", data=n.data, length=len(n.data), status=n.status)])

    def wrapperDestroy(self, handle):
        self.last.pop(handle, None)
        return 0
