"""Identity engine whose inputs can make it misbehave: key "raise" raises, "exit" kills
the process with os._exit, "hang" never returns, "code" returns the error code in data."""

import os
import time

from aiges.dto import Response, ResponseData
from aiges.sdk import WrapperBase
from aiges.types import Once


class Wrapper(WrapperBase):
    serviceId = "misbehave"

    def wrapperInit(cls, config):  # declared with cls, as some wrappers do
        if config.get("refuse"):
            return 7
        if config.get("raise"):
            raise RuntimeError("init failed: " + config["raise"])
        return 0

    def wrapperOnceExec(cls, params, reqData):  # an older two-argument signature
        res = Response()
        for node in reqData.list:
            if node.key == "raise":
                raise ValueError("bad input: " + node.data.decode())
            if node.key == "exit":
                os._exit(9)
            if node.key == "hang":
                time.sleep(3600)
            if node.key == "code":
                return res.response_err(int(node.data))
            res.list.append(ResponseData(key=node.key, data=node.data, length=len(node.data), type=node.type, status=Once))
        return res

    def wrapperError(cls, ret):
        if ret == 7:
            return "refused by config"
        return "misbehave error %d" % ret
