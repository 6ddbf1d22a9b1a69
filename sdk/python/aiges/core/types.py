"""The constants of aiges.types, under the module name most wrappers import:
``from aiges.core.types import *`` (DataText … DataVideo, DataBegin … DataOnce, Once,
STRING … VIDEO, THREAD_MODE, PROCESS_MODE, and the Types, Status and Mode namespaces)."""

from aiges.types import *  # noqa: F401,F403
from aiges.types import (  # noqa: F401
    STRING, AUDIO, IMAGE, VIDEO, DataText, DataAudio, DataImage, DataVideo, DataPer,
    DataBegin, DataContinue, DataEnd, DataOnce, Once, THREAD_MODE, PROCESS_MODE, Types, Status, Mode,
)
