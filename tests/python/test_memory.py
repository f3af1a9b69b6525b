"""Where a worker's memory is (docs/http-api.md, GET /api/memory): RSS split
into Python objects, allocator free and other, per worker and merged, with
real gunicorn workers. A native leak shows in other_bytes and not in
python_bytes; a leak of Python objects shows in python_bytes."""
import json
import subprocess
import time

from conftest import http, wait_until
from test_cli import pyloot_exe

MB = 1 << 20


def latest(server, pid):
    """The worker's newest figures (the live answer's last slot), and their time."""
    body = server.api("/api/memory?pid=%d" % pid)
    (w,) = [w for w in body["workers"] if w["pid"] == pid]
    return body["time"][-1], {k: w[k][-1] for k in ("rss", "python_bytes", "allocator_free_bytes", "other_bytes")}


def sample_after(server, pid, moment, timeout=30):
    """Figures of a sample taken after `moment` (unix seconds, as the API's times)."""
    def newer():
        t, figures = latest(server, pid)
        return figures if t > moment and figures["rss"] is not None else None
    return wait_until(newer, timeout, message="a sample after %.3f" % moment)


def steady_figures(server, pid):
    """Figures of a sample taken after this call, with one sample in between
    (the first sample after a request may be taken while it runs)."""
    server.wait_sampled()
    sample_after(server, pid, time.time())
    return sample_after(server, pid, time.time())


def test_native_leak_is_other_memory(gunicorn):
    server = gunicorn(workers=1, interval=0.3)
    (pid,) = server.worker_pids()
    before = steady_figures(server, pid)
    r = server.get("/native-leak?mb=64")
    assert r.status == 200 and r.json()["pid"] == pid
    leaked = r.json()["leaked"]
    after = sample_after(server, pid, time.time())
    growth = {k: after[k] - before[k] for k in after}
    assert growth["rss"] >= 0.8 * leaked, (growth, leaked)
    assert growth["other_bytes"] >= 0.8 * leaked, (growth, leaked)
    assert abs(growth["python_bytes"]) < 0.1 * leaked, (growth, leaked)
    for k in after:
        assert after[k] >= 0
    assert after["other_bytes"] == max(0, after["rss"] - after["python_bytes"] - after["allocator_free_bytes"])

    # The report of the stopped server's store opens with where the memory went.
    server.stop()
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db), "--json"], capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    (w,) = [w for w in json.loads(out.stdout)["memory"]["workers"] if w["pid"] == pid]
    assert w["other_bytes_growth"] >= 0.8 * leaked, w
    assert abs(w["python_bytes_growth"]) < 0.1 * leaked, w
    assert w["rss_growth"] >= 0.8 * leaked, w
    assert w["outside_python"] is True
    text = subprocess.run([pyloot_exe(), "report", "--db", str(server.db)], capture_output=True, timeout=60,
                          text=True).stdout
    section = text[text.index("memory ("):]
    assert "pid %d" % pid in section and "the growth is outside Python objects" in section, text
    assert "top growers" not in text or text.index("memory (") < text.index("top growers")


def test_python_leak_is_python_bytes(gunicorn):
    server = gunicorn(workers=1, interval=0.3)
    (pid,) = server.worker_pids()
    before = steady_figures(server, pid)
    r = server.get("/list-leak?n=10000")
    assert r.status == 200
    leaked = r.json()["leaked"]
    assert leaked > 30 * MB
    after = sample_after(server, pid, time.time())
    growth = {k: after[k] - before[k] for k in after}
    assert growth["python_bytes"] >= 0.9 * leaked, (growth, leaked)
    assert growth["other_bytes"] < 0.5 * leaked, (growth, leaked)
    server.stop()
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db), "--json"], capture_output=True,
                         timeout=60)
    (w,) = [w for w in json.loads(out.stdout)["memory"]["workers"] if w["pid"] == pid]
    assert w["python_bytes_growth"] >= 0.9 * leaked and w["outside_python"] is False, w


def test_merged_and_per_worker(gunicorn):
    server = gunicorn(workers=2, interval=0.3)
    server.wait_sampled()
    pids = sorted(server.worker_pids())

    def both():
        body = server.api("/api/memory")
        live = [w for w in body["workers"] if w["pid"] in pids and w["rss"][-1] is not None]
        return body if len(live) == 2 else None
    body = wait_until(both, 30, message="both workers in the newest slot")
    n = len(body["time"])
    assert n >= 1 and body["live"] is True
    workers = [w for w in body["workers"] if w["pid"] in pids]
    for key in ("rss", "python_bytes", "allocator_free_bytes", "other_bytes"):
        assert len(body["merged"][key]) == n
        # The newest slot ("now") sums the live workers.
        assert body["merged"][key][-1] == sum(w[key][-1] for w in workers), key
    for w in workers:
        assert w["host"] and w["start"]
        assert w["rss"][-1] > w["python_bytes"][-1] > 0
    # One worker.
    one = server.api("/api/memory?pid=%d" % pids[0])
    assert [w["pid"] for w in one["workers"]] == [pids[0]]
    assert one["pid"] == pids[0]


def test_bad_params(gunicorn):
    server = gunicorn(workers=1, interval=0.5)
    for query, status in (("pid=abc", 400), ("pid=0", 400), ("since=yesterday", 400), ("points=1", 400),
                          ("since=2000&until=1000", 400), ("host=" + "h" * 300, 400), ("pid=99999999", 400),
                          ("pid=4194303", 404), ("host=nohost", 404)):
        r = server.get("/_pyloot/api/memory?" + query)
        assert r.status == status, (query, r.status, r.body)
        assert "error" in r.json(), query


def test_metrics_carry_the_figures(gunicorn):
    server = gunicorn(workers=1, interval=0.3)
    (pid,) = server.worker_pids()
    steady_figures(server, pid)
    text = server.get("/_pyloot/metrics").body.decode()
    for name in ("pyloot_rss_bytes", "pyloot_python_bytes", "pyloot_allocator_free_bytes", "pyloot_other_bytes"):
        assert "# TYPE %s gauge" % name in text
        lines = [line for line in text.splitlines() if line.startswith(name + "{")]
        assert len(lines) == 1 and 'pid="%d"' % pid in lines[0], (name, lines)
        assert int(lines[0].rsplit(" ", 1)[1]) >= 0


def test_remote_mode_carries_the_figures(gunicorn, tmp_path):
    """Workers pushing to a central server: its /api/memory has their
    figures, and a native leak there is other memory too."""
    from test_remote import Central
    central = Central(tmp_path / "central-db", tmp_path / "central.log")
    central.start()
    try:
        server = gunicorn(workers=1, interval=0.3, env=central.worker_env(PYLOOT_HOST_NAME="host-m"))
        (pid,) = server.worker_pids()

        def figures():
            r = http(central.url + "/api/memory?pid=%d&host=host-m" % pid)
            if r.status == 404:  # its first push has not arrived yet
                return None
            assert r.status == 200, r.body
            body = r.json()
            if not body["workers"] or body["workers"][0]["rss"][-1] is None:
                return None
            return body["time"][-1], {k: body["workers"][0][k][-1] for k in ("rss", "python_bytes", "other_bytes")}

        def after(moment):
            return wait_until(lambda: (lambda f: f and f[0] > moment and f[1])(figures()), 30,
                              message="a pushed sample after %.3f" % moment)

        after(time.time())
        before = after(time.time())
        assert before["python_bytes"] > 0 and before["rss"] > before["python_bytes"]
        r = server.get("/native-leak?mb=64")
        assert r.status == 200
        leaked = r.json()["leaked"]
        grown = after(time.time())
        assert grown["other_bytes"] - before["other_bytes"] >= 0.8 * leaked, (before, grown)
        body = central.api("/api/memory?host=host-m")
        assert body["merged"]["rss"][-1] == sum(w["rss"][-1] for w in body["workers"] if w["rss"][-1] is not None)
    finally:
        central.kill()
