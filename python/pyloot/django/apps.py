"""The Django app config: starts pyloot's collector where requests are served."""
import os
import sys

from django.apps import AppConfig


def _management_command():
    """The management command this process runs (``manage.py runserver``,
    ``django-admin migrate``, ``python -m django ...``), or None when it is
    not a management command (gunicorn, uwsgi, uvicorn, daphne ...)."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    is_manage = argv0 in ("manage.py", "django-admin", "django-admin.py") or (
        argv0 == "__main__.py" and "django" in sys.argv[0])
    if not is_manage:
        return None
    return sys.argv[1] if len(sys.argv) > 1 else ""


def should_start(settings_start=None):
    """Whether this process should run the collector.

    ``PYLOOT["start"]`` True or False decides; by default: yes under a
    server, and for ``runserver`` only in the process that serves (the
    autoreloader's child, or the one process with ``--noreload``); no for
    other management commands (migrate, shell, test ...).
    """
    if settings_start is not None:
        return bool(settings_start)
    command = _management_command()
    if command is None:
        return True
    if command != "runserver":
        return False
    return os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv


class PyLootConfig(AppConfig):
    name = "pyloot.django"
    label = "pyloot"
    verbose_name = "pyloot"

    def ready(self):
        from django.conf import settings

        from pyloot.django import get_pyloot

        loot = get_pyloot()
        if should_start((getattr(settings, "PYLOOT", None) or {}).get("start")):
            # In a gunicorn master loading the app with --preload, start()
            # defers to the workers (each forked worker starts its own).
            loot.start()
