"""IDirectedGraph: the abstract base of ObjectGraph and AnnotatedGraph.

refcycle's interface of a directed graph: a subclass says what its
vertices and edges are (`vertices`, `edges`, `head`, `tail`, `out_edges`,
`in_edges`, `full_subgraph`) and gets every other method. The algorithms
(ancestors, descendants, shortest paths and cycles, strongly connected
components) run in C, on a core graph built from those methods; ObjectGraph
implements them all in C directly.

    from pyloot import IDirectedGraph      # or: from pyloot.i_directed_graph import IDirectedGraph
"""
import abc
import collections
from collections.abc import Container, Iterable, MutableMapping, MutableSet, Sized

from pyloot._pyloot import Graph as _Graph

__all__ = ["IDirectedGraph", "IdentityDict", "IdentitySet"]


class IdentitySet(MutableSet):
    """A set of objects compared by identity (any object, hashable or not),
    in insertion order. Holds a reference to each element."""

    __slots__ = ("_items",)

    def __init__(self, iterable=()):
        self._items = {}
        for item in iterable:
            self.add(item)

    def __contains__(self, item):
        return id(item) in self._items

    def __iter__(self):
        return iter(list(self._items.values()))

    def __len__(self):
        return len(self._items)

    def add(self, item):
        self._items.setdefault(id(item), item)

    def discard(self, item):
        self._items.pop(id(item), None)

    def update(self, iterable):
        for item in iterable:
            self.add(item)

    def __repr__(self):
        return "IdentitySet({!r})".format(list(self._items.values()))


class IdentityDict(MutableMapping):
    """A mapping whose keys are objects compared by identity (any object,
    hashable or not), in insertion order. Holds a reference to each key."""

    __slots__ = ("_keys", "_values")

    def __init__(self):
        self._keys = {}
        self._values = {}

    def __getitem__(self, key):
        try:
            return self._values[id(key)]
        except KeyError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        self._keys.setdefault(id(key), key)
        self._values[id(key)] = value

    def __delitem__(self, key):
        if id(key) not in self._keys:
            raise KeyError(key)
        del self._keys[id(key)]
        del self._values[id(key)]

    def __contains__(self, key):
        return id(key) in self._keys

    def __iter__(self):
        return iter(list(self._keys.values()))

    def __len__(self):
        return len(self._keys)

    def __repr__(self):
        return "IdentityDict({!r})".format([(k, self._values[i]) for i, k in self._keys.items()])


class IDirectedGraph(Container, Iterable, Sized):
    """Abstract base class of directed graphs (refcycle's).

    A subclass provides `vertices`, `edges` (collections supporting
    iteration and membership), `head(edge)`, `tail(edge)`,
    `out_edges(vertex)`, `in_edges(vertex)` and `full_subgraph(vertices)`;
    `vertex_set()`, `vertex_dict()` and `vertex_equal(v, w)` say how its
    vertices compare (by ==, unless overridden: ObjectGraph compares by
    identity). Multi-edges and self-loops are allowed.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def vertices(self):
        """The vertices: a collection with iteration and fast membership."""

    @property
    @abc.abstractmethod
    def edges(self):
        """The edges: a collection with iteration and fast membership."""

    @abc.abstractmethod
    def head(self, edge):
        """The vertex `edge` points to."""

    @abc.abstractmethod
    def tail(self, edge):
        """The vertex `edge` leaves."""

    @abc.abstractmethod
    def out_edges(self, vertex):
        """The edges leaving `vertex` (an iterable)."""

    @abc.abstractmethod
    def in_edges(self, vertex):
        """The edges entering `vertex` (an iterable)."""

    @abc.abstractmethod
    def full_subgraph(self, vertices):
        """The subgraph on `vertices` with every edge of this graph between them."""

    @classmethod
    def vertex_set(cls):
        """An empty set for vertices of this kind of graph (a plain set)."""
        return set()

    @classmethod
    def vertex_dict(cls):
        """An empty mapping keyed by vertices of this kind of graph (a plain dict)."""
        return dict()

    @classmethod
    def vertex_equal(cls, vertex1, vertex2):
        """Whether two vertices are the same vertex (==)."""
        return vertex1 == vertex2

    def __len__(self):
        return len(self.vertices)

    def __iter__(self):
        return iter(self.vertices)

    def __contains__(self, vertex):
        return vertex in self.vertices

    def __repr__(self):
        return "<{}.{} object of size {} at 0x{:x}>".format(
            type(self).__module__, type(self).__name__, len(self), id(self)
        )

    def children(self, vertex):
        """The heads of the edges leaving vertex, one per edge."""
        return [self.head(edge) for edge in self.out_edges(vertex)]

    def parents(self, vertex):
        """The tails of the edges entering vertex, one per edge."""
        return [self.tail(edge) for edge in self.in_edges(vertex)]

    def references(self):
        """(tail, head) pairs, one per edge, grouped by tail."""
        return [(tail, self.head(edge)) for tail in self.vertices for edge in self.out_edges(tail)]

    # -- the algorithms, in C on a core graph of the same shape --

    def _core(self):
        """(core graph, index) where the core graph's vertices are this graph's
        vertices (one per vertex_equal class) and index is a vertex_dict
        mapping each to its number."""
        order = []
        index = self.vertex_dict()
        for vertex in self.vertices:
            if vertex not in index:
                index[vertex] = len(order)
                order.append(vertex)
        pairs = []
        for number, vertex in enumerate(order):
            for edge in self.out_edges(vertex):
                head = index.get(self.head(edge))
                if head is not None:
                    pairs.append((number, head))
        return _Graph._from_edges(order, pairs), index, order

    def _core_vertex(self, index, order, vertex):
        """The core graph's object for vertex (KeyError when not a vertex)."""
        return order[index[vertex]]

    def _lift(self, core_subgraph):
        return self.full_subgraph(list(core_subgraph))

    def descendants(self, start, generations=None):
        """The subgraph of what start reaches (start included), within
        `generations` steps when given."""
        core, index, order = self._core()
        return self._lift(core.descendants(self._core_vertex(index, order, start), generations))

    def ancestors(self, start, generations=None):
        """The subgraph of what reaches start (start included), within
        `generations` steps when given."""
        core, index, order = self._core()
        return self._lift(core.ancestors(self._core_vertex(index, order, start), generations))

    def shortest_path(self, start, end):
        """The subgraph on a shortest path from start to end; ValueError when
        there is none."""
        core, index, order = self._core()
        first = self._core_vertex(index, order, start)
        try:
            last = order[index[end]]
        except (KeyError, TypeError):
            last = end  # not a vertex: no path, the core says so
        return self._lift(core.shortest_path(first, last))

    def shortest_cycle(self, start):
        """The subgraph on a shortest cycle through start; ValueError when
        there is none."""
        core, index, order = self._core()
        return self._lift(core.shortest_cycle(self._core_vertex(index, order, start)))

    def strongly_connected_components(self):
        """The strongly connected components as a list of subgraphs, sinks
        first (an edge between two components goes from a later one to an
        earlier one)."""
        core = self._core()[0]
        return [self._lift(c) for c in core.strongly_connected_components()]

    def source_components(self):
        """The components no edge from another component enters: every
        vertex is reachable from one of them."""
        core = self._core()[0]
        return [self._lift(c) for c in core.source_components()]

    def count_by(self, classifier):
        """collections.Counter of classifier(vertex) over the vertices."""
        return collections.Counter(classifier(v) for v in self)

    def find_by(self, predicate):
        """The vertices for which predicate(vertex) is true."""
        return [v for v in self if predicate(v)]

    def __sub__(self, other):
        """The subgraph on the vertices of self that are not in other."""
        return self.full_subgraph([v for v in self.vertices if v not in other.vertices])

    def __and__(self, other):
        """The subgraph on the vertices of self that are also in other."""
        return self.full_subgraph([v for v in self.vertices if v in other.vertices])
