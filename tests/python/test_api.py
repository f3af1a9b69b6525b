"""The Python API and the HTTP handler, in one process."""
import gc
import gzip
import json
import os
import subprocess
import sys

import pytest

import pyloot
from pyloot import InMemoryBackend, PyLoot, PyLootServer, _pyloot


class Widget:
    pass


def make_same_named_classes():
    made = []
    for _ in range(2):
        class Twin:
            pass
        made.append(Twin)
    return made


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=60)
    yield loot
    loot.stop(blocking=True)


def call(server, path, query="", accept=None, method="GET", multiprocess=False):
    status, reason, headers, body = server.handle(method, path, query, accept, multiprocess)
    headers = dict(headers)
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return status, headers, body


def call_json(server, path, query="", **kw):
    status, headers, body = call(server, path, query, **kw)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def test_count_types_counts_instances_and_bytes():
    keep = [Widget() for _ in range(1234)]
    counts = _pyloot.count_types()
    assert counts["test_api.Widget"][0] == 1234
    assert counts["test_api.Widget"][1] >= 1234 * 16
    lists = [[None] * 100 for _ in range(10)]
    big = _pyloot.count_types()["list"]
    assert big[1] >= 10 * 100 * 8
    del keep, lists


def test_same_named_types_stay_distinct():
    a, b = make_same_named_classes()
    objs = [a() for _ in range(3)] + [b() for _ in range(5)]
    counts = _pyloot.count_types()
    base = "test_api.make_same_named_classes.<locals>.Twin"
    found = sorted(v[0] for k, v in counts.items() if k == base or k.startswith(base + "#"))
    assert found == [3, 5]
    assert base + "#2" in counts
    # Live objects use the collector's numbering for the same names.
    from pyloot import live
    for name in (base, base + "#2"):
        assert live.objects(name, limit=10)["total"] == counts[name][0]
    del objs


def test_collect_objects_stores_a_sample_served_as_history(loot):
    keep = [Widget() for _ in range(321)]
    result = loot.collect_objects()
    assert result["types"] > 10
    server = loot.get_wsgi()
    status, body = call_json(server, "/api/history", "q=test_api.widget&sort=count")
    assert status == 200
    assert body["total"] == 1
    (widget,) = body["types"]
    assert widget["name"] == "test_api.Widget"
    assert widget["count"] == 321
    assert widget["counts"][-1] == 321
    assert len(body["times"]) == len(widget["counts"])
    del keep


def test_collect_objects_collects_cycles_even_with_gc_disabled(loot):
    class Cyclic:
        pass

    gc.collect()
    gc.disable()
    try:
        for _ in range(500):
            a, b = Cyclic(), Cyclic()
            a.other, b.other = b, a
        del a, b
        loot.collect_objects()
        assert not gc.isenabled()
        counts = _pyloot.count_types()
    finally:
        gc.enable()
    assert not any(name.endswith(".Cyclic") for name in counts)


def test_procs_lists_this_process_and_the_store(loot):
    loot.collect_objects()
    status, body = call_json(loot.get_wsgi(), "/api/procs")
    assert status == 200
    assert body["store"]["path"] == loot.path
    assert body["self"]["pid"] == os.getpid()
    assert [p["pid"] for p in body["procs"]] == [os.getpid()]
    assert body["procs"][0]["alive"] is True
    assert body["procs"][0]["samples"] >= 1


@pytest.mark.parametrize("query,needle", [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
    ("limit=+5", "limit"), ("offset=1x", "offset"), ("sort=size", "sort"), ("pid=0", "pid"),
    ("pid=99999999999", "pid"), ("top=0", "top"), ("q=" + "a" * 300, "q"), ("q=%zz", "q"),
    ("workers=2", "workers"), ("points=1", "points"), ("limit=1234567890123456789012", "limit"),
])
def test_bad_history_parameters_get_400(loot, query, needle):
    loot.collect_objects()
    status, body = call_json(loot.get_wsgi(), "/api/history", query)
    assert status == 400
    assert needle in body["error"]


def test_top_keeps_the_largest_counts(loot):
    keep = [Widget() for _ in range(50)]
    loot.collect_objects()
    server = loot.get_wsgi()
    _, by_count = call_json(server, "/api/history", "sort=count&limit=3")
    status, top = call_json(server, "/api/history", "top=3&sort=name")
    assert status == 200
    assert top["total"] == 3
    assert [t["name"] for t in top["types"]] == sorted(t["name"] for t in by_count["types"])
    _, narrowed = call_json(server, "/api/history", "top=3&q=test_api.widget")
    assert narrowed["total"] == 0  # 50 widgets are not among the three largest counts
    del keep


def test_unknown_pid_is_404(loot):
    loot.collect_objects()
    status, body = call_json(loot.get_wsgi(), "/api/history", "pid=4194304")
    assert status == 404
    assert "4194304" in body["error"]


def test_bad_requests_change_nothing(loot):
    loot.collect_objects()
    server = loot.get_wsgi()
    before = call_json(server, "/api/procs")[1]["procs"]
    for path, query in [("/api/history", "limit=x"), ("/api/nope", ""), ("/api/objects/abc", ""),
                        ("/static/../../etc/passwd", ""), ("/api/samples", "")]:
        assert call(server, path, query)[0] >= 400
    status, headers, _ = call(server, "/api/procs", method="POST")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    assert call(server, "/api/history", method="DELETE")[0] == 405
    after = call_json(server, "/api/procs")[1]["procs"]
    assert [(p["pid"], p["samples"]) for p in after] == [(p["pid"], p["samples"]) for p in before]


def test_a_push_to_a_worker_is_the_clients_mistake(loot):
    # A 404 that says where pushes go, not a 5xx that monitoring counts as an outage.
    server = loot.get_wsgi()
    for method in ("POST", "GET"):
        status, body = call_json(server, "/api/samples", method=method)
        assert status == 404
        assert "pyloot -h HOST -p PORT" in body["error"]


def test_gzip_follows_accept_encoding_and_can_be_disabled(tmp_path):
    loot = PyLoot(path=str(tmp_path / "s"))
    loot.collect_objects()
    server = loot.get_wsgi()
    status, reason, headers, body = server.handle("GET", "/api/history", "", "gzip, deflate")
    headers = dict(headers)
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Vary"] == "Accept-Encoding"
    assert json.loads(gzip.decompress(body))["total"] > 0
    status, reason, headers, body = server.handle("GET", "/api/history", "", "gzip;q=0")
    assert "Content-Encoding" not in dict(headers)
    assert json.loads(body)["total"] > 0

    plain = PyLootServer(backend=loot.backend, disable_response_gzip=True)
    status, reason, headers, body = plain.handle("GET", "/api/history", "", "gzip")
    assert "Content-Encoding" not in dict(headers)
    assert dict(headers)["Vary"] == "Accept-Encoding"
    assert json.loads(body)["total"] > 0


def test_ui_is_served_from_the_embedded_files(loot):
    server = loot.get_wsgi()
    status, headers, body = call(server, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"<html" in body.lower()
    assert call(server, "/static/index.html")[0] == 200
    assert call(server, "/static/.hidden")[0] == 404
    assert call(server, "/static/nope.js")[0] == 404


def test_wsgi_redirects_the_bare_mount_point(loot):
    server = loot.get_wsgi()
    seen = {}

    def start_response(status, headers):
        seen["status"] = status
        seen["headers"] = dict(headers)

    server({"PATH_INFO": "", "SCRIPT_NAME": "/_pyloot", "REQUEST_METHOD": "GET",
            "QUERY_STRING": ""}, start_response)
    assert seen["status"].startswith("301")
    assert seen["headers"]["Location"] == "/_pyloot/"


def test_in_memory_backend_refuses_multiprocess():
    loot = PyLoot(backend=InMemoryBackend())
    loot.collect_objects()
    server = loot.get_wsgi()
    status, body = call_json(server, "/api/procs", multiprocess=True)
    assert status == 500
    assert "multi-process" in body["error"]
    assert call_json(server, "/api/procs", multiprocess=False)[0] == 200


def test_remote_mode_is_a_backend():
    from pyloot import HTTPRemoteBackend
    loot = PyLoot(host="127.0.0.1", port=8000, host_name="web-1")
    assert isinstance(loot.backend, HTTPRemoteBackend) and loot.backend.address == "127.0.0.1:8000"


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        PyLoot(path=str(tmp_path / "s"), interval=0)
    with pytest.raises(TypeError):
        _pyloot.collect(object())


def test_start_stop_runs_a_native_thread(loot):
    loot.interval = 0.1
    loot.start()
    assert loot.is_running()
    assert loot.start() is None  # a second start is harmless
    import time
    deadline = time.monotonic() + 10
    while loot.stats()["collections"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loot.stats()["collections"] >= 2
    loot.stop(blocking=True)
    assert not loot.is_running()


def test_interpreter_exits_cleanly_with_a_running_collector(tmp_path):
    code = ("from pyloot import PyLoot\n"
            "p = PyLoot(path=%r, interval=0.05)\n"
            "p.start()\n"
            "import time; time.sleep(0.3)\n"
            "x = [object() for _ in range(100000)]\n"
            "print('done')\n") % str(tmp_path / "s")
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == b"done"
    store = _pyloot.Store(str(tmp_path / "s"), read_only=True)
    procs = store.procs()
    assert len(procs) == 3
    assert all(p["ended"] and not p["alive"] for p in procs)


def test_default_path_is_per_service(tmp_path):
    path = pyloot.backends.default_path()
    assert path.startswith(os.path.join(__import__("tempfile").gettempdir(), "pyloot-"))
    # Named after the service: the root process's (this process's chain up to
    # the first ancestor running another binary) directory and command line.
    root_pid = _pyloot.server_root()[0]
    name, cwd, command = _pyloot.service_store()
    assert os.path.basename(path) == name
    assert cwd == os.readlink("/proc/%d/cwd" % root_pid)
    with open("/proc/%d/cmdline" % root_pid, "rb") as f:
        assert command == f.read().rstrip(b"\0").replace(b"\0", b" ").decode()
    assert name.startswith(os.path.basename(cwd)[:24] + "-") and len(name.rsplit("-", 1)[1]) == 16
