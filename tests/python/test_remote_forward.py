"""Remote mode: a worker's /_pyloot forwards each request to the central
server. A decoded path is encoded again, so that a CR LF (or a '?', a space)
in it stays part of the path and never ends the forwarded request early: an
injected request line would come without X-Forwarded-For, and a central
server on the same machine would take it for a local request (live objects
to anyone). The HTTP client refuses, sending nothing, any part that still
holds a byte it cannot carry."""
import json
import socket
import threading

import pytest

from conftest import http, wait_until
from test_remote import LEAK, Central

from pyloot import HTTPRemoteBackend, PyLootServer, _pyloot

SMUGGLED = "/api/objects?pid=1&group=app.Secret&limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"


class Recorder:
    """A stand-in for the central server on a loopback port: records the
    head of every request it gets and answers 404 {}."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.heads.append(data.partition(b"\r\n\r\n")[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\n\r\n{}")
                except OSError:
                    pass

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop()


def forward(recorder, path, query="", **kw):
    server = PyLootServer(backend=HTTPRemoteBackend("127.0.0.1", recorder.port, timeout=5))
    before = len(recorder.heads)
    status, _reason, _headers, body = server.handle("GET", path, query, peer="198.51.100.7", **kw)
    heads = recorder.heads[before:]
    return status, body, heads


@pytest.mark.parametrize("path,query,target", [
    (SMUGGLED, "",
     "/api/objects%3Fpid=1&group=app.Secret&limit=1%20HTTP/1.1%0D%0AHost:%20x%0D%0A%0D%0A"),
    ("/api/objects/100%", "pid=1&x=a b%zz%41\r\n", "/api/objects/100%25?pid=1&x=a%20b%25zz%41%0D%0A"),
    ("/api/objects\0/x#y", "", "/api/objects%00/x%23y"),
    ("/static/caf\xe9", "", "/static/caf%E9"),  # WSGI: the path's bytes, decoded as latin-1
    ("/static/\u20ac", "", "/static/%E2%82%AC"),  # ASGI: decoded as UTF-8
    ("/api/history", "q=app.Session&sort=count&since=1.5", "/api/history?q=app.Session&sort=count&since=1.5"),
    ("/", "", "/"),
])
def test_forwarded_path_stays_the_path(recorder, path, query, target):
    status, body, heads = forward(recorder, path, query)
    assert status == 404 and json.loads(body) == {}
    assert len(heads) == 1, heads
    lines = heads[0].split("\r\n")
    assert lines[0] == "GET %s HTTP/1.1" % target
    assert "X-Forwarded-For: 198.51.100.7" in lines, "the browser's address goes with the one request"
    assert sum(line.lower().startswith("host:") for line in lines) == 1


def test_header_with_a_control_byte_is_left_out(recorder):
    status, _body, heads = forward(recorder, "/api/procs", cookie="a=1\x01\x1b[2J", accept="application/json",
                                   authorization="Bearer t\x7f")
    assert status == 404 and len(heads) == 1
    lines = heads[0].split("\r\n")
    assert "Accept: application/json" in lines
    assert not [line for line in lines if line.startswith(("Cookie", "Authorization"))]


@pytest.mark.parametrize("method,target,headers", [
    ("GET", "/a\r\nX-Injected: 1", []),
    ("GET", "/a b", []),
    ("GET", "/a\x00b", []),
    ("GET\r\nX: 1", "/a", []),
    ("G\x00ET", "/a", []),
    ("GET", "/a", ["X-A: 1\r\nX-B: 2"]),
    ("GET", "/a", ["X-A: 1\x002"]),
    ("GET", "/a", ["Host: evil"]),
    ("GET", "/a", ["Content-Length: 0"]),
])
def test_client_sends_nothing_it_cannot_carry(recorder, method, target, headers):
    with pytest.raises(ValueError):
        _pyloot.remote_forward("127.0.0.1", recorder.port, method, target, headers, b"", 5.0)
    # The backend answers 400 (nothing was sent), not 502 (the server is there).
    status, hdrs, body = HTTPRemoteBackend("127.0.0.1", recorder.port).forward(method, target, headers)
    assert status == 400 and "cannot be forwarded" in json.loads(body)["error"]
    assert ("Content-Type", "application/json") in hdrs
    # Then a valid request: the first and only one the server ever saw.
    result = _pyloot.remote_forward("127.0.0.1", recorder.port, "GET", "/ok", [], b"", 5.0)
    assert result[0] == 404
    assert [h.split("\r\n")[0] for h in recorder.heads] == ["GET /ok HTTP/1.1"]


@pytest.fixture
def tokenless_central(tmp_path):
    c = Central(tmp_path / "central-db", tmp_path / "central.log")
    c.start()
    yield c
    c.kill()


def test_injected_request_line_through_a_worker_is_refused(tokenless_central, gunicorn):
    """The attack end to end: a gunicorn worker in remote mode, its central
    server on the same machine without a token. A request through the
    worker comes with X-Forwarded-For, so the central server does not take
    it for a local one (403); the same request smuggled in the path (an
    encoded CR LF ending the forwarded request line early, before
    X-Forwarded-For) must not get the worker's objects either."""
    central = tokenless_central
    server = gunicorn(workers=1, interval=0.3, env={"PYLOOT_TEST_REMOTE": "127.0.0.1:%d" % central.port,
                                                    "PYLOOT_HOST_NAME": "web-a", "PYLOOT_TOKEN": ""})
    r = server.get("/leak?n=5")
    assert r.status == 200
    pid = r.json()["pid"]
    wait_until(lambda: ("web-a", pid) in central.alive() and central.leak_count(pid, "web-a") >= 5, 20,
               message="the leak in the central store")

    plain = "/_pyloot/api/objects?pid=%d&host=web-a&group=%s&limit=1" % (pid, LEAK)
    r = server.get(plain)
    assert r.status == 403, r.body[:300]
    injected = ("/_pyloot/api/objects%%3Fpid=%d%%26host=web-a%%26group=%s%%26limit=1"
                "%%20HTTP/1.1%%0D%%0AHost:%%20x%%0D%%0A%%0D%%0A" % (pid, LEAK))
    r = server.get(injected)
    assert 400 <= r.status < 500, (r.status, r.body[:300])
    assert b"leak-" not in r.body and b"Leak" not in r.body and b'"objects"' not in r.body
    # The worker still answers its own /_pyloot through the central server.
    assert server.get("/_pyloot/api/procs").status == 200
