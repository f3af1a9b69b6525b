"""Requests by route (docs/http-api.md, GET /api/routes): counted in every
worker by PyLoot.track_requests, stored with each sample, pushed in remote
mode, served merged and as growth per request of a type."""
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

from conftest import wait_until
from test_cli import pyloot_exe

from pyloot import _pyloot

LEAK = "routes_app.RouteLeak"


def routes_of(body):
    return {r["route"]: r["requests"] for r in body["routes"]}


def wait_routes(server, want, timeout=30, query=""):
    """Waits until /api/routes counts at least `want` ({route: requests})."""
    def enough():
        got = routes_of(server.api("/api/routes" + query))
        return got if all(got.get(k, 0) >= v for k, v in want.items()) else None
    return wait_until(enough, timeout, message="requests by route %r" % want)


def counted_by(framework):
    """Runs apps/route_templates.py for one framework; its requests by route."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)),
               PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "route_templates.py", framework], cwd=os.path.join(HERE, "apps"),
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("framework, want", [
    # The matched rule; a request that matched none is its path with ids collapsed.
    ("flask", {"GET /login/<user>": 3, "POST /login/ann": 1, "GET /items/{id}": 1, "GET /boom": 1}),
    # The matched route's path, with the prefix of the mount it went through.
    ("starlette", {"GET /users/{user_id}": 3, "GET /nothing/{id}": 1, "GET /api/items/{item}": 1,
                   "GET /boom": 1}),
    ("fastapi", {"GET /users/{user_id}": 3, "GET /nothing/{id}": 1, "GET /boom": 1}),
    # request.resolver_match.route, through the RequestsByRoute middleware.
    ("django", {"GET /users/<int:pk>/": 3, "GET /nothing/{id}": 1, "GET /boom": 1}),
    # No framework: numbers, UUIDs and long hex collapsed; the app's exception counted and propagated.
    ("wsgi", {"GET /orders/{id}/lines/{id}": 1, "DELETE /boom": 1}),
    ("asgi", {"GET /blobs/{id}": 1, "GET /boom": 1}),
])
def test_route_templates(framework, want):
    assert counted_by(framework) == want


def test_counts_from_every_worker(gunicorn):
    server = gunicorn(workers=2, interval=0.3, app="routes_app:app")
    pids = set(server.worker_pids())
    seen = set()
    lock = threading.Lock()

    def one(i):
        r = server.get("/a/%d" % i)
        assert r.status == 200
        with lock:
            seen.add(r.json()["pid"])

    # Concurrent requests until both workers served some (bounded).
    sent = 0
    deadline = time.monotonic() + 30
    while (seen != pids or sent < 40) and time.monotonic() < deadline:
        threads = [threading.Thread(target=one, args=(sent + k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        sent += 4
    assert seen == pids
    for i in range(7):
        assert server.get("/c/%d-%d" % (i, i)).status == 200  # not an id: a route of its own
    for i in range(3):
        assert server.get("/c/%x" % (0xABCDEF0123456789 + i)).status == 200
    assert server.get("/c/123e4567-e89b-12d3-a456-426614174000").status == 200
    got = wait_routes(server, {"GET /a/{id}": sent, "GET /c/{id}": 4})
    assert got["GET /a/{id}"] == sent
    assert got["GET /c/{id}"] == 4
    assert got["GET /c/0-0"] == 1
    body = server.api("/api/routes")
    assert [r["requests"] for r in body["routes"]] == sorted((r["requests"] for r in body["routes"]), reverse=True)
    assert body["routes"][0]["route"] == "GET /a/{id}"
    # Every worker's requests are there, per pid too; the counts add up.
    per_pid = {pid: routes_of(server.api("/api/routes?pid=%d" % pid)).get("GET /a/{id}", 0) for pid in pids}
    assert all(per_pid.values()) and sum(per_pid.values()) == sent, per_pid
    # The pyloot app mounted outside the counted app counts nothing.
    assert not [r for r in got if "_pyloot" in r]


def test_exception_still_counted(gunicorn):
    server = gunicorn(workers=1, interval=0.3, app="routes_app:app")
    for _ in range(3):
        assert server.get("/boom").status == 500
    assert wait_routes(server, {"GET /boom": 3})["GET /boom"] == 3


def test_bound_of_routes_per_worker(gunicorn):
    server = gunicorn(workers=1, interval=60, app="routes_app:app")
    server.wait_sampled()
    # 300 distinct routes (and the request itself) in one interval: the
    # first 256 keep their names, every other request counts under `other`.
    assert server.get("/many?n=300").status == 200
    got = server.get("/counted").json()
    # The fixture's GET /pid may have come after the first sample: then it
    # was the first route of the interval.
    before = got.get("GET /pid", 0)
    assert len(got) == _pyloot.ROUTES_PER_WORKER + 1, sorted(got)
    assert got["other"] == 301 + (1 if before else 0) - _pyloot.ROUTES_PER_WORKER
    assert sum(got.values()) == 301 + before
    # The request itself counts after its app returned: under `other`.
    assert "GET /many/r0" in got and "GET /many/r299" not in got and "GET /many" not in got


def test_bad_parameters(gunicorn):
    server = gunicorn(workers=1, interval=0.3, app="routes_app:app")
    for query in ("pid=0", "pid=x", "limit=0", "limit=1001", "since=-1", "until=abc", "group=", "host=a%0ab",
                  "since=20&until=10"):
        r = server.get("/_pyloot/api/routes?" + query)
        assert r.status == 400, (query, r.status, r.body)
        assert "error" in r.json()
    assert server.get("/_pyloot/api/routes?pid=4000000").status == 404
    r = server.get("/_pyloot/api/routes?group=no.such.Type")
    assert r.status == 404 and "error" in r.json()


def test_group_answers_the_contract(gunicorn):
    server = gunicorn(workers=1, interval=0.3, app="routes_app:app")
    server.wait_sampled()
    for i in range(20):
        assert server.get("/a/%d" % i).status == 200
    wait_routes(server, {"GET /a/{id}": 20})
    # One more interval after the requests' one, so that it has a point of the type on both sides.
    body = wait_until(lambda: (lambda b: b if b["observations"] >= 1 else None)(
        server.api("/api/routes?group=" + LEAK)), 30, message="an observation")
    assert body["group"] == LEAK
    for key in ("r2", "observations", "outliers", "intercept", "routes"):
        assert key in body
    (a,) = [r for r in body["routes"] if r["route"] == "GET /a/{id}"]
    assert a["requests"] == 20
    assert set(a) == {"route", "requests", "per_request", "stderr", "contribution", "separable"}
    contributions = [r["contribution"] for r in body["routes"]]
    assert contributions == sorted(contributions, reverse=True)


def test_remote_mode_carries_the_counts(tmp_path, gunicorn):
    from test_remote import Central
    central = Central(tmp_path / "central", tmp_path / "central.log")
    central.start()
    try:
        server = gunicorn(workers=2, interval=0.3, app="routes_app:app",
                          env=central.worker_env(PYLOOT_HOST_NAME="web-routes"))
        for i in range(12):
            assert server.get("/a/%d" % i).status == 200
        for i in range(5):
            assert server.get("/c/%d" % i).status == 200

        def arrived():
            got = routes_of(central.api("/api/routes?host=web-routes"))
            return got if got.get("GET /a/{id}") == 12 and got.get("GET /c/{id}") == 5 else None
        got = wait_until(arrived, 30, message="the counts on the central server")
        assert set(got) - {"GET /pid"} == {"GET /a/{id}", "GET /c/{id}"}
    finally:
        central.kill()


def test_growth_per_request_from_random_mixes(gunicorn):
    """Routes leaking 1.0 and 0.1 objects per request and one leaking
    nothing, in random mixes per interval: the fit finds each rate."""
    server = gunicorn(workers=2, interval=0.5, app="routes_app:app")
    server.wait_sampled()
    rng = random.Random(1234)
    deadline = time.monotonic() + 60
    for _ in range(50):
        if time.monotonic() > deadline:
            break
        mix = ["/a/%d"] * rng.randint(0, 15) + ["/b/%d"] * rng.randint(0, 40) + ["/c/%d"] * rng.randint(0, 30)
        rng.shuffle(mix)
        for i, path in enumerate(mix):
            assert server.get(path % i).status == 200
        time.sleep(rng.uniform(0.2, 0.8))
    time.sleep(1.5)
    body = server.api("/api/routes?group=" + LEAK)
    rates = {r["route"]: r["per_request"] for r in body["routes"]}
    assert body["observations"] >= 20, body
    assert abs(rates["GET /a/{id}"] - 1.0) <= 0.15, body
    assert abs(rates["GET /b/{id}"] - 0.1) <= 0.015, body
    assert rates["GET /c/{id}"] < 0.05, body
    assert body["routes"][0]["route"] == "GET /a/{id}"
    # The report names the route for the stopped server's store.
    server.stop()
    report = report_json(server.db)
    (grower,) = [g for g in report["growers"] if g["name"] == LEAK]
    assert grower["route"]["route"] == "GET /a/{id}", grower
    assert abs(grower["route"]["per_request"] - 1.0) <= 0.15, grower
    text = subprocess.run([pyloot_exe(), "report", "--db", str(server.db)], capture_output=True, text=True,
                          timeout=60).stdout
    assert "grows with GET /a/{id}: +1." in text or "grows with GET /a/{id}: +0.9" in text, text


def report_json(db):
    out = subprocess.run([pyloot_exe(), "report", "--db", str(db), "--json"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_report_has_a_route_per_grower(gunicorn):
    server = gunicorn(workers=1, interval=0.3, app="routes_app:app")
    server.wait_sampled()
    for i in range(30):
        assert server.get("/a/%d" % i).status == 200
    wait_routes(server, {"GET /a/{id}": 30})
    server.stop()
    report = report_json(server.db)
    (grower,) = [g for g in report["growers"] if g["name"] == LEAK]
    # null while no route's requests explain the growth (the fit's answer).
    assert "route" in grower
    assert grower["route"] is None or grower["route"]["route"] == "GET /a/{id}"
    # pyloot routes: the same counts from the stopped server's store, as a table and as the route's JSON.
    out = subprocess.run([pyloot_exe(), "routes", "--db", str(server.db)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert any(line.split() == ["30", "GET", "/a/{id}"] for line in out.stdout.splitlines()), out.stdout
    out = subprocess.run([pyloot_exe(), "routes", "--db", str(server.db), "--json", "--group", LEAK],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["group"] == LEAK and routes_of(body)["GET /a/{id}"] == 30
    out = subprocess.run([pyloot_exe(), "routes", "--db", str(server.db), "--group", "no.Such"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no type of that name" in out.stderr


def test_demo_counts_its_routes(gunicorn):
    examples = os.path.join(HERE, "..", "..", "examples")
    server = gunicorn(workers=2, interval=0.5, app="demo_app:app", args=("--chdir", examples),
                      env={"PYLOOT_INTERVAL": "0.5"}, ready_path="/")
    for i in range(6):
        assert server.get("/login/user%d" % i).status == 200
        assert server.get("/work").status == 200
    got = wait_routes(server, {"GET /login/<user>": 6, "GET /work": 6})
    assert got["GET /login/<user>"] == 6
