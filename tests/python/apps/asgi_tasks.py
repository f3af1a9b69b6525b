"""A FastAPI app that leaks asyncio tasks on demand, with pyloot's native
ASGI app mounted at /_pyloot and the collector started by a lifespan handler.

Routes:
  /spawn?n=K     K tasks of handler.<locals>.poll, each waiting in
                 wait_for_news() on a future nobody completes; kept in TASKS
  /hostile       one HostileTask (a Task subclass whose Python-level
                 attributes record being asked) of the same coroutine
  /finished      one task that finished and one that was cancelled, kept
  /calls         what the hostile tasks' Python code was asked so far
  /pid
Configured by the environment: PYLOOT_DB, PYLOOT_TEST_INTERVAL (default 1),
PYLOOT_TEST_TOKEN (default none). The tests find the lines of the awaits
by their marker comments.
"""
import asyncio
import contextlib
import os

from fastapi import FastAPI

from pyloot import PyLoot

TASKS = set()
FUTURES = []
CALLS = []

pyloot = PyLoot(interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")),
                token=os.environ.get("PYLOOT_TEST_TOKEN") or None)


@contextlib.asynccontextmanager
async def lifespan(app):
    pyloot.start()
    yield


app = FastAPI(lifespan=lifespan)
app.mount("/_pyloot", pyloot.get_asgi())


async def wait_for_news():
    fut = asyncio.get_running_loop().create_future()
    FUTURES.append(fut)
    await fut  # AWAIT-NEWS


def handler():
    async def poll():
        await wait_for_news()  # AWAIT-POLL
    return poll


async def quick():
    return 1


class HostileTask(asyncio.Task):
    """Every Python-level way to read a task, overridden to record the call."""

    def __getattr__(self, name):
        CALLS.append("__getattr__ " + name)
        raise AttributeError(name)

    @property
    def _state(self):
        CALLS.append("_state")
        raise RuntimeError("hostile _state")

    @property
    def _coro(self):
        CALLS.append("_coro")
        raise RuntimeError("hostile _coro")

    @property
    def _fut_waiter(self):
        CALLS.append("_fut_waiter")
        raise RuntimeError("hostile _fut_waiter")

    def get_coro(self):
        CALLS.append("get_coro")
        raise RuntimeError("hostile get_coro")

    def get_name(self):
        CALLS.append("get_name")
        raise RuntimeError("hostile get_name")

    def __repr__(self):
        CALLS.append("__repr__")
        raise RuntimeError("hostile __repr__")


def keep(task):
    TASKS.add(task)
    return str(id(task))


def pending_polls():
    """The pending tasks of poll() this worker holds (read through the base
    class, so that no HostileTask override runs)."""
    return sum(1 for t in TASKS if not asyncio.Task.done(t)
               and asyncio.Task.get_coro(t).__qualname__ == "handler.<locals>.poll")


async def started(before, n):
    """Until the n tasks made after FUTURES held `before` futures have all
    reached their await (a bounded number of loop turns)."""
    for _ in range(1000):
        if len(FUTURES) >= before + n:
            return
        await asyncio.sleep(0)
    raise RuntimeError("the tasks did not start")


@app.get("/spawn")
async def spawn(n: int = 1):
    before = len(FUTURES)
    ids = [keep(asyncio.ensure_future(handler()())) for _ in range(n)]
    await started(before, n)
    return {"pid": os.getpid(), "ids": ids, "pending_polls": pending_polls(),
            "futures": [str(id(f)) for f in FUTURES[before:]]}


@app.get("/hostile")
async def hostile():
    before = len(FUTURES)
    task = HostileTask(handler()(), loop=asyncio.get_running_loop())
    ident = keep(task)
    await started(before, 1)
    return {"pid": os.getpid(), "id": ident, "future": str(id(FUTURES[before])), "pending_polls": pending_polls()}


@app.get("/finished")
async def finished():
    done = asyncio.ensure_future(quick())
    await done
    before = len(FUTURES)
    cancelled = asyncio.ensure_future(wait_for_news())
    await started(before, 1)
    cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled
    return {"pid": os.getpid(), "done": keep(done), "cancelled": keep(cancelled)}


@app.get("/calls")
async def calls():
    return {"pid": os.getpid(), "calls": list(CALLS)}


@app.get("/pid")
async def pid():
    return {"pid": os.getpid()}
