"""Object graph benchmark: pyloot's snapshot, SCC and dominators vs a bare gc.get_referents loop.

    PYTHONPATH=build-bench/stage python3 bench/bench_graph.py [--objects 1000000] [--repeat 5]
        [--shapes ring,late,lists] [--heapy] [--refcycle] [--refcycle-objects N]

Three heap shapes of N objects each, built one after the other:

  ring   N instances (attributes set in __init__) in one ring, each with one
         random cross reference: one giant strongly connected component;
  late   the same ring, but the attributes are added after creation and each
         instance's __dict__ is then a dict object: twice the vertices;
  lists  N one-element lists held by one list: N singleton components.

On each shape it runs, interleaved round by round (--repeat rounds), in CPU
time (time.process_time: a shared, loaded machine inflates wall time):

  loop   a bare Python loop of gc.get_referents over gc.get_objects(), the
         least any pure-Python graph builder must do;
  scc    snapshot() then strongly_connected_components() (each timed);
  dom    snapshot() then the first retained_size(), which builds the
         in-edges, the dominator tree and every retained size.

and prints the medians and every ratio: snapshot / loop, (snapshot + SCC) /
loop, SCC / snapshot, (snapshot + dominators + retained) / loop, with the C
memory per vertex of the graph with its in-edges, heap facts and tree.

Goals: snapshot + SCC < 1.0x the loop, SCC alone <= 2x the snapshot,
snapshot + dominators + retained <= 0.8x the loop, <= 100 bytes per vertex.
--heapy and --refcycle add the older comparisons on the ring heap (guppy3 and
refcycle from PyPI; refcycle needs about a minute per 1M objects, see
--refcycle-objects). Not part of the tests.
"""
import argparse
import gc
import os
import random
import resource
import statistics
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


class Late:
    """Attributes are added after creation (no __init__ sets them)."""


def make_ring(n, seed=1, cls=Node):
    rng = random.Random(seed)
    nodes = [cls() for _ in range(n)]
    for i, node in enumerate(nodes):
        node.next = nodes[(i + 1) % n]
        node.other = nodes[rng.randrange(n)]
    return nodes


def make_late(n, seed=1):
    nodes = make_ring(n, seed, Late)
    for node in nodes:
        vars(node)  # the instance's dict becomes an object of its own
    return nodes


def make_lists(n, seed=1):
    return [[i] for i in range(n)]


SHAPES = {
    "ring": ("instances in a ring with a random cross reference each", make_ring),
    "late": ("instances whose attributes are added after __init__ (dicts are objects)", make_late),
    "lists": ("one-element lists held by one list: singleton components", make_lists),
}


def free_heap(nodes):
    for node in nodes:
        if not isinstance(node, list):
            node.next = node.other = None
    nodes.clear()
    gc.collect()


def bare_loop():
    get_referents = gc.get_referents
    count = 0
    for obj in gc.get_objects():
        count += len(get_referents(obj))
    return count


def cpu(fn):
    """(result, CPU seconds of fn()) after a gc.collect()."""
    gc.collect()
    t = time.process_time()
    result = fn()
    return result, time.process_time() - t


def run_shape(name, n, repeat):
    what, make = SHAPES[name]
    heap = make(n)
    gc.collect()
    tracked = len(gc.get_objects())
    times = {"loop": [], "snapshot": [], "scc": [], "snapshot2": [], "dom": []}
    info = {}
    for _ in range(repeat):
        times["loop"].append(cpu(bare_loop)[1])

        snap, t = cpu(pyloot.snapshot)
        times["snapshot"].append(t)
        sccs, t = cpu(snap.strongly_connected_components)
        times["scc"].append(t)
        info["vertices"], info["edges"] = len(snap), snap._edge_count()
        info["components"], info["largest"] = len(sccs), max(sccs.sizes())
        del sccs, snap

        def dominators():
            s = pyloot.snapshot()
            s.retained_size(heap)
            return s

        snap, t = cpu(dominators)
        times["dom"].append(t)
        info["bytes"] = snap._nbytes() / len(snap)
        del snap
    median = {k: statistics.median(v) for k, v in times.items() if v}
    print("{} ({}): {:,} objects; {:,} gc-tracked, {:,} vertices, {:,} edges, "
          "{:,} components (largest {:,})".format(
              name, what, n, tracked, info["vertices"], info["edges"], info["components"],
              info["largest"]))
    print("    CPU s, median of {}: loop {:.3f}  snapshot {:.3f}  SCC {:.3f}  "
          "snapshot+dominators+retained {:.3f}".format(
              repeat, median["loop"], median["snapshot"], median["scc"], median["dom"]))
    free_heap(heap)
    del heap
    gc.collect()
    return {"median": median, "info": info}


def timed(fn, repeat=1):
    """(result, {"wall", "cpu", "median"}) of the fastest of `repeat` runs."""
    runs = []
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        runs.append((time.perf_counter() - w, time.process_time() - c))
    walls = sorted(r[0] for r in runs)
    best = min(runs)
    return result, {"wall": best[0], "cpu": best[1], "median": walls[len(walls) // 2]}


def fmt(t):
    return "{:7.3f} s (cpu {:.3f}, median {:.3f})".format(t["wall"], t["cpu"], t["median"])


def bench_heapy(nodes):
    from guppy import hpy

    h = hpy()
    gc.collect()
    w, c = time.perf_counter(), time.process_time()
    size = h.iso(nodes).domisize
    t = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c}
    t["median"] = t["wall"]
    print("heapy    hpy().iso(nodes).domisize " + fmt(t) + " = {:,}".format(size))
    # heapy gives every instance a __dict__ object as it goes: compare on the
    # heap as heapy left it.
    snap = pyloot.snapshot()
    mine = snap.retained_size(nodes)
    del snap
    print("         pyloot retained_size(nodes) on the heap heapy left: {:,}".format(mine))
    return {"dom": t, "size": size, "pyloot": mine}


def bench_refcycle(label):
    import refcycle

    before = rss()
    snap, t_snap = timed(refcycle.snapshot)
    grown = rss() - before
    n = len(snap)
    sccs, t_scc = timed(snap.strongly_connected_components)
    print("refcycle [{}] {:,} vertices".format(label, n))
    print("         snapshot()                        " + fmt(t_snap))
    print("         strongly_connected_components()  " + fmt(t_scc) +
          "  {:,} components".format(len(sccs)))
    print("         memory: RSS growth during snapshot {:.1f} B/vertex".format(grown / n))
    del sccs, snap
    gc.collect()
    return {"n": n, "snapshot": t_snap, "scc": t_scc, "rss": grown / n}


def verdict(ok):
    return "ok" if ok else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000, help="objects per heap shape")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--shapes", default="ring,late,lists",
                        help="comma-separated subset of " + ",".join(SHAPES))
    parser.add_argument("--heapy", action="store_true", help="also time guppy3 on the ring heap")
    parser.add_argument("--refcycle", action="store_true", help="also time refcycle")
    parser.add_argument("--refcycle-objects", type=int, default=None,
                        help="heap size for refcycle (default: --objects)")
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            parser.error("unknown shape {!r}".format(s))

    print("python {} | pyloot {} | {} CPUs".format(
        sys.version.split()[0], pyloot.__version__, os.cpu_count()))
    results = {s: run_shape(s, args.objects, args.repeat) for s in shapes}

    print()
    print("Ratios of CPU-time medians ({} interleaved rounds, {:,} objects per shape)".format(
        args.repeat, args.objects))
    print("{:<56} {:>8} {:>8}  {}".format("figure", "measured", "goal", ""))
    for s in shapes:
        m, info = results[s]["median"], results[s]["info"]
        rows = [
            ("snapshot / loop", m["snapshot"] / m["loop"], None),
            ("(snapshot + SCC) / loop", (m["snapshot"] + m["scc"]) / m["loop"], 1.0),
            ("SCC alone / snapshot", m["scc"] / m["snapshot"], 2.0),
            ("(snapshot + dominators + retained) / loop", m["dom"] / m["loop"], 0.8),
            ("bytes per vertex with in-edges, facts, tree", info["bytes"], 100),
        ]
        for label, value, goal in rows:
            if goal is None:
                print("{:<56} {:>8.2f}".format("[{}] {}".format(s, label), value))
            else:
                ok = value < goal if goal == 1.0 else value <= goal
                print("{:<56} {:>8.2f} {:>8}  {}".format(
                    "[{}] {}".format(s, label), value,
                    ("< " if goal == 1.0 else "<= ") + "%g" % goal, verdict(ok)))

    if args.heapy or args.refcycle:
        nodes = make_ring(args.objects)
        gc.collect()
        if args.heapy:
            bench_heapy(nodes)
        if args.refcycle:
            size = args.refcycle_objects or args.objects
            if size != args.objects:
                free_heap(nodes)
                nodes = make_ring(size)
                gc.collect()
            theirs = bench_refcycle("ring, {:,} objects".format(size))
            snap, t_snap = cpu(pyloot.snapshot)
            sccs, t_scc = cpu(snap.strongly_connected_components)
            del sccs, snap
            print("pyloot   same heap: snapshot {:.3f} s, SCC {:.3f} s CPU; refcycle / pyloot: "
                  "{:.0f}x and {:.0f}x".format(t_snap, t_scc, theirs["snapshot"]["cpu"] / t_snap,
                                                theirs["scc"]["cpu"] / max(t_scc, 1e-9)))
        free_heap(nodes)
    print("peak RSS {:.0f} MB".format(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


if __name__ == "__main__":
    main()
