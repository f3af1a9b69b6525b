"""Writes seed inputs for fuzz_heapdump (tests/fuzz/fuzz_heapdump.c) into a
directory: small heap dumps written by pyloot.dump_heap from object graphs
(cycles, dicts, lists, a frame-free class hierarchy), each as a whole file
(flags byte 0) and as its bare payload (flags byte 1, which the target wraps
in a valid header). The time and pid fields are fixed so that the same
seeds get the same names.

usage: python3 tests/fuzz/make_heapdump_seeds.py DIR   (pyloot installed)"""
import hashlib
import os
import sys
import tempfile
import zlib

import pyloot


class Item:
    def __init__(self, i, peer=None):
        self.i = i
        self.peer = peer
        self.name = "item-%d" % i


def graphs():
    yield []
    a = Item(1)
    b = Item(2, a)
    a.peer = b
    yield [a, b]
    items = [Item(i) for i in range(5)]
    yield items + [items, {"items": items, "first": items[0]}]
    d = {"k%d" % i: [i, (i,)] for i in range(4)}
    yield [d] + list(d.values())


def main(out):
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n, objs in enumerate(graphs()):
            path = os.path.join(tmp, "%d.plheap" % n)
            pyloot.dump_heap(path, pyloot.ObjectGraph(objs))
            data = open(path, "rb").read()
            payload = zlib.decompress(data[40:])
            for seed in (b"\0" + data, b"\1" + payload):
                name = hashlib.sha1(seed).hexdigest()
                with open(os.path.join(out, name), "wb") as f:
                    f.write(seed)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
