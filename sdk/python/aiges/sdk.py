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
import os

from aiges import dto
from aiges.dto import DataListCls, DataListNode, Response, ResponseData  # noqa: F401 - aiges.sdk re-exports them
from aiges.stream import SessionManager
from aiges.types import (DataAudio, DataImage, DataText, DataVideo, DATA_TYPE_NAMES, Once,
                         ERR_INIT, ERR_USER_INIT, ERR_USER_EXEC)
from aiges.utils.log import log

__all__ = [
    "WrapperBase", "Metaclass", "Field", "ParamField", "PayloadField", "BodyField",
    "StringBodyField", "JsonBodyField", "AudioBodyField", "ImageBodyField", "VideoBodyField",
    "StringParamField", "NumberParamField", "IntegerParamField", "BooleanParamField",
    "DryRunError", "check_response", "ERR_INIT", "ERR_USER_INIT", "ERR_USER_EXEC",
    "SUB", "CALL", "CALL_TYPE", "HOSTS", "ROUTEKEY", "STRING", "AUDIO", "IMAGE", "VIDEO", "type_map", "tpl",
]

# Schema defaults (meta section of the capability schema).
SUB = "ase"
CALL = "atmos"
CALL_TYPE = 0
HOSTS = ["api.xf-yun.com"]
ROUTEKEY = []

STRING, AUDIO, IMAGE, VIDEO = DataText, DataAudio, DataImage, DataVideo
type_map = {"text": STRING, "audio": AUDIO, "image": IMAGE, "video": VIDEO}

# The shape of the capability schema schema() builds (specs/ase-protocol.md §4); kept as
# a name for code that reads it.
tpl = '{"meta": {...}, "schemainput": {"header", "parameter", "payload"}, "schemaoutput": {"payload"}}'


class Field(object):
    """Base of every field: its key and data type (an int for payloads, a JSON type name
    for parameters)."""

    data_type = DataText

    def __init__(self, key, data_type=None):
        self.key = key
        if data_type is not None:
            self.data_type = data_type

    def __str__(self):
        return "<%s:%s>" % (self.__class__.__name__, self.key)

    __repr__ = __str__

    def _check_path(self, path):
        """Returns path; a path that does not exist is logged (the dry run then fails to
        read it), not an error at import."""
        if path and not os.path.exists(path):
            log.warning("%s: test file %s does not exist", self, path)
        return path

    def _encode(self, dataType, encoding, binary):
        return binary

    @property
    def test_value(self):
        """The value a dry run sends for this field."""
        return None


class PayloadField(Field):
    """A payload item (input or output) of one data type."""

    def schema(self):
        name = DATA_TYPE_NAMES.get(self.data_type, "other")
        props = {name: {"type": "string"}, "encoding": {"type": "string"},
                 "status": {"type": "integer", "enum": [0, 1, 2, 3]}, "seq": {"type": "integer"}}
        return {"type": "object", "properties": props}


BodyField = PayloadField


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _b64(v):
    return base64.b64encode(v.encode("utf-8") if isinstance(v, str) else bytes(v))


class StringBodyField(PayloadField):
    """A text item; value is its dry-run test value."""

    data_type = DataText

    def __init__(self, key, value="", need_base64=False):
        Field.__init__(self, key, STRING)
        self.value = value
        self.need_base64 = need_base64

    @property
    def test_value(self):
        return _b64(self.value) if self.need_base64 else self.value


class JsonBodyField(StringBodyField):
    """A JSON text item (a text payload whose content is JSON); value is its dry-run test
    value (a str, bytes, or an object serialised with json.dumps)."""

    def __init__(self, key, value="", need_base64=False):
        if not isinstance(value, (str, bytes, bytearray)):
            value = json.dumps(value, ensure_ascii=False)
        StringBodyField.__init__(self, key, value, need_base64)


class AudioBodyField(PayloadField):
    """An audio item; the file at path is its dry-run test value."""

    data_type = DataAudio

    def __init__(self, key, path=""):
        Field.__init__(self, key, AUDIO)
        self.path = self._check_path(path)

    @property
    def test_value(self):
        return _read(self.path) if self.path else b""

    def schema(self):
        s = PayloadField.schema(self)
        s["properties"].update({"sample_rate": {"type": "integer"}, "channels": {"type": "integer"},
                                "bit_depth": {"type": "integer"}})
        return s


class ImageBodyField(PayloadField):
    """An image item; the file at path is its dry-run test value."""

    data_type = DataImage

    def __init__(self, key, path="", need_base64=False):
        Field.__init__(self, key, IMAGE)
        self.path = self._check_path(path)
        self.need_base64 = need_base64

    @property
    def test_value(self):
        v = _read(self.path) if self.path else b""
        return _b64(v) if self.need_base64 else v


class VideoBodyField(PayloadField):
    """A video item; the file at path is its dry-run test value."""

    data_type = DataVideo

    def __init__(self, key, path=""):
        Field.__init__(self, key, VIDEO)
        self.path = self._check_path(path)

    @property
    def test_value(self):
        return _read(self.path) if self.path else b""


class ParamField(Field):
    """A scalar engine parameter."""

    json_type = "string"

    def __init__(self, key, required=False):
        Field.__init__(self, key, self.json_type)
        self.required = required

    def schema(self):
        return {"type": self.json_type}

    def _schema(self):
        return {self.key: self.schema()}

    def _to_dict(self):
        return {self.key: self.schema()}


class StringParamField(ParamField):
    """A string parameter; value is its dry-run test value."""

    json_type = "string"

    def __init__(self, key, minLength=0, maxLength=50, enums=[], required=False, value=""):  # noqa: B006
        ParamField.__init__(self, key, required)
        self.minLength, self.maxLength = minLength, maxLength
        self.min_length, self.max_length = minLength, maxLength
        self.enums = list(enums or [])
        self.value = value

    def schema(self):
        s = {"type": "string", "minLength": self.minLength, "maxLength": self.maxLength}
        if self.enums:
            s["enum"] = list(self.enums)
        return s

    @property
    def test_value(self):
        return self.value


class NumberParamField(ParamField):
    """A number parameter; value is its dry-run test value."""

    json_type = "number"

    def __init__(self, key, minimum=0, maximum=100, enums=[], required=False, value=0):  # noqa: B006
        ParamField.__init__(self, key, required)
        self.minimum, self.maximum = minimum, maximum
        self.enums = list(enums or [])
        self.value = value

    def schema(self):
        s = {"type": self.json_type, "minimum": self.minimum, "maximum": self.maximum}
        if self.enums:
            s["enum"] = list(self.enums)
        return s

    @property
    def test_value(self):
        return self.value


class IntegerParamField(NumberParamField):
    """An integer parameter; value is its dry-run test value."""

    json_type = "integer"


class BooleanParamField(ParamField):
    """A boolean parameter; default is its dry-run test value."""

    json_type = "boolean"

    def __init__(self, key, default=False, required=False):
        ParamField.__init__(self, key, required)
        self.default = default

    def schema(self):
        return {"type": "boolean"}

    @property
    def test_value(self):
        return self.default


def _attrs(obj):
    """(name, value) of obj's attributes in definition order: its class's (base classes
    first), then the instance's own."""
    if obj is None:
        return []
    seen, out = set(), []
    cls = obj if isinstance(obj, type) else type(obj)
    dicts = [c.__dict__ for c in reversed(cls.__mro__)]
    if not isinstance(obj, type):
        dicts.append(getattr(obj, "__dict__", {}))
    for d in dicts:
        for n, v in d.items():
            if n.startswith("__"):
                continue
            if n in seen:
                out = [(k, x) for k, x in out if k != n]
            seen.add(n)
            out.append((n, v))
    return out


def _fields(obj, prefix, kind):
    """The fields of obj (an instance or a class) of the given kind: a request's inputs
    are its payload fields and its parameters its parameter fields, whatever their
    attribute names; a response's outputs are its payload fields (attributes named
    accept* first)."""
    fs = [(n, v) for n, v in _attrs(obj) if isinstance(v, kind)]
    fs.sort(key=lambda nv: 0 if nv[0].startswith(prefix) else 1)
    return [v for _, v in fs]


class DryRunError(AssertionError):
    """A dry run found a response that the loader would reject."""


class Metaclass(type):
    """Records each wrapper class's request/response fields and schema settings in
    ``__mappings__`` (inputs, accepts, params, call, sub, route, call_type)."""

    def __new__(mcs, name, bases, attrs):
        cls = type.__new__(mcs, name, bases, attrs)
        m = {"inputs": [], "accepts": [], "params": []}
        if attrs.get("requestCls") is not None:
            m["inputs"] = _fields(attrs["requestCls"], "input", PayloadField)
            m["params"] = _fields(attrs["requestCls"], "params", ParamField)
        if attrs.get("responseCls") is not None:
            m["accepts"] = _fields(attrs["responseCls"], "accept", PayloadField)
        for k in ("call", "sub", "route", "call_type"):
            if k in attrs:
                m[k] = attrs[k]
        cls.__mappings__ = m
        return cls


def _summary(data, limit=120):
    """A printable view of output data: the text when it is UTF-8, else its size and its
    first bytes in hex."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = bytes(data or b"")
    try:
        text = data.decode("utf-8")
        if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
            return repr(text if len(text) <= limit else text[:limit] + "…")
    except UnicodeDecodeError:
        pass
    head = data[:16].hex(" ")
    return "<%d bytes: %s%s>" % (len(data), head, " …" if len(data) > 16 else "")


class WrapperBase(object, metaclass=Metaclass):
    """Base class of every wrapper. The loader calls the wrapper* methods; a subclass
    overrides those it implements. ``self.session`` is the stream handle pool."""

    serviceId = "wrapper"
    version = "v1.0"
    requestCls = None
    responseCls = None
    call = CALL
    sub = "ase-api"
    route = ""
    call_type = CALL_TYPE
    config = {}

    def __init__(self, *args, **kwargs):
        # Arguments (e.g. Wrapper(legacy=False)) are accepted and ignored.
        self.session = SessionManager()
        self.inputs_test_values = {}
        self.params_test_values = {}
        self.respData = []

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
        return _fields(self.requestCls, "input", PayloadField)

    def _params(self):
        return _fields(self.requestCls, "params", ParamField)

    def _accepts(self):
        return _fields(self.responseCls, "accept", PayloadField)

    def _parse_inputs(self):
        """({key: {"dataType": name}}, {key: payload schema}) of the request's inputs;
        fills inputs_test_values. Raises when there is none."""
        inputs = self._inputs()
        if not inputs:
            raise Exception("your must specify at least one input field!")
        fields, payloads = {}, {}
        for f in inputs:
            fields[f.key] = {"dataType": DATA_TYPE_NAMES.get(f.data_type, "other")}
            payloads[f.key] = f.schema()
            self.inputs_test_values[f.key] = f.test_value
        return fields, payloads

    def _parse_outputs(self):
        """({key: {"dataType": name}}, {key: payload schema}) of the response's outputs."""
        accepts = self._accepts()
        if not accepts:
            raise Exception("your must specify at least one accepts field!")
        return ({f.key: {"dataType": DATA_TYPE_NAMES.get(f.data_type, "other")} for f in accepts},
                {f.key: f.schema() for f in accepts})

    def _parse_params(self):
        """({key: schema}, [required keys]) of the request's parameters; fills
        params_test_values."""
        fields, required = {}, []
        for p in self._params():
            fields[p.key] = p.schema()
            if p.required:
                required.append(p.key)
            self.params_test_values[p.key] = p.test_value
        return fields, required

    def _parse_mapping(self):
        sid = self.serviceId
        return {"serviceId": sid, "service": json.dumps([sid]), "version": self.version, "call": self.call,
                "call_type": self.call_type, "route": self.route or "/v1/private/%s" % sid, "sub": self.sub,
                "hosts": HOSTS[0]}

    def _parse_payload(self):
        return None

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
    def check_resp(self, resp):
        """Checks a once response as the loader does; logs what is wrong and returns
        False, or returns True."""
        try:
            check_response(resp, self._accepts(), self.wrapperError)
        except DryRunError as e:
            log.error("%s", e)
            return False
        return True

    def run(self, stream=False, show=True):
        """Local dry run (``python3 wrapper.py``): wrapperInit(config), a request built from
        the fields' test values, wrapperOnceExec, the loader's checks on the response, and
        (unless show is False) a printout of every output: key, type, status, length and
        the text or a hex summary. Returns the Response; raises DryRunError on a bad
        response."""
        from aiges.runtime.calls import call_compat
        ret = self.wrapperInit(dict(self.config or {}))
        if ret not in (0, None):
            raise DryRunError("wrapperInit returned %r (%s)" % (ret, self.wrapperError(ret)))
        try:
            params = {}
            for p in self._params():
                v = p.test_value
                self.params_test_values[p.key] = v
                params[p.key] = ("true" if v else "false") if isinstance(v, bool) else str(v)
            req = dto.DataListCls()
            for f in self._inputs():
                data = f.test_value
                self.inputs_test_values[f.key] = data
                if isinstance(data, str):
                    data = data.encode("utf-8")
                data = bytes(data or b"")
                req.list.append(dto.DataListNode(key=f.key, data=data, len=len(data), type=f.data_type, status=Once))
            resp = call_compat(self.wrapperOnceExec, params, req, "dry-run", 0)
            if show and isinstance(resp, dto.Response):
                print("%s %s: %d output(s), error_code %s" % (self.serviceId, self.version, len(resp.list or []),
                                                               resp.error_code))
                for item in resp.list or []:
                    print("  %-16s type=%-5s status=%s len=%-8s %s" % (
                        item.key, DATA_TYPE_NAMES.get(item.type, item.type), item.status, item.len, _summary(item.data)))
            elif show:
                print("%s %s: wrapperOnceExec returned %r" % (self.serviceId, self.version, resp))
            check_response(resp, self._accepts(), self.wrapperError)
            log.info("dry run of %s passed: %d output(s)", self.serviceId, len(resp.list))
            return resp
        finally:
            self.wrapperFini()


def check_response(resp, accepts, error_text=None):
    """Checks a once response as the loader does; raises DryRunError."""
    if resp is None:
        raise DryRunError("wrapperOnceExec returned None, want a Response (the loader answers 30003)")
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
        data = item.data
        if not isinstance(data, (bytes, bytearray)):
            raise DryRunError("output %r: data is %s, want bytes" % (item.key, type(item.data).__name__))
        if item.len != len(data):
            raise DryRunError("output %r: len %r != len(data) %d" % (item.key, item.len, len(data)))
        if item.key in keys:
            raise DryRunError("output %r appears twice" % (item.key,))
        keys.add(item.key)
        if want:
            if item.key not in want:
                raise DryRunError("output %r is not declared in the response class (%s)" % (item.key, sorted(want)))
            if item.type != want[item.key]:
                raise DryRunError("output %r: type %r, the response class declares %r" % (item.key, item.type, want[item.key]))
