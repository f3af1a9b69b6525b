"""The object graph: refcycle's API, with the graph and its algorithms in C.

    from pyloot import snapshot, garbage, ObjectGraph

Everything the refcycle user guide shows works with only the import line
changed. The graph lives in C arrays (pyloot._pyloot.Graph); this module
adds the thin Python layer: the creators, counting and searching with
Python callables, and the annotated/JSON/DOT views.
"""
import collections
import collections.abc
import gc

from pyloot._graph_annotated import (
    AnnotatedEdge,
    AnnotatedGraph,
    AnnotatedVertex,
    export_dot_image,
)
from pyloot._pyloot import Components
from pyloot._pyloot import Graph as _Graph
from pyloot._pyloot import graph_snapshot as _graph_snapshot
from pyloot.i_directed_graph import IdentityDict, IdentitySet, IDirectedGraph

collections.abc.Sequence.register(Components)

__all__ = [
    "AnnotatedEdge",
    "AnnotatedGraph",
    "AnnotatedVertex",
    "Components",
    "IDirectedGraph",
    "ObjectGraph",
    "Suspect",
    "cycles_created_by",
    "garbage",
    "key_cycles",
    "objects_reachable_from",
    "snapshot",
]


class Suspect(collections.namedtuple("Suspect", "object count retained_size path")):
    """A leak suspect, from ObjectGraph.suspects(): `object` (the list, dict or
    cache the leak accumulates in) dominates `count` instances of the type and
    retains `retained_size` bytes; `path` is a shortest chain of references
    from a root of the graph to it (a list of objects, the root first, the
    suspect last)."""

    __slots__ = ()


class ObjectGraph(_Graph, IDirectedGraph):
    """Python objects (vertices) and the references between them (edges).

    ObjectGraph(objects) takes the given objects (duplicates by identity
    dropped) and every reference between them that the gc reports. It acts
    as a container with identity membership; it keeps its objects alive until
    it is deleted. Edges are numbered 0..len(edges)-1 in the order of their
    tails, a referrer's references in the order the gc reports them. The
    methods inherited from the C type:

    head(edge), tail(edge), out_edges(obj), in_edges(obj) (edge numbers),
    children(obj), parents(obj), references(), ancestors(obj, generations=None),
    descendants(obj, generations=None), shortest_path(start, end),
    shortest_cycle(start), strongly_connected_components() and
    source_components() (Components: sequences of subgraphs, each built
    when used), full_subgraph(objects);

    and the dominator tree (built by the first of these calls):
    retained_size(obj), immediate_dominator(obj), dominated(obj),
    dominator_children(obj=None).
    """

    __slots__ = ()

    def __repr__(self):
        return "<pyloot.{} object of size {} at 0x{:x}>".format(
            type(self).__name__, len(self), id(self)
        )

    @property
    def vertices(self):
        """The graph itself: iteration, len and identity membership."""
        return self

    @property
    def edges(self):
        """Edge numbers: range(number of edges); head(e) and tail(e) give an
        edge's ends."""
        return range(self._edge_count())

    @classmethod
    def vertex_set(cls):
        """An empty set of objects compared by identity (IdentitySet)."""
        return IdentitySet()

    @classmethod
    def vertex_dict(cls):
        """An empty mapping keyed by objects compared by identity (IdentityDict)."""
        return IdentityDict()

    @classmethod
    def vertex_equal(cls, vertex1, vertex2):
        """Objects are the same vertex when they are the same object."""
        return vertex1 is vertex2

    def __sub__(self, other):
        """The subgraph on the objects of self that are not in other."""
        if isinstance(other, _Graph):
            return self._key_filter(other, False)
        return self.full_subgraph([v for v in self if v not in other])

    def __and__(self, other):
        """The subgraph on the objects of self that are also in other."""
        if isinstance(other, _Graph):
            return self._key_filter(other, True)
        return self.full_subgraph([v for v in self if v in other])

    def count_by(self, classifier):
        """collections.Counter of classifier(obj) over the objects."""
        return collections.Counter(classifier(obj) for obj in self)

    def find_by(self, predicate):
        """The objects for which predicate(obj) is true."""
        return [obj for obj in self if predicate(obj)]

    def count_by_typename(self):
        """collections.Counter of type(obj).__name__ over the objects."""
        return self.count_by(lambda obj: type(obj).__name__)

    def find_by_typename(self, typename):
        """The objects whose type's __name__ is typename."""
        return self.find_by(lambda obj: type(obj).__name__ == typename)

    def suspects(self, type_or_name, n=3):
        """Where the instances of a type accumulate: up to n Suspect records,
        best first. type_or_name is a type or its name ("Job", or qualified
        "app.models.Job"); instances of subclasses are not counted. Suspects
        are ranked by how many instances they hold as their own dominator-tree
        children (each such instance with the instances it dominates in turn)
        and through how many other children: the list, dict or cache a leak
        appends to comes first, not the module or frame that holds it. A
        suspect is never an instance itself. Raises TypeError for another
        argument."""
        return [Suspect(*found) for found in self._suspects(type_or_name, n)]

    def owned_objects(self):
        """The gc-tracked objects this graph owns: only itself (its storage is
        C memory). snapshot() already leaves graphs out."""
        return [self]

    def annotated(self):
        """An AnnotatedGraph of the same shape: vertex ids are id(obj),
        descriptions and edge labels are computed without running the
        objects' code (no __dict__ is created, no property runs)."""
        descriptions, edges = self._annotations()
        ids = [id(obj) for obj in self]
        return AnnotatedGraph(
            vertices=[AnnotatedVertex(id=i, annotation=d) for i, d in zip(ids, descriptions)],
            edges=[
                AnnotatedEdge(id=n, annotation=label, head=ids[head], tail=ids[tail])
                for n, (tail, head, label) in enumerate(edges)
            ],
        )

    def to_json(self):
        """The annotated graph as a JSON string."""
        return self.annotated().to_json()

    def export_json(self, filename):
        """Write to_json() to filename."""
        self.annotated().export_json(filename)

    def to_dot(self):
        """The annotated graph in the DOT language."""
        return self.annotated().to_dot()

    def export_image(self, filename="refcycle.png", format=None, dot_executable="dot"):
        """Render with Graphviz dot (format from the extension, else png).
        Raises RuntimeError when dot is missing or fails."""
        export_dot_image(self.to_dot(), filename, format, dot_executable)


def snapshot():
    """The graph of every gc-tracked object and of the frames of running
    threads, except pyloot's own graphs and this call's frame."""
    return _graph_snapshot(ObjectGraph, 1)


def _collect_saved(before_collect):
    """Runs the gc with DEBUG_SAVEALL and takes what it saved back out of
    gc.garbage; gc state (enabled, debug flags, gc.garbage) is restored."""
    enabled = gc.isenabled()
    flags = gc.get_debug()
    saved = gc.garbage
    start = None
    objects = []
    try:
        gc.disable()
        if before_collect is not None:
            gc.collect()
        start = len(saved)
        gc.set_debug(gc.DEBUG_SAVEALL)
        if before_collect is not None:
            before_collect()
        gc.collect()
        objects = saved[start:]
    finally:
        if start is not None:
            del saved[start:]
        gc.set_debug(flags)
        if enabled:
            gc.enable()
    return ObjectGraph(objects)


def garbage():
    """Collect cyclic garbage and return it as a graph.

    The objects stay out of gc.garbage but are kept alive by the graph:
    delete it and collect again to free them for good."""
    return _collect_saved(None)


def cycles_created_by(callable):
    """The cyclic garbage created by calling callable() (no arguments)."""
    return _collect_saved(callable)


def objects_reachable_from(obj):
    """Every object reachable from obj by following gc referents (including
    objects the gc does not track, such as strings)."""
    return ObjectGraph._reachable_from(obj)


def key_cycles():
    """Collect cyclic garbage; return the strongly connected components that
    keep the rest alive (no other garbage refers to them)."""
    return list(garbage().source_components())
