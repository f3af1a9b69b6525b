"""A small WSGI app that leaks on demand, with pyloot mounted at /_pyloot.

Routes:
  /leak?n=K&hold=S  append K Leak objects to the module-level list LEAKS
                    (then keep the worker busy S seconds, so that concurrent
                    requests spread over the workers); answers
                    {"pid": ..., "leaked": K, "total": len(LEAKS)}
  /cache?n=K&size=S&hold=H keep K new bytes objects of S bytes each in the module-level
                    dict _cache (keys 'k0', 'k1', ...): a leak of untracked objects;
                    answers {"pid": ..., "kept": K * S}
  /strings?n=K&size=S&hold=H  append K new str objects of S characters to the module-level
                    list STRINGS; answers {"pid": ..., "kept": K}
  /lru?key=K        look K up in a functools.lru_cache of LRU_SIZE entries that makes
                    one Cached object per new key (a bounded cache: it fills, then its
                    count stays flat); answers {"pid": ..., "cached": entries}
  /pid              {"pid": ...}
  /native-leak?mb=M malloc M MiB in 1 MiB blocks through ctypes, write every
                    byte and keep the pointers (memory no Python object holds):
                    {"pid": ..., "leaked": bytes}
  /list-leak?n=N    keep N lists of 500 ints (gc-tracked Python objects of
                    about 4 KB each): {"pid": ..., "leaked": their shallow bytes}
  /block?s=S&mark=F hold the GIL for S seconds (a stuck worker); with mark,
                    first write the worker's pid to the file F (a test waits
                    for it to know the worker is stuck); with release=R (a one-byte
                    file), end early once R's byte is set to 1
  /exit?code=K      the worker runs its exit handlers (pyloot marks its own
                    end) and exits with code K, without an answer (gunicorn
                    catches a SystemExit raised in a request)
  /_pyloot/...      pyloot

Configured by the environment: PYLOOT_DB (store), PYLOOT_TEST_INTERVAL
(collector interval, default 1), PYLOOT_TEST_LIVE_TIMEOUT (default 5),
PYLOOT_TEST_TRACE (type names whose allocation sites are traced, comma-separated),
PYLOOT_TEST_REMOTE ("HOST:PORT": remote mode, pushing to that central
server; PYLOOT_HOST_NAME and PYLOOT_TOKEN apply).
"""
import collections
import functools
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


class Cached:
    """One entry of the bounded cache behind /lru."""

    def __init__(self, key):
        self.key = key


class Rich:
    """A leaked object that holds more than itself: its bytes, list, floats
    and dict each outgrow the instances of the class."""

    def __init__(self, index):
        self.blob = os.urandom(300)
        self.history = [float(index) + i / 7 for i in range(12)]
        self.meta = {"index": index, "tags": ("a", "b")}


Point = collections.namedtuple("Point", "x y")  # its __new__ is code made by exec: "<string>"

LRU_SIZE = 8


@functools.lru_cache(maxsize=LRU_SIZE)
def _lookup(key):
    return Cached(key)


LEAKS = []
_cache = {}
STRINGS = []
NATIVE = []
LISTS = []
RICH = []
POINTS = []


def _native_leak(mb):
    import ctypes
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.memset.restype = ctypes.c_void_p
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    block = 1 << 20
    for _ in range(mb):
        p = libc.malloc(block)
        libc.memset(p, 0x5A, block)
        NATIVE.append(p)
    return mb * block


def _list_leak(n):
    made = [[0] * 500 for _ in range(n)]
    LISTS.extend(made)
    return sum(sys.getsizeof(x) for x in made)

_remote = os.environ.get("PYLOOT_TEST_REMOTE")
_remote_host, _, _remote_port = (_remote or "").rpartition(":")
pyloot = PyLoot(host=_remote_host or None, port=int(_remote_port) if _remote else None,
                interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")),
                live_timeout=float(os.environ.get("PYLOOT_TEST_LIVE_TIMEOUT", "5")),
                trace_allocations=[t for t in os.environ.get("PYLOOT_TEST_TRACE", "").split(",") if t])
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
    if path == "/point-leak":
        POINTS.extend(Point(len(POINTS), i) for i in range(_param(environ, "n", 1, int)))
        return _json(start_response, {"pid": os.getpid(), "total": len(POINTS)})
    if path == "/rich-leak":
        RICH.extend(Rich(len(RICH)) for _ in range(_param(environ, "n", 1, int)))
        return _json(start_response, {"pid": os.getpid(), "total": len(RICH)})
    if path == "/cache":
        n, size = _param(environ, "n", 1, int), _param(environ, "size", 100000, int)
        for _ in range(n):
            _cache["k%d" % len(_cache)] = os.urandom(size)
        time.sleep(_param(environ, "hold", 0.0))
        return _json(start_response, {"pid": os.getpid(), "kept": n * size})
    if path == "/strings":
        n, size = _param(environ, "n", 1, int), _param(environ, "size", 100, int)
        for _ in range(n):
            STRINGS.append(("s%d-" % len(STRINGS)).ljust(size, "x"))
        time.sleep(_param(environ, "hold", 0.0))
        return _json(start_response, {"pid": os.getpid(), "kept": n})
    if path == "/lru":
        _lookup(_param(environ, "key", "", str))
        return _json(start_response, {"pid": os.getpid(), "cached": _lookup.cache_info().currsize})
    if path == "/pid":
        return _json(start_response, {"pid": os.getpid()})
    if path == "/native-leak":
        return _json(start_response, {"pid": os.getpid(), "leaked": _native_leak(_param(environ, "mb", 1, int))})
    if path == "/list-leak":
        return _json(start_response, {"pid": os.getpid(), "leaked": _list_leak(_param(environ, "n", 1, int))})
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
            # With release, a one-byte file the test sets to 1 to end the
            # block: read through a shared mapping, which (unlike a stat)
            # does not let go of the GIL.
            release = _param(environ, "release", None, str)
            flag = None
            if release:
                import mmap
                with open(release, "rb") as f:
                    flag = mmap.mmap(f.fileno(), 1, prot=mmap.PROT_READ)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if flag is not None and flag[0]:
                    break
            if flag is not None:
                flag.close()
        finally:
            sys.setswitchinterval(old)
        return _json(start_response, {"pid": os.getpid(), "blocked": seconds})
    if path == "/exit":
        import atexit
        atexit._run_exitfuncs()
        os._exit(_param(environ, "code", 5, int))
    return _json(start_response, {"error": "no such route"}, "404 Not Found")
