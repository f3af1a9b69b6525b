"""The WSGI app of bench/bench_overhead.py: a small JSON route over a heap of realistic size.

Served by gunicorn twice per round of the bench, without and with pyloot. pyloot is embedded
exactly as the README says only when ``OVERHEAD_PYLOOT=1``; otherwise it is not even imported.

Environment:
  OVERHEAD_PYLOOT=1        embed pyloot (PyLoot(), .start(), get_wsgi() mounted at /_pyloot)
  OVERHEAD_INTERVAL=S      PyLoot(interval=S); unset = the default (30 s)
  OVERHEAD_HEAP=N          objects kept alive at import (default 200,000)
  PYLOOT_DB=DIR            the store (the bench points it at a temporary directory)

Routes: ``/`` (the measured one), ``/_overhead/stats`` (this worker's pid and, with pyloot,
``PyLoot.stats()``), and ``/_pyloot/...`` with pyloot.
"""

import json
import os


class Customer:
    def __init__(self, i):
        self.id = i
        self.name = "customer-%d" % i
        self.email = "c%d@example.com" % i
        self.tags = ["t%d" % (i % 7), "t%d" % (i % 11)]


class Order:
    __slots__ = ("id", "customer", "lines", "total")

    def __init__(self, i, customer):
        self.id = i
        self.customer = customer
        self.lines = [{"sku": "sku-%d" % (i % 97), "qty": 1 + i % 3}]
        self.total = float(i % 1000) / 7.0


def _build_heap(n):
    # About n gc-tracked objects, 4 per (customer, order): the Customer and its tags list, the
    # Order (slots) and its lines list (the dict in it holds atoms only, so gc does not track it).
    customers = []
    orders = []
    index = {}
    for i in range(max(1, n // 4)):
        c = Customer(i)
        o = Order(i, c)
        customers.append(c)
        orders.append(o)
        index[i] = o
    return {"customers": customers, "orders": orders, "index": index}


HEAP = _build_heap(int(os.environ.get("OVERHEAD_HEAP", "200000")))


def _work(environ):
    # A little realistic work: build a list of a few hundred dicts from the heap, json-encode it.
    qs = environ.get("QUERY_STRING", "")
    start = (hash(qs) & 0xFFFF) % max(1, len(HEAP["orders"]) - 300)
    items = []
    for o in HEAP["orders"][start:start + 300]:
        c = o.customer
        items.append({"order": o.id, "customer": c.name, "email": c.email, "tags": list(c.tags),
                      "lines": [dict(line) for line in o.lines], "total": round(o.total, 2)})
    return json.dumps({"count": len(items), "items": items}).encode()


pyloot = None


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/_overhead/stats":
        stats = {"pid": os.getpid(), "pyloot": bool(pyloot)}
        if pyloot is not None:
            stats["collector"] = pyloot.stats()
        body = json.dumps(stats, default=str).encode()
    else:
        body = _work(environ)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


if os.environ.get("OVERHEAD_PYLOOT") == "1":
    from pyloot import PyLoot

    try:
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
    except ImportError:  # the same thing, for a machine without werkzeug
        class DispatcherMiddleware:
            def __init__(self, app, mounts):
                self.app, self.mounts = app, mounts

            def __call__(self, environ, start_response):
                path = environ.get("PATH_INFO", "")
                for prefix, sub in self.mounts.items():
                    if path == prefix or path.startswith(prefix + "/"):
                        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                        environ["PATH_INFO"] = path[len(prefix):]
                        return sub(environ, start_response)
                return self.app(environ, start_response)

    _interval = os.environ.get("OVERHEAD_INTERVAL")
    # As the README says; the interval only when the bench asks for the worst case.
    pyloot = PyLoot() if not _interval else PyLoot(interval=float(_interval))
    pyloot.start()
    app = DispatcherMiddleware(app, {"/_pyloot": pyloot.get_wsgi()})
