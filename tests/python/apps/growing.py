"""A WSGI app with one growing container among many stable ones, pyloot
mounted at /_pyloot (the witness and retainers tests).

Routes:
  /grow?kind=K&n=N  append N new objects to the container of kind K:
                    "list" (a new two-int list into GROWING), "item" (a new
                    Item into ITEMS), "str" (a new 100-character str into
                    STRS); answers {"pid", "made": [their indexes]}
  /ids              {"pid", "ITEMS": id(ITEMS), "GROWING": ..., "STRS": ...}
  /pid              {"pid": ...}
  /_pyloot/...      pyloot

Every container starts non-empty, so that an instance that was there before
the growth is at hand for a witness to show by mistake; the stable ones are
bigger than what a test grows (TEXT holds more str bytes than STRS will);
each /grow leaves a cycle of garbage (an Item and a list) behind, as a web
framework's request does.
Configured by PYLOOT_DB and PYLOOT_TEST_INTERVAL like leaky.py.
"""
import gc
import json
import os
from urllib.parse import parse_qs

# Many modules, each with its big __dict__: by retained size alone they fill
# the first page of the biggest retainers.
import argparse  # noqa: F401
import asyncio  # noqa: F401
import decimal  # noqa: F401
import email.mime.text  # noqa: F401
import http.client  # noqa: F401
import inspect  # noqa: F401
import logging.handlers  # noqa: F401
import typing  # noqa: F401
import unittest  # noqa: F401
import urllib.request  # noqa: F401
import xml.dom.minidom  # noqa: F401
import zipfile  # noqa: F401

from pyloot import PyLoot

EARLY = [[0, 1], [2, 3]]  # stable lists, made first


class Item:
    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return "<Item %d>" % self.i


TABLES = [[i, i + 1] for i in range(300)]
TEXT = {"t%d" % i: "x" * 4000 + str(i) for i in range(300)}
GROWING = [[i, i + 1] for i in range(50)]
ITEMS = [Item(i) for i in range(100)]
STRS = [("s%d-" % i).ljust(100, "y") for i in range(100)]

# What import made is frozen, as a server that preloads its app does (gc.freeze(), then fork): the
# old instances are then the last ones a walk of the gc lists meets.
gc.freeze()

pyloot = PyLoot(interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")))
pyloot.start()
_pyloot_app = pyloot.get_wsgi()


def _garbage():
    """What a web framework leaves behind per request: reference cycles, freed only by the next
    collection of the gc; until then the newest instances are ones that no root reaches."""
    item = Item(-1)
    item.me = item
    cycle = [[-1, -1]]
    cycle.append(cycle)
    item.cycle = cycle


def _grow(kind, n):
    _garbage()
    if kind == "list":
        made = list(range(len(GROWING), len(GROWING) + n))
        GROWING.extend([i, i + 1] for i in made)
    elif kind == "item":
        made = list(range(len(ITEMS), len(ITEMS) + n))
        ITEMS.extend(Item(i) for i in made)
    else:
        made = list(range(len(STRS), len(STRS) + n))
        STRS.extend(("s%d-" % i).ljust(100, "y") for i in made)
    return made


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/_pyloot" or path.startswith("/_pyloot/"):
        environ = dict(environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/_pyloot"
        environ["PATH_INFO"] = path[len("/_pyloot"):]
        return _pyloot_app(environ, start_response)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/grow":
        made = _grow(query.get("kind", ["item"])[0], int(query.get("n", ["5"])[0]))
        return _json(start_response, {"pid": os.getpid(), "made": made})
    if path == "/ids":
        return _json(start_response, {"pid": os.getpid(), "ITEMS": id(ITEMS), "GROWING": id(GROWING),
                                      "STRS": id(STRS)})
    if path == "/pid":
        return _json(start_response, {"pid": os.getpid()})
    return _json(start_response, {"error": "no such route"}, "404 Not Found")
