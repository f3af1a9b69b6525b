"""GET /api/objects/<id>/graph: what holds an object, as nodes and labelled
edges (src/pyext/live_graph.c), in one process through the HTTP handler,
then through real gunicorn workers."""
import json
import sys
import types

import pytest

from conftest import wait_until
from pyloot import PyLoot, live
from test_remote import central  # noqa: F401 (a fixture)
from test_security import wsgi_call


class Holder:
    pass


class Account:
    def __init__(self, secret):
        self.name = "alice"
        self.password = secret


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=60)
    yield loot
    loot.stop(blocking=True)


@pytest.fixture
def module():
    """A fresh module in sys.modules: a root of the why-alive path."""
    mod = types.ModuleType("pyloot_graph_fixture")
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


def get(loot, path, query=""):
    status, headers, body = wsgi_call(loot.get_wsgi(), path, query)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


# Tests name objects by id only: a local variable of a running frame is a
# root of the why-alive path, which would then start from the test itself.

def graph(loot, oid, query=""):
    status, doc = get(loot, "/api/objects/%d/graph" % oid, query)
    assert status == 200, doc
    return doc


def node_of(doc, oid):
    got = [n for n in doc["nodes"] if n["id"] == str(oid)]
    assert len(got) == 1, (oid, [n["type"] for n in doc["nodes"]])
    return got[0]


def labels_into(doc, oid):
    """{label: from-node} of the edges into object oid."""
    by_id = {n["id"]: n for n in doc["nodes"]}
    return {e["label"]: by_id[e["from"]] for e in doc["edges"] if e["to"] == str(oid)}


def test_referrers_with_labels_and_the_path_from_the_module(loot, module):
    module.holder = Holder()
    module.holder.items = [None, Holder()]
    module.lookup = {"key": module.holder.items[1]}
    target = id(module.holder.items[1])
    doc = graph(loot, target)
    assert doc["found"] is True and doc["truncated"] is False and doc["depth"] == 3
    me = node_of(doc, target)
    assert me["depth"] == 0 and me["on_path"] is True and me["root"] is False
    assert me["type"] == "test_graph.Holder" and me["repr"].startswith("<test_graph.Holder object at 0x")
    assert set(me) >= {"id", "type", "repr", "size", "root", "on_path"}
    into = labels_into(doc, target)
    assert into["item[1]"]["id"] == str(id(module.holder.items))
    assert into["value of key 'key'"]["id"] == str(id(module.lookup))
    # An instance's own __dict__ is folded into it, as on the why-alive path.
    assert labels_into(doc, id(module.holder.items))["attribute 'items'"]["id"] == str(id(module.holder))
    root = node_of(doc, id(module))
    assert root["root"] is True and root["type"] == "module"
    assert labels_into(doc, id(module.lookup))["attribute 'lookup'"] == root
    assert [n for n in doc["nodes"] if n["type"] == "dict" and n["id"] != str(id(module.lookup))] == []
    # The path: module -> (some holder) -> target, every edge of it marked.
    on_path = [e for e in doc["edges"] if e["on_path"]]
    path = get(loot, "/api/objects/%d/path" % target)[1]["path"]
    assert len(on_path) == len(path) - 1
    assert {(e["from"], e["to"], e["label"]) for e in on_path} == {
        (a["object"]["id"], b["object"]["id"], b["via"]) for a, b in zip(path, path[1:])}
    assert {n["id"] for n in doc["nodes"] if n["on_path"]} == {s["object"]["id"] for s in path}
    # Every edge joins two nodes of the answer.
    ids = {n["id"] for n in doc["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in doc["edges"])


def test_depth_bounds_the_referrers_but_not_the_path(loot, module):
    chain = [Holder()]
    target = id(chain[0])
    for _ in range(6):
        chain = [chain]
    module.chain = chain  # module -> 7 lists -> target
    del chain
    for depth in (1, 2, 3, 4):
        doc = graph(loot, target, "depth=%d" % depth)
        assert doc["depth"] == depth
        off_path = [n for n in doc["nodes"] if not n["on_path"]]
        assert all(n["depth"] <= depth for n in off_path)
        # The path reaches the module at depth 8 whatever the depth asked.
        assert [n["depth"] for n in doc["nodes"] if n["root"]] == [8]
        assert len([n for n in doc["nodes"] if n["on_path"]]) == 9
    # Off the path, nothing deeper than `depth`: the module holds the object itself, and a chain of
    # six lists around it too.
    module.direct = Holder()
    chain = [module.direct]
    for _ in range(5):
        chain = [chain]
    module.around = chain
    del chain
    for depth in (1, 2, 3, 4):
        doc = graph(loot, id(module.direct), "depth=%d" % depth)
        assert sorted(n["depth"] for n in doc["nodes"] if not n["on_path"]) == list(range(1, depth + 1))
        assert [n["type"] for n in doc["nodes"] if n["on_path"]] == ["test_graph.Holder", "module"]


def test_a_thread_frame_is_a_root_and_a_lost_cycle_has_no_path(loot):
    import threading

    ready, done, box = threading.Event(), threading.Event(), {}

    def worker():
        job = [Holder()]
        box["id"] = id(job)
        ready.set()
        done.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert ready.wait(10)
        doc = graph(loot, box["id"], "depth=1")
        (root,) = [n for n in doc["nodes"] if n["root"]]
        assert root["type"] == "frame" and root["on_path"] and "worker" in root["repr"]
        assert labels_into(doc, box["id"])["local 'job'"] == root
    finally:
        done.set()
        t.join(10)
    a, b = Holder(), Holder()
    a.other, b.other = b, a
    oid = id(a)
    del a, b
    doc = graph(loot, oid)
    assert doc["found"] is False and not any(n["on_path"] or n["root"] for n in doc["nodes"])
    assert sorted(e["label"] for e in doc["edges"]) == ["attribute 'other'", "attribute 'other'"]


def test_node_bound_says_truncated(loot, module):
    module.target = Holder()
    target = id(module.target)
    module.holders = [[module.target] for _ in range(100)]
    doc = graph(loot, target, "depth=1")
    assert len(doc["nodes"]) == 60 and doc["truncated"] is True
    ids = {n["id"] for n in doc["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in doc["edges"])
    assert node_of(doc, target)["depth"] == 0
    # The path survives the cut.
    assert sum(n["on_path"] for n in doc["nodes"]) == 2  # module -> attribute 'target'
    module.few_target = Holder()
    module.few = [[module.few_target] for _ in range(10)]
    doc = graph(loot, id(module.few_target), "depth=1")
    assert doc["truncated"] is False
    assert len(doc["nodes"]) == 1 + 10 + 1  # the lists, and the module of the path
    doc = graph(loot, id(module.few_target), "depth=2")
    assert doc["truncated"] is False and len(doc["nodes"]) == 1 + 10 + 1 + 1  # the list of lists


def test_a_value_held_under_a_secret_name_is_redacted(loot, module):
    module.account = Account("hunter2-" + "x" * 8)
    secret = id(module.account.password)
    doc = graph(loot, secret)
    me = node_of(doc, secret)
    assert me["repr"] == "<redacted>" and "hunter2" not in json.dumps(doc)
    assert "attribute 'password'" in labels_into(doc, secret)
    name = id(module.account.name)
    assert node_of(graph(loot, name), name)["repr"] == repr("alice")
    module.settings = {"api_key": "k-" + "y" * 10, "scopes": []}  # a list: gc tracks the dict
    doc = graph(loot, id(module.settings["api_key"]))
    assert node_of(doc, id(module.settings["api_key"]))["repr"] == "<redacted>"
    assert node_of(doc, id(module.settings))["repr"] == "{'api_key': <redacted>, 'scopes': []}"
    assert "yyyy" not in json.dumps(doc)


def test_access_rule_is_the_one_of_the_object(loot, module, tmp_path):
    module.held = Holder()
    oid = id(module.held)
    app = loot.get_wsgi()
    for path in ("/api/objects/%d" % oid, "/api/objects/%d/graph" % oid):
        status, _headers, body = wsgi_call(app, path, HTTP_HOST="attacker.example")
        assert status == 403 and "DNS rebinding" in json.loads(body)["error"], body
        status, _headers, body = wsgi_call(app, path, REMOTE_ADDR="10.1.2.3")
        assert status == 403, body
        assert wsgi_call(app, path)[0] == 200
    denied = PyLoot(path=str(tmp_path / "store2"), interval=60, allow=lambda environ: False)
    try:
        status, _headers, body = wsgi_call(denied.get_wsgi(), "/api/objects/%d/graph" % oid)
        assert status == 403, body
    finally:
        denied.stop(blocking=True)


@pytest.mark.parametrize("query", ["depth=0", "depth=5", "depth=x", "depth=-1", "depth=", "pid=abc", "pid=0"])
def test_bad_parameters_are_400(loot, module, query):
    module.held = Holder()
    status, doc = get(loot, "/api/objects/%d/graph" % id(module.held), query)
    assert status == 400 and doc["error"].startswith("parameter " + query.split("=")[0] + " "), doc


def test_unknown_and_bad_ids(loot):
    status, doc = get(loot, "/api/objects/1/graph")
    assert status == 404 and doc["error"] == "object 1 is no longer available"
    gone = Holder()
    oid = id(gone)
    del gone
    assert get(loot, "/api/objects/%d/graph" % oid)[0] == 404
    for bad in ("abc", "-1", "0x10", "1e3", "18446744073709551616"):
        status, doc = get(loot, "/api/objects/%s/graph" % bad)
        assert status == 400 and "object id" in doc["error"], (bad, doc)
    assert get(loot, "/api/objects/1/graph/more")[0] == 404


def test_python_api(module):
    module.held = Holder()
    doc = live.graph(id(module.held), depth=1)
    assert doc["nodes"][0]["id"] == id(module.held)
    with pytest.raises(ValueError):
        live.graph(id(module.held), depth=5)
    with pytest.raises(LookupError):
        live.graph(1)


# ---- real gunicorn workers ----

LEAK = "leaky.Leak"


def test_graph_of_a_leak_through_any_worker(gunicorn):
    server = gunicorn(workers=2)
    leaks = server.leak_everywhere(rounds=1)
    workers = server.worker_pids()
    for pid in sorted(leaks):
        oid = server.api("/api/objects?group=%s&pid=%d&limit=1" % (LEAK, pid))["objects"][0]["id"]
        for _ in range(3):  # each request accepted by either worker
            doc = server.api("/api/objects/%s/graph?pid=%d&depth=2" % (oid, pid))
            assert doc["pid"] == pid and doc["found"] is True and doc["truncated"] is False
            by_id = {n["id"]: n for n in doc["nodes"]}
            assert by_id[oid]["type"] == LEAK and by_id[oid]["on_path"]
            (into,) = [e for e in doc["edges"] if e["to"] == oid]
            holder = by_id[into["from"]]
            assert holder["type"] == "list" and into["label"].startswith("item[") and into["on_path"]
            (up,) = [e for e in doc["edges"] if e["to"] == holder["id"]]
            module = by_id[up["from"]]
            assert up["label"] == "attribute 'LEAKS'" and module["root"] and module["obj_name"] == "leaky"
        r = server.get("/_pyloot/api/objects/%s/graph?pid=%d&depth=9" % (oid, pid))
        assert r.status == 400 and r.json()["error"].startswith("parameter depth ")
        r = server.get("/_pyloot/api/objects/%d/graph?pid=%d" % (int(oid) + 8, pid))
        assert r.status == 404 and "no longer available" in r.json()["error"]
    assert server.worker_pids() == workers


def test_graph_through_the_central_server(central, gunicorn):
    app = gunicorn(workers=1, interval=0.3, env=central.worker_env(PYLOOT_HOST_NAME="host-g"))
    leaks = app.leak_everywhere(rounds=1)
    (pid,) = leaks
    wait_until(lambda: central.alive() == [("host-g", pid)], 20, message="the worker alive in the central /api/procs")
    oid = central.api("/api/objects?pid=%d&host=host-g&group=%s&limit=1" % (pid, LEAK))["objects"][0]["id"]
    doc = central.api("/api/objects/%s/graph?pid=%d&host=host-g&depth=1" % (oid, pid))
    assert doc["pid"] == pid and doc["found"] is True
    assert "attribute 'LEAKS'" in [e["label"] for e in doc["edges"] if e["on_path"]]
    assert {n["type"] for n in doc["nodes"]} == {LEAK, "list", "module"}
    central.api("/api/objects/1/graph?pid=%d&host=host-g" % pid, expect=404)
    central.api("/api/objects/%s/graph?pid=%d&host=host-g&depth=0" % (oid, pid), expect=400)
    central.api("/api/objects/%s/graph" % oid, expect=400)  # the central server holds no objects
