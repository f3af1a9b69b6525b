"""Remote mode, worker side: gunicorn workers push to a central `pyloot`
server on loopback; the fleet in one view, live objects through the server,
the central server killed and restarted, hosts with colliding pids."""
import gzip
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import free_port, http, wait_for_pyloot, wait_until
from test_cli import pyloot_exe

from pyloot import _pyloot

LEAK = "leaky.Leak"


# ---- the message format, decoded by the test's own reader of docs/http-api.md ----

def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _string(buf, i):
    n, i = _varint(buf, i)
    return buf[i:i + n].decode(), i + n


def decode(message):
    raw = gzip.decompress(message)
    assert raw[:4] == b"PLS1"
    i = 4
    out = {}
    out["flags"], i = _varint(raw, i)
    out["host"], i = _string(raw, i)
    for key in ("pid", "start", "interval_ms", "rss"):
        out[key], i = _varint(raw, i)
    out["argv"], i = _string(raw, i)
    n, i = _varint(raw, i)
    names = {}
    for _ in range(n):
        local_id, i = _varint(raw, i)
        names[local_id], i = _string(raw, i)
    out["names"] = names
    n, i = _varint(raw, i)
    samples = []
    for _ in range(n):
        t, i = _varint(raw, i)
        k, i = _varint(raw, i)
        entries, ident = [], 0
        for j in range(k):
            delta, i = _varint(raw, i)
            ident = delta if j == 0 else ident + delta
            count, i = _varint(raw, i)
            size, i = _varint(raw, i)
            entries.append((ident, count, size))
        samples.append((t, entries))
    out["samples"] = samples
    assert i == len(raw), "nothing follows the last sample"
    return out


def test_message_format():
    t0 = 1_800_000_000_000
    samples = [(t0, {"a.B": (3, 100), "dict": (10, 2000), "a.C": (1, 56)}),
               (t0 + 1000, {"a.B": (4, 130), "dict": (10, 2000)})]
    m = decode(_pyloot.encode_samples(samples, host_name="web-1", pid=42, start=7, interval=0.5, rss=1 << 20,
                                      argv="gunicorn app", end=True))
    assert m["flags"] == 3  # the end, and a new type-id space (the first message)
    assert (m["host"], m["pid"], m["start"], m["interval_ms"], m["rss"], m["argv"]) == \
        ("web-1", 42, 7, 500, 1 << 20, "gunicorn app")
    assert sorted(m["names"].values()) == ["a.B", "a.C", "dict"]
    got = [(t, {m["names"][i]: (c, b) for i, c, b in entries}) for t, entries in m["samples"]]
    assert got == samples
    for _, entries in m["samples"]:
        ids = [e[0] for e in entries]
        assert ids == sorted(set(ids))
    # Once announced, names are not sent again.
    steady = decode(_pyloot.encode_samples(samples, announced=True))
    assert steady["flags"] == 0 and steady["names"] == {}


def test_bad_arguments():
    from pyloot import HTTPRemoteBackend, PyLoot
    with pytest.raises(ValueError):
        HTTPRemoteBackend("127.0.0.1", 0)
    with pytest.raises(ValueError):
        HTTPRemoteBackend("127.0.0.1", 8000, host_name="x" * 64)
    with pytest.raises(ValueError):
        PyLoot(host="127.0.0.1")
    loot = PyLoot(host="127.0.0.1", port=9, host_name="h1")
    assert loot.backend.path is None and loot.backend.host_name == "h1"
    with pytest.raises(RuntimeError):
        loot.collect_objects()


# ---- a central server and gunicorn workers pushing to it ----

TOKEN = "s3cret-of-the-fleet"


class Central:
    """A central server; with `token` (given as PYLOOT_TOKEN), the only kind
    that forwards live-object queries to pushing workers. Its workers need
    the same token (worker_env)."""

    def __init__(self, db, log_path, token=None):
        self.db = db
        self.log_path = log_path
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.token = token
        self.auth = {"Authorization": "Bearer " + token} if token else {}
        self.proc = None

    def worker_env(self, **env):
        """The environment of a worker pushing here."""
        return dict(env, PYLOOT_TEST_REMOTE="127.0.0.1:%d" % self.port, PYLOOT_TOKEN=self.token or "")

    def start(self):
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYLOOT_TOKEN=self.token or "")
        self.proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(self.port), "--db", str(self.db)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        log.close()

        wait_for_pyloot(self.url, 20, message="the central server to answer", proc=self.proc, headers=self.auth,
                        why_exited=lambda: open(self.log_path, errors="replace").read()[-2000:])

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def get_raw(self, path, **kw):
        return http(self.url + path, headers=self.auth, **kw)

    def api(self, path, expect=200):
        r = http(self.url + path, headers=self.auth)
        assert r.status == expect, (path, r.status, r.body[:500])
        return r.json()

    def leak_count(self, pid=None, host=None):
        query = "/api/history?q=%s&sort=count&limit=10" % LEAK
        if pid:
            query += "&pid=%d" % pid
        if host:
            query += "&host=%s" % host
        types = {t["name"]: t for t in self.api(query)["types"]}
        return types[LEAK]["count"] if LEAK in types else 0

    def alive(self):
        return sorted((p["host"], p["pid"]) for p in self.api("/api/procs")["procs"] if p["alive"])


@pytest.fixture
def central(tmp_path):
    c = Central(tmp_path / "central-db", tmp_path / "central.log", token=TOKEN)
    c.start()
    yield c
    c.kill()


def test_fleet(central, gunicorn):
    a = gunicorn(workers=2, interval=0.3, env=central.worker_env(PYLOOT_HOST_NAME="host-a"))
    b = gunicorn(workers=2, interval=0.3, env=central.worker_env(PYLOOT_HOST_NAME="host-b"))
    leaks = {("host-a", pid): n for pid, n in a.leak_everywhere(per_request=7, rounds=2).items()}
    leaks.update({("host-b", pid): n for pid, n in b.leak_everywhere(per_request=5, rounds=2).items()})
    workers = sorted([("host-a", p) for p in a.worker_pids()] + [("host-b", p) for p in b.worker_pids()])
    assert sorted(leaks) == workers, "every worker of both servers leaked something"
    total = sum(leaks.values())

    wait_until(lambda: central.alive() == workers, 20, message="the 4 workers alive in the central /api/procs")
    wait_until(lambda: central.leak_count() == total, 20, message="merged count == %d" % total)
    for (host, pid), n in leaks.items():
        assert central.leak_count(pid, host) == n
    procs = central.api("/api/procs")["procs"]
    assert all(p["remote"] for p in procs)
    # Each pushed worker's collector stats arrive with its pushes.
    def stats_arrived():
        alive = [p for p in central.api("/api/procs")["procs"] if p["alive"]]
        return len(alive) == 4 and all(0 < p["collection_seconds"] < 10 and p["gil_held_seconds_total"] > 0
                                       for p in alive)
    wait_until(stats_arrived, 10, message="every pushed worker's collection and GIL seconds")
    text = http(central.url + "/metrics", headers=central.auth).body.decode()
    for host, pid in workers:
        assert 'pyloot_gil_held_seconds_total{pid="%d",host="%s"} ' % (pid, host) in text

    # A worker's own /_pyloot shows the central, fleet-wide view.
    for server in (a, b):
        r = server.get("/_pyloot/api/procs", headers=central.auth)
        assert r.status == 200, r.body[:500]
        view = r.json()
        assert sorted((p["host"], p["pid"]) for p in view["procs"] if p["alive"]) == workers
        assert server.get("/_pyloot/").status == 200

    # Live objects of one worker, through the central server.
    host, pid = max(leaks, key=leaks.get)
    listing = central.api("/api/objects?pid=%d&host=%s&group=%s&limit=5" % (pid, host, LEAK))
    assert listing["pid"] == pid and listing["total"] == leaks[(host, pid)]
    obj = listing["objects"][0]
    detail = central.api("/api/objects/%s?pid=%d&host=%s" % (obj["id"], pid, host))
    assert detail["id"] == obj["id"] and "leak-" in json.dumps(detail)
    path = central.api("/api/objects/%s/path?pid=%d&host=%s" % (obj["id"], pid, host))
    assert "LEAKS" in json.dumps(path)
    assert central.api("/api/objects/1/path?pid=%d&host=%s" % (pid, host), expect=404)
    # Retained sizes too: the worker builds its dominator tree and answers through the server.
    suspects = central.api("/api/suspects?pid=%d&host=%s&group=%s&n=1" % (pid, host, LEAK))
    assert suspects["pid"] == pid and suspects["instances"] == leaks[(host, pid)]
    assert suspects["suspects"][0]["count"] == leaks[(host, pid)]
    retainers = central.api("/api/retainers?pid=%d&host=%s&limit=3" % (pid, host))
    assert retainers["pid"] == pid and retainers["id"] is None and retainers["objects"]
    # Asyncio tasks too (a sync worker: none, and every state counted).
    tasks = central.api("/api/tasks?pid=%d&host=%s&state=all" % (pid, host))
    assert tasks["pid"] == pid and tasks["state"] == "all" and tasks["tasks"] == sum(tasks["states"].values())

    # The central server killed: the apps answer every request within 0.5 s.
    before = {w: central.api("/api/history?pid=%d&host=%s&workers=1&q=%s" % (w[1], w[0], LEAK)) for w in workers}
    central.kill()
    slowest = 0.0
    deadline = time.monotonic() + 3.0
    leaked_meanwhile = dict(leaks)
    while time.monotonic() < deadline:
        for server, host in ((a, "host-a"), (b, "host-b")):
            t0 = time.monotonic()
            r = server.get("/leak?n=3", timeout=5)
            slowest = max(slowest, time.monotonic() - t0)
            assert r.status == 200
            body = r.json()
            leaked_meanwhile[(host, body["pid"])] += 3
    assert slowest < 0.5, "an app request took %.3f s while the central server was down" % slowest
    down = a.get("/_pyloot/api/procs", timeout=10)
    assert down.status == 502 and "127.0.0.1:%d" % central.port in down.json()["error"]
    assert "unreachable" in a.log() and "buffering samples" in a.log()

    # Restarted on the same store: nothing lost, and the counts catch up.
    central.start()
    total = sum(leaked_meanwhile.values())
    wait_until(lambda: central.leak_count() == total, 30, message="merged count to catch up to %d" % total)
    for (host, pid), n in leaked_meanwhile.items():
        assert central.leak_count(pid, host) == n
    for (host, pid), old in before.items():
        new = central.api("/api/history?pid=%d&host=%s&workers=1&q=%s" % (pid, host, LEAK))
        assert new["times"][:1] == old["times"][:1], "the oldest sample is still there"
        assert len(new["times"]) >= len(old["times"])
    wait_until(lambda: "reachable again" in a.log() and "reachable again" in b.log(), 10,
               message="the outage end logged")


def _push(central, message):
    return http(central.url + "/api/samples", method="POST", data=message,
                headers=dict(central.auth, **{"Content-Type": "application/x-pyloot-samples",
                                               "Content-Encoding": "gzip"}))


def test_colliding_pids_on_two_hosts(central):
    """Two hosts whose workers have the same pid and start (the host-name
    override, pids faked in the messages) are kept apart."""
    now = int(time.time() * 1000)
    for host, n in (("box-1", 11), ("box-2", 22)):
        msg = _pyloot.encode_samples([(now - 500, {LEAK: (n, n * 56)}), (now, {LEAK: (n + 1, n * 56)})],
                                     host_name=host, pid=4242, start=99, interval=1.0)
        r = _push(central, msg)
        assert r.status == 200 and r.json() == {"accepted": 2}, r.body
    assert central.alive() == [("box-1", 4242), ("box-2", 4242)]
    assert central.leak_count(4242, "box-1") == 12
    assert central.leak_count(4242, "box-2") == 23
    assert central.leak_count() == 35
    # An end flag ends one of them only.
    r = _push(central, _pyloot.encode_samples([], host_name="box-1", pid=4242, start=99, end=True,
                                                  announced=True))
    assert r.status == 200
    assert central.alive() == [("box-2", 4242)]


def test_worker_survives_an_absent_central_server(tmp_path):
    """No central server at all: the worker buffers with a bounded queue,
    drops the oldest and counts them, and exits at once."""
    port = free_port()
    code = (
        "import time, sys\n"
        "from pyloot import PyLoot\n"
        "p = PyLoot(host='127.0.0.1', port=%d, interval=0.05, host_name='lonely', remote_buffer=4)\n"
        "p.start()\n"
        "time.sleep(1.0)\n"
        "s = p.stats()['remote']\n"
        "print(s['queued'], s['dropped'], s['outage'], s['failures'])\n"
        "t0 = time.monotonic()\n"
        "p.stop(blocking=True)\n"
        "print('%%.3f' %% (time.monotonic() - t0))\n" % port)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in __import__("sys").path if p and os.path.isdir(p)))
    t0 = time.monotonic()
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, timeout=30,
                         env=env)
    assert out.returncode == 0, out.stderr
    queued, dropped, outage, failures = out.stdout.split()[:4]
    assert int(queued) == 4 and int(dropped) > 0 and outage == "True" and 1 <= int(failures) <= 3
    assert float(out.stdout.split()[4]) < 0.5
    assert out.stderr.count("unreachable") == 1, out.stderr
    assert time.monotonic() - t0 < 10


def test_colliding_real_pids_in_pid_namespaces(central, tmp_path):
    """Two real workers with the same pid (each pid 1 of a PID namespace the
    test makes, `unshare --pid`), told apart by their host names
    (PYLOOT_HOST_NAME)."""
    import shutil
    import sys
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"],
                                     capture_output=True, timeout=10).returncode != 0:
        pytest.skip("unshare --pid --mount-proc is not permitted here (needs root); "
                    "test_colliding_pids_on_two_hosts covers the host-name override")
    stop = tmp_path / "stop"
    code = (
        "import os, sys, time\n"
        "from pyloot import PyLoot\n"
        "class Leak: pass\n"
        "sys.modules['leaky'] = sys.modules[__name__]\n"
        "Leak.__module__ = 'leaky'\n"
        "keep = [Leak() for _ in range(int(sys.argv[1]))]\n"
        "p = PyLoot(host='127.0.0.1', port=%d, interval=0.2, token=%r)\n"
        "p.start()\n"
        "deadline = time.monotonic() + 30\n"
        "while not os.path.exists(%r) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "p.stop(blocking=True)\n" % (central.port, central.token, str(stop)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
    procs = []
    try:
        for host, n in (("ns-a", 31), ("ns-b", 47)):
            procs.append(subprocess.Popen([unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", code,
                                           str(n)], env=dict(env, PYLOOT_HOST_NAME=host),
                                          start_new_session=True, stderr=subprocess.PIPE))
        alive = wait_until(lambda: len(central.alive()) == 2 and central.alive(), 20, message="both workers alive")
        assert [h for h, _ in alive] == ["ns-a", "ns-b"]
        assert alive[0][1] == alive[1][1], "the same pid in both namespaces"
        pid = alive[0][1]
        wait_until(lambda: central.leak_count(pid, "ns-a") == 31 and central.leak_count(pid, "ns-b") == 47, 20,
                   message="each host's count")
        listing = central.api("/api/objects?pid=%d&host=ns-b&group=%s&limit=1" % (pid, LEAK))
        assert listing["total"] == 47
        stop.write_text("")
        for p in procs:
            p.wait(timeout=15)
        wait_until(lambda: central.alive() == [], 10, message="both ended cleanly")
    finally:
        stop.write_text("")
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
