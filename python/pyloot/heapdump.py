"""Heap dumps: a worker's object graph kept in a file (docs/heapdump.md).

``dump_heap(path)`` writes one of this process (``PyLoot.dump_heap`` does the
same), ``GET /api/heapdump?pid=`` fetches one of any worker, ``pyloot heap
FILE`` and ``pyloot heap OLD NEW`` analyse them without Python, and
``load_heap(path)`` gives refcycle's graph API offline: a :class:`HeapGraph`,
an AnnotatedGraph whose vertices carry the dump's descriptions and ids (the
objects' addresses) and whose edges carry their labels.
"""
import os

from pyloot import _pyloot
from pyloot._graph_annotated import AnnotatedEdge, AnnotatedGraph, AnnotatedVertex

__all__ = ["HeapGraph", "dump_heap", "load_heap"]


def dump_heap(path, graph=None):
    """Write a heap dump of this process (or of an ObjectGraph) to ``path``.

    Returns figures: ``objects``, ``edges``, ``bytes`` (the file's size),
    ``snapshot_seconds`` and ``gather_seconds`` (GIL held) and
    ``write_seconds`` (encoding and writing, GIL released).
    """
    return _pyloot.heap_dump(os.fspath(path), graph)


class HeapGraph(AnnotatedGraph):
    """An AnnotatedGraph read from a heap dump, with what the dump knows
    beyond the edges: each vertex's type name, shallow size, retained size
    (dominator tree of the dump) and whether it is a root, and the worker
    (``info``: pid, start, host, time_ms, argv, python; ``total``: bytes
    reachable from the roots)."""

    def __init__(self, vertices, edges, heap=None):
        super().__init__(vertices, edges)
        self._heap = heap if heap is not None else {}

    @property
    def info(self):
        return dict(self._heap.get("info", {}))

    @property
    def total(self):
        return self._heap.get("total", 0)

    def _value(self, key, vertex):
        self._check(vertex)
        return self._heap[key][vertex.id]

    def type_name(self, vertex):
        """The type name of a vertex, as the history names it ("module.Class")."""
        return self._value("type", vertex)

    def size(self, vertex):
        """Shallow size in bytes (with the untracked objects only it holds)."""
        return self._value("size", vertex)

    def retained_size(self, vertex):
        """Bytes the vertex keeps alive: its subtree of the dump's dominator tree."""
        return self._value("retained", vertex)

    def is_root(self, vertex):
        """Whether the vertex was referenced from outside the graph (a root)."""
        return bool(self._value("flags", vertex) & 1)

    def full_subgraph(self, vertices):
        sub = super().full_subgraph(vertices)
        sub._heap = self._heap
        return sub


def load_heap(path):
    """Read a heap dump written by ``dump_heap`` or ``/api/heapdump``.

    Returns a :class:`HeapGraph`. Raises ValueError for a damaged,
    truncated or foreign file (the message says what is wrong) and OSError
    when it cannot be read.
    """
    raw = _pyloot.heap_load(os.fspath(path))
    ids = raw["ids"]
    types = raw["types"]
    vertices = [AnnotatedVertex(id=i, annotation=a) for i, a in zip(ids, raw["descriptions"])]
    edges = [
        AnnotatedEdge(id=n, annotation=label, head=ids[head], tail=ids[tail])
        for n, (tail, head, label) in enumerate(raw["edges"])
    ]
    heap = {
        "info": {k: raw[k] for k in ("pid", "start", "host", "time_ms", "argv", "python")},
        "total": raw["total"],
        "type": {i: types[t] for i, t in zip(ids, raw["type"])},
        "size": dict(zip(ids, raw["sizes"])),
        "retained": dict(zip(ids, raw["retained"])),
        "flags": dict(zip(ids, raw["flags"])),
    }
    return HeapGraph(vertices, edges, heap)
