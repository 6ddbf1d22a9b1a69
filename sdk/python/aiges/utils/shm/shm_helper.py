"""aiges.utils.shm.shm_helper: shared-memory helpers.

Not available here: shared-memory transport belongs to the original plugin server. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "shared-memory transport belongs to the original plugin server")
