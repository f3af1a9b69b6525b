"""Annotated graphs: plain vertices and edges carrying ids and text labels.

What ObjectGraph.annotated() returns, what to_json/from_json round-trip and
what to_dot/export_image draw. The graph algorithms are IDirectedGraph's:
they run in C on a core graph over the vertex objects, made once (see _core).
"""
import collections
import json
import os
import subprocess

from pyloot.i_directed_graph import IDirectedGraph

__all__ = ["AnnotatedEdge", "AnnotatedGraph", "AnnotatedVertex", "dot_quote"]


def dot_quote(text):
    """Quote text as a DOT string.

    DOT's only escape inside quotes is \\" ; other backslashes are kept, so
    the labels' deliberate \\n line breaks survive. Real newlines become \\n,
    carriage returns are dropped, and a trailing backslash (which would
    escape the closing quote) gets a space after it.
    """
    text = str(text).replace('"', '\\"').replace("\r\n", "\\n").replace("\n", "\\n")
    text = text.replace("\r", "")
    if text.endswith("\\"):
        text += " "
    return '"' + text + '"'


class AnnotatedVertex:
    """A vertex: an integer id (the object's id()) and a description."""

    __slots__ = ("id", "annotation")

    def __init__(self, id, annotation):
        self.id = id
        self.annotation = annotation

    def __eq__(self, other):
        if not isinstance(other, AnnotatedVertex):
            return NotImplemented
        return self.id == other.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return "AnnotatedVertex(id={!r}, annotation={!r})".format(self.id, self.annotation)


class AnnotatedEdge:
    """An edge: an integer id, a label (or None) and the ids of its ends."""

    __slots__ = ("id", "annotation", "head", "tail")

    def __init__(self, id, annotation, head, tail):
        self.id = id
        self.annotation = annotation
        self.head = head
        self.tail = tail

    def __eq__(self, other):
        if not isinstance(other, AnnotatedEdge):
            return NotImplemented
        return self.id == other.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return "AnnotatedEdge(id={!r}, annotation={!r}, head={!r}, tail={!r})".format(
            self.id, self.annotation, self.head, self.tail
        )


class AnnotatedGraph(IDirectedGraph):
    """A directed graph of AnnotatedVertex and AnnotatedEdge objects.

    Vertices compare by id, so a vertex rebuilt from JSON finds its
    counterpart (vertex_set(), vertex_dict() and vertex_equal() are
    IDirectedGraph's: set, dict and ==). Edges whose ends are not vertices
    are dropped.
    """

    def __init__(self, vertices, edges):
        self._obj_map = {}
        for vertex in vertices:
            self._obj_map.setdefault(vertex.id, vertex)
        self._edges = [e for e in edges if e.tail in self._obj_map and e.head in self._obj_map]
        self._out_edges = collections.defaultdict(list)
        self._in_edges = collections.defaultdict(list)
        for edge in self._edges:
            self._out_edges[edge.tail].append(edge)
            self._in_edges[edge.head].append(edge)
        self._core_graph = None

    # -- the directed-graph interface --

    @property
    def vertices(self):
        """The vertices (a list, in insertion order)."""
        return list(self._obj_map.values())

    @property
    def edges(self):
        """The edges (a list)."""
        return list(self._edges)

    def head(self, edge):
        """The vertex edge points to (KeyError when it is not a vertex)."""
        return self._obj_map[edge.head]

    def tail(self, edge):
        """The vertex edge leaves (KeyError when it is not a vertex)."""
        return self._obj_map[edge.tail]

    def out_edges(self, vertex):
        """The edges leaving vertex, in edge order (KeyError when it is not a vertex)."""
        self._check(vertex)
        return list(self._out_edges[vertex.id])

    def in_edges(self, vertex):
        """The edges entering vertex, in edge order (KeyError when it is not a vertex)."""
        self._check(vertex)
        return list(self._in_edges[vertex.id])

    def children(self, vertex):
        return [self._obj_map[e.head] for e in self.out_edges(vertex)]

    def parents(self, vertex):
        return [self._obj_map[e.tail] for e in self.in_edges(vertex)]

    def references(self):
        return [(self._obj_map[e.tail], self._obj_map[e.head]) for e in self._edges]

    def __len__(self):
        return len(self._obj_map)

    def __iter__(self):
        return iter(list(self._obj_map.values()))

    def __contains__(self, vertex):
        return isinstance(vertex, AnnotatedVertex) and vertex.id in self._obj_map

    def __repr__(self):
        return "<pyloot.{} object of size {} at 0x{:x}>".format(
            type(self).__name__, len(self), id(self)
        )

    def _check(self, vertex):
        if vertex not in self:
            raise KeyError(vertex)

    def full_subgraph(self, vertices):
        """The subgraph on the given vertices with every edge between them."""
        chosen = {}
        for v in vertices:
            self._check(v)
            chosen.setdefault(v.id, self._obj_map[v.id])
        edges = [e for vid in chosen for e in self._out_edges[vid] if e.head in chosen]
        return type(self)(vertices=chosen.values(), edges=edges)

    # -- algorithms: IDirectedGraph's, on a core graph made once --

    def _core(self):
        if self._core_graph is None:
            self._core_graph = super()._core()
        return self._core_graph

    # -- JSON --

    def to_json(self):
        """The graph as a JSON string: {"vertices": [...], "edges": [...]}."""
        return json.dumps(
            {
                "vertices": [{"id": v.id, "annotation": v.annotation} for v in self],
                "edges": [
                    {"id": e.id, "annotation": e.annotation, "head": e.head, "tail": e.tail}
                    for e in self._edges
                ],
            }
        )

    @classmethod
    def from_json(cls, json_graph):
        """Rebuild a graph from to_json() output."""
        obj = json.loads(json_graph)
        return cls(
            vertices=[AnnotatedVertex(id=v["id"], annotation=v["annotation"]) for v in obj["vertices"]],
            edges=[
                AnnotatedEdge(id=e["id"], annotation=e["annotation"], head=e["head"], tail=e["tail"])
                for e in obj["edges"]
            ],
        )

    def export_json(self, filename):
        """Write to_json() to filename, UTF-8 encoded."""
        with open(filename, "wb") as f:
            f.write(self.to_json().encode("utf-8"))

    @classmethod
    def import_json(cls, filename):
        """Read a graph written by export_json."""
        with open(filename, "rb") as f:
            return cls.from_json(f.read().decode("utf-8"))

    # -- Graphviz --

    def to_dot(self):
        """The graph in the DOT language (edges first, then vertices)."""
        lines = ["digraph G {\n"]
        for e in self._edges:
            if e.annotation is None:
                lines.append("    {} -> {};\n".format(e.tail, e.head))
            else:
                lines.append(
                    "    {} -> {} [label={}];\n".format(e.tail, e.head, dot_quote(e.annotation))
                )
        for v in self:
            lines.append("    {} [label={}];\n".format(v.id, dot_quote(v.annotation)))
        lines.append("}\n")
        return "".join(lines)

    def export_image(self, filename="refcycle.png", format=None, dot_executable="dot"):
        """Render the graph with Graphviz's dot into filename.

        format defaults to the filename's extension, else png. Raises
        RuntimeError when dot cannot be run (Debian: apt-get install graphviz)
        or fails.
        """
        export_dot_image(self.to_dot(), filename, format, dot_executable)


def export_dot_image(dot_source, filename, format=None, dot_executable="dot"):
    """Run dot on dot_source to write filename (see AnnotatedGraph.export_image)."""
    if format is None:
        extension = os.path.splitext(filename)[1]
        format = extension[1:] if len(extension) > 1 else "png"
    cmd = [dot_executable, "-T{}".format(format), "-o{}".format(filename)]
    try:
        proc = subprocess.run(cmd, input=dot_source.encode("utf-8"), capture_output=True)
    except OSError as exc:
        raise RuntimeError(
            "cannot run Graphviz {!r} ({}): install Graphviz (Debian: apt-get install graphviz) "
            "or pass dot_executable='/path/to/dot'".format(dot_executable, exc.strerror or exc)
        ) from exc
    if proc.returncode != 0:
        raise RuntimeError(
            "Graphviz {!r} failed with status {}: {}".format(
                dot_executable, proc.returncode, proc.stderr.decode("utf-8", "replace").strip()
            )
        )
