"""Requests by route: thin wrappers that count each request of a WSGI or an
ASGI app under its route (``PyLoot.track_requests``). The naming, the
bound and the counting are ``_pyloot.count_request``'s (src/pyext/requests.c);
docs/http-api.md, "GET /api/routes", says what a route is."""
import inspect

from pyloot import _pyloot

__all__ = ["track_requests", "is_asgi"]

_count = _pyloot.count_request


def is_asgi(app):
    """True when app is an ASGI app: a coroutine function (or an object whose
    ``__call__`` is one) taking three parameters."""
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    if not inspect.iscoroutinefunction(call):
        return False
    try:
        params = [p for p in inspect.signature(call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return True
    return len(params) == 3


def _flask_rule():
    from flask import request
    rule = request.url_rule
    if rule is not None:
        request.environ["pyloot.route"] = rule.rule


def _wrap_wsgi(app):
    def counted(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            _count(environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), environ.get("pyloot.route"))
    return counted


def _starlette_template(app, scope, root_path):
    """The matched route's path of a Starlette/FastAPI app (with the prefix
    of the mounts it went through), else None."""
    route = scope.get("route")
    if route is None:
        router = getattr(app, "router", None)
        for candidate in getattr(router, "routes", ()):
            try:
                match, _ = candidate.matches(scope)
            except Exception:
                continue
            if getattr(match, "name", "") == "FULL":
                route = candidate
                break
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    mounted = scope.get("root_path", "")
    if isinstance(mounted, str) and len(mounted) > len(root_path) and mounted.startswith(root_path):
        path = mounted[len(root_path):] + path
    return path


def _wrap_asgi(app):
    async def counted(scope, receive, send):
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        root_path = scope.get("root_path", "")
        try:
            return await app(scope, receive, send)
        finally:
            try:
                template = _starlette_template(app, scope, root_path)
            except Exception:
                template = None
            _count(scope.get("method"), scope.get("path"), template)
    return counted


def track_requests(app):
    """Counts each request of app under its route; returns the app to serve.

    A Flask app is changed in place (its ``wsgi_app`` is wrapped and the
    matched rule recorded) and returned; any other WSGI app, and any ASGI
    app, comes back wrapped. An exception of the app still counts the
    request and propagates unchanged."""
    _pyloot.requests_enable()
    if hasattr(app, "url_map") and hasattr(app, "wsgi_app") and hasattr(app, "before_request_funcs"):
        funcs = app.before_request_funcs.setdefault(None, [])
        if _flask_rule not in funcs:
            funcs.insert(0, _flask_rule)
            app.wsgi_app = _wrap_wsgi(app.wsgi_app)
        return app
    if is_asgi(app):
        return _wrap_asgi(app)
    return _wrap_wsgi(app)
