"""What redacting values held under a secret-looking name costs a live
answer (src/pyext/held_secrets.c): on a heap of about N objects, the detail
of a str (one id scan that also finds its parents, plus the one walk that
builds the set of held secrets) against the parents of the same str (the
same id scan, no set: a parents page describes instances only) and a bare
gc.get_objects() as the baseline; and the detail of an int held in a list
(the parent is a container: one more walk finds the list's referrers, to
read their edges for a secret name). Prints best-of-5 times and ratios.

    python bench/redact_held.py [N]      (default 1,000,000)
"""
import gc
import os
import sys
import time

from pyloot import PyLoot


class Row:
    def __init__(self, i):
        self.name = "row-%d" % i
        self.password = "pw-%d" % i if i % 100 == 0 else None
        self.tags = [i]


def best(fn, n=5):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rows = [Row(i) for i in range(n // 4)]  # each: instance, str, list (+ a str every 100th)
    gc.collect()
    loot = PyLoot(path=os.path.join("/tmp", "pyloot-bench-redact-%d" % os.getpid()), interval=3600)
    wsgi = loot.get_wsgi()
    target = rows[len(rows) // 2].name

    def get(path):
        status, _, _, body = wsgi.handle("GET", path, "")
        assert status == 200, body[:200]
        return body

    assert b"<redacted>" not in get("/api/objects/%d" % id(target))
    assert b"<redacted>" in get("/api/objects/%d" % id(rows[0].password))
    base = best(lambda: gc.get_objects())
    parents = best(lambda: get("/api/objects/%d/parents" % id(target)))
    detail = best(lambda: get("/api/objects/%d" % id(target)))
    item = rows[len(rows) // 2].tags[0]  # an int > 256: of a kind that can carry a secret
    in_list = best(lambda: get("/api/objects/%d" % id(item)))
    print("heap: %d tracked objects" % len(gc.get_objects()))
    print("gc.get_objects()                %7.1f ms" % (base * 1e3))
    print("parents of a str (id scan)      %7.1f ms  %.2fx gc.get_objects()" % (parents * 1e3, parents / base))
    print("detail of a str (scan + set)    %7.1f ms  %.2fx gc.get_objects()  %.2fx parents"
          % (detail * 1e3, detail / base, detail / parents))
    print("detail of an int in a list      %7.1f ms  %.2fx gc.get_objects()  %.2fx parents"
          % (in_list * 1e3, in_list / base, in_list / parents))
    loot.backend.close()


if __name__ == "__main__":
    main()
