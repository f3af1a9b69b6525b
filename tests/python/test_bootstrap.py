"""The README's first command, `bash tools/bootstrap.sh demo`, as a new user
runs it: it installs what is missing, prints the URL and the store, serves
the demo's leak at /_pyloot, and at Ctrl-C stops everything it started and
says where the store stays.

It installs packages (apt-get, pip), so it runs only when PYLOOT_DEMO_SMOKE=1:
`tools/bootstrap.sh test` sets it where the python it tests needed a venv:
Debian's /usr/bin/python3 (its stock-python step: PYTHON=/usr/bin/python3, no
pyenv on the PATH; or the default python3 of a stock Debian). The tests run
from that venv, so the demo must find and reuse it."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port, http, read_log, stop_group, wait_until

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.environ.get("PYLOOT_DEMO_SMOKE") != "1",
                                reason="installs packages: tools/bootstrap.sh test runs it (PYLOOT_DEMO_SMOKE=1)")


def session_count(base):
    r = http(base + "/api/history?q=demo_app.Session")
    if r.status != 200:
        return 0
    return sum(t["count"] for t in r.json()["types"] if t["name"] == "demo_app.Session")


def test_demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYLOOT_DB", "PYLOOT_TOKEN")}
    # TMPDIR: the demo's zero-config store goes under tmp_path.
    env.update(PYLOOT_DEMO_PORT=str(port), PYLOOT_DEMO_BIND="127.0.0.1", TMPDIR=str(tmp_path))
    log = tmp_path / "demo.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(["bash", str(ROOT / "tools" / "bootstrap.sh"), "demo"], env=env, stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = "http://127.0.0.1:%d/_pyloot" % port
    try:
        opened = "open http://127.0.0.1:%d/_pyloot/ in a browser" % port
        wait_until(lambda: opened in read_log(log) or proc.poll() is not None, 300, message="the demo's URL")
        assert proc.poll() is None, read_log(log)[-3000:]
        store = re.search(r"pyloot: store: (/\S+)", read_log(log))
        assert store, read_log(log)[-3000:]
        store = store.group(1)
        assert http(base + "/api/procs").json()["store"]["path"] == store
        # The leak the README tells the user to watch, from the demo's own traffic.
        wait_until(lambda: session_count(base) > 0, 60, message="demo_app.Session in the history")
        venv = Path(os.environ.get("PYLOOT_VENV") or ROOT / ".venv")
        if Path(sys.prefix) == venv:
            # bootstrap made this venv (the python given takes no pip installs): the demo reuses it.
            assert "using the venv %s" % venv in read_log(log), read_log(log)[-3000:]
        # Ctrl-C: SIGINT to the terminal's foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        stop_group(proc)
    text = read_log(log)
    assert proc.returncode == 0, text[-3000:]
    assert "demo stopped; its store stays in %s" % store in text, text[-3000:]
    assert "pyloot report --db %s" % store in text
    assert (Path(store) / "data.mdb").is_file()
    with pytest.raises(OSError):
        http(base + "/api/procs", timeout=2)  # nothing left listening


def bootstrap_python(tmp_path, python):
    """`tools/bootstrap.sh python` with PYTHON=python and the venv in tmp_path:
    (the interpreter it chose, what it said)."""
    env = dict(os.environ, PYTHON=python, PYLOOT_VENV=str(tmp_path / "venv"))
    out = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh"), "python"], env=env, capture_output=True,
                         text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip(), out.stderr


def test_a_python_that_takes_pip_installs_is_used_as_it_is(tmp_path):
    chosen, said = bootstrap_python(tmp_path, sys.executable)  # a venv: pip installs into it
    assert chosen == sys.executable, said
    assert not (tmp_path / "venv").exists()


def externally_managed(python):
    out = subprocess.run([python, "-c", "import os, sysconfig; print(os.path.exists(os.path.join("
                          "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"], capture_output=True, text=True)
    return out.stdout.strip() == "True"


@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK) or not externally_managed("/usr/bin/python3"),
                    reason="no externally managed /usr/bin/python3 (Debian's) here")
def test_an_externally_managed_python_gets_a_venv_made_once(tmp_path):
    venv = tmp_path / "venv"
    chosen, said = bootstrap_python(tmp_path, "/usr/bin/python3")
    assert chosen == str(venv / "bin" / "python"), said
    assert "making the venv %s" % venv in said
    home = dict(line.split(" = ", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    assert home["home"] == "/usr/bin"  # made from Debian's python3
    made = (venv / "pyvenv.cfg").stat().st_mtime_ns
    chosen, said = bootstrap_python(tmp_path, "/usr/bin/python3")
    assert chosen == str(venv / "bin" / "python") and "using the venv %s" % venv in said, said
    assert (venv / "pyvenv.cfg").stat().st_mtime_ns == made
    (venv / "bin" / "python").unlink()  # a venv that no longer runs is made again
    chosen, said = bootstrap_python(tmp_path, "/usr/bin/python3")
    assert "making the venv %s" % venv in said and os.access(chosen, os.X_OK), said
