"""A Flask app that leaks on demand, pyloot mounted at /_pyloot with
werkzeug's DispatcherMiddleware (the README's Flask recipe).

Routes: /leak?n=K&hold=S, /pid. Configured by the environment: PYLOOT_DB,
PYLOOT_TEST_INTERVAL (default 1), PYLOOT_TEST_TOKEN (default none).
"""
import os
import time

from flask import Flask, jsonify, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from pyloot import PyLoot


class Leak:
    def __init__(self, index):
        self.index = index


LEAKS = []

pyloot = PyLoot(interval=float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")),
                token=os.environ.get("PYLOOT_TEST_TOKEN") or None)
pyloot.start()  # in a gunicorn master with --preload this defers to the workers

flask_app = Flask(__name__)


@flask_app.route("/leak")
def leak():
    n = int(request.args.get("n", 1))
    base = len(LEAKS)
    LEAKS.extend(Leak(base + i) for i in range(n))
    time.sleep(float(request.args.get("hold", 0)))
    return jsonify(pid=os.getpid(), leaked=n, total=len(LEAKS))


@flask_app.route("/pid")
def pid():
    return jsonify(pid=os.getpid())


app = DispatcherMiddleware(flask_app, {"/_pyloot": pyloot.get_wsgi()})
