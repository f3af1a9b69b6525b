"""A small WSGI app that leaks on demand, with pyloot mounted at /_pyloot.

Routes:
  /leak?n=K&hold=S  append K Leak objects to the module-level list LEAKS
                    (then keep the worker busy S seconds, so that concurrent
                    requests spread over the workers); answers
                    {"pid": ..., "leaked": K, "total": len(LEAKS)}
  /pid              {"pid": ...}
  /block?s=S&mark=F hold the GIL for S seconds (a stuck worker); with mark,
                    first write the worker's pid to the file F (a test waits
                    for it to know the worker is stuck)
  /_pyloot/...      pyloot

Configured by the environment: PYLOOT_DB (store), PYLOOT_TEST_INTERVAL
(collector interval, default 1), PYLOOT_TEST_LIVE_TIMEOUT (default 5),
PYLOOT_TEST_REMOTE ("HOST:PORT": remote mode, pushing to that central
server; PYLOOT_HOST_NAME and PYLOOT_TOKEN apply).
"""
import json
import os
import sys
import time
from urllib.parse import parse_qs

from pyloot import PyLoot


class Leak:
    """One leaked object: holds an index and a small payload."""

    def __init__(self, index):
        self.index = index
        self.payload = "leak-%d" % index


LEAKS = []

_remote = os.environ.get("PYLOOT_TEST_REMOTE")
_remote_host, _, _remote_port = (_remote or "").rpartition(":")
pyloot = PyLoot(host=_remote_host or None, port=int(_remote_port) if _remote else None,
                interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")),
                live_timeout=float(os.environ.get("PYLOOT_TEST_LIVE_TIMEOUT", "5")))
# At import time: in a gunicorn master with --preload this defers to the workers.
pyloot.start()
_pyloot_app = pyloot.get_wsgi()


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _param(environ, name, default, kind=float):
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    return kind(values[0]) if values else default


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/_pyloot" or path.startswith("/_pyloot/"):
        environ = dict(environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/_pyloot"
        environ["PATH_INFO"] = path[len("/_pyloot"):]
        return _pyloot_app(environ, start_response)
    if path == "/leak":
        n = _param(environ, "n", 1, int)
        base = len(LEAKS)
        LEAKS.extend(Leak(base + i) for i in range(n))
        hold = _param(environ, "hold", 0.0)
        if hold:
            time.sleep(hold)
        return _json(start_response, {"pid": os.getpid(), "leaked": n, "total": len(LEAKS)})
    if path == "/pid":
        return _json(start_response, {"pid": os.getpid()})
    if path == "/block":
        seconds = _param(environ, "s", 1.0)
        # A busy loop with a switch interval longer than the loop: no other
        # thread of this process gets the GIL until it ends.
        old = sys.getswitchinterval()
        sys.setswitchinterval(seconds + 5)
        try:
            mark = _param(environ, "mark", None, str)
            if mark:
                with open(mark + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.replace(mark + ".tmp", mark)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                pass
        finally:
            sys.setswitchinterval(old)
        return _json(start_response, {"pid": os.getpid(), "blocked": seconds})
    return _json(start_response, {"error": "no such route"}, "404 Not Found")
