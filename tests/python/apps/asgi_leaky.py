"""A FastAPI app that leaks on demand, with pyloot's native ASGI app mounted
at /_pyloot and the collector started by a lifespan handler.

Routes: /leak?n=K&hold=S (append K Leak objects to LEAKS, then sleep S s
off the event loop), /pid, /secret (keep one Secret holding a password and
an api_key; answers its id). Configured by the environment: PYLOOT_DB,
PYLOOT_TEST_INTERVAL (default 1), PYLOOT_TEST_TOKEN (default none).
"""
import asyncio
import contextlib
import os

from fastapi import FastAPI

from pyloot import PyLoot


class Leak:
    def __init__(self, index):
        self.index = index
        self.payload = "leak-%d" % index


class Secret:
    def __init__(self):
        self.user = "alice"
        self.password = "hunter2-value"
        self.api_key = "ak-123-value"


LEAKS = []
SECRETS = []

pyloot = PyLoot(interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")),
                token=os.environ.get("PYLOOT_TEST_TOKEN") or None)


@contextlib.asynccontextmanager
async def lifespan(app):
    pyloot.start()
    yield


app = FastAPI(lifespan=lifespan)
app.mount("/_pyloot", pyloot.get_asgi())


@app.get("/leak")
async def leak(n: int = 1, hold: float = 0.0):
    base = len(LEAKS)
    LEAKS.extend(Leak(base + i) for i in range(n))
    if hold:
        await asyncio.sleep(hold)
    return {"pid": os.getpid(), "leaked": n, "total": len(LEAKS)}


@app.get("/pid")
async def pid():
    return {"pid": os.getpid()}


@app.get("/secret")
async def secret():
    if not SECRETS:
        SECRETS.append(Secret())
    return {"pid": os.getpid(), "id": id(SECRETS[0])}
