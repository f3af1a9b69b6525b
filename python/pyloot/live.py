"""Live objects of this process: the same answers as the HTTP routes
``/api/objects...`` (docs/http-api.md), as parsed JSON dicts.

Each function asks the C extension (``_pyloot.live_query``), which scans the
gc-tracked objects of this process; an id is only ever compared with the
addresses of real objects, never used as a pointer. See docs/live-objects.md.

Errors: ``LookupError`` when the object is gone (HTTP 404), ``ValueError``
for a bad argument (HTTP 400), ``RuntimeError`` otherwise.
"""
import json

from pyloot import _pyloot

__all__ = ["objects", "describe", "parents", "children", "path", "graph", "tasks", "LiveQueryError"]


class LiveQueryError(RuntimeError):
    """A live-object query failed with an HTTP status other than 400/404."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status


def _ids_as_ints(obj):
    # The HTTP answers carry object ids as strings (64-bit values, which a
    # JavaScript number would round); here they are ints, as id() gives them.
    for key in ("id", "fut_waiter"):
        if isinstance(obj.get(key), str) and obj[key].isdigit():
            obj[key] = int(obj[key])
    if isinstance(obj.get("examples"), list):
        obj["examples"] = [int(x) if isinstance(x, str) and x.isdigit() else x for x in obj["examples"]]
    return obj


def _query(kind, group="", id=0, offset=0, limit=100):
    status, body = _pyloot.live_query(kind, group, id, offset, limit)
    data = json.loads(body, object_hook=_ids_as_ints)
    if status == 200:
        return data
    message = data.get("error", "") if isinstance(data, dict) else ""
    if status == 404:
        raise LookupError(message)
    if status == 400:
        raise ValueError(message)
    raise LiveQueryError(status, message)


def objects(group, offset=0, limit=100):
    """Objects whose type is named ``group`` ("module.Qualname", "dict",
    "app.Leak#2" for the second type of that name): ``{"pid", "group",
    "total", "offset", "limit", "objects": [summary, ...]}`` in address order."""
    return _query(_pyloot.LIVE_LIST, group, 0, offset, limit)


def describe(id):
    """One object: its summary plus ``attrs``, ``parents_count``, ``children_count``."""
    return _query(_pyloot.LIVE_DETAIL, "", id)


def parents(id, offset=0, limit=100):
    """The tracked objects that refer to object ``id``."""
    return _query(_pyloot.LIVE_PARENTS, "", id, offset, limit)


def children(id, offset=0, limit=100):
    """The objects that object ``id`` refers to."""
    return _query(_pyloot.LIVE_CHILDREN, "", id, offset, limit)


def path(id):
    """The shortest chain of references from a root (a module, or a frame of a
    running thread) to object ``id``: ``{"found", "path": [{"object", "via"}]}``."""
    return _query(_pyloot.LIVE_PATH, "", id)


def graph(id, depth=3):
    """What holds object ``id``, as a picture: its referrers breadth first up
    to ``depth`` levels (1..4) and its why-alive path, ``{"nodes": [...],
    "edges": [{"from", "to", "label", "on_path"}], "truncated"}``."""
    return _query(_pyloot.LIVE_GRAPH, "", id, 0, depth)


def tasks(state="pending", limit=20):
    """This process's asyncio tasks in ``state`` ("pending", "done",
    "cancelled" or "all") grouped by coroutine, largest group first, at most
    ``limit`` (1..100) groups: ``{"pid", "state", "tasks", "states",
    "groups": [{"coroutine", "count", "waiting_at", "examples"}]}``. Read
    without running any code of the app (docs/http-api.md, /api/tasks)."""
    if state not in ("pending", "done", "cancelled", "all"):
        raise ValueError("state must be pending, done, cancelled or all")
    return _query(_pyloot.LIVE_TASKS, state, 0, 0, limit)
