"""Heap dump benchmark (docs/heapdump.md): the GIL time of a dump against a
snapshot, the file's bytes per object, and `pyloot heap FILE` time.

    python3 bench/bench_heapdump.py [--objects 1250000] [--repeat 3]

Builds N objects (1.25M: about 1M of them gc-tracked, the vertices of a
dump) that look like a web worker's: instances
with a few attributes (a string, an int, a reference to another instance,
every fourth one a small dict of strings and every tenth one a list), held
by a module-level list, then in one run:

  * pyloot.snapshot() (the baseline: the graph the dump starts from), best
    of --repeat;
  * pyloot.dump_heap(path): the part with the GIL held (snapshot + gathering
    types, sizes, descriptions and labels) and the part without it
    (encoding, zlib, write), best of --repeat; the ratio GIL time /
    snapshot time (goal: <= 1.5);
  * the file's size per object (goal: <= 40 bytes);
  * `pyloot heap FILE` and `pyloot heap FILE FILE` wall time (goal: <= 2 s
    for one file).

Not part of the tests.
"""
import argparse
import gc
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

import pyloot


class Session:
    def __init__(self, i, prev):
        self.user = "user-%d" % i
        self.count = i
        self.prev = prev


HOLD = []


def make_heap(n):
    prev = None
    k = 0
    while k < n:
        s = Session(len(HOLD), prev)
        k += 1
        if len(HOLD) % 4 == 0:
            s.headers = {"accept": "text/html", "agent": "bench-%d" % (len(HOLD) % 97)}
            k += 1
        if len(HOLD) % 10 == 0:
            s.items = [prev, s]
            k += 1
        HOLD.append(s)
        prev = s


def pyloot_command():
    here = os.path.dirname(os.path.abspath(pyloot.__file__))
    for c in (os.path.join(here, "..", "..", "pyloot"), os.path.join(sysconfig.get_path("scripts"), "pyloot"),
              shutil.which("pyloot")):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit("the pyloot command is not built")


def best(fn, repeat):
    """The fastest of `repeat` runs of fn (which returns (seconds, figures)), with its figures."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        runs.append(fn())
    fastest = min(runs, key=lambda r: r[0])
    return fastest[0], fastest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1250000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    make_heap(args.objects)
    gc.collect()
    gc.freeze()

    def snap():
        t0 = time.perf_counter()
        g = pyloot.snapshot()
        t = time.perf_counter() - t0
        n = len(g)
        del g
        return t, n

    snap_s, (_, n) = best(snap, args.repeat)
    tmp = tempfile.mkdtemp(prefix="pyloot-bench-heap-")
    path = os.path.join(tmp, "bench.plheap")

    def dump():
        f = pyloot.dump_heap(path)
        return f["snapshot_seconds"] + f["gather_seconds"], f

    gil_s, (_, figures) = best(dump, args.repeat)
    size = os.path.getsize(path)
    exe = pyloot_command()

    def heap_cmd(*files):
        t0 = time.perf_counter()
        subprocess.run([exe, "heap", *files], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    one = min(heap_cmd(path) for _ in range(args.repeat))
    two = min(heap_cmd(path, path) for _ in range(args.repeat))
    print("heap: %d objects in the snapshot, %d in the dump, %d references" % (n, figures["objects"],
                                                                                  figures["edges"]))
    print("snapshot (baseline)          %.3f s" % snap_s)
    print("dump, GIL held               %.3f s  (snapshot %.3f + gathering %.3f)" % (
        gil_s, figures["snapshot_seconds"], figures["gather_seconds"]))
    print("dump, GIL released           %.3f s  (encoding, zlib, write)" % figures["write_seconds"])
    print("ratio GIL held / snapshot    %.2f  (goal <= 1.50)" % (gil_s / snap_s))
    print("file                         %d bytes, %.1f bytes per object (goal <= 40)" % (
        size, size / figures["objects"]))
    print("pyloot heap FILE             %.3f s  (goal <= 2 s)" % one)
    print("pyloot heap FILE FILE        %.3f s" % two)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
