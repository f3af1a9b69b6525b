"""pyloot for Django.

settings.py::

    INSTALLED_APPS = [..., "pyloot.django"]
    PYLOOT = {"token": os.environ.get("PYLOOT_TOKEN"),          # any PyLoot(...) option
              "allow": "myproject.access.pyloot_allowed"}      # a callable or its dotted path

urls.py::

    urlpatterns = [..., path("_pyloot/", include("pyloot.django.urls"))]

Requests by route (``/api/routes``): ``MIDDLEWARE = ["pyloot.django.middleware.RequestsByRoute", ...]``.

The app config starts the collector in each worker process (not in a
``--preload`` master, not in the runserver autoreloader's watcher, not in
other management commands). The ``allow`` callable gets the Django request,
so ``lambda request: request.user.is_staff`` works (with
``django.contrib.auth`` and its middleware installed).
"""
import threading

__all__ = ["get_pyloot"]

_lock = threading.Lock()
_pyloot = None


def _options():
    from django.conf import settings
    from django.utils.module_loading import import_string

    options = dict(getattr(settings, "PYLOOT", None) or {})
    options.pop("start", None)
    allow = options.get("allow")
    if isinstance(allow, str):
        options["allow"] = import_string(allow)
    return options


def get_pyloot():
    """The :class:`pyloot.PyLoot` of this process, built from ``settings.PYLOOT``."""
    global _pyloot
    with _lock:
        if _pyloot is None:
            from pyloot import PyLoot
            _pyloot = PyLoot(**_options())
        return _pyloot
