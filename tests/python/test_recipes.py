"""The README's recipes as a user pastes them: each code block that follows
an HTML comment `<!-- recipe: NAME -->` in README.md is taken from the
README at test time and run under the server the README names (gunicorn,
uvicorn, gunicorn with uvicorn workers, a `django-admin startproject`
project, the `pyloot` command). Each test requests a route of the app and
checks that the mounted `/_pyloot/api/history` answers. Only what cannot be
pasted on a test machine is replaced: the port, the store directory, the
central server's address (127.0.0.1) and `-h 0.0.0.0` (127.0.0.1: tests
bind loopback only)."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import free_port, http, read_log, stop_group, wait_for_pyloot, wait_until

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = re.compile(r"<!-- recipe: ([\w-]+) -->\n```(\w+)\n(.*?)^```", re.S | re.M)

# Every recipe of the README and the test that runs it: a marker without a
# test here fails test_every_recipe_is_run.
RECIPES = {
    "opening": "test_opening",
    "report": "test_flask_gunicorn_and_the_report",
    "fastapi": "test_fastapi_uvicorn",
    "starlette": "test_starlette_gunicorn_uvicorn_worker",
    "flask": "test_flask_gunicorn_and_the_report",
    "gunicorn-conf": "test_flask_gunicorn_and_the_report",
    "django-settings": "test_django_startproject",
    "django-urls": "test_django_startproject",  # and test_django_runserver
    "django-allow": "test_django_allow_callable",
    "remote-server": "test_remote_mode",
    "remote-worker": "test_remote_mode",
}


def recipes():
    """{name: (language, code)} of README.md's marked code blocks."""
    found = {}
    for name, lang, code in MARKER.findall(README.read_text()):
        assert name not in found, "two recipes named %r in README.md" % name
        found[name] = (lang, code)
    return found


def recipe(name):
    return recipes()[name][1]


def scripts_dir():
    """Where this interpreter's console scripts are (pyloot, gunicorn ...)."""
    return sysconfig.get_path("scripts")


def pyloot_exe():
    exe = os.path.join(scripts_dir(), "pyloot")
    if not os.access(exe, os.X_OK):
        exe = shutil.which("pyloot")
    if not exe:
        pytest.skip("the pyloot command is not installed")
    return exe


class App:
    """A server started from a directory of pasted files, in its own session:
    argv is a module run with this interpreter (gunicorn, uvicorn) or a script
    (manage.py)."""

    def __init__(self, tmp, argv, env_extra=None, workers=2, token=None, headers=None, mount="/_pyloot"):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.base = self.url + mount
        self.log_path = tmp / "server.log"
        self.headers = headers or ({"Authorization": "Bearer " + token} if token else {})
        env = dict(os.environ)
        for name in list(env):
            if name.startswith("PYLOOT_"):
                del env[name]
        env.update(PYLOOT_DB=str(tmp / "store"), PATH=scripts_dir() + os.pathsep + env.get("PATH", ""))
        env.update(env_extra or {})
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        with open(self.log_path, "wb") as log:
            cmd = [sys.executable] + (argv if argv[0].endswith(".py") else ["-m"] + argv)
            self.proc = subprocess.Popen(cmd, cwd=str(tmp), env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_pyloot(self.base, 60, message="%s to serve /_pyloot" % argv[0], proc=self.proc,
                            why_exited=lambda: self.log()[-3000:], headers=self.headers)
            wait_until(lambda: len(self.alive()) == workers, 60, message="%d workers in the store" % workers)
        except BaseException:
            self.stop()
            raise

    def get(self, path, headers=None):
        return http(self.url + path, headers=headers)

    def alive(self):
        return [p for p in self.api("/api/procs")["procs"] if p["alive"]]

    def api(self, path):
        r = http(self.base + path, headers=self.headers)
        assert r.status == 200, (path, r.status, r.body[:300], self.log()[-2000:])
        return r.json()

    def check_history(self):
        body = self.api("/api/history?limit=5")
        assert isinstance(body["types"], list) and "times" in body
        return body

    def log(self):
        return read_log(self.log_path)

    def stop(self):
        stop_group(self.proc)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_every_recipe_is_run():
    found = recipes()
    assert set(found) == set(RECIPES), "README recipes without a test, or tests of missing recipes"
    for name, (lang, code) in found.items():
        assert lang in ("python", "shell") and code.strip(), name
        if lang == "python":
            compile(code, name, "exec")
        assert RECIPES[name] in globals(), RECIPES[name]


def test_opening(tmp_path):
    write(tmp_path / "app.py", recipe("opening"))
    app = App(tmp_path, ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "app:app"])
    try:
        r = app.get("/")
        assert r.status == 404 and b"Not Found" in r.body  # the Flask app's own answer
        app.check_history()
        assert "Traceback" not in app.log(), app.log()
    finally:
        app.stop()


def test_flask_gunicorn_and_the_report(tmp_path):
    code = recipe("flask") + '''

class Cached:
    pass

CACHE = [Cached() for _ in range(321)]
# The recipe starts the collector at import, before these exist: its first
# sample may come first, and the next one only after the default interval.
# One sample now holds them, whichever came first.
pyloot.collect_objects()

@flask_app.route("/hello")
def hello():
    return "hello"
'''
    write(tmp_path / "app.py", code)
    write(tmp_path / "gunicorn.conf.py", recipe("gunicorn-conf"))
    app = App(tmp_path, ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "app:app"])
    try:
        r = app.get("/hello")
        assert r.status == 200 and r.body == b"hello"
        app.check_history()
        store = app.api("/api/procs")["store"]["path"]
        assert os.path.samefile(store, tmp_path / "store")
        assert "Traceback" not in app.log(), app.log()
    finally:
        app.stop()
    # The report recipe on the store the server left: each line as pasted,
    # with the store's path for the README's example path and a free port.
    lines = [ln for ln in recipe("report").splitlines() if ln.strip()]
    assert len(lines) == 2
    example = re.search(r"--db (\S+)", lines[0]).group(1)
    report = shlex.split(lines[0].replace(example, store), comments=True)
    assert report[:2] == ["pyloot", "report"]
    out = subprocess.run([pyloot_exe()] + report[1:], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pyloot report of %s" % store in out.stdout and "workers: 2 seen" in out.stdout, out.stdout
    serve = shlex.split(lines[1].replace(example, store), comments=True)
    assert serve[0] == "pyloot" and "-h" not in serve and "-p" not in serve
    port = free_port()
    err = tmp_path / "serve.err"
    with open(err, "wb") as f:
        proc = subprocess.Popen([pyloot_exe()] + serve[1:] + ["-p", str(port)], stdout=subprocess.DEVNULL,
                                stderr=f, start_new_session=True)
    try:
        url = "http://127.0.0.1:%d" % port
        wait_for_pyloot(url, 20, proc=proc, why_exited=err.read_text)
        assert "on http://127.0.0.1:%d/" % port in err.read_text()  # loopback, as the README says
        r = http(url + "/api/history?q=app.Cached")
        # As of the last moment a worker was alive: one or both workers' 321.
        assert r.status == 200 and r.json()["types"][0]["count"] in (321, 2 * 321), r.body[:300]
        assert http(url + "/api/samples", method="POST", data=b"x").status == 403  # takes no pushes
    finally:
        stop_group(proc, grace=10)


ASGI_ROUTE = '''

async def hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})
'''


def test_fastapi_uvicorn(tmp_path):
    code = recipe("fastapi") + '''

@app.get("/hello")
def hello():
    return "hello"
'''
    write(tmp_path / "app.py", code)
    app = App(tmp_path, ["uvicorn", "app:app", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}"])
    try:
        r = app.get("/hello")
        assert r.status == 200 and r.json() == "hello"
        app.check_history()
    finally:
        app.stop()


def test_starlette_gunicorn_uvicorn_worker(tmp_path):
    code = recipe("starlette") + '''

from starlette.responses import PlainTextResponse

app.add_route("/hello", lambda request: PlainTextResponse("hello"))
'''
    write(tmp_path / "app.py", code)
    app = App(tmp_path, ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", "127.0.0.1:{port}",
                         "app:app"])
    try:
        r = app.get("/hello")
        assert r.status == 200 and r.body == b"hello"
        app.check_history()
    finally:
        app.stop()


def test_django_startproject(tmp_path):
    startproject(tmp_path, recipe("django-settings"))
    token = "recipe-" + "t" * 32
    app = App(tmp_path, ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "mysite.wsgi"],
              env_extra={"PYLOOT_TOKEN": token}, token=token)
    try:
        r = app.get("/admin/login/")
        assert r.status == 200 and b"csrfmiddlewaretoken" in r.body
        app.check_history()
        r = http(app.base + "/api/history")
        assert r.status == 401  # the settings' token from PYLOOT_TOKEN
    finally:
        app.stop()


def startproject(tmp_path, settings_recipe):
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)], check=True,
                   timeout=60)
    settings = tmp_path / "mysite" / "settings.py"
    urls = tmp_path / "mysite" / "urls.py"
    settings.write_text(settings.read_text() + "\n" + settings_recipe)
    urls.write_text(urls.read_text() + "\n" + recipe("django-urls"))


def test_django_runserver(tmp_path):
    """`python manage.py runserver`, autoreloader included: the collector runs
    in the one process that serves."""
    startproject(tmp_path, recipe("django-settings"))
    token = "recipe-" + "r" * 32
    app = App(tmp_path, ["manage.py", "runserver", "127.0.0.1:{port}"], env_extra={"PYLOOT_TOKEN": token},
              token=token, workers=1)
    try:
        assert app.get("/admin/login/").status == 200
        app.check_history()
        assert http(app.base + "/api/history").status == 401
    finally:
        app.stop()


def test_django_allow_callable(tmp_path):
    """The settings' alternative ("allow" instead of "token", from the
    comment in the recipe) with the README's callable in mysite/access.py:
    a staff user's session is let in, an anonymous request is not."""
    settings, n = re.subn(r'\{"token": [^}]*\}\s*# or ("allow": "[\w.]+")', r"{\1}", recipe("django-settings"))
    assert n == 1, recipe("django-settings")
    startproject(tmp_path, settings)
    write(tmp_path / "mysite" / "access.py", recipe("django-allow"))
    manage = [sys.executable, str(tmp_path / "manage.py")]
    subprocess.run(manage + ["migrate", "-v", "0"], check=True, timeout=120, cwd=str(tmp_path))
    make_session = (
        "from django.contrib import auth\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "u = auth.get_user_model().objects.create_user('%s', is_staff=%s)\n"
        "s = SessionStore()\n"
        "s[auth.SESSION_KEY] = str(u.pk)\n"
        "s[auth.BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[auth.HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
        "s.create()\n"
        "print(s.session_key)\n")
    sessions = {}
    for name, staff in (("staff", True), ("user", False)):
        out = subprocess.run(manage + ["shell", "-c", make_session % (name, staff)], check=True, timeout=60,
                             cwd=str(tmp_path), capture_output=True, text=True)
        sessions[name] = {"Cookie": "sessionid=" + out.stdout.split()[-1]}
    app = App(tmp_path, ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "mysite.wsgi"], headers=sessions["staff"])
    try:
        for path in ("/api/history", "/api/objects?group=mysite.access.Nothing"):
            assert http(app.base + path, headers=sessions["staff"]).status == 200, path
            assert http(app.base + path, headers=sessions["user"]).status == 403, path
        assert http(app.base + "/api/objects?group=x", headers={"X-Forwarded-For": "203.0.113.9"}).status == 403
        assert "Traceback" not in app.log(), app.log()[-3000:]
    finally:
        app.stop()


def test_remote_mode(tmp_path):
    port = free_port()
    central_db = tmp_path / "central"
    lines = recipe("remote-server").splitlines()
    commands = [ln[2:] for ln in lines if ln.startswith("$ ")]
    printed = [ln for ln in lines if ln and not ln.startswith("$ ")]
    assert len(commands) == 2 and commands[0].startswith("export PYLOOT_TOKEN=")

    def local(text):
        text = text.replace("-h 0.0.0.0", "-h 127.0.0.1").replace("http://0.0.0.0:", "http://127.0.0.1:")
        return re.sub(r"\b8000\b", str(port), text).replace("/var/lib/pyloot", str(central_db))

    token_file = tmp_path / "token"
    script = "set -e\n%s\nprintf %%s \"$PYLOOT_TOKEN\" > %s\nexec %s\n" % (
        commands[0], shlex.quote(str(token_file)), local(commands[1]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYLOOT_")}
    env["PATH"] = scripts_dir() + os.pathsep + env.get("PATH", "")
    err = tmp_path / "central.err"
    with open(err, "wb") as f:
        central = subprocess.Popen(["bash", "-c", script], env=env, stdout=f, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    app = None
    try:
        wait_until(token_file.exists, 20, message="the export line")
        wait_for_pyloot("http://127.0.0.1:%d" % port, 20, proc=central, why_exited=err.read_text,
                        headers={"Authorization": "Bearer " + token_file.read_text()})
        wait_until(lambda: all(local(p) in err.read_text() for p in printed), 10,
                   message="the README's lines: %r" % printed)
        token = token_file.read_text()
        assert len(token) >= 40
        assert http("http://127.0.0.1:%d/api/history" % port).status == 401
        code = re.sub(r"\bport=8000\b", "port=%d" % port, recipe("remote-worker"))
        write(tmp_path / "worker" / "app.py", code.replace('"central.example"', '"127.0.0.1"'))
        app = App(tmp_path / "worker", ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "app:app"],
                  env_extra={"PYLOOT_TOKEN": token}, token=token)
        assert app.get("/").status == 404  # the Flask app's own answer
        app.check_history()  # the worker's /_pyloot: the central server's view
        central_procs = http("http://127.0.0.1:%d/api/procs" % port,
                             headers={"Authorization": "Bearer " + token}).json()["procs"]
        assert sum(p["alive"] for p in central_procs) == 2
    finally:
        if app:
            app.stop()
        stop_group(central, grace=10)
