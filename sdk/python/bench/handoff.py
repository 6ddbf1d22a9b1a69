"""Worker CPU per call with and without the loader's hand-off socket.

Runs ``python3 -m aiges.runtime`` with the identity wrapper (examples/engines/python-echo)
and drives it over its socketpair at fixed call rates, once as a loader without the
hand-off socket would (the runtime watches its clock) and once with it (no nudge is sent:
the calls are short). Prints the worker's CPU per call from /proc/<pid>/stat (10 ms
ticks: use runs of a few thousand calls).

    /usr/bin/python3 sdk/python/bench/handoff.py [rounds] [seconds per run]
"""

import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(SDK))
sys.path.insert(0, SDK)

from aiges.runtime import protocol as P  # noqa: E402

WRAPPER = os.path.join(REPO, "examples", "engines", "python-echo")
RATES = (400, 1600, 6400)


def cpu_ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime + stime


def run(nudged, rate, secs):
    a, b = socket.socketpair()
    env = dict(os.environ, ASF_WORKER_FD=str(b.fileno()), PYTHONPATH=SDK)
    fds = [b.fileno()]
    keep = None
    if nudged:
        keep, nb = socket.socketpair()
        env["ASF_WORKER_NUDGE_FD"] = str(nb.fileno())
        fds.append(nb.fileno())
    p = subprocess.Popen([sys.executable, "-m", "aiges.runtime", "--wrapper", WRAPPER], env=env, pass_fds=fds,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b.close()
    r = a.makefile("rb")

    def call(t, i, body):
        a.sendall(P.frame(t, i, body))
        return P.read_frame(r)

    call(P.MSG_INIT, 1, P.encode_map({}))
    body = P.encode_request({"inputs": [("text", 0, {}, b"x" * 1280)]})
    start, n, gap = time.monotonic(), 0, 1.0 / rate
    t0 = cpu_ticks(p.pid)
    while time.monotonic() - start < secs:
        n += 1
        call(P.MSG_ONCE, 10 + n, body)
        d = start + n * gap - time.monotonic()
        if d > 0:
            time.sleep(d)
    used = (cpu_ticks(p.pid) - t0) / os.sysconf("SC_CLK_TCK")
    r.close()
    a.close()
    if keep is not None:
        keep.close()
    p.wait()
    return n, used / n * 1e6


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 3
    print("calls/s  mode            calls  worker CPU per call")
    for _ in range(rounds):
        for rate in RATES:
            for nudged in (False, True):
                n, us = run(nudged, rate, secs)
                print("%7d  %-14s %6d  %6.1f us" % (rate, "hand-off socket" if nudged else "clock", n, us), flush=True)


if __name__ == "__main__":
    main()
