"""A value held under a secret-looking name is "<redacted>" on every route
that can show it, followed the way a user clicks through a real gunicorn
worker's HTTP API: the account's children, the secret child opened by its
id, its parents and path, the instances lists, witnesses, retainers and
suspects (docs/security.md, "Values held under a secret-looking name").
In-process checks cover the containers and the rule's edges."""
import json
import os
import subprocess
import sys

import pytest

from conftest import APPS, free_port, http, read_log, stop_group, wait_until
from pyloot import PyLoot


@pytest.fixture
def worker(tmp_path):
    """One gunicorn sync worker serving apps/secret_app.py."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = dict(os.environ)
    env.update(PYLOOT_DB=str(tmp_path / "store"), PYLOOT_TEST_INTERVAL="0.3", PYLOOT_TEST_LIVE_TIMEOUT="10",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:%d" % port,
                                 "--chdir", str(APPS), "--timeout", "60", "--graceful-timeout", "5",
                                 "secret_app:app"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = "http://127.0.0.1:%d" % port

    def ready():
        if proc.poll() is not None:
            raise AssertionError("gunicorn exited: %s" % read_log(log_path)[-3000:])
        try:
            return http(url + "/pid", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_until(ready, 60, message="gunicorn to start")
        yield url
    finally:
        stop_group(proc)


def test_secret_values_are_redacted_on_every_route(worker):
    made = [http(worker + "/secret").json() for _ in range(3)]
    secrets = [s.encode() for m in made for s in m["secrets"]]
    bodies = []

    def api(path, expect=200):
        r = http(worker + "/_pyloot" + path, timeout=30)
        assert r.status == expect, (path, r.status, r.body[:300])
        bodies.append((path, r.body))
        return r.json()

    account = made[-1]["account"]
    listed = api("/api/objects?group=secret_app.Account&limit=100")
    assert str(account) in [o["id"] for o in listed["objects"]]
    detail = api("/api/objects/%d" % account)
    assert detail["attrs"]["password"] == "<redacted>"
    # Its children: the password is redacted by the name that holds it ...
    children = {o["via"]: o for o in api("/api/objects/%d/children?limit=100" % account)["objects"]}
    password, tokens = children["attribute 'password'"], children["attribute 'session_tokens'"]
    assert password["repr"] == "<redacted>" and tokens["repr"] == "<redacted>"
    # ... and opened by its id, where no name holds it.
    for child in (password, tokens):
        opened = api("/api/objects/%s" % child["id"])
        assert opened["repr"] == "<redacted>", opened
        api("/api/objects/%s/parents?limit=100" % child["id"])
        api("/api/objects/%s/path" % child["id"])
    token = api("/api/objects/%s/children?limit=10" % tokens["id"])["objects"]
    assert [o["repr"] for o in token] == ["<redacted>"]
    assert api("/api/objects/%s" % token[0]["id"])["repr"] == "<redacted>"
    # The module dict that holds CONFIG, and CONFIG itself.
    config = [o for o in api("/api/objects/%s/parents?limit=100" % password["id"])["objects"]]
    assert config, "the account holds its password"
    for group in ("builtins.str", "builtins.list", "builtins.dict", "builtins.tuple", "secret_app.Account"):
        api("/api/objects?group=%s&limit=10000" % group)
    # Witnesses answer once a sample has named the type.
    wait_until(lambda: http(worker + "/_pyloot/api/witnesses?group=secret_app.Account").status == 200, 30,
               message="a sample naming secret_app.Account")
    api("/api/witnesses?group=secret_app.Account")
    api("/api/retainers?id=%d" % account)
    api("/api/suspects?group=secret_app.Account")
    api("/api/suspects?group=builtins.list")
    for path, body in bodies:
        for secret in secrets:
            assert secret not in body, (path, secret, body[:2000])
    # The route was really there to show them: the account is 200 above,
    # and its name is not a secret.
    assert detail["attrs"]["user"] == repr("user-2")


class Vault:
    def __init__(self, secret):
        self.password = secret
        self.api_keys = ("v1", [secret + "-inner"], {"x": secret + "-dict"})
        self.label = "vault"


_HELD = []


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=60)
    yield loot
    _HELD.clear()
    loot.backend.close()


def get(loot, path, query=""):
    status, _, _, body = loot.get_wsgi().handle("GET", path, query)
    assert status == 200, (path, status, body[:300])
    return body


def test_containers_and_shared_values(loot):
    secret = "s3-" + os.urandom(8).hex()
    vault = Vault(secret)
    # The same secret also held under a name that is not secret: still redacted.
    elsewhere = {"plain": secret}
    held_in_list = ["before", secret]
    _HELD[:] = [vault, elsewhere, held_in_list]
    bodies = [get(loot, "/api/objects/%d" % id(secret)),
              get(loot, "/api/objects/%d" % id(vault.api_keys)),
              get(loot, "/api/objects/%d" % id(vault.api_keys[1])),
              get(loot, "/api/objects/%d" % id(vault.api_keys[1][0])),
              get(loot, "/api/objects/%d" % id(vault.api_keys[2])),
              get(loot, "/api/objects/%d" % id(elsewhere)),
              get(loot, "/api/objects/%d" % id(held_in_list)),
              get(loot, "/api/objects/%d/children" % id(held_in_list), "limit=10"),
              get(loot, "/api/objects/%d/children" % id(vault.api_keys), "limit=10"),
              get(loot, "/api/objects", "group=builtins.list&limit=10000")]
    for body in bodies:
        assert secret.encode() not in body, body[:1000]
    assert json.loads(bodies[0])["repr"] == "<redacted>"
    assert json.loads(bodies[5])["repr"] == "{'plain': <redacted>}"
    assert json.loads(bodies[6])["repr"] == "['before', <redacted>]"
    # What is not held under a secret name shows as before.
    assert json.loads(get(loot, "/api/objects/%d" % id(vault)))["attrs"]["label"] == "'vault'"
    assert json.loads(get(loot, "/api/objects/%d" % id(vault.label)))["repr"] == "'vault'"


def test_small_shared_values_are_not_redacted(loot):
    # A secret-named 0 or "" is shared by the whole interpreter: shown.
    holder = Vault("x")
    holder.password, holder.token_count, holder.api_keys = "", 7, ()
    _HELD[:] = [holder, [0, 7, "", ()]]
    body = json.loads(get(loot, "/api/objects/%d" % id(_HELD[1])))
    assert body["repr"] == "[0, 7, '', ()]"


def test_redact_list_set_by_pyloot_applies(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=60, redact=["ssn"])
    try:
        ssn = "ssn-" + os.urandom(6).hex()
        holder = Vault("pw-" + os.urandom(6).hex())
        holder.user_ssn = ssn
        _HELD[:] = [holder]
        assert json.loads(get(loot, "/api/objects/%d" % id(ssn)))["repr"] == "<redacted>"
        assert json.loads(get(loot, "/api/objects/%d" % id(holder.password)))["repr"].startswith("'pw-")
    finally:
        _HELD.clear()
        from pyloot import _pyloot
        _pyloot.set_redact(None)
        loot.backend.close()
