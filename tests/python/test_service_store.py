"""The zero-config store outlives deploys: it is named after the service (the
root process's working directory and command line), so a restart of the same
service continues its history; another directory gets another store; stores
idle longer than their retention are removed by the next pyloot that starts,
never one in use; `pyloot stores` lists them (docs/store.md, "Where the
zero-config store lives")."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import APPS, child_pids, free_port, http, stop_group, wait_until
from test_cli import pyloot_exe

WEEK = 7 * 86400


@pytest.fixture
def tmpdir_root(tmp_path):
    """A private $TMPDIR: the default store root is <it>/pyloot-<uid>."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o700)
    return tmp


def service_env(tmpdir_root, port):
    env = dict(os.environ, TMPDIR=str(tmpdir_root), PORT=str(port), PYLOOT_TEST_INTERVAL="0.5",
               PYTHONPATH=os.pathsep.join([str(APPS)] + [p for p in sys.path if p and os.path.isdir(p)]))
    env.pop("PYLOOT_DB", None)
    return env


class Service:
    """gunicorn started from `cwd` with the same command line every time
    (the port comes from $PORT through the config file), under /bin/sh so
    that the master, not this test process, is the service's root."""

    def __init__(self, cwd, tmpdir_root, workers=2):
        self.port = free_port()
        (cwd / "gunicorn.conf.py").write_text(
            "import os\nbind = '127.0.0.1:' + os.environ['PORT']\nworkers = %d\ntimeout = 60\n"
            "graceful_timeout = 5\n" % workers)
        self.log_path = cwd / ("gunicorn-%d.log" % self.port)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", '"$0" -m gunicorn -c gunicorn.conf.py leaky:app; exit $?', sys.executable],
            cwd=str(cwd), env=service_env(tmpdir_root, self.port), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        self.workers = workers
        wait_until(self.ready, 60, message="gunicorn to start")

    @property
    def master(self):
        kids = child_pids(self.proc.pid)
        return kids[0] if kids else None

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("gunicorn exited: %s" % self.log_path.read_text(errors="replace")[-3000:])
        master = self.master
        if not master or len(child_pids(master)) != self.workers:
            return False
        try:
            procs = self.api("/api/procs")
        except (OSError, AssertionError):
            return False
        return sum(p["alive"] for p in procs["procs"]) >= self.workers

    def api(self, path):
        r = http("http://127.0.0.1:%d/_pyloot%s" % (self.port, path), timeout=5)
        assert r.status == 200, (path, r.status, r.body[:300])
        return r.json()

    def leak(self, n=7):
        """6 requests of n leaks each (42), one after the other."""
        for _ in range(6):
            r = http("http://127.0.0.1:%d/leak?n=%d&hold=0.2" % (self.port, n), timeout=10)
            assert r.status == 200

    def stop(self):
        """A clean stop: SIGTERM to the whole group (sh passes nothing on)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        stop_group(self.proc)


def run(*args):
    return subprocess.run([pyloot_exe(), *args], capture_output=True, text=True, timeout=60)


def leak_count(server, pid=None):
    q = "/api/history?q=leaky.Leak&limit=5" + ("&pid=%d" % pid if pid else "")
    return sum(t["count"] for t in server.api(q)["types"] if t["name"] == "leaky.Leak")


def test_a_restart_continues_the_store_and_another_directory_gets_its_own(tmp_path, tmpdir_root):
    a = tmp_path / "shop"
    b = tmp_path / "blog"
    a.mkdir()
    b.mkdir()
    root = tmpdir_root / ("pyloot-%d" % os.getuid())

    first = Service(a, tmpdir_root)
    try:
        first.leak()
        path = first.api("/api/procs")["store"]["path"]
        assert os.path.dirname(path) == str(root)
        assert os.path.basename(path).startswith("shop-gunicorn-"), first.log_path.read_text(errors="replace")[-3000:]
        old = sorted(p["pid"] for p in first.api("/api/procs")["procs"] if p["alive"])
        total = wait_until(lambda: leak_count(first) == 42 and 42, 30, message="the leaks sampled")
    finally:
        first.stop()

    # The same service again (a deploy): the same store, the old workers' history kept.
    second = Service(a, tmpdir_root)
    other = None
    try:
        procs = second.api("/api/procs")
        assert procs["store"]["path"] == path
        alive = sorted(p["pid"] for p in procs["procs"] if p["alive"])
        gone = sorted(p["pid"] for p in procs["procs"] if not p["alive"])
        assert len(alive) == 2 and set(old) <= set(gone) and not set(alive) & set(old)
        # Their history is there (each one's count as of its end).
        assert sum(leak_count(second, pid) for pid in old) == total

        # Another directory, the same command line, running at the same time: another store.
        other = Service(b, tmpdir_root)
        other_path = other.api("/api/procs")["store"]["path"]
        assert other_path != path and os.path.basename(other_path).startswith("blog-gunicorn-")
        assert len(other.api("/api/procs")["procs"]) == 2

        # The report reads both incarnations of the service.
        out = run("report", "--db", path, "--json")
        assert out.returncode == 0, out.stderr
        store = json.loads(out.stdout)["store"]
        assert store["workers"] == 4 and store["alive"] == 2
        counts = []
        for pid in old:
            out = run("history", "--db", path, "--pid", str(pid), "-q", "leaky.Leak", "--json")
            assert out.returncode == 0, out.stderr
            counts += [t["count"] for t in json.loads(out.stdout)["types"] if t["name"] == "leaky.Leak"]
        assert sum(counts) == total

        # pyloot stores: both services, each with its directory, command and workers.
        out = run("stores", "--root", str(root), "--json")
        assert out.returncode == 0, out.stderr
        listed = {s["path"]: s for s in json.loads(out.stdout)["stores"]}
        assert sorted(listed) == sorted([path, other_path])
        assert listed[path]["service"]["cwd"] == str(a)
        assert "gunicorn -c gunicorn.conf.py leaky:app" in listed[path]["service"]["command"]
        assert listed[path]["workers"] == {"alive": 2, "ended": 2}
        assert listed[other_path]["workers"] == {"alive": 2, "ended": 0}
        assert listed[path]["in_use"] is True and listed[path]["retention_s"] == WEEK
        assert listed[path]["bytes"] > 0 and listed[path]["last_write"] > time.time() - 3600
        text = run("stores", "--root", str(root))
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[0].split()[:2] == ["STORE", "LAST"]
        row = [ln for ln in lines if ln.startswith(os.path.basename(path))][0]
        assert "2 alive, 2 ended" in row and ("%s: " % a) in row and "leaky:app" in row
        assert lines[-1] == "(2 stores under %s)" % root
    finally:
        second.stop()
        if other:
            other.stop()


def test_two_copies_of_one_service_at_once_share_its_store(tmp_path, tmpdir_root):
    """The same directory and command line at once (say, old and new during a
    blue-green deploy) is one service: one store, both copies' workers."""
    a = tmp_path / "shop"
    a.mkdir()
    one = Service(a, tmpdir_root)
    two = None
    try:
        two = Service(a, tmpdir_root)
        path = one.api("/api/procs")["store"]["path"]
        assert two.api("/api/procs")["store"]["path"] == path
        wait_until(lambda: sum(p["alive"] for p in one.api("/api/procs")["procs"]) == 4, 30,
                   message="both copies' workers in one store")
    finally:
        one.stop()
        if two:
            two.stop()


def make_store(path, age_s=0, keep_open=False):
    """A closed store at path whose last write was age_s ago."""
    code = ("import sys\nfrom pyloot import _pyloot\ns = _pyloot.Store(sys.argv[1])\ns.close()\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60,
                   env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    if age_s:
        t = time.time() - age_s
        os.utime(path / "data.mdb", (t, t))


def start_once(code, cwd, tmpdir_root):
    """Runs `python -c code` in cwd under /bin/sh (so that it is its own
    service's root, not this test process)."""
    return subprocess.run(["/bin/sh", "-c", '"$0" -c "$1"; exit $?', sys.executable, code], cwd=str(cwd),
                          capture_output=True, timeout=60, env=service_env(tmpdir_root, 0), text=True)


def test_idle_stores_are_removed_at_the_next_start_and_fresh_ones_kept(tmp_path, tmpdir_root):
    root = tmpdir_root / ("pyloot-%d" % os.getuid())
    root.mkdir(mode=0o700)
    make_store(root / "1234-5678", age_s=WEEK + 3600)       # an old-style store, idle past the retention
    make_store(root / "fresh-app-0123456789abcdef", age_s=WEEK - 3600)
    make_store(root / "busy-app-0123456789abcdef", age_s=WEEK + 3600)
    (root / "notes").mkdir()                                # not a store: never touched
    (root / "notes" / "data.txt").write_text("mine")
    # Another process has "busy" open; its last write is old all the same.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom pyloot import _pyloot\ns = _pyloot.Store(sys.argv[1])\n"
         "print('open', flush=True)\nsys.stdin.read()\n", str(root / "busy-app-0123456789abcdef")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        assert holder.stdout.readline().strip() == b"open"
        t = time.time() - WEEK - 3600
        os.utime(root / "busy-app-0123456789abcdef" / "data.mdb", (t, t))
        before = json.loads(run("stores", "--root", str(root), "--json").stdout)["stores"]
        assert [s["name"] for s in before] == ["1234-5678", "busy-app-0123456789abcdef",
                                               "fresh-app-0123456789abcdef"]
        assert [s["in_use"] for s in before] == [False, True, False]
        assert before[0]["service"] is None

        cwd = tmp_path / "svc"
        cwd.mkdir()
        code = ("import pyloot\np = pyloot.PyLoot(interval=60)\np.start()\np.collect_objects()\n"
                "print(p.path)\np.stop(blocking=True)\n")
        out = start_once(code, cwd, tmpdir_root)
        assert out.returncode == 0, out.stderr
        mine = out.stdout.strip()
        assert os.path.dirname(mine) == str(root)
        assert sorted(os.listdir(root)) == sorted(["busy-app-0123456789abcdef", "fresh-app-0123456789abcdef",
                                                   "notes", os.path.basename(mine)])
        assert (root / "notes" / "data.txt").read_text() == "mine"
        service = (root / os.path.basename(mine) / "service").read_text()
        assert service.startswith("pyloot-service 1\n") and ("cwd %s\n" % cwd) in service
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # Closed now, and still idle: the next start removes it.
    out = start_once(code, cwd, tmpdir_root)
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(root)) == sorted(["fresh-app-0123456789abcdef", "notes", os.path.basename(mine)])


def test_stores_bad_arguments(tmp_path):
    for args, words in [(["--root", str(tmp_path / "missing")], "is not a directory"),
                        (["--root", str(tmp_path / "f")], "is not a directory"),
                        (["--csv"], "not --csv"),
                        (["--limit", "3"], "unknown argument --limit"),
                        (["--root"], "--root needs a value")]:
        (tmp_path / "f").write_text("")
        out = run("stores", *args)
        assert out.returncode == 2, (args, out.stdout)
        assert words in out.stderr and out.stderr.startswith("pyloot: "), (args, out.stderr)
        assert out.stdout == ""
    # An empty root: nothing listed.
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run("stores", "--root", str(empty), "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == {"root": str(empty), "stores": []}
