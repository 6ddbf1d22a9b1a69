"""``from aiges.callback import callback``: the result callback a stream session hands to
its handle thread (``session.setup_callback_fn(callback)``).

callback(response, sid) pushes a result of session (or async once request) sid to the
loader through the worker runtime. The older three-argument form callback(response,
handle, sid) is accepted too. set_up(q) installed a response queue in the gRPC plugin
server of the original package; here results go to the loader directly, so a queue given
to set_up only also receives each response (useful in tests).
"""

from aiges import dto
from aiges.utils.log import log

q = None


def set_up(_q):
    """Installs _q (anything with put) as a copy of every callback's response."""
    global q
    q = _q


def callback(user_resp, *args):
    """Pushes user_resp (a dto.Response) for sid: callback(resp, sid) or
    callback(resp, handle, sid). Returns the runtime's code (0 = delivered)."""
    if not args:
        raise TypeError("callback(response, sid) needs the session id")
    sid = args[-1]
    if q is not None:
        try:
            q.put(user_resp)
        except Exception as e:  # noqa: BLE001
            log.warning("callback: response queue: %s", e)
    return dto.callback(user_resp, sid)
