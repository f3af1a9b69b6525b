"""GET /api/heapdump through a central `pyloot` server (docs/heapdump.md,
docs/http-api.md): the query goes to a pushing gunicorn worker over the long
poll, the dump comes back as a download, and the worker's size bound holds
on that path too."""
from conftest import wait_until
from test_remote import LEAK, central  # noqa: F401 (the fixture)

from pyloot import load_heap


def test_heapdump_of_a_pushing_worker_through_the_central_server(central, gunicorn, tmp_path):  # noqa: F811
    server = gunicorn(workers=1, interval=0.3, env=central.worker_env(PYLOOT_HOST_NAME="host-a"))
    leaks = server.leak_everywhere(per_request=7, rounds=2)
    (pid, leaked), = leaks.items()
    wait_until(lambda: central.alive() == [("host-a", pid)], 20, message="the worker alive in the central /api/procs")

    r = central.get_raw("/api/heapdump?pid=%d&host=host-a" % pid)
    assert r.status == 200, r.body[:500]
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="pyloot-heap-')
    path = tmp_path / "remote.plheap"
    path.write_bytes(r.body)
    heap = load_heap(path)
    assert heap.info["pid"] == pid
    leaked_here = sum(1 for v in heap.vertices if heap.type_name(v) == LEAK)
    assert leaked_here >= leaked

    # Bad parameters are refused by the central server itself.
    r = central.get_raw("/api/heapdump?pid=abc")
    assert r.status == 400 and "pid" in r.json()["error"]
    r = central.get_raw("/api/heapdump")
    assert r.status == 400 and "pid" in r.json()["error"]
    assert central.get_raw("/api/heapdump?pid=%d&host=host-b" % pid).status == 404


def test_heapdump_bound_holds_through_the_central_server(central, gunicorn):  # noqa: F811
    server = gunicorn(workers=1, interval=0.3,
                      env=central.worker_env(PYLOOT_HOST_NAME="host-a", PYLOOT_HEAPDUMP_MAX_BYTES="1000"))
    server.leak_everywhere(per_request=3, rounds=1)
    (pid,) = server.worker_pids()
    wait_until(lambda: central.alive() == [("host-a", pid)], 20, message="the worker alive in the central /api/procs")
    r = central.get_raw("/api/heapdump?pid=%d&host=host-a" % pid)
    assert r.status == 413, r.body[:500]
    assert r.headers["Content-Type"] == "application/json"
    assert "PYLOOT_HEAPDUMP_MAX_BYTES" in r.json()["error"]
