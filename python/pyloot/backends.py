"""Where pyloot keeps its samples.

The default, :class:`LMDBBackend`, is one LMDB environment shared by every
process of a server: each worker writes its own records, and any worker (or
the ``pyloot`` command) reads all of them. The store itself is C
(``src/core/store.c``); these classes only choose its path and open it.
"""
import atexit
import logging
import os
import shutil
import stat
import tempfile

from pyloot import _pyloot

__all__ = ["BaseBackend", "LMDBBackend", "InMemoryBackend", "HTTPRemoteBackend", "default_path",
           "default_root"]


def default_path():
    """The zero-config store directory of the service this process belongs to.

    The service is named by its root process (the topmost ancestor that runs
    the same interpreter binary: a gunicorn master, a uvicorn supervisor):
    its working directory and its command line (argv[0] by its base name).
    Workers of one server share the store; a restart of the same service
    (same directory, same command line: a deploy, a service manager's
    restart) continues it with new incarnations; two services that differ
    in either never share one. The name is ``<dir>-<program>-<16 hex digits
    of the key>``, under :func:`default_root`; when the root process's
    directory or command line cannot be read, ``<pid>-<start>`` of that
    process, as before.
    """
    service = _pyloot.service_store()
    if service[0] is not None:
        return os.path.join(default_root(), service[0])
    pid, start = _pyloot.server_root()
    _warn_once("pyloot: the working directory and command line of process %d cannot be read (%s): "
               "its store is named after that process, and a restart starts another one" % (pid, service[1]))
    return os.path.join(default_root(), "%d-%d" % (pid, start))


_swept = False


def _sweep_once(path, max_age):
    """Once per process, at the first open of a zero-config store: notes the
    service in it and removes the stores of the same root that were idle
    longer than their retention and that no process has open (never
    raises)."""
    global _swept
    if _swept:
        return
    _swept = True
    log = logging.getLogger("pyloot")
    try:
        why = _pyloot.service_note(path, max_age)
        if why:
            log.warning("pyloot: writing the service file of %s failed: %s", path, why)
        removed = _pyloot.stores_sweep(os.path.dirname(path), path)
        if removed > 0:
            log.info("pyloot: removed %d store(s) under %s idle longer than their retention",
                     removed, os.path.dirname(path))
    except Exception:
        log.exception("pyloot: cleaning the store root failed")


def _unsafe_because(path):
    """Why the directory ``path`` must not hold this user's stores, or None.

    Created with mode 0700 when missing. Usable only if it is a real
    directory (not a symlink), owned by this process's effective uid, that
    neither group nor others can write: anyone else who can write the root
    could rename the store away and plant their own in its place."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        return "it cannot be created: %s" % (e.strerror or e)
    try:
        st = os.lstat(path)
    except OSError as e:
        return "it cannot be read: %s" % (e.strerror or e)
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if st.st_uid != os.geteuid():
        return "it belongs to uid %d, not to uid %d" % (st.st_uid, os.geteuid())
    if st.st_mode & 0o022:
        return "its mode %04o lets other users write it" % stat.S_IMODE(st.st_mode)
    return None


_warned = set()
_private = None  # the last-resort root of this process, made once


def default_root():
    """The directory that holds this user's zero-config stores.

    ``$TMPDIR/pyloot-<uid>`` (usually ``/tmp/pyloot-<uid>``), created with mode
    0700, when it is a real directory of this user that no one else can
    write. Otherwise (another user created it first, or made it a symlink)
    it is never used: one warning on the ``pyloot`` logger says the path and
    why, and the root is ``$XDG_RUNTIME_DIR/pyloot``, else
    ``~/.cache/pyloot-<uid>``, checked the same way. Both are the same in
    every process of one user, so the workers of one server still share their
    store. If none is usable, a new private directory of this process (its
    workers then do not share a store), with a second warning."""
    global _private
    tried = [os.path.join(tempfile.gettempdir(), "pyloot-%d" % os.getuid())]
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        tried.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "pyloot"))
    home = os.path.expanduser("~")
    if home.startswith("/"):
        tried.append(os.path.join(home, ".cache", "pyloot-%d" % os.getuid()))
    refused = []
    for root in tried:
        if root.startswith(home + os.sep):
            try:
                os.makedirs(os.path.dirname(root), mode=0o700, exist_ok=True)
            except OSError:
                pass  # _unsafe_because says why the root itself cannot be made
        why = _unsafe_because(root)
        if why is None:
            if refused:
                _warn_once("pyloot: not using %s for the store: %s; using %s instead"
                           % (refused[0][0], refused[0][1], root))
            return root
        refused.append((root, why))
    if _private is None:
        _private = tempfile.mkdtemp(prefix="pyloot-%d-" % os.getuid())
    private = _private
    _warn_once("pyloot: no store root is safe to use (%s); using %s, private to this process: "
               "its workers do not share a store, set PYLOOT_DB or PyLoot(path=...)"
               % ("; ".join("%s: %s" % r for r in refused), private))
    return private


def _warn_once(msg):
    if msg not in _warned:
        _warned.add(msg)
        logging.getLogger("pyloot").warning(msg)


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
        self._zero_config = self._path is None
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
            if self._zero_config and not self._store.error:
                _sweep_once(self.path, self._options["max_age"])
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
    """Remote mode: this worker pushes its samples to a central ``pyloot``
    server (``pyloot -h HOST -p PORT``) instead of a local store, answers the
    server's live-object queries over a long poll, and its own ``/_pyloot``
    shows the server's fleet-wide view (docs/http-api.md, "Remote mode").

    :param host, port: the central server.
    :param token: sent as ``Authorization: Bearer``; default ``$PYLOOT_TOKEN``.
    :param host_name: this worker's host as the server shows it; default
        ``$PYLOOT_HOST_NAME``, else the machine's host name (set it in
        containers whose host names say nothing).
    :param buffer: samples kept while the server is away, ``(samples, bytes)``
        or a number of samples (default 256 samples or 8 MiB, whichever first);
        beyond it the oldest are dropped and counted.
    :param timeout: seconds for one request to the server (connect, send,
        answer), pushes and forwarded requests alike (default 5).
    """

    def __init__(self, host, port, token=None, host_name=None, buffer=None, timeout=5.0):
        if not host or not isinstance(host, str) or any(c in host for c in "/\r\n "):
            raise ValueError("host must be the central server's host name or address")
        port = int(port)
        if not 1 <= port <= 65535:
            raise ValueError("port must be 1 to 65535")
        if token is None:
            token = os.environ.get("PYLOOT_TOKEN") or None
        if host_name is None:
            host_name = os.environ.get("PYLOOT_HOST_NAME") or _pyloot.host_name()
        raw = host_name.encode("utf-8", "replace")
        if not 1 <= len(raw) <= 63 or any(b < 0x20 or b == 0x7f for b in raw):
            raise ValueError("host_name must be 1 to 63 bytes of UTF-8 without control characters")
        if buffer is None:
            buffer = (0, 0)
        elif isinstance(buffer, int):
            buffer = (buffer, 0)
        samples, nbytes = (int(v) for v in buffer)
        if samples < 0 or nbytes < 0:
            raise ValueError("buffer sizes must be >= 0 (0: the default)")
        timeout = float(timeout)
        if not 0 < timeout <= 60:
            raise ValueError("timeout must be 0 to 60 seconds")
        self.host = host
        self.port = port
        self.token = token
        self.host_name = host_name
        self.buffer = (samples, nbytes)
        self.timeout = timeout

    @property
    def path(self):
        """Remote mode has no local store: None."""
        return None

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def get_store(self):
        raise RuntimeError("remote mode (HTTPRemoteBackend) keeps no local store: the samples are in the "
                           "central pyloot server at %s" % self.address)

    def remote_args(self):
        """What the collector's pusher takes (``collector_start(remote=...)``)."""
        return (self.host, self.port, self.token, self.host_name, self.buffer[0], self.buffer[1], self.timeout)

    def start_poll(self):
        """Starts the thread that answers the central server's live-object queries."""
        _pyloot.remote_poll_start(self.host, self.port, self.token, self.host_name)

    def forward(self, method, target, headers, body=b""):
        """Sends one request to the central server without holding the GIL:
        ``(status, headers, body)``, a 502 JSON naming the server when it
        cannot be reached, or a 400 JSON (nothing sent) when a part of the
        request holds a byte the HTTP client refuses (CR, LF, NUL...)."""
        import json
        json_headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        try:
            result = _pyloot.remote_forward(self.host, self.port, method, target, headers, body, self.timeout)
        except ValueError as e:
            msg = json.dumps({"error": "this request cannot be forwarded to the central pyloot server %s: %s"
                              % (self.address, e)}).encode()
            return 400, json_headers, msg
        if result[0] is None:
            msg = json.dumps({"error": "the central pyloot server %s is unreachable: %s"
                              % (self.address, result[1])}).encode()
            return 502, json_headers, msg
        return result
