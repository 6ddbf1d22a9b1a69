"""The SDK's loggers: ``from aiges.utils.log import log, getFileLogger``.

Both write to stderr, which the loader collects line by line into its own log (AIGES
wrote getFileLogger's records to a file under the engine's log directory; here the
loader's log is that place). getFileLogger(name, file=...) also writes to a file when a
file is named.
"""

import logging
import os
import sys
import threading

_FORMAT = "%(asctime)s %(levelname)s %(name)s:%(funcName)s:%(lineno)s: %(message)s"

log = logging.getLogger("aiges")
if not log.handlers:
    _h = logging.StreamHandler(sys.stderr)
    _h.setFormatter(logging.Formatter(_FORMAT))
    log.addHandler(_h)
    log.setLevel(logging.INFO)
    log.propagate = False

_lock = threading.Lock()
_file_loggers = {}


def getFileLogger(name="wrapper", file=None, level=logging.DEBUG, *args, **kwargs):
    """Returns the logger a wrapper logs its own lines with (one per name, created once):
    a child of the aiges logger at level, plus a file handler when file is given (its
    directory is created). Extra arguments are accepted and ignored."""
    with _lock:
        lg = _file_loggers.get(name)
        if lg is not None:
            return lg
        lg = log.getChild(str(name))
        lg.setLevel(level)
        if file:
            d = os.path.dirname(os.path.abspath(file))
            os.makedirs(d, exist_ok=True)
            fh = logging.FileHandler(file)
            fh.setFormatter(logging.Formatter(_FORMAT))
            lg.addHandler(fh)
        _file_loggers[name] = lg
        return lg


def setLevel(level):
    """Sets the level of the aiges logger (and so of getFileLogger's loggers' default)."""
    log.setLevel(level)
