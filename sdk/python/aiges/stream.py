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

from aiges.types import *  # noqa: F401,F403 - aiges.stream re-exports the type constants
from aiges.types import THREAD_MODE, PROCESS_MODE
from aiges.utils.log import log


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
    """One pooled handle: its queues, and the sid/params/callback of the session using it
    (WorkerThread in the original package). reset() forgets the session and returns the
    handle to its pool's idle handles, as a stream thread does after the last frame."""

    def __init__(self, handle, in_q=None, out_q=None, pool=None):
        self.handle = handle
        self.in_q = in_q if in_q is not None else queue.Queue()
        self.out_q = out_q if out_q is not None else queue.Queue()
        self.sid = ""
        self.params = {}
        self.callback_fn = None
        self.thread = None
        self.is_idle = True
        self.StreamHandleThreadClass = StreamHandleThread
        self._pool = pool

    @property
    def idle(self):
        return self.is_idle

    @idle.setter
    def idle(self, v):
        self.is_idle = v

    def setup_sid(self, sid):
        self.sid = sid

    def setup_params(self, params):
        self.params = params
        self.is_idle = False

    def setup_callback_fn(self, fn):
        self.callback_fn = fn

    def setStreamHandleThreadClass(self, cls):
        self.StreamHandleThreadClass = cls

    def _clear(self):
        self.sid = ""
        self.params = {}
        self.callback_fn = None
        for q in (self.in_q, self.out_q):
            with q.mutex:
                q.queue.clear()

    def reset(self):
        """Forgets the session, drops anything still queued and makes the handle idle."""
        self._clear()
        if self._pool is not None:
            self._pool.set_idle(self.handle)
        else:
            self.is_idle = True


WorkerThread = SessionThread


class Pool(object):
    """The handles of a SessionManager: ``workers`` maps handle -> SessionThread."""

    def __init__(self):
        self.workers = {}
        self._lock = threading.Lock()
        self._idle = []

    def add(self, handle, ReqThreadCls):
        s = SessionThread(handle, pool=self)
        if ReqThreadCls is not None:
            s.setStreamHandleThreadClass(ReqThreadCls)
            s.thread = ReqThreadCls(s, s.in_q, s.out_q)
            s.thread.start()
        with self._lock:
            self.workers[handle] = s
            self._idle.append(handle)
        return s

    def get_thread(self, handle):
        return self.workers.get(handle)

    def get_idle_thread_handle(self):
        """Takes an idle handle: (handle, SessionThread), or (None, None)."""
        with self._lock:
            if not self._idle:
                return None, None
            handle = self._idle.pop(0)
            s = self.workers[handle]
            s.is_idle = False
            return handle, s

    def reset_thread(self, handle):
        s = self.workers.get(handle)
        if s is not None:
            s._clear()

    def set_idle(self, handle):
        with self._lock:
            s = self.workers.get(handle)
            if s is None or (s.is_idle and handle in self._idle):
                return
            s.is_idle = True
            if handle not in self._idle:
                self._idle.append(handle)

    def idle_count(self):
        with self._lock:
            return len(self._idle)


class ThreadPool(Pool):
    """nums handles named Process-<n>-Thread-<i>, each served by a ReqThreadCls thread."""

    def __init__(self, reqDataThreadCls=None, processs_no=0, nums=10):
        Pool.__init__(self)
        for i in range(int(nums)):
            self.add("Process-%s-Thread-%d" % (processs_no, i), reqDataThreadCls)


class ProcessThreadPool(ThreadPool):
    """PROCESS_MODE of the original package (marked unusable there): the loader already
    runs engines in worker processes, so its handles are threads in this one
    (procs × threads_per_cpu of them)."""

    def __init__(self, reqWorkerHandleCls=None, procs=2, threads_per_cpu=5):
        Pool.__init__(self)
        self.process = {}
        for p in range(int(procs)):
            for i in range(int(threads_per_cpu)):
                self.add("Process-%d-Thread-%d" % (p, i), reqWorkerHandleCls)


class WorkerProcess(object):
    """Kept for the name: process workers are not started here (see ProcessThreadPool)."""

    def __init__(self, workers=None, reqDataThreadCls=None, process_no=0, threads_per_cpu=2):
        raise RuntimeError("aiges.stream.WorkerProcess: process handle pools are not supported by the "
                           "AthenaServing runtime (workers are already processes); use THREAD_MODE")


lock = threading.Lock()


class SessionManager(object):
    """The handle pool every wrapper has as ``self.session``.

    Both modes run handles as threads inside the worker process: the loader already
    isolates engines in worker processes, one pool per process.
    """

    def __init__(self, config=None, mode=THREAD_MODE, nums=0):
        self.config = dict(config or {})
        self.wrapperConfig = self.config
        self.mode = mode
        self.initialized = False
        self.code = 0
        self.lock = threading.Lock()
        self.handle_pool = Pool()
        if nums:
            self.init_handle_pool(mode, nums, None)

    def init_wrapper_config(self, config=None):
        self.config = dict(config or {})
        self.wrapperConfig = self.config

    def init_handle_pool(self, mode, nums, ReqThreadCls):
        """Adds nums handles, each served by a ReqThreadCls(session_thread, in_q, out_q)."""
        self.mode = mode
        if mode == PROCESS_MODE:
            log.warning("PROCESS_MODE handle pool runs its handles as threads in this worker process")
        start = len(self.handle_pool.workers)
        for i in range(start, start + int(nums)):
            self.handle_pool.add("Process-0-Thread-%d" % i, ReqThreadCls)
        self.initialized = True

    def init_threads(self, ReqThreadCls, nums=0):
        return ThreadPool(ReqThreadCls, 0, nums)

    def init_processes(self, ReqThreadCls, procs=2, threads_per_cpu=5):
        return ProcessThreadPool(ReqThreadCls, procs, threads_per_cpu)

    def get_idle_handle(self):
        """Takes an idle handle, or returns None when all are busy."""
        handle, _ = self.handle_pool.get_idle_thread_handle()
        return handle

    def get_session(self, handle):
        return self.handle_pool.get_thread(handle)

    def set_idle_session(self, handle):
        self.handle_pool.set_idle(handle)

    def reset_session(self, handle):
        self.handle_pool.reset_thread(handle)

    def push_back(self, handle):
        """Makes handle idle and forgets its session."""
        self.handle_pool.reset_thread(handle)
        self.handle_pool.set_idle(handle)

    def idle_count(self):
        return self.handle_pool.idle_count()
