"""aiges.core.metadata: metadata validation of the original REST front end.

Not available here: the REST microservice (flask, seldon) is not part of this SDK. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "the REST microservice (flask, seldon) is not part of this SDK")
