"""A tiny encoder of the remote-mode sample message (docs/http-api.md,
"POST /api/samples"), so the central server's tests push without the worker
side. Test code only: the package's own encoder is the worker's C code."""
import gzip
import time

ENDED = 1
NEW_SPACE = 2
STATS = 4
MEMORY = 8
ROUTES = 16


def uv(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return uv(len(b)) + b


def message(host, pid, start, types=None, samples=(), flags=NEW_SPACE, interval_ms=1000, rss=1 << 20,
            argv="gunicorn app:app", stats=None, memory=None, routes=None):
    """types: {local_id: name}; samples: [(time_ms, {local_id: (count, bytes)})];
    stats: (collection_us, gil_held_us), sent with flags bit2, or None (an older worker's message);
    memory: one (rss, python_bytes, allocator_free_bytes) per sample, sent with flags bit3, or None;
    routes: one {route name: requests} per sample, sent with flags bit4, or None."""
    out = bytearray(b"PLS1")
    if stats is not None:
        flags |= STATS
    if memory is not None:
        flags |= MEMORY
    if routes is not None:
        flags |= ROUTES
    out += uv(flags) + string(host) + uv(pid) + uv(start) + uv(interval_ms) + uv(rss) + string(argv)
    if stats is not None:
        out += uv(stats[0]) + uv(stats[1])
    types = types or {}
    out += uv(len(types))
    for local, name in types.items():
        out += uv(local) + string(name)
    out += uv(len(samples))
    for k, (t, entries) in enumerate(samples):
        out += uv(t) + uv(len(entries))
        prev = 0
        for i, local in enumerate(sorted(entries)):
            count, size = entries[local]
            out += uv(local if i == 0 else local - prev) + uv(count) + uv(size)
            prev = local
        if memory is not None:
            out += b"".join(uv(v) for v in memory[k])
        if routes is not None:
            out += uv(len(routes[k])) + b"".join(string(r) + uv(n) for r, n in routes[k].items())
    return bytes(out)


def now_ms():
    return int(time.time() * 1000)


def headers(token=None):
    h = {"Content-Type": "application/x-pyloot-samples", "Content-Encoding": "gzip"}
    if token:
        h["Authorization"] = "Bearer " + token
    return h


def push(http, url, msg, token=None, raw=False):
    """POSTs one message (gzip'ed unless raw) to url + /api/samples."""
    body = msg if raw else gzip.compress(msg)
    return http(url + "/api/samples", headers=headers(token), method="POST", data=body)
