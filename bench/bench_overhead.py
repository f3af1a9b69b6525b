#!/usr/bin/env python3
"""Serving overhead of pyloot: requests/s of a gunicorn app without and with pyloot (DESIGN.md §5).

Goal: "A gunicorn app with pyloot at the default interval loses <= 1% of its requests/s."

Each round starts gunicorn (``--workers`` sync workers, 127.0.0.1, a free port) on
bench/overhead_app.py twice, without pyloot (not even imported) and with it (embedded as the README
says, the store in a temporary directory), and drives each with ``wrk`` for ``--duration`` seconds.
The order alternates (round 1: without, with; round 2: with, without; ...) so that drift of a
shared machine cancels out. Printed: requests/s of each run, the median of each side, the ratio and
the goal, and pyloot's own figures for the measured window (samples written per worker, from
``/_pyloot/api/procs`` before and after; the collector's last timings from ``PyLoot.stats()``).

Needs ``wrk`` (Debian: ``apt-get install -y wrk``) and gunicorn. Uses the installed pyloot, or the
one PYTHONPATH points at. Every server is stopped (its process group killed) whatever happens.

    python3 bench/bench_overhead.py                          # 2 rounds x 2 runs x 65 s, ~5 min
    python3 bench/bench_overhead.py --interval 5 --rounds 1  # worst case: a sample every 5 s
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
GOAL_LOSS = 0.01


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


class Server:
    """One gunicorn on overhead_app, in its own process group; stop() kills the whole group."""

    def __init__(self, with_pyloot, args):
        self.with_pyloot = with_pyloot
        self.args = args
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tmp = tempfile.mkdtemp(prefix="pyloot-overhead-")
        self.proc = None
        self.log = None

    def start(self):
        env = dict(os.environ)
        env["OVERHEAD_HEAP"] = str(self.args.heap)
        env.pop("OVERHEAD_INTERVAL", None)
        env.pop("OVERHEAD_PYLOOT", None)
        env["PYLOOT_DB"] = os.path.join(self.tmp, "store")
        if self.with_pyloot:
            env["OVERHEAD_PYLOOT"] = "1"
            if self.args.interval is not None:
                env["OVERHEAD_INTERVAL"] = str(self.args.interval)
        cmd = [self.args.gunicorn, "--workers", str(self.args.workers), "--worker-class", "sync",
               "--bind", "127.0.0.1:%d" % self.port, "--chdir", HERE, "--timeout", "60",
               "--log-level", "warning", "overhead_app:app"]
        self.log = open(os.path.join(self.tmp, "gunicorn.log"), "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.args.startup_timeout
        pids = set()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited (%s): %s" % (self.proc.returncode, self.log_text()))
            try:
                status, body = http_get(self.url + "/_overhead/stats", timeout=2)
                if status == 200:
                    pids.add(json.loads(body)["pid"])
                    if len(pids) >= min(self.args.workers, 2):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within %ss: %s"
                           % (self.args.startup_timeout, self.log_text()))

    def log_text(self):
        try:
            with open(os.path.join(self.tmp, "gunicorn.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def samples(self):
        """{pid: samples stored} of the live incarnations of this server's store, or None."""
        try:
            status, body = http_get(self.url + "/_pyloot/api/procs", timeout=10)
        except OSError:
            return None
        if status != 200:
            return None
        return {p["pid"]: p["samples"] for p in json.loads(body)["procs"] if p.get("alive")}

    def worker_stats(self, tries=40):
        """{pid: PyLoot.stats()} of as many workers as answer within ``tries`` requests."""
        out = {}
        for _ in range(tries):
            try:
                status, body = http_get(self.url + "/_overhead/stats", timeout=5)
                d = json.loads(body)
                out[d["pid"]] = d.get("collector")
            except OSError:
                pass
            if len(out) >= self.args.workers:
                break
        return out

    def worker_cpu(self):
        """{pid: utime + stime in seconds} of the master's children (the workers), from /proc."""
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state (field 3); ppid is field 4, utime 14, stime 15
            if int(fields[1]) == self.proc.pid:
                out[int(name)] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def stop(self):
        if self.proc is not None:
            try:
                pgid = os.getpgid(self.proc.pid)
            except ProcessLookupError:
                pgid = None
            if pgid is not None:
                for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                    try:
                        os.killpg(pgid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        self.proc.wait(timeout=wait)
                        # the master has gone; make sure no worker of the group survives it
                        try:
                            os.killpg(pgid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        break
                    except subprocess.TimeoutExpired:
                        continue
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None
        shutil.rmtree(self.tmp, ignore_errors=True)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def steal_seconds():
    """Time stolen from this VM by the hypervisor, all CPUs (from /proc/stat), in seconds."""
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    return int(cpu[8]) / os.sysconf("SC_CLK_TCK") if len(cpu) > 8 else 0.0


def run_wrk(args, url, duration):
    cmd = [args.wrk, "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % duration,
           "--timeout", "10s", "--latency", url + "/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("wrk printed no Requests/sec:\n" + out)
    res = {"rps": float(m.group(1)), "errors": 0, "out": out}
    n = re.search(r"(\d+) requests in", out)
    res["requests"] = int(n.group(1)) if n else 0
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if lat:
        res["avg_ms"], res["max_ms"] = _ms(lat.group(1)), _ms(lat.group(3))
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    res["p99_ms"] = _ms(p99.group(1)) if p99 else float("nan")
    for pat in (r"Non-2xx or 3xx responses:\s+(\d+)",
                r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        e = re.search(pat, out)
        if e:
            res["errors"] += sum(int(g) for g in e.groups())
    return res


def one_run(args, with_pyloot):
    srv = Server(with_pyloot, args)
    try:
        srv.start()
        if args.warmup > 0:
            run_wrk(args, srv.url, args.warmup)
        before = srv.samples() if with_pyloot else None
        cpu0, steal0, t0 = srv.worker_cpu(), steal_seconds(), time.time()
        res = run_wrk(args, srv.url, args.duration)
        cpu1, steal1 = srv.worker_cpu(), steal_seconds()
        res["wall"] = time.time() - t0
        res["steal"] = steal1 - steal0
        # CPU of the workers per request: much steadier than requests/s on a shared machine
        cpu = sum(cpu1[p] - cpu0[p] for p in cpu1 if p in cpu0)
        res["cpu_ms_per_req"] = 1e3 * cpu / res["requests"] if res["requests"] else float("nan")
        if with_pyloot:
            after = srv.samples()
            res["samples"] = ({pid: n - (before or {}).get(pid, 0) for pid, n in after.items()}
                              if after is not None else None)
            res["stats"] = srv.worker_stats()
        res["load"] = os.getloadavg()[0]
        return res
    finally:
        srv.stop()


def fmt_stats(stats):
    """The collector's figures that say something about cost, whatever their exact names."""
    if not isinstance(stats, dict):
        return str(stats)
    keep = {k: v for k, v in stats.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ", ".join("%s=%s" % (k, ("%.2f" % v) if isinstance(v, float) else v)
                     for k, v in sorted(keep.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=65, help="seconds of load per run (default 65)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of (without, with) (default 2)")
    ap.add_argument("--interval", type=float, default=None,
                    help="PyLoot(interval=S) for the worst case; default: PyLoot()'s own (30 s)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    ap.add_argument("--heap", type=int, default=200_000, help="objects kept alive per worker")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first (default 3)")
    ap.add_argument("--startup-timeout", type=float, default=60.0)
    ap.add_argument("--wrk", default=shutil.which("wrk"))
    ap.add_argument("--gunicorn", default=shutil.which("gunicorn"))
    args = ap.parse_args()

    if not args.wrk:
        sys.exit("bench_overhead: wrk is not installed. On Debian: apt-get install -y wrk "
                 "(or pass --wrk PATH).")
    if not args.gunicorn:
        sys.exit("bench_overhead: gunicorn is not installed (python3 -m pip install gunicorn).")
    import pyloot  # noqa: F401  -- fail here, not in a worker, if it is missing
    interval = args.interval if args.interval is not None else 30.0
    print("pyloot %s; gunicorn %d sync workers; heap %d objects per worker; wrk -t%d -c%d, %d s per "
          "run (+%d s warm-up); interval %s; %d round(s); %d CPUs, load %.2f"
          % (os.path.dirname(pyloot.__file__), args.workers, args.heap, args.threads,
             args.connections, args.duration, args.warmup,
             "%g s" % interval + (" (default)" if args.interval is None else ""),
             args.rounds, os.cpu_count(), os.getloadavg()[0]))
    print("expected samples per worker in the window: about %.1f" % (args.duration / interval))
    print()
    print("%-5s %-8s %9s %7s %7s %7s %7s %6s %6s %6s  %s"
          % ("round", "pyloot", "req/s", "cpu ms", "avg ms", "p99 ms", "max ms", "errors", "load",
             "steal", "samples in window"))
    print("%-5s %-8s %9s %7s" % ("", "", "", "/req"))
    results = {False: [], True: []}
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for with_pyloot in order:
            res = one_run(args, with_pyloot)
            results[with_pyloot].append(res)
            samples = ""
            if with_pyloot:
                s = res.get("samples")
                samples = ("?" if s is None else
                           ", ".join("pid %d: %d" % kv for kv in sorted(s.items())))
            print("%-5d %-8s %9.1f %7.3f %7.2f %7.1f %7.1f %6d %6.2f %5.1fs  %s"
                  % (r + 1, "with" if with_pyloot else "without", res["rps"], res["cpu_ms_per_req"],
                     res.get("avg_ms", 0), res["p99_ms"], res.get("max_ms", 0), res["errors"],
                     res["load"], res["steal"], samples), flush=True)
            if with_pyloot:
                for pid, st in sorted(res.get("stats", {}).items()):
                    print("      collector of pid %d: %s" % (pid, fmt_stats(st)), flush=True)

    off = statistics.median(x["rps"] for x in results[False])
    on = statistics.median(x["rps"] for x in results[True])
    ratio = on / off
    loss = 1.0 - ratio
    print()
    print("median req/s without pyloot: %.1f" % off)
    print("median req/s with pyloot:    %.1f" % on)
    print("ratio with/without: %.4f  -> loss %.2f%%  (goal: loss <= %.0f%% at the default interval)%s"
          % (ratio, 100 * loss, 100 * GOAL_LOSS,
             "" if args.interval is None else "  [interval %g s: worst case, not the goal's setting]"
             % args.interval))
    if args.interval is None:
        print("goal %s" % ("met" if loss <= GOAL_LOSS else "NOT met"))
    pairs = [b["rps"] / a["rps"] for a, b in zip(results[False], results[True])]
    print("ratio of each round (with/without, same round): %s; median %.4f"
          % (", ".join("%.4f" % x for x in pairs), statistics.median(pairs)))
    coff = statistics.median(x["cpu_ms_per_req"] for x in results[False])
    con = statistics.median(x["cpu_ms_per_req"] for x in results[True])
    print("median worker CPU per request: without %.3f ms, with %.3f ms -> pyloot costs %+.2f%% CPU per "
          "request, i.e. a CPU-bound server would lose %.2f%% of its requests/s"
          % (coff, con, 100 * (con / coff - 1), 100 * (1 - coff / con)))
    held = [st.get("last_gc_ms", 0) + st.get("last_pass_ms", 0)
            for x in results[True] for st in x.get("stats", {}).values() if isinstance(st, dict)]
    if held:
        h = statistics.median(held)
        print("collector's GIL time per collection (last gc.collect + count pass, median over workers): "
              "%.1f ms every %g s = %.2f%% of a worker's time: the loss expected of a CPU-bound worker"
              % (h, interval, 100 * h / (1e3 * interval)))
    spread = [100 * (max(v["rps"] for v in results[k]) / min(v["rps"] for v in results[k]) - 1)
              for k in (False, True)]
    print("spread between runs of one side: without %.1f%%, with %.1f%% (noise of this machine)"
          % tuple(spread))
    if max(spread) > 2 * 100 * GOAL_LOSS:
        print("the runs of one side differ by more than twice the goal: on this machine the ratio above "
              "can neither confirm nor refute it (see the steal column); the collector's GIL time is the "
              "steadier figure")


if __name__ == "__main__":
    main()
