"""One size rule: the history's bytes and the `size` of live objects come from
the same function and agree with sys.getsizeof() (docs/live-objects.md, "Sizes").

The whole-heap comparisons run in a fresh interpreter: with gc disabled and
nothing else running, the heap seen by gc.get_objects() and by the count pass
right after it is the same, byte for byte.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pyloot import PyLoot

SCRIPT = textwrap.dedent(r"""
    import abc, array, codecs, collections, gc, json, sys
    from pyloot import _pyloot, live

    class Plain:
        def __init__(self):
            self.a, self.b = 1, [2]

    class Slotted:
        __slots__ = ("a", "b")
        def __init__(self):
            self.a, self.b = 1, 2

    class SubDict(dict):
        pass

    class SelfSized(list):
        def __sizeof__(self):  # written in Python: never called by pyloot
            raise AssertionError("called")

    def grown_list():
        items = []
        for i in range(37):
            items.append(i)
        return items

    def shifted_deque():
        d = collections.deque(range(300))
        for _ in range(70):
            d.popleft()  # leftindex no longer 0: the block count depends on it
        return d

    def gen():
        x = yield 1
        yield x

    async def coro():
        return 1

    async def agen():
        yield 1

    def frames(depth, keep):
        keep.append(sys._getframe())
        if depth:
            frames(depth - 1, keep)
        return keep

    started = gen()
    next(started)
    exhausted = gen()
    list(exhausted)
    grown = bytearray(b"x" * 10)
    grown.extend(b"y" * 100)
    grown_array = array.array("d", range(10))
    grown_array.extend(range(33))
    non_ascii = "caf\u00e9 \u4e16\u754c" * 3
    non_ascii.encode("utf-8")  # no cached copy: only PyUnicode_AsUTF8 caches one
    with_utf8 = "\u00e9t\u00e9 " * 4
    try:
        codecs.lookup(with_utf8)  # an "s" argument: caches the UTF-8 copy in the str
    except LookupError:
        pass
    Named = type("Named", (), {"a": 1})
    named = Named()
    named.x, named.y = 1, 2  # shared keys cached on the type

    samples = {
        "dict": {"k%d" % i: i for i in range(20)},
        "list": grown_list(),
        "set": set(range(40)),
        "frozenset": frozenset(range(9)),
        "tuple": (1, [2], "three"),
        "collections.deque": shifted_deque(),
        "collections.OrderedDict": collections.OrderedDict.fromkeys(range(30)),
        "collections.defaultdict": collections.defaultdict(list, {"a": [1], "b": [2]}),
        "__main__.Plain": Plain(),
        "__main__.Slotted": Slotted(),
        "__main__.SubDict": SubDict(a=1, b=2),
        "bytearray": grown,
        "array.array": grown_array,
        "generator": gen(),
        "generator started": started,
        "generator exhausted": exhausted,
        "coroutine": coro(),
        "async_generator": agen(),
        "frame": frames(3, [])[-1],
        "frame running": sys._getframe(),
        "code": gen.__code__,
        "type": Named,
        "type static": int,
        "type metaclass": abc.ABC,
        "int": 12345678901234567890,
        "int zero": 0,
        "bool": True,
        "str": "plain ascii",
        "str non-ascii": non_ascii,
        "str with utf-8": with_utf8,
        "str subclass": type("S", (str,), {})("abc"),
        "collections.OrderedDict subclass": type("OD", (collections.OrderedDict,), {})(a=1),
        "collections.deque empty": collections.deque(),
        "collections.deque subclass": type("DQ", (collections.deque,), {})(range(100)),
        "array.array subclass": type("A", (array.array,), {})("i", range(7)),
        "bytearray subclass": type("B", (bytearray,), {})(b"abc"),
    }
    self_sized = SelfSized([1, 2, 3])

    # Each object's live size is sys.getsizeof().
    sizes = {name: [live.describe(id(o))["size"], sys.getsizeof(o)] for name, o in samples.items()}
    class NotSelfSized(list):
        pass
    plain = NotSelfSized()
    preheader = sys.getsizeof(plain) - plain.__sizeof__()  # gc header, managed dict
    sizes["self_sized"] = [live.describe(id(self_sized))["size"], list.__sizeof__(self_sized) + preheader]

    # The count pass (what the history stores) against sys.getsizeof() over
    # the same heap: the tracked objects and, once each, the untracked
    # objects they refer to (and those untracked containers refer to).
    # Bookkeeping objects are made before the snapshot, or after the count
    # pass in a function's locals, which no tracked object refers to.
    names = [n for n in samples if " " not in n and not n.startswith(("int", "str", "bool"))]

    def reference(snapshot):
        by_type = dict.fromkeys(names, 0)
        def add(o):
            t = type(o)
            name = t.__name__ if t.__module__ == "builtins" else t.__module__ + "." + t.__qualname__
            if name in by_type:
                by_type[name] += sys.getsizeof(o)
        seen = set()
        stack = []
        for o in snapshot:
            add(o)
            stack.append(o)
            while stack:
                for r in gc.get_referents(stack.pop()):
                    if gc.is_tracked(r) or id(r) in seen:
                        continue
                    seen.add(id(r))
                    add(r)
                    stack.append(r)
        add(snapshot)  # gc.get_objects() leaves itself out
        return by_type

    counted = totals = by_type = None
    gc.collect()
    gc.disable()
    gc.unfreeze()  # pyloot counts the permanent generation too (3.12 starts with objects in it)
    snapshot = gc.get_objects()
    counted = _pyloot.count_types()
    by_type = reference(snapshot)
    gc.enable()
    totals = {name: [counted.get(name, [0, 0])[1], by_type[name]] for name in names}
    for o in samples.values():
        if hasattr(o, "close") and type(o).__name__ in ("coroutine", "generator"):
            o.close()
    print(json.dumps({"sizes": sizes, "totals": totals}))
""")


def run_script():
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def measured():
    return run_script()


KINDS = ["dict", "list", "set", "frozenset", "tuple", "collections.deque", "collections.OrderedDict",
         "collections.defaultdict", "__main__.Plain", "__main__.Slotted", "__main__.SubDict"]
# Types whose C __sizeof__ is not their layout, computed without calling it
# (and without creating an int per object in the count pass).
COMPUTED = ["bytearray", "array.array", "generator", "coroutine", "async_generator", "frame", "code", "type"]
LIVE_ONLY = ["generator started", "generator exhausted", "frame running", "type static", "type metaclass",
             "int", "int zero", "bool", "str", "str non-ascii", "str with utf-8", "str subclass",
             "collections.OrderedDict subclass", "collections.deque empty", "collections.deque subclass",
             "array.array subclass", "bytearray subclass"]


@pytest.mark.parametrize("kind", KINDS + COMPUTED + LIVE_ONLY)
def test_live_size_is_getsizeof(measured, kind):
    live_size, getsizeof = measured["sizes"][kind]
    assert live_size == getsizeof


@pytest.mark.parametrize("kind", KINDS + COMPUTED)
def test_count_pass_bytes_are_the_sum_of_getsizeof(measured, kind):
    counted, expected = measured["totals"][kind]
    assert counted == expected


def test_a_sizeof_written_in_python_is_never_called(measured):
    live_size, c_level = measured["sizes"]["self_sized"]
    assert live_size == c_level


class Sized:
    def __init__(self):
        self.a, self.b, self.c = 1, 2, 3


class SizedSlots:
    __slots__ = ("x",)

    def __init__(self):
        self.x = None


class SizedDict(dict):
    pass


def test_history_bytes_per_object_are_each_objects_size(tmp_path):
    from pyloot import live

    keep = [Sized() for _ in range(40)] + [SizedSlots() for _ in range(30)] + [SizedDict() for _ in range(20)]
    loot = PyLoot(path=str(tmp_path / "store"), interval=60)
    try:
        loot.collect_objects()
        server = loot.get_wsgi()
        for cls, n in ((Sized, 40), (SizedSlots, 30), (SizedDict, 20)):
            name = "%s.%s" % (cls.__module__, cls.__qualname__)
            status, reason, headers, body = server.handle("GET", "/api/history", "q=" + name, None, False)
            assert status == 200
            (row,) = [t for t in json.loads(body)["types"] if t["name"] == name]
            assert row["count"] == n
            one = keep[[type(o) for o in keep].index(cls)]
            size = live.describe(id(one))["size"]
            assert size == sys.getsizeof(one)
            assert row["bytes"] == n * size
    finally:
        loot.stop(blocking=True)
    del keep


def test_graph_sizes_are_the_live_sizes():
    """The object graph sizes its vertices with the same function as live
    objects and the history (sizeof.c): on 3.12+ that includes the types whose
    dict the interpreter keeps aside (dict, list, set: tp_dict is NULL)."""
    import collections

    from pyloot import live, snapshot

    def make():
        # Small ints, None and types belong to the root: each object retains
        # itself (a dict of atoms is not tracked: these hold a class).
        d = collections.deque([None] * 300)
        for _ in range(70):
            d.popleft()
        return [{1: Sized}, {i: Sized for i in range(20)}, list(range(37)), set(range(40)), frozenset(range(9)), d,
                collections.defaultdict(list), SizedDict(a=Sized), SizedSlots(), Sized()]

    holder = make()
    s = snapshot()
    for obj in holder:
        assert s.retained_size(obj) == live.describe(id(obj))["size"] == sys.getsizeof(obj), type(obj)


NO_OBJECTS = textwrap.dedent(r"""
    import collections, gc, json, sys, tracemalloc
    from pyloot import _pyloot

    def gen():
        yield 1

    def frame():
        return sys._getframe()

    N = 10000
    heap = [gen() for _ in range(N)]
    heap += [frame() for _ in range(N)]
    heap += [collections.deque(range(i % 100)) for i in range(N)]
    heap += [type("T%d" % i, (), {}) for i in range(N)]
    started = [gen() for _ in range(N)]
    for g in started:
        next(g)
    gc.collect()
    gc.disable()
    _pyloot.count_types()  # the type table and its names exist from now on
    tracemalloc.start()
    blocks = sys.getallocatedblocks()
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    counted = _pyloot.count_types()
    current, peak = tracemalloc.get_traced_memory()
    grown = sys.getallocatedblocks() - blocks
    tracemalloc.stop()
    gc.enable()
    print(json.dumps({"blocks": grown, "peak": peak - traced, "kept": current - traced,
                      "counts": {k: counted[k][0] for k in ("generator", "frame", "collections.deque", "type")},
                      "types": len(counted)}))
""")


def test_the_count_pass_creates_no_object_per_object():
    # 50,000 objects whose C __sizeof__ is not their layout: the pass sizes
    # them from their fields. What it allocates is its answer (one entry per
    # type), not something per object.
    out = subprocess.run([sys.executable, "-c", NO_OBJECTS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["counts"]["generator"] >= 20000 and r["counts"]["frame"] >= 10000
    assert r["counts"]["collections.deque"] >= 10000 and r["counts"]["type"] >= 10000
    per_type = 64 * 1024 + 512 * r["types"]
    assert r["blocks"] < 10 * r["types"] + 100
    assert r["peak"] < per_type
    assert r["kept"] < per_type
