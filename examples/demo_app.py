"""pyloot demo: a Flask app with a leak, pyloot embedded as in the README.

Run it with several gunicorn workers (tools/bootstrap.sh demo does):
    gunicorn -w 4 -b 127.0.0.1:8000 --chdir examples demo_app:app
then open http://127.0.0.1:8000/_pyloot/ and watch demo_app.Session grow;
/_pyloot/api/routes?group=demo_app.Session tells it grows with GET /login/<user>.
"""
import os
import random

from flask import Flask, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from pyloot import PyLoot

flask_app = Flask(__name__)


class Session:
    """Something a real app might cache by mistake."""

    def __init__(self, user):
        self.user = user
        self.history = [random.random() for _ in range(8)]


class Request:
    def __init__(self, path):
        self.path = path


_SESSIONS = []  # the leak: never trimmed


@flask_app.route("/")
def index():
    return jsonify(pid=os.getpid(), sessions=len(_SESSIONS))


@flask_app.route("/login/<user>")
def login(user):
    _SESSIONS.append(Session(user))
    return jsonify(pid=os.getpid(), sessions=len(_SESSIONS))


@flask_app.route("/work")
def work():
    # Garbage that is freed again: it must not show as growth.
    scratch = [Request("/work") for _ in range(200)]
    return jsonify(pid=os.getpid(), made=len(scratch))


# The three lines of the README, and the requests counted by route.
pyloot = PyLoot(interval=float(os.environ.get("PYLOOT_INTERVAL", "5")))
pyloot.start()
app = DispatcherMiddleware(pyloot.track_requests(flask_app), {"/_pyloot": pyloot.get_wsgi()})
