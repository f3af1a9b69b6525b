#!/usr/bin/env python3
"""Collector benchmarks (issue 2, DESIGN.md section 5), measured in one run.

    PYTHONPATH=build-bench/stage python3 bench/bench_collector.py [--quick] [--objects N]

1. Count pass over N gc-tracked objects (default 1M): ``_pyloot.count_types()``
   against ``gc.get_objects()`` alone (goal <= 2x) and against the pure-Python
   type-count loops of the installed anchors: Dozer's ``Dozer.tick`` (the
   function its periodic thread runs) and ``objgraph.typestats()`` (goal: ours
   >= 7x faster).
2. ``collect_objects()`` end to end (gc.collect + count + store write into a
   temporary store) against the anchors on the same heap: Dozer's periodic
   tick, and the original pyloot's ``collect_objects()`` (the ``pyloot`` 0.1
   release on PyPI, which shares our name: it is installed into its own venv
   and run in a subprocess, once, on a small heap because it needs ~4 ms of
   CPU per tracked object; ours and Dozer's are measured again, in a fresh
   process, on the same heap).
3. GIL hold time: gc.collect and count pass (GIL held) against the whole
   collection; the store write runs with the GIL released.

Every figure is the median of several interleaved repetitions, wall clock
with CPU time next to it. Not part of the test run; see bench/README.md.
The anchors are installed packages; their code is called, never copied.
"""

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ANCHOR_VENV = "/tmp/pyloot-anchor-venv"
ANCHOR_PACKAGE = "pyloot"  # the PyPI release that shares our name

# ---------------------------------------------------------------------------
# The heap: N gc-tracked objects of a few user classes plus containers.
# Used unchanged by the anchor subprocess (which imports nothing of ours).


class Node:
    """A plain class: instances have a (managed) __dict__."""

    def __init__(self, value, link):
        self.value = value
        self.link = link


class Leaf:
    __slots__ = ("value", "link")

    def __init__(self, value, link):
        self.value = value
        self.link = link


class Request(Node):
    """A subclass, so that the heap has a small class hierarchy."""


def build_heap(n):
    """Returns a list holding n gc-tracked objects (the list itself not counted):
    30% Node, 20% Leaf, 10% Request, 20% lists, 20% dicts. Every container
    refers to a tracked object, so gc never untracks it."""
    heap = []
    prev = heap
    append = heap.append
    for i in range(n):
        k = i % 10
        if k < 3:
            obj = Node(i, prev)
        elif k < 5:
            obj = Leaf(i, prev)
        elif k < 6:
            obj = Request(i, prev)
        elif k < 8:
            obj = [i, prev]
        else:
            obj = {"value": i, "link": prev}
        append(obj)
        prev = obj
    return heap


def tracked_objects():
    gc.collect()
    objs = gc.get_objects()
    n = len(objs)
    del objs
    return n


# ---------------------------------------------------------------------------
# Timing helpers


def time_ms(fn, gc_off=False):
    """Wall time of one fn() in milliseconds. Returns (ms, result). With
    gc_off, automatic gc is disabled while timing; never use it around a
    collection: the C API's PyGC_Collect() does nothing while gc is disabled
    (gc.collect() from Python still collects)."""
    was = gc.isenabled()
    if gc_off:
        gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn()
        t1 = time.perf_counter()
    finally:
        if was:
            gc.enable()
    return (t1 - t0) * 1e3, result


def interleaved(fns, repeats, gc_off=False, cpu=None):
    """Runs each of fns (a dict name -> callable) once per round, round after
    round, so that a busy machine slows them all alike. Returns name -> list of
    wall milliseconds; fills cpu (if given) with name -> list of CPU ms."""
    times = {name: [] for name in fns}
    if cpu is not None:
        cpu.update({name: [] for name in fns})
    for _ in range(repeats):
        for name, fn in fns.items():
            c0 = time.process_time()
            ms, _ = time_ms(fn, gc_off)
            times[name].append(ms)
            if cpu is not None:
                cpu[name].append((time.process_time() - c0) * 1e3)
    return times


def med(times):
    return statistics.median(times)


def fmt_ms(ms):
    if ms is None:
        return "-"
    if ms >= 10000:
        return "%.1f s" % (ms / 1e3)
    if ms >= 100:
        return "%.0f ms" % ms
    if ms >= 10:
        return "%.1f ms" % ms
    return "%.2f ms" % ms


class Report:
    def __init__(self):
        self.rows = []

    def section(self, title):
        print("\n" + title)
        print("-" * len(title))
        sys.stdout.flush()

    def line(self, label, ms, note=""):
        print("  %-52s %10s  %s" % (label, fmt_ms(ms), note))
        sys.stdout.flush()

    def ratio(self, label, value, goal_text, ok):
        verdict = "" if ok is None else ("goal met" if ok else "GOAL MISSED")
        print("  %-52s %9.2fx  (goal: %s) %s" % (label, value, goal_text, verdict))
        sys.stdout.flush()
        self.rows.append((label, value, goal_text, verdict))


# ---------------------------------------------------------------------------
# Anchors


def dozer_instance():
    """A Dozer middleware object without its background thread (which would
    tick concurrently with the measurements); tick() is its own code."""
    import warnings
    from dozer.leak import Dozer

    class QuietDozer(Dozer):
        def _start_thread(self):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "PIL is not installed" (charts only)
        return QuietDozer(app=None)


class _NoCollectGC:
    """Stands in for the gc module inside dozer.leak while timing the
    counting path alone: tick() runs unchanged, its gc.collect() is a no-op."""

    def __getattr__(self, name):
        return getattr(gc, name)

    @staticmethod
    def collect(*args, **kw):
        return 0


def dozer_tick_count_only(dozer):
    import dozer.leak as leak

    saved = leak.gc
    leak.gc = _NoCollectGC()
    try:
        dozer.tick()
    finally:
        leak.gc = saved


def anchor_python(venv, log):
    """The venv's python with the anchor pyloot installed, creating the venv
    if it is missing. None (with a message) when that is not possible."""
    py = os.path.join(venv, "bin", "python")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # never see our own pyloot from the anchor venv
    env["PYTHONNOUSERSITE"] = "1"
    check = [py, "-c", "import importlib.metadata as m; print(m.version('pyloot'))"]
    if os.path.exists(py):
        r = subprocess.run(check, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            return py, r.stdout.strip(), env
    log("creating %s and installing the PyPI release of %r into it" % (venv, ANCHOR_PACKAGE))
    try:
        if not os.path.exists(py):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        r = subprocess.run([py, "-m", "pip", "install", "-q", ANCHOR_PACKAGE], env=env,
                           capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        log("cannot create the anchor venv: %s; skipping the original pyloot" % e)
        return None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        log("pip install %s failed (PyPI unreachable?): %s; skipping the original pyloot"
            % (ANCHOR_PACKAGE, " / ".join(tail)))
        return None
    r = subprocess.run(check, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        log("the anchor venv has no pyloot after install; skipping the original pyloot")
        return None
    return py, r.stdout.strip(), env


def anchor_child(n, repeats):
    """Runs in the anchor venv: the original pyloot's collect_objects() on
    build_heap(n). Prints one JSON line."""
    import pyloot  # the PyPI release, from the venv

    assert not hasattr(pyloot, "_pyloot"), "the anchor venv must not see our pyloot"
    import bench_collector as heapmod  # classes bench_collector.*, which it does not skip

    heap = heapmod.build_heap(n)
    tracked = tracked_objects()
    loot = pyloot.PyLoot()  # its default InMemoryBackend
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        loot.collect_objects()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    print(json.dumps({"tracked": tracked, "times_ms": times, "cpu_ms": cpu,
                      "python": platform.python_version()}))
    del heap


def small_child(n, target, repeats):
    """Runs in a fresh process of this Python with our pyloot: ours and
    Dozer's tick on build_heap(n), enlarged if needed to `target` gc-tracked
    objects (the anchor process's count). Prints one JSON line."""
    import bench_collector as heapmod

    import pyloot

    dz = dozer_instance()  # imported before measuring the baseline
    base = tracked_objects()
    pad = max(n, target - base)
    heap = heapmod.build_heap(pad)
    tracked = tracked_objects()
    store_dir = tempfile.mkdtemp(prefix="pyloot-bench-")
    try:
        loot = pyloot.PyLoot(path=store_dir)
        ours = Recorder(loot.collect_objects)
        ours()
        dz.tick()
        ours.results.clear()
        cpu = {}
        t = interleaved({"ours": ours, "dozer_tick": dz.tick}, repeats, cpu=cpu)
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    print(json.dumps({"base": base, "pad": pad, "tracked": tracked, "times_ms": t, "cpu_ms": cpu,
                      "ours_results": ours.results}))
    del heap


def run_child(cmd, env, timeout):
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    if r.returncode != 0:
        return None, "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(r.stdout.strip().splitlines()[-1]), None


def run_anchor_pyloot(py, env, n, repeats, timeout):
    cmd = [py, os.path.abspath(__file__), "--anchor-child", "--objects", str(n),
           "--repeats", str(repeats)]
    return run_child(cmd, env, timeout)


# ---------------------------------------------------------------------------
# Main


def machine_line():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, %s, Python %s" % (cpu, os.cpu_count() or 0, platform.platform(),
                                           platform.python_version())


class Recorder:
    """Wraps fn so that its return values are kept (for collect()'s timings)."""

    def __init__(self, fn):
        self.fn = fn
        self.results = []

    def __call__(self):
        r = self.fn()
        self.results.append(r)
        return r


def summary_ms(times, cpu_ms=None):
    s = "median of %d, min %s" % (len(times), fmt_ms(min(times)))
    if cpu_ms is not None:
        s += "; CPU time %s" % fmt_ms(cpu_ms)
    return s


def run(args, n, n_anchor, repeats):
    # The heap's classes must not be named __main__.*: the original pyloot
    # leaves out every object whose __module__ is "__main__" or contains
    # "pyloot". Importing this file as a module names them bench_collector.*.
    import bench_collector as heapmod

    import dozer
    import objgraph
    import pyloot
    from pyloot import _pyloot

    rep = Report()
    t_start = time.perf_counter()
    print("pyloot collector benchmark (issue 2; DESIGN.md section 5)")
    print("machine: %s" % machine_line())
    try:
        load = "%.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "?"
    print("load average at start: %s" % load)
    print("pyloot under test: %s" % os.path.dirname(pyloot.__file__))
    print("anchors: Dozer %s (%s), objgraph %s" % (
        _version("Dozer"), os.path.dirname(dozer.__file__), _version("objgraph")))
    print("command: PYTHONPATH=%s %s %s" % (os.environ.get("PYTHONPATH", ""), "python3",
                                          " ".join([os.path.relpath(__file__)] + sys.argv[1:])))
    print("every figure: median over %d interleaved rounds (A, B, C, A, B, C, ...), wall clock;"
          % repeats)
    print("CPU time (process_time) next to it: steadier than wall clock on a busy machine")

    # -- 1. the count pass ------------------------------------------------
    rep.section("1. Count pass over %s tracked objects" % format(n, ","))
    t0 = time.perf_counter()
    heap = heapmod.build_heap(n)
    tracked = tracked_objects()
    print("  heap: %s objects built in %.1f s; %s gc-tracked objects in the process"
          % (format(n, ","), time.perf_counter() - t0, format(tracked, ",")))
    dz = dozer_instance()
    fns = {
        "count_types": lambda: _pyloot.count_types(),
        "get_objects": lambda: len(gc.get_objects()),  # the list is built and freed
        "dozer": lambda: dozer_tick_count_only(dz),
        "objgraph": lambda: objgraph.typestats(),
    }
    for fn in fns.values():  # warm-up: type names cached, code paths hot
        fn()
    ours = _pyloot.count_types()
    theirs_dozer = {k: v[-1] for k, v in dz.history.items()}
    theirs_objgraph = objgraph.typestats()
    print("  check: bench_collector.Node counted %d (ours), %d (Dozer), %d (objgraph)" % (
        ours.get("bench_collector.Node", (0, 0))[0], theirs_dozer.get("bench_collector.Node", 0),
        theirs_objgraph.get("Node", 0)))
    cpu = {}
    t = interleaved(fns, repeats, gc_off=True, cpu=cpu)  # nothing here collects
    m = {k: med(v) for k, v in t.items()}
    c = {k: med(v) for k, v in cpu.items()}
    rep.line("_pyloot.count_types()", m["count_types"], summary_ms(t["count_types"], c["count_types"]))
    rep.line("gc.get_objects() alone (list built and freed)", m["get_objects"],
             summary_ms(t["get_objects"], c["get_objects"]))
    rep.line("Dozer: Dozer.tick() with its gc.collect() a no-op", m["dozer"],
             summary_ms(t["dozer"], c["dozer"]))
    rep.line("objgraph.typestats()", m["objgraph"], summary_ms(t["objgraph"], c["objgraph"]))
    for label, d in (("wall", m), ("CPU time", c)):
        r = d["count_types"] / d["get_objects"]
        rep.ratio("count_types / gc.get_objects() (%s)" % label, r, "<= 2x", r <= 2)
    for label, d in (("wall", m), ("CPU time", c)):
        r = d["dozer"] / d["count_types"]
        rep.ratio("Dozer's count loop / count_types (%s)" % label, r, ">= 7x faster", r >= 7)
    for label, d in (("wall", m), ("CPU time", c)):
        r = d["objgraph"] / d["count_types"]
        rep.ratio("objgraph.typestats() / count_types (%s)" % label, r, ">= 7x faster", r >= 7)
    print("  per tracked object, CPU time: count_types %.0f ns, gc.get_objects() %.0f ns, Dozer %.0f ns"
          % tuple(c[k] * 1e6 / tracked for k in ("count_types", "get_objects", "dozer")))

    # -- 2. end to end on the same heap -------------------------------------
    rep.section("2. collect_objects() end to end, same heap (%s tracked)" % format(tracked, ","))
    store_dir = tempfile.mkdtemp(prefix="pyloot-bench-")
    try:
        loot = pyloot.PyLoot(path=store_dir)
        ours_collect = Recorder(loot.collect_objects)
        ours_collect()  # warm-up: creates the store, resolves the type ids
        ours_collect.results.clear()
        fns = {"ours": ours_collect, "dozer_tick": dz.tick, "gc_collect": gc.collect}
        cpu = {}
        t = interleaved(fns, repeats, cpu=cpu)
        m = {k: med(v) for k, v in t.items()}
        c = {k: med(v) for k, v in cpu.items()}
        rep.line("PyLoot(path=tmp).collect_objects()", m["ours"], summary_ms(t["ours"], c["ours"]))
        rep.line("Dozer.tick() (its periodic tick, gc.collect included)", m["dozer_tick"],
                 summary_ms(t["dozer_tick"], c["dozer_tick"]))
        rep.line("gc.collect() alone (part of both)", m["gc_collect"],
                 summary_ms(t["gc_collect"], c["gc_collect"]))
        rep.ratio("Dozer tick / collect_objects (wall)", m["dozer_tick"] / m["ours"],
                  "none set; for reference", None)
        rep.ratio("Dozer tick / collect_objects (CPU time)", c["dozer_tick"] / c["ours"],
                  "none set; for reference", None)
        big_ours = m["ours"]

        # -- 3. GIL hold time ------------------------------------------------
        rep.section("3. GIL hold time per collection (%s tracked)" % format(tracked, ","))
        gc_ms = med([x["gc_ms"] for x in ours_collect.results])
        pass_ms = med([x["pass_ms"] for x in ours_collect.results])
        rest = [tot - x["gc_ms"] - x["pass_ms"] for tot, x in zip(t["ours"], ours_collect.results)]
        print("  from collect()'s result, %d collections (%d types):"
              % (len(rest), ours_collect.results[-1]["types"]))
        rep.line("gc.collect() inside the collection (GIL held)", gc_ms)
        rep.line("count pass (GIL held)", pass_ms)
        rep.line("rest: store write (GIL released) and call overhead", med(rest))
        rep.line("whole collection", big_ours)
        r = pass_ms / big_ours
        rep.ratio("count pass / whole collection", r, "pass is the only GIL hold pyloot adds", None)
        r = (gc_ms + pass_ms) / big_ours
        rep.ratio("GIL held (gc.collect + pass) / whole collection", r, "for reference", None)
        thread_stats = collector_thread_once(pyloot, store_dir)
        if thread_stats:
            print("  from collector_stats() after one collection of the native thread:")
            rep.line("last_gc_ms (GIL held)", thread_stats["last_gc_ms"])
            rep.line("last_pass_ms (GIL held)", thread_stats["last_pass_ms"])
            rep.line("last_write_ms (GIL released)", thread_stats["last_write_ms"])
        else:
            print("  the collector thread did not finish a collection within 120 s; skipped")
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    del heap, dz, fns
    gc.collect()

    # -- 2b. against the original pyloot, on a heap it can finish ----------
    rep.section("2b. collect_objects() against the original pyloot (PyPI), small heap")
    anchor = None
    if args.no_anchor:
        print("  skipped (--no-anchor)")
    else:
        found = anchor_python(args.anchor_venv, lambda msg: print("  " + msg, flush=True))
        if found:
            py, version, env = found
            print("  original pyloot %s in %s, run in a subprocess on build_heap(%s) ..."
                  % (version, args.anchor_venv, format(n_anchor, ",")), flush=True)
            t0 = time.perf_counter()
            anchor, err = run_anchor_pyloot(py, env, n_anchor, args.anchor_repeats, args.anchor_timeout)
            if err:
                print("  original pyloot: %s; skipped" % err)
            else:
                print("  subprocess took %.0f s; %s gc-tracked objects in it (its own imports included)"
                      % (time.perf_counter() - t0, format(anchor["tracked"], ",")))
    # Ours and Dozer's in a fresh process too (not in this one, which carries
    # the freed 1M heap), on the same build_heap(n_anchor), enlarged to as many
    # gc-tracked objects as the anchor's process had when our baseline is
    # smaller. (With Dozer imported it is usually larger: then our side has
    # more objects than the anchor's, which only favours the anchor.)
    target = anchor["tracked"] if anchor else n_anchor + 21_000  # ~ the anchor's own baseline
    cmd = [sys.executable, os.path.abspath(__file__), "--small-child", str(target),
           "--objects", str(n_anchor), "--repeats", str(repeats)]
    small, err = run_child(cmd, dict(os.environ), 600)
    if err:
        print("  ours and Dozer's on the small heap: %s" % err)
    else:
        print("  ours and Dozer's in a fresh process: build_heap(%s) on a baseline of %s: %s tracked"
              % (format(small["pad"], ","), format(small["base"], ","), format(small["tracked"], ",")))
        if anchor and small["tracked"] != anchor["tracked"]:
            print("  (%s tracked here vs %s in the anchor's process: its imports and ours differ)"
                  % (format(small["tracked"], ","), format(anchor["tracked"], ",")))
        t = small["times_ms"]
        m = {k: med(v) for k, v in t.items()}
        if anchor:
            a = med(anchor["times_ms"])
            rep.line("original pyloot %s collect_objects()" % version, a,
                     "median of %d, %s tracked; CPU time %s" % (
                         len(anchor["times_ms"]), format(anchor["tracked"], ","),
                         fmt_ms(med(anchor["cpu_ms"]))))
        c = {k: med(v) for k, v in small["cpu_ms"].items()}
        rep.line("PyLoot(path=tmp).collect_objects()", m["ours"], summary_ms(t["ours"], c["ours"]))
        res = small["ours_results"]
        print("  %-52s %10s" % ("  of which gc.collect / pass (GIL held)", "%s / %s" % (
            fmt_ms(med([x["gc_ms"] for x in res])), fmt_ms(med([x["pass_ms"] for x in res])))))
        rep.line("Dozer.tick()", m["dozer_tick"], summary_ms(t["dozer_tick"], c["dozer_tick"]))
        if anchor:
            rep.ratio("original pyloot / ours (speed-up, wall)", a / m["ours"], "none set; for reference",
                      None)
            rep.ratio("original pyloot / ours (speed-up, CPU time)", med(anchor["cpu_ms"]) / c["ours"],
                      "none set; for reference", None)
            rep.ratio("original pyloot / Dozer tick (wall)", a / m["dozer_tick"], "for reference", None)
        rep.ratio("Dozer tick / ours, small heap (wall)", m["dozer_tick"] / m["ours"],
                  "none set; for reference", None)
        rep.ratio("Dozer tick / ours, small heap (CPU time)", c["dozer_tick"] / c["ours"],
                  "none set; for reference", None)

    rep.section("Summary")
    for label, value, goal, verdict in rep.rows:
        print("  %-52s %9.2fx  %-24s %s" % (label, value, goal, verdict))
    print("\ntotal time %.0f s" % (time.perf_counter() - t_start))
    return 0


def _version(dist):
    try:
        import importlib.metadata as md

        return md.version(dist)
    except Exception:
        return "?"


def collector_thread_once(pyloot, store_dir, timeout=120.0):
    """One collection by the native collector thread; its collector_stats()."""
    loot = pyloot.PyLoot(path=store_dir, interval=3600)
    before = loot.stats()["collections"]
    loot.start()  # the first collection runs right away
    deadline = time.monotonic() + timeout
    stats = None
    try:
        while time.monotonic() < deadline:
            s = loot.stats()
            if s["collections"] > before:
                stats = s
                break
            time.sleep(0.05)
    finally:
        loot.stop(blocking=True)
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=None,
                    help="tracked objects on the main heap (default 1,000,000; 200,000 with --quick)")
    ap.add_argument("--anchor-objects", type=int, default=None,
                    help="heap size for the original pyloot (default 10,000; 2,000 with --quick)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="repetitions per figure, median reported (default 7; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smaller heaps and fewer repetitions")
    ap.add_argument("--no-anchor", action="store_true", help="skip the original pyloot (PyPI)")
    ap.add_argument("--anchor-venv", default=ANCHOR_VENV,
                    help="virtual environment of the original pyloot (created if missing)")
    ap.add_argument("--anchor-timeout", type=int, default=1200,
                    help="seconds before the original pyloot's subprocess is abandoned")
    ap.add_argument("--anchor-repeats", type=int, default=1,
                    help="collections of the original pyloot (default 1: each takes minutes)")
    ap.add_argument("--anchor-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--small-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.anchor_child:
        anchor_child(args.objects, args.repeats or 1)
        return 0
    if args.small_child is not None:
        small_child(args.objects or 0, args.small_child, args.repeats or 3)
        return 0

    n = args.objects or (200_000 if args.quick else 1_000_000)
    n_anchor = args.anchor_objects or (2_000 if args.quick else 10_000)
    repeats = args.repeats or (3 if args.quick else 7)
    return run(args, n, n_anchor, repeats)


if __name__ == "__main__":
    sys.exit(main())
