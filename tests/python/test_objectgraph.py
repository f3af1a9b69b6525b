"""The object graph (refcycle API): small hand-built graphs with known
answers, creators, labels, JSON and DOT."""
import collections
import gc
import json
import os
import re
import shutil
import sys
import weakref

import pytest

from pyloot import (
    AnnotatedGraph,
    ObjectGraph,
    cycles_created_by,
    garbage,
    key_cycles,
    objects_reachable_from,
    snapshot,
)


class A:
    pass


def lists(n):
    return [[] for _ in range(n)]


# ---- container behaviour ----


def test_empty():
    for g in (ObjectGraph(), ObjectGraph([]), ObjectGraph(objects=())):
        assert len(g) == 0
        assert list(g) == []
        assert g.references() == []
        assert g.strongly_connected_components() == []
        assert g.source_components() == []


def test_repr():
    a, b = lists(2)
    g = ObjectGraph([a, b])
    assert re.fullmatch(r"<pyloot\.ObjectGraph object of size 2 at 0x[0-9a-f]+>", repr(g))


def test_identity_membership_and_dedup():
    a, b = [], []  # equal but distinct
    g = ObjectGraph([a, a, b, a])
    assert len(g) == 2
    assert a in g and b in g
    assert [] not in g
    assert 1 not in g
    assert list(g) == [a, b]


def test_from_iterator_and_untracked_objects():
    a, b = [0], [1]
    a.append(b)
    b.append(a)
    g = ObjectGraph(iter([a, b, a[0], b[0]]))
    assert len(g) == 4
    assert len(g.children(a)) == 2  # 0 and b
    assert g.children(a[0]) == []


def test_single_edge_self_loop_multi_edge():
    a, b = [0], [1]
    a.append(b)
    assert ObjectGraph([a, b]).references() == [(a, b)]
    c = [0]
    c.append(c)
    assert ObjectGraph([c]).references() == [(c, c)]
    d, e = lists(2)
    d.extend([e, e])
    g = ObjectGraph([d, e])
    assert g.references() == [(d, e), (d, e)]
    assert g.children(d) == [e, e]
    assert g.parents(e) == [d, d]


def test_children_parents():
    a, b, c, d = lists(4)
    a.extend([b, c])
    b.append(d)
    c.append(d)
    g = ObjectGraph([a, b, c, d])
    assert g.children(a) == [b, c]
    assert g.children(d) == []
    assert g.parents(a) == []
    assert g.parents(d) == [b, c]
    with pytest.raises(KeyError):
        g.children([])
    with pytest.raises(KeyError):
        g.parents([])


def test_vertices_edges():
    a, b = lists(2)
    a.append(b)
    g = ObjectGraph([a, b])
    assert a in g.vertices
    assert len(g.edges) == 1


# ---- reachability ----


def diamond():
    a, b, c, d = lists(4)
    a.extend([b, c])
    b.append(d)
    c.append(d)
    return ObjectGraph([a, b, c, d]), (a, b, c, d)


def ids(objs):
    return sorted(map(id, objs))


def test_descendants_ancestors():
    g, (a, b, c, d) = diamond()
    assert ids(g.descendants(a)) == ids([a, b, c, d])
    assert ids(g.descendants(b)) == ids([b, d])
    assert ids(g.descendants(d)) == ids([d])
    assert ids(g.ancestors(a)) == ids([a])
    assert ids(g.ancestors(d)) == ids([a, b, c, d])
    assert isinstance(g.ancestors(d), ObjectGraph)


def test_generations():
    chain = lists(6)
    for x, y in zip(chain, chain[1:]):
        x.append(y)
    g = ObjectGraph(chain)
    assert ids(g.descendants(chain[0], generations=0)) == ids(chain[:1])
    assert ids(g.descendants(chain[0], generations=2)) == ids(chain[:3])
    assert ids(g.descendants(chain[0], generations=None)) == ids(chain)
    assert ids(g.ancestors(chain[5], generations=0)) == ids(chain[5:])
    assert ids(g.ancestors(chain[5], generations=1)) == ids(chain[4:])
    assert ids(g.ancestors(chain[5], 3)) == ids(chain[2:])
    assert len(g.ancestors(chain[5], generations=100)) == 6


def test_subgraph_keeps_edges():
    g, (a, b, c, d) = diamond()
    sub = g.descendants(b)
    assert sub.references() == [(b, d)]
    full = g.full_subgraph([a, d, b])
    assert list(full) == [a, d, b]
    assert sorted(map(lambda p: (id(p[0]), id(p[1])), full.references())) == sorted(
        [(id(a), id(b)), (id(b), id(d))]
    )
    with pytest.raises(KeyError):
        g.full_subgraph([[]])


# ---- paths and cycles ----


def test_shortest_path():
    a, b, c, d, e, f = lists(6)
    a.extend([b, c, d])
    b.append(e)
    e.append(f)
    c.append(f)
    g = ObjectGraph([a, b, c, d, e, f])
    path = g.shortest_path(a, f)
    assert isinstance(path, ObjectGraph)
    assert ids(path) == ids([a, c, f])
    assert list(path) == [f, c, a]  # from the end back, as the reference lists it
    assert path.references() == [(c, f), (a, c)]


def test_shortest_path_none_and_self():
    a, b, c = lists(3)
    a.append(b)
    c.append(b)
    g = ObjectGraph([a, b, c])
    with pytest.raises(ValueError):
        g.shortest_path(a, c)
    with pytest.raises(ValueError):
        g.shortest_path(a, [])  # end not in the graph
    assert list(g.shortest_path(a, a)) == [a]


def test_shortest_cycle():
    a, b = lists(2)
    a.append(b)
    b.append(a)
    assert ids(ObjectGraph([a, b]).shortest_cycle(a)) == ids([a, b])

    a, b, c = lists(3)
    a.append(b)
    b.extend([b, c])
    c.append(a)
    assert list(ObjectGraph([a, b, c]).shortest_cycle(b)) == [b]

    a, b, c = lists(3)
    b.append(c)
    c.append(b)
    a.append(b)
    with pytest.raises(ValueError):
        ObjectGraph([a, b, c]).shortest_cycle(a)


def test_shortest_cycle_many():
    a, b, c, d, e = objs = lists(5)
    a.append(b)
    b.append(c)
    c.append(a)
    b.append(d)
    d.append(a)
    b.append(e)
    e.append(d)
    cycle = ObjectGraph(objs).shortest_cycle(a)
    assert len(cycle) == 3
    assert a in cycle and b in cycle
    assert (c in cycle) + (d in cycle) == 1


# ---- components ----


def two_cycles(link):
    a, b, c, d = ["A"], ["B"], ["C"], ["D"]
    a.append(b)
    b.append(a)
    c.append(d)
    d.append(c)
    if link:
        b.append(d)
    return ObjectGraph([a, b, c, d]), (a, b, c, d)


def test_sccs():
    g, (a, b, c, d) = two_cycles(True)
    sccs = g.strongly_connected_components()
    assert sorted(map(len, sccs)) == [2, 2]
    ab = next(s for s in sccs if a in s)
    cd = next(s for s in sccs if c in s)
    assert b in ab and c not in ab and d not in ab
    assert d in cd and a not in cd
    assert ab.children(a) == [b] and ab.children(b) == [a]
    assert cd.children(c) == [d] and cd.children(d) == [c]
    # Sinks first, like the reference.
    assert sccs[0] is not ab and c in sccs[0]


def test_sccs_self_loop_and_singletons():
    a, b, c = lists(3)
    a.append(a)
    a.append(b)
    g = ObjectGraph([a, b, c])
    sccs = g.strongly_connected_components()
    assert sorted(map(len, sccs)) == [1, 1, 1]
    sa = next(s for s in sccs if a in s)
    assert sa.references() == [(a, a)]


def test_source_components():
    g, (a, b, c, d) = two_cycles(True)
    sources = g.source_components()
    assert len(sources) == 1
    assert a in sources[0] and b in sources[0] and c not in sources[0]

    a, b, c, d = ["A"], ["B"], ["C"], ["D"]
    a.append(b)
    b.append(d)
    c.append(a)
    sources = ObjectGraph([a, b, c, d]).source_components()
    assert len(sources) == 1 and list(sources[0]) == [c]

    a, b, c, d, e, f = ["A"], ["B"], ["C"], ["D"], ["E"], ["F"]
    a.append(b)
    b.append(d)
    c.append(a)
    e.append(d)
    assert len(ObjectGraph([a, b, c, d, e, f]).source_components()) == 3


def test_long_cycle_is_one_scc():
    n = 200_000
    objs = lists(n)
    for x, y in zip(objs, objs[1:]):
        x.append(y)
    objs[-1].append(objs[0])
    g = ObjectGraph(objs)
    sccs = g.strongly_connected_components()
    assert len(sccs) == 1 and len(sccs[0]) == n
    assert len(g.source_components()) == 1
    assert len(g.shortest_cycle(objs[0])) == n
    assert len(g.ancestors(objs[0])) == n
    del objs[-1][:]  # break the cycle for the refcount


def test_long_chain():
    n = 100_000
    objs = lists(n)
    for x, y in zip(objs, objs[1:]):
        x.append(y)
    g = ObjectGraph(objs)
    assert len(g.strongly_connected_components()) == n
    assert len(g.descendants(objs[0])) == n
    assert len(g.shortest_path(objs[0], objs[-1])) == n


# ---- set operations, counting ----


def test_intersection_difference():
    a, b, c, d = lists(4)
    c.append(d)
    a.append(c)
    b.append(c)
    a.append(a)
    g1 = ObjectGraph([a, c, d])
    g2 = ObjectGraph([b, c, d])
    inter = g1 & g2
    assert ids(inter) == ids([c, d])
    assert inter.references() == [(c, d)]
    diff = g1 - g2
    assert list(diff) == [a]
    assert diff.references() == [(a, a)]
    assert list(g1 - [a]) == [c, d]  # any container
    with pytest.raises(TypeError):
        g1._key_filter([a], True)
    assert ids(g1 & [a, d]) == ids([a, d])


def test_count_find():
    a, b, c = [], [], []
    d, e = set(), set()
    f = {}
    g = ObjectGraph([a, b, c, d, e, f])
    counts = g.count_by_typename()
    assert isinstance(counts, collections.Counter)
    assert dict(counts) == dict(list=3, set=2, dict=1)
    sets = g.find_by_typename("set")
    assert len(sets) == 2 and d in sets and e in sets
    assert g.count_by(lambda o: len(o)) == collections.Counter({0: 6})
    assert g.find_by(lambda o: o is f) == [f]


def test_owned_objects():
    g = ObjectGraph([[]])
    assert g.owned_objects() == [g]


# ---- creators ----


def create_cycles():
    a = A()
    b = A()
    a.__dict__["foo"] = b
    b.__dict__["foo"] = a


def test_cycles_created_by(gc_off):
    before = list(gc.garbage)
    g = cycles_created_by(create_cycles)
    if sys.version_info < (3, 13):
        assert len(g) == 4  # two instances and their dicts
        assert len(g.references()) == 4
    else:
        # 3.13: the dicts write through to the inline values, which the
        # instances report as their referents.
        assert g.count_by_typename() == collections.Counter(A=2)
        assert len(g.references()) == 2
    assert len(cycles_created_by(lambda: None)) == 0
    assert gc.garbage == before


def test_garbage_restores_gc_state():
    sentinel = object()
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.garbage.append(sentinel)
    try:
        for want_enabled in (True, False):
            (gc.enable if want_enabled else gc.disable)()
            gc.set_debug(gc.DEBUG_UNCOLLECTABLE)
            a = []
            a.append(a)
            del a
            g = garbage()
            assert len(g) >= 1
            assert gc.isenabled() == want_enabled
            assert gc.get_debug() == gc.DEBUG_UNCOLLECTABLE
            assert gc.garbage == [sentinel]
            del g
    finally:
        gc.set_debug(flags)
        (gc.enable if enabled else gc.disable)()
        gc.garbage.remove(sentinel)


def test_garbage(gc_off):
    a, b, c = [], [], []
    a.append(a)
    b.append(c)
    c.append(b)
    del a, b, c
    graph = garbage()
    assert gc.garbage == []
    assert len(graph) == 3
    graph2 = garbage()
    assert len(graph2) == 0
    del graph
    graph = garbage()
    assert len(graph) == 3
    del graph, graph2
    gc.collect()
    assert len(garbage()) == 0


def test_key_cycles(gc_off):
    a, b, c, d = ["a"], ["b"], ["c"], ["d"]
    a.append(b)
    b.append(a)
    c.append(d)
    d.append(c)
    b.append(d)
    del a, b, c, d
    sccs = key_cycles()
    assert len(sccs) == 1 and len(sccs[0]) == 2
    del sccs
    gc.collect()


def test_objects_reachable_from():
    a, b = [], []
    a.append(b)
    g = objects_reachable_from(a)
    assert ids(g) == ids([a, b])
    g = objects_reachable_from([[1, 2, 3], [4, [5, 6]]])
    assert len(g) == 10  # 4 lists and 6 ints
    assert g.count_by_typename() == collections.Counter(list=4, int=6)


def test_snapshot_excludes_graphs_and_finds_new_objects(gc_off):
    original = snapshot()
    assert original not in snapshot()
    create_cycles()
    new = snapshot()
    diff = new - original
    # The two instances and their dicts; nothing of pyloot's.
    assert diff.count_by_typename() == collections.Counter(A=2, dict=2)
    del new, diff, original
    gc.collect()


def test_snapshot_has_running_frames():
    here = sys._getframe()
    marker = []
    s = snapshot()
    assert here in s
    # A running frame's locals are its children (3.11+: not gc edges).
    # (No closure may capture marker here: it would become a cell.)
    marker_id = id(marker)
    assert marker_id in [id(child) for child in s.children(here)]
    assert marker_id in [id(child) for child in ObjectGraph([here, marker]).children(here)]
    # The snapshot() call's own frame is left out.
    for f in s.find_by_typename("frame"):
        assert f.f_code.co_name != "snapshot"


def test_no_reference_cycles_of_our_own(gc_off):
    a, b, c = lists(3)
    a.extend([b, b])
    b.append(c)
    c.append(a)
    g = ObjectGraph([a, b, c])

    def everything():
        return [
            g.ancestors(a), g.descendants(a, 1), g.shortest_path(a, c), g.shortest_cycle(a),
            g.strongly_connected_components(), g.source_components(), g & g, g - g,
            g.annotated(), g.to_json(), g.to_dot(), g.references(), list(g),
            g.count_by_typename(), objects_reachable_from(a), snapshot(),
            AnnotatedGraph.from_json(g.to_json()).strongly_connected_components(),
        ]

    everything()  # first calls may fill caches (imports, json, re)
    gc.collect()
    results = everything()
    del results
    assert gc.collect() == 0
    c.clear()


# ---- labels ----


def labels_of(obj, *targets):
    g = ObjectGraph([obj, *targets])
    ag = g.annotated()
    out = collections.defaultdict(list)
    for e in ag.edges:
        if e.tail == id(obj):
            out[e.head].append(e.annotation)
    return out


class NewStyle:
    def foo(self):
        return 42


def outer(x):
    def inner(y):
        return x + y

    return inner


def test_labels_containers():
    x, y = [], []
    assert labels_of((x, y), x, y) == {id(x): ["item[0]"], id(y): ["item[1]"]}
    assert labels_of([x, x], x) == {id(x): ["item[0]", "item[1]"]}
    key = (1, "k")
    d = {"foo": x, key: y, 3: key}
    labels = labels_of(d, x, y, key)
    assert labels[id(x)] == ["value of key 'foo'"]
    assert labels[id(y)] == ["value of key (1, 'k')"]
    assert sorted(labels[id(key)]) == ["key (1, 'k')", "value of key 3"]
    f = frozenset([key])
    assert labels_of(f, key) == {id(key): ["element"]}


def test_labels_function_cell_method():
    f = outer(5)
    labels = labels_of(f, f.__closure__, f.__globals__, f.__code__)
    assert labels[id(f.__closure__)] == ["__closure__"]
    assert labels[id(f.__globals__)] == ["__globals__"]
    cell = f.__closure__[0]
    box = []
    inner = outer(box)
    cell = inner.__closure__[0]
    assert labels_of(cell, box) == {id(box): ["cell_contents"]}
    obj = NewStyle()
    meth = obj.foo
    labels = labels_of(meth, obj, NewStyle.__dict__["foo"])
    assert labels[id(obj)] == ["__self__"]
    assert labels[id(NewStyle.__dict__["foo"])] == ["__func__"]


def test_labels_weakref_descriptor_type():
    a = set()

    def callback(ref):
        return 5

    ref = weakref.ref(a, callback)
    assert labels_of(ref, callback) == {id(callback): ["__callback__"]}

    class C:
        pass

    descr = C.__dict__["__weakref__"]
    assert labels_of(descr, C)[id(C)] == ["__objclass__"]
    assert labels_of(C, C.__mro__)[id(C.__mro__)] == ["__mro__"]


def test_labels_instance_without_side_effects():
    calls = []

    class Sneaky:
        @property
        def prop(self):
            calls.append("prop")
            return []

        def __getattr__(self, name):
            calls.append(name)
            raise AttributeError(name)

    payload = []
    obj = Sneaky()
    obj.payload = payload
    had_dict = any(type(r) is dict for r in gc.get_referents(obj))
    labels = labels_of(obj, payload, Sneaky)
    assert calls == []
    assert labels[id(Sneaky)] == ["__class__"]
    if (3, 11) <= sys.version_info[:2] <= (3, 13):
        assert not had_dict
        assert labels[id(payload)] == ["attribute 'payload'"]
        # Still no __dict__ materialized by the annotation.
        assert not any(type(r) is dict for r in gc.get_referents(obj))
    d = obj.__dict__
    if any(r is d for r in gc.get_referents(obj)):
        # With a real __dict__ the edge goes through it (3.13 keeps the
        # values inline even then).
        assert labels_of(obj, d)[id(d)] == ["__dict__"]
    else:
        assert labels_of(obj, payload)[id(payload)] == ["attribute 'payload'"]
    if any(r is payload for r in gc.get_referents(d)):  # not when 3.13 embeds it
        assert labels_of(d, payload)[id(payload)] == ["value of key 'payload'"]
    assert calls == []


def test_labels_when_references_come_in_another_order_than_the_edges():
    # The gc visits a slot before the instance's __dict__; the labels name
    # __dict__ first. Each edge still gets its own label.
    class Both:
        __slots__ = ("s", "__dict__")

    a, b = [], []
    obj = Both()
    obj.s = a
    obj.d = b
    d = obj.__dict__  # a dict object from here on
    refs = gc.get_referents(obj)
    if any(r is d for r in refs):  # (3.13 may still visit the values inline)
        assert refs.index(a) < [i for i, r in enumerate(refs) if r is d][0]
        labels = labels_of(obj, a, d, Both)
        assert labels == {id(a): ["attribute 's'"], id(d): ["__dict__"], id(Both): ["__class__"]}
    # In the order of the edges: an instance, a small dict.
    plain = NewStyle()
    plain.x, plain.y = a, b
    assert labels_of(plain, a, b, NewStyle) == {
        id(a): ["attribute 'x'"], id(b): ["attribute 'y'"], id(NewStyle): ["__class__"]}
    d = {"x": a, "y": b, "z": a}
    assert labels_of(d, a, b) == {id(a): ["value of key 'x'", "value of key 'z'"], id(b): ["value of key 'y'"]}


def test_labels_frame_locals():
    def make_frame():
        job = []
        other = {}
        return sys._getframe(), job, other

    frame, job, other = make_frame()
    labels = labels_of(frame, job, other, frame.f_code)
    assert labels[id(job)] == ["local 'job'"]
    assert labels[id(other)] == ["local 'other'"]
    assert labels[id(frame.f_code)] == ["f_code"]


def test_vertex_annotations():
    def fn():
        pass

    class K:
        pass

    obj = NewStyle()
    objs = [[1, 2], (3,), {1: 2}, fn, obj.foo, K, K(), sys, weakref.ref(K), 12345, "s", None]
    g = ObjectGraph(objs)
    desc = {v.id: v.annotation for v in g.annotated().vertices}
    assert desc[id(objs[0])] == "list[2]"
    assert desc[id(objs[1])] == "tuple[1]"
    assert desc[id(objs[2])] == "dict[1]"
    assert desc[id(fn)] == "function\\nfn"
    assert desc[id(objs[4])] == "instancemethod\\nNewStyle.foo"
    assert desc[id(K)] == "type\\nK"
    assert desc[id(objs[6])] == "object\\n{}.K".format(__name__)
    assert desc[id(sys)] == "module\\nsys"
    assert desc[id(objs[8])] == "weakref to id 0x{:x}".format(id(K))
    assert desc[id(12345)] == "12345"
    assert desc[id("s")] == "'s'"
    assert desc[id(None)] == "None"


# ---- JSON and DOT ----


def test_to_dot():
    a, b = [], []
    a.append(b)
    dot = ObjectGraph([a, b]).to_dot()
    assert isinstance(dot, str)
    assert '{} -> {} [label="item[0]"];'.format(id(a), id(b)) in dot
    assert '{} [label="list[1]"];'.format(id(a)) in dot
    assert '{} [label="list[0]"];'.format(id(b)) in dot


def test_json_round_trip(tmp_path):
    a, b, c = [], [], {}
    a.extend([b, c])
    c["x"] = a
    g = ObjectGraph([a, b, c])
    text = g.to_json()
    data = json.loads(text)
    assert len(data["vertices"]) == 3 and len(data["edges"]) == 3
    ag = AnnotatedGraph.from_json(text)
    assert len(ag) == 3
    assert json.loads(ag.to_json()) == data
    assert ag.to_dot() == g.annotated().to_dot()
    path = tmp_path / "g.json"
    g.export_json(str(path))
    back = AnnotatedGraph.import_json(str(path))
    assert json.loads(back.to_json()) == data
    # The algorithms work on annotated graphs too.
    va = next(v for v in back if v.id == id(a))
    vb = next(v for v in back if v.id == id(b))
    assert len(back.strongly_connected_components()) == 2
    assert len(back.descendants(va)) == 3
    assert len(back.ancestors(vb)) == 3
    assert len(back.shortest_path(va, vb)) == 2
    assert len(back.shortest_cycle(va)) == 2
    assert len(back.source_components()) == 1
    assert back.children(va)[0] in back


def test_dot_escaping():
    from pyloot.objectgraph import AnnotatedEdge, AnnotatedVertex

    odd = 'quote " newline \n back\\slash é 漢字 end\\'
    ag = AnnotatedGraph(
        vertices=[AnnotatedVertex(1, odd), AnnotatedVertex(2, "x")],
        edges=[AnnotatedEdge(0, 'say "hi"\r\n', head=2, tail=1)],
    )
    dot = ag.to_dot()
    assert "\n back" not in dot  # the real newline was escaped
    assert '1 [label="quote \\" newline \\n back\\slash é 漢字 end\\ "];' in dot
    assert '1 -> 2 [label="say \\"hi\\"\\n"];' in dot
    if shutil.which("dot"):
        import subprocess

        out = subprocess.run(["dot", "-Tplain"], input=dot.encode(), capture_output=True)
        assert out.returncode == 0, out.stderr
        assert "漢字" in out.stdout.decode()


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz dot not installed")
def test_export_image(tmp_path):
    g = objects_reachable_from([[1, 2, 3], [4, [5, 6]]])
    png = tmp_path / "out.png"
    g.export_image(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "out.png.svg"
    g.export_image(str(svg))
    assert b"<svg" in svg.read_bytes()
    forced = tmp_path / "forced.png"
    g.export_image(str(forced), format="svg")
    assert b"<svg" in forced.read_bytes()


def test_export_image_without_dot(tmp_path):
    g = ObjectGraph([[]])
    with pytest.raises(RuntimeError, match="Graphviz"):
        g.export_image(str(tmp_path / "x.png"), dot_executable=str(tmp_path / "no-such-dot"))
    assert not os.path.exists(tmp_path / "x.png")


def test_reference_counts_balance():
    a, b = [], {}
    a.append(b)
    b["a"] = a
    before = sys.getrefcount(a), sys.getrefcount(b)
    for _ in range(3):
        g = ObjectGraph([a, b, a])
        parts = [
            g.ancestors(a), g.descendants(b, 0), g.shortest_path(a, b), g.shortest_cycle(a),
            g.strongly_connected_components(), g.source_components(), g & g, g - g,
            g.full_subgraph([b]), g.references(), g.children(a), g.parents(a), list(g),
            g.annotated(), objects_reachable_from(a),
        ]
        with pytest.raises(KeyError):
            g.children([])
        with pytest.raises(ValueError):
            g.descendants(b, 0).shortest_cycle(b)
        s = snapshot()
        assert a in s
        del g, parts, s
    a_after, b_after = sys.getrefcount(a), sys.getrefcount(b)
    a.clear()
    assert (a_after, b_after) == before


def test_negative_generations_mean_unlimited():
    chain = lists(4)
    for x, y in zip(chain, chain[1:]):
        x.append(y)
    g = ObjectGraph(chain)
    assert len(g.descendants(chain[0], generations=-1)) == 4
    assert len(g.ancestors(chain[3], -5)) == 4


def test_cycles_created_by_restores_state_on_error():
    enabled, flags, before = gc.isenabled(), gc.get_debug(), list(gc.garbage)

    def boom():
        a = []
        a.append(a)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cycles_created_by(boom)
    assert (gc.isenabled(), gc.get_debug(), gc.garbage) == (enabled, flags, before)


def test_annotated_graph_interface():
    a, b, c = [], [], []
    a.extend([b, c])
    b.append(c)
    ag = ObjectGraph([a, b, c]).annotated()
    assert re.fullmatch(r"<pyloot\.AnnotatedGraph object of size 3 at 0x[0-9a-f]+>", repr(ag))
    va, vb, vc = (next(v for v in ag if v.id == id(x)) for x in (a, b, c))
    assert len(ag) == 3 and va in ag and len(ag.vertices) == 3 and len(ag.edges) == 3
    assert sorted(e.annotation for e in ag.out_edges(va)) == ["item[0]", "item[1]"]
    assert [ag.tail(e) for e in ag.in_edges(vc)] in ([va, vb], [vb, va])
    assert ag.children(vb) == [vc] and sorted(map(id, ag.parents(vc))) == sorted(map(id, [va, vb]))
    assert len(ag.references()) == 3
    assert ag.head(ag.out_edges(vb)[0]) is vc
    sub = ag.full_subgraph([va, vb])
    assert len(sub) == 2 and len(sub.edges) == 1
    assert len(ag - sub) == 1 and len(ag & sub) == 2
    assert ag.count_by(lambda v: v.annotation) == collections.Counter({"list[2]": 1, "list[1]": 1, "list[0]": 1})
    assert ag.find_by(lambda v: v.annotation == "list[0]") == [vc]
    assert len(ag.descendants(va, generations=0)) == 1
    with pytest.raises(ValueError):
        ag.shortest_path(vc, va)
    with pytest.raises(ValueError):
        ag.shortest_cycle(va)
    with pytest.raises(KeyError):
        ag.children(type(va)(id=12345, annotation="stranger"))
    # A vertex rebuilt from JSON finds its counterpart (equality by id).
    twin = type(va)(id=va.id, annotation="whatever")
    assert twin in ag and ag.children(twin) == ag.children(va)


def test_graph_methods_release_the_gil_safely():
    import threading

    n = 60_000  # above the size at which the algorithms drop the GIL
    objs = lists(n)
    for x, y in zip(objs, objs[1:]):
        x.append(y)
    objs[-1].append(objs[0])
    g = ObjectGraph(objs)
    results = []

    def work():
        results.append(len(g.strongly_connected_components()[0]))
        results.append(len(g.descendants(objs[0])))
        results.append(len(g.ancestors(objs[0])))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [n] * 12
    objs[-1].clear()


def test_snapshot_includes_frozen_objects():
    frozen = [[]]
    gc.freeze()  # what gunicorn --preload apps often do after imports
    try:
        s = snapshot()
        assert id(frozen) in [id(o) for o in s.find_by(lambda o: o is frozen)]
        assert frozen in s and frozen[0] in s
    finally:
        gc.unfreeze()
