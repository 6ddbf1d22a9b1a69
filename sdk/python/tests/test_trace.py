import unittest

from aiges import trace
from aiges.runtime import protocol as P


def decode(body):
    """Decodes one MSG_TRACE body into (op, span, fields)."""
    d = P.Decoder(body)
    op, span = d.u8(), d.u32()

    def attrs():
        out = {}
        for _ in range(d.u32()):
            k, kind = d.str(), d.u8()
            if kind == 0:
                out[k] = d.str()
            elif kind == 1:
                v = d.u64()
                out[k] = v - (1 << 64) if v >= 1 << 63 else v
            elif kind == 2:
                out[k] = P._f64.unpack(d._take(8))[0]
            else:
                out[k] = bool(d.u8())
        return out
    if op == 1:
        f = {"parent": d.u32(), "name": d.str(), "ts": d.u64(), "attrs": attrs()}
    elif op == 2:
        f = {"ts": d.u64(), "code": d.i32(), "msg": d.str()}
    elif op == 3:
        f = {"name": d.str(), "ts": d.u64(), "attrs": attrs()}
    else:
        f = {"attrs": attrs()}
    d.done()
    return op, span, f


class TestTrace(unittest.TestCase):
    def tearDown(self):
        trace._end()

    def test_untraced_sends_nothing(self):
        self.assertFalse(trace.enabled())
        with trace.span("x", a=1) as sp:
            sp.add_event("e")
            sp.set_attribute("k", "v")
            self.assertFalse(sp.is_recording())
        trace.event("y")
        trace.set_attributes(z=1)

    def test_spans_nest_and_report_in_order(self):
        sent = []
        trace._begin(sent.append)
        self.assertTrue(trace.enabled())
        with trace.span("outer", n=3, ok=True, ratio=0.25, neg=-2, other=[1]) as o:
            with trace.span("inner"):
                trace.event("ev", k="v")
            o.set_attribute("late", 7)
        trace.set_attributes(model="m")
        got = [decode(b) for b in sent]
        ops = [(op, span) for op, span, _ in got]
        self.assertEqual(ops, [(1, 1), (1, 2), (3, 2), (2, 2), (4, 1), (2, 1), (4, 0)])
        self.assertEqual(got[0][2]["attrs"], {"n": 3, "ok": True, "ratio": 0.25, "neg": -2, "other": "[1]"})
        self.assertEqual(got[1][2]["parent"], 1)
        self.assertEqual(got[0][2]["parent"], 0)
        self.assertEqual(got[2][2]["attrs"], {"k": "v"})
        self.assertEqual(got[3][2]["code"], 0)

    def test_exception_fails_the_span(self):
        sent = []
        trace._begin(sent.append)

        class Coded(Exception):
            code = 20001
        with self.assertRaises(Coded):
            with trace.span("boom"):
                raise Coded("bad")
        op, span, f = decode(sent[-1])
        self.assertEqual((op, f["code"]), (2, 20001))
        self.assertIn("bad", f["msg"])
        with self.assertRaises(KeyError):
            with trace.span("key"):
                raise KeyError("k")
        self.assertEqual(decode(sent[-1])[2]["code"], 30003)


if __name__ == "__main__":
    unittest.main()
