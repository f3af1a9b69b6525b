"""Allocation sites (docs/allocations.md): a traced class's instances are
attributed to the line that made them; untraced types get nothing; the
bounds hold; the class keeps working after untrace, for subclasses and once
the class itself is freed; GET /api/allocations in real gunicorn workers."""
import gc
import inspect
import json
import sys
import types
import weakref
from pathlib import Path

import pytest

import pyloot
from pyloot import _pyloot as P

HERE = Path(__file__).resolve()
APPS = HERE.parent / "apps"


def sites(group):
    status, body = P.live_query(P.LIVE_ALLOCATIONS, group=group, limit=10000)
    assert status == 200, body
    return json.loads(body)


def detail(obj):
    status, body = P.live_query(P.LIVE_DETAIL, id=id(obj))
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(autouse=True)
def untrace_after():
    yield
    P.alloc_untrace_all()
    P.alloc_duty(None)


def make_one(cls):
    return cls()


def test_the_site_is_the_line_that_made_it():
    class Session:
        pass

    class Twin:
        pass

    Session.__qualname__ = "AllocSession"
    Twin.__qualname__ = "AllocTwin"
    assert P.alloc_trace(Session) is None
    line = inspect.currentframe().f_lineno + 1
    kept = [Session() for _ in range(50)]
    other_line = inspect.currentframe().f_lineno + 1
    one = make_one(Session)
    twins = [Twin() for _ in range(5)]

    got = sites(__name__ + ".AllocSession")
    assert got["traced"] is True
    top = got["sites"][0]
    assert top["count"] == 50
    assert top["frames"][0] == {"file": str(HERE), "line": line, "function": top["frames"][0]["function"]}
    assert "test_the_site_is_the_line_that_made_it" in top["frames"][0]["function"]
    # The helper's own line first, then the caller's line.
    second = got["sites"][1]
    assert second["count"] == 1
    assert second["frames"][0]["function"] == "make_one"
    assert second["frames"][1]["line"] == other_line
    assert len(second["frames"]) <= P.ALLOC_FRAMES

    # The object's detail says where it was created.
    created = detail(one)["created_at"]
    assert created[0]["function"] == "make_one" and created[1]["line"] == other_line
    assert detail(kept[3])["created_at"][0]["line"] == line

    # The untraced twin gets nothing.
    twin = sites(__name__ + ".AllocTwin")
    assert twin["traced"] is False and twin["sites"] == []
    assert "created_at" not in detail(twins[0])
    del kept
    gc.collect()
    assert sites(__name__ + ".AllocSession")["sites"][0]["count"] == 1


def test_builtins_and_unknown_types_are_not_traced():
    assert P.alloc_trace(list) is not None
    assert P.alloc_trace(int) is not None
    assert sites("list")["traced"] is False
    assert "note" in sites("no.such.Type")
    loot = pyloot.PyLoot.__new__(pyloot.PyLoot)
    loot._trace = []
    assert loot.trace_allocations(dict)[dict]
    with pytest.raises(TypeError):
        loot.trace_allocations(3)


def test_bad_queries_are_400():
    for group in ("", "x" * 2000):
        status, body = P.live_query(P.LIVE_ALLOCATIONS, group=group)
        assert status == 400, body
    status, body = P.live_query(P.LIVE_ALLOCATIONS, group="a.B", limit=0)
    assert status == 400, body


def test_the_bound_on_sites_holds_under_a_flood_of_call_sites():
    class Flood:
        pass

    P.alloc_trace(Flood)
    # Thousands of distinct call sites, each called often enough to be sampled.
    n = P.ALLOC_SITES_MAX * 2
    src = "\n".join("def f%d(c):\n    return c()" % i for i in range(n))
    ns = {}
    exec(compile(src, "<flood>", "exec"), ns)
    funcs = [ns["f%d" % i] for i in range(n)]
    for _ in range(64):
        for f in funcs:
            f(Flood)
    stats = P.alloc_stats()
    assert stats["sites"] <= P.ALLOC_SITES_MAX
    assert stats["sites_dropped"] > 0
    assert stats["site_bytes"] <= 4 << 20
    assert len(sites(Flood.__module__ + "." + Flood.__qualname__)["sites"]) <= P.ALLOC_SITES_MAX


def test_the_class_works_after_untrace_and_shutdown():
    class Kept:
        def __init__(self, v):
            self.v = v

    dead = []
    P.alloc_trace(Kept)
    before = [Kept(i) for i in range(300)]
    for o in before[:10]:
        weakref.finalize(o, dead.append, 1)
    assert P.alloc_wrapped(Kept)
    assert P.alloc_untrace(Kept) is True
    assert not P.alloc_wrapped(Kept)
    name = Kept.__module__ + "." + Kept.__qualname__
    assert sites(name)["traced"] is False and sites(name)["sites"] == []
    after = [Kept(i) for i in range(10)]
    assert [o.v for o in after] == list(range(10))
    del before, o
    gc.collect()
    assert len(dead) == 10
    # The shutdown path: every traced slot restored.
    P.alloc_trace(Kept)
    assert name in P.alloc_stats()["traced"]
    P.alloc_untrace_all()
    assert name not in P.alloc_stats()["traced"] and not P.alloc_wrapped(Kept)
    assert Kept(7).v == 7


def test_subclasses_of_a_traced_class():
    class Base:
        pass

    class Early(Base):
        pass

    P.alloc_trace(Base)

    class Late(Base):  # a class statement sets its own slot: not wrapped
        pass

    assert P.alloc_wrapped(Base) and not P.alloc_wrapped(Late) and not P.alloc_wrapped(Early)
    objs = [Base(), Early(), Late(), Late()]
    base = Base.__module__ + "." + Base.__qualname__
    late = Late.__module__ + "." + Late.__qualname__
    assert sum(s["count"] for s in sites(base)["sites"]) == 1
    assert sites(late)["traced"] is False
    assert "created_at" not in detail(objs[2])
    # Traced on its own, the subclass has its own sites.
    P.alloc_trace(Late)
    line = inspect.currentframe().f_lineno + 1
    more = [Late() for _ in range(3)]
    assert sites(late)["sites"][0]["frames"][0]["line"] == line
    assert sum(s["count"] for s in sites(base)["sites"]) == 1
    P.alloc_untrace(Late)
    assert not P.alloc_wrapped(Late) and P.alloc_wrapped(Base)
    P.alloc_untrace(Base)
    assert not P.alloc_wrapped(Late) and not P.alloc_wrapped(Base)
    assert isinstance(Late(), Base) and isinstance(Early(), Base)
    del objs, more
    gc.collect()


def test_a_traced_class_that_is_freed():
    def make_class():
        class Gone:
            pass
        return Gone

    cls = make_class()
    P.alloc_trace(cls)
    objs = [cls() for _ in range(20)]
    name = cls.__module__ + "." + cls.__qualname__
    assert P.alloc_stats()["sites_by_type"][name] >= 1
    ref = weakref.ref(cls)
    del objs, cls
    gc.collect()
    assert ref() is None
    stats = P.alloc_stats()
    assert name not in stats["traced"] and name not in stats["sites_by_type"]
    again = make_class()  # may reuse the address: untraced, works
    assert isinstance(again(), again)
    assert sites(again.__module__ + "." + again.__qualname__)["traced"] is False


def test_a_name_is_traced_when_its_class_appears():
    assert P.alloc_trace_name("alloc_late_mod.Later") is True
    assert "alloc_late_mod.Later" in P.alloc_stats()["waiting"]
    mod = types.ModuleType("alloc_late_mod")
    exec("class Later:\n    pass\n", mod.__dict__)
    sys.modules["alloc_late_mod"] = mod
    try:
        first = mod.Later()
        P.count_types()
        assert "alloc_late_mod.Later" in P.alloc_stats()["traced"]
        line = inspect.currentframe().f_lineno + 1
        objs = [mod.Later() for _ in range(4)]
        assert sites("alloc_late_mod.Later")["sites"][0]["frames"][0]["line"] == line
        assert "created_at" not in detail(first)
        del objs
    finally:
        del sys.modules["alloc_late_mod"]


def test_pyloot_trace_allocations_resolves_imported_names(tmp_path):
    mod = types.ModuleType("alloc_now_mod")
    exec("class Now:\n    class Inner:\n        pass\n", mod.__dict__)
    sys.modules["alloc_now_mod"] = mod
    try:
        loot = pyloot.PyLoot(path=str(tmp_path / "db"), trace_allocations=["alloc_now_mod.Now.Inner"])
        assert "alloc_now_mod.Now.Inner" in P.alloc_stats()["traced"]
        loot.untrace_allocations("alloc_now_mod.Now.Inner")
        assert "alloc_now_mod.Now.Inner" not in P.alloc_stats()["traced"]
    finally:
        del sys.modules["alloc_now_mod"]


# ---- the route, in real gunicorn workers ----

def leak_line():
    for i, text in enumerate((APPS / "leaky.py").read_text().splitlines(), 1):
        if "LEAKS.extend(Leak(" in text:
            return i
    raise AssertionError("no leak line in leaky.py")


def test_allocations_route_in_gunicorn_workers(gunicorn):
    server = gunicorn(workers=2, env={"PYLOOT_TEST_TRACE": "leaky.Leak"})
    leaks = server.leak_everywhere()
    pids = sorted(leaks)
    for pid in pids:
        got = server.api("/api/allocations?group=leaky.Leak&pid=%d" % pid)
        assert got["pid"] == pid and got["traced"] is True, got
        top = got["sites"][0]
        assert top["count"] == leaks[pid], (got, leaks)
        frame = top["frames"][0]
        assert Path(frame["file"]).resolve() == (APPS / "leaky.py").resolve()
        assert frame["line"] == leak_line()
        # The detail of one of its objects says the same.
        oid = server.api("/api/objects?group=leaky.Leak&pid=%d&limit=1" % pid)["objects"][0]["id"]
        created = server.api("/api/objects/%s?pid=%d" % (oid, pid))["created_at"]
        assert created[0]["line"] == leak_line()

    untraced = server.api("/api/allocations?group=leaky._NoSuch&pid=%d" % pids[0])
    assert untraced["traced"] is False and untraced["sites"] == []
    for bad in ("/api/allocations", "/api/allocations?group=", "/api/allocations?group=leaky.Leak&pid=abc",
                "/api/allocations?group=leaky.Leak&limit=0", "/api/allocations?group=%ff"):
        err = server.api(bad, expect=400)
        assert "error" in err
    assert "error" in server.api("/api/allocations?group=leaky.Leak&pid=4000000", expect=404)


def test_a_call_site_specialized_before_tracing_is_sampled():
    # CPython 3.13 allocates instances of a simple class with a Python
    # __init__ inline at a call site it has specialized; tracing must make
    # such a site go through the slot again.
    class Warm:
        def __init__(self):
            self.x = 1

    Warm.__qualname__ = "AllocWarm"

    def build(n):
        return [Warm() for _ in range(n)]

    for _ in range(50):
        build(100)
    P.alloc_trace(Warm)
    kept = build(10)
    got = sites(__name__ + ".AllocWarm")
    assert got["traced"] and sum(s["count"] for s in got["sites"]) == 10, got
    assert got["sites"][0]["frames"][0]["function"].startswith("test_a_call_site_specialized")
    del kept


def test_a_growing_class_is_traced_by_itself(gunicorn):
    """No name given: leaky.Leak grows steadily, the witnesses pick it, and
    the collector traces its allocations from then on."""
    import time

    from test_witness import leak_until_witnessed

    server = gunicorn(workers=1, interval=0.3)
    pid = server.worker_pids()[0]
    assert server.api("/api/allocations?group=leaky.Leak&pid=%d" % pid)["traced"] is False
    leak_until_witnessed(server)
    deadline = time.monotonic() + 30
    got = None
    while time.monotonic() < deadline:
        server.get("/leak?n=5")
        got = server.api("/api/allocations?group=leaky.Leak&pid=%d" % pid)
        if got["traced"] and got["sites"]:
            break
        time.sleep(0.1)
    assert got["traced"] is True and got["sites"], got
    assert got["sites"][0]["frames"][0]["line"] == leak_line()


def test_a_growing_class_outgrown_by_its_contents_is_still_traced_and_witnessed(gunicorn):
    """leaky.Rich leaks with a bytes, a list of floats and a dict each: by
    shallow bytes more than three builtin types outgrow the class itself,
    yet the class is a candidate (classes first): it is traced by itself and
    gets a witness through the list that holds it."""
    import time

    server = gunicorn(workers=1, interval=0.3)
    pid = server.worker_pids()[0]
    deadline = time.monotonic() + 40
    got, witnesses = None, []
    while time.monotonic() < deadline:
        server.get("/rich-leak?n=5")
        got = server.api("/api/allocations?group=leaky.Rich&pid=%d" % pid)
        r = server.get("/_pyloot/api/witnesses?group=leaky.Rich")  # 404 until the type is stored
        witnesses = r.json()["witnesses"] if r.status == 200 else []
        if got["traced"] and got["sites"] and witnesses:
            break
        time.sleep(0.05)
    assert got["traced"] is True and got["sites"], got
    lines = (APPS / "leaky.py").read_text().splitlines()
    assert "RICH.extend(Rich(" in lines[got["sites"][0]["frames"][0]["line"] - 1], got["sites"][0]
    assert witnesses, "no witness of leaky.Rich"
    assert "RICH" in json.dumps(witnesses[0]), witnesses[0]


def test_a_witness_of_a_class_traced_by_itself_carries_its_site(gunicorn):
    """No name given: leaky.Leak is traced because it grows, from one collection before its
    witness's remembering pass, so the new instance its first witness shows was sampled."""
    from test_witness import leak_until_witnessed

    server = gunicorn(workers=1, interval=0.3)
    leak_until_witnessed(server)
    witnesses = server.api("/api/witnesses?group=leaky.Leak")["witnesses"]
    assert "leaky.py:%d in " % leak_line() in witnesses[0].get("created_at", ""), json.dumps([witnesses, server.api("/api/allocations?group=leaky.Leak")])[:3000]


def leak_until_stored_witness(server, leak, group, rounds, pause):
    """GETs `leak` once a round (at most `rounds`, `pause` s apart) until the store holds a witness
    of `group`; returns its witnesses."""
    import time

    for _ in range(rounds):
        server.get(leak)
        r = server.get("/_pyloot/api/witnesses?group=" + group)  # 404 until the type is stored
        witnesses = r.json()["witnesses"] if r.status == 200 else []
        if witnesses:
            return witnesses
        time.sleep(pause)
    raise AssertionError("no witness of %s within %d rounds" % (group, rounds))


def test_a_namedtuple_witness_names_the_line_that_made_it(gunicorn):
    """A namedtuple's innermost frame is its __new__, code made by exec ("<string>"): the witness's
    one line names the first real file's frame instead, the line that made the tuple."""

    server = gunicorn(workers=1, interval=0.3, env={"PYLOOT_TEST_TRACE": "leaky.Point"})
    witnesses = leak_until_stored_witness(server, "/point-leak?n=3", "leaky.Point", 300, pause=0.05)
    lines = (APPS / "leaky.py").read_text().splitlines()
    at = witnesses[0].get("created_at", "")
    assert at.startswith(str(APPS / "leaky.py") + ":") or "leaky.py:" in at, witnesses[0]
    line = int(at.split("leaky.py:")[1].split(" ")[0])
    assert "POINTS.extend(Point(" in lines[line - 1], at


def test_a_witness_carries_its_site_and_the_report_prints_it(gunicorn):
    """The witness's instance is among the first allocations of leaky.Leak,
    which are all sampled (fewer than ALLOC_SAMPLE_ALL are made): its site
    is stored with the path, shown by /api/witnesses and `pyloot report`."""
    import subprocess

    from test_cli import pyloot_exe

    server = gunicorn(workers=1, interval=0.3, env={"PYLOOT_TEST_TRACE": "leaky.Leak"})
    # One leak a round, fewer than are all sampled.
    witnesses = leak_until_stored_witness(server, "/leak?n=1", "leaky.Leak", P.ALLOC_SAMPLE_ALL - 50, pause=0.1)
    where = "leaky.py:%d in " % leak_line()
    assert where in witnesses[0].get("created_at", ""), witnesses[0]
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert "    created at: " in out.stdout and where in out.stdout, out.stdout


def test_builtins_from_tracemalloc_when_the_app_runs_it():
    import tracemalloc

    assert sites("set")["traced"] is False  # tracemalloc not running: nothing
    tracemalloc.start(4)
    try:
        line = inspect.currentframe().f_lineno + 1
        kept = [{i, -i} for i in range(30)]
        got = sites("set")
        assert got["traced"] is True and got["source"] == "tracemalloc", got
        mine = [s for s in got["sites"] if s["frames"][0]["file"] == str(HERE) and s["frames"][0]["line"] == line]
        assert mine and mine[0]["count"] == 30, got["sites"][:3]
        del kept
    finally:
        tracemalloc.stop()
    assert sites("set")["traced"] is False


# ---- sampling windows (the default on CPython 3.13, asked for here on any) ----

def make_many(cls, n):
    return [cls(i) for i in range(n)]


def test_windows_keep_the_exact_line_and_give_the_slot_back():
    class Win:
        def __init__(self, i):
            self.i = i

    Win.__qualname__ = "AllocWin"
    name = __name__ + ".AllocWin"
    P.alloc_duty("always", window=8, gap_ms=0)
    before = P.alloc_stats()["samples"]  # of every type since the start
    assert P.alloc_trace(Win) is None and P.alloc_wrapped(Win)
    # The first window: the ALLOC_SAMPLE_ALL first allocations, then 8 samples.
    line = inspect.currentframe().f_lineno + 1
    first = [Win(i) for i in range(P.ALLOC_SAMPLE_ALL)]
    assert P.alloc_wrapped(Win)
    assert all(detail(o)["created_at"][0]["line"] == line for o in first[::51])
    rest = make_many(Win, 8)
    assert not P.alloc_wrapped(Win) and name in P.alloc_stats()["between_windows"]
    # Between windows nothing is sampled.
    unseen = make_many(Win, 500)
    assert P.alloc_stats()["samples"] - before == P.ALLOC_SAMPLE_ALL + 8
    assert not any("created_at" in detail(o) for o in unseen[::50])
    # The count pass begins the next window: the wrapper again, and the
    # exact line of what it samples.
    P.count_types()
    assert P.alloc_wrapped(Win) and name not in P.alloc_stats()["between_windows"]
    line2 = inspect.currentframe().f_lineno + 1
    more = [Win(i) for i in range(8)]
    assert not P.alloc_wrapped(Win)
    assert [detail(o)["created_at"][0]["line"] for o in more] == [line2] * 8
    got = sites(name)
    assert got["windowed"] is True and got["instances"] == len(first) + len(rest) + len(unseen) + len(more)
    lines = [s["frames"][0]["line"] for s in got["sites"]]
    assert line in lines and line2 in lines
    # The sampled shares of the type's live instances.
    assert abs(sum(s["count"] for s in got["sites"]) - got["instances"]) <= len(got["sites"])
    # Untraced between windows or within one, the slot is the plain one.
    assert P.alloc_untrace(Win) is True and not P.alloc_wrapped(Win)
    assert make_many(Win, 3)[2].i == 2
    P.alloc_trace(Win)
    assert P.alloc_wrapped(Win)
    P.alloc_untrace_all()
    assert not P.alloc_wrapped(Win) and P.alloc_stats()["between_windows"] == []
    P.alloc_trace(Win)
    make_many(Win, P.ALLOC_SAMPLE_ALL + 8)
    assert not P.alloc_wrapped(Win)
    P.alloc_untrace_all()
    assert not P.alloc_wrapped(Win)
    P.count_types()  # nothing traced: no window begins
    assert not P.alloc_wrapped(Win)


def test_windows_leave_alone_classes_the_interpreter_does_not_inline():
    class NoInit:  # object's __init__: no call site allocates it inline
        pass

    class Sub(NoInit):
        def __init__(self):
            pass

    P.alloc_duty("always", window=4, gap_ms=0)
    P.alloc_trace(NoInit)
    P.alloc_trace(Sub)
    objs = [NoInit() for _ in range(P.ALLOC_SAMPLE_ALL + 50)]
    assert P.alloc_wrapped(NoInit)  # the wrapper stays: nothing to win
    subs = [Sub() for _ in range(P.ALLOC_SAMPLE_ALL + 50)]
    assert not P.alloc_wrapped(Sub) and P.alloc_wrapped(NoInit)
    P.alloc_untrace(NoInit)
    assert not P.alloc_wrapped(NoInit) and not P.alloc_wrapped(Sub)
    del objs, subs


@pytest.mark.skipif(sys.version_info[:2] != (3, 13), reason="the call site form of CPython 3.13")
def test_a_call_site_left_generic_is_specialized_again():
    import dis
    import io

    class Hot:
        def __init__(self, i):
            self.i = i

    def build(n):
        return [Hot(i) for i in range(n)]

    def call_op():
        out = io.StringIO()
        dis.dis(build, adaptive=True, file=out)
        ops = [w for line in out.getvalue().splitlines() for w in line.split() if w.startswith("CALL")]
        return ops[-1]

    build(100)
    assert call_op() == "CALL_ALLOC_AND_ENTER_INIT"
    # Windows of 64 allocations: longer than the 52 misses after which the
    # interpreter specializes a call site again.
    P.alloc_duty("always", window=64, gap_ms=0)
    P.alloc_trace(Hot)
    build(100)
    assert call_op() == "CALL_NON_PY_GENERAL"  # the wrapper makes 3.13 give up the inline path
    build(P.ALLOC_SAMPLE_ALL)  # the window ends
    assert not P.alloc_wrapped(Hot)
    build(10)
    assert call_op() == "CALL_ALLOC_AND_ENTER_INIT"
    P.count_types()
    build(60)
    assert P.alloc_wrapped(Hot) and call_op() == "CALL_NON_PY_GENERAL"
    P.alloc_untrace(Hot)
    build(10)
    assert call_op() == "CALL_ALLOC_AND_ENTER_INIT"


def test_the_collector_thread_begins_the_windows(tmp_path):
    class Ticked:
        def __init__(self, i):
            self.i = i

    import time

    P.alloc_duty("auto", window=8, gap_ms=0)
    loot = pyloot.PyLoot(path=str(tmp_path / "db"), interval=3600, gc_collect=False)
    loot.start()
    try:
        loot.trace_allocations(Ticked)
        kept = []
        deadline = time.monotonic() + 20
        # The window ends once the thread has ticked (every ~50 ms).
        while P.alloc_wrapped(Ticked) and time.monotonic() < deadline and len(kept) < 10 ** 6:
            kept += make_many(Ticked, 400)
            time.sleep(0.02)
        assert not P.alloc_wrapped(Ticked)
        # The thread's tick begins the next one (no count pass: interval 1 h).
        while not P.alloc_wrapped(Ticked) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert P.alloc_wrapped(Ticked)
    finally:
        loot.stop(blocking=True)
    assert not P.alloc_wrapped(Ticked)
