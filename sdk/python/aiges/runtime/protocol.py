"""The loader's worker protocol (see services/loader/worker/proto.go): frames of
uint32 length | uint8 type | uint64 id | body, big-endian; strings and bytes as uint32
length + bytes, maps as uint32 count + key/value pairs, lists as uint32 count + items."""

import struct

MSG_INIT, MSG_FINI, MSG_ONCE, MSG_OPEN, MSG_WRITE, MSG_CLOSE = 1, 2, 3, 4, 5, 6
# Personalisation resources: MSG_LOAD_RES body is uint32 resource id then the payload list
# (as in a request); MSG_UNLOAD_RES body is uint32 resource id. Both answer MSG_OK or MSG_ERR.
MSG_LOAD_RES, MSG_UNLOAD_RES = 7, 8
MSG_OK, MSG_ERR, MSG_RESULT = 16, 17, 18
# MSG_TRACE (child -> parent, the id of a traced call) reports a span, event or attributes
# of that call while it runs (aiges.trace; services/loader/worker/trace.go). The parent
# sets FLAG_TRACED in the type byte of the calls it traces.
MSG_TRACE = 19
FLAG_TRACED = 0x80

MAX_FRAME = 256 << 20

_hdr = struct.Struct(">IBQ")
_u32 = struct.Struct(">I")
_u64 = struct.Struct(">Q")
_i32 = struct.Struct(">i")
_i64 = struct.Struct(">q")
_f64 = struct.Struct(">d")

u32 = _u32.pack
u64 = _u64.pack
i32 = _i32.pack
i64 = _i64.pack
f64 = _f64.pack


class Malformed(ValueError):
    """A frame or body that does not decode."""


def frame(msg_type, ident, body=b""):
    return _hdr.pack(9 + len(body), msg_type, ident) + body


def read_frame(rfile):
    """Reads one frame: (type, id, body), or None at a clean end of stream."""
    head = rfile.read(13)
    if not head:
        return None
    if len(head) < 13:
        raise EOFError("truncated frame header")
    n, t, ident = _hdr.unpack(head)
    if n < 9 or n > MAX_FRAME:
        raise Malformed("frame length %d" % n)
    body = rfile.read(n - 9) if n > 9 else b""
    if len(body) != n - 9:
        raise EOFError("truncated frame body")
    return t, ident, body


_u32_from = _u32.unpack_from
_u64_from = _u64.unpack_from
_i32_from = _i32.unpack_from
_hdr_from = _hdr.unpack_from

# READ_BUFFER is the size of FrameReader's buffer: one recv takes every frame that has
# arrived up to this many bytes; a larger frame gets a buffer of its own size, dropped
# again once the frame is read.
READ_BUFFER = 1 << 16


class FrameReader(object):
    """Reads frames from a socket with one recv_into per batch of arrived bytes into a
    reusable buffer (not one read per header and body): read() returns the next frame,
    pending() tells whether a whole frame is already buffered, so that a caller can
    hold its replies back until it has handled it. One reader at a time."""
    __slots__ = ("sock", "buf", "mv", "i", "j")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(READ_BUFFER)
        self.mv = memoryview(self.buf)
        self.i = 0  # start of the unread bytes
        self.j = 0  # end of the received bytes

    def pending(self):
        """Whether a whole frame is buffered (read() returns it without a recv)."""
        i = self.i
        avail = self.j - i
        return avail >= 4 and avail >= 4 + _u32_from(self.buf, i)[0]

    def read(self):
        """Reads one frame: (type, id, body bytes), or None at a clean end of stream."""
        while True:
            i, j = self.i, self.j
            if j - i >= 13:
                n, t, ident = _hdr_from(self.buf, i)
                if n < 9 or n > MAX_FRAME:
                    raise Malformed("frame length %d" % n)
                end = i + 4 + n
                if end <= j:
                    body = bytes(self.mv[i + 13:end]) if n > 9 else b""
                    if end == j:
                        self.i = self.j = 0
                        if len(self.buf) > READ_BUFFER:
                            self._resize(READ_BUFFER)
                    else:
                        self.i = end
                    return t, ident, body
                need = 4 + n
            else:
                need = 13
            if len(self.buf) - i < need:
                self._resize(max(need, READ_BUFFER))
            got = self.sock.recv_into(self.mv[self.j:])
            if not got:
                if self.j == self.i:
                    return None
                raise EOFError("truncated frame")
            self.j += got

    def _resize(self, size):
        """Moves the unread bytes to the start of a buffer of size bytes."""
        rest = bytes(self.mv[self.i:self.j])
        if size != len(self.buf):
            self.mv.release()
            self.buf = bytearray(size)
            self.mv = memoryview(self.buf)
        self.buf[:len(rest)] = rest
        self.i, self.j = 0, len(rest)


class Decoder(object):
    """Reads protocol values from a body (bytes); offsets are checked against n, values
    are unpacked in place."""
    __slots__ = ("b", "i", "n")

    def __init__(self, b):
        self.b = b
        self.i = 0
        self.n = len(b)

    def _take(self, n):
        i = self.i
        j = i + n
        if j > self.n:
            raise Malformed("short body")
        self.i = j
        return self.b[i:j]

    def u8(self):
        i = self.i
        if i >= self.n:
            raise Malformed("short body")
        self.i = i + 1
        return self.b[i]

    def u32(self):
        i = self.i
        if i + 4 > self.n:
            raise Malformed("short body")
        self.i = i + 4
        return _u32_from(self.b, i)[0]

    def i32(self):
        i = self.i
        if i + 4 > self.n:
            raise Malformed("short body")
        self.i = i + 4
        return _i32_from(self.b, i)[0]

    def u64(self):
        i = self.i
        if i + 8 > self.n:
            raise Malformed("short body")
        self.i = i + 8
        return _u64_from(self.b, i)[0]

    def raw(self):
        i = self.i
        if i + 4 > self.n:
            raise Malformed("short body")
        j = i + 4 + _u32_from(self.b, i)[0]
        if j > self.n:
            raise Malformed("short body")
        self.i = j
        return self.b[i + 4:j]

    def str(self):
        return self.raw().decode("utf-8", "replace")

    def map(self):
        n = self.u32()
        if not n:
            return {}
        s = self.str
        return {s(): s() for _ in range(n)}

    def meta(self):
        return self.str(), self.u8(), self.map()

    def metas(self):
        return [self.meta() for _ in range(self.u32())]

    def payloads(self):
        out = []
        for _ in range(self.u32()):
            name, typ, attrs = self.meta()
            out.append((name, typ, attrs, bytes(self.raw())))
        return out

    def u32s(self):
        return [self.u32() for _ in range(self.u32())]

    def request(self):
        return {"tag": self.str(), "headers": self.map(), "params": self.map(), "expect": self.metas(),
                "inputs": self.payloads(), "psr": self.u32s()}

    def session_params(self):
        return {"tag": self.str(), "headers": self.map(), "params": self.map(), "expect": self.metas(),
                "psr": self.u32s()}

    def write(self):
        sid = self.u64()
        sync = self.i32()
        status = self.u8()
        return sid, sync, status, self.payloads()

    def load_res(self):
        """A MSG_LOAD_RES body: (resource id, payloads)."""
        return self.u32(), self.payloads()

    def done(self):
        if self.i != len(self.b):
            raise Malformed("%d trailing bytes" % (len(self.b) - self.i))


def decode_request(b):
    """Decoder(b).request() followed by done(), unrolled into one function: the once call's
    hot path, a fraction of the method calls."""
    n = len(b)
    u32f = _u32_from
    try:
        i = 4 + u32f(b, 0)[0]
        tag = b[4:i]
        if i > n:
            raise Malformed("short body")
        tag = str(tag, "utf-8", "replace")
        maps = []
        for _ in (0, 1):
            c = u32f(b, i)[0]
            i += 4
            m = {}
            for _ in range(c):
                j = i + 4 + u32f(b, i)[0]
                k = str(b[i + 4:j], "utf-8", "replace")
                i = j + 4 + u32f(b, j)[0]
                m[k] = str(b[j + 4:i], "utf-8", "replace")
            if i > n:
                raise Malformed("short body")
            maps.append(m)
        c = u32f(b, i)[0]
        i += 4
        expect = []
        for _ in range(c):
            j = i + 4 + u32f(b, i)[0]
            name = str(b[i + 4:j], "utf-8", "replace")
            typ = b[j]
            i = j + 1
            c2 = u32f(b, i)[0]
            i += 4
            m = {}
            for _ in range(c2):
                j = i + 4 + u32f(b, i)[0]
                k = str(b[i + 4:j], "utf-8", "replace")
                i = j + 4 + u32f(b, j)[0]
                m[k] = str(b[j + 4:i], "utf-8", "replace")
            if i > n:
                raise Malformed("short body")
            expect.append((name, typ, m))
        c = u32f(b, i)[0]
        i += 4
        inputs = []
        for _ in range(c):
            j = i + 4 + u32f(b, i)[0]
            name = str(b[i + 4:j], "utf-8", "replace")
            typ = b[j]
            i = j + 1
            c2 = u32f(b, i)[0]
            i += 4
            m = {}
            for _ in range(c2):
                j = i + 4 + u32f(b, i)[0]
                k = str(b[i + 4:j], "utf-8", "replace")
                i = j + 4 + u32f(b, j)[0]
                m[k] = str(b[j + 4:i], "utf-8", "replace")
            j = i + 4 + u32f(b, i)[0]
            if j > n:
                raise Malformed("short body")
            inputs.append((name, typ, m, b[i + 4:j]))
            i = j
        c = u32f(b, i)[0]
        i += 4
        if i + 4 * c > n:
            raise Malformed("short body")
        psr = list(struct.unpack_from(">%dI" % c, b, i)) if c else []
        i += 4 * c
    except (struct.error, IndexError):
        raise Malformed("short body")
    if i != n:
        raise Malformed("%d trailing bytes" % (n - i) if i < n else "short body")
    return {"tag": tag, "headers": maps[0], "params": maps[1], "expect": expect, "inputs": inputs, "psr": psr}


def _s(parts, b):
    parts.append(_u32.pack(len(b)))
    parts.append(b)


def _str(parts, s):
    _s(parts, s.encode("utf-8"))


def put_str(parts, s):
    """Appends the encoding of string s to parts."""
    _s(parts, s.encode("utf-8", "replace"))


_NONE = _u32.pack(0)


def _map(parts, m):
    if not m:
        parts.append(_NONE)
        return
    parts.append(_u32.pack(len(m)))
    for k in sorted(m):
        _str(parts, str(k))
        _str(parts, str(m[k]))


def payloads(parts, items):
    """Encodes a list of (name, type, attrs, data)."""
    parts.append(_u32.pack(len(items)))
    for name, typ, attrs, data in items:
        _str(parts, name)
        parts.append(bytes((typ & 0xFF,)))
        _map(parts, attrs or {})
        _s(parts, data)


def response_frame(ident, items):
    """frame(MSG_OK, ident, encode_response(items)): the whole reply in one join."""
    parts = [b""]
    payloads(parts, items)
    parts[0] = _hdr.pack(9 + sum(map(len, parts)), MSG_OK, ident)
    return b"".join(parts)


def encode_response(items):
    parts = []
    payloads(parts, items)
    return b"".join(parts)


def encode_error(code, msg):
    parts = [_i32.pack(code)]
    _str(parts, msg)
    return b"".join(parts)


def encode_result(status, items, code=0, msg="", engine_ns=0):
    parts = [bytes((status,))]
    payloads(parts, items)
    parts.append(_i32.pack(code))
    _str(parts, msg)
    parts.append(_u64.pack(max(0, int(engine_ns))))
    return b"".join(parts)


def encode_request(req):
    """Encodes a request dict (the parent side; used by tests)."""
    parts = []
    _str(parts, req.get("tag", ""))
    _map(parts, req.get("headers", {}))
    _map(parts, req.get("params", {}))
    expect = req.get("expect", [])
    parts.append(_u32.pack(len(expect)))
    for name, typ, attrs in expect:
        _str(parts, name)
        parts.append(bytes((typ,)))
        _map(parts, attrs)
    payloads(parts, req.get("inputs", []))
    psr = req.get("psr", [])
    parts.append(_u32.pack(len(psr)))
    for p in psr:
        parts.append(_u32.pack(p))
    return b"".join(parts)


def encode_session_params(sp):
    parts = []
    _str(parts, sp.get("tag", ""))
    _map(parts, sp.get("headers", {}))
    _map(parts, sp.get("params", {}))
    expect = sp.get("expect", [])
    parts.append(_u32.pack(len(expect)))
    for name, typ, attrs in expect:
        _str(parts, name)
        parts.append(bytes((typ,)))
        _map(parts, attrs)
    psr = sp.get("psr", [])
    parts.append(_u32.pack(len(psr)))
    for p in psr:
        parts.append(_u32.pack(p))
    return b"".join(parts)


def encode_write(sid, sync_id, status, items):
    parts = [_u64.pack(sid), _i32.pack(sync_id), bytes((status,))]
    payloads(parts, items)
    return b"".join(parts)


def encode_load_res(res_id, items):
    """Encodes a MSG_LOAD_RES body (the parent side; used by tests)."""
    parts = [_u32.pack(res_id)]
    payloads(parts, items)
    return b"".join(parts)


def encode_unload_res(res_id):
    return _u32.pack(res_id)


def encode_map(m):
    parts = []
    _map(parts, m)
    return b"".join(parts)
