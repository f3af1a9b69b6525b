"""The ASGI application: the same C request handler as the WSGI app.

HTTP requests are answered in a small thread pool of pyloot's own, never on
the event loop: a live-object request may wait up to ``live_timeout`` for
another worker, and the app's own thread pool stays free. The lifespan scope
is answered (startup and shutdown complete) when the app runs on its own;
mounted in Starlette or FastAPI it never sees one.
"""
import asyncio
import concurrent.futures
import inspect
import os
import threading

from pyloot import _pyloot
from pyloot.server import MAX_BODY, PROXY_HEADERS, warn_unmarked_proxy

__all__ = ["PyLootASGI"]

_POOL_THREADS = 8
_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _executor():
    """pyloot's thread pool in this process (a fork child makes its own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = concurrent.futures.ThreadPoolExecutor(_POOL_THREADS, thread_name_prefix="pyloot-asgi")
            _pool_pid = os.getpid()
        return _pool


def _json_error(status, message):
    import json
    return status, [(b"content-type", b"application/json"), (b"cache-control", b"no-store")], \
        json.dumps({"error": message}).encode()


class PyLootASGI:
    """ASGI app serving pyloot's UI and API (see docs/http-api.md).

    Get it from :meth:`pyloot.PyLoot.get_asgi`. The mount prefix comes from
    ``scope["root_path"]``.
    """

    def __init__(self, server):
        self._server = server

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send):
        root = scope.get("root_path", "") or ""
        path = scope.get("path", "") or ""
        # ASGI's path holds root_path (the spec since 2022, Starlette's Mount
        # since 0.33); older servers strip it.
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root):]
        query = scope.get("query_string", b"").decode("latin-1")
        method = scope.get("method", "GET")
        if path == "":
            location = (root + "/" + ("?" + query if query else "")).encode("latin-1", "replace")
            await self._respond(send, method, 301, [(b"location", location)], b"")
            return
        headers = {}
        for name, value in scope.get("headers", ()):
            name = name.decode("latin-1").lower()
            value = value.decode("latin-1")
            if name == "cookie" and name in headers:
                headers[name] += "; " + value
            else:
                headers.setdefault(name, value)
        body = b""
        if method == "POST":
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    status, hdrs, payload = _json_error(413, "request body must be 0 to 16 MiB")
                    await self._respond(send, method, status, hdrs, payload)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
        allowed = await self._verdict(scope, path)
        client = scope.get("client")
        peer = client[0] if client else ""
        proxied = any(h in headers for h in PROXY_HEADERS)
        warn_unmarked_proxy(peer, proxied, headers.get("via"))
        kwargs = dict(authorization=headers.get("authorization"), cookie=headers.get("cookie"),
                      peer=peer, proxied=proxied, allowed=allowed, mount=root, secure=scope.get("scheme") == "https",
                      accept=headers.get("accept"), host=headers.get("host"))
        loop = asyncio.get_running_loop()
        status, _reason, hdrs, payload = await loop.run_in_executor(
            _executor(), lambda: self._server.handle(method, path, query, headers.get("accept-encoding"),
                                                     False, body, **kwargs))
        await self._respond(send, method, status,
                            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hdrs], payload)

    async def _verdict(self, scope, path):
        allow = self._server._allow
        if allow is None or _pyloot.route_class(path) == 0:  # UI files: the rule always answers
            return 0
        try:
            result = allow(scope)
            if inspect.isawaitable(result):
                result = await result
            return 1 if result else -1
        except Exception:
            import logging
            logging.getLogger("pyloot").exception("pyloot: the allow callable raised; the request is refused")
            return -1

    @staticmethod
    async def _respond(send, method, status, headers, payload):
        headers = list(headers) + [(b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
