"""aiges.client: the original test client.

Not available here: use the ASE clients (tools/) against webgate instead. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "use the ASE clients (tools/) against webgate instead")
