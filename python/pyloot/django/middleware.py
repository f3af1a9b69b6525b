"""Requests by route for Django: add ``"pyloot.django.middleware.RequestsByRoute"``
to ``MIDDLEWARE`` (first is best) and each request counts under its URL
pattern (``request.resolver_match.route``, e.g. ``GET /users/<int:pk>/``),
or its path with ids collapsed when no pattern matched."""
from pyloot import _pyloot

__all__ = ["RequestsByRoute"]

_count = _pyloot.count_request


class RequestsByRoute:
    def __init__(self, get_response):
        self.get_response = get_response
        _pyloot.requests_enable()

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None)
            _count(request.method, request.path_info, "/" + route if isinstance(route, str) else None)
