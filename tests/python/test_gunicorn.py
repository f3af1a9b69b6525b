"""The foundation end to end: real gunicorn workers, one shared store, and any
request seeing every worker's merged history."""
import os
import signal

import pytest

from conftest import thread_names, wait_until

LEAK = "leaky.Leak"


def leak_count(server, pid=None):
    query = "/api/history?q=%s&sort=count&limit=10" % LEAK
    if pid:
        query += "&pid=%d" % pid
    types = {t["name"]: t for t in server.api(query)["types"]}
    return types[LEAK]["count"] if LEAK in types else 0


def alive_pids(procs):
    return sorted(p["pid"] for p in procs["procs"] if p["alive"])


def test_merged_history_across_four_sync_workers(gunicorn):
    server = gunicorn(workers=4)
    leaks = server.leak_everywhere(per_request=7)
    workers = server.worker_pids()
    assert sorted(leaks) == workers, "every worker leaked something"
    total = sum(leaks.values())

    wait_until(lambda: leak_count(server) == total, 30, message="merged count == %d" % total)
    # Every request, whichever worker answers it, sees all four workers.
    answered_by = set()
    for _ in range(24):
        procs = server.api("/api/procs")
        assert alive_pids(procs) == workers
        answered_by.add(procs["self"]["pid"])
        assert procs["store"]["path"] == str(server.db)
    assert answered_by <= set(workers)
    for _ in range(8):
        assert leak_count(server) == total
    for pid, n in leaks.items():
        assert leak_count(server, pid) == n

    history = server.api("/api/history?q=leaky.leak&workers=1")
    (leak_type,) = history["types"]
    assert leak_type["name"] == LEAK
    assert len(leak_type["counts"]) == len(history["times"])
    assert history["times"] == sorted(history["times"])
    assert leak_type["counts"][-1] == total
    assert sorted(line["pid"] for line in leak_type["workers"]) == workers


def test_killed_worker_is_dead_and_leaves_the_merged_count(gunicorn):
    server = gunicorn(workers=4)
    leaks = server.leak_everywhere(per_request=7)
    total = sum(leaks.values())
    wait_until(lambda: leak_count(server) == total, 30, message="merged count == %d" % total)

    victim = max(leaks, key=leaks.get)
    os.kill(victim, signal.SIGKILL)

    def replaced():
        workers = server.worker_pids()
        return len(workers) == 4 and victim not in workers and workers

    workers = wait_until(replaced, 30, message="gunicorn to replace the killed worker")
    (replacement,) = set(workers) - set(leaks)

    def shown():
        procs = {p["pid"]: p for p in server.api("/api/procs")["procs"]}
        return (victim in procs and not procs[victim]["alive"] and procs[victim]["ended"] is None
                and replacement in procs and procs[replacement]["alive"])

    wait_until(shown, 30, message="the killed worker dead, its replacement alive")
    wait_until(lambda: leak_count(server) == total - leaks[victim], 30,
               message="merged count to drop by %d" % leaks[victim])
    # The dead incarnation's own history is still there for the post-mortem.
    assert leak_count(server, victim) == leaks[victim]


def test_preload_runs_collectors_in_workers_only(gunicorn):
    server = gunicorn(workers=3, preload=True)
    leaks = server.leak_everywhere(per_request=7, rounds=2)
    total = sum(leaks.values())
    wait_until(lambda: leak_count(server) == total, 30, message="merged count == %d" % total)
    procs = server.api("/api/procs")["procs"]
    pids = {p["pid"] for p in procs}
    assert server.master not in pids
    assert pids == set(server.worker_pids())
    assert "pyloot-collect" not in thread_names(server.master)
    for pid in server.worker_pids():
        assert thread_names(pid).count("pyloot-collect") == 1


@pytest.mark.parametrize("worker_class,args", [("gevent", ()), ("gthread", ("--threads", "4"))])
def test_other_worker_classes(gunicorn, worker_class, args):
    pytest.importorskip(worker_class if worker_class == "gevent" else "threading")
    server = gunicorn(workers=2, worker_class=worker_class, args=args)
    leaks = server.leak_everywhere(per_request=7, rounds=2)
    total = sum(leaks.values())
    wait_until(lambda: leak_count(server) == total, 30, message="merged count == %d" % total)
    assert alive_pids(server.api("/api/procs")) == server.worker_pids()
    for pid in server.worker_pids():
        assert thread_names(pid).count("pyloot-collect") == 1


def test_workers_stop_cleanly(gunicorn):
    server = gunicorn(workers=2)
    server.leak_everywhere(per_request=7, rounds=1)
    workers = server.worker_pids()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    assert server.proc.returncode == 0, server.log()[-3000:]
    log = server.log()
    assert "Traceback" not in log and "Fatal Python error" not in log, log[-3000:]
    # Each worker marked its incarnation as ended on its way out.
    from pyloot import _pyloot
    procs = {p["pid"]: p for p in _pyloot.Store(str(server.db), read_only=True).procs()}
    assert set(workers) <= set(procs)
    for pid in workers:
        assert procs[pid]["ended"] and not procs[pid]["alive"]
