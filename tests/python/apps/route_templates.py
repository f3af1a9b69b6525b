"""Run as a script: serves a few requests of one framework's app through
PyLoot.track_requests (or Django's RequestsByRoute middleware) in-process,
without a collector, and prints the requests counted by route as JSON.

usage: python route_templates.py flask|starlette|fastapi|django|wsgi|asgi"""
import asyncio
import json
import sys

from pyloot import PyLoot, _pyloot


def flask_app():
    from flask import Flask
    app = Flask(__name__)

    @app.route("/login/<user>")
    def login(user):
        return "hi " + user

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    app = PyLoot().track_requests(app)
    client = app.test_client()
    for user in ("ann", "bob", "cy"):
        assert client.get("/login/" + user).status_code == 200
    assert client.post("/login/ann").status_code == 405  # matched rule, method not allowed
    assert client.get("/items/42").status_code == 404     # no rule: the path collapsed
    app.config["PROPAGATE_EXCEPTIONS"] = True
    try:
        client.get("/boom")
    except RuntimeError:
        pass
    else:
        raise AssertionError("the app's exception propagates")


def starlette_app(fastapi=False):
    from starlette.testclient import TestClient
    if fastapi:
        from fastapi import FastAPI
        app = FastAPI()

        @app.get("/users/{user_id}")
        async def user(user_id: int):
            return {"id": user_id}

        @app.get("/boom")
        async def boom():
            raise RuntimeError("boom")
    else:
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Mount, Route

        async def user(request):
            return PlainTextResponse("u")

        async def boom(request):
            raise RuntimeError("boom")

        app = Starlette(routes=[Route("/users/{user_id}", user), Route("/boom", boom),
                                Mount("/api", routes=[Route("/items/{item}", user)])])
    client = TestClient(PyLoot().track_requests(app), raise_server_exceptions=True)
    for i in range(3):
        assert client.get("/users/%d" % i).status_code == 200
    assert client.get("/nothing/7").status_code == 404
    if not fastapi:
        assert client.get("/api/items/abc").status_code == 200
    try:
        client.get("/boom")
    except RuntimeError:
        pass
    else:
        raise AssertionError("the app's exception propagates")


def django_app():
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    def user(request, pk):
        return HttpResponse("u")

    def boom(request):
        raise RuntimeError("boom")

    settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__, SECRET_KEY="x",
                       MIDDLEWARE=["pyloot.django.middleware.RequestsByRoute"], DATABASES={})
    global urlpatterns
    urlpatterns = [path("users/<int:pk>/", user), path("boom", boom)]
    django.setup()
    from django.test import Client
    client = Client(raise_request_exception=False)
    for i in range(3):
        assert client.get("/users/%d/" % i).status_code == 200
    assert client.get("/nothing/7").status_code == 404
    assert client.get("/boom").status_code == 500


def plain_wsgi():
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        start_response("200 OK", [])
        return [b"ok"]
    app = PyLoot().track_requests(app)
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders/123e4567-e89b-12d3-a456-426614174000/lines/3"}
    app(env, lambda *a: None)
    try:
        app({"REQUEST_METHOD": "DELETE", "PATH_INFO": "/boom"}, lambda *a: None)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the app's exception propagates")


def plain_asgi():
    async def app(scope, receive, send):
        if scope["path"] == "/boom":
            raise ValueError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = PyLoot().track_requests(app)
    assert wrapped is not app

    async def run():
        async def receive():
            return {"type": "http.request"}

        async def send(message):
            pass
        await wrapped({"type": "http", "method": "GET", "path": "/blobs/0123456789abcdef0123"}, receive, send)
        try:
            await wrapped({"type": "http", "method": "GET", "path": "/boom"}, receive, send)
        except ValueError:
            pass
        else:
            raise AssertionError("the app's exception propagates")
    asyncio.run(run())


if __name__ == "__main__":
    _pyloot.requests_counted(True)
    {"flask": flask_app, "starlette": starlette_app, "fastapi": lambda: starlette_app(fastapi=True),
     "django": django_app, "wsgi": plain_wsgi, "asgi": plain_asgi}[sys.argv[1]]()
    print(json.dumps(_pyloot.requests_counted(True)))
