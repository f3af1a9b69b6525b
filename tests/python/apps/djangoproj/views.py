import os
import time

from django.http import HttpRequest, JsonResponse


class Leak:
    def __init__(self, index):
        self.index = index


LEAKS = []


def leak(request):
    n = int(request.GET.get("n", 1))
    base = len(LEAKS)
    LEAKS.extend(Leak(base + i) for i in range(n))
    time.sleep(float(request.GET.get("hold", 0)))
    return JsonResponse({"pid": os.getpid(), "leaked": n, "total": len(LEAKS)})


def pid(request):
    return JsonResponse({"pid": os.getpid()})


def staff_only(request):
    """The allow callable: a stand-in for request.user.is_staff."""
    assert isinstance(request, HttpRequest)
    return request.headers.get("X-Test-Staff") == "1"
