"""Heap dumps (docs/heapdump.md): dump_heap/load_heap round trips, `pyloot
heap FILE` and `pyloot heap OLD NEW`, GET /api/heapdump (access rule,
redaction, size bound, a real gunicorn worker through another one's mount),
and damaged files refused without a crash."""
import gc
import json
import os
import platform
import subprocess
import sys
import time
import zlib

import pytest

import pyloot
from pyloot import PyLoot, load_heap
from test_cli import pyloot_exe


class Node:
    def __init__(self, i, peer=None):
        self.i = i
        self.payload = "payload-%d-%s" % (i, "x" * (i % 7))
        self.peer = peer


class HeapLeak:
    def __init__(self, i):
        self.i = i
        self.payload = "leaked-%d" % i


class Credentials:
    def __init__(self):
        self.user = "alice"
        self.password = "hunter2-dump-value"
        self.api_key = ("ak-dump-value-123",)


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"))
    loot.collect_objects()
    yield loot
    loot.backend.close()


def run(*args, timeout=60):
    return subprocess.run([pyloot_exe(), *args], capture_output=True, text=True, timeout=timeout)


def payload_of(path):
    """The uncompressed payload of a dump file (docs/heapdump.md: 40-byte header)."""
    with open(path, "rb") as f:
        return zlib.decompress(f.read()[40:])


def test_round_trip_gives_the_live_graph(tmp_path):
    nodes = []
    for i in range(50):
        nodes.append(Node(i, nodes[-1] if nodes else None))
    nodes[0].peer = nodes[-1]  # one big cycle
    holder = {"nodes": nodes, "extra": [nodes[3], nodes[4]], "pair": (nodes[1], nodes[2]), "empty": [],
              "long": list(range(1234))}
    objs = nodes + [holder, holder["extra"], nodes, holder["pair"], holder["empty"], holder["long"]]
    graph = pyloot.ObjectGraph(objs)
    figures = pyloot.dump_heap(tmp_path / "g.plheap", graph)
    assert figures["objects"] == len(graph) and figures["bytes"] == os.path.getsize(tmp_path / "g.plheap")

    heap = load_heap(tmp_path / "g.plheap")
    assert len(heap) == len(graph)
    assert heap.info["pid"] == os.getpid()
    by_id = {v.id: v for v in heap.vertices}
    live = graph.annotated()
    live_desc = {v.id: v.annotation for v in live.vertices}
    for o in objs:
        v = by_id[id(o)]
        t = type(o)
        name = t.__qualname__ if t.__module__ == "builtins" else "%s.%s" % (t.__module__, t.__qualname__)
        assert heap.type_name(v) == name
        assert v.annotation == live_desc[id(o)]
        assert heap.retained_size(v) == graph.retained_size(o), o
    # A Node's own size holds its payload string, which only it refers to.
    n = nodes[10]
    assert heap.size(by_id[id(n)]) == sys.getsizeof(n) + sys.getsizeof(n.payload)
    edges = sorted((e.tail, e.head, e.annotation) for e in heap.edges)
    live_edges = sorted((e.tail, e.head, e.annotation) for e in live.edges)
    assert edges == live_edges
    assert (id(holder), id(nodes), "value of key 'nodes'") in edges
    assert (id(nodes), id(nodes[7]), "item[7]") in edges
    described = {by_id[id(o)].annotation for o in objs[-6:]}
    assert {"dict[5]", "list[2]", "list[50]", "tuple[2]", "list[0]", "list[1234]"} <= described
    # refcycle's API works offline on it.
    path = heap.shortest_path(by_id[id(holder)], by_id[id(nodes[20])])
    assert [v.id for v in path][0] in (id(holder), id(nodes[20]))
    assert len(heap.strongly_connected_components()) >= 1


@pytest.mark.parametrize("length", [1, 6, 40])
def test_members_of_a_list_or_tuple_labelled_by_their_position(tmp_path, length):
    """Every member of a list or tuple is a vertex: the edge to each is
    labelled with its own index, whatever the order the container's
    references are found in."""
    items = [Node(i) for i in range(length)]
    seq = tuple(items)
    graph = pyloot.ObjectGraph(items + [items, seq])
    pyloot.dump_heap(tmp_path / "s.plheap", graph)
    heap = load_heap(tmp_path / "s.plheap")
    by_id = {v.id: v for v in heap.vertices}
    want = sorted((id(o), "item[%d]" % i) for i, o in enumerate(items))
    for container in (items, seq):
        assert sorted((e.head, e.annotation) for e in heap.out_edges(by_id[id(container)])) == want


@pytest.mark.parametrize("length", [6, 40])
def test_each_reference_of_a_repeated_member_gets_its_own_label(tmp_path, length):
    """A container holding one object several times: each of its edges to it
    is labelled with its own index or key, in order, whether the container
    has few edges or many."""
    a, b = Node(1), Node(2)
    items = [a if i % 3 else b for i in range(length)]
    by_key = {"k%d" % i: a for i in range(length)}
    graph = pyloot.ObjectGraph([a, b, items, by_key])
    pyloot.dump_heap(tmp_path / "r.plheap", graph)
    heap = load_heap(tmp_path / "r.plheap")
    by_id = {v.id: v for v in heap.vertices}
    labels = [(e.head, e.annotation) for e in heap.out_edges(by_id[id(items)])]
    want = [(id(o), "item[%d]" % i) for i, o in enumerate(items)]
    assert sorted(labels) == sorted(want)
    # The edges to one member take its positions in ascending order, as the
    # live graph's labels do: the file does not depend on the traversal.
    for member in (a, b):
        taken = [int(label[5:-1]) for head, label in labels if head == id(member)]
        assert taken == sorted(taken)
    labels = sorted(e.annotation for e in heap.out_edges(by_id[id(by_key)]) if e.head == id(a))
    assert labels == sorted("value of key 'k%d'" % i for i in range(length))


class Slotted:
    __slots__ = ("s0", "s1", "s2", "s3", "s4", "__dict__")


class Plain:
    pass


def out_edges_within(heap, ids):
    """{tail id: [(head id, label)] in edge order} for the edges between ids."""
    out = {}
    for e in heap.edges:
        if e.tail in ids and e.head in ids:
            out.setdefault(e.tail, []).append((e.head, e.annotation))
    return out


def many_shapes():
    """Objects of every shape the labels are taken for during the snapshot
    (instances, slots, small and big lists, tuples and dicts, keys that are
    no str) or left for after it (sets, functions, frames of thousands of
    references)."""
    import random
    rnd = random.Random(7)
    nodes = [Plain() for _ in range(200)]
    objs = list(nodes)
    for i, o in enumerate(nodes):
        for _ in range(rnd.randrange(0, 10)):
            setattr(o, "f%d" % rnd.randrange(12), rnd.choice(nodes))
        s = Slotted()
        for k in range(5):
            setattr(s, "s%d" % k, rnd.choice(nodes))
        s.extra = s.s0
        x = rnd.choice(nodes)
        objs += [s, [rnd.choice(nodes) for _ in range(rnd.randrange(0, 12))],
                 tuple(rnd.choice(nodes[:4]) for _ in range(rnd.randrange(0, 10))),
                 {("k%d" % j if j % 3 else j): rnd.choice(nodes) for j in range(rnd.randrange(0, 12))},
                 {(1, "t"): x, 2.5: x, "s": x}, [x, rnd.choice(nodes), x], {rnd.choice(nodes), x},
                 [x, nodes[i - 1], x, nodes[i - 2]], (nodes[i - 3], x, x),
                 (lambda: x)]
    objs += [[rnd.choice(nodes) for _ in range(10000)], {j: rnd.choice(nodes) for j in range(10000)}]
    return objs


def test_a_whole_heap_dump_labels_each_edge_as_a_graph_dump_does(tmp_path):
    """A dump of the whole heap takes most labels and descriptions while
    the snapshot reads each object; a dump of given objects takes them all
    afterwards. Both give every object the same description and every edge
    between them, in order, the same label."""
    objs = many_shapes()
    pyloot.dump_heap(tmp_path / "whole.plheap")
    pyloot.dump_heap(tmp_path / "given.plheap", pyloot.ObjectGraph(objs))
    whole, given = load_heap(tmp_path / "whole.plheap"), load_heap(tmp_path / "given.plheap")
    w = {v.id: v for v in whole.vertices}
    g = {v.id: v for v in given.vertices}
    # Empty tuples and dicts are not tracked by the gc: not in the whole heap.
    tracked = [o for o in objs if id(o) in w]
    assert len(tracked) > 0.9 * len(objs)
    for o in tracked:
        assert w[id(o)].annotation == g[id(o)].annotation, o
        assert whole.type_name(w[id(o)]) == given.type_name(g[id(o)]), o
    ids = {id(o) for o in tracked}
    w_out, g_out = out_edges_within(whole, ids), out_edges_within(given, ids)
    wrong = [t for t in g_out if w_out.get(t) != g_out[t]]
    assert not wrong, (len(wrong), w_out.get(wrong[0]), g_out[wrong[0]])
    assert len(g_out) > 1000


@pytest.mark.parametrize("whole", [True, False])
def test_each_slot_labels_its_own_edge(tmp_path, whole):
    """A slot's name is made for its label alone: each edge through a slot
    is labelled with that slot's name, never another one's."""
    targets = [Plain() for _ in range(5)]
    holders = []
    for _ in range(300):
        s = Slotted()
        for k in range(5):
            setattr(s, "s%d" % k, targets[k])
        holders.append(s)
    pyloot.dump_heap(tmp_path / "s.plheap", None if whole else pyloot.ObjectGraph(holders + targets))
    heap = load_heap(tmp_path / "s.plheap")
    name = {id(t): "attribute 's%d'" % k for k, t in enumerate(targets)}
    holder_ids = {id(h) for h in holders}
    labels = [(e.annotation, name[e.head]) for e in heap.edges if e.tail in holder_ids and e.head in name]
    assert len(labels) == 5 * len(holders)
    assert all(got == want for got, want in labels), [p for p in labels if p[0] != p[1]][:3]


@pytest.mark.parametrize("whole", [True, False])
def test_a_class_whose_module_name_is_not_utf8_is_dumped(tmp_path, whole):
    """A module named after a file name that is not UTF-8 has a lone
    surrogate in its name: its instances are described with '?' there, and
    the dump is written."""
    cls = type("Odd", (), {"__module__": "mod\udcff"})
    objs = [cls() for _ in range(50)]
    pyloot.dump_heap(tmp_path / "o.plheap", None if whole else pyloot.ObjectGraph(objs))
    heap = load_heap(tmp_path / "o.plheap")
    by_id = {v.id: v for v in heap.vertices}
    assert {by_id[id(o)].annotation for o in objs} == {"object\\nmod?.Odd"}


class Chain:
    def __init__(self, i, prev):
        self.i = i
        self.prev = prev
        self.tag = "chain-%d" % i


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator gives pages back with glibc's malloc_trim")
def test_a_dump_gives_its_memory_back(tmp_path):
    """The snapshot's and the dump's arrays (about 22 MB for 300,000
    objects) are given back to the system once the dump is written: the
    worker's RSS stays where it was."""
    prev, keep = None, []
    for i in range(300000):
        prev = Chain(i, prev)
        keep.append(prev)
    gc.collect()
    before = rss_bytes()
    figures = pyloot.dump_heap(tmp_path / "m.plheap")
    grew = rss_bytes() - before
    assert figures["objects"] > 300000
    assert grew < 6 << 20, "RSS grew by %.1f MiB" % (grew / 2**20)


def test_dump_of_the_process_and_pyloot_heap(loot, tmp_path):
    keep = [HeapLeak(i) for i in range(300)]
    old = tmp_path / "old.plheap"
    figures = loot.dump_heap(str(old))
    assert figures["objects"] > 1000
    keep.extend(HeapLeak(i) for i in range(300, 700))
    new = tmp_path / "new.plheap"
    loot.dump_heap(str(new))

    r = run("heap", str(old), "--json")
    assert r.returncode == 0, r.stderr
    one = json.loads(r.stdout)
    assert one["objects"] == figures["objects"] and one["pid"] == os.getpid()
    types = {t["name"]: t for t in one["types"]}
    name = "%s.HeapLeak" % __name__
    r = run("heap", str(old), "--json", "--types", "10000")
    types = {t["name"]: t for t in json.loads(r.stdout)["types"]}
    assert types[name]["count"] == 300
    assert one["retainers"] and all(x["path"][-1]["id"] == x["id"] for x in one["retainers"])

    r = run("heap", str(old), str(new), "--json")
    assert r.returncode == 0, r.stderr
    diff = json.loads(r.stdout)
    assert diff["same_worker"] is True
    assert diff["types"][0]["name"] == name
    assert diff["types"][0]["count_change"] == 400
    assert diff["types"][0]["bytes_change"] > 0
    held = {h["id"]: h for h in diff["new_held_by_old"]}
    assert held[id(keep)]["new_objects"] == 400 and held[id(keep)]["new_type"] == name
    assert id(keep) in {g["id"] for g in diff["grown"]}

    text = run("heap", str(old), str(new))
    assert text.returncode == 0 and "+400" in text.stdout and name in text.stdout
    # All the types: how the 700 instances rank among the test process's own
    # objects depends on the interpreter (on 3.12 they are not in the top 20).
    text = run("heap", str(new), "--types", "10000")
    assert text.returncode == 0 and "biggest retainers" in text.stdout and name in text.stdout
    del keep


def test_damaged_dumps_are_refused(loot, tmp_path):
    good = tmp_path / "good.plheap"
    loot.dump_heap(str(good))
    data = good.read_bytes()
    cases = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "header-only": data[:40],
        "flipped": data[:100] + bytes([data[100] ^ 0x40]) + data[101:],
        "padded": data + b"\0",
        "foreign": b"GIF89a" + os.urandom(200),
    }
    for name, content in cases.items():
        path = tmp_path / (name + ".plheap")
        path.write_bytes(content)
        with pytest.raises(ValueError) as err:
            load_heap(path)
        assert "not a usable heap dump" in str(err.value), name
        r = run("heap", str(path))
        assert r.returncode == 1, (name, r.returncode, r.stderr)
        assert r.stderr.startswith("pyloot: reading %s failed: " % path), r.stderr
        r = run("heap", str(good), str(path), "--json")
        assert r.returncode == 1 and r.stdout == ""
    with pytest.raises(OSError):
        pyloot.dump_heap(tmp_path / "no-such-dir" / "x.plheap")
    assert run("heap").returncode == 2
    assert run("heap", str(good), str(good), str(good)).returncode == 2
    assert run("heap", str(tmp_path / "missing.plheap")).returncode == 1


_SECRETS = []


def test_redacted_values_never_in_the_file(loot, tmp_path):
    # A dict of strings only is not gc-tracked (not an object of the dump): this one is.
    _SECRETS[:] = [Credentials(), {"db_password": "pw-dump-secret", "peers": []}]
    try:
        path = tmp_path / "secrets.plheap"
        loot.dump_heap(str(path))
        raw = payload_of(path)
        assert b"Credentials" in raw  # the objects are there...
        for secret in (b"hunter2-dump-value", b"ak-dump-value-123", b"pw-dump-secret"):
            assert secret not in raw  # ...their secret values are not
    finally:
        _SECRETS.clear()


def test_command_line_secrets_redacted(tmp_path):
    path = tmp_path / "argv.plheap"
    code = "import sys, pyloot; pyloot.dump_heap(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path), "--password", "s3cr3t-argv-value"], check=True,
                   timeout=60)
    heap = load_heap(path)
    assert "--password <redacted>" in heap.info["argv"], heap.info["argv"]
    assert b"s3cr3t-argv-value" not in payload_of(path)


def test_api_heapdump_route(loot, tmp_path, monkeypatch):
    wsgi = loot.get_wsgi()
    status, _, headers, body = wsgi.handle("GET", "/api/heapdump")
    assert status == 200, body[:300]
    hdrs = dict(headers)
    assert hdrs["Content-Type"] == "application/octet-stream"
    assert hdrs["Content-Disposition"].startswith('attachment; filename="pyloot-heap-')
    path = tmp_path / "http.plheap"
    path.write_bytes(body)
    assert load_heap(path).info["pid"] == os.getpid()

    # The access rule of /api/objects: not from another machine without a token.
    status, _, headers, body = wsgi.handle("GET", "/api/heapdump", peer="198.51.100.1")
    assert status == 403 and json.loads(body)["error"]
    status, _, _, body = wsgi.handle("GET", "/api/heapdump", proxied=True)
    assert status == 403
    # Bad parameters change nothing.
    status, _, _, body = wsgi.handle("GET", "/api/heapdump", "pid=abc")
    assert status == 400 and "pid" in json.loads(body)["error"]
    status, _, _, body = wsgi.handle("GET", "/api/heapdump", "pid=999999")
    assert status == 404
    # The size bound.
    monkeypatch.setenv("PYLOOT_HEAPDUMP_MAX_BYTES", "1000")
    status, _, headers, body = wsgi.handle("GET", "/api/heapdump")
    assert status == 413, status
    assert dict(headers)["Content-Type"] == "application/json"
    assert "PYLOOT_HEAPDUMP_MAX_BYTES" in json.loads(body)["error"]


def test_api_heapdump_of_a_gunicorn_worker_through_another(gunicorn, tmp_path):
    server = gunicorn(workers=2)
    leaks = server.leak_everywhere(per_request=5, rounds=2)
    target = max(leaks, key=leaks.get)

    def fetch(name):
        # Any worker may take the request; pid= names the worker dumped.
        r = server.get("/_pyloot/api/heapdump?pid=%d" % target, timeout=60)
        assert r.status == 200, r.body[:300]
        path = tmp_path / name
        path.write_bytes(r.body)
        return path

    old = fetch("w-old.plheap")
    added = 0
    deadline = time.monotonic() + 60
    # Enough leaked bytes (about 45 KB) to stand well above what else a worker
    # allocates between two requests (a few KB: functions, dicts).
    while added < 400 and time.monotonic() < deadline:
        r = server.get("/leak?n=100")
        body = r.json()
        if body["pid"] == target:
            added += body["leaked"]
    assert added >= 400
    new = fetch("w-new.plheap")
    assert load_heap(new).info["pid"] == target
    r = run("heap", str(old), str(new), "--json")
    assert r.returncode == 0, r.stderr
    diff = json.loads(r.stdout)
    assert diff["same_worker"] is True and diff["new"]["pid"] == target
    assert diff["types"][0]["name"] == "leaky.Leak", diff["types"][:3]
    assert diff["types"][0]["count_change"] == added


def test_heap_upload_to_the_command(tmp_path):
    """POST /api/heap (pyloot --heap only): one or two dumps back as JSON; bad ones refused."""
    from conftest import free_port, stop_group, wait_until
    import urllib.request
    import urllib.error
    keep = [HeapLeak(i) for i in range(50)]
    old, new = tmp_path / "a.plheap", tmp_path / "b.plheap"
    pyloot.dump_heap(old)
    keep.extend(HeapLeak(i) for i in range(50, 80))
    pyloot.dump_heap(new)
    port = free_port()
    proc = subprocess.Popen([pyloot_exe(), "--heap", str(old), "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = "http://127.0.0.1:%d/api/heap" % port

    def post(body):
        req = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    try:
        def up():
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(up, 30, message="pyloot --heap to listen")
        status, doc = post(new.read_bytes())
        assert status == 200 and doc["diff"] is None and doc["report"]["objects"] > 100
        status, doc = post(old.read_bytes() + new.read_bytes())
        assert status == 200 and doc["diff"]["types"][0]["name"] == "%s.HeapLeak" % __name__
        assert doc["diff"]["types"][0]["count_change"] == 30
        status, doc = post(old.read_bytes()[:-10])
        assert status == 400 and "not a usable heap dump" in doc["error"]
        status, doc = post(b"")
        assert status == 400
        status, doc = post(old.read_bytes() * 3)
        assert status == 400 and "more than two" in doc["error"]
        # A header claiming a payload past the bound (1 GiB) is refused before inflating.
        head = bytearray(old.read_bytes())
        head[16:24] = (2 << 30).to_bytes(8, "little")
        status, doc = post(bytes(head))
        assert status == 413, doc
    finally:
        stop_group(proc)
    del keep
