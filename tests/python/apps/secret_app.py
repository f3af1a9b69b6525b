"""leaky.py's app with secrets held under secret-looking names, made at run
time (never a literal a code object would also hold).

Routes (besides leaky.py's):
  /secret   makes one Account holding three fresh secrets (an attribute
            `password`, an item of the list attribute `session_tokens`, the
            value of key "db_password" of the module-level dict CONFIG);
            answers {"pid", "account": id, "secrets": [...]}
"""
import json
import os

from leaky import app as leaky_app


class Account:
    """A user account: its password and session tokens are secrets."""

    def __init__(self, user, password, token):
        self.user = user
        self.password = password
        self.session_tokens = [token]


ACCOUNTS = []
CONFIG = {}


def app(environ, start_response):
    if environ.get("PATH_INFO") != "/secret":
        return leaky_app(environ, start_response)
    secrets = ["pw-" + os.urandom(8).hex(), "tok-" + os.urandom(8).hex(), "db-" + os.urandom(8).hex()]
    ACCOUNTS.append(Account("user-%d" % len(ACCOUNTS), secrets[0], secrets[1]))
    CONFIG["db_password"] = secrets[2]
    body = json.dumps({"pid": os.getpid(), "account": id(ACCOUNTS[-1]), "secrets": secrets}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
