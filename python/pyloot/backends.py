"""Where pyloot keeps its samples.

The default, :class:`LMDBBackend`, is one LMDB environment shared by every
process of a server: each worker writes its own records, and any worker (or
the ``pyloot`` command) reads all of them. The store itself is C
(``src/core/store.c``); these classes only choose its path and open it.
"""
import atexit
import os
import shutil
import tempfile

from pyloot import _pyloot

__all__ = ["BaseBackend", "LMDBBackend", "InMemoryBackend", "HTTPRemoteBackend", "default_path"]


def default_path():
    """The zero-config store directory of the server this process belongs to.

    Workers of one server (a gunicorn master and its workers, a uvicorn
    supervisor and its workers) share it; two servers on one machine never do:
    the name holds the incarnation (pid and start time) of the topmost
    ancestor that runs the same interpreter binary.
    """
    pid, start = _pyloot.server_root()
    base = os.path.join(tempfile.gettempdir(), "pyloot-%d" % os.getuid())
    return os.path.join(base, "%d-%d" % (pid, start))


class BaseBackend:
    """A place where the collector writes and the handler reads."""

    #: the handler refuses requests marked ``wsgi.multiprocess``
    refuse_multiprocess = False

    def get_store(self):
        """The open :class:`pyloot._pyloot.Store`."""
        raise NotImplementedError


class LMDBBackend(BaseBackend):
    """The shared LMDB store (the default).

    :param path: the environment directory; default ``$PYLOOT_DB``, else
        :func:`default_path`.
    :param map_size: LMDB map size in bytes (0: the store's default).
    :param max_samples: samples kept per process incarnation (0: default).
    :param max_age: seconds samples and dead incarnations are kept (0: default).
    :param max_bytes: the store prunes above this many bytes (0: default).
    """

    def __init__(self, path=None, map_size=0, max_samples=0, max_age=0, max_bytes=0):
        self._path = path or os.environ.get("PYLOOT_DB") or None
        self._options = dict(map_size=map_size, max_samples=max_samples, max_age=max_age,
                             max_bytes=max_bytes)
        self._store = None

    @property
    def path(self):
        """The store directory (resolved on first use)."""
        if self._path is None:
            self._path = default_path()
        return self._path

    def get_store(self):
        """The store, opened on first use. Never raises for a store that
        cannot be used (damaged, unwritable, full, of another version): the
        Store is then unavailable, its ``error`` says what is wrong and how
        to fix it, and each use retries with backoff (docs/store.md)."""
        if self._store is None or self._store.closed:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)) or ".", mode=0o700, exist_ok=True)
            except OSError:
                pass  # the store's own open says what is wrong
            self._store = _pyloot.Store(self.path, guard=True, **self._options)
        return self._store

    @property
    def error(self):
        """Why the store cannot be used right now, or None."""
        return self.get_store().error

    def close(self):
        """Closes the store (reopened on next use)."""
        if self._store is not None:
            self._store.close()
            self._store = None


class InMemoryBackend(LMDBBackend):
    """A store private to this process, removed at exit.

    Like the original pyloot's in-memory backend, the server refuses to answer
    requests marked ``wsgi.multiprocess``: each worker would only see itself.
    """

    refuse_multiprocess = True

    def __init__(self, **options):
        self._tmp = tempfile.mkdtemp(prefix="pyloot-mem-")
        super().__init__(os.path.join(self._tmp, "store"), **options)
        atexit.register(shutil.rmtree, self._tmp, True)


class HTTPRemoteBackend(BaseBackend):
    """Remote mode: workers push their samples to a ``pyloot`` server.

    Not available in this version: the ``pyloot`` command does not accept
    samples yet. Use the default shared store, which already merges every
    worker of a server.
    """

    def __init__(self, host, port):
        self.host = host
        self.port = port
        raise NotImplementedError(
            "remote mode (HTTPRemoteBackend, PyLoot(host=..., port=...)) is not available in this "
            "version of pyloot; the default shared store already merges every worker of a server")
