"""A callback-mode stream engine built on the aiges.stream handle pool: results are
pushed with callback(response, sid) from a handle thread; once requests go through
wrapperOnceExecAsync."""

try:
    from aiges_embed import callback
except ImportError:
    from aiges.dto import callback

from aiges.dto import Response, ResponseData, SessionCreateResponse
from aiges.sdk import WrapperBase
from aiges.stream import StreamHandleThread
from aiges.types import THREAD_MODE, DataEnd, Once


class UpperThread(StreamHandleThread):
    def run(self):
        while True:
            req = self.in_q.get()
            if req is None:
                return
            res = Response()
            for node in req.list:
                res.list.append(ResponseData(key="upper", data=node.data.upper(), length=len(node.data), status=node.status))
            self.session_thread.callback_fn(res, self.session_thread.sid)


class Wrapper(WrapperBase):
    serviceId = "upper"

    def wrapperInit(self, config):
        self.session.init_wrapper_config(config)
        self.session.init_handle_pool(THREAD_MODE, 2, UpperThread)
        return 0

    def wrapperOnceExecAsync(self, params, reqData, sid, persId=0):
        node = reqData.list[0]
        callback(Response([ResponseData(key="upper", data=node.data.upper(), length=len(node.data), status=Once)]), sid)
        return 0

    def wrapperCreate(self, params, sid):
        handle = self.session.get_idle_handle()
        if handle is None:
            return SessionCreateResponse(error_code=10110)
        s = self.session.get_session(handle)
        s.setup_sid(sid)
        s.setup_params(params)
        s.setup_callback_fn(callback)
        return SessionCreateResponse(handle=handle)

    def wrapperWrite(self, handle, req, sid):
        self.session.get_session(handle).in_q.put(req)
        return 0

    def wrapperDestroy(self, handle):
        self.session.reset_session(handle)
        self.session.push_back(handle)
        return 0
