"""Data type, status and mode constants of the AIGES engine ABI."""

STRING = 0
AUDIO = 1
IMAGE = 2
VIDEO = 3

DataText = 0
DataAudio = 1
DataImage = 2
DataVideo = 3
DataPer = 4

DataBegin = 0
DataContinue = 1
DataEnd = 2
DataOnce = 3
Once = DataOnce

THREAD_MODE = "thread"
PROCESS_MODE = "process"

# User error codes (the SDK's own).
USER_INIT_ERROR_BASE = 30001
ERR_INIT = 30001
ERR_USER_INIT = 30002
ERR_USER_EXEC = 30003

DATA_TYPE_NAMES = {DataText: "text", DataAudio: "audio", DataImage: "image", DataVideo: "video"}


class Types(object):
    """The data types as a namespace: ``Types.DataText`` … ``Types.DataVideo`` (also
    ``Types.STRING`` … ``Types.VIDEO``, the field-type spelling)."""

    STRING, AUDIO, IMAGE, VIDEO = STRING, AUDIO, IMAGE, VIDEO
    DataText, DataAudio, DataImage, DataVideo, DataPer = DataText, DataAudio, DataImage, DataVideo, DataPer


class Status(object):
    """The data statuses as a namespace: ``Status.DataBegin`` … ``Status.DataOnce``,
    ``Status.Once``."""

    DataBegin, DataContinue, DataEnd, DataOnce, Once = DataBegin, DataContinue, DataEnd, DataOnce, Once


class Mode(object):
    """The stream handle-pool modes: ``Mode.THREAD_MODE``, ``Mode.PROCESS_MODE``."""

    THREAD_MODE, PROCESS_MODE = THREAD_MODE, PROCESS_MODE
