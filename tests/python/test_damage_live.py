"""A store damaged while the server runs never takes the app down (DESIGN.md
section 6; docs/store.md, "Damage at run time").

A gunicorn app (2 workers, pyloot's child_exit hook in its config, a short
collection interval) has its store damaged under it: data.mdb truncated,
its meta pages zeroed, or pages overwritten with garbage. Throughout, the
app's own routes answer 200, /_pyloot/api/procs answers 200 or a JSON 503
(never a reset), the master lives, each worker is replaced at most once,
and the damaged store ends up moved aside (never deleted) with a new one in
its place.
"""
import os
import random
import time
import urllib.error

import pytest

from conftest import http, wait_until

PAGE = 4096
# Requests over this many seconds after the damage, bounded in count too.
WATCH_S = 5.0
WATCH_MAX = 400
# Pages data.mdb has before it is damaged: the garbage lands on its last 12
# pages and on 8 in the middle, none of them a meta page.
MIN_PAGES = 24


def moved_copies(db):
    return sorted(p for p in db.parent.iterdir() if p.name.startswith(db.name + ".corrupt-"))


def damage(data, how):
    """Damages data.mdb of a running server in place (same inode)."""
    size = data.stat().st_size
    pages = size // PAGE
    if how == "truncated":
        os.truncate(data, 8192)
    elif how == "meta-zeroed":
        with open(data, "r+b") as f:
            f.write(bytes(2 * PAGE))
    elif how == "garbage":
        # Headers kept, bodies garbage: LMDB then follows node offsets and
        # sizes it reads from the garbage. Twelve pages at the end (the
        # newest) and eight in the middle.
        rng = random.Random(7)
        victims = set(range(pages - 12, pages)) | set(range(pages // 2, pages // 2 + 8))
        with open(data, "r+b") as f:
            for pg in sorted(victims):
                if 2 <= pg < pages:
                    f.seek(pg * PAGE + 16)
                    f.write(bytes(rng.randrange(256) for _ in range(PAGE - 16)))
    else:
        raise ValueError(how)


def watch(server, seconds):
    """Requests the app's own route and /_pyloot for `seconds` (bounded in
    count): returns (app statuses, pyloot statuses, failures, worker pids seen)."""
    app, loot, failures, pids = [], [], [], set(server.worker_pids())
    deadline = time.monotonic() + seconds
    paths = ["/_pyloot/api/procs", "/_pyloot/api/history?limit=50", "/_pyloot/metrics"]
    for i in range(WATCH_MAX):
        if time.monotonic() >= deadline:
            break
        try:
            r = http(server.url + "/leak?n=1", timeout=10)
            app.append(r.status)
            path = paths[i % len(paths)]
            r = http(server.url + path, timeout=10)
            loot.append((path, r.status))
            if path.endswith("/procs"):
                assert r.headers["Content-Type"] == "application/json", (r.status, r.body[:300])
                if r.status == 503:
                    assert "error" in r.json(), r.body[:300]
        except (OSError, urllib.error.URLError) as e:  # a reset, a refused connection, a timeout
            failures.append(repr(e))
        pids.update(server.worker_pids())
        time.sleep(0.02)
    return app, loot, failures, pids


@pytest.mark.parametrize("how,hook", [("truncated", True), ("meta-zeroed", True), ("garbage", True),
                                      ("truncated", False)])
def test_store_damaged_while_running(gunicorn, tmp_path, how, hook):
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("from pyloot.gunicorn import child_exit  # noqa: F401\n" if hook else "\n")
    db = tmp_path / "store"
    server = gunicorn(workers=2, interval=0.3, db=db, args=("-c", str(conf)))
    server.wait_sampled()
    server.leak_everywhere(rounds=1)
    # More samples, so that the store has pages well past the metas: waited
    # for by size, not for a fixed time (a loaded machine samples less often).
    data = db / "data.mdb"
    wait_until(lambda: data.stat().st_size // PAGE >= MIN_PAGES, 30, interval=0.1,
               message="data.mdb to reach %d pages" % MIN_PAGES)
    before = set(server.worker_pids())
    damage(data, how)

    app, loot, failures, pids = watch(server, WATCH_S)

    log = server.log()
    assert server.proc.poll() is None, "the master died: %s" % log[-3000:]
    assert not failures, (failures[:5], log[-3000:])
    assert app and all(s == 200 for s in app), (app, log[-3000:])
    assert all(s in (200, 503) for _, s in loot), (loot, log[-3000:])
    # Each worker replaced at most once (none should be: nothing dies).
    assert len(pids - before) <= len(before), (sorted(before), sorted(pids), log[-3000:])
    assert "was sent SIG" not in log and "exited with code" not in log, log[-3000:]  # gunicorn's words

    # The damaged store is kept, moved aside, and a new one serves.
    moved = wait_until(lambda: moved_copies(db), 20, message="the damaged store moved aside")
    assert len(moved) == 1, moved
    assert (moved[0] / "data.mdb").exists()

    def recovered():
        r = server.get("/_pyloot/api/procs")
        assert r.status in (200, 503), (r.status, r.body[:300])
        return r.status == 200 and r.json()["store"].get("recovered_from") == str(moved[0])

    wait_until(recovered, 30, interval=0.1, message="a new store with recovered_from")
    assert "found damaged" in log or "found damaged" in server.log(), server.log()[-3000:]
    assert "Traceback" not in server.log(), server.log()[-3000:]


# One process writing to its store while garbage lands in it; faulthandler
# enabled before pyloot's handler is installed (-X faulthandler) or after it.
FAULTHANDLER_SCRIPT = """
import faulthandler, os, random, sys
from pyloot import PyLoot
path, when = sys.argv[1], sys.argv[2]
classes = [type("T%d" % i, (), {}) for i in range(300)]
keep = [c() for c in classes]
loot = PyLoot(path=path)
for i in range(15):
    keep.append(classes[i]())
    loot.collect_objects()
if when == "after":
    faulthandler.enable()
data = os.path.join(path, "data.mdb")
pages = os.path.getsize(data) // 4096
rng = random.Random(1)
with open(data, "r+b") as f:
    for pg in list(range(pages - 12, pages)) + list(range(pages // 2, pages // 2 + 8)):
        f.seek(pg * 4096 + 16)
        f.write(bytes(rng.randrange(256) for _ in range(4096 - 16)))
server = loot.get_wsgi()
for i in range(5):
    try:
        loot.collect_objects()
    except Exception:
        pass  # collect_objects raises while the store is being replaced
    assert server.handle("GET", "/api/procs")[0] in (200, 503)
print("alive")
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_store_fault_with_faulthandler(tmp_path, when):
    import subprocess
    import sys
    db = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
    args = [sys.executable] + (["-X", "faulthandler"] if when == "before" else []) + ["-c", FAULTHANDLER_SCRIPT]
    out = subprocess.run(args + [str(db), when], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "alive" in out.stdout, (out.returncode, out.stderr[-3000:])
    assert moved_copies(db), out.stderr[-3000:]
    assert "found damaged while running" in out.stderr
