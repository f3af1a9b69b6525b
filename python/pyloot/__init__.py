"""pyloot: memory-leak detector for Python web servers.

Embed it::

    from pyloot import PyLoot
    pyloot = PyLoot()
    pyloot.start()
    app = DispatcherMiddleware(app, {"/_pyloot": pyloot.get_wsgi()})
"""
from pyloot import _pyloot
from pyloot._pyloot import Error, TooLargeError, __version__
from pyloot.backends import BaseBackend, HTTPRemoteBackend, InMemoryBackend, LMDBBackend
from pyloot.core import PyLoot
from pyloot.objectgraph import AnnotatedGraph, Components, ObjectGraph, Suspect, cycles_created_by, garbage, key_cycles, objects_reachable_from, snapshot
from pyloot.i_directed_graph import IDirectedGraph
from pyloot.server import PyLootServer
from pyloot.heapdump import HeapGraph, dump_heap, load_heap

#: The names whose values pyloot shows as ``<redacted>`` unless
#: ``PyLoot(redact=...)`` replaces them (a case-insensitive substring match).
DEFAULT_REDACT = tuple(_pyloot.REDACT_DEFAULT.split("\n"))

__all__ = [
    "__version__",
    "DEFAULT_REDACT",
    "Error",
    "TooLargeError",
    "PyLoot",
    "PyLootServer",
    "BaseBackend",
    "LMDBBackend",
    "InMemoryBackend",
    "HTTPRemoteBackend",
    "AnnotatedGraph",
    "Components",
    "IDirectedGraph",
    "ObjectGraph",
    "Suspect",
    "cycles_created_by",
    "garbage",
    "key_cycles",
    "objects_reachable_from",
    "snapshot",
    "HeapGraph",
    "dump_heap",
    "load_heap",
]
