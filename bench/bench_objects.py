"""Live-object queries on a heap of about 1M tracked objects, against the
pure-Python way measured in the same run.

    PYTHONPATH=build/stage python3 bench/bench_objects.py [--objects 1000000]

Not part of the test run. Goals (DESIGN.md §5, issue 4): listing one type's
first page <= 50 ms, parents of one object <= 100 ms, path to a root <= 500 ms.
The referrers graph (depth 3, <= 60 nodes, its path included) is measured
against the walk objgraph.show_backrefs makes (gc.get_referrers per node),
without its drawing.
"""
import argparse
import gc
import sys
import time

from pyloot import live


class Leak:
    def __init__(self, n):
        self.n = n
        self.payload = [n]


class Session:
    def __init__(self):
        self.cache = {}


LEAKS = []
FILL = []
REGISTRY = {}


def build(total):
    """About `total` gc-tracked objects: 10% Leak (each with a list), the rest
    lists, and one deep chain module -> REGISTRY -> 'sessions' -> list ->
    Session -> cache dict -> 'k' -> Leak for the path."""
    n_leaks = total // 10
    LEAKS[:] = [Leak(i) for i in range(n_leaks)]  # 2 tracked objects each
    FILL[:] = [[i] for i in range(max(0, total - len(gc.get_objects())))]
    session = Session()
    session.cache["k"] = Leak(-1)
    REGISTRY["sessions"] = [Session() for _ in range(50)] + [session]
    return session.cache["k"]


def best(fn, repeat):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def pure_list(group_cls, limit):
    found = [o for o in gc.get_objects() if isinstance(o, group_cls)]
    return len(found), [repr(o) for o in found[:limit]]


def pure_backrefs(target, depth, max_nodes):
    """objgraph.show_backrefs's walk: breadth first, gc.get_referrers per node,
    modules not followed, at most max_nodes nodes."""
    import types

    seen = {id(target)}
    level = [target]
    edges = 0
    frame = sys._getframe()
    for _ in range(depth):
        nxt = []
        for obj in level:
            if isinstance(obj, types.ModuleType):
                continue
            for ref in gc.get_referrers(obj):
                if ref is frame or ref is level or ref is nxt:  # the walk's own objects
                    continue
                edges += 1
                if id(ref) not in seen and len(seen) < max_nodes:
                    seen.add(id(ref))
                    nxt.append(ref)
        level = nxt
    return len(seen), edges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-objgraph", action="store_true", help="skip objgraph (it can take minutes)")
    args = ap.parse_args()

    deep_id = id(build(args.objects))  # no local may hold it: a frame is a root too
    gc.collect()
    gc.disable()  # keep the heap still between measurements (gc.freeze would hide it from gc.get_objects)
    n = len(gc.get_objects())
    group = "%s.Leak" % Leak.__module__
    print("python %s, %d tracked objects, %d %s" % (sys.version.split()[0], n, len(LEAKS) + 1, group))

    rows = []

    t_live, got = best(lambda: live.objects(group, limit=100), args.repeat)
    assert got["total"] == len(LEAKS) + 1, got["total"]
    t_pure, (count, _) = best(lambda: pure_list(Leak, 100), max(1, args.repeat // 2))
    assert count == got["total"]
    rows.append(("list first page (100 of %d)" % count, t_live, t_pure, "gc.get_objects + isinstance", 0.050))

    target = LEAKS[len(LEAKS) // 2]
    t_live, got = best(lambda: live.parents(id(target)), args.repeat)
    assert id(LEAKS) in [p["id"] for p in got["objects"]]  # and the lambda's cell
    t_pure, refs = best(lambda: gc.get_referrers(target), max(1, args.repeat // 2))
    rows.append(("parents of one object", t_live, t_pure, "gc.get_referrers", 0.100))
    del refs

    t_live, got = best(lambda: live.path(deep_id), args.repeat)
    vias = [s["via"] for s in got["path"]]
    assert got["found"] and vias[-1] == "value of key 'k'", vias
    t_pure = None
    if not args.no_objgraph:
        import objgraph

        t0 = time.perf_counter()
        chain = objgraph.find_backref_chain(REGISTRY["sessions"][-1].cache["k"], objgraph.is_proper_module)
        t_pure = time.perf_counter() - t0
        assert len(chain) >= 2
        del chain
    rows.append(("path to a root (%d steps)" % (len(vias) - 1), t_live, t_pure,
                 "objgraph.find_backref_chain", 0.500))

    t_live, got = best(lambda: live.graph(deep_id, depth=3), args.repeat)
    assert got["found"] and any(n["on_path"] and n["root"] for n in got["nodes"])
    t_pure, _ = best(lambda: pure_backrefs(REGISTRY["sessions"][-1].cache["k"], 3, 60), max(1, args.repeat // 2))
    rows.append(("referrers graph, depth 3 (%d nodes)" % len(got["nodes"]), t_live, t_pure,
                 "gc.get_referrers per node (show_backrefs)", None))

    t_live, got = best(lambda: live.graph(id(Leak), depth=2), args.repeat)
    assert got["truncated"] and len(got["nodes"]) == 60
    t_pure, _ = best(lambda: pure_backrefs(Leak, 2, 60), 1)
    rows.append(("referrers graph of a class, depth 2 (60)", t_live, t_pure,
                 "gc.get_referrers per node (show_backrefs)", None))

    t_live, got = best(lambda: live.describe(id(target)), args.repeat)
    rows.append(("detail (attrs, parent/child counts)", t_live, None, "", None))

    print("%-38s %10s %12s %8s %8s  %s" % ("query", "pyloot ms", "python ms", "ratio", "goal ms", "python way"))
    for name, t_live, t_pure, how, goal in rows:
        ratio = "%7.1fx" % (t_pure / t_live) if t_pure else "       -"
        pure = "%12.1f" % (t_pure * 1e3) if t_pure else "%12s" % "-"
        goal_s = "%8.0f" % (goal * 1e3) if goal else "%8s" % "-"
        ok = "" if not goal else ("  ok" if t_live <= goal else "  OVER GOAL")
        print("%-38s %10.1f %s %s %s  %s%s" % (name, t_live * 1e3, pure, ratio, goal_s, how, ok))
    gc.enable()


if __name__ == "__main__":
    main()
