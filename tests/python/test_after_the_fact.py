"""After the fact: a stopped or SIGKILLed server's store, read with the
pyloot command alone, still says what leaked, as of the last moment its
workers were alive, and its merged line does not fall at the stop."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import wait_until
from test_cli import pyloot_exe

LEAK = "leaky.Leak"


def run(*args):
    out = subprocess.run([pyloot_exe(), *args], capture_output=True, text=True, timeout=30)
    return out


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("stop", ["sigterm", "sigkill-group"])
def test_stopped_server_store_tells_what_leaked(gunicorn, stop):
    server = gunicorn(workers=2, interval=0.3)
    server.wait_sampled()
    leaks = server.leak_everywhere(per_request=9)
    total = sum(leaks.values())

    def counted():
        types = {t["name"]: t for t in server.api("/api/history?q=leaky&sort=count")["types"]}
        return LEAK in types and types[LEAK]["count"] == total

    wait_until(counted, 30, message="merged count == %d" % total)
    time.sleep(1.0)  # a few more samples at the final count
    workers = server.worker_pids()
    if stop == "sigterm":
        server.proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=20)
    wait_until(lambda: all(gone(p) for p in workers), 20, message="the workers to be gone")

    db = str(server.db)
    # The app's own types: each Leak also brings a str and an int (counted
    # too), which may gain as many objects or more.
    out = run("history", "--db", db, "--json", "-q", "leaky.")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["live"] is False and data["as_of"] is not None
    top = data["types"][0]
    assert top["name"] == LEAK, [(t["name"], t["growth"]) for t in data["types"][:5]]
    assert top["count"] == total and top["growth"] == total
    line = [c for c in top["counts"] if c >= 0]
    assert line[-1] == total
    assert line[-5:] == sorted(line[-5:]), line[-10:]  # no staircase down at the stop
    # Global options before the subcommand, and the table says "as of".
    out = run("--db", db, "history", "-q", "leaky.leak")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("as of ") and LEAK in out.stdout
    assert "%d" % total in out.stdout
    out = run("--db", db, "--csv", "procs")
    assert out.returncode == 0, out.stderr
    assert all(str(p) in out.stdout for p in workers)
