#!/usr/bin/env python
# coding:utf-8
"""Personalisation test engine: wrapperLoadRes keeps each resource's bytes by id; a once
request with persId answers the loaded resource's bytes (error 30003 when that id is
not loaded), without persId it echoes its input."""

try:
    from aiges_embed import ResponseData, Response, DataListCls, callback  # noqa: F401
except ImportError:
    from aiges.dto import Response, ResponseData, DataListCls, callback  # noqa: F401

from aiges.sdk import WrapperBase, StringBodyField
from aiges.types import DataText, Once


class UserRequest(object):
    input1 = StringBodyField(key="input", value="x")


class UserResponse(object):
    accept1 = StringBodyField(key="input")


class Wrapper(WrapperBase):
    serviceId = "pyres"
    version = "v1.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self):
        super().__init__()
        self.res = {}

    def wrapperInit(self, config):
        return 0

    def wrapperFini(self):
        return 0

    def wrapperLoadRes(self, reqData, resId):
        self.res[resId] = bytes(reqData.list[0].data)
        return 0

    def wrapperUnloadRes(self, resId):
        self.res.pop(resId, None)
        return 0

    def wrapperError(self, ret):
        return "resource %d" % ret

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        node = reqData.list[0]
        data = node.data
        if persId:
            if persId not in self.res:
                return Response().response_err(30003)
            data = self.res[persId]
        res = Response()
        res.list.append(ResponseData(key=node.key, data=data, length=len(data), type=DataText, status=Once))
        return res
