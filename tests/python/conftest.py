"""Shared fixtures: real gunicorn servers on loopback ports.

Every server is started in its own session and stopped (and its process
group killed) at the end of the test, whatever happens in the test.
"""
import gc
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

APPS = Path(__file__).parent / "apps"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pids(pid):
    """The direct children of pid (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return sorted(kids)


def thread_names(pid):
    names = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
    except OSError:
        pass
    return names


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        self.body = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body

    def json(self):
        return json.loads(self.body)


def http(url, headers=None, timeout=20, method="GET", data=None):
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def wait_for_pyloot(url, timeout=20, message="pyloot to listen", proc=None, why_exited=None, headers=None):
    """Waits until GET url/api/procs answers 200 (a `pyloot` server or a
    mounted /_pyloot is up). With proc, fails at once when it has exited,
    saying why_exited() (its stderr or log)."""
    def up():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("pyloot exited: %s" % (why_exited() if why_exited else proc.returncode))
        try:
            return http(url + "/api/procs", timeout=2, headers=headers).status == 200
        except OSError:
            return False

    return wait_until(up, timeout, message=message)


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    """Polls predicate() until it returns a truthy value; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, message, last))



def read_log(path):
    """The text of a server's log file ("" when it cannot be read)."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def stop_group(proc, grace=15):
    """Stops a server started with start_new_session=True: SIGTERM, up to `grace`
    seconds for a clean exit, then SIGKILL to its whole process group (workers
    included). Returns its exit status (None if it could not be reaped)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    return proc.returncode

class Gunicorn:
    def __init__(self, proc, port, db, log_path, workers):
        self.proc = proc
        self.port = port
        self.db = db
        self.log_path = log_path
        self.workers = workers
        self.url = "http://127.0.0.1:%d" % port

    @property
    def master(self):
        return self.proc.pid

    def get(self, path, **kw):
        return http(self.url + path, **kw)

    def api(self, path, expect=200):
        r = self.get("/_pyloot" + path)
        assert r.status == expect, (path, r.status, r.body[:500])
        return r.json()

    def worker_pids(self):
        return child_pids(self.master)

    def wait_sampled(self, timeout=30):
        """Waits until every worker has stored its first sample, so that a
        leak made afterwards counts in each one's growth (growth is counted
        from an incarnation's first sample)."""
        def sampled():
            alive = [p for p in self.api("/api/procs")["procs"] if p["alive"]]
            return len(alive) == self.workers and all(p.get("samples", 0) >= 1 for p in alive)

        wait_until(sampled, timeout, message="every worker's first sample")

    def leak_everywhere(self, per_request=5, rounds=3, timeout=60):
        """Concurrent /leak requests that each hold their worker briefly, so
        that they spread over the workers: at least `rounds` rounds, and
        until every worker leaked something (bounded by `timeout` seconds).
        Returns {pid: number leaked there}."""
        leaks = {}
        lock = threading.Lock()

        def one():
            r = self.get("/leak?n=%d&hold=0.3" % per_request)
            assert r.status == 200, r.body
            body = r.json()
            with lock:
                leaks[body["pid"]] = leaks.get(body["pid"], 0) + body["leaked"]

        deadline = time.monotonic() + timeout
        done = 0
        while (done < rounds or len(leaks) < self.workers) and time.monotonic() < deadline:
            threads = [threading.Thread(target=one) for _ in range(self.workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            done += 1
        return leaks

    def block(self, seconds, timeout=30):
        """Sends /block?s=seconds from a thread and waits (up to `timeout`
        seconds) until a worker is serving it and holds its GIL, however long
        the request took to get there. Returns (thread, pid of the stuck
        worker); join the thread. unblock() ends the block before its time."""
        self.blocks = getattr(self, "blocks", 0) + 1
        mark = self.log_path.parent / ("block-%d-%d.pid" % (self.port, self.blocks))
        self.release = mark.with_suffix(".release")
        self.release.write_bytes(b"\0")
        url = "/block?s=%s&mark=%s&release=%s" % (seconds, urllib.parse.quote(str(mark)),
                                                   urllib.parse.quote(str(self.release)))
        thread = threading.Thread(target=self.get, args=(url,), kwargs={"timeout": seconds + 30})
        thread.start()
        wait_until(mark.exists, timeout, interval=0.05, message="a worker to serve /block")
        return thread, int(mark.read_text())

    def unblock(self):
        """Ends the last block (the worker reads the byte in its loop)."""
        with open(self.release, "r+b") as f:
            f.write(b"\1")

    def log(self):
        return read_log(self.log_path)

    def stop(self):
        stop_group(self.proc)


@pytest.fixture
def gc_off():
    """The cyclic gc off (after one collection) for the test, then as it was."""
    enabled = gc.isenabled()
    gc.disable()
    gc.collect()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@pytest.fixture
def gunicorn(tmp_path):
    """Factory: gunicorn(workers=4, worker_class="sync", preload=False, interval=0.5,
    live_timeout=5, args=(), db=None, env=None, app="leaky:app", ready_path="/pid") starts
    tests/python/apps/leaky.py (or the app named, which answers ready_path with a 200) (with
    PYLOOT_DB=db, default a fresh directory, and the variables of env) and waits until every
    worker answers."""
    servers = []

    def start(workers=4, worker_class="sync", preload=False, interval=0.5, live_timeout=5.0, args=(), db=None,
              env=None, app="leaky:app", ready_path="/pid"):
        port = free_port()
        db = db if db is not None else tmp_path / ("store-%d" % len(servers))
        log_path = tmp_path / ("gunicorn-%d.log" % len(servers))
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", worker_class,
               "-b", "127.0.0.1:%d" % port, "--chdir", str(APPS), "--timeout", "60",
               "--graceful-timeout", "5", *args]
        if preload:
            cmd.append("--preload")
        cmd.append(app)
        extra_env = env or {}
        env = dict(os.environ)
        env["PYLOOT_DB"] = str(db)
        env["PYLOOT_TEST_INTERVAL"] = str(interval)
        env["PYLOOT_TEST_LIVE_TIMEOUT"] = str(live_timeout)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        env.update(extra_env)
        log = open(log_path, "wb")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        server = Gunicorn(proc, port, db, log_path, workers)
        servers.append(server)

        def ready():
            if proc.poll() is not None:
                raise AssertionError("gunicorn exited: %s" % server.log()[-3000:])
            if len(server.worker_pids()) != workers:
                return False
            try:
                return server.get(ready_path, timeout=2).status == 200
            except OSError:
                return False

        wait_until(ready, 60, message="gunicorn to start")
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
