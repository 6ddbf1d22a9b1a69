"""aiges.gradio_util.component: gradio UI components.

Not available here: the gradio UI is not part of this SDK. Any public name of this module imports and raises RuntimeError
when called (see aiges._unavailable)."""

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "the gradio UI is not part of this SDK")
