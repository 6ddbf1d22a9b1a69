"""The constants of aiges.types, under their older module name."""

from aiges.types import *  # noqa: F401,F403
from aiges.types import (  # noqa: F401
    STRING, AUDIO, IMAGE, VIDEO, DataText, DataAudio, DataImage, DataVideo, DataPer,
    DataBegin, DataContinue, DataEnd, DataOnce, Once, THREAD_MODE, PROCESS_MODE,
)
