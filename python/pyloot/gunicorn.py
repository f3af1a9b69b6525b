"""Hooks for a ``gunicorn.conf.py``.

::

    # gunicorn.conf.py
    from pyloot.gunicorn import child_exit  # noqa: F401  (gunicorn finds it by name)

``child_exit`` runs in the master when a worker has exited, whatever the
cause (killed, timed out, ``max_requests``): it marks that worker's
incarnation as ended in the store at once, so the merged views leave it out
without waiting for its liveness check, and stores how it ended as the
master saw it: killed by a signal (``SIGKILL``: the OOM killer, or
gunicorn's own timeout), exited with a non-zero code, or exited cleanly.
A worker that exits cleanly marks its own end; the master's status is added
to it. Nothing else is needed in the workers (each one starts its own
collector after the fork, ``--preload`` or not).

gunicorn does not hand the wait status to ``child_exit``: its arbiter
(``Arbiter.reap_workers``, gunicorn 19 to 23 and later) reaps the worker
with ``os.waitpid`` and calls the hook from the loop that holds the status
in its local ``status`` next to ``wpid``. :func:`worker_status` reads those
two locals of the calling frames (read only: nothing of gunicorn is
patched); when they are not there (another gunicorn, a hook called by
hand), the end is stored without a status and listed as before (ended).

The store is ``$PYLOOT_DB`` if set (``raw_env = ["PYLOOT_DB=/var/lib/app/pyloot"]``
sets it for the master too), else the server's default store. With
``PyLoot(path=...)`` in the app, call ``configure(path=...)`` in the config.
"""
import logging
import os

from pyloot import _pyloot
from pyloot.backends import default_path

import sys

__all__ = ["child_exit", "configure", "mark_ended", "worker_status"]

logger = logging.getLogger("pyloot")

_path = None


def configure(path=None):
    """The store the hooks write to (default ``$PYLOOT_DB``, else the server's default)."""
    global _path
    _path = path


def _store_path():
    return _path or os.environ.get("PYLOOT_DB") or default_path()


def mark_ended(pid, path=None, status=None):
    """Marks the newest not-ended incarnation of ``pid`` in the store as
    ended, with ``status`` (the wait status ``os.waitpid`` returned for it,
    None when unknown) stored as how it ended. Returns True if one was
    marked. Never raises.

    It runs in the gunicorn master, the one process that must never die: the
    store is opened, written and closed in a short-lived child process
    (``store_end_isolated``), so the master keeps no LMDB environment and a
    damaged store can crash only that child (docs/store.md, "Damage at run
    time"). The master waits for it at most 3 seconds."""
    try:
        path = path or _store_path()
        if not os.path.isdir(path):
            return False
        marked, why = _pyloot.store_end_isolated(path, pid, 3.0, status)
        if why:
            logger.warning("pyloot: marking worker %d as ended in %s failed: %s", pid, path, why)
        return marked
    except Exception:
        logger.exception("pyloot: marking worker %d as ended failed", pid)
        return False


def worker_status(worker, depth=4):
    """The wait status gunicorn reaped ``worker`` with, or None: a
    ``status`` attribute of the worker if it has one, else the ``status``
    local of the nearest of ``depth`` calling frames whose ``wpid`` local is
    the worker's pid (``Arbiter.reap_workers``). Never raises."""
    try:
        status = getattr(worker, "status", None)
        if isinstance(status, int) and not isinstance(status, bool):
            return status
        frame = sys._getframe(1)
        for _ in range(depth):
            if frame is None:
                break
            names = frame.f_locals
            if names.get("wpid") == worker.pid:
                status = names.get("status")
                if isinstance(status, int) and not isinstance(status, bool):
                    return status
                return None
            frame = frame.f_back
    except Exception:
        pass
    return None


def child_exit(server, worker):
    """gunicorn's ``child_exit`` hook: the worker's incarnation ended now,
    as gunicorn reaped it (killed, exited with a code, or cleanly)."""
    mark_ended(worker.pid, status=worker_status(worker))
