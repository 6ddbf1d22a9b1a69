"""Times wrapperOnceExec of a wrapper.py called in this Python process (no loader, no
worker protocol): the floor the loader's Python engine path is compared with.

    python3 direct_once.py --wrapper wrapper.py --sdk sdk/python --warmup 1 --duration 3 --size 1280

Prints one JSON line: calls, p50_us, p99_us, mean_us, calls_per_s.
"""

import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wrapper", required=True)
    ap.add_argument("--sdk", required=True)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=1280)
    a = ap.parse_args()
    sys.path.insert(0, a.sdk)
    from aiges import dto
    from aiges.runtime.worker import load_wrapper

    w = load_wrapper(a.wrapper)
    if hasattr(w, "wrapperInit"):
        w.wrapperInit({})
    data = b"x" * a.size
    params = {}
    call = w.wrapperOnceExec
    perf = time.perf_counter_ns

    def request():
        # The worker builds a fresh DataListCls per call; so does this loop.
        dl = dto.DataListCls()
        dl.list.append(dto.DataListNode(key="text", data=data, len=len(data), type=dto.DataText, status=dto.Once))
        return dl

    end = time.monotonic() + a.warmup
    while time.monotonic() < end:
        call(params, request(), "bench", 0)
    samples = []
    start = time.monotonic()
    end = start + a.duration
    while True:
        t0 = perf()
        call(params, request(), "bench", 0)
        samples.append(perf() - t0)
        if len(samples) % 64 == 0 and time.monotonic() >= end:
            break
    elapsed = time.monotonic() - start
    samples.sort()

    def q(p):
        return samples[min(len(samples) - 1, int(p * len(samples)))] / 1000.0

    print(json.dumps({"calls": len(samples), "p50_us": q(0.50), "p99_us": q(0.99),
                      "mean_us": sum(samples) / len(samples) / 1000.0, "calls_per_s": len(samples) / elapsed}))


if __name__ == "__main__":
    main()
