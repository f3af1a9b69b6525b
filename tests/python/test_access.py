"""The ASGI app in process (scopes, lifespan, mount prefixes), the access
rule seen from Python (token, allow callables), redaction, the seed's
WSGIMiddleware recipe, and when the Django app config starts the collector.
Servers on real sockets are in test_embed.py."""
import asyncio
import json
import sys
import warnings

import pytest

import pyloot
from pyloot import PyLoot, _pyloot

TOKEN = "unit-test-token"


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"))
    loot.collect_objects()
    yield loot
    loot.backend.close()


def asgi_call(app, path, root_path="", method="GET", headers=(), body=b"", client=("127.0.0.1", 5000),
              chunks=None):
    """Runs one HTTP request through an ASGI app: (status, headers dict, body)."""
    sent = []
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)] if chunks else [{"type": "http.request", "body": body}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": root_path,
             "query_string": b"", "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
             "client": client, "server": ("127.0.0.1", 8000)}
    if "?" in path:
        scope["path"], query = path.split("?", 1)
        scope["query_string"] = query.encode()
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent[1:])


def test_asgi_routes_under_a_mount_prefix(loot):
    app = loot.get_asgi()
    assert app is loot.get_asgi()
    # root_path inside path (the ASGI spec, Starlette's Mount) or stripped (older servers).
    for path in ("/_pyloot/api/procs", "/api/procs"):
        status, headers, body = asgi_call(app, path, root_path="/_pyloot")
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body)["store"]["path"] == loot.path
    status, headers, _ = asgi_call(app, "/_pyloot", root_path="/_pyloot")
    assert status == 301 and headers["location"] == "/_pyloot/"
    status, headers, body = asgi_call(app, "/_pyloot/", root_path="/_pyloot")
    assert status == 200 and body.startswith(b"<!doctype html>")
    status, headers, body = asgi_call(app, "/api/procs", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, _, body = asgi_call(app, "/api/objects?group=pyloot.core.PyLoot&limit=5")
    assert status == 200 and json.loads(body)["total"] >= 1
    status, _, body = asgi_call(app, "/api/objects?group=dict", client=("198.51.100.1", 5000))
    assert status == 403 and "PyLoot(token=...)" in json.loads(body)["error"]
    status, _, _ = asgi_call(app, "/api/objects?group=dict", client=None)
    assert status == 403


def test_asgi_lifespan_and_websocket(loot):
    app = loot.get_asgi()
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return inbox.pop(0)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    inbox[:] = [{"type": "websocket.connect"}]
    sent.clear()
    asyncio.run(app({"type": "websocket", "path": "/", "headers": []}, receive, send))
    assert sent == ["websocket.close"]


def test_asgi_token_login_and_allow(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), token=TOKEN)
    loot.collect_objects()
    app = loot.get_asgi()
    assert asgi_call(app, "/api/history")[0] == 401
    assert asgi_call(app, "/api/history", headers=[("Authorization", "Bearer " + TOKEN)])[0] == 200
    status, headers, _ = asgi_call(app, "/api/login", root_path="/mnt", method="POST",
                                   chunks=[TOKEN[:4].encode(), TOKEN[4:].encode()])
    assert status == 200
    assert headers["set-cookie"] == "pyloot_token=%s; Path=/mnt; HttpOnly; SameSite=Strict" % TOKEN
    assert asgi_call(app, "/api/history", headers=[("Cookie", "a=b"), ("Cookie", "pyloot_token=" + TOKEN)])[0] == 200
    assert asgi_call(app, "/api/login", method="POST", body=b"x" * (17 << 20))[0] == 413
    loot.backend.close()

    scopes = []

    async def allow_async(scope):
        scopes.append(scope)
        return dict(scope["headers"]).get(b"x-staff") == b"1"

    for allow in (allow_async, lambda scope: dict(scope["headers"]).get(b"x-staff") == b"1"):
        loot = PyLoot(path=str(tmp_path / "store"), allow=allow)
        app = loot.get_asgi()
        assert asgi_call(app, "/api/history")[0] == 403
        assert asgi_call(app, "/api/objects?group=dict", headers=[("X-Staff", "1")],
                         client=("203.0.113.9", 1))[0] == 200
        assert asgi_call(app, "/")[0] == 200
        loot.backend.close()
    assert scopes and scopes[0]["type"] == "http"

    def broken(scope):
        raise RuntimeError("boom")

    loot = PyLoot(path=str(tmp_path / "store"), allow=broken)
    assert asgi_call(loot.get_asgi(), "/api/history")[0] == 403
    loot.backend.close()


def test_wsgi_passes_peer_proxy_headers_and_allow(loot):
    environs = []
    loot = PyLoot(path=loot.path, allow=lambda environ: environs.append(environ) or True)
    app = loot.get_wsgi()

    def call(path, **environ):
        out = {}

        def start_response(status, headers):
            out["status"] = int(status.split()[0])

        env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "group=dict&limit=1",
               "SCRIPT_NAME": "/_pyloot", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}
        env.update(environ)
        body = b"".join(app(env, start_response))
        return out["status"], body

    assert call("/api/objects")[0] == 200
    assert environs and environs[-1]["PATH_INFO"] == "/api/objects"
    n = len(environs)
    assert call("/static/app.js")[0] == 200
    assert len(environs) == n  # the UI's files never ask the callable
    default = PyLoot(path=loot.path).get_wsgi()
    app = default
    assert call("/api/objects")[0] == 200
    assert call("/api/objects", HTTP_X_FORWARDED_FOR="203.0.113.7")[0] == 403
    assert call("/api/objects", HTTP_X_REAL_IP="127.0.0.1")[0] == 403
    assert call("/api/objects", REMOTE_ADDR="10.1.2.3")[0] == 403
    assert call("/api/history", REMOTE_ADDR="10.1.2.3")[0] == 200
    loot.backend.close()


def test_bad_options():
    with pytest.raises(ValueError):
        PyLoot(token="has space")
    with pytest.raises(ValueError):
        PyLoot(token="semi;colon")
    with pytest.raises(TypeError):
        PyLoot(allow="not callable")
    with pytest.raises(ValueError):
        PyLoot(metrics_types=["a\nb"])


def test_redact_names_default_and_replaced():
    assert "password" in pyloot.DEFAULT_REDACT and "api_key" in pyloot.DEFAULT_REDACT
    try:
        assert _pyloot.redact_name("DB_PASSWORD") and not _pyloot.redact_name("username")
        PyLoot(redact=["ssn"])
        assert _pyloot.redact_name("user_ssn") and not _pyloot.redact_name("password")
        PyLoot(redact=list(pyloot.DEFAULT_REDACT) + ["ssn"])
        assert _pyloot.redact_name("user_ssn") and _pyloot.redact_name("password")
    finally:
        _pyloot.set_redact(None)
    assert _pyloot.redact_name("password") and not _pyloot.redact_name("user_ssn")


class Credentials:
    def __init__(self):
        self.user = "alice"
        self.password = "hunter2-value"
        self.api_key = "ak-123-value"


def test_redacted_attribute_values(loot):
    secret = Credentials()
    status, _, _, body = loot.get_wsgi().handle("GET", "/api/objects/%d" % id(secret))
    assert status == 200
    attrs = json.loads(body)["attrs"]
    assert attrs["user"] == "'alice'"
    assert attrs["password"] == "<redacted>"
    assert attrs["api_key"] == "<redacted>"
    assert b"hunter2" not in body and b"ak-123" not in body


_HOLDER = []


def test_redacted_dict_reprs_children_and_path(loot):
    config = {"user": "bob", "db_password": "pw-secret-value"}
    secret = Credentials()
    _HOLDER[:] = [config, secret]
    wsgi = loot.get_wsgi()
    try:
        status, _, _, body = wsgi.handle("GET", "/api/objects/%d" % id(config))
        assert status == 200
        shown = json.loads(body)["repr"]
        assert "'db_password': <redacted>" in shown and "'user': 'bob'" in shown
        assert b"pw-secret-value" not in body
        status, _, _, body = wsgi.handle("GET", "/api/objects/%d/children" % id(secret), "limit=50")
        assert status == 200
        by_via = {o["via"]: o["repr"] for o in json.loads(body)["objects"]}
        assert by_via.get("attribute 'password'", "<redacted>") == "<redacted>"
        assert b"hunter2" not in body and b"ak-123" not in body
        # The path to the dict's secret value ends on a redacted step.
        status, _, _, body = wsgi.handle("GET", "/api/objects/%d/path" % id(config))
        assert status == 200 and b"pw-secret-value" not in body
    finally:
        _HOLDER.clear()


def test_seed_wsgimiddleware_recipe_still_works(loot):
    from starlette.applications import Starlette
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette deprecates its WSGIMiddleware (and httpx in TestClient)
        from starlette.middleware.wsgi import WSGIMiddleware
        from starlette.testclient import TestClient
        app = Starlette()
        app.mount("/_pyloot", WSGIMiddleware(loot.get_wsgi()))
        with TestClient(app) as client:
            r = client.get("/_pyloot/api/history?limit=3")
            assert r.status_code == 200 and len(r.json()["types"]) == 3
            assert client.get("/_pyloot/").text.startswith("<!doctype html>")


@pytest.mark.parametrize("argv,run_main,setting,expected", [
    (["/usr/bin/gunicorn", "app.wsgi"], None, None, True),
    (["manage.py", "runserver"], None, None, False),          # the autoreloader's watcher
    (["manage.py", "runserver"], "true", None, True),         # the process that serves
    (["manage.py", "runserver", "--noreload"], None, None, True),
    (["manage.py", "migrate"], None, None, False),
    (["/venv/bin/django-admin", "shell"], None, None, False),
    (["manage.py", "migrate"], None, True, True),
    (["/usr/bin/gunicorn"], None, False, False),
])
def test_django_start_decision(monkeypatch, argv, run_main, setting, expected):
    pytest.importorskip("django")
    from pyloot.django.apps import should_start
    monkeypatch.setattr(sys, "argv", argv)
    if run_main:
        monkeypatch.setenv("RUN_MAIN", run_main)
    else:
        monkeypatch.delenv("RUN_MAIN", raising=False)
    assert should_start(setting) is expected


def test_gunicorn_mark_ended(tmp_path):
    from pyloot.gunicorn import mark_ended
    path = str(tmp_path / "store")
    loot = PyLoot(path=path)
    loot.collect_objects()
    store = loot.backend.get_store()
    me = [p for p in store.procs() if p["pid"] == __import__("os").getpid()]
    assert me and not me[0]["ended"]
    assert mark_ended(me[0]["pid"], path=path)
    assert [p for p in store.procs() if p["pid"] == me[0]["pid"]][0]["ended"]
    assert not mark_ended(me[0]["pid"], path=path)  # nothing left to mark
    assert not mark_ended(1, path=str(tmp_path / "missing"))
    loot.backend.close()


def test_readme_starlette_recipe(tmp_path):
    import contextlib

    from starlette.applications import Starlette
    from starlette.routing import Mount
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette deprecates httpx in its TestClient
        from starlette.testclient import TestClient

    pyloot = PyLoot(path=str(tmp_path / "store"), interval=60)
    running = []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        pyloot.start()
        running.append(pyloot.is_running())
        yield
        pyloot.stop(blocking=True)

    app = Starlette(lifespan=lifespan, routes=[Mount("/_pyloot", app=pyloot.get_asgi())])
    try:
        with TestClient(app) as client:
            procs = client.get("/_pyloot/api/procs").json()
            assert [p["pid"] for p in procs["procs"]] == [__import__("os").getpid()]
            assert client.get("/_pyloot/").text.startswith("<!doctype html>")
            r = client.get("/_pyloot/api/objects?group=dict")  # TestClient's peer is not an address
            assert r.status_code == 403
    finally:
        pyloot.stop(blocking=True)
        pyloot.backend.close()
    assert running == [True]
