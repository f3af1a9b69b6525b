"""The live routes of the dominator tree over HTTP, in this process:
GET /api/objects/<id>?retained=1, /api/retainers and /api/suspects
(docs/http-api.md). The request goes through the C handler of a PyLoot WSGI
app (server.handle), which answers for its own process as a worker does.

The objects under test are reached only through module-level names, so that
no local variable of a test is a second path to them (a running frame's
local is a root)."""
import gc
import gzip
import json
import time

import pytest

from pyloot import PyLoot, snapshot


class Hoard:
    def __init__(self, i):
        self.i = i
        self.data = bytes(1000)  # untracked, held by this instance alone


HOARD = []
GROUP = "%s.Hoard" % __name__


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    loot = PyLoot(path=str(tmp_path_factory.mktemp("retained") / "store"), interval=60)
    HOARD[:] = [Hoard(i) for i in range(300)]
    yield loot.get_wsgi()
    HOARD.clear()
    loot.stop(blocking=True)


def get(server, path, query=""):
    status, reason, headers, body = server.handle("GET", path, query, None, False)
    headers = dict(headers)
    assert headers["Content-Type"] == "application/json"
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return status, json.loads(body)


def test_suspect_of_a_leak_is_the_list_holding_it(server):
    status, got = get(server, "/api/suspects", "group=" + GROUP)
    assert status == 200, got
    assert got["group"] == GROUP
    assert got["instances"] == 300
    first = got["suspects"][0]
    assert first["object"]["id"] == str(id(HOARD))
    assert first["count"] == 300
    assert first["retained"] >= 300 * 1000
    path = first["path"]
    assert path[0]["via"] is None
    assert path[-1]["object"]["id"] == str(id(HOARD))
    assert path[-1]["via"] == "value of key 'HOARD'"  # referents.c's words, as in /path
    assert len(got["suspects"]) <= 3


def test_n_bounds_the_suspects(server):
    status, got = get(server, "/api/suspects", "group=%s&n=1" % GROUP)
    assert status == 200 and len(got["suspects"]) == 1


def test_object_with_retained_size_and_dominator(server):
    status, got = get(server, "/api/objects/%d" % id(HOARD), "retained=1")
    assert status == 200, got
    assert got["id"] == str(id(HOARD))
    assert got["retained"] >= 300 * 1000
    assert got["dominator"] is not None
    assert got["dominator"]["retained"] >= got["retained"]
    status, item = get(server, "/api/objects/%d" % id(HOARD[7]), "retained=1")
    assert status == 200
    assert item["dominator"]["id"] == str(id(HOARD))
    assert 1000 <= item["retained"] < 2000
    # Without retained=1: the plain detail.
    status, plain = get(server, "/api/objects/%d" % id(HOARD), "retained=0")
    assert status == 200 and "retained" not in plain and "dominator" not in plain


def test_retainers_drill_down_the_tree(server):
    status, top = get(server, "/api/retainers", "limit=20")
    assert status == 200, top
    assert top["id"] is None
    assert len(top["objects"]) == 20
    # Largest first, after the holders of growing types (when a collector of this process saw some).
    sizes = [o["retained"] for o in top["objects"] if "growing" not in o]
    assert sizes == sorted(sizes, reverse=True)
    assert top["retained"] >= sum(sizes)  # a holder ranked first may lie below one of them
    status, below = get(server, "/api/retainers", "id=%d&limit=10" % id(HOARD))
    assert status == 200
    assert below["id"] == str(id(HOARD))
    assert below["total"] == 300
    assert {o["type_name"] for o in below["objects"]} == {"Hoard"}
    assert all(1000 <= o["retained"] < 2000 for o in below["objects"])
    status, tail = get(server, "/api/retainers", "id=%d&offset=295&limit=10" % id(HOARD))
    assert (tail["offset"], tail["limit"], len(tail["objects"])) == (295, 10, 5)


def test_the_tree_is_kept_between_requests(server):
    get(server, "/api/retainers", "limit=1")
    time.sleep(0.2)
    status, again = get(server, "/api/retainers", "limit=1")
    assert status == 200
    assert again["tree_age_ms"] >= 200  # the same tree, not a new snapshot


def test_a_kept_tree_does_not_make_other_snapshots_wrong(server):
    get(server, "/api/retainers", "limit=1")  # a tree is kept, holding every object
    s = snapshot()
    assert s.retained_size(HOARD) >= 300 * 1000
    assert s.immediate_dominator(HOARD[3]) is HOARD
    del s
    gc.collect()  # the graph holds this frame, which holds it: a cycle


def test_the_kept_tree_is_not_a_parent_of_every_object(server):
    from pyloot import live

    gc.collect()  # no ObjectGraph of another test left: each would be a parent
    get(server, "/api/retainers", "limit=1")  # a tree is kept
    parents = live.parents(id(HOARD[5]))
    assert [p["id"] for p in parents["objects"]] == [id(HOARD)], parents
    assert live.describe(id(HOARD[5]))["parents_count"] == 1


def test_a_gone_id_is_404(server):
    status, got = get(server, "/api/retainers", "id=8")
    assert status == 404 and "no longer available" in got["error"]


@pytest.mark.parametrize("path,query", [
    ("/api/objects/%d" % id(HOARD), "retained=2"),
    ("/api/objects/%d" % id(HOARD), "retained=yes"),
    ("/api/retainers", "id=abc"),
    ("/api/retainers", "id=0"),
    ("/api/retainers", "limit=0"),
    ("/api/retainers", "limit=10001"),
    ("/api/retainers", "offset=-1"),
    ("/api/suspects", ""),
    ("/api/suspects", "group="),
    ("/api/suspects", "group=x&n=0"),
    ("/api/suspects", "group=x&n=11"),
    ("/api/suspects", "group=x&pid=0"),
])
def test_bad_parameters_are_400_json(server, path, query):
    status, got = get(server, path, query)
    assert status == 400, got
    assert got["error"]


class Credential:
    pass


VAULT = {}


def test_objects_held_under_secret_names_are_redacted(server):
    # As in children and path steps: a value held under a secret-looking name
    # shows "<redacted>" instead of its repr.
    VAULT["password"] = [Credential() for _ in range(5)] + ["hunter2-value"]
    try:
        status, below = get(server, "/api/retainers", "id=%d" % id(VAULT))
        assert status == 200, below
        (held,) = [o for o in below["objects"] if o["id"] == str(id(VAULT["password"]))]
        assert held["repr"] == "<redacted>"
        status, got = get(server, "/api/suspects", "group=%s.Credential" % __name__)
        assert status == 200
        path = got["suspects"][0]["path"]
        assert path[-1]["via"] == "value of key 'password'"
        assert path[-1]["object"]["repr"] == "<redacted>"
        assert "hunter2" not in json.dumps(got) + json.dumps(below)
    finally:
        VAULT.clear()
