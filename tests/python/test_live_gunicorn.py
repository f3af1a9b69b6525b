"""Live objects across real gunicorn workers: every request lands on whichever
worker accepts it, and asks about the objects of a worker named by ?pid=.
The receiving worker forwards through the store's mailbox; the target's
collector thread answers with pl_live_answer (src/pyext/objects.c)."""
import time

from conftest import wait_until

LEAK = "leaky.Leak"


def alive_pids(server):
    return sorted(p["pid"] for p in server.api("/api/procs")["procs"] if p["alive"])


def wait_for_workers(server):
    workers = server.worker_pids()
    wait_until(lambda: alive_pids(server) == workers, 30, message="every worker in /api/procs")
    return workers


def test_objects_of_every_worker_through_any_worker(gunicorn):
    server = gunicorn(workers=4)
    leaks = server.leak_everywhere()
    workers = wait_for_workers(server)
    assert sorted(leaks) == workers, (leaks, workers)

    for pid in workers:
        # Several requests, each accepted by some worker (often another one).
        for _ in range(3):
            got = server.api("/api/objects?group=%s&pid=%d&limit=10000" % (LEAK, pid))
            assert got["pid"] == pid
            assert got["group"] == LEAK
            assert got["total"] == leaks[pid], (pid, got["total"], leaks)
            assert len(got["objects"]) == leaks[pid]
            assert {o["type_name"] for o in got["objects"]} == {"Leak"}
            assert {o["type_module"] for o in got["objects"]} == {"leaky"}

    # Without pid: the worker that received the request answers for itself.
    for _ in range(8):
        got = server.api("/api/objects?group=%s&limit=10000" % LEAK)
        assert got["total"] == leaks[got["pid"]]

    # Paging is stable across requests.
    pid = max(leaks, key=leaks.get)
    full = [o["id"] for o in server.api("/api/objects?group=%s&pid=%d&limit=10000" % (LEAK, pid))["objects"]]
    page = server.api("/api/objects?group=%s&pid=%d&offset=2&limit=3" % (LEAK, pid))
    assert [o["id"] for o in page["objects"]] == full[2:5]
    assert page["total"] == leaks[pid]


def test_detail_parents_children_path_of_a_leak(gunicorn):
    server = gunicorn(workers=4)
    leaks = server.leak_everywhere()
    wait_for_workers(server)
    for pid in sorted(leaks):
        listing = server.api("/api/objects?group=%s&pid=%d" % (LEAK, pid))
        leak = listing["objects"][0]
        oid = leak["id"]

        detail = server.api("/api/objects/%s?pid=%d" % (oid, pid))
        assert detail["pid"] == pid and detail["id"] == oid
        assert detail["type_name"] == "Leak" and detail["type_module"] == "leaky"
        assert set(detail["attrs"]) == {"index", "payload"}
        assert detail["attrs"]["payload"] == repr("leak-%s" % detail["attrs"]["index"])
        assert detail["parents_count"] == 1
        assert detail["children_count"] >= 2

        parents = server.api("/api/objects/%s/parents?pid=%d" % (oid, pid))
        assert parents["total"] == 1
        holder = parents["objects"][0]
        assert holder["type_name"] == "list"
        assert holder["repr"].startswith("[<leaky.Leak object at 0x")

        children = server.api("/api/objects/%s/children?pid=%d" % (oid, pid))
        kinds = {c["type_name"] for c in children["objects"]}
        assert {"int", "str"} <= kinds, kinds

        path = server.api("/api/objects/%s/path?pid=%d" % (oid, pid))
        assert path["found"], path
        steps = path["path"]
        assert steps[0]["via"] is None
        assert steps[0]["object"]["type_name"] == "module"
        assert steps[0]["object"]["obj_name"] == "leaky"
        assert steps[1]["via"] == "attribute 'LEAKS'"
        assert steps[1]["object"]["id"] == holder["id"]
        assert steps[-1]["object"]["id"] == oid
        assert steps[-1]["via"].startswith("item[")
        assert len(steps) == 3


def test_bad_ids_get_json_errors_and_workers_stay_up(gunicorn):
    server = gunicorn(workers=4)
    leaks = server.leak_everywhere(rounds=1)
    workers = wait_for_workers(server)
    pid = sorted(leaks)[0]
    oid = server.api("/api/objects?group=%s&pid=%d" % (LEAK, pid))["objects"][0]["id"]
    for bad in ("abc", "-1", "0", "1", str(2**64 - 1), str(int(oid) + 8), "1e3", "0x10"):
        for suffix in ("", "/parents", "/children", "/path"):
            r = server.get("/_pyloot/api/objects/%s%s?pid=%d" % (bad, suffix, pid))
            assert 400 <= r.status < 500, (bad, suffix, r.status, r.body[:200])
            assert "error" in r.json()
    r = server.get("/_pyloot/api/objects/%d?pid=%d" % (int(oid) + 8, pid))
    assert r.status == 404
    assert r.json()["error"] == "object %d is no longer available" % (int(oid) + 8)
    assert server.worker_pids() == workers
    assert alive_pids(server) == workers
    assert server.api("/api/objects/%s?pid=%d" % (oid, pid))["id"] == oid


def test_stuck_worker_gives_504_not_a_hang(gunicorn):
    server = gunicorn(workers=4, live_timeout=2)
    workers = wait_for_workers(server)
    # Waited for, not slept for: on a loaded machine the /block request may
    # reach its worker after any fixed delay, and the stuck worker would then
    # answer 200 to the requests sent before.
    t, stuck = server.block(20)
    statuses = {}
    for pid in workers:
        t0 = time.monotonic()
        r = server.get("/_pyloot/api/objects?group=%s&pid=%d" % (LEAK, pid), timeout=20)
        statuses[pid] = (r.status, time.monotonic() - t0, r.json())
    t.join(40)
    status, elapsed, body = statuses[stuck]
    assert status == 504, statuses
    assert str(stuck) in body["error"]
    # Before the stuck worker woke (a hang would end with it, 20 s after the block):
    # the answer came from live_timeout, however slow the machine.
    assert elapsed < 20, elapsed
    for pid in workers:
        if pid != stuck:
            assert statuses[pid][0] == 200, statuses
    # Once unblocked, it answers again.
    got = server.api("/api/objects?group=%s&pid=%d" % (LEAK, stuck))
    assert got["pid"] == stuck


def test_suspects_and_retainers_of_a_worker_through_any_worker(gunicorn):
    # The dominator-tree routes (/api/suspects, /api/retainers,
    # /api/objects/<id>?retained=1) are answered by the worker named by pid,
    # whichever worker receives the request.
    server = gunicorn(workers=2)
    leaks = server.leak_everywhere()
    wait_for_workers(server)
    for pid in sorted(leaks):
        holder = server.api("/api/objects?group=%s&pid=%d&limit=1" % (LEAK, pid))["objects"][0]
        holder = server.api("/api/objects/%s/parents?pid=%d" % (holder["id"], pid))["objects"][0]
        for _ in range(3):
            got = server.api("/api/suspects?group=%s&pid=%d" % (LEAK, pid))
            assert got["pid"] == pid
            assert got["instances"] == leaks[pid]
            first = got["suspects"][0]
            assert first["object"]["id"] == holder["id"], got
            assert first["object"]["type_name"] == "list"
            assert first["count"] == leaks[pid]
            assert first["retained"] > 0
            assert first["path"][-1]["object"]["id"] == holder["id"]
            assert first["path"][-1]["via"].endswith("'LEAKS'")
        below = server.api("/api/retainers?pid=%d&id=%s&limit=10000" % (pid, holder["id"]))
        assert below["pid"] == pid and below["total"] == leaks[pid]
        assert {o["type_name"] for o in below["objects"]} == {"Leak"}
        one = below["objects"][0]
        detail = server.api("/api/objects/%s?pid=%d&retained=1" % (one["id"], pid))
        assert detail["retained"] == one["retained"]
        assert detail["dominator"]["id"] == holder["id"]
    r = server.get("/_pyloot/api/suspects?group=%s&pid=%d&n=11" % (LEAK, sorted(leaks)[0]))
    assert r.status == 400 and "error" in r.json()
