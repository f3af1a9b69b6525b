"""Object graph benchmark: pyloot vs refcycle vs heapy vs a bare gc.get_referents loop.

    PYTHONPATH=build/stage python3 bench/bench_graph.py [--objects 1000000]
        [--refcycle-objects N] [--no-refcycle] [--heapy-objects N] [--no-heapy]

Builds a heap of N instances whose attributes form one giant strongly
connected component (a ring plus random cross references), then times, in
one run on that heap:

  * pyloot: snapshot(), strongly_connected_components(), and the memory per
    vertex (the C arrays as the graph reports them, and the RSS growth of the
    process while taking the snapshot);
  * a bare Python loop calling gc.get_referents() on every tracked object
    (the least any pure-Python graph builder must do);
  * pyloot's dominators: snapshot() and then the first retained_size() call,
    which builds the in-edges, the whole dominator tree and every retained
    size, and the memory of graph, heap facts and tree together;
  * refcycle (from PyPI) doing the same snapshot and SCCs. On the full heap it
    needs minutes and gigabytes; --refcycle-objects runs it on a smaller heap
    (pyloot is then timed again on that heap, for a like-for-like ratio);
  * heapy (guppy3 from PyPI): the dominated size of the one list holding the
    heap (hpy().iso(nodes).domisize), against pyloot's snapshot + tree, which
    gives the retained size of every object; both answers are printed (they
    agree). --heapy-objects runs it on another heap size.

Goals (issues 3 and 13): snapshot <= 0.5 s, SCC <= 0.5 s on 1M objects;
snapshot + SCC, and snapshot + dominator tree + retained sizes, faster than
the bare loop; <= 100 bytes per vertex with in-edges, heap facts and tree.
pyloot figures are the best of --repeat runs (the median and the CPU time are
printed too); refcycle and heapy run once. Not part of the tests.
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


def timed(fn, repeat=1):
    """Runs fn `repeat` times after a gc.collect() each; returns the last
    result and the (wall, cpu) seconds of the fastest run and the median
    wall. CPU time is printed too: on a shared, loaded machine it is the
    figure the load does not inflate."""
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


def bare_loop():
    get_referents = gc.get_referents
    count = 0
    for obj in gc.get_objects():
        count += len(get_referents(obj))
    return count


def bench_pyloot(label, repeat):
    before = rss()
    first = pyloot.snapshot()
    grown = rss() - before
    n = len(first)
    nbytes = first._nbytes()
    edges = first._edge_count()
    some = next(iter(first))
    _, t_parents = timed(lambda: first.parents(some))  # builds the in-edges
    nbytes_rev = first._nbytes()
    del first
    snap, t_snap = timed(pyloot.snapshot, repeat)
    sccs, t_scc = timed(snap.strongly_connected_components, repeat)
    biggest = max(map(len, sccs))
    print("pyloot   [{}] {:,} vertices, {:,} edges".format(label, n, edges))
    print("         snapshot()                        " + fmt(t_snap))
    print("         strongly_connected_components()  " + fmt(t_scc) +
          "  {:,} components, largest {:,}".format(len(sccs), biggest))
    print("         first parents() (builds in-edges) " + fmt(t_parents))
    print("         memory: C arrays {:.1f} B/vertex ({:.1f} with in-edges), "
          "RSS growth during a snapshot {:.1f} B/vertex".format(nbytes / n, nbytes_rev / n, grown / n))
    del sccs, snap
    gc.collect()
    return {"n": n, "snapshot": t_snap, "scc": t_scc, "parents": t_parents,
            "bytes": nbytes_rev / n, "rss": grown / n}


def bench_dominators(nodes, repeat):
    """snapshot() + the first retained_size(): in-edges, tree, retained sizes."""
    def full():
        snap = pyloot.snapshot()
        snap.retained_size(nodes)
        return snap

    before = rss()
    first = full()
    grown = rss() - before
    n = len(first)
    nbytes = first._nbytes()
    retained = first.retained_size(nodes)
    top = first.dominator_children()[:1]
    del first, top
    gc.collect()
    snap, t_all = timed(full, repeat)
    del snap
    gc.collect()

    def tree_only():
        snap = pyloot.snapshot()
        t = time.process_time()
        snap.retained_size(nodes)
        return time.process_time() - t

    cpu_tree = min(timed(tree_only, 1)[0] for _ in range(repeat))
    print("pyloot   snapshot() + dominator tree + retained sizes " + fmt(t_all) +
          "  (tree part, best: {:.3f} s cpu)".format(cpu_tree))
    print("         memory with in-edges, heap facts and tree: {:.1f} B/vertex, "
          "RSS growth {:.1f} B/vertex; retained_size(nodes) = {:,}".format(
              nbytes / n, grown / n, retained))
    return {"all": t_all, "bytes": nbytes / n, "rss": grown / n, "retained": retained}


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
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument(
        "--refcycle-objects",
        type=int,
        default=None,
        help="heap size for refcycle (default: the same heap; it takes ~1 min per 1M)",
    )
    parser.add_argument("--no-refcycle", action="store_true")
    parser.add_argument("--heapy-objects", type=int, default=None,
                        help="heap size for heapy (default: the same heap)")
    parser.add_argument("--no-heapy", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pyloot figure (best kept)")
    args = parser.parse_args()

    print("python {} | pyloot {} | {} CPUs".format(
        sys.version.split()[0], pyloot.__version__, os.cpu_count()))
    nodes = make_heap(args.objects)
    gc.collect()
    print("heap: {:,} Node instances in one ring with random cross references; "
          "{:,} gc-tracked objects".format(args.objects, len(gc.get_objects())))

    mine = bench_pyloot("full heap", args.repeat)
    doms = bench_dominators(nodes, args.repeat)
    referents, t_loop = timed(bare_loop, args.repeat)
    print("bare loop: gc.get_referents over all tracked objects " + fmt(t_loop) +
          " ({:,} referents)".format(referents))

    heapy = heapy_pyloot = None
    if not args.no_heapy:
        if args.heapy_objects and args.heapy_objects != args.objects:
            free_heap(nodes)
            nodes = make_heap(args.heapy_objects)
            gc.collect()
            heapy_pyloot = bench_dominators(nodes, args.repeat)
        heapy = bench_heapy(nodes)

    theirs = None
    small = None
    if not args.no_refcycle:
        size = args.refcycle_objects or args.objects
        if size != args.objects:
            free_heap(nodes)
            nodes = make_heap(size)
            gc.collect()
            small = bench_pyloot("refcycle's heap", args.repeat)
        theirs = bench_refcycle("refcycle's heap" if small else "full heap")

    print()
    print("Best of {} runs (wall; cpu in brackets).".format(args.repeat))
    print("{:<46} {:>18} {:>10}  {}".format("figure", "measured", "goal", ""))
    rows = [
        ("snapshot() on the full heap (s)", mine["snapshot"], 0.5),
        ("strongly_connected_components() (s)", mine["scc"], 0.5),
    ]
    for name, t, goal in rows:
        print("{:<46} {:>7.3f} (cpu {:.3f}) {:>10}  {}".format(
            name, t["wall"], t["cpu"], "<= %g" % goal, verdict(t["wall"] <= goal)))
    for name, value in (("C arrays per vertex, in-edges built (bytes)", mine["bytes"]),
                        ("RSS growth per vertex (bytes)", mine["rss"]),
                        ("graph + heap facts + tree per vertex (bytes)", doms["bytes"]),
                        ("RSS growth, snapshot + tree (bytes/vertex)", doms["rss"])):
        print("{:<46} {:>18.1f} {:>10}  {}".format(name, value, "<= 100", verdict(value <= 100)))
    total = mine["snapshot"]["wall"] + mine["scc"]["wall"]
    print("{:<46} {:>18.2f} {:>10}  {}".format(
        "bare loop / (snapshot + SCC)", t_loop["wall"] / total, "> 1", verdict(t_loop["wall"] > total)))
    for what in ("wall", "cpu"):
        ratio = doms["all"][what] / t_loop[what]
        print("{:<46} {:>18.2f} {:>10}  {}".format(
            "(snapshot + tree + retained) / bare loop, " + what, ratio, "< 1", verdict(ratio < 1)))
    if heapy:
        ref = heapy_pyloot or doms
        print("{:<46} {:>8.1f} (cpu {:5.1f}) {:>10}".format(
            "heapy one domisize / pyloot whole tree (x)", heapy["dom"]["wall"] / ref["all"]["wall"],
            heapy["dom"]["cpu"] / ref["all"]["cpu"], "> 1"))
        print("{:<46} {:>18}".format("same answer for the heap's list",
                                     "yes" if heapy["size"] == heapy["pyloot"] else "NO"))
    if theirs:
        ref = small or mine
        for what in ("snapshot", "scc"):
            print("{:<46} {:>8.1f} (cpu {:5.1f}) {:>10}".format(
                "refcycle / pyloot, {} (x)".format(what),
                theirs[what]["wall"] / ref[what]["wall"], theirs[what]["cpu"] / ref[what]["cpu"],
                ">= 10"))
        print("{:<46} {:>18.1f}".format(
            "refcycle / pyloot, RSS per vertex (x)", theirs["rss"] / max(ref["rss"], 1e-9)))
        if small:
            print("(refcycle measured on {:,} objects, pyloot timed again on that heap)".format(
                theirs["n"]))
    print("peak RSS {:.0f} MB".format(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    free_heap(nodes)


if __name__ == "__main__":
    main()
