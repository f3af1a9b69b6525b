"""refcycle's graph interface on pyloot's graphs: IDirectedGraph, edges by
number with head/tail/in_edges/out_edges, vertex_set/vertex_dict/
vertex_equal, and strongly connected components (built when used) against a
plain Python Tarjan."""
import random

import pytest

import pyloot
from pyloot import AnnotatedGraph, IDirectedGraph, ObjectGraph
from pyloot._graph_annotated import AnnotatedEdge, AnnotatedVertex
from pyloot.i_directed_graph import IdentityDict, IdentitySet


def multi_graph():
    """a: two self-loops; b: two references to a; c: one to b, one to itself."""
    a = []
    a.append(a)
    a.append(a)
    b = [a, a]
    c = [b]
    c.append(c)
    return [a, b, c], ObjectGraph([a, b, c])


def ends(g):
    return [(g.tail(e), g.head(e)) for e in g.edges]


def same_pairs(got, want):
    key = lambda p: (id(p[0]), id(p[1]))  # noqa: E731
    return sorted(map(key, got)) == sorted(map(key, want))


# -- IDirectedGraph --


def test_idirectedgraph_is_the_base_of_both_graphs():
    (a, b, c), g = multi_graph()
    assert pyloot.IDirectedGraph is IDirectedGraph
    from pyloot.i_directed_graph import IDirectedGraph as again

    assert again is IDirectedGraph
    assert issubclass(ObjectGraph, IDirectedGraph) and issubclass(AnnotatedGraph, IDirectedGraph)
    for graph in (g, g.full_subgraph([a]), g.strongly_connected_components()[0],
                  g.descendants(c), g.annotated(), pyloot.snapshot()):
        assert isinstance(graph, IDirectedGraph)
    with pytest.raises(TypeError):
        IDirectedGraph()


class DictGraph(IDirectedGraph):
    """A minimal user graph: edges are (name, tail, head) triples."""

    def __init__(self, vertices, edges):
        self._vertices = list(vertices)
        self._edges = list(edges)

    vertices = property(lambda self: self._vertices)
    edges = property(lambda self: self._edges)

    def head(self, edge):
        return edge[2]

    def tail(self, edge):
        return edge[1]

    def out_edges(self, vertex):
        if vertex not in self._vertices:
            raise KeyError(vertex)
        return [e for e in self._edges if e[1] == vertex]

    def in_edges(self, vertex):
        if vertex not in self._vertices:
            raise KeyError(vertex)
        return [e for e in self._edges if e[2] == vertex]

    def full_subgraph(self, vertices):
        vs = [v for v in self._vertices if v in list(vertices)]
        return DictGraph(vs, [e for e in self._edges if e[1] in vs and e[2] in vs])


def test_a_user_subclass_gets_the_algorithms():
    # 1 <-> 2 -> 3 -> 3 (self-loop), 4 -> 1; 5 alone
    edges = [("a", 1, 2), ("b", 2, 1), ("c", 2, 3), ("d", 3, 3), ("e", 4, 1)]
    g = DictGraph([1, 2, 3, 4, 5], edges)
    assert g.children(2) == [1, 3] and g.parents(1) == [2, 4]
    assert len(g) == 5 and 3 in g and 6 not in g and list(g) == [1, 2, 3, 4, 5]
    assert g.references() == [(1, 2), (2, 1), (2, 3), (3, 3), (4, 1)]
    assert sorted(g.descendants(1).vertices) == [1, 2, 3]
    assert sorted(g.descendants(4, generations=1).vertices) == [1, 4]
    assert sorted(g.ancestors(1).vertices) == [1, 2, 4]
    assert sorted(g.shortest_path(4, 3).vertices) == [1, 2, 3, 4]
    assert sorted(g.shortest_cycle(3).vertices) == [3]
    with pytest.raises(ValueError):
        g.shortest_path(3, 1)
    with pytest.raises(ValueError):
        g.shortest_path(1, 99)
    with pytest.raises(ValueError):
        g.shortest_cycle(5)
    with pytest.raises(KeyError):
        g.descendants(99)
    sccs = g.strongly_connected_components()
    assert sorted(sorted(c.vertices) for c in sccs) == [[1, 2], [3], [4], [5]]
    assert sorted(sorted(c.vertices) for c in g.source_components()) == [[4], [5]]
    assert g.vertex_set() == set() and g.vertex_dict() == {}
    assert g.vertex_equal(1, 1.0) and not g.vertex_equal(1, 2)
    assert sorted((g - g.full_subgraph([1, 2])).vertices) == [3, 4, 5]
    assert sorted((g & g.full_subgraph([1, 2, 9])).vertices) == [1, 2]
    assert g.count_by(lambda v: v % 2) == {1: 3, 0: 2}
    assert g.find_by(lambda v: v > 3) == [4, 5]


# -- ObjectGraph: edges by number --


def test_object_graph_edges_multi_edges_and_self_loops():
    (a, b, c), g = multi_graph()
    assert list(g.edges) == [0, 1, 2, 3, 4, 5]
    assert [(id(t), id(h)) for t, h in ends(g)] == [
        (id(a), id(a)), (id(a), id(a)), (id(b), id(a)), (id(b), id(a)),
        (id(c), id(c)), (id(c), id(b)),  # a list reports its items last first
    ]
    assert g.out_edges(a) == [0, 1] and g.out_edges(b) == [2, 3] and g.out_edges(c) == [4, 5]
    assert g.in_edges(a) == [0, 1, 2, 3] and g.in_edges(b) == [5] and g.in_edges(c) == [4]
    assert same_pairs(ends(g), g.references())
    for v in (a, b, c):
        assert [id(g.head(e)) for e in g.out_edges(v)] == [id(x) for x in g.children(v)]
        assert [id(g.tail(e)) for e in g.in_edges(v)] == [id(x) for x in g.parents(v)]
        assert all(g.tail(e) is v for e in g.out_edges(v))
        assert all(g.head(e) is v for e in g.in_edges(v))


def test_object_graph_edges_of_subgraphs_and_snapshots():
    (a, b, c), g = multi_graph()
    sub = g.full_subgraph([c, b])  # c's self-loop and c -> b; b -> a leaves
    assert len(sub.edges) == 2
    assert same_pairs(ends(sub), [(c, b), (c, c)])
    s = pyloot.snapshot()
    assert c in s
    assert same_pairs([(s.tail(e), s.head(e)) for e in s.out_edges(c)], [(c, b), (c, c)])
    tails = [s.tail(e) for e in s.in_edges(a)]  # this frame holds a too
    assert sum(t is a for t in tails) == 2 and sum(t is b for t in tails) == 2


def test_object_graph_bad_edges_and_vertices():
    (a, b, c), g = multi_graph()
    for bad in (6, -1, 2**70, "0", 1.0, True, None):
        with pytest.raises(KeyError):
            g.head(bad)
        with pytest.raises(KeyError):
            g.tail(bad)
    for bad in ([], 1, None):
        with pytest.raises(KeyError):
            g.out_edges(bad)
        with pytest.raises(KeyError):
            g.in_edges(bad)
    empty = ObjectGraph()
    assert list(empty.edges) == []
    with pytest.raises(KeyError):
        empty.head(0)


def test_object_graph_vertex_set_dict_equal_by_identity():
    x, y = [], []
    assert ObjectGraph.vertex_equal(x, x) and not ObjectGraph.vertex_equal(x, y)
    s = ObjectGraph.vertex_set()
    assert isinstance(s, IdentitySet)
    s.add(x)
    s.add(x)
    s.add(y)
    assert len(s) == 2 and x in s and y in s and [] not in s
    s.discard(x)
    assert list(s) == [y] and list(s)[0] is y
    d = ObjectGraph.vertex_dict()
    assert isinstance(d, IdentityDict)
    d[x] = 1
    d[y] = 2
    d[x] = 3
    assert len(d) == 2 and d[x] == 3 and d[y] == 2 and [] not in d
    assert list(d)[0] is x
    with pytest.raises(KeyError):
        d[[]]
    del d[x]
    assert list(d.items()) == [(y, 2)]
    (a, b, c), g = multi_graph()
    assert g.vertex_set() is not g.vertex_set()


# -- AnnotatedGraph --


def test_annotated_graph_edges_multi_edges_and_self_loops():
    (a, b, c), g = multi_graph()
    ag = g.annotated()
    va, vb, vc = (AnnotatedVertex(id=id(o), annotation=None) for o in (a, b, c))
    assert len(ag.edges) == 6
    assert sorted((ag.tail(e).id, ag.head(e).id) for e in ag.edges) == sorted(
        (id(t), id(h)) for t, h in ends(g)
    )
    assert [e.id for e in ag.out_edges(va)] == [0, 1]
    assert sorted(e.id for e in ag.in_edges(va)) == [0, 1, 2, 3]
    assert [ag.head(e) for e in ag.out_edges(vb)] == [va, va]
    assert [ag.tail(e) for e in ag.in_edges(vc)] == [vc]
    assert ag.children(vc) == [vc, vb] and sorted(v.id for v in ag.parents(va)) == sorted(
        [id(a), id(a), id(b), id(b)]
    )
    with pytest.raises(KeyError):
        ag.out_edges(AnnotatedVertex(id=1, annotation=None))
    with pytest.raises(KeyError):
        ag.head(AnnotatedEdge(id=9, annotation=None, head=1, tail=id(a)))
    assert ag.vertex_set() == set() and ag.vertex_dict() == {}
    assert ag.vertex_equal(va, AnnotatedVertex(id=id(a), annotation="other"))
    assert not ag.vertex_equal(va, vb)
    sccs = ag.strongly_connected_components()
    assert sorted(len(x) for x in sccs) == [1, 1, 1]
    assert [v.id for v in ag.source_components()[0]] == [id(c)]


# -- strongly connected components against a reference --


def tarjan(n, adjacency):
    """Reference: the SCCs of vertices 0..n-1 as a list of frozensets
    (iterative Tarjan, written for clarity)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in range(n):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for j in range(i, len(adjacency[v])):
                w = adjacency[v][j]
                if w not in index:
                    work.append((v, j + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                members = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    members.add(w)
                    if w == v:
                        break
                out.append(frozenset(members))
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
    return out


def check_components(objects, g):
    """g's components equal the reference partition, are ordered sinks first,
    and each built graph is the induced subgraph."""
    number = {id(o): i for i, o in enumerate(g)}
    adjacency = [[number[id(g.head(e))] for e in g.out_edges(o)] for o in g]
    want = set(tarjan(len(number), adjacency))
    sccs = g.strongly_connected_components()
    assert len(sccs) == len(want)
    got = [frozenset(number[id(o)] for o in comp) for comp in sccs]
    assert set(got) == want
    assert sccs.sizes() == [len(s) for s in got]
    place = {v: k for k, members in enumerate(got) for v in members}
    for v, heads in enumerate(adjacency):
        for w in heads:
            assert place[w] <= place[v]  # edges go to earlier components
    for k in range(0, len(sccs), max(1, len(sccs) // 50)):
        comp = sccs[k]
        assert isinstance(comp, ObjectGraph)
        members = got[k]
        want_pairs = sorted(
            (v, w) for v in members for w in adjacency[v] if w in members
        )
        assert sorted((number[id(t)], number[id(h)]) for t, h in comp.references()) == want_pairs
    entered = {place[w] for v, heads in enumerate(adjacency) for w in heads if place[w] != place[v]}
    sources = g.source_components()
    assert [frozenset(number[id(o)] for o in s) for s in sources] == [
        got[k] for k in range(len(got)) if k not in entered
    ]
    again = g.strongly_connected_components()
    assert [frozenset(number[id(o)] for o in comp) for comp in again] == got
    return sccs


def test_scc_singleton_heavy_equals_reference():
    rng = random.Random(5)
    lists = [[i] for i in range(3000)]
    for _ in range(200):  # some lists refer to others: chains and a few cycles
        x, y = rng.randrange(3000), rng.randrange(3000)
        lists[x].append(lists[y])
    sccs = check_components(lists, ObjectGraph(lists))
    assert max(sccs.sizes()) < 3000 and sccs.sizes().count(1) > 2500


def test_scc_one_giant_component_equals_reference():
    rng = random.Random(7)
    nodes = [[] for _ in range(3000)]
    for i, node in enumerate(nodes):
        node.append(nodes[(i + 1) % len(nodes)])
        node.append(nodes[rng.randrange(len(nodes))])
    tail = [nodes[0]]  # a source outside the ring
    sccs = check_components(nodes + [tail], ObjectGraph(nodes + [tail]))
    assert sorted(sccs.sizes()) == [1, 3000]
    giant = sccs[sccs.sizes().index(3000)]
    assert len(giant.edges) == 6000
    assert len(giant.strongly_connected_components()) == 1


def test_scc_random_graphs_equal_reference():
    rng = random.Random(11)
    for n in (1, 2, 5, 40, 300):
        objs = [[] for _ in range(n)]
        for _ in range(rng.randrange(2 * n + 1)):
            objs[rng.randrange(n)].append(objs[rng.randrange(n)])
        check_components(objs, ObjectGraph(objs))


def test_components_sequence_behaviour():
    lists = [[] for _ in range(6)]
    lists[0].append(lists[1])
    lists[1].append(lists[0])
    lists[2].append(lists[3])
    lists[3].append(lists[4])
    lists[4].append(lists[2])
    lists[4].append(lists[5])
    g = ObjectGraph(lists)
    sccs = g.strongly_connected_components()
    assert isinstance(sccs, pyloot.Components)
    import collections.abc

    assert isinstance(sccs, collections.abc.Sequence)
    assert len(sccs) == 3 and sccs.sizes() == [2, 1, 3]  # Tarjan's order from lists[0]
    assert [len(c) for c in sccs] == [2, 1, 3]
    assert len(sccs[-1]) == 3 and [len(c) for c in sccs[1:]] == [1, 3]
    assert [len(c) for c in sccs[::-1]] == [3, 1, 2]
    with pytest.raises(IndexError):
        sccs[3]
    with pytest.raises(IndexError):
        sccs[-4]
    with pytest.raises(TypeError):
        sccs["0"]
    assert sccs != [] and ObjectGraph().strongly_connected_components() == []
    assert "3 strongly connected components" in repr(sccs)

    sccs.sort(key=len)  # no graph built
    assert sccs.sizes() == [1, 2, 3]
    sccs.sort(key=len, reverse=True)
    assert sccs.sizes() == [3, 2, 1]
    ties = ObjectGraph([[], [], []]).strongly_connected_components()
    first = [id(next(iter(c))) for c in ties]
    ties.sort(key=len, reverse=True)  # stable, as list.sort
    assert [id(next(iter(c))) for c in ties] == first

    sources = g.source_components()
    assert sources.sizes() == [2, 3]
    sources.sort(key=len, reverse=True)
    assert sources.sizes() == [3, 2] and list(sources[0]) == list(sccs[0])

    other = g.strongly_connected_components()
    other.sort(key=lambda c: -len(c))  # builds the graphs once, then keeps them
    assert other.sizes() == [3, 2, 1]
    assert other[0] is other[0] and other[0] == other[0]
    assert pyloot.key_cycles() == [] or isinstance(pyloot.key_cycles(), list)


def test_component_graphs_outlive_the_sequence_and_keep_objects():
    a, b = [], []
    a.append(b)
    b.append(a)
    g = ObjectGraph([a, b])
    sccs = g.strongly_connected_components()
    comp = sccs[0]
    del sccs, g
    assert len(comp) == 2 and a in comp and comp.children(a)[0] is b


def test_scc_of_a_snapshot_places_every_vertex_once():
    lists = [[i] for i in range(2000)]
    ring = [[] for _ in range(50)]
    for i, node in enumerate(ring):
        node.append(ring[(i + 1) % len(ring)])
    s = pyloot.snapshot()
    sccs = s.strongly_connected_components()
    sizes = sccs.sizes()
    assert sum(sizes) == len(s)
    mine = {id(o) for o in lists} | {id(o) for o in ring}
    found = {}
    seen = 0
    for k, comp in enumerate(sccs):
        assert len(comp) == sizes[k]
        seen += len(comp)
        for o in comp:
            if id(o) in mine:
                found.setdefault(id(o), []).append(k)
    assert seen == len(s)
    assert all(len(ks) == 1 for ks in found.values()) and len(found) == len(mine)
    assert all(sizes[found[id(o)][0]] == 1 for o in lists)
    assert {found[id(o)][0] for o in ring} == {found[id(ring[0])][0]}
    assert sizes[found[id(ring[0])][0]] == 50
