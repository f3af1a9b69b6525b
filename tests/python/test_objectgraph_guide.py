"""The refcycle user guide's two worked examples, run as written with only
the import line changed (`import pyloot as refcycle`), each in a fresh
interpreter so that nothing else is on the heap or in the garbage."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

GARBAGE_EXAMPLE = """
import pyloot as refcycle
import gc
gc.disable()
gc.collect()

class A(object):
    pass

a = A()
b = A()
a.foo = b
b.foo = a
del a, b, A

graph = refcycle.garbage()
graph_repr = repr(graph)
if EXPORT:
    graph.export_image(os.path.join(OUT, 'garbage.svg'))

sccs = graph.strongly_connected_components()
sccs.sort(key=len)
if EXPORT:
    sccs[-1].export_image(os.path.join(OUT, 'scc1.svg'))
    sccs[-2].export_image(os.path.join(OUT, 'scc2.svg'))

sources = graph.source_components()
print(json.dumps({
    "repr": graph_repr,
    "size": len(graph),
    "scc_sizes": [len(s) for s in sccs],
    "sources": [sorted(type(o).__name__ for o in s) for s in sources],
    "gc_enabled": gc.isenabled(),
    "gc_garbage": len(gc.garbage),
}))
"""

WORKER_EXAMPLE = """
def worker(jobs_queue, results_queue):
    while True:
        job = jobs_queue.get()
        result = job()
        results_queue.put(result)

try:
    from queue import Queue  # Works in Python 3.
except ImportError:
    from Queue import Queue  # Python 2 fallback.
import threading

jobs_queue, results_queue = Queue(), Queue()
t = threading.Thread(target=worker, args=(jobs_queue, results_queue))
t.daemon = True
t.start()

class SomeComputation(object):
    def __init__(self, value):
        self.value = value

    def compute(self):
        return self.value**2

def do_some_computations(jobs_queue, results_queue):
    computations = [SomeComputation(n) for n in [11, 15, 17]]
    for computation in computations:
        jobs_queue.put(computation.compute)
    for computation in computations:
        print(results_queue.get())

do_some_computations(jobs_queue, results_queue)

import pyloot as refcycle
snapshot = refcycle.snapshot()
computations = [obj for obj in snapshot
                if isinstance(obj, SomeComputation)]
c = computations[0]
ancestors = snapshot.ancestors(c)
ancestors5 = snapshot.ancestors(c, generations=5)
if EXPORT:
    snapshot.ancestors(c).export_image(os.path.join(OUT, 'computations.svg'))
frame = snapshot.parents(snapshot.parents(c)[0])[0]
labels = sorted(e.annotation for e in ancestors.annotated().edges)
print(json.dumps({
    "snapshot_repr": repr(snapshot),
    "computations": len(computations),
    "ancestors": len(ancestors),
    "ancestors5": len(ancestors5),
    "frame_type": type(frame).__name__,
    "frame_code": frame.f_code.co_name,
    "job_is_bound_method": frame.f_locals["job"].__self__ is c,
    "labels": labels,
}))
"""


def run_example(source, tmp_path, export):
    prelude = "import json, os\nEXPORT = {!r}\nOUT = {!r}\n".format(export, str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="figures stated for CPython 3.11")
def test_garbage_example_311(tmp_path):
    result = run_example(GARBAGE_EXAMPLE, tmp_path, export=bool(shutil.which("dot")))
    assert result["repr"].startswith("<pyloot.ObjectGraph object of size 8 at 0x")
    assert result["size"] == 8
    assert result["scc_sizes"] == [1, 2, 5]
    assert result["sources"] == [["A", "A"]]
    assert result["gc_enabled"] is False
    assert result["gc_garbage"] == 0
    if shutil.which("dot"):
        for name in ("garbage.svg", "scc1.svg", "scc2.svg"):
            assert b"<svg" in (tmp_path / name).read_bytes()


def test_garbage_example_any_version(tmp_path):
    result = run_example(GARBAGE_EXAMPLE, tmp_path, export=False)
    # The class and its satellites form one component, the two instances
    # another, which is the only source.
    assert result["sources"] == [["A", "A"]]
    assert result["size"] == sum(result["scc_sizes"])


def test_worker_example(tmp_path):
    result = run_example(WORKER_EXAMPLE, tmp_path, export=bool(shutil.which("dot")))
    assert result["snapshot_repr"].startswith("<pyloot.ObjectGraph object of size ")
    assert result["computations"] == 1
    # c <- bound method (__self__) <- the worker's running frame (local 'job').
    assert result["frame_type"] == "frame"
    assert result["frame_code"] == "worker"
    assert result["job_is_bound_method"] is True
    assert "__self__" in result["labels"]
    assert "local 'job'" in result["labels"]
    assert result["ancestors"] >= 3
    assert result["ancestors5"] <= result["ancestors"]
    if shutil.which("dot"):
        assert b"<svg" in (tmp_path / "computations.svg").read_bytes()
