import os
import sys

from aiges.runtime.worker import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Leave at once: wrapper threads (daemon or not) must not keep a stopped worker alive.
os._exit(code)
