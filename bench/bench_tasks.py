#!/usr/bin/env python3
"""/api/tasks: grouping a worker's asyncio tasks by coroutine, measured in one run.

    python3 bench/bench_tasks.py [--tasks N] [--heap M]

N pending tasks (default 20,000) of three coroutines, each waiting two
coroutines deep on a future, in a heap of M more tracked objects (default
500,000). Three ways to get the groups, each the median of interleaved
repetitions, wall clock:

1. ``pyloot.live.tasks()``: the C walk over every tracked object plus the C
   getters of each task (what GET /api/tasks runs in the worker);
2. the baseline a developer would write on the loop's own thread:
   ``asyncio.all_tasks()`` and a Counter of ``task.get_coro().__qualname__``
   with the innermost frame found through ``cr_await`` and ``cr_frame``
   (which creates one frame object per coroutine and keeps it, timed after
   its first run; it cannot run on another thread than the loop's);
3. ``gc.get_objects()`` alone, the cost of any walk over the heap.

Prints the three times and the ratios 1/2 and 1/3. Not part of the test run.
"""
import argparse
import asyncio
import collections
import gc
import statistics
import time

from pyloot import live


async def wait_deep(fut):
    await fut


async def handler_a(fut):
    await wait_deep(fut)


async def handler_b(fut):
    await wait_deep(fut)


async def handler_c(fut):
    await wait_deep(fut)


def baseline():
    groups = collections.Counter()
    places = collections.Counter()
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        groups[coro.__qualname__] += 1
        inner = coro
        while getattr(inner, "cr_await", None) is not None and hasattr(inner.cr_await, "cr_frame"):
            inner = inner.cr_await
        frame = inner.cr_frame
        if frame is not None:
            places[(coro.__qualname__, frame.f_code.co_filename, frame.f_lineno)] += 1
    return groups, places


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


async def main(args):
    loop = asyncio.get_running_loop()
    heap = [[i] for i in range(args.heap)]
    futures = [loop.create_future() for _ in range(args.tasks)]
    handlers = (handler_a, handler_b, handler_c)
    tasks = [asyncio.ensure_future(handlers[i % 3](f)) for i, f in enumerate(futures)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    answer = live.tasks(limit=10)
    assert sum(g["count"] for g in answer["groups"]) >= args.tasks, answer
    baseline()  # its first run creates a frame object per coroutine; time the later ones
    ours, base, walk = [], [], []
    for _ in range(args.reps):
        ours.append(timed(lambda: live.tasks(limit=10), 1))
        base.append(timed(baseline, 1))
        walk.append(timed(gc.get_objects, 1))
    o, b, w = statistics.median(ours), statistics.median(base), statistics.median(walk)
    print("tasks %d, tracked objects %d" % (args.tasks, len(gc.get_objects())))
    print("live.tasks() (C walk + getters, any thread)      %8.1f ms" % (o * 1e3))
    print("all_tasks() + Python grouping (loop thread only)  %8.1f ms" % (b * 1e3))
    print("gc.get_objects() alone                            %8.1f ms" % (w * 1e3))
    print("ratio live.tasks / all_tasks baseline: %.2f" % (o / b))
    print("ratio live.tasks / gc.get_objects:     %.2f" % (o / w))
    for f in futures:
        f.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    del heap


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=20000)
    p.add_argument("--heap", type=int, default=500000)
    p.add_argument("--reps", type=int, default=5)
    asyncio.run(main(p.parse_args()))
