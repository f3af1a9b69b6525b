"""The WSGI application: a thin adapter around the C request handler.

The access rule itself is C (src/core/access.c); this module only gathers
what it looks at (credentials, peer address, proxy headers, the allow
callable's verdict) from a WSGI environ.
"""
import functools
import http
import ipaddress
import logging
import os
import shlex
import sys
import threading

from pyloot import _pyloot
from pyloot.backends import HTTPRemoteBackend, LMDBBackend

__all__ = ["PyLootServer"]

logger = logging.getLogger("pyloot")

MAX_BODY = 16 * 1024 * 1024

#: WSGI keys of the headers that mean "a proxy forwarded this request".
PROXY_ENVIRON_KEYS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
#: The same headers, lower-case, as ASGI and Django name them.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _clean(value):
    """A header value for C: None stays None, NUL bytes are dropped."""
    return value.replace("\0", "") if value else None


def check_token(token):
    """The token to use: ``token``, else ``$PYLOOT_TOKEN``, else None.
    Raises ValueError for a token the access rule cannot carry in a cookie."""
    if token is None:
        token = os.environ.get("PYLOOT_TOKEN") or None
    if token is not None:
        if not isinstance(token, str) or not _pyloot.token_valid(token):
            raise ValueError("token must be 1 to 1024 visible ASCII characters other than '\"', ',', ';' "
                             "and '\\' (secrets.token_urlsafe() makes a good one)")
    return token


def allowed_hosts_option(allowed_hosts):
    """``allowed_hosts`` (host names or addresses, without port) as the C
    handler takes them: newline-separated, or None."""
    if allowed_hosts is None:
        return None
    if isinstance(allowed_hosts, str):
        allowed_hosts = [allowed_hosts]
    names = [str(n) for n in allowed_hosts]
    for n in names:
        if not n or len(n) > 253 or any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7e or c in "/@?#" for c in n):
            raise ValueError("allowed_hosts entries must be host names or addresses of 1 to 253 visible ASCII "
                             "characters (\"app.example.com\", \".example.com\" for every name under it, "
                             "\"[fd00::1]\"), got %r" % n)
    return "\n".join(names) or None


def metrics_patterns(metrics_types):
    """``metrics_types`` (names or fnmatch patterns) as the C handler takes them."""
    if metrics_types is None:
        return None
    if isinstance(metrics_types, str):
        metrics_types = [metrics_types]
    names = [str(n) for n in metrics_types]
    for n in names:
        if "\n" in n or "\0" in n or not n or len(n.encode()) > 1024:
            raise ValueError("metrics_types entries must be 1 to 1024 bytes without newline or NUL")
    return "\n".join(names)


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


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


# ---- a proxy on this machine that adds no proxy header ----

_LOCAL_FORWARDED = {"127.0.0.1", "::1"}  # gunicorn's default forwarded_allow_ips
_proxy_lock = threading.Lock()
_proxy_warned_pid = None  # the pid that logged the warning (a forked worker logs its own)
_gunicorn_proxy = {}  # pid -> gunicorn's forwarded_allow_ips when it names a proxy, else ""


def _is_loopback(peer):
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def _argv_forwarded_allow_ips(args):
    """The value of --forwarded-allow-ips in a gunicorn command line, or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--forwarded-allow-ips" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--forwarded-allow-ips="):
            value = arg.split("=", 1)[1]
    return value


def _gunicorn_forwarded_allow_ips():
    """gunicorn's ``forwarded_allow_ips`` in this worker as a list, or None
    outside gunicorn. Read from the worker's config (found on the stack of
    the thread that serves the request: sync, gthread and gevent workers),
    else from the command line, ``$GUNICORN_CMD_ARGS`` and
    ``$FORWARDED_ALLOW_IPS`` as gunicorn reads them."""
    if "gunicorn" not in sys.modules:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "handle" and "gunicorn" in frame.f_code.co_filename:
            cfg = getattr(frame.f_locals.get("self"), "cfg", None)
            value = getattr(cfg, "forwarded_allow_ips", None)
            if value is not None:
                return [str(v) for v in value]
        frame = frame.f_back
    value = _argv_forwarded_allow_ips(sys.argv)
    if value is None:
        try:
            value = _argv_forwarded_allow_ips(shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")))
        except ValueError:
            value = None
    if value is None:
        value = os.environ.get("FORWARDED_ALLOW_IPS")
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _gunicorn_names_a_proxy():
    """forwarded_allow_ips as a string when gunicorn was told of a proxy
    (set to something other than its default of this machine), else ""."""
    pid = os.getpid()
    if pid not in _gunicorn_proxy:
        try:
            value = _gunicorn_forwarded_allow_ips()
        except Exception:
            value = None
        _gunicorn_proxy[pid] = ",".join(value) if value and set(value) - _LOCAL_FORWARDED else ""
    return _gunicorn_proxy[pid]


def warn_unmarked_proxy(peer, proxied, via):
    """Logs one warning per process when a request from this machine carries
    none of the proxy headers although a proxy is in the way (a ``Via``
    header, or gunicorn's ``forwarded_allow_ips`` names one): the default
    access rule then takes everyone the proxy serves for a local user.
    Returns True when it logged. Never raises."""
    global _proxy_warned_pid
    if proxied or _proxy_warned_pid == os.getpid() or not peer or not _is_loopback(peer):
        return False
    why = "it carries a Via header (%r)" % via[:100] if via else None
    if why is None:
        told = _gunicorn_names_a_proxy()
        if not told:
            return False
        why = "gunicorn's forwarded_allow_ips is %r" % told[:100]
    with _proxy_lock:
        if _proxy_warned_pid == os.getpid():
            return False
        _proxy_warned_pid = os.getpid()
    logger.warning(
        "pyloot: a request from this machine reached pyloot with none of X-Forwarded-For, Forwarded, "
        "X-Real-IP, but %s: a proxy on this machine that adds none of those headers makes every request it "
        "forwards look local, so live objects (reprs and attributes) are answered to everyone the proxy "
        "serves. Fix: have the proxy send X-Forwarded-For (nginx: proxy_set_header X-Forwarded-For "
        "$proxy_add_x_forwarded_for;), or set a token (PyLoot(token=...), PYLOOT_TOKEN). "
        "See docs/http-api.md, \"Access\". (Logged once per process.)", why)
    return True


class PyLootServer:
    """WSGI app serving pyloot's UI and API (see docs/http-api.md).

    :param backend: where to read from (default: the shared LMDB store).
    :param disable_response_gzip: never gzip responses (when a middleware
        already does).
    :param live_timeout: seconds to wait for another worker's live objects.
    :param token, allow, metrics_types, allowed_hosts: as for
        :class:`pyloot.PyLoot` (docs/http-api.md, "Access" and "GET /metrics").
    """

    def __init__(self, backend=None, disable_response_gzip=False, live_timeout=5.0, token=None, allow=None,
                 metrics_types=None, allowed_hosts=None):
        self._backend = backend if backend is not None else LMDBBackend()
        self._disable_gzip = bool(disable_response_gzip)
        self._live_timeout = float(live_timeout)
        self._handler = None
        self._handler_store = None
        self._token = None
        self._allow = None
        self._metrics_types = None
        self._allowed_hosts = None
        self.set_access(token=token, allow=allow, metrics_types=metrics_types, allowed_hosts=allowed_hosts)

    def set_access(self, token=None, allow=None, metrics_types=None, allowed_hosts=None):
        """Sets the token (default ``$PYLOOT_TOKEN``), the allow callable,
        the types /metrics always exports and the host names live objects
        are also answered under (see :class:`pyloot.PyLoot`)."""
        if allow is not None and not callable(allow):
            raise TypeError("allow must be a callable (it gets the WSGI environ, ASGI scope or Django request)")
        self._token = check_token(token)
        self._allow = allow
        self._metrics_types = metrics_patterns(metrics_types)
        self._allowed_hosts = allowed_hosts_option(allowed_hosts)
        self._handler = None

    def verdict(self, request, path=None):
        """The allow callable's verdict on ``request`` as the C handler takes
        it: 0 (no callable, or ``path`` is a UI file the rule always
        answers), 1 (yes) or -1 (no, or it raised)."""
        if self._allow is None or (path is not None and _pyloot.route_class(path) == 0):
            return 0
        try:
            return 1 if self._allow(request) else -1
        except Exception:
            logger.exception("pyloot: the allow callable raised; the request is refused")
            return -1

    def get_backend(self):
        return self._backend

    def _get_handler(self):
        store = self._backend.get_store()
        if self._handler is None or self._handler_store is not store:
            self._handler = _pyloot.Handler(
                store, disable_gzip=self._disable_gzip, live=True, live_timeout=self._live_timeout,
                refuse_multiprocess=self._backend.refuse_multiprocess, token=self._token,
                metrics_types=self._metrics_types, allowed_hosts=self._allowed_hosts)
            self._handler_store = store
        return self._handler

    def handle(self, method, path, query="", accept_encoding=None, multiprocess=False, body=b"", *,
               authorization=None, cookie=None, peer="127.0.0.1", proxied=False, allowed=0, mount="",
               secure=False, accept=None, host=None):
        """Answers one request: ``(status, reason, headers, body)``.

        Called directly, a request counts as coming from this machine through
        no proxy (``peer``, ``proxied``) with no ``Host`` header (``host``);
        an adapter for another server passes the real values (and the
        credentials) so the access rule sees them.
        """
        if isinstance(self._backend, HTTPRemoteBackend):
            status, headers, payload = self._forward(method, path, query, accept_encoding, body, authorization,
                                                     cookie, peer, proxied, accept)
            return status, _reason(status), list(headers), payload
        handler = self._get_handler()
        args = (_latin1(method), _latin1(path), _latin1(query), _clean(accept_encoding), bool(multiprocess), body)
        kwargs = dict(authorization=_clean(authorization), cookie=_clean(cookie), peer=_clean(peer) or "",
                      proxied=bool(proxied), allowed=int(allowed), mount=_clean(mount) or "",
                      secure=bool(secure), accept=_clean(accept), host=_clean(host))
        pool = _gevent_threadpool()
        if pool is not None:
            # The handler may wait for another worker: keep the hub running.
            return pool.apply(functools.partial(handler.handle, *args, **kwargs))
        return handler.handle(*args, **kwargs)

    def _forward(self, method, path, query, accept_encoding, body, authorization, cookie, peer, proxied, accept):
        """Remote mode: the central server answers (docs/http-api.md). The
        request's own credentials go along; ``X-Forwarded-For`` names the
        browser, so that a central server on this machine never takes a
        request relayed from elsewhere for a local one.

        The path arrives decoded: it is encoded again (every byte outside
        RFC 3986's path characters as %XX, ``%`` included), so that a decoded
        ``?``, space, CR or LF stays part of the path and never ends the
        request line early; the query keeps its %XX escapes and has any
        other byte outside RFC 3986 encoded. The HTTP client refuses the
        request, sending nothing, if a byte it cannot carry is left."""
        import re
        from urllib.parse import quote

        def raw(s):
            try:
                return s.encode("latin-1")  # WSGI: the bytes as received
            except UnicodeEncodeError:
                return s.encode("utf-8", "replace")  # ASGI and Django decode paths as UTF-8
        target = quote(raw(path or "/"), safe="/!$&'()*+,;=:@")
        if query:
            escaped = re.sub(rb"%(?![0-9A-Fa-f]{2})", b"%25", raw(query))
            target += "?" + quote(escaped, safe="/!$&'()*+,;=:@?%")
        headers = []
        if self._disable_gzip:
            accept_encoding = None  # the central server then answers uncompressed
        for name, value in (("Accept-Encoding", accept_encoding), ("Authorization", authorization),
                            ("Cookie", cookie), ("Accept", accept),
                            ("X-Forwarded-For", peer or "unknown")):
            value = _clean(value)
            if value and not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):  # a control byte: not sent
                headers.append("%s: %s" % (name, value))
        pool = _gevent_threadpool()
        call = functools.partial(self._backend.forward, method, target, headers, body or b"")
        return pool.apply(call) if pool is not None else call()

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
        peer = environ.get("REMOTE_ADDR") or ""
        proxied = any(k in environ for k in PROXY_ENVIRON_KEYS)
        warn_unmarked_proxy(peer, proxied, environ.get("HTTP_VIA"))
        status, reason, headers, payload = self.handle(
            method, path, query, environ.get("HTTP_ACCEPT_ENCODING"),
            environ.get("wsgi.multiprocess", False), body,
            authorization=environ.get("HTTP_AUTHORIZATION"), cookie=environ.get("HTTP_COOKIE"),
            peer=peer, proxied=proxied, allowed=self.verdict(environ, path), mount=environ.get("SCRIPT_NAME", ""),
            secure=environ.get("wsgi.url_scheme") == "https", accept=environ.get("HTTP_ACCEPT"),
            host=environ.get("HTTP_HOST"))
        headers.append(("Content-Length", str(len(payload))))
        start_response("%d %s" % (status, reason), headers)
        return [b""] if method == "HEAD" else [payload]
