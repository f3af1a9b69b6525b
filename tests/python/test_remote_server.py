"""The central `pyloot` server of remote mode, pushed to by the test's own
encoder (remote_push.py): incarnations of two hosts kept apart, liveness,
restarts, live objects through the long poll, and every bad input."""
import gzip
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port, http, stop_group, wait_until
from remote_push import ENDED, NEW_SPACE, headers, message, now_ms, push, uv
from test_cli import pyloot_exe


class Central:
    def __init__(self, db, token=None, read_only=False):
        self.db = db
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.token = token
        args = [pyloot_exe(), "-h", "127.0.0.1", "-p", str(self.port), "--db", db]
        if token:
            args += ["--token", token]
        if read_only:
            args.append("--read-only")
        env = dict(os.environ, PYLOOT_POLL_MS="1500")
        env.pop("PYLOOT_TOKEN", None)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     start_new_session=True)
        wait_until(self.up, 20, message="pyloot to listen")

    def up(self):
        try:
            return http(self.url + "/static/app.js", timeout=2).status in (200, 404)
        except OSError:
            return self.proc.poll() is not None and pytest.fail(self.proc.stderr.read().decode())

    def get(self, path, **kw):
        h = kw.pop("headers", {})
        if self.token:
            h.setdefault("Authorization", "Bearer " + self.token)
        return http(self.url + path, headers=h, **kw)

    def push(self, msg, **kw):
        kw.setdefault("token", self.token)
        return push(http, self.url, msg, **kw)

    def procs(self):
        return self.get("/api/procs").json()["procs"]

    def stop(self):
        stop_group(self.proc)
        return self.proc.stderr.read().decode()


@pytest.fixture
def central(tmp_path):
    c = Central(str(tmp_path / "central"))
    yield c
    c.stop()


TOKEN = "s3cret-of-the-fleet"


@pytest.fixture
def token_central(tmp_path):
    """A central server with a token: the only kind that forwards live-object
    queries to pushing workers (a tokenless one cannot tell a worker from a
    forger)."""
    c = Central(str(tmp_path / "central"), token=TOKEN)
    yield c
    c.stop()


TYPES = {1: "app.Session", 2: "builtins.dict"}


def sample(t, sessions, dicts=10):
    return (t, {1: (sessions, sessions * 48), 2: (dicts, dicts * 232)})


def test_two_hosts_with_colliding_pids_stay_apart(central):
    t = now_ms()
    for host, n in (("web-1", 10), ("web-2", 32)):
        r = central.push(message(host, 4242, 777, TYPES, [sample(t - 2000, n - 1), sample(t - 1000, n)]))
        assert r.status == 200, r.body
        assert r.json() == {"accepted": 2}
    procs = central.procs()
    assert len(procs) == 2
    assert {p["host"] for p in procs} == {"web-1", "web-2"}
    for p in procs:
        assert p["pid"] == 4242 and p["remote"] is True and p["alive"] is True
        # 64-bit values as strings: a stored start (2^63 + n) would not survive a JavaScript number.
        assert p["worker_start"] == "777" and p["start"] != "777" and p["samples"] == 2
        assert int(p["start"]) >= 1 << 63
    assert procs[0]["start"] != procs[1]["start"]
    merged = central.get("/api/history?q=app.Session").json()
    assert merged["types"][0]["count"] == 42
    for host, n in (("web-1", 10), ("web-2", 32)):
        h = central.get("/api/history?q=app.Session&pid=4242&host=" + host).json()
        assert h["types"][0]["count"] == n
        assert h["host"] == host
    r = central.get("/api/history?pid=4242&host=web-9")
    assert r.status == 404 and "web-9" in r.json()["error"]
    # pid= alone would answer for one of them: refused, naming the hosts.
    r = central.get("/api/history?q=app.Session&pid=4242")
    assert r.status == 400 and "web-1" in r.json()["error"] and "web-2" in r.json()["error"]
    lines = central.get("/api/history?q=app.Session&workers=1").json()["types"][0]["workers"]
    assert sorted((w["host"], w["counts"][-1]) for w in lines) == [("web-1", 10), ("web-2", 32)]
    r = central.get("/api/history?host=" + "x" * 64)
    assert r.status == 400


def test_heartbeat_and_clean_end(token_central):
    central = token_central
    t = now_ms()
    assert central.push(message("h", 7, 1, TYPES, [sample(t, 1)])).status == 200
    # A heartbeat: no samples, no new space (the id map is known), rss updated.
    r = central.push(message("h", 7, 1, flags=0, rss=12345))
    assert r.status == 200 and r.json() == {"accepted": 0}
    (p,) = central.procs()
    assert p["rss"] == 12345 and p["alive"] and p["samples"] == 1
    # Without the optional stats (an older worker) they read 0; with them, stored and exported.
    assert p["collection_seconds"] == 0 and p["gil_held_seconds_total"] == 0
    r = central.push(message("h", 7, 1, flags=0, rss=12345, stats=(41000, 2500000)))
    assert r.status == 200 and r.json() == {"accepted": 0}
    (p,) = central.procs()
    assert p["collection_seconds"] == 0.041 and p["gil_held_seconds_total"] == 2.5
    text = central.get("/metrics").body.decode()
    assert 'pyloot_collection_seconds{pid="7",host="h"} 0.041000\n' in text
    assert 'pyloot_gil_held_seconds_total{pid="7",host="h"} 2.500000\n' in text
    # A clean end is dead at once, and its poll is a 404.
    r = central.push(message("h", 7, 1, flags=ENDED, samples=[sample(t + 1, 2)]))
    assert r.status == 200 and r.json() == {"accepted": 1}
    (p,) = central.procs()
    assert not p["alive"] and p["ended"] is not None
    assert central.get("/api/remote/poll?host=h&pid=7&start=1").status == 404


def test_concurrent_pushers_are_all_stored_once_in_order(central):
    # Group commit: pushes that arrive while a transaction commits go into the
    # next one. 16 workers (more than the server's HTTP threads; one pid on
    # every host) push 8 samples each at once; every push is answered only
    # once stored, and each worker's series is exactly its own, in order.
    n_workers, n_pushes = 16, 8
    t0 = (now_ms() // 1000 - 60) * 1000  # whole seconds: the history's time axis
    results = {w: [] for w in range(n_workers)}

    def run(w):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", central.port, timeout=30)
        try:
            host = "pusher-%d" % w
            for k in range(n_pushes + 1):
                if k == 0:
                    msg = message(host, 4000, 5, TYPES)
                else:
                    msg = message(host, 4000, 5, None, [sample(t0 + k * 1000, 100 * w + k, dicts=k)], flags=0)
                conn.request("POST", "/api/samples", body=gzip.compress(msg), headers=headers())
                r = conn.getresponse()
                results[w].append((r.status, json.loads(r.read())))
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(n_workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    for w in range(n_workers):
        assert results[w] == [(200, {"accepted": 0})] + [(200, {"accepted": 1})] * n_pushes, results[w]
    procs = central.procs()
    assert sorted(p["host"] for p in procs) == sorted("pusher-%d" % w for w in range(n_workers))
    assert all(p["samples"] == n_pushes and p["pid"] == 4000 for p in procs)
    for w in range(n_workers):
        h = central.get("/api/history?q=app.Session&pid=4000&host=pusher-%d" % w).json()
        assert h["times"] == [(t0 + k * 1000) / 1000 for k in range(1, n_pushes + 1)]
        assert h["types"][0]["counts"] == [100 * w + k for k in range(1, n_pushes + 1)]


def test_silent_worker_dies_after_its_heartbeat_window(central):
    # interval 1 s: 3 intervals are under the 10 s floor, so alive for 10 s after the push.
    assert central.push(message("h", 8, 1, TYPES, [sample(now_ms(), 1)], interval_ms=1000)).status == 200
    assert central.procs()[0]["alive"]
    wait_until(lambda: not central.procs()[0]["alive"], 14, interval=0.5, message="the silent worker to die")


def test_restart_keeps_everything_and_asks_to_reannounce(tmp_path):
    db = str(tmp_path / "central")
    c = Central(db)
    t = now_ms()
    try:
        assert c.push(message("web-1", 11, 5, TYPES, [sample(t - 3000, 3), sample(t - 2000, 4)])).status == 200
        start = c.procs()[0]["start"]
    finally:
        c.stop()
    c = Central(db)
    try:
        (p,) = c.procs()
        assert p["start"] == start and p["samples"] == 2 and p["host"] == "web-1"
        # The id map was in memory: the next push is a 409 that asks to announce again.
        r = c.push(message("web-1", 11, 5, flags=0, samples=[sample(t - 1000, 5)]))
        assert r.status == 409 and r.json()["reannounce"] is True
        assert c.procs()[0]["samples"] == 2
        r = c.push(message("web-1", 11, 5, TYPES, [sample(t - 1000, 5)]))
        assert r.status == 200 and r.json() == {"accepted": 1}
        (p,) = c.procs()
        assert p["start"] == start and p["samples"] == 3
        counts = c.get("/api/history?q=app.Session&pid=11").json()["types"][0]["counts"]
        assert counts == [3, 4, 5]
    finally:
        c.stop()


def test_live_objects_through_the_long_poll(token_central):
    central = token_central
    t = now_ms()
    assert central.push(message("web-2", 99, 3, TYPES, [sample(t, 1)])).status == 200
    # Nothing waiting: the poll answers 204 after its wait (1.5 s in tests).
    started = time.monotonic()
    r = central.get("/api/remote/poll?host=web-2&pid=99&start=3")
    assert r.status == 204 and 1.0 < time.monotonic() - started < 5
    seen = {}

    def worker():
        r = central.get("/api/remote/poll?host=web-2&pid=99&start=3", timeout=30)
        seen["query"] = r.body.decode()
        seen["status"] = r.status
        ticket = r.headers["X-Pyloot-Ticket"]
        answer = json.dumps({"pid": 99, "total": 1, "objects": [{"id": 5, "repr": "<Session>"}]}).encode()
        rep = central.get("/api/remote/reply?ticket=" + ticket, method="POST", data=gzip.compress(answer),
                          headers={"X-Pyloot-Status": "200", "Content-Encoding": "gzip"})
        seen["reply"] = rep.status

    th = threading.Thread(target=worker)
    th.start()
    time.sleep(0.3)  # the poll is parked first
    r = central.get("/api/objects?group=app.Session&pid=99&limit=5")
    th.join(30)
    assert seen["status"] == 200 and seen["reply"] == 200
    assert seen["query"].startswith("1 0 0 5 app.Session")
    assert r.status == 200 and r.json()["objects"][0]["repr"] == "<Session>"
    # A reply for a withdrawn or unknown ticket.
    assert central.get("/api/remote/reply?ticket=999999", method="POST", data=b"{}",
                       headers={"X-Pyloot-Status": "200"}).status == 404
    # Nobody polls: 504 naming the worker, after the live timeout.
    r = central.get("/api/objects/5?pid=99&host=web-2")
    assert r.status == 504 and "worker 99 on host web-2" in r.json()["error"]
    # Dead or unknown: 404; no pid: 400.
    assert central.get("/api/objects/5?pid=98").status == 404
    assert central.get("/api/objects?group=x").status == 400


def test_same_pid_on_two_hosts_needs_host_for_live_objects(token_central):
    central = token_central
    t = now_ms()
    for host in ("a", "b"):
        assert central.push(message(host, 50, 1, TYPES, [sample(t, 1)])).status == 200
    r = central.get("/api/objects/1?pid=50")
    assert r.status == 400 and "host=" in r.json()["error"]


LIVE_ROUTES = ["/api/objects?group=app.Session&pid=99&limit=5", "/api/objects/5?pid=99&host=web-2",
               "/api/objects/5/path?pid=99", "/api/suspects?pid=99&group=app.Session", "/api/retainers?pid=99",
               "/api/tasks?pid=99&host=web-2"]


def test_tokenless_server_forwards_no_live_query(central):
    """Without a token, a poll could come from anyone: the server forwards
    no query to a pushing worker, refuses polls and replies, says so at
    start, and keeps taking pushes and answering counts."""
    t = now_ms()
    assert central.push(message("web-2", 99, 3, TYPES, [sample(t, 4)])).status == 200
    assert central.get("/api/history?q=app.Session").json()["types"][0]["count"] == 4
    for path in LIVE_ROUTES:
        r = central.get(path)
        assert r.status == 403, (path, r.status, r.body)
        error = r.json()["error"]
        assert "no token" in error and "forged" in error and "--token" in error and "PYLOOT_TOKEN" in error
    # A forger polling as the worker, and answering a guessed ticket: refused.
    r = central.get("/api/remote/poll?host=web-2&pid=99&start=3")
    assert r.status == 403 and "X-Pyloot-Ticket" not in r.headers and "--token" in r.json()["error"]
    for ticket in (1, 2, 12345):
        r = central.get("/api/remote/reply?ticket=%d" % ticket, method="POST", data=b'{"objects": []}',
                        headers={"X-Pyloot-Status": "200"})
        assert r.status == 403
    assert central.push(message("web-2", 99, 3, flags=0, samples=[sample(t + 1, 5)])).status == 200
    err = central.stop()
    assert "pyloot: no token: live objects of pushing workers are off" in err and "--token" in err


def test_forger_cannot_poll_or_answer_and_tickets_are_random(token_central):
    """With a token, a forger without it gets 401 for polls and replies;
    tickets are 64 random bits, so one cannot be guessed from the last."""
    central = token_central
    assert central.push(message("web-2", 99, 3, TYPES, [sample(now_ms(), 1)])).status == 200
    answers = {}

    def ask(i):
        answers[i] = central.get("/api/objects/%d?pid=99&host=web-2" % (100 + i), timeout=30)

    askers = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for th in askers:
        th.start()
        time.sleep(0.2)  # posted one after the other
    forger = http(central.url + "/api/remote/poll?host=web-2&pid=99&start=3")
    assert forger.status == 401 and "X-Pyloot-Ticket" not in forger.headers
    tickets = []
    for i in range(2):
        r = central.get("/api/remote/poll?host=web-2&pid=99&start=3", timeout=10)
        assert r.status == 200, r.body
        assert r.body.decode().startswith("2 %d " % (100 + i)), "taken in the order asked"
        tickets.append(int(r.headers["X-Pyloot-Ticket"]))
    assert all(0 < t < 2 ** 64 for t in tickets)
    assert abs(tickets[1] - tickets[0]) > 2 ** 20, tickets
    for t in (tickets[0], tickets[0] + 1, tickets[1] - 1):
        r = http(central.url + "/api/remote/reply?ticket=%d" % t, method="POST", data=b'{"forged": true}',
                 headers={"X-Pyloot-Status": "200", "Authorization": "Bearer wrong"})
        assert r.status == 401
    for t in (tickets[0] + 1, tickets[1] + 1):
        if t not in tickets:
            r = central.get("/api/remote/reply?ticket=%d" % t, method="POST", data=b"{}",
                            headers={"X-Pyloot-Status": "200"})
            assert r.status == 404
    for i, t in enumerate(tickets):
        r = central.get("/api/remote/reply?ticket=%d" % t, method="POST", data=json.dumps({"id": 100 + i}).encode(),
                        headers={"X-Pyloot-Status": "200"})
        assert r.status == 200
    for th in askers:
        th.join(30)
    assert [answers[i].status for i in range(2)] == [200, 200]
    assert [answers[i].json() for i in range(2)] == [{"id": 100}, {"id": 101}]


def announce_only(port, length, hdrs):
    """Sends only the headers of a POST announcing `length` bytes; returns the status and JSON answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        lines = ["POST /api/samples HTTP/1.1", "Host: x", "Content-Length: %d" % length]
        lines += ["%s: %s" % kv for kv in hdrs.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def bomb():
    return gzip.compress(message("h", 1, 1) + b"\0" * (17 << 20))


BAD = [
    # (name, body, headers change, status, error text)
    ("malformed binary", gzip.compress(b"PLS1\xff"), None, 400, "malformed"),
    ("bad magic", gzip.compress(b"JSON{}"), None, 400, "PLS1"),
    ("trailing bytes", gzip.compress(message("h", 1, 1) + b"\0"), None, 400, "follow"),
    ("bad gzip", b"\x1f\x8b\x08\x00garbage", None, 400, "gzip"),
    ("collection time over a day", gzip.compress(message("h", 1, 1, stats=(86400 * 10 ** 6 + 1, 1))), None, 400,
     "collection_us"),
    ("not gzip", message("h", 1, 1), None, 400, "gzip"),
    ("gzip bomb", None, None, 413, "16 MiB"),
    ("body over the limit", b"\0" * ((4 << 20) + 1), None, 413, "4 MiB"),
    ("never-announced type id", gzip.compress(message("h", 1, 1, {1: "a.A"}, [(now_ms(), {2: (1, 1)})])), None,
     409, "never announced"),
    ("time far in the future", gzip.compress(message("h", 1, 1, TYPES, [sample(now_ms() + 3600 * 1000, 1)])),
     None, 400, "10 minutes"),
    ("time before 2020", gzip.compress(message("h", 1, 1, TYPES, [sample(1000, 1)])), None, 400, "2020"),
    ("duplicate id in a sample", gzip.compress(message("h", 1, 1, TYPES) [:-1] + uv(1) + uv(now_ms()) + uv(2) +
                                               b"\x01\x01\x01\x00\x01\x01"), None, 400, "twice"),
    ("JSON instead of the binary message", b'{"objects": []}', {"Content-Type": "application/json",
                                                                "Content-Encoding": "identity"}, 415,
     "application/x-pyloot-samples"),
    ("no Content-Encoding", gzip.compress(message("h", 1, 1)), {"Content-Encoding": None}, 415, "gzip"),
]


@pytest.mark.parametrize("name,body,change,status,text", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_and_stores_nothing(central, name, body, change, status, text):
    h = headers()
    for k, v in (change or {}).items():
        if v is None:
            h.pop(k)
        else:
            h[k] = v
    if body is None:
        body = bomb()
    if len(body) > 4 << 20:
        # Refused from its Content-Length, before the body is read.
        got, answer = announce_only(central.port, len(body), h)
    else:
        r = http(central.url + "/api/samples", headers=h, method="POST", data=body)
        got, answer = r.status, r.json()
    assert got == status, answer
    assert text in answer["error"]
    if status == 409:
        assert answer["reannounce"] is True
    assert central.procs() == []
    # The server keeps answering the others.
    assert central.push(message("ok", 2, 2, TYPES, [sample(now_ms(), 1)])).status == 200


def test_token_is_needed_for_pushes_and_reads(tmp_path):
    c = Central(str(tmp_path / "central"), token="s3cret")
    try:
        msg = message("h", 3, 3, TYPES, [sample(now_ms(), 1)])
        r = push(http, c.url, msg, token="wrong")
        assert r.status == 401 and "token" in r.json()["error"]
        assert push(http, c.url, msg).status == 401
        assert http(c.url + "/api/procs").status == 401
        assert http(c.url + "/api/remote/poll?host=h&pid=3&start=3").status == 401
        assert c.procs() == []
        assert c.push(msg).status == 200
        assert len(c.procs()) == 1
        assert http(c.url + "/").status == 200  # the UI page itself loads
    finally:
        c.stop()


def test_read_only_server_takes_no_push(tmp_path):
    db = str(tmp_path / "central")
    c = Central(db)
    c.push(message("h", 4, 4, TYPES, [sample(now_ms(), 1)]))
    c.stop()
    c = Central(db, read_only=True)
    try:
        r = c.push(message("h", 4, 4, TYPES, [sample(now_ms(), 2)]))
        assert r.status == 403 and "read-only" in r.json()["error"]
        assert c.get("/api/remote/poll?host=h&pid=4&start=4").status == 403
        (p,) = c.procs()
        assert p["samples"] == 1
    finally:
        c.stop()


def test_default_store_directory_is_created_and_printed(tmp_path):
    port = free_port()
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop("PYLOOT_DB", None)
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port)], stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        wait_until(lambda: os.path.exists(str(tmp_path / "xdg" / "pyloot" / "data.mdb")), 20,
                   message="the default store")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert "pyloot: store %s" % (tmp_path / "xdg" / "pyloot") in proc.stderr.read().decode()


def test_name_floods_are_refused_with_their_bound(central):
    # docs/http-api.md, "POST /api/samples": 32,768 names a push, 65,536
    # names new to one incarnation over its life; each refusal is a 413 that
    # names its bound, and stores nothing of the push.
    t = now_ms()
    flood = {i: "flood.T%d" % i for i in range(1, 32770)}
    r = central.push(message("evil", 666, 1, flood, [(t, {1: (1, 16)})]))
    assert r.status == 413, r.body
    assert r.json()["bound"] == "types_per_push"
    assert [p for p in central.procs() if p["host"] == "evil"] == []
    # Two pushes of 30,000 new names, then a third is past 65,536.
    for k in range(2):
        names = {k * 30000 + i: "wave%d.T%d" % (k, i) for i in range(1, 30001)}
        r = central.push(message("evil", 667, 1, names, [(t + k, {k * 30000 + 1: (1, 16)})],
                                 flags=NEW_SPACE if k == 0 else 0))
        assert r.status == 200, r.body
    names = {60000 + i: "wave2.T%d" % i for i in range(1, 10001)}
    r = central.push(message("evil", 667, 1, names, [(t + 2, {60001: (1, 16)})], flags=0))
    assert r.status == 413, r.body
    assert r.json()["bound"] == "types_per_worker"
    # A worker announcing its names again (a new space) is never charged twice.
    for k in range(3):
        r = central.push(message("good", 42, 1, TYPES, [sample(t + k, 3)]))
        assert r.status == 200, r.body
