"""Runtime semantics as AIGES runs Python wrappers: asyncMode, realTimeRlt, a once call
returning None, personalisation resources, psr ids, a wrapper.py without Wrapper."""

import textwrap
import unittest

from aiges.runtime import protocol as P
from tests.test_runtime import Conn

SESSION_WRAPPER = textwrap.dedent('''
    from aiges.dto import Response, ResponseData, SessionCreateResponse, callback
    from aiges.sdk import WrapperBase

    class Wrapper(WrapperBase):
        def wrapperInit(self, config):
            self.reads = 0
            self.created = []
            self.once_pers = []
            self.res = {}
            return 0

        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
            self.once_pers.append(persId)
            if reqData.get("none"):
                return None
            return Response([ResponseData(key="out", data=b"%d" % persId, length=0)])

        def wrapperCreate(self, params, sid, persId=0, usrTag=""):
            self.created.append((sid, persId, usrTag))
            self.frames = []
            return SessionCreateResponse(handle="h-" + sid)

        def wrapperWrite(self, handle, req, sid):
            self.frames.append(req.list[0].data)
            if self.push:
                callback(Response([ResponseData(key="cb", data=req.list[0].data, length=len(req.list[0].data),
                                                status=req.list[0].status)]), sid)
            return 0

        push = False

        def wrapperRead(self, handle, sid):
            self.reads += 1
            data = b"+".join(self.frames)
            return Response([ResponseData(key="all", data=data, length=len(data), status=2)])

        def wrapperLoadRes(self, reqData, resId):
            if reqData.get("bad"):
                return 41
            self.res[resId] = reqData.list[0].data
            return 0

        def wrapperUnloadRes(self, resId):
            return 0 if self.res.pop(resId, None) is not None else 42

        def wrapperError(self, ret):
            return {41: "bad resource", 42: "no such resource"}.get(ret, "")
''')


def result_items(body):
    d = P.Decoder(body)
    status = d.u8()
    return status, d.payloads(), d.i32(), d.str()


class TestSessionModes(unittest.TestCase):
    def _session(self, c, frames):
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({})), ("ok", b""))
        self.assertEqual(c.call(P.MSG_OPEN, 10, P.encode_session_params({"tag": "sid-1", "psr": [7, 8]})), ("ok", b""))
        for i, (data, status) in enumerate(frames):
            self.assertEqual(c.call(P.MSG_WRITE, 20 + i, P.encode_write(10, i, status, [("in", 0, {}, data)])), ("ok", b""))

    def test_read_after_every_write_by_default(self):
        c = Conn(self, SESSION_WRAPPER)
        self._session(c, [(b"a", 0), (b"b", 1), (b"c", 2)])
        self.assertEqual(c.rt.wrapper.reads, 3)
        self.assertEqual([result_items(b)[1][0][3] for _, b in c.results], [b"a", b"a+b", b"a+b+c"])

    def test_results_at_end_reads_after_the_last_frame_only(self):
        c = Conn(self, SESSION_WRAPPER, results_at_end=True)
        self._session(c, [(b"a", 0), (b"b", 1), (b"c", 2)])
        self.assertEqual(c.rt.wrapper.reads, 1)
        self.assertEqual(len(c.results), 1)
        self.assertEqual(result_items(c.results[0][1]), (2, [("all", 0, {}, b"a+b+c")], 0, ""))

    def test_async_mode_never_reads(self):
        c = Conn(self, SESSION_WRAPPER.replace("push = False", "push = True"), async_mode=True)
        self._session(c, [(b"a", 0), (b"b", 2)])
        self.assertEqual(c.rt.wrapper.reads, 0)
        self.assertEqual([(sid, result_items(b)[:2]) for sid, b in c.results],
                         [(10, (0, [("cb", 0, {}, b"a")])), (10, (2, [("cb", 0, {}, b"b")]))])

    def test_psr_ids_reach_the_wrapper(self):
        c = Conn(self, SESSION_WRAPPER)
        self._session(c, [])
        self.assertEqual(c.rt.wrapper.created, [("sid-1", 7, "sid-1")])
        st, body = c.call(P.MSG_ONCE, 30, P.encode_request({"inputs": [("in", 0, {}, b"x")], "psr": [99]}))
        self.assertEqual(st, "ok")
        self.assertEqual(P.Decoder(body).payloads(), [("out", 0, {}, b"99")])
        c.call(P.MSG_ONCE, 31, P.encode_request({"inputs": [("in", 0, {}, b"x")]}))
        self.assertEqual(c.rt.wrapper.once_pers, [99, 0])


class TestOnceNone(unittest.TestCase):
    def test_none_is_an_engine_error(self):
        c = Conn(self, SESSION_WRAPPER)
        c.call(P.MSG_INIT, 1, P.encode_map({}))
        st, err = c.call(P.MSG_ONCE, 2, P.encode_request({"inputs": [("none", 0, {}, b"")]}))
        self.assertEqual((st, err[0]), ("err", 30003))
        self.assertIn("wrapperOnceExec returned None", err[1])


class TestResources(unittest.TestCase):
    def test_load_and_unload(self):
        c = Conn(self, SESSION_WRAPPER)
        c.call(P.MSG_INIT, 1, P.encode_map({}))
        self.assertEqual(c.call(P.MSG_LOAD_RES, 2, P.encode_load_res(5, [("res", 0, {}, b"lexicon")])), ("ok", b""))
        self.assertEqual(c.rt.wrapper.res, {5: b"lexicon"})
        self.assertEqual(c.call(P.MSG_LOAD_RES, 3, P.encode_load_res(6, [("bad", 0, {}, b"")])),
                         ("err", (41, "bad resource")))
        self.assertEqual(c.call(P.MSG_UNLOAD_RES, 4, P.encode_unload_res(5)), ("ok", b""))
        self.assertEqual(c.call(P.MSG_UNLOAD_RES, 5, P.encode_unload_res(5)), ("err", (42, "no such resource")))
        st, err = c.call(P.MSG_LOAD_RES, 6, b"\x00\x00")
        self.assertEqual((st, err[0]), ("err", 10009))

    def test_wrapper_without_resources_answers_invalid_op(self):
        src = textwrap.dedent('''
            from aiges.sdk import WrapperBase
            class Wrapper(WrapperBase):
                def wrapperInit(self, config):
                    return 0
        ''')
        c = Conn(self, src)
        c.call(P.MSG_INIT, 1, P.encode_map({}))
        st, err = c.call(P.MSG_LOAD_RES, 2, P.encode_load_res(1, []))
        self.assertEqual((st, err[0]), ("err", 10003))
        self.assertIn("wrapperLoadRes", err[1])
        st, err = c.call(P.MSG_UNLOAD_RES, 3, P.encode_unload_res(1))
        self.assertEqual((st, err[0]), ("err", 10003))


class TestNoWrapperClass(unittest.TestCase):
    def test_missing_wrapper_class_says_so(self):
        c = Conn(self, "from aiges.sdk import WrapperBase\n\nclass Engine(WrapperBase):\n    pass\n")
        st, err = c.call(P.MSG_INIT, 1, P.encode_map({}))
        self.assertEqual((st, err[0]), ("err", 30001))
        self.assertIn("defines no class Wrapper", err[1])


if __name__ == "__main__":
    unittest.main()
