#!/usr/bin/env python
# coding:utf-8
"""Identity engine: every output is the matching input, unchanged.

Once: each input item comes back under the same key, type and data.
Stream: every frame written is read back at once with the frame's status, so the
session ends with the frame whose status is END.
"""

import threading

try:
    from aiges_embed import ResponseData, Response, DataListCls, SessionCreateResponse, callback  # noqa: F401
except ImportError:
    from aiges.dto import Response, ResponseData, DataListCls, SessionCreateResponse, callback  # noqa: F401

from aiges.sdk import WrapperBase, StringParamField, StringBodyField
from aiges.types import DataText, Once
from aiges.utils.log import log


class UserRequest(object):
    """Inputs (input*) and parameters (params*) of the engine."""
    input1 = StringBodyField(key="text", value="hello, identity")
    params1 = StringParamField(key="mode", enums=["identity"], value="identity")


class UserResponse(object):
    """Outputs (accept*) of the engine."""
    accept1 = StringBodyField(key="text")


class Wrapper(WrapperBase):
    serviceId = "python-echo"
    version = "v1.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.pending = {}   # handle -> list of ResponseData not read yet
        self.next_handle = 0

    def wrapperInit(self, config):
        log.info("python-echo init: %s", config)
        return 0

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        res = Response()
        for node in reqData.list:
            res.list.append(ResponseData(key=node.key, data=node.data, length=len(node.data),
                                         type=node.type, status=Once))
        return res

    def wrapperCreate(self, params, sid, persId=0, usrTag=""):
        with self.lock:
            self.next_handle += 1
            handle = "h%d" % self.next_handle
            self.pending[handle] = []
        return SessionCreateResponse(handle=handle, error_code=0)

    def wrapperWrite(self, handle, req, sid):
        with self.lock:
            out = self.pending.get(handle)
            if out is None:
                return 10008
            for node in req.list:
                out.append(ResponseData(key=node.key, data=node.data, length=len(node.data),
                                        type=node.type, status=node.status))
        return 0

    def wrapperRead(self, handle, sid):
        res = Response()
        with self.lock:
            res.list, self.pending[handle] = self.pending.get(handle, []), []
        return res

    def wrapperDestroy(self, handle):
        with self.lock:
            self.pending.pop(handle, None)
        return 0

    def wrapperFini(self):
        return 0

    def wrapperError(self, ret):
        if ret == 10008:
            return "unknown session handle"
        return "python-echo error %d" % ret

    def wrapperTestFunc(self, data, respData):
        return 0


if __name__ == "__main__":
    w = Wrapper()
    w.schema()
    w.run()
