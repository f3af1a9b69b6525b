"""Page faults and CPU time of one snapshot and its first retained_size(), on 1M one-element lists.

    python bench/bench_graph_faults.py [--objects 1000000] [--rounds 8]

Builds the lists heap of bench_graph.py (with the collector off while building), then per round:
snapshot(), the first retained_size() (in-edges, dominator tree, every retained size), and the
`del` of the graph, each with the minor page faults (ru_minflt) and the CPU time it took. Prints
the medians. Fresh per-vertex arrays cost a fault per 4 KB, about 1-3 us each on a shared VM: this
is what tells how many of them a change saved. Not part of the tests.
"""
import argparse
import gc
import resource
import statistics
import time

import pyloot


def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    gc.disable()
    heap = [[i] for i in range(args.objects)]
    gc.enable()
    gc.collect()
    rows = []
    for _ in range(args.rounds):
        gc.collect()
        f0, t0 = faults(), time.process_time()
        snap = pyloot.snapshot()
        f1, t1 = faults(), time.process_time()
        snap.retained_size(heap)
        f2, t2 = faults(), time.process_time()
        del snap
        f3, t3 = faults(), time.process_time()
        rows.append((f1 - f0, f2 - f1, f3 - f2, t1 - t0, t2 - t1, t3 - t2))
    m = [statistics.median(column) for column in zip(*rows)]
    print("medians of {} rounds, {:,} one-element lists".format(args.rounds, args.objects))
    print("snapshot()             {:6.0f} faults  {:5.1f} ms CPU".format(m[0], m[3] * 1e3))
    print("first retained_size()  {:6.0f} faults  {:5.1f} ms CPU".format(m[1], m[4] * 1e3))
    print("del                    {:6.0f} faults  {:5.1f} ms CPU".format(m[2], m[5] * 1e3))


if __name__ == "__main__":
    main()
