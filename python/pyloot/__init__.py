"""pyloot: memory-leak detector for Python web servers.

Embed it::

    from pyloot import PyLoot
    pyloot = PyLoot()
    pyloot.start()
    app = DispatcherMiddleware(app, {"/_pyloot": pyloot.get_wsgi()})
"""
from pyloot._pyloot import __version__
from pyloot.backends import BaseBackend, HTTPRemoteBackend, InMemoryBackend, LMDBBackend
from pyloot.core import PyLoot
from pyloot.objectgraph import AnnotatedGraph, ObjectGraph, Suspect, cycles_created_by, garbage, key_cycles, objects_reachable_from, snapshot
from pyloot.server import PyLootServer

__all__ = [
    "__version__",
    "PyLoot",
    "PyLootServer",
    "BaseBackend",
    "LMDBBackend",
    "InMemoryBackend",
    "HTTPRemoteBackend",
    "AnnotatedGraph",
    "ObjectGraph",
    "Suspect",
    "cycles_created_by",
    "garbage",
    "key_cycles",
    "objects_reachable_from",
    "snapshot",
]
