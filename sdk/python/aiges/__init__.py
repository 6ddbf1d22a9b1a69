"""aiges: the Python SDK for AthenaServing engines (AIGES-compatible).

A wrapper.py written against this package runs unchanged in the loader's Python worker
(``python3 -m aiges.runtime --wrapper <dir>``) and locally (``Wrapper().run()``).
"""

__version__ = "1.0.0"
