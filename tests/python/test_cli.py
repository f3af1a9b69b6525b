"""The pyloot command: inspecting and serving a store after the fact."""
import csv
import io
import json
import os
import shutil
import subprocess
import sysconfig
import time

import pytest

from conftest import free_port, http, stop_group, wait_for_pyloot
from pyloot import PyLoot


def pyloot_exe():
    """The command built with the imported package: a development build's
    (build/stage/pyloot -> build/pyloot) before the installed one, so that a
    PYTHONPATH=build/stage run never tests an older pyloot on the PATH."""
    here = os.path.dirname(os.path.abspath(__import__("pyloot").__file__))
    candidates = [os.path.join(here, "..", "..", "pyloot"), os.path.join(sysconfig.get_path("scripts"), "pyloot"),
                  shutil.which("pyloot")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.skip("the pyloot command is not built")


class Marker:
    pass


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli") / "store")
    keep = [Marker() for _ in range(77)]
    loot = PyLoot(path=path)
    loot.collect_objects()
    loot.collect_objects()
    loot.backend.close()
    del keep
    return path


def run(*args, timeout=30):
    return subprocess.run([pyloot_exe(), *args], capture_output=True, text=True, timeout=timeout)


def test_help_and_version():
    out = run("--help")
    assert out.returncode == 0
    assert out.stdout.startswith("usage: pyloot [-h HOST] [-p PORT]")
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("pyloot ")


@pytest.mark.parametrize("args,usage", [
    (("-h",), "usage: pyloot [-h HOST]"),
    (("--help",), "usage: pyloot [-h HOST]"),
    (("-h", "--db", "/nonexistent"), "usage: pyloot [-h HOST]"),
    (("serve", "-h"), "usage: pyloot [serve]"),
    (("report", "-h"), "usage: pyloot report"),
])
def test_h_alone_is_help(args, usage):
    # -h is --host's short name (test_serve_a_store: -h 127.0.0.1), and with
    # no value after it what people type for help.
    out = run(*args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(usage), out.stdout[:200]
    assert "needs a value" not in out.stderr


@pytest.mark.parametrize("args,code,needle", [
    (("--read-only",), 1, "use --db DIR"),
    (("--port", "http"), 2, "--port"),
    (("--port", "70000"), 2, "--port"),
    (("history", "--limit", "0", "--db", "/nonexistent"), 2, "--limit"),
    (("history", "--sort", "size", "--db", "/nonexistent"), 2, "--sort"),
    (("procs", "--db", "/nonexistent/store"), 1, "is not a directory"),
    (("procs", "--bogus"), 2, "unknown argument"),
    (("procs", "--db"), 2, "needs a value"),
])
def test_bad_arguments(args, code, needle):
    env = dict(os.environ)
    env.pop("PYLOOT_DB", None)
    out = subprocess.run([pyloot_exe(), *args], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == code
    assert out.stderr.startswith("pyloot: ")
    assert needle in out.stderr


def test_procs_table_json_csv(store):
    out = run("procs", "--db", store)
    assert out.returncode == 0, out.stderr
    assert str(os.getpid()) in out.stdout
    data = json.loads(run("procs", "--db", store, "--json").stdout)
    assert [p["pid"] for p in data["procs"]] == [os.getpid()]
    assert data["procs"][0]["samples"] == 2
    rows = list(csv.DictReader(io.StringIO(run("procs", "--db", store, "--csv").stdout)))
    assert rows[0]["pid"] == str(os.getpid()) and rows[0]["samples"] == "2"


def test_history_table_json_csv(store):
    name = "test_cli.Marker"
    out = run("history", "--db", store, "-q", "cli.marker")
    assert out.returncode == 0, out.stderr
    assert name in out.stdout and "(1 of 1 types)" in out.stdout
    data = json.loads(run("history", "--db", store, "-q", "test_cli.Marker", "--json").stdout)
    assert data["types"][0]["name"] == name and data["types"][0]["count"] == 77
    rows = list(csv.DictReader(io.StringIO(run("history", "--db", store, "--sort", "name", "--limit",
                                                "1000", "--csv").stdout)))
    assert {"name": name, "count": "77"}.items() <= next(r for r in rows if r["name"] == name).items()
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)
    out = run("history", "--db", store, "--pid", "4194304")
    assert out.returncode == 1 and "no incarnation with pid 4194304" in out.stderr


def test_serve_a_store(store):
    port = free_port()
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port), "--db", store, "--read-only"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        url = "http://127.0.0.1:%d" % port

        wait_for_pyloot(url, 20, message="pyloot to listen")
        r = http(url + "/api/history?sort=name", headers={"Accept-Encoding": "gzip"})
        assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
        assert r.json()["total"] > 50
        r = http(url + "/api/history?q=test_cli.marker")
        assert r.status == 200 and "Content-Encoding" not in r.headers
        assert r.json()["types"][0]["count"] == 77
        assert http(url + "/").status == 200
        assert b"<html" in http(url + "/").body.lower()
        r = http(url + "/api/objects?group=test_cli.Marker")
        assert r.status == 501 and "error" in r.json()
        assert http(url + "/api/history?limit=abc").status == 400
        assert http(url + "/api/samples", method="POST", data=b"{}").status == 403
        assert http(url + "/nope").status == 404
    finally:
        stop_group(proc, grace=10)
    assert proc.returncode == 0


def test_read_only_serves_on_loopback_by_default(store, tmp_path):
    """`pyloot --db DIR --read-only` without -h: 127.0.0.1, not every address."""
    port = free_port()
    err = tmp_path / "stderr"
    with open(err, "wb") as f:
        proc = subprocess.Popen([pyloot_exe(), "--db", store, "--read-only", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
    try:
        wait_for_pyloot("http://127.0.0.1:%d" % port, 20, proc=proc, why_exited=err.read_text)
        assert "serving %s on http://127.0.0.1:%d/ (Ctrl-C stops)" % (store, port) in err.read_text()
    finally:
        stop_group(proc, grace=10)
    assert proc.returncode == 0
    assert "Default: 0.0.0.0; with --read-only, 127.0.0.1" in run("--help").stdout


def test_global_options_before_or_after_the_command(store):
    before = run("--db", store, "--json", "procs")
    after = run("procs", "--json", "--db", store)
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    assert json.loads(before.stdout)["procs"] == json.loads(after.stdout)["procs"]
    out = run("--csv", "--db=" + store, "history", "-q", "test_cli.Marker")
    assert out.returncode == 0, out.stderr
    assert list(csv.DictReader(io.StringIO(out.stdout)))[0]["count"] == "77"
    # A command's own option before the command is not known yet.
    out = run("-q", "x", "history", "--db", store)
    assert out.returncode == 2 and "unknown argument -q" in out.stderr


def test_each_command_has_help():
    for cmd, needle in (("history", "--since TIME"), ("procs", "pyloot procs"), ("serve", "--port")):
        out = run(cmd, "--help")
        assert out.returncode == 0 and out.stdout.startswith("usage: pyloot") and needle in out.stdout, cmd
    assert "history" in run("--help").stdout


def test_history_as_of_and_time_formats(store):
    data = json.loads(run("history", "--db", store, "-q", "test_cli.Marker", "--json").stdout)
    assert data["as_of"] is not None and data["types"][0]["count"] == 77
    out = run("history", "--db", store, "-q", "test_cli.Marker")
    assert out.stdout.startswith("as of ")
    last = json.loads(run("procs", "--db", store, "--json").stdout)["procs"][0]["last_seen"]
    # A moment after the last sample, as unix seconds, ISO 8601 and an offset back from now.
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(last) + 2))
    ago = "-%ds" % max(0, int(time.time() - last) - 2)
    for until in (str(int(last) + 2), iso, ago):
        d = json.loads(run("history", "--db", store, "--until", until, "-q", "test_cli.Marker", "--json").stdout)
        assert d["types"][0]["count"] == 77, until
        assert d["live"] is False and d["until"] is not None and d["as_of"] == d["until"]
    d = json.loads(run("history", "--db", store, "--until", "2001-01-01", "--json", "-q", "test_cli.Marker").stdout)
    assert d["types"][0]["count"] == 0  # before the store's first sample
    for args, needle in ((("--since", "yesterday"), "--since"), (("--until", "-2x"), "--until"),
                         (("--since", "-1h", "--until", "-2h"), "after --since"),
                         (("--until", "2999-01-01"), "future")):
        out = run("history", "--db", store, *args)
        assert out.returncode == 2 and needle in out.stderr, (args, out.stderr)


def put_raw(db, table, pid, value):
    """Replaces the value of the first record of `table` whose key starts
    with incarnation `pid` through LMDB itself (ctypes): the pages stay
    sound, the record no longer decodes. Returns its key."""
    import ctypes
    import struct
    lib = ctypes.CDLL("liblmdb.so.0")

    class Val(ctypes.Structure):
        _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]

    env, txn, cur, dbi = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint()
    k, v = Val(), Val()
    assert lib.mdb_env_create(ctypes.byref(env)) == 0
    lib.mdb_env_set_maxdbs(env, 32)
    assert lib.mdb_env_open(env, db.encode(), 0, 0o600) == 0
    try:
        assert lib.mdb_txn_begin(env, None, 0, ctypes.byref(txn)) == 0
        assert lib.mdb_dbi_open(txn, table.encode(), 0, ctypes.byref(dbi)) == 0
        assert lib.mdb_cursor_open(txn, dbi, ctypes.byref(cur)) == 0
        rc, op, key = lib.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), 0), 8, None
        while rc == 0:
            raw = ctypes.string_at(k.mv_data, k.mv_size)
            if struct.unpack(">I", raw[:4])[0] == pid:
                key = raw
                break
            rc = lib.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), op)
        lib.mdb_cursor_close(cur)
        assert key is not None
        kb, vb = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
        k = Val(len(key), ctypes.cast(kb, ctypes.c_void_p))
        v = Val(len(value), ctypes.cast(vb, ctypes.c_void_p))
        assert lib.mdb_put(txn, dbi, ctypes.byref(k), ctypes.byref(v), 0) == 0
        assert lib.mdb_txn_commit(txn) == 0
    finally:
        lib.mdb_env_close(env)
    return key


def test_report_goes_on_past_damaged_records(tmp_path):
    db = str(tmp_path / "store")
    # Two samples an interval apart (one time slot would show no growth).
    code = ("import sys, time, pyloot\n"
            "class Grow: pass\n"
            "loot = pyloot.PyLoot(path=sys.argv[1], interval=1)\n"
            "keep = [Grow() for _ in range(10)]\n"
            "loot.collect_objects()\n"
            "time.sleep(1.1)\n"
            "keep += [Grow() for _ in range(int(sys.argv[2]))]\n"
            "loot.collect_objects()\n"
            "loot.backend.close()\n"
            "print(__import__('os').getpid())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(__import__("sys").path))
    pids = []
    for grow in ("300", "500"):
        out = subprocess.run([__import__("sys").executable, "-c", code, db, grow], capture_output=True,
                             text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        pids.append(int(out.stdout))
    sound = run("report", "--db", db)
    assert sound.returncode == 0, sound.stderr
    assert "store damaged" not in sound.stdout
    # A packed header no schema writes, in a log record of the first worker.
    put_raw(db, "log", pids[0], b"\xff\x01\x02\x03")

    out = run("report", "--db", db)
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "workers: 2 seen" in out.stdout
    assert "__main__.Grow" in out.stdout and "growth +500" in out.stdout  # the second worker's
    damage = [line for line in out.stdout.splitlines() if line.startswith("store damaged: ")]
    assert damage == [damage[0]]
    assert damage[0].startswith("store damaged: 1 record could not be read (first: table log, key "
                                "incarnation %d/" % pids[0])
    assert "its type counts do not decode" in damage[0]
    assert "leave out 1 pid" in out.stdout
    data = json.loads(run("report", "--db", db, "--json").stdout)
    assert data["damage"]["records"] == 1 and data["damage"]["first"].startswith("table log, key incarnation")
    assert [g["name"] for g in data["growers"]][:1] == ["__main__.Grow"]
    # The central server writes into its store: one with bad records is refused, as with bad pages.
    out = run("--db", db, "-h", "127.0.0.1", "-p", "1")
    assert out.returncode == 1
    assert out.stderr.startswith("pyloot: opening the store failed: the store %s is damaged (1 record could "
                                 "not be read (first: table log" % db)
    out = run("history", "--db", db)
    assert out.returncode == 3
    assert out.stderr.startswith("pyloot: reading the history failed: store damaged: 1 record could not be "
                                 "read (first: table log, key incarnation %d/" % pids[0])
