"""aiges.cmd: the original 'aiges' command line (create, package).

Not available here: project generation and packaging (jinja2, docker) are not part of this SDK; write wrapper.py by hand (docs/engines.md). Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "project generation and packaging (jinja2, docker) are not part of this SDK; write wrapper.py by hand (docs/engines.md)")
