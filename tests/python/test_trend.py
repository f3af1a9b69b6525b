"""A type's trend: a bounded cache that fills then stays flat reads `levelled`, a steady leak
`growing`, in /api/history (merged and per worker, trend= filter) and in `pyloot report` (its
levelled section); the report's counts are as of the end over the workers alive then (never a
dead worker's last count), its bytes in human units, its rates per hour only over a long window."""
import json
import re
import subprocess

import pytest

from conftest import wait_until
from remote_push import ENDED, message, now_ms
from test_cli import pyloot_exe
from test_remote_server import Central

LRU_SIZE = 8  # tests/python/apps/leaky.py


def run_report(db, *args):
    out = subprocess.run([pyloot_exe(), "report", "--db", str(db), *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def samples_of(server, pid):
    procs = server.api("/api/procs")["procs"]
    return next((p.get("samples", 0) for p in procs if p["pid"] == pid and p["alive"]), 0)


def next_sample(server, pid):
    """Waits until the worker has stored one more sample than now."""
    seen = samples_of(server, pid)
    wait_until(lambda: samples_of(server, pid) > seen, 30, interval=0.05, message="the next sample")


def types_of(answer):
    return {t["name"]: t for t in answer["types"]}


def test_filled_cache_levelled_steady_leak_growing(gunicorn):
    server = gunicorn(workers=1, interval=0.25)
    server.wait_sampled()
    pid = server.get("/pid").json()["pid"]
    # Three flat samples, then one new cache entry and one leak per sample until the cache is
    # full, then three times as long with the cache full (hits) and the leak going on.
    for _ in range(3):
        next_sample(server, pid)
    for i in range(4 * LRU_SIZE):
        assert server.get("/lru?key=k%d" % (i % LRU_SIZE)).json()["cached"] == min(i + 1, LRU_SIZE)
        assert server.get("/leak?n=1").status == 200
        next_sample(server, pid)

    live = types_of(server.api("/api/history?q=leaky.&workers=1&limit=50"))
    cached, leak = live["leaky.Cached"], live["leaky.Leak"]
    assert cached["count"] == LRU_SIZE and cached["trend"] == "levelled", cached
    assert leak["trend"] == "growing", leak
    assert [w["trend"] for w in cached["workers"]] == ["levelled"]
    assert [w["trend"] for w in leak["workers"]] == ["growing"]

    only = server.api("/api/history?trend=levelled&limit=1000")
    names = [t["name"] for t in only["types"]]
    assert "leaky.Cached" in names and "leaky.Leak" not in names
    assert only["trend"] == ["levelled"] and only["total"] == len(names)
    assert all(t["trend"] == "levelled" for t in only["types"])
    both = server.api("/api/history?trend=growing,levelled&q=leaky.")
    assert {t["name"] for t in both["types"]} == {"leaky.Cached", "leaky.Leak"}
    # Names from the list only, and 64 bytes at most (docs/security.md), even of good names.
    for bad in ("rising", "growing,", "", "GROWING", "growing,,flat", "growing," * 8 + "growing"):
        r = server.get("/_pyloot/api/history?trend=" + bad)
        assert r.status == 400 and "trend" in r.json()["error"], (bad, r.status, r.body)

    server.stop()
    report = json.loads(run_report(server.db, "--json", "--limit", "1000"))
    levelled = {g["name"]: g for g in report["levelled"]}
    growers = {g["name"]: g for g in report["growers"]}
    assert "leaky.Cached" in levelled and "leaky.Cached" not in growers, (report["levelled"], report["growers"])
    assert levelled["leaky.Cached"]["trend"] == "levelled" and levelled["leaky.Cached"]["count"] == LRU_SIZE
    assert growers["leaky.Leak"]["trend"] == "growing"
    # Growing types first.
    trends = [g["trend"] for g in report["growers"]]
    assert trends == sorted(trends, key=lambda t: t != "growing"), trends
    text = run_report(server.db, "--limit", "1000")
    section = text.index("levelled (filled caches?)")
    assert re.search(r"^ *\d+\. leaky\.Cached$", text[section:], re.M), text
    assert re.search(r"^ *\d+\. leaky\.Leak$", text[:section], re.M), text


def push_growth(central, host, pid, start, t0, counts, ended=False):
    types = {1: "app.Session", 2: "app.Cache"}
    samples = [(t0 + 1000 * i, {1: (c, c * 4096), 2: (min(i, 5) * 10, min(i, 5) * 10 * 512)})
               for i, c in enumerate(counts)]
    r = central.push(message(host, pid, start, types, samples, flags=ENDED | 2 if ended else 2))
    assert r.status == 200, r.body


@pytest.fixture
def central(tmp_path):
    c = Central(str(tmp_path / "central"))
    yield c
    c.stop()


def test_report_counts_only_the_workers_alive_then(central):
    # A worker that grew to 100 sessions and ended 20 s ago, and its successor, alive, at 57.
    t = now_ms()
    push_growth(central, "web-1", 41, 1, t - 41000, [5 * (i + 1) for i in range(20)], ended=True)
    push_growth(central, "web-1", 42, 2, t - 19000, [3 * (i + 1) for i in range(19)])
    hist = central.get("/api/history?q=app.&workers=1").json()
    merged = types_of(hist)
    assert merged["app.Session"]["count"] == 57 and merged["app.Session"]["trend"] == "growing"
    assert sorted(w["counts"][-1] or 0 for w in merged["app.Session"]["workers"]) == [0, 57]

    for when in ("live", "after the fact"):
        if when == "after the fact":
            central.stop()
        report = json.loads(run_report(central.db, "--json"))
        session = next(g for g in report["growers"] if g["name"] == "app.Session")
        # As of the end, over the workers alive then: 57, not 57 + the dead one's 100.
        assert session["count"] == 57 and session["bytes"] == 57 * 4096, (when, session)
        assert session["growth"] == 95 + 54 and session["trend"] == "growing"
        # A window of 40 s carries no rate per hour.
        assert session["growth_per_hour"] is None and session["bytes_growth_per_hour"] is None
        text = run_report(central.db)
        block = text[text.index(" app.Session\n"):]
        line = block.splitlines()[1]
        assert "now 57 objects, 228.0 KiB" in line, line
        assert re.search(r"bytes \+\d+\.\d KiB in \d+ s, growth \+149 in \d+ s", line), line
        assert "/h" not in line and "233472" not in text, line
