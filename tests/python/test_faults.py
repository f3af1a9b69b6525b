"""pyloot never takes the host server down (DESIGN.md section 6, docs/store.md "Faults").

Damaged, missing, unwritable and full stores under a real gunicorn app (2
workers): the app boots and answers its own routes, /_pyloot answers from a
fresh store (with recovered_from) or a JSON 503, and nothing is ever deleted.
Mounting a tmpfs needs root (CI runs as root); those cases skip otherwise.
"""
import contextlib
import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time

import pytest

from conftest import wait_until
from pyloot import PyLoot
from test_cli import pyloot_exe

PAGE = 4096

# Writes a store of a few MB: 3,000 types over 40 samples (level-1 windows,
# compactions, a free list), in its own process.
MAKE_STORE = """
import sys
from pyloot import PyLoot
classes = [type("T%d" % i, (), {}) for i in range(3000)]
keep = [c() for c in classes]
loot = PyLoot(path=sys.argv[1])
for i in range(40):
    keep.append(classes[i]())
    loot.collect_objects()
"""


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "sound"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
    subprocess.run([sys.executable, "-c", MAKE_STORE, str(path)], check=True, timeout=120, env=env)
    return path


def damaged_copy(sound, dst, how):
    """A copy of the store's data.mdb (a new file: no server vouched for it)
    damaged the way `how` says; returns the damaged file's sha256."""
    dst.mkdir()
    data = dst / "data.mdb"
    shutil.copyfile(sound / "data.mdb", data)
    if how == "pages":
        # The last 12 pages (the newest writes, as in a copy taken while the
        # store was written) keep their page header; the rest is garbage.
        # LMDB then follows node offsets past the end of the file: SIGBUS.
        rng = random.Random(9)
        size = data.stat().st_size
        with open(data, "r+b") as f:
            for pg in range(size // PAGE - 12, size // PAGE):
                f.seek(pg * PAGE + 16)
                f.write(bytes(rng.randrange(256) for _ in range(PAGE - 16)))
    elif how == "truncated":
        os.truncate(data, 100)
    return hashlib.sha256(data.read_bytes()).hexdigest()


def moved_copies(db):
    return sorted(p for p in db.parent.iterdir() if p.name.startswith(db.name + ".corrupt-"))


def procs_by_worker(server, timeout=30):
    """/_pyloot/api/procs as answered by each worker: {pid: body}."""
    seen = {}

    def both():
        r = server.get("/_pyloot/api/procs")
        assert r.status == 200, r.body[:500]
        body = r.json()
        seen[body["self"]["pid"]] = body
        return len(seen) >= server.workers

    wait_until(both, timeout, interval=0.05, message="an answer from every worker")
    return seen


# Damaged pages usually crash the checking child (SIGBUS); a layout where the
# walk meets an LMDB error first is as damaged, so any reason is accepted.
@pytest.mark.parametrize("how,reason", [("pages", ""), ("truncated", "MDB_INVALID")])
def test_damaged_store_is_moved_aside(gunicorn, sound_store, tmp_path, how, reason):
    db = tmp_path / "damaged"
    digest = damaged_copy(sound_store, db, how)
    server = gunicorn(workers=2, interval=0.3, db=db)
    assert server.get("/pid").status == 200
    for pid, body in procs_by_worker(server).items():
        store = body["store"]
        assert store["recovered_from"] and store["recovered_from"].startswith(str(db) + ".corrupt-"), store
        assert store["recovered_reason"] and reason in store["recovered_reason"], store
        assert any(p["pid"] == pid for p in body["procs"])
    moved = moved_copies(db)
    assert [str(p) for p in moved] == [store["recovered_from"]]
    # Moved, never deleted nor rewritten.
    assert hashlib.sha256((moved[0] / "data.mdb").read_bytes()).hexdigest() == digest
    log = server.log()
    assert log.count("was damaged") == 1, log[-3000:]
    assert "moved to %s; started a new one" % moved[0] in log
    assert "Traceback" not in log, log[-3000:]


def test_unwritable_path_answers_503(gunicorn, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = gunicorn(workers=2, interval=0.3, db=blocker / "store")
    assert server.get("/pid").status == 200
    assert server.get("/_pyloot/").status == 200  # the UI still loads
    for _ in range(4):
        r = server.get("/_pyloot/api/procs")
        assert r.status == 503, r.body[:500]
        assert r.headers["Content-Type"] == "application/json"
        err = r.json()["error"]
        assert "Not a directory" in err and "Fix:" in err and "PYLOOT_DB" in err
    assert server.get("/_pyloot/api/history").status == 503
    log = server.log()
    assert 1 <= log.count("Not a directory") <= 2, log[-3000:]  # once per worker, not per retry
    assert "Traceback" not in log, log[-3000:]
    assert blocker.read_text() == "not a directory"


@contextlib.contextmanager
def tmpfs(path, size):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", str(path)],
                        capture_output=True, text=True)
    if rc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % rc.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_store_answers_503(gunicorn, sound_store, tmp_path):
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        shutil.copytree(sound_store, mnt / "store")
        before = hashlib.sha256((mnt / "store" / "data.mdb").read_bytes()).hexdigest()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        server = gunicorn(workers=2, interval=0.3, db=mnt / "store")
        try:
            assert server.get("/pid").status == 200
            r = server.get("/_pyloot/api/procs")
            assert r.status == 503, r.body[:500]
            assert "Read-only file system" in r.json()["error"] and "Fix:" in r.json()["error"]
            assert "Traceback" not in server.log()
        finally:
            server.stop()
        assert hashlib.sha256((mnt / "store" / "data.mdb").read_bytes()).hexdigest() == before


def test_start_after_stop_after_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    loot = PyLoot(path=str(blocker / "store"), interval=0.2)
    try:
        loot.start()  # never raises for a run-time problem
        assert loot.is_running()
        status, _, _, body = loot.get_wsgi().handle("GET", "/api/procs")
        assert status == 503 and b"Not a directory" in body
        wait_until(lambda: loot.stats()["paused"], 10, interval=0.05, message="the collector to pause")
        loot.stop(blocking=True)
        assert not loot.is_running()
        blocker.unlink()  # the operator fixes it
        loot.start()
        assert loot.is_running()

        def collecting():
            status, _, _, body = loot.get_wsgi().handle("GET", "/api/procs")
            return status == 200 and loot.stats()["collections"] > 0 and not loot.stats()["paused"]

        wait_until(collecting, 20, interval=0.1, message="collection to resume")
        pids = [p["pid"] for p in loot.backend.get_store().procs()]
        assert os.getpid() in pids
    finally:
        loot.stop(blocking=True)
        loot.backend.close()
    with pytest.raises(ValueError):
        PyLoot(interval=-1)  # wrong arguments still raise, at construction


@pytest.mark.parametrize("how", ["pages", "truncated"])
def test_cli_on_damaged_store(sound_store, tmp_path, how):
    db = tmp_path / "damaged"
    digest = damaged_copy(sound_store, db, how)
    for args in (["procs", "--db", str(db)], ["history", "--db", str(db), "--json"],
                 ["--db", str(db), "-h", "127.0.0.1", "-p", "1"]):
        out = subprocess.run([pyloot_exe(), *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, (args, out.returncode, out.stderr)  # < 0 would be a signal
        assert out.stderr.startswith("pyloot: opening the store failed: the store %s is damaged" % db)
        assert "core dumped" not in out.stderr
    assert moved_copies(db) == []  # read-only: never moved
    assert hashlib.sha256((db / "data.mdb").read_bytes()).hexdigest() == digest


def test_disk_full(gunicorn, tmp_path):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        server = gunicorn(workers=2, interval=0.2, db=mnt / "store")
        try:
            def stored():
                procs = server.api("/api/procs")["procs"]
                return {p["pid"]: p["samples"] for p in procs} if all(p["samples"] >= 3 for p in procs) \
                    and len(procs) == 2 else None

            wait_until(stored, 30, message="samples in the store")
            filler = mnt / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                with contextlib.suppress(OSError):
                    for _ in range(4096):
                        os.write(fd, b"\0" * PAGE)  # until the device is full
            finally:
                os.close(fd)
            wait_until(lambda: "samples are dropped" in server.log(), 60, message="the outage line")
            assert "No space left on device" in server.log()
            assert server.get("/pid").status == 200  # the app keeps answering
            during = {p["pid"]: p["samples"] for p in server.api("/api/procs")["procs"]}
            filler.unlink()

            def every_outage_ended():
                log = server.log()
                return log.count("works again") >= log.count("samples are dropped")

            wait_until(every_outage_ended, 90, message="collection to resume")
            after = {p["pid"]: p["samples"] for p in server.api("/api/procs")["procs"]}
            for pid, n in during.items():
                assert after[pid] >= n  # nothing stored was lost
            wait_until(lambda: sum(p["samples"] for p in server.api("/api/procs")["procs"]) > sum(during.values()),
                       30, message="new samples after the outage")
            log = server.log()
            # One line when an outage begins and one when it ends, not one per sample.
            outages = log.count("samples are dropped")
            assert outages == log.count("works again"), log[-3000:]
            dropped = [int(n) for n in re.findall(r"; (\d+) samples were dropped", log)]
            assert len(dropped) == outages and sum(dropped) > outages, log[-3000:]
            assert "Traceback" not in log
        finally:
            server.stop()
