"""Remote mode, the central server's side (docs/benchmarks.md, "Remote ingest").

    python3 bench/bench_ingest.py [--seed-python PATH] [--quick]

1. Bytes on the wire per sample: one 5,000-type heap (5,000 classes x 20
   instances) as pushed by remote mode (the gzip'ed sample message, without
   and with the names) against the original pyloot 0.1.0's POST of the same
   heap (gzip'ed JSON of every object, HTTPRemoteBackend.store). The original
   runs in its own interpreter (--seed-python: a venv with
   `pip install pyloot==0.1.0`); without it that part is skipped.
2. Ingest: 8 pushing workers (threads, keep-alive connections; --pushers) send
   5,000-type samples to a `pyloot` server on loopback for a fixed time, one
   sample per message and 8 per message (then 32 and 64 pushers, closer to a
   fleet whose workers push independently), with the store on disk and on tmpfs
   (/dev/shm: the fsync of each commit costs nothing there), each against the
   same server with group commit off (PYLOOT_GROUP_COMMIT=0: one write
   transaction per push) as the baseline. Goal >= 1,000 samples/s.
3. The merged history page over 100 hosts x 8 workers (800 pushed
   incarnations, 24 samples of 500 types each, 30 s apart; they declare a
   10-minute interval so that all stay alive while the store is filled):
   GET /api/history (50 types, sort=growth) through HTTP; median and min of
   15. Goal <= 50 ms.

The server is build/pyloot (a Release build: cmake -S . -B build -G Ninja &&
ninja -C build). Everything runs in one go, so the figures are comparable.
"""
import argparse
import gc
import gzip
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from remote_push import NEW_SPACE, message, now_ms  # noqa: E402

INSTANCES = 20
ROTATE = 4  # part 2: messages each pusher sends in turn

HEAP = r'''
import gc, sys
classes = [type("T%d" % i, (), {"__module__": "bench.heap"}) for i in range(5000)]
keep = [c() for c in classes for _ in range(INSTANCES)]
for i, o in enumerate(keep):
    o.value = i
'''

SEED = HEAP + r'''
import json
from pyloot.collector import get_object_descriptors
from pyloot.backends.http import HTTPRemoteBackend
descr = get_object_descriptors()
data = [dict(item._asdict()) for item in descr]
raw = json.dumps(data)
print(len(descr), len(raw.encode()), len(HTTPRemoteBackend.compress(raw)))
'''


def our_heap_sample():
    """The heap of HEAP counted by type as the collector does (name, count, shallow bytes)."""
    ns = {"INSTANCES": INSTANCES}
    exec(HEAP, ns)
    gc.collect()
    counts = {}
    for o in gc.get_objects():
        t = type(o)
        name = "%s.%s" % (t.__module__, t.__qualname__)
        c = counts.setdefault(name, [0, 0])
        c[0] += 1
        c[1] += sys.getsizeof(o)
    del ns
    return counts


def wire_bytes(seed_python):
    counts = our_heap_sample()
    names = sorted(counts)
    types = {i: n for i, n in enumerate(names)}
    entries = {i: tuple(counts[n]) for i, n in enumerate(names)}
    t = now_ms()
    first = gzip.compress(message("web-1", 1234, 5678, types, [(t, entries)]))
    steady = gzip.compress(message("web-1", 1234, 5678, None, [(t, entries)], flags=0))
    print("1. bytes on the wire per sample (a heap of %d types, %d gc-tracked objects)"
          % (len(names), sum(c[0] for c in counts.values())))
    print("   remote mode, a sample (names already announced): %8d bytes" % len(steady))
    print("   remote mode, the first push (names included):     %8d bytes" % len(first))
    if not seed_python:
        print("   pyloot 0.1.0: skipped (no --seed-python)")
        return
    out = subprocess.run([seed_python, "-c", "INSTANCES = %d\n" % INSTANCES + SEED], capture_output=True, text=True,
                         timeout=3600)
    if out.returncode:
        print("   pyloot 0.1.0 failed:", out.stderr[-500:])
        return
    n, raw, gz = map(int, out.stdout.split())
    print("   pyloot 0.1.0 POST /api/objects, %d objects:  %8d bytes gzip'ed (%d bytes of JSON)" % (n, gz, raw))
    print("   ratio: %.0fx fewer bytes per sample (%.0fx with the names)" % (gz / len(steady), gz / len(first)))


class Server:
    def __init__(self, exe, db, group_commit=True):
        self.port = free_port()
        env = dict(os.environ)
        if not group_commit:
            env["PYLOOT_GROUP_COMMIT"] = "0"  # one transaction per push: the baseline
        self.proc = subprocess.Popen([exe, "-h", "127.0.0.1", "-p", str(self.port), "--db", db],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                                     env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("pyloot did not start")

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HEADERS = {"Content-Type": "application/x-pyloot-samples", "Content-Encoding": "gzip"}


def post(conn, body):
    conn.request("POST", "/api/samples", body=body, headers=HEADERS)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("push: %d %s" % (r.status, data[:200]))


class RawPusher:
    """One keep-alive connection sending prebuilt POSTs in turn: far less client CPU per push than
    http.client, so that the pushers, on the same 2 cores, leave the CPU to the server."""

    def __init__(self, port, bodies):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.requests = []
        for body in bodies:
            head = ("POST /api/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                    "Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                    % (HEADERS["Content-Type"], len(body)))
            self.requests.append(head.encode() + body)
        self.k = 0
        self.buf = b""

    def push(self):
        self.sock.sendall(self.requests[self.k % len(self.requests)])
        self.k += 1
        while b"\r\n\r\n" not in self.buf:
            self.recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b" ", 2)[1]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buf) < length:
            self.recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        if status != b"200":
            raise RuntimeError("push: %s %s" % (status, body[:200]))

    def recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("push: connection closed")
        self.buf += data

    def close(self):
        self.sock.close()


def ingest(exe, dirpath, per_message, seconds, workers=8, n_types=5000, group_commit=True):
    db = tempfile.mkdtemp(prefix="bench-ingest-", dir=dirpath)
    server = Server(exe, db, group_commit)
    try:
        types = {i: "bench.app.Type%d" % i for i in range(n_types)}
        bodies = []
        for w in range(workers):
            host = "bench-%d" % w
            c = server.conn()
            post(c, gzip.compress(message(host, 1000 + w, 1, types)))
            c.close()
            t = now_ms() - 600000
            # A quarter of the types move from one sample to the next: each pusher sends its
            # ROTATE messages in turn (the server moves each sample's time after the previous one).
            mine = []
            for r in range(ROTATE):
                samples = [(t + k, {i: (100 + (i * 7 + (r * per_message + k) * (i % 4 == 0)) % 1000, 4800)
                                    for i in range(n_types)})
                           for k in range(per_message)]
                mine.append(gzip.compress(message(host, 1000 + w, 1, None, samples, flags=0)))
            bodies.append(mine)
        done = [0] * workers
        stop = time.monotonic() + seconds

        def run(w):
            c = RawPusher(server.port, bodies[w])
            while time.monotonic() < stop:
                c.push()
                done[w] += per_message
            c.close()

        started = time.monotonic()
        threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        took = time.monotonic() - started
        return sum(done) / took, len(bodies[0][0])
    finally:
        server.stop()
        shutil.rmtree(db, ignore_errors=True)


def fleet_page(exe, hosts=100, per_host=8, samples=24, n_types=500, runs=15):
    db = tempfile.mkdtemp(prefix="bench-fleet-", dir="/dev/shm")
    server = Server(exe, db)
    try:
        types = {i: "bench.app.Type%d" % i for i in range(n_types)}
        t0 = now_ms() - samples * 30000
        c = server.conn()
        for h in range(hosts):
            for w in range(per_host):
                smp = [(t0 + k * 30000, {i: (10 + i + k * (i % 4 == 0) * (w + 1), 480) for i in range(n_types)})
                       for k in range(samples)]
                post(c, gzip.compress(message("host-%03d" % h, 100 + w, 7, types, smp, interval_ms=600000)))
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            c.request("GET", "/api/history?limit=50&sort=growth", headers={"Accept-Encoding": "gzip"})
            r = c.getresponse()
            r.read()
            times.append(time.perf_counter() - started)
            assert r.status == 200
        c.request("GET", "/api/procs")
        r = c.getresponse()
        import json
        procs = json.loads(r.read())["procs"]
        alive = sum(p["alive"] for p in procs)
        return statistics.median(times), min(times), len(procs), alive
    finally:
        server.stop()
        shutil.rmtree(db, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed-python", help="python of a venv with pyloot==0.1.0")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="123", help="which parts to run (default all: 123)")
    ap.add_argument("--instances", type=int, default=20, help="part 1: instances of each of the 5,000 classes")
    ap.add_argument("--exe", default=os.path.join(ROOT, "build", "pyloot"))
    ap.add_argument("--pushers", type=int, default=8, help="part 2: pushing workers (threads)")
    args = ap.parse_args()
    secs = 4 if args.quick else 10
    global INSTANCES
    INSTANCES = args.instances
    if "1" in args.parts:
        wire_bytes(args.seed_python)
    if "2" in args.parts:
        ingest_part(args, secs)
    if "3" in args.parts:
        print("3. merged history page over 100 hosts x 8 workers (goal <= 50 ms)")
        med, best, n, alive = fleet_page(args.exe)
        print("   %d incarnations (%d alive), 24 samples x 500 types each: median %.1f ms, min %.1f ms"
              % (n, alive, med * 1000, best * 1000))


def ingest_part(args, secs):
    print("2. ingest of 5,000-type samples, %d pushing workers on loopback, %d s each (goal >= 1,000 samples/s)"
          % (args.pushers, secs))
    print("   group commit against one transaction per push (PYLOOT_GROUP_COMMIT=0), same server binary")
    for where in ("/tmp", "/dev/shm"):
        for per in (1, 8):
            base, _ = ingest(args.exe, where, per, secs, args.pushers, group_commit=False)
            rate, size = ingest(args.exe, where, per, secs, args.pushers)
            print("   store in %-8s %d sample(s) per message (%6d bytes): %7.0f samples/s (one txn per push: %5.0f; %.2fx)"
                  % (where, per, size, rate, base, rate / base))
    # A fleet's workers push independently, so many pushes are in flight at once: more pushers
    # (each still one at a time) let the transactions hold more of them. The pushers are Python
    # threads on the same 2 cores: their own CPU time is printed beside.
    print("   more pushers in flight (store in /tmp, 1 sample per message)")
    for pushers in (32, 64):
        base, _ = ingest(args.exe, "/tmp", 1, secs, pushers, group_commit=False)
        cpu = time.process_time()
        rate, _ = ingest(args.exe, "/tmp", 1, secs, pushers)
        cpu = time.process_time() - cpu
        print("   %3d pushers: %7.0f samples/s (one txn per push: %5.0f; %.2fx); the pushers used %.1f CPU-s of %d s"
              % (pushers, rate, base, rate / base, cpu, secs))


if __name__ == "__main__":
    main()
