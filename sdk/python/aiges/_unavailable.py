"""Names of the original aiges package that have no meaning under the AthenaServing loader
(its gRPC plugin server, REST/gradio front ends, project generator, shared-memory and
client tools). Their modules import; each such name is an Unavailable object that raises
RuntimeError saying why when it is called or instantiated."""


class Unavailable(object):
    """A placeholder for module.name: calling it raises RuntimeError(reason)."""

    def __init__(self, module, name, reason):
        self.__module__ = module
        self.__name__ = self.__qualname__ = name
        self._reason = reason

    def __call__(self, *args, **kwargs):
        raise RuntimeError("%s.%s is not available in the AthenaServing aiges SDK: %s"
                           % (self.__module__, self.__name__, self._reason))

    def __repr__(self):
        return "<unavailable %s.%s>" % (self.__module__, self.__name__)


def module_getattr(module, reason, names=()):
    """A module-level __getattr__ (PEP 562) giving an Unavailable for any public name,
    so ``from aiges.serve import X`` imports and X() says why it cannot run."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Unavailable(module, name, reason)

    return __getattr__
