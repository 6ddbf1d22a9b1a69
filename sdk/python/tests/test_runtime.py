import io
import os
import select
import socket
import tempfile
import textwrap
import threading
import time
import unittest

from aiges import dto
from aiges.runtime import protocol as P
from aiges.runtime.calls import call_compat, positional_arity
from aiges.runtime.worker import Runtime

WRAPPER = textwrap.dedent('''
    from aiges.dto import Response, ResponseData, SessionCreateResponse
    from aiges.sdk import WrapperBase

    class Wrapper(WrapperBase):
        def wrapperInit(self, config):
            import threading
            self.config = config
            self.release = threading.Event()
            return 0

        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
            if reqData.get("slow"):
                self.release.wait(10)
            if reqData.get("boom"):
                raise KeyError("boom")
            n = reqData.list[0]
            return Response([ResponseData(key=n.key, data=n.data + params.get("suffix", "").encode(), length=0, type=n.type, status=n.status)])

        def wrapperCreate(self, params, sid, persId=0, usrTag=""):
            return SessionCreateResponse(handle="h-" + sid)

        def wrapperWrite(self, handle, req, sid):
            self.last = (handle, req.list[0].data, req.list[0].status, sid)
            return 0

        def wrapperRead(self, handle, sid):
            h, data, status, _ = self.last
            return Response([ResponseData(key="out", data=data.decode(), length=len(data), status=status)])

        def wrapperDestroy(self, handle):
            return 0
''')


class TestProtocol(unittest.TestCase):
    def test_request_round_trip(self):
        req = {"tag": "t", "headers": {"a": "1"}, "params": {"p": "v"}, "expect": [("out", 0, {"encoding": "utf8"})],
               "inputs": [("in", 1, {"rate": "16000"}, b"\x00\xff")], "psr": [1, 2]}
        d = P.Decoder(P.encode_request(req))
        self.assertEqual(d.request(), req)
        d.done()
        sid, sync, status, items = P.Decoder(P.encode_write(5, -1, 2, req["inputs"])).write()
        self.assertEqual((sid, sync, status, items), (5, -1, 2, req["inputs"]))

    def test_frames(self):
        buf = io.BytesIO(P.frame(P.MSG_ONCE, 1 << 40, b"body") + P.frame(P.MSG_FINI, 2))
        self.assertEqual(P.read_frame(buf), (P.MSG_ONCE, 1 << 40, b"body"))
        self.assertEqual(P.read_frame(buf), (P.MSG_FINI, 2, b""))
        self.assertIsNone(P.read_frame(buf))
        with self.assertRaises(EOFError):
            P.read_frame(io.BytesIO(P.frame(P.MSG_ONCE, 1, b"body")[:-1]))
        with self.assertRaises(P.Malformed):
            P.read_frame(io.BytesIO(b"\x00\x00\x00\x01" + b"\x00" * 9))

    def test_frame_reader(self):
        """FrameReader returns the same frames however the bytes arrive: many frames in one
        recv, a frame split over several, a frame larger than its buffer."""
        big = b"b" * (P.READ_BUFFER * 2 + 3)
        frames = [(P.MSG_ONCE, 1 << 40, b"body"), (P.MSG_FINI, 2, b""), (P.MSG_ONCE, 3, big), (P.MSG_OK, 4, b"x")]
        wire = b"".join(P.frame(*f) for f in frames)
        for chunk in (len(wire), 1, 7, 4096):
            a, b = socket.socketpair()
            self.addCleanup(a.close)
            self.addCleanup(b.close)
            sender = threading.Thread(target=lambda: [a.sendall(wire[i:i + chunk]) for i in range(0, len(wire), chunk)] and a.shutdown(socket.SHUT_WR))
            sender.start()
            r = P.FrameReader(b)
            got = []
            while True:
                f = r.read()
                if f is None:
                    break
                got.append(f)
            sender.join()
            self.assertEqual(got, frames, "chunk %d" % chunk)
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.sendall(P.frame(P.MSG_ONCE, 1, b"one") + P.frame(P.MSG_ONCE, 2, b"two"))
        r = P.FrameReader(b)
        self.assertFalse(r.pending())
        self.assertEqual(r.read(), (P.MSG_ONCE, 1, b"one"))
        self.assertTrue(r.pending(), "the second frame came in the same recv")
        self.assertEqual(r.read(), (P.MSG_ONCE, 2, b"two"))
        self.assertFalse(r.pending())
        a.sendall(P.frame(P.MSG_ONCE, 3, b"body")[:-1])
        a.shutdown(socket.SHUT_WR)
        with self.assertRaises(EOFError):
            r.read()
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.sendall(b"\x00\x00\x00\x01" + b"\x00" * 9)
        with self.assertRaises(P.Malformed):
            P.FrameReader(b).read()

    def test_decode_request_matches_decoder(self):
        """decode_request decodes what Decoder.request does and rejects what it rejects."""
        req = {"tag": "t\u00e9", "headers": {"a": "b", "c": ""}, "params": {"x": "y"},
               "expect": [("o", 1, {"k": "v"}), ("p", 0, {})],
               "inputs": [("text", 0, {}, b"x" * 300), ("audio", 2, {"rate": "16000"}, b""), ("z", 3, {"q": "r"}, b"\xff")],
               "psr": [7, 9]}
        for r in ({}, req):
            body = P.encode_request(r)
            d = P.Decoder(body)
            want = d.request()
            d.done()
            self.assertEqual(P.decode_request(body), want)
            for cut in range(len(body)):
                with self.assertRaises(P.Malformed):
                    P.decode_request(body[:cut])
            with self.assertRaises(P.Malformed):
                P.decode_request(body + b"\x00")

    def test_malformed_body(self):
        body = P.encode_request({"inputs": [("in", 1, {}, b"abc")]})
        for i in range(len(body)):
            with self.assertRaises(P.Malformed):
                d = P.Decoder(body[:i])
                d.request()
                d.done()

    def test_call_compat(self):
        def two(a, b):
            return (a, b)

        def many(*args):
            return args

        self.assertEqual(positional_arity(two), 2)
        self.assertEqual(call_compat(two, 1, 2, 3, 4), (1, 2))
        self.assertEqual(call_compat(many, 1, 2, 3), (1, 2, 3))


class Conn(object):
    """The parent side of a worker connection, for driving a Runtime in-process."""

    def __init__(self, test, wrapper_src, **runtime_opts):
        self.dir = tempfile.TemporaryDirectory()
        with open(os.path.join(self.dir.name, "wrapper.py"), "w") as f:
            f.write(wrapper_src)
        self.parent, child = socket.socketpair()
        self.rt = Runtime(child, self.dir.name, threads=2, **runtime_opts)
        self.thread = threading.Thread(target=self.rt.serve, daemon=True)
        self.thread.start()
        self.rfile = self.parent.makefile("rb")
        self.results = []
        test.addCleanup(self.close)

    def call(self, t, ident, body=b""):
        self.parent.sendall(P.frame(t, ident, body))
        while True:
            mt, mid, mbody = P.read_frame(self.rfile)
            if mt == P.MSG_RESULT:
                self.results.append((mid, mbody))
                continue
            assert mid == ident, (mid, ident)
            if mt == P.MSG_ERR:
                d = P.Decoder(mbody)
                return "err", (d.i32(), d.str())
            return "ok", mbody

    def close(self):
        self.rfile.close()  # the socket stays open while its file object is
        self.parent.close()
        self.thread.join(5)
        assert not self.thread.is_alive(), "runtime did not stop at the end of its connection"
        self.dir.cleanup()
        dto.set_callback_hook(None)


class TestRuntime(unittest.TestCase):
    def test_once_and_session(self):
        c = Conn(self, WRAPPER)
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({"k": "v"})), ("ok", b""))
        self.assertEqual(c.rt.wrapper.config, {"k": "v"})
        st, body = c.call(P.MSG_ONCE, 2, P.encode_request({"params": {"suffix": "!"}, "inputs": [("text", 0, {}, b"hi")]}))
        self.assertEqual(st, "ok")
        self.assertEqual(P.Decoder(body).payloads(), [("text", 0, {}, b"hi!")])
        st, err = c.call(P.MSG_ONCE, 3, P.encode_request({"inputs": [("boom", 0, {}, b"")]}))
        self.assertEqual((st, err[0]), ("err", 30003))
        self.assertIn("KeyError", err[1])

        self.assertEqual(c.call(P.MSG_OPEN, 10, P.encode_session_params({"tag": "sid-1"})), ("ok", b""))
        self.assertEqual(c.call(P.MSG_WRITE, 11, P.encode_write(10, 0, 2, [("audio", 1, {}, b"pcm")])), ("ok", b""))
        self.assertEqual(c.rt.wrapper.last, ("h-sid-1", b"pcm", 2, "sid-1"))
        self.assertEqual(len(c.results), 1)
        sid, body = c.results[0]
        d = P.Decoder(body)
        self.assertEqual((sid, d.u8(), d.payloads(), d.i32(), d.str()), (10, 2, [("out", 0, {}, b"pcm")], 0, ""))
        self.assertEqual(c.call(P.MSG_CLOSE, 12, (10).to_bytes(8, "big")), ("ok", b""))
        st, err = c.call(P.MSG_WRITE, 13, P.encode_write(10, 1, 1, []))
        self.assertEqual((st, err[0]), ("err", 10008))
        self.assertEqual(c.call(P.MSG_FINI, 14), ("ok", b""))

    def _slow_call_does_not_block(self, src):
        c = Conn(self, src)
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({})), ("ok", b""))
        c.parent.sendall(P.frame(P.MSG_ONCE, 2, P.encode_request({"inputs": [("slow", 0, {}, b"s")]})))
        c.parent.sendall(P.frame(P.MSG_ONCE, 3, P.encode_request({"inputs": [("fast", 0, {}, b"f")]})))
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 3), "the call behind a slow one was held up")
        self.assertEqual(P.Decoder(body).payloads(), [("fast", 0, {}, b"f")])
        c.rt.wrapper.release.set()
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 2))
        self.assertEqual(c.call(P.MSG_ONCE, 4, P.encode_request({"inputs": [("again", 0, {}, b"a")]}))[0], "ok")

    def test_reply_not_held_behind_a_slow_call(self):
        """Frames that arrive together have their replies written together, but a reply
        held back for the next frame's is written when that call turns out slow."""
        c = Conn(self, WRAPPER)
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({}))[0], "ok")
        c.parent.settimeout(10)  # a held reply fails the test instead of hanging it
        c.parent.sendall(P.frame(P.MSG_ONCE, 2, P.encode_request({"inputs": [("fast", 0, {}, b"f")]})) +
                         P.frame(P.MSG_ONCE, 3, P.encode_request({"inputs": [("slow", 0, {}, b"s")]})))
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 2), "the reply before a slow call was held up")
        c.rt.wrapper.release.set()
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 3))

    def test_slow_inline_call_hands_reading_over(self):
        self._slow_call_does_not_block(WRAPPER)

    def test_nudged_slow_call_hands_reading_over(self):
        """With a hand-off socket the standby waits for the loader's nudge: a slow inline
        call holds the reading until a nudge comes, then hands it over."""
        nudge, theirs = socket.socketpair()
        self.addCleanup(nudge.close)
        c = Conn(self, WRAPPER, nudge=theirs)
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({})), ("ok", b""))
        c.parent.sendall(P.frame(P.MSG_ONCE, 2, P.encode_request({"inputs": [("slow", 0, {}, b"s")]})))
        c.parent.sendall(P.frame(P.MSG_ONCE, 3, P.encode_request({"inputs": [("fast", 0, {}, b"f")]})))
        # No nudge, no clock: the call behind the slow one waits (the standby sleeps).
        c.parent.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            c.parent.recv(1, socket.MSG_PEEK)
        c.parent.settimeout(10)
        self._nudge_until_answered(nudge, c.parent)  # the slow call has run long enough
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 3), "the nudge did not hand the reading over")
        c.rt.wrapper.release.set()
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 2))
        # The standby watches again after the next nudge: a second slow call is handed over too.
        c.rt.wrapper.release.clear()
        c.parent.sendall(P.frame(P.MSG_ONCE, 4, P.encode_request({"inputs": [("slow", 0, {}, b"s")]})) +
                         P.frame(P.MSG_ONCE, 5, P.encode_request({"inputs": [("fast", 0, {}, b"g")]})))
        self._nudge_until_answered(nudge, c.parent)
        mt, mid, body = P.read_frame(c.rfile)
        self.assertEqual((mt, mid), (P.MSG_OK, 5))
        c.rt.wrapper.release.set()
        self.assertEqual(P.read_frame(c.rfile)[:2], (P.MSG_OK, 4))
        self.assertEqual(c.call(P.MSG_ONCE, 6, P.encode_request({"inputs": [("again", 0, {}, b"a")]}))[0], "ok")

    def _nudge_until_answered(self, nudge, parent):
        """Nudge every 50 ms until an answer is waiting, as the loader nudges every
        millisecond while a call is old: a nudge that comes before the slow call has
        begun finds nothing to hand over."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            nudge.sendall(b"\x01")
            if select.select([parent], [], [], 0.05)[0]:
                return
        self.fail("no answer after 10 s of nudges")

    def test_nudge_socket_closed_ends_standby(self):
        """The standby thread ends when the loader closes the hand-off socket."""
        nudge, theirs = socket.socketpair()
        c = Conn(self, WRAPPER, nudge=theirs)
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({})), ("ok", b""))
        deadline = time.monotonic() + 10
        standby = []
        while not standby and time.monotonic() < deadline:  # serve starts it after the call threads
            standby = [t for t in threading.enumerate() if t.name == "aiges-standby" and t.is_alive()]
            time.sleep(0.001)
        nudge.close()
        for t in standby:
            t.join(10)
        self.assertTrue(standby and not any(t.is_alive() for t in standby))

    def test_inline_opt_out(self):
        src = WRAPPER.replace("class Wrapper(WrapperBase):", "class Wrapper(WrapperBase):\n    inlineCalls = False")
        self._slow_call_does_not_block(src)

    def test_many_concurrent_calls(self):
        c = Conn(self, WRAPPER)
        self.assertEqual(c.call(P.MSG_INIT, 1, P.encode_map({})), ("ok", b""))
        n = 200
        c.parent.sendall(b"".join(P.frame(P.MSG_ONCE, 100 + i, P.encode_request({"inputs": [("k", 0, {}, b"%d" % i)]})) for i in range(n)))
        got = {}
        for _ in range(n):
            mt, mid, body = P.read_frame(c.rfile)
            self.assertEqual(mt, P.MSG_OK)
            got[mid] = P.Decoder(body).payloads()[0][3]
        self.assertEqual(got, {100 + i: b"%d" % i for i in range(n)})

    def test_import_error_reported_on_init(self):
        c = Conn(self, "raise RuntimeError('cannot load model')\n")
        st, err = c.call(P.MSG_INIT, 1, P.encode_map({}))
        self.assertEqual((st, err[0]), ("err", 30001))
        self.assertIn("cannot load model", err[1])


if __name__ == "__main__":
    unittest.main()
