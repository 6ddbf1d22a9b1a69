"""Spans and events of a wrapper, reported to the loader's trace.

While the loader traces a call (a once request, a session's create or one of its frames),
what a wrapper records here becomes part of the loader's span of that engine call: a
``span`` is a child span, an ``event`` an event, ``set_attribute`` an attribute. Outside a
traced call (tracing off, the request not sampled, a thread of the wrapper's own, a local
dry run) everything here does nothing and costs next to nothing::

    from aiges import trace

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        with trace.span("preprocess", frames=len(reqData.list)) as sp:
            x = prepare(reqData)
            sp.set_attribute("bytes", len(x))
        trace.event("model.loaded", cached=True)
        with trace.span("infer"):
            y = self.model(x)
        ...

Attribute values are str, int, float or bool (anything else is sent as its str()). A
span that an exception leaves is marked failed with the exception's text (and its code,
for an exception with an int ``code`` attribute) and the exception propagates.
"""

import threading
import time

_local = threading.local()

# Attribute kinds of the worker protocol's trace reports.
_STRING, _INT, _FLOAT, _BOOL = 0, 1, 2, 3

_OP_START, _OP_END, _OP_EVENT, _OP_ATTRS = 1, 2, 3, 4


class _Call(object):
    """The traced call running on this thread: where reports go."""
    __slots__ = ("send", "next_id", "stack")

    def __init__(self, send):
        self.send = send    # send(body bytes): one MSG_TRACE frame with the call's id
        self.next_id = 0
        self.stack = [0]    # open spans, innermost last; 0 is the loader's engine-call span


def _begin(send):
    """Runtime: the call on this thread is traced; reports go through send(body)."""
    _local.call = _Call(send)


def _end():
    """Runtime: the traced call on this thread has ended."""
    _local.call = None


def _current():
    return getattr(_local, "call", None)


def enabled():
    """Whether the call running on this thread is traced (reports reach the loader)."""
    return _current() is not None


def _attrs(parts, attrs):
    from aiges.runtime import protocol as P
    parts.append(P.u32(len(attrs)))
    for k, v in attrs.items():
        P.put_str(parts, str(k))
        if isinstance(v, bool):
            parts.append(bytes((_BOOL, 1 if v else 0)))
        elif isinstance(v, int) and -(1 << 63) <= v < (1 << 63):
            parts.append(bytes((_INT,)))
            parts.append(P.i64(v))
        elif isinstance(v, float):
            parts.append(bytes((_FLOAT,)))
            parts.append(P.f64(v))
        else:
            parts.append(bytes((_STRING,)))
            P.put_str(parts, str(v))


def _send(call, op, span_id, fill):
    from aiges.runtime import protocol as P
    parts = [bytes((op,)), P.u32(span_id)]
    fill(parts)
    try:
        call.send(b"".join(parts))
    except OSError:
        pass  # the connection is gone; the call's answer will fail too


class Span(object):
    """A span of the wrapper, a child of the span open around it (or of the loader's
    engine-call span). Use it through ``span()``."""
    __slots__ = ("_call", "_id", "_name", "_attrs", "_parent")

    def __init__(self, call, name, attrs):
        self._call = call
        self._id = 0
        self._name = name
        self._attrs = attrs
        self._parent = 0

    def __enter__(self):
        call = self._call
        if call is None:
            return self
        from aiges.runtime import protocol as P
        call.next_id += 1
        self._id = call.next_id
        self._parent = call.stack[-1]
        name, attrs, parent, now = self._name, self._attrs, self._parent, time.time_ns()

        def fill(parts):
            parts.append(P.u32(parent))
            P.put_str(parts, str(name))
            parts.append(P.u64(now))
            _attrs(parts, attrs)
        _send(call, _OP_START, self._id, fill)
        call.stack.append(self._id)
        return self

    def __exit__(self, exc_type, exc, tb):
        call = self._call
        if call is None or not self._id:
            return False
        from aiges.runtime import protocol as P
        if call.stack and call.stack[-1] == self._id:
            call.stack.pop()
        elif self._id in call.stack:
            call.stack.remove(self._id)
        code, msg = 0, ""
        if exc is not None:
            c = getattr(exc, "code", None)
            code = c if isinstance(c, int) and c else 30003
            msg = "%s: %s" % (type(exc).__name__, exc)
        now = time.time_ns()

        def fill(parts):
            parts.append(P.u64(now))
            parts.append(P.i32(code))
            P.put_str(parts, msg)
        _send(call, _OP_END, self._id, fill)
        return False

    def set_attribute(self, key, value):
        """Sets one attribute on this span."""
        self.set_attributes(**{key: value})

    def set_attributes(self, **attrs):
        """Sets attributes on this span."""
        if self._call is None or not attrs:
            return
        _send(self._call, _OP_ATTRS, self._id, lambda parts: _attrs(parts, attrs))

    def add_event(self, name, **attrs):
        """Adds an event (a point in time with attributes) to this span."""
        if self._call is None:
            return
        from aiges.runtime import protocol as P
        now = time.time_ns()

        def fill(parts):
            P.put_str(parts, str(name))
            parts.append(P.u64(now))
            _attrs(parts, attrs)
        _send(self._call, _OP_EVENT, self._id, fill)

    def is_recording(self):
        """Whether what is added to this span reaches the loader."""
        return self._call is not None


_NOOP = Span(None, "", None)


def span(name, **attrs):
    """A context manager for a span called name with attributes attrs, a child of the
    span open around it; ``with trace.span("infer", batch=4) as sp: ...``."""
    call = _current()
    if call is None:
        return _NOOP
    return Span(call, name, attrs)


def current_span():
    """The innermost open span of this thread's traced call (the loader's engine-call
    span when the wrapper opened none); a span that does nothing outside a traced call."""
    call = _current()
    if call is None:
        return _NOOP
    sp = Span(call, "", None)
    sp._id = call.stack[-1]
    return sp


def event(name, **attrs):
    """Adds an event to the innermost open span (or the engine-call span)."""
    call = _current()
    if call is None:
        return
    current_span().add_event(name, **attrs)


def set_attributes(**attrs):
    """Sets attributes on the innermost open span (or the engine-call span)."""
    call = _current()
    if call is None:
        return
    current_span().set_attributes(**attrs)
