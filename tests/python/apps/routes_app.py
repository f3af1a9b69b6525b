"""A WSGI app whose routes leak at known rates, its requests counted by
route (PyLoot.track_requests), pyloot mounted at /_pyloot outside the
counted app.

Routes (ids collapse to {id}: GET /a/{id} ...):
  /a/<n>      keeps 1 RouteLeak per request
  /b/<n>      keeps 1 RouteLeak every 10th request of the worker (0.1 per request)
  /c/<n>      keeps nothing
  /boom       raises RuntimeError (gunicorn answers 500)
  /many?n=K   counts K more distinct routes in this worker (GET /many/r0 ...), without a request each
  /pid        {"pid": ...}
  /counted    the worker's requests by route since its last sample (not counted itself)

Configured by the environment like leaky.py: PYLOOT_DB, PYLOOT_TEST_INTERVAL,
PYLOOT_TEST_REMOTE ("HOST:PORT"), PYLOOT_HOST_NAME, PYLOOT_TOKEN.
"""
import json
import os
from urllib.parse import parse_qs

from pyloot import PyLoot, _pyloot


class RouteLeak:
    pass


KEPT = []
_b_requests = [0]

_remote = os.environ.get("PYLOOT_TEST_REMOTE")
_remote_host, _, _remote_port = (_remote or "").rpartition(":")
pyloot = PyLoot(host=_remote_host or None, port=int(_remote_port) if _remote else None,
                interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")))
pyloot.start()
_pyloot_app = pyloot.get_wsgi()


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def user_app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/a/"):
        KEPT.append(RouteLeak())
    elif path.startswith("/b/"):
        _b_requests[0] += 1
        if _b_requests[0] % 10 == 0:
            KEPT.append(RouteLeak())
    elif path.startswith("/c/"):
        pass
    elif path == "/boom":
        raise RuntimeError("boom")
    elif path == "/many":
        n = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["1"])[0])
        for i in range(n):
            _pyloot.count_request("GET", "/many/r%d" % i)
    elif path != "/pid":
        return _json(start_response, {"error": "no such route"}, "404 Not Found")
    return _json(start_response, {"pid": os.getpid(), "kept": len(KEPT)})


counted = pyloot.track_requests(user_app)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/counted":
        return _json(start_response, _pyloot.requests_counted())
    if path == "/_pyloot" or path.startswith("/_pyloot/"):
        environ = dict(environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/_pyloot"
        environ["PATH_INFO"] = path[len("/_pyloot"):]
        return _pyloot_app(environ, start_response)
    return counted(environ, start_response)
