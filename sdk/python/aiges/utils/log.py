"""The SDK's logger: ``from aiges.utils.log import log``.

It writes to stderr, which the loader collects line by line into its own log.
"""

import logging
import sys

log = logging.getLogger("aiges")
if not log.handlers:
    _h = logging.StreamHandler(sys.stderr)
    _h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_h)
    log.setLevel(logging.INFO)
    log.propagate = False
