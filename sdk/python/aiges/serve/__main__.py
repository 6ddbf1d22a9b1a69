"""python -m aiges.serve: the original package's plugin server.

Not available here: the loader runs wrapper.py in its own worker processes (python -m aiges.runtime), not in a gRPC/HTTP plugin server. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "the loader runs wrapper.py in its own worker processes (python -m aiges.runtime), not in a gRPC/HTTP plugin server")
