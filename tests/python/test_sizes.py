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
    import collections, gc, json, sys
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
    # the same heap; bookkeeping objects are made before the snapshot.
    names = list(samples) + ["type", "generator"]
    by_type = {}
    for name in names:
        by_type[name] = 0
    gc.collect()
    gc.disable()
    snapshot = gc.get_objects()
    for o in snapshot:
        t = type(o)
        name = t.__name__ if t.__module__ == "builtins" else t.__module__ + "." + t.__qualname__
        if name in by_type:
            by_type[name] += sys.getsizeof(o)
    by_type["list"] += sys.getsizeof(snapshot)  # gc.get_objects() leaves itself out
    counted = _pyloot.count_types()
    gc.enable()
    totals = {name: [counted[name][1], by_type[name]] for name in names}
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


@pytest.mark.parametrize("kind", KINDS)
def test_live_size_is_getsizeof(measured, kind):
    live_size, getsizeof = measured["sizes"][kind]
    assert live_size == getsizeof


@pytest.mark.parametrize("kind", KINDS + ["type", "generator"])
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
