"""Remote mode: bytes on the wire per sample (issue 10, point 7).

pyloot's push message (gzip'ed PLS1, docs/http-api.md) for one sample of a
heap, against the original pyloot's remote POST of the same heap (the PyPI
release 0.1.0, which gzips a JSON dump of every object on every tick), both
measured in this run on the same heap built the same way in each interpreter:

  types5000  5,000 classes with 3 instances each (the heap of bench_store.c)
  demo       examples/demo_app.py after 1,000 /login and 1,000 /work requests

Usage (the original in its own venv, never in the system interpreter):
    python3 -m venv /tmp/venv-orig && /tmp/venv-orig/bin/pip install pyloot==0.1.0
    PYTHONPATH=build/stage python3 bench/bench_remote.py [--orig-python /tmp/venv-orig/bin/python]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "examples")

CHILD = r'''
import gc, json, os, sys, time
mode, which, extra_path, examples = sys.argv[1:5]
if extra_path:
    sys.path.append(extra_path)   # flask, for the demo; after the interpreter's own pyloot
os.environ["PYLOOT_INTERVAL"] = "3600"   # the demo's collector thread stays idle
keep = []
if mode == "types5000":
    for i in range(5000):
        cls = type("T%04d" % i, (), {"__module__": "bench.heap"})
        keep.extend(cls() for _ in range(3))
else:
    sys.path.insert(0, examples)
    import demo_app
    client = demo_app.flask_app.test_client()
    for i in range(1000):
        client.get("/login/user%d" % i)
        client.get("/work")
gc.collect()
out = {"objects": len(gc.get_objects())}
if which == "orig":
    from pyloot.collector import get_object_descriptors
    from pyloot.backends.http import HTTPRemoteBackend
    t0 = time.perf_counter()
    data = [dict(d._asdict()) for d in get_object_descriptors()]
    text = json.dumps(data)
    body = HTTPRemoteBackend.compress(text)
    out.update(json_bytes=len(text), wire_bytes=len(body), encode_s=time.perf_counter() - t0)
else:
    from pyloot import _pyloot
    t0 = time.perf_counter()
    counts = _pyloot.count_types(gc_collect=True)
    now = int(time.time() * 1000)
    pid, start = os.getpid(), 123456
    argv = " ".join(sys.argv)[:255]
    first = _pyloot.encode_samples([(now, counts)], host_name="web-1", pid=pid, start=start, argv=argv)
    encode_s = time.perf_counter() - t0
    # Steady state: the names went with the first message; the counts move a little.
    counts2 = {k: (c + (1 if i % 7 == 0 else 0), b) for i, (k, (c, b)) in enumerate(counts.items())}
    steady = _pyloot.encode_samples([(now + 30000, counts2)], host_name="web-1", pid=pid, start=start,
                                    argv=argv, announced=True)
    import zlib
    out.update(types=len(counts), first_bytes=len(first), wire_bytes=len(steady),
               raw_bytes=len(zlib.decompress(steady, 31)), encode_s=encode_s)
print(json.dumps(out))
'''


def run(python, mode, which, env_path=""):
    env = dict(os.environ)
    if which == "orig":
        env.pop("PYTHONPATH", None)
    out = subprocess.run([python, "-c", CHILD, mode, which, env_path, os.path.abspath(EXAMPLES)],
                         capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        raise SystemExit("%s %s failed:\n%s" % (which, mode, out.stderr[-3000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orig-python", default="/tmp/venv-orig/bin/python")
    args = ap.parse_args()
    import flask
    flask_path = os.path.dirname(os.path.dirname(os.path.abspath(flask.__file__)))
    print("%-10s %9s | %8s %12s %12s | %12s %11s | %9s" % (
        "heap", "objects", "types", "first msg B", "per sample B", "original B", "(JSON B)", "ratio"))
    for mode in ("types5000", "demo"):
        ours = run(sys.executable, mode, "ours", flask_path)
        orig = run(args.orig_python, mode, "orig", flask_path)
        print("%-10s %9d | %8d %12d %12d | %12d %11d | %8.0fx" % (
            mode, ours["objects"], ours["types"], ours["first_bytes"], ours["wire_bytes"],
            orig["wire_bytes"], orig["json_bytes"], orig["wire_bytes"] / ours["wire_bytes"]))
        print("%-10s per-sample message before gzip: %d B; the original's per-tick encode %.2f s, ours %.3f s"
              % ("", ours["raw_bytes"], orig["encode_s"], ours["encode_s"]))
    print("ratio = the original's gzip'ed POST per tick / pyloot's gzip'ed message per sample (steady state)")


if __name__ == "__main__":
    main()
