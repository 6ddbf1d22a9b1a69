"""aiges.utils.encode: small encoding helpers."""

import base64


def b64encode(data):
    """base64 of data (str is UTF-8 encoded first), as bytes."""
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else bytes(data))


def b64decode(data):
    """The bytes data (bytes or str) encodes in base64."""
    return base64.b64decode(data)
