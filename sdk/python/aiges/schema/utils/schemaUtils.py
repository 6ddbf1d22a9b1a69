"""aiges.schema.utils.schemaUtils.

Not available here: pydantic schema models are not part of this SDK. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "pydantic schema models are not part of this SDK")
