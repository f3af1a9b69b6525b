"""Slow clients against the `pyloot` command's server: the header and request
deadlines and the cap on connections whose request is not received whole
(docs/cli.md, "Limits of the server"; docs/security.md, "Slow clients from
many addresses").

The attacks are scaled down through the serve options (a 2 s header deadline,
a pending cap of 20, 8 connections per address): the server must hold no
more than the caps, close what trickles, and still answer a normal request.
Every server listens on 127.0.0.1 and is stopped at the end of its test;
every socket is closed. Sources 127.0.0.2 ... are loopback addresses too.
"""
import socket
import subprocess
import time

import pytest

from conftest import free_port, stop_group, wait_for_pyloot, wait_until
from test_cli import pyloot_exe
from test_cli_limits import closed_by_server, connect, read_answer, sockets, store  # noqa: F401

HEADER_S = 2
REQUEST_S = 3
PENDING = 20
PER_ADDRESS = 8


class Server:
    def __init__(self, store, *options):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([pyloot_exe(), "serve", "-h", "127.0.0.1", "-p", str(self.port), "--db", store]
                                     + list(options), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)

        wait_for_pyloot(self.url, 20, proc=self.proc, why_exited=lambda: self.proc.stderr.read().decode())

    def stop(self):
        stop_group(self.proc, grace=10)
        self.proc.stderr.close()


@pytest.fixture
def server(store):
    s = Server(store, "--header-timeout", str(HEADER_S), "--request-timeout", str(REQUEST_S),
               "--max-pending", str(PENDING), "--max-per-address", str(PER_ADDRESS))
    yield s
    s.stop()


def trickle_until_closed(s, data, limit_s):
    """Sends data one byte every 0.25 s (then keeps sending spaces) until the
    server closes the connection or limit_s passes: the seconds it took, or None."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < limit_s:
        try:
            s.send(data[i:i + 1] if i < len(data) else b" ")
        except OSError:
            return time.monotonic() - t0
        i += 1
        if closed_by_server([s]):
            return time.monotonic() - t0
        time.sleep(0.25)
    return None


def normal_request(server, source="127.0.0.1"):
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.settimeout(5)
        t0 = time.monotonic()
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /api/procs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = read_answer(s)[0]
        return status, time.monotonic() - t0
    finally:
        s.close()


def test_trickled_headers_are_closed_at_the_header_deadline(server, sockets):
    s = connect(server.port, sockets)
    took = trickle_until_closed(s, b"GET /api/procs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100, 15)
    assert took is not None, "a connection trickling its headers was never closed"
    assert took >= HEADER_S - 0.5


def test_trickled_body_is_closed_at_the_request_deadline(server, sockets):
    s = connect(server.port, sockets)
    s.sendall(b"POST /api/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
    took = trickle_until_closed(s, b"x" * 1000, 15)
    assert took is not None, "a connection trickling its body was never closed"
    assert took >= REQUEST_S - 0.5


def test_kept_alive_connection_trickling_its_next_request_is_closed(server, sockets):
    s = connect(server.port, sockets)
    s.sendall(b"GET /api/procs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.settimeout(5)
    assert s.recv(12).startswith(b"HTTP/1.1 200")
    time.sleep(0.5)
    s.recv(65536)  # the rest of the answer
    took = trickle_until_closed(s, b"GET /api/history HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100,
                                20)
    assert took is not None, "a kept-alive connection trickling its next request was never closed"


def test_slow_connections_from_many_addresses_hold_at_most_the_caps(server, sockets):
    # 6 addresses x 12 connections, each sending a byte now and then: one
    # address may hold PER_ADDRESS, all of them together PENDING.
    crowd = []
    for a in range(6):
        for _ in range(12):
            try:
                s = connect(server.port, sockets, "127.0.0.%d" % (2 + a))
                s.send(b"G")
                crowd.append(s)
            except OSError:
                pass  # refused outright over the per-address cap: fine
    for _ in range(3):
        for s in crowd:
            try:
                s.send(b"E")
            except OSError:
                pass
        time.sleep(0.3)
    held = lambda: [s for s in crowd if s not in closed_by_server(crowd)]  # noqa: E731
    wait_until(lambda: len(held()) <= PENDING, 10, message="the pending connections to shrink to the cap")
    assert len(held()) <= PENDING
    # A normal request from another address is answered (within the client's
    # 5 s timeout, well before any deadline frees a slot: it ends the
    # connection that waited longest)...
    status, _ = normal_request(server)
    assert status == 200
    # ... and so is one from an address of the crowd, by the per-address cap
    # never being passed: at most PER_ADDRESS of each address are open.
    per_address = {}
    for s in held():
        per_address[s.getsockname()[0]] = per_address.get(s.getsockname()[0], 0) + 1
    assert max(per_address.values(), default=0) <= PER_ADDRESS
    # Past the header deadline none of them is left.
    wait_until(lambda: not held(), HEADER_S + 8, message="the header deadline to close the crowd")
    status, _ = normal_request(server, "127.0.0.2")
    assert status == 200


def test_serve_options_are_checked(store):
    for bad in (["--header-timeout", "0"], ["--max-pending", "x"], ["--request-timeout", "-1"]):
        p = subprocess.run([pyloot_exe(), "serve", "--db", store] + bad, capture_output=True, timeout=30)
        assert p.returncode == 2
        assert b"must be a number" in p.stderr
