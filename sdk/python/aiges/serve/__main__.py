"""python -m aiges.serve: the original package's plugin server. The loader runs wrapper.py
in its own worker processes (python -m aiges.runtime), so this only says so."""

import sys

from aiges._unavailable import module_getattr

__getattr__ = module_getattr(__name__, "the loader runs wrapper.py itself (python -m aiges.runtime)")

if __name__ == "__main__":
    print("aiges.serve is not part of the AthenaServing aiges SDK: the loader runs wrapper.py in its "
          "own worker processes (python -m aiges.runtime); for a local check run python3 wrapper.py", file=sys.stderr)
    sys.exit(2)
