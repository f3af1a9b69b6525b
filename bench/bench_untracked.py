#!/usr/bin/env python3
"""Counting the objects the gc does not track (DESIGN.md section 5), measured in one run.

    python3 bench/bench_untracked.py [--objects N] [--shared N] [--repeats R]

1. Cost: ``PyLoot.collect_objects()`` (gc.collect, the count pass over the
   tracked objects and the untracked ones they reach, the store write) on N
   (default 1M) tracked lists each holding its own str (N untracked
   objects), against ``gc.collect()`` + ``gc.get_objects()`` on the same heap,
   in CPU time (goal <= 1.5x). The GIL time of the count pass is shown as
   ``PyLoot.stats()`` reports it.
2. The visited set's memory: a heap of M (default 5M) small strings each
   held by two lists (so every one of them needs an entry), in a fresh
   process: the set's bytes per shared untracked object, its cap, and the
   process's RSS before and after the first collection.

Every figure of part 1 is the median of R interleaved rounds (A, B, A, B, ...).
Not part of the test run; see bench/README.md.
"""
import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_ms(fn):
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    return (time.process_time() - c0) * 1e3, (time.perf_counter() - t0) * 1e3


def baseline():
    gc.collect()
    objs = gc.get_objects()
    del objs


def part_cost(n, repeats):
    import pyloot
    print("1. collect_objects() on %s tracked lists, each holding its own str" % format(n, ","))
    t0 = time.perf_counter()
    heap = [["s%08d" % i] for i in range(n)]
    print("   heap built in %.1f s" % (time.perf_counter() - t0))
    store_dir = tempfile.mkdtemp(prefix="pyloot-bench-")
    try:
        loot = pyloot.PyLoot(path=store_dir)
        loot.collect_objects()  # warm-up: store created, type ids resolved
        baseline()
        ours, base, ours_wall, base_wall, passes = [], [], [], [], []
        for _ in range(repeats):
            c, w = cpu_ms(lambda: passes.append(loot.collect_objects()))
            ours.append(c)
            ours_wall.append(w)
            c, w = cpu_ms(baseline)
            base.append(c)
            base_wall.append(w)
        stats = loot.stats()
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    print("   collect_objects()              CPU %8.1f ms  (wall %.1f ms, median of %d)"
          % (m_ours, statistics.median(ours_wall), repeats))
    print("   gc.collect() + gc.get_objects() CPU %8.1f ms  (wall %.1f ms)" % (m_base, statistics.median(base_wall)))
    ratio = m_ours / m_base
    print("   ratio collect_objects / (gc.collect + gc.get_objects), CPU time: %.2fx  (goal <= 1.5x) %s"
          % (ratio, "goal met" if ratio <= 1.5 else "GOAL MISSED"))
    print("   of which gc.collect %.1f ms and the count pass %.1f ms under the GIL (collect()'s result)"
          % (statistics.median(p["gc_ms"] for p in passes), statistics.median(p["pass_ms"] for p in passes)))
    u = stats["untracked"]
    print("   PyLoot.stats(): last_pass_ms %.1f, last_gc_ms %.1f; untracked %s objects, %s in the visited set, "
          "set %s bytes, overflow %d" % (stats["last_pass_ms"], stats["last_gc_ms"], format(u["objects"], ","),
                                          format(u["shared"], ","), format(u["set_bytes"], ","), u["overflow"]))
    del heap


def part_memory_child(m):
    import pyloot
    from pyloot import _pyloot
    words = ["w%09d" % i for i in range(m)]
    also = list(words)  # every string held twice: each needs an entry in the set
    gc.collect()
    before = rss_bytes()
    store_dir = tempfile.mkdtemp(prefix="pyloot-bench-")
    try:
        loot = pyloot.PyLoot(path=store_dir)
        loot.collect_objects()
        after = rss_bytes()
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    u = _pyloot.collector_stats()["untracked"]
    print(json.dumps({"before": before, "after": after, "untracked": u,
                      "str_bytes": sum(map(sys.getsizeof, words))}))
    del words, also


def part_memory(m):
    print("\n2. The visited set: %s small strings, each held by two lists (fresh process)" % format(m, ","))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", str(m)],
                       capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        print("   failed: %s" % (r.stderr.strip().splitlines() or ["?"])[-1])
        return
    d = json.loads(r.stdout.strip().splitlines()[-1])
    u = d["untracked"]
    print("   RSS before the first collection %.0f MB (the strings alone: %.0f MB), after %.0f MB: +%.1f MB"
          % (d["before"] / 1e6, d["str_bytes"] / 1e6, d["after"] / 1e6, (d["after"] - d["before"]) / 1e6))
    print("   untracked objects %s, in the set %s, overflow %s; set %.1f MB = %.1f bytes per shared object, "
          "%.1f bytes per untracked object" % (format(u["objects"], ","), format(u["shared"], ","),
                                               format(u["overflow"], ","), u["set_bytes"] / 1e6,
                                               u["set_bytes"] / max(1, u["shared"]),
                                               u["set_bytes"] / max(1, u["objects"])))
    print("   the set is capped at 64 MiB (8M slots, 4M shared objects counted exactly once); past that a "
          "shared object not in it is counted each time it is met (overflow)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=1_000_000, help="tracked lists, each with its own str")
    ap.add_argument("--shared", type=int, default=5_000_000, help="strings held twice, for the set's memory")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child is not None:
        part_memory_child(args.memory_child)
        return 0
    print("command: python3 %s" % " ".join([os.path.relpath(__file__)] + sys.argv[1:]))
    part_cost(args.objects, args.repeats)
    part_memory(args.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
