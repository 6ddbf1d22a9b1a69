"""WrapperBase and the field classes a wrapper declares its inputs, parameters and
outputs with.

    class UserRequest(object):
        input1 = StringBodyField(key="text", value="hello")
        params1 = StringParamField(key="lang", enums=["zh", "en"], value="zh")

    class UserResponse(object):
        accept1 = StringBodyField(key="text")

    class Wrapper(WrapperBase):
        serviceId = "echo"
        requestCls = UserRequest()
        responseCls = UserResponse()
        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0): ...

    Wrapper().schema()   # the capability schema, printed and returned
    Wrapper().run()      # a local dry run with the fields' test values
"""

import base64
import json

from aiges import dto
from aiges.stream import SessionManager
from aiges.types import (DataAudio, DataImage, DataText, DataVideo, DATA_TYPE_NAMES, Once,
                         ERR_INIT, ERR_USER_INIT, ERR_USER_EXEC)
from aiges.utils.log import log

__all__ = [
    "WrapperBase", "StringBodyField", "AudioBodyField", "ImageBodyField", "VideoBodyField",
    "StringParamField", "NumberParamField", "IntegerParamField", "BooleanParamField",
    "DryRunError", "ERR_INIT", "ERR_USER_INIT", "ERR_USER_EXEC",
]


class Field(object):
    """Base of every field: its key."""

    def __init__(self, key):
        self.key = key


class BodyField(Field):
    """A payload item (input or output) of one data type."""

    data_type = DataText

    def test_value(self):
        return b""

    def schema(self):
        name = DATA_TYPE_NAMES.get(self.data_type, "other")
        props = {name: {"type": "string"}, "encoding": {"type": "string"},
                 "status": {"type": "integer", "enum": [0, 1, 2, 3]}, "seq": {"type": "integer"}}
        return {"type": "object", "properties": props}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


class StringBodyField(BodyField):
    """A text item; value is its dry-run test value."""

    data_type = DataText

    def __init__(self, key, value="", need_base64=False):
        Field.__init__(self, key)
        self.value = value
        self.need_base64 = need_base64

    def test_value(self):
        v = self.value.encode("utf-8") if isinstance(self.value, str) else bytes(self.value or b"")
        return base64.b64encode(v) if self.need_base64 else v


class AudioBodyField(BodyField):
    """An audio item; the file at path is its dry-run test value."""

    data_type = DataAudio

    def __init__(self, key, path=""):
        Field.__init__(self, key)
        self.path = path

    def test_value(self):
        return _read(self.path) if self.path else b""

    def schema(self):
        s = BodyField.schema(self)
        s["properties"].update({"sample_rate": {"type": "integer"}, "channels": {"type": "integer"},
                                "bit_depth": {"type": "integer"}})
        return s


class ImageBodyField(BodyField):
    """An image item; the file at path is its dry-run test value."""

    data_type = DataImage

    def __init__(self, key, path="", need_base64=False):
        Field.__init__(self, key)
        self.path = path
        self.need_base64 = need_base64

    def test_value(self):
        v = _read(self.path) if self.path else b""
        return base64.b64encode(v) if self.need_base64 else v


class VideoBodyField(BodyField):
    """A video item; the file at path is its dry-run test value."""

    data_type = DataVideo

    def __init__(self, key, path=""):
        Field.__init__(self, key)
        self.path = path

    def test_value(self):
        return _read(self.path) if self.path else b""


class ParamField(Field):
    """A scalar engine parameter."""

    def __init__(self, key, required=False):
        Field.__init__(self, key)
        self.required = required

    def test_value(self):
        return ""


class StringParamField(ParamField):
    def __init__(self, key, minLength=0, maxLength=50, enums=None, required=False, value=""):
        ParamField.__init__(self, key, required)
        self.minLength, self.maxLength = minLength, maxLength
        self.enums = list(enums or [])
        self.value = value

    def schema(self):
        s = {"type": "string", "minLength": self.minLength, "maxLength": self.maxLength}
        if self.enums:
            s["enum"] = list(self.enums)
        return s

    def test_value(self):
        return str(self.value)


class NumberParamField(ParamField):
    json_type = "number"

    def __init__(self, key, minimum=0, maximum=100, enums=None, required=False, value=0):
        ParamField.__init__(self, key, required)
        self.minimum, self.maximum = minimum, maximum
        self.enums = list(enums or [])
        self.value = value

    def schema(self):
        s = {"type": self.json_type, "minimum": self.minimum, "maximum": self.maximum}
        if self.enums:
            s["enum"] = list(self.enums)
        return s

    def test_value(self):
        return str(self.value)


class IntegerParamField(NumberParamField):
    json_type = "integer"


class BooleanParamField(ParamField):
    def __init__(self, key, default=False, required=False):
        ParamField.__init__(self, key, required)
        self.default = default

    def schema(self):
        return {"type": "boolean"}

    def test_value(self):
        return "true" if self.default else "false"


def _fields(obj, prefix, kind):
    """The fields of obj (an instance or a class) whose attribute names start with prefix."""
    if obj is None:
        return []
    names = sorted(set(n for n in dir(obj) if n.startswith(prefix)))
    out = []
    for n in names:
        v = getattr(obj, n, None)
        if isinstance(v, kind):
            out.append(v)
    return out


class DryRunError(AssertionError):
    """A dry run found a response that the loader would reject."""


class WrapperBase(object):
    """Base class of every wrapper. The loader calls the wrapper* methods; a subclass
    overrides those it implements. ``self.session`` is the stream handle pool."""

    serviceId = "wrapper"
    version = "v1.0"
    requestCls = None
    responseCls = None
    call = "atmos"
    sub = "ase-api"
    route = ""
    call_type = 0
    config = {}

    def __init__(self, *args, **kwargs):
        self.session = SessionManager()

    # --- engine calls -----------------------------------------------------------------
    def wrapperInit(self, config):
        return 0

    def wrapperFini(self):
        return 0

    def wrapperError(self, ret):
        return ""

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        return dto.Response().response_err(ERR_USER_EXEC)

    def wrapperOnceExecAsync(self, params, reqData, sid, persId=0):
        return ERR_USER_EXEC

    def wrapperCreate(self, params, sid, persId=0, usrTag=""):
        return dto.SessionCreateResponse(error_code=ERR_USER_EXEC)

    def wrapperWrite(self, handle, req, sid):
        return ERR_USER_EXEC

    def wrapperRead(self, handle, sid):
        return dto.Response()

    def wrapperDestroy(self, handle):
        return 0

    def wrapperLoadRes(self, reqData, resId):
        return 0

    def wrapperUnloadRes(self, resId):
        return 0

    def wrapperTestFunc(self, data, respData):
        return 0

    # --- description ------------------------------------------------------------------
    def _inputs(self):
        return _fields(self.requestCls, "input", BodyField)

    def _params(self):
        return _fields(self.requestCls, "params", ParamField)

    def _accepts(self):
        return _fields(self.responseCls, "accept", BodyField)

    def schema(self, show=True):
        """Returns (and prints, unless show is False) the capability schema generated from
        the request and response fields."""
        sid = self.serviceId
        inputs = self._inputs()
        params = self._params()
        accepts = self._accepts()
        meta = {
            "serviceId": sid,
            "version": self.version,
            "route": self.route or "/v1/private/%s" % sid,
            "service": [sid],
            "sub": self.sub,
            "call": self.call,
            "call_type": self.call_type,
            sid: {
                "input": {f.key: {"dataType": DATA_TYPE_NAMES.get(f.data_type, "other")} for f in inputs},
                "accept": {f.key: {"dataType": DATA_TYPE_NAMES.get(f.data_type, "other")} for f in accepts},
            },
        }
        svc_props = {p.key: p.schema() for p in params}
        for a in accepts:
            svc_props[a.key] = {"type": "object", "properties": {
                "encoding": {"type": "string"}, "compress": {"type": "string"}, "format": {"type": "string"}}}
        svc = {"type": "object", "properties": svc_props}
        required = [p.key for p in params if p.required]
        if required:
            svc["required"] = required
        schemainput = {
            "type": "object",
            "properties": {
                "header": {"type": "object", "properties": {
                    "app_id": {"type": "string", "maxLength": 50}, "uid": {"type": "string", "maxLength": 50},
                    "status": {"type": "integer", "enum": [0, 1, 2, 3]}}, "required": ["app_id"]},
                "parameter": {"type": "object", "properties": {sid: svc}},
                "payload": {"type": "object", "properties": {f.key: f.schema() for f in inputs}},
            },
            "required": ["header"],
        }
        schemaoutput = {
            "type": "object",
            "properties": {"payload": {"type": "object", "properties": {f.key: f.schema() for f in accepts}}},
        }
        doc = {"meta": meta, "schemainput": schemainput, "schemaoutput": schemaoutput}
        if show:
            print(json.dumps(doc, indent=2, ensure_ascii=False))
        return doc

    # --- dry run ----------------------------------------------------------------------
    def run(self, stream=False):
        """Local dry run: wrapperInit(config), a request built from the fields' test values,
        wrapperOnceExec, and the loader's checks on the response. Returns the Response;
        raises DryRunError on a bad response."""
        from aiges.runtime.calls import call_compat
        ret = self.wrapperInit(dict(self.config or {}))
        if ret not in (0, None):
            raise DryRunError("wrapperInit returned %r (%s)" % (ret, self.wrapperError(ret)))
        try:
            params = {p.key: p.test_value() for p in self._params()}
            req = dto.DataListCls()
            for f in self._inputs():
                data = f.test_value()
                req.list.append(dto.DataListNode(key=f.key, data=data, len=len(data), type=f.data_type, status=Once))
            resp = call_compat(self.wrapperOnceExec, params, req, "dry-run", 0)
            check_response(resp, self._accepts(), self.wrapperError)
            log.info("dry run of %s passed: %d output(s)", self.serviceId, len(resp.list))
            return resp
        finally:
            self.wrapperFini()


def check_response(resp, accepts, error_text=None):
    """Checks a once response as the loader does; raises DryRunError."""
    if not isinstance(resp, dto.Response):
        raise DryRunError("wrapperOnceExec returned %r, want a Response" % (type(resp).__name__,))
    if resp.error_code:
        text = error_text(resp.error_code) if error_text else ""
        raise DryRunError("response error_code %s: %s" % (resp.error_code, text))
    if not resp.list:
        raise DryRunError("response list is empty")
    keys = set()
    want = {f.key: f.data_type for f in accepts}
    for item in resp.list:
        if not isinstance(item.data, (bytes, bytearray)):
            raise DryRunError("output %r: data is %s, want bytes" % (item.key, type(item.data).__name__))
        if item.len != len(item.data):
            raise DryRunError("output %r: len %r != len(data) %d" % (item.key, item.len, len(item.data)))
        if item.key in keys:
            raise DryRunError("output %r appears twice" % (item.key,))
        keys.add(item.key)
        if want:
            if item.key not in want:
                raise DryRunError("output %r is not declared in the response class (%s)" % (item.key, sorted(want)))
            if item.type != want[item.key]:
                raise DryRunError("output %r: type %r, the response class declares %r" % (item.key, item.type, want[item.key]))
