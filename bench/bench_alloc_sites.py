#!/usr/bin/env python3
"""Allocation-site sampling cost (DESIGN.md section 5: a traced type's
allocation <= 1.25x an untraced one), measured in one run.

    python3 bench/bench_alloc_sites.py [--n 1000000] [--rounds 5]

Two twin classes, identical but for their names; one is traced with
pyloot's allocation sites (docs/allocations.md). Each round makes N
instances of each (kept in a list, then dropped), alternating which goes
first, from a call stack a few frames deep; the best round (CPU time) of
each is compared. Printed: seconds per 1M instances of each, the ratio (goal <=
1.25) and the sampler's counters (samples taken, sites, windows).

pyloot runs as in production: started (its collector thread ticks and, on
CPython 3.13, begins the sampling windows), on a store in a temporary
directory, with the default interval (no collection falls in the rounds
but the first). --no-collector traces without starting pyloot: on 3.13 the
wrapper then stays installed (nothing would begin a new window).

Not part of the test run; see bench/README.md.
"""
import argparse
import gc
import os
import sys
import tempfile
import time

from pyloot import PyLoot, _pyloot


class Traced:
    def __init__(self, i):
        self.i = i


class Untraced:
    def __init__(self, i):
        self.i = i


def make(cls, n):
    return [cls(i) for i in range(n)]


def layer(cls, n, depth):
    if depth:
        return layer(cls, n, depth - 1)
    return make(cls, n)


def timed(cls, n):
    gc.collect()
    t0 = time.process_time()  # CPU time: the machine may be shared
    objs = layer(cls, n, 5)
    took = time.process_time() - t0
    del objs
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-collector", action="store_true", help="trace without starting pyloot")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loot = None
        if not args.no_collector:
            loot = PyLoot(path=os.path.join(tmp, "store"), gc_collect=False)
            loot.start()
            time.sleep(0.5)  # the first collection, then only the thread's ticks
        try:
            run(args)
        finally:
            if loot:
                loot.stop(blocking=True)


def run(args):
    why = _pyloot.alloc_trace(Traced)
    if why:
        sys.exit("cannot trace: %s" % why)
    gc.disable()  # the two twins are measured without collections in the way
    best = {Traced: float("inf"), Untraced: float("inf")}
    for r in range(args.rounds):
        order = (Traced, Untraced) if r % 2 else (Untraced, Traced)
        for cls in order:
            best[cls] = min(best[cls], timed(cls, args.n))
    gc.enable()
    per_m = 1e6 / args.n
    stats = _pyloot.alloc_stats()
    print("python %s, %d instances per round, best of %d rounds" % (sys.version.split()[0], args.n, args.rounds))
    print("untraced twin: %.1f ms per 1M instances" % (best[Untraced] * per_m * 1e3))
    print("traced:        %.1f ms per 1M instances" % (best[Traced] * per_m * 1e3))
    print("ratio traced / untraced: %.3f (goal <= 1.25)" % (best[Traced] / best[Untraced]))
    print("samples taken %d, sites %d (%d bytes), sites dropped %d" % (
        stats["samples"], stats["sites"], stats["site_bytes"], stats["sites_dropped"]))
    print("windows: %s, %d ended%s" % (stats["windows"], stats["windows_ended"],
                                       ", collector not started" if args.no_collector else ""))


if __name__ == "__main__":
    main()
