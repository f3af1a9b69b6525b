"""The network edges of the `pyloot` command's server (docs/cli.md, "Limits of the server").

Every server here listens on 127.0.0.1 and is stopped at the end of its test;
every socket is closed. Clients connect from other loopback addresses
(127.0.0.2 ...) where a test needs several "hosts": Linux routes all of
127.0.0.0/8 to the loopback interface.
"""
import json
import resource
import select
import socket
import subprocess
import time

import pytest

from conftest import free_port, http, stop_group, wait_for_pyloot, wait_until
from pyloot import PyLoot
from test_cli import pyloot_exe

PER_IP = 256            # HTTP_MAX_PER_IP of src/cli/main.c
MAX_BODY = 1 << 20      # MAX_BODY of src/cli/main.c
RESERVED_FDS = 64       # FDS_RESERVED of src/cli/main.c


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli-limits") / "store")
    loot = PyLoot(path=path)
    loot.collect_objects()
    loot.backend.close()
    return path


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors():
    """~800 client sockets at once: raise this process's soft limit if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2048
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("the open-file limit (%d) is too low for these tests" % hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Server:
    def __init__(self, store, nofile=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(self.port), "--db", store],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True, preexec_fn=limit)

        wait_for_pyloot(self.url, 20, proc=self.proc, why_exited=lambda: self.proc.stderr.read().decode())

    def timed_get(self, path="/api/procs", timeout=5):
        t0 = time.monotonic()
        r = http(self.url + path, timeout=timeout)
        return r, time.monotonic() - t0

    def stop(self):
        """Stops the server; returns its stderr."""
        stop_group(self.proc, grace=10)
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return err


@pytest.fixture
def sockets():
    """Every socket a test opens, closed at the end whatever happens."""
    opened = []
    yield opened
    for s in opened:
        s.close()


@pytest.fixture
def server(store):
    s = Server(store)
    yield s
    s.stop()


def connect(port, sockets, source="127.0.0.1"):
    s = socket.socket()
    sockets.append(s)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(socks):
    """The sockets the server has closed (readable with nothing to read but the end)."""
    readable, _, _ = select.select(socks, [], [], 0)
    gone = []
    for s in readable:
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                gone.append(s)
        except ConnectionResetError:
            gone.append(s)
    return gone


def read_answer(s, timeout=5):
    """Reads until the server closes: (status, headers, body)."""
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def test_slow_and_idle_clients_do_not_delay_others(server, sockets):
    # 500 idle connections from five addresses (under the per-address limit)
    idle = [connect(server.port, sockets, "127.0.0.%d" % (2 + i % 5)) for i in range(500)]
    # and one client that sends its request one byte a second
    slow = connect(server.port, sockets)
    request = b"GET /api/history?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    slowest = 0.0
    for i in range(6):
        slow.sendall(request[i:i + 1])
        r, took = server.timed_get()
        assert r.status == 200
        slowest = max(slowest, took)
        time.sleep(max(0.0, 1.0 - took))
    assert slowest < 1.0
    # The server still holds every idle connection: it answered beside them.
    assert closed_by_server(idle) == []
    # The slow client is answered once its request is complete.
    slow.sendall(request[6:])
    status, headers, body = read_answer(slow)
    assert status == 200 and json.loads(body)["limit"] == 1


def test_one_address_gets_at_most_its_share(server, sockets):
    crowd = [connect(server.port, sockets, "127.0.0.7") for _ in range(PER_IP + 14)]
    wait_until(lambda: len(closed_by_server(crowd)) >= 14, 10, message="connections over the limit to close")
    time.sleep(0.3)
    assert len(closed_by_server(crowd)) == 14
    # Another address is still served (no time bound: a loaded machine is slow,
    # a starved server never answers within the timeout).
    r, _ = server.timed_get(timeout=15)
    assert r.status == 200
    extra = connect(server.port, sockets, "127.0.0.7")
    extra.sendall(b"GET /api/procs HTTP/1.1\r\nHost: x\r\n\r\n")
    extra.settimeout(5)
    try:
        assert extra.recv(100) == b""
    except ConnectionResetError:
        pass
    for s in crowd:
        s.close()

    # The server frees the address's slots as it notices the closes: a new
    # connection from it is answered once it has (bounded in tries and time).
    def answered_again():
        again = connect(server.port, sockets, "127.0.0.7")
        again.sendall(b"GET /api/procs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            return read_answer(again)[0] == 200
        except (ConnectionResetError, IndexError, ValueError):
            return False

    wait_until(answered_again, 15, interval=0.2, message="a new connection from the address to be answered")


def test_connection_limit_follows_the_open_file_limit(store, sockets):
    server = Server(store, nofile=300)
    try:
        limit = 300 - RESERVED_FDS
        held = [connect(server.port, sockets, "127.0.0.%d" % (2 + i % 4)) for i in range(limit)]
        # The next connection waits in the kernel's queue while every slot is taken...
        waiting = connect(server.port, sockets)
        waiting.sendall(b"GET /api/procs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        waiting.settimeout(1.0)
        with pytest.raises(socket.timeout):
            waiting.recv(100)
        assert closed_by_server(held) == []
        # ... and is answered as soon as one frees.
        for s in held[:10]:
            s.close()
        assert read_answer(waiting)[0] == 200
    finally:
        err = server.stop()
    assert "at most %d connections" % limit in err


def test_too_large_bodies_urls_and_headers_are_refused(server, sockets):
    port = server.port
    # A body announced too large is refused before it is sent.
    s = connect(port, sockets)
    s.sendall(b"POST /api/history HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    status, headers, body = read_answer(s)
    assert status == 413 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "request body must be at most 1 MiB"}
    # A chunked body is counted as it comes.
    s = connect(port, sockets)
    s.sendall(b"POST /api/history HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    s.sendall(chunk * (MAX_BODY // 65536 + 1) + b"0\r\n\r\n")
    status, headers, body = read_answer(s)
    assert status == 413 and "1 MiB" in json.loads(body)["error"]
    # A body of exactly the limit reaches the handler (which takes no POST there).
    # The remote-mode routes have their own limits (test_remote_server.py).
    r = http(server.url + "/api/history", method="POST", data=b"x" * MAX_BODY)
    assert r.status == 405 and "error" in r.json()
    # A URL or a header that does not fit the connection's memory: 414 / 431.
    s = connect(port, sockets)
    s.sendall(b"GET /api/history?q=" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_answer(s)[0] == 414
    s = connect(port, sockets)
    s.sendall(b"GET /api/procs HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 40000 + b"\r\n\r\n")
    assert read_answer(s)[0] == 431
    # Nothing of that stopped the server.
    r, took = server.timed_get("/api/history?q=" + "a" * 256)
    assert r.status == 200 and took < 1.0
