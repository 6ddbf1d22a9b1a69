"""Stream-session helpers: a pool of handles, each served by a user thread.

    class MyThread(StreamHandleThread):
        def run(self):
            while True:
                req = self.in_q.get()
                ...
                self.session_thread.callback_fn(resp, self.session_thread.sid)

    # in wrapperInit:   self.session.init_handle_pool(THREAD_MODE, 10, MyThread)
    # in wrapperCreate: handle = self.session.get_idle_handle(); s = self.session.get_session(handle)
    #                   s.setup_sid(sid); s.setup_params(params); s.setup_callback_fn(callback)
    # in wrapperWrite:  self.session.get_session(handle).in_q.put(req)
    # in wrapperDestroy: self.session.reset_session(handle); self.session.push_back(handle)
"""

import queue
import threading

from aiges.types import THREAD_MODE, PROCESS_MODE  # noqa: F401


class StreamHandleThread(threading.Thread):
    """A daemon thread serving one handle; users override run()."""

    def __init__(self, session_thread, in_q, out_q):
        threading.Thread.__init__(self)
        self.session_thread = session_thread
        self.in_q = in_q
        self.out_q = out_q
        self.daemon = True
        self.is_stopping = False

    def run(self):
        while not self.is_stopping:
            item = self.in_q.get()
            if item is None:
                break

    def stop(self):
        self.is_stopping = True
        self.in_q.put(None)


class SessionThread(object):
    """One pooled handle: its queues, and the sid/params/callback of the session using it."""

    def __init__(self, handle, in_q=None, out_q=None):
        self.handle = handle
        self.in_q = in_q if in_q is not None else queue.Queue()
        self.out_q = out_q if out_q is not None else queue.Queue()
        self.sid = ""
        self.params = {}
        self.callback_fn = None
        self.thread = None
        self.idle = True

    def setup_sid(self, sid):
        self.sid = sid

    def setup_params(self, params):
        self.params = params

    def setup_callback_fn(self, fn):
        self.callback_fn = fn

    def reset(self):
        """Forgets the session and drops anything still queued."""
        self.sid = ""
        self.params = {}
        self.callback_fn = None
        for q in (self.in_q, self.out_q):
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass


class SessionManager(object):
    """The handle pool every wrapper has as ``self.session``.

    Both modes run handles as threads inside the worker process: the loader already
    isolates engines in worker processes, one pool per process.
    """

    def __init__(self):
        self.config = {}
        self.mode = THREAD_MODE
        self._lock = threading.Lock()
        self._sessions = {}
        self._idle = []

    def init_wrapper_config(self, config):
        self.config = dict(config or {})

    def init_handle_pool(self, mode, nums, ReqThreadCls):
        self.mode = mode
        with self._lock:
            start = len(self._sessions)
            for i in range(start, start + int(nums)):
                handle = "handle-%d" % i
                s = SessionThread(handle)
                if ReqThreadCls is not None:
                    s.thread = ReqThreadCls(s, s.in_q, s.out_q)
                    s.thread.start()
                self._sessions[handle] = s
                self._idle.append(handle)

    def get_idle_handle(self):
        """Takes an idle handle, or returns None when all are busy."""
        with self._lock:
            if not self._idle:
                return None
            handle = self._idle.pop(0)
            self._sessions[handle].idle = False
            return handle

    def get_session(self, handle):
        return self._sessions.get(handle)

    def set_idle_session(self, handle):
        self.push_back(handle)

    def reset_session(self, handle):
        s = self._sessions.get(handle)
        if s is not None:
            s.reset()

    def push_back(self, handle):
        with self._lock:
            s = self._sessions.get(handle)
            if s is None or s.idle:
                return
            s.idle = True
            self._idle.append(handle)

    def idle_count(self):
        with self._lock:
            return len(self._idle)
