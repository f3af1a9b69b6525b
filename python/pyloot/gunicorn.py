"""Hooks for a ``gunicorn.conf.py``.

::

    # gunicorn.conf.py
    from pyloot.gunicorn import child_exit  # noqa: F401  (gunicorn finds it by name)

``child_exit`` runs in the master when a worker has exited, whatever the
cause (killed, timed out, ``max_requests``): it marks that worker's
incarnation as ended in the store at once, so the merged views leave it out
without waiting for its liveness check. A worker that exits cleanly already
does so itself; nothing else is needed in the workers (each one starts its
own collector after the fork, ``--preload`` or not).

The store is ``$PYLOOT_DB`` if set (``raw_env = ["PYLOOT_DB=/var/lib/app/pyloot"]``
sets it for the master too), else the server's default store. With
``PyLoot(path=...)`` in the app, call ``configure(path=...)`` in the config.
"""
import logging
import os

from pyloot import _pyloot
from pyloot.backends import default_path

__all__ = ["child_exit", "configure", "mark_ended"]

logger = logging.getLogger("pyloot")

_path = None


def configure(path=None):
    """The store the hooks write to (default ``$PYLOOT_DB``, else the server's default)."""
    global _path
    _path = path


def _store_path():
    return _path or os.environ.get("PYLOOT_DB") or default_path()


def mark_ended(pid, path=None):
    """Marks the newest not-ended incarnation of ``pid`` in the store as
    ended. Returns True if one was marked. Never raises.

    It runs in the gunicorn master, the one process that must never die: the
    store is opened, written and closed in a short-lived child process
    (``store_end_isolated``), so the master keeps no LMDB environment and a
    damaged store can crash only that child (docs/store.md, "Damage at run
    time"). The master waits for it at most 3 seconds."""
    try:
        path = path or _store_path()
        if not os.path.isdir(path):
            return False
        marked, why = _pyloot.store_end_isolated(path, pid, 3.0)
        if why:
            logger.warning("pyloot: marking worker %d as ended in %s failed: %s", pid, path, why)
        return marked
    except Exception:
        logger.exception("pyloot: marking worker %d as ended failed", pid)
        return False


def child_exit(server, worker):
    """gunicorn's ``child_exit`` hook: the worker's incarnation ended now."""
    mark_ended(worker.pid)
