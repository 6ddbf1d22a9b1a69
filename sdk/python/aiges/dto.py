"""Data objects exchanged between the runtime and a wrapper (aiges.dto of the aiges
package; aiges_embed re-exports them)."""

import json
import threading

from aiges.types import *  # noqa: F401,F403 - aiges.dto re-exports the type constants
from aiges.types import DataText, Once


def _to_json(obj):
    def enc(o):
        if isinstance(o, (bytes, bytearray)):
            try:
                return bytes(o).decode("utf-8")
            except UnicodeDecodeError:
                return "<%d bytes>" % len(o)
        return getattr(o, "__dict__", str(o))
    return json.dumps(obj, default=enc, sort_keys=True, indent=4)


class DataListNode(object):
    """One named input item: key, data (bytes), len, type, status, desc (attributes)."""

    def __init__(self, key="", data=b"", len=0, type=DataText, status=Once, desc=None):  # noqa: A002
        self.key = key
        self.data = data
        self.len = len
        self.type = type
        self.status = status
        self.desc = desc if desc is not None else {}

    def __repr__(self):
        return "DataListNode(key=%r, len=%d, type=%r, status=%r)" % (self.key, self.len, self.type, self.status)

    def toJSON(self):
        """The node as indented JSON (data as text, or its size when binary)."""
        return _to_json(self)


class DataListCls(object):
    """The inputs of one call: ``list`` of DataListNode; ``get(key)`` finds one."""

    def __init__(self, nodes=None):
        self.list = list(nodes) if nodes else []

    def get(self, key):
        for node in self.list:
            if node.key == key:
                return node
        return None

    def add(self, node):
        self.list.append(node)

    def __len__(self):
        return len(self.list)

    def __iter__(self):
        return iter(self.list)

    def toJSON(self):
        return _to_json(self)


class ResponseData(object):
    """One output item of a Response."""

    def __init__(self, key="", data="", length=0, type=DataText, status=Once):  # noqa: A002
        self.key = key
        self.data = data
        self.len = length
        self.type = type
        self.status = status

    def setData(self, data):
        """Sets data and len."""
        self.data = data
        self.len = len(data)

    def setDataType(self, type):  # noqa: A002
        """Sets the data type (DataText, DataAudio, DataImage, DataVideo)."""
        self.type = type

    def setKey(self, key):
        self.key = key

    def setStatus(self, status):
        """Sets the status (DataBegin, DataContinue, DataEnd, DataOnce)."""
        self.status = status

    def setLen(self, length):
        self.len = length

    def toJSON(self):
        return _to_json(self)

    def __repr__(self):
        return "ResponseData(key=%r, len=%r, type=%r, status=%r)" % (self.key, self.len, self.type, self.status)


class Response(object):
    """The result of a call: ``list`` of ResponseData and ``error_code`` (0 = ok)."""

    def __init__(self, list=None, error_code=0):  # noqa: A002
        self.list = list if list is not None else []
        self.error_code = error_code

    def response_err(self, code):
        """Marks the response as failed with code and returns it."""
        self.error_code = code
        return self

    def toJSON(self):
        return _to_json(self)


class SessionCreateResponse(object):
    """The result of wrapperCreate: the session ``handle`` and ``error_code``."""

    def __init__(self, handle="", error_code=0):
        self.handle = handle
        self.error_code = error_code

    def toJSON(self):
        return _to_json(self)


_hook_lock = threading.Lock()
_hook = None


def set_callback_hook(fn):
    """Installs fn(response, sid) as the receiver of callback(); the runtime does this.
    Returns the previous hook."""
    global _hook
    with _hook_lock:
        prev, _hook = _hook, fn
    return prev


def callback(response, sid):
    """Pushes a result of session (or async once request) sid to the loader."""
    hook = _hook
    if hook is None:
        from aiges.utils.log import log
        log.info("callback(sid=%s) outside the loader: %d item(s), error_code %s", sid,
                 len(getattr(response, "list", []) or []), getattr(response, "error_code", 0))
        return 0
    return hook(response, sid)


def init_rq(*args, **kwargs):
    """Prepares the response queue that callback() feeds. AIGES's embedded interpreter
    needs this before a stream wrapper's first callback; here the worker runtime routes
    callback() directly, so it is a no-op kept for wrappers that call it. Returns 0."""
    return 0


def callback_metric(usrTag, key, count=1):
    """Adds count to the business metric key of request usrTag (aiges_embed's metering
    hook). The loader has no per-wrapper business metrics: the call is logged at debug
    level and returns 0, so wrappers that meter keep working."""
    from aiges.utils.log import log
    log.debug("callback_metric(%s, %s, %s) ignored: no wrapper metering here", usrTag, key, count)
    return 0
