"""Writes seed inputs for fuzz_ingest (tests/fuzz/fuzz_ingest.c) into a
directory: valid sample messages of the remote-mode protocol, raw (flags
byte 0) and gzip'ed (flags byte 1), built with the tests' own encoder. Every
flag of the wire format (ENDED, NEW_SPACE, STATS, MEMORY, ROUTES) appears, alone and together.
The gzip header's time is 0, so that the same seeds get the same names.

usage: python3 tests/fuzz/make_ingest_seeds.py DIR"""
import gzip
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from remote_push import ENDED, NEW_SPACE, STATS, message  # noqa: E402

NOW = 1790000000000


def seeds():
    types = {1: "app.Session", 2: "builtins.dict", 300: "x" * 40}
    yield message("web-1", 4242, 777, types, [(NOW - 1000, {1: (10, 480), 2: (5, 1000)}),
                                              (NOW, {1: (11, 528), 300: (1 << 40, 1 << 50)})])
    yield message("h", 1, 0, flags=0)
    yield message("h", 1, 0, flags=0, stats=(41000, 2 ** 64 - 1))
    yield message("h", 1, 0, flags=ENDED | NEW_SPACE, samples=[(NOW, {})])
    yield message("a" * 63, 2 ** 32 - 1, 2 ** 64 - 1, {0: "t", 2 ** 32 - 1: "u"},
                  [(NOW + 600000, {0: (0, 0), 2 ** 32 - 1: (2 ** 64 - 1, 2 ** 64 - 1)})], argv="y" * 255)
    yield message("h", 9, 9, {i: "m.T%d" % i for i in range(50)},
                  [(NOW - k, {i: (i * k, i) for i in range(0, 50, 3)}) for k in range(3)])
    yield message("web-2", 77, 5, {1: "app.Cache"}, [(NOW, {1: (3, 96)})], flags=0, stats=(0, 0))
    yield message("web-2", 77, 5, {1: "app.Cache"}, [(NOW - 1, {1: (4, 128)})], flags=ENDED | NEW_SPACE,
                  stats=(86400000000, 123456))
    yield message("h", 3, 3, flags=ENDED | STATS | NEW_SPACE, stats=(1, 1), argv="")
    yield message("web-3", 8, 8, {1: "app.Blob"}, [(NOW - 1, {1: (2, 64)}), (NOW, {1: (3, 96)})],
                  memory=[(1 << 26, 64, 4096), (1 << 50, 1 << 50, 1 << 50)])
    yield message("h", 4, 4, flags=ENDED | NEW_SPACE, stats=(1, 1), samples=[(NOW, {})], memory=[(0, 0, 0)])
    yield message("web-4", 5, 5, {1: "app.Session"}, [(NOW - 1, {1: (2, 64)}), (NOW, {1: (3, 96)})],
                  routes=[{}, {"GET /login/<user>": 7, "GET /users/{id}": 1 << 40, "other": 1}])
    yield message("h", 6, 6, flags=NEW_SPACE, samples=[(NOW, {})], memory=[(1, 1, 1)],
                  routes=[{"GET /r%d" % i: i for i in range(257)}])
    yield message("h", 7, 7, flags=ENDED, samples=[(NOW, {})], routes=[{"POST /caf\u00e9/" + "x" * 188: 2}])


def main(out):
    os.makedirs(out, exist_ok=True)
    for m in seeds():
        for data in (b"\0" + m, b"\1" + gzip.compress(m, mtime=0)):
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
