"""aiges.utils.audit_service: the original audit service.

Not available here: audit reporting is the platform's, not the SDK's. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "audit reporting is the platform's, not the SDK's")
