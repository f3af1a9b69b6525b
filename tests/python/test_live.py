"""Live objects of this process, through _pyloot.live_query and pyloot.live.

Everything here runs in the test process itself: the C answering function is
the one the HTTP routes and the collector thread call (it takes the GIL with
PyGILState_Ensure; live_query releases it first, as a request thread would).
"""
import gc
import json
import os
import sys
import threading
import time

import pytest

from pyloot import _pyloot, live


class Leak:
    def __init__(self, n):
        self.n = n
        self.label = "leak-%d" % n


def group_of(cls):
    return "%s.%s" % (cls.__module__, cls.__qualname__)


LEAKS = []  # module level: the path test expects module -> LEAKS -> item


def query(kind, group="", id=0, offset=0, limit=100):
    status, body = _pyloot.live_query(kind, group, id, offset, limit)
    return status, json.loads(body)


@pytest.fixture
def leaks():
    LEAKS[:] = [Leak(i) for i in range(25)]
    yield LEAKS
    LEAKS.clear()


# ---- listing -------------------------------------------------------------

def test_list_counts_and_pages(leaks):
    got = live.objects(group_of(Leak), limit=10)
    assert got["pid"] == os.getpid()
    assert got["group"] == group_of(Leak)
    assert got["total"] == 25
    assert (got["offset"], got["limit"]) == (0, 10)
    ids = [o["id"] for o in got["objects"]]
    for offset in (10, 20):
        page = live.objects(group_of(Leak), offset=offset, limit=10)
        assert page["total"] == 25
        ids += [o["id"] for o in page["objects"]]
    assert len(ids) == 25
    assert ids == sorted(ids), "pages are in a stable (address) order"
    assert set(ids) == {id(x) for x in leaks}
    first = got["objects"][0]
    assert set(first) >= {"id", "obj_name", "type_name", "type_module", "repr", "size"}
    assert first["type_name"] == "Leak"
    assert first["type_module"] == Leak.__module__
    assert first["obj_name"] == "Leak"
    assert first["repr"].startswith("<%s.Leak object at 0x" % Leak.__module__)
    assert first["size"] >= object.__basicsize__
    assert live.objects(group_of(Leak), offset=25)["objects"] == []


def test_list_unknown_group_is_empty():
    got = live.objects("no.such.Type")
    assert got["total"] == 0 and got["objects"] == []


def test_list_builtin_type():
    keep = [{"k": i} for i in range(3)]
    got = live.objects("dict", limit=10000)
    assert got["total"] >= 3
    assert got["objects"][0]["type_name"] == "dict"
    assert got["objects"][0]["type_module"] == "builtins"
    del keep


def test_list_two_types_with_one_name():
    a = type("Twin", (), {"__module__": "pyloot_twins"})
    b = type("Twin", (), {"__module__": "pyloot_twins"})
    keep = [a(), a(), b()]
    first, second = sorted((a, b), key=id)  # numbered by ascending address
    counts = {first: 2 if first is a else 1, second: 2 if second is a else 1}
    assert live.objects("pyloot_twins.Twin")["total"] == counts[first]
    assert live.objects("pyloot_twins.Twin#2")["total"] == counts[second]
    assert live.objects("pyloot_twins.Twin#3")["total"] == 0
    del keep


def test_list_bad_arguments():
    with pytest.raises(ValueError):
        live.objects("")
    with pytest.raises(ValueError):
        live.objects("x" * 1025)
    with pytest.raises(ValueError):
        live.objects("dict", limit=0)
    with pytest.raises(ValueError):
        live.objects("dict", limit=10001)
    with pytest.raises(ValueError):
        live.objects("dict", offset=10**9 + 1)
    status, body = query(_pyloot.LIVE_LIST, "dict", 0, 0, 0)
    assert status == 400 and "error" in body


# ---- detail ----------------------------------------------------------------

def test_detail_attrs_repr_counts(leaks):
    obj = leaks[3]
    got = live.describe(id(obj))
    assert got["pid"] == os.getpid()
    assert got["id"] == id(obj)
    # On the wire (the HTTP body) a 64-bit id is a string; pyloot.live gives ints, as id() does.
    status, body = query(_pyloot.LIVE_DETAIL, "", id(obj))
    assert status == 200 and body["id"] == str(id(obj))
    assert got["type_name"] == "Leak"
    assert got["attrs"] == {"n": "3", "label": "'leak-3'"}
    assert got["repr"] == repr(obj)
    assert got["parents_count"] == 1  # LEAKS
    assert got["size"] == sys.getsizeof(obj)
    assert got["children_count"] >= 2  # "leak-3", 3 (and the class)


def test_detail_does_not_create_the_instance_dict():
    """3.11-3.13 keep a plain instance's attributes inline until someone asks
    for its __dict__; describing it or following a path through it must not."""
    global INLINE
    INLINE = Leak(5)
    INLINE.payload = ["inner"]
    inner = id(INLINE.payload)  # only the id: a local would be a shorter path

    def has_dict(o):
        return any(type(r) is dict for r in gc.get_referents(o))

    try:
        assert not has_dict(INLINE)
        assert live.describe(id(INLINE))["attrs"] == {"n": "5", "label": "'leak-5'", "payload": "['inner']"}
        vias = [s["via"] for s in live.path(inner)["path"]]
        assert vias == [None, "attribute 'INLINE'", "attribute 'payload'"]
        assert not has_dict(INLINE)
    finally:
        del INLINE


def test_detail_slots():
    class Slotted:
        __slots__ = ("a", "b", "unset")

        def __init__(self):
            self.a = "slot-a"
            self.b = [1]

    obj = Slotted()
    got = live.describe(id(obj))
    assert got["attrs"] == {"a": "'slot-a'", "b": "[1]"}


def test_detail_runs_no_property_or_getattr():
    calls = []

    class Guarded:
        def __init__(self):
            self.plain = 1

        @property
        def trap(self):
            calls.append("property")
            raise RuntimeError("property must not run")

        def __getattr__(self, name):
            calls.append("getattr " + name)
            raise RuntimeError("__getattr__ must not run")

        def __getattribute__(self, name):
            if name not in ("__class__", "__dict__", "plain"):
                calls.append("getattribute " + name)
            return object.__getattribute__(self, name)

    obj = Guarded()
    got = live.describe(id(obj))
    assert got["attrs"] == {"plain": "1"}
    assert calls == []
    del obj


def test_detail_untracked_child_is_found():
    holder = Leak(77)
    kids = live.children(id(holder))["objects"]
    label = [k for k in kids if k["type_name"] == "str"]
    assert label, kids
    got = live.describe(label[0]["id"])
    assert got["repr"] == repr("leak-77")
    assert got["parents_count"] >= 1


# ---- parents / children ----------------------------------------------------

def test_parents_and_children(leaks):
    obj = leaks[0]
    index = {"first": obj}
    got = live.parents(id(obj))
    assert got["id"] == id(obj) and got["pid"] == os.getpid()
    parent_ids = {p["id"] for p in got["objects"]}
    assert id(LEAKS) in parent_ids
    assert id(index) in parent_ids
    assert got["total"] == len(got["objects"]) == 2
    via = {p["id"]: p["via"] for p in got["objects"]}
    assert via[id(LEAKS)] == "item[0]"
    assert via[id(index)] == "value of key 'first'"
    page = live.parents(id(obj), offset=1, limit=1)
    assert page["total"] == 2 and len(page["objects"]) == 1

    kids = live.children(id(LEAKS), limit=10)
    assert kids["total"] == 25
    assert [k["id"] for k in kids["objects"]] == [id(x) for x in LEAKS[:10]]
    assert [k["via"] for k in kids["objects"]] == ["item[%d]" % i for i in range(10)]
    attrs = {k["via"] for k in live.children(id(obj))["objects"]}
    assert "__class__" in attrs and any(v.startswith("attribute ") for v in attrs)
    del index


def test_self_references():
    lst = [1]
    lst.append(lst)
    d = {"k": 1}
    d["self"] = d
    got = live.describe(id(lst))
    assert got["repr"] == "[1, [...]]"
    assert id(lst) in {p["id"] for p in live.parents(id(lst))["objects"]}
    assert live.describe(id(d))["repr"] == "{'k': 1, 'self': {...}}"
    assert id(d) in {c["id"] for c in live.children(id(d))["objects"]}


# ---- path --------------------------------------------------------------------

def _leak_one():
    """Leaks a Leak into the module-level LEAKS; returns only its id, so that
    no frame of this test holds it."""
    LEAKS.append(Leak(999))
    return id(LEAKS[-1])


def test_path_module_list_item():
    LEAKS.clear()
    for i in range(3):
        LEAKS.append(Leak(i))
    target = _leak_one()
    try:
        got = live.path(target)
        assert got["found"] is True
        assert got["id"] == target
        steps = got["path"]
        assert [s["via"] for s in steps] == [None, "attribute 'LEAKS'", "item[3]"]
        assert steps[0]["object"]["type_name"] == "module"
        assert steps[0]["object"]["obj_name"] == __name__
        assert steps[1]["object"]["id"] == id(LEAKS)
        assert steps[2]["object"]["id"] == target
    finally:
        LEAKS.clear()


def test_path_through_attribute_and_dict():
    global HOLDER
    HOLDER = Leak(1)
    HOLDER.inner = {"key": [None, Leak(2)]}
    target = id(HOLDER.inner["key"][1])
    try:
        vias = [s["via"] for s in live.path(target)["path"]]
        assert vias == [None, "attribute 'HOLDER'", "attribute 'inner'", "value of key 'key'", "item[1]"]
    finally:
        del HOLDER


def test_path_from_a_thread_frame_local():
    ready, done = threading.Event(), threading.Event()
    box = {}

    def worker():
        held_in_local = Leak(5)
        box["id"] = id(held_in_local)
        ready.set()
        done.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert ready.wait(10)
        got = live.path(box["id"])
        assert got["found"]
        assert got["path"][0]["object"]["type_name"] == "frame"
        assert got["path"][0]["via"] is None
        assert got["path"][1]["via"] == "local 'held_in_local'"
    finally:
        done.set()
        t.join()


def test_path_leaves_no_f_locals_behind():
    """Reading a running frame's locals for the path must not create the
    frame's f_locals dict: it would show up as a new parent of every local."""
    ready, done = threading.Event(), threading.Event()
    box = {}

    def worker():
        only_here = Leak(6)
        box["id"] = id(only_here)
        ready.set()
        done.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert ready.wait(10)
        assert live.parents(box["id"])["total"] == 0
        assert live.path(box["id"])["path"][1]["via"] == "local 'only_here'"
        assert live.parents(box["id"])["total"] == 0
    finally:
        done.set()
        t.join()


class Node:
    def __init__(self, nxt):
        self.next = nxt


def test_path_through_a_long_chain():
    """Deeper than the backward search goes: the forward search finds it."""
    global CHAIN
    CHAIN = None
    for _ in range(40):
        CHAIN = Node(CHAIN)
    node = CHAIN
    while node.next is not None:
        node = node.next
    target = id(node)
    del node
    try:
        got = live.path(target)
        vias = [s["via"] for s in got["path"]]
        assert vias == [None, "attribute 'CHAIN'"] + ["attribute 'next'"] * 39
        assert got["path"][-1]["object"]["id"] == target
    finally:
        del CHAIN


class Frozen:
    pass


def test_objects_frozen_by_gc_freeze_are_seen():
    """gunicorn --preload apps often gc.freeze() after import: the modules and
    the module-level containers are then in the permanent generation."""
    global FROZEN_HOLDER
    FROZEN_HOLDER = [Frozen()]
    gc.freeze()
    try:
        FROZEN_HOLDER.append(Leak(1))  # a leak after the freeze, in a frozen list
        target = id(FROZEN_HOLDER[-1])
        assert live.objects(group_of(Frozen))["total"] == 1
        assert live.parents(target)["objects"][0]["id"] == id(FROZEN_HOLDER)
        vias = [s["via"] for s in live.path(target)["path"]]
        assert vias == [None, "attribute 'FROZEN_HOLDER'", "item[1]"]
    finally:
        gc.unfreeze()
        del FROZEN_HOLDER


def test_path_not_found_for_unreachable_cycle():
    was = gc.isenabled()
    gc.disable()
    try:
        a, b = Leak(1), Leak(2)
        a.other, b.other = b, a
        target = id(a)
        del a, b
        got = live.path(target)
        assert got == {"pid": os.getpid(), "id": target, "found": False, "path": []}
    finally:
        gc.collect()
        if was:
            gc.enable()


# ---- bad ids -------------------------------------------------------------------

def _assert_gone(oid):
    status, body = query(_pyloot.LIVE_DETAIL, "", oid)
    assert status == 404, (oid, body)
    assert body["error"] == "object %d is no longer available" % oid
    assert body["pid"] == os.getpid()
    for kind in (_pyloot.LIVE_PARENTS, _pyloot.LIVE_CHILDREN, _pyloot.LIVE_PATH):
        assert query(kind, "", oid)[0] == 404
    with pytest.raises(LookupError):
        live.describe(oid)


@pytest.mark.parametrize("oid", [0, 1, 2**64 - 1, 2**63, 4096])
def test_bad_ids_are_404(oid):
    _assert_gone(oid)


def test_plausible_heap_address_is_404(leaks):
    _assert_gone(id(leaks[0]) + 8)
    _assert_gone(id(leaks[0]) - 16)
    assert live.describe(id(leaks[0]))["id"] == id(leaks[0])  # still answering


def test_freed_object_is_404():
    class Big:
        __slots__ = tuple("s%d" % i for i in range(100))  # > 512 bytes: not pymalloc

    objs = [Big() for _ in range(3)]
    ids = [id(o) for o in objs]
    del objs
    gc.collect()
    for oid in ids:
        status, body = query(_pyloot.LIVE_DETAIL, "", oid)
        # The address may have been reused by a new object: never a Big.
        assert status == 404 or body["type_name"] != "Big", body


def test_negative_and_huge_ids_are_400():
    for oid in (-1, 2**64):
        status, body = query(_pyloot.LIVE_DETAIL, "", oid)
        assert status == 400 and "error" in body and body["pid"] == os.getpid()
        with pytest.raises(ValueError):
            live.describe(oid)


# ---- hostile reprs ---------------------------------------------------------

class RaisingRepr:
    def __repr__(self):
        raise ValueError("no repr for you")


class HugeRepr:
    def __repr__(self):
        return "x" * (10 * 1024 * 1024)


class RecursiveRepr:
    def __repr__(self):
        return repr(self)


class SlowRepr:
    def __repr__(self):
        while True:
            pass


class NotStrRepr:
    def __repr__(self):
        return 42


def test_repr_that_raises():
    obj = RaisingRepr()
    assert live.describe(id(obj))["repr"] == "<repr failed: ValueError: no repr for you>"


def test_repr_of_10_mb_is_truncated():
    obj = HugeRepr()
    got = live.describe(id(obj))
    assert got["repr"] == "x" * 65536 + "\u2026"
    listed = live.objects(group_of(HugeRepr))["objects"][0]["repr"]
    assert listed == "x" * 1024 + "\u2026"


def test_repr_that_recurses():
    obj = RecursiveRepr()
    assert live.describe(id(obj))["repr"].startswith("<repr failed: RecursionError")


def test_repr_returning_non_str():
    obj = NotStrRepr()
    assert live.describe(id(obj))["repr"].startswith("<repr failed: TypeError")


def test_slow_reprs_are_stopped():
    objs = [SlowRepr() for _ in range(8)]
    t0 = time.monotonic()
    got = live.objects(group_of(SlowRepr))
    elapsed = time.monotonic() - t0
    assert got["total"] == 8
    reprs = [o["repr"] for o in got["objects"]]
    assert reprs[0] == "<repr failed: TimeoutError: repr() took too long>"
    assert reprs[-1] == "<repr skipped: time budget exhausted>"
    assert elapsed < 3.0
    del objs


def test_tracer_is_restored():
    seen = []

    def tracer(frame, event, arg):
        seen.append(event)
        return None

    obj = RaisingRepr()
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        live.describe(id(obj))
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(old)


def test_big_builtin_containers_have_bounded_repr():
    big = list(range(1_000_000))
    t0 = time.monotonic()
    got = live.describe(id(big))
    assert time.monotonic() - t0 < 3.0  # bounded: not the 7 MB repr of every item
    assert got["repr"].startswith("[0, 1, 2, ")
    assert len(got["repr"]) == 65537 and got["repr"].endswith("\u2026")
    blob = b"z" * (10 * 1024 * 1024)
    holder = [blob]
    assert live.describe(id(holder))["repr"].startswith("[b'zzz")
    nested = {"a": [1, (2,)], "b": {3}, "c": frozenset(), "d": set(), "e": ()}
    assert live.describe(id(nested))["repr"] == repr(nested)


def test_attr_values_are_truncated():
    obj = Leak(1)
    obj.big = "y" * 5000
    got = live.describe(id(obj))
    assert got["attrs"]["big"] == "'" + "y" * 1023 + "\u2026"


def test_concurrent_queries_from_threads(leaks):
    results, errors = [], []

    def ask():
        try:
            for _ in range(5):
                results.append(live.objects(group_of(Leak))["total"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == [25] * 20


# ---- heap changes while answering -----------------------------------------

VICTIMS = []


class Clearing:
    """Its repr drops every other listed object: the page must hold them."""

    def __repr__(self):
        if VICTIMS:
            VICTIMS.clear()
            gc.collect(0)
        return "<Clearing>"


def test_repr_that_frees_the_other_objects_of_the_page():
    VICTIMS[:] = [Clearing() for _ in range(20)]
    got = live.objects(group_of(Clearing))
    assert got["total"] == 20
    assert all(o["repr"] == "<Clearing>" for o in got["objects"])
    assert VICTIMS == []
    assert live.objects(group_of(Clearing))["total"] == 0


class Reentrant:
    def __repr__(self):
        return "<Reentrant seeing %d>" % live.objects(group_of(Leak))["total"]


class EndlesslyReentrant:
    def __repr__(self):
        return "<%d>" % live.objects(group_of(EndlesslyReentrant))["total"]


def test_repr_that_asks_pyloot_itself(leaks):
    objs = [Reentrant(), Reentrant()]
    got = live.objects(group_of(Reentrant))
    assert [o["repr"] for o in got["objects"]] == ["<Reentrant seeing 25>"] * 2
    # A repr that lists its own type recurses without end: the deadline stops it.
    loop = EndlesslyReentrant()
    t0 = time.monotonic()
    assert live.describe(id(loop))["repr"].startswith("<repr failed: ")
    assert time.monotonic() - t0 < 5
    assert gc.isenabled()
    assert sys.gettrace() is None
    del objs, loop


def test_queries_while_another_thread_churns_the_heap(leaks):
    stop = threading.Event()

    def churn():
        junk = []
        while not stop.is_set():
            junk.append([Leak(i) for i in range(50)])
            if len(junk) > 20:
                del junk[:10]
            time.sleep(0)

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(20):
            got = live.objects(group_of(Leak), limit=5)
            assert got["total"] >= 25
            oid = got["objects"][0]["id"]
            for kind in (_pyloot.LIVE_DETAIL, _pyloot.LIVE_PARENTS, _pyloot.LIVE_CHILDREN, _pyloot.LIVE_PATH):
                status, _ = query(kind, "", oid)
                assert status in (200, 404)
        assert live.path(id(leaks[0]))["found"]
    finally:
        stop.set()
        t.join()
    assert gc.isenabled()


def test_one_object_of_every_type_answers():
    """Whatever the object (frames, generators, code, cells, weakrefs, C
    types of the stdlib...), every query answers valid JSON, 200 or 404."""
    def gen():
        yield 1

    running = gen()
    next(running)
    one_per_type = {}
    for o in gc.get_objects():
        one_per_type.setdefault(type(o), id(o))
    sample = sorted(one_per_type.items(), key=lambda kv: (str(kv[0].__module__), str(kv[0].__qualname__)))
    step = max(1, len(sample) // 100)  # ~100 types: a few seconds
    for i, (_, oid) in enumerate(sample[::step]):
        kinds = [_pyloot.LIVE_DETAIL, _pyloot.LIVE_CHILDREN, _pyloot.LIVE_PARENTS]
        if i % 10 == 0:
            kinds.append(_pyloot.LIVE_PATH)
        for kind in kinds:
            status, body = query(kind, "", oid)
            assert status in (200, 404), body
    del running


def test_exit_while_a_thread_is_querying():
    """A daemon thread in the middle of live queries when the interpreter
    exits: the process ends cleanly (no hang, no crash)."""
    import subprocess

    code = (
        "import threading, time\n"
        "from pyloot import live\n"
        "keep = [[i] for i in range(20000)]\n"
        "def spin():\n"
        "    while True:\n"
        "        live.objects('list', limit=50)\n"
        "        live.path(id(keep[-1]))\n"
        "threading.Thread(target=spin, daemon=True).start()\n"
        "time.sleep(0.3)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=60,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
