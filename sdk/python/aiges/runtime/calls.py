"""Calling wrapper methods the way their signatures allow."""

import inspect

_cache = {}


def positional_arity(fn):
    """How many positional arguments fn accepts (None = any number)."""
    key = getattr(fn, "__func__", fn)
    n = _cache.get(key, -1)
    if n != -1:
        return n
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        n = None
    else:
        n = 0
        for p in sig.parameters.values():
            if p.kind == inspect.Parameter.VAR_POSITIONAL:
                n = None
                break
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
                n += 1
    _cache[key] = n
    return n


def call_compat(fn, *args):
    """Calls fn with as many of args (in order) as its signature accepts: older wrappers
    declare wrapperOnceExec(params, reqData) and wrapperCreate(params, sid)."""
    n = positional_arity(fn)
    if n is None or n >= len(args):
        return fn(*args)
    return fn(*args[:n])
