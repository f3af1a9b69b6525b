"""Witnesses show an instance made since an earlier sample, through the
container that grew, and the biggest retainers rank the holder of a growing
type above the stable module dicts (tests/python/apps/growing.py: one
growing container among many stable, non-empty ones)."""
import contextlib
import re
import threading
import time

from conftest import wait_until

APP = "growing:app"


def start(gunicorn):
    server = gunicorn(workers=1, interval=0.3, app=APP)
    server.wait_sampled()  # what the app made at import is there before the first sample
    return server


def grow_until_witnessed(server, kind, group, timeout=60):
    """Grows `kind` in rounds shorter than the collector's 0.3 s interval (so that each sample sees
    more), until the store holds a witness of `group` (bounded by `timeout` seconds). Returns the
    witness's path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = server.get("/grow?kind=%s&n=5" % kind)
        assert r.status == 200, r.body
        w = server.api("/api/witnesses?group=" + group)
        if w["witnesses"]:
            return w["witnesses"][-1]["path"]
        time.sleep(0.1)
    raise AssertionError("no witness of %s after %ss" % (group, timeout))


@contextlib.contextmanager
def growing_items(server):
    """Grows ITEMS from a thread while the block runs (so that Item is still growing when a tree is
    asked for), bounded in count and time."""
    stop = threading.Event()

    def keep_growing():
        for _ in range(600):
            if stop.is_set():
                return
            server.get("/grow?kind=item&n=5")
            time.sleep(0.1)

    grower = threading.Thread(target=keep_growing)
    grower.start()
    try:
        yield
    finally:
        stop.set()
        grower.join(timeout=30)


def check_root(path):
    assert path[0]["type"] == "module" and "'growing'" in path[0]["repr"], path


def test_list_witness_goes_through_the_list_that_grows(gunicorn):
    server = start(gunicorn)
    path = grow_until_witnessed(server, "list", "list")
    check_root(path)
    # module growing -> attribute 'GROWING' -> list -> item[k] -> list, k past the 50 made at import
    assert path[-2]["via"] == "attribute 'GROWING'" and path[-2]["type"] == "list", path
    last = path[-1]
    assert last["type"] == "list", path
    k = int(re.fullmatch(r"item\[(\d+)\]", last["via"]).group(1))
    assert k >= 50, path
    assert last["repr"] == "[%d, %d]" % (k, k + 1), path


def test_user_class_witness_was_made_after_the_first_sample(gunicorn):
    server = start(gunicorn)
    path = grow_until_witnessed(server, "item", "growing.Item")
    check_root(path)
    assert path[-2]["via"] == "attribute 'ITEMS'", path
    made = int(re.fullmatch(r"<Item (\d+)>", path[-1]["repr"]).group(1))
    assert made >= 100, path  # Items 0..99 were made at import, before the first sample


def test_str_witness_is_a_new_str_held_by_the_growing_list(gunicorn):
    server = start(gunicorn)
    path = grow_until_witnessed(server, "str", "str")
    check_root(path)
    # Not TEXT, the dict that holds the most str bytes: STRS, the list that grows.
    assert path[-2]["via"] == "attribute 'STRS'" and path[-2]["type"] == "list", path
    assert path[-1]["type"] == "str", path
    made = int(re.match(r"'s(\d+)-y", path[-1]["repr"]).group(1))
    assert made >= 100, path  # strs 0..99 were made at import


def test_retainers_rank_the_growing_list_above_module_dicts(gunicorn):
    server = start(gunicorn)
    ids = server.get("/ids").json()
    with growing_items(server):
        grow_until_witnessed(server, "item", "growing.Item")  # four samples saw it grow

        def ranked():
            top = server.api("/api/retainers?limit=5")
            return top if any(o["id"] == str(ids["ITEMS"]) for o in top["objects"]) else None

        top = wait_until(ranked, 30, interval=0.5, message="ITEMS among the first 5 retainers")
    rows = top["objects"]
    at = next(i for i, o in enumerate(rows) if o["id"] == str(ids["ITEMS"]))
    module_dicts = [i for i, o in enumerate(rows) if o["type_name"] in ("dict", "module")
                    and "'__name__'" in o["repr"] or o["type_name"] == "module"]
    assert all(at < i for i in module_dicts), rows
    growing = rows[at]["growing"]
    assert growing["type"] == "growing.Item" and growing["count"] >= 100 and growing["growth"] >= 3, rows[at]
    assert growing["instances"] >= growing["count"]
    assert "growing.Item" in rows[at]["why"]
    assert top["ranking"].startswith("holders of growing types first")
    # The retained sizes of the other rows still go down.
    sizes = [o["retained"] for o in rows if "growing" not in o]
    assert sizes == sorted(sizes, reverse=True)


def test_retainers_keep_ranking_a_leak_that_paused(gunicorn):
    """Once the traffic stops the type no longer grows over the last 3 samples, but the list that
    leaked it is still the leak: it keeps its rank, with how long ago it grew."""
    server = start(gunicorn)
    ids = server.get("/ids").json()
    with growing_items(server):
        grow_until_witnessed(server, "item", "growing.Item")

        def ranked():
            top = server.api("/api/retainers?limit=5")
            return top if any(o["id"] == str(ids["ITEMS"]) for o in top["objects"]) else None

        wait_until(ranked, 30, interval=0.5, message="ITEMS among the first 5 retainers")
    # Ten more samples without growth: the window of the last 3 still shows the growth for two or
    # three of them, and the collector waits its 0.3 s interval after each, so the growth was last
    # seen at least 6 intervals (1.8 s) before the last: ago_s >= 1 whatever the load (six samples
    # left as little as 0.9 s).
    def samples():
        return server.api("/api/procs")["procs"][0]["samples"]

    after = samples() + 10
    wait_until(lambda: samples() >= after, 30, message="ten samples after the growth")
    rows = server.api("/api/retainers?limit=5")["objects"]
    row = next((o for o in rows if o["id"] == str(ids["ITEMS"])), None)
    assert row is not None, rows
    assert row["growing"]["type"] == "growing.Item" and row["growing"]["ago_s"] >= 1, row
    assert "over 3 samples until" in row["why"], row
