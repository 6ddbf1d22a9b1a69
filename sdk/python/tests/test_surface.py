"""The public surface of the aiges package (0.16) that wrappers import, and the template
wrapper and stream example run against it."""

import contextlib
import importlib
import io
import os
import queue
import subprocess
import sys
import unittest

from aiges import dto
from aiges.types import DataBegin, DataEnd, DataImage, DataText

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)

# Every module of the package with the public names wrappers use (listed from its source).
SURFACE = {
    "aiges.dto": ["DataListNode", "DataListCls", "ResponseData", "Response", "SessionCreateResponse",
                  "callback", "init_rq", "callback_metric", "DataText", "DataAudio", "DataImage", "DataVideo",
                  "Once", "DataBegin", "DataContinue", "DataEnd", "DataOnce"],
    "aiges_embed": ["DataListNode", "DataListCls", "ResponseData", "Response", "SessionCreateResponse",
                    "callback", "init_rq", "callback_metric"],
    "aiges.types": ["STRING", "AUDIO", "IMAGE", "VIDEO", "DataText", "DataAudio", "DataImage", "DataVideo",
                    "DataBegin", "DataContinue", "DataEnd", "DataOnce", "Once", "THREAD_MODE", "PROCESS_MODE"],
    "aiges.core.types": ["STRING", "AUDIO", "IMAGE", "VIDEO", "DataText", "DataAudio", "DataImage", "DataVideo",
                         "DataBegin", "DataContinue", "DataEnd", "DataOnce", "Once", "THREAD_MODE",
                         "PROCESS_MODE", "Types", "Status"],
    "aiges.sdk": ["WrapperBase", "Metaclass", "Field", "ParamField", "PayloadField", "StringBodyField",
                  "JsonBodyField", "AudioBodyField", "ImageBodyField", "StringParamField", "NumberParamField",
                  "IntegerParamField", "BooleanParamField", "SUB", "CALL", "CALL_TYPE", "HOSTS", "ROUTEKEY",
                  "STRING", "AUDIO", "IMAGE", "VIDEO", "type_map", "tpl", "Response", "ResponseData",
                  "DataListNode", "DataListCls"],
    "aiges.stream": ["SessionManager", "Pool", "ThreadPool", "ProcessThreadPool", "StreamHandleThread",
                     "WorkerProcess", "WorkerThread", "lock", "THREAD_MODE", "PROCESS_MODE"],
    "aiges.callback": ["set_up", "callback", "q"],
    "aiges.errors": ["OK", "INIT_ERROR", "USER_INIT_ERROR", "USER_EXEC_ERROR"],
    "aiges.utils.log": ["log", "getFileLogger"],
    "aiges.utils.encode": [],
    # Server, REST, UI and tooling modules: they import; their names raise when called.
    "aiges.serve": ["AIGESServer"], "aiges.server": [], "aiges.server2": [], "aiges.serve_new": [],
    "aiges.worker": [], "aiges.aiges_inner": [], "aiges.aiges_inner.grpc_stdio_pb2": [],
    "aiges.aiges_inner.grpc_stdio_pb2_grpc": [], "aiges.aiges_inner.aiges_inner_pb2": [],
    "aiges.protocol.struct": [], "aiges.protocol.xsfcli": [], "aiges.concurrent.pool": [],
    "aiges.concurrent.fixpool": [], "aiges.context.context": [], "aiges.backend": [],
    "aiges.core.aiges_methods": ["init_metadata"], "aiges.core.metadata": ["validate_model_metadata"],
    "aiges.core.rest": ["get_rest_microservice"], "aiges.utils.flask_utils": [], "aiges.utils.audit": [],
    "aiges.utils.audit_service": [], "aiges.utils.shm.shm_helper": [], "aiges.gradio_util.component": [],
    "aiges.schema.aischema": [], "aiges.schema.types": [], "aiges.schema.utils.schemaUtils": [],
    "aiges.client.client": [], "aiges.client.utils.aipass_client": [], "aiges.ws.app": [],
    "aiges.cmd.root": [], "aiges.cmd.create": [], "aiges.cmd.package": [], "aiges.cmd.config": [],
}

HEAVY = ("flask", "gradio", "pydantic", "grpc", "jinja2", "yaml", "seldon_core")


class TestSurface(unittest.TestCase):
    def test_every_module_and_name_imports(self):
        for mod, names in SURFACE.items():
            m = importlib.import_module(mod)
            for n in names:
                self.assertTrue(hasattr(m, n), "%s.%s" % (mod, n))

    def test_no_heavy_dependency_is_imported(self):
        code = "import sys\n" + "".join("import %s\n" % m for m in SURFACE) + \
               "print(','.join(sorted(m for m in %r if m in sys.modules)))" % (HEAVY,)
        out = subprocess.run([sys.executable, "-c", code], cwd=SDK, env=dict(os.environ, PYTHONPATH=SDK),
                             capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(out, "")

    def test_meaningless_names_raise_when_called(self):
        from aiges.core.rest import get_rest_microservice
        with self.assertRaisesRegex(RuntimeError, "not available"):
            get_rest_microservice(None, None)

    def test_dto_helpers(self):
        r = dto.ResponseData()
        r.setDataType(DataImage)
        r.setData(b"abc")
        r.setStatus(DataEnd)
        self.assertEqual((r.type, r.data, r.len, r.status), (DataImage, b"abc", 3, DataEnd))
        self.assertIn('"len": 3', r.toJSON())
        self.assertEqual(dto.init_rq(), 0)
        self.assertEqual(dto.callback_metric("tag", "business.total", 1), 0)
        from aiges.core.types import Types, Status
        self.assertEqual((Types.DataAudio, Status.DataEnd, Status.Once), (1, 2, 3))
        from aiges.utils.log import getFileLogger
        self.assertIs(getFileLogger(), getFileLogger())

    def test_callback_module(self):
        import aiges.callback as cb
        got, q = [], queue.Queue()
        prev = dto.set_callback_hook(lambda resp, sid: got.append((resp, sid)) or 0)
        cb.set_up(q)
        try:
            resp = dto.Response([dto.ResponseData("k", b"v", 1)])
            self.assertEqual(cb.callback(resp, "sid-1"), 0)
            self.assertEqual(cb.callback(resp, "handle", "sid-2"), 0)
        finally:
            dto.set_callback_hook(prev)
            cb.set_up(None)
        self.assertEqual([s for _, s in got], ["sid-1", "sid-2"])
        self.assertEqual(q.qsize(), 2)

    def test_field_classes_and_schema(self):
        from aiges.sdk import (WrapperBase, JsonBodyField, StringBodyField, StringParamField,
                               BooleanParamField, ImageBodyField)

        class Req(object):
            input1 = JsonBodyField(key="query", value={"q": "x"})
            input2 = StringParamField(key="patch", value="0")  # a parameter, whatever its name
            flag = BooleanParamField(key="flag", default=True)
            image = ImageBodyField(key="img", path=os.path.join(HERE, "fixtures", "template", "test_data", "test.png"))

        class Resp(object):
            accept1 = StringBodyField(key="result")

        class W(WrapperBase):
            serviceId = "s"
            requestCls = Req()
            responseCls = Resp()

        w = W(legacy=False)
        doc = w.schema(show=False)
        self.assertEqual(doc["meta"]["s"]["input"], {"query": {"dataType": "text"}, "img": {"dataType": "image"}})
        self.assertEqual(set(doc["schemainput"]["properties"]["parameter"]["properties"]["s"]["properties"]),
                         {"patch", "flag", "result"})
        self.assertEqual(Req.input1.test_value, '{"q": "x"}')
        fields, _ = w._parse_inputs()
        self.assertEqual(set(fields), {"query", "img"})
        self.assertEqual(w._parse_params()[0]["flag"], {"type": "boolean"})
        self.assertEqual(w.params_test_values, {"patch": "0", "flag": True})
        self.assertEqual(set(W.__mappings__), {"inputs", "accepts", "params"})
        self.assertFalse(w.check_resp(None))
        self.assertTrue(w.check_resp(dto.Response([dto.ResponseData("result", b"{}", 2)])))


class TestFixtures(unittest.TestCase):
    def _load(self, name):
        from aiges.runtime.worker import load_wrapper
        d = os.path.join(HERE, "fixtures", name)
        cwd = os.getcwd()
        os.chdir(d)
        self.addCleanup(os.chdir, cwd)
        return load_wrapper(d)

    def test_template_wrapper_dry_run_prints_outputs(self):
        from aiges.sdk import DryRunError
        w = self._load("template")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaisesRegex(DryRunError, "'ccc' is not declared"):
            w.run()
        self.assertRegex(out.getvalue(), r"mmocr backup.0: 3 output\(s\)")
        self.assertRegex(out.getvalue(), r"ccc\s+type=text\s+status=1 len=73\s+<73 bytes: 89 50 4e 47")
        self.assertEqual(w.schema(show=False)["meta"]["mmocr"]["accept"],
                         {"boxes": {"dataType": "text"}, "boxes2": {"dataType": "text"}})

    def test_dry_run_from_the_command_line(self):
        d = os.path.join(HERE, "fixtures", "template")
        p = subprocess.run([sys.executable, "wrapper.py"], cwd=d, env=dict(os.environ, PYTHONPATH=SDK),
                           capture_output=True, text=True)
        self.assertIn("ccc", p.stdout)
        self.assertIn("'ccc' is not declared in the response class", p.stderr)

    def test_stream_example_session_manager(self):
        w = self._load("stream_mock")
        self.assertEqual(w.wrapperInit({}), 0)
        got = []
        prev = dto.set_callback_hook(lambda resp, sid: got.append((sid, resp.list[0].status)) or 0)
        try:
            s = w.wrapperCreate({}, "sid-1")
            self.assertEqual(w.session.idle_count(), 9)
            node = dto.DataListNode(key="data", data=b"x", len=1, type=DataImage, status=DataBegin)
            self.assertEqual(w.wrapperWrite(s.handle, dto.DataListCls([node]), "sid-1"), 0)
            node2 = dto.DataListNode(key="data", data=b"y", len=1, type=DataImage, status=DataEnd)
            self.assertEqual(w.wrapperWrite(s.handle, dto.DataListCls([node2]), "sid-1"), 0)
            for _ in range(200):
                if len(got) == 2 and w.session.idle_count() == 10:
                    break
                import time
                time.sleep(0.01)
        finally:
            dto.set_callback_hook(prev)
        self.assertEqual(got, [("sid-1", DataBegin), ("sid-1", DataEnd)])
        self.assertEqual(w.session.idle_count(), 10, "the last frame's reset returns the handle")
        self.assertIsNone(w.wrapperOnceExec({}, dto.DataListCls()))


if __name__ == "__main__":
    unittest.main()
