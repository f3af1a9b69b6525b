"""The set of values held under a secret-looking name does not depend on the
order the heap walk meets their holders in (src/pyext/held_secrets.c;
docs/security.md, "Values held under a secret-looking name").

The walk goes through the gc generations youngest first, so which holder it
meets first depends on when the last collections ran. A container met first
deep inside another secret-named container (past the 4 levels followed) and
then again directly under a secret name must still have its items followed
from the shallower place. Each case is built in both orders: the deep holder
in the youngest generation (walked first) and in the oldest."""
import gc
import itertools
import json
import os

import pytest

from pyloot import PyLoot

DEPTH = 4  # PL_HELD_DEPTH


class Account:
    pass


class Archive:
    pass


_HELD = []


def wrap(value, levels, kind):
    """value nested `levels` containers of `kind` deep. Each tuple and dict
    also holds an empty list, so that no collection untracks it (an object
    reached only through untracked containers cannot be opened by its id)."""
    for _ in range(levels):
        if kind == "list":
            value = [value]
        elif kind == "tuple":
            value = (value, [])
        elif kind == "dict":
            value = {"plain": value, "other": []}
        else:
            value = frozenset([value])
    return value


def hold(holder, tokens, k):
    if isinstance(holder, Account):
        holder.session_tokens = tokens
    else:
        holder.secrets = wrap(tokens, k, "list")


def in_generation(obj, generation):
    return any(o is obj for o in gc.get_objects(generation))


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=3600, gc_collect=False)  # no collection moves the generations
    yield loot
    _HELD.clear()
    loot.backend.close()


def repr_of(loot, obj):
    status, _, _, body = loot.get_wsgi().handle("GET", "/api/objects/%d" % id(obj), "")
    assert status == 200, body[:300]
    return json.loads(body)["repr"]


def inner(tokens, m, kind):
    """The containers inside `tokens` down to the secret, outermost first."""
    out = [tokens]
    for _ in range(m - 1):
        c = out[-1]
        out.append(c[0] if kind in ("list", "tuple") else c["plain"] if kind == "dict" else next(iter(c)))
    return out


# k + m == DEPTH + 1: the one container of the chain the deep way meets at
# the bound is the one whose items decide.
CASES = [(k, m, kind, deep_first)
         for k, m in itertools.product(range(1, DEPTH + 1), repeat=2) if k + m == DEPTH + 1
         for kind in ("list", "tuple", "dict", "frozenset")
         for deep_first in (True, False)]


@pytest.mark.parametrize("k,m,kind,deep_first", CASES)
def test_held_set_does_not_depend_on_walk_order(loot, k, m, kind, deep_first):
    # tokens: the secret m containers down; held directly as `session_tokens`
    # (so the secret is m levels under a secret name: redacted), and also k
    # containers down under `secrets` of another object (k + m levels there:
    # past the bound, so that way alone it would not be).
    secret = "tok-" + os.urandom(8).hex()
    tokens = wrap(secret, m, kind)
    was_enabled = gc.isenabled()
    gc.disable()  # the generations below are made by hand
    try:
        # `first` and what it holds: the oldest generation, walked last;
        # `second`, made after the collection: the youngest, walked first.
        first = Account() if deep_first else Archive()
        hold(first, tokens, k)
        _HELD[:] = [first]
        gc.collect()
        second = Archive() if deep_first else Account()
        hold(second, tokens, k)
        _HELD.append(second)
        assert in_generation(second, 0) and in_generation(first, 2)
        shown = {"secret": repr_of(loot, secret)}
        for i, c in enumerate(inner(tokens, m, kind)):
            shown["container %d" % i] = repr_of(loot, c)
    finally:
        if was_enabled:
            gc.enable()
    assert all(r == "<redacted>" for r in shown.values()), shown


def test_a_value_past_the_bound_only_is_shown(loot):
    # The bound itself still holds: 5 levels down under `secrets` only.
    secret = "lvl-" + os.urandom(8).hex()
    archive = Archive()
    archive.secrets = wrap(secret, DEPTH + 1, "list")
    _HELD[:] = [archive]
    assert repr_of(loot, secret) == repr(secret)
