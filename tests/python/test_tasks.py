"""Leaked asyncio tasks: GET /api/tasks (a worker's tasks grouped by
coroutine) and the task fields of the object page (state, name, coroutine,
await chain), in this process and in real uvicorn workers.

Everything is read through C getters: the hostile Task subclass of
apps/asgi_tasks.py records any of its Python code that runs, and must record
nothing."""
import asyncio
import json
import re
import threading

import pytest

from conftest import APPS, http, wait_until
from pyloot import _pyloot, live
from test_embed import PUBLIC_XFF, start_server

APP_SOURCE = (APPS / "asgi_tasks.py").read_text()
POLL = "asgi_tasks.handler.<locals>.poll"


def marker_line(source, marker):
    """The 1-based line of the comment `# marker` in source."""
    lines = [i + 1 for i, text in enumerate(source.splitlines()) if text.rstrip().endswith("# " + marker)]
    assert len(lines) == 1, marker
    return lines[0]


def group_of(answer, coroutine):
    found = [g for g in answer["groups"] if g["coroutine"] == coroutine]
    return found[0] if found else None


# --------------------------------------------------------------------------- in this process

def run_with_tasks(make, check):
    """Runs make() on a fresh event loop (it returns what to keep), then
    check(kept) once its tasks have reached their awaits; cancels them after."""
    async def main():
        kept = await make()
        for _ in range(5):
            await asyncio.sleep(0)
        try:
            return check(kept)
        finally:
            for t in kept.get("tasks", []):
                t.cancel()
            await asyncio.gather(*kept.get("tasks", []), return_exceptions=True)

    return asyncio.run(main())


async def parked():
    await asyncio.get_running_loop().create_future()  # PARKED


def test_chain_through_coroutines_and_async_generators():
    source = open(__file__).read()

    async def ticks():
        while True:
            yield await asyncio.get_running_loop().create_future()  # TICKS

    async def consume():
        async for _ in ticks():  # CONSUME
            pass

    async def make():
        return {"tasks": [asyncio.ensure_future(consume(), loop=asyncio.get_running_loop())]}

    def check(kept):
        task = kept["tasks"][0]
        t = live.describe(id(task))["task"]
        assert t["state"] == "pending" and t["name"] == task.get_name()
        assert t["coroutine"] == __name__ + ".test_chain_through_coroutines_and_async_generators.<locals>.consume"
        chain = t["await_chain"]
        assert [s["kind"] for s in chain] == ["coroutine", "async_generator", "future"], chain
        assert chain[0]["line"] == marker_line(source, "CONSUME")
        assert chain[1]["line"] == marker_line(source, "TICKS") and chain[1]["file"] == __file__
        assert chain[2]["state"] == "pending" and chain[2]["type"] == "_asyncio.Future"
        assert t["waiting_at"] == "%s:%d" % (__file__, marker_line(source, "TICKS"))
        assert t["fut_waiter"] == chain[2]["id"] and t["created_at"] is None
        # Each step can be asked about in turn.
        assert live.describe(int(chain[2]["id"]))["future"] == {"state": "pending"}

    run_with_tasks(make, check)


def test_chain_is_bounded():
    async def deep(n):
        if n:
            await deep(n - 1)
        else:
            await parked()

    async def make():
        return {"tasks": [asyncio.ensure_future(deep(40))]}

    def check(kept):
        t = live.describe(id(kept["tasks"][0]))["task"]
        assert len(t["await_chain"]) == 32 and t["truncated"] is True
        assert all(s["kind"] == "coroutine" for s in t["await_chain"])

    run_with_tasks(make, check)


def test_a_traced_task_class_says_where_each_task_was_created():
    source = open(__file__).read()

    class TracedTask(asyncio.Task):
        pass

    TracedTask.__qualname__ = "TracedTask"
    assert _pyloot.alloc_trace(TracedTask) is None
    try:
        async def make():
            loop = asyncio.get_running_loop()
            made = TracedTask(parked(), loop=loop)  # MADE
            plain = asyncio.ensure_future(parked(), loop=loop)
            return {"tasks": [made, plain]}

        def check(kept):
            made, plain = kept["tasks"]
            created = live.describe(id(made))["task"]["created_at"]
            assert created and created[0]["line"] == marker_line(source, "MADE"), created
            assert created[0]["file"] == __file__
            # An untraced class: not known.
            assert live.describe(id(plain))["task"]["created_at"] is None

        run_with_tasks(make, check)
    finally:
        _pyloot.alloc_untrace(TracedTask)


def test_groups_examples_and_limit_bounds():
    async def make():
        tasks = [asyncio.ensure_future(parked()) for _ in range(7)]
        for i in range(3):
            c = parked()
            c.__qualname__ = "other%d" % i  # three groups of one task each
            tasks.append(asyncio.ensure_future(c))
        return {"tasks": tasks}

    def check(kept):
        answer = live.tasks(limit=2)
        group = group_of(answer, __name__ + ".parked")
        assert group["count"] == 7 and len(group["examples"]) == 5
        assert set(group["examples"]) <= {id(t) for t in kept["tasks"]}
        assert answer["groups"][0] == group and len(answer["groups"]) == 2
        assert answer["groups_total"] >= 4 and answer["ungrouped"] == 0
        assert live.tasks(limit=100)["groups_total"] == answer["groups_total"]
        with pytest.raises(ValueError):
            live.tasks(limit=101)
        with pytest.raises(ValueError):
            live.tasks(state="running")

    run_with_tasks(make, check)


def test_distinct_coroutine_names_are_bounded():
    async def make():
        tasks = []
        for i in range(10001):
            c = parked()
            c.__qualname__ = "name%d" % i
            tasks.append(asyncio.ensure_future(c))
        return {"tasks": tasks}

    def check(kept):
        answer = live.tasks(limit=100)
        assert answer["groups_total"] == 10000
        assert answer["ungrouped"] == answer["tasks"] - 10000 >= 1
        assert all(g["count"] == 1 for g in answer["groups"])

    run_with_tasks(make, check)


def test_a_task_never_initialised_gives_an_error_field():
    class Lazy(asyncio.Task):
        def __init__(self):
            pass  # the base's __init__ never runs: no loop, no coroutine

    task = Lazy()
    d = live.describe(id(task))
    assert d["task"]["state"] == "unknown" and "never initialised" in d["task"]["error"]
    assert d["repr"] == "<Lazy unknown>"
    assert live.tasks(state="all")["tasks"] >= 1  # it is counted, nothing raised


def test_kind_and_state_through_live_query():
    status, body = _pyloot.live_query(_pyloot.LIVE_TASKS, "pending", 0, 0, 20)
    assert status == 200 and json.loads(body)["tasks"] == 0  # no loop runs here
    status, body = _pyloot.live_query(_pyloot.LIVE_TASKS, "pending", 0, 0, 101)
    assert status == 400


# --------------------------------------------------------------------------- uvicorn workers

@pytest.fixture(scope="module")
def uvicorn_tasks(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("tasks"),
                          ["uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}",
                           "asgi_tasks:app"], 2, token=None, ready_headers=None)
    yield server
    server.stop()


def on_worker(server, path, pid, tries=60):
    """GETs the app's path until the worker `pid` answers it (bounded)."""
    for _ in range(tries):
        body = server.get(path).json()
        if body["pid"] == pid:
            return body
    raise AssertionError("worker %d never answered %s" % (pid, path))


def test_tasks_grouped_by_coroutine(uvicorn_tasks):
    server = uvicorn_tasks
    spawned = server.get("/spawn?n=7").json()
    pid = spawned["pid"]
    answer = server.api("/api/tasks?pid=%d" % pid, headers=None)
    assert answer["pid"] == pid and answer["state"] == "pending"
    group = group_of(answer, POLL)
    assert group["count"] == spawned["pending_polls"] >= 7
    assert group["waiting_at"].endswith("/asgi_tasks.py:%d" % marker_line(APP_SOURCE, "AWAIT-NEWS"))
    assert group["waiting_at_count"] == group["count"]
    assert len(group["examples"]) == 5
    counts = [g["count"] for g in answer["groups"]]
    assert counts == sorted(counts, reverse=True) and answer["tasks"] >= sum(counts)
    # The examples are tasks of that group: their own pages say so.
    for ident in group["examples"][:2]:
        page = server.api("/api/objects/%s?pid=%d" % (ident, pid), headers=None)
        assert page["task"]["coroutine"] == POLL
    # More of them: the count follows, whichever worker answers the request.
    more = on_worker(server, "/spawn?n=3", pid)
    for _ in range(4):
        assert group_of(server.api("/api/tasks?pid=%d" % pid, headers=None), POLL)["count"] == more["pending_polls"]


def test_task_object_page_shows_the_await_chain(uvicorn_tasks):
    server = uvicorn_tasks
    spawned = server.get("/spawn?n=1").json()
    pid, ident, future = spawned["pid"], spawned["ids"][0], spawned["futures"][0]
    page = server.api("/api/objects/%s?pid=%d" % (ident, pid), headers=None)
    assert page["type_module"] == "_asyncio" and page["type_name"] == "Task"
    assert re.match(r"<Task pending name='Task-\d+' coro=<handler\.<locals>\.poll\(\) running at .*asgi_tasks\.py:\d+>>$",
                    page["repr"]), page["repr"]
    task = page["task"]
    assert task["state"] == "pending" and re.match(r"Task-\d+$", task["name"])
    assert task["coroutine"] == POLL and task["module"] == "asgi_tasks"
    assert task["qualname"] == "handler.<locals>.poll"
    chain = task["await_chain"]
    assert [s["kind"] for s in chain] == ["coroutine", "coroutine", "future"]
    assert chain[0]["coroutine"] == POLL and chain[1]["coroutine"] == "asgi_tasks.wait_for_news"
    assert chain[0]["file"].endswith("/asgi_tasks.py") and chain[0]["finished"] is False
    assert chain[0]["line"] == marker_line(APP_SOURCE, "AWAIT-POLL")
    assert chain[1]["line"] == marker_line(APP_SOURCE, "AWAIT-NEWS")
    assert chain[2] == {"id": future, "kind": "future", "type": "_asyncio.Future", "state": "pending"}
    assert task["fut_waiter"] == future and task["truncated"] is False
    assert task["waiting_at"] == "%s:%d" % (chain[1]["file"], chain[1]["line"])
    # The future at the end of the chain has a page of its own.
    assert server.api("/api/objects/%s?pid=%d" % (future, pid), headers=None)["future"] == {"state": "pending"}


def test_hostile_task_subclass_runs_no_code(uvicorn_tasks):
    server = uvicorn_tasks
    made = server.get("/hostile").json()
    pid, ident = made["pid"], made["id"]
    page = server.api("/api/objects/%s?pid=%d" % (ident, pid), headers=None)
    assert page["type_name"] == "HostileTask" and page["repr"].startswith("<HostileTask pending name='Task-")
    task = page["task"]
    assert task["state"] == "pending" and task["coroutine"] == POLL
    assert [s["kind"] for s in task["await_chain"]] == ["coroutine", "coroutine", "future"]
    assert task["await_chain"][2]["id"] == made["future"]
    listed = server.api("/api/objects?group=asgi_tasks.HostileTask&pid=%d" % pid, headers=None)
    assert listed["total"] >= 1 and all(o["repr"].startswith("<HostileTask pending") for o in listed["objects"])
    group = group_of(server.api("/api/tasks?pid=%d" % pid, headers=None), POLL)
    assert group["count"] == made["pending_polls"]
    server.api("/api/objects/%s/parents?pid=%d" % (ident, pid), headers=None)
    server.api("/api/objects/%s/children?pid=%d" % (ident, pid), headers=None)
    assert on_worker(server, "/calls", pid)["calls"] == []
    # The worker still serves.
    assert server.get("/pid").status == 200


def test_done_and_cancelled_tasks_show_their_state(uvicorn_tasks):
    server = uvicorn_tasks
    made = server.get("/finished").json()
    pid = made["pid"]
    done = server.api("/api/objects/%s?pid=%d" % (made["done"], pid), headers=None)
    assert done["task"]["state"] == "done" and done["task"]["waiting_at"] is None
    assert done["repr"].startswith("<Task finished name='Task-")
    assert done["task"]["await_chain"][0]["finished"] is True and done["task"]["await_chain"][0]["line"] is None
    cancelled = server.api("/api/objects/%s?pid=%d" % (made["cancelled"], pid), headers=None)
    assert cancelled["task"]["state"] == "cancelled" and cancelled["repr"].startswith("<Task cancelled")
    by_state = server.api("/api/tasks?pid=%d&state=done" % pid, headers=None)
    assert by_state["state"] == "done" and by_state["tasks"] >= 1
    assert any(g["coroutine"].endswith("quick") and g["waiting_at"] is None for g in by_state["groups"])
    assert by_state["states"]["done"] == by_state["tasks"] and by_state["states"]["cancelled"] >= 1
    everything = server.api("/api/tasks?pid=%d&state=all" % pid, headers=None)
    assert everything["tasks"] == sum(everything["states"].values())
    assert group_of(server.api("/api/tasks?pid=%d&state=cancelled" % pid, headers=None), POLL) is None


def test_bad_parameters_unknown_pid_and_access(uvicorn_tasks):
    server = uvicorn_tasks
    pid = server.get("/pid").json()["pid"]
    for query, word in (("state=running", "state"), ("state=", "state"), ("limit=0", "limit"),
                        ("limit=101", "limit"), ("pid=abc", "pid"), ("pid=0", "pid"), ("pid=99999999", "pid"),
                        ("host=" + "h" * 64, "host"), ("state=%ff", "state")):
        r = http(server.base + "/api/tasks?" + query)
        assert r.status == 400, (query, r.status, r.body)
        assert word in r.json()["error"], (query, r.json())
    alive = set(server.alive_pids(headers=None))
    unknown = next(p for p in range(4194304, 1, -1) if p not in alive)
    r = http(server.base + "/api/tasks?pid=%d" % unknown)
    assert r.status == 404 and "no live worker" in r.json()["error"]
    # A live-object route: not from a public address through a proxy.
    r = http(server.base + "/api/tasks?pid=%d" % pid, headers=PUBLIC_XFF)
    assert r.status == 403 and "PyLoot(token=...)" in r.json()["error"]
    assert http(server.base + "/api/tasks", method="POST", data=b"").status == 405
