"""The WSGI application: a thin adapter around the C request handler."""
import sys

from pyloot import _pyloot
from pyloot.backends import LMDBBackend

__all__ = ["PyLootServer"]

MAX_BODY = 16 * 1024 * 1024


def _latin1(s):
    # WSGI strings are bytes decoded as latin-1; NUL cannot cross into C.
    return s.encode("latin-1", "replace").replace(b"\0", b"%00")


def _gevent_threadpool():
    """gevent's threadpool when threading is monkey-patched, else None."""
    if "gevent" not in sys.modules:
        return None
    try:
        from gevent import monkey
        if not monkey.is_module_patched("threading"):
            return None
        import gevent
        return gevent.get_hub().threadpool
    except Exception:
        return None


class PyLootServer:
    """WSGI app serving pyloot's UI and API (see docs/http-api.md).

    :param backend: where to read from (default: the shared LMDB store).
    :param disable_response_gzip: never gzip responses (when a middleware
        already does).
    :param live_timeout: seconds to wait for another worker's live objects.
    """

    def __init__(self, backend=None, disable_response_gzip=False, live_timeout=5.0):
        self._backend = backend if backend is not None else LMDBBackend()
        self._disable_gzip = bool(disable_response_gzip)
        self._live_timeout = float(live_timeout)
        self._handler = None
        self._handler_store = None

    def get_backend(self):
        return self._backend

    def _get_handler(self):
        store = self._backend.get_store()
        if self._handler is None or self._handler_store is not store:
            self._handler = _pyloot.Handler(
                store, disable_gzip=self._disable_gzip, live=True, live_timeout=self._live_timeout,
                refuse_multiprocess=self._backend.refuse_multiprocess)
            self._handler_store = store
        return self._handler

    def handle(self, method, path, query="", accept_encoding=None, multiprocess=False, body=b""):
        """Answers one request: ``(status, reason, headers, body)``."""
        handler = self._get_handler()
        args = (_latin1(method), _latin1(path), _latin1(query),
                accept_encoding.replace("\0", "") if accept_encoding else None,
                bool(multiprocess), body)
        pool = _gevent_threadpool()
        if pool is not None:
            # The handler may wait for another worker: keep the hub running.
            return pool.apply(handler.handle, args)
        return handler.handle(*args)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = environ.get("QUERY_STRING", "")
        if path == "":
            # The UI uses relative URLs: /_pyloot must become /_pyloot/.
            location = environ.get("SCRIPT_NAME", "") + "/" + ("?" + query if query else "")
            start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
            return [b""]
        body = b""
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                msg = b'{"error":"request body must be 0 to 16 MiB"}'
                start_response("413 Payload Too Large", [("Content-Type", "application/json"),
                                                          ("Content-Length", str(len(msg)))])
                return [msg]
            body = environ["wsgi.input"].read(length) if length else b""
        status, reason, headers, payload = self.handle(
            method, path, query, environ.get("HTTP_ACCEPT_ENCODING"),
            environ.get("wsgi.multiprocess", False), body)
        headers.append(("Content-Length", str(len(payload))))
        start_response("%d %s" % (status, reason), headers)
        return [b""] if method == "HEAD" else [payload]
