"""Object graph benchmark: pyloot vs refcycle vs a bare gc.get_referents loop.

    PYTHONPATH=build/stage python3 bench/bench_graph.py [--objects 1000000]
        [--refcycle-objects N] [--no-refcycle]

Builds a heap of N instances whose attributes form one giant strongly
connected component (a ring plus random cross references), then times, in
one run on that heap:

  * pyloot: snapshot(), strongly_connected_components(), and the memory per
    vertex (the C arrays as the graph reports them, and the RSS growth of the
    process while taking the snapshot);
  * a bare Python loop calling gc.get_referents() on every tracked object
    (the least any pure-Python graph builder must do);
  * refcycle (from PyPI) doing the same snapshot and SCCs. On the full heap it
    needs minutes and gigabytes; --refcycle-objects runs it on a smaller heap
    (pyloot is then timed again on that heap, for a like-for-like ratio).

Goals (issue 3): snapshot <= 0.5 s, SCC <= 0.5 s, <= 100 bytes per vertex on
1M objects; snapshot + SCC faster than the bare loop. Not part of the tests.
"""
import argparse
import gc
import os
import random
import resource
import sys
import time

import pyloot

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Node:
    def __init__(self):
        self.next = None
        self.other = None


def make_heap(n, seed=1):
    rng = random.Random(seed)
    nodes = [Node() for _ in range(n)]
    for i, node in enumerate(nodes):
        node.next = nodes[(i + 1) % n]
        node.other = nodes[rng.randrange(n)]
    return nodes


def free_heap(nodes):
    for node in nodes:
        node.next = node.other = None
    nodes.clear()
    gc.collect()


def timed(fn):
    gc.collect()
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def bare_loop():
    get_referents = gc.get_referents
    count = 0
    for obj in gc.get_objects():
        count += len(get_referents(obj))
    return count


def bench_pyloot(label):
    before = rss()
    snap, t_snap = timed(pyloot.snapshot)
    grown = rss() - before
    n = len(snap)
    sccs, t_scc = timed(snap.strongly_connected_components)
    biggest = max(map(len, sccs))
    nbytes = snap._nbytes()
    edges = snap._edge_count()
    print(
        "pyloot   [{}] {:>9,} vertices {:>10,} edges  snapshot {:7.3f} s  SCC {:7.3f} s "
        "({:,} components, largest {:,})".format(label, n, edges, t_snap, t_scc, len(sccs), biggest)
    )
    print(
        "         memory: C arrays {:6.1f} B/vertex, RSS growth during snapshot {:6.1f} B/vertex".format(
            nbytes / n, grown / n
        )
    )
    del sccs, snap
    gc.collect()
    return {"n": n, "snapshot": t_snap, "scc": t_scc, "bytes": nbytes / n, "rss": grown / n}


def bench_refcycle(label):
    import refcycle

    before = rss()
    snap, t_snap = timed(refcycle.snapshot)
    grown = rss() - before
    n = len(snap)
    sccs, t_scc = timed(snap.strongly_connected_components)
    print(
        "refcycle [{}] {:>9,} vertices                   snapshot {:7.3f} s  SCC {:7.3f} s "
        "({:,} components)".format(label, n, t_snap, t_scc, len(sccs))
    )
    print("         memory: RSS growth during snapshot {:8.1f} B/vertex".format(grown / n))
    del sccs, snap
    gc.collect()
    return {"n": n, "snapshot": t_snap, "scc": t_scc, "rss": grown / n}


def verdict(ok):
    return "ok" if ok else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument(
        "--refcycle-objects",
        type=int,
        default=None,
        help="heap size for refcycle (default: the same heap; it takes ~1 min per 1M)",
    )
    parser.add_argument("--no-refcycle", action="store_true")
    args = parser.parse_args()

    print("python {} | pyloot {} | {} CPUs".format(
        sys.version.split()[0], pyloot.__version__, os.cpu_count()))
    nodes = make_heap(args.objects)
    gc.collect()
    print("heap: {:,} Node instances in one ring with random cross references; "
          "{:,} gc-tracked objects".format(args.objects, len(gc.get_objects())))

    mine = bench_pyloot("full heap")
    referents, t_loop = timed(bare_loop)
    print("bare loop: gc.get_referents over all tracked objects {:7.3f} s ({:,} referents)".format(
        t_loop, referents))

    theirs = None
    small = None
    if not args.no_refcycle:
        size = args.refcycle_objects or args.objects
        if size != args.objects:
            free_heap(nodes)
            nodes = make_heap(size)
            gc.collect()
            small = bench_pyloot("refcycle's heap")
        theirs = bench_refcycle("refcycle's heap" if small else "full heap")

    print()
    print("{:<44} {:>10} {:>10}  {}".format("figure", "measured", "goal", ""))
    rows = [
        ("snapshot() on the full heap (s)", mine["snapshot"], 0.5),
        ("strongly_connected_components() (s)", mine["scc"], 0.5),
        ("C arrays per vertex (bytes)", mine["bytes"], 100),
        ("RSS growth per vertex (bytes)", mine["rss"], 100),
    ]
    for name, value, goal in rows:
        print("{:<44} {:>10.3f} {:>10}  {}".format(name, value, "<= %g" % goal, verdict(value <= goal)))
    total = mine["snapshot"] + mine["scc"]
    print("{:<44} {:>10.2f} {:>10}  {}".format(
        "bare loop / (snapshot + SCC)", t_loop / total, "> 1", verdict(t_loop > total)))
    if theirs:
        ref = small or mine
        print("{:<44} {:>10.1f} {:>10}".format(
            "refcycle / pyloot, snapshot (x)", theirs["snapshot"] / ref["snapshot"], "10-100"))
        print("{:<44} {:>10.1f} {:>10}".format(
            "refcycle / pyloot, SCC (x)", theirs["scc"] / ref["scc"], "10-100"))
        print("{:<44} {:>10.1f} {:>10}".format(
            "refcycle / pyloot, RSS per vertex (x)", theirs["rss"] / max(ref["rss"], 1e-9), ""))
        if small:
            print("(refcycle measured on {:,} objects, pyloot timed again on that heap)".format(
                theirs["n"]))
    print("peak RSS {:.0f} MB".format(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    free_heap(nodes)


if __name__ == "__main__":
    main()
