"""/api/objects/<id> also decides from the edges of the object's referrers,
independently of the set of held secrets (src/pyext/held_secrets.c,
pl_held_secret_by_parents; docs/security.md, "Values held under a
secret-looking name"): every edge of each parent, and one container level
up. These cases pass without the set (the answer's `held` left NULL)."""
import json
import os

import pytest

from pyloot import PyLoot

ITEMS = 10000  # PL_HELD_ITEMS


class Account:
    pass


_HELD = []


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=3600, gc_collect=False)
    yield loot
    _HELD.clear()
    loot.backend.close()


def repr_of(loot, obj):
    status, _, _, body = loot.get_wsgi().handle("GET", "/api/objects/%d" % id(obj), "")
    assert status == 200, body[:300]
    return json.loads(body)["repr"]


def fresh(prefix):
    return prefix + os.urandom(8).hex()


def test_an_item_past_the_count_bound_is_redacted_when_opened(loot):
    # The set follows 10,000 items of a secret-named container; the detail
    # reads the edge from the list itself, whatever the index.
    secret = fresh("tok-")
    account = Account()
    account.session_tokens = ["t%d" % i for i in range(ITEMS)] + [secret]
    _HELD[:] = [account]
    assert repr_of(loot, secret) == "<redacted>"
    assert repr_of(loot, account.session_tokens[0]) == "<redacted>"


@pytest.mark.parametrize("kind", ["list", "tuple", "dict", "frozenset", "set"])
def test_an_item_of_a_secret_named_container_is_redacted_when_opened(loot, kind):
    secret = fresh("key-")
    keep = []  # keeps a tuple or dict tracked
    container = {"list": lambda: [secret], "tuple": lambda: (secret, keep),
                 "dict": lambda: {"plain": secret, "other": keep},
                 "frozenset": lambda: frozenset([secret]), "set": lambda: {secret}}[kind]()
    account = Account()
    account.api_keys = container
    also = ["shown", container]  # held elsewhere too, under no name
    _HELD[:] = [account, also]
    assert repr_of(loot, secret) == "<redacted>"


def test_every_edge_of_a_parent_is_read(loot):
    # The first label of the instance's edge to the str is `label`; the
    # second, `password`, decides.
    secret = fresh("pw-")
    account = Account()
    account.label = secret
    account.password = secret
    _HELD[:] = [account]
    assert repr_of(loot, secret) == "<redacted>"


def test_a_module_dict_entry_and_a_plain_holder(loot):
    secret, plain = fresh("db-"), fresh("ok-")
    config = {"db_password": secret, "host": plain, "more": []}
    _HELD[:] = [config, [plain]]
    assert repr_of(loot, secret) == "<redacted>"
    assert repr_of(loot, plain) == repr(plain)
