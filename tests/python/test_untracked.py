"""Objects the gc does not track (str, bytes, int, gc-untracked tuples and
dicts) are counted, each once per pass, and rank by the bytes they hold
(docs/architecture.md, "The count pass"; docs/http-api.md, sort=)."""
import gc
import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import wait_until
from test_cli import pyloot_exe
from pyloot import _pyloot


def counted(name):
    return _pyloot.count_types().get(name, (0, 0))


def test_an_object_held_by_several_containers_counts_once(gc_off):
    # complex: not a gc type, and nothing else in the test process makes one.
    base = counted("complex")
    a, b, c = complex(1, 1), complex(2, 2), complex(3, 3)
    one = [a, b, a]                     # twice in one list
    two = {"x": a, "y": b}              # and in a dict (tracked: it holds no gc object, but was never examined)
    three = ((c,),)                     # only inside nested tuples that the gc untracks
    holder = [three]                    # (a running function's locals are no referents: a list holds them)
    gc.collect()
    gc.collect()                        # the outer tuple once the inner one is untracked
    assert not gc.is_tracked(three) and not gc.is_tracked(three[0])
    each = sys.getsizeof(a)
    assert counted("complex") == (base[0] + 3, base[1] + 3 * each)
    del a, b, c
    assert counted("complex") == (base[0] + 3, base[1] + 3 * each)  # held by the containers alone
    del one, two
    assert counted("complex") == (base[0] + 1, base[1] + each)      # reached through two untracked tuples
    del three, holder
    assert counted("complex") == base


def test_untracked_str_bytes_and_dicts_are_counted(gc_off):
    before = {name: counted(name) for name in ("str", "bytes", "dict")}
    words = ["w-%d" % i for i in range(1000)]
    blobs = [bytes([i % 256]) * (100 + i) for i in range(100)]
    atoms = [{"k": i} for i in range(500)]  # dicts of atoms: the gc untracks them
    gc.collect()
    assert not any(gc.is_tracked(d) for d in atoms)
    after = {name: counted(name) for name in ("str", "bytes", "dict")}
    for name, objs in (("str", words), ("bytes", blobs), ("dict", atoms)):
        assert after[name][0] - before[name][0] == len(objs), name
        assert after[name][1] - before[name][1] == sum(map(sys.getsizeof, objs)), name


def test_stats_say_how_many_untracked_objects_and_the_set_bound(tmp_path):
    import pyloot
    loot = pyloot.PyLoot(path=str(tmp_path / "store"))
    done = loot.collect_objects()
    stats = loot.stats()
    assert stats["last_pass_ms"] == done["pass_ms"] and stats["last_gc_ms"] == done["gc_ms"]
    u = stats["untracked"]
    assert u["objects"] > 0 and u["shared"] <= u["objects"]
    assert u["overflow"] == 0
    assert 0 < u["set_bytes"] <= 64 << 20


def drive(server, path, rounds, per_round):
    """Concurrent requests of `path` spread over the workers (each holds its
    worker briefly): `rounds` rounds of `per_round` requests. Returns the sum
    of the answers' "kept"."""
    kept = []
    lock = threading.Lock()

    def one():
        r = server.get(path)
        assert r.status == 200, r.body
        with lock:
            kept.append(r.json()["kept"])

    for _ in range(rounds):
        threads = [threading.Thread(target=one) for _ in range(per_round)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    return sum(kept)


def test_gunicorn_bytes_and_str_leaks_rank_by_bytes(gunicorn):
    server = gunicorn(workers=2, interval=0.3)
    server.wait_sampled()
    size = 100000
    leaked_bytes = leaked_strs = 0
    witness = None
    deadline = time.monotonic() + 60
    # Leak (bytes into a dict, str into a list) until a witness of bytes is
    # stored (the rule needs a few rising samples of each worker), and at
    # least 10 MB of bytes, more than the str a worker starts with.
    while (witness is None or leaked_bytes < 10 * 10 ** 6) and time.monotonic() < deadline:
        leaked_bytes += drive(server, "/cache?n=2&size=%d&hold=0.1" % size, 1, 2)
        leaked_strs += drive(server, "/strings?n=50&size=200&hold=0.05", 1, 2)
        r = server.get("/_pyloot/api/witnesses?group=bytes")
        if witness is None and r.status == 200 and r.json()["witnesses"]:
            witness = r.json()["witnesses"][0]
    assert witness is not None, "no witness of bytes within 60 s"
    # The samples after the last request.
    time.sleep(0.7)

    hist = server.api("/api/history?sort=bytes_growth&limit=5")
    assert hist["sort"] == "bytes_growth"
    top = hist["types"][0]
    assert top["name"] == "bytes", [(t["name"], t["bytes_growth"]) for t in hist["types"]]
    assert top["bytes_growth"] >= 0.8 * leaked_bytes, (top, leaked_bytes)
    assert all("bytes_growth" in t and "growth" in t for t in hist["types"])
    growths = [t["bytes_growth"] for t in hist["types"]]
    assert growths == sorted(growths, reverse=True)
    assert server.api("/api/history?sort=bytes&limit=1")["types"][0]["name"] == "bytes"
    s = server.api("/api/history?q=str&sort=name&limit=1000")
    strs = [t for t in s["types"] if t["name"] == "str"]
    assert strs and strs[0]["growth"] >= 0.8 * leaked_strs, (strs, leaked_strs)
    r = server.get("/_pyloot/api/history?sort=bogus")
    assert r.status == 400 and "bytes_growth" in r.json()["error"], r.body

    # The live objects of an untracked type are listed (found as referents).
    pid = witness["pid"]
    listed = server.api("/api/objects?group=bytes&pid=%d&limit=1000" % pid)
    big = [o for o in listed["objects"] if o["size"] >= size]
    assert listed["total"] >= len(big) >= 3, (listed["total"], len(big))
    assert all(o["type_name"] == "bytes" for o in listed["objects"])
    assert len({o["id"] for o in listed["objects"]}) == len(listed["objects"])  # each once

    # The witness goes through the module's dict to one value.
    path = witness["path"]
    assert path[0]["type"] == "module" and "'leaky'" in path[0]["repr"], path
    assert any(step["type"] == "dict" and step["via"] == "attribute '_cache'" for step in path), path
    assert path[-1]["type"] == "bytes" and path[-1]["via"].startswith("value of key 'k"), path

    server.stop()
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert "top growers by bytes growth" in out.stdout and "\n 1. bytes\n" in out.stdout, out.stdout
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db), "--json"], capture_output=True,
                         text=True, timeout=30)
    report = json.loads(out.stdout)
    assert report["sort"] == "bytes_growth"
    first = report["growers"][0]
    assert first["name"] == "bytes" and first["bytes_growth"] >= 0.8 * leaked_bytes, first
    assert "attribute '_cache'" in first["witness"]["held_by"], first["witness"]
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db), "--json", "--sort", "growth"],
                         capture_output=True, text=True, timeout=30)
    by_count = json.loads(out.stdout)
    assert by_count["sort"] == "growth"
    counts = [g["growth"] for g in by_count["growers"]]
    assert counts == sorted(counts, reverse=True)
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db), "--sort", "bogus"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--sort must be bytes_growth or growth" in out.stderr, out.stderr
    out = subprocess.run([pyloot_exe(), "history", "--db", str(server.db), "--sort", "bytes_growth", "--csv",
                          "--limit", "3"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "name,count,bytes,growth,bytes_growth,trend" and lines[1].startswith("bytes,"), lines
    out = subprocess.run([pyloot_exe(), "history", "--db", str(server.db), "--sort", "bogus"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "bytes_growth" in out.stderr, out.stderr
