"""PyLoot: the object users embed in their server."""
import atexit
import logging
import os
import sys
import threading

from pyloot import _pyloot
from pyloot.backends import HTTPRemoteBackend, LMDBBackend
from pyloot.server import PyLootServer

__all__ = ["PyLoot"]

logger = logging.getLogger("pyloot")

_exit_hook_installed = False


def _stop_at_exit():
    # Runs before interpreter finalization: the native thread must be joined
    # while it can still take the GIL and finish its collection.
    _pyloot.collector_stop(blocking=True)
    _pyloot.remote_poll_stop()
    for loot in list(PyLoot._started):
        loot._mark_ended()


def _in_gunicorn_master():
    """True while gunicorn's arbiter (the master) loads the app (``--preload``).

    A worker's stack also holds arbiter frames (it was forked from
    ``Arbiter.spawn_worker``), so a ``spawn_worker`` frame means "worker".
    """
    if "gunicorn.arbiter" not in sys.modules:
        return False
    in_arbiter = False
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if "gunicorn" in code.co_filename:
            if code.co_name == "spawn_worker":
                return False
            if code.co_filename.endswith(os.path.join("gunicorn", "arbiter.py")):
                in_arbiter = True
        frame = frame.f_back
    return in_arbiter


class PyLoot:
    """Collects object counts by type in this process and serves the UI.

    :param host, port: remote mode: push to the central ``pyloot`` server
        there (the same as ``backend=HTTPRemoteBackend(host, port)``).
    :param backend: where samples go; default the shared LMDB store.
    :param host_name: remote mode: this worker's host as the central server
        shows it (default ``$PYLOOT_HOST_NAME``, else the host name).
    :param remote_buffer: remote mode: samples kept while the central server
        is away, a number or ``(samples, bytes)`` (default 256 or 8 MiB).
    :param interval: seconds between collections (default 30).
    :param server: a :class:`PyLootServer` to serve with (its backend is used).
    :param path: the store directory (default ``$PYLOOT_DB`` or a per-server
        directory under the temp dir).
    :param gc_collect: run ``gc.collect()`` before each count (default True).
    :param live_timeout: seconds to wait for another worker's live objects.
    :param token: every route but the UI files needs this token
        (``Authorization: Bearer <token>``, or the UI's login); default
        ``$PYLOOT_TOKEN``.
    :param allow: a callable that gets the WSGI environ, the ASGI scope or
        the Django request and returns True to let the request in (with a
        token too, either one lets a request in).
    :param redact: names whose values show as ``<redacted>``: replaces
        :data:`pyloot.DEFAULT_REDACT` (``[]`` redacts nothing); one list per
        process, the last one set wins.
    :param metrics_types: type names or fnmatch patterns ``/metrics`` always
        exports, besides the top types by count and by growth.
    :param allowed_hosts: with neither ``token`` nor ``allow``, live objects
        are answered only to requests from a loopback address that carry no
        proxy header (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) and
        whose ``Host`` is a
        loopback name (``localhost``, ``*.localhost``, ``127.x.x.x``,
        ``[::1]``), against DNS rebinding; these names (``"devbox"``,
        ``".corp.example"`` for every name under it) are accepted too.
    """

    _started = set()

    def __init__(self, host=None, port=None, backend=None, interval=30, server=None, path=None,
                 gc_collect=True, live_timeout=5.0, token=None, allow=None, redact=None, metrics_types=None,
                 host_name=None, remote_buffer=None, allowed_hosts=None):
        if host is not None or port is not None:
            if backend is not None:
                raise ValueError("give either host and port or a backend, not both")
            if host is None or port is None:
                raise ValueError("remote mode needs both host and port of the central pyloot server")
            backend = HTTPRemoteBackend(host, port, token=token, host_name=host_name, buffer=remote_buffer)
        if backend is None and server is not None:
            backend = server.get_backend()
        if backend is None:
            backend = LMDBBackend(path)
        interval = float(interval)
        if not 0.05 <= interval <= 86400:
            raise ValueError("interval must be between 0.05 and 86400 seconds")
        self._backend = backend
        if server is None:
            server = PyLootServer(backend, live_timeout=live_timeout, token=token, allow=allow,
                                  metrics_types=metrics_types, allowed_hosts=allowed_hosts)
        elif token is not None or allow is not None or metrics_types is not None or allowed_hosts is not None:
            server.set_access(token=token, allow=allow, metrics_types=metrics_types, allowed_hosts=allowed_hosts)
        if redact is not None:
            if isinstance(redact, str):
                redact = [redact]
            words = [str(w) for w in redact]
            if any("\n" in w or "\0" in w for w in words):
                raise ValueError("redact names must not contain newline or NUL")
            _pyloot.set_redact("\n".join(words))
        self._server = server
        self._asgi = None
        self.interval = interval
        self.gc_collect = bool(gc_collect)
        self._wanted = False
        self._deferred = False
        self._lock = threading.Lock()
        self._fork_hooks = False

    @property
    def backend(self):
        return self._backend

    @property
    def path(self):
        """The store directory."""
        return self._backend.path

    def start(self):
        """Starts collecting every ``interval`` seconds in a native thread.

        In a gunicorn master loading the app with ``--preload``, nothing runs
        in the master: each forked worker starts its own collector.
        """
        global _exit_hook_installed
        with self._lock:
            self._wanted = True
            if not self._fork_hooks:
                os.register_at_fork(after_in_child=self._after_fork_child,
                                    after_in_parent=self._after_fork_parent)
                self._fork_hooks = True
            if not _exit_hook_installed:
                atexit.register(_stop_at_exit)
                _exit_hook_installed = True
            if _in_gunicorn_master():
                self._deferred = True
                logger.info("pyloot: gunicorn master, the collector starts in each worker")
                return
            self._start_now()

    def _start_now(self):
        if isinstance(self._backend, HTTPRemoteBackend):
            self._start_remote()
            return
        # A store that cannot be used raises nothing here: the collector
        # starts paused and retries, the Store logged why, and /_pyloot
        # answers 503 with it (docs/store.md, "Faults").
        store = self._backend.get_store()
        if _pyloot.collector_start(store, self.interval, self.gc_collect):
            PyLoot._started.add(self)
            if getattr(store, "error", None):
                return
            msg = "pyloot: pid %d collecting every %gs into %s" % (os.getpid(), self.interval, store.path)
            logger.info(msg)
            if not logger.hasHandlers():
                print(msg, file=sys.stderr, flush=True)

    def _start_remote(self):
        backend = self._backend
        if _pyloot.collector_start(None, self.interval, self.gc_collect, remote=backend.remote_args()):
            PyLoot._started.add(self)
            backend.start_poll()
            msg = "pyloot: pid %d pushing every %gs to the central server %s as host %s" % (
                os.getpid(), self.interval, backend.address, backend.host_name)
            logger.info(msg)
            if not logger.hasHandlers():
                print(msg, file=sys.stderr, flush=True)

    def _after_fork_child(self):
        PyLoot._started.discard(self)
        if self._wanted:
            try:
                self._start_now()
            except Exception:
                logger.exception("pyloot: starting the collector in the forked child failed")

    def _after_fork_parent(self):
        # A gunicorn master that started pyloot itself (not through the
        # deferral in start) stops as soon as it spawns a worker.
        if self in PyLoot._started and _in_gunicorn_master_spawning():
            _pyloot.collector_stop(blocking=True)
            PyLoot._started.discard(self)
            self._deferred = True

    def stop(self, blocking=False):
        """Stops the collector thread; with ``blocking``, waits until it has ended.

        This does not do a final collection: call :meth:`collect_objects` for that.
        """
        with self._lock:
            self._wanted = False
            self._deferred = False
        _pyloot.collector_stop(blocking=bool(blocking))
        _pyloot.remote_poll_stop()
        PyLoot._started.discard(self)

    def is_running(self):
        """True while this process's collector thread runs."""
        return _pyloot.collector_running()

    def stats(self):
        """The collector's counters and last timings (milliseconds; ``last_gc_ms``
        and ``last_pass_ms`` are the GIL time of the last collection, the
        thread's or ``collect_objects()``'s); ``stats()["untracked"]`` the
        last pass's objects that the gc does not track (``objects``,
        ``shared``: in the visited set, ``overflow``, ``set_bytes``); in remote
        mode, ``stats()["remote"]`` holds the pusher's (queued, delivered,
        dropped, failures, outage ...) and ``stats()["poll"]`` the live-object
        poll thread's."""
        stats = _pyloot.collector_stats()
        if isinstance(self._backend, HTTPRemoteBackend):
            stats["poll"] = _pyloot.remote_poll_stats()
        return stats

    def collect_objects(self):
        """Collects now: ``gc.collect()`` (unless disabled), one count, one sample stored.
        Not in remote mode, where the collector thread pushes every sample."""
        if isinstance(self._backend, HTTPRemoteBackend):
            raise RuntimeError("in remote mode the collector thread pushes the samples: start() it")
        return _pyloot.collect(self._backend.get_store(), self.gc_collect, self.interval)

    def track_requests(self, app):
        """Counts each request of a WSGI or ASGI app under its route (the
        framework's route template, else the path with ids collapsed to
        ``{id}``) and returns the app to serve: the counts go with each
        sample, and ``/api/routes`` tells which route a growing type grows
        with. A Flask app is changed in place and returned."""
        from pyloot.requests import track_requests
        return track_requests(app)

    def get_wsgi(self):
        """The WSGI app serving the UI and the API (a :class:`PyLootServer`)."""
        return self._server

    def get_asgi(self):
        """The ASGI app serving the UI and the API (HTTP and lifespan scopes):
        mount it where :meth:`get_wsgi` would go (``app.mount("/_pyloot",
        pyloot.get_asgi())``)."""
        if self._asgi is None:
            from pyloot.asgi import PyLootASGI
            self._asgi = PyLootASGI(self._server)
        return self._asgi

    def _mark_ended(self):
        if isinstance(self._backend, HTTPRemoteBackend):
            return  # the collector thread sent the end flag when it stopped
        try:
            self._backend.get_store().end()
        except Exception:
            pass

    # Live objects of this process (docs/live-objects.md).

    def objects(self, group, offset=0, limit=100):
        """The live objects of type ``group`` (``"module.Type"``) in this process."""
        from pyloot import live
        return live.objects(group, offset=offset, limit=limit)

    def describe(self, obj_id):
        """One live object of this process by id: repr, attributes, counts."""
        from pyloot import live
        return live.describe(obj_id)

    def path_to(self, obj_id):
        """The shortest chain of referrers from a root to the object."""
        from pyloot import live
        return live.path(obj_id)

    def dump_heap(self, path):
        """Write a heap dump of this process to ``path`` (docs/heapdump.md):
        every object, its type, size, description and labelled references.
        Returns the figures of pyloot.dump_heap."""
        from pyloot import heapdump
        return heapdump.dump_heap(path)


def _in_gunicorn_master_spawning():
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "spawn_worker" and "gunicorn" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False
