"""Where users run pyloot, each with a real server on loopback: FastAPI with
the native ASGI app under gunicorn's UvicornWorker and under uvicorn's own
workers, Django and Flask under gunicorn, and the pyloot command; through
the access rule (token, allow callable, the default rule) and /metrics
parsed by prometheus_client's own parser."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import APPS, free_port, http, read_log, stop_group, wait_until

TOKEN = "t0k-" + "x" * 28
AUTH = {"Authorization": "Bearer " + TOKEN}
PUBLIC_XFF = {"X-Forwarded-For": "203.0.113.7"}


class Server:
    """A server process (gunicorn or uvicorn) in its own session."""

    def __init__(self, proc, port, db, log_path, workers, prefix="/_pyloot"):
        self.proc = proc
        self.port = port
        self.db = db
        self.log_path = log_path
        self.workers = workers
        self.url = "http://127.0.0.1:%d" % port
        self.base = self.url + prefix
        self.totals = {}  # pid -> objects that worker holds in LEAKS, as /leak answered

    def get(self, path, headers=None, **kw):
        return http(self.url + path, headers=headers, **kw)

    def api(self, path, headers=AUTH, expect=200):
        r = http(self.base + path, headers=headers)
        assert r.status == expect, (path, r.status, r.body[:500])
        return r.json()

    def alive_pids(self, headers=AUTH):
        return sorted(p["pid"] for p in self.api("/api/procs", headers)["procs"] if p["alive"])

    def leak_everywhere(self, per_request=7, timeout=40):
        """Concurrent /leak requests until every worker leaked; {pid: leaked}."""
        leaks, lock = {}, threading.Lock()

        def one():
            body = self.get("/leak?n=%d&hold=0.3" % per_request).json()
            with lock:
                leaks[body["pid"]] = leaks.get(body["pid"], 0) + body["leaked"]
                self.totals[body["pid"]] = max(self.totals.get(body["pid"], 0), body["total"])

        deadline = time.monotonic() + timeout
        while len(leaks) < self.workers and time.monotonic() < deadline:
            threads = [threading.Thread(target=one) for _ in range(self.workers * 2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
        assert len(leaks) == self.workers, leaks
        return leaks

    def count(self, name, headers=AUTH, pid=None):
        query = "/api/history?q=%s&sort=count&limit=20" % name + ("&pid=%d" % pid if pid else "")
        for t in self.api(query, headers)["types"]:
            if t["name"] == name:
                return t["count"]
        return 0

    def log(self):
        return read_log(self.log_path)

    def stop(self):
        stop_group(self.proc)


def start_server(tmp, argv, workers, token=TOKEN, chdir=APPS, env_extra=None, ready_headers=AUTH):
    """Starts argv (a module run with this interpreter) with PYLOOT_DB in tmp,
    and waits until `workers` live workers are in the store."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    db = tmp / "store"
    log_path = tmp / "server.log"
    env = dict(os.environ)
    env.update(PYLOOT_DB=str(db), PYLOOT_TEST_INTERVAL="0.5", PYLOOT_TEST_TOKEN=token or "",
               PYTHONPATH=os.pathsep.join([str(chdir)] + [p for p in sys.path if p and os.path.isdir(p)]))
    env.pop("PYLOOT_TOKEN", None)
    env.update(env_extra or {})
    cmd = [sys.executable, "-m"] + [a.replace("{port}", str(port)) for a in argv]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=str(chdir), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Server(proc, port, db, log_path, workers)

    def ready():
        if proc.poll() is not None:
            raise AssertionError("the server exited: %s" % server.log()[-3000:])
        try:
            r = http(server.base + "/api/procs", headers=ready_headers, timeout=2)
        except OSError:
            return False
        return r.status == 200 and sum(p["alive"] for p in r.json()["procs"]) == workers

    try:
        wait_until(ready, 60, message="%s to start with %d workers" % (argv[0], workers))
    except BaseException:
        server.stop()
        raise
    return server


def metrics(server, headers=AUTH, query=""):
    from prometheus_client.parser import text_string_to_metric_families
    r = http(server.base + "/metrics" + query, headers=headers)
    assert r.status == 200, r.body[:300]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.body.decode()):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def metric_value(samples, name, **labels):
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def assert_token_rule(server, live_path, live_ok=200):
    """401 without a token, 200 with it, 401 with a wrong one; the UI always."""
    for path in ("/api/history", "/api/procs", "/metrics", live_path):
        ok = live_ok if path == live_path else 200
        r = http(server.base + path)
        assert r.status == 401, (path, r.status)
        assert r.headers["Content-Type"] == "application/json"
        assert "token" in r.json()["error"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert http(server.base + path, headers=AUTH).status == ok, path
        wrong = http(server.base + path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "y"})
        assert wrong.status == 401 and "not correct" in wrong.json()["error"]
        assert http(server.base + path, headers={"Cookie": "pyloot_token=nope"}).status == 401
    r = http(server.base + "/")
    assert r.status == 200 and b"<!doctype html>" in r.body
    assert http(server.base + "/static/app.js").status == 200


def login_cookie(server, mount="/_pyloot"):
    bad = http(server.base + "/api/login", method="POST", data=b"wrong")
    assert bad.status == 401 and "Set-Cookie" not in bad.headers
    r = http(server.base + "/api/login", method="POST", data=TOKEN.encode())
    assert r.status == 200, r.body
    cookie = r.headers["Set-Cookie"]
    assert cookie == "pyloot_token=%s; Path=%s; HttpOnly; SameSite=Strict" % (TOKEN, mount)
    return {"Cookie": cookie.split(";")[0]}


# --------------------------------------------------------------------------- FastAPI

@pytest.fixture(scope="module")
def fastapi_gunicorn(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("fastapi"),
                          ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", "127.0.0.1:{port}",
                           "--timeout", "60", "--graceful-timeout", "5", "asgi_leaky:app"], 2)
    yield server
    server.stop()


def test_fastapi_gunicorn_uvicorn_workers(fastapi_gunicorn):
    server = fastapi_gunicorn
    leaks = server.leak_everywhere()
    total = sum(server.totals.values())
    wait_until(lambda: server.count("asgi_leaky.Leak") == total, 30, message="merged count == %d" % total)
    assert server.alive_pids() == sorted(leaks)
    # Live objects of each worker, whichever worker answers.
    for pid, n in server.totals.items():
        body = server.api("/api/objects?group=asgi_leaky.Leak&limit=5&pid=%d" % pid)
        assert body["pid"] == pid and body["total"] == n
        obj = body["objects"][0]
        detail = server.api("/api/objects/%s?pid=%d" % (obj["id"], pid))
        assert detail["attrs"]["payload"].startswith("'leak-")
    # The UI page, and the mount without its slash.
    page = server.get("/_pyloot/")
    assert page.status == 200 and b'src="static/app.js"' in page.body
    assert server.get("/_pyloot").status in (301, 307)
    assert server.get("/_pyloot").headers["Location"].endswith("/_pyloot/")
    # No WSGI adapter (and no deprecation warning) in any worker's log.
    assert "Deprecat" not in server.log() and "Traceback" not in server.log(), server.log()[-3000:]


def test_fastapi_token_rule_and_login(fastapi_gunicorn):
    server = fastapi_gunicorn
    assert_token_rule(server, "/api/objects?group=asgi_leaky.Leak&limit=1")
    cookie = login_cookie(server)
    assert http(server.base + "/api/objects?group=asgi_leaky.Leak&limit=1", headers=cookie).status == 200
    out = http(server.base + "/api/logout", method="POST", data=b"")
    assert out.status == 200 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert http(server.base + "/api/login", headers=AUTH).status == 405


def test_fastapi_metrics_are_the_merged_store(fastapi_gunicorn):
    server = fastapi_gunicorn
    server.leak_everywhere(per_request=3)
    merged = sum(server.totals.values())
    wait_until(lambda: server.count("asgi_leaky.Leak") == merged, 30, message="merged count == %d" % merged)
    samples = metrics(server)
    assert metric_value(samples, "pyloot_objects", type="asgi_leaky.Leak") == merged
    assert metric_value(samples, "pyloot_object_bytes", type="asgi_leaky.Leak") > 0
    assert metric_value(samples, "pyloot_workers", state="alive") == 2
    pids = server.alive_pids()
    for pid in pids:
        assert metric_value(samples, "pyloot_process_resident_bytes", pid=str(pid)) > 1 << 20
    # The collector's own cost, per worker: one series each, from its heartbeats
    # (written right after a collection's sample, so waited for).
    def stats_written():
        procs = [p for p in server.api("/api/procs")["procs"] if p["alive"]]
        return all(p["collection_seconds"] > 0 and p["gil_held_seconds_total"] > 0 for p in procs)
    wait_until(stats_written, 10, message="every worker's collection and GIL seconds")
    samples = metrics(server)
    assert sorted(int(s.labels["pid"]) for s in samples["pyloot_collection_seconds"]) == pids
    assert sorted(int(s.labels["pid"]) for s in samples["pyloot_gil_held_seconds_total"]) == pids
    gil = {}
    for pid in pids:
        assert 0 < metric_value(samples, "pyloot_collection_seconds", pid=str(pid)) < 10
        gil[pid] = metric_value(samples, "pyloot_gil_held_seconds_total", pid=str(pid))
        assert gil[pid] > 0
    again = metrics(server)
    for pid in pids:
        assert metric_value(again, "pyloot_gil_held_seconds_total", pid=str(pid)) >= gil[pid]
    procs = {p["pid"]: p for p in server.api("/api/procs")["procs"] if p["alive"]}
    for pid in pids:
        assert 0 < procs[pid]["collection_seconds"] < 10 and procs[pid]["gil_held_seconds_total"] > 0
    types = {s.labels["type"] for s in samples["pyloot_objects"]}
    assert 3 <= len(types) <= 200
    per_worker = metrics(server, query="?workers=1")
    lines = {s.labels["pid"]: s.value for s in per_worker["pyloot_objects"]
             if s.labels["type"] == "asgi_leaky.Leak"}
    assert sorted(int(p) for p in lines) == pids
    assert sum(lines.values()) == merged
    # OpenMetrics when asked, and parsed by its own parser.
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    r = http(server.base + "/metrics", headers=dict(AUTH, Accept="application/openmetrics-text; version=1.0.0"))
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(r.body.decode())}
    assert "pyloot_objects" in families
    assert families["pyloot_gil_held_seconds"].type == "counter"
    assert {s.name for s in families["pyloot_gil_held_seconds"].samples} == {"pyloot_gil_held_seconds_total"}
    assert families["pyloot_collection_seconds"].type == "gauge"
    assert http(server.base + "/metrics?workers=2", headers=AUTH).status == 400


# --------------------------------------------------------------------------- uvicorn, the default rule

def test_uvicorn_workers_and_the_default_rule(tmp_path):
    server = start_server(tmp_path, ["uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}",
                                     "asgi_leaky:app"], 2, token=None, ready_headers=None)
    try:
        leaks = server.leak_everywhere()
        total = sum(leaks.values())
        wait_until(lambda: server.count("asgi_leaky.Leak", headers=None) == total, 30,
                   message="merged count == %d" % total)
        pid = max(leaks)
        live = "/api/objects?group=asgi_leaky.Leak&limit=3&pid=%d" % pid
        assert server.api(live, headers=None)["total"] == leaks[pid]
        # Through a proxy, from a public address: names and numbers yes, values no.
        assert server.api("/api/history?q=asgi_leaky", headers=PUBLIC_XFF)["types"]
        assert server.api("/api/procs", headers=PUBLIC_XFF)["procs"]
        assert metric_value(metrics(server, headers=PUBLIC_XFF), "pyloot_objects", type="asgi_leaky.Leak") == total
        for headers in (PUBLIC_XFF, {"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=203.0.113.7"},
                        {"X-Real-IP": "203.0.113.7"}):
            r = http(server.base + live, headers=headers)
            assert r.status == 403, headers
            assert r.headers["Content-Type"] == "application/json"
            assert "PyLoot(token=...)" in r.json()["error"] and "allow" in r.json()["error"]
        assert http(server.base + "/api/objects/1/path", headers=PUBLIC_XFF).status == 403
        assert http(server.base + "/", headers=PUBLIC_XFF).status == 200
        # Without a token there is nothing to log in with.
        assert http(server.base + "/api/login", method="POST", data=b"x").status == 400
    finally:
        server.stop()


def test_uvicorn_workers_token_rule(tmp_path):
    # The same ASGI app under uvicorn's own worker processes, with a token: the one access rule.
    server = start_server(tmp_path, ["uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}",
                                     "asgi_leaky:app"], 2)
    try:
        server.leak_everywhere()
        live = "/api/objects?group=asgi_leaky.Leak&limit=1"
        assert_token_rule(server, live)
        for pid, n in server.totals.items():
            assert server.api(live + "&pid=%d" % pid)["total"] == n
        cookie = login_cookie(server)
        assert http(server.base + live, headers=dict(cookie, **PUBLIC_XFF)).status == 200
    finally:
        server.stop()


# --------------------------------------------------------------------------- Django

def test_django_under_gunicorn(tmp_path):
    # --preload: Django's app registry (and so the app config's ready()) runs in the master, which
    # must leave the collector to the workers.
    server = start_server(tmp_path, ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "--timeout", "60",
                                     "--graceful-timeout", "5", "--preload", "djangoproj.wsgi:application"], 2,
                          env_extra={"DJANGO_SETTINGS_MODULE": "djangoproj.settings"})
    try:
        leaks = server.leak_everywhere()
        total = sum(leaks.values())
        wait_until(lambda: server.count("djangoproj.views.Leak") == total, 30, message="merged count")
        procs = server.api("/api/procs")["procs"]
        assert server.proc.pid not in {p["pid"] for p in procs}
        assert sorted(p["pid"] for p in procs) == sorted(leaks)
        live = "/api/objects?group=djangoproj.views.Leak&limit=3"
        assert_token_rule(server, live)
        for pid, n in leaks.items():
            assert server.api(live + "&pid=%d" % pid)["total"] == n
        # The allow callable gets the Django request: it lets a "staff" request in.
        staff = {"X-Test-Staff": "1"}
        assert server.api(live, headers=staff)["objects"]
        assert server.api("/api/history", headers=dict(staff, **PUBLIC_XFF))["types"]
        cookie = login_cookie(server)
        assert http(server.base + live, headers=cookie).status == 200
        assert metric_value(metrics(server), "pyloot_objects", type="djangoproj.views.Leak") == total
        r = server.get("/_pyloot")
        assert r.status == 301 and r.headers["Location"].endswith("/_pyloot/")
        assert "Traceback" not in server.log(), server.log()[-3000:]
    finally:
        server.stop()


# --------------------------------------------------------------------------- Flask, gunicorn's child_exit

def test_flask_under_gunicorn_with_child_exit(tmp_path):
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("from pyloot.gunicorn import child_exit  # noqa: F401\n")
    server = start_server(tmp_path, ["gunicorn", "-c", str(conf), "-w", "2", "-b", "127.0.0.1:{port}",
                                     "--timeout", "60", "--graceful-timeout", "5", "flask_leaky:app"], 2)
    try:
        leaks = server.leak_everywhere()
        total = sum(leaks.values())
        wait_until(lambda: server.count("flask_leaky.Leak") == total, 30, message="merged count")
        live = "/api/objects?group=flask_leaky.Leak&limit=3"
        assert_token_rule(server, live)
        for pid, n in leaks.items():
            assert server.api(live + "&pid=%d" % pid)["total"] == n
        cookie = login_cookie(server)
        assert server.api("/api/history", headers=cookie)["types"]
        # A killed worker is marked ended by the master's child_exit hook.
        victim = max(leaks)
        os.kill(victim, signal.SIGKILL)

        def ended():
            procs = [p for p in server.api("/api/procs")["procs"] if p["pid"] == victim]
            return procs and procs[-1]["ended"] is not None and not procs[-1]["alive"]

        wait_until(ended, 20, message="the killed worker marked ended")
        wait_until(lambda: server.count("flask_leaky.Leak") == total - leaks[victim], 30,
                   message="the merged count without the killed worker")
    finally:
        server.stop()


# --------------------------------------------------------------------------- the pyloot command

def pyloot_exe():
    """The pyloot command of this build (build/pyloot next to build/stage), else the installed one."""
    here = os.path.dirname(os.path.abspath(__import__("pyloot").__file__))
    built = os.path.normpath(os.path.join(here, "..", "..", "pyloot"))
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    from test_cli import pyloot_exe as installed
    return installed()


def test_cli_token(tmp_path):
    from pyloot import PyLoot

    path = str(tmp_path / "store")
    loot = PyLoot(path=path)
    loot.collect_objects()
    loot.backend.close()
    port = free_port()
    env = dict(os.environ, PYLOOT_TOKEN=TOKEN)
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port), "--db", path], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_until(lambda: _answers(url + "/"), 20, message="the pyloot command to listen")
        server = Server(proc, port, path, None, 0, prefix="")
        # The command holds no live objects: with the token, 400 (the central server needs pid= to ask a
        # pushing worker, docs/http-api.md).
        assert_token_rule(server, "/api/objects?group=dict", live_ok=400)
        cookie = login_cookie(server, mount="/")
        assert http(url + "/api/history", headers=cookie).status == 200
        assert metric_value(metrics(server), "pyloot_workers", state="alive") == 1  # this test process
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    bad = subprocess.run([pyloot_exe(), "--db", path, "--token", "has space"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "token" in bad.stderr

    # Without a token: the default rule, with the connection's address as the peer.
    port = free_port()
    env.pop("PYLOOT_TOKEN")
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port), "--db", path], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_until(lambda: _answers(url + "/"), 20, message="the pyloot command to listen")
        assert http(url + "/api/objects?group=dict").status == 400  # local: let through (no pid=)
        r = http(url + "/api/objects?group=dict", headers=PUBLIC_XFF)
        assert r.status == 403 and "pyloot --token" in r.json()["error"]
        assert http(url + "/api/history", headers=PUBLIC_XFF).status == 200
        assert http(url + "/metrics", headers=PUBLIC_XFF).status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _answers(url):
    try:
        return http(url, timeout=2).status == 200
    except OSError:
        return False
