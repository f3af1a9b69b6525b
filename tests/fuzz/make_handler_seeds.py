"""Writes the seed inputs of fuzz_handler: every route of docs/http-api.md with
good and bad parameters, in the input format of tests/fuzz/fuzz_handler.c
(a flags byte, then method, path, query, Accept-Encoding, Authorization,
Cookie and body separated by newlines). `bench/fuzz.sh handler` runs it when the corpus is empty; the
committed corpus under tests/fuzz/corpus/handler/ started from these.

usage: python3 tests/fuzz/make_handler_seeds.py DIR
"""
import hashlib
import os
import sys

ROUTES = [
    ("/", ""), ("/index.html", ""), ("/static/index.html", ""), ("/static/app.js", ""),
    ("/static/../CMakeLists.txt", ""), ("/static/.hidden", ""), ("/static/", ""), ("", ""),
    ("/api/procs", ""), ("/api/procs", "x=1"),
    ("/api/history", ""), ("/api/history", "q=app.&sort=name&limit=2&offset=1"),
    ("/api/history", "sort=count&top=2&workers=1&points=2"), ("/api/history", "pid=4242"),
    ("/api/history", "pid=1&workers=1"), ("/api/history", "q=%41pp%2eleak&sort=growth"),
    ("/api/history", "q=%4"), ("/api/history", "q=%g0"), ("/api/history", "q=%00"),
    ("/api/history", "q=" + "a" * 257), ("/api/history", "limit=0"), ("/api/history", "limit=1001"),
    ("/api/history", "limit=9999999999999999999"), ("/api/history", "offset=-1"),
    ("/api/history", "sort=size"), ("/api/history", "sort"), ("/api/history", "points=5001"),
    ("/api/history", "top=100001"), ("/api/history", "workers=yes"), ("/api/history", "pid=4194304"),
    ("/api/history", "limit=1&limit=2&&=&q"),
    ("/api/objects", "group=app.Leak"), ("/api/objects", "group=app.Other%232&offset=1&limit=10"),
    ("/api/objects", "group=dict&pid=1"), ("/api/objects", "group="), ("/api/objects", ""),
    ("/api/objects", "group=" + "x" * 1025), ("/api/objects", "group=a%00b"), ("/api/objects/", "group=x"),
    ("/api/objects/12345", ""), ("/api/objects/12345", "pid=1"), ("/api/objects/0", ""),
    ("/api/objects/12345/parents", "offset=0&limit=5"), ("/api/objects/12345/children", "limit=10000"),
    ("/api/objects/12345/path", "pid=4242"), ("/api/objects/12/grandparents", ""),
    ("/api/objects/abc", ""), ("/api/objects/-1", ""), ("/api/objects/18446744073709551615", ""),
    ("/api/objects/0x10", ""), ("/api/objects/1x/path", ""), ("/api/objects/12345/", ""),
    ("/api/witnesses", "group=app.Leak"), ("/api/suspects", "group=app.Leak"),
    ("/api/retainers", "pid=1&id=2"), ("/metrics", ""), ("/api", ""), ("/nope", ""),
    ("/api/history", "since=1764320000&until=1764320000.250"), ("/api/history", "since=1.5&workers=1&pid=1"),
    ("/api/history", "until=99999999999"), ("/api/history", "since=.5"), ("/api/history", "until=1."),
    ("/api/history", "since=&until="), ("/api/history", "host=web-1"), ("/api/history", "host=&pid=1"),
    ("/api/witnesses", "group=app.Leak&pid=1&host=h"), ("/api/witnesses", ""),
    ("/metrics", "top=5&workers=1"), ("/metrics", "top=0"),
    ("/api/retainers", "pid=1&id=2&retained=1"), ("/api/suspects", "group=app.Leak&pid=1&n=5"),
    ("/api/logout", ""), ("/api/login", "token=x"),
    ("/api/memory", ""), ("/api/memory", "pid=1&host=web-1&since=1764320000&until=1764320000.250&points=2"),
    ("/api/memory", "points=1"), ("/api/memory", "since=2&until=1"), ("/api/memory", "pid=0"),
    ("/api/tasks", ""), ("/api/tasks", "state=all&limit=100&pid=1&host=h"), ("/api/tasks", "state=x&limit=101"),
    ("/api/routes", ""), ("/api/routes", "group=app.Leak&pid=1&host=web-1&since=1764320000&until=1764320000.250"),
    ("/api/routes", "group=app.Leak&points=2&limit=1"), ("/api/routes", "limit=0"), ("/api/routes", "group="),
]


def seed(flags, method, path, query, accept="", body=b"", auth="", cookie=""):
    return bytes([flags]) + b"\n".join(
        s.encode() for s in (method, path, query, accept, auth, cookie)) + b"\n" + body


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = []
    for path, query in ROUTES:
        for flags in (0, 1, 1 | 32, 32 | 64 | 1):
            seeds.append(seed(flags, "GET", path, query))
        seeds.append(seed(1 | 128 | 64, "GET", path, query, auth="Bearer fuzz-token"))
        seeds.append(seed(0, "GET", path, query, "gzip, deflate"))
        seeds.append(seed(2 | 4, "HEAD", path, query))
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "get", ""):
        seeds.append(seed(0, method, "/api/history", "", "", b"{}"))
    seeds.append(seed(0, "POST", "/api/samples", "", "", b'{"t": 1, "types": [["app.Leak", 3, 96]]}'))
    seeds.append(seed(0, "GET", "/api/samples", ""))
    seeds.append(seed(0, "POST", "/api/login", "", "", b"token=secret"))
    for flags in (128, 128 | 1 | 32):
        seeds.append(seed(flags, "POST", "/api/login", "", "", b"fuzz-token"))
        seeds.append(seed(flags, "POST", "/api/login", "", "", b"wrong"))
        seeds.append(seed(flags, "POST", "/api/logout", "", ""))
        seeds.append(seed(flags, "GET", "/api/procs", "", "", auth="Bearer wrong"))
        seeds.append(seed(flags, "GET", "/api/procs", "", "", auth="Basic Zm9vOmJhcg=="))
        seeds.append(seed(flags, "GET", "/api/objects", "group=dict", "", cookie="a=b; pyloot_token=fuzz-token"))
        seeds.append(seed(flags, "GET", "/api/objects", "group=dict", "", cookie="pyloot_token=\"x\"; c"))
    for accept in ("gzip;q=0", "*", "identity, *;q=0", "GZIP", "x-gzip", "br;q=1.0, gzip;q=0.5"):
        seeds.append(seed(0, "GET", "/api/history", "workers=1", accept))
    seeds.append(seed(8 | 1, "GET", "/api/procs", ""))
    seeds.append(seed(16, "GET", "/api/history", "", "gzip"))
    for s in seeds:
        with open(os.path.join(out, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print("%d seeds in %s" % (len(set(seeds)), out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "handler"))
