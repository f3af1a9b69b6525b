#!/usr/bin/env python3
"""Witness benchmark (DESIGN.md section 5: witnesses <= 0.5 % of
wall time under the GIL), measured in one run.

    PYTHONPATH=build-bench/stage python3 bench/bench_witness.py [--quick] [--objects N] [--seconds S]

A heap of N gc-tracked objects (default 1M: instances of a plain class,
lists and dicts) and three types that leak steadily into module-level lists
(the shape of a real leak: module -> attribute -> list -> item -> instance).
The collector thread runs at `--interval` (default 1 s, without gc.collect so
that the count pass is what it costs on this heap) for S seconds (default
180) while the three types grow. Printed:

1. the first search pass (one walk finding a new instance of each growing
   type, their paths, labels and reprs) and the remembering pass before it,
   GIL time, next to the collector's count pass on the same heap;
2. the share: GIL seconds spent on witnesses over the run / the run's wall
   time (goal <= 0.5 %), and the bound the token bucket guarantees
   (0.5 % of the run plus two passes: here the remembering pass and the
   search pass measured);
3. how many witnesses were written, and after how many collections the
   first one came (goal: within ~10 of the growth starting).

Not part of the test run; see bench/README.md.
"""

import argparse
import gc
import os
import platform
import shutil
import sys
import tempfile
import time

from pyloot import PyLoot, _pyloot


class Node:
    def __init__(self, value, link):
        self.value = value
        self.link = link


class Session:
    def __init__(self, i):
        self.i = i


class Token:
    def __init__(self, i):
        self.i = i


class Job:
    def __init__(self, i):
        self.i = i


_heap = []
_sessions = []
_tokens = []
_jobs = []


def build_heap(n):
    prev = None
    for i in range(n):
        k = i % 10
        if k < 6:
            obj = Node(i, prev)
        elif k < 8:
            obj = [i, prev]
        else:
            obj = {"i": i, "prev": prev}
        _heap.append(obj)
        prev = obj if k == 0 else prev
    gc.collect()
    gc.freeze()  # as after --preload: the heap is there, and gc does not rescan it


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", help="200k objects, 40 s")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.seconds = 200_000, 40.0

    print("python %s, %s, %d cpus, load %s" % (platform.python_version(), platform.machine(), os.cpu_count(),
                                               " ".join("%.2f" % x for x in os.getloadavg())))
    t0 = time.perf_counter()
    build_heap(args.objects)
    print("heap: %d gc-tracked objects, frozen (built in %.1f s)" % (len(gc.get_objects()) + gc.get_freeze_count(),
                                                                  time.perf_counter() - t0))

    tmp = tempfile.mkdtemp(prefix="pyloot-bench-witness-")
    loot = PyLoot(path=os.path.join(tmp, "store"), interval=args.interval, gc_collect=False)
    try:
        loot.start()
        start = time.monotonic()
        first_at = None
        remember_ms = None
        i = 0
        step = max(args.interval / 4, 0.05)
        while time.monotonic() - start < args.seconds:
            for _ in range(50):
                _sessions.append(Session(i))
                _tokens.append(Token(i))
                _jobs.append(Job(i))
                i += 1
            time.sleep(step)
            if remember_ms is None and _pyloot.witness_stats()["remembered"]:
                remember_ms = _pyloot.witness_stats()["last_gil_ms"]
            if first_at is None and _pyloot.witness_stats()["written"]:
                first_at = _pyloot.collector_stats()["collections"]
                first_ms = _pyloot.witness_stats()["last_gil_ms"]
                first_written = _pyloot.witness_stats()["written"]
        wall = time.monotonic() - start
        loot.stop(blocking=True)
        w = _pyloot.witness_stats()
        c = _pyloot.collector_stats()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("1. the first witnesses on %d objects" % args.objects)
    if first_at is None:
        print("   no witness written (%r)" % (w,))
        return 1
    print("   first search pass, GIL held %8.1f ms   (%d types written by then)" % (first_ms, first_written))
    print("   count pass, GIL held        %8.1f ms   (ratio %.2f)" % (c["last_pass_ms"], first_ms / c["last_pass_ms"]))
    if remember_ms is not None:
        print("   first remembering pass      %8.1f ms   (ratio %.2f)" % (remember_ms, remember_ms / c["last_pass_ms"]))
    print("2. share of wall time under the GIL over %.0f s" % wall)
    share = w["gil_s"] / wall
    bound = 0.005 + ((remember_ms or 0) + first_ms) / 1e3 / wall
    print("   witnesses                   %8.3f %%   (goal <= 0.5 %%; bucket bound 0.5 %% + two passes, the"
          " remembering and the search pass above = %.3f %%)" % (share * 100, bound * 100))
    print("   passes %d (remembering only %d), types searched %d, written %d, no path %d, errors %d,"
          " skipped for the budget %d" % (w["passes"], w["remembered"], w["searches"], w["written"], w["no_path"],
                                          w["errors"], w["skipped_budget"]))
    print("3. first witness after %d collections (goal: within ~10 of the growth starting)" % first_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
