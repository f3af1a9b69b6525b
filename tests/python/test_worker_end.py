"""How a worker ended, as the gunicorn master saw it (pyloot.gunicorn.child_exit):
a SIGKILLed worker is "killed (SIGKILL)", one that exited with a code is
"exited <code>", one stopped by a restart (TTOU, HUP) ended cleanly; the
store keeps it, /api/procs and `pyloot report` say it."""
import csv
import io
import json
import os
import signal
import subprocess

from conftest import wait_until
from test_browser import browser  # noqa: F401 (a fixture)
from test_cli import pyloot_exe

KILLED = {"how": "killed", "signal": 9, "name": "SIGKILL"}
EXITED = {"how": "exited", "code": 5}
CLEAN = {"how": "clean"}


def ends(server):
    """{pid: end} of the incarnations that are not alive."""
    return {p["pid"]: p["end"] for p in server.api("/api/procs")["procs"] if not p["alive"]}


def start(gunicorn, tmp_path, workers=3):
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("from pyloot.gunicorn import child_exit  # noqa: F401\n")
    server = gunicorn(workers=workers, args=("-c", str(conf)))
    wait_until(lambda: sorted(p["pid"] for p in server.api("/api/procs")["procs"] if p["alive"])
               == server.worker_pids(), 30, message="every worker registered")
    return server


def replaced(server, gone, workers):
    def check():
        pids = server.worker_pids()
        return len(pids) == workers and not set(gone) & set(pids) and pids
    return wait_until(check, 30, message="gunicorn to replace %s" % (gone,))


def test_killed_exited_and_restarted_workers_are_told_apart(gunicorn, tmp_path):
    server = start(gunicorn, tmp_path)
    first = server.worker_pids()

    # SIGKILL, as the OOM killer sends it.
    victim = first[0]
    os.kill(victim, signal.SIGKILL)
    replaced(server, [victim], 3)
    wait_until(lambda: ends(server).get(victim) == KILLED, 30, message="the killed worker stored as killed")

    # A worker that exits with code 5 (after marking its own end on the way out).
    before = server.worker_pids()
    try:
        server.get("/exit?code=5", timeout=10)
    except OSError:
        pass  # the worker exits without an answer
    after = wait_until(lambda: (set(before) - set(server.worker_pids())) or None, 30,
                       message="a worker to exit")
    (exited,) = after
    replaced(server, [exited], 3)
    wait_until(lambda: ends(server).get(exited) == EXITED, 30, message="the worker stored as exited 5")

    # TTOU: gunicorn stops its oldest worker with SIGTERM; it exits cleanly.
    before = server.worker_pids()
    server.proc.send_signal(signal.SIGTTOU)
    stopped = wait_until(lambda: (set(before) - set(server.worker_pids())) or None, 30,
                         message="TTOU to stop a worker")
    for pid in stopped:
        wait_until(lambda: ends(server).get(pid) == CLEAN, 30, message="the stopped worker stored as clean")

    # HUP: every worker replaced gracefully, each one clean (the config's
    # three workers again).
    before = server.worker_pids()
    server.proc.send_signal(signal.SIGHUP)
    replaced(server, before, 3)
    for pid in before:
        wait_until(lambda: ends(server).get(pid) == CLEAN, 30, message="the HUP-replaced worker stored as clean")

    got = ends(server)
    want = {pid: CLEAN for pid in list(stopped) + before}
    want.update({victim: KILLED, exited: EXITED})
    assert got == want

    # The command reads the same from the store.
    out = subprocess.run([pyloot_exe(), "report", "--db", str(server.db), "--json"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    store = json.loads(out.stdout)["store"]
    assert (store["killed"], store["exited"], store["ended"], store["alive"]) == (1, 1, 3, 3)
    assert {e["pid"]: e["end"] for e in store["ends"]} == {victim: KILLED, exited: EXITED}
    text = subprocess.run([pyloot_exe(), "report", "--db", str(server.db)], capture_output=True, text=True,
                          timeout=30).stdout
    assert "1 killed, 1 exited with an error, 3 ended cleanly" in text
    assert "pid %d: killed (SIGKILL)" % victim in text and "pid %d: exited 5" % exited in text
    rows = list(csv.DictReader(io.StringIO(subprocess.run(
        [pyloot_exe(), "procs", "--db", str(server.db), "--csv"], capture_output=True, text=True, timeout=30).stdout)))
    by_pid = {int(r["pid"]): r["end"] for r in rows}
    assert by_pid[victim] == "killed (SIGKILL)" and by_pid[exited] == "exited 5"
    assert [by_pid[pid] for pid in before] == ["ended cleanly"] * len(before)


def test_worker_status_without_gunicorn_is_none():
    """Called by hand (no arbiter frame), the hook stores no status."""
    from pyloot.gunicorn import worker_status

    class Worker:
        pid = 123

    assert worker_status(Worker()) is None
    wpid, status = 123, 9  # noqa: F841  (read by worker_status from this frame)
    assert worker_status(Worker()) == 9
    wpid = 124  # noqa: F841
    assert worker_status(Worker()) is None


def test_workers_page_says_how_each_worker_ended(gunicorn, tmp_path, browser):  # noqa: F811
    from test_browser_asof import StoreUI

    server = start(gunicorn, tmp_path, workers=2)
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    replaced(server, [victim], 2)
    wait_until(lambda: ends(server).get(victim) == KILLED, 30, message="the killed worker stored as killed")
    ui = StoreUI(browser, server.url + "/_pyloot", tmp_path, "ends")
    ui.go("#/workers")
    badges = ui.wait(lambda d: d.execute_script(
        "const r = [...document.querySelectorAll('.proc-row')];"
        "return r.length === 3 && r.map(x => [+x.dataset.pid, x.querySelector('.badge:not(.self-badge)').textContent,"
        " x.querySelector('.badge:not(.self-badge)').className]);"), "the workers table")
    by_pid = {pid: (text, cls) for pid, text, cls in badges}
    assert by_pid[victim] == ("killed (SIGKILL)", "badge dead")
    assert sorted(pid for pid, (text, _) in by_pid.items() if text == "alive") == server.worker_pids()
    assert ui.js_errors() == []
