"""The worker runtime: imports a wrapper once and serves the loader's calls.

Session modes (set by the loader through the environment, see main):

- ASF_WORKER_ASYNC=1 is AIGES asyncMode: session results come only through
  ``callback(response, sid)``; wrapperRead is never called.
- ASF_WORKER_RESULTS_AT_END=1 is AIGES realTimeRlt=false: in sync mode wrapperRead is
  called once after the last input frame (status DataEnd) instead of after every write.
- Neither: wrapperRead (when the wrapper defines it) after every write.

A once call whose wrapper returns None (or an async once whose callback carries None) is
an engine error: ERR_USER_EXEC (30003, "user exec error") with a message saying so, as
AIGES treats a missing Response.
"""

import importlib.util
import os
import socket
import sys
import threading
import time
import traceback
from collections import deque
from time import monotonic

from aiges import dto, trace
from aiges.runtime import protocol as P
from aiges.runtime.calls import call_compat
from aiges.types import DataEnd, DataOnce, ERR_INIT, ERR_USER_INIT, ERR_USER_EXEC
from aiges.utils.log import log

ERR_INVALID_OUTPUT = 10106
ERR_INVALID_HANDLE = 10008
ERR_INVALID_OP = 10003

# INLINE_HANDOFF is how long (seconds) a call may run on the reading thread before the
# reading is handed to another thread.
INLINE_HANDOFF = 0.001

# OUT_LIMIT bounds the replies held back while further frames are already buffered
# (bytes); more are written at once.
OUT_LIMIT = 1 << 16


class EngineError(Exception):
    """An error with an engine code, sent back to the loader."""

    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = int(code)
        self.msg = msg


def load_wrapper(path):
    """Imports wrapper.py (path is the file or its directory) and returns the wrapper:
    an instance of its Wrapper class, or the module itself for function-style wrappers."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "wrapper.py")
    d = os.path.dirname(path)
    if d not in sys.path:
        sys.path.insert(0, d)
    spec = importlib.util.spec_from_file_location("wrapper", path)
    if spec is None or spec.loader is None:
        raise ImportError("no python module at %s" % path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["wrapper"] = mod
    spec.loader.exec_module(mod)
    cls = getattr(mod, "Wrapper", None)
    if isinstance(cls, type):
        return cls()
    if cls is not None:
        raise WrapperMissing("%s: Wrapper is a %s, not a class" % (path, type(cls).__name__))
    if callable(getattr(mod, "wrapperInit", None)):
        return mod  # a function-style wrapper: module-level wrapperInit, wrapperOnceExec, ...
    raise WrapperMissing("%s defines no class Wrapper (class Wrapper(WrapperBase) with wrapperInit, "
                         "wrapperOnceExec, ...)" % path)


class WrapperMissing(ImportError):
    """wrapper.py imports but defines no Wrapper class (nor module-level wrapper functions)."""


def _overrides(w, name):
    """Whether wrapper w implements name itself (not just WrapperBase's default)."""
    from aiges.sdk import WrapperBase
    fn = getattr(type(w), name, None) if not isinstance(w, type(sys)) else getattr(w, name, None)
    if fn is None:
        return False
    return fn is not getattr(WrapperBase, name, None)


def _exc_text(e):
    return "%s: %s" % (type(e).__name__, e)


def build_datalist(items, status=None):
    dl = dto.DataListCls()
    for name, typ, attrs, data in items:
        st = status
        if st is None:
            try:
                st = int(attrs.get("status", DataOnce))
            except ValueError:
                st = DataOnce
        dl.list.append(dto.DataListNode(key=name, data=data, len=len(data), type=typ, status=st, desc=attrs))
    return dl


class Runtime(object):
    """Serves one worker connection for one wrapper."""

    def __init__(self, sock, wrapper_path, threads=8, async_mode=False, results_at_end=False, nudge=None):
        self.sock = sock
        # nudge is the loader's hand-off socket (ASF_WORKER_NUDGE_FD) or None: the loader
        # writes a byte to it while a call has been unanswered for INLINE_HANDOFF or longer,
        # and the standby thread waits on it instead of looking at the clock (_standby).
        self.nudge = nudge
        self.inline_start = 0.0  # when the reader's inline call began (time.monotonic)
        self.wrapper_path = wrapper_path
        self.wlock = threading.Lock()
        self.threads = max(1, threads)
        # Dispatch state (see serve), guarded by cv's lock: lead is the reading turn's
        # token (None: nobody reads), inline/inline_gen describe the reader's inline call.
        lock = threading.Lock()
        self.cv = threading.Condition(lock)   # call threads wait here for frames or the turn
        self.scv = threading.Condition(lock)  # the standby thread waits here
        self.lead = None
        self.inline = False
        self.inline_gen = 0
        self.standby_sleeping = False
        self.spawned = 0
        self.inline_ok = True
        self.idle = 0
        self.active = 0  # calls running, at most threads; later frames wait in queue
        self.queue = deque()
        self.stopped = False
        self.done = threading.Event()
        self.end_error = None
        self.reader = None
        # Replies held back (frames, their size) while the reading thread has a further
        # whole frame buffered: written together, in order, with the next reply sent
        # without holding back or before a reader waits for input (also the reader that
        # takes over from a long call). Guarded by wlock; batch_thread is the thread
        # whose replies are held back (None: nobody's).
        self.out = []
        self.out_len = 0
        self.batch_thread = None
        self.wrapper = None
        self.load_error = None
        self.slock = threading.Lock()
        self.sessions = {}   # session id -> [handle, sid]
        self.by_sid = {}     # wrapper sid -> session id
        self.once_waiters = {}  # sid -> [event, response]
        try:
            self.wrapper = load_wrapper(wrapper_path)
        except WrapperMissing as e:
            self.load_error = str(e)
        except BaseException as e:  # noqa: B902 - report any import failure on Init
            traceback.print_exc()
            self.load_error = "import %s: %s" % (wrapper_path, _exc_text(e))
        self.async_mode = async_mode
        self.results_at_end = results_at_end
        if self.wrapper is not None:
            self.sync_once = _overrides(self.wrapper, "wrapperOnceExec") or not _overrides(self.wrapper, "wrapperOnceExecAsync")
            self.has_read = _overrides(self.wrapper, "wrapperRead") and not async_mode
            self.inline_ok = bool(getattr(self.wrapper, "inlineCalls", True))
        dto.set_callback_hook(self.on_callback)

    # --- transport --------------------------------------------------------------------
    def send(self, msg_type, ident, body=b""):
        self.send_frame(P.frame(msg_type, ident, body))

    def send_frame(self, data):
        """Writes one encoded frame (or holds it back, see out)."""
        with self.wlock:
            if self.out or self.batch_thread is not None:
                self.out.append(data)
                self.out_len += len(data)
                if self.batch_thread == threading.get_ident() and self.out_len < OUT_LIMIT:
                    return
                data = b"".join(self.out)
                self.out = []
                self.out_len = 0
            self.sock.sendall(data)

    def flush(self):
        """Writes the replies held back."""
        with self.wlock:
            if self.out:
                data = b"".join(self.out)
                self.out = []
                self.out_len = 0
                self.sock.sendall(data)

    def reply_ok(self, ident, body=b""):
        self.send(P.MSG_OK, ident, body)

    def reply_err(self, ident, code, msg):
        self.send(P.MSG_ERR, ident, P.encode_error(code, msg))

    def serve(self):
        """Serves the connection until it ends.

        Calls run on the thread that read them, so a short call costs no thread hand-off:
        the reader reads a frame, runs the call inline and reads on. A standby thread
        watches the inline call; one still running after INLINE_HANDOFF seconds hands the
        reading over to an idle call thread (started when none is idle), so long calls
        never hold up the calls behind them for more than that. A wrapper with
        inlineCalls = False has every call handed to an idle thread instead, which then
        reads on. Up to threads calls run at once; a frame read while all are taken (or,
        for an opted-out wrapper, while no thread is idle) is queued and the reader reads
        on, so the connection is always drained. A thread that finishes a call takes
        queued frames first."""
        self.reader = P.FrameReader(self.sock)
        for i in range(self.threads + 1):
            self._spawn()
        threading.Thread(target=self._standby, name="aiges-standby", daemon=True).start()
        self.done.wait()
        with self.cv:
            self.scv.notify_all()
        if self.end_error is not None:
            raise self.end_error

    def _spawn(self):
        self.spawned += 1
        threading.Thread(target=self._loop, name="aiges-call-%d" % self.spawned, daemon=True).start()

    def _loop(self):
        cv = self.cv
        while True:
            with cv:
                while True:
                    if self.stopped:
                        return
                    if self.queue:
                        f = self.queue.popleft()
                        self.active += 1
                        if self.lead is None and self.idle:
                            cv.notify()
                        break
                    if self.lead is None:
                        f = None
                        break
                    if self.idle >= self.threads:
                        return  # surplus thread started for a hand-off
                    self.idle += 1
                    cv.wait()
                    self.idle -= 1
                if f is None:
                    tok = self.lead = object()
            if f is not None:
                self.handle(*f)
                with cv:
                    self.active -= 1
            elif not self._lead(tok):
                return

    def _lead(self, tok):
        """Reads and runs frames while this thread holds the reading turn tok. False once
        the connection ended."""
        cv = self.cv
        inline_ok = self.inline_ok
        reader = self.reader
        me = threading.get_ident()
        while True:
            try:
                if self.out and not reader.pending():
                    self.flush()  # the reader may wait for input now
                f = reader.read()
            except (EOFError, OSError) as e:
                log.info("worker connection ended: %s", e)
                f = None
            except BaseException as e:  # noqa: B902 - a malformed stream ends the worker
                self.end_error = e
                f = None
            with cv:
                if f is None:
                    self.stopped = True
                    self.lead = None
                    self.queue.clear()
                    cv.notify_all()
                    self.scv.notify_all()
                    self.done.set()
                    return False
                if self.active >= self.threads:
                    self.queue.append(f)  # every call slot is taken: read on
                    continue
                self.active += 1
                inline = inline_ok
                if inline:
                    self.inline = True
                    self.inline_gen += 1
                    self.inline_start = monotonic()
                    if self.standby_sleeping:
                        self.scv.notify()
                elif self.idle:
                    self.lead = None
                    cv.notify()
                else:
                    self.active -= 1
                    self.queue.append(f)
                    continue
            # A call handled inline while the next frame is already buffered holds its
            # replies back, so that several calls' replies leave in one write.
            batch = inline and reader.pending()
            if batch:
                self.batch_thread = me
            self.handle(*f)
            if batch and self.batch_thread == me:
                self.batch_thread = None
            with cv:
                self.active -= 1
                handed = not inline or self.lead is not tok
                if not handed:
                    self.inline = False
            if handed:
                self._safe_flush()
                return True  # reading was handed over before or during the call

    def _standby(self):
        """Hands the reading over when an inline call runs longer than INLINE_HANDOFF."""
        if self.nudge is not None:
            self._standby_nudged()
            return
        cv, scv = self.cv, self.scv
        with cv:
            seen = -1
            while not self.stopped:
                if not self.inline and self.inline_gen == seen:
                    self.standby_sleeping = True
                    scv.wait()
                    self.standby_sleeping = False
                    continue
                seen = self.inline_gen
                scv.wait(INLINE_HANDOFF)
                if self.stopped or not self.inline or self.inline_gen != seen:
                    continue
                self._hand_over()

    def _hand_over(self):
        """Takes the reading turn from the inline call (cv held): an idle call thread, or a
        new one, reads on."""
        self.inline = False
        self.lead = None
        if self.idle:
            self.cv.notify()
        else:
            self._spawn()

    def _standby_nudged(self):
        """_standby for a worker with a hand-off socket: it sleeps until the loader nudges
        (one of this worker's calls has been unanswered for INLINE_HANDOFF; the loader
        nudges again every INLINE_HANDOFF while one is), then looks at the call running
        inline: one that has run INLINE_HANDOFF since it began is handed over, a younger one
        is looked at again when it would reach that age, and the standby sleeps again. So a
        stream of short calls wakes no thread but the reader."""
        cv, scv = self.cv, self.scv
        while True:
            try:
                if not self.nudge.recv(64):
                    return  # the loader closed it: the connection is ending
            except OSError:
                return
            with cv:
                if self.stopped:
                    return
                if not self.inline:
                    continue
                seen = self.inline_gen
                wait = self.inline_start + INLINE_HANDOFF - monotonic()
                if wait > 0:
                    scv.wait(wait)
                    if self.stopped:
                        return
                    if not self.inline or self.inline_gen != seen:
                        continue
                self._hand_over()

    def handle(self, msg_type, ident, body):
        if msg_type & P.FLAG_TRACED:
            # The loader traces this call: aiges.trace reports on this thread go to it.
            trace._begin(lambda b, i=ident: self.send(P.MSG_TRACE, i, b))
            try:
                self._handle(msg_type & ~P.FLAG_TRACED, ident, body)
            finally:
                trace._end()
            return
        self._handle(msg_type, ident, body)

    def _handle(self, msg_type, ident, body):
        try:
            if msg_type == P.MSG_ONCE:
                self.send_frame(P.response_frame(ident, self.once(P.decode_request(body), ident)))
                return
            d = P.Decoder(body)
            if msg_type == P.MSG_INIT:
                cfg = d.map()
                d.done()
                self.init(cfg)
                self.reply_ok(ident)
            elif msg_type == P.MSG_FINI:
                self.fini()
                self.reply_ok(ident)
            elif msg_type == P.MSG_OPEN:
                sp = d.session_params()
                d.done()
                self.open(ident, sp)
                self.reply_ok(ident)
            elif msg_type == P.MSG_WRITE:
                sid, sync, status, items = d.write()
                d.done()
                self.write(sid, status, items)
                self.reply_ok(ident)
            elif msg_type == P.MSG_CLOSE:
                sid = d.u64()
                d.done()
                self.close(sid)
                self.reply_ok(ident)
            elif msg_type == P.MSG_LOAD_RES:
                res_id, items = d.load_res()
                d.done()
                self.load_res(res_id, items)
                self.reply_ok(ident)
            elif msg_type == P.MSG_UNLOAD_RES:
                res_id = d.u32()
                d.done()
                self.unload_res(res_id)
                self.reply_ok(ident)
            else:
                self.reply_err(ident, 10003, "unknown message type %d" % msg_type)
        except EngineError as e:
            self._safe_reply_err(ident, e.code, e.msg)
        except P.Malformed as e:
            self._safe_reply_err(ident, 10009, "malformed message: %s" % e)
        except OSError:
            pass  # the connection is gone; serve() ends
        except BaseException as e:  # noqa: B902
            traceback.print_exc()
            self._safe_reply_err(ident, ERR_USER_EXEC, _exc_text(e))

    def _safe_flush(self):
        try:
            self.flush()
        except OSError:
            pass  # the connection is gone; serve() ends

    def _safe_reply_err(self, ident, code, msg):
        try:
            self.reply_err(ident, code, msg)
        except OSError:
            pass

    # --- engine calls -----------------------------------------------------------------
    def _error_text(self, code):
        try:
            text = self.wrapper.wrapperError(code)
        except Exception as e:  # noqa: BLE001
            text = "wrapperError(%d) raised %s" % (code, _exc_text(e))
        return text or "engine error %d" % code

    def _check_ret(self, ret, what):
        if ret is None or ret == 0:
            return
        if isinstance(ret, int):
            raise EngineError(ret, self._error_text(ret))
        raise EngineError(ERR_USER_EXEC, "%s returned %r, want an int" % (what, ret))

    def _user(self, code, what, fn, *args):
        try:
            return fn(*args)
        except EngineError:
            raise
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            raise EngineError(code, "%s: %s" % (what, _exc_text(e)))

    def init(self, cfg):
        if self.load_error is not None:
            raise EngineError(ERR_INIT, self.load_error)
        ret = self._user(ERR_USER_INIT, "wrapperInit", self.wrapper.wrapperInit, dict(cfg))
        self._check_ret(ret, "wrapperInit")

    def fini(self):
        if self.wrapper is None:
            return
        ret = self._user(ERR_USER_EXEC, "wrapperFini", self.wrapper.wrapperFini)
        self._check_ret(ret, "wrapperFini")

    def _outputs(self, resp, what):
        """Converts a Response into (items, status); raises EngineError for a failed or
        malformed one. status is DataEnd when any item ends, else the last item's."""
        if resp is None:
            return [], None
        if isinstance(resp, int):
            self._check_ret(resp, what)
            return [], None
        if not isinstance(resp, dto.Response):
            raise EngineError(ERR_INVALID_OUTPUT, "%s returned %s, want a Response" % (what, type(resp).__name__))
        if resp.error_code:
            raise EngineError(resp.error_code, self._error_text(resp.error_code))
        items, status = [], None
        for r in resp.list or []:
            data = r.data
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            elif data is None:
                data = b""
            elif not isinstance(data, bytes):
                raise EngineError(ERR_INVALID_OUTPUT, "%s: output %r data is %s, want bytes or str" % (what, r.key, type(data).__name__))
            attrs = getattr(r, "desc", None) or {}
            items.append((str(r.key), int(r.type or 0), {str(k): str(v) for k, v in attrs.items()}, data))
            st = int(r.status if r.status is not None else DataOnce)
            status = DataEnd if status == DataEnd or st == DataEnd else st
        return items, status

    def once(self, req, ident):
        if self.wrapper is None:
            raise EngineError(ERR_INIT, self.load_error or "no wrapper")
        params = req["params"]  # decoded for this call alone
        data = build_datalist(req["inputs"], DataOnce)
        tag = req["tag"]
        persid = req["psr"][0] if req["psr"] else 0
        if self.sync_once:
            resp = self._user(ERR_USER_EXEC, "wrapperOnceExec", call_compat, self.wrapper.wrapperOnceExec, params, data, tag, persid)
        else:
            sid = tag or "once-%d" % ident
            waiter = [threading.Event(), None]
            with self.slock:
                self.once_waiters[sid] = waiter
            try:
                ret = self._user(ERR_USER_EXEC, "wrapperOnceExecAsync", call_compat, self.wrapper.wrapperOnceExecAsync, params, data, sid, persid)
                self._check_ret(ret, "wrapperOnceExecAsync")
                waiter[0].wait()
                resp = waiter[1]
            finally:
                with self.slock:
                    self.once_waiters.pop(sid, None)
        what = "wrapperOnceExec" if self.sync_once else "wrapperOnceExecAsync callback"
        if resp is None:
            raise EngineError(ERR_USER_EXEC, "%s returned None, want a Response" % what)
        items, _ = self._outputs(resp, what)
        return items

    def _has(self, name):
        if isinstance(self.wrapper, type(sys)):
            return callable(getattr(self.wrapper, name, None))
        return _overrides(self.wrapper, name)

    def load_res(self, res_id, items):
        """wrapperLoadRes(reqData, resId): loads personalisation resource res_id."""
        if self.wrapper is None:
            raise EngineError(ERR_INIT, self.load_error or "no wrapper")
        if not self._has("wrapperLoadRes"):
            raise EngineError(ERR_INVALID_OP, "the wrapper does not implement wrapperLoadRes")
        ret = self._user(ERR_USER_EXEC, "wrapperLoadRes", self.wrapper.wrapperLoadRes, build_datalist(items), res_id)
        self._check_ret(ret, "wrapperLoadRes")

    def unload_res(self, res_id):
        """wrapperUnloadRes(resId): unloads personalisation resource res_id."""
        if self.wrapper is None:
            raise EngineError(ERR_INIT, self.load_error or "no wrapper")
        if not self._has("wrapperUnloadRes"):
            raise EngineError(ERR_INVALID_OP, "the wrapper does not implement wrapperUnloadRes")
        ret = self._user(ERR_USER_EXEC, "wrapperUnloadRes", self.wrapper.wrapperUnloadRes, res_id)
        self._check_ret(ret, "wrapperUnloadRes")

    def open(self, ident, sp):
        if self.wrapper is None:
            raise EngineError(ERR_INIT, self.load_error or "no wrapper")
        sid = sp["tag"] or "session-%d" % ident
        persid = sp["psr"][0] if sp["psr"] else 0
        resp = self._user(ERR_USER_EXEC, "wrapperCreate", call_compat, self.wrapper.wrapperCreate, dict(sp["params"]), sid, persid, sp["tag"])
        if isinstance(resp, dto.SessionCreateResponse):
            if resp.error_code:
                raise EngineError(resp.error_code, self._error_text(resp.error_code))
            handle = resp.handle
        else:
            handle = resp
        with self.slock:
            self.sessions[ident] = [handle, sid]
            self.by_sid[sid] = ident

    def _session(self, ident):
        with self.slock:
            s = self.sessions.get(ident)
        if s is None:
            raise EngineError(ERR_INVALID_HANDLE, "no session %d" % ident)
        return s

    def emit(self, ident, resp, what, engine_ns=0):
        try:
            items, status = self._outputs(resp, what)
        except EngineError as e:
            self.send(P.MSG_RESULT, ident, P.encode_result(DataEnd, [], e.code, e.msg, engine_ns))
            return
        if not items and status is None:
            return
        self.send(P.MSG_RESULT, ident, P.encode_result(status if status is not None else DataOnce, items, 0, "", engine_ns))

    def write(self, ident, status, items):
        handle, sid = self._session(ident)
        start = time.monotonic_ns()
        ret = self._user(ERR_USER_EXEC, "wrapperWrite", self.wrapper.wrapperWrite, handle, build_datalist(items, status), sid)
        self._check_ret(ret, "wrapperWrite")
        if self.has_read and (not self.results_at_end or status in (DataEnd, DataOnce)):
            resp = self._user(ERR_USER_EXEC, "wrapperRead", self.wrapper.wrapperRead, handle, sid)
            self.emit(ident, resp, "wrapperRead", time.monotonic_ns() - start)

    def close(self, ident):
        with self.slock:
            s = self.sessions.pop(ident, None)
            if s is not None and self.by_sid.get(s[1]) == ident:
                del self.by_sid[s[1]]
        if s is None:
            return
        ret = self._user(ERR_USER_EXEC, "wrapperDestroy", self.wrapper.wrapperDestroy, s[0])
        self._check_ret(ret, "wrapperDestroy")

    def on_callback(self, response, sid):
        """aiges.dto.callback: a result for session sid or for an async once request."""
        with self.slock:
            waiter = self.once_waiters.get(sid)
            ident = self.by_sid.get(sid)
        if waiter is not None:
            waiter[1] = response
            waiter[0].set()
            return 0
        if ident is None:
            log.warning("callback for unknown sid %s dropped", sid)
            return ERR_INVALID_HANDLE
        try:
            self.emit(ident, response, "callback")
        except OSError:
            return ERR_INVALID_HANDLE
        return 0


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m aiges.runtime", description="AthenaServing Python engine worker")
    ap.add_argument("--wrapper", required=True, help="wrapper.py or the directory holding it")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("ASF_WORKER_THREADS", "8")),
                    help="concurrent calls served by this worker")
    ap.add_argument("--async", dest="async_mode", action="store_true", default=_env_flag("ASF_WORKER_ASYNC"),
                    help="AIGES asyncMode: session results only through callback, never wrapperRead")
    ap.add_argument("--results-at-end", action="store_true", default=_env_flag("ASF_WORKER_RESULTS_AT_END"),
                    help="AIGES realTimeRlt=false: wrapperRead only after the last input frame")
    args = ap.parse_args(argv)
    fd = os.environ.get("ASF_WORKER_FD")
    if not fd:
        print("ASF_WORKER_FD is not set: this program is started by the loader", file=sys.stderr)
        return 2
    sock = socket.socket(fileno=int(fd))
    nudge_fd = os.environ.get("ASF_WORKER_NUDGE_FD")
    nudge = socket.socket(fileno=int(nudge_fd)) if nudge_fd else None
    rt = Runtime(sock, args.wrapper, args.threads, args.async_mode, args.results_at_end, nudge)
    rt.serve()
    return 0
