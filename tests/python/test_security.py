"""The HTTP handler's defences seen from Python and from real gunicorn
workers (docs/security.md): a store that cannot be used answers /metrics
503 instead of killing the worker; parameters that are not UTF-8 are a 400
before any work; live objects need a loopback (or allowed) Host against DNS
rebinding; command lines are shown redacted; a proxy that adds no proxy
header is warned about once."""
import io
import json
import logging
import shutil
import subprocess
import sys

import pytest

from conftest import APPS, free_port, http, stop_group, wait_for_pyloot
from pyloot import PyLoot, server as pyloot_server
from test_access import asgi_call
from test_cli import pyloot_exe


class Secret:
    """An application object: its repr is what a rebinding page wants."""


SECRETS = []
GROUP = "%s.Secret" % __name__


@pytest.fixture
def loot(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=60)
    loot.collect_objects()
    SECRETS[:] = [Secret() for _ in range(3)]
    yield loot
    SECRETS.clear()
    loot.backend.close()


@pytest.fixture
def no_warning_yet(monkeypatch):
    """The proxy warning as if this process had not logged it yet."""
    monkeypatch.setattr(pyloot_server, "_proxy_warned_pid", None)
    monkeypatch.setattr(pyloot_server, "_gunicorn_proxy", {})


def wsgi_call(app, path, query="", **environ_extra):
    """One request through a WSGI app: (status, headers, body)."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "/_pyloot",
               "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http"}
    environ.update(environ_extra)
    got = {}

    def start_response(status, headers):
        got["status"] = int(status.split()[0])
        got["headers"] = dict(headers)

    body = b"".join(app(environ, start_response))
    return got["status"], got["headers"], body


# ---- /metrics with a store that cannot be used ----

def test_metrics_of_an_unusable_store_is_503_and_the_worker_lives(gunicorn, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = gunicorn(workers=1, interval=0.3, db=blocker / "store")
    pid = server.get("/pid").json()["pid"]
    workers = server.worker_pids()
    for _ in range(3):  # every scrape used to kill the worker (SIGSEGV)
        r = server.get("/_pyloot/metrics")
        assert r.status == 503, r.body[:500]
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert b"Not a directory" in r.body and b"Fix:" in r.body
    r = server.get("/_pyloot/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.status == 503
    assert server.get("/_pyloot/api/procs").status == 503
    assert server.get("/pid").json()["pid"] == pid
    assert server.worker_pids() == workers
    assert server.get("/leak?n=1").status == 200
    log = server.log()
    assert "Traceback" not in log and "SIGSEGV" not in log and "signal 11" not in log, log[-3000:]


# ---- parameters ----

SUSPECTS_PROBE = r"""
import gc, json, sys, weakref
from pyloot import PyLoot

class Probe:
    pass

loot = PyLoot(path=sys.argv[1], interval=60)
server = loot.get_wsgi()
held = [Probe()]
ref = weakref.ref(held[0])
bad = server.handle("GET", "/api/suspects", sys.argv[2], None, False)
held.clear()
gc.collect()
bad_kept = ref() is not None
held.append(Probe())
ref = weakref.ref(held[0])
good = server.handle("GET", "/api/suspects", "group=__main__.Probe", None, False)
held.clear()
gc.collect()
print(json.dumps({"bad": [bad[0], json.loads(bad[3])], "bad_kept": bad_kept,
                  "good": good[0], "good_kept": ref() is not None}))
"""


@pytest.mark.parametrize("query", ["group=%ff%fe", "group=%ed%a0%80", "group=%c0%af", "group=a%00b"])
def test_suspects_with_a_group_that_is_not_utf8_is_400_before_any_work(tmp_path, query):
    # A dominator tree, once built, is kept and holds every object: an
    # object that outlives its last reference shows that one was built.
    # A fresh process, so that no tree of another test is kept.
    out = subprocess.run([sys.executable, "-c", SUSPECTS_PROBE, str(tmp_path / "store"), query],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    status, body = got["bad"]
    assert status == 400, body
    assert body["error"].startswith("parameter group must be UTF-8 text")
    assert got["bad_kept"] is False  # no tree was built for the bad request
    assert got["good"] == 200 and got["good_kept"] is True  # the probe does see a kept tree


@pytest.mark.parametrize("path,query,param", [
    ("/api/history", "since=92233720368547758", "since"),
    ("/api/history", "since=18446745870000000", "since"),
    ("/api/history", "until=18446745870000000", "until"),
    ("/api/history", "limit=18446744073709551617", "limit"),
    ("/api/history", "q=%ff", "q"),
    ("/api/history", "host=%00", "host"),
    ("/api/objects", "group=%ff%fe", "group"),
    ("/api/witnesses", "group=%ff%fe", "group"),
    ("/api/witnesses", "group=x&host=%c0%80", "host"),
])
def test_bad_parameters_are_400_naming_them(loot, path, query, param):
    status, _reason, _headers, body = loot.get_wsgi().handle("GET", path, query, None, False)
    assert status == 400, body
    assert json.loads(body)["error"].startswith("parameter %s " % param)


# ---- DNS rebinding: Host ----

def test_live_objects_need_a_local_host(loot):
    app = loot.get_wsgi()
    for host in ("attacker.example", "attacker.example:8101", "127.0.0.1.attacker.example"):
        status, _headers, body = wsgi_call(app, "/api/objects", "group=" + GROUP, HTTP_HOST=host)
        assert status == 403, body
        error = json.loads(body)["error"]
        assert "DNS rebinding" in error and "PyLoot(allowed_hosts=[...])" in error
        assert b"Secret object" not in body
    for host in ("localhost:8101", "127.0.0.1:8101", "[::1]:8101", "app.localhost", None):
        extra = {"HTTP_HOST": host} if host else {}
        status, _headers, body = wsgi_call(app, "/api/objects", "group=" + GROUP, **extra)
        assert status == 200, (host, body)
        assert json.loads(body)["total"] == 3
    # Summary routes show no values: any Host.
    assert wsgi_call(app, "/api/procs", HTTP_HOST="attacker.example")[0] == 200
    # ASGI: the host header of the scope.
    asgi = loot.get_asgi()
    status, _headers, body = asgi_call(asgi, "/api/objects?group=" + GROUP, headers=[("Host", "attacker.example")])
    assert status == 403, body
    status, _headers, body = asgi_call(asgi, "/api/objects?group=" + GROUP, headers=[("Host", "localhost:8000")])
    assert status == 200, body


def test_allowed_hosts(tmp_path):
    loot = PyLoot(path=str(tmp_path / "store"), interval=60, allowed_hosts=["devbox", ".corp.example"])
    try:
        app = loot.get_wsgi()
        for host, want in (("devbox:8000", 200), ("a.corp.example", 200), ("attacker.example", 403),
                           ("localhost", 200)):
            assert wsgi_call(app, "/api/objects", "group=x", HTTP_HOST=host)[0] == want, host
        for bad in (["a b"], ["x/y"], [""], ["a\nb"]):
            with pytest.raises(ValueError):
                PyLoot(path=str(tmp_path / "other"), allowed_hosts=bad)
    finally:
        loot.backend.close()


def test_gunicorn_worker_checks_host_and_redacts_argv(gunicorn, no_warning_yet):
    server = gunicorn(workers=1, interval=0.3,
                      args=("-e", "DB=pg://a:S3cretPass@db/p", "--forwarded-allow-ips", "10.0.0.1"))
    assert server.get("/leak?n=2").status == 200
    url = "/_pyloot/api/objects?group=leaky.Leak"
    r = server.get(url, headers={"Host": "attacker.example:%d" % server.port})
    assert r.status == 403, r.body[:500]
    assert b"leak-" not in r.body
    r = server.get(url, headers={"Host": "localhost:%d" % server.port})
    assert r.status == 200, r.body[:500]
    assert r.json()["total"] == 2
    procs = server.api("/api/procs")["procs"]
    assert procs and all("S3cretPass" not in p["argv"] for p in procs), procs
    # gunicorn was told of a proxy, and this request from loopback has no
    # proxy header: one warning, however many such requests come.
    for _ in range(3):
        server.get("/_pyloot/api/procs")
    log = server.log()
    assert log.count("answered to everyone the proxy serves") == 1, log[-3000:]
    assert "forwarded_allow_ips is '10.0.0.1'" in log



def test_403_names_the_rule_it_applies(loot):
    # The default rule is about the peer address and proxy headers, not
    # "this machine": the 403 says which of the two this request missed.
    wsgi = loot.get_wsgi()
    status, _, _, body = wsgi.handle("GET", "/api/objects", "group=dict", peer="198.51.100.7")
    message = json.loads(body)["error"]
    assert status == 403 and "this machine" not in message
    assert "loopback address (127.0.0.0/8, ::1)" in message and "X-Forwarded-For" in message
    assert "came from a non-loopback address" in message and "PyLoot(token=...)" in message
    status, _, _, body = wsgi.handle("GET", "/api/objects", "group=dict", peer="127.0.0.1", proxied=True)
    message = json.loads(body)["error"]
    assert status == 403 and "this request carries one (it came through a proxy)" in message

# ---- command lines ----

SECRET_ARGV = ("-e", "DATABASE_URL=postgres://app:S3cretPass@db/prod", "--password", "hunter2", "--api-key=K3yK3y",
               "DB_PASSWORD=Pw0rd")
SECRET_VALUES = ("S3cretPass", "hunter2", "K3yK3y", "Pw0rd")


def store_with_secret_argv(tmp_path):
    # The store keeps the first 255 bytes of a command line: relative paths
    # keep the secrets inside them however deep the checkout and tmp are.
    shutil.copy(APPS / "argv_worker.py", tmp_path / "w.py")
    subprocess.run([sys.executable, "w.py", "store", *SECRET_ARGV], check=True, timeout=120, cwd=tmp_path)
    return str(tmp_path / "store")


def test_procs_and_report_redact_command_lines(tmp_path):
    store = store_with_secret_argv(tmp_path)
    loot = PyLoot(path=store, interval=60)
    try:
        status, _reason, _headers, body = loot.get_wsgi().handle("GET", "/api/procs", "", None, False)
    finally:
        loot.backend.close()
    assert status == 200
    argv = [p["argv"] for p in json.loads(body)["procs"]]
    assert len(argv) == 1
    for secret in SECRET_VALUES:
        assert secret not in body.decode()
    assert argv[0].endswith("-e DATABASE_URL=postgres://app:<redacted>@db/prod --password <redacted> "
                            "--api-key=<redacted> DB_PASSWORD=<redacted>"), argv
    for fmt in ((), ("--json",)):
        out = subprocess.run([pyloot_exe(), "report", "--db", store, *fmt], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert "postgres://app:<redacted>@db/prod --password <redacted>" in out.stdout
        for secret in SECRET_VALUES:
            assert secret not in out.stdout


def test_cli_server_checks_host_and_redacts_argv(tmp_path):
    store = store_with_secret_argv(tmp_path)
    port = free_port()
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port), "--db", store, "--read-only"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = "http://127.0.0.1:%d" % port

        wait_for_pyloot(url, 30, message="the pyloot server")
        r = http(url + "/api/procs", headers={"Host": "attacker.example"})  # a summary route: any Host
        assert r.status == 200
        assert all(secret not in r.body.decode() for secret in SECRET_VALUES), r.body
        assert "postgres://app:<redacted>@db/prod" in r.json()["procs"][0]["argv"]
        for path in ("/api/objects?group=x&pid=1", "/api/objects/5?pid=1", "/api/witnesses?group=x"):
            r = http(url + path, headers={"Host": "attacker.example:%d" % port})
            assert r.status == 403 and "DNS rebinding" in r.json()["error"], (path, r.status, r.body)
            r = http(url + path, headers={"Host": "localhost:%d" % port})
            assert r.status != 403, (path, r.body)
    finally:
        stop_group(proc)


# ---- a proxy that adds no proxy header ----

def test_unmarked_proxy_is_warned_once(loot, caplog, no_warning_yet):
    app = loot.get_wsgi()
    caplog.set_level(logging.WARNING, logger="pyloot")

    def warnings():
        return [r for r in caplog.records if "answered to everyone the proxy serves" in r.getMessage()]

    wsgi_call(app, "/api/procs")  # a plain local request
    wsgi_call(app, "/api/procs", HTTP_VIA="1.1 varnish", HTTP_X_FORWARDED_FOR="203.0.113.7")  # marked
    wsgi_call(app, "/api/procs", HTTP_VIA="1.1 varnish", REMOTE_ADDR="203.0.113.7")  # not from loopback
    assert warnings() == []
    for _ in range(3):
        wsgi_call(app, "/api/objects", "group=" + GROUP, HTTP_VIA="1.1 varnish")
    assert len(warnings()) == 1
    message = warnings()[0].getMessage()
    assert "Via header" in message and "proxy_set_header X-Forwarded-For" in message
    assert "PyLoot(token=...)" in message


def test_unmarked_proxy_asgi(loot, caplog, no_warning_yet):
    caplog.set_level(logging.WARNING, logger="pyloot")
    asgi_call(loot.get_asgi(), "/api/procs")
    assert "answered to everyone" not in caplog.text
    asgi_call(loot.get_asgi(), "/api/procs", headers=[("Via", "1.1 squid")])
    assert caplog.text.count("answered to everyone the proxy serves") == 1


def test_forwarded_allow_ips_read_from_the_command_line(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gunicorn", "--forwarded-allow-ips=10.0.0.5,127.0.0.1", "app:app"])
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setitem(sys.modules, "gunicorn", sys.modules.get("gunicorn") or type(sys)("gunicorn"))
    assert pyloot_server._gunicorn_forwarded_allow_ips() == ["10.0.0.5", "127.0.0.1"]
    monkeypatch.setattr(sys, "argv", ["gunicorn", "app:app"])
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    assert pyloot_server._gunicorn_forwarded_allow_ips() == ["127.0.0.1", "::1"]
    monkeypatch.setattr(pyloot_server, "_gunicorn_proxy", {})
    assert pyloot_server._gunicorn_names_a_proxy() == ""  # the default: this machine only
