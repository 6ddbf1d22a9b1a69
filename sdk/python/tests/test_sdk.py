import os
import queue
import tempfile
import threading
import unittest

import aiges
from aiges import dto, types
from aiges.core import types as core_types
from aiges.sdk import (WrapperBase, StringBodyField, AudioBodyField, ImageBodyField, StringParamField,
                       NumberParamField, IntegerParamField, BooleanParamField, DryRunError)
from aiges.stream import StreamHandleThread
from aiges.utils.log import log


class Req(object):
    input1 = StringBodyField(key="text", value="hi")
    input2 = AudioBodyField(key="audio")
    params1 = StringParamField(key="lang", enums=["zh", "en"], value="zh", required=True)
    params2 = NumberParamField(key="speed", minimum=0, maximum=10, value=5)
    params3 = IntegerParamField(key="n")
    params4 = BooleanParamField(key="punc", default=True)
    other = "not a field"


class Resp(object):
    accept1 = StringBodyField(key="text")


class Echo(WrapperBase):
    serviceId = "echo"
    version = "v2"
    requestCls = Req()
    responseCls = Resp()
    config = {"a": "b"}

    def wrapperInit(cls, config):
        cls.seen_config = config
        return 0

    def wrapperOnceExec(self, params, reqData):
        self.seen_params = params
        n = reqData.get("text")
        return dto.Response([dto.ResponseData(key="text", data=n.data, length=len(n.data), type=types.DataText)])


class TestConstants(unittest.TestCase):
    def test_values(self):
        for m in (types, core_types):
            self.assertEqual((m.STRING, m.AUDIO, m.IMAGE, m.VIDEO), (0, 1, 2, 3))
            self.assertEqual((m.DataText, m.DataAudio, m.DataImage, m.DataVideo), (0, 1, 2, 3))
            self.assertEqual((m.DataBegin, m.DataContinue, m.DataEnd, m.DataOnce, m.Once), (0, 1, 2, 3, 3))
            self.assertEqual((m.THREAD_MODE, m.PROCESS_MODE), ("thread", "process"))
        self.assertEqual(log.name, "aiges")
        self.assertTrue(aiges.__version__)


class TestDTO(unittest.TestCase):
    def test_objects(self):
        dl = dto.DataListCls()
        dl.list.append(dto.DataListNode(key="a", data=b"xy", len=2, type=types.DataAudio, status=types.DataBegin))
        self.assertEqual(dl.get("a").data, b"xy")
        self.assertIsNone(dl.get("b"))
        r = dto.ResponseData()
        self.assertEqual((r.key, r.data, r.len, r.type, r.status), ("", "", 0, types.DataText, types.Once))
        resp = dto.Response()
        self.assertIs(resp.response_err(30003), resp)
        self.assertEqual(resp.error_code, 30003)
        s = dto.SessionCreateResponse(handle="h")
        self.assertEqual((s.handle, s.error_code), ("h", 0))

    def test_callback_hook(self):
        got = []
        prev = dto.set_callback_hook(lambda resp, sid: got.append((resp, sid)) or 0)
        try:
            import aiges_embed
            aiges_embed.callback("r", "sid-1")
            dto.callback("r2", "sid-2")
        finally:
            dto.set_callback_hook(prev)
        self.assertEqual(got, [("r", "sid-1"), ("r2", "sid-2")])
        self.assertEqual(dto.callback(dto.Response(), "nobody"), 0)


class TestWrapperBase(unittest.TestCase):
    def test_schema(self):
        doc = Echo().schema(show=False)
        meta = doc["meta"]
        self.assertEqual((meta["serviceId"], meta["version"], meta["route"], meta["service"]),
                         ("echo", "v2", "/v1/private/echo", ["echo"]))
        self.assertEqual(meta["echo"]["input"], {"text": {"dataType": "text"}, "audio": {"dataType": "audio"}})
        self.assertEqual(meta["echo"]["accept"], {"text": {"dataType": "text"}})
        svc = doc["schemainput"]["properties"]["parameter"]["properties"]["echo"]
        self.assertEqual(svc["properties"]["lang"]["enum"], ["zh", "en"])
        self.assertEqual(svc["properties"]["speed"]["type"], "number")
        self.assertEqual(svc["properties"]["n"]["type"], "integer")
        self.assertEqual(svc["properties"]["punc"]["type"], "boolean")
        self.assertEqual(svc["required"], ["lang"])
        self.assertIn("audio", doc["schemainput"]["properties"]["payload"]["properties"])
        self.assertIn("text", doc["schemaoutput"]["properties"]["payload"]["properties"])

    def test_run(self):
        w = Echo()
        resp = w.run()
        self.assertEqual(resp.list[0].data, b"hi")
        self.assertEqual(w.seen_config, {"a": "b"})
        self.assertEqual(w.seen_params, {"lang": "zh", "speed": "5", "n": "0", "punc": "true"})

    def test_run_reads_paths(self):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"\x01\x02")
        try:
            self.assertEqual(AudioBodyField("a", path=f.name).test_value, b"\x01\x02")
            self.assertEqual(ImageBodyField("i", path=f.name, need_base64=True).test_value, b"AQI=")
        finally:
            os.unlink(f.name)
        self.assertEqual(StringBodyField("s", value="hi", need_base64=True).test_value, b"aGk=")

    def test_run_checks(self):
        bad = {
            "not a Response": lambda: "x",
            "empty": lambda: dto.Response(),
            "str data": lambda: dto.Response([dto.ResponseData("text", "abc", 3)]),
            "len": lambda: dto.Response([dto.ResponseData("text", b"abc", 2)]),
            "twice": lambda: dto.Response([dto.ResponseData("text", b"a", 1), dto.ResponseData("text", b"b", 1)]),
            "undeclared": lambda: dto.Response([dto.ResponseData("other", b"a", 1)]),
            "type": lambda: dto.Response([dto.ResponseData("text", b"a", 1, type=types.DataAudio)]),
            "error": lambda: dto.Response().response_err(30003),
        }
        for name, make in bad.items():
            class Bad(Echo):
                def wrapperOnceExec(self, params, reqData, usrTag="", persId=0, _m=make):
                    return _m()
            with self.assertRaises(DryRunError, msg=name):
                Bad().run()

    def test_defaults_tolerated(self):
        w = WrapperBase()
        self.assertEqual(w.wrapperTestFunc(b"", None), 0)
        self.assertEqual(w.wrapperLoadRes(None, 1), 0)
        self.assertEqual(w.wrapperUnloadRes(1), 0)
        self.assertEqual(w.wrapperOnceExec({}, dto.DataListCls()).error_code, 30003)


class Upper(StreamHandleThread):
    def run(self):
        while True:
            req = self.in_q.get()
            if req is None:
                return
            self.session_thread.callback_fn(req.upper(), self.session_thread.sid)


class TestStream(unittest.TestCase):
    def test_handle_pool(self):
        w = WrapperBase()
        w.session.init_wrapper_config({"x": 1})
        w.session.init_handle_pool(types.THREAD_MODE, 2, Upper)
        h1, h2 = w.session.get_idle_handle(), w.session.get_idle_handle()
        self.assertIsNotNone(h1)
        self.assertNotEqual(h1, h2)
        self.assertIsNone(w.session.get_idle_handle())
        got = queue.Queue()
        s = w.session.get_session(h1)
        s.setup_sid("sid-9")
        s.setup_params({"p": "1"})
        s.setup_callback_fn(lambda resp, sid: got.put((resp, sid)))
        s.in_q.put("abc")
        self.assertEqual(got.get(timeout=5), ("ABC", "sid-9"))
        w.session.reset_session(h1)
        self.assertEqual((s.sid, s.params, s.callback_fn), ("", {}, None))
        w.session.push_back(h1)
        w.session.set_idle_session(h2)
        w.session.push_back(h2)  # twice: still one entry
        self.assertEqual(w.session.idle_count(), 2)
        for h in (h1, h2):
            w.session.get_session(h).in_q.put(None)
        self.assertIsInstance(w.session.get_session(h1).thread, threading.Thread)


if __name__ == "__main__":
    unittest.main()
