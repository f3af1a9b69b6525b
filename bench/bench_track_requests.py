#!/usr/bin/env python3
"""What ``PyLoot.track_requests`` costs per request (DESIGN.md section 5: <= 2 us), measured in one run.

    python3 bench/bench_track_requests.py [--requests N] [--rounds R]

Calls a trivial WSGI app (and a trivial ASGI app, awaited in one event-loop
task) N times bare and N times wrapped by ``track_requests``, alternating
R rounds (A, B, A, B, ...), and prints the median time per request of each,
the overhead (wrapped - bare) in microseconds against the 2 us goal, and the
ratio. The paths rotate over 300 ids of three routes ("/users/<n>",
"/orders/<uuid>", "/static/app.js"), so the C side names, collapses and
counts every request as it would in a server. Not part of the test run; see
bench/README.md.
"""
import argparse
import asyncio
import statistics
import time
import uuid

from pyloot import PyLoot, _pyloot

GOAL_US = 2.0


def environs(n):
    paths = []
    for i in range(n):
        k = i % 3
        if k == 0:
            paths.append("/users/%d" % (i % 300))
        elif k == 1:
            paths.append("/orders/%s" % uuid.UUID(int=i % 300))
        else:
            paths.append("/static/app.js")
    return [{"REQUEST_METHOD": "GET", "PATH_INFO": p, "QUERY_STRING": ""} for p in paths]


def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]


def start_response(status, headers):
    return None


def time_wsgi(app, envs):
    t0 = time.perf_counter()
    for e in envs:
        app(e, start_response)
    return (time.perf_counter() - t0) / len(envs)


async def asgi_app(scope, receive, send):
    await send(None)


async def receive():
    return None


async def send(message):
    return None


def time_asgi(app, scopes):
    async def run():
        t0 = time.perf_counter()
        for s in scopes:
            await app(s, receive, send)
        return (time.perf_counter() - t0) / len(scopes)
    return asyncio.run(run())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    envs = environs(args.requests)
    scopes = [{"type": "http", "method": "GET", "path": e["PATH_INFO"]} for e in envs]
    loot = PyLoot()  # not started: no collector takes the counts meanwhile
    wrapped_wsgi = loot.track_requests(wsgi_app)
    wrapped_asgi = loot.track_requests(asgi_app)
    results = {}
    for kind, bare, wrapped, timer, data in (("WSGI", wsgi_app, wrapped_wsgi, time_wsgi, envs),
                                             ("ASGI", asgi_app, wrapped_asgi, time_asgi, scopes)):
        a, b = [], []
        for _ in range(args.rounds):
            a.append(timer(bare, data))
            b.append(timer(wrapped, data))
            _pyloot.requests_counted(True)  # as a sample would: the table starts empty again
        bare_us, wrapped_us = statistics.median(a) * 1e6, statistics.median(b) * 1e6
        results[kind] = (bare_us, wrapped_us)
        over = wrapped_us - bare_us
        print("%s: bare %.3f us/request, tracked %.3f us/request: overhead %.3f us (goal <= %.1f us: %s), "
              "ratio %.2fx" % (kind, bare_us, wrapped_us, over, GOAL_US, "met" if over <= GOAL_US else "MISSED",
                               wrapped_us / bare_us))
    print("median of %d rounds of %d requests each" % (args.rounds, args.requests))


if __name__ == "__main__":
    main()
