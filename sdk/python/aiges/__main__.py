"""python -m aiges [run|schema] [wrapper.py or its directory]: a local dry run or the
capability schema of a wrapper (what ``python3 wrapper.py`` and ``Wrapper().schema()`` do)."""

import os
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv.pop(0) if argv else "run"
    if cmd not in ("run", "schema"):
        print("usage: python -m aiges [run|schema] [wrapper.py or its directory]\n"
              "(the original package's create/package commands are not part of this SDK)", file=sys.stderr)
        return 2
    from aiges.runtime.worker import load_wrapper
    path = os.path.abspath(argv[0] if argv else ".")
    os.chdir(path if os.path.isdir(path) else os.path.dirname(path))
    w = load_wrapper(path)
    if cmd == "schema":
        w.schema()
    else:
        w.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
