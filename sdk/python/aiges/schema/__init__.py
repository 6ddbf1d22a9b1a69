"""aiges.schema: pydantic models of the capability schema.

Not available here: pydantic schema models are not part of this SDK; Wrapper().schema() generates the capability schema. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "pydantic schema models are not part of this SDK; Wrapper().schema() generates the capability schema")
