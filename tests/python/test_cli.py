"""The pyloot command: inspecting and serving a store after the fact."""
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig

import pytest

from conftest import free_port, http, wait_until
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

        def up():
            try:
                return http(url + "/api/procs", timeout=2).status == 200
            except OSError:
                return False

        wait_until(up, 20, message="pyloot to listen")
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
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0
